//! Moving the target branch: where it is checked out, whether that work tree is clean, and the
//! update itself (work tree first, then the ref with a compare-and-swap).

use std::path::{Path, PathBuf};

use git2::build::CheckoutBuilder;
use git2::{ErrorCode, Oid, Repository};

use super::MergeError;
use super::build::{changed_paths, target_commit};
use crate::git::status::{Submodules, WorkState, status};
use crate::git::{self, retry_locked};

/// The work tree (the main one or a linked worktree) that has `target` checked out, if any.
pub(crate) fn checked_out_at(
    repo_root: &Path,
    target: &str,
) -> Result<Option<PathBuf>, MergeError> {
    let repo = git::open(repo_root)?;
    let refname = format!("refs/heads/{target}");
    let head_of = |r: &Repository| {
        r.find_reference("HEAD")
            .ok()
            .and_then(|h| h.symbolic_target().ok().flatten().map(str::to_string))
    };
    if !repo.is_bare()
        && head_of(&repo).as_deref() == Some(refname.as_str())
        && let Some(dir) = repo.workdir()
    {
        return Ok(Some(dir.to_path_buf()));
    }
    let names = repo.worktrees().map_err(|source| MergeError::Read {
        what: "the list of worktrees".into(),
        source,
    })?;
    for name in names.iter().flatten().flatten() {
        let Ok(wt) = repo.find_worktree(name) else {
            continue;
        };
        if wt.validate().is_err() {
            continue;
        }
        let Ok(linked) = Repository::open_from_worktree(&wt) else {
            continue;
        };
        // The back-link (`gitdir`) names the directory; it counts only when that directory's
        // `.git` file points back at this entry, as git's own worktrees do: a link rewritten to
        // another directory (the main work tree, a decoy) never has the target checked out
        // there by a merge.
        if head_of(&linked).as_deref() == Some(refname.as_str()) && links_back(&linked, wt.path()) {
            return Ok(Some(wt.path().to_path_buf()));
        }
    }
    Ok(None)
}

