//! Forecasts from history: what each settled attempt took ([`history`]), a range per
//! task from the most similar history ([`estimate`]), the ETA and cost of plans and runs by the
//! scheduler run many times on a virtual clock ([`monte_carlo`]), and the check of the ranges
//! against what happened ([`backtest`]). `docs/src/forecasts.md` is the user's view.

pub mod backtest;
pub mod estimate;
pub mod history;
pub mod monte_carlo;
pub(crate) mod run;

use chrono::{DateTime, Utc};

pub(crate) use estimate::{Estimate, Estimator, Kind};
pub(crate) use history::{History, Outcome};
pub(crate) use monte_carlo::{Forecast, Range, Setup, TaskNow, forecast};

use crate::graph::Graph;
use crate::status::{StatusDoc, TaskStatus};
use crate::workspace::Workspace;

/// The seed of the forecasts `orch status`, `orch top` and `orch simulate --history` show: the
/// same state and history give the same forecast.
pub(crate) const SEED: u64 = 0x0038_f0ec_a575;

/// The agent of each plan of `ws` (the manifest's; empty without one).
pub(crate) fn agents(ws: &Workspace) -> Vec<String> {
    ws.plans
        .iter()
        .map(|lp| {
            ws.manifest
                .as_ref()
                .and_then(|m| m.plan(&lp.name))
                .map(|e| e.agent.clone())
                .unwrap_or_default()
        })
        .collect()
}

/// Each task's estimate, per plan of `ws`.
pub(crate) fn estimates(ws: &Workspace, est: &Estimator) -> Vec<Vec<Estimate>> {
    let agents = agents(ws);
    ws.plans
        .iter()
        .zip(&agents)
        .map(|(lp, agent)| {
            lp.plan
                .tasks
                .iter()
                .map(|t| {
                    est.estimate(&Kind {
                        plan: &lp.name,
                        agent,
                        estimate_s: t.estimate_s,
                    })
                })
                .collect()
        })
        .collect()
}

/// Where each task of `ws` stands at `now`, from the status documents (`docs[p]`, one per plan
/// of `ws`); the tasks of plans not in `selected`, and `[x]` tasks, are done.
pub(crate) fn states_from_docs(
    ws: &Workspace,
    docs: &[StatusDoc],
    selected: &[usize],
    now: DateTime<Utc>,
) -> Vec<Vec<TaskNow>> {
    states_of(ws, |p| docs.get(p), selected, now)
}

/// The tasks of each plan of `ws` (`selected` ones) that wait for a person's answer to their
/// agent's question (`needs_input`): no forecast can hold their plan's end, which comes only
/// after the answer.
pub(crate) fn asked_of<'d>(
    ws: &Workspace,
    doc: impl Fn(usize) -> Option<&'d StatusDoc>,
    selected: &[usize],
) -> Vec<Vec<String>> {
    ws.plans
        .iter()
        .enumerate()
        .map(|(p, lp)| {
            if !selected.contains(&p) {
                return Vec::new();
            }
            let Some(d) = doc(p) else {
                return Vec::new();
            };
            lp.plan
                .tasks
                .iter()
                .filter(|t| {
                    !t.done
                        && d.entry(&t.id)
                            .is_some_and(|e| e.status == TaskStatus::NeedsInput)
                })
                .map(|t| t.id.clone())
                .collect()
        })
        .collect()
}

/// `waits for an answer to 1.2 (orch answer p 1.2 TEXT)`: what a plan's forecast says while its
/// tasks `asked` wait for one.
pub(crate) fn asked_words(plan: &str, asked: &[String]) -> String {
    match asked {
        [one] => format!("waits for an answer to {one} (`orch answer {plan} {one} TEXT`)"),
        more => format!(
            "waits for answers to {} (`orch answer {plan} ID TEXT`)",
            more.join(", ")
        ),
    }
}

/// [`states_from_docs`] with the documents from `doc(plan)` (`None`: not read).
pub(crate) fn states_of<'d>(
    ws: &Workspace,
    doc: impl Fn(usize) -> Option<&'d StatusDoc>,
    selected: &[usize],
    now: DateTime<Utc>,
) -> Vec<Vec<TaskNow>> {
    ws.plans
        .iter()
        .enumerate()
        .map(|(p, lp)| {
            lp.plan
                .tasks
                .iter()
                .map(|t| {
                    if t.done || !selected.contains(&p) {
                        return TaskNow::Done;
                    }
                    let Some(e) = doc(p).and_then(|d| d.entry(&t.id)) else {
                        return TaskNow::Pending { attempts: 0 };
                    };
                    match e.status {
                        TaskStatus::Completed | TaskStatus::Skipped => TaskNow::Done,
                        TaskStatus::Failed => TaskNow::Failed,
                        TaskStatus::Pending | TaskStatus::NeedsInput => {
                            TaskNow::Pending { attempts: 0 }
                        }
                        TaskStatus::InProgress => TaskNow::Running {
                            elapsed_s: e
                                .started_at
                                .as_deref()
                                .and_then(crate::status::parse_timestamp)
                                .map_or(0.0, |s| {
                                    (now - s).num_milliseconds().max(0) as f64 / 1000.0
                                }),
                            attempt: 1,
                        },
                    }
                })
                .collect()
        })
        .collect()
}

