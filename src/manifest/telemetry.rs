//! `[telemetry]`: where `orch up` exports its OpenTelemetry traces and metrics (`src/telemetry/`),
//! when the `OTEL_EXPORTER_OTLP_*` variables do not say it.

use std::collections::BTreeMap;

use super::raw::RawTelemetry;
use super::spans::{Bad, Reporter};

/// The protocols of OTLP orch speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OtlpProtocol {
    /// `http/protobuf` (the default): a POST of the protobuf message to `/v1/traces`, `/v1/metrics`.
    HttpProtobuf,
    /// `grpc`: the collector's gRPC services (HTTP/2).
    Grpc,
}

impl OtlpProtocol {
    /// `http/protobuf` or `grpc` (the names of `OTEL_EXPORTER_OTLP_PROTOCOL`).
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "http/protobuf" => Some(Self::HttpProtobuf),
            "grpc" => Some(Self::Grpc),
            _ => None,
        }
    }
}

/// `[telemetry]`, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TelemetryTable {
    /// `endpoint`: the collector's base address (`http://localhost:4318`).
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Option<OtlpProtocol>,
    /// `headers`: sent with every export (`{ "x-honeycomb-team" = "…" }`).
    pub(crate) headers: BTreeMap<String, String>,
}

/// Whether `v` is an http:// or https:// address with a host.
pub(crate) fn check_endpoint(v: &str) -> Result<String, String> {
    let rest = v
        .strip_prefix("http://")
        .or_else(|| v.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !v.chars().any(char::is_whitespace) => {
            Ok(v.trim_end_matches('/').to_string())
        }
        _ => Err(format!(
            "`{v}` is not an http:// or https:// address of a collector"
        )),
    }
}

/// Whether `name` can be an HTTP header's name and `value` its value.
pub(crate) fn check_header(name: &str, value: &str) -> Result<(), String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("`{name}` is not an HTTP header name"));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(format!(
            "the value of header `{name}` has a control character"
        ));
    }
    Ok(())
}

/// Checks `[telemetry]`.
pub(super) fn table(raw: &RawTelemetry, r: &mut Reporter<'_>) -> TelemetryTable {
    let endpoint = r.check(raw.endpoint.as_ref(), |v| {
        check_endpoint(v).map_err(|m| {
            Bad::new(format!("`telemetry.endpoint`: {m}"))
                .hint("write the collector's address, such as \"http://localhost:4318\"")
        })
    });
    let protocol = r.check(raw.protocol.as_ref(), |v| {
        OtlpProtocol::parse(v).ok_or_else(|| {
            Bad::new(format!(
                "`telemetry.protocol` `{v}` is not `http/protobuf` or `grpc`"
            ))
            .hint("protocol = \"http/protobuf\" (the default) or \"grpc\"")
        })
    });
    let mut headers = BTreeMap::new();
    if let Some(h) = &raw.headers {
        for (name, value) in &h.value {
            let checked = r.check(Some(value), |v| {
                check_header(name, v).map_err(|m| {
                    Bad::new(format!("`telemetry.headers`: {m}"))
                        .hint("headers = { \"x-honeycomb-team\" = \"KEY\" }")
                })
            });
            if checked.is_some() {
                headers.insert(name.clone(), value.value.clone());
            }
        }
    }
    TelemetryTable {
        endpoint,
        protocol,
        headers,
    }
}
