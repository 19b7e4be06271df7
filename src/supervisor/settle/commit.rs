//! Committing a task's work and recording it: in the plan's worktree (the record deferred to
//! the plan's next status write) or in a task worktree landed on the plan branch; a commit found
//! made but unrecorded (a supervisor killed in between) is reused, not made again. The checks a
//! commit of agent work passes first are the settlement's ([`super::commit_refused`]).

use chrono::Utc;

use super::{
    commit_refused, record_failure, record_reset, submodule_lines, with_submodule_lines, work_of,
};
use crate::git;
use crate::status;
use crate::supervisor::context::PlanCtx;
use crate::supervisor::state::{Changes, CommitError, Outcome, quoted};

/// Commits the worktree for a done task; its record goes in the plan's next status write
/// ([`PlanCtx::defer_record`]; a task worktree's commit is recorded at once).
pub(crate) fn commit_done(plan: &PlanCtx, id: &str, description: &str) -> Outcome {
    let made = match plan.task_worktree(id) {
        Some(tree) => commit_tree_as(plan, (id, id), description, "", false, &tree),
        None => commit_in_worktree(plan, id, description, false, Changes::Take, Record::Later),
    };
    match made {
        Ok(commit) => Outcome::Done {
            commit: Some(commit),
        },
        Err(CommitError::Conflict { paths, saved }) => Outcome::Conflict { paths, saved },
        // The run stopped at once while its work was staged (git killed): nothing committed,
        // the task back to pending with its work left in the tree, as any interrupted task's.
        Err(CommitError::Failed(_)) if git::long_runs_stopped() => {
            record_reset(
                plan,
                id,
                "orch was stopped while committing its work (nothing was committed)".to_string(),
            );
            Outcome::Interrupted
        }
        Err(CommitError::Failed(error)) => {
            // Recorded, so the status file never keeps a task `in_progress` that nothing runs (the
            // agent may have deleted its worktree).
            let _ = record_failure(plan, id, &error);
            Outcome::Failed { error, saved: None }
        }
    }
}

/// Commits the worktree as `<plan> <id>: <description>` and records it, marking the task
/// completed. With `maybe_committed` (work found done but unrecorded: a supervisor may have died
/// between its commit and its record), the task's commit is reused when it is at HEAD or just
/// behind it and was made since the task was completed (later tasks' commits may have landed
/// before the record was written; changes in the tree are other tasks'), or when it is HEAD and
/// the tree is clean (with [`Changes::Take`]: changes since belong to no recorded task yet).
pub(super) fn commit_task(
    plan: &PlanCtx,
    id: &str,
    description: &str,
    maybe_committed: bool,
    changes: Changes,
) -> Result<String, CommitError> {
    if let Some(tree) = plan.task_worktree(id) {
        return commit_tree_as(plan, (id, id), description, "", maybe_committed, &tree);
    }
    commit_in_worktree(plan, id, description, maybe_committed, changes, Record::Now)
}

/// Commits task `task`, done outside an attempt (a person's `orch task done`, a `[x]`, found so
/// at start-up), as the core decided (`Action::Commit`): a commit that takes the worktree's
/// changes is checked first as an attempt's work is ([`commit_refused`]; the plan branch's
/// commits are orch's: no attempt started them), and a refusal is recorded as the task's
/// failure with its cause.
pub(crate) fn commit_outside_attempt(
    plan: &PlanCtx,
    task: usize,
    changes: Changes,
) -> Result<String, CommitError> {
    let t = plan
        .plan
        .tasks
        .get(task)
        .ok_or_else(|| CommitError::Failed("the task is not in the plan".to_string()))?;
    let (tree, branch, since) = work_of(plan, &t.id, None);
    if changes == Changes::Take
        && let Some(cause) = commit_refused(plan, t, (&tree, &branch, since))
    {
        return Err(CommitError::Failed(
            match record_failure(plan, &t.id, &cause) {
                Ok(()) => cause,
                Err(e) => format!("{cause} (cannot record it: {e})"),
            },
        ));
    }
    commit_task(plan, &t.id, &t.description, true, changes)
}

