//! Nested repositories in a worktree an agent wrote: a `.git` (directory, file or link) below
//! its root, or a gitlink its changes add, that the main checkout does not declare as a
//! submodule.
//!
//! git reads the configuration of a repository nested in the work tree it stages: `git add -A`
//! runs a `git status` of its own inside each gitlink that holds a `.git`, and that status runs
//! the nested repository's filter drivers, its `core.fsmonitor`, what its config names. orch's
//! `-c` settings turn off the settings they name, never every driver of a config it does not
//! know. So a worktree with a nested repository is never staged: [`check`] walks the work tree
//! (every directory, ignored ones included, links never followed) before orch's git stages it,
//! and a commit whose tree adds an undeclared gitlink is not made ([`new_gitlinks`]). The only
//! `.git` allowed below the root is that of orch's own submodule checkouts
//! ([`super::submodules::own_checkouts`]), put back from orch's records before git reads them.
//!
//! The main work tree (the user's own checkout, which holds orch's worktrees) is not walked:
//! no agent writes it.

use std::path::{Path, PathBuf};

use super::GitError;

/// How many nested repositories a refusal names (the walk goes on to the end only when none is
/// found).
const NAMED: usize = 10;

/// `Err(GitError::Nested)` naming the nested repositories of `worktree` (the `.git` entries
/// below its root other than those of orch's submodule checkouts); `Ok` when there are none or
/// `worktree` is a main work tree. A directory that cannot be read fails the check (closed).
pub(crate) fn check(worktree: &Path) -> Result<(), GitError> {
    let loc = super::locate::locate(worktree)?;
    if !loc.linked {
        return Ok(());
    }
    let found = walk(&loc.work_tree, &super::submodules::own_checkouts(worktree))?;
    if found.is_empty() {
        Ok(())
    } else {
        Err(GitError::Nested {
            path: loc.work_tree,
            found,
        })
    }
}

/// The `.git` entries below `root` (not `root/.git`), `/`-separated from the root, except those
/// of the checkouts at `allowed`; at most [`NAMED`].
///
/// A directory is read only when it changed since a walk of this process last read it: its
/// entries are kept with its change time (`ctime`, which no process can set back, as it can
/// `mtime`) and inode, and kept only when that change was more than a second before the read,
/// so that an entry made in the same clock tick as the read is never missed. A walk of a tree
/// that did not change stats each directory once (a task's commit walks its tree twice: the
/// check before the commit, and staging's).
fn walk(root: &Path, allowed: &[String]) -> Result<Vec<String>, GitError> {
    let mut found = Vec::new();
    let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Some(listing) = listing(&dir)? else {
            continue;
        };
        let child = |name: &std::ffi::OsStr| {
            if rel.is_empty() {
                name.to_string_lossy().into_owned()
            } else {
                format!("{rel}/{}", name.to_string_lossy())
            }
        };
        // The root's own `.git`, and orch's submodule checkouts' (put back by orch).
        if listing.git && !rel.is_empty() && !allowed.contains(&rel) {
            found.push(child(std::ffi::OsStr::new(".git")));
            if found.len() >= NAMED {
                return Ok(found);
            }
        }
        for name in &listing.dirs {
            stack.push((dir.join(name), child(name)));
        }
    }
    found.sort();
    Ok(found)
}

/// What a walk needs of a directory: whether it holds a `.git` (of any kind), and its
/// subdirectories (links not followed), with the change time and inode it had when read.
#[derive(Clone)]
struct Listing {
    stamp: (i64, i64, u64),
    git: bool,
    dirs: Vec<std::ffi::OsString>,
}

/// The directories read by walks, and their [`Listing`]s.
static READ: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<PathBuf, Listing>>> =
    std::sync::OnceLock::new();

/// The [`Listing`] of `dir`: kept from an earlier walk when the directory did not change since
/// (see [`walk`]), else read. `None` when it is gone (removed while walked, an agent of the plan
/// still writing; or the worktree itself, which an agent deleted: nothing is nested in it, and
/// what uses it next fails naming it).
fn listing(dir: &Path) -> Result<Option<Listing>, GitError> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(unreadable(dir, source)),
    };
    let stamp = (meta.ctime(), meta.ctime_nsec(), meta.ino());
    let read = READ.get_or_init(Default::default);
    if let Some(kept) = read.lock().ok().and_then(|m| m.get(dir).cloned())
        && kept.stamp == stamp
    {
        return Ok(Some(kept));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(unreadable(dir, source)),
    };
    let mut listing = Listing {
        stamp,
        git: false,
        dirs: Vec::new(),
    };
    for entry in entries {
        let entry = entry.map_err(|source| unreadable(dir, source))?;
        let name = entry.file_name();
        if name == ".git" {
            listing.git = true;
            continue;
        }
        // `DirEntry::file_type` does not follow a link: a link to a directory is a leaf.
        match entry.file_type() {
            Ok(t) if t.is_dir() => listing.dirs.push(name),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(unreadable(&entry.path(), source)),
        }
    }
    if stamp.0 < now - 1
        && let Ok(mut m) = read.lock()
    {
        m.insert(dir.to_path_buf(), listing.clone());
    }
    Ok(Some(listing))
}

fn unreadable(path: &Path, source: std::io::Error) -> GitError {
    GitError::ReadWorktrees {
        path: path.to_path_buf(),
        source,
    }
}

