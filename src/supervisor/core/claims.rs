//! What an attempt's output says about its agent (a usage limit, an invalid key, flags its
//! client refuses) is a claim: the output is shaped by the agent (the model's text, a tool's
//! output, a script that prints the words and exits 1). A claim holds the claiming plan only
//! (its tasks wait for the reset or go to a fallback; a failure a person must fix stops the
//! plan's use of the agent); the agent is paused or stopped for every other plan only once orch
//! has checked the claim itself:
//!
//! - an agent whose client orch can ask ([`AgentRec::probe`], a preset of a known client): a
//!   probe of the client ([`Action::Probe`]: one short prompt, in a directory of its own,
//!   outside every worktree, bounded in time), whose own output shows the same kind of failure;
//! - an agent of one's own: a claim of the same kind by an attempt of another plan while the
//!   first one is live (a limit until the reset it named, a failure for [`CLAIM_WINDOW`]).
//!
//! At most one probe of an agent runs at a time, and one starts at most every [`PROBE_GAP`]: an
//! agent that keeps claiming costs one short prompt that often, no more.

use std::time::{Duration, Instant};

use super::{Action, Core, MAX_PAUSE, millis};
use crate::agent_output::{Class, Fatal};
use crate::supervisor::event::Event;
use crate::supervisor::state::{AgentState, Claimed, Hold, Timer};

/// How long a claim of a failure a person must fix counts as a second plan's word for another
/// plan's claim (a limit's claim counts until the reset it named).
pub(crate) const CLAIM_WINDOW: Duration = Duration::from_secs(30 * 60);

/// The least time between two probes of one agent's client.
pub(crate) const PROBE_GAP: Duration = Duration::from_secs(5 * 60);

impl Core {
    /// Agent `a`'s state as plan `p` sees it: the agent's own (what orch confirmed) unless it is
    /// ready, else plan `p`'s hold on it, if any.
    pub(super) fn state_for(&self, a: usize, p: usize) -> Option<&AgentState> {
        let rec = self.state.agents.get(a)?;
        if rec.state != AgentState::Ready {
            return Some(&rec.state);
        }
        let name = self.names.get(p)?;
        match rec.holds.get(name) {
            Some(h) if h.state != AgentState::Ready => Some(&h.state),
            _ => Some(&rec.state),
        }
    }

    /// Whether orch can probe agent `name`'s client (set from the manifest before the run).
    pub(crate) fn set_probe(&mut self, name: &str, probe: bool) {
        if let Some(a) = self.state.agents.iter_mut().find(|r| r.name == name) {
            a.probe = probe;
        }
    }

    /// An attempt of plan `p` that ran agent `a` (orch's record of its launch) claims `class`
    /// (a limit or a failure a person must fix), with `cause`, its output's words: plan `p`
    /// waits or stops using `a`; the claim is checked before it touches another plan.
    pub(super) fn claim(
        &mut self,
        now: Instant,
        a: usize,
        p: usize,
        class: Class,
        cause: String,
        out: &mut Vec<Action>,
    ) {
        let kind = match class {
            Class::Limit(_) => Claimed::Limit,
            Class::Fatal(f) => Claimed::Fatal(f),
            Class::Ordinary => return,
        };
        let wait = match class {
            Class::Limit(w) => w,
            _ => None,
        };
        if a >= self.state.agents.len() || p >= self.names.len() {
            return;
        }
        let before = self.choices();
        self.hold(now, a, p, kind, wait, cause.clone(), out);
        self.report_moves(&before, out);
        self.check_claim(now, a, p, kind, wait, cause, out);
    }

