//! Claims, input by input: what one plan's attempt says about its agent (a usage limit, an
//! invalid key) holds that plan only until orch checked it: a probe of the client that shows
//! the same pauses or stops the agent for the others, one that does not leaves them running;
//! an agent orch cannot ask is confirmed by a claim of another plan. No processes.

use std::time::{Duration, Instant};

use super::tests::{cfg, core, exit_with, finish, launches, plan, reports, spec};
use super::*;
use crate::agent_output::{AgentOutput, Class, Fatal};
use crate::graph::Graph;
use crate::supervisor::state::{AgentState, RunId, Unit};

const TWO: &str = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b (depends: 1.1)\n";

/// Plans `a`, `b` and `c`, each with two tasks in a row, all on agent `script`; `probe`: orch
/// can ask its client.
fn three_plans(probe: bool) -> (Core, Instant) {
    let plans = vec![plan(TWO), plan(TWO), plan(TWO)];
    let names: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
    let g = Graph::build(&plans, &names, &[]).expect("acyclic");
    let mut c = core(cfg(8), &g, &plans, vec![spec("a"), spec("b"), spec("c")]);
    c.set_probe("script", probe);
    (c, Instant::now())
}

fn limited(secs: u64) -> AgentOutput {
    AgentOutput {
        error: Some("You've hit your usage limit. Try again in 10 minutes.".into()),
        class: Class::Limit(Some(Duration::from_secs(secs))),
        ..AgentOutput::default()
    }
}

fn bad_key() -> AgentOutput {
    AgentOutput {
        error: Some("Invalid API key · Please run /login".into()),
        class: Class::Fatal(Fatal::Auth),
        ..AgentOutput::default()
    }
}

fn run_of(l: &[(RunId, Unit, u32)], p: usize) -> (RunId, Unit) {
    let x = l
        .iter()
        .find(|x| x.1.plan() == p)
        .expect("a launch of the plan");
    (x.0, x.1)
}

fn probes(out: &[Action]) -> Vec<usize> {
    out.iter()
        .filter_map(|a| match a {
            Action::Probe { agent, .. } => Some(*agent),
            _ => None,
        })
        .collect()
}

