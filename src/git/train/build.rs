//! Building a merge in memory: the merged tree and the commit object, never moving a ref; whether
//! a plan is merged already; and the dry run over successive virtual targets.

use std::path::Path;

use git2::{Commit, Oid, Repository, Sort};

use super::MergeError;
use crate::git;
use crate::git::repo::signature;
use crate::manifest::MergeStrategy;

/// What building the merge of a plan branch into a target tip gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Built {
    /// The branch is in the target already: its tip is an ancestor of the target, or merging it
    /// changes nothing (a plan merged with `squash` before).
    AlreadyMerged,
    /// The merge conflicts in these paths; nothing was written.
    Conflict(Vec<String>),
    /// `ff-only`, but the target has commits that are not on the branch.
    FfImpossible,
    /// The commit the target would move to: a new merge or squash commit (not on any ref), or the
    /// branch tip for `ff-only`.
    Ready(Oid),
}

/// What a merge step is about.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Subject<'a> {
    pub(crate) plan: &'a str,
    pub(crate) branch: &'a str,
    pub(crate) target: &'a str,
    /// The commit the plan branch was created at (orch's `orchBase` mark), if known.
    pub(crate) base: Option<&'a str>,
    pub(crate) strategy: MergeStrategy,
}

/// The commit a local branch points at; `None` when there is no such branch.
pub(crate) fn branch_commit<'r>(
    repo: &'r Repository,
    branch: &str,
) -> Result<Option<Commit<'r>>, MergeError> {
    Ok(git::repo::branch_commit(repo, branch)?)
}

/// The tip of the target branch, which must exist.
pub(crate) fn target_commit<'r>(
    repo: &'r Repository,
    target: &str,
) -> Result<Commit<'r>, MergeError> {
    branch_commit(repo, target)?.ok_or_else(|| MergeError::TargetMissing {
        target: target.to_string(),
    })
}

/// Whether `branch` is merged into `target`: its tip is an ancestor of (or equal to) the target's
/// tip, or merging it into the target would change nothing (so a plan landed with `squash` counts
/// as merged until the target changes the same lines again).
///
/// Errors when either branch does not exist. Writes nothing: the trial merge stays in memory.
pub fn is_merged(repo_root: &Path, target: &str, branch: &str) -> Result<bool, MergeError> {
    let repo = git::open(repo_root)?;
    let tip = target_commit(&repo, target)?;
    let theirs = branch_commit(&repo, branch)?.ok_or_else(|| MergeError::BranchMissing {
        branch: branch.to_string(),
    })?;
    merged_into(&repo, &tip, &theirs, branch, target)
}

/// Whether the commit `oid` (hex) is in the history of `target` (or is its tip).
pub(crate) fn target_contains(
    repo_root: &Path,
    target: &str,
    oid: &str,
) -> Result<bool, MergeError> {
    let repo = git::open(repo_root)?;
    let tip = target_commit(&repo, target)?;
    let other = Oid::from_str(oid).map_err(|source| MergeError::Read {
        what: format!("commit `{oid}`"),
        source,
    })?;
    contains(&repo, tip.id(), other, oid, target)
}

/// [`is_merged`] on commits already read.
pub(crate) fn merged_into(
    repo: &Repository,
    tip: &Commit,
    theirs: &Commit,
    branch: &str,
    target: &str,
) -> Result<bool, MergeError> {
    if contains(repo, tip.id(), theirs.id(), branch, target)? {
        return Ok(true);
    }
    Ok(matches!(
        trial_merge(repo, tip, theirs, branch, target, git::Keep::Nothing)?,
        Trial::NoChange
    ))
}

/// Whether `tip` has `other` in its history (or is it).
fn contains(
    repo: &Repository,
    tip: Oid,
    other: Oid,
    branch: &str,
    target: &str,
) -> Result<bool, MergeError> {
    git::repo::contains(repo, tip, other).map_err(|source| MergeError::Build {
        branch: branch.to_string(),
        target: target.to_string(),
        source,
    })
}

/// The result of merging in memory.
enum Trial {
    NoChange,
    Conflict(Vec<String>),
    /// The merged tree.
    Clean(Oid),
}

fn trial_merge(
    repo: &Repository,
    tip: &Commit,
    theirs: &Commit,
    branch: &str,
    target: &str,
    keep: git::Keep,
) -> Result<Trial, MergeError> {
    let merged = git::merge_commits(repo, tip.id(), theirs.id(), keep).map_err(|source| {
        MergeError::Build {
            branch: branch.to_string(),
            target: target.to_string(),
            source,
        }
    })?;
    Ok(match merged {
        git::TreeMerge::Conflict(paths) => Trial::Conflict(paths),
        git::TreeMerge::Clean(tree) if tree == tip.tree_id() => Trial::NoChange,
        git::TreeMerge::Clean(tree) => Trial::Clean(tree),
    })
}

/// Builds the merge of the branch tip `theirs` into the target tip `tip` by `subject.strategy`,
/// writing objects but moving no ref.
pub(crate) fn build(
    repo: &Repository,
    tip: &Commit,
    theirs: &Commit,
    subject: &Subject,
) -> Result<Built, MergeError> {
    if contains(repo, tip.id(), theirs.id(), subject.branch, subject.target)? {
        return Ok(Built::AlreadyMerged);
    }
    let ff_only = subject.strategy == MergeStrategy::FfOnly;
    if ff_only && contains(repo, theirs.id(), tip.id(), subject.branch, subject.target)? {
        return Ok(Built::Ready(theirs.id()));
    }
    let (branch, target) = (subject.branch, subject.target);
    let tree_id = match trial_merge(repo, tip, theirs, branch, target, git::Keep::Objects)? {
        Trial::NoChange => return Ok(Built::AlreadyMerged),
        _ if ff_only => return Ok(Built::FfImpossible),
        Trial::Conflict(paths) => return Ok(Built::Conflict(paths)),
        Trial::Clean(tree) => tree,
    };
    let write_error = |source| MergeError::WriteCommit {
        branch: subject.branch.to_string(),
        source,
    };
    let tree = repo.find_tree(tree_id).map_err(write_error)?;
    let message = message(repo, tip.id(), theirs.id(), subject)?;
    let sig = signature(repo).map_err(write_error)?;
    let parents: Vec<&Commit> = match subject.strategy {
        MergeStrategy::Squash => vec![tip],
        MergeStrategy::Merge | MergeStrategy::FfOnly => vec![tip, theirs],
    };
    let commit = repo
        .commit(None, &sig, &sig, &message, &tree, &parents)
        .map_err(write_error)?;
    Ok(Built::Ready(commit))
}

