//! `orch serve` and who may connect, with raw HTTP on loopback: requests for another `Host`,
//! control requests without the token or from another site (and reads from another site) are
//! refused and change nothing; a request sent a byte at a time is cut off at its deadline while
//! others are served; live streams are capped apart; HEAD answers carry no body.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::serve::{Serve, body_json, raw};
use crate::support::{self, Repo};

#[test]
fn other_hosts_and_control_without_the_token_or_from_another_site_are_refused() {
    let rec = tempfile::tempdir().expect("tempdir");
    let repo = Repo::new();
    let asker = support::agent_at("asker.sh", &[Path::new("1.1"), rec.path()]);
    repo.plans(&[(
        "a",
        asker,
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 pick a database\n",
    )]);
    let (code, _, _) = repo.run(&["up"]);
    assert_eq!(code, 5);
    let deadline = Instant::now() + Duration::from_secs(240);

    let serve = Serve::start(&repo, &["--control"]);
    let me = serve.authority.clone();
    let auth = serve.auth();
    let port: u16 = me
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    // The page and its data for the served address, with the page's security headers.
    let (status, page) = raw(&me, &format!("GET / HTTP/1.1\r\nHost: {me}"), "");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'\r\n"), "{page}");
    assert!(
        page.contains("X-Content-Type-Options: nosniff\r\n"),
        "{page}"
    );
    let (status, st) = raw(
        &me,
        &format!("GET /api/status HTTP/1.1\r\nHost: {me}\r\n{auth}"),
        "",
    );
    assert_eq!(status, 200, "{st}");
    assert_eq!(
        body_json(&st)["plans"][0]["tasks"][0]["status"],
        "needs_input"
    );

    // Another Host: refused, whatever the path.
    let other_port = format!("127.0.0.1:{}", port.wrapping_add(1));
    let localhost = format!("localhost:{port}");
    let dotted = format!("127.0.0.1.evil:{port}");
    for host in [
        Some("evil.example"),
        Some("127.0.0.1.evil"),
        Some(dotted.as_str()),
        Some(other_port.as_str()),
        Some(localhost.as_str()),
        Some("127.0.0.1"),
        None,
    ] {
        for path in ["/", "/api/status", "/api/events", "/app.js"] {
            let head = match host {
                Some(h) => format!("GET {path} HTTP/1.1\r\nHost: {h}"),
                None => format!("GET {path} HTTP/1.1"),
            };
            let (status, answer) = raw(&me, &head, "");
            assert_eq!(status, 421, "{host:?} {path}: {answer}");
            assert!(!answer.contains("needs_input"), "{answer}");
        }
    }

    // Control without the token, with a wrong one, from another origin or site: refused,
    // nothing changed on disk.
    let before = support::file_snapshot(repo.root());
    let token = serve.token.clone();
    let body = json!({"plan": "a", "task": "1.1", "text": "from elsewhere"}).to_string();
    let good = format!("Authorization: Bearer {token}\r\nContent-Type: application/json");
    let cases: Vec<(String, u16)> = vec![
        ("Content-Type: application/json".into(), 401),
        (
            "Authorization: Bearer 0000\r\nContent-Type: application/json".into(),
            401,
        ),
        (
            format!("Authorization: Bearer {token}x\r\nContent-Type: application/json"),
            401,
        ),
        (
            format!("Authorization: {token}\r\nContent-Type: application/json"),
            401,
        ),
        (format!("{good}\r\nOrigin: http://evil.example"), 403),
        (format!("{good}\r\nOrigin: http://localhost:{port}"), 403),
        (format!("{good}\r\nOrigin: null"), 403),
        (format!("{good}\r\nSec-Fetch-Site: cross-site"), 403),
        (format!("{good}\r\nSec-Fetch-Site: same-site"), 403),
    ];
    for (headers, want) in &cases {
        for verb in ["answer", "pause"] {
            let args = if verb == "pause" {
                json!({"plan": "a"}).to_string()
            } else {
                body.clone()
            };
            let (status, answer) = raw(
                &me,
                &format!("POST /api/control/{verb} HTTP/1.1\r\nHost: {me}\r\n{headers}"),
                &args,
            );
            assert_eq!(status, *want, "{verb} with {headers}: {answer}");
        }
        // The right token to another Host: refused before anything else.
        let (status, _) = raw(
            &me,
            &format!("POST /api/control/answer HTTP/1.1\r\nHost: evil.example\r\n{good}"),
            &body,
        );
        assert_eq!(status, 421);
    }
    assert_eq!(
        support::file_snapshot(repo.root()),
        before,
        "a refused request changed files"
    );
    assert_eq!(repo.task("a", "1.1")["status"], "needs_input");

    // A value that looks like an option stays a value; an unknown argument is refused.
    let (status, answer) = raw(
        &me,
        &format!("POST /api/control/answer HTTP/1.1\r\nHost: {me}\r\n{good}"),
        &json!({"plan": "a", "task": "1.1", "text": "x", "force": true}).to_string(),
    );
    assert_eq!(status, 400, "{answer}");
    assert_eq!(support::file_snapshot(repo.root()), before);

    // From the page's origin with the token: done.
    let (status, answer) = raw(
        &me,
        &format!(
            "POST /api/control/answer HTTP/1.1\r\nHost: {me}\r\nOrigin: http://{me}\r\nSec-Fetch-Site: same-origin\r\n{good}"
        ),
        &json!({"plan": "a", "task": "1.1", "text": "--force"}).to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    let task = repo.task("a", "1.1");
    assert_eq!(task["status"], "pending", "{task}");
    assert_eq!(task["orchAnswers"][0]["answer"], "--force", "{task}");

    // Live streams: 16 at once, one more refused (503) while they stay; once one page goes,
    // another is served.
    let open = |authority: &str| -> (u16, TcpStream) {
        let mut s = TcpStream::connect(authority).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        write!(
            s,
            "GET /api/events HTTP/1.1\r\nHost: {authority}\r\n{auth}\r\n\r\n"
        )
        .expect("write");
        let mut head = [0u8; 12];
        s.read_exact(&mut head).expect("status line");
        let status = String::from_utf8_lossy(&head[9..12])
            .parse()
            .expect("status");
        (status, s)
    };
    let mut streams: Vec<TcpStream> = (0..16)
        .map(|i| {
            let (status, s) = open(&me);
            assert_eq!(status, 200, "stream {i}");
            s
        })
        .collect();
    assert_eq!(open(&me).0, 503, "a 17th stream");
    drop(streams.pop());
    let t0 = Instant::now();
    while open(&me).0 != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "a stream freed when its page went"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(streams);
    drop(serve);

    // Without --control: every control route 403 with this server's token, 401 with another
    // server's (each `orch serve` makes its own).
    let ro = Serve::start(&repo, &[]);
    assert_ne!(ro.token, token, "a token of its own");
    let me = ro.authority.clone();
    let own = format!("{}\r\nContent-Type: application/json", ro.auth());
    let before = support::file_snapshot(repo.root());
    for verb in [
        "answer", "say", "pause", "resume", "retry", "stop", "up", "nothing",
    ] {
        for method in ["POST", "GET"] {
            for (headers, want) in [(&own, 403), (&good, 401)] {
                let (status, answer) = raw(
                    &me,
                    &format!("{method} /api/control/{verb} HTTP/1.1\r\nHost: {me}\r\n{headers}"),
                    &json!({"plan": "a"}).to_string(),
                );
                assert_eq!(status, want, "{method} {verb}: {answer}");
            }
        }
    }
    assert_eq!(support::file_snapshot(repo.root()), before);
    assert!(Instant::now() < deadline, "within the test's deadline");
}

pub(crate) fn waiting(control: bool) -> (Repo, tempfile::TempDir, Serve) {
    let rec = tempfile::tempdir().expect("tempdir");
    let repo = Repo::new();
    let asker = support::agent_at("asker.sh", &[Path::new("1.1"), rec.path()]);
    repo.plans(&[(
        "a",
        asker,
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 pick a database\n",
    )]);
    let (code, _, _) = repo.run(&["up"]);
    assert_eq!(code, 5);
    let serve = Serve::start(&repo, if control { &["--control"] } else { &[] });
    (repo, rec, serve)
}

/// A connection that sends `bytes` one a second, from its start: how long until the server
/// closed it, and what it answered.
fn trickle(authority: &str, bytes: Vec<u8>) -> (Duration, String) {
    let mut s = TcpStream::connect(authority).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(1000)))
        .expect("timeout");
    let start = Instant::now();
    let mut got = Vec::new();
    for b in bytes {
        if s.write_all(&[b]).is_err() {
            break;
        }
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "still open after 40 s"
        );
    }
    (start.elapsed(), String::from_utf8_lossy(&got).into_owned())
}

