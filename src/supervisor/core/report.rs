//! The end of a run: how each plan ended, and why an unfinished plan could not go on.

use std::time::Duration;

use super::{Core, millis};
use crate::graph::{Waiting, readiness};
use crate::status::TaskStatus;
use crate::supervisor::event::{Event, PlanOutcome, PlanResult, RunSummary, StoppedAgent};
use crate::supervisor::state::{AgentRun, AgentState, MergeState, Prep, TaskRun, named};

impl Core {
    /// How each plan ended, and the `plan_blocked` events to report with it.
    pub(crate) fn summary(&self, elapsed: Duration) -> (RunSummary, Vec<Event>) {
        let r = readiness(&self.graph, &self.plans, &[], |p, t| {
            self.state.tasks[p][t].node_state()
        });
        let mut plans = Vec::new();
        let mut blocked_events = Vec::new();
        for (p, spec) in self.specs.iter().enumerate() {
            let Some(spec) = spec else { continue };
            let recs = &self.state.tasks[p];
            let completed = recs.iter().filter(|r| r.facts.status.is_finished()).count();
            let failed_tasks = self.failed_tasks_of(p);
            let plan = &self.state.plans[p];
            let stopped = match self.state_for(plan.agent_index, p) {
                Some(AgentState::Stopped { cause, fix }) => Some(format!(
                    "agent `{}` cannot work: {}; {fix}",
                    spec.entry.agent,
                    cause.lines().next().unwrap_or("").trim()
                )),
                _ => None,
            };
            let budget = plan
                .budget_hit
                .clone()
                .or_else(|| self.state.budget_hit.clone())
                .map(|why| format!("budget reached: {why}; no new task started"));
            let (outcome, reason) = match (plan.finished, &plan.prep) {
                _ if self.is_removed(p) => (
                    PlanResult::Removed,
                    Some(
                        "taken out of the manifest during the run; its branch, worktree and \
                         status stay for `orch merge` or `orch clean`"
                            .to_string(),
                    ),
                ),
                (true, _) => (PlanResult::Completed, None),
                (_, Prep::Blocked(why)) => (PlanResult::Blocked, Some(why.clone())),
                _ if stopped.is_some() => (PlanResult::Blocked, stopped),
                _ if budget.is_some() && failed_tasks.is_empty() => {
                    (PlanResult::Unfinished, budget)
                }
                _ if !failed_tasks.is_empty() => (
                    PlanResult::Failed,
                    Some(format!("{} failed", named("task", &failed_tasks))),
                ),
                _ if matches!(plan.agent, AgentRun::Failed { .. }) => (
                    PlanResult::Failed,
                    match &plan.agent {
                        AgentRun::Failed { cause } => Some(cause.clone()),
                        _ => None,
                    },
                ),
                _ if !self.waiting_tasks(p).is_empty() => {
                    (PlanResult::Waiting, Some(self.waiting_reason(p)))
                }
                _ if self.state.graceful => (
                    PlanResult::Unfinished,
                    Some("interrupted; `orch up` goes on from here".to_string()),
                ),
                _ => self.why_stuck(p, &r.blocked),
            };
            if matches!(outcome, PlanResult::Blocked | PlanResult::Failed)
                && !matches!(plan.prep, Prep::Blocked(_))
            {
                blocked_events.push(Event::PlanBlocked {
                    plan: spec.entry.name.clone(),
                    reason: reason.clone().unwrap_or_default(),
                });
            }
            plans.push(PlanOutcome {
                plan: spec.entry.name.clone(),
                outcome,
                completed,
                total: recs.len(),
                failed_tasks,
                reason,
                merge: match &plan.merge {
                    MergeState::Merged => Some(crate::merge::MergeResult::Merged),
                    MergeState::NotMerged(r) => Some(*r),
                    _ => None,
                },
                branch: spec.entry.branch.clone(),
                worktree: spec.worktree.clone(),
                log_dir: spec.log_dir.clone(),
                causes: self.causes_of(p),
                usage: plan.usage,
            });
        }
        (
            RunSummary {
                plans,
                elapsed_ms: millis(elapsed),
                interrupted: self.state.graceful,
                usage: self.state.usage,
                budget_reached: self.state.budget_hit.clone(),
                agents_stopped: self
                    .state
                    .agents
                    .iter()
                    .flat_map(|a| match &a.state {
                        AgentState::Stopped { cause, fix } => vec![StoppedAgent {
                            agent: a.name.clone(),
                            cause: cause.clone(),
                            fix: fix.clone(),
                        }],
                        // Stopped for the plans whose attempts claimed it only (unconfirmed).
                        _ => a
                            .holds
                            .iter()
                            .filter_map(|(plan, h)| match &h.state {
                                AgentState::Stopped { cause, fix } => Some(StoppedAgent {
                                    agent: a.name.clone(),
                                    cause: format!(
                                        "for plan {plan}, as its attempt claimed: {cause}"
                                    ),
                                    fix: fix.clone(),
                                }),
                                _ => None,
                            })
                            .collect(),
                    })
                    .collect(),
                notify_failures: 0,
                resolved_by_agent: self.state.resolved_by_agent,
                left_for_a_person: self.left_for_a_person(),
            },
            blocked_events,
        )
    }

