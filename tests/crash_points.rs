//! Crashes at chosen points: `orch up` killed with SIGKILL (or a supervisor that dies) exactly
//! between two steps the random harness of `tests/crash.rs` once found unsafe — a task's commit
//! and its record, an agent's report and its answer, an adopted agent's children, a worktree's
//! checkout — then run again: every task is recorded once, with one commit, and nothing is lost.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{
    Repo, agent, agents_of, journal_whole_lines as journal, kill, process_alive, read_status,
    wait_for, wait_within,
};

const TIMEOUT: Duration = Duration::from_secs(120);

/// Waits for `child` with the deadline of these tests.
fn wait(child: std::process::Child) -> std::process::Output {
    wait_within(child, TIMEOUT, "orch")
}

/// A repository with `README.md`.
fn new_repo() -> Repo {
    Repo::builder().timeout(TIMEOUT).build()
}
/// A repository with plan `p` (`text`) run by `gated_report.sh`, which holds the report of task
/// 1.1 until the gate file exists; with the journal's and the gate's paths.
fn gated_plan_p(text: &str) -> (Repo, PathBuf, PathBuf) {
    plan_p(text, "gated_report.sh", |journal, gate| {
        vec![
            journal.to_string(),
            "0".into(),
            "1.1".into(),
            gate.to_string(),
        ]
    })
}

/// A repository with plan `p` (`text`) run by the fixture `script`, whose arguments `args` makes
/// from the journal's and the gate's paths; with those paths.
fn plan_p(
    text: &str,
    script: &str,
    args: impl Fn(&str, &str) -> Vec<String>,
) -> (Repo, PathBuf, PathBuf) {
    let repo = new_repo();
    let journal_path = repo.outside("journal");
    let gate = repo.outside("gate");
    repo.write("docs/plans/p.md", text);
    let args = args(
        journal_path.to_str().expect("utf8"),
        gate.to_str().expect("utf8"),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"a\"\nretries = 0\n\n[agents.a]\ncommand = {}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n",
            agent(script, &args)
        ),
    );
    repo.commit_all("plans");
    (repo, journal_path, gate)
}

