//! Run control end to end: `orch pause|resume PLAN`, `orch retry|stop PLAN ID`, with a running
//! `orch up` (scripted agents that wait for a go from the test) and without one.

use crate::support;

use std::path::Path;
use std::process::Child;
use std::sync::mpsc::Receiver;

use serde_json::Value;
use support::{Repo, agent_at, read_lines, wait_for, wait_line, wait_within};

const TWO_TASKS: &str =
    "# P\n\n## Phase 1: Work\n- [ ] 1.1 first\n- [ ] 1.2 second (depends: 1.1)\n";
const ONE_TASK: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 first\n";

/// A repository whose plans (`name`, text) run the gated agent with its files in `gate`.
fn repo_with(plans: &[(&str, &str)], gate: &Path) -> Repo {
    let repo = Repo::new();
    let cmd = agent_at("gated.sh", &[gate, Path::new("60")]);
    let list: Vec<(&str, String, &str)> =
        plans.iter().map(|(n, t)| (*n, cmd.clone(), *t)).collect();
    repo.plans(&list);
    repo
}

fn touch(gate: &Path, name: &str) {
    std::fs::write(gate.join(name), "").expect("touch");
}

fn started(gate: &Path, who: &str) -> Vec<String> {
    std::fs::read_to_string(gate.join(format!("{who}.started")))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn up(repo: &Repo) -> (Child, Receiver<Value>) {
    let mut child = repo.orch(&["up", "--json"]).spawn().expect("spawn orch up");
    let lines = read_lines(&mut child);
    (child, lines)
}

fn is(v: &Value, event: &str, plan: &str, task: Option<&str>) -> bool {
    v["event"] == event && v["plan"] == plan && task.is_none_or(|t| v["task"] == t)
}

fn ok(repo: &Repo, args: &[&str]) -> String {
    let (code, out, err) = repo.run(args);
    assert_eq!(code, 0, "orch {args:?}: {out}{err}");
    out
}

/// The events of `<state_dir>/events.jsonl`.
fn log_events(repo: &Repo) -> Vec<Value> {
    let text =
        std::fs::read_to_string(repo.root().join(".orch/state/.events.jsonl")).expect("event log");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn plan_json(repo: &Repo, plan: &str) -> Value {
    serde_json::from_str(&ok(repo, &["status", "--plan", plan, "--json"])).expect("json")
}

#[test]
fn pause_and_resume_with_a_running_up() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let repo = repo_with(&[("a", TWO_TASKS), ("b", ONE_TASK)], g);
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| {
        is(v, "task_started", "a", Some("1.1"))
    });
    let out = ok(&repo, &["pause", "a", "--json"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["event"], "plan_paused");
    assert!(v["supervisor_pid"].is_u64(), "{v}");
    wait_line(&lines, &mut seen, |v| is(v, "plan_paused", "a", None));
    assert!(repo.status_file("a")["orchPlanPaused"]["at"].is_string());
    assert_eq!(plan_json(&repo, "a")["plan_paused"], true);
    let (_, text, _) = repo.run(&["status", "--plan", "a"]);
    assert!(text.contains("paused (since"), "{text}");
    // The running agent goes on and finishes; nothing new of `a` starts; `b` runs to its end.
    touch(g, "a-1.1.go");
    touch(g, "b-1.1.go");
    wait_line(&lines, &mut seen, |v| {
        is(v, "task_finished", "a", Some("1.1"))
    });
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "note"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("paused plan `a`"))
    });
    assert!(started(g, "a-1.2").is_empty(), "a paused plan launched");
    assert!(
        !seen.iter().any(|v| v["event"] == "run_finished"),
        "the run waits for the paused plan"
    );
    ok(&repo, &["resume", "a"]);
    wait_line(&lines, &mut seen, |v| is(v, "plan_resumed", "a", None));
    wait_line(&lines, &mut seen, |v| {
        is(v, "task_started", "a", Some("1.2"))
    });
    touch(g, "all.go");
    wait_line(&lines, &mut seen, |v| v["event"] == "run_finished");
    let out = wait_within(child, support::TIMEOUT, "orch up");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(repo.task("a", "1.2")["status"], "completed");
    assert!(repo.status_file("a").get("orchPlanPaused").is_none());
    assert_eq!(plan_json(&repo, "a")["plan_paused"], false);
    assert_eq!(repo.subjects("plan/a").len(), 2, "both tasks committed");
    // The event log has what --json printed.
    let logged = log_events(&repo);
    for name in [
        "plan_paused",
        "plan_resumed",
        "task_finished",
        "run_finished",
    ] {
        assert!(
            logged.iter().any(|v| v["event"] == name),
            "{name}: {logged:?}"
        );
    }
}

