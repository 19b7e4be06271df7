//! A real OTLP receiver on loopback for the telemetry tests: over HTTP (a TCP server that
//! decodes each POST's body as `ExportTraceServiceRequest` / `ExportMetricsServiceRequest` with
//! the `opentelemetry-proto` types; `/v1/logs` too, as `ExportLogsServiceRequest`) or gRPC (tonic's server of the collector's two services);
//! and the two receivers that must not slow a run: one that accepts and never answers, a port
//! nobody listens on.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// What a receiver got: every span, and each export of metrics (cumulative: the last is the
/// run's total).
#[derive(Default)]
pub struct Got {
    pub spans: Vec<Span>,
    pub metrics: Vec<Vec<Metric>>,
    /// Requests to another path, or whose body did not decode.
    pub bad: Vec<String>,
    /// Each request's headers (lowercase names), for the headers test.
    pub headers: Vec<Vec<(String, String)>>,
    /// The resource of each batch received over HTTP: its signal (`traces`, `metrics`,
    /// `logs`) and attributes, for the agents' own exports.
    pub resources: Vec<(String, Vec<KeyValue>)>,
    /// The log records received over HTTP.
    pub logs: Vec<LogRecord>,
    /// The spans received over HTTP with their batch's resource attributes, for the agents'
    /// own exports (whose spans orch's resource does not name).
    pub resource_spans: Vec<(Vec<KeyValue>, Span)>,
}

/// A receiver; stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    got: Arc<Mutex<Got>>,
    stop: Arc<AtomicBool>,
    _runtime: Option<tokio::runtime::Runtime>,
}

impl Receiver {
    /// The collector's base address, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The spans received.
    pub fn spans(&self) -> Vec<Span> {
        self.got.lock().expect("got").spans.clone()
    }

    /// The last export of metrics.
    pub fn metrics(&self) -> Vec<Metric> {
        self.got
            .lock()
            .expect("got")
            .metrics
            .last()
            .cloned()
            .unwrap_or_default()
    }

    /// The resources of the batches received over HTTP, with their signal.
    pub fn resources(&self) -> Vec<(String, Vec<KeyValue>)> {
        self.got.lock().expect("got").resources.clone()
    }

    /// The log records received over HTTP.
    pub fn logs(&self) -> Vec<LogRecord> {
        self.got.lock().expect("got").logs.clone()
    }

    /// The spans received over HTTP, each with its resource's attributes.
    pub fn resource_spans(&self) -> Vec<(Vec<KeyValue>, Span)> {
        self.got.lock().expect("got").resource_spans.clone()
    }

    pub fn bad(&self) -> Vec<String> {
        self.got.lock().expect("got").bad.clone()
    }

    pub fn headers(&self) -> Vec<Vec<(String, String)>> {
        self.got.lock().expect("got").headers.clone()
    }

    /// An OTLP/HTTP receiver (http/protobuf).
    pub fn http() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let got = Arc::new(Mutex::new(Got::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (got.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let g = g.clone();
                        std::thread::spawn(move || serve_http(conn, &g));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Receiver {
            addr,
            got,
            stop,
            _runtime: None,
        }
    }

    /// An OTLP/gRPC receiver: tonic's server of the trace and metrics services.
    pub fn grpc() -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let got = Arc::new(Mutex::new(Got::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let g = got.clone();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(Collector(g.clone())))
                .add_service(MetricsServiceServer::new(Collector(g)))
                .serve_with_incoming(incoming)
                .await;
        });
        Receiver {
            addr,
            got,
            stop,
            _runtime: Some(runtime),
        }
    }

    /// A receiver that accepts connections, reads them, and never answers.
    pub fn silent() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(300);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((conn, _)) => held.push(conn),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Receiver {
            addr,
            got: Arc::default(),
            stop,
            _runtime: None,
        }
    }

    /// The address of a loopback port nobody listens on (bound, then closed).
    pub fn closed_port() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        drop(l);
        addr
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Collector(Arc<Mutex<Got>>);

