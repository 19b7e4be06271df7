//! OpenTelemetry export (docs/src/telemetry.md): `orch up` sends a real OTLP receiver on
//! loopback (tests/support/otlp.rs, over HTTP and gRPC) the spans of its run, nested run → plan →
//! task → attempt → check / commit and plan → merge, with their attributes, and metrics that
//! agree with the status files; each attempt's `TRACEPARENT` names its span. A receiver that
//! never answers, or a closed port, leaves the run as it is without export. A client whose own
//! export orch turns on reaches the collector through its confined network, and nothing more.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::metrics::v1::{Metric, metric::Data, number_data_point};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::Value;

use crate::support::net_probe::{DENIED, Servers, parse_results, probe_argv, servers};
use crate::support::otlp::{Receiver, attr, hex};
use crate::support::{Repo, events, fixtures, named, one_task, toml_array};

/// Plans `a` (task 1.1, whose check fails on the first attempt: a retry) and `b` (tasks 1.1,
/// 1.2), both by `otel_env.sh` recording its trace context in `env_dir`; `extra` appended to
/// the manifest.
fn repo_with(env_dir: &Path, extra: &str) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    let agent = fixtures().join("otel_env.sh");
    let check = toml_array(&["grep", "-q", "by attempt 2", "a.txt"]);
    repo.write(
        "docs/plans/a.md",
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 Do a\n",
    );
    repo.write(
        "docs/plans/b.md",
        "# B\n\n## Phase 1: Work\n- [ ] 1.1 Do b\n- [ ] 1.2 Do more of b\n",
    );
    let manifest = format!(
        "[defaults]\nagent = \"otel\"\nmax_agents = 2\nretries = 0\nbackoff = \"1s\"\n\n[agents.otel]\ncommand = {}\n\n[[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\nretries = 1\ncheck = {check}\n\n[[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\n{extra}",
        toml_array(&[
            "sh",
            agent.to_str().expect("utf8"),
            env_dir.to_str().expect("utf8")
        ]),
    );
    repo.write("plans.toml", &manifest);
    repo.commit_all("plans");
    repo
}

/// `orch up --merge --json` with `env`: exit code, events, stderr, how long it took.
fn up(repo: &Repo, env: &[(&str, String)]) -> (i32, Vec<Value>, String, Duration) {
    let mut cmd = repo.orch(&["up", "--merge", "--json"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let t = Instant::now();
    let (code, out, err) = repo.run_cmd(&mut cmd);
    (code, events(&out), err, t.elapsed())
}

fn named_spans<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn one<'a>(spans: &'a [Span], name: &str, pairs: &[(&str, &str)]) -> &'a Span {
    let found: Vec<&Span> = named_spans(spans, name)
        .into_iter()
        .filter(|s| {
            pairs
                .iter()
                .all(|(k, v)| attr(&s.attributes, k).as_deref() == Some(*v))
        })
        .collect();
    assert_eq!(found.len(), 1, "one {name} span with {pairs:?}: {found:#?}");
    found[0]
}

/// The sum of an integer counter's points whose attributes include `pairs`.
fn counter(metrics: &[Metric], name: &str, pairs: &[(&str, &str)]) -> i64 {
    let Some(m) = metrics.iter().find(|m| m.name == name) else {
        return 0;
    };
    let Some(Data::Sum(sum)) = &m.data else {
        panic!("{name} is not a sum: {m:?}")
    };
    sum.data_points
        .iter()
        .filter(|p| {
            pairs
                .iter()
                .all(|(k, v)| attr(&p.attributes, k).as_deref() == Some(*v))
        })
        .map(|p| match p.value {
            Some(number_data_point::Value::AsInt(i)) => i,
            _ => 0,
        })
        .sum()
}

fn histogram_count(metrics: &[Metric], name: &str) -> u64 {
    let Some(m) = metrics.iter().find(|m| m.name == name) else {
        return 0;
    };
    let Some(Data::Histogram(h)) = &m.data else {
        panic!("{name} is not a histogram: {m:?}")
    };
    h.data_points.iter().map(|p| p.count).sum()
}

