//! `orch setup-exec N SETUP… AGENT…` (hidden): how `orch up` runs a plan's `setup` in a task
//! worktree (`parallel_tasks` > 1) before the task's agent. It runs the first `N` arguments (the
//! setup argv) in the current directory, its output going to the attempt's log; if that fails,
//! it records the task failed with the setup's output as the cause (`orch task fail`) and exits
//! 1; otherwise it becomes the agent (`exec`: same process, same process group, same pid). For a
//! confined plan both the setup argv and the agent's are `orch sandbox-exec RULES -- …`.

use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};

use anyhow::anyhow;

use crate::agent_env;
use crate::error::{CliError, CliResult, exit};
use crate::status::{Transition, TransitionOptions};
use crate::workspace::Selection;

/// The most of the setup's output kept as the failure's cause.
const CAUSE_MAX: usize = 2000;

pub(crate) fn run(args: &[String]) -> CliResult<u8> {
    let bad = || {
        CliError::invalid(anyhow!(
            "`orch setup-exec` is run by `orch up`: `orch setup-exec N SETUP… AGENT…`"
        ))
    };
    let n: usize = args.first().and_then(|a| a.parse().ok()).ok_or_else(bad)?;
    let rest = &args[1..];
    if n == 0 || rest.len() <= n {
        return Err(bad());
    }
    let (setup, agent) = rest.split_at(n);
    let out = Command::new(&setup[0])
        .args(&setup[1..])
        .stdin(Stdio::null())
        .output();
    let failure = match out {
        Err(e) => Some(format!("cannot run `{}`: {e}", setup[0])),
        Ok(out) => {
            // Into the attempt's log, as the agent's own output goes.
            use std::io::Write as _;
            let _ = std::io::stdout().write_all(&out.stdout);
            let _ = std::io::stderr().write_all(&out.stderr);
            if out.status.success() {
                None
            } else {
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                let text = text.trim();
                let tail = match text.char_indices().rev().nth(CAUSE_MAX) {
                    Some((i, _)) => format!("…{}", &text[i..]),
                    None => text.to_string(),
                };
                let status = out.status.code().map_or_else(
                    || "killed by a signal".to_string(),
                    |c| format!("exit status {c}"),
                );
                Some(if tail.is_empty() {
                    status
                } else {
                    format!("{status}: {tail}")
                })
            }
        }
    };
    if let Some(why) = failure {
        // Confined, the setup's own argv follows `orch sandbox-exec RULES --`.
        let own = match setup.get(1).map(String::as_str) {
            Some("sandbox-exec") => setup
                .iter()
                .position(|a| a == "--")
                .map_or(setup, |i| &setup[i + 1..]),
            _ => setup,
        };
        let cause = format!(
            "the setup command `{}` failed in the task worktree ({why})",
            crate::merge::verify::shown(own)
        );
        eprintln!("orch: {cause}");
        let task = std::env::var(agent_env::ORCH_TASK).unwrap_or_default();
        if !task.is_empty() {
            let recorded = super::task::run(
                &Selection::default(),
                super::task::TaskArgs {
                    transition: Transition::Fail,
                    id: task,
                    opts: TransitionOptions {
                        error: Some(cause),
                        force: true,
                        ..Default::default()
                    },
                    json: false,
                },
            );
            if let Err(e) = recorded {
                eprintln!("orch: cannot record the failure: {e}");
            }
        }
        return Ok(exit::FAILURE);
    }
    let e = Command::new(&agent[0]).args(&agent[1..]).exec();
    Err(CliError::new(
        exit::FAILURE,
        anyhow!("cannot run the agent `{}`: {e}", agent[0]),
    ))
}
