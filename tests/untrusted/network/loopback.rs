//! An allowlist entry allows exactly what it names, and every request on a connection to orch's
//! proxy is judged. A hostile agent with `network_allow = ["localhost:P"]` tries the listeners
//! on P of other loopback addresses (`127.0.0.2`, `127.3.4.5`) and one on another port Q, by
//! every spelling of a loopback address (through the proxy, `CONNECT` and plain, and directly),
//! and as the second request of a kept-alive connection whose first is allowed (in a later write,
//! pipelined, after a body of either framing, by its URL or its `Host` only, inside a tunnel of
//! plain HTTP). Each listener records every byte it gets and keeps its connections open (as a
//! server that ignores `Connection: close`, or a front serving many hosts, would): the forbidden
//! ones get nothing, the allowed ones get the allowed requests only, and each refusal is logged.
//! Sandbox on and off: the rule is orch's. Only loopback addresses are used.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::sink::python;
use crate::support::{Repo, fixtures, one_task, toml_array};

/// The bytes of each connection a [`Recorder`] accepted.
type Connections = Arc<Mutex<Vec<Arc<Mutex<Vec<u8>>>>>>;

/// A loopback HTTP server that keeps every byte of every connection and answers each request
/// line it sees with its name, keeping the connection open.
pub(super) struct Recorder {
    pub(super) addr: SocketAddr,
    name: String,
    conns: Connections,
    stop: Arc<AtomicBool>,
}

impl Recorder {
    pub(super) fn bind(addr: SocketAddr) -> std::io::Result<Recorder> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let name = format!("listener-{addr}");
        let conns: Connections = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s, n) = (conns.clone(), stop.clone(), name.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let bytes: Arc<Mutex<Vec<u8>>> = Arc::default();
                c.lock().expect("conns").push(bytes.clone());
                let (s, n) = (s.clone(), n.clone());
                std::thread::spawn(move || serve(conn, &n, &bytes, &s));
            }
        });
        Ok(Recorder {
            addr,
            name,
            conns,
            stop,
        })
    }

    pub(super) fn connections(&self) -> usize {
        self.conns.lock().expect("conns").len()
    }

    /// Every byte it got, its connections one after the other.
    pub(super) fn bytes(&self) -> String {
        let conns = self.conns.lock().expect("conns");
        let all: Vec<u8> = conns
            .iter()
            .flat_map(|b| b.lock().expect("bytes").clone())
            .collect();
        String::from_utf8_lossy(&all).into_owned()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One connection of a [`Recorder`]: each request line answered, until the client closes.
fn serve(mut conn: TcpStream, name: &str, bytes: &Mutex<Vec<u8>>, stop: &AtomicBool) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut answered = 0;
    let mut chunk = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        match conn.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                let requests = {
                    let mut b = bytes.lock().expect("bytes");
                    b.extend_from_slice(&chunk[..n]);
                    request_lines(&b)
                };
                for _ in answered..requests {
                    let _ = write!(
                        conn,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{name}",
                        name.len()
                    );
                }
                answered = requests;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// How many whole lines of `b` are request lines (`METHOD target HTTP/1.x`).
fn request_lines(b: &[u8]) -> usize {
    let text = String::from_utf8_lossy(b);
    let mut lines: Vec<&str> = text.split("\r\n").collect();
    lines.pop(); // not whole yet
    lines
        .iter()
        .filter(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            parts.len() == 3
                && parts[2].starts_with("HTTP/1.")
                && !parts[0].is_empty()
                && parts[0].bytes().all(|c| c.is_ascii_uppercase())
        })
        .count()
}

/// The listeners: the allowed ones (`127.0.0.1:P`, `[::1]:P`) and the others (`127.0.0.2:P`,
/// `127.3.4.5:P`, `127.0.0.1:Q`).
struct Listeners {
    p: u16,
    q: u16,
    allowed: Vec<Recorder>,
    forbidden: Vec<Recorder>,
}

impl Listeners {
    fn start() -> Listeners {
        let addr = |s: String| s.parse::<SocketAddr>().expect("addr");
        for _ in 0..50 {
            let first = Recorder::bind(addr("127.0.0.1:0".into())).expect("bind 127.0.0.1");
            let p = first.addr.port();
            let others: std::io::Result<Vec<Recorder>> = [
                format!("[::1]:{p}"),
                format!("127.0.0.2:{p}"),
                format!("127.3.4.5:{p}"),
            ]
            .into_iter()
            .map(|a| Recorder::bind(addr(a)))
            .collect();
            let Ok(mut others) = others else { continue };
            let other_port = Recorder::bind(addr("127.0.0.1:0".into())).expect("bind");
            let q = other_port.addr.port();
            let v6 = others.remove(0);
            others.push(other_port);
            return Listeners {
                p,
                q,
                allowed: vec![first, v6],
                forbidden: others,
            };
        }
        panic!("no port free on 127.0.0.1, [::1], 127.0.0.2 and 127.3.4.5 at once");
    }

