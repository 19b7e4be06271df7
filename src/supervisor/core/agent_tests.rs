//! The core's handling of agents and spending, input by input: usage limits (a pause, then a
//! resume), fatal failures (the agent stops, no retry is burnt), no success without a report,
//! the check before a commit, and budgets. No processes, no files, no clock.

use std::time::{Duration, Instant};

use super::tests::{cfg, core, launches, plan, reports, spec};
use super::*;
use crate::agent_output::{AgentOutput, Class, Fatal, Usage};
use crate::graph::Graph;
use crate::manifest::ReportMode;
use crate::status::TaskStatus;
use crate::supervisor::state::{AgentState, CheckOutcome, Ending, Outcome, RunId, Settlement};

const THREE: &str = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n- [ ] 1.3 c\n";

fn exited(c: &mut Core, now: Instant, run: RunId, code: i32, output: AgentOutput) -> Vec<Action> {
    c.handle(
        now,
        Input::Exited {
            run,
            ending: Ending::Exited(Some(code)),
            output,
        },
    )
}

fn settles(out: &[Action]) -> Vec<(RunId, Settlement, Option<Usage>)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Settle {
                run, how, usage, ..
            } => Some((*run, how.clone(), *usage)),
            _ => None,
        })
        .collect()
}

fn limited(wait: Option<Duration>) -> AgentOutput {
    AgentOutput {
        error: Some("API Error: 429 usage limit reached".into()),
        class: Class::Limit(wait),
        ..AgentOutput::default()
    }
}

fn spent(micro_usd: u64) -> AgentOutput {
    AgentOutput {
        usage: Some(Usage {
            input_tokens: 100,
            output_tokens: 10,
            cost_micro_usd: Some(micro_usd),
            ..Usage::default()
        }),
        ..AgentOutput::default()
    }
}

#[test]
fn a_usage_limit_pauses_the_agent_without_counting_the_attempt_then_resumes() {
    let plans = vec![plan(THREE)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut s = spec("a");
    s.slots = 2;
    let mut c = core(cfg(8), &g, &plans, vec![s]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(l.len(), 2);
    let (run, _, attempt) = l[0];
    assert_eq!(attempt, 1);

    let out = exited(&mut c, t0, run, 1, limited(Some(Duration::from_secs(30))));
    // Paused with the client's reset time; the task goes back, no failure, no launch.
    let paused: Vec<_> = reports(&out)
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Event::AgentPaused {
                    resume_in_ms: 30_000,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(paused.len(), 1, "{out:?}");
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::RecordPause { pause: Some(_), .. }))
    );
    assert!(matches!(
        settles(&out)[..],
        [(r, Settlement::Interrupt { .. }, _)] if r == run
    ));
    assert!(launches(&out).is_empty());
    let out = c.handle(
        t0,
        Input::Settled {
            run,
            outcome: Outcome::Interrupted,
        },
    );
    assert!(
        launches(&out).is_empty(),
        "nothing of a paused agent starts: {out:?}"
    );
    assert!(
        !reports(&out)
            .iter()
            .any(|e| matches!(e, Event::TaskFailed { .. }))
    );
    assert!(!c.is_over(), "the pause keeps the run going");
    // The pause is the plan's own (its attempt's claim, which no other plan made).
    assert!(matches!(c.state_for(0, 0), Some(AgentState::Paused { .. })));

    // Before the reset: still nothing. At it: resumed, and the task runs again as attempt 1.
    assert!(launches(&c.handle(t0 + Duration::from_secs(29), Input::Tick)).is_empty());
    let out = c.handle(t0 + Duration::from_secs(30), Input::Tick);
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::AgentResumed { .. }))
    );
    let again = launches(&out);
    assert_eq!(again.len(), 1, "{out:?}");
    assert_eq!(
        (again[0].1, again[0].2),
        (l[0].1, 1),
        "the limited attempt was not counted"
    );
}

