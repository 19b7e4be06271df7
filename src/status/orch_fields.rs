//! orch's typed fields of the status document beside the earlier system's: `orchMerge` and
//! `orchPlanAgent`. Each keeps the fields someone else added, and the keys keep their order on
//! disk.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// `orchMerge`: the last merge of the plan by `orch merge` or the merge train. Keys keep this order
/// on disk; the optional ones are written only by the outcome they belong to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct OrchMerge {
    /// `merged`, `conflict` or `verify_failed`.
    pub(crate) state: String,
    pub(crate) target: String,
    /// `merge`, `squash` or `ff-only`.
    pub(crate) strategy: String,
    /// The target's tip after the step (merged), or when it stopped.
    pub(crate) commit: String,
    /// Conflicting paths (empty unless `conflict`).
    pub(crate) files: Vec<String>,
    pub(crate) branch: String,
    /// The plan branch's tip (`null` when the branch did not exist).
    pub(crate) branch_tip: Option<String>,
    pub(crate) at: String,
    /// `merged`: the archive tag on the branch tip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) archive_tag: Option<String>,
    /// `merged`: the target's tip the merge was built on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) previous: Option<String>,
    /// `merged`: how often the step was rebuilt because the target moved (absent when never).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rebuilt: Option<u32>,
    /// `verify_failed`: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// `verify_failed`: the verify command's log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) log: Option<String>,
    /// The `resolve` agent whose resolution (a merge commit on the plan branch) made the plan
    /// merge (`merged`), or whose resolution failed (`conflict`, `verify_failed`: `reason` says
    /// why); absent when no resolver ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resolved_by: Option<String>,
    /// Fields someone else added; kept as found.
    #[serde(flatten)]
    pub(crate) extra: Map<String, Value>,
}

impl OrchMerge {
    /// Whether the record says the plan was merged.
    pub(crate) fn is_merged(&self) -> bool {
        self.state == "merged"
    }
}

/// `orchPlanAgent`: the plan-mode agent of the plan (one agent for all its tasks), so a restarted
/// `orch up` can tell whether it still runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct OrchPlanAgent {
    /// 0 for a batch job.
    pub(crate) pid: u32,
    /// A local agent: field 22 of `/proc/<pid>/stat`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) process_start_time: Option<u64>,
    /// A batch job: where it runs (`slurm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) executor: Option<String>,
    /// A batch job: `Some(None)` (written `null`) before its submission, `Some(Some(id))` after;
    /// `None` (absent) for a local agent.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_present"
    )]
    pub(crate) job_id: Option<Option<String>>,
    pub(crate) started_at: String,
    /// Fields someone else added; kept as found.
    #[serde(flatten)]
    pub(crate) extra: Map<String, Value>,
}

/// A field that is present (even as `null`) is `Some`; with `default`, an absent one is `None`.
fn de_present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::super::model::StatusDoc;
    use crate::status::test_support::small_plan;

    /// `orchPlanAgent` and `orchMerge` are typed but written as when they were raw JSON in `extra`:
    /// same keys, same order, unknown fields kept.
    #[test]
    fn typed_orch_fields_keep_the_bytes_on_disk() {
        let t0 = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("valid date");
        let base = serde_json::to_value(StatusDoc::new(&small_plan(), "p.md", "p", t0))
            .expect("serializes");
        let local =
            json!({"pid": 42, "processStartTime": 7, "startedAt": "2026-01-02T03:04:05.000Z"});
        let batch = json!({"pid": 0, "executor": "slurm", "jobId": null, "startedAt": "t"});
        let merged = json!({
            "state": "merged", "target": "main", "strategy": "merge", "commit": "c", "files": [],
            "branch": "orch/p", "branchTip": "b", "at": "t", "archiveTag": "orch/archive/p/b",
            "previous": "a", "rebuilt": 1, "note": "kept"
        });
        let failed = json!({
            "state": "verify_failed", "target": "main", "strategy": "squash", "commit": "c",
            "files": [], "branch": "orch/p", "branchTip": null, "at": "t", "reason": "exit 1",
            "log": "/l/merge-verify.log"
        });
        for (agent, merge) in [(&local, &merged), (&batch, &failed)] {
            let mut old = base.clone();
            let obj = old.as_object_mut().expect("object");
            obj.insert("orchWorktree".into(), json!({"branch": "orch/p"}));
            obj.insert("orchPlanAgent".into(), agent.clone());
            obj.insert("orchMerge".into(), merge.clone());
            let bytes = serde_json::to_vec_pretty(&old).expect("bytes");
            let doc: StatusDoc = serde_json::from_slice(&bytes).expect("parses");
            assert!(doc.orch_plan_agent.is_some() && doc.orch_merge.is_some());
            assert!(
                !doc.extra.contains_key("orchMerge") && !doc.extra.contains_key("orchPlanAgent")
            );
            let again = serde_json::to_vec_pretty(&doc).expect("bytes");
            assert_eq!(
                String::from_utf8_lossy(&again),
                String::from_utf8_lossy(&bytes)
            );
        }
        let doc: StatusDoc = serde_json::from_value({
            let mut v = base.clone();
            v["orchPlanAgent"] = batch.clone();
            v["orchMerge"] = merged.clone();
            v
        })
        .expect("parses");
        let agent = doc.orch_plan_agent.expect("agent");
        assert_eq!(agent.job_id, Some(None));
        assert_eq!(agent.process_start_time, None);
        let merge = doc.orch_merge.expect("merge");
        assert!(merge.is_merged());
        assert_eq!(merge.rebuilt, Some(1));
        assert_eq!(merge.extra["note"], "kept");
    }
}
