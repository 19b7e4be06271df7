//! Bringing a recorded status document in line with the current plan.

use std::collections::HashMap;

use serde::Serialize;

use crate::plan::{Plan, TaskKind};

use super::model::{ORCH_SCHEMA_VERSION, StatusDoc, TaskEntry, TaskStatus, plan_name};
use super::summary::refresh_derived;

/// What [`reconcile`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Ids new in the plan, added to the document, in plan order.
    pub added: Vec<String>,
    /// Ids no longer in the plan, removed from the document, with their last status.
    pub removed: Vec<(String, TaskStatus)>,
    /// Whether the document changed at all (including refreshed descriptions and counts).
    pub changed: bool,
}

/// Makes `doc` follow `plan`: adds new tasks and verification steps (pending, or completed when
/// `[x]`), removes those gone from the plan, keeps the recorded outcome of the others while
/// refreshing what the plan defines, orders both arrays in plan file order, completes pending
/// tasks marked `[x]`, and refreshes `planName`, `summary` and `currentPhase`.
pub fn reconcile(doc: &mut StatusDoc, plan: &Plan) -> ReconcileReport {
    let before = doc.clone();
    let mut report = ReconcileReport::default();

    let mut old: HashMap<String, TaskEntry> = HashMap::new();
    let mut old_order: Vec<String> = Vec::new();
    for e in doc.tasks.drain(..).chain(doc.verify_steps.drain(..)) {
        if !old.contains_key(&e.id) {
            old_order.push(e.id.clone());
            old.insert(e.id.clone(), e);
        }
        // A duplicate id in the file: the first entry wins.
    }

    for task in &plan.tasks {
        let entry = match old.remove(&task.id) {
            Some(mut e) => {
                e.refresh_from_plan(plan, task);
                if task.done && e.status == TaskStatus::Pending {
                    e.status = TaskStatus::Completed;
                }
                e
            }
            None => {
                report.added.push(task.id.clone());
                TaskEntry::from_plan(plan, task)
            }
        };
        match task.kind {
            TaskKind::Task => doc.tasks.push(entry),
            TaskKind::Verify => doc.verify_steps.push(entry),
        }
    }
    for id in old_order {
        if let Some(e) = old.remove(&id) {
            report.removed.push((id, e.status));
        }
    }

    doc.plan_name = plan_name(plan);
    if doc.orch_schema_version < ORCH_SCHEMA_VERSION {
        doc.orch_schema_version = ORCH_SCHEMA_VERSION;
    }
    refresh_derived(doc);
    report.changed = *doc != before;
    report
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::status::test_support::{phase, plan, small_plan, task, verify};
    use crate::status::{Transition, TransitionOptions, apply};

    fn doc() -> StatusDoc {
        let now = Utc
            .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .expect("valid date");
        let mut d = StatusDoc::new(&small_plan(), "docs/plans/demo.md", "demo", now);
        let o = TransitionOptions {
            note: Some("kept".into()),
            commit: Some("c0ffee".into()),
            ..TransitionOptions::default()
        };
        apply(&mut d, "1.1", Transition::Start, &o, now).expect("start");
        apply(&mut d, "1.1", Transition::Done, &o, now).expect("done");
        apply(&mut d, "1.2", Transition::Start, &o, now).expect("start");
        apply(&mut d, "1.2", Transition::Fail, &o, now).expect("fail");
        d.entry_mut("1.1")
            .expect("1.1")
            .extra
            .insert("findingsPath".into(), json!("f.md"));
        d
    }

    #[test]
    fn same_plan_changes_nothing() {
        let mut d = doc();
        let report = reconcile(&mut d, &small_plan());
        assert_eq!(report, ReconcileReport::default());
    }

    #[test]
    fn adds_removes_keeps_and_reorders() {
        let mut d = doc();
        let kept_11 = d.entry("1.1").expect("1.1").clone();
        // The new plan: 1.3 and V2 added, 2.1 and V1 removed, 1.2 moved after 1.3,
        // 1.1's description changed, title changed, a new phase title.
        let mut x = task("3.1", 3, "Already done by hand", &[]);
        x.done = true;
        let new_plan = plan(
            "Demo Plan v2",
            vec![phase(1, "Setup"), phase(2, "Construct"), phase(3, "Ship")],
            vec![
                task("1.1", 1, "Create the skeleton", &[]),
                task("1.3", 1, "New step", &["1.1"]),
                task("1.2", 1, "Add config", &["1.3"]),
                task("2.2", 2, "Write docs", &[]),
                verify(2, "docs build", false),
                x,
            ],
        );
        let report = reconcile(&mut d, &new_plan);
        assert_eq!(report.added, ["1.3", "V2", "3.1"]);
        assert_eq!(
            report.removed,
            [
                ("2.1".to_string(), TaskStatus::Pending),
                ("V1".to_string(), TaskStatus::Pending)
            ]
        );
        assert!(report.changed);

        let ids: Vec<&str> = d.tasks.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1.1", "1.3", "1.2", "2.2", "3.1"], "plan file order");
        assert_eq!(d.verify_steps.len(), 1);
        assert_eq!(d.verify_steps[0].id, "V2");
        assert_eq!(d.verify_steps[0].blocking, Some(false));
        assert_eq!(d.plan_name, "Demo Plan v2");

        // Kept outcome, refreshed plan-defined fields.
        let e = d.entry("1.1").expect("1.1");
        assert_eq!(e.status, TaskStatus::Completed);
        assert_eq!(e.completed_at, kept_11.completed_at);
        assert_eq!(e.notes.as_deref(), Some("kept"));
        assert_eq!(e.commit.as_deref(), Some("c0ffee"));
        assert_eq!(e.attempts, 1);
        assert_eq!(e.extra["findingsPath"], "f.md");
        assert_eq!(e.description, "Create the skeleton");
        assert_eq!(e.dependents, ["1.3"]);
        assert_eq!(
            e.execution_constraints, None,
            "no longer in a sequential group"
        );
        let e = d.entry("1.2").expect("1.2");
        assert_eq!(e.status, TaskStatus::Failed);
        assert_eq!(e.dependencies, ["1.3"]);
        assert_eq!(d.entry("2.2").expect("2.2").phase, "Phase 2: Construct");
        assert_eq!(d.entry("3.1").expect("3.1").status, TaskStatus::Completed);
        assert_eq!(d.entry("1.3").expect("1.3").status, TaskStatus::Pending);
        assert_eq!(d.summary.total_tasks, 5);
        assert_eq!(d.current_phase.as_deref(), Some("Phase 1: Setup"));
    }

    #[test]
    fn pending_task_marked_done_in_the_plan_completes() {
        let mut d = doc();
        let mut p = small_plan();
        p.tasks
            .iter_mut()
            .filter(|t| t.id == "2.1" || t.id == "1.2")
            .for_each(|t| t.done = true);
        let report = reconcile(&mut d, &p);
        assert!(report.changed);
        assert_eq!(d.entry("2.1").expect("2.1").status, TaskStatus::Completed);
        assert_eq!(
            d.entry("1.2").expect("1.2").status,
            TaskStatus::Failed,
            "only pending tasks follow `[x]`"
        );
    }
}
