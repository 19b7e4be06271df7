//! Git over libgit2 (synchronous): plan worktrees and branches, commits, merges. Worktrees are
//! checked out by the git CLI, which is faster at it (`worktree.rs`).
//!
//! Every function opens its own [`git2::Repository`] (it is `Send` but not `Sync`), so calls for
//! different worktrees of one repository may run on blocking threads at the same time. Ref writes
//! that meet a `.lock` file (agents run the git CLI concurrently) are retried a few times.
//!
//! libgit2 runs no git hooks and its merge is not git's `ort`: merges are git's own, `git
//! merge-tree --write-tree` (see [`merge_tree`]).

mod bases;
mod big;
mod cleanup;
mod cli;
mod commit;
mod copy;
mod entries;
mod error;
mod export;
mod foreign;
mod history;
mod ignores;
mod inspect;
mod links;
mod locate;
mod marks;
mod merge;
pub(crate) mod merge_tree;
mod named;
mod nested;
mod own;
mod pool;
mod programs;
mod refs;
mod repo;
mod retry;
mod since;
mod size;
mod sparse;
mod status;
mod submodules;
mod task_tree;
mod train;
mod tree_change;
mod warm;
mod worktree;

#[cfg(test)]
mod tests;
mod upstream;

pub(crate) use big::{
    LANDING_COMMITS, TooLarge, commits_past, human as human_size, large_blobs_after,
    large_blobs_between, large_blobs_since_fork, too_large_in_worktree, worktree_change,
};
pub(crate) use cleanup::{
    GIT_MAX_DEPTH, PlanBranch, TreeState, Unreadable, backup_ref, change_over_in,
    delete_plan_branch, ignored_large, inspect_plan_branch, prune_stale_entries,
    remove_plan_worktree, scan_plan_trees, unsaveable_files,
};
pub use cli::confine_runs;
pub(crate) use cli::{
    GitTarget, command as git_command, transport_command as git_transport_command,
};
pub(crate) use cli::{stop_long_runs, stopping as long_runs_stopped};
#[cfg(test)]
use commit::CommitInfo;
pub use commit::SaveLimits;
pub(crate) use commit::{
    CommitRepo, RecentCommit, commit_all_except, commit_all_on, head_of, is_dirty, recent_commits,
    save_and_reset_within, take_off_commits_over, undo_attempt_commits,
};
#[cfg(test)]
pub(crate) use commit::{commit_all, dirty_paths, save_and_reset};
#[cfg(test)]
use copy::WORKTREE_INCLUDE;
pub(crate) use error::GitError;
pub(crate) use export::{head_export, head_ids};
pub(crate) use foreign::carries_unlanded;
/// A git object id (a commit, a tree), as it crosses the module's boundary.
pub(crate) use git2::Oid;
pub(crate) use history::{History, commit_files, current_branch_at, init_repo};
pub(crate) use inspect::{MergeState, changed_files, conflicts_of_pairs, overlapping_paths};
pub(crate) use locate::pin_worktree;
pub(crate) use merge::{MergeOutcome, MergePreview, merge_into, preview_merges};
pub(in crate::git) use merge_tree::{Keep, TreeMerge, marked_conflict, merge_commits, merge_many};
pub(in crate::git) use named::protected_in;
pub(crate) use named::{
    Cover, Protected, changed_since_fork, disk_view, new_files_above, new_links_at, protected_at,
};
pub(crate) use nested::{
    check as check_nested, git_dirs_since_fork, is_special_git_file, nested_in,
};
pub(crate) use own::{own_changes_in, own_changes_since_fork};
pub use pool::take_pool_tree;
pub use pool::{PoolRemoval, remove_pool};
pub(crate) use pool::{remove_tree_locks, task_tree_path};
pub(crate) use refs::{
    BACKUP_PREFIX, attempt_ref, backup_name, conflict_ref, plan_attempts_prefix, plan_resume_ref,
    stale_attempt_ref, task_backup_name, task_branch, task_resume_ref, task_tree_name,
    worktree_backup_name,
};
pub(in crate::git) use repo::open;
pub(crate) use repo::retry_locked;
pub(crate) use repo::{branch_tip, ensure_excluded, file_differs_from, latest_of, work_dir};
pub(crate) use size::lines_changed;
pub(crate) use sparse::{missing_dirs, outside_cone};
pub(crate) use status::Dirt;
pub(crate) use submodules::{submodule_changes, sync_submodules};
pub use task_tree::retire_task_tree;
pub(crate) use task_tree::{
    Landed, land_task_commit, retire_landed_task_tree, task_tree_ids, uncommit_task_tree,
};
pub use train::is_merged;
pub(crate) use train::{Built, Moved, Subject, landing, move_target};
pub(crate) use train::{
    MergeError, MergeRepo, Predicted, Simulator, Staging, WorkFile, checked_out_at, remove_named,
    target_contains, untracked_in_the_way, work_state,
};
pub(crate) use upstream::{export_commit, remove as remove_export};
pub(crate) use warm::tracked_among;
pub use worktree::TaskTreeRequest;
pub use worktree::TreeRequest;
pub use worktree::ensure_plan_tree;
pub(crate) use worktree::{
    PlanTree, TreeAction, plan_tree_preflight, remove_plan_locks, remove_stale_config_lock,
};

/// The id git gives the file at `path` as a blob (`git hash-object`): how orch names its own
/// executable on a `[[host]]` and checks the copy there.
pub(crate) fn blob_id_of_file(path: &std::path::Path) -> std::io::Result<String> {
    git2::Oid::hash_file(git2::ObjectType::Blob, path)
        .map(|o| o.to_string())
        .map_err(std::io::Error::other)
}

/// The id git gives `bytes` as a blob.
pub(crate) fn blob_id_of_bytes(bytes: &[u8]) -> String {
    git2::Oid::hash_object(git2::ObjectType::Blob, bytes)
        .map_or_else(|_| "0".repeat(40), |o| o.to_string())
}

/// The bytes of file `rel` in the `HEAD` commit of the work tree `work`, when it is a blob of at
/// most `max` bytes (its size is read before its content).
pub(crate) fn head_file(work: &std::path::Path, rel: &str, max: u64) -> Option<Vec<u8>> {
    let repo = open(work).ok()?;
    let tree = repo.head().ok()?.peel_to_tree().ok()?;
    let entry = tree.get_path(std::path::Path::new(rel)).ok()?;
    if entry.filemode() != i32::from(git2::FileMode::Blob) {
        return None;
    }
    let odb = repo.odb().ok()?;
    let (size, kind) = odb.read_header(entry.id()).ok()?;
    if kind != git2::ObjectType::Blob || size as u64 > max {
        return None;
    }
    Some(repo.find_blob(entry.id()).ok()?.content().to_vec())
}
