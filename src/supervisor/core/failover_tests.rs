//! Failover, input by input: a limit of a plan's agent sends its next launches to the first
//! fallback that may launch (one limited too, or stopped, is skipped and said), back to its own
//! agent when the limit resets; a limit seen in a fallback's attempt pauses the fallback, by
//! orch's record of which agent ran it; plans without fallbacks only wait. No processes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::tests::{cfg, core, exit_with, finish, launches, plan, reports, spec};
use super::*;
use crate::agent_output::{AgentOutput, Class, Fatal};
use crate::graph::Graph;
use crate::supervisor::state::{AgentState, Ending, Outcome, PlanSpec, RunId};

const THREE: &str =
    "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b (depends: 1.1)\n- [ ] 1.3 c (depends: 1.2)\n";

fn with_fallback(name: &str, fallback: &[&str]) -> PlanSpec {
    let mut s = spec(name);
    let mut entry = (*s.entry).clone();
    entry.fallback = fallback.iter().map(|f| (*f).to_string()).collect();
    s.entry = Arc::new(entry);
    s
}

fn limited(secs: u64) -> AgentOutput {
    AgentOutput {
        error: Some("You've hit your usage limit.".into()),
        class: Class::Limit(Some(Duration::from_secs(secs))),
        ..AgentOutput::default()
    }
}

/// The agent each launch in `out` runs: `None` for the plan's own.
fn agents_used(out: &[Action]) -> Vec<(RunId, Option<String>)> {
    launches(out)
        .into_iter()
        .map(|(run, _, _)| {
            let used = out.iter().find_map(|a| match a {
                Action::UseAgent { run: r, agent } if *r == run => Some(agent.clone()),
                _ => None,
            });
            (run, used)
        })
        .collect()
}

/// An `agent_failover`: from, to, its plans, how long the limit lasts, the fallbacks skipped.
type Moved = (String, String, Vec<String>, u64, Vec<String>);

fn failovers(out: &[Action]) -> Vec<Moved> {
    reports(out)
        .into_iter()
        .filter_map(|e| match e {
            Event::AgentFailover {
                from,
                to,
                plans,
                resume_in_ms,
                skipped,
                ..
            } => Some((
                from.clone(),
                to.clone(),
                plans.clone(),
                *resume_in_ms,
                skipped.clone(),
            )),
            _ => None,
        })
        .collect()
}

fn one_plan(fallback: &[&str]) -> (Core, Instant) {
    let plans = vec![plan(THREE)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let c = core(cfg(4), &g, &plans, vec![with_fallback("a", fallback)]);
    (c, Instant::now())
}

#[test]
fn a_limit_moves_the_next_launches_to_the_fallback_and_the_reset_brings_them_back() {
    let (mut c, t0) = one_plan(&["b", "c"]);
    let l = agents_used(&c.handle(t0, Input::Tick));
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].1, None, "its own agent first");
    // Its own agent hits a limit of 30 s: the task goes to `b`, said once.
    let out = exit_with(&mut c, t0, l[0].0, limited(30));
    assert_eq!(
        failovers(&out),
        [(
            "script".to_string(),
            "b".to_string(),
            vec!["a".to_string()],
            30_000,
            Vec::new()
        )]
    );
    let l = agents_used(&out);
    assert_eq!(l.len(), 1, "{out:?}");
    assert_eq!(l[0].1.as_deref(), Some("b"));
    // `b` completes it; the next task goes to `b` too while the limit lasts.
    let unit = launches(&out)[0].1;
    let out = finish(&mut c, t0 + Duration::from_secs(1), l[0].0, unit);
    let l = agents_used(&out);
    assert_eq!(l[0].1.as_deref(), Some("b"));
    let running = l[0].0;
    // The reset: `agent_restored`; the running attempt goes on with `b`; the next task's
    // launch is its own agent's again.
    let out = c.handle(t0 + Duration::from_secs(30), Input::Tick);
    assert!(
        reports(&out).iter().any(|e| matches!(
            e,
            Event::AgentRestored { agent, plans } if agent == "script" && plans == &["a".to_string()]
        )),
        "{out:?}"
    );
    assert!(!out.iter().any(|a| matches!(a, Action::Stop { .. })));
    let unit = launches(&c.handle(t0, Input::Tick));
    assert!(unit.is_empty(), "1.3 waits for 1.2");
    let out = finish(&mut c, t0 + Duration::from_secs(31), running, {
        crate::supervisor::state::Unit::Task { plan: 0, task: 1 }
    });
    let l = agents_used(&out);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].1, None, "back to its own agent");
}

