//! What resolution by agent (`crate::merge::resolve`) reads and writes in the repository, by
//! commit and tree ids: git's conflicted merge, what a resolution worktree changed against it,
//! the tree and commit orch builds from the bytes it read, the commits of each side the prompt
//! lists, the attempts saved under `refs/orch/attempts/`. The gates themselves are decided in
//! `crate::merge::resolve`.

use std::collections::BTreeSet;
use std::path::Path;

use git2::build::TreeUpdateBuilder;
use git2::{DiffOptions, FileMode, Oid, Sort, Tree};

use super::MergeError;
use super::repo::MergeRepo;
use crate::git::repo::signature;
use crate::git::{self, Keep, TreeMerge, retry_locked};

/// The most commits of one side [`MergeRepo::side_commits`] looks at.
const MAX_WALK: usize = 500;

/// What a path of a resolution worktree holds, as orch read it (never through a link).
pub(crate) enum WorkFile {
    Absent,
    File {
        bytes: Vec<u8>,
        executable: bool,
    },
    /// A symbolic link (its target, never followed), or a link on the way to it.
    Link(Vec<u8>),
    /// A directory, a device, a FIFO: nothing a resolution leaves.
    Other,
}

impl MergeRepo {
    /// `git merge-tree --write-tree` of `theirs` into `ours` when it conflicts: the tree git wrote
    /// with its conflict markers, and the conflicted paths. `None`: it merges cleanly, or git
    /// could not answer.
    pub(crate) fn marked_conflict(
        &self,
        ours: Oid,
        theirs: Oid,
    ) -> Result<Option<(Oid, Vec<String>)>, MergeError> {
        let m =
            git::marked_conflict(&self.repo, ours, theirs).map_err(|source| MergeError::Read {
                what: "the conflicted merge".into(),
                source,
            })?;
        Ok(m.map(|m| (m.tree, m.paths)))
    }

    /// The tree of the clean merge of `theirs` into `ours` (written to the object database), or
    /// the conflicted paths.
    pub(crate) fn merged_tree(
        &self,
        ours: Oid,
        theirs: Oid,
    ) -> Result<Result<Oid, Vec<String>>, MergeError> {
        match git::merge_commits(&self.repo, ours, theirs, Keep::Objects).map_err(|source| {
            MergeError::Read {
                what: "the merge".into(),
                source,
            }
        })? {
            TreeMerge::Clean(tree) => Ok(Ok(tree)),
            TreeMerge::Conflict(paths) => Ok(Err(paths)),
        }
    }

    /// Whether merging `theirs` into `ours` conflicts (a read-only question; a merge that cannot
    /// be built counts as no conflict).
    pub(crate) fn conflicts(&self, ours: Oid, theirs: Oid) -> bool {
        matches!(
            git::merge_commits(&self.repo, ours, theirs, Keep::Nothing),
            Ok(TreeMerge::Conflict(_))
        )
    }

    /// The tree of the commit `commit`; `what` names it in an error.
    pub(crate) fn commit_tree(&self, commit: Oid, what: &str) -> Result<Oid, MergeError> {
        self.commit(commit, what)?
            .tree()
            .map(|t| t.id())
            .map_err(|source| MergeError::Read {
                what: what.to_string(),
                source,
            })
    }

    /// Writes a commit of `tree` with `parents` (orch's signature), moving no ref.
    pub(crate) fn write_commit(
        &self,
        tree: Oid,
        parents: &[Oid],
        message: &str,
    ) -> Result<Oid, git2::Error> {
        let tree = self.repo.find_tree(tree)?;
        let parents = parents
            .iter()
            .map(|p| self.repo.find_commit(*p))
            .collect::<Result<Vec<_>, _>>()?;
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        let sig = signature(&self.repo)?;
        self.repo.commit(None, &sig, &sig, message, &tree, &parents)
    }

    /// Points `refname` at `commit`, whatever it pointed at.
    pub(crate) fn set_ref(&self, refname: &str, commit: Oid, log: &str) -> Result<(), git2::Error> {
        retry_locked(|| self.repo.reference(refname, commit, true, log)).map(|_| ())
    }

    /// The names of the refs that begin with `prefix`.
    pub(crate) fn ref_names(&self, prefix: &str) -> Vec<String> {
        let Ok(refs) = self.repo.references_glob(&format!("{prefix}*")) else {
            return Vec::new();
        };
        refs.flatten()
            .filter_map(|r| r.name().ok().map(str::to_string))
            .collect()
    }

    /// The bytes of the file at `path` in `tree` (a tree or a commit id); `None` when there is
    /// no such file.
    pub(crate) fn file_at(&self, tree: Oid, path: &str) -> Option<Vec<u8>> {
        let tree = self.tree(tree)?;
        let entry = tree.get_path(Path::new(path)).ok()?;
        let blob = self.repo.find_blob(entry.id()).ok()?;
        Some(blob.content().to_vec())
    }