fn run_exports_to(receiver: &Receiver, protocol: &str) {
    let env_dir = tempfile::tempdir().expect("tmp");
    let repo = repo_with(env_dir.path(), "");
    let (code, ev, err, _) = up(
        &repo,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_string()),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-orch-test=yes%20it%20is".into(),
            ),
        ],
    );
    assert_eq!(code, 0, "{protocol}: {ev:#?}\n{err}");
    assert!(
        !err.contains("telemetry:"),
        "{protocol}: no export failed: {err}"
    );
    assert_eq!(named(&ev, "plan_merged").len(), 2, "{protocol}");
    assert!(receiver.bad().is_empty(), "{:?}", receiver.bad());
    assert!(
        receiver.headers().iter().all(|h| h
            .iter()
            .any(|(k, v)| k == "x-orch-test" && v == "yes it is")),
        "{protocol}: every request has the header: {:?}",
        receiver.headers()
    );
    let spans = receiver.spans();

    // One trace; the run is its root.
    let trace = spans[0].trace_id.clone();
    assert!(spans.iter().all(|s| s.trace_id == trace), "{protocol}");
    let runs = named_spans(&spans, "run");
    assert_eq!(runs.len(), 1, "{protocol}: {spans:#?}");
    let run = runs[0];
    assert!(run.parent_span_id.is_empty());
    // run → plan → task → attempt → check / commit; plan → merge.
    for plan in ["a", "b"] {
        let p = one(&spans, "plan", &[("orch.plan", plan)]);
        assert_eq!(p.parent_span_id, run.span_id, "{protocol} {plan}");
        assert_eq!(
            attr(&p.attributes, "orch.outcome").as_deref(),
            Some("completed")
        );
        assert_eq!(attr(&p.attributes, "orch.agent").as_deref(), Some("otel"));
        assert_eq!(
            attr(&p.attributes, "orch.executor").as_deref(),
            Some("local")
        );
        let m = one(&spans, "merge", &[("orch.plan", plan)]);
        assert_eq!(m.parent_span_id, p.span_id);
        assert_eq!(
            attr(&m.attributes, "orch.outcome").as_deref(),
            Some("merged")
        );
        assert!(m.end_time_unix_nano >= m.start_time_unix_nano);
    }
    let plan_a = one(&spans, "plan", &[("orch.plan", "a")]);
    let task_a = one(&spans, "task", &[("orch.plan", "a"), ("orch.task", "1.1")]);
    assert_eq!(task_a.parent_span_id, plan_a.span_id);
    assert_eq!(
        attr(&task_a.attributes, "orch.outcome").as_deref(),
        Some("done")
    );
    let first = one(
        &spans,
        "attempt",
        &[("orch.plan", "a"), ("orch.attempt", "1")],
    );
    let second = one(
        &spans,
        "attempt",
        &[("orch.plan", "a"), ("orch.attempt", "2")],
    );
    for (a, outcome) in [(first, "failed"), (second, "done")] {
        assert_eq!(a.parent_span_id, task_a.span_id);
        assert_eq!(attr(&a.attributes, "orch.task").as_deref(), Some("1.1"));
        assert_eq!(attr(&a.attributes, "orch.agent").as_deref(), Some("otel"));
        assert_eq!(
            attr(&a.attributes, "orch.outcome").as_deref(),
            Some(outcome)
        );
        assert!(a.start_time_unix_nano >= task_a.start_time_unix_nano);
        assert!(a.end_time_unix_nano <= task_a.end_time_unix_nano);
        assert!(a.start_time_unix_nano >= run.start_time_unix_nano);
    }
    assert!(
        first
            .status
            .as_ref()
            .is_some_and(|s| s.message.contains("check")),
        "{first:?}"
    );
    let checks: Vec<&Span> = named_spans(&spans, "check")
        .into_iter()
        .filter(|s| attr(&s.attributes, "orch.plan").as_deref() == Some("a"))
        .collect();
    assert_eq!(checks.len(), 2, "{protocol}: {checks:#?}");
    let failed_check = one(&spans, "check", &[("orch.attempt", "1")]);
    assert_eq!(failed_check.parent_span_id, first.span_id);
    let passed_check = one(&spans, "check", &[("orch.attempt", "2")]);
    assert_eq!(passed_check.parent_span_id, second.span_id);
    assert_eq!(
        attr(&passed_check.attributes, "orch.outcome").as_deref(),
        Some("passed")
    );
    let commit = one(&spans, "commit", &[("orch.plan", "a")]);
    assert_eq!(commit.parent_span_id, second.span_id);
    assert_eq!(
        attr(&commit.attributes, "orch.commit"),
        repo.task("a", "1.1")["commit"].as_str().map(str::to_string)
    );
    for t in ["1.1", "1.2"] {
        let task = one(&spans, "task", &[("orch.plan", "b"), ("orch.task", t)]);
        let att = one(&spans, "attempt", &[("orch.plan", "b"), ("orch.task", t)]);
        assert_eq!(att.parent_span_id, task.span_id);
        one(&spans, "commit", &[("orch.plan", "b"), ("orch.task", t)]);
    }

    // Each attempt's TRACEPARENT is its span; its resource attributes name it.
    let env = std::fs::read_to_string(env_dir.path().join("a-1.1-2.env")).expect("env of a 1.1 #2");
    assert!(
        env.contains(&format!(
            "TRACEPARENT=00-{}-{}-01\n",
            hex(&trace),
            hex(&second.span_id)
        )),
        "{protocol}: {env}"
    );
    assert!(
        env.contains("OTEL_RESOURCE_ATTRIBUTES=orch.plan=a,orch.task=1.1,orch.attempt=2\n"),
        "{env}"
    );
    // The headers (a collector's key) are orch's, not the agents'.
    assert!(!env.contains("HEADERS"), "{env}");
    assert!(!env.contains("yes"), "{env}");
    let env = std::fs::read_to_string(env_dir.path().join("b-1.2-1.env")).expect("env of b 1.2");
    let b12 = one(
        &spans,
        "attempt",
        &[("orch.plan", "b"), ("orch.task", "1.2")],
    );
    assert!(env.contains(&hex(&b12.span_id)), "{env}");

    // The metrics agree with the status files.
    let metrics = receiver.metrics();
    let mut done = 0;
    let mut retries = 0;
    for (plan, tasks) in [("a", &["1.1"][..]), ("b", &["1.1", "1.2"][..])] {
        for t in tasks {
            let task = repo.task(plan, t);
            assert_eq!(task["status"], "completed");
            done += 1;
            retries += task["attempts"].as_i64().expect("attempts") - 1;
        }
    }
    assert_eq!(
        counter(&metrics, "orch.tasks", &[("orch.outcome", "done")]),
        done,
        "{metrics:#?}"
    );
    assert_eq!(
        counter(&metrics, "orch.tasks", &[("orch.outcome", "failed")]),
        0
    );
    assert_eq!(counter(&metrics, "orch.retries", &[]), retries);
    assert_eq!(retries, 1);
    assert_eq!(counter(&metrics, "orch.retries", &[("orch.plan", "a")]), 1);
    assert_eq!(histogram_count(&metrics, "orch.attempt.duration"), 4);
    assert_eq!(histogram_count(&metrics, "orch.queue.wait"), 4);
    assert_eq!(histogram_count(&metrics, "orch.dispatch.latency"), 1);
    assert_eq!(counter(&metrics, "orch.attempts.lost", &[]), 0);
}