/// When a commit in the plan's worktree is recorded in the status file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Record {
    Now,
    /// In the plan's next status write ([`PlanCtx::defer_record`]).
    Later,
}

/// How many commits behind HEAD a task's unrecorded commit is looked for: at most one per agent
/// of the plan lands between a commit and its record.
pub(in crate::supervisor) const UNRECORDED_DEPTH: usize = 64;

/// [`commit_task`] in the plan's worktree.
fn commit_in_worktree(
    plan: &PlanCtx,
    id: &str,
    description: &str,
    maybe_committed: bool,
    changes: Changes,
    record: Record,
) -> Result<String, CommitError> {
    // Found done now, before the commit: see `CommitRecord::done_at`.
    let done_at = Utc::now();
    let _git = lock_git(plan)?;
    pin(&plan.worktree, plan.branch())?;
    // Only a commit that takes the worktree's changes takes its submodules' (a task reported
    // from outside while an agent writes there leaves them to that agent's task).
    let lines = match changes {
        Changes::Take => submodule_lines(plan, &plan.worktree).map_err(CommitError::Failed)?,
        Changes::Leave => Vec::new(),
    };
    let message = with_submodule_lines(&plan.commit_message(id, description), &lines);
    let prefix = format!("{} {id}:", plan.name());
    let reuse = if maybe_committed {
        let clean = || changes == Changes::Leave || git::is_dirty(&plan.worktree).is_ok_and(|d| !d);
        let recent =
            git::recent_commits(&plan.worktree, &plan.base, UNRECORDED_DEPTH).unwrap_or_default();
        // Read from the status file only when HEAD is not the task's clean commit.
        let since = std::cell::LazyCell::new(|| completed_at(plan, id));
        recent
            .iter()
            .enumerate()
            .find(|(i, c)| {
                c.message.starts_with(&prefix)
                    // At HEAD with nothing since, the task's last commit; or made for this
                    // completion (commit times are whole seconds).
                    && ((*i == 0 && clean()) || since.is_some_and(|s| c.time >= s))
            })
            .map(|(_, c)| c.oid.clone())
    } else {
        None
    };
    let oid = match reuse {
        Some(oid) => oid,
        None => {
            let made = match changes {
                Changes::Take => plan.commits.commit_all_on(
                    &plan.worktree,
                    plan.branch(),
                    &message,
                    (&plan.guarded.own, plan.entry.size_limits),
                ),
                Changes::Leave => {
                    plan.commits
                        .commit_unchanged_on(&plan.worktree, plan.branch(), &message)
                }
            };
            made.map_err(|e| {
                CommitError::Failed(format!(
                    "cannot commit task `{id}` in `{}`: {e}",
                    plan.worktree.display()
                ))
            })?
            .oid
        }
    };
    match record {
        Record::Now => record_commit(plan, id, &oid, done_at)?,
        Record::Later => plan.defer_record(id, &oid, done_at),
    }
    Ok(oid)
}

/// When task `id` was recorded completed (seconds since the epoch, rounded down as git's commit
/// times are).
fn completed_at(plan: &PlanCtx, id: &str) -> Option<i64> {
    let doc = plan.view().ok()?;
    let at = doc.entry(id)?.completed_at.as_deref()?;
    status::parse_timestamp(at).map(|t| t.timestamp())
}

/// The worktree's admin files put back from orch's records ([`git::pin_worktree`]): its HEAD on
/// `branch`, whatever the agent switched to, before anything is committed there.
fn pin(worktree: &std::path::Path, branch: &str) -> Result<(), CommitError> {
    git::pin_worktree(worktree, branch).map_err(|e| {
        CommitError::Failed(format!(
            "cannot put back the git files of `{}` before committing on `{branch}`: {e}",
            worktree.display()
        ))
    })
}

fn lock_git(plan: &PlanCtx) -> Result<std::sync::MutexGuard<'_, ()>, CommitError> {
    plan.git_lock.lock().map_err(|_| {
        CommitError::Failed(format!(
            "the git lock of plan `{}` is poisoned",
            plan.name()
        ))
    })
}

