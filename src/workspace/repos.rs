//! The repositories of a manifest with `[[repo]]` tables, as the workspace sees them: each
//! `path` a git repository of its own (its work dir's top, not a directory inside another), and
//! where each plan's repository is on disk.

use std::path::Path;

use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;

/// A `[[repo]]` whose `path` is not the top of a git repository's work tree: an error at its
/// `path`.
pub(crate) fn diagnostics(m: &Manifest) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for repo in &m.repos {
        let found = crate::git::work_dir(&repo.abs_path);
        let top = |dir: &Path| {
            let real = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
            real(dir) == real(&repo.abs_path)
        };
        let why = match found {
            Ok(Some(dir)) if top(&dir) => continue,
            Ok(Some(dir)) => format!("is inside the repository at `{}`", dir.display()),
            Ok(None) => "is a bare repository".to_string(),
            Err(_) => "is not a git repository".to_string(),
        };
        out.push(
            Diagnostic::error(
                &m.path,
                repo.line,
                format!(
                    "`path` `{}` of repository `{}` {why}",
                    repo.path.display(),
                    repo.name
                ),
            )
            .with_column(repo.column)
            .with_hint("give the top directory of a local clone with a work tree (`git clone URL ../NAME`)"),
        );
    }
    out
}