#[test]
fn a_request_sent_a_byte_a_second_is_cut_off_at_the_deadline_and_others_are_served_meanwhile() {
    let (_repo, _rec, serve) = waiting(true);
    let me = serve.authority.clone();
    let token = serve.token.clone();
    let long_head = format!("GET / HTTP/1.1\r\nHost: {me}\r\nX-Pad: {}", "a".repeat(60));
    let body_late = format!(
        "POST /api/control/pause HTTP/1.1\r\nHost: {me}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n{{\"plan\": \"a\"                                                  "
    );
    let variants: Vec<Vec<u8>> = vec![
        long_head.into_bytes(),
        body_late.into_bytes(),
        format!("GET /api/status HTTP/1.1\r\n{}", "X: y\r\n".repeat(20)).into_bytes(),
    ];
    let many: Vec<_> = variants
        .into_iter()
        .map(|v| {
            let me = me.clone();
            std::thread::spawn(move || trickle(&me, v))
        })
        .collect();
    // Meanwhile the page is served.
    let (status, _) = raw(&me, &format!("GET / HTTP/1.1\r\nHost: {me}"), "");
    assert_eq!(status, 200);
    for t in many {
        let (took, answer) = t.join().expect("trickle");
        assert!(
            took >= Duration::from_secs(9) && took < Duration::from_secs(15),
            "cut off after {took:?}: {answer}"
        );
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    }
}

