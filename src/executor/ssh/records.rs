//! orch's own records of a remote attempt on the lead, shared by its driver ([`super::attempt`]),
//! the choice of a host ([`super::slots`]) and the pruning of snapshot refs ([`super::refs`]):
//! where the driver records the host the attempt runs on, and the ref of the lead's repository
//! that holds the attempt's snapshot.

use std::path::{Path, PathBuf};

/// Where the driver of `plan`'s `unit` attempt `attempt` records the host it runs on (orch's
/// own record, read by `orch status`).
pub(crate) fn host_record(state_dir: &Path, plan: &str, unit: &str, attempt: u32) -> PathBuf {
    crate::state_layout::remote_of(state_dir, plan).join(format!("{unit}-{attempt}.host"))
}

/// The host recorded for an attempt, if any (a short name orch wrote).
pub(crate) fn recorded_host(
    state_dir: &Path,
    plan: &str,
    unit: &str,
    attempt: u32,
) -> Option<String> {
    host_at(&host_record(state_dir, plan, unit, attempt))
}

/// The host recorded at `record` ([`host_record`]), if any.
pub(crate) fn host_at(record: &Path) -> Option<String> {
    let bytes = crate::untrusted::read::optional(record, crate::untrusted::read::REPORT).ok()??;
    let s = String::from_utf8_lossy(&bytes).trim().to_string();
    (!s.is_empty() && s.len() <= 64).then_some(s)
}

/// The ref of the lead's repository that holds the snapshot of an attempt.
pub(crate) fn local_ref(plan: &str, unit: &str, attempt: u32) -> String {
    format!("refs/orch/remote/{plan}/{unit}/{attempt}")
}
