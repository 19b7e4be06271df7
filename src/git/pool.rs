//! A plan's pool of task worktrees (`parallel_tasks` > 1): at most one worktree per task slot,
//! reused by the plan's tasks one after another instead of one worktree made and deleted per task.
//!
//! - A slot is the worktree `<worktree_root>/<plan>+pool<n>`, named `<plan>+pool<n>` in
//!   `.git/worktrees/` (task ids are dotted numbers or `V<n>`, so the name is never a task's).
//! - A slot is *held* while its HEAD is a task branch (`orch/task/<plan>/<id>`): which slot a task
//!   runs in is read from git, so a restarted supervisor finds it. A task's end (landed, failed,
//!   conflicted) detaches the slot's HEAD at its last commit and deletes the task branch: the slot
//!   is *free*.
//! - Taking a free slot ([`take_pool_tree`]) saves what it holds that HEAD does not (as every
//!   reset of orch does) and checks the plan branch's tip out in it with libgit2's checkout, which
//!   writes only the files that differ; ignored files (build outputs) stay, so the next task builds
//!   incrementally.
//! - A free slot this process did not make is looked at before its first take: one holding what
//!   no save keeps (a file over `max_file_size`, ignored or not, or a place orch cannot read), as
//!   the end of an earlier run keeps it for `orch clean`, is never given to a task; a new slot is
//!   made instead ([`may_take`]).
//! - The pool goes when the plan is done and with `orch clean` ([`remove_pool`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::GitError;
use super::commit::save_and_reset_within;
use super::entries::read_entries;
use super::marks::mark;
use super::refs::{check_tree_name, task_branch, task_tree_name};
use super::repo::{open, retry_locked, target_commit};
use super::status::{Submodules, dirty_files};
use super::worktree::{
    PlanTree, TaskTreeRequest, add_tree, open_main, submodules_of, worktree_lock,
};

/// The name (and directory name) of slot `n` of `plan`'s pool: `<plan>+pool<n>`.
pub(crate) fn pool_tree_name(plan: &str, n: usize) -> String {
    format!("{plan}+pool{n}")
}

/// The slot number of a worktree named `name` when it is a slot of `plan`'s pool.
pub(super) fn pool_slot(plan: &str, name: &str) -> Option<usize> {
    let rest = name.strip_prefix(plan)?.strip_prefix("+pool")?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// The worktree task `id` of `plan` runs in: a pool slot given to its task branch
/// `orch/task/<plan>/<id>` (its HEAD, or orch's [`HELD_BY`] mark when an agent switched the
/// slot's HEAD elsewhere), or a task worktree of its own, `<plan>+<id>`, left by an earlier
/// version of orch. The path is where orch made it (`<worktree_root>/<name>`), not the entry's
/// back-link.
pub(crate) fn task_tree_path(
    repo_root: &Path,
    worktree_root: &Path,
    plan: &str,
    id: &str,
) -> Result<Option<PathBuf>, GitError> {
    let repo = open_main(repo_root)?;
    let branch = task_branch(plan, id);
    let name = task_tree_name(plan, id);
    Ok(read_entries(repo.commondir())?
        .into_iter()
        .filter(|e| !e.prunable())
        .find(|e| {
            (e.name == name && e.head.as_deref() == Some(&*format!("refs/heads/{branch}")))
                || (pool_slot(plan, &e.name).is_some() && holds(e, &branch))
        })
        .map(|e| super::cleanup::made_path(repo_root, worktree_root, &e.name))
        .filter(|p| p.is_dir()))
}

/// The file in a pool slot's admin directory naming the task branch the slot was given to
/// (written by [`take_pool_tree`], removed by [`free_slot`]): which slot a task holds does not
/// depend on the slot's HEAD, which an agent may switch (`git switch other`).
const HELD_BY: &str = "orch-task";

/// Whether the slot `entry` is held by the task of `branch`: its HEAD or orch's mark says so.
pub(super) fn holds(entry: &super::entries::Entry, branch: &str) -> bool {
    entry.head.as_deref() == Some(&*format!("refs/heads/{branch}"))
        || crate::untrusted::read::small_text(&entry.admin.join(HELD_BY))
            .is_ok_and(|b| b.trim() == branch)
}

/// Marks the slot at `admin` as held by `branch`'s task ([`HELD_BY`]).
fn mark_held(admin: &Path, branch: &str) -> Result<(), GitError> {
    std::fs::write(admin.join(HELD_BY), format!("{branch}\n")).map_err(|source| {
        GitError::RestoreAdmin {
            path: admin.join(HELD_BY),
            source,
        }
    })
}

/// The lock files a git write in a linked worktree leaves in its admin dir when its process is
/// killed (a supervisor killed while it committed, reset or switched a slot): its index's and
/// its `HEAD`'s.
const TREE_LOCKS: [&str; 2] = ["index.lock", "HEAD.lock"];

/// Removes the stale [`TREE_LOCKS`] of the linked worktree at `tree` (its admin dir's): only for
/// a caller that knows nothing writes there (no agent runs in it).
pub(crate) fn remove_tree_locks(tree: &Path) -> Result<(), GitError> {
    remove_admin_locks(open(tree)?.path())
}

/// [`remove_tree_locks`] by the worktree's admin dir. A link in its place is removed, never
/// followed.
fn remove_admin_locks(admin: &Path) -> Result<(), GitError> {
    for name in TREE_LOCKS {
        let path = admin.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(GitError::Prune { path, source }),
        }
    }
    Ok(())
}

