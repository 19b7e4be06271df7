//! [`MergeRepo`]: the repository as the merge train, the integration preview and resolution see
//! it, by commit ids; libgit2's objects stay in this module.

use std::path::Path;

use git2::{ErrorCode, Oid, Repository};

use super::MergeError;
use super::build::{Built, Subject, branch_commit, build, target_commit};
use crate::git::repo::contains;
use crate::git::{self, retry_locked};

/// One open repository (libgit2's handle is `Send`, not `Sync`: one per thread).
pub(crate) struct MergeRepo {
    pub(super) repo: Repository,
}

impl std::fmt::Debug for MergeRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MergeRepo")
    }
}

impl MergeRepo {
    /// The repository of the work tree `repo_root`.
    pub(crate) fn open(repo_root: &Path) -> Result<Self, MergeError> {
        Ok(Self {
            repo: git::open(repo_root)?,
        })
    }

    /// As [`MergeRepo::open`]; with `in_memory`, every object written goes to an in-memory
    /// object database (libgit2's mempack backend), so nothing on disk changes, not even
    /// `.git/objects`.
    pub(crate) fn open_with(repo_root: &Path, in_memory: bool) -> Result<Self, MergeError> {
        let repo = git::open(repo_root)?;
        if in_memory {
            git::inspect::writes_in_memory(&repo, repo_root)?;
        }
        Ok(Self { repo })
    }

    /// The commit a local branch points at; `None` when there is no such branch.
    pub(crate) fn branch_tip(&self, branch: &str) -> Result<Option<Oid>, MergeError> {
        Ok(branch_commit(&self.repo, branch)?.map(|c| c.id()))
    }

    /// The tip of the target branch, which must exist.
    pub(crate) fn target_tip(&self, target: &str) -> Result<Oid, MergeError> {
        Ok(target_commit(&self.repo, target)?.id())
    }

    /// Whether `tip` has `other` in its history (or is it); `what` names the history in an error.
    pub(crate) fn contains(&self, tip: Oid, other: Oid, what: &str) -> Result<bool, MergeError> {
        contains(&self.repo, tip, other).map_err(|source| MergeError::Read {
            what: what.to_string(),
            source,
        })
    }

    /// Builds the merge of the commit `theirs` into the commit `tip` by `subject.strategy`,
    /// writing objects but moving no ref.
    pub(crate) fn build(
        &self,
        tip: Oid,
        theirs: Oid,
        subject: &Subject,
    ) -> Result<Built, MergeError> {
        let tip = self.commit(tip, &format!("the tip of `{}`", subject.target))?;
        let theirs = self.commit(theirs, &format!("the tip of `{}`", subject.branch))?;
        build(&self.repo, &tip, &theirs, subject)
    }

    /// The tree of the commit `commit`, if it can be read.
    pub(crate) fn tree_of(&self, commit: Oid) -> Option<Oid> {
        self.repo.find_commit(commit).ok().map(|c| c.tree_id())
    }

    /// Creates the lightweight tag `tag` on `tip` (a tag of that name on the same commit is
    /// fine; on another commit it is an error, in words).
    pub(crate) fn tag(&self, tag: &str, tip: Oid, log: &str) -> Result<(), String> {
        let refname = format!("refs/tags/{tag}");
        match retry_locked(|| self.repo.reference(&refname, tip, false, log)) {
            Ok(_) => Ok(()),
            Err(e) if e.code() == ErrorCode::Exists => {
                let existing = self
                    .repo
                    .find_reference(&refname)
                    .and_then(|r| r.peel_to_commit())
                    .map_err(|e| e.message().to_string())?;
                if existing.id() == tip {
                    Ok(())
                } else {
                    Err(format!("it exists and points at {} instead", existing.id()))
                }
            }
            Err(e) => Err(e.message().to_string()),
        }
    }

    pub(super) fn commit(&self, id: Oid, what: &str) -> Result<git2::Commit<'_>, MergeError> {
        self.repo
            .find_commit(id)
            .map_err(|source| MergeError::Read {
                what: what.to_string(),
                source,
            })
    }
}
