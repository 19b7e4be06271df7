//! The task state machine: start, done, fail, skip, reset.

use std::path::PathBuf;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;

use super::error::StatusError;
use super::model::{OrchRun, StatusDoc, TaskEntry, TaskStatus, parse_timestamp, timestamp};
use super::summary::refresh_derived;

/// A requested change of a task's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    /// pending|failed → in_progress.
    Start,
    /// → completed.
    Done,
    /// → failed.
    Fail,
    /// → skipped.
    Skip,
    /// → pending.
    Reset,
    /// in_progress → needs_input, with the agent's question (`orch task ask`).
    Ask,
}

impl crate::manifest::Spelled for Transition {}

/// The process that runs a task, recorded in `orchRun` on start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunInfo {
    pub(crate) pid: u32,
    /// Field 22 of `/proc/<pid>/stat`, 0 when unknown (`crate::process::process_start_time`).
    pub(crate) process_start_time: u64,
    pub(crate) host: Option<String>,
    /// `slurm` for a batch job (then `pid` is 0).
    pub(crate) executor: Option<String>,
    /// The batch job's id, once submitted.
    pub(crate) job_id: Option<String>,
}

/// What goes with a transition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransitionOptions {
    /// Allow transitions out of completed/skipped/in_progress that are refused otherwise.
    pub force: bool,
    /// `notes` (done).
    pub note: Option<String>,
    /// `error` / `lastError` (fail).
    pub error: Option<String>,
    /// `skipReason` (skip).
    pub reason: Option<String>,
    /// `orchRun` (start).
    pub run: Option<RunInfo>,
    /// `commit` (done).
    pub commit: Option<String>,
    /// `orchQuestion` (ask).
    pub question: Option<String>,
}

/// The most of a note, an error or a skip reason a task's entry keeps, in bytes (a question is
/// refused past the same bound: [`crate::supervisor::ask::MAX_TEXT`]). Each may come from an
/// agent, and every status reader (`orch status`, `orch serve`'s page, a prompt) holds them all.
pub(crate) const TEXT_MAX: usize = 8 * 1024;

/// `text` cut to [`TEXT_MAX`] bytes at a character boundary, saying how much was cut.
fn bounded(text: &Option<String>) -> Option<String> {
    let t = text.as_ref()?;
    if t.len() <= TEXT_MAX {
        return Some(t.clone());
    }
    let mut end = TEXT_MAX;
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    Some(format!(
        "{}… ({} bytes more cut by orch)",
        &t[..end],
        t.len() - end
    ))
}

impl TransitionOptions {
    /// These options with the note, error and reason at most [`TEXT_MAX`] bytes each.
    fn bounded(&self) -> Self {
        Self {
            note: bounded(&self.note),
            error: bounded(&self.error),
            reason: bounded(&self.reason),
            ..self.clone()
        }
    }
}

/// What [`apply`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum TransitionOutcome {
    /// The entry changed (`from` may equal `to` when only its details were updated).
    Changed {
        id: String,
        from: TaskStatus,
        to: TaskStatus,
    },
    /// Nothing to do: the task already was where the transition leads.
    Unchanged { id: String, status: TaskStatus },
}

impl TransitionOutcome {
    #[cfg(test)]
    pub(crate) fn is_changed(&self) -> bool {
        matches!(self, Self::Changed { .. })
    }
}

/// Refused: task `e` is `what`.
fn refuse<T>(e: &TaskEntry, what: &str) -> Result<T, StatusError> {
    Err(refused(e, format!("task `{}` is {what}", e.id)))
}

fn refused(e: &TaskEntry, message: String) -> StatusError {
    StatusError::Refused {
        id: e.id.clone(),
        status: e.status,
        message,
    }
}

fn in_progress_message(e: &TaskEntry) -> String {
    match &e.orch_run {
        Some(run) if run.job_id.is_some() => format!(
            "task `{}` is already in progress ({} job {} since {}); use --force to start it again",
            e.id,
            run.executor.as_deref().unwrap_or("batch"),
            run.job_id.as_deref().unwrap_or_default(),
            run.started_at
        ),
        Some(run) => format!(
            "task `{}` is already in progress (pid {} since {}); use --force to start it again",
            e.id, run.pid, run.started_at
        ),
        None => match &e.started_at {
            Some(since) => format!(
                "task `{}` is already in progress (since {since}); use --force to start it again",
                e.id
            ),
            None => format!(
                "task `{}` is already in progress; use --force to start it again",
                e.id
            ),
        },
    }
}

fn millis_between(start: Option<&str>, end: DateTime<Utc>) -> Option<u64> {
    let start = parse_timestamp(start?)?;
    u64::try_from((end - start).num_milliseconds()).ok()
}

