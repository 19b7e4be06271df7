//! Task worktrees: with `parallel_tasks` > 1 each running task of a plan gets its own worktree and
//! branch, made from the plan branch's tip, and its commit is landed back on the plan branch.
//!
//! Names (a `+` never appears in a plan name, so they cannot collide with a plan's):
//! - worktree: a slot of the plan's pool ([`super::pool`]), `<worktree_root>/<plan>+pool<n>`;
//!   an earlier orch made `<worktree_root>/<plan>+<id>` per task (still retired here);
//! - branch `orch/task/<plan>/<id>`, marked as orch's like a plan branch
//!   (`branch.<branch>.orchPlan = <plan>+<id>`).

use std::path::Path;

use git2::Oid;

use super::GitError;
use super::cleanup::{delete_plan_branch, made_path, prune_stale_entries, remove_plan_worktree};
use super::commit::{move_ref, save_and_reset_within};
use super::entries::{discard_dir, half_made, read_entries, sweep_discarded};
use super::merge::{Landing, land, open_checked_out, tip_and_commit};
use super::pool::{free_slot, pool_slot};
use super::refs::{check_tree_name, task_branch, task_tree_name};
use super::repo::{branch_commit, contains, find_branch, open, parse_oid, retry_locked, signature};
use super::status::{Submodules, dirty_files};
use super::worktree::{TaskTreeRequest, open_main, worktree_lock};

/// Retires task `id`'s worktree and branch (both may be missing): a pool slot it holds is freed
/// (its HEAD detached at the branch tip, the directory kept for the plan's next task), a worktree
/// of its own removed, the branch deleted. With `save` (`refname`,
/// `message`), what they hold that the plan branch does not (uncommitted changes, a commit not
/// landed) is kept under `refname` first; returns that ref when something was saved. Without
/// `save`, a worktree with uncommitted changes is refused (nothing is removed).
///
/// A task worktree left half made by a supervisor killed while adding it (see
/// [`super::worktree`]'s `half_made`: nothing in it but the branch tip's files) is discarded
/// without saving.
pub fn retire_task_tree(
    req: &TaskTreeRequest,
    save: Option<(&str, &str)>,
) -> Result<Option<String>, GitError> {
    retire(req, save, false)
}

/// [`retire_task_tree`] for a task whose work was just committed and landed, its agent ended:
/// its pool slot is freed as clean, so the plan's next task takes it without a status of the
/// whole tree.
pub(crate) fn retire_landed_task_tree(req: &TaskTreeRequest) -> Result<Option<String>, GitError> {
    retire(req, None, true)
}

fn retire(
    req: &TaskTreeRequest,
    save: Option<(&str, &str)>,
    landed: bool,
) -> Result<Option<String>, GitError> {
    let (repo_root, plan, plan_branch, id) = (req.repo_root, req.plan, req.plan_branch, req.id);
    // Not while another task's worktree is being added: its entry has no `gitdir` file yet,
    // and pruning leftovers below would take it (found by the crash harness).
    let _guard = worktree_lock();
    let name = task_tree_name(plan, id);
    let branch = task_branch(plan, id);
    let repo = open_main(repo_root)?;
    let tip_oid = find_branch(&repo, &branch)?.and_then(|b| b.get().target());
    let tip = tip_oid.map(|o| o.to_string());
    let path = req.path();
    sweep_discarded(&path)?;
    let admin = repo.commondir().join("worktrees").join(&name);
    if let Some(tip) = tip_oid
        && half_made(&repo, &path, &admin, tip)
    {
        discard_dir(&path)?;
    }
    // Its own worktree, or the pool slot it holds; its directory where orch made it, not where
    // the entry's back-link points.
    let entry = read_entries(repo.commondir())?.into_iter().find(|e| {
        !e.prunable()
            && (e.name == name
                || (pool_slot(plan, &e.name).is_some() && super::pool::holds(e, &branch)))
    });
    let made = |e: &super::entries::Entry| made_path(repo_root, req.worktree_root, &e.name);
    let slot = entry
        .as_ref()
        .filter(|e| pool_slot(plan, &e.name).is_some())
        .map(made);
    let live = entry.as_ref().map(made);
    // A slot an agent switched to another branch: its HEAD back on the task branch first, so
    // that what is saved is its changes against the task's branch.
    if let Some(path) = slot.as_deref().filter(|p| p.is_dir())
        && tip_oid.is_some()
    {
        super::locate::pin_worktree(path, &branch)?;
    }
    let mut saved = None;
    let mut clean = landed;
    if let Some((refname, message)) = save {
        if let Some(path) = live.as_deref().filter(|p| p.is_dir()) {
            saved = save_and_reset_within(path, refname, message, req.save)?
                .map(|_| refname.to_string());
            clean = true;
        }
        if saved.is_none()
            && let Some(tip) = &tip
            && !contained(&repo, tip, plan_branch)?
        {
            let oid = parse_oid(tip)?;
            retry_locked(|| repo.reference(refname, oid, true, message)).map_err(|source| {
                GitError::UpdateRef {
                    refname: refname.to_string(),
                    source,
                }
            })?;
            saved = Some(refname.to_string());
        }
    }
    match (slot.filter(|p| p.is_dir()), tip_oid) {
        // A pool slot stays for the plan's next task: only its HEAD leaves the task branch.
        (Some(path), Some(tip)) => free_slot(&path, tip, clean)?,
        _ => {
            remove_plan_worktree(repo_root, req.worktree_root, &name, &branch)?;
        }
    }
    prune_stale_entries(repo_root, &name, &branch)?;
    if let Some(tip) = tip {
        delete_plan_branch(repo_root, &name, &branch, &tip)?;
    }
    Ok(saved)
}

