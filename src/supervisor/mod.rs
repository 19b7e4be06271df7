//! `orch up`: the only asynchronous part of orch. One dispatcher owns the run's state and reacts
//! to agent exits, status-file changes, timers and signals.

pub mod event;
pub mod progress;

pub use event::{Event, PlanOutcome, RunSummary, Stamped};
pub use progress::{PlanInfo, Progress, ProgressMode};
