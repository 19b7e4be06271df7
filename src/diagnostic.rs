//! Diagnostics shared by the plan parser and the manifest loader: a problem with a location.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// How bad a diagnostic is: errors make the input invalid, warnings are advice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Warning,
    Error,
}

/// One problem found in a plan file or a manifest, with the place it was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub(crate) severity: Severity,
    /// The file the problem is in, as the user named it (relative where possible).
    pub(crate) path: PathBuf,
    /// 1-based line number.
    pub(crate) line: usize,
    /// 1-based column, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) column: Option<usize>,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hint: Option<String>,
}

impl Diagnostic {
    pub(crate) fn error(path: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            path: path.into(),
            line,
            column: None,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn warning(
        path: impl Into<PathBuf>,
        line: usize,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(path, line, message)
        }
    }

    #[must_use]
    pub(crate) fn with_column(mut self, column: usize) -> Self {
        self.column = Some(column);
        self
    }

    #[must_use]
    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `path:line[:col]: error: message` followed by an indented `hint:` line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)?;
        if let Some(col) = self.column {
            write!(f, ":{col}")?;
        }
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {sev}: {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Converts a byte offset into a 1-based (line, column) pair; the column counts characters.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Paths for a message: the first `shown` in backticks, comma-separated, then "and N more".
pub(crate) fn path_list(paths: &[String], shown: usize) -> String {
    let mut s = paths
        .iter()
        .take(shown)
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > shown {
        s.push_str(&format!(" and {} more", paths.len() - shown));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        assert_eq!(line_col(text, 7), (2, 4));
        assert_eq!(line_col(text, 100), (3, 2));
    }

    #[test]
    fn display_has_location_and_hint() {
        let d = Diagnostic::error("plans.toml", 3, "unknown key `foo`")
            .with_column(1)
            .with_hint("remove it");
        assert_eq!(
            d.to_string(),
            "plans.toml:3:1: error: unknown key `foo`\n  hint: remove it"
        );
    }
}
