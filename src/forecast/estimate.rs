//! The per-task estimator: a duration and cost range (p50, p90) for a task, learned from the
//! attempts of the most similar history that has enough of them.
//!
//! Levels, most similar first: the same plan and agent, the same agent, every attempt. A level
//! is used when it holds at least [`MIN_SAMPLES`] successful attempts; otherwise the next one;
//! then the task's `(est: …)`; then any history at all; then the default of `orch simulate`
//! (10 minutes). A level's median (its p50, where the durations are) comes from its newest
//! [`WINDOW`] successful attempts only, so that a drift (a new model, a faster machine) is
//! followed within a run or two; its shape (the spread and the tail, as ratios to the median)
//! from its newest [`SHAPE_WINDOW`], rescaled to that median: a tail of a few attempts in 20
//! is seen only a handful of times in 60, and a run of many tasks ends on its worst ones.
//!
//! Durations are heavy-tailed, so they are modelled as log-normal: the median of the log
//! durations gives p50 (one outlier does not move it), and the spread comes from the median
//! absolute deviation of the logs (robust too) while there are fewer than [`EMPIRICAL_FROM`]
//! samples, from the empirical 90th percentile of the logs after that (the real tail, whatever
//! its shape). A small sample's spread is widened by √(1 + 1/n) (the predictive interval of a
//! new draw, not of the mean). A running task's range is conditional on the time it has run:
//! the quantiles of the distribution above its elapsed time; past the 98th percentile (nothing
//! in the history ran that long) the range is elapsed × 1.25 to elapsed × 2. Never below the
//! elapsed time.

use std::collections::{HashMap, VecDeque};

use super::history::{Outcome, Record};

/// Successful attempts a level needs before it is used.
pub(crate) const MIN_SAMPLES: usize = 5;
/// Newest attempts per level its median comes from.
pub(crate) const WINDOW: usize = 60;
/// Newest successful attempts per level its shape (spread, tail) comes from.
pub(crate) const SHAPE_WINDOW: usize = 4 * WINDOW;
/// From this many samples the spread comes from the empirical 90th percentile.
pub(crate) const EMPIRICAL_FROM: usize = 20;
/// z of the 90th percentile of a standard normal.
pub(crate) const Z90: f64 = 1.281_551_565_544_600_4;
/// The spread of a task known only by its `(est: …)` (that of `orch simulate --seed`).
pub(crate) const ESTIMATE_SIGMA: f64 = crate::simulate::SIGMA;
/// Seconds for a task with neither history nor estimate (`orch simulate`'s default).
pub(crate) const DEFAULT_S: f64 = 600.0;
/// The narrowest spread a fit may have (σ of the log): no history is that regular.
const MIN_SIGMA: f64 = 0.1;

/// Where an estimate comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// Attempts of the same plan with the same agent.
    PlanAgent,
    /// Attempts of the same agent, any plan.
    Agent,
    /// Every attempt.
    All,
    /// The task's `(est: …)`.
    Estimate,
    /// No history, no estimate: `orch simulate`'s default.
    Default,
}

impl Basis {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Basis::PlanAgent => "plan_agent",
            Basis::Agent => "agent",
            Basis::All => "all",
            Basis::Estimate => "estimate",
            Basis::Default => "default",
        }
    }
}

/// A log-normal distribution: ln X ~ N(mu, sigma²).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogNormal {
    pub(crate) mu: f64,
    pub(crate) sigma: f64,
}

impl LogNormal {
    pub(crate) fn quantile(&self, q: f64) -> f64 {
        (self.mu + self.sigma * normal_inv(q)).exp()
    }

    pub(crate) fn cdf(&self, x: f64) -> f64 {
        if x <= 0.0 {
            return 0.0;
        }
        if self.sigma <= 0.0 {
            return if x.ln() >= self.mu { 1.0 } else { 0.0 };
        }
        normal_cdf((x.ln() - self.mu) / self.sigma)
    }

    /// The `q` quantile of X given X > `after` (never below `after`).
    pub(crate) fn quantile_after(&self, q: f64, after: f64) -> f64 {
        if after <= 0.0 {
            return self.quantile(q);
        }
        let f = self.cdf(after);
        let x = if 1.0 - f < PAST_TAIL {
            after * PAST.quantile(q)
        } else {
            (self.mu + self.sigma * normal_inv(f + q * (1.0 - f))).exp()
        };
        x.max(after)
    }
}

