//! Sparse plans (`paths` in a `[[plan]]`): a worktree that holds only the plan's directories and
//! the files of the root (git's cone mode), its commits keeping the whole tree.
//!
//! libgit2 has no sparse checkout, so a sparse worktree is made by the git CLI: `git worktree add
//! --no-checkout`, `git sparse-checkout set --cone` (which turns on `extensions.worktreeConfig`
//! and writes `core.sparseCheckout` to the worktree's own `config.worktree`: the main checkout and
//! the other worktrees stay whole) and `git read-tree -mu HEAD`, which writes the cone's files
//! only. The entries outside the cone are in the index with git's `skip-worktree` bit.
//!
//! libgit2 reads those bits but its diff of the index against the work tree lists a
//! `skip-worktree` file that is absent as deleted: staging (`add_all`) would commit every file
//! outside the cone as deleted, and a hard reset would write them all. So staging in a sparse
//! worktree puts those entries back ([`keep_skipped`]), what is dirty is read by `git status`
//! (`super::status`), which leaves them out, and a reset goes through the git CLI
//! ([`reset_hard`]).

use std::path::{Path, PathBuf};

use git2::{IndexEntry, Repository};

use super::GitError;
use crate::manifest::in_cone;

/// The `skip-worktree` bit of an index entry's extended flags.
pub(super) const SKIP_WORKTREE: u16 = 1 << 14;

/// Whether the repository opened at a worktree is a sparse checkout (orch's, or the user's):
/// git keeps its patterns in the worktree's admin directory.
pub(crate) fn is_sparse(repo: &Repository) -> bool {
    repo.path().join("info").join("sparse-checkout").is_file()
}

