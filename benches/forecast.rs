//! Forecasts from history, checked against a generator of heterogeneous agents:
//! how calibrated the ranges are (the backtest's coverage of p50 and p90), how close the run's
//! p50 ETA taken at its midpoint comes to the time really left (against `orch simulate`'s fixed
//! estimates on the same runs), and what a forecast costs at several sizes.
//!
//! Run: `cargo bench --bench forecast` (without `--bench`: a tiny run). Targets: task p90
//! coverage 80–97 %, p50 coverage 35–65 %; run ETA at the midpoint within 25 % of the time
//! left (mean error), better than the fixed estimates; a forecast of 20 plans × 100 tasks well
//! under a second.
//!
//! The generator (seeded, `SplitMix64`): four agents with their own speed (median 4–20 min per
//! task) and spread (σ of the log 0.35–0.8), a heavy tail (5 % of attempts take 2–10× longer),
//! failure rates of 4–15 % (a failed attempt takes 20–100 % of a full one, then is retried, at
//! most twice), a cost per minute per agent with noise; each task has a difficulty of its own
//! (log-normal, σ 0.3) that stays the same from run to run; a third of the tasks carry a
//! person's `(est: …)`, off by a log-normal factor of σ 0.7; and the agents drift between runs
//! (each agent's speed × exp(N(0, 0.12)) per run, a random walk). Each run: 6 plans of 3
//! phases × 5 tasks, plan i on agent i mod 4, 4 agents at once, 2 per plan; runs follow each
//! other in time, and every attempt becomes a history record. A second size, 20 plans × 3
//! phases × 10 tasks with 8 agents at once (40 runs), is run in full mode. A third workload has
//! plans that run one task at a time: two scripted agents of a few seconds (medians 0.4 s and
//! 1.6 s, σ 0.6, no tail, no failures, no drift), two plans of 10 tasks, 2 agents at once, new
//! plans each run (so each forecast rests on the agent's history, not the plan's); records are
//! written as orch writes them (`history::stamp`), so the backtest replays what orch keeps.
//!
//! Beside ours and the fixed estimates, an ORACLE forecast: the same Monte Carlo drawing each
//! task from its TRUE distribution in this run (drift included). Its error is what no
//! forecaster can go below: what is left is the luck of the attempts still to run. Each run is
//! forecast at its midpoint (half its actual length, a point chosen knowing the end) and when
//! half of its tasks are done (a point known as the run goes).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use orch::forecast::backtest::backtest;
use orch::forecast::estimate::{Basis, Estimate, Estimator, Kind, fit};
use orch::forecast::history::{Outcome, Record};
use orch::forecast::monte_carlo::{Forecast, Setup, TaskNow, forecast};
use orch::graph::{Frontier, Graph, NodeState};
use orch::plan::{Plan, parse};
use orch::simulate::{DurationModel, Inputs, Policy, SplitMix64, simulate};

mod support;
use support::{full_size, median};

/// Draws per task of the oracle's true distribution.
const ORACLE_DRAWS: usize = 1000;
const RETRIES: u32 = 2;

#[derive(Clone)]
struct Agent {
    /// Median seconds of an attempt (drifts between runs).
    median: f64,
    sigma: f64,
    fail: f64,
    /// US dollars per minute.
    rate: f64,
}

/// What a generator draws: its agents (plan i on agent i mod their number), each plan's agents
/// at once, the share of attempts in the heavy tail (2–10× longer), the shortest attempt, whether
/// tasks carry a person's `(est: …)`, and whether each run has plans of its own (new names: no
/// history of the same plan, as when a team starts new plans on the same agents).
#[derive(Clone)]
struct Workload {
    agents: Vec<Agent>,
    per_plan: usize,
    tail: f64,
    min_s: f64,
    estimates: bool,
    new_plans_each_run: bool,
    /// σ of a task's difficulty (log-normal, the same from run to run).
    difficulty: f64,
    /// σ of each agent's speed's random walk from run to run.
    drift: f64,
}

