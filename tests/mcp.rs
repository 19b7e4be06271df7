//! `orch mcp`, the MCP server over orch's verbs, driven by real MCP clients: the SDK's own
//! (rmcp's client starting `orch mcp` as a child process) calls every tool of a real repository
//! and compares each result with what `orch VERB --json` prints there, and each error's exit code
//! and message with the command line's; `wait` returns when a detached `orch up` finishes a task
//! and times out cleanly; agents' escapes and a huge log come back escaped and bounded; and the
//! real Claude Code CLI, configured with the server, calls `status`, `wait` and `answer` as its
//! (fake) model tells it, the answer landing in orch's state.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt as _};
use serde_json::{Value, json};

use crate::support::{self, Repo, toml_array};

type Client = RunningService<RoleClient, ()>;

/// Each test's whole deadline.
const DEADLINE: Duration = Duration::from_secs(240);

/// `orch mcp ARGS` started by the SDK's client in `dir`, as `repo` runs orch (its HOME, a
/// clean environment).
async fn serve(repo: &Repo, dir: &Path, args: &[&str]) -> Client {
    let mut all = vec!["mcp"];
    all.extend_from_slice(args);
    let mut std_cmd = repo.orch(&all);
    support::in_dir(&mut std_cmd, dir);
    let cmd = tokio::process::Command::from(std_cmd);
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .expect("start orch mcp");
    ().serve(transport).await.expect("the MCP session starts")
}

/// A tool's result: whether it is an error, and its text.
async fn call(c: &Client, name: &str, args: Value) -> (bool, String) {
    let args = args.as_object().cloned().unwrap_or_default();
    let r = c
        .call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("tool {name}: {e}"));
    let text: String = r
        .content
        .iter()
        .filter_map(|b| b.as_text())
        .map(|t| t.text.clone())
        .collect();
    (r.is_error == Some(true), text)
}

/// `v` without what depends on the time it was made (a forecast's end, `eta_p50`, `eta_p90`).
fn stable(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|k, _| !k.starts_with("eta_"));
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The tool's result is what `orch CLI...` prints: the same bytes on success; on a failure,
/// its exit code, its stderr as the message, and what it printed as the output.
async fn same_as_cli(c: &Client, repo: &Repo, dir: &Path, tool: &str, args: Value, cli: &[&str]) {
    let mut cmd = repo.orch(cli);
    support::in_dir(&mut cmd, dir);
    let (code, out, err) = repo.run_cmd(&mut cmd);
    let (is_error, text) = call(c, tool, args.clone()).await;
    if code == 0 {
        assert!(
            !is_error,
            "{tool} {args}: an error where `orch {cli:?}` exits 0: {text}"
        );
        match serde_json::from_str::<Value>(&out) {
            // The same document, but for the forecasts' times (`now` moved on).
            Ok(cli_json) if text != out => {
                assert_eq!(
                    stable(json_of(&text)),
                    stable(cli_json),
                    "{tool} {args} against `orch {cli:?}`"
                )
            }
            _ => assert_eq!(text, out, "{tool} {args} against `orch {cli:?}`"),
        }
    } else {
        assert!(
            is_error,
            "{tool} {args}: no error where `orch {cli:?}` exits {code}: {text}"
        );
        let v = json_of(&text);
        assert_eq!(v["exit_code"], code, "{tool} {args}: {text}");
        assert_eq!(v["message"], err.trim_end(), "{tool} {args}");
        if out.trim().is_empty() {
            assert!(v.get("output").is_none(), "{text}");
        } else {
            assert_eq!(
                stable(v["output"].clone()),
                stable(json_of(&out)),
                "{tool} {args}"
            );
        }
    }
}