#[test]
fn the_run_is_exported_as_nested_spans_and_metrics_over_http() {
    run_exports_to(&Receiver::http(), "http/protobuf");
}

#[test]
fn the_run_is_exported_as_nested_spans_and_metrics_over_grpc() {
    run_exports_to(&Receiver::grpc(), "grpc");
}

/// What a run did, times and ids aside: each event's name with its plan, task and attempt,
/// sorted; the status of each task; the plans' branches merged.
fn what_it_did(
    repo: &Repo,
    code: i32,
    ev: &[Value],
) -> (i32, Vec<String>, BTreeMap<String, Value>) {
    let mut names: Vec<String> = ev
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}",
                e["event"], e["plan"], e["task"], e["attempt"]
            )
        })
        .collect();
    names.sort();
    let mut statuses = BTreeMap::new();
    for (plan, t) in [("a", "1.1"), ("b", "1.1"), ("b", "1.2")] {
        let task = repo.task(plan, t);
        statuses.insert(
            format!("{plan} {t}"),
            serde_json::json!([task["status"], task["attempts"]]),
        );
    }
    (code, names, statuses)
}

#[test]
fn a_receiver_that_never_answers_or_a_closed_port_changes_nothing_in_the_run() {
    let env_dir = tempfile::tempdir().expect("tmp");
    let plain = repo_with(env_dir.path(), "");
    // orch itself started inside someone's trace: not the agents' context.
    let outer = [
        (
            "TRACEPARENT",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_string(),
        ),
        ("TRACESTATE", "vendor=1".to_string()),
        ("OTEL_RESOURCE_ATTRIBUTES", "team=x".to_string()),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret".to_string()),
    ];
    let (code, ev, err, base) = up(&plain, &outer);
    assert_eq!(code, 0, "{err}");
    let want = what_it_did(&plain, code, &ev);
    // No export: no trace context in the attempts' environment, none inherited.
    let env = std::fs::read_to_string(env_dir.path().join("a-1.1-1.env")).expect("env");
    assert_eq!(env, "", "no export, no TRACEPARENT");

    let silent = Receiver::silent();
    let closed = Receiver::closed_port();
    for (what, env) in [
        (
            "silent http",
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT", silent.endpoint())],
        ),
        (
            "silent grpc",
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", silent.endpoint()),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_string()),
            ],
        ),
        (
            "closed http",
            vec![(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                format!("http://{closed}/v1/traces"),
            )],
        ),
        (
            "closed grpc",
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{closed}")),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_string()),
            ],
        ),
    ] {
        let env_dir = tempfile::tempdir().expect("tmp");
        let repo = repo_with(env_dir.path(), "");
        let (code, ev, err, took) = up(&repo, &env);
        assert_eq!(what_it_did(&repo, code, &ev), want, "{what}: {err}");
        // At most the last export's bound (3 s) and some slack over the run without export.
        assert!(
            took < base + Duration::from_secs(10),
            "{what}: {took:?} against {base:?} without export"
        );
        assert!(
            err.contains("note: telemetry: "),
            "{what}: said on stderr: {err}"
        );
        let env = std::fs::read_to_string(env_dir.path().join("a-1.1-1.env")).expect("env");
        assert!(env.contains("TRACEPARENT=00-"), "{what}: {env}");
    }
}

