//! Live re-planning: while `orch up` runs, `plans.toml`, the plan files it names and
//! the prompt templates may change. The pieces here are what the run needs to follow them: the
//! files to watch ([`inputs_of`], [`watch_inputs`]), whether their content changed
//! ([`fingerprint`], [`changed_files`]), the new configuration checked as `orch check` checks it
//! ([`load_candidate`]), and what changed, in words ([`changes`], [`changes_of`]).

mod changes;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use crate::diagnostic::Diagnostic;
use crate::manifest::ManifestError;
use crate::plan::PlanReadError;
use crate::prompt::{PLAN_FILE, TASK_FILE};
use crate::untrusted::read;
use crate::watch::{Names, hint_for};
use crate::workspace::{self, Selection, Workspace};

#[cfg(test)]
use super::event::Event;

#[cfg(test)]
use changes::changes;
pub(crate) use changes::changes_of;

/// The files whose change is a re-plan, absolute: the manifest, every plan file it names, the
/// two prompt templates (`task.md`, `plan.md`; built in while missing) and their directory
/// (`defaults.templates`; whether it exists counts). Each once, in that order. Without a
/// manifest: the plan files.
pub(crate) fn inputs_of(ws: &Workspace) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut push = |p: PathBuf| {
        let p = std::path::absolute(&p).unwrap_or(p);
        if !out.contains(&p) {
            out.push(p);
        }
    };
    match &ws.manifest {
        Some(m) => {
            push(m.path.clone());
            for entry in &m.plans {
                push(entry.abs_file.clone());
            }
            let templates = m.templates_dir();
            push(templates.join(TASK_FILE));
            push(templates.join(PLAN_FILE));
            push(templates);
        }
        None => {
            for p in &ws.plans {
                push(p.plan.path.clone());
            }
        }
    }
    out
}

/// Watches `inputs` and sends `()` on `tx` for every file event that touches one of them (by
/// file name), for lost events and for a watcher error: the caller debounces, then compares
/// [`fingerprint`]s. The *parent directories* are watched, not recursively, never the files:
/// editors write a new file and rename it over the old one, and `git checkout` rewrites several
/// at once. A directory that does not exist (no templates directory yet) is watched through
/// its nearest existing ancestor, which reports it being made: the templates directory is an
/// input, so the fingerprint changes then, and the caller watches again with the new inputs
/// (as after any applied change: a plan added may live in a directory not watched yet).
/// `crate::watch::watch_dirs` is not used since it makes missing directories. Keep the returned
/// watcher alive as long as events are wanted.
pub(crate) fn watch_inputs(
    inputs: &[PathBuf],
    tx: tokio::sync::mpsc::UnboundedSender<()>,
) -> notify::Result<RecommendedWatcher> {
    let (dirs, names) = watched(inputs);
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if hint_for(res, &names).is_some() {
            // The receiver gone: the run is ending, nobody needs to know.
            let _ = tx.send(());
        }
    })?;
    for dir in &dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    Ok(watcher)
}

/// The directories [`watch_inputs`] watches and the file names it reacts to: each input's
/// name, and its parent's, or the names of the missing directories down from the nearest
/// existing ancestor.
fn watched(inputs: &[PathBuf]) -> (BTreeSet<PathBuf>, Names) {
    let mut dirs = BTreeSet::new();
    let mut names = Names::new();
    for input in inputs {
        let input = std::path::absolute(input).unwrap_or_else(|_| input.clone());
        let Some(name) = input.file_name() else {
            continue;
        };
        names.insert(name.to_os_string());
        let mut dir = input.parent();
        while let Some(d) = dir {
            if d.is_dir() {
                dirs.insert(d.to_path_buf());
                break;
            }
            if let Some(n) = d.file_name() {
                names.insert(n.to_os_string());
            }
            dir = d.parent();
        }
    }
    (dirs, names)
}

/// The content of one input: its length and a 64-bit digest of its bytes
/// ([`crate::plan::hash_bytes`], the one `orchPlanDigest` uses); a directory is [`Digest::DIR`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Digest {
    pub(crate) len: u64,
    pub(crate) hash: u64,
}

impl Digest {
    /// What a directory reads as (its entries are not looked at).
    pub(crate) const DIR: Digest = Digest {
        len: u64::MAX,
        hash: 0,
    };
}

/// Each input with the digest of its content, in the inputs' order; `None` for a file that is
/// missing or cannot be read.
pub(crate) type Fingerprint = Vec<(PathBuf, Option<Digest>)>;

