//! Confinement where the kernel has no Landlock, end to end through a real `orch up`: the run is
//! started under `tests/fixtures/no_landlock.py`, a seccomp filter that makes the landlock system
//! calls fail with ENOSYS (as on a kernel built without it) for orch and everything it starts.
//! `sandbox = "on"` refuses to start the agent (exit 6, the reason and the fix, nothing run);
//! `"auto"` runs it unconfined, with one warning and `"sandbox": "unavailable"` in the
//! `run_started` event and `orch status --json`.

use crate::support;

use std::process::{Command, Stdio};

use serde_json::Value;
use support::{Repo, fixtures, one_task, toml_array};

/// `orch ARGS` in `repo` as [`Repo::orch`] runs it, under the no-Landlock filter, with
/// `ORCH_SANDBOX=mode`.
fn orch_without_landlock(repo: &Repo, mode: &str, args: &[&str]) -> Command {
    let script = fixtures().join("../no_landlock.py");
    let mut c = Command::new("python3");
    support::in_dir(&mut c, repo.root())
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_orch"))
        .args(args)
        .env_clear()
        .env("PWD", repo.root())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", repo.home())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("ORCH_SANDBOX", mode)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// A repository with plan `p` of one task whose agent writes `out.txt` and exits 0.
fn repo() -> Repo {
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/p.md", &one_task("P", "Write out.txt"));
    repo.manifest(
        &toml_array(&["sh", "-c", "echo done > out.txt"]),
        "report = \"exit\"",
        "retries = 0",
        &[("p", "")],
    );
    repo.commit_all("plans");
    repo
}

/// The filter works: under it, the kernel confines nothing (orch's own probe says so).
fn filter_works(repo: &Repo) {
    let (code, out, err) = repo.run_cmd(&mut orch_without_landlock(
        repo,
        "on",
        &["sandbox-exec", "--write", "/tmp", "--", "true"],
    ));
    assert_ne!(
        code, 0,
        "sandbox-exec confined under the filter\n{out}{err}"
    );
    assert!(err.contains("does not enforce Landlock"), "{err}");
}

#[test]
fn sandbox_on_without_landlock_refuses_to_start_the_agent() {
    let repo = repo();
    filter_works(&repo);
    let before = repo.rev("main");
    let (code, out, err) = repo.run_cmd(&mut orch_without_landlock(&repo, "on", &["up"]));
    assert_eq!(code, 6, "exit 6 (agent)\n{out}\n{err}");
    assert!(
        err.contains(
            "must run confined (`sandbox = \"on\"`), but this kernel does not support Landlock"
        ),
        "{err}"
    );
    assert!(err.contains("or set `sandbox = \"auto\"`"), "{err}");
    // Refused before anything was made: no branch, no worktree, no status file.
    assert_eq!(repo.rev("main"), before);
    assert!(!repo.git_ok(&["rev-parse", "--verify", "-q", "plan/p"]));
    assert!(!repo.root().join(".orch/worktrees/p").exists());
    assert!(!repo.root().join(".orch/state/p").exists());
}

#[test]
fn sandbox_auto_without_landlock_runs_unconfined_and_says_so() {
    let repo = repo();
    let (code, out, err) =
        repo.run_cmd(&mut orch_without_landlock(&repo, "auto", &["up", "--json"]));
    assert_eq!(code, 0, "{out}\n{err}");
    // One warning line, at the start.
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("cannot confine agents (no Landlock)"))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains('p'), "{err}");
    let ev = support::events(&out);
    let started = ev
        .iter()
        .find(|e| e["event"] == "run_started")
        .unwrap_or_else(|| panic!("no run_started: {out}"));
    assert_eq!(started["sandbox"], "unavailable", "{started}");
    // Unconfined, the task ran and is committed.
    assert_eq!(repo.task("p", "1.1")["status"], "completed");
    assert_eq!(repo.git(&["show", "plan/p:out.txt"]).trim(), "done");
    let (code, out, _) = repo.run(&["status", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).expect("json");
    let text = v.to_string();
    assert!(text.contains("\"sandbox\":\"unavailable\""), "{v}");
}

/// `orch merge`'s verify runs the agents' code: without Landlock, `sandbox = "on"` refuses it
/// (exit 6, nothing moved), `"auto"` runs it unconfined with a warning.
#[test]
fn the_verify_of_orch_merge_follows_the_agents_sandbox_without_landlock() {
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/p.md", &one_task("P", "Write out.txt"));
    repo.manifest(
        &toml_array(&["sh", "-c", "echo done > out.txt"]),
        "report = \"exit\"",
        "retries = 0\nverify = [\"test\", \"-f\", \"out.txt\"]\nintegrate = \"off\"",
        &[("p", "")],
    );
    repo.commit_all("plans");
    repo.up(&[]);
    filter_works(&repo);
    let main = repo.rev("main");

    let (code, out, err) = repo.run_cmd(&mut orch_without_landlock(&repo, "on", &["merge", "p"]));
    assert_eq!(code, 6, "{out}\n{err}");
    assert!(
        err.contains("the verify command runs the work of agent `a`, which must run confined"),
        "{err}"
    );
    assert_eq!(repo.rev("main"), main, "nothing moved");

    let (code, out, err) = repo.run_cmd(&mut orch_without_landlock(&repo, "auto", &["merge", "p"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("warning: this kernel cannot confine processes (no Landlock): the verify command runs the agents' code unconfined"),
        "{err}"
    );
    assert_eq!(repo.rev("main^1"), main, "merged");
}
