//! `orch pause|resume PLAN`, `orch retry|stop PLAN ID`: run control through the status files
//! ([`crate::control`]). A running `orch up` acts on the change within a second; without one,
//! the next `orch up` starts from it.

use std::path::PathBuf;

use serde_json::json;

use super::output::{print_json, println_safe};
use crate::control;
use crate::error::{CliError, CliResult, exit};
use crate::supervisor::lock::{Holder, running};
use crate::workspace::{self, LoadedPlan, Selection, Workspace};

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Pause { plan: String },
    Resume { plan: String },
    Retry { plan: String, id: String },
    Stop { plan: String, id: String },
}

impl Request {
    fn plan(&self) -> &str {
        match self {
            Self::Pause { plan }
            | Self::Resume { plan }
            | Self::Retry { plan, .. }
            | Self::Stop { plan, .. } => plan,
        }
    }
}

/// What was done, in words and as a JSON object (`event` named as `orch up --json` names it).
#[derive(Clone, Debug)]
pub struct Done {
    pub message: String,
    pub json: serde_json::Value,
}

pub fn run(manifest: Option<PathBuf>, request: &Request, json: bool) -> CliResult<u8> {
    let ws = workspace::load(&Selection {
        manifest,
        plan: None,
    })?;
    let done = apply(&ws, request)?;
    if json {
        print_json(&done.json);
    } else {
        println_safe(&done.message);
    }
    Ok(exit::OK)
}

/// Carries `request` out in workspace `ws` (also what `orch top`'s keys call).
pub fn apply(ws: &Workspace, request: &Request) -> CliResult<Done> {
    let Some(m) = ws.manifest.as_ref() else {
        return Err(CliError::invalid(anyhow::anyhow!(
            "run control needs a plans.toml (plans are named there)"
        )));
    };
    let state_dir = m.root.join(&m.defaults.state_dir);
    let index = ws.select(&[request.plan().to_string()])?[0];
    let lp = &ws.plans[index];
    let sup = running(&state_dir);
    let (message, mut value) = match request {
        Request::Pause { plan } => {
            let changed = control::set_paused(lp, true).map_err(CliError::coded)?;
            let msg = if changed {
                format!("plan {plan} paused: nothing new of it starts; running agents go on")
            } else {
                format!("plan {plan} was already paused")
            };
            (
                msg,
                json!({"event": "plan_paused", "plan": plan, "changed": changed}),
            )
        }
        Request::Resume { plan } => {
            let changed = control::set_paused(lp, false).map_err(CliError::coded)?;
            let msg = if changed {
                format!("plan {plan} resumed")
            } else {
                format!("plan {plan} was not paused")
            };
            (
                msg,
                json!({"event": "plan_resumed", "plan": plan, "changed": changed}),
            )
        }
        Request::Retry { plan, id } => {
            known_task(lp, id)?;
            let r = control::retry(lp, id).map_err(CliError::coded)?;
            let msg = format!(
                "{plan} {id} is pending again (it failed: {}); its next attempt is {}, with a fresh set of retries",
                r.error.as_deref().unwrap_or("no cause recorded"),
                r.attempts + 1
            );
            (
                msg,
                json!({"event": "task_retried", "plan": plan, "task": id, "attempt": r.attempts + 1}),
            )
        }
        Request::Stop { plan, id } => {
            known_task(lp, id)?;
            let s = control::stop(lp, id).map_err(CliError::coded)?;
            let mut msg = format!(
                "{plan} {id} stopped: failed with the cause `stopped`; `orch retry {plan} {id}` runs it again"
            );
            // No supervisor to stop the agent: stop its process group here.
            if sup.is_none()
                && let Some((pid, start)) = s.run
                && crate::process::process_alive(pid, start)
            {
                crate::process::signal_group(pid, nix::sys::signal::Signal::SIGTERM);
                msg.push_str(&format!(" (its agent, pid {pid}, was sent SIGTERM)"));
            }
            (
                msg,
                json!({"event": "task_stopped", "plan": plan, "task": id, "attempt": s.attempts, "was_running": s.was_running}),
            )
        }
    };
    let message = format!("{message}\n{}", supervisor_note(sup.as_ref()));
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "supervisor_pid".into(),
            sup.as_ref()
                .map_or(serde_json::Value::Null, |h| json!(h.pid)),
        );
    }
    Ok(Done {
        message,
        json: value,
    })
}

fn supervisor_note(sup: Option<&Holder>) -> String {
    match sup {
        Some(h) => format!(
            "the running `orch up` (pid {}) acts on it within a second",
            h.pid
        ),
        None => "no `orch up` is running: the next one starts from this".to_string(),
    }
}

fn known_task(lp: &LoadedPlan, id: &str) -> CliResult<()> {
    if lp.plan.task(id).is_some() {
        return Ok(());
    }
    Err(CliError::invalid(anyhow::anyhow!(
        "task `{id}` does not exist in plan `{}`",
        lp.name
    ))
    .with_hint(format!(
        "`orch status --plan {}` lists the task ids",
        lp.name
    )))
}
