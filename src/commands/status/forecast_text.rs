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
    if let Some(asked) = snap.asked.get(p).filter(|a| !a.is_empty()) {
        // No end until a person answers: a time here would be a promise.
        return format!(
            "  forecast: {}; no end before it\n",
            forecast::asked_words(&ws.plans[p].name, asked)
        );
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
    let waiting: Vec<String> = ws
        .selected
        .iter()
        .flat_map(|&p| {
            let name = &ws.plans[p].name;
            snap.asked
                .get(p)
                .into_iter()
                .flatten()
                .map(move |id| format!("{name} {id}"))
        })
        .collect();
    if !waiting.is_empty() {
        return format!(
            "forecast: all plans: no end before the answers to {} (`orch answer PLAN ID TEXT`)\n",
            waiting.join(", ")
        );
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
            // Its times hold only if the answers came now.
            view["forecast"]["waiting_for_answers"] = waiting_json(snap, ws, &[p]);
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
    v["forecast"]["waiting_for_answers"] = waiting_json(snap, ws, &ws.selected);
    if let Some(plans) = v.get_mut("plans").and_then(Value::as_array_mut) {
        for (view, &p) in plans.iter_mut().zip(&ws.selected) {
            plan_view(view, p);
        }
    }
}

/// `[{plan, task}]`: the tasks of `plans` waiting for a person's answer (the forecast's times
/// hold only if the answers came now).
fn waiting_json(snap: &Snapshot, ws: &Workspace, plans: &[usize]) -> Value {
    plans
        .iter()
        .flat_map(|&p| {
            let name = ws.plans[p].name.clone();
            snap.asked
                .get(p)
                .into_iter()
                .flatten()
                .map(move |id| serde_json::json!({"plan": name, "task": id}))
        })
        .collect::<Vec<_>>()
        .into()
}