/// Gives task `req.id` a worktree of the plan's pool: its task branch is made at the plan branch's
/// tip (marked as orch's, like a task branch of its own worktree), then a free slot is reset to it
/// (what the slot held that its HEAD does not is saved under `save`'s ref first, untracked files
/// that git does not ignore included; only files that differ are written; ignored files stay) and
/// its HEAD pointed at the task branch. Without a free slot a new one is added (with the plan's
/// `copy` files). The task branch must not exist (the caller retires an earlier one first).
pub fn take_pool_tree(req: &TaskTreeRequest, save: (&str, &str)) -> Result<PlanTree, GitError> {
    let (plan, id) = (req.plan, req.id);
    let name = task_tree_name(plan, id);
    check_tree_name(&name).map_err(|reason| GitError::InvalidName {
        what: "task worktree name",
        name: name.clone(),
        reason,
    })?;
    let branch = task_branch(plan, id);
    let _guard = worktree_lock();
    let repo = open_main(req.repo_root)?;
    let tip = target_commit(&repo, req.plan_branch)?;
    let tip_hex = tip.id().to_string();
    clear_unfinished(&repo, req.repo_root, req.worktree_root, plan)?;
    let mut notes = Vec::new();
    let free = pool_trees_in(&repo, req.repo_root, req.worktree_root, plan)?
        .into_iter()
        .find(|(_, path, held)| {
            !held && path.is_dir() && may_take(path, req.save.limits.file, &mut notes)
        });
    // The mark first (as for a plan branch): a kill in between leaves a mark without a branch.
    mark(&repo, &branch, &name, &tip_hex)?;
    let made = retry_locked(|| repo.branch(&branch, &tip, false)).map_err(|source| {
        GitError::CreateBranch {
            branch: branch.clone(),
            source,
        }
    })?;
    let (path, created, copied) = if let Some((n, path, _)) = free {
        tracing::debug!(plan, task = id, slot = n, "task worktree pool: slot reused");
        let admin = repo
            .commondir()
            .join("worktrees")
            .join(pool_tree_name(plan, n));
        // No agent runs in a free slot: a lock of its index or HEAD is a stale one (a
        // supervisor killed while it wrote there).
        remove_admin_locks(&admin)?;
        // Freed clean at the commit its HEAD is (its task's work committed and landed, or saved):
        // nothing wrote there since, so only the files that differ from the tip need a look
        // (`git read-tree -m -u`, which refuses to overwrite a changed one). The mark goes first.
        let clean = take_clean_mark(&admin);
        let switched = clean
            && super::cli::run_in(&path, &["read-tree", "-m", "-u", "HEAD", &branch]).is_ok()
            && open(&path).is_ok_and(|wt| {
                retry_locked(|| wt.set_head(&format!("refs/heads/{branch}"))).is_ok()
            });
        if !switched {
            // A nested repository an earlier task left (even in an ignored directory) goes.
            super::nested::remove_nested(&path);
            // The git CLI, not libgit2: at 40,000 files its status and checkout take 211 ms where
            // libgit2's take 733 ms (benches/worktrees.rs). Leftovers are rare: saved through
            // libgit2.
            if !dirty_files(&path, Submodules::Ignored)?.is_empty() {
                save_and_reset_within(&path, save.0, save.1, req.save)?;
            }
            // Only the files that differ are written; ignored files stay.
            super::cli::run_in(&path, &["checkout", "-q", "-f", &branch])?;
        }
        mark_held(&admin, &branch)?;
        (path, false, Vec::new())
    } else {
        let slots: Vec<usize> = read_entries(repo.commondir())?
            .iter()
            .filter(|e| !e.prunable())
            .filter_map(|e| pool_slot(plan, &e.name))
            .collect();
        let n = (1..).find(|n| !slots.contains(n)).unwrap_or(1);
        let slot = pool_tree_name(plan, n);
        let path = req.worktree_root.join(&slot);
        tracing::debug!(plan, task = id, slot = %slot, "task worktree pool: new slot");
        let treq = req.tree(&slot, &branch, &path);
        let copied = match add_tree(&repo, &treq, made.get(), tip.id()) {
            Ok(c) => c,
            Err(e) => {
                let mut made = made;
                let _ = retry_locked(|| made.delete());
                return Err(e);
            }
        };
        mark_held(&repo.commondir().join("worktrees").join(&slot), &branch)?;
        vetted().insert(path.clone(), None);
        (path, true, copied)
    };
    // The slot's submodules follow its new commit (made where an earlier task left none).
    notes.extend(submodules_of(req.submodules, &path));
    Ok(PlanTree {
        notes,
        path,
        branch,
        base: tip_hex.clone(),
        head: tip_hex,
        created,
        copied,
    })
}