fn headers_of(m: &tonic::metadata::MetadataMap) -> Vec<(String, String)> {
    m.clone()
        .into_headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect()
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let h = headers_of(request.metadata());
        let mut g = self.0.lock().expect("got");
        g.headers.push(h);
        for rs in request.into_inner().resource_spans {
            for ss in rs.scope_spans {
                g.spans.extend(ss.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let mut g = self.0.lock().expect("got");
        let mut all = Vec::new();
        for rm in request.into_inner().resource_metrics {
            for sm in rm.scope_metrics {
                all.extend(sm.metrics);
            }
        }
        g.metrics.push(all);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// Serves the requests of one HTTP/1.1 connection (keep-alive) until it closes.
fn serve_http(conn: TcpStream, got: &Mutex<Got>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut w = conn.try_clone().expect("clone");
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut len = 0usize;
        let mut chunked = false;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                if k == "content-length" {
                    len = v.parse().unwrap_or(0);
                }
                // Node's OTLP exporters (Gemini CLI's, Qwen Code's) send their body in chunks.
                if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                }
                headers.push((k, v));
            }
        }
        let body = if chunked {
            match read_chunked(&mut r) {
                Some(b) => b,
                None => return,
            }
        } else {
            let mut body = vec![0; len];
            if r.read_exact(&mut body).is_err() {
                return;
            }
            body
        };
        {
            let mut g = got.lock().expect("got");
            let json = headers
                .iter()
                .any(|(k, v)| k == "content-type" && v.starts_with("application/json"));
            g.headers.push(headers);
            if json {
                // OTLP/HTTP in JSON (Gemini CLI's and Qwen Code's `-otlp-http` exporters).
                record_json(&mut g, &path, &body);
            } else {
                match path.as_str() {
                    "/v1/traces" => match ExportTraceServiceRequest::decode(&body[..]) {
                        Ok(req) => {
                            for rs in req.resource_spans {
                                let attrs = rs.resource.map(|r| r.attributes).unwrap_or_default();
                                g.resources.push(("traces".into(), attrs.clone()));
                                for ss in rs.scope_spans {
                                    for s in &ss.spans {
                                        g.resource_spans.push((attrs.clone(), s.clone()));
                                    }
                                    g.spans.extend(ss.spans);
                                }
                            }
                        }
                        Err(e) => g.bad.push(format!("{path}: {e}")),
                    },
                    "/v1/metrics" => match ExportMetricsServiceRequest::decode(&body[..]) {
                        Ok(req) => {
                            let mut all = Vec::new();
                            for rm in req.resource_metrics {
                                let attrs = rm.resource.map(|r| r.attributes).unwrap_or_default();
                                g.resources.push(("metrics".into(), attrs));
                                for sm in rm.scope_metrics {
                                    all.extend(sm.metrics);
                                }
                            }
                            g.metrics.push(all);
                        }
                        Err(e) => g.bad.push(format!("{path}: {e}")),
                    },
                    "/v1/logs" => match ExportLogsServiceRequest::decode(&body[..]) {
                        Ok(req) => {
                            for rl in req.resource_logs {
                                let attrs = rl.resource.map(|r| r.attributes).unwrap_or_default();
                                g.resources.push(("logs".into(), attrs));
                                for sl in rl.scope_logs {
                                    g.logs.extend(sl.log_records);
                                }
                            }
                        }
                        Err(e) => g.bad.push(format!("{path}: {e}")),
                    },
                    other => g.bad.push(format!("a POST to {other}")),
                }
            }
        }
        let _ = w.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n",
        );
    }
}

