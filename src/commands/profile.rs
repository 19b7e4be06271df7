//! `orch history --profile [RUN]`: where each run's wall time went, from its events
//! (`<state_dir>/.events.jsonl`, and the rotated `.events.jsonl.1` before it). Every instant of
//! a run (`run_started` to `run_finished`) is counted once, in the first of these that holds
//! then: an agent at work (`agent`), a check running (`check`), an ssh attempt waiting for a
//! host's slot (`slot`), a task waiting for a person's answer or a plan paused (`person`), an
//! agent at a usage limit or a budget reached (`limit`), a failed attempt's retry backoff
//! (`backoff`); else orch's own time (`orch`: scheduling, worktrees, setups, commits, merges).
//! The parts add up to the wall time by construction.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// The parts of a time, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Split {
    pub(crate) wall_ms: u64,
    pub(crate) agent_ms: u64,
    pub(crate) check_ms: u64,
    pub(crate) orch_ms: u64,
    pub(crate) slot_ms: u64,
    pub(crate) limit_ms: u64,
    pub(crate) person_ms: u64,
    pub(crate) backoff_ms: u64,
    /// `orch_ms` as a percentage of `wall_ms`.
    pub(crate) overhead_pct: f64,
}

/// One kind of task (`task`, `verify`): its attempts and their summed agent and check time
/// (attempts run side by side: these are not parts of the wall time).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct KindTotals {
    pub(crate) attempts: u64,
    pub(crate) agent_ms: u64,
    pub(crate) check_ms: u64,
}

/// One run's profile.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct RunProfile {
    /// 1 for the oldest run in the file.
    pub(crate) run: usize,
    pub(crate) started: String,
    /// `None`: the run has no `run_finished` (it is running, or its supervisor died): profiled
    /// up to its last event.
    pub(crate) finished: Option<String>,
    #[serde(flatten)]
    pub(crate) split: Split,
    /// The same split of each plan's time, its start to its last event.
    pub(crate) plans: BTreeMap<String, Split>,
    pub(crate) kinds: BTreeMap<String, KindTotals>,
}

/// A running attempt: its start, its kind, when its host took it (ssh), when its check began.
type Running = (i64, String, Option<i64>, Option<i64>);

/// The categories, first wins.
const CATS: [&str; 6] = ["agent", "check", "slot", "person", "limit", "backoff"];

/// An interval of one category, in milliseconds since the epoch, of a plan (empty: the run).
#[derive(Clone, Debug)]
struct Interval {
    cat: usize,
    plan: String,
    from: i64,
    to: i64,
}

