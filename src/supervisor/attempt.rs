//! One agent attempt: watching the process (exit, timeout, stuck, stop), stopping its whole
//! process group, and turning what happened into a task outcome: a commit, or a failure with the
//! attempt's changes saved.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nix::sys::signal::Signal;
use tokio::process::Child;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use super::context::{Ctx, PlanCtx};
use crate::executor::{JobEnd, JobState, JobTracker, NOT_SHARED_EXIT};
use crate::git;
use crate::process::{self, process_alive, signal_group, terminate_group};
use crate::status::{self, StatusDoc, TaskStatus, Transition, TransitionOptions};

/// How far a stop request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Keep going.
    No,
    /// Launch nothing more (first Ctrl-C): running agents finish, batch jobs still waiting in
    /// the queue are cancelled (nothing of them ran yet).
    Drain,
    /// Stop now (second Ctrl-C, SIGTERM).
    Now,
}

/// What ended an attempt's process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The agent exited by itself; `None` when the code is unknown (an adopted process).
    Exited(Option<i32>),
    TimedOut(Duration),
    Stuck(Duration),
    Stopped,
    /// A batch job ended otherwise than by the agent's exit (its time limit, its node, …).
    Job {
        id: String,
        end: JobEnd,
    },
}

/// The outcome of an attempt, as the dispatcher sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done and committed (`commit` is `None` only for a skipped task with nothing to commit).
    Done { commit: Option<String> },
    /// Skipped by the agent or a person.
    Skipped,
    Failed {
        error: String,
        saved: Option<String>,
    },
    /// Stopped by the user, or the agent of an earlier supervisor vanished without a word: the
    /// task is pending again and does not count as failed.
    Interrupted,
    /// Done in its task worktree, but its commit conflicts with the plan branch's tip in `paths`:
    /// nothing landed, the commit is saved under `saved`, the task is pending again.
    Conflict {
        paths: Vec<String>,
        saved: Option<String>,
    },
}

/// Why a task's work could not be committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitError {
    /// Its task commit conflicts with the plan branch in `paths` (see [`Outcome::Conflict`]).
    Conflict {
        paths: Vec<String>,
        saved: Option<String>,
    },
    Failed(String),
}

impl std::fmt::Display for CommitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Conflict { paths, .. } => write!(f, "its commit conflicts in {}", quoted(paths)),
            Self::Failed(e) => f.write_str(e),
        }
    }
}

/// `a`, `b`: paths for a message.
pub fn quoted(paths: &[String]) -> String {
    crate::diagnostic::path_list(paths, usize::MAX)
}

/// Sent to the dispatcher when an attempt is over.
#[derive(Debug)]
pub struct Finished {
    pub run_id: u64,
    pub plan: usize,
    /// `None` for a plan-mode agent.
    pub task: Option<usize>,
    pub attempt: u32,
    pub outcome: Outcome,
    pub elapsed: Duration,
    pub log: PathBuf,
}

/// The process an attempt watches.
pub enum Proc {
    /// Spawned by this supervisor.
    Child(Child),
    /// Left by an earlier supervisor: pid (= process group) and start time.
    Adopted { pid: u32, start_time: u64 },
    /// A batch job (submitted now or found again after a restart), followed by the tracker.
    Job {
        id: String,
        state: watch::Receiver<JobState>,
        tracker: Arc<JobTracker>,
    },
}

/// Everything an attempt needs.
pub struct Attempt {
    pub run_id: u64,
    pub ctx: Arc<Ctx>,
    pub plan: Arc<PlanCtx>,
    pub task: Option<usize>,
    pub attempt: u32,
    pub pid: u32,
    pub proc: Proc,
    pub log: PathBuf,
    pub started: Instant,
    pub deadline: Instant,
    pub stop: watch::Receiver<Stop>,
    pub done: mpsc::UnboundedSender<Finished>,
}

