//! Worktree entries (`<common dir>/worktrees/`) and worktree directories on disk: reading the
//! entries, telling orch's own half-made directory from one in use, and removing a directory so
//! that a kill leaves all of it or none of it.

use std::fs;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

use super::GitError;

/// One entry of `<common dir>/worktrees/`.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) admin: PathBuf,
    /// Where the `gitdir` file points (`<worktree>/.git`); `None` without the file.
    pub(super) gitdir: Option<PathBuf>,
    /// `refs/heads/…` for a branch, the oid for a detached HEAD.
    pub(super) head: Option<String>,
    pub(super) locked: bool,
}

impl Entry {
    pub(super) fn workdir(&self) -> Option<PathBuf> {
        self.gitdir
            .as_ref()
            .and_then(|g| g.parent())
            .map(Path::to_path_buf)
    }

    /// Whether `git worktree prune` would remove it: no `gitdir` file, or its directory is gone.
    pub(super) fn prunable(&self) -> bool {
        !self.locked && self.gitdir.as_ref().is_none_or(|g| !g.exists())
    }
}

pub(super) fn read_entries(common: &Path) -> Result<Vec<Entry>, GitError> {
    let dir = common.join("worktrees");
    let read_error = |source| GitError::ReadWorktrees {
        path: dir.clone(),
        source,
    };
    let listing = match fs::read_dir(&dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_error(e)),
    };
    let mut entries = Vec::new();
    for item in listing {
        let item = item.map_err(read_error)?;
        let admin = item.path();
        if !admin.is_dir() {
            continue;
        }
        // libgit2 creates `gitdir` and then writes it: a kill in between leaves it empty, which
        // must read as "no gitdir" (a leftover of an interrupted add), not as the entry's own
        // directory (found by the crash harness: the entry looked live, its worktree
        // `.git/worktrees`).
        let gitdir = crate::untrusted::read::small_text(&admin.join("gitdir"))
            .ok()
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .filter(|s| !s.trim().is_empty())
            // Relative to the entry (an absolute one replaces it).
            .map(|s| admin.join(s));
        entries.push(Entry {
            name: item.file_name().to_string_lossy().into_owned(),
            head: head_of_dir(&admin),
            locked: held_lock(&admin),
            admin,
            gitdir,
        });
    }
    Ok(entries)
}

/// The `HEAD` file of a git dir: the ref it points at, or the oid when detached.
pub(super) fn head_of_dir(git_dir: &Path) -> Option<String> {
    let text = crate::untrusted::read::small_text(&git_dir.join("HEAD")).ok()?;
    let text = text.trim();
    Some(
        text.strip_prefix("ref:")
            .map_or(text, str::trim)
            .to_string(),
    )
}

