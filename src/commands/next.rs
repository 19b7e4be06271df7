//! `orch next`: the tasks that may start now, in the order orch would start them, and why the
//! others wait — short enough for an agent to read on every turn: `-n` limits what is listed,
//! blocked tasks are counted in one summary line (listed with `--all`), and `--why ID` explains
//! one task.

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::anyhow;
use serde_json::{Value, json};

use super::output::{print_json, println_safe, task_json};
use crate::error::{CliError, CliResult, exit};
use crate::graph::{Graph, NodeKind, NodeState, Readiness, Waiting, readiness};
use crate::plan::{IdMap, Plan, Task, id_map};
use crate::status::{StatusStates, TaskEntry};
use crate::workspace::{self, Selection, Workspace};

/// Blocked tasks listed in `--json` when neither `-n` nor `--all` is given.
pub(crate) const DEFAULT_BLOCKED_SHOWN: usize = 20;

/// Unfinished tasks named by `--why` for a phase barrier, before "and N more".
const WHY_NAMES: usize = 10;

/// What `orch next` was asked for.
#[derive(Clone, Debug, Default)]
pub(crate) struct NextArgs {
    /// `-n N`: at most N ready tasks, and (JSON) at most N blocked ones.
    pub(crate) count: Option<usize>,
    pub(crate) json: bool,
    /// `--all`: every blocked task, with its reasons.
    pub(crate) all: bool,
    /// `--why ID`: explain one task (`ID` or `plan:ID`).
    pub(crate) why: Option<String>,
}

/// Why blocked tasks wait, counted once per task by its first reason (failed, dependencies,
/// phases, plans, sequential); `blocked_by` in `--json`.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
struct BlockedBy {
    phases: usize,
    dependencies: usize,
    failed: usize,
    plans: usize,
    sequential: usize,
}

impl BlockedBy {
    fn count(&mut self, why: &[Waiting]) {
        let has = |f: fn(&Waiting) -> bool| why.iter().any(f);
        if has(|w| matches!(w, Waiting::Failed(_))) {
            self.failed += 1;
        } else if has(|w| matches!(w, Waiting::Task(_))) {
            self.dependencies += 1;
        } else if has(|w| matches!(w, Waiting::Phases { .. })) {
            self.phases += 1;
        } else if has(|w| matches!(w, Waiting::Upstream { .. })) {
            self.plans += 1;
        } else {
            self.sequential += 1;
        }
    }

    fn parts(&self) -> Vec<String> {
        [
            (self.phases, "by phase barriers"),
            (self.dependencies, "by dependencies"),
            (self.failed, "by failed tasks"),
            (self.plans, "by other plans"),
            (self.sequential, "by [SEQUENTIAL] groups"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{} {what}", thousands(*n)))
        .collect()
    }
}

pub(crate) fn run(sel: &Selection, args: NextArgs) -> CliResult<u8> {
    let (sel, status_override) = sel.clone().with_agent_env();
    // Tasks' files are found for the few tasks printed only (`task_value`).
    let ws = workspace::keep(workspace::load_without_files(&sel)?);
    let graph = ws.require_valid()?;
    let override_path = status_override.filter(|_| sel.plan.is_some());
    let states = workspace::keep(workspace::read_states(ws, override_path.as_deref())?);
    let plans: Vec<&Plan> = ws.plans.iter().map(|p| &p.plan).collect();
    // Each task's state, looked up once: for readiness and the count of running tasks.
    let node_states = workspace::keep(workspace::node_states(ws, states));
    let r = workspace::keep(readiness(graph, &plans, &ws.priorities(), |p, t| {
        node_states[p][t]
    }));
    let mut view = View {
        ws,
        graph,
        states,
        entries: Vec::new(),
    };
    if let Some(id) = &args.why {
        let n = view.find(id)?;
        view.load_entries(&[n])?;
        return view.why(r, n, args.json);
    }
    let selected = |n: usize| {
        graph
            .task_of(n)
            .is_some_and(|(p, _)| ws.selected.contains(&p))
    };
    let ready_all: Vec<usize> = r.ready.iter().copied().filter(|&n| selected(n)).collect();
    let blocked_all: Vec<&(usize, Vec<Waiting>)> =
        r.blocked.iter().filter(|(n, _)| selected(*n)).collect();
    let mut by = BlockedBy::default();
    for (_, why) in &blocked_all {
        by.count(why);
    }
    // `node_state` maps `in_progress`, and only it, to `NodeState::InProgress`.
    let running = ws
        .selected
        .iter()
        .flat_map(|&p| &node_states[p])
        .filter(|&&s| s == NodeState::InProgress)
        .count();
    let ready: &[usize] = match args.count {
        Some(c) => &ready_all[..c.min(ready_all.len())],
        None => &ready_all,
    };

    let listing = Listing {
        ready,
        ready_all: ready_all.len(),
        blocked_all,
        running,
        by,
    };
    if args.json {
        listing.print_json(&mut view, &args)
    } else {
        listing.print_text(&view, args.all);
        Ok(exit::OK)
    }
}

/// What `orch next` lists: the ready tasks shown (`-n`), the blocked ones and the counts.
struct Listing<'a> {
    ready: &'a [usize],
    /// Ready tasks in all.
    ready_all: usize,
    blocked_all: Vec<&'a (usize, Vec<Waiting>)>,
    /// Tasks in progress.
    running: usize,
    by: BlockedBy,
}

impl Listing<'_> {
    fn print_json(&self, view: &mut View, args: &NextArgs) -> CliResult<u8> {
        let (ready, blocked_all, by) = (self.ready, &self.blocked_all, &self.by);
        let shown = if args.all {
            blocked_all.len()
        } else {
            args.count.unwrap_or(DEFAULT_BLOCKED_SHOWN)
        };
        let printed: Vec<usize> = ready
            .iter()
            .copied()
            .chain(blocked_all.iter().take(shown).map(|(n, _)| *n))
            .collect();
        view.load_entries(&printed)?;
        let tasks: Vec<Value> = ready.iter().map(|&n| view.task_value(n)).collect();
        let blocked: Vec<Value> = blocked_all
            .iter()
            .take(shown)
            .map(|(n, why)| {
                let mut v = view.task_value(*n);
                v["waiting_for"] = json!(describe_grouped(view.ws, view.graph, why));
                v
            })
            .collect();
        let truncated = tasks.len() < self.ready_all || blocked.len() < blocked_all.len();
        print_json(&json!({
            "tasks": tasks,
            "blocked": blocked,
            "ready_total": self.ready_all,
            "blocked_total": blocked_all.len(),
            "in_progress_total": self.running,
            "blocked_by": by,
            "truncated": truncated,
        }));
        Ok(exit::OK)
    }

