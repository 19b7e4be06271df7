//! The run state of `orch up`: every unit of work (a task's attempt, a plan agent, a plan's
//! preparation, its merge) with one state each, indexed, and the counts the scheduler needs
//! kept up to date as states change. Owned by the [core](super); nothing here does I/O.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::agent_output::Usage;
use crate::graph::NodeState;
use crate::manifest::{AgentMode, PlanEntry, ReportMode};
use crate::status::TaskStatus;

pub(crate) use super::ended::{
    Changes, CheckOutcome, CommitError, Ending, Outcome, PlanAgentEnd, RunId, Settlement, Stop,
    StopWhy, Unit, Unprepared, named, quoted,
};
use super::members::Round;

/// A task as its status file records it, in the terms the core needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TaskFacts {
    pub(crate) status: TaskStatus,
    pub(crate) commit: Option<String>,
    /// Completed after orch made the plan's worktree (its work belongs to this branch).
    pub(crate) fresh: bool,
    pub(crate) duration_ms: Option<u64>,
    pub(crate) error: Option<String>,
    /// Tokens and cost of its attempts so far (`orchUsage`).
    pub(crate) usage: Option<Usage>,
    /// A person stopped it (`orchStopped`, written by `orch stop`): failed, not retried until
    /// someone retries it.
    pub(crate) stopped: bool,
    /// Attempts recorded (`attempts`: counted by each start record, kept by a reset), so that a
    /// start record followed by a stop and a retry before the next read is still a change.
    pub(crate) attempts: u32,
    /// The question its agent asked, while it needs input (`orchQuestion`).
    pub(crate) question: Option<String>,
    /// How many messages a person said to it (`orchMessages`).
    pub(crate) messages: usize,
}

impl Default for TaskFacts {
    fn default() -> Self {
        TaskFacts {
            status: TaskStatus::Pending,
            commit: None,
            fresh: false,
            duration_ms: None,
            error: None,
            usage: None,
            stopped: false,
            attempts: 0,
            question: None,
            messages: 0,
        }
    }
}

impl TaskFacts {
    /// Done but its changes are not committed yet: completed after orch made the worktree, with
    /// no commit recorded.
    pub(crate) fn needs_commit(&self) -> bool {
        self.status == TaskStatus::Completed && self.commit.is_none() && self.fresh
    }
}

/// Where a task stands in this run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TaskRun {
    /// Nothing of this run touches it: its record decides.
    Idle,
    /// An attempt holds it, from its launch until it is settled.
    Attempt(RunId),
    /// Reported done from outside an attempt: its commit is under way.
    Committing,
    /// Its attempt failed: tried again at `until`.
    BackingOff { until: Instant },
    /// Due to run again although its record says failed (a retry, or failed before this run).
    Retry,
    /// Failed for good in this run.
    Failed { cause: String },
    /// Best of N: a round of sibling attempts holds it ([`RunState::rounds`]), from their
    /// launch until the last of them is settled.
    Round,
}

/// One task's state: what the run does with it and what its record says.
#[derive(Clone, Debug)]
pub(crate) struct TaskRec {
    pub(crate) run: TaskRun,
    pub(crate) facts: TaskFacts,
    /// Attempts started (this run, or the adopted attempt's number).
    pub(crate) attempts: u32,
    /// Its `task_finished` was reported in this run.
    pub(crate) announced: bool,
    /// Re-run once already because its commit conflicted with the plan branch.
    pub(crate) conflicted: bool,
    /// Attempts started before its last retry by a person (`orch retry`): its retries count
    /// from there.
    pub(crate) retry_base: u32,
    /// A person retried it (`orch retry`) while its attempt was still ending (stopped, or
    /// failed and about to exit): the cause the attempt failed with. The attempt's end fails
    /// it with this cause without recording it, and the retry follows.
    pub(crate) retried: Option<String>,
    /// Its running attempt asked a question (`orch task ask`): it ends without failing, and
    /// the task waits for an answer.
    pub(crate) asked: bool,
    /// Attempts lost with their `[[host]]` (not counted as attempts) in this run.
    pub(crate) lost: u32,
}

impl TaskRec {
    pub(crate) fn new(facts: TaskFacts) -> Self {
        TaskRec {
            run: TaskRun::Idle,
            facts,
            attempts: 0,
            announced: false,
            conflicted: false,
            retry_base: 0,
            retried: None,
            asked: false,
            lost: 0,
        }
    }

