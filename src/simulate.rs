//! The engine of `orch simulate`: the scheduler `orch up` uses ([`readiness_with`] ranks the
//! ready tasks, [`pick`] fills the slots) run against a virtual clock. No processes, no git, no
//! sleeping: time jumps from one task end to the next.
//!
//! Policies: `orch` (the real one), `batched` (the earlier system: take up to N ready tasks,
//! wait for all of them, repeat) and `phase80` (its older phase rule: a phase opens when 80 %
//! of the earlier phases' tasks are done; otherwise like `orch`).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::fmt;

use crate::graph::{Graph, NodeState, Rules, Slots, pick, readiness_with, remaining_path};
use crate::plan::Plan;

/// A scheduling policy to simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// The scheduler of `orch up`.
    Orch,
    /// Up to N ready tasks start together; the next batch starts when all of them are done.
    Batched,
    /// Like `orch`, but a phase opens when 80 % of the earlier phases' tasks are done.
    Phase80,
}

impl Policy {
    pub(crate) const ALL: [Policy; 3] = [Policy::Orch, Policy::Batched, Policy::Phase80];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Policy::Orch => "orch",
            Policy::Batched => "batched",
            Policy::Phase80 => "phase80",
        }
    }

    /// Parses a policy name (`orch`, `batched`, `phase80`).
    pub(crate) fn parse(s: &str) -> Result<Policy, String> {
        Policy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown policy `{s}` (known: orch, batched, phase80)"))
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What is simulated: the plans' graph, what the scheduler knows, and how long tasks take.
#[derive(Clone, Copy, Debug)]
pub struct Workload<'a> {
    pub(crate) graph: &'a Graph,
    pub(crate) plans: &'a [Plan],
    /// Plan priorities (higher first), as in `plans.toml`.
    pub(crate) priorities: &'a [i64],
    /// Most agents per plan.
    pub(crate) plan_limit: &'a [usize],
    /// The scheduler's view: [`remaining_path`] over the estimates (it never sees the real
    /// durations).
    pub(crate) tails: &'a [u64],
    /// How long each node really takes, in seconds (0 for gates).
    pub(crate) durations: &'a [u64],
    /// Task nodes done before the run starts (`[x]` in the plan, plans not simulated).
    pub(crate) done: &'a [bool],
    /// Best of N: attempts of each node at once (each holds a slot; missing: 1).
    pub(crate) attempts: &'a [u32],
}

/// One task's run in the simulated schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) node: usize,
    /// The agent slot it ran in, from 0.
    pub(crate) slot: usize,
    pub(crate) start: u64,
    pub(crate) end: u64,
}

/// The result of one simulated run.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub(crate) policy: Policy,
    pub(crate) slots: usize,
    /// When the last task ended (seconds).
    pub makespan: u64,
    /// The longest dependency chain with these durations (seconds).
    pub(crate) critical_path: u64,
    /// Sum of all task durations: the sequential time (seconds).
    pub(crate) work: u64,
    /// A tighter bound no schedule that keeps the plans' rules can beat (see [`tight_bound`]).
    pub tight_bound: u64,
    /// The runs of the tasks, in start order.
    pub(crate) spans: Vec<Span>,
}

impl Outcome {
    /// No schedule can be shorter: max(critical path, total work ÷ slots).
    pub fn lower_bound(&self) -> u64 {
        let slots = self.slots.max(1) as u64;
        self.critical_path.max(self.work.div_ceil(slots))
    }

    /// Busy agent time ÷ (slots × makespan); 1 when there is nothing to do.
    pub(crate) fn utilisation(&self) -> f64 {
        if self.makespan == 0 {
            return 1.0;
        }
        self.work as f64 / (self.slots as f64 * self.makespan as f64)
    }

    /// The seeds' "parallel execution efficiency": (sequential time − makespan) ÷ sequential
    /// time, the share of time parallel execution saves; 0 when there is nothing to do.
    pub(crate) fn parallel_efficiency(&self) -> f64 {
        if self.work == 0 {
            return 0.0;
        }
        1.0 - self.makespan as f64 / self.work as f64
    }
}

/// Tasks that can never start (a failed dependency cannot happen here, so only a plan waiting
/// on something outside the workload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck(pub Vec<usize>);

