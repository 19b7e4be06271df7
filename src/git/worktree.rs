//! A plan's branch and worktree: created once, reused afterwards, re-added if the user deleted the
//! directory, and never made from (or on top of) something orch does not own.
//!
//! Ownership lives in the repository config: `branch.<branch>.orchPlan = <plan>` and
//! `branch.<branch>.orchBase = <base oid>`. libgit2 deletes a branch's config section with the
//! branch, so the mark goes with it.

use std::ffi::OsStr;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use git2::{ConfigLevel, ErrorCode, Oid, Repository, WorktreeAddOptions};

use super::GitError;
use super::repo::{branch_commit, find_branch, open, retry_locked, workdir_of};
use crate::manifest::check_ref_name;

/// The config key (under `branch.<branch>.`) naming the plan orch created the branch for.
pub const MARK_PLAN: &str = "orchPlan";
/// The config key (under `branch.<branch>.`) holding the commit the branch was created at.
pub const MARK_BASE: &str = "orchBase";
/// The file at the repository root listing extra paths to copy into new worktrees.
pub const WORKTREE_INCLUDE: &str = ".worktreeinclude";

/// Serializes worktree creation in this process: libgit2 leaves an entry without a `gitdir` file
/// while it adds a worktree, and another call pruning such leftovers must not see it half made.
static ADD_LOCK: Mutex<()> = Mutex::new(());

/// Holds [`ADD_LOCK`]: for code of this process that removes worktrees or prunes entries while
/// others may be added (a task worktree retired while another task's is made).
pub(super) fn worktree_lock() -> std::sync::MutexGuard<'static, ()> {
    ADD_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What orch needs to make or reuse a plan's worktree.
#[derive(Clone, Copy, Debug)]
pub struct TreeRequest<'a> {
    /// The main repository's work dir (absolute).
    pub repo_root: &'a Path,
    /// The plan name: one safe path component, e.g. `auth`; also the worktree's name.
    pub plan: &'a str,
    /// The plan branch, e.g. `plan/auth` (may contain `/`).
    pub branch: &'a str,
    /// The worktree directory (absolute), e.g. `<root>/.orch/worktrees/auth`; its parent is
    /// created if missing. A relative path is taken relative to `repo_root`.
    pub path: &'a Path,
    /// The branch the plan branch is created from, e.g. `main`.
    pub target: &'a str,
    /// Files or directories (relative to `repo_root`) copied into a new worktree, e.g. `.env`;
    /// missing ones are skipped.
    pub copy: &'a [PathBuf],
}

/// The plan's worktree, ready to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanTree {
    /// The worktree directory.
    pub path: PathBuf,
    /// The plan branch checked out in it.
    pub branch: String,
    /// The commit the branch was created at (hex), from orch's mark.
    pub base: String,
    /// The branch tip (hex).
    pub head: String,
    /// Whether this call made the worktree directory ([`TreeAction::Create`] and
    /// [`TreeAction::Readd`]); `false` when an existing one was reused.
    pub created: bool,
    /// The paths (relative) copied into the new worktree; paths already there are not replaced.
    pub copied: Vec<PathBuf>,
}

/// What [`ensure_plan_tree`] does (or would do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeAction {
    /// Create the branch at the target's tip (`base`) and a worktree for it.
    Create { base: String },
    /// The branch and its worktree exist: use them.
    Reuse { base: String },
    /// The branch is orch's but its worktree directory is gone, or is orch's own half-made one (left
    /// by a supervisor killed while adding it; see [`half_made`]): remove what is left and add a
    /// worktree for it again (the branch is not reset).
    Readd { base: String },
}

/// Checks, changing NOTHING on disk, what [`ensure_plan_tree`] would do; the errors are the ones
/// it would give.
pub fn plan_tree_preflight(req: &TreeRequest) -> Result<TreeAction, GitError> {
    let repo = open_main(req.repo_root)?;
    Ok(decide(&repo, req)?.action)
}

