//! Read-only checkouts of another repository's commit: what a plan that waits for a plan of
//! another repository sees of its work (`ORCH_REPO_<NAME>`), and the side-by-side directory of
//! `verify_all`. The files of the commit only (no `.git`: nothing there is a repository an
//! agent's git could write through), written by libgit2 into a fresh directory that is then
//! made read-only and renamed into place, so that a reader sees the old checkout or the new one.
//!
//! What the commit holds came from an agent's branch: untrusted. The checkout is written into a
//! directory orch made empty, libgit2 refuses `.git` entries, and no file of it is read by orch.

use std::path::{Path, PathBuf};

use super::error::GitError;
use super::locate::open;

/// Writes the tree of `commit` of the repository at `repo_root` into `dir`, replacing what was
/// there; with `read_only`, files and directories without write permission (links left as they
/// are).
pub(crate) fn export_commit(
    repo_root: &Path,
    commit: &str,
    dir: &Path,
    read_only: bool,
) -> Result<(), GitError> {
    let repo = open(repo_root)?;
    let oid = super::Oid::from_str(commit).map_err(|_| GitError::InvalidOid {
        oid: commit.to_string(),
    })?;
    let found = repo
        .find_commit(oid)
        .map_err(|source| GitError::ReadCommit {
            oid: commit.to_string(),
            source,
        })?;
    let parent = dir.parent().unwrap_or(dir);
    let create = |path: &Path| {
        std::fs::create_dir_all(path).map_err(|source| GitError::CreateDir {
            path: path.to_path_buf(),
            source,
        })
    };
    create(parent)?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    let fresh = parent.join(format!(".{}.new", name.as_deref().unwrap_or("checkout")));
    remove(&fresh);
    create(&fresh)?;
    let mut opts = git2::build::CheckoutBuilder::new();
    opts.force()
        .target_dir(&fresh)
        .update_index(false)
        .recreate_missing(true);
    repo.checkout_tree(found.as_object(), Some(&mut opts))
        .map_err(|source| GitError::Checkout {
            path: fresh.clone(),
            source,
        })?;
    if read_only {
        make_read_only(&fresh);
    }
    remove(dir);
    std::fs::rename(&fresh, dir).map_err(|source| GitError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })
}

/// Removes a checkout made by [`export_commit`] (its directories made writable first); nothing
/// when there is none.
pub(crate) fn remove(dir: &Path) {
    if std::fs::symlink_metadata(dir).is_err() {
        return;
    }
    writable(dir);
    let _ = std::fs::remove_dir_all(dir);
}

/// Every directory and file below `dir` (itself included) without write permission; links are
/// never followed.
fn make_read_only(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for (path, is_dir) in walk(dir) {
        let mode = if is_dir { 0o555 } else { 0o444 };
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
    }
}

/// The directories below `dir` (itself included) writable by their owner again, so that they
/// can be removed.
fn writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for (path, is_dir) in walk(dir) {
        if is_dir {
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
        }
    }
}

/// `dir` and what is below it, each with whether it is a directory; links are listed as files
/// are not: they are left out (never followed, never changed).
fn walk(dir: &Path) -> Vec<(PathBuf, bool)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&d) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        if !meta.is_dir() {
            out.push((d, false));
            continue;
        }
        // Listed after its entries: made read-only after them.
        if let Ok(entries) = std::fs::read_dir(&d) {
            stack.extend(entries.flatten().map(|e| e.path()));
        }
        out.push((d, true));
    }
    out
}
