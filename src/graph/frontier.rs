//! Incremental readiness: the ready set that [`readiness`](super::readiness) computes over the
//! whole graph, kept up to date one task state change at a time.
//!
//! Each node counts its unsatisfied predecessors. A task node is satisfied when it is done; a
//! gate (phase barrier, plan gate, cross-plan target) when all of its predecessors are. A state
//! change touches only the node's successors (and, through gates that open or close, theirs):
//! a barrier that opens releases the tasks behind it once, so the cost per task stays constant
//! whatever the size of the plans. Ready tasks wait in one ordered set per plan, in the order
//! `orch up` starts them (task priority marker, then longest remaining path, then file order);
//! plans are compared by their priority first, as in [`readiness`](super::readiness).
//!
//! `[SEQUENTIAL]` groups: a task whose group has a member in progress is parked when it reaches
//! the head of its plan's set, and comes back when the group is free. The supervisor can hold a
//! task back for reasons of its own (two task worktrees naming the same file) the same way.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use super::build::{Graph, NodeKind};
use super::schedule::{DEFAULT_ESTIMATE_S, NodeState, node_weights, remaining_path};
use crate::plan::{Plan, Priority};

/// Where a ready task stands among the ready tasks of its plan: smaller starts first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    priority: Reverse<Priority>,
    tail: Reverse<u64>,
    task: usize,
    node: usize,
}

/// The ready set of a run, maintained incrementally. See the module documentation.
#[derive(Clone, Debug)]
pub struct Frontier {
    /// Unsatisfied predecessors of each node (counted with multiplicity, like `preds`).
    unsat: Vec<u32>,
    satisfied: Vec<bool>,
    /// Task nodes' states (gates: always `Pending`, unused).
    state: Vec<NodeState>,
    /// Each task node's place in its plan's order (`None` for gates).
    keys: Vec<Option<Key>>,
    plan_of: Vec<usize>,
    /// Per plan: the pending task nodes whose predecessors are all satisfied.
    ready: Vec<BTreeSet<Key>>,
    in_ready: Vec<bool>,
    /// Per `[SEQUENTIAL]` group: members in progress, and members parked while it is busy.
    group_busy: Vec<u32>,
    group_parked: Vec<Vec<usize>>,
    /// Per plan: tasks held back by the caller ([`Frontier::hold`]).
    held: Vec<Vec<usize>>,
    plan_priority: Vec<i64>,
    /// Task nodes that are not done.
    unfinished: Vec<usize>,
    /// Elementary steps taken so far (successor visits, set insertions and removals): what a
    /// test counts to show that the cost per change does not grow with the graph.
    ops: u64,
}

impl Frontier {
    /// The frontier of `graph` with every task in the state `state(plan, task)` gives. O(graph).
    pub fn new(
        graph: &Graph,
        plans: &[Plan],
        plan_priority: &[i64],
        state: impl Fn(usize, usize) -> NodeState,
    ) -> Self {
        let n = graph.nodes.len();
        let tails = remaining_path(graph, &node_weights(graph, plans, DEFAULT_ESTIMATE_S));
        let mut keys = vec![None; n];
        let mut plan_of = vec![usize::MAX; n];
        let mut node_state = vec![NodeState::Pending; n];
        for (i, node) in graph.nodes.iter().enumerate() {
            if let NodeKind::Task { plan, task } = node.kind {
                keys[i] = Some(Key {
                    priority: Reverse(plans[plan].tasks[task].priority),
                    tail: Reverse(tails[i]),
                    task,
                    node: i,
                });
                plan_of[i] = plan;
                node_state[i] = state(plan, task);
            }
        }
        let mut f = Frontier {
            unsat: graph.nodes.iter().map(|x| x.preds.len() as u32).collect(),
            satisfied: vec![false; n],
            state: node_state,
            keys,
            plan_of,
            ready: vec![BTreeSet::new(); plans.len()],
            in_ready: vec![false; n],
            group_busy: vec![0; graph.seq_group_count],
            group_parked: vec![Vec::new(); graph.seq_group_count],
            held: vec![Vec::new(); plans.len()],
            plan_priority: (0..plans.len())
                .map(|p| plan_priority.get(p).copied().unwrap_or(0))
                .collect(),
            unfinished: vec![0; plans.len()],
            ops: 0,
        };
        for &i in &graph.topo {
            let sat = match graph.nodes[i].kind {
                NodeKind::Task { .. } => f.state[i] == NodeState::Done,
                _ => f.unsat[i] == 0,
            };
            if sat {
                f.satisfied[i] = true;
                for &s in &graph.succs[i] {
                    f.unsat[s] -= 1;
                }
            }
        }
        for i in 0..n {
            if f.keys[i].is_none() {
                continue;
            }
            if f.state[i] != NodeState::Done {
                f.unfinished[f.plan_of[i]] += 1;
            }
            if f.state[i] == NodeState::InProgress
                && let Some(g) = graph.seq_group[i]
            {
                f.group_busy[g] += 1;
            }
            f.offer(i);
        }
        f
    }

