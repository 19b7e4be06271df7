use super::*;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .expect("time")
}

#[test]
fn claude_success_with_usage_and_cost() {
    let text = r#"{"type":"system","subtype":"init","session_id":"s"}
{"type":"assistant","message":{"content":[{"type":"text","text":"Done."}]}}
{"type":"result","subtype":"success","is_error":false,"result":"Done.","total_cost_usd":0.0421,"usage":{"input_tokens":1200,"output_tokens":345,"cache_creation_input_tokens":100,"cache_read_input_tokens":5000}}"#;
    let out = parse(text, now());
    assert_eq!(
        out.usage,
        Some(Usage {
            input_tokens: 1200,
            output_tokens: 345,
            cache_read_tokens: 5000,
            cache_write_tokens: 100,
            cost_micro_usd: Some(42_100),
        })
    );
    assert_eq!(out.error, None);
    assert_eq!(out.result.as_deref(), Some("Done."));
    assert_eq!(out.class, Class::Ordinary);
    assert_eq!(out.events, 3);
    assert_eq!(out.tail, "");
}

#[test]
fn claude_api_errors_are_classified() {
    let auth = r#"{"type":"result","subtype":"success","is_error":true,"result":"Invalid API key · Please run /login","total_cost_usd":0,"usage":{"input_tokens":0,"output_tokens":0}}"#;
    let out = parse(auth, now());
    assert_eq!(
        out.error.as_deref(),
        Some("Invalid API key · Please run /login")
    );
    assert_eq!(out.class, Class::Fatal(Fatal::Auth));

    let http = r#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: 401 {\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"invalid x-api-key\"}}"}"#;
    assert_eq!(parse(http, now()).class, Class::Fatal(Fatal::Auth));

    let limit = r#"{"type":"result","subtype":"success","is_error":true,"result":"Claude AI usage limit reached|1795428060"}"#;
    // 1795428060 = 2026-11-23T10:01:00Z
    assert_eq!(
        parse(limit, now()).class,
        Class::Limit(Some(Duration::from_secs(60)))
    );

    let max_turns = r#"{"type":"result","subtype":"error_max_turns","is_error":true,"errors":["reached max turns (3)"]}"#;
    let out = parse(max_turns, now());
    assert_eq!(out.error.as_deref(), Some("reached max turns (3)"));
    assert_eq!(out.class, Class::Ordinary);
}

#[test]
fn claude_assistant_error_hint() {
    let text = r#"{"type":"assistant","message":{"content":[]},"error":"rate_limit"}
{"type":"result","subtype":"success","is_error":true,"result":"Please try again later"}"#;
    assert_eq!(parse(text, now()).class, Class::Limit(None));
}

#[test]
fn codex_turns_are_summed_and_errors_read() {
    let text = r#"{"type":"thread.started","thread_id":"t"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"i","type":"agent_message","text":"ok"}}
{"type":"turn.completed","usage":{"input_tokens":1200,"cached_input_tokens":200,"output_tokens":345}}
{"type":"turn.completed","usage":{"input_tokens":800,"cached_input_tokens":0,"output_tokens":55}}"#;
    let out = parse(text, now());
    assert_eq!(
        out.usage,
        Some(Usage {
            input_tokens: 1800,
            output_tokens: 400,
            cache_read_tokens: 200,
            cache_write_tokens: 0,
            cost_micro_usd: None,
        })
    );
    assert_eq!(out.usage.map(|u| u.tokens()), Some(2400));

    let failed = r#"{"type":"turn.started"}
{"type":"error","message":"stream error: exceeded retry limit, last status: 429 Too Many Requests; try again in 2s"}
{"type":"turn.failed","error":{"message":"exceeded retry limit, last status: 429 Too Many Requests, retry after 2 seconds"}}"#;
    let out = parse(failed, now());
    assert_eq!(
        out.error.as_deref(),
        Some("exceeded retry limit, last status: 429 Too Many Requests, retry after 2 seconds")
    );
    assert_eq!(out.class, Class::Limit(Some(Duration::from_secs(2))));

    let auth = r#"{"type":"error","message":"unexpected status 401 Unauthorized: Incorrect API key provided"}"#;
    assert_eq!(parse(auth, now()).class, Class::Fatal(Fatal::Auth));
}

