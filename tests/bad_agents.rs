//! Agents that misbehave in ways a user really meets, end to end with the real binary: one that
//! exits at once, hangs, ignores SIGTERM and forks, prints 20 MB or past `log_max`, deletes its
//! worktree, or finds it missing or locked. Each asserts the documented outcome: the task's
//! status, the exit code, the log, and no process left behind.

use crate::support;

use std::time::{Duration, Instant};

use support::{Repo, agent, pids_with_env, process_alive, wait};

const PLAN: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 Something\n";

/// A repository with plan `p` (`text`) run by agent `a` (`command`, TOML) with `defaults`.
fn agent_repo(text: &str, command: &str, defaults: &str) -> Repo {
    let repo = Repo::new();
    repo.write("docs/plans/p.md", text);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"a\"\nretries = 0\n{defaults}\n[agents.a]\ncommand = {command}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n"
        ),
    );
    repo.commit_all("plans");
    repo
}

/// An agent (TOML command) that deletes its worktree.
const DELETE_WORKTREE: &str = "[\"sh\", \"-c\", \"rm -rf \\\"$ORCH_WORKTREE\\\"\"]";

/// A pid (as an agent wrote it) of a live process.
fn alive(pid: &str) -> bool {
    pid.parse().is_ok_and(process_alive)
}

/// Processes whose environment names this repository's worktree (an agent or its children).
fn agents_left(repo: &Repo) -> Vec<u32> {
    let needle = format!("ORCH_WORKTREE={}", repo.worktree("p").display());
    pids_with_env(|kv| kv == needle.as_bytes())
}

#[test]
fn an_agent_that_exits_at_once_completes_its_task_with_an_empty_commit() {
    let repo = agent_repo(PLAN, "[\"true\"]", "");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}{err}");
    let t = repo.task("p", "1.1");
    assert_eq!(t["status"], "completed");
    let commit = t["commit"].as_str().expect("commit").to_string();
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", "plan/p"]),
        "p 1.1: Something"
    );
    assert_eq!(repo.git(&["rev-parse", "plan/p"]), commit);
    // Empty: the same tree as its parent.
    assert_eq!(
        repo.git(&["rev-parse", &format!("{commit}^{{tree}}")]),
        repo.git(&["rev-parse", &format!("{commit}~1^{{tree}}")])
    );
}

#[test]
fn a_plan_with_no_tasks_is_accepted_and_completes_with_nothing_to_do() {
    let repo = agent_repo("# Notes\n\nNo phases, no tasks.\n", "[\"true\"]", "");
    let (code, out, err) = repo.run(&["check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 phases, 0 tasks"), "{out}");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("completed  0/0"), "{out}");
}

#[test]
fn a_hanging_agent_is_timed_out_and_killed() {
    let pids = tempfile::NamedTempFile::new().expect("pids");
    let cmd = agent("hang.sh", &[pids.path().to_str().expect("utf8")]);
    let repo = agent_repo(PLAN, &cmd, "timeout = \"1s\"\ngrace = \"1s\"\n");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 5, "{out}{err}");
    let t = repo.task("p", "1.1");
    assert_eq!(t["status"], "failed");
    assert!(
        t["lastError"].as_str().expect("error").contains("1s"),
        "{t}"
    );
    let pid = std::fs::read_to_string(pids.path()).expect("pid");
    assert!(!alive(pid.trim()), "the agent is still running");
    assert!(agents_left(&repo).is_empty());
}

#[test]
fn an_agent_that_ignores_sigterm_and_forks_is_killed_with_its_children() {
    let pids = tempfile::tempdir().expect("dir");
    let file = pids.path().join("pids");
    let cmd = agent("stubborn.sh", &[file.to_str().expect("utf8")]);
    let repo = agent_repo(PLAN, &cmd, "timeout = \"1s\"\ngrace = \"1s\"\n");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 5, "{out}{err}");
    assert_eq!(repo.task("p", "1.1")["status"], "failed");
    let both = std::fs::read_to_string(&file).expect("pids");
    assert_eq!(both.lines().count(), 2);
    for pid in both.lines() {
        assert!(!alive(pid), "pid {pid} is still running");
    }
    assert!(agents_left(&repo).is_empty());
}

