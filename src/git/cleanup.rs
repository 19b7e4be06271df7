//! Retiring a plan's branch and worktree once its work is merged: what is there, backups of what
//! would be lost, removing the worktree (never one with uncommitted changes) and deleting the
//! branch (only orch's own, only at the tip that was inspected).

use std::fs;
use std::path::{Path, PathBuf};

use git2::{Branch, ErrorCode, Oid, Repository};

use super::GitError;
use super::entries::{Entry, head_of_dir, read_entries};
use super::inspect::{MergeState, merge_state_of, writes_in_memory};
use super::marks::{MARK_BASE, MARK_PLAN, config_string, local_config, mark_key};
use super::refs::{
    ARCHIVE_PREFIX, BACKUP_PREFIX, backup_name, plan_attempts_prefix, worktree_backup_name,
};
use super::repo::{branch_commit, find_branch, open, retry_locked, target_commit, workdir_of};
use super::status::{Submodules, dirty_files};
use super::worktree::open_main;

/// A plan's branch as `orch clean` sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PlanBranch {
    pub(crate) branch: String,
    /// The tip (hex).
    pub(crate) tip: String,
    /// The branch carries orch's mark for this plan (`branch.<b>.orchPlan`).
    pub(crate) owned: bool,
    /// The commit orch created the branch at, from its mark.
    pub(crate) base: Option<String>,
    /// Whether its work is in the target.
    pub(crate) merge: MergeState,
    /// The tip is reachable from the target, a backup ref or an archive tag: deleting the branch
    /// loses no commit.
    pub(crate) preserved: bool,
    pub(crate) worktree: TreeState,
    /// Saved failed attempts of the plan (`refs/orch/attempts/<plan>/…`).
    pub(crate) attempts: usize,
}

impl PlanBranch {
    /// The branch has no commit of its own: orch made it and no task finished on it yet.
    pub(crate) fn unstarted(&self) -> bool {
        self.base.as_deref() == Some(self.tip.as_str())
    }
}

/// The plan's worktree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TreeState {
    /// There is none, and the branch is not checked out anywhere.
    Absent,
    /// The plan's worktree (named after the plan) with the branch checked out.
    Live {
        path: PathBuf,
        /// Uncommitted changes and untracked files (ignored files do not count).
        dirty: Vec<String>,
        /// `git worktree lock`ed: orch leaves it alone.
        locked: bool,
    },
    /// The worktree's directory is gone; only git's entry for it is left.
    Stale { path: Option<PathBuf> },
    /// The branch is checked out in another work tree (the main one, or a worktree orch did not
    /// make for this plan).
    Elsewhere { path: PathBuf },
    /// The plan's worktree has something else checked out (`head`: a branch or a commit).
    OtherHead { path: PathBuf, head: String },
}

/// What `branch` (of `plan`) and its worktree look like against `target`; `None` when the branch
/// does not exist. Reads only: merges are tried in memory.
pub(crate) fn inspect_plan_branch(
    repo_root: &Path,
    worktree_root: &Path,
    plan: &str,
    branch: &str,
    target: &str,
) -> Result<Option<PlanBranch>, GitError> {
    let repo = open_main(repo_root)?;
    writes_in_memory(&repo, repo_root)?;
    let Some(tip) = branch_commit(&repo, branch)? else {
        return Ok(None);
    };
    let onto = target_commit(&repo, target)?;
    let config = local_config(&repo)?;
    let owned = config_string(&config, &mark_key(branch, MARK_PLAN))?.as_deref() == Some(plan);
    let base = config_string(&config, &mark_key(branch, MARK_BASE))?;
    let merge = merge_state_of(&repo, &tip, &onto, branch, target)?;
    let preserved = matches!(merge, MergeState::Contained) || saved_elsewhere(&repo, tip.id())?;
    let made = made_path(repo_root, worktree_root, plan);
    let worktree = tree_state(&repo, &made, plan, branch)?;
    let attempts = count_refs(&repo, &plan_attempts_prefix(plan))?;
    Ok(Some(PlanBranch {
        branch: branch.to_string(),
        tip: tip.id().to_string(),
        owned,
        base,
        merge,
        preserved,
        worktree,
        attempts,
    }))
}

