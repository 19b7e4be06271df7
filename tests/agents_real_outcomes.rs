//! The outcomes orch must tell apart, end to end with the real agent CLIs (Claude Code, Codex,
//! Gemini CLI; installed by `.ci/agent-clis`, found through `ORCH_TEST_CLIS`, a skip unless
//! `ORCH_REQUIRE_AGENT_CLIS=1`) against the fake model API of `tests/support/fake_api/`: a
//! refusal, HTTP 429 with a reset time, HTTP 401, usage and cost (and a budget), and a failing
//! check whose output the retry's prompt carries. Each run has its own HOME (and CODEX_HOME).

use crate::support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::clis::{ONE, RUN_TIMEOUT, TWO, client_env, clis, clis_with, logs, repo_with};
use support::fake_api::{Behaviour, FakeApi, USAGE_INPUT, USAGE_OUTPUT};
use support::{Repo, code_out_err, events, fixtures, named, toml_array, wait_within};

/// What one `orch ARGS` run through the real CLIs gave.
struct Run {
    code: i32,
    out: String,
    err: String,
    took: Duration,
    context: String,
}

fn orch(repo: &Repo, api: &FakeApi, clis: &std::path::Path, args: &[&str]) -> Run {
    orch_with(repo, api, clis, args, &[])
}

/// [`orch`] with more environment variables for `orch up` (and so its agents).
fn orch_with(
    repo: &Repo,
    api: &FakeApi,
    clis: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut cmd = repo.orch(args);
    client_env(&mut cmd, clis, api, repo.home());
    cmd.envs(env.iter().copied());
    let start = Instant::now();
    let (code, out, err) = code_out_err(&wait_within(
        cmd.spawn().expect("spawn orch"),
        RUN_TIMEOUT,
        "orch",
    ));
    let took = start.elapsed();
    let context = format!(
        "orch {args:?}: exit {code} after {took:?}\nstdout:\n{out}\nstderr:\n{err}\nagent logs:\n{}\nfake API requests: {:?}\ntool results: {:#?}",
        logs(repo),
        api.requests(),
        api.tool_results()
    );
    Run {
        code,
        out,
        err,
        took,
        context,
    }
}

fn status_json(repo: &Repo) -> Value {
    let (code, out, err) = repo.run(&["status", "--plan", "p", "--json"]);
    assert_eq!(code, 0, "orch status: {err}");
    serde_json::from_str(&out).expect("status json")
}

fn task_json<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["tasks"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["id"] == id))
        .unwrap_or_else(|| panic!("no task {id} in {status}"))
}

/// The agent's own `orch task done` calls, as the fake model saw them succeed.
fn reports(api: &FakeApi) -> Vec<String> {
    api.tool_results()
        .into_iter()
        .filter(|r| r.call.contains(" task done ") && !r.error)
        .map(|r| r.call)
        .collect()
}

/// A model that refuses: the task is not completed, `orch up` fails and says why, and so does
/// `orch status` (text, and `cause` in `--json`).
fn a_refusal_through(agent: &str) {
    let Some(clis) = clis() else { return };
    let api = FakeApi::start(Behaviour::Refuse("the task is unclear".into()));
    let repo = repo_with(agent, ONE, "retries = 0\n");
    let run = orch(&repo, &api, &clis, &["up"]);
    let ctx = &run.context;
    let reason = "I cannot do this: the task is unclear";
    assert_eq!(run.code, 5, "a refusal is no success: a task failed\n{ctx}");
    assert!(run.out.contains(reason), "the run says why\n{ctx}");
    assert_eq!(repo.task("p", "1.1")["status"], "failed", "{ctx}");
    assert!(
        repo.subjects("plan/p").is_empty(),
        "nothing was committed\n{ctx}"
    );
    assert!(reports(&api).is_empty(), "the model never reported\n{ctx}");

    let (_, text, _) = repo.run(&["status", "--plan", "p"]);
    assert!(text.contains(reason), "{text}\n{ctx}");
    let st = status_json(&repo);
    let t = task_json(&st, "1.1");
    assert_eq!(t["status"], "failed", "{t}");
    let cause = t["cause"].as_str().unwrap_or_default();
    assert!(
        cause.contains("ended without reporting") && cause.contains(reason),
        "{t}"
    );
}

#[test]
fn claude_refusing_is_a_failure_with_its_reason() {
    a_refusal_through("claude");
}

#[test]
fn codex_refusing_is_a_failure_with_its_reason() {
    a_refusal_through("codex");
}

