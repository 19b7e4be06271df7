//! Crash recovery: a restarted `orch up` finds a task whose agent is gone and takes a
//! commit `<plan> <id>: …` left clean in its task worktree as the task's work, which a supervisor
//! killed before landing it leaves there. An unconfined agent can make that commit itself, with
//! anything in it. Here it commits what the checks before a task's commit refuse, and the
//! supervisor is killed (SIGKILL) with the agent before it settles the task. The restart checks
//! the waiting commit as a normal completion is checked: the task is recorded failed with a cause
//! naming the check, the change never reaches the plan branch or `main`, and the agent's work is
//! saved under `refs/orch/attempts/`, not lost.

use std::path::Path;
use std::process::Stdio;

use crate::support::{
    self, Repo, agent_at, agents_of, kill, process_alive, read_status, wait_for, wait_within,
};

/// Plan `p` (one task, 1.1, task worktrees: `parallel_tasks = 2`) run by
/// `hostile_recovery_forge.sh` committing `what`, with the plan's extra keys `plan_keys`; the
/// agent writes its pid to `pid_file`. Returns main's tip.
fn setup(repo: &Repo, what: &str, plan_keys: &str, pid_file: &Path) -> String {
    repo.write("svc/a/main.txt", "a\n");
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Do it\n",
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"a\"\nretries = 0\nauto_merge = true\n\n\
             [agents.a]\ncommand = {}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nparallel_tasks = 2\n{plan_keys}",
            agent_at("hostile_recovery_forge.sh", &[pid_file, Path::new(what)])
        ),
    );
    repo.commit_all("plans");
    repo.rev("main")
}

/// Runs `orch up` until the agent made its forged commit and the task is recorded in progress,
/// then kills the supervisor and the agent with SIGKILL: what a crash between the agent's work
/// and its settlement leaves.
fn crash_after_the_forged_commit(repo: &Repo, pid_file: &Path) {
    let mut first = repo
        .orch(&["up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn orch up");
    let status = repo.status_path("p");
    wait_for("the agent's forged commit", || pid_file.exists());
    wait_for("1.1 to be recorded as started", || {
        read_status(&status).is_some_and(|d| d["tasks"][0]["status"] == "in_progress")
    });
    first.kill().expect("kill -9 orch up");
    let _ = first.wait();
    let pid: u32 = std::fs::read_to_string(pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    kill("KILL", pid);
    // A live agent would be adopted, not settled by the restart.
    wait_for("the agent to die", || {
        !process_alive(pid) && agents_of(repo.root()).is_empty()
    });
}

/// The restart after the crash: task 1.1 failed naming the check (`cause`), nothing of the
/// forged commit on `plan/p` or `main`, the agent's work saved under
/// `refs/orch/attempts/p/1.1/` (`forged`: a file of it and a line the agent wrote there).
fn recovered_and_refused(repo: &Repo, main: &str, forged: (&str, &str), cause: &str) {
    let task_tree_head = |repo: &Repo| {
        repo.git(&[
            "for-each-ref",
            "--format=%(subject)",
            "refs/heads/orch/task/p/",
        ])
    };
    assert_eq!(
        task_tree_head(repo),
        "p 1.1: Do it",
        "the forged commit waits on the task branch before the restart"
    );
    let out = wait_within(
        repo.orch(&["up", "--json"]).spawn().expect("spawn orch up"),
        repo.timeout(),
        "orch up (restart)",
    );
    let (code, out, err) = support::code_out_err(&out);
    let task = repo.task("p", "1.1");
    assert_eq!(
        task["status"], "failed",
        "exit {code}\n{task}\n{out}\n{err}"
    );
    let error = task["error"].as_str().unwrap_or_default();
    assert!(error.contains(cause), "{error}\n{out}\n{err}");
    assert!(task["commit"].is_null(), "{task}");
    assert_ne!(code, 0, "a failed task\n{out}\n{err}");
    let ev = support::events(&out);
    let notes = support::named(&ev, "note");
    assert!(
        notes.iter().any(|n| n["message"]
            .as_str()
            .is_some_and(|m| m.contains("1.1") && m.contains(cause))),
        "the restart says why the waiting commit was not landed: {notes:?}\n{err}"
    );
    // Nothing of it reached the plan branch or the target.
    assert_eq!(
        repo.rev("plan/p"),
        main,
        "the forged commit was landed\n{out}"
    );
    assert_eq!(repo.rev("main"), main, "main moved\n{out}");
    assert!(
        !repo
            .subjects("plan/p")
            .iter()
            .any(|s| s.starts_with("p 1.1:")),
        "{out}"
    );
    // The agent's work is saved, not lost: the change is in a saved commit.
    let saved = repo.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/orch/attempts/p/1.1/",
    ]);
    let (file, line) = forged;
    assert!(
        saved.lines().any(|r| {
            let out = repo.git_out(&["show", &format!("{r}:{file}")]);
            String::from_utf8_lossy(&out.stdout).contains(line)
        }),
        "the agent's work is not saved: {saved:?}\n{out}\n{err}"
    );
}

/// (a) A sparse plan (`paths = ["svc/a"]`): the forged commit adds `lib/evil.txt`, outside its
/// paths. The outside-the-paths check of a normal completion refuses it.
#[test]
fn recovery_a_forged_commit_outside_the_paths_waiting_in_a_task_worktree_is_not_landed() {
    let repo = Repo::new();
    let pid_file = repo.outside("agent.pid");
    let main = setup(&repo, "outside", "paths = [\"svc/a\"]\n", &pid_file);
    crash_after_the_forged_commit(&repo, &pid_file);
    recovered_and_refused(
        &repo,
        &main,
        ("lib/evil.txt", "evil"),
        "wrote outside the plan's paths: lib/evil.txt",
    );
}

/// (b) The forged commit edits `plans.toml`, which no `allow_protected` of the plan allows. The
/// protected-paths check of a normal completion refuses it.
#[test]
fn recovery_a_forged_commit_of_plans_toml_waiting_in_a_task_worktree_is_not_landed() {
    let repo = Repo::new();
    let pid_file = repo.outside("agent.pid");
    let main = setup(&repo, "protected", "", &pid_file);
    let manifest = repo.read("plans.toml");
    crash_after_the_forged_commit(&repo, &pid_file);
    recovered_and_refused(
        &repo,
        &main,
        ("plans.toml", "# forged by the agent"),
        "changed protected paths: plans.toml",
    );
    assert_eq!(repo.read("plans.toml"), manifest);
}

/// (c) The same commit holding nothing the checks refuse (as the commit a supervisor killed
/// before landing it leaves): the restart lands it, once, and records it.
#[test]
fn recovery_a_commit_the_checks_pass_waiting_in_a_task_worktree_is_landed() {
    let repo = Repo::new();
    let pid_file = repo.outside("agent.pid");
    let main = setup(&repo, "benign", "paths = [\"svc/a\"]\n", &pid_file);
    crash_after_the_forged_commit(&repo, &pid_file);
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let task = repo.task("p", "1.1");
    assert_eq!(task["status"], "completed", "{task}\n{out}\n{err}");
    assert_eq!(
        repo.first_parent_subjects(&format!("{main}..plan/p")),
        ["p 1.1: Do it"],
        "{out}"
    );
    assert_eq!(task["commit"].as_str(), Some(repo.rev("plan/p").as_str()));
    assert_eq!(repo.git(&["show", "plan/p:svc/a/ok.txt"]), "ok");
    assert_eq!(
        repo.git(&["show", "main:svc/a/ok.txt"]),
        "ok",
        "merged\n{out}"
    );
}
