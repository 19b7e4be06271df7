//! The process exit codes of `orch` (stable: scripts rely on them; documented in the README and
//! docs/src/exit-codes.md, never renumber one), and [`Coded`]: an error of a lower module that
//! knows its code. A leaf: the modules that fail with a code import this, and `crate::error`
//! turns a [`Coded`] error into the command line's error.

/// Success.
pub(crate) const OK: u8 = 0;
/// An operation failed for a reason outside the input (I/O error, a crashed child, …).
pub(crate) const FAILURE: u8 = 1;
/// Invalid input: bad command line, manifest or plan errors, unknown plan or task.
pub(crate) const INVALID: u8 = 2;
/// A status file is corrupt or unreadable; nothing was changed.
pub(crate) const STATE: u8 = 3;
/// Refused: the request would clobber or run out of order: a task transition that is not
/// allowed, a branch or directory orch did not create, uncommitted changes that matter, a
/// supervisor already running in the repository.
pub(crate) const REFUSED: u8 = 4;
/// `orch up` ended with a plan not completed: a task failed, a plan is blocked, or a plan
/// waits on one that is not part of the run. `orch conflicts`: some pair of branches would
/// conflict. `orch clean`: some plan was kept (unmerged work or a dirty worktree).
pub(crate) const INCOMPLETE: u8 = 5;
/// `orch up`: an agent cannot work until a person fixes something (its program is missing,
/// its client rejected orch's flags, or it is not logged in); the fix is printed.
pub(crate) const AGENT: u8 = 6;
/// Stopped by Ctrl-C or SIGTERM; the next `orch up` goes on from where it stopped.
pub(crate) const INTERRUPTED: u8 = 130;

/// A module error that knows its documented exit code and, where the fix is known, a hint.
pub(crate) trait Coded: std::error::Error + Send + Sync + 'static {
    fn exit_code(&self) -> u8;
    fn hint(&self) -> Option<String>;
}
