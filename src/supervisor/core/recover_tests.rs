//! Recovery's decisions ([`super::recover`]), every branch, without processes or git.

use super::recover::{
    AgentFacts, Decision, Left, PlanFound, Survivor, TaskDecision, TaskFound, Tree, decide, left,
    reset_plan_tree, tree,
};
use crate::executor::JobState;
use crate::git::RecentCommit;
use crate::status::TaskStatus;

fn process(pid: u32) -> Survivor {
    Survivor::Process {
        pid,
        start_time: u64::from(pid) * 10,
    }
}

fn job(id: &str, attempt: u32) -> Survivor {
    Survivor::Job {
        id: id.to_string(),
        attempt,
        state: JobState::Running,
    }
}

fn task(status: TaskStatus, agent: AgentFacts) -> TaskFound {
    TaskFound {
        task: 0,
        status,
        attempts: 1,
        agent,
    }
}

fn plan(batch: bool, tasks: Vec<TaskFound>) -> PlanFound {
    PlanFound {
        batch,
        tasks,
        ..PlanFound::default()
    }
}

fn env(pids: &[u32]) -> AgentFacts {
    AgentFacts {
        by_env: pids.iter().map(|&p| process(p)).collect(),
        ..AgentFacts::default()
    }
}

fn recorded(pid: u32) -> AgentFacts {
    AgentFacts {
        recorded_process: Some(process(pid)),
        ..AgentFacts::default()
    }
}

fn jobs(listed: Option<Survivor>, recorded: Option<Survivor>) -> AgentFacts {
    AgentFacts {
        listed_job: listed,
        recorded_job: recorded,
        ..AgentFacts::default()
    }
}

/// The decision for the plan's only task (`None`: it stays as it is).
fn one(p: &PlanFound) -> Option<TaskDecision> {
    match decide(p) {
        Decision::Tasks(mut t) => t.pop().map(|(_, d)| d),
        Decision::AdoptPlanAgent(s) => panic!("plan agent adopted: {s:?}"),
    }
}

#[test]
fn a_local_task_agent_alive_is_adopted_its_recorded_process_first() {
    let both = AgentFacts {
        recorded_process: Some(process(7)),
        by_env: vec![process(8), process(9)],
        ..AgentFacts::default()
    };
    let p = plan(false, vec![task(TaskStatus::InProgress, both)]);
    assert_eq!(one(&p), Some(TaskDecision::Adopt(process(7))));
}

#[test]
fn a_process_that_claims_to_be_an_agent_is_never_adopted() {
    // Found by its environment only (launched just before the crash, or claiming to be the
    // task's agent): its word is not a record; the task's agent is gone.
    let p = plan(false, vec![task(TaskStatus::InProgress, env(&[8, 9]))]);
    assert_eq!(one(&p), Some(TaskDecision::Gone));
    let p = plan(false, vec![task(TaskStatus::Pending, env(&[8]))]);
    assert_eq!(one(&p), None);
    let p = plan(false, vec![task(TaskStatus::Failed, env(&[8]))]);
    assert_eq!(one(&p), Some(TaskDecision::Retry));
    // Nor as a plan agent.
    let plan_agent = PlanFound {
        plan_mode: true,
        agent: env(&[8]),
        tasks: vec![task(TaskStatus::InProgress, AgentFacts::default())],
        ..PlanFound::default()
    };
    assert!(matches!(decide(&plan_agent), Decision::Tasks(_)));
}

#[test]
fn a_recorded_process_counts_only_for_a_task_in_progress() {
    let p = plan(false, vec![task(TaskStatus::Pending, recorded(7))]);
    assert_eq!(one(&p), None);
    let p = plan(false, vec![task(TaskStatus::Failed, recorded(7))]);
    assert_eq!(one(&p), Some(TaskDecision::Retry));
}

#[test]
fn a_finished_task_is_never_adopted_nor_reset() {
    for status in [TaskStatus::Completed, TaskStatus::Skipped] {
        let agent = AgentFacts {
            recorded_process: Some(process(7)),
            listed_job: Some(job("12", 1)),
            by_env: vec![process(8)],
            ..AgentFacts::default()
        };
        assert_eq!(one(&plan(false, vec![task(status, agent.clone())])), None);
        assert_eq!(one(&plan(true, vec![task(status, agent)])), None);
    }
}