#[test]
fn live_streams_are_capped_apart_and_the_page_and_status_still_answer() {
    let (_repo, _rec, serve) = waiting(false);
    let me = serve.authority.clone();
    let auth = serve.auth();
    // A process of this machine without the token (an agent whose network is the machine's)
    // takes no stream and reads nothing, however it asks: the page's streams stay free.
    let mut refused = Vec::new();
    let wrong = format!("Authorization: Bearer {}", "0".repeat(64));
    let lower = format!("Authorization: bearer {}", serve.token);
    let upper = format!("Authorization: Bearer {}", serve.token.to_uppercase());
    let in_query = format!("?token={}", serve.token);
    let in_cookie = format!("Cookie: token={}", serve.token);
    let twice = format!("{auth}\r\n{wrong}");
    for i in 0..24 {
        let (query, extra) = match i % 6 {
            0 => ("", String::new()),
            1 => ("", wrong.clone()),
            2 => ("", lower.clone()),
            3 => (in_query.as_str(), String::new()),
            4 => ("", in_cookie.clone()),
            _ => (
                "",
                if i % 12 == 5 {
                    upper.clone()
                } else {
                    twice.clone()
                },
            ),
        };
        for path in ["/api/events", "/api/status", "/api/info", "/api/logs"] {
            let mut s = TcpStream::connect(&me).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(30)))
                .expect("timeout");
            s.write_all(
                format!("GET {path}{query} HTTP/1.1\r\nHost: {me}\r\n{extra}\r\n\r\n").as_bytes(),
            )
            .expect("write");
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            assert!(
                answer.starts_with("HTTP/1.1 401 "),
                "{path}{query} with {extra:?}: {answer}"
            );
            assert!(!answer.contains("needs_input"), "{answer}");
            refused.push(s);
        }
    }
    let mut open = Vec::new();
    // The cap of streams, opened and never read, with the red team's spellings.
    for i in 0..16 {
        let mut s = TcpStream::connect(&me).expect("connect");
        let extra = match i % 3 {
            0 => String::new(),
            1 => "Last-Event-ID: 0\r\n".to_string(),
            _ => "Accept: text/event-stream\r\nSec-Fetch-Site: same-origin\r\n".to_string(),
        };
        s.write_all(
            format!("GET /api/events HTTP/1.1\r\nHost: {me}\r\n{auth}\r\n{extra}\r\n").as_bytes(),
        )
        .expect("write");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut first = [0u8; 15];
        s.read_exact(&mut first).expect("head");
        assert_eq!(&first, b"HTTP/1.1 200 OK", "stream {i}");
        open.push(s);
    }
    // One more: refused at once.
    let (status, answer) = raw(
        &me,
        &format!("GET /api/events HTTP/1.1\r\nHost: {me}\r\n{auth}"),
        "",
    );
    assert_eq!(status, 503, "{answer}");
    // The page, its data and the status still answer, many times over.
    for _ in 0..3 {
        for path in ["/", "/app.js", "/api/info", "/api/status"] {
            let (status, answer) = raw(
                &me,
                &format!("GET {path} HTTP/1.1\r\nHost: {me}\r\n{auth}"),
                "",
            );
            assert_eq!(status, 200, "{path}: {answer}");
        }
    }
    let (_, st) = raw(
        &me,
        &format!("GET /api/status HTTP/1.1\r\nHost: {me}\r\n{auth}"),
        "",
    );
    assert_eq!(
        body_json(&st)["plans"][0]["tasks"][0]["status"],
        "needs_input"
    );
    // A stream closed: its slot is free again.
    drop(open.pop());
    support::wait_for("a stream's slot free again", || {
        let mut s = TcpStream::connect(&me).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        s.write_all(format!("GET /api/events HTTP/1.1\r\nHost: {me}\r\n{auth}\r\n\r\n").as_bytes())
            .expect("write");
        let mut first = [0u8; 15];
        s.read_exact(&mut first).is_ok() && &first == b"HTTP/1.1 200 OK"
    });
}

