//! What Landlock does not control: a file's mode bits, its group, its times and its extended
//! attributes. A confined agent (and a confined check) of plan `a` tries to change them on what
//! is not its own, without writing to it: another plan's worktree and a file in it, a file of the
//! main checkout, orch's state directory, orch's own executable, the repository's `.git`, a file
//! outside the repository; each by `chmod` (000 and 0777), `fchmod`, `fchmodat`, `chgrp`,
//! `utime`, `setxattr`, and `chmod` through a link of its own. On the code before, `chmod 000`
//! of plan `b`'s worktree and `chmod 777` of `plans.toml` worked. Every try is refused, nothing
//! changes (mode, times, attributes), plan `b` completes, and the agent's own `chmod +x` of a
//! file of its worktree still lands as an executable file. As root (CI) and, where the test runs
//! as root, as `nobody` (the mount namespace then lives in a user namespace of its own).

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::landlock;
use crate::support::{Repo, fixtures, toml_array};

/// What a target looks like to someone who cares: its mode, its group, its modification time,
/// its extended attributes.
fn look(p: &Path) -> (u32, u32, i64, i64, String) {
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let xattrs = Command::new("python3")
        .args([
            "-c",
            "import os, sys; print(sorted(os.listxattr(sys.argv[1])))",
        ])
        .arg(p)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .expect("python3");
    // A directory's time moves when orch itself writes in it (the state directory, `.git`):
    // there only whether it was set to the epoch counts.
    let (secs, nanos) = if m.is_dir() {
        (i64::from(m.mtime() == 0), 0)
    } else {
        (m.mtime(), m.mtime_nsec())
    };
    (m.mode(), m.gid(), secs, nanos, xattrs)
}

/// The manifest: plan `b` (one task, writes `b.txt`), then plan `a` (after `b`), whose agent and
/// whose check run the hostile script against `targets`, writing their findings under `out`.
fn manifest(repo: &Repo, out: &Path, targets: &[PathBuf]) {
    repo.write(
        "docs/plans/a.md",
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 Change what is not mine\n",
    );
    repo.write(
        "docs/plans/b.md",
        "# B\n\n## Phase 1: Work\n- [ ] 1.1 Work\n",
    );
    let hostile = |file: &str| {
        let mut argv = vec![
            "python3".to_string(),
            fixtures().join("hostile_modes.py").display().to_string(),
            out.join(file).display().to_string(),
        ];
        argv.extend(targets.iter().map(|t| t.display().to_string()));
        toml_array(&argv)
    };
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nsandbox = \"on\"\n\n\
             [agents.a]\ncommand = {}\nreport = \"exit\"\nsandbox_write = [{:?}]\n\n\
             [agents.b]\ncommand = [\"sh\", \"-c\", \"echo b > b.txt\"]\nreport = \"exit\"\n\n\
             [[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\nagent = \"b\"\n\n\
             [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\nagent = \"a\"\n\
             depends_on = [\"b\"]\ncheck = {}\n",
            hostile("agent.txt"),
            out.display().to_string(),
            hostile("check.txt"),
        ),
    );
    repo.commit_all("plans");
}