    /// Whether `path` is in `tree` (a tree or a commit id): a file, a link, a submodule.
    pub(crate) fn has_path(&self, tree: Oid, path: &str) -> bool {
        self.tree(tree)
            .is_some_and(|t| t.get_path(Path::new(path)).is_ok())
    }

    /// What a later run trusts ([`git::Protected`]) resolved in `tree` (a tree or a commit
    /// id); `Err` when it cannot be read (nothing is landed unchecked).
    pub(crate) fn protected(
        &self,
        guarded: &crate::manifest::Guarded,
        tree: Oid,
        repo_root: &Path,
    ) -> Result<git::Protected, String> {
        let t = self
            .tree(tree)
            .ok_or_else(|| format!("cannot read the tree `{tree}`"))?;
        Ok(git::protected_in(guarded, (&self.repo, &t), repo_root))
    }

    /// Whether the index of this repository (a resolution worktree) has unmerged entries.
    pub(crate) fn has_unmerged(&self) -> Result<bool, git2::Error> {
        self.repo.index().map(|i| i.has_conflicts())
    }

    /// The paths that differ between `tree` and the files of this repository's work tree (a
    /// resolution worktree, opened by orch from its own records): changed, added (untracked, not
    /// ignored) or removed.
    pub(crate) fn changed_from(&self, tree: Oid) -> Result<Vec<String>, git2::Error> {
        let tree = self.repo.find_tree(tree)?;
        let mut opts = DiffOptions::new();
        opts.include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_typechange(true)
            .ignore_submodules(true);
        let diff = self
            .repo
            .diff_tree_to_workdir(Some(&tree), Some(&mut opts))?;
        let mut out = BTreeSet::new();
        for d in diff.deltas() {
            for f in [d.old_file(), d.new_file()] {
                if let Some(p) = f.path().and_then(Path::to_str) {
                    out.insert(p.to_string());
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// `tree` with each path of `files` set from what orch read: a file's bytes as a blob
    /// (executable or not), a link as a link, an absent path (or anything else) removed.
    pub(crate) fn tree_with(
        &self,
        tree: Oid,
        files: &[(String, WorkFile)],
    ) -> Result<Oid, git2::Error> {
        let tree = self.repo.find_tree(tree)?;
        let mut b = TreeUpdateBuilder::new();
        for (path, file) in files {
            match file {
                WorkFile::File { bytes, executable } => {
                    let blob = self.repo.blob(bytes)?;
                    let mode = if *executable {
                        FileMode::BlobExecutable
                    } else {
                        FileMode::Blob
                    };
                    b.upsert(path.as_str(), blob, mode);
                }
                WorkFile::Link(target) => {
                    let blob = self.repo.blob(target)?;
                    b.upsert(path.as_str(), blob, FileMode::Link);
                }
                WorkFile::Absent | WorkFile::Other => {
                    b.remove(path.as_str());
                }
            }
        }
        b.create_updated(&self.repo, &tree)
    }

    /// The commits reachable from `side` and not from `other` that changed one of `files`,
    /// newest first, as `<short sha> <subject>`: at most `max` of the first 500 looked at.
    pub(crate) fn side_commits(
        &self,
        side: Oid,
        other: Oid,
        files: &[String],
        max: usize,
    ) -> Vec<String> {
        let repo = &self.repo;
        let Ok(mut walk) = repo.revwalk() else {
            return Vec::new();
        };
        let _ = walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME);
        if walk.push(side).is_err() || walk.hide(other).is_err() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for oid in walk.take(MAX_WALK).flatten() {
            let Ok(c) = repo.find_commit(oid) else {
                continue;
            };
            let Ok(tree) = c.tree() else { continue };
            let parent_tree = c.parent(0).ok().and_then(|p| p.tree().ok());
            let id_at = |t: Option<&Tree>, f: &str| {
                t.and_then(|t| t.get_path(Path::new(f)).ok())
                    .map(|e| e.id())
            };
            let touched = files
                .iter()
                .any(|f| id_at(Some(&tree), f) != id_at(parent_tree.as_ref(), f));
            if touched {
                let id = oid.to_string();
                out.push(format!(
                    "{} {}",
                    &id[..10],
                    c.summary().ok().flatten().unwrap_or("")
                ));
                if out.len() == max {
                    break;
                }
            }
        }
        out
    }

    /// The tree `id` names, or the tree of the commit it names.
    fn tree(&self, id: Oid) -> Option<Tree<'_>> {
        self.repo.find_object(id, None).ok()?.peel_to_tree().ok()
    }
}
