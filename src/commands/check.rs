//! `orch check`: every problem of the manifest and plans, then waves and the critical path.

use serde_json::{Value, json};

use super::node_label as label;
use super::output::{eprintln_safe, print_json, write_all_stdout};

use crate::error::{CliResult, exit};
use crate::graph::{Graph, Waves, waves};
use crate::manifest::{Gate, files_of};
use crate::plan::TaskKind;
use crate::workspace::{self, LoadedPlan, Selection, Workspace};

pub(crate) fn run(sel: &Selection, json_out: bool) -> CliResult<u8> {
    let mut ws = workspace::load_checked(sel)?;
    // What `orch up` refuses of a plan's network where it runs (exit 6), said here too.
    if let Some(m) = &ws.manifest {
        let refused =
            crate::supervisor::network::check_diagnostics(m, &|e| crate::executor::of_plan(m, e));
        ws.diagnostics.extend(refused);
    }
    let errors = ws.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = ws.diagnostics.len() - errors;
    let schedule = ws
        .graph
        .as_ref()
        .filter(|_| errors == 0)
        .map(|g| (g, waves(g)));
    let gates = gates(&ws);
    if json_out {
        let mut v = report_json(&ws, errors, warnings, schedule.as_ref());
        v["gates"] = json!(
            gates
                .iter()
                .map(|g| json!({
                    "key": g.gate.key,
                    "plans": g.gate.plans,
                    "command": g.gate.argv,
                    "protects": g.protects,
                    "free": g.free,
                    "unknown_grammar": g.unknown_grammar,
                    "loads": g.loads.iter().map(|l| json!({"path": l.path, "why": l.why})).collect::<Vec<_>>(),
                }))
                .collect::<Vec<_>>()
        );
        v["protected_anywhere"] = json!(crate::manifest::anywhere_patterns());
        print_json(&v);
    } else {
        print_text(&ws, errors, warnings, schedule.as_ref(), &gates);
    }
    Ok(if errors == 0 { exit::OK } else { exit::INVALID })
}

/// The globs of plan `name`'s `allow_protected` (the protected paths its tasks may change all
/// the same; empty: none, or no manifest).
fn allowed_of<'w>(ws: &'w Workspace, name: &str) -> &'w [String] {
    ws.manifest
        .as_ref()
        .and_then(|m| m.plan(name))
        .and_then(|e| e.allow_protected.as_ref())
        .map_or(&[], |a| a.patterns.as_slice())
}

/// A plan's (tasks, verification steps).
fn task_counts(p: &LoadedPlan) -> (usize, usize) {
    let tasks = p.plan.tasks.iter().filter(|t| t.kind == TaskKind::Task);
    let tasks = tasks.count();
    (tasks, p.plan.tasks.len() - tasks)
}

/// A gate or hook command line with the files of the repository it names: those protected
/// from every task (its program and script, and data that `protect` names; only a plan's
/// `allow_protected` lets its tasks change one), and the data handed to it that is the tasks'
/// to change.
struct GateFiles {
    gate: Gate,
    protects: Vec<String>,
    free: Vec<String>,
    /// Of `protects`, those protected only because orch does not know the grammar of the
    /// program they are handed to (perhaps data: a plan's `allow_protected` lets its tasks
    /// change one).
    unknown_grammar: Vec<String>,
    /// The code it loads without naming it (beside its script, a `-m` package, makefiles, a
    /// package runner's rc files), protected as its script is, each with why.
    loads: Vec<crate::manifest::Loaded>,
}

