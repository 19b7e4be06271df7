//! The core's decisions, driven input by input: no processes, no files, no clock.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;
use crate::executor::JobEnd;
use crate::graph::Graph;
use crate::manifest::AgentMode;
use crate::plan::{Plan, parse};
use crate::status::TaskStatus;
use crate::supervisor::state::{Changes, RunId};
use crate::supervisor::state::{Ending, Outcome, PlanSpec, Settlement, Stop, TaskFacts, Unit};

pub(super) fn plan(text: &str) -> Plan {
    let p = parse(Path::new("plan.md"), text);
    assert!(!p.has_errors(), "{:#?}", p.diagnostics);
    p
}

pub(super) fn spec(name: &str) -> PlanSpec {
    PlanSpec {
        entry: std::sync::Arc::new(entry(name)),
        executor: std::sync::Arc::new(crate::executor::local::LocalExecutor),
        mode: AgentMode::Task,
        slots: 1,
        task_trees: false,
        needs_prep: false,
        new_tree: false,
        upstreams: Vec::new(),
        worktree: PathBuf::from(format!("/w/{name}")),
        log_dir: PathBuf::from(format!("/logs/{name}")),
        report: crate::manifest::ReportMode::Exit,
        resolves_verify: false,
        land_with: Vec::new(),
        input_lines: false,
    }
}

/// Plan `name`'s manifest entry: agent `script`, no retries, ten minutes a task, no check.
fn entry(name: &str) -> crate::manifest::PlanEntry {
    crate::manifest::PlanEntry {
        name: name.to_string(),
        file: PathBuf::from(format!("{name}.md")),
        abs_file: PathBuf::from(format!("/r/{name}.md")),
        priority: 0,
        agent: "script".to_string(),
        branch: format!("plan/{name}"),
        depends_on: Vec::new(),
        parallel: 1,
        parallel_tasks: 1,
        timeout: Duration::from_secs(600),
        retries: 0,
        setup: None,
        copy: Vec::new(),
        warm: Vec::new(),
        submodules: true,
        line: 1,
        executor: Default::default(),
        image: None,
        slurm: Default::default(),
        check: None,
        budget: crate::manifest::Budget::default(),
        paths: Vec::new(),
        paths_at: Vec::new(),
        protect: None,
        allow_protected: None,
        best_of: Default::default(),
        resolve: None,
        resolve_verify: false,
        hosts: Vec::new(),
        repo: None,
        land_with: Vec::new(),
        review: Default::default(),
        fallback: Vec::new(),
        format: None,
        services: Vec::new(),
        limits: Default::default(),
        size_limits: Default::default(),
    }
}

pub(super) fn cfg(max_agents: usize) -> CoreConfig {
    CoreConfig {
        max_agents,
        backoff: Duration::from_secs(10),
        stuck_after: None,
        auto_merge: false,
        target: "main".into(),
        budget: crate::manifest::Budget::default(),
        limit_backoff: Duration::from_secs(60),
        integrate: None,
        ask_grace: Duration::from_secs(10),
    }
}

/// A core over `plans`, every task pending.
pub(super) fn core<'a>(
    cfg: CoreConfig,
    graph: &'a Graph,
    plans: &'a [Plan],
    specs: Vec<PlanSpec>,
) -> Core {
    let names = specs.iter().map(|s| s.entry.name.clone()).collect();
    let facts = plans
        .iter()
        .map(|p| vec![TaskFacts::default(); p.tasks.len()])
        .collect();
    Core::new(
        cfg,
        graph,
        plans,
        &vec![0; plans.len()],
        names,
        specs.into_iter().map(Some).collect(),
        facts,
    )
}

pub(super) fn launches(actions: &[Action]) -> Vec<(RunId, Unit, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Launch { run, unit, attempt } => Some((*run, *unit, *attempt)),
            _ => None,
        })
        .collect()
}

pub(super) fn reports(actions: &[Action]) -> Vec<&Event> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Report(e) => Some(e),
            _ => None,
        })
        .collect()
}

