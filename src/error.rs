//! The top-level error type, with the exit code (`crate::exit`) it maps to. Errors of the lower
//! modules become one through [`Coded`] ([`CliError::coded`]).

use std::fmt;

pub(crate) use crate::exit::{self, Coded};

/// An error that reached the command line, with the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    pub(crate) code: u8,
    pub(crate) error: anyhow::Error,
    pub(crate) hint: Option<String>,
}

impl CliError {
    pub(crate) fn new(code: u8, error: impl Into<anyhow::Error>) -> Self {
        Self {
            code,
            error: error.into(),
            hint: None,
        }
    }

    pub(crate) fn invalid(error: impl Into<anyhow::Error>) -> Self {
        Self::new(exit::INVALID, error)
    }

    /// The error with the exit code and hint it carries.
    pub(crate) fn coded(e: impl Coded) -> Self {
        let (code, hint) = (e.exit_code(), e.hint());
        Self {
            code,
            hint,
            error: e.into(),
        }
    }

    #[must_use]
    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)
    }
}

impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        Self::new(exit::FAILURE, error)
    }
}

pub(crate) type CliResult<T> = Result<T, CliError>;
