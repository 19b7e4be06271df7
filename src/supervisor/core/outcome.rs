//! What an attempt's outcome means for its unit: done, run again, or failed.

use std::time::{Duration, Instant};

use super::{Action, Core, millis};
use crate::status::TaskStatus;
use crate::supervisor::event::Event;
use crate::supervisor::state::{
    AgentRun, Ending, Outcome, PlanAgentEnd, RunRec, Settlement, TaskRun, Timer, Unit, quoted,
};

impl Core {
    /// An attempt is over and settled (or could not be launched): the outcome decides whether
    /// the unit is done, runs again, or failed.
    pub(super) fn settled(
        &mut self,
        now: Instant,
        rr: &RunRec,
        outcome: Outcome,
        log: std::path::PathBuf,
        out: &mut Vec<Action>,
    ) {
        let p = rr.unit.plan();
        let Some(spec) = self.spec(p) else { return };
        let retries = spec.entry.retries;
        let name = spec.entry.name.clone();
        let id = self.unit_id(rr.unit);
        match outcome {
            Outcome::Done { commit } => {
                if let Unit::Task { task, .. } = rr.unit {
                    let finished = Event::TaskFinished {
                        plan: name,
                        task: id,
                        commit: commit.clone(),
                        duration_ms: millis(now.saturating_duration_since(rr.started)),
                        usage: rr.usage,
                        pick: None,
                    };
                    self.task_done(p, task, commit, finished, out);
                } else {
                    self.state.plans[p].agent = AgentRun::Idle;
                }
            }
            Outcome::Skipped => {
                self.unit_idle(rr.unit);
                out.push(Action::Report(Event::Note {
                    plan: Some(name),
                    message: format!("task `{id}` was skipped"),
                }));
            }
            Outcome::Interrupted => {
                if let Unit::Task { task, .. } = rr.unit {
                    self.pending_again(p, task);
                } else {
                    self.state.plans[p].agent = AgentRun::Idle;
                }
            }
            Outcome::Asked => {
                if let Unit::Task { task, .. } = rr.unit {
                    // Not a failure: the retries count afresh from the next attempt on. The
                    // record says whether it still waits (needs input) or was answered
                    // meanwhile (pending).
                    let rec = &mut self.state.tasks[p][task];
                    rec.run = TaskRun::Idle;
                    rec.asked = false;
                    rec.retry_base = rr.attempt;
                }
            }
            Outcome::Conflict { paths, saved } => {
                if let Unit::Task { task, .. } = rr.unit {
                    self.on_conflict(p, task, rr.attempt, paths, saved, log, out);
                }
            }
            Outcome::Failed { error, saved } => {
                let retry = !self.state.graceful
                    && match rr.unit {
                        Unit::Task { task, .. } => self.retries_left(p, task, rr.attempt, retries),
                        Unit::PlanAgent { .. } => rr.attempt <= retries,
                    };
                // Retried by a person while it was ending: it runs again once its failure is
                // reported (the record already says pending).
                let retried = rr
                    .unit
                    .task()
                    .is_some_and(|t| self.state.tasks[p][t].retried.is_some());
                let wait = if retried {
                    None
                } else {
                    self.failed(now, rr.unit, rr.attempt, retry, &error)
                };
                out.push(Action::Report(Event::TaskFailed {
                    plan: name,
                    task: id,
                    attempt: rr.attempt,
                    error,
                    retry_in_ms: wait.map(millis),
                    saved,
                    log,
                    usage: rr.usage,
                }));
                if let (true, Some(t)) = (retried, rr.unit.task()) {
                    self.retried(p, t, out);
                }
            }
        }
        if let Some(t) = rr.unit.task() {
            self.state.tasks[p][t].retried = None;
            self.sync_node(p, t);
        }
        self.after_task(p);
    }

    /// Plan `p`'s agent ended as `ending`: which of its tasks to commit (done, no commit
    /// recorded), which to put back (left in progress), and how the attempt ends: done when
    /// every task is finished, else interrupted when it was stopped or killed, else failed.
    pub(super) fn plan_agent_settlement(&self, p: usize, ending: &Ending) -> Settlement {
        let tasks = &self.state.tasks[p];
        let commit = (0..tasks.len())
            .filter(|&t| tasks[t].facts.needs_commit())
            .collect();
        let reset = (0..tasks.len())
            .filter(|&t| tasks[t].facts.status == TaskStatus::InProgress)
            .collect();
        let unfinished = tasks
            .iter()
            .filter(|t| !t.facts.status.is_finished())
            .count();
        let end = match ending {
            _ if unfinished == 0 => PlanAgentEnd::Done,
            Ending::Stopped | Ending::Exited(None) => PlanAgentEnd::Interrupted,
            _ => PlanAgentEnd::Failed(format!(
                "the plan agent ended ({}) with {unfinished} task(s) unfinished",
                ending.describe()
            )),
        };
        Settlement::PlanAgent { commit, reset, end }
    }