/// Whether `tip` is reachable from a backup ref or an archive tag.
fn saved_elsewhere(repo: &Repository, tip: Oid) -> Result<bool, GitError> {
    let read_error = |source| GitError::ReadBranch {
        branch: "refs/orch/backup".into(),
        source,
    };
    for r in repo.references().map_err(read_error)? {
        let r = r.map_err(read_error)?;
        let Ok(name) = r.name() else { continue };
        if !(name.starts_with(BACKUP_PREFIX) || name.starts_with(ARCHIVE_PREFIX)) {
            continue;
        }
        let Ok(commit) = r.peel_to_commit() else {
            continue;
        };
        if super::repo::contains(repo, commit.id(), tip).unwrap_or(false) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn count_refs(repo: &Repository, prefix: &str) -> Result<usize, GitError> {
    let read_error = |source| GitError::ReadBranch {
        branch: prefix.to_string(),
        source,
    };
    let mut n = 0;
    for r in repo.references().map_err(read_error)? {
        let r = r.map_err(read_error)?;
        if r.name().is_ok_and(|name| name.starts_with(prefix)) {
            n += 1;
        }
    }
    Ok(n)
}

/// Where the plan's branch is checked out, and the state of the plan's worktree (at `made`,
/// where orch made it: not where its entry's back-link points).
fn tree_state(
    repo: &Repository,
    made: &Path,
    plan: &str,
    branch: &str,
) -> Result<TreeState, GitError> {
    let refname = format!("refs/heads/{branch}");
    let common = repo.commondir().to_path_buf();
    let entries = read_entries(&common)?;
    if let Some(e) = entries.iter().find(|e| e.name == plan) {
        let path = made.to_path_buf();
        if e.prunable() && !path_exists(&path) {
            return Ok(TreeState::Stale { path: Some(path) });
        }
        if e.head.as_deref() != Some(refname.as_str()) {
            return Ok(TreeState::OtherHead {
                path,
                head: e.head.as_deref().map_or_else(
                    || "nothing".to_string(),
                    |h| h.strip_prefix("refs/heads/").unwrap_or(h).to_string(),
                ),
            });
        }
        let dirty = if path.is_dir() {
            open(&path)?;
            dirty_files(&path, Submodules::Orch)?
        } else {
            Vec::new()
        };
        return Ok(TreeState::Live {
            path,
            dirty,
            locked: e.locked,
        });
    }
    if let Some(e) = entries
        .iter()
        .find(|e| !e.prunable() && e.head.as_deref() == Some(refname.as_str()))
    {
        return Ok(TreeState::Elsewhere {
            path: e.workdir().unwrap_or_else(|| e.admin.clone()),
        });
    }
    if !repo.is_bare() && head_of_dir(&common).as_deref() == Some(refname.as_str()) {
        return Ok(TreeState::Elsewhere {
            path: repo
                .workdir()
                .map_or_else(|| common.clone(), Path::to_path_buf),
        });
    }
    Ok(TreeState::Absent)
}

/// Saves `tip` under `refs/orch/backup/<plan>/<stamp>` (or `<stamp>-2`, `-3`, … if taken) and
/// returns the ref's name. `stamp` must be a valid ref component (e.g. `20261105T101112Z`).
pub(crate) fn backup_ref(
    repo_root: &Path,
    plan: &str,
    tip: &str,
    stamp: &str,
    message: &str,
) -> Result<String, GitError> {
    let repo = open_main(repo_root)?;
    let oid = super::repo::parse_oid(tip)?;
    let mut n = 1;
    loop {
        let refname = if n == 1 {
            backup_name(plan, stamp)
        } else {
            backup_name(plan, &format!("{stamp}-{n}"))
        };
        let taken = |name: &str| repo.find_reference(name).is_ok();
        if taken(&refname) || taken(&worktree_backup_name(&refname)) {
            n += 1;
            continue;
        }
        return match retry_locked(|| repo.reference(&refname, oid, false, message)) {
            Ok(_) => Ok(refname),
            Err(e) if e.code() == ErrorCode::Exists => {
                n += 1;
                continue;
            }
            Err(source) => Err(GitError::UpdateRef { refname, source }),
        };
    }
}

/// Removes the plan's worktree (the one named after the plan, with `branch` checked out):
/// directory and git's entry. The directory is the one orch made, `<worktree_root>/<plan>`, never
/// the one the entry's `gitdir` back-link names (an agent may have rewritten it to point at a
/// directory of its choosing: libgit2's prune with `working_tree` would delete that). Refuses
/// (without touching anything) one with uncommitted changes or untracked files, and a locked
/// one; ignored files go with the directory. A stale entry (directory already gone) is pruned.
/// Returns the path removed, `None` if there was nothing.
pub(crate) fn remove_plan_worktree(
    repo_root: &Path,
    worktree_root: &Path,
    plan: &str,
    branch: &str,
) -> Result<Option<PathBuf>, GitError> {
    let repo = open_main(repo_root)?;
    let refname = format!("refs/heads/{branch}");
    let entries = read_entries(repo.commondir())?;
    let Some(entry) = entries.iter().find(|e| e.name == plan) else {
        return Ok(None);
    };
    let path = made_path(repo_root, worktree_root, plan);
    if entry.prunable() && !path_exists(&path) {
        remove_admin(entry)?;
        return Ok(Some(path));
    }
    if entry.head.as_deref() != Some(refname.as_str()) {
        return Err(GitError::WrongBranch {
            path: path.clone(),
            expected: branch.to_string(),
            found: entry.head.clone().unwrap_or_default(),
        });
    }
    if entry.locked {
        return Err(GitError::ForeignPath {
            path,
            reason: "is a locked worktree (`git worktree unlock` it first)".into(),
        });
    }
    // The check a prune does not make: it would delete uncommitted work without a word.
    if path.is_dir() {
        open(&path)?;
        let dirty = dirty_files(&path, Submodules::Orch)?;
        if !dirty.is_empty() {
            return Err(GitError::Dirty {
                path: path.clone(),
                files: dirty,
            });
        }
    }
    remove_made_tree(&path, entry)?;
    Ok(Some(path))
}

/// Where orch made the worktree named `name`: `<worktree_root>/<name>` (relative roots are taken
/// from `repo_root`).
pub(super) fn made_path(repo_root: &Path, worktree_root: &Path, name: &str) -> PathBuf {
    // An absolute `worktree_root` replaces `repo_root`.
    repo_root.join(worktree_root).join(name)
}

fn path_exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Removes the worktree directory orch made at `path` (a symlink there is removed, not followed)
/// and the worktree's entry (`entry`'s admin directory).
pub(super) fn remove_made_tree(path: &Path, entry: &Entry) -> Result<(), GitError> {
    let removed = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            return super::entries::discard_dir(path).and_then(|()| remove_admin(entry));
        }
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    removed.map_err(|source| GitError::Prune {
        path: path.to_path_buf(),
        source,
    })?;
    remove_admin(entry)
}

/// The files of the worktrees orch made for `plan` (its own, `<plan>`, and its task worktrees
/// and pool slots, `<plan>+…`; each where orch made it, never where its entry's back-link
/// points) that a save would leave out: uncommitted files over `max_file` bytes, by their
/// apparent size (nothing read or hashed), each as `<worktree>/<path>` with its size.
pub(crate) fn unsaveable_files(
    repo_root: &Path,
    worktree_root: &Path,
    plan: &str,
    max_file: u64,
) -> Result<Vec<(PathBuf, u64)>, GitError> {
    let mut found = Vec::new();
    for path in plan_tree_dirs(repo_root, worktree_root, plan)? {
        let limits = crate::manifest::SizeLimits::file_only(max_file);
        if let Some(super::TooLarge::Files { files, .. }) =
            super::too_large_in_worktree(&path, &[], limits)?
        {
            found.extend(files.into_iter().map(|(f, size)| (path.join(f), size)));
        }
    }
    Ok(found)
}

/// The first worktree orch made for `plan` (as [`unsaveable_files`] finds them) whose
/// uncommitted change is over `limits.change` or `limits.files`, which no save holds (the files
/// over `limits.file` left out; nothing read or hashed), with the limit it is over.
pub(crate) fn change_over_in(
    repo_root: &Path,
    worktree_root: &Path,
    plan: &str,
    limits: crate::manifest::SizeLimits,
) -> Result<Option<(PathBuf, super::TooLarge)>, GitError> {
    for path in plan_tree_dirs(repo_root, worktree_root, plan)? {
        if let Some(found) = super::big::change_over(&path, limits)? {
            return Ok(Some((path, found)));
        }
    }
    Ok(None)
}

/// The directories of the worktrees orch made for `plan` (its own, `<plan>`, and its task
/// worktrees and pool slots, `<plan>+…`), each where orch made it (never where its entry's
/// back-link points), that are directories (not links).
fn plan_tree_dirs(
    repo_root: &Path,
    worktree_root: &Path,
    plan: &str,
) -> Result<Vec<PathBuf>, GitError> {
    let repo = open_main(repo_root)?;
    let task_prefix = format!("{plan}+");
    let mut dirs = Vec::new();
    for entry in read_entries(repo.commondir())? {
        if entry.name != plan && !entry.name.starts_with(&task_prefix) {
            continue;
        }
        let path = made_path(repo_root, worktree_root, &entry.name);
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            dirs.push(path);
        }
    }
    Ok(dirs)
}

