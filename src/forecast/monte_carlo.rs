//! Per-plan and per-run ETA and cost: the scheduler of `orch up` (its [`Frontier`], ranked as
//! the core ranks ready tasks across plans, `max_agents`, each plan's limit, `[SEQUENTIAL]`
//! groups) run many times on a virtual clock from the current state, each task's attempts drawn
//! from its [`Estimate`]: whether it fails (its kind's failure rate; a failed attempt is retried
//! while the plan's `retries` allow, at once: backoff is not modelled), how long it takes, what
//! it costs. A running task continues from its elapsed time. The p50 and p90 over the runs are
//! the forecast.
//!
//! Cost per run: O(tasks × (plans + log tasks)); the frontier is built once and cloned per run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::estimate::Estimate;
use crate::graph::{Frontier, Graph, NodeState};
use crate::plan::Plan;
use crate::simulate::SplitMix64;

/// Runs per forecast unless the caller says otherwise.
pub(crate) const RUNS: usize = 200;

/// Where a task stands now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TaskNow {
    /// Completed or skipped (or of a plan not forecast).
    Done,
    /// Not started; `attempts` made already (failed ones, counted against the retries).
    Pending { attempts: u32 },
    /// An attempt has run `elapsed_s`; `attempt` is its number (1 for the first).
    Running { elapsed_s: f64, attempt: u32 },
    /// Failed for good: its dependents never start.
    Failed,
}

/// What the forecast runs on. Per plan and task: `state[p][t]`, `estimate[p][t]`.
#[derive(Clone, Copy, Debug)]
pub struct Setup<'a> {
    pub graph: &'a Graph,
    pub plans: &'a [Plan],
    pub priorities: &'a [i64],
    /// Agents at once per plan (`usize::MAX`: no limit of its own).
    pub plan_limit: &'a [usize],
    pub max_agents: usize,
    /// Retries of a failed task, per plan.
    pub retries: &'a [u32],
    pub state: &'a [Vec<TaskNow>],
    pub estimate: &'a [Vec<Estimate>],
}

/// p50 and p90 of an end (seconds from now) and of a cost still to spend (US dollars).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Range {
    pub end_p50_s: f64,
    pub end_p90_s: f64,
    /// `None` when no task's history named a cost.
    pub(crate) cost_p50: Option<f64>,
    pub(crate) cost_p90: Option<f64>,
}

/// The forecast of a run and of each of its plans.
#[derive(Clone, Debug, PartialEq)]
pub struct Forecast {
    pub run: Range,
    /// Per plan, in the order of `Setup::plans`.
    pub plans: Vec<Range>,
    /// Runs in which some task failed for good (its plan then blocks).
    pub(crate) blocked_share: f64,
    pub(crate) runs: usize,
}

/// One simulated run: the end of the run and of each plan, their costs, whether a task failed
/// for good.
struct One {
    end: u64,
    cost: f64,
    plan_end: Vec<u64>,
    plan_cost: Vec<f64>,
    blocked: bool,
}

/// Milliseconds on the virtual clock.
fn ms(s: f64) -> u64 {
    (s.max(0.0) * 1000.0).round() as u64
}

/// Forecasts `setup` over `runs` runs drawn from `seed` (the same seed, the same forecast).
pub fn forecast(setup: &Setup<'_>, runs: usize, seed: u64) -> Forecast {
    let g = setup.graph;
    let base = Frontier::new(g, setup.plans, setup.priorities, |p, t| {
        match setup.state[p][t] {
            TaskNow::Done => NodeState::Done,
            TaskNow::Pending { .. } => NodeState::Pending,
            TaskNow::Running { .. } => NodeState::InProgress,
            TaskNow::Failed => NodeState::Failed,
        }
    });
    let has_cost = setup.estimate.iter().flatten().any(|e| e.cost.is_some());
    let mut rng = SplitMix64(seed);
    let mut all: Vec<One> = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        all.push(one_run(setup, base.clone(), &mut rng));
    }
    let n_plans = setup.plans.len();
    let range = |ends: Vec<u64>, costs: Vec<f64>| -> Range {
        let ends: Vec<f64> = ends.into_iter().map(|e| e as f64 / 1000.0).collect();
        Range {
            end_p50_s: quantile(ends.clone(), 0.5),
            end_p90_s: quantile(ends, 0.9),
            cost_p50: has_cost.then(|| quantile(costs.clone(), 0.5)),
            cost_p90: has_cost.then(|| quantile(costs, 0.9)),
        }
    };
    let plans = (0..n_plans)
        .map(|p| {
            range(
                all.iter().map(|o| o.plan_end[p]).collect(),
                all.iter().map(|o| o.plan_cost[p]).collect(),
            )
        })
        .collect();
    Forecast {
        run: range(
            all.iter().map(|o| o.end).collect(),
            all.iter().map(|o| o.cost).collect(),
        ),
        plans,
        blocked_share: all.iter().filter(|o| o.blocked).count() as f64 / all.len() as f64,
        runs: all.len(),
    }
}

