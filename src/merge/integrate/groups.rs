//! The preview of plans of several repositories: each group that lands together
//! ([`crate::merge::together::groups`]) built on every repository's target (each repository's
//! merge, as its landing builds it) and verified as its landing verifies it (each repository's
//! `verify` in its candidate, `verify_all` in the directory of all), by the landing's own code
//! ([`crate::merge::together::land::Ctx`]), moving nothing. Trials are kept by the commits
//! involved, in memory, for the run.

use std::collections::HashMap;
use std::path::Path;

use super::{IntegrationFailure, TriedCommit};
use crate::git::MergeRepo;
use crate::manifest::Manifest;
use crate::merge::together::land::Ctx;
use crate::merge::together::{Group, groups};

/// The group trials of one test: what was tested, the first failure, trials run, and why a
/// group's verify commands did not run (its plans run in containers of different images).
#[derive(Debug, Default)]
pub(crate) struct GroupsTried {
    pub(crate) tested: Vec<TriedCommit>,
    pub(crate) failure: Option<IntegrationFailure>,
    pub(crate) trials: usize,
    pub(crate) skipped: Vec<String>,
}

/// Tests every group of `manifest` (home repository's work dir `home`); `cache` keeps each
/// trial's failure (or `None`) by the commits involved.
pub(crate) fn test(
    manifest: &Manifest,
    home: &Path,
    cache: &mut HashMap<String, Option<String>>,
) -> GroupsTried {
    let mut out = GroupsTried::default();
    let (all, _) = groups(manifest, &[]);
    let ctx = Ctx {
        manifest,
        home,
        strategy: manifest.defaults.merge_strategy,
    };
    for group in &all {
        let tested = candidates(&ctx, group);
        if tested.is_empty() {
            continue;
        }
        out.tested.extend(tested.iter().cloned());
        let mut verifies = manifest.defaults.verify_all.is_some()
            || manifest.defaults.verify.is_some()
            || manifest.repos.iter().any(|r| r.verify.is_some());
        // Run in a container of the image of its plans that run in one, else here; where they
        // name different images, nowhere: textual conflicts only, and a note.
        let place = match ctx.verify_image(group) {
            Ok(image) => image.unwrap_or_default(),
            Err(why) => {
                if verifies {
                    out.skipped
                        .push(format!("verify not run on group `{}`: {why}", group.name()));
                }
                verifies = false;
                "none".to_string()
            }
        };
        let parts = match ctx.build(group, !verifies) {
            Ok(p) => p,
            Err(why) => {
                out.failure
                    .get_or_insert_with(|| failure(group, &[], tested.clone(), why.to_string()));
                continue;
            }
        };
        if parts.iter().all(|p| p.old == p.new) {
            continue;
        }
        let targets: Vec<TriedCommit> = parts
            .iter()
            .map(|p| TriedCommit {
                plan: None,
                branch: p.target.clone(),
                commit: p.old.to_string(),
                repo: Some(p.repo.clone()),
            })
            .collect();
        let mut key = group.name().to_string();
        for p in &parts {
            key.push_str(&format!(" {}:{}={}>{}", p.repo, p.target, p.old, p.new));
            if let Some(v) = &p.verify {
                key.push_str(&format!(" verify={v:?}"));
            }
        }
        key.push_str(&format!(" all={:?}", manifest.defaults.verify_all));
        key.push_str(&format!(" verifies={verifies} image={place}"));
        let result = match cache.get(&key) {
            Some(hit) => hit.clone(),
            None => {
                out.trials += 1;
                let r = if verifies {
                    ctx.verify("integration", group, &parts, &mut |_| {}).err()
                } else {
                    None
                };
                cache.insert(key, r.clone());
                r
            }
        };
        if let Some(why) = result {
            out.failure
                .get_or_insert_with(|| failure(group, &targets, tested.clone(), why));
        }
    }
    out
}

/// The group's plans whose branch has commits its repository's target lacks, at their tips.
fn candidates(ctx: &Ctx<'_>, group: &Group) -> Vec<TriedCommit> {
    let mut out = Vec::new();
    for repo in &group.repos {
        let root = ctx.root_of(repo);
        let target = ctx.target_of(repo);
        let Ok(mr) = MergeRepo::open(&root) else {
            continue;
        };
        let Ok(target_tip) = mr.target_tip(&target) else {
            continue;
        };
        for p in group.plans_of(ctx.manifest, repo) {
            let Ok(Some(tip)) = mr.branch_tip(&p.branch) else {
                continue;
            };
            let history = format!("the history of `{}`", p.branch);
            if !mr.contains(target_tip, tip, &history).unwrap_or(true) {
                out.push(TriedCommit {
                    plan: Some(p.name.clone()),
                    branch: p.branch.clone(),
                    commit: tip.to_string(),
                    repo: Some(repo.clone()),
                });
            }
        }
    }
    out
}

fn failure(
    group: &Group,
    targets: &[TriedCommit],
    tested: Vec<TriedCommit>,
    why: String,
) -> IntegrationFailure {
    let mut commits = targets.to_vec();
    commits.extend(tested);
    IntegrationFailure {
        plans: group.plans.clone(),
        culprit: group.plans.last().cloned().unwrap_or_default(),
        conflict: None,
        verify: None,
        commits,
        reason: Some(why),
    }
}