/// Runs `policy` with `slots` agents over the workload.
pub fn simulate(w: &Workload<'_>, policy: Policy, slots: usize) -> Result<Outcome, Stuck> {
    let g = w.graph;
    let n = g.nodes.len();
    let mut state: Vec<NodeState> = (0..n)
        .map(|i| {
            if w.done.get(i).copied().unwrap_or(false) {
                NodeState::Done
            } else {
                NodeState::Pending
            }
        })
        .collect();
    // Durations as run: 0 for gates and for tasks done before the start.
    let effective: Vec<u64> = (0..n)
        .map(|i| {
            if g.task_of(i).is_none() || state[i] == NodeState::Done {
                0
            } else {
                w.durations.get(i).copied().unwrap_or(0)
            }
        })
        .collect();
    let critical_path = remaining_path(g, &effective).into_iter().max().unwrap_or(0);
    // Agent time: each attempt of a best-of-N task counts.
    let work: u64 = effective
        .iter()
        .enumerate()
        .map(|(i, d)| d * u64::from(w.attempts.get(i).copied().unwrap_or(1).max(1)))
        .sum();
    let tight_bound = tight_bound(w, &effective, slots);

    let rules = Rules {
        tails: w.tails,
        phase_open_permille: if policy == Policy::Phase80 { 800 } else { 1000 },
    };
    let mut per_plan = vec![0usize; w.plans.len()];
    let mut free: BTreeSet<usize> = (0..slots).collect();
    let mut running: BinaryHeap<Reverse<(u64, usize, usize)>> = BinaryHeap::new();
    let mut spans = Vec::new();
    let mut now = 0u64;
    loop {
        if policy != Policy::Batched || running.is_empty() {
            let r = readiness_with(g, w.plans, w.priorities, rules, |p, t| {
                state[g.task_node[p][t]]
            });
            let limits = Slots {
                max_agents: slots,
                running: slots - free.len(),
                per_plan: &per_plan,
                plan_limit: w.plan_limit,
            };
            for node in pick(g, &r.ready, limits, |_| true) {
                // Best of N: its attempts start together, one slot each, and all end with the
                // first (`attempts_stop = "first"`; every attempt succeeds here).
                let width = (w.attempts.get(node).copied().unwrap_or(1).max(1) as usize).min(slots);
                if free.len() < width {
                    break;
                }
                let end = now.saturating_add(effective[node]);
                state[node] = NodeState::InProgress;
                if let Some((p, _)) = g.task_of(node) {
                    per_plan[p] += 1;
                }
                for _ in 0..width {
                    let Some(slot) = free.pop_first() else { break };
                    spans.push(Span {
                        node,
                        slot,
                        start: now,
                        end,
                    });
                    running.push(Reverse((end, node, slot)));
                }
            }
        }
        let Some(&Reverse((end, _, _))) = running.peek() else {
            break;
        };
        now = end;
        while let Some(&Reverse((e, node, slot))) = running.peek() {
            if e != now {
                break;
            }
            running.pop();
            free.insert(slot);
            // A node of several attempts is done (and frees its plan's slot) once.
            if state[node] != NodeState::Done {
                state[node] = NodeState::Done;
                if let Some((p, _)) = g.task_of(node) {
                    per_plan[p] = per_plan[p].saturating_sub(1);
                }
            }
        }
    }
    let stuck: Vec<usize> = (0..n)
        .filter(|&i| g.task_of(i).is_some() && state[i] != NodeState::Done)
        .collect();
    if !stuck.is_empty() {
        return Err(Stuck(stuck));
    }
    Ok(Outcome {
        policy,
        slots,
        makespan: now,
        critical_path,
        work,
        tight_bound,
        spans,
    })
}

/// A lower bound tighter than max(critical path, work ÷ slots) that still no schedule keeping
/// the plans' rules can beat (`phase80` breaks them and may). A set of tasks needs at least its
/// *spread*: max(its work ÷ slots, its longest task, the work of each [SEQUENTIAL] group in it).
/// Nothing after a gate (phase barrier, cross-plan target) starts before everything before it
/// is done, so each gate is reached no earlier than the longest path to it, the spread of the
/// tasks before it, and, for a gate right before it, that gate's time plus the spread of the
/// tasks between the two; the run ends no earlier than a gate's time plus the longest path or
/// the spread after it. Also each plan's work ÷ min(its agent limit, slots).
pub(crate) fn tight_bound(w: &Workload<'_>, durations: &[u64], slots: usize) -> u64 {
    let g = w.graph;
    let n = g.nodes.len();
    let slots = slots.max(1) as u64;
    let tail = remaining_path(g, durations);
    let mut head = vec![0u64; n];
    for &i in &g.topo {
        let best = g.nodes[i].preds.iter().map(|&p| head[p]).max().unwrap_or(0);
        head[i] = durations[i].saturating_add(best);
    }
    let spread = |member: &dyn Fn(usize) -> bool| -> u64 {
        let mut groups = vec![0u64; g.seq_group_count];
        let (mut work, mut longest) = (0u64, 0u64);
        for i in (0..n).filter(|&i| member(i)) {
            work = work.saturating_add(durations[i]);
            longest = longest.max(durations[i]);
            if let Some(k) = g.seq_group[i] {
                groups[k] = groups[k].saturating_add(durations[i]);
            }
        }
        let group = groups.into_iter().max().unwrap_or(0);
        work.div_ceil(slots).max(longest).max(group)
    };
    let mut bound = tail
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(spread(&|_| true));
    // Per gate: the earliest time it can be reached, and the tasks after it.
    let mut reached: Vec<Option<(u64, Vec<bool>)>> = vec![None; n];
    for &b in g.topo.iter().filter(|&&i| g.task_of(i).is_none()) {
        let before = reach(n, b, |i| g.nodes[i].preds.as_slice());
        let after = reach(n, b, |i| &g.succs[i]);
        let mut at = head[b].max(spread(&|i| before[i]));
        for &p in &g.nodes[b].preds {
            if let Some((t, after_p)) = &reached[p] {
                at = at.max(t.saturating_add(spread(&|i| after_p[i] && before[i])));
            }
        }
        bound = bound.max(at.saturating_add(tail[b].max(spread(&|i| after[i]))));
        reached[b] = Some((at, after));
    }
    let mut per_plan = vec![0u64; w.plans.len()];
    for (i, d) in durations.iter().enumerate() {
        if let Some((p, _)) = g.task_of(i) {
            per_plan[p] = per_plan[p].saturating_add(*d);
        }
    }
    for (p, plan_work) in per_plan.into_iter().enumerate() {
        let limit = w.plan_limit.get(p).copied().unwrap_or(usize::MAX).max(1) as u64;
        bound = bound.max(plan_work.div_ceil(limit.min(slots)));
    }
    bound
}

