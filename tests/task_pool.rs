//! The task worktree pool (`parallel_tasks`): a plan's task worktrees are reused by its tasks one
//! after another (a conflict re-run and a retry in between), build outputs under an ignored
//! `target/` stay for the next task, `git status` is clean at each task's start; a supervisor
//! killed with a pooled worktree in use is recovered; the pool goes at the plan's end and with
//! `orch clean`. Through the real binary with the scripted agent
//! `tests/fixtures/agents/pool_agent.sh`.

use crate::support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::{Repo, agent, read_lines, read_status, try_task_in, wait, wait_for, wait_line};

/// `plans.toml` with plan `p` (`text`) run by `pool_agent.sh <journal> <gate>` with
/// `parallel_tasks = 2` and `retries`, committed on main with a `.gitignore` ignoring `target/`.
/// Returns the journal (kept under `.git`, never part of a worktree).
fn setup(repo: &Repo, text: &str, gate: &str, retries: u32) -> PathBuf {
    let journal = repo.root().join(".git/journal");
    repo.write("docs/plans/p.md", text);
    repo.write(".gitignore", "*.log\ntarget/\n");
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nmax_agents = 4\nretries = {retries}\nbackoff = \"0s\"\n\n[agents.a]\n\
             command = {}\n\n[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\n\
             parallel_tasks = 2\n",
            agent("pool_agent.sh", &[journal.to_str().expect("utf-8"), gate])
        ),
    );
    repo.commit_all("plans");
    journal
}

/// A `start` line of the journal.
#[derive(Debug, Clone)]
struct Start {
    task: String,
    attempt: u32,
    worktree: String,
    status: String,
    target: bool,
}

fn starts(journal: &Path) -> Vec<Start> {
    std::fs::read_to_string(journal)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("start ")?;
            let (head, tail) = rest.split_once(" status=[")?;
            let (status, target) = tail.split_once("] target=")?;
            let mut f = head.split(' ');
            Some(Start {
                task: f.next()?.to_string(),
                attempt: f.next()?.parse().ok()?,
                worktree: f.next()?.to_string(),
                status: status.to_string(),
                target: target == "yes",
            })
        })
        .collect()
}

/// Commits on `plan/p` not on main, oldest first: (subject, files changed).
fn plan_commits(repo: &Repo) -> Vec<(String, Vec<String>)> {
    let log = repo.git(&[
        "log",
        "--reverse",
        "--format=@%s",
        "--name-only",
        "main..plan/p",
    ]);
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in log.lines().filter(|l| !l.is_empty()) {
        match line.strip_prefix('@') {
            Some(s) => out.push((s.to_string(), Vec::new())),
            None => out.last_mut().expect("a commit").1.push(line.to_string()),
        }
    }
    out
}

/// The files of task `id`'s commit on the plan branch.
fn files_of(commits: &[(String, Vec<String>)], id: &str) -> Vec<String> {
    let found: Vec<&(String, Vec<String>)> = commits
        .iter()
        .filter(|(s, _)| s.starts_with(&format!("p {id}:")))
        .collect();
    assert_eq!(found.len(), 1, "one commit of {id}: {commits:?}");
    found[0].1.clone()
}

/// The directories of the plan's pool that are left.
fn pool_dirs(repo: &Repo) -> Vec<String> {
    std::fs::read_dir(repo.root().join(".orch/worktrees"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("+pool"))
                .collect()
        })
        .unwrap_or_default()
}

/// Nothing of the pool is left: no task branch, no worktree but the main one and the plan's.
fn assert_pool_gone(repo: &Repo) {
    assert!(
        repo.refs_under("refs/heads/orch/task").is_empty(),
        "{}",
        repo.refs()
    );
    let trees = repo.worktrees();
    assert_eq!(trees.len(), 2, "{trees:?}");
    assert!(pool_dirs(repo).is_empty(), "{:?}", pool_dirs(repo));
}

const FIVE: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 Build\n- [ ] 1.2 Line A (depends: 1.1)\n\
                    - [ ] 1.3 Line B (depends: 1.1)\n- [ ] 1.4 Flaky (depends: 1.2, 1.3)\n\
                    - [ ] 1.5 Last (depends: 1.4)\n";

