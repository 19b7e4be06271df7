//! The core across plans, input by input: a downstream plan waits for its upstream's phase, is
//! prepared, then runs; the merge train merges upstream plans first and skips what waits on a
//! failed merge.

use std::time::{Duration, Instant};

use super::tests::{cfg, core, finish, ids, launches, plan, reports, spec};
use super::*;
use crate::graph::{CrossDep, CrossTarget, Graph};

#[test]
fn a_downstream_plan_waits_for_its_upstream_phase_is_prepared_then_runs() {
    let up = plan("## Phase 1: A\n- [ ] 1.1 a\n## Phase 2: B\n- [ ] 2.1 b\n");
    let down = plan("## Phase 1: X\n- [ ] 1.1 x\n");
    let plans = vec![up, down];
    let names: Vec<String> = vec!["auth".into(), "api".into()];
    let g = Graph::build(
        &plans,
        &names,
        &[CrossDep {
            from: 1,
            to: 0,
            target: CrossTarget::Phase(1),
        }],
    )
    .expect("acyclic");
    let mut api = spec("api");
    api.needs_prep = true;
    api.upstreams = vec![0];
    let mut c = core(cfg(8), &g, &plans, vec![spec("auth"), api]);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].1.plan(), 0, "api waits for auth:1");
    let out = finish(&mut c, t0, l[0].0, l[0].1);
    assert!(out.contains(&Action::Prepare { plan: 1 }), "{out:?}");
    let l2 = launches(&out);
    assert_eq!(
        ids(&c, &plans, &l2),
        ["2.1"],
        "api is not launched before it is prepared"
    );
    let out = c.handle(
        t0,
        Input::Prepared {
            plan: 1,
            result: Ok(vec![Event::UpstreamMerged {
                plan: "api".into(),
                from: "auth:1".into(),
                upstream_commit: "c1".into(),
                commit: Some("m1".into()),
            }]),
        },
    );
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::UpstreamMerged { .. }))
    );
    let l3 = launches(&out);
    assert_eq!(l3.len(), 1);
    assert_eq!(l3[0].1, Unit::Task { plan: 1, task: 0 });

    // An upstream conflict or a failed step (a setup command that failed) blocks the plan,
    // and the event says why; nothing of the plan starts.
    for unready in [
        Unprepared::Conflict("merging `auth` conflicts in `a.rs`".into()),
        Unprepared::Failed("the setup command `make` of plan `api` failed".into()),
    ] {
        let mut c = core(cfg(8), &g, &plans, {
            let mut api = spec("api");
            api.needs_prep = true;
            vec![spec("auth"), api]
        });
        let l = launches(&c.handle(t0, Input::Tick));
        let out = finish(&mut c, t0, l[0].0, l[0].1);
        assert!(out.contains(&Action::Prepare { plan: 1 }), "{out:?}");
        let l2 = launches(&out);
        let (Unprepared::Conflict(why) | Unprepared::Failed(why)) = unready.clone();
        let out = c.handle(
            t0,
            Input::Prepared {
                plan: 1,
                result: Err(unready),
            },
        );
        assert!(
            reports(&out).iter().any(
                |e| matches!(e, Event::PlanBlocked { plan, reason } if plan == "api" && *reason == why)
            ),
            "{out:?}"
        );
        assert!(launches(&out).is_empty(), "{out:?}");
        let out = finish(&mut c, t0, l2[0].0, l2[0].1);
        assert!(launches(&out).is_empty(), "api is blocked: {out:?}");
        assert!(c.is_over(), "{out:?}");
    }
}

#[test]
fn the_merge_train_merges_upstream_plans_first_and_skips_what_waits_on_a_failed_merge() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n";
    let plans = vec![plan(text), plan(text), plan(text)];
    let names: Vec<String> = ["api", "auth", "docs"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let g = Graph::build(&plans, &names, &[]).expect("acyclic");
    let mut specs: Vec<PlanSpec> = names.iter().map(|n| spec(n)).collect();
    // api depends on auth (for merging), but its tasks do not wait.
    specs[0].upstreams = vec![1];
    let mut config = cfg(8);
    config.auto_merge = true;
    let mut c = core(config, &g, &plans, specs);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(l.len(), 3);
    // api finishes first, but waits for auth's merge.
    let out = finish(&mut c, t0, l[0].0, l[0].1);
    assert!(
        !out.iter().any(|a| matches!(a, Action::Merge { .. })),
        "{out:?}"
    );
    let out = finish(&mut c, t0, l[2].0, l[2].1);
    assert!(
        out.contains(&Action::Merge { plan: 2 }),
        "docs has no upstream"
    );
    let out = finish(&mut c, t0, l[1].0, l[1].1);
    assert!(
        !out.iter().any(|a| matches!(a, Action::Merge { .. })),
        "one merge at a time"
    );
    let out = c.handle(
        t0,
        Input::Merged {
            plan: 2,
            outcome: PlanMergeOutcome::Merged {
                commit: "m".into(),
                note: None,
            },
        },
    );
    assert!(
        out.contains(&Action::Merge { plan: 1 }),
        "auth next: api waits for it"
    );
    let out = c.handle(
        t0,
        Input::Merged {
            plan: 1,
            outcome: PlanMergeOutcome::Conflict {
                files: vec!["a".into()],
                advice: String::new(),
            },
        },
    );
    assert!(
        reports(&out).iter().any(|e| matches!(
            e,
            Event::PlanMergeFailed { plan, result, .. } if plan == "api" && result == "skipped"
        )),
        "{out:?}"
    );
    assert!(c.is_over());
    let (summary, _) = c.summary(Duration::ZERO);
    let merges: Vec<Option<&str>> = summary
        .plans
        .iter()
        .map(|p| p.merge.map(|m| m.as_str()))
        .collect();
    assert_eq!(merges, [Some("skipped"), Some("conflict"), Some("merged")]);
}

