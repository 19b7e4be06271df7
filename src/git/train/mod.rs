//! The merge train's git (libgit2, synchronous): a merge built in memory on the target's tip and
//! written as a commit no ref names ([`build`]); the repository handle the layers above work
//! through, by commit ids ([`MergeRepo`]); the staging worktree where `verify` runs
//! ([`staging`]); the target moved by a compare-and-swap under its lock, its work tree first
//! ([`target`]); what resolution by agent reads and writes, by ids ([`resolve`]); the errors of
//! all of it ([`MergeError`]).
//!
//! `crate::merge` decides (order, verify, retries, resolution); this module only reads and writes
//! the repository.

mod build;
mod error;
pub(crate) mod landing;
mod repo;
mod resolve;
mod staging;
mod target;

pub use build::is_merged;
pub(crate) use build::{Built, Subject};
pub(crate) use build::{Predicted, Simulator, target_contains};
pub(crate) use error::MergeError;
pub(crate) use repo::MergeRepo;
pub(crate) use resolve::WorkFile;
pub(crate) use staging::{Staging, remove_named};
pub(crate) use target::{Moved, move_target};
pub(crate) use target::{checked_out_at, untracked_in_the_way, work_state};
