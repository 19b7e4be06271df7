//! The staging worktree: a linked worktree with a detached HEAD at a merge candidate, where the
//! verify command runs. It is removed when dropped, whatever happened, with its
//! `.git/worktrees/<name>` entry.

use std::fs;
use std::path::{Path, PathBuf};

use git2::{BranchType, Oid, WorktreeAddOptions};

use super::MergeError;
use crate::git;

/// The prefix of staging worktree names (and of their directories under `worktree_root`). Plan
/// names begin with a letter or digit, so it never clashes with a plan's worktree.
pub(crate) const STAGING_PREFIX: &str = ".merge-staging-";

/// A staging worktree; removed on drop.
#[derive(Debug)]
pub(crate) struct Staging {
    path: PathBuf,
    admin: PathBuf,
}

impl Staging {
    /// Makes the staging worktree of `plan` in `dir` (`<worktree_root>`), checked out at `commit`
    /// with a detached HEAD. Leftovers of an earlier run that died are removed first.
    pub(crate) fn create(
        repo_root: &Path,
        dir: &Path,
        plan: &str,
        commit: Oid,
    ) -> Result<Self, MergeError> {
        let name = format!("{STAGING_PREFIX}{plan}");
        Self::create_named(
            repo_root,
            dir,
            &name,
            &format!("orch-merge-staging/{plan}"),
            commit,
        )
    }

    /// As [`Staging::create`], for a worktree named `name` (a resolution worktree,
    /// `.resolve-<plan>`), made through the short-lived branch `temp`.
    pub(crate) fn create_named(
        repo_root: &Path,
        dir: &Path,
        name: &str,
        temp: &str,
        commit: Oid,
    ) -> Result<Self, MergeError> {
        let path = dir.join(name);
        let repo = git::open(repo_root)?;
        let admin = repo.commondir().join("worktrees").join(name);
        let fail = |reason: String| MergeError::Staging {
            path: path.clone(),
            reason,
        };
        remove_leftover(&path, &admin).map_err(fail)?;
        fs::create_dir_all(dir)
            .map_err(|e| fail(format!("cannot create `{}`: {e}", dir.display())))?;
        // libgit2 adds a worktree only for a branch: a short-lived one, deleted once HEAD is
        // detached.
        if let Ok(mut old) = repo.find_branch(temp, BranchType::Local) {
            let _ = old.delete();
        }
        let target = repo
            .find_commit(commit)
            .map_err(|e| fail(format!("cannot read commit `{commit}`: {e}")))?;
        let mut branch = repo
            .branch(temp, &target, true)
            .map_err(|e| fail(format!("cannot create branch `{temp}`: {e}")))?;
        let staging = Self {
            path: path.clone(),
            admin: admin.clone(),
        };
        let added = {
            let mut opts = WorktreeAddOptions::new();
            opts.reference(Some(branch.get()));
            repo.worktree(name, &path, Some(&opts))
                .map_err(|e| fail(e.message().to_string()))
                .and_then(|_| {
                    let linked =
                        git::open(&path).map_err(|e| fail(format!("cannot open it: {e}")))?;
                    linked
                        .set_head_detached(commit)
                        .map_err(|e| fail(format!("cannot detach its HEAD: {e}")))
                })
        };
        let _ = branch.delete();
        // `verify` builds what the target would hold: its submodules too (from the main
        // repository's `.git/modules`, no network; one that cannot be checked out is logged).
        if added.is_ok() {
            git::sync_submodules(&path, true);
        }
        // On failure `staging` is dropped here, removing whatever was made.
        added.map(|()| staging)
    }

    /// The worktree's directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Brings the worktree to `commit` by git's forced checkout of what differs (untracked files
    /// removed, ignored ones such as build output kept) and detaches its HEAD there. What the
    /// last `verify` left (agents' code) is never written through: git's checkout removes a
    /// symlink where a directory goes.
    pub(crate) fn move_to(&self, commit: Oid) -> Result<(), String> {
        let (run, commit) = (
            |args: &[&str]| git::cli::run(&self.path, args),
            commit.to_string(),
        );
        run(&["checkout", "--quiet", "--force", "--detach", &commit])
            .and_then(|_| run(&["clean", "-fdq"]))
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = crate::untrusted::remove::remove_path(&self.path);
        let _ = crate::untrusted::remove::remove_path(&self.admin);
    }
}

