//! `warm` directories: which of them git tracks (a warm directory must be ignored build output,
//! never part of the repository's content).

use std::path::{Path, PathBuf};

use super::GitError;
use super::worktree::open_main;

/// The entries of `paths` (relative to the repository root) that the main repository's index
/// tracks: the path itself is a tracked file, or a tracked file lies under it.
pub(crate) fn tracked_among(repo_root: &Path, paths: &[PathBuf]) -> Result<Vec<PathBuf>, GitError> {
    let repo = open_main(repo_root)?;
    let index = repo.index().map_err(|source| GitError::Open {
        path: repo_root.to_path_buf(),
        source,
    })?;
    Ok(paths
        .iter()
        .filter(|p| {
            let rel = p.to_string_lossy().replace('\\', "/");
            let rel = rel.trim_end_matches('/');
            index.get_path(Path::new(rel), 0).is_some()
                || index.find_prefix(format!("{rel}/")).is_ok()
        })
        .cloned()
        .collect())
}
