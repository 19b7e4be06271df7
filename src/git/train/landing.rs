//! The backup refs of a landing across repositories: before any target of a group moves, each
//! repository gets `refs/orch/landing/<target>` at its target's tip, so that a landing stopped
//! half way (a target that would not move, a kill -9) is put back from them by the next command.

use std::path::Path;

use super::MergeError;
use crate::git;

/// The backup ref of `target`.
pub(crate) fn backup_ref(target: &str) -> String {
    format!("refs/orch/landing/{target}")
}

/// Points the backup ref of `target` in the repository at `root` at `old`.
pub(crate) fn set_backup(root: &Path, target: &str, old: &str) -> Result<(), MergeError> {
    let repo = git::open(root)?;
    let refname = backup_ref(target);
    let oid = git2::Oid::from_str(old).map_err(|source| MergeError::UpdateRef {
        refname: refname.clone(),
        source,
    })?;
    git::retry_locked(|| repo.reference(&refname, oid, true, "orch: before a landing"))
        .map(|_| ())
        .map_err(|source| MergeError::UpdateRef { refname, source })
}

/// The commit the backup ref of `target` holds, if there is one.
pub(crate) fn backup_of(root: &Path, target: &str) -> Result<Option<String>, MergeError> {
    let repo = git::open(root)?;
    Ok(repo
        .find_reference(&backup_ref(target))
        .ok()
        .and_then(|r| r.target())
        .map(|o| o.to_string()))
}

/// Removes the backup ref of `target` (nothing when there is none).
pub(crate) fn drop_backup(root: &Path, target: &str) -> Result<(), MergeError> {
    let repo = git::open(root)?;
    let refname = backup_ref(target);
    match repo.find_reference(&refname) {
        Ok(mut r) => r
            .delete()
            .map_err(|source| MergeError::UpdateRef { refname, source }),
        Err(_) => Ok(()),
    }
}
