//! Scheduling semantics: the effective dependency graph of plans, the ready set, waves and the
//! critical path. See docs/src/scheduling.md for the rules in prose.

mod build;
mod frontier;
mod schedule;

pub(crate) use build::NodeKind;
#[cfg(test)]
use build::Succs;
pub use build::{CrossDep, CrossTarget, Graph};
pub use frontier::Frontier;
pub use schedule::{NodeState, readiness, waves};
pub(crate) use schedule::{
    Readiness, Rules, Slots, Waiting, Waves, node_weights, pick, readiness_with, remaining_path,
};

#[cfg(test)]
mod tests;
