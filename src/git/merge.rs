//! Merging a commit into a plan branch that is checked out in a worktree.

use std::path::Path;

use git2::ErrorCode;
use git2::build::CheckoutBuilder;

use super::GitError;
use super::merge_tree::{Keep, TreeMerge, merge_commits};
use super::repo::{contains, open, parse_oid, retry_locked, signature};
use super::status::{Submodules, dirty_files};

/// What [`merge_into`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MergeOutcome {
    /// `upstream` is already an ancestor of (or equal to) the branch tip; nothing changed.
    AlreadyContained,
    /// A merge commit (two parents) was made, checked out and the branch moved to it.
    Merged { commit: String },
    /// The merge conflicts in these paths; nothing changed.
    Conflict { paths: Vec<String> },
}

/// Merges `upstream` (a commit oid hex) into `branch`, which is checked out in `worktree`, as a
/// real merge commit (two parents, `message`), never a fast-forward, unless `upstream` is already
/// an ancestor of the branch tip.
///
/// The merge is git's (`git merge-tree`: see [`super::merge_tree`]). On conflict it returns [`MergeOutcome::Conflict`] and changes
/// nothing. Otherwise the result is checked out safely in the worktree first, then the branch moves
/// with a compare-and-swap against the tip read before. The worktree must be clean.
pub(crate) fn merge_into(
    worktree: &Path,
    branch: &str,
    upstream: &str,
    message: &str,
) -> Result<MergeOutcome, GitError> {
    let repo = open_checked_out(worktree, branch)?;
    let (ours, theirs) = tip_and_commit(&repo, branch, upstream)?;
    let merge_error = GitError::merging(branch, upstream);
    if contains(&repo, ours.id(), theirs.id()).map_err(merge_error)? {
        return Ok(MergeOutcome::AlreadyContained);
    }
    let dirty = dirty_files(worktree, Submodules::Orch)?;
    let dirty_error = |files| GitError::Dirty {
        path: worktree.to_path_buf(),
        files,
    };
    let tree_id =
        match merge_commits(&repo, ours.id(), theirs.id(), Keep::Objects).map_err(merge_error)? {
            TreeMerge::Clean(tree) => tree,
            TreeMerge::Conflict(_) if !dirty.is_empty() => return Err(dirty_error(dirty)),
            TreeMerge::Conflict(paths) => return Ok(MergeOutcome::Conflict { paths }),
        };
    let tree = repo.find_tree(tree_id).map_err(merge_error)?;
    let commit_error = GitError::committing(worktree);
    let sig = signature(&repo).map_err(commit_error)?;
    let subject = message.lines().next().unwrap_or_default();
    let log = format!("merge {upstream}: {subject}");
    let merged = land(
        &Landing {
            repo: &repo,
            worktree,
            branch,
            ours: &ours,
            tree: &tree,
            dirty: Some(dirty),
            log: &log,
            cli: false,
        },
        |repo| repo.commit(None, &sig, &sig, message, &tree, &[&ours, &theirs]),
    )?;
    // The worktree's submodule checkouts follow the merged gitlinks.
    super::submodules::sync_submodules(worktree, false);
    Ok(MergeOutcome::Merged {
        commit: merged.to_string(),
    })
}

/// The repository of `worktree`, which must have `branch` checked out.
pub(super) fn open_checked_out(
    worktree: &Path,
    branch: &str,
) -> Result<git2::Repository, GitError> {
    let repo = open(worktree)?;
    let refname = format!("refs/heads/{branch}");
    let checked_out = repo
        .find_reference("HEAD")
        .map_err(|source| GitError::ReadHead {
            path: worktree.to_path_buf(),
            source,
        })?
        .symbolic_target()
        .ok()
        .flatten()
        .map(str::to_string);
    if checked_out.as_deref() != Some(refname.as_str()) {
        return Err(GitError::WrongBranch {
            path: worktree.to_path_buf(),
            expected: branch.to_string(),
            found: checked_out.map_or_else(
                || "a detached HEAD".to_string(),
                |r| r.strip_prefix("refs/heads/").unwrap_or(&r).to_string(),
            ),
        });
    }
    Ok(repo)
}

