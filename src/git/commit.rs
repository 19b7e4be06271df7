//! Committing a plan's work: every change at once, saved attempts, and the state of a work tree.

use crate::manifest::SizeLimits;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use git2::{ErrorClass, ErrorCode, IndexAddOption, Oid, Repository};

use super::GitError;
use super::repo::{branch_commit, open, parse_oid, retry_locked, signature, signature_now};
use super::status::{Submodules, dirty_files};

/// What [`commit_all`] committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CommitInfo {
    /// The new commit (hex).
    pub(crate) oid: String,
    /// Files added, modified or deleted relative to the parent.
    pub(crate) files_changed: usize,
    /// Whether the commit changed nothing (its tree is its parent's).
    pub(crate) empty: bool,
}

/// Stages every change in the worktree (new, modified, deleted; respecting `.gitignore`, as
/// `git add -A`) and commits it on HEAD (the plan branch) with `message`; makes an EMPTY commit if
/// nothing changed, so that history maps 1:1 onto tasks.
#[cfg(test)]
pub(crate) fn commit_all(worktree: &Path, message: &str) -> Result<CommitInfo, GitError> {
    commit_in(
        &open(worktree)?,
        worktree,
        message,
        (true, &[], SizeLimits::file_only(u64::MAX)),
        &mut None,
        None,
    )
}

/// [`commit_all`] that leaves orch's own directories `own` out of what it stages
/// ([`crate::manifest::Guarded::own`]), whatever the ignore rules say, and refuses a tree with a
/// file or a link where a directory above one goes.
pub(crate) fn commit_all_except(
    worktree: &Path,
    message: &str,
    (own, limits): (&[String], SizeLimits),
) -> Result<CommitInfo, GitError> {
    commit_in(
        &open(worktree)?,
        worktree,
        message,
        (true, own, limits),
        &mut None,
        None,
    )
}

/// [`commit_all`] onto `branch` (orch's record of what the worktree holds): its tip is the
/// parent and only `refs/heads/<branch>` moves (compare-and-swap), whatever the worktree's `HEAD`
/// says.
///
/// orch's own directories `own` are left out of what it stages, whatever the ignore rules say
/// (see [`commit_all_except`]).
pub(crate) fn commit_all_on(
    worktree: &Path,
    branch: &str,
    message: &str,
    (own, limits): (&[String], SizeLimits),
) -> Result<CommitInfo, GitError> {
    let repo = open(worktree)?;
    commit_in(
        &repo,
        worktree,
        message,
        (true, own, limits),
        &mut None,
        Some(branch),
    )
}

/// A repository kept open for the commits of one work tree (a plan's worktree, one commit per
/// task): opening it costs more than committing a small change (its paths resolved, its config
/// files read and parsed). Each commit sees the repository as a fresh open would: refs and HEAD
/// are read from disk at each use, and the index is read again when its file changed; only the
/// committer's name and email are read from the config once, at the first commit. A failed
/// commit drops the repository; the next one opens it again.
#[derive(Default)]
pub(crate) struct CommitRepo {
    open: Mutex<Option<Kept>>,
}

/// The repository a [`CommitRepo`] keeps, and the committer it found in its config the first
/// time (name and email): reading the config again for each commit would copy every setting of
/// every config file, to find the same two.
struct Kept {
    worktree: PathBuf,
    repo: Repository,
    committer: Option<(String, String)>,
}

impl std::fmt::Debug for CommitRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitRepo")
    }
}

impl CommitRepo {
    /// [`commit_all_on`] through the kept repository.
    pub(crate) fn commit_all_on(
        &self,
        worktree: &Path,
        branch: &str,
        message: &str,
        (own, limits): (&[String], SizeLimits),
    ) -> Result<CommitInfo, GitError> {
        self.commit_on(worktree, branch, message, (true, own, limits))
    }

    /// Commits onto `branch` (see [`commit_all_on`]) with its tip's own tree: an empty commit
    /// whatever the worktree holds. For a task reported from outside while an agent of the plan
    /// is still writing in the worktree: that agent's unfinished changes belong to its own
    /// task's commit, not to this one.
    pub(crate) fn commit_unchanged_on(
        &self,
        worktree: &Path,
        branch: &str,
        message: &str,
    ) -> Result<CommitInfo, GitError> {
        self.commit_on(
            worktree,
            branch,
            message,
            (false, &[], SizeLimits::file_only(u64::MAX)),
        )
    }

