//! Scheduling semantics: the effective dependency graph of plans, the ready set, waves and the
//! critical path. See docs/src/scheduling.md for the rules in prose.

mod build;
mod frontier;
mod schedule;

pub use build::{CrossDep, CrossTarget, CycleError, Graph, Node, NodeKind, Succs};
pub use frontier::Frontier;
pub use schedule::{
    DEFAULT_ESTIMATE_S, NodeState, Readiness, Rules, Slots, Waiting, Waves, node_weights, pick,
    readiness, readiness_with, remaining_path, waves,
};

#[cfg(test)]
mod tests;
