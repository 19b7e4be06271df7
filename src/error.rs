//! Exit codes (stable: scripts rely on them) and the top-level error type that maps onto them.

use std::fmt;

/// The process exit codes of `orch`. Documented in the README; never renumber one.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// An operation failed for a reason outside the input (I/O error, a crashed child, …).
    pub const FAILURE: u8 = 1;
    /// Invalid input: bad command line, manifest or plan errors, unknown plan or task.
    pub const INVALID: u8 = 2;
    /// A status file is corrupt or unreadable; nothing was changed.
    pub const STATE: u8 = 3;
    /// Refused: the request would clobber or run out of order: a task transition that is not
    /// allowed, a branch or directory orch did not create, uncommitted changes that matter, a
    /// supervisor already running in the repository.
    pub const REFUSED: u8 = 4;
    /// `orch up` ended with a plan not completed: a task failed, a plan is blocked, or a plan
    /// waits on one that is not part of the run. `orch conflicts`: some pair of branches would
    /// conflict. `orch clean`: some plan was kept (unmerged work or a dirty worktree).
    pub const INCOMPLETE: u8 = 5;
    /// `orch up`: an agent cannot work until a person fixes something (its program is missing,
    /// its client rejected orch's flags, or it is not logged in); the fix is printed.
    pub const AGENT: u8 = 6;
    /// Stopped by Ctrl-C or SIGTERM; the next `orch up` goes on from where it stopped.
    pub const INTERRUPTED: u8 = 130;
}

/// An error that reached the command line, with the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub error: anyhow::Error,
    pub hint: Option<String>,
}

impl CliError {
    pub fn new(code: u8, error: impl Into<anyhow::Error>) -> Self {
        Self {
            code,
            error: error.into(),
            hint: None,
        }
    }

    pub fn invalid(error: impl Into<anyhow::Error>) -> Self {
        Self::new(exit::INVALID, error)
    }

    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)
    }
}

/// A module error that knows its documented exit code and, where the fix is known, a hint.
pub trait Coded: std::error::Error + Send + Sync + 'static {
    fn exit_code(&self) -> u8;
    fn hint(&self) -> Option<String>;
}

impl CliError {
    /// The error with the exit code and hint it carries.
    pub fn coded(e: impl Coded) -> Self {
        let code = e.exit_code();
        let hint = e.hint();
        let err = Self::new(code, e);
        match hint {
            Some(h) => err.with_hint(h),
            None => err,
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        Self::new(exit::FAILURE, error)
    }
}

pub type CliResult<T> = Result<T, CliError>;

macro_rules! coded {
    ($($t:ty),*) => {$(
        impl Coded for $t {
            fn exit_code(&self) -> u8 {
                <$t>::exit_code(self)
            }
            fn hint(&self) -> Option<String> {
                <$t>::hint(self)
            }
        }
    )*};
}

coded!(
    crate::git::GitError,
    crate::merge::MergeError,
    crate::status::StatusError
);
