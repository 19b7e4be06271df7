//! `orch up`: the only asynchronous part of orch. A synchronous [core](core) owns the run's
//! state and decides; the [effect runner](effects) carries out its actions and feeds it with
//! agent exits, status-file changes, timers and signals. See docs/ARCHITECTURE.md.

pub(crate) mod ask;
pub(crate) mod attempt;
pub(crate) mod attempt_logs;
pub(crate) mod best_of;
pub(crate) mod check;
pub(crate) mod client_state;
pub(crate) mod context;
pub(crate) mod core;
pub(crate) mod effects;
pub(crate) mod event_log;
pub(crate) mod hosts;
pub(crate) mod launch;
pub(crate) mod lock;
pub(crate) mod merge_train;
pub(crate) mod msg;
pub(crate) mod network;
pub(crate) mod prepare;
pub(crate) mod progress;
pub(crate) mod recover;
pub(crate) mod replan;
pub(crate) mod reports;
pub(crate) mod resolver;
pub(crate) mod resume;
mod resync;
pub(crate) mod runner;
pub(crate) mod sandbox;
pub(crate) mod settle;
pub(crate) mod setup;
pub(crate) mod speckit_ticks;
pub(crate) mod start;
pub(crate) mod upstream_repos;
pub(crate) mod watch;

// The pure core's state, events and best-of-N rounds live in `core/`, named from here as well.
pub(crate) use self::core::{event, round, state};
pub(crate) use effects::run;
pub(crate) use event::{Event, PlanResult, RunSummary, Stamped};
pub(crate) use lock::{LockError, SupervisorLock};
pub(crate) use progress::{PlanInfo, Progress, ProgressMode};
