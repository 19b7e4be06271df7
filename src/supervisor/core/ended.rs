//! What an attempt is and how it ended, in the core's terms: the unit it works on
//! ([`Unit`], its [`RunId`]), a stop asked of it, its ending ([`Ending`]), its check's and its
//! settling's outcome ([`Outcome`], [`CommitError`], [`Settlement`]). The plain types the run's
//! state ([`super::state`]) and best of N's rounds ([`super::members`]) are made of.

use std::time::Duration;

use crate::manifest::format_duration;

/// One attempt of a unit, from its launch to its settling.
pub(crate) type RunId = u64;

/// What an agent works on: one task (task mode) or a whole plan (plan mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Unit {
    Task { plan: usize, task: usize },
    PlanAgent { plan: usize },
}

impl Unit {
    pub(crate) fn plan(self) -> usize {
        match self {
            Unit::Task { plan, .. } | Unit::PlanAgent { plan } => plan,
        }
    }

    pub(crate) fn task(self) -> Option<usize> {
        match self {
            Unit::Task { task, .. } => Some(task),
            Unit::PlanAgent { .. } => None,
        }
    }
}

/// How far a stop request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Keep going.
    No,
    /// Launch nothing more (first Ctrl-C): running agents finish, batch jobs still waiting in
    /// the queue are cancelled (nothing of them ran yet).
    Drain,
    /// Stop now (second Ctrl-C, SIGTERM).
    Now,
}

/// Why the core stops one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopWhy {
    /// It ran past its budget (the task's `timeout`).
    TimedOut(Duration),
    /// No output and no status change for `stuck_after`.
    Stuck(Duration),
    /// A person asked for it (`orch stop`).
    User,
}

/// What ended an attempt's process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The agent exited by itself; `None` when the code is unknown (an adopted process).
    Exited(Option<i32>),
    TimedOut(Duration),
    Stuck(Duration),
    Stopped,
    /// A batch job ended otherwise than by the agent's exit (its time limit, its node, …).
    Job {
        id: String,
        end: crate::executor::JobEnd,
    },
}

/// The outcome of an attempt once settled (committed, saved, recorded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
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
    /// Its agent asked a question: the task waits for an answer (not failed, no retry used).
    Asked,
    /// Done in its task worktree, but its commit conflicts with the plan branch's tip in `paths`:
    /// nothing landed, the commit is saved under `saved`, the task is pending again.
    Conflict {
        paths: Vec<String>,
        saved: Option<String>,
    },
}

/// How a task's check ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CheckOutcome {
    Passed,
    /// Failed (or could not run, or timed out): the cause, with the end of its output.
    Failed(String),
    /// Stopped by orch (second Ctrl-C, SIGTERM).
    Stopped,
    /// Its place failed under it, as orch's own records say (the plan's container removed or
    /// stopped from outside, a service that never got ready): not the work's failure.
    Lost(String),
}

/// Why a task's work could not be committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CommitError {
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
pub(crate) fn quoted(paths: &[String]) -> String {
    crate::diagnostic::path_list(paths, usize::MAX)
}

/// `task `a``, `tasks `a`, `b``: `noun` for one or more, and the names, for a message.
pub(crate) fn named(noun: &str, names: &[String]) -> String {
    let s = if names.len() == 1 { "" } else { "s" };
    format!("{noun}{s} {}", quoted(names))
}

/// What a task's commit takes from the worktree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Changes {
    /// Everything in the worktree: the task's agent ran there and has ended.
    Take,
    /// Nothing (an empty commit): the task was reported from outside while other agents of the
    /// plan are still writing in the worktree; their changes go with their own tasks.
    Leave,
}

/// How the core settles an attempt whose agent ended, from what the task's record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Settlement {
    /// Commit the work and record the task completed.
    Commit,
    /// Save what the attempt left, and record the failure when `record` (the agent did not).
    Fail { error: String, record: bool },
    /// Save what the attempt left and put the task back to pending with `note`.
    Interrupt { note: String },
    /// Its agent asked a question: save what the attempt left; the task's record (needs input,
    /// or pending again when the answer came first) stays as it is.
    AwaitInput,
    /// A plan agent ended: commit the tasks it finished that are not committed yet (`commit`,
    /// [`TaskFacts::needs_commit`]), put the ones it left started back to pending (`reset`),
    /// then end as `end` says (a failed commit fails the attempt whatever `end` says).
    PlanAgent {
        commit: Vec<usize>,
        reset: Vec<usize>,
        end: PlanAgentEnd,
    },
    /// A verification step was skipped: record that on the plan branch (an empty commit that
    /// says so) and leave the task skipped.
    SkipVerify,
    /// Best of N: the picked attempt of a round: commit its worktree (the message says `why`)
    /// and land it, as [`Settlement::Commit`] does.
    Pick { why: String },
    /// Best of N: an attempt that was not picked: save its work under
    /// `refs/orch/attempts/<plan>/<task>/<attempt>` with `cause`; the task's record is the
    /// round's (not changed here).
    Lose { cause: String },
}

/// Why a plan's preparation (or its upstream re-sync at a task boundary) left it unready: the
/// facts the core blocks the plan on ([`super::Input::Prepared`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Unprepared {
    /// An upstream plan's work conflicts with the plan's branch: which, where, and how a person
    /// resolves it.
    Conflict(String),
    /// A step could not be carried out: the worktree, a merge, the setup command (failed,
    /// timed out, stopped).
    Failed(String),
}

impl From<String> for Unprepared {
    fn from(cause: String) -> Self {
        Unprepared::Failed(cause)
    }
}

/// How a plan agent's attempt ends, as the core decides from its plan's tasks when the agent
/// exited ([`Settlement::PlanAgent`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PlanAgentEnd {
    /// Every task of the plan is finished.
    Done,
    /// Stopped (or killed by a signal) with tasks unfinished: the plan agent runs again, the
    /// attempt not counted as a failure.
    Interrupted,
    /// It ended by itself with tasks unfinished: a failed attempt with this cause (what it left
    /// in the worktree is saved).
    Failed(String),
}

impl Ending {
    /// The ending in words, for logs and failure causes.
    pub(crate) fn describe(&self) -> String {
        match self {
            Ending::Exited(Some(code)) => format!("exit status {code}"),
            Ending::Exited(None) => "the process is gone".to_string(),
            Ending::TimedOut(t) => format!("timed out after {}", format_duration(*t)),
            Ending::Stuck(t) => format!(
                "stuck: no output and no status change for {}",
                format_duration(*t)
            ),
            Ending::Stopped => "stopped by orch".to_string(),
            Ending::Job { id, end } => format!("job {id}: {}", end.describe()),
        }
    }
}
