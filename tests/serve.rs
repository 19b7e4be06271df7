//! `orch serve`, the live web view, in a real headless Chromium driven over WebDriver
//! (`support::webdriver`) and with raw HTTP on loopback: the page shows a running `orch up` of
//! several plans and follows it without a reload; a question is answered from the page (the
//! task pending again with the answer, in orch's records); agents' markup and terminal escapes
//! render as text and run nothing. Who may connect (another `Host`, another site, no token, a
//! slow request, many streams) is `serve_http.rs`.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use serde_json::{Value, json};

use crate::serve_http::waiting;
use crate::support::webdriver::Driver;
use crate::support::{self, Repo, toml_array};

/// How long the page may take to show a change.
pub(crate) const SHOW: Duration = Duration::from_secs(60);

/// A running `orch serve`: its page's address (and token), killed when dropped.
pub(crate) struct Serve {
    pub(crate) child: Child,
    /// `http://127.0.0.1:PORT/`
    pub(crate) url: String,
    /// `127.0.0.1:PORT`
    pub(crate) authority: String,
    /// The token it printed, which every `/api/` request carries.
    pub(crate) token: String,
}

impl Serve {
    pub(crate) fn start(repo: &Repo, args: &[&str]) -> Serve {
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        let mut child = repo.orch(&all).spawn().expect("start orch serve");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("orch serve printed no address within 30 s")
            });
        let at = line
            .trim()
            .strip_prefix("orch serve: ")
            .unwrap_or_else(|| panic!("{line}"));
        let (url, token) = at
            .split_once("#token=")
            .map(|(u, t)| (u.to_string(), t.to_string()))
            .unwrap_or_else(|| panic!("no token printed: {line}"));
        assert!(
            token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()),
            "{line}"
        );
        let authority = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        assert!(authority.starts_with("127.0.0.1:"), "{line}");
        Serve {
            child,
            url,
            authority,
            token,
        }
    }

    /// The page's address with the token in its fragment, as `orch serve` printed it.
    pub(crate) fn page_url(&self) -> String {
        format!("{}#token={}", self.url, self.token)
    }

    /// The header line every `/api/` request carries.
    pub(crate) fn auth(&self) -> String {
        format!("Authorization: Bearer {}", self.token)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One raw HTTP/1.1 request to `authority` (`head` without the final blank line, then
/// `body`): the status and the whole answer.
pub(crate) fn raw(authority: &str, head: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(authority).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let text = format!("{head}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    s.write_all(text.as_bytes()).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status: {out}"));
    (status, out)
}

pub(crate) fn body_json(answer: &str) -> Value {
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

/// The browser, or `None` when the test skips (no chromedriver, and not required).
pub(crate) fn browser() -> Option<Driver> {
    Driver::start()
}

/// Waits for `child` to end within `timeout` (killed then); its exit code.
pub(crate) fn end_within(child: Child, timeout: Duration) -> i32 {
    support::exit_code(support::wait_within(child, timeout, "orch up").status)
}

/// Plans `a` (1.1, then 1.2 after it), `b` and `c` (one task each), whose agent finishes a
/// task only once the test creates `<gates>/<plan>-<task>`.
fn gated(gates: &Path) -> Repo {
    let repo = Repo::new();
    let agent = toml_array(&[
        "sh",
        "-c",
        &format!(
            "while [ ! -e '{}/'\"$ORCH_PLAN-$ORCH_TASK\" ]; do sleep 0.02; done; echo \"$ORCH_TASK\" > \"$ORCH_PLAN-$ORCH_TASK.txt\"; echo \"log of $ORCH_PLAN $ORCH_TASK\"",
            gates.display()
        ),
    ]);
    repo.manifest(
        &agent,
        "report = \"exit\"",
        "retries = 0\nmax_agents = 4",
        &[("a", ""), ("b", ""), ("c", "")],
    );
    repo.write(
        "docs/plans/a.md",
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 first of a\n- [ ] 1.2 second of a (depends: 1.1)\n",
    );
    repo.write("docs/plans/b.md", &support::one_task("B", "only task of b"));
    repo.write("docs/plans/c.md", &support::one_task("C", "only task of c"));
    repo.commit_all("plans");
    repo
}

/// A script expression: the page's state of task `key` (`plan:id`), from its row.
pub(crate) fn status_of(key: &str) -> String {
    format!(
        "(document.querySelector('tr[data-task=\"{key}\"]') || {{getAttribute: () => null}}).getAttribute('data-status')"
    )
}

/// A script returning [`status_of`].
pub(crate) fn row_status(key: &str) -> String {
    format!("return {};", status_of(key))
}

#[test]
fn the_page_follows_a_running_run_of_several_plans_without_a_reload() {
    let Some(driver) = browser() else { return };
    let gates = tempfile::tempdir().expect("tempdir");
    let repo = gated(gates.path());
    let serve = Serve::start(&repo, &[]);
    // The address without its token (typed, or found by another program of this machine):
    // the page says what to open, and shows nothing of the run.
    let stranger = driver.session();
    stranger.goto(&serve.url);
    stranger.wait_until(
        "the page saying it needs the printed address",
        SHOW,
        "const p = document.getElementById('problem'); return !p.hidden && p.textContent.includes('#token=');",
    );
    assert!(stranger.find_all(".plan").is_empty(), "no plan shown");
    drop(stranger);
    let page = driver.session();
    page.goto(&serve.page_url());

    // Before the run: the three plans, every task pending, the graph's edge drawn.
    page.wait_until(
        "the plans",
        SHOW,
        "return document.querySelectorAll('.plan').length === 3;",
    );
    assert_eq!(page.execute(&row_status("a:1.2"), json!([])), "pending");
    let names: Vec<String> = page
        .find_all(".plan-name")
        .iter()
        .map(|e| page.text(e))
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    page.wait_until("the graph", SHOW, "return document.querySelectorAll('#graph .node').length === 4 && document.querySelectorAll('#graph .edge').length === 1;");
    // A mark a reload would lose.
    page.execute("window.orchTestMark = 42; return true;", json!([]));

    let up = repo.orch(&["up"]).spawn().expect("orch up");
    for key in ["a:1.1", "b:1.1", "c:1.1"] {
        page.wait_until(
            &format!("{key} running"),
            SHOW,
            &format!("return {} === 'in_progress';", status_of(key)),
        );
    }
    // One plan's task ends: its row, its progress, the timeline follow.
    std::fs::write(gates.path().join("b-1.1"), "").expect("gate");
    page.wait_until("b done", SHOW, "const o = document.querySelector('.plan[data-plan=\"b\"] .outcome'); return o && o.getAttribute('data-outcome') === 'done';");
    assert_eq!(page.execute(&row_status("b:1.1"), json!([])), "completed");
    assert_eq!(page.execute(&row_status("a:1.1"), json!([])), "in_progress");
    let progress = page.find_all(".plan[data-plan=\"b\"] .outcome");
    assert!(
        page.text(&progress[0]).starts_with("1/1"),
        "{}",
        page.text(&progress[0])
    );
    assert!(
        !page
            .find_all("#timeline .span[data-task=\"b:1.1\"]")
            .is_empty(),
        "b's attempt in the timeline"
    );

    // The rest, in dependency order.
    for gate in ["a-1.1", "c-1.1", "a-1.2"] {
        std::fs::write(gates.path().join(gate), "").expect("gate");
    }
    page.wait_until("every plan done", SHOW, "return [...document.querySelectorAll('.plan .outcome')].every(o => o.getAttribute('data-outcome') === 'done');");
    for key in ["a:1.1", "a:1.2", "c:1.1"] {
        assert_eq!(
            page.execute(&row_status(key), json!([])),
            "completed",
            "{key}"
        );
    }
    assert_eq!(end_within(up, support::TIMEOUT), 0);
    // No reload: the mark is there, the page rendered several times.
    assert_eq!(page.execute("return window.orchTestMark;", json!([])), 42);
    let renders = page.execute(
        "return Number(document.body.getAttribute('data-renders'));",
        json!([]),
    );
    assert!(renders.as_u64().unwrap_or_default() >= 3, "{renders}");
    // orch's records agree.
    assert_eq!(repo.task("a", "1.2")["status"], "completed");
    // A task's log on click.
    page.click_css("tr[data-task=\"c:1.1\"]", SHOW);
    page.wait_until(
        "c's log",
        SHOW,
        "return document.getElementById('log').textContent.includes('log of c 1.1');",
    );
}

#[test]
fn a_question_answered_from_the_page_makes_the_task_pending_with_the_answer() {
    let Some(driver) = browser() else { return };
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

    // Read-only: the question shown, no box to answer.
    let ro = Serve::start(&repo, &[]);
    let page = driver.session();
    page.goto(&ro.page_url());
    page.wait_until("the question", SHOW, "const q = document.querySelector('.question[data-task=\"a:1.1\"] .question-text'); return q && q.textContent;");
    assert!(
        page.find_all(".question textarea").is_empty(),
        "no answer box without --control"
    );
    drop(ro);

    let serve = Serve::start(&repo, &["--control"]);
    page.goto(&serve.page_url());
    page.wait_until(
        "the answer box",
        SHOW,
        "return document.querySelectorAll('.question[data-task=\"a:1.1\"] textarea').length === 1;",
    );
    let q = page.find_all(".question[data-task=\"a:1.1\"] .question-text");
    assert_eq!(page.text(&q[0]), "PostgreSQL or SQLite?");
    let answer = "SQLite <b>in one file</b>";
    let area = page.find_all(".question[data-task=\"a:1.1\"] textarea");
    page.type_text(&area[0], answer);
    page.click_css(".question[data-task=\"a:1.1\"] .send-answer", SHOW);

    // orch's records: pending again, the answer kept for its next attempt.
    support::wait_for("the answer in the status file", || {
        repo.task("a", "1.1")["status"] == "pending"
    });
    let task = repo.task("a", "1.1");
    assert_eq!(task["orchAnswers"][0]["answer"], answer, "{task}");
    let (_, status, _) = repo.run(&["status", "--json"]);
    assert_eq!(
        support::json(&status)["plans"][0]["tasks"][0]["status"],
        "pending",
        "{status}"
    );
    // The page follows: no question waiting, the task pending.
    page.wait_until(
        "the question gone",
        SHOW,
        &format!(
            "return document.getElementById('questions-box').hidden && {} === 'pending';",
            status_of("a:1.1")
        ),
    );
}

/// What a hostile agent writes: markup that would run script, and terminal escapes.
pub(crate) const HOSTILE: &str = "<script>window.orchPwned1=1</script> <img src=x onerror=\"window.orchPwned2=1\"> <svg onload=\"window.orchPwned3=1\"></svg> \u{1b}]0;owned\u{7} \u{1b}[2J \u{202e}txt";

#[test]
fn agents_markup_and_escapes_render_as_text() {
    let Some(driver) = browser() else { return };
    let repo = Repo::new();
    let agent = toml_array(&[
        "sh",
        "-c",
        "printf '%s\\n' '<script>window.orchPwned4=1</script>' '<img src=x onerror=window.orchPwned5=1>'; printf '\\033]0;owned\\007 \\033[2J end\\n'; exit 3",
    ]);
    repo.plans(&[(
        "h",
        agent,
        &format!("# H\n\n## Phase 1: Work\n- [ ] 1.1 {HOSTILE}\n"),
    )]);
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 5, "h fails: {out}{err}");
    let serve = Serve::start(&repo, &["--control"]);
    let page = driver.session();
    page.goto(&serve.page_url());
    page.wait_until(
        "the task",
        SHOW,
        "return document.querySelectorAll('tr[data-task=\"h:1.1\"]').length === 1;",
    );
    let desc = page.find_all("tr[data-task=\"h:1.1\"] .desc");
    let text = page.text(&desc[0]);
    for part in [
        "<script>window.orchPwned1=1</script>",
        "<img src=x onerror=\"window.orchPwned2=1\">",
        "<svg onload=",
    ] {
        assert!(text.contains(part), "{part} shown as text: {text}");
    }
    for raw in ['\u{1b}', '\u{7}', '\u{202e}'] {
        assert!(!text.contains(raw), "raw {raw:?}: {text:?}");
    }
    assert!(
        text.contains("\\u{1b}]0;owned"),
        "the escape shown escaped: {text}"
    );

    // The log on click: the agent's markup as text too.
    page.click_css("tr[data-task=\"h:1.1\"]", SHOW);
    page.wait_until(
        "the log",
        SHOW,
        "return document.getElementById('log').textContent.includes('orchPwned5');",
    );
    let log = page.execute(
        "return document.getElementById('log').textContent;",
        json!([]),
    );
    let log = log.as_str().unwrap_or_default();
    assert!(
        log.contains("<script>window.orchPwned4=1</script>") && log.contains("\\u{1b}[2J end"),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "{log:?}");

    // The attempt on the timeline (its times orch's own records), the say box for the task:
    // the task's text in neither. (The integration preview's texts: `serve_views`.)
    page.wait_until(
        "h's attempt on the timeline",
        SHOW,
        "return document.querySelectorAll('#timeline .span.ended-failed[data-task=\"h:1.1\"][data-attempt=\"1\"]').length === 1;",
    );
    page.click_css("tr[data-task=\"h:1.1\"] button.say", SHOW);
    let title = page.execute(
        "return document.getElementById('say-title').textContent;",
        json!([]),
    );
    assert_eq!(title, "Say to h 1.1");

    // Nothing ran, nothing was added: no global set, the page's one script, no image, no
    // element but the page's own.
    let v = page.execute(
        "return [1,2,3,4,5].map(i => typeof window['orchPwned' + i]).concat([document.scripts.length, document.images.length, document.querySelectorAll('main script, main img, main svg svg, main iframe, main object').length]);",
        json!([]),
    );
    assert_eq!(
        v,
        json!([
            "undefined",
            "undefined",
            "undefined",
            "undefined",
            "undefined",
            1,
            0,
            0
        ])
    );
}

#[test]
fn a_bad_manifest_or_a_taken_port_is_refused_with_its_reason() {
    let repo = Repo::new();
    repo.write("plans.toml", "[defaults]\nmax_agents = \"many\"\n");
    let before = support::file_snapshot(repo.root());
    let (code, out, err) = repo.run(&["serve"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("plans.toml") && err.contains(":2"),
        "names the file and line: {err}"
    );
    assert!(out.is_empty(), "no address printed: {out}");
    assert_eq!(
        support::file_snapshot(repo.root()),
        before,
        "nothing written"
    );

    // A port taken: exit 1, saying which and what to do.
    repo.plans(&[("a", toml_array(&["true"]), &support::one_task("A", "x"))]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let (code, out, err) = repo.run(&["serve", "--port", &port]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("--port"),
        "{err}"
    );
}

/// A repository with one plan whose task waits for an answer (`orch up` ran), and its
/// `orch serve` (with `--control` when `control`).
#[test]
fn a_status_past_the_old_bound_is_shown_with_long_texts_cut() {
    let repo = Repo::new();
    let agent = toml_array(&[
        "sh",
        "-c",
        "\"$ORCH_BIN\" task done \"$ORCH_TASK\" --note \"$(head -c 120000 /dev/zero | tr '\\0' N)\"",
    ]);
    repo.manifest(&agent, "", "retries = 0\nmax_agents = 4", &[("p", "")]);
    let mut plan = String::from("# P\n\n## Phase 1: Work\n");
    for i in 1..=24 {
        plan.push_str(&format!("- [ ] 1.{i} task {i}\n"));
    }
    repo.write("docs/plans/p.md", &plan);
    repo.commit_all("plan");
    let child = repo.orch(&["up"]).spawn().expect("up");
    assert_eq!(end_within(child, Duration::from_secs(600)), 0);
    // orch keeps each note to 8 KiB (the status's own bound); the page's cut of long texts
    // stays for a status written otherwise.
    let (_, printed, _) = repo.run(&["status", "--json"]);
    assert!(
        printed.contains("bytes more cut by orch"),
        "the note is bounded"
    );

    let serve = Serve::start(&repo, &[]);
    let me = serve.authority.clone();
    let (status, answer) = raw(
        &me,
        &format!("GET /api/status HTTP/1.1\r\nHost: {me}\r\n{}", serve.auth()),
        "",
    );
    assert_eq!(status, 200, "{}", &answer[..answer.len().min(400)]);
    assert!(answer.len() < 2 << 20, "{} bytes", answer.len());
    let v = body_json(&answer);
    let tasks = v["plans"][0]["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 24);
    assert!(tasks.iter().all(|t| t["status"] == "completed"), "{v}");
    assert!(
        tasks.iter().all(|t| t.to_string().len() < 16 << 10),
        "each task's note bounded"
    );
    assert!(
        answer.contains("bytes more cut by orch") || answer.contains(" bytes cut]"),
        "the cut is said"
    );
}

#[test]
fn the_token_leaves_the_address_bar_the_page_still_acts_and_keeps_its_last_status() {
    let Some(driver) = browser() else { return };
    let (repo, _rec, serve) = waiting(true);
    let page = driver.session();
    page.goto(&serve.page_url());
    page.wait_until(
        "the answer box",
        SHOW,
        "return document.querySelectorAll('.question[data-task=\"a:1.1\"] textarea').length === 1;",
    );
    // The address after load: no token, no fragment; in this tab's storage only.
    let href = page.execute("return window.location.href;", json!([]));
    let href = href.as_str().expect("href").to_string();
    assert!(!href.contains("token") && !href.contains('#'), "{href}");
    assert_eq!(href, serve.url);
    let token = serve.token.clone();
    let history = page.execute(
        "return window.history.length + ' ' + document.URL;",
        json!([]),
    );
    assert!(!history.to_string().contains(&token), "{history}");

    // A reload (no token in the address now) still acts: answered from the page.
    page.goto(&serve.url);
    page.wait_until(
        "the answer box after a reload",
        SHOW,
        "return document.querySelectorAll('.question[data-task=\"a:1.1\"] textarea').length === 1;",
    );
    let area = page.find_all(".question[data-task=\"a:1.1\"] textarea");
    page.type_text(&area[0], "SQLite");
    page.click_css(".question[data-task=\"a:1.1\"] .send-answer", SHOW);
    support::wait_for("the answer in the status file", || {
        repo.task("a", "1.1")["status"] == "pending"
    });
    page.wait_until(
        "the task pending on the page",
        SHOW,
        &format!("return {} === 'pending';", status_of("a:1.1")),
    );

    // The status can no longer be read (the manifest broken), and an event comes: the page
    // keeps the plans it showed, with a line saying why.
    let manifest = repo.root().join("plans.toml");
    let good = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(&manifest, "[defaults\n<b>broken</b>\u{1b}[2J").expect("break");
    let events = repo.root().join(".orch/state/.events.jsonl");
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&events)
        .expect("events");
    writeln!(log, "{{\"event\":\"plan_paused\",\"plan\":\"a\"}}").expect("event");
    let warning = page.wait_until(
        "a warning",
        SHOW,
        "const p = document.getElementById('problem'); return !p.hidden && p.textContent;",
    );
    let warning = warning.as_str().expect("text").to_string();
    assert!(warning.contains("cannot read the status"), "{warning}");
    assert!(!warning.contains('\u{1b}'), "{warning}");
    assert_eq!(
        page.find_all("b").len(),
        0,
        "markup from the error made an element"
    );
    assert_eq!(
        page.execute(&row_status("a:1.1"), json!([])),
        json!("pending"),
        "the last status still shown"
    );
    std::fs::write(&manifest, good).expect("mend");
    writeln!(log, "{{\"event\":\"plan_resumed\",\"plan\":\"a\"}}").expect("event");
    page.wait_until(
        "the warning gone",
        SHOW,
        "return document.getElementById('problem').hidden;",
    );
}