    fn print_text(&self, view: &View, all: bool) {
        let mut out = String::new();
        for &n in self.ready {
            let _ = writeln!(out, "ready   {}  {}", view.name(n), view.description(n));
        }
        if all {
            for (reason, ids) in group_by_reasons(view, &self.blocked_all) {
                let count = if ids.len() > 1 {
                    format!(" ({} tasks)", thousands(ids.len()))
                } else {
                    String::new()
                };
                out.push_str(&format!("waiting {}{count}: {reason}\n", ids.join(" ")));
            }
        }
        out.push_str(&summary_line(
            self.ready.len(),
            self.ready_all,
            self.running,
            self.blocked_all.len(),
            &self.by,
            all,
        ));
        println_safe(&out);
    }
}

/// `4 ready, 1,920 blocked: 1,900 by phase barriers, 20 by dependencies; …`.
fn summary_line(
    shown: usize,
    ready: usize,
    running: usize,
    blocked: usize,
    by: &BlockedBy,
    all: bool,
) -> String {
    let mut s = if ready == 0 {
        "no task is ready".to_string()
    } else if shown < ready {
        format!("{} ready ({shown} shown)", thousands(ready))
    } else {
        format!("{} ready", thousands(ready))
    };
    if running > 0 {
        s.push_str(&format!(", {} running", thousands(running)));
    }
    if blocked == 0 {
        s.push_str(", nothing blocked");
        return s;
    }
    let _ = write!(
        s,
        ", {} blocked: {}",
        thousands(blocked),
        by.parts().join(", ")
    );
    if all {
        s.push_str("; `orch next --why ID` explains one");
    } else {
        s.push_str("; `orch next --why ID` explains one, `--all` lists them");
    }
    s
}

