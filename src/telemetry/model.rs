//! orch's events (the lines of `<state_dir>/.events.jsonl`, as JSON) into OpenTelemetry spans
//! and metrics, with the times the events carry. Pure: the exporter's thread feeds it one event
//! at a time and takes the spans that ended.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, Status, span::SpanKind, status::StatusCode};
use serde_json::Value;

use super::ids::{Part, TraceId};
use super::metrics::Metrics;

/// What the sink knows of a plan from the manifest (orch's own record, not the agent's word).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PlanInfo {
    pub(crate) agent: String,
    /// The `--model` of its agent's command, if it names one.
    pub(crate) model: String,
    /// `local`, `container`, `ssh` or `slurm`.
    pub(crate) executor: String,
}

#[derive(Clone, Debug)]
struct Open {
    start: u64,
    attrs: Vec<KeyValue>,
}

/// The open attempt of a task.
#[derive(Clone, Debug)]
struct Attempt {
    n: u32,
    kind: String,
    start: u64,
    host: Option<String>,
    checking: Option<u64>,
}

/// The spans and metrics of one run, built from its events.
pub(crate) struct Model {
    trace: TraceId,
    plans: BTreeMap<String, PlanInfo>,
    run: Option<u64>,
    open_plans: BTreeMap<String, Open>,
    /// When a plan's last task settled or it started: the earliest a next task was ready.
    plan_ready: BTreeMap<String, u64>,
    tasks: BTreeMap<(String, String), u64>,
    /// The open attempts, by plan, task and number (best of N runs several at once).
    attempts: BTreeMap<(String, String, u32), Attempt>,
    /// A failed attempt's retry is due at (for the dispatch latency).
    retry_due: BTreeMap<(String, String), u64>,
    merges: BTreeMap<String, u64>,
    resolves: BTreeMap<String, (u64, u32)>,
    ended: Vec<Span>,
    pub(crate) metrics: Metrics,
    pub(crate) finished: bool,
}

fn kv(key: &str, v: impl Into<any_value::Value>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(v.into()),
        }),
        ..Default::default()
    }
}

/// A string attribute.
pub(crate) fn s(key: &str, v: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.to_string()))
}