    fn commit_on(
        &self,
        worktree: &Path,
        branch: &str,
        message: &str,
        stage: (bool, &[String], SizeLimits),
    ) -> Result<CommitInfo, GitError> {
        let f = |repo: &Repository, who: &mut Option<(String, String)>| {
            commit_in(repo, worktree, message, stage, who, Some(branch))
        };
        // A poisoned lock (a commit panicked): commit through a repository of its own.
        let Ok(mut slot) = self.open.lock() else {
            return f(&open(worktree)?, &mut None);
        };
        let mut kept = match slot.take() {
            Some(k) if k.worktree == worktree => k,
            _ => Kept {
                worktree: worktree.to_path_buf(),
                repo: open(worktree)?,
                committer: None,
            },
        };
        let made = f(&kept.repo, &mut kept.committer);
        if made.is_ok() {
            *slot = Some(kept);
        }
        made
    }
}

/// The committer of a commit made now: `known` (name and email) when given, else the
/// repository's config, remembered in `known`.
fn committer(
    repo: &Repository,
    known: &mut Option<(String, String)>,
) -> Result<git2::Signature<'static>, git2::Error> {
    if let Some((name, email)) = known {
        return signature_now(name, email);
    }
    let sig = signature(repo)?;
    if let (Ok(name), Ok(email)) = (sig.name(), sig.email()) {
        *known = Some((name.to_string(), email.to_string()));
    }
    Ok(sig)
}

/// `stage`: whether the work tree is staged (else the parent's tree is committed again),
/// orch's own directories, never staged, and the plan's `max_file_size`: a staged blob over it
/// (one the agent put in the index itself, which no file of the work tree shows) is refused,
/// by the size in its object header.
fn commit_in(
    repo: &Repository,
    worktree: &Path,
    message: &str,
    (stage, own, limits): (bool, &[String], SizeLimits),
    who: &mut Option<(String, String)>,
    branch: Option<&str>,
) -> Result<CommitInfo, GitError> {
    let stage_error = GitError::staging(worktree);
    let commit_error = GitError::committing(worktree);
    let parent = match branch {
        Some(b) => super::repo::branch_commit(repo, b)?,
        None => head_commit(repo, worktree)?,
    };
    let tree_id = match &parent {
        Some(head) if !stage => head.tree_id(),
        _ => {
            // Never staged with a nested repository in the tree: git would read its config.
            super::nested::check(worktree)?;
            stage_with_cli(worktree, own).map_err(stage_error)?;
            // git's own tree writer: its cache of the index's trees (kept by `git add`) writes
            // only the directories that changed, where libgit2 would first parse the whole
            // index (10 MB at 100,000 files).
            let out = super::cli::run(worktree, &["write-tree"])
                .map_err(|e| stage_error(git2::Error::from_str(&e.to_string())))?;
            Oid::from_str(String::from_utf8_lossy(&out).trim()).map_err(stage_error)?
        }
    };
    let tree = repo.find_tree(tree_id).map_err(commit_error)?;
    let parent_tree = parent
        .as_ref()
        .map(git2::Commit::tree)
        .transpose()
        .map_err(commit_error)?;
    super::nested::refuse_new(repo, worktree, parent_tree.as_ref(), &tree)?;
    // Left out when staged; a file or a link where a directory above one goes is refused.
    let found = super::own::own_changes_between(repo, parent_tree.as_ref(), &tree, own)
        .map_err(commit_error)?;
    if !found.is_empty() {
        return Err(GitError::OwnDirectories {
            path: worktree.to_path_buf(),
            found,
        });
    }
    let files_changed = if parent_tree.as_ref().is_some_and(|t| t.id() == tree_id) {
        0
    } else {
        let diff = repo
            .diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), None)
            .map_err(commit_error)?;
        if let Some(found) =
            super::big::large_in_diff(repo, &tree, &diff, limits).map_err(commit_error)?
        {
            return Err(GitError::TooLarge {
                path: worktree.to_path_buf(),
                found: found.to_string(),
            });
        }
        diff.deltas().len()
    };
    let sig = committer(repo, who).map_err(commit_error)?;
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let oid = repo
        .commit(None, &sig, &sig, message, &tree, &parents)
        .map_err(commit_error)?;
    let kind = if parent.is_some() {
        "commit"
    } else {
        "commit (initial)"
    };
    let subject = message.lines().next().unwrap_or_default();
    advance_head(
        repo,
        branch,
        oid,
        parent.as_ref().map(git2::Commit::id),
        &format!("{kind}: {subject}"),
    )?;
    Ok(CommitInfo {
        oid: oid.to_string(),
        files_changed,
        empty: files_changed == 0,
    })
}

