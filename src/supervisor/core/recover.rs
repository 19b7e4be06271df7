//! Start-up after an earlier supervisor: every choice recovery makes (adopt, stop, reset, record
//! done, retry, save, unlock), as pure functions of the facts `supervisor/recover.rs` gathers:
//! what the status file records, which agents and jobs outlived the earlier supervisor, what the
//! plan branch and the task worktrees hold. No process, no git, no clock. A fact that could not
//! be read is absent and decides nothing: nothing is adopted, recorded done or left unsaved on
//! what could not be checked (fail closed).

use crate::executor::JobState;
use crate::git::RecentCommit;
use crate::status::TaskStatus;

/// An agent of an earlier supervisor that outlived it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Survivor {
    /// A batch job not over, believed in `state`, of the unit's attempt `attempt`.
    Job {
        id: String,
        attempt: u32,
        state: JobState,
    },
    /// A local process group: its leader's pid and start time.
    Process { pid: u32, start_time: u64 },
}

/// What start-up found of one unit's agent (a task's, or the plan agent's).
#[derive(Clone, Debug, Default)]
pub(crate) struct AgentFacts {
    /// The latest batch job not over that the executor lists for it (by its tag).
    pub(crate) listed_job: Option<Survivor>,
    /// The batch job its record names.
    pub(crate) recorded_job: Option<Survivor>,
    /// The process its record names, found alive (read only where a record names a running
    /// agent: the plan agent's, a task's in progress).
    pub(crate) recorded_process: Option<Survivor>,
    /// Processes found alive that claim to be its agents by their `ORCH_*` environment (process
    /// groups), in the order found: a process's own word, so only ever stopped (a best-of-N
    /// round's survivors, and every one outside the adopted agent's tree,
    /// `supervisor/recover.rs`), never adopted.
    pub(crate) by_env: Vec<Survivor>,
}

/// What start-up found of one task with a record.
#[derive(Clone, Debug)]
pub(crate) struct TaskFound {
    /// Its index in the plan.
    pub(crate) task: usize,
    pub(crate) status: TaskStatus,
    /// Best of N: how many attempts of it run at once.
    pub(crate) attempts: u32,
    pub(crate) agent: AgentFacts,
}

/// What start-up found of one plan of the run.
#[derive(Clone, Debug, Default)]
pub(crate) struct PlanFound {
    /// One agent runs the whole plan (`mode = "plan"`).
    pub(crate) plan_mode: bool,
    /// Its executor adopts no process of this machine: an attempt that outlived the earlier
    /// supervisor is a batch job its scheduler lists, or nothing.
    pub(crate) batch: bool,
    /// The plan agent's (plan mode).
    pub(crate) agent: AgentFacts,
    pub(crate) tasks: Vec<TaskFound>,
}

/// What becomes of a plan at start-up.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Decision {
    /// Its plan agent outlived the earlier supervisor: watched again; nothing else of the plan
    /// is touched.
    AdoptPlanAgent(Survivor),
    /// What becomes of each task (tasks not named stay as they are).
    Tasks(Vec<(usize, TaskDecision)>),
}

/// What becomes of one task at start-up.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TaskDecision {
    /// Its agent (process or job) outlived the earlier supervisor: watched again.
    Adopt(Survivor),
    /// Best of N: the surviving attempts of its round (these process groups) are stopped, never
    /// adopted one by one (a round is decided by the supervisor that saw all of it); `gone`:
    /// the task was left in progress, see [`TaskDecision::Gone`]. A new round starts.
    StopRound { groups: Vec<u32>, gone: bool },
    /// Left in progress by an agent that is gone: recorded done or put back ([`left`]).
    Gone,
    /// Recorded failed: it runs again.
    Retry,
}

/// The plan's decision. See [`Decision`] and [`TaskDecision`].
pub(crate) fn decide(plan: &PlanFound) -> Decision {
    let local = !plan.batch;
    if plan.plan_mode {
        let a = &plan.agent;
        let found = if local {
            a.recorded_process.clone()
        } else {
            a.listed_job.clone().or_else(|| a.recorded_job.clone())
        };
        if let Some(s) = found {
            return Decision::AdoptPlanAgent(s);
        }
    }
    let tasks = plan
        .tasks
        .iter()
        .filter_map(|t| Some((t.task, decide_task(plan, t)?)))
        .collect();
    Decision::Tasks(tasks)
}

