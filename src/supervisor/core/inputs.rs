//! The core's handling of each input.

use std::time::Instant;

use super::{Action, Adopted, Core, PlanMergeOutcome, kind_str, millis};
use crate::agent_output::{AgentOutput, Class, Fatal};
use crate::executor::Lost;
use crate::status::TaskStatus;
use crate::supervisor::event::Event;

use super::lines::{driver_line, first_line, last_line, one_line};

/// The most attempts of one task lost with their host (not counted) in a run: past it, a lost
/// attempt counts as a failed one (a host that keeps dying does not run a task forever).
pub(super) const LOST_MAX: u32 = 5;
use crate::supervisor::state::{
    AgentRun, CommitError, Ending, MergeState, Outcome, Prep, RunId, RunRec, Settlement, Stage,
    Stop, StopWhy, TaskFacts, TaskRun, Timer, Unit, Unprepared,
};

impl Core {
    pub(super) fn on_recovered(
        &mut self,
        now: Instant,
        adopted: Vec<Adopted>,
        retry: Vec<(usize, usize)>,
        out: &mut Vec<Action>,
    ) {
        for a in adopted {
            let p = a.unit.plan();
            let Some(spec) = self.spec(p) else { continue };
            let budget = self.budget(a.unit);
            let log = spec.log_path(a.unit.task().map(|t| self.task_id(p, t)));
            let name = spec.entry.name.clone();
            self.state.plans[p].prep = Prep::Done;
            let task_id = match a.unit {
                Unit::Task { task, .. } => {
                    let rec = &mut self.state.tasks[p][task];
                    rec.run = TaskRun::Attempt(a.run);
                    rec.attempts = a.attempt;
                    self.sync_node(p, task);
                    self.task_id(p, task).to_string()
                }
                Unit::PlanAgent { .. } => {
                    self.state.plans[p].agent = AgentRun::Attempt(a.run);
                    self.state.plans[p].agent_attempts = a.attempt;
                    String::new()
                }
            };
            let started = now.checked_sub(a.elapsed).unwrap_or(now);
            let rr = RunRec::new(a.unit, a.attempt, Stage::Running, started, budget, log);
            self.occupy(now, a.run, rr);
            out.push(Action::Report(Event::TaskAdopted {
                plan: name,
                task: task_id,
                pid: a.pid,
                job_id: a.job_id,
            }));
        }
        for (p, t) in retry {
            let rec = &mut self.state.tasks[p][t];
            // A task a person stopped waits for a person's retry.
            if rec.run == TaskRun::Idle
                && rec.facts.status == TaskStatus::Failed
                && !rec.facts.stopped
            {
                rec.run = TaskRun::Retry;
                self.sync_node(p, t);
            }
        }
        // Done but not committed (a supervisor died in between): commit now.
        for p in 0..self.plans.len() {
            if self.spec(p).is_none() {
                continue;
            }
            // A plan's budget counts what it spent in earlier runs.
            self.check_budgets(p, out);
            for t in 0..self.plans[p].tasks.len() {
                let rec = &self.state.tasks[p][t];
                if rec.run == TaskRun::Idle && rec.facts.needs_commit() {
                    // A supervisor that died while the task's check ran: check it again first
                    // (when no adopted agent of the plan writes in its worktree meanwhile).
                    if self.has_check(p, t) && self.state.plans[p].running == 0 {
                        self.recheck(now, p, t, out);
                    } else {
                        self.start_commit(p, t, out);
                    }
                }
            }
        }
    }

