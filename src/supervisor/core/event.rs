//! What happens during `orch up`, as events: the progress display renders them, `--json` prints
//! one per line. The JSON field names are a contract (docs/src/commands/up.md, "orch up --json").

use std::path::PathBuf;

use serde::Serialize;

use crate::agent_output::Usage;
use crate::merge::resolve::ResolveNote;

/// One thing that happened during a run. Serialized with an `event` field naming the variant in
/// snake case (`task_started`, …) and an `at` timestamp added by [`Stamped`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Event {
    /// A person paused the plan (`orch pause`): nothing new of it launches; running agents go on.
    PlanPaused { plan: String },
    /// A paused plan was resumed (`orch resume`).
    PlanResumed { plan: String },
    /// A failed task was put back to pending (`orch retry`): it runs again with a fresh set of
    /// retries; its next attempt is `attempt`.
    TaskRetried {
        plan: String,
        task: String,
        attempt: u32,
    },
    /// A person stopped the task's running attempt (`orch stop`): it fails with the cause
    /// `stopped` and is not retried until someone retries it.
    TaskStopped {
        plan: String,
        task: String,
        attempt: u32,
    },
    /// A task's agent asked a question (`orch task ask`): the task waits for a person's
    /// answer (`orch answer PLAN TASK "…"`); the run's other work goes on. `question` is the
    /// agent's text, as it wrote it (escaped wherever orch shows it).
    TaskNeedsInput {
        plan: String,
        task: String,
        attempt: u32,
        question: String,
    },
    /// The supervisor holds the lock and starts working on `plans`.
    RunStarted {
        plans: Vec<String>,
        max_agents: usize,
        /// `on`, `off` or `unavailable` (`super::sandbox::run_state`).
        sandbox: String,
        /// The Landlock ABI confined agents run under (1 to 6, `crate::sandbox::abi`); 0 when
        /// no agent is confined.
        sandbox_abi: u8,
        /// `confined`, `none`, `open`, `mixed` or `unavailable` (`super::network::run_state`).
        network: String,
    },
    /// A plan's worktree is ready (made now, or reused from an earlier run).
    PlanStarted {
        plan: String,
        branch: String,
        worktree: PathBuf,
        /// The commit of the target branch the plan branch was made from.
        base: String,
        created: bool,
    },
    /// The work of an upstream plan (`from`, as written in `depends_on`) was merged into the plan's
    /// branch before its first agent.
    UpstreamMerged {
        plan: String,
        from: String,
        upstream_commit: String,
        /// The merge commit, or `None` when the branch already contained the upstream commit.
        commit: Option<String>,
    },
    /// The plan's setup command ran.
    SetupFinished {
        plan: String,
        ok: bool,
        log: PathBuf,
    },
    /// An agent process was launched for a task (`task` is empty in plan mode).
    TaskStarted {
        plan: String,
        task: String,
        /// `task` or `verify`.
        kind: String,
        description: String,
        /// 1 for the first attempt.
        attempt: u32,
        /// The agent's process (0 for a batch job).
        pid: u32,
        log: PathBuf,
        /// The batch job running the agent (executor `slurm`).
        #[serde(skip_serializing_if = "Option::is_none")]
        job_id: Option<String>,
    },
    /// The attempt of an `executor = "ssh"` plan runs on `[[host]]` `host`: orch's own record
    /// of the host its driver took a slot of (again when the attempt moves to another host).
    TaskOnHost {
        plan: String,
        task: String,
        attempt: u32,
        host: String,
    },
    /// A `[[host]]` of the run's ssh plans is lost: it did not answer (a running attempt's
    /// connection ended, or none could be made), from orch's own record of it; `cause` as orch
    /// said it (escaped). Its attempts run again, from the plan branch, when it answers (or on the
    /// plan's other hosts), at no retry's cost.
    HostLost { host: String, cause: String },
    /// A lost host answers again (an attempt of the run reached it).
    HostBack { host: String },
    /// A task whose agent survived an earlier supervisor is being watched again, not restarted.
    TaskAdopted {
        plan: String,
        task: String,
        /// 0 for a batch job.
        pid: u32,
        /// The batch job found again (executor `slurm`).
        #[serde(skip_serializing_if = "Option::is_none")]
        job_id: Option<String>,
    },
    /// A task is done and its changes are committed.
    TaskFinished {
        plan: String,
        task: String,
        commit: Option<String>,
        duration_ms: u64,
        /// Tokens and cost of the attempt, when its client printed them (best of N: of every
        /// attempt of the round, losers too).
        #[serde(skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
        /// Best of N: the attempt picked and why (`attempt 2 of 3: check passed, score 0.93, 41
        /// lines; 1 failed its check, 3 stopped`).
        #[serde(skip_serializing_if = "Option::is_none")]
        pick: Option<String>,
    },
    /// The task's agent is done; its check runs before the commit.
    TaskChecking {
        plan: String,
        task: String,
        attempt: u32,
    },
    /// An attempt failed; `retry_in_ms` is set when it will be tried again.
    TaskFailed {
        plan: String,
        task: String,
        attempt: u32,
        error: String,
        retry_in_ms: Option<u64>,
        /// Where the attempt's uncommitted changes were saved, if it left any.
        saved: Option<String>,
        log: PathBuf,
        /// Tokens and cost of the attempt, when its client printed them.
        #[serde(skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
    },
    /// An attempt printed nothing and changed no status for `stuck_after` (`quiet_ms`): it is
    /// being stopped, and fails with the cause "stuck" (retried as any failure). `task` is
    /// empty for a plan-mode agent.
    TaskStuck {
        plan: String,
        task: String,
        attempt: u32,
        quiet_ms: u64,
    },
    /// An agent hit a usage or rate limit: none of its tasks starts for `resume_in_ms`; the
    /// attempt that hit it is not counted and its task is pending again. With `plan`: the
    /// claim of that plan's attempt, not (yet) confirmed by orch: only that plan's tasks wait.
    AgentPaused {
        agent: String,
        reason: String,
        resume_in_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        plan: Option<String>,
    },
    /// A paused agent may start tasks again (with `plan`: that plan's tasks).
    AgentResumed {
        agent: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        plan: Option<String>,
    },
    /// Agent `from` is at a usage limit (until `until`, `resume_in_ms` from now): the pending
    /// tasks of `plans` go to their fallback `to`, the first one not limited; `skipped`: the
    /// fallbacks before it passed over, each with why. Running attempts go on.
    AgentFailover {
        from: String,
        to: String,
        plans: Vec<String>,
        until: String,
        resume_in_ms: u64,
        skipped: Vec<String>,
    },
    /// Agent `agent`'s limit reset: new tasks of `plans`, its own, go to it again.
    AgentRestored { agent: String, plans: Vec<String> },
    /// An agent cannot work until a person fixes something: `class` is `missing_program`,
    /// `rejected_flags` or `authentication`; none of its tasks starts again in this run. With
    /// `plan`: the claim of that plan's attempt, not (yet) confirmed by orch: only that plan's
    /// tasks stop.
    AgentStopped {
        agent: String,
        class: String,
        cause: String,
        fix: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        plan: Option<String>,
    },
    /// A budget is reached (`plan` `None`: the run's): no new task of it starts.
    BudgetReached {
        plan: Option<String>,
        reason: String,
        usage: Usage,
    },
    /// Every task of the plan is completed or skipped.
    PlanFinished { plan: String, completed: usize },
    /// The plan cannot go on: a failed task, a failed upstream, a merge conflict.
    PlanBlocked { plan: String, reason: String },
    /// The merge train (`orch up --merge`, `auto_merge`): `orch merge` landed the plan on the
    /// target; `commit` is the target's new tip (`None` when it was merged already).
    PlanMerged {
        plan: String,
        target: String,
        commit: Option<String>,
    },
    /// The merge train could not merge the plan: `result` is `orch merge`'s (`conflict`,
    /// `verify_failed`, `skipped`, `refused`, `error`).
    PlanMergeFailed {
        plan: String,
        result: String,
        reason: String,
    },
    /// The integration preview found plans that break together: `plans` in merge order, the
    /// `culprit` last; a textual `conflict` (paths) or `verify` failing (exit code, last lines);
    /// the `commits` tried (the target's tip first).
    IntegrationFailed {
        plans: Vec<String>,
        culprit: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        conflict: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        verify: Option<crate::merge::integrate::VerifyFailure>,
        commits: Vec<crate::merge::integrate::TriedCommit>,
    },
    /// A test passed after one failed: the plans it had named (`plans`) fit again.
    IntegrationFixed {
        plans: Vec<String>,
        commits: Vec<crate::merge::integrate::TriedCommit>,
    },
    /// Ctrl-C: `immediate` is false for the first (finish running tasks), true for the second.
    Interrupted { immediate: bool },
    /// A report about task `task` was refused: an attempt reporting another task, a
    /// plan-mode agent a VERIFY step, a person's `done` of a task without a check, or a change
    /// of the status file that did not come through orch (`reporter` says which, `reason` why).
    /// orch's record of the task stands.
    ReportRefused {
        plan: String,
        task: String,
        reporter: String,
        reason: String,
    },
    /// `plans.toml`, a plan file it names or a prompt template changed during the run and does
    /// not pass `orch check`: the edit is not applied; the last good configuration stays. `file`
    /// is the file of the first error, `errors` each error as `orch check` prints it
    /// (`path:line:col: error: message`, its hint on a further line).
    ManifestInvalid { file: PathBuf, errors: Vec<String> },
    /// A change of `plans.toml`, of a plan file it names or of a prompt template passed
    /// `orch check` and is applied: `files` changed, `changes` says what changed, one line each
    /// (`max_agents 1 → 3`, `plan c: added`, `plan a: task 1.2 changed`).
    ManifestReloaded {
        files: Vec<PathBuf>,
        changes: Vec<String>,
    },
    /// A message for the user (a warning that does not stop the run).
    Note {
        plan: Option<String>,
        message: String,
    },
    /// The run is over.
    RunFinished { summary: RunSummary },
    /// Best of N: one attempt of a round is settled: `picked` (its work lands) or not (its work
    /// is saved under `saved`); `cause` says why, `of` how many attempts the round has.
    AttemptFinished {
        plan: String,
        task: String,
        attempt: u32,
        of: u32,
        picked: bool,
        cause: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        saved: Option<String>,
        log: PathBuf,
        #[serde(skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
        /// How it ended, in one word: `picked`, `candidate` (done and checked, not picked),
        /// `stopped` (by orch, once another was picked or the run stopped: its time says
        /// nothing of how long it would have taken), `failed` (no candidate).
        outcome: String,
    },
    /// A running attempt has run longer than the p90 of its kind in the history:
    /// it may be stuck. A signal, not a kill: the attempt goes on. Once per attempt.
    TaskSlow {
        plan: String,
        task: String,
        attempt: u32,
        elapsed_ms: u64,
        /// The p90 of the attempts of its kind.
        p90_ms: u64,
        /// The attempts the p90 rests on.
        samples: usize,
    },
    /// The forecast made when the run started, against how it ended: sent just
    /// before `run_finished`. Times RFC 3339, costs in millionths of a US dollar (`None`: no
    /// cost known).
    RunForecast {
        eta_p50: String,
        eta_p90: String,
        cost_p50_micro_usd: Option<u64>,
        cost_p90_micro_usd: Option<u64>,
        ended_at: String,
        cost_micro_usd: Option<u64>,
    },
    /// The merge train's resolutions, as the resolver tells them (serialized untagged: the
    /// note is the event). `resolve_started`: a plan that cannot land (a conflict with the
    /// target, or with `resolve_verify` a red `verify`) is handed to its `resolve` agent:
    /// `files` are the conflicted ones, `reason` `conflict` or `verify_failed`, `attempt` its
    /// resolution attempt (1 for the first). `resolved`: every gate passed, `commit` is the
    /// merge commit on the plan branch; the merge goes on. `resolve_failed`: the resolution
    /// did not pass its gates (`cause`); nothing moved; what the agent left is saved under
    /// `saved` (`refs/orch/attempts/<plan>/resolve/<n>`).
    #[serde(untagged)]
    Resolve(ResolveNote),
}

