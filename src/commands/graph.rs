//! `orch graph`: the dependency graph as text, Graphviz DOT or Mermaid.

use std::fmt::Write;

use super::output::println_safe;
use crate::error::{CliResult, exit};
use crate::graph::{Graph, NodeKind};
use crate::workspace::{self, Selection, Workspace};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Dot,
    Mermaid,
}

pub(crate) fn run(sel: &Selection, format: Format) -> CliResult<u8> {
    let ws = workspace::load(sel)?;
    let graph = ws.require_valid()?;
    let text = match format {
        Format::Text => text(&ws, graph),
        Format::Dot => dot(&ws, graph),
        Format::Mermaid => mermaid(&ws, graph),
    };
    println_safe(text.trim_end());
    Ok(exit::OK)
}

/// A stable identifier and a human label for each node.
fn node_name(ws: &Workspace, g: &Graph, n: usize) -> (String, String) {
    let plan_name = |p: usize| ws.plans[p].name.clone();
    match &g.nodes[n].kind {
        NodeKind::Task { plan, task } => {
            let id = &ws.plans[*plan].plan.tasks[*task].id;
            (
                format!("{}_{id}", plan_name(*plan)),
                super::node_label(ws, g, n),
            )
        }
        NodeKind::Barrier { plan, phase } => (
            format!("{}_before_{phase}", plan_name(*plan)),
            format!("phases before {phase} done"),
        ),
        NodeKind::PlanGate { plan } => (
            format!("{}_gate", plan_name(*plan)),
            format!("{} may start", plan_name(*plan)),
        ),
        NodeKind::Target { plan, label } => (
            format!("{}_target_{n}", plan_name(*plan)),
            format!("{}: {label}", plan_name(*plan)),
        ),
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Each edge, from a node's predecessor to the node, as their identifiers.
fn edges(ws: &Workspace, g: &Graph) -> Vec<(String, String)> {
    let id = |n| sanitize(&node_name(ws, g, n).0);
    let nodes = g.nodes.iter().enumerate();
    let edges = nodes.flat_map(|(n, node)| node.preds.iter().map(move |&p| (p, n)));
    edges.map(|(p, n)| (id(p), id(n))).collect()
}

fn text(ws: &Workspace, g: &Graph) -> String {
    let mut out = String::new();
    for &n in &g.topo {
        let Some((p, t)) = g.task_of(n) else { continue };
        let task = &ws.plans[p].plan.tasks[t];
        let (_, label) = node_name(ws, g, n);
        let preds: Vec<String> = g.nodes[n]
            .preds
            .iter()
            .map(|&x| node_name(ws, g, x).1)
            .collect();
        let _ = match &ws.plans[p].repo {
            Some(repo) => write!(out, "{label}  [{repo}] {}", task.description),
            None => write!(out, "{label}  {}", task.description),
        };
        if !preds.is_empty() {
            let _ = write!(out, "\n    waits for: {}", preds.join(", "));
        }
        out.push('\n');
    }
    out
}

fn dot(ws: &Workspace, g: &Graph) -> String {
    let mut out = String::from("digraph orch {\n  rankdir=LR;\n  node [shape=box];\n");
    for n in 0..g.nodes.len() {
        let (id, label) = node_name(ws, g, n);
        let shape = if g.task_of(n).is_some() {
            "box"
        } else {
            "diamond"
        };
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{}\", shape={shape}];",
            sanitize(&id),
            label.replace('"', "'")
        );
    }
    for (from, to) in edges(ws, g) {
        let _ = writeln!(out, "  \"{from}\" -> \"{to}\";");
    }
    out.push_str("}\n");
    out
}

fn mermaid(ws: &Workspace, g: &Graph) -> String {
    let mut out = String::from("flowchart LR\n");
    for n in 0..g.nodes.len() {
        let (id, label) = node_name(ws, g, n);
        let label = label.replace('"', "'");
        if g.task_of(n).is_some() {
            let _ = writeln!(out, "  {}[\"{label}\"]", sanitize(&id));
        } else {
            let _ = writeln!(out, "  {}{{\"{label}\"}}", sanitize(&id));
        }
    }
    for (from, to) in edges(ws, g) {
        let _ = writeln!(out, "  {from} --> {to}");
    }
    out
}