/// Watches the attempt to its end, stops its process group, settles the outcome and reports it.
pub async fn supervise(mut a: Attempt) {
    let ending = watch_process(&mut a).await;
    // Whatever the leader did, nothing of its group may outlive it.
    signal_group(a.pid, Signal::SIGKILL);
    let ctx = a.ctx.clone();
    let plan = a.plan.clone();
    let task = a.task;
    let attempt = a.attempt;
    let log = a.log.clone();
    let ending_text = describe_ending(&ending);
    process::log_line(
        &log,
        &format!(
            "=== orch: attempt {attempt} ended at {}: {ending_text} ===",
            status::timestamp(Utc::now())
        ),
    );
    let outcome = tokio::task::spawn_blocking(move || settle(&ctx, &plan, task, attempt, &ending))
        .await
        .unwrap_or_else(|e| Outcome::Failed {
            error: format!("orch could not settle the attempt: {e}"),
            saved: None,
        });
    let _ = a.done.send(Finished {
        run_id: a.run_id,
        plan: a.plan.index,
        task: a.task,
        attempt: a.attempt,
        outcome,
        elapsed: a.started.elapsed(),
        log: a.log,
    });
}

fn describe_ending(e: &Ending) -> String {
    match e {
        Ending::Exited(Some(code)) => format!("exit status {code}"),
        Ending::Exited(None) => "the process is gone".to_string(),
        Ending::TimedOut(t) => format!("timed out after {}", humantime(*t)),
        Ending::Stuck(t) => format!(
            "stuck: no output and no status change for {}",
            humantime(*t)
        ),
        Ending::Stopped => "stopped by orch".to_string(),
        Ending::Job { id, end } => format!("job {id}: {}", end.describe()),
    }
}

/// `90s`, `5m`, `2h`, `1m30s`.
pub fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.is_empty() {
        out.push_str(&format!("{sec}s"));
    }
    out
}

async fn watch_process(a: &mut Attempt) -> Ending {
    if let Proc::Job { .. } = a.proc {
        return watch_job(a).await;
    }
    let grace = a.ctx.grace;
    let stuck_after = a.ctx.stuck_after;
    let mut tick = tokio::time::interval(Duration::from_millis(match a.proc {
        Proc::Child(_) => 500,
        Proc::Adopted { .. } | Proc::Job { .. } => 100,
    }));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut activity = Activity::new(&a.log, &a.plan.status_path);
    let deadline = a.deadline;
    let pid = a.pid;
    loop {
        match &mut a.proc {
            Proc::Child(child) => {
                tokio::select! {
                    status = child.wait() => {
                        return Ending::Exited(status.ok().and_then(|s| exit_code(&s)));
                    }
                    () = sleep_until(deadline) => {
                        terminate_group(pid, grace, Some(child)).await;
                        return Ending::TimedOut(deadline.duration_since(a.started));
                    }
                    _ = tick.tick() => {
                        if let Some(limit) = stuck_after && activity.idle_for() >= limit {
                            terminate_group(pid, grace, Some(child)).await;
                            return Ending::Stuck(limit);
                        }
                    }
                    changed = a.stop.changed() => {
                        if changed.is_err() || *a.stop.borrow() == Stop::Now {
                            terminate_group(pid, grace, Some(child)).await;
                            return Ending::Stopped;
                        }
                    }
                }
            }
            Proc::Adopted { pid, start_time } => {
                let (pid, start_time) = (*pid, *start_time);
                tokio::select! {
                    () = sleep_until(deadline) => {
                        terminate_group(pid, grace, None).await;
                        return Ending::TimedOut(deadline.duration_since(a.started));
                    }
                    _ = tick.tick() => {
                        if !process_alive(pid, start_time) {
                            return Ending::Exited(None);
                        }
                        if let Some(limit) = stuck_after && activity.idle_for() >= limit {
                            terminate_group(pid, grace, None).await;
                            return Ending::Stuck(limit);
                        }
                    }
                    changed = a.stop.changed() => {
                        if changed.is_err() || *a.stop.borrow() == Stop::Now {
                            terminate_group(pid, grace, None).await;
                            return Ending::Stopped;
                        }
                    }
                }
            }
            // Handled by `watch_job`.
            Proc::Job { .. } => return Ending::Exited(None),
        }
    }
}

