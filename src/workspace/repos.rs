//! The repositories of a manifest with `[[repo]]` tables, as the workspace sees them: each
//! `path` a git repository of its own (its work dir's top, not a directory inside another), and
//! where each plan's repository is on disk.

use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::manifest::{Manifest, PlanEntry};

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

/// The work dir of the repository `plan` changes: its `[[repo]]`'s path (canonical), else
/// `home` (the manifest's repository, as [`super::repo_root`] gives it).
pub(crate) fn root_of(m: &Manifest, plan: &PlanEntry, home: &Path) -> PathBuf {
    m.repo_of(&plan.name).map_or_else(
        || home.to_path_buf(),
        |r| {
            r.abs_path
                .canonicalize()
                .unwrap_or_else(|_| r.abs_path.clone())
        },
    )
}

/// Every repository's work dir: the home repository's (`home`) first, then each `[[repo]]`'s.
pub(crate) fn all_roots(m: &Manifest, home: &Path) -> Vec<PathBuf> {
    std::iter::once(home.to_path_buf())
        .chain(m.repos.iter().map(|r| {
            r.abs_path
                .canonicalize()
                .unwrap_or_else(|_| r.abs_path.clone())
        }))
        .collect()
}
