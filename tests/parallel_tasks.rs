//! `parallel_tasks`: tasks of one plan side by side, each in a task worktree of its own, their
//! commits landed back on the plan branch one commit per task, through the real binary with the
//! scripted agent `tests/fixtures/agents/par_agent.sh`.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use support::{Repo, TIMEOUT, agent, events, read_status, try_task_in, wait, wait_for};

/// `plans.toml` with plan `p` (`text`) run by `par_agent.sh <journal> <mode> <gates…>` with
/// `parallel_tasks = 2`, committed on main.
/// The journal is kept under `.git` (never part of a worktree).
fn setup(repo: &Repo, text: &str, mode: &str, gates: &[String]) -> PathBuf {
    let journal = repo.root().join(".git/journal");
    let mut args = vec![journal.display().to_string(), mode.to_string()];
    args.extend(gates.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    repo.write("docs/plans/p.md", text);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nmax_agents = 4\nretries = 0\n\n[agents.a]\ncommand = {}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\nparallel_tasks = 2\n",
            agent("par_agent.sh", &args)
        ),
    );
    repo.commit_all("plans");
    journal
}

/// The start mark `par_agent.sh` makes for `task`.
fn mark(journal: &Path, task: &str) -> String {
    format!("{}.{task}", journal.display())
}

const TWO: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two\n";

/// Journal lines `start|end <task> <attempt> <ns> …` as (kind, task, attempt, ns, rest).
fn journal(path: &Path) -> Vec<(String, String, u32, u128, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() < 4 {
                return None;
            }
            Some((
                f[0].to_string(),
                f[1].to_string(),
                f[2].parse().ok()?,
                f[3].parse().ok()?,
                f[4..].join(" "),
            ))
        })
        .collect()
}

/// (start, end) of each finished attempt of `task`.
fn intervals(path: &Path, task: &str) -> Vec<(u128, u128)> {
    let j = journal(path);
    j.iter()
        .filter(|(k, t, ..)| k == "start" && t == task)
        .filter_map(|(_, _, attempt, start, _)| {
            j.iter()
                .find(|(k, t, a, ..)| k == "end" && t == task && a == attempt)
                .map(|e| (*start, e.3))
        })
        .collect()
}

/// The pid of task `id`'s agent as its status entry records it (`None` while not recorded).
fn agent_pid(repo: &Repo, id: &str) -> Option<u64> {
    let doc = read_status(&repo.status_path("p"))?;
    try_task_in(&doc, id)?["orchRun"]["pid"].as_u64()
}

