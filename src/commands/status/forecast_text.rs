//! The forecasts in `orch status`: a line per plan and one for the run in the text;
//! `forecast` objects in the JSON (the run's at the top, each plan's, each pending or running
//! task's).

use serde_json::Value;

use crate::commands::forecasts::Snapshot;
use crate::forecast::{self, TaskNow};
use crate::workspace::Workspace;

/// At most this many running tasks' ranges on a plan's line.
const RUNNING_SHOWN: usize = 5;

/// `  forecast: ends 15:10–15:40, $3.20–5.10 more; running 1.2 2m–4m` (empty when the plan has
/// nothing left).
pub(crate) fn plan_line(snap: &Snapshot, ws: &Workspace, p: usize) -> String {
    let Some(r) = snap.forecast.plans.get(p) else {
        return String::new();
    };
    let left = snap.state[p]
        .iter()
        .any(|s| matches!(s, TaskNow::Pending { .. } | TaskNow::Running { .. }));
    if !left {
        return String::new();
    }
    let running: Vec<String> = snap.state[p]
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, TaskNow::Running { .. }))
        .take(RUNNING_SHOWN)
        .filter_map(|(t, _)| {
            let words = snap.task_words(p, t)?;
            Some(format!("{} {words}", ws.plans[p].plan.tasks[t].id))
        })
        .collect();
    let running = if running.is_empty() {
        String::new()
    } else {
        format!("; running {}", running.join(", "))
    };
    format!(
        "  forecast: {}{running}\n",
        forecast::range_words(snap.at, r)
    )
}

/// `forecast: all plans ends 15:10–15:40, $3.20–5.10 more (200 runs over the history)`.
pub(crate) fn run_line(snap: &Snapshot, ws: &Workspace) -> String {
    let left = ws.selected.iter().any(|&p| {
        snap.state[p]
            .iter()
            .any(|s| matches!(s, TaskNow::Pending { .. } | TaskNow::Running { .. }))
    });
    if !left {
        return String::new();
    }
    format!(
        "forecast: all plans {} ({} simulated runs over the history; `orch history --backtest` checks it)\n",
        forecast::range_words(snap.at, &snap.forecast.run),
        snap.forecast.runs
    )
}

/// Adds the `forecast` objects to `orch status --json`'s value `v` (one plan's view when
/// `single`).
pub(crate) fn add_json(v: &mut Value, snap: &Snapshot, ws: &Workspace, single: bool) {
    let plan_view = |view: &mut Value, p: usize| {
        if let Some(r) = snap.forecast.plans.get(p) {
            view["forecast"] = snap.range_json(r);
        }
        let Some(tasks) = view.get_mut("tasks").and_then(Value::as_array_mut) else {
            return;
        };
        for (t, task) in tasks.iter_mut().enumerate() {
            if let Some(f) = snap.task_json(p, t) {
                task["forecast"] = f;
            }
        }
    };
    if single {
        if let Some(&p) = ws.selected.first() {
            plan_view(v, p);
        }
        return;
    }
    v["forecast"] = snap.range_json(&snap.forecast.run);
    if let Some(plans) = v.get_mut("plans").and_then(Value::as_array_mut) {
        for (view, &p) in plans.iter_mut().zip(&ws.selected) {
            plan_view(view, p);
        }
    }
}
