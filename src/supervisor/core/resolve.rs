//! The merge train's resolutions (`resolve`, issue 37): each note of a plan's resolver becomes
//! its event; what the resolver spent is the plan's (its budget applies to what it starts next);
//! the run's summary counts the conflicts resolved by an agent and those left for a person.

use super::{Action, Core};
use crate::merge::resolve::ResolveNote;
use crate::supervisor::event::Event;
use crate::supervisor::state::MergeState;

impl Core {
    pub(super) fn on_resolving(&mut self, p: usize, note: ResolveNote, out: &mut Vec<Action>) {
        let event = match note {
            ResolveNote::Started {
                plan,
                agent,
                files,
                why,
                attempt,
            } => Event::ResolveStarted {
                plan,
                agent,
                files,
                reason: why,
                attempt,
            },
            ResolveNote::Resolved {
                plan,
                agent,
                files,
                commit,
                attempt,
                usage,
            } => {
                self.state.resolved_by_agent += 1;
                Event::Resolved {
                    plan,
                    agent,
                    files,
                    commit,
                    attempt,
                    usage,
                }
            }
            ResolveNote::Failed {
                plan,
                agent,
                files,
                cause,
                saved,
                attempt,
                usage,
            } => Event::ResolveFailed {
                plan,
                agent,
                files,
                cause,
                saved,
                attempt,
                usage,
            },
        };
        let usage = match &event {
            Event::Resolved { usage, .. } | Event::ResolveFailed { usage, .. } => *usage,
            _ => None,
        };
        // The event first: a budget the resolver's spending reaches is told after it.
        out.push(Action::Report(event));
        self.spend(p, usage, out);
    }

    /// The plans the merge train left unmerged for a conflict or a red verify.
    pub(super) fn left_for_a_person(&self) -> usize {
        self.state
            .plans
            .iter()
            .filter(|p| matches!(p.merge, MergeState::NotMerged("conflict" | "verify_failed")))
            .count()
    }
}
