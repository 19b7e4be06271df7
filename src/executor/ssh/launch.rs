//! The launch of an attempt of an `executor = "ssh"` plan: the agent's argv and environment
//! (its paths the lead's, which orch's copy on the host replaces by its own) go into a spec
//! file in the state directory, and the process launched here is orch's driver of the attempt,
//! `orch remote-attempt` ([`super::attempt`]), under the same session wrapper as a local agent.

use super::attempt::Spec;
use crate::executor::Attempt;

/// Writes the spec of attempt `a` (to run on the plan's hosts `names`, found among the run's
/// `[[host]]` machines; a snapshot bringing a blob over the plan's `limits`, or a change over
/// them, refused) and returns the argv of its driver.
pub(super) fn driver_argv(
    a: &Attempt<'_>,
    (names, limits): (&[String], crate::manifest::SizeLimits),
    argv: Vec<String>,
    env: &[(String, String)],
) -> Result<Vec<String>, String> {
    let base = crate::git::branch_tip(a.repo_root, a.branch)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the branch `{}` has no commit", a.branch))?;
    let hosts = names
        .iter()
        .filter_map(|n| a.run_hosts.iter().find(|h| &h.name == n).cloned())
        .collect::<Vec<_>>();
    if hosts.is_empty() {
        return Err(format!("plan `{}` has no `[[host]]` to run on", a.plan));
    }
    // The shared connections are `orch up`'s (never in an attempt's process tree, where the end
    // of one attempt would take its siblings' sessions with it); the driver goes through them.
    super::conn::keep_masters(&hosts, a.orch_bin);
    let spec = Spec {
        hosts,
        state_dir: a.state_dir.to_path_buf(),
        repo_root: a.repo_root.to_path_buf(),
        worktree: a.workdir.to_path_buf(),
        base,
        plan: a.plan.to_owned(),
        unit: a.unit.to_owned(),
        attempt: a.attempt,
        argv,
        env: env.to_vec(),
        report_dir: a.report_dir.to_path_buf(),
        prompt_file: a.prompt_file.to_path_buf(),
        status_file: a.status_file.to_path_buf(),
        orch_bin: a.orch_bin.to_path_buf(),
        confine: a.sandbox != crate::manifest::SandboxMode::Off,
        pass_env: a.pass_env.to_vec(),
        control: super::conn::Conn::own_via(),
        max_file_size: limits.file,
        max_change_size: limits.change,
        max_change_files: limits.files,
    };
    let file = crate::state_layout::remote_of(a.state_dir, a.plan)
        .join(format!("{}-{}.json", a.unit, a.attempt));
    // The host record of an earlier driver of the same attempt number (a lost attempt's)
    // is not this one's: the new driver writes its own.
    let _ = std::fs::remove_file(super::records::host_record(
        a.state_dir,
        a.plan,
        a.unit,
        a.attempt,
    ));
    let text = serde_json::to_vec(&spec).map_err(|e| e.to_string())?;
    file.parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| crate::links::write(&file, &text))
        .map_err(|e| format!("cannot write `{}`: {e}", file.display()))?;
    Ok(vec![
        a.orch_bin.display().to_string(),
        "remote-attempt".to_string(),
        format!("--spec={}", file.display()),
    ])
}