#[test]
fn task_worktrees_are_reused_across_tasks_a_conflict_rerun_and_a_retry() {
    let repo = Repo::new();
    let j = setup(&repo, FIVE, "-", 1);
    repo.up(&[]);

    let s = starts(&j);
    let runs: Vec<(String, u32)> = s.iter().map(|x| (x.task.clone(), x.attempt)).collect();
    // 1.1; 1.2 and 1.3 side by side, the second to land run again; 1.4 twice (a retry); 1.5.
    assert_eq!(s.len(), 7, "{runs:?}");
    assert_eq!(s.iter().filter(|x| x.task == "1.4").count(), 2, "{runs:?}");
    assert_eq!(
        s.iter()
            .filter(|x| ["1.2", "1.3"].contains(&x.task.as_str()))
            .count(),
        3,
        "{runs:?}"
    );
    // Seven attempts in two worktrees of the pool: the same worktree serves several tasks.
    let trees: BTreeSet<&str> = s.iter().map(|x| x.worktree.as_str()).collect();
    assert_eq!(trees.len(), 2, "{s:#?}");
    assert!(
        trees.iter().all(|t| t.contains(".orch/worktrees/p+pool")),
        "{trees:?}"
    );
    let first = &s[0];
    assert_eq!(first.task, "1.1");
    let reused: BTreeSet<&str> = s
        .iter()
        .filter(|x| x.worktree == first.worktree)
        .map(|x| x.task.as_str())
        .collect();
    assert!(reused.len() >= 3, "{s:#?}");
    for x in &s {
        // A clean tree at every start: nothing of the task before it (the failed attempt's
        // `junk.txt` included).
        assert_eq!(x.status, "", "{x:?}");
    }
    // 1.1's build output (ignored) is still there for every later task in its worktree.
    assert!(!first.target, "{first:?}");
    let later: Vec<&Start> = s[1..]
        .iter()
        .filter(|x| x.worktree == first.worktree)
        .collect();
    assert!(!later.is_empty());
    assert!(later.iter().all(|x| x.target), "{later:#?}");

    // Each commit holds only its task's change.
    let commits = plan_commits(&repo);
    assert_eq!(commits.len(), 5, "{commits:?}");
    assert_eq!(files_of(&commits, "1.1"), ["1.1.txt"]);
    assert_eq!(files_of(&commits, "1.2"), ["shared.txt"]);
    assert_eq!(files_of(&commits, "1.3"), ["shared.txt"]);
    assert_eq!(files_of(&commits, "1.4"), ["1.4.txt"]);
    assert_eq!(files_of(&commits, "1.5"), ["1.5.txt"]);
    let shared = repo.git(&["show", "plan/p:shared.txt"]);
    assert!(shared == "1.2\n1.3" || shared == "1.3\n1.2", "{shared}");
    // The failed attempt's leftovers (an untracked file) are saved before its worktree is reused.
    let saved = repo.refs_under("refs/orch/attempts/p/1.4");
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(
        repo.git(&["show", &format!("{}:junk.txt", saved[0])]),
        "junk"
    );
    // The conflicting attempt's commit is kept too.
    let conflicts = repo.refs_under("refs/orch/attempts/p/1.2").len()
        + repo.refs_under("refs/orch/attempts/p/1.3").len();
    assert_eq!(conflicts, 1, "{}", repo.refs());
    // The plan is done: its pool is removed after its last landing.
    assert_pool_gone(&repo);
}

/// The pid of task `id`'s agent as its status entry records it (`None` while not recorded).
fn agent_pid(repo: &Repo, id: &str) -> Option<u64> {
    let doc = read_status(&repo.status_path("p"))?;
    try_task_in(&doc, id)?["orchRun"]["pid"].as_u64()
}

/// `kill -9` of an agent's process group, after checking that `pid` leads a group running
/// `pool_agent.sh`.
fn kill_agent(pid: u64) {
    let pid = i32::try_from(pid).expect("pid");
    assert!(pid > 1, "{pid}");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("agent alive");
    assert!(
        String::from_utf8_lossy(&cmdline).contains("pool_agent.sh"),
        "{pid} is not an agent"
    );
    let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid))).expect("pgid");
    assert_eq!(pgid.as_raw(), pid, "the agent leads its own group");
    nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).expect("killpg");
}