/// Whether commit `oid` is the tip of `branch` or one of its ancestors.
fn contained(repo: &git2::Repository, oid: &str, branch: &str) -> Result<bool, GitError> {
    let Some(tip) = find_branch(repo, branch)?.and_then(|b| b.get().target()) else {
        return Ok(false);
    };
    let oid = parse_oid(oid)?;
    contains(repo, tip, oid).map_err(|source| GitError::ReadBranch {
        branch: branch.to_string(),
        source,
    })
}

/// The ids of `plan`'s tasks that have a task branch or a task worktree entry, sorted.
pub(crate) fn task_tree_ids(repo_root: &Path, plan: &str) -> Result<Vec<String>, GitError> {
    let repo = open_main(repo_root)?;
    let mut ids = std::collections::BTreeSet::new();
    let prefix = format!("refs/heads/{}", task_branch(plan, ""));
    let refs = repo
        .references_glob(&format!("{prefix}*"))
        .map_err(|source| GitError::ReadBranch {
            branch: task_branch(plan, "*"),
            source,
        })?;
    for r in refs.flatten() {
        if let Ok(name) = r.name()
            && let Some(id) = name.strip_prefix(&prefix)
        {
            ids.insert(id.to_string());
        }
    }
    let tree_prefix = task_tree_name(plan, "");
    for e in read_entries(repo.commondir())? {
        if let Some(id) = e.name.strip_prefix(&tree_prefix)
            && pool_slot(plan, &e.name).is_none()
        {
            ids.insert(id.to_string());
        }
    }
    Ok(ids
        .into_iter()
        .filter(|id| check_tree_name(&task_tree_name(plan, id)).is_ok())
        .collect())
}

/// What [`land_task_commit`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Landed {
    /// The plan branch moved to `commit`: the task commit itself (fast-forward) or one commit with
    /// its changes and message on top of the plan's tip.
    Moved { commit: String },
    /// The plan branch already holds the task's work in `commit` (landed before a restart).
    Already { commit: String },
    /// Its changes conflict with the plan's tip in these paths; nothing changed.
    Conflict { paths: Vec<String> },
}

/// Moves the task branch `task_branch`, checked out in the task worktree `tree`, back to where
/// it left `plan_branch` (their merge base), its index and files as they are: what was committed
/// on it since is the tree's uncommitted (staged) changes again, as the checks before a task's
/// commit read them and as the commit that follows takes them (recovery: a commit left there
/// may be the agent's own). Nothing moves when it has no commit of its own; a branch that moved
/// meanwhile is an error (compare-and-swap).
pub(crate) fn uncommit_task_tree(
    tree: &Path,
    task_branch: &str,
    plan_branch: &str,
) -> Result<(), GitError> {
    let repo = open(tree)?;
    let tip = |branch: &str| {
        branch_commit(&repo, branch)?.ok_or_else(|| GitError::RevNotFound {
            rev: branch.to_string(),
        })
    };
    let (ours, plan) = (tip(task_branch)?, tip(plan_branch)?);
    let base = super::bases::merge_base(&repo, ours.id(), plan.id())
        .map_err(GitError::merging(task_branch, plan_branch))?;
    if base == ours.id() {
        return Ok(());
    }
    move_ref(
        &repo,
        &format!("refs/heads/{task_branch}"),
        base,
        Some(ours.id()),
        &format!("orch: back to {plan_branch}, its commits kept as changes to check"),
    )
}