/// The supervisor's record of an attempt it launched at `launched` (the agent's process is
/// `run`): the task in progress, one attempt more. The agent may have written first, as soon as
/// it started: an outcome it reported (`task done` or `fail`, dated after the launch) stands,
/// with the attempt counted and started at `launched`; an attempt it counted itself (`task
/// start`) is not counted twice; a task skipped, or done before the launch, is left as it is.
pub(crate) fn record_launch(
    doc: &mut StatusDoc,
    id: &str,
    run: &RunInfo,
    launched: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StatusError> {
    let Some(e) = doc.entry_mut(id) else {
        return Ok(());
    };
    let launched = launched.trunc_subsecs(3);
    // After the launch's millisecond: the agent needs longer than that to start and write,
    // and what the supervisor recorded before the launch (a failure retried without backoff)
    // is at most in the same millisecond.
    let since = |t: &Option<String>| {
        t.as_deref()
            .and_then(parse_timestamp)
            .is_some_and(|t| t > launched)
    };
    let counted_by_agent = since(&e.started_at);
    // Done or failed since the launch: the agent's outcome. A failure from before it is an
    // earlier attempt's, which this one retries.
    let reported =
        matches!(e.status, TaskStatus::Completed | TaskStatus::Failed) && since(&e.completed_at);
    // Finished otherwise (skipped, or done before the launch): left as it is.
    if e.status.is_finished() && !reported {
        return Ok(());
    }
    if reported {
        if !counted_by_agent {
            e.attempts += 1;
            let stamp = timestamp(launched);
            if let Some(done) = e.completed_at.as_deref().and_then(parse_timestamp) {
                e.duration = millis_between(Some(&stamp), done);
            }
            e.started_at = Some(stamp);
        }
        return Ok(());
    }
    let attempts = e.attempts;
    let opts = TransitionOptions {
        force: true,
        run: Some(run.clone()),
        ..TransitionOptions::default()
    };
    apply(doc, id, Transition::Start, &opts, now)?;
    if counted_by_agent && let Some(e) = doc.entry_mut(id) {
        e.attempts = attempts;
    }
    Ok(())
}

/// Records agent `agent` as the one task `id`'s attempt runs (`orchAgent`).
pub(crate) fn record_agent(doc: &mut StatusDoc, id: &str, agent: &str) {
    if let Some(e) = doc.entry_mut(id) {
        e.orch_agent = Some(agent.to_string());
    }
}

/// Applies `t` to the task or verification step `id`.
///
/// Every change updates `lastUpdatedAt`, `summary` and `currentPhase`; a refused transition or an
/// unchanged outcome leaves the document as it was.
pub fn apply(
    doc: &mut StatusDoc,
    id: &str,
    t: Transition,
    opts: &TransitionOptions,
    now: DateTime<Utc>,
) -> Result<TransitionOutcome, StatusError> {
    let opts = &opts.bounded();
    let plan_path = PathBuf::from(&doc.plan_path);
    let e = doc.entry_mut(id).ok_or_else(|| StatusError::UnknownTask {
        id: id.to_string(),
        path: plan_path,
    })?;
    let from = e.status;
    let stamp = timestamp(now);
    let unchanged = |e: &TaskEntry| TransitionOutcome::Unchanged {
        id: e.id.clone(),
        status: e.status,
    };

    let to = match t {
        Transition::Start => {
            match from {
                TaskStatus::Pending | TaskStatus::Failed => {}
                TaskStatus::InProgress if !opts.force => {
                    return Err(refused(e, in_progress_message(e)));
                }
                TaskStatus::Completed | TaskStatus::Skipped if !opts.force => {
                    return refuse(e, &format!("already {from}; use --force to start it again"));
                }
                TaskStatus::NeedsInput if !opts.force => {
                    return refuse(
                        e,
                        "waiting for an answer to its question; `orch answer` it, or use --force",
                    );
                }
                _ => {}
            }
            e.orch_question = None;
            if from == TaskStatus::Failed {
                e.retry_count += 1;
            }
            e.attempts += 1;
            e.started_at = Some(stamp.clone());
            e.completed_at = None;
            e.duration = None;
            e.error = None;
            e.skip_reason = None;
            e.orch_run = opts.run.as_ref().map(|r| OrchRun {
                pid: r.pid,
                process_start_time: r.process_start_time,
                started_at: stamp.clone(),
                host: r.host.clone(),
                executor: r.executor.clone(),
                job_id: r.job_id.clone(),
            });
            TaskStatus::InProgress
        }
        Transition::Done => {
            match from {
                TaskStatus::Completed => return Ok(unchanged(e)),
                TaskStatus::Skipped if !opts.force => {
                    return refuse(e, "skipped; use --force to mark it completed");
                }
                TaskStatus::NeedsInput if !opts.force => {
                    return refuse(
                        e,
                        "waiting for an answer to its question; use --force to mark it completed",
                    );
                }
                _ => {}
            }
            e.orch_question = None;
            e.completed_at = Some(stamp.clone());
            e.duration = millis_between(e.started_at.as_deref(), now);
            e.error = None;
            e.skip_reason = None;
            e.orch_run = None;
            if let Some(commit) = &opts.commit {
                e.commit = Some(commit.clone());
            }
            TaskStatus::Completed
        }
        Transition::Fail => {
            match from {
                TaskStatus::Failed => {
                    let new_error = opts.error.as_ref().filter(|m| e.error.as_ref() != Some(*m));
                    let Some(msg) = new_error.cloned() else {
                        return Ok(unchanged(e));
                    };
                    e.error = Some(msg.clone());
                    e.last_error = Some(msg);
                    return Ok(finish(doc, id, from, from, &stamp));
                }
                TaskStatus::Completed | TaskStatus::Skipped if !opts.force => {
                    return refuse(e, &format!("already {from}; use --force to mark it failed"));
                }
                _ => {}
            }
            e.orch_question = None;
            e.error = opts.error.clone();
            if opts.error.is_some() {
                e.last_error = opts.error.clone();
            }
            e.completed_at = Some(stamp.clone());
            e.duration = millis_between(e.started_at.as_deref(), now);
            e.skip_reason = None;
            e.orch_run = None;
            TaskStatus::Failed
        }
        Transition::Skip => {
            match from {
                TaskStatus::Skipped => {
                    let new_reason = opts
                        .reason
                        .as_ref()
                        .filter(|r| e.skip_reason.as_ref() != Some(*r));
                    let Some(reason) = new_reason.cloned() else {
                        return Ok(unchanged(e));
                    };
                    e.skip_reason = Some(reason);
                    return Ok(finish(doc, id, from, from, &stamp));
                }
                TaskStatus::Completed if !opts.force => {
                    return refuse(e, "already completed; use --force to skip it");
                }
                _ => {}
            }
            e.skip_reason = opts.reason.clone();
            e.orch_run = None;
            e.error = None;
            e.orch_question = None;
            TaskStatus::Skipped
        }
        Transition::Reset => {
            match from {
                TaskStatus::Pending => return Ok(unchanged(e)),
                TaskStatus::Completed | TaskStatus::Skipped if !opts.force => {
                    return refuse(e, &format!("{from}; use --force to reset it"));
                }
                _ => {}
            }
            e.started_at = None;
            e.completed_at = None;
            e.duration = None;
            e.error = None;
            e.skip_reason = None;
            e.orch_run = None;
            e.commit = None;
            e.orch_question = None;
            TaskStatus::Pending
        }
        Transition::Ask => {
            match from {
                TaskStatus::Pending | TaskStatus::InProgress => {}
                TaskStatus::NeedsInput => {
                    return refuse(e, "already waiting for an answer to its question");
                }
                _ => return refuse(e, &format!("{from}; only a running task asks")),
            }
            let question = opts.question.clone().unwrap_or_default();
            if question.trim().is_empty() {
                return refuse(e, "asked nothing: the question is empty");
            }
            e.orch_question = Some(question);
            e.orch_run = None;
            e.completed_at = None;
            TaskStatus::NeedsInput
        }
    };
    if t != Transition::Reset
        && let Some(note) = &opts.note
    {
        e.notes = Some(note.clone());
    }
    e.status = to;
    Ok(finish(doc, id, from, to, &stamp))
}

/// A person's answer `text` to the question task `id` asked: the question and the answer kept
/// in `orchAnswers`, the task pending again (its next attempt gets both). A task that is not
/// waiting for an answer is refused.
pub(crate) fn answer(
    doc: &mut StatusDoc,
    id: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<TransitionOutcome, StatusError> {
    let plan_path = PathBuf::from(&doc.plan_path);
    let e = doc.entry_mut(id).ok_or_else(|| StatusError::UnknownTask {
        id: id.to_string(),
        path: plan_path,
    })?;
    let from = e.status;
    if from != TaskStatus::NeedsInput {
        return refuse(
            e,
            &format!("{from}; only a task that asked a question is answered"),
        );
    }
    let stamp = timestamp(now);
    let question = e.orch_question.take().unwrap_or_default();
    e.orch_answers.push(super::model::OrchAnswer {
        question,
        answer: text.to_string(),
        at: stamp.clone(),
    });
    e.status = TaskStatus::Pending;
    Ok(finish(doc, id, from, TaskStatus::Pending, &stamp))
}

fn finish(
    doc: &mut StatusDoc,
    id: &str,
    from: TaskStatus,
    to: TaskStatus,
    stamp: &str,
) -> TransitionOutcome {
    doc.last_updated_at = Some(stamp.to_string());
    refresh_derived(doc);
    TransitionOutcome::Changed {
        id: id.to_string(),
        from,
        to,
    }
}

#[cfg(test)]
mod tests;
