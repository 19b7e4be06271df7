//! A person's messages to an agent with streaming input (`input = "stream-json"`, Claude Code's
//! `--input-format stream-json`): the prompt is the agent's first user message on its stdin, a
//! message said while its turn runs is the next one, and orch closes its stdin once the agent
//! ends its turn (a `result` event), so the agent ends; a message said after that is kept for
//! the next attempt, never written into a pipe nobody reads. The real Claude Code preset is
//! tested the same way in `tests/agents_real_say.rs`.

use crate::support;

use std::process::Child;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use serde_json::Value;
use support::{Repo, fixtures, read_lines, toml_array, wait_line, wait_within};

const PLAN: &str = "# A\n\n## Phase 1: Work\n- [ ] 1.1 listen while working\n";

/// Plan `a`, one task, with the streaming agent in `mode`, its records in `rec` (writable for
/// it); `sandbox` on or off.
fn setup(repo: &Repo, rec: &std::path::Path, mode: &str, sandbox: bool) {
    let command = toml_array(&[
        support::sink::python(),
        fixtures().join("stream_agent.py").display().to_string(),
        rec.display().to_string(),
        mode.to_string(),
    ]);
    repo.write("docs/plans/a.md", PLAN);
    let sandbox = if sandbox { "on" } else { "off" };
    let rec = rec.display();
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nsandbox = \"{sandbox}\"\n\n[agents.s]\ncommand = {command}\n\
             input = \"stream-json\"\nsandbox_write = [\"{rec}\"]\n\n[[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\n\
             agent = \"s\"\n"
        ),
    );
    repo.commit_all("plans");
}

fn up(repo: &Repo) -> (Child, Receiver<Value>) {
    let mut cmd = repo.orch(&["up", "--json"]);
    // The sandbox as the manifest says.
    cmd.env_remove("ORCH_SANDBOX");
    let mut child = cmd.spawn().expect("spawn orch up");
    let lines = read_lines(&mut child);
    (child, lines)
}

fn said(repo: &Repo, text: &str) -> String {
    let (code, out, err) = repo.run(&["say", "a", "1.1", text]);
    assert_eq!(code, 0, "orch say: {out}{err}");
    out
}

fn ended(child: Child) -> std::process::Output {
    let out = wait_within(child, Duration::from_secs(120), "orch up");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn confined_too() -> Vec<bool> {
    if orch::sandbox::supported() {
        vec![false, true]
    } else {
        eprintln!("the sandbox is not supported here: only unconfined");
        vec![false]
    }
}

/// The prompt comes first, as a user message; a message said during the turn is the next one,
/// whole (several lines, quotes, a terminal's escape); once the agent ends its turn its stdin
/// closes and it ends by itself: the run is done with nothing more written.
#[test]
fn the_prompt_then_a_message_reach_the_agent_and_its_input_closes_after_its_turn() {
    for sandbox in confined_too() {
        let rec = tempfile::tempdir().expect("tmp");
        let r = rec.path();
        let repo = Repo::new();
        setup(&repo, r, "listen", sandbox);
        let (child, lines) = up(&repo);
        let mut seen = Vec::new();
        wait_line(&lines, &mut seen, |v| {
            v["event"] == "task_started" && v["task"] == "1.1"
        });
        support::wait_for("the agent to listen", || r.join("a-1.1.started").exists());
        let text = "use the \"old\" API\nnot the new one\u{1b}[31m";
        let out = said(&repo, text);
        assert!(
            out.starts_with("delivered (to its running attempt 1)"),
            "{out}"
        );
        ended(child);

        let first: Value = serde_json::from_str(
            &std::fs::read_to_string(r.join("a-1.1.first.json")).expect("first"),
        )
        .expect("json");
        assert_eq!(first["type"], "user", "{first}");
        let prompt = first["message"]["content"].as_str().expect("content");
        assert!(
            prompt.contains("## Task 1.1: listen while working"),
            "the prompt is the first message: {prompt}"
        );
        // What the agent heard is in its commit: the person's words, said to be theirs.
        let heard = repo.git(&["show", "plan/a:heard.txt"]);
        assert!(
            heard.starts_with("A message from the person who runs this plan"),
            "{heard}"
        );
        assert!(heard.ends_with(text), "{heard:?}");
        // Its stdin was closed after its turn, with nothing more on it.
        assert_eq!(
            std::fs::read_to_string(r.join("a-1.1.rest")).expect("rest"),
            ""
        );
        let t = repo.task("a", "1.1");
        assert_eq!(t["status"], "completed", "{t}");
        assert_eq!(t["orchMessages"][0]["delivery"], "delivered", "{t}");
        assert_eq!(t["orchMessages"][0]["attempt"], 1, "{t}");
    }
}

/// Once the agent ended its turn, its stdin is closed: a message said while it still runs is
/// kept for the next attempt (recorded so), and nothing reaches the closed pipe.
#[test]
fn a_message_said_after_the_agents_turn_ended_is_kept_for_the_next_attempt() {
    for sandbox in confined_too() {
        let rec = tempfile::tempdir().expect("tmp");
        let r = rec.path();
        let repo = Repo::new();
        setup(&repo, r, "late", sandbox);
        let (child, lines) = up(&repo);
        let mut seen = Vec::new();
        wait_line(&lines, &mut seen, |v| {
            v["event"] == "task_started" && v["task"] == "1.1"
        });
        // The agent saw its stdin close after its turn (else it would wait forever).
        support::wait_for("orch to close the agent's input", || {
            r.join("a-1.1.closed").exists()
        });
        let out = said(&repo, "too late for this attempt");
        assert!(out.starts_with("kept for the next attempt"), "{out}");
        std::fs::write(r.join("go"), "").expect("go");
        ended(child);
        assert_eq!(
            std::fs::read_to_string(r.join("a-1.1.closed")).expect("closed"),
            ""
        );
        let t = repo.task("a", "1.1");
        assert_eq!(t["status"], "completed", "{t}");
        assert_eq!(t["orchMessages"][0]["delivery"], "kept", "{t}");
        assert_eq!(repo.git(&["show", "plan/a:late.txt"]), "late");
    }
}