/// Follows a batch job to its end: the tracker's state changes, orch's own deadline, stuck
/// detection and stop requests (which cancel the job and wait for it to be over).
async fn watch_job(a: &mut Attempt) -> Ending {
    let Proc::Job { id, state, tracker } = &mut a.proc else {
        return Ending::Exited(None);
    };
    let (id, tracker) = (id.clone(), tracker.clone());
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut activity = Activity::new(&a.log, &a.plan.status_path);
    let stuck_after = a.ctx.stuck_after;
    // Cancelling waits this long for the job to be over before the attempt is settled anyway.
    let settle_wait = a.ctx.grace + Duration::from_secs(60);
    let mut drained = false;
    loop {
        let now = state.borrow_and_update().clone();
        if let JobState::Ended(end) = now {
            if drained && end == JobEnd::Cancelled {
                return Ending::Stopped;
            }
            return job_ending(&id, end);
        }
        let stop = *a.stop.borrow();
        if stop == Stop::Now {
            cancel_job(&tracker, &id, state, settle_wait, &a.log).await;
            return Ending::Stopped;
        }
        if stop == Stop::Drain && !drained && now == JobState::Queued {
            // Only if it still waits: the tracker's view may be a poll old.
            drained = true;
            if let Err(e) = tracker.cancel_queued(&id).await {
                process::log_line(
                    &a.log,
                    &format!("=== orch: cannot cancel job {id}: {e} ==="),
                );
            }
            continue;
        }
        tokio::select! {
            changed = state.changed() => {
                if changed.is_err() {
                    // The tracker is gone: the run is ending.
                    return Ending::Stopped;
                }
            }
            () = sleep_until(a.deadline) => {
                cancel_job(&tracker, &id, state, settle_wait, &a.log).await;
                return Ending::TimedOut(a.deadline.duration_since(a.started));
            }
            _ = tick.tick() => {
                // A queued job writes nothing: only a running one can be stuck.
                if let Some(limit) = stuck_after
                    && activity.idle_for() >= limit
                    && *state.borrow() == JobState::Running
                {
                    cancel_job(&tracker, &id, state, settle_wait, &a.log).await;
                    return Ending::Stuck(limit);
                }
            }
            changed = a.stop.changed() => {
                if changed.is_err() {
                    cancel_job(&tracker, &id, state, settle_wait, &a.log).await;
                    return Ending::Stopped;
                }
            }
        }
    }
}

/// How a job's end reads as an attempt's ending: the agent's exit status, or the job's fate.
fn job_ending(id: &str, end: JobEnd) -> Ending {
    match end {
        JobEnd::Exited(code) if code != NOT_SHARED_EXIT => Ending::Exited(Some(code)),
        // Unknown: like an adopted process found gone (the task's report decides).
        JobEnd::Gone => Ending::Exited(None),
        end => Ending::Job {
            id: id.to_string(),
            end,
        },
    }
}

/// Cancels a job and waits (up to `wait`) until the scheduler says it is over, so that its
/// agent no longer writes into the worktree when the attempt is settled.
async fn cancel_job(
    tracker: &Arc<JobTracker>,
    id: &str,
    state: &mut watch::Receiver<JobState>,
    wait: Duration,
    log: &std::path::Path,
) {
    if let Err(e) = tracker.cancel(id).await {
        process::log_line(log, &format!("=== orch: cannot cancel job {id}: {e} ==="));
    }
    let until = Instant::now() + wait;
    while !state.borrow().is_over() {
        tokio::select! {
            changed = state.changed() => if changed.is_err() { return },
            () = sleep_until(until) => {
                process::log_line(
                    log,
                    &format!("=== orch: job {id} was cancelled but is not over after {} ===", humantime(wait)),
                );
                return;
            }
        }
    }
}

fn exit_code(s: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    s.code().or_else(|| s.signal().map(|sig| 128 + sig))
}

/// Output written or the status file changed: the signs that an agent is alive and working.
struct Activity {
    log: PathBuf,
    status: PathBuf,
    seen: (u64, Option<std::time::SystemTime>),
    since: Instant,
}

impl Activity {
    fn new(log: &std::path::Path, status: &std::path::Path) -> Self {
        let mut a = Self {
            log: log.to_path_buf(),
            status: status.to_path_buf(),
            seen: (0, None),
            since: Instant::now(),
        };
        a.seen = a.sample();
        a
    }

    fn sample(&self) -> (u64, Option<std::time::SystemTime>) {
        let len = std::fs::metadata(&self.log).map_or(0, |m| m.len());
        let mtime = std::fs::metadata(&self.status)
            .and_then(|m| m.modified())
            .ok();
        (len, mtime)
    }

    fn idle_for(&mut self) -> Duration {
        let now = self.sample();
        if now != self.seen {
            self.seen = now;
            self.since = Instant::now();
        }
        self.since.elapsed()
    }
}

