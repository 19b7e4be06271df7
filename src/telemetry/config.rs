//! Whether and where `orch up` exports: the standard `OTEL_EXPORTER_OTLP_*` variables, else
//! plans.toml's `[telemetry]`; neither: off.

use std::collections::BTreeMap;

use crate::manifest::{OtlpProtocol, TelemetryTable, check_endpoint, check_header};

/// `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector's base address (`/v1/traces` and `/v1/metrics`
/// are added for http/protobuf).
pub(crate) const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: the traces' full address (used as given).
pub(crate) const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`: the metrics' full address (used as given).
pub(crate) const METRICS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` (the default) or `grpc`.
pub(crate) const PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// `OTEL_EXPORTER_OTLP_HEADERS`: `name=value,name2=value2` (values percent-encoded).
pub(crate) const HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";

/// Where and how to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) protocol: OtlpProtocol,
    /// http/protobuf: the full address of each signal (`None`: not exported); grpc: the
    /// collector's address (both the same).
    pub(crate) traces: Option<String>,
    pub(crate) metrics: Option<String>,
    /// Where logs would go (orch sends none): `<base>/v1/logs` (http/protobuf) or the base
    /// (grpc) when a base address was given, for the agents' own export
    /// ([`super::clients`]); `None` when only per-signal addresses were.
    pub(crate) logs: Option<String>,
    pub(crate) headers: BTreeMap<String, String>,
    /// The collector's `host:port`, for the network confinement's allowlist.
    pub(crate) host_port: String,
}

impl Config {
    /// The configuration of a run from the variables (`var`) and `[telemetry]`; `Ok(None)`:
    /// export is off. A bad variable is an error naming it.
    pub(crate) fn of(
        var: impl Fn(&str) -> Option<String>,
        table: &TelemetryTable,
    ) -> Result<Option<Config>, String> {
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let checked = |k: &str| -> Result<Option<String>, String> {
            var(k)
                .map(|v| check_endpoint(v.trim()).map_err(|m| format!("`{k}`: {m}")))
                .transpose()
        };
        let protocol = match var(PROTOCOL) {
            Some(p) => OtlpProtocol::parse(&p).ok_or_else(|| {
                format!("`{PROTOCOL}` `{p}` is not `http/protobuf` or `grpc` (orch exports neither `http/json` nor another)")
            })?,
            None => table.protocol.unwrap_or(OtlpProtocol::HttpProtobuf),
        };
        let base = checked(ENDPOINT)?;
        let traces = checked(TRACES_ENDPOINT)?;
        let metrics = checked(METRICS_ENDPOINT)?;
        let from_env = base.is_some() || traces.is_some() || metrics.is_some();
        let base = if from_env {
            base
        } else {
            table.endpoint.clone()
        };
        let (traces, metrics, logs) = match protocol {
            OtlpProtocol::HttpProtobuf => (
                traces.or_else(|| base.as_deref().map(|b| signal_address(b, "traces"))),
                metrics.or_else(|| base.as_deref().map(|b| signal_address(b, "metrics"))),
                base.as_deref().map(|b| signal_address(b, "logs")),
            ),
            OtlpProtocol::Grpc => (traces.or(base.clone()), metrics.or(base.clone()), base),
        };
        let Some(any) = traces.clone().or(metrics.clone()) else {
            return Ok(None);
        };
        let mut headers = table.headers.clone();
        if let Some(h) = var(HEADERS) {
            headers = parse_headers(&h)?;
        }
        // The user information of an address is sent as HTTP Basic authentication, decoded
        // (`%40` is `@`), over HTTP and gRPC alike, unless a header says otherwise; the
        // addresses kept are without it.
        let userinfo = [&traces, &metrics]
            .into_iter()
            .flatten()
            .find_map(|u| userinfo_of(u));
        if let Some((user, password)) = userinfo
            && !headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("authorization"))
        {
            use base64::Engine as _;
            let pair = format!("{}:{}", percent_decoded(&user), percent_decoded(&password));
            headers.insert(
                "authorization".to_string(),
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ),
            );
        }
        let bare = |u: Option<String>| u.map(|u| crate::agent_env::without_userinfo(&u));
        let (traces, metrics, logs) = (bare(traces), bare(metrics), bare(logs));
        Ok(Some(Config {
            protocol,
            host_port: host_port(&any),
            traces,
            metrics,
            logs,
            headers,
        }))
    }
}

