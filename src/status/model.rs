//! The status document as it is on disk: the earlier system's fields plus orch's own.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::index::EntryIndex;
use super::orch_fields::{OrchMerge, OrchPlanAgent};

use crate::plan::{Plan, Task, TaskKind};

/// The version of orch's additions to the file (`orchSchemaVersion`).
pub const ORCH_SCHEMA_VERSION: u32 = 1;

/// The `_comment` written into new files.
pub const DEFAULT_COMMENT: &str = "Execution status of this plan, maintained by orch. The plan file \
    lists the tasks; this file records their outcomes. Change it with `orch task`, not by hand.";

/// The status of one task, as the schema spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    InProgress,
    Completed,
    Failed,
    Skipped,
}

impl TaskStatus {
    /// The spelling used in the file (`in_progress`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    /// The status spelled `name` in the file ([`Self::as_str`]'s inverse).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::from_bytes(name.as_bytes())
    }

    /// [`Self::from_name`] of the bytes of a name (no UTF-8 check needed to match one).
    pub fn from_bytes(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"pending" => Self::Pending,
            b"in_progress" => Self::InProgress,
            b"completed" => Self::Completed,
            b"failed" => Self::Failed,
            b"skipped" => Self::Skipped,
            _ => return None,
        })
    }

    /// Completed or skipped: nothing more will happen to the task by itself.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Skipped)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who runs a task (orch's field `orchRun`): enough to tell a live agent from a reused pid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrchRun {
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat` (clock ticks after boot), 0 when unknown.
    #[serde(default)]
    pub process_start_time: u64,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Where the agent runs when not a local process (`slurm`); `pid` is then 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    /// The batch job running the agent (`executor` set), once submitted: what a restarted
    /// `orch up` re-attaches to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

/// Tokens and cost of a task's attempts, summed (orch's field `orchUsage`), as the agents'
/// clients reported them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrchUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// US dollars; absent when no client named a cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Attempts whose usage is counted.
    #[serde(default)]
    pub attempts: u32,
}

impl OrchUsage {
    pub fn usage(&self) -> crate::agent_output::Usage {
        crate::agent_output::Usage {
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cache_read_tokens: self.cache_read_tokens,
            cache_write_tokens: self.cache_write_tokens,
            cost_micro_usd: self.cost_usd.map(crate::agent_output::usd_to_micro),
        }
    }

    /// Adds one attempt's usage.
    pub fn add(&mut self, u: &crate::agent_output::Usage) {
        let sum = self.usage().plus(u);
        self.input_tokens = sum.input_tokens;
        self.output_tokens = sum.output_tokens;
        self.cache_read_tokens = sum.cache_read_tokens;
        self.cache_write_tokens = sum.cache_write_tokens;
        self.cost_usd = sum.cost_usd();
        self.attempts += 1;
    }
}

/// `executionConstraints` of a task in a `[SEQUENTIAL]` group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionConstraints {
    pub sequential: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One entry of `tasks` (or of orch's `verifySteps`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEntry {
    pub id: String,
    /// The phase label, `Phase N: title`.
    #[serde(default)]
    pub phase: String,
    pub description: String,
    pub status: TaskStatus,
    /// The ids written in the task's `(depends: …)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    /// The ids of the tasks that depend on this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependents: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// Milliseconds from `startedAt` to `completedAt` (read from any JSON number: the earlier
    /// system may have written fractions).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "millis"
    )]
    pub duration: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// How many times the task was restarted after a failure.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_constraints: Option<ExecutionConstraints>,
    /// orch: who runs the task while it is in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orch_run: Option<OrchRun>,
    /// orch: the commit that completed the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// orch: how many times the task was started.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// orch, verification steps only: `false` for a `(non-blocking)` step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocking: Option<bool>,
    /// orch: tokens and cost of its attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orch_usage: Option<OrchUsage>,
    /// Fields someone else added; kept as found.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One entry of `runs`, filled by the supervisor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub run_id: String,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_completed: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_failed: Option<u32>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Counts of tasks by status (`summary`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    #[serde(rename = "totalTasks")]
    pub total_tasks: u32,
    pub completed: u32,
    pub pending: u32,
    pub failed: u32,
    pub skipped: u32,
    pub in_progress: u32,
}

