//! `orch up`: the only asynchronous part of orch. One dispatcher owns the run's state and reacts
//! to agent exits, status-file changes, timers and signals.

pub mod attempt;
pub mod context;
pub mod event;
pub mod lock;
pub mod prepare;
pub mod progress;
pub mod run;
pub mod watch;

pub use event::{Event, PlanOutcome, RunSummary, Stamped};
pub use lock::{LockError, SupervisorLock};
pub use progress::{PlanInfo, Progress, ProgressMode};
pub use run::run;