/// A plan whose worktree is made during the run: it is prepared (which waits for the tree), its
/// `plan_started` comes with `Input::TreeMade`, and the run is not over while a tree is being
/// made; a tree that cannot be made blocks a plan not being prepared (it waits for another).
#[test]
fn a_worktree_made_during_the_run_is_awaited_and_its_failure_blocks_the_plan() {
    let up = plan("## Phase 1: A\n- [ ] 1.1 a\n");
    let down = plan("## Phase 1: X\n- [ ] 1.1 x\n");
    let plans = vec![up, down];
    let names: Vec<String> = vec!["auth".into(), "api".into()];
    let g = Graph::build(
        &plans,
        &names,
        &[CrossDep {
            from: 1,
            to: 0,
            target: CrossTarget::Plan,
        }],
    )
    .expect("acyclic");
    let mut auth = spec("auth");
    auth.needs_prep = true;
    auth.new_tree = true;
    let mut api = spec("api");
    api.needs_prep = true;
    api.new_tree = true;
    api.upstreams = vec![0];
    let mut c = core(cfg(8), &g, &plans, vec![auth, api]);
    let t0 = Instant::now();
    let out = c.handle(t0, Input::Tick);
    assert!(out.contains(&Action::Prepare { plan: 0 }), "{out:?}");
    assert!(
        launches(&out).is_empty(),
        "nothing before the tree: {out:?}"
    );
    // api's tree cannot be made while it waits for auth: blocked, with the reason.
    let out = c.handle(
        t0,
        Input::TreeMade {
            plan: 1,
            result: Err("cannot make the worktree of plan `api`: disk full".into()),
        },
    );
    assert!(
        reports(&out).iter().any(|e| matches!(
            e,
            Event::PlanBlocked { plan, reason } if plan == "api" && reason.contains("disk full")
        )),
        "{out:?}"
    );
    assert!(!c.is_over(), "auth's tree is still being made");
    let started = auth_started();
    let out = c.handle(
        t0,
        Input::TreeMade {
            plan: 0,
            result: Ok(vec![started.clone()]),
        },
    );
    assert_eq!(reports(&out), [&started]);
    let out = c.handle(
        t0,
        Input::Prepared {
            plan: 0,
            result: Ok(Vec::new()),
        },
    );
    let l = launches(&out);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].1, Unit::Task { plan: 0, task: 0 });
    let out = finish(&mut c, t0, l[0].0, l[0].1);
    assert!(launches(&out).is_empty(), "api is blocked: {out:?}");
    assert!(c.is_over(), "{out:?}");
}

/// The `plan_started` of `auth`'s worktree made during the run.
fn auth_started() -> Event {
    Event::PlanStarted {
        plan: "auth".into(),
        branch: "plan/auth".into(),
        worktree: "/w/auth".into(),
        base: "b".into(),
        created: true,
    }
}

/// One plan, `auth`, whose worktree is made during the run (it needs its preparation).
fn one_plan_being_made(text: &str) -> (Vec<Plan>, Core) {
    let plans = vec![plan(text)];
    let names: Vec<String> = vec!["auth".into()];
    let g = Graph::build(&plans, &names, &[]).expect("acyclic");
    let mut auth = spec("auth");
    auth.needs_prep = true;
    auth.new_tree = true;
    let c = core(cfg(8), &g, &plans, vec![auth]);
    (plans, c)
}

