//! Failover (`fallback` of an `[agents.NAME]` or a `[[plan]]`): while a plan's agent is at a
//! usage limit, its tasks launch with the first of its fallbacks that may launch (neither at a
//! limit too nor stopped, by a failed preflight or a failure a person must fix); once the limit
//! resets they launch with its own agent again. Running attempts go on with the agent they
//! started with; what is committed stays. Which agent an attempt ran is orch's record of its
//! launch ([`RunRec::agent`]): a limit its output shows pauses that agent, never one the output
//! names. Moves are reported as `agent_failover` and `agent_restored`.

use std::collections::BTreeMap;

use super::{Action, Core, millis};
use crate::supervisor::event::Event;
use crate::supervisor::state::{AgentRec, AgentState, RunId, RunRec, Unit};

/// The index of agent `name` in `agents`, added (ready) when it is not there.
pub(super) fn agent_slot(agents: &mut Vec<AgentRec>, name: &str) -> usize {
    match agents.iter().position(|a| a.name == name) {
        Some(i) => i,
        None => {
            agents.push(AgentRec::new(name));
            agents.len() - 1
        }
    }
}

impl Core {
    /// Fallback agent `name` failed its pre-flight (`why`): failover passes over it. A plan's
    /// own agent is not marked (its pre-flight stops the run before it starts).
    pub(crate) fn fallback_unusable(&mut self, name: &str, why: &str) {
        let own = |a: usize| self.state.plans.iter().any(|p| p.agent_index == a);
        if let Some(a) = self.state.agents.iter().position(|r| r.name == name)
            && !own(a)
            && self.state.agents[a].state == AgentState::Ready
        {
            self.state.agents[a].state = AgentState::Unusable {
                cause: why.to_string(),
            };
        }
    }

    /// The agent plan `p`'s next launch uses: its own while it is ready; while it is at a usage
    /// limit, the first fallback that is ready; `None` when none may launch (its own agent is
    /// stopped: that is for a person to fix, not a reason to move its work).
    pub(super) fn agent_for(&self, p: usize) -> Option<usize> {
        let plan = &self.state.plans[p];
        let ready = |a: usize| {
            self.state_for(a, p)
                .is_some_and(|s| *s == AgentState::Ready)
        };
        let own = plan.agent_index;
        if ready(own) {
            return Some(own);
        }
        let limited = matches!(self.state_for(own, p), Some(AgentState::Paused { .. }));
        if !limited {
            return None;
        }
        plan.fallbacks.iter().copied().find(|&a| ready(a))
    }

    /// The agent attempt `run` of plan `p` runs, by orch's record of its launch.
    pub(super) fn agent_of(&self, run: RunId, p: usize) -> usize {
        match self.state.runs.get(&run) {
            Some(rr) => self.agent_of_rec(rr),
            None => self.state.plans[p].agent_index,
        }
    }

    /// The agent of attempt `rr`: a fallback it was launched with, else its plan's.
    pub(super) fn agent_of_rec(&self, rr: &RunRec) -> usize {
        rr.agent
            .unwrap_or(self.state.plans[rr.unit.plan()].agent_index)
    }

    /// Attempt `run` of `unit`, being launched now, runs the agent its plan uses now: a
    /// fallback is recorded on the attempt and handed to the effects before its launch.
    pub(super) fn choose_agent(&mut self, run: RunId, unit: Unit, out: &mut Vec<Action>) {
        let p = unit.plan();
        let own = self.state.plans[p].agent_index;
        let Some(a) = self.agent_for(p).filter(|&a| a != own) else {
            return;
        };
        if let Some(rr) = self.state.runs.get_mut(&run) {
            rr.agent = Some(a);
        }
        let agent = self.state.agents[a].name.clone();
        out.push(Action::UseAgent { run, agent });
    }

    /// Each plan's agent for its next launch ([`Core::agent_for`]), for the plans with
    /// fallbacks: taken before an agent's state changes, compared after by
    /// [`Core::report_moves`].
    pub(super) fn choices(&self) -> Vec<Option<usize>> {
        (0..self.state.plans.len())
            .map(|p| {
                let has = self.spec(p).is_some() && !self.state.plans[p].fallbacks.is_empty();
                if has { self.agent_for(p) } else { None }
            })
            .collect()
    }

