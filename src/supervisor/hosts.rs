//! The run's `[[host]]` machines lost and back, said as `host_lost` and `host_back` (on the
//! console, `--json`, the event log, hooks): read every second from orch's own record of a host
//! that did not answer ([`crate::executor::ssh::slots::lost`]: written by the attempts' drivers
//! and `orch up`'s probes when a connection ends or cannot be made, removed by the first that
//! reaches the host again), never from what a host says of itself.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::event::Event;
use super::runner::Effects;
use crate::executor::ExecutorKind;
use crate::executor::ssh::slots;

/// The hosts said lost and not back yet.
#[derive(Default)]
pub(crate) struct HostWatch {
    lost: BTreeSet<String>,
}

impl HostWatch {
    /// Says each host of the run's ssh plans lost since the last call, and each back.
    pub(crate) fn tick(&mut self, fx: &mut Effects<'_>) {
        // Each host with the state directories whose records speak of it (a plan of another
        // repository has its own).
        let mut places: BTreeSet<(String, PathBuf)> = BTreeSet::new();
        for pc in fx.plans.iter().flatten() {
            if pc.entry.executor != ExecutorKind::Ssh {
                continue;
            }
            let state_dir = super::reports::state_dir_of(pc);
            for h in &pc.entry.hosts {
                places.insert((h.clone(), state_dir.clone()));
            }
        }
        let mut now_lost: Vec<(String, String)> = Vec::new();
        for (host, state_dir) in &places {
            if now_lost.iter().any(|(h, _)| h == host) {
                continue;
            }
            if let Some(l) = slots::lost(state_dir, host) {
                now_lost.push((host.clone(), l.cause));
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
