//! opencode, Qwen Code and GitHub Copilot CLI (installed by `.ci/agent-clis` at pinned versions,
//! found through `ORCH_TEST_CLIS`, a skip unless `ORCH_REQUIRE_AGENT_CLIS=1`) against the fake
//! model API's chat completions with tools: what orch reads of each client's own output, and the
//! outcomes orch must tell apart through `orch up` as it does for Claude Code and Codex (a
//! refusal fails the task with the agent's words, HTTP 401 stops the agent with the fix, HTTP 429
//! pauses it until the reset, usage and cost per task and a budget).
//!
//! These clients retry a 429 by themselves (Copilot CLI five times, opencode with its backoff,
//! Qwen Code as its settings say: the tests' HOME turns its retries off): orch sees the limit
//! when the client gives up. The rate-limit test first counts the model calls one run of the
//! client makes before it gives up, then answers exactly that many with a 429.
//!
//! One test per client and scenario, so that they run in parallel (most of their time is the
//! clients' own waits).

use crate::support;

use serde_json::Value;
use support::clis::{
    ONE, RUN_TIMEOUT, TWO, client_env, client_run, clis_with, fixture_calls, keep_calls,
    keep_fixture, logs, repo_with,
};
use support::fake_api::{Behaviour, FakeApi, USAGE_INPUT, USAGE_OUTPUT};
use support::{Repo, code_out_err, events, named, wait_within};

/// `orch up --json` through the real CLIs: exit code, events, and a context for failures.
fn up(repo: &Repo, api: &FakeApi, clis: &std::path::Path) -> (i32, Vec<Value>, String) {
    let mut cmd = repo.orch(&["up", "--json"]);
    client_env(&mut cmd, clis, api, repo.home());
    let (code, out, err) = code_out_err(&wait_within(
        cmd.spawn().expect("spawn orch up"),
        RUN_TIMEOUT,
        "orch up",
    ));
    let context = format!(
        "exit {code}\nstdout:\n{out}\nstderr:\n{err}\nagent logs:\n{}\nfake API requests: {:?}\ntool results: {:#?}",
        logs(repo),
        api.requests(),
        api.tool_results()
    );
    (code, events(&out), context)
}