#[test]
fn bad_telemetry_settings_are_errors_naming_the_file_line_or_variable() {
    let env_dir = tempfile::tempdir().expect("tmp");
    for (table, needle) in [
        (
            "[telemetry]\nendpoint = \"localhost:4318\"\n",
            "telemetry.endpoint",
        ),
        (
            "[telemetry]\nendpoint = \"http://a:4318\"\nprotocol = \"http/json\"\n",
            "telemetry.protocol",
        ),
        (
            "[telemetry]\nendpoint = \"http://a:4318\"\nheaders = { \"bad name\" = \"1\" }\n",
            "telemetry.headers",
        ),
        (
            "[telemetry]\nendpoint = \"http://a:4318\"\nheaders = { \"x-a\" = \"a\\nb\" }\n",
            "telemetry.headers",
        ),
    ] {
        let repo = repo_with(env_dir.path(), table);
        let before = repo.branches();
        let (code, out, err) = repo.run(&["up"]);
        assert_eq!(code, 2, "{table}\n{out}\n{err}");
        assert!(
            err.contains("plans.toml:"),
            "{table}: names the file: {err}"
        );
        assert!(err.contains(needle), "{table}: {err}");
        let line = 1 + repo
            .read("plans.toml")
            .split(|b| *b == b'\n')
            .position(|l| l.starts_with(needle.rsplit('.').next().unwrap_or("").as_bytes()))
            .expect("the key's line");
        assert!(
            err.contains(&format!("plans.toml:{line}:")),
            "{table}: line {line}: {err}"
        );
        assert_eq!(repo.branches(), before, "nothing made");
        let (code, _, err) = repo.run(&["check"]);
        assert_eq!(code, 2, "orch check too: {err}");
    }
    let repo = repo_with(env_dir.path(), "");
    let before = repo.branches();
    for (var, value) in [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "no-value"),
    ] {
        let mut cmd = repo.orch(&["up"]);
        cmd.env(var, value);
        if var != "OTEL_EXPORTER_OTLP_ENDPOINT" {
            cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9");
        }
        let (code, out, err) = repo.run_cmd(&mut cmd);
        assert_eq!(code, 2, "{var}\n{out}\n{err}");
        assert!(err.contains(var), "{var}: {err}");
        assert_eq!(repo.branches(), before, "nothing made");
    }
}

