//! The agents' own telemetry, end to end (docs/src/telemetry.md, "The agents' own spans"): an
//! `orch up` that exports to a real OTLP receiver on loopback (tests/support/otlp.rs) runs a
//! one-task plan through the real, pinned Claude Code CLI (`agent = "claude"`, nothing else
//! configured for telemetry) against the fake model API, confined (`sandbox = "on"`, the
//! network confined: the client's export passes orch's network rules, which gain the
//! collector's `host:port` and nothing else). Claude Code's own spans reach the receiver in
//! the run's trace, its interaction span a child of orch's `attempt` span; its metrics and
//! logs carry the attempt's `orch.plan`, `orch.task` and `orch.attempt` from
//! `OTEL_RESOURCE_ATTRIBUTES`. The same for the real Codex CLI (its `[otel]` table given by
//! orch as `-c` overrides): its spans of the run are under the attempt's. The real Gemini CLI
//! and Qwen Code, confined, export their own spans, metrics and logs (OTLP/HTTP in JSON) with
//! the attempt's resource attributes, in traces of their own (neither reads `TRACEPARENT`);
//! with the run not exporting, or the user's own switch off, they send nothing.
//!
//! `ORCH_TEST_CLIS=DIR` names the installation (tests/agents_real.rs); without it this skips,
//! unless `ORCH_REQUIRE_AGENT_CLIS=1`.

use crate::support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use support::clis::{RUN_TIMEOUT, client_env, clis_with, logs};
use support::fake_api::{Behaviour, FakeApi};
use support::otlp::{Receiver, attr, hex};
use support::{Repo, code_out_err, events, read_status, task_in, wait_within};

/// How long after the run the client's last batches may still arrive (it flushes as it exits,
/// before orch sees it end, so they are normally there already).
const SETTLE: Duration = Duration::from_secs(10);

fn has_attrs(attrs: &[KeyValue], pairs: &[(&str, &str)]) -> bool {
    pairs
        .iter()
        .all(|(k, v)| attr(attrs, k).as_deref() == Some(*v))
}

/// The spans the receiver holds once a client's (those whose name `theirs` says) arrived, or
/// after [`SETTLE`]: all of them, and the client's.
fn client_spans(receiver: &Receiver, theirs: impl Fn(&str) -> bool) -> (Vec<Span>, Vec<Span>) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let spans = receiver.spans();
        let client: Vec<Span> = spans.iter().filter(|s| theirs(&s.name)).cloned().collect();
        if !client.is_empty() || Instant::now() >= deadline {
            return (spans, client);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// orch's one attempt span of task 1.1 among `spans`.
fn attempt_span<'a>(spans: &'a [Span], context: &dyn Fn() -> String) -> &'a Span {
    let attempt: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "attempt" && has_attrs(&s.attributes, &[("orch.task", "1.1")]))
        .collect();
    assert_eq!(attempt.len(), 1, "orch's attempt span: {}", context());
    attempt[0]
}

