//! Best of N: `attempts`, `agents`, `select` and `attempts_stop`, in `[defaults]` and in each
//! `[[plan]]` (a plan's own value over the default's), read and checked with the place of each
//! problem.

use std::collections::BTreeMap;

use super::agents::{AgentMode, AgentSpec};
use super::raw::RawBestOf;
use super::spans::{At, Bad, Reporter};

/// When the attempts of a task stop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum AttemptsStop {
    /// Once a candidate exists and no `select` is set, the others are stopped (their work
    /// saved).
    #[default]
    First,
    /// Every attempt runs to its end (what `select` needs to compare them).
    All,
}

impl AttemptsStop {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::First => "first",
            Self::All => "all",
        }
    }
}

/// The resolved best-of-N settings of `[defaults]` or of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BestOf {
    /// Attempts of each task at once (`1`: one at a time, as without best of N).
    pub(crate) attempts: u32,
    /// The agents the attempts are spread over, in turn (empty: the plan's agent for all).
    pub(crate) agents: Vec<String>,
    /// The argv that scores a candidate in its worktree (prints a number; higher wins).
    pub(crate) select: Option<Vec<String>>,
    pub(crate) stop: AttemptsStop,
}

impl Default for BestOf {
    fn default() -> Self {
        BestOf {
            attempts: 1,
            agents: Vec::new(),
            select: None,
            stop: AttemptsStop::First,
        }
    }
}

impl BestOf {
    /// The agent of attempt `k` (1-based, counted over the rounds): the agents of `agents` in
    /// turn, or `plan_agent`.
    pub(crate) fn agent_of<'a>(&'a self, k: u32, plan_agent: &'a str) -> &'a str {
        if self.agents.is_empty() {
            return plan_agent;
        }
        let i = (k.max(1) - 1) as usize % self.agents.len();
        &self.agents[i]
    }
}

/// Reads `raw` over `base` (the defaults' for a plan); `whose` names the table in messages
/// (`defaults`, `plan`). `max_agents` bounds `attempts`.
pub(super) fn resolve(
    r: &mut Reporter<'_>,
    whose: &str,
    raw: &RawBestOf<'_>,
    base: &BestOf,
    agents: &BTreeMap<String, AgentSpec>,
    max_agents: usize,
) -> BestOf {
    let mut out = base.clone();
    r.set(&mut out.attempts, raw.attempts, |&v| match u32::try_from(v) {
        Ok(n) if n >= 1 && n as usize <= max_agents => Ok(n),
        Ok(n) if n >= 1 => Err(Bad::new(format!(
            "`{whose}.attempts` is {n}, more than `max_agents` ({max_agents}): the attempts of a task run at once"
        ))
        .hint(format!("lower `attempts` to at most {max_agents}, or raise `defaults.max_agents`"))),
        _ => Err(Bad::new(format!("`{whose}.attempts` must be at least 1, found {v}"))
            .hint("`attempts = 1` runs one attempt at a time (the default)")),
    });
    if let Some(At { value, span }) = raw.agents {
        if value.is_empty() {
            r.error_hint(
                span,
                format!("`{whose}.agents` must not be empty"),
                "leave it out to run every attempt with the plan's agent",
            );
        }
        let mut ok = true;
        for a in value {
            match agents.get(&a.value) {
                None => {
                    ok = false;
                    let what = format!("`{whose}.agents` names unknown agent `{}`", a.value);
                    r.bad(&a.span, super::values::unknown_agent(agents, what, ""));
                }
                Some(spec) if spec.mode != AgentMode::Task => {
                    ok = false;
                    r.error(
                        &a.span,
                        format!(
                            "`{whose}.agents` names agent `{}`, a plan-mode agent: best of N runs tasks",
                            a.value
                        ),
                    );
                }
                Some(_) => {}
            }
        }
        if ok && !value.is_empty() {
            out.agents = value.iter().map(|a| a.value.clone()).collect();
        }
    }
    if raw.select.is_some() {
        out.select = super::values::argv(r, &format!("{whose}.select"), raw.select);
    }
    r.set(&mut out.stop, raw.stop, |v| match v.as_str() {
        "first" => Ok(AttemptsStop::First),
        "all" => Ok(AttemptsStop::All),
        _ => Err(Bad::new(format!("`{whose}.attempts_stop` must be \"first\" or \"all\", found \"{v}\""))
            .hint("\"first\" stops the other attempts once one is a candidate; \"all\" waits for every attempt")),
    });
    out
}

/// A plan's settings checked against its agent: best of N runs tasks of local agents, so a
/// plan-mode agent or a batch executor with `attempts` above 1 is an error at the plan's
/// `attempts` (or its name); the agents of `agents` run as the plan's agent does (its
/// `report`, `stdin`, sandbox and executor: only their command differs), so one that differs
/// is an error at `agents` (`agents_span`).
#[allow(clippy::too_many_arguments)]
pub(super) fn check_plan(
    r: &mut Reporter<'_>,
    plan: &str,
    best: &BestOf,
    (agent_name, agent): (&str, Option<&AgentSpec>),
    agents: &BTreeMap<String, AgentSpec>,
    executor: super::executor::ExecutorKind,
    span: &std::ops::Range<usize>,
    agents_span: &std::ops::Range<usize>,
) {
    if best.attempts > 1 && executor != super::executor::ExecutorKind::Local {
        r.error_hint(
            span,
            format!(
                "plan `{plan}` runs {} attempts of each task through {}, but best of N runs local agents only",
                best.attempts,
                executor.as_str()
            ),
            "set `attempts = 1` for this plan or run it with `executor = \"local\"`",
        );
    }
    if let Some(own) = agent {
        for name in &best.agents {
            let Some(other) = agents.get(name) else {
                continue;
            };
            let differs = [
                ("report", other.report != own.report),
                ("stdin", other.stdin != own.stdin),
                ("sandbox", other.sandbox != own.sandbox),
                ("executor", other.executor != own.executor),
            ];
            if let Some((key, _)) = differs.iter().find(|(_, d)| *d) {
                r.error_hint(
                    agents_span,
                    format!(
                        "`agents` of plan `{plan}` names agent `{name}`, whose `{key}` differs from the plan's agent `{agent_name}`'s: the attempts of a task run as the plan's agent does, only their command differs"
                    ),
                    format!("give `{name}` the same `{key}` as `{agent_name}`, or leave it out of `agents`"),
                );
            }
        }
    }
    if best.attempts > 1 && agent.is_some_and(|a| a.mode == AgentMode::Plan) {
        r.error_hint(
            span,
            format!(
                "plan `{plan}` runs {} attempts of each task, but its agent works in plan mode (one agent for the whole plan)",
                best.attempts
            ),
            "best of N needs a task-mode agent: set `attempts = 1` for this plan or give it a task-mode agent",
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_agent_of_agents_must_run_as_the_plans_agent_does() {
        let text = "[defaults]\nagent = \"a\"\n\n[agents.a]\ncommand = [\"true\"]\n\n[agents.b]\ncommand = [\"true\"]\nreport = \"orch\"\n\n[[plan]]\nname = \"p\"\nfile = \"p.md\"\nattempts = 2\nagents = [\"a\", \"b\"]\n";
        let Err(super::super::ManifestError::Invalid { diagnostics, .. }) =
            super::super::parse_str(std::path::Path::new("/tmp/plans.toml"), text)
        else {
            panic!("accepted");
        };
        let m: Vec<String> = diagnostics.iter().map(|d| d.message.clone()).collect();
        assert!(
            m.iter()
                .any(|d| d.contains("names agent `b`, whose `report` differs")),
            "{m:?}"
        );
    }
}