/// A new tip for a branch checked out in a worktree, its tree built in memory.
pub(super) struct Landing<'a, 'r> {
    pub(crate) repo: &'r git2::Repository,
    pub(crate) worktree: &'a Path,
    pub(crate) branch: &'a str,
    /// The branch tip read before the result was built.
    pub(crate) ours: &'a git2::Commit<'r>,
    /// The result's tree.
    pub(crate) tree: &'a git2::Tree<'r>,
    /// The worktree's changed files, read before; `None`: not read (with `cli`, git's two-tree
    /// switch refuses what it would overwrite, and the files are read only when it does).
    pub(crate) dirty: Option<Vec<String>>,
    /// The reflog message.
    pub(crate) log: &'a str,
    /// Update the files through the git CLI (`git read-tree -m -u`, the two-tree switch of
    /// `git checkout`: only the files that differ are written, local changes are never
    /// overwritten), faster than libgit2's checkout on a large tree (the task landings of
    /// `parallel_tasks`, benches/worktrees.rs).
    pub(crate) cli: bool,
}

/// Writes the new tip (`make`), checks it out safely in the worktree, then moves the branch with
/// a compare-and-swap against `ours`; puts the files back when the ref cannot move.
///
/// Changes in the worktree are refused, unless they are exactly this result: what a landing
/// killed between its checkout and its ref update leaves behind. That one is finished.
pub(super) fn land(
    l: &Landing,
    make: impl FnOnce(&git2::Repository) -> Result<git2::Oid, git2::Error>,
) -> Result<git2::Oid, GitError> {
    let (repo, worktree, ours) = (l.repo, l.worktree, l.ours);
    let refname = format!("refs/heads/{}", l.branch);
    let merge_error = GitError::merging(l.branch, ours.id());
    let mut resumed = l.dirty.as_ref().is_some_and(|d| !d.is_empty());
    if resumed
        && !holds_tree(repo, worktree, &ours.tree().map_err(merge_error)?, l.tree)
            .map_err(merge_error)?
    {
        return Err(GitError::Dirty {
            path: worktree.to_path_buf(),
            files: l.dirty.clone().unwrap_or_default(),
        });
    }
    let commit_error = GitError::committing(worktree);
    let merged = make(repo).map_err(commit_error)?;
    let merged_commit = repo.find_commit(merged).map_err(commit_error)?;

    // Work tree first: moving the ref first and checking out HEAD afterwards leaves it stale.
    let checkout_error = |source: git2::Error| {
        if source.code() == ErrorCode::Conflict {
            GitError::Dirty {
                path: worktree.to_path_buf(),
                files: dirty_files(worktree, Submodules::Orch).unwrap_or_default(),
            }
        } else {
            GitError::Checkout {
                path: worktree.to_path_buf(),
                source,
            }
        }
    };
    // libgit2 knows no sparse checkout (it takes the absent files outside the cone for
    // deletions that conflict): a sparse worktree switches through git's `read-tree`.
    let sparse = super::sparse::is_sparse(repo);
    let mut switched = false;
    if l.cli && !resumed {
        let from = ours.tree_id().to_string();
        let to = merged_commit.tree_id().to_string();
        if let Err(e) = super::cli::run_in(worktree, &["read-tree", "-m", "-u", &from, &to]) {
            let files = dirty_files(worktree, Submodules::Ignored).unwrap_or_default();
            // Changed files not read before: they may be what a landing killed halfway left
            // behind (the result's files), which the checkout below finishes.
            resumed = l.dirty.is_none()
                && !files.is_empty()
                && holds_tree(repo, worktree, &ours.tree().map_err(merge_error)?, l.tree)
                    .map_err(merge_error)?;
            if !resumed {
                return Err(if files.is_empty() {
                    e
                } else {
                    GitError::Dirty {
                        path: worktree.to_path_buf(),
                        files,
                    }
                });
            }
        } else {
            switched = true;
        }
    }
    if switched {
        // The git CLI switched index and files.
    } else if sparse {
        super::sparse::switch(worktree, resumed, ours.id(), merged)?;
    } else {
        // A symlink where a directory of either tree goes is never written through: removed
        // before a forced checkout (the files are the result already), refused as a local
        // change in the way of a safe one (nothing lost).
        let (a, b) = (
            ours.tree().map_err(merge_error)?,
            merged_commit.tree().map_err(merge_error)?,
        );
        if resumed {
            super::links::remove_tree_links(repo, worktree, &[&a, &b])?;
        } else {
            let links = super::links::tree_links(repo, worktree, &[&a, &b])?;
            if !links.is_empty() {
                return Err(GitError::Dirty {
                    path: worktree.to_path_buf(),
                    files: links,
                });
            }
        }
        let mut safe = CheckoutBuilder::new();
        if resumed {
            // The files already are the result (checked above): forcing loses nothing and
            // brings the index in line, whatever the killed checkout had written of it.
            safe.force();
        } else {
            safe.safe();
        }
        repo.checkout_tree(merged_commit.as_object(), Some(&mut safe))
            .map_err(checkout_error)?;
    }

    match retry_locked(|| repo.reference_matching(&refname, merged, true, ours.id(), l.log)) {
        Ok(_) => Ok(merged),
        Err(e) => {
            // Put the files back as they were at the old tip (the worktree was clean there).
            if sparse {
                let _ = super::sparse::switch(worktree, true, merged, ours.id());
            } else {
                if let Ok(tree) = ours.tree()
                    && super::links::remove_tree_links(repo, worktree, &[&tree]).is_ok()
                {
                    let mut force = CheckoutBuilder::new();
                    force.force();
                    let _ = repo.checkout_tree(ours.as_object(), Some(&mut force));
                }
            }
            if e.code() == ErrorCode::Modified {
                Err(GitError::BranchMoved {
                    branch: l.branch.to_string(),
                    expected: ours.id().to_string(),
                })
            } else {
                Err(GitError::UpdateRef { refname, source: e })
            }
        }
    }
}

