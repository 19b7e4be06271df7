//! The decisions of a task's completion that the core owns, input by input: a finished plan's
//! task worktree pool goes (`Action::DropPool`, no status file read), and a plan agent's end
//! (which tasks to commit, which to put back, done, interrupted or failed).

use std::time::Instant;

use super::tests::{cfg, core, finish, launches, plan, reports, spec};
use super::*;
use crate::graph::Graph;
use crate::manifest::AgentMode;
use crate::status::TaskStatus;
use crate::supervisor::state::PlanAgentEnd;

const TWO: &str = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n";

fn drops(out: &[Action]) -> usize {
    out.iter()
        .filter(|a| matches!(a, Action::DropPool { plan: 0 }))
        .count()
}

fn pooled() -> PlanSpec {
    let mut s = spec("p");
    s.task_trees = true;
    s.slots = 2;
    s
}

#[test]
fn a_finished_plan_with_task_worktrees_drops_its_pool_once_after_its_last_task() {
    let plans = vec![plan(TWO)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut c = core(cfg(4), &g, &plans, vec![pooled()]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(l.len(), 2, "both tasks at once");
    let out = finish(&mut c, t0, l[0].0, l[0].1);
    assert_eq!(drops(&out), 0, "a task of the plan still runs: {out:?}");
    let out = finish(&mut c, t0, l[1].0, l[1].1);
    assert_eq!(drops(&out), 1, "{out:?}");
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::PlanFinished { .. })),
        "with the plan's end"
    );
    assert_eq!(drops(&c.handle(t0, Input::Tick)), 0, "once");
}

#[test]
fn a_plan_without_task_worktrees_or_with_a_failed_task_keeps_its_pool() {
    let plans = vec![plan(TWO)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    // Without task worktrees there is no pool.
    let mut s = spec("p");
    s.slots = 2;
    let mut c = core(cfg(4), &g, &plans, vec![s]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    let mut out = finish(&mut c, t0, l[0].0, l[0].1);
    out.extend(finish(&mut c, t0, l[1].0, l[1].1));
    assert_eq!(drops(&out), 0, "{out:?}");
    // A task that failed for good: the plan is not finished, its pool stays.
    let mut c = core(cfg(4), &g, &plans, vec![pooled()]);
    let l = launches(&c.handle(t0, Input::Tick));
    let mut out = finish(&mut c, t0, l[0].0, l[0].1);
    c.handle(
        t0,
        Input::Launched {
            run: l[1].0,
            pid: 1,
            job_id: None,
        },
    );
    out.extend(c.handle(
        t0,
        Input::Exited {
            run: l[1].0,
            ending: Ending::Exited(Some(1)),
            output: Default::default(),
        },
    ));
    out.extend(c.handle(
        t0,
        Input::Settled {
            run: l[1].0,
            outcome: Outcome::Failed {
                error: "boom".into(),
                saved: None,
            },
        },
    ));
    assert_eq!(drops(&out), 0, "{out:?}");
    assert!(c.is_over());
}

#[test]
fn a_plan_found_finished_at_start_up_drops_the_pool_a_killed_supervisor_left() {
    let plans = vec![plan(TWO)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let done = TaskFacts {
        status: TaskStatus::Completed,
        commit: Some("c".into()),
        fresh: true,
        ..TaskFacts::default()
    };
    let mut c = Core::new(
        cfg(4),
        &g,
        &plans,
        &[0],
        vec!["p".into()],
        vec![Some(pooled())],
        vec![vec![done.clone(), done]],
    );
    let out = c.handle(
        Instant::now(),
        Input::Recovered {
            adopted: Vec::new(),
            retry: Vec::new(),
        },
    );
    assert_eq!(drops(&out), 1, "{out:?}");
}

/// A plan agent exits as `ending` with the plan's tasks recorded as `facts`: its settlement.
fn plan_agent_ends(facts: Vec<TaskFacts>, ending: Ending) -> Settlement {
    let plans = vec![plan(
        "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n- [ ] 1.3 c\n- [ ] 1.4 d\n",
    )];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut s = spec("p");
    s.mode = AgentMode::Plan;
    s.slots = 4;
    let mut c = core(cfg(4), &g, &plans, vec![s]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(l, [(1, Unit::PlanAgent { plan: 0 }, 1)]);
    c.handle(
        t0,
        Input::Launched {
            run: 1,
            pid: 1,
            job_id: None,
        },
    );
    c.handle(
        t0,
        Input::Status {
            plan: 0,
            tasks: facts.into_iter().enumerate().collect(),
            merged: false,
        },
    );
    let out = c.handle(
        t0,
        Input::Exited {
            run: 1,
            ending,
            output: Default::default(),
        },
    );
    out.into_iter()
        .find_map(|a| match a {
            Action::Settle { run: 1, how, .. } => Some(how),
            _ => None,
        })
        .expect("settled")
}

#[test]
fn a_plan_agents_end_names_what_to_commit_and_put_back_and_how_it_ends() {
    let with = |status, commit: Option<&str>| TaskFacts {
        status,
        commit: commit.map(str::to_string),
        fresh: status == TaskStatus::Completed,
        ..TaskFacts::default()
    };
    let facts = vec![
        with(TaskStatus::Completed, None),
        with(TaskStatus::InProgress, None),
        with(TaskStatus::Pending, None),
        with(TaskStatus::Completed, Some("c")),
    ];
    let ended = Ending::Exited(Some(1));
    assert_eq!(
        plan_agent_ends(facts.clone(), ended.clone()),
        Settlement::PlanAgent {
            commit: vec![0],
            reset: vec![1],
            end: PlanAgentEnd::Failed(format!(
                "the plan agent ended ({}) with 2 task(s) unfinished",
                ended.describe()
            )),
        }
    );
    // Stopped (or killed by a signal): run again, not a failure.
    for ending in [Ending::Stopped, Ending::Exited(None)] {
        assert!(matches!(
            plan_agent_ends(facts.clone(), ending),
            Settlement::PlanAgent {
                end: PlanAgentEnd::Interrupted,
                ..
            }
        ));
    }
    // Everything finished: done, whatever the exit (a task completed before orch made the
    // worktree is not committed again).
    let mut old = with(TaskStatus::Completed, None);
    old.fresh = false;
    let all = vec![
        with(TaskStatus::Completed, None),
        with(TaskStatus::Skipped, None),
        old,
        with(TaskStatus::Completed, Some("c")),
    ];
    assert_eq!(
        plan_agent_ends(all, ended),
        Settlement::PlanAgent {
            commit: vec![0],
            reset: vec![],
            end: PlanAgentEnd::Done,
        }
    );
}
