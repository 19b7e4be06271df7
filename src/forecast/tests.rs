//! The estimator's rules, the history's defensive reading, the Monte Carlo engine and the
//! backtest on small hand-made histories.

use super::estimate::{Basis, Estimator, Kind, MIN_SAMPLES, fit, normal_cdf, normal_inv};
use super::history::{History, Outcome, Record};
use super::monte_carlo::{Setup, TaskNow, forecast};

fn rec(plan: &str, agent: &str, secs: f64, outcome: Outcome) -> Record {
    Record {
        at: "2026-11-25T10:00:00Z".into(),
        run: "2026-11-25T09:00:00Z".into(),
        plan: plan.into(),
        task: "1.1".into(),
        phase: 1,
        description: "a task".into(),
        agent: agent.into(),
        model: agent.into(),
        duration_ms: (secs * 1000.0) as u64,
        tokens: 1000,
        cost_micro_usd: Some((secs * 10_000.0) as u64),
        outcome,
        attempt: 1,
        estimate_s: None,
        plan_order: None,
        plan_priority: None,
    }
}

fn done(plan: &str, agent: &str, secs: &[f64]) -> Vec<Record> {
    secs.iter()
        .map(|&s| rec(plan, agent, s, Outcome::Done))
        .collect()
}

fn kind<'a>(plan: &'a str, agent: &'a str, est: Option<u64>) -> Kind<'a> {
    Kind {
        plan,
        agent,
        estimate_s: est,
    }
}

#[test]
fn normal_functions_invert_each_other() {
    for z in [-2.5, -1.0, 0.0, 0.7, 1.281_551_565, 2.2] {
        assert!((normal_inv(normal_cdf(z)) - z).abs() < 1e-4, "z {z}");
    }
    assert!((normal_inv(0.9) - 1.281_551_565).abs() < 1e-6);
}

#[test]
fn few_samples_fall_back_to_a_broader_level() {
    // 3 attempts of plan a with claude (too few), 6 more of claude elsewhere.
    let mut h = done("a", "claude", &[100.0, 110.0, 120.0]);
    h.extend(done("b", "claude", &[50.0, 60.0, 70.0, 55.0, 65.0, 60.0]));
    let e = Estimator::new(&h).estimate(&kind("a", "claude", None));
    assert_eq!(e.basis, Basis::Agent);
    assert_eq!(e.samples, 9);
    // Enough of the plan's own: it is used, with its samples.
    h.extend(done("a", "claude", &[105.0, 115.0]));
    let e = Estimator::new(&h).estimate(&kind("a", "claude", None));
    assert_eq!(e.basis, Basis::PlanAgent);
    assert_eq!(e.samples, MIN_SAMPLES);
    let (p50, p90) = e.duration_range(0.0);
    assert!((p50 - 110.0).abs() < 1.0, "p50 {p50}");
    assert!(p90 > p50 && p90 < 160.0, "p90 {p90}");
}

#[test]
fn one_outlier_does_not_move_the_median_much() {
    let calm = done("a", "x", &[60.0, 62.0, 58.0, 61.0, 59.0, 60.0, 63.0, 57.0]);
    let mut wild = calm.clone();
    wild.push(rec("a", "x", 6000.0, Outcome::Done));
    let e0 = Estimator::new(&calm).estimate(&kind("a", "x", None));
    let e1 = Estimator::new(&wild).estimate(&kind("a", "x", None));
    let (a50, a90) = e0.duration_range(0.0);
    let (b50, b90) = e1.duration_range(0.0);
    assert!((b50 - a50).abs() / a50 < 0.05, "p50 {a50} → {b50}");
    // The p90 widens but stays of the order of the calm attempts, not of the outlier.
    assert!(b90 < 2.0 * a90, "p90 {a90} → {b90}");
}

