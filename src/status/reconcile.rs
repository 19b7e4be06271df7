//! Bringing a recorded status document in line with the current plan.

use std::collections::HashSet;

use serde::Serialize;

use crate::plan::{IdMap, Plan, SequentialGroup, Task, TaskKind, id_map};

use chrono::{DateTime, Utc};

use super::model::{
    DEFAULT_COMMENT, ExecutionConstraints, ORCH_SCHEMA_VERSION, StatusDoc, TaskEntry, TaskStatus,
    plan_name, timestamp,
};
use super::summary::refresh_derived;

/// What [`reconcile`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Ids new in the plan, added to the document, in plan order.
    pub added: Vec<String>,
    /// Ids no longer in the plan, removed from the document, with their last status.
    pub(crate) removed: Vec<(String, TaskStatus)>,
    /// Whether the document changed at all (including refreshed descriptions and counts).
    pub changed: bool,
}

/// What the plan defines for its entries, computed once per reconcile: phase labels, each
/// task's dependents and sequential group. Keeps [`reconcile`] linear in the size of the plan.
pub(super) struct PlanFacts<'p> {
    pub(crate) labels: IdMap<u32, String>,
    /// Index in `plan.tasks` by id (the first, should an id repeat).
    pub(crate) index: IdMap<&'p str, usize>,
    /// `dependents[i]`: ids of the tasks whose `(depends: …)` names `plan.tasks[i]`, in plan order.
    pub(crate) dependents: Vec<Vec<&'p str>>,
    /// The first sequential group naming each id.
    pub(crate) group: IdMap<&'p str, &'p SequentialGroup>,
}

impl<'p> PlanFacts<'p> {
    pub(crate) fn of(plan: &'p Plan) -> Self {
        let labels = plan
            .phases
            .iter()
            .rev()
            .map(|p| (p.number, p.label()))
            .collect();
        let mut index = id_map(plan.tasks.len());
        for (i, t) in plan.tasks.iter().enumerate() {
            index.entry(t.id.as_str()).or_insert(i);
        }
        let mut dependents: Vec<Vec<&str>> = vec![Vec::new(); plan.tasks.len()];
        for t in &plan.tasks {
            for d in t.dependencies() {
                if let Some(&i) = index.get(d.as_str()) {
                    let list = &mut dependents[i];
                    if list.last() != Some(&t.id.as_str()) {
                        list.push(t.id.as_str());
                    }
                }
            }
        }
        let mut group = id_map(0);
        for g in &plan.sequential {
            for id in &g.tasks {
                group.entry(id.as_str()).or_insert(g);
            }
        }
        Self {
            labels,
            index,
            dependents,
            group,
        }
    }

    fn label(&self, task: &Task) -> String {
        self.labels
            .get(&task.phase)
            .cloned()
            .unwrap_or_else(|| format!("Phase {}", task.phase))
    }
}

/// [`TaskEntry::refresh_from_plan`] with the facts computed once; says whether anything changed.
fn refresh(e: &mut TaskEntry, facts: &PlanFacts<'_>, i: usize, task: &Task) -> bool {
    let mut changed = false;
    match facts.labels.get(&task.phase) {
        Some(label) if e.phase == *label => {}
        _ => {
            let label = facts.label(task);
            if e.phase != label {
                e.phase = label;
                changed = true;
            }
        }
    }
    if task.description.trim().is_empty() {
        let d = match task.kind {
            TaskKind::Task => format!("Task {}", task.id),
            TaskKind::Verify => format!("Verify phase {}", task.phase),
        };
        if e.description != d {
            e.description = d;
            changed = true;
        }
    } else if e.description != task.description {
        e.description.clone_from(&task.description);
        changed = true;
    }
    if e.dependencies != task.dependencies() {
        e.dependencies = task.dependencies().to_vec();
        changed = true;
    }
    let deps = &facts.dependents[i];
    if e.dependents.len() != deps.len() || e.dependents.iter().zip(deps).any(|(a, b)| a != b) {
        e.dependents = deps.iter().map(|s| (*s).to_string()).collect();
        changed = true;
    }
    match facts.group.get(task.id.as_str()) {
        Some(g) => {
            let reason = (!g.reason.is_empty()).then_some(&g.reason);
            let same = e.execution_constraints.as_ref().is_some_and(|c| {
                c.sequential
                    && c.sequential_group.as_ref() == Some(&g.label)
                    && c.reason.as_ref() == reason
            });
            if !same {
                // Keep fields someone else added to the constraints.
                let extra = e
                    .execution_constraints
                    .take()
                    .map(|c| c.extra)
                    .unwrap_or_default();
                e.execution_constraints = Some(ExecutionConstraints {
                    sequential: true,
                    sequential_group: Some(g.label.clone()),
                    reason: reason.cloned(),
                    extra,
                });
                changed = true;
            }
        }
        None => {
            if e.execution_constraints.take().is_some() {
                changed = true;
            }
        }
    }
    let blocking = match task.kind {
        TaskKind::Verify => Some(task.blocking),
        TaskKind::Task => None,
    };
    if e.blocking != blocking {
        e.blocking = blocking;
        changed = true;
    }
    changed
}

