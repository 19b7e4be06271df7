//! An agent asks, a person answers: `orch task ask` from a task's attempt (through the report
//! channel), the task waiting with its question while the rest of the run goes on, `orch up`
//! ending with exit 5 and the plan `waiting`, then `orch answer` (with or without a running
//! `orch up`) and the next attempt's prompt holding the question and the answer.

use crate::support;

use std::path::Path;
use std::process::Child;
use std::sync::mpsc::Receiver;

use serde_json::Value;
use support::{Repo, agent_at, events, named, read_lines, wait_line, wait_within};

/// Plan `a`: 1.1 asks, 1.2 depends on it, 1.3 does not. Plan `b`: one task.
const PLAN_A: &str = "# A\n\n## Phase 1: Work\n- [ ] 1.1 pick a database\n- [ ] 1.2 use it (depends: 1.1)\n- [ ] 1.3 unrelated\n";
const PLAN_B: &str = "# B\n\n## Phase 1: Work\n- [ ] 1.1 other work\n";

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

fn ran(dir: &Path) -> Vec<String> {
    read(dir, "ran").lines().map(str::to_string).collect()
}

fn status_json(repo: &Repo, plan: &str) -> Value {
    let (code, out, err) = repo.run(&["status", "--plan", plan, "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).expect("json")
}

fn task_of<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["id"] == id)
        .expect("task")
}