#[test]
fn a_limit_without_a_reset_time_backs_off_doubling_up_to_a_cap() {
    let plans = vec![plan(THREE)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut c = core(cfg(8), &g, &plans, vec![spec("a")]);
    let mut now = Instant::now();
    let mut waits = Vec::new();
    for _ in 0..7 {
        let l = launches(&c.handle(now, Input::Tick));
        assert_eq!(l.len(), 1);
        let out = exited(&mut c, now, l[0].0, 1, limited(None));
        let ms = reports(&out)
            .iter()
            .find_map(|e| match e {
                Event::AgentPaused { resume_in_ms, .. } => Some(*resume_in_ms),
                _ => None,
            })
            .expect("paused");
        waits.push(ms / 1000);
        c.handle(
            now,
            Input::Settled {
                run: l[0].0,
                outcome: Outcome::Interrupted,
            },
        );
        now += Duration::from_millis(ms);
    }
    assert_eq!(waits, [60, 120, 240, 480, 960, 1800, 1800]);
}

#[test]
fn a_fatal_failure_stops_the_agent_and_burns_no_retries() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n";
    let plans = vec![plan(text), plan(text)];
    let names: Vec<String> = vec!["a".into(), "b".into()];
    let g = Graph::build(&plans, &names, &[]).expect("acyclic");
    let mut sa = spec("a");
    std::sync::Arc::make_mut(&mut sa.entry).retries = 3;
    let mut sb = spec("b");
    std::sync::Arc::make_mut(&mut sb.entry).agent = "other".into();
    let mut c = core(cfg(1), &g, &plans, vec![sa, sb]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(l.len(), 1, "max_agents = 1");
    let auth = AgentOutput {
        error: Some("Invalid API key · Please run /login".into()),
        class: Class::Fatal(Fatal::Auth),
        ..AgentOutput::default()
    };
    let out = exited(&mut c, t0, l[0].0, 1, auth);
    let stopped: Vec<_> = reports(&out)
        .into_iter()
        .filter_map(|e| match e {
            Event::AgentStopped {
                agent, class, fix, ..
            } => Some((agent.clone(), class.clone(), fix.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(stopped.len(), 1);
    assert_eq!(
        (stopped[0].0.as_str(), stopped[0].1.as_str()),
        ("script", "authentication")
    );
    assert!(stopped[0].2.contains("log the client"), "{}", stopped[0].2);
    let out = c.handle(
        t0,
        Input::Settled {
            run: l[0].0,
            outcome: Outcome::Interrupted,
        },
    );
    // Plan b has another agent: it goes on; plan a's agent never starts again, even later.
    let next = launches(&out);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].1, Unit::Task { plan: 1, task: 0 });
    finish_ok(&mut c, t0, next[0].0);
    assert!(launches(&c.handle(t0 + Duration::from_secs(3600), Input::Tick)).is_empty());
    assert!(c.is_over());
    let (summary, _) = c.summary(Duration::from_secs(1));
    assert_eq!(summary.agents_stopped.len(), 1);
    assert_eq!(summary.plans[0].outcome.as_str(), "blocked");
    assert!(
        summary.plans[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("Invalid API key")
    );
    assert!(summary.plans[0].failed_tasks.is_empty(), "no task failed");
    assert_eq!(
        c.state().tasks[0][0].attempts,
        0,
        "the attempt was not counted"
    );
}

/// Attempt `run` reports done, exits 0 and is committed.
fn finish_ok(c: &mut Core, now: Instant, run: RunId) -> Vec<Action> {
    let unit = c.state().runs[&run].unit;
    let (p, t) = (unit.plan(), unit.task().expect("task"));
    let facts = TaskFacts {
        status: TaskStatus::Completed,
        fresh: true,
        ..TaskFacts::default()
    };
    let mut out = c.handle(
        now,
        Input::Status {
            plan: p,
            tasks: vec![(t, facts)],
            merged: false,
        },
    );
    out.extend(exited(c, now, run, 0, spent(250_000)));
    out.extend(c.handle(
        now,
        Input::Settled {
            run,
            outcome: Outcome::Done {
                commit: Some(format!("c{run}")),
            },
        },
    ));
    out
}

#[test]
fn exit_0_without_a_report_fails_unless_the_agent_reports_by_exit() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n";
    let plans = vec![plan(text)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    for (report, want_commit) in [(ReportMode::Orch, false), (ReportMode::Exit, true)] {
        let mut s = spec("a");
        s.report = report;
        let mut c = core(cfg(1), &g, &plans, vec![s]);
        let t0 = Instant::now();
        let l = launches(&c.handle(t0, Input::Tick));
        let said = AgentOutput {
            result: Some("I cannot do this: no schema".into()),
            ..AgentOutput::default()
        };
        let out = exited(&mut c, t0, l[0].0, 0, said);
        match &settles(&out)[..] {
            [(_, Settlement::Commit, _)] => assert!(want_commit, "{report:?}"),
            [
                (
                    _,
                    Settlement::Fail {
                        error,
                        record: true,
                    },
                    _,
                ),
            ] => {
                assert!(!want_commit, "{report:?}");
                assert!(error.contains("ended without reporting"), "{error}");
                assert!(error.contains("I cannot do this: no schema"), "{error}");
            }
            other => panic!("{report:?}: {other:?}"),
        }
    }
}

#[test]
fn a_check_runs_between_the_report_and_the_commit() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b (check: make test)\n";
    let plans = vec![plan(text)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut s = spec("a");
    s.slots = 2;
    std::sync::Arc::make_mut(&mut s.entry).retries = 1;
    let mut c = core(cfg(2), &g, &plans, vec![s]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(l.len(), 2);
    // 1.1 has no check: commits at once. 1.2 names one: checking first.
    let out = finish_ok(&mut c, t0, l[0].0);
    assert!(!out.iter().any(|a| matches!(a, Action::Check { .. })));
    let run = l[1].0;
    let facts = TaskFacts {
        status: TaskStatus::Completed,
        fresh: true,
        ..TaskFacts::default()
    };
    c.handle(
        t0,
        Input::Status {
            plan: 0,
            tasks: vec![(1, facts)],
            merged: false,
        },
    );
    let out = exited(&mut c, t0, run, 0, spent(10));
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Check { run: r, .. } if *r == run))
    );
    assert!(settles(&out).is_empty(), "no commit before the check");
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::TaskChecking { .. }))
    );
    assert_eq!(
        c.state().runs[&run].stage,
        crate::supervisor::state::Stage::Checking
    );
    // A failing check fails the attempt with its output, recorded (the usage goes along).
    let out = c.handle(
        t0,
        Input::Checked {
            run,
            result: CheckOutcome::Failed("3 tests failed".into()),
        },
    );
    match &settles(&out)[..] {
        [
            (
                r,
                Settlement::Fail {
                    error,
                    record: true,
                },
                Some(u),
            ),
        ] => {
            assert_eq!(*r, run);
            assert_eq!(error, "3 tests failed");
            assert_eq!(u.cost_micro_usd, Some(10));
        }
        other => panic!("{other:?}"),
    }
    // Settled: a failed attempt, tried again (retries = 1).
    let out = c.handle(
        t0,
        Input::Settled {
            run,
            outcome: Outcome::Failed {
                error: "3 tests failed".into(),
                saved: None,
            },
        },
    );
    assert!(reports(&out).iter().any(|e| matches!(
        e,
        Event::TaskFailed {
            retry_in_ms: Some(_),
            ..
        }
    )));
}

