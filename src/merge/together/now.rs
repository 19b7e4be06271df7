//! A group landed now for a caller that is not the command line (the merge train of `orch up`),
//! as `orch merge` lands it: its plans finished, one `orch merge` at a time (the home
//! repository's `<state_dir>/merge.lock`), a landing stopped half way put back first
//! ([`super::land::recover`]), then [`super::land::Ctx::land`]. Nothing is printed; each plan's
//! result is typed as a merge of one plan is ([`PlanMergeOutcome`]).

use std::collections::BTreeSet;
use std::path::Path;

use super::land::{Ctx, Landed};
use crate::error::{CliError, CliResult};
use crate::manifest::{Manifest, repo_name};
use crate::merge::PlanMergeOutcome;
use crate::merge::resolve::Resolver;
use crate::workspace::{self, Selection, Workspace};

/// One plan's part of a group's landing: its name, its repository's target, how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PlanLanded {
    pub(crate) plan: String,
    /// Its repository (`home` for the manifest's).
    pub(crate) repo: String,
    pub(crate) target: String,
    pub(crate) outcome: PlanMergeOutcome,
}

/// The plans of the workspace with a task not finished.
pub(crate) fn unfinished(ws: &Workspace) -> CliResult<BTreeSet<String>> {
    let docs = workspace::read_statuses(ws, None)?;
    Ok(ws
        .plans
        .iter()
        .zip(&docs)
        .filter(|(_, d)| d.entries().any(|e| !e.status.is_finished()))
        .map(|(p, _)| p.name.clone())
        .collect())
}

/// Lands the group of plan `plan` of the manifest at `manifest_path` all together or not at
/// all; the result of each of its plans, in the order their repositories' targets move. Every
/// plan of the group gets the same outcome but its commit (its own repository's new tip).
///
/// Blocking (libgit2, the verify commands): call it from `tokio::task::spawn_blocking`.
///
/// A plan of the group that conflicts is handed to its `resolve` agent when `resolve` gives
/// the runner ([`super::resolve`]), its notes told as they come.
pub(crate) fn land_group_now(
    manifest_path: &Path,
    plan: &str,
    resolve: Option<crate::merge::ResolveWith>,
) -> Vec<PlanLanded> {
    let sel = Selection {
        manifest: Some(manifest_path.to_path_buf()),
        plan: None,
    };
    let loaded = workspace::load(&sel).and_then(|ws| {
        ws.require_valid()?;
        let manifest = ws.manifest.clone().ok_or_else(|| {
            CliError::invalid(anyhow::anyhow!("the merge train needs a plans.toml"))
        })?;
        Ok((ws, manifest))
    });
    let (ws, manifest) = match loaded {
        Ok(l) => l,
        Err(e) => {
            let reason = e.error.to_string();
            return vec![PlanLanded {
                plan: plan.to_string(),
                repo: String::new(),
                target: String::new(),
                outcome: PlanMergeOutcome::Error { reason },
            }];
        }
    };
    let (groups, _) = super::groups(&manifest, &[plan.to_string()]);
    let Some(group) = groups
        .into_iter()
        .find(|g| g.plans.iter().any(|p| p == plan))
    else {
        return vec![PlanLanded {
            plan: plan.to_string(),
            repo: String::new(),
            target: String::new(),
            outcome: PlanMergeOutcome::Error {
                reason: format!("plan `{plan}` lands with no plan of another repository"),
            },
        }];
    };
    let resolver = resolve.map(|(runner, notify)| Resolver {
        runner,
        manifest: std::sync::Arc::new(manifest.clone()),
        notify,
    });
    let landed = land(&ws, &manifest, &group, resolver.as_ref());
    outcomes(&manifest, &group, landed)
}

