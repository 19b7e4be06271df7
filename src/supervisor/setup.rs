//! A plan's `setup` command, in the plan's worktree or in a new task worktree, run under a
//! keeper ([`crate::process::Keeper`]): what the setup leaves running in the background (a
//! database for the worktree) is the setup's, kept by the keeper for the run's length and ended
//! with the run (or when orch dies); a setup that fails has it ended at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;

use super::attempt::Stop;
use super::context::Ctx;
use crate::process;

/// How a setup run ended.
pub(crate) enum SetupEnd {
    /// By itself: its exit code (`None`: killed by a signal) and the last bytes of its output.
    Exited(Option<i32>, Vec<u8>),
    /// Past its timeout; it and what it started were ended.
    TimedOut,
    /// Stopped with the run.
    Stopped,
}

/// What one setup run needs: its argv (confined already where it must be), its worktree, its
/// environment, its log, its private `TMPDIR` (removed when the keeper ends) and its timeout.
pub(crate) struct SetupRun<'a> {
    pub(crate) argv: &'a [String],
    pub(crate) workdir: &'a Path,
    pub(crate) env: &'a [(String, String)],
    pub(crate) log: &'a Path,
    pub(crate) tmpdir: Option<PathBuf>,
    pub(crate) timeout: Duration,
    /// Its network, served once the keeper is started (`None`: open).
    pub(crate) net: Option<crate::sandbox::net::NetAttempt>,
}

/// Runs a setup under a keeper to its end, within its timeout and no longer than the run
/// (`stop`). A setup that succeeds leaves its keeper (and what it keeps) to the end of the run;
/// any other end ends them now. `Err`: it could not start.
pub(crate) async fn run(
    ctx: &Ctx,
    s: SetupRun<'_>,
    stop: &mut watch::Receiver<Stop>,
) -> Result<SetupEnd, String> {
    let mut keeper = match process::spawn_keeper(
        &ctx.orch_bin,
        s.argv,
        (s.workdir, s.env, s.log),
        (ctx.log_max, ctx.grace),
    ) {
        Ok(k) => k,
        Err(e) => {
            if let Some(tmp) = s.tmpdir {
                let _ = crate::sandbox::remove_tmp(&tmp);
            }
            return Err(e.to_string());
        }
    };
    keeper.tmpdir = s.tmpdir;
    if let Some(net) = s.net {
        net.started(keeper.pid);
    }
    let deadline = tokio::time::Instant::now() + s.timeout;
    let ended = {
        let report = keeper.setup_ended();
        tokio::pin!(report);
        loop {
            tokio::select! {
                report = &mut report => break match report {
                    Some((code, tail)) => SetupEnd::Exited(code, tail),
                    None => SetupEnd::Exited(None, Vec::new()),
                },
                () = tokio::time::sleep_until(deadline) => break SetupEnd::TimedOut,
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() == Stop::Now {
                        break SetupEnd::Stopped;
                    }
                }
            }
        }
    };
    match ended {
        SetupEnd::Exited(Some(0), _) => process::keep(keeper),
        _ => keeper.end().await,
    }
    Ok(ended)
}

/// The most of a failed setup's output kept as the attempt's cause (characters).
const CAUSE_MAX: usize = 2000;

/// Runs the plan's `setup` in the new task worktree `workdir` of task `t` (its worktree and log
/// named by `key`), before attempt `attempt`'s agent: confined as the agent is, with a TMPDIR of
/// its own (kept while the keeper keeps what the setup started). `Err`: why the attempt fails
/// (the setup failed, with the end of its output; it timed out; it could not start).
pub(crate) async fn in_task_tree(
    ctx: &Ctx,
    pc: &super::context::PlanCtx,
    (key, t, attempt): (&str, usize, u32),
    workdir: &Path,
    setup: &[String],
    stop: &mut watch::Receiver<Stop>,
) -> Result<(), String> {
    use crate::agent_env;
    let log = pc.log_path(Some(key));
    let shown = crate::merge::verify::shown(setup);
    process::log_line(
        &log,
        &format!(
            "=== orch: setup `{shown}` started at {} in {} ===",
            crate::status::timestamp(chrono::Utc::now()),
            workdir.display()
        ),
    );
    let port = super::context::worktree_port(ctx, pc, workdir)?;
    let mut env = vec![
        (agent_env::ORCH_PLAN.to_string(), pc.name().to_owned()),
        (
            agent_env::ORCH_TASK.to_string(),
            pc.plan.tasks[t].id.clone(),
        ),
        (
            agent_env::ORCH_WORKTREE.to_string(),
            workdir.display().to_string(),
        ),
        (agent_env::ORCH_PORT.to_string(), port.to_string()),
        (agent_env::ORCH_PORTS.to_string(), ctx.ports.to_string()),
    ];
    // The setup script is the repository's, which agents edit: confined as the agent is, to
    // its worktree and a TMPDIR of its own (no git directory, no state directory).
    let tmp = pc
        .confined_here()
        .map(|_| super::sandbox::tmp_dir(pc.name(), &format!("{key}.setup"), attempt));
    let argv = match &tmp {
        Some(tmp) => {
            crate::links::fresh_dir(tmp)
                .map_err(|e| format!("cannot make the TMPDIR `{}`: {e}", tmp.display()))?;
            env.push(("TMPDIR".to_string(), tmp.display().to_string()));
            let rules = crate::sandbox::code_rules(&pc.agent.sandbox.code_rules(), workdir, tmp);
            crate::sandbox::wrap(&ctx.orch_bin, &rules, setup)
        }
        None => setup.to_vec(),
    };
    // Its network is its agents'.
    let net = super::network::attempt(
        ctx.net.as_ref(),
        &pc.network,
        crate::executor::NetPlace::Here,
        (pc.name(), &format!("{key}.setup")),
        &log,
        &mut env,
    )?;
    let ran = run(
        ctx,
        SetupRun {
            argv: &argv,
            workdir,
            env: &env,
            log: &log,
            tmpdir: tmp,
            timeout: pc.entry.timeout,
            net,
        },
        stop,
    )
    .await;
    let why = match ran {
        Ok(SetupEnd::Exited(Some(0), _)) => return Ok(()),
        Ok(SetupEnd::Exited(code, tail)) => {
            let status = code.map_or_else(
                || "killed by a signal".to_string(),
                |c| format!("exit status {c}"),
            );
            let text = String::from_utf8_lossy(&tail);
            let text = text.trim();
            let tail = match text.char_indices().rev().nth(CAUSE_MAX) {
                Some((i, _)) => format!("…{}", &text[i..]),
                None => text.to_string(),
            };
            if tail.is_empty() {
                status
            } else {
                format!("{status}: {tail}")
            }
        }
        Ok(SetupEnd::TimedOut) => format!(
            "timed out after {}",
            crate::manifest::format_duration(pc.entry.timeout)
        ),
        Ok(SetupEnd::Stopped) => "stopped".to_string(),
        Err(e) => format!("cannot start it: {e}"),
    };
    let cause = format!("the setup command `{shown}` failed in the task worktree ({why})");
    process::log_line(&log, &format!("=== orch: {cause} ==="));
    Err(cause)
}