/// What this process found in the pool slots it did not make, before it first gave one to a
/// task, by path: `None`, nothing a save does not keep (the slot may be given); `Some(why)`, a
/// file over `max_file_size` (ignored or not) or a place orch cannot read. Such a slot is one
/// the end of an earlier `orch up` kept for `orch clean` to decide (or one a killed run left):
/// it is never given to a task, whose agent could read, change or delete what it holds, or fail
/// on a file it never made. orch's own record, in memory: nothing an agent writes decides it.
/// A slot this process made, or found without such a file, is shared by the plan's tasks one
/// after another as the pool is (ignored files stay).
fn vetted() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Option<String>>> {
    static VETTED: OnceLock<Mutex<HashMap<PathBuf, Option<String>>>> = OnceLock::new();
    VETTED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether the free slot at `path` may be given to a task: a slot this process has not looked
/// at is walked first ([`super::cleanup::unkeepable_in`], links never followed); one holding
/// what no save keeps is passed over (the pool makes a new slot instead; a slot passed over
/// does not count against `parallel_tasks`) and left exactly as it is, said once in `notes`.
fn may_take(path: &Path, max_file: u64, notes: &mut Vec<String>) -> bool {
    let mut vetted = vetted();
    let why = vetted.entry(path.to_path_buf()).or_insert_with(|| {
        let why = super::cleanup::unkeepable_in(path, max_file);
        if let Some(why) = &why {
            tracing::warn!(slot = %path.display(), %why, "pool slot kept, not reused");
            notes.push(format!(
                "task worktree kept, not given to a task again (a new one is made): {}: {why}",
                path.display()
            ));
        }
        why
    });
    why.is_none()
}

/// Whether `git worktree add` of entry `e` never finished: git takes the entry's lock
/// (`initializing`) first, writes its `gitdir`, `commondir` and `HEAD`, and removes the lock when
/// the entry is whole. No task ever ran in such a slot.
fn add_unfinished(e: &super::entries::Entry) -> bool {
    e.head.is_none()
        || crate::untrusted::read::small_text(&e.admin.join("locked"))
            .is_ok_and(|reason| reason.trim() == "initializing")
}

/// Removes the slots of `plan`'s pool whose add a kill cut short (their directory and entry),
/// when the directory is orch's own half-made one (nothing in it but its `.git` and the files of
/// a checkout: [`super::entries::half_made`]); any other such slot stays, never taken as free.
/// The caller holds [`worktree_lock`].
fn clear_unfinished(
    repo: &git2::Repository,
    repo_root: &Path,
    worktree_root: &Path,
    plan: &str,
) -> Result<(), GitError> {
    for e in read_entries(repo.commondir())? {
        if pool_slot(plan, &e.name).is_none() || e.prunable() || !add_unfinished(&e) {
            continue;
        }
        let path = super::cleanup::made_path(repo_root, worktree_root, &e.name);
        // Whatever commit the add was for: with no checkout done, only `.git` is there.
        let tip = match e.head.as_deref().and_then(|h| git2::Oid::from_str(h).ok()) {
            Some(oid) => oid,
            None => match repo.head().ok().and_then(|h| h.target()) {
                Some(oid) => oid,
                None => continue,
            },
        };
        let ours = match std::fs::symlink_metadata(&path) {
            Err(_) => true,
            Ok(_) => super::entries::half_made(repo, &path, &e.admin, tip),
        };
        if !ours {
            continue;
        }
        tracing::debug!(plan, slot = %e.name, "task worktree pool: an unfinished add cleared");
        if std::fs::symlink_metadata(&path).is_ok() {
            super::entries::discard_dir(&path)?;
        }
        match std::fs::remove_dir_all(&e.admin) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(GitError::Prune {
                    path: e.admin.clone(),
                    source,
                });
            }
        }
    }
    Ok(())
}