#[test]
fn an_agent_never_seen_uses_all_else_its_estimate() {
    let h = done("a", "claude", &[100.0, 100.0, 120.0, 90.0, 110.0]);
    let est = Estimator::new(&h);
    let e = est.estimate(&kind("a", "gemini", None));
    assert_eq!(e.basis, Basis::All);
    assert_eq!(e.samples, 5);
    // With fewer than MIN_SAMPLES in every level, the task's `(est: …)` wins.
    let few = Estimator::new(&h[..2]);
    let e = few.estimate(&kind("a", "gemini", Some(300)));
    assert_eq!((e.basis, e.samples), (Basis::Estimate, 0));
    assert!((e.duration.quantile(0.5) - 300.0).abs() < 1e-6);
    // Two attempts say too little to call a third slow.
    let e = few.estimate(&kind("a", "gemini", None));
    assert_eq!((e.basis, e.samples), (Basis::All, 2));
    assert!(!e.is_slow(1e9));
    // No history, no estimate: the default.
    let none = Estimator::default().estimate(&kind("a", "gemini", None));
    assert_eq!(none.basis, Basis::Default);
    assert!(
        !none.is_slow(1e9),
        "the default range never calls a task slow"
    );
}

#[test]
fn a_running_task_past_its_p90_gets_a_range_above_its_elapsed_time() {
    let h = done("a", "x", &[60.0, 65.0, 70.0, 55.0, 62.0, 68.0]);
    let e = Estimator::new(&h).estimate(&kind("a", "x", None));
    let p90 = e.duration.quantile(0.9);
    assert!(!e.is_slow(p90 * 0.9));
    assert!(e.is_slow(p90 * 1.1));
    // Just started: the unconditional range.
    let (u50, _) = e.duration_range(0.0);
    assert!((u50 - 63.5).abs() < 2.0);
    // Well past anything seen: elapsed × 1.25 and × 2, never below the elapsed time.
    let (p50, p90b) = e.duration_range(600.0);
    assert!((p50 - 750.0).abs() < 1.0, "p50 {p50}");
    assert!((p90b - 1200.0).abs() < 2.0, "p90 {p90b}");
    // In the tail but not past it: above elapsed, within the history's range.
    let (c50, c90) = e.duration_range(66.0);
    assert!(c50 > 66.0 && c90 >= c50, "{c50} {c90}");
}

#[test]
fn failures_and_costs_come_from_the_history() {
    let mut h = done("a", "x", &[10.0, 10.0, 10.0, 10.0, 10.0, 10.0]);
    h.extend((0..4).map(|_| rec("a", "x", 30.0, Outcome::Failed)));
    let e = Estimator::new(&h).estimate(&kind("a", "x", None));
    assert!((e.fail_rate - 0.4).abs() < 1e-9);
    let (c50, _) = e.cost_range().expect("costs known");
    assert!((0.09..=0.31).contains(&c50), "cost p50 {c50}");
}

#[test]
fn fit_spreads_with_the_data() {
    let tight = fit([10.0, 10.5, 9.5, 10.2, 9.8].into_iter()).expect("fit");
    let loose = fit([5.0, 20.0, 10.0, 40.0, 2.5].into_iter()).expect("fit");
    assert!(loose.sigma > 3.0 * tight.sigma);
    assert!(fit(std::iter::empty()).is_none());
}

#[test]
fn history_lines_that_are_not_records_are_skipped_with_notes() {
    let good = serde_json::to_string(&rec("a", "x", 5.0, Outcome::Done)).expect("json");
    let huge = format!("{{\"plan\":\"{}\"}}", "x".repeat(20_000));
    let text = format!("{good}\nnot json\n{huge}\n\n{{\"plan\":1}}\n{good}\n");
    let h = History::parse(text.as_bytes());
    assert_eq!(h.records.len(), 2);
    assert_eq!(h.skipped.len(), 3, "{:?}", h.skipped);
    assert!(h.skipped[0].starts_with("line 2:"));
    assert!(h.skipped[1].contains("bytes long"));
}

#[test]
fn the_writer_compacts_to_the_newest_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines = String::new();
    let line = serde_json::to_string(&rec("a", "x", 1.0, Outcome::Done)).expect("json");
    for _ in 0..super::history::MAX_RECORDS {
        lines.push_str(&line);
        lines.push('\n');
    }
    std::fs::write(History::path(dir.path()), lines).expect("write");
    let mut w = super::history::Writer::open(dir.path());
    let mut last = rec("a", "x", 2.0, Outcome::Done);
    last.task = "9.9".into();
    w.append(&last);
    assert!(w.failed.is_none(), "{:?}", w.failed);
    let h = History::load(dir.path());
    assert_eq!(h.records.len(), super::history::KEEP);
    assert_eq!(h.records.last().map(|r| r.task.as_str()), Some("9.9"));
}