fn ms(v: &Value) -> Option<i64> {
    let at = v.get("at")?.as_str()?;
    Some(
        chrono::DateTime::parse_from_rfc3339(at)
            .ok()?
            .timestamp_millis(),
    )
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// The runs of `events` (in file order), each as its lines.
pub(crate) fn runs(events: &[Value]) -> Vec<Vec<&Value>> {
    let mut out: Vec<Vec<&Value>> = Vec::new();
    let mut open = false;
    for e in events {
        match str_of(e, "event") {
            "run_started" => {
                out.push(vec![e]);
                open = true;
            }
            _ if open => {
                if let Some(r) = out.last_mut() {
                    r.push(e);
                }
                if str_of(e, "event") == "run_finished" {
                    open = false;
                }
            }
            _ => {}
        }
    }
    out
}

/// The profile of one run (its events from `run_started`).
pub(crate) fn profile(n: usize, run: &[&Value]) -> Option<RunProfile> {
    let first = run.first()?;
    let start = ms(first)?;
    let finished = run
        .iter()
        .find(|e| str_of(e, "event") == "run_finished")
        .and_then(|e| ms(e));
    let end = finished
        .or_else(|| run.iter().filter_map(|e| ms(e)).max())
        .unwrap_or(start)
        .max(start);
    let mut iv: Vec<Interval> = Vec::new();
    let mut plan_span: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut attempts: BTreeMap<(String, String), Running> = BTreeMap::new();
    let mut asking: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut paused_plans: BTreeMap<String, i64> = BTreeMap::new();
    let mut paused_agents: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut kinds: BTreeMap<String, KindTotals> = BTreeMap::new();
    let push = |iv: &mut Vec<Interval>, cat: usize, plan: &str, from: i64, to: i64| {
        let (from, to) = (from.clamp(start, end), to.clamp(start, end));
        if to > from {
            iv.push(Interval {
                cat,
                plan: plan.to_string(),
                from,
                to,
            });
        }
    };
    let settle = |iv: &mut Vec<Interval>,
                  kinds: &mut BTreeMap<String, KindTotals>,
                  key: &(String, String),
                  a: (i64, String, Option<i64>, Option<i64>),
                  t: i64| {
        let (from, kind, host, check) = a;
        let work_from = host.unwrap_or(from);
        if host.is_some() {
            push(iv, 2, &key.0, from, work_from);
        }
        let agent_to = check.unwrap_or(t);
        push(iv, 0, &key.0, work_from, agent_to);
        if let Some(c) = check {
            push(iv, 1, &key.0, c, t);
        }
        let k = kinds.entry(kind).or_default();
        k.attempts += 1;
        k.agent_ms += u64::try_from(agent_to - work_from).unwrap_or(0);
        k.check_ms += check.map_or(0, |c| u64::try_from(t - c).unwrap_or(0));
    };
    for e in run {
        let Some(t) = ms(e) else { continue };
        let plan = str_of(e, "plan").to_string();
        let key = (plan.clone(), str_of(e, "task").to_string());
        if !plan.is_empty() {
            let s = plan_span.entry(plan.clone()).or_insert((t, t));
            s.1 = s.1.max(t);
        }
        match str_of(e, "event") {
            "task_started" => {
                if let Some(a) = attempts.remove(&key) {
                    settle(&mut iv, &mut kinds, &key, a, t);
                }
                if let Some(q) = asking.remove(&key) {
                    push(&mut iv, 3, &plan, q, t);
                }
                let kind = match str_of(e, "kind") {
                    "" => "task".to_string(),
                    k => k.to_string(),
                };
                attempts.insert(key, (t, kind, None, None));
            }
            "task_on_host" => {
                if let Some(a) = attempts.get_mut(&key) {
                    a.2.get_or_insert(t);
                }
            }
            "task_checking" => {
                if let Some(a) = attempts.get_mut(&key) {
                    a.3.get_or_insert(t);
                }
            }
            "task_finished" | "task_failed" | "task_stopped" => {
                if let Some(a) = attempts.remove(&key) {
                    settle(&mut iv, &mut kinds, &key, a, t);
                }
                if let Some(retry) = e.get("retry_in_ms").and_then(Value::as_u64) {
                    push(&mut iv, 5, &plan, t, t + i64::try_from(retry).unwrap_or(0));
                }
            }
            "task_needs_input" => {
                if let Some(a) = attempts.remove(&key) {
                    settle(&mut iv, &mut kinds, &key, a, t);
                }
                asking.insert(key, t);
            }
            "plan_paused" => {
                paused_plans.insert(plan, t);
            }
            "plan_resumed" => {
                if let Some(p) = paused_plans.remove(&plan) {
                    push(&mut iv, 3, &plan, p, t);
                }
            }
            "agent_paused" => {
                let resume = e.get("resume_in_ms").and_then(Value::as_u64).unwrap_or(0);
                let k = (str_of(e, "agent").to_string(), plan.clone());
                paused_agents.insert(k, t);
                push(&mut iv, 4, &plan, t, t + i64::try_from(resume).unwrap_or(0));
            }
            "agent_resumed" => {
                let k = (str_of(e, "agent").to_string(), plan.clone());
                paused_agents.remove(&k);
            }
            "budget_reached" => push(&mut iv, 4, &plan, t, end),
            _ => {}
        }
    }
    for (key, a) in std::mem::take(&mut attempts) {
        settle(&mut iv, &mut kinds, &key, a, end);
    }
    for ((plan, _), q) in asking {
        push(&mut iv, 3, &plan, q, end);
    }
    for (plan, p) in paused_plans {
        push(&mut iv, 3, &plan, p, end);
    }
    let whole = split(&iv, None, start, end);
    let plans = plan_span
        .iter()
        .map(|(p, (from, to))| (p.clone(), split(&iv, Some(p), *from, *to)))
        .collect();
    let at = |t: i64| {
        chrono::DateTime::from_timestamp_millis(t)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    };
    Some(RunProfile {
        run: n,
        started: at(start),
        finished: finished.map(at),
        split: whole,
        plans,
        kinds,
    })
}

/// `[from, to)` cut at every interval's ends; each piece counted in its first category.
fn split(iv: &[Interval], plan: Option<&str>, from: i64, to: i64) -> Split {
    let mut edges: Vec<(i64, usize, i32)> = Vec::new();
    for i in iv.iter().filter(|i| plan.is_none_or(|p| i.plan == p)) {
        let (a, b) = (i.from.max(from), i.to.min(to));
        if b > a {
            edges.push((a, i.cat, 1));
            edges.push((b, i.cat, -1));
        }
    }
    edges.sort_unstable();
    let mut open = [0i32; CATS.len()];
    let mut parts = [0u64; CATS.len() + 1];
    let mut t = from;
    for (at, cat, d) in edges {
        let cur = open.iter().position(|n| *n > 0).unwrap_or(CATS.len());
        parts[cur] += u64::try_from(at - t).unwrap_or(0);
        t = at;
        open[cat] += d;
    }
    parts[CATS.len()] += u64::try_from(to - t).unwrap_or(0);
    let wall = u64::try_from(to - from).unwrap_or(0);
    Split {
        wall_ms: wall,
        agent_ms: parts[0],
        check_ms: parts[1],
        slot_ms: parts[2],
        person_ms: parts[3],
        limit_ms: parts[4],
        backoff_ms: parts[5],
        orch_ms: parts[6],
        overhead_pct: if wall == 0 {
            0.0
        } else {
            (parts[6] as f64 * 1000.0 / wall as f64).round() / 10.0
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn e(at_s: f64, event: &str, extra: Value) -> Value {
        let t = chrono::DateTime::from_timestamp_millis((at_s * 1000.0) as i64).expect("t");
        let mut v =
            json!({"at": t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "event": event});
        if let (Some(m), Some(x)) = (v.as_object_mut(), extra.as_object()) {
            m.extend(x.clone());
        }
        v
    }

    #[test]
    fn every_instant_is_counted_once_in_its_first_category() {
        let ev = vec![
            e(0.0, "note", json!({})),
            e(100.0, "run_started", json!({})),
            e(101.0, "plan_started", json!({"plan": "a"})),
            e(
                102.0,
                "task_started",
                json!({"plan": "a", "task": "1.1", "kind": "task", "attempt": 1}),
            ),
            // A second agent at the same time: still agent time, once.
            e(
                103.0,
                "task_started",
                json!({"plan": "a", "task": "1.2", "kind": "task", "attempt": 1}),
            ),
            e(
                110.0,
                "task_checking",
                json!({"plan": "a", "task": "1.1", "attempt": 1}),
            ),
            e(
                112.0,
                "task_failed",
                json!({"plan": "a", "task": "1.1", "attempt": 1, "retry_in_ms": 5000}),
            ),
            e(112.0, "task_finished", json!({"plan": "a", "task": "1.2"})),
            e(
                117.5,
                "task_started",
                json!({"plan": "a", "task": "1.1", "kind": "verify", "attempt": 2}),
            ),
            e(
                120.0,
                "task_needs_input",
                json!({"plan": "a", "task": "1.1", "attempt": 2}),
            ),
            e(
                130.0,
                "task_started",
                json!({"plan": "a", "task": "1.1", "kind": "verify", "attempt": 2}),
            ),
            e(131.0, "task_finished", json!({"plan": "a", "task": "1.1"})),
            e(131.0, "plan_finished", json!({"plan": "a"})),
            e(134.0, "run_finished", json!({"summary": {}})),
            e(200.0, "run_started", json!({})),
        ];
        let runs = runs(&ev);
        assert_eq!(runs.len(), 2);
        let p = profile(1, &runs[0]).expect("profile");
        let s = &p.split;
        assert_eq!(s.wall_ms, 34_000);
        assert_eq!(s.agent_ms, 10_000 + 2_500 + 1_000);
        assert_eq!(s.check_ms, 0, "the other agent ran meanwhile");
        assert_eq!(s.backoff_ms, 5_000);
        assert_eq!(s.person_ms, 10_000);
        assert_eq!(s.orch_ms, 2_000 + 500 + 3_000);
        let sum = s.agent_ms
            + s.check_ms
            + s.orch_ms
            + s.slot_ms
            + s.limit_ms
            + s.person_ms
            + s.backoff_ms;
        assert_eq!(sum, s.wall_ms);
        assert_eq!(p.plans["a"].wall_ms, 30_000);
        assert_eq!(p.kinds["task"].attempts, 2);
        assert_eq!(p.kinds["task"].check_ms, 2_000);
        assert_eq!(p.kinds["verify"].attempts, 2);
        // The second, unfinished run: up to its last event.
        let q = profile(2, &runs[1]).expect("profile");
        assert_eq!((q.split.wall_ms, q.finished.clone()), (0, None));
    }
}