/// The most `orch` children the process `pid` had at once while `work` ran.
fn most_children_while(pid: u32, work: impl FnOnce() + Send + 'static) -> usize {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let worker = std::thread::spawn(move || {
        work();
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let mut most = 0;
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        let mut n = 0;
        for p in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let stat = std::fs::read_to_string(p.path().join("stat")).unwrap_or_default();
            // `pid (name) state ppid ...`: the fields after the name's last `)`.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            n += usize::from(ppid == Some(pid));
        }
        most = most.max(n);
        std::thread::sleep(Duration::from_millis(2));
    }
    worker.join().expect("work");
    most
}

#[test]
fn reads_from_another_site_are_refused_and_the_status_is_computed_once_at_a_time() {
    let (repo, _rec, serve) = waiting(false);
    let me = serve.authority.clone();
    let auth = serve.auth();
    let port = me.rsplit(':').next().expect("port").to_string();
    let refused = [
        "Sec-Fetch-Site: cross-site".to_string(),
        "Sec-Fetch-Site: same-site".to_string(),
        "Sec-Fetch-Site: Cross-Site".to_string(),
        "Sec-Fetch-Site: same-origin\r\nSec-Fetch-Site: cross-site".to_string(),
        "Origin: http://evil.example".to_string(),
        "Origin: null".to_string(),
        format!("Origin: http://localhost:{port}"),
        format!("Origin: https://{me}"),
        format!("Sec-Fetch-Site: same-origin\r\nOrigin: http://127.0.0.2:{port}"),
    ];
    for headers in &refused {
        for path in [
            "/api/status",
            "/api/status?x=1",
            "/api/logs?plan=a&task=1.1",
            "/api/events",
            "/api/info",
        ] {
            let (status, answer) = raw(
                &me,
                &format!("GET {path} HTTP/1.1\r\nHost: {me}\r\n{auth}\r\n{headers}"),
                "",
            );
            assert_eq!(status, 403, "{path} with {headers}: {answer}");
            assert!(!answer.contains("needs_input"), "{answer}");
        }
    }
    for headers in [
        "Accept: */*".to_string(),
        "Sec-Fetch-Site: same-origin".to_string(),
        "Sec-Fetch-Site: none".to_string(),
        format!("Sec-Fetch-Site: same-origin\r\nOrigin: http://{me}"),
    ] {
        let (status, answer) = raw(
            &me,
            &format!("GET /api/status HTTP/1.1\r\nHost: {me}\r\n{auth}\r\n{headers}"),
            "",
        );
        assert_eq!(status, 200, "{headers}: {answer}");
    }
    // Many status requests at once, after an event (the last status computed is stale): each
    // answered with the status, never more than one `orch status` running.
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(repo.root().join(".orch/state/.events.jsonl"))
        .expect("events");
    writeln!(log, "{{\"event\":\"plan_paused\",\"plan\":\"a\"}}").expect("event");
    let pid = serve.child.id();
    let me2 = me.clone();
    let most = most_children_while(pid, move || {
        let asks: Vec<_> = (0..24)
            .map(|_| {
                let me = me2.clone();
                let auth = auth.clone();
                std::thread::spawn(move || {
                    raw(
                        &me,
                        &format!("GET /api/status HTTP/1.1\r\nHost: {me}\r\n{auth}"),
                        "",
                    )
                })
            })
            .collect();
        for a in asks {
            let (status, answer) = a.join().expect("ask");
            assert_eq!(status, 200, "{answer}");
            assert_eq!(
                body_json(&answer)["plans"][0]["tasks"][0]["status"],
                "needs_input"
            );
        }
    });
    eprintln!("at most {most} `orch` command(s) at once for 24 status requests");
    assert!(most <= 1, "{most} commands at once");
}