    /// Reports the plans whose agent for the next launch changed since `before`: moved to a
    /// fallback (`agent_failover`, with the fallbacks skipped and why), back to their own
    /// agent (`agent_restored`), or with none left (a note naming why each was skipped).
    pub(super) fn report_moves(&mut self, before: &[Option<usize>], out: &mut Vec<Action>) {
        let mut moves: BTreeMap<(usize, usize), Vec<String>> = BTreeMap::new();
        let mut restored: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        let mut stranded: Vec<(usize, usize)> = Vec::new();
        for (p, &was) in before.iter().enumerate() {
            if self.spec(p).is_none() || self.state.plans[p].fallbacks.is_empty() {
                continue;
            }
            let now = self.agent_for(p);
            if now == was {
                continue;
            }
            let own = self.state.plans[p].agent_index;
            let name = self.plan_name(p);
            match now {
                Some(a) if a == own => restored.entry(a).or_default().push(name),
                // Away from its own agent, at a limit (a fallback is used only then).
                Some(a) => moves.entry((own, a)).or_default().push(name),
                None => stranded.push((p, own)),
            }
        }
        for ((from, to), plans) in moves {
            let first = plans
                .first()
                .and_then(|n| self.names.iter().position(|x| x == n));
            let wait = first.map_or(0, |p| self.limit_left(from, p));
            let skipped = first
                .map(|p| self.skipped_before(p, Some(to)))
                .unwrap_or_default();
            out.push(Action::Report(Event::AgentFailover {
                from: self.state.agents[from].name.clone(),
                to: self.state.agents[to].name.clone(),
                plans,
                until: String::new(),
                resume_in_ms: wait,
                skipped,
            }));
        }
        for (a, plans) in restored {
            out.push(Action::Report(Event::AgentRestored {
                agent: self.state.agents[a].name.clone(),
                plans,
            }));
        }
        for (p, from) in stranded {
            let own = self.state.plans[p].agent_index;
            if !matches!(self.state_for(own, p), Some(AgentState::Paused { .. })) {
                continue;
            }
            let skipped = self.skipped_before(p, None);
            out.push(Action::Report(Event::Note {
                plan: Some(self.plan_name(p)),
                message: format!(
                    "agent {} is at a usage limit and no fallback may take its tasks ({}): they wait for the reset",
                    self.state.agents[from].name,
                    skipped.join("; ")
                ),
            }));
        }
    }

    /// Plan `p`'s fallbacks passed over before `to` (all of them when `None`), each with why.
    fn skipped_before(&self, p: usize, to: Option<usize>) -> Vec<String> {
        let mut out = Vec::new();
        for &a in &self.state.plans[p].fallbacks {
            if Some(a) == to {
                break;
            }
            let r = &self.state.agents[a];
            let Some(state) = self.state_for(a, p) else {
                continue;
            };
            match state {
                AgentState::Ready => {}
                AgentState::Paused { .. } => out.push(format!(
                    "{} is at a usage limit too ({} left)",
                    r.name,
                    crate::duration::format_duration(std::time::Duration::from_millis(
                        self.limit_left(a, p)
                    ))
                )),
                AgentState::Stopped { cause, .. } => out.push(format!(
                    "{} cannot work: {}",
                    r.name,
                    cause.lines().next().unwrap_or("").trim()
                )),
                AgentState::Unusable { cause } => out.push(format!(
                    "{} cannot work: its pre-flight failed: {}",
                    r.name,
                    cause.lines().next().unwrap_or("").trim()
                )),
            }
        }
        out
    }

    /// How long agent `a`'s limit lasts for plan `p` from the core's clock, in milliseconds (0
    /// when it is not paused).
    fn limit_left(&self, a: usize, p: usize) -> u64 {
        let Some(AgentState::Paused { until, .. }) = self.state_for(a, p) else {
            return 0;
        };
        self.clock
            .map_or(0, |now| millis(until.saturating_duration_since(now)))
    }
}
