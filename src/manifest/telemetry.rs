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

/// Whether `v` is an http:// or https:// address (the scheme in any case) with a host and, if
/// any, a port from 1 to 65535: the address with its scheme in lower case and without a
/// trailing `/`. The error does not quote `v`: an address may hold a key.
pub(crate) fn check_endpoint(v: &str) -> Result<String, String> {
    let bad = |what: &str| {
        Err(format!(
            "the address is not {what} (its value is not shown: it may hold a key)"
        ))
    };
    let Some((scheme, rest)) = v.split_once("://") else {
        return bad("an http:// or https:// address of a collector");
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return bad("an http:// or https:// address of a collector");
    }
    if v.chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return bad("an address (a space, a control character or a backslash in it)");
    }
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let port = match host_port.rfind(':') {
        Some(i) if !host_port[i..].contains(']') => Some(&host_port[i + 1..]),
        _ => None,
    };
    let host = port.map_or(host_port, |p| &host_port[..host_port.len() - p.len() - 1]);
    if host.is_empty() || host == "[]" {
        return bad("an address with a host");
    }
    if let Some(p) = port
        && !p.parse::<u16>().is_ok_and(|n| n > 0)
    {
        return bad("an address with a port from 1 to 65535");
    }
    Ok(format!("{scheme}://{rest}")
        .trim_end_matches('/')
        .to_string())
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
