//! The core's side of run control: pause/resume a plan, stop an attempt, retry a failed task.
//! Input by input, no processes.

use std::time::{Duration, Instant};

use super::tests::{cfg, core, launches, plan, reports, spec};
use super::*;
use crate::graph::Graph;
use crate::status::TaskStatus;
use crate::supervisor::state::{Ending, Outcome, PlanSpec, TaskRun, Unit};

const TWO: &str = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b (depends: 1.1)\n";

fn failed(stopped: bool, error: &str) -> TaskFacts {
    TaskFacts {
        status: TaskStatus::Failed,
        error: Some(error.to_string()),
        stopped,
        ..TaskFacts::default()
    }
}

fn status(p: usize, t: usize, f: TaskFacts) -> Input {
    Input::Status {
        plan: p,
        tasks: vec![(t, f)],
        merged: false,
    }
}

/// Attempt `run` ends failed (its record says `error`) and is settled.
fn fail_attempt(c: &mut Core, now: Instant, run: RunId, error: &str) -> Vec<Action> {
    let mut out = c.handle(
        now,
        Input::Exited {
            run,
            ending: Ending::Exited(Some(1)),
            output: Default::default(),
        },
    );
    out.extend(c.handle(
        now,
        Input::Settled {
            run,
            outcome: Outcome::Failed {
                error: error.to_string(),
                saved: None,
            },
        },
    ));
    out
}

/// Its agent of attempt `run` started, as pid `pid`.
fn started(c: &mut Core, now: Instant, run: RunId, pid: u32) {
    let _ = c.handle(
        now,
        Input::Launched {
            run,
            pid,
            job_id: None,
        },
    );
}

/// Plan 0's first task launched and running, then stopped by `orch stop` (its record failed
/// and stopped): returns the attempt's run and what the stop gave, after checking that the core
/// stops the attempt.
fn stop_running(c: &mut Core, now: Instant) -> (RunId, Vec<Action>) {
    let (run, _, attempt) = launches(&c.handle(now, Input::Tick))[0];
    assert_eq!(attempt, 1);
    started(c, now, run, 9);
    let out = c.handle(now, status(0, 0, failed(true, "stopped")));
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Stop { run: r, why: StopWhy::User } if *r == run)),
        "{out:?}"
    );
    (run, out)
}

#[test]
fn a_paused_plan_launches_nothing_new_and_resuming_goes_on() {
    let plans = vec![plan(TWO), plan(TWO)];
    let names: Vec<String> = vec!["a".into(), "b".into()];
    let g = Graph::build(&plans, &names, &[]).expect("acyclic");
    let specs: Vec<PlanSpec> = names.iter().map(|n| spec(n)).collect();
    let mut c = core(cfg(4), &g, &plans, specs);
    let t0 = Instant::now();
    let out = c.handle(
        t0,
        Input::PlanHeld {
            plan: 0,
            held: true,
        },
    );
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::PlanPaused { plan } if plan == "a"))
    );
    let l = launches(&out);
    assert!(l.iter().all(|(_, u, _)| u.plan() == 1), "{l:?}");
    assert_eq!(l.len(), 1, "b runs, a does not");
    // b finishes; a is paused with work left: the run waits, and says so once.
    let (run, unit, _) = l[0];
    started(&mut c, t0, run, 1);
    let mut done = TaskFacts {
        status: TaskStatus::Completed,
        fresh: true,
        ..TaskFacts::default()
    };
    let _ = c.handle(t0, status(1, 0, done.clone()));
    let _ = c.handle(
        t0,
        Input::Exited {
            run,
            ending: Ending::Exited(Some(0)),
            output: Default::default(),
        },
    );
    let out = c.handle(
        t0,
        Input::Settled {
            run,
            outcome: Outcome::Done {
                commit: Some("c1".into()),
            },
        },
    );
    assert_eq!(unit.plan(), 1);
    let (run2, _, _) = launches(&out)[0];
    started(&mut c, t0, run2, 2);
    done.commit = Some("c2".into());
    let _ = c.handle(t0, status(1, 1, done));
    let _ = c.handle(
        t0,
        Input::Exited {
            run: run2,
            ending: Ending::Exited(Some(0)),
            output: Default::default(),
        },
    );
    let out = c.handle(
        t0,
        Input::Settled {
            run: run2,
            outcome: Outcome::Done {
                commit: Some("c2".into()),
            },
        },
    );
    assert!(!c.is_over(), "a paused plan with work left keeps the run");
    let notes: Vec<_> = reports(&out)
        .into_iter()
        .filter(|e| matches!(e, Event::Note { message, .. } if message.contains("paused plan `a`")))
        .collect();
    assert_eq!(notes.len(), 1, "{out:?}");
    let out = c.handle(t0 + Duration::from_secs(1), Input::Tick);
    assert!(reports(&out).is_empty(), "said once: {out:?}");
    // Resumed: a's first task starts.
    let out = c.handle(
        t0,
        Input::PlanHeld {
            plan: 0,
            held: false,
        },
    );
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::PlanResumed { plan } if plan == "a"))
    );
    let l = launches(&out);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].1, Unit::Task { plan: 0, task: 0 });
    // Paused again while its agent runs: the agent goes on (no stop), nothing new starts.
    let out = c.handle(
        t0,
        Input::PlanHeld {
            plan: 0,
            held: true,
        },
    );
    assert!(!out.iter().any(|a| matches!(a, Action::Stop { .. })));
    assert!(launches(&out).is_empty());
}