/// `orch up` started in `repo`, its output discarded.
fn start_up(repo: &Repo) -> std::process::Child {
    repo.orch(&["up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn")
}

/// Regression (found by the harness): a supervisor killed between a task's commit and its record
/// left the task `in_progress` with its agent gone; the next run reset it and ran it again, and
/// the branch got a second commit for the task. Now the commit at HEAD is recorded instead.
#[test]
fn a_commit_made_but_not_recorded_before_a_kill_is_recorded_not_made_again() {
    let (repo, journal_path, gate) =
        gated_plan_p("# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two (depends: 1.1)\n");
    let mut first = start_up(&repo);
    wait_for("the agent of 1.1 to start", || {
        journal(&journal_path).iter().any(|m| m.start)
    });
    let agent_pid = journal(&journal_path)
        .iter()
        .find(|m| m.start)
        .expect("started")
        .pid;
    // The supervisor has recorded the start (the state a kill after the commit would find).
    let status = repo.status_path("p");
    wait_for("1.1 to be recorded as started", || {
        read_status(&status).is_some_and(|d| d["tasks"][0]["status"] == "in_progress")
    });
    // The supervisor and the agent die; the task's work was committed, not recorded.
    first.kill().expect("kill -9");
    let _ = first.wait();
    kill("KILL", agent_pid);
    // Its children (a `sleep`) too: a live one would be adopted as the agent.
    wait_for("the agent to die", || {
        !process_alive(agent_pid) && agents_of(repo.root()).is_empty()
    });
    let tree = repo.root().join(".orch/worktrees/p");
    std::fs::write(tree.join("p.txt"), "1.1\n").expect("work");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .current_dir(&tree)
            .args(args)
            .env("HOME", repo.home())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "orch")
            .env("GIT_AUTHOR_EMAIL", "orch@localhost")
            .env("GIT_COMMITTER_NAME", "orch")
            .env("GIT_COMMITTER_EMAIL", "orch@localhost")
            .output()
            .expect("git");
        assert!(out.status.success(), "{out:?}");
    };
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "p 1.1: One"]);
    std::fs::write(&gate, "go").expect("gate");

    let out = wait(repo.orch(&["up"]).spawn().expect("spawn"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: One", "p 1.2: Two"]);
    let starts: Vec<String> = journal(&journal_path)
        .iter()
        .filter(|m| m.start)
        .map(|m| m.task.clone())
        .collect();
    assert_eq!(starts, ["1.1", "1.2"], "1.1 ran again");
}

/// A task's commit is recorded with the plan's next status write, so a supervisor killed in
/// between can leave several commits unrecorded, the later ones over the earlier: the next run
/// finds each task's commit on the branch (not only at HEAD) and records it, and makes none again.
#[test]
fn commits_left_unrecorded_behind_head_are_recorded_not_made_again() {
    let repo = new_repo();
    let journal_path = repo.outside("journal");
    repo.commit_plan_p(
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two\n- [ ] 1.3 Three\n",
        &agent("ok.sh", &[journal_path.to_str().expect("utf8")]),
        "",
        "",
    );
    repo.up(&[]);
    let subjects = ["p 1.1: One", "p 1.2: Two", "p 1.3: Three"];
    assert_eq!(repo.subjects("plan/p"), subjects);
    let recorded = |doc: &Value| -> Vec<Option<String>> {
        doc["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .map(|e| e["commit"].as_str().map(str::to_string))
            .collect()
    };
    let before = recorded(&repo.status_file("p"));
    assert!(before.iter().all(Option::is_some), "{before:?}");
    // What a kill after the commits of 1.2 and 1.3 and before their records leaves: both
    // reported done by their agents, neither commit in the file.
    let path = repo.status_path("p");
    let mut doc = repo.status_file("p");
    for e in doc["tasks"]
        .as_array_mut()
        .expect("tasks")
        .iter_mut()
        .skip(1)
    {
        e.as_object_mut().expect("entry").remove("commit");
    }
    std::fs::write(&path, serde_json::to_string_pretty(&doc).expect("json")).expect("write");
    // And what an agent of another task killed with it left in the tree: the commits are
    // still the tasks' own (made since they completed), not made again with that work.
    let tree = repo.root().join(".orch/worktrees/p");
    std::fs::write(tree.join("half-done.txt"), "left by a killed agent\n").expect("write");

    repo.up(&[]);

    assert_eq!(
        repo.subjects("plan/p"),
        subjects,
        "a task was committed again"
    );
    assert_eq!(recorded(&repo.status_file("p")), before);
    let starts = journal(&journal_path).iter().filter(|m| m.start).count();
    assert_eq!(starts, 3, "a task ran again");
}

/// Regression (found by the harness): a supervisor killed after its last task's agent reported
/// `task done` but before the commit left every task finished, so the next run skipped the plan
/// and the work was never committed. Now a plan owed a commit gets its worktree back and the commit.
#[test]
fn a_report_made_after_the_supervisor_died_still_gets_its_commit() {
    let (repo, journal_path, gate) = gated_plan_p("# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n");
    let mut first = start_up(&repo);
    wait_for("the agent of 1.1 to start", || {
        journal(&journal_path).iter().any(|m| m.start)
    });
    first.kill().expect("kill -9");
    let _ = first.wait();
    // The agent finishes and reports with no supervisor to commit its work.
    std::fs::write(&gate, "go").expect("gate");
    wait_for("the agent of 1.1 to finish", || {
        journal(&journal_path).iter().any(|m| !m.start)
    });

    let out = wait(repo.orch(&["up"]).spawn().expect("spawn"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: One"]);
    assert_eq!(repo.git(&["show", "plan/p:p.txt"]), "1.1");
    assert_eq!(journal(&journal_path).iter().filter(|m| m.start).count(), 1);
}

/// Holds the lock of status file `status` as a supervisor writing it would, where orch takes it
/// (in its private directory, out of the agents' reach: `orch::sandbox::private_lock_path`), and
/// returns it. The file is orch's own, made when it first wrote the status file.
fn hold_status_lock(status: &Path) -> std::fs::File {
    let path =
        orch::sandbox::private_lock_path(&PathBuf::from(format!("{}.lock", status.display())))
            .expect("the lock's place");
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("status lock `{}`: {e}", path.display()));
    lock.lock().expect("lock");
    lock
}

/// Opens the gate of the agent of 1.1 with the status file's lock held, so that the supervisor
/// takes the report and then waits for the lock to record it, and kills it there. The report
/// directory of attempt 1.
fn kill_after_taking(repo: &Repo, first: &mut std::process::Child, gate: &Path) -> PathBuf {
    let status = repo.status_path("p");
    wait_for("1.1 to be recorded as started", || {
        read_status(&status).is_some_and(|d| d["tasks"][0]["status"] == "in_progress")
    });
    let lock = hold_status_lock(&status);
    std::fs::write(gate, "go").expect("gate");
    let dir = repo.root().join(".orch/state/.reports/p/1.1.1");
    wait_for("the supervisor to take the report", || {
        dir.join("report.taken.json").exists()
    });
    first.kill().expect("kill -9");
    let _ = first.wait();
    drop(lock);
    assert!(
        !dir.join("answer.json").exists(),
        "the killed supervisor answered"
    );
    dir
}

/// `orch up --json` in `repo`, which must succeed well inside the two minutes `orch task` waits
/// for an answer.
fn up_within_the_wait_of_orch_task(repo: &Repo) -> std::process::Output {
    let out = wait_within(
        repo.orch(&["up", "--json"]).spawn().expect("spawn"),
        Duration::from_secs(60),
        "orch up",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Regression (found by the harness in CI): a supervisor killed after it took an agent's report
/// (`orch task done`) but before it answered left the agent waiting for an answer no one would
/// write; the next supervisor adopted the agent and waited with it two minutes, until the wait
/// of `orch task` ran out. Now the agent withdraws a report its supervisor took and did not
/// answer once it sees that supervisor gone, and a supervisor that adopts the agent first takes
/// the report again (the test below): either way it is applied once, at once.
#[test]
fn a_report_taken_by_a_supervisor_killed_before_its_answer_is_not_lost() {
    let (repo, journal_path, gate) = gated_plan_p("# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n");
    let mut first = start_up(&repo);
    kill_after_taking(&repo, &mut first, &gate);

    up_within_the_wait_of_orch_task(&repo);
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: One"]);
    let marks = journal(&journal_path);
    assert_eq!(marks.iter().filter(|m| m.start).count(), 1, "ran again");
    // `orch task done` exited 0: the script went on to its end.
    assert_eq!(marks.iter().filter(|m| !m.start).count(), 1, "no end");
    let doc = read_status(&repo.status_path("p")).expect("status");
    assert_eq!(doc["tasks"][0]["status"], "completed");
    assert!(agents_of(repo.root()).is_empty());
}

/// The same with an agent that writes its report file itself and never withdraws it: the next
/// supervisor adopts it, takes the report its predecessor took and did not answer, and answers.
#[test]
fn a_supervisor_that_adopts_an_agent_takes_again_the_report_its_predecessor_did_not_answer() {
    let (repo, journal_path, gate) = plan_p(
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n",
        "raw_report.sh",
        |journal, gate| vec![journal.to_string(), gate.to_string()],
    );
    let mut first = start_up(&repo);
    let dir = kill_after_taking(&repo, &mut first, &gate);

    let out = up_within_the_wait_of_orch_task(&repo);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"event\":\"task_adopted\""), "{stdout}");
    let answer: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.answer", journal_path.display())).expect("answer"),
    )
    .expect("json");
    assert_eq!(answer["code"], 0, "{answer}");
    assert_eq!(
        answer["seq"].as_str().map(|s| s.starts_with("raw-")),
        Some(true)
    );
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: One"]);
    assert_eq!(repo.git(&["show", "plan/p:p.txt"]), "1.1");
    let doc = read_status(&repo.status_path("p")).expect("status");
    assert_eq!(doc["tasks"][0]["status"], "completed");
    assert!(!dir.join("report.taken.json").exists());
    assert!(agents_of(repo.root()).is_empty());
}

/// Regression (found by the harness under load): at start-up a supervisor adopts an agent from
/// its records and stops whatever else claims, by its environment, to be an agent of the plan.
/// A short-lived child of the adopted agent (a `sleep`, a `git`: anything it runs) was seen by
/// that search, had exited by the time its ancestry was checked, so was taken for a stray, and
/// its process group (the agent's own) was killed: the task ran again beside nothing, its first
/// agent never ended. Each restart here adopts an agent that starts one child after another.
#[test]
fn an_adopted_agent_whose_children_come_and_go_is_never_stopped_as_a_stray() {
    let (repo, journal_path, gate) = plan_p(
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n",
        "busy_children.sh",
        |journal, gate| vec![journal.to_string(), gate.to_string()],
    );
    let mut first = start_up(&repo);
    wait_for("1.1 to be recorded as started", || {
        read_status(&repo.status_path("p"))
            .is_some_and(|d| d["tasks"][0]["status"] == "in_progress")
            && journal(&journal_path).iter().any(|m| m.start)
    });
    first.kill().expect("kill -9");
    let _ = first.wait();
    let agent_pid = journal(&journal_path)
        .iter()
        .find(|m| m.start)
        .expect("started")
        .pid;
    // Several supervisors in turn adopt it, each killed once it said so.
    for round in 0..5 {
        let mut next = repo.orch(&["up", "--json"]).spawn().expect("spawn orch");
        let lines = support::read_lines(&mut next);
        let mut seen = Vec::new();
        support::wait_line(&lines, &mut seen, |e| e["event"] == "task_adopted");
        next.kill().expect("kill -9");
        let _ = next.wait();
        assert!(
            process_alive(agent_pid),
            "round {round}: the adopted agent was stopped; events: {seen:?}"
        );
        assert!(
            !seen.iter().any(|e| e["message"]
                .as_str()
                .is_some_and(|m| m.contains("no record of"))),
            "round {round}: {seen:?}"
        );
    }
    std::fs::write(&gate, "go").expect("gate");
    let out = wait(repo.orch(&["up", "--json"]).spawn().expect("spawn orch"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let marks = journal(&journal_path);
    assert_eq!(marks.iter().filter(|m| m.start).count(), 1, "{marks:?}");
    assert!(
        marks.iter().any(|m| !m.start && m.pid == agent_pid),
        "the agent never ended: {marks:?}"
    );
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: One"]);
    let doc = read_status(&repo.status_path("p")).expect("status");
    assert_eq!(doc["tasks"][0]["status"], "completed");
    assert!(agents_of(repo.root()).is_empty());
}
/// The pid of a live process running `git … reset --hard` in `worktree`, if any.
fn checkout_of(worktree: &Path) -> Option<u32> {
    let want = format!("--work-tree={}", worktree.display());
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let words: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        let has = |w: &str| words.contains(&w.as_bytes());
        (has(&want) && has("reset") && has("--hard") && process_alive(pid)).then_some(pid)
    })
}

/// A `kill -9` of `orch up` while git checks out a plan's worktree: the git it started dies
/// with it (it would go on writing into the directory the next `orch up` clears, which then
/// failed "cannot remove stale worktree entry … Directory not empty"), and one more `orch up`
/// completes the plan. The checkout is held by a smudge filter of the repository's config (a
/// driver you configured: git then runs unconfined, and still dies with orch), for a plan
/// worktree and for a task worktree. Seen failing on main: the git of the killed orch was still
/// there, blocked in its checkout, when the deadline passed.
#[test]
fn a_kill_during_a_worktrees_checkout_takes_its_git_along_and_the_next_up_completes() {
    for parallel_tasks in ["", "parallel_tasks = 2\n"] {
        let repo = Repo::bare_minimum();
        let go = repo.root().join(".git/checkout.go");
        repo.git(&[
            "config",
            "filter.slow.smudge",
            &format!(
                "sh -c 'while [ ! -e {} ]; do sleep 0.05; done; cat'",
                go.display()
            ),
        ]);
        repo.git(&["config", "filter.slow.clean", "cat"]);
        repo.write(".gitattributes", "*.dat filter=slow\n");
        repo.write("data/a.dat", "payload\n");
        repo.write(
            "docs/plans/p.md",
            "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two\n",
        );
        repo.manifest(
            &support::toml_array(&["sh", "-c", "echo \"$ORCH_TASK\" > \"$ORCH_TASK.txt\""]),
            "",
            "retries = 0",
            &[("p", parallel_tasks)],
        );
        repo.commit_all("plans");
        let mut child = repo.orch(&["up", "--json"]).spawn().expect("spawn orch");
        let trees = repo.root().join(".orch/worktrees");
        let mut git = None;
        wait_for("a checkout held by the filter", || {
            git = std::fs::read_dir(&trees)
                .into_iter()
                .flatten()
                .flatten()
                .find_map(|e| checkout_of(&e.path()));
            git.is_some()
        });
        let git = git.expect("git");
        child.kill().expect("kill -9");
        let _ = child.wait();
        wait_for("the killed orch's git to end with it", || {
            !process_alive(git)
        });
        std::fs::write(&go, "").expect("go");
        let out = repo.up(&[]);
        for id in ["1.1", "1.2"] {
            assert_eq!(
                repo.git(&["show", &format!("plan/p:{id}.txt")]),
                id,
                "{parallel_tasks}: {out}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(repo.worktree("p").join("data/a.dat")).expect("a.dat"),
            "payload\n",
            "{parallel_tasks}"
        );
    }
}
