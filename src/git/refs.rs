//! The names of the refs orch writes outside branches: saved attempts, backups and archive tags;
//! and of task branches and task worktrees. Every such name is built here, from its prefix.

use crate::manifest::check_plan_name;

/// Where `--force` saves a plan's work before removing it: `refs/orch/backup/<plan>/<stamp>`.
pub(crate) const BACKUP_PREFIX: &str = "refs/orch/backup/";
/// Where orch saves failed attempts: `refs/orch/attempts/<plan>/<task>/<n>`.
pub(crate) const ATTEMPTS_PREFIX: &str = "refs/orch/attempts/";
/// Where `orch merge` archives merged plan tips: `refs/tags/orch/archive/<plan>/<sha>`.
pub(crate) const ARCHIVE_PREFIX: &str = "refs/tags/orch/archive/";

/// Every saved attempt of `plan` is under this prefix: `refs/orch/attempts/<plan>/`.
pub(crate) fn plan_attempts_prefix(plan: &str) -> String {
    format!("{ATTEMPTS_PREFIX}{plan}/")
}

/// What attempt `attempt` of task `task` left uncommitted: `refs/orch/attempts/<plan>/<task>/<n>`.
pub(crate) fn attempt_ref(plan: &str, task: &str, attempt: u32) -> String {
    format!("{ATTEMPTS_PREFIX}{plan}/{task}/{attempt}")
}

/// A task worktree left by an earlier attempt, found when attempt `attempt` starts:
/// `refs/orch/attempts/<plan>/<task>/<n>-stale`.
pub(crate) fn stale_attempt_ref(plan: &str, task: &str, attempt: u32) -> String {
    format!("{ATTEMPTS_PREFIX}{plan}/{task}/{attempt}-stale")
}

/// A task commit that conflicted with the plan branch when it was landed:
/// `refs/orch/attempts/<plan>/<task>/conflict-<stamp>` (`stamp`: milliseconds since the epoch).
pub(crate) fn conflict_ref(plan: &str, task: &str, stamp: i64) -> String {
    format!("{ATTEMPTS_PREFIX}{plan}/{task}/conflict-{stamp}")
}

/// A task worktree left by a stopped supervisor, saved at the next start:
/// `refs/orch/attempts/<plan>/<task>/resume-<stamp>` (`stamp`: milliseconds since the epoch).
pub(crate) fn task_resume_ref(plan: &str, task: &str, stamp: i64) -> String {
    format!("{ATTEMPTS_PREFIX}{plan}/{task}/resume-{stamp}")
}

/// A plan worktree's leftovers from a stopped supervisor, saved at the next start:
/// `refs/orch/attempts/<plan>/resume-<stamp>` (`stamp`: seconds since the epoch).
pub(crate) fn plan_resume_ref(plan: &str, stamp: i64) -> String {
    format!("{ATTEMPTS_PREFIX}{plan}/resume-{stamp}")
}

/// A backup of a plan's branch tip: `refs/orch/backup/<plan>/<stamp>` (`stamp` a valid ref
/// component, e.g. `20261105T101112Z`).
pub(crate) fn backup_name(plan: &str, stamp: &str) -> String {
    format!("{BACKUP_PREFIX}{plan}/{stamp}")
}

/// The backup of the uncommitted files of the worktree whose branch was saved as `backup`:
/// `<backup>-worktree`.
pub(crate) fn worktree_backup_name(backup: &str) -> String {
    format!("{backup}-worktree")
}

/// A backup of what task `task`'s worktree held: `refs/orch/backup/<plan>/<stamp>-task-<task>`.
pub(crate) fn task_backup_name(plan: &str, stamp: &str, task: &str) -> String {
    format!("{BACKUP_PREFIX}{plan}/{stamp}-task-{task}")
}

/// The prefix of every task branch: `orch/task/<plan>/<id>`.
pub(crate) const TASK_BRANCH_PREFIX: &str = "orch/task/";

/// The worktree name (and directory name) of task `id` of `plan`: `<plan>+<id>`.
pub(crate) fn task_tree_name(plan: &str, id: &str) -> String {
    format!("{plan}+{id}")
}

/// The branch of task `id` of `plan`: `orch/task/<plan>/<id>`.
pub(crate) fn task_branch(plan: &str, id: &str) -> String {
    format!("{TASK_BRANCH_PREFIX}{plan}/{id}")
}

/// Checks a worktree name: a plan name, or a task worktree's `<plan>+<id>` (the id: letters,
/// digits and single dots, as plan files write them).
pub(super) fn check_tree_name(name: &str) -> Result<(), String> {
    let Some((plan, id)) = name.split_once('+') else {
        return check_plan_name(name);
    };
    check_plan_name(plan)?;
    let ok = !id.is_empty()
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
        && !id.starts_with('.')
        && !id.ends_with('.')
        && !id.contains("..")
        && !id.ends_with(".lock");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "task id `{id}` of worktree `{name}` is not allowed: ids may contain only letters, digits and single dots"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names() {
        let cases = [
            (
                attempt_ref("auth", "1.2", 1),
                "refs/orch/attempts/auth/1.2/1",
            ),
            (
                stale_attempt_ref("auth", "1.2", 3),
                "refs/orch/attempts/auth/1.2/3-stale",
            ),
            (
                conflict_ref("auth", "1.2", 17),
                "refs/orch/attempts/auth/1.2/conflict-17",
            ),
            (
                task_resume_ref("auth", "1.2", 17),
                "refs/orch/attempts/auth/1.2/resume-17",
            ),
            (
                plan_resume_ref("auth", 5),
                "refs/orch/attempts/auth/resume-5",
            ),
            (plan_attempts_prefix("auth"), "refs/orch/attempts/auth/"),
            (backup_name("auth", "S"), "refs/orch/backup/auth/S"),
            (
                worktree_backup_name("refs/orch/backup/auth/S"),
                "refs/orch/backup/auth/S-worktree",
            ),
            (
                task_backup_name("auth", "S", "1.2"),
                "refs/orch/backup/auth/S-task-1.2",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