    /// The scheduling state: the record, with what the run knows better laid over it.
    pub(crate) fn node_state(&self) -> NodeState {
        match &self.run {
            TaskRun::Attempt(_)
            | TaskRun::Committing
            | TaskRun::BackingOff { .. }
            | TaskRun::Round => NodeState::InProgress,
            TaskRun::Retry => NodeState::Pending,
            TaskRun::Failed { .. } => NodeState::Failed,
            TaskRun::Idle if self.facts.needs_commit() => NodeState::InProgress,
            TaskRun::Idle => match self.facts.status {
                TaskStatus::Pending => NodeState::Pending,
                // Waiting for a person's answer: neither ready nor finished.
                TaskStatus::InProgress | TaskStatus::NeedsInput => NodeState::InProgress,
                TaskStatus::Completed | TaskStatus::Skipped => NodeState::Done,
                TaskStatus::Failed => NodeState::Failed,
            },
        }
    }
}

/// Where a plan's preparation (upstream merges, setup) stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Prep {
    NotStarted,
    Running,
    Done,
    Blocked(String),
}

/// A plan-mode plan's agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AgentRun {
    Idle,
    Attempt(RunId),
    BackingOff { until: Instant },
    Failed { cause: String },
}

/// The merge train's view of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MergeState {
    /// Not finished, or no merge train.
    None,
    Queued,
    Merging,
    /// In the target: merged by this run's train (or found merged already).
    Merged,
    /// Not merged: `orch merge`'s result (`conflict`, `verify_failed`, `skipped`, `refused`,
    /// `error`).
    NotMerged(crate::merge::MergeResult),
}

/// What the core knows of a plan (replaced when a lead's edit applies: `Replan`).
#[derive(Clone, Debug)]
pub(crate) struct PlanSpec {
    /// The plan's manifest entry (name, branch, agent, `retries`, `timeout`, `check`,
    /// `budget`, …), the one the effects' record of the plan holds.
    pub(crate) entry: Arc<PlanEntry>,
    /// Where its attempts run: how one lost with its place is recognised.
    pub(crate) executor: Arc<dyn crate::executor::Executor>,
    pub(crate) mode: AgentMode,
    /// Agents of the plan at once (`parallel`, or `parallel_tasks` with task worktrees).
    pub(crate) slots: usize,
    /// Tasks run in task worktrees of their own.
    pub(crate) task_trees: bool,
    /// Upstream merges or a setup command to run before its first agent.
    pub(crate) needs_prep: bool,
    /// Its worktree is made during the run ([`Input::TreeMade`](super::Input::TreeMade)
    /// says when); the run does not end before.
    pub(crate) new_tree: bool,
    /// The plans named in its `depends_on` (indices into the workspace's plans).
    pub(crate) upstreams: Vec<usize>,
    pub(crate) worktree: PathBuf,
    pub(crate) log_dir: PathBuf,
    /// How its agent's attempts count as done.
    pub(crate) report: ReportMode,
    /// Its `resolve` agent takes a red `verify` (`resolve_verify`): a red integration test does
    /// not hold it back from the merge train, whose verify hands it to the resolver.
    pub(crate) resolves_verify: bool,
    /// The other plans it lands with, all together or not at all (indices; empty when it
    /// lands alone): its group, when the group holds a plan of another repository.
    pub(crate) land_with: Vec<usize>,
    /// Its agent reads a person's messages on its stdin while it runs (`input = "lines"` or
    /// `"stream-json"`).
    pub(crate) input_lines: bool,
}

impl PlanSpec {
    /// The log of a task (`<log_dir>/<id>.log`), or of the plan agent (`plan.log`).
    pub(crate) fn log_path(&self, task: Option<&str>) -> PathBuf {
        self.log_dir.join(format!("{}.log", task.unwrap_or("plan")))
    }

    /// Agents of the plan at once, whatever its mode.
    pub(crate) fn limit(&self) -> usize {
        match self.mode {
            AgentMode::Plan => 1,
            AgentMode::Task => self.slots,
        }
    }
}

