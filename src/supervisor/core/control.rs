//! What a person asks of a running supervisor through the status files: pause and resume a plan
//! (`orch pause` / `orch resume`, the plan's `orchPlanPaused`), stop a task's attempt (`orch
//! stop`: the task recorded failed with `orchStopped`), retry a failed task (`orch retry`: its
//! record back to pending).

use std::time::Instant;

use super::{Action, Core};
use crate::status::STOPPED;
use crate::status::TaskStatus;
use crate::supervisor::event::Event;
use crate::supervisor::state::{AgentRun, Stage, StopWhy, TaskFacts, TaskRun, Timer, Unit};

impl Core {
    /// Before the first input: whether plan `p`'s status file says it is paused.
    pub(crate) fn set_held(&mut self, p: usize, held: bool) {
        if let Some(plan) = self.state.plans.get_mut(p) {
            plan.held = held;
        }
    }

    /// A plan was paused (nothing of it launches; running agents go on) or resumed.
    pub(super) fn on_held(&mut self, p: usize, held: bool, out: &mut Vec<Action>) {
        let Some(plan) = self.state.plans.get_mut(p) else {
            return;
        };
        if plan.held == held {
            return;
        }
        plan.held = held;
        if !held {
            self.state.waiting_on_paused = false;
        }
        if self.spec(p).is_none() {
            return;
        }
        let plan = self.plan_name(p);
        out.push(Action::Report(if held {
            Event::PlanPaused { plan }
        } else {
            Event::PlanResumed { plan }
        }));
    }

    /// Task `t` of plan `p` has a new record (`old` was the one before): a stop or a retry by a
    /// person is acted on.
    pub(super) fn on_control(
        &mut self,
        now: Instant,
        p: usize,
        t: usize,
        old: &TaskFacts,
        out: &mut Vec<Action>,
    ) {
        let rec = &self.state.tasks[p][t];
        let (status, stopped) = (rec.facts.status, rec.facts.stopped);
        if status == TaskStatus::NeedsInput && old.status != TaskStatus::NeedsInput {
            self.on_asked(now, p, t, out);
            return;
        }
        if stopped && status == TaskStatus::Failed {
            // Stopped again after a retry: the retry is off.
            self.state.tasks[p][t].retried = None;
            let rec = &self.state.tasks[p][t];
            match rec.run.clone() {
                TaskRun::Attempt(run) => {
                    let live = self
                        .state
                        .runs
                        .get(&run)
                        .filter(|rr| matches!(rr.stage, Stage::Launching | Stage::Running))
                        .map(|rr| rr.attempt);
                    if let Some(attempt) = live {
                        self.stop(run, Some(StopWhy::User), out);
                        self.report_stopped(p, t, attempt, out);
                    }
                }
                TaskRun::BackingOff { until } => {
                    self.state
                        .timers
                        .remove(&(until, Timer::Backoff(Unit::Task { plan: p, task: t })));
                    self.fail_stopped(p, t, out);
                }
                TaskRun::Retry | TaskRun::Idle => {
                    self.fail_stopped(p, t, out);
                    // In plan mode the plan's agent runs the task it claimed: stop it. Only a
                    // task in progress or failed can be stopped, so one not failed before was
                    // in progress (the watcher may not have seen it claimed yet).
                    if old.status != TaskStatus::Failed {
                        self.stop_plan_agent(p, out);
                    }
                }
                TaskRun::Committing | TaskRun::Failed { .. } => {}
                TaskRun::Round => self.stop_round(p, t, out),
            }
            return;
        }
        // Back to pending while its attempt runs, from that attempt's start record: a stop and
        // a retry written between two reads of the file (the loop reads once per burst of
        // file events), or the entry reset by hand. As after a stop seen on its own followed by
        // the retry: the attempt is stopped, fails with `stopped` (not recorded over the
        // pending record) and the task runs again.
        if status == TaskStatus::Pending
            && old.status == TaskStatus::InProgress
            && let TaskRun::Attempt(run) = rec.run
            && let Some(attempt) = self
                .state
                .runs
                .get(&run)
                .filter(|rr| rr.stage == Stage::Running)
                .map(|rr| rr.attempt)
        {
            self.stop(run, Some(StopWhy::User), out);
            self.report_stopped(p, t, attempt, out);
            self.state.tasks[p][t].retried = Some(STOPPED.to_string());
            return;
        }
        // Back to pending from failed: a person retried it.
        let was_failed = old.status == TaskStatus::Failed
            || matches!(
                rec.run,
                TaskRun::Failed { .. } | TaskRun::BackingOff { .. } | TaskRun::Retry
            );
        if status != TaskStatus::Pending || !was_failed {
            return;
        }
        if let TaskRun::BackingOff { until } = rec.run {
            self.state
                .timers
                .remove(&(until, Timer::Backoff(Unit::Task { plan: p, task: t })));
        }
        if let TaskRun::Attempt(_) = rec.run {
            // Its attempt is still ending (a stopped agent winding down, or a failed one
            // about to exit): the retry is kept for the attempt's end.
            let cause = old.error.clone().unwrap_or_else(|| STOPPED.to_string());
            self.state.tasks[p][t].retried = Some(cause);
            return;
        }
        if !matches!(
            rec.run,
            TaskRun::Failed { .. } | TaskRun::BackingOff { .. } | TaskRun::Retry | TaskRun::Idle
        ) {
            return;
        }
        self.retried(p, t, out);
    }