/// The run is not over while a plan worktree is still being made, even when nothing else runs.
#[test]
fn the_run_waits_for_a_worktree_being_made() {
    let (_, mut c) = one_plan_being_made("## Phase 1: A\n- [ ] 1.1 a\n");
    let t0 = Instant::now();
    let out = c.handle(t0, Input::Tick);
    assert!(out.contains(&Action::Prepare { plan: 0 }), "{out:?}");
    // Its preparation gave up (as a stopped run's does) before the tree was made.
    c.handle(
        t0,
        Input::Prepared {
            plan: 0,
            result: Err(Unprepared::Failed("stopped".into())),
        },
    );
    assert!(!c.is_over(), "the worktree is still being made");
    c.handle(
        t0,
        Input::TreeMade {
            plan: 0,
            result: Err("cannot make the worktree of plan `auth`: stopped".into()),
        },
    );
    assert!(c.is_over());
}

/// An adopted agent (launched by a supervisor that died) whose plan's worktree is still being
/// made ends before the worktree exists: its settlement (which checks and commits in that
/// worktree) waits for the worktree, then runs; the task is not judged from a half-made tree.
#[test]
fn an_attempt_that_ends_before_its_plans_worktree_is_made_is_settled_after() {
    let (plans, mut c) = one_plan_being_made("## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n");
    let t0 = Instant::now();
    let run = c.new_run();
    let unit = Unit::Task { plan: 0, task: 0 };
    let out = c.handle(
        t0,
        Input::Recovered {
            adopted: vec![Adopted {
                run,
                unit,
                attempt: 1,
                pid: 77,
                job_id: None,
                elapsed: Duration::from_secs(1),
            }],
            retry: Vec::new(),
        },
    );
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::TaskAdopted { pid: 77, .. })),
        "{out:?}"
    );
    // The agent reports done and exits while the worktree is still being made.
    let mut done = TaskFacts {
        status: crate::status::TaskStatus::Completed,
        ..TaskFacts::default()
    };
    done.fresh = true;
    let mut out = c.handle(
        t0,
        Input::Status {
            plan: 0,
            tasks: vec![(0, done)],
            merged: false,
        },
    );
    out.extend(c.handle(
        t0,
        Input::Exited {
            run,
            ending: Ending::Exited(None),
            output: Default::default(),
        },
    ));
    let touches_tree = |out: &[Action]| {
        out.iter().any(|a| {
            matches!(
                a,
                Action::Settle { .. } | Action::Check { .. } | Action::Commit { .. }
            )
        })
    };
    assert!(
        !touches_tree(&out),
        "nothing in the worktree before it is made: {out:?}"
    );
    assert!(!c.is_over());
    let started = auth_started();
    let out = c.handle(
        t0,
        Input::TreeMade {
            plan: 0,
            result: Ok(vec![started]),
        },
    );
    assert!(
        out.iter().any(|a| matches!(
            a,
            Action::Settle { run: r, unit: u, how: Settlement::Commit, .. } if *r == run && *u == unit
        )),
        "the adopted attempt is settled once the worktree is made: {out:?}"
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
    // The attempt was the earlier supervisor's, made after that plan's preparation: 1.2 runs
    // next, and 1.1 does not run again.
    assert_eq!(ids(&c, &plans, &launches(&out)), ["1.2"], "{out:?}");
}