    pub(super) fn on_status(
        &mut self,
        now: Instant,
        p: usize,
        tasks: Vec<(usize, TaskFacts)>,
        merged: bool,
        out: &mut Vec<Action>,
    ) {
        if let Some(plan) = self.state.plans.get_mut(p) {
            plan.merged_before = merged;
        }
        let in_run = self.spec(p).is_some();
        for (t, facts) in tasks {
            let Some(rec) = self.state.tasks.get_mut(p).and_then(|v| v.get_mut(t)) else {
                continue;
            };
            let old = std::mem::replace(&mut rec.facts, facts);
            if in_run {
                self.on_control(now, p, t, &old, out);
                self.on_told(p, t, &old, out);
            }
            let Some(rec) = self.state.tasks.get_mut(p).and_then(|v| v.get_mut(t)) else {
                continue;
            };
            if rec.run == TaskRun::Retry && rec.facts.status != TaskStatus::Failed {
                rec.run = TaskRun::Idle;
            }
            if in_run && rec.run == TaskRun::Idle {
                if rec.facts.needs_commit() {
                    // Completed from outside an attempt (a person's `orch task done`, through
                    // the supervisor): its check runs before any commit, once no attempt of the
                    // plan works in the worktree.
                    if self.has_check(p, t) {
                        if self.state.plans[p].running == 0 {
                            self.recheck(now, p, t, out);
                        } else if !self.state.plans[p].check_waiting.contains(&t) {
                            self.state.plans[p].check_waiting.push(t);
                        }
                    } else {
                        self.start_commit(p, t, out);
                    }
                } else if rec.facts.status == TaskStatus::Completed
                    && rec.facts.commit.is_some()
                    && rec.facts.fresh
                    && !rec.announced
                {
                    // Completed with its commit by someone else: a plan-mode agent's
                    // `orch task done`, which commits itself.
                    rec.announced = true;
                    let commit = rec.facts.commit.clone();
                    let duration_ms = rec.facts.duration_ms.unwrap_or(0);
                    out.push(Action::Report(Event::TaskFinished {
                        plan: self.plan_name(p),
                        task: self.task_id(p, t).to_string(),
                        commit,
                        duration_ms,
                        usage: None,
                        pick: None,
                    }));
                }
            }
            self.sync_node(p, t);
        }
    }

    pub(super) fn on_launched(
        &mut self,
        run: RunId,
        pid: u32,
        job_id: Option<String>,
        out: &mut Vec<Action>,
    ) {
        let Some(rr) = self.state.runs.get_mut(&run) else {
            return;
        };
        if rr.stage == Stage::Launching {
            rr.stage = Stage::Running;
        }
        let (unit, attempt, log) = (rr.unit, rr.attempt, rr.log.clone());
        let p = unit.plan();
        // The launch recorded the start, unless the agent reported first.
        if let Some(t) = unit.task() {
            let facts = &mut self.state.tasks[p][t].facts;
            if !facts.status.is_finished() {
                facts.status = TaskStatus::InProgress;
            }
        }
        let (kind, description) = match unit.task() {
            Some(t) => {
                let task = &self.plans[p].tasks[t];
                (kind_str(task.kind), task.description.clone())
            }
            None => ("plan".to_string(), self.plans[p].title.clone()),
        };
        out.push(Action::Report(Event::TaskStarted {
            plan: self.plan_name(p),
            task: self.unit_id(unit),
            kind,
            description,
            attempt,
            pid,
            log,
            job_id,
        }));
    }

    /// A remote attempt runs on `host`: said (`task_on_host`).
    pub(super) fn on_host(&mut self, run: RunId, host: String, out: &mut Vec<Action>) {
        let Some(rr) = self.state.runs.get(&run) else {
            return;
        };
        let (unit, attempt) = (rr.unit, rr.attempt);
        out.push(Action::Report(Event::TaskOnHost {
            plan: self.plan_name(unit.plan()),
            task: self.unit_id(unit),
            attempt,
            host,
        }));
    }

    pub(super) fn on_active(&mut self, now: Instant, run: RunId) {
        let Some(limit) = self.cfg.stuck_after else {
            return;
        };
        let Some(rr) = self.state.runs.get_mut(&run) else {
            return;
        };
        if let Some(old) = rr.quiet_key.take() {
            self.state.timers.remove(&(old, Timer::Quiet(run)));
            let at = now + limit;
            rr.quiet_key = Some(at);
            self.state.timers.insert((at, Timer::Quiet(run)));
        }
    }