/// Records an OTLP/JSON request (the protobuf types' JSON mapping: ids in hex, attribute
/// values as `{"stringValue": …}` and the like): its resources, spans (name, ids, attributes),
/// log records and metrics (names), as the protobuf path does.
fn record_json(g: &mut Got, path: &str, body: &[u8]) {
    use serde_json::Value;
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            g.bad.push(format!("{path} (JSON): {e}"));
            return;
        }
    };
    let list = |v: &Value, k: &str| v[k].as_array().cloned().unwrap_or_default();
    let kvs = |v: &Value| -> Vec<KeyValue> {
        list(v, "attributes")
            .iter()
            .map(|a| KeyValue {
                key: a["key"].as_str().unwrap_or("").to_string(),
                value: json_value(&a["value"]),
                ..Default::default()
            })
            .collect()
    };
    let id = |s: &Value| -> Vec<u8> {
        let s = s.as_str().unwrap_or("");
        (0..s.len() / 2)
            .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
            .collect()
    };
    let (signal, groups, scopes, items) = match path {
        "/v1/traces" => ("traces", "resourceSpans", "scopeSpans", "spans"),
        "/v1/metrics" => ("metrics", "resourceMetrics", "scopeMetrics", "metrics"),
        "/v1/logs" => ("logs", "resourceLogs", "scopeLogs", "logRecords"),
        other => {
            g.bad.push(format!("a POST to {other} (JSON)"));
            return;
        }
    };
    let mut metrics = Vec::new();
    for group in list(&v, groups) {
        let attrs = kvs(&group["resource"]);
        g.resources.push((signal.into(), attrs.clone()));
        for scope in list(&group, scopes) {
            for item in list(&scope, items) {
                match signal {
                    "traces" => {
                        let span = Span {
                            name: item["name"].as_str().unwrap_or("").to_string(),
                            trace_id: id(&item["traceId"]),
                            span_id: id(&item["spanId"]),
                            parent_span_id: id(&item["parentSpanId"]),
                            attributes: kvs(&item),
                            ..Default::default()
                        };
                        g.resource_spans.push((attrs.clone(), span.clone()));
                        g.spans.push(span);
                    }
                    "metrics" => metrics.push(Metric {
                        name: item["name"].as_str().unwrap_or("").to_string(),
                        ..Default::default()
                    }),
                    _ => g.logs.push(LogRecord {
                        attributes: kvs(&item),
                        ..Default::default()
                    }),
                }
            }
        }
    }
    if signal == "metrics" {
        g.metrics.push(metrics);
    }
}

/// An OTLP/JSON attribute value (`{"stringValue": "…"}`, `intValue` as a string or a number,
/// `doubleValue`, `boolValue`); another kind is left out.
fn json_value(v: &serde_json::Value) -> Option<opentelemetry_proto::tonic::common::v1::AnyValue> {
    let value = if let Some(s) = v["stringValue"].as_str() {
        any_value::Value::StringValue(s.to_string())
    } else if let Some(i) = v["intValue"]
        .as_i64()
        .or_else(|| v["intValue"].as_str().and_then(|s| s.parse().ok()))
    {
        any_value::Value::IntValue(i)
    } else if let Some(d) = v["doubleValue"].as_f64() {
        any_value::Value::DoubleValue(d)
    } else if let Some(b) = v["boolValue"].as_bool() {
        any_value::Value::BoolValue(b)
    } else {
        return None;
    };
    Some(opentelemetry_proto::tonic::common::v1::AnyValue { value: Some(value) })
}

/// A body in chunked transfer encoding (RFC 9112, 7.1), its trailers skipped; `None` when the
/// connection ends or a chunk's size does not parse (bounded: 64 MiB at most).
fn read_chunked(r: &mut impl std::io::BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let size = line.trim_end().split(';').next()?.trim();
        let size = usize::from_str_radix(size, 16).ok()?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut t = String::new();
                if r.read_line(&mut t).ok()? == 0 || t.trim_end().is_empty() {
                    return Some(body);
                }
            }
        }
        if body.len() + size > 64 << 20 {
            return None;
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..]).ok()?;
        let mut crlf = String::new();
        r.read_line(&mut crlf).ok()?;
    }
}

/// A span's attribute as a string (ints and doubles written out).
pub fn attr(span_attrs: &[KeyValue], key: &str) -> Option<String> {
    let v = span_attrs.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    Some(match v.value.as_ref()? {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        _ => return None,
    })
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
