//! A `[[host]]` that lies, against real `sshd` servers on loopback (`support::sshd`). What comes
//! back from a host (its snapshot bundles and the refs in them, its frames, its reports, its exit
//! status, its output, its answer to orch's hash check) is untrusted input: the host is a machine
//! the lead does not control. The seam: the host's own `git`, first on its sessions' `PATH`,
//! answers orch's check of its copy (`git hash-object <dir>/bin/orch-<id>`) with the expected id,
//! so that what runs there as orch is `tests/fixtures/hostile_host.py`, which speaks orch's frames
//! and answers each attempt as its plan's name says. For each lie: nothing of it lands on any
//! branch, the task's status says it failed and why, and the run goes on (an honest plan beside
//! them completes).

use crate::support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use support::{Repo, sshd};

/// A plan of `n` tasks.
fn plan(n: usize) -> String {
    let mut text = String::from("# Plan\n\n## Phase 1: One\n");
    for i in 1..=n {
        text.push_str(&format!("- [ ] 1.{i} Step {i}\n"));
    }
    text
}

/// The host's `git`: it says any `<dir>/bin/orch-<id>` has the id `<id>`.
const LYING_GIT: &str = "#!/bin/sh\n\
    if [ \"$1\" = hash-object ]; then for a; do f=$a; done\n\
    case \"$f\" in */bin/orch-*) echo \"${f##*/orch-}\"; exit 0 ;; esac; fi\n\
    exec /usr/bin/git \"$@\"\n";

