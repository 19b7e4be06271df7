//! `fallback` and `input` of an `[agents.NAME]`, and a `[[plan]]`'s own `fallback`: the agents
//! a plan's pending tasks go to while its agent is at a usage limit, in order, and whether an
//! agent reads a person's messages on its stdin while it runs.
//!
//! Every name must be an agent the manifest knows (a preset or a table), never the agent
//! itself; the agents' lists must not form a cycle (`a` falls back to `b`, `b` to `a`): each
//! problem is reported at its line and column.

use std::collections::BTreeMap;

use super::agents::{AgentSpec, InputMode, StdinMode};
use super::model::PlanEntry;
use super::raw::{RawManifest, RawPlan};
use super::spans::{At, Bad, Reporter, Spelled};
use super::values::unknown_agent;

/// Reads `input` and `fallback` of each `[agents.NAME]` into `agents`.
pub(super) fn agents(
    raw: &RawManifest,
    agents: &mut BTreeMap<String, AgentSpec>,
    r: &mut Reporter<'_>,
) {
    let known = agents.clone();
    for agent in raw.agents.values() {
        let name = &agent.name.value;
        let input = r.check(agent.input.as_ref(), |v| {
            InputMode::parse(v).ok_or_else(|| {
                Bad::new(format!(
                    "`agents.{name}.input` must be \"lines\", \"stream-json\" or \"none\", found \"{v}\""
                ))
                .hint("\"lines\": each message of `orch say` as one line on the agent's stdin while it runs; \"stream-json\": the prompt and each message as user messages of Claude Code's `--input-format stream-json`")
            })
        });
        let reads_prompt = known
            .get(name)
            .is_some_and(|s| s.stdin == StdinMode::Prompt);
        if let (Some(InputMode::Lines | InputMode::StreamJson), true, Some(at)) =
            (input, reads_prompt, &agent.input)
        {
            r.error_hint(
                &at.span,
                format!("agent `{name}` reads its prompt on stdin (`stdin = \"prompt\"`): its stdin cannot also carry messages"),
                "remove `input`, or give the prompt another way",
            );
        }
        if let (Some(spec), Some(i)) = (agents.get_mut(name), input) {
            spec.input = i;
        }
    }
    let known = agents.clone();
    for agent in raw.agents.values() {
        let name = &agent.name.value;
        let ctx = format!("`agents.{name}.fallback`");
        let list = names(r, &ctx, name, agent.fallback.as_ref(), &known);
        if let Some(spec) = agents.get_mut(name) {
            spec.fallback = list;
        }
    }
    cycles(raw, agents, r);
}

/// The names of a `fallback` list at `at` (`ctx` for messages), each known and not `own`.
fn names(
    r: &mut Reporter<'_>,
    ctx: &str,
    own: &str,
    at: Option<&At<Vec<At<String>>>>,
    known: &BTreeMap<String, AgentSpec>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in at.map(|a| a.value.as_slice()).unwrap_or_default() {
        let v = &item.value;
        if v == own {
            r.error_hint(
                &item.span,
                format!("{ctx} names `{v}` itself"),
                "a fallback is another agent",
            );
        } else if !known.contains_key(v) {
            r.bad(
                &item.span,
                unknown_agent(known, format!("{ctx} names unknown agent `{v}`"), ""),
            );
        } else if out.contains(v) {
            r.error(&item.span, format!("{ctx} names `{v}` twice"));
        } else if let Some(key) = differs(known.get(own), known.get(v)) {
            r.error_hint(
                &item.span,
                format!("{ctx} names agent `{v}`, whose `{key}` differs from `{own}`'s: a fallback runs the tasks as `{own}` does, only its command differs"),
                format!("give `{v}` the same `{key}` as `{own}`, or leave it out of the list"),
            );
        } else {
            out.push(v.clone());
        }
    }
    out
}

/// The first setting a fallback must share with the agent it stands in for and does not (its
/// plans' worktrees, sandbox, network and way of reporting are the agent's).
fn differs(own: Option<&AgentSpec>, other: Option<&AgentSpec>) -> Option<&'static str> {
    let (own, other) = (own?, other?);
    let differs = [
        ("mode", other.mode != own.mode),
        ("report", other.report != own.report),
        ("stdin", other.stdin != own.stdin),
        ("input", other.input != own.input),
        ("sandbox", other.sandbox != own.sandbox),
        ("executor", other.executor != own.executor),
    ];
    differs.iter().find(|(_, d)| *d).map(|(k, _)| *k)
}

/// Reports each cycle of the agents' `fallback` lists once, at the entry that closes it.
fn cycles(raw: &RawManifest, agents: &BTreeMap<String, AgentSpec>, r: &mut Reporter<'_>) {
    let mut reported: Vec<Vec<String>> = Vec::new();
    for agent in raw.agents.values() {
        let start = &agent.name.value;
        let Some(path) = cycle_from(start, agents) else {
            continue;
        };
        let mut key = path.clone();
        key.sort();
        if reported.contains(&key) {
            continue;
        }
        reported.push(key);
        // The entry of `start`'s list that leads back to it.
        let next = path.get(1).cloned().unwrap_or_default();
        let span = agent
            .fallback
            .as_ref()
            .and_then(|l| l.value.iter().find(|i| i.value == next))
            .map_or(agent.name.span.clone(), |i| i.span.clone());
        let mut shown = path.clone();
        shown.push(start.clone());
        r.error_hint(
            &span,
            format!(
                "the fallbacks of `agents.{start}` form a cycle: {}",
                shown.join(" → ")
            ),
            "a fallback list leads away from its agent: remove one of these entries",
        );
    }
}

/// A path of fallbacks from `start` back to `start` (without the last), if any.
fn cycle_from(start: &str, agents: &BTreeMap<String, AgentSpec>) -> Option<Vec<String>> {
    let mut stack: Vec<(String, Vec<String>)> = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen: Vec<String> = Vec::new();
    while let Some((at, path)) = stack.pop() {
        for next in agents
            .get(&at)
            .map(|s| s.fallback.as_slice())
            .unwrap_or_default()
        {
            if next == start {
                return Some(path);
            }
            if !seen.contains(next) {
                seen.push(next.clone());
                let mut p = path.clone();
                p.push(next.clone());
                stack.push((next.clone(), p));
            }
        }
    }
    None
}

/// Each plan's fallback agents: its own `fallback`, else its agent's.
pub(super) fn plans(
    raw: &[At<RawPlan>],
    plans: &mut [PlanEntry],
    agents: &BTreeMap<String, AgentSpec>,
    r: &mut Reporter<'_>,
) {
    for plan in plans.iter_mut() {
        let own = raw
            .iter()
            .find(|p| p.value.name.as_ref().is_some_and(|n| n.value == plan.name));
        plan.fallback = match own.and_then(|p| p.value.fallback.as_ref()) {
            Some(list) => {
                let ctx = format!("the `fallback` of plan `{}`", plan.name);
                names(r, &ctx, &plan.agent, Some(list), agents)
            }
            None => agents
                .get(&plan.agent)
                .map(|a| a.fallback.clone())
                .unwrap_or_default(),
        };
    }
}