/// Blocked tasks with the same reasons, in order of first appearance: (reasons, names).
fn group_by_reasons(
    view: &View<'_>,
    blocked: &[&(usize, Vec<Waiting>)],
) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for (n, why) in blocked {
        let reason = describe_grouped(view.ws, view.graph, why).join("; ");
        let i = *at.entry(reason.clone()).or_insert_with(|| {
            groups.push((reason, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(view.name(*n));
    }
    groups
}

/// `12345` → `12,345`.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What the output functions need.
struct View<'a> {
    ws: &'a Workspace,
    graph: &'a Graph,
    states: &'a [StatusStates],
    /// The recorded entries of the tasks printed in full, per plan.
    entries: Vec<IdMap<String, TaskEntry>>,
}

impl View<'_> {
    /// Reads the recorded entries of the task nodes `nodes` (only those: a second, partial read
    /// of their plans' status files).
    fn load_entries(&mut self, nodes: &[usize]) -> CliResult<()> {
        let mut ids: Vec<Vec<&str>> = vec![Vec::new(); self.ws.plans.len()];
        for &n in nodes {
            if let Some((p, t)) = self.graph.task_of(n) {
                ids[p].push(&self.ws.plans[p].plan.tasks[t].id);
            }
        }
        self.entries = Vec::with_capacity(ids.len());
        for (p, ids) in ids.iter().enumerate() {
            let mut map = id_map(ids.len());
            for e in self.states[p]
                .entries(ids)
                .map_err(workspace::status_error)?
            {
                map.insert(e.id.clone(), e);
            }
            self.entries.push(map);
        }
        Ok(())
    }

    /// A task as `status --json` prints it: its recorded entry, with the status the reconciled
    /// document would have.
    fn task_value(&self, n: usize) -> Value {
        let Some((p, t)) = self.graph.task_of(n) else {
            return Value::Null;
        };
        let lp = &self.ws.plans[p];
        let task = &lp.plan.tasks[t];
        let mut entry = self
            .entries
            .get(p)
            .and_then(|m| m.get(task.id.as_str()))
            .cloned()
            .unwrap_or_else(|| TaskEntry::from_plan_parts(task));
        entry.status = self.states[p].status(task);
        let task = Task {
            files: crate::plan::task_files(task),
            ..task.clone()
        };
        task_json(&lp.name, &lp.plan, &task, Some(&entry), false)
    }

    fn name(&self, n: usize) -> String {
        self.ws.task_label(self.graph, n)
    }

    fn description(&self, n: usize) -> &str {
        self.graph
            .task_of(n)
            .map_or("", |(p, t)| &self.ws.plans[p].plan.tasks[t].description)
    }

    fn state(&self, n: usize) -> NodeState {
        self.graph.task_of(n).map_or(NodeState::Done, |(p, t)| {
            workspace::node_state(self.states[p].status(&self.ws.plans[p].plan.tasks[t]))
        })
    }

    /// `--why ID` for task node `n`.
    fn why(&self, r: &Readiness, n: usize, json_out: bool) -> CliResult<u8> {
        let (p, t) = self.graph.task_of(n).unwrap_or((0, 0));
        let status = self.states[p].status(&self.ws.plans[p].plan.tasks[t]);
        let position = r.ready.iter().position(|&x| x == n);
        let waiting = r.blocked.iter().find(|(x, _)| *x == n).map(|(_, w)| w);
        let details: Vec<String> = waiting
            .map(|w| w.iter().map(|w| self.explain(w)).collect())
            .unwrap_or_default();
        if json_out {
            let mut v = self.task_value(n);
            v["ready"] = json!(position.is_some());
            if let Some(i) = position {
                v["ready_position"] = json!(i + 1);
            }
            v["waiting_for"] = json!(details);
            print_json(&v);
            return Ok(exit::OK);
        }
        let name = self.name(n);
        let head = match (position, waiting) {
            (Some(i), _) => format!("{name}: ready (number {} in start order)", i + 1),
            (None, Some(_)) => format!("{name}: {status}, waiting"),
            (None, None) => format!("{name}: {status}"),
        };
        let mut out = head;
        for d in details {
            out.push_str("\n  ");
            out.push_str(&d);
        }
        println_safe(&out);
        Ok(exit::OK)
    }

    /// The task node of `ID` or `plan:ID` among the selected plans.
    fn find(&self, arg: &str) -> CliResult<usize> {
        let (plan, id) = match arg.split_once(':') {
            Some((p, id)) => (Some(p), id),
            None => (None, arg),
        };
        let hits: Vec<usize> = self
            .ws
            .selected
            .iter()
            .copied()
            .filter(|&i| plan.is_none_or(|p| self.ws.plans[i].name == p))
            .filter_map(|i| {
                let t = self.ws.plans[i]
                    .plan
                    .tasks
                    .iter()
                    .position(|t| t.id == id)?;
                Some(self.graph.task_node[i][t])
            })
            .collect();
        match hits.as_slice() {
            [one] => Ok(*one),
            [] => Err(
                CliError::invalid(anyhow!("no task `{arg}` in the selected plans"))
                    .with_hint("`orch status` lists the task ids"),
            ),
            _ => Err(CliError::invalid(anyhow!(
                "task `{arg}` exists in several plans: write it as `plan:{id}`"
            ))),
        }
    }

    /// One reason in full: whom it waits for and in which state they are.
    fn explain(&self, w: &Waiting) -> String {
        match w {
            Waiting::Task(n) => {
                let st = match self.state(*n) {
                    NodeState::InProgress => "in progress",
                    _ => "pending",
                };
                format!("waits for `{}` ({st})", self.name(*n))
            }
            Waiting::Phases { phase, left, .. } => {
                let names = self.unfinished_behind(w);
                let more = left.saturating_sub(names.len());
                let mut s = format!(
                    "phases before {phase} not finished: {} left ({}",
                    tasks_word(*left),
                    names.join(", ")
                );
                if more > 0 {
                    s.push_str(&format!(", and {} more", thousands(more)));
                }
                s.push(')');
                s
            }
            other => describe(self.ws, self.graph, other),
        }
    }

    /// The first unfinished tasks behind the barrier a [`Waiting::Phases`] names.
    fn unfinished_behind(&self, w: &Waiting) -> Vec<String> {
        let Waiting::Phases { plan, phase, .. } = w else {
            return Vec::new();
        };
        let barrier = self.graph.nodes.iter().position(|x| {
            matches!(x.kind, NodeKind::Barrier { plan: bp, phase: bph } if bp == *plan && bph == *phase)
        });
        let mut out = Vec::new();
        let mut cur = barrier;
        while let Some(b) = cur.take() {
            let preds = &self.graph.nodes[b].preds;
            for &x in preds {
                match self.graph.nodes[x].kind {
                    NodeKind::Barrier { .. } => cur = Some(x),
                    NodeKind::Task { .. } if self.state(x) != NodeState::Done => out.push(x),
                    _ => {}
                }
            }
        }
        out.sort_unstable();
        out.into_iter()
            .take(WHY_NAMES)
            .map(|x| self.name(x))
            .collect()
    }
}

fn tasks_word(n: usize) -> String {
    if n == 1 {
        "1 task".to_string()
    } else {
        format!("{} tasks", thousands(n))
    }
}

/// Why a task waits, in words.
pub(crate) fn describe(ws: &Workspace, g: &Graph, w: &Waiting) -> String {
    match w {
        Waiting::Task(n) => format!("waits for `{}`", ws.task_label(g, *n)),
        Waiting::Failed(n) => format!("blocked by failed `{}`", ws.task_label(g, *n)),
        Waiting::Phases { phase, left, .. } => {
            format!(
                "phases before {phase} not finished ({} left)",
                tasks_word(*left)
            )
        }
        Waiting::Upstream { plan, label } => {
            format!("waits for plan `{}` ({label})", ws.plans[*plan].name)
        }
        Waiting::Sequential(n) => format!("[SEQUENTIAL] with `{}`", ws.task_label(g, *n)),
    }
}

/// The reasons of one task, with the tasks it waits for (and the failed ones) each in one line:
/// `waits for `1.2`, `1.3``.
pub(crate) fn describe_grouped(ws: &Workspace, g: &Graph, why: &[Waiting]) -> Vec<String> {
    let mut out = Vec::new();
    for (what, failed) in [("blocked by failed", true), ("waits for", false)] {
        let names: Vec<String> = why
            .iter()
            .filter_map(|w| match w {
                Waiting::Failed(n) if failed => Some(format!("`{}`", ws.task_label(g, *n))),
                Waiting::Task(n) if !failed => Some(format!("`{}`", ws.task_label(g, *n))),
                _ => None,
            })
            .collect();
        if !names.is_empty() {
            out.push(format!("{what} {}", names.join(", ")));
        }
    }
    out.extend(
        why.iter()
            .filter(|w| !matches!(w, Waiting::Task(_) | Waiting::Failed(_)))
            .map(|w| describe(ws, g, w)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn summary_line_counts_and_points_to_the_details() {
        let by = BlockedBy {
            phases: 1900,
            dependencies: 20,
            ..BlockedBy::default()
        };
        assert_eq!(
            summary_line(4, 4, 0, 1920, &by, false),
            "4 ready, 1,920 blocked: 1,900 by phase barriers, 20 by dependencies; \
             `orch next --why ID` explains one, `--all` lists them"
        );
        assert_eq!(
            summary_line(5, 100, 2, 0, &BlockedBy::default(), false),
            "100 ready (5 shown), 2 running, nothing blocked"
        );
        assert!(
            summary_line(0, 0, 0, 3, &BlockedBy { failed: 3, ..by }, true)
                .starts_with("no task is ready, 3 blocked: 1,900 by phase barriers")
        );
    }
}