    /// Plan `p`'s own hold on agent `a`: a pause until the reset its attempt named (or a
    /// backoff doubling with each pause of the plan in a row), or a stop for the run.
    #[allow(clippy::too_many_arguments)]
    fn hold(
        &mut self,
        now: Instant,
        a: usize,
        p: usize,
        kind: Claimed,
        wait: Option<Duration>,
        cause: String,
        out: &mut Vec<Action>,
    ) {
        let base = self.cfg.limit_backoff;
        let plan = self.names[p].clone();
        let agent = &mut self.state.agents[a];
        let name = agent.name.clone();
        let old = agent.holds.get(&plan).cloned();
        if matches!(
            old.as_ref().map(|h| &h.state),
            Some(AgentState::Stopped { .. })
        ) {
            return;
        }
        match kind {
            Claimed::Limit => {
                let pauses = match (wait, &old) {
                    (Some(_), _) => 0,
                    (None, Some(h)) => h.pauses + 1,
                    (None, None) => 1,
                };
                let held = match wait {
                    Some(w) => w.max(Duration::from_millis(500)),
                    None => base
                        .saturating_mul(1u32 << pauses.saturating_sub(1).min(16))
                        .min(MAX_PAUSE),
                };
                let until = now + held;
                if let Some(AgentState::Paused { until: old, .. }) = old.as_ref().map(|h| &h.state)
                    && *old >= until
                {
                    return;
                }
                agent.holds.insert(
                    plan.clone(),
                    Hold {
                        state: AgentState::Paused {
                            until,
                            reason: cause.clone(),
                        },
                        kind,
                        live_until: until,
                        wait,
                        pauses,
                        cause: cause.clone(),
                    },
                );
                self.state.timers.insert((until, Timer::Release(a)));
                out.push(Action::RecordPause {
                    plans: vec![p],
                    pause: Some((name.clone(), cause.clone(), held)),
                });
                out.push(Action::Report(Event::AgentPaused {
                    agent: name,
                    reason: cause,
                    resume_in_ms: millis(held),
                    plan: Some(plan),
                }));
            }
            Claimed::Fatal(f) => {
                let fix = f.fix(&name);
                agent.holds.insert(
                    plan.clone(),
                    Hold {
                        state: AgentState::Stopped {
                            cause: cause.clone(),
                            fix: fix.clone(),
                        },
                        kind,
                        live_until: now + CLAIM_WINDOW,
                        wait: None,
                        pauses: 0,
                        cause: cause.clone(),
                    },
                );
                out.push(Action::Report(Event::AgentStopped {
                    agent: name,
                    class: f.as_str().to_string(),
                    cause,
                    fix,
                    plan: Some(plan),
                }));
            }
        }
    }

    /// Checks plan `p`'s claim on agent `a`: a probe of its client, or (an agent orch cannot
    /// ask) another plan's live claim of the same kind.
    #[allow(clippy::too_many_arguments)]
    fn check_claim(
        &mut self,
        now: Instant,
        a: usize,
        p: usize,
        kind: Claimed,
        wait: Option<Duration>,
        cause: String,
        out: &mut Vec<Action>,
    ) {
        let plan = self.names[p].clone();
        let agent = &self.state.agents[a];
        let name = agent.name.clone();
        if agent.state != AgentState::Ready || !self.others_use(a, p) {
            return;
        }
        if agent.probe {
            if agent.probing {
                return;
            }
            if let Some(at) = agent.probed_at
                && now < at + PROBE_GAP
            {
                self.note(
                    &plan,
                    format!(
                        "the attempt claims agent {name} {}; orch probed its client less than {} ago and does not again yet: only plan {plan} waits",
                        kind_words(kind),
                        crate::duration::format_duration(PROBE_GAP)
                    ),
                    out,
                );
                return;
            }
            let agent = &mut self.state.agents[a];
            agent.probing = true;
            agent.probed_at = Some(now);
            self.note(
                &plan,
                format!(
                    "the attempt claims agent {name} {}: only plan {plan} waits while orch asks the client itself (a probe)",
                    kind_words(kind)
                ),
                out,
            );
            out.push(Action::Probe { agent: a, name });
            return;
        }
        let other = agent
            .holds
            .iter()
            .find(|(q, h)| **q != plan && h.kind == kind && now < h.live_until)
            .map(|(q, _)| q.clone());
        let Some(other) = other else {
            self.note(
                &plan,
                format!(
                    "the attempt claims agent {name} {}; orch cannot ask its client (an agent of your own): it is confirmed for every plan only when an attempt of another plan claims the same within {}; meanwhile only plan {plan} waits",
                    kind_words(kind),
                    match kind {
                        Claimed::Limit => "the limit's window".to_string(),
                        Claimed::Fatal(_) => crate::duration::format_duration(CLAIM_WINDOW),
                    }
                ),
                out,
            );
            return;
        };
        let why = format!(
            "{cause} (claimed by attempts of plans {other} and {plan}: confirmed for every plan)"
        );
        match kind {
            Claimed::Limit => self.pause_agent(now, a, wait, why, out),
            Claimed::Fatal(f) => self.stop_agent(a, f, why, out),
        }
    }