/// The gitlinks `new` adds over `old` (a tree orch is about to commit and its parent's, or a
/// branch's tip and where its work started) at paths that are not submodules the main checkout
/// declares for `worktree`: a gitlink that was not one before, at a path the main checkout does
/// not declare. A diff of the two trees, which descends only into the directories that differ.
pub(crate) fn new_gitlinks(
    repo: &git2::Repository,
    worktree: &Path,
    old: Option<&git2::Tree<'_>>,
    new: &git2::Tree<'_>,
) -> Result<Vec<String>, git2::Error> {
    let diff = repo.diff_tree_to_tree(old, Some(new), None)?;
    let mut added: Vec<String> = diff
        .deltas()
        .filter(|d| {
            d.new_file().mode() == git2::FileMode::Commit
                && d.old_file().mode() != git2::FileMode::Commit
        })
        .filter_map(|d| {
            d.new_file()
                .path()
                .map(|p| p.to_string_lossy().into_owned())
        })
        .collect();
    if added.is_empty() {
        return Ok(added);
    }
    let declared = super::submodules::declared_paths(worktree);
    added.retain(|p| !declared.contains(p));
    Ok(added)
}

/// The nested repositories of the worktree `worktree` ([`check`]) and the undeclared gitlinks
/// `branch` committed since `since` ([`new_gitlinks`]: an unconfined agent that commits its
/// work itself): all that refuses the commit of its work, named; empty when it may be staged.
pub(crate) fn nested_in(
    worktree: &Path,
    branch: &str,
    since: Option<&str>,
) -> Result<Vec<String>, GitError> {
    let mut found = match check(worktree) {
        Ok(()) => Vec::new(),
        Err(GitError::Nested { found, .. }) => found,
        Err(e) => return Err(e),
    };
    // A worktree an agent deleted: what uses it next fails, naming it.
    let present = std::fs::symlink_metadata(worktree).is_ok_and(|m| m.is_dir());
    if let (Some(since), true) = (since, present) {
        let repo = super::open(worktree)?;
        let tree_of = |rev: &str| -> Result<git2::Tree<'_>, GitError> {
            repo.revparse_single(rev)
                .and_then(|o| o.peel_to_tree())
                .map_err(|_| GitError::RevNotFound {
                    rev: rev.to_string(),
                })
        };
        let (old, new) = (tree_of(since)?, tree_of(&format!("refs/heads/{branch}"))?);
        let committed =
            new_gitlinks(&repo, worktree, Some(&old), &new).map_err(|source| GitError::Diff {
                path: worktree.to_path_buf(),
                target: since.to_string(),
                source,
            })?;
        found.extend(
            committed
                .into_iter()
                .map(|p| format!("{p} (a gitlink committed on `{branch}`)")),
        );
    }
    Ok(found)
}

/// Removes the nested repositories of `worktree` ([`check`]'s `.git` entries, all of them): before
/// orch saves and resets a worktree whose work was refused, so that the save records their
/// files as ordinary files (git would record a gitlink) and the next attempt starts without
/// them. A `.git` directory's history is not kept. Best effort; what cannot be removed stays,
/// and refuses the next commit again.
pub(crate) fn remove_nested(worktree: &Path) {
    let Ok(loc) = super::locate::locate(worktree) else {
        return;
    };
    if !loc.linked {
        return;
    }
    let allowed = super::submodules::own_checkouts(worktree);
    loop {
        let Ok(found) = walk(&loc.work_tree, &allowed) else {
            return;
        };
        if found.is_empty() {
            return;
        }
        let mut removed = false;
        for rel in &found {
            let path = loc.work_tree.join(rel);
            let gone = match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path).is_ok(),
                Ok(_) => std::fs::remove_file(&path).is_ok(),
                Err(_) => false,
            };
            if gone {
                tracing::warn!(path = %path.display(), "nested git repository removed");
            }
            removed |= gone;
        }
        if !removed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_git_below_the_root_is_found_but_the_allowed_ones() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        std::fs::write(root.join(".git"), "gitdir: x\n").expect("root .git");
        for d in ["a/b/c/d/e/.git", "libs/sub", "libs/sub/inner/.git", "src"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::write(root.join("libs/sub/.git"), "gitdir: y\n").expect("sub .git");
        std::fs::write(root.join("src/.git"), "gitdir: /elsewhere\n").expect("file .git");
        std::os::unix::fs::symlink("/tmp", root.join("src/link")).expect("link");
        std::os::unix::fs::symlink("/nowhere", root.join("x.git")).expect("link");
        std::fs::create_dir_all(root.join("l")).expect("mkdir");
        std::os::unix::fs::symlink("/tmp", root.join("l/.git")).expect("link");
        let found = walk(root, &["libs/sub".to_string()]).expect("walk");
        assert_eq!(
            found,
            [
                "a/b/c/d/e/.git",
                "l/.git",
                "libs/sub/inner/.git",
                "src/.git"
            ]
        );
        // A directory changed since the last walk is read again.
        std::fs::create_dir_all(root.join("a/b/.git")).expect("mkdir");
        let found = walk(root, &["libs/sub".to_string()]).expect("walk");
        assert!(found.contains(&"a/b/.git".to_string()), "{found:?}");
    }
}
