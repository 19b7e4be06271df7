//! `[[notify]]` end to end: a real `orch up` whose hooks are a command (a script that records its
//! stdin) and webhooks served by HTTP servers in the test: one that records, one that never
//! answers, one that answers 500.

use crate::support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use support::{Repo, events, fixtures, named, toml_array};

/// How the test server answers.
#[derive(Clone, Copy)]
enum Mode {
    Ok,
    Fail500,
    Hang,
}

/// An HTTP server on 127.0.0.1 that keeps each request's body.
struct Server {
    port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            // Connections of a hanging server stay open, unanswered, for the test's life.
            let mut held: Vec<TcpStream> = Vec::new();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let body = read_request(&stream);
                kept.lock().expect("lock").push(body);
                let mut stream = stream;
                match mode {
                    Mode::Ok => {
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                    Mode::Fail500 => {
                        let _ = stream.write_all(
                            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                    Mode::Hang => held.push(stream),
                }
            }
        });
        Self { port, bodies }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().expect("lock").clone()
    }
}

/// Reads one request's headers and body (`Content-Length` bytes).
fn read_request(stream: &TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return String::new();
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    String::from_utf8_lossy(&body).into_owned()
}

/// Plans `a` (done by ok.sh) and `b` (its task 1.1 fails), with `hooks` appended to the manifest.
fn repo_with(hooks: &str, with_b: bool) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    let ok = fixtures().join("ok.sh");
    let fail = fixtures().join("fail_on.sh");
    let mut manifest = format!(
        "[defaults]\nagent = \"ok\"\nmax_agents = 2\nretries = 0\n\n[agents.ok]\ncommand = {}\n\n[agents.fail]\ncommand = {}\n",
        toml_array(&["sh", ok.to_str().expect("utf8"), "/dev/null"]),
        toml_array(&["sh", fail.to_str().expect("utf8"), "/dev/null", "1.1"]),
    );
    repo.write(
        "docs/plans/a.md",
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 Do a\n",
    );
    manifest.push_str("\n[[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\n");
    if with_b {
        repo.write(
            "docs/plans/b.md",
            "# B\n\n## Phase 1: Work\n- [ ] 1.1 Break b\n",
        );
        manifest
            .push_str("\n[[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\nagent = \"fail\"\n");
    }
    manifest.push_str(hooks);
    repo.write("plans.toml", &manifest);
    repo.commit_all("plans");
    repo
}

fn names(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["event"].as_str().map(str::to_string))
        .collect()
}

fn record_hook(log: &Path, events: &str) -> String {
    let record = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notify/record.sh");
    format!(
        "\n[[notify]]\nevents = {events}\ncommand = {}\n",
        toml_array(&[
            "sh",
            record.to_str().expect("utf8"),
            log.to_str().expect("utf8")
        ])
    )
}

#[test]
fn a_command_and_a_webhook_receive_the_events_as_json_lines() {
    let server = Server::start(Mode::Ok);
    let log = tempfile::NamedTempFile::new().expect("tmp");
    let hooks = format!(
        "{}\n[[notify]]\nwebhook = \"{}\"\n",
        record_hook(log.path(), "[\"task_failed\", \"plan_finished\"]"),
        server.url()
    );
    let repo = repo_with(&hooks, true);
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 5, "b fails\nstdout:\n{out}\nstderr:\n{err}");

    // The command got exactly the events it asked for, one JSON line each.
    let lines: Vec<String> = std::fs::read_to_string(log.path())
        .expect("log")
        .lines()
        .map(str::to_string)
        .collect();
    let mut got = names(&lines);
    got.sort();
    assert_eq!(got, ["plan_finished", "task_failed"], "{lines:?}");
    let failed: Value = serde_json::from_str(
        lines
            .iter()
            .find(|l| l.contains("task_failed"))
            .expect("task_failed"),
    )
    .expect("json");
    assert_eq!(
        (failed["plan"].as_str(), failed["task"].as_str()),
        (Some("b"), Some("1.1"))
    );
    assert!(failed["at"].is_string());

    // The webhook got every event but the chatty ones, run_finished last.
    let bodies = server.bodies();
    let got = names(&bodies);
    for e in ["task_failed", "plan_finished", "run_finished"] {
        assert!(got.contains(&e.to_string()), "{e} in {got:?}");
    }
    for chatty in [
        "run_started",
        "plan_started",
        "task_started",
        "task_finished",
    ] {
        assert!(!got.contains(&chatty.to_string()), "{chatty} in {got:?}");
    }
    assert_eq!(got.last().map(String::as_str), Some("run_finished"));
    // No delivery failed.
    let ev = events(&out);
    assert!(
        named(&ev, "note")
            .iter()
            .all(|n| !n["message"].as_str().unwrap_or("").contains("notify #")),
        "{out}"
    );
    let finished = named(&ev, "run_finished");
    assert!(
        finished[0]["summary"].get("notify_failures").is_none(),
        "{out}"
    );
}

