//! Best of N in `orch status`: the attempts of a task side by side, each with its log and
//! whether it runs or how it ended, read from the log directory (`<task>.a<K>.log`).

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::status::TaskStatus;
use crate::supervisor::attempt_logs::{AttemptLog, attempt_logs};
use crate::workspace::Workspace;

/// The attempts of plan `i`'s task `id` (none without a manifest or a best-of-N log).
fn of_task(ws: &Workspace, i: usize, id: &str) -> Vec<AttemptLog> {
    let Some(m) = &ws.manifest else {
        return Vec::new();
    };
    attempt_logs(&m.log_dir(&ws.plans[i].name), id)
}

/// Text lines for plan `i`'s running tasks that run as best of N: `attempts of 1.1: 1 running,
/// 2 ended (exit status 0)`.
pub(super) fn text(ws: &Workspace, i: usize, status: impl Fn(usize) -> TaskStatus) -> String {
    let mut out = String::new();
    for (t, task) in ws.plans[i].plan.tasks.iter().enumerate() {
        if status(t) != TaskStatus::InProgress {
            continue;
        }
        let attempts = of_task(ws, i, &task.id);
        if attempts.is_empty() {
            continue;
        }
        let parts: Vec<String> = attempts
            .iter()
            .map(|a| match &a.ended {
                None => format!("{} running", a.attempt),
                Some(e) => format!("{} ended ({e})", a.attempt),
            })
            .collect();
        let _ = writeln!(out, "  attempts of {}: {}", task.id, parts.join(", "));
    }
    out
}

/// Adds `attempts` (`attempt`, `state`: `running` or `ended`, `ending`, `log`) to each task of
/// plan `i`'s JSON view that ran as best of N.
pub(super) fn add_json(ws: &Workspace, i: usize, view: &mut Value) {
    let Some(tasks) = view.get_mut("tasks").and_then(Value::as_array_mut) else {
        return;
    };
    for (t, task) in ws.plans[i].plan.tasks.iter().enumerate() {
        let attempts = of_task(ws, i, &task.id);
        if attempts.is_empty() {
            continue;
        }
        let list: Vec<Value> = attempts
            .iter()
            .map(|a| {
                json!({
                    "attempt": a.attempt,
                    "state": if a.ended.is_some() { "ended" } else { "running" },
                    "ending": a.ended,
                    "log": a.log,
                })
            })
            .collect();
        if let Some(obj) = tasks.get_mut(t).and_then(Value::as_object_mut) {
            obj.insert("attempts".into(), Value::Array(list));
        }
    }
}