#[test]
fn a_plan_paused_before_the_run_starts_paused() {
    let plans = vec![plan(TWO)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut c = core(cfg(4), &g, &plans, vec![spec("a")]);
    c.set_held(0, true);
    let out = c.handle(
        Instant::now(),
        Input::Recovered {
            adopted: Vec::new(),
            retry: Vec::new(),
        },
    );
    assert!(launches(&out).is_empty());
    assert!(!c.is_over());
}

#[test]
fn a_stopped_attempt_fails_with_cause_stopped_and_is_not_retried() {
    let plans = vec![plan(TWO)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut s = spec("a");
    std::sync::Arc::make_mut(&mut s.entry).retries = 3;
    let mut c = core(cfg(1), &g, &plans, vec![s]);
    let t0 = Instant::now();
    // `orch stop` recorded it failed/stopped: the core stops the attempt.
    let (run, out) = stop_running(&mut c, t0);
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::TaskStopped { task, attempt: 1, .. } if task == "1.1"))
    );
    // It ends: failed with the cause as recorded, no retry (3 were left).
    let out = c.handle(
        t0,
        Input::Exited {
            run,
            ending: Ending::Stopped,
            output: Default::default(),
        },
    );
    assert!(
        out.iter().any(|a| matches!(a, Action::Settle { how: Settlement::Fail { error, record: false }, .. } if error == "stopped")),
        "{out:?}"
    );
    let out = c.handle(
        t0,
        Input::Settled {
            run,
            outcome: Outcome::Failed {
                error: "stopped".into(),
                saved: None,
            },
        },
    );
    assert!(
        reports(&out).iter().any(|e| matches!(
            e,
            Event::TaskFailed {
                retry_in_ms: None,
                ..
            }
        )),
        "{out:?}"
    );
    assert!(matches!(c.state().tasks[0][0].run, TaskRun::Failed { .. }));
    let out = c.handle(t0 + Duration::from_secs(3600), Input::Tick);
    assert!(launches(&out).is_empty(), "not retried by itself");
    // `orch retry`: the record is pending again; it runs as attempt 2.
    let out = c.handle(t0, status(0, 0, TaskFacts::default()));
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::TaskRetried { task, attempt: 2, .. } if task == "1.1")),
        "{out:?}"
    );
    let l = launches(&out);
    assert_eq!(l.len(), 1);
    assert_eq!((l[0].1, l[0].2), (Unit::Task { plan: 0, task: 0 }, 2));
}