    /// The cause of each of plan `p`'s tasks that failed for good: the run's, else the
    /// recorded error.
    pub(super) fn causes_of(&self, p: usize) -> Vec<(String, String)> {
        self.state.tasks[p]
            .iter()
            .enumerate()
            .filter_map(|(t, r)| {
                let cause = match &r.run {
                    TaskRun::Failed { cause } => Some(cause.clone()),
                    _ if r.facts.status == TaskStatus::Failed => r.facts.error.clone(),
                    _ => None,
                }?;
                Some((self.task_id(p, t).to_string(), cause))
            })
            .collect()
    }

    /// Plan `p`'s tasks waiting for an answer to their agent's question: (id, question).
    pub(super) fn waiting_tasks(&self, p: usize) -> Vec<(String, String)> {
        self.state.tasks[p]
            .iter()
            .enumerate()
            .filter(|(_, r)| r.facts.status == TaskStatus::NeedsInput)
            .map(|(t, r)| {
                let q = r.facts.question.clone().unwrap_or_default();
                (self.task_id(p, t).to_string(), q)
            })
            .collect()
    }

    /// Why plan `p` waits: each question, and how to answer it.
    fn waiting_reason(&self, p: usize) -> String {
        let plan = self.plan_name(p);
        self.waiting_tasks(p)
            .iter()
            .map(|(id, q)| {
                format!(
                    "task `{id}` needs input: {}; `orch answer {plan} {id} \"…\"` answers it",
                    crate::untrusted::text::escaped(q)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The ids of plan `p`'s tasks that failed for good (in this run or as recorded).
    pub(super) fn failed_tasks_of(&self, p: usize) -> Vec<String> {
        self.state.tasks[p]
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                matches!(r.run, TaskRun::Failed { .. }) || r.facts.status == TaskStatus::Failed
            })
            .map(|(t, _)| self.task_id(p, t).to_string())
            .collect()
    }

    /// Why an unfinished plan could not go on.
    pub(super) fn why_stuck(
        &self,
        p: usize,
        blocked: &[(usize, Vec<Waiting>)],
    ) -> (PlanResult, Option<String>) {
        let mut reasons: Vec<String> = Vec::new();
        let mut outcome = PlanResult::Blocked;
        for (node, why) in blocked {
            if self.graph.task_of(*node).is_none_or(|(q, _)| q != p) {
                continue;
            }
            for w in why {
                let text = match w {
                    Waiting::Failed(n) => format!("blocked by failed `{}`", self.node_name(*n)),
                    Waiting::Upstream { plan, label } => {
                        let name = &self.names[*plan];
                        if self.spec(*plan).is_none() {
                            outcome = PlanResult::Unfinished;
                            format!(
                                "waits for plan `{name}` ({label}), which is not part of this run"
                            )
                        } else {
                            let failed: Vec<String> = self
                                .failed_tasks_of(*plan)
                                .iter()
                                .map(|t| format!("{name}:{t}"))
                                .collect();
                            if failed.is_empty() {
                                format!(
                                    "waits for plan `{name}` ({label}), which did not get there"
                                )
                            } else {
                                format!(
                                    "waits for plan `{name}` ({label}), whose {} failed",
                                    named("task", &failed)
                                )
                            }
                        }
                    }
                    _ => continue,
                };
                if !reasons.contains(&text) {
                    reasons.push(text);
                }
            }
        }
        if reasons.is_empty() {
            (
                PlanResult::Unfinished,
                Some("stopped before its tasks could run".to_string()),
            )
        } else {
            (outcome, Some(reasons.join("; ")))
        }
    }
}