/// Past this share of the tail the history says nothing: elapsed × [`PAST`].
const PAST_TAIL: f64 = 0.02;
/// What is left of a task past its history, as a factor of its elapsed time: median 1.25, p90 2.
const PAST: LogNormal = LogNormal {
    mu: 0.223_143_551_314_209_7,
    sigma: 0.366_735_888_285_685_7,
};

/// The standard normal CDF (Abramowitz and Stegun 7.1.26 for erf; error below 1.5e-7).
pub(crate) fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + y)
    } else {
        0.5 * (1.0 - y)
    }
}

/// The standard normal quantile (Acklam's rational approximation; relative error below 1.2e-9).
pub(crate) fn normal_inv(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let low = 0.02425;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

/// The log-normal fitted to positive samples (see the module documentation); `None` for none.
pub fn fit(values: impl Iterator<Item = f64>) -> Option<LogNormal> {
    let mut logs: Vec<f64> = values.filter(|v| *v > 0.0).map(f64::ln).collect();
    if logs.is_empty() {
        return None;
    }
    logs.sort_by(f64::total_cmp);
    let n = logs.len();
    let mu = quantile_sorted(&logs, 0.5);
    let sigma = if n >= EMPIRICAL_FROM {
        (quantile_sorted(&logs, 0.9) - mu) / Z90
    } else {
        let mut dev: Vec<f64> = logs.iter().map(|x| (x - mu).abs()).collect();
        dev.sort_by(f64::total_cmp);
        1.4826 * quantile_sorted(&dev, 0.5) * (1.0 + 1.0 / n as f64).sqrt()
    };
    Some(LogNormal {
        mu,
        sigma: sigma.max(MIN_SIGMA),
    })
}

/// The `q` quantile of sorted values, interpolated between neighbours.
pub(crate) fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let h = (v.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (h - lo as f64)
}

/// One level's newest attempts.
#[derive(Clone, Debug, Default)]
struct Level {
    /// Successful attempts' seconds (the newest [`SHAPE_WINDOW`]).
    done: VecDeque<f64>,
    /// Successful and failed attempts' costs in US dollars (when known).
    cost: VecDeque<f64>,
    /// Failed attempts' seconds.
    failed: VecDeque<f64>,
    /// The newest outcomes (true: failed).
    outcomes: VecDeque<bool>,
}

fn push<T>(q: &mut VecDeque<T>, v: T) {
    push_to(q, v, WINDOW);
}

fn push_to<T>(q: &mut VecDeque<T>, v: T, cap: usize) {
    if q.len() >= cap {
        q.pop_front();
    }
    q.push_back(v);
}

impl Level {
    fn add(&mut self, r: &Record) {
        let failed = r.outcome == Outcome::Failed;
        push(&mut self.outcomes, failed);
        if failed {
            push(&mut self.failed, r.duration_s());
        } else {
            push_to(&mut self.done, r.duration_s(), SHAPE_WINDOW);
        }
        if let Some(c) = r.cost_usd() {
            push(&mut self.cost, c);
        }
    }

    /// The newest [`WINDOW`] successful attempts' seconds.
    fn recent(&self) -> impl Iterator<Item = f64> + '_ {
        self.done
            .iter()
            .skip(self.done.len().saturating_sub(WINDOW))
            .copied()
    }

    /// The fit of the successful attempts: the median of the newest [`WINDOW`], the spread of
    /// the newest [`SHAPE_WINDOW`] once there are [`EMPIRICAL_FROM`] (else of the newest
    /// [`WINDOW`]); with the sorted attempts the Monte Carlo draws from (scaled to that
    /// median), from [`EMPIRICAL_FROM`] on.
    fn durations(&self) -> Durations {
        let recent = fit(self.recent());
        if self.done.len() < EMPIRICAL_FROM {
            return (recent, None);
        }
        let (Some(recent), Some(long)) = (recent, fit(self.done.iter().copied())) else {
            return (recent, None);
        };
        let f = (recent.mu - long.mu).exp();
        let mut v: Vec<f64> = self.done.iter().map(|x| x * f).collect();
        v.sort_by(f64::total_cmp);
        (
            Some(LogNormal {
                mu: recent.mu,
                sigma: long.sigma,
            }),
            Some(std::sync::Arc::new(v)),
        )
    }

    fn fail_rate(&self) -> f64 {
        if self.outcomes.is_empty() {
            return 0.0;
        }
        let f = self.outcomes.iter().filter(|&&x| x).count() as f64;
        (f / self.outcomes.len() as f64).min(0.9)
    }
}