/// Commits on `plan/p` not on main, oldest first: (oid, subject).
fn plan_commits(repo: &Repo) -> Vec<(String, String)> {
    repo.git(&["log", "--reverse", "--format=%H %s", "main..plan/p"])
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Nothing of the task worktrees is left: directories, git's entries, branches.
fn assert_no_task_trees(repo: &Repo) {
    assert!(
        repo.refs_under("refs/heads/orch/task").is_empty(),
        "{}",
        repo.refs()
    );
    let trees = repo.worktrees();
    assert_eq!(trees.len(), 2, "{trees:?}");
    assert!(trees.iter().all(|t| !t.contains('+')), "{trees:?}");
    let dirs: Vec<String> = std::fs::read_dir(repo.root().join(".orch/worktrees"))
        .expect("worktrees dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs, vec!["p".to_string()]);
}

/// Every commit of the plan is recorded as its task's commit, one per task, linear.
fn assert_one_commit_per_task(repo: &Repo, subjects: &[&str]) -> Vec<(String, String)> {
    let commits = plan_commits(repo);
    let mut got: Vec<&str> = commits.iter().map(|(_, s)| s.as_str()).collect();
    got.sort_unstable();
    assert_eq!(got, subjects, "{commits:?}");
    assert_eq!(repo.git(&["rev-list", "--merges", "main..plan/p"]), "");
    for (oid, subject) in &commits {
        let id = subject
            .strip_prefix("p ")
            .and_then(|s| s.split(':').next())
            .expect("task subject");
        let t = repo.task("p", id);
        assert_eq!(t["status"], "completed", "{t}");
        assert_eq!(t["commit"].as_str(), Some(oid.as_str()), "{t}");
    }
    commits
}

#[test]
fn two_independent_tasks_run_at_once_and_both_land_on_the_plan_branch() {
    let repo = Repo::new();
    let j = repo.root().join(".git/journal");
    // Each task waits for the other's start mark: they can only finish if they overlap.
    setup(&repo, TWO, "own", &[mark(&j, "1.1"), mark(&j, "1.2")]);
    let out = repo.up(&[]);

    let (a, b) = (intervals(&j, "1.1"), intervals(&j, "1.2"));
    assert_eq!((a.len(), b.len()), (1, 1), "{:?}", journal(&j));
    assert!(
        a[0].0 < b[0].1 && b[0].0 < a[0].1,
        "no overlap: {a:?} {b:?}"
    );
    // Each ran in a task worktree of its own: the plan's two pool slots.
    let mut dirs: Vec<String> = ["1.1", "1.2"]
        .iter()
        .map(|task| {
            journal(&j)
                .into_iter()
                .find(|(k, t, ..)| k == "start" && t == task)
                .expect("start")
                .4
        })
        .collect();
    dirs.sort();
    assert!(dirs[0].ends_with(".orch/worktrees/p+pool1"), "{dirs:?}");
    assert!(dirs[1].ends_with(".orch/worktrees/p+pool2"), "{dirs:?}");

    let commits = assert_one_commit_per_task(&repo, &["p 1.1: One", "p 1.2: Two"]);
    let wt = repo.worktree("p");
    assert_eq!(
        std::fs::read_to_string(wt.join("1.1.txt")).expect("1.1"),
        "1.1\n"
    );
    assert_eq!(
        std::fs::read_to_string(wt.join("1.2.txt")).expect("1.2"),
        "1.2\n"
    );
    assert_eq!(repo.git_in(&wt, &["status", "--porcelain"]).stdout, b"");
    assert_eq!(repo.git(&["rev-parse", "plan/p"]), commits[1].0);
    assert_no_task_trees(&repo);
    let finished: Vec<Value> = events(&out)
        .into_iter()
        .filter(|e| e["event"] == "task_finished")
        .collect();
    assert_eq!(finished.len(), 2, "{out}");
}

#[test]
fn tasks_naming_the_same_file_never_run_at_once() {
    let repo = Repo::new();
    let j = setup(
        &repo,
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Start `notes.md`\n- [ ] 1.2 Finish `notes.md`\n",
        "slow",
        &[],
    );
    repo.up(&[]);
    let (a, b) = (intervals(&j, "1.1"), intervals(&j, "1.2"));
    assert_eq!((a.len(), b.len()), (1, 1), "{:?}", journal(&j));
    assert!(a[0].1 <= b[0].0 || b[0].1 <= a[0].0, "overlap: {a:?} {b:?}");
    assert_one_commit_per_task(
        &repo,
        &["p 1.1: Start `notes.md`", "p 1.2: Finish `notes.md`"],
    );
    assert_no_task_trees(&repo);
}

#[test]
fn a_conflicting_task_runs_again_on_the_new_tip_and_lands() {
    let repo = Repo::new();
    let j = repo.root().join(".git/journal");
    // Both change the first line of shared.txt from the same tip: the second to land conflicts;
    // run again on the new tip, it finds the other's line and appends its own.
    setup(&repo, TWO, "line", &[mark(&j, "1.1"), mark(&j, "1.2")]);
    let out = repo.up(&[]);

    let reruns: Vec<String> = journal(&j)
        .into_iter()
        .filter(|(k, _, attempt, ..)| k == "start" && *attempt == 2)
        .map(|(_, t, ..)| t)
        .collect();
    assert_eq!(reruns.len(), 1, "{:?}", journal(&j));
    let again = &reruns[0];
    let first = if again == "1.1" { "1.2" } else { "1.1" };
    let commits = assert_one_commit_per_task(&repo, &["p 1.1: One", "p 1.2: Two"]);
    assert!(
        commits[0].1.starts_with(&format!("p {first}:")),
        "{commits:?}"
    );
    assert_eq!(
        repo.git(&["show", "plan/p:shared.txt"]),
        format!("{first}\n{again}")
    );
    let failed: Vec<Value> = events(&out)
        .into_iter()
        .filter(|e| e["event"] == "task_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert_eq!(failed[0]["task"], again.as_str());
    assert_eq!(failed[0]["retry_in_ms"], 0);
    assert!(
        failed[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("`shared.txt`") && e.contains("runs again")),
        "{}",
        failed[0]
    );
    // The conflicting attempt's commit is kept.
    let saved = repo.refs_under(&format!("refs/orch/attempts/p/{again}"));
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(
        repo.git(&["show", &format!("{}:shared.txt", saved[0])]),
        again.as_str()
    );
    assert_no_task_trees(&repo);
}

#[test]
fn a_task_conflicting_again_fails_naming_the_files() {
    let repo = Repo::new();
    let j = repo.root().join(".git/journal");
    let moved = format!("{}.moved", j.display());
    setup(
        &repo,
        TWO,
        "overwrite",
        &[mark(&j, "1.1"), mark(&j, "1.2"), format!("2:{moved}")],
    );
    let child = repo.orch(&["up", "--json"]).spawn().expect("spawn orch");
    // The re-run waits while someone else moves the plan branch under it (same line again).
    let mut again = String::new();
    wait_for("the re-run", || {
        if let Some(s) = journal(&j)
            .into_iter()
            .find(|(k, _, attempt, ..)| k == "start" && *attempt == 2)
        {
            again = s.1;
        }
        !again.is_empty()
    });
    let wt = repo.worktree("p");
    std::fs::write(wt.join("shared.txt"), "by hand\n").expect("write");
    assert!(
        repo.git_in(&wt, &["commit", "-qam", "by hand"])
            .status
            .success()
    );
    std::fs::write(&moved, "").expect("gate");
    let out = wait(child);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{stdout}");

    let t = repo.task("p", &again);
    assert_eq!(t["status"], "failed", "{t}");
    assert!(
        t["error"]
            .as_str()
            .is_some_and(|e| e.contains("`shared.txt`") && e.contains("again")),
        "{t}"
    );
    let failed: Vec<Value> = events(&stdout)
        .into_iter()
        .filter(|e| e["event"] == "task_failed" && e["task"] == again.as_str())
        .collect();
    assert_eq!(failed.len(), 2, "{stdout}");
    assert_eq!(failed[1]["retry_in_ms"], Value::Null);
    assert!(
        failed[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("`shared.txt`")),
        "{}",
        failed[1]
    );
    // The other task and the hand-made commit are on the plan branch; nothing of the failed one.
    let subjects: Vec<String> = plan_commits(&repo).into_iter().map(|(_, s)| s).collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert_eq!(subjects[1], "by hand");
    assert!(
        !subjects[0].starts_with(&format!("p {again}:")),
        "{subjects:?}"
    );
    assert_eq!(repo.git(&["show", "plan/p:shared.txt"]), "by hand");
    // Both attempts' work is saved.
    let saved = repo.refs_under(&format!("refs/orch/attempts/p/{again}"));
    assert_eq!(saved.len(), 2, "{saved:?}");
    // The plan is not finished: its pool stays for the task's next run, every slot free.
    assert!(
        repo.refs_under("refs/heads/orch/task").is_empty(),
        "{}",
        repo.refs()
    );
    let trees = repo.worktrees();
    assert_eq!(trees.len(), 4, "{trees:?}");
    for slot in ["p+pool1", "p+pool2"] {
        let tree = repo.root().join(".orch/worktrees").join(slot);
        let head = repo.git_in(&tree, &["symbolic-ref", "-q", "HEAD"]);
        assert!(!head.status.success(), "{slot} is held");
        assert_eq!(repo.git_in(&tree, &["status", "--porcelain"]).stdout, b"");
    }
}

#[test]
fn parallel_with_parallel_tasks_is_a_manifest_error() {
    let repo = Repo::new();
    repo.write("docs/plans/p.md", TWO);
    repo.write(
        "plans.toml",
        "[agents.a]\ncommand = [\"true\"]\n\n[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n\
         agent = \"a\"\nparallel = 2\nparallel_tasks = 3\n",
    );
    let (code, out, err) = repo.run(&["check"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("plans.toml:9:18") && err.contains("`parallel_tasks`"),
        "{err}"
    );
}

/// Starts `orch up` and waits until both tasks' agents are running (their starts recorded).
fn up_until_both_run(repo: &Repo, j: &Path) -> std::process::Child {
    let child = repo.orch(&["up", "--json"]).spawn().expect("spawn orch");
    wait_for("both agents", || {
        journal(j).iter().filter(|e| e.0 == "start").count() == 2
            && ["1.1", "1.2"]
                .iter()
                .all(|id| agent_pid(repo, id).is_some())
    });
    child
}

/// `kill -9` of an agent's process group, after checking that `pid` leads a group running
/// `par_agent.sh`.
fn kill_agent(pid: u64) {
    let pid = i32::try_from(pid).expect("pid");
    assert!(pid > 1, "{pid}");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("agent alive");
    assert!(
        String::from_utf8_lossy(&cmdline).contains("par_agent.sh"),
        "{pid} is not an agent"
    );
    let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid))).expect("pgid");
    assert_eq!(pgid.as_raw(), pid, "the agent leads its own group");
    nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).expect("killpg");
}