/// HTTP 429 with a reset 2 s later on the first model call, the next ones answered: the run
/// pauses (`agent_paused` whose reason contains `reason`, and a wait within `wait_ms`), no task
/// fails, and after the reset the relaunched attempt completes the task by the agent's own
/// report. With `retries = 0` the second launch still runs: a limited attempt does not count
/// against the retries. Returns the model calls the fake API answered.
fn a_rate_limit_through(
    agent: &str,
    reason: &str,
    wait_ms: std::ops::RangeInclusive<u64>,
) -> Option<usize> {
    let clis = clis()?;
    let api = FakeApi::start(Behaviour::RateLimited {
        times: 1,
        reset_secs: 2,
    });
    let repo = repo_with(agent, ONE, "retries = 0\n");
    let run = orch(&repo, &api, &clis, &["up", "--json"]);
    let ctx = &run.context;
    assert_eq!(run.code, 0, "the run goes on after the reset\n{ctx}");
    let ev = events(&run.out);
    let paused = named(&ev, "agent_paused");
    assert_eq!(paused.len(), 1, "{ctx}");
    assert_eq!(paused[0]["agent"], agent, "{ctx}");
    assert!(
        paused[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(reason)),
        "{ctx}"
    );
    let wait = paused[0]["resume_in_ms"].as_u64().expect("resume_in_ms");
    assert!(
        wait_ms.contains(&wait),
        "waits for the reset: {wait}\n{ctx}"
    );
    assert_eq!(named(&ev, "agent_resumed").len(), 1, "{ctx}");
    assert!(
        named(&ev, "task_failed").is_empty(),
        "no task failed\n{ctx}"
    );
    // The client did not retry the 429 by itself: one 429, then the relaunched attempt's calls.
    assert_eq!(named(&ev, "task_started").len(), 2, "{ctx}");
    let t = repo.task("p", "1.1");
    assert_eq!(t["status"], "completed", "{t}\n{ctx}");
    assert_eq!(t["notes"], "wrote alpha.txt", "the agent reported\n{ctx}");
    assert_eq!(t["attempts"], 2, "{t}");
    assert_eq!(reports(&api).len(), 1, "{ctx}");
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: Create `alpha.txt`"]);
    assert!(repo.status_file("p").get("orchPaused").is_none());
    Some(api.model_calls())
}

#[test]
fn claude_at_a_rate_limit_pauses_until_the_reset_then_completes() {
    // Until the reset the API named (the fake's reset is whole seconds, 1-2 s away). Claude
    // Code does not retry by itself: orch sets CLAUDE_CODE_MAX_RETRIES=0.
    a_rate_limit_through("claude", "(429)", 100..=3_000);
}

#[test]
fn codex_at_a_rate_limit_pauses_until_the_reset_then_completes() {
    // Codex names the reset as a local clock time ("Try again at 7:49 AM."): orch waits until
    // the end of that minute, at most a minute and the 2 s. The tests' provider config turns
    // Codex's own retries off (`request_max_retries = 0`); a usage limit is not one Codex
    // retries anyway.
    let calls = a_rate_limit_through("codex", "hit your usage limit", 1..=62_000);
    if let Some(calls) = calls {
        assert_eq!(calls, 1 + 3, "one 429, then three turns");
    }
}

/// HTTP 401: the run ends at once with an authentication message (exit 6); neither the client
/// nor orch retries, and the task is not failed.
fn a_bad_key_through(agent: &str) {
    let Some(clis) = clis() else { return };
    let api = FakeApi::start(Behaviour::Unauthorized);
    let repo = repo_with(agent, TWO, "retries = 3\nbackoff = \"1s\"\n");
    let run = orch(&repo, &api, &clis, &["up", "--json"]);
    let ctx = &run.context;
    assert_eq!(run.code, 6, "an unusable agent is exit 6\n{ctx}");
    // Claude Code alone would retry a 401 ten times over about three minutes.
    assert!(
        run.took < Duration::from_secs(60),
        "took {:?}\n{ctx}",
        run.took
    );
    assert_eq!(api.model_calls(), 1, "no retries\n{ctx}");
    let ev = events(&run.out);
    let stopped = named(&ev, "agent_stopped");
    assert_eq!(stopped.len(), 1, "{ctx}");
    assert_eq!(stopped[0]["class"], "authentication", "{ctx}");
    assert!(
        stopped[0]["fix"]
            .as_str()
            .is_some_and(|f| f.contains("log the client")),
        "{ctx}"
    );
    assert_eq!(named(&ev, "task_started").len(), 1, "{ctx}");
    assert!(named(&ev, "task_failed").is_empty(), "{ctx}");
    // One launch, none of the three retries used; both tasks wait for the fix.
    for (id, launches) in [("1.1", 1), ("1.2", 0)] {
        let t = repo.task("p", id);
        assert_eq!(t["status"], "pending", "{t}\n{ctx}");
        assert_eq!(t["attempts"].as_u64().unwrap_or(0), launches, "{t}");
    }
    let summary = &named(&ev, "run_finished")[0]["summary"];
    assert_eq!(summary["agents_stopped"][0]["agent"], agent, "{summary}");
    let _ = run.err;
}

