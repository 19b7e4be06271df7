//! A plan's branch and worktree: created once, reused afterwards, re-added if the user deleted the
//! directory, and never made from (or on top of) something orch does not own.
//!
//! Ownership lives in the repository config: `branch.<branch>.orchPlan = <plan>` and
//! `branch.<branch>.orchBase = <base oid>`. libgit2 deletes a branch's config section with the
//! branch, so the mark goes with it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use git2::{ErrorClass, ErrorCode, Oid, Repository};

use super::GitError;
use super::copy::{copy_into, copy_list};
use super::entries::{
    Entry, canonical, create_parents, discard_dir, half_made, head_of_dir, read_entries,
    sweep_discarded,
};
use super::marks::{MARK_BASE, MARK_PLAN, config_string, local_config, mark, mark_key, unmark};
use super::refs::task_tree_name;
use super::repo::{find_branch, open, retry_locked, target_commit, workdir_of};
use crate::manifest::check_ref_name;

/// Serializes the decisions and prunes of worktree creation in this process (and the config
/// writes of branch marks). The checkouts themselves run at the same time, outside it: a
/// worktree being added is named in [`ADDING`] meanwhile, so that no other call takes its entry
/// (which libgit2 leaves without a `gitdir` file for a moment) for a leftover.
static ADD_LOCK: Mutex<()> = Mutex::new(());

/// The names of the worktrees this process is adding right now (see [`ADD_LOCK`]).
static ADDING: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// `name` listed in [`ADDING`] while this lives.
struct Adding(String);

impl Adding {
    fn new(name: &str) -> Self {
        adding().push(name.to_string());
        Self(name.to_string())
    }
}

impl Drop for Adding {
    fn drop(&mut self) {
        let mut list = adding();
        if let Some(i) = list.iter().position(|n| *n == self.0) {
            list.swap_remove(i);
        }
    }
}

fn adding() -> std::sync::MutexGuard<'static, Vec<String>> {
    ADDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

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
    /// The plan's `paths`: a new worktree is a cone-mode sparse checkout of these directories
    /// (see [`super::sparse`]); empty: the whole tree.
    pub sparse: &'a [String],
    /// Whether the worktree gets its submodules checked out ([`super::submodules`]).
    pub submodules: bool,
}

/// What it takes to make a task's worktree.
#[derive(Clone, Copy, Debug)]
pub struct TaskTreeRequest<'a> {
    pub repo_root: &'a Path,
    pub plan: &'a str,
    /// The plan branch: the task branch starts at its tip, and lands back on it.
    pub plan_branch: &'a str,
    pub id: &'a str,
    /// The directory holding the plan worktrees (the task worktree goes next to the plan's).
    pub worktree_root: &'a Path,
    /// Paths copied into a new worktree, as for the plan's.
    pub copy: &'a [PathBuf],
    /// The plan's `paths` (a sparse cone), as for the plan's worktree.
    pub sparse: &'a [String],
    /// Whether the worktree gets its submodules checked out, as for the plan's.
    pub submodules: bool,
    /// The plan's size limits: what a save of the worktree leaves out or refuses (never hashed).
    pub save: super::SaveLimits,
}

impl<'a> TaskTreeRequest<'a> {
    /// The task worktree's directory.
    pub(crate) fn path(&self) -> PathBuf {
        self.worktree_root.join(task_tree_name(self.plan, self.id))
    }

    /// The request for worktree `name` at `path` on `branch`, made from the plan branch as
    /// this one's.
    pub(super) fn tree<'b>(&self, name: &'b str, branch: &'b str, path: &'b Path) -> TreeRequest<'b>
    where
        'a: 'b,
    {
        TreeRequest {
            repo_root: self.repo_root,
            plan: name,
            branch,
            path,
            target: self.plan_branch,
            copy: self.copy,
            sparse: self.sparse,
            submodules: self.submodules,
        }
    }
}

/// The plan's worktree, ready to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanTree {
    /// The worktree directory.
    pub path: PathBuf,
    /// The plan branch checked out in it.
    pub(crate) branch: String,
    /// The commit the branch was created at (hex), from orch's mark.
    pub(crate) base: String,
    /// The branch tip (hex).
    pub(crate) head: String,
    /// Whether this call made the worktree directory ([`TreeAction::Create`] and
    /// [`TreeAction::Readd`]); `false` when an existing one was reused.
    pub created: bool,
    /// The paths (relative) copied into the new worktree; paths already there are not replaced.
    pub(crate) copied: Vec<PathBuf>,
    /// What the user is told about the worktree: a submodule that could not be checked out
    /// ([`super::submodules::sync_submodules`]).
    pub(crate) notes: Vec<String>,
}

