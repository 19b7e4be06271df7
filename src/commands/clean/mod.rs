//! `orch clean`: removes the worktrees and branches of merged plans, never losing work.
//!
//! A plan is merged when its branch tip is in the target's history, or when merging it into the
//! target would change nothing (a squash merge); its status file alone never counts. A plan with
//! unmerged commits or a dirty worktree (untracked files count, ignored ones do not; see the book
//! for ignored files over the limit and what orch cannot read) is kept and
//! the reason printed, unless `--force`: then its tip (and the dirty state, as a commit) is saved
//! under `refs/orch/backup/<plan>/<UTC time>` first. Before a branch whose tip is not in the
//! target's history (a squash merge) is deleted, its tip is saved the same way.

use std::path::Path;

use chrono::Utc;
use serde_json::json;

use super::output::{eprintln_safe, print_json, println_safe};
use crate::error::{CliError, CliResult, Coded, exit};
use crate::git::{self, MergeState, PlanBranch, TreeState};
use crate::supervisor::LockError;
use crate::workspace::{self, Selection};

mod reasons;
mod records;

use reasons::{unreadable_reason, unsaveable_reason};
use records::{landed_tip, status_says_merged, unfinished_tasks};

pub(crate) struct CleanArgs {
    /// Plan names; empty = every plan of the manifest (or the one `--plan`).
    pub(crate) plans: Vec<String>,
    /// Remove unmerged and dirty plans too, after saving backups.
    pub(crate) force: bool,
    /// Say what would happen; change nothing.
    pub(crate) dry_run: bool,
    pub(crate) json: bool,
}

/// What happened to one plan (and, serialized, one of `--json`'s `plans`).
#[derive(Default, serde::Serialize)]
struct Report {
    plan: String,
    branch: String,
    /// `removed`, `kept`, `nothing` or `error`.
    outcome: &'static str,
    /// Why it was kept, or what went wrong.
    reasons: Vec<String>,
    /// `contained`, `squashed` or `unmerged`, when the branch exists.
    merge: Option<&'static str>,
    unmerged_commits: Option<usize>,
    /// The status file says `orch merge` merged it.
    status_says_merged: bool,
    /// The branch tip `orch merge` landed, by the status file (when it says merged).
    #[serde(skip)]
    landed_tip: Option<String>,
    /// The tasks orch's records say are not done (neither completed nor skipped).
    #[serde(skip)]
    unfinished: Vec<String>,
    /// Relative to the repository's root.
    worktree_removed: Option<String>,
    branch_deleted: bool,
    backups: Vec<String>,
    pruned_entries: usize,
    #[serde(rename = "attempts_kept")]
    attempts: usize,
    /// Ignored files over `max_file_size` (by the base's rules) removed with the worktree.
    ignored_large: Vec<IgnoredFile>,
    /// Kept for a reason `--force` does not override.
    #[serde(skip)]
    past_force: bool,
}

/// An ignored file over the limit that goes with its worktree.
#[derive(serde::Serialize)]
struct IgnoredFile {
    /// Relative to the repository's root.
    path: String,
    size: u64,
}

