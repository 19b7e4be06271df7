//! `orch history --backtest`: the history replayed in time order, each forecast made from what
//! was known before it, and how often what happened fell under the forecast's p50 and p90.
//!
//! Tasks: each successful attempt is forecast from the attempts that had settled before it
//! (the estimator's levels as they stood then); attempts with no history yet are counted apart.
//! Plans: when half of each plan's tasks were done in each run (a point known as the run goes;
//! the middle of its span would be chosen knowing its end), its remaining time is forecast by
//! the Monte Carlo engine from the attempts settled by then, with the plan's tasks not done yet
//! as independent tasks (the history keeps no dependencies) grouped in their phases, inside the
//! whole run: each plan with as many agents at once as it used, the run with as many as it used
//! (attempts overlapping by less than a second counted one after the other: a record's start is
//! rebuilt from its end and duration, to the millisecond), and compared with the time it really
//! took to finish; a failed task retried as often as the manifest now says (else as often as
//! the history shows). A calibrated forecast has about 50 % under p50 and 90 % under p90.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::estimate::{Estimator, Kind};
use super::history::{Outcome, Record};
use super::monte_carlo::{Setup, TaskNow, forecast};

/// Monte Carlo runs per plan forecast in the backtest.
const PLAN_RUNS: usize = 100;

/// Coverage of one kind of forecast.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Coverage {
    /// Forecasts checked.
    pub n: usize,
    /// Of which the actual value was at most the p50 / the p90.
    pub(crate) under_p50: usize,
    pub(crate) under_p90: usize,
}

impl Coverage {
    fn add(&mut self, actual: f64, p50: f64, p90: f64) {
        self.n += 1;
        self.under_p50 += usize::from(actual <= p50);
        self.under_p90 += usize::from(actual <= p90);
    }

    /// Shares in 0–1 (0 when nothing was checked).
    pub fn p50_share(&self) -> f64 {
        share(self.under_p50, self.n)
    }

    pub fn p90_share(&self) -> f64 {
        share(self.under_p90, self.n)
    }
}

fn share(k: usize, n: usize) -> f64 {
    if n == 0 { 0.0 } else { k as f64 / n as f64 }
}

/// The backtest's result.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Backtest {
    pub tasks: Coverage,
    /// Successful attempts that had no history to be forecast from.
    pub(crate) tasks_without_history: usize,
    pub plans: Coverage,
    /// Mean of |forecast p50 − actual| ÷ actual over the plans' halfway points.
    pub plan_p50_error: f64,
}