/// How each plan ended; printed at the end of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct RunSummary {
    pub(crate) plans: Vec<PlanOutcome>,
    pub(crate) elapsed_ms: u64,
    /// True when the run was cut short by Ctrl-C or a signal.
    pub(crate) interrupted: bool,
    /// Tokens and cost of the run's attempts.
    pub(crate) usage: Usage,
    /// The run's budget, when it was reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) budget_reached: Option<String>,
    /// Agents that could not work (missing program, rejected flags, authentication).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) agents_stopped: Vec<StoppedAgent>,
    /// `[[notify]]` deliveries that failed (each also reported as a `note`); absent when none.
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) notify_failures: usize,
    /// Conflicts (and red verifies) the merge train's resolvers resolved; absent when none.
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) resolved_by_agent: usize,
    /// Plans the merge train left unmerged for a conflict or a red `verify`, for a person;
    /// absent when none.
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) left_for_a_person: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// An agent that stopped the run for a failure only a person can fix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct StoppedAgent {
    pub(crate) agent: String,
    pub(crate) cause: String,
    pub(crate) fix: String,
}

/// One plan at the end of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct PlanOutcome {
    pub(crate) plan: String,
    pub(crate) outcome: PlanResult,
    pub(crate) completed: usize,
    pub(crate) total: usize,
    pub(crate) failed_tasks: Vec<String>,
    pub(crate) reason: Option<String>,
    /// With the merge train: `merged`, or why not (`conflict`, `verify_failed`, …); `None`
    /// without it or when the plan did not finish.
    pub(crate) merge: Option<crate::merge::MergeResult>,
    pub(crate) branch: String,
    pub(crate) worktree: PathBuf,
    pub(crate) log_dir: PathBuf,
    /// The cause of each failed task (`id`, cause), for the summary.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) causes: Vec<(String, String)>,
    /// Tokens and cost of the plan: recorded before the run and of its attempts.
    pub(crate) usage: Usage,
}

/// How a plan's run ended, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PlanResult {
    Completed,
    Failed,
    Blocked,
    /// Interrupted, out of budget, or waiting on a plan that is not part of the run.
    Unfinished,
    /// Taken out of the manifest during the run.
    Removed,
    /// A task's agent asked a question: the plan waits for a person's answer (`orch answer`).
    Waiting,
}

impl PlanResult {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Blocked => "blocked",
            Self::Unfinished => "unfinished",
            Self::Removed => "removed",
            Self::Waiting => "waiting",
        }
    }
}

impl std::fmt::Display for PlanResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event with its time, as printed by `--json`: the event's fields plus `at`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Stamped<'a> {
    pub(crate) at: String,
    #[serde(flatten)]
    pub(crate) event: &'a Event,
}

impl<'a> Stamped<'a> {
    /// `event` at the time now (RFC 3339, milliseconds).
    pub(crate) fn now(event: &'a Event) -> Self {
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        Self { at, event }
    }
}