#[test]
fn an_agent_that_is_gone_leaves_its_task_gone_a_failed_task_retried() {
    let p = plan(
        false,
        vec![task(TaskStatus::InProgress, AgentFacts::default())],
    );
    assert_eq!(one(&p), Some(TaskDecision::Gone));
    let p = plan(false, vec![task(TaskStatus::Failed, AgentFacts::default())]);
    assert_eq!(one(&p), Some(TaskDecision::Retry));
    let p = plan(
        false,
        vec![task(TaskStatus::Pending, AgentFacts::default())],
    );
    assert_eq!(one(&p), None);
}

#[test]
fn a_batch_task_adopts_its_listed_job_first_then_its_recorded_one() {
    let listed = Some(job("12", 2));
    let rec = Some(job("11", 1));
    let p = plan(
        true,
        vec![task(
            TaskStatus::InProgress,
            jobs(listed.clone(), rec.clone()),
        )],
    );
    assert_eq!(one(&p), Some(TaskDecision::Adopt(job("12", 2))));
    let p = plan(
        true,
        vec![task(TaskStatus::InProgress, jobs(None, rec.clone()))],
    );
    assert_eq!(one(&p), Some(TaskDecision::Adopt(job("11", 1))));
    // Submitted just before the crash, its start not recorded: the listed job is adopted.
    let p = plan(true, vec![task(TaskStatus::Pending, jobs(listed, None))]);
    assert_eq!(one(&p), Some(TaskDecision::Adopt(job("12", 2))));
    // A job recorded for a task no longer in progress is not followed.
    let p = plan(true, vec![task(TaskStatus::Failed, jobs(None, rec))]);
    assert_eq!(one(&p), Some(TaskDecision::Retry));
}

#[test]
fn a_batch_plans_agents_are_its_jobs_not_processes_found_here() {
    let p = plan(true, vec![task(TaskStatus::InProgress, env(&[8]))]);
    assert_eq!(one(&p), Some(TaskDecision::Gone));
    // Its listed jobs do not count for a local plan either.
    let p = plan(
        false,
        vec![task(TaskStatus::InProgress, jobs(Some(job("12", 1)), None))],
    );
    assert_eq!(one(&p), Some(TaskDecision::Gone));
}

#[test]
fn a_best_of_n_round_is_stopped_never_adopted_nor_retried() {
    let round = |status, agent| TaskFound {
        attempts: 3,
        ..task(status, agent)
    };
    let p = plan(false, vec![round(TaskStatus::InProgress, env(&[8, 9]))]);
    assert_eq!(
        one(&p),
        Some(TaskDecision::StopRound {
            groups: vec![8, 9],
            gone: true
        })
    );
    let p = plan(false, vec![round(TaskStatus::Failed, recorded(7))]);
    assert_eq!(one(&p), None);
    let p = plan(false, vec![round(TaskStatus::Pending, env(&[8]))]);
    assert_eq!(
        one(&p),
        Some(TaskDecision::StopRound {
            groups: vec![8],
            gone: false
        })
    );
    // A batch plan's rounds are its jobs: decided as any batch task.
    let p = plan(
        true,
        vec![round(TaskStatus::InProgress, AgentFacts::default())],
    );
    assert_eq!(one(&p), Some(TaskDecision::Gone));
}

#[test]
fn a_plan_agent_alive_keeps_its_plan() {
    let with_agent = |batch, agent| PlanFound {
        plan_mode: true,
        batch,
        agent,
        tasks: vec![task(TaskStatus::InProgress, AgentFacts::default())],
    };
    let local = AgentFacts {
        recorded_process: Some(process(7)),
        by_env: vec![process(8)],
        ..jobs(Some(job("12", 1)), None)
    };
    assert_eq!(
        decide(&with_agent(false, local)),
        Decision::AdoptPlanAgent(process(7))
    );
    assert_eq!(
        decide(&with_agent(
            true,
            jobs(Some(job("12", 2)), Some(job("11", 1)))
        )),
        Decision::AdoptPlanAgent(job("12", 2))
    );
    assert_eq!(
        decide(&with_agent(true, jobs(None, Some(job("11", 1))))),
        Decision::AdoptPlanAgent(job("11", 1))
    );
    // Gone: its tasks are decided as a plan's whose agents are gone; a task's own process or
    // job is no plan agent's.
    let gone = Decision::Tasks(vec![(0, TaskDecision::Gone)]);
    assert_eq!(
        decide(&with_agent(false, jobs(Some(job("12", 1)), None))),
        gone
    );
    assert_eq!(decide(&with_agent(true, env(&[8]))), gone);
    let mut p = with_agent(false, AgentFacts::default());
    p.tasks[0].agent = env(&[9]);
    assert_eq!(decide(&p), gone);
}