/// The address of `signal` under the base address `base` (OTLP/HTTP): `v1/<signal>` added to its
/// path, before its query and fragment (`http://h:4318/otlp?k=v` → `http://h:4318/otlp/v1/traces?k=v`).
fn signal_address(base: &str, signal: &str) -> String {
    let start = base.find("://").map_or(0, |i| i + 3);
    let end = base[start..]
        .find(['?', '#'])
        .map_or(base.len(), |i| start + i);
    let (head, tail) = base.split_at(end);
    format!("{}/v1/{signal}{tail}", head.trim_end_matches('/'))
}

/// The user and password of `url`'s user information, as written (percent-encoded).
fn userinfo_of(url: &str) -> Option<(String, String)> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let (info, _) = authority.rsplit_once('@')?;
    let (user, password) = info.split_once(':').unwrap_or((info, ""));
    Some((user.to_string(), password.to_string()))
}

/// `OTEL_EXPORTER_OTLP_HEADERS`: `k=v` pairs separated by commas, values percent-decoded.
fn parse_headers(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (n, pair) in s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        // Not quoted: the entry may be a key.
        let Some((k, v)) = pair.split_once('=') else {
            return Err(format!(
                "`{HEADERS}`: its entry {} is not `name=value` (not shown: it may hold a key)",
                n + 1
            ));
        };
        let (k, v) = (k.trim(), percent_decoded(v.trim()));
        check_header(k, &v).map_err(|m| format!("`{HEADERS}`: {m}"))?;
        out.insert(k.to_string(), v);
    }
    Ok(out)
}

fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `host:port` of an http(s) address (the scheme's port when none is written).
pub(crate) fn host_port(url: &str) -> String {
    let (rest, port) = match url.strip_prefix("https://") {
        Some(r) => (r, 443),
        None => (url.strip_prefix("http://").unwrap_or(url), 80),
    };
    let auth = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let auth = auth.rsplit('@').next().unwrap_or(auth);
    let has_port = match auth.rfind(':') {
        Some(i) => !auth[i..].contains(']'),
        None => false,
    };
    if has_port {
        auth.to_string()
    } else {
        format!("{auth}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(vars: &[(&str, &str)], table: &TelemetryTable) -> Result<Option<Config>, String> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Config::of(|k| vars.get(k).cloned(), table)
    }

    #[test]
    fn off_without_an_endpoint() {
        assert_eq!(of(&[], &TelemetryTable::default()), Ok(None));
        assert_eq!(
            of(
                &[(PROTOCOL, "grpc"), (HEADERS, "a=b")],
                &TelemetryTable::default()
            ),
            Ok(None)
        );
        assert_eq!(of(&[(ENDPOINT, " ")], &TelemetryTable::default()), Ok(None));
    }

    /// The user information of an address becomes Basic authentication, decoded, and leaves
    /// the addresses; a header of the user's own wins; the scheme in any case; a bad address or
    /// header entry is refused without quoting it.
    #[test]
    fn user_information_is_sent_decoded_and_errors_quote_no_key() {
        use base64::Engine as _;
        let c = of(
            &[(ENDPOINT, "HTTP://team:S3CRET%40X@127.0.0.1:4318")],
            &TelemetryTable::default(),
        )
        .expect("ok")
        .expect("on");
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("team:S3CRET@X")
        );
        assert_eq!(c.headers.get("authorization"), Some(&basic));
        assert_eq!(c.traces.as_deref(), Some("http://127.0.0.1:4318/v1/traces"));
        assert_eq!(
            c.metrics.as_deref(),
            Some("http://127.0.0.1:4318/v1/metrics")
        );
        let c = of(
            &[
                (ENDPOINT, "http://team:S3CRET@127.0.0.1:4318"),
                (HEADERS, "Authorization=Bearer%20T"),
            ],
            &TelemetryTable::default(),
        )
        .expect("ok")
        .expect("on");
        assert_eq!(c.headers.len(), 1);
        assert_eq!(
            c.headers.get("Authorization").map(String::as_str),
            Some("Bearer T")
        );
        for (k, v) in [
            (ENDPOINT, "http://u:S3CRET@127.0.0.1:99999"),
            (ENDPOINT, "http://u:S3CRET@127.0.0.1:0"),
            (ENDPOINT, "http:\\\\u:S3CRET@127.0.0.1:4318"),
            (ENDPOINT, "ftp://u:S3CRET@h"),
            (ENDPOINT, "http://u:S3CRET@/x"),
            (HEADERS, "x-k S3CRET"),
        ] {
            let vars = [(ENDPOINT, "http://127.0.0.1:4318"), (k, v)];
            let vars = if k == HEADERS { &vars[..] } else { &vars[1..] };
            let e = of(vars, &TelemetryTable::default()).expect_err(v);
            assert!(!e.contains("S3CRET"), "{e}");
            assert!(e.contains(k), "{e}");
        }
    }

    /// A base address with a path, a query or a fragment: the signal's path goes into its path.
    #[test]
    fn a_signal_path_goes_before_the_query() {
        for (base, traces, metrics) in [
            (
                "http://127.0.0.1:4318?api_key=K",
                "http://127.0.0.1:4318/v1/traces?api_key=K",
                "http://127.0.0.1:4318/v1/metrics?api_key=K",
            ),
            (
                "http://127.0.0.1:4318/otlp/?a=1&b=2",
                "http://127.0.0.1:4318/otlp/v1/traces?a=1&b=2",
                "http://127.0.0.1:4318/otlp/v1/metrics?a=1&b=2",
            ),
            (
                "https://h/x#f",
                "https://h/x/v1/traces#f",
                "https://h/x/v1/metrics#f",
            ),
        ] {
            let c = of(&[(ENDPOINT, base)], &TelemetryTable::default())
                .expect("ok")
                .expect("on");
            assert_eq!(c.traces.as_deref(), Some(traces), "{base}");
            assert_eq!(c.metrics.as_deref(), Some(metrics), "{base}");
        }
    }

    #[test]
    fn variables_then_the_table() {
        let c = of(
            &[(ENDPOINT, "http://127.0.0.1:4318/")],
            &TelemetryTable::default(),
        )
        .expect("ok")
        .expect("on");
        assert_eq!(c.traces.as_deref(), Some("http://127.0.0.1:4318/v1/traces"));
        assert_eq!(
            c.metrics.as_deref(),
            Some("http://127.0.0.1:4318/v1/metrics")
        );
        assert_eq!(c.host_port, "127.0.0.1:4318");
        assert_eq!(c.logs.as_deref(), Some("http://127.0.0.1:4318/v1/logs"));
        let c = of(
            &[(TRACES_ENDPOINT, "https://api.honeycomb.io/v1/traces")],
            &TelemetryTable::default(),
        )
        .expect("ok")
        .expect("on");
        assert_eq!(
            c.traces.as_deref(),
            Some("https://api.honeycomb.io/v1/traces")
        );
        assert_eq!(c.metrics, None);
        assert_eq!(c.logs, None, "no base address: no logs address");
        assert_eq!(c.host_port, "api.honeycomb.io:443");
        let table = TelemetryTable {
            endpoint: Some("http://tempo:4317".into()),
            protocol: Some(OtlpProtocol::Grpc),
            headers: [("x-a".to_string(), "1".to_string())].into(),
        };
        let c = of(&[], &table).expect("ok").expect("on");
        assert_eq!(c.protocol, OtlpProtocol::Grpc);
        assert_eq!(c.traces.as_deref(), Some("http://tempo:4317"));
        assert_eq!(c.logs.as_deref(), Some("http://tempo:4317"));
        assert_eq!(c.headers.get("x-a").map(String::as_str), Some("1"));
        let c = of(
            &[(ENDPOINT, "http://other:4317"), (HEADERS, "x-b=a%20b")],
            &table,
        )
        .expect("ok")
        .expect("on");
        assert_eq!(c.traces.as_deref(), Some("http://other:4317"));
        assert_eq!(c.headers.get("x-b").map(String::as_str), Some("a b"));
        assert!(!c.headers.contains_key("x-a"));
    }

    #[test]
    fn bad_variables_are_named() {
        for (vars, named) in [
            (vec![(ENDPOINT, "localhost:4318")], ENDPOINT),
            (
                vec![(ENDPOINT, "http://a"), (PROTOCOL, "http/json")],
                PROTOCOL,
            ),
            (vec![(ENDPOINT, "http://a"), (HEADERS, "novalue")], HEADERS),
            (
                vec![(ENDPOINT, "http://a"), (HEADERS, "bad name=1")],
                HEADERS,
            ),
            (vec![(TRACES_ENDPOINT, "ftp://a")], TRACES_ENDPOINT),
        ] {
            let e = of(&vars, &TelemetryTable::default()).expect_err("bad");
            assert!(e.contains(named), "{e}");
        }
    }
}
