//! The core's side of `orch say`: new messages in a task's record go to its running attempt
//! where the plan's agent reads them, else are kept; an attempt being stopped by a restart in
//! the same record gets nothing; nothing is told twice.

use std::time::Instant;

use super::tests::{cfg, core, launches, plan, spec};
use super::*;
use crate::graph::Graph;
use crate::status::TaskStatus;
use crate::supervisor::state::PlanSpec;

const TWO: &str = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n";

fn record(status: TaskStatus, messages: usize) -> Input {
    Input::Status {
        plan: 0,
        tasks: vec![(
            0,
            TaskFacts {
                status,
                messages,
                attempts: 1,
                ..TaskFacts::default()
            },
        )],
        merged: false,
    }
}

/// A tell: its task, the attempt that gets it (run, number), the range of messages.
type Told = (usize, Option<(RunId, u32)>, usize, usize);

fn tells(out: &[Action]) -> Vec<Told> {
    out.iter()
        .filter_map(|a| match a {
            Action::Tell {
                task,
                run,
                from,
                to,
                ..
            } => Some((*task, *run, *from, *to)),
            _ => None,
        })
        .collect()
}

/// A core over one plan of TWO whose agent reads messages (`reads`), 1.1 running (launched
/// when `launched`).
fn running(reads: bool, launched: bool) -> (Core, Instant, RunId) {
    let plans = vec![plan(TWO)];
    let names: Vec<String> = vec!["a".into()];
    let g = Graph::build(&plans, &names, &[]).expect("acyclic");
    let mut s: PlanSpec = spec("a");
    s.input_lines = reads;
    let mut c = core(cfg(4), &g, &plans, vec![s]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    let run = l
        .iter()
        .find(|(_, u, _)| u.task() == Some(0))
        .expect("1.1")
        .0;
    if launched {
        let _ = c.handle(
            t0,
            Input::Launched {
                run,
                pid: 9,
                job_id: None,
            },
        );
    }
    let _ = c.handle(t0, record(TaskStatus::InProgress, 0));
    (c, t0, run)
}

#[test]
fn a_running_attempt_whose_agent_reads_gets_the_new_messages_once() {
    let (mut c, t0, run) = running(true, true);
    let out = c.handle(t0, record(TaskStatus::InProgress, 2));
    assert_eq!(tells(&out), [(0, Some((run, 1)), 0, 2)]);
    // The same record read again, or the supervisor's own write of it: nothing new.
    let out = c.handle(t0, record(TaskStatus::InProgress, 2));
    assert!(tells(&out).is_empty(), "{out:?}");
    let out = c.handle(t0, record(TaskStatus::InProgress, 3));
    assert_eq!(tells(&out), [(0, Some((run, 1)), 2, 3)]);
}

#[test]
fn messages_are_kept_where_no_running_agent_reads_them() {
    // The agent does not read its input.
    let (mut c, t0, _) = running(false, true);
    let out = c.handle(t0, record(TaskStatus::InProgress, 1));
    assert_eq!(tells(&out), [(0, None, 0, 1)]);
    // Its process is not started yet.
    let (mut c, t0, _) = running(true, false);
    let out = c.handle(t0, record(TaskStatus::InProgress, 1));
    assert_eq!(tells(&out), [(0, None, 0, 1)]);
    // A restart in the same record: the attempt is being stopped, the message is the next
    // attempt's.
    let (mut c, t0, run) = running(true, true);
    let out = c.handle(t0, record(TaskStatus::Pending, 1));
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Stop { run: r, .. } if *r == run)),
        "{out:?}"
    );
    assert_eq!(tells(&out), [(0, None, 0, 1)]);
}

#[test]
fn once_the_agents_turn_ended_its_input_is_closed_once_and_messages_are_kept() {
    let (mut c, t0, run) = running(true, true);
    let out = c.handle(t0, record(TaskStatus::InProgress, 1));
    assert_eq!(tells(&out), [(0, Some((run, 1)), 0, 1)]);
    let closes = |out: &[Action]| {
        out.iter()
            .filter(|a| matches!(a, Action::CloseInput { run: r } if *r == run))
            .count()
    };
    let out = c.handle(t0, Input::TurnEnded { run });
    assert_eq!(closes(&out), 1, "{out:?}");
    // Told again (a monitor's second look): nothing more to close.
    let out = c.handle(t0, Input::TurnEnded { run });
    assert_eq!(closes(&out), 0, "{out:?}");
    // A message from now on is the next attempt's.
    let out = c.handle(t0, record(TaskStatus::InProgress, 2));
    assert_eq!(tells(&out), [(0, None, 1, 2)]);
}