/// Creates (or reuses) the plan's branch and worktree.
///
/// A new branch starts at the target's tip and is marked as orch's; a new worktree (named after the
/// plan) gets `copy` and the entries of `.worktreeinclude` copied in. Whatever fails after the
/// branch was created is undone: the worktree entry, its directory and the branch are removed.
pub fn ensure_plan_tree(req: &TreeRequest) -> Result<PlanTree, GitError> {
    let repo = open_main(req.repo_root)?;
    let _guard = worktree_lock();
    let decision = decide(&repo, req)?;
    let path = absolute(req);
    sweep_discarded(&path)?;
    match &decision.action {
        TreeAction::Reuse { base } => Ok(PlanTree {
            path,
            branch: req.branch.to_string(),
            base: base.clone(),
            head: decision.tip.to_string(),
            created: false,
            copied: Vec::new(),
        }),
        TreeAction::Create { base } => {
            let target = repo
                .find_commit(decision.tip)
                .map_err(|source| GitError::ReadCommit {
                    oid: decision.tip.to_string(),
                    source,
                })?;
            // The mark goes first: a supervisor killed between the two steps leaves a mark
            // without a branch (harmless: the next run creates the branch), never an unmarked
            // branch, which the next run would have to refuse as foreign.
            mark(&repo, req.branch, req.plan, base)?;
            let branch = repo.branch(req.branch, &target, false).map_err(|source| {
                unmark(&repo, req.branch);
                GitError::CreateBranch {
                    branch: req.branch.to_string(),
                    source,
                }
            })?;
            let made = add_and_copy(&repo, req, &path, &decision, branch.get());
            match made {
                Ok(copied) => Ok(PlanTree {
                    path,
                    branch: req.branch.to_string(),
                    base: base.clone(),
                    head: base.clone(),
                    created: true,
                    copied,
                }),
                Err(e) => {
                    let mut branch = branch;
                    // Best effort: the worktree is already gone (add_and_copy cleans up after
                    // itself), so libgit2 lets the branch go; its config section goes with it.
                    let _ = retry_locked(|| branch.delete());
                    Err(e)
                }
            }
        }
        TreeAction::Readd { base } => {
            let branch = find_branch(&repo, req.branch)?.ok_or_else(|| GitError::ReadBranch {
                branch: req.branch.to_string(),
                source: git2::Error::new(
                    ErrorCode::NotFound,
                    git2::ErrorClass::Reference,
                    "the branch disappeared",
                ),
            })?;
            let copied = add_and_copy(&repo, req, &path, &decision, branch.get())?;
            Ok(PlanTree {
                path,
                branch: req.branch.to_string(),
                base: base.clone(),
                head: decision.tip.to_string(),
                created: true,
                copied,
            })
        }
    }
}