impl Workload {
    /// Four agents of 4–20 minutes, two agents per plan, a 5 % tail.
    fn standard() -> Workload {
        Workload {
            agents: (0..4)
                .map(|a| Agent {
                    median: [240.0, 480.0, 780.0, 1200.0][a],
                    sigma: [0.35, 0.5, 0.65, 0.8][a],
                    fail: [0.04, 0.08, 0.12, 0.15][a],
                    rate: [0.02, 0.05, 0.03, 0.08][a],
                })
                .collect(),
            per_plan: 2,
            tail: 0.05,
            min_s: 1.0,
            estimates: true,
            new_plans_each_run: false,
            difficulty: 0.3,
            drift: 0.12,
        }
    }

    /// Two scripted agents of a few seconds (medians 0.4 s and 1.6 s, σ 0.6, no failures), each
    /// plan one task at a time, new plans each run: the workload on which the run's ETA once
    /// came out at half the time left.
    fn one_at_a_time() -> Workload {
        Workload {
            agents: [0.4, 1.6]
                .iter()
                .map(|&median| Agent {
                    median,
                    sigma: 0.6,
                    fail: 0.0,
                    rate: 0.0,
                })
                .collect(),
            per_plan: 1,
            tail: 0.0,
            min_s: 0.05,
            estimates: false,
            new_plans_each_run: true,
            difficulty: 0.0,
            drift: 0.0,
        }
    }
}

