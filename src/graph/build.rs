//! The effective dependency graph of one or many plans.
//!
//! Nodes are tasks (and verification steps) plus zero-work *gates*: a phase-group barrier
//! ("every task of earlier phases is done") or a plan gate ("the plan's cross-plan dependencies
//! are met"). Gates keep the graph linear in size: a task waits for one barrier instead of for
//! every task of every earlier phase.

use std::borrow::Borrow;
use std::collections::HashMap;

use crate::diagnostic::Diagnostic;
use crate::plan::{IdIndex, IdMap, Plan, TaskKind};

/// What a cross-plan dependency waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrossTarget {
    /// Every task of the plan.
    Plan,
    /// Every task (and the verification step) of a phase.
    Phase(u32),
    /// One task.
    Task(String),
    /// Every task of a Spec Kit plan labelled with this story (`US1`).
    Story(String),
}

/// `plans[from]` waits for `target` of `plans[to]`.
#[derive(Clone, Debug)]
pub struct CrossDep {
    pub from: usize,
    pub to: usize,
    pub target: CrossTarget,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NodeKind {
    /// `plans[plan].tasks[task]`.
    Task { plan: usize, task: usize },
    /// Every blocking task of the phases before `phase` (a phase number) is done.
    Barrier { plan: usize, phase: u32 },
    /// The cross-plan dependencies of `plans[plan]` are met.
    PlanGate { plan: usize },
    /// The target of a cross-plan dependency on `plans[plan]` is reached.
    Target { plan: usize, label: String },
}

#[derive(Clone, Debug)]
pub struct Node {
    pub(crate) kind: NodeKind,
    pub preds: Vec<usize>,
}

/// Each node's successors, `succs[i]` a slice: one vector for all of them (a vector per node
/// was an allocation per task of a long plan).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Succs {
    /// Node `i`'s successors are `all[start[i]..start[i + 1]]`.
    start: Vec<usize>,
    all: Vec<usize>,
}

impl Succs {
    /// The number of nodes.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::ops::Index<usize> for Succs {
    type Output = [usize];

    fn index(&self, i: usize) -> &[usize] {
        &self.all[self.start[i]..self.start[i + 1]]
    }
}

/// The graph plus its topological order.
#[derive(Clone, Debug)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub(crate) succs: Succs,
    /// Node indices in an order where every node comes after its predecessors.
    pub topo: Vec<usize>,
    /// `task_node[plan][task]` = node index of that task.
    pub(crate) task_node: Vec<Vec<usize>>,
    /// Sequential group index per task node (groups numbered across plans), for exclusion.
    pub(crate) seq_group: Vec<Option<usize>>,
    pub(crate) seq_group_count: usize,
}

/// The plan graph has a cycle: the diagnostic names its whole path.
#[derive(Debug)]
pub struct CycleError(pub Vec<Diagnostic>);

impl Graph {
    /// Builds the graph of one plan.
    pub fn of_plan(plan: &Plan) -> Result<Graph, CycleError> {
        Self::build(std::slice::from_ref(plan), &[], &[])
    }

    /// Builds the combined graph of several plans joined by cross-plan dependencies;
    /// `names` are the plans' manifest names (used in cycle messages).
    ///
    /// `plans` may be plans or references to them (`&[Plan]`, `&[&Plan]`).
    pub fn build<P: Borrow<Plan>>(
        plans: &[P],
        names: &[String],
        cross: &[CrossDep],
    ) -> Result<Graph, CycleError> {
        let plans: Vec<&Plan> = plans.iter().map(Borrow::borrow).collect();
        let mut b = Builder::default();
        // Every node at once: a task each, at most a barrier per phase, two per cross-plan
        // dependency (its target and the plan's gate).
        let nodes: usize = plans
            .iter()
            .map(|p| p.tasks.len() + p.phases.len())
            .sum::<usize>()
            + 2 * cross.len();
        b.nodes.reserve_exact(nodes);
        b.seq.reserve_exact(nodes);
        for (pi, plan) in plans.iter().enumerate() {
            b.add_plan(pi, plan);
        }
        b.add_cross(&plans, cross);
        b.finish(&plans, names)
    }