/// The plans the `agent_paused` / `agent_stopped` events of `out` name (`*`: every plan).
fn held(out: &[Action]) -> Vec<String> {
    reports(out)
        .into_iter()
        .filter_map(|e| match e {
            Event::AgentPaused { plan, .. } | Event::AgentStopped { plan, .. } => {
                Some(plan.clone().unwrap_or_else(|| "*".into()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_claim_of_plan_a_pauses_only_a_until_a_probe_confirms_it() {
    let (mut c, t0) = three_plans(true);
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(l.len(), 3);
    let (ra, _) = run_of(&l, 0);
    let (rb, ub) = run_of(&l, 1);
    let out = exit_with(&mut c, t0, ra, limited(600));
    assert_eq!(held(&out), ["a"], "{out:?}");
    assert_eq!(probes(&out), [0], "one probe of the client: {out:?}");
    assert_eq!(c.state().agents[0].state, AgentState::Ready);
    assert!(launches(&out).is_empty(), "a's task waits: {out:?}");
    // b goes on meanwhile: its task done, its next one launches.
    let out = finish(&mut c, t0, rb, ub);
    let l = launches(&out);
    assert_eq!(l.len(), 1, "{out:?}");
    assert_eq!(l[0].1.plan(), 1);
    // A second claim while the probe runs asks for no second probe.
    let out = exit_with(&mut c, t0, l[0].0, limited(600));
    assert!(probes(&out).is_empty(), "{out:?}");
    assert_eq!(held(&out), ["b"]);
    // The probe shows the limit: the agent pauses for every plan (c's next launch waits too).
    let out = c.handle(
        t0 + Duration::from_secs(1),
        Input::Probed {
            agent: 0,
            class: Class::Limit(Some(Duration::from_secs(300))),
            said: "You've hit your usage limit.".into(),
        },
    );
    assert_eq!(held(&out), ["*"], "{out:?}");
    assert!(matches!(
        c.state().agents[0].state,
        AgentState::Paused { .. }
    ));
    assert!(launches(&out).is_empty());
}

#[test]
fn a_probe_that_shows_no_limit_leaves_the_other_plans_running() {
    for output in [limited(600), bad_key()] {
        let (mut c, t0) = three_plans(true);
        let l = launches(&c.handle(t0, Input::Tick));
        let (ra, _) = run_of(&l, 0);
        let (rb, ub) = run_of(&l, 1);
        let out = exit_with(&mut c, t0, ra, output.clone());
        assert_eq!(held(&out), ["a"]);
        assert_eq!(probes(&out), [0]);
        let out = c.handle(
            t0 + Duration::from_secs(1),
            Input::Probed {
                agent: 0,
                class: Class::Ordinary,
                said: "ok".into(),
            },
        );
        assert!(held(&out).is_empty(), "{out:?}");
        assert!(
            reports(&out).iter().any(|e| matches!(
                e,
                Event::Note { message, .. } if message.contains("does not show what plans a claimed")
            )),
            "{out:?}"
        );
        assert_eq!(c.state().agents[0].state, AgentState::Ready);
        // b's next task launches; a's waits (its own claim stands for a alone).
        let out = finish(&mut c, t0 + Duration::from_secs(2), rb, ub);
        let l = launches(&out);
        assert_eq!(l.len(), 1, "{out:?}");
        assert_eq!(l[0].1.plan(), 1);
        // A probe that shows a failure of another kind confirms nothing either.
        let (mut c, t0) = three_plans(true);
        let l = launches(&c.handle(t0, Input::Tick));
        let _ = exit_with(&mut c, t0, run_of(&l, 0).0, output.clone());
        let other = match output.class {
            Class::Limit(_) => Class::Fatal(Fatal::Auth),
            _ => Class::Limit(None),
        };
        let out = c.handle(
            t0,
            Input::Probed {
                agent: 0,
                class: other,
                said: "something else".into(),
            },
        );
        assert!(held(&out).is_empty(), "{out:?}");
        assert_eq!(c.state().agents[0].state, AgentState::Ready);
    }
}

#[test]
fn an_auth_claim_stops_only_its_plan_until_the_probe_shows_it() {
    let (mut c, t0) = three_plans(true);
    let l = launches(&c.handle(t0, Input::Tick));
    let out = exit_with(&mut c, t0, run_of(&l, 0).0, bad_key());
    assert_eq!(held(&out), ["a"]);
    assert_eq!(c.state().agents[0].state, AgentState::Ready);
    let out = c.handle(
        t0,
        Input::Probed {
            agent: 0,
            class: Class::Fatal(Fatal::Auth),
            said: "Invalid API key".into(),
        },
    );
    assert_eq!(held(&out), ["*"], "{out:?}");
    assert!(matches!(
        c.state().agents[0].state,
        AgentState::Stopped { .. }
    ));
}

#[test]
fn probes_of_one_agent_are_spaced() {
    let (mut c, t0) = three_plans(true);
    let l = launches(&c.handle(t0, Input::Tick));
    let out = exit_with(&mut c, t0, run_of(&l, 0).0, limited(600));
    assert_eq!(probes(&out), [0]);
    let _ = c.handle(
        t0,
        Input::Probed {
            agent: 0,
            class: Class::Ordinary,
            said: "ok".into(),
        },
    );
    // Another plan's claim right after: no new probe before the gap is over; b alone waits.
    let out = exit_with(
        &mut c,
        t0 + Duration::from_secs(10),
        run_of(&l, 1).0,
        limited(600),
    );
    assert!(probes(&out).is_empty(), "{out:?}");
    assert_eq!(held(&out), ["b"]);
    assert_eq!(c.state().agents[0].state, AgentState::Ready);
    // After it, a claim is probed again.
    let t = t0 + claims::PROBE_GAP + Duration::from_secs(1);
    let out = exit_with(&mut c, t, run_of(&l, 2).0, limited(600));
    assert_eq!(probes(&out), [0], "{out:?}");
}

#[test]
fn an_agent_of_ones_own_is_confirmed_by_two_plans_claims() {
    for (first, second) in [
        (limited(600), limited(600)),
        (bad_key(), bad_key()),
        (limited(600), bad_key()),
    ] {
        let same = first.class == second.class
            || matches!(
                (first.class, second.class),
                (Class::Limit(_), Class::Limit(_))
            );
        let (mut c, t0) = three_plans(false);
        let l = launches(&c.handle(t0, Input::Tick));
        let out = exit_with(&mut c, t0, run_of(&l, 0).0, first.clone());
        assert!(probes(&out).is_empty(), "no probe of an agent of one's own");
        assert_eq!(held(&out), ["a"]);
        assert!(
            reports(&out).iter().any(|e| matches!(
                e,
                Event::Note { message, .. } if message.contains("claims the same within")
            )),
            "the log says which check applies: {out:?}"
        );
        assert_eq!(c.state().agents[0].state, AgentState::Ready);
        // The same plan again confirms nothing.
        let l2 = launches(&c.handle(t0 + Duration::from_secs(601), Input::Tick));
        if let Some(x) = l2.iter().find(|x| x.1.plan() == 0) {
            let _ = exit_with(&mut c, t0 + Duration::from_secs(601), x.0, first.clone());
            assert_eq!(c.state().agents[0].state, AgentState::Ready);
        }
        // Another plan's within the window: confirmed for every plan, when it is the same kind.
        let out = exit_with(
            &mut c,
            t0 + Duration::from_secs(602),
            run_of(&l, 1).0,
            second,
        );
        if same {
            assert!(held(&out).contains(&"*".to_string()), "{out:?}");
            assert_ne!(c.state().agents[0].state, AgentState::Ready);
        } else {
            assert_eq!(held(&out), ["b"], "{out:?}");
            assert_eq!(c.state().agents[0].state, AgentState::Ready);
        }
    }
}

#[test]
fn a_claim_outside_the_window_confirms_nothing() {
    let (mut c, t0) = three_plans(false);
    let l = launches(&c.handle(t0, Input::Tick));
    let _ = exit_with(&mut c, t0, run_of(&l, 0).0, limited(30));
    // a's limit is over (its hold released) before b claims: no confirmation.
    let later = t0 + Duration::from_secs(31);
    let out = c.handle(later, Input::Tick);
    assert!(
        reports(&out).iter().any(|e| matches!(
            e,
            Event::AgentResumed { plan: Some(p), .. } if p == "a"
        )),
        "{out:?}"
    );
    let out = exit_with(&mut c, later, run_of(&l, 1).0, limited(30));
    assert_eq!(held(&out), ["b"]);
    assert_eq!(c.state().agents[0].state, AgentState::Ready);
}