/// One plan's state in the run.
#[derive(Clone, Debug)]
pub(crate) struct PlanRec {
    pub(crate) prep: Prep,
    pub(crate) agent: AgentRun,
    pub(crate) agent_attempts: u32,
    pub(crate) finished: bool,
    pub(crate) merge: MergeState,
    /// Its status file says it was merged by an earlier `orch merge`.
    pub(crate) merged_before: bool,
    /// Attempts holding a slot of the plan (launching, running or settling).
    pub(crate) running: usize,
    /// Commits of tasks done outside an attempt, in flight.
    pub(crate) committing: usize,
    /// Tokens and cost: recorded before the run, and of this run's attempts.
    pub(crate) usage: Usage,
    /// Its budget is reached: none of its tasks starts any more (why, in words).
    pub(crate) budget_hit: Option<String>,
    /// Index of its agent in [`RunState::agents`].
    pub(crate) agent_index: usize,
    /// Its fallback agents, in order (indices into [`RunState::agents`]): where its tasks go
    /// while its agent is at a usage limit.
    pub(crate) fallbacks: Vec<usize>,
    /// Paused by a person (`orch pause`, `orchPlanPaused`): nothing of it launches.
    pub(crate) held: bool,
    /// Tasks completed from outside an attempt (a person's `orch task done`) whose check waits
    /// for the plan's running attempts to end: the check and the commit must not see, or take,
    /// an agent's unfinished work in the worktree they share.
    pub(crate) check_waiting: Vec<usize>,
    /// Its worktree is being made ([`PlanSpec::new_tree`]; until
    /// [`Input::TreeMade`](super::Input::TreeMade)).
    pub(crate) tree_pending: bool,
    /// What waits for that worktree: an attempt's check or settlement, a commit (an adopted
    /// agent may end, or a recorded completion be committed, before the worktree exists).
    pub(crate) awaiting_tree: Vec<super::Action>,
}

impl PlanRec {
    pub(crate) fn new() -> Self {
        PlanRec {
            prep: Prep::NotStarted,
            agent: AgentRun::Idle,
            agent_attempts: 0,
            finished: false,
            merge: MergeState::None,
            merged_before: false,
            running: 0,
            committing: 0,
            usage: Usage::default(),
            budget_hit: None,
            agent_index: 0,
            fallbacks: Vec::new(),
            held: false,
            check_waiting: Vec::new(),
            tree_pending: false,
            awaiting_tree: Vec::new(),
        }
    }
}

impl Default for PlanRec {
    fn default() -> Self {
        Self::new()
    }
}

/// Where an attempt stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Asked for: its worktree, prompt and process (or job) are being made.
    Launching,
    /// Its process or job runs.
    Running,
    /// Its agent is done; the task's check runs in its worktree (before the commit).
    Checking,
    /// Asked to stop; its process is being ended.
    Stopping,
    /// Over; its outcome is being settled (commit, save, record).
    Settling,
}

/// One attempt in flight.
#[derive(Clone, Debug)]
pub(crate) struct RunRec {
    pub(crate) unit: Unit,
    pub(crate) attempt: u32,
    pub(crate) stage: Stage,
    pub(crate) started: Instant,
    pub(crate) budget: Duration,
    pub(crate) log: PathBuf,
    /// The key of its quiet timer (stuck detection), when it has one.
    pub(crate) quiet_key: Option<Instant>,
    /// Tokens and cost its agent reported, once it ended.
    pub(crate) usage: Option<Usage>,
    /// What its output said of a write the sandbox denied (`AgentOutput::sandbox_note`), for
    /// the cause of a failure found after it ended (its check's).
    pub(crate) sandbox_note: String,
    /// The agent it runs (index into [`RunState::agents`]) when it is not its plan's own: a
    /// fallback. orch's record of who ran it: a limit its output shows pauses this agent.
    pub(crate) agent: Option<usize>,
    /// Its agent's stdin takes no more messages ([`super::Input::TurnEnded`]).
    pub(crate) input_closed: bool,
}

impl RunRec {
    /// Attempt `attempt` of `unit` at `stage`, `started` then, with `budget` to run and its
    /// output to `log`; no timer yet, nothing spent.
    pub(crate) fn new(
        unit: Unit,
        attempt: u32,
        stage: Stage,
        started: Instant,
        budget: Duration,
        log: PathBuf,
    ) -> Self {
        Self {
            unit,
            attempt,
            stage,
            started,
            budget,
            log,
            quiet_key: None,
            usage: None,
            sandbox_note: String::new(),
            agent: None,
            input_closed: false,
        }
    }
}

/// A timer of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// A failed unit may run again.
    Backoff(Unit),
    /// An attempt's budget runs out.
    Deadline(RunId),
    /// An attempt has been quiet for `stuck_after`.
    Quiet(RunId),
    /// A paused agent (index into [`RunState::agents`]) may launch again.
    Resume(usize),
    /// An attempt asked a question and did not exit within `grace`: it is stopped.
    Asked(RunId),
    /// A plan's own hold on an agent (index into [`RunState::agents`]) may be over: the holds
    /// whose time is up are released.
    Release(usize),
}

