//! The dispatcher: one loop that owns the run's state, launches agents under the limits, and
//! reacts to attempts ending, status files changing, timers and signals.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use super::attempt::{
    Attempt, Changes, CommitError, Finished, Outcome, Proc, Stop, commit_task, quoted, supervise,
};
use super::context::{Ctx, PlanCtx};
use super::event::{Event, PlanOutcome, RunSummary};
use crate::executor::{ExecutorKind, JobSpec, JobState, JobTracker, job_tag, parse_tag};
use crate::graph::{NodeState, Slots, Waiting, pick, readiness};
use crate::manifest::{AgentMode, render_template};
use crate::plan::{Plan, TaskKind};
use crate::process;
use crate::prompt::{DepInfo, PlanPrompt, TaskPrompt};
use crate::status::{self, RunInfo, StatusDoc, TaskStatus, Transition, TransitionOptions};
use crate::workspace::{Workspace, node_state};

type TaskKey = (usize, usize);
/// Environment variables given to an agent.
type Env = Vec<(String, String)>;

/// Where a plan's preparation (upstream merges, setup) stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Prep {
    NotStarted,
    Running,
    Done,
    Blocked(String),
}

/// A batch job's submission, reported back to the dispatcher by the task that submitted it.
struct Submitted {
    run_id: u64,
    plan: usize,
    task: Option<usize>,
    attempt: u32,
    log: std::path::PathBuf,
    started: Instant,
    budget: Duration,
    result: Result<(String, watch::Receiver<JobState>), String>,
}

/// Runs the plans of `ctx` to the end (finished, failed, blocked, or stopped by the user).
pub async fn run(ctx: Arc<Ctx>, ws: &Workspace, emit: &mut dyn FnMut(&Event)) -> RunSummary {
    let mut d = Dispatcher::new(ctx, ws, emit);
    d.main_loop().await
}

struct Dispatcher<'a> {
    ctx: Arc<Ctx>,
    ws: &'a Workspace,
    plan_list: Vec<Plan>,
    priorities: Vec<i64>,
    docs: Vec<StatusDoc>,
    /// Attempts under way: run id → plan.
    running: HashMap<u64, usize>,
    per_plan: Vec<usize>,
    busy: HashSet<TaskKey>,
    plan_agent: HashSet<usize>,
    committing: HashSet<TaskKey>,
    retry_at: HashMap<TaskKey, Instant>,
    plan_retry_at: HashMap<usize, Instant>,
    attempts: HashMap<(usize, Option<usize>), u32>,
    failed: HashMap<TaskKey, String>,
    plan_failed: HashMap<usize, String>,
    prep: Vec<Prep>,
    /// Plans found finished.
    finished: Vec<bool>,
    stop_tx: watch::Sender<Stop>,
    graceful: bool,
    now_stop: bool,
    next_run_id: u64,
    done_tx: mpsc::UnboundedSender<Finished>,
    done_rx: mpsc::UnboundedReceiver<Finished>,
    prep_tx: mpsc::UnboundedSender<(usize, Result<Vec<Event>, String>)>,
    prep_rx: mpsc::UnboundedReceiver<(usize, Result<Vec<Event>, String>)>,
    commit_tx: mpsc::UnboundedSender<(TaskKey, Result<String, CommitError>)>,
    commit_rx: mpsc::UnboundedReceiver<(TaskKey, Result<String, CommitError>)>,
    /// Tasks re-run once already because their commit conflicted with the plan branch.
    conflicted: HashSet<TaskKey>,
    emit: &'a mut dyn FnMut(&Event),
    started: Instant,
    warned_status: HashSet<usize>,
    /// The merge train: finished plans waiting to be merged, in the order they finished.
    merge_queue: Vec<usize>,
    /// The plan being merged now (one `orch merge` at a time).
    merging: Option<usize>,
    /// The merge train's result per plan (`merged`, `conflict`, …).
    merge_results: HashMap<usize, String>,
    merge_tx: mpsc::UnboundedSender<(usize, MergeResult)>,
    merge_rx: mpsc::UnboundedReceiver<(usize, MergeResult)>,
    /// Tasks whose `task_finished` was reported in this run.
    announced: HashSet<TaskKey>,
    /// Size and modification time of each status file when last read.
    stamps: Vec<Option<(u64, std::time::SystemTime)>>,
    submit_tx: mpsc::UnboundedSender<Submitted>,
    submit_rx: mpsc::UnboundedReceiver<Submitted>,
}

impl<'a> Dispatcher<'a> {
    fn new(ctx: Arc<Ctx>, ws: &'a Workspace, emit: &'a mut dyn FnMut(&Event)) -> Self {
        let n = ws.plans.len();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let (prep_tx, prep_rx) = mpsc::unbounded_channel();
        let (commit_tx, commit_rx) = mpsc::unbounded_channel();
        let (merge_tx, merge_rx) = mpsc::unbounded_channel();
        let (submit_tx, submit_rx) = mpsc::unbounded_channel();
        let (stop_tx, _) = watch::channel(Stop::No);
        let docs = ws
            .plans
            .iter()
            .map(|p| {
                status::view(&p.status_path, &p.plan, &p.rel_path, &p.name)
                    .map(|(d, _)| d)
                    .unwrap_or_else(|_| StatusDoc::new(&p.plan, &p.rel_path, &p.name, Utc::now()))
            })
            .collect();
        Self {
            plan_list: ws.plan_list(),
            priorities: ws.priorities(),
            docs,
            running: HashMap::new(),
            per_plan: vec![0; n],
            busy: HashSet::new(),
            plan_agent: HashSet::new(),
            committing: HashSet::new(),
            conflicted: HashSet::new(),
            retry_at: HashMap::new(),
            plan_retry_at: HashMap::new(),
            attempts: HashMap::new(),
            failed: HashMap::new(),
            plan_failed: HashMap::new(),
            prep: vec![Prep::NotStarted; n],
            finished: vec![false; n],
            stop_tx,
            graceful: false,
            now_stop: false,
            next_run_id: 1,
            done_tx,
            done_rx,
            prep_tx,
            prep_rx,
            commit_tx,
            commit_rx,
            emit,
            started: Instant::now(),
            warned_status: HashSet::new(),
            stamps: vec![None; n],
            announced: HashSet::new(),
            merge_queue: Vec::new(),
            merging: None,
            merge_results: HashMap::new(),
            merge_tx,
            merge_rx,
            submit_tx,
            submit_rx,
            ctx,
            ws,
        }
    }

    fn plan(&self, p: usize) -> Option<Arc<PlanCtx>> {
        self.ctx.plans.get(p).and_then(Clone::clone)
    }

    fn run_plans(&self) -> Vec<Arc<PlanCtx>> {
        self.ctx.plans.iter().flatten().cloned().collect()
    }

    fn send(&mut self, e: Event) {
        (self.emit)(&e);
    }

    async fn main_loop(&mut self) -> RunSummary {
        let names = self.run_plans().iter().map(|p| p.name.clone()).collect();
        let max_agents = self.ctx.max_agents;
        self.send(Event::RunStarted {
            plans: names,
            max_agents,
        });
        let (watch_tx, mut watch_rx) = mpsc::unbounded_channel();
        let state_dir = self
            .ctx
            .repo_root
            .join(self.ws.manifest.as_ref().map_or_else(
                || std::path::PathBuf::from(".orch/state"),
                |m| m.defaults.state_dir.clone(),
            ));
        // Where file events are not delivered (NFS and other network filesystems, where agents on
        // other machines write), the one-second re-read below is what sees status changes;
        // `ORCH_WATCH=poll` relies on it alone.
        let poll_only = std::env::var("ORCH_WATCH").is_ok_and(|v| v == "poll");
        let made = if poll_only {
            Err(notify::Error::generic("ORCH_WATCH=poll"))
        } else {
            super::watch::watch_state_dir(&state_dir, watch_tx)
        };
        // Kept alive for the whole run.
        let watcher = match made {
            Ok(w) => Some(w),
            Err(_) if poll_only => None,
            Err(e) => {
                self.send(Event::Note {
                    plan: None,
                    message: format!(
                        "cannot watch `{}` ({e}); status changes are polled every second",
                        state_dir.display()
                    ),
                });
                None
            }
        };
        let mut sigint = signal(SignalKind::interrupt()).ok();
        let mut sigterm = signal(SignalKind::terminate()).ok();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reload_at: Option<Instant> = None;
        // Status changes the one-second re-read found that no file event announced.
        let mut unannounced = 0u32;
        let mut event_seen = false;
        if let Some(jobs) = &self.ctx.jobs {
            jobs.start();
        }

        self.recover().await;

        loop {
            self.schedule();
            if self.is_over() {
                break;
            }
            let wake = self.next_wake();
            tokio::select! {
                Some(f) = self.done_rx.recv() => self.on_finished(f),
                Some((p, r)) = self.prep_rx.recv() => self.on_prepared(p, r),
                Some((k, r)) = self.commit_rx.recv() => self.on_committed(k, r),
                Some((p, r)) = self.merge_rx.recv() => self.on_merged(p, r),
                Some(s) = self.submit_rx.recv() => self.on_submitted(s),
                Some(()) = watch_rx.recv() => {
                    event_seen = true;
                    // Coalesce a burst of events into one re-read.
                    if reload_at.is_none() {
                        reload_at = Some(Instant::now() + Duration::from_millis(15));
                    }
                }
                () = sleep_until(reload_at.unwrap_or_else(far_future)), if reload_at.is_some() => {
                    reload_at = None;
                    let _ = self.reload_all();
                }
                _ = tick.tick() => {
                    let changed = self.reload_all();
                    if changed && !event_seen && watcher.is_some() && reload_at.is_none() {
                        unannounced += 1;
                        if unannounced == 3 {
                            self.send(Event::Note {
                                plan: None,
                                message: format!(
                                    "status files under `{}` change without file events (a network filesystem?): orch re-reads them every second",
                                    state_dir.display()
                                ),
                            });
                        }
                    }
                    event_seen = false;
                }
                () = sleep_until(wake.unwrap_or_else(far_future)), if wake.is_some() => {}
                Some(()) = recv_signal(&mut sigint) => self.interrupt(),
                Some(()) = recv_signal(&mut sigterm) => {
                    self.graceful = true;
                    self.interrupt();
                }
            }
        }
        self.summary()
    }