/// HEAD commit of a worktree: (oid hex, full message).
pub(crate) fn head_of(worktree: &Path) -> Result<(String, String), GitError> {
    let repo = open(worktree)?;
    let commit = checked_out_commit(&repo, worktree)?;
    Ok((
        commit.id().to_string(),
        String::from_utf8_lossy(commit.message_bytes()).into_owned(),
    ))
}

/// A commit of a branch's recent history, as [`recent_commits`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecentCommit {
    pub(crate) oid: String,
    pub(crate) message: String,
    /// Seconds since the epoch.
    pub(crate) time: i64,
}

/// The worktree's HEAD and the commits behind it (first parents), newest first, at most
/// `limit`, stopping before `base`.
pub(crate) fn recent_commits(
    worktree: &Path,
    base: &str,
    limit: usize,
) -> Result<Vec<RecentCommit>, GitError> {
    let repo = open(worktree)?;
    let mut commit = checked_out_commit(&repo, worktree)?;
    let mut out = Vec::new();
    while out.len() < limit && commit.id().to_string() != base {
        out.push(RecentCommit {
            oid: commit.id().to_string(),
            message: String::from_utf8_lossy(commit.message_bytes()).into_owned(),
            time: commit.time().seconds(),
        });
        match commit.parent(0) {
            Ok(parent) => commit = parent,
            Err(_) => break,
        }
    }
    Ok(out)
}

/// The commit HEAD points at; an unborn branch is an error.
fn checked_out_commit<'r>(
    repo: &'r Repository,
    worktree: &Path,
) -> Result<git2::Commit<'r>, GitError> {
    repo.head()
        .and_then(|h| h.peel_to_commit())
        .map_err(|source| GitError::ReadHead {
            path: worktree.to_path_buf(),
            source,
        })
}

/// Whether the worktree has changes (including untracked, not ignored files).
pub(crate) fn is_dirty(worktree: &Path) -> Result<bool, GitError> {
    Ok(!dirty_paths(worktree)?.is_empty())
}

/// The worktree's changed paths (including untracked, not ignored files; submodules left out),
/// relative to its root ([`super::status`]).
pub(crate) fn dirty_paths(worktree: &Path) -> Result<Vec<String>, GitError> {
    open(worktree)?;
    dirty_files(worktree, Submodules::Ignored)
}

/// Saves the worktree's uncommitted state (if any) as a commit (parent = HEAD, `message`) under
/// `refname` (e.g. `refs/orch/attempts/auth/1.2/1`, overwritten if it exists) WITHOUT moving HEAD,
/// then resets the worktree to HEAD (force checkout, untracked non-ignored files removed; ignored
/// files stay). A nested repository's `.git` is removed first ([`super::nested::remove_nested`]):
/// its files are saved as ordinary files. Returns the saved commit, or `None` if the worktree
/// was clean. (Tests only: orch saves with the plan's `max_file_size`,
/// [`save_and_reset_within`].)
#[cfg(test)]
pub(crate) fn save_and_reset(
    worktree: &Path,
    refname: &str,
    message: &str,
) -> Result<Option<String>, GitError> {
    save_and_reset_within(
        worktree,
        refname,
        message,
        SaveLimits::dropping(Default::default()),
    )
}

/// What a save of a worktree holds to: the plan's limits, and what becomes of a change over them.
#[derive(Clone, Copy, Debug)]
pub struct SaveLimits {
    /// The plan's `max_file_size`, `max_change_size` and `max_change_files`.
    pub(crate) limits: crate::manifest::SizeLimits,
    /// What a change over `limits.change` or `limits.files` (after the files over `limits.file`
    /// are left out) becomes: never hashed either way.
    pub(crate) over: OverLimits,
}

/// What a save does with a change over the plan's limits (see [`SaveLimits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OverLimits {
    /// Not saved: the worktree is reset all the same (a run's save of a refused attempt: the
    /// next attempt starts from the last commit), and the log says what was dropped.
    Drop,
    /// Not saved, and the worktree left as it is: the save fails (`orch clean`, which keeps the
    /// plan rather than lose it).
    Keep,
}

