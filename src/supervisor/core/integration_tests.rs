//! The integration preview's decisions: a test in a free slot after the launches that were due,
//! one at a time, only when a branch moved and the interval passed; its events; the merge train
//! holding back the plans a red test names.

use std::time::{Duration, Instant};

use super::tests::{cfg, core, finish, launches, plan, reports, spec};
use super::*;
use crate::graph::Graph;
use crate::merge::integrate::{IntegrationFailure, IntegrationReport, TriedCommit};

fn tests_started(out: &[Action]) -> usize {
    out.iter()
        .filter(|a| matches!(a, Action::Integrate))
        .count()
}

/// The run's first input: nothing adopted, nothing to retry.
fn recovered(c: &mut Core, now: Instant) -> Vec<Action> {
    c.handle(
        now,
        Input::Recovered {
            adopted: Vec::new(),
            retry: Vec::new(),
        },
    )
}

/// A test ended with `result`.
fn integrated(
    c: &mut Core,
    now: Instant,
    result: Result<IntegrationReport, String>,
) -> Vec<Action> {
    c.handle(now, Input::Integrated { result })
}

fn report(failing: &[&str]) -> IntegrationReport {
    IntegrationReport {
        target: "main".into(),
        target_commit: "t".into(),
        tested: vec![TriedCommit {
            plan: Some("a".into()),
            branch: "plan/a".into(),
            commit: "c".into(),
            repo: None,
        }],
        verified: true,
        verify_skipped: None,
        trials: 1,
        failure: (!failing.is_empty()).then(|| IntegrationFailure {
            plans: failing.iter().map(|s| s.to_string()).collect(),
            culprit: failing.last().map(|s| s.to_string()).unwrap_or_default(),
            conflict: None,
            verify: None,
            commits: Vec::new(),
            reason: None,
        }),
    }
}

#[test]
fn a_test_takes_a_free_slot_after_the_launches_that_were_due_one_at_a_time() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n";
    let plans = vec![plan(text), plan(text)];
    let names: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
    let g = Graph::build(&plans, &names, &[]).expect("acyclic");
    let mut config = cfg(3);
    config.integrate = Some(Duration::ZERO);
    let mut c = core(config, &g, &plans, vec![spec("a"), spec("b")]);
    let t0 = Instant::now();
    // Both plans launch first; the third slot is free: the test takes it.
    let out = recovered(&mut c, t0);
    assert_eq!(launches(&out).len(), 2);
    assert_eq!(tests_started(&out), 1, "{out:?}");
    let l = launches(&out);
    // a's 1.1 is committed while the test runs: a's 1.2 launches, no second test.
    let out = finish(&mut c, t0, l[0].0, l[0].1);
    assert_eq!(launches(&out).len(), 1);
    assert_eq!(tests_started(&out), 0);
    // The test ends green: the branch moved meanwhile, so the next one starts.
    let out = integrated(&mut c, t0, Ok(report(&[])));
    assert_eq!(tests_started(&out), 1);
    assert!(reports(&out).is_empty(), "{out:?}");
    // With every slot taken by agents, no test starts even though one is due.
    let mut config = cfg(2);
    config.integrate = Some(Duration::ZERO);
    let mut c = core(config, &g, &plans, vec![spec("a"), spec("b")]);
    let out = c.handle(t0, Input::Tick);
    assert_eq!(launches(&out).len(), 2);
    assert_eq!(tests_started(&out), 0);
    // Off: never.
    let mut c = core(cfg(4), &g, &plans, vec![spec("a"), spec("b")]);
    let out = recovered(&mut c, t0);
    assert_eq!(tests_started(&out), 0);
}

#[test]
fn the_interval_spaces_tests_and_nothing_moved_means_no_test() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n- [ ] 1.3 c\n";
    let plans = vec![plan(text)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut config = cfg(4);
    config.integrate = Some(Duration::from_secs(600));
    let mut c = core(config, &g, &plans, vec![spec("a")]);
    let t0 = Instant::now();
    let out = recovered(&mut c, t0);
    assert_eq!(tests_started(&out), 1);
    let out = integrated(&mut c, t0, Ok(report(&[])));
    assert_eq!(tests_started(&out), 0, "nothing moved");
    let l = launches(&c.handle(t0, Input::Tick));
    let l = if l.is_empty() {
        // 1.1 launched with the first input.
        c.state()
            .runs
            .iter()
            .map(|(r, rr)| (*r, rr.unit, rr.attempt))
            .collect()
    } else {
        l
    };
    let out = finish(&mut c, t0 + Duration::from_secs(60), l[0].0, l[0].1);
    assert_eq!(tests_started(&out), 0, "moved, but not due yet");
    let out = c.handle(t0 + Duration::from_secs(601), Input::Tick);
    assert_eq!(tests_started(&out), 1, "due now");
}