#[test]
fn claude_code_confined_exports_its_own_spans_under_the_attempt_span() {
    if !orch::sandbox::supported() {
        eprintln!("skipped: this kernel does not support Landlock");
        return;
    }
    let Some(clis) = clis_with("claude") else {
        return;
    };
    let api = FakeApi::start(Behaviour::Normal);
    let receiver = Receiver::http();
    let repo = Repo::builder().timeout(RUN_TIMEOUT).build();
    repo.write(
        "docs/plans/one.md",
        "# One file\n\n## Phase 1: Files\n- [ ] 1.1 Create `alpha.txt`\n",
    );
    repo.write(
        "plans.toml",
        "[defaults]\nagent = \"claude\"\nretries = 0\nsandbox = \"on\"\n\n\
         [[plan]]\nname = \"one\"\nfile = \"docs/plans/one.md\"\n",
    );
    repo.commit_all("plans");
    let mut cmd = repo.orch(&["up", "--json"]);
    client_env(&mut cmd, &clis, &api, repo.home());
    cmd.env_remove("ORCH_SANDBOX")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint());
    let (code, out, err) = code_out_err(&wait_within(
        cmd.spawn().expect("spawn orch up"),
        RUN_TIMEOUT,
        "orch up",
    ));
    let context = || {
        format!(
            "exit {code}\nstdout:\n{out}\nstderr:\n{err}\nagent logs:\n{}\nreceiver: bad {:?}, resources {:?}",
            logs(&repo),
            receiver.bad(),
            receiver
                .resources()
                .iter()
                .map(|(s, a)| format!("{s}: {:?}", attr(a, "service.name")))
                .collect::<Vec<_>>()
        )
    };
    assert_eq!(code, 0, "{}", context());
    // Confined, network included: the export passed orch's rules, none refused.
    let ev = events(&out);
    let started = ev
        .iter()
        .find(|e| e["event"] == "run_started")
        .unwrap_or_else(|| panic!("no run_started: {}", context()));
    assert_eq!(started["sandbox"], "on", "{}", context());
    assert_eq!(started["network"], "confined", "{}", context());
    let status = read_status(&repo.root().join(".orch/state/one/status.json"))
        .unwrap_or_else(|| panic!("no status file: {}", context()));
    assert_eq!(
        task_in(&status, "1.1")["status"],
        "completed",
        "{}",
        context()
    );
    let text = repo.git(&["show", "plan/one:alpha.txt"]);
    assert_eq!(text.trim_end(), "alpha.txt written by task 1.1");
    let (code, sj, serr) = repo.run(&["status", "--json", "--plan", "one"]);
    assert_eq!(code, 0, "{serr}");
    let sj: serde_json::Value = serde_json::from_str(&sj).expect("status json");
    assert_eq!(sj["network"], "confined", "{sj}");
    assert_eq!(
        task_in(&sj, "1.1")["network_refused"],
        0,
        "no connection of the agent was refused: {sj}\n{}",
        context()
    );

    // Claude Code's spans arrive (it flushed as it exited; wait a little for the receiver's
    // threads), in the run's trace.
    let (spans, ours) = client_spans(&receiver, |name| name.starts_with("claude_code."));
    let attempt = attempt_span(&spans, &context);
    assert!(
        !ours.is_empty(),
        "Claude Code exported no span: {:?}\n{}",
        spans.iter().map(|s| &s.name).collect::<BTreeSet<_>>(),
        context()
    );
    for s in &ours {
        assert_eq!(
            hex(&s.trace_id),
            hex(&attempt.trace_id),
            "{}: in the run's trace",
            s.name
        );
    }
    // Its interaction (the headless run's one turn) is a child of the attempt's span.
    let interactions: Vec<_> = ours
        .iter()
        .filter(|s| s.name == "claude_code.interaction")
        .collect();
    assert!(
        !interactions.is_empty(),
        "{:?}",
        ours.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    for i in &interactions {
        assert_eq!(
            hex(&i.parent_span_id),
            hex(&attempt.span_id),
            "the interaction's parent is orch's attempt span"
        );
    }
    // Its model calls (to the fake API) and its tool call (`orch task done`) are under its
    // interaction.
    let interaction_ids: BTreeSet<String> = interactions.iter().map(|i| hex(&i.span_id)).collect();
    for name in ["claude_code.llm_request", "claude_code.tool"] {
        let found: Vec<_> = ours.iter().filter(|s| s.name == name).collect();
        assert!(
            !found.is_empty(),
            "no {name}: {:?}",
            ours.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        for s in found {
            assert!(
                interaction_ids.contains(&hex(&s.parent_span_id)),
                "{name} is under the interaction"
            );
        }
    }
    // Its other spans hang under its own (none is a root of its own, none under another
    // attempt).
    let ids: BTreeSet<String> = spans.iter().map(|s| hex(&s.span_id)).collect();
    for s in &ours {
        assert!(
            ids.contains(&hex(&s.parent_span_id)),
            "{}: parent {} is a span of the trace",
            s.name,
            hex(&s.parent_span_id)
        );
    }

    // Its resource, for every signal it sent, names the attempt.
    let theirs: Vec<(String, Vec<KeyValue>)> = receiver
        .resources()
        .into_iter()
        .filter(|(_, a)| attr(a, "service.name").as_deref() == Some("claude-code"))
        .collect();
    let signals: BTreeSet<&str> = theirs.iter().map(|(s, _)| s.as_str()).collect();
    for want in ["traces", "metrics", "logs"] {
        assert!(
            signals.contains(want),
            "Claude Code sent no {want}: {signals:?}\n{}",
            context()
        );
    }
    for (signal, a) in &theirs {
        assert!(
            has_attrs(
                a,
                &[
                    ("orch.plan", "one"),
                    ("orch.task", "1.1"),
                    ("orch.attempt", "1")
                ]
            ),
            "{signal}: {a:?}"
        );
    }
    assert!(!receiver.logs().is_empty(), "{}", context());
    // orch's own resource is still orch's.
    assert!(
        receiver
            .resources()
            .iter()
            .any(|(_, a)| attr(a, "service.name").as_deref() == Some("orch"))
    );
}

/// The same through the real, pinned Codex CLI (`agent = "codex"`, its endpoint in its
/// configuration as a user has it, tests/support/fake_api/env.rs), unconfined: orch gives it
/// its `[otel]` table as `-c` overrides after `exec`, and its spans reach the receiver in the
/// run's trace, under orch's attempt span.
#[test]
fn codex_exports_its_own_spans_under_the_attempt_span() {
    let Some(clis) = clis_with("codex") else {
        return;
    };
    let api = FakeApi::start(Behaviour::Normal);
    let receiver = Receiver::http();
    let repo = Repo::builder().timeout(RUN_TIMEOUT).build();
    repo.write(
        "docs/plans/one.md",
        "# One file\n\n## Phase 1: Files\n- [ ] 1.1 Create `alpha.txt`\n",
    );
    repo.write(
        "plans.toml",
        "[defaults]\nagent = \"codex\"\nretries = 0\n\n\
         [[plan]]\nname = \"one\"\nfile = \"docs/plans/one.md\"\n",
    );
    repo.commit_all("plans");
    let mut cmd = repo.orch(&["up", "--json"]);
    client_env(&mut cmd, &clis, &api, repo.home());
    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint());
    let (code, out, err) = code_out_err(&wait_within(
        cmd.spawn().expect("spawn orch up"),
        RUN_TIMEOUT,
        "orch up",
    ));
    let context = || {
        format!(
            "exit {code}\nstdout:\n{out}\nstderr:\n{err}\nagent logs:\n{}\nreceiver: bad {:?}",
            logs(&repo),
            receiver.bad(),
        )
    };
    assert_eq!(code, 0, "{}", context());
    let text = repo.git(&["show", "plan/one:alpha.txt"]);
    assert_eq!(text.trim_end(), "alpha.txt written by task 1.1");
    let orchs = [
        "run",
        "plan",
        "plan agent",
        "task",
        "attempt",
        "verify",
        "check",
        "commit",
        "merge",
        "resolve",
    ];
    let (spans, theirs) = client_spans(&receiver, |name| !orchs.contains(&name));
    let attempt = attempt_span(&spans, &context);
    assert!(
        !theirs.is_empty(),
        "Codex exported no span; resources: {:?}\n{}",
        receiver
            .resources()
            .iter()
            .map(|(s, a)| format!("{s}: {:?}", attr(a, "service.name")))
            .collect::<Vec<_>>(),
        context()
    );
    // Its spans of the run (its startup's, `auth` and the like, are traces of their own):
    // under the attempt's span, in the run's trace.
    let in_run: Vec<_> = theirs
        .iter()
        .filter(|s| hex(&s.trace_id) == hex(&attempt.trace_id))
        .collect();
    let names = |v: &[&opentelemetry_proto::tonic::trace::v1::Span]| {
        v.iter()
            .map(|s| format!("{} <- {}", s.name, hex(&s.parent_span_id)))
            .collect::<Vec<_>>()
    };
    let roots: Vec<_> = in_run
        .iter()
        .filter(|s| hex(&s.parent_span_id) == hex(&attempt.span_id))
        .collect();
    assert!(
        !roots.is_empty(),
        "one of Codex's spans is a child of the attempt's: {:?}",
        names(&in_run)
    );
    let ids: BTreeSet<String> = spans.iter().map(|s| hex(&s.span_id)).collect();
    for s in &in_run {
        assert!(ids.contains(&hex(&s.parent_span_id)), "{}", s.name);
    }
}