    /// What the allowed listeners got.
    fn allowed_bytes(&self) -> String {
        self.allowed.iter().map(Recorder::bytes).collect()
    }

    /// Nothing at all reached the other listeners.
    fn assert_forbidden_untouched(&self, sandbox: &str, log: &str) {
        for f in &self.forbidden {
            assert_eq!(
                (f.connections(), f.bytes()),
                (0, String::new()),
                "sandbox {sandbox}: {} was reached\n{log}",
                f.name
            );
        }
    }
}

/// Runs the hostile agent in `mode` (confined, `network_allow = ["localhost:P"]`) with
/// `ORCH_SANDBOX=sandbox`: its tries (`name -> (allowed, detail)`) and its log.
fn run(l: &Listeners, mode: &str, sandbox: &str) -> (BTreeMap<String, (bool, String)>, String) {
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/a.md", &one_task("A", "Hostile work"));
    let argv = toml_array(&[
        python(),
        fixtures()
            .join("hostile_net_loopback.py")
            .display()
            .to_string(),
        mode.to_string(),
        l.p.to_string(),
        l.q.to_string(),
    ]);
    repo.manifest(
        &argv,
        "report = \"exit\"",
        &format!(
            "retries = 0\nnetwork = \"confined\"\nnetwork_allow = [\"localhost:{}\"]",
            l.p
        ),
        &[("a", "")],
    );
    repo.commit_all("plans");
    let main = repo.rev("main");
    let (code, out, err) = repo.run_cmd(
        repo.orch(&["up", "--json", "a"])
            .env("ORCH_SANDBOX", sandbox),
    );
    assert_eq!(code, 0, "sandbox {sandbox}: orch up failed\n{out}\n{err}");
    assert_eq!(repo.rev("main"), main, "main moved");
    let text = repo.git(&["show", "plan/a:results.txt"]);
    let got = text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ' ');
            let name = it.next()?.to_string();
            let ok = it.next()? == "allowed";
            Some((name, (ok, it.next().unwrap_or("").to_string())))
        })
        .collect();
    let log = String::from_utf8_lossy(&repo.read(".orch/logs/a/1.1.log")).into_owned();
    (got, log)
}

/// Whether `seen` holds the request line of the request marked `mark`.
fn reached(seen: &str, mark: &str) -> bool {
    seen.contains(&format!("/mark-{mark} HTTP/1.1\r\n"))
}

#[test]
fn localhost_allows_the_loopback_address_it_means_and_no_other() {
    for sandbox in ["off", "on"] {
        if sandbox == "on" && !crate::landlock() {
            continue;
        }
        let l = Listeners::start();
        let (got, log) = run(&l, "spellings", sandbox);
        assert_eq!(got.len(), 17 * 2 + 8, "sandbox {sandbox}: {got:?}\n{log}");
        let seen = l.allowed_bytes();
        for (name, (ok, detail)) in &got {
            // The kernel's own spellings of this host (`0.0.0.0`, `127.1` given to connect)
            // reach what they mean there, 127.0.0.1 or [::1], or nothing.
            if !name.contains("-kernel_") {
                assert_eq!(
                    *ok,
                    name.contains("-ok_"),
                    "sandbox {sandbox}: {name}: {detail}\n{log}"
                );
            }
            assert_eq!(
                reached(&seen, name),
                *ok,
                "sandbox {sandbox}: {name} ({detail}) and what the allowed listeners got:\n{seen}"
            );
        }
        l.assert_forbidden_untouched(sandbox, &log);
        let (p, q) = (l.p, l.q);
        for line in [
            format!("refused 127.0.0.2:{p} (CONNECT through orch's proxy; not in network_allow)"),
            format!(
                "refused 127.0.0.2:{p} (plain HTTP through orch's proxy; not in network_allow)"
            ),
            format!("refused 127.3.4.5:{p} (CONNECT through orch's proxy; not in network_allow)"),
            format!(
                "refused 127.3.4.5:{p} (plain HTTP through orch's proxy; not in network_allow)"
            ),
            format!("refused 127.0.0.1:{q} (CONNECT through orch's proxy; not in network_allow)"),
            format!("refused 0x7f000001:{p} (CONNECT through orch's proxy; not in network_allow)"),
            format!("refused 127.1:{p} (a request to orch's proxy it does not pass on"),
            format!("refused 0.0.0.0:{p} (a request to orch's proxy it does not pass on"),
            format!("refused [::]:{p} (a request to orch's proxy it does not pass on"),
            format!(
                "refused http://2130706433:{p}/mark-plain-decimal_2130706433 (a request to orch's proxy it does not pass on"
            ),
            format!("refused 127.0.0.2:{p} (a connection to a port where nothing listens"),
            format!("refused 127.3.4.5:{p} (a connection to a port where nothing listens"),
        ] {
            assert!(
                log.contains(&line),
                "sandbox {sandbox}: `{line}` not logged\n{log}"
            );
        }
    }
}