#[test]
fn a_red_test_is_reported_once_holds_the_merge_train_and_a_green_one_fixes_it() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n";
    let plans = vec![plan(text), plan(text)];
    let names: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
    let g = Graph::build(&plans, &names, &[]).expect("acyclic");
    let mut config = cfg(4);
    config.integrate = Some(Duration::ZERO);
    config.auto_merge = true;
    let mut c = core(config, &g, &plans, vec![spec("a"), spec("b")]);
    let t0 = Instant::now();
    let out = c.handle(t0, Input::Tick);
    let l = launches(&out);
    assert_eq!(l.len(), 2);
    let out = integrated(&mut c, t0, Ok(report(&["a", "b"])));
    let failed: Vec<&Event> = reports(&out)
        .into_iter()
        .filter(|e| matches!(e, Event::IntegrationFailed { .. }))
        .collect();
    assert_eq!(failed.len(), 1, "{out:?}");
    // The same plans again: no second report.
    let out = integrated(&mut c, t0, Ok(report(&["a", "b"])));
    assert!(reports(&out).is_empty(), "{out:?}");
    // Plan a finishes: the test named it, so the train does not merge it.
    let out = finish(&mut c, t0, l[0].0, l[0].1);
    assert!(
        !out.iter().any(|a| matches!(a, Action::Merge { .. })),
        "{out:?}"
    );
    assert_eq!(tests_started(&out), 1);
    // Green: fixed, and a merges.
    let out = integrated(&mut c, t0, Ok(report(&[])));
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::IntegrationFixed { plans, .. } if plans == &["a", "b"])),
        "{out:?}"
    );
    assert!(out.contains(&Action::Merge { plan: 0 }), "{out:?}");
}

fn merges(out: &[Action]) -> Vec<usize> {
    out.iter()
        .filter_map(|a| match a {
            Action::Merge { plan } => Some(*plan),
            _ => None,
        })
        .collect()
}

#[test]
fn the_merge_train_waits_for_a_test_begun_after_the_plan_finished_and_after_each_merge() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n";
    let plans = vec![plan(text), plan(text)];
    let names: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
    let g = Graph::build(&plans, &names, &[]).expect("acyclic");
    let mut config = cfg(4);
    config.integrate = Some(Duration::from_secs(600));
    config.auto_merge = true;
    let mut c = core(config, &g, &plans, vec![spec("a"), spec("b")]);
    let t0 = Instant::now();
    let out = recovered(&mut c, t0);
    let l = launches(&out);
    assert_eq!(l.len(), 2);
    assert_eq!(tests_started(&out), 1, "the first test");
    let out = integrated(&mut c, t0, Ok(report(&[])));
    assert_eq!(tests_started(&out), 0);
    // a finishes a minute later: green so far, but no test has seen its last commit. The
    // train waits, and the test it waits for starts at once (the interval does not delay it).
    let t1 = t0 + Duration::from_secs(60);
    let out = finish(&mut c, t1, l[0].0, l[0].1);
    assert!(merges(&out).is_empty(), "{out:?}");
    assert_eq!(tests_started(&out), 1, "{out:?}");
    let out = integrated(&mut c, t1, Ok(report(&[])));
    assert_eq!(merges(&out), vec![0], "{out:?}");
    // b finishes while a's merge runs; the merge moves the target: b waits for a test begun
    // after it.
    let out = finish(&mut c, t1, l[1].0, l[1].1);
    assert!(merges(&out).is_empty(), "{out:?}");
    let out = c.handle(
        t1,
        Input::Merged {
            plan: 0,
            outcome: crate::merge::PlanMergeOutcome::Merged {
                commit: "m".into(),
                note: None,
            },
        },
    );
    assert!(merges(&out).is_empty(), "{out:?}");
    assert_eq!(tests_started(&out), 1, "{out:?}");
    assert!(!c.is_over());
    // A test that could not run does not hold the train forever.
    let out = integrated(&mut c, t1, Err("verify could not start".into()));
    assert_eq!(merges(&out), vec![1], "{out:?}");
}

