//! Each attempt's times in `orch status --json` (`attempt_times` of a task): when it started,
//! when its agent was done and its check began, when it ended and how, and how long its check
//! took (`check_ms`), from orch's own event log (`<state_dir>/.events.jsonl`, after the rotated
//! `.events.jsonl.1`; the last [`MAX_BYTES`] of each). Only orch's own records: times parsed
//! and written again by orch, the outcome a word of its own, never a text of the log.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::supervisor::event_log::MAX_BYTES;

/// The attempts kept per task at most (the latest).
pub(super) const PER_TASK: usize = 20;

/// One attempt's times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Times {
    pub(super) attempt: u64,
    pub(super) started: DateTime<Utc>,
    /// Its agent was done and its check began (`task_checking`).
    pub(super) checking: Option<DateTime<Utc>>,
    /// It ended, and how: `finished`, `failed`, `stopped`, `asked` or `interrupted` (a next
    /// attempt of the task started with no end of this one logged).
    pub(super) ended: Option<(DateTime<Utc>, &'static str)>,
}

impl Times {
    fn json(&self) -> Value {
        let at = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let check_ms = match (self.checking, self.ended) {
            (Some(c), Some((e, _))) => u64::try_from((e - c).num_milliseconds()).ok(),
            _ => None,
        };
        json!({
            "attempt": self.attempt,
            "started_at": at(&self.started),
            "check_started_at": self.checking.as_ref().map(at),
            "ended_at": self.ended.as_ref().map(|(e, _)| at(e)),
            "ended": self.ended.map(|(_, how)| how),
            "check_ms": check_ms,
        })
    }
}

/// The attempts of every `(plan, task)` the log holds, oldest first, [`PER_TASK`] at most each.
pub(super) type AllTimes = HashMap<(String, String), Vec<Times>>;

/// The attempts' times from the event log of `state_dir` (none without one).
pub(super) fn read(state_dir: &Path) -> AllTimes {
    use crate::state_layout::{EVENTS, EVENTS_ROTATED};
    let mut text = String::new();
    for file in [EVENTS_ROTATED, EVENTS] {
        if let Ok((_, bytes)) = crate::untrusted::read::tail(&file.at(state_dir), 0, MAX_BYTES) {
            text.push_str(&String::from_utf8_lossy(&bytes));
            text.push('\n');
        }
    }
    of_lines(text.lines())
}

fn when(v: &Value) -> Option<DateTime<Utc>> {
    let at = v.get("at")?.as_str()?;
    Some(DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc))
}

