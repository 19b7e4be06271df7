//! Loading tests: real manifests and plan files in temporary directories.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::diagnostic::Diagnostic;

mod errors;
mod executor;
mod hosts;
mod load;
mod services;
mod supervision;
mod targets;

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    /// A temp dir holding `docs/a.md`, `docs/b.md`, `docs/c.md`.
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Self { dir };
        for f in ["docs/a.md", "docs/b.md", "docs/c.md"] {
            repo.write(f, "# plan\n");
        }
        repo
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.root().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }

    fn load(&self, manifest: &str) -> Result<Manifest, ManifestError> {
        let path = self.write("plans.toml", manifest);
        load(&path)
    }

    fn errors(&self, manifest: &str) -> Vec<Diagnostic> {
        match self.load(manifest) {
            Ok(_) => panic!("manifest should be invalid:\n{manifest}"),
            Err(ManifestError::Invalid { path, diagnostics }) => {
                assert_eq!(path, self.root().join("plans.toml"));
                for d in &diagnostics {
                    assert_eq!(d.path, path);
                    assert!(d.is_error());
                }
                diagnostics
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    /// Asserts exactly one error, at `line:col`, whose message contains `fragment`.
    fn one_error(&self, manifest: &str, line: usize, col: usize, fragment: &str) -> Diagnostic {
        let errors = self.errors(manifest);
        assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
        let d = errors.into_iter().next().expect("one");
        assert_eq!((d.line, d.column), (line, Some(col)), "{d}");
        assert!(d.message.contains(fragment), "`{fragment}` not in: {d}");
        d
    }
}
