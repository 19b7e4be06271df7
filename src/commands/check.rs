//! `orch check`: every problem of the manifest and plans, then waves and the critical path.

use serde_json::{Value, json};

use super::node_label as label;
use super::output::{eprintln_safe, print_json, write_all_stdout};
use crate::error::{CliResult, exit};
use crate::graph::{Graph, Waves, waves};
use crate::plan::TaskKind;
use crate::workspace::{self, LoadedPlan, Selection, Workspace};

pub(crate) fn run(sel: &Selection, json_out: bool) -> CliResult<u8> {
    let ws = workspace::load_checked(sel)?;
    let errors = ws.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = ws.diagnostics.len() - errors;
    let schedule = ws
        .graph
        .as_ref()
        .filter(|_| errors == 0)
        .map(|g| (g, waves(g)));
    if json_out {
        print_json(&report_json(&ws, errors, warnings, schedule.as_ref()));
    } else {
        print_text(&ws, errors, warnings, schedule.as_ref());
    }
    Ok(if errors == 0 { exit::OK } else { exit::INVALID })
}

/// A plan's (tasks, verification steps).
fn task_counts(p: &LoadedPlan) -> (usize, usize) {
    let tasks = p.plan.tasks.iter().filter(|t| t.kind == TaskKind::Task);
    let tasks = tasks.count();
    (tasks, p.plan.tasks.len() - tasks)
}

/// `orch check --json`.
fn report_json(
    ws: &Workspace,
    errors: usize,
    warnings: usize,
    schedule: Option<&(&Graph, Waves)>,
) -> Value {
    let plans: Vec<_> = ws
        .plans
        .iter()
        .map(|p| {
            let (tasks, verify) = task_counts(p);
            json!({
                "name": p.name,
                "file": p.rel_path,
                "phases": p.plan.phases.len(),
                "tasks": tasks,
                "verify_steps": verify,
            })
        })
        .collect();
    let mut v = json!({
        "valid": errors == 0,
        "errors": errors,
        "warnings": warnings,
        "diagnostics": ws.diagnostics,
        "plans": plans,
    });
    if let Some((g, w)) = schedule {
        v["waves"] = json!(
            w.waves
                .iter()
                .map(|wave| wave.iter().map(|&n| label(ws, g, n)).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        );
        v["critical_path"] = json!(
            w.critical_path
                .iter()
                .map(|&n| label(ws, g, n))
                .collect::<Vec<_>>()
        );
    }
    v
}

/// `orch check`: the diagnostics, the plans, the waves and the critical path, then the verdict.
fn print_text(ws: &Workspace, errors: usize, warnings: usize, schedule: Option<&(&Graph, Waves)>) {
    for d in &ws.diagnostics {
        eprintln_safe(&d.to_string());
    }
    // The report goes out in one piece, all of it, before the verdict goes to stderr: with
    // both streams on one pipe, a line of stdout left half-written (a non-blocking pipe
    // that was full) used to end up after the verdict, which then sat on the critical-path
    // line.
    let mut report = String::new();
    let mut println_safe = |line: &str| {
        report.push_str(line);
        report.push('\n');
    };
    for p in &ws.plans {
        let (tasks, verify) = task_counts(p);
        println_safe(&format!(
            "plan `{}` ({}): {}, {}, {}",
            p.name,
            p.rel_path,
            counted(p.plan.phases.len(), "phase"),
            counted(tasks, "task"),
            counted(verify, "verification step")
        ));
    }
    if let Some((g, w)) = schedule {
        println_safe(&format!(
            "waves ({}; unlimited agents, one unit per task):",
            w.waves.len()
        ));
        for (i, wave) in w.waves.iter().enumerate() {
            let names: Vec<String> = wave.iter().map(|&n| label(ws, g, n)).collect();
            println_safe(&format!("  {:>3}: {}", i + 1, names.join(" ")));
        }
        let cp: Vec<String> = w.critical_path.iter().map(|&n| label(ws, g, n)).collect();
        println_safe(&format!(
            "critical path ({} tasks): {}",
            cp.len(),
            cp.join(" → ")
        ));
    }
    write_all_stdout(crate::untrusted::escaped_lines(&report).as_bytes());
    let verdict = if errors == 0 { "ok" } else { "invalid" };
    eprintln_safe(&format!(
        "{verdict}: {errors} error(s), {warnings} warning(s)"
    ));
}

/// `n` and `what`, plural unless `n` is 1: "1 phase", "3 tasks".
fn counted(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}