/// Removes the lock files a git write of the plan left behind when its process was killed: the
/// plan worktree's `index.lock` and the plan branch's `refs/heads/<branch>.lock`; returns the ones
/// removed. Only for a caller that knows no process is writing there (the supervisor, holding its
/// lock, with no live agent of the plan); never touches the main worktree's locks or other refs.
/// Removes `.git/config.lock` when it is stale: orch writes its branch marks to the repository
/// config, and a run killed in that write leaves the lock behind for good. A live writer (the git
/// CLI) holds it for milliseconds, so a lock still there after 1.5 s is stale. Call it only under
/// the supervisor lock. Returns the path when it was removed.
pub fn remove_stale_config_lock(repo_root: &Path) -> Result<Option<PathBuf>, GitError> {
    let repo = open_main(repo_root)?;
    let lock = repo.commondir().join("config.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    while lock.is_file() {
        if std::time::Instant::now() >= deadline {
            return match fs::remove_file(&lock) {
                Ok(()) => Ok(Some(lock)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(GitError::Prune { path: lock, source }),
            };
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(None)
}

pub fn remove_plan_locks(
    repo_root: &Path,
    plan: &str,
    branch: &str,
) -> Result<Vec<PathBuf>, GitError> {
    super::task_tree::check_tree_name(plan).map_err(|reason| GitError::InvalidName {
        what: "plan name",
        name: plan.to_string(),
        reason,
    })?;
    check_ref_name(branch).map_err(|reason| GitError::InvalidName {
        what: "branch name",
        name: branch.to_string(),
        reason,
    })?;
    let repo = open_main(repo_root)?;
    let common = repo.commondir();
    let candidates = [
        common.join("worktrees").join(plan).join("index.lock"),
        common.join("refs/heads").join(format!("{branch}.lock")),
    ];
    let mut removed = Vec::new();
    for lock in candidates {
        match fs::symlink_metadata(&lock) {
            Ok(m) if m.is_file() => {}
            _ => continue,
        }
        match fs::remove_file(&lock) {
            Ok(()) => removed.push(lock),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(GitError::Prune { path: lock, source }),
        }
    }
    Ok(removed)
}

/// The outcome of looking at the repository for a request.
struct Decision {
    action: TreeAction,
    /// For `Create` the target's tip, else the branch tip.
    tip: Oid,
    /// Worktree entries (admin dirs) to remove before adding.
    prune: Vec<PathBuf>,
    /// orch's own half-made worktree directory to remove before adding.
    clear: Option<PathBuf>,
    /// Paths (relative, existing in the main work dir) to copy into a new worktree.
    copies: Vec<PathBuf>,
}

/// Opens the main repository of `repo_root` (also when given a linked worktree).
pub(super) fn open_main(repo_root: &Path) -> Result<Repository, GitError> {
    let repo = open(repo_root)?;
    if repo.is_worktree() {
        open(repo.commondir())
    } else {
        Ok(repo)
    }
}

fn absolute(req: &TreeRequest) -> PathBuf {
    if req.path.is_absolute() {
        req.path.to_path_buf()
    } else {
        req.repo_root.join(req.path)
    }
}

/// Everything [`plan_tree_preflight`] and [`ensure_plan_tree`] check, reading only.
fn decide(repo: &Repository, req: &TreeRequest) -> Result<Decision, GitError> {
    super::task_tree::check_tree_name(req.plan).map_err(|reason| GitError::InvalidName {
        what: "plan name",
        name: req.plan.to_string(),
        reason,
    })?;
    check_ref_name(req.branch).map_err(|reason| GitError::InvalidName {
        what: "branch name",
        name: req.branch.to_string(),
        reason,
    })?;
    let target = branch_commit(repo, req.target)?.ok_or_else(|| GitError::TargetMissing {
        target: req.target.to_string(),
    })?;
    let path = absolute(req);
    let refname = format!("refs/heads/{}", req.branch);
    let common = repo.commondir().to_path_buf();
    let entries = read_entries(&common)?;
    let main_workdir = (!repo.is_bare()).then(|| workdir_of(repo));
    let at_path = examine_path(&path, &entries, main_workdir.as_deref())?;
    let foreign = |reason: String| GitError::ForeignPath {
        path: path.clone(),
        reason,
    };
    let Some(branch) = find_branch(repo, req.branch)? else {
        if let Some(reason) = at_path.foreign_reason(None) {
            return Err(foreign(reason));
        }
        name_free(&entries, req.plan)?;
        let prune = leftovers(&entries)
            .chain(
                entries
                    .iter()
                    .filter(|e| e.name == req.plan && e.prunable())
                    .map(|e| e.admin.clone()),
            )
            .collect();
        return Ok(Decision {
            action: TreeAction::Create {
                base: target.id().to_string(),
            },
            tip: target.id(),
            prune,
            clear: None,
            copies: copy_list(req)?,
        });
    };

    let config = local_config(repo)?;
    let owner = config_string(&config, &mark_key(req.branch, MARK_PLAN))?;
    if owner.as_deref() != Some(req.plan) {
        return Err(GitError::ForeignBranch {
            branch: req.branch.to_string(),
            plan: req.plan.to_string(),
        });
    }
    let tip = branch
        .get()
        .peel_to_commit()
        .map_err(|source| GitError::ReadBranch {
            branch: req.branch.to_string(),
            source,
        })?
        .id();
    let base = config_string(&config, &mark_key(req.branch, MARK_BASE))?
        .and_then(|b| Oid::from_str(&b).ok())
        .or_else(|| repo.merge_base(tip, target.id()).ok())
        .unwrap_or(tip)
        .to_string();

    // orch's own worktree, left half made by a supervisor killed while adding it: removed and
    // added again. Anything else in the way is refused, never cleared.
    let own_admin = common.join("worktrees").join(req.plan);
    let half = !matches!(at_path, PathState::Absent) && half_made(repo, &path, &own_admin, tip);
    if !half {
        if let Some(reason) = at_path.foreign_reason(Some(&refname)) {
            return Err(foreign(reason));
        }
        if let PathState::Worktree { .. } = at_path {
            return Ok(Decision {
                action: TreeAction::Reuse { base },
                tip,
                prune: Vec::new(),
                clear: None,
                copies: Vec::new(),
            });
        }
    }
    // With a half-made worktree, its own entry (named after the plan, pointing nowhere or at the
    // worktree path) goes with it, so it takes no part in the checks below.
    let wanted = canonical(&path);
    let own_entry = |e: &Entry| {
        half && e.name == req.plan
            && !e.locked
            && e.workdir()
                .is_none_or(|w| !w.join(".git").exists() || canonical(&w) == wanted)
    };
    let entries: Vec<Entry> = {
        let (own, mut rest): (Vec<Entry>, Vec<Entry>) =
            entries.into_iter().partition(|e| own_entry(e));
        rest.extend(own.into_iter().map(|mut e| {
            // Prunable from now on (no `gitdir`): it is removed with the directory.
            e.gitdir = None;
            e
        }));
        rest
    };
    // The directory is absent: the branch must not be in use anywhere else.
    if let Some(main) = &main_workdir
        && head_of_dir(&common).as_deref() == Some(refname.as_str())
    {
        return Err(GitError::BranchCheckedOut {
            branch: req.branch.to_string(),
            at: main.clone(),
        });
    }
    if let Some(e) = entries
        .iter()
        .find(|e| !e.prunable() && e.head.as_deref() == Some(refname.as_str()))
    {
        return Err(GitError::BranchCheckedOut {
            branch: req.branch.to_string(),
            at: e.workdir().unwrap_or_else(|| e.admin.clone()),
        });
    }
    name_free(&entries, req.plan)?;
    let prune = leftovers(&entries)
        .chain(
            entries
                .iter()
                .filter(|e| {
                    e.prunable() && (e.name == req.plan || e.head.as_deref() == Some(&refname))
                })
                .map(|e| e.admin.clone()),
        )
        .collect();
    Ok(Decision {
        action: TreeAction::Readd { base },
        tip,
        prune,
        clear: half.then(|| path.clone()),
        copies: copy_list(req)?,
    })
}

/// Entries without a `gitdir` file (and not locked): leftovers of an interrupted add.
fn leftovers(entries: &[Entry]) -> impl Iterator<Item = PathBuf> + '_ {
    entries
        .iter()
        .filter(|e| e.gitdir.is_none() && !e.locked)
        .map(|e| e.admin.clone())
}

/// Whether the directory at `path` is orch's own worktree of the plan, left half made by a
/// supervisor killed while libgit2 added it, so that removing it loses nothing: either it is empty,
/// or its `.git` file points at the plan's entry `own_admin`, that entry has no index (libgit2
/// writes it when the checkout is over, so no checkout finished there and no agent ever ran there),
/// and every other file in it is the branch tip's version of that file, or the beginning of it
/// (a write cut short). Anything else (a modified, extra or foreign file) makes it not half made.
pub(super) fn half_made(repo: &Repository, path: &Path, own_admin: &Path, tip: Oid) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.is_dir() {
        return false;
    }
    let Ok(mut listing) = fs::read_dir(path) else {
        return false;
    };
    if listing.next().is_none() {
        return true;
    }
    let dot_git = path.join(".git");
    let Ok(dot_git_meta) = fs::symlink_metadata(&dot_git) else {
        return false;
    };
    if !dot_git_meta.is_file() {
        return false;
    }
    // libgit2 creates `.git` and then writes it: a kill in between leaves it empty, before any
    // checkout (so there is nothing else in the directory either).
    if dot_git_meta.len() == 0 {
        return !own_admin.join("index").exists()
            && !own_admin.join("locked").exists()
            && repo
                .find_commit(tip)
                .and_then(|c| c.tree())
                .is_ok_and(|tree| only_checkout_files(repo, &tree, path, Path::new("")));
    }
    let Some(points_at) = fs::read_to_string(&dot_git).ok().and_then(|text| {
        let line = text
            .lines()
            .next()?
            .strip_prefix("gitdir:")?
            .trim()
            .to_string();
        let p = PathBuf::from(line);
        Some(if p.is_absolute() { p } else { path.join(p) })
    }) else {
        return false;
    };
    if canonical(&points_at) != canonical(own_admin)
        || own_admin.join("index").exists()
        || own_admin.join("locked").exists()
    {
        return false;
    }
    let Ok(tree) = repo.find_commit(tip).and_then(|c| c.tree()) else {
        return false;
    };
    only_checkout_files(repo, &tree, path, Path::new(""))
}

/// Whether everything under `dir` (but a top-level `.git`) is a file of `tree` with its content,
/// or the beginning of it.
fn only_checkout_files(repo: &Repository, tree: &git2::Tree, root: &Path, rel: &Path) -> bool {
    let Ok(listing) = fs::read_dir(root.join(rel)) else {
        return false;
    };
    for item in listing {
        let Ok(item) = item else { return false };
        let name = item.file_name();
        if rel.as_os_str().is_empty() && name == ".git" {
            continue;
        }
        let rel = rel.join(&name);
        let Ok(meta) = fs::symlink_metadata(root.join(&rel)) else {
            return false;
        };
        if meta.is_dir() {
            if !only_checkout_files(repo, tree, root, &rel) {
                return false;
            }
            continue;
        }
        let Ok(entry) = tree.get_path(&rel) else {
            return false;
        };
        let Ok(blob) = repo.find_blob(entry.id()) else {
            return false;
        };
        let on_disk = if meta.file_type().is_symlink() {
            match fs::read_link(root.join(&rel)) {
                Ok(link) => link.as_os_str().as_encoded_bytes().to_vec(),
                Err(_) => return false,
            }
        } else if meta.is_file() {
            match fs::read(root.join(&rel)) {
                Ok(bytes) => bytes,
                Err(_) => return false,
            }
        } else {
            return false;
        };
        if !blob.content().starts_with(&on_disk) {
            return false;
        }
    }
    true
}

/// Fails if a live (or locked) worktree entry already has the plan's name.
fn name_free(entries: &[Entry], plan: &str) -> Result<(), GitError> {
    match entries.iter().find(|e| e.name == plan && !e.prunable()) {
        Some(e) => Err(GitError::WorktreeNameTaken {
            name: plan.to_string(),
            at: e.workdir().unwrap_or_else(|| e.admin.clone()),
        }),
        None => Ok(()),
    }
}

/// Prunes, adds the worktree for `reference` and copies files in; on failure removes what it made.
fn add_and_copy(
    repo: &Repository,
    req: &TreeRequest,
    path: &Path,
    decision: &Decision,
    reference: &git2::Reference,
) -> Result<Vec<PathBuf>, GitError> {
    if let Some(dir) = &decision.clear {
        discard_dir(dir)?;
    }
    for admin in &decision.prune {
        match fs::remove_dir_all(admin) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(GitError::Prune {
                    path: admin.clone(),
                    source,
                });
            }
        }
    }
    let made_dirs = create_parents(path)?;
    let admin = repo.commondir().join("worktrees").join(req.plan);
    let undo = || {
        let _ = fs::remove_dir_all(&admin);
        let _ = discard_dir(path);
        for dir in &made_dirs {
            let _ = fs::remove_dir(dir);
        }
    };
    let mut opts = WorktreeAddOptions::new();
    opts.reference(Some(reference));
    if let Err(source) = repo.worktree(req.plan, path, Some(&opts)) {
        undo();
        return Err(GitError::AddWorktree {
            name: req.plan.to_string(),
            path: path.to_path_buf(),
            source,
        });
    }
    let mut copied = Vec::new();
    for rel in &decision.copies {
        match copy_into(req.repo_root, path, rel) {
            Ok(true) => copied.push(rel.clone()),
            Ok(false) => {}
            Err(e) => {
                undo();
                return Err(e);
            }
        }
    }
    Ok(copied)
}