/// Whether worktree entry `admin` is locked by a person (`git worktree lock`). The lock
/// `git worktree add` holds while it adds (reason `initializing`; orch runs git with `LC_ALL=C`)
/// does not count: one left behind is an add killed half way. Nor does an empty lock in an entry
/// without a `gitdir`: `git worktree add` writes the lock first and the `gitdir` right after, so
/// that is its lock's write cut short by a kill (a person's lock without a reason is empty too,
/// but only a whole entry, with its `gitdir`, can be locked by `git worktree lock`).
pub(super) fn held_lock(admin: &Path) -> bool {
    match crate::untrusted::read::small_text(&admin.join("locked")) {
        Ok(reason) if reason.trim().is_empty() => {
            crate::untrusted::read::small_text(&admin.join("gitdir"))
                .is_ok_and(|g| !g.trim().is_empty())
        }
        Ok(reason) => reason.trim() != "initializing",
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// Whether the directory at `path` is orch's own worktree of the plan, left half made by a
/// supervisor killed while libgit2 added it, so that removing it loses nothing: either it is empty,
/// or its `.git` file points at the plan's entry `own_admin`, that entry has no index (libgit2
/// writes it when the checkout is over, so no checkout finished there and no agent ever ran there),
/// and every other file in it is the branch tip's version of that file, or the beginning of it
/// (a write cut short). Anything else (a modified, extra or foreign file) makes it not half made.
pub(super) fn half_made(repo: &Repository, path: &Path, own_admin: &Path, tip: Oid) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.is_dir() {
        return false;
    }
    let Ok(mut listing) = fs::read_dir(path) else {
        return false;
    };
    if listing.next().is_none() {
        return true;
    }
    let dot_git = path.join(".git");
    let Ok(dot_git_meta) = fs::symlink_metadata(&dot_git) else {
        return false;
    };
    if !dot_git_meta.is_file() {
        return false;
    }
    // libgit2 creates `.git` and then writes it: a kill in between leaves it empty, before any
    // checkout (so there is nothing else in the directory either).
    if dot_git_meta.len() == 0 {
        return !own_admin.join("index").exists()
            && !held_lock(own_admin)
            && repo
                .find_commit(tip)
                .and_then(|c| c.tree())
                .is_ok_and(|tree| only_checkout_files(repo, &tree, path, Path::new("")));
    }
    let Some(points_at) = crate::untrusted::read::small_text(&dot_git)
        .ok()
        .and_then(|text| {
            let line = text
                .lines()
                .next()?
                .strip_prefix("gitdir:")?
                .trim()
                .to_string();
            Some(path.join(line))
        })
    else {
        return false;
    };
    if canonical(&points_at) != canonical(own_admin)
        || own_admin.join("index").exists()
        || held_lock(own_admin)
    {
        return false;
    }
    let Ok(tree) = repo.find_commit(tip).and_then(|c| c.tree()) else {
        return false;
    };
    only_checkout_files(repo, &tree, path, Path::new(""))
}

/// Whether everything under `dir` (but a top-level `.git`) is a file of `tree` with its content,
/// or the beginning of it.
fn only_checkout_files(repo: &Repository, tree: &git2::Tree, root: &Path, rel: &Path) -> bool {
    let Ok(listing) = fs::read_dir(root.join(rel)) else {
        return false;
    };
    for item in listing {
        let Ok(item) = item else { return false };
        let name = item.file_name();
        if rel.as_os_str().is_empty() && name == ".git" {
            continue;
        }
        let rel = rel.join(&name);
        let Ok(meta) = fs::symlink_metadata(root.join(&rel)) else {
            return false;
        };
        if meta.is_dir() {
            if !only_checkout_files(repo, tree, root, &rel) {
                return false;
            }
            continue;
        }
        let Ok(entry) = tree.get_path(&rel) else {
            return false;
        };
        let Ok(blob) = repo.find_blob(entry.id()) else {
            return false;
        };
        let on_disk = if meta.file_type().is_symlink() {
            match fs::read_link(root.join(&rel)) {
                Ok(link) => link.as_os_str().as_encoded_bytes().to_vec(),
                Err(_) => return false,
            }
        } else if meta.is_file() {
            match crate::untrusted::read::whole(&root.join(&rel), crate::untrusted::read::WORK_FILE)
            {
                Ok(bytes) => bytes,
                Err(_) => return false,
            }
        } else {
            return false;
        };
        if !blob.content().starts_with(&on_disk) {
            return false;
        }
    }
    true
}

/// Where [`discard_dir`] moves a directory before removing it: beside it, hidden.
fn discard_path(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let mut hidden = std::ffi::OsString::from(".");
    hidden.push(name);
    hidden.push(".orch-discard");
    Some(path.with_file_name(hidden))
}

/// Removes a directory of orch's own so that a kill at any moment leaves either all of it, where
/// it was, or none of it there: it is renamed aside first (one atomic step), then removed. A
/// removal cut short by a kill leaves only the renamed copy, which [`sweep_discarded`] removes.
pub(super) fn discard_dir(path: &Path) -> Result<(), GitError> {
    let prune_error = |source| GitError::Prune {
        path: path.to_path_buf(),
        source,
    };
    let Some(aside) = discard_path(path) else {
        return crate::untrusted::remove::remove_path(path).map_err(prune_error);
    };
    sweep_discarded(path)?;
    fs::rename(path, &aside).map_err(prune_error)?;
    crate::untrusted::remove::remove_path(&aside).map_err(prune_error)
}

/// Removes what a [`discard_dir`] of `path` cut short by a kill left beside it.
pub(super) fn sweep_discarded(path: &Path) -> Result<(), GitError> {
    let Some(aside) = discard_path(path) else {
        return Ok(());
    };
    match fs::symlink_metadata(&aside) {
        Ok(m) if m.is_dir() => {
            crate::untrusted::remove::remove_path(&aside).map_err(|source| GitError::Prune {
                path: aside.clone(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// Creates the missing ancestors of `path`; returns them, deepest first.
pub(super) fn create_parents(path: &Path) -> Result<Vec<PathBuf>, GitError> {
    let mut missing = Vec::new();
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        dir = d.parent();
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|source| GitError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    Ok(missing)
}

pub(super) fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
