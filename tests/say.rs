//! A person's messages to a running task (`orch say`): delivered as lines on the stdin of an
//! agent that reads them (`input = "lines"`), each escaped to one line, only to its own task;
//! kept for the next attempt otherwise (an agent that does not read its input, a line too
//! long for one write), and the next attempt's prompt holds them.

use crate::support;

use std::path::Path;
use std::process::Child;
use std::sync::mpsc::Receiver;

use serde_json::Value;
use support::{Repo, agent_at, read_lines, wait_line, wait_within};

/// Two tasks that run side by side.
const PLAN: &str = "# A\n\n## Phase 1: Work\n- [ ] 1.1 listen\n- [ ] 1.2 listen too\n";

fn up(repo: &Repo) -> (Child, Receiver<Value>) {
    let mut child = repo.orch(&["up", "--json"]).spawn().expect("spawn orch up");
    let lines = read_lines(&mut child);
    (child, lines)
}

/// Plan `a` with agent `command` (its table's other lines in `agent_extra`), both tasks at once.
fn manifest(repo: &Repo, command: &str, agent_extra: &str) {
    repo.write("docs/plans/a.md", PLAN);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nmax_agents = 4\nretries = 0\n\n[agents.l]\ncommand = {command}\n\
             {agent_extra}\n\n[[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\nagent = \"l\"\n\
             parallel = 2\n"
        ),
    );
    repo.commit_all("plans");
}

fn said(repo: &Repo, id: &str, text: &str) -> String {
    let (code, out, err) = repo.run(&["say", "a", id, text]);
    assert_eq!(code, 0, "orch say: {out}{err}");
    out
}

#[test]
fn a_message_to_a_running_agent_that_reads_its_input_is_delivered_as_one_line() {
    let rec = tempfile::tempdir().expect("tmp");
    let r = rec.path();
    let repo = Repo::new();
    let listen = agent_at("listen_agent.sh", &[r, Path::new("2")]);
    manifest(&repo, &listen, "input = \"lines\"");
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    for id in ["1.1", "1.2"] {
        wait_line(&lines, &mut seen, |v| {
            v["event"] == "task_started" && v["task"] == id
        });
        support::wait_for("the agent to listen", || {
            r.join(format!("a-{id}.started")).exists()
        });
    }
    // Several lines, a terminal's escape and a backslash: one line each, escaped.
    let out = said(&repo, "1.1", "first line\nsecond\r\u{1b}[31mred");
    assert!(
        out.starts_with("delivered (to its running attempt 1)"),
        "{out}"
    );
    // Too long for one write of a pipe once escaped: kept, never cut.
    let long = "\u{7}".repeat(1500);
    let out = said(&repo, "1.2", &long);
    assert!(out.starts_with("kept for the next attempt"), "{out}");
    let out = said(&repo, "1.1", "back\\slash");
    assert!(out.starts_with("delivered"), "{out}");
    for text in ["for 1.2 only", "and this"] {
        let out = said(&repo, "1.2", text);
        assert!(out.starts_with("delivered"), "{out}");
    }
    let out = wait_within(child, std::time::Duration::from_secs(120), "orch up");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What each agent heard is in its commit: its own task's messages only, one a line.
    let heard = |id: &str| repo.git(&["show", &format!("plan/a:heard-{id}.txt")]);
    assert_eq!(
        heard("1.1"),
        "first line\\nsecond\\r\\u{1b}[31mred\nback\\\\slash"
    );
    assert_eq!(heard("1.2"), "for 1.2 only\nand this");
    let t = repo.task("a", "1.1");
    assert_eq!(t["status"], "completed");
    assert_eq!(t["orchMessages"][0]["delivery"], "delivered");
    assert_eq!(t["orchMessages"][0]["attempt"], 1);
    let t = repo.task("a", "1.2");
    assert_eq!(t["orchMessages"][0]["delivery"], "kept");
    assert_eq!(t["orchMessages"][1]["delivery"], "delivered");
}

/// An agent that does not read its input: the message is kept, and the next attempt's prompt
/// holds it (that attempt started now by `--restart`, with no retry used).
#[test]
fn a_message_to_an_agent_that_does_not_read_is_kept_for_the_next_attempt() {
    let rec = tempfile::tempdir().expect("tmp");
    let r = rec.path();
    let repo = Repo::new();
    let agent = agent_at("say_agent.sh", &[r]);
    manifest(&repo, &agent, "");
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "task_started" && v["task"] == "1.1"
    });
    support::wait_for("the first attempt", || r.join("a-1.1.started").exists());
    let out = said(&repo, "1.1", "keep the old API");
    assert!(out.starts_with("kept for the next attempt"), "{out}");
    support::wait_for("the record of the message", || {
        repo.task("a", "1.1")["orchMessages"][0]["delivery"] == "kept"
    });
    let first = std::fs::read_to_string(r.join("a-1.1-1.prompt")).expect("prompt");
    assert!(!first.contains("keep the old API"), "{first}");
    let (code, out, err) = repo.run(&["say", "a", "1.1", "now", "--restart"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "task_started" && v["task"] == "1.1" && v["attempt"] == 2
    });
    support::wait_for("the second attempt's prompt", || {
        r.join("a-1.1-2.prompt").exists()
    });
    let second = std::fs::read_to_string(r.join("a-1.1-2.prompt")).expect("prompt");
    assert!(
        second.contains("- keep the old API") && second.contains("- now"),
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
    let t = repo.task("a", "1.1");
    assert_eq!(t["status"], "completed");
    assert_eq!(t["retry_count"].as_u64().unwrap_or(0), 0, "{t}");
}

/// A message to a task that is completed is refused (exit 4): no attempt of it will read it,
/// and nothing is kept in its status file.
#[test]
fn a_message_to_a_completed_task_is_refused_and_nothing_is_kept() {
    let repo = Repo::new();
    repo.write(
        "docs/plans/a.md",
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 work\n",
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\n\n[agents.l]\ncommand = {}\n\n[[plan]]\nname = \"a\"\n\
             file = \"docs/plans/a.md\"\nagent = \"l\"\n",
            agent_at("ok.sh", &[&repo.outside("journal")])
        ),
    );
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["up", "a"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(repo.task("a", "1.1")["status"], "completed");
    let before = std::fs::read(repo.status_path("a")).expect("status");
    let (code, out, err) = repo.run(&["say", "a", "1.1", "one more thing"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        err.contains("1.1 is completed") && err.contains("nothing was kept"),
        "{err}"
    );
    assert!(!out.contains("kept for the next attempt"), "{out}");
    assert_eq!(
        std::fs::read(repo.status_path("a")).expect("status"),
        before,
        "the status file changed"
    );
}
