//! `resolve` and `resolve_verify`: which agent repairs a plan that cannot merge.
//!
//! `resolve = "AGENT"` names a preset or an `[agents.NAME]`; `resolve = true` is the plan's own
//! agent; `false` (the default) leaves a conflict to a person. Both keys may be written in
//! `[defaults]` and in a `[[plan]]`, the plan's winning. Checked here against the agents the manifest knows, each
//! problem at its own line and column.

use std::collections::BTreeMap;

use super::agents::AgentSpec;
use super::model::{Defaults, PlanEntry, ResolveWith};
use super::raw::{RawPlan, RawResolve};
use super::spans::{At, Reporter};

/// The hint given when `resolve` is neither.
pub(crate) const HINT: &str = "write `resolve = \"claude\"` (a preset or an [agents.NAME]), or `resolve = true` for the plan's own agent";

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
            let what = format!("`{ctx}` names unknown agent `{name}`");
            let or = "write `true` for the plan's own agent, ";
            r.bad(&at.span, super::values::unknown_agent(agents, what, or));
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
    raw: &[At<RawPlan>],
    out: &mut [PlanEntry],
    defaults: &Defaults,
    agents: &BTreeMap<String, AgentSpec>,
    r: &mut Reporter<'_>,
) {
    for entry in out.iter_mut() {
        let own = raw
            .iter()
            .map(|p| &p.value)
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