/// Removes the worktree `<dir>/<name>` that orch made and a run that died left (a resolution
/// worktree, `.resolve-<plan>`): only if its `.git` names orch's admin entry of that name, which
/// goes too. `Ok(false)`: there was none.
pub(crate) fn remove_named(repo_root: &Path, dir: &Path, name: &str) -> Result<bool, String> {
    let path = dir.join(name);
    let repo = git::open(repo_root).map_err(|e| e.to_string())?;
    let admin = repo.commondir().join("worktrees").join(name);
    let existed = fs::symlink_metadata(&path).is_ok() || admin.exists();
    remove_leftover(&path, &admin)?;
    Ok(existed)
}

/// Removes a staging worktree left by a run that died: its directory (only if it is a worktree
/// of this repository with our name) and its admin entry.
fn remove_leftover(path: &Path, admin: &Path) -> Result<(), String> {
    match fs::symlink_metadata(path) {
        Ok(_) => {
            let dot_git =
                crate::untrusted::read::small_text(&path.join(".git")).unwrap_or_default();
            let points_to_admin = dot_git
                .strip_prefix("gitdir:")
                .map(|g| Path::new(g.trim()))
                .is_some_and(|g| same_path(g, admin));
            if !points_to_admin {
                return Err(format!(
                    "`{}` exists and is not orch's staging worktree; move it away",
                    path.display()
                ));
            }
            crate::untrusted::remove::remove_path(path)
                .map_err(|e| format!("cannot remove the leftover `{}`: {e}", path.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
    }
    match fs::remove_dir_all(admin) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove `{}`: {e}", admin.display())),
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    canon(a) == canon(b)
}

#[cfg(test)]
mod tests {
    use git2::{Repository, RepositoryInitOptions, Signature, Time};

    use super::*;

    /// A repository on `main` with one commit holding `a.txt`; returns (dir, root, commit).
    fn repo() -> (tempfile::TempDir, PathBuf, Oid) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().canonicalize().expect("canonical").join("repo");
        let mut opts = RepositoryInitOptions::new();
        opts.initial_head("main");
        let repo = Repository::init_opts(&root, &opts).expect("init");
        fs::write(root.join("a.txt"), "a\n").expect("write");
        let mut index = repo.index().expect("index");
        index.add_path(Path::new("a.txt")).expect("add");
        index.write().expect("write index");
        let tree = repo
            .find_tree(index.write_tree().expect("tree"))
            .expect("tree");
        let sig = Signature::new("T", "t@example.com", &Time::new(1_700_000_000, 0)).expect("sig");
        let commit = repo
            .commit(Some("HEAD"), &sig, &sig, "initial", &tree, &[])
            .expect("commit");
        (tmp, root, commit)
    }

    #[test]
    fn staging_is_detached_at_the_commit_and_gone_after_drop_even_after_a_crash() {
        let (_tmp, root, commit) = repo();
        let dir = root.join(".orch/worktrees");
        let staging = Staging::create(&root, &dir, "p", commit).expect("create");
        let path = staging.path().to_path_buf();
        assert_eq!(path, dir.join(".merge-staging-p"));
        assert_eq!(fs::read_to_string(path.join("a.txt")).expect("a"), "a\n");
        let linked = Repository::open(&path).expect("open");
        assert!(linked.head_detached().expect("head"));
        assert_eq!(linked.head().expect("head").target(), Some(commit));
        let repo = Repository::open(&root).expect("open");
        // The short-lived branch is gone already.
        assert!(
            repo.find_branch("orch-merge-staging/p", BranchType::Local)
                .is_err()
        );

        // A run that died leaves it behind; the next one starts over.
        std::mem::forget(staging);
        assert!(path.exists());
        let again = Staging::create(&root, &dir, "p", commit).expect("create again");
        drop(again);
        assert!(!path.exists());
        assert!(!root.join(".git/worktrees/.merge-staging-p").exists());
        assert_eq!(repo.worktrees().expect("worktrees").len(), 0);

        // Something else at the path is never removed.
        fs::create_dir_all(&path).expect("mkdir");
        fs::write(path.join("mine.txt"), "mine").expect("write");
        let err = Staging::create(&root, &dir, "p", commit).expect_err("refused");
        assert!(
            err.to_string().contains("is not orch's staging worktree"),
            "{err}"
        );
        assert!(path.join("mine.txt").exists());
    }
}