/// What a task is, for the estimator.
#[derive(Clone, Copy, Debug)]
pub struct Kind<'a> {
    pub plan: &'a str,
    pub agent: &'a str,
    /// Its `(est: …)` in seconds.
    pub estimate_s: Option<u64>,
}

impl<'a> Kind<'a> {
    /// The task of a history record.
    pub(crate) fn of(r: &'a Record) -> Self {
        Kind {
            plan: &r.plan,
            agent: &r.agent,
            estimate_s: r.estimate_s,
        }
    }
}

/// A task's forecast: its attempt's duration and cost, the chance an attempt fails, and what it
/// rests on.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// A successful attempt's seconds.
    pub duration: LogNormal,
    /// A failed attempt's seconds.
    pub failed_duration: LogNormal,
    /// An attempt's cost in US dollars; `None` when no attempt of the history named one.
    pub cost: Option<LogNormal>,
    /// The share of attempts that failed.
    pub fail_rate: f64,
    /// Successful attempts the duration rests on (0 for an estimate or the default).
    pub samples: usize,
    pub basis: Basis,
    /// The successful attempts' seconds, sorted, when there are at least [`EMPIRICAL_FROM`]:
    /// the Monte Carlo draws from them (their real tail, heavier than a log-normal's) rather
    /// than from the fit.
    pub empirical: Option<std::sync::Arc<Vec<f64>>>,
}

impl Estimate {
    /// (p50, p90) of the duration in seconds; for a task that has run `elapsed` seconds, of its
    /// whole duration given that.
    pub(crate) fn duration_range(&self, elapsed: f64) -> (f64, f64) {
        (
            self.duration.quantile_after(0.5, elapsed),
            self.duration.quantile_after(0.9, elapsed),
        )
    }

    /// (p50, p90) of the cost in US dollars.
    pub(crate) fn cost_range(&self) -> Option<(f64, f64)> {
        self.cost.map(|c| (c.quantile(0.5), c.quantile(0.9)))
    }

    /// A successful attempt's seconds drawn at quantile `u`, given it has run `elapsed` seconds
    /// (0: just starting): from the samples longer than `elapsed` when there are enough of them
    /// (at least 3), else from the fit.
    pub(crate) fn draw_duration(&self, u: f64, elapsed: f64) -> f64 {
        if let Some(v) = &self.empirical {
            let from = v.partition_point(|&x| x <= elapsed);
            if v.len() - from >= 3 {
                return quantile_sorted(&v[from..], u).max(elapsed);
            }
        }
        if elapsed > 0.0 {
            self.duration.quantile_after(u, elapsed)
        } else {
            self.duration.quantile(u)
        }
    }

    /// Whether an attempt that has run `elapsed` seconds is past the p90 of its kind (history
    /// of at least [`MIN_SAMPLES`] attempts only: an estimate's range, or one or two attempts,
    /// say nothing of how this agent works).
    pub(crate) fn is_slow(&self, elapsed: f64) -> bool {
        self.samples >= MIN_SAMPLES && elapsed > self.duration.quantile(0.9)
    }
}

/// The levels of a history, built once (or one record at a time, for the backtest).
#[derive(Clone, Debug, Default)]
pub struct Estimator {
    plan_agent: HashMap<(String, String), Level>,
    agent: HashMap<String, Level>,
    all: Level,
}

/// A level's fit of its successful attempts and the sorted draws of them (see `Level::durations`).
type Durations = (Option<LogNormal>, Option<std::sync::Arc<Vec<f64>>>);

/// Weight, in attempts, of the broader level's median against a narrow level's own (see
/// [`Estimator::pooled`]).
const PRIOR_WEIGHT: f64 = MIN_SAMPLES as f64;

