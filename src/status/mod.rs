//! Status files: one `status.json` per plan, the protocol between `orch` and its agents.
//!
//! The document ([`StatusDoc`]) keeps the earlier system's format (it validates against its
//! `plan-status.schema.json`) and adds orch's own fields beside it. [`store`] reads it without
//! locking, and changes it under an exclusive lock with atomic writes; [`transition`] holds the
//! task state machine; [`reconcile`] brings a recorded document in line with the current plan.

mod control_keys;
mod error;
mod index;
mod model;
mod orch_fields;
mod reconcile;
pub mod report;
mod states;
mod store;
mod summary;
mod transition;

#[cfg(test)]
pub(crate) mod test_support;

pub use control_keys::{PAUSED_KEY, STOPPED, STOPPED_KEY, is_paused};
pub use error::StatusError;
pub use model::*;
pub use orch_fields::{OrchMerge, OrchPlanAgent};
pub use reconcile::{ReconcileReport, reconcile};
pub use states::{StateEntry, StatusStates, load_states};
pub use store::{
    FileStamp, LOCK_SUFFIX, STATUS_FILE_NAME, apply_if_current, load, lock_path, rebuild, update,
    update_entry_if_current, update_if_current, update_with_digest, view, view_bytes,
};
pub use summary::{counts_all, current_phase, refresh_derived, summarize};
pub use transition::{
    RunInfo, Transition, TransitionOptions, TransitionOutcome, apply, record_launch,
};