pub(super) fn ids(core: &Core, plans: &[Plan], l: &[(RunId, Unit, u32)]) -> Vec<String> {
    let _ = core;
    l.iter()
        .map(|(_, u, _)| match u {
            Unit::Task { plan, task } => plans[*plan].tasks[*task].id.clone(),
            Unit::PlanAgent { plan } => format!("plan {plan}"),
        })
        .collect()
}

fn completed(commit: &str) -> TaskFacts {
    TaskFacts {
        status: TaskStatus::Completed,
        commit: Some(commit.to_string()),
        fresh: true,
        duration_ms: None,
        error: None,
        usage: None,
        stopped: false,
        attempts: 0,
        question: None,
        messages: 0,
    }
}

/// Runs attempt `run` of `unit` to a committed end: launched, reported done, exited 0, settled.
pub(super) fn finish(core: &mut Core, now: Instant, run: RunId, unit: Unit) -> Vec<Action> {
    let mut out = core.handle(
        now,
        Input::Launched {
            run,
            pid: 100,
            job_id: None,
        },
    );
    if let Unit::Task { plan, task } = unit {
        let mut f = completed("");
        f.commit = None;
        out.extend(core.handle(
            now,
            Input::Status {
                plan,
                tasks: vec![(task, f)],
                merged: false,
            },
        ));
    }
    let exited = core.handle(
        now,
        Input::Exited {
            run,
            ending: Ending::Exited(Some(0)),
            output: Default::default(),
        },
    );
    assert!(
        exited
            .iter()
            .any(|a| matches!(a, Action::Settle { run: r, .. } if *r == run)),
        "{exited:?}"
    );
    out.extend(exited);
    out.extend(core.handle(
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

const TWO_PHASES: &str = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n## Phase 2: B\n- [ ] 2.1 c (depends: 1.1)\n- [ ] 2.2 d\n";

#[test]
fn tasks_start_in_order_within_the_plan_limit_and_phases_wait() {
    let plans = vec![plan(TWO_PHASES)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut s = spec("a");
    s.slots = 2;
    let mut c = core(cfg(8), &g, &plans, vec![s]);
    let t0 = Instant::now();
    let out = c.handle(t0, Input::Tick);
    let l = launches(&out);
    assert_eq!(ids(&c, &plans, &l), ["1.1", "1.2"], "parallel = 2");
    // 1.1 done: 2.1 names its dependency, so only it goes (2.2 waits for all of phase 1).
    let out = finish(&mut c, t0, l[0].0, l[0].1);
    assert!(
        reports(&out).iter().any(
            |e| matches!(e, Event::TaskFinished { task, commit: Some(_), .. } if task == "1.1")
        )
    );
    let next = launches(&out);
    assert_eq!(ids(&c, &plans, &next), ["2.1"]);
    let out = finish(&mut c, t0, l[1].0, l[1].1);
    assert_eq!(ids(&c, &plans, &launches(&out)), ["2.2"]);
}

#[test]
fn max_agents_bounds_all_plans_together_and_parallel_tasks_each_plan() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n- [ ] 1.3 c\n";
    let plans = vec![plan(text), plan(text), plan(text)];
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let g = Graph::build(&plans, &names, &[]).expect("acyclic");
    let mut specs: Vec<PlanSpec> = names.iter().map(|n| spec(n)).collect();
    specs[0].slots = 3;
    specs[0].task_trees = true;
    specs[1].slots = 1;
    specs[2].slots = 2;
    let mut c = core(cfg(5), &g, &plans, specs);
    let t0 = Instant::now();
    let out = c.handle(t0, Input::Tick);
    let l = launches(&out);
    let per_plan = |p: usize| l.iter().filter(|(_, u, _)| u.plan() == p).count();
    assert_eq!(l.len(), 5, "max_agents");
    assert_eq!((per_plan(0), per_plan(1), per_plan(2)), (3, 1, 1));
    // One ends: the freed slot goes to the plan with room (b is at its limit of 1).
    let b = l
        .iter()
        .find(|(_, u, _)| u.plan() == 1)
        .copied()
        .expect("b");
    let out = finish(&mut c, t0, b.0, b.1);
    let next = launches(&out);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].1.plan(), 1, "plan order decides between b and c");
    assert_eq!(c.state().runs.len(), 5);
}

#[test]
fn task_worktrees_keep_tasks_naming_the_same_file_apart() {
    let text = "## Phase 1: A\n- [ ] 1.1 edit `src/a.rs`\n- [ ] 1.2 also `src/a.rs`\n- [ ] 1.3 other `src/b.rs`\n";
    let plans = vec![plan(text)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut s = spec("a");
    s.slots = 3;
    s.task_trees = true;
    let mut c = core(cfg(8), &g, &plans, vec![s]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(ids(&c, &plans, &l), ["1.1", "1.3"]);
    let out = finish(&mut c, t0, l[0].0, l[0].1);
    assert_eq!(ids(&c, &plans, &launches(&out)), ["1.2"]);
}

#[test]
fn a_failed_attempt_is_retried_after_a_doubling_backoff_then_fails_and_blocks_dependents() {
    let plans = vec![plan(TWO_PHASES)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut s = spec("a");
    std::sync::Arc::make_mut(&mut s.entry).retries = 2;
    let mut c = core(cfg(1), &g, &plans, vec![s]);
    let t0 = Instant::now();
    let mut now = t0;
    let mut run = launches(&c.handle(now, Input::Tick))[0];
    let mut waits = Vec::new();
    for attempt in 1..=3 {
        assert_eq!(run.2, attempt);
        c.handle(
            now,
            Input::Launched {
                run: run.0,
                pid: 1,
                job_id: None,
            },
        );
        let out = c.handle(
            now,
            Input::Exited {
                run: run.0,
                ending: Ending::Exited(Some(1)),
                output: Default::default(),
            },
        );
        assert!(
            out.iter().any(|a| matches!(
                a,
                Action::Settle {
                    how: Settlement::Fail { record: true, .. },
                    ..
                }
            )),
            "{out:?}"
        );
        let out = c.handle(
            now,
            Input::Settled {
                run: run.0,
                outcome: Outcome::Failed {
                    error: "boom".into(),
                    saved: None,
                },
            },
        );
        let failed = reports(&out)
            .into_iter()
            .find_map(|e| match e {
                Event::TaskFailed { retry_in_ms, .. } => Some(*retry_in_ms),
                _ => None,
            })
            .expect("task_failed");
        waits.push(failed);
        if attempt == 3 {
            // Failed for good: 1.2 ran meanwhile, phase 2 never will: the run is over.
            assert!(launches(&out).is_empty());
            assert!(c.is_over(), "nothing can run: the run is over");
            let (summary, blocked) = c.summary(Duration::ZERO);
            assert_eq!(summary.plans[0].outcome.as_str(), "failed");
            assert_eq!(summary.plans[0].failed_tasks, ["1.1"]);
            assert_eq!(blocked.len(), 1);
            break;
        }
        // 1.2 runs meanwhile (max_agents 1): nothing else while 1.1 waits for its retry.
        let l = launches(&out);
        assert_eq!(
            ids(&c, &plans, &l),
            if attempt == 1 { vec!["1.2"] } else { vec![] }
        );
        if attempt == 1 {
            finish(&mut c, now, l[0].0, l[0].1);
        }
        assert!(!c.is_over(), "a retry is to come");
        let wake = c.next_wake().expect("a backoff timer");
        assert!(launches(&c.handle(wake - Duration::from_millis(1), Input::Tick)).is_empty());
        now = wake;
        let l = launches(&c.handle(now, Input::Tick));
        assert_eq!(l.len(), 1, "retried at its time");
        run = l[0];
    }
    assert_eq!(waits, [Some(10_000), Some(20_000), None]);
}

#[test]
fn an_agent_past_its_timeout_or_quiet_too_long_is_stopped_and_fails() {
    let plans = vec![plan("## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n")];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut s = spec("a");
    s.slots = 2;
    std::sync::Arc::make_mut(&mut s.entry).timeout = Duration::from_secs(60);
    let mut config = cfg(8);
    config.stuck_after = Some(Duration::from_secs(20));
    let mut c = core(config, &g, &plans, vec![s]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    for (run, _, _) in &l {
        c.handle(
            t0,
            Input::Launched {
                run: *run,
                pid: 1,
                job_id: None,
            },
        );
    }
    // 1.1 keeps showing signs of life; 1.2 is quiet.
    for s in [10, 25, 40, 55] {
        c.handle(t0 + Duration::from_secs(s), Input::Active { run: l[0].0 });
    }
    // The quiet one is reported stuck (`task_stuck`), then stopped.
    let out = c.handle(t0 + Duration::from_secs(20), Input::Tick);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        matches!(&out[0], Action::Report(Event::TaskStuck { task, attempt: 1, quiet_ms: 20_000, .. }) if task == "1.2"),
        "{out:?}"
    );
    assert_eq!(
        out[1],
        Action::Stop {
            run: l[1].0,
            why: StopWhy::Stuck(Duration::from_secs(20))
        }
    );
    let out = c.handle(t0 + Duration::from_secs(60), Input::Tick);
    assert_eq!(
        out,
        [Action::Stop {
            run: l[0].0,
            why: StopWhy::TimedOut(Duration::from_secs(60))
        }]
    );
    // Stopped twice? No: a stop is asked once.
    assert!(
        c.handle(t0 + Duration::from_secs(90), Input::Tick)
            .is_empty()
    );
    let out = c.handle(
        t0 + Duration::from_secs(61),
        Input::Exited {
            run: l[0].0,
            ending: Ending::TimedOut(Duration::from_secs(60)),
            output: Default::default(),
        },
    );
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Settle { how: Settlement::Fail { error, record: true }, .. } if error == "timed out after 1m"
    )));
}

#[test]
fn a_slurm_job_that_ends_by_its_time_limit_is_a_failed_attempt() {
    let plans = vec![plan("## Phase 1: A\n- [ ] 1.1 a\n")];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut s = spec("a");
    std::sync::Arc::make_mut(&mut s.entry).retries = 1;
    let mut c = core(cfg(8), &g, &plans, vec![s]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    let out = c.handle(
        t0,
        Input::Launched {
            run: l[0].0,
            pid: 0,
            job_id: Some("42".into()),
        },
    );
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::TaskStarted { job_id: Some(j), pid: 0, .. } if j == "42"))
    );
    let ending = Ending::Job {
        id: "42".into(),
        end: JobEnd::TimedOut,
    };
    let out = c.handle(
        t0,
        Input::Exited {
            run: l[0].0,
            ending: ending.clone(),
            output: Default::default(),
        },
    );
    match &out[..] {
        [
            Action::Settle {
                how: Settlement::Fail { error, record },
                ..
            },
        ] => {
            assert!(*record);
            assert_eq!(error, &ending.describe());
            assert!(error.contains("42"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_task_the_agent_reported_done_is_committed_and_one_that_vanished_runs_again() {
    let plans = vec![plan("## Phase 1: A\n- [ ] 1.1 a\n")];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut c = core(cfg(8), &g, &plans, vec![spec("a")]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    let out = c.handle(
        t0,
        Input::Exited {
            run: l[0].0,
            ending: Ending::Exited(None),
            output: Default::default(),
        },
    );
    assert!(matches!(
        &out[..],
        [Action::Settle {
            how: Settlement::Interrupt { .. },
            ..
        }]
    ));
    let out = c.handle(
        t0,
        Input::Settled {
            run: l[0].0,
            outcome: Outcome::Interrupted,
        },
    );
    let again = launches(&out);
    assert_eq!(again.len(), 1, "pending again, launched again");
    assert_eq!(again[0].2, 2, "attempts go on counting");
}

#[test]
fn ctrl_c_drains_then_stops_and_the_run_ends_unfinished() {
    let plans = vec![plan(TWO_PHASES)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut c = core(cfg(8), &g, &plans, vec![spec("a")]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    let out = c.handle(t0, Input::Interrupt);
    assert!(out.contains(&Action::StopAll(Stop::Drain)));
    assert!(out.contains(&Action::Report(Event::Interrupted { immediate: false })));
    let out = c.handle(t0, Input::Interrupt);
    assert!(out.contains(&Action::StopAll(Stop::Now)));
    assert!(out.contains(&Action::Report(Event::Interrupted { immediate: true })));
    assert!(
        c.handle(t0, Input::Interrupt).is_empty(),
        "a third Ctrl-C asks nothing more"
    );
    assert!(!c.is_over(), "its agent is still being stopped");
    c.handle(
        t0,
        Input::Exited {
            run: l[0].0,
            ending: Ending::Stopped,
            output: Default::default(),
        },
    );
    let out = c.handle(
        t0,
        Input::Settled {
            run: l[0].0,
            outcome: Outcome::Interrupted,
        },
    );
    assert!(launches(&out).is_empty(), "nothing new after Ctrl-C");
    assert!(c.is_over());
    let (summary, _) = c.summary(Duration::ZERO);
    assert!(summary.interrupted);
    assert_eq!(summary.plans[0].outcome.as_str(), "unfinished");
}

#[test]
fn adopted_agents_hold_their_slots_and_recorded_failures_run_again() {
    let plans = vec![plan(
        "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n- [ ] 1.3 c\n",
    )];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut s = spec("a");
    s.slots = 2;
    let names = vec!["a".to_string()];
    let facts = vec![vec![
        TaskFacts {
            status: TaskStatus::InProgress,
            ..TaskFacts::default()
        },
        TaskFacts {
            status: TaskStatus::Failed,
            ..TaskFacts::default()
        },
        TaskFacts {
            status: TaskStatus::Completed,
            commit: None,
            fresh: true,
            duration_ms: None,
            error: None,
            usage: None,
            stopped: false,
            attempts: 0,
            question: None,
            messages: 0,
        },
    ]];
    let mut c = Core::new(cfg(8), &g, &plans, &[0], names, vec![Some(s)], facts);
    let t0 = Instant::now();
    let run = c.new_run();
    let out = c.handle(
        t0,
        Input::Recovered {
            adopted: vec![Adopted {
                run,
                unit: Unit::Task { plan: 0, task: 0 },
                attempt: 2,
                pid: 77,
                job_id: None,
                elapsed: Duration::from_secs(30),
            }],
            retry: vec![(0, 1)],
        },
    );
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::TaskAdopted { pid: 77, task, .. } if task == "1.1"))
    );
    // 1.3 was done but not committed (a supervisor died in between): committed now, and it
    // holds the plan's other slot (a shared worktree).
    assert!(out.contains(&Action::Commit {
        plan: 0,
        task: 2,
        changes: Changes::Leave
    }));
    assert!(launches(&out).is_empty(), "both slots are taken");
    let out = c.handle(
        t0,
        Input::Committed {
            plan: 0,
            task: 2,
            result: Ok("c3".into()),
        },
    );
    let l = launches(&out);
    assert_eq!(
        ids(&c, &plans, &l),
        ["1.2"],
        "the recorded failure runs again"
    );
    assert_eq!(l[0].2, 1);
    // The adopted agent's deadline counts its time already spent.
    assert_eq!(
        c.next_wake(),
        Some(t0 + Duration::from_secs(570)),
        "600 s budget, 30 s spent"
    );
}

#[test]
fn a_plan_mode_agent_runs_while_its_plan_has_ready_tasks() {
    let plans = vec![plan(TWO_PHASES)];
    let g = Graph::of_plan(&plans[0]).expect("acyclic");
    let mut s = spec("a");
    s.mode = AgentMode::Plan;
    s.slots = 4;
    std::sync::Arc::make_mut(&mut s.entry).retries = 1;
    let mut c = core(cfg(8), &g, &plans, vec![s]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(
        l,
        [(1, Unit::PlanAgent { plan: 0 }, 1)],
        "one agent per plan"
    );
    // Its own `orch task done` commits: seen in the status file, reported once.
    let out = c.handle(
        t0,
        Input::Status {
            plan: 0,
            tasks: vec![(0, completed("c1"))],
            merged: false,
        },
    );
    assert_eq!(
        reports(&out),
        [&Event::TaskFinished {
            plan: "a".into(),
            task: "1.1".into(),
            commit: Some("c1".into()),
            duration_ms: 0,
            usage: None,
            pick: None,
        }]
    );
    c.handle(
        t0,
        Input::Exited {
            run: 1,
            ending: Ending::Exited(Some(1)),
            output: Default::default(),
        },
    );
    let out = c.handle(
        t0,
        Input::Settled {
            run: 1,
            outcome: Outcome::Failed {
                error: "the plan agent ended with 3 task(s) unfinished".into(),
                saved: None,
            },
        },
    );
    assert!(launches(&out).is_empty(), "backing off");
    let wake = c.next_wake().expect("retry");
    let l = launches(&c.handle(wake, Input::Tick));
    assert_eq!(l, [(2, Unit::PlanAgent { plan: 0 }, 2)]);
}

/// Steps a run of `plans` × `tasks` tasks (phases of 10, each task of a phase after the first
/// depending on one task of the previous phase) to the end; returns the core's work per task.
fn stepped_run(plans_n: usize, tasks: usize) -> f64 {
    let mut text = String::from("# Big\n");
    for ph in 1..=tasks / 10 {
        text.push_str(&format!("## Phase {ph}: P{ph}\n"));
        for t in 1..=10 {
            if ph > 1 && t % 5 == 0 {
                text.push_str(&format!("- [ ] {ph}.{t} task (depends: {}.{t})\n", ph - 1));
            } else {
                text.push_str(&format!("- [ ] {ph}.{t} task\n"));
            }
        }
    }
    let one = plan(&text);
    let plans: Vec<Plan> = (0..plans_n).map(|_| one.clone()).collect();
    let names: Vec<String> = (0..plans_n).map(|p| format!("p{p}")).collect();
    let g = Graph::build(&plans, &names, &[]).expect("acyclic");
    let specs = names
        .iter()
        .map(|n| {
            let mut s = spec(n);
            s.slots = 2;
            s
        })
        .collect();
    let mut c = core(cfg(8), &g, &plans, specs);
    let t0 = Instant::now();
    let mut running = launches(&c.handle(t0, Input::Tick));
    let start_work = c.work();
    let mut finished_plans = 0;
    let mut done = 0;
    while let Some((run, unit, _)) = running.pop() {
        let out = finish(&mut c, t0, run, unit);
        done += 1;
        finished_plans += reports(&out)
            .iter()
            .filter(|e| matches!(e, Event::PlanFinished { .. }))
            .count();
        running.extend(launches(&out));
    }
    assert_eq!(done, plans_n * tasks);
    assert_eq!(finished_plans, plans_n);
    assert!(c.is_over());
    let (summary, _) = c.summary(Duration::ZERO);
    assert!(
        summary
            .plans
            .iter()
            .all(|p| p.outcome.as_str() == "completed")
    );
    (c.work() - start_work) as f64 / done as f64
}

#[test]
fn a_10000_task_run_steps_to_the_end_at_the_same_cost_per_task_as_a_small_one() {
    let small = stepped_run(4, 50);
    let large = stepped_run(4, 2_500);
    // The work per task is a constant of the run's shape, not of its size.
    assert!(
        large <= small * 1.25,
        "work per task: {small:.1} at 200 tasks, {large:.1} at 10,000"
    );
    assert!(large < 60.0, "work per task at 10,000: {large:.1}");
}

/// Attempt `run` launched, then ended with exit 1 and `output`, then settled as interrupted.
pub(super) fn exit_with(
    c: &mut Core,
    now: Instant,
    run: RunId,
    output: AgentOutput,
) -> Vec<Action> {
    let mut out = c.handle(
        now,
        Input::Launched {
            run,
            pid: 7,
            job_id: None,
        },
    );
    out.extend(c.handle(
        now,
        Input::Exited {
            run,
            ending: Ending::Exited(Some(1)),
            output,
        },
    ));
    out.extend(c.handle(
        now,
        Input::Settled {
            run,
            outcome: Outcome::Interrupted,
        },
    ));
    out
}
