//! The forecasts as the commands show them: what `orch status` adds to its text and
//! JSON, what `orch up` forecasts at its start and tells against its end, and the words shared
//! by `orch top` and `orch simulate --history`.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::forecast::{
    self, Estimate, Estimator, Forecast, History, Range, TaskNow, cents, dollars, monte_carlo,
};
use crate::status::StatusDoc;
use crate::supervisor::{Event, RunSummary};
use crate::workspace::Workspace;

/// The state directory of the workspace's manifest.
pub(crate) fn state_dir(ws: &Workspace) -> Option<PathBuf> {
    let m = ws.manifest.as_ref()?;
    Some(m.root.join(&m.defaults.state_dir))
}

/// The history of `ws` when it has one with records.
pub(crate) fn history_of(ws: &Workspace) -> Option<History> {
    let h = History::load(&state_dir(ws)?);
    (!h.records.is_empty()).then_some(h)
}

/// A forecast of the workspace at one moment, with each task's estimate.
pub(crate) struct Snapshot {
    pub(crate) at: DateTime<Utc>,
    pub(crate) state: Vec<Vec<TaskNow>>,
    pub(crate) estimates: Vec<Vec<Estimate>>,
    pub(crate) forecast: Forecast,
    /// Per plan, its tasks waiting for a person's answer ([`forecast::asked_of`]).
    pub(crate) asked: Vec<Vec<String>>,
}

impl Snapshot {
    /// The forecast of the `selected` plans of `ws` as their status documents say, `None`
    /// when there is no history yet.
    pub(crate) fn of(
        ws: &Workspace,
        docs: &[StatusDoc],
        selected: &[usize],
        max_agents: Option<usize>,
    ) -> Option<Snapshot> {
        let graph = ws.graph.as_ref()?;
        let history = history_of(ws)?;
        let est = Estimator::new(&history.records);
        let at = Utc::now();
        let state = forecast::states_from_docs(ws, docs, selected, at);
        let asked = forecast::asked_of(ws, |p| docs.get(p), selected);
        let estimates = forecast::estimates(ws, &est);
        let forecast =
            forecast::of_workspace(ws, graph, &estimates, &state, max_agents, monte_carlo::RUNS);
        Some(Snapshot {
            at,
            state,
            estimates,
            forecast,
            asked,
        })
    }

    /// `{eta_p50, eta_p90, cost_p50, cost_p90}` of a range (times RFC 3339, costs in US dollars
    /// still to spend, `null` when no history named a cost).
    pub(crate) fn range_json(&self, r: &Range) -> Value {
        json!({
            "eta_p50": forecast::rfc3339(forecast::after(self.at, r.end_p50_s)),
            "eta_p90": forecast::rfc3339(forecast::after(self.at, r.end_p90_s)),
            "cost_p50": r.cost_p50.map(cents),
            "cost_p90": r.cost_p90.map(cents),
        })
    }

    /// A task's forecast for the JSON, when it is pending or running.
    pub(crate) fn task_json(&self, p: usize, t: usize) -> Option<Value> {
        let elapsed = match self.state.get(p)?.get(t)? {
            TaskNow::Pending { .. } => 0.0,
            TaskNow::Running { elapsed_s, .. } => *elapsed_s,
            _ => return None,
        };
        let e = self.estimates.get(p)?.get(t)?;
        let (d50, d90) = e.duration_range(elapsed);
        let cost = e.cost_range();
        Some(json!({
            "duration_p50_s": d50.round(),
            "duration_p90_s": d90.round(),
            "cost_p50": cost.map(|c| cents(c.0)),
            "cost_p90": cost.map(|c| cents(c.1)),
            "samples": e.samples,
            "basis": e.basis.name(),
            "slow": elapsed > 0.0 && e.is_slow(elapsed),
        }))
    }

    /// `2m10s–4m` for a task (its whole duration; a running one's given its elapsed time),
    /// ` slow` after it when it runs past the p90 of its kind.
    pub(crate) fn task_words(&self, p: usize, t: usize) -> Option<String> {
        let (words, slow) =
            forecast::task_words(self.state.get(p)?.get(t)?, self.estimates.get(p)?.get(t)?)?;
        Some(if slow { format!("{words} slow") } else { words })
    }
}

/// The forecast `orch up` made at its start.
pub(crate) struct StartForecast {
    at: DateTime<Utc>,
    run: Range,
}

