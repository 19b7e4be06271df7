//! One thin file per subcommand. Each returns its exit code or a [`CliError`](crate::error::CliError).

pub(crate) mod check;
pub(crate) mod clean;
pub(crate) mod conflicts;
pub(crate) mod control;
pub(crate) mod demo;
pub(crate) mod forecasts;
pub(crate) mod graph;
pub(crate) mod history;
pub(crate) mod init;
pub(crate) mod integrate;
pub(crate) mod logs;
pub(crate) mod merge;
pub(crate) mod next;
pub(crate) mod output;
pub(crate) mod pr;
pub(crate) mod resolve;
pub(crate) mod sandbox_exec;
pub(crate) mod setup_exec;
pub(crate) mod simulate;
pub(crate) mod status;
pub(crate) mod sync;
pub(crate) mod task;
mod task_report;
pub(crate) mod top;
pub(crate) mod up;

pub(crate) use crate::workspace::Selection;