/// Where [`discard_dir`] moves a directory before removing it: beside it, hidden.
fn discard_path(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let mut hidden = std::ffi::OsString::from(".");
    hidden.push(name);
    hidden.push(".orch-discard");
    Some(path.with_file_name(hidden))
}

/// Removes a directory of orch's own so that a kill at any moment leaves either all of it, where
/// it was, or none of it there: it is renamed aside first (one atomic step), then removed. A
/// removal cut short by a kill leaves only the renamed copy, which [`sweep_discarded`] removes.
pub(super) fn discard_dir(path: &Path) -> Result<(), GitError> {
    let prune_error = |source| GitError::Prune {
        path: path.to_path_buf(),
        source,
    };
    let Some(aside) = discard_path(path) else {
        return fs::remove_dir_all(path).map_err(prune_error);
    };
    sweep_discarded(path)?;
    fs::rename(path, &aside).map_err(prune_error)?;
    fs::remove_dir_all(&aside).map_err(prune_error)
}

/// Removes what a [`discard_dir`] of `path` cut short by a kill left beside it.
pub(super) fn sweep_discarded(path: &Path) -> Result<(), GitError> {
    let Some(aside) = discard_path(path) else {
        return Ok(());
    };
    match fs::symlink_metadata(&aside) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(&aside).map_err(|source| GitError::Prune {
            path: aside.clone(),
            source,
        }),
        _ => Ok(()),
    }
}