/// A whole `status.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDoc {
    #[serde(rename = "_comment", default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The plan file, relative to the repository root.
    pub plan_path: String,
    /// The plan's title.
    pub plan_name: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<String>,
    /// The label of the first phase with unfinished tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_phase: Option<String>,
    /// The plan's tasks (never its verification steps), in plan order.
    pub tasks: Vec<TaskEntry>,
    #[serde(default)]
    pub runs: Vec<RunRecord>,
    /// Counts over `tasks` only.
    #[serde(default)]
    pub summary: Summary,
    /// orch: the version of orch's additions; 0 in a file orch never wrote.
    #[serde(default)]
    pub orch_schema_version: u32,
    /// orch: the plan's name in `plans.toml`.
    #[serde(default)]
    pub orch_plan: String,
    /// orch: the verification steps (`V<N>`), which the schema's id pattern keeps out of `tasks`.
    #[serde(default)]
    pub verify_steps: Vec<TaskEntry>,
    /// orch: the plan file this document was last reconciled with, as [`plan_digest`] wrote it.
    /// While it matches the plan file, `orch task` records an outcome without parsing the plan.
    /// orch removes it whenever it reconciles without knowing the plan file's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orch_plan_digest: Option<String>,
    /// Fields someone else added; kept as found.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// orch: the plan-mode agent (`orchPlanAgent`). After `extra`, as when it lived there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orch_plan_agent: Option<OrchPlanAgent>,
    /// orch: the plan's last merge (`orchMerge`). After `extra`, as when it lived there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orch_merge: Option<OrchMerge>,
    /// Positions of the entries by id, built on the first lookup (not part of the file).
    #[serde(skip)]
    pub(crate) index: EntryIndex,
}

/// Milliseconds as any JSON number, rounded (negative or not finite: 0).
fn millis<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<f64>::deserialize(d)?;
    Ok(v.map(|ms| {
        if ms.is_finite() && ms > 0.0 {
            ms.round() as u64
        } else {
            0
        }
    }))
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A timestamp in the form orch writes: RFC 3339, UTC, milliseconds.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses a timestamp written by orch or the earlier system.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The phase label of a plan task: `Phase N: title`.
pub fn phase_label(plan: &Plan, task: &Task) -> String {
    plan.phase(task.phase)
        .map_or_else(|| format!("Phase {}", task.phase), |p| p.label())
}