impl Backtest {
    pub(crate) fn json(&self) -> serde_json::Value {
        let cov = |c: &Coverage| {
            serde_json::json!({
                "forecasts": c.n,
                "under_p50": c.under_p50,
                "under_p90": c.under_p90,
                "p50_coverage": round3(c.p50_share()),
                "p90_coverage": round3(c.p90_share()),
            })
        };
        let mut plans = cov(&self.plans);
        if let Some(o) = plans.as_object_mut() {
            o.insert(
                "p50_mean_error".into(),
                serde_json::json!(round3(self.plan_p50_error)),
            );
        }
        serde_json::json!({
            "tasks": cov(&self.tasks),
            "tasks_without_history": self.tasks_without_history,
            "plans_at_midpoint": plans,
        })
    }

    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        let pct = |x: f64| format!("{:.0} %", x * 100.0);
        let _ = writeln!(
            out,
            "tasks: {} forecasts from earlier history ({} more had none): {} under p50 (calibrated: 50 %), {} under p90 (calibrated: 90 %)",
            self.tasks.n,
            self.tasks_without_history,
            pct(self.tasks.p50_share()),
            pct(self.tasks.p90_share())
        );
        let _ = writeln!(
            out,
            "plans halfway (half their tasks done): {} forecasts of the time left: {} under p50, {} under p90; p50 off by {} on average",
            self.plans.n,
            pct(self.plans.p50_share()),
            pct(self.plans.p90_share()),
            pct(self.plan_p50_error)
        );
        out
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A record's end and start, in seconds since the epoch.
fn span(r: &Record) -> Option<(f64, f64)> {
    let end = r.end()?.timestamp_millis() as f64 / 1000.0;
    Some((end - r.duration_s(), end))
}

/// Replays `records` (any order; sorted by their end here). `retries(plan)`: the retries of a
/// failed task the plan has now (the manifest's); `None`: the most the history shows for it.
pub fn backtest(records: &[Record], retries: &dyn Fn(&str) -> Option<u32>) -> Backtest {
    let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
    for r in records {
        let x = seen.entry(&r.plan).or_insert(0);
        *x = (*x).max(r.attempt.saturating_sub(1));
    }
    let retries_of =
        |plan: &str| retries(plan).unwrap_or_else(|| seen.get(plan).copied().unwrap_or(0));
    let mut timed: Vec<(f64, f64, &Record)> = records
        .iter()
        .filter_map(|r| span(r).map(|(s, e)| (s, e, r)))
        .collect();
    timed.sort_by(|a, b| a.1.total_cmp(&b.1));
    // Each plan's span per run.
    let mut spans: BTreeMap<(&str, &str), (f64, f64)> = BTreeMap::new();
    for &(s, e, r) in &timed {
        let x = spans.entry((&r.run, &r.plan)).or_insert((s, e));
        x.0 = x.0.min(s);
        x.1 = x.1.max(e);
    }
    // Each plan's halfway point in each run: when half of its tasks were done (known as the
    // run goes; half its span would be chosen knowing its end, just before a late tail).
    // Per run and plan: its tasks, and the ends of its successful attempts.
    type Halves<'a> = BTreeMap<(&'a str, &'a str), (BTreeSet<&'a str>, Vec<f64>)>;
    let mut done: Halves<'_> = BTreeMap::new();
    for &(_, e, r) in &timed {
        let x = done.entry((&r.run, &r.plan)).or_default();
        x.0.insert(&r.task);
        if r.outcome == Outcome::Done {
            x.1.push(e);
        }
    }
    let mut mids: Vec<(f64, (&str, &str))> = done
        .iter()
        .filter_map(|(k, (tasks, ends))| {
            let at = *ends.get((tasks.len().max(1) - 1) / 2)?;
            (at < spans.get(k)?.1).then_some((at, *k))
        })
        .collect();
    mids.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut mids = mids.into_iter().peekable();
    let mut est = Estimator::default();
    let mut out = Backtest::default();
    let mut errors = Vec::new();
    for &(_, end, r) in &timed {
        while let Some((mid, key)) = mids.next_if(|(m, _)| *m < end) {
            if let Some((p50, p90, actual)) =
                plan_at(&est, &timed, key, mid, spans[&key].1, &retries_of)
            {
                out.plans.add(actual, p50, p90);
                if actual > 0.0 {
                    errors.push((p50 - actual).abs() / actual);
                }
            }
        }
        if r.outcome == Outcome::Done {
            let e = est.estimate(&Kind::of(r));
            if e.samples > 0 {
                let (p50, p90) = e.duration_range(0.0);
                out.tasks.add(r.duration_s(), p50, p90);
            } else {
                out.tasks_without_history += 1;
            }
        }
        est.add(r);
    }
    out.plan_p50_error = if errors.is_empty() {
        0.0
    } else {
        errors.iter().sum::<f64>() / errors.len() as f64
    };
    out
}

/// Attempts that overlap by less than this (seconds) ran one after the other: a record's start
/// is its end (to the millisecond) less its duration (truncated to the millisecond), so an
/// attempt started as another ended can seem to overlap it by a millisecond or two.
const TOUCH_S: f64 = 1.0;

