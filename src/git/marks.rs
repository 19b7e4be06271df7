//! orch's marks on the branches it creates, in the repository config:
//! `branch.<branch>.orchPlan = <plan>` and `branch.<branch>.orchBase = <base oid>`.

use git2::{ConfigLevel, ErrorCode, Repository};

use super::GitError;
use super::repo::retry_locked;

/// The config key (under `branch.<branch>.`) naming the plan orch created the branch for.
pub(crate) const MARK_PLAN: &str = "orchPlan";
/// The config key (under `branch.<branch>.`) holding the commit the branch was created at.
pub(crate) const MARK_BASE: &str = "orchBase";

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
pub(super) fn mark(
    repo: &Repository,
    branch: &str,
    plan: &str,
    base: &str,
) -> Result<(), GitError> {
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
pub(super) fn unmark(repo: &Repository, branch: &str) {
    if let Ok(mut config) = local_config(repo) {
        for key in [MARK_PLAN, MARK_BASE] {
            let _ = retry_locked(|| config.remove(&mark_key(branch, key)));
        }
    }
}