    pub(super) fn on_exited(
        &mut self,
        now: Instant,
        run: RunId,
        ending: Ending,
        output: AgentOutput,
        out: &mut Vec<Action>,
    ) {
        if self.state.members.contains_key(&run) {
            self.member_exited(now, run, ending, output, out);
            return;
        }
        let Some(unit) = self.agent_ended(run, &output, out) else {
            return;
        };
        // The agent that ran it, from orch's record (its plan's or a fallback).
        let agent = self.agent_of(run, unit.plan());
        let how = match unit {
            Unit::PlanAgent { plan } => {
                // A limit or a fatal failure of a plan agent: its agent waits or stops.
                let cause = output.cause().unwrap_or_else(|| ending.describe());
                let class = match ending {
                    Ending::Exited(Some(0)) => Class::Ordinary,
                    _ => output.class,
                };
                if class != Class::Ordinary
                    && let Some(rr) = self.state.runs.get(&run).cloned()
                {
                    // Not the plan's fault: the attempt does not count against its retries.
                    self.not_counted(&rr);
                }
                // A claim of its output: this plan waits or stops; others once orch checked it.
                self.claim(now, agent, plan, class, cause, out);
                self.plan_agent_settlement(plan, &ending)
            }
            Unit::Task { plan, task } => {
                let rec = &self.state.tasks[plan][task];
                let facts = &rec.facts;
                if rec.asked || facts.status == TaskStatus::NeedsInput {
                    // It asked a question: it ends without failing, whatever its exit.
                    self.settle(run, Settlement::AwaitInput, out);
                    return;
                }
                match facts.status {
                    // Retried by a person while it was ending: it failed as recorded before
                    // the retry, which the record now shows.
                    TaskStatus::Pending | TaskStatus::InProgress if rec.retried.is_some() => {
                        Settlement::Fail {
                            error: rec.retried.clone().unwrap_or_default(),
                            record: false,
                        }
                    }
                    TaskStatus::Completed => match self.check_or_commit(run, out) {
                        Some(how) => how,
                        None => return,
                    },
                    TaskStatus::Skipped
                        if self.plans[plan].tasks[task].kind == crate::plan::TaskKind::Verify =>
                    {
                        Settlement::SkipVerify
                    }
                    TaskStatus::Skipped => {
                        // Nothing to commit or save.
                        if let Some(rr) = self.release(run) {
                            let log = rr.log.clone();
                            self.settled(now, &rr, Outcome::Skipped, log, out);
                        }
                        return;
                    }
                    TaskStatus::Failed => {
                        let error = facts
                            .error
                            .clone()
                            .unwrap_or_else(|| "the agent reported failure".into());
                        // The agent's own words stand; a denied write is added to them.
                        let note = output.sandbox_note();
                        Settlement::Fail {
                            record: !note.is_empty(),
                            error: format!("{error}{note}"),
                        }
                    }
                    TaskStatus::Pending | TaskStatus::InProgress | TaskStatus::NeedsInput => {
                        match self.unreported(now, run, plan, &ending, &output, out) {
                            Some(how) => how,
                            None => return,
                        }
                    }
                }
            }
        };
        self.settle(run, how, out);
    }