#[test]
fn an_agent_asks_the_run_goes_on_and_an_answer_completes_the_task() {
    let rec = tempfile::tempdir().expect("tmp");
    let r = rec.path();
    let repo = Repo::new();
    let asker = agent_at("asker.sh", &[Path::new("1.1"), r]);
    let plain = agent_at("asker.sh", &[Path::new("none"), r]);
    repo.plans(&[("a", asker, PLAN_A), ("b", plain, PLAN_B)]);

    // The plain output names the waiting task and its question; exit 5.
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 5, "orch up: {out}{err}");
    assert!(
        out.contains("a 1.1 needs input: PostgreSQL or SQLite?"),
        "the question is printed: {out}"
    );
    // The ask answered at once with 0; the same attempt's `done` afterwards was refused.
    assert_eq!(read(r, "a-1.1.asked").trim(), "0");
    assert_ne!(
        read(r, "a-1.1.done-after-ask").trim(),
        "0",
        "done after ask"
    );
    // Everything else that could run ran: a's 1.3 and b's 1.1; not 1.2, which waits.
    let mut did = ran(r);
    did.sort();
    assert_eq!(did, ["a-1.3 1", "b-1.1 1"]);
    let log = std::fs::read_to_string(repo.root().join(".orch/state/.events.jsonl")).expect("log");
    let ev = events(&log);
    let asked = named(&ev, "task_needs_input");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0]["plan"], "a");
    assert_eq!(asked[0]["task"], "1.1");
    assert_eq!(asked[0]["question"], "PostgreSQL or SQLite?");
    assert!(named(&ev, "task_failed").is_empty(), "no failure: {ev:?}");
    let summary = &named(&ev, "run_finished")[0]["summary"];
    let outcome = |p: &str| {
        summary["plans"]
            .as_array()
            .expect("plans")
            .iter()
            .find(|x| x["plan"] == p)
            .map(|x| x["outcome"].clone())
    };
    assert_eq!(outcome("a"), Some(Value::from("waiting")));
    assert_eq!(outcome("b"), Some(Value::from("completed")));
    // The status: needs_input with the question, no retry used, nothing committed.
    let s = status_json(&repo, "a");
    let t = task_of(&s, "1.1");
    assert_eq!(t["status"], "needs_input");
    assert_eq!(t["question"], "PostgreSQL or SQLite?");
    assert_eq!(t["retry_count"], 0);
    assert_eq!(task_of(&s, "1.2")["status"], "pending");
    let file = repo.task("a", "1.1");
    assert_eq!(file["orchQuestion"], "PostgreSQL or SQLite?");
    let (code, text, _) = repo.run(&["status", "--plan", "a"]);
    assert_eq!(code, 0);
    assert!(
        text.contains("needs_input 1.1") && text.contains("PostgreSQL or SQLite?"),
        "{text}"
    );
    // The forecast (the run left a history) promises no end for a plan that waits for a
    // person, nor for the run; the plan that does not wait has nothing left.
    let (code, text, _) = repo.run(&["status"]);
    assert_eq!(code, 0);
    assert!(
        text.contains(
            "  forecast: waits for an answer to 1.1 (`orch answer a 1.1 TEXT`); no end before it"
        ),
        "{text}"
    );
    assert!(
        text.contains("forecast: all plans: no end before the answers to a 1.1"),
        "{text}"
    );
    assert!(!text.contains("ends "), "a time promised: {text}");
    let (code, out, _) = repo.run(&["status", "--json"]);
    assert_eq!(code, 0);
    let all: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        all["forecast"]["waiting_for_answers"],
        serde_json::json!([{"plan": "a", "task": "1.1"}]),
        "{all:#}"
    );
    assert_eq!(
        all["plans"][0]["forecast"]["waiting_for_answers"],
        serde_json::json!([{"plan": "a", "task": "1.1"}]),
        "{all:#}"
    );

    // Answers: an unknown task is 2, a task that asked nothing 4, nothing changed by either.
    assert_eq!(repo.run(&["answer", "a", "9.9", "x"]).0, 2);
    assert_eq!(repo.run(&["answer", "a", "1.3", "x"]).0, 4);
    assert_eq!(
        repo.run(&["answer", "a", "1.1", " "]).0,
        2,
        "an empty answer"
    );
    assert_eq!(repo.task("a", "1.1")["status"], "needs_input");
    let (code, out, err) = repo.run(&["answer", "a", "1.1", "PostgreSQL, version 16"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(repo.run(&["answer", "a", "1.1", "again"]).0, 4, "answered");
    let file = repo.task("a", "1.1");
    assert_eq!(file["status"], "pending");
    assert_eq!(file["orchAnswers"][0]["question"], "PostgreSQL or SQLite?");
    assert_eq!(file["orchAnswers"][0]["answer"], "PostgreSQL, version 16");
    // Answered: the forecast gives times again.
    let (code, text, _) = repo.run(&["status"]);
    assert_eq!(code, 0);
    assert!(
        text.contains("  forecast: ends ") && !text.contains("waits for an answer"),
        "{text}"
    );

    // The next run completes it with the answer in its prompt; nothing done runs again.
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let prompt = read(r, "a-1.1.prompt");
    assert!(
        prompt.contains("PostgreSQL or SQLite?") && prompt.contains("PostgreSQL, version 16"),
        "{prompt}"
    );
    let mut did: Vec<String> = ran(r)
        .iter()
        .map(|l| l.split(' ').next().unwrap_or_default().to_string())
        .collect();
    did.sort();
    assert_eq!(did, ["a-1.1", "a-1.2", "a-1.3", "b-1.1"]);
    assert_eq!(repo.task("a", "1.1")["status"], "completed");
    assert_eq!(repo.task("a", "1.2")["status"], "completed");
    assert_eq!(repo.git(&["show", "plan/a:a-1.1.txt"]).trim(), "1.1");
}

fn up(repo: &Repo) -> (Child, Receiver<Value>) {
    let mut child = repo.orch(&["up", "--json"]).spawn().expect("spawn orch up");
    let lines = read_lines(&mut child);
    (child, lines)
}

#[test]
fn an_answer_during_the_run_resumes_the_task() {
    let rec = tempfile::tempdir().expect("tmp");
    let r = rec.path();
    let gate = tempfile::tempdir().expect("gate");
    let g = gate.path();
    let repo = Repo::new();
    let asker = agent_at("asker.sh", &[Path::new("1.1"), r]);
    // Plan b's task waits for a go: the run stays up meanwhile.
    let gated = agent_at("gated.sh", &[g, Path::new("60")]);
    repo.plans(&[("a", asker, PLAN_A), ("b", gated, PLAN_B)]);
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "task_needs_input" && v["plan"] == "a" && v["task"] == "1.1"
    });
    let (code, out, err) = repo.run(&["answer", "a", "1.1", "SQLite"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("acts on it within a second"), "{out}");
    // The running `orch up` runs it again with the answer, and what waited for it.
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "task_finished" && v["plan"] == "a" && v["task"] == "1.2"
    });
    std::fs::write(g.join("all.go"), "").expect("go");
    let out = wait_within(child, std::time::Duration::from_secs(120), "orch up");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prompt = read(r, "a-1.1.prompt");
    assert!(prompt.contains("A person answered: SQLite"), "{prompt}");
    assert_eq!(repo.task("a", "1.1")["status"], "completed");
    assert_eq!(repo.task("a", "1.1")["attempts"], 2);
}