/// The phase number of a label `Phase N…`, if it has that form.
pub fn phase_number(label: &str) -> Option<u32> {
    let rest = label.strip_prefix("Phase ")?;
    let end = rest
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// What `orchPlanDigest` holds for a plan file's bytes: orch's version, the length and a 64-bit
/// hash of the bytes. The version is part of it because another orch may read a plan differently.
pub fn plan_digest(bytes: &[u8]) -> String {
    format!(
        "{}:{}:{:016x}",
        env!("CARGO_PKG_VERSION"),
        bytes.len(),
        super::index::hash_bytes(bytes)
    )
}

impl TaskEntry {
    /// A fresh entry for a plan task: pending, or completed when marked `[x]`.
    pub fn from_plan(plan: &Plan, task: &Task) -> Self {
        let mut entry = Self::from_plan_parts(task);
        entry.refresh_from_plan(plan, task);
        entry
    }

    /// A fresh entry with only the id and status filled (the caller refreshes the rest).
    pub(crate) fn from_plan_parts(task: &Task) -> Self {
        Self {
            id: task.id.clone(),
            phase: String::new(),
            description: String::new(),
            status: if task.done {
                TaskStatus::Completed
            } else {
                TaskStatus::Pending
            },
            dependencies: Vec::new(),
            dependents: Vec::new(),
            started_at: None,
            completed_at: None,
            duration: None,
            error: None,
            notes: None,
            skip_reason: None,
            retry_count: 0,
            last_error: None,
            execution_constraints: None,
            orch_run: None,
            commit: None,
            attempts: 0,
            blocking: None,
            orch_usage: None,
            extra: Map::new(),
        }
    }

    /// Refreshes what the plan defines (description, phase, dependencies, dependents,
    /// constraints, blocking); keeps the recorded outcome.
    pub fn refresh_from_plan(&mut self, plan: &Plan, task: &Task) {
        self.phase = phase_label(plan, task);
        self.description = if task.description.trim().is_empty() {
            match task.kind {
                TaskKind::Task => format!("Task {}", task.id),
                TaskKind::Verify => format!("Verify phase {}", task.phase),
            }
        } else {
            task.description.clone()
        };
        self.dependencies = task.dependencies().to_vec();
        self.dependents = plan
            .tasks
            .iter()
            .filter(|t| t.dependencies().contains(&task.id))
            .map(|t| t.id.clone())
            .collect();
        let constraints = plan.sequential_group_of(&task.id).map(|g| {
            let mut c = ExecutionConstraints {
                sequential: true,
                sequential_group: Some(g.label.clone()),
                reason: (!g.reason.is_empty()).then(|| g.reason.clone()),
                extra: Map::new(),
            };
            // Keep fields someone else added to the constraints.
            if let Some(old) = &self.execution_constraints {
                c.extra = old.extra.clone();
            }
            c
        });
        self.execution_constraints = constraints;
        self.blocking = match task.kind {
            TaskKind::Verify => Some(task.blocking),
            TaskKind::Task => None,
        };
    }
}

impl StatusDoc {
    /// A new document for `plan`: every task pending, except `[x]` tasks, which start completed.
    pub fn new(plan: &Plan, plan_path_rel: &str, orch_name: &str, now: DateTime<Utc>) -> Self {
        let now = timestamp(now);
        let mut doc = Self {
            comment: Some(DEFAULT_COMMENT.to_string()),
            plan_path: plan_path_rel.to_string(),
            plan_name: plan_name(plan),
            created_at: now.clone(),
            last_updated_at: Some(now),
            current_phase: None,
            tasks: Vec::new(),
            runs: Vec::new(),
            summary: Summary::default(),
            orch_schema_version: ORCH_SCHEMA_VERSION,
            orch_plan: orch_name.to_string(),
            verify_steps: Vec::new(),
            orch_plan_digest: None,
            extra: Map::new(),
            orch_plan_agent: None,
            orch_merge: None,
            index: EntryIndex::default(),
        };
        // Every task is new to an empty document: reconciling adds them all, in plan order.
        super::reconcile::reconcile(&mut doc, plan);
        doc
    }

    /// The entry of a task or verification step (the first, should an id repeat).
    ///
    /// Looked up in an index built on the first call; if `tasks` or `verifySteps` were changed
    /// since (through the public fields), the lookup falls back to a scan and stays correct.
    pub fn entry(&self, id: &str) -> Option<&TaskEntry> {
        match self.index.find(&self.tasks, &self.verify_steps, id) {
            Some(i) => self.at(i),
            None => self.entries().find(|e| e.id == id),
        }
    }

    /// The entry of a task or verification step, to change it.
    pub fn entry_mut(&mut self, id: &str) -> Option<&mut TaskEntry> {
        let i = match self.index.find(&self.tasks, &self.verify_steps, id) {
            Some(i) => i,
            None => {
                // Stale or missing: rebuild once, then trust the answer.
                self.index = EntryIndex::default();
                self.index.find(&self.tasks, &self.verify_steps, id)?
            }
        };
        let n = self.tasks.len();
        if i < n {
            self.tasks.get_mut(i)
        } else {
            self.verify_steps.get_mut(i - n)
        }
    }

    /// The entry at position `i` of tasks followed by verification steps.
    fn at(&self, i: usize) -> Option<&TaskEntry> {
        let n = self.tasks.len();
        if i < n {
            self.tasks.get(i)
        } else {
            self.verify_steps.get(i - n)
        }
    }

    /// Forgets the positions of the entries (after `tasks` or `verifySteps` changed shape).
    pub(crate) fn reindex(&mut self) {
        self.index = EntryIndex::default();
    }

    /// Every entry: tasks, then verification steps.
    pub fn entries(&self) -> impl Iterator<Item = &TaskEntry> {
        self.tasks.iter().chain(self.verify_steps.iter())
    }
}

/// The plan's human-readable name: its title, or its file stem (never empty: the schema says so).
pub fn plan_name(plan: &Plan) -> String {
    if !plan.title.trim().is_empty() {
        return plan.title.clone();
    }
    plan.path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "plan".to_string())
}

#[cfg(test)]
mod tests;