/// Whether the worktree (index and files, untracked files included) is `tree`, or on its way there
/// from `ours` (HEAD): what a merge's checkout killed before its end leaves, every file either the
/// result's or still ours, and the index still ours (libgit2 writes it last).
fn holds_tree(
    repo: &git2::Repository,
    worktree: &Path,
    ours: &git2::Tree,
    tree: &git2::Tree,
) -> Result<bool, git2::Error> {
    let mut opts = git2::DiffOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true);
    let diff = repo.diff_tree_to_workdir_with_index(Some(tree), Some(&mut opts))?;
    if diff.deltas().len() == 0 {
        return Ok(true);
    }
    if repo
        .diff_tree_to_index(Some(ours), None, None)?
        .deltas()
        .len()
        != 0
    {
        return Ok(false);
    }
    // A checkout killed halfway wrote some of the result's files, not all (and no index): every
    // path must be the result's, the beginning of it, or still exactly ours (absent where that
    // has nothing).
    for delta in diff.deltas() {
        let Some(rel) = delta.new_file().path().or_else(|| delta.old_file().path()) else {
            return Ok(false);
        };
        let ours_id = ours.get_path(rel).ok().map(|e| e.id());
        let on_disk = worktree.join(rel);
        let disk_id = match std::fs::symlink_metadata(&on_disk) {
            Err(_) => None,
            Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(&on_disk) {
                Ok(link) => Some(git2::Oid::hash_object(
                    git2::ObjectType::Blob,
                    link.as_os_str().as_encoded_bytes(),
                )?),
                Err(_) => return Ok(false),
            },
            Ok(m) if m.is_file() => Some(git2::Oid::hash_file(git2::ObjectType::Blob, &on_disk)?),
            Ok(_) => return Ok(false),
        };
        let result_id = tree.get_path(rel).ok().map(|e| e.id());
        if disk_id == ours_id || disk_id == result_id {
            continue;
        }
        // libgit2's checkout writes a file in place (create, then write): a kill in between
        // leaves the beginning of the result's file, possibly nothing of it.
        let cut_short = match (result_id, std::fs::symlink_metadata(&on_disk)) {
            (Some(id), Ok(m)) if m.is_file() => {
                let blob = repo.find_blob(id)?;
                crate::untrusted::read::whole(&on_disk, crate::untrusted::read::WORK_FILE)
                    .is_ok_and(|bytes| blob.content().starts_with(&bytes))
            }
            _ => false,
        };
        if !cut_short {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The tip of `branch` and the commit `oid` (hex): the two sides of a merge or a landing.
pub(super) fn tip_and_commit<'r>(
    repo: &'r git2::Repository,
    branch: &str,
    oid: &str,
) -> Result<(git2::Commit<'r>, git2::Commit<'r>), GitError> {
    Ok((branch_tip_commit(repo, branch)?, commit_of(repo, oid)?))
}

/// The commit `oid` (hex) names.
fn commit_of<'r>(repo: &'r git2::Repository, oid: &str) -> Result<git2::Commit<'r>, GitError> {
    repo.find_commit(parse_oid(oid)?)
        .map_err(|source| GitError::ReadCommit {
            oid: oid.to_string(),
            source,
        })
}