/// A repository with plan `one` (task 1.1 writes `alpha.txt`) run by the preset `agent`,
/// sandboxed, with `extra` in `[defaults]`.
fn one_task_repo(agent: &str, extra: &str) -> Repo {
    let repo = Repo::builder().timeout(RUN_TIMEOUT).build();
    repo.write(
        "docs/plans/one.md",
        "# One file\n\n## Phase 1: Files\n- [ ] 1.1 Create `alpha.txt`\n",
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"{agent}\"\nretries = 0\nsandbox = \"on\"\n{extra}\n\
             [[plan]]\nname = \"one\"\nfile = \"docs/plans/one.md\"\n"
        ),
    );
    repo.commit_all("plans");
    repo
}

/// Runs `orch up --json` in `repo` through the real CLIs at the fake API, with `env` added;
/// checks the task completed (its file on the plan's branch) with no connection of the agent
/// refused; returns the events and a failure context.
fn up_completes(
    repo: &Repo,
    clis: &std::path::Path,
    api: &FakeApi,
    env: &[(&str, String)],
    network: &str,
) -> (Vec<serde_json::Value>, String) {
    let mut cmd = repo.orch(&["up", "--json"]);
    client_env(&mut cmd, clis, api, repo.home());
    // Qwen Code's usage statistics off (their own endpoint, not OTLP, which the confined
    // network refuses), as a user who does not want them sets it (Gemini CLI's are off in
    // `client_env`).
    cmd.env_remove("ORCH_SANDBOX")
        .env("QWEN_USAGE_STATISTICS_ENABLED", "false");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (code, out, err) = code_out_err(&wait_within(
        cmd.spawn().expect("spawn orch up"),
        RUN_TIMEOUT,
        "orch up",
    ));
    let context = format!(
        "exit {code}\nstdout:\n{out}\nstderr:\n{err}\nagent logs:\n{}",
        logs(repo)
    );
    assert_eq!(code, 0, "{context}");
    let ev = events(&out);
    let started = ev
        .iter()
        .find(|e| e["event"] == "run_started")
        .unwrap_or_else(|| panic!("no run_started: {context}"));
    assert_eq!(started["sandbox"], "on", "{context}");
    assert_eq!(started["network"], network, "{context}");
    let text = repo.git(&["show", "plan/one:alpha.txt"]);
    assert_eq!(
        text.trim_end(),
        "alpha.txt written by task 1.1",
        "{context}"
    );
    let (code, sj, serr) = repo.run(&["status", "--json", "--plan", "one"]);
    assert_eq!(code, 0, "{serr}");
    let sj: serde_json::Value = serde_json::from_str(&sj).expect("status json");
    assert_eq!(task_in(&sj, "1.1")["status"], "completed", "{sj}");
    if network == "confined" {
        assert_eq!(
            task_in(&sj, "1.1")["network_refused"],
            0,
            "no connection of the agent was refused: {sj}\n{context}"
        );
    }
    (ev, context)
}