    pub fn task_of(&self, node: usize) -> Option<(usize, usize)> {
        match self.nodes[node].kind {
            NodeKind::Task { plan, task } => Some((plan, task)),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Builder {
    nodes: Vec<Node>,
    task_node: Vec<Vec<usize>>,
    gates: Vec<Option<usize>>,
    seq: Vec<Option<usize>>,
    seq_count: usize,
}

/// Phase number → index in `plan.phases` (the last phase of a number, as a map collected in
/// order keeps): a table by number when the numbers are small (they count from 1), else a map.
enum PhaseIndex {
    Dense(Vec<Option<usize>>),
    Map(IdMap<u32, usize>),
}

impl PhaseIndex {
    fn new(plan: &Plan) -> Self {
        let max = plan.phases.iter().map(|p| p.number).max().unwrap_or(0) as usize;
        if max <= 4 * plan.phases.len() + 64 {
            let mut at = vec![None; max + 1];
            for (i, p) in plan.phases.iter().enumerate() {
                at[p.number as usize] = Some(i);
            }
            PhaseIndex::Dense(at)
        } else {
            PhaseIndex::Map(
                plan.phases
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (p.number, i))
                    .collect(),
            )
        }
    }

    fn get(&self, number: u32) -> Option<usize> {
        match self {
            PhaseIndex::Dense(at) => at.get(number as usize).copied().flatten(),
            PhaseIndex::Map(m) => m.get(&number).copied(),
        }
    }
}

impl Builder {
    fn push(&mut self, kind: NodeKind) -> usize {
        self.nodes.push(Node {
            kind,
            preds: Vec::new(),
        });
        self.seq.push(None);
        self.nodes.len() - 1
    }

    fn add_plan(&mut self, pi: usize, plan: &Plan) {
        // Each id's task (the last of a repeated id, as a map filled in order keeps).
        let id_of = |i: usize| plan.tasks[i].id.as_str();
        let mut index = IdIndex::with_capacity(plan.tasks.len());
        for (i, t) in plan.tasks.iter().enumerate() {
            index.insert_last(&t.id, i, id_of);
        }
        let ids = |id: &str| index.get(id, id_of);
        let nodes: Vec<usize> = (0..plan.tasks.len())
            .map(|ti| self.push(NodeKind::Task { plan: pi, task: ti }))
            .collect();

        // Phase groups: consecutive phases joined by [PARALLEL] notes share one barrier.
        let mut group_of_phase: Vec<usize> = Vec::with_capacity(plan.phases.len());
        let mut group = 0;
        for (i, phase) in plan.phases.iter().enumerate() {
            let joined = i > 0
                && plan.parallel.iter().any(|g| {
                    g.phases.contains(&phase.number)
                        && g.phases.contains(&plan.phases[i - 1].number)
                });
            if i > 0 && !joined {
                group += 1;
            }
            group_of_phase.push(group);
        }
        // Each task's phase (its index in `plan.phases`), looked up once.
        let phase_of: Vec<Option<usize>> = {
            let index = PhaseIndex::new(plan);
            plan.tasks.iter().map(|t| index.get(t.phase)).collect()
        };
        // The tasks (not verification steps) of each phase, for the steps that wait for them.
        let mut own_tasks: Vec<Vec<usize>> = vec![Vec::new(); plan.phases.len()];
        for (ti, t) in plan.tasks.iter().enumerate() {
            if t.kind == TaskKind::Task
                && let Some(pidx) = phase_of[ti]
            {
                own_tasks[pidx].push(nodes[ti]);
            }
        }
        let group_count = group_of_phase.last().map_or(0, |g| g + 1);
        // barrier[g] = node every task of group g waits for (None for the first group).
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); group_count];
        for (ti, t) in plan.tasks.iter().enumerate() {
            if let Some(pidx) = phase_of[ti]
                && (t.kind == TaskKind::Task || t.blocking)
            {
                members[group_of_phase[pidx]].push(nodes[ti]);
            }
        }
        let mut barrier: Vec<Option<usize>> = vec![None; group_count];
        for g in 1..group_count {
            let first_phase =
                plan.phases[group_of_phase.iter().position(|x| *x == g).unwrap_or(0)].number;
            let node = self.push(NodeKind::Barrier {
                plan: pi,
                phase: first_phase,
            });
            let mut preds = members[g - 1].clone();
            if let Some(prev) = barrier[g - 1] {
                preds.push(prev);
            }
            self.nodes[node].preds = preds;
            barrier[g] = Some(node);
        }

        for (ti, t) in plan.tasks.iter().enumerate() {
            let Some(pidx) = phase_of[ti] else {
                continue;
            };
            let phase = &plan.phases[pidx];
            let phase_barrier = barrier[group_of_phase[pidx]];
            let node = nodes[ti];
            let preds: Vec<usize> = match (&t.kind, &t.depends) {
                (TaskKind::Verify, _) => {
                    let own = &own_tasks[pidx];
                    if own.is_empty() {
                        phase_barrier.into_iter().collect()
                    } else {
                        own.clone()
                    }
                }
                (TaskKind::Task, Some(deps)) => deps
                    .iter()
                    .filter_map(|d| ids(d).map(|i| nodes[i]))
                    .filter(|&n| n != node)
                    .collect(),
                (TaskKind::Task, None) => match &phase.pipeline_start {
                    Some(ps) => ids(&ps.trigger).map(|i| nodes[i]).into_iter().collect(),
                    None => phase_barrier.into_iter().collect(),
                },
            };
            self.nodes[node].preds = preds;
        }

        for g in &plan.sequential {
            let gi = self.seq_count;
            self.seq_count += 1;
            for id in &g.tasks {
                if let Some(ti) = ids(id) {
                    self.seq[nodes[ti]] = Some(gi);
                }
            }
        }
        self.task_node.push(nodes);
        self.gates.push(None);
    }