/// Whether the worktree directory `path` has a `.git` file naming `linked`'s admin directory.
fn links_back(linked: &Repository, path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path.join(".git")) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    let Ok(text) = crate::untrusted::read::small_text(&path.join(".git")) else {
        return false;
    };
    let Some(dir) = text.trim().strip_prefix("gitdir:").map(str::trim) else {
        return false;
    };
    let named = path.join(dir);
    match (named.canonicalize(), linked.path().canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The state of the work tree at `path` (the target's: its submodules as git sees them), read
/// without refreshing (rewriting) its index.
pub(crate) fn work_state(path: &Path) -> Result<WorkState, MergeError> {
    Ok(status(path, None, Submodules::Git)?)
}

/// The untracked files among `untracked` that a merge changing `paths` would overwrite: the same
/// path, or one of them inside the other (a file where a directory goes, or the reverse).
pub(crate) fn untracked_in_the_way(untracked: &[String], paths: &[String]) -> Vec<String> {
    let inside =
        |a: &str, b: &str| a.len() > b.len() && a.starts_with(b) && a[b.len()..].starts_with('/');
    untracked
        .iter()
        .filter(|u| {
            let u = u.trim_end_matches('/');
            paths.iter().any(|p| p == u || inside(u, p) || inside(p, u))
        })
        .cloned()
        .collect()
}

/// What [`move_target`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Moved {
    /// The target points at the new commit (and its work tree, if any, shows it).
    Done,
    /// Someone else moved the target away from the expected tip; nothing changed, their commit
    /// is kept.
    TargetMoved,
}

/// Moves `target` from `old` to `new`, holding the ref's lock (`refs/heads/<target>.lock`, as
/// git does) the whole time, so no other git process can move it halfway.
///
/// Under the lock: if the target is no longer at `old`, nothing happens and
/// [`Moved::TargetMoved`] is returned (someone else's commit is kept). If a work tree has the
/// target checked out, `new` is checked out there first, safely (a local change in the way stops
/// it with nothing changed), index included; then the ref moves, with a reflog entry `log`. A
/// checkout or a ref update that fails after the files started to change (a name the file system
/// refuses, a file git will not write) puts that work tree back: the changed paths as `old` has
/// them, what was made where nothing was removed, its index file's bytes as they were.
///
/// `own`: orch's own directories in the repository ([`crate::manifest::Guarded::own`]): a move
/// whose work tree would change a path at or below one, or a file or link at a directory above
/// one, is refused before anything is written, whatever let it through before.
pub(crate) fn move_target(
    repo_root: &Path,
    target: &str,
    (old, new): (Oid, Oid),
    own: &[String],
    log: &str,
) -> Result<Moved, MergeError> {
    let repo = git::open(repo_root)?;
    let refname = format!("refs/heads/{target}");
    let ref_error = |source| MergeError::UpdateRef {
        refname: refname.clone(),
        source,
    };
    let mut tx = repo.transaction().map_err(ref_error)?;
    retry_locked(|| tx.lock_ref(&refname)).map_err(ref_error)?;
    if target_commit(&repo, target)?.id() != old {
        return Ok(Moved::TargetMoved);
    }
    // Where a work tree shows the target: what it was, so that a landing that fails after its
    // files started to change puts them and its index back.
    let mut undo: Option<Undo> = None;
    if let Some(path) = checked_out_at(repo_root, target)? {
        // The work tree shows `old` (it was checked clean before the run): only the paths that
        // differ between `old` and `new` change, so the checkout looks at those alone instead of
        // every file of the work tree.
        let changed = changed_paths(&repo, old, new)?;
        let into_own: Vec<String> = changed
            .iter()
            .filter(|p| crate::manifest::own_path(own, p))
            .cloned()
            .collect();
        if !into_own.is_empty() {
            return Err(MergeError::OwnDirectories {
                target: target.to_string(),
                files: into_own,
            });
        }
        if !changed.is_empty() {
            let work = git::open(&path)?;
            let commit = work.find_commit(new).map_err(|source| MergeError::Read {
                what: format!("commit `{new}`"),
                source,
            })?;
            let u = Undo::before(&work, &path, old, &changed)?;
            let mut safe = CheckoutBuilder::new();
            safe.safe().update_index(true).disable_pathspec_match(true);
            for p in &changed {
                safe.path(p.as_str());
            }
            if let Err(source) = work.checkout_tree(commit.as_object(), Some(&mut safe)) {
                // A local change in the way is found before anything is written (and is the
                // user's: never forced over); any other failure may come half way.
                if source.code() == ErrorCode::Conflict {
                    return Err(MergeError::Dirty {
                        path: path.clone(),
                        target: target.to_string(),
                        files: work_state(&path).map(WorkState::paths).unwrap_or_default(),
                    });
                }
                let e = MergeError::Checkout {
                    path: path.clone(),
                    source,
                };
                return Err(u.put_back(&work, e));
            }
            undo = Some(u);
        }
    }
    let moved = crate::git::repo::signature(&repo)
        .and_then(|sig| tx.set_target(&refname, new, Some(&sig), log))
        .and_then(|()| tx.commit());
    if let Err(source) = moved {
        let e = ref_error(source);
        return Err(match undo {
            Some(u) => match git::open(&u.path) {
                Ok(work) => u.put_back(&work, e),
                Err(_) => e,
            },
            None => e,
        });
    }
    Ok(Moved::Done)
}

/// What a landing needs to put a work tree back as it was when it fails after its checkout
/// started: the index file's bytes, the commit it showed, the paths the landing changes, and
/// those of them (with their directories) that did not exist before.
struct Undo {
    path: PathBuf,
    index: Option<Vec<u8>>,
    old: Oid,
    changed: Vec<String>,
    absent: Vec<String>,
}

impl Undo {
    /// Taken before the checkout of the work tree `path` (of the repository `work`), which shows
    /// `old`, over the `changed` paths.
    fn before(
        work: &Repository,
        path: &Path,
        old: Oid,
        changed: &[String],
    ) -> Result<Self, MergeError> {
        let index = crate::untrusted::read::optional(
            &work.path().join("index"),
            crate::untrusted::read::INDEX,
        )
        .map_err(|e| MergeError::Checkout {
            path: path.to_path_buf(),
            source: git2::Error::from_str(&format!("cannot read its index: {e}")),
        })?;
        let mut absent: Vec<String> = Vec::new();
        for p in changed {
            for a in crate::manifest::ancestors(p).chain(std::iter::once(p.as_str())) {
                if std::fs::symlink_metadata(path.join(a)).is_err() {
                    if !absent.iter().any(|x| x == a) {
                        absent.push(a.to_string());
                    }
                    break;
                }
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            index,
            old,
            changed: changed.to_vec(),
            absent,
        })
    }

    /// Puts the work tree back: the changed paths as `old` has them (forced: the tree was clean
    /// there), what the landing made where nothing was removed, the index file's bytes
    /// restored. Returns `e`, the landing's error, with what could not be put back added.
    fn put_back(self, work: &Repository, e: MergeError) -> MergeError {
        let mut failed: Vec<String> = Vec::new();
        // What the landing made where nothing was: removed, never followed through a link.
        for a in &self.absent {
            let at = self.path.join(a);
            let above_is_link = crate::manifest::ancestors(a).any(|d| {
                std::fs::symlink_metadata(self.path.join(d))
                    .is_ok_and(|m| m.file_type().is_symlink())
            });
            if above_is_link {
                continue;
            }
            let gone = match std::fs::symlink_metadata(&at) {
                Err(_) => Ok(()),
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&at),
                Ok(_) => std::fs::remove_file(&at),
            };
            if let Err(err) = gone {
                failed.push(format!("`{a}`: {err}"));
            }
        }
        let old = work.find_commit(self.old);
        let kept: Vec<&String> = match &old {
            Ok(c) => {
                let tree = c.tree().ok();
                self.changed
                    .iter()
                    .filter(|p| {
                        tree.as_ref()
                            .is_some_and(|t| t.get_path(Path::new(p.as_str())).is_ok())
                    })
                    .collect()
            }
            Err(_) => Vec::new(),
        };
        if let Ok(c) = &old
            && !kept.is_empty()
        {
            let mut force = CheckoutBuilder::new();
            force
                .force()
                .update_index(false)
                .disable_pathspec_match(true);
            for p in &kept {
                force.path(p.as_str());
            }
            if let Err(err) = work.checkout_tree(c.as_object(), Some(&mut force)) {
                failed.push(format!("the files of `{}`: {err}", self.old));
            }
        }
        if let Err(err) = self.restore_index(work) {
            failed.push(format!("its index: {err}"));
        }
        if failed.is_empty() {
            return e;
        }
        MergeError::Checkout {
            path: self.path.clone(),
            source: git2::Error::from_str(&format!(
                "{e}; and cannot put back {}",
                failed.join(", ")
            )),
        }
    }

    /// Writes the index file back as it was, under git's lock (`index.lock`, then a rename).
    fn restore_index(&self, work: &Repository) -> std::io::Result<()> {
        let index = work.path().join("index");
        let Some(bytes) = &self.index else {
            return match std::fs::remove_file(&index) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        };
        let lock = work.path().join("index.lock");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)?;
        let written = std::io::Write::write_all(&mut f, bytes).and_then(|()| f.sync_all());
        if let Err(e) = written {
            let _ = std::fs::remove_file(&lock);
            return Err(e);
        }
        std::fs::rename(&lock, &index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untracked_files_in_the_way() {
        let untracked: Vec<String> = ["a.txt", "dir/x", "notes/", "keep.txt", "b"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        let paths: Vec<String> = ["a.txt", "dir", "notes/n.md", "bb"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        assert_eq!(
            untracked_in_the_way(&untracked, &paths),
            ["a.txt", "dir/x", "notes/"]
        );
    }
}