#[test]
fn claude_with_a_bad_api_key_ends_the_run_at_once() {
    let Some(clis) = clis() else { return };
    a_bad_key_through("claude");
    // The message, as the text output gives it.
    let api = FakeApi::start(Behaviour::Unauthorized);
    let repo = repo_with("claude", ONE, "");
    let run = orch(&repo, &api, &clis, &["up"]);
    assert_eq!(run.code, 6, "{}", run.context);
    assert!(
        run.out.contains(
            "agent claude cannot work: for plan p, as its attempt claimed: Invalid API key"
        ),
        "{}",
        run.context
    );
    // A CLAUDE_CODE_MAX_RETRIES of orch's own environment is passed on unchanged: Claude Code
    // then retries the 401 itself (once here) before orch stops the run.
    let api = FakeApi::start(Behaviour::Unauthorized);
    let repo = repo_with("claude", ONE, "");
    let run = orch_with(
        &repo,
        &api,
        &clis,
        &["up"],
        &[("CLAUDE_CODE_MAX_RETRIES", "1")],
    );
    assert_eq!(run.code, 6, "{}", run.context);
    assert_eq!(api.model_calls(), 2, "{}", run.context);
}

#[test]
fn codex_with_a_bad_api_key_ends_the_run_at_once() {
    a_bad_key_through("codex");
}

#[test]
fn claude_usage_and_cost_per_task_and_plan_then_a_budget_stops_launches() {
    let Some(clis) = clis() else { return };
    let api = FakeApi::start(Behaviour::Normal);
    let repo = repo_with("claude", TWO, "");
    let run = orch(&repo, &api, &clis, &["up", "--json"]);
    let ctx = &run.context;
    assert_eq!(run.code, 0, "{ctx}");
    assert_eq!(api.model_calls(), 6, "three model calls per task\n{ctx}");
    let ev = events(&run.out);
    let st = status_json(&repo);
    let mut cost = 0.0;
    for id in ["1.1", "1.2"] {
        let t = task_json(&st, id);
        assert_eq!(t["status"], "completed", "{t}");
        assert_eq!(
            t["notes"],
            format!(
                "wrote {}",
                if id == "1.1" { "alpha.txt" } else { "beta.txt" }
            )
        );
        // The fake API's figures, three calls' worth.
        let u = &t["usage"];
        assert_eq!(u["input_tokens"], 3 * USAGE_INPUT, "{t}");
        assert_eq!(u["output_tokens"], 3 * USAGE_OUTPUT, "{t}");
        let c = u["cost_usd"].as_f64().expect("cost");
        assert!(c > 0.0, "{t}");
        // The same as the task_finished event said.
        let f = named(&ev, "task_finished")
            .into_iter()
            .find(|f| f["task"] == id)
            .expect("task_finished");
        assert_eq!(f["usage"]["cost_usd"].as_f64(), Some(c), "{f}");
        cost += c;
    }
    let u = &st["usage"];
    assert_eq!(u["input_tokens"], 6 * USAGE_INPUT, "{st}");
    assert_eq!(u["output_tokens"], 6 * USAGE_OUTPUT, "{st}");
    let plan_cost = u["cost_usd"].as_f64().expect("plan cost");
    assert!((plan_cost - cost).abs() < 1e-6, "{plan_cost} vs {cost}");
    let (_, all, _) = repo.run(&["status", "--json"]);
    let all: Value = serde_json::from_str(&all).expect("json");
    assert_eq!(all["usage"]["tokens"], u["tokens"], "{all}");

    // A budget below one task's cost: the first task runs (and passes it), the second never
    // starts.
    let api = FakeApi::start(Behaviour::Normal);
    let budget = cost / 2.0 / 2.0;
    let repo = repo_with("claude", TWO, &format!("budget = \"${budget:.4}\"\n"));
    let run = orch(&repo, &api, &clis, &["up", "--json"]);
    let ctx = &run.context;
    assert_eq!(run.code, 5, "{ctx}");
    let ev = events(&run.out);
    let reached = named(&ev, "budget_reached");
    assert_eq!(reached.len(), 1, "{ctx}");
    assert!(
        reached[0]["plan"].is_null(),
        "the run's budget: {}",
        reached[0]
    );
    assert_eq!(named(&ev, "task_started").len(), 1, "{ctx}");
    assert_eq!(repo.task("p", "1.1")["status"], "completed", "{ctx}");
    assert_eq!(repo.task("p", "1.2")["status"], "pending", "{ctx}");
    assert_eq!(api.model_calls(), 3, "{ctx}");
}