/// What orch reads of each client's own output (JSON events, Copilot CLI's usage file) for each
/// outcome it must tell apart: the usage of a success (the fake API's figures, whole calls'
/// worth; opencode's cost from the price the user's configuration gives the model), a refusal's
/// words, a 401 that only a person can fix, a 429 with its reset. The lines are kept as fixtures
/// for the parser's unit tests (`ORCH_UPDATE_CLIENT_FIXTURES=1`).
///
/// These runs make the fixtures; they run when the fixtures are made again
/// (`ORCH_UPDATE_CLIENT_FIXTURES=1 cargo test --test all agents_real_chat -- --ignored`). The
/// end-to-end tests below run each outcome through `orch up` with the same client on every
/// `cargo test` and check what orch made of it (usage and cost per task, the task failed with
/// the agent's words, the agent stopped as `authentication`, paused at the limit), so starting
/// the client here too only doubled the work. The 429 run also records how many model calls the
/// client makes before it gives up (`rate_limited.calls`), which the rate-limit test answers
/// with 429s.
fn opencode_qwen_and_copilot_print_what_orch_needs_for_usage_and_outcomes(agent: &str) {
    use orch::agent_output::{Class, Fatal};
    {
        let Some(clis) = clis_with(agent) else {
            return;
        };
        let r = client_run(&clis, agent, Behaviour::Normal, &[]);
        let (code, lines, ctx, read) = (r.code, r.lines, r.ctx, r.read);
        keep_fixture(agent, "success", &lines);
        assert_eq!(code, 0, "{agent}: {ctx}");
        let u = read
            .usage
            .unwrap_or_else(|| panic!("{agent}: no usage read: {ctx}"));
        assert!(
            u.input_tokens >= 2 * USAGE_INPUT && u.input_tokens % USAGE_INPUT == 0,
            "{agent}: {u:?}\n{ctx}"
        );
        assert_eq!(
            u.output_tokens / USAGE_OUTPUT,
            u.input_tokens / USAGE_INPUT,
            "{agent}: {u:?}"
        );
        assert_eq!(read.class, Class::Ordinary, "{agent}");
        if agent == "opencode" {
            // $3 and $15 per million tokens, as the tests' configuration prices the model.
            let want = (u.input_tokens * 3 + u.output_tokens * 15) as f64 / 1e6;
            let got = u.cost_usd().unwrap_or_default();
            assert!((got - want).abs() < 1e-5, "{agent}: {got} vs {want}");
        }

        let refuse = Behaviour::Refuse("the task is unclear".into());
        let r = client_run(&clis, agent, refuse, &[]);
        let (code, lines, ctx, read) = (r.code, r.lines, r.ctx, r.read);
        keep_fixture(agent, "refusal", &lines);
        assert_eq!(code, 0, "{agent}: a refusal is exit 0: {ctx}");
        assert_eq!(
            read.last_words().as_deref(),
            Some("I cannot do this: the task is unclear"),
            "{agent}: {ctx}"
        );

        let r = client_run(&clis, agent, Behaviour::Unauthorized, &[]);
        let (code, lines, ctx, read) = (r.code, r.lines, r.ctx, r.read);
        keep_fixture(agent, "unauthorized", &lines);
        assert_ne!(code, 0, "{agent}: {ctx}");
        assert_eq!(
            read.class,
            Class::Fatal(Fatal::Auth),
            "{agent}: {read:?}\n{ctx}"
        );

        let limited = Behaviour::RateLimited {
            times: usize::MAX,
            reset_secs: 1,
        };
        let r = client_run(&clis, agent, limited, &[]);
        let (code, lines, ctx, read) = (r.code, r.lines, r.ctx, r.read);
        keep_fixture(agent, "rate_limited", &lines);
        keep_calls(agent, "rate_limited", r.calls);
        assert_ne!(code, 0, "{agent}: {ctx}");
        assert!(
            matches!(read.class, Class::Limit(_)),
            "{agent}: {read:?}\n{ctx}"
        );
    }
}

/// A refusal: the task fails with the agent's words, nothing is committed.
fn a_refusal_fails_the_task_with_the_agents_words(agent: &str) {
    let Some(clis) = clis_with(agent) else {
        return;
    };
    let api = FakeApi::start(Behaviour::Refuse("the task is unclear".into()));
    let repo = repo_with(agent, ONE, "retries = 0\n");
    let (code, ev, ctx) = up(&repo, &api, &clis);
    assert_eq!(code, 5, "{agent}: a task failed\n{ctx}");
    let failed = named(&ev, "task_failed");
    assert_eq!(failed.len(), 1, "{agent}\n{ctx}");
    let error = failed[0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("I cannot do this: the task is unclear"),
        "{agent}: {error}\n{ctx}"
    );
    assert_eq!(repo.task("p", "1.1")["status"], "failed", "{agent}\n{ctx}");
    assert!(repo.subjects("plan/p").is_empty(), "{agent}\n{ctx}");
}

