//! `orch status`: per-plan and per-phase progress; `--watch` keeps it on screen.

mod attempts;
mod checks;
mod disk;
mod forecast_text;
mod reload;
mod remote;
mod review;
mod watch;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use super::output::{bar, println_safe, summary_json, task_json};
use crate::agent_output::Usage;
use crate::error::{CliResult, exit};
use crate::plan::Task;
use crate::status::{self, StatusDoc, StatusStates, TaskStatus};
use crate::workspace::{self, LoadedPlan, Selection, Workspace, status_error};

/// Plans with more phases than this get a short phase list unless `--all`.
const PHASES_SHOWN: usize = 12;

/// Running and failed tasks listed per plan unless `--all`.
const TASKS_SHOWN: usize = 10;

pub(crate) fn run(
    sel: &Selection,
    json_out: bool,
    rebuild: bool,
    watch: bool,
    all: bool,
    disk: bool,
) -> CliResult<u8> {
    let (sel, status_override) = sel.clone().with_agent_env();
    let override_path = status_override.filter(|_| sel.plan.is_some());
    // The text names no task's files: the plans are read without them.
    let ws = workspace::keep(load_valid(&sel, json_out)?);
    if rebuild {
        for &i in &ws.selected {
            let p = &ws.plans[i];
            let path = override_path.as_deref().unwrap_or(&p.status_path);
            let (_, backup) =
                status::rebuild(path, &p.plan, &p.rel_path, &p.name).map_err(status_error)?;
            match backup {
                Some(b) => crate::commands::output::eprintln_safe(&format!(
                    "rebuilt `{}` from the plan; the old file is kept as `{}`",
                    path.display(),
                    b.display()
                )),
                None => crate::commands::output::eprintln_safe(&format!(
                    "created `{}` from the plan",
                    path.display()
                )),
            }
        }
    }
    let format = match (json_out, all) {
        (true, _) if watch => Format::JsonLine,
        (true, _) => Format::Json,
        (false, true) => Format::TextAll,
        (false, false) => Format::Text,
    };
    if watch {
        return watch::run(&sel, ws, override_path.as_deref(), format);
    }
    let sizes = if disk { disk_sizes(ws) } else { HashMap::new() };
    let view = render(&sel, ws, override_path.as_deref(), format, &sizes)?;
    if !view.is_empty() {
        println_safe(&view);
    }
    Ok(exit::OK)
}

/// How the status view is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// Text; long plans summarized.
    Text,
    /// Text with every phase and every running or failed task (`--all`).
    TextAll,
    /// Pretty-printed JSON.
    Json,
    /// The same JSON on one line (`--watch --json`).
    JsonLine,
}

/// The last integration test (`orch integrate`, `orch up` with `integrate`), if one ran.
fn last_integration(ws: &Workspace) -> Option<crate::merge::integrate::IntegrationReport> {
    crate::merge::integrate::load_last(&super::forecasts::state_dir(ws)?)
}

/// The last re-plan of the latest `orch up` (`manifest_reloaded`, `manifest_invalid`), as logged.
fn last_reload(ws: &Workspace) -> Option<Value> {
    reload::last_reload(&super::forecasts::state_dir(ws)?)
}

/// `integration: red: lib + app (culprit app): verify exited with status 1`, or green.
fn integration_line(ws: &Workspace) -> Option<String> {
    let report = last_integration(ws)?;
    Some(match &report.failure {
        Some(f) => format!(
            "integration: red: {} (culprit {})\n",
            f.summary(),
            f.culprit
        ),
        None if report.tested.is_empty() => "integration: nothing to test\n".to_string(),
        None => format!(
            "integration: green ({} plan{} on `{}`)\n",
            report.tested.len(),
            if report.tested.len() == 1 { "" } else { "s" },
            report.target
        ),
    })
}

/// The forecast of the selected plans when the repository has a history (the status files read
/// whole for the running tasks' start times); `None` without one or when a file cannot be read.
fn forecast_snapshot(
    ws: &Workspace,
    override_path: Option<&Path>,
) -> Option<super::forecasts::Snapshot> {
    super::forecasts::history_of(ws)?;
    let docs = workspace::read_statuses(ws, override_path).ok()?;
    super::forecasts::Snapshot::of(ws, &docs, &ws.selected, None)
}

