//! Batch jobs of a cluster scheduler: anything that can submit a job, report the states of many
//! jobs in one call, cancel jobs and find them again by a tag orch gave them
//! ([`BatchScheduler`]). The supervisor follows every job of the run through one shared
//! [`JobTracker`](super::JobTracker) that polls them with one query; Slurm implements the trait
//! with `sbatch`, `squeue`, `scontrol` and `scancel` ([`super::slurm`]). A Kubernetes Job
//! executor would implement the same calls with the API server.

use std::path::PathBuf;
use std::time::Duration;

use crate::manifest::SlurmOptions;

/// One agent run to submit.
#[derive(Clone, Debug)]
pub(crate) struct JobSpec {
    /// The agent's argv, passed to the job as arguments (never joined into a shell string).
    pub(crate) argv: Vec<String>,
    /// The worktree the agent works in.
    pub(crate) cwd: PathBuf,
    /// The `ORCH_*` variables, exported to the job.
    pub(crate) env: Vec<(String, String)>,
    /// What of `agent_env::withheld` (agent sockets, GitHub tokens) the job keeps (`pass_env`); the
    /// others are removed from what it is given.
    pub(crate) pass_env: Vec<String>,
    /// The task's log file: the job's output is appended to it.
    pub(crate) log: PathBuf,
    /// A name for people (`orch:<plan>:<task>`).
    pub(crate) name: String,
    /// What orch finds the job by after a restart (see [`job_tag`]).
    pub(crate) tag: String,
    /// The time limit the scheduler enforces.
    pub(crate) time_limit: Duration,
    pub(crate) options: SlurmOptions,
}

/// The tag of a job: which status file, task and attempt it runs. Written as the job's comment.
pub(crate) fn job_tag(status_file: &str, task: &str, attempt: u32) -> String {
    format!("orch {attempt} {task} {status_file}")
}

/// The parts of a tag made by [`job_tag`]: attempt, task (empty for a plan agent), status file.
pub(crate) fn parse_tag(tag: &str) -> Option<(u32, &str, &str)> {
    let rest = tag.strip_prefix("orch ")?;
    let (attempt, rest) = rest.split_once(' ')?;
    let (task, status_file) = rest.split_once(' ')?;
    Some((attempt.parse().ok()?, task, status_file))
}

/// Where a job is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum JobState {
    /// Waiting in the queue (or being configured): nothing of the agent runs yet.
    Queued,
    /// Running (or completing: its processes may still be alive).
    Running,
    /// Over.
    Ended(JobEnd),
}

impl JobState {
    pub(crate) fn is_over(&self) -> bool {
        matches!(self, Self::Ended(_))
    }
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum JobEnd {
    /// The agent exited with this status (0 for COMPLETED; 128 + signal when killed by one).
    Exited(i32),
    /// It exceeded the scheduler's time limit (TIMEOUT).
    TimedOut,
    /// Cancelled (CANCELLED): by orch, a person or an administrator.
    Cancelled,
    /// Its node failed (NODE_FAIL, BOOT_FAIL).
    NodeFailed,
    /// Preempted by a higher-priority job (PREEMPTED).
    Preempted,
    /// Killed for using more memory than it asked for (OUT_OF_MEMORY).
    OutOfMemory,
    /// Another final state, as the scheduler names it.
    Other(String),
    /// The scheduler no longer knows the job (purged from its memory): how it ended is unknown.
    Gone,
}

/// The exit status the job script uses when the job's node cannot see the worktree, the status
/// file or orch itself (the paths are not on a filesystem shared with the node).
pub(crate) const NOT_SHARED_EXIT: i32 = 97;

impl JobEnd {
    /// For messages: `exit status 3`, `TIMEOUT (the time limit of the job)`, …
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Exited(NOT_SHARED_EXIT) => format!(
                "exit status {NOT_SHARED_EXIT}: the job's node cannot see the worktree, the status \
                 file or orch (worktree_root, state_dir, log_dir and orch must be on a filesystem \
                 shared with the compute nodes; the log says which)"
            ),
            Self::Exited(code) => format!("exit status {code}"),
            Self::TimedOut => "TIMEOUT: the job reached its time limit".to_string(),
            Self::Cancelled => "CANCELLED (not by orch)".to_string(),
            Self::NodeFailed => "NODE_FAIL: the job's node failed".to_string(),
            Self::Preempted => "PREEMPTED by a higher-priority job".to_string(),
            Self::OutOfMemory => "OUT_OF_MEMORY: the job used more memory than it asked for".into(),
            Self::Other(state) => state.clone(),
            Self::Gone => "the scheduler no longer knows the job".to_string(),
        }
    }
}

/// A job found by [`BatchScheduler::list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListedJob {
    pub(crate) id: String,
    pub(crate) state: JobState,
    /// The tag given at submission ([`JobSpec::tag`]), empty for jobs without one.
    pub(crate) tag: String,
    /// False when the state is only roughly known (a failed job whose exit status the listing
    /// does not give): ask [`BatchScheduler::final_state`].
    pub(crate) exact: bool,
}

/// A cluster scheduler. Every call is blocking (it runs the scheduler's commands); the tracker
/// calls them off the async runtime.
pub(crate) trait BatchScheduler: Send + Sync {
    /// `slurm`: for messages and the status file.
    fn name(&self) -> &'static str;
    /// Submits one job; returns its id.
    fn submit(&self, spec: &JobSpec) -> Result<String, String>;
    /// The user's jobs the scheduler still lists, with their states and tags: one query, however
    /// many jobs. A job missing here may have ended long ago: see [`Self::final_state`].
    fn list(&self) -> Result<Vec<ListedJob>, String>;
    /// How a job ended, asked for one job (its exit status, or [`JobEnd::Gone`]).
    fn final_state(&self, id: &str) -> Result<JobState, String>;
    /// Asks the scheduler to cancel jobs (they end as cancelled a moment later).
    fn cancel(&self, ids: &[String]) -> Result<(), String>;
    /// Cancels those of the jobs that still wait in the queue, in one step on the scheduler's
    /// side (a job that has just started is left running).
    fn cancel_queued(&self, ids: &[String]) -> Result<(), String>;
    /// The processes of job `id` running on this machine, as the scheduler's own record has them
    /// (never what a process says of itself): empty when the job runs on another node or has
    /// none here.
    fn local_pids(&self, id: &str) -> Result<Vec<u32>, String>;
}
