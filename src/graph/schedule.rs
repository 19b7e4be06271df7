//! What the graph means for running: the ready set (with why the rest waits), waves (the
//! earliest start of each task with unlimited agents) and the critical path.

use std::borrow::Borrow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::build::{Graph, NodeKind};
use crate::plan::Plan;

/// The run state of one task, as far as scheduling cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    Pending,
    InProgress,
    /// Completed or skipped: dependents may go.
    Done,
    Failed,
}

/// Why a pending task cannot start yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// A task it depends on is not done (pending or in progress).
    Task(usize),
    /// A task it depends on failed: it will not start until that task is retried and done.
    Failed(usize),
    /// Earlier phases are not finished (the barrier before `phase` of plan `plan`).
    Phases {
        plan: usize,
        phase: u32,
        left: usize,
    },
    /// A cross-plan dependency is not met.
    Upstream { plan: usize, label: String },
    /// Another task of its [SEQUENTIAL] group is running or starts first.
    Sequential(usize),
}

#[derive(Clone, Debug)]
pub struct Readiness {
    /// Task nodes that may start now, in the order orch would start them.
    pub ready: Vec<usize>,
    /// Pending task nodes that must wait, with the reasons.
    pub blocked: Vec<(usize, Vec<Waiting>)>,
}

/// The estimated duration `orch up` gives a task without `(est: …)` when it ranks ready tasks:
/// 10 minutes. When no task has an estimate, every path is weighed by its number of tasks.
pub(crate) const DEFAULT_ESTIMATE_S: u64 = 600;

/// Each node's own weight in seconds: a task's `(est: …)` or `default_s`; 0 for gates.
pub(crate) fn node_weights<P: Borrow<Plan>>(
    graph: &Graph,
    plans: &[P],
    default_s: u64,
) -> Vec<u64> {
    (0..graph.nodes.len())
        .map(|n| {
            graph.task_of(n).map_or(0, |(p, t)| {
                plans[p].borrow().tasks[t].estimate_s.unwrap_or(default_s)
            })
        })
        .collect()
}

/// The longest remaining path from each node to the end of all plans (the node's own weight
/// included), in the unit of `weights`: the critical-path-first tie-breaker.
pub(crate) fn remaining_path(graph: &Graph, weights: &[u64]) -> Vec<u64> {
    let mut tail = vec![0u64; graph.nodes.len()];
    for &n in graph.topo.iter().rev() {
        let best = graph.succs[n].iter().map(|&s| tail[s]).max().unwrap_or(0);
        tail[n] = weights[n].saturating_add(best);
    }
    tail
}

/// How ready tasks are ranked and when a phase opens.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rules<'a> {
    /// [`remaining_path`] of every node: longer goes first among equal priorities.
    pub(crate) tails: &'a [u64],
    /// Per mille of the earlier phases' tasks that must be done before a phase opens: 1000
    /// (all of them) in orch; 800 for the earlier system's `phase80` rule (`orch simulate`).
    pub(crate) phase_open_permille: u32,
}

/// Computes the ready set. `state(plan, task)` gives each task's state; `plan_priority`
/// orders plans (higher first); tasks without an estimate weigh [`DEFAULT_ESTIMATE_S`].
pub fn readiness<P: Borrow<Plan>>(
    graph: &Graph,
    plans: &[P],
    plan_priority: &[i64],
    state: impl Fn(usize, usize) -> NodeState,
) -> Readiness {
    let tails = remaining_path(graph, &node_weights(graph, plans, DEFAULT_ESTIMATE_S));
    let rules = Rules {
        tails: &tails,
        phase_open_permille: 1000,
    };
    readiness_with(graph, plans, plan_priority, rules, state)
}

