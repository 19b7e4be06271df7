//! What `orch merge` knows about each plan of the manifest before it starts (status, branch,
//! whether it landed), and which plans a run takes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use anyhow::anyhow;
use serde_json::Value;

use super::MergeError;
use crate::error::{CliError, CliResult, exit};
use crate::git;
use crate::manifest::{Manifest, PlanEntry};
use crate::status::{self, StatusDoc};
use crate::workspace::{self, Workspace};

/// The plans `chosen` (indices into `infos`) in merge order ([`super::merge_order`]).
pub(crate) fn in_merge_order(infos: &[PlanInfo], chosen: &[usize]) -> Vec<usize> {
    let items: Vec<super::OrderItem> = chosen
        .iter()
        .map(|&i| super::OrderItem {
            name: infos[i].name().to_owned(),
            priority: infos[i].entry.priority,
            depends_on: infos[i].upstreams.clone(),
        })
        .collect();
    let order = super::merge_order(&items).into_iter();
    order.map(|k| chosen[k]).collect()
}

/// What `orch merge` knows about one plan of the manifest before it starts.
#[derive(Clone, Debug)]
pub(crate) struct PlanInfo {
    /// Index into the workspace's plans.
    pub(crate) index: usize,
    /// Its `[[plan]]` entry (name, branch, priority, `depends_on`, …).
    pub(crate) entry: PlanEntry,
    /// The plans named in its `depends_on`, each once.
    pub(crate) upstreams: Vec<String>,
    /// Its tasks and verification steps that are not completed or skipped (`1.2 (pending)`).
    pub(crate) unfinished: Vec<String>,
    /// The branch tip, `None` when the branch does not exist.
    pub(crate) tip: Option<String>,
    /// The commit the branch was made from (`orchWorktree.base`).
    pub(crate) base: Option<String>,
    /// In the target already (known without a trial merge), with how that is known.
    pub(crate) landed: Option<String>,
}

impl PlanInfo {
    /// The plan's name (its entry's).
    pub(crate) fn name(&self) -> &str {
        &self.entry.name
    }

    /// The plan's branch (its entry's).
    pub(crate) fn branch(&self) -> &str {
        &self.entry.branch
    }

    /// `plan `a` is not finished: 1.2 (pending), …`, when it has tasks left.
    pub(crate) fn not_finished(&self) -> Option<String> {
        let left = || self.unfinished.join(", ");
        (!self.unfinished.is_empty())
            .then(|| format!("plan `{}` is not finished: {}", self.name(), left()))
    }
}

/// The plans `entry` depends on (on the whole, a phase or a task of it), each once, in order.
pub(crate) fn upstream_plans(entry: &PlanEntry) -> Vec<String> {
    let mut upstreams: Vec<String> = Vec::new();
    for d in &entry.depends_on {
        if !upstreams.contains(&d.plan) {
            upstreams.push(d.plan.clone());
        }
    }
    upstreams
}

/// Reads what is known about every plan of the manifest: status, branch, whether it landed.
pub(crate) fn plan_infos(
    ws: &Workspace,
    manifest: &Manifest,
    repo_root: &Path,
) -> CliResult<Vec<PlanInfo>> {
    let docs = workspace::read_statuses(ws, None)?;
    let mut out = Vec::new();
    for (index, (lp, doc)) in ws.plans.iter().zip(&docs).enumerate() {
        let entry = workspace::entry_of(manifest, &lp.name)?;
        let upstreams = upstream_plans(entry);
        let unfinished: Vec<String> = doc
            .entries()
            .filter(|e| !e.status.is_finished())
            .map(|e| format!("{} ({})", e.id, e.status))
            .collect();
        // A plan of another repository is read in that repository, against its target.
        let own_root = workspace::repos::root_of(manifest, entry, repo_root);
        let (repo_root, target) = (own_root.as_path(), manifest.target_of(entry));
        let tip = git::branch_tip(repo_root, &entry.branch).map_err(CliError::coded)?;
        let base = doc
            .extra
            .get("orchWorktree")
            .filter(|w| w.get("branch").and_then(Value::as_str) == Some(entry.branch.as_str()))
            .and_then(|w| w.get("base"))
            .and_then(Value::as_str)
            .map(str::to_string);
        // An unfinished plan is not merged, whatever its branch looks like (a new branch is
        // its target's tip).
        let landed = if unfinished.is_empty() {
            landed(repo_root, target, tip.as_deref(), doc)?
        } else {
            None
        };
        out.push(PlanInfo {
            index,
            entry: entry.clone(),
            upstreams,
            unfinished,
            tip,
            base,
            landed,
        });
    }
    Ok(out)
}