/// The `q` quantile of `v` (nearest rank, interpolated).
fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    super::estimate::quantile_sorted(&v, q)
}

/// One attempt drawn: (seconds from its start, or from now for a running one; failed; cost).
fn draw(e: &Estimate, rng: &mut SplitMix64, elapsed: f64) -> (f64, bool, f64) {
    let failed = e.fail_rate > 0.0 && rng.unit() <= e.fail_rate;
    let u = rng.unit().min(1.0 - 1e-12);
    let total = match (failed, elapsed > 0.0) {
        (false, _) => e.draw_duration(u, elapsed),
        (true, true) => e.failed_duration.quantile_after(u, elapsed),
        (true, false) => e.failed_duration.quantile(u),
    };
    let cost = e.cost.map_or(0.0, |c| c.quantile(u));
    ((total - elapsed).max(0.0), failed, cost)
}

fn one_run(setup: &Setup<'_>, mut f: Frontier, rng: &mut SplitMix64) -> One {
    let g = setup.graph;
    let n_plans = setup.plans.len();
    let mut per_plan = vec![0usize; n_plans];
    let mut attempts = vec![0u32; g.nodes.len()];
    let mut out = One {
        end: 0,
        cost: 0.0,
        plan_end: vec![0; n_plans],
        plan_cost: vec![0.0; n_plans],
        blocked: false,
    };
    // (end ms, node, failed)
    let mut running: BinaryHeap<Reverse<(u64, usize, bool)>> = BinaryHeap::new();
    for (node, tries) in attempts.iter_mut().enumerate() {
        let Some((p, t)) = g.task_of(node) else {
            continue;
        };
        match setup.state[p][t] {
            TaskNow::Running { elapsed_s, attempt } => {
                let (d, failed, cost) = draw(&setup.estimate[p][t], rng, elapsed_s.max(1e-3));
                *tries = attempt.max(1);
                per_plan[p] += 1;
                out.plan_cost[p] += cost;
                running.push(Reverse((ms(d), node, failed)));
            }
            TaskNow::Pending { attempts: a } => *tries = a,
            _ => {}
        }
    }
    let mut now = 0u64;
    loop {
        // Fill the free slots as the core does: the best-ranked head among the plans with room.
        while running.len() < setup.max_agents {
            let mut best: Option<(usize, usize)> = None;
            for (p, &now_p) in per_plan.iter().enumerate() {
                if f.unfinished(p) == 0 || now_p >= setup.plan_limit.get(p).copied().unwrap_or(1) {
                    continue;
                }
                let Some(h) = f.head(g, p) else { continue };
                if best.is_none_or(|(b, _)| f.rank(h) < f.rank(b)) {
                    best = Some((h, p));
                }
            }
            let Some((node, p)) = best else { break };
            let Some((_, t)) = g.task_of(node) else { break };
            f.set_state(g, node, NodeState::InProgress);
            attempts[node] += 1;
            per_plan[p] += 1;
            let (d, failed, cost) = draw(&setup.estimate[p][t], rng, 0.0);
            out.plan_cost[p] += cost;
            running.push(Reverse((now + ms(d).max(1), node, failed)));
        }
        let Some(Reverse((end, node, failed))) = running.pop() else {
            break;
        };
        now = end;
        let Some((p, _)) = g.task_of(node) else {
            continue;
        };
        per_plan[p] = per_plan[p].saturating_sub(1);
        out.plan_end[p] = out.plan_end[p].max(now);
        let state = if !failed {
            NodeState::Done
        } else if attempts[node] <= setup.retries.get(p).copied().unwrap_or(0) {
            NodeState::Pending
        } else {
            out.blocked = true;
            NodeState::Failed
        };
        f.set_state(g, node, state);
    }
    out.end = now;
    out.cost = out.plan_cost.iter().sum();
    out
}