    /// Task `t` of plan `p` needs input: its agent asked a question (the report channel took it
    /// from the task's own attempt and recorded it). It is said (`task_needs_input`); the
    /// attempt ends without failing: its agent exits by itself, or is stopped after `grace`.
    /// Nothing else of the run waits for it but what depends on the task.
    fn on_asked(&mut self, now: Instant, p: usize, t: usize, out: &mut Vec<Action>) {
        let rec = &mut self.state.tasks[p][t];
        let question = rec.facts.question.clone().unwrap_or_default();
        let mut attempt = rec.attempts;
        if let TaskRun::Attempt(run) = rec.run
            && let Some(rr) = self
                .state
                .runs
                .get(&run)
                .filter(|rr| matches!(rr.stage, Stage::Launching | Stage::Running))
        {
            attempt = rr.attempt;
            rec.asked = true;
            self.state
                .timers
                .insert((now + self.cfg.ask_grace, Timer::Asked(run)));
        }
        out.push(Action::Report(Event::TaskNeedsInput {
            plan: self.plan_name(p),
            task: self.task_id(p, t).to_string(),
            attempt,
            question,
        }));
    }

    /// Task `t` of plan `p` was retried by a person: it may run again, with a fresh set of
    /// retries; its attempt numbers go on.
    pub(super) fn retried(&mut self, p: usize, t: usize, out: &mut Vec<Action>) {
        let rec = &mut self.state.tasks[p][t];
        rec.run = TaskRun::Idle;
        rec.retried = None;
        rec.retry_base = rec.attempts;
        let attempt = rec.attempts + 1;
        out.push(Action::Report(Event::TaskRetried {
            plan: self.plan_name(p),
            task: self.task_id(p, t).to_string(),
            attempt,
        }));
    }

    /// A task between attempts was stopped: failed for good in this run.
    fn fail_stopped(&mut self, p: usize, t: usize, out: &mut Vec<Action>) {
        let rec = &mut self.state.tasks[p][t];
        let attempt = rec.attempts;
        if matches!(rec.run, TaskRun::Failed { .. }) {
            return;
        }
        rec.run = TaskRun::Failed {
            cause: STOPPED.to_string(),
        };
        self.report_stopped(p, t, attempt, out);
    }

    /// Stops plan `p`'s running plan-mode agent, if it has one. It is launched again (for the
    /// plan's other ready tasks, not the stopped one) as after an interruption.
    fn stop_plan_agent(&mut self, p: usize, out: &mut Vec<Action>) {
        if let AgentRun::Attempt(run) = self.state.plans[p].agent {
            self.stop(run, Some(StopWhy::User), out);
        }
    }

    pub(super) fn report_stopped(
        &mut self,
        p: usize,
        t: usize,
        attempt: u32,
        out: &mut Vec<Action>,
    ) {
        out.push(Action::Report(Event::TaskStopped {
            plan: self.plan_name(p),
            task: self.task_id(p, t).to_string(),
            attempt,
        }));
    }

    /// Whether a failed attempt of task `t` of plan `p` (attempt `attempt`) may run again:
    /// not stopped by a person, and retries left since its last retry by a person.
    pub(super) fn retries_left(&self, p: usize, t: usize, attempt: u32, retries: u32) -> bool {
        let rec = &self.state.tasks[p][t];
        !rec.facts.stopped && attempt.saturating_sub(rec.retry_base) <= retries
    }

    /// Plans of the run that are paused with work ready to start: the run waits for them.
    pub(super) fn paused_with_work(&mut self) -> Vec<String> {
        let mut names = Vec::new();
        for p in 0..self.plans.len() {
            if self.spec(p).is_none()
                || self.is_removed(p)
                || !self.state.plans[p].held
                || self.state.plans[p].finished
                || self.frontier.head(&self.graph, p).is_none()
            {
                continue;
            }
            names.push(self.plan_name(p));
        }
        names
    }
}