#[test]
fn a_webhook_that_hangs_or_fails_and_a_command_that_hangs_are_reported_not_waited_for() {
    let hang = Server::start(Mode::Hang);
    let fail = Server::start(Mode::Fail500);
    let hooks = format!(
        "\n[[notify]]\nevents = [\"plan_finished\"]\nwebhook = \"{}\"\ntimeout = \"1s\"\n\
         \n[[notify]]\nevents = [\"plan_finished\"]\nwebhook = \"{}\"\n\
         \n[[notify]]\nevents = [\"plan_finished\"]\ncommand = [\"sleep\", \"60\"]\ntimeout = \"1s\"\n",
        hang.url(),
        fail.url()
    );
    let repo = repo_with(&hooks, false);
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(
        code, 0,
        "the run succeeds whatever the hooks do\nstdout:\n{out}\nstderr:\n{err}"
    );
    let ev = events(&out);
    let notes: Vec<String> = named(&ev, "note")
        .iter()
        .filter_map(|n| n["message"].as_str().map(str::to_string))
        .collect();
    let note = |hook: &str| {
        notes
            .iter()
            .find(|n| n.starts_with(hook))
            .unwrap_or_else(|| panic!("no note for {hook}: {notes:?}"))
            .clone()
    };
    let hang_note = note(&format!("notify #1 (http://127.0.0.1:{})", hang.port));
    assert!(
        hang_note.contains("`plan_finished` not delivered: no answer within 1s"),
        "{hang_note}"
    );
    let fail_note = note(&format!("notify #2 (http://127.0.0.1:{})", fail.port));
    assert!(
        fail_note.contains("HTTP 500 (after 3 attempts)"),
        "{fail_note}"
    );
    assert_eq!(fail.bodies().len(), 3, "tried three times");
    assert!(names(&fail.bodies()).iter().all(|e| e == "plan_finished"));
    let sleep_note = note("notify #3 (sleep)");
    assert!(
        sleep_note.contains("`sleep` still ran after 1s; killed"),
        "{sleep_note}"
    );
    let finished = named(&ev, "run_finished");
    assert_eq!(finished[0]["summary"]["notify_failures"], 3, "{out}");
    // The plan itself is done.
    assert_eq!(named(&ev, "plan_finished").len(), 1);
}

#[test]
fn bad_notify_tables_are_errors_with_their_location() {
    let repo = repo_with(
        "\n[[notify]]\nevents = [\"task_exploded\"]\ncommand = [\"true\"]\n\n[[notify]]\nwebhook = \"ftp://x\"\n\n[[notify]]\ntimeout = \"1s\"\n\n[[notify]]\ncolor = \"red\"\ncommand = [\"true\"]\n",
        false,
    );
    let (code, _out, err) = repo.run(&["check"]);
    assert_eq!(code, 2, "{err}");
    for expected in [
        "unknown event `task_exploded`",
        "`notify.webhook` `ftp://x` is not an http:// or https:// address",
        "a `[[notify]]` table needs `command` or `webhook`",
        "unknown key `color` in `[[notify]]`",
    ] {
        assert!(err.contains(expected), "{expected} in\n{err}");
    }
    assert!(err.contains("plans.toml:"), "{err}");
}