#[test]
fn an_agent_printing_20_mb_does_not_block_orch_and_its_log_has_it_all() {
    let cmd = "[\"sh\", \"-c\", \"head -c 20000000 /dev/zero | tr '\\\\0' x; echo; echo END\"]";
    let repo = agent_repo(PLAN, cmd, "");
    let out_file = tempfile::NamedTempFile::new().expect("out");
    let mut c = repo.orch(&["up"]);
    c.stdout(out_file.reopen().expect("reopen"));
    let mut child = c.spawn().expect("spawn");
    // orch's peak memory, sampled while it runs.
    let mut peak_kb = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < deadline, "orch did not finish");
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            && let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = wait(child);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(repo.task("p", "1.1")["status"], "completed");
    let log = std::fs::read(repo.root().join(".orch/logs/p/1.1.log")).expect("log");
    assert!(log.len() > 20_000_000, "{}", log.len());
    assert!(String::from_utf8_lossy(&log[log.len() - 2000..]).contains("END"));
    assert!(peak_kb < 100_000, "orch peaked at {peak_kb} kB");
}

#[test]
fn an_agent_printing_past_log_max_keeps_the_beginning_and_the_end_of_it() {
    // 3 MiB of numbered lines under a cap of 1 MiB: the first half MiB and the last half MiB
    // are kept, with one line saying how much was dropped between them.
    let cmd = "[\"sh\", \"-c\", \"echo BEGIN; seq 1 400000; echo END\"]";
    let repo = agent_repo(PLAN, cmd, "log_max = \"1MiB\"\n");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(repo.task("p", "1.1")["status"], "completed");
    let log = std::fs::read_to_string(repo.root().join(".orch/logs/p/1.1.log")).expect("log");
    let output: usize = log
        .lines()
        .filter(|l| !l.starts_with("=== orch"))
        .map(|l| l.len() + 1)
        .sum();
    assert!(output <= (1 << 20) + 2, "{output} bytes of output kept");
    let begin = log.find("BEGIN\n1\n2\n3\n").expect("the beginning is kept");
    let end = log.find("399999\n400000\nEND\n").expect("the end is kept");
    let dropped = log
        .find("bytes of output dropped here (log_max = 1048576")
        .expect("a line says what was dropped");
    assert!(begin < dropped && dropped < end, "{}", &log[..2000]);
    // The attempt's footer still follows.
    let footer = log
        .rfind(": exit status 0 ===")
        .expect("the attempt's footer");
    assert!(end < footer, "{}", &log[log.len() - 500..]);
}

/// Regression: a task whose agent deleted the worktree stayed `in_progress` in the status file
/// (with the pid of a dead agent) although the run reported it failed, and the next task's error
/// blamed `/usr/bin/sh` for the missing directory.
#[test]
fn an_agent_that_deletes_its_worktree_fails_its_task_clearly() {
    let repo = agent_repo(
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Delete it\n- [ ] 1.2 Then this (depends: 1.1)\n- [ ] 1.3 Unrelated (depends: 1.1)\n",
        DELETE_WORKTREE,
        "max_agents = 1\n",
    );
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 5, "{out}{err}");
    let t = repo.task("p", "1.1");
    assert_eq!(t["status"], "failed", "{t}");
    assert!(t["orchRun"].is_null(), "{t}");
    assert!(
        t["lastError"]
            .as_str()
            .expect("error")
            .contains("cannot commit task `1.1`"),
        "{t}"
    );
    assert_eq!(repo.task("p", "1.2")["status"], "pending");
    // No half state: main untouched, the branch at its base, nothing running.
    assert_eq!(
        repo.git(&["rev-parse", "plan/p"]),
        repo.git(&["rev-parse", "main"])
    );
    assert!(agents_left(&repo).is_empty());
}

#[test]
fn a_missing_worktree_directory_is_reported_not_blamed_on_the_agent_program() {
    // Two independent tasks, one agent at a time: the first deletes the worktree, the second
    // must be told the worktree is gone.
    let repo = agent_repo(
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Delete it\n- [ ] 1.2 Independent\n",
        DELETE_WORKTREE,
        "max_agents = 1\n",
    );
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 5, "{out}{err}");
    let t = repo.task("p", "1.2");
    assert_eq!(t["status"], "failed", "{t}");
    let e = t["lastError"].as_str().expect("error");
    assert!(e.contains("of plan `p` is gone"), "{e}");
    assert_eq!(repo.task("p", "1.1")["status"], "failed");
}

#[test]
fn a_locked_worktree_is_reused_and_stays_locked() {
    let repo = agent_repo(PLAN, "[\"true\"]", "");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}{err}");
    repo.git(&["worktree", "lock", "--reason", "mine", ".orch/worktrees/p"]);
    repo.write(
        "docs/plans/p.md",
        &format!("{PLAN}\n## Phase 2: More\n- [ ] 2.1 More work\n"),
    );
    repo.commit_all("more");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("worktree reused"), "{out}");
    assert_eq!(repo.task("p", "2.1")["status"], "completed");
    assert!(
        repo.git(&["worktree", "list", "--porcelain"])
            .contains("locked mine")
    );
}