/// Two plans of four independent tasks, one agent slot each plan, 2 agents in all.
fn two_plans() -> (Vec<crate::plan::Plan>, crate::graph::Graph) {
    let text = "# P\n\n## Phase 1: W\n- [ ] 1.1 a\n- [ ] 1.2 b\n- [ ] 1.3 c\n- [ ] 1.4 d\n";
    let p = crate::plan::parse(std::path::Path::new("p.md"), text);
    let plans = vec![p.clone(), p];
    let g = crate::graph::Graph::build(&plans, &["a".into(), "b".into()], &[]).expect("graph");
    (plans, g)
}

#[test]
fn monte_carlo_ranges_follow_the_durations_and_slots() {
    let (plans, g) = two_plans();
    let h = done("a", "x", &[100.0, 100.0, 100.0, 100.0, 100.0]);
    let e = Estimator::new(&h).estimate(&kind("a", "x", None));
    let estimate = vec![vec![e.clone(); 4], vec![e; 4]];
    let state = vec![vec![TaskNow::Pending { attempts: 0 }; 4]; 2];
    let setup = |max_agents, limit: &'static [usize]| Setup {
        graph: &g,
        plans: &plans,
        priorities: &[0, 0],
        plan_limit: limit,
        max_agents,
        retries: &[0, 0],
        state: &state,
        estimate: &estimate,
    };
    // 8 tasks of ~100 s on 2 agents: ~400 s; on 8 agents: ~100 s plus the tail of 8 draws.
    let two = forecast(&setup(2, &[8, 8]), 200, 1);
    assert!((330.0..470.0).contains(&two.run.end_p50_s), "{two:?}");
    assert!(two.run.end_p90_s >= two.run.end_p50_s);
    let eight = forecast(&setup(8, &[8, 8]), 200, 1);
    assert!(eight.run.end_p50_s < 200.0, "{eight:?}");
    // Cost: 8 attempts of ~$1.
    let c = two.run.cost_p50.expect("cost");
    assert!((6.0..10.0).contains(&c), "cost {c}");
    // Same seed, same forecast.
    assert_eq!(forecast(&setup(2, &[8, 8]), 200, 1), two);
    // A running task near its end, everything else done: ends soon.
    let mut state = vec![vec![TaskNow::Done; 4]; 2];
    state[0][0] = TaskNow::Running {
        elapsed_s: 95.0,
        attempt: 1,
    };
    let s = Setup {
        state: &state,
        ..setup(2, &[8, 8])
    };
    let f = forecast(&s, 200, 1);
    assert!(f.run.end_p50_s < 30.0, "{f:?}");
    assert_eq!(f.plans[1].end_p50_s, 0.0);
}

#[test]
fn monte_carlo_retries_failures() {
    let (plans, g) = two_plans();
    let mut h = done("a", "x", &[100.0; 5]);
    h.extend((0..5).map(|_| rec("a", "x", 100.0, Outcome::Failed)));
    let e = Estimator::new(&h).estimate(&kind("a", "x", None));
    let estimate = vec![vec![e.clone(); 4], vec![e; 4]];
    let state = vec![
        vec![TaskNow::Pending { attempts: 0 }; 4],
        vec![TaskNow::Done; 4],
    ];
    let with = |retries: &'static [u32]| {
        forecast(
            &Setup {
                graph: &g,
                plans: &plans,
                priorities: &[0, 0],
                plan_limit: &[1, 1],
                max_agents: 1,
                retries,
                state: &state,
                estimate: &estimate,
            },
            300,
            7,
        )
    };
    let none = with(&[0, 0]);
    let many = with(&[5, 5]);
    // Half the attempts fail: retried, the plan takes about twice as long, and rarely blocks.
    assert!(many.run.end_p50_s > 1.5 * 400.0, "{many:?}");
    assert!(
        many.blocked_share < 0.3 && none.blocked_share > 0.8,
        "{none:?} {many:?}"
    );
}

