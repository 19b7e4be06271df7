//! The exporter's thread: takes the run's events from a bounded queue (full: the event is
//! dropped and counted), turns them into spans and metrics ([`super::model::Model`]) and sends
//! them to the collector now and then, each request with a timeout. A collector that is down or
//! slow costs the run nothing but the spans it does not get: after a failed export the next waits
//! [`BACKOFF`], and the end of the run waits for the last one at most [`FINISH_WITHIN`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;
use serde_json::Value;

use super::config::Config;
use super::ids::TraceId;
use super::model::{Model, PlanInfo, s};
use crate::manifest::OtlpProtocol;

/// Events the queue holds.
pub(crate) const QUEUE: usize = 4096;
/// One request's longest wait.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed export, the wait before the next.
pub(crate) const BACKOFF: Duration = Duration::from_secs(10);
/// How often spans and metrics go out during a run.
pub(crate) const INTERVAL: Duration = Duration::from_secs(5);
/// The longest the end of a run waits for the last export.
pub(crate) const FINISH_WITHIN: Duration = Duration::from_secs(3);

/// What the export came to, for a note at the end of the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) spans_sent: u64,
    pub(crate) events_dropped: u64,
    /// The first failure, as said.
    pub(crate) failure: Option<String>,
    /// The last export had not ended when the run did.
    pub(crate) unfinished: bool,
}

/// The running exporter.
pub(crate) struct Sink {
    tx: Option<SyncSender<Value>>,
    dropped: Arc<AtomicU64>,
    done: Receiver<Outcome>,
}

impl Sink {
    /// Starts the exporter's thread for the run of trace `trace`.
    pub(crate) fn start(config: Config, trace: TraceId, plans: BTreeMap<String, PlanInfo>) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Value>(QUEUE);
        let (done_tx, done) = mpsc::sync_channel(1);
        let dropped = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&dropped);
        let spawned = std::thread::Builder::new()
            .name("orch-otlp".into())
            .spawn(move || {
                let mut w = Worker::new(config, Model::new(trace, plans));
                let mut out = w.run(&rx);
                out.events_dropped = seen.load(Ordering::Relaxed);
                let _ = done_tx.send(out);
            });
        if spawned.is_err() {
            return Self {
                tx: None,
                dropped,
                done: mpsc::sync_channel(1).1,
            };
        }
        Self {
            tx: Some(tx),
            dropped,
            done,
        }
    }

    /// Queues one event (a line of `.events.jsonl`); never waits.
    pub(crate) fn event(&self, line: Value) {
        let Some(tx) = &self.tx else { return };
        if let Err(TrySendError::Full(_)) = tx.try_send(line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Ends the queue and waits for the last export, at most `within`.
    pub(crate) fn finish(mut self, within: Duration) -> Outcome {
        self.tx = None;
        match self.done.recv_timeout(within) {
            Ok(o) => o,
            Err(_) => Outcome {
                events_dropped: self.dropped.load(Ordering::Relaxed),
                unfinished: true,
                ..Outcome::default()
            },
        }
    }
}

struct Worker {
    config: Config,
    model: Model,
    http: ureq::Agent,
    grpc: Option<super::grpc::Client>,
    out: Outcome,
    /// No export before this (after a failure).
    quiet_until: Option<Instant>,
}

impl Worker {
    fn new(config: Config, model: Model) -> Self {
        let http = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .user_agent(concat!("orch/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self {
            config,
            model,
            http,
            grpc: None,
            out: Outcome::default(),
            quiet_until: None,
        }
    }

    fn run(&mut self, rx: &Receiver<Value>) -> Outcome {
        let mut last = Instant::now();
        loop {
            match rx.recv_timeout(INTERVAL) {
                Ok(v) => self.model.event(&v),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.model.finished {
                break;
            }
            if last.elapsed() >= INTERVAL || self.model.pending_spans() >= 512 {
                last = Instant::now();
                self.flush(false);
            }
        }
        self.flush(true);
        std::mem::take(&mut self.out)
    }

    fn flush(&mut self, last: bool) {
        if !last && self.quiet_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let spans = self.model.take_spans();
        let n = spans.len() as u64;
        let mut result = Ok(());
        if !spans.is_empty()
            && let Some(url) = self.config.traces.clone()
        {
            result = self.send_spans(&url, spans);
            if result.is_ok() {
                self.out.spans_sent += n;
            }
        }
        if result.is_ok()
            && !self.model.metrics.is_empty()
            && let Some(url) = self.config.metrics.clone()
        {
            let now = if self.model.metrics.end > 0 {
                self.model.metrics.end
            } else {
                now_nanos()
            };
            result = self.send_metrics(&url, now);
        }
        if let Err(e) = result {
            self.quiet_until = Some(Instant::now() + BACKOFF);
            if self.out.failure.is_none() {
                // Said on the console: never a collector's credential in an address.
                self.out.failure = Some(crate::agent_env::without_userinfo_in(&e));
            }
        }
    }

    fn resource() -> Resource {
        Resource {
            attributes: vec![
                s("service.name", "orch"),
                s("service.version", env!("CARGO_PKG_VERSION")),
            ],
            ..Default::default()
        }
    }

    fn scope() -> InstrumentationScope {
        InstrumentationScope {
            name: "orch".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        }
    }

    fn send_spans(&mut self, url: &str, spans: Vec<Span>) -> Result<(), String> {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Self::resource()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(Self::scope()),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        match self.config.protocol {
            OtlpProtocol::HttpProtobuf => self.post(url, req.encode_to_vec()),
            OtlpProtocol::Grpc => {
                let headers = self.config.headers.clone();
                self.grpc(url)?.traces(req, &headers)
            }
        }
    }

    fn send_metrics(&mut self, url: &str, now: u64) -> Result<(), String> {
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Self::resource()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(Self::scope()),
                    metrics: self.model.metrics.otlp(now),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        match self.config.protocol {
            OtlpProtocol::HttpProtobuf => self.post(url, req.encode_to_vec()),
            OtlpProtocol::Grpc => {
                let headers = self.config.headers.clone();
                self.grpc(url)?.metrics(req, &headers)
            }
        }
    }

    fn grpc(&mut self, url: &str) -> Result<&mut super::grpc::Client, String> {
        if self.grpc.is_none() {
            self.grpc = Some(super::grpc::Client::new(url)?);
        }
        self.grpc
            .as_mut()
            .ok_or_else(|| "no gRPC client".to_string())
    }

    fn post(&self, url: &str, body: Vec<u8>) -> Result<(), String> {
        let mut req = self
            .http
            .post(url)
            .header("Content-Type", "application/x-protobuf");
        for (k, v) in &self.config.headers {
            req = req.header(k, v);
        }
        match req.send(&body[..]) {
            Ok(resp) => {
                let code = resp.status().as_u16();
                if (200..300).contains(&code) {
                    Ok(())
                } else {
                    Err(format!("`{url}` answered HTTP {code}"))
                }
            }
            Err(ureq::Error::Timeout(_)) => Err(format!(
                "`{url}` did not answer within {}",
                crate::manifest::format_duration(TIMEOUT)
            )),
            Err(e) => Err(format!("`{url}`: {e}")),
        }
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