/// What [`ensure_plan_tree`] does (or would do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TreeAction {
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
pub(crate) fn plan_tree_preflight(req: &TreeRequest) -> Result<TreeAction, GitError> {
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
    let guard = worktree_lock();
    let decision = decide(&repo, req)?;
    let path = absolute(req);
    tracing::debug!(
        plan = req.plan,
        branch = req.branch,
        path = %path.display(),
        action = ?decision.action,
        "plan worktree"
    );
    sweep_discarded(&path)?;
    let tree = |base: &str, created, copied| PlanTree {
        notes: submodules_of(req.submodules, &path),
        path: path.clone(),
        branch: req.branch.to_string(),
        base: base.to_string(),
        head: decision.tip.to_string(),
        created,
        copied,
    };
    match &decision.action {
        TreeAction::Reuse { base } => {
            drop(guard);
            Ok(tree(base, false, Vec::new()))
        }
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
            let made = add_and_copy(&repo, req, &path, &decision, branch.get(), Some(guard));
            match made {
                Ok(copied) => Ok(tree(base, true, copied)),
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
            let copied = add_and_copy(&repo, req, &path, &decision, branch.get(), Some(guard))?;
            Ok(tree(base, true, copied))
        }
    }
}

/// The submodules of the worktree at `path` checked out when `wanted` (the notes for the user).
pub(super) fn submodules_of(wanted: bool, path: &Path) -> Vec<String> {
    if wanted {
        super::submodules::sync_submodules(path, true)
    } else {
        Vec::new()
    }
}

/// Removes `.git/config.lock` when it is stale: orch writes its branch marks to the repository
/// config, and a run killed in that write leaves the lock behind for good. A live writer (the git
/// CLI) holds it for milliseconds, so a lock still there after 1.5 s is stale. Call it only under
/// the supervisor lock. Returns the path when it was removed.
pub(crate) fn remove_stale_config_lock(repo_root: &Path) -> Result<Option<PathBuf>, GitError> {
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

/// Removes the lock files a git write of the plan left behind when its process was killed: the
/// plan worktree's `index.lock` and the plan branch's `refs/heads/<branch>.lock`; returns the ones
/// removed. Only for a caller that knows no process is writing there (the supervisor, holding its
/// lock, with no live agent of the plan); never touches the main worktree's locks or other refs.
pub(crate) fn remove_plan_locks(
    repo_root: &Path,
    plan: &str,
    branch: &str,
) -> Result<Vec<PathBuf>, GitError> {
    check_names(plan, branch)?;
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
    // An absolute `path` replaces the root.
    req.repo_root.join(req.path)
}

/// Fails unless `plan` can name a worktree and `branch` a branch.
fn check_names(plan: &str, branch: &str) -> Result<(), GitError> {
    let invalid = |what, name: &str, reason| GitError::InvalidName {
        what,
        name: name.to_string(),
        reason,
    };
    super::refs::check_tree_name(plan).map_err(|r| invalid("plan name", plan, r))?;
    check_ref_name(branch).map_err(|r| invalid("branch name", branch, r))
}

/// Everything [`plan_tree_preflight`] and [`ensure_plan_tree`] check, reading only.
fn decide(repo: &Repository, req: &TreeRequest) -> Result<Decision, GitError> {
    check_names(req.plan, req.branch)?;
    let target = target_commit(repo, req.target)?;
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
            copies: copy_list(req.repo_root, req.copy)?,
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
        .or_else(|| super::bases::merge_base(repo, tip, target.id()).ok())
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
        copies: copy_list(req.repo_root, req.copy)?,
    })
}

/// Adds a worktree named `req.plan` at `req.path` for the existing branch `reference` (at `tip`),
/// with `req.copy` copied in: a task worktree pool's new slot ([`super::pool`]). Leftover entries
/// of interrupted adds are pruned first; orch's own half-made directory at the path is removed,
/// anything else there is refused. The caller holds [`worktree_lock`].
pub(super) fn add_tree(
    repo: &Repository,
    req: &TreeRequest,
    reference: &git2::Reference,
    tip: Oid,
) -> Result<Vec<PathBuf>, GitError> {
    let path = absolute(req);
    sweep_discarded(&path)?;
    let entries = read_entries(repo.commondir())?;
    let main_workdir = (!repo.is_bare()).then(|| workdir_of(repo));
    let at_path = examine_path(&path, &entries, main_workdir.as_deref())?;
    let admin = repo.commondir().join("worktrees").join(req.plan);
    let clear = match at_path {
        PathState::Absent => None,
        _ if half_made(repo, &path, &admin, tip) => Some(path.clone()),
        other => {
            return Err(GitError::ForeignPath {
                path,
                reason: other
                    .foreign_reason(None)
                    .unwrap_or_else(|| "is in the way".to_string()),
            });
        }
    };
    let entries: Vec<Entry> = entries
        .into_iter()
        .filter(|e| !(clear.is_some() && e.name == req.plan))
        .collect();
    name_free(&entries, req.plan)?;
    let mut prune: Vec<PathBuf> = leftovers(&entries)
        .chain(
            entries
                .iter()
                .filter(|e| e.name == req.plan && e.prunable())
                .map(|e| e.admin.clone()),
        )
        .collect();
    if clear.is_some() {
        prune.push(admin);
    }
    let decision = Decision {
        action: TreeAction::Create {
            base: tip.to_string(),
        },
        tip,
        prune,
        clear,
        copies: copy_list(req.repo_root, req.copy)?,
    };
    // The caller holds the lock for the whole take: the checkout runs under it too.
    add_and_copy(repo, req, &path, &decision, reference, None)
}