fn decide_task(plan: &PlanFound, t: &TaskFound) -> Option<TaskDecision> {
    let in_progress = t.status == TaskStatus::InProgress;
    let a = &t.agent;
    let task_mode = !plan.plan_mode;
    if !plan.batch && task_mode && t.attempts > 1 {
        let groups: Vec<u32> = a
            .by_env
            .iter()
            .filter_map(|s| match s {
                Survivor::Process { pid, .. } => Some(*pid),
                Survivor::Job { .. } => None,
            })
            .collect();
        return (in_progress || !groups.is_empty()).then_some(TaskDecision::StopRound {
            groups,
            gone: in_progress,
        });
    }
    if task_mode && !t.status.is_finished() {
        // The agents of a batch plan are its jobs, even when they run on this machine.
        let job = a.listed_job.clone().filter(|_| plan.batch);
        let recorded_job = a.recorded_job.clone().filter(|_| plan.batch && in_progress);
        // A local agent is adopted only as orch recorded it (pid and start time), never by
        // what a process says it is.
        let process = a
            .recorded_process
            .clone()
            .filter(|_| in_progress && !plan.batch);
        if let Some(s) = job.or(recorded_job).or(process) {
            return Some(TaskDecision::Adopt(s));
        }
    }
    match t.status {
        TaskStatus::InProgress => Some(TaskDecision::Gone),
        TaskStatus::Failed => Some(TaskDecision::Retry),
        _ => None,
    }
}

/// What becomes of a task whose agent is gone ([`TaskDecision::Gone`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Left {
    /// Its work is committed: recorded done, with the commit when it is on the plan branch
    /// already (without: its commit waits in its task worktree and the core lands it).
    Done { commit: Option<String> },
    /// The commit waiting in its task worktree is refused by the checks of a task's commit, or
    /// they could not run (`cause` names the check): recorded failed, nothing of it lands.
    Refused { cause: String },
    /// Put back to pending: it runs again.
    Reset,
}

/// Task `id` of plan `plan`, whose agent is gone: done when its task worktree's HEAD (`head`,
/// its message; none without a task worktree or when unreadable) is the task's commit with
/// nothing since (`clean`, asked only then; `None`: could not be read) and the checks of a
/// normal completion pass on it (`refused`, asked only then: why not, a check that could not
/// run included; the agent can make that commit itself), or when the plan branch's recent
/// commits (`recent`, newest first; empty when unreadable) hold the task's commit made since it
/// started (`started`, seconds since the epoch): the earlier supervisor committed it and died
/// before landing or recording it. Otherwise it runs again.
pub(crate) fn left(
    plan: &str,
    id: &str,
    head: Option<&str>,
    clean: impl FnOnce() -> Option<bool>,
    refused: impl FnOnce() -> Option<String>,
    recent: &[RecentCommit],
    started: Option<i64>,
) -> Left {
    let prefix = format!("{plan} {id}:");
    if head.is_some_and(|m| m.starts_with(&prefix)) && clean() == Some(true) {
        return match refused() {
            None => Left::Done { commit: None },
            Some(cause) => Left::Refused { cause },
        };
    }
    // Commit times are whole seconds.
    recent
        .iter()
        .find(|c| c.message.starts_with(&prefix) && started.is_none_or(|t| c.time >= t))
        .map_or(Left::Reset, |c| Left::Done {
            commit: Some(c.oid.clone()),
        })
}

/// Whether the plan's worktree is saved and reset before tasks `gone` left in progress are
/// settled: when one agent works in it at a time (`parallel`) and none was adopted.
pub(crate) fn reset_plan_tree(parallel: usize, adopted_any: bool, gone: usize) -> bool {
    gone > 0 && parallel == 1 && !adopted_any
}

/// What becomes of a task worktree found at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tree {
    /// Its agent was adopted: it works there.
    Keep,
    /// Its task is done but not landed: its stale locks removed, the core lands it.
    Unlock,
    /// A leftover: removed with its branch, its work saved first when `save`.
    Retire { save: bool },
}

/// The task worktree of a task whose agent was adopted (`busy`), that is done but not landed
/// (`waiting`), or whose commit is recorded (`landed`: nothing in it to save), else a leftover
/// to save.
pub(crate) fn tree(busy: bool, waiting: bool, landed: bool) -> Tree {
    if busy {
        Tree::Keep
    } else if waiting {
        Tree::Unlock
    } else {
        Tree::Retire { save: !landed }
    }
}