    /// How to settle attempt `run` of a task of plan `p` whose agent ended without reporting;
    /// `None` when its check runs first.
    pub(super) fn unreported(
        &mut self,
        now: Instant,
        run: RunId,
        p: usize,
        ending: &Ending,
        output: &AgentOutput,
        out: &mut Vec<Action>,
    ) -> Option<Settlement> {
        let a = self.agent_of(run, p);
        let agent = self
            .state
            .agents
            .get(a)
            .map(|r| r.name.clone())
            .or_else(|| self.spec(p).map(|s| s.entry.agent.clone()))
            .unwrap_or_default();
        let said = |o: &AgentOutput| {
            o.cause()
                .map(|c| format!(": {c}"))
                .unwrap_or_else(|| " (it printed nothing)".to_string())
        };
        match ending {
            Ending::Exited(Some(code)) if self.host_lost(run, p, *code) => {
                // What the executor knows of its place's loss (a container's service that did
                // not get ready), on the console too.
                let why = self.spec(p).and_then(|s| s.executor.lost_why());
                Some(Settlement::Interrupt {
                    note: match why {
                        Some(why) => {
                            out.push(Action::Report(Event::Note {
                                plan: Some(self.plan_name(p)),
                                message: format!(
                                    "attempt lost (not counted, the task runs again): {}",
                                    one_line(&why)
                                ),
                            }));
                            format!(
                                "{}: the attempt does not count, and the task runs again from the plan branch's tip",
                                first_line(&why)
                            )
                        }
                        None => {
                            // The driver's own last line names the host and the cause (written
                            // after anything the host sent, on a line of its own).
                            let why = driver_line(output)
                                .map(|w| format!(": {w}"))
                                .unwrap_or_default();
                            out.push(Action::Report(Event::Note {
                                plan: Some(self.plan_name(p)),
                                message: format!("attempt lost with its host (not counted, the task runs again): its host stopped answering or could not take the attempt; the attempt's log says why{why}"),
                            }));
                            "its host was lost (no answer over ssh, or it could not take the attempt): the attempt does not count, \
                           and the task runs again on a host that answers, from the plan branch's tip"
                                .to_string()
                        }
                    },
                })
            }
            Ending::Exited(Some(code)) if self.no_host(run, p, *code) => {
                let why = output
                    .cause()
                    .map(|c| {
                        last_line(&c)
                            .trim_start_matches("orch remote-attempt: ")
                            .to_string()
                    })
                    .unwrap_or_else(|| "no host of the plan can run its agents".to_string());
                let reason = format!("{why} (`orch hosts` checks each host)");
                self.state.plans[p].prep = Prep::Blocked(reason.clone());
                out.push(Action::Report(Event::PlanBlocked {
                    plan: self.plan_name(p),
                    reason,
                }));
                Some(Settlement::Interrupt {
                    note: "no host of its plan can run agents: the attempt does not count, and \
                           the plan waits for the next `orch up` (the hosts are probed again then)"
                        .to_string(),
                })
            }
            Ending::Exited(Some(code)) => {
                // Lost with its place once too often in a row (or a plan agent's): it counts,
                // for the reason its executor knows.
                if let Some(why) = self.spec(p).and_then(|s| s.executor.lost_why()) {
                    return Some(Settlement::Fail {
                        error: format!(
                            "{} (lost with its place: this attempt counts, after {LOST_MAX} of the task's that did not, or of a plan agent)",
                            one_line(&why)
                        ),
                        record: true,
                    });
                }
                // Its host lost (or unable to take it) once too often in a row: it counts, said
                // so, with the driver's own last line, never as the agent's exit status.
                if self.lost(p, *code) == Some(Lost::Place)
                    && let Some(why) = driver_line(output)
                {
                    return Some(Settlement::Fail {
                        error: format!(
                            "{why} (lost with its host: this attempt counts, after {LOST_MAX} of the task's that did not)"
                        ),
                        record: true,
                    });
                }
                let class = match output.class {
                    Class::Ordinary if *code == 127 => Class::Fatal(Fatal::MissingProgram),
                    // An agent that exits 0 is believed unless its client's own error says
                    // otherwise (its plain output may speak of limits for other reasons).
                    _ if *code == 0 && output.error.is_none() => Class::Ordinary,
                    c => c,
                };
                match class {
                    // A limit or a fatal failure: the task did not get its chance, the attempt
                    // does not count and the task is pending again.
                    Class::Limit(wait) => {
                        let cause = output.cause().unwrap_or_else(|| "a usage limit".into());
                        if let Some(rr) = self.state.runs.get(&run).cloned() {
                            self.not_counted(&rr);
                        }
                        self.claim(now, a, p, Class::Limit(wait), cause.clone(), out);
                        return Some(Settlement::Interrupt {
                            note: format!(
                                "agent `{agent}` hit a usage limit ({}); the task runs again when it resets",
                                first_line(&cause)
                            ),
                        });
                    }
                    Class::Fatal(kind) => {
                        let cause = output
                            .cause()
                            .unwrap_or_else(|| format!("the agent exited with status {code}"));
                        if let Some(rr) = self.state.runs.get(&run).cloned() {
                            self.not_counted(&rr);
                        }
                        self.claim(now, a, p, Class::Fatal(kind), cause.clone(), out);
                        return Some(Settlement::Interrupt {
                            note: format!(
                                "not run: agent `{agent}` cannot work ({}): {}",
                                first_line(&cause),
                                kind.fix(&agent)
                            ),
                        });
                    }
                    Class::Ordinary => {}
                }
                if *code == 0 {
                    let by_exit = self
                        .spec(p)
                        .is_some_and(|s| s.report == crate::manifest::ReportMode::Exit);
                    if by_exit {
                        return self.check_or_commit(run, out);
                    }
                    let last = output
                        .last_words()
                        .map(|w| format!("; its last words: {w}"))
                        .unwrap_or_default();
                    return Some(Settlement::Fail {
                        error: format!(
                            "the agent ended without reporting (exit status 0, no `orch task done`){last}{}",
                            output.sandbox_note()
                        ),
                        record: true,
                    });
                }
                Some(Settlement::Fail {
                    error: format!(
                        "the agent exited with status {code} without reporting{}{}",
                        said(output),
                        output.sandbox_note()
                    ),
                    record: true,
                })
            }
            Ending::TimedOut(_) | Ending::Stuck(_) | Ending::Job { .. } => {
                let last = output
                    .cause()
                    .map(|c| format!("; its last output: {c}"))
                    .unwrap_or_default();
                Some(Settlement::Fail {
                    error: format!("{}{last}", ending.describe()),
                    record: true,
                })
            }
            Ending::Stopped | Ending::Exited(None) => Some(Settlement::Interrupt {
                note: match ending {
                    Ending::Stopped => "stopped by orch; it will run again on the next `orch up`",
                    _ => "its agent vanished without reporting; it runs again",
                }
                .to_string(),
            }),
        }
    }