/// A check whose place was lost under it (the plan's container removed from outside): the
/// attempt is interrupted, not counted, said on the console, up to `LOST_MAX` times a task; the
/// next such loss fails the attempt, counted.
#[test]
fn a_check_lost_with_its_place_does_not_count_up_to_the_limit() {
    let text = "## Phase 1: A\n- [ ] 1.1 a (check: make test)\n";
    let plans = vec![plan(text)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut c = core(cfg(1), &g, &plans, vec![spec("a")]);
    let t0 = Instant::now();
    let facts = TaskFacts {
        status: TaskStatus::Completed,
        fresh: true,
        ..TaskFacts::default()
    };
    let check_lost = |c: &mut Core, run: RunId| {
        c.handle(
            t0,
            Input::Status {
                plan: 0,
                tasks: vec![(0, facts.clone())],
                merged: false,
            },
        );
        exited(c, t0, run, 0, AgentOutput::default());
        c.handle(
            t0,
            Input::Checked {
                run,
                result: CheckOutcome::Lost("the container of plan `a` was removed".into()),
            },
        )
    };
    let mut l = launches(&c.handle(t0, Input::Tick));
    for n in 0..super::inputs::LOST_MAX {
        assert_eq!(l.len(), 1, "loss {n}");
        let run = l[0].0;
        let out = check_lost(&mut c, run);
        match &settles(&out)[..] {
            [(r, Settlement::Interrupt { note }, _)] => {
                assert_eq!(*r, run);
                assert!(note.contains("does not count"), "{note}");
            }
            other => panic!("loss {n}: {other:?}"),
        }
        assert!(reports(&out).iter().any(|e| matches!(
            e,
            Event::Note { message, .. } if message.starts_with("attempt lost (not counted")
        )));
        assert_eq!(c.state().tasks[0][0].attempts, 0, "loss {n} counted");
        // Put back to pending (as the status file then says): it runs again.
        let mut out = c.handle(
            t0,
            Input::Status {
                plan: 0,
                tasks: vec![(0, TaskFacts::default())],
                merged: false,
            },
        );
        out.extend(c.handle(
            t0,
            Input::Settled {
                run,
                outcome: Outcome::Interrupted,
            },
        ));
        out.extend(c.handle(t0, Input::Tick));
        l = launches(&out);
    }
    let out = check_lost(&mut c, l[0].0);
    assert!(
        matches!(
            &settles(&out)[..],
            [(_, Settlement::Fail { record: true, .. }, _)]
        ),
        "{out:?}"
    );
}

#[test]
fn a_run_budget_stops_new_launches_and_a_plan_budget_counts_earlier_runs() {
    let plans = vec![plan(THREE)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut conf = cfg(1);
    conf.budget = crate::manifest::Budget {
        micro_usd: Some(400_000),
        tokens: None,
    };
    let mut c = core(conf, &g, &plans, vec![spec("a")]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    let out = finish_ok(&mut c, t0, l[0].0);
    let next = launches(&out);
    assert_eq!(next.len(), 1, "$0.25 of $0.40: goes on");
    let out = finish_ok(&mut c, t0, next[0].0);
    let reached: Vec<_> = reports(&out)
        .into_iter()
        .filter(|e| matches!(e, Event::BudgetReached { plan: None, .. }))
        .collect();
    assert_eq!(reached.len(), 1, "{out:?}");
    assert!(
        launches(&out).is_empty(),
        "$0.50 of $0.40: nothing new starts"
    );
    assert!(c.is_over());
    let (summary, _) = c.summary(Duration::from_secs(1));
    assert_eq!(summary.usage.cost_micro_usd, Some(500_000));
    assert_eq!(summary.plans[0].outcome.as_str(), "unfinished");
    assert!(summary.budget_reached.is_some());

    // A plan whose recorded spending already passed its budget starts nothing.
    let mut s = spec("a");
    std::sync::Arc::make_mut(&mut s.entry).budget = crate::manifest::Budget {
        micro_usd: None,
        tokens: Some(100),
    };
    let used = TaskFacts {
        status: TaskStatus::Completed,
        usage: Some(Usage {
            input_tokens: 150,
            ..Usage::default()
        }),
        ..TaskFacts::default()
    };
    let facts = vec![vec![used, TaskFacts::default(), TaskFacts::default()]];
    let mut c = Core::new(
        cfg(1),
        &g,
        &plans,
        &[0],
        vec!["a".into()],
        vec![Some(s)],
        facts,
    );
    let out = c.handle(
        t0,
        Input::Recovered {
            adopted: vec![],
            retry: vec![],
        },
    );
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::BudgetReached { plan: Some(p), .. } if p == "a"))
    );
    assert!(launches(&out).is_empty());
    assert!(c.is_over());
}

