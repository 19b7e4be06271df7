//! The status document as it is on disk: the earlier system's fields plus orch's own.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::index::EntryIndex;
use super::orch_fields::{OrchMerge, OrchPlanAgent};

use crate::plan::{Plan, Task};

/// The version of orch's additions to the file (`orchSchemaVersion`).
pub(crate) const ORCH_SCHEMA_VERSION: u32 = 1;

/// The `_comment` written into new files.
pub(crate) const DEFAULT_COMMENT: &str = "Execution status of this plan, maintained by orch. The plan file \
    lists the tasks; this file records their outcomes. Change it with `orch task`, not by hand.";

/// The status of one task, as the schema spells it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    #[default]
    Pending,
    InProgress,
    Completed,
    Failed,
    Skipped,
    /// Its agent asked a question (`orch task ask`): the task waits for a person's answer
    /// (`orch answer`), then runs again with it.
    NeedsInput,
}

impl TaskStatus {
    /// The spelling used in the file (`in_progress`, …).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::NeedsInput => "needs_input",
        }
    }

    /// The status spelled `name` in the file ([`Self::as_str`]'s inverse).
    #[cfg(test)]
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::from_bytes(name.as_bytes())
    }

    /// [`Self::from_name`] of the bytes of a name (no UTF-8 check needed to match one).
    #[cfg(test)]
    pub(crate) fn from_bytes(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"pending" => Self::Pending,
            b"in_progress" => Self::InProgress,
            b"completed" => Self::Completed,
            b"failed" => Self::Failed,
            b"skipped" => Self::Skipped,
            b"needs_input" => Self::NeedsInput,
            _ => return None,
        })
    }

    /// Completed or skipped: nothing more will happen to the task by itself.
    pub(crate) fn is_finished(self) -> bool {
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
pub(crate) struct OrchRun {
    pub(crate) pid: u32,
    /// Field 22 of `/proc/<pid>/stat` (clock ticks after boot), 0 when unknown.
    #[serde(default)]
    pub(crate) process_start_time: u64,
    pub(crate) started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) host: Option<String>,
    /// Where the agent runs when not a local process (`slurm`); `pid` is then 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) executor: Option<String>,
    /// The batch job running the agent (`executor` set), once submitted: what a restarted
    /// `orch up` re-attaches to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) job_id: Option<String>,
}

/// Tokens and cost of a task's attempts, summed (orch's field `orchUsage`), as the agents'
/// clients reported them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct OrchUsage {
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) cache_read_tokens: u64,
    pub(crate) cache_write_tokens: u64,
    /// US dollars; absent when no client named a cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cost_usd: Option<f64>,
    /// Attempts whose usage is counted.
    pub(crate) attempts: u32,
}

impl OrchUsage {
    pub(crate) fn usage(&self) -> crate::agent_output::Usage {
        crate::agent_output::Usage {
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cache_read_tokens: self.cache_read_tokens,
            cache_write_tokens: self.cache_write_tokens,
            cost_micro_usd: self.cost_usd.map(crate::agent_output::usd_to_micro),
        }
    }

    /// Adds one attempt's usage.
    pub(crate) fn add(&mut self, u: &crate::agent_output::Usage) {
        let sum = self.usage().plus(u);
        self.input_tokens = sum.input_tokens;
        self.output_tokens = sum.output_tokens;
        self.cache_read_tokens = sum.cache_read_tokens;
        self.cache_write_tokens = sum.cache_write_tokens;
        self.cost_usd = sum.cost_usd();
        self.attempts += 1;
    }
}

/// One question of a task's agent and a person's answer (orch's field `orchAnswers`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrchAnswer {
    pub(crate) question: String,
    pub(crate) answer: String,
    /// When it was answered.
    #[serde(default)]
    pub(crate) at: String,
}

/// A person's message to a task (orch's field `orchMessages`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrchMessage {
    pub(crate) text: String,
    /// When it was said.
    #[serde(default)]
    pub(crate) at: String,
    /// What the running `orch up` did with it: `delivered` (written on the stdin of the
    /// running attempt `attempt`) or `kept` (for the next attempt); absent: no supervisor
    /// has seen it yet (the next attempt's prompt holds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) delivery: Option<String>,
    /// The attempt it was delivered to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) attempt: Option<u32>,
}

/// `executionConstraints` of a task in a `[SEQUENTIAL]` group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExecutionConstraints {
    pub(crate) sequential: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sequential_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    #[serde(flatten)]
    pub(crate) extra: Map<String, Value>,
}

