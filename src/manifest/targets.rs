//! Checks that need more than the manifest text: dependency targets against the parsed plan
//! files, and cycles between plans.

use std::collections::HashMap;

use super::model::{DepTarget, Dependency, Manifest};
use crate::diagnostic::Diagnostic;

/// The shape of a parsed plan file, as far as dependencies on it are concerned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PlanShape {
    /// Phase numbers in file order.
    pub(crate) phases: Vec<u32>,
    /// Task ids (`N.M`, `N.M.K`; `T014` in a Spec Kit plan) in file order.
    pub(crate) tasks: Vec<String>,
    /// The stories of a Spec Kit plan's tasks (`US1`), each once, in file order.
    pub(crate) stories: Vec<String>,
}

impl PlanShape {
    /// The shape of a parsed plan (verification steps are not dependency targets).
    pub(crate) fn of(plan: &crate::plan::Plan) -> Self {
        Self {
            phases: plan.phases.iter().map(|p| p.number).collect(),
            tasks: plan
                .tasks
                .iter()
                .filter(|t| t.kind == crate::plan::TaskKind::Task)
                .map(|t| t.id.clone())
                .collect(),
            stories: plan.tasks.iter().fold(Vec::new(), |mut out, t| {
                for s in t.speckit.iter().flat_map(|s| &s.stories) {
                    if !out.contains(s) {
                        out.push(s.clone());
                    }
                }
                out
            }),
        }
    }
}

fn at(manifest: &Manifest, dep: &Dependency, message: String) -> Diagnostic {
    Diagnostic::error(&manifest.path, dep.line, message).with_column(dep.column)
}

/// Checks every `plan:N`, `plan:N.M` and `plan:US1` dependency against the phases and tasks of the plan it
/// names. `shapes` maps plan names to their parsed files; plans absent from it (their file failed
/// to parse) are not checked. Cycles are not reported here: [`check_cycles`] does that, and
/// [`load`](super::load) already runs it.
pub(crate) fn check_targets(
    manifest: &Manifest,
    shapes: &HashMap<String, PlanShape>,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for plan in &manifest.plans {
        for dep in &plan.depends_on {
            let Some(shape) = shapes.get(&dep.plan) else {
                continue;
            };
            match &dep.target {
                DepTarget::Plan => {}
                DepTarget::Phase(n) => {
                    if !shape.phases.contains(n) {
                        out.push(at(
                            manifest,
                            dep,
                            format!(
                                "plan `{}` has no phase {n} (its phases: {})",
                                dep.plan,
                                list(shape.phases.iter().map(u32::to_string))
                            ),
                        ));
                    }
                }
                DepTarget::Story(story) => {
                    if !shape.stories.contains(story) {
                        let has = if shape.stories.is_empty() {
                            "no task labelled with a story (`[US1]` of a Spec Kit plan)".to_string()
                        } else {
                            format!("stories {}", list(shape.stories.iter().cloned()))
                        };
                        out.push(at(
                            manifest,
                            dep,
                            format!("plan `{}` has no story {story} (it has {has})", dep.plan),
                        ));
                    }
                }
                DepTarget::Task(id) => {
                    if !shape.tasks.contains(id) && crate::plan::is_speckit_id(id) {
                        out.push(at(
                            manifest,
                            dep,
                            format!(
                                "plan `{}` has no task {id} (its tasks: {})",
                                dep.plan,
                                span(&shape.tasks)
                            ),
                        ));
                    } else if !shape.tasks.contains(id) {
                        let phase = id.split('.').next().unwrap_or_default();
                        let prefix = format!("{phase}.");
                        let siblings: Vec<&String> = shape
                            .tasks
                            .iter()
                            .filter(|t| t.starts_with(&prefix))
                            .collect();
                        let detail = if siblings.is_empty() {
                            format!(
                                "and no phase {phase} (its phases: {})",
                                list(shape.phases.iter().map(u32::to_string))
                            )
                        } else {
                            format!(
                                "(tasks of its phase {phase}: {})",
                                list(siblings.into_iter().cloned())
                            )
                        };
                        out.push(at(
                            manifest,
                            dep,
                            format!("plan `{}` has no task {id} {detail}", dep.plan),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// `T001 … T050 (50)`: the first and last of `ids` and how many, or `none`.
fn span(ids: &[String]) -> String {
    match ids {
        [] => "none".into(),
        [one] => one.clone(),
        [first, .., last] => format!("{first} … {last} ({})", ids.len()),
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// Finds cycles between plans: plan A depending on anything of plan B is an edge A → B. Each
/// cycle is reported once, at the `depends_on` entry that closes it, with the full path in the
/// message (`dependency cycle: `a` → `b` → `c` → `a``). [`load`](super::load) runs this, so a
/// loaded manifest has no plan-level cycles; self-dependencies are reported by `load` separately.
pub(crate) fn check_cycles(manifest: &Manifest) -> Vec<Diagnostic> {
    let index: HashMap<&str, usize> = manifest
        .plans
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    // Edges in file order, one per target plan (the first entry naming it).
    let edges: Vec<Vec<(usize, &Dependency)>> = manifest
        .plans
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut out: Vec<(usize, &Dependency)> = Vec::new();
            for dep in &p.depends_on {
                if let Some(&j) = index.get(dep.plan.as_str())
                    && j != i
                    && !out.iter().any(|(k, _)| *k == j)
                {
                    out.push((j, dep));
                }
            }
            out
        })
        .collect();

    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let mut marks = vec![Mark::New; manifest.plans.len()];
    let mut diagnostics = Vec::new();
    for start in 0..manifest.plans.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // Iterative DFS: (node, next edge index); `path` mirrors the stack's nodes.
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::OnStack;
        while let Some(top) = stack.last_mut() {
            let (node, next) = *top;
            if let Some(&(to, dep)) = edges[node].get(next) {
                top.1 += 1;
                match marks[to] {
                    Mark::New => {
                        marks[to] = Mark::OnStack;
                        stack.push((to, 0));
                    }
                    Mark::OnStack => {
                        let from = stack.iter().position(|(n, _)| *n == to).unwrap_or(0);
                        let mut names: Vec<String> = stack[from..]
                            .iter()
                            .map(|(n, _)| format!("`{}`", manifest.plans[*n].name))
                            .collect();
                        names.push(format!("`{}`", manifest.plans[to].name));
                        diagnostics.push(at(
                            manifest,
                            dep,
                            format!("dependency cycle: {}", names.join(" → ")),
                        ));
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    diagnostics
}
