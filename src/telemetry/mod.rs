//! OpenTelemetry export of `orch up` (docs/src/telemetry.md): off unless the
//! `OTEL_EXPORTER_OTLP_*` variables or plans.toml's `[telemetry]` name a collector. On, the run's
//! own events (what goes to `<state_dir>/.events.jsonl`) become spans (run → plan → task →
//! attempt → check / commit, plan → merge / resolve) and metrics in a thread of their own
//! ([`Sink`]); the supervisor's decisions know nothing of it. Each attempt's span id is derived
//! from the run's trace id and the attempt's plan, task and number ([`ids`]), so the attempt's
//! `TRACEPARENT` is known when it is launched ([`attempt_env`]). The presets whose client
//! exports OTLP itself have it export to the same collector, under the attempt's span
//! ([`client_export`], [`clients`]).

mod clients;
mod config;
mod export;
mod grpc;
pub(crate) mod ids;
mod metrics;
mod model;

use std::collections::BTreeMap;
use std::sync::OnceLock;

pub(crate) use clients::ClientExport;
pub(crate) use config::Config;
pub(crate) use export::{FINISH_WITHIN, Sink};
pub(crate) use ids::TraceId;
pub(crate) use model::PlanInfo;

/// The trace of this process's run, set once when `orch up` starts exporting.
static RUN: OnceLock<TraceId> = OnceLock::new();
/// Where this process's run exports, set with [`RUN`].
static COLLECTOR: OnceLock<Config> = OnceLock::new();

/// `TRACEPARENT`: the W3C trace context of the attempt's span (set for an attempt only when
/// the run exports).
pub(crate) const TRACEPARENT: &str = "TRACEPARENT";
/// `OTEL_RESOURCE_ATTRIBUTES`: `orch.plan=…,orch.task=…,orch.attempt=…` (percent-encoded).
pub(crate) const RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";

/// Starts exporting this process's run: `config` from [`Config::of`]; `plans` what orch's
/// manifest says of each plan. Returns `None` when a run of this process exports already.
pub(crate) fn start(config: Config, plans: BTreeMap<String, PlanInfo>) -> Option<Sink> {
    let trace = TraceId::random();
    RUN.set(trace).ok()?;
    let _ = COLLECTOR.set(config.clone());
    Some(Sink::start(config, trace, plans))
}

/// What an attempt's environment gets when the run exports (nothing otherwise): its
/// `TRACEPARENT` and `OTEL_RESOURCE_ATTRIBUTES`.
pub(crate) fn attempt_env(plan: &str, task: &str, attempt: u32) -> Vec<(String, String)> {
    let Some(trace) = RUN.get() else {
        return Vec::new();
    };
    vec![
        (
            TRACEPARENT.to_string(),
            trace.traceparent(ids::Part::Attempt(plan, task, attempt)),
        ),
        (
            RESOURCE_ATTRIBUTES.to_string(),
            ids::resource_attributes(plan, task, attempt),
        ),
    ]
}

/// What an attempt of the client orch knows as `cli`, run by `argv`, gets to export its own
/// telemetry to the run's collector (its variables, its arguments, the collector's `host:port`
/// its network must reach); `user` reads `orch up`'s environment. `None` when the run does not
/// export, or the client does not ([`clients::export_of`]).
pub(crate) fn client_export(
    cli: crate::manifest::KnownCli,
    argv: &[String],
    user: impl Fn(&str) -> Option<String>,
) -> Option<ClientExport> {
    clients::export_of(COLLECTOR.get()?, cli, argv, user)
}

/// The model an agent's command names (`--model X`, `--model=X`, `-m X`), if any.
pub(crate) fn model_of(argv: &[String]) -> String {
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        if let Some(m) = a.strip_prefix("--model=") {
            return m.to_string();
        }
        if a == "--model" || a == "-m" {
            return it.next().cloned().unwrap_or_default();
        }
    }
    String::new()
}