/// HTTP 401: the agent is stopped with the fix (exit 6), its task not failed, its retries not
/// spent.
fn a_bad_api_key_stops_the_agent_with_the_fix(agent: &str) {
    let Some(clis) = clis_with(agent) else {
        return;
    };
    let api = FakeApi::start(Behaviour::Unauthorized);
    let repo = repo_with(agent, TWO, "retries = 3\nbackoff = \"1s\"\n");
    let (code, ev, ctx) = up(&repo, &api, &clis);
    assert_eq!(code, 6, "{agent}: an unusable agent is exit 6\n{ctx}");
    let stopped = named(&ev, "agent_stopped");
    assert_eq!(stopped.len(), 1, "{agent}\n{ctx}");
    assert_eq!(stopped[0]["class"], "authentication", "{agent}\n{ctx}");
    assert!(
        stopped[0]["fix"]
            .as_str()
            .is_some_and(|f| f.contains("log the client")),
        "{agent}\n{ctx}"
    );
    assert_eq!(named(&ev, "task_started").len(), 1, "{agent}\n{ctx}");
    assert!(named(&ev, "task_failed").is_empty(), "{agent}\n{ctx}");
    for (id, launches) in [("1.1", 1), ("1.2", 0)] {
        let t = repo.task("p", id);
        assert_eq!(t["status"], "pending", "{agent}: {t}\n{ctx}");
        assert_eq!(t["attempts"].as_u64().unwrap_or(0), launches, "{t}");
    }
}

/// HTTP 429 until the client gives up: the agent pauses until the reset the API named (1 s),
/// no task fails, and the relaunched attempt completes the task by the agent's report.
fn a_rate_limit_pauses_the_agent_until_the_reset_then_the_task_completes(agent: &str) {
    let Some(clis) = clis_with(agent) else {
        return;
    };
    // How many model calls one run of the client makes against a lasting 429 (recorded with
    // the fixtures): the first attempt gives up on the limit, the relaunched one is answered.
    let calls = fixture_calls(agent, "rate_limited");
    assert!(calls >= 1, "{agent}");
    let api = FakeApi::start(Behaviour::RateLimited {
        times: calls,
        reset_secs: 1,
    });
    let repo = repo_with(agent, ONE, "retries = 0\n");
    let (code, ev, ctx) = up(&repo, &api, &clis);
    assert_eq!(code, 0, "{agent}: the run goes on after the reset\n{ctx}");
    let paused = named(&ev, "agent_paused");
    assert_eq!(paused.len(), 1, "{agent}\n{ctx}");
    assert_eq!(paused[0]["agent"], agent, "{ctx}");
    let wait = paused[0]["resume_in_ms"].as_u64().expect("resume_in_ms");
    assert!(wait <= 2_000, "{agent}: waits for the reset: {wait}\n{ctx}");
    assert_eq!(named(&ev, "agent_resumed").len(), 1, "{agent}\n{ctx}");
    assert!(named(&ev, "task_failed").is_empty(), "{agent}\n{ctx}");
    let t = repo.task("p", "1.1");
    assert_eq!(t["status"], "completed", "{agent}: {t}\n{ctx}");
    assert_eq!(t["notes"], "wrote alpha.txt", "{agent}: reported\n{ctx}");
}

/// Usage per task from each client's own figures (whole model calls' worth of the fake API's;
/// opencode's cost from the price the configuration gives the model, none for the others), and
/// a token budget below one task's tokens (two calls' worth: a task makes at least three): the
/// first task runs and is counted, the second never starts. One run, one launch of the client.
fn usage_per_task_counts_then_a_token_budget_stops_launches(agent: &str) {
    let Some(clis) = clis_with(agent) else {
        return;
    };
    let api = FakeApi::start(Behaviour::Normal);
    let budget = 2 * (USAGE_INPUT + USAGE_OUTPUT);
    let repo = repo_with(agent, TWO, &format!("budget = \"{budget} tokens\"\n"));
    let (code, ev, ctx) = up(&repo, &api, &clis);
    assert_eq!(code, 5, "{agent}\n{ctx}");
    assert_eq!(named(&ev, "budget_reached").len(), 1, "{agent}\n{ctx}");
    assert_eq!(named(&ev, "task_started").len(), 1, "{agent}\n{ctx}");
    let t = repo.task("p", "1.1");
    assert_eq!(t["status"], "completed", "{agent}: {t}\n{ctx}");
    assert_eq!(repo.task("p", "1.2")["status"], "pending", "{agent}");
    let f = named(&ev, "task_finished")
        .into_iter()
        .find(|f| f["task"] == "1.1")
        .expect("task_finished");
    let u = &f["usage"];
    let (i, o) = (
        u["input_tokens"].as_u64().unwrap_or(0),
        u["output_tokens"].as_u64().unwrap_or(0),
    );
    // At least a write, a report and a final answer, each a whole call's worth.
    assert!(i >= 3 * USAGE_INPUT && i % USAGE_INPUT == 0, "{agent}: {f}");
    assert_eq!(o / USAGE_OUTPUT, i / USAGE_INPUT, "{agent}: {f}");
    // The plan's status file says what the event said.
    assert_eq!(t["orchUsage"]["inputTokens"], i, "{agent}: {t}");
    assert_eq!(t["orchUsage"]["outputTokens"], o, "{agent}: {t}");
    match agent {
        "opencode" => {
            let want = (i * 3 + o * 15) as f64 / 1e6;
            let got = u["cost_usd"].as_f64().unwrap_or_default();
            assert!((got - want).abs() < 1e-5, "{agent}: {f}");
        }
        _ => assert!(u["cost_usd"].is_null(), "{agent} names no cost: {f}"),
    }
}

