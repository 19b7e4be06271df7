//! The merge train's resolutions (`resolve`): each note of a plan's resolver becomes
//! its event; what the resolver spent is the plan's (its budget applies to what it starts next);
//! the run's summary counts the conflicts resolved by an agent and those left for a person.

use super::{Action, Core};
use crate::merge::MergeResult;
use crate::merge::resolve::ResolveNote;
use crate::supervisor::event::Event;
use crate::supervisor::state::MergeState;

impl Core {
    pub(super) fn on_resolving(&mut self, p: usize, note: ResolveNote, out: &mut Vec<Action>) {
        let usage = match &note {
            ResolveNote::Started { .. } => {
                self.state.resolving += 1;
                None
            }
            ResolveNote::Resolved { usage, .. } => {
                self.state.resolving = self.state.resolving.saturating_sub(1);
                self.state.resolved_by_agent += 1;
                *usage
            }
            ResolveNote::Failed { usage, .. } => {
                self.state.resolving = self.state.resolving.saturating_sub(1);
                *usage
            }
        };
        // The event first: a budget the resolver's spending reaches is told after it.
        out.push(Action::Report(Event::Resolve(note)));
        self.spend(p, usage, out);
    }

    /// The plans the merge train left unmerged for a conflict or a red verify.
    pub(super) fn left_for_a_person(&self) -> usize {
        self.state
            .plans
            .iter()
            .filter(|p| {
                matches!(
                    p.merge,
                    MergeState::NotMerged(MergeResult::Conflict | MergeResult::VerifyFailed)
                )
            })
            .count()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::tests::{cfg, core, launches, plan, reports, spec};
    use super::super::*;
    use crate::agent_output::Usage;
    use crate::graph::Graph;
    use crate::merge::resolve::ResolveNote;

    fn started() -> ResolveNote {
        ResolveNote::Started {
            plan: "b".into(),
            agent: "fixer".into(),
            files: vec!["shared.txt".into()],
            why: "conflict".into(),
            attempt: 1,
        }
    }

    #[test]
    fn a_resolver_holds_a_slot_spends_under_its_plan_and_is_counted() {
        let plans = vec![
            plan("## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n"),
            plan("## Phase 1: B\n- [ ] 1.1 b\n"),
        ];
        let names: Vec<String> = vec!["a".into(), "b".into()];
        let g = Graph::build(&plans, &names, &[]).expect("acyclic");
        let mut c = core(cfg(2), &g, &plans, vec![spec("a"), spec("b")]);
        let t0 = Instant::now();
        // The resolver of b runs: one of the two slots is its.
        let out = c.handle(
            t0,
            Input::Resolving {
                plan: 1,
                note: started(),
            },
        );
        assert!(reports(&out).iter().any(
            |e| matches!(e, Event::Resolve(ResolveNote::Started { plan, .. }) if plan == "b")
        ));
        assert_eq!(
            launches(&out).len(),
            1,
            "max_agents = 2, one held by the resolver"
        );
        assert!(launches(&c.handle(t0, Input::Tick)).is_empty());
        let usage = Usage {
            input_tokens: 1000,
            output_tokens: 10,
            ..Usage::default()
        };
        let out = c.handle(
            t0,
            Input::Resolving {
                plan: 1,
                note: ResolveNote::Resolved {
                    plan: "b".into(),
                    agent: "fixer".into(),
                    files: vec!["shared.txt".into()],
                    commit: "c0ffee".into(),
                    attempt: 1,
                    usage: Some(usage),
                },
            },
        );
        assert!(
            reports(&out)
                .iter()
                .any(|e| matches!(e, Event::Resolve(ResolveNote::Resolved { commit, .. }) if commit == "c0ffee"))
        );
        assert_eq!(c.state.resolving, 0);
        assert_eq!(c.state.resolved_by_agent, 1);
        assert_eq!(c.state.plans[1].usage.input_tokens, 1000);
        assert_eq!(c.state.usage.input_tokens, 1000);
    }
}
