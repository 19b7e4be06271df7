//! `orch status`: per-plan and per-phase progress; `--watch` keeps it on screen.

mod watch;

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use super::output::{bar, println_safe, summary_json, task_json};
use crate::error::{CliResult, exit};
use crate::status::{self, StatusDoc, TaskStatus};
use crate::workspace::{self, LoadedPlan, Selection, Workspace, status_error};

pub fn run(sel: &Selection, json_out: bool, rebuild: bool, watch: bool) -> CliResult<u8> {
    let (sel, status_override) = sel.clone().with_agent_env();
    let override_path = status_override.filter(|_| sel.plan.is_some());
    let ws = load_valid(&sel)?;
    if rebuild {
        for &i in &ws.selected {
            let p = &ws.plans[i];
            let path = override_path.as_deref().unwrap_or(&p.status_path);
            let (_, backup) =
                status::rebuild(path, &p.plan, &p.rel_path, &p.name).map_err(status_error)?;
            match backup {
                Some(b) => eprintln!(
                    "rebuilt `{}` from the plan; the old file is kept as `{}`",
                    path.display(),
                    b.display()
                ),
                None => eprintln!("created `{}` from the plan", path.display()),
            }
        }
    }
    if watch {
        let format = if json_out {
            Format::JsonLine
        } else {
            Format::Text
        };
        return watch::run(&sel, &ws, override_path.as_deref(), format);
    }
    let format = if json_out { Format::Json } else { Format::Text };
    let view = render(&sel, &ws, override_path.as_deref(), format)?;
    if !view.is_empty() {
        println_safe(&view);
    }
    Ok(exit::OK)
}

/// How the status view is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Text,
    /// Pretty-printed JSON.
    Json,
    /// The same JSON on one line (`--watch --json`).
    JsonLine,
}

/// The workspace for `sel`; invalid plans are an error (exit 2).
fn load_valid(sel: &Selection) -> CliResult<Workspace> {
    let ws = workspace::load(sel)?;
    if ws.has_errors() {
        return Err(workspace::invalid_input(&ws.diagnostics));
    }
    Ok(ws)
}

/// What `orch status` prints, without the final newline.
fn render(
    sel: &Selection,
    ws: &Workspace,
    override_path: Option<&Path>,
    format: Format,
) -> CliResult<String> {
    let docs = workspace::read_statuses(ws, override_path)?;
    if format == Format::Text {
        let mut out = String::new();
        for &i in &ws.selected {
            push_text(&mut out, &ws.plans[i], &docs[i]);
        }
        return Ok(out.trim_end_matches('\n').to_string());
    }
    let mut views: Vec<Value> = ws
        .selected
        .iter()
        .map(|&i| plan_json(&ws.plans[i], &docs[i]))
        .collect();
    let v = if sel.plan.is_some() && views.len() == 1 {
        views.remove(0)
    } else {
        json!({ "plans": views })
    };
    let text = if format == Format::JsonLine {
        serde_json::to_string(&v)
    } else {
        serde_json::to_string_pretty(&v)
    };
    Ok(text.unwrap_or_else(|_| "null".into()))
}

fn plan_json(p: &LoadedPlan, doc: &StatusDoc) -> Value {
    let tasks: Vec<Value> = p
        .plan
        .tasks
        .iter()
        .map(|t| task_json(&p.name, &p.plan, t, doc.entry(&t.id)))
        .collect();
    let phases: Vec<Value> = p
        .plan
        .phases
        .iter()
        .map(|ph| {
            let (done, total) = phase_progress(p, doc, ph.number);
            json!({ "number": ph.number, "title": ph.title, "done": done, "total": total })
        })
        .collect();
    json!({
        "plan": p.name,
        "title": p.plan.title,
        "file": p.rel_path,
        "status_file": p.status_path,
        "summary": summary_json(doc),
        "phases": phases,
        "tasks": tasks,
    })
}

/// (finished, total) tasks and verification steps of a phase; skipped counts as finished.
fn phase_progress(p: &LoadedPlan, doc: &StatusDoc, phase: u32) -> (usize, usize) {
    let mut done = 0;
    let mut total = 0;
    for t in p.plan.tasks.iter().filter(|t| t.phase == phase) {
        total += 1;
        if doc.entry(&t.id).is_some_and(|e| e.status.is_finished()) {
            done += 1;
        }
    }
    (done, total)
}

fn push_text(out: &mut String, p: &LoadedPlan, doc: &StatusDoc) {
    let c = status::counts_all(doc);
    let finished = (c.completed + c.skipped) as usize;
    let _ = writeln!(
        out,
        "{} — {} ({})\n  {} {finished}/{} done, {} running, {} failed, {} skipped",
        p.name,
        p.plan.title,
        p.rel_path,
        bar(finished, c.total_tasks as usize, 20),
        c.total_tasks,
        c.in_progress,
        c.failed,
        c.skipped
    );
    for ph in &p.plan.phases {
        let (done, total) = phase_progress(p, doc, ph.number);
        let _ = writeln!(
            out,
            "  {} {done:>3}/{total:<3} {}",
            bar(done, total, 10),
            ph.label()
        );
        for t in p.plan.tasks.iter().filter(|t| t.phase == ph.number) {
            let st = doc.entry(&t.id).map_or(TaskStatus::Pending, |e| e.status);
            if matches!(st, TaskStatus::InProgress | TaskStatus::Failed) {
                let extra = doc
                    .entry(&t.id)
                    .and_then(|e| e.last_error.clone().or(e.error.clone()))
                    .map(|e| format!(" — {e}"))
                    .unwrap_or_default();
                let _ = writeln!(out, "      {st:<11} {} {}{extra}", t.id, t.description);
            }
        }
    }
}
