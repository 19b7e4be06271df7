//! An agent's words never drive the terminal: what orch prints of a failure's cause, a task's
//! text from a landed plan file, a log, shows its control characters as visible escapes
//! (`\u{1b}`), in every view: `orch up`'s lines and summary, `orch status` (text; `--json`
//! keeps JSON's escaping, with the C1 and bidi characters JSON leaves raw escaped too),
//! `orch next`, `orch logs` (the raw bytes with `--raw`), `orch history`, the payload of a
//! `[[notify]]` hook, the body and title of `orch pr`. The sequences tried: clear the screen,
//! cursor home and up, OSC 52 (write the clipboard), OSC 0 (set the title), a carriage return,
//! a backspace, a C1 CSI (`U+009B`), a right-to-left override (`U+202E`).

use std::path::Path;

use serde_json::Value;

use crate::support::{self, Repo, agent, fixtures, named, toml_array};

/// What `hostile_terminal.sh` writes, as orch must show it.
const SHOWN: &str = "\\u{1b}[2J\\u{1b}[H\\u{1b}]52;c;cm0gLXJmIH4K\\u{7}\\u{1b}]0;owned\\u{7}\\u{1b}[5A\\rok\\u{8}\\u{9b}31m\\u{202e}txt";
/// The same, raw.
const RAW: &str = "\u{1b}[2J\u{1b}[H\u{1b}]52;c;cm0gLXJmIH4K\u{7}\u{1b}]0;owned\u{7}\u{1b}[5A\rok\u{8}\u{9b}31m\u{202e}txt";

/// A task's text in a landed plan file, raw and shown.
const TASK_RAW: &str =
    "Fix \u{1b}[31mred\u{1b}[0m \u{9b}2J \u{202e}lave\u{202c} \u{1b}]52;c;eA==\u{7}end";
const TASK_SHOWN: &str =
    "Fix \\u{1b}[31mred\\u{1b}[0m \\u{9b}2J \\u{202e}lave\\u{202c} \\u{1b}]52;c;eA==\\u{7}end";

/// Whether `text` holds a character that drives a terminal or reorders text: a control other
/// than newline and tab, a bidi control, a line separator.
fn drives_a_terminal(text: &str) -> bool {
    text.chars().any(|c| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
    })
}

/// Exit code, stdout and stderr of `orch ARGS`, with both streams checked for raw controls.
fn run_clean(repo: &Repo, args: &[&str]) -> (i32, String, String) {
    let (code, out, err) = repo.run(args);
    assert!(
        !drives_a_terminal(&out),
        "orch {args:?}: raw controls on stdout: {out:?}"
    );
    assert!(
        !drives_a_terminal(&err),
        "orch {args:?}: raw controls on stderr: {err:?}"
    );
    (code, out, err)
}