/// The default limits of `plans.toml`, a change over them dropped.
impl Default for SaveLimits {
    fn default() -> Self {
        Self::dropping(crate::manifest::SizeLimits::default())
    }
}

impl SaveLimits {
    /// The plan's `limits`, a change over them dropped (a run's saves).
    pub(crate) fn dropping(limits: crate::manifest::SizeLimits) -> Self {
        Self {
            limits,
            over: OverLimits::Drop,
        }
    }

    /// The plan's `limits`, a change over them kept where it is (`orch clean`'s backups).
    pub(crate) fn keeping(limits: crate::manifest::SizeLimits) -> Self {
        Self {
            limits,
            over: OverLimits::Keep,
        }
    }
}

/// After a failed attempt in a plan's worktree whose agent moved `branch` past `base` with
/// commits over `limits` (their blobs per path, as [`super::big::large_blobs_between`] counts
/// them): those commits are kept under `refname`, the branch goes back to `base` (a
/// compare-and-swap) before anything is checked out, and the worktree is reset to it, which
/// writes only what differs from `base`: a commit of a million files that share one blob (made
/// with git's plumbing, never checked out) is never written to disk. What the attempt left
/// besides is dropped with it (the attempt's change as a whole is over the limits, no save would
/// keep it). `Ok(false)`: the branch did not move, or its commits are within the limits.
pub(crate) fn take_off_commits_over(
    worktree: &Path,
    (branch, base): (&str, &str),
    refname: &str,
    limits: SizeLimits,
) -> Result<bool, GitError> {
    let repo = open(worktree)?;
    let base_id = parse_oid(base)?;
    let Some(tip) = branch_commit(&repo, branch)?.map(|c| c.id()) else {
        return Ok(false);
    };
    if tip == base_id {
        return Ok(false);
    }
    let over = super::big::large_blobs_between(worktree, Some(base), &tip.to_string(), limits)
        .map_err(|e| GitError::staging(worktree)(git2::Error::from_str(&e)))?;
    if over.is_none() {
        return Ok(false);
    }
    move_ref(&repo, refname, tip, None, "orch: save attempt")?;
    move_ref(
        &repo,
        &format!("refs/heads/{branch}"),
        base_id,
        Some(tip),
        "orch: a failed attempt's commits over the limits taken off (saved)",
    )?;
    reset_to_head(&repo, worktree)?;
    Ok(true)
}