/// The run's forecast at its start, when there is a history.
pub(crate) fn at_start(ws: &Workspace, max_agents: Option<usize>) -> Option<StartForecast> {
    let docs = crate::workspace::read_statuses(ws, None).ok()?;
    let snap = Snapshot::of(ws, &docs, &ws.selected, max_agents)?;
    // Nothing left to run: nothing to forecast.
    let left = snap
        .state
        .iter()
        .flatten()
        .any(|s| matches!(s, TaskNow::Pending { .. } | TaskNow::Running { .. }));
    if !left {
        return None;
    }
    Some(StartForecast {
        at: snap.at,
        run: snap.forecast.run,
    })
}

impl StartForecast {
    /// `run_forecast`: the forecast against how the run ended.
    pub(crate) fn against(&self, summary: &RunSummary) -> Event {
        let micro = |x: f64| (x * 1e6).round() as u64;
        Event::RunForecast {
            eta_p50: forecast::rfc3339(forecast::after(self.at, self.run.end_p50_s)),
            eta_p90: forecast::rfc3339(forecast::after(self.at, self.run.end_p90_s)),
            cost_p50_micro_usd: self.run.cost_p50.map(micro),
            cost_p90_micro_usd: self.run.cost_p90.map(micro),
            ended_at: forecast::rfc3339(Utc::now()),
            cost_micro_usd: summary.usage.cost_micro_usd,
        }
    }
}

/// `orch simulate --history`: the forecast of a run not started yet.
pub(crate) struct BeforeRun {
    slots: usize,
    records: usize,
    /// (tasks with a forecast from history, tasks in all) among those left.
    from_history: (usize, usize),
    forecast: Forecast,
}

/// The forecast of the `selected` plans of `ws` from the start (`[x]` tasks done) with `slots`
/// agents, from the history (an empty one: every task's `(est: …)` or the default).
pub(crate) fn before_run(ws: &Workspace, selected: &[usize], slots: usize) -> BeforeRun {
    let history = state_dir(ws).map(|d| History::load(&d)).unwrap_or_default();
    let est = Estimator::new(&history.records);
    let estimates = forecast::estimates(ws, &est);
    // No status file read: every task not `[x]` is pending, never tried.
    let state = forecast::states_of(ws, |_| None, selected, Utc::now());
    let left: Vec<(usize, usize)> = state
        .iter()
        .enumerate()
        .flat_map(|(p, ts)| {
            ts.iter()
                .enumerate()
                .filter(|(_, s)| matches!(s, TaskNow::Pending { .. }))
                .map(move |(t, _)| (p, t))
        })
        .collect();
    let from_history = left
        .iter()
        .filter(|&&(p, t)| estimates[p][t].samples > 0)
        .count();
    let forecast = match ws.graph.as_ref() {
        Some(g) => {
            forecast::of_workspace(ws, g, &estimates, &state, Some(slots), monte_carlo::RUNS)
        }
        None => Forecast {
            run: Range::default(),
            plans: vec![Range::default(); ws.plans.len()],
            blocked_share: 0.0,
            runs: 0,
        },
    };
    BeforeRun {
        slots,
        records: history.records.len(),
        from_history: (from_history, left.len()),
        forecast,
    }
}

impl BeforeRun {
    pub(crate) fn json(&self) -> Value {
        let r = &self.forecast.run;
        json!({
            "duration_p50_s": r.end_p50_s.round(),
            "duration_p90_s": r.end_p90_s.round(),
            "cost_p50": r.cost_p50.map(cents),
            "cost_p90": r.cost_p90.map(cents),
            "slots": self.slots,
            "history_records": self.records,
            "tasks_from_history": self.from_history.0,
            "tasks": self.from_history.1,
            "runs": self.forecast.runs,
            "blocked_share": (self.forecast.blocked_share * 1000.0).round() / 1000.0,
        })
    }

    pub(crate) fn text(&self) -> String {
        let r = &self.forecast.run;
        let cost = match (r.cost_p50, r.cost_p90) {
            (Some(a), Some(b)) => format!(", cost {}–{:.2}", dollars(a), b),
            _ => String::new(),
        };
        format!(
            "from the history ({} attempts; {} of {} tasks left have a history of their kind, the others their `(est: …)` or 10m), {} slots, {} runs: takes {}–{} (p50–p90){cost}\n",
            self.records,
            self.from_history.0,
            self.from_history.1,
            self.slots,
            self.forecast.runs,
            forecast::secs(r.end_p50_s),
            forecast::secs(r.end_p90_s),
        )
    }
}