/// The gates of the manifest that name files of the repository (none without a manifest).
fn gates(ws: &Workspace) -> Vec<GateFiles> {
    let Some(m) = &ws.manifest else {
        return Vec::new();
    };
    let Ok(root) = workspace::repo_root(m) else {
        return Vec::new();
    };
    let file_of = |w: &str| -> Option<String> {
        let s = crate::manifest::repo_path_of(w, &[&root])?;
        std::fs::symlink_metadata(root.join(&s))
            .is_ok_and(|m| !m.is_dir())
            .then_some(s)
    };
    let plans = ws.plans.iter().map(|p| (p.name.as_str(), &p.plan));
    m.gates(plans)
        .into_iter()
        .filter_map(|gate| {
            let (mut protects, mut data) = files_of(&gate.argv, &file_of);
            // A `[[notify]]` hook runs unconfined: what it is handed is protected too.
            if gate.key == "notify" {
                protects.append(&mut data);
            }
            // `protect` of the plans the gate serves (all of them for the run's own).
            let kept_by = |f: &str| {
                m.plans
                    .iter()
                    .filter(|e| gate.plans.is_empty() || gate.plans.contains(&e.name))
                    .any(|e| e.protect.as_ref().is_some_and(|g| g.matches(f)))
            };
            let (kept, free): (Vec<String>, Vec<String>) =
                data.into_iter().partition(|f| kept_by(f));
            protects.extend(kept);
            let is_file = |w: &str| file_of(w).is_some();
            let mut unknown_grammar: Vec<String> = Vec::new();
            for f in crate::manifest::unknown_grammar_words(&gate.argv, &is_file)
                .iter()
                .filter_map(|w| file_of(w))
            {
                if !unknown_grammar.contains(&f) {
                    unknown_grammar.push(f);
                }
            }
            let view = crate::git::disk_view(&root);
            let loads =
                crate::manifest::loaded_by(&gate.argv, &file_of, &view, gate.key == "notify");
            (!protects.is_empty() || !free.is_empty() || !loads.is_empty()).then_some(GateFiles {
                gate,
                protects,
                free,
                unknown_grammar,
                loads,
            })
        })
        .collect()
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
            let format = if speckit_tasks(p).next().is_some() {
                "speckit"
            } else {
                "orch"
            };
            let mut v = json!({
                "name": p.name,
                "file": p.rel_path,
                "phases": p.plan.phases.len(),
                "tasks": tasks,
                "verify_steps": verify,
                "allow_protected": allowed_of(ws, &p.name),
                "format": format,
            });
            if speckit_tasks(p).next().is_some() {
                let marks: Vec<Value> = speckit_tasks(p)
                    .map(|(id, s)| {
                        json!({
                            "id": id,
                            "parallel": s.parallel,
                            "stories": s.stories,
                            "written_depends": s.written,
                        })
                    })
                    .collect();
                v["speckit"] = json!(marks);
            }
            v
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
fn print_text(
    ws: &Workspace,
    errors: usize,
    warnings: usize,
    schedule: Option<&(&Graph, Waves)>,
    gates: &[GateFiles],
) {
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
        for line in speckit_summary(p) {
            println_safe(&line);
        }
        let allowed = allowed_of(ws, &p.name);
        if !allowed.is_empty() {
            println_safe(&format!(
                "  allow_protected (its tasks may change these protected paths): {}",
                allowed.join(", ")
            ));
        }
    }
    if !gates.is_empty() {
        println_safe(
            "gates (a task changes a protected file only where its plan's `allow_protected` allows it):",
        );
        for g in gates {
            let plans = if g.gate.plans.is_empty() {
                String::new()
            } else {
                format!(" ({})", g.gate.plans.join(", "))
            };
            println_safe(&format!(
                "  {}{plans}: {}",
                g.gate.key,
                g.gate.argv.join(" ")
            ));
            if !g.protects.is_empty() {
                println_safe(&format!("    protects: {}", g.protects.join(", ")));
            }
            if !g.unknown_grammar.is_empty() {
                println_safe(&format!(
                    "    protected as code, orch not knowing the grammar of the program they are handed to: {} (if data, name it in the plan's `allow_protected` to let its tasks change it)",
                    g.unknown_grammar.join(", ")
                ));
            }
            if !g.loads.is_empty() {
                println_safe("    loads without naming it (protected as its script is):");
                for l in &g.loads {
                    println_safe(&format!("      {}: {}", l.path, l.why));
                }
            }
            if !g.free.is_empty() {
                println_safe(&format!(
                    "    the tasks' to change: {} (name it in `protect` to protect it)",
                    g.free.join(", ")
                ));
            }
        }
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

/// The tasks of a plan read as a Spec Kit `tasks.md`, with their marks.
fn speckit_tasks(p: &LoadedPlan) -> impl Iterator<Item = (&str, &crate::plan::SpecKitTask)> {
    p.plan
        .tasks
        .iter()
        .filter_map(|t| t.speckit.as_deref().map(|s| (t.id.as_str(), s)))
}

/// What orch understood of a Spec Kit plan: its `[P]` tasks, its stories and the dependencies
/// written in it (the order of the file is in the waves).
fn speckit_summary(p: &LoadedPlan) -> Vec<String> {
    if speckit_tasks(p).next().is_none() {
        return Vec::new();
    }
    let parallel: Vec<&str> = speckit_tasks(p)
        .filter(|(_, s)| s.parallel)
        .map(|(id, _)| id)
        .collect();
    let mut stories: Vec<(&str, usize)> = Vec::new();
    for (_, s) in speckit_tasks(p) {
        for story in &s.stories {
            match stories.iter_mut().find(|(n, _)| n == story) {
                Some((_, count)) => *count += 1,
                None => stories.push((story, 1)),
            }
        }
    }
    let stories: Vec<String> = stories.iter().map(|(s, n)| format!("{s} ({n})")).collect();
    let written: Vec<String> = speckit_tasks(p)
        .filter(|(_, s)| !s.written.is_empty())
        .map(|(id, s)| format!("{id} after {}", s.written.join(", ")))
        .collect();
    let none = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    vec![
        "  read as Spec Kit: each task after the one before it, `[P]` tasks side by side, phases in order".to_string(),
        format!("  [P]: {}", if parallel.is_empty() { "none".to_string() } else { parallel.join(" ") }),
        format!("  stories: {}", none(&stories)),
        format!("  written dependencies: {}", none(&written)),
    ]
}

/// `n` and `what`, plural unless `n` is 1: "1 phase", "3 tasks".
fn counted(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}