fn pool_trees_in(
    repo: &git2::Repository,
    repo_root: &Path,
    worktree_root: &Path,
    plan: &str,
) -> Result<Vec<(usize, PathBuf, bool)>, GitError> {
    let prefix = format!("refs/heads/{}", task_branch(plan, ""));
    let mut out: Vec<(usize, PathBuf, bool)> = read_entries(repo.commondir())?
        .into_iter()
        .filter(|e| !e.prunable())
        .filter_map(|e| {
            let n = pool_slot(plan, &e.name)?;
            // A slot whose add never finished (and that was not cleared) is never free.
            if add_unfinished(&e) {
                let made = super::cleanup::made_path(repo_root, worktree_root, &e.name);
                return Some((n, made, true));
            }
            let marked =
                crate::untrusted::read::small_text(&e.admin.join(HELD_BY)).is_ok_and(|b| {
                    b.trim().starts_with(&prefix["refs/heads/".len()..])
                        && repo
                            .find_reference(&format!("refs/heads/{}", b.trim()))
                            .is_ok()
                });
            let held = marked || e.head.as_deref().is_some_and(|h| h.starts_with(&prefix));
            let made = super::cleanup::made_path(repo_root, worktree_root, &e.name);
            Some((n, made, held))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The file in a slot's admin directory (`.git/worktrees/<slot>/`) that says the slot was freed
/// clean: it holds the commit the slot's HEAD was detached at and the freeing process's
/// [`process_token`]. Only that process trusts it: between runs (a plan not finished keeps its
/// pool) a person may have written in the slot, which `orch clean` and the next run's first
/// take must see.
const CLEAN_MARK: &str = "orch-clean";

/// This process, told from any other (a pid may be used again): its pid and its first call's
/// time.
fn process_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{}-{nanos}", std::process::id())
    })
}

/// Frees the pool slot at `path` held by a task whose branch is at `tip`: its HEAD is detached
/// there, so that the task branch can go. `clean`: the caller knows the slot holds exactly `tip`
/// (its work committed, or saved and reset, and no agent left in it), which the next task's
/// [`take_pool_tree`] then need not check with a status of the whole tree. The caller holds
/// [`worktree_lock`].
pub(super) fn free_slot(path: &Path, tip: git2::Oid, clean: bool) -> Result<(), GitError> {
    let wt = open(path)?;
    let mark = wt.path().join(CLEAN_MARK);
    let _ = std::fs::remove_file(&mark);
    let _ = std::fs::remove_file(wt.path().join(HELD_BY));
    retry_locked(|| wt.set_head_detached(tip)).map_err(|source| GitError::UpdateRef {
        refname: format!("HEAD of {}", path.display()),
        source,
    })?;
    if clean {
        // A mark that cannot be written only costs the next task a status. The admin directory
        // is the agent's to write: never through a link planted at the mark's name.
        let _ = crate::links::write(&mark, format!("{tip} {}\n", process_token()).as_bytes());
    }
    Ok(())
}