/// Two plans, run to their end by a scripted agent (`report = "exit"`) that writes a file of
/// its own and `shared.txt` (so that the plans conflict) and logs a line.
fn ran_repo() -> Repo {
    let repo = Repo::new();
    let agent = toml_array(&[
        "sh",
        "-c",
        "echo \"$ORCH_TASK\" > \"$ORCH_PLAN-$ORCH_TASK.txt\"; echo \"by $ORCH_PLAN\" > shared.txt; echo \"log of $ORCH_PLAN $ORCH_TASK\"",
    ]);
    repo.manifest(
        &agent,
        "report = \"exit\"",
        "retries = 0",
        &[("a", ""), ("b", "")],
    );
    repo.write(
        "docs/plans/a.md",
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 first (est: 10m)\n- [ ] 1.2 second (depends: 1.1)\n",
    );
    repo.write(
        "docs/plans/b.md",
        "# B\n\n## Phase 1: Work\n- [ ] 1.1 other\n",
    );
    repo.commit_all("plans");
    repo.up(&[]);
    repo
}

fn tool_names(tools: &[rmcp::model::Tool]) -> Vec<String> {
    tools.iter().map(|t| t.name.to_string()).collect()
}

const READ_TOOLS: [&str; 10] = [
    "check",
    "status",
    "next",
    "graph",
    "simulate",
    "conflicts",
    "merge",
    "history",
    "logs",
    "wait",
];
const CONTROL_TOOLS: [&str; 9] = [
    "up", "task", "say", "answer", "pause", "resume", "retry", "stop", "resolve",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_tool_answers_as_its_verb_does() {
    tokio::time::timeout(DEADLINE, async {
        let repo = ran_repo();
        let root = repo.root().to_path_buf();
        let c = serve(&repo, &root, &[]).await;
        let tools = c.list_all_tools().await.expect("tools/list");
        let mut names = tool_names(&tools);
        names.sort();
        let mut want: Vec<String> = READ_TOOLS.iter().map(|s| (*s).to_string()).collect();
        want.sort();
        assert_eq!(names, want, "only the read verbs without --allow-control");
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            ("check", json!({}), vec!["check", "--json"]),
            (
                "check",
                json!({"plan": "a"}),
                vec!["check", "--plan", "a", "--json"],
            ),
            ("status", json!({}), vec!["status", "--json"]),
            (
                "status",
                json!({"plan": "a"}),
                vec!["status", "--plan", "a", "--json"],
            ),
            (
                "status",
                json!({"plan": "nope"}),
                vec!["status", "--plan", "nope", "--json"],
            ),
            ("next", json!({}), vec!["next", "--json"]),
            (
                "next",
                json!({"plan": "a", "count": 1}),
                vec!["next", "--plan", "a", "-n", "1", "--json"],
            ),
            (
                "next",
                json!({"why": "a:1.2"}),
                vec!["next", "--why", "a:1.2", "--json"],
            ),
            ("graph", json!({}), vec!["graph"]),
            (
                "graph",
                json!({"format": "mermaid"}),
                vec!["graph", "--format", "mermaid"],
            ),
            (
                "graph",
                json!({"format": "svg"}),
                vec!["graph", "--format", "svg"],
            ),
            (
                "simulate",
                json!({"slots": [1, 2], "seed": 7}),
                vec!["simulate", "--slots", "1,2", "--seed", "7", "--json"],
            ),
            (
                "simulate",
                json!({"plans": ["zzz"]}),
                vec!["simulate", "zzz", "--json"],
            ),
            ("conflicts", json!({}), vec!["conflicts", "--json"]),
            (
                "conflicts",
                json!({"plans": ["a"]}),
                vec!["conflicts", "a", "--json"],
            ),
            ("merge", json!({}), vec!["merge", "--dry-run", "--json"]),
            (
                "merge",
                json!({"plans": ["b"]}),
                vec!["merge", "b", "--dry-run", "--json"],
            ),
            ("history", json!({}), vec!["history", "--json"]),
            ("logs", json!({"plan": "a"}), vec!["logs", "a", "--json"]),
            (
                "logs",
                json!({"plan": "a", "task": "1.1"}),
                vec!["logs", "a", "1.1", "--json"],
            ),
            (
                "logs",
                json!({"plan": "a", "task": "9.9"}),
                vec!["logs", "a", "9.9", "--json"],
            ),
            (
                "logs",
                json!({"plan": "nope"}),
                vec!["logs", "nope", "--json"],
            ),
        ];
        for (tool, args, cli) in cases {
            same_as_cli(&c, &repo, &root, tool, args, &cli).await;
        }
        // What was run shows in what came back (the test compares real output).
        let (_, status) = call(&c, "status", json!({"plan": "a"})).await;
        assert_eq!(json_of(&status)["summary"]["completed"], 2, "{status}");
        let (_, log) = call(&c, "logs", json!({"plan": "b", "task": "1.1"})).await;
        assert!(
            json_of(&log)["text"]
                .as_str()
                .unwrap_or_default()
                .contains("log of b 1.1"),
            "{log}"
        );

        // Arguments that make no command line: invalid input (exit 2), nothing run.
        for (tool, args) in [
            ("status", json!({"manifest": "/etc/plans.toml"})),
            ("next", json!({"count": "three"})),
            ("logs", json!({})),
            ("wait", json!({"events": ["task_exploded"]})),
            ("wait", json!({"plan": "nope", "timeout_s": 0})),
        ] {
            let (is_error, text) = call(&c, tool, args.clone()).await;
            assert!(is_error, "{tool} {args}: {text}");
            assert_eq!(json_of(&text)["exit_code"], 2, "{tool} {args}: {text}");
        }
        // A tool orch does not have is the protocol's error.
        let unknown = c.call_tool(CallToolRequestParams::new("rm")).await;
        assert!(unknown.is_err(), "{unknown:?}");

        // The control verbs: not listed, refused (exit 4), nothing changed.
        let main_before = repo.rev("main");
        let status_before = repo.status_file("a");
        for (tool, args) in [
            ("answer", json!({"plan": "a", "task": "1.1", "text": "x"})),
            ("pause", json!({"plan": "a"})),
            ("up", json!({})),
            ("merge", json!({"land": true})),
        ] {
            let (is_error, text) = call(&c, tool, args).await;
            assert!(is_error, "{tool}: {text}");
            let v = json_of(&text);
            assert_eq!(v["exit_code"], 4, "{tool}: {text}");
            assert!(
                v["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("--allow-control"),
                "{tool}: {text}"
            );
        }
        assert_eq!(repo.rev("main"), main_before, "nothing landed");
        assert_eq!(repo.status_file("a"), status_before, "no status changed");
        c.cancel().await.expect("close");

        // With --allow-control: listed and carried out, with their exit codes.
        let c = serve(&repo, &root, &["--allow-control"]).await;
        let names = tool_names(&c.list_all_tools().await.expect("tools/list"));
        for t in READ_TOOLS.iter().chain(CONTROL_TOOLS.iter()) {
            assert!(names.iter().any(|n| n == t), "{t} not in {names:?}");
        }
        let (is_error, text) = call(&c, "pause", json!({"plan": "a"})).await;
        assert!(!is_error, "{text}");
        assert_eq!(json_of(&text)["event"], "plan_paused", "{text}");
        assert!(
            !repo.status_file("a")["orchPlanPaused"].is_null(),
            "paused in the status file"
        );
        let (is_error, text) = call(&c, "resume", json!({"plan": "a"})).await;
        assert!(!is_error, "{text}");
        assert!(repo.status_file("a")["orchPlanPaused"].is_null(), "resumed");
        // A refused control verb carries the command line's exit code and message.
        same_as_cli(
            &c,
            &repo,
            &root,
            "retry",
            json!({"plan": "a", "task": "1.1"}),
            &["retry", "a", "1.1", "--json"],
        )
        .await;
        same_as_cli(
            &c,
            &repo,
            &root,
            "answer",
            json!({"plan": "a", "task": "1.1", "text": "--force"}),
            &["answer", "--json", "--", "a", "1.1", "--force"],
        )
        .await;
        c.cancel().await.expect("close");

        // No manifest where the server runs: each tool says so as orch does (exit 2).
        let empty = tempfile::tempdir().expect("tempdir");
        let c = serve(&repo, empty.path(), &[]).await;
        same_as_cli(
            &c,
            &repo,
            empty.path(),
            "status",
            json!({}),
            &["status", "--json"],
        )
        .await;
        same_as_cli(
            &c,
            &repo,
            empty.path(),
            "next",
            json!({}),
            &["next", "--json"],
        )
        .await;
        let (is_error, text) = call(&c, "wait", json!({"timeout_s": 0})).await;
        assert!(is_error, "{text}");
        assert_eq!(json_of(&text)["exit_code"], 2, "{text}");
        c.cancel().await.expect("close");
    })
    .await
    .expect("within the test's deadline");
}

/// A plan whose one task's agent finishes only once the test creates `gate`.
fn gated_repo(gate: &Path) -> Repo {
    let repo = Repo::new();
    let agent = toml_array(&[
        "sh",
        "-c",
        &format!(
            "while [ ! -e '{}' ]; do sleep 0.02; done; echo done > g.txt",
            gate.display()
        ),
    ]);
    repo.manifest(&agent, "report = \"exit\"", "retries = 0", &[("g", "")]);
    repo.write(
        "docs/plans/g.md",
        "# G\n\n## Phase 1: Work\n- [ ] 1.1 wait for the gate\n",
    );
    repo.commit_all("plans");
    repo
}

/// The event's `at` time.
fn at_of(event: &Value) -> chrono::DateTime<chrono::Utc> {
    event["at"]
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| panic!("no time: {event}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_returns_when_a_detached_run_finishes_a_task_and_times_out_cleanly() {
    tokio::time::timeout(DEADLINE, async {
        let gate_dir = tempfile::tempdir().expect("tempdir");
        let gate = gate_dir.path().join("open");
        let repo = gated_repo(&gate);
        let root = repo.root().to_path_buf();

        // Nothing happens: the wait ends at its timeout, saying so.
        let c = serve(&repo, &root, &["--allow-control"]).await;
        let t0 = Instant::now();
        let (is_error, text) = call(&c, "wait", json!({"timeout_s": 1})).await;
        let waited = t0.elapsed();
        assert!(!is_error, "{text}");
        let v = json_of(&text);
        assert_eq!(v["timed_out"], true, "{text}");
        assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(5), "{waited:?}");
        let cursor = v["cursor"].as_u64().expect("cursor");

        // `up` starts the run detached and returns once it runs.
        let (is_error, text) = call(&c, "up", json!({})).await;
        assert!(!is_error, "{text}");
        let started = json_of(&text);
        assert_eq!(started["started"], true, "{text}");
        let pid = started["pid"].as_u64().expect("pid") as u32;
        // The server goes; the run stays.
        c.cancel().await.expect("close");
        assert!(support::process_alive(pid), "orch up outlives the MCP server");

        // A new server's wait, from the cursor, returns when the task is done.
        let c = serve(&repo, &root, &[]).await;
        let peer = c.peer().clone();
        let waiting = tokio::spawn(async move {
            let args = json!({"events": ["task_finished", "task_failed"], "cursor": cursor, "timeout_s": 120});
            let r = peer
                .call_tool(
                    CallToolRequestParams::new("wait")
                        .with_arguments(args.as_object().cloned().unwrap_or_default()),
                )
                .await
                .expect("wait");
            (chrono::Utc::now(), r)
        });
        std::fs::write(&gate, "").expect("open the gate");
        let (returned, r) = waiting.await.expect("join");
        let text: String = r.content.iter().filter_map(|b| b.as_text()).map(|t| t.text.clone()).collect();
        assert_ne!(r.is_error, Some(true), "{text}");
        let v = json_of(&text);
        assert_eq!(v["event"]["event"], "task_finished", "{text}");
        assert_eq!(v["event"]["plan"], "g");
        assert_eq!(v["event"]["task"], "1.1");
        let delay = returned - at_of(&v["event"]);
        eprintln!("wait woke {} ms after the event", delay.num_milliseconds());
        // Woken by the watcher, not by the 2 s tick it falls back on.
        assert!(delay.num_milliseconds() < 1500, "{delay:?}");
        // orch's records agree: the task is completed (its status file written just after the
        // event), its file committed.
        support::wait_for("the status file", || repo.task("g", "1.1")["status"] == "completed");
        assert!(repo.tree_files("plan/g").contains(&"g.txt".to_string()));

        // The run's end, from where the last wait stopped.
        let (is_error, text) = call(
            &c,
            "wait",
            json!({"events": ["run_finished"], "cursor": v["cursor"], "timeout_s": 120}),
        )
        .await;
        assert!(!is_error, "{text}");
        assert_eq!(json_of(&text)["event"]["event"], "run_finished", "{text}");
        support::wait_for("orch up to exit", || !support::process_alive(pid));
        c.cancel().await.expect("close");
    })
    .await
    .expect("within the test's deadline");
}

/// The sequences a hostile agent writes to drive a terminal, each of which must come back
/// escaped (never as the raw character) in a tool's text.
const RAW: [char; 6] = ['\u{1b}', '\u{7}', '\u{8}', '\r', '\u{9b}', '\u{202e}'];

fn assert_escaped(what: &str, text: &str) {
    for c in RAW {
        assert!(!text.contains(c), "{what}: raw {c:?} in {text:.2000}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_escapes_and_a_huge_log_come_back_escaped_and_bounded() {
    tokio::time::timeout(DEADLINE, async {
        let repo = Repo::new();
        let hostile = support::agent("hostile_terminal.sh", &[]);
        // 3 MB of text, then 1.5 MB of escape bytes (each six bytes once escaped in JSON), then
        // a last escape sequence and " end".
        let huge = toml_array(&[
            "sh",
            "-c",
            "head -c 3000000 /dev/zero | tr '\\000' x; head -c 1500000 /dev/zero | tr '\\000' '\\033'; printf '\\033[2J\\033]52;c;eA==\\007 end\\n'",
        ]);
        // A task text of escapes too: the plan file's.
        let text = "# H\n\n## Phase 1: Work\n- [ ] 1.1 title \u{1b}]0;owned\u{7} \u{1b}[2J \u{202e}txt\n";
        repo.plans(&[("h", hostile, text), ("big", huge, "# Big\n\n## Phase 1: Work\n- [ ] 1.1 print\n")]);
        let (code, out, err) = repo.run(&["up", "--json"]);
        assert_eq!(code, 5, "h fails: {out}{err}");
        let root = repo.root().to_path_buf();
        let c = serve(&repo, &root, &[]).await;

        // The task text and the cause: escaped in the text, the same JSON as the CLI's.
        let (_, status) = call(&c, "status", json!({"plan": "h"})).await;
        assert_escaped("status", &status);
        let (_, cli, _) = repo.run(&["status", "--plan", "h", "--json"]);
        assert_eq!(stable(json_of(&status)), stable(json_of(&cli)));
        let task = &json_of(&status)["tasks"][0];
        assert!(task["description"].as_str().unwrap_or_default().contains("\u{1b}]0;owned"), "{task}");
        assert!(task["cause"].as_str().unwrap_or_default().contains("\u{1b}[2J"), "{task}");

        // The log of escapes.
        let (_, log) = call(&c, "logs", json!({"plan": "h", "task": "1.1"})).await;
        assert_escaped("logs", &log);
        assert!(json_of(&log)["text"].as_str().unwrap_or_default().contains("\u{1b}]52;c;"), "{log}");

        // The huge log: its end only, 64 KiB by default, as much as asked up to 1 MiB; a tail
        // whose escaped JSON is past the 2 MiB a result holds is refused (exit 1), saying how to
        // narrow it.
        for (args, max) in [
            (json!({"plan": "big", "task": "1.1"}), 64 << 10),
            (json!({"plan": "big", "task": "1.1", "tail_bytes": 100}), 100),
        ] {
            let (is_error, log) = call(&c, "logs", args.clone()).await;
            assert!(!is_error, "{args}: {log:.500}");
            assert_escaped("huge log", &log);
            let v = json_of(&log);
            let text = v["text"].as_str().unwrap_or_default();
            assert_eq!(text.len(), max, "{args}");
            assert!(text.contains(" end\n=== orch: attempt 1 ended"), "{args}: the log's end: {:?}", &text[text.len().saturating_sub(120)..]);
            assert_eq!(v["truncated"], true);
            assert!(v["size"].as_u64().unwrap_or_default() > 4_500_000);
        }
        let (is_error, log) = call(&c, "logs", json!({"plan": "big", "task": "1.1", "tail_bytes": 50_000_000})).await;
        assert!(is_error, "{log:.500}");
        let v = json_of(&log);
        assert_eq!(v["exit_code"], 1, "{log}");
        assert!(v["message"].as_str().unwrap_or_default().contains("tail_bytes"), "{log}");
        assert!(log.len() < 4096, "no output with the refusal: {}", log.len());

        // The failure's event: escaped too.
        let (_, ev) = call(&c, "wait", json!({"events": ["task_failed"], "cursor": 0, "timeout_s": 5})).await;
        assert_escaped("wait", &ev);
        let v = json_of(&ev);
        assert_eq!(v["event"]["plan"], "h", "{ev}");
        assert!(v["event"]["error"].as_str().unwrap_or_default().contains("\u{1b}]52;c;"), "{ev}");
        c.cancel().await.expect("close");
    })
    .await
    .expect("within the test's deadline");
}

/// The real Claude Code CLI (pinned, `ORCH_TEST_CLIS`) with `orch mcp --allow-control` in its
/// `--mcp-config`: its model (the fake API, scripted) calls `status`, then `wait` for a
/// question, then `answer`; the results it got are orch's, and the answer lands in orch's
/// state (the task pending again, the answer kept).
#[test]
fn claude_code_calls_status_wait_and_answer_through_orch_mcp() {
    use support::clis::{RUN_TIMEOUT, client_env, clis};
    use support::fake_api::{Behaviour, FakeApi};
    let Some(clis) = clis() else {
        return;
    };
    let rec = tempfile::tempdir().expect("tempdir");
    let repo = Repo::new();
    let asker = support::agent_at("asker.sh", &[Path::new("1.1"), rec.path()]);
    repo.plans(&[(
        "a",
        asker,
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 pick a database\n",
    )]);
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 5, "the task waits for an answer: {out}{err}");
    assert_eq!(repo.task("a", "1.1")["status"], "needs_input");

    let answer = "SQLite, in one file";
    let api = FakeApi::start(Behaviour::CallsTools {
        script: vec![
            ("mcp__orch__status".into(), json!({"plan": "a"})),
            (
                "mcp__orch__wait".into(),
                json!({"events": ["task_needs_input"], "plan": "a", "cursor": 0, "timeout_s": 30}),
            ),
            (
                "mcp__orch__answer".into(),
                json!({"plan": "a", "task": "1.1", "text": answer}),
            ),
        ],
        done: "I answered the question orch's agent asked.".into(),
    });
    let config = repo.outside("mcp.json");
    std::fs::write(
        &config,
        json!({"mcpServers": {"orch": {"command": env!("CARGO_BIN_EXE_orch"), "args": ["mcp", "--allow-control"]}}})
            .to_string(),
    )
    .expect("mcp config");
    let mut cmd = std::process::Command::new(clis.join("bin/claude"));
    support::in_dir(&mut cmd, repo.root())
        .args([
            "-p",
            "Answer the question orch's agent asked.",
            "--mcp-config",
        ])
        .arg(&config)
        .args([
            "--strict-mcp-config",
            "--allowedTools",
            "mcp__orch__status,mcp__orch__wait,mcp__orch__answer",
            "--output-format",
            "json",
        ])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        // orch's tools in every request, not deferred behind Claude Code's `ToolSearch` (whose
        // turn the scripted model would have to play too).
        .env("ENABLE_TOOL_SEARCH", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    client_env(&mut cmd, &clis, &api, repo.home());
    let (code, out, err) = support::code_out_err(&support::wait_within(
        cmd.spawn().expect("spawn claude"),
        RUN_TIMEOUT,
        "claude",
    ));
    let results = api.tool_results();
    let context =
        format!("claude exit {code}\nstdout:\n{out}\nstderr:\n{err}\nresults: {results:?}");
    assert_eq!(code, 0, "{context}");
    let result_of = |tool: &str| {
        results
            .iter()
            .find(|r| r.call.starts_with(&format!("mcp__orch__{tool} ")))
            .unwrap_or_else(|| panic!("no result of {tool}: {context}"))
    };
    let status = result_of("status");
    assert!(!status.error, "{context}");
    assert_eq!(
        json_of(&status.output)["tasks"][0]["status"],
        "needs_input",
        "{context}"
    );
    assert_eq!(
        json_of(&status.output)["tasks"][0]["question"],
        "PostgreSQL or SQLite?"
    );
    let wait = result_of("wait");
    assert!(!wait.error, "{context}");
    let ev = &json_of(&wait.output)["event"];
    assert_eq!(ev["event"], "task_needs_input", "{context}");
    assert_eq!(ev["question"], "PostgreSQL or SQLite?", "{context}");
    let answered = result_of("answer");
    assert!(!answered.error, "{context}");
    assert_eq!(
        json_of(&answered.output)["event"],
        "task_answered",
        "{context}"
    );
    // In orch's state: the task pending again, with the answer kept for its next attempt.
    let task = repo.task("a", "1.1");
    assert_eq!(task["status"], "pending", "{task}");
    assert_eq!(task["orchAnswers"][0]["answer"], answer, "{task}");
}

/// An `orch up` started by `orch mcp` exports as one started by hand: with the collector's key
/// that `orch mcp`'s environment has, in its headers and in the address's user information (red
/// team 11: started by `orch mcp`, it exported without either).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_by_orch_mcp_exports_with_the_collectors_key() {
    tokio::time::timeout(DEADLINE, async {
        let receiver = crate::support::otlp::Receiver::http();
        let gate_dir = tempfile::tempdir().expect("tempdir");
        let gate = gate_dir.path().join("open");
        std::fs::write(&gate, "").expect("open the gate");
        let repo = gated_repo(&gate);
        let root = repo.root().to_path_buf();
        let endpoint = receiver
            .endpoint()
            .replacen("http://", "http://team:S3CRET@", 1);
        let mut std_cmd = repo.orch(&["mcp", "--allow-control"]);
        support::in_dir(&mut std_cmd, &root);
        std_cmd
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_EXPORTER_OTLP_HEADERS", "x-orch-test=K3Y");
        let (transport, _) = TokioChildProcess::builder(tokio::process::Command::from(std_cmd))
            .stderr(Stdio::null())
            .spawn()
            .expect("start orch mcp");
        let c: Client = ().serve(transport).await.expect("the MCP session starts");
        let (is_error, text) = call(&c, "up", json!({})).await;
        assert!(!is_error, "{text}");
        let pid = json_of(&text)["pid"].as_u64().expect("pid") as u32;
        support::wait_for("the run to end", || !support::process_alive(pid));
        c.cancel().await.expect("close");
        assert_eq!(repo.task("g", "1.1")["status"], "completed");
        let spans = receiver.spans();
        assert!(
            spans.iter().any(|s| s.name == "run"),
            "the run's span reached the collector: {spans:#?}"
        );
        // `team:S3CRET` in base64.
        let basic = "Basic dGVhbTpTM0NSRVQ=";
        let headers = receiver.headers();
        assert!(!headers.is_empty());
        for h in &headers {
            assert!(
                h.iter().any(|(k, v)| k == "x-orch-test" && v == "K3Y"),
                "{headers:?}"
            );
            assert!(
                h.iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case("authorization") && *v == basic),
                "{headers:?}"
            );
        }
    })
    .await
    .expect("within the deadline");
}
