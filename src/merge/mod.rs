//! Merging finished plans into the target branch (`orch merge`), synchronously over libgit2.
//!
//! Each step is built in memory on the target's current tip ([`build`]): a conflict writes
//! nothing. A clean result becomes a commit object that no ref points at yet; the verify command
//! runs on it in a throw-away staging worktree ([`verify`]); only then does the target move
//! ([`target`]): the work tree that has it checked out first (safely), then the ref, both under
//! the ref's lock and only if the target still is where the merge was built. If someone else
//! moved it, the step is built again on the new tip ([`step`]). [`order`] gives the order of the
//! steps; [`build::Simulator`] predicts a whole run without changing anything (`--dry-run`).
//!
//! Every merge is git's own, `git merge-tree --write-tree` (see [`crate::git::merge_tree`]).

mod checks;
pub(crate) mod confine;
pub(crate) use checks::{MergeLock, orch_dirs, orch_dirs_in};
pub(crate) mod integrate;
pub(crate) mod interrupt;
pub(crate) mod network;
mod now;
pub(crate) mod order;
mod plan_info;
pub(crate) mod pr;
pub(crate) mod resolve;
mod run;
pub(crate) mod step;
pub(crate) mod sync;
pub(crate) mod together;
mod trusted;
pub(crate) mod verify;

pub use crate::git::is_merged;
pub(crate) use crate::git::{
    MergeError, Predicted, Simulator, checked_out_at, target_contains, untracked_in_the_way,
    work_state,
};
pub use now::PlanMergeOutcome;
pub use now::PlanMergeReport;
pub use now::merge_plan_now;
pub(crate) use now::{MergeResult, ResolveWith, merge_plan_now_with};
pub(crate) use order::{OrderItem, merge_order};
pub(crate) use plan_info::plan_infos;
pub(crate) use plan_info::{PlanInfo, Unfinished, in_merge_order};
pub(crate) use run::{MergeRun, Outcome, Step, short};
pub(crate) use step::{StepOutcome, StepRequest, merge_plan};
pub(crate) use verify::Verify;