/// The status of `task` recorded as `recorded`, with the plan laid over it: a pending task
/// marked `[x]` in the plan is completed. The one place that says what a `[x]` means (the
/// reconciled document, and the supervisor's facts of a task, `effects::facts_of`).
pub(crate) fn with_plan(recorded: TaskStatus, task: &Task) -> TaskStatus {
    match recorded {
        TaskStatus::Pending if task.done => TaskStatus::Completed,
        s => s,
    }
}

/// [`refresh`], and a pending task marked `[x]` completed; says whether anything changed.
fn refresh_entry(e: &mut TaskEntry, facts: &PlanFacts<'_>, i: usize, task: &Task) -> bool {
    let mut changed = refresh(e, facts, i, task);
    let status = with_plan(e.status, task);
    if status != e.status {
        e.status = status;
        changed = true;
    }
    changed
}

/// [`reconcile`]'s entries for a document whose entries are not the plan's in plan order: each
/// plan task's recorded entry found by id (the first of an id), refreshed, put in plan order;
/// new ones added, those gone removed (both in `report`). Says whether anything changed.
fn match_by_id(
    doc: &mut StatusDoc,
    plan: &Plan,
    facts: &PlanFacts<'_>,
    report: &mut ReconcileReport,
) -> bool {
    let mut changed = false;
    // Each plan task's recorded entry, with where it was (false: `tasks`, true: `verifySteps`).
    let old_tasks = std::mem::take(&mut doc.tasks);
    let old_verify = std::mem::take(&mut doc.verify_steps);
    let mut found: Vec<Option<(TaskEntry, bool, usize)>> = Vec::new();
    found.resize_with(plan.tasks.len(), || None);
    let mut removed_order: Vec<TaskEntry> = Vec::new();
    let mut removed_ids: HashSet<String> = HashSet::new();
    let tagged = old_tasks
        .into_iter()
        .enumerate()
        .map(|(i, e)| (e, false, i))
        .chain(
            old_verify
                .into_iter()
                .enumerate()
                .map(|(i, e)| (e, true, i)),
        );
    for (e, in_verify, at) in tagged {
        match facts.index.get(e.id.as_str()) {
            Some(&i) if found[i].is_none() => found[i] = Some((e, in_verify, at)),
            // A duplicate id in the file: the first entry wins.
            Some(_) => changed = true,
            None => {
                if removed_ids.insert(e.id.clone()) {
                    removed_order.push(e);
                } else {
                    changed = true;
                }
            }
        }
    }

    for (i, (task, slot)) in plan.tasks.iter().zip(found).enumerate() {
        let in_verify = task.kind == TaskKind::Verify;
        let target_len = if in_verify {
            doc.verify_steps.len()
        } else {
            doc.tasks.len()
        };
        let entry = match slot {
            Some((mut e, was_verify, at)) => {
                if was_verify != in_verify || at != target_len {
                    changed = true;
                }
                changed |= refresh_entry(&mut e, facts, i, task);
                e
            }
            None => {
                report.added.push(task.id.clone());
                changed = true;
                let mut e = TaskEntry::from_plan_parts(task);
                refresh(&mut e, facts, i, task);
                e
            }
        };
        if in_verify {
            doc.verify_steps.push(entry);
        } else {
            doc.tasks.push(entry);
        }
    }
    for e in removed_order {
        report.removed.push((e.id, e.status));
        changed = true;
    }
    changed
}