    /// Tasks of plan `p` not done.
    pub(crate) fn unfinished(&self, p: usize) -> usize {
        self.unfinished[p]
    }

    /// Elementary steps taken since the frontier was made (see the field).
    pub(crate) fn ops(&self) -> u64 {
        self.ops
    }

    /// Changes a task node's state. Cost: the node's successors, plus those of gates that open
    /// or close because of it.
    pub fn set_state(&mut self, graph: &Graph, node: usize, state: NodeState) {
        let old = self.state[node];
        if old == state || self.keys[node].is_none() {
            return;
        }
        self.state[node] = state;
        let p = self.plan_of[node];
        if let Some(g) = graph.seq_group[node] {
            if old == NodeState::InProgress {
                self.group_busy[g] -= 1;
                if self.group_busy[g] == 0 {
                    for parked in std::mem::take(&mut self.group_parked[g]) {
                        self.offer(parked);
                    }
                }
            } else if state == NodeState::InProgress {
                self.group_busy[g] += 1;
            }
        }
        match (old == NodeState::Done, state == NodeState::Done) {
            (false, true) => {
                self.unfinished[p] -= 1;
                self.satisfy(graph, node);
            }
            (true, false) => {
                self.unfinished[p] += 1;
                self.unsatisfy(graph, node);
            }
            _ => {}
        }
        if state == NodeState::Pending {
            self.offer(node);
        } else {
            self.withdraw(node);
        }
    }

    /// The next task of plan `p` to start, if any: the first ready one whose `[SEQUENTIAL]`
    /// group is free (members of busy groups are parked on the way).
    pub fn head(&mut self, graph: &Graph, p: usize) -> Option<usize> {
        while let Some(&k) = self.ready[p].first() {
            self.ops += 1;
            match graph.seq_group[k.node] {
                Some(g) if self.group_busy[g] > 0 => {
                    self.withdraw(k.node);
                    self.group_parked[g].push(k.node);
                }
                _ => return Some(k.node),
            }
        }
        None
    }

    /// New plan priorities (a lead's edit during the run): O(plans). They rank the ready
    /// tasks across plans when asked ([`Frontier::rank`]), so nothing else changes.
    pub(crate) fn set_plan_priorities(&mut self, priorities: &[i64]) {
        for (p, slot) in self.plan_priority.iter_mut().enumerate() {
            *slot = priorities.get(p).copied().unwrap_or(0);
        }
    }

    /// The order key of a task node across plans: plan priority, then the plan's own order.
    pub fn rank(&self, node: usize) -> Option<impl Ord + Copy + use<>> {
        let k = self.keys[node]?;
        let p = self.plan_of[node];
        Some((
            Reverse(self.plan_priority[p]),
            k.priority,
            k.tail,
            p,
            k.task,
        ))
    }

    /// Holds a ready task back until [`Frontier::release_held`] is called for its plan.
    pub(crate) fn hold(&mut self, node: usize) {
        if self.in_ready[node] {
            self.withdraw(node);
            self.held[self.plan_of[node]].push(node);
        }
    }

    /// Puts back the tasks of plan `p` held by [`Frontier::hold`] (those still ready).
    pub(crate) fn release_held(&mut self, p: usize) {
        for node in std::mem::take(&mut self.held[p]) {
            self.offer(node);
        }
    }

    /// Whether plan `p` holds tasks back.
    pub(crate) fn holds(&self, p: usize) -> bool {
        !self.held[p].is_empty()
    }

    fn offer(&mut self, node: usize) {
        self.ops += 1;
        if self.in_ready[node] || self.state[node] != NodeState::Pending || self.unsat[node] != 0 {
            return;
        }
        if let Some(k) = self.keys[node] {
            self.ready[self.plan_of[node]].insert(k);
            self.in_ready[node] = true;
        }
    }

    fn withdraw(&mut self, node: usize) {
        self.ops += 1;
        if !self.in_ready[node] {
            return;
        }
        if let Some(k) = self.keys[node] {
            self.ready[self.plan_of[node]].remove(&k);
        }
        self.in_ready[node] = false;
    }

