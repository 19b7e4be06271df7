//! Whether a status file already follows a plan, read without its entries' outcomes: what
//! lets `orch task` splice one entry into a file that carries no current `orchPlanDigest` (one
//! `orch up` never wrote, or written before the plan file was last touched) instead of reading
//! and printing the whole document.
//!
//! serde_json reads, borrowed, what [`reconcile`] looks at (the ids and their order, what the
//! plan defines of each entry, the statuses, the name, version and derived fields) and skips
//! the rest; [`follows`] then asks what [`reconcile`] asks, and answers "nothing to change"
//! exactly when it would (a property test runs both on the same documents).

use std::borrow::Cow;

use serde::Deserialize;

use super::model::{
    ExecutionConstraints, ORCH_SCHEMA_VERSION, Summary, TaskStatus, phase_number, plan_name,
};
use super::reconcile::PlanFacts;
#[cfg(doc)]
use super::reconcile::reconcile;
use crate::plan::{Plan, Task, TaskKind};

/// The fields of a document [`reconcile`] reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LightDoc<'a> {
    #[serde(borrow)]
    plan_path: Cow<'a, str>,
    #[serde(borrow)]
    plan_name: Cow<'a, str>,
    #[serde(default, borrow)]
    current_phase: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tasks: Vec<LightEntry<'a>>,
    #[serde(default)]
    summary: Summary,
    #[serde(default)]
    orch_schema_version: u32,
    #[serde(default, borrow)]
    orch_plan: Cow<'a, str>,
    #[serde(default, borrow)]
    verify_steps: Vec<LightEntry<'a>>,
}

/// The fields of an entry [`reconcile`] reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LightEntry<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow)]
    phase: Cow<'a, str>,
    #[serde(borrow)]
    description: Cow<'a, str>,
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

/// Whether the document `bytes` is named `plan_path_rel` and `orch_name` and reconciling it with
/// `plan` would change nothing. `false` as well when it does not read.
pub(crate) fn follows(bytes: &[u8], plan: &Plan, plan_path_rel: &str, orch_name: &str) -> bool {
    let Ok(doc) = serde_json::from_slice::<LightDoc<'_>>(bytes) else {
        return false;
    };
    let facts = PlanFacts::of(plan);
    // A plan that repeats an id gets fresh entries each time.
    if doc.plan_path != plan_path_rel
        || doc.orch_plan != orch_name
        || facts.index.len() != plan.tasks.len()
        || doc.orch_schema_version < ORCH_SCHEMA_VERSION
        || doc.plan_name != plan_name(plan)
    {
        return false;
    }
    // The plan's entries in plan order, each in its array, each as the plan defines it.
    let (mut tasks, mut verify) = (doc.tasks.iter(), doc.verify_steps.iter());
    for (i, task) in plan.tasks.iter().enumerate() {
        let next = match task.kind {
            TaskKind::Verify => verify.next(),
            TaskKind::Task => tasks.next(),
        };
        if !next.is_some_and(|e| e.id == task.id && entry_follows(e, &facts, i, task)) {
            return false;
        }
    }
    if tasks.next().is_some() || verify.next().is_some() {
        return false;
    }
    // The derived fields as [`super::refresh_derived`] computes them.
    let mut summary = Summary::default();
    for e in &doc.tasks {
        summary.total_tasks += 1;
        *summary.count_mut(e.status) += 1;
    }
    let all = || doc.tasks.iter().chain(&doc.verify_steps).enumerate();
    let key = |e: &LightEntry<'_>| phase_number(&e.phase);
    let current = all()
        .filter(|(_, e)| !e.status.is_finished())
        .min_by_key(|(i, e)| (key(e).unwrap_or(u32::MAX), *i))
        .or_else(|| all().max_by_key(|(i, e)| (key(e).unwrap_or(0), *i)))
        .map(|(_, e)| &e.phase);
    summary == doc.summary && current == doc.current_phase.as_ref()
}

