//! The entry points besides the merge step: `orch resolve PLAN` (by hand, and its `--dry-run`
//! prompt), `orch sync` with a resolver, and the request for a plan of the workspace.

use std::path::{Path, PathBuf};

use super::Resolver;
use super::request::Onto;
use super::run::{
    Resolution, ResolveRequest, Why, conflicted, next_attempt, notes_dir, prompt_for, resolve,
};
use crate::error::{CliError, exit};
use crate::git::MergeRepo;
use crate::manifest::{Manifest, PlanEntry};
use crate::merge::verify::Verify;
use crate::merge::{MergeError, StepRequest};

/// The prompt the plan's resolver would get now (`orch resolve PLAN --dry-run`), against `onto`
/// when given (the group's candidate so far), else the target; `None` when the plan merges
/// cleanly into the target (nothing to resolve, as `orch resolve PLAN` answers).
pub(crate) fn dry_run_prompt(
    manifest_path: &Path,
    plan: &str,
    onto: Option<Onto>,
) -> Result<Option<String>, CliError> {
    let sel = crate::workspace::Selection {
        manifest: Some(manifest_path.to_path_buf()),
        plan: None,
    };
    let ws = crate::workspace::load(&sel)?;
    ws.require_valid()?;
    let Some(manifest) = ws.manifest.as_ref() else {
        return Err(CliError::invalid(anyhow::anyhow!(
            "`orch resolve` needs a plans.toml"
        )));
    };
    let entry = named(manifest, plan)?;
    let repo_root = repo_root_of(manifest, entry)?;
    let verify = verify_for(manifest, entry, &repo_root)?;
    let own = manifest.own_dirs(&repo_root);
    let mut req = request(
        &ws,
        manifest,
        entry,
        (&repo_root, &own),
        verify.as_ref(),
        Why::Conflict,
    );
    let repo = MergeRepo::open(&repo_root).map_err(CliError::coded)?;
    if onto.is_none() && !plan_conflicts(&repo, manifest, entry)? {
        return Ok(None);
    }
    req.onto = onto;
    let c = match conflicted(&repo, &req).map_err(CliError::coded)? {
        Ok(c) => c,
        Err(cause) => {
            return Err(CliError::new(
                exit::REFUSED,
                anyhow::anyhow!("nothing to resolve: {cause}"),
            ));
        }
    };
    let notes = notes_dir(manifest, plan, next_attempt(&repo, manifest, plan));
    Ok(Some(prompt_for(&repo, manifest, entry, &req, &c, &notes)))
}

/// Whether plan `entry`'s branch conflicts with the target now (the branch missing: exit 4).
fn plan_conflicts(
    repo: &MergeRepo,
    manifest: &Manifest,
    entry: &PlanEntry,
) -> Result<bool, CliError> {
    let ours = repo
        .branch_tip(&entry.branch)
        .map_err(CliError::coded)?
        .ok_or_else(|| {
            CliError::coded(MergeError::BranchMissing {
                branch: entry.branch.clone(),
            })
        })?;
    let theirs = repo
        .target_tip(manifest.target_of(entry))
        .map_err(CliError::coded)?;
    Ok(repo.conflicts(ours, theirs))
}

/// The work dir of the repository plan `entry` changes: its `[[repo]]`'s, else the home
/// repository's.
pub(crate) fn repo_root_of(manifest: &Manifest, entry: &PlanEntry) -> Result<PathBuf, CliError> {
    let home = crate::workspace::repo_root(manifest)?;
    Ok(crate::workspace::repos::root_of(manifest, entry, &home))
}

/// The `verify` of the repository plan `entry` changes, as a resolution's gate runs it on the
/// merge into that repository's target: its `[[repo]]`'s own `verify` (none: no verify), its
/// staging worktrees and log where the plan's are; for a plan of the home repository,
/// `defaults.verify` ([`crate::merge::checks::verify_spec`]).
pub(crate) fn verify_for(
    manifest: &Manifest,
    entry: &PlanEntry,
    repo_root: &Path,
) -> Result<Option<Verify>, CliError> {
    let Some(r) = manifest.repo_of(&entry.name) else {
        return crate::merge::checks::verify_spec(manifest, repo_root);
    };
    let Some(argv) = &r.verify else {
        return Ok(None);
    };
    let d = &manifest.defaults;
    let base = super::run::plan_base(manifest, &entry.name);
    Ok(Some(Verify {
        argv: argv.clone(),
        timeout: d.timeout,
        grace: d.grace,
        log_max: d.log_max,
        staging_dir: base.join(&d.worktree_root),
        log_dir: base.join(&d.log_dir),
        sandbox: crate::merge::confine::decide(manifest, crate::sandbox::supported)?,
        network: crate::merge::network::Network::of_verify(manifest)?,
        announce: Default::default(),
        images: crate::executor::container::images(manifest),
    }))
}

/// The manifest's plan `plan`, or exit 2.
fn named<'m>(manifest: &'m Manifest, plan: &str) -> Result<&'m PlanEntry, CliError> {
    manifest.plan(plan).ok_or_else(|| {
        CliError::invalid(anyhow::anyhow!(
            "no plan named `{plan}` in {}",
            manifest.path.display()
        ))
    })
}