/// Whether a finished plan is in the target already, by the cheap checks: its branch tip is in
/// the target's history; its status file records it merged at this very tip; or its branch is gone
/// and it was recorded merged, or made no commit, or its commits are in the target.
fn landed(
    repo_root: &Path,
    target: &str,
    tip: Option<&str>,
    doc: &StatusDoc,
) -> CliResult<Option<String>> {
    let recorded = doc.orch_merge.as_ref();
    let recorded_merged = recorded.is_some_and(status::OrchMerge::is_merged);
    let recorded_tip = recorded.and_then(|r| r.branch_tip.as_deref());
    let in_target =
        |oid: &str| super::target_contains(repo_root, target, oid).map_err(CliError::coded);
    // The record holds while its landing is still in the target: a person who reset the target
    // to undo it (red team 16) has the plan merged again, not called merged. An older record
    // without its landing commit is believed as before.
    let landing_kept = || {
        let commit = recorded.map_or("", |r| r.commit.as_str());
        commit.is_empty() || in_target(commit).unwrap_or(false)
    };
    match tip {
        Some(tip) => {
            if recorded_merged && recorded_tip == Some(tip) && landing_kept() {
                return Ok(Some("recorded in its status file".into()));
            }
            if in_target(tip)? {
                return Ok(Some(format!("its tip is in `{target}`")));
            }
            Ok(None)
        }
        None => {
            if recorded_merged && landing_kept() {
                return Ok(Some(
                    "recorded in its status file; the branch is gone".into(),
                ));
            }
            let commits: Vec<String> = doc.entries().filter_map(|e| e.commit.clone()).collect();
            match git::latest_of(repo_root, &commits).map_err(CliError::coded)? {
                None => Ok(Some(
                    "nothing to merge: no branch and no task commit".into(),
                )),
                Some(latest) if in_target(&latest)? => {
                    Ok(Some(format!("its task commits are in `{target}`")))
                }
                Some(_) => Ok(None),
            }
        }
    }
}

/// A plan left out of a run without names because it is not finished: its name and what is
/// left (`1.2 (pending)`).
pub(crate) type Unfinished = (String, Vec<String>);

/// The plans of the run (indices into `infos`) and, when no names were given, the plans left
/// out because they are not finished (`(name, unfinished tasks)`). Refusals (exit 4) name every
/// plan refused and why; unknown names are exit 2.
pub(crate) fn select(
    ws: &Workspace,
    infos: &[PlanInfo],
    by_name: &HashMap<&str, &PlanInfo>,
    names: &[String],
    repo_root: &Path,
    target: &str,
) -> CliResult<(Vec<usize>, Vec<Unfinished>)> {
    if names.is_empty() {
        let mut run = Vec::new();
        let mut unfinished = Vec::new();
        for p in infos {
            if p.unfinished.is_empty() {
                run.push(p.index);
            } else if p.landed.is_none() {
                unfinished.push((p.name().to_owned(), p.unfinished.clone()));
            }
        }
        return Ok((run, unfinished));
    }
    // `infos` are the workspace's plans, in its order.
    let run = ws.select(names)?;
    let requested: HashSet<&str> = run.iter().map(|&i| infos[i].name()).collect();
    let mut refusals = Vec::new();
    let mut hints = BTreeSet::new();
    for &i in &run {
        let p = &infos[i];
        if p.landed.is_some() {
            continue;
        }
        if let Some(refusal) = p.not_finished() {
            refusals.push(refusal);
            hints.insert(format!(
                "finish it first (`orch up {}`), or mark what is left with `orch task skip`",
                p.name()
            ));
            continue;
        }
        for u in &p.upstreams {
            if requested.contains(u.as_str()) {
                continue;
            }
            let Some(up) = by_name.get(u.as_str()) else {
                continue;
            };
            if upstream_landed(up, repo_root, target).map_err(CliError::coded)? {
                continue;
            }
            refusals.push(format!(
                "plan `{}` depends on plan `{u}`, which is not merged into `{target}` yet",
                p.name()
            ));
            hints.insert(format!(
                "merge `{u}` first, or both in one run: `orch merge {u} {}`",
                p.name()
            ));
        }
    }
    if !refusals.is_empty() {
        let n = refusals.len();
        let message = if n == 1 {
            format!("{}; nothing was merged", refusals[0])
        } else {
            format!(
                "{n} plans cannot be merged; nothing was merged:\n  {}",
                refusals.join("\n  ")
            )
        };
        return Err(CliError::new(exit::REFUSED, anyhow!(message))
            .with_hint(hints.into_iter().collect::<Vec<_>>().join("; ")));
    }
    Ok((run, Vec::new()))
}

/// Whether an upstream plan outside the run is finished and in the target: the cheap checks,
/// then a trial merge (a plan landed with `squash` before).
pub(crate) fn upstream_landed(
    up: &PlanInfo,
    repo_root: &Path,
    target: &str,
) -> Result<bool, MergeError> {
    if up.landed.is_some() {
        return Ok(true);
    }
    if up.tip.is_none() || !up.unfinished.is_empty() {
        return Ok(false);
    }
    super::is_merged(repo_root, target, up.branch())
}