#[test]
fn stop_then_retry_with_a_running_up() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let repo = repo_with(&[("a", ONE_TASK), ("b", ONE_TASK)], g);
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| {
        is(v, "task_started", "a", Some("1.1"))
    });
    wait_for("a's agent to start", || !started(g, "a-1.1").is_empty());
    let pid: u32 = started(g, "a-1.1")[0]
        .split(' ')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("pid");
    let out = ok(&repo, &["stop", "a", "1.1"]);
    assert!(out.contains("stopped"), "{out}");
    wait_line(&lines, &mut seen, |v| {
        is(v, "task_stopped", "a", Some("1.1"))
    });
    wait_line(&lines, &mut seen, |v| {
        is(v, "task_failed", "a", Some("1.1"))
    });
    let failed = seen.last().expect("event").clone();
    assert_eq!(failed["error"], "stopped");
    assert!(failed["retry_in_ms"].is_null(), "not retried: {failed}");
    wait_for("the stopped agent to be gone", || {
        !support::process_alive(pid)
    });
    let e = repo.task("a", "1.1");
    assert_eq!(
        (e["status"].as_str(), e["error"].as_str()),
        (Some("failed"), Some("stopped"))
    );
    assert!(e["orchStopped"].is_string());
    // Stopping it again is refused (exit 4) and changes nothing.
    let before = std::fs::read(repo.status_path("a")).expect("read");
    let (code, _, err) = repo.run(&["stop", "a", "1.1"]);
    assert_eq!(code, 4, "{err}");
    assert_eq!(std::fs::read(repo.status_path("a")).expect("read"), before);
    // Retry: it runs again as attempt 2, and finishes.
    let out = ok(&repo, &["retry", "a", "1.1", "--json"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        (v["event"].as_str(), v["attempt"].as_u64()),
        (Some("task_retried"), Some(2))
    );
    wait_line(&lines, &mut seen, |v| {
        is(v, "task_retried", "a", Some("1.1"))
    });
    wait_line(&lines, &mut seen, |v| {
        is(v, "task_started", "a", Some("1.1")) && v["attempt"] == 2
    });
    touch(g, "all.go");
    wait_line(&lines, &mut seen, |v| v["event"] == "run_finished");
    let out = wait_within(child, support::TIMEOUT, "orch up");
    assert_eq!(out.status.code(), Some(0));
    let e = repo.task("a", "1.1");
    assert_eq!(e["status"], "completed");
    assert!(e.get("orchStopped").is_none());
    assert_eq!(started(g, "a-1.1").len(), 2);
}

#[test]
fn control_without_a_running_up() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let repo = repo_with(&[("a", ONE_TASK), ("b", ONE_TASK)], g);
    touch(g, "all.go");
    // Unknown plan or task: exit 2, nothing written.
    assert_eq!(repo.run(&["pause", "nope"]).0, 2);
    assert_eq!(repo.run(&["retry", "a", "9.9"]).0, 2);
    assert!(!repo.status_path("a").exists());
    // A pending task can be neither retried nor stopped.
    assert_eq!(repo.run(&["retry", "a", "1.1"]).0, 4);
    assert_eq!(repo.run(&["stop", "a", "1.1"]).0, 4);

    // Paused before the run: `orch up` starts it paused and waits, saying so; resume goes on.
    let out = ok(&repo, &["pause", "a"]);
    assert!(out.contains("no `orch up` is running"), "{out}");
    assert_eq!(plan_json(&repo, "a")["plan_paused"], true);
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "note"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("paused plan `a`"))
    });
    assert!(started(g, "a-1.1").is_empty());
    assert_eq!(repo.task("b", "1.1")["status"], "completed");
    ok(&repo, &["resume", "a"]);
    wait_line(&lines, &mut seen, |v| v["event"] == "run_finished");
    assert_eq!(
        wait_within(child, support::TIMEOUT, "orch up")
            .status
            .code(),
        Some(0)
    );
    assert_eq!(repo.task("a", "1.1")["status"], "completed");

    // Stop without a supervisor: a task started by hand is failed/stopped; `orch up` leaves it.
    let repo = repo_with(&[("a", TWO_TASKS)], g);
    ok(&repo, &["task", "start", "1.1", "--plan", "a"]);
    let out = ok(&repo, &["stop", "a", "1.1"]);
    assert!(out.contains("stopped"), "{out}");
    let ev = repo.up_events(&[], 5);
    assert!(
        !ev.iter().any(|v| v["event"] == "task_started"),
        "a stopped task is not retried by itself: {ev:?}"
    );
    assert_eq!(repo.task("a", "1.1")["error"], "stopped");
    // Retry without a supervisor: pending again; the next `orch up` runs it (attempt 2).
    let out = ok(&repo, &["retry", "a", "1.1"]);
    assert!(out.contains("next attempt is 2"), "{out}");
    assert_eq!(repo.task("a", "1.1")["status"], "pending");
    // Without --json too, the run's events go to the event log.
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}{err}");
    let ev = log_events(&repo);
    assert!(ev.iter().any(|v| is(v, "task_finished", "a", Some("1.2"))));
    assert_eq!(repo.task("a", "1.1")["attempts"], 2);
}