/// Whether the slot whose admin directory is `admin` was freed clean, by this process, at the
/// commit its HEAD is detached at; the mark is removed (a taker that is killed leaves the next
/// one to check).
fn take_clean_mark(admin: &Path) -> bool {
    let mark = admin.join(CLEAN_MARK);
    let Ok(text) = crate::untrusted::read::small_text(&mark) else {
        return false;
    };
    if std::fs::remove_file(&mark).is_err() {
        return false;
    }
    let mut words = text.split_whitespace();
    let (Some(at), Some(token)) = (words.next(), words.next()) else {
        return false;
    };
    token == process_token()
        && crate::untrusted::read::small_text(&admin.join("HEAD"))
            .is_ok_and(|head| head.trim() == at)
}

/// What [`remove_pool`] did: the refs it saved, and the slots it left, each with why.
#[derive(Debug, Default)]
pub struct PoolRemoval {
    /// The refs saved (`<refname>-pool<n>`).
    pub saved: Vec<String>,
    /// The slots left in place, each as `<path>: <why>`.
    pub kept: Vec<String>,
}

/// Removes the free slots of `plan`'s pool (directory and entry), leaving those a task holds.
/// A slot with changes is left as it is, unless `save` (`refname` prefix, `message`) is given:
/// its changes are then saved under `<refname>-pool<n>` first. Without `save`, a slot is left
/// too when it holds what no save could keep: a file over `limits`' `max_file_size` (an ignored
/// one too: red team 7, hidden by the plan's own `.gitignore`, removed without a word), or a
/// place orch cannot read; `orch clean` then decides, naming them.
pub fn remove_pool(
    repo_root: &Path,
    worktree_root: &Path,
    plan: &str,
    save: Option<(&str, &str)>,
    limits: super::SaveLimits,
) -> Result<PoolRemoval, GitError> {
    let _guard = worktree_lock();
    let repo = open_main(repo_root)?;
    let mut saved = Vec::new();
    let mut kept = Vec::new();
    for (n, path, held) in pool_trees_in(&repo, repo_root, worktree_root, plan)? {
        if held {
            continue;
        }
        let slot = pool_tree_name(plan, n);
        let admin = repo.commondir().join("worktrees").join(&slot);
        if save.is_none()
            && path.is_dir()
            && let Some(why) = super::cleanup::unkeepable_in(&path, limits.limits.file)
        {
            tracing::warn!(slot = %path.display(), %why, "pool slot kept");
            kept.push(format!("{}: {why}", path.display()));
            // Never given to a task again, by this process either ([`may_take`]); said already.
            vetted().insert(path.clone(), Some(why));
            continue;
        }
        // Freed clean (its last task landed): nothing to save, no status of the whole tree.
        if path.is_dir()
            && !take_clean_mark(&admin)
            && !dirty_files(&path, Submodules::Ignored)?.is_empty()
        {
            let Some((refname, message)) = save else {
                continue;
            };
            let refname = format!("{refname}-pool{n}");
            if save_and_reset_within(&path, &refname, message, limits)?.is_some() {
                saved.push(refname);
            }
        }
        // Changes inside a submodule checkout are not the slot's to save (they belong to the
        // submodule's repository): the slot stays.
        let inside = super::submodules::submodule_dirt(&path);
        if path.is_dir() && !inside.is_empty() {
            tracing::warn!(slot = %path.display(), ?inside, "pool slot kept: changes inside submodules");
            continue;
        }
        // The directory orch made and the entry, never the back-link's directory.
        let entries = read_entries(repo.commondir())?;
        if let Some(entry) = entries.iter().find(|e| e.name == slot) {
            super::cleanup::remove_made_tree(&path, entry)?;
        }
    }
    // A slot whose directory went and whose entry stayed (a kill in between, found by the crash
    // harness): nothing is left in it to save, its entry goes too.
    for entry in read_entries(repo.commondir())? {
        if entry.prunable() && pool_slot(plan, &entry.name).is_some() {
            super::cleanup::remove_admin(&entry)?;
        }
    }
    Ok(PoolRemoval { saved, kept })
}

#[cfg(test)]
mod tests {
    use super::{pool_slot, pool_tree_name};

    #[test]
    fn slot_names_are_told_from_task_worktree_names() {
        assert_eq!(pool_tree_name("api", 2), "api+pool2");
        assert_eq!(pool_slot("api", "api+pool2"), Some(2));
        assert_eq!(pool_slot("api", "api+pool12"), Some(12));
        for other in [
            "api+1.1",
            "api+pool",
            "api+pool1x",
            "apix+pool1",
            "api",
            "ap+pool1",
        ] {
            assert_eq!(pool_slot("api", other), None, "{other}");
        }
    }
}