/// A question with terminal control sequences (a title change, a screen clear, a carriage
/// return) is shown escaped by `orch up` and `orch status`, and kept as written in the status
/// file and the event; a question longer than 8 KiB is refused, nothing recorded.
#[test]
fn a_question_is_shown_escaped_and_bounded() {
    let rec = tempfile::tempdir().expect("tmp");
    let r = rec.path();
    let repo = Repo::new();
    repo.plans(&[("a", agent_at("ask_escapes.sh", &[r]), PLAN_B)]);
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 5, "{out}{err}");
    assert_eq!(read(r, "long").trim(), "4", "the long question is refused");
    assert_eq!(read(r, "asked").trim(), "0");
    let raw = "pick \u{1b}]0;pwned\u{7}one\u{1b}[2J\rDROP?";
    assert_eq!(repo.task("a", "1.1")["orchQuestion"], raw);
    for (what, text) in [("up", out), ("status", repo.run(&["status"]).1)] {
        assert!(
            !text.contains('\u{1b}') && !text.contains('\r'),
            "{what}: {text:?}"
        );
        assert!(
            text.contains(r"pick \u{1b}]0;pwned\u{7}one\u{1b}[2J\rDROP?"),
            "{what}: {text}"
        );
    }
}

/// `orch say` keeps a message for the task's next attempt, whose prompt holds it: said before
/// the run (no `orch up`), and to a running attempt with `--restart`, which stops it and starts
/// the next one with the message at once.
#[test]
fn a_message_is_kept_for_the_next_attempt_and_restart_starts_it_now() {
    let rec = tempfile::tempdir().expect("tmp");
    let r = rec.path();
    let repo = Repo::new();
    repo.plans(&[("a", agent_at("say_agent.sh", &[r]), PLAN_B)]);
    // Without `orch up`: kept.
    let (code, out, err) = repo.run(&["say", "a", "1.1", "keep the old API"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("kept for the next attempt"), "{out}");
    assert_eq!(repo.run(&["say", "a", "9.9", "x"]).0, 2);
    assert_eq!(repo.run(&["say", "a", "1.1", ""]).0, 2);
    assert_eq!(
        repo.task("a", "1.1")["orchMessages"][0]["text"],
        "keep the old API"
    );
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "task_started" && v["task"] == "1.1"
    });
    support::wait_for("the first attempt's prompt", || {
        r.join("a-1.1-1.prompt").exists()
    });
    let first = read(r, "a-1.1-1.prompt");
    assert!(first.contains("- keep the old API"), "{first}");
    // To the running attempt, with --restart: stopped, the next one has both messages.
    let (code, out, err) = repo.run(&["say", "a", "1.1", "use tabs", "--restart"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("its running attempt is stopped"), "{out}");
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "task_started" && v["task"] == "1.1" && v["attempt"] == 2
    });
    support::wait_for("the second attempt's prompt", || {
        r.join("a-1.1-2.prompt").exists()
    });
    let second = read(r, "a-1.1-2.prompt");
    assert!(
        second.contains("- keep the old API") && second.contains("- use tabs"),
        "{second}"
    );
    std::fs::write(r.join("go"), "").expect("go");
    let out = wait_within(child, std::time::Duration::from_secs(120), "orch up");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(repo.task("a", "1.1")["status"], "completed");
    let s = status_json(&repo, "a");
    assert_eq!(task_of(&s, "1.1")["messages"][1]["text"], "use tabs");
}
