//! The supervisor's decisions, as a synchronous state machine: [`Core::handle`] takes the run
//! state and one [`Input`] (an agent exited, a status file changed, a timer fired, a signal, an
//! effect finished…) and returns the [`Action`]s to carry out (launch, stop, settle, commit,
//! prepare, merge, report). No I/O and no clock: time comes with each input. The effect runner
//! ([`super::effects`]) carries the actions out and turns their results into inputs.
//!
//! Every input costs O(1) or O(log n) in the size of the run, apart from the changes it
//! carries: readiness is kept by a [`Frontier`], counts are kept as states change, and slots
//! are filled by looking at one head per plan.

use std::time::{Duration, Instant};

use super::event::{Event, PlanOutcome, RunSummary};
use super::state::{
    AgentRun, Changes, CommitError, Ending, MergeState, Outcome, PlanRec, PlanSpec, Prep, RunId,
    RunRec, RunState, Settlement, Stage, Stop, StopWhy, TaskFacts, TaskRec, TaskRun, Timer, Unit,
    quoted,
};
use crate::graph::{Frontier, Graph, Waiting, readiness};
use crate::manifest::AgentMode;
use crate::plan::{Plan, TaskKind};
use crate::status::TaskStatus;

/// The run's fixed settings, as the core needs them.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    pub max_agents: usize,
    /// The first retry waits this long; each next one twice as long.
    pub backoff: Duration,
    pub stuck_after: Option<Duration>,
    /// The merge train: merge each finished plan.
    pub auto_merge: bool,
    /// The branch the merge train merges into.
    pub target: String,
}

/// What `orch merge` said about one plan of the merge train.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeResult {
    /// `merged`, `already_merged`, `conflict`, `verify_failed`, `skipped`, `refused`, `error`.
    pub result: String,
    pub commit: Option<String>,
    pub reason: String,
}

/// An agent of an earlier supervisor, found alive (or its batch job) at start-up.
#[derive(Clone, Debug)]
pub struct Adopted {
    /// From [`Core::new_run`].
    pub run: RunId,
    pub unit: Unit,
    pub attempt: u32,
    pub pid: u32,
    pub job_id: Option<String>,
    /// How long it has run already.
    pub elapsed: Duration,
}

/// Something that happened, for the core to decide on.
#[derive(Clone, Debug)]
pub enum Input {
    /// Start-up: agents adopted from an earlier supervisor; failed tasks to run again.
    Recovered {
        adopted: Vec<Adopted>,
        retry: Vec<(usize, usize)>,
    },
    /// A plan's status file was read: the tasks whose record changed, and whether it says the
    /// plan was merged.
    Status {
        plan: usize,
        tasks: Vec<(usize, TaskFacts)>,
        merged: bool,
    },
    /// The attempt's process started (`pid`), or its batch job was submitted (`job_id`).
    Launched {
        run: RunId,
        pid: u32,
        job_id: Option<String>,
    },
    /// The attempt could not be launched (its worktree, prompt, program or submission failed).
    LaunchFailed { run: RunId, error: String },
    /// The attempt showed signs of life (output, a status change, a queued job).
    Active { run: RunId },
    /// The attempt's process (or job) is over. Its plan's status was read just before.
    Exited { run: RunId, ending: Ending },
    /// The attempt is settled: committed, saved, recorded.
    Settled { run: RunId, outcome: Outcome },
    /// A task reported done outside an attempt was committed (or not).
    Committed {
        plan: usize,
        task: usize,
        result: Result<String, CommitError>,
    },
    /// A plan's preparation ended: the events to report, or why the plan is blocked.
    Prepared {
        plan: usize,
        result: Result<Vec<Event>, String>,
    },
    /// The merge train merged a plan (or could not).
    Merged { plan: usize, result: MergeResult },
    /// Time passed: timers up to now fire.
    Tick,
    /// Ctrl-C: the first drains, the second stops.
    Interrupt,
    /// SIGTERM: stop now.
    Terminate,
}

/// Something to do, for the effect runner.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Tell the user (progress, `--json`).
    Report(Event),
    /// Merge the plan's upstream work and run its setup; answer [`Input::Prepared`].
    Prepare { plan: usize },
    /// Make the attempt's worktree and prompt and start its agent; answer [`Input::Launched`]
    /// or [`Input::LaunchFailed`], then [`Input::Exited`] when it is over.
    Launch {
        run: RunId,
        unit: Unit,
        attempt: u32,
    },
    /// Stop one attempt (its process group, or its job); it ends as `why` says.
    Stop { run: RunId, why: StopWhy },
    /// Stop every attempt as far as `Stop` says.
    StopAll(Stop),
    /// Settle an attempt that is over; answer [`Input::Settled`].
    Settle {
        run: RunId,
        unit: Unit,
        attempt: u32,
        ending: Ending,
        how: Settlement,
    },
    /// Commit a task reported done outside an attempt; answer [`Input::Committed`].
    Commit {
        plan: usize,
        task: usize,
        changes: Changes,
    },
    /// Record a task failed in its status file, with `error`.
    RecordFailure {
        plan: usize,
        task: usize,
        error: String,
    },
    /// Merge a finished plan into the target; answer [`Input::Merged`].
    Merge { plan: usize },
}