/// Lands `task_commit` (made on a task branch from an earlier tip of `plan_branch`) on
/// `plan_branch`, checked out in `plan_worktree`, as ONE commit with the task commit's message and
/// author: a fast-forward when the task commit stands right on the plan's tip, else the task
/// branch's changes since it left the plan branch (the task commit and any commit the agent made
/// before it) applied onto the tip (a cherry-pick built in memory), so the plan
/// branch stays linear with one commit per task. The files of the plan worktree are checked out
/// safely before the branch moves with a compare-and-swap (as [`super::merge_into`] does, a landing
/// killed in between included). A commit on the plan branch since the task's base with the very
/// same message counts as the task's, landed before.
pub(crate) fn land_task_commit(
    plan_worktree: &Path,
    plan_branch: &str,
    task_commit: &str,
) -> Result<Landed, GitError> {
    let repo = open_checked_out(plan_worktree, plan_branch)?;
    let merge_error = GitError::merging(plan_branch, task_commit);
    let (ours, theirs) = tip_and_commit(&repo, plan_branch, task_commit)?;
    if contains(&repo, ours.id(), theirs.id()).map_err(merge_error)? {
        return Ok(Landed::Already {
            commit: theirs.id().to_string(),
        });
    }
    // Where the task branch left the plan branch: the agent may have committed on it before the
    // task commit, and all of that is the task's work.
    let base = super::bases::merge_base(&repo, ours.id(), theirs.id())
        .and_then(|id| repo.find_commit(id))
        .map_err(merge_error)?;
    if let Some(commit) =
        landed_before(&repo, ours.id(), base.id(), theirs.message_bytes()).map_err(merge_error)?
    {
        return Ok(Landed::Already {
            commit: commit.to_string(),
        });
    }
    let fast_forward = theirs.parent_count() == 1 && theirs.parent_id(0).ok() == Some(ours.id());
    let picked = if fast_forward || ours.id() == base.id() {
        None
    } else {
        super::merge_tree::pick_onto(
            &repo,
            &base.tree().map_err(merge_error)?,
            &theirs.tree().map_err(merge_error)?,
            &ours.tree().map_err(merge_error)?,
        )
        .map_err(merge_error)?
    };
    let tree = if fast_forward || ours.id() == base.id() {
        theirs.tree().map_err(merge_error)?
    } else if let Some(id) = picked {
        repo.find_tree(id).map_err(merge_error)?
    } else {
        let mut index = repo
            .merge_trees(
                &base.tree().map_err(merge_error)?,
                &ours.tree().map_err(merge_error)?,
                &theirs.tree().map_err(merge_error)?,
                None,
            )
            .map_err(merge_error)?;
        if index.has_conflicts() {
            let dirty = dirty_files(plan_worktree, Submodules::Ignored)?;
            if !dirty.is_empty() {
                return Err(GitError::Dirty {
                    path: plan_worktree.to_path_buf(),
                    files: dirty,
                });
            }
            return Ok(Landed::Conflict {
                paths: index_conflicts(&index).map_err(merge_error)?,
            });
        }
        let id = index.write_tree_to(&repo).map_err(merge_error)?;
        repo.find_tree(id).map_err(merge_error)?
    };
    let message = String::from_utf8_lossy(theirs.message_bytes()).into_owned();
    let subject = message.lines().next().unwrap_or_default();
    let log = format!("orch: task commit {task_commit}: {subject}");
    let new = land(
        &Landing {
            repo: &repo,
            worktree: plan_worktree,
            branch: plan_branch,
            ours: &ours,
            tree: &tree,
            dirty: None,
            log: &log,
            cli: true,
        },
        |repo| {
            if fast_forward {
                return Ok(theirs.id());
            }
            let committer = signature(repo)?;
            repo.commit(
                None,
                &theirs.author(),
                &committer,
                &message,
                &tree,
                &[&ours],
            )
        },
    )?;
    // The plan worktree's submodule checkouts follow the landed gitlinks.
    super::submodules::sync_submodules(plan_worktree, false);
    Ok(Landed::Moved {
        commit: new.to_string(),
    })
}

/// A commit in `tip`'s first-parent history since `base` whose message is `message`.
fn landed_before(
    repo: &git2::Repository,
    tip: Oid,
    base: Oid,
    message: &[u8],
) -> Result<Option<Oid>, git2::Error> {
    let mut walk = repo.revwalk()?;
    walk.push(tip)?;
    walk.hide(base)?;
    walk.simplify_first_parent()?;
    for oid in walk {
        let oid = oid?;
        if repo.find_commit(oid)?.message_bytes() == message {
            return Ok(Some(oid));
        }
    }
    Ok(None)
}

/// The paths in conflict in a merge's index (every side's name), sorted.
pub(super) fn index_conflicts(index: &git2::Index) -> Result<Vec<String>, git2::Error> {
    let mut paths = std::collections::BTreeSet::new();
    for conflict in index.conflicts()? {
        let conflict = conflict?;
        for entry in [conflict.ancestor, conflict.our, conflict.their]
            .into_iter()
            .flatten()
        {
            paths.insert(String::from_utf8_lossy(&entry.path).into_owned());
        }
    }
    Ok(paths.into_iter().collect())
}
