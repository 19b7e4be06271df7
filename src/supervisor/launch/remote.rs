//! The launch of an attempt of an `executor = "ssh"` plan: the agent's argv and environment
//! (its paths the lead's, which orch's copy on the host replaces by its own) go into a spec
//! file in the state directory, and the process launched here is orch's driver of the attempt,
//! `orch remote-attempt` ([`crate::executor::ssh::attempt`]), under the same session wrapper as
//! a local agent.

use std::path::Path;

use crate::executor::ssh::attempt::Spec;
use crate::supervisor::context::{Ctx, PlanCtx};

/// The paths of one attempt that the spec names.
pub(super) struct Paths<'a> {
    pub(super) workdir: &'a Path,
    pub(super) branch: &'a str,
    pub(super) report_dir: &'a Path,
    pub(super) prompt_file: &'a Path,
}

/// Writes the spec of attempt `attempt` of `unit` (a task id or `plan`) and returns the argv of
/// its driver.
pub(super) fn driver_argv(
    ctx: &Ctx,
    pc: &PlanCtx,
    (unit, attempt): (&str, u32),
    argv: Vec<String>,
    env: &[(String, String)],
    paths: &Paths<'_>,
) -> Result<Vec<String>, String> {
    let base = crate::git::branch_tip(&pc.repo_root, paths.branch)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the branch `{}` has no commit", paths.branch))?;
    let hosts = pc
        .entry
        .hosts
        .iter()
        .filter_map(|n| ctx.hosts.iter().find(|h| &h.name == n).cloned())
        .collect::<Vec<_>>();
    if hosts.is_empty() {
        return Err(format!("plan `{}` has no `[[host]]` to run on", pc.name()));
    }
    let state_dir = crate::supervisor::reports::state_dir_of(pc);
    // The shared connections are `orch up`'s (never in an attempt's process tree, where the end
    // of one attempt would take its siblings' sessions with it); the driver goes through them.
    crate::executor::ssh::conn::keep_masters(&hosts, &ctx.orch_bin);
    let spec = Spec {
        hosts,
        state_dir: state_dir.clone(),
        repo_root: pc.repo_root.clone(),
        worktree: paths.workdir.to_path_buf(),
        base,
        plan: pc.name().to_owned(),
        unit: unit.to_owned(),
        attempt,
        argv,
        env: env.to_vec(),
        report_dir: paths.report_dir.to_path_buf(),
        prompt_file: paths.prompt_file.to_path_buf(),
        status_file: pc.status_path.clone(),
        orch_bin: ctx.orch_bin.clone(),
        confine: pc.agent.sandbox.mode != crate::manifest::SandboxMode::Off,
        control: crate::executor::ssh::Conn::own_via(),
    };
    let file = crate::state_layout::remote_of(&state_dir, pc.name())
        .join(format!("{unit}-{attempt}.json"));
    // The host record of an earlier driver of the same attempt number (a lost attempt's)
    // is not this one's: the new driver writes its own.
    let _ = std::fs::remove_file(crate::executor::ssh::attempt::host_record(
        &state_dir,
        pc.name(),
        unit,
        attempt,
    ));
    let text = serde_json::to_vec(&spec).map_err(|e| e.to_string())?;
    file.parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| crate::links::write(&file, &text))
        .map_err(|e| format!("cannot write `{}`: {e}", file.display()))?;
    Ok(vec![
        ctx.orch_bin.display().to_string(),
        "remote-attempt".to_string(),
        format!("--spec={}", file.display()),
    ])
}