#[test]
fn the_backtest_counts_how_often_actuals_fall_under_the_forecast() {
    // Twenty runs of one plan of 4 tasks, durations cycling through 40–160 s.
    let mut h = Vec::new();
    let mut t = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    let cycle = [40.0, 70.0, 100.0, 130.0, 160.0, 90.0, 110.0];
    for run in 0..20 {
        for k in 0..4 {
            let secs = cycle[(run * 4 + k) % cycle.len()];
            t += chrono::Duration::milliseconds((secs * 1000.0) as i64);
            let mut r = rec("a", "x", secs, Outcome::Done);
            r.at = super::rfc3339(t);
            r.run = format!("run{run}");
            r.task = format!("1.{k}");
            h.push(r);
        }
        t += chrono::Duration::seconds(600);
    }
    let b = super::backtest::backtest(&h, &|_| None);
    assert_eq!(b.tasks.n + b.tasks_without_history, 80);
    assert_eq!(
        b.tasks_without_history, 1,
        "only the first attempt had nothing before it"
    );
    assert!((0.3..0.7).contains(&b.tasks.p50_share()), "{b:?}");
    assert!(b.tasks.p90_share() > 0.75, "{b:?}");
    assert!(b.plans.n >= 15, "{b:?}");
    assert!(b.text().contains("under p90"));
}

#[test]
fn attempts_back_to_back_do_not_count_as_overlapping() {
    // Three attempts one after the other; the second's start, rebuilt from its end and its
    // truncated duration, falls a millisecond before the first's end.
    let r = rec("a", "claude", 100.0, Outcome::Done);
    let spans = [(0.0, 100.0, &r), (99.999, 200.0, &r), (199.998, 300.0, &r)];
    assert_eq!(super::backtest::concurrency(spans.iter()), 1);
    // A real overlap of two seconds counts.
    let spans = [(0.0, 100.0, &r), (98.0, 200.0, &r)];
    assert_eq!(super::backtest::concurrency(spans.iter()), 2);
}

#[test]
fn records_keep_the_plans_order_and_older_ones_still_read() {
    let mut r = rec("a", "x", 5.0, Outcome::Done);
    r.plan_order = Some(3);
    r.plan_priority = Some(-1);
    let line = serde_json::to_string(&r).expect("json");
    let back = History::parse(line.as_bytes());
    assert_eq!(back.records[0].plan_order, Some(3));
    assert_eq!(back.records[0].plan_priority, Some(-1));
    // A record written before the fields were kept.
    let old = r#"{"at":"2026-11-25T10:00:00Z","run":"r","plan":"a","task":"1.1","agent":"x","duration_ms":5000,"outcome":"done"}"#;
    let h = History::parse(old.as_bytes());
    assert_eq!(h.records.len(), 1, "{:?}", h.skipped);
    assert_eq!(h.records[0].plan_order, None);
    assert_eq!(h.records[0].plan_priority, None);
}

#[test]
fn the_median_follows_the_newest_attempts_and_the_tail_keeps_the_older_ones() {
    // 170 attempts of 100 s with a tail of 10 at 1000 s, then the agent doubles its time: 60
    // attempts of 200 s, none in the tail (a tail of 1 in 18 is often missed by 60 attempts).
    let mut h = done("a", "x", &[100.0; 170]);
    h.extend(done("a", "x", &[1000.0; 10]));
    h.extend(done("a", "x", &[200.0; 60]));
    let e = Estimator::new(&h).estimate(&kind("a", "x", None));
    assert_eq!(e.samples, super::estimate::WINDOW);
    assert!((e.duration_range(0.0).0 - 200.0).abs() < 1.0, "{e:?}");
    // The draws: the older attempts' shape at the newest median, the tail at 10 × it.
    let v = e.empirical.as_ref().expect("draws");
    assert_eq!(v.len(), 240);
    let most = v.iter().copied().fold(0.0, f64::max);
    assert!((most - 2000.0).abs() < 1.0, "{most}");
    assert!((e.draw_duration(0.5, 0.0) - 200.0).abs() < 100.0);
}