/// Plan `p` (TWO, agent `own`) whose supervisor was killed with both agents running, then the
/// agents too, each leaving `half.txt` in its task worktree; with the journal and gate paths.
fn dead_agents_with_work() -> (Repo, PathBuf, String) {
    let repo = Repo::new();
    let j = repo.root().join(".git/journal");
    let go = format!("{}.go", j.display());
    setup(&repo, TWO, "own", std::slice::from_ref(&go));
    kill_supervisor(up_until_both_run(&repo, &j));
    kill_agents_leaving_work(&repo);
    (repo, j, go)
}

/// The agents of tasks 1.1 and 1.2 die, leaving `half.txt` (their id) in their task worktrees.
fn kill_agents_leaving_work(repo: &Repo) {
    for id in ["1.1", "1.2"] {
        let pid = agent_pid(repo, id).expect("pid");
        let tree = repo
            .worktree_of_branch(&format!("orch/task/p/{id}"))
            .expect("the task's worktree");
        std::fs::write(tree.join("half.txt"), id).expect("half-done work");
        kill_agent(pid);
    }
}

/// `kill -9` of the supervisor; its agents live on in their own process groups.
fn kill_supervisor(mut child: std::process::Child) {
    child.kill().expect("kill -9");
    let _ = child.wait();
}

