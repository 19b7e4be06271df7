//! Best of N in the core, input by input: a round's attempts start together within
//! `max_agents`, the pick follows the evidence the effects report, the others are stopped or
//! saved, and a round without a candidate fails into another round while `retries` allow.

use std::time::{Duration, Instant};

use super::tests::{cfg, core, plan, reports, spec};
use super::*;
use crate::graph::Graph;
use crate::supervisor::round::Reported;
use crate::supervisor::state::{Ending, Outcome, PlanSpec, Settlement, Unit};

fn best_of_spec(attempts: u32, select: bool, stop_first: bool, retries: u32) -> PlanSpec {
    let mut s = spec("p");
    s.task_trees = true;
    s.slots = 1;
    std::sync::Arc::make_mut(&mut s.entry).retries = retries;
    s.report = crate::manifest::ReportMode::Orch;
    std::sync::Arc::make_mut(&mut s.entry).best_of = crate::manifest::BestOf {
        attempts,
        agents: Vec::new(),
        select: select.then(|| vec!["score".to_string()]),
        stop: if stop_first {
            crate::manifest::AttemptsStop::First
        } else {
            crate::manifest::AttemptsStop::All
        },
    };
    s
}

fn members(actions: &[Action]) -> Vec<(RunId, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::LaunchMember { run, attempt, .. } => Some((*run, *attempt)),
            _ => None,
        })
        .collect()
}

fn settles(actions: &[Action]) -> Vec<(RunId, Settlement)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Settle { run, how, .. } => Some((*run, how.clone())),
            _ => None,
        })
        .collect()
}

/// Attempt `run` reports `r` and exits 0.
fn end(core: &mut Core, now: Instant, run: RunId, r: Option<Reported>) -> Vec<Action> {
    let mut out = core.handle(
        now,
        Input::Launched {
            run,
            pid: 100,
            job_id: None,
        },
    );
    if let Some(r) = r {
        out.extend(core.handle(now, Input::Reported { run, reported: r }));
    }
    out.extend(core.handle(
        now,
        Input::Exited {
            run,
            ending: Ending::Exited(Some(0)),
            output: Default::default(),
        },
    ));
    out
}

fn measured(
    core: &mut Core,
    now: Instant,
    run: RunId,
    lines: u64,
    score: Option<f64>,
) -> Vec<Action> {
    core.handle(
        now,
        Input::Measured {
            run,
            result: Ok(Measure { lines, score }),
        },
    )
}

#[test]
fn a_round_starts_only_when_all_its_attempts_fit_in_max_agents() {
    let plans = vec![plan(
        "## Phase 1: A\n- [ ] 1.1 a (attempts: 3)\n- [ ] 1.2 b\n",
    )];
    let graph = Graph::build(&plans, &["p".to_string()], &[]).expect("acyclic");
    let mut s = best_of_spec(1, false, true, 0);
    s.slots = 2;
    let mut c = core(cfg(2), &graph, &plans, vec![s]);
    let now = Instant::now();
    let out = c.handle(now, Input::Tick);
    // Three attempts of 1.1 do not fit in 2 agents: nothing of it starts, and 1.2 (ranked
    // after it) waits too.
    assert!(members(&out).is_empty(), "{out:?}");
    let plans = vec![plan(
        "## Phase 1: A\n- [ ] 1.1 a (attempts: 3)\n- [ ] 1.2 b\n",
    )];
    let graph = Graph::build(&plans, &["p".to_string()], &[]).expect("acyclic");
    let mut s = best_of_spec(1, false, true, 0);
    s.slots = 2;
    let mut c = core(cfg(4), &graph, &plans, vec![s]);
    let out = c.handle(now, Input::Tick);
    let m = members(&out);
    assert_eq!(m.iter().map(|(_, a)| *a).collect::<Vec<_>>(), vec![1, 2, 3]);
    // The round is one of the plan's two task slots: 1.2 starts beside it.
    assert_eq!(super::tests::launches(&out).len(), 1, "{out:?}");
}