#[test]
fn a_launch_that_cannot_find_the_program_stops_the_agent() {
    let plans = vec![plan(THREE)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut c = core(cfg(1), &g, &plans, vec![spec("a")]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    let out = c.handle(
        t0,
        Input::LaunchFailed {
            run: l[0].0,
            error: "cannot start agent `a` (`claude`): No such file or directory".into(),
            fatal: Some(Fatal::MissingProgram),
        },
    );
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::AgentStopped { class, .. } if class == "missing_program"))
    );
    assert!(
        !reports(&out)
            .iter()
            .any(|e| matches!(e, Event::TaskFailed { .. }))
    );
    assert!(launches(&out).is_empty());
    assert!(c.is_over());
    assert_eq!(c.state().tasks[0][0].attempts, 0);
}

#[test]
fn work_found_done_but_uncommitted_at_start_up_is_checked_before_its_commit() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b (depends: 1.1)\n";
    let plans = vec![plan(text)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut s = spec("a");
    std::sync::Arc::make_mut(&mut s.entry).check = Some(vec!["check".into()]);
    let done = TaskFacts {
        status: TaskStatus::Completed,
        fresh: true,
        ..TaskFacts::default()
    };
    let facts = vec![vec![done, TaskFacts::default()]];
    let mut c = Core::new(
        cfg(1),
        &g,
        &plans,
        &[0],
        vec!["a".into()],
        vec![Some(s)],
        facts,
    );
    let t0 = Instant::now();
    let out = c.handle(
        t0,
        Input::Recovered {
            adopted: vec![],
            retry: vec![],
        },
    );
    let run = out
        .iter()
        .find_map(|a| match a {
            Action::Check { run, .. } => Some(*run),
            _ => None,
        })
        .expect("checked first");
    assert!(
        !out.iter().any(|a| matches!(a, Action::Commit { .. })),
        "{out:?}"
    );
    assert!(launches(&out).is_empty(), "the check holds the slot");
    let out = c.handle(
        t0,
        Input::Checked {
            run,
            result: CheckOutcome::Passed,
        },
    );
    assert!(matches!(settles(&out)[..], [(r, Settlement::Commit, None)] if r == run));
    let out = c.handle(
        t0,
        Input::Settled {
            run,
            outcome: Outcome::Done {
                commit: Some("c".into()),
            },
        },
    );
    assert_eq!(launches(&out).len(), 1, "1.2 goes on");
}