#[test]
fn a_limited_or_stopped_fallback_is_skipped_and_said() {
    let (mut c, t0) = one_plan(&["b", "c", "d"]);
    let l = agents_used(&c.handle(t0, Input::Tick));
    // To `b` first.
    let out = exit_with(&mut c, t0, l[0].0, limited(60));
    let l = agents_used(&out);
    assert_eq!(l[0].1.as_deref(), Some("b"));
    // `b` is limited too, by what its own attempt printed: `b` is paused, not the plan's agent
    // again; the task goes to `c`, and `b` is named as skipped.
    let out = exit_with(&mut c, t0, l[0].0, limited(120));
    let paused: Vec<String> = reports(&out)
        .into_iter()
        .filter_map(|e| match e {
            Event::AgentPaused { agent, .. } => Some(agent.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(paused, ["b"]);
    let f = failovers(&out);
    assert_eq!(f.len(), 1, "{out:?}");
    assert_eq!((f[0].0.as_str(), f[0].1.as_str()), ("script", "c"));
    assert_eq!(f[0].3, 60_000, "the plan's own agent's limit");
    assert!(f[0].4[0].starts_with("b is at a usage limit too"), "{f:?}");
    let l = agents_used(&out);
    assert_eq!(l[0].1.as_deref(), Some("c"));
    // `c` cannot work (its login): stopped; the task goes to `d`, `b` and `c` skipped.
    let out = c.handle(
        t0,
        Input::Launched {
            run: l[0].0,
            pid: 7,
            job_id: None,
        },
    );
    assert!(launches(&out).is_empty());
    let out = c.handle(
        t0,
        Input::Exited {
            run: l[0].0,
            ending: Ending::Exited(Some(1)),
            output: AgentOutput {
                error: Some("Invalid API key".into()),
                class: Class::Fatal(Fatal::Auth),
                ..AgentOutput::default()
            },
        },
    );
    let f = failovers(&out);
    assert_eq!(f.len(), 1, "{out:?}");
    assert_eq!((f[0].0.as_str(), f[0].1.as_str()), ("script", "d"));
    assert_eq!(f[0].4.len(), 2, "{f:?}");
    assert!(
        f[0].4[1].starts_with("c cannot work: Invalid API key"),
        "{f:?}"
    );
    assert!(matches!(c.state_for(0, 0), Some(AgentState::Paused { .. })));
    // `d` limited as well: nothing may take the tasks; a note says why, they wait.
    let out = c.handle(
        t0,
        Input::Settled {
            run: l[0].0,
            outcome: Outcome::Interrupted,
        },
    );
    let l = agents_used(&out);
    assert_eq!(l[0].1.as_deref(), Some("d"));
    let out = exit_with(&mut c, t0, l[0].0, limited(10));
    assert!(failovers(&out).is_empty());
    assert!(launches(&out).is_empty());
    assert!(
        reports(&out).iter().any(|e| matches!(
            e,
            Event::Note { message, .. } if message.contains("no fallback may take its tasks")
        )),
        "{out:?}"
    );
    // `d`'s reset comes first: the tasks go to it again (from the plan's agent, still limited).
    let out = c.handle(t0 + Duration::from_secs(10), Input::Tick);
    let f = failovers(&out);
    assert_eq!(f.len(), 1, "{out:?}");
    assert_eq!((f[0].0.as_str(), f[0].1.as_str()), ("script", "d"));
    assert_eq!(agents_used(&out)[0].1.as_deref(), Some("d"));
}

#[test]
fn a_plan_without_fallbacks_waits_and_a_stopped_own_agent_is_not_failed_over() {
    // No fallback: the pause only.
    let (mut c, t0) = one_plan(&[]);
    let l = agents_used(&c.handle(t0, Input::Tick));
    let out = exit_with(&mut c, t0, l[0].0, limited(30));
    assert!(failovers(&out).is_empty());
    assert!(launches(&out).is_empty());
    // The plan's own agent stopped (a failure a person must fix): its work does not move.
    let (mut c, t0) = one_plan(&["b"]);
    let l = agents_used(&c.handle(t0, Input::Tick));
    let _ = c.handle(
        t0,
        Input::Launched {
            run: l[0].0,
            pid: 7,
            job_id: None,
        },
    );
    let out = c.handle(
        t0,
        Input::Exited {
            run: l[0].0,
            ending: Ending::Exited(Some(1)),
            output: AgentOutput {
                error: Some("Invalid API key".into()),
                class: Class::Fatal(Fatal::Auth),
                ..AgentOutput::default()
            },
        },
    );
    assert!(failovers(&out).is_empty());
    assert!(launches(&out).is_empty());
}

/// Two plans on the same agent, one with a fallback: a limit seen in the other plan's attempt,
/// once orch's probe confirmed it, moves the first's tasks (the account is the agent's), and a
/// limit in the fallback's attempt never pauses the plans' own agent.
#[test]
fn the_limit_is_the_agent_that_ran_the_attempt() {
    let plans = vec![plan(THREE), plan(THREE)];
    let names: Vec<String> = vec!["a".into(), "b".into()];
    let g = Graph::build(&plans, &names, &[]).expect("acyclic");
    let mut c = core(
        cfg(4),
        &g,
        &plans,
        vec![with_fallback("a", &["fb"]), spec("b")],
    );
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(l.len(), 2);
    let a = l.iter().find(|x| x.1.plan() == 0).expect("a");
    let b = l.iter().find(|x| x.1.plan() == 1).expect("b");
    // Plan b's attempt (same agent, no fallback) claims the limit: b waits, a does not move
    // until orch's probe of the client shows the limit too; then a's next launch goes to fb.
    c.set_probe("script", true);
    let out = exit_with(&mut c, t0, b.0, limited(30));
    assert!(failovers(&out).is_empty(), "{out:?}");
    assert!(launches(&out).is_empty(), "{out:?}");
    let out = c.handle(
        t0,
        Input::Probed {
            agent: 0,
            class: Class::Limit(Some(Duration::from_secs(30))),
            said: "You've hit your usage limit.".into(),
        },
    );
    assert_eq!(failovers(&out).len(), 1, "{out:?}");
    assert!(launches(&out).is_empty(), "{out:?}");
    let out = finish(&mut c, t0, a.0, a.1);
    let used = agents_used(&out);
    assert_eq!(used.len(), 1, "only plan a launches: {out:?}");
    assert_eq!(used[0].1.as_deref(), Some("fb"));
    // The fallback's attempt prints a limit: fb is paused; the plans' agent stays as it was.
    let out = exit_with(&mut c, t0, used[0].0, limited(5));
    let paused: Vec<String> = reports(&out)
        .into_iter()
        .filter_map(|e| match e {
            Event::AgentPaused { agent, .. } => Some(agent.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(paused, ["fb"]);
    let own = c
        .state()
        .agents
        .iter()
        .find(|a| a.name == "script")
        .expect("own");
    let AgentState::Paused { until, .. } = own.state else {
        panic!("{own:?}");
    };
    assert_eq!(
        until,
        t0 + Duration::from_secs(30),
        "not moved by fb's limit"
    );
}

#[test]
fn the_run_ends_when_the_fallback_has_done_every_task_without_waiting_for_the_reset() {
    let (mut c, t0) = one_plan(&["b"]);
    let l = agents_used(&c.handle(t0, Input::Tick));
    // Its own agent is limited for an hour; `b` takes 1.1, then 1.2 and 1.3.
    let mut out = exit_with(&mut c, t0, l[0].0, limited(3600));
    for (i, task) in [0, 1, 2].into_iter().enumerate() {
        let l = agents_used(&out);
        assert_eq!(l.len(), 1, "task {task}: {out:?}");
        assert_eq!(l[0].1.as_deref(), Some("b"));
        assert!(!c.is_over(), "task {task} is still to run");
        let now = t0 + Duration::from_secs(1 + i as u64);
        out = finish(
            &mut c,
            now,
            l[0].0,
            crate::supervisor::state::Unit::Task { plan: 0, task },
        );
        out.extend(c.handle(now, Input::Tick));
    }
    assert!(
        c.is_over(),
        "every task is done: the run does not wait an hour for the limit's reset"
    );
}

#[test]
fn a_plan_with_work_left_and_no_fallback_still_waits_for_the_reset() {
    let (mut c, t0) = one_plan(&[]);
    let l = agents_used(&c.handle(t0, Input::Tick));
    exit_with(&mut c, t0, l[0].0, limited(3600));
    c.handle(t0 + Duration::from_secs(1), Input::Tick);
    assert!(!c.is_over(), "its tasks wait for the reset");
}