/// After the restart: each task's work landed once, by one run of its agent.
fn assert_landed_once(repo: &Repo, j: &Path, out: &std::process::Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(journal(j).iter().filter(|e| e.0 == "start").count(), 2);
    assert_one_commit_per_task(repo, &["p 1.1: One", "p 1.2: Two"]);
    let wt = repo.worktree("p");
    assert!(wt.join("1.1.txt").is_file() && wt.join("1.2.txt").is_file());
    assert_no_task_trees(repo);
}

#[test]
fn agents_outliving_a_killed_supervisor_are_adopted_and_their_work_lands_once() {
    let repo = Repo::new();
    let j = repo.root().join(".git/journal");
    let go = format!("{}.go", j.display());
    setup(&repo, TWO, "report", std::slice::from_ref(&go));
    kill_supervisor(up_until_both_run(&repo, &j));
    assert_eq!(repo.refs_under("refs/heads/orch/task").len(), 2);
    // The next supervisor adopts both (its events say so) before they may finish.
    let mut next = repo.orch(&["up", "--json"]).spawn().expect("spawn orch");
    let stdout = next.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while seen
        .iter()
        .filter(|l: &&String| l.contains("\"task_adopted\""))
        .count()
        < 2
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("two task_adopted events");
        seen.push(line);
    }
    std::fs::write(&go, "").expect("gate");
    let out = wait(next);
    reader.join().expect("reader");
    seen.extend(rx.try_iter());
    assert_landed_once(&repo, &j, &out);
    assert_eq!(
        seen.iter()
            .filter(|l| l.contains("\"task_finished\""))
            .count(),
        2,
        "{seen:#?}"
    );
}

