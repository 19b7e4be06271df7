//! What `orch merge` checks and holds before anything moves: one run per repository (a lock),
//! a verify command that exists, a target work tree that the run cannot clobber.

use std::path::Path;

use anyhow::anyhow;

use super::Verify;
use crate::error::{CliError, CliResult, exit};
use crate::manifest::Manifest;
use crate::process::resolve_program;

/// The verify command, checked: its program must exist (exit 2 otherwise); confined as
/// [`super::confine::decide`] says (exit 6 when it must be and cannot).
pub(crate) fn verify_spec(manifest: &Manifest, repo_root: &Path) -> CliResult<Option<Verify>> {
    let Some(argv) = &manifest.defaults.verify else {
        return Ok(None);
    };
    let program = argv.first().map(String::as_str).unwrap_or_default();
    if resolve_program(program, repo_root).is_none() {
        return Err(CliError::invalid(anyhow!(
            "the verify command's program `{program}` was not found{}",
            if program.contains('/') {
                " (relative to the repository root)"
            } else {
                " on PATH"
            }
        ))
        .with_hint(format!(
            "install it, or fix `verify` in `[defaults]` of {}",
            manifest.path.display()
        )));
    }
    Verify::of(manifest)
}

/// orch's directories inside the repository, as `info/exclude` lines (`/.orch/worktrees/`).
pub(crate) fn orch_dirs(manifest: &Manifest, repo_root: &Path) -> Vec<String> {
    [
        &manifest.defaults.worktree_root,
        &manifest.defaults.state_dir,
        &manifest.defaults.log_dir,
    ]
    .iter()
    .filter_map(|d| {
        manifest
            .root
            .join(d)
            .strip_prefix(repo_root)
            .ok()
            .map(|r| format!("/{}/", r.display()))
    })
    .collect()
}

/// [`orch_dirs`] for another repository of the manifest (`[[repo]]`): its worktrees, state
/// and logs are at the same relative places under its work dir.
pub(crate) fn orch_dirs_in(manifest: &Manifest) -> Vec<String> {
    [
        &manifest.defaults.worktree_root,
        &manifest.defaults.state_dir,
        &manifest.defaults.log_dir,
    ]
    .iter()
    .map(|d| format!("/{}/", d.display()))
    .collect()
}

/// One `orch merge` per repository at a time: an exclusive lock standing for
/// `<state_dir>/merge.lock` (in orch's private root, out of the agents' reach).
pub(crate) struct MergeLock {
    _file: std::fs::File,
}

impl MergeLock {
    pub(crate) fn acquire(state_dir: &Path) -> CliResult<Self> {
        let path = state_dir.join("merge.lock");
        let take = || -> std::io::Result<Option<std::fs::File>> {
            std::fs::create_dir_all(state_dir)?;
            // In orch's private root: an agent could hold a lock in the state directory.
            crate::sandbox::try_private_lock(&path)
        };
        match take().map_err(|e| anyhow!("cannot lock `{}`: {e}", path.display()))? {
            Some(file) => Ok(Self { _file: file }),
            None => Err(CliError::new(
                exit::REFUSED,
                anyhow!("another `orch merge` is running in this repository"),
            )
            .with_hint("wait for it to finish")),
        }
    }
}