/// A plan that runs one task at a time, of tasks of a few seconds, back to back, written as orch
/// writes its records ([`super::history::stamp`]): its halfway forecasts replay it one task at a
/// time. With the end kept to the second only, the rebuilt starts made neighbours overlap, the
/// plan was replayed two tasks at a time and its time left came out at about half.
#[test]
fn a_plan_of_short_tasks_run_one_at_a_time_is_replayed_one_at_a_time() {
    let replay = |stamp: fn(chrono::DateTime<chrono::Utc>) -> String| {
        let mut h = Vec::new();
        let mut t = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00.250Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        let cycle = [1.3, 2.1, 1.7, 2.6, 1.45, 1.9, 2.3];
        for run in 0..12 {
            for k in 0..10 {
                let secs = cycle[(run * 10 + k) % cycle.len()];
                t += chrono::Duration::milliseconds((secs * 1000.0) as i64 + 40);
                let mut r = rec(&format!("p{run}"), "slow", secs, Outcome::Done);
                r.at = stamp(t);
                r.run = format!("run{run}");
                r.task = format!("1.{k}");
                h.push(r);
            }
            t += chrono::Duration::seconds(30);
        }
        super::backtest::backtest(&h, &|_| Some(0))
    };
    let b = replay(super::history::stamp);
    assert!(b.plans.n >= 10, "{b:?}");
    assert!(b.plan_p50_error < 0.25, "{b:?}");
    assert!(b.plans.p90_share() >= 0.8, "{b:?}");
    let coarse = replay(super::rfc3339);
    assert!(coarse.plan_p50_error > b.plan_p50_error, "{coarse:?} {b:?}");
}

/// A new plan's first attempts on a known agent: its median pooled with the agent's (weighed by
/// its attempts), the agent's spread and tail; from 20 attempts of its own it stands alone.
#[test]
fn a_new_plans_few_attempts_are_pooled_with_its_agents_shape() {
    let spread = [0.5, 0.7, 0.8, 0.9, 1.0, 1.0, 1.1, 1.25, 1.5, 2.5];
    let agent: Vec<f64> = (0..40).map(|i| 50.0 * spread[i % spread.len()]).collect();
    let mut h = done("old", "claude", &agent);
    let wide = Estimator::new(&h).estimate(&kind("old", "claude", None));
    h.extend(done("new", "claude", &[100.0; 5]));
    let e = Estimator::new(&h).estimate(&kind("new", "claude", None));
    assert_eq!((e.basis, e.samples), (Basis::PlanAgent, 5));
    let (p50, p90) = e.duration_range(0.0);
    // Halfway between 100 (its own five) and the agent's 50, in logs: about 70.7.
    assert!((p50 - (100.0f64 * 50.0).sqrt()).abs() < 1.0, "p50 {p50}");
    // The agent's spread, not the five identical attempts' (none).
    let ratio = p90 / p50;
    let (w50, w90) = wide.duration_range(0.0);
    assert!(
        ratio >= w90 / w50,
        "p90/p50 {ratio} vs the agent's {}",
        w90 / w50
    );
    assert!(
        e.empirical.is_some(),
        "drawn from the agent's attempts, rescaled"
    );
    // Twenty of its own: its own median.
    h.extend(done("new", "claude", &[100.0; 15]));
    let e = Estimator::new(&h).estimate(&kind("new", "claude", None));
    assert!((e.duration_range(0.0).0 - 100.0).abs() < 1.0);
}

#[test]
fn a_range_within_one_minute_is_said_as_one_time() {
    use chrono::TimeZone as _;
    let at = chrono::Utc
        .with_ymd_and_hms(2026, 11, 26, 15, 10, 5)
        .unwrap();
    let r = |p50: f64, p90: f64| super::monte_carlo::Range {
        end_p50_s: p50,
        end_p90_s: p90,
        cost_p50: None,
        cost_p90: None,
    };
    let local = |s: i64| {
        (at + chrono::Duration::seconds(s))
            .with_timezone(&chrono::Local)
            .format("%H:%M")
            .to_string()
    };
    assert_eq!(
        super::range_words(at, &r(10.0, 20.0)),
        format!("ends about {}", local(10))
    );
    assert_eq!(
        super::range_words(at, &r(60.0, 600.0)),
        format!("ends {}–{}", local(60), local(600))
    );
}
