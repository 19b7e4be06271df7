//! Attempts on `[[host]]` machines in `orch status`: the host each running task's attempt runs
//! on, from orch's own record of it (written by the attempt's driver here, never by the host);
//! each host of the plan that its last probe found unable to run agents, with the cause and
//! the fix (orch's record of that probe, [`crate::executor::ssh::usable`]); and each host of the
//! plan lost (it did not answer, and nothing reached it since: orch's record,
//! [`crate::executor::ssh::slots::lost`]), since when and why.

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

/// Each host of plan `i` refused by its last probe: its name and why (with the fix).
fn refused(ws: &Workspace, i: usize, state_dir: &Path) -> Vec<(String, String)> {
    let Some(entry) = ws.manifest.as_ref().and_then(|m| m.plan(&ws.plans[i].name)) else {
        return Vec::new();
    };
    entry
        .hosts
        .iter()
        .filter_map(|h| {
            crate::executor::ssh::usable::recorded(state_dir, h)
                .flatten()
                .map(|why| (h.clone(), why))
        })
        .collect()
}

/// Each host of plan `i` lost: its name, since when (seconds since the epoch, 0: unknown) and
/// why (escaped when recorded).
fn lost(ws: &Workspace, i: usize, state_dir: &Path) -> Vec<(String, u64, String)> {
    let Some(entry) = ws.manifest.as_ref().and_then(|m| m.plan(&ws.plans[i].name)) else {
        return Vec::new();
    };
    if entry.executor != crate::executor::ExecutorKind::Ssh {
        return Vec::new();
    }
    entry
        .hosts
        .iter()
        .filter_map(|h| {
            crate::executor::ssh::slots::lost(state_dir, h).map(|l| (h.clone(), l.since, l.cause))
        })
        .collect()
}

fn since_local(secs: u64) -> Option<String> {
    let t = chrono::DateTime::from_timestamp(i64::try_from(secs).ok()?, 0)?;
    Some(
        t.with_timezone(&chrono::Local)
            .format("%H:%M:%S")
            .to_string(),
    )
}

/// `  1.1 runs on host build1` for plan `i`'s running tasks on hosts, `  host build3
/// cannot run agents: …` for each of its hosts refused by its last probe, and `  host build2
/// lost since 10:02:03: …` for each lost.
pub(super) fn text(ws: &Workspace, i: usize, status: impl Fn(usize) -> TaskStatus) -> String {
    let mut out = String::new();
    let Some(state_dir) = state_dir(ws, i) else {
        return out;
    };
    for (_, why) in refused(ws, i, &state_dir) {
        let _ = writeln!(out, "  {}", crate::untrusted::text::escaped(&why));
    }
    for (h, since, cause) in lost(ws, i, &state_dir) {
        let when = since_local(since)
            .filter(|_| since > 0)
            .map(|t| format!(" since {t}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  host {} lost{when}: {}; its attempts run again when it answers",
            h.escape_debug(),
            crate::untrusted::text::escaped(if cause.is_empty() {
                "it does not answer"
            } else {
                &cause
            })
        );
    }
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

/// Adds `remote_host` to each running task of plan `i`'s JSON view whose attempt runs on a
/// host, `hosts_refused` (`[{"host", "why"}]`) when a host of the plan was refused by its
/// last probe, and `hosts_lost` (`[{"host", "since", "cause"}]`) when one is lost.
pub(super) fn add_json(ws: &Workspace, i: usize, view: &mut Value) {
    let Some(state_dir) = state_dir(ws, i) else {
        return;
    };
    let lost = lost(ws, i, &state_dir);
    if !lost.is_empty()
        && let Some(obj) = view.as_object_mut()
    {
        obj.insert(
            "hosts_lost".into(),
            json!(
                lost.iter()
                    .map(|(h, since, cause)| json!({
                        "host": h,
                        "since": i64::try_from(*since)
                            .ok()
                            .filter(|s| *s > 0)
                            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                        "cause": cause,
                    }))
                    .collect::<Vec<_>>()
            ),
        );
    }
    let refused = refused(ws, i, &state_dir);
    if !refused.is_empty()
        && let Some(obj) = view.as_object_mut()
    {
        obj.insert(
            "hosts_refused".into(),
            json!(
                refused
                    .iter()
                    .map(|(h, why)| json!({"host": h, "why": why}))
                    .collect::<Vec<_>>()
            ),
        );
    }
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