/// A plan whose task text holds terminal controls, run by an agent that writes them to its log
/// and fails with a cause made of them; a `[[notify]]` hook records the events it gets. Every
/// view shows the text escaped, exactly; the JSON views and the hook's payload keep it (parsed,
/// it is the raw text) with nothing raw in the bytes; `orch logs --raw` gives the bytes back.
#[test]
fn an_agents_words_are_shown_escaped_in_every_view() {
    let repo = Repo::new();
    let record = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notify/record.sh");
    let hook_log = repo.outside("hook.jsonl");
    repo.write(
        "docs/plans/p.md",
        &format!("# P\n\n## Phase 1: Work\n- [ ] 1.1 {TASK_RAW}\n"),
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"a\"\nretries = 0\n\n[agents.a]\ncommand = {}\nreport = \"orch\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n\n\
             [[notify]]\nevents = [\"task_started\", \"task_failed\"]\ncommand = {}\n",
            agent("hostile_terminal.sh", &[]),
            toml_array(&["sh", support::utf8(&record), support::utf8(&hook_log)])
        ),
    );
    repo.commit_all("plans");

    // Before the run: the next task, its text from the plan file.
    let (code, out, _) = run_clean(&repo, &["next"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(TASK_SHOWN), "{out}");

    // The run, as lines (stdout is not a terminal): the start, the failure, the summary.
    let (code, out, err) = run_clean(&repo, &["up"]);
    assert_eq!(code, 5, "{out}\n{err}");
    assert!(
        out.lines()
            .any(|l| l.contains("p 1.1 started") && l.contains(TASK_SHOWN)),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("p 1.1 failed") && l.contains(&format!("cause: {SHOWN}"))),
        "{out}"
    );

    // The status, as text and as JSON (which keeps the text, escaped the JSON way).
    let (code, out, _) = run_clean(&repo, &["status"]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("cause: {SHOWN}")), "{out}");
    let (code, out, _) = run_clean(&repo, &["status", "--json"]);
    assert_eq!(code, 0);
    assert!(out.contains("\\u009b") && out.contains("\\u202e"), "{out}");
    let doc = support::json(&out);
    let task = &doc["plans"][0]["tasks"][0];
    assert_eq!(task["description"], TASK_RAW, "{task}");
    assert_eq!(task["cause"], format!("cause: {RAW}"), "{task}");

    // The log: escaped, but for newlines; raw on request.
    let (code, out, _) = run_clean(&repo, &["logs", "p", "1.1"]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("log: {SHOWN}\n")), "{out}");
    assert!(out.contains(&format!("err: {SHOWN}\n")), "{out}");
    let raw = repo
        .orch(&["logs", "p", "1.1", "--raw"])
        .output()
        .expect("orch logs");
    assert!(raw.status.success());
    let raw = String::from_utf8(raw.stdout).expect("utf-8");
    assert!(raw.contains(&format!("log: {RAW}\n")), "{raw:?}");

    // The history of forecasts keeps the task's text.
    let (code, out, _) = run_clean(&repo, &["history"]);
    assert_eq!(code, 0, "{out}");

    // The hook's payloads: JSON lines with nothing raw, the same text once parsed.
    let payload = std::fs::read_to_string(&hook_log).expect("hook log");
    assert!(!drives_a_terminal(&payload), "{payload:?}");
    let events: Vec<Value> = payload.lines().map(support::json).collect();
    let started = named(&events, "task_started");
    let failed = named(&events, "task_failed");
    assert_eq!(started[0]["description"], TASK_RAW, "{payload}");
    assert_eq!(failed[0]["error"], format!("cause: {RAW}"), "{payload}");
}

/// `orch pr` of a plan whose title and task text (a landed plan file's) hold terminal controls
/// and HTML that would hide the rest of the body: the body given to `gh` shows them escaped
/// (`\u{1b}`, `&lt;!--`), its sections are all there, and the title is one line, escaped.
#[test]
fn a_pull_requests_body_shows_a_plans_text_escaped() {
    let repo = Repo::builder().identity_in_config().build();
    let ok = fixtures().join("ok.sh");
    repo.write(
        "docs/plans/p.md",
        &format!(
            "# Title \u{1b}]0;owned\u{7}\u{202e}x\n\n## Phase 1: Work\n- [ ] 1.1 {TASK_RAW} <!-- hidden\n"
        ),
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"ok\"\n\n[agents.ok]\ncommand = {}\n\n[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n",
            toml_array(&["sh", support::utf8(&ok), "/dev/null"])
        ),
    );
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let remote = repo.outside("remote.git");
    repo.git(&["init", "-q", "--bare", support::utf8(&remote)]);
    repo.git(&["remote", "add", "origin", support::utf8(&remote)]);
    let gh_log = repo.outside("gh.log");
    let gh_state = repo.outside("gh-state");
    let gh_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gh");
    let mut cmd = repo.orch(&["pr"]);
    cmd.env(
        "PATH",
        format!(
            "{}:{}",
            gh_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    )
    .env("GH_LOG", &gh_log)
    .env("GH_STATE", &gh_state);
    let (code, out, err) = repo.run_cmd(&mut cmd);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        !drives_a_terminal(&out) && !drives_a_terminal(&err),
        "{out:?}{err:?}"
    );
    let body = std::fs::read_to_string(gh_state.join("body-1")).expect("body");
    assert!(!drives_a_terminal(&body), "{body:?}");
    assert!(
        body.contains(&format!("- [x] 1.1 {TASK_SHOWN} &lt;!-- hidden")),
        "{body}"
    );
    assert!(!body.contains("<!--"), "{body}");
    assert!(body.contains("## Checks"), "{body}");
    let calls = std::fs::read_to_string(&gh_log).expect("gh log");
    let create = calls
        .lines()
        .find(|l| l.starts_with("pr\tcreate\t"))
        .expect("gh pr create");
    let args: Vec<&str> = create.split('\t').collect();
    let title = args[args.iter().position(|a| *a == "--title").expect("title") + 1];
    assert_eq!(title, "p: Title \\u{1b}]0;owned\\u{7}\\u{202e}x");
}