fn normal(rng: &mut SplitMix64) -> f64 {
    let (u1, u2) = (rng.unit(), rng.unit());
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

struct World {
    rng: SplitMix64,
    load: Workload,
    agents: Vec<Agent>,
    plans: Vec<Plan>,
    names: Vec<String>,
    graph: Graph,
    /// Per plan and task: its difficulty factor.
    difficulty: Vec<Vec<f64>>,
    /// Agents at once in a run.
    slots: usize,
}

impl World {
    fn new(
        load: Workload,
        seed: u64,
        n_plans: usize,
        phases: usize,
        per_phase: usize,
        slots: usize,
    ) -> World {
        let mut rng = SplitMix64(seed);
        let agents = load.agents.clone();
        let mut difficulty = Vec::new();
        let mut plans = Vec::new();
        let mut names = Vec::new();
        for p in 0..n_plans {
            let mut text = format!("# Plan {p}\n");
            let mut diffs = Vec::new();
            for ph in 1..=phases {
                let _ = writeln!(text, "\n## Phase {ph}: Work");
                for k in 1..=per_phase {
                    let d = (load.difficulty * normal(&mut rng)).exp();
                    diffs.push(d);
                    let est = if load.estimates && rng.next_u64().is_multiple_of(3) {
                        let truth = load.agents[p % load.agents.len()].median * d;
                        let guess = truth * (0.7 * normal(&mut rng)).exp();
                        format!(" (est: {}m)", (guess / 60.0).round().max(1.0))
                    } else {
                        String::new()
                    };
                    let _ = writeln!(text, "- [ ] {ph}.{k} task {ph}.{k}{est}");
                }
            }
            let plan = parse(Path::new(&format!("p{p}.md")), &text);
            assert!(!plan.has_errors(), "{:?}", plan.diagnostics);
            plans.push(plan);
            names.push(format!("p{p}"));
            difficulty.push(diffs);
        }
        let graph = Graph::build(&plans, &names, &[]).expect("graph");
        World {
            rng,
            load,
            agents,
            plans,
            names,
            graph,
            difficulty,
            slots,
        }
    }

    fn agent_of(&self, p: usize) -> usize {
        p % self.agents.len()
    }

    /// Plan `p`'s name in run `run`.
    fn name(&self, p: usize, run: usize) -> String {
        if self.load.new_plans_each_run {
            format!("{}-run{run}", self.names[p])
        } else {
            self.names[p].clone()
        }
    }

    /// One attempt of task (p, t): (seconds, failed, cost).
    fn attempt(&mut self, p: usize, t: usize) -> (f64, bool, f64) {
        let a = &self.agents[self.agent_of(p)];
        let (median, sigma, fail, rate) = (a.median, a.sigma, a.fail, a.rate);
        let mut d = median * self.difficulty[p][t] * (sigma * normal(&mut self.rng)).exp();
        if self.rng.unit() < self.load.tail {
            d *= 2.0 + 8.0 * self.rng.unit();
        }
        let failed = self.rng.unit() < fail;
        if failed {
            d *= 0.2 + 0.8 * self.rng.unit();
        }
        let cost = d / 60.0 * rate * (0.3 * normal(&mut self.rng)).exp();
        (d.max(self.load.min_s), failed, cost)
    }

    fn drift(&mut self) {
        for a in 0..self.agents.len() {
            let f = (self.load.drift * normal(&mut self.rng)).exp();
            self.agents[a].median *= f;
        }
    }
}

/// One attempt as it happened in a run (seconds from the run's start).
#[derive(Clone, Debug)]
struct Attempt {
    p: usize,
    t: usize,
    start: f64,
    end: f64,
    failed: bool,
    cost: f64,
    attempt: u32,
}

/// Runs every task once to the end with the scheduler of `orch up` (the real durations drawn as
/// attempts start).
fn real_run(w: &mut World) -> Vec<Attempt> {
    let graph = w.graph.clone();
    let g = &graph;
    let plans = w.plans.clone();
    let prio = vec![0i64; plans.len()];
    let mut f = Frontier::new(g, &plans, &prio, |_, _| NodeState::Pending);
    let mut per_plan = vec![0usize; plans.len()];
    let mut tries = vec![0u32; g.nodes.len()];
    let mut running: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let mut out: Vec<Attempt> = Vec::new();
    let mut open: Vec<Option<usize>> = vec![None; g.nodes.len()];
    let mut now = 0u64;
    loop {
        while running.len() < w.slots {
            let mut best: Option<usize> = None;
            for (p, &n) in per_plan.iter().enumerate() {
                if n >= w.load.per_plan {
                    continue;
                }
                if let Some(h) = f.head(g, p)
                    && best.is_none_or(|b| f.rank(h) < f.rank(b))
                {
                    best = Some(h);
                }
            }
            let Some(node) = best else { break };
            let (p, t) = g.task_of(node).expect("task");
            f.set_state(g, node, NodeState::InProgress);
            per_plan[p] += 1;
            tries[node] += 1;
            let (d, failed, cost) = w.attempt(p, t);
            let end = now + (d * 1000.0) as u64;
            open[node] = Some(out.len());
            out.push(Attempt {
                p,
                t,
                start: now as f64 / 1000.0,
                end: end as f64 / 1000.0,
                failed,
                cost,
                attempt: tries[node],
            });
            running.push(Reverse((end, node)));
        }
        let Some(Reverse((end, node))) = running.pop() else {
            break;
        };
        now = end;
        let (p, _) = g.task_of(node).expect("task");
        per_plan[p] -= 1;
        let a = &out[open[node].expect("open")];
        let state = if !a.failed {
            NodeState::Done
        } else if tries[node] <= RETRIES {
            NodeState::Pending
        } else {
            NodeState::Failed
        };
        f.set_state(g, node, state);
    }
    out
}

fn record(w: &World, a: &Attempt, run: usize, base: f64) -> Record {
    let task = &w.plans[a.p].tasks[a.t];
    let at =
        chrono::DateTime::from_timestamp_millis(((base + a.end) * 1000.0) as i64).expect("time");
    Record {
        // As orch writes it.
        at: orch::forecast::history::stamp(at),
        run: format!("run{run}"),
        plan: w.name(a.p, run),
        task: task.id.clone(),
        phase: task.phase,
        description: task.description.clone(),
        agent: format!("a{}", w.agent_of(a.p)),
        model: format!("a{}", w.agent_of(a.p)),
        duration_ms: ((a.end - a.start) * 1000.0) as u64,
        tokens: 0,
        cost_micro_usd: Some((a.cost * 1e6) as u64),
        outcome: if a.failed {
            Outcome::Failed
        } else {
            Outcome::Done
        },
        attempt: a.attempt,
        estimate_s: task.estimate_s,
        plan_order: Some(a.p as u32),
        plan_priority: Some(0),
    }
}

/// Where each task stood at `mid` seconds into a run (attempts ended by then are known; the
/// ones running go on from their elapsed time).
fn state_at(w: &World, run: &[Attempt], mid: f64) -> Vec<Vec<TaskNow>> {
    let mut state: Vec<Vec<TaskNow>> = w
        .plans
        .iter()
        .map(|p| vec![TaskNow::Pending { attempts: 0 }; p.tasks.len()])
        .collect();
    for a in run {
        if a.end <= mid && !a.failed {
            state[a.p][a.t] = TaskNow::Done;
        } else if a.start <= mid && a.end > mid {
            state[a.p][a.t] = TaskNow::Running {
                elapsed_s: mid - a.start,
                attempt: a.attempt,
            };
        } else if a.end <= mid && a.failed && state[a.p][a.t] != TaskNow::Done {
            state[a.p][a.t] = if a.attempt > RETRIES {
                TaskNow::Failed
            } else {
                TaskNow::Pending {
                    attempts: a.attempt,
                }
            };
        }
    }
    state
}

/// The estimator's estimates of every task.
fn estimates_of(w: &World, est: &Estimator, run_no: usize) -> Vec<Vec<Estimate>> {
    (0..w.plans.len())
        .map(|p| {
            let agent = format!("a{}", w.agent_of(p));
            let name = w.name(p, run_no);
            w.plans[p]
                .tasks
                .iter()
                .map(|t| {
                    est.estimate(&Kind {
                        plan: &name,
                        agent: &agent,
                        estimate_s: t.estimate_s,
                    })
                })
                .collect()
        })
        .collect()
}

/// The ORACLE's estimates: each task's true distribution in this run (the agent's speed as it
/// has drifted to, the task's difficulty, the spread, the heavy tail, the failure rate), as
/// [`ORACLE_DRAWS`] draws the Monte Carlo samples from (a failed attempt's length as a
/// log-normal fitted to its true draws). No forecaster can know more before the attempts run.
fn oracle_of(w: &World, seed: u64) -> Vec<Vec<Estimate>> {
    let mut rng = SplitMix64(seed);
    (0..w.plans.len())
        .map(|p| {
            let a = &w.agents[w.agent_of(p)];
            (0..w.plans[p].tasks.len())
                .map(|t| {
                    let (mut ok, mut failed) = (Vec::new(), Vec::new());
                    for _ in 0..ORACLE_DRAWS {
                        let mut d =
                            a.median * w.difficulty[p][t] * (a.sigma * normal(&mut rng)).exp();
                        if rng.unit() < w.load.tail {
                            d *= 2.0 + 8.0 * rng.unit();
                        }
                        ok.push(d.max(w.load.min_s));
                        failed.push((d * (0.2 + 0.8 * rng.unit())).max(w.load.min_s));
                    }
                    ok.sort_by(f64::total_cmp);
                    let duration = fit(ok.iter().copied()).expect("draws");
                    Estimate {
                        duration,
                        failed_duration: fit(failed.into_iter()).expect("draws"),
                        cost: None,
                        fail_rate: a.fail,
                        samples: ORACLE_DRAWS,
                        basis: Basis::PlanAgent,
                        empirical: Some(Arc::new(ok)),
                    }
                })
                .collect()
        })
        .collect()
}

/// The Monte Carlo's forecast from `state` with `estimates`.
fn mc(w: &World, state: &[Vec<TaskNow>], estimates: &[Vec<Estimate>]) -> Forecast {
    let n_plans = w.plans.len();
    let prio = vec![0i64; n_plans];
    let limit = vec![w.load.per_plan; n_plans];
    let retries = vec![RETRIES; n_plans];
    forecast(
        &Setup {
            graph: &w.graph,
            plans: &w.plans,
            priorities: &prio,
            plan_limit: &limit,
            max_agents: w.slots,
            retries: &retries,
            state,
            estimate: estimates,
        },
        200,
        7,
    )
}

/// `orch simulate`'s makespan from `state`: the plans with the tasks finished by then checked,
/// the rest at their fixed estimates (`(est: …)` or 10 min).
fn fixed_at(w: &World, state: &[Vec<TaskNow>]) -> f64 {
    let n_plans = w.plans.len();
    let prio = vec![0i64; n_plans];
    let limit = vec![w.load.per_plan; n_plans];
    let model = DurationModel {
        default_s: 600,
        seed: None,
    };
    let selected: Vec<usize> = (0..n_plans).collect();
    let mut plans = w.plans.clone();
    for (p, plan) in plans.iter_mut().enumerate() {
        for (t, task) in plan.tasks.iter_mut().enumerate() {
            task.done = state[p][t] == TaskNow::Done;
        }
    }
    let inputs = Inputs::new(&w.graph, &plans, model, &limit, &selected);
    simulate(
        &inputs.workload(&w.graph, &plans, &prio),
        Policy::Orch,
        w.slots,
    )
    .map_or(f64::NAN, |o| o.makespan as f64)
}
/// Seconds per forecast of `plans` × `tasks` (phases of 10) before the run starts (every task
/// left: the most a forecast has to simulate), `runs` runs.
fn time_forecast(plans: usize, tasks: usize, runs: usize, reps: usize) -> f64 {
    let mut w = World::new(Workload::standard(), 99, plans, tasks / 10, 10, 4);
    // A history: two runs' attempts.
    let mut history = Vec::new();
    for r in 0..2 {
        let run = real_run(&mut w);
        let base = r as f64 * 1e6;
        history.extend(run.iter().map(|a| record(&w, a, r, base)));
    }
    let est = Estimator::new(&history);
    let mut times = Vec::new();
    for _ in 0..reps {
        let t0 = Instant::now();
        let _ = forecast_only(&w, &est, &[], 0.0, runs);
        times.push(t0.elapsed().as_secs_f64());
    }
    median(&mut times)
}

/// The Monte Carlo forecast alone (estimates and state included, as `orch status` pays them).
fn forecast_only(w: &World, est: &Estimator, run: &[Attempt], mid: f64, runs: usize) -> f64 {
    let state = state_at(w, run, mid);
    let estimates = estimates_of(w, est, 0);
    let n_plans = w.plans.len();
    let prio = vec![0i64; n_plans];
    let limit = vec![w.load.per_plan; n_plans];
    let retries = vec![RETRIES; n_plans];
    forecast(
        &Setup {
            graph: &w.graph,
            plans: &w.plans,
            priorities: &prio,
            plan_limit: &limit,
            max_agents: w.slots,
            retries: &retries,
            state: &state,
            estimate: &estimates,
        },
        runs,
        7,
    )
    .run
    .end_p50_s
}

/// The errors of one kind of forecast of the time left, over the runs.
#[derive(Default)]
struct Errors {
    /// |p50 − actual| ÷ actual.
    abs: Vec<f64>,
    /// (p50 − actual) ÷ actual.
    signed: Vec<f64>,
    under_p50: usize,
    under_p90: usize,
}

impl Errors {
    fn add(&mut self, p50: f64, p90: f64, actual: f64) {
        self.abs.push((p50 - actual).abs() / actual);
        self.signed.push((p50 - actual) / actual);
        self.under_p50 += usize::from(actual <= p50);
        self.under_p90 += usize::from(actual <= p90);
    }

    fn mean(&self) -> f64 {
        self.abs.iter().sum::<f64>() / self.abs.len().max(1) as f64
    }

    fn text(&self) -> String {
        let within = self.abs.iter().filter(|&&e| e <= 0.25).count();
        format!(
            "{:.1} % (median {:.1} %, {within} of {} within 25 %, signed {:+.1} %, under p50/p90 {}/{})",
            self.mean() * 100.0,
            median(&mut self.abs.clone()) * 100.0,
            self.abs.len(),
            self.signed.iter().sum::<f64>() / self.signed.len().max(1) as f64 * 100.0,
            self.under_p50,
            self.under_p90,
        )
    }
}

/// The three forecasts of the time left at one point of each run.
#[derive(Default)]
struct Point {
    ours: Errors,
    oracle: Errors,
    fixed: Errors,
    /// Each unfinished plan's time left, forecast inside the run's true structure.
    plans_ours: Errors,
    plans_oracle: Errors,
}

impl Point {
    fn add(&mut self, w: &World, est: &Estimator, run: &[Attempt], at: f64, run_no: usize) {
        let seed = 1000 + run_no as u64;
        let end = run.iter().map(|a| a.end).fold(0.0, f64::max);
        let actual = end - at;
        let state = state_at(w, run, at);
        let ours = mc(w, &state, &estimates_of(w, est, run_no));
        let (p50, p90) = (ours.run.end_p50_s, ours.run.end_p90_s);
        self.ours.add(p50, p90, actual);
        let oracle = mc(w, &state, &oracle_of(w, seed));
        let o50 = oracle.run.end_p50_s;
        self.oracle.add(o50, oracle.run.end_p90_s, actual);
        for p in 0..w.plans.len() {
            let plan_end = run
                .iter()
                .filter(|a| a.p == p)
                .map(|a| a.end)
                .fold(0.0, f64::max);
            if plan_end > at {
                let (o, r) = (&ours.plans[p], &oracle.plans[p]);
                self.plans_ours.add(o.end_p50_s, o.end_p90_s, plan_end - at);
                self.plans_oracle
                    .add(r.end_p50_s, r.end_p90_s, plan_end - at);
            }
        }
        let fixed = fixed_at(w, &state);
        self.fixed.add(fixed, fixed, actual);
        // `BENCH_DEBUG=1`: each run's figures.
        if std::env::var_os("BENCH_DEBUG").is_some() {
            println!(
                "  at {at:.0}: ours {p50:.0} oracle {o50:.0} fixed {fixed:.0} actual {actual:.0}"
            );
        }
    }

    fn print(&self, what: &str) {
        println!("run ETA {what}, mean error of the p50:");
        println!("  ours:   {}", self.ours.text());
        println!("  ORACLE: {}", self.oracle.text());
        println!("  orch simulate's fixed estimates: {}", self.fixed.text());
        println!(
            "  each unfinished plan's time left, in the run's true structure: ours {}; ORACLE {}",
            self.plans_ours.text(),
            self.plans_oracle.text()
        );
    }
}

/// One size of the generator: its history, and the forecasts of each run's time left at its
/// midpoint (half of its actual length: a point chosen knowing the end) and when half of its
/// tasks are done (a point known as the run goes).
struct Size {
    history: Vec<Record>,
    mid: Point,
    half: Point,
    runs: usize,
    warmup: usize,
    tasks: usize,
}

fn evaluate(w: &mut World, runs: usize, warmup: usize) -> Size {
    let tasks: usize = w.plans.iter().map(|p| p.tasks.len()).sum();
    let mut history: Vec<Record> = Vec::new();
    let mut base = 0.0;
    let (mut mid, mut half) = (Point::default(), Point::default());
    for r in 0..runs {
        let run = real_run(w);
        let end = run.iter().map(|a| a.end).fold(0.0, f64::max);
        if r >= warmup {
            let mut done: Vec<f64> = run.iter().filter(|a| !a.failed).map(|a| a.end).collect();
            done.sort_by(f64::total_cmp);
            let halfway = done[(tasks / 2).min(done.len() - 1)];
            for (at, point) in [(end / 2.0, &mut mid), (halfway, &mut half)] {
                // What was known then: the history, and this run's attempts ended.
                let mut known = Estimator::new(&history);
                let mut ended: Vec<&Attempt> = run.iter().filter(|a| a.end <= at).collect();
                ended.sort_by(|a, b| a.end.total_cmp(&b.end));
                for a in ended {
                    known.add(&record(w, a, r, base));
                }
                point.add(w, &known, &run, at, r);
            }
        }
        history.extend(run.iter().map(|a| record(w, a, r, base)));
        base += end + 3600.0;
        w.drift();
    }
    Size {
        history,
        mid,
        half,
        runs,
        warmup,
        tasks,
    }
}

fn report(label: &str, w: &World, s: &Size) {
    let bt = backtest(&s.history, &|_| Some(RETRIES));
    println!(
        "== {label}: {} runs of {} plans, {} tasks, {} agents at once, {} attempts ({} failed)",
        s.runs,
        w.plans.len(),
        s.tasks,
        w.slots,
        s.history.len(),
        s.history
            .iter()
            .filter(|r| r.outcome == Outcome::Failed)
            .count()
    );
    println!(
        "backtest, tasks: {} forecasts: {:.1} % under p50 (target 35–65 %), {:.1} % under p90 (target 80–97 %)",
        bt.tasks.n,
        bt.tasks.p50_share() * 100.0,
        bt.tasks.p90_share() * 100.0
    );
    println!(
        "backtest, plans halfway (half their tasks done): {} forecasts: {:.1} % under p50, {:.1} % under p90, p50 off by {:.1} % on average",
        bt.plans.n,
        bt.plans.p50_share() * 100.0,
        bt.plans.p90_share() * 100.0,
        bt.plan_p50_error * 100.0
    );
    let n = s.runs - s.warmup;
    s.mid.print(&format!(
        "at the run's midpoint ({n} runs after {} of warm-up; target: within 25 %)",
        s.warmup
    ));
    s.half.print("when half of the tasks are done");
    let oracle = s.mid.oracle.mean();
    if oracle > 0.25 {
        println!(
            "  the ORACLE (the true distributions) misses 25 % at the midpoint ({:.1} %): at {} tasks the target is out of reach of any forecaster",
            oracle * 100.0,
            s.tasks
        );
    }
}

fn main() {
    let full = full_size();
    if !full {
        println!("tiny run (`cargo bench --bench forecast` runs the full one)");
    }
    let (runs, warmup) = if full { (100, 4) } else { (6, 2) };
    let mut w = World::new(Workload::standard(), 2026, 6, 3, 5, 4);
    let small = evaluate(&mut w, runs, warmup);
    report("6 plans × 3 phases × 5 tasks", &w, &small);
    if full {
        let mut w = World::new(Workload::standard(), 2027, 20, 3, 10, 8);
        let large = evaluate(&mut w, 40, 4);
        report("20 plans × 3 phases × 10 tasks", &w, &large);
    }
    // Plans that run one task at a time, on agents of a few seconds, new plans each run.
    let (runs, warmup) = if full { (100, 3) } else { (6, 3) };
    let mut w = World::new(Workload::one_at_a_time(), 2028, 2, 1, 10, 2);
    let sequential = evaluate(&mut w, runs, warmup);
    report(
        "2 plans × 10 tasks, one task at a time, agents of 0.4 s and 1.6 s",
        &w,
        &sequential,
    );
    let sizes: &[(usize, usize, usize)] = if full {
        &[
            (5, 20, 200),
            (20, 20, 200),
            (20, 100, 200),
            (20, 100, 100),
            (20, 100, 50),
        ]
    } else {
        &[(2, 10, 20)]
    };
    for &(plans, tasks, n) in sizes {
        let s = time_forecast(plans, tasks, n, if full { 5 } else { 1 });
        println!(
            "forecast of {plans} plans × {tasks} tasks ({} tasks), {n} runs: {:.1} ms",
            plans * tasks,
            s * 1000.0
        );
    }
    if !full {
        assert!(!small.history.is_empty() && !small.mid.ours.abs.is_empty());
    }
}