    /// First Ctrl-C: launch nothing more, let running agents finish. Second: stop them now.
    fn interrupt(&mut self) {
        if self.graceful {
            if !self.now_stop {
                self.now_stop = true;
                let _ = self.stop_tx.send(Stop::Now);
                self.send(Event::Interrupted { immediate: true });
            }
        } else {
            self.graceful = true;
            // Batch jobs still queued are cancelled: nothing of them ran yet.
            let _ = self.stop_tx.send(Stop::Drain);
            self.send(Event::Interrupted { immediate: false });
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        self.retry_at
            .values()
            .chain(self.plan_retry_at.values())
            .copied()
            .min()
    }

    /// Startup: adopt agents that outlived an earlier supervisor, put back tasks whose agent is
    /// gone, commit work that was done but not committed, and give failed tasks another run.
    async fn recover(&mut self) {
        // Agents of an earlier supervisor, found by their environment: also those launched just
        // before it died, whose start it had not recorded yet.
        let found = process::find_agents();
        // Batch jobs of an earlier supervisor, found by their tag: also those submitted just
        // before it died, whose id it had not recorded yet.
        let listed = match &self.ctx.jobs {
            Some(jobs) => match jobs.list().await {
                Ok(l) => l,
                Err(e) => {
                    self.send(Event::Note {
                        plan: None,
                        message: format!(
                            "cannot list the {} jobs of an earlier run ({e}); only the jobs recorded in the status files are followed again",
                            jobs.name()
                        ),
                    });
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        for pc in self.run_plans() {
            let p = pc.index;
            let doc = self.docs[p].clone();
            let mode = pc.agent.mode;
            let status_file = pc.status_path.display().to_string();
            let batch = pc.executor != ExecutorKind::Local;
            // The agents of a batch plan are its jobs, even when they run on this machine.
            let live: HashMap<&str, u32> = found
                .iter()
                .filter(|f| !batch && f.status_file == status_file)
                .map(|f| (f.task.as_str(), f.pgid))
                .collect();
            // task id → (job id, attempt, state): the latest job not over per task.
            let mut jobs: HashMap<&str, (&str, u32, JobState)> = HashMap::new();
            for j in listed.iter().filter(|j| !j.state.is_over()) {
                if let Some((attempt, task, file)) = parse_tag(&j.tag)
                    && file == status_file
                    && jobs.get(task).is_none_or(|(_, a, _)| *a < attempt)
                {
                    jobs.insert(task, (j.id.as_str(), attempt, j.state.clone()));
                }
            }
            if batch && mode == AgentMode::Plan {
                let found_job = jobs
                    .get("")
                    .map(|(id, a, st)| (id.to_string(), *a, st.clone()))
                    .or_else(|| plan_job_of(&doc).map(|id| (id, 1, JobState::Queued)));
                if let Some((id, attempt, state)) = found_job {
                    self.adopt_job(&pc, None, id, attempt, state, None);
                    continue;
                }
            }
            // A plan-mode agent still alive keeps its plan.
            if !batch && mode == AgentMode::Plan {
                let recorded =
                    plan_agent_of(&doc).filter(|(pid, start)| process::process_alive(*pid, *start));
                let by_env = live
                    .get("")
                    .map(|&pgid| (pgid, status::process_start_time(pgid)));
                if let Some((pid, start)) = recorded.or(by_env) {
                    let proc = Proc::Adopted {
                        pid,
                        start_time: start,
                    };
                    self.adopt(&pc, None, proc, pid, None, 1, None);
                    continue;
                }
            }
            let mut reset = Vec::new();
            let mut adopted_any = false;
            for (ti, t) in pc.plan.tasks.iter().enumerate() {
                let Some(e) = doc.entry(&t.id) else { continue };
                if batch && mode == AgentMode::Task && !e.status.is_finished() {
                    let recorded = e
                        .orch_run
                        .as_ref()
                        .filter(|_| e.status == TaskStatus::InProgress)
                        .and_then(|r| r.job_id.clone())
                        .map(|id| (id, e.attempts.max(1), JobState::Queued));
                    let listed = jobs
                        .get(t.id.as_str())
                        .map(|(id, a, st)| (id.to_string(), *a, st.clone()));
                    if let Some((id, attempt, state)) = listed.or(recorded) {
                        let started = e
                            .orch_run
                            .as_ref()
                            .and_then(|r| status::parse_timestamp(&r.started_at));
                        self.adopt_job(&pc, Some(ti), id, attempt, state, started);
                        adopted_any = true;
                        continue;
                    }
                }
                let recorded = e
                    .orch_run
                    .as_ref()
                    .filter(|_| e.status == TaskStatus::InProgress)
                    .filter(|r| process::process_alive(r.pid, r.process_start_time))
                    .map(|r| (r.pid, r.process_start_time));
                let by_env = live
                    .get(t.id.as_str())
                    .map(|&pgid| (pgid, status::process_start_time(pgid)));
                if mode == AgentMode::Task
                    && !e.status.is_finished()
                    && let Some((pid, start)) = recorded.or(by_env)
                {
                    let started = e
                        .orch_run
                        .as_ref()
                        .and_then(|r| status::parse_timestamp(&r.started_at));
                    let proc = Proc::Adopted {
                        pid,
                        start_time: start,
                    };
                    self.adopt(&pc, Some(ti), proc, pid, None, 1, started);
                    adopted_any = true;
                    continue;
                }
                match e.status {
                    TaskStatus::InProgress => reset.push(t.id.clone()),
                    TaskStatus::Failed => {
                        if let Some(ti) = task_index(&pc.plan, &t.id) {
                            self.retry_at.insert((p, ti), Instant::now());
                        }
                    }
                    _ => {}
                }
            }
            if !reset.is_empty() {
                let pcc = pc.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    // Leftovers are saved and cleaned, unless a live agent works in the tree.
                    if pcc.parallel == 1 && !adopted_any {
                        let _g = pcc.git_lock.lock();
                        let refname = format!(
                            "refs/orch/attempts/{}/resume-{}",
                            pcc.name,
                            Utc::now().timestamp()
                        );
                        let _ = crate::git::save_and_reset(
                            &pcc.worktree,
                            &refname,
                            &format!(
                                "{}: changes left by agents of a stopped supervisor",
                                pcc.name
                            ),
                        );
                    }
                    // A task whose commit waits in its task worktree (the supervisor died before
                    // landing it) is done: it is landed below. The other task worktrees are
                    // leftovers, saved and removed below (`tidy_task_trees`).
                    let in_tree: Vec<String> = reset
                        .iter()
                        .filter(|id| task_commit_waits(&pcc, id))
                        .cloned()
                        .collect();
                    // A supervisor killed between a task's commit and its record leaves the
                    // task in progress with its commit at HEAD: record it, do not run it again.
                    let committed = committed_at_head(&pcc, &reset);
                    let opts = TransitionOptions {
                        force: true,
                        note: Some("its agent was gone when orch restarted; it runs again".into()),
                        ..TransitionOptions::default()
                    };
                    pcc.update(|doc| {
                        for id in &reset {
                            if in_tree.contains(id) {
                                let opts = TransitionOptions {
                                    force: true,
                                    ..TransitionOptions::default()
                                };
                                status::apply(doc, id, Transition::Done, &opts, Utc::now())?;
                                continue;
                            }
                            match &committed {
                                Some((done, oid)) if done == id => {
                                    let opts = TransitionOptions {
                                        force: true,
                                        commit: Some(oid.clone()),
                                        ..TransitionOptions::default()
                                    };
                                    status::apply(doc, id, Transition::Done, &opts, Utc::now())?;
                                }
                                _ => {
                                    status::apply(doc, id, Transition::Reset, &opts, Utc::now())?;
                                }
                            }
                        }
                        Ok(())
                    })
                })
                .await;
            }
            self.reload(p);
            // Done but not committed (a supervisor died in between): commit now.
            let pending: Vec<usize> = (0..pc.plan.tasks.len())
                .filter(|&t| !self.busy.contains(&(p, t)))
                .filter(|&t| pc.needs_commit(&self.docs[p], &pc.plan.tasks[t].id))
                .collect();
            if pc.task_trees() {
                let busy = (0..pc.plan.tasks.len())
                    .filter(|&t| self.busy.contains(&(p, t)))
                    .map(|t| pc.plan.tasks[t].id.clone())
                    .collect();
                let waiting = pending
                    .iter()
                    .map(|&t| pc.plan.tasks[t].id.clone())
                    .collect();
                let pcc = pc.clone();
                let _ = tokio::task::spawn_blocking(move || tidy_task_trees(&pcc, &busy, &waiting))
                    .await;
            }
            for t in pending {
                self.start_commit(&pc, t);
            }
        }
    }

    /// Follows again the batch job `id` of an earlier supervisor (believed in `state`).
    fn adopt_job(
        &mut self,
        pc: &Arc<PlanCtx>,
        task: Option<usize>,
        id: String,
        attempt: u32,
        state: JobState,
        started_at: Option<chrono::DateTime<Utc>>,
    ) {
        let Some(tracker) = self.ctx.jobs.clone() else {
            return;
        };
        let proc = Proc::Job {
            state: tracker.track(&id, state),
            id: id.clone(),
            tracker,
        };
        self.adopt(pc, task, proc, 0, Some(id), attempt, started_at);
    }

    #[allow(clippy::too_many_arguments)]
    fn adopt(
        &mut self,
        pc: &Arc<PlanCtx>,
        task: Option<usize>,
        proc: Proc,
        pid: u32,
        job_id: Option<String>,
        attempt: u32,
        started_at: Option<chrono::DateTime<Utc>>,
    ) {
        let p = pc.index;
        let run_id = self.next_run_id;
        self.next_run_id += 1;
        let id = task.map(|t| pc.plan.tasks[t].id.clone());
        let elapsed = started_at
            .and_then(|s| (Utc::now() - s).to_std().ok())
            .unwrap_or_default();
        let budget = if task.is_some() {
            pc.timeout
        } else {
            pc.timeout
                .saturating_mul(remaining_tasks(&self.docs[p]).max(1) as u32)
        };
        let deadline = Instant::now() + budget.saturating_sub(elapsed);
        self.occupy(run_id, p, task);
        self.attempts.insert((p, task), attempt);
        self.prep[p] = Prep::Done;
        self.send(Event::TaskAdopted {
            plan: pc.name.clone(),
            task: id.clone().unwrap_or_default(),
            pid,
            job_id,
        });
        let attempt = Attempt {
            run_id,
            ctx: self.ctx.clone(),
            plan: pc.clone(),
            task,
            attempt,
            pid,
            proc,
            log: pc.log_path(id.as_deref()),
            started: Instant::now(),
            deadline,
            stop: self.stop_tx.subscribe(),
            done: self.done_tx.clone(),
        };
        tokio::spawn(supervise(attempt));
    }

    /// Re-reads one plan's status file.
    fn reload(&mut self, p: usize) {
        let lp = &self.ws.plans[p];
        self.stamps[p] = file_stamp(&lp.status_path);
        match status::view(&lp.status_path, &lp.plan, &lp.rel_path, &lp.name) {
            Ok((doc, _)) => {
                self.docs[p] = doc;
                self.warned_status.remove(&p);
                self.announce_committed(p);
                // An agent's report: its job is about to end, look soon.
                if let Some(jobs) = &self.ctx.jobs
                    && self
                        .plan(p)
                        .is_some_and(|pc| pc.executor != ExecutorKind::Local)
                {
                    jobs.poke();
                }
            }
            Err(e) => {
                if self.warned_status.insert(p) {
                    let name = lp.name.clone();
                    self.send(Event::Note {
                        plan: Some(name),
                        message: format!("cannot read the status file: {e}"),
                    });
                }
            }
        }
    }

    /// Reports tasks of a running plan that were completed with their commit by someone other
    /// than an attempt of this run: a plan-mode agent's `orch task done`, which commits itself.
    fn announce_committed(&mut self, p: usize) {
        let Some(pc) = self.plan(p) else { return };
        let mut events = Vec::new();
        for (t, task) in pc.plan.tasks.iter().enumerate() {
            let key = (p, t);
            if self.busy.contains(&key) || self.committing.contains(&key) {
                continue;
            }
            let Some(e) = self.docs[p].entry(&task.id) else {
                continue;
            };
            let fresh = e.status == TaskStatus::Completed
                && e.commit.is_some()
                && pc.created_at.is_some_and(|created| {
                    e.completed_at
                        .as_deref()
                        .and_then(status::parse_timestamp)
                        .is_some_and(|at| at >= created)
                });
            if fresh && self.announced.insert(key) {
                events.push(Event::TaskFinished {
                    plan: pc.name.clone(),
                    task: task.id.clone(),
                    commit: e.commit.clone(),
                    duration_ms: e.duration.unwrap_or(0),
                });
            }
        }
        for e in events {
            self.send(e);
        }
    }

    /// Re-reads the status files that changed on disk (size or modification time); returns
    /// whether one had.
    fn reload_all(&mut self) -> bool {
        let mut changed = false;
        for p in 0..self.docs.len() {
            let meta = file_stamp(&self.ws.plans[p].status_path);
            if meta.is_none() || meta != self.stamps[p] {
                changed |= meta.is_some();
                self.reload(p);
            }
        }
        // Tasks finished by someone else (a plan-mode agent, a person) get their commit.
        for pc in self.run_plans() {
            let p = pc.index;
            let todo: Vec<usize> = (0..pc.plan.tasks.len())
                .filter(|&t| !self.busy.contains(&(p, t)) && !self.committing.contains(&(p, t)))
                .filter(|&t| pc.needs_commit(&self.docs[p], &pc.plan.tasks[t].id))
                .collect();
            for t in todo {
                self.start_commit(&pc, t);
            }
        }
        changed
    }

    fn start_commit(&mut self, pc: &Arc<PlanCtx>, t: usize) {
        let key = (pc.index, t);
        if !self.committing.insert(key) {
            return;
        }
        let pcc = pc.clone();
        let tx = self.commit_tx.clone();
        // Agents of the plan still writing in its worktree: their changes are theirs.
        let changes = if self.per_plan[pc.index] > 0 {
            Changes::Leave
        } else {
            Changes::Take
        };
        tokio::task::spawn_blocking(move || {
            let task = &pcc.plan.tasks[t];
            let r = commit_task(&pcc, &task.id, &task.description, true, changes);
            let _ = tx.send((key, r));
        });
    }

    fn on_committed(&mut self, key: TaskKey, r: Result<String, CommitError>) {
        self.committing.remove(&key);
        self.reload(key.0);
        let Some(pc) = self.plan(key.0) else { return };
        let id = pc.plan.tasks[key.1].id.clone();
        match r {
            Ok(commit) => {
                if self.announced.insert(key) {
                    self.send(Event::TaskFinished {
                        plan: pc.name.clone(),
                        task: id,
                        commit: Some(commit),
                        duration_ms: 0,
                    });
                }
            }
            Err(CommitError::Conflict { paths, saved }) => {
                self.on_conflict(&pc, key.1, 1, paths, saved, pc.log_path(Some(&id)));
            }
            Err(CommitError::Failed(message)) => {
                self.failed.insert(key, message.clone());
                self.send(Event::TaskFailed {
                    plan: pc.name.clone(),
                    task: id.clone(),
                    attempt: 1,
                    error: message,
                    retry_in_ms: None,
                    saved: None,
                    log: pc.log_path(Some(&id)),
                });
            }
        }
    }

    /// The scheduling state of a task as this run sees it: its recorded status, with what the
    /// run knows better laid over it.
    fn state(&self, p: usize, t: usize, now: Instant) -> NodeState {
        let key = (p, t);
        if self.busy.contains(&key) || self.committing.contains(&key) {
            return NodeState::InProgress;
        }
        let id = &self.ws.plans[p].plan.tasks[t].id;
        let Some(e) = self.docs[p].entry(id) else {
            return NodeState::Pending;
        };
        if let Some(pc) = self.plan(p)
            && pc.needs_commit(&self.docs[p], id)
        {
            return NodeState::InProgress;
        }
        if self.failed.contains_key(&key) {
            return NodeState::Failed;
        }
        match (e.status, self.retry_at.get(&key)) {
            (TaskStatus::Failed, Some(at)) if *at <= now => NodeState::Pending,
            (TaskStatus::Failed, Some(_)) => NodeState::InProgress,
            (s, _) => node_state(s),
        }
    }

    fn schedule(&mut self) {
        if self.graceful {
            return;
        }
        let Some(graph) = self.ws.graph.as_ref() else {
            return;
        };
        let now = Instant::now();
        let r = readiness(graph, &self.plan_list, &self.priorities, |p, t| {
            self.state(p, t, now)
        });
        let limits: Vec<usize> = (0..self.per_plan.len())
            .map(|p| {
                self.plan(p).map_or(0, |pc| match pc.agent.mode {
                    AgentMode::Plan => 1,
                    AgentMode::Task => pc.slots(),
                })
            })
            .collect();
        // A commit in flight in a plan's shared worktree holds one of its slots.
        let per_plan: Vec<usize> = (0..self.per_plan.len())
            .map(|p| self.per_plan[p] + self.plan(p).map_or(0, |pc| self.shared_tree_commits(&pc)))
            .collect();
        // With task worktrees, a task naming a file that a running task names waits.
        let ready: Vec<usize> = r
            .ready
            .iter()
            .copied()
            .filter(|&n| {
                graph
                    .task_of(n)
                    .is_none_or(|(p, t)| self.plan(p).is_none_or(|pc| self.files_free(&pc, t)))
            })
            .collect();
        let picked = loop {
            // Plans reached in the ready order that were never prepared: prepared now, and the
            // decision taken again if that finished at once (nothing to prepare).
            let mut unprepared = Vec::new();
            let slots = Slots {
                max_agents: self.ctx.max_agents,
                running: self.running.len(),
                per_plan: &per_plan,
                plan_limit: &limits,
            };
            let picked = pick(graph, &ready, slots, |p| {
                let Some(pc) = self.plan(p) else { return false };
                if self.finished[p] {
                    return false;
                }
                if self.prep[p] == Prep::NotStarted && !unprepared.contains(&p) {
                    unprepared.push(p);
                }
                if self.prep[p] != Prep::Done {
                    return false;
                }
                match pc.agent.mode {
                    AgentMode::Plan => {
                        let waiting = self.plan_retry_at.get(&p).is_some_and(|at| *at > now);
                        !waiting && !self.plan_failed.contains_key(&p)
                    }
                    AgentMode::Task => true,
                }
            });
            let mut again = false;
            for p in unprepared {
                if let Some(pc) = self.plan(p) {
                    self.start_prepare(&pc);
                    again |= self.prep[p] == Prep::Done;
                }
            }
            if !again {
                break picked;
            }
        };
        for node in picked {
            let Some((p, t)) = graph.task_of(node) else {
                continue;
            };
            let Some(pc) = self.plan(p) else { continue };
            match pc.agent.mode {
                AgentMode::Plan => {
                    self.plan_retry_at.remove(&p);
                    self.launch(&pc, None);
                }
                AgentMode::Task => {
                    // Two tasks picked together may name the same file: the second waits.
                    if self.files_free(&pc, t) {
                        self.retry_at.remove(&(p, t));
                        self.launch(&pc, Some(t));
                    }
                }
            }
        }
    }

    fn start_prepare(&mut self, pc: &Arc<PlanCtx>) {
        let p = pc.index;
        if pc.depends_on.is_empty() && pc.setup.is_none() {
            self.prep[p] = Prep::Done;
            return;
        }
        self.prep[p] = Prep::Running;
        let upstreams = pc
            .depends_on
            .iter()
            .filter_map(|d| {
                let q = self.ws.plans.iter().position(|lp| lp.name == d.plan)?;
                Some((
                    d.plan.clone(),
                    self.ws.plans[q].plan.clone(),
                    self.docs[q].clone(),
                    d.target.clone(),
                    d.raw.clone(),
                ))
            })
            .collect();
        let tx = self.prep_tx.clone();
        let ctx = self.ctx.clone();
        let pcc = pc.clone();
        let stop = self.stop_tx.subscribe();
        tokio::spawn(async move {
            let r = super::prepare::prepare(ctx, pcc, upstreams, stop).await;
            let _ = tx.send((p, r));
        });
    }

    fn on_prepared(&mut self, p: usize, r: Result<Vec<Event>, String>) {
        match r {
            Ok(events) => {
                self.prep[p] = Prep::Done;
                for e in events {
                    self.send(e);
                }
            }
            Err(reason) => {
                self.prep[p] = Prep::Blocked(reason.clone());
                if let Some(pc) = self.plan(p) {
                    self.send(Event::PlanBlocked {
                        plan: pc.name.clone(),
                        reason,
                    });
                }
            }
        }
    }

    /// Launches an agent for task `t` (task mode) or for the whole plan (`None`, plan mode).
    fn launch(&mut self, pc: &Arc<PlanCtx>, task: Option<usize>) {
        let p = pc.index;
        let n = {
            let a = self.attempts.entry((p, task)).or_insert(0);
            *a += 1;
            *a
        };
        let run_id = self.next_run_id;
        self.next_run_id += 1;
        let id = task.map(|t| pc.plan.tasks[t].id.clone());
        let log = pc.log_path(id.as_deref());
        let (workdir, branch) = match task.filter(|_| pc.task_trees()) {
            Some(t) => match make_task_tree(pc, &pc.plan.tasks[t].id, n) {
                Ok(place) => place,
                Err(error) => {
                    self.fail_launch(pc, task, n, error, log);
                    return;
                }
            },
            None => (pc.worktree.clone(), pc.branch.clone()),
        };
        let prepared = self.prepare_argv(pc, task, n, &workdir, &branch);
        let (argv, env) = match prepared {
            Ok(x) => x,
            Err(error) => {
                self.fail_launch(pc, task, n, error, log);
                return;
            }
        };
        process::log_line(
            &log,
            &format!(
                "=== orch: attempt {n} started at {}: {} ===",
                status::timestamp(Utc::now()),
                argv.join(" ")
            ),
        );
        // Resolved once here rather than by execvp trying every PATH entry.
        let mut argv = argv;
        if let Some(first) = argv.first_mut()
            && !first.contains('/')
            && let Some(found) = process::resolve_program(first, &workdir)
        {
            *first = found.display().to_string();
        }
        if !workdir.is_dir() {
            let error = format!(
                "cannot start agent `{}`: the worktree `{}` of plan `{}` is gone (deleted while orch ran?)",
                pc.agent_name,
                workdir.display(),
                pc.name
            );
            self.fail_launch(pc, task, n, error, log);
            return;
        }
        if pc.executor != ExecutorKind::Local {
            match self.ctx.jobs.clone() {
                Some(tracker) => self.submit(pc, task, n, run_id, argv, env, workdir, log, tracker),
                None => self.fail_launch(
                    pc,
                    task,
                    n,
                    format!(
                        "plan `{}` runs through {}, but no scheduler was set up",
                        pc.name,
                        pc.executor.as_str()
                    ),
                    log,
                ),
            }
            return;
        }
        let spawned = match process::spawn(&argv, &workdir, &env, &log) {
            Ok(s) => s,
            Err(e) => {
                let error = format!(
                    "cannot start agent `{}` (`{}`): {e}",
                    pc.agent_name,
                    argv.first().map_or("", String::as_str)
                );
                self.fail_launch(pc, task, n, error, log);
                return;
            }
        };
        let pid = spawned.pid;
        let start_time = status::process_start_time(pid);
        let run = RunInfo {
            pid,
            process_start_time: start_time,
            host: process::hostname(),
            ..RunInfo::default()
        };
        self.occupy(run_id, p, task);
        let (kind, description) = self.kind_and_description(pc, task);
        self.send(Event::TaskStarted {
            plan: pc.name.clone(),
            task: id.clone().unwrap_or_default(),
            kind,
            description,
            attempt: n,
            pid,
            log: log.clone(),
            job_id: None,
        });
        // Record the start (unless the agent already reported: it may be that fast).
        let recorded = match &id {
            Some(id) => pc.update(|doc| {
                let finished = doc.entry(id).is_some_and(|e| e.status.is_finished());
                if finished {
                    return Ok(());
                }
                let opts = TransitionOptions {
                    force: true,
                    run: Some(run.clone()),
                    ..TransitionOptions::default()
                };
                status::apply(doc, id, Transition::Start, &opts, Utc::now()).map(|_| ())
            }),
            None => pc.update(|doc| {
                doc.orch_plan_agent = Some(status::OrchPlanAgent {
                    pid,
                    process_start_time: Some(start_time),
                    started_at: status::timestamp(Utc::now()),
                    ..status::OrchPlanAgent::default()
                });
                Ok(())
            }),
        };
        if let Err(e) = recorded {
            self.send(Event::Note {
                plan: Some(pc.name.clone()),
                message: format!("cannot record the start in the status file: {e}"),
            });
        }
        let budget = self.budget(pc, task);
        let now = Instant::now();
        let attempt = Attempt {
            run_id,
            ctx: self.ctx.clone(),
            plan: pc.clone(),
            task,
            attempt: n,
            pid,
            proc: Proc::Child(spawned.child),
            log,
            started: now,
            deadline: now + budget,
            stop: self.stop_tx.subscribe(),
            done: self.done_tx.clone(),
        };
        tokio::spawn(supervise(attempt));
    }

    /// How long an attempt may run: the task timeout, or for a plan agent the timeout of each
    /// remaining task.
    fn budget(&self, pc: &PlanCtx, task: Option<usize>) -> Duration {
        if task.is_some() {
            pc.timeout
        } else {
            pc.timeout.saturating_mul(
                u32::try_from(remaining_tasks(&self.docs[pc.index]).max(1)).unwrap_or(u32::MAX),
            )
        }
    }

    fn kind_and_description(&self, pc: &PlanCtx, task: Option<usize>) -> (String, String) {
        match task {
            Some(t) => {
                let tk = &pc.plan.tasks[t];
                (kind_str(tk.kind), tk.description.clone())
            }
            None => ("plan".to_string(), pc.plan.title.clone()),
        }
    }

    /// Takes a slot for an attempt about to run.
    fn occupy(&mut self, run_id: u64, p: usize, task: Option<usize>) {
        self.running.insert(run_id, p);
        self.per_plan[p] += 1;
        match task {
            Some(t) => {
                self.busy.insert((p, t));
            }
            None => {
                self.plan_agent.insert(p);
            }
        }
    }

    /// Gives back the slot of an attempt that is over.
    fn release(&mut self, run_id: u64, p: usize, task: Option<usize>) {
        if self.running.remove(&run_id).is_some() {
            self.per_plan[p] = self.per_plan[p].saturating_sub(1);
        }
        match task {
            Some(t) => {
                self.busy.remove(&(p, t));
            }
            None => {
                self.plan_agent.remove(&p);
            }
        }
    }

    /// Submits an attempt as a batch job. The submission runs off the dispatcher (a busy
    /// controller can take seconds); [`Self::on_submitted`] takes it from there.
    #[allow(clippy::too_many_arguments)]
    fn submit(
        &mut self,
        pc: &Arc<PlanCtx>,
        task: Option<usize>,
        attempt: u32,
        run_id: u64,
        argv: Vec<String>,
        env: Env,
        workdir: std::path::PathBuf,
        log: std::path::PathBuf,
        tracker: Arc<JobTracker>,
    ) {
        let p = pc.index;
        self.occupy(run_id, p, task);
        let id = task.map(|t| pc.plan.tasks[t].id.clone());
        let budget = self.budget(pc, task);
        let spec = JobSpec {
            argv,
            cwd: workdir,
            env,
            log: log.clone(),
            name: format!("orch:{}:{}", pc.name, id.as_deref().unwrap_or("plan")),
            tag: job_tag(
                &pc.status_path.display().to_string(),
                id.as_deref().unwrap_or(""),
                attempt,
            ),
            time_limit: pc.slurm.time_limit.unwrap_or(budget + self.ctx.grace),
            options: pc.slurm.clone(),
        };
        let tx = self.submit_tx.clone();
        let pcc = pc.clone();
        let started = Instant::now();
        tokio::spawn(async move {
            // The start is recorded before the submission: a supervisor killed in between
            // leaves the task in progress, and the next one finds the job by its tag.
            let record = |job: Option<String>| {
                let pcc = pcc.clone();
                let id = id.clone();
                tokio::task::spawn_blocking(move || record_job(&pcc, id.as_deref(), job))
            };
            let _ = record(None).await;
            let result = tracker.submit(spec).await;
            if let Ok((job, _)) = &result {
                let _ = record(Some(job.clone())).await;
            }
            let _ = tx.send(Submitted {
                run_id,
                plan: p,
                task,
                attempt,
                log,
                started,
                budget,
                result,
            });
        });
    }

    /// A job was submitted (its attempt is watched from now on), or could not be.
    fn on_submitted(&mut self, s: Submitted) {
        let Some(pc) = self.plan(s.plan) else { return };
        let (job, state) = match s.result {
            Ok(x) => x,
            Err(error) => {
                self.release(s.run_id, s.plan, s.task);
                let error = format!(
                    "cannot submit agent `{}` to {}: {error}",
                    pc.agent_name,
                    pc.executor.as_str()
                );
                self.fail_launch(&pc, s.task, s.attempt, error, s.log);
                return;
            }
        };
        let Some(tracker) = self.ctx.jobs.clone() else {
            return;
        };
        let (kind, description) = self.kind_and_description(&pc, s.task);
        process::log_line(
            &s.log,
            &format!(
                "=== orch: attempt {} is {} job {job} ===",
                s.attempt,
                tracker.name()
            ),
        );
        self.send(Event::TaskStarted {
            plan: pc.name.clone(),
            task: s
                .task
                .map(|t| pc.plan.tasks[t].id.clone())
                .unwrap_or_default(),
            kind,
            description,
            attempt: s.attempt,
            pid: 0,
            log: s.log.clone(),
            job_id: Some(job.clone()),
        });
        let attempt = Attempt {
            run_id: s.run_id,
            ctx: self.ctx.clone(),
            plan: pc.clone(),
            task: s.task,
            attempt: s.attempt,
            pid: 0,
            proc: Proc::Job {
                id: job,
                state,
                tracker,
            },
            log: s.log,
            started: s.started,
            deadline: s.started + s.budget,
            stop: self.stop_tx.subscribe(),
            done: self.done_tx.clone(),
        };
        tokio::spawn(supervise(attempt));
    }

    /// A launch that failed before any process ran counts as a failed attempt.
    fn fail_launch(
        &mut self,
        pc: &Arc<PlanCtx>,
        task: Option<usize>,
        attempt: u32,
        error: String,
        log: std::path::PathBuf,
    ) {
        process::log_line(&log, &format!("=== orch: {error} ==="));
        if let Some(t) = task {
            let id = pc.plan.tasks[t].id.clone();
            let opts = TransitionOptions {
                force: true,
                error: Some(error.clone()),
                ..TransitionOptions::default()
            };
            let _ = pc.update(|doc| status::apply(doc, &id, Transition::Fail, &opts, Utc::now()));
        }
        let f = Finished {
            run_id: 0,
            plan: pc.index,
            task,
            attempt,
            outcome: Outcome::Failed { error, saved: None },
            elapsed: Duration::ZERO,
            log,
        };
        self.settle_finished(f);
    }

    /// Commits in flight in the plan's own worktree (tasks finished outside an attempt of this
    /// run, committed by [`Self::start_commit`]): each takes a slot of the plan, since an agent
    /// started meanwhile would write into the tree being committed (its files would go into that
    /// commit, or make it look like a second one; found by the crash harness). With task
    /// worktrees, agents write elsewhere: none.
    fn shared_tree_commits(&self, pc: &PlanCtx) -> usize {
        if pc.task_trees() {
            return 0;
        }
        self.committing
            .iter()
            .filter(|(q, _)| *q == pc.index)
            .count()
    }

    /// With task worktrees, a task naming a file that a running task of its plan also names
    /// waits for it (`[SEQUENTIAL]` groups are kept apart by readiness already).
    fn files_free(&self, pc: &PlanCtx, t: usize) -> bool {
        if !pc.task_trees() {
            return true;
        }
        let mine = &pc.plan.tasks[t].files;
        !pc.plan.tasks.iter().enumerate().any(|(u, other)| {
            u != t
                && self.busy.contains(&(pc.index, u))
                && !crate::git::overlapping_paths(mine, &other.files).is_empty()
        })
    }

    /// A task's commit conflicted with its plan branch (nothing landed, the task is pending
    /// again): the first time the task runs again on a fresh task worktree from the new tip;
    /// the second time it fails, naming the files.
    fn on_conflict(
        &mut self,
        pc: &Arc<PlanCtx>,
        t: usize,
        attempt: u32,
        paths: Vec<String>,
        saved: Option<String>,
        log: std::path::PathBuf,
    ) {
        let key = (pc.index, t);
        let id = pc.plan.tasks[t].id.clone();
        let rerun = self.conflicted.insert(key);
        let files = quoted(&paths);
        let error = if rerun {
            format!(
                "its commit conflicts with `{}` in {files}; it runs again on the new tip",
                pc.branch
            )
        } else {
            let error = format!(
                "its commit conflicts with `{}` in {files} again, after a re-run on the new tip",
                pc.branch
            );
            let opts = TransitionOptions {
                force: true,
                error: Some(error.clone()),
                ..TransitionOptions::default()
            };
            let _ = pc.update(|doc| status::apply(doc, &id, Transition::Fail, &opts, Utc::now()));
            self.reload(pc.index);
            self.failed.insert(key, error.clone());
            error
        };
        self.send(Event::TaskFailed {
            plan: pc.name.clone(),
            task: id,
            attempt,
            error,
            retry_in_ms: rerun.then_some(0),
            saved,
            log,
        });
    }

    /// The argv (template variables filled) and environment of an agent.
    fn prepare_argv(
        &self,
        pc: &PlanCtx,
        task: Option<usize>,
        attempt: u32,
        workdir: &std::path::Path,
        branch: &str,
    ) -> Result<(Vec<String>, Env), String> {
        let p = pc.index;
        let doc = &self.docs[p];
        let orch = self.ctx.orch_bin.display().to_string();
        let worktree = workdir.display().to_string();
        let status_file = pc.status_path.display().to_string();
        let plan_file = self.ctx.repo_root.join(&pc.rel_path).display().to_string();
        let (prompt, id) = match task {
            Some(t) => {
                let tk = &pc.plan.tasks[t];
                let phase = pc.plan.phase(tk.phase);
                let prompt = TaskPrompt {
                    plan: pc.name.clone(),
                    plan_title: pc.plan.title.clone(),
                    plan_file: pc.rel_path.clone(),
                    phase_number: tk.phase,
                    phase_title: phase.map(|ph| ph.title.clone()).unwrap_or_default(),
                    task_id: tk.id.clone(),
                    kind: kind_str(tk.kind),
                    description: tk.description.clone(),
                    body: tk.body.clone(),
                    dependencies: tk
                        .dependencies()
                        .iter()
                        .map(|d| DepInfo {
                            id: d.clone(),
                            description: pc
                                .plan
                                .task(d)
                                .map(|x| x.description.clone())
                                .unwrap_or_default(),
                            commit: doc.entry(d).and_then(|e| e.commit.clone()),
                        })
                        .collect(),
                    worktree: worktree.clone(),
                    branch: branch.to_string(),
                    orch: orch.clone(),
                    status_file: status_file.clone(),
                    attempt,
                    previous_error: doc.entry(&tk.id).and_then(|e| e.last_error.clone()),
                };
                (
                    self.ctx
                        .templates
                        .render_task(&prompt)
                        .map_err(|e| e.to_string())?,
                    tk.id.clone(),
                )
            }
            None => {
                let prompt = PlanPrompt {
                    plan: pc.name.clone(),
                    plan_title: pc.plan.title.clone(),
                    plan_file: pc.rel_path.clone(),
                    worktree: worktree.clone(),
                    branch: pc.branch.clone(),
                    orch: orch.clone(),
                    status_file: status_file.clone(),
                    tasks_total: doc.entries().count(),
                    tasks_remaining: remaining_tasks(doc),
                };
                (
                    self.ctx
                        .templates
                        .render_plan(&prompt)
                        .map_err(|e| e.to_string())?,
                    String::new(),
                )
            }
        };
        let prompt_file = pc.log_dir.join(format!(
            "{}.prompt.md",
            if id.is_empty() { "plan" } else { id.as_str() }
        ));
        std::fs::create_dir_all(&pc.log_dir)
            .and_then(|()| std::fs::write(&prompt_file, &prompt))
            .map_err(|e| format!("cannot write `{}`: {e}", prompt_file.display()))?;
        let prompt_file = prompt_file.display().to_string();
        let lookup = |var: &str| -> String {
            match var {
                "prompt" => prompt.clone(),
                "prompt_file" => prompt_file.clone(),
                "plan" => pc.name.clone(),
                "plan_file" => plan_file.clone(),
                "task" => id.clone(),
                "worktree" => worktree.clone(),
                "status_file" => status_file.clone(),
                "orch" => orch.clone(),
                _ => String::new(),
            }
        };
        let argv = pc
            .agent
            .command
            .iter()
            .map(|a| render_template(a, lookup))
            .collect::<Result<Vec<_>, _>>()?;
        let env = vec![
            ("ORCH_PLAN".to_string(), pc.name.clone()),
            ("ORCH_TASK".to_string(), id.clone()),
            ("ORCH_WORKTREE".to_string(), worktree),
            ("ORCH_STATUS_FILE".to_string(), status_file),
            ("ORCH_BIN".to_string(), orch),
            (
                "ORCH_MANIFEST".to_string(),
                self.ctx.manifest_path.display().to_string(),
            ),
            ("ORCH_ATTEMPT".to_string(), attempt.to_string()),
            ("ORCH_PROMPT_FILE".to_string(), prompt_file),
        ];
        let mut env = env;
        if task.is_none() {
            // A plan-mode agent goes straight on to its next task: `orch task done` commits.
            env.push(("ORCH_COMMIT_ON_DONE".to_string(), "1".to_string()));
        }
        Ok((argv, env))
    }

    fn on_finished(&mut self, f: Finished) {
        self.release(f.run_id, f.plan, f.task);
        self.settle_finished(f);
    }

    fn settle_finished(&mut self, f: Finished) {
        let p = f.plan;
        self.reload(p);
        let Some(pc) = self.plan(p) else { return };
        let id = f
            .task
            .map(|t| pc.plan.tasks[t].id.clone())
            .unwrap_or_default();
        match f.outcome {
            Outcome::Done { commit } => {
                if let Some(t) = f.task
                    && self.announced.insert((p, t))
                {
                    self.send(Event::TaskFinished {
                        plan: pc.name.clone(),
                        task: id,
                        commit,
                        duration_ms: millis(f.elapsed),
                    });
                }
            }
            Outcome::Skipped => self.send(Event::Note {
                plan: Some(pc.name.clone()),
                message: format!("task `{id}` was skipped"),
            }),
            Outcome::Interrupted => {}
            Outcome::Conflict { paths, saved } => {
                if let Some(t) = f.task {
                    self.on_conflict(&pc, t, f.attempt, paths, saved, f.log);
                }
            }
            Outcome::Failed { error, saved } => {
                let retry = !self.graceful && f.attempt <= pc.retries;
                let wait = self
                    .ctx
                    .backoff
                    .saturating_mul(1u32 << (f.attempt.saturating_sub(1)).min(16));
                match f.task {
                    Some(t) => {
                        if retry {
                            self.retry_at.insert((p, t), Instant::now() + wait);
                        } else {
                            self.failed.insert((p, t), error.clone());
                        }
                    }
                    None => {
                        if retry {
                            self.plan_retry_at.insert(p, Instant::now() + wait);
                        } else {
                            self.plan_failed.insert(p, error.clone());
                        }
                    }
                }
                self.send(Event::TaskFailed {
                    plan: pc.name.clone(),
                    task: id,
                    attempt: f.attempt,
                    error,
                    retry_in_ms: retry.then(|| millis(wait)),
                    saved,
                    log: f.log,
                });
            }
        }
        self.check_finished(p);
    }

    /// The upstream plans of `p` (by `depends_on`) that are not merged into the target: neither
    /// by the merge train of this run nor before it (`orchMerge.state` in their status file).
    fn unmerged_upstreams(&self, p: usize) -> Vec<String> {
        let Some(pc) = self.plan(p) else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for d in &pc.depends_on {
            let Some(q) = self.ws.plans.iter().position(|lp| lp.name == d.plan) else {
                continue;
            };
            let merged_now = self.merge_results.get(&q).is_some_and(|r| r == "merged");
            let merged_before = self.docs[q]
                .orch_merge
                .as_ref()
                .is_some_and(status::OrchMerge::is_merged);
            let name = format!("`{}`", d.plan);
            if !merged_now && !merged_before && !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }

    /// Starts `orch merge` for the first queued plan whose upstream plans are merged. A plan
    /// whose upstream failed to merge is skipped.
    fn start_merge(&mut self) {
        if self.merging.is_some() || self.graceful {
            return;
        }
        let mut i = 0;
        while i < self.merge_queue.len() {
            let p = self.merge_queue[i];
            let waiting = self.unmerged_upstreams(p);
            if waiting.is_empty() {
                self.merge_queue.remove(i);
                self.spawn_merge(p);
                return;
            }
            // An upstream whose merge already failed will not be merged in this run.
            let hopeless = self.plan(p).is_some_and(|pc| {
                pc.depends_on.iter().any(|d| {
                    self.ws
                        .plans
                        .iter()
                        .position(|lp| lp.name == d.plan)
                        .and_then(|q| self.merge_results.get(&q))
                        .is_some_and(|r| r != "merged")
                })
            });
            if hopeless {
                self.merge_queue.remove(i);
                self.merge_results.insert(p, "skipped".to_string());
                if let Some(pc) = self.plan(p) {
                    self.send(Event::PlanMergeFailed {
                        plan: pc.name.clone(),
                        result: "skipped".to_string(),
                        reason: format!("upstream {} was not merged", waiting.join(", ")),
                    });
                }
                continue;
            }
            i += 1;
        }
    }

    fn spawn_merge(&mut self, p: usize) {
        let Some(pc) = self.plan(p) else { return };
        self.merging = Some(p);
        let manifest = self.ctx.manifest_path.clone();
        let name = pc.name.clone();
        let tx = self.merge_tx.clone();
        tokio::spawn(async move {
            let r = run_merge(&manifest, &name).await;
            let _ = tx.send((p, r));
        });
    }

    fn on_merged(&mut self, p: usize, r: MergeResult) {
        self.merging = None;
        self.reload(p);
        let Some(pc) = self.plan(p) else { return };
        let target = self
            .ws
            .manifest
            .as_ref()
            .map(|m| m.defaults.target.clone())
            .unwrap_or_default();
        if r.result == "merged" || r.result == "already_merged" {
            self.merge_results.insert(p, "merged".to_string());
            self.send(Event::PlanMerged {
                plan: pc.name.clone(),
                target,
                commit: r.commit.filter(|_| r.result == "merged"),
            });
        } else {
            self.merge_results.insert(p, r.result.clone());
            self.send(Event::PlanMergeFailed {
                plan: pc.name.clone(),
                result: r.result,
                reason: r.reason,
            });
        }
    }

    /// Marks plan `p` finished when every task is completed or skipped and committed.
    fn check_finished(&mut self, p: usize) {
        let Some(pc) = self.plan(p) else { return };
        if self.finished[p] || self.per_plan[p] > 0 {
            return;
        }
        let doc = &self.docs[p];
        let all_done = pc.plan.tasks.iter().all(|t| {
            doc.entry(&t.id).is_some_and(|e| e.status.is_finished()) && !pc.needs_commit(doc, &t.id)
        });
        if all_done
            && !pc
                .plan
                .tasks
                .iter()
                .enumerate()
                .any(|(t, _)| self.committing.contains(&(p, t)))
        {
            self.finished[p] = true;
            self.send(Event::PlanFinished {
                plan: pc.name.clone(),
                completed: pc.plan.tasks.len(),
            });
            if self.ctx.auto_merge {
                self.merge_queue.push(p);
            }
        }
    }

    /// Nothing runs, nothing is about to: the run is over.
    fn is_over(&mut self) -> bool {
        for p in 0..self.finished.len() {
            self.check_finished(p);
        }
        self.start_merge();
        if self.merging.is_some() {
            return false;
        }
        if !self.running.is_empty()
            || !self.committing.is_empty()
            || self.prep.contains(&Prep::Running)
        {
            return false;
        }
        // Nothing runs: plans still queued wait on upstream plans that will not be merged.
        for p in std::mem::take(&mut self.merge_queue) {
            self.merge_results.insert(p, "skipped".to_string());
            let reason = if self.graceful {
                "interrupted before its merge; run `orch merge` to merge it".to_string()
            } else {
                format!(
                    "it waits for {}, not merged in this run",
                    self.unmerged_upstreams(p).join(", ")
                )
            };
            if let Some(pc) = self.plan(p) {
                self.send(Event::PlanMergeFailed {
                    plan: pc.name.clone(),
                    result: "skipped".to_string(),
                    reason,
                });
            }
        }
        if self.graceful {
            return true;
        }
        if !self.retry_at.is_empty() || !self.plan_retry_at.is_empty() {
            return false;
        }
        // schedule() ran just before and launched nothing: everything left is stuck.
        true
    }

    fn summary(&mut self) -> RunSummary {
        let Some(graph) = self.ws.graph.as_ref() else {
            return RunSummary {
                plans: Vec::new(),
                elapsed_ms: millis(self.started.elapsed()),
                interrupted: self.graceful,
            };
        };
        let now = Instant::now();
        let r = readiness(graph, &self.plan_list, &self.priorities, |p, t| {
            self.state(p, t, now)
        });
        let mut plans = Vec::new();
        let mut blocked_events = Vec::new();
        for pc in self.run_plans() {
            let p = pc.index;
            let doc = &self.docs[p];
            let completed = doc.entries().filter(|e| e.status.is_finished()).count();
            let total = doc.entries().count();
            let failed_tasks: Vec<String> = pc
                .plan
                .tasks
                .iter()
                .enumerate()
                .filter(|(t, task)| {
                    self.failed.contains_key(&(p, *t))
                        || doc
                            .entry(&task.id)
                            .is_some_and(|e| e.status == TaskStatus::Failed)
                })
                .map(|(_, task)| task.id.clone())
                .collect();
            let (outcome, reason) = match (self.finished[p], &self.prep[p]) {
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
                _ if self.plan_failed.contains_key(&p) => {
                    ("failed", self.plan_failed.get(&p).cloned())
                }
                _ if self.graceful => (
                    "unfinished",
                    Some("interrupted; `orch up` goes on from here".to_string()),
                ),
                _ => self.why_stuck(&pc, &r.blocked, graph),
            };
            if matches!(outcome, "blocked" | "failed") && !matches!(self.prep[p], Prep::Blocked(_))
            {
                blocked_events.push(Event::PlanBlocked {
                    plan: pc.name.clone(),
                    reason: reason.clone().unwrap_or_default(),
                });
            }
            plans.push(PlanOutcome {
                plan: pc.name.clone(),
                outcome: outcome.to_string(),
                completed,
                total,
                failed_tasks,
                reason,
                merge: self.merge_results.get(&p).cloned(),
                branch: pc.branch.clone(),
                worktree: pc.worktree.clone(),
                log_dir: pc.log_dir.clone(),
            });
        }
        for e in blocked_events {
            self.send(e);
        }
        RunSummary {
            plans,
            elapsed_ms: millis(self.started.elapsed()),
            interrupted: self.graceful,
        }
    }

    /// The ids of plan `p`'s tasks that failed for good (in this run or as recorded).
    fn failed_tasks_of(&self, p: usize) -> Vec<String> {
        self.ws.plans[p]
            .plan
            .tasks
            .iter()
            .enumerate()
            .filter(|(t, task)| {
                self.failed.contains_key(&(p, *t))
                    || self.docs[p]
                        .entry(&task.id)
                        .is_some_and(|e| e.status == TaskStatus::Failed)
            })
            .map(|(_, task)| task.id.clone())
            .collect()
    }

    /// Why an unfinished plan could not go on.
    fn why_stuck(
        &self,
        pc: &PlanCtx,
        blocked: &[(usize, Vec<Waiting>)],
        graph: &crate::graph::Graph,
    ) -> (&'static str, Option<String>) {
        let p = pc.index;
        let mut reasons: Vec<String> = Vec::new();
        let mut outcome = "blocked";
        for (node, why) in blocked {
            if graph.task_of(*node).is_none_or(|(q, _)| q != p) {
                continue;
            }
            for w in why {
                let text = match w {
                    Waiting::Failed(n) => {
                        format!("blocked by failed `{}`", node_name(self.ws, graph, *n))
                    }
                    Waiting::Upstream { plan, label } => {
                        if self.plan(*plan).is_none() {
                            outcome = "unfinished";
                            format!(
                                "waits for plan `{}` ({label}), which is not part of this run",
                                self.ws.plans[*plan].name
                            )
                        } else {
                            let failed = self.failed_tasks_of(*plan);
                            if failed.is_empty() {
                                format!(
                                    "waits for plan `{}` ({label}), which did not get there",
                                    self.ws.plans[*plan].name
                                )
                            } else {
                                format!(
                                    "waits for plan `{}` ({label}), whose task{} {} failed",
                                    self.ws.plans[*plan].name,
                                    if failed.len() == 1 { "" } else { "s" },
                                    failed
                                        .iter()
                                        .map(|t| format!("`{}:{t}`", self.ws.plans[*plan].name))
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
}

fn node_name(ws: &Workspace, g: &crate::graph::Graph, n: usize) -> String {
    match g.task_of(n) {
        Some((p, t)) => format!("{}:{}", ws.plans[p].name, ws.plans[p].plan.tasks[t].id),
        None => format!("node {n}"),
    }
}

fn kind_str(k: TaskKind) -> String {
    match k {
        TaskKind::Task => "task".to_string(),
        TaskKind::Verify => "verify".to_string(),
    }
}

/// The task among `ids` whose commit is the worktree's HEAD (made since the task started), with
/// that commit: the supervisor committed it and died before recording it.
fn committed_at_head(pc: &PlanCtx, ids: &[String]) -> Option<(String, String)> {
    let (oid, message) = crate::git::head_of(&pc.worktree).ok()?;
    if oid == pc.base {
        return None;
    }
    let id = ids
        .iter()
        .find(|id| message.starts_with(&format!("{} {id}:", pc.name)))?;
    let started = pc
        .view()
        .ok()?
        .entry(id)
        .and_then(|e| e.started_at.as_deref().and_then(status::parse_timestamp));
    let made = crate::git::head_time(&pc.worktree).ok()?;
    // Commit times are whole seconds.
    if started.is_some_and(|t| made < t.timestamp()) {
        return None;
    }
    Some((id.clone(), oid))
}

/// Makes task `id`'s worktree and branch from the plan branch's tip for attempt `n`; a task
/// worktree left by an earlier attempt is saved (`refs/orch/attempts/<plan>/<id>/<n>-stale`) and
/// removed first. Returns the worktree and the task branch.
fn make_task_tree(pc: &PlanCtx, id: &str, n: u32) -> Result<(std::path::PathBuf, String), String> {
    let refname = format!("refs/orch/attempts/{}/{id}/{n}-stale", pc.name);
    let message = format!(
        "{} {id}: left in its task worktree (saved by orch)",
        pc.name
    );
    let why = |e: crate::git::GitError| {
        format!(
            "cannot make the worktree of task `{id}` of plan `{}` (branch `{}`, from `{}`): {e}",
            pc.name,
            crate::git::task_branch(&pc.name, id),
            pc.branch
        )
    };
    // No agent of the task is alive (it is being launched) and only this supervisor writes
    // task branches: a lock of the task's branch or worktree index now is a stale one, left by a
    // supervisor killed while it wrote there (found by the crash harness).
    let _ = crate::git::remove_plan_locks(
        &pc.repo_root,
        &crate::git::task_tree_name(&pc.name, id),
        &crate::git::task_branch(&pc.name, id),
    );
    crate::git::retire_task_tree(&pc.task_tree(id), Some((&refname, &message))).map_err(why)?;
    let tree = crate::git::ensure_task_tree(&pc.task_tree(id)).map_err(why)?;
    Ok((tree.path, tree.branch))
}

/// Whether task `id`'s worktree holds the task's own commit, clean: it was committed there and
/// a supervisor died before landing it.
fn task_commit_waits(pc: &PlanCtx, id: &str) -> bool {
    let Some(tree) = pc.task_worktree(id) else {
        return false;
    };
    let prefix = format!("{} {id}:", pc.name);
    crate::git::head_of(&tree).is_ok_and(|(_, msg)| msg.starts_with(&prefix))
        && crate::git::is_dirty(&tree).is_ok_and(|d| !d)
}

/// Removes task `id`'s worktree and branch left by an earlier supervisor (its stale git locks
/// first), saving what they hold under `refs/orch/attempts/<plan>/<id>/resume-<time>` unless
/// `save` is false and the worktree is clean.
fn retire_leftover_tree(pc: &PlanCtx, id: &str, save: bool) {
    let _ = crate::git::remove_plan_locks(
        &pc.repo_root,
        &crate::git::task_tree_name(&pc.name, id),
        &crate::git::task_branch(&pc.name, id),
    );
    let refname = format!(
        "refs/orch/attempts/{}/{id}/resume-{}",
        pc.name,
        Utc::now().timestamp_millis()
    );
    let message = format!(
        "{} {id}: left in its task worktree by a stopped supervisor (saved by orch)",
        pc.name
    );
    let retire = |save: bool| {
        crate::git::retire_task_tree(
            &pc.task_tree(id),
            save.then_some((refname.as_str(), message.as_str())),
        )
    };
    if !save && retire(false).is_ok() {
        return;
    }
    let _ = retire(true);
}

/// Startup, plan with task worktrees: the task worktrees of adopted agents (`busy`) stay; those
/// of tasks done but not landed (`waiting`) get their stale locks removed and are landed next;
/// every other one is a leftover: removed, its work saved unless the task's commit is recorded.
fn tidy_task_trees(pc: &PlanCtx, busy: &HashSet<String>, waiting: &HashSet<String>) {
    let Ok(ids) = crate::git::task_tree_ids(&pc.repo_root, &pc.name) else {
        return;
    };
    let doc = pc.view().ok();
    for id in ids.iter().filter(|id| !busy.contains(*id)) {
        if waiting.contains(id) {
            let _ = crate::git::remove_plan_locks(
                &pc.repo_root,
                &crate::git::task_tree_name(&pc.name, id),
                &crate::git::task_branch(&pc.name, id),
            );
            continue;
        }
        let landed = doc
            .as_ref()
            .and_then(|d| d.entry(id))
            .is_some_and(|e| e.status == TaskStatus::Completed && e.commit.is_some());
        retire_leftover_tree(pc, id, !landed);
    }
}

fn task_index(plan: &Plan, id: &str) -> Option<usize> {
    plan.tasks.iter().position(|t| t.id == id)
}

fn remaining_tasks(doc: &StatusDoc) -> usize {
    doc.entries().filter(|e| !e.status.is_finished()).count()
}

/// Records a batch attempt: before its submission (`job` `None`) the task goes in progress with
/// `orchRun.executor`; after it, the job id is added (unless the agent already reported).
fn record_job(pc: &PlanCtx, id: Option<&str>, job: Option<String>) {
    let executor = pc.executor.as_str().to_string();
    let _ = match id {
        Some(id) => pc.update(|doc| {
            if doc.entry(id).is_none_or(|e| e.status.is_finished()) {
                return Ok(());
            }
            match job {
                None => {
                    let opts = TransitionOptions {
                        force: true,
                        run: Some(RunInfo {
                            executor: Some(executor),
                            ..RunInfo::default()
                        }),
                        ..TransitionOptions::default()
                    };
                    status::apply(doc, id, Transition::Start, &opts, Utc::now()).map(|_| ())
                }
                Some(job) => {
                    if let Some(run) = doc.entry_mut(id).and_then(|e| e.orch_run.as_mut()) {
                        run.job_id = Some(job);
                    }
                    Ok(())
                }
            }
        }),
        None => pc.update(|doc| {
            doc.orch_plan_agent = Some(status::OrchPlanAgent {
                pid: 0,
                executor: Some(executor),
                job_id: Some(job),
                started_at: status::timestamp(Utc::now()),
                ..status::OrchPlanAgent::default()
            });
            Ok(())
        }),
    };
}

/// The batch job of a plan-mode agent, as recorded.
fn plan_job_of(doc: &StatusDoc) -> Option<String> {
    doc.orch_plan_agent.as_ref()?.job_id.clone()?
}

fn plan_agent_of(doc: &StatusDoc) -> Option<(u32, u64)> {
    let agent = doc.orch_plan_agent.as_ref()?;
    Some((agent.pid, agent.process_start_time?))
}

fn file_stamp(path: &std::path::Path) -> Option<(u64, std::time::SystemTime)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

async fn recv_signal(s: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// How the merge of one plan ended, as the merge train reads it.
#[derive(Debug)]
struct MergeResult {
    /// `merged`, `already_merged`, `conflict`, `verify_failed`, `skipped`, `refused`, `error`.
    result: String,
    commit: Option<String>,
    reason: String,
}

/// Merges `plan` as `orch merge PLAN` does (all of its checks, locks and verification), on a
/// blocking thread. Ctrl-C meanwhile reaches it as it reached the `orch merge` child: the first
/// stops the step without moving the target, the second kills its verify command.
async fn run_merge(manifest: &std::path::Path, plan: &str) -> MergeResult {
    let (manifest, name) = (manifest.to_path_buf(), plan.to_string());
    let mut merging =
        tokio::task::spawn_blocking(move || crate::merge::merge_plan_now(&manifest, &name));
    let mut sigint = signal(SignalKind::interrupt()).ok();
    let mut signals = 0;
    let joined = loop {
        tokio::select! {
            joined = &mut merging => break joined,
            Some(()) = recv_signal(&mut sigint) => {
                signals += 1;
                if signals == 1 {
                    crate::merge::interrupt::request();
                } else {
                    crate::merge::interrupt::stop_now();
                }
            }
        }
    };
    match joined {
        Ok(report) => MergeResult {
            result: report.outcome.result_str().to_string(),
            commit: report.outcome.commit().map(str::to_string),
            reason: report.outcome.reason(),
        },
        Err(e) => MergeResult {
            result: "error".to_string(),
            commit: None,
            reason: format!("the merge of plan `{plan}` stopped: {e}"),
        },
    }
}
