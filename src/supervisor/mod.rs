//! `orch up`: the only asynchronous part of orch. A synchronous [core](core) owns the run's
//! state and decides; the [effect runner](effects) carries out its actions and feeds it with
//! agent exits, status-file changes, timers and signals. See docs/ARCHITECTURE.md.

pub mod attempt;
pub mod best_of;
pub mod check;
pub mod client_state;
pub mod context;
pub mod core;
pub mod effects;
pub mod event;
pub mod event_log;
pub mod launch;
pub mod lock;
pub mod merge_train;
pub mod prepare;
pub mod progress;
pub mod recover;
pub mod replan;
pub mod reports;
pub mod resolver;
mod resync;
pub mod round;
pub mod sandbox;
pub mod settle;
pub mod start;
pub mod state;
pub mod watch;

pub use effects::run;
pub use event::{Event, PlanOutcome, PlanResult, RunSummary, Stamped};
pub use lock::{LockError, SupervisorLock};
pub use progress::{PlanInfo, Progress, ProgressMode};
