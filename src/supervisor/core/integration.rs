//! The integration preview in the core: when a test is due (a plan branch moved, the interval
//! passed, a slot free after every launch that was due), what a result means (events, the plans
//! the merge train holds back).

use std::time::Instant;

use super::{Action, Core};
use crate::merge::integrate::IntegrationReport;
use crate::supervisor::event::Event;

/// The preview's state in a run.
#[derive(Clone, Debug, Default)]
pub struct IntegState {
    /// A test runs (it holds one of the `max_agents` slots).
    pub running: bool,
    /// A plan branch or the target may have moved since the last test started.
    pub dirty: bool,
    /// When the last test started.
    pub last_started: Option<Instant>,
    /// The plans the last red test named (indices), empty when green.
    pub failing: Vec<usize>,
    /// Their names, as reported.
    pub failing_names: Vec<String>,
}

impl Core<'_> {
    /// Slots held by the preview (0 or 1).
    pub(super) fn integration_slots(&self) -> usize {
        usize::from(self.state.integration.running)
    }

    /// Something may have moved a plan branch or the target.
    pub(super) fn branches_moved(&mut self) {
        if self.cfg.integrate.is_some() {
            self.state.integration.dirty = true;
        }
    }

    /// After the launches: starts a test when one is due and a slot is free.
    pub(super) fn maybe_integrate(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(interval) = self.cfg.integrate else {
            return;
        };
        let i = &self.state.integration;
        if i.running || !i.dirty || self.state.graceful {
            return;
        }
        if i.last_started.is_some_and(|t| now < t + interval) {
            return;
        }
        if self.state.runs.len() >= self.cfg.max_agents {
            return;
        }
        let i = &mut self.state.integration;
        i.running = true;
        i.dirty = false;
        i.last_started = Some(now);
        out.push(Action::Integrate);
    }

    /// Whether the merge train holds plan `p` back: the last test named it.
    pub(super) fn integration_holds(&self, p: usize) -> bool {
        self.state.integration.failing.contains(&p)
    }

    pub(super) fn on_integrated(
        &mut self,
        result: Result<IntegrationReport, String>,
        out: &mut Vec<Action>,
    ) {
        self.state.integration.running = false;
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                out.push(Action::Report(Event::Note {
                    plan: None,
                    message: format!("the integration test could not run: {e}"),
                }));
                return;
            }
        };
        match report.failure {
            Some(f) => {
                let failing: Vec<usize> = f
                    .plans
                    .iter()
                    .filter_map(|n| self.names.iter().position(|m| m == n))
                    .collect();
                let changed = self.state.integration.failing_names != f.plans;
                self.state.integration.failing = failing;
                self.state.integration.failing_names = f.plans.clone();
                if changed {
                    out.push(Action::Report(Event::IntegrationFailed {
                        plans: f.plans,
                        culprit: f.culprit,
                        conflict: f.conflict,
                        verify: f.verify,
                        commits: f.commits,
                    }));
                }
            }
            None => {
                let was = std::mem::take(&mut self.state.integration.failing_names);
                self.state.integration.failing.clear();
                if !was.is_empty() {
                    out.push(Action::Report(Event::IntegrationFixed {
                        plans: was,
                        commits: report.tested,
                    }));
                }
            }
        }
    }
}