/// The nodes reachable from `start` (not itself) by following `next`.
fn reach<'a>(n: usize, start: usize, next: impl Fn(usize) -> &'a [usize]) -> Vec<bool> {
    let mut seen = vec![false; n];
    let mut stack = next(start).to_vec();
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut seen[i], true) {
            stack.extend_from_slice(next(i));
        }
    }
    seen
}

/// The inputs of a [`Workload`] besides the graph and plans, owned.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub(crate) tails: Vec<u64>,
    pub(crate) durations: Vec<u64>,
    pub(crate) done: Vec<bool>,
    pub(crate) plan_limit: Vec<usize>,
    /// Best of N: attempts of each node at once (empty: 1 each).
    pub(crate) attempts: Vec<u32>,
}

impl Inputs {
    /// Durations and estimates from `model`; tasks marked `[x]` and every task of a plan not in
    /// `selected` count as done; at most `plan_limit[p]` agents on plan `p` at once (missing:
    /// no limit).
    pub fn new(
        graph: &Graph,
        plans: &[Plan],
        model: DurationModel,
        plan_limit: &[usize],
        selected: &[usize],
    ) -> Inputs {
        let done = (0..graph.nodes.len())
            .map(|i| {
                graph
                    .task_of(i)
                    .is_some_and(|(p, t)| plans[p].tasks[t].done || !selected.contains(&p))
            })
            .collect();
        Inputs {
            tails: remaining_path(graph, &model.estimates(graph, plans)),
            durations: model.durations(graph, plans),
            done,
            plan_limit: (0..plans.len())
                .map(|p| plan_limit.get(p).copied().unwrap_or(usize::MAX))
                .collect(),
            attempts: Vec::new(),
        }
    }

    pub fn workload<'a>(
        &'a self,
        graph: &'a Graph,
        plans: &'a [Plan],
        priorities: &'a [i64],
    ) -> Workload<'a> {
        Workload {
            graph,
            plans,
            priorities,
            plan_limit: &self.plan_limit,
            tails: &self.tails,
            durations: &self.durations,
            done: &self.done,
            attempts: &self.attempts,
        }
    }
}

/// How long tasks really take in a simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurationModel {
    /// Seconds for a task without `(est: …)`.
    pub default_s: u64,
    /// `None`: every task takes exactly its estimate. `Some(seed)`: each task takes its
    /// estimate times a factor drawn from a log-normal distribution with median 1 and σ = 0.5
    /// (clamped to 0.25–4), seeded so the same seed gives the same durations.
    pub seed: Option<u64>,
}

/// The spread (σ of the natural logarithm) of the seeded duration factor.
pub(crate) const SIGMA: f64 = 0.5;

impl DurationModel {
    /// Each node's estimated seconds (`(est: …)` or the default; 0 for gates): what the
    /// scheduler ranks by.
    pub(crate) fn estimates(&self, graph: &Graph, plans: &[Plan]) -> Vec<u64> {
        crate::graph::node_weights(graph, plans, self.default_s)
    }

    /// Each node's real seconds under this model.
    pub(crate) fn durations(&self, graph: &Graph, plans: &[Plan]) -> Vec<u64> {
        let estimates = self.estimates(graph, plans);
        let Some(seed) = self.seed else {
            return estimates;
        };
        let mut rng = SplitMix64(seed);
        estimates
            .iter()
            .enumerate()
            .map(|(i, &e)| {
                // One draw per node whether or not it is a task: the same seed gives a task the
                // same factor however the others are annotated.
                let f = rng.lognormal_factor();
                if graph.task_of(i).is_none() || e == 0 {
                    0
                } else {
                    ((e as f64 * f).round() as u64).max(1)
                }
            })
            .collect()
    }
}

/// A small, well-known seeded generator (SplitMix64); good enough for durations.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// exp(σ·z) for a standard normal z (Box–Muller), clamped to 0.25–4.
    pub(crate) fn lognormal_factor(&mut self) -> f64 {
        let (u1, u2) = (self.unit(), self.unit());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (SIGMA * z).exp().clamp(0.25, 4.0)
    }
}

#[cfg(test)]
mod tests;
