//! Live re-planning: the run's plans, graph and settings replaced while it runs (a lead edited
//! `plans.toml` or a plan file). What has not started follows the new plans; what runs goes on
//! as it started. Plans keep their index for the whole run (a new plan comes after the others;
//! a removed one keeps its place, marked removed), so the effects' and the attempts' plan
//! indices stay true; a plan's tasks are matched by id and re-indexed.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use super::{Action, Core};
use crate::graph::{Frontier, Graph};
use crate::plan::Plan;
use crate::supervisor::state::{
    MergeState, PlanRec, PlanSpec, TaskFacts, TaskRec, TaskRun, Timer, Unit, named,
};

/// The run's new plans and settings (see the module documentation).
#[derive(Clone, Debug)]
pub(crate) struct Replan {
    /// The new plans and graph, when tasks, dependencies or plans changed (`None`: only
    /// settings did; the core keeps its plans and graph).
    pub(crate) structure: Option<Structure>,
    /// Every plan's, by index.
    pub(crate) priorities: Vec<i64>,
    pub(crate) names: Vec<String>,
    pub(crate) specs: Vec<Option<PlanSpec>>,
    /// Plans no longer in the manifest: nothing new of them starts.
    pub(crate) removed: Vec<bool>,
    pub(crate) max_agents: usize,
    /// The first wait before a retry (`backoff`).
    pub(crate) backoff: std::time::Duration,
    /// The run's budget (`[defaults] budget`).
    pub(crate) budget: crate::manifest::Budget,
}

/// The plans and graph of a re-plan that changed them.
#[derive(Clone, Debug)]
pub(crate) struct Structure {
    pub(crate) graph: Graph,
    /// Every plan by index, the run's at their index, new plans after them: the plan when it
    /// is new or its tasks changed, `None` when the run's stays as it is.
    pub(crate) plans: Vec<Option<Plan>>,
    /// The records of the tasks of a new plan, or of a plan whose tasks changed, as its status
    /// file says once reconciled with the new plan file (`None`: the records the run has).
    pub(crate) facts: Vec<Option<Vec<TaskFacts>>>,
}

impl Core {
    /// Why a re-plan to `plans` cannot be applied now: a task that an attempt or a commit holds
    /// is not in its plan any more (it applies once that is over). `None`: it can.
    pub(crate) fn replan_waits_for(&self, plans: &[&Plan]) -> Option<String> {
        let mut held = Vec::new();
        for (p, recs) in self.state.tasks.iter().enumerate() {
            let Some(new_plan) = plans.get(p) else {
                continue;
            };
            for (t, rec) in recs.iter().enumerate() {
                let live = matches!(
                    rec.run,
                    TaskRun::Attempt(_) | TaskRun::Committing | TaskRun::Round
                ) || self.state.plans[p].check_waiting.contains(&t);
                let id = self.task_id(p, t);
                if live && !new_plan.tasks.iter().any(|x| x.id == id) {
                    held.push(format!("{}:{id}", self.plan_name(p)));
                }
            }
        }
        (!held.is_empty()).then(|| {
            format!(
                "the edit removes {} that {} still running; it applies when {} over",
                named("task", &held),
                if held.len() == 1 { "is" } else { "are" },
                if held.len() == 1 { "it is" } else { "they are" },
            )
        })
    }

    /// Applies `r` (which [`Core::replan_waits_for`] found applicable); the launches it allows
    /// follow in the step after the input.
    pub(super) fn on_replan(&mut self, _now: Instant, r: Replan, _out: &mut [Action]) {
        let n = r.specs.len();
        match r.structure {
            Some(s) => self.restructure(s, &r.specs, &r.removed, &r.priorities),
            None => self.frontier.set_plan_priorities(&r.priorities),
        }
        // Each plan's agent, by name (a plan may name another agent now).
        for (p, spec) in r.specs.iter().enumerate() {
            let Some(spec) = spec else { continue };
            let agents = &mut self.state.agents;
            self.state.plans[p].agent_index =
                super::failover::agent_slot(agents, &spec.entry.agent);
            self.state.plans[p].fallbacks = spec
                .entry
                .fallback
                .iter()
                .map(|name| super::failover::agent_slot(agents, name))
                .collect();
        }
        self.names = r.names;
        self.specs = r.specs;
        self.removed = r.removed;
        self.removed.resize(n, false);
        self.cfg.max_agents = r.max_agents.max(1);
        self.cfg.backoff = r.backoff;
        self.cfg.budget = r.budget;
        // A finished plan that has work again is not finished (unless the train took it).
        for p in 0..n {
            let unfinished = self.frontier.unfinished(p) > 0;
            let plan = &mut self.state.plans[p];
            if plan.finished && plan.merge == MergeState::None && unfinished {
                plan.finished = false;
            }
        }
    }