/// Makes `doc` follow `plan`: adds new tasks and verification steps (pending, or completed when
/// `[x]`), removes those gone from the plan, keeps the recorded outcome of the others while
/// refreshing what the plan defines, orders both arrays in plan file order, completes pending
/// tasks marked `[x]`, and refreshes `planName`, `summary` and `currentPhase`. When it changes
/// anything, it drops `orchPlanDigest` (the document no longer follows the plan file named
/// there); [`super::update_with_digest`] records the new one.
///
/// Linear in the size of the plan and the document.
pub fn reconcile(doc: &mut StatusDoc, plan: &Plan) -> ReconcileReport {
    let mut report = ReconcileReport::default();
    let facts = PlanFacts::of(plan);
    let mut changed = false;
    // A plan that repeats an id (an invalid plan, which only the fuzz tests and tolerant
    // readers reconcile) gets a fresh entry for each repeat every time: whether that changed
    // the document is then told by comparing it whole, as the only exact answer.
    let before = (facts.index.len() != plan.tasks.len()).then(|| doc.clone());

    // The usual case, a document that lists the plan's entries in plan order, each in its
    // array: refreshed in place (moving every entry twice made reconciling a large document
    // several times slower). Otherwise the entries are matched with the plan's by id.
    let in_order = {
        let (mut t, mut v) = (doc.tasks.iter(), doc.verify_steps.iter());
        plan.tasks.iter().all(|task| {
            let next = if task.kind == TaskKind::Verify {
                v.next()
            } else {
                t.next()
            };
            next.is_some_and(|e| e.id == task.id)
        }) && t.next().is_none()
            && v.next().is_none()
    };
    if before.is_none() && in_order {
        let (mut t, mut v) = (doc.tasks.iter_mut(), doc.verify_steps.iter_mut());
        for (i, task) in plan.tasks.iter().enumerate() {
            let next = if task.kind == TaskKind::Verify {
                v.next()
            } else {
                t.next()
            };
            if let Some(e) = next {
                changed |= refresh_entry(e, &facts, i, task);
            }
        }
    } else {
        changed |= match_by_id(doc, plan, &facts, &mut report);
    }
    doc.reindex();

    let name = plan_name(plan);
    if doc.plan_name != name {
        doc.plan_name = name;
        changed = true;
    }
    if doc.orch_schema_version < ORCH_SCHEMA_VERSION {
        doc.orch_schema_version = ORCH_SCHEMA_VERSION;
        changed = true;
    }
    let (summary, phase) = (doc.summary, doc.current_phase.take());
    refresh_derived(doc);
    changed |= doc.summary != summary || doc.current_phase != phase;
    if let Some(before) = before {
        changed = *doc != before;
    }
    if changed {
        doc.orch_plan_digest = None;
    }
    report.changed = changed;
    report
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
            orch_schema_version: ORCH_SCHEMA_VERSION,
            orch_plan: orch_name.to_string(),
            ..Self::default()
        };
        // Every task is new to an empty document: reconciling adds them all, in plan order.
        reconcile(&mut doc, plan);
        doc
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::status::test_support::{at, phase, plan, small_plan, task, verify};
    use crate::status::{Transition, TransitionOptions, apply};

    fn doc() -> StatusDoc {
        let now = at(0);
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

    /// A document in plan order (refreshed in place) and the same one out of order (matched by
    /// id) reconcile to the same document, for a plan that changes what it defines of each
    /// entry.
    #[test]
    fn in_place_and_by_id_agree() {
        let mut p = small_plan();
        p.tasks[0].description = "Create the skeleton".into();
        p.tasks[1].depends = None;
        p.tasks[2].blocking = false;
        p.tasks[3].done = true;
        p.sequential[0].reason = String::new();
        let mut in_order = doc();
        let mut shuffled = doc();
        shuffled.tasks.reverse();
        let a = reconcile(&mut in_order, &p);
        let b = reconcile(&mut shuffled, &p);
        assert!(a.changed && b.changed);
        assert_eq!(in_order, shuffled);
        assert_eq!(
            in_order.entry("2.1").expect("2.1").status,
            TaskStatus::Completed
        );
        let mut again = in_order.clone();
        assert!(!reconcile(&mut again, &p).changed);
        assert_eq!(again, in_order);
    }
}
