//! Live re-planning in the core: a new plan list and settings while attempts run.

use std::time::Instant;

use super::tests::{cfg, core, finish, ids, launches, plan, spec};
use super::*;
use crate::graph::Graph;
use crate::plan::Plan;

/// The re-plan of `plans` (every one in the run, none removed) with `max_agents`.
fn replan(plans: &[Plan], names: &[&str], max_agents: usize) -> Replan {
    let graph = Graph::build(
        plans,
        &names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        &[],
    )
    .expect("acyclic");
    Replan {
        structure: Some(Structure {
            graph,
            plans: plans.iter().cloned().map(Some).collect(),
            facts: vec![None; plans.len()],
        }),
        priorities: vec![0; plans.len()],
        names: names.iter().map(|n| n.to_string()).collect(),
        specs: names.iter().map(|n| Some(spec(n))).collect(),
        removed: vec![false; plans.len()],
        max_agents,
        backoff: cfg(1).backoff,
        budget: cfg(1).budget,
    }
}

/// A core over plans `a` and `b` (`plans`) with their `priorities`, one agent at a time.
fn two_plans(plans: &[Plan], priorities: &[i64]) -> Core {
    let names = vec!["a".to_string(), "b".to_string()];
    let g = Graph::build(plans, &names, &[]).expect("acyclic");
    Core::new(
        cfg(1),
        &g,
        plans,
        priorities,
        names,
        vec![Some(spec("a")), Some(spec("b"))],
        vec![vec![Default::default(); 2]; 2],
    )
}

fn refs(plans: &[Plan]) -> Vec<&Plan> {
    plans.iter().collect()
}

#[test]
fn a_running_attempt_keeps_its_task_when_the_tasks_are_reordered() {
    let plans = vec![plan(
        "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b (depends: 1.1)\n",
    )];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut c = core(cfg(4), &g, &plans, vec![spec("a")]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(ids(&c, &plans, &l), ["1.1"]);
    // 1.0 added before it: 1.1 is now the second task; its attempt follows it.
    let new = vec![plan(
        "## Phase 1: A\n- [ ] 1.0 z\n- [ ] 1.1 a\n- [ ] 1.2 b (depends: 1.1)\n",
    )];
    assert_eq!(c.replan_waits_for(&refs(&new)), None);
    let out = c.handle(t0, Input::Replanned(Box::new(replan(&new, &["a"], 4))));
    // The new task has no dependency, but the plan runs one task at a time: it waits.
    assert!(launches(&out).is_empty(), "{out:?}");
    let run = l[0].0;
    let unit = c.state().runs[&run].unit;
    assert_eq!(unit, Unit::Task { plan: 0, task: 1 });
    let out = finish(&mut c, t0, run, unit);
    let next = launches(&out);
    assert_eq!(ids(&c, &new, &next), ["1.0"]);
    assert!(c.state().tasks[0][1].facts.status.is_finished());
}

#[test]
fn an_edit_that_removes_a_running_task_waits() {
    let plans = vec![plan("## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n")];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut c = core(cfg(4), &g, &plans, vec![spec("a")]);
    let l = launches(&c.handle(Instant::now(), Input::Tick));
    assert_eq!(ids(&c, &plans, &l), ["1.1"]);
    let without = vec![plan("## Phase 1: A\n- [ ] 1.2 b\n")];
    let why = c.replan_waits_for(&refs(&without)).expect("waits");
    assert!(why.contains("a:1.1"), "{why}");
    // Removing a task that does not run applies.
    let without_b = vec![plan("## Phase 1: A\n- [ ] 1.1 a\n")];
    assert_eq!(c.replan_waits_for(&refs(&without_b)), None);
}

#[test]
fn raised_max_agents_and_a_new_plan_start_more_and_a_removed_plan_starts_nothing() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n";
    let plans = vec![plan(text), plan(text)];
    let mut c = two_plans(&plans, &[0, 0]);
    let t0 = Instant::now();
    let first = launches(&c.handle(t0, Input::Tick));
    assert_eq!(first.len(), 1);
    let busy = first[0].1.plan();
    // Plan c added, the other plan of the two removed, three agents at once.
    let mut all = plans.clone();
    all.push(plan(text));
    let mut r = replan(&all, &["a", "b", "c"], 3);
    r.removed[1 - busy] = true;
    let out = c.handle(t0, Input::Replanned(Box::new(r)));
    let l = launches(&out);
    let started: Vec<usize> = l.iter().map(|(_, u, _)| u.plan()).collect();
    assert_eq!(started, [2], "{out:?}");
    // The removed plan ends as removed, not blocked, once nothing of it runs.
    let (summary, _) = c.summary(std::time::Duration::ZERO);
    let removed = summary
        .plans
        .iter()
        .find(|p| p.plan == ["a", "b"][1 - busy])
        .expect("outcome");
    assert_eq!(removed.outcome.as_str(), "removed");
}

#[test]
fn a_priority_edit_keeps_the_plans_and_reorders_the_next_start() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b (depends: 1.1)\n";
    let plans = vec![plan(text), plan(text)];
    let mut c = two_plans(&plans, &[5, 0]);
    let t0 = Instant::now();
    let first = launches(&c.handle(t0, Input::Tick));
    assert_eq!(first[0].1, Unit::Task { plan: 0, task: 0 });
    let mut r = replan(&plans, &["a", "b"], 1);
    r.structure = None;
    r.priorities = vec![5, 9];
    c.handle(t0, Input::Replanned(Box::new(r)));
    let next = launches(&finish(&mut c, t0, first[0].0, first[0].1));
    assert_eq!(
        next.iter().map(|l| l.1).collect::<Vec<_>>(),
        [Unit::Task { plan: 1, task: 0 }]
    );
}