#[test]
fn every_request_on_a_connection_to_the_proxy_is_judged() {
    let refused = [
        "later-write",
        "pipelined",
        "after-length-body",
        "after-chunked-body",
        "absolute-other-port",
        "absolute-other-address",
        "host-header-only",
        "origin-form-host",
        "tunnel-later-write",
        "tunnel-pipelined",
        "tunnel-absolute",
        "tunnel-after-chunked-body",
        "tunnel-other-port",
        "tunnel-after-a-pause",
    ];
    for sandbox in ["off", "on"] {
        if sandbox == "on" && !crate::landlock() {
            continue;
        }
        let l = Listeners::start();
        let (got, log) = run(&l, "keepalive", sandbox);
        assert_eq!(
            got.len(),
            refused.len() + 4,
            "sandbox {sandbox}: {got:?}\n{log}"
        );
        let seen = l.allowed_bytes();
        for v in refused {
            let name = format!("keepalive-{v}");
            let (ok, detail) = got.get(&name).unwrap_or_else(|| panic!("{name}: {got:?}"));
            // The first request answered, the second refused by orch (403, or 400 for what is
            // not a request to the proxy), after it.
            assert!(
                !ok && (detail.starts_with("second_403") || detail.starts_with("second_400")),
                "sandbox {sandbox}: {name}: {detail}\n{log}"
            );
            assert!(
                reached(&seen, &format!("{v}-1")),
                "sandbox {sandbox}: {v}'s first request did not reach its listener:\n{seen}"
            );
            assert!(
                !reached(&seen, v) && !seen.contains(&format!("/mark-{v} ")),
                "sandbox {sandbox}: {v}'s second request reached an allowed listener:\n{seen}"
            );
        }
        // A request smuggled in a body framed two ways: nothing of it goes anywhere.
        let (ok, detail) = &got["keepalive-smuggled"];
        assert!(!ok && detail.starts_with("400_"), "{detail}");
        assert!(!seen.contains("mark-smuggled"), "{seen}");
        // What stays allowed: the same listener again, the other address localhost means (a
        // connection of its own), the same in a tunnel.
        for (name, mark) in [
            ("ok-keepalive-same", "ok-same"),
            ("ok-keepalive-v6", "ok-v6"),
            ("ok-keepalive-tunnel", "ok-tunnel"),
        ] {
            let (ok, detail) = &got[name];
            assert!(ok, "sandbox {sandbox}: {name}: {detail}\n{log}");
            assert!(reached(&seen, mark) && reached(&seen, &format!("{mark}-1")));
        }
        assert!(reached(&l.allowed[1].bytes(), "ok-v6"), "[::1] not reached");
        l.assert_forbidden_untouched(sandbox, &log);
        let (p, q) = (l.p, l.q);
        for line in [
            format!(
                "refused 127.0.0.2:{p} (plain HTTP through orch's proxy; not in network_allow)"
            ),
            format!(
                "refused 127.0.0.1:{q} (plain HTTP through orch's proxy; not in network_allow)"
            ),
            format!(
                "refused 127.3.4.5:{p} (plain HTTP through orch's proxy; not in network_allow)"
            ),
            format!(
                "refused 127.0.0.2:{p} (named by the Host header of a plain request to 127.0.0.1:{p}"
            ),
            "refused /mark-origin-form-host (a request to orch's proxy it does not pass on"
                .to_string(),
            format!("refused 127.0.0.2:{p} (named in a tunnel to 127.0.0.1:{p}"),
            format!(
                "refused http://127.0.0.2:{p}/mark-tunnel-absolute (named in a tunnel to 127.0.0.1:{p}"
            ),
            format!("refused 127.0.0.1:{q} (named in a tunnel to 127.0.0.1:{p}"),
            "both Content-Length and Transfer-Encoding (request smuggling)".to_string(),
        ] {
            assert!(
                log.contains(&line),
                "sandbox {sandbox}: `{line}` not logged\n{log}"
            );
        }
    }
}