    /// `unit` failed with `error`, its `n`th failure in a row: with `retry` it waits the
    /// backoff (doubled with each failure) and runs again, else it failed for good. The wait
    /// when it runs again.
    pub(super) fn failed(
        &mut self,
        now: Instant,
        unit: Unit,
        n: u32,
        retry: bool,
        error: &str,
    ) -> Option<Duration> {
        let wait = self
            .cfg
            .backoff
            .saturating_mul(1u32 << n.saturating_sub(1).min(16));
        let until = now + wait;
        match unit {
            Unit::Task { plan, task } => {
                let rec = &mut self.state.tasks[plan][task];
                rec.facts.status = TaskStatus::Failed;
                rec.run = if retry {
                    TaskRun::BackingOff { until }
                } else {
                    TaskRun::Failed {
                        cause: error.to_string(),
                    }
                };
            }
            Unit::PlanAgent { plan } => {
                self.state.plans[plan].agent = if retry {
                    AgentRun::BackingOff { until }
                } else {
                    AgentRun::Failed {
                        cause: error.to_string(),
                    }
                };
            }
        }
        if retry {
            self.state.timers.insert((until, Timer::Backoff(unit)));
        }
        retry.then_some(wait)
    }

    /// Task `t` of plan `p` is pending again (its attempt was interrupted), unless its record
    /// says it is finished.
    pub(super) fn pending_again(&mut self, p: usize, t: usize) {
        let rec = &mut self.state.tasks[p][t];
        rec.run = TaskRun::Idle;
        if !rec.facts.status.is_finished() {
            rec.facts.status = TaskStatus::Pending;
        }
    }

    pub(super) fn unit_idle(&mut self, unit: Unit) {
        match unit {
            Unit::Task { plan, task } => self.state.tasks[plan][task].run = TaskRun::Idle,
            Unit::PlanAgent { plan } => self.state.plans[plan].agent = AgentRun::Idle,
        }
    }

    /// A task's commit conflicted with its plan branch (nothing landed, the task is pending
    /// again): the first time the task runs again on a fresh task worktree from the new tip;
    /// the second time it fails, naming the files.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_conflict(
        &mut self,
        p: usize,
        t: usize,
        attempt: u32,
        paths: Vec<String>,
        saved: Option<String>,
        log: std::path::PathBuf,
        out: &mut Vec<Action>,
    ) {
        let branch = self
            .spec(p)
            .map(|s| s.entry.branch.clone())
            .unwrap_or_default();
        let files = quoted(&paths);
        let rec = &mut self.state.tasks[p][t];
        let rerun = !rec.conflicted;
        rec.conflicted = true;
        let error = if rerun {
            rec.run = TaskRun::Idle;
            rec.facts.status = TaskStatus::Pending;
            format!("its commit conflicts with `{branch}` in {files}; it runs again on the new tip")
        } else {
            let error = format!(
                "its commit conflicts with `{branch}` in {files} again, after a re-run on the new tip"
            );
            rec.run = TaskRun::Failed {
                cause: error.clone(),
            };
            out.push(Action::RecordFailure {
                plan: p,
                task: t,
                error: error.clone(),
            });
            error
        };
        out.push(Action::Report(Event::TaskFailed {
            plan: self.plan_name(p),
            task: self.task_id(p, t).to_string(),
            attempt,
            error,
            retry_in_ms: rerun.then_some(0),
            saved,
            log,
            usage: None,
        }));
        self.sync_node(p, t);
    }
}

impl Core {
    /// Task `t` of plan `p` is done (committed as `commit`, or skipped with nothing to commit):
    /// its record says so, and `finished` (its `task_finished`) is reported once.
    pub(super) fn task_done(
        &mut self,
        p: usize,
        t: usize,
        commit: Option<String>,
        finished: Event,
        out: &mut Vec<Action>,
    ) {
        let rec = &mut self.state.tasks[p][t];
        rec.run = TaskRun::Idle;
        if let Some(c) = commit {
            rec.facts.commit = Some(c);
            rec.facts.status = TaskStatus::Completed;
        }
        if !rec.announced {
            rec.announced = true;
            out.push(Action::Report(finished));
        }
    }
}