/// Whether an agent may be launched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AgentState {
    Ready,
    /// It hit a usage or rate limit: nothing of it starts until `until`.
    Paused {
        until: Instant,
        reason: String,
    },
    /// It cannot work until a person fixes something (missing program, rejected flags,
    /// authentication): nothing of it starts in this run.
    Stopped {
        cause: String,
        fix: String,
    },
    /// A fallback whose pre-flight failed at the start of the run (its program missing, its
    /// flags refused): failover passes over it. Nothing else of the run needs it, so the run
    /// does not end for a person because of it.
    Unusable {
        cause: String,
    },
}

/// One agent of the run (by name, as plans name them).
#[derive(Clone, Debug)]
pub(crate) struct AgentRec {
    pub(crate) name: String,
    /// Its state for every plan: changed by orch's own findings (a confirmed claim, a launch
    /// that found no program), never by one attempt's words alone.
    pub(crate) state: AgentState,
    /// Pauses without a reset time in a row (the backoff doubles with each).
    pub(crate) pauses: u32,
    /// Whether orch can ask its client itself (a probe) to check a claim of an attempt.
    pub(crate) probe: bool,
    /// A probe of its client runs.
    pub(crate) probing: bool,
    /// When its last probe started.
    pub(crate) probed_at: Option<std::time::Instant>,
    /// The plans (by name) whose attempt claimed a limit or a failure a person must fix: that
    /// plan's own work waits or stops, the others' does not until the claim is confirmed.
    pub(crate) holds: std::collections::BTreeMap<String, Hold>,
}

impl AgentRec {
    /// A ready agent named `name`.
    pub(crate) fn new(name: &str) -> Self {
        AgentRec {
            name: name.to_string(),
            state: AgentState::Ready,
            pauses: 0,
            probe: false,
            probing: false,
            probed_at: None,
            holds: Default::default(),
        }
    }
}

/// What an attempt's output claims about its agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Claimed {
    /// A usage or rate limit.
    Limit,
    /// A failure only a person can fix (a login, the flags).
    Fatal(crate::agent_output::Fatal),
}

/// One plan's hold on an agent: its attempt claimed `kind`; only this plan's work waits
/// (`Paused`) or stops (`Stopped`) until orch confirms the claim for all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hold {
    /// `Paused` or `Stopped` while it holds; `Ready` once a pause's time is up.
    pub(crate) state: AgentState,
    pub(crate) kind: Claimed,
    /// Until when the claim counts as a second plan's word for another plan's claim.
    pub(crate) live_until: std::time::Instant,
    /// The wait the claim named.
    pub(crate) wait: Option<Duration>,
    /// Pauses of this plan without a reset time in a row (its backoff doubles with each).
    pub(crate) pauses: u32,
    pub(crate) cause: String,
}

/// Every unit of the run, indexed; see the module documentation.
#[derive(Debug)]
pub(crate) struct RunState {
    /// `tasks[plan][task]`.
    pub(crate) tasks: Vec<Vec<TaskRec>>,
    pub(crate) plans: Vec<PlanRec>,
    pub(crate) runs: HashMap<RunId, RunRec>,
    pub(crate) timers: BTreeSet<(Instant, Timer)>,
    /// Plans of the merge train in the order they finished.
    pub(crate) merge_queue: Vec<usize>,
    pub(crate) merging: Option<usize>,
    /// Plans being prepared.
    pub(crate) preparing: usize,
    /// Commits in flight, all plans.
    pub(crate) committing: usize,
    pub(crate) next_run: RunId,
    /// First Ctrl-C (or SIGTERM): nothing new starts.
    pub(crate) graceful: bool,
    /// Second Ctrl-C: running agents are being stopped.
    pub(crate) stopping: bool,
    /// The agents of the run's plans.
    pub(crate) agents: Vec<AgentRec>,
    /// Tokens and cost of this run's attempts.
    pub(crate) usage: Usage,
    /// The run's budget is reached: no task starts any more (why, in words).
    pub(crate) budget_hit: Option<String>,
    /// The run waits because its only work left is in paused plans (said once per wait).
    pub(crate) waiting_on_paused: bool,
    /// The integration preview.
    pub(crate) integration: super::IntegState,
    /// Best of N: the rounds of sibling attempts, by task (`(plan, task)`).
    pub(crate) rounds: HashMap<(usize, usize), Round>,
    /// The task of each attempt that belongs to a round.
    pub(crate) members: HashMap<RunId, (usize, usize)>,
    /// Conflicts (and red verifies) the merge train's resolvers resolved in this run.
    pub(crate) resolved_by_agent: usize,
    /// Resolving agents of the merge train running now: each holds one of `max_agents`.
    pub(crate) resolving: usize,
}
