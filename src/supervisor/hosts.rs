//! The run's `[[host]]` machines lost and back, said as `host_lost` and `host_back` (on the
//! console, `--json`, the event log, hooks): read every second from orch's own record of a host
//! that did not answer, as the plan's executor reads it ([`crate::executor::Executor::host_lost`]:
//! for ssh, written by the attempts' drivers and `orch up`'s probes when a connection ends or
//! cannot be made, removed by the first that reaches the host again), never from what a host
//! says of itself. Also what the drivers left to say of a host's lost attempts
//! ([`crate::executor::Executor::host_notes`]), each said once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::event::Event;
use super::runner::Effects;
use crate::executor::Executor;

/// The hosts said lost and not back yet.
#[derive(Default)]
pub(crate) struct HostWatch {
    lost: BTreeSet<String>,
}

impl HostWatch {
    /// Says each host of the run's plans lost since the last call, and each back.
    pub(crate) fn tick(&mut self, fx: &mut Effects<'_>) {
        // Each host with the state directories whose records speak of it (a plan of another
        // repository has its own), and the executor that reads them.
        let mut places: BTreeMap<(String, PathBuf), Arc<dyn Executor>> = BTreeMap::new();
        for pc in fx.plans.iter().flatten() {
            if pc.executor.hosts().is_empty() {
                continue;
            }
            let state_dir = super::reports::state_dir_of(pc);
            for h in pc.executor.hosts() {
                places
                    .entry((h.clone(), state_dir.clone()))
                    .or_insert_with(|| pc.executor.clone());
            }
        }
        let mut now_lost: Vec<(String, String)> = Vec::new();
        for ((host, state_dir), executor) in &places {
            if now_lost.iter().any(|(h, _)| h == host) {
                continue;
            }
            if let Some(cause) = executor.host_lost(state_dir, host) {
                now_lost.push((host.clone(), cause));
            }
        }
        for ((host, state_dir), executor) in &places {
            for message in executor.host_notes(state_dir, host) {
                fx.say(Event::Note {
                    plan: None,
                    message,
                });
            }
        }
        for (host, cause) in &now_lost {
            if self.lost.insert(host.clone()) {
                let cause = if cause.is_empty() {
                    "it does not answer".to_string()
                } else {
                    cause.clone()
                };
                fx.say(Event::HostLost {
                    host: host.clone(),
                    cause,
                });
            }
        }
        let back: Vec<String> = self
            .lost
            .iter()
            .filter(|h| !now_lost.iter().any(|(l, _)| l == *h))
            .cloned()
            .collect();
        for host in back {
            self.lost.remove(&host);
            fx.say(Event::HostBack { host });
        }
    }
}