#[test]
fn control_with_sec_fetch_site_none_is_refused_and_head_answers_have_no_body() {
    let (repo, _rec, serve) = waiting(true);
    let me = serve.authority.clone();
    let good = format!("{}\r\nContent-Type: application/json", serve.auth());
    let before = support::file_snapshot(repo.root());
    for site in [
        "none",
        "None",
        "NONE",
        "same-site",
        "cross-site",
        "same-origin, none",
    ] {
        for (verb, args) in [
            ("resume", json!({"plan": "a"})),
            ("pause", json!({"plan": "a"})),
            ("answer", json!({"plan": "a", "task": "1.1", "text": "x"})),
        ] {
            let (status, answer) = raw(
                &me,
                &format!(
                    "POST /api/control/{verb} HTTP/1.1\r\nHost: {me}\r\n{good}\r\nSec-Fetch-Site: {site}"
                ),
                &args.to_string(),
            );
            assert_eq!(status, 403, "{verb} with {site}: {answer}");
        }
    }
    assert_eq!(support::file_snapshot(repo.root()), before);
    assert_eq!(repo.task("a", "1.1")["status"], "needs_input");

    for path in [
        "/",
        "/app.js",
        "/app.css",
        "/api/info",
        "/api/status",
        "/api/events",
        "/nothing",
    ] {
        let (status, answer) = raw(
            &me,
            &format!("HEAD {path} HTTP/1.1\r\nHost: {me}\r\n{}", serve.auth()),
            "",
        );
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
        assert!(body.is_empty(), "HEAD {path}: {answer}");
        assert!(head.contains("Content-Length: "), "{head}");
        assert!(
            status == 200 || (path == "/nothing" && status == 404),
            "{head}"
        );
    }
    let (_, head) = raw(&me, "HEAD / HTTP/1.1\r\nHost: evil.example", "");
    assert!(head.ends_with("\r\n\r\n"), "{head}");
}

/// Red team 16: a local process (an agent whose network is this machine's) opened hundreds of
/// connections and sent nothing; every one of the 64 connections served at once was held until
/// its 10 s deadline, and the page's requests, token and all, waited 20-65 s behind them. Now
/// when every slot is taken the oldest connection that has not sent its request is let go for
/// the new one: the page's request is answered before any idle one's deadline, whatever way the
/// idle ones are held (nothing sent, half a head, a head without its end).
#[test]
fn idle_connections_do_not_keep_the_page_waiting() {
    let (_repo, _rec, serve) = waiting(false);
    let me = serve.authority.clone();
    let auth = serve.auth();
    let mut idle = Vec::new();
    for i in 0..300 {
        let mut s = TcpStream::connect(&me).expect("connect");
        match i % 3 {
            0 => {}
            1 => s.write_all(b"GET /api/status HT").expect("write"),
            _ => s
                .write_all(format!("GET /api/events HTTP/1.1\r\nHost: {me}\r\n").as_bytes())
                .expect("write"),
        }
        idle.push(s);
    }
    for round in 0..3 {
        let started = Instant::now();
        let (status, answer) = raw(
            &me,
            &format!("GET /api/status HTTP/1.1\r\nHost: {me}\r\n{auth}"),
            "",
        );
        let took = started.elapsed();
        assert_eq!(status, 200, "round {round}: {answer}");
        assert_eq!(
            body_json(&answer)["plans"][0]["tasks"][0]["status"],
            "needs_input"
        );
        assert!(
            took < Duration::from_secs(8),
            "round {round}: answered after {took:?}, behind idle connections"
        );
    }
    // The idle ones let go were closed without an answer.
    let mut closed = 0;
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let mut b = [0u8; 1];
        if matches!(s.read(&mut b), Ok(0)) {
            closed += 1;
        }
    }
    assert!(closed > 0, "no idle connection was let go");
}
