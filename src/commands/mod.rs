//! One thin file per subcommand. Each returns its exit code or a [`CliError`](crate::error::CliError).

pub mod check;
pub mod clean;
pub mod conflicts;
pub mod control;
pub mod demo;
pub mod forecasts;
pub mod graph;
pub mod history;
pub mod init;
pub mod integrate;
pub mod logs;
pub mod merge;
pub mod next;
pub mod output;
pub mod pr;
pub mod resolve;
pub mod sandbox_exec;
pub mod setup_exec;
pub mod simulate;
pub mod status;
pub mod sync;
pub mod task;
mod task_report;
pub mod top;
pub mod up;

pub use crate::workspace::Selection;
