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
pub(crate) mod report;
mod states;
mod store;
mod summary;
mod transition;

#[cfg(test)]
pub(crate) mod test_support;

pub(crate) use control_keys::{PAUSED_KEY, STOPPED, STOPPED_KEY, is_paused};
pub(crate) use error::StatusError;
pub use model::*;
pub(crate) use orch_fields::{OrchMerge, OrchPlanAgent};
pub use reconcile::reconcile;
pub(crate) use reconcile::with_plan;
pub(crate) use states::StatusStates;
pub use states::load_states;
pub use store::load;
pub use store::update;
pub(crate) use store::{
    FileStamp, Known, STATUS_FILE_NAME, apply_if_current, read_file, rebuild,
    update_entry_if_current, update_with_digest, view, view_shared,
};
#[cfg(test)]
pub(crate) use summary::counts_all;
pub use summary::refresh_derived;
pub(crate) use summary::{checking, shown_counts};
pub use transition::Transition;
pub use transition::TransitionOptions;
pub use transition::apply;
pub(crate) use transition::{RunInfo, TransitionOutcome, answer, record_agent, record_launch};