#[test]
fn plain_text_keeps_the_last_lines_without_orchs() {
    let mut text =
        String::from("=== orch: attempt 2 started at 2026-11-23T10:00:00Z: sh a.sh ===\n");
    for i in 0..20 {
        text.push_str(&format!("line {i}\n"));
    }
    text.push_str("=== orch: attempt 2 ended at 2026-11-23T10:00:01Z: exit status 1 ===\n");
    let out = parse(&text, now());
    assert_eq!(out.events, 0);
    assert!(out.tail.starts_with("line 8\n"), "{}", out.tail);
    assert!(out.tail.ends_with("line 19"), "{}", out.tail);
    assert_eq!(out.cause().as_deref(), Some(out.tail.as_str()));
    assert_eq!(out.class, Class::Ordinary);
}

#[test]
fn rejected_flags_only_from_plain_output() {
    let text =
        "error: unexpected argument '--full-auto' found\n\nUsage: codex exec [OPTIONS] [PROMPT]\n";
    assert_eq!(parse(text, now()).class, Class::Fatal(Fatal::RejectedFlags));
    // A client that ran (JSON events) and then printed such a line: a tool's output.
    let ran = "{\"type\":\"turn.started\"}\nerror: unknown option --frobnicate\n";
    assert_eq!(parse(ran, now()).class, Class::Ordinary);
}

#[test]
fn a_long_plain_output_is_an_ordinary_failure() {
    let mut text = String::new();
    for i in 0..30 {
        text.push_str(&format!("test auth::login_{i} ... ok\n"));
    }
    text.push_str("error: not logged in: authentication_failed for user bob\n");
    assert_eq!(parse(&text, now()).class, Class::Ordinary);
    assert_eq!(
        parse("error: not logged in\n", now()).class,
        Class::Fatal(Fatal::Auth)
    );
}

#[test]
fn status_codes_need_an_error_word() {
    assert_eq!(
        classify("expected 401 rows, got 400", now()),
        Class::Ordinary
    );
    assert_eq!(classify("HTTP 429: slow down", now()), Class::Limit(None));
    assert_eq!(
        classify("added the rate limit middleware", now()),
        Class::Ordinary
    );
    assert_eq!(classify("error 4290", now()), Class::Ordinary);
    assert_eq!(classify("API error 401", now()), Class::Fatal(Fatal::Auth));
}

#[test]
fn reset_times() {
    let n = now();
    let cases = [
        ("rate limited; resets at 2026-11-23T10:00:02Z", Some(2)),
        (
            "429 Too Many Requests (reset: 2026-11-23T10:00:05.500+00:00)",
            Some(5),
        ),
        (
            "You've hit your usage limit. Try again in 2 hours 5 minutes.",
            Some(7500),
        ),
        ("usage limit reached, try again in 1h", Some(3600)),
        ("Retry-After: 30", Some(30)),
        ("rate limit; please try again later", None),
        ("limit resets at 2027-12-01T00:00:00Z", None),
    ];
    for (text, want) in cases {
        let got = reset_wait(text, n).map(|d| d.as_secs());
        assert_eq!(got, want, "{text}");
    }
    // A reset already past waits nothing.
    assert_eq!(
        reset_wait("resets at 2026-11-23T09:00:00Z", n),
        Some(Duration::ZERO)
    );
}

#[test]
fn read_attempt_reads_the_last_attempt_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("1.1.log");
    std::fs::write(
            &log,
            "=== orch: attempt 1 started at x: a ===\nInvalid API key\n=== orch: attempt 1 ended at y: exit status 1 ===\n\
             === orch: attempt 2 started at z: a ===\n=== orch: attempt 2 is slurm job 17 ===\n\
             {\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"ok\",\"total_cost_usd\":1.5}\n",
        )
        .expect("write");
    let out = read_attempt(&log, now());
    assert_eq!(out.class, Class::Ordinary);
    assert_eq!(out.usage.and_then(|u| u.cost_micro_usd), Some(1_500_000));
    assert_eq!(
        read_attempt(&dir.path().join("none.log"), now()),
        AgentOutput::default()
    );
}