/// [`readiness`] with explicit ranking and phase rules. Order of the ready set: plan priority,
/// then the task's priority marker, then the longest remaining path, then plan and file order.
pub(crate) fn readiness_with<P: Borrow<Plan>>(
    graph: &Graph,
    plans: &[P],
    plan_priority: &[i64],
    rules: Rules<'_>,
    state: impl Fn(usize, usize) -> NodeState,
) -> Readiness {
    let n = graph.nodes.len();
    let mut node_state = vec![NodeState::Pending; n];
    let mut satisfied = vec![false; n];
    // (done, total) tasks behind each barrier, for a `phase_open_permille` below 1000.
    let mut behind = vec![(0usize, 0usize); n];
    for &i in &graph.topo {
        match graph.nodes[i].kind {
            NodeKind::Task { plan, task } => {
                node_state[i] = state(plan, task);
                satisfied[i] = node_state[i] == NodeState::Done;
            }
            NodeKind::Barrier { .. } if rules.phase_open_permille < 1000 => {
                let (mut done, mut total) = (0, 0);
                for &p in &graph.nodes[i].preds {
                    match graph.nodes[p].kind {
                        NodeKind::Task { .. } => {
                            done += usize::from(satisfied[p]);
                            total += 1;
                        }
                        NodeKind::Barrier { .. } => {
                            done += behind[p].0;
                            total += behind[p].1;
                        }
                        _ => {}
                    }
                }
                behind[i] = (done, total);
                let permille = u64::from(rules.phase_open_permille);
                satisfied[i] = done as u64 * 1000 >= permille * total as u64;
            }
            _ => satisfied[i] = graph.nodes[i].preds.iter().all(|&p| satisfied[p]),
        }
    }
    let tail = rules.tails;

    let mut running_in_group = vec![None; graph.seq_group_count];
    for (i, st) in node_state.iter().enumerate() {
        if *st == NodeState::InProgress
            && let Some(g) = graph.seq_group[i]
        {
            running_in_group[g] = Some(i);
        }
    }

    let mut candidates = Vec::new();
    let mut blocked = Vec::new();
    // Unfinished tasks behind each barrier, counted once (`usize::MAX`: not yet).
    let mut unfinished_memo = vec![usize::MAX; n];
    for i in 0..n {
        let Some((plan, task)) = graph.task_of(i) else {
            continue;
        };
        if node_state[i] != NodeState::Pending {
            continue;
        }
        let waiting = waiting_for(graph, i, &satisfied, &node_state, &mut unfinished_memo);
        if waiting.is_empty() {
            candidates.push((plan, task, i));
        } else {
            blocked.push((i, waiting));
        }
    }
    let key = |&(plan, task, i): &(usize, usize, usize)| {
        let t = &plans[plan].borrow().tasks[task];
        (
            Reverse(plan_priority.get(plan).copied().unwrap_or(0)),
            Reverse(t.priority),
            Reverse(tail.get(i).copied().unwrap_or(0)),
            plan,
            task,
        )
    };
    candidates.sort_by_key(key);
    let mut ready = Vec::with_capacity(candidates.len());
    for (_, _, i) in candidates {
        match graph.seq_group[i] {
            Some(g) => match running_in_group[g] {
                Some(other) => blocked.push((i, vec![Waiting::Sequential(other)])),
                None => {
                    running_in_group[g] = Some(i);
                    ready.push(i);
                }
            },
            None => ready.push(i),
        }
    }
    blocked.sort_by_key(|(i, _)| *i);
    Readiness { ready, blocked }
}

/// The agent slots as the supervisor sees them when it fills them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slots<'a> {
    /// Agents running at once, all plans together.
    pub(crate) max_agents: usize,
    /// Agents running now.
    pub(crate) running: usize,
    /// Agents running now, per plan.
    pub(crate) per_plan: &'a [usize],
    /// Most agents per plan (`parallel` in task mode, 1 in plan mode).
    pub(crate) plan_limit: &'a [usize],
}

/// The slot-filling decision of `orch up` (and of `orch simulate`): goes through `ready` in
/// order and takes each task while a slot is free, both overall and in its plan. Tasks of plans
/// for which `may_start(plan)` says no are passed over (the plan is not prepared, finished, …).
pub(crate) fn pick(
    graph: &Graph,
    ready: &[usize],
    slots: Slots<'_>,
    mut may_start: impl FnMut(usize) -> bool,
) -> Vec<usize> {
    let mut running = slots.running;
    let mut per_plan = slots.per_plan.to_vec();
    let mut out = Vec::new();
    for &node in ready {
        if running >= slots.max_agents {
            break;
        }
        let Some((p, _)) = graph.task_of(node) else {
            continue;
        };
        if !may_start(p) {
            continue;
        }
        let limit = slots.plan_limit.get(p).copied().unwrap_or(1);
        if let Some(now) = per_plan.get_mut(p)
            && *now < limit
        {
            *now += 1;
            running += 1;
            out.push(node);
        }
    }
    out
}

fn waiting_for(
    graph: &Graph,
    node: usize,
    satisfied: &[bool],
    state: &[NodeState],
    memo: &mut [usize],
) -> Vec<Waiting> {
    let preds = &graph.nodes[node].preds;
    // One reason per predecessor at most, except for plan gates.
    let mut out = Vec::with_capacity(preds.len());
    for &p in preds {
        if satisfied[p] {
            continue;
        }
        match &graph.nodes[p].kind {
            NodeKind::Task { .. } if state[p] == NodeState::Failed => out.push(Waiting::Failed(p)),
            NodeKind::Task { .. } => out.push(Waiting::Task(p)),
            NodeKind::Barrier { plan, phase } => {
                let left = count_unfinished(graph, p, satisfied, memo);
                out.push(Waiting::Phases {
                    plan: *plan,
                    phase: *phase,
                    left,
                });
            }
            NodeKind::PlanGate { .. } => {
                for &t in &graph.nodes[p].preds {
                    if !satisfied[t]
                        && let NodeKind::Target { plan, label } = &graph.nodes[t].kind
                    {
                        out.push(Waiting::Upstream {
                            plan: *plan,
                            label: label.clone(),
                        });
                    }
                }
            }
            NodeKind::Target { plan, label } => out.push(Waiting::Upstream {
                plan: *plan,
                label: label.clone(),
            }),
        }
    }
    out
}

