//! Scheduling semantics: the effective dependency graph of plans, the ready set, waves and the
//! critical path. See the README's "Scheduling" section for the rules in prose.

mod build;
mod schedule;

pub use build::{CrossDep, CrossTarget, CycleError, Graph, Node, NodeKind};
pub use schedule::{NodeState, Readiness, Waiting, Waves, readiness, tail_lengths, waves};

#[cfg(test)]
mod tests;