/// Whether reconciling would leave entry `e` of plan task `task` (the `i`th) as it is.
fn entry_follows(e: &LightEntry<'_>, facts: &PlanFacts<'_>, i: usize, task: &Task) -> bool {
    let phase = match facts.labels.get(&task.phase) {
        Some(label) => e.phase == label.as_str(),
        None => e.phase == format!("Phase {}", task.phase),
    };
    let description = if task.description.trim().is_empty() {
        e.description
            == match task.kind {
                TaskKind::Task => format!("Task {}", task.id),
                TaskKind::Verify => format!("Verify phase {}", task.phase),
            }
    } else {
        e.description == task.description.as_str()
    };
    let constraints = match (facts.group.get(task.id.as_str()), &e.execution_constraints) {
        (Some(g), Some(c)) => {
            let reason = (!g.reason.is_empty()).then_some(&g.reason);
            c.sequential
                && c.sequential_group.as_ref() == Some(&g.label)
                && c.reason.as_ref() == reason
        }
        (None, None) => true,
        _ => false,
    };
    let blocking = match task.kind {
        TaskKind::Verify => Some(task.blocking),
        TaskKind::Task => None,
    };
    phase
        && description
        && e.dependencies == task.dependencies()
        && e.dependents.len() == facts.dependents[i].len()
        && e.dependents
            .iter()
            .zip(&facts.dependents[i])
            .all(|(a, b)| a == b)
        && constraints
        && e.blocking == blocking
        && !(task.done && e.status == TaskStatus::Pending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::test_support::{at, phased_plan, printed, small_plan};
    use crate::status::{StatusDoc, TransitionOptions, apply, test_support::TRANSITIONS};

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// On documents made for one plan, changed by transitions, and read with that plan or
        /// another (an edit of what it defines, or of the document's derived fields), `follows`
        /// says "nothing to change" exactly when [`reconcile`] changes nothing.
        #[test]
        fn follows_exactly_when_reconcile_changes_nothing(
            tasks in proptest::collection::vec(1usize..5, 1..4),
            verify in proptest::collection::vec(proptest::bool::ANY, 3),
            steps in proptest::collection::vec((0usize..100, 0usize..5), 0..8),
            edit in 0usize..14,
            at_task in 0usize..100,
        ) {
            let plan = phased_plan(&tasks, &verify);
            let mut doc = StatusDoc::new(&plan, "p.md", "demo", at(0));
            let opts = TransitionOptions { force: true, ..TransitionOptions::default() };
            for (k, (i, t)) in steps.iter().enumerate() {
                let id = plan.tasks[i % plan.tasks.len()].id.clone();
                let _ = apply(&mut doc, &id, TRANSITIONS[*t], &opts, at(k as i64 + 1));
            }
            let mut p = plan.clone();
            let n = at_task % p.tasks.len();
            let (mut path, mut name) = ("p.md", "demo");
            match edit {
                0 => {}
                1 => p.tasks[n].description = "Changed".into(),
                2 => p.tasks[n].description = " ".into(),
                3 => p.tasks[n].done = true,
                4 => p.tasks[n].depends = Some(vec!["1.1".into()]),
                5 => { p.tasks.remove(n); }
                6 => { let t = p.tasks.remove(n); p.tasks.push(t); }
                7 => p.tasks[n].blocking = !p.tasks[n].blocking,
                8 => p.title = "Another".into(),
                9 => p.sequential.push(crate::plan::SequentialGroup {
                    label: "g".into(), tasks: vec![p.tasks[n].id.clone()], reason: String::new(), line: 1,
                }),
                10 => doc.summary.pending += 1,
                11 => doc.current_phase = Some("Phase 9: Nine".into()),
                12 => path = "q.md",
                _ => name = "other",
            }
            let text = printed(&doc);
            let want = path == "p.md" && name == "demo" && !crate::status::reconcile(&mut doc.clone(), &p).changed;
            proptest::prop_assert_eq!(follows(&text, &p, path, name), want, "edit {}", edit);
        }
    }

    #[test]
    fn a_document_of_the_plan_follows_it() {
        let plan = small_plan();
        let doc = StatusDoc::new(&plan, "p.md", "demo", at(0));
        assert!(follows(&printed(&doc), &plan, "p.md", "demo"));
        assert!(!follows(b"{}", &plan, "p.md", "demo"));
    }
}
