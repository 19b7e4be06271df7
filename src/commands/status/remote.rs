//! Attempts on `[[host]]` machines in `orch status`: the host each running task's attempt runs
//! on, from orch's own record of it (written by the attempt's driver here, never by the host).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::status::TaskStatus;
use crate::workspace::Workspace;

fn host_of(state_dir: &Path, plan: &str, id: &str) -> Option<String> {
    crate::executor::ssh::slots::latest_host(state_dir, plan, id)
}

fn state_dir(ws: &Workspace, i: usize) -> Option<PathBuf> {
    let p = &ws.plans[i].status_path;
    p.parent().and_then(Path::parent).map(Path::to_path_buf)
}

/// `  1.1 runs on host build1` for plan `i`'s running tasks on hosts.
pub(super) fn text(ws: &Workspace, i: usize, status: impl Fn(usize) -> TaskStatus) -> String {
    let mut out = String::new();
    let Some(state_dir) = state_dir(ws, i) else {
        return out;
    };
    for (t, task) in ws.plans[i].plan.tasks.iter().enumerate() {
        if status(t) != TaskStatus::InProgress {
            continue;
        }
        if let Some(h) = host_of(&state_dir, &ws.plans[i].name, &task.id) {
            let _ = writeln!(out, "  {} runs on host {}", task.id, h.escape_debug());
        }
    }
    out
}

/// Adds `remote_host` to each running task of plan `i`'s JSON view whose attempt runs on a host.
pub(super) fn add_json(ws: &Workspace, i: usize, view: &mut Value) {
    let Some(state_dir) = state_dir(ws, i) else {
        return;
    };
    let Some(tasks) = view.get_mut("tasks").and_then(Value::as_array_mut) else {
        return;
    };
    for (t, task) in ws.plans[i].plan.tasks.iter().enumerate() {
        let Some(obj) = tasks.get_mut(t).and_then(Value::as_object_mut) else {
            continue;
        };
        if obj.get("status").and_then(Value::as_str) != Some("in_progress") {
            continue;
        }
        if let Some(h) = host_of(&state_dir, &ws.plans[i].name, &task.id) {
            obj.insert("remote_host".into(), json!(h));
        }
    }
}