/// Two hosts whose sessions run the lying `git`, each with the hostile program where the lead
/// runs orch's copy.
fn lying_lab() -> sshd::Lab {
    let tools = tempfile::tempdir().expect("tmp").keep();
    let git = tools.join("git");
    std::fs::write(&git, LYING_GIT).expect("git");
    std::fs::set_permissions(&git, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let lab = sshd::Lab::start_with(
        &["h1", "h2"],
        &format!(
            "SetEnv PATH={}:/usr/local/bin:/usr/bin:/bin",
            tools.display()
        ),
    );
    let id = String::from_utf8(
        std::process::Command::new("git")
            .args(["hash-object", "--", env!("CARGO_BIN_EXE_orch")])
            .output()
            .expect("git hash-object")
            .stdout,
    )
    .expect("utf-8")
    .trim()
    .to_string();
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile_host.py");
    for s in &lab.servers {
        let bin = s.dir.join("bin");
        std::fs::create_dir_all(&bin).expect("bin");
        let at = bin.join(format!("orch-{id}"));
        std::fs::copy(&program, &at).expect("copy the hostile program");
        std::fs::set_permissions(&at, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // What answers `orch host-probe` there: the real orch (the lies are in the attempts).
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_orch"), bin.join("real-orch"))
            .expect("the real orch beside it");
    }
    lab
}

/// A repository with one plan per variant (`(name, tasks, extra keys)`), run on the lab's hosts.
fn repo_of(lab: &sshd::Lab, plans: &[(&str, usize, &str)]) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    let mut toml = format!(
        "{}[defaults]\nexecutor = \"ssh\"\nnetwork = \"open\"\nmax_agents = 8\nretries = 0\nagent = \"a\"\nlog_max = \"1MiB\"\n\n\
         [agents.a]\ncommand = [\"sh\", \"-c\", \"exit 0\"]\nreport = \"orch\"\n",
        lab.host_toml(4)
    );
    for (name, tasks, extra) in plans {
        repo.write(&format!("docs/plans/{name}.md"), &plan(*tasks));
        toml.push_str(&format!(
            "\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\n{extra}\n"
        ));
    }
    repo.write("plans.toml", &toml);
    repo.write("src/lib.txt", "lib\n");
    repo.commit_all("plans");
    repo
}

fn up(repo: &Repo, lab: &sshd::Lab, sandbox: &str) -> (i32, String, String) {
    let mut cmd = repo.orch(&["up", "--json"]);
    cmd.env("PATH", lab.path())
        .env("ORCH_SANDBOX", sandbox)
        .env_remove("ORCH_NETWORK");
    repo.run_cmd(&mut cmd)
}

/// What the task's entry in the status file says (its status and error).
fn said(repo: &Repo, plan: &str, id: &str) -> String {
    if !repo.status_path(plan).exists() {
        return format!("no status file for plan `{plan}`");
    }
    let t = repo.task(plan, id);
    format!("{} {} {}", t["status"], t["error"], t["reason"])
}

/// The log of a plan's task 1.1.
fn log_of(repo: &Repo, plan: &str) -> String {
    std::fs::read_to_string(repo.root().join(format!(".orch/logs/{plan}/1.1.log")))
        .unwrap_or_default()
}

/// The refs whose history has a commit that touches `file`, if any.
fn refs_with(repo: &Repo, file: &str) -> Option<Vec<String>> {
    let log = repo.git(&["log", "--all", "--format=%H", "--", file]);
    let mut refs: Vec<String> = log
        .lines()
        .flat_map(|c| {
            repo.git(&["for-each-ref", "--contains", c, "--format=%(refname)"])
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    refs.sort();
    refs.dedup();
    (!log.is_empty()).then_some(refs)
}

/// Each lie a host can tell about the work: a commit off the recorded base (another history,
/// none, the base's parent), two commits, a merge, changes to protected files (plans.toml, its
/// plan file, a client's settings, one under a path its own `.gitignore` ignores,
/// `.gitmodules`), a path outside the plan's `paths`, a gitlink,
/// a link standing for a client's settings directory, a `.git` tree, a git directory under
/// another name (`HEAD`, `objects/`, `refs/`; `HEAD` and `commondir`), a snapshot under another
/// attempt's ref, a frame naming another commit than its bundle's. Run with the sandbox on and
/// off: these are orch's own checks.
#[test]
fn a_hosts_lies_about_the_work_never_land_and_the_run_goes_on() {
    if !sshd::available() {
        return;
    }
    let lab = lying_lab();
    let refused: &[(&str, usize, &str)] = &[
        ("offbase", 1, ""),
        ("rootless", 1, ""),
        ("parent", 1, ""),
        ("two", 1, ""),
        ("merge", 1, ""),
        ("plans", 1, ""),
        ("planfile", 1, ""),
        ("client", 1, ""),
        ("ignored", 1, ""),
        ("gitmodules", 1, ""),
        ("paths", 1, "paths = [\"src/\"]"),
        ("gitlink", 1, ""),
        ("symlink", 1, ""),
        ("dotgit", 1, ""),
        ("baregit", 1, ""),
        ("commondir", 1, ""),
        ("wrongref", 1, ""),
        ("lieid", 1, ""),
    ];
    let mut bad = Vec::new();
    for sandbox in ["on", "off"] {
        let mut plans = vec![("honest", 1, ""), ("refs", 1, "")];
        plans.extend_from_slice(refused);
        let repo = repo_of(&lab, &plans);
        let main = repo.git(&["rev-parse", "main"]);
        let (code, out, err) = up(&repo, &lab, sandbox);
        assert_ne!(code, 0, "{sandbox}: stdout:\n{out}\nstderr:\n{err}");
        // The run went on: the honest host's work landed on its plan branch here.
        assert_eq!(
            repo.statuses("honest"),
            vec![("1.1".to_string(), "completed".to_string())],
            "{sandbox}: {err}\n{}",
            log_of(&repo, "honest")
        );
        assert_eq!(
            repo.git(&["show", "plan/honest:work.txt"]),
            "honest 1.1",
            "{sandbox}"
        );
        // A bundle's other refs wrote nothing here: only its snapshot was taken.
        let status = said(&repo, "refs", "1.1");
        if !status.starts_with("\"completed\"") {
            bad.push(format!(
                "{sandbox} refs: {status}\n{}",
                log_of(&repo, "refs")
            ));
        }
        let refs = repo.git(&["for-each-ref", "--format=%(refname)"]);
        for planted in ["refs/tags/v9", "refs/orch/attempts/planted"] {
            if refs.contains(planted) {
                bad.push(format!("{sandbox}: {planted} written: {refs}"));
            }
        }
        // Each lie failed its task, saying why, and nothing of it is on a branch (nor under
        // any other ref).
        for (name, why) in [
            ("offbase", "parents are not the attempt"),
            ("rootless", "parents are not the attempt"),
            ("parent", "parents are not the attempt"),
            ("two", "parents are not the attempt"),
            ("merge", "parents are not the attempt"),
            ("wrongref", "snapshot is refused"),
            ("lieid", "snapshot is refused"),
            ("dotgit", "snapshot is refused"),
            ("plans", "protected"),
            ("planfile", "protected"),
            ("client", "protected"),
            ("ignored", "protected"),
            ("gitmodules", "protected"),
            ("paths", "outside the plan"),
            ("gitlink", "nested git repository"),
            ("baregit", "nested git repository: `.hid/gd`"),
            ("commondir", "nested git repository: `vendor/wt`"),
            ("symlink", "protected"),
        ] {
            let status = said(&repo, name, "1.1");
            let log = log_of(&repo, name);
            if !status.starts_with("\"failed\"") || !(status.contains(why) || log.contains(why)) {
                bad.push(format!("{sandbox} {name}: {status} (not `{why}`)\n{log}"));
            }
            // A plan whose branch was never made did not run at all: the run's own words say
            // why (seen once in CI, not reproduced since).
            let branch = format!("plan/{name}");
            if !repo
                .git_out(&["rev-parse", "--verify", "--quiet", &branch])
                .status
                .success()
            {
                bad.push(format!(
                    "{sandbox} {name}: never started (no `{branch}`); exit {code}\nstdout:\n{out}\nstderr:\n{err}"
                ));
                continue;
            }
            let subjects = repo.subjects(&branch);
            if !subjects.is_empty() {
                bad.push(format!("{sandbox} {name}: landed {subjects:?}"));
            }
        }
        if repo.git(&["rev-parse", "main"]) != main {
            bad.push(format!("{sandbox}: main moved"));
        }
        // What orch took and refused is kept as its record of the attempt (under
        // `refs/orch/remote/` and `refs/orch/attempts/`), never on a branch or a tag; a snapshot
        // the driver refused is under no ref at all.
        for file in [
            "planted.txt",
            ".claude/settings.json",
            ".gitmodules",
            "elsewhere/x.txt",
            "vendor/lib",
            "hooks/settings.json",
        ] {
            let Some(refs) = refs_with(&repo, file) else {
                continue;
            };
            let elsewhere: Vec<&String> = refs
                .iter()
                .filter(|r| {
                    !r.starts_with("refs/orch/attempts/") && !r.starts_with("refs/orch/remote/")
                })
                .collect();
            if !elsewhere.is_empty() {
                bad.push(format!("{sandbox}: {file} under {elsewhere:?}"));
            }
        }
        for name in [
            "offbase", "rootless", "parent", "two", "merge", "wrongref", "lieid", "dotgit", "paths",
        ] {
            let kept = repo.git(&[
                "for-each-ref",
                "--format=%(refname)",
                &format!("refs/orch/remote/{name}/"),
                "refs/orch/incoming/",
            ]);
            if !kept.is_empty() {
                bad.push(format!(
                    "{sandbox} {name}: a refused snapshot kept under {kept}"
                ));
            }
        }
        if !bad.is_empty() {
            let tail: String = err
                .chars()
                .rev()
                .take(3000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            bad.push(format!("{sandbox}: orch up's stderr ends:\n{tail}"));
        }
        for (file, text) in [
            ("plans.toml", "host was here"),
            ("docs/plans/planfile.md", "Planted by the host"),
        ] {
            if repo
                .git(&["log", "--branches", "--tags", "-p", "--", file])
                .contains(text)
            {
                bad.push(format!("{sandbox}: {file} changed on a branch"));
            }
        }
    }
    assert!(!Path::new("/tmp/owned").exists());
    assert!(bad.is_empty(), "{}", bad.join("\n---\n"));
}

/// Each lie a host can tell about the attempt: reports of another task's and another plan's done,
/// success without any snapshot, a report without its snapshot, snapshots without reports, an
/// exit status that is no number, a frame of more than orch takes, output without end (its log
/// bounded by `log_max`, the plan's timeout ends it).
#[test]
fn a_hosts_lies_about_the_attempt_are_refused_and_bounded() {
    if !sshd::available() {
        return;
    }
    let lab = lying_lab();
    let refused: &[(&str, usize, &str)] = &[
        ("nowork", 1, ""),
        ("reportfirst", 1, ""),
        ("many", 1, ""),
        ("badexit", 1, ""),
        ("huge", 1, ""),
        ("endless", 1, "timeout = \"20s\""),
    ];
    let mut plans = vec![("honest", 1, ""), ("others", 2, "")];
    plans.extend_from_slice(refused);
    let repo = repo_of(&lab, &plans);
    let main = repo.git(&["rev-parse", "main"]);
    let (code, out, err) = up(&repo, &lab, "off");
    assert_ne!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        repo.statuses("honest"),
        vec![("1.1".to_string(), "completed".to_string())],
        "{err}"
    );
    let mut bad = Vec::new();
    // Neither task of `others` is done by the other's claim.
    for id in ["1.1", "1.2"] {
        let status = said(&repo, "others", id);
        if !status.starts_with("\"failed\"") {
            bad.push(format!("others {id}: {status}"));
        }
    }
    for (name, why) in [
        ("others", "exit status 1"),
        ("nowork", "without its snapshot"),
        ("reportfirst", "without its snapshot"),
        ("many", "two snapshots"),
        ("badexit", "exit status 1"),
        ("huge", "bytes (at most"),
        ("endless", "timed out"),
    ] {
        let status = said(&repo, name, "1.1");
        let log = log_of(&repo, name);
        if !status.starts_with("\"failed\"") || !(status.contains(why) || log.contains(why)) {
            let head: String = log.chars().take(3000).collect();
            bad.push(format!("{name}: {status} (not `{why}`)\n{head}"));
        }
        let subjects = repo.subjects(&format!("plan/{name}"));
        if !subjects.is_empty() {
            bad.push(format!("{name}: landed {subjects:?}"));
        }
    }
    // The endless output is kept within `log_max` (1 MiB, with orch's own lines).
    let log = repo.root().join(".orch/logs/endless/1.1.log");
    let size = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    if !(size > 0 && size < 1024 * 1024 + 64 * 1024) {
        bad.push(format!("endless: a log of {size} bytes"));
    }
    if repo.git(&["rev-parse", "main"]) != main {
        bad.push("main moved".into());
    }
    assert!(bad.is_empty(), "{}", bad.join("\n---\n"));
}
