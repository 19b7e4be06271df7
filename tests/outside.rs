//! Tasks reported from outside while `orch up` runs: a person (or a script) marks a task done
//! with `orch task done` while an agent of the same plan is working in the worktree. History must
//! still map one to one onto tasks: the outside task gets its own commit, and the agent's
//! unfinished changes are not swept into it.

use crate::support;

use std::process::Stdio;
use std::time::Instant;

use support::{Repo, TIMEOUT, agent, landlock, read_status, try_task_in, wait};

/// A repository with plan `p` of two tasks in one phase, run by `write_then_gate.sh`: each
/// agent writes `<task>.txt`, notes `wrote <task>` in `journal` and waits for `gate` (both in the
/// returned directory). Its agents are confined (`sandbox = "on"`, the returned directory
/// writable): during `orch up` a person's `orch task done` of a task without a check is taken
/// only where no agent could have sent it.
fn gated_plan(first: &str, second: &str) -> (Repo, tempfile::TempDir) {
    let repo = Repo::new();
    let aside = tempfile::tempdir().expect("tempdir");
    let arg = |name: &str| aside.path().join(name).display().to_string();
    let command = agent("write_then_gate.sh", &[&arg("journal"), &arg("gate")]);
    repo.write(
        "docs/plans/p.md",
        &format!("# P\n\n## Phase 1: Work\n- [ ] {first}\n- [ ] {second}\n"),
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nmax_agents = 4\nretries = 0\nsandbox = \"on\"\nsandbox_write = [{:?}]\n\n\
             [agents.p-agent]\ncommand = {command}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"p-agent\"\n",
            aside.path().display().to_string()
        ),
    );
    repo.commit_all("plans");
    (repo, aside)
}

#[test]
fn a_task_done_from_outside_while_an_agent_works_does_not_take_the_agents_changes() {
    done_from_outside_while_an_agent_works(false);
}

/// As on a network filesystem, where no file event arrives: orch's one-second re-read of the
/// status files alone sees the report (`ORCH_WATCH=poll` turns the watcher off).
#[test]
fn a_report_is_seen_without_file_events_by_polling() {
    done_from_outside_while_an_agent_works(true);
}

fn done_from_outside_while_an_agent_works(poll: bool) {
    if !landlock() {
        return;
    }
    let (repo, aside) = gated_plan("1.1 Agent work", "1.2 Done by hand");
    let (journal, gate) = (aside.path().join("journal"), aside.path().join("gate"));
    let mut cmd = repo.orch(&["up", "--json"]);
    if poll {
        cmd.env("ORCH_WATCH", "poll");
    }
    let up = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn orch up");
    let deadline = Instant::now() + TIMEOUT;
    while !std::fs::read_to_string(&journal).is_ok_and(|j| j.contains("wrote 1.1")) {
        assert!(Instant::now() < deadline, "the agent of 1.1 did not start");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // 1.1's agent has written `1.1.txt` and is still working; 1.2 is reported from outside.
    let (code, _, err) = repo.run(&["task", "done", "1.2", "--plan", "p", "--note", "by hand"]);
    assert_eq!(code, 0, "{err}");
    // The supervisor commits 1.2 (the status file records it) before the agent finishes.
    let status = repo.root().join(".orch/state/p/status.json");
    let commit_of = |id: &str| -> Option<String> {
        let doc = read_status(&status)?;
        try_task_in(&doc, id)?["commit"]
            .as_str()
            .map(str::to_string)
    };
    let by_hand = loop {
        if let Some(c) = commit_of("1.2") {
            break c;
        }
        assert!(Instant::now() < deadline, "1.2 was not committed");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    std::fs::write(&gate, "go").expect("gate");
    let out = wait(up);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // 1.2's commit changes nothing; 1.1's commit has the agent's file.
    let changed = |rev: &str| repo.git(&["diff-tree", "--no-commit-id", "--name-only", "-r", rev]);
    assert_eq!(
        changed(&by_hand).trim(),
        "",
        "1.2 took files that are not its own"
    );
    let agent_commit = commit_of("1.1").expect("1.1 committed");
    assert_eq!(changed(&agent_commit).trim(), "1.1.txt");
    assert_eq!(repo.git(&["show", "plan/p:1.1.txt"]).trim(), "1.1");
    let subjects = repo.git(&["log", "--format=%s", "main..plan/p"]);
    assert_eq!(
        subjects.lines().collect::<Vec<_>>(),
        ["p 1.1: Agent work", "p 1.2: Done by hand"]
    );
}

/// Regression (found by the crash harness: a task's commit made twice). A task reported done
/// while no supervisor ran is committed by the next `orch up` in the plan's worktree; an agent of
/// the plan started meanwhile wrote into the tree being committed, so its file went into that
/// commit (or made the task look uncommitted and committed again). A commit in flight in a
/// shared worktree now takes the plan's slot: the next agent starts once it is made.
#[test]
fn a_task_done_while_no_supervisor_ran_is_committed_alone_before_the_next_agent_starts() {
    if !landlock() {
        return;
    }
    let (repo, aside) = gated_plan("1.1 First", "1.2 Second");
    let (journal, gate) = (aside.path().join("journal"), aside.path().join("gate"));
    // A first supervisor starts 1.1's agent, which writes `1.1.txt`, and is killed.
    let mut first = repo
        .orch(&["up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn orch up");
    let deadline = Instant::now() + TIMEOUT;
    while !std::fs::read_to_string(&journal).is_ok_and(|j| j.contains("wrote 1.1")) {
        assert!(Instant::now() < deadline, "the agent of 1.1 did not start");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    first.kill().expect("kill -9");
    let _ = first.wait();
    // The agent ends; more of 1.1's work (many files: a long commit) is in the worktree, and 1.1
    // is reported done with no supervisor running.
    std::fs::write(&gate, "go").expect("gate");
    let tree = repo.worktree("p");
    for n in 0..3000 {
        let dir = tree.join(format!("first/{}", n % 20));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(format!("{n}.txt")), format!("{n}\n")).expect("work");
    }
    let (code, _, err) = repo.run(&["task", "done", "1.1", "--plan", "p"]);
    assert_eq!(code, 0, "{err}");

    let out = wait(repo.orch(&["up"]).spawn().expect("spawn orch up"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: First", "p 1.2: Second"]);
    let first_files = repo.changed_files("plan/p~1");
    assert_eq!(first_files.len(), 3001, "{first_files:?}");
    assert!(
        first_files.contains(&"1.1.txt".to_string()),
        "{first_files:?}"
    );
    assert_eq!(repo.changed_files("plan/p"), ["1.2.txt"]);
}
