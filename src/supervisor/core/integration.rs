//! The integration preview in the core: when a test is due (a plan branch moved, the interval
//! passed, a slot free after every launch that was due), what a result means (events, the plans
//! the merge train holds back).

use std::time::Instant;

use super::{Action, Core};
use crate::merge::integrate::IntegrationReport;
use crate::supervisor::event::Event;

/// The preview's state in a run.
#[derive(Clone, Debug, Default)]
pub(crate) struct IntegState {
    /// A test runs (it holds one of the `max_agents` slots).
    pub(crate) running: bool,
    /// A plan branch or the target may have moved since the last test started.
    pub(crate) dirty: bool,
    /// When the last test started.
    pub(crate) last_started: Option<Instant>,
    /// The plans the last red test named (indices), empty when green.
    pub(crate) failing: Vec<usize>,
    /// Their names, as reported.
    pub(crate) failing_names: Vec<String>,
    /// The plan branches' commits of the last failure reported (`plans`' tips): the same plans
    /// failing again with other commits is reported again.
    pub(crate) failing_commits: Vec<(String, String)>,
    /// Tests started in this run.
    pub(crate) started: u64,
    /// The number (`started` when it began) of the last test that ended.
    pub(crate) done: u64,
    /// The first test whose result the merge train waits for: one that starts after the target
    /// last moved (the train's own merges).
    pub(crate) target_needs: u64,
    /// Per plan queued for the train: the first test that starts after the plan finished.
    pub(crate) plan_needs: Vec<(usize, u64)>,
    /// Why the last test did not run `verify` (its plans run in containers of different
    /// images), as noted: the same reason is noted once.
    pub(crate) skipped: Option<String>,
}

impl Core {
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

    /// The target moved (a merge of the train): the next merge waits for a test begun after.
    pub(super) fn target_moved(&mut self) {
        let i = &mut self.state.integration;
        i.target_needs = i.started + 1;
    }

    /// Plan `p` is queued for the merge train: it waits for a test begun after its last commit.
    pub(super) fn queued_for_train(&mut self, p: usize) {
        if self.cfg.integrate.is_some() {
            let i = &mut self.state.integration;
            let needs = i.started + 1;
            i.plan_needs.retain(|&(q, _)| q != p);
            i.plan_needs.push((p, needs));
        }
    }

    /// Whether the merge train waits for a test to merge plan `p`: none has ended yet that
    /// began after `p` finished and after the target last moved. A queued merge makes that test
    /// due at once, whatever the interval ([`Self::maybe_integrate`]).
    pub(super) fn train_waits_for_test(&self, p: usize) -> bool {
        self.cfg.integrate.is_some() && self.state.integration.done < self.train_needs(p)
    }

    fn train_needs(&self, p: usize) -> u64 {
        let i = &self.state.integration;
        let plan = i
            .plan_needs
            .iter()
            .find(|&&(q, _)| q == p)
            .map_or(0, |&(_, n)| n);
        plan.max(i.target_needs)
    }

    /// After the launches: starts a test when one is due and a slot is free. Due: a branch
    /// moved and the interval passed, or a merge of the train waits for one.
    pub(super) fn maybe_integrate(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(interval) = self.cfg.integrate else {
            return;
        };
        let i = &self.state.integration;
        if i.running || self.state.graceful {
            return;
        }
        let train_waits = self.state.merging.is_none()
            && self
                .state
                .merge_queue
                .iter()
                .any(|&p| self.train_waits_for_test(p));
        if !train_waits && (!i.dirty || i.last_started.is_some_and(|t| now < t + interval)) {
            return;
        }
        if self.state.runs.len() >= self.cfg.max_agents {
            return;
        }
        self.start_test(now, out);
    }

    /// The run would end with commits no test has seen (a long interval): one last test,
    /// whatever the interval. Whether it started.
    pub(super) fn final_test(&mut self, now: Instant, out: &mut Vec<Action>) -> bool {
        let i = &self.state.integration;
        if self.cfg.integrate.is_none() || i.running || !i.dirty || self.state.graceful {
            return false;
        }
        self.start_test(now, out);
        true
    }

    fn start_test(&mut self, now: Instant, out: &mut Vec<Action>) {
        let i = &mut self.state.integration;
        i.running = true;
        i.dirty = false;
        i.last_started = Some(now);
        i.started += 1;
        out.push(Action::Integrate);
    }

    /// Whether the merge train holds plan `p` back: the last test named it (unless its
    /// resolver takes a red verify, `resolve_verify`: its merge's verify then goes to it).
    pub(super) fn integration_holds(&self, p: usize) -> bool {
        self.state.integration.failing.contains(&p)
            && !self.spec(p).is_some_and(|s| s.resolves_verify)
    }

    pub(super) fn on_integrated(
        &mut self,
        result: Result<IntegrationReport, String>,
        out: &mut Vec<Action>,
    ) {
        let i = &mut self.state.integration;
        i.running = false;
        // An ended test counts for the train even when it could not run: the train's merges
        // still run `verify` as `orch merge` does, and the train never waits forever.
        i.done = i.started;
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
        if report.verify_skipped != i.skipped {
            i.skipped.clone_from(&report.verify_skipped);
            if let Some(why) = &report.verify_skipped {
                out.push(Action::Report(Event::Note {
                    plan: None,
                    message: format!("the integration test checked textual conflicts only: {why}"),
                }));
            }
        }
        match report.failure {
            Some(f) => {
                let failing: Vec<usize> = f
                    .plans
                    .iter()
                    .filter_map(|n| self.names.iter().position(|m| m == n))
                    .collect();
                // The plans' commits (not the target's: the target moving alone changes
                // nothing in what the plans' agents must fix).
                let commits: Vec<(String, String)> = f
                    .commits
                    .iter()
                    .filter(|c| c.plan.is_some())
                    .map(|c| (c.branch.clone(), c.commit.clone()))
                    .collect();
                let i = &mut self.state.integration;
                let changed = i.failing_names != f.plans || i.failing_commits != commits;
                i.failing = failing;
                i.failing_names = f.plans.clone();
                i.failing_commits = commits;
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
                self.state.integration.failing_commits.clear();
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