    fn satisfy(&mut self, graph: &Graph, node: usize) {
        let mut stack = vec![node];
        while let Some(i) = stack.pop() {
            self.satisfied[i] = true;
            for &s in &graph.succs[i] {
                self.ops += 1;
                self.unsat[s] -= 1;
                if self.unsat[s] == 0 {
                    if self.keys[s].is_some() {
                        self.offer(s);
                    } else {
                        stack.push(s);
                    }
                }
            }
        }
    }

    fn unsatisfy(&mut self, graph: &Graph, node: usize) {
        let mut stack = vec![node];
        while let Some(i) = stack.pop() {
            self.satisfied[i] = false;
            for &s in &graph.succs[i] {
                self.ops += 1;
                self.unsat[s] += 1;
                if self.unsat[s] == 1 {
                    if self.keys[s].is_some() {
                        self.withdraw(s);
                    } else if self.satisfied[s] {
                        stack.push(s);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;
    use crate::graph::{CrossDep, CrossTarget, readiness};
    use crate::plan::parse;

    impl Frontier {
        /// Every ready task in the order [`readiness`] lists them: across plans by rank, one
        /// per free `[SEQUENTIAL]` group. O(ready tasks).
        pub(crate) fn ready_order(&self, graph: &Graph) -> Vec<usize> {
            let mut all: Vec<usize> = self
                .ready
                .iter()
                .flatten()
                .map(|k| k.node)
                .chain(self.group_parked.iter().flatten().copied())
                .chain(self.held.iter().flatten().copied())
                .filter(|&n| self.state[n] == NodeState::Pending && self.unsat[n] == 0)
                .collect();
            all.sort_by_key(|&n| self.rank(n));
            all.dedup();
            let mut taken = vec![false; self.group_busy.len()];
            all.into_iter()
                .filter(|&n| match graph.seq_group[n] {
                    Some(g) if self.group_busy[g] > 0 || taken[g] => false,
                    Some(g) => {
                        taken[g] = true;
                        true
                    }
                    None => true,
                })
                .collect()
        }
    }

    /// A plan from generator choices: phases of tasks, some with dependencies on earlier tasks,
    /// priority markers, a [SEQUENTIAL] group, a VERIFY step, [PARALLEL] phases.
    fn plan_text(phases: &[(usize, Vec<(u8, u8)>)], seq: bool, parallel: bool) -> String {
        let mut s = String::from("# P\n");
        if parallel && phases.len() >= 3 {
            s.push_str("**Execution Note:** Phases 2-3 are [PARALLEL] - x\n");
        }
        let mut ids: Vec<String> = Vec::new();
        for (ph, (count, deps)) in phases.iter().enumerate() {
            let ph = ph + 1;
            s.push_str(&format!("## Phase {ph}: P{ph}\n"));
            for t in 1..=*count {
                let id = format!("{ph}.{t}");
                let (dep, prio) = deps.get(t - 1).copied().unwrap_or((0, 0));
                let mut line = format!("- [ ] {id} task");
                match prio % 4 {
                    1 => line.push_str(" (HIGH)"),
                    2 => line.push_str(" (LOW)"),
                    3 => line.push_str(" (CRITICAL)"),
                    _ => {}
                }
                if dep > 0 && !ids.is_empty() {
                    let d = &ids[usize::from(dep) % ids.len()];
                    line.push_str(&format!(" (depends: {d})"));
                }
                s.push_str(&line);
                s.push('\n');
                ids.push(id);
            }
            if ph == 1 {
                s.push_str("**VERIFY Phase 1:**\n- it works\n");
            }
            if seq && ph == 1 && *count >= 3 {
                s.push_str("**Execution Note:** Tasks 1.1-1.3 are [SEQUENTIAL] - x\n");
            }
        }
        s
    }

    fn phases() -> impl Strategy<Value = Vec<(usize, Vec<(u8, u8)>)>> {
        prop::collection::vec(
            (1usize..6)
                .prop_flat_map(|n| (Just(n), prop::collection::vec((0u8..4, 0u8..8), n..=n))),
            1..4,
        )
    }

    fn as_state(x: u8) -> NodeState {
        match x % 4 {
            0 => NodeState::Pending,
            1 => NodeState::InProgress,
            2 => NodeState::Done,
            _ => NodeState::Failed,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// After any sequence of state changes, the frontier's ready set is exactly what the
        /// whole-graph computation gives, in the same order.
        #[test]
        fn the_frontier_agrees_with_readiness(
            a in phases(),
            b in phases(),
            seq in any::<bool>(),
            parallel in any::<bool>(),
            cross in 0u8..3,
            steps in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4), 0..60),
        ) {
            let pa = parse(Path::new("a.md"), &plan_text(&a, seq, parallel));
            let pb = parse(Path::new("b.md"), &plan_text(&b, false, !parallel));
            prop_assume!(!pa.has_errors() && !pb.has_errors());
            let plans = vec![pa, pb];
            let deps = match cross {
                0 => vec![],
                1 => vec![CrossDep { from: 1, to: 0, target: CrossTarget::Phase(1) }],
                _ => vec![CrossDep { from: 1, to: 0, target: CrossTarget::Plan }],
            };
            let names = vec!["a".to_string(), "b".to_string()];
            let Ok(graph) = Graph::build(&plans, &names, &deps) else {
                return Ok(());
            };
            let prios = [0i64, i64::from(cross) - 1];
            let tasks: Vec<(usize, usize)> = plans
                .iter()
                .enumerate()
                .flat_map(|(p, pl)| (0..pl.tasks.len()).map(move |t| (p, t)))
                .collect();
            let mut states: Vec<Vec<NodeState>> =
                plans.iter().map(|p| vec![NodeState::Pending; p.tasks.len()]).collect();
            let mut f = Frontier::new(&graph, &plans, &prios, |p, t| states[p][t]);
            for (ix, s) in steps {
                let (p, t) = tasks[ix.index(tasks.len())];
                states[p][t] = as_state(s);
                f.set_state(&graph, graph.task_node[p][t], as_state(s));
                // Heads park busy-group members; the order must not change because of it.
                let _ = f.head(&graph, p);
                let want = readiness(&graph, &plans, &prios, |p, t| states[p][t]).ready;
                prop_assert_eq!(f.ready_order(&graph), want);
            }
            for (p, pl) in plans.iter().enumerate() {
                let open = pl.tasks.iter().enumerate().filter(|(t, _)| states[p][*t] != NodeState::Done).count();
                prop_assert_eq!(f.unfinished(p), open);
            }
        }
    }

    /// One plan's graph and its frontier, every task pending.
    fn one_plan(text: &str) -> (Graph, Frontier) {
        let p = parse(Path::new("p.md"), text);
        let g = Graph::of_plan(&p).expect("acyclic");
        let f = Frontier::new(&g, &[p], &[0], |_, _| NodeState::Pending);
        (g, f)
    }

    #[test]
    fn a_barrier_releases_the_next_phase_once_and_closes_again_on_a_reset() {
        let (g, mut f) = one_plan(
            "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n## Phase 2: B\n- [ ] 2.1 c\n- [ ] 2.2 d\n",
        );
        let node = |t: usize| g.task_node[0][t];
        assert_eq!(f.ready_order(&g), [node(0), node(1)]);
        f.set_state(&g, node(0), NodeState::Done);
        assert_eq!(f.ready_order(&g), [node(1)]);
        f.set_state(&g, node(1), NodeState::Done);
        assert_eq!(f.ready_order(&g), [node(2), node(3)]);
        assert_eq!(f.unfinished(0), 2);
        // Someone resets 1.2: phase 2 closes again.
        f.set_state(&g, node(1), NodeState::Pending);
        assert_eq!(f.ready_order(&g), [node(1)]);
        assert_eq!(f.head(&g, 0), Some(node(1)));
    }

    #[test]
    fn sequential_members_are_parked_while_one_runs() {
        let (g, mut f) = one_plan(
            "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n- [ ] 1.3 c\n**Execution Note:** Tasks 1.1-1.2 are [SEQUENTIAL] - x\n",
        );
        let node = |t: usize| g.task_node[0][t];
        assert_eq!(f.head(&g, 0), Some(node(0)));
        f.set_state(&g, node(0), NodeState::InProgress);
        // 1.2 is parked on the way to 1.3.
        assert_eq!(f.head(&g, 0), Some(node(2)));
        f.set_state(&g, node(2), NodeState::InProgress);
        assert_eq!(f.head(&g, 0), None);
        f.set_state(&g, node(0), NodeState::Done);
        assert_eq!(f.head(&g, 0), Some(node(1)));
    }

    #[test]
    fn held_tasks_come_back_when_released() {
        let (g, mut f) = one_plan("## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n");
        let node = |t: usize| g.task_node[0][t];
        f.hold(node(0));
        assert_eq!(f.head(&g, 0), Some(node(1)));
        assert!(f.holds(0));
        f.release_held(0);
        assert_eq!(f.head(&g, 0), Some(node(0)));
    }
}