#[test]
fn the_first_candidate_stops_the_others_and_lands_alone() {
    let plans = vec![plan("## Phase 1: A\n- [ ] 1.1 a\n")];
    let graph = Graph::build(&plans, &["p".to_string()], &[]).expect("acyclic");
    let mut c = core(
        cfg(4),
        &graph,
        &plans,
        vec![best_of_spec(3, false, true, 0)],
    );
    let now = Instant::now();
    let m = members(&c.handle(now, Input::Tick));
    assert_eq!(m.len(), 3);
    let unit = Unit::Task { plan: 0, task: 0 };
    for (run, _) in &m {
        c.handle(
            now,
            Input::Launched {
                run: *run,
                pid: 1,
                job_id: None,
            },
        );
    }
    // Attempt 2 is done (no check): its measure is asked for.
    let out = end(&mut c, now, m[1].0, Some(Reported::Done));
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Measure { run, .. } if *run == m[1].0))
    );
    // A candidate: the others are stopped, nothing settles before they end.
    let out = measured(&mut c, now, m[1].0, 7, None);
    let stopped: Vec<RunId> = out
        .iter()
        .filter_map(|a| match a {
            Action::Stop { run, .. } => Some(*run),
            _ => None,
        })
        .collect();
    assert_eq!(stopped, vec![m[0].0, m[2].0]);
    assert!(settles(&out).is_empty());
    // A stopped attempt's late `done` does not make it a candidate.
    c.handle(
        now,
        Input::Reported {
            run: m[0].0,
            reported: Reported::Done,
        },
    );
    let mut out = Vec::new();
    for run in [m[0].0, m[2].0] {
        out.extend(c.handle(
            now,
            Input::Exited {
                run,
                ending: Ending::Stopped,
                output: Default::default(),
            },
        ));
    }
    let s = settles(&out);
    assert_eq!(s.len(), 3, "{out:?}");
    let picks: Vec<_> = s
        .iter()
        .filter(|(_, h)| matches!(h, Settlement::Pick { .. }))
        .collect();
    assert_eq!(picks.len(), 1);
    assert_eq!(picks[0].0, m[1].0);
    let Settlement::Pick { why } = &picks[0].1 else {
        unreachable!()
    };
    assert!(why.starts_with("attempt 2 of 3: done, 7 lines"), "{why}");
    assert!(
        why.contains("attempt 1: stopped: attempt 2 was picked"),
        "{why}"
    );
    let mut out = Vec::new();
    for (run, how) in s {
        let outcome = match how {
            Settlement::Pick { .. } => Outcome::Done {
                commit: Some("abc".into()),
            },
            _ => Outcome::Failed {
                error: "x".into(),
                saved: Some(format!("refs/orch/attempts/p/1.1/{run}")),
            },
        };
        out.extend(c.handle(now, Input::Settled { run, outcome }));
    }
    let finished: Vec<_> = reports(&out)
        .into_iter()
        .filter(|e| matches!(e, Event::TaskFinished { .. }))
        .collect();
    assert_eq!(finished.len(), 1);
    assert!(matches!(
        finished[0],
        Event::TaskFinished { pick: Some(p), commit: Some(_), .. } if p.starts_with("attempt 2 of 3")
    ));
    assert_eq!(
        reports(&out)
            .iter()
            .filter(|e| matches!(e, Event::AttemptFinished { .. }))
            .count(),
        3
    );
    assert!(c.state().runs.is_empty());
    let _ = unit;
}

#[test]
fn select_waits_for_all_and_the_highest_score_wins_then_the_smaller_change() {
    let plans = vec![plan("## Phase 1: A\n- [ ] 1.1 a\n")];
    let graph = Graph::build(&plans, &["p".to_string()], &[]).expect("acyclic");
    let mut c = core(cfg(4), &graph, &plans, vec![best_of_spec(3, true, true, 0)]);
    let now = Instant::now();
    let m = members(&c.handle(now, Input::Tick));
    for (run, _) in &m {
        end(&mut c, now, *run, Some(Reported::Done));
    }
    // With `select`, the first candidate decides nothing.
    let out = measured(&mut c, now, m[0].0, 50, Some(0.5));
    assert!(out.iter().all(|a| !matches!(a, Action::Stop { .. })));
    assert!(settles(&out).is_empty());
    measured(&mut c, now, m[1].0, 10, Some(0.9));
    let out = measured(&mut c, now, m[2].0, 5, Some(0.9));
    let s = settles(&out);
    let pick = s
        .iter()
        .find(|(_, h)| matches!(h, Settlement::Pick { .. }))
        .expect("a pick");
    // A tie at 0.9: the smaller change (attempt 3, 5 lines) wins.
    assert_eq!(pick.0, m[2].0);
}

#[test]
fn a_round_without_a_candidate_fails_into_another_round_then_for_good() {
    let plans = vec![plan("## Phase 1: A\n- [ ] 1.1 a\n")];
    let graph = Graph::build(&plans, &["p".to_string()], &[]).expect("acyclic");
    let mut c = core(
        cfg(4),
        &graph,
        &plans,
        vec![best_of_spec(2, false, true, 1)],
    );
    let mut now = Instant::now();
    let mut attempts_seen = Vec::new();
    for round in 1..=2 {
        let m = members(&c.handle(now, Input::Tick));
        assert_eq!(m.len(), 2, "round {round}");
        attempts_seen.extend(m.iter().map(|(_, a)| *a));
        end(
            &mut c,
            now,
            m[0].0,
            Some(Reported::Failed(Some("no".into()))),
        );
        let out = end(&mut c, now, m[1].0, None);
        let s = settles(&out);
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|(_, h)| matches!(h, Settlement::Lose { .. })));
        let mut out = Vec::new();
        for (run, _) in s {
            out.extend(c.handle(
                now,
                Input::Settled {
                    run,
                    outcome: Outcome::Failed {
                        error: "x".into(),
                        saved: None,
                    },
                },
            ));
        }
        let failed: Vec<_> = reports(&out)
            .into_iter()
            .filter_map(|e| match e {
                Event::TaskFailed {
                    error, retry_in_ms, ..
                } => Some((error.clone(), *retry_in_ms)),
                _ => None,
            })
            .collect();
        assert_eq!(failed.len(), 1, "{out:?}");
        assert!(
            failed[0]
                .0
                .contains(&format!("attempt {}: reported failure: no", 2 * round - 1)),
            "{}",
            failed[0].0
        );
        assert!(
            failed[0].0.contains("ended without reporting"),
            "{}",
            failed[0].0
        );
        assert_eq!(failed[0].1.is_some(), round == 1, "round {round}");
        assert!(
            out.iter()
                .any(|a| matches!(a, Action::RecordFailure { .. }))
        );
        now += Duration::from_secs(3600);
    }
    // ORCH_ATTEMPT 1..N in the first round, N+1..2N in the second.
    assert_eq!(attempts_seen, vec![1, 2, 3, 4]);
    assert!(members(&c.handle(now, Input::Tick)).is_empty());
}
