//! The messages the effects' workers send back to the loop: an input for the core (with the
//! plan whose status file to read first), and a task worktree made off the loop. Below the loop
//! and every worker, so that the workers name the messages, not the loop.

use tokio::sync::mpsc;

use super::core::Input;
use super::state::RunId;

/// A task worktree made off the loop for attempt `attempt` of `unit` (its launch goes on with
/// it: `Effects::tree_ready`, in `launch.rs`), or why it could not be made.
pub(crate) struct TreeReady {
    pub(crate) run: RunId,
    pub(crate) unit: super::state::Unit,
    pub(crate) attempt: u32,
    pub(crate) tree: Result<crate::git::PlanTree, String>,
}

/// An input for the core, with the plan whose status file to read before it (the settling of
/// an attempt, a commit: the core decides on the record as it is now).
pub(crate) struct Msg {
    pub(crate) reload: Option<usize>,
    pub(crate) input: Input,
}

pub(crate) type Tx = mpsc::UnboundedSender<Msg>;
