//! The core's side of a question: an attempt's agent asks (its record needs input), the
//! attempt ends without failing and without using a retry, what depends on the task waits, the
//! rest goes on, the run ends with the plan `waiting`; an answer (the record pending again)
//! runs the task again, during the run or after the attempt's end. Input by input.

use std::time::{Duration, Instant};

use super::tests::{cfg, core, launches, plan, reports, spec};
use super::*;
use crate::graph::Graph;
use crate::status::TaskStatus;
use crate::supervisor::event::PlanResult;
use crate::supervisor::state::{Ending, Outcome, PlanSpec, Settlement, TaskRun};

/// 1.1, then 1.2 after it; 1.3 on its own.
const THREE: &str = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b (depends: 1.1)\n- [ ] 1.3 c\n";

fn facts(status: TaskStatus, question: Option<&str>) -> TaskFacts {
    TaskFacts {
        status,
        question: question.map(str::to_string),
        ..TaskFacts::default()
    }
}

fn status(t: usize, f: TaskFacts) -> Input {
    Input::Status {
        plan: 0,
        tasks: vec![(t, f)],
        merged: false,
    }
}

fn settles(out: &[Action]) -> Vec<(RunId, Settlement)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Settle { run, how, .. } => Some((*run, how.clone())),
            _ => None,
        })
        .collect()
}

/// A core over one plan of THREE with two slots; 1.1 and 1.3 launched and running.
fn running() -> (Core, Instant, RunId, RunId) {
    let plans = vec![plan(THREE)];
    let names: Vec<String> = vec!["a".into()];
    let g = Graph::build(&plans, &names, &[]).expect("acyclic");
    let mut s: PlanSpec = spec("a");
    s.slots = 2;
    let mut c = core(cfg(4), &g, &plans, vec![s]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(l.len(), 2, "{l:?}");
    for (run, _, _) in &l {
        let _ = c.handle(
            t0,
            Input::Launched {
                run: *run,
                pid: 9,
                job_id: None,
            },
        );
    }
    let r11 = l
        .iter()
        .find(|(_, u, _)| u.task() == Some(0))
        .expect("1.1")
        .0;
    let r13 = l
        .iter()
        .find(|(_, u, _)| u.task() == Some(2))
        .expect("1.3")
        .0;
    (c, t0, r11, r13)
}

/// Attempt `run` (task `t`) asked: its record needs input; the event says so, no stop yet.
fn ask(c: &mut Core, now: Instant, t: usize) -> Vec<Action> {
    let out = c.handle(
        now,
        status(t, facts(TaskStatus::NeedsInput, Some("which db?"))),
    );
    assert!(
        reports(&out).iter().any(|e| matches!(e,
            Event::TaskNeedsInput { plan, task, question, attempt: 1 }
                if plan == "a" && task == "1.1" && question == "which db?")),
        "{out:?}"
    );
    assert!(
        !out.iter().any(|a| matches!(a, Action::Stop { .. })),
        "the agent gets `grace` to exit: {out:?}"
    );
    out
}

/// Attempt `run` ends (exit `code`): settled as one that asked, then the settlement's input.
fn end_asked(c: &mut Core, now: Instant, run: RunId, ending: Ending) -> Vec<Action> {
    let out = c.handle(
        now,
        Input::Exited {
            run,
            ending,
            output: Default::default(),
        },
    );
    assert_eq!(settles(&out), [(run, Settlement::AwaitInput)], "{out:?}");
    c.handle(
        now,
        Input::Settled {
            run,
            outcome: Outcome::Asked,
        },
    )
}

#[test]
fn a_question_ends_the_attempt_without_failing_and_the_plan_waits() {
    let (mut c, t0, r11, r13) = running();
    let _ = ask(&mut c, t0, 0);
    // Whatever its exit (a non-zero one too), not a failure, and no retry comes.
    let out = end_asked(&mut c, t0, r11, Ending::Exited(Some(3)));
    assert!(
        !reports(&out)
            .iter()
            .any(|e| matches!(e, Event::TaskFailed { .. })),
        "{out:?}"
    );
    assert!(launches(&out).is_empty(), "1.2 waits, 1.1 waits: {out:?}");
    assert_eq!(c.state().tasks[0][0].run, TaskRun::Idle);
    // 1.3 goes on and finishes; then nothing can run: the run is over, the plan waiting.
    let _ = c.handle(
        t0,
        status(
            2,
            TaskFacts {
                status: TaskStatus::Completed,
                fresh: true,
                ..TaskFacts::default()
            },
        ),
    );
    let out = c.handle(
        t0,
        Input::Exited {
            run: r13,
            ending: Ending::Exited(Some(0)),
            output: Default::default(),
        },
    );
    let (run, how) = settles(&out)[0].clone();
    assert_eq!(how, Settlement::Commit);
    let _ = c.handle(
        t0,
        Input::Settled {
            run,
            outcome: Outcome::Done {
                commit: Some("c".into()),
            },
        },
    );
    assert!(c.is_over());
    let (summary, _) = c.summary(Duration::ZERO);
    assert_eq!(summary.plans[0].outcome, PlanResult::Waiting);
    let reason = summary.plans[0].reason.clone().unwrap_or_default();
    assert!(reason.contains("needs input: which db?"), "{reason}");
    assert!(summary.plans[0].failed_tasks.is_empty());
}

#[test]
fn an_agent_that_does_not_exit_after_asking_is_stopped_after_grace() {
    let (mut c, t0, r11, _) = running();
    let _ = ask(&mut c, t0, 0);
    let out = c.handle(t0 + Duration::from_secs(5), Input::Tick);
    assert!(
        !out.iter().any(|a| matches!(a, Action::Stop { .. })),
        "{out:?}"
    );
    let out = c.handle(t0 + Duration::from_secs(11), Input::Tick);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Stop { run, .. } if *run == r11)),
        "{out:?}"
    );
    // Stopped, it still ends as one that asked.
    let _ = end_asked(&mut c, t0 + Duration::from_secs(12), r11, Ending::Stopped);
    assert_eq!(c.state().tasks[0][0].facts.status, TaskStatus::NeedsInput);
}

#[test]
fn an_answer_runs_the_task_again_before_or_after_its_attempt_ended() {
    for answered_first in [false, true] {
        let (mut c, t0, r11, _) = running();
        let _ = ask(&mut c, t0, 0);
        let mut out = Vec::new();
        if answered_first {
            // The answer comes while the attempt is still ending: nothing launches yet.
            let o = c.handle(t0, status(0, facts(TaskStatus::Pending, None)));
            assert!(launches(&o).is_empty(), "{o:?}");
        }
        out.extend(end_asked(&mut c, t0, r11, Ending::Exited(Some(0))));
        if !answered_first {
            assert!(launches(&out).is_empty(), "{out:?}");
            out = c.handle(t0, status(0, facts(TaskStatus::Pending, None)));
        }
        let l = launches(&out);
        assert_eq!(l.len(), 1, "answered_first {answered_first}: {out:?}");
        assert_eq!(l[0].1.task(), Some(0));
        assert_eq!(l[0].2, 2, "its next attempt");
        // The question's attempt used no retry (`retries = 0` in the test spec): a failure of
        // the next attempt is still retried as a first failure would be.
        assert_eq!(c.state().tasks[0][0].retry_base, 1);
    }
}