/// A repository with plan `p` (two tasks) in plan mode, run by the gated plan agent with its
/// files in `gate` (a go waited for at most 120 s).
fn plan_mode_repo(gate: &Path) -> Repo {
    let repo = Repo::new();
    repo.write("docs/plans/p.md", TWO_TASKS);
    repo.manifest(
        &agent_at("plan_gated.sh", &[gate, Path::new("120")]),
        "mode = \"plan\"",
        "retries = 0",
        &[("p", "")],
    );
    repo.commit_all("plans");
    repo
}

/// The gated plan agent's claims: "<pid> <task> <attempt>".
fn claims(gate: &Path) -> Vec<String> {
    std::fs::read_to_string(gate.join("p.plan-agent"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn stop_of_a_task_of_a_plan_mode_plan_stops_its_plan_agent() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let repo = plan_mode_repo(g);
    let claims = || claims(g);
    touch(g, "p-1.1.go");
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    // The plan agent did 1.1 and is at work on 1.2 (claimed, waiting for its go).
    wait_line(&lines, &mut seen, |v| {
        is(v, "task_finished", "p", Some("1.1"))
    });
    wait_for("the plan agent to claim 1.2", || {
        claims().iter().any(|c| c.split(' ').nth(1) == Some("1.2"))
    });
    assert_eq!(repo.task("p", "1.2")["status"], "in_progress");
    let pid: u32 = claims()[0]
        .split(' ')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("pid");
    assert!(support::process_alive(pid));

    let out = ok(&repo, &["stop", "p", "1.2", "--json"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        (v["event"].as_str(), v["was_running"].as_bool()),
        (Some("task_stopped"), Some(true)),
        "{v}"
    );
    wait_line(&lines, &mut seen, |v| {
        is(v, "task_stopped", "p", Some("1.2"))
    });
    // The plan agent working on it is stopped (its go would only come after 120 s), and not
    // launched again for the stopped task: the run ends with the task failed.
    wait_for("the plan agent to be gone", || !support::process_alive(pid));
    wait_line(&lines, &mut seen, |v| v["event"] == "run_finished");
    let out = wait_within(child, support::TIMEOUT, "orch up");
    assert_eq!(out.status.code(), Some(5), "a task failed");
    assert_eq!(
        claims().len(),
        2,
        "one plan agent, two claims: {:?}",
        claims()
    );
    let e = repo.task("p", "1.2");
    assert_eq!(
        (e["status"].as_str(), e["error"].as_str()),
        (Some("failed"), Some("stopped")),
        "{e}"
    );
    assert!(e["orchStopped"].is_string(), "{e}");
    assert_eq!(repo.task("p", "1.1")["status"], "completed");
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: first"]);

    // Retried, the next `orch up` launches a plan agent again, which does it.
    ok(&repo, &["retry", "p", "1.2"]);
    touch(g, "all.go");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(repo.task("p", "1.2")["status"], "completed");
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: first", "p 1.2: second"]);
}

#[test]
fn stop_of_a_plan_mode_task_without_a_running_up_signals_its_plan_agent() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let repo = plan_mode_repo(g);
    let mut child = repo.orch(&["up"]).spawn().expect("spawn orch up");
    wait_for("the plan agent to claim 1.1", || !claims(g).is_empty());
    let pid: u32 = claims(g)[0]
        .split(' ')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("pid");
    // The supervisor dies; its plan agent (under its wrapper, in a session of its own) goes on.
    assert!(support::kill("KILL", child.id()));
    let _ = child.wait();
    assert!(support::process_alive(pid));
    // The pid orch recorded: the agent's wrapper, its parent.
    let wrapper = repo.status_file("p")["orchPlanAgent"]["pid"]
        .as_u64()
        .expect("recorded pid");
    let out = ok(&repo, &["stop", "p", "1.1"]);
    assert!(out.contains("no `orch up` is running"), "{out}");
    assert!(
        out.contains(&format!("its agent, pid {wrapper}, was sent SIGTERM")),
        "{out}"
    );
    wait_for("the plan agent to be gone", || !support::process_alive(pid));
    let e = repo.task("p", "1.1");
    assert_eq!(
        (e["status"].as_str(), e["error"].as_str()),
        (Some("failed"), Some("stopped")),
        "{e}"
    );
    assert!(e["orchStopped"].is_string(), "{e}");
}
