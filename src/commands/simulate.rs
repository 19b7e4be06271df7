//! `orch simulate`: the scheduler of `orch up` against a virtual clock, for several policies and
//! slot counts; a table, a text Gantt chart, or `--json`. Reads plans, writes nothing.

use std::fmt::Write as _;

use anyhow::anyhow;
use serde_json::{Value, json};

use super::node_label as label;
use super::output::{print_json, println_safe};
use crate::error::{CliError, CliResult, exit};
use crate::graph::Graph;
use crate::manifest::{format_duration, parse_duration};
use crate::plan::Plan;
use crate::simulate::{DurationModel, Inputs, Outcome, Policy, simulate};
use crate::workspace::{self, Selection, Workspace};

/// The command line of `orch simulate`, checked.
#[derive(Clone, Debug, Default)]
pub(crate) struct SimulateArgs {
    pub(crate) plans: Vec<String>,
    /// Slot counts; empty: the manifest's `max_agents`.
    pub(crate) slots: Vec<usize>,
    /// As written, e.g. `10m`.
    pub(crate) default_duration: String,
    pub(crate) seed: Option<u64>,
    /// Policy names; empty: all three.
    pub(crate) policies: Vec<String>,
    pub(crate) per_plan: Option<usize>,
    pub(crate) width: Option<usize>,
    pub(crate) json: bool,
    /// Also forecast from the history (`orch simulate --history`).
    pub(crate) history: bool,
}

/// Slots when there is no manifest (the manifest's own default `max_agents`).
const DEFAULT_SLOTS: usize = 4;

pub(crate) fn run(sel: &Selection, args: &SimulateArgs) -> CliResult<u8> {
    let policies = policies(&args.policies)?;
    let default_s = parse_duration(&args.default_duration)
        .map_err(|e| CliError::invalid(anyhow!("--default-duration: {e}")))?
        .as_secs();
    if args.slots.contains(&0) {
        return Err(
            CliError::invalid(anyhow!("--slots: 0 agents can run nothing"))
                .with_hint("give one or more slot counts from 1 up, e.g. `--slots 2,4,8`"),
        );
    }
    if args.per_plan == Some(0) {
        return Err(CliError::invalid(anyhow!("--per-plan must be at least 1")));
    }
    let ws = workspace::load(sel)?;
    let graph = ws.require_valid()?;
    let selected = ws.select(&args.plans)?;
    let slots = if args.slots.is_empty() {
        vec![
            ws.manifest
                .as_ref()
                .map_or(DEFAULT_SLOTS, |m| m.defaults.max_agents),
        ]
    } else {
        args.slots.clone()
    };
    let model = DurationModel {
        default_s,
        seed: args.seed,
    };
    let plans = ws.plan_list();
    let priorities = ws.priorities();
    // What `orch up` would run at once per plan: the manifest's limits, or `--per-plan` for
    // every plan; a plan file given alone has none (as with `parallel_tasks` ≥ the slots).
    let plan_limit: Vec<usize> = ws
        .plans
        .iter()
        .map(|lp| match (args.per_plan, &ws.manifest) {
            (Some(n), _) => n,
            (None, Some(m)) => m
                .plan(&lp.name)
                .map_or(usize::MAX, |e| m.agents_per_plan(e)),
            (None, None) => usize::MAX,
        })
        .collect();
    let mut inputs = Inputs::new(graph, &plans, model, &plan_limit, &selected);
    inputs.attempts = attempts_per_node(&ws, graph);
    let workload = inputs.workload(graph, &plans, &priorities);
    let mut runs = Vec::new();
    for &policy in &policies {
        for &n in &slots {
            let outcome = simulate(&workload, policy, n).map_err(|stuck| {
                let names: Vec<String> = stuck.0.iter().map(|&i| label(&ws, graph, i)).collect();
                anyhow!("simulation stuck: {} can never start", names.join(", "))
            })?;
            runs.push(outcome);
        }
    }
    let report = Report {
        ws: &ws,
        graph,
        plans: &plans,
        selected: &selected,
        model,
        per_plan: args.per_plan,
        plan_limit: &plan_limit,
    };
    // `--history`: the forecast engine of `orch status` before the run.
    let forecast = args
        .history
        .then(|| super::forecasts::before_run(&ws, &selected, slots[0]));
    if args.json {
        let mut v = report.json(&runs);
        if let Some(f) = &forecast {
            v["forecast"] = f.json();
        }
        print_json(&v);
    } else {
        let width = args.width.unwrap_or_else(terminal_width).max(40);
        let mut text = report.text(&runs, width);
        if let Some(f) = &forecast {
            text.push('\n');
            text.push_str(&f.text());
        }
        println_safe(text.trim_end());
    }
    Ok(exit::OK)
}