#[test]
fn orch_history_profile_of_a_recorded_run_adds_up_to_its_wall_time() {
    let env_dir = tempfile::tempdir().expect("tmp");
    let repo = repo_with(env_dir.path(), "");
    let (code, ev, err, _) = up(&repo, &[]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = repo.run(&["history", "--profile", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "{out}");
    let r = &runs[0];
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    let parts = |v: &Value| {
        [
            "agent_ms",
            "check_ms",
            "orch_ms",
            "slot_ms",
            "limit_ms",
            "backoff_ms",
            "person_ms",
        ]
        .iter()
        .map(|k| n(v, k))
        .sum::<u64>()
    };
    // The parts add up to the wall time (within 1 %), which is the run's, from its events.
    let wall = n(r, "wall_ms");
    assert!(parts(r).abs_diff(wall) * 100 <= wall, "{r}");
    let at = |name: &str| {
        chrono::DateTime::parse_from_rfc3339(named(&ev, name)[0]["at"].as_str().expect("at"))
            .expect("rfc3339")
            .timestamp_millis()
    };
    let from_events = u64::try_from(at("run_finished") - at("run_started")).expect("ms");
    assert!(
        wall.abs_diff(from_events) * 100 <= from_events.max(100),
        "{wall} vs {from_events}"
    );
    let elapsed = named(&ev, "run_finished")[0]["summary"]["elapsed_ms"]
        .as_u64()
        .expect("elapsed");
    assert!(
        wall.abs_diff(elapsed) <= elapsed / 100 + 100,
        "{wall} vs elapsed {elapsed}"
    );
    assert!(n(r, "agent_ms") > 0, "{r}");
    let overhead = r["overhead_pct"].as_f64().expect("pct");
    assert!(
        (overhead - n(r, "orch_ms") as f64 * 100.0 / wall as f64).abs() < 0.1,
        "{r}"
    );
    // Per plan: a's check and its retry's backoff (as the event said) are in its own split.
    for plan in ["a", "b"] {
        let p = &r["plans"][plan];
        assert!(
            parts(p).abs_diff(n(p, "wall_ms")) * 100 <= n(p, "wall_ms"),
            "{p}"
        );
    }
    let a = &r["plans"]["a"];
    assert!(n(a, "check_ms") > 0, "{a}");
    let retry = named(&ev, "task_failed")[0]["retry_in_ms"]
        .as_u64()
        .expect("retry");
    assert_eq!(n(a, "backoff_ms"), retry, "{a}");
    assert_eq!(n(&r["kinds"]["task"], "attempts"), 4, "{r}");

    // The text says the same; a run that is not there is an error.
    let (code, out, err) = repo.run(&["history", "--profile", "last"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("run 1 started"), "{out}");
    assert!(out.contains("orchestration overhead"), "{out}");
    assert!(out.contains("plan a"), "{out}");
    for bad in ["2", "0", "x"] {
        let (code, _, err) = repo.run(&["history", "--profile", bad]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("holds 1 run"), "{err}");
    }
}

/// A repository whose plan `a` is run by `program` (a script, named as the client it stands
/// for) that records its telemetry variables in `otel-env.txt`, then runs the network probe
/// (tests/fixtures/agents/net_probe.py) at `s`; `report = "exit"`.
fn client_probe_repo(s: &Servers, dir: &Path, program: &str) -> Repo {
    let script = dir.join(program);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             case \"$1\" in --version) echo '2.1.330 (Claude Code)'; exit 0;; --help) echo '-p, --print --allowedTools'; exit 0;; esac\n\
             env | grep -iE '^(OTEL_|CLAUDE_CODE_ENABLE_TELEMETRY|CLAUDE_CODE_ENHANCED_TELEMETRY_BETA|TRACEPARENT)' | sort > otel-env.txt\n\
             exec {}\n",
            probe_argv(s, &[]).join(" ")
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/a.md", &one_task("A", "Probe the network"));
    let command = toml_array(&[
        script.to_str().expect("utf8"),
        "-p",
        "{{ prompt }}",
        "--allowedTools",
        "Bash({{ orch }} *)",
    ]);
    repo.manifest(&command, "report = \"exit\"", "retries = 0", &[("a", "")]);
    repo.commit_all("plans");
    repo
}

/// When the run exports, a client whose own export orch turns on (Claude Code: a program named
/// `claude`) gets its variables, naming the run's collector and none of its credentials (headers
/// of any signal in any case, a client key, the user information of an address), and its
/// confined network reaches that collector's `host:port`, directly and through orch's proxy,
/// and nothing more (another port, another loopback address, another name, a daemon of its);
/// a program orch does not know, or any client of a run that does not export, is not let
/// through to it. Sandbox off and on (the network's rules are orch's either way).
#[test]
fn only_a_client_that_exports_reaches_the_collector_and_nothing_more() {
    for sandbox in ["off", "on"] {
        if sandbox == "on" && !orch::sandbox::supported() {
            continue;
        }
        for (program, exports) in [("claude", true), ("probe", true), ("claude", false)] {
            let reaches = program == "claude" && exports;
            let what = format!("sandbox {sandbox}, `{program}`, exporting: {exports}");
            // The collector: an HTTP server on loopback (the probe's allowed one).
            let s = servers();
            let dir = tempfile::tempdir().expect("tmp");
            let repo = client_probe_repo(&s, dir.path(), program);
            let mut cmd = repo.orch(&["up", "--json", "a"]);
            cmd.env("ORCH_SANDBOX", sandbox);
            if exports {
                // The collector's key in the address too (its user information, its query,
                // its fragment), and in every other place the standard (or a lower-case
                // spelling) puts a credential.
                cmd.env(
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    format!(
                        "http://team:S3CRET@{}/?api_key=S3CRET#S3CRET",
                        s.allowed.addr
                    ),
                )
                .env("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret")
                .env("OTEL_EXPORTER_OTLP_PROFILES_HEADERS", "api-key=secret")
                .env("otel_exporter_otlp_headers", "api-key=secret")
                .env("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/keys/secret.pem")
                .env(
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT_X",
                    "http://u:S3CRET@h:1/v1/traces?key=S3CRET",
                );
            }
            let (code, out, err) = repo.run_cmd(&mut cmd);
            assert_eq!(code, 0, "{what}\n{out}\n{err}");
            let ev = events(&out);
            let started = ev
                .iter()
                .find(|e| e["event"] == "run_started")
                .expect("run_started");
            assert_eq!(started["network"], "confined", "{what}: {started}");
            let got = parse_results(&repo.git(&["show", "plan/a:results.txt"]));
            for name in [
                "direct_allowed",
                "proxy_connect_allowed",
                "proxy_plain_allowed",
            ] {
                assert_eq!(
                    got.get(name).map(|r| r.0),
                    Some(reaches),
                    "{what}: {name}: {got:?}"
                );
            }
            for name in DENIED {
                assert_eq!(
                    got.get(name).map(|r| r.0),
                    Some(false),
                    "{what}: {name}: {got:?}"
                );
            }
            let env = repo.git(&["show", "plan/a:otel-env.txt"]);
            let collector = format!("http://{}", s.allowed.addr);
            if reaches {
                for line in [
                    "CLAUDE_CODE_ENABLE_TELEMETRY=1".to_string(),
                    "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1".to_string(),
                    "OTEL_TRACES_EXPORTER=otlp".to_string(),
                    "OTEL_METRICS_EXPORTER=otlp".to_string(),
                    "OTEL_LOGS_EXPORTER=otlp".to_string(),
                    format!("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT={collector}/v1/traces"),
                    format!("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT={collector}/v1/logs"),
                ] {
                    assert!(env.lines().any(|l| l == line), "{what}: {line}\n{env}");
                }
            } else {
                assert!(
                    !env.contains("CLAUDE_CODE_ENABLE_TELEMETRY"),
                    "{what}\n{env}"
                );
                assert!(!env.contains("_EXPORTER=otlp"), "{what}\n{env}");
            }
            let lower = env.to_lowercase();
            assert!(
                !lower.contains("headers")
                    && !lower.contains("secret")
                    && !lower.contains("client_key"),
                "{what}: the collector's key stays with orch\n{env}"
            );
        }
    }
}

/// The file a collector's client key is in (`OTEL_EXPORTER_OTLP_CLIENT_KEY`, a signal's, in any
/// case of its name) is not readable by a confined agent, whatever `sandbox_deny_read` says; a
/// file beside it is (red team 11 read the key through the path its variable named).
#[test]
fn a_collectors_client_key_file_is_not_readable_by_a_confined_agent() {
    if !orch::sandbox::supported() {
        return;
    }
    let keys = tempfile::tempdir().expect("tmp");
    let key = keys.path().join("client.key");
    let other = keys.path().join("ca.pem");
    std::fs::write(&key, "PRIVATE-S3CRET\n").expect("key");
    std::fs::write(&other, "PUBLIC\n").expect("ca");
    for (var, deny) in [
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", ""),
        (
            "otel_exporter_otlp_traces_client_key",
            "sandbox_deny_read = [\"~/.ssh\"]",
        ),
    ] {
        let repo = Repo::bare_minimum();
        repo.write("docs/plans/a.md", &one_task("A", "Read"));
        let script = format!(
            "cat '{}' > got.txt 2>&1; cat '{}' >> got.txt 2>&1; true",
            key.display(),
            other.display()
        );
        repo.manifest(
            &toml_array(&["sh", "-c", &script]),
            &format!("report = \"exit\"\nnetwork = \"none\"\n{deny}"),
            "retries = 0",
            &[("a", "")],
        );
        repo.commit_all("plans");
        let (code, out, err) = repo.run_cmd(
            repo.orch(&["up", "--json", "a"])
                .env("ORCH_SANDBOX", "on")
                .env(var, &key),
        );
        assert_eq!(code, 0, "{var}\n{out}\n{err}");
        let got = repo.git(&["show", "plan/a:got.txt"]);
        assert!(!got.contains("S3CRET"), "{var}: {got}");
        assert!(got.contains("PUBLIC"), "{var}: {got}");
    }
}
