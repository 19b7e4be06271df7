//! What is copied into a new worktree: the request's `copy` paths and the entries of
//! `.worktreeinclude`, kept inside the repository; symlinks are copied as links, and nothing is
//! copied beneath a symlink of the new worktree (a link committed on its branch): refused.

use std::ffi::OsStr;
use std::fs;
use std::path::{Component, Path, PathBuf};

use super::GitError;

/// The file at the repository root listing extra paths to copy into new worktrees.
pub(crate) const WORKTREE_INCLUDE: &str = crate::manifest::WORKTREE_INCLUDE;

/// The paths to copy into a new worktree: `copy`, then the entries of `.worktreeinclude`, expanded
/// (`*` and `?` in the last component) and limited to those that exist.
pub(super) fn copy_list(repo_root: &Path, copy: &[PathBuf]) -> Result<Vec<PathBuf>, GitError> {
    let mut patterns = Vec::new();
    for p in copy {
        patterns.push(
            safe_relative(p).map_err(|reason| GitError::InvalidCopyPath {
                path: p.clone(),
                reason,
            })?,
        );
    }
    // Tracked, so possibly landed from an agent's branch: read as untrusted.
    let lines =
        crate::manifest::worktree_include(repo_root).map_err(|source| GitError::ReadInclude {
            path: repo_root.join(WORKTREE_INCLUDE),
            source,
        })?;
    for line in lines {
        patterns.push(safe_relative(Path::new(&line)).map_err(|reason| {
            GitError::InvalidCopyPath {
                path: PathBuf::from(&line),
                reason: format!("{reason} (in `{WORKTREE_INCLUDE}`)"),
            }
        })?);
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for pattern in patterns {
        for rel in expand(repo_root, &pattern) {
            if !out.contains(&rel) {
                out.push(rel);
            }
        }
    }
    Ok(out)
}

/// `path` as a plain relative path inside the repository, or why it is not one.
fn safe_relative(path: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            Component::ParentDir => return Err("the path contains `..`".into()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("the path is absolute".into());
            }
        }
    }
    match out.components().next() {
        None => Err("the path names the repository root".into()),
        Some(Component::Normal(first)) if first == ".git" => {
            Err("the path is inside `.git`".into())
        }
        _ => Ok(out),
    }
}

fn has_wildcard(s: &OsStr) -> bool {
    s.to_string_lossy().contains(['*', '?'])
}

/// The existing paths `pattern` names; wildcards are honoured in the last component only (a
/// pattern with wildcards elsewhere names nothing).
fn expand(root: &Path, pattern: &Path) -> Vec<PathBuf> {
    let (Some(parent), Some(last)) = (pattern.parent(), pattern.file_name()) else {
        return Vec::new();
    };
    if parent.iter().any(has_wildcard) {
        return Vec::new();
    }
    if !has_wildcard(last) {
        return if fs::symlink_metadata(root.join(pattern)).is_ok() {
            vec![pattern.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let Ok(listing) = fs::read_dir(root.join(parent)) else {
        return Vec::new();
    };
    let glob = last.to_string_lossy();
    let mut found: Vec<PathBuf> = listing
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|name| name != ".git" && wildcard_match(&glob, &name.to_string_lossy()))
        .map(|name| parent.join(name))
        .collect();
    found.sort();
    found
}

pub(crate) use crate::manifest::wildcard_match;

/// Copies `root/rel` to `worktree/rel` unless something is already there; symlinks are copied as
/// links, never followed. Returns whether anything was copied.
pub(super) fn copy_into(root: &Path, worktree: &Path, rel: &Path) -> Result<bool, GitError> {
    let from = root.join(rel);
    let to = worktree.join(rel);
    // Never beneath a symlink of the worktree (one committed on the branch, pointing anywhere):
    // refused, naming the link, before anything is looked at or made beyond it.
    crate::links::refuse_symlinked_parent(worktree, rel).map_err(|source| GitError::Copy {
        from: from.clone(),
        to: to.clone(),
        source,
    })?;
    // Nor from beneath a link of the main checkout that the repository tracks (one a landed
    // branch made, pointing anywhere: `~/.ssh`): orch copies outside any sandbox.
    refuse_tracked_link_above(root, rel).map_err(|source| GitError::Copy {
        from: from.clone(),
        to: to.clone(),
        source,
    })?;
    if fs::symlink_metadata(&to).is_ok() {
        return Ok(false);
    }
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(|source| GitError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    copy_recursive(&from, &to)?;
    Ok(true)
}

/// An error naming the first directory above `rel` in the main checkout `root` that is a
/// symbolic link the repository's index tracks as one (a link committed, landed from a branch);
/// a link of your own there (not tracked) is yours to follow.
fn refuse_tracked_link_above(root: &Path, rel: &Path) -> std::io::Result<()> {
    let mut above = PathBuf::new();
    let parts: Vec<Component<'_>> = rel.components().collect();
    let mut index: Option<git2::Index> = None;
    for c in parts.iter().take(parts.len().saturating_sub(1)) {
        above.push(c);
        let Ok(meta) = fs::symlink_metadata(root.join(&above)) else {
            return Ok(());
        };
        if !meta.file_type().is_symlink() {
            continue;
        }
        if index.is_none() {
            index = Some(
                super::open(root)
                    .and_then(|r| {
                        r.index().map_err(|source| GitError::Open {
                            path: root.to_path_buf(),
                            source,
                        })
                    })
                    .map_err(std::io::Error::other)?,
            );
        }
        let tracked = index
            .as_ref()
            .and_then(|i| i.get_path(&above, 0))
            .is_some_and(|e| e.mode == 0o120_000);
        if tracked {
            return Err(std::io::Error::other(format!(
                "`{}` is a symbolic link committed in the repository, which orch does not copy from beneath (remove it, or copy from where it points)",
                root.join(&above).display()
            )));
        }
        return Ok(());
    }
    Ok(())
}

fn copy_recursive(from: &Path, to: &Path) -> Result<(), GitError> {
    let copy_error = |source| GitError::Copy {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    };
    let meta = fs::symlink_metadata(from).map_err(copy_error)?;
    if meta.file_type().is_symlink() {
        #[cfg(unix)]
        {
            let link = fs::read_link(from).map_err(copy_error)?;
            std::os::unix::fs::symlink(link, to).map_err(copy_error)?;
        }
        return Ok(());
    }
    if meta.is_dir() {
        match fs::create_dir(to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(copy_error(e)),
        }
        for item in fs::read_dir(from).map_err(copy_error)? {
            let item = item.map_err(copy_error)?;
            let target = to.join(item.file_name());
            if fs::symlink_metadata(&target).is_ok() {
                continue;
            }
            copy_recursive(&item.path(), &target)?;
        }
        return Ok(());
    }
    // A FIFO, a socket or a device is not copied (opening one would wait, or act on it):
    // the copy fails naming it.
    if let Some(kind) = crate::untrusted::read::kind_of(&meta) {
        return Err(copy_error(std::io::Error::other(format!(
            "`{}` is {kind}, not a regular file: orch does not copy it",
            from.display()
        ))));
    }
    fs::copy(from, to).map_err(copy_error)?;
    Ok(())
}