/// The subjects of the plan's own commits that the target lacks, oldest first: the first-parent
/// line of the branch, without merge commits (the upstream work `orch up` merged in).
pub(crate) fn task_subjects(
    repo: &Repository,
    tip: Oid,
    theirs: Oid,
    branch: &str,
) -> Result<Vec<String>, MergeError> {
    let read = |source| MergeError::Read {
        what: format!("the history of `{branch}`"),
        source,
    };
    let mut walk = repo.revwalk().map_err(read)?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)
        .map_err(read)?;
    walk.simplify_first_parent().map_err(read)?;
    walk.push(theirs).map_err(read)?;
    walk.hide(tip).map_err(read)?;
    let mut out = Vec::new();
    for oid in walk {
        let commit = repo.find_commit(oid.map_err(read)?).map_err(read)?;
        if commit.parent_count() > 1 {
            continue;
        }
        out.push(
            String::from_utf8_lossy(commit.message_bytes())
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        );
    }
    Ok(out)
}

/// `Merge plan `auth` (3 tasks) into main`, then the task commits' subjects, the branch tip and
/// the plan's base commit.
fn message(
    repo: &Repository,
    tip: Oid,
    theirs: Oid,
    subject: &Subject,
) -> Result<String, MergeError> {
    let tasks = task_subjects(repo, tip, theirs, subject.branch)?;
    let n = tasks.len();
    let mut text = format!(
        "Merge plan `{}` ({n} task{}) into {}\n\n",
        subject.plan,
        if n == 1 { "" } else { "s" },
        subject.target
    );
    if !tasks.is_empty() {
        text.push_str("Tasks:\n");
        for t in &tasks {
            text.push_str(&format!("- {t}\n"));
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "Branch: {} at {theirs}{}\n",
        subject.branch,
        if subject.strategy == MergeStrategy::Squash {
            " (squashed)"
        } else {
            ""
        }
    ));
    if let Some(base) = subject.base {
        text.push_str(&format!("Plan base: {base}\n"));
    }
    Ok(text)
}

/// The paths that differ between two trees (added, modified, deleted, renamed: both sides).
pub(crate) fn changed_paths(
    repo: &Repository,
    from: Oid,
    to: Oid,
) -> Result<Vec<String>, MergeError> {
    let read = |source| MergeError::Read {
        what: "the changes of a merge".to_string(),
        source,
    };
    let old = repo
        .find_commit(from)
        .and_then(|c| c.tree())
        .map_err(read)?;
    let new = repo.find_commit(to).and_then(|c| c.tree()).map_err(read)?;
    crate::git::inspect::diff_paths(repo, Some(&old), &new).map_err(read)
}

/// What one step of a dry run predicts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Predicted {
    /// The merge is clean; these paths change on the target.
    Clean { paths: Vec<String> },
    /// It conflicts in these paths.
    Conflict { paths: Vec<String> },
    /// The plan is in the target already.
    AlreadyMerged,
    /// `ff-only` is not possible: the target has commits that are not on the branch.
    FfImpossible,
}

/// Runs merge steps in memory on successive virtual targets: every object it makes goes to an
/// in-memory object database (libgit2's mempack backend), so nothing on disk changes, not even
/// `.git/objects`.
pub(crate) struct Simulator {
    repo: Repository,
    target: String,
    tip: Oid,
}

impl Simulator {
    /// Starts at the current tip of `target`.
    pub(crate) fn new(repo_root: &Path, target: &str) -> Result<Self, MergeError> {
        let repo = git::inspect::open_read_only(repo_root)?;
        let tip = target_commit(&repo, target)?.id();
        Ok(Self {
            repo,
            target: target.to_string(),
            tip,
        })
    }

    /// Predicts merging the plan's branch into the virtual target, and on a clean merge makes
    /// the result the new virtual target.
    pub(crate) fn step(
        &mut self,
        plan: &str,
        branch: &str,
        strategy: MergeStrategy,
    ) -> Result<Predicted, MergeError> {
        let tip = self
            .repo
            .find_commit(self.tip)
            .map_err(|source| MergeError::Read {
                what: format!("the tip of `{}`", self.target),
                source,
            })?;
        let theirs =
            branch_commit(&self.repo, branch)?.ok_or_else(|| MergeError::BranchMissing {
                branch: branch.to_string(),
            })?;
        let subject = Subject {
            plan,
            branch,
            target: &self.target,
            base: None,
            strategy,
        };
        Ok(match build(&self.repo, &tip, &theirs, &subject)? {
            Built::AlreadyMerged => Predicted::AlreadyMerged,
            Built::Conflict(paths) => Predicted::Conflict { paths },
            Built::FfImpossible => Predicted::FfImpossible,
            Built::Ready(next) => {
                let paths = changed_paths(&self.repo, self.tip, next)?;
                self.tip = next;
                Predicted::Clean { paths }
            }
        })
    }
}
