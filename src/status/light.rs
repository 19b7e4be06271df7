//! Whether a status file already follows a plan, read without its entries' outcomes: what
//! lets `orch task` splice one entry into a file that carries no current `orchPlanDigest` (one
//! `orch up` never wrote, or written before the plan file was last touched) instead of reading
//! and printing the whole document.
//!
//! serde_json reads what [`reconcile`] looks at (the ids, their order, what the plan defines of
//! each entry, the statuses, the name, version and derived fields) and skips the rest; the real
//! [`reconcile`] then runs on that light document, so its answer is the whole document's.

use serde::Deserialize;
use serde_json::Map;

use super::index::EntryIndex;
use super::model::{ExecutionConstraints, StatusDoc, Summary, TaskEntry, TaskStatus};
use super::reconcile::reconcile;
use crate::plan::Plan;

/// The fields of a document [`reconcile`] reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LightDoc {
    plan_path: String,
    plan_name: String,
    #[serde(default)]
    current_phase: Option<String>,
    tasks: Vec<LightEntry>,
    #[serde(default)]
    summary: Summary,
    #[serde(default)]
    orch_schema_version: u32,
    #[serde(default)]
    orch_plan: String,
    #[serde(default)]
    verify_steps: Vec<LightEntry>,
}

/// The fields of an entry [`reconcile`] reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LightEntry {
    id: String,
    #[serde(default)]
    phase: String,
    description: String,
    status: TaskStatus,
    #[serde(default)]
    dependencies: Vec<String>,
    #[serde(default)]
    dependents: Vec<String>,
    #[serde(default)]
    execution_constraints: Option<ExecutionConstraints>,
    #[serde(default)]
    blocking: Option<bool>,
}

impl LightEntry {
    fn entry(self) -> TaskEntry {
        TaskEntry {
            id: self.id,
            phase: self.phase,
            description: self.description,
            status: self.status,
            dependencies: self.dependencies,
            dependents: self.dependents,
            started_at: None,
            completed_at: None,
            duration: None,
            error: None,
            notes: None,
            skip_reason: None,
            retry_count: 0,
            last_error: None,
            execution_constraints: self.execution_constraints,
            orch_run: None,
            commit: None,
            attempts: 0,
            blocking: self.blocking,
            orch_usage: None,
            extra: Map::new(),
        }
    }
}

/// Whether the document `bytes` is named `plan_path_rel` and `orch_name` and reconciling it with
/// `plan` would change nothing. `false` as well when it does not read.
pub(crate) fn follows(bytes: &[u8], plan: &Plan, plan_path_rel: &str, orch_name: &str) -> bool {
    let Ok(light) = serde_json::from_slice::<LightDoc>(bytes) else {
        return false;
    };
    if light.plan_path != plan_path_rel || light.orch_plan != orch_name {
        return false;
    }
    let mut doc = StatusDoc {
        comment: None,
        plan_path: light.plan_path,
        plan_name: light.plan_name,
        created_at: String::new(),
        last_updated_at: None,
        current_phase: light.current_phase,
        tasks: light.tasks.into_iter().map(LightEntry::entry).collect(),
        runs: Vec::new(),
        summary: light.summary,
        orch_schema_version: light.orch_schema_version,
        orch_plan: light.orch_plan,
        verify_steps: light
            .verify_steps
            .into_iter()
            .map(LightEntry::entry)
            .collect(),
        orch_plan_digest: None,
        extra: Map::new(),
        orch_plan_agent: None,
        orch_merge: None,
        index: EntryIndex::default(),
    };
    !reconcile(&mut doc, plan).changed
}
