//! The errors of the status module.

use std::path::PathBuf;

use crate::exit;

use super::model::TaskStatus;

/// Reading, locking, writing or changing a status file failed.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The status file exists but could not be read.
    #[error("cannot read status file `{path}`: {source}", path = path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The status file is not valid JSON, or not shaped like a status file.
    #[error(
        "status file `{path}` is corrupt at line {line} column {column}: {message}",
        path = path.display()
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The status file was written by a newer orch.
    #[error(
        "status file `{path}` has orchSchemaVersion {found}, newer than the {supported} this orch understands",
        path = path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// The directory of the status file could not be created.
    #[error("cannot create status directory `{path}`: {source}", path = path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The lock that stands for the status file (`status.json.lock`, taken in orch's private
    /// directory) could not be opened or locked.
    #[error("cannot lock status file through `{path}`: {source}", path = path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Writing the new status file (temp file, fsync, rename) failed; the old file is intact.
    #[error("cannot write status file `{path}`: {source}", path = path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Serializing the document failed (cannot happen for documents built by orch).
    #[error("cannot serialize status file `{path}`: {source}", path = path.display())]
    Serialize {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// Moving an existing status file aside before a rebuild failed.
    #[error(
        "cannot move status file `{path}` aside to `{backup}`: {source}",
        path = path.display(),
        backup = backup.display()
    )]
    Rebuild {
        path: PathBuf,
        backup: PathBuf,
        source: std::io::Error,
    },
    /// A transition named a task or verification step that the plan does not have.
    #[error("task `{id}` is not in plan `{path}`", path = path.display())]
    UnknownTask { id: String, path: PathBuf },
    /// The transition is not allowed from the task's current status (without `--force`).
    #[error("{message}")]
    Refused {
        id: String,
        status: TaskStatus,
        message: String,
    },
}

impl exit::Coded for StatusError {
    /// The documented exit code this error maps to.
    fn exit_code(&self) -> u8 {
        match self {
            Self::Corrupt { .. } | Self::UnsupportedVersion { .. } | Self::Read { .. } => {
                exit::STATE
            }
            Self::UnknownTask { .. } => exit::INVALID,
            Self::Refused { .. } => exit::REFUSED,
            Self::CreateDir { .. }
            | Self::Lock { .. }
            | Self::Write { .. }
            | Self::Serialize { .. }
            | Self::Rebuild { .. } => exit::FAILURE,
        }
    }

    /// The way out, where one is known.
    fn hint(&self) -> Option<String> {
        match self {
            Self::Corrupt { .. } => Some(
                "fix the file by hand, or rebuild it from the plan (the corrupt file is kept \
                 beside it as `status.json.corrupt-<timestamp>`)"
                    .to_string(),
            ),
            Self::UnsupportedVersion { .. } => Some("upgrade orch".to_string()),
            _ => None,
        }
    }
}
