//! `resolve` and `resolve_verify` (issue 37): which agent repairs a plan that cannot merge.
//!
//! `resolve = "AGENT"` names a preset or an `[agents.NAME]`; `resolve = true` is the plan's own
//! agent; `false` (the default) leaves a conflict to a person. Both keys may be written in
//! `[defaults]` and in a `[[plan]]`, the plan's winning. Read here from the raw document and
//! checked against the agents the manifest knows, each problem at its own line and column.

use std::collections::BTreeMap;

use toml::Spanned;
use toml::de::DeValue;

use super::agents::AgentSpec;
use super::model::{Defaults, PlanEntry};
use super::raw::{At, RawPlan, Reporter, type_name};

/// `resolve` as written: `true`/`false`, or an agent's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RawResolve {
    Flag(bool),
    Agent(String),
}

/// `resolve` in `[defaults]`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ResolveWith {
    /// `true`: each plan's own agent.
    Own,
    /// That agent.
    Agent(String),
}

/// Reads a `resolve` value: a boolean or a string.
pub(super) fn read(
    r: &mut Reporter<'_>,
    ctx: &str,
    value: &Spanned<DeValue<'_>>,
) -> Option<At<RawResolve>> {
    let v = match value.get_ref() {
        DeValue::Boolean(b) => RawResolve::Flag(*b),
        DeValue::String(s) => RawResolve::Agent(s.to_string()),
        other => {
            r.error_hint(
                &value.span(),
                format!(
                    "`{ctx}` must be an agent's name or true/false, found {}",
                    type_name(other)
                ),
                "write `resolve = \"claude\"` (a preset or an [agents.NAME]), or `resolve = true` for the plan's own agent",
            );
            return None;
        }
    };
    Some(At {
        value: v,
        span: value.span(),
    })
}

/// Checks one `resolve` value against the agents: `None` is off.
fn check(
    r: &mut Reporter<'_>,
    ctx: &str,
    at: &At<RawResolve>,
    agents: &BTreeMap<String, AgentSpec>,
) -> Option<ResolveWith> {
    match &at.value {
        RawResolve::Flag(false) => None,
        RawResolve::Flag(true) => Some(ResolveWith::Own),
        RawResolve::Agent(name) if agents.contains_key(name) => {
            Some(ResolveWith::Agent(name.clone()))
        }
        RawResolve::Agent(name) => {
            r.error_hint(
                &at.span,
                format!("`{ctx}` names unknown agent `{name}`"),
                format!(
                    "define it in an `[agents.NAME]` table, write `true` for the plan's own agent, or use one of: {}",
                    agents
                        .keys()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            None
        }
    }
}

/// `[defaults]`'s `resolve` and `resolve_verify` into `out`.
pub(super) fn defaults(
    resolve: Option<&At<RawResolve>>,
    resolve_verify: Option<&At<bool>>,
    out: &mut Defaults,
    agents: &BTreeMap<String, AgentSpec>,
    r: &mut Reporter<'_>,
) {
    if let Some(at) = resolve {
        out.resolve = check(r, "defaults.resolve", at, agents);
    }
    if let Some(at) = resolve_verify {
        out.resolve_verify = at.value;
    }
}

/// Each plan's `resolve` (its own, else the defaults'; `true` is its own agent) and
/// `resolve_verify`, into the validated entries (matched by name).
pub(super) fn plans(
    raw: &[RawPlan],
    out: &mut [PlanEntry],
    defaults: &Defaults,
    agents: &BTreeMap<String, AgentSpec>,
    r: &mut Reporter<'_>,
) {
    for entry in out.iter_mut() {
        let own = raw
            .iter()
            .find(|p| p.name.as_ref().is_some_and(|n| n.value == entry.name));
        let with = match own.and_then(|p| p.resolve.as_ref()) {
            Some(at) => check(r, "plan.resolve", at, agents),
            None => defaults.resolve.clone(),
        };
        entry.resolve = with.map(|w| match w {
            ResolveWith::Own => entry.agent.clone(),
            ResolveWith::Agent(a) => a,
        });
        entry.resolve_verify = own
            .and_then(|p| p.resolve_verify.as_ref())
            .map_or(defaults.resolve_verify, |at| at.value);
    }
}
