//! The recorded states of a workspace's plans: their status files read (without writing) and
//! turned into the scheduling state of every task.

use std::path::Path;

use super::Workspace;
use crate::error::{CliError, CliResult};
use crate::graph::NodeState;
use crate::status::{self, StatusDoc, TaskStatus};

/// Reads (without writing) every plan's status, reconciled with its plan. `status_override`
/// (`ORCH_STATUS_FILE`) replaces the status file of the selected plan only, when one is selected.
pub(crate) fn read_statuses(
    ws: &Workspace,
    status_override: Option<&Path>,
) -> CliResult<Vec<StatusDoc>> {
    ws.plans
        .iter()
        .enumerate()
        .map(|(i, p)| {
            p.read_status_at(status_path(ws, i, status_override))
                .map_err(status_error)
        })
        .collect()
}

/// The status file of plan `i`: `status_override` (`ORCH_STATUS_FILE`) when that plan is the
/// one selected, else the plan's own.
pub(crate) fn status_path<'a>(
    ws: &'a Workspace,
    i: usize,
    status_override: Option<&'a Path>,
) -> &'a Path {
    match status_override {
        Some(p) if ws.selected == [i] => p,
        _ => &ws.plans[i].status_path,
    }
}

/// Reads every plan's recorded states ([`status::load_states`]): what `next` and `status` need,
/// without building full entries. A plan without a status file gets empty states.
pub(crate) fn read_states(
    ws: &Workspace,
    status_override: Option<&Path>,
) -> CliResult<Vec<status::StatusStates>> {
    (0..ws.plans.len())
        .map(|i| {
            status::load_states(status_path(ws, i, status_override))
                .map(Option::unwrap_or_default)
                .map_err(status_error)
        })
        .collect()
}

/// `state(plan, task)` over the given states, for [`crate::graph::readiness`].
pub(crate) fn states_fn<'a>(
    ws: &'a Workspace,
    states: &'a [status::StatusStates],
) -> impl Fn(usize, usize) -> NodeState + 'a {
    let by_plan = node_states(ws, states);
    move |p, t| by_plan[p][t]
}

/// The scheduling state of every task, by plan and task index (what [`states_fn`] answers).
pub(crate) fn node_states(ws: &Workspace, states: &[status::StatusStates]) -> Vec<Vec<NodeState>> {
    // Looked up in plan order, which is the file's (one comparison each), not in the order
    // readiness asks.
    ws.plans
        .iter()
        .zip(states)
        .map(|(p, s)| {
            p.plan
                .tasks
                .iter()
                .map(|t| node_state(s.status(t)))
                .collect()
        })
        .collect()
}

/// Maps a status-module error onto its documented exit code, with its hint.
pub(crate) fn status_error(e: status::StatusError) -> CliError {
    CliError::coded(e)
}

/// The scheduling state of a recorded status.
pub(crate) fn node_state(status: TaskStatus) -> NodeState {
    match status {
        TaskStatus::Pending => NodeState::Pending,
        // Waiting for a person's answer: not ready, not finished (what depends on it waits).
        TaskStatus::InProgress | TaskStatus::NeedsInput => NodeState::InProgress,
        TaskStatus::Completed | TaskStatus::Skipped => NodeState::Done,
        TaskStatus::Failed => NodeState::Failed,
    }
}
