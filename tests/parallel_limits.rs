//! The parallelism limits of `orch up` end to end: a plan's `parallel`, `parallel_tasks`, and
//! the run's `max_agents`, seen by scripted agents that meet at a rendezvous (two agents of a
//! plan really run at once; with one at a time, the rendezvous agent fails alone) or journal
//! their spans (never more at once than the limit). Real git repositories in temp dirs, the real
//! binary; every process waited for with a deadline.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{
    Repo, agent_at as agent, fixtures, journal, max_overlap, named, outcome, spans, utf8,
};

const TIMEOUT: Duration = Duration::from_secs(120);

/// A repository with `README.md`, its root canonical (orch reports canonical paths), each
/// process with the deadline of these tests.
fn new_repo() -> Repo {
    Repo::builder().canonical().timeout(TIMEOUT).build()
}

#[test]
fn a_plan_never_runs_more_agents_than_its_parallel_limit() {
    let repo = new_repo();
    let journal_path = repo.outside("journal");
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two\n- [ ] 1.3 Three\n- [ ] 1.4 Four\n",
    );
    repo.manifest(
        &format!(
            "[\"sh\", {:?}, {:?}, \"1\"]",
            fixtures().join("sleepy.sh").display().to_string(),
            utf8(&journal_path)
        ),
        "",
        "max_agents = 4",
        &[("p", "parallel = 2")],
    );
    repo.commit_all("plans");

    repo.up_events(&[], 0);

    for (id, status) in repo.statuses("p") {
        assert_eq!(status, "completed", "task {id}");
    }
    let s = spans(&journal(&journal_path));
    assert_eq!(s.len(), 4, "{s:?}");
    let times: Vec<(u128, u128)> = s.iter().map(|x| (x.2, x.3)).collect();
    assert!(
        max_overlap(&times) <= 2,
        "more than 2 agents at once: {s:?}"
    );
    // Every task's file is on the branch.
    let files = repo.tree_files("plan/p");
    for id in ["1.1", "1.2", "1.3", "1.4"] {
        assert!(files.contains(&format!("p-{id}.txt")), "{files:?}");
    }
    assert_eq!(repo.subjects("plan/p").len(), 4);
}

/// Plan `p` of two independent tasks, both run by `rendezvous.sh`: each agent waits (at most
/// `limit` seconds) until the other has started; `plan_line` is added to the plan's table.
/// Returns the directory where the agents meet.
fn rendezvous_plan(repo: &Repo, plan_line: &str, limit: &str) -> PathBuf {
    let dir = repo.outside("rendezvous");
    std::fs::create_dir_all(&dir).expect("mkdir");
    commit_plan_p_with(
        repo,
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two\n",
        &agent("rendezvous.sh", &[&dir, Path::new(limit)]),
        "max_agents = 4\nretries = 0",
        plan_line,
    );
    dir
}

/// Commits plan `p` (`text`) and a manifest running it with `command`, `defaults` lines and
/// `plan_line` in its `[[plan]]` table.
fn commit_plan_p_with(repo: &Repo, text: &str, command: &str, defaults: &str, plan_line: &str) {
    repo.write("docs/plans/p.md", text);
    repo.manifest(command, "", defaults, &[("p", plan_line)]);
    repo.commit_all("plans");
}

/// Two agents of one plan run at once: each can only finish once the other has started (an
/// agent left alone for 20 s fails its task), so both completing proves the overlap.
fn two_agents_of_plan_p_overlap(plan_line: &str) {
    let repo = new_repo();
    let dir = rendezvous_plan(&repo, plan_line, "20");

    let ev = repo.up_events(&[], 0);

    for (me, other) in [("1.1", "1.2"), ("1.2", "1.1")] {
        let met = std::fs::read_to_string(dir.join(format!("{me}.met")))
            .unwrap_or_else(|_| panic!("the agent of {me} met no one"));
        assert_eq!(met.trim(), other, "{me}");
        assert!(!dir.join(format!("{me}.alone")).exists(), "{me} ran alone");
    }
    let commits = repo.commits("plan/p");
    let mut subjects = repo.subjects("plan/p");
    subjects.sort();
    assert_eq!(subjects, ["p 1.1: One", "p 1.2: Two"], "{commits:?}");
    for (id, other) in [("1.1", "1.2"), ("1.2", "1.1")] {
        let t = repo.task("p", id);
        assert_eq!(t["status"], "completed", "{t}");
        assert_eq!(t["notes"], format!("met {other}"), "{t}");
        let commit = t["commit"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: no commit: {t}"));
        assert!(
            commits.iter().any(|c| c == commit),
            "{id}: {commit} not on plan/p {commits:?}"
        );
    }
    let files = repo.tree_files("plan/p");
    for f in ["p-1.1.txt", "p-1.2.txt"] {
        assert!(files.iter().any(|x| x == f), "{f} not on plan/p: {files:?}");
    }
    assert_eq!(named(&ev, "task_finished").len(), 2, "{ev:?}");
    assert_eq!(outcome(&ev, "p")["outcome"], "completed", "{ev:?}");
}

#[test]
fn with_parallel_2_two_agents_of_a_plan_really_run_at_once() {
    two_agents_of_plan_p_overlap("parallel = 2");
}

#[test]
fn with_parallel_tasks_2_two_agents_of_a_plan_really_run_at_once() {
    two_agents_of_plan_p_overlap("parallel_tasks = 2");
}

/// The control of the two tests above: one agent at a time (`parallel = 1`), the first agent
/// finds no one and fails its task, so those tests cannot pass without an overlap.
#[test]
fn with_one_agent_at_a_time_the_rendezvous_agent_fails_alone() {
    let repo = new_repo();
    let dir = rendezvous_plan(&repo, "parallel = 1", "1");

    repo.up_events(&[], 5);

    assert!(dir.join("1.1.alone").exists(), "1.1 did not run alone");
    let t = repo.task("p", "1.1");
    assert_eq!(t["status"], "failed", "{t}");
    assert!(t["commit"].is_null(), "{t}");
    assert!(
        !repo
            .subjects("plan/p")
            .iter()
            .any(|s| s.starts_with("p 1.1"))
    );
}

#[test]
fn max_agents_one_runs_one_agent_at_a_time_across_plans() {
    let repo = new_repo();
    let journal_path = repo.outside("journal");
    for name in ["x", "y"] {
        repo.write(
            &format!("docs/plans/{name}.md"),
            "# Q\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two\n",
        );
    }
    repo.manifest(
        &format!(
            "[\"sh\", {:?}, {:?}, \"1\"]",
            fixtures().join("sleepy.sh").display().to_string(),
            utf8(&journal_path)
        ),
        "",
        "max_agents = 1\nparallel = 2",
        &[("x", ""), ("y", "")],
    );
    repo.commit_all("plans");

    let ev = repo.up_events(&[], 0);

    assert_eq!(named(&ev, "run_started")[0]["max_agents"], 1);
    for plan in ["x", "y"] {
        for (id, status) in repo.statuses(plan) {
            assert_eq!(status, "completed", "{plan} {id}");
        }
    }
    let s = spans(&journal(&journal_path));
    assert_eq!(s.len(), 4, "{s:?}");
    let times: Vec<(u128, u128)> = s.iter().map(|x| (x.2, x.3)).collect();
    assert_eq!(max_overlap(&times), 1, "two agents at once: {s:?}");
}
