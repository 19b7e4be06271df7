//! The agents' own telemetry (docs/src/telemetry.md, "The agents' own spans"): when the run
//! exports, the presets whose client can export OTLP have it export to the collector orch was
//! given, and nowhere else; Claude Code's and Codex's spans continue the attempt's
//! `TRACEPARENT`, Gemini CLI's and Qwen Code's carry its `OTEL_RESOURCE_ATTRIBUTES` only.
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
//! - Gemini CLI (`packages/core/src/telemetry/config.ts`, `sdk.ts` of its bundle): its
//!   `GEMINI_TELEMETRY_*` variables win over its settings. `…_ENABLED=true`,
//!   `…_TARGET=local` (not Google Cloud), `…_OTLP_PROTOCOL` (`http` or `grpc`) and
//!   `…_OTLP_ENDPOINT`, one base address for its traces, metrics and logs (http: it adds
//!   `v1/traces`, `v1/metrics`, `v1/logs`; grpc: it keeps the origin). So it is turned on only
//!   when orch's three addresses are one base's (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//!   `[telemetry]`'s `endpoint`): with per-signal addresses it would send the others where orch
//!   was not told to. It does not read `TRACEPARENT`: its spans are traces of their own, tied to
//!   the attempt by `OTEL_RESOURCE_ATTRIBUTES` (its SDK's environment detector adds them).
//! - Qwen Code (a fork of it): the same with `QWEN_TELEMETRY_*`, and per-signal addresses
//!   (`…_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT`) over http, so it gets exactly orch's; over grpc
//!   one base, as Gemini CLI. Its trace ids are derived from its session id (no `TRACEPARENT`);
//!   it reads `OTEL_RESOURCE_ATTRIBUTES` itself into its resource.
//! - Both send OTLP/HTTP as JSON, through Node's `http` module (no proxy variable followed).
//! - The others are not turned on (see the book for why).
//!
//! No client gets the run's `OTEL_EXPORTER_OTLP_HEADERS`, nor the user information of an
//! address (`http://team:KEY@host:4318`): they may hold a collector's key, which the agent would
//! then hold. A collector that needs one refuses the clients' exports.

use crate::manifest::{KnownCli, OtlpProtocol};

use super::Config;

/// `CLAUDE_CODE_ENABLE_TELEMETRY`: Claude Code's switch of its own telemetry. Set in `orch
/// up`'s environment (to anything), it is the user's: orch then turns nothing on.
pub(crate) const CLAUDE_ENABLE: &str = "CLAUDE_CODE_ENABLE_TELEMETRY";
/// `CLAUDE_CODE_ENHANCED_TELEMETRY_BETA`: Claude Code exports traces only with it.
pub(crate) const CLAUDE_TRACES: &str = "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA";

/// `GEMINI_TELEMETRY_ENABLED`: Gemini CLI's switch of its own telemetry. Set in `orch up`'s
/// environment (to anything), it is the user's: orch then turns nothing on.
pub(crate) const GEMINI_ENABLE: &str = "GEMINI_TELEMETRY_ENABLED";
/// `QWEN_TELEMETRY_ENABLED`: Qwen Code's, the same.
pub(crate) const QWEN_ENABLE: &str = "QWEN_TELEMETRY_ENABLED";

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
    // The addresses without their user information, query and fragment (a collector's
    // credential stays with orch, as its headers do), and without orch's headers.
    let bare = |u: &Option<String>| u.as_deref().map(crate::agent_env::without_credentials);
    let config = &Config {
        traces: bare(&config.traces),
        metrics: bare(&config.metrics),
        logs: bare(&config.logs),
        headers: Default::default(),
        ..config.clone()
    };
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
        KnownCli::Gemini => {
            if user(GEMINI_ENABLE).is_some() {
                return None;
            }
            let base = one_base(config)?;
            Some(ClientExport {
                env: fork_env("GEMINI", config.protocol, &[("OTLP_ENDPOINT", base)]),
                args: Vec::new(),
                reach,
            })
        }
        KnownCli::Qwen => {
            if user(QWEN_ENABLE).is_some() {
                return None;
            }
            let addresses: Vec<(&str, String)> = match config.protocol {
                // Exactly orch's addresses, signal by signal.
                OtlpProtocol::HttpProtobuf => signals
                    .iter()
                    .filter_map(|(signal, url)| url.map(|u| (signal_var(signal), u.to_string())))
                    .collect(),
                // Its grpc export takes one base address only.
                OtlpProtocol::Grpc => vec![("OTLP_ENDPOINT", one_base(config)?)],
            };
            Some(ClientExport {
                env: fork_env("QWEN", config.protocol, &addresses),
                args: Vec::new(),
                reach,
            })
        }
        _ => None,
    }
}