fn i(key: &str, v: u64) -> KeyValue {
    kv(
        key,
        any_value::Value::IntValue(i64::try_from(v).unwrap_or(i64::MAX)),
    )
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn u32_of(v: &Value, k: &str) -> u32 {
    v.get(k)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}

/// The event's `at`, in nanoseconds since the epoch.
pub(crate) fn at_nanos(v: &Value) -> Option<u64> {
    let at = v.get("at")?.as_str()?;
    let t = chrono::DateTime::parse_from_rfc3339(at).ok()?;
    u64::try_from(t.timestamp_nanos_opt()?).ok()
}

impl Model {
    pub(crate) fn new(trace: TraceId, plans: BTreeMap<String, PlanInfo>) -> Self {
        Self {
            trace,
            plans,
            run: None,
            open_plans: BTreeMap::new(),
            plan_ready: BTreeMap::new(),
            tasks: BTreeMap::new(),
            attempts: BTreeMap::new(),
            retry_due: BTreeMap::new(),
            merges: BTreeMap::new(),
            resolves: BTreeMap::new(),
            ended: Vec::new(),
            metrics: Metrics::default(),
            finished: false,
        }
    }

    /// The spans that ended since the last call.
    pub(crate) fn take_spans(&mut self) -> Vec<Span> {
        std::mem::take(&mut self.ended)
    }

    pub(crate) fn pending_spans(&self) -> usize {
        self.ended.len()
    }

    fn info(&self, plan: &str) -> PlanInfo {
        self.plans.get(plan).cloned().unwrap_or_default()
    }

    #[allow(clippy::too_many_arguments)]
    fn span(
        &mut self,
        name: &str,
        part: Part<'_>,
        parent: Option<Part<'_>>,
        start: u64,
        end: u64,
        attrs: Vec<KeyValue>,
        error: Option<&str>,
    ) {
        let status = error.map(|m| Status {
            message: crate::untrusted::text::escaped(m).to_string(),
            code: StatusCode::Error as i32,
        });
        self.ended.push(Span {
            trace_id: self.trace.0.to_vec(),
            span_id: self.trace.span(part).to_vec(),
            parent_span_id: parent
                .map(|p| self.trace.span(p).to_vec())
                .unwrap_or_default(),
            flags: 0x100 | 0x01,
            name: name.to_string(),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: end.max(start),
            attributes: attrs,
            status,
            ..Default::default()
        });
    }

    fn plan_attrs(&self, plan: &str) -> Vec<KeyValue> {
        let info = self.info(plan);
        vec![
            s("orch.plan", plan),
            s("orch.agent", &info.agent),
            s("orch.executor", &info.executor),
        ]
    }

    /// Takes in one event (a line of `.events.jsonl`).
    pub(crate) fn event(&mut self, v: &Value) {
        let Some(t) = at_nanos(v) else { return };
        let plan = str_of(v, "plan").to_string();
        let task = str_of(v, "task").to_string();
        match str_of(v, "event") {
            "run_started" => {
                self.run = Some(t);
                self.metrics.start = t;
            }
            "plan_started" => {
                self.open_plans.entry(plan.clone()).or_insert(Open {
                    start: t,
                    attrs: vec![s("orch.branch", str_of(v, "branch"))],
                });
                self.plan_ready.insert(plan, t);
            }
            "setup_finished" => {
                self.plan_ready.insert(plan, t);
            }
            "task_started" => self.attempt_started(v, plan, task, t),
            "task_on_host" => {
                let n = u32_of(v, "attempt");
                if let Some(a) = self.attempts.get_mut(&(plan, task, n)) {
                    a.host = Some(str_of(v, "host").to_string());
                }
            }
            "task_checking" => {
                let n = u32_of(v, "attempt");
                if let Some(a) = self.attempts.get_mut(&(plan, task, n)) {
                    a.checking = Some(t);
                }
            }
            "task_finished" => {
                let commit = str_of(v, "commit").to_string();
                let usage = v.get("usage").cloned();
                // The attempts still open (one, but for best of N, whose attempts settle
                // with `attempt_finished`); the commit is the last one's.
                let open = self.open_attempts(&plan, &task);
                for (k, n) in open.iter().enumerate() {
                    let last = k + 1 == open.len();
                    self.attempt_ended(
                        &plan,
                        &task,
                        *n,
                        t,
                        "done",
                        None,
                        usage.as_ref().filter(|_| last),
                        Some(commit.as_str()).filter(|_| last),
                    );
                }
                self.task_ended(&plan, &task, t, "done", None);
            }
            "attempt_finished" => {
                let usage = v.get("usage").cloned();
                let outcome = str_of(v, "outcome").to_string();
                let cause = str_of(v, "cause").to_string();
                self.attempt_ended(
                    &plan,
                    &task,
                    u32_of(v, "attempt"),
                    t,
                    &outcome,
                    (outcome == "failed").then_some(&cause[..]),
                    usage.as_ref(),
                    None,
                );
            }
            "task_failed" => {
                let error = str_of(v, "error").to_string();
                let usage = v.get("usage").cloned();
                self.attempt_ended(
                    &plan,
                    &task,
                    u32_of(v, "attempt"),
                    t,
                    "failed",
                    Some(&error),
                    usage.as_ref(),
                    None,
                );
                match v.get("retry_in_ms").and_then(Value::as_u64) {
                    Some(ms) => {
                        self.metrics
                            .add("orch.retries", &[s("orch.plan", &plan)], 1);
                        self.retry_due
                            .insert((plan, task), t.saturating_add(ms.saturating_mul(1_000_000)));
                    }
                    None => self.task_ended(&plan, &task, t, "failed", Some(&error)),
                }
            }
            "plan_finished" | "plan_blocked" => {
                let outcome = if str_of(v, "event") == "plan_finished" {
                    "completed"
                } else {
                    "blocked"
                };
                let reason = str_of(v, "reason").to_string();
                self.plan_ended(
                    &plan,
                    t,
                    outcome,
                    (outcome == "blocked").then_some(&reason[..]),
                );
                self.merges.insert(plan, t);
            }
            "plan_merged" | "plan_merge_failed" => {
                let start = self.merges.remove(&plan).unwrap_or(t);
                let mut attrs = self.plan_attrs(&plan);
                attrs.push(s("orch.target", str_of(v, "target")));
                let (outcome, err) = if str_of(v, "event") == "plan_merged" {
                    attrs.push(s("orch.commit", str_of(v, "commit")));
                    ("merged", None)
                } else {
                    (str_of(v, "result"), Some(str_of(v, "reason").to_string()))
                };
                attrs.push(s("orch.outcome", outcome));
                self.span(
                    "merge",
                    Part::Step("merge", &plan, "", 0),
                    Some(Part::Plan(&plan)),
                    start,
                    t,
                    attrs,
                    err.as_deref(),
                );
            }
            "resolve_started" => {
                self.resolves.insert(plan, (t, u32_of(v, "attempt")));
            }
            "resolved" | "resolve_failed" => {
                if let Some((start, n)) = self.resolves.remove(&plan) {
                    let mut attrs = self.plan_attrs(&plan);
                    attrs.push(i("orch.attempt", u64::from(n)));
                    let ok = str_of(v, "event") == "resolved";
                    attrs.push(s("orch.outcome", if ok { "resolved" } else { "failed" }));
                    let cause = str_of(v, "cause").to_string();
                    self.span(
                        "resolve",
                        Part::Step("resolve", &plan, "", n),
                        Some(Part::Plan(&plan)),
                        start,
                        t,
                        attrs,
                        (!ok).then_some(&cause[..]),
                    );
                }
            }
            "run_finished" => self.run_ended(v, t),
            _ => {}
        }
    }

    fn attempt_started(&mut self, v: &Value, plan: String, task: String, t: u64) {
        let n = u32_of(v, "attempt");
        let key = (plan.clone(), task.clone());
        // An attempt that started again without settling was lost (its host, a usage limit).
        if self.attempts.contains_key(&(plan.clone(), task.clone(), n)) {
            self.metrics
                .add("orch.attempts.lost", &[s("orch.plan", &plan)], 1);
            self.attempt_ended(&plan, &task, n, t, "lost", None, None, None);
        }
        self.tasks.entry(key.clone()).or_insert(t);
        let ready = self.plan_ready.get(&plan).copied().unwrap_or(t);
        let ready = match self.retry_due.remove(&key) {
            Some(due) => {
                let late = t.saturating_sub(due);
                self.metrics.histogram(
                    "orch.dispatch.latency",
                    &[s("orch.plan", &plan)],
                    late as f64 / 1e9,
                );
                due.min(t)
            }
            None => ready.min(t),
        };
        self.metrics.histogram(
            "orch.queue.wait",
            &[s("orch.plan", &plan)],
            t.saturating_sub(ready) as f64 / 1e9,
        );
        self.attempts.insert(
            (plan, task, n),
            Attempt {
                n,
                kind: str_of(v, "kind").to_string(),
                start: t,
                host: None,
                checking: None,
            },
        );
    }

    /// The numbers of the task's open attempts, in order.
    fn open_attempts(&self, plan: &str, task: &str) -> Vec<u32> {
        self.attempts
            .keys()
            .filter(|(p, k, _)| p == plan && k == task)
            .map(|(_, _, n)| *n)
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn attempt_ended(
        &mut self,
        plan: &str,
        task: &str,
        n: u32,
        t: u64,
        outcome: &str,
        error: Option<&str>,
        usage: Option<&Value>,
        commit: Option<&str>,
    ) {
        let Some(a) = self
            .attempts
            .remove(&(plan.to_string(), task.to_string(), n))
        else {
            return;
        };
        let info = self.info(plan);
        let mut attrs = self.plan_attrs(plan);
        attrs.push(s("orch.task", task));
        attrs.push(i("orch.attempt", u64::from(a.n)));
        attrs.push(s("orch.outcome", outcome));
        attrs.push(s("orch.kind", &a.kind));
        if let Some(h) = &a.host {
            attrs.push(s("orch.host", h));
        }
        if let Some(u) = usage {
            let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
            attrs.push(i("orch.tokens.input", n("input_tokens")));
            attrs.push(i("orch.tokens.output", n("output_tokens")));
            attrs.push(i("orch.tokens", n("tokens")));
            let by = [s("orch.agent", &info.agent), s("orch.model", &info.model)];
            for (k, ty) in [
                ("input_tokens", "input"),
                ("output_tokens", "output"),
                ("cache_read_tokens", "cache_read"),
                ("cache_write_tokens", "cache_write"),
            ] {
                let mut a = by.to_vec();
                a.push(s("orch.token.type", ty));
                self.metrics.add("orch.tokens", &a, n(k));
            }
            if let Some(c) = u.get("cost_usd").and_then(Value::as_f64) {
                attrs.push(kv("orch.cost_usd", any_value::Value::DoubleValue(c)));
                self.metrics.add_f("orch.cost", &by, c);
            }
        }
        self.metrics.histogram(
            "orch.attempt.duration",
            &[
                s("orch.plan", plan),
                s("orch.agent", &info.agent),
                s("orch.outcome", outcome),
            ],
            t.saturating_sub(a.start) as f64 / 1e9,
        );
        let me = Part::Attempt(plan, task, a.n);
        if let Some(c) = a.checking {
            let ca = vec![
                s("orch.plan", plan),
                s("orch.task", task),
                i("orch.attempt", u64::from(a.n)),
                s(
                    "orch.outcome",
                    if outcome == "done" { "passed" } else { outcome },
                ),
            ];
            self.span(
                "check",
                Part::Step("check", plan, task, a.n),
                Some(me),
                c,
                t,
                ca,
                error,
            );
        }
        if let Some(commit) = commit.filter(|c| !c.is_empty()) {
            self.span(
                "commit",
                Part::Step("commit", plan, task, a.n),
                Some(me),
                t,
                t,
                vec![
                    s("orch.plan", plan),
                    s("orch.task", task),
                    s("orch.commit", commit),
                ],
                None,
            );
        }
        let name = if a.kind == "verify" {
            "verify"
        } else {
            "attempt"
        };
        self.span(
            name,
            me,
            Some(Part::Task(plan, task)),
            a.start,
            t,
            attrs,
            error,
        );
    }

    fn task_ended(&mut self, plan: &str, task: &str, t: u64, outcome: &str, error: Option<&str>) {
        let Some(start) = self.tasks.remove(&(plan.to_string(), task.to_string())) else {
            return;
        };
        self.plan_ready.insert(plan.to_string(), t);
        self.metrics.add(
            "orch.tasks",
            &[s("orch.plan", plan), s("orch.outcome", outcome)],
            1,
        );
        let mut attrs = self.plan_attrs(plan);
        attrs.push(s("orch.task", task));
        attrs.push(s("orch.outcome", outcome));
        let name = if task.is_empty() {
            "plan agent"
        } else {
            "task"
        };
        self.span(
            name,
            Part::Task(plan, task),
            Some(Part::Plan(plan)),
            start,
            t,
            attrs,
            error,
        );
    }

    fn plan_ended(&mut self, plan: &str, t: u64, outcome: &str, error: Option<&str>) {
        let Some(open) = self.open_plans.remove(plan) else {
            return;
        };
        let mut attrs = self.plan_attrs(plan);
        attrs.extend(open.attrs);
        attrs.push(s("orch.outcome", outcome));
        self.span(
            "plan",
            Part::Plan(plan),
            Some(Part::Run),
            open.start,
            t,
            attrs,
            error,
        );
    }

    fn run_ended(&mut self, v: &Value, t: u64) {
        // What is still open ends with the run, unfinished.
        let open: Vec<(String, String, u32)> = self.attempts.keys().cloned().collect();
        for (p, k, n) in open {
            self.attempt_ended(&p, &k, n, t, "unfinished", None, None, None);
        }
        let open: Vec<(String, String)> = self.tasks.keys().cloned().collect();
        for (p, k) in open {
            self.task_ended(&p, &k, t, "unfinished", None);
        }
        let open: Vec<String> = self.open_plans.keys().cloned().collect();
        for p in open {
            self.plan_ended(&p, t, "unfinished", None);
        }
        let summary = v.get("summary");
        let mut attrs = vec![s("service.name", "orch")];
        if let Some(sm) = summary {
            let interrupted = sm.get("interrupted").and_then(Value::as_bool) == Some(true);
            attrs.push(s(
                "orch.outcome",
                if interrupted {
                    "interrupted"
                } else {
                    "finished"
                },
            ));
            if let Some(u) = sm.get("usage") {
                attrs.push(i(
                    "orch.tokens",
                    u.get("tokens").and_then(Value::as_u64).unwrap_or(0),
                ));
                if let Some(c) = u.get("cost_usd").and_then(Value::as_f64) {
                    attrs.push(kv("orch.cost_usd", any_value::Value::DoubleValue(c)));
                }
            }
        }
        let start = self.run.unwrap_or(t);
        self.span("run", Part::Run, None, start, t, attrs, None);
        self.metrics.end = t;
        self.finished = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(ms: u64) -> String {
        chrono::DateTime::from_timestamp_millis(i64::try_from(ms).expect("ms"))
            .expect("t")
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    fn model(events: &[Value]) -> Model {
        let mut m = Model::new(TraceId([3; 16]), BTreeMap::new());
        for e in events {
            m.event(e);
        }
        m
    }

    fn outcome(sp: &Span) -> String {
        sp.attributes
            .iter()
            .find(|kv| kv.key == "orch.outcome")
            .and_then(|kv| kv.value.as_ref()?.value.clone())
            .map(|v| match v {
                any_value::Value::StringValue(s) => s,
                other => format!("{other:?}"),
            })
            .unwrap_or_default()
    }

    #[test]
    fn best_of_n_attempts_side_by_side_are_each_a_span() {
        let mut m = model(&[
            json!({"at": at(1000), "event": "run_started"}),
            json!({"at": at(1001), "event": "plan_started", "plan": "p"}),
            json!({"at": at(1002), "event": "task_started", "plan": "p", "task": "1.1", "attempt": 1, "kind": "task"}),
            json!({"at": at(1003), "event": "task_started", "plan": "p", "task": "1.1", "attempt": 2, "kind": "task"}),
            json!({"at": at(1010), "event": "attempt_finished", "plan": "p", "task": "1.1", "attempt": 2, "outcome": "picked", "cause": "check passed"}),
            json!({"at": at(1011), "event": "attempt_finished", "plan": "p", "task": "1.1", "attempt": 1, "outcome": "stopped", "cause": "another was picked"}),
            json!({"at": at(1012), "event": "task_finished", "plan": "p", "task": "1.1", "commit": "abc"}),
            json!({"at": at(1020), "event": "run_finished", "summary": {}}),
        ]);
        let spans = m.take_spans();
        let attempts: Vec<&Span> = spans.iter().filter(|s| s.name == "attempt").collect();
        assert_eq!(attempts.len(), 2, "{spans:#?}");
        let mut got: Vec<String> = attempts.iter().map(|s| outcome(s)).collect();
        got.sort();
        assert_eq!(got, ["picked", "stopped"]);
        let t = TraceId([3; 16]);
        let task = spans.iter().find(|s| s.name == "task").expect("task");
        assert_eq!(task.span_id, t.span(Part::Task("p", "1.1")).to_vec());
        assert!(attempts.iter().all(|a| a.parent_span_id == task.span_id));
        assert_eq!(
            attempts[0].span_id.len() + attempts[1].span_id.len(),
            16,
            "8-byte span ids"
        );
    }

    #[test]
    fn an_attempt_started_again_without_settling_is_lost() {
        let mut m = model(&[
            json!({"at": at(1000), "event": "run_started"}),
            json!({"at": at(1002), "event": "task_started", "plan": "p", "task": "1.1", "attempt": 1, "kind": "task"}),
            json!({"at": at(1005), "event": "task_started", "plan": "p", "task": "1.1", "attempt": 1, "kind": "task"}),
            json!({"at": at(1009), "event": "task_finished", "plan": "p", "task": "1.1", "commit": "abc"}),
            json!({"at": at(1010), "event": "run_finished", "summary": {}}),
        ]);
        let spans = m.take_spans();
        let mut got: Vec<String> = spans
            .iter()
            .filter(|s| s.name == "attempt")
            .map(outcome)
            .collect();
        got.sort();
        assert_eq!(got, ["done", "lost"]);
        let metrics = m.metrics.otlp(0);
        assert!(metrics.iter().any(|x| x.name == "orch.attempts.lost"));
        // Events without a time are skipped, never a panic.
        m.event(&json!({"event": "task_started", "plan": "p"}));
        m.event(&json!({"at": "yesterday", "event": "task_started"}));
    }
}