    /// Whether an attempt of plan `p` that ended with `code` was lost with its place, as the
    /// plan's executor tells.
    fn lost(&self, p: usize, code: i32) -> Option<Lost> {
        self.spec(p).and_then(|s| s.executor.lost(code))
    }

    /// Whether attempt `run` of plan `p`, which ended with `code`, was lost with its place, as
    /// its executor tells ([`Lost::Place`]: an ssh attempt's driver that lost its host). Such an
    /// attempt is not counted, up to [`LOST_MAX`] times a task.
    fn host_lost(&mut self, run: RunId, p: usize, code: i32) -> bool {
        if self.lost(p, code) != Some(Lost::Place) {
            return false;
        }
        self.lost_not_counted(run)
    }

    /// Attempt `run` of a task, lost with its place: not counted, up to [`LOST_MAX`] times a
    /// task (then it counts). Whether it was not counted.
    pub(super) fn lost_not_counted(&mut self, run: RunId) -> bool {
        let Some(rr) = self.state.runs.get(&run).cloned() else {
            return false;
        };
        let Unit::Task { plan, task } = rr.unit else {
            return false;
        };
        let rec = &mut self.state.tasks[plan][task];
        if rec.lost >= LOST_MAX {
            return false;
        }
        rec.lost += 1;
        self.not_counted(&rr);
        true
    }

    /// Whether attempt `run` of plan `p`, which ended with `code`, ran nowhere, as its executor
    /// tells ([`Lost::Nowhere`]: every host of an ssh plan refused when probed). Such an attempt
    /// is not counted, and the plan is blocked.
    fn no_host(&mut self, run: RunId, p: usize, code: i32) -> bool {
        if self.lost(p, code) != Some(Lost::Nowhere) {
            return false;
        }
        if let Some(rr) = self.state.runs.get(&run).cloned() {
            self.not_counted(&rr);
        }
        true
    }