impl Estimator {
    /// A narrow level of fewer than [`EMPIRICAL_FROM`] attempts (a plan's first few: a new plan
    /// on a known agent) pooled with the first broader level that has that many: the broader
    /// level's shape (its spread and tail, its draws), moved to a median between the two, the
    /// narrow level's weighed by its attempts against [`PRIOR_WEIGHT`] (the shrinkage of a
    /// small sample's median toward its group's). A spread measured on five attempts misses the
    /// tail often: the plans of a new run, one task at a time, fell under the p90 of their
    /// halfway forecasts in 67.5 % of the runs (`benches/forecast.rs`). `None`: the level
    /// stands alone.
    fn pooled(narrow: &Level, broader: &[(Option<&Level>, Basis)]) -> Option<Durations> {
        let n = narrow.done.len();
        if n >= EMPIRICAL_FROM {
            return None;
        }
        let wide = broader
            .iter()
            .find_map(|(l, _)| l.filter(|l| l.done.len() >= EMPIRICAL_FROM))?;
        let own = fit(narrow.recent())?;
        let (Some(shape), draws) = wide.durations() else {
            return None;
        };
        let n = n as f64;
        let mu = (n * own.mu + PRIOR_WEIGHT * shape.mu) / (n + PRIOR_WEIGHT);
        let f = (mu - shape.mu).exp();
        let draws = draws.map(|v| std::sync::Arc::new(v.iter().map(|x| x * f).collect()));
        Some((
            Some(LogNormal {
                mu,
                sigma: shape.sigma * (1.0 + 1.0 / (n + PRIOR_WEIGHT)).sqrt(),
            }),
            draws,
        ))
    }

    pub fn new(records: &[Record]) -> Estimator {
        let mut e = Estimator::default();
        for r in records {
            e.add(r);
        }
        e
    }

    /// Learns one more attempt (records are added oldest first).
    pub fn add(&mut self, r: &Record) {
        self.plan_agent
            .entry((r.plan.clone(), r.agent.clone()))
            .or_default()
            .add(r);
        self.agent.entry(r.agent.clone()).or_default().add(r);
        self.all.add(r);
    }

    /// The forecast of a task of `kind`.
    pub fn estimate(&self, kind: &Kind<'_>) -> Estimate {
        let key = (kind.plan.to_string(), kind.agent.to_string());
        let levels = [
            (self.plan_agent.get(&key), Basis::PlanAgent),
            (self.agent.get(kind.agent), Basis::Agent),
            (Some(&self.all), Basis::All),
        ];
        let enough = levels
            .iter()
            .find_map(|(l, b)| l.filter(|l| l.done.len() >= MIN_SAMPLES).map(|l| (l, *b)));
        let cost = levels
            .iter()
            .find_map(|(l, _)| l.filter(|l| l.cost.len() >= MIN_SAMPLES))
            .or_else(|| {
                levels
                    .iter()
                    .find_map(|(l, _)| l.filter(|l| !l.cost.is_empty()))
            })
            .and_then(|l| fit(l.cost.iter().copied()));
        let fail_rate = levels
            .iter()
            .find_map(|(l, _)| l.filter(|l| l.outcomes.len() >= MIN_SAMPLES))
            .map_or(0.0, Level::fail_rate);
        let (fitted, empirical) = match enough {
            Some((l, b)) => Self::pooled(
                l,
                &levels[levels
                    .iter()
                    .position(|x| x.1 == b)
                    .map_or(levels.len(), |i| i + 1)..],
            )
            .unwrap_or_else(|| l.durations()),
            None => (None, None),
        };
        let (duration, samples, basis) = match (enough, kind.estimate_s) {
            (Some((l, b)), _) => (fitted, l.done.len().min(WINDOW), b),
            (None, Some(est)) => (
                Some(LogNormal {
                    mu: (est.max(1) as f64).ln(),
                    sigma: ESTIMATE_SIGMA,
                }),
                0,
                Basis::Estimate,
            ),
            (None, None) if !self.all.done.is_empty() => (
                fit(self.all.recent()),
                self.all.done.len().min(WINDOW),
                Basis::All,
            ),
            (None, None) => (None, 0, Basis::Default),
        };
        let duration = duration.unwrap_or(LogNormal {
            mu: DEFAULT_S.ln(),
            sigma: ESTIMATE_SIGMA,
        });
        let failed_duration = enough
            .and_then(|(l, _)| (l.failed.len() >= MIN_SAMPLES).then_some(l))
            .and_then(|l| fit(l.failed.iter().copied()))
            .unwrap_or(duration);
        Estimate {
            duration,
            failed_duration,
            cost,
            fail_rate,
            samples,
            basis,
            empirical,
        }
    }
}