/// Turns an ending into the task's recorded outcome (blocking: git and status-file work).
fn settle(
    ctx: &Ctx,
    plan: &PlanCtx,
    task: Option<usize>,
    attempt: u32,
    ending: &Ending,
) -> Outcome {
    match task {
        Some(t) => settle_task(ctx, plan, t, attempt, ending),
        None => settle_plan_agent(plan, attempt, ending),
    }
}

fn settle_task(_ctx: &Ctx, plan: &PlanCtx, t: usize, attempt: u32, ending: &Ending) -> Outcome {
    let task = &plan.plan.tasks[t];
    let id = task.id.as_str();
    let recorded = match plan.view() {
        Ok(doc) => doc.entry(id).map(|e| (e.status, e.error.clone())),
        Err(e) => {
            return Outcome::Failed {
                error: format!("cannot read the status file: {e}"),
                saved: None,
            };
        }
    };
    let (status, reported_error) = recorded.unwrap_or((TaskStatus::InProgress, None));
    match status {
        TaskStatus::Completed => commit_done(plan, id, &task.description),
        TaskStatus::Skipped => Outcome::Skipped,
        TaskStatus::Failed => {
            let error = reported_error.unwrap_or_else(|| "the agent reported failure".into());
            fail(plan, id, attempt, &error, false)
        }
        TaskStatus::Pending | TaskStatus::InProgress => match ending {
            Ending::Exited(Some(0)) => commit_done(plan, id, &task.description),
            Ending::Exited(Some(code)) => fail(
                plan,
                id,
                attempt,
                &format!(
                    "the agent exited with status {code} without reporting (log: {})",
                    plan.log_path(Some(id)).display()
                ),
                true,
            ),
            Ending::TimedOut(_) | Ending::Stuck(_) | Ending::Job { .. } => {
                fail(plan, id, attempt, &describe_ending(ending), true)
            }
            Ending::Stopped | Ending::Exited(None) => interrupted(plan, id, attempt, ending),
        },
    }
}

/// Commits the worktree for a done task and records the commit.
pub fn commit_done(plan: &PlanCtx, id: &str, description: &str) -> Outcome {
    match commit_task(plan, id, description, false, Changes::Take) {
        Ok(commit) => Outcome::Done {
            commit: Some(commit),
        },
        Err(CommitError::Conflict { paths, saved }) => Outcome::Conflict { paths, saved },
        Err(CommitError::Failed(error)) => {
            // Recorded, so the status file never keeps a task `in_progress` that nothing runs (the
            // agent may have deleted its worktree).
            let opts = TransitionOptions {
                force: true,
                error: Some(error.clone()),
                ..TransitionOptions::default()
            };
            let _ = plan.update(|doc| status::apply(doc, id, Transition::Fail, &opts, Utc::now()));
            Outcome::Failed { error, saved: None }
        }
    }
}

/// What a task's commit takes from the worktree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changes {
    /// Everything in the worktree: the task's agent ran there and has ended.
    Take,
    /// Nothing (an empty commit): the task was reported from outside while other agents of the
    /// plan are still writing in the worktree; their changes go with their own tasks.
    Leave,
}

/// Commits the worktree as `<plan> <id>: <description>` and records it, marking the task
/// completed. With `maybe_committed` (work found done but unrecorded: a supervisor may have died
/// between its commit and its record), a HEAD that is that task's commit is reused (with
/// [`Changes::Take`] only when the tree is clean: changes since belong to no recorded task yet).
pub fn commit_task(
    plan: &PlanCtx,
    id: &str,
    description: &str,
    maybe_committed: bool,
    changes: Changes,
) -> Result<String, CommitError> {
    if let Some(tree) = plan.task_worktree(id) {
        return commit_task_tree(plan, id, description, maybe_committed, &tree);
    }
    let _git = lock_git(plan)?;
    let message = plan.commit_message(id, description);
    let prefix = format!("{} {id}:", plan.name);
    let reuse = if maybe_committed {
        let clean = || changes == Changes::Leave || git::is_dirty(&plan.worktree).is_ok_and(|d| !d);
        match git::head_of(&plan.worktree) {
            Ok((oid, msg)) if msg.starts_with(&prefix) && oid != plan.base && clean() => Some(oid),
            _ => None,
        }
    } else {
        None
    };
    let oid = match reuse {
        Some(oid) => oid,
        None => {
            let made = match changes {
                Changes::Take => git::commit_all(&plan.worktree, &message),
                Changes::Leave => git::commit_unchanged(&plan.worktree, &message),
            };
            made.map_err(|e| {
                CommitError::Failed(format!(
                    "cannot commit task `{id}` in `{}`: {e}",
                    plan.worktree.display()
                ))
            })?
            .oid
        }
    };
    record_commit(plan, id, &oid)?;
    Ok(oid)
}

