//! `orch next`: the tasks that may start now, in the order orch would start them, and why the
//! others wait.

use serde_json::{Value, json};

use super::output::{print_json, println_safe, task_json};
use crate::error::{CliResult, exit};
use crate::graph::{Graph, Waiting, readiness};
use crate::workspace::{self, Selection, Workspace};

pub fn run(sel: &Selection, count: Option<usize>, json_out: bool) -> CliResult<u8> {
    let (sel, status_override) = sel.clone().with_agent_env();
    let ws = workspace::load(&sel)?;
    let graph = ws.require_valid()?;
    let override_path = status_override.filter(|_| sel.plan.is_some());
    let docs = workspace::read_statuses(&ws, override_path.as_deref())?;
    let r = readiness(
        graph,
        &ws.plan_list(),
        &ws.priorities(),
        workspace::state_fn(&ws, &docs),
    );
    let selected = |n: usize| {
        graph
            .task_of(n)
            .is_some_and(|(p, _)| ws.selected.contains(&p))
    };
    let mut ready: Vec<usize> = r.ready.iter().copied().filter(|&n| selected(n)).collect();
    if let Some(c) = count {
        ready.truncate(c);
    }
    let blocked: Vec<&(usize, Vec<Waiting>)> =
        r.blocked.iter().filter(|(n, _)| selected(*n)).collect();

    let task_value = |n: usize| -> Value {
        let Some((p, t)) = graph.task_of(n) else {
            return Value::Null;
        };
        let lp = &ws.plans[p];
        let task = &lp.plan.tasks[t];
        task_json(&lp.name, &lp.plan, task, docs[p].entry(&task.id))
    };
    if json_out {
        let tasks: Vec<Value> = ready.iter().map(|&n| task_value(n)).collect();
        let blocked: Vec<Value> = blocked
            .iter()
            .map(|(n, why)| {
                let mut v = task_value(*n);
                v["waiting_for"] = json!(
                    why.iter()
                        .map(|w| ws.describe_waiting(graph, w))
                        .collect::<Vec<_>>()
                );
                v
            })
            .collect();
        print_json(&json!({ "tasks": tasks, "blocked": blocked }));
    } else {
        if ready.is_empty() {
            println_safe("no task is ready");
        }
        for &n in &ready {
            println_safe(&format!(
                "ready   {}  {}",
                ws.task_label(graph, n),
                desc(&ws, graph, n)
            ));
        }
        for (n, why) in &blocked {
            let reasons: Vec<String> = why.iter().map(|w| ws.describe_waiting(graph, w)).collect();
            println_safe(&format!(
                "waiting {}  ({})",
                ws.task_label(graph, *n),
                reasons.join("; ")
            ));
        }
    }
    Ok(exit::OK)
}

fn desc(ws: &Workspace, g: &Graph, n: usize) -> String {
    let Some((p, t)) = g.task_of(n) else {
        return String::new();
    };
    ws.plans[p].plan.tasks[t].description.clone()
}
