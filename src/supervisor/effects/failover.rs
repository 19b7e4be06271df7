//! Failover's effects: a launch with a fallback's command
//! ([`Action::UseAgent`](crate::supervisor::core::Action)), and an `agent_failover`'s `until`
//! by this machine's clock.

use super::Effects;
use crate::supervisor::state::RunId;

/// An `agent_failover`'s `until`: when the limit ends, by this machine's clock.
pub(super) fn stamp_until(e: &mut crate::supervisor::event::Event) {
    if let crate::supervisor::event::Event::AgentFailover {
        until,
        resume_in_ms,
        ..
    } = e
    {
        let end = chrono::Utc::now()
            + chrono::Duration::milliseconds(i64::try_from(*resume_in_ms).unwrap_or(i64::MAX / 2));
        *until = crate::status::timestamp(end);
    }
}

impl Effects<'_> {
    /// Attempt `run`, launched next, runs `agent` (a fallback) instead of its plan's agent: its
    /// command, with the rest of the plan's agent's settings (the manifest checked that they
    /// agree), as best of N's `agents` do.
    pub(super) fn use_agent(&mut self, run: RunId, agent: String) {
        let Some(spec) = self.ws.manifest.as_ref().and_then(|m| m.agents.get(&agent)) else {
            return;
        };
        let command = spec.command.clone();
        self.member_agents.insert(run, (agent, command));
    }
}

impl Effects<'_> {
    /// Checks a claim of an attempt: agent `name`'s client run once by orch
    /// ([`crate::preflight::probe`]), off the loop; its answer comes back as
    /// [`Input::Probed`](crate::supervisor::core::Input).
    pub(super) fn probe(&mut self, agent: usize, name: String) {
        let spec = self
            .ws
            .manifest
            .as_ref()
            .and_then(|m| m.agents.get(&name))
            .cloned();
        let orch_bin = self.ctx.orch_bin.clone();
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let (class, said) = match spec {
                Some(spec) => crate::preflight::probe::probe(
                    &name,
                    &spec,
                    &orch_bin,
                    crate::sandbox::abi() > 0,
                ),
                None => (
                    crate::agent_output::Class::Ordinary,
                    "no probe: the agent is not in the manifest".to_string(),
                ),
            };
            let _ = tx.send(super::Msg {
                reload: None,
                input: crate::supervisor::core::Input::Probed { agent, class, said },
            });
        });
    }
}