/// Regression (found by the crash harness with task worktrees): a supervisor killed while it
/// freed the pool slot of a task it had landed and recorded left the slot's `HEAD.lock`, the
/// slot still on the task's branch. Each later run failed to free it (its HEAD locked), and it
/// was left, with the task's branch, after the plan finished. Now a task worktree retired at
/// start-up has its stale locks removed first, as one unlocked there does.
#[test]
fn a_landed_tasks_slot_left_locked_by_a_kill_is_freed_and_the_pool_goes() {
    let repo = Repo::new();
    let j = repo.root().join(".git/journal");
    let go = format!("{}.go", j.display());
    setup(&repo, TWO, "report", std::slice::from_ref(&go));
    kill_supervisor(up_until_both_run(&repo, &j));
    // Task 1.1 as the killed supervisor left it: its agent ended, its commit landed on the plan
    // branch and recorded, its slot still on its branch, with git's HEAD.lock.
    kill_agent(agent_pid(&repo, "1.1").expect("pid"));
    let slot = repo
        .worktree_of_branch("orch/task/p/1.1")
        .expect("the slot of 1.1");
    std::fs::write(slot.join("1.1.txt"), "1.1\n").expect("write");
    for args in [
        &["add", "1.1.txt"][..],
        &["commit", "-q", "-m", "p 1.1: One"],
    ] {
        assert!(repo.git_in(&slot, args).status.success(), "{args:?}");
    }
    let commit = String::from_utf8_lossy(&repo.git_in(&slot, &["rev-parse", "HEAD"]).stdout)
        .trim()
        .to_string();
    let landed = repo.git_in(&repo.worktree("p"), &["merge", "-q", "--ff-only", &commit]);
    assert!(landed.status.success(), "{landed:?}");
    let status = repo.status_path("p");
    let mut doc = repo.status_file("p");
    let entry = doc["tasks"]
        .as_array_mut()
        .and_then(|t| t.iter_mut().find(|e| e["id"] == "1.1"))
        .and_then(Value::as_object_mut)
        .expect("1.1's entry");
    entry.insert("status".into(), "completed".into());
    entry.insert("commit".into(), commit.clone().into());
    entry.insert("completedAt".into(), entry["startedAt"].clone());
    entry.remove("orchRun");
    std::fs::write(&status, serde_json::to_string_pretty(&doc).expect("json")).expect("write");
    let name = slot.file_name().expect("name").to_str().expect("utf8");
    let head_lock = repo
        .root()
        .join(".git/worktrees")
        .join(name)
        .join("HEAD.lock");
    std::fs::write(&head_lock, "").expect("HEAD.lock");

    std::fs::write(&go, "").expect("gate");
    let out = wait(repo.orch(&["up", "--json"]).spawn().expect("spawn orch"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let starts = |id: &str| {
        journal(&j)
            .iter()
            .filter(|e| e.0 == "start" && e.1 == id)
            .count()
    };
    assert_eq!((starts("1.1"), starts("1.2")), (1, 1));
    let commits = assert_one_commit_per_task(&repo, &["p 1.1: One", "p 1.2: Two"]);
    assert_eq!(commits[0].0, commit);
    assert!(!head_lock.exists());
    assert_no_task_trees(&repo);
}

#[test]
fn work_reported_while_no_supervisor_ran_lands_once() {
    let repo = Repo::new();
    let j = repo.root().join(".git/journal");
    let go = format!("{}.go", j.display());
    setup(&repo, TWO, "report", std::slice::from_ref(&go));
    kill_supervisor(up_until_both_run(&repo, &j));
    // The agents report done and exit with nobody watching: done, not committed, not landed.
    std::fs::write(&go, "").expect("gate");
    wait_for("both ends", || {
        journal(&j).iter().filter(|e| e.0 == "end").count() == 2
    });
    for id in ["1.1", "1.2"] {
        let t = repo.task("p", id);
        assert_eq!(
            (t["status"].as_str(), t.get("commit")),
            (Some("completed"), None),
            "{t}"
        );
    }
    let out = wait(repo.orch(&["up", "--json"]).spawn().expect("spawn orch"));
    assert_landed_once(&repo, &j, &out);
}

#[test]
fn work_left_in_task_worktrees_by_dead_agents_is_saved_and_the_tasks_run_again() {
    // The supervisor and its agents die, leaving a file in each task worktree.
    let (repo, j, go) = dead_agents_with_work();
    std::fs::write(&go, "").expect("gate");
    let out = wait(repo.orch(&["up", "--json"]).spawn().expect("spawn orch"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(journal(&j).iter().filter(|e| e.0 == "start").count(), 4);
    assert_one_commit_per_task(&repo, &["p 1.1: One", "p 1.2: Two"]);
    assert!(!repo.worktree("p").join("half.txt").exists());
    for id in ["1.1", "1.2"] {
        let saved = repo.refs_under(&format!("refs/orch/attempts/p/{id}"));
        assert_eq!(saved.len(), 1, "{saved:?}");
        assert_eq!(repo.git(&["show", &format!("{}:half.txt", saved[0])]), id);
    }
    assert_no_task_trees(&repo);
}

#[test]
fn orch_clean_removes_task_worktrees_and_branches_saving_their_work() {
    let (repo, _, _) = dead_agents_with_work();
    let (code, out, err) = repo.run(&["clean", "p", "--force"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        repo.refs_under("refs/heads/orch/task").is_empty(),
        "{}",
        repo.refs()
    );
    assert!(!repo.branch_exists("plan/p"));
    assert_eq!(repo.worktrees().len(), 1, "{:?}", repo.worktrees());
    for id in ["1.1", "1.2"] {
        let saved: Vec<String> = repo
            .refs_under("refs/orch/backup/p")
            .into_iter()
            .filter(|r| r.ends_with(&format!("-task-{id}")))
            .collect();
        assert_eq!(saved.len(), 1, "{}", repo.refs());
        assert_eq!(repo.git(&["show", &format!("{}:half.txt", saved[0])]), id);
    }
}

/// Whether process `pid` still exists (not reaped yet).
fn exists(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// An agent that reports by exiting (`report = "exit"`: its exit 0 is its `done`) and ends
/// while no supervisor runs is settled from its wrapper's record by the next `orch up`: its
/// work checked and committed, never run again. Both ways a task runs: in a task worktree
/// (`parallel_tasks = 2`, both tasks at once) and in the plan's worktree (one at a time, the
/// other task still to run). Seen failing on main: each such task ran again after the restart.
#[test]
fn an_agent_that_exits_while_no_supervisor_runs_is_settled_not_run_again() {
    for parallel in [2, 1] {
        let repo = Repo::new();
        let j = repo.root().join(".git/journal");
        let go = format!("{}.go", j.display());
        setup(&repo, TWO, "own", std::slice::from_ref(&go));
        if parallel == 1 {
            let text = String::from_utf8_lossy(&repo.read("plans.toml"))
                .replace("parallel_tasks = 2\n", "");
            repo.write("plans.toml", &text);
            repo.commit_all("one at a time");
        }
        let child = repo.orch(&["up", "--json"]).spawn().expect("spawn orch");
        let running = if parallel == 2 { 2 } else { 1 };
        wait_for("the agents", || {
            journal(&j).iter().filter(|e| e.0 == "start").count() == running
                && ["1.1", "1.2"][..running]
                    .iter()
                    .all(|id| agent_pid(&repo, id).is_some())
        });
        let wrappers: Vec<u64> = ["1.1", "1.2"][..running]
            .iter()
            .filter_map(|id| agent_pid(&repo, id))
            .collect();
        kill_supervisor(child);
        // Now, with no supervisor, the agents finish: exit 0, their work left in their trees.
        std::fs::write(&go, "").expect("go");
        wait_for("the agents to end", || {
            journal(&j).iter().filter(|e| e.0 == "end").count() == running
                && wrappers.iter().all(|&p| !exists(p))
        });
        let out = wait(repo.orch(&["up", "--json"]).spawn().expect("spawn orch"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{parallel}: {text}");
        let starts: Vec<_> = journal(&j)
            .into_iter()
            .filter(|e| e.0 == "start")
            .map(|e| (e.1, e.2))
            .collect();
        assert_eq!(
            starts.len(),
            2,
            "{parallel}: each agent ran once: {starts:?}"
        );
        assert!(
            starts.iter().all(|(_, a)| *a == 1),
            "{parallel}: {starts:?}"
        );
        assert_one_commit_per_task(&repo, &["p 1.1: One", "p 1.2: Two"]);
        for id in ["1.1", "1.2"] {
            assert_eq!(
                repo.git(&["show", &format!("plan/p:{id}.txt")]),
                id,
                "{parallel}"
            );
        }
        let doc = read_status(&repo.status_path("p")).expect("status");
        for id in ["1.1", "1.2"] {
            let t = try_task_in(&doc, id).expect("task");
            assert_eq!(t["status"], "completed", "{parallel}: {t}");
        }
    }
}