/// [`save_and_reset`] that leaves out of what it saves every file over `save.limits.file` bytes
/// (its apparent size, read by `lstat` before staging: never hashed; a tracked one keeps HEAD's
/// version in the saved commit): the reset then removes it, or puts HEAD's back. A change whose
/// other files are more than `save.limits.files`, or larger together than `save.limits.change`
/// (by `lstat`, before anything is hashed), is not saved: with [`OverLimits::Drop`] the worktree
/// is reset all the same (`Ok(None)`), with [`OverLimits::Keep`] it is left as it is
/// ([`GitError::TooLarge`]).
pub(crate) fn save_and_reset_within(
    worktree: &Path,
    refname: &str,
    message: &str,
    save: SaveLimits,
) -> Result<Option<String>, GitError> {
    let max_file = save.limits.file;
    let repo = open(worktree)?;
    // A nested repository is never saved as a gitlink, nor left for the next attempt.
    super::nested::remove_nested(worktree);
    // Nothing over the limit is hashed, by git's status, libgit2's staging or git's reset: a
    // tracked file git would compare by content (outside a sparse cone, or without stat data)
    // is removed first (the reset below would remove it, or put HEAD's back: HEAD's version is
    // what the save keeps), never through a link; an untracked one is left out of the staging
    // (the reset removes it).
    let large = super::big::large_unhashed(worktree, max_file, super::big::Untracked::Found)?;
    let mut replaced: Vec<git2::IndexEntry> = Vec::new();
    for found in large {
        let shown = found.shown();
        let super::big::Unhashed { raw, size, entry } = found;
        if let Some(entry) = entry {
            crate::untrusted::remove::remove_file_beneath(worktree, &raw).map_err(|e| {
                GitError::staging(worktree)(git2::Error::from_str(&format!(
                    "cannot remove `{}` ({}, over `max_file_size`): {e}",
                    shown.escape_debug(),
                    super::big::human(size)
                )))
            })?;
            replaced.push(entry);
        }
    }
    if replaced.is_empty() && dirty_files(worktree, Submodules::Orch)?.is_empty() {
        super::submodules::sync_submodules(worktree, false);
        return Ok(None);
    }
    // A change over the plan's limits is never hashed (the files over `max_file` left out).
    if let Some(found) = super::big::change_over(worktree, save.limits)? {
        if save.over == OverLimits::Keep {
            return Err(GitError::TooLarge {
                path: worktree.to_path_buf(),
                found: format!("{found}; it is not saved, and left where it is"),
            });
        }
        tracing::warn!(worktree = %worktree.display(), %found, "a change over the plan's limits is not saved (never hashed): dropped");
        reset_to_head(&repo, worktree)?;
        return Ok(None);
    }
    let head = checked_out_commit(&repo, worktree)?;
    let stage_error = GitError::staging(worktree);
    let commit_error = GitError::committing(worktree);
    // libgit2 stages a submodule through its `.git` file: orch's own first.
    super::submodules::pin_submodules(worktree)
        .map_err(|e| stage_error(git2::Error::from_str(&e.to_string())))?;
    // Stage in memory only: the index file is rewritten by the reset below.
    let mut index = repo.index().map_err(stage_error)?;
    let skipped = super::sparse::skipped_entries(&repo, &index);
    while_files_change(&mut index, |index| {
        stage_everything(index, worktree, max_file)?;
        super::sparse::keep_skipped(index, &skipped)?;
        // The large files removed above keep their entries (HEAD's version).
        super::sparse::keep_skipped(index, &replaced)
    })
    .map_err(stage_error)?;
    let tree_id = index.write_tree().map_err(stage_error)?;
    let tree = repo.find_tree(tree_id).map_err(commit_error)?;
    let sig = signature(&repo).map_err(commit_error)?;
    let saved = repo
        .commit(None, &sig, &sig, message, &tree, &[&head])
        .map_err(commit_error)?;
    retry_locked(|| repo.reference(refname, saved, true, "orch: save attempt")).map_err(
        |source| GitError::UpdateRef {
            refname: refname.to_string(),
            source,
        },
    )?;
    reset_to_head(&repo, worktree)?;
    Ok(Some(saved.to_string()))
}

/// Resets the worktree to its HEAD with git's own reset (a symlink where a directory goes is
/// removed, never written through; in a sparse worktree only the cone is written): untracked
/// files removed, ignored ones kept. Its submodule checkouts follow HEAD again (one with
/// uncommitted changes is left as it is, with a warning: nothing is lost).
fn reset_to_head(repo: &Repository, worktree: &Path) -> Result<(), GitError> {
    if super::sparse::is_sparse(repo) {
        super::sparse::reset_hard(worktree)?;
    } else {
        super::cli::run_in(worktree, &["reset", "--hard", "--quiet", "HEAD"])?;
        super::cli::run_in(worktree, &["clean", "-fdq"])?;
    }
    super::submodules::sync_submodules(worktree, false);
    Ok(())
}

/// How often staging is tried when files change under it, and the first pause between tries
/// (doubled each time, at most [`STAGE_PAUSE_MAX`]): about 1.5 s in all.
const STAGE_ATTEMPTS: u32 = 14;
const STAGE_PAUSE: Duration = Duration::from_millis(2);
const STAGE_PAUSE_MAX: Duration = Duration::from_millis(200);

/// `git add -A` on an in-memory index: new and modified files (not ignored ones), deletions.
/// One walk of the work tree: libgit2's `add_all` applies its diff of the index against the work
/// tree, which lists deleted files too, and removes those from the index (`update_all` would walk
/// the tree again for nothing). A file over `max_file` bytes (`lstat`, before it is read) is
/// skipped: its index entry stays as it was.
fn stage_everything(
    index: &mut git2::Index,
    worktree: &Path,
    max_file: u64,
) -> Result<(), git2::Error> {
    let mut skip_large = |path: &Path, _: &[u8]| -> i32 {
        let large = std::fs::symlink_metadata(worktree.join(path))
            .is_ok_and(|m| !m.is_dir() && m.len() > max_file);
        i32::from(large)
    };
    index.add_all(["*"], IndexAddOption::DEFAULT, Some(&mut skip_large))
}