/// Qwen Code's variable (after `QWEN_TELEMETRY_`) of a signal's address.
fn signal_var(signal: &str) -> &'static str {
    match signal {
        "TRACES" => "OTLP_TRACES_ENDPOINT",
        "METRICS" => "OTLP_METRICS_ENDPOINT",
        _ => "OTLP_LOGS_ENDPOINT",
    }
}

/// The one base address of `config`'s three signals, as Gemini CLI (and Qwen Code over grpc)
/// takes it; `None` when they are not one base's (per-signal addresses, or not all three).
fn one_base(config: &Config) -> Option<String> {
    let logs = config.logs.as_deref()?;
    let (traces, metrics) = (config.traces.as_deref()?, config.metrics.as_deref()?);
    match config.protocol {
        OtlpProtocol::HttpProtobuf => {
            let base = logs.strip_suffix("/v1/logs")?;
            (traces == format!("{base}/v1/traces") && metrics == format!("{base}/v1/metrics"))
                .then(|| base.to_string())
        }
        OtlpProtocol::Grpc => (traces == logs && metrics == logs).then(|| logs.to_string()),
    }
}

/// The variables of Gemini CLI or of Qwen Code (`prefix`): its telemetry on, to a local
/// collector (not Google Cloud's), over `protocol`, at `addresses` (`(name after
/// `PREFIX_TELEMETRY_`, address)`).
fn fork_env(
    prefix: &str,
    protocol: OtlpProtocol,
    addresses: &[(&str, String)],
) -> Vec<(String, String)> {
    let protocol = match protocol {
        OtlpProtocol::HttpProtobuf => "http",
        OtlpProtocol::Grpc => "grpc",
    };
    let mut env = vec![
        (format!("{prefix}_TELEMETRY_ENABLED"), "true".to_string()),
        (format!("{prefix}_TELEMETRY_TARGET"), "local".to_string()),
        (
            format!("{prefix}_TELEMETRY_OTLP_PROTOCOL"),
            protocol.to_string(),
        ),
    ];
    for (name, url) in addresses {
        env.push((format!("{prefix}_TELEMETRY_{name}"), url.clone()));
    }
    env
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
        for cli in [KnownCli::Aider, KnownCli::Opencode, KnownCli::Copilot] {
            assert_eq!(export_of(&c, cli, &argv(&[cli.name()]), |_| None), None);
        }
    }

    #[test]
    fn gemini_gets_the_one_base_address_and_reaches_only_it() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret"),
        ]);
        let e = export_of(&c, KnownCli::Gemini, &argv(&["gemini", "-p"]), |_| None).expect("on");
        assert_eq!(
            e.env,
            vec![
                (GEMINI_ENABLE.to_string(), "true".to_string()),
                ("GEMINI_TELEMETRY_TARGET".to_string(), "local".to_string()),
                (
                    "GEMINI_TELEMETRY_OTLP_PROTOCOL".to_string(),
                    "http".to_string()
                ),
                (
                    "GEMINI_TELEMETRY_OTLP_ENDPOINT".to_string(),
                    "http://127.0.0.1:4318".to_string()
                ),
            ]
        );
        assert!(e.args.is_empty());
        assert_eq!(e.reach, vec!["127.0.0.1:4318".to_string()]);
        // A base with a path of its own, and grpc.
        let c = config(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://otel.example.com/otlp",
        )]);
        let e = export_of(&c, KnownCli::Gemini, &argv(&["gemini"]), |_| None).expect("on");
        assert_eq!(
            var(&e, "GEMINI_TELEMETRY_OTLP_ENDPOINT"),
            Some("https://otel.example.com/otlp")
        );
        assert_eq!(e.reach, vec!["otel.example.com:443".to_string()]);
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://alloy:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]);
        let e = export_of(&c, KnownCli::Gemini, &argv(&["gemini"]), |_| None).expect("on");
        assert_eq!(var(&e, "GEMINI_TELEMETRY_OTLP_PROTOCOL"), Some("grpc"));
        assert_eq!(
            var(&e, "GEMINI_TELEMETRY_OTLP_ENDPOINT"),
            Some("http://alloy:4317")
        );
        assert!(
            e.env
                .iter()
                .all(|(k, v)| !k.contains("HEADERS") && !v.contains("secret")),
            "{e:?}"
        );
    }

    #[test]
    fn gemini_is_not_turned_on_with_per_signal_addresses_nor_against_the_users_switch() {
        // It would send all three signals to one base: not where orch was told.
        for vars in [
            vec![(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1:4318/v1/traces",
            )],
            vec![
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://127.0.0.1:4318/v1/traces",
                ),
                (
                    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                    "http://127.0.0.1:4318/v1/metrics",
                ),
            ],
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://127.0.0.1:9999/v1/traces",
                ),
            ],
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://127.0.0.1:9"),
            ],
        ] {
            let c = config(&vars);
            assert_eq!(
                export_of(&c, KnownCli::Gemini, &argv(&["gemini"]), |_| None),
                None,
                "{vars:?}"
            );
        }
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]);
        for (cli, switch) in [
            (KnownCli::Gemini, GEMINI_ENABLE),
            (KnownCli::Qwen, QWEN_ENABLE),
        ] {
            for v in ["false", "true", ""] {
                let user = |k: &str| (k == switch).then(|| v.to_string());
                assert_eq!(export_of(&c, cli, &argv(&[cli.name()]), user), None);
            }
        }
    }

    #[test]
    fn qwen_gets_exactly_orchs_addresses_signal_by_signal() {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]);
        let e = export_of(&c, KnownCli::Qwen, &argv(&["qwen", "x"]), |_| None).expect("on");
        assert_eq!(var(&e, QWEN_ENABLE), Some("true"));
        assert_eq!(var(&e, "QWEN_TELEMETRY_TARGET"), Some("local"));
        assert_eq!(var(&e, "QWEN_TELEMETRY_OTLP_PROTOCOL"), Some("http"));
        for (signal, path) in [
            ("TRACES", "traces"),
            ("METRICS", "metrics"),
            ("LOGS", "logs"),
        ] {
            assert_eq!(
                var(&e, &format!("QWEN_TELEMETRY_OTLP_{signal}_ENDPOINT")),
                Some(format!("http://127.0.0.1:4318/v1/{path}").as_str())
            );
        }
        assert_eq!(var(&e, "QWEN_TELEMETRY_OTLP_ENDPOINT"), None);
        assert_eq!(e.reach, vec!["127.0.0.1:4318".to_string()]);
        // Only traces: only its address.
        let c = config(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://traces.example.com/v1/traces",
        )]);
        let e = export_of(&c, KnownCli::Qwen, &argv(&["qwen"]), |_| None).expect("on");
        let names: Vec<&str> = e.env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            vec![
                QWEN_ENABLE,
                "QWEN_TELEMETRY_TARGET",
                "QWEN_TELEMETRY_OTLP_PROTOCOL",
                "QWEN_TELEMETRY_OTLP_TRACES_ENDPOINT"
            ]
        );
        assert_eq!(e.reach, vec!["traces.example.com:443".to_string()]);
        // grpc: one base, or nothing.
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://alloy:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]);
        let e = export_of(&c, KnownCli::Qwen, &argv(&["qwen"]), |_| None).expect("on");
        assert_eq!(var(&e, "QWEN_TELEMETRY_OTLP_PROTOCOL"), Some("grpc"));
        assert_eq!(
            var(&e, "QWEN_TELEMETRY_OTLP_ENDPOINT"),
            Some("http://alloy:4317")
        );
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://alloy:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]);
        assert_eq!(
            export_of(&c, KnownCli::Qwen, &argv(&["qwen"]), |_| None),
            None
        );
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        let t: toml::Table =
            toml::from_str(&format!("x = {}", toml_string("q\"\u{1}"))).expect("toml");
        assert_eq!(t["x"].as_str(), Some("q\"\u{1}"));
    }

    /// An address's user information (a collector's key) reaches no client: orch's own export
    /// keeps it.
    #[test]
    fn no_client_gets_the_user_information_of_an_address() {
        let mut exported = 0;
        for (c, cli) in [
            config(&[(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://team:S3CRET@127.0.0.1:4318",
            )]),
            config(&[(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://127.0.0.1:4318?api_key=S3CRET",
            )]),
            config(&[(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://127.0.0.1:4318/#S3CRET",
            )]),
            config(&[
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://127.0.0.1:4318/v1/traces?k=S3CRET",
                ),
                (
                    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                    "http://u:S3CRET@127.0.0.1:4318/v1/metrics",
                ),
            ]),
        ]
        .iter()
        .flat_map(|c| {
            [
                KnownCli::Claude,
                KnownCli::Gemini,
                KnownCli::Qwen,
                KnownCli::Codex,
            ]
            .map(|k| (c, k))
        }) {
            let argv = vec!["x".to_string(), "exec".to_string()];
            let Some(e) = export_of(c, cli, &argv, |_| None) else {
                continue;
            };
            exported += 1;
            let all = format!("{:?}{:?}", e.env, e.args);
            assert!(!all.contains("S3CRET"), "{cli:?}: {all}");
            assert!(
                !all.contains("v1/traces/v1") && !all.contains("?"),
                "{cli:?}: {all}"
            );
            assert!(all.contains("http://127.0.0.1:4318"), "{cli:?}: {all}");
            assert_eq!(e.reach, vec!["127.0.0.1:4318".to_string()], "{cli:?}");
        }
        assert!(exported >= 14, "{exported}");
    }
}