/// Unfinished tasks behind a barrier (following earlier unsatisfied barriers), remembered per
/// barrier in `memo` (`usize::MAX`: not yet): a barrier's count is its own unfinished tasks plus
/// its predecessor barrier's count, so each barrier's tasks are counted once, not once per later
/// phase (which made readiness quadratic in the number of phases).
fn count_unfinished(
    graph: &Graph,
    barrier: usize,
    satisfied: &[bool],
    memo: &mut [usize],
) -> usize {
    // The chain of barriers not counted yet, from `barrier` back.
    let mut chain = Vec::new();
    let mut cur = Some(barrier);
    while let Some(b) = cur {
        if memo[b] != usize::MAX {
            break;
        }
        chain.push(b);
        // (The last such predecessor, as below: a barrier has one before it at most.)
        cur =
            graph.nodes[b].preds.iter().copied().rfind(|&p| {
                matches!(graph.nodes[p].kind, NodeKind::Barrier { .. }) && !satisfied[p]
            });
    }
    for &b in chain.iter().rev() {
        let mut count = 0;
        let mut behind = 0;
        for &p in &graph.nodes[b].preds {
            match graph.nodes[p].kind {
                NodeKind::Barrier { .. } if !satisfied[p] => behind = memo[p],
                NodeKind::Task { .. } if !satisfied[p] => count += 1,
                _ => {}
            }
        }
        memo[b] = count + behind;
    }
    memo[barrier]
}

/// Earliest starts with unlimited agents and one time unit per task.
#[derive(Clone, Debug)]
pub struct Waves {
    /// `waves[k]` = task nodes that start in wave `k + 1`, in file order.
    pub waves: Vec<Vec<usize>>,
    /// Wave number (1-based) of each node; 0 for gates.
    #[cfg(test)]
    pub(crate) wave_of: Vec<u32>,
    /// The longest chain of tasks, first to last.
    pub critical_path: Vec<usize>,
}

/// Computes waves: each task starts one wave after the last of its dependencies; two tasks of
/// one [SEQUENTIAL] group never share a wave (the earlier in file order goes first).
pub fn waves(graph: &Graph) -> Waves {
    let n = graph.nodes.len();
    let mut indeg: Vec<usize> = graph.nodes.iter().map(|x| x.preds.len()).collect();
    let mut ready_at = vec![0u32; n];
    let mut via: Vec<Option<usize>> = vec![None; n];
    let mut finish = vec![0u32; n];
    let mut group_free = vec![0u32; graph.seq_group_count];
    let mut group_last: Vec<Option<usize>> = vec![None; graph.seq_group_count];
    let mut heap: BinaryHeap<Reverse<(u32, usize)>> = BinaryHeap::new();
    let mut instant: Vec<usize> = Vec::new();

    for (i, d) in indeg.iter().enumerate() {
        if *d == 0 {
            if graph.task_of(i).is_some() {
                heap.push(Reverse((0, i)));
            } else {
                instant.push(i);
            }
        }
    }
    loop {
        // Gates open as soon as they are reached; a task takes one wave.
        let (i, fin) = if let Some(g) = instant.pop() {
            (g, ready_at[g])
        } else {
            let Some(Reverse((at, i))) = heap.pop() else {
                break;
            };
            if let Some(g) = graph.seq_group[i] {
                if group_free[g] > at {
                    ready_at[i] = group_free[g];
                    via[i] = group_last[g];
                    heap.push(Reverse((group_free[g], i)));
                    continue;
                }
                group_free[g] = at + 1;
                group_last[g] = Some(i);
            }
            (i, at + 1)
        };
        finish[i] = fin;
        for &s in &graph.succs[i] {
            if fin >= ready_at[s] && (via[s].is_none() || fin > ready_at[s]) {
                ready_at[s] = fin;
                via[s] = Some(i);
            }
            indeg[s] -= 1;
            if indeg[s] == 0 {
                if graph.task_of(s).is_some() {
                    heap.push(Reverse((ready_at[s], s)));
                } else {
                    instant.push(s);
                }
            }
        }
    }

    #[cfg(test)]
    let mut wave_of = vec![0u32; n];
    let mut waves: Vec<Vec<usize>> = Vec::new();
    let mut last: Option<usize> = None;
    for i in 0..n {
        if graph.task_of(i).is_some() {
            let w = finish[i];
            #[cfg(test)]
            {
                wave_of[i] = w;
            }
            let idx = w.saturating_sub(1) as usize;
            if waves.len() <= idx {
                waves.resize(idx + 1, Vec::new());
            }
            waves[idx].push(i);
            if last.is_none_or(|l| finish[l] < w) {
                last = Some(i);
            }
        }
    }
    let mut critical_path = Vec::new();
    let mut cur = last;
    while let Some(c) = cur {
        if graph.task_of(c).is_some() {
            critical_path.push(c);
        }
        cur = via[c];
    }
    critical_path.reverse();
    Waves {
        waves,
        #[cfg(test)]
        wave_of,
        critical_path,
    }
}