    pub(super) fn on_committed(
        &mut self,
        p: usize,
        t: usize,
        result: Result<String, CommitError>,
        out: &mut Vec<Action>,
    ) {
        let plan = &mut self.state.plans[p];
        plan.committing = plan.committing.saturating_sub(1);
        self.state.committing = self.state.committing.saturating_sub(1);
        let rec = &mut self.state.tasks[p][t];
        if rec.run == TaskRun::Committing {
            rec.run = TaskRun::Idle;
        }
        let log = self.log_of(p, Some(t));
        match result {
            Ok(commit) => {
                let rec = &mut self.state.tasks[p][t];
                rec.facts.commit = Some(commit.clone());
                rec.facts.status = TaskStatus::Completed;
                if !rec.announced {
                    rec.announced = true;
                    out.push(Action::Report(Event::TaskFinished {
                        plan: self.plan_name(p),
                        task: self.task_id(p, t).to_string(),
                        commit: Some(commit),
                        duration_ms: 0,
                        usage: None,
                        pick: None,
                    }));
                }
            }
            Err(CommitError::Conflict { paths, saved }) => {
                self.on_conflict(p, t, 1, paths, saved, log, out);
            }
            Err(CommitError::Failed(message)) => {
                self.state.tasks[p][t].run = TaskRun::Failed {
                    cause: message.clone(),
                };
                out.push(Action::Report(Event::TaskFailed {
                    plan: self.plan_name(p),
                    task: self.task_id(p, t).to_string(),
                    attempt: 1,
                    error: message,
                    retry_in_ms: None,
                    saved: None,
                    log,
                    usage: None,
                }));
            }
        }
        self.sync_node(p, t);
        self.after_task(p);
    }

    pub(super) fn on_tree_made(
        &mut self,
        p: usize,
        result: Result<Vec<Event>, String>,
        out: &mut Vec<Action>,
    ) {
        if let Some(rec) = self.state.plans.get_mut(p) {
            rec.tree_pending = false;
            out.append(&mut rec.awaiting_tree);
        }
        match result {
            Ok(events) => out.extend(events.into_iter().map(Action::Report)),
            // A plan being prepared learns it from its preparation, which waits for its tree;
            // one that is not (it waits for upstream plans) is blocked now.
            Err(reason) if self.state.plans[p].prep == Prep::NotStarted => {
                self.state.plans[p].prep = Prep::Blocked(reason.clone());
                out.push(Action::Report(Event::PlanBlocked {
                    plan: self.plan_name(p),
                    reason,
                }));
            }
            Err(_) => {}
        }
    }

    pub(super) fn on_prepared(
        &mut self,
        p: usize,
        result: Result<Vec<Event>, Unprepared>,
        out: &mut Vec<Action>,
    ) {
        // Only a preparation that was running ends here (an upstream conflict found at a task
        // boundary blocks a plan that was prepared long ago).
        if self.state.plans[p].prep == Prep::Running {
            self.state.preparing = self.state.preparing.saturating_sub(1);
        }
        match result {
            Ok(events) => {
                self.state.plans[p].prep = Prep::Done;
                out.extend(events.into_iter().map(Action::Report));
            }
            // An upstream conflict, a failed worktree, merge or setup: the plan is blocked (a
            // person resolves it and runs `orch up` again).
            Err(Unprepared::Conflict(reason) | Unprepared::Failed(reason)) => {
                self.state.plans[p].prep = Prep::Blocked(reason.clone());
                out.push(Action::Report(Event::PlanBlocked {
                    plan: self.plan_name(p),
                    reason,
                }));
            }
        }
    }

    pub(super) fn on_merged(&mut self, p: usize, outcome: PlanMergeOutcome, out: &mut Vec<Action>) {
        self.state.merging = None;
        let target = self.cfg.target.clone();
        self.record_merge(p, outcome, target, out);
    }