pub(crate) fn run(sel: &Selection, args: CleanArgs) -> CliResult<u8> {
    let (ws, manifest) = super::with_manifest(
        sel,
        false,
        "`orch clean` needs a plans.toml: it cleans up after the plans it lists",
    )?;
    let selected = ws.select(&args.plans)?;
    let repo_root = workspace::repo_root(&manifest)?;
    super::existing_target(&repo_root, &manifest)?;

    // Never while a supervisor runs: its agents work in these worktrees. A real run holds the
    // lock until it is done, so that no `orch up` starts meanwhile.
    let state_dir = manifest.root.join(&manifest.defaults.state_dir);
    let _lock = if args.dry_run {
        check_unlocked(&state_dir)?;
        None
    } else {
        Some(super::supervisor_lock(&manifest, HELD)?)
    };

    // What earlier removals left in orch's trash goes first (bounded in time: what is still
    // left is said, and removed by the next `orch clean` or `orch up`).
    let trash_left = if args.dry_run {
        None
    } else {
        crate::status::report::dir::empty_trash(&state_dir)
            .err()
            .map(|e| e.to_string())
    };
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let worktree_root = manifest.root.join(&manifest.defaults.worktree_root);
    let reports: Vec<Report> = selected
        .iter()
        .map(|&i| {
            let lp = &ws.plans[i];
            let Some(entry) = manifest.plan(&lp.name) else {
                return Report {
                    plan: lp.name.clone(),
                    outcome: "nothing",
                    ..Report::default()
                };
            };
            let mut report = Report {
                plan: lp.name.clone(),
                branch: entry.branch.clone(),
                status_says_merged: status_says_merged(&lp.status_path),
                landed_tip: landed_tip(&lp.status_path),
                unfinished: unfinished_tasks(&lp.status_path),
                ..Report::default()
            };
            // A plan of another repository: its worktree, branch and target are there.
            let (plan_root, plan_worktrees) = match entry.repo {
                Some(_) => {
                    let root = workspace::repos::root_of(&manifest, entry, &repo_root);
                    let worktrees = root.join(&manifest.defaults.worktree_root);
                    (root, worktrees)
                }
                None => (repo_root.clone(), worktree_root.clone()),
            };
            let target = manifest.target_of(entry);
            let cleaned = clean_branch(
                &plan_root,
                &plan_worktrees,
                (target, entry.size_limits),
                &args,
                &stamp,
                &mut report,
            );
            if let Err(e) = cleaned {
                report.outcome = "error";
                report.reasons.push(e.to_string());
                if let Some(h) = e.hint() {
                    report.reasons.push(format!("hint: {h}"));
                }
            }
            // Its attempts' report directories: no attempt is live (the supervisor lock is
            // held), so everything there goes, whoever made it (an unconfined agent could put
            // anything in it: files, directories, links, FIFOs; `.reports/<plan>` itself may
            // be its link, removed and never followed).
            if !args.dry_run && matches!(report.outcome, "removed" | "nothing") {
                let gone = crate::status::report::dir::remove_whole(
                    &state_dir,
                    &[crate::status::report::REPORTS_DIR],
                    &lp.name,
                );
                if let Err(e) = gone {
                    report.reasons.push(format!(
                        "its report directory `{}` is not all removed: {e}",
                        crate::status::report::plan_reports_dir(&state_dir, &lp.name).display()
                    ));
                }
                // Its attempts' private client states (mounted read-write in its container)
                // and the sessions kept between its tasks' attempts, by the same rule.
                let clients = crate::state_layout::CLIENTS.name;
                for parents in [&[clients][..], &[clients, crate::client_state::KEPT][..]] {
                    if let Err(e) =
                        crate::status::report::dir::remove_whole(&state_dir, parents, &lp.name)
                    {
                        report.reasons.push(e.to_string());
                    }
                }
            }
            report
        })
        .collect();

    // And what this run's removals left there.
    let trash_left = trash_left.or_else(|| {
        (!args.dry_run)
            .then(|| crate::status::report::dir::empty_trash(&state_dir).err())
            .flatten()
            .map(|e| e.to_string())
    });
    if args.json {
        print_json(&json!({
            "target": manifest.defaults.target,
            "dry_run": args.dry_run,
            "force": args.force,
            "plans": reports,
            "trash_left": trash_left,
        }));
    } else {
        println_safe(&render(&reports, &args, &manifest.defaults.target));
        if let Some(left) = &trash_left {
            eprintln_safe(&format!("orch clean: {left}"));
        }
    }
    Ok(if reports.iter().any(|r| r.outcome == "error") {
        exit::FAILURE
    } else if reports.iter().any(|r| r.outcome == "kept") {
        exit::INCOMPLETE
    } else {
        exit::OK
    })
}

/// The hint of a refusal while `orch up` runs.
const HELD: &str = "`orch clean` never runs beside `orch up`: wait for it to finish, or stop it (Ctrl-C in its terminal)";

