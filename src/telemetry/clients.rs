//! The agents' own telemetry (docs/src/telemetry.md, "The agents' own spans"): when the run
//! exports, the presets whose client can export OTLP have it export to the collector orch was
//! given, and nowhere else; their spans continue the attempt's `TRACEPARENT`.
//!
//! What the pinned clients read (their own code, the versions of `.ci/agent-clis`):
//!
//! - Claude Code: `CLAUDE_CODE_ENABLE_TELEMETRY=1` turns on its metrics and logs (events);
//!   its traces also need `CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1` (`OTEL_TRACES_EXPORTER=otlp`
//!   alone exports none); in a headless run (`-p`) its `claude_code.interaction` span takes
//!   `TRACEPARENT` as its parent. The exporters, protocol and addresses are the standard
//!   `OTEL_*` variables; `OTEL_RESOURCE_ATTRIBUTES` is added to its resource.
//! - Codex: the `[otel]` table of its configuration (`exporter` for its logs, `trace_exporter`,
//!   `metrics_exporter`, each `{ otlp-http = { endpoint, protocol = "binary" } }` or
//!   `{ otlp-grpc = { endpoint } }`), given as `-c` overrides after `exec` (so the user's own
//!   `config.toml` is neither read for it nor changed); it continues `TRACEPARENT`.
//! - The others are not turned on (see the book for why).
//!
//! No client gets the run's `OTEL_EXPORTER_OTLP_HEADERS`: they may hold a collector's key,
//! which the agent would then hold. A collector that needs one refuses the clients' exports.

use crate::manifest::{KnownCli, OtlpProtocol};

use super::Config;

/// `CLAUDE_CODE_ENABLE_TELEMETRY`: Claude Code's switch of its own telemetry. Set in `orch
/// up`'s environment (to anything), it is the user's: orch then turns nothing on.
pub(crate) const CLAUDE_ENABLE: &str = "CLAUDE_CODE_ENABLE_TELEMETRY";
/// `CLAUDE_CODE_ENHANCED_TELEMETRY_BETA`: Claude Code exports traces only with it.
pub(crate) const CLAUDE_TRACES: &str = "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA";

/// What an attempt of a client gets for its own export.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClientExport {
    /// Variables for its environment.
    pub(crate) env: Vec<(String, String)>,
    /// Arguments inserted after the program's first argument (Codex's `-c` after `exec`).
    pub(crate) args: Vec<String>,
    /// The collector's `host:port` of each address it was given: what its network
    /// confinement must let it reach, nothing else.
    pub(crate) reach: Vec<String>,
}

