//! One thin file per subcommand. Each returns its exit code or a [`CliError`](crate::error::CliError).

pub(crate) mod check;
pub(crate) mod clean;
pub(crate) mod conflicts;
pub(crate) mod control;
pub(crate) mod demo;
pub(crate) mod forecasts;
pub(crate) mod graph;
pub(crate) mod history;
pub(crate) mod hosts;
pub(crate) mod init;
pub(crate) mod init_from;
pub(crate) mod integrate;
mod land;
pub(crate) mod logs;
pub(crate) mod mcp;
pub(crate) mod merge;
mod merge_args;
pub(crate) mod next;
pub(crate) mod orch_child;
pub(crate) mod output;
pub(crate) mod pr;
mod profile;
pub(crate) mod resolve;
pub(crate) mod run_events;
pub(crate) mod sandbox_exec;
pub(crate) mod serve;
pub(crate) mod simulate;
pub(crate) mod status;
pub(crate) mod sync;
pub(crate) mod task;
mod task_call;
mod task_report;
pub(crate) mod up;

pub(crate) use crate::workspace::Selection;

use std::path::Path;

use anyhow::anyhow;

use crate::error::{CliError, CliResult, exit};
use crate::manifest::Manifest;
use crate::supervisor::{LockError, SupervisorLock};
use crate::workspace::{self, Workspace};

/// The workspace (valid, with `valid`) and its manifest, for a command that works on the plans a
/// manifest lists; `needs` is the error without one (`` `orch X` needs a plans.toml: … ``).
pub(crate) fn with_manifest(
    sel: &Selection,
    valid: bool,
    needs: &str,
) -> CliResult<(Workspace, Manifest)> {
    let ws = workspace::load(sel)?;
    if valid {
        ws.require_valid()?;
    }
    let Some(manifest) = ws.manifest.clone() else {
        return Err(CliError::invalid(anyhow!("{needs}"))
            .with_hint("write one with `orch init`, or pass `--manifest PATH`"));
    };
    Ok((ws, manifest))
}

/// The plan names given, and `--plan`'s (a name from the manifest) for command `cmd` (`orch X`).
pub(crate) fn plan_names(
    sel: &Selection,
    manifest: &Manifest,
    mut names: Vec<String>,
    cmd: &str,
) -> CliResult<Vec<String>> {
    if let Some(p) = &sel.plan {
        let Some(entry) = manifest.plan(p) else {
            return Err(CliError::invalid(anyhow!(
                "`--plan {p}`: `{cmd}` takes plan names from the manifest"
            )));
        };
        names.push(entry.name.clone());
    }
    Ok(names)
}

/// The supervisor's lock of the manifest's state directory, for a command that never runs
/// beside `orch up`; refused (exit 4) with `held` as the hint while `orch up` holds it.
pub(crate) fn supervisor_lock(manifest: &Manifest, held: &str) -> CliResult<SupervisorLock> {
    let state_dir = manifest.root.join(&manifest.defaults.state_dir);
    SupervisorLock::acquire(&state_dir).map_err(|e| lock_error(e, held))
}

/// `e` refused (exit 4), with `held` as the hint when `orch up` holds the lock.
pub(crate) fn lock_error(e: LockError, held: &str) -> CliError {
    let hint = match &e {
        LockError::Held { .. } => held,
        LockError::Open { .. } => "check the permissions of the state directory",
    };
    CliError::new(exit::REFUSED, e).with_hint(hint)
}

/// Task node `n` as shown: `plan:id` with several plans in the workspace, else the id.
pub(crate) fn node_label(ws: &Workspace, g: &crate::graph::Graph, n: usize) -> String {
    ws.node_label(g, n, ws.plans.len() > 1)
}

/// The manifest's target branch, which must exist in `repo_root`.
pub(crate) fn existing_target(repo_root: &Path, manifest: &Manifest) -> CliResult<String> {
    let target = manifest.defaults.target.clone();
    if crate::git::branch_tip(repo_root, &target)
        .map_err(CliError::coded)?
        .is_none()
    {
        return Err(CliError::coded(crate::git::GitError::TargetMissing {
            target,
        }));
    }
    Ok(target)
}