/// Creates the missing ancestors of `path`; returns them, deepest first.
fn create_parents(path: &Path) -> Result<Vec<PathBuf>, GitError> {
    let mut missing = Vec::new();
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        dir = d.parent();
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|source| GitError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    Ok(missing)
}

pub(super) fn mark_key(branch: &str, key: &str) -> String {
    format!("branch.{branch}.{key}")
}

pub(super) fn local_config(repo: &Repository) -> Result<git2::Config, GitError> {
    repo.config()
        .and_then(|c| c.open_level(ConfigLevel::Local))
        .map_err(|source| GitError::Config {
            key: "branch".into(),
            source,
        })
}

pub(super) fn config_string(config: &git2::Config, key: &str) -> Result<Option<String>, GitError> {
    match config.get_string(key) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(source) => Err(GitError::Config {
            key: key.to_string(),
            source,
        }),
    }
}

/// Marks `branch` as created by orch for `plan` at `base`.
fn mark(repo: &Repository, branch: &str, plan: &str, base: &str) -> Result<(), GitError> {
    let mut config = local_config(repo)?;
    for (key, value) in [(MARK_PLAN, plan), (MARK_BASE, base)] {
        let key = mark_key(branch, key);
        // Another thread of orch may be writing the config (a task branch deleted, and its
        // section with it): libgit2 then fails at once on `config.lock`.
        retry_locked(|| config.set_str(&key, value))
            .map_err(|source| GitError::Config { key, source })?;
    }
    Ok(())
}