/// Reads each of `inputs` whole and digests it. A burst of writes that ends where it began, or
/// a `touch`, leaves the fingerprint as it was: reload only when it differs from the one of the
/// configuration last applied or reported invalid.
pub(crate) fn fingerprint(inputs: &[PathBuf]) -> Fingerprint {
    inputs
        .iter()
        .map(|p| {
            // Read as every configuration file is (no link followed, no FIFO waited on, at
            // most the limit of the largest kind): what cannot be read is `None`, a change
            // whose reload then names the file.
            let digest = if std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()) {
                Some(Digest::DIR)
            } else {
                read::whole(p, read::PLAN).ok().map(|bytes| Digest {
                    len: bytes.len() as u64,
                    hash: crate::plan::hash_bytes(&bytes),
                })
            };
            (p.clone(), digest)
        })
        .collect()
}

/// The files whose content differs between two fingerprints: those of `new` that changed or
/// are new to the list (in `new`'s order), then those of `old` no longer in it.
pub(crate) fn changed_files(old: &Fingerprint, new: &Fingerprint) -> Vec<PathBuf> {
    let was = |p: &Path| old.iter().find(|(q, _)| q == p).map(|(_, d)| *d);
    let mut out: Vec<PathBuf> = new
        .iter()
        .filter(|(p, d)| was(p) != Some(*d))
        .map(|(p, _)| p.clone())
        .collect();
    out.extend(
        old.iter()
            .filter(|(p, _)| !new.iter().any(|(q, _)| q == p))
            .map(|(p, _)| p.clone()),
    );
    out
}

/// A configuration that does not pass `orch check`: it is not applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Invalid {
    /// The file of the first error (the manifest when it could not be loaded at all), made
    /// absolute (a plan file or a template is named relative to the manifest's directory).
    pub(crate) file: PathBuf,
    /// Every error as `orch check` prints it: `path:line:col: error: message`, and its hint on a
    /// line of its own (`Diagnostic`'s own rendering).
    pub(crate) errors: Vec<String>,
}

impl Invalid {
    /// The event that reports it.
    #[cfg(test)]
    pub(crate) fn event(&self) -> Event {
        Event::ManifestInvalid {
            file: self.file.clone(),
            errors: self.errors.clone(),
        }
    }

    /// The error diagnostics of `diagnostics`; `None` when there is none.
    fn of(manifest: &Path, diagnostics: &[Diagnostic]) -> Option<Invalid> {
        let errors: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.is_error()).collect();
        let first = errors.first()?;
        let file = if first.path.is_absolute() || first.path == manifest {
            first.path.clone()
        } else {
            // Plan files and templates are named relative to the manifest's directory.
            manifest
                .parent()
                .map_or_else(|| first.path.clone(), |dir| dir.join(&first.path))
        };
        Some(Invalid {
            file: std::path::absolute(&file).unwrap_or(file),
            errors: errors.iter().map(ToString::to_string).collect(),
        })
    }
}

/// Loads the manifest at `manifest_path` and every plan it names as `orch check` does
/// ([`workspace::load_checked`]: the manifest, the plans, the cross-plan checks, the prompt
/// templates). Any error, or a load that fails (a manifest that does not parse, a plan file that
/// cannot be read), is [`Invalid`]; warnings are not.
pub(crate) fn load_candidate(manifest_path: &Path) -> Result<Workspace, Invalid> {
    let sel = Selection {
        manifest: Some(manifest_path.to_path_buf()),
        plan: None,
    };
    let failed = match workspace::load_checked(&sel) {
        Ok(ws) => match Invalid::of(manifest_path, &ws.diagnostics) {
            None if ws.graph.is_some() => return Ok(ws),
            Some(invalid) => return Err(invalid),
            // No error and no graph cannot happen (the graph is built when there is no error).
            None => {
                return Err(Invalid {
                    file: absolute(manifest_path),
                    errors: vec!["the plans' graph could not be built".to_string()],
                });
            }
        },
        Err(e) => e,
    };
    if let Some(invalid) = failed
        .error
        .downcast_ref::<ManifestError>()
        .and_then(|me| Invalid::of(manifest_path, me.diagnostics()))
    {
        return Err(invalid);
    }
    let file = match failed.error.downcast_ref::<PlanReadError>() {
        Some(
            PlanReadError::Read { path, .. }
            | PlanReadError::Refused { path, .. }
            | PlanReadError::NotUtf8 { path, .. },
        ) => absolute(path),
        None => absolute(manifest_path),
    };
    let mut error = failed.to_string();
    if let Some(hint) = &failed.hint {
        error.push_str(&format!("\n  hint: {hint}"));
    }
    Err(Invalid {
        file,
        errors: vec![error],
    })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests;