/// The supervisor's state and decisions. See the module documentation.
pub struct Core<'a> {
    cfg: CoreConfig,
    graph: &'a Graph,
    plans: &'a [Plan],
    /// Every plan of the workspace by name (also those not in the run).
    names: Vec<String>,
    /// The plans of the run (`None`: not part of it).
    specs: Vec<Option<PlanSpec>>,
    frontier: Frontier,
    state: RunState,
    over: bool,
}

impl<'a> Core<'a> {
    /// The core of a run over `plans` (all of the workspace's, in its order), with each task's
    /// record as `facts[plan][task]` gives it.
    pub fn new(
        cfg: CoreConfig,
        graph: &'a Graph,
        plans: &'a [Plan],
        priorities: &[i64],
        names: Vec<String>,
        specs: Vec<Option<PlanSpec>>,
        facts: Vec<Vec<TaskFacts>>,
    ) -> Self {
        let tasks: Vec<Vec<TaskRec>> = plans
            .iter()
            .enumerate()
            .map(|(p, plan)| {
                (0..plan.tasks.len())
                    .map(|t| {
                        TaskRec::new(
                            facts
                                .get(p)
                                .and_then(|f| f.get(t))
                                .cloned()
                                .unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .collect();
        let frontier = Frontier::new(graph, plans, priorities, |p, t| tasks[p][t].node_state());
        let state = RunState {
            tasks,
            plans: vec![PlanRec::new(); plans.len()],
            runs: Default::default(),
            timers: Default::default(),
            merge_queue: Vec::new(),
            merging: None,
            preparing: 0,
            committing: 0,
            next_run: 1,
            graceful: false,
            stopping: false,
        };
        Core {
            cfg,
            graph,
            plans,
            names,
            specs,
            frontier,
            state,
            over: false,
        }
    }

    /// A fresh attempt id (for agents adopted at start-up).
    pub fn new_run(&mut self) -> RunId {
        let r = self.state.next_run;
        self.state.next_run += 1;
        r
    }

    /// The run state, read-only (reports, tests).
    pub fn state(&self) -> &RunState {
        &self.state
    }

    /// The plan of the run with index `p`.
    pub fn spec(&self, p: usize) -> Option<&PlanSpec> {
        self.specs.get(p).and_then(Option::as_ref)
    }

    /// The attempt `run`, if in flight.
    pub fn run(&self, run: RunId) -> Option<&RunRec> {
        self.state.runs.get(&run)
    }

    /// Before the first input: whether plan `p`'s status file says an earlier `orch merge`
    /// merged it.
    pub fn set_merged_before(&mut self, p: usize, merged: bool) {
        if let Some(plan) = self.state.plans.get_mut(p) {
            plan.merged_before = merged;
        }
    }

    /// Nothing runs and nothing is about to: the run is over.
    pub fn is_over(&self) -> bool {
        self.over
    }

    /// When the next timer fires, if one is set.
    pub fn next_wake(&self) -> Option<Instant> {
        self.state.timers.first().map(|(at, _)| *at)
    }

    /// Decides on one input; returns what to do.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Recovered { adopted, retry } => self.on_recovered(now, adopted, retry, &mut out),
            Input::Status {
                plan,
                tasks,
                merged,
            } => self.on_status(plan, tasks, merged, &mut out),
            Input::Launched { run, pid, job_id } => self.on_launched(run, pid, job_id, &mut out),
            Input::LaunchFailed { run, error } => {
                if let Some(rr) = self.release(run) {
                    let log = rr.log.clone();
                    let outcome = Outcome::Failed { error, saved: None };
                    self.settled(now, &rr, outcome, log, &mut out);
                }
            }
            Input::Active { run } => self.on_active(now, run),
            Input::Exited { run, ending } => self.on_exited(now, run, ending, &mut out),
            Input::Settled { run, outcome } => {
                if let Some(rr) = self.release(run) {
                    let log = rr.log.clone();
                    self.settled(now, &rr, outcome, log, &mut out);
                }
            }
            Input::Committed { plan, task, result } => {
                self.on_committed(plan, task, result, &mut out);
            }
            Input::Prepared { plan, result } => self.on_prepared(plan, result, &mut out),
            Input::Merged { plan, result } => self.on_merged(plan, result, &mut out),
            Input::Tick => self.on_tick(now, &mut out),
            Input::Interrupt => self.interrupt(&mut out),
            Input::Terminate => {
                self.state.graceful = true;
                self.interrupt(&mut out);
            }
        }
        self.step(now, &mut out);
        out
    }

    // ----- inputs -----

    fn on_recovered(
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
            let name = spec.name.clone();
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
            self.occupy(
                now,
                a.run,
                RunRec {
                    unit: a.unit,
                    attempt: a.attempt,
                    stage: Stage::Running,
                    started,
                    budget,
                    log,
                    quiet_key: None,
                    stopped: None,
                },
            );
            out.push(Action::Report(Event::TaskAdopted {
                plan: name,
                task: task_id,
                pid: a.pid,
                job_id: a.job_id,
            }));
        }
        for (p, t) in retry {
            let rec = &mut self.state.tasks[p][t];
            if rec.run == TaskRun::Idle && rec.facts.status == TaskStatus::Failed {
                rec.run = TaskRun::Retry;
                self.sync_node(p, t);
            }
        }
        // Done but not committed (a supervisor died in between): commit now.
        for p in 0..self.plans.len() {
            if self.spec(p).is_none() {
                continue;
            }
            for t in 0..self.plans[p].tasks.len() {
                let rec = &self.state.tasks[p][t];
                if rec.run == TaskRun::Idle && rec.facts.needs_commit() {
                    self.start_commit(p, t, out);
                }
            }
        }
    }

    fn on_status(
        &mut self,
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
            rec.facts = facts;
            if rec.run == TaskRun::Retry && rec.facts.status != TaskStatus::Failed {
                rec.run = TaskRun::Idle;
            }
            if in_run && rec.run == TaskRun::Idle {
                if rec.facts.needs_commit() {
                    self.start_commit(p, t, out);
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
                    }));
                }
            }
            self.sync_node(p, t);
        }
    }

    fn on_launched(&mut self, run: RunId, pid: u32, job_id: Option<String>, out: &mut Vec<Action>) {
        let Some(rr) = self.state.runs.get_mut(&run) else {
            return;
        };
        if rr.stage == Stage::Launching {
            rr.stage = Stage::Running;
        }
        let (unit, attempt, log) = (rr.unit, rr.attempt, rr.log.clone());
        let p = unit.plan();
        let (kind, description) = match unit.task() {
            Some(t) => {
                let task = &self.plans[p].tasks[t];
                (kind_str(task.kind), task.description.clone())
            }
            None => ("plan".to_string(), self.plans[p].title.clone()),
        };
        out.push(Action::Report(Event::TaskStarted {
            plan: self.plan_name(p),
            task: unit
                .task()
                .map(|t| self.task_id(p, t).to_string())
                .unwrap_or_default(),
            kind,
            description,
            attempt,
            pid,
            log,
            job_id,
        }));
    }

    fn on_active(&mut self, now: Instant, run: RunId) {
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

    fn on_exited(&mut self, now: Instant, run: RunId, ending: Ending, out: &mut Vec<Action>) {
        let Some(rr) = self.state.runs.get_mut(&run) else {
            return;
        };
        rr.stage = Stage::Settling;
        let (unit, attempt) = (rr.unit, rr.attempt);
        self.clear_timers(run);
        let how = match unit {
            Unit::PlanAgent { .. } => Settlement::PlanAgent,
            Unit::Task { plan, task } => {
                let facts = &self.state.tasks[plan][task].facts;
                match facts.status {
                    TaskStatus::Completed => Settlement::Commit,
                    TaskStatus::Skipped => {
                        // Nothing to commit or save.
                        if let Some(rr) = self.release(run) {
                            let log = rr.log.clone();
                            self.settled(now, &rr, Outcome::Skipped, log, out);
                        }
                        return;
                    }
                    TaskStatus::Failed => Settlement::Fail {
                        error: facts
                            .error
                            .clone()
                            .unwrap_or_else(|| "the agent reported failure".into()),
                        record: false,
                    },
                    TaskStatus::Pending | TaskStatus::InProgress => match &ending {
                        Ending::Exited(Some(0)) => Settlement::Commit,
                        Ending::Exited(Some(code)) => {
                            let log = self
                                .spec(plan)
                                .map(|s| s.log_path(Some(self.task_id(plan, task))))
                                .unwrap_or_default();
                            Settlement::Fail {
                                error: format!(
                                    "the agent exited with status {code} without reporting (log: {})",
                                    log.display()
                                ),
                                record: true,
                            }
                        }
                        Ending::TimedOut(_) | Ending::Stuck(_) | Ending::Job { .. } => {
                            Settlement::Fail {
                                error: ending.describe(),
                                record: true,
                            }
                        }
                        Ending::Stopped | Ending::Exited(None) => Settlement::Interrupt {
                            note: match ending {
                                Ending::Stopped => {
                                    "stopped by orch; it will run again on the next `orch up`"
                                }
                                _ => "its agent vanished without reporting; it runs again",
                            }
                            .to_string(),
                        },
                    },
                }
            }
        };
        out.push(Action::Settle {
            run,
            unit,
            attempt,
            ending,
            how,
        });
    }

    fn on_committed(
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
                }));
            }
        }
        self.sync_node(p, t);
        self.after_task(p);
    }

    fn on_prepared(&mut self, p: usize, result: Result<Vec<Event>, String>, out: &mut Vec<Action>) {
        self.state.preparing = self.state.preparing.saturating_sub(1);
        match result {
            Ok(events) => {
                self.state.plans[p].prep = Prep::Done;
                out.extend(events.into_iter().map(Action::Report));
            }
            Err(reason) => {
                self.state.plans[p].prep = Prep::Blocked(reason.clone());
                out.push(Action::Report(Event::PlanBlocked {
                    plan: self.plan_name(p),
                    reason,
                }));
            }
        }
    }

    fn on_merged(&mut self, p: usize, r: MergeResult, out: &mut Vec<Action>) {
        self.state.merging = None;
        let plan = self.plan_name(p);
        if r.result == "merged" || r.result == "already_merged" {
            self.state.plans[p].merge = MergeState::Done("merged".to_string());
            out.push(Action::Report(Event::PlanMerged {
                plan,
                target: self.cfg.target.clone(),
                commit: r.commit.filter(|_| r.result == "merged"),
            }));
        } else {
            self.state.plans[p].merge = MergeState::Done(r.result.clone());
            out.push(Action::Report(Event::PlanMergeFailed {
                plan,
                result: r.result,
                reason: r.reason,
            }));
        }
    }

    fn on_tick(&mut self, now: Instant, out: &mut Vec<Action>) {
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
                Timer::Quiet(run) => {
                    if let Some(rr) = self.state.runs.get_mut(&run) {
                        rr.quiet_key = None;
                    }
                    self.stop(run, self.cfg.stuck_after.map(StopWhy::Stuck), out);
                }
            }
        }
    }

    /// Stops attempt `run` (`why` `None`: its deadline).
    fn stop(&mut self, run: RunId, why: Option<StopWhy>, out: &mut Vec<Action>) {
        let Some(rr) = self.state.runs.get_mut(&run) else {
            return;
        };
        if !matches!(rr.stage, Stage::Launching | Stage::Running) {
            return;
        }
        let why = why.unwrap_or(StopWhy::TimedOut(rr.budget));
        rr.stage = Stage::Stopping;
        rr.stopped = Some(why);
        self.clear_timers(run);
        out.push(Action::Stop { run, why });
    }

    /// First Ctrl-C: launch nothing more, let running agents finish. Second: stop them now.
    fn interrupt(&mut self, out: &mut Vec<Action>) {
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

    // ----- settling -----

    /// An attempt is over and settled (or could not be launched): the outcome decides whether
    /// the unit is done, runs again, or failed.
    fn settled(
        &mut self,
        now: Instant,
        rr: &RunRec,
        outcome: Outcome,
        log: std::path::PathBuf,
        out: &mut Vec<Action>,
    ) {
        let p = rr.unit.plan();
        let Some(spec) = self.spec(p) else { return };
        let retries = spec.retries;
        let name = spec.name.clone();
        let id = rr
            .unit
            .task()
            .map(|t| self.task_id(p, t).to_string())
            .unwrap_or_default();
        match outcome {
            Outcome::Done { commit } => {
                if let Unit::Task { task, .. } = rr.unit {
                    let rec = &mut self.state.tasks[p][task];
                    rec.run = TaskRun::Idle;
                    if let Some(c) = &commit {
                        rec.facts.commit = Some(c.clone());
                        rec.facts.status = TaskStatus::Completed;
                    }
                    if !rec.announced {
                        rec.announced = true;
                        out.push(Action::Report(Event::TaskFinished {
                            plan: name,
                            task: id,
                            commit,
                            duration_ms: millis(now.saturating_duration_since(rr.started)),
                        }));
                    }
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
                    let rec = &mut self.state.tasks[p][task];
                    rec.run = TaskRun::Idle;
                    if !rec.facts.status.is_finished() {
                        rec.facts.status = TaskStatus::Pending;
                    }
                } else {
                    self.state.plans[p].agent = AgentRun::Idle;
                }
            }
            Outcome::Conflict { paths, saved } => {
                if let Unit::Task { task, .. } = rr.unit {
                    self.on_conflict(p, task, rr.attempt, paths, saved, log, out);
                }
            }
            Outcome::Failed { error, saved } => {
                let retry = !self.state.graceful && rr.attempt <= retries;
                let wait = self
                    .cfg
                    .backoff
                    .saturating_mul(1u32 << rr.attempt.saturating_sub(1).min(16));
                let until = now + wait;
                match rr.unit {
                    Unit::Task { task, .. } => {
                        let rec = &mut self.state.tasks[p][task];
                        rec.facts.status = TaskStatus::Failed;
                        rec.run = if retry {
                            TaskRun::BackingOff { until }
                        } else {
                            TaskRun::Failed {
                                cause: error.clone(),
                            }
                        };
                    }
                    Unit::PlanAgent { .. } => {
                        self.state.plans[p].agent = if retry {
                            AgentRun::BackingOff { until }
                        } else {
                            AgentRun::Failed {
                                cause: error.clone(),
                            }
                        };
                    }
                }
                if retry {
                    self.state.timers.insert((until, Timer::Backoff(rr.unit)));
                }
                out.push(Action::Report(Event::TaskFailed {
                    plan: name,
                    task: id,
                    attempt: rr.attempt,
                    error,
                    retry_in_ms: retry.then(|| millis(wait)),
                    saved,
                    log,
                }));
            }
        }
        if let Some(t) = rr.unit.task() {
            self.sync_node(p, t);
        }
        self.after_task(p);
    }

    fn unit_idle(&mut self, unit: Unit) {
        match unit {
            Unit::Task { plan, task } => self.state.tasks[plan][task].run = TaskRun::Idle,
            Unit::PlanAgent { plan } => self.state.plans[plan].agent = AgentRun::Idle,
        }
    }

    /// A task's commit conflicted with its plan branch (nothing landed, the task is pending
    /// again): the first time the task runs again on a fresh task worktree from the new tip;
    /// the second time it fails, naming the files.
    #[allow(clippy::too_many_arguments)]
    fn on_conflict(
        &mut self,
        p: usize,
        t: usize,
        attempt: u32,
        paths: Vec<String>,
        saved: Option<String>,
        log: std::path::PathBuf,
        out: &mut Vec<Action>,
    ) {
        let branch = self.spec(p).map(|s| s.branch.clone()).unwrap_or_default();
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
        }));
        self.sync_node(p, t);
    }

    // ----- the step after every input -----

    /// Finished plans, the merge train, new launches, and whether the run is over.
    fn step(&mut self, now: Instant, out: &mut Vec<Action>) {
        for p in 0..self.plans.len() {
            self.check_finished(p, out);
        }
        self.start_merge(out);
        self.schedule(now, out);
        self.over = self.check_over(out);
    }

    fn check_finished(&mut self, p: usize, out: &mut Vec<Action>) {
        let Some(spec) = self.spec(p) else { return };
        let plan = &self.state.plans[p];
        if plan.finished
            || plan.running > 0
            || plan.committing > 0
            || self.frontier.unfinished(p) > 0
        {
            return;
        }
        let name = spec.name.clone();
        self.state.plans[p].finished = true;
        out.push(Action::Report(Event::PlanFinished {
            plan: name,
            completed: self.plans[p].tasks.len(),
        }));
        if self.cfg.auto_merge {
            self.state.plans[p].merge = MergeState::Queued;
            self.state.merge_queue.push(p);
        }
    }

    /// Whether upstream plan `q` is merged into the target (by this run's merge train or
    /// before it).
    fn merged(&self, q: usize) -> bool {
        self.state.plans[q].merged_before
            || self.state.plans[q].merge == MergeState::Done("merged".to_string())
    }

    fn unmerged_upstreams(&self, p: usize) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for &q in self.spec(p).map(|s| s.upstreams.as_slice()).unwrap_or(&[]) {
            let name = format!("`{}`", self.names[q]);
            if !self.merged(q) && !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }

    /// Starts the merge of the first queued plan whose upstream plans are merged; a plan whose
    /// upstream failed to merge is skipped.
    fn start_merge(&mut self, out: &mut Vec<Action>) {
        if self.state.merging.is_some() || self.state.graceful {
            return;
        }
        let mut i = 0;
        while i < self.state.merge_queue.len() {
            let p = self.state.merge_queue[i];
            let waiting = self.unmerged_upstreams(p);
            if waiting.is_empty() {
                self.state.merge_queue.remove(i);
                self.state.merging = Some(p);
                self.state.plans[p].merge = MergeState::Merging;
                out.push(Action::Merge { plan: p });
                return;
            }
            let hopeless = self.spec(p).is_some_and(|s| {
                s.upstreams.iter().any(
                    |&q| matches!(&self.state.plans[q].merge, MergeState::Done(r) if r != "merged"),
                )
            });
            if hopeless {
                self.state.merge_queue.remove(i);
                self.state.plans[p].merge = MergeState::Done("skipped".to_string());
                out.push(Action::Report(Event::PlanMergeFailed {
                    plan: self.plan_name(p),
                    result: "skipped".to_string(),
                    reason: format!("upstream {} was not merged", waiting.join(", ")),
                }));
                continue;
            }
            i += 1;
        }
    }

    /// Fills free slots: the best ready task among the heads of the plans that may start.
    fn schedule(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state.graceful {
            return;
        }
        while self.state.runs.len() < self.cfg.max_agents {
            let mut best: Option<(usize, usize)> = None;
            for p in 0..self.plans.len() {
                let Some(spec) = self.spec(p) else { continue };
                let limit = spec.limit();
                if self.plan_load(p) >= limit || self.state.plans[p].finished {
                    continue;
                }
                let Some(node) = self.head(p) else { continue };
                if !self.may_start(p, out) {
                    continue;
                }
                let better = match best {
                    None => true,
                    Some((_, b)) => self.frontier.rank(node) < self.frontier.rank(b),
                };
                if better {
                    best = Some((p, node));
                }
            }
            let Some((p, node)) = best else { break };
            let Some((_, t)) = self.graph.task_of(node) else {
                break;
            };
            match self.spec(p).map(|s| s.mode) {
                Some(AgentMode::Plan) => self.launch(now, Unit::PlanAgent { plan: p }, out),
                _ => self.launch(now, Unit::Task { plan: p, task: t }, out),
            }
        }
    }

    /// The first ready task of plan `p` that may start now: with task worktrees, one naming a
    /// file that a running task of the plan names is held back until a task of the plan ends.
    fn head(&mut self, p: usize) -> Option<usize> {
        loop {
            let node = self.frontier.head(self.graph, p)?;
            let (_, t) = self.graph.task_of(node)?;
            if self.files_free(p, t) {
                return Some(node);
            }
            self.frontier.hold(node);
        }
    }

    fn files_free(&self, p: usize, t: usize) -> bool {
        if !self.spec(p).is_some_and(|s| s.task_trees) {
            return true;
        }
        let mine = &self.plans[p].tasks[t].files;
        if mine.is_empty() {
            return true;
        }
        !self.state.runs.values().any(|rr| match rr.unit {
            Unit::Task { plan, task } if plan == p && task != t => {
                !crate::git::overlapping_paths(mine, &self.plans[p].tasks[task].files).is_empty()
            }
            _ => false,
        })
    }

    /// Whether plan `p` may launch: prepared (preparation starts here), and in plan mode its
    /// agent is neither running, waiting for a retry, nor failed.
    fn may_start(&mut self, p: usize, out: &mut Vec<Action>) -> bool {
        let Some(spec) = self.spec(p) else {
            return false;
        };
        let (needs_prep, mode) = (spec.needs_prep, spec.mode);
        let plan = &mut self.state.plans[p];
        if plan.prep == Prep::NotStarted {
            if needs_prep {
                plan.prep = Prep::Running;
                self.state.preparing += 1;
                out.push(Action::Prepare { plan: p });
                return false;
            }
            plan.prep = Prep::Done;
        }
        if plan.prep != Prep::Done {
            return false;
        }
        match mode {
            AgentMode::Plan => plan.agent == AgentRun::Idle,
            AgentMode::Task => true,
        }
    }

    /// Slots of plan `p` in use: its attempts, and in a shared worktree the commits in flight
    /// (an agent started meanwhile would write into the tree being committed).
    fn plan_load(&self, p: usize) -> usize {
        let plan = &self.state.plans[p];
        let shared = !self.spec(p).is_some_and(|s| s.task_trees);
        plan.running + if shared { plan.committing } else { 0 }
    }

    fn launch(&mut self, now: Instant, unit: Unit, out: &mut Vec<Action>) {
        let p = unit.plan();
        let attempt = match unit {
            Unit::Task { task, .. } => {
                let rec = &mut self.state.tasks[p][task];
                rec.attempts += 1;
                rec.attempts
            }
            Unit::PlanAgent { .. } => {
                let plan = &mut self.state.plans[p];
                plan.agent_attempts += 1;
                plan.agent_attempts
            }
        };
        let run = self.new_run();
        match unit {
            Unit::Task { task, .. } => {
                self.state.tasks[p][task].run = TaskRun::Attempt(run);
                self.sync_node(p, task);
            }
            Unit::PlanAgent { .. } => self.state.plans[p].agent = AgentRun::Attempt(run),
        }
        let budget = self.budget(unit);
        let log = self.log_of(p, unit.task());
        self.occupy(
            now,
            run,
            RunRec {
                unit,
                attempt,
                stage: Stage::Launching,
                started: now,
                budget,
                log,
                quiet_key: None,
                stopped: None,
            },
        );
        out.push(Action::Launch { run, unit, attempt });
    }

    /// How long an attempt may run: the task timeout, or for a plan agent the timeout of each
    /// remaining task.
    fn budget(&self, unit: Unit) -> Duration {
        let p = unit.plan();
        let timeout = self.spec(p).map_or(Duration::ZERO, |s| s.timeout);
        match unit {
            Unit::Task { .. } => timeout,
            Unit::PlanAgent { .. } => timeout.saturating_mul(
                u32::try_from(self.frontier.unfinished(p).max(1)).unwrap_or(u32::MAX),
            ),
        }
    }

    /// Takes a slot for an attempt and sets its timers.
    fn occupy(&mut self, now: Instant, run: RunId, mut rr: RunRec) {
        let p = rr.unit.plan();
        self.state.plans[p].running += 1;
        let elapsed = now.saturating_duration_since(rr.started);
        let deadline = now + rr.budget.saturating_sub(elapsed);
        self.state.timers.insert((deadline, Timer::Deadline(run)));
        if let Some(limit) = self.cfg.stuck_after {
            let at = now + limit;
            rr.quiet_key = Some(at);
            self.state.timers.insert((at, Timer::Quiet(run)));
        }
        self.state.runs.insert(run, rr);
    }

    /// Gives back the slot of an attempt that is over; returns it.
    fn release(&mut self, run: RunId) -> Option<RunRec> {
        self.clear_timers(run);
        let rr = self.state.runs.remove(&run)?;
        let plan = &mut self.state.plans[rr.unit.plan()];
        plan.running = plan.running.saturating_sub(1);
        Some(rr)
    }

    fn clear_timers(&mut self, run: RunId) {
        let Some(rr) = self.state.runs.get_mut(&run) else {
            return;
        };
        if let Some(at) = rr.quiet_key.take() {
            self.state.timers.remove(&(at, Timer::Quiet(run)));
        }
        let deadline = rr.started + rr.budget;
        // The deadline was set from the time of the launch or adoption: find it by its run.
        if !self.state.timers.remove(&(deadline, Timer::Deadline(run))) {
            self.state
                .timers
                .retain(|(_, timer)| *timer != Timer::Deadline(run));
        }
    }

    fn start_commit(&mut self, p: usize, t: usize, out: &mut Vec<Action>) {
        let changes = if self.state.plans[p].running > 0 {
            Changes::Leave
        } else {
            Changes::Take
        };
        self.state.tasks[p][t].run = TaskRun::Committing;
        self.state.plans[p].committing += 1;
        self.state.committing += 1;
        self.sync_node(p, t);
        out.push(Action::Commit {
            plan: p,
            task: t,
            changes,
        });
    }

    /// A task of plan `p` ended: tasks held back for naming its files may go.
    fn after_task(&mut self, p: usize) {
        if self.frontier.holds(p) {
            self.frontier.release_held(p);
        }
    }

    /// Tells the frontier a task's scheduling state.
    fn sync_node(&mut self, p: usize, t: usize) {
        let state = self.state.tasks[p][t].node_state();
        let node = self.graph.task_node[p][t];
        self.frontier.set_state(self.graph, node, state);
    }

    fn check_over(&mut self, out: &mut Vec<Action>) -> bool {
        let s = &self.state;
        if s.merging.is_some() || !s.runs.is_empty() || s.committing > 0 || s.preparing > 0 {
            return false;
        }
        // Nothing runs: plans still queued wait on upstream plans that will not be merged.
        for p in std::mem::take(&mut self.state.merge_queue) {
            self.state.plans[p].merge = MergeState::Done("skipped".to_string());
            let reason = if self.state.graceful {
                "interrupted before its merge; run `orch merge` to merge it".to_string()
            } else {
                format!(
                    "it waits for {}, not merged in this run",
                    self.unmerged_upstreams(p).join(", ")
                )
            };
            out.push(Action::Report(Event::PlanMergeFailed {
                plan: self.plan_name(p),
                result: "skipped".to_string(),
                reason,
            }));
        }
        if self.state.graceful {
            return true;
        }
        // Retries still to come keep the run going; schedule() ran just before and launched
        // nothing, so everything else left is stuck.
        self.state.timers.is_empty()
    }

    // ----- the end -----

    /// How each plan ended, and the `plan_blocked` events to report with it.
    pub fn summary(&self, elapsed: Duration) -> (RunSummary, Vec<Event>) {
        let r = readiness(self.graph, self.plans, &[], |p, t| {
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
            let (outcome, reason) = match (plan.finished, &plan.prep) {
                (true, _) => ("completed", None),
                (_, Prep::Blocked(why)) => ("blocked", Some(why.clone())),
                _ if !failed_tasks.is_empty() => (
                    "failed",
                    Some(format!(
                        "task{} {} failed",
                        if failed_tasks.len() == 1 { "" } else { "s" },
                        failed_tasks
                            .iter()
                            .map(|t| format!("`{t}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                ),
                _ if matches!(plan.agent, AgentRun::Failed { .. }) => (
                    "failed",
                    match &plan.agent {
                        AgentRun::Failed { cause } => Some(cause.clone()),
                        _ => None,
                    },
                ),
                _ if self.state.graceful => (
                    "unfinished",
                    Some("interrupted; `orch up` goes on from here".to_string()),
                ),
                _ => self.why_stuck(p, &r.blocked),
            };
            if matches!(outcome, "blocked" | "failed") && !matches!(plan.prep, Prep::Blocked(_)) {
                blocked_events.push(Event::PlanBlocked {
                    plan: spec.name.clone(),
                    reason: reason.clone().unwrap_or_default(),
                });
            }
            plans.push(PlanOutcome {
                plan: spec.name.clone(),
                outcome: outcome.to_string(),
                completed,
                total: recs.len(),
                failed_tasks,
                reason,
                merge: match &plan.merge {
                    MergeState::Done(r) => Some(r.clone()),
                    _ => None,
                },
                branch: spec.branch.clone(),
                worktree: spec.worktree.clone(),
                log_dir: spec.log_dir.clone(),
            });
        }
        (
            RunSummary {
                plans,
                elapsed_ms: millis(elapsed),
                interrupted: self.state.graceful,
            },
            blocked_events,
        )
    }

    /// The ids of plan `p`'s tasks that failed for good (in this run or as recorded).
    fn failed_tasks_of(&self, p: usize) -> Vec<String> {
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
    fn why_stuck(
        &self,
        p: usize,
        blocked: &[(usize, Vec<Waiting>)],
    ) -> (&'static str, Option<String>) {
        let mut reasons: Vec<String> = Vec::new();
        let mut outcome = "blocked";
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
                            outcome = "unfinished";
                            format!(
                                "waits for plan `{name}` ({label}), which is not part of this run"
                            )
                        } else {
                            let failed = self.failed_tasks_of(*plan);
                            if failed.is_empty() {
                                format!(
                                    "waits for plan `{name}` ({label}), which did not get there"
                                )
                            } else {
                                format!(
                                    "waits for plan `{name}` ({label}), whose task{} {} failed",
                                    if failed.len() == 1 { "" } else { "s" },
                                    failed
                                        .iter()
                                        .map(|t| format!("`{name}:{t}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
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
                "unfinished",
                Some("stopped before its tasks could run".to_string()),
            )
        } else {
            (outcome, Some(reasons.join("; ")))
        }
    }

    // ----- names -----

    fn plan_name(&self, p: usize) -> String {
        self.names.get(p).cloned().unwrap_or_default()
    }

    fn task_id(&self, p: usize, t: usize) -> &str {
        self.plans[p].tasks[t].id.as_str()
    }

    fn log_of(&self, p: usize, t: Option<usize>) -> std::path::PathBuf {
        self.spec(p)
            .map(|s| s.log_path(t.map(|t| self.task_id(p, t))))
            .unwrap_or_default()
    }

    fn node_name(&self, n: usize) -> String {
        match self.graph.task_of(n) {
            Some((p, t)) => format!("{}:{}", self.names[p], self.task_id(p, t)),
            None => format!("node {n}"),
        }
    }
}

pub fn kind_str(k: TaskKind) -> String {
    match k {
        TaskKind::Task => "task".to_string(),
        TaskKind::Verify => "verify".to_string(),
    }
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