/// Runs `git` in `dir` with `args`; the error says what failed with git's own words.
fn git(dir: &Path, args: &[&str]) -> Result<(), GitError> {
    super::cli::run(dir, args)
        .map(drop)
        .map_err(|e| GitError::Sparse {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Checks out the cone of `dirs` in the new worktree at `path` (made with `--no-checkout`): the
/// cone set in the worktree's own config (`sparse-checkout set --cone`), then only its files
/// written (`read-tree -mu HEAD`).
pub(crate) fn checkout_cone(path: &Path, dirs: &[String]) -> Result<(), GitError> {
    let mut set = vec!["sparse-checkout", "set", "--cone", "--"];
    set.extend(dirs.iter().map(String::as_str));
    while_config_locked(|| git(path, &set))?;
    git(path, &["read-tree", "-mu", "HEAD"])
}

/// How often a git command that writes the repository's config is tried in all while another
/// process holds `config.lock`: git does not wait for that lock.
const CONFIG_LOCK_ATTEMPTS: u32 = 8;

/// Runs `f` (a git command that writes the repository's config: the first `sparse-checkout
/// set` turns on `extensions.worktreeConfig` there) again while it fails because another git
/// process holds the config's lock (orch makes several plans' worktrees at once), up to
/// [`CONFIG_LOCK_ATTEMPTS`] times with doubling pauses from 20 ms (2.5 s in all). Seen in CI:
/// a sparse plan blocked with `could not lock config file .git/config: File exists`.
fn while_config_locked(f: impl FnMut() -> Result<(), GitError>) -> Result<(), GitError> {
    super::retry::retry_while(
        (CONFIG_LOCK_ATTEMPTS, std::time::Duration::from_millis(20)),
        |e: &GitError| e.to_string().contains("could not lock config file"),
        f,
    )
}

/// The index's `skip-worktree` entries (files outside the cone), empty when the worktree is not
/// sparse.
pub(crate) fn skipped_entries(repo: &Repository, index: &git2::Index) -> Vec<IndexEntry> {
    if !is_sparse(repo) {
        return Vec::new();
    }
    index
        .iter()
        .filter(|e| e.flags_extended & SKIP_WORKTREE != 0)
        .collect()
}

/// Puts `skipped` (from [`skipped_entries`]) back into `index` after staging removed them as
/// deleted: a file outside the cone stays in the tree as it was.
pub(crate) fn keep_skipped(
    index: &mut git2::Index,
    skipped: &[IndexEntry],
) -> Result<(), git2::Error> {
    for entry in skipped {
        if index
            .get_path(Path::new(&*String::from_utf8_lossy(&entry.path)), 0)
            .is_none()
        {
            index.add(entry)?;
        }
    }
    Ok(())
}

/// `git reset --hard HEAD` and `git clean -fd` in a sparse worktree (ignored files stay), then
/// the cone applied again: libgit2's reset would write every file outside the cone.
pub(crate) fn reset_hard(worktree: &Path) -> Result<(), GitError> {
    git(worktree, &["reset", "--hard", "--quiet", "HEAD"])?;
    git(worktree, &["clean", "-fdq"])?;
    git(worktree, &["sparse-checkout", "reapply"])
}

/// Moves a sparse worktree's index and files from commit `from` to `to` (`git read-tree -m -u`,
/// which keeps to the cone and refuses to overwrite a local change), or with `force` (the
/// worktree is known to hold `to` already, or is put back) `git read-tree --reset -u`.
pub(crate) fn switch(
    worktree: &Path,
    force: bool,
    from: git2::Oid,
    to: git2::Oid,
) -> Result<(), GitError> {
    let (from, to) = (from.to_string(), to.to_string());
    if force {
        git(worktree, &["read-tree", "--reset", "-u", &to])
    } else {
        git(worktree, &["read-tree", "-m", "-u", &from, &to])
    }
}

/// The files of `worktree` outside the cone of `dirs` that git does not ignore, relative and
/// `/`-separated, sorted; at most `limit`. A file as the reference has it is no write. Walks only the directories outside the cone and the
/// ancestors of the cone's directories (the cone's own files are never read).
///
/// The reference: HEAD; with `since` (the commit the work started from, or the branch it was
/// forked from), where HEAD and `since` meet, and then what was committed since then outside
/// the cone is found too (an agent that commits its writes itself). A reference that cannot
/// be read is an error (fail closed).
pub(crate) fn outside_cone(
    worktree: &Path,
    dirs: &[String],
    limit: usize,
    since: Option<&str>,
) -> Result<Vec<String>, GitError> {
    if dirs.is_empty() {
        return Ok(Vec::new());
    }
    let repo = super::repo::open(worktree)?;
    let head_tree = repo.head().and_then(|h| h.peel_to_tree()).ok();
    let failed = |source: git2::Error| GitError::Status {
        path: worktree.to_path_buf(),
        source,
    };
    let base_tree = match since {
        None => head_tree.clone(),
        Some(since) => {
            let head = repo
                .head()
                .and_then(|h| h.peel_to_commit())
                .map_err(failed)?;
            let from = repo
                .revparse_single(since)
                .and_then(|o| o.peel_to_commit())
                .map_err(failed)?;
            let base = super::bases::merge_base(&repo, head.id(), from.id()).map_err(failed)?;
            let base_tree = repo
                .find_commit(base)
                .and_then(|c| c.tree())
                .map_err(failed)?;
            Some(base_tree)
        }
    };
    let mut found = Vec::new();
    if let (Some(_), Some(base), Some(head)) = (since, &base_tree, &head_tree) {
        let diff = repo
            .diff_tree_to_tree(Some(base), Some(head), None)
            .map_err(failed)?;
        for d in diff.deltas() {
            for f in [d.old_file(), d.new_file()] {
                let Some(p) = f.path() else { continue };
                let p = p.to_string_lossy().into_owned();
                if !in_cone(dirs, &p) && !found.contains(&p) {
                    found.push(p);
                }
            }
        }
    }
    let odb = repo.odb().map_err(failed)?;
    // Hashed only when its size is the blob's (from the object's header): a file of another
    // size is no copy, and a huge one is never read.
    let as_head = |rel: &str, full: &Path| {
        base_tree
            .as_ref()
            .and_then(|t| t.get_path(Path::new(rel)).ok())
            .is_some_and(|e| {
                let same_size = odb.read_header(e.id()).is_ok_and(|(size, _)| {
                    std::fs::symlink_metadata(full).is_ok_and(|m| m.len() == size as u64)
                });
                same_size
                    && git2::Oid::hash_file(git2::ObjectType::Blob, full).is_ok_and(|o| o == e.id())
            })
    };
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = worktree.join(&rel);
        // Fail closed: what cannot be read is an error, never taken for nothing written.
        let unreadable = |e: std::io::Error| GitError::Status {
            path: worktree.to_path_buf(),
            source: git2::Error::from_str(&format!("cannot read `{}`: {e}", dir.display())),
        };
        let read = match std::fs::read_dir(&dir) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(unreadable(e)),
        };
        for entry in read {
            let entry = entry.map_err(unreadable)?;
            // A name that is not UTF-8 is compared and reported by its lossy form (never
            // skipped: git would stage it), so it is never found as HEAD has it; the walk goes on
            // by its real name (a directory of such a name is looked into).
            let name = entry.file_name();
            if rel.as_os_str().is_empty() && name == ".git" {
                continue;
            }
            let child = rel.join(&name);
            let child_str = child.to_string_lossy().into_owned();
            let kind = entry.file_type().map_err(unreadable)?;
            if kind.is_dir() {
                // Inside a cone directory: nothing to look at.
                if dirs.iter().any(|d| {
                    child_str == *d
                        || (child_str.len() > d.len()
                            && child_str.starts_with(d.as_str())
                            && child_str.as_bytes()[d.len()] == b'/')
                }) {
                    continue;
                }
                if repo
                    .is_path_ignored(format!("{child_str}/"))
                    .unwrap_or(false)
                {
                    continue;
                }
                stack.push(child);
            } else if !in_cone(dirs, &child_str)
                && !repo.is_path_ignored(&child_str).unwrap_or(false)
                && !as_head(&child_str, &entry.path())
                && !found.contains(&child_str)
            {
                found.push(child_str);
            }
        }
    }
    found.sort();
    found.truncate(limit);
    Ok(found)
}

/// Which of `dirs` are not directories in the tree of the first of `branches` that exists (a
/// plan's branch, else its target): a plan's `paths` must name directories of its base. `None`
/// when none of the branches exists.
pub(crate) fn missing_dirs(
    repo_root: &Path,
    branches: &[&str],
    dirs: &[String],
) -> Result<Option<Vec<String>>, GitError> {
    let repo = super::repo::open(repo_root)?;
    for branch in branches {
        let Some(commit) = super::repo::branch_commit(&repo, branch)? else {
            continue;
        };
        let tree = commit.tree().map_err(|source| GitError::ReadCommit {
            oid: commit.id().to_string(),
            source,
        })?;
        let missing = dirs
            .iter()
            .filter(|d| {
                tree.get_path(Path::new(d.as_str()))
                    .map_or(true, |e| e.kind() != Some(git2::ObjectType::Tree))
            })
            .cloned()
            .collect();
        return Ok(Some(missing));
    }
    Ok(None)
}