/// `git add -A` in `worktree` through the git CLI, tried again (as [`while_files_change`] does)
/// while it fails: a file that changed as git read it, or an index lock held for a moment.
///
/// The CLI, not libgit2's `add_all`: its index's file stamps and threaded `lstat`s make it about
/// twice as fast on a large tree (0.24 s against 0.49 s for one changed file among 100,000,
/// benches/worktrees.rs), and every task's commit pays it. It keeps a sparse worktree's entries
/// outside the cone (their `skip-worktree` bits) and runs the repository's clean filters.
///
/// orch's own paths `own` (its directories, the files it copied in) are left out by pathspec:
/// whatever a `.gitignore` says of them (`!.orch/` overrides `.git/info/exclude`, `!.env`
/// un-ignores a copied secret), nothing there is staged.
fn stage_with_cli(worktree: &Path, own: &[String]) -> Result<(), git2::Error> {
    // A path of orch's below a link or a file in the tree holds nothing git would stage (and git
    // refuses a pathspec beyond a link): only those whose directories above are directories
    // are named (where one is not, the tree is refused after staging).
    let named = |d: &String| {
        crate::manifest::ancestors(d)
            .all(|a| std::fs::symlink_metadata(worktree.join(a)).is_ok_and(|m| m.is_dir()))
    };
    let mut args: Vec<String> = vec!["add".into(), "-A".into()];
    let mut excluded: Vec<&String> = own.iter().filter(|d| named(d)).collect();
    // git refuses to stage with a pathspec that names an ignored path, an excluding one too
    // ("The following paths are ignored"); what git ignores it does not stage anyway, so only
    // those it does not ignore are named (a wildcard is no name: git does not refuse it).
    let literal: Vec<&str> = excluded
        .iter()
        .filter(|d| !d.contains(['*', '?']))
        .map(|d| d.as_str())
        .collect();
    if !literal.is_empty() {
        let ignored = ignored_among(worktree, &literal)?;
        excluded.retain(|d| !ignored.iter().any(|i| i == *d));
    }
    if !excluded.is_empty() {
        args.push("--".into());
        args.push(":(top)".into());
        // A `copy` entry may end in a wildcard (`config/*.local`): git's glob, which matches
        // within one name as orch's does.
        args.extend(excluded.iter().map(|d| {
            if d.contains(['*', '?']) {
                format!(":(top,exclude,glob){d}")
            } else {
                format!(":(top,exclude,literal){d}")
            }
        }));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut pause = STAGE_PAUSE;
    let mut last = String::new();
    for _ in 0..STAGE_ATTEMPTS {
        match super::cli::run_stoppable(worktree, &args) {
            Ok(()) => return Ok(()),
            // The run stops: not tried again.
            Err(e @ super::error::CliFailure::Stopped { .. }) => {
                return Err(git2::Error::from_str(&e.to_string()));
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(STAGE_PAUSE_MAX);
    }
    Err(git2::Error::from_str(&last))
}

/// Of `paths` (relative to the work tree's root, none beyond a link), those git ignores there
/// (`git check-ignore`: a tracked path is never ignored).
fn ignored_among(worktree: &Path, paths: &[&str]) -> Result<Vec<String>, git2::Error> {
    let mut args = vec!["-c", "core.quotePath=false", "check-ignore", "--"];
    args.extend_from_slice(paths);
    match super::cli::run(worktree, &args) {
        // One per line (a name git would quote is then not found: named, it fails the staging
        // closed).
        Ok(out) => Ok(out
            .split(|&b| b == b'\n')
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect()),
        // 1: none of them is ignored.
        Err(super::error::CliFailure::Failed { status, .. }) if status.code() == Some(1) => {
            Ok(Vec::new())
        }
        Err(e) => Err(git2::Error::from_str(&e.to_string())),
    }
}

/// Runs `f` (staging, and writing the index, which re-reads "racily clean" files) again from the
/// index on disk while it fails because a file changed as libgit2 read it.
///
/// Another agent of the plan may still be writing in the same worktree (`parallel` > 1), and
/// libgit2 refuses a file whose size changed between its stat and its read ("failed to read file
/// into stream", "error reading file for hashing"): a write burst elsewhere in the tree must not
/// fail the commit of a finished task.
fn while_files_change(
    index: &mut git2::Index,
    mut f: impl FnMut(&mut git2::Index) -> Result<(), git2::Error>,
) -> Result<(), git2::Error> {
    let mut pause = STAGE_PAUSE;
    for _ in 1..STAGE_ATTEMPTS {
        match f(index) {
            Err(e) if matches!(e.class(), ErrorClass::Os | ErrorClass::Filesystem) => {
                index.read(true)?;
                std::thread::sleep(pause);
                pause = (pause * 2).min(STAGE_PAUSE_MAX);
            }
            other => return other,
        }
    }
    f(index)
}

/// The commit HEAD points at; `None` on an unborn branch.
pub(crate) fn head_commit<'r>(
    repo: &'r Repository,
    worktree: &Path,
) -> Result<Option<git2::Commit<'r>>, GitError> {
    match repo.head() {
        Err(e) if matches!(e.code(), ErrorCode::UnbornBranch | ErrorCode::NotFound) => Ok(None),
        _ => checked_out_commit(repo, worktree).map(Some),
    }
}

/// Moves `branch` (else the branch HEAD points at, or a detached HEAD) from `old` to `new` with a
/// compare-and-swap, retrying while a `.lock` file is in the way.
fn advance_head(
    repo: &Repository,
    branch: Option<&str>,
    new: Oid,
    old: Option<Oid>,
    log: &str,
) -> Result<(), GitError> {
    let name = match branch.map(|b| format!("refs/heads/{b}")) {
        Some(name) => name,
        None => head_target(repo)?,
    };
    move_ref(repo, &name, new, old, log)
}

/// What HEAD points at: a branch's full name, or `HEAD` when detached.
fn head_target(repo: &Repository) -> Result<String, GitError> {
    Ok(match repo.find_reference("HEAD") {
        Ok(head) => head
            .symbolic_target()
            .ok()
            .flatten()
            .map_or_else(|| "HEAD".to_string(), str::to_string),
        Err(source) => {
            return Err(GitError::UpdateRef {
                refname: "HEAD".into(),
                source,
            });
        }
    })
}

/// Moves the ref `name` from `old` (`None`: it must not exist) to `new`.
pub(super) fn move_ref(
    repo: &Repository,
    name: &str,
    new: Oid,
    old: Option<Oid>,
    log: &str,
) -> Result<(), GitError> {
    let name = name.to_string();
    let result = match old {
        Some(old) => retry_locked(|| repo.reference_matching(&name, new, true, old, log)),
        None => retry_locked(|| repo.reference(&name, new, false, log)),
    };
    match result {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.code(), ErrorCode::Modified | ErrorCode::Exists) => {
            Err(GitError::BranchMoved {
                branch: name
                    .strip_prefix("refs/heads/")
                    .unwrap_or(&name)
                    .to_string(),
                expected: old.map_or_else(|| "nothing".to_string(), |o| o.to_string()),
            })
        }
        Err(source) => Err(GitError::UpdateRef {
            refname: name,
            source,
        }),
    }
}