/// The attempts' times from the event log's lines, in order.
pub(super) fn of_lines<'a>(lines: impl Iterator<Item = &'a str>) -> AllTimes {
    let mut done: AllTimes = HashMap::new();
    // The attempts started and not ended yet, per task (best of N: several at once).
    let mut open: AllTimes = HashMap::new();
    let close = |done: &mut AllTimes, key: (String, String), t: Times| {
        let list = done.entry(key).or_default();
        list.push(t);
        if list.len() > PER_TASK {
            list.remove(0);
        }
    };
    for line in lines {
        // Only the lines of tasks (a cheap look before the parse).
        if !line.contains("\"task_") {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
        let (plan, task) = (s("plan"), s("task"));
        let Some(t) = when(&v) else { continue };
        if plan.is_empty() || task.is_empty() {
            continue;
        }
        let key = (plan.to_string(), task.to_string());
        let attempt = v.get("attempt").and_then(Value::as_u64);
        let ending = match s("event") {
            "task_started" => {
                let list = open.entry(key.clone()).or_default();
                // The same attempt again (a run after a crash): the one before it never ended.
                let (again, rest): (Vec<Times>, Vec<Times>) = std::mem::take(list)
                    .into_iter()
                    .partition(|o| attempt.is_none_or(|a| a == o.attempt));
                *list = rest;
                list.push(Times {
                    attempt: attempt.unwrap_or(0),
                    started: t,
                    checking: None,
                    ended: None,
                });
                for mut o in again {
                    o.ended = Some((t.max(o.started), "interrupted"));
                    close(&mut done, key.clone(), o);
                }
                continue;
            }
            "task_checking" => {
                if let Some(o) = open.get_mut(&key).and_then(|l| {
                    l.iter_mut()
                        .rev()
                        .find(|o| attempt.is_none_or(|a| a == o.attempt))
                }) {
                    o.checking.get_or_insert(t);
                }
                continue;
            }
            "task_finished" => "finished",
            "task_failed" => "failed",
            "task_stopped" => "stopped",
            "task_needs_input" => "asked",
            _ => continue,
        };
        let Some(list) = open.get_mut(&key) else {
            continue;
        };
        // An attempt named: that one; else (`task_finished`) every open attempt of the task.
        let (ended, rest): (Vec<Times>, Vec<Times>) = std::mem::take(list)
            .into_iter()
            .partition(|o| attempt.is_none_or(|a| a == o.attempt));
        *list = rest;
        for mut o in ended {
            o.ended = Some((t.max(o.started), ending));
            close(&mut done, key.clone(), o);
        }
    }
    // Those still running, after the ended ones.
    for (key, list) in open {
        for o in list {
            close(&mut done, key.clone(), o);
        }
    }
    done
}

/// Adds `attempt_times` to each task of plan `plan`'s JSON view that the log has attempts of.
pub(super) fn add_json(times: &AllTimes, plan: &str, view: &mut Value) {
    let Some(tasks) = view.get_mut("tasks").and_then(Value::as_array_mut) else {
        return;
    };
    for task in tasks {
        let Some(id) = task.get("id").and_then(Value::as_str) else {
            continue;
        };
        let Some(list) = times.get(&(plan.to_string(), id.to_string())) else {
            continue;
        };
        let mut list = list.clone();
        list.sort_by_key(|t| t.started);
        task["attempt_times"] = list.iter().map(Times::json).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at: &str, event: &str, task: &str, attempt: Option<u64>) -> String {
        let mut v = json!({"at": at, "event": event, "plan": "a", "task": task});
        if let Some(a) = attempt {
            v["attempt"] = json!(a);
        }
        v.to_string()
    }

    #[test]
    fn each_attempt_with_its_check_and_end() {
        let lines = [
            line("2026-01-01T10:00:00Z", "task_started", "1.1", Some(1)),
            line("2026-01-01T10:00:05Z", "task_checking", "1.1", Some(1)),
            line("2026-01-01T10:00:07.500Z", "task_failed", "1.1", Some(1)),
            line("2026-01-01T10:00:08Z", "task_started", "1.1", Some(2)),
            line("2026-01-01T10:00:09Z", "task_checking", "1.1", Some(2)),
            line("2026-01-01T10:00:10Z", "task_finished", "1.1", None),
            line("2026-01-01T10:00:11Z", "task_started", "1.2", Some(1)),
            line("2026-01-01T10:00:12Z", "task_checking", "1.2", Some(1)),
            "{not json \"task_".to_string(),
            line("not a time", "task_started", "1.3", Some(1)),
        ];
        let times = of_lines(lines.iter().map(String::as_str));
        let mut view = json!({"tasks": [{"id": "1.1"}, {"id": "1.2"}, {"id": "1.3"}]});
        add_json(&times, "a", &mut view);
        let a = &view["tasks"][0]["attempt_times"];
        assert_eq!(a[0]["attempt"], 1);
        assert_eq!(a[0]["ended"], "failed");
        assert_eq!(a[0]["check_ms"], 2500);
        assert_eq!(a[1]["ended"], "finished");
        assert_eq!(a[1]["check_ms"], 1000);
        assert_eq!(a[1]["check_started_at"], "2026-01-01T10:00:09.000Z");
        // Its check runs: no end, no duration yet.
        let b = &view["tasks"][1]["attempt_times"][0];
        assert_eq!(b["ended"], Value::Null);
        assert_eq!(b["check_ms"], Value::Null);
        assert!(b["check_started_at"].is_string(), "{b}");
        assert!(view["tasks"][2].get("attempt_times").is_none(), "{view}");
    }

    #[test]
    fn an_attempt_started_again_was_interrupted_and_few_are_kept() {
        let mut lines = vec![
            line("2026-01-01T10:00:00Z", "task_started", "1.1", Some(1)),
            line("2026-01-01T10:01:00Z", "task_started", "1.1", Some(1)),
        ];
        for i in 0..30 {
            let at = format!("2026-01-01T11:{i:02}:00Z");
            lines.push(line(&at, "task_started", "1.2", Some(i + 1)));
            lines.push(line(&at, "task_failed", "1.2", Some(i + 1)));
        }
        let times = of_lines(lines.iter().map(String::as_str));
        let one = &times[&("a".to_string(), "1.1".to_string())];
        assert_eq!(one.len(), 2);
        assert_eq!(one[0].ended.map(|e| e.1), Some("interrupted"));
        assert_eq!(one[1].ended, None);
        let two = &times[&("a".to_string(), "1.2".to_string())];
        assert_eq!(two.len(), PER_TASK);
        assert_eq!(two[0].attempt, 11);
    }
}