/// The forecast of `ws` from `state`: every plan's tasks, `max_agents` (the manifest's unless
/// given), each plan's limit and retries as `orch up` runs them.
pub(crate) fn of_workspace(
    ws: &Workspace,
    graph: &Graph,
    estimate: &[Vec<Estimate>],
    state: &[Vec<TaskNow>],
    max_agents: Option<usize>,
    runs: usize,
) -> Forecast {
    let plans = ws.plan_list();
    let priorities = ws.priorities();
    let (plan_limit, retries): (Vec<usize>, Vec<u32>) = ws
        .plans
        .iter()
        .map(|lp| {
            let entry = ws
                .manifest
                .as_ref()
                .and_then(|m| Some((m, m.plan(&lp.name)?)));
            entry.map_or((usize::MAX, 0), |(m, e)| (m.agents_per_plan(e), e.retries))
        })
        .unzip();
    let max_agents = max_agents
        .or(ws.manifest.as_ref().map(|m| m.defaults.max_agents))
        .unwrap_or(4)
        .max(1);
    forecast(
        &Setup {
            graph,
            plans: &plans,
            priorities: &priorities,
            plan_limit: &plan_limit,
            max_agents,
            retries: &retries,
            state,
            estimate,
        },
        runs,
        SEED,
    )
}

/// `ends 15:10–15:40, $3.20–5.10 more` for a range forecast at `at` (local times of day, as
/// `orch up` prints its lines, when it ends the same day, else dates too; `ends about 15:10`
/// when both ends fall in the same minute).
pub(crate) fn range_words(at: DateTime<Utc>, r: &Range) -> String {
    let mut s = ends_words(at, r.end_p50_s, r.end_p90_s);
    if let (Some(c50), Some(c90)) = (r.cost_p50, r.cost_p90) {
        s.push_str(&format!(", {}–{c90:.2} more", dollars(c50)));
    }
    s
}

/// `ends 15:10–15:40` for a run that ends between `p50_s` and `p90_s` seconds after `at`, or
/// `ends about 15:10` when both are the same minute.
pub(crate) fn ends_words(at: DateTime<Utc>, p50_s: f64, p90_s: f64) -> String {
    let (a, b) = (when(after(at, p50_s), at), when(after(at, p90_s), at));
    if a == b {
        format!("ends about {a}")
    } else {
        format!("ends {a}–{b}")
    }
}

/// `15:40` (local time, as `orch up`'s lines) the same day as `now`, `11-26 15:40` on another.
pub(crate) fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let (t, now) = (
        t.with_timezone(&chrono::Local),
        now.with_timezone(&chrono::Local),
    );
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%m-%d %H:%M").to_string()
    }
}

/// A task's range in words (`2m10s–4m`) and whether it is slow, when it is pending or running.
pub(crate) fn task_words(state: &TaskNow, e: &Estimate) -> Option<(String, bool)> {
    let elapsed = match state {
        TaskNow::Pending { .. } => 0.0,
        TaskNow::Running { elapsed_s, .. } => *elapsed_s,
        _ => return None,
    };
    let (d50, d90) = e.duration_range(elapsed);
    Some((
        format!("{}–{}", secs(d50), secs(d90)),
        elapsed > 0.0 && e.is_slow(elapsed),
    ))
}

/// `t + s` seconds.
pub(crate) fn after(t: DateTime<Utc>, s: f64) -> DateTime<Utc> {
    t + chrono::Duration::milliseconds((s * 1000.0).round() as i64)
}

/// RFC 3339 to the second, UTC.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Dollars as `$3.20`.
pub(crate) fn dollars(x: f64) -> String {
    format!("${x:.2}")
}

/// Rounds to the cent for JSON.
pub(crate) fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A duration of `s` seconds as `orch` writes it (`1h30m`, `45s`).
pub(crate) fn secs(s: f64) -> String {
    crate::manifest::format_duration(std::time::Duration::from_secs(s.max(0.0).round() as u64))
}

#[cfg(test)]
mod tests;