/// A task completed from outside an attempt (a person's `orch task done`, applied by the
/// supervisor) with a check: nothing is committed before its check, and the check waits while
/// an attempt of its plan works in the worktree they share; a failing check fails it, with no
/// commit.
#[test]
fn a_task_done_from_outside_is_checked_before_its_commit_once_its_plan_is_idle() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b (check: make test)\n";
    let plans = vec![plan(text)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut c = core(cfg(2), &g, &plans, vec![spec("a")]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(l.len(), 1, "one slot: 1.1 alone");
    let done = TaskFacts {
        status: TaskStatus::Completed,
        fresh: true,
        ..TaskFacts::default()
    };
    let out = c.handle(
        t0,
        Input::Status {
            plan: 0,
            tasks: vec![(1, done)],
            merged: false,
        },
    );
    assert!(
        !out.iter()
            .any(|a| matches!(a, Action::Commit { .. } | Action::Check { .. })),
        "{out:?}"
    );
    // 1.1 ends and is committed: 1.2's check runs, not its commit, and no agent of 1.2.
    let out = finish_ok(&mut c, t0, l[0].0);
    let check = out
        .iter()
        .find_map(|a| match a {
            Action::Check {
                run,
                unit: Unit::Task { task: 1, .. },
            } => Some(*run),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no check of 1.2: {out:?}"));
    assert!(!out.iter().any(|a| matches!(a, Action::Commit { .. })));
    assert!(launches(&out).is_empty(), "{out:?}");
    let out = c.handle(
        t0,
        Input::Checked {
            run: check,
            result: CheckOutcome::Failed("1 test failed".into()),
        },
    );
    let s = settles(&out);
    assert_eq!(s.len(), 1, "{out:?}");
    assert!(
        matches!(&s[0].1, Settlement::Fail { error, .. } if error.contains("1 test failed")),
        "{s:?}"
    );
}

#[test]
fn an_ssh_attempt_with_no_host_left_blocks_its_plan_without_counting_and_an_agents_254_fails() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n";
    let no_host = i32::from(crate::executor::ssh::attempt::NO_HOST);
    let why = "host `h1` cannot run agents: no git on the PATH of its ssh sessions; no attempt runs there (fix: install git on the host)";
    let said = AgentOutput {
        tail: format!("=== orch: on host `h1` ===\norch remote-attempt: {why}"),
        ..AgentOutput::default()
    };
    // An ssh plan: its plan is blocked with the driver's reason, the attempt not counted, the
    // task pending, nothing more launched.
    let plans = vec![plan(text)];
    let g = Graph::build(&plans, &["a".to_string()], &[]).expect("acyclic");
    let mut s = spec("a");
    s.executor = std::sync::Arc::new(crate::executor::ssh::SshExecutor::new(
        vec!["h1".to_string()],
        crate::manifest::SizeLimits::file_only(1 << 20),
    ));
    std::sync::Arc::make_mut(&mut s.entry).retries = 2;
    let mut c = core(cfg(1), &g, &plans, vec![s]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(l.len(), 1);
    let out = exited(&mut c, t0, l[0].0, no_host, said.clone());
    assert!(
        matches!(&settles(&out)[..], [(_, Settlement::Interrupt { .. }, _)]),
        "{out:?}"
    );
    let blocked: Vec<_> = reports(&out)
        .into_iter()
        .filter_map(|e| match e {
            Event::PlanBlocked { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(blocked.len(), 1, "{out:?}");
    assert!(
        blocked[0].starts_with(why) && !blocked[0].contains("=== orch"),
        "{}",
        blocked[0]
    );
    assert_eq!(c.state().tasks[0][0].attempts, 0, "not counted");
    let out = c.handle(
        t0,
        Input::Settled {
            run: l[0].0,
            outcome: Outcome::Interrupted,
        },
    );
    assert!(launches(&out).is_empty(), "{out:?}");
    assert!(c.is_over());
    let (summary, _) = c.summary(Duration::from_secs(1));
    assert_eq!(summary.plans[0].outcome.as_str(), "blocked");
    assert!(summary.plans[0].failed_tasks.is_empty(), "no task failed");

    // A local plan whose agent exits 254: an ordinary failure.
    let mut c = core(cfg(1), &g, &plans, vec![spec("a")]);
    let l = launches(&c.handle(t0, Input::Tick));
    let out = exited(&mut c, t0, l[0].0, no_host, said);
    assert!(
        matches!(&settles(&out)[..], [(_, Settlement::Fail { .. }, _)]),
        "{out:?}"
    );
}
