//! The check gate: the task's check (`check` in `[defaults]` or `[[plan]]`, or the task's own
//! `(check: …)`) run in its worktree after its agent is done and before the commit. Its output
//! goes to `<log_dir>/<id>.check.log`; a failure's cause is the end of that output, which the
//! retry's prompt gets. Decides nothing: the core does.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::watch;

use super::context::PlanCtx;
use super::core::Input;
use super::effects::{Effects, Msg};
use super::state::{CheckOutcome, RunId, Stop, Unit};
use crate::agent_env;
use crate::manifest::format_duration;
use crate::process;
use crate::status;

/// Lines of the check's output kept in a failure's cause.
const TAIL_LINES: usize = 40;
const TAIL_CHARS: usize = 4000;

impl Effects<'_> {
    /// Runs the check of attempt `run` off the loop; the core hears [`Input::Checked`].
    pub fn check(&mut self, run: RunId, unit: Unit) {
        let Some(pc) = self.plan(unit.plan()) else {
            return;
        };
        let Some(t) = unit.task() else { return };
        let tx = self.tx.clone();
        let stop = self.stop_all.subscribe();
        let grace = self.ctx.grace;
        let orch = self.ctx.orch_bin.clone();
        tokio::spawn(async move {
            let result = run_check(&pc, t, grace, stop, &orch).await;
            if let Some(tmp) = check_tmp(&pc, t) {
                let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(tmp)).await;
            }
            let _ = tx.send(Msg {
                reload: Some(pc.index),
                input: Input::Checked { run, result },
            });
        });
    }
}

/// Runs task `t`'s check in its worktree, with the task's timeout (also for a plan-mode
/// agent's VERIFY step, `reports.rs`).
pub(super) async fn run_check(
    pc: &Arc<PlanCtx>,
    t: usize,
    grace: std::time::Duration,
    mut stop: watch::Receiver<Stop>,
    orch: &Path,
) -> CheckOutcome {
    let Some(mut argv) = pc.check_of(t) else {
        return CheckOutcome::Passed;
    };
    let id = pc.plan.tasks[t].id.clone();
    let shown = argv.join(" ");
    let workdir = pc.task_worktree(&id).unwrap_or_else(|| pc.worktree.clone());
    let log = pc.log_dir.join(format!("{id}.check.log"));
    process::log_line(
        &log,
        &format!(
            "=== orch: check `{shown}` started at {} in {} ===",
            status::timestamp(Utc::now()),
            workdir.display()
        ),
    );
    let start = std::fs::metadata(&log).map_or(0, |m| m.len());
    if let Some(first) = argv.first_mut()
        && !first.contains('/')
        && let Some(found) = process::resolve_program(first, &workdir)
    {
        *first = found.display().to_string();
    }
    let program = argv.first().cloned().unwrap_or_default();
    let mut env = vec![
        (agent_env::ORCH_PLAN.to_string(), pc.name.clone()),
        (agent_env::ORCH_TASK.to_string(), id.clone()),
        (
            agent_env::ORCH_WORKTREE.to_string(),
            workdir.display().to_string(),
        ),
    ];
    // The check runs under its agent's rules, with a TMPDIR of its own.
    if let (Some(base), Some(tmp)) = (pc.sandbox.rules(), check_tmp(pc, t)) {
        if let Err(e) = crate::links::fresh_dir(&tmp) {
            return CheckOutcome::Failed(format!(
                "the check `{shown}` of task `{id}` cannot start: cannot make `{}`: {e}",
                tmp.display()
            ));
        }
        env.push(("TMPDIR".to_string(), tmp.display().to_string()));
        let rules = super::sandbox::attempt_rules(base, &workdir, &tmp);
        argv = super::sandbox::wrap(orch, &rules, argv);
    }
    if let Err(e) = process::runnable(&program, &workdir) {
        return CheckOutcome::Failed(format!(
            "the check `{shown}` of task `{id}` cannot start: {e}"
        ));
    }
    let argv = super::sandbox::in_session(orch, argv);
    let pass = &pc.agent.sandbox.pass_env;
    let mut spawned = match process::spawn_agent(&argv, &workdir, &env, &log, (pass, None)) {
        Ok(s) => s,
        Err(e) => {
            return CheckOutcome::Failed(format!(
                "the check `{shown}` of task `{id}` cannot start: {e}"
            ));
        }
    };
    let pid = spawned.pid;
    let deadline = tokio::time::Instant::now() + pc.timeout;
    let code = loop {
        tokio::select! {
            st = spawned.child.wait() => break st.ok().and_then(|s| s.code()),
            () = tokio::time::sleep_until(deadline) => {
                process::terminate_group(pid, grace, Some(&mut spawned.child)).await;
                process::end_session(pid).await;
                let tail = tail_of(&log, start);
                return CheckOutcome::Failed(format!(
                    "the check `{shown}` timed out after {}{}",
                    format_duration(pc.timeout),
                    lines(&tail)
                ));
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() == Stop::Now {
                    process::terminate_group(pid, grace, Some(&mut spawned.child)).await;
                    process::end_session(pid).await;
                    return CheckOutcome::Stopped;
                }
            }
        }
    };
    process::end_session(pid).await;
    process::log_line(
        &log,
        &format!(
            "=== orch: check ended at {}: {} ===",
            status::timestamp(Utc::now()),
            code.map_or("killed by a signal".to_string(), |c| format!(
                "exit status {c}"
            ))
        ),
    );
    if code == Some(0) {
        return CheckOutcome::Passed;
    }
    let tail = tail_of(&log, start);
    CheckOutcome::Failed(format!(
        "the check `{shown}` failed ({}){}",
        code.map_or("killed by a signal".to_string(), |c| format!(
            "exit status {c}"
        )),
        lines(&tail)
    ))
}

/// The private TMPDIR of task `t`'s check, when it runs confined.
fn check_tmp(pc: &PlanCtx, t: usize) -> Option<std::path::PathBuf> {
    pc.sandbox
        .rules()
        .filter(|_| pc.executor == crate::executor::ExecutorKind::Local)
        .map(|_| super::sandbox::tmp_dir(&pc.name, &format!("{}.check", pc.plan.tasks[t].id), 0))
}

fn lines(tail: &str) -> String {
    if tail.is_empty() {
        " and printed nothing".to_string()
    } else {
        format!("; the end of its output:\n{tail}")
    }
}

/// The last lines the check wrote to `log` after byte `start`, without orch's own lines.
fn tail_of(log: &Path, start: u64) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    let from = usize::try_from(start).unwrap_or(0).min(text.len());
    let text = String::from_utf8_lossy(&text[from..]);
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("=== orch: "))
        .collect();
    let mut tail = kept[kept.len().saturating_sub(TAIL_LINES)..].join("\n");
    if tail.len() > TAIL_CHARS {
        let mut cut = tail.len() - TAIL_CHARS;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = format!("…{}", &tail[cut..]);
    }
    tail.trim_end().to_string()
}
