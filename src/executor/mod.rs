//! Where agents run: on this machine (`local`, a process group per agent, see
//! [`crate::process`]) or as batch jobs of a cluster scheduler (`slurm`).
//!
//! A batch scheduler is anything that can submit a job, report the states of many jobs in one
//! call, cancel jobs and find them again by a tag orch gave them: [`BatchScheduler`]. The
//! supervisor only talks to that trait, through one shared [`JobTracker`] that polls every job of
//! the run with one query; [`Slurm`] implements it with `sbatch`, `squeue`, `scontrol` and
//! `scancel`. A Kubernetes Job executor would implement the same four calls with the API server.

mod slurm;
pub(crate) mod ssh;
mod tracker;

use std::path::PathBuf;
use std::time::Duration;

pub(crate) use crate::manifest::{ExecutorKind, SlurmOptions};
pub(crate) use slurm::Slurm;
pub(crate) use tracker::JobTracker;

/// One agent run to submit.
#[derive(Clone, Debug)]
pub(crate) struct JobSpec {
    /// The agent's argv, passed to the job as arguments (never joined into a shell string).
    pub(crate) argv: Vec<String>,
    /// The worktree the agent works in.
    pub(crate) cwd: PathBuf,
    /// The `ORCH_*` variables, exported to the job.
    pub(crate) env: Vec<(String, String)>,
    /// The agent-socket variables (`agent_env::AGENT_SOCKETS`) the job keeps (`pass_env`); the
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

/// The filesystem type of `path` (or its nearest existing ancestor) when it is one that only
/// this machine sees (`tmpfs`, `ramfs`), from `/proc/self/mountinfo`.
pub(crate) fn node_local_fs(path: &std::path::Path) -> Option<String> {
    let mut p = std::path::absolute(path).ok()?;
    while !p.exists() {
        p = p.parent()?.to_path_buf();
    }
    let p = p.canonicalize().ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let fstype = mount_fstype(&info, &p)?;
    matches!(fstype.as_str(), "tmpfs" | "ramfs").then_some(fstype)
}

/// The type of the mount holding `path` (the longest mount point above it) in a mountinfo text.
fn mount_fstype(info: &str, path: &std::path::Path) -> Option<String> {
    info.lines()
        .filter_map(|line| {
            // `id parent major:minor root mountpoint options [optional…] - fstype source …`
            let mut fields = line.split(' ');
            let mount = fields.nth(4)?;
            let (_, after) = line.split_once(" - ")?;
            let fstype = after.split(' ').next()?;
            let mount = unescape_mount(mount);
            path.starts_with(&mount)
                .then(|| (mount.as_os_str().len(), fstype.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, t)| t)
}

/// Mount points escape space, tab, newline and backslash as `\NNN` (octal).
fn unescape_mount(s: &str) -> std::path::PathBuf {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(code) = bytes.get(i + 1..i + 4)
            && let Some(v) = std::str::from_utf8(code)
                .ok()
                .and_then(|c| u8::from_str_radix(c, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    use std::os::unix::ffi::OsStringExt;
    std::path::PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_types_come_from_the_longest_mount_point() {
        let info = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
                    30 22 0:5 / /dev/shm rw - tmpfs tmpfs rw\n\
                    31 22 0:6 / /mnt/a\\040b rw - nfs4 srv:/x rw\n";
        let t = |p: &str| mount_fstype(info, std::path::Path::new(p));
        assert_eq!(t("/dev/shm/x").as_deref(), Some("tmpfs"));
        assert_eq!(t("/home/u").as_deref(), Some("ext4"));
        assert_eq!(t("/mnt/a b/repo").as_deref(), Some("nfs4"));
        assert_eq!(t("/mnt/ab").as_deref(), Some("ext4"));
    }

    #[test]
    fn dev_shm_is_node_local() {
        if std::path::Path::new("/dev/shm").is_dir() {
            assert_eq!(
                node_local_fs(std::path::Path::new("/dev/shm/orch-nothing-here")).as_deref(),
                Some("tmpfs")
            );
        }
        assert_eq!(node_local_fs(std::path::Path::new("/")), None);
    }
}