/// The workspace for `sel`; invalid plans are an error (exit 2).
fn load_valid(sel: &Selection, files: bool) -> CliResult<Workspace> {
    let ws = if files {
        workspace::load(sel)?
    } else {
        workspace::load_without_files(sel)?
    };
    if ws.has_errors() {
        return Err(workspace::invalid_input(&ws.diagnostics));
    }
    Ok(ws)
}

/// `--disk`: what each selected plan's worktrees take on disk (bytes), by plan name. A plan given
/// by path (no manifest) has none.
fn disk_sizes(ws: &Workspace) -> HashMap<String, u64> {
    let Some(m) = &ws.manifest else {
        return HashMap::new();
    };
    ws.selected
        .iter()
        .map(|&i| {
            let name = &ws.plans[i].name;
            (name.clone(), disk::disk_bytes(&disk::plan_trees(m, name)))
        })
        .collect()
}

/// What `orch status` prints, without the final newline, with each plan's worktree disk use
/// (`--disk`) where `disk` has it.
fn render(
    sel: &Selection,
    ws: &Workspace,
    override_path: Option<&Path>,
    format: Format,
    disk: &HashMap<String, u64>,
) -> CliResult<String> {
    if matches!(format, Format::Text | Format::TextAll) {
        // The text needs each task's status (and error) only: no full entries, no reconcile.
        let states = workspace::read_states(ws, override_path)?
            .into_iter()
            .zip(&ws.plans)
            .map(|(s, p)| s.with_run(run_live(p)))
            .collect::<Vec<_>>();
        let states = workspace::keep(states);
        // The forecasts, once there is a history (they need the running tasks' start times).
        let snapshot = forecast_snapshot(ws, override_path);
        let mut out = String::new();
        for &i in &ws.selected {
            push_text(
                &mut out,
                &ws.plans[i],
                &states[i],
                format == Format::TextAll,
            );
            out.push_str(&attempts::text(ws, i, |t| {
                states[i].status(&ws.plans[i].plan.tasks[t])
            }));
            out.push_str(&remote::text(ws, i, |t| {
                states[i].status(&ws.plans[i].plan.tasks[t])
            }));
            if let Some(snap) = &snapshot {
                out.push_str(&forecast_text::plan_line(snap, ws, i));
            }
            out.push_str(&review::text(ws, i));
            if let Some(bytes) = disk.get(&ws.plans[i].name) {
                let _ = writeln!(
                    out,
                    "  disk: {} in its worktrees (without the shared git objects)",
                    disk::human(*bytes)
                );
            }
        }
        if let Some(line) = integration_line(ws) {
            out.push_str(&line);
        }
        if let Some(snap) = &snapshot {
            out.push_str(&forecast_text::run_line(snap, ws));
        }
        if let (Some(v), Some(m)) = (last_reload(ws), &ws.manifest) {
            out.push_str(&reload::line(&v, &m.root));
        }
        return Ok(out.trim_end_matches('\n').to_string());
    }
    let docs = workspace::read_statuses(ws, override_path)?;
    // Each attempt's times and its check's, from the event log.
    let times = super::forecasts::state_dir(ws)
        .map(|d| checks::read(&d))
        .unwrap_or_default();
    let mut views: Vec<Value> = ws
        .selected
        .iter()
        .map(|&i| {
            let mut v = plan_json(&ws.plans[i], &docs[i]);
            attempts::add_json(ws, i, &mut v);
            checks::add_json(&times, &ws.plans[i].name, &mut v);
            remote::add_json(ws, i, &mut v);
            review::add_json(ws, i, &mut v);
            if let Some(bytes) = disk.get(&ws.plans[i].name) {
                v["disk_bytes"] = json!(bytes);
            }
            v
        })
        .collect();
    let mut v = if sel.plan.is_some() && views.len() == 1 {
        views.remove(0)
    } else {
        // What every plan shown spent, all runs.
        let usage = ws
            .selected
            .iter()
            .fold(Usage::default(), |a, &i| a.plus(&plan_usage(&docs[i])));
        let mut v = json!({ "plans": views, "usage": usage });
        if let Some(rec) = ws
            .selected
            .first()
            .and_then(|&i| sandbox_record(&ws.plans[i]))
        {
            v["sandbox"] = rec.get("sandbox").cloned().unwrap_or(Value::Null);
            if let Some(abi) = rec.get("sandbox_abi") {
                v["sandbox_abi"] = abi.clone();
            }
        }
        if let Some(state_dir) = ws.selected.first().and_then(|&i| {
            ws.plans[i]
                .status_path
                .parent()
                .and_then(std::path::Path::parent)
        }) {
            crate::supervisor::network::add_run_json(state_dir, &mut v);
        }
        v
    };
    // The last integration test, at the top of either view (one plan's or all).
    if let Some(report) = last_integration(ws) {
        v["integration"] = super::integrate::report_json(&report);
    }
    // Whether one runs now (`orch integrate`, or the preview of a running `orch up`).
    if let Some(dir) = super::forecasts::state_dir(ws) {
        v["integration_running"] = json!(crate::merge::integrate::running(&dir));
    }
    // The last re-plan of the latest run, likewise: the event as logged.
    if let Some(reload) = last_reload(ws) {
        v["reload"] = reload;
    }
    // The forecasts from the history, once there is one.
    if let Some(snap) = super::forecasts::Snapshot::of(ws, &docs, &ws.selected, None) {
        forecast_text::add_json(
            &mut v,
            &snap,
            ws,
            sel.plan.is_some() && ws.selected.len() == 1,
        );
    }
    let text = if format == Format::JsonLine {
        serde_json::to_string(&v)
    } else {
        serde_json::to_string_pretty(&v)
    };
    // Nothing raw that JSON's own escaping leaves (C1 and bidi controls of an agent's words).
    Ok(crate::untrusted::json_safe(
        text.unwrap_or_else(|_| "null".into()),
    ))
}

