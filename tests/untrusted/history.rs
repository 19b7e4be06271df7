//! The history of forecasts. `<state_dir>/history.jsonl` is orch's own (no agent's
//! write set holds the state directory), but the text it keeps comes from plans and clients,
//! and a file left in its place must not be followed: a hostile or corrupt history line (escape
//! sequences in its names, a line of 100 KB, not JSON, not UTF-8) is skipped or shown escaped,
//! never drives the terminal and never crashes a command; a link or FIFO in place of the file is
//! neither followed nor waited on.

use crate::support::{Repo, agent};

const ONE: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 first\n";

fn state_dir(repo: &Repo) -> std::path::PathBuf {
    repo.root().join(".orch/state")
}

#[test]
fn history_hostile_lines_are_skipped_or_shown_escaped() {
    let repo = Repo::bare_minimum();
    repo.commit_plan_p(
        ONE,
        &agent("ok.sh", &["/dev/null"]),
        "report = \"exit\"",
        "retries = 0",
    );
    let dir = state_dir(&repo);
    std::fs::create_dir_all(&dir).expect("state dir");
    let esc = "\u{1b}]0;owned\u{7}\u{1b}[2J\u{1b}[31m";
    let hostile = serde_json::json!({
        "at": "2026-11-25T10:00:00Z", "run": "2026-11-25T09:00:00Z",
        "plan": format!("p{esc}"), "task": format!("1.1{esc}"),
        "description": format!("wipe\r{esc}the screen"), "agent": format!("a{esc}"),
        "model": esc, "duration_ms": 1000, "outcome": "done",
    });
    let mut text = format!("{hostile}\nnot json at all\n");
    text.push_str(&format!("{{\"plan\":\"{}\"}}\n", "x".repeat(100_000)));
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"\xff\xfe\x1b[31m\n");
    std::fs::write(dir.join(".history.jsonl"), bytes).expect("plant");

    let (code, out, err) = repo.run(&["history"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !out.contains('\u{1b}') && !out.contains('\r'),
        "raw escapes printed: {out:?}"
    );
    assert!(!err.contains('\u{1b}'), "raw escapes in the notes: {err:?}");
    assert!(out.contains("1 attempts"), "{out}");
    assert!(out.contains("\\u{1b}"), "shown escaped: {out}");
    assert_eq!(err.matches("skipped").count(), 3, "{err}");
    assert!(err.contains("line 3: skipped: 100011 bytes long"), "{err}");

    // The JSON keeps the record as it is, escaped by JSON; the notes name the lines.
    let (code, out, _) = repo.run(&["history", "--json"]);
    assert_eq!(code, 0);
    assert!(!out.contains('\u{1b}'));
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["records"][0]["model"], esc);
    assert_eq!(v["skipped"].as_array().map(Vec::len), Some(3));

    // The forecasts read the same file without a crash.
    let (code, out, err) = repo.run(&["status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains('\u{1b}'));
    let (code, _, err) = repo.run(&["history", "--backtest"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn history_a_link_or_fifo_in_its_place_is_not_followed_nor_waited_on() {
    let repo = Repo::bare_minimum();
    repo.commit_plan_p(
        ONE,
        &agent("ok.sh", &["/dev/null"]),
        "report = \"exit\"",
        "retries = 0",
    );
    let dir = state_dir(&repo);
    std::fs::create_dir_all(&dir).expect("state dir");
    let outside = repo.outside("elsewhere.jsonl");
    std::fs::write(&outside, "precious\n").expect("outside");
    std::os::unix::fs::symlink(&outside, dir.join(".history.jsonl")).expect("link");

    let ev = repo.up_events(&[], 0);
    assert_eq!(
        std::fs::read_to_string(&outside).expect("outside"),
        "precious\n"
    );
    let notes: Vec<String> = crate::support::named(&ev, "note")
        .iter()
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect();
    assert!(
        notes.iter().any(|m| m.contains("history not written")),
        "{notes:?}"
    );
    let (code, _, err) = repo.run(&["history"]);
    assert_eq!(code, 0);
    assert!(err.contains("not read"), "{err}");

    // A FIFO: the run neither hangs on it nor writes into it.
    std::fs::remove_file(dir.join(".history.jsonl")).expect("unlink");
    let fifo = dir.join(".history.jsonl");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let (code, out, err) = repo.run(&["task", "reset", "1.1", "--force"]);
    assert_eq!(code, 0, "{out}{err}");
    let ev = repo.up_events(&[], 0);
    assert!(
        crate::support::named(&ev, "note")
            .iter()
            .any(|e| e["message"]
                .as_str()
                .is_some_and(|m| m.contains("history not written"))),
        "{ev:?}"
    );
}
