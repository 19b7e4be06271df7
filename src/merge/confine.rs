//! Whether `verify` runs confined: it runs code the agents wrote (their tests, their build
//! scripts) with no person watching (the merge train, the integration preview), so it runs under
//! Landlock through `orch sandbox-exec`, as their attempts do, wherever the manifest confines an
//! agent whose work it tests.
//!
//! The decision is the manifest's, the same for `orch merge`, the merge train and the preview:
//! the strictest `sandbox` of the agents of the manifest's plans. `"off"` for all of them keeps
//! verify unconfined (their agents were not confined either); `"auto"` confines where the kernel
//! has Landlock, else runs it unconfined with a note; `"on"` without Landlock refuses (exit 6).
//! The rules: the devices, every confined agent's `sandbox_write`, the staging worktree and a
//! private `TMPDIR`; not readable: every agent's `sandbox_deny_read`. No git directory, no state
//! directory, no client state.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use crate::error::{CliError, CliResult, exit};
use crate::manifest::{Manifest, SandboxMode};
use crate::sandbox::Rules;

/// How verify is confined: `rules`, to which each run adds its worktree and `TMPDIR`.
pub(crate) use crate::sandbox::Confine;

/// What [`decide`] found: verify confined, or unconfined (with the note to show when the
/// manifest asked for confinement that this kernel cannot give).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct VerifySandbox {
    pub(crate) confine: Option<Confine>,
    pub(crate) note: Option<String>,
}

/// The confinement of `verify` for `manifest`'s plans; `supported`: whether this kernel has
/// Landlock (asked only when some agent may be confined).
pub(crate) fn decide(
    manifest: &Manifest,
    supported: impl FnOnce() -> bool,
) -> CliResult<VerifySandbox> {
    let mut strictest = SandboxMode::Off;
    let mut write: Vec<PathBuf> = Vec::new();
    let mut deny_read: Vec<PathBuf> = Vec::new();
    let mut strict_agent = String::new();
    for entry in &manifest.plans {
        let Some(agent) = manifest.agent_of(entry) else {
            continue;
        };
        let sb = &agent.sandbox;
        if sb.mode == SandboxMode::Off {
            continue;
        }
        if strictest != SandboxMode::On {
            strictest = sb.mode;
            strict_agent = entry.agent.clone();
        }
        for p in sb.code_rules().write {
            if !write.contains(&p) {
                write.push(p);
            }
        }
        for p in &sb.deny_read {
            if !deny_read.contains(p) {
                deny_read.push(p.clone());
            }
        }
    }
    if strictest == SandboxMode::Off {
        return Ok(VerifySandbox::default());
    }
    if !supported() {
        if strictest == SandboxMode::On {
            return Err(CliError::new(
                exit::AGENT,
                anyhow!(
                    "the verify command runs the work of agent `{strict_agent}`, which must run confined (`sandbox = \"on\"`), but this kernel does not support Landlock"
                ),
            )
            .with_hint(
                "run on Linux 5.13 or later with Landlock enabled, or set `sandbox = \"auto\"` or \"off\" in plans.toml",
            ));
        }
        return Ok(VerifySandbox {
            confine: None,
            note: Some(
                "this kernel cannot confine processes (no Landlock): the verify command runs the agents' code unconfined".to_string(),
            ),
        });
    }
    let orch_bin =
        std::env::current_exe().map_err(|e| anyhow!("cannot find the orch executable: {e}"))?;
    Ok(VerifySandbox {
        confine: Some(Confine {
            orch_bin,
            rules: Rules {
                write,
                deny_read,
                read: Vec::new(),
            },
        }),
        note: None,
    })
}

/// How the `[[notify]]` hooks' commands run: confined as `verify` is ([`decide`]), without a
/// worktree (they write only a private `TMPDIR` and `sandbox_write`; the repository, which the
/// agents' work reached, is theirs to read only). `None`, unconfined, where verify runs
/// unconfined: every agent `sandbox = "off"`, or no Landlock under `"auto"`; also where the
/// manifest asks for a confinement this kernel cannot give (the run refuses its agents then).
pub(crate) fn hooks(manifest: &Manifest) -> Option<Confine> {
    let confine = decide(manifest, crate::sandbox::supported).ok()?.confine?;
    Some(Confine {
        orch_bin: confine.orch_bin,
        rules: confine.rules,
    })
}

/// A private `TMPDIR` for one verify run, removed when dropped.
pub(crate) struct TmpDir(PathBuf);

impl TmpDir {
    /// `<tmp root>/verify-<what>` ([`crate::sandbox::tmp_root`]), made empty.
    pub(crate) fn make(what: &str) -> Result<Self, String> {
        let path = crate::sandbox::tmp_root().join(format!("verify-{what}"));
        crate::links::fresh_dir(&path)
            .map_err(|e| format!("cannot make the TMPDIR `{}`: {e}", path.display()))?;
        Ok(Self(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = crate::sandbox::remove_tmp(&self.0);
    }
}

/// `argv` as run by verify in `cwd`: confined by `confine` with a private `TMPDIR` (returned, to
/// be set in the command's environment and kept until it ends), or as it is.
pub(crate) fn verify_argv(
    confine: Option<&Confine>,
    argv: &[String],
    cwd: &Path,
    what: &str,
) -> Result<(Vec<String>, Option<TmpDir>), String> {
    match confine {
        None => Ok((argv.to_vec(), None)),
        Some(c) => {
            let tmp = TmpDir::make(what)?;
            Ok((c.argv(argv, cwd, tmp.path()), Some(tmp)))
        }
    }
}