fn commit(oid: &str, message: &str, time: i64) -> RecentCommit {
    RecentCommit {
        oid: oid.to_string(),
        message: message.to_string(),
        time,
    }
}

/// The checks of a task's commit, when they pass.
fn passed() -> Option<String> {
    None
}

/// The checks of a task's commit, when nothing is to be checked.
fn unasked() -> Option<String> {
    panic!("the checks asked")
}

#[test]
fn a_commit_waiting_clean_in_its_task_worktree_is_done() {
    let done = Left::Done { commit: None };
    let head = Some("auth 1.2: add login\n");
    assert_eq!(
        left("auth", "1.2", head, || Some(true), passed, &[], None),
        done
    );
    // Changed since, or its state unreadable: it runs again.
    assert_eq!(
        left("auth", "1.2", head, || Some(false), unasked, &[], None),
        Left::Reset
    );
    assert_eq!(
        left("auth", "1.2", head, || None, unasked, &[], None),
        Left::Reset
    );
    // Another task's commit (`1.2` is no prefix of `1.20`), or no HEAD: cleanliness not asked.
    let asked = || panic!("cleanliness asked");
    assert_eq!(
        left(
            "auth",
            "1.2",
            Some("auth 1.20: x"),
            asked,
            unasked,
            &[],
            None
        ),
        Left::Reset
    );
    assert_eq!(
        left("auth", "1.2", None, asked, unasked, &[], None),
        Left::Reset
    );
    assert_eq!(
        left("auth", "1.2", Some("api 1.2: x"), asked, unasked, &[], None),
        Left::Reset
    );
}

/// The agent can make the task's commit itself: what the checks of a task's commit refuse, or a
/// check that could not run, is recorded failed with its cause, never done; a commit of the
/// task on the plan branch does not make up for it.
#[test]
fn a_commit_waiting_in_its_task_worktree_that_the_checks_refuse_fails_the_task() {
    let head = Some("auth 1.2: add login");
    let cause = "wrote outside the plan's paths: lib/x.rs (the plan's paths: src)";
    let recent = [commit("c2", "auth 1.2: add login", 200)];
    for recent in [&recent[..], &[]] {
        assert_eq!(
            left(
                "auth",
                "1.2",
                head,
                || Some(true),
                || Some(cause.to_string()),
                recent,
                None
            ),
            Left::Refused {
                cause: cause.to_string()
            }
        );
    }
}

#[test]
fn a_commit_on_the_plan_branch_since_the_task_started_is_recorded() {
    let recent = [
        commit("c3", "auth 1.3: later task", 300),
        commit("c2", "auth 1.2: add login", 200),
        commit("c1", "auth 1.2: an earlier run of it", 100),
    ];
    let done = |oid: &str| Left::Done {
        commit: Some(oid.to_string()),
    };
    let clean = || Some(true);
    assert_eq!(
        left("auth", "1.2", None, clean, unasked, &recent, Some(200)),
        done("c2")
    );
    assert_eq!(
        left("auth", "1.2", None, clean, unasked, &recent, None),
        done("c2")
    );
    assert_eq!(
        left("auth", "1.2", None, clean, unasked, &recent, Some(201)),
        Left::Reset
    );
    assert_eq!(
        left("auth", "1.4", None, clean, unasked, &recent, None),
        Left::Reset
    );
    // The branch unreadable: nothing found, it runs again.
    assert_eq!(
        left("auth", "1.2", None, clean, unasked, &[], None),
        Left::Reset
    );
    // A dirty task worktree does not hide a commit on the branch.
    let head = Some("auth 1.2: add login");
    assert_eq!(
        left(
            "auth",
            "1.2",
            head,
            || Some(false),
            unasked,
            &recent,
            Some(150)
        ),
        done("c2")
    );
}

#[test]
fn the_plan_worktree_is_reset_when_nobody_works_there() {
    assert!(reset_plan_tree(1, false, 1));
    assert!(!reset_plan_tree(1, false, 0));
    assert!(!reset_plan_tree(1, true, 2));
    assert!(!reset_plan_tree(2, false, 2));
}

#[test]
fn a_task_worktree_is_kept_unlocked_or_retired() {
    assert_eq!(tree(true, true, false), Tree::Keep);
    assert_eq!(tree(false, true, false), Tree::Unlock);
    assert_eq!(tree(false, false, true), Tree::Retire { save: false });
    assert_eq!(tree(false, false, false), Tree::Retire { save: true });
}
