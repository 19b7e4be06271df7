//! What the real Claude Code, Codex and Gemini CLI print for the outcomes orch must tell apart
//! (success, refusal, HTTP 401, HTTP 429 with a reset time, usage), run against the fake model
//! API of `tests/support/fake_api/` on 127.0.0.1 with a HOME of their own. The CLIs are the pinned
//! ones of `.ci/agent-clis` (`ORCH_TEST_CLIS`, a skip unless `ORCH_REQUIRE_AGENT_CLIS=1`). The
//! lines are kept in `tests/fixtures/clients/{claude,codex,gemini}/` (rewritten with
//! `ORCH_UPDATE_CLIENT_FIXTURES=1`), which the unit tests of orch's output readers read.

use crate::support;

use serde_json::Value;
use support::clis::{client_lines, clis, clis_with, keep_fixture};
use support::fake_api::{Behaviour, USAGE_INPUT, USAGE_OUTPUT};

fn last_of<'a>(lines: &'a [Value], ty: &str) -> Option<&'a Value> {
    lines.iter().rev().find(|l| l["type"] == ty)
}

#[test]
fn claude_prints_what_orch_needs_to_tell_outcomes_apart() {
    let Some(clis) = clis() else { return };
    // Success: a `result` line with the usage and cost of the run.
    let (code, lines, ctx) = client_lines(&clis, "claude", Behaviour::Normal, &[]);
    keep_fixture("claude", "success", &lines);
    assert_eq!(code, 0, "{ctx}");
    let r = last_of(&lines, "result").unwrap_or_else(|| panic!("no result line: {ctx}"));
    assert_eq!(
        (r["subtype"].as_str(), r["is_error"].as_bool()),
        (Some("success"), Some(false)),
        "{ctx}"
    );
    assert!(r["total_cost_usd"].as_f64().is_some_and(|c| c > 0.0), "{r}");
    assert!(
        r["usage"]["input_tokens"]
            .as_u64()
            .is_some_and(|n| n >= USAGE_INPUT),
        "{r}"
    );
    assert!(
        r["usage"]["output_tokens"]
            .as_u64()
            .is_some_and(|n| n >= USAGE_OUTPUT),
        "{r}"
    );
    assert_eq!(r["permission_denials"], serde_json::json!([]), "{ctx}");

    // A refusal: a successful run whose result is the refusal.
    let (code, lines, ctx) = client_lines(
        &clis,
        "claude",
        Behaviour::Refuse("the task is unclear".into()),
        &[],
    );
    keep_fixture("claude", "refusal", &lines);
    assert_eq!(code, 0, "{ctx}");
    let r = last_of(&lines, "result").unwrap_or_else(|| panic!("no result line: {ctx}"));
    assert_eq!(
        r["result"], "I cannot do this: the task is unclear",
        "{ctx}"
    );

    // HTTP 401: Claude Code retries it (10 times by default, over minutes, each announced by a
    // `system`/`api_retry` line with `error_status` 401); with one retry, then an error result.
    let (code, lines, ctx) = client_lines(
        &clis,
        "claude",
        Behaviour::Unauthorized,
        &[("CLAUDE_CODE_MAX_RETRIES", "1")],
    );
    keep_fixture("claude", "unauthorized", &lines);
    assert_ne!(code, 0, "{ctx}");
    let retry = last_of(&lines, "system").unwrap_or_else(|| panic!("no system line: {ctx}"));
    assert_eq!(
        (retry["subtype"].as_str(), retry["error_status"].as_u64()),
        (Some("api_retry"), Some(401)),
        "{ctx}"
    );
    let r = last_of(&lines, "result").unwrap_or_else(|| panic!("no result line: {ctx}"));
    assert_eq!(
        (r["is_error"].as_bool(), r["api_error_status"].as_u64()),
        (Some(true), Some(401)),
        "{ctx}"
    );

    // HTTP 429 with a reset time (Claude Code's own retries off): an error result, exit 1.
    let limited = Behaviour::RateLimited {
        times: usize::MAX,
        reset_secs: 120,
    };
    let (code, lines, ctx) = client_lines(
        &clis,
        "claude",
        limited,
        &[("CLAUDE_CODE_MAX_RETRIES", "0")],
    );
    keep_fixture("claude", "rate_limited", &lines);
    assert_ne!(code, 0, "{ctx}");
    let r = last_of(&lines, "result").unwrap_or_else(|| panic!("no result line: {ctx}"));
    assert_eq!(
        (r["is_error"].as_bool(), r["api_error_status"].as_u64()),
        (Some(true), Some(429)),
        "{ctx}"
    );
    assert!(
        r["result"]
            .as_str()
            .is_some_and(|t| t.contains("Try again after")),
        "{ctx}"
    );
}