    /// A group's landing is over: each of its plans merged or not, as one plan's merge is.
    pub(super) fn on_landed(&mut self, outcomes: Vec<super::LandedPlan>, out: &mut Vec<Action>) {
        self.state.merging = None;
        for l in outcomes {
            if l.plan < self.state.plans.len() {
                self.record_merge(l.plan, l.outcome, l.target, out);
            }
        }
    }

    fn record_merge(
        &mut self,
        p: usize,
        outcome: PlanMergeOutcome,
        target: String,
        out: &mut Vec<Action>,
    ) {
        let plan = self.plan_name(p);
        if outcome.is_merged() {
            self.state.plans[p].merge = MergeState::Merged;
            out.push(Action::Report(Event::PlanMerged {
                plan,
                target,
                // `None` when it was in the target already.
                commit: outcome.commit().map(str::to_string),
            }));
        } else {
            self.state.plans[p].merge = MergeState::NotMerged(outcome.result());
            out.push(Action::Report(Event::PlanMergeFailed {
                plan,
                result: outcome.result_str().to_string(),
                reason: outcome.reason(),
            }));
        }
    }

    pub(super) fn on_tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        while let Some(&(at, timer)) = self.state.timers.first() {
            if at > now {
                break;
            }
            self.state.timers.remove(&(at, timer));
            match timer {
                Timer::Backoff(Unit::Task { plan, task }) => {
                    let rec = &mut self.state.tasks[plan][task];
                    if matches!(rec.run, TaskRun::BackingOff { .. }) {
                        rec.run = TaskRun::Retry;
                        self.sync_node(plan, task);
                    }
                }
                Timer::Backoff(Unit::PlanAgent { plan }) => {
                    let agent = &mut self.state.plans[plan].agent;
                    if matches!(agent, AgentRun::BackingOff { .. }) {
                        *agent = AgentRun::Idle;
                    }
                }
                Timer::Deadline(run) => self.stop(run, None, out),
                Timer::Asked(run) => self.stop(run, Some(StopWhy::User), out),
                Timer::Resume(a) => self.resume_agent(a, out),
                Timer::Release(a) => self.release_holds(now, a, out),
                Timer::Quiet(run) => {
                    let running = self.state.runs.get_mut(&run).and_then(|rr| {
                        rr.quiet_key = None;
                        matches!(rr.stage, Stage::Launching | Stage::Running)
                            .then_some((rr.unit, rr.attempt))
                    });
                    if let (Some((unit, attempt)), Some(quiet)) = (running, self.cfg.stuck_after) {
                        out.push(Action::Report(Event::TaskStuck {
                            plan: self.plan_name(unit.plan()),
                            task: self.unit_id(unit),
                            attempt,
                            quiet_ms: millis(quiet),
                        }));
                    }
                    self.stop(run, self.cfg.stuck_after.map(StopWhy::Stuck), out);
                }
            }
        }
    }

    /// Stops attempt `run` (`why` `None`: its deadline).
    pub(super) fn stop(&mut self, run: RunId, why: Option<StopWhy>, out: &mut Vec<Action>) {
        let Some(rr) = self.state.runs.get_mut(&run) else {
            return;
        };
        if !matches!(rr.stage, Stage::Launching | Stage::Running) {
            return;
        }
        let why = why.unwrap_or(StopWhy::TimedOut(rr.budget));
        rr.stage = Stage::Stopping;
        self.clear_timers(run);
        out.push(Action::Stop { run, why });
    }

    /// First Ctrl-C: launch nothing more, let running agents finish. Second: stop them now.
    pub(super) fn interrupt(&mut self, out: &mut Vec<Action>) {
        if self.state.graceful {
            if !self.state.stopping {
                self.state.stopping = true;
                out.push(Action::StopAll(Stop::Now));
                out.push(Action::Report(Event::Interrupted { immediate: true }));
            }
        } else {
            self.state.graceful = true;
            out.push(Action::StopAll(Stop::Drain));
            out.push(Action::Report(Event::Interrupted { immediate: false }));
        }
    }
}