/// Runs the attack (as `nobody` when `as_nobody`) and checks what a user cares about.
fn attack(as_nobody: bool) {
    let repo = Repo::builder().identity_in_config().build();
    let out = repo.outside("findings");
    std::fs::create_dir_all(&out).expect("findings");
    // orch runs from a copy of its own here: a `chmod 000` that worked would not stop the other
    // tests' binary.
    let bin = repo.outside("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let orch = bin.join("orch");
    std::fs::copy(env!("CARGO_BIN_EXE_orch"), &orch).expect("copy orch");
    let victim = repo.outside("victim.txt");
    std::fs::write(&victim, "outside\n").expect("victim");
    let targets = vec![
        repo.worktree("b"),
        repo.worktree("b").join("docs/plans/b.md"),
        repo.root().join("plans.toml"),
        repo.root().join(".orch/state"),
        orch.clone(),
        repo.root().join(".git"),
        victim.clone(),
    ];
    manifest(&repo, &out, &targets);
    if as_nobody {
        chown_nobody(repo.root());
        chown_nobody(repo.home());
    }
    // Plan b's worktree first (its plan runs first: a waits for it), then the snapshot.
    let mut first = Command::new(&orch);
    first.args(["up", "b"]);
    let (code, o, e) = run_as(&repo, first, as_nobody);
    assert_eq!(code, 0, "orch up b\n{o}\n{e}");
    let before: Vec<_> = targets.iter().map(|t| look(t)).collect();
    let mut up = Command::new(&orch);
    up.args(["up", "--json"]);
    let (code, o, e) = run_as(&repo, up, as_nobody);
    assert_eq!(code, 0, "orch up\n{o}\n{e}");
    for (who, file) in [("agent", "agent.txt"), ("check", "check.txt")] {
        let text = std::fs::read_to_string(out.join(file))
            .unwrap_or_else(|e| panic!("{who} wrote no findings: {e}\n{o}\n{e}"));
        let mut tried = 0;
        for line in text.lines().filter(|l| l.starts_with('t')) {
            tried += 1;
            let mut it = line.splitn(3, ' ');
            let (name, verdict, detail) = (it.next(), it.next(), it.next());
            assert_eq!(verdict, Some("denied"), "{who}: {line}\n{text}");
            let detail = detail.unwrap_or("");
            assert!(
                ["Read-only", "Permission_denied", "Operation_not_permitted"]
                    .iter()
                    .any(|d| detail.contains(d)),
                "{who}: {name:?} {detail}"
            );
        }
        assert_eq!(
            tried,
            8 * targets.len(),
            "{who}: every way on every target\n{text}"
        );
        assert!(
            text.lines().any(|l| l == "own-chmod allowed -"),
            "{who}: its own file could not be made executable\n{text}"
        );
    }
    for (t, b) in targets.iter().zip(&before) {
        assert_eq!(&look(t), b, "{} changed", t.display());
    }
    assert_eq!(repo.task("a", "1.1")["status"], "completed");
    assert_eq!(repo.task("b", "1.1")["status"], "completed");
    // Its own `chmod +x` landed as an executable file.
    let entry = git(&repo, &["ls-tree", "plan/a", "tool.sh"]);
    assert!(entry.starts_with("100755 "), "{entry}");
    // Plan b's worktree is still b's to work in: the next task of b runs there and lands.
    repo.write(
        "docs/plans/b.md",
        "# B\n\n## Phase 1: Work\n- [x] 1.1 Work\n- [ ] 1.2 More\n",
    );
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "b: one more"]);
    if as_nobody {
        chown_nobody(repo.root());
    }
    let mut again = Command::new(&orch);
    again.args(["up", "b"]);
    let (code, o, e) = run_as(&repo, again, as_nobody);
    assert_eq!(code, 0, "orch up b again\n{o}\n{e}");
    assert_eq!(repo.task("b", "1.2")["status"], "completed");
}

/// Git at the repository's root, whoever owns it now.
fn git(repo: &Repo, args: &[&str]) -> String {
    let mut all = vec!["-c", "safe.directory=*"];
    all.extend_from_slice(args);
    repo.git(&all)
}

/// Hands `dir` (and all it holds) to `nobody`.
fn chown_nobody(dir: &Path) {
    let st = Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(dir)
        .status()
        .expect("chown");
    assert!(st.success());
}

/// Runs `cmd` in the repository as a user runs it (as `nobody` when `as_nobody`).
fn run_as(repo: &Repo, cmd: Command, as_nobody: bool) -> (i32, String, String) {
    let mut cmd = cmd;
    if as_nobody {
        let program = cmd.get_program().to_owned();
        let args: Vec<_> = cmd.get_args().map(ToOwned::to_owned).collect();
        cmd = Command::new("setpriv");
        cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(program)
            .args(args);
    }
    cmd.current_dir(repo.root())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", repo.home())
        .env("PWD", repo.root())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    repo.run_cmd(&mut cmd)
}

#[test]
fn modes_a_confined_agent_and_its_check_change_nothing_they_may_not_write() {
    if !landlock() {
        return;
    }
    attack(false);
}

#[test]
fn modes_the_same_as_a_user_who_is_not_root() {
    if !landlock() {
        return;
    }
    let setpriv = Path::new("/usr/bin/setpriv").exists() || Path::new("/bin/setpriv").exists();
    if !(setpriv && nix::unistd::geteuid().is_root()) {
        eprintln!("skipped: not root, or no setpriv");
        return;
    }
    attack(true);
}