/// The resources (signal, attributes) of `service`'s batches once each of `want`'s signals
/// arrived, or after [`SETTLE`].
fn service_resources(
    receiver: &Receiver,
    service: &str,
    want: &[&str],
) -> Vec<(String, Vec<KeyValue>)> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let theirs: Vec<_> = receiver
            .resources()
            .into_iter()
            .filter(|(_, a)| attr(a, "service.name").as_deref() == Some(service))
            .collect();
        let all = want.iter().all(|w| theirs.iter().any(|(s, _)| s == w));
        if all || Instant::now() >= deadline {
            return theirs;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Gemini CLI and Qwen Code, confined (the export passes orch's network rules, which gain the
/// collector's `host:port`): orch turns on their own export when the run exports, and their
/// traces, metrics and logs reach the receiver, each batch's resource naming the attempt
/// (`orch.plan`, `orch.task`, `orch.attempt` from `OTEL_RESOURCE_ATTRIBUTES`). Neither reads
/// `TRACEPARENT`: their spans are in traces of their own, not the run's, and the resource is
/// what ties them to orch's attempt span (the book says so).
fn fork_exports_tied_by_its_resource(agent: &str, service: &str, spans: &[&str]) {
    if !orch::sandbox::supported() {
        eprintln!("skipped: this kernel does not support Landlock");
        return;
    }
    let Some(clis) = clis_with(agent) else {
        return;
    };
    let api = FakeApi::start(Behaviour::Normal);
    let receiver = Receiver::http();
    let repo = one_task_repo(agent, "");
    let (_, context) = up_completes(
        &repo,
        &clis,
        &api,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())],
        "confined",
    );
    let context = || {
        format!(
            "{context}\nreceiver: bad {:?}, resources {:?}, spans {:?}",
            receiver.bad(),
            receiver
                .resources()
                .iter()
                .map(|(s, a)| format!("{s}: {a:?}"))
                .collect::<Vec<_>>(),
            receiver
                .spans()
                .iter()
                .map(|s| &s.name)
                .collect::<BTreeSet<_>>()
        )
    };
    let theirs = service_resources(&receiver, service, &["traces", "metrics", "logs"]);
    let signals: BTreeSet<&str> = theirs.iter().map(|(s, _)| s.as_str()).collect();
    for want in ["traces", "metrics", "logs"] {
        assert!(
            signals.contains(want),
            "{agent} sent no {want}: {signals:?}\n{}",
            context()
        );
    }
    for (signal, a) in &theirs {
        assert!(
            has_attrs(
                a,
                &[
                    ("orch.plan", "one"),
                    ("orch.task", "1.1"),
                    ("orch.attempt", "1")
                ]
            ),
            "{signal}: {a:?}"
        );
    }
    assert!(receiver.bad().is_empty(), "{}", context());
    // Its spans: the model call and the tool call (`orch task done`) among them, in traces of
    // their own (it does not continue TRACEPARENT).
    let all = receiver.spans();
    let attempt = attempt_span(&all, &context);
    let ours: Vec<Span> = receiver
        .resource_spans()
        .into_iter()
        .filter(|(a, _)| attr(a, "service.name").as_deref() == Some(service))
        .map(|(_, s)| s)
        .collect();
    let names: BTreeSet<&str> = ours.iter().map(|s| s.name.as_str()).collect();
    for want in spans {
        assert!(names.contains(want), "no {want} span: {names:?}");
    }
    for s in &ours {
        assert_ne!(
            hex(&s.trace_id),
            hex(&attempt.trace_id),
            "{}: {agent} reads no TRACEPARENT (if it now does, the book and clients.rs say otherwise)",
            s.name
        );
    }
    // orch's own resource is still orch's, and names no attempt.
    assert!(
        receiver
            .resources()
            .iter()
            .filter(|(_, a)| attr(a, "service.name").as_deref() == Some("orch"))
            .all(|(_, a)| attr(a, "orch.task").is_none()),
        "{}",
        context()
    );
}

