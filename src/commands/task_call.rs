//! What `orch task` is asked, and what it prints of a task's outcome: shared by the call that
//! writes the status file ([`super::task`]) and the one handed to a running `orch up`
//! ([`super::task_report`]).

use std::path::Path;

use serde_json::json;

use super::output::{print_json, println_safe};
use crate::status::{Transition, TransitionOptions, TransitionOutcome};

/// What `orch task start|done|fail|skip|reset ID` is asked.
pub(crate) struct TaskArgs {
    pub(crate) transition: Transition,
    pub(crate) id: String,
    pub(crate) opts: TransitionOptions,
    pub(crate) json: bool,
}

/// What `orch task` prints of `outcome`, the change to task `id` of `plan` (its status file at
/// `path`): a line, or JSON with `json_out`.
pub(super) fn print_outcome(plan: &str, path: &Path, outcome: &TransitionOutcome, json_out: bool) {
    match outcome {
        _ if json_out => {
            print_json(&json!({ "plan": plan, "status_file": path, "result": outcome }));
        }
        TransitionOutcome::Changed { id, from, to } => {
            println_safe(&format!("{plan}: task `{id}` {from} → {to}"));
        }
        TransitionOutcome::Unchanged { id, status } => {
            println_safe(&format!("{plan}: task `{id}` is already {status}"));
        }
    }
}