    fn add_cross(&mut self, plans: &[&Plan], cross: &[CrossDep]) {
        for dep in cross {
            let target_plan = &plans[dep.to];
            let tn = &self.task_node[dep.to];
            let (label, preds): (String, Vec<usize>) = match &dep.target {
                CrossTarget::Plan => ("all".into(), tn.clone()),
                CrossTarget::Phase(p) => (
                    format!("phase {p}"),
                    target_plan
                        .tasks
                        .iter()
                        .enumerate()
                        .filter(|(_, t)| t.phase == *p)
                        .map(|(i, _)| tn[i])
                        .collect(),
                ),
                CrossTarget::Task(id) => (
                    format!("task {id}"),
                    target_plan
                        .tasks
                        .iter()
                        .position(|t| &t.id == id)
                        .map(|i| tn[i])
                        .into_iter()
                        .collect(),
                ),
                CrossTarget::Story(s) => (
                    format!("story {s}"),
                    target_plan
                        .tasks
                        .iter()
                        .enumerate()
                        .filter(|(_, t)| t.speckit.as_ref().is_some_and(|k| k.stories.contains(s)))
                        .map(|(i, _)| tn[i])
                        .collect(),
                ),
            };
            let target = self.push(NodeKind::Target {
                plan: dep.to,
                label,
            });
            self.nodes[target].preds = preds;
            let gate = match self.gates[dep.from] {
                Some(g) => g,
                None => {
                    let g = self.push(NodeKind::PlanGate { plan: dep.from });
                    self.gates[dep.from] = Some(g);
                    for &n in &self.task_node[dep.from] {
                        self.nodes[n].preds.push(g);
                    }
                    g
                }
            };
            self.nodes[gate].preds.push(target);
        }
    }

    fn finish(self, plans: &[&Plan], names: &[String]) -> Result<Graph, CycleError> {
        let n = self.nodes.len();
        // Each list allocated once at its length (a phase barrier has a hundred successors:
        // grown by pushes, it was reallocated eight times).
        let mut outdeg = vec![0usize; n];
        for node in &self.nodes {
            for &p in &node.preds {
                outdeg[p] += 1;
            }
        }
        let mut start = Vec::with_capacity(n + 1);
        let mut total = 0;
        start.push(0);
        for &d in &outdeg {
            total += d;
            start.push(total);
        }
        // Filled from each list's start, in node order (the order pushes gave); `outdeg` becomes
        // where each list goes on.
        let mut next = outdeg;
        next.copy_from_slice(&start[..n]);
        let mut all = vec![0usize; total];
        for (i, node) in self.nodes.iter().enumerate() {
            for &p in &node.preds {
                all[next[p]] = i;
                next[p] += 1;
            }
        }
        let mut indeg: Vec<usize> = self.nodes.iter().map(|node| node.preds.len()).collect();
        let succs = Succs { start, all };
        let mut topo = Vec::with_capacity(n);
        let mut queue: Vec<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
        queue.reverse();
        while let Some(i) = queue.pop() {
            topo.push(i);
            for &s in &succs[i] {
                indeg[s] -= 1;
                if indeg[s] == 0 {
                    queue.push(s);
                }
            }
        }
        let graph = Graph {
            nodes: self.nodes,
            succs,
            topo,
            task_node: self.task_node,
            seq_group: self.seq,
            seq_group_count: self.seq_count,
        };
        if graph.topo.len() == n {
            return Ok(graph);
        }
        Err(CycleError(cycle_diagnostics(&graph, &indeg, plans, names)))
    }
}