/// What the real CLIs printed (tests/fixtures/clients, written by tests/agents_real_prints.rs).
fn fixture(client: &str, name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/clients")
        .join(client)
        .join(format!("{name}.jsonl"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The time the fixtures were written (their 429's reset is two minutes later).
fn fixture_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T07:50:25Z")
        .map(|t| t.with_timezone(&Utc))
        .expect("time")
}

#[test]
fn real_claude_output() {
    let n = fixture_now();
    let ok = parse(&fixture("claude", "success"), n);
    assert_eq!(ok.error, None);
    assert_eq!(ok.class, Class::Ordinary);
    let u = ok.usage.expect("usage");
    assert_eq!((u.input_tokens, u.output_tokens), (3600, 240));
    assert_eq!(u.cost_micro_usd, Some(19_200));
    assert_eq!(ok.tail, "", "every line is a known event");

    // A refusal: a successful run whose final message is the reason.
    let no = parse(&fixture("claude", "refusal"), n);
    assert_eq!(no.error, None);
    assert_eq!(no.class, Class::Ordinary);
    assert_eq!(
        no.cause().as_deref(),
        Some("I cannot do this: the task is unclear")
    );
    assert_eq!(no.usage.map(|u| u.tokens()), Some(1280));

    // HTTP 401: `is_error` with `subtype` "success" and `api_error_status` 401.
    let auth = parse(&fixture("claude", "unauthorized"), n);
    assert_eq!(auth.class, Class::Fatal(Fatal::Auth));
    assert_eq!(
        auth.cause().as_deref(),
        Some("Invalid API key · Fix external API key")
    );
    // Stopped while Claude Code retried the 401: its `api_retry` line says enough.
    let first_two: String = fixture("claude", "unauthorized")
        .lines()
        .take(2)
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(parse(&first_two, n).class, Class::Fatal(Fatal::Auth));

    // HTTP 429: the reset time is only in the message.
    let limit = parse(&fixture("claude", "rate_limited"), n);
    assert_eq!(limit.class, Class::Limit(Some(Duration::from_secs(120))));
    assert!(
        limit
            .cause()
            .is_some_and(|c| c.starts_with("API Error: Request rejected (429)")),
        "{limit:?}"
    );
}

#[test]
fn real_codex_output() {
    let n = fixture_now();
    let ok = parse(&fixture("codex", "success"), n);
    assert_eq!(ok.error, None);
    assert_eq!(ok.class, Class::Ordinary);
    let u = ok.usage.expect("usage");
    assert_eq!(
        (u.input_tokens, u.output_tokens, u.cost_micro_usd),
        (3600, 240, None)
    );
    assert_eq!(
        ok.result.as_deref(),
        Some("Task 1.1 is done: I wrote alpha.txt and reported it to orch.")
    );

    let no = parse(&fixture("codex", "refusal"), n);
    assert_eq!(no.class, Class::Ordinary);
    assert_eq!(
        no.cause().as_deref(),
        Some("I cannot do this: the task is unclear")
    );

    let auth = parse(&fixture("codex", "unauthorized"), n);
    assert_eq!(auth.class, Class::Fatal(Fatal::Auth));
    assert!(
        auth.cause()
            .is_some_and(|c| c.starts_with("unexpected status 401 Unauthorized")),
        "{auth:?}"
    );

    // "Try again at 7:49 AM.": a local clock time, the next one to come.
    let limit = parse(&fixture("codex", "rate_limited"), n);
    assert!(
        matches!(limit.class, Class::Limit(Some(d)) if d <= MAX_WAIT),
        "{limit:?}"
    );
    assert_eq!(
        limit.cause().as_deref(),
        Some("You’ve hit your usage limit. Try again at 7:49 AM.")
    );
}

#[test]
fn real_gemini_output() {
    let n = fixture_now();
    let ok = parse(&fixture("gemini", "success"), n);
    assert_eq!(ok.error, None);
    assert_eq!(ok.class, Class::Ordinary);
    // `stats`: four model calls (the router's rating and three turns) of 1200 in, 80 out.
    let u = ok.usage.expect("usage");
    assert_eq!(
        (u.input_tokens, u.output_tokens, u.cache_read_tokens),
        (4800, 320, 0)
    );
    assert_eq!((u.tokens(), u.cost_micro_usd), (5120, None));
    assert_eq!(
        ok.result.as_deref(),
        Some("Task 1.1 is done: I wrote alpha.txt and reported it to orch.")
    );
    assert_eq!(ok.tail, "", "every line is a known event");

    let no = parse(&fixture("gemini", "refusal"), n);
    assert_eq!(no.class, Class::Ordinary);
    assert_eq!(
        no.cause().as_deref(),
        Some("I cannot do this: the task is unclear")
    );
    assert_eq!(no.usage.map(|u| u.tokens()), Some(2560));

    // Cached input is part of `input_tokens`; deltas of one answer join, a tool call starts a
    // new one; an error result gives its message.
    let text = r#"{"type":"message","role":"assistant","content":"I will ","delta":true}
{"type":"message","role":"assistant","content":"write it.","delta":true}
{"type":"tool_use","tool_name":"write_file","tool_id":"t1","parameters":{}}
{"type":"tool_result","tool_id":"t1","status":"success"}
{"type":"message","role":"assistant","content":"Stopped: ","delta":true}
{"type":"message","role":"assistant","content":"quota.","delta":true}
{"type":"result","status":"error","error":{"type":"Error","message":"quota exceeded"},"stats":{"total_tokens":1100,"input_tokens":1000,"output_tokens":100,"cached":400,"input":600}}
"#;
    let e = parse(text, n);
    assert_eq!(e.result.as_deref(), Some("Stopped: quota."));
    assert_eq!(e.error.as_deref(), Some("quota exceeded"));
    let u = e.usage.expect("usage");
    assert_eq!(
        (
            u.input_tokens,
            u.cache_read_tokens,
            u.output_tokens,
            u.tokens()
        ),
        (600, 400, 100, 1100)
    );
}

#[test]
fn clock_times_wait_until_the_end_of_the_named_minute() {
    let at = |s: &str| DateTime::parse_from_rfc3339(s).expect("time");
    let secs = |text: &str, now: &str| {
        let (h, m) = clock_time(text)?;
        clock_wait(h, m, at(now)).map(|d| d.as_secs())
    };
    // Later today; within the named minute; just past; long past (tomorrow's); 24-hour.
    assert_eq!(secs(" at 7:49 am.", "2026-11-23T07:48:30-05:00"), Some(90));
    assert_eq!(secs(" at 7:49 AM.", "2026-11-23T07:49:58+01:00"), Some(2));
    assert_eq!(secs(" at 7:49 AM", "2026-11-23T07:52:00+00:00"), Some(0));
    assert_eq!(
        secs(" at 7:49 PM", "2026-11-23T20:00:00+00:00"),
        Some(24 * 3600 - 11 * 60 + 60)
    );
    assert_eq!(secs(" at 12:05 a.m.", "2026-11-23T23:59:00Z"), Some(7 * 60));
    assert_eq!(secs(" at 19:49", "2026-11-23T19:00:00Z"), Some(50 * 60));
    for bad in [
        " at noon",
        " at 13:00 pm",
        " at 7:5 am",
        " 7:49 am",
        " at 25:00",
    ] {
        assert_eq!(clock_time(bad), None, "{bad}");
    }
    assert!(reset_wait("You’ve hit your usage limit. Try again at 7:49 AM.", now()).is_some());
}

#[test]
fn http_statuses_of_claude_api_errors_decide() {
    let overloaded = r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":529,"result":"API Error: Repeated 529 Overloaded errors"}"#;
    assert_eq!(parse(overloaded, now()).class, Class::Limit(None));
    let forbidden = r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":403,"result":"API Error: something"}"#;
    assert_eq!(parse(forbidden, now()).class, Class::Fatal(Fatal::Auth));
    let bad = r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":400,"result":"API Error: prompt is too long"}"#;
    assert_eq!(parse(bad, now()).class, Class::Ordinary);
}

#[test]
fn usage_sums_and_words() {
    let a = Usage {
        input_tokens: 10,
        output_tokens: 5,
        cost_micro_usd: None,
        ..Usage::default()
    };
    let b = Usage {
        cache_read_tokens: 20_000,
        cost_micro_usd: Some(1_250_000),
        ..Usage::default()
    };
    let s = a.plus(&b);
    assert_eq!(s.tokens(), 20_015);
    assert_eq!(s.cost_micro_usd, Some(1_250_000));
    assert_eq!(s.describe(), "20.0k tokens, $1.25");
    assert_eq!(a.describe(), "15 tokens");
}

/// opencode's, Qwen Code's and Copilot CLI's real output (`tests/agents_real_chat.rs` keeps it):
/// usage from opencode's steps and Qwen Code's `result`, each refusal's words, each 401 a person
/// must fix, each 429 a limit with the reset the message names (1 s).
#[test]
fn real_opencode_qwen_and_copilot_output() {
    let n = now();
    for client in ["opencode", "qwen", "copilot"] {
        let ok = parse(&fixture(client, "success"), n);
        assert_eq!(ok.error, None, "{client}");
        assert_eq!(ok.class, Class::Ordinary, "{client}");
        assert!(ok.events > 0, "{client}");
        match (client, ok.usage) {
            // Copilot CLI's tokens are in its usage file, not its output.
            ("copilot", u) => assert_eq!(u, None),
            (_, Some(u)) => {
                assert!(
                    u.input_tokens >= 2400 && u.input_tokens % 1200 == 0,
                    "{u:?}"
                );
                assert_eq!(u.output_tokens / 80, u.input_tokens / 1200, "{u:?}");
                if client == "opencode" {
                    let want = (u.input_tokens * 3 + u.output_tokens * 15) as f64 / 1e6;
                    assert!((u.cost_usd().unwrap_or_default() - want).abs() < 1e-5);
                }
            }
            (_, None) => panic!("{client}: no usage"),
        }
        let no = parse(&fixture(client, "refusal"), n);
        assert_eq!(no.class, Class::Ordinary, "{client}");
        assert_eq!(
            no.last_words().as_deref(),
            Some("I cannot do this: the task is unclear"),
            "{client}"
        );
        let auth = parse(&fixture(client, "unauthorized"), n);
        assert_eq!(auth.class, Class::Fatal(Fatal::Auth), "{client}: {auth:?}");
        assert!(
            auth.cause()
                .is_some_and(|c| c.contains("401") || c.contains("API key"))
        );
        let limit = parse(&fixture(client, "rate_limited"), n);
        assert_eq!(
            limit.class,
            Class::Limit(Some(Duration::from_secs(1))),
            "{client}: {limit:?}"
        );
    }
}

/// Copilot CLI's usage file: the tokens of every model summed; a link, a directory, a FIFO, a
/// file too big or not such a file gives none (the agent can write the file).
#[test]
fn a_usage_file_is_read_as_untrusted() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("1.1.usage.json");
    let real = r#"{"totalPremiumRequestCost":0,"modelMetrics":{
        "a":{"requests":{"count":2,"cost":0},"usage":{"inputTokens":2400,"outputTokens":160,"cacheReadTokens":10,"cacheWriteTokens":0}},
        "b":{"usage":{"inputTokens":1200,"outputTokens":80}}}}"#;
    std::fs::write(&file, real).expect("write");
    let u = read_usage_file(&file).expect("usage");
    assert_eq!(
        (
            u.input_tokens,
            u.output_tokens,
            u.cache_read_tokens,
            u.cost_micro_usd
        ),
        (3600, 240, 10, None)
    );
    let link = dir.path().join("link.usage.json");
    std::os::unix::fs::symlink(&file, &link).expect("link");
    assert_eq!(read_usage_file(&link), None, "a link is not followed");
    assert_eq!(read_usage_file(dir.path()), None);
    // A FIFO left in its place is not waited on.
    let fifo = dir.path().join("fifo.usage.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    assert_eq!(read_usage_file(&fifo), None, "a FIFO is not read");
    std::fs::write(&file, "").expect("empty");
    assert_eq!(read_usage_file(&file), None);
    std::fs::write(
        &file,
        format!(
            "{{\"modelMetrics\":{{}}, \"pad\":\"{}\"}}",
            "x".repeat(2 << 20)
        ),
    )
    .expect("big");
    assert_eq!(read_usage_file(&file), None, "past the limit: not JSON");
    // Beside the attempt's log.
    assert_eq!(
        usage_file(std::path::Path::new("/l/p/1.1.log")),
        std::path::PathBuf::from("/l/p/1.1.usage/usage.json")
    );
}

#[test]
fn a_denied_write_outside_the_allowed_paths_is_the_sandboxs() {
    let log = format!(
        "=== orch: attempt 1 started at x: sh a.sh ===\n{CONFINED_LINE}/w/tree, /tmp/orch-1 ===\n\
         sh: 1: cannot create /w/tree/ro: Permission denied\n\
         sh: 1: cannot create /home/u/.cache/x: Permission denied\n"
    );
    assert_eq!(
        sandbox_denied(&log).as_deref(),
        Some("sh: 1: cannot create /home/u/.cache/x: Permission denied")
    );
    assert_eq!(
        sandbox_denied("sh: cannot create /x: Permission denied\n"),
        None
    );
    // Outside the write set the file system is read-only to a confined process: the same.
    let log = format!(
        "=== orch: attempt 1 started at x: sh a.sh ===\n{CONFINED_LINE}/w/tree ===\n\
         chmod: changing permissions of '/w/other': Read-only file system\n"
    );
    assert_eq!(
        sandbox_denied(&log).as_deref(),
        Some("chmod: changing permissions of '/w/other': Read-only file system")
    );
}

#[test]
fn the_cause_of_a_limit_in_plain_words_is_the_line_that_says_it() {
    let text = "Starting session abc123\nloading config\nYou've hit your usage limit. Try again in 2 hours.\n";
    let out = parse(text, now());
    assert!(matches!(out.class, Class::Limit(Some(_))), "{out:?}");
    assert_eq!(
        out.cause().as_deref(),
        Some("You've hit your usage limit. Try again in 2 hours."),
        "not the agent's first line"
    );
    let out = parse("banner v1\nError: Invalid API key\nbye\n", now());
    assert_eq!(out.class, Class::Fatal(Fatal::Auth));
    assert_eq!(out.cause().as_deref(), Some("Error: Invalid API key"));
    // An ordinary failure keeps its last lines.
    let out = parse("one\ntwo\n", now());
    assert_eq!(out.cause().as_deref(), Some("one\ntwo"));
}

#[test]
fn a_clients_codes_are_read_as_its_words() {
    for code in [
        "usage_limit_reached",
        "Usage-Limit reached",
        "rate_limit_exceeded",
        "rate-limited",
    ] {
        assert!(
            matches!(classify(code, now()), Class::Limit(_)),
            "{code}: {:?}",
            classify(code, now())
        );
    }
    assert_eq!(
        classify("invalid_api_key", now()),
        Class::Fatal(Fatal::Auth)
    );
    assert_eq!(classify("not-logged-in", now()), Class::Fatal(Fatal::Auth));
    assert_eq!(
        classify("added the rate-limit middleware", now()),
        Class::Ordinary
    );
    // A client's JSON error with a code of that kind.
    let out = parse(
        "You've hit your usage limit.\n{\"type\":\"error\",\"message\":\"usage_limit_reached\"}\n",
        now(),
    );
    assert!(matches!(out.class, Class::Limit(_)), "{out:?}");
}