/// Best effort: removes the marks [`mark`] wrote for a branch that could not be created.
fn unmark(repo: &Repository, branch: &str) {
    if let Ok(mut config) = local_config(repo) {
        for key in [MARK_PLAN, MARK_BASE] {
            let _ = retry_locked(|| config.remove(&mark_key(branch, key)));
        }
    }
}

/// One entry of `<common dir>/worktrees/`.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) admin: PathBuf,
    /// Where the `gitdir` file points (`<worktree>/.git`); `None` without the file.
    pub(super) gitdir: Option<PathBuf>,
    /// `refs/heads/…` for a branch, the oid for a detached HEAD.
    pub(super) head: Option<String>,
    pub(super) locked: bool,
}

impl Entry {
    pub(super) fn workdir(&self) -> Option<PathBuf> {
        self.gitdir
            .as_ref()
            .and_then(|g| g.parent())
            .map(Path::to_path_buf)
    }

    /// Whether `git worktree prune` would remove it: no `gitdir` file, or its directory is gone.
    pub(super) fn prunable(&self) -> bool {
        !self.locked && self.gitdir.as_ref().is_none_or(|g| !g.exists())
    }
}

pub(super) fn read_entries(common: &Path) -> Result<Vec<Entry>, GitError> {
    let dir = common.join("worktrees");
    let read_error = |source| GitError::ReadWorktrees {
        path: dir.clone(),
        source,
    };
    let listing = match fs::read_dir(&dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_error(e)),
    };
    let mut entries = Vec::new();
    for item in listing {
        let item = item.map_err(read_error)?;
        let admin = item.path();
        if !admin.is_dir() {
            continue;
        }
        // libgit2 creates `gitdir` and then writes it: a kill in between leaves it empty, which
        // must read as "no gitdir" (a leftover of an interrupted add), not as the entry's own
        // directory (found by the crash harness: the entry looked live, its worktree
        // `.git/worktrees`).
        let gitdir = fs::read_to_string(admin.join("gitdir"))
            .ok()
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                let p = PathBuf::from(s);
                if p.is_absolute() { p } else { admin.join(p) }
            });
        entries.push(Entry {
            name: item.file_name().to_string_lossy().into_owned(),
            head: head_of_dir(&admin),
            locked: admin.join("locked").exists(),
            admin,
            gitdir,
        });
    }
    Ok(entries)
}

/// The `HEAD` file of a git dir: the ref it points at, or the oid when detached.
pub(super) fn head_of_dir(git_dir: &Path) -> Option<String> {
    let text = fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let text = text.trim();
    Some(
        text.strip_prefix("ref:")
            .map_or(text, str::trim)
            .to_string(),
    )
}