/// How deep git walks a work tree: libgit2 refuses to stage below this many nested directories
/// (`directory nesting too deep (100)`), so no backup could hold what is there.
pub(crate) const GIT_MAX_DEPTH: usize = 100;

/// At most this many places are reported (the walk stops there: the plan is kept either way).
const MAX_UNREADABLE: usize = 20;

/// What orch could not read or save in a plan's worktrees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// A directory orch cannot list, or a file it cannot open for reading (why: the error).
    Denied { path: PathBuf, why: String },
    /// A directory nested `depth` levels below its worktree's root, deeper (or at a longer path)
    /// than git saves.
    TooDeep { path: PathBuf, depth: usize },
}

/// What [`scan_plan_trees`] found.
#[derive(Debug, Default)]
pub(crate) struct PlanScan {
    /// What orch could not read or save (at most [`MAX_UNREADABLE`]).
    pub(crate) unreadable: Vec<Unreadable>,
    /// Every regular file over the limit: its worktree, its path there, its apparent size.
    pub(crate) large: Vec<(PathBuf, PathBuf, u64)>,
}

/// Walks the worktrees orch made for `plan` (as [`unsaveable_files`]): the places whose content
/// orch could not fully read, so that neither the size check nor a backup could hold it (a
/// directory it cannot list: mode 000, no search permission; a regular file it cannot read; a
/// directory nested deeper than [`GIT_MAX_DEPTH`] or at a path past the system's limit), and the
/// regular files over `max_file` bytes (tracked, untracked or ignored). Nothing is followed
/// (links are names only), nothing changed, no content read.
pub(crate) fn scan_plan_trees(
    repo_root: &Path,
    worktree_root: &Path,
    plan: &str,
    max_file: u64,
) -> Result<PlanScan, GitError> {
    let mut scan = PlanScan::default();
    for root in plan_tree_dirs(repo_root, worktree_root, plan)? {
        scan_tree(&root, max_file, &mut scan);
    }
    Ok(scan)
}