/// The tip of local branch `branch`, which must exist.
fn branch_tip_commit<'r>(
    repo: &'r git2::Repository,
    branch: &str,
) -> Result<git2::Commit<'r>, GitError> {
    repo.find_reference(&format!("refs/heads/{branch}"))
        .and_then(|r| r.peel_to_commit())
        .map_err(|source| GitError::ReadBranch {
            branch: branch.to_string(),
            source,
        })
}

/// What merging some commits one after the other into a branch would do, found in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MergePreview {
    /// Every merge is clean; per commit, whether the branch (with the merges before it)
    /// already contains it.
    Clean { contained: Vec<bool> },
    /// Merging the commit at `index` conflicts in `paths` (the ones before it merge cleanly).
    Conflict { index: usize, paths: Vec<String> },
}

/// Merges `commits` (hex ids) one after the other into the tip of `branch`, in memory only (as
/// [`merge_into`] would): nothing is written to the
/// repository, not even objects.
pub(crate) fn preview_merges(
    repo_root: &Path,
    branch: &str,
    commits: &[String],
) -> Result<MergePreview, GitError> {
    let repo = super::inspect::open_read_only(repo_root)?;
    let mut ours = branch_tip_commit(&repo, branch)?;
    let mut contained = Vec::new();
    for (index, oid) in commits.iter().enumerate() {
        let merge_error = GitError::merging(branch, oid);
        let theirs = commit_of(&repo, oid)?;
        if contains(&repo, ours.id(), theirs.id()).map_err(merge_error)? {
            contained.push(true);
            continue;
        }
        contained.push(false);
        match merge_commits(&repo, ours.id(), theirs.id(), Keep::Objects).map_err(merge_error)? {
            TreeMerge::Conflict(paths) => return Ok(MergePreview::Conflict { index, paths }),
            TreeMerge::Clean(tree) => {
                // The next merge builds on this one, in memory.
                let tree = repo.find_tree(tree).map_err(merge_error)?;
                let sig = signature(&repo).map_err(merge_error)?;
                let next = repo
                    .commit(None, &sig, &sig, "preview", &tree, &[&ours, &theirs])
                    .and_then(|c| repo.find_commit(c))
                    .map_err(merge_error)?;
                ours = next;
            }
        }
    }
    Ok(MergePreview::Clean { contained })
}