#[test]
fn claude_fixes_what_a_failing_check_printed_on_its_retry() {
    let Some(clis) = clis() else { return };
    // The model writes "alpha.txt written by task 1.1" unless its prompt holds the check's
    // complaint; then "alpha.txt fixed by task 1.1", which passes the check.
    let api = FakeApi::start(Behaviour::FixesWhenTold("CHECK FAILED".into()));
    let check = toml_array(&[
        "sh".to_string(),
        fixtures()
            .join("../checks/says_fixed.sh")
            .display()
            .to_string(),
        "alpha.txt".to_string(),
    ]);
    let repo = repo_with(
        "claude",
        ONE,
        &format!("retries = 1\nbackoff = \"1s\"\ncheck = {check}\n"),
    );
    let run = orch(&repo, &api, &clis, &["up", "--json"]);
    let ctx = &run.context;
    assert_eq!(run.code, 0, "{ctx}");
    let ev = events(&run.out);
    assert_eq!(named(&ev, "task_checking").len(), 2, "{ctx}");
    let failed = named(&ev, "task_failed");
    assert_eq!(failed.len(), 1, "{ctx}");
    let complaint =
        "CHECK FAILED: alpha.txt does not say fixed (it says: alpha.txt written by task 1.1)";
    assert!(
        failed[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains(complaint)),
        "{ctx}"
    );
    // The second attempt's prompt held the check's output, and its work passed.
    let prompt =
        std::fs::read_to_string(repo.root().join(".orch/logs/p/1.1.prompt.md")).expect("prompt");
    assert!(prompt.contains(complaint), "{prompt}");
    let t = repo.task("p", "1.1");
    assert_eq!(t["status"], "completed", "{t}\n{ctx}");
    assert_eq!(t["notes"], "wrote alpha.txt", "the agent reported\n{ctx}");
    assert!(!reports(&api).is_empty(), "the agent reported done\n{ctx}");
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: Create `alpha.txt`"]);
    assert_eq!(
        repo.git(&["show", "plan/p:alpha.txt"]).trim_end(),
        "alpha.txt fixed by task 1.1"
    );
}

#[test]
fn gemini_usage_per_task_counts_then_a_token_budget_stops_launches() {
    let Some(clis) = clis_with("gemini") else {
        return;
    };
    // A token budget below one task's tokens (two calls' worth: a task makes at least three):
    // the first task runs, is counted, and passes it; the second never starts.
    let api = FakeApi::start(Behaviour::Normal);
    let budget = 2 * (USAGE_INPUT + USAGE_OUTPUT);
    let repo = repo_with("gemini", TWO, &format!("budget = \"{budget} tokens\"\n"));
    let run = orch(&repo, &api, &clis, &["up", "--json"]);
    let ctx = &run.context;
    assert_eq!(run.code, 5, "{ctx}");
    let ev = events(&run.out);
    assert_eq!(named(&ev, "budget_reached").len(), 1, "{ctx}");
    assert_eq!(named(&ev, "task_started").len(), 1, "{ctx}");
    assert_eq!(repo.task("p", "1.2")["status"], "pending", "{ctx}");
    // Every model call (the turns and the model router's rating) reports the fake API's figures.
    let calls = api.model_calls() as u64;
    let st = status_json(&repo);
    let t = task_json(&st, "1.1");
    assert_eq!(t["status"], "completed", "{t}");
    let u = &t["usage"];
    let (i, o) = (
        u["input_tokens"].as_u64().expect("input tokens"),
        u["output_tokens"].as_u64().expect("output tokens"),
    );
    // At least a write, a report and a final answer; whole calls' worth, each counted once.
    assert!(i >= 3 * USAGE_INPUT && i % USAGE_INPUT == 0, "{t}");
    assert_eq!(o / USAGE_OUTPUT, i / USAGE_INPUT, "{t}");
    assert_eq!(i, calls * USAGE_INPUT, "every call counted once\n{ctx}");
    assert_eq!(u["tokens"], i + o, "{t}");
    assert!(u["cost_usd"].is_null(), "Gemini CLI names no cost: {t}");
    let f = named(&ev, "task_finished")
        .into_iter()
        .find(|f| f["task"] == "1.1")
        .expect("task_finished");
    assert_eq!(f["usage"]["tokens"], u["tokens"], "{f}");
    assert_eq!(st["usage"]["input_tokens"], i, "{st}");
}
