//! What orch's own records (a plan's status file) say about a plan, for `orch clean`: whether
//! `orch merge` landed it, which tip it landed, which tasks are not done.

use std::path::Path;

use crate::status;

/// Whether the status file says `orch merge` merged the plan (`orchMerge.state == "merged"`);
/// an unreadable file counts as no.
pub(super) fn status_says_merged(status_path: &Path) -> bool {
    status::load(status_path).ok().flatten().is_some_and(|doc| {
        doc.orch_merge
            .as_ref()
            .is_some_and(status::OrchMerge::is_merged)
    })
}

/// The branch tip the status file says `orch merge` landed, when it says merged.
pub(super) fn landed_tip(status_path: &Path) -> Option<String> {
    status::load(status_path)
        .ok()
        .flatten()
        .and_then(|doc| doc.orch_merge)
        .filter(status::OrchMerge::is_merged)
        .and_then(|m| m.branch_tip)
}

/// The tasks the status file says are not done (pending, running, failed, waiting for an
/// answer), by id; none when it cannot be read.
pub(super) fn unfinished_tasks(status_path: &Path) -> Vec<String> {
    status::load(status_path)
        .ok()
        .flatten()
        .map(|doc| {
            doc.tasks
                .iter()
                .filter(|t| {
                    !matches!(
                        t.status,
                        status::TaskStatus::Completed | status::TaskStatus::Skipped
                    )
                })
                .map(|t| t.id.clone())
                .collect()
        })
        .unwrap_or_default()
}
