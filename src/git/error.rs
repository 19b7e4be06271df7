//! The errors of the git module.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use crate::exit;

/// A git operation failed or was refused.
///
/// Variants are named after the operation that failed; those that wrap a libgit2 error keep it as
/// `source` (its [`git2::Error::code`] tells, for example, a held `.lock` file apart).
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The path is not a git repository (nor a worktree of one).
    #[error("`{path}` is not a git repository", path = path.display())]
    NotARepository { path: PathBuf },
    /// The repository exists but could not be opened.
    #[error("cannot open repository `{path}`: {source}", path = path.display())]
    Open { path: PathBuf, source: git2::Error },
    /// A plan name or branch name cannot be used.
    #[error("{what} `{name}` cannot be used: {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: String,
    },
    /// The branch plans are created from (and merged into) does not exist.
    #[error("target branch `{target}` does not exist")]
    TargetMissing { target: String },
    /// The plan branch exists but orch did not create it for this plan.
    #[error("branch `{branch}` exists and was not created by orch for plan `{plan}`")]
    ForeignBranch { branch: String, plan: String },
    /// Something that is not the plan's worktree is in the way at the worktree path.
    #[error("worktree path `{path}` {reason}", path = path.display())]
    ForeignPath { path: PathBuf, reason: String },
    /// The plan branch is checked out in another worktree (or the main one).
    #[error("branch `{branch}` is checked out at `{at}`", at = at.display())]
    BranchCheckedOut { branch: String, at: PathBuf },
    /// A worktree of another branch already uses the plan's name.
    #[error(
        "a worktree named `{name}` already exists at `{at}` with another branch",
        at = at.display()
    )]
    WorktreeNameTaken { name: String, at: PathBuf },
    /// The worktree has uncommitted changes where it must be clean.
    #[error(
        "worktree `{path}` has uncommitted changes: {files}",
        path = path.display(),
        files = crate::diagnostic::path_list(files, 5)
    )]
    Dirty { path: PathBuf, files: Vec<String> },
    /// The worktree has another branch (or a detached HEAD) checked out than the one named.
    #[error(
        "worktree `{path}` has `{found}` checked out, not branch `{expected}`",
        path = path.display()
    )]
    WrongBranch {
        path: PathBuf,
        expected: String,
        found: String,
    },
    /// A path to copy into a new worktree leaves the repository.
    #[error("cannot copy `{path}` into the worktree: {reason}", path = path.display())]
    InvalidCopyPath { path: PathBuf, reason: String },
    /// A commit id is not a hex object id.
    #[error("`{oid}` is not a commit id")]
    InvalidOid { oid: String },
    /// A branch, ref or commit named on the command line does not exist.
    #[error("no branch, ref or commit `{rev}`")]
    RevNotFound { rev: String },
    /// A commit could not be found or read.
    #[error("cannot read commit `{oid}`: {source}")]
    ReadCommit { oid: String, source: git2::Error },
    /// Looking up a branch failed (other than by its absence).
    #[error("cannot read branch `{branch}`: {source}")]
    ReadBranch { branch: String, source: git2::Error },
    /// The HEAD of a worktree could not be read.
    #[error("cannot read `HEAD` of `{path}`: {source}", path = path.display())]
    ReadHead { path: PathBuf, source: git2::Error },
    /// Creating the plan branch failed.
    #[error("cannot create branch `{branch}`: {source}")]
    CreateBranch { branch: String, source: git2::Error },
    /// Reading or writing the repository configuration failed.
    #[error("cannot access repository config `{key}`: {source}")]
    Config { key: String, source: git2::Error },
    /// Listing the linked worktrees (`.git/worktrees`) failed.
    #[error("cannot read worktree entries in `{path}`: {source}", path = path.display())]
    ReadWorktrees {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Removing a stale worktree entry failed.
    #[error("cannot remove stale worktree entry `{path}`: {source}", path = path.display())]
    Prune {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Putting back a worktree's admin file (`HEAD`, `gitdir`, `.git`, ...) failed.
    #[error("cannot restore the worktree's git file `{path}`: {source}", path = path.display())]
    RestoreAdmin {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Creating a directory failed.
    #[error("cannot create directory `{path}`: {source}", path = path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `git worktree add` (libgit2) failed.
    #[error("cannot add worktree `{name}` at `{path}`: {source}", path = path.display())]
    AddWorktree {
        name: String,
        path: PathBuf,
        source: git2::Error,
    },
    /// Deleting a branch failed.
    #[error("cannot delete branch `{branch}`: {source}")]
    DeleteBranch { branch: String, source: git2::Error },
    /// Reading `.worktreeinclude` failed.
    #[error("cannot read `{path}`: {source}", path = path.display())]
    ReadInclude {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Copying a file into a new worktree failed.
    #[error(
        "cannot copy `{from}` to `{to}`: {source}",
        from = from.display(),
        to = to.display()
    )]
    Copy {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
    /// Reading the state of a work tree (`git status`) failed.
    #[error("cannot read the status of `{path}`: {source}", path = path.display())]
    Status { path: PathBuf, source: git2::Error },
    /// Staging the changes of a work tree (`git add -A`) failed.
    #[error("cannot stage the changes in `{path}`: {source}", path = path.display())]
    Stage { path: PathBuf, source: git2::Error },
    /// Writing a commit failed.
    #[error("cannot commit in `{path}`: {source}", path = path.display())]
    Commit { path: PathBuf, source: git2::Error },
    /// Moving or creating a ref failed.
    #[error("cannot update ref `{refname}`: {source}")]
    UpdateRef {
        refname: String,
        source: git2::Error,
    },
    /// The branch moved while orch was updating it (compare-and-swap failed).
    #[error("branch `{branch}` moved away from `{expected}` while orch was updating it")]
    BranchMoved { branch: String, expected: String },
    /// Checking out a tree into a work tree failed.
    #[error("cannot check out into `{path}`: {source}", path = path.display())]
    Checkout { path: PathBuf, source: git2::Error },
    /// Merging two commits in memory failed.
    #[error("cannot merge `{upstream}` into `{branch}`: {source}")]
    Merge {
        branch: String,
        upstream: String,
        source: git2::Error,
    },
    /// Comparing trees with the work dir failed.
    #[error("cannot compare `{path}` with `{target}`: {source}", path = path.display())]
    Diff {
        path: PathBuf,
        target: String,
        source: git2::Error,
    },
    /// A run of the git CLI in a work tree failed.
    #[error("in `{path}`: {source}", path = path.display())]
    Cli { path: PathBuf, source: CliFailure },
    /// Making or resetting a sparse worktree through the git CLI failed.
    #[error("sparse checkout in `{path}`: {reason}", path = path.display())]
    Sparse { path: PathBuf, reason: String },
    /// A work tree holds a git repository of its own below its root (a `.git` directory, file
    /// or link, or a git directory under another name), or its changes add a gitlink, that the main checkout does not declare as a
    /// submodule: git would read that repository's configuration (and run its programs), so
    /// nothing is committed.
    #[error(
        "nested git repository in `{path}`: {found} (a `.git` or a git directory under another name below the worktree's root, or a new gitlink, that is not a submodule the main checkout declares; or a FIFO, socket or device where git reads a file of its own, `.gitignore`, `.gitattributes`, `.gitmodules` or `.mailmap`, which would block it; nothing is committed)",
        path = path.display(),
        found = crate::diagnostic::path_list(found, 5)
    )]
    Nested { path: PathBuf, found: Vec<String> },
    /// The commit would change orch's own directories (its state, worktrees and logs) or put a
    /// file or a link at a directory above one: nothing is committed.
    #[error(
        "changed orch's own directories or the files it copies into each worktree in `{path}`: {found} (orch never commits a change there; nothing is committed)",
        path = path.display(),
        found = crate::diagnostic::path_list(found, 5)
    )]
    OwnDirectories { path: PathBuf, found: Vec<String> },
    /// What was staged brings a blob over the plan's `max_file_size` (one the agent staged
    /// itself, in the index, where no file of the work tree is): nothing is committed.
    #[error("cannot commit the work in `{path}`: {found}; nothing is committed", path = path.display())]
    TooLarge { path: PathBuf, found: String },
    /// Reading or writing `.git/info/exclude` failed.
    #[error("cannot update `{path}`: {source}", path = path.display())]
    Exclude {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl GitError {
    /// For `map_err`: merging `upstream` (a branch or commit) into `branch` failed.
    pub(super) fn merging<'a>(
        branch: impl Display + Copy + 'a,
        upstream: impl Display + Copy + 'a,
    ) -> impl Fn(git2::Error) -> Self + Copy + 'a {
        move |source| Self::Merge {
            branch: branch.to_string(),
            upstream: upstream.to_string(),
            source,
        }
    }

    /// For `map_err`: staging the changes of the work tree `path` failed.
    pub(super) fn staging(path: &Path) -> impl Fn(git2::Error) -> Self + Copy + '_ {
        move |source| Self::Stage {
            path: path.to_path_buf(),
            source,
        }
    }

    /// For `map_err`: writing a commit in the work tree `path` failed.
    pub(super) fn committing(path: &Path) -> impl Fn(git2::Error) -> Self + Copy + '_ {
        move |source| Self::Commit {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl exit::Coded for GitError {
    /// The documented exit code this error maps to.
    fn exit_code(&self) -> u8 {
        match self {
            Self::ForeignBranch { .. }
            | Self::ForeignPath { .. }
            | Self::BranchCheckedOut { .. }
            | Self::WorktreeNameTaken { .. }
            | Self::Dirty { .. }
            | Self::WrongBranch { .. } => exit::REFUSED,
            Self::NotARepository { .. }
            | Self::TargetMissing { .. }
            | Self::InvalidName { .. }
            | Self::InvalidCopyPath { .. }
            | Self::InvalidOid { .. }
            | Self::RevNotFound { .. } => exit::INVALID,
            _ => exit::FAILURE,
        }
    }

    /// How the user gets out of it, where that is known.
    fn hint(&self) -> Option<String> {
        match self {
            Self::NotARepository { .. } => {
                Some("run orch inside a git repository (create one with `git init`)".into())
            }
            Self::TargetMissing { target } => Some(format!(
                "create branch `{target}` (an initial commit is enough), or set `target` in \
                 plans.toml to an existing branch"
            )),
            Self::ForeignBranch { branch, plan } => Some(format!(
                "orch never touches a branch it did not create: rename it \
                 (`git branch -m {branch} <new-name>`) or delete it (`git branch -D {branch}`), or \
                 set `branch = \"...\"` for plan `{plan}` in plans.toml"
            )),
            Self::ForeignPath { path, .. } => Some(format!(
                "move or remove `{}`, or set another `worktree_root` in plans.toml",
                path.display()
            )),
            Self::BranchCheckedOut { branch, at } => Some(format!(
                "switch `{}` to another branch (`git -C {} switch <other>`), or remove that \
                 worktree (`git worktree remove {}`); a branch can be checked out in one worktree \
                 only, and orch needs `{branch}` in its own",
                at.display(),
                at.display(),
                at.display()
            )),
            Self::WorktreeNameTaken { at, .. } => Some(format!(
                "remove that worktree (`git worktree remove {}`), or run `git worktree prune` if \
                 its directory is gone",
                at.display()
            )),
            Self::Dirty { path, .. } => Some(format!(
                "commit or stash the changes first (`git -C {} status` lists them)",
                path.display()
            )),
            Self::WrongBranch { path, expected, .. } => Some(format!(
                "switch it back (`git -C {} switch {expected}`)",
                path.display()
            )),
            Self::InvalidCopyPath { .. } => Some(
                "list only paths inside the repository, relative to its root, without `..`".into(),
            ),
            Self::Nested { .. } => Some(
                "remove the nested repository's `.git` (its files are committed as ordinary \
                 files; of a git directory under another name, its `HEAD`), or declare it as a \
                 submodule in the main checkout's `.gitmodules`"
                    .into(),
            ),
            Self::BranchMoved { .. } => {
                Some("something else updated the branch at the same time; run it again".into())
            }
            Self::AddWorktree { .. } => Some(
                "`git worktree prune` removes stale worktree entries; then run it again".into(),
            ),
            Self::Commit { source, .. }
            | Self::UpdateRef { source, .. }
            | Self::Stage { source, .. }
                if source.code() == git2::ErrorCode::Locked =>
            {
                Some(
                    "another git process holds a `.lock` file in the repository; if no git \
                     command is running, remove the stale `.lock` file"
                        .into(),
                )
            }
            _ => None,
        }
    }
}

/// A run of the git CLI that failed: which command, how it ended, what git said.
#[derive(Debug, thiserror::Error)]
pub enum CliFailure {
    /// The work tree's git directory is not where orch's records say ([`super::locate`]).
    #[error("{0}")]
    Locate(String),
    /// git could not be started.
    #[error("cannot run `git {args}`: {source}")]
    Spawn {
        args: String,
        source: std::io::Error,
    },
    /// git was killed because the run is stopping ([`super::cli::stop_long_runs`]).
    #[error("`git {args}` was stopped: orch is stopping")]
    Stopped { args: String },
    /// git ran and failed.
    #[error("`git {args}` failed ({status}): {stderr}")]
    Failed {
        args: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
}