#[test]
#[ignore = "makes the client fixtures: ORCH_UPDATE_CLIENT_FIXTURES=1 cargo test --test all agents_real_chat -- --ignored"]
fn opencode_prints_what_orch_needs() {
    opencode_qwen_and_copilot_print_what_orch_needs_for_usage_and_outcomes("opencode");
}

#[test]
#[ignore = "makes the client fixtures: ORCH_UPDATE_CLIENT_FIXTURES=1 cargo test --test all agents_real_chat -- --ignored"]
fn qwen_prints_what_orch_needs() {
    opencode_qwen_and_copilot_print_what_orch_needs_for_usage_and_outcomes("qwen");
}

#[test]
#[ignore = "makes the client fixtures: ORCH_UPDATE_CLIENT_FIXTURES=1 cargo test --test all agents_real_chat -- --ignored"]
fn copilot_prints_what_orch_needs() {
    opencode_qwen_and_copilot_print_what_orch_needs_for_usage_and_outcomes("copilot");
}

#[test]
fn opencode_a_refusal_fails_the_task() {
    a_refusal_fails_the_task_with_the_agents_words("opencode");
}

#[test]
fn qwen_a_refusal_fails_the_task() {
    a_refusal_fails_the_task_with_the_agents_words("qwen");
}

#[test]
fn copilot_a_refusal_fails_the_task() {
    a_refusal_fails_the_task_with_the_agents_words("copilot");
}

#[test]
fn opencode_a_bad_api_key_stops_the_agent() {
    a_bad_api_key_stops_the_agent_with_the_fix("opencode");
}

#[test]
fn qwen_a_bad_api_key_stops_the_agent() {
    a_bad_api_key_stops_the_agent_with_the_fix("qwen");
}

#[test]
fn copilot_a_bad_api_key_stops_the_agent() {
    a_bad_api_key_stops_the_agent_with_the_fix("copilot");
}

#[test]
fn opencode_a_rate_limit_pauses_the_agent() {
    a_rate_limit_pauses_the_agent_until_the_reset_then_the_task_completes("opencode");
}

#[test]
fn qwen_a_rate_limit_pauses_the_agent() {
    a_rate_limit_pauses_the_agent_until_the_reset_then_the_task_completes("qwen");
}

#[test]
fn copilot_a_rate_limit_pauses_the_agent() {
    a_rate_limit_pauses_the_agent_until_the_reset_then_the_task_completes("copilot");
}

#[test]
fn opencode_usage_per_task_then_a_budget() {
    usage_per_task_counts_then_a_token_budget_stops_launches("opencode");
}

#[test]
fn qwen_usage_per_task_then_a_budget() {
    usage_per_task_counts_then_a_token_budget_stops_launches("qwen");
}

#[test]
fn copilot_usage_per_task_then_a_budget() {
    usage_per_task_counts_then_a_token_budget_stops_launches("copilot");
}
