//! Before a plan lands: what its branch changes of what a later run trusts
//! ([`crate::manifest::Guarded`]: `plans.toml`, the plan files, the prompt templates,
//! `.gitmodules`, the clients' settings, the program and script of every command line). A change
//! that no task of the plan names is left to a person (`orch merge --allow-protected` after a
//! review); a symbolic link at one of those paths, or at a directory above one, is never landed.

use super::run::MergeRun;
use crate::error::{CliError, CliResult};
use crate::manifest::Manifest;
use crate::workspace::Workspace;

/// What one plan's branch changes of what a later run trusts, and that its tasks do not name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Unnamed {
    pub(crate) plan: String,
    pub(crate) branch: String,
    /// Changed protected paths no task of the plan names (in its description or body).
    pub(crate) files: Vec<String>,
    /// Links at a protected path or above one: refused whatever a task names.
    pub(crate) links: Vec<String>,
}

/// [`Unnamed`] of each plan of `run` whose branch changes what a later run trusts with no task
/// naming it, or puts a link there; `Err` (naming the plan and git's error) when that cannot be
/// read: nothing is landed unchecked.
pub(crate) fn unnamed_changes(
    run: &MergeRun,
    ws: &Workspace,
    manifest: &Manifest,
) -> Result<Vec<Unnamed>, String> {
    let mut out = Vec::new();
    for &i in &run.order {
        let info = &run.infos[i];
        let plan = ws.plans.get(info.index).map(|lp| &lp.plan);
        // Every plan's tasks' own checks, this plan's first.
        let guarded = plan
            .into_iter()
            .chain(ws.plans.iter().map(|lp| &lp.plan))
            .fold(
                manifest.guarded(&run.repo_root, Some(&info.entry)),
                |g, p| g.with_task_checks(p),
            );
        let changes =
            crate::git::changed_since_fork(&run.repo_root, &run.target, info.branch(), &guarded)
                .map_err(|why| {
                    format!(
                        "cannot check whether plan `{}` changes what a later run trusts: {why}",
                        info.name()
                    )
                })?;
        let named = |f: &str| {
            plan.is_some_and(|p| {
                p.tasks
                    .iter()
                    .any(|t| t.description.contains(f) || t.body.contains(f))
            })
        };
        let files: Vec<String> = changes
            .changed
            .into_iter()
            .filter(|f| !named(f) && !changes.links.contains(f))
            .collect();
        if !files.is_empty() || !changes.links.is_empty() {
            out.push(Unnamed {
                plan: info.name().to_owned(),
                branch: info.branch().to_owned(),
                files,
                links: changes.links,
            });
        }
    }
    Ok(out)
}

/// Refuses (exit 4, before anything moves) a run where a plan's branch changes what a later run
/// trusts with no task of it naming the file (unless `allow_protected`: a person reviewed it,
/// `orch merge --allow-protected`), or puts a symbolic link there (always), naming each plan and
/// file; the hint says how to review it.
pub(crate) fn refusal(
    run: &MergeRun,
    ws: &Workspace,
    manifest: &Manifest,
    allow_protected: bool,
) -> CliResult<()> {
    let found = unnamed_changes(run, ws, manifest)
        .map_err(|why| CliError::new(crate::exit::REFUSED, anyhow::anyhow!("{why}")))?;
    let links: Vec<String> = found
        .iter()
        .filter(|u| !u.links.is_empty())
        .map(|u| format!("plan `{}`: {}", u.plan, u.links.join(", ")))
        .collect();
    if !links.is_empty() {
        return Err(CliError::new(
            crate::exit::REFUSED,
            anyhow::anyhow!(
                "a symbolic link at a protected path, which orch never lands: {}; nothing was merged",
                links.join("; ")
            ),
        )
        .with_hint(
            "replace the link on the plan branch with the file itself, or merge it with git yourself after a review",
        ));
    }
    let files: Vec<&Unnamed> = found.iter().filter(|u| !u.files.is_empty()).collect();
    if files.is_empty() || allow_protected {
        return Ok(());
    }
    let what = files
        .iter()
        .map(|u| format!("plan `{}` changes {}", u.plan, u.files.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    let review = files
        .iter()
        .map(|u| {
            format!(
                "`git diff {}...{} -- {}`",
                run.target,
                u.branch,
                u.files.join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let plans = files
        .iter()
        .map(|u| u.plan.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Err(CliError::new(
        crate::exit::REFUSED,
        anyhow::anyhow!(
            "{what}, which no task of it names (what a later run trusts): it is left to a person (`orch merge {plans} --allow-protected` after a review); nothing was merged"
        ),
    )
    .with_hint(format!(
        "review the change ({review}), then `orch merge {plans} --allow-protected`"
    )))
}