#[test]
fn a_supervisor_killed_with_a_reused_worktree_in_use_is_recovered_and_the_plan_completes() {
    let repo = Repo::new();
    let j = repo.root().join(".git/journal");
    let go = format!("{}.go", j.display());
    // 1.1 alone, then 1.2 in a reused worktree, waiting for the gate.
    setup(
        &repo,
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Build\n- [ ] 1.6 Wait (depends: 1.1)\n",
        &go,
        0,
    );
    // 1.1 does not wait for the gate; 1.6 does.
    let child = repo.orch(&["up", "--json"]).spawn().expect("spawn orch");
    wait_for("task 1.6's agent", || {
        starts(&j).iter().any(|x| x.task == "1.6") && agent_pid(&repo, "1.6").is_some()
    });
    let s = starts(&j);
    assert_eq!(s[0].worktree, s[1].worktree, "1.6 reuses 1.1's worktree");
    let mut child = child;
    child.kill().expect("kill -9");
    let _ = child.wait();
    // Its agent dies too, leaving work in the pooled worktree.
    let tree = repo
        .worktree_of_branch("orch/task/p/1.6")
        .expect("1.6 holds a worktree of the pool");
    assert!(tree.ends_with("p+pool1"), "{}", tree.display());
    std::fs::write(tree.join("half.txt"), "1.6").expect("half-done work");
    kill_agent(agent_pid(&repo, "1.6").expect("pid"));

    std::fs::write(&go, "").expect("gate");
    let out = wait(repo.orch(&["up", "--json"]).spawn().expect("spawn orch"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let s = starts(&j);
    let again: Vec<&Start> = s.iter().filter(|x| x.task == "1.6").collect();
    assert_eq!(again.len(), 2, "{s:#?}");
    // The run after the restart reused the pool slot, clean, with 1.1's build output.
    assert_eq!(again[1].worktree, again[0].worktree);
    assert_eq!(again[1].status, "");
    assert!(again[1].target, "{:?}", again[1]);
    let commits = plan_commits(&repo);
    assert_eq!(commits.len(), 2, "{commits:?}");
    assert_eq!(files_of(&commits, "1.6"), ["1.6.txt"]);
    // The dead agent's work is saved, not landed.
    let saved = repo.refs_under("refs/orch/attempts/p/1.6");
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(
        repo.git(&["show", &format!("{}:half.txt", saved[0])]),
        "1.6"
    );
    assert_pool_gone(&repo);
}

#[test]
fn a_plan_that_is_not_done_keeps_its_pool_until_orch_clean() {
    let repo = Repo::new();
    setup(
        &repo,
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Build\n- [ ] 9.9 Fails\n",
        "-",
        0,
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 5, "{out}{err}");
    // Not finished: the pool stays for the next run, every slot free.
    assert!(repo.refs_under("refs/heads/orch/task").is_empty());
    let dirs = pool_dirs(&repo);
    assert!(!dirs.is_empty(), "{dirs:?}");
    // Something left in a free slot is saved by `orch clean`.
    let slot = repo.root().join(".orch/worktrees").join(&dirs[0]);
    std::fs::write(slot.join("stray.txt"), "stray").expect("write");
    let (code, out, err) = repo.run(&["clean", "p", "--force"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(pool_dirs(&repo).is_empty(), "{:?}", pool_dirs(&repo));
    assert_eq!(repo.worktrees().len(), 1, "{:?}", repo.worktrees());
    let saved: Vec<String> = repo
        .refs_under("refs/orch/backup/p")
        .into_iter()
        .filter(|r| r.contains("-task-pool-pool"))
        .collect();
    assert_eq!(saved.len(), 1, "{}", repo.refs());
    assert_eq!(
        repo.git(&["show", &format!("{}:stray.txt", saved[0])]),
        "stray"
    );
}

/// `orch stop` then `orch retry` of a running task, as a person does them: the retry as soon as
/// `orch status` would show the task failed, whether or not the run has read the stop yet (the
/// two may reach it as one change of the status file). Plan `q`'s task waits for the gate too, so
/// the run goes on while `1.6` is failed.
#[test]
fn a_stopped_task_is_retried_in_a_reused_worktree_of_the_pool() {
    let repo = Repo::new();
    let j = repo.root().join(".git/journal");
    let go = format!("{}.go", j.display());
    setup(
        &repo,
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Build\n- [ ] 1.6 Wait (depends: 1.1)\n",
        &go,
        0,
    );
    let manifest = std::fs::read_to_string(repo.root().join("plans.toml")).expect("plans.toml");
    repo.write(
        "docs/plans/q.md",
        "# Q\n\n## Phase 1: Hold\n- [ ] 7.1 Hold\n",
    );
    repo.write(
        "plans.toml",
        &format!("{manifest}\n[[plan]]\nname = \"q\"\nfile = \"docs/plans/q.md\"\nagent = \"a\"\n"),
    );
    repo.commit_all("plan q");
    let mut child = repo.orch(&["up", "--json"]).spawn().expect("spawn orch");
    let lines = read_lines(&mut child);
    let mut seen = Vec::new();
    let is = |v: &serde_json::Value, event: &str| {
        v["event"] == event && v["plan"] == "p" && v["task"] == "1.6"
    };
    wait_line(&lines, &mut seen, |v| is(v, "task_started"));
    wait_for("task 1.6's agent", || {
        starts(&j).iter().any(|x| x.task == "1.6") && agent_pid(&repo, "1.6").is_some()
    });
    let tree = repo
        .worktree_of_branch("orch/task/p/1.6")
        .expect("1.6 holds a worktree of the pool");
    std::fs::write(tree.join("half.txt"), "1.6").expect("half-done work");
    let (code, out, err) = repo.run(&["stop", "p", "1.6"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_for("1.6 failed as stopped", || {
        let t = repo.task("p", "1.6");
        t["status"] == "failed" && t["error"] == "stopped"
    });
    let (code, out, err) = repo.run(&["retry", "p", "1.6"]);
    assert_eq!(code, 0, "{out}{err}");
    // The run stops the first attempt, fails it as stopped (not retried by itself), then runs
    // the task again for the retry.
    wait_line(&lines, &mut seen, |v| is(v, "task_stopped"));
    wait_line(&lines, &mut seen, |v| is(v, "task_failed"));
    let failed = seen.last().expect("event").clone();
    assert_eq!(
        (failed["attempt"].as_u64(), failed["error"].as_str()),
        (Some(1), Some("stopped")),
        "{failed}"
    );
    assert!(failed["retry_in_ms"].is_null(), "{failed}");
    wait_line(&lines, &mut seen, |v| is(v, "task_retried"));
    wait_line(&lines, &mut seen, |v| {
        is(v, "task_started") && v["attempt"] == 2
    });
    std::fs::write(&go, "").expect("gate");
    wait_line(&lines, &mut seen, |v| v["event"] == "run_finished");
    let out = wait(child);
    assert_eq!(out.status.code(), Some(0), "{seen:#?}");
    assert_eq!(repo.task("p", "1.6")["status"], "completed");
    let s = starts(&j);
    let runs: Vec<&Start> = s.iter().filter(|x| x.task == "1.6").collect();
    assert_eq!(runs.len(), 2, "{s:#?}");
    assert_eq!(runs[1].attempt, 2, "{s:#?}");
    // The retry ran in the worktree its first attempt had, 1.1's, clean, with 1.1's build output.
    let first = s.iter().find(|x| x.task == "1.1").expect("1.1 ran");
    assert_eq!(runs[1].worktree, runs[0].worktree, "{s:#?}");
    assert_eq!(runs[1].worktree, first.worktree, "{s:#?}");
    assert_eq!(runs[1].status, "", "{:?}", runs[1]);
    assert!(runs[1].target, "{:?}", runs[1]);
    let commits = plan_commits(&repo);
    assert_eq!(files_of(&commits, "1.6"), ["1.6.txt"]);
    // The stopped attempt's work is saved, not landed.
    let saved = repo.refs_under("refs/orch/attempts/p/1.6");
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(
        repo.git(&["show", &format!("{}:half.txt", saved[0])]),
        "1.6"
    );
    // p's pool is gone: no task branch, no worktree but the main one and the plans'.
    assert!(
        repo.refs_under("refs/heads/orch/task").is_empty(),
        "{}",
        repo.refs()
    );
    assert!(pool_dirs(&repo).is_empty(), "{:?}", pool_dirs(&repo));
    assert_eq!(repo.worktrees().len(), 3, "{:?}", repo.worktrees());
}