#[test]
fn the_same_plans_failing_with_new_commits_are_reported_again() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n";
    let plans = vec![plan(text)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut config = cfg(4);
    config.integrate = Some(Duration::ZERO);
    let mut c = core(config, &g, &plans, vec![spec("a")]);
    let t0 = Instant::now();
    c.handle(t0, Input::Tick);
    let red = |commit: &str, target: &str| {
        let mut r = report(&["a", "b"]);
        if let Some(f) = r.failure.as_mut() {
            f.commits = vec![
                TriedCommit {
                    plan: None,
                    branch: "main".into(),
                    commit: target.into(),
                    repo: None,
                },
                TriedCommit {
                    plan: Some("a".into()),
                    branch: "plan/a".into(),
                    commit: commit.into(),
                    repo: None,
                },
            ];
        }
        r
    };
    let failed = |out: &[Action]| {
        reports(out)
            .into_iter()
            .filter(|e| matches!(e, Event::IntegrationFailed { .. }))
            .count()
    };
    let mut seen = Vec::new();
    for (commit, target) in [("c1", "t1"), ("c1", "t2"), ("c2", "t2"), ("c2", "t2")] {
        let out = integrated(&mut c, t0, Ok(red(commit, target)));
        seen.push(failed(&out));
    }
    // New plan commits: reported again; only the target moved, or the same commits: not.
    assert_eq!(seen, vec![1, 0, 1, 0]);
}

#[test]
fn commits_no_test_has_seen_are_tested_before_the_run_ends() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n";
    let plans = vec![plan(text)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut config = cfg(4);
    config.integrate = Some(Duration::from_secs(600));
    let mut c = core(config, &g, &plans, vec![spec("a")]);
    let t0 = Instant::now();
    let out = recovered(&mut c, t0);
    let l = launches(&out);
    assert_eq!(tests_started(&out), 1);
    integrated(&mut c, t0, Ok(report(&[])));
    // The task's commit lands a second later: not due for ten minutes, but the run would end.
    let out = finish(&mut c, t0 + Duration::from_secs(1), l[0].0, l[0].1);
    assert_eq!(tests_started(&out), 1, "{out:?}");
    assert!(!c.is_over());
    let out = integrated(&mut c, t0 + Duration::from_secs(2), Ok(report(&["a"])));
    assert_eq!(
        reports(&out)
            .iter()
            .filter(|e| matches!(e, Event::IntegrationFailed { .. }))
            .count(),
        1
    );
    assert_eq!(tests_started(&out), 0);
    assert!(c.is_over(), "one last test, then the end");
}

#[test]
fn a_test_whose_verify_was_skipped_says_why_once() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n";
    let plans = vec![plan(text)];
    let names = vec!["a".to_string()];
    let g = Graph::build(&plans, &names, &[]).expect("acyclic");
    let mut config = cfg(4);
    config.integrate = Some(Duration::ZERO);
    let mut c = core(config, &g, &plans, vec![spec("a")]);
    let t0 = Instant::now();
    c.handle(t0, Input::Tick);
    let skipped = |why: Option<&str>| IntegrationReport {
        verified: why.is_none(),
        verify_skipped: why.map(str::to_string),
        ..report(&[])
    };
    let notes = |out: &[Action]| -> Vec<String> {
        reports(out)
            .into_iter()
            .filter_map(|e| match e {
                Event::Note { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    };
    let why = "verify not run on plans `a`, `b`: the plans run in containers of different images";
    let out = integrated(&mut c, t0, Ok(skipped(Some(why))));
    assert_eq!(
        notes(&out),
        [format!(
            "the integration test checked textual conflicts only: {why}"
        )]
    );
    // The same reason again: said once.
    let out = integrated(&mut c, t0, Ok(skipped(Some(why))));
    assert!(notes(&out).is_empty(), "{out:?}");
    // Verified again, then skipped again: said again.
    let out = integrated(&mut c, t0, Ok(skipped(None)));
    assert!(notes(&out).is_empty(), "{out:?}");
    let out = integrated(&mut c, t0, Ok(skipped(Some(why))));
    assert_eq!(notes(&out).len(), 1, "{out:?}");
}