/// Why the work tree `root` holds what no save keeps (as [`scan_plan_trees`] finds it: a file
/// over `max_file` bytes, ignored or not, or a place orch cannot read), named (at most three,
/// escaped); `None`: nothing such.
pub(crate) fn unkeepable_in(root: &Path, max_file: u64) -> Option<String> {
    let mut scan = PlanScan::default();
    scan_tree(root, max_file, &mut scan);
    let mut named: Vec<String> = scan
        .large
        .iter()
        .map(|(_, rel, size)| {
            format!(
                "`{}` ({}, over `max_file_size`)",
                rel.display().to_string().escape_debug(),
                super::big::human(*size)
            )
        })
        .collect();
    named.extend(scan.unreadable.iter().map(|u| match u {
        Unreadable::Denied { path, .. } | Unreadable::TooDeep { path, .. } => {
            let shown = path
                .strip_prefix(root)
                .unwrap_or(path)
                .display()
                .to_string();
            let cut: String = shown.chars().take(200).collect();
            format!(
                "`{}{}` (orch cannot read it, or it is too deep)",
                cut.escape_debug(),
                if cut.len() < shown.len() { "…" } else { "" }
            )
        }
    }));
    if named.is_empty() {
        return None;
    }
    let more = if named.len() > 3 { ", …" } else { "" };
    named.truncate(3);
    Some(format!(
        "it holds what no save keeps: {}{more}; `orch clean` names it",
        named.join(", ")
    ))
}