    /// The plans and graph of `r` in place of the run's: tasks matched by id, their records,
    /// attempts, backoff timers and waiting checks re-indexed, the frontier rebuilt.
    fn restructure(
        &mut self,
        r: Structure,
        specs: &[Option<PlanSpec>],
        removed: &[bool],
        priorities: &[i64],
    ) {
        let old_plans = self.plans.len();
        let n = r.plans.len();
        let old_list = std::mem::take(&mut self.plans);
        let mut old_tasks = std::mem::take(&mut self.state.tasks).into_iter();
        // Each changed earlier plan's tasks by id: old index → new index (`None`: the plan is
        // unchanged, its indices stay).
        let mut maps: Vec<Option<Vec<Option<usize>>>> = Vec::with_capacity(old_plans);
        let mut tasks: Vec<Vec<TaskRec>> = Vec::with_capacity(n);
        let mut plans: Vec<Plan> = Vec::with_capacity(n);
        let mut old_list = old_list.into_iter();
        for (p, given) in r.plans.into_iter().enumerate() {
            let (old_plan, old_recs) = (old_list.next(), old_tasks.next());
            let facts = |t: usize| -> TaskFacts {
                r.facts
                    .get(p)
                    .and_then(Option::as_ref)
                    .and_then(|f| f.get(t))
                    .cloned()
                    .unwrap_or_default()
            };
            let (new_plan, old_plan, old_recs) = match (given, old_plan, old_recs) {
                // Unchanged: kept as it is.
                (None, Some(plan), Some(recs)) => {
                    plans.push(plan);
                    tasks.push(recs);
                    maps.push(None);
                    continue;
                }
                (Some(plan), Some(old), Some(recs)) => (plan, old, recs),
                (Some(plan), _, _) => {
                    tasks.push(
                        (0..plan.tasks.len())
                            .map(|t| TaskRec::new(facts(t)))
                            .collect(),
                    );
                    plans.push(plan);
                    continue;
                }
                // A new plan given without its tasks (the effects give every new plan's): an
                // empty one, nothing to run.
                (None, _, _) => {
                    plans.push(crate::plan::parse(std::path::Path::new("-"), ""));
                    tasks.push(Vec::new());
                    continue;
                }
            };
            let by_id: HashMap<&str, usize> = new_plan
                .tasks
                .iter()
                .enumerate()
                .map(|(t, x)| (x.id.as_str(), t))
                .collect();
            let map: Vec<Option<usize>> = old_plan
                .tasks
                .iter()
                .map(|x| by_id.get(x.id.as_str()).copied())
                .collect();
            let mut slots: Vec<Option<TaskRec>> = vec![None; new_plan.tasks.len()];
            for (old_t, rec) in old_recs.into_iter().enumerate() {
                if let Some(Some(t)) = map.get(old_t) {
                    slots[*t] = Some(rec);
                }
            }
            tasks.push(
                slots
                    .into_iter()
                    .enumerate()
                    .map(|(t, s)| s.unwrap_or_else(|| TaskRec::new(facts(t))))
                    .collect(),
            );
            plans.push(new_plan);
            maps.push(Some(map));
        }
        let remap = |unit: Unit| -> Option<Unit> {
            match unit {
                Unit::Task { plan, task } => match maps.get(plan).and_then(Option::as_ref) {
                    Some(map) => map
                        .get(task)
                        .copied()
                        .flatten()
                        .map(|task| Unit::Task { plan, task }),
                    None => Some(unit),
                },
                Unit::PlanAgent { .. } => Some(unit),
            }
        };
        for rr in self.state.runs.values_mut() {
            if let Some(u) = remap(rr.unit) {
                rr.unit = u;
            }
        }
        // Best of N: the rounds and their attempts follow their tasks (a round in flight holds
        // its task: the edit waited for it if it removed the task).
        let rounds = std::mem::take(&mut self.state.rounds);
        for ((p, t), round) in rounds {
            if let Some(Unit::Task { plan, task }) = remap(Unit::Task { plan: p, task: t }) {
                self.state.rounds.insert((plan, task), round);
            }
        }
        for key in self.state.members.values_mut() {
            if let Some(Unit::Task { plan, task }) = remap(Unit::Task {
                plan: key.0,
                task: key.1,
            }) {
                *key = (plan, task);
            }
        }
        let timers: BTreeSet<(Instant, Timer)> = std::mem::take(&mut self.state.timers)
            .into_iter()
            .filter_map(|(at, timer)| match timer {
                // A removed plan's failed work is not tried again.
                Timer::Backoff(u) if removed.get(u.plan()).copied().unwrap_or(false) => None,
                Timer::Backoff(u) => remap(u).map(|u| (at, Timer::Backoff(u))),
                other => Some((at, other)),
            })
            .collect();
        self.state.timers = timers;
        for (p, plan) in self.state.plans.iter_mut().enumerate() {
            let Some(Some(map)) = maps.get(p) else {
                continue;
            };
            plan.check_waiting = plan
                .check_waiting
                .iter()
                .filter_map(|&t| map.get(t).copied().flatten())
                .collect();
        }
        // New plans.
        for (p, spec) in specs.iter().enumerate().skip(old_plans) {
            let mut rec = PlanRec::new();
            rec.tree_pending = spec.as_ref().is_some_and(|s| s.new_tree);
            rec.usage = tasks[p]
                .iter()
                .filter_map(|t| t.facts.usage)
                .fold(Default::default(), |a, u| a.plus(&u));
            self.state.plans.push(rec);
        }
        let ops = self.frontier.ops();
        self.frontier = Frontier::new(&r.graph, &plans, priorities, |p, t| {
            tasks[p][t].node_state()
        });
        self.scans += ops;
        self.state.tasks = tasks;
        self.graph = r.graph;
        self.plans = plans;
    }

    /// Whether plan `p` was taken out of the manifest during the run.
    pub(super) fn is_removed(&self, p: usize) -> bool {
        self.removed.get(p).copied().unwrap_or(false)
    }
}