fn land(
    ws: &Workspace,
    manifest: &Manifest,
    group: &super::Group,
    resolver: Option<&Resolver>,
) -> Landed {
    let home = match workspace::repo_root(manifest) {
        Ok(h) => h,
        Err(e) => return Landed::Refused(e.error.to_string()),
    };
    let open = match unfinished(ws) {
        Ok(o) => o,
        Err(e) => return Landed::Refused(e.error.to_string()),
    };
    if let Some(why) = not_finished(manifest, group, &open) {
        return Landed::Refused(why);
    }
    let state = home.join(&manifest.defaults.state_dir);
    let _lock = match crate::merge::MergeLock::acquire(&state) {
        Ok(l) => l,
        Err(e) => return Landed::Refused(e.error.to_string()),
    };
    // What a landing stopped half way left moved is put back before this one is built.
    let _ = super::land::recover(manifest, &home);
    let ctx = Ctx {
        manifest,
        home: &home,
        strategy: manifest.defaults.merge_strategy,
    };
    // No person looks at what the train lands: what a later run trusts, changed where the
    // plan's `allow_protected` does not allow it, is left to one (`orch merge
    // --allow-protected` after a review).
    ctx.land(group, ws, false, resolver, &mut |_| {})
}

/// Why `group` cannot land yet, naming each plan of it that is not finished (`open`) with its
/// repository; `None` when every one is.
pub(crate) fn not_finished(
    manifest: &Manifest,
    group: &super::Group,
    open: &BTreeSet<String>,
) -> Option<String> {
    let waiting: Vec<String> = group
        .plans
        .iter()
        .filter(|p| open.contains(*p))
        .map(|p| {
            let repo = manifest
                .plan(p)
                .map_or(crate::manifest::HOME_REPO, repo_name);
            format!("plan `{p}` of repository `{repo}`")
        })
        .collect();
    let verb = if waiting.len() == 1 { "is" } else { "are" };
    (!waiting.is_empty()).then(|| {
        format!(
            "{} {verb} not finished: the group lands all together or not at all",
            waiting.join(", ")
        )
    })
}

/// Each plan's outcome from the group's.
fn outcomes(manifest: &Manifest, group: &super::Group, landed: Landed) -> Vec<PlanLanded> {
    let home = manifest.root.clone();
    let ctx = Ctx {
        manifest,
        home: &home,
        strategy: manifest.defaults.merge_strategy,
    };
    let together = |me: &str| {
        let others: Vec<String> = group
            .plans
            .iter()
            .filter(|p| *p != me)
            .map(|p| format!("`{p}`"))
            .collect();
        format!("landed together with {}", others.join(", "))
    };
    let resolved = |part: &super::land::Part, me: &str| {
        part.resolved
            .iter()
            .find(|(p, _)| p == me)
            .map(|(_, agent)| format!("its conflict resolved by agent `{agent}`; "))
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for repo in &group.repos {
        let target = ctx.target_of(repo);
        for p in group.plans_of(manifest, repo) {
            let outcome = match &landed {
                Landed::Moved(parts) => match parts.iter().find(|part| part.repo == *repo) {
                    Some(part) => PlanMergeOutcome::Merged {
                        commit: part.new.to_string(),
                        note: Some(format!("{}{}", resolved(part, &p.name), together(&p.name))),
                    },
                    None => PlanMergeOutcome::AlreadyMerged {
                        reason: format!("in `{target}` of repository `{repo}` already"),
                    },
                },
                Landed::AlreadyIn => PlanMergeOutcome::AlreadyMerged {
                    reason: "every plan of its group is in its target already".to_string(),
                },
                Landed::VerifyFailed(why) => PlanMergeOutcome::VerifyFailed {
                    reason: why.clone(),
                },
                Landed::Refused(why) => PlanMergeOutcome::Refused {
                    reason: format!("its group `{}` did not land: {why}", group.name()),
                },
                // With the review the refusal's hint gives (`git -C … diff …`), as a plan
                // alone is refused.
                Landed::Protected(e) => PlanMergeOutcome::Refused {
                    reason: format!(
                        "its group `{}` did not land: {}{}",
                        group.name(),
                        e.error,
                        e.hint
                            .as_ref()
                            .map(|h| format!(" (hint: {h})"))
                            .unwrap_or_default()
                    ),
                },
                Landed::Conflict(u) => match u.conflict() {
                    Some(c) if c.plan == p.name && c.repo == *repo => PlanMergeOutcome::Conflict {
                        files: c.files.clone(),
                        advice: format!("its group `{}` did not land: {u}", group.name()),
                    },
                    _ => PlanMergeOutcome::Refused {
                        reason: format!("its group `{}` did not land: {u}", group.name()),
                    },
                },
            };
            debug_assert_eq!(repo_name(p), repo);
            out.push(PlanLanded {
                plan: p.name.clone(),
                repo: repo.clone(),
                target: target.clone(),
                outcome,
            });
        }
    }
    out
}