    /// orch's probe of agent `a`'s client answered: a limit, or the failure a plan claimed,
    /// pauses or stops the agent for every plan; anything else leaves the claims with their
    /// plans.
    pub(super) fn on_probed(
        &mut self,
        now: Instant,
        a: usize,
        class: Class,
        said: String,
        out: &mut Vec<Action>,
    ) {
        let Some(agent) = self.state.agents.get_mut(a) else {
            return;
        };
        agent.probing = false;
        let name = agent.name.clone();
        // The claims live when the probe started, or made since (a short limit may be over
        // by the time the probe answers).
        let since = agent.probed_at.unwrap_or(now);
        let claimed: Vec<(String, Claimed)> = agent
            .holds
            .iter()
            .filter(|(_, h)| since <= h.live_until)
            .map(|(q, h)| (q.clone(), h.kind))
            .collect();
        let shown = match class {
            Class::Limit(_) => Some(Claimed::Limit),
            Class::Fatal(f) => Some(Claimed::Fatal(f)),
            Class::Ordinary => None,
        };
        let confirms: Vec<&String> = claimed
            .iter()
            .filter(|(_, k)| Some(*k) == shown)
            .map(|(q, _)| q)
            .collect();
        let said = said.lines().next().unwrap_or("").trim().to_string();
        let plans = claimed
            .iter()
            .map(|(q, _)| q.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if confirms.is_empty() {
            out.push(Action::Report(Event::Note {
                plan: None,
                message: format!(
                    "orch's probe of agent {name}'s client does not show what plans {plans} claimed ({}): the agent goes on for the other plans",
                    if said.is_empty() { "it said nothing" } else { &said }
                ),
            }));
            return;
        }
        let why = format!("{said} (orch's probe of its client)");
        match class {
            Class::Limit(wait) => self.pause_agent(now, a, wait, why, out),
            Class::Fatal(f) => self.stop_agent(a, f, why, out),
            Class::Ordinary => {}
        }
    }

    /// The holds on agent `a` whose time is up are over: their plans use it again.
    pub(super) fn release_holds(&mut self, now: Instant, a: usize, out: &mut Vec<Action>) {
        let before = self.choices();
        let Some(agent) = self.state.agents.get_mut(a) else {
            return;
        };
        let name = agent.name.clone();
        let mut released = Vec::new();
        for (plan, h) in &mut agent.holds {
            if let AgentState::Paused { until, .. } = h.state
                && until <= now
            {
                h.state = AgentState::Ready;
                released.push(plan.clone());
            }
        }
        for plan in released {
            if let Some(p) = self.names.iter().position(|n| *n == plan) {
                out.push(Action::RecordPause {
                    plans: vec![p],
                    pause: None,
                });
            }
            out.push(Action::Report(Event::AgentResumed {
                agent: name.clone(),
                plan: Some(plan),
            }));
        }
        self.report_moves(&before, out);
    }

    /// Whether a plan of the run other than `p`, not finished, may launch agent `a` (its own
    /// agent or a fallback): only then is there anything a claim of `p` could touch.
    fn others_use(&self, a: usize, p: usize) -> bool {
        (0..self.state.plans.len()).any(|q| {
            let plan = &self.state.plans[q];
            q != p
                && self.spec(q).is_some()
                && !plan.finished
                && (plan.agent_index == a || plan.fallbacks.contains(&a))
        })
    }

    /// Whether a probe of some agent's client runs (the run waits for its answer).
    pub(super) fn probing(&self) -> bool {
        self.state.agents.iter().any(|a| a.probing)
    }

    fn note(&self, plan: &str, message: String, out: &mut Vec<Action>) {
        out.push(Action::Report(Event::Note {
            plan: Some(plan.to_string()),
            message,
        }));
    }
}

/// What a claim of `kind` says, in words.
fn kind_words(kind: Claimed) -> &'static str {
    match kind {
        Claimed::Limit => "is at a usage limit",
        Claimed::Fatal(Fatal::Auth) => "cannot log in",
        Claimed::Fatal(_) => "cannot work",
    }
}