/// The request for plan `entry` of the workspace.
pub(crate) fn request<'a>(
    ws: &'a crate::workspace::Workspace,
    manifest: &'a Manifest,
    entry: &'a PlanEntry,
    (repo_root, own): (&'a Path, &'a [String]),
    verify: Option<&'a Verify>,
    why: Why,
) -> ResolveRequest<'a> {
    let loaded = ws.plans.iter().find(|p| p.name == entry.name);
    ResolveRequest {
        step: StepRequest {
            repo_root,
            own,
            target: manifest.target_of(entry),
            plan: &entry.name,
            branch: &entry.branch,
            base: None,
            strategy: manifest.defaults.merge_strategy,
            verify,
            verified_tree: None,
        },
        why,
        // The plan's tasks as the prompt lists them: (`id: description`, description and body).
        tasks: loaded.map_or_else(Vec::new, |lp| {
            let tasks = lp.plan.tasks.iter();
            let task = |t: &crate::plan::Task| {
                (
                    format!(
                        "{}: {}",
                        t.id,
                        crate::plan::plain_description(&t.description)
                    ),
                    format!("{}\n{}", t.description, t.body),
                )
            };
            tasks.map(task).collect()
        }),
        loaded,
        onto: None,
    }
}

/// `orch resolve PLAN`: the plan's conflict with the target (or with `onto`, the candidate so
/// far of its group's landing, from `onto_of` under the lock) handed to its resolver now, the
/// result (when every gate passes) committed on the plan branch; the target does not move.
/// `Ok(None)`: the plan merges cleanly, nothing to resolve. Holds the repository's merge lock.
pub(crate) fn resolve_by_hand(
    ws: &crate::workspace::Workspace,
    manifest: &Manifest,
    plan: &str,
    resolver: &Resolver,
    onto_of: impl FnOnce() -> Option<Onto>,
) -> Result<Option<Resolution>, CliError> {
    let entry = named(manifest, plan)?;
    if entry.resolve.is_none() {
        return Err(CliError::invalid(anyhow::anyhow!(
            "plan `{plan}` names no resolver"
        ))
        .with_hint(format!(
            "set `resolve = \"claude\"` (a preset or an [agents.NAME]) or `resolve = true` in its [[plan]] or in [defaults] of {}",
            manifest.path.display()
        )));
    }
    let repo_root = repo_root_of(manifest, entry)?;
    // One `orch merge` or `orch resolve` at a time: the home repository's lock, whatever
    // repository the plan changes (a group's landing holds it too).
    let state_dir = manifest.root.join(&manifest.defaults.state_dir);
    let _lock = crate::merge::checks::MergeLock::acquire(&state_dir)?;
    let verify = verify_for(manifest, entry, &repo_root)?;
    let repo = MergeRepo::open(&repo_root).map_err(CliError::coded)?;
    let onto = onto_of();
    if onto.is_none() && !plan_conflicts(&repo, manifest, entry)? {
        return Ok(None);
    }
    let own = manifest.own_dirs(&repo_root);
    let mut req = request(
        ws,
        manifest,
        entry,
        (&repo_root, &own),
        verify.as_ref(),
        Why::Conflict,
    );
    req.onto = onto;
    resolve(resolver, &req).map(Some).map_err(CliError::coded)
}

/// `orch sync` with a resolver: plan `p` synced with its upstream plans as
/// [`crate::merge::sync::sync_and_record`] does, and a conflict with an upstream plan's tip
/// handed to the plan's resolver (no `verify`: a sync lands nothing on the target; the plan's
/// `check` runs), then the sync goes on. Returns the sync and, when a resolution failed, why.
pub(crate) fn sync_resolving(
    ws: &crate::workspace::Workspace,
    repo_root: &Path,
    infos: &[crate::merge::PlanInfo],
    p: &crate::merge::PlanInfo,
    worktree: &Path,
    resolver: Option<&Resolver>,
) -> Result<(crate::merge::sync::Synced, Option<String>), crate::git::GitError> {
    use crate::merge::sync::{SyncResult, sync_and_record};
    let resolvable = resolver.and_then(|r| {
        r.manifest
            .plan(p.name())
            .filter(|e| e.resolve.is_some())
            .map(|e| (r, e))
    });
    // One resolution per upstream at most, then the sync's own answer stands.
    for _ in 0..=p.upstreams.len() {
        let synced = sync_and_record(ws, repo_root, infos, p, worktree)?;
        let (SyncResult::Conflict { branch, .. }, Some((res, entry))) =
            (&synced.result, resolvable)
        else {
            return Ok((synced, None));
        };
        let own = res.manifest.own_dirs(repo_root);
        let mut req = request(
            ws,
            &res.manifest,
            entry,
            (repo_root, &own),
            None,
            Why::Conflict,
        );
        req.step.target = branch;
        let resolved = match resolve(res, &req) {
            Ok(r) => r,
            Err(e) => return Ok((synced, Some(format!("the resolution could not run: {e}")))),
        };
        match resolved {
            Resolution::Resolved { .. } => continue,
            Resolution::Failed {
                cause,
                agent,
                saved,
                ..
            } => {
                let why = super::run::failure(&agent, &cause, saved.as_deref());
                return Ok((synced, Some(why)));
            }
        }
    }
    Ok((sync_and_record(ws, repo_root, infos, p, worktree)?, None))
}