/// Commits task `id`'s worktree `tree` on its task branch (or, `maybe_committed`, reuses the
/// task's commit found there), lands it on the plan branch (one commit per task, see
/// [`git::land_task_commit`]), records it, frees its pool slot and deletes the task branch. On a
/// conflict the task commit is saved under `refs/orch/attempts/<plan>/<id>/conflict-<time>`, the
/// slot is freed, the task branch deleted and the task put back to pending. The worktree and
/// task branch are named by `key` (best of N: the picked attempt's,
/// [`crate::supervisor::round::member_key`]; else the task's id); `body`, when not empty, is a paragraph of
/// the commit's message.
pub(in crate::supervisor) fn commit_tree_as(
    plan: &PlanCtx,
    (id, key): (&str, &str),
    description: &str,
    body: &str,
    maybe_committed: bool,
    tree: &std::path::Path,
) -> Result<String, CommitError> {
    // Found done now, before the commit: see `CommitRecord::done_at`.
    let done_at = Utc::now();
    pin(tree, &git::task_branch(plan.name(), key))?;
    let lines = submodule_lines(plan, tree).map_err(CommitError::Failed)?;
    let mut message = with_submodule_lines(&plan.commit_message(id, description), &lines);
    if !body.is_empty() {
        message = format!("{}\n\n{body}\n", message.trim_end());
    }
    let prefix = format!("{} {id}:", plan.name());
    let reuse = match git::head_of(tree) {
        Ok((oid, msg))
            if maybe_committed
                && msg.starts_with(&prefix)
                && git::is_dirty(tree).is_ok_and(|d| !d) =>
        {
            Some(oid)
        }
        _ => None,
    };
    let branch = git::task_branch(plan.name(), key);
    let task_commit = match reuse {
        Some(oid) => oid,
        None => {
            git::commit_all_on(
                tree,
                &branch,
                &message,
                (&plan.guarded.own, plan.entry.size_limits),
            )
            .map_err(|e| {
                CommitError::Failed(format!(
                    "cannot commit task `{id}` of plan `{}` on `{branch}` in `{}`: {e}",
                    plan.name(),
                    tree.display()
                ))
            })?
            .oid
        }
    };
    let _git = lock_git(plan)?;
    let landed =
        git::land_task_commit(&plan.worktree, plan.branch(), &task_commit).map_err(|e| {
            CommitError::Failed(format!(
                "cannot land task `{id}`'s commit {task_commit} (branch `{branch}`) on `{}`: {e}",
                plan.branch()
            ))
        })?;
    match landed {
        git::Landed::Moved { commit } | git::Landed::Already { commit } => {
            record_commit(plan, id, &commit, done_at)?;
            // The work is landed and recorded: the task's pool slot is freed for the plan's
            // next task (a slot left held now is freed at the next start); after the plan's last
            // landing the core says the pool goes (`Action::DropPool`).
            let _ = git::retire_landed_task_tree(&plan.task_tree(key));
            Ok(commit)
        }
        git::Landed::Conflict { paths } => {
            let refname = git::conflict_ref(plan.name(), id, Utc::now().timestamp_millis());
            // Pending first: a supervisor killed before the removal below finds a task worktree
            // of a pending task, which it saves and removes (never a "done" task without its
            // work).
            let note = format!(
                "its commit conflicts with `{}` in {}",
                plan.branch(),
                quoted(&paths)
            );
            record_reset(plan, id, note);
            let saved = git::retire_task_tree(
                &plan.task_tree(key),
                Some((&refname, &format!("{message} (conflicted; saved by orch)"))),
            )
            .ok()
            .flatten();
            Err(CommitError::Conflict { paths, saved })
        }
    }
}

/// Records `oid` as task `id`'s commit, marking the task completed.
fn record_commit(
    plan: &PlanCtx,
    id: &str,
    oid: &str,
    done_at: chrono::DateTime<Utc>,
) -> Result<(), CommitError> {
    plan.finished_by_orch(id);
    plan.update_entry(id, |doc| {
        crate::supervisor::context::record_commit_in(doc, id, oid, (done_at, Utc::now()))
    })
    .map_err(|e| CommitError::Failed(format!("committed {oid} but cannot record it: {e}")))
}