fn lock_git(plan: &PlanCtx) -> Result<std::sync::MutexGuard<'_, ()>, CommitError> {
    plan.git_lock.lock().map_err(|_| {
        CommitError::Failed(format!("the git lock of plan `{}` is poisoned", plan.name))
    })
}

/// Commits task `id`'s worktree `tree` on its task branch (or, `maybe_committed`, reuses the
/// task's commit found there), lands it on the plan branch (one commit per task, see
/// [`git::land_task_commit`]), records it and removes the task worktree and branch. On a conflict
/// the task commit is saved under `refs/orch/attempts/<plan>/<id>/conflict-<time>`, the task
/// worktree and branch are removed and the task is put back to pending.
fn commit_task_tree(
    plan: &PlanCtx,
    id: &str,
    description: &str,
    maybe_committed: bool,
    tree: &std::path::Path,
) -> Result<String, CommitError> {
    let message = plan.commit_message(id, description);
    let prefix = format!("{} {id}:", plan.name);
    let reuse = match git::head_of(tree) {
        Ok((oid, msg))
            if maybe_committed
                && msg.starts_with(&prefix)
                && git::is_dirty(tree).is_ok_and(|d| !d) =>
        {
            Some(oid)
        }
        _ => None,
    };
    let branch = git::task_branch(&plan.name, id);
    let task_commit = match reuse {
        Some(oid) => oid,
        None => {
            git::commit_all(tree, &message)
                .map_err(|e| {
                    CommitError::Failed(format!(
                        "cannot commit task `{id}` of plan `{}` on `{branch}` in `{}`: {e}",
                        plan.name,
                        tree.display()
                    ))
                })?
                .oid
        }
    };
    let _git = lock_git(plan)?;
    let landed =
        git::land_task_commit(&plan.worktree, &plan.branch, &task_commit).map_err(|e| {
            CommitError::Failed(format!(
                "cannot land task `{id}`'s commit {task_commit} (branch `{branch}`) on `{}`: {e}",
                plan.branch
            ))
        })?;
    match landed {
        git::Landed::Landed { commit } | git::Landed::Already { commit } => {
            record_commit(plan, id, &commit)?;
            // The work is landed and recorded: a task worktree left now (the removal failed)
            // is removed at the next start.
            let _ = git::retire_task_tree(&plan.task_tree(id), None);
            Ok(commit)
        }
        git::Landed::Conflict { paths } => {
            let refname = format!(
                "refs/orch/attempts/{}/{id}/conflict-{}",
                plan.name,
                Utc::now().timestamp_millis()
            );
            // Pending first: a supervisor killed before the removal below finds a task worktree
            // of a pending task, which it saves and removes (never a "done" task without its
            // work).
            let opts = TransitionOptions {
                force: true,
                note: Some(format!(
                    "its commit conflicts with `{}` in {}",
                    plan.branch,
                    quoted(&paths)
                )),
                ..TransitionOptions::default()
            };
            let _ = plan.update(|doc| status::apply(doc, id, Transition::Reset, &opts, Utc::now()));
            let saved = git::retire_task_tree(
                &plan.task_tree(id),
                Some((&refname, &format!("{message} (conflicted; saved by orch)"))),
            )
            .ok()
            .flatten();
            Err(CommitError::Conflict { paths, saved })
        }
    }
}

/// Records `oid` as task `id`'s commit, marking the task completed.
fn record_commit(plan: &PlanCtx, id: &str, oid: &str) -> Result<(), CommitError> {
    let recorded = oid.to_string();
    plan.update(move |doc| {
        let done = doc
            .entry(id)
            .is_some_and(|e| e.status == TaskStatus::Completed);
        if done {
            if let Some(e) = doc.entry_mut(id) {
                e.commit = Some(recorded);
            }
            doc.last_updated_at = Some(status::timestamp(Utc::now()));
            Ok(())
        } else {
            let opts = TransitionOptions {
                force: true,
                commit: Some(recorded),
                ..TransitionOptions::default()
            };
            status::apply(doc, id, Transition::Done, &opts, Utc::now()).map(|_| ())
        }
    })
    .map_err(|e| CommitError::Failed(format!("committed {oid} but cannot record it: {e}")))
}

