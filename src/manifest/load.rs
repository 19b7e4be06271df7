//! Finding and loading `plans.toml`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use toml::de::DeTable;

use super::model::Manifest;
use super::read::read;
use super::spans::Reporter;
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

/// toml's "duplicate key" at `span` in words that say which key and where it was set first:
/// "duplicate key `max_agents` (first set at line 2)", "duplicate table `[defaults]` (first
/// at line 1)". `None` when the key cannot be read at the span.
fn duplicate_key(text: &str, span: std::ops::Range<usize>) -> Option<String> {
    let key = text.get(span.clone())?.trim().trim_matches('"');
    if key.is_empty() {
        return None;
    }
    let line_no = text.get(..span.start)?.matches('\n').count();
    let lines: Vec<&str> = text.lines().collect();
    let this = lines.get(line_no)?.trim_start();
    // A table header `[name]` (not `[[name]]`, which may repeat).
    let header = |l: &str| -> Option<String> {
        let l = l.trim();
        let inner = l.strip_prefix('[')?.strip_suffix(']')?;
        (!inner.starts_with('[')).then(|| inner.trim().to_string())
    };
    if let Some(name) = header(this) {
        let first = lines[..line_no]
            .iter()
            .position(|l| header(l).as_deref() == Some(name.as_str()))?;
        return Some(format!(
            "duplicate table `[{name}]` (first at line {})",
            first + 1
        ));
    }
    // A key: first set in the same table, after its header.
    let start = lines[..line_no]
        .iter()
        .rposition(|l| l.trim_start().starts_with('['))
        .map_or(0, |i| i + 1);
    let set_here = |l: &str| {
        l.split_once('=')
            .is_some_and(|(k, _)| k.trim().trim_matches('"') == key)
    };
    let first = (start..line_no).find(|&i| set_here(lines[i]));
    Some(match first {
        Some(i) => format!("duplicate key `{key}` (first set at line {})", i + 1),
        None => format!("duplicate key `{key}`"),
    })
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
                let span = e.span();
                let (line, col) = line_col(text, span.as_ref().map_or(0, |s| s.start));
                let mut message = e.message().trim_end().to_string();
                if message == "duplicate key"
                    && let Some(more) = span.and_then(|s| duplicate_key(text, s))
                {
                    message = more;
                }
                Diagnostic::error(path, line, message).with_column(col)
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