/// Entries without a `gitdir` file (and not locked): leftovers of an interrupted add, not one
/// this process is adding now.
fn leftovers(entries: &[Entry]) -> impl Iterator<Item = PathBuf> + '_ {
    let now = adding().clone();
    entries
        .iter()
        .filter(move |e| e.gitdir.is_none() && !e.locked && !now.contains(&e.name))
        .map(|e| e.admin.clone())
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
/// `guard` ([`ADD_LOCK`]) is held for the prunes and released for the checkout and the copies,
/// so that other plans' worktrees are checked out at the same time; `None`: the caller holds the
/// lock itself, for longer (a task worktree pool's take).
fn add_and_copy(
    repo: &Repository,
    req: &TreeRequest,
    path: &Path,
    decision: &Decision,
    reference: &git2::Reference,
    guard: Option<std::sync::MutexGuard<'static, ()>>,
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
    // libgit2's add made `.git/worktrees` with a plain mkdir that failed when another add made
    // it first: made here, under the lock, whatever adds the worktree.
    let admin_root = repo.commondir().join("worktrees");
    if let Err(source) = fs::create_dir_all(&admin_root) {
        undo();
        return Err(GitError::CreateDir {
            path: admin_root,
            source,
        });
    }
    // The entry and HEAD under the lock (`git worktree add` reads every other entry, and fails
    // on one being written), the checkout outside it.
    let _adding = Adding::new(req.plan);
    let added = git_worktree_add(repo, req.plan, path, reference);
    drop(guard);
    let add_error = |source| GitError::AddWorktree {
        name: req.plan.to_string(),
        path: path.to_path_buf(),
        source,
    };
    // A sparse plan's worktree gets its cone before its files: only the cone is written.
    let checked_out = match added {
        Err(source) => Err(add_error(source)),
        // The index is written last: a checkout cut short leaves a worktree without one
        // ([`half_made`]).
        Ok(()) if req.sparse.is_empty() => super::cli::run(path, &["reset", "--hard", "--quiet"])
            .map(drop)
            .map_err(|m| {
                let message = format!("checking out the worktree: {m}");
                add_error(git2::Error::new(
                    ErrorCode::GenericError,
                    ErrorClass::Worktree,
                    message,
                ))
            }),
        Ok(()) => super::sparse::checkout_cone(path, req.sparse),
    };
    if let Err(e) = checked_out {
        undo();
        return Err(e);
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

/// Adds the worktree `name` at `path` for branch `reference` with `git worktree add
/// --no-checkout` (its entry and HEAD; `git reset --hard` fills it): the git CLI checks out a
/// repository of 40,000 files in about 3/4 of the time of libgit2's `Repository::worktree` (see
/// the book's benchmarks page, "Plan worktrees: libgit2 or the git CLI"). No hooks run (as with libgit2). git names the entry after the
/// directory, so `path`'s last component must be `name` (it is, for plan and task worktrees).
fn git_worktree_add(
    repo: &Repository,
    name: &str,
    path: &Path,
    reference: &git2::Reference,
) -> Result<(), git2::Error> {
    let fail = |message: String| {
        git2::Error::new(ErrorCode::GenericError, git2::ErrorClass::Worktree, message)
    };
    if path.file_name().and_then(|n| n.to_str()) != Some(name) {
        return Err(fail(format!(
            "the worktree directory must be named `{name}`"
        )));
    }
    if !reference.is_branch() {
        return Err(fail("not a local branch".to_string()));
    }
    let branch = reference.shorthand()?;
    // Absolute: git runs in the git directory.
    let path = std::path::absolute(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
    let (common, path) = (repo.commondir(), path.to_string_lossy());
    let args = ["worktree", "add", "--quiet", "--no-checkout"];
    super::cli::run_on(
        super::cli::GitTarget::GitDir(common),
        &[&args[..], &[&path, branch]].concat(),
    )
    .map_err(|e| fail(e.to_string()))?;
    if !repo
        .commondir()
        .join("worktrees")
        .join(name)
        .join("gitdir")
        .is_file()
    {
        return Err(fail(format!(
            "`git worktree add` did not name the worktree `{name}`"
        )));
    }
    Ok(())
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