/// After a failed attempt in a plan's worktree (its uncommitted changes already saved by
/// [`save_and_reset`] under `refname`, `saved` the commit there, if any): when the attempt moved
/// `branch` past `base`, the tip where it started (an agent that committed its work itself), the
/// branch and the worktree go back to `base` with a compare-and-swap, and what the attempt
/// committed is kept under `refname` (the saved changes on top of it, or its last commit). Its
/// commits never stay on the plan branch: a refused attempt's work reaches nothing. `Ok(saved)`
/// when the branch is still at `base`.
pub(crate) fn undo_attempt_commits(
    worktree: &Path,
    (branch, base): (&str, &str),
    refname: &str,
    saved: Option<String>,
) -> Result<Option<String>, GitError> {
    let repo = open(worktree)?;
    let base = parse_oid(base)?;
    let tip = branch_commit(&repo, branch)?
        .ok_or_else(|| GitError::RevNotFound {
            rev: branch.to_string(),
        })?
        .id();
    if tip == base {
        return Ok(saved);
    }
    let kept = match saved {
        Some(s) => s,
        None => {
            move_ref(&repo, refname, tip, None, "orch: save attempt")?;
            tip.to_string()
        }
    };
    move_ref(
        &repo,
        &format!("refs/heads/{branch}"),
        base,
        Some(tip),
        "orch: a failed attempt's commits taken off (saved)",
    )?;
    // The worktree follows its branch (orch records where an attempt started for sparse plans).
    reset_to_head(&repo, worktree)?;
    Ok(Some(kept))
}