fn lock_error(e: LockError) -> CliError {
    super::lock_error(e, HELD)
}

/// Fails (exit 4) if a supervisor holds the lock; creates nothing.
fn check_unlocked(state_dir: &Path) -> CliResult<()> {
    let path = state_dir.join("supervisor.lock");
    if !state_dir.is_dir() {
        return Ok(());
    }
    // The gate `orch up` holds (in orch's private directory), taken and let go at once.
    match crate::sandbox::try_private_lock(&path) {
        Ok(Some(_gate)) => Ok(()),
        Ok(None) => {
            let holder = crate::untrusted::read::small_text(&path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            Err(lock_error(LockError::Held { path, holder }))
        }
        Err(source) => Err(lock_error(LockError::Open { path, source })),
    }
}

/// Inspects the plan's branch and worktree, decides, and (unless `--dry-run`) acts.
fn clean_branch(
    repo_root: &Path,
    worktree_root: &Path,
    (target, limits): (&str, crate::manifest::SizeLimits),
    args: &CleanArgs,
    stamp: &str,
    report: &mut Report,
) -> Result<(), git::GitError> {
    let plan = report.plan.clone();
    let max_file = limits.file;
    let save = git::SaveLimits::keeping(limits);
    // What orch could not read in any of its worktrees (a directory an agent made mode 000, an
    // unreadable file, a chain deeper than git saves): unknown, so neither checked nor saved;
    // never removed, whatever the flags say.
    let scan = git::scan_plan_trees(repo_root, worktree_root, &plan, max_file)?;
    let unreadable = scan.unreadable;
    if !unreadable.is_empty() {
        report.outcome = "kept";
        report.past_force = true;
        report
            .reasons
            .push(unreadable_reason(&unreadable, repo_root));
        return Ok(());
    }
    // What no save would keep (uncommitted files over the plan's `max_file_size`, in any of its
    // worktrees): never removed, whatever the flags say; the person moves them out first.
    let unsaveable = git::unsaveable_files(repo_root, worktree_root, &plan, max_file)?;
    if !unsaveable.is_empty() {
        report.outcome = "kept";
        report.past_force = true;
        report
            .reasons
            .push(unsaveable_reason(&unsaveable, max_file, repo_root));
        return Ok(());
    }
    // A change over the plan's `max_change_size` or `max_change_files`: no backup holds it
    // either (a save never hashes it).
    if let Some((tree, found)) = git::change_over_in(repo_root, worktree_root, &plan, limits)? {
        report.outcome = "kept";
        report.past_force = true;
        report.reasons.push(format!(
            "the uncommitted change in `{}` is too large to back up: {found}; remove files from it, or raise the plan's limit in `plans.toml`, then run `orch clean` again",
            shown(&tree, repo_root).escape_debug()
        ));
        return Ok(());
    }
    let Some(info) =
        git::inspect_plan_branch(repo_root, worktree_root, &plan, &report.branch, target)?
    else {
        report.outcome = "nothing";
        if !args.dry_run {
            retire_task_trees(repo_root, (worktree_root, save), stamp, report)?;
            report.pruned_entries =
                git::prune_stale_entries(repo_root, &plan, &report.branch)?.len();
        }
        return Ok(());
    };
    report.attempts = info.attempts;
    report.merge = Some(match info.merge {
        MergeState::Contained => "contained",
        MergeState::Squashed => "squashed",
        MergeState::Unmerged { .. } => "unmerged",
    });
    if let MergeState::Unmerged { commits } = info.merge {
        report.unmerged_commits = Some(commits);
    }

    // What even --force does not override: it is not orch's to remove.
    if let Some(reason) = untouchable(&info, &plan) {
        report.outcome = "kept";
        report.past_force = true;
        report.reasons.push(reason);
        return Ok(());
    }
    // Ignored files over the limit: no backup holds them. When the attempt's own change made
    // the rules that ignore them (a `.gitignore` differs from the plan's base), they are the
    // agent's to hide, not build output: kept like any uncommitted file over the limit.
    // Otherwise they go with the worktree, named.
    let (ignored, ignores_changed) = git::ignored_large(&scan.large, info.base.as_deref())?;
    if ignores_changed && !ignored.is_empty() {
        report.outcome = "kept";
        report.past_force = true;
        report.reasons.push(format!(
            "{} (ignored by a `.gitignore` this plan changed)",
            unsaveable_reason(&ignored, max_file, repo_root)
        ));
        return Ok(());
    }
    report.ignored_large = ignored
        .iter()
        .map(|(p, size)| IgnoredFile {
            path: shown(p, repo_root),
            size: *size,
        })
        .collect();
    // What --force overrides, after saving it.
    let dirty: Vec<String> = match &info.worktree {
        TreeState::Live { dirty, .. } => dirty.clone(),
        _ => Vec::new(),
    };
    let mut unsafe_reasons = unsafe_reasons(&info, target, report.status_says_merged, &dirty);
    // Its work is in the target, but not by `orch merge`, and orch's records say it is not
    // done: what is in the target may be a copy of its commits made by another plan (red team
    // 15: a confined agent copied an unfinished plan's committed files, and `orch clean`
    // called that failed plan squash-merged and removed it). Kept: `orch up` goes on with it.
    // A landing of an earlier tip does not count (red team 16: the plan went on after it
    // landed, and another plan's copy of its new work was taken for its landing).
    let landed_this_tip = report.landed_tip.as_deref() == Some(info.tip.as_str());
    if !landed_this_tip
        && !report.unfinished.is_empty()
        && !matches!(info.merge, MergeState::Unmerged { .. })
    {
        unsafe_reasons.push(format!(
            "{} of its tasks {} not done ({}), and `orch merge` did not land it: its changes \
             in `{target}` came another way",
            report.unfinished.len(),
            if report.unfinished.len() == 1 {
                "is"
            } else {
                "are"
            },
            crate::diagnostic::path_list(&report.unfinished, 5)
        ));
    }
    if !unsafe_reasons.is_empty() && !args.force {
        report.outcome = "kept";
        report.reasons = unsafe_reasons;
        return Ok(());
    }
    let forced = !unsafe_reasons.is_empty();
    report.reasons = unsafe_reasons;
    report.outcome = "removed";
    let worktree_path = match &info.worktree {
        TreeState::Live { path, .. } => Some(path.clone()),
        TreeState::Stale { path } => path.clone(),
        _ => None,
    };

    if args.dry_run {
        if forced || !info.preserved {
            report.backups.push(git::backup_name(&plan, stamp));
            if !dirty.is_empty() {
                report
                    .backups
                    .push(git::worktree_backup_name(&git::backup_name(&plan, stamp)));
            }
        }
        report.worktree_removed = worktree_path.map(|p| shown(&p, repo_root));
        report.branch_deleted = true;
        return Ok(());
    }

    // 1. Backups first: nothing is removed before the work is saved.
    if forced || !info.preserved {
        report.backups.extend(back_up(
            repo_root,
            &plan,
            &info,
            (!dirty.is_empty(), save),
            stamp,
        )?);
    }
    // Task worktrees and branches of the plan (`parallel_tasks`), their work saved.
    retire_task_trees(repo_root, (worktree_root, save), stamp, report)?;
    // A resolution worktree a killed resolution left (orch's own: its `.git` names orch's
    // entry; anything else there is left alone).
    let _ = crate::git::remove_named(
        repo_root,
        worktree_root,
        &format!("{}{plan}", crate::merge::resolve::RESOLVE_PREFIX),
    );
    // 2. The worktree (refused if it became dirty meanwhile), 3. the branch (refused if it
    // moved), 4. git's leftover entries.
    let removed = git::remove_plan_worktree(repo_root, worktree_root, &plan, &info.branch)?;
    report.worktree_removed = removed.map(|p| shown(&p, repo_root));
    git::delete_plan_branch(repo_root, &plan, &info.branch, &info.tip)?;
    report.branch_deleted = true;
    report.pruned_entries = git::prune_stale_entries(repo_root, &plan, &info.branch)?.len();
    Ok(())
}

/// Why removing a plan's branch and worktree needs `--force`: a branch with no work of its
/// own yet, commits the target lacks, uncommitted files (`dirty`).
fn unsafe_reasons(
    info: &git::PlanBranch,
    target: &str,
    status_says_merged: bool,
    dirty: &[String],
) -> Vec<String> {
    let mut reasons = Vec::new();
    if info.unstarted() {
        reasons.push("its branch has no commits of its own yet".to_string());
    } else if let MergeState::Unmerged { commits } = info.merge {
        let mut r = format!(
            "{commits} unmerged commit{} (not in `{target}`)",
            if commits == 1 { "" } else { "s" }
        );
        if status_says_merged {
            r.push_str("; its status file says merged, but the branch has work the target lacks");
        }
        reasons.push(r);
    }
    if !dirty.is_empty() {
        reasons.push(format!(
            "its worktree has {} uncommitted file{}: {}",
            dirty.len(),
            if dirty.len() == 1 { "" } else { "s" },
            crate::diagnostic::path_list(dirty, 5)
        ));
    }
    reasons
}

/// Saves plan `plan`'s branch tip under a backup ref, and its worktree's uncommitted changes
/// (`dirty`) under another; returns the refs saved.
fn back_up(
    repo_root: &Path,
    plan: &str,
    info: &git::PlanBranch,
    (dirty, save): (bool, git::SaveLimits),
    stamp: &str,
) -> Result<Vec<String>, git::GitError> {
    let message = format!("orch clean: backup of `{}` (plan `{plan}`)", info.branch);
    let refname = git::backup_ref(repo_root, plan, &info.tip, stamp, &message)?;
    if let (true, TreeState::Live { path, .. }) = (dirty, &info.worktree) {
        let wt_ref = git::worktree_backup_name(&refname);
        let msg = format!(
            "orch clean: uncommitted changes of plan `{plan}` in `{}`",
            path.display()
        );
        if let Some(_saved) = git::save_and_reset_within(path, &wt_ref, &msg, save)? {
            return Ok(vec![refname, wt_ref]);
        }
    }
    Ok(vec![refname])
}

/// Removes the task worktrees and branches left of the report's plan (`parallel_tasks`); what they
/// hold that the plan branch lacks is saved first under `refs/orch/backup/<plan>/<stamp>-task-<id>`
/// (the refs added to the report's backups).
fn retire_task_trees(
    repo_root: &Path,
    (worktree_root, save): (&Path, git::SaveLimits),
    stamp: &str,
    report: &mut Report,
) -> Result<(), git::GitError> {
    let (plan, branch, saved) = (&report.plan, &report.branch, &mut report.backups);
    for id in git::task_tree_ids(repo_root, plan)? {
        let refname = git::task_backup_name(plan, stamp, &id);
        let message = format!("orch clean: work of task `{id}` of plan `{plan}`");
        let req = git::TaskTreeRequest {
            repo_root,
            plan,
            plan_branch: branch,
            id: &id,
            worktree_root,
            copy: &[],
            sparse: &[],
            submodules: false,
            save,
        };
        saved.extend(git::retire_task_tree(&req, Some((&refname, &message)))?);
    }
    // The plan's task worktree pool: its free slots (changes in one saved first).
    let refname = git::task_backup_name(plan, stamp, "pool");
    let message = format!("orch clean: left in the task worktree pool of plan `{plan}`");
    saved.extend(
        git::remove_pool(
            repo_root,
            worktree_root,
            plan,
            Some((&refname, &message)),
            save,
        )?
        .saved,
    );
    Ok(())
}

/// Why orch must leave the plan's branch alone whatever the flags say.
fn untouchable(info: &PlanBranch, plan: &str) -> Option<String> {
    if !info.owned {
        return Some(format!(
            "branch `{}` was not created by orch for plan `{plan}`; orch never deletes it",
            info.branch
        ));
    }
    match &info.worktree {
        TreeState::Elsewhere { path } => Some(format!(
            "branch `{}` is checked out at `{}`; switch that work tree to another branch first",
            info.branch,
            path.display()
        )),
        TreeState::OtherHead { path, head } => Some(format!(
            "its worktree `{}` has `{head}` checked out, not `{}`; switch it back first",
            path.display(),
            info.branch
        )),
        TreeState::Live {
            path, locked: true, ..
        } => Some(format!(
            "its worktree `{}` is locked (`git worktree unlock {}` first)",
            path.display(),
            path.display()
        )),
        _ => None,
    }
}

fn shown(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn render(reports: &[Report], args: &CleanArgs, target: &str) -> String {
    let would =
        |done: &'static str, planned: &'static str| if args.dry_run { planned } else { done };
    let mut out = Vec::new();
    for r in reports {
        match r.outcome {
            "nothing" => out.push(format!(
                "{}: nothing to clean (no branch `{}`)",
                r.plan, r.branch
            )),
            "removed" => {
                let how = match r.merge {
                    Some("contained") => format!("merged into `{target}`"),
                    Some("squashed") => {
                        format!("its changes are in `{target}` (squash-merged)")
                    }
                    _ => "forced".to_string(),
                };
                let mut did = Vec::new();
                if let Some(p) = &r.worktree_removed {
                    did.push(format!(
                        "{} worktree `{}`",
                        would("removed", "would remove"),
                        p
                    ));
                }
                did.push(format!(
                    "{} branch `{}`",
                    would("deleted", "would delete"),
                    r.branch
                ));
                out.push(format!("{}: {} ({how})", r.plan, did.join(", ")));
                for reason in &r.reasons {
                    out.push(format!("  forced past: {reason}"));
                }
                for f in &r.ignored_large {
                    out.push(format!(
                        "  {} `{}` ({}): ignored, larger than `max_file_size`, in no backup",
                        would("removed with it", "would remove with it"),
                        f.path.escape_debug(),
                        git::human_size(f.size)
                    ));
                }
                for b in &r.backups {
                    out.push(format!("  {} `{b}`", would("saved as", "would save as")));
                }
            }
            "kept" => {
                out.push(format!("{}: kept: {}", r.plan, r.reasons.join("; ")));
            }
            _ => {
                out.push(format!("{}: error: {}", r.plan, r.reasons.join("\n  ")));
            }
        }
        if r.pruned_entries > 0 {
            out.push(format!(
                "  pruned {} stale worktree entr{}",
                r.pruned_entries,
                if r.pruned_entries == 1 { "y" } else { "ies" }
            ));
        }
        if r.attempts > 0 {
            out.push(format!(
                "  {} saved attempt{} kept under `{prefix}` (delete them with `git for-each-ref \
                 --format='delete %(refname)' {prefix} | git update-ref --stdin`)",
                r.attempts,
                if r.attempts == 1 { "" } else { "s" },
                prefix = git::plan_attempts_prefix(&r.plan),
            ));
        }
    }
    let removed = reports.iter().filter(|r| r.outcome == "removed").count();
    let kept: Vec<&str> = reports
        .iter()
        .filter(|r| r.outcome == "kept")
        .map(|r| r.plan.as_str())
        .collect();
    let mut summary = format!(
        "{} {removed} plan{}",
        would("cleaned", "would clean"),
        if removed == 1 { "" } else { "s" }
    );
    if !kept.is_empty() {
        summary.push_str(&format!(", kept {} ({})", kept.len(), kept.join(", ")));
        let forceable: Vec<&str> = reports
            .iter()
            .filter(|r| r.outcome == "kept" && !r.past_force)
            .map(|r| r.plan.as_str())
            .collect();
        if !args.force && !forceable.is_empty() {
            summary.push_str(&format!(
                "; `orch clean --force {}` removes {} after saving backups under `{}<plan>/`",
                forceable.join(" "),
                if forceable.len() == 1 { "it" } else { "them" },
                git::BACKUP_PREFIX
            ));
        }
    }
    out.push(summary);
    out.join("\n")
}