/// What `cli`, run by `argv`, gets to export to `config`'s collector; `user` reads `orch up`'s
/// environment. `None`: the client exports nothing (it cannot, or the user turned its
/// telemetry on or off themselves).
pub(crate) fn export_of(
    config: &Config,
    cli: KnownCli,
    argv: &[String],
    user: impl Fn(&str) -> Option<String>,
) -> Option<ClientExport> {
    let signals = [
        ("TRACES", config.traces.as_deref()),
        ("METRICS", config.metrics.as_deref()),
        ("LOGS", config.logs.as_deref()),
    ];
    let mut reach: Vec<String> = Vec::new();
    for url in signals.iter().filter_map(|(_, u)| *u) {
        let hp = super::config::host_port(url);
        if !reach.contains(&hp) {
            reach.push(hp);
        }
    }
    match cli {
        KnownCli::Claude => {
            if user(CLAUDE_ENABLE).is_some() {
                return None;
            }
            let protocol = match config.protocol {
                OtlpProtocol::HttpProtobuf => "http/protobuf",
                OtlpProtocol::Grpc => "grpc",
            };
            let mut env = vec![
                (CLAUDE_ENABLE.to_string(), "1".to_string()),
                (
                    "OTEL_EXPORTER_OTLP_PROTOCOL".to_string(),
                    protocol.to_string(),
                ),
            ];
            if config.traces.is_some() {
                env.push((CLAUDE_TRACES.to_string(), "1".to_string()));
            }
            for (signal, url) in signals {
                let exporter = if url.is_some() { "otlp" } else { "none" };
                env.push((format!("OTEL_{signal}_EXPORTER"), exporter.to_string()));
                if let Some(url) = url {
                    env.push((
                        format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"),
                        url.to_string(),
                    ));
                }
            }
            Some(ClientExport {
                env,
                args: Vec::new(),
                reach,
            })
        }
        // `codex exec …` only: the interactive interface is not an agent orch runs.
        KnownCli::Codex if argv.get(1).map(String::as_str) == Some("exec") => {
            let exporter = |url: &str| match config.protocol {
                OtlpProtocol::HttpProtobuf => {
                    format!(
                        "{{ otlp-http = {{ endpoint = {}, protocol = \"binary\" }} }}",
                        toml_string(url)
                    )
                }
                OtlpProtocol::Grpc => {
                    format!("{{ otlp-grpc = {{ endpoint = {} }} }}", toml_string(url))
                }
            };
            let mut args = Vec::new();
            for (key, url) in [
                ("trace_exporter", config.traces.as_deref()),
                ("metrics_exporter", config.metrics.as_deref()),
                ("exporter", config.logs.as_deref()),
            ] {
                let value = url.map_or_else(|| "\"none\"".to_string(), exporter);
                args.push("-c".to_string());
                args.push(format!("otel.{key}={value}"));
            }
            Some(ClientExport {
                env: Vec::new(),
                args,
                reach,
            })
        }
        _ => None,
    }
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::TelemetryTable;

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Config::of(
            |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            &TelemetryTable::default(),
        )
        .expect("ok")
        .expect("on")
    }

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_string()).collect()
    }

    fn var<'a>(e: &'a ClientExport, k: &str) -> Option<&'a str> {
        e.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn claude_exports_every_signal_to_the_collector_and_reaches_only_it() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret"),
        ]);
        let e = export_of(&c, KnownCli::Claude, &argv(&["claude", "-p"]), |_| None).expect("on");
        assert_eq!(var(&e, CLAUDE_ENABLE), Some("1"));
        assert_eq!(var(&e, CLAUDE_TRACES), Some("1"));
        assert_eq!(
            var(&e, "OTEL_EXPORTER_OTLP_PROTOCOL"),
            Some("http/protobuf")
        );
        for (signal, path) in [
            ("TRACES", "traces"),
            ("METRICS", "metrics"),
            ("LOGS", "logs"),
        ] {
            assert_eq!(var(&e, &format!("OTEL_{signal}_EXPORTER")), Some("otlp"));
            assert_eq!(
                var(&e, &format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")),
                Some(format!("http://127.0.0.1:4318/v1/{path}").as_str())
            );
        }
        assert_eq!(e.reach, vec!["127.0.0.1:4318".to_string()]);
        // The collector's key stays with orch.
        assert!(
            e.env
                .iter()
                .all(|(k, v)| !k.contains("HEADERS") && !v.contains("secret")),
            "{e:?}"
        );
    }

    #[test]
    fn only_the_signals_orch_was_given_an_address_for() {
        let c = config(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://traces.example.com/v1/traces",
        )]);
        let e = export_of(&c, KnownCli::Claude, &argv(&["claude"]), |_| None).expect("on");
        assert_eq!(var(&e, "OTEL_TRACES_EXPORTER"), Some("otlp"));
        assert_eq!(var(&e, "OTEL_METRICS_EXPORTER"), Some("none"));
        assert_eq!(var(&e, "OTEL_LOGS_EXPORTER"), Some("none"));
        assert_eq!(e.reach, vec!["traces.example.com:443".to_string()]);
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://alloy:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]);
        let e = export_of(&c, KnownCli::Claude, &argv(&["claude"]), |_| None).expect("on");
        assert_eq!(var(&e, "OTEL_EXPORTER_OTLP_PROTOCOL"), Some("grpc"));
        assert_eq!(
            var(&e, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"),
            Some("http://alloy:4317")
        );
        assert_eq!(e.reach, vec!["alloy:4317".to_string()]);
    }

    #[test]
    fn the_users_own_claude_telemetry_setting_wins() {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]);
        for v in ["0", "1", ""] {
            let user = |k: &str| (k == CLAUDE_ENABLE).then(|| v.to_string());
            assert_eq!(
                export_of(&c, KnownCli::Claude, &argv(&["claude"]), user),
                None
            );
        }
    }

    #[test]
    fn codex_gets_its_otel_table_as_overrides_of_exec() {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]);
        let e = export_of(&c, KnownCli::Codex, &argv(&["codex", "exec"]), |_| None).expect("on");
        assert_eq!(
            e.args,
            argv(&[
                "-c",
                "otel.trace_exporter={ otlp-http = { endpoint = \"http://127.0.0.1:4318/v1/traces\", protocol = \"binary\" } }",
                "-c",
                "otel.metrics_exporter={ otlp-http = { endpoint = \"http://127.0.0.1:4318/v1/metrics\", protocol = \"binary\" } }",
                "-c",
                "otel.exporter={ otlp-http = { endpoint = \"http://127.0.0.1:4318/v1/logs\", protocol = \"binary\" } }",
            ])
        );
        assert!(e.env.is_empty());
        // Each override is TOML that parses to the table Codex reads.
        for a in e.args.iter().skip(1).step_by(2) {
            let (k, v) = a.split_once('=').expect("key=value");
            let t: toml::Table = toml::from_str(&format!("x = {v}")).expect(k);
            assert!(t["x"].get("otlp-http").is_some(), "{a}");
        }
        assert_eq!(
            export_of(&c, KnownCli::Codex, &argv(&["codex"]), |_| None),
            None
        );
        for cli in [
            KnownCli::Gemini,
            KnownCli::Aider,
            KnownCli::Opencode,
            KnownCli::Qwen,
            KnownCli::Copilot,
        ] {
            assert_eq!(export_of(&c, cli, &argv(&[cli.name()]), |_| None), None);
        }
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        let t: toml::Table =
            toml::from_str(&format!("x = {}", toml_string("q\"\u{1}"))).expect("toml");
        assert_eq!(t["x"].as_str(), Some("q\"\u{1}"));
    }
}
