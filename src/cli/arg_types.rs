//! The argument types several commands share: a plan or a task a control verb names, the merge
//! strategy, the graph's format, a duration.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::manifest::MergeStrategy;

/// `orch pause|resume PLAN`.
#[derive(Args, Debug, PartialEq)]
pub(super) struct ControlPlan {
    /// The plan's name in the manifest. Example: `auth`.
    pub(super) plan: String,
    /// Print one JSON object: `event` (`plan_paused` / `plan_resumed`), `plan`, `changed`,
    /// `supervisor_pid` (the running `orch up`, or null).
    #[arg(long)]
    pub(super) json: bool,
    /// The manifest to use instead of the `plans.toml` found by walking up from the current
    /// directory. Example: `--manifest ../repo/plans.toml`.
    #[arg(long, short = 'm', value_name = "PATH")]
    pub(super) manifest: Option<PathBuf>,
}

/// `orch retry|stop PLAN ID`.
#[derive(Args, Debug, PartialEq)]
pub(super) struct ControlTask {
    /// The plan's name in the manifest. Example: `auth`.
    pub(super) plan: String,
    /// The task id (`2.3`, or `V2` for a verification step).
    pub(super) id: String,
    /// Print one JSON object: `event` (`task_retried` / `task_stopped`), `plan`, `task`,
    /// `attempt`, `supervisor_pid` (the running `orch up`, or null).
    #[arg(long)]
    pub(super) json: bool,
    /// The manifest to use instead of the `plans.toml` found by walking up from the current
    /// directory. Example: `--manifest ../repo/plans.toml`.
    #[arg(long, short = 'm', value_name = "PATH")]
    pub(super) manifest: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub(super) enum StrategyArg {
    Merge,
    Squash,
    FfOnly,
}

impl From<StrategyArg> for MergeStrategy {
    fn from(s: StrategyArg) -> Self {
        match s {
            StrategyArg::Merge => Self::Merge,
            StrategyArg::Squash => Self::Squash,
            StrategyArg::FfOnly => Self::FfOnly,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub(super) enum GraphFormat {
    Text,
    Dot,
    Mermaid,
}

/// A duration on the command line (`"30s"`, `"2m"`), greater than zero.
pub(super) fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    match crate::duration::parse_duration(s) {
        Ok(d) if d > std::time::Duration::ZERO => Ok(d),
        Ok(_) => Err("must be greater than zero".into()),
        Err(e) => Err(e.to_string()),
    }
}
