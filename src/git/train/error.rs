//! The errors of the merge module.

use std::path::PathBuf;

use crate::exit;
use crate::git::GitError;

/// A merge step could not be carried out (as opposed to a plan that conflicts or fails its
/// verification, which are outcomes, not errors).
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Opening the repository (or another git-module operation) failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The target branch does not exist.
    #[error("target branch `{target}` does not exist")]
    TargetMissing { target: String },
    /// The plan branch does not exist.
    #[error("branch `{branch}` does not exist")]
    BranchMissing { branch: String },
    /// Ctrl-C or SIGTERM stopped it (an integration test's verify command was stopped).
    #[error("interrupted: {what}")]
    Interrupted { what: String },
    /// Reading a ref, commit or tree failed.
    #[error("cannot read {what}: {source}")]
    Read { what: String, source: git2::Error },
    /// Building the merge in memory failed (not a conflict: an error of libgit2).
    #[error("cannot merge `{branch}` into `{target}` in memory: {source}")]
    Build {
        branch: String,
        target: String,
        source: git2::Error,
    },
    /// Writing the merge commit object failed.
    #[error("cannot write the merge commit of `{branch}`: {source}")]
    WriteCommit { branch: String, source: git2::Error },
    /// The staging worktree for the verify command could not be made.
    #[error("cannot create the staging worktree `{path}`: {reason}", path = path.display())]
    Staging { path: PathBuf, reason: String },
    /// The work tree that has the target checked out has uncommitted changes.
    #[error(
        "`{path}` has `{target}` checked out and uncommitted changes: {files}",
        path = path.display(),
        files = crate::diagnostic::path_list(files, 8)
    )]
    Dirty {
        path: PathBuf,
        target: String,
        files: Vec<String>,
    },
    /// The landing would write at or below orch's own directories (its state, worktrees, logs)
    /// or put a file or a link at a directory above one: never done, nothing written.
    #[error(
        "the landing on `{target}` would write inside orch's own directories (its state, worktrees and logs) or over the files it copies into each worktree (`copy`, `warm`, `.worktreeinclude`), which orch never does: {files}; nothing was written",
        files = crate::diagnostic::path_list(files, 8)
    )]
    OwnDirectories { target: String, files: Vec<String> },
    /// Untracked files in the work tree that has the target checked out would be overwritten.
    #[error(
        "`{path}` has `{target}` checked out, and the merge would overwrite untracked files: {files}",
        path = path.display(),
        files = crate::diagnostic::path_list(files, 8)
    )]
    UntrackedInTheWay {
        path: PathBuf,
        target: String,
        files: Vec<String>,
    },
    /// Checking the merge result out in the work tree that has the target checked out failed.
    #[error("cannot check out the merge result in `{path}`: {source}", path = path.display())]
    Checkout { path: PathBuf, source: git2::Error },
    /// Moving the target ref failed (other than because someone else moved it).
    #[error("cannot update `{refname}`: {source}")]
    UpdateRef {
        refname: String,
        source: git2::Error,
    },
    /// The archive tag could not be created.
    #[error("cannot create the archive tag `{tag}`: {reason}")]
    Tag { tag: String, reason: String },
}

impl exit::Coded for MergeError {
    /// The documented exit code this error maps to.
    fn exit_code(&self) -> u8 {
        match self {
            Self::Git(e) => e.exit_code(),
            Self::TargetMissing { .. } => exit::INVALID,
            Self::Interrupted { .. } => exit::INTERRUPTED,
            Self::Dirty { .. } | Self::UntrackedInTheWay { .. } | Self::OwnDirectories { .. } => {
                exit::REFUSED
            }
            _ => exit::FAILURE,
        }
    }

    /// How the user gets out of it, where that is known.
    fn hint(&self) -> Option<String> {
        match self {
            Self::Git(e) => e.hint(),
            Self::TargetMissing { target } => Some(format!(
                "create branch `{target}`, or set `target` in plans.toml to an existing branch"
            )),
            Self::Dirty { path, .. } => Some(format!(
                "commit or stash the changes first (`git -C {} status` lists them); nothing was merged",
                path.display()
            )),
            Self::UntrackedInTheWay { path, .. } => Some(format!(
                "move those files away or commit them first (in `{}`); nothing was merged",
                path.display()
            )),
            Self::Checkout { .. } => Some(
                "a file in the work tree changed while orch was merging; commit or stash it and run `orch merge` again"
                    .into(),
            ),
            Self::UpdateRef { source, .. } if source.code() == git2::ErrorCode::Locked => Some(
                "another git process holds a `.lock` file in the repository; if no git command is running, remove the stale `.lock` file"
                    .into(),
            ),
            Self::Staging { .. } => Some(
                "`git worktree prune` removes stale worktree entries; then run it again".into(),
            ),
            _ => None,
        }
    }
}