/// Whether an `orch up` runs in plan `p`'s state directory (a task completed without its
/// commit is then checking).
fn run_live(p: &LoadedPlan) -> bool {
    p.status_path
        .parent()
        .and_then(Path::parent)
        .is_some_and(|d| crate::supervisor::lock::running(d).is_some())
}

fn plan_json(p: &LoadedPlan, doc: &StatusDoc) -> Value {
    let live = run_live(p);
    let tasks: Vec<Value> = p
        .plan
        .tasks
        .iter()
        .map(|t| task_json(&p.name, &p.plan, t, doc.entry(&t.id), live))
        .collect();
    let progress = phase_progress(p, |t| {
        doc.entry(&t.id).map_or(TaskStatus::Pending, |e| e.status)
    });
    let phases: Vec<Value> = p
        .plan
        .phases
        .iter()
        .zip(&progress)
        .map(|(ph, (done, total))| {
            json!({ "number": ph.number, "title": ph.title, "done": done, "total": total })
        })
        .collect();
    let mut v = json!({
        "plan": p.name,
        "title": p.plan.title,
        "file": p.rel_path,
        "status_file": p.status_path,
        "repo": p.repo.as_deref().unwrap_or(crate::manifest::HOME_REPO),
        "summary": summary_json(doc, live),
        "phases": phases,
        "tasks": tasks,
        "usage": plan_usage(doc),
    });
    let held = doc.extra.get(crate::status::PAUSED_KEY);
    v["plan_paused"] = Value::Bool(held.is_some());
    if let Some(h) = held {
        v["plan_paused_at"] = h.get("at").cloned().unwrap_or(Value::Null);
    }
    // The last `orch merge` of the plan, as its status file records it (`resolvedBy`: the
    // agent that resolved its conflict, or whose resolution failed).
    if let Some(m) = &doc.orch_merge {
        v["merge"] = serde_json::to_value(m).unwrap_or(Value::Null);
    }
    if let Some(paused) = doc.extra.get("orchPaused").filter(|p| pause_ahead(p)) {
        v["paused"] = paused.clone();
    }
    // How the last `orch up` ran the plan's agents: `on`, `off`, `unavailable`.
    if let Some(s) = sandbox_record(p).and_then(|r| r.get("plans")?.get(&p.name).cloned()) {
        v["sandbox"] = s;
    }
    // Its network in the last run, and each task's refused connections.
    if let Some(state_dir) = p.status_path.parent().and_then(std::path::Path::parent) {
        crate::supervisor::network::add_plan_json(state_dir, &p.name, &mut v);
    }
    v
}

/// What a plan's agents used: its tasks' and its resolvers' (`resolve`).
fn plan_usage(doc: &StatusDoc) -> Usage {
    doc.entries()
        .filter_map(|e| e.orch_usage.as_ref())
        .fold(crate::merge::resolve::resolvers_usage(doc), |a, u| {
            a.plus(&u.usage())
        })
}