#[test]
fn codex_prints_what_orch_needs_to_tell_outcomes_apart() {
    let Some(clis) = clis() else { return };
    let (code, lines, ctx) = client_lines(&clis, "codex", Behaviour::Normal, &[]);
    keep_fixture("codex", "success", &lines);
    assert_eq!(code, 0, "{ctx}");
    let t = last_of(&lines, "turn.completed").unwrap_or_else(|| panic!("no turn.completed: {ctx}"));
    assert!(
        t["usage"]["input_tokens"]
            .as_u64()
            .is_some_and(|n| n >= USAGE_INPUT),
        "{t}"
    );
    assert!(
        t["usage"]["output_tokens"]
            .as_u64()
            .is_some_and(|n| n >= USAGE_OUTPUT),
        "{t}"
    );

    let (code, lines, ctx) = client_lines(
        &clis,
        "codex",
        Behaviour::Refuse("the task is unclear".into()),
        &[],
    );
    keep_fixture("codex", "refusal", &lines);
    assert_eq!(code, 0, "{ctx}");
    let m = lines
        .iter()
        .rev()
        .find(|l| l["type"] == "item.completed" && l["item"]["type"] == "agent_message")
        .unwrap_or_else(|| panic!("no agent message: {ctx}"));
    assert_eq!(
        m["item"]["text"], "I cannot do this: the task is unclear",
        "{ctx}"
    );

    let (code, lines, ctx) = client_lines(&clis, "codex", Behaviour::Unauthorized, &[]);
    keep_fixture("codex", "unauthorized", &lines);
    assert_ne!(code, 0, "{ctx}");
    assert!(last_of(&lines, "turn.failed").is_some(), "{ctx}");

    // HTTP 429 with a reset time (the config turns Codex's own retries off).
    let limited = Behaviour::RateLimited {
        times: usize::MAX,
        reset_secs: 120,
    };
    let (code, lines, ctx) = client_lines(&clis, "codex", limited, &[]);
    keep_fixture("codex", "rate_limited", &lines);
    assert_ne!(code, 0, "{ctx}");
    assert!(last_of(&lines, "turn.failed").is_some(), "{ctx}");
}

#[test]
fn gemini_prints_what_orch_needs_for_usage_and_outcomes() {
    let Some(clis) = clis_with("gemini") else {
        return;
    };
    // Success: a last `result` line with `status` and `stats`, the tokens of every model call
    // (the model router's rating call and the turns).
    let (code, lines, ctx) = client_lines(&clis, "gemini", Behaviour::Normal, &[]);
    keep_fixture("gemini", "success", &lines);
    assert_eq!(code, 0, "{ctx}");
    let r = last_of(&lines, "result").unwrap_or_else(|| panic!("no result line: {ctx}"));
    assert_eq!(r["status"], "success", "{ctx}");
    let stats = &r["stats"];
    assert!(
        stats["input_tokens"]
            .as_u64()
            .is_some_and(|n| n >= USAGE_INPUT && n % USAGE_INPUT == 0),
        "{ctx}"
    );
    assert!(
        stats["output_tokens"]
            .as_u64()
            .is_some_and(|n| n >= USAGE_OUTPUT && n % USAGE_OUTPUT == 0),
        "{ctx}"
    );
    assert_eq!(stats["cached"], 0, "{ctx}");

    // A refusal: a successful run whose last assistant message is the refusal.
    let (code, lines, ctx) = client_lines(
        &clis,
        "gemini",
        Behaviour::Refuse("the task is unclear".into()),
        &[],
    );
    keep_fixture("gemini", "refusal", &lines);
    assert_eq!(code, 0, "{ctx}");
    let m = lines
        .iter()
        .rev()
        .find(|l| l["type"] == "message" && l["role"] == "assistant")
        .unwrap_or_else(|| panic!("no assistant message: {ctx}"));
    assert_eq!(
        m["content"], "I cannot do this: the task is unclear",
        "{ctx}"
    );
}