#[test]
fn a_retried_task_gets_a_fresh_set_of_retries_and_attempts_go_on() {
    let plans = vec![plan(TWO)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut s = spec("a");
    std::sync::Arc::make_mut(&mut s.entry).retries = 1;
    let mut c = core(cfg(1), &g, &plans, vec![s]);
    let mut now = Instant::now();
    let (run, _, _) = launches(&c.handle(now, Input::Tick))[0];
    let _ = c.handle(now, status(0, 0, failed(false, "boom")));
    let out = fail_attempt(&mut c, now, run, "boom");
    assert!(reports(&out).iter().any(|e| matches!(
        e,
        Event::TaskFailed {
            retry_in_ms: Some(_),
            attempt: 1,
            ..
        }
    )));
    now += Duration::from_secs(60);
    let (run, _, attempt) = launches(&c.handle(now, Input::Tick))[0];
    assert_eq!(attempt, 2);
    let out = fail_attempt(&mut c, now, run, "boom");
    assert!(
        reports(&out).iter().any(|e| matches!(
            e,
            Event::TaskFailed {
                retry_in_ms: None,
                attempt: 2,
                ..
            }
        )),
        "retries used up: {out:?}"
    );
    // The run is over apart from the failed task; retry it.
    let out = c.handle(now, status(0, 0, TaskFacts::default()));
    let (run, _, attempt) = launches(&out)[0];
    assert_eq!(attempt, 3, "attempt numbers go on");
    let out = fail_attempt(&mut c, now, run, "boom");
    assert!(
        reports(&out).iter().any(|e| matches!(
            e,
            Event::TaskFailed {
                retry_in_ms: Some(_),
                attempt: 3,
                ..
            }
        )),
        "a fresh retry: {out:?}"
    );
    // Stopped while it backs off: no retry comes.
    let out = c.handle(now, status(0, 0, failed(true, "stopped")));
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::TaskStopped { attempt: 3, .. })),
        "{out:?}"
    );
    let out = c.handle(now + Duration::from_secs(3600), Input::Tick);
    assert!(launches(&out).is_empty());
}

#[test]
fn stopping_a_task_a_plan_agent_runs_stops_that_agent() {
    let plans = vec![plan(TWO)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut s = spec("a");
    s.mode = crate::manifest::AgentMode::Plan;
    let mut c = core(cfg(1), &g, &plans, vec![s]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(l, [(1, Unit::PlanAgent { plan: 0 }, 1)]);
    let run = l[0].0;
    started(&mut c, t0, run, 9);
    let stops = |out: &[Action]| {
        out.iter()
            .filter(|a| matches!(a, Action::Stop { run: r, why: StopWhy::User } if *r == run))
            .count()
    };
    // A task of the plan that had failed (reported by the agent), then stopped: the agent
    // goes on.
    let _ = c.handle(t0, status(0, 1, failed(false, "tests fail")));
    let out = c.handle(t0, status(0, 1, failed(true, "stopped")));
    assert_eq!(stops(&out), 0, "{out:?}");
    // The agent claimed 1.1 (`orch task start`), then `orch stop` failed it: the agent stops,
    // also when the claim and the stop are seen in one reading of the status file.
    let out = c.handle(t0, status(0, 0, failed(true, "stopped")));
    assert_eq!(stops(&out), 1, "{out:?}");
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::TaskStopped { task, .. } if task == "1.1")),
        "{out:?}"
    );
    assert!(matches!(c.state().tasks[0][0].run, TaskRun::Failed { .. }));
}

/// When a person's retry lands, relative to the end of the attempt they stopped.
#[derive(Clone, Copy, Debug, PartialEq)]
enum RetryLands {
    /// While the stopped agent winds down, before it exits.
    BeforeExit,
    /// After it exited, while its attempt is being settled.
    BeforeSettled,
    /// Before it exits, and then the task is stopped once more.
    ThenStoppedAgain,
}

