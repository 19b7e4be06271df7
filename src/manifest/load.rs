//! Finding and loading `plans.toml`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use toml::de::DeTable;

use super::model::Manifest;
use super::raw::Reporter;
use super::read::read;
use super::targets::check_cycles;
use super::validate::validate;
use crate::diagnostic::{Diagnostic, line_col};
use crate::untrusted::read;

/// The manifest's file name.
pub(crate) const MANIFEST_NAME: &str = "plans.toml";

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read manifest `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Something orch does not read is at the manifest's place: a symbolic link, a FIFO or
    /// another special file, a file larger than [`read::MANIFEST`]. Invalid input (exit 2).
    #[error("manifest `{}` not read: {source}", path.display())]
    Refused {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", invalid_message(path, diagnostics))]
    Invalid {
        path: PathBuf,
        /// Every problem found, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

impl ManifestError {
    /// The problems found, empty for a read error.
    pub(crate) fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Self::Read { .. } | Self::Refused { .. } => &[],
            Self::Invalid { diagnostics, .. } => diagnostics,
        }
    }
}

fn invalid_message(path: &Path, diagnostics: &[Diagnostic]) -> String {
    let n = diagnostics.len();
    let mut s = format!(
        "invalid manifest `{}` ({n} error{})",
        path.display(),
        if n == 1 { "" } else { "s" }
    );
    for d in diagnostics {
        let _ = write!(s, "\n{d}");
    }
    s
}

/// Walks up from `start` looking for `plans.toml`, like cargo does for `Cargo.toml`. Anything
/// there but a directory is the manifest (a link or a FIFO too, which [`load`] then refuses
/// by name): the walk never goes past it to a manifest further up.
pub(crate) fn find_manifest(start: &Path) -> Option<PathBuf> {
    let start = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
    start
        .ancestors()
        .map(|dir| dir.join(MANIFEST_NAME))
        .find(|candidate| std::fs::symlink_metadata(candidate).is_ok_and(|m| !m.is_dir()))
}

/// Reads and validates the manifest at `path`. Every problem found is reported: syntax errors
/// and a value of the wrong type (alone, since nothing else can be trusted then; serde stops
/// there), unknown keys, bad values, missing
/// or escaping plan files, bad names, unknown agents and plans, and dependency cycles between
/// plans ([`check_cycles`]). Dependency targets inside plan files are checked by
/// [`check_targets`](super::check_targets) once the plans are parsed.
pub(crate) fn load(path: &Path) -> Result<Manifest, ManifestError> {
    // A symlink, a FIFO or a huge file at the manifest's place (where a landed branch may
    // have put it) is refused by name, never followed, waited on or read whole.
    let bytes = read::whole(path, read::MANIFEST).map_err(|e| match e {
        read::ReadError::Io { source, .. } => ManifestError::Read {
            path: path.to_path_buf(),
            source,
        },
        read::ReadError::Missing { .. } => ManifestError::Read {
            path: path.to_path_buf(),
            source: std::io::Error::from_raw_os_error(nix::libc::ENOENT),
        },
        e => ManifestError::Refused {
            path: path.to_path_buf(),
            source: e.into(),
        },
    })?;
    // Not UTF-8 is invalid input (exit 2) with its place, like a plan file, not a read failure.
    let text = String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = good.len() - good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
        ManifestError::Invalid {
            path: path.to_path_buf(),
            diagnostics: vec![
                Diagnostic::error(path, line, "the manifest is not valid UTF-8")
                    .with_column(column),
            ],
        }
    })?;
    parse_str(path, &text)
}

/// Validates manifest `text` as if read from `path` (plan files are looked up relative to
/// `path`'s directory).
pub fn parse_str(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
    let invalid = |diagnostics: Vec<Diagnostic>| ManifestError::Invalid {
        path: path.to_path_buf(),
        diagnostics,
    };
    let (doc, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        let diagnostics = errors
            .iter()
            .map(|e| {
                let (line, col) = line_col(text, e.span().map_or(0, |s| s.start));
                Diagnostic::error(path, line, e.message().trim_end().to_string()).with_column(col)
            })
            .collect();
        return Err(invalid(sort(diagnostics)));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let root = std::path::absolute(&parent).unwrap_or(parent);
    let mut reporter = Reporter::new(path, text);
    let Some(raw) = read(doc, &mut reporter) else {
        return Err(invalid(reporter.diagnostics));
    };
    let mut manifest = validate(raw, &root, &mut reporter);
    let mut diagnostics = reporter.diagnostics;
    diagnostics.extend(check_cycles(&manifest));
    if !diagnostics.iter().any(Diagnostic::is_error) {
        manifest.warnings = sort(diagnostics);
        Ok(manifest)
    } else {
        Err(invalid(sort(diagnostics)))
    }
}

fn sort(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diagnostics.sort_by_key(|d| (d.line, d.column));
    diagnostics
}
