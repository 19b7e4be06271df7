//! Before libgit2 writes the files of a tree into a worktree an agent wrote in: no directory it
//! writes beneath may be a symlink. git's own checkout removes a symlink found where a directory
//! is needed (its `has_symlink_leading_path` checks); libgit2's forced checkout and reset write
//! through it (a task that replaced its tracked `conf/` with a link to `$HOME` and failed had
//! orch write the branch's `conf/.bashrc` to `~/.bashrc`). So every directory of the trees a
//! checkout goes between, and of the index it reads, is looked at first, from the top, and a
//! symlink there removed ([`crate::links::remove_links`]). Callers save the worktree's changes
//! first (the link among them) where they save leftovers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::GitError;

/// Removes the symlinks of the worktree `worktree` (of `repo`) found where `trees` or the
/// repository's index on disk have a directory; returns them.
pub(crate) fn remove_tree_links(
    repo: &git2::Repository,
    worktree: &Path,
    trees: &[&git2::Tree<'_>],
) -> Result<Vec<PathBuf>, GitError> {
    let dirs = tree_dirs(repo, worktree, trees)?;
    crate::links::remove_links(worktree, dirs.iter().map(PathBuf::as_path)).map_err(|source| {
        GitError::Checkout {
            path: worktree.to_path_buf(),
            source: git2::Error::from_str(&format!(
                "cannot remove a symbolic link where a directory of the branch goes: {source}"
            )),
        }
    })
}

/// The symlinks [`remove_tree_links`] would remove, as paths relative to `worktree`, nothing
/// removed: for a checkout that must not lose a change (a safe one), which refuses them.
pub(crate) fn tree_links(
    repo: &git2::Repository,
    worktree: &Path,
    trees: &[&git2::Tree<'_>],
) -> Result<Vec<String>, GitError> {
    let dirs = tree_dirs(repo, worktree, trees)?;
    Ok(
        crate::links::find_links(worktree, dirs.iter().map(PathBuf::as_path))
            .into_iter()
            .filter_map(|p| {
                p.strip_prefix(worktree)
                    .ok()
                    .map(|r| r.to_string_lossy().into_owned())
            })
            .collect(),
    )
}

/// The directories of `trees` and of the index on disk, sorted (a directory before what is
/// beneath it).
fn tree_dirs(
    repo: &git2::Repository,
    worktree: &Path,
    trees: &[&git2::Tree<'_>],
) -> Result<BTreeSet<PathBuf>, GitError> {
    let read_error = |source| GitError::Checkout {
        path: worktree.to_path_buf(),
        source,
    };
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    for tree in trees {
        tree.walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
            if entry.kind() == Some(git2::ObjectType::Tree)
                && let Ok(name) = std::str::from_utf8(entry.name_bytes())
            {
                dirs.insert(Path::new(parent).join(name));
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(read_error)?;
    }
    let index_path = repo.path().join("index");
    if index_path.exists() {
        let index = git2::Index::open(&index_path).map_err(read_error)?;
        for entry in index.iter() {
            let Ok(path) = std::str::from_utf8(&entry.path) else {
                continue;
            };
            let mut p = Path::new(path);
            while let Some(parent) = p.parent().filter(|p| !p.as_os_str().is_empty()) {
                if !dirs.insert(parent.to_path_buf()) {
                    break;
                }
                p = parent;
            }
        }
    }
    Ok(dirs)
}