/// Finds the cycles among the nodes Kahn's algorithm could not order and describes each.
fn cycle_diagnostics(
    graph: &Graph,
    indeg: &[usize],
    plans: &[&Plan],
    names: &[String],
) -> Vec<Diagnostic> {
    let stuck: Vec<bool> = indeg.iter().map(|d| *d > 0).collect();
    let mut done = vec![false; graph.nodes.len()];
    let mut out = Vec::new();
    for start in 0..graph.nodes.len() {
        if !stuck[start] || done[start] || graph.task_of(start).is_none() {
            continue;
        }
        // Walk predecessors among stuck nodes until a node repeats: that loop is a cycle.
        let mut path = vec![start];
        let mut seen: HashMap<usize, usize> = HashMap::from([(start, 0)]);
        let mut cur = start;
        let cycle = loop {
            let Some(&next) = graph.nodes[cur].preds.iter().find(|&&p| stuck[p]) else {
                break None;
            };
            if done[next] {
                // Leads into a cycle already reported.
                break None;
            }
            if let Some(&at) = seen.get(&next) {
                break Some(path[at..].to_vec());
            }
            seen.insert(next, path.len());
            path.push(next);
            cur = next;
        };
        for &p in &path {
            done[p] = true;
        }
        if let Some(cycle) = cycle {
            out.push(describe_cycle(graph, &cycle, plans, names));
        }
    }
    if out.is_empty()
        && let Some(plan) = plans.first()
    {
        out.push(Diagnostic::error(&plan.path, 1, "dependency cycle"));
    }
    out
}

fn describe_cycle(graph: &Graph, cycle: &[usize], plans: &[&Plan], names: &[String]) -> Diagnostic {
    let multi = plans.len() > 1;
    let name = |node: usize| -> Option<String> {
        let (p, t) = graph.task_of(node)?;
        let id = &plans[p].tasks[t].id;
        Some(if multi {
            format!("`{}:{id}`", plan_label(plans, names, p))
        } else {
            format!("`{id}`")
        })
    };
    // Rotate so the cycle starts at its first task node in file order.
    let start = cycle
        .iter()
        .enumerate()
        .filter_map(|(i, &n)| graph.task_of(n).map(|(p, t)| ((p, t), i)))
        .min()
        .map_or(0, |(_, i)| i);
    let rotated: Vec<usize> = cycle[start..]
        .iter()
        .chain(&cycle[..start])
        .copied()
        .collect();
    let mut parts: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for &n in &rotated {
        match &graph.nodes[n].kind {
            NodeKind::Task { .. } => parts.extend(name(n)),
            NodeKind::Barrier { phase, .. } => {
                notes.push(format!("tasks of phase {phase} without `depends:` wait for every task of earlier phases"));
            }
            NodeKind::PlanGate { plan } => notes.push(format!(
                "plan `{}` waits for its `depends_on` targets",
                plan_label(plans, names, *plan)
            )),
            NodeKind::Target { .. } => {}
        }
    }
    parts.extend(rotated.first().and_then(|&n| name(n)));
    let (p, t) = graph.task_of(rotated[0]).unwrap_or((0, 0));
    let line = plans[p].tasks.get(t).map_or(1, |t| t.line);
    notes.dedup();
    let mut message = format!(
        "dependency cycle: {} (→ means \"waits for\")",
        parts.join(" → ")
    );
    if !notes.is_empty() {
        message.push_str("; ");
        message.push_str(&notes.join("; "));
    }
    Diagnostic::error(&plans[p].path, line, message)
        .with_hint("remove one of these dependencies, or move a task to another phase")
}

fn plan_label(plans: &[&Plan], names: &[String], index: usize) -> String {
    if let Some(name) = names.get(index) {
        return name.clone();
    }
    plans[index]
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| plans[index].title.clone())
}

#[cfg(test)]
mod phase_index_tests {
    use super::*;
    use crate::plan::parse;

    /// The table by number and the map answer as a map collected from the phases in order
    /// would (the last phase of a repeated number wins), for small and large numbers.
    #[test]
    fn phase_index_answers_as_a_map_would() {
        for numbers in [
            vec![1, 2, 3],
            vec![2, 1, 2],
            vec![1, 1000, 3],
            vec![7],
            vec![],
            vec![0u32, 5, 4_000_000_000],
        ] {
            let text: String = numbers
                .iter()
                .map(|n| format!("## Phase {n}: P\n\n- [ ] {n}.1 Do\n\n"))
                .collect();
            let plan = parse(std::path::Path::new("p.md"), &text);
            let map: HashMap<u32, usize> = plan
                .phases
                .iter()
                .enumerate()
                .map(|(i, p)| (p.number, i))
                .collect();
            let index = PhaseIndex::new(&plan);
            for n in [
                0,
                1,
                2,
                3,
                4,
                5,
                6,
                7,
                8,
                999,
                1000,
                1001,
                4_000_000_000,
                u32::MAX,
            ] {
                assert_eq!(index.get(n), map.get(&n).copied(), "{numbers:?}: {n}");
            }
        }
    }
}
