//! Best of N, settled: an attempt's worktree checked as a commit would be (the plan's cone,
//! submodules, protected paths) and sized, the pick committed and landed as the task's one
//! commit, every other attempt's work saved under `refs/orch/attempts/<plan>/<task>/<attempt>`.
//! The core picks ([`crate::supervisor::core`], `core/best_of.rs`); the measuring and `select`
//! are `supervisor/best_of.rs`'s.

use std::iter::once_with;

use super::{
    commit_tree_as, nested_repositories, outside_paths, protected_changes_in, submodule_lines,
    too_large,
};
use crate::git;
use crate::supervisor::context::PlanCtx;
use crate::supervisor::core::checks::{Found, refusal};
use crate::supervisor::round::member_key;
use crate::supervisor::state::{CommitError, Outcome};

/// The worktree of attempt `key` of task `t`, checked as a commit would be (fail closed: no
/// nested repository, no file over `max_file_size` nor a change over `max_change_size`, in the
/// worktree or committed by the agent on its task branch, the plan's cone, submodules,
/// protected paths), and the size of its change in lines; `Err`: why the attempt is no
/// candidate. The sizes are checked before anything reads the files' contents (the lines
/// counted, `select`, the pick's commit).
pub(crate) fn checked_size(
    pc: &PlanCtx,
    t: usize,
    key: &str,
) -> Result<(std::path::PathBuf, u64), String> {
    let task = &pc.plan.tasks[t];
    let tree = pc
        .task_worktree(key)
        .ok_or_else(|| format!("its task worktree (`{key}`) is gone"))?;
    // Its git files put back from orch's records first (HEAD on its own task branch).
    let branch = git::task_branch(pc.name(), key);
    git::pin_worktree(&tree, &branch)
        .map_err(|e| format!("cannot put back the git files of `{}`: {e}", tree.display()))?;
    let work = (tree.as_path(), branch.as_str(), Some(pc.branch()));
    let dirt = git::Dirt::new(&tree);
    if let Some(cause) = refusal(
        once_with(|| Found::of(nested_repositories(work)))
            .chain(once_with(|| Found::of(too_large(pc, task, work, &dirt))))
            .chain(once_with(|| {
                Found::of(outside_paths(&tree, &pc.entry.paths, Some(pc.branch())))
            }))
            .chain(once_with(|| {
                Found::of(submodule_lines(pc, &tree).map(|_| None))
            }))
            .chain(once_with(|| {
                Found::of(protected_changes_in(pc, task, work, &dirt))
            })),
    ) {
        return Err(cause);
    }
    let lines = git::lines_changed(&tree)?;
    Ok((tree, lines))
}

/// Settles the picked attempt `attempt` of task `t` (`index` in its plan): checked again (the
/// select ran in its worktree since), committed with `why` in its message, landed on the plan
/// branch as the task's one commit, recorded.
pub(crate) fn settle_pick(
    pc: &PlanCtx,
    (index, t): (usize, &crate::plan::Task),
    attempt: u32,
    description: &str,
    why: &str,
) -> Outcome {
    let key = member_key(&t.id, attempt);
    let checked = checked_size(pc, index, &key);
    let body = format!("best of N: {why}");
    let made = match checked {
        Err(cause) => Err(CommitError::Failed(cause)),
        Ok((tree, _)) => commit_tree_as(pc, (&t.id, &key), description, &body, false, &tree),
    };
    match made {
        Ok(commit) => Outcome::Done {
            commit: Some(commit),
        },
        Err(CommitError::Conflict { paths, saved }) => Outcome::Conflict { paths, saved },
        Err(CommitError::Failed(error)) => {
            let saved = save_member(pc, &t.id, attempt, &error);
            Outcome::Failed { error, saved }
        }
    }
}

/// Settles an attempt that was not picked: its work saved, its task worktree freed. The task's
/// record is the round's.
pub(crate) fn settle_lose(pc: &PlanCtx, id: &str, attempt: u32, cause: &str) -> Outcome {
    let saved = save_member(pc, id, attempt, cause);
    Outcome::Failed {
        error: cause.to_string(),
        saved,
    }
}

/// Saves what attempt `attempt` of task `id` left (uncommitted changes, untracked files) under
/// `refs/orch/attempts/<plan>/<id>/<attempt>` with `cause` in the message, frees its pool slot
/// and deletes its task branch. The ref when something was saved.
fn save_member(pc: &PlanCtx, id: &str, attempt: u32, cause: &str) -> Option<String> {
    let key = member_key(id, attempt);
    let refname = git::attempt_ref(pc.name(), id, attempt);
    let first = cause.lines().next().unwrap_or("").trim();
    let first: String = first.chars().take(200).collect();
    let message = format!(
        "{} {id}: attempt {attempt} not picked: {first} (saved by orch)",
        pc.name()
    );
    if let Some(tree) = pc.task_worktree(&key) {
        // Saved from orch's record of the branch, whatever the agent did to HEAD.
        let _ = git::pin_worktree(&tree, &git::task_branch(pc.name(), &key));
    }
    git::retire_task_tree(&pc.task_tree(&key), Some((&refname, &message)))
        .ok()
        .flatten()
}