#[test]
fn a_retry_while_the_stopped_attempt_is_still_ending_is_kept() {
    for lands in [
        RetryLands::BeforeExit,
        RetryLands::BeforeSettled,
        RetryLands::ThenStoppedAgain,
    ] {
        let plans = vec![plan(TWO)];
        let g = Graph::of_plan(&plans[0]).expect("acyclic");
        let mut s = spec("a");
        std::sync::Arc::make_mut(&mut s.entry).retries = 3;
        let mut c = core(cfg(1), &g, &plans, vec![s]);
        let t0 = Instant::now();
        let (run, _) = stop_running(&mut c, t0);
        let retry = |c: &mut Core| {
            let out = c.handle(t0, status(0, 0, TaskFacts::default()));
            assert!(launches(&out).is_empty(), "{lands:?}: {out:?}");
        };
        if lands != RetryLands::BeforeSettled {
            retry(&mut c);
        }
        if lands == RetryLands::ThenStoppedAgain {
            let _ = c.handle(t0, status(0, 0, failed(true, "stopped")));
        }
        let out = c.handle(
            t0,
            Input::Exited {
                run,
                ending: Ending::Stopped,
                output: Default::default(),
            },
        );
        // It settles as failed, as `orch stop` recorded it: nothing written over the record
        // (which says pending once the retry landed), no "runs again on the next `orch up`".
        assert!(
            out.iter().any(|a| matches!(
                a,
                Action::Settle { how: Settlement::Fail { error, record: false }, .. }
                    if error == "stopped"
            )),
            "{lands:?}: {out:?}"
        );
        if lands == RetryLands::BeforeSettled {
            retry(&mut c);
        }
        let out = c.handle(
            t0,
            Input::Settled {
                run,
                outcome: Outcome::Failed {
                    error: "stopped".into(),
                    saved: None,
                },
            },
        );
        let events = reports(&out);
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::TaskFailed {
                    attempt: 1,
                    retry_in_ms: None,
                    ..
                }
            )),
            "{lands:?}: {out:?}"
        );
        let retried = events
            .iter()
            .any(|e| matches!(e, Event::TaskRetried { task, attempt: 2, .. } if task == "1.1"));
        let relaunched = launches(&out);
        if lands == RetryLands::ThenStoppedAgain {
            assert!(!retried && relaunched.is_empty(), "{lands:?}: {out:?}");
            assert!(matches!(c.state().tasks[0][0].run, TaskRun::Failed { .. }));
            let out = c.handle(t0 + Duration::from_secs(3600), Input::Tick);
            assert!(launches(&out).is_empty(), "{lands:?}: {out:?}");
        } else {
            assert!(retried, "{lands:?}: {out:?}");
            assert_eq!(relaunched.len(), 1, "{lands:?}: {out:?}");
            assert_eq!(
                (relaunched[0].1, relaunched[0].2),
                (Unit::Task { plan: 0, task: 0 }, 2),
                "{lands:?}"
            );
        }
    }
}

/// `orch stop` and `orch retry` written between two reads of the status file: the run reads the
/// running task's record back to pending in one change, never seeing it failed. The attempt is
/// stopped and the task runs again, as when the run reads the two one by one; a record that is
/// pending while its attempt is still launching (nothing recorded of it yet) stops nothing.
#[test]
fn a_stop_and_a_retry_read_as_one_change_stop_the_attempt_and_run_it_again() {
    let plans = vec![plan(TWO)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut c = core(cfg(1), &g, &plans, vec![spec("a")]);
    let t0 = Instant::now();
    let (run, _, attempt) = launches(&c.handle(t0, Input::Tick))[0];
    assert_eq!(attempt, 1);
    let pending = TaskFacts {
        attempts: 1,
        ..TaskFacts::default()
    };
    let out = c.handle(t0, status(0, 0, pending.clone()));
    assert!(
        !out.iter().any(|a| matches!(a, Action::Stop { .. })),
        "launching: {out:?}"
    );
    started(&mut c, t0, run, 9);
    let out = c.handle(t0, status(0, 0, pending));
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Stop { run: r, why: StopWhy::User } if *r == run)),
        "{out:?}"
    );
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::TaskStopped { attempt: 1, .. })),
        "{out:?}"
    );
    assert!(launches(&out).is_empty(), "{out:?}");
    let out = c.handle(
        t0,
        Input::Exited {
            run,
            ending: Ending::Stopped,
            output: Default::default(),
        },
    );
    // Failed as stopped, nothing written over the pending record.
    assert!(
        out.iter().any(|a| matches!(
            a,
            Action::Settle { how: Settlement::Fail { error, record: false }, .. }
                if error == "stopped"
        )),
        "{out:?}"
    );
    let out = c.handle(
        t0,
        Input::Settled {
            run,
            outcome: Outcome::Failed {
                error: "stopped".into(),
                saved: None,
            },
        },
    );
    let events = reports(&out);
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::TaskFailed {
                attempt: 1,
                retry_in_ms: None,
                ..
            }
        )),
        "{out:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::TaskRetried { attempt: 2, .. })),
        "{out:?}"
    );
    let relaunched = launches(&out);
    assert_eq!(relaunched.len(), 1, "{out:?}");
    assert_eq!(
        (relaunched[0].1, relaunched[0].2),
        (Unit::Task { plan: 0, task: 0 }, 2)
    );
}