fn scan_tree(root: &Path, max_file: u64, scan: &mut PlanScan) {
    let found = &mut scan.unreadable;
    let denied = |path: PathBuf, e: &dyn std::fmt::Display| Unreadable::Denied {
        path,
        why: e.to_string(),
    };
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        if found.len() >= MAX_UNREADABLE {
            return;
        }
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            // A path past the system's limit: too long a chain for git too.
            Err(e) if e.raw_os_error() == Some(nix::libc::ENAMETOOLONG) => {
                found.push(Unreadable::TooDeep { path: dir, depth });
                continue;
            }
            Err(e) => {
                found.push(denied(dir, &e));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    found.push(denied(dir.clone(), &e));
                    break;
                }
            };
            let path = entry.path();
            // The entry's own type (from the directory, else `lstat`): a link is never followed.
            let kind = match entry.file_type() {
                Ok(kind) => kind,
                Err(e) => {
                    found.push(denied(path, &e));
                    continue;
                }
            };
            if kind.is_dir() {
                if depth + 1 >= GIT_MAX_DEPTH {
                    found.push(Unreadable::TooDeep {
                        path,
                        depth: depth + 1,
                    });
                } else {
                    stack.push((path, depth + 1));
                }
            } else if kind.is_file() {
                if let Err(e) = nix::unistd::access(&path, nix::unistd::AccessFlags::R_OK) {
                    found.push(denied(path, &std::io::Error::from(e)));
                } else if let Ok(meta) = entry.metadata()
                    && meta.len() > max_file
                    && let Ok(rel) = path.strip_prefix(root)
                {
                    let rel = rel.to_path_buf();
                    scan.large.push((root.to_path_buf(), rel, meta.len()));
                }
            }
        }
    }
}

/// The ignored files among `large` (from [`PlanScan::large`]: untracked, and ignored by the
/// rules in force in their worktree), each as `<worktree>/<path>` with its size; and whether
/// the attempt's own change made some of the rules: a `.gitignore` anywhere in one of those
/// worktrees (committed on the branch, staged, changed or new) differs from the plan's `base`
/// (no base known: yes). `.git/info/exclude` and the person's global excludes are not dated;
/// their rules count as the base's.
pub(crate) fn ignored_large(
    large: &[(PathBuf, PathBuf, u64)],
    base: Option<&str>,
) -> Result<(Vec<(PathBuf, u64)>, bool), GitError> {
    let mut ignored = Vec::new();
    let mut roots: Vec<&Path> = Vec::new();
    for (root, rel, size) in large {
        let repo = open(root)?;
        let status_error = |source| GitError::Status {
            path: root.clone(),
            source,
        };
        let index = repo.index().map_err(status_error)?;
        let tracked = rel
            .to_str()
            .is_some_and(|r| index.get_path(Path::new(r), 0).is_some());
        if tracked || !repo.status_should_ignore(rel).map_err(status_error)? {
            continue;
        }
        ignored.push((root.join(rel), *size));
        if !roots.contains(&root.as_path()) {
            roots.push(root);
        }
    }
    let mut changed = false;
    for root in roots {
        changed |= match base {
            None => true,
            Some(base) => ignores_changed_since(root, base)?,
        };
    }
    Ok((ignored, changed))
}

/// Whether a `.gitignore` of the work tree at `root` (its index and files, untracked ones too)
/// differs from commit `base`'s.
fn ignores_changed_since(root: &Path, base: &str) -> Result<bool, GitError> {
    let repo = open(root)?;
    let diff_error = |source| GitError::Diff {
        path: root.to_path_buf(),
        target: base.to_string(),
        source,
    };
    let oid = super::repo::parse_oid(base)?;
    let tree = repo
        .find_commit(oid)
        .and_then(|c| c.tree())
        .map_err(diff_error)?;
    let mut opts = git2::DiffOptions::new();
    opts.pathspec("*.gitignore")
        .include_untracked(true)
        .recurse_untracked_dirs(true);
    let diff = repo
        .diff_tree_to_workdir_with_index(Some(&tree), Some(&mut opts))
        .map_err(diff_error)?;
    Ok(diff.deltas().any(|d| {
        [d.old_file().path(), d.new_file().path()]
            .into_iter()
            .flatten()
            .any(|p| p.file_name().is_some_and(|n| n == ".gitignore"))
    }))
}

