//! An agent that makes a set-user-ID (and set-group-ID) copy of a shell in what it may write
//! (its worktree, its report directory): orch runs as root here, so such a file belongs to root,
//! and any other user of the machine who could reach it would run it as root (a red team's
//! hole: the worktree's directories were 0755). orch's directory (`.orch`, with the worktrees,
//! the state, the report and client directories) is its user's alone, made so at every start
//! (also when an earlier orch left it open): no other user reaches anything below it. A
//! confined local agent and an agent in its plan's container, sandbox on and off.

use crate::support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use support::{Repo, toml_array};

/// The agent: set-user-ID and set-group-ID copies of bash (or sh) in its worktree and its
/// report directory, then exits 0 (its task done).
const PLANT: &str = "b=$(command -v bash || command -v sh); \
    cp \"$b\" ./suid-shell && chmod 4755 ./suid-shell; \
    cp \"$b\" ./sgid-shell && chmod 2755 ./sgid-shell; \
    cp \"$b\" \"$ORCH_REPORT_DIR/suid-shell\" && chmod 4755 \"$ORCH_REPORT_DIR/suid-shell\"; \
    mkdir -p deep/er && cp \"$b\" deep/er/suid-shell && chmod 4755 deep/er/suid-shell; \
    echo done > work.txt";

/// What user `nobody` gets from running `path -p -c 'id -u'`: its exit code and output.
fn as_nobody(path: &Path) -> (i32, String) {
    // `runuser` drops root's capabilities with its user (`setpriv --reuid` keeps them).
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(path)
        .args(["-p", "-c", "id -u"])
        .output()
        .expect("setpriv");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0)
}

/// After the run: `.orch` and its state directory are 0700, and `nobody` runs none of what the
/// agent left as root (it cannot even reach it).
fn nobody_gets_no_root(repo: &Repo, what: &str) {
    let wt = repo.worktree("p");
    let left: Vec<_> = ["suid-shell", "sgid-shell", "deep/er/suid-shell"]
        .iter()
        .map(|f| wt.join(f))
        .filter(|f| f.exists())
        .collect();
    assert!(!left.is_empty(), "{what}: the agent planted nothing");
    for f in left {
        let (code, out) = as_nobody(&f);
        assert!(
            code != 0 && !out.lines().any(|l| l.trim() == "0"),
            "{what}: nobody ran {} (exit {code}): {out}",
            f.display()
        );
        assert!(out.contains("Permission denied"), "{what}: {out}");
    }
    let orch_dir = repo.root().join(".orch");
    assert_eq!(mode(&orch_dir), 0o700, "{what}: .orch");
    assert_eq!(mode(&orch_dir.join("state")), 0o700, "{what}: .orch/state");
}

#[test]
fn another_user_reaches_no_setuid_program_a_confined_agent_leaves() {
    if !support::landlock() || !nix::unistd::geteuid().is_root() {
        return;
    }
    for open_before in [false, true] {
        let what = format!("an earlier .orch left open: {open_before}");
        let repo = Repo::new();
        repo.write("docs/plans/p.md", &support::one_task("P", "Plant"));
        repo.manifest(
            &toml_array(&["sh", "-c", PLANT]),
            "report = \"exit\"",
            "sandbox = \"on\"\nretries = 0",
            &[("p", "")],
        );
        repo.commit_all("plans");
        if open_before {
            std::fs::create_dir_all(repo.root().join(".orch/state")).expect(".orch");
            for d in [".orch", ".orch/state"] {
                std::fs::set_permissions(
                    repo.root().join(d),
                    std::fs::Permissions::from_mode(0o755),
                )
                .expect("chmod");
            }
        }
        let (code, out, err) =
            repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
        assert_eq!(code, 0, "{what}: {out}\n{err}");
        assert_eq!(repo.task("p", "1.1")["status"], "completed", "{what}");
        nobody_gets_no_root(&repo, &what);
    }
}

#[test]
fn another_user_reaches_no_setuid_program_an_agent_in_a_container_leaves() {
    if !support::podman::available() || !nix::unistd::geteuid().is_root() {
        return;
    }
    for sandbox in ["sandbox = \"off\"", "sandbox = \"on\""] {
        let repo = support::podman::repo(
            &[("p", "")],
            "# P\n\n## Phase 1: Work\n- [ ] 1.1 Plant\n",
            &toml_array(&["sh", "-c", PLANT]),
            "network = \"none\"\n",
            support::podman::IMAGE,
            sandbox,
            "",
        );
        let (code, out, err) =
            repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
        assert_eq!(code, 0, "{sandbox}: {out}\n{err}");
        assert_eq!(repo.task("p", "1.1")["status"], "completed", "{sandbox}");
        nobody_gets_no_root(&repo, sandbox);
    }
}