/// `<state_dir>/sandbox.json`, written by the last `orch up` (`supervisor::sandbox::record`).
fn sandbox_record(p: &LoadedPlan) -> Option<Value> {
    let state_dir = p.status_path.parent()?.parent()?;
    let record = crate::state_layout::SANDBOX.at(state_dir);
    let text = crate::untrusted::read::whole(&record, crate::untrusted::read::STATE).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Whether an `orchPaused` record still holds (its `until` is ahead).
fn pause_ahead(p: &Value) -> bool {
    p.get("until")
        .and_then(Value::as_str)
        .and_then(status::parse_timestamp)
        .is_some_and(|t| t > chrono::Utc::now())
}

/// Each phase number's place in the plan's phases (the first phase of a number).
fn phase_index(p: &LoadedPlan) -> HashMap<u32, usize> {
    let phases = p.plan.phases.iter().enumerate().rev();
    phases.map(|(i, ph)| (ph.number, i)).collect()
}

/// (finished, total) tasks and verification steps of each phase of the plan, in phase order;
/// skipped counts as finished. One pass over the tasks.
fn phase_progress(p: &LoadedPlan, status_of: impl Fn(&Task) -> TaskStatus) -> Vec<(usize, usize)> {
    let at = phase_index(p);
    let mut out = vec![(0, 0); p.plan.phases.len()];
    for t in &p.plan.tasks {
        if let Some(&i) = at.get(&t.phase) {
            out[i].1 += 1;
            if status_of(t).is_finished() {
                out[i].0 += 1;
            }
        }
    }
    out
}

/// The in-progress and failed tasks of each phase (indices into `plan.tasks`), in phase order.
fn active_tasks(p: &LoadedPlan, states: &StatusStates) -> Vec<Vec<usize>> {
    let at = phase_index(p);
    let mut out = vec![Vec::new(); p.plan.phases.len()];
    for (ti, t) in p.plan.tasks.iter().enumerate() {
        let st = states.status(t);
        if matches!(
            st,
            TaskStatus::InProgress | TaskStatus::Failed | TaskStatus::NeedsInput
        ) && let Some(&i) = at.get(&t.phase)
        {
            out[i].push(ti);
        }
    }
    out
}

fn task_line(out: &mut String, p: &LoadedPlan, states: &StatusStates, ti: usize) {
    let t = &p.plan.tasks[ti];
    let entry = states.entry(&t.id);
    let st = states.status(t);
    let question = entry
        .filter(|_| st == TaskStatus::NeedsInput)
        .and_then(|e| e.question.as_deref())
        .map(|q| {
            format!(
                "{q}\n          (`orch answer {} {} \"…\"` answers it)",
                p.name, t.id
            )
        });
    let extra = question
        .or_else(|| entry.and_then(|e| e.last_error.clone().or(e.error.clone())))
        .map(|e| {
            // A cause of several lines (a check's output): indented, at most 8 lines.
            let lines: Vec<&str> = e.lines().filter(|l| !l.trim().is_empty()).collect();
            let more = lines.len().saturating_sub(8);
            let mut s = format!(" — {}", lines[..lines.len().min(8)].join("\n          "));
            if more > 0 {
                s.push_str(&format!("\n          … {more} more line(s)"));
            }
            s
        })
        .unwrap_or_default();
    let st = if states.checking(t) {
        "checking".to_string()
    } else {
        st.to_string()
    };
    let _ = writeln!(
        out,
        "      {st} {}{} {}{extra}",
        t.id,
        story_label(t),
        crate::plan::plain_description(&t.description)
    );
}

/// ` [US1]` (` [US3/US5]`) after a Spec Kit task's id, when it has a story; else nothing.
pub(crate) fn story_label(t: &Task) -> String {
    match t.speckit.as_deref().map(|s| s.stories.join("/")) {
        Some(s) if !s.is_empty() => format!(" [{s}]"),
        _ => String::new(),
    }
}

/// One plan in text: its counts and bar, what it used, whether it or its agent is paused, then
/// its phases ([`push_phases`]).
fn push_text(out: &mut String, p: &LoadedPlan, states: &StatusStates, all: bool) {
    let mut c = status::Summary::default();
    for t in &p.plan.tasks {
        c.total_tasks += 1;
        *c.count_mut(states.status(t)) += 1;
    }
    let finished = (c.completed + c.skipped) as usize;
    let _ = writeln!(
        out,
        "{}{} — {} ({})\n  {} {finished}/{} done, {} running, {} failed, {} skipped{}",
        p.name,
        p.repo
            .as_ref()
            .map(|r| format!(" [repository {r}]"))
            .unwrap_or_default(),
        p.plan.title,
        p.rel_path,
        bar(finished, c.total_tasks as usize, 20),
        c.total_tasks,
        c.in_progress,
        c.failed,
        c.skipped,
        if c.needs_input > 0 {
            format!(", {} needs input", c.needs_input)
        } else {
            String::new()
        }
    );
    let usage = p
        .plan
        .tasks
        .iter()
        .filter_map(|t| {
            states
                .entry(&t.id)
                .and_then(|e| e.usage.as_deref().copied())
        })
        .fold(Usage::default(), |a, u| a.plus(&u));
    if usage.tokens() > 0 || usage.cost_micro_usd.is_some() {
        let _ = writeln!(out, "  used: {}", usage.describe());
    }
    if let Some(held) = &states.plan_paused {
        let _ = writeln!(
            out,
            "  paused (since {}): nothing new of it starts; `orch resume {}` goes on",
            held.get("at").and_then(Value::as_str).unwrap_or("?"),
            p.name
        );
    }
    // A resolution by agent (`resolve`): what the plan's last merge says of it.
    if let Some(m) = &states.merge
        && let Some(agent) = m.get("resolvedBy").and_then(Value::as_str)
    {
        let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("");
        let line = if s("state") == "merged" {
            format!(
                "  merged into `{}`: its conflict resolved by agent `{agent}`",
                s("target")
            )
        } else {
            format!("  not merged ({}): {}", s("state"), s("reason"))
        };
        let _ = writeln!(out, "{line}");
    }
    if let Some(paused) = states.paused.as_ref().filter(|p| pause_ahead(p)) {
        let s = |k: &str| paused.get(k).and_then(Value::as_str).unwrap_or("");
        let _ = writeln!(
            out,
            "  agent `{}` paused at a usage limit until {}: {}",
            s("agent"),
            s("until"),
            s("reason").lines().next().unwrap_or("")
        );
    }
    push_phases(out, p, states, all);
}

/// A plan's phases, each with its running and failed tasks. Unless `all`: a plan with more than
/// [`PHASES_SHOWN`] phases shows its finished leading phases as one line, the next phases, and
/// the rest as one line; at most [`TASKS_SHOWN`] running or failed tasks are listed.
fn push_phases(out: &mut String, p: &LoadedPlan, states: &StatusStates, all: bool) {
    let progress = phase_progress(p, |t| states.status(t));
    let active = active_tasks(p, states);
    let phases = &p.plan.phases;
    let (first, shown) = if all || phases.len() <= PHASES_SHOWN {
        (0, phases.len())
    } else {
        let lead = progress
            .iter()
            .take_while(|(done, total)| done == total)
            .count()
            .min(phases.len() - 1);
        (lead, (phases.len() - lead).min(PHASES_SHOWN - 2))
    };
    if first > 0 {
        let tasks: usize = progress[..first].iter().map(|(_, t)| t).sum();
        let _ = writeln!(
            out,
            "  {} {tasks:>3}/{tasks:<3} Phases {}–{} done",
            bar(1, 1, 10),
            phases[0].number,
            phases[first - 1].number
        );
    }
    let mut listed = 0;
    let mut hidden = 0;
    for i in 0..phases.len() {
        let visible = (first..first + shown).contains(&i);
        if visible {
            let (done, total) = progress[i];
            let _ = writeln!(
                out,
                "  {} {done:>3}/{total:<3} {}",
                bar(done, total, 10),
                phases[i].label()
            );
        }
        for &ti in &active[i] {
            if all || (visible && listed < TASKS_SHOWN) {
                task_line(out, p, states, ti);
                listed += 1;
            } else {
                hidden += 1;
            }
        }
    }
    let rest = first + shown..phases.len();
    if !rest.is_empty() {
        let done: usize = progress[rest.clone()].iter().map(|(d, _)| d).sum();
        let total: usize = progress[rest.clone()].iter().map(|(_, t)| t).sum();
        let _ = writeln!(
            out,
            "  {} {done:>3}/{total:<3} Phases {}–{} ({} more phases)",
            bar(done, total, 10),
            phases[rest.start].number,
            phases[rest.end - 1].number,
            rest.len()
        );
    }
    if hidden > 0 {
        let _ = writeln!(out, "      … {hidden} more running or failed task(s)");
    }
    if first > 0 || !rest.is_empty() || hidden > 0 {
        let _ = writeln!(out, "  (`orch status --all` lists every phase and task)");
    }
}