/// One entry of `tasks` (or of orch's `verifySteps`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEntry {
    pub id: String,
    /// The phase label, `Phase N: title`.
    #[serde(default)]
    pub phase: String,
    pub(crate) description: String,
    pub status: TaskStatus,
    /// The ids written in the task's `(depends: …)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) dependencies: Vec<String>,
    /// The ids of the tasks that depend on this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) dependents: Vec<String>,
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
    pub(crate) error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) skip_reason: Option<String>,
    /// How many times the task was restarted after a failure.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) retry_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) execution_constraints: Option<ExecutionConstraints>,
    /// orch: who runs the task while it is in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) orch_run: Option<OrchRun>,
    /// orch: the commit that completed the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// orch: how many times the task was started.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// orch, verification steps only: `false` for a `(non-blocking)` step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) blocking: Option<bool>,
    /// orch: tokens and cost of its attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) orch_usage: Option<OrchUsage>,
    /// orch: the question its agent asked (`orch task ask`), while the task needs input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) orch_question: Option<String>,
    /// orch: the questions asked and a person's answers to them (`orch answer`), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) orch_answers: Vec<OrchAnswer>,
    /// orch: a person's messages to the task (`orch say`), oldest first; every next attempt's
    /// prompt holds them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) orch_messages: Vec<OrchMessage>,
    /// orch: the agent its last attempt ran (its plan's, or a fallback while that one was at a
    /// usage limit), by orch's record of the launch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) orch_agent: Option<String>,
    /// Fields someone else added; kept as found.
    #[serde(flatten)]
    pub(crate) extra: Map<String, Value>,
}

/// One entry of `runs`, filled by the supervisor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RunRecord {
    pub(crate) run_id: String,
    pub(crate) started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) completed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tasks_completed: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tasks_failed: Option<u32>,
    #[serde(flatten)]
    pub(crate) extra: Map<String, Value>,
}

/// Counts of tasks by status (`summary`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Summary {
    #[serde(rename = "totalTasks")]
    pub(crate) total_tasks: u32,
    pub(crate) completed: u32,
    pub(crate) pending: u32,
    pub(crate) failed: u32,
    pub(crate) skipped: u32,
    pub(crate) in_progress: u32,
    /// orch: tasks waiting for an answer to their agent's question (absent when none).
    #[serde(rename = "needsInput", skip_serializing_if = "is_zero")]
    pub(crate) needs_input: u32,
}

/// A whole `status.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDoc {
    #[serde(rename = "_comment", default, skip_serializing_if = "Option::is_none")]
    pub(crate) comment: Option<String>,
    /// The plan file, relative to the repository root.
    pub(crate) plan_path: String,
    /// The plan's title.
    pub(crate) plan_name: String,
    pub(crate) created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_updated_at: Option<String>,
    /// The label of the first phase with unfinished tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) current_phase: Option<String>,
    /// The plan's tasks (never its verification steps), in plan order.
    pub tasks: Vec<TaskEntry>,
    #[serde(default)]
    pub(crate) runs: Vec<RunRecord>,
    /// Counts over `tasks` only.
    #[serde(default)]
    pub(crate) summary: Summary,
    /// orch: the version of orch's additions; 0 in a file orch never wrote.
    #[serde(default)]
    pub(crate) orch_schema_version: u32,
    /// orch: the plan's name in `plans.toml`.
    #[serde(default)]
    pub(crate) orch_plan: String,
    /// orch: the verification steps (`V<N>`), which the schema's id pattern keeps out of `tasks`.
    #[serde(default)]
    pub verify_steps: Vec<TaskEntry>,
    /// orch: the plan file this document was last reconciled with, as [`plan_digest`] wrote it.
    /// While it matches the plan file, `orch task` records an outcome without parsing the plan.
    /// orch removes it whenever it reconciles without knowing the plan file's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) orch_plan_digest: Option<String>,
    /// Fields someone else added; kept as found.
    #[serde(flatten)]
    pub(crate) extra: Map<String, Value>,
    /// orch: the plan-mode agent (`orchPlanAgent`). After `extra`, as when it lived there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) orch_plan_agent: Option<OrchPlanAgent>,
    /// orch: the plan's last merge (`orchMerge`). After `extra`, as when it lived there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) orch_merge: Option<OrchMerge>,
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
pub(crate) fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
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
        crate::plan::hash_bytes(bytes)
    )
}

impl super::index::Keyed for TaskEntry {
    fn id(&self) -> &str {
        &self.id
    }
}

impl TaskEntry {
    /// A fresh entry with only the id and status filled (the caller refreshes the rest).
    pub(crate) fn from_plan_parts(task: &Task) -> Self {
        Self {
            id: task.id.clone(),
            status: super::with_plan(TaskStatus::Pending, task),
            ..Self::default()
        }
    }
}

impl StatusDoc {
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
    pub(crate) fn entry_mut(&mut self, id: &str) -> Option<&mut TaskEntry> {
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
    pub(crate) fn entries(&self) -> impl Iterator<Item = &TaskEntry> {
        self.tasks.iter().chain(self.verify_steps.iter())
    }
}

/// The plan's human-readable name: its title, or its file stem (never empty: the schema says so).
pub(crate) fn plan_name(plan: &Plan) -> String {
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