/// With the run not exporting, the client exports nothing, even with the receiver's address in
/// its own variables (`GEMINI_TELEMETRY_OTLP_ENDPOINT`, a user's that turn nothing on) and the
/// network open; and with the run exporting but the user's own switch off
/// (`GEMINI_TELEMETRY_ENABLED=false` in `orch up`'s environment) orch's spans arrive and none
/// of the client's.
fn fork_sends_nothing_unless_the_run_exports(agent: &str, prefix: &str, service: &str) {
    if !orch::sandbox::supported() {
        eprintln!("skipped: this kernel does not support Landlock");
        return;
    }
    let Some(clis) = clis_with(agent) else {
        return;
    };
    let api = FakeApi::start(Behaviour::Normal);
    // Export off: the network open, the client's own address variables naming the receiver.
    let receiver = Receiver::http();
    let repo = one_task_repo(agent, "network = \"open\"\n");
    let (_, context) = up_completes(
        &repo,
        &clis,
        &api,
        &[
            (
                &format!("{prefix}_TELEMETRY_OTLP_ENDPOINT"),
                receiver.endpoint(),
            ),
            (&format!("{prefix}_TELEMETRY_OTLP_PROTOCOL"), "http".into()),
        ],
        "open",
    );
    assert!(
        receiver.resources().is_empty() && receiver.bad().is_empty(),
        "export off: {:?} {:?}\n{context}",
        receiver.resources(),
        receiver.bad()
    );
    // Export on, the user's own switch off: orch's spans, none of the client's.
    let receiver = Receiver::http();
    let repo = one_task_repo(agent, "");
    let (_, context) = up_completes(
        &repo,
        &clis,
        &api,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            (&format!("{prefix}_TELEMETRY_ENABLED"), "false".into()),
        ],
        "confined",
    );
    let all = receiver.spans();
    attempt_span(&all, &|| context.clone());
    let services: BTreeSet<String> = receiver
        .resources()
        .iter()
        .filter_map(|(_, a)| attr(a, "service.name"))
        .collect();
    assert!(!services.contains(service), "{services:?}\n{context}");
    assert_eq!(services, BTreeSet::from(["orch".to_string()]), "{context}");
}

#[test]
fn gemini_confined_exports_its_own_telemetry_tied_to_the_attempt_by_its_resource() {
    fork_exports_tied_by_its_resource("gemini", "gemini-cli", &["llm_call", "tool_call"]);
}

#[test]
fn qwen_confined_exports_its_own_telemetry_tied_to_the_attempt_by_its_resource() {
    fork_exports_tied_by_its_resource(
        "qwen",
        "qwen-code",
        &[
            "qwen-code.interaction",
            "qwen-code.llm_request",
            "qwen-code.tool",
        ],
    );
}

#[test]
fn gemini_sends_nothing_unless_the_run_exports() {
    fork_sends_nothing_unless_the_run_exports("gemini", "GEMINI", "gemini-cli");
}

#[test]
fn qwen_sends_nothing_unless_the_run_exports() {
    fork_sends_nothing_unless_the_run_exports("qwen", "QWEN", "qwen-code");
}