/// What is at the worktree path.
enum PathState {
    Absent,
    /// A live linked worktree of this repository, with its HEAD.
    Worktree {
        head: Option<String>,
    },
    /// Something else; the reason says what.
    Other(String),
}

impl PathState {
    /// Why the path is in the way, if it is, for a plan whose branch is `refname` (`None` when the
    /// branch does not exist yet).
    fn foreign_reason(&self, refname: Option<&str>) -> Option<String> {
        match self {
            Self::Absent => None,
            Self::Worktree { head } if refname.is_some() && head.as_deref() == refname => None,
            Self::Worktree { head } => Some(match head.as_deref() {
                Some(h) if h.starts_with("refs/heads/") => format!(
                    "is a worktree of this repository with branch `{}` checked out",
                    &h["refs/heads/".len()..]
                ),
                _ => "is a worktree of this repository with a detached HEAD".to_string(),
            }),
            Self::Other(reason) => Some(reason.clone()),
        }
    }
}

fn examine_path(
    path: &Path,
    entries: &[Entry],
    main_workdir: Option<&Path>,
) -> Result<PathState, GitError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PathState::Absent),
        Err(source) => {
            return Err(GitError::ReadWorktrees {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let wanted = canonical(path);
    if let Some(entry) = entries.iter().find(|e| {
        e.gitdir.as_ref().is_some_and(|g| g.exists())
            && e.workdir().is_some_and(|w| canonical(&w) == wanted)
    }) {
        return Ok(PathState::Worktree {
            head: entry.head.clone(),
        });
    }
    let reason = if main_workdir.is_some_and(|m| canonical(m) == wanted) {
        "is the main work tree of the repository".to_string()
    } else if !meta.is_dir() {
        "exists and is not a directory".to_string()
    } else if fs::read_dir(path).is_ok_and(|mut d| d.next().is_none()) {
        "exists as an empty directory (orch creates the worktree directory itself)".to_string()
    } else {
        "exists and is not a worktree of this repository".to_string()
    };
    Ok(PathState::Other(reason))
}

fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The paths to copy into a new worktree: `copy`, then the entries of `.worktreeinclude`, expanded
/// (`*` and `?` in the last component) and limited to those that exist.
fn copy_list(req: &TreeRequest) -> Result<Vec<PathBuf>, GitError> {
    let mut patterns = Vec::new();
    for p in req.copy {
        patterns.push(
            safe_relative(p).map_err(|reason| GitError::InvalidCopyPath {
                path: p.clone(),
                reason,
            })?,
        );
    }
    let include = req.repo_root.join(WORKTREE_INCLUDE);
    match fs::read_to_string(&include) {
        Ok(text) => {
            for line in text.lines() {
                let line = line.trim();
                // Comments, blank lines; negations are not supported (gitignore syntax).
                if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                    continue;
                }
                // A leading `/` anchors at the repository root, as in `.gitignore`.
                let rel = Path::new(line.trim_start_matches('/').trim_end_matches('/'));
                patterns.push(
                    safe_relative(rel).map_err(|reason| GitError::InvalidCopyPath {
                        path: PathBuf::from(line),
                        reason: format!("{reason} (in `{WORKTREE_INCLUDE}`)"),
                    })?,
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(GitError::ReadInclude {
                path: include,
                source,
            });
        }
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for pattern in patterns {
        for rel in expand(req.repo_root, &pattern) {
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

/// Matches `name` against `glob` where `*` is any run of characters and `?` any one.
pub(crate) fn wildcard_match(glob: &str, name: &str) -> bool {
    let g: Vec<char> = glob.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut gi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == n[ni]) {
            gi += 1;
            ni += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some((gi, ni));
            gi += 1;
        } else if let Some((sg, sn)) = star {
            gi = sg + 1;
            ni = sn + 1;
            star = Some((sg, sn + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|&c| c == '*')
}

/// Copies `root/rel` to `worktree/rel` unless something is already there; symlinks are copied as
/// links, never followed. Returns whether anything was copied.
fn copy_into(root: &Path, worktree: &Path, rel: &Path) -> Result<bool, GitError> {
    let from = root.join(rel);
    let to = worktree.join(rel);
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
    fs::copy(from, to).map_err(copy_error)?;
    Ok(())
}
