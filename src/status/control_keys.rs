//! The keys of run control in a status file (`orch pause|resume|retry|stop`, written by
//! `crate::control`) and their readers, for the supervisor and the reading commands.

use super::StatusDoc;

/// The top-level status-file key of a plan paused by a person.
pub(crate) const PAUSED_KEY: &str = "orchPlanPaused";
/// The task-entry key of a task stopped by a person.
pub(crate) const STOPPED_KEY: &str = "orchStopped";
/// The cause recorded for a stopped task.
pub(crate) const STOPPED: &str = "stopped";

/// Whether a plan's status document says it is paused.
pub(crate) fn is_paused(doc: &StatusDoc) -> bool {
    doc.extra.contains_key(PAUSED_KEY)
}