/// Records a failed attempt; saves what it left in the worktree (one agent per worktree only:
/// with `parallel` > 1 the others' work is in the same tree) and resets the tree.
fn fail(plan: &PlanCtx, id: &str, attempt: u32, error: &str, record: bool) -> Outcome {
    let saved = save_leftovers(plan, id, attempt, "failed");
    if record {
        let opts = TransitionOptions {
            force: true,
            error: Some(error.to_string()),
            ..TransitionOptions::default()
        };
        let _ = plan.update(|doc| status::apply(doc, id, Transition::Fail, &opts, Utc::now()));
    }
    Outcome::Failed {
        error: error.to_string(),
        saved,
    }
}

fn interrupted(plan: &PlanCtx, id: &str, attempt: u32, ending: &Ending) -> Outcome {
    save_leftovers(plan, id, attempt, "interrupted");
    let note = match ending {
        Ending::Stopped => "stopped by orch; it will run again on the next `orch up`",
        _ => "its agent vanished without reporting; it runs again",
    };
    let opts = TransitionOptions {
        force: true,
        note: Some(note.to_string()),
        ..TransitionOptions::default()
    };
    let _ = plan.update(|doc| status::apply(doc, id, Transition::Reset, &opts, Utc::now()));
    Outcome::Interrupted
}

/// Saves the worktree's uncommitted changes under `refs/orch/attempts/<plan>/<id>/<n>` and
/// cleans the tree, so the next attempt starts from the last commit and nothing is lost.
///
/// A task that ran in a task worktree: what it left there is saved the same way and the task
/// worktree and branch are removed (the next attempt gets a fresh one).
fn save_leftovers(plan: &PlanCtx, id: &str, attempt: u32, why: &str) -> Option<String> {
    let refname = format!("refs/orch/attempts/{}/{id}/{attempt}", plan.name);
    let message = format!(
        "{} {id}: {why} attempt {attempt} (saved by orch)",
        plan.name
    );
    if plan.task_worktree(id).is_some() {
        return git::retire_task_tree(&plan.task_tree(id), Some((&refname, &message)))
            .ok()
            .flatten();
    }
    if plan.parallel > 1 {
        return None;
    }
    let _git = plan.git_lock.lock().ok()?;
    match git::save_and_reset(&plan.worktree, &refname, &message) {
        Ok(Some(_)) => Some(refname),
        _ => None,
    }
}

/// A plan-mode agent ended: commit what it finished, put its unfinished started tasks back.
fn settle_plan_agent(plan: &PlanCtx, attempt: u32, ending: &Ending) -> Outcome {
    let doc = match plan.view() {
        Ok(doc) => doc,
        Err(e) => {
            return Outcome::Failed {
                error: format!("cannot read the status file: {e}"),
                saved: None,
            };
        }
    };
    for t in &plan.plan.tasks {
        if plan.needs_commit(&doc, &t.id)
            && let Err(error) = commit_task(plan, &t.id, &t.description, true, Changes::Take)
        {
            return Outcome::Failed {
                error: error.to_string(),
                saved: None,
            };
        }
    }
    let unfinished: Vec<&str> = doc
        .entries()
        .filter(|e| !e.status.is_finished())
        .map(|e| e.id.as_str())
        .collect();
    let running: Vec<String> = doc
        .entries()
        .filter(|e| e.status == TaskStatus::InProgress)
        .map(|e| e.id.clone())
        .collect();
    if !running.is_empty() {
        let opts = TransitionOptions {
            force: true,
            ..TransitionOptions::default()
        };
        let _ = plan.update(|doc: &mut StatusDoc| {
            for id in &running {
                status::apply(doc, id, Transition::Reset, &opts, Utc::now())?;
            }
            Ok(())
        });
    }
    if unfinished.is_empty() {
        return Outcome::Done { commit: None };
    }
    match ending {
        Ending::Stopped | Ending::Exited(None) => Outcome::Interrupted,
        _ => {
            let saved = save_leftovers(plan, "plan", attempt, "failed");
            Outcome::Failed {
                error: format!(
                    "the plan agent ended ({}) with {} task(s) unfinished",
                    describe_ending(ending),
                    unfinished.len()
                ),
                saved,
            }
        }
    }
}