/// The most attempts of `attempts` that overlapped in time (by [`TOUCH_S`] at least).
pub(super) fn concurrency<'a>(attempts: impl Iterator<Item = &'a (f64, f64, &'a Record)>) -> usize {
    let mut edges: Vec<(f64, i32)> = attempts
        .flat_map(|(s, e, _)| [(*s + TOUCH_S.min((e - s) / 2.0), 1), (*e, -1)])
        .collect();
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut most) = (0i32, 1i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

/// The forecast (p50, p90) of the time plan `key` had left at `mid` (its halfway point), and the time it took: the
/// whole run `key.0` simulated from its state at `mid` (the history keeps no dependencies: each
/// plan's tasks are grouped in their phases, a phase waiting for the one before; each plan runs
/// as many at once as it did, the run as many as it did).
fn plan_at(
    est: &Estimator,
    timed: &[(f64, f64, &Record)],
    key: (&str, &str),
    mid: f64,
    end: f64,
    retries_of: &dyn Fn(&str) -> u32,
) -> Option<(f64, f64, f64)> {
    let run: Vec<&(f64, f64, &Record)> = timed.iter().filter(|(_, _, r)| r.run == key.0).collect();
    // The run's plans in their order then (by name for records that did not keep it), with
    // their priorities: the scheduler gives the agents in that order when priorities tie.
    let mut order: BTreeMap<&str, (u32, i64)> = BTreeMap::new();
    for (_, _, r) in &run {
        order.insert(
            &r.plan,
            (
                r.plan_order.unwrap_or(u32::MAX),
                r.plan_priority.unwrap_or(0),
            ),
        );
    }
    let mut names: Vec<&str> = order.keys().copied().collect();
    names.sort_by_key(|n| (order[n].0, *n));
    let priorities: Vec<i64> = names.iter().map(|n| order[n].1).collect();
    let target = names.iter().position(|n| *n == key.1)?;
    let mut plans = Vec::new();
    let mut state = Vec::new();
    let mut estimate = Vec::new();
    let mut limits = Vec::new();
    let mut retries = Vec::new();
    for name in &names {
        let attempts: Vec<&(f64, f64, &Record)> = run
            .iter()
            .copied()
            .filter(|(_, _, r)| r.plan == *name)
            .collect();
        limits.push(concurrency(attempts.iter().copied()));
        retries.push(retries_of(name));
        // Each task once: its state at `mid`, its record, its phase.
        let mut tasks: BTreeMap<(u32, &str), (TaskNow, &Record)> = BTreeMap::new();
        for &&(s, e, r) in &attempts {
            let now = if e <= mid {
                if r.outcome == Outcome::Done {
                    TaskNow::Done
                } else {
                    TaskNow::Pending {
                        attempts: r.attempt,
                    }
                }
            } else if s <= mid {
                TaskNow::Running {
                    elapsed_s: mid - s,
                    attempt: r.attempt,
                }
            } else {
                TaskNow::Pending { attempts: 0 }
            };
            let slot = tasks.entry((r.phase, &r.task)).or_insert((now, r));
            // Done beats running beats pending; among pending, the later attempt counts.
            let rank = |t: &TaskNow| match t {
                TaskNow::Done => 3,
                TaskNow::Running { .. } => 2,
                TaskNow::Pending { attempts } if *attempts > 0 => 1,
                _ => 0,
            };
            if rank(&now) > rank(&slot.0) {
                *slot = (now, r);
            }
        }
        let mut text = String::from("# backtest\n");
        let mut phase = None;
        let mut k = 0;
        for ((ph, _), (_, r)) in &tasks {
            if phase != Some(*ph) {
                phase = Some(*ph);
                let _ = write!(text, "\n## Phase {}: Work\n", ph.max(&1));
                k = 0;
            }
            k += 1;
            // Its `(est: …)`, which the scheduler ranked it by as it ran.
            let est = r
                .estimate_s
                .map(|e| format!(" (est: {e}s)"))
                .unwrap_or_default();
            let _ = writeln!(text, "- [ ] {}.{k} task{est}", ph.max(&1));
        }
        plans.push(crate::plan::parse(
            std::path::Path::new("backtest.md"),
            &text,
        ));
        state.push(tasks.values().map(|(s, _)| *s).collect::<Vec<_>>());
        estimate.push(
            tasks
                .values()
                .map(|(_, r)| est.estimate(&Kind::of(r)))
                .collect::<Vec<_>>(),
        );
    }
    let plan_names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let graph = crate::graph::Graph::build(&plans, &plan_names, &[]).ok()?;
    let f = forecast(
        &Setup {
            graph: &graph,
            plans: &plans,
            priorities: &priorities,
            plan_limit: &limits,
            max_agents: concurrency(run.iter().copied()),
            retries: &retries,
            state: &state,
            estimate: &estimate,
        },
        PLAN_RUNS,
        super::SEED,
    );
    let r = f.plans.get(target)?;
    Some((r.end_p50_s, r.end_p90_s, end - mid))
}