#[test]
fn the_merge_train_lands_a_group_once_every_plan_of_it_is_finished_all_together() {
    // api (0) and client (1) land together; client waits for api to merge, not alone; docs (2)
    // lands on its own.
    let text = "## Phase 1: A\n- [ ] 1.1 a\n";
    let plans = vec![plan(text), plan(text), plan(text)];
    let names: Vec<String> = ["api", "client", "docs"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let g = Graph::build(&plans, &names, &[]).expect("acyclic");
    let mut specs: Vec<PlanSpec> = names.iter().map(|n| spec(n)).collect();
    specs[1].upstreams = vec![0];
    specs[0].land_with = vec![1];
    specs[1].land_with = vec![0];
    let mut config = cfg(8);
    config.auto_merge = true;
    let mut c = core(config, &g, &plans, specs);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(l.len(), 3);
    let merging = |out: &[Action]| {
        out.iter()
            .any(|a| matches!(a, Action::Merge { .. } | Action::Land { .. }))
    };
    // api finishes: its group is not, nothing lands.
    let out = finish(&mut c, t0, l[0].0, l[0].1);
    assert!(!merging(&out), "{out:?}");
    // client finishes: the group lands, as one landing.
    let out = finish(&mut c, t0, l[1].0, l[1].1);
    assert!(out.contains(&Action::Land { plans: vec![0, 1] }), "{out:?}");
    // docs finishes meanwhile: one landing or merge at a time.
    let out = finish(&mut c, t0, l[2].0, l[2].1);
    assert!(!merging(&out), "{out:?}");
    let out = c.handle(
        t0,
        Input::Landed {
            outcomes: vec![
                LandedPlan {
                    plan: 0,
                    target: "trunk".into(),
                    outcome: PlanMergeOutcome::VerifyFailed {
                        reason: "verify_all failed".into(),
                    },
                },
                LandedPlan {
                    plan: 1,
                    target: "main".into(),
                    outcome: PlanMergeOutcome::VerifyFailed {
                        reason: "verify_all failed".into(),
                    },
                },
            ],
        },
    );
    let failed: Vec<&str> = reports(&out)
        .iter()
        .filter_map(|e| match e {
            Event::PlanMergeFailed { plan, result, .. } if result == "verify_failed" => {
                Some(plan.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(failed, ["api", "client"], "{out:?}");
    assert!(
        out.contains(&Action::Merge { plan: 2 }),
        "docs next: {out:?}"
    );
    let out = c.handle(
        t0,
        Input::Merged {
            plan: 2,
            outcome: PlanMergeOutcome::Merged {
                commit: "m".into(),
                note: None,
            },
        },
    );
    assert!(!merging(&out), "{out:?}");
    assert!(c.is_over());
}

#[test]
fn the_merge_train_lands_a_lone_plan_of_another_repository_through_its_landing() {
    // api (0, repository `api`) is tied to no plan: a group of one, landed in its repository as
    // `orch merge` lands it; docs (1, the home repository) is merged alone.
    let text = "## Phase 1: A\n- [ ] 1.1 a\n";
    let plans = vec![plan(text), plan(text)];
    let names: Vec<String> = ["api", "docs"].iter().map(|s| s.to_string()).collect();
    let g = Graph::build(&plans, &names, &[]).expect("acyclic");
    let mut specs: Vec<PlanSpec> = names.iter().map(|n| spec(n)).collect();
    std::sync::Arc::make_mut(&mut specs[0].entry).repo = Some("api".into());
    let mut config = cfg(8);
    config.auto_merge = true;
    let mut c = core(config, &g, &plans, specs);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(l.len(), 2);
    let out = finish(&mut c, t0, l[0].0, l[0].1);
    assert!(out.contains(&Action::Land { plans: vec![0] }), "{out:?}");
    assert!(
        !out.iter().any(|a| matches!(a, Action::Merge { .. })),
        "{out:?}"
    );
    let out = c.handle(
        t0,
        Input::Landed {
            outcomes: vec![LandedPlan {
                plan: 0,
                target: "main".into(),
                outcome: PlanMergeOutcome::Merged {
                    commit: "a".into(),
                    note: None,
                },
            }],
        },
    );
    assert!(
        reports(&out)
            .iter()
            .any(|e| matches!(e, Event::PlanMerged { plan, .. } if plan == "api")),
        "{out:?}"
    );
    let out = finish(&mut c, t0, l[1].0, l[1].1);
    assert!(out.contains(&Action::Merge { plan: 1 }), "{out:?}");
}

#[test]
fn a_plan_the_train_skips_says_which_plan_of_which_repository_and_why() {
    // api (0, repository `api`) and client (1, repository `client`) land together; docs (2,
    // the home repository) waits for api.
    let text = "## Phase 1: A\n- [ ] 1.1 a\n";
    let plans = vec![plan(text), plan(text), plan(text)];
    let names: Vec<String> = ["api", "client", "docs"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let g = Graph::build(&plans, &names, &[]).expect("acyclic");
    let mut specs: Vec<PlanSpec> = names.iter().map(|n| spec(n)).collect();
    std::sync::Arc::make_mut(&mut specs[0].entry).repo = Some("api".into());
    std::sync::Arc::make_mut(&mut specs[1].entry).repo = Some("client".into());
    specs[1].upstreams = vec![0];
    specs[2].upstreams = vec![0];
    specs[0].land_with = vec![1];
    specs[1].land_with = vec![0];
    let mut config = cfg(8);
    config.auto_merge = true;
    let mut c = core(config, &g, &plans, specs);
    let t0 = Instant::now();
    let l = launches(&c.handle(t0, Input::Tick));
    assert_eq!(l.len(), 3);
    for launched in &l {
        finish(&mut c, t0, launched.0, launched.1);
    }
    let refused = PlanMergeOutcome::Refused {
        reason: "plan `api` of repository `api` changes ci/verify.sh".into(),
    };
    let out = c.handle(
        t0,
        Input::Landed {
            outcomes: vec![
                LandedPlan {
                    plan: 0,
                    target: "main".into(),
                    outcome: refused.clone(),
                },
                LandedPlan {
                    plan: 1,
                    target: "main".into(),
                    outcome: refused,
                },
            ],
        },
    );
    let skipped: Vec<&str> = reports(&out)
        .iter()
        .filter_map(|e| match e {
            Event::PlanMergeFailed {
                plan,
                result,
                reason,
            } if plan == "docs" && result == "skipped" => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        skipped,
        ["not merged: it waits for plan `api` of repository `api`, whose merge ended refused"],
        "{out:?}"
    );
}