/// Best of N: each task node's attempts at once, as `orch up` runs them (the plan's `attempts`,
/// a task's `(attempts: N)`; 1 in plan mode and for a VERIFY step).
fn attempts_per_node(ws: &workspace::Workspace, graph: &crate::graph::Graph) -> Vec<u32> {
    let Some(m) = &ws.manifest else {
        return Vec::new();
    };
    (0..graph.nodes.len())
        .map(|i| {
            let Some((p, t)) = graph.task_of(i) else {
                return 1;
            };
            let lp = &ws.plans[p];
            let task = &lp.plan.tasks[t];
            let Some(entry) = m.plan(&lp.name) else {
                return 1;
            };
            let task_mode = m
                .agent_of(entry)
                .is_some_and(|a| a.mode == crate::manifest::AgentMode::Task);
            crate::supervisor::round::round_size(task, task_mode, entry.best_of.attempts)
        })
        .collect()
}

fn policies(names: &[String]) -> CliResult<Vec<Policy>> {
    if names.is_empty() {
        return Ok(Policy::ALL.to_vec());
    }
    let mut out = Vec::new();
    for name in names {
        let p =
            Policy::parse(name.trim()).map_err(|e| CliError::invalid(anyhow!("--policy: {e}")))?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// The terminal's width, or 100 columns when stdout is not a terminal.
fn terminal_width() -> usize {
    terminal_size::terminal_size().map_or(100, |(w, _)| usize::from(w.0))
}

struct Report<'a> {
    ws: &'a Workspace,
    graph: &'a Graph,
    plans: &'a [Plan],
    selected: &'a [usize],
    model: DurationModel,
    per_plan: Option<usize>,
    /// Agents at once per plan (index as `ws.plans`), `usize::MAX` for none.
    plan_limit: &'a [usize],
}

impl Report<'_> {
    /// (tasks simulated, of which with an estimate).
    fn counts(&self) -> (usize, usize) {
        let tasks = self
            .selected
            .iter()
            .flat_map(|&p| self.plans[p].tasks.iter())
            .filter(|t| !t.done);
        tasks.fold((0, 0), |(n, e), t| {
            (n + 1, e + usize::from(t.estimate_s.is_some()))
        })
    }

    fn json(&self, runs: &[Outcome]) -> Value {
        let (tasks, estimated) = self.counts();
        let runs: Vec<Value> = runs
            .iter()
            .map(|o| {
                let schedule: Vec<Value> = o
                    .spans
                    .iter()
                    .map(|s| {
                        let (p, t) = self.graph.task_of(s.node).unwrap_or((0, 0));
                        let mut v = json!({
                            "plan": self.ws.plans[p].name,
                            "task": self.plans[p].tasks[t].id,
                            "slot": s.slot,
                            "start_s": s.start,
                            "end_s": s.end,
                        });
                        if let Some(r) = &self.ws.plans[p].repo {
                            v["repo"] = json!(r);
                        }
                        v
                    })
                    .collect();
                json!({
                    "policy": o.policy.name(),
                    "slots": o.slots,
                    "makespan_s": o.makespan,
                    "lower_bound_s": o.lower_bound(),
                    "tight_lower_bound_s": o.tight_bound,
                    "critical_path_s": o.critical_path,
                    "work_s": o.work,
                    "vs_lower_bound": ratio(o.makespan, o.lower_bound()),
                    "utilisation": round3(o.utilisation()),
                    "parallel_efficiency": round3(o.parallel_efficiency()),
                    "schedule": schedule,
                })
            })
            .collect();
        json!({
            "plans": self.selected.iter().map(|&p| self.ws.plans[p].name.clone()).collect::<Vec<_>>(),
            // Each plan's repository (`home` for the manifest's), as `orch status --json` says.
            "repos": self
                .selected
                .iter()
                .map(|&p| {
                    let repo = self.ws.plans[p].repo.as_deref().unwrap_or("home");
                    (self.ws.plans[p].name.clone(), json!(repo))
                })
                .collect::<serde_json::Map<String, serde_json::Value>>(),
            "tasks": tasks,
            "estimated_tasks": estimated,
            "default_duration_s": self.model.default_s,
            "seed": self.model.seed,
            "per_plan": self.per_plan,
            "agents_per_plan": self
                .selected
                .iter()
                .map(|&p| {
                    let limit = self.plan_limit.get(p).copied().filter(|&n| n != usize::MAX);
                    (self.ws.plans[p].name.clone(), json!(limit))
                })
                .collect::<serde_json::Map<String, serde_json::Value>>(),
            "runs": runs,
        })
    }

    fn text(&self, runs: &[Outcome], width: usize) -> String {
        let (tasks, estimated) = self.counts();
        let names: Vec<String> = self
            .selected
            .iter()
            .map(|&p| {
                let lp = &self.ws.plans[p];
                match &lp.repo {
                    Some(r) => format!("{} [repository {r}]", lp.name),
                    None => lp.name.clone(),
                }
            })
            .collect();
        let mut out = String::new();
        let durations = match self.model.seed {
            Some(seed) => format!("estimates × a random factor (seed {seed})"),
            None => "the estimates".to_string(),
        };
        let _ = writeln!(
            out,
            "simulated {} ({tasks} tasks, {estimated} with `(est: …)`, the others {}); durations: {durations}",
            names.join(", "),
            format_duration(std::time::Duration::from_secs(self.model.default_s)),
        );
        let limits: Vec<String> = self
            .selected
            .iter()
            .filter_map(|&p| {
                let n = self
                    .plan_limit
                    .get(p)
                    .copied()
                    .filter(|&n| n != usize::MAX)?;
                Some(format!("{} {n}", self.ws.plans[p].name))
            })
            .collect();
        if !limits.is_empty() {
            let _ = writeln!(
                out,
                "agents per plan at once, as `orch up` runs them: {} (`--per-plan N` to try others)",
                limits.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "\n{:<8} {:>5} {:>10} {:>12} {:>9} {:>12} {:>11}",
            "policy", "slots", "makespan", "lower bound", "÷ bound", "utilisation", "efficiency"
        );
        for o in runs {
            let _ = writeln!(
                out,
                "{:<8} {:>5} {:>10} {:>12} {:>9.2} {:>11.0}% {:>10.0}%",
                o.policy.name(),
                o.slots,
                secs(o.makespan),
                secs(o.lower_bound()),
                ratio(o.makespan, o.lower_bound()),
                o.utilisation() * 100.0,
                o.parallel_efficiency() * 100.0,
            );
        }
        // The schedule of the first policy asked for, at each slot count.
        let Some(first) = runs.first().map(|o| o.policy) else {
            return out;
        };
        for o in runs.iter().filter(|o| o.policy == first) {
            let _ = writeln!(
                out,
                "\n{} with {} slot{}: {} (lower bound {})",
                o.policy.name(),
                o.slots,
                if o.slots == 1 { "" } else { "s" },
                secs(o.makespan),
                secs(o.lower_bound())
            );
            out.push_str(&self.gantt(o, width));
        }
        out
    }

    /// One row per slot; each task a `|label====` segment scaled to `width` columns.
    fn gantt(&self, o: &Outcome, width: usize) -> String {
        let prefix = format!("slot {:>2} ", o.slots.saturating_sub(1));
        let cols = width.saturating_sub(prefix.len() + 1).max(10);
        let span = o.makespan.max(1);
        let col = |t: u64| (t as u128 * cols as u128 / span as u128) as usize;
        let mut rows = vec![vec![' '; cols]; o.slots];
        for s in &o.spans {
            let Some(row) = rows.get_mut(s.slot) else {
                continue;
            };
            let (a, b) = (col(s.start), col(s.end).max(col(s.start) + 1).min(cols));
            let text: Vec<char> = format!("|{}", label(self.ws, self.graph, s.node))
                .chars()
                .collect();
            for (k, cell) in row[a.min(cols)..b].iter_mut().enumerate() {
                *cell = text.get(k).copied().unwrap_or('=');
            }
        }
        let mut out = String::new();
        for (i, row) in rows.iter().enumerate() {
            let line: String = row.iter().collect();
            let _ = writeln!(out, "{}", format!("slot {i:>2} {line}").trim_end());
        }
        let end = secs(o.makespan);
        let pad = cols.saturating_sub(1 + end.len());
        let _ = writeln!(out, "{:width$}0{:pad$}{end}", "", "", width = prefix.len());
        out
    }
}

fn secs(s: u64) -> String {
    format_duration(std::time::Duration::from_secs(s))
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        round3(a as f64 / b as f64)
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
