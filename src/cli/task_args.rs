//! `orch task`'s actions: what an agent (or a person) reports of one task.

use super::args::Target;

use clap::{Args, Subcommand};

#[derive(Args, Debug, PartialEq)]
pub(super) struct TaskCommon {
    #[command(flatten)]
    pub(super) target: Target,
    /// The task id as written in the plan (`2.3`, `2.3.1`) or a verification step (`V2`).
    pub(super) id: String,
    /// Allow a transition that is otherwise refused (restart a running task, reopen a
    /// completed one, start a task that is not ready).
    #[arg(long)]
    pub(super) force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Subcommand, Debug, PartialEq)]
pub(super) enum TaskAction {
    /// Mark a task in progress (refused if it is not ready or already running).
    Start(TaskCommon),
    /// Mark a task completed. Example: `orch task done 1.2 --note "done, see src/x.rs"`.
    Done {
        #[command(flatten)]
        common: TaskCommon,
        /// A note kept with the task (`notes` in the status file).
        #[arg(long)]
        note: Option<String>,
    },
    /// Mark a task failed. Example: `orch task fail 1.2 --error "tests fail"`.
    Fail {
        #[command(flatten)]
        common: TaskCommon,
        /// What went wrong (`error` / `lastError` in the status file).
        #[arg(long)]
        error: Option<String>,
    },
    /// Mark a task skipped; dependents may go on. Example: `orch task skip 1.2 --reason "obsolete"`.
    Skip {
        #[command(flatten)]
        common: TaskCommon,
        /// Why (`skipReason` in the status file).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Put a task back to pending (a completed or skipped one needs --force).
    Reset(TaskCommon),
    /// Ask a question a person must answer before the task can go on: the task waits (`needs
    /// input`), its attempt ends without failing (stop after asking), and `orch answer` runs it
    /// again with the answer. Under `orch up` only the task's own agent asks.
    /// Example: `orch task ask 1.2 "PostgreSQL or SQLite?"`.
    Ask {
        #[command(flatten)]
        common: TaskCommon,
        /// The question (at most 8 KiB).
        #[arg(value_name = "QUESTION")]
        question: String,
    },
}