/// Removes git's entries for worktrees of `branch` (or named `plan`) whose directory is gone,
/// and entries without a `gitdir` file (left by a failed add), like `git worktree prune` does
/// for them. Returns the entries removed.
pub(crate) fn prune_stale_entries(
    repo_root: &Path,
    plan: &str,
    branch: &str,
) -> Result<Vec<PathBuf>, GitError> {
    let repo = open_main(repo_root)?;
    let refname = format!("refs/heads/{branch}");
    let mut removed = Vec::new();
    for entry in read_entries(repo.commondir())? {
        let ours = entry.name == plan || entry.head.as_deref() == Some(refname.as_str());
        if entry.prunable() && (ours || entry.gitdir.is_none()) {
            remove_admin(&entry)?;
            removed.push(entry.admin.clone());
        }
    }
    Ok(removed)
}

pub(super) fn remove_admin(entry: &Entry) -> Result<(), GitError> {
    match fs::remove_dir_all(&entry.admin) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(GitError::Prune {
            path: entry.admin.clone(),
            source,
        }),
    }
}

/// Deletes `branch` (and its config section, orch's mark included) if it carries orch's mark for
/// `plan` and still points at `expected_tip`; refuses otherwise, changing nothing.
pub(crate) fn delete_plan_branch(
    repo_root: &Path,
    plan: &str,
    branch: &str,
    expected_tip: &str,
) -> Result<(), GitError> {
    let repo = open_main(repo_root)?;
    let config = local_config(&repo)?;
    if config_string(&config, &mark_key(branch, MARK_PLAN))?.as_deref() != Some(plan) {
        return Err(GitError::ForeignBranch {
            branch: branch.to_string(),
            plan: plan.to_string(),
        });
    }
    let Some(found) = find_branch(&repo, branch)? else {
        return Ok(());
    };
    if found.get().target().map(|o| o.to_string()).as_deref() != Some(expected_tip) {
        return Err(GitError::BranchMoved {
            branch: branch.to_string(),
            expected: expected_tip.to_string(),
        });
    }
    // The ref goes first, against the value just read (a compare-and-swap), then its
    // `branch.<name>` config section. libgit2's `git_branch_delete` does it the other way round,
    // and a kill in between left a branch without orch's mark, refused as foreign for good (the
    // crash harness found it with task branches). This way it leaves at worst a mark without a
    // branch, which the next create of that branch writes over.
    // As `git_branch_delete` would: never a branch checked out somewhere.
    let refname = format!("refs/heads/{branch}");
    let common = repo.commondir().to_path_buf();
    if !repo.is_bare() && head_of_dir(&common).as_deref() == Some(refname.as_str()) {
        return Err(GitError::BranchCheckedOut {
            branch: branch.to_string(),
            at: workdir_of(&repo),
        });
    }
    if let Some(e) = read_entries(&common)?
        .into_iter()
        .find(|e| !e.prunable() && e.head.as_deref() == Some(refname.as_str()))
    {
        return Err(GitError::BranchCheckedOut {
            branch: branch.to_string(),
            at: e.workdir().unwrap_or(e.admin),
        });
    }
    let found: Branch = found;
    let mut reference = found.into_reference();
    retry_locked(|| reference.delete()).map_err(|source| GitError::DeleteBranch {
        branch: branch.to_string(),
        source,
    })?;
    remove_branch_section(&repo, branch);
    Ok(())
}

/// Best effort: removes every key of the `branch.<branch>` config section (orch's marks, an
/// upstream set by the user).
fn remove_branch_section(repo: &git2::Repository, branch: &str) {
    let Ok(mut config) = local_config(repo) else {
        return;
    };
    let prefix = format!("branch.{branch}.");
    let mut names: Vec<String> = Vec::new();
    if let Ok(mut entries) = config.entries(None) {
        while let Some(Ok(entry)) = entries.next() {
            if let Ok(name) = entry.name()
                && name.starts_with(&prefix)
                && !names.iter().any(|n| n == name)
            {
                names.push(name.to_string());
            }
        }
    }
    for name in names {
        let _ = retry_locked(|| config.remove_multivar(&name, ".*"));
    }
}
