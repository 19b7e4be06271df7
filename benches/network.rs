//! What confining the network costs (`network = "confined"` against `"open"`, and `"none"`):
//!
//! 1. **An agent's start**: `orch up` of a plan of `--tasks N` (default 30) trivial tasks run one
//!    after another (the agent is `true`, done by its exit status), in a fresh repository per
//!    run: wall per task and orch's CPU per task (the supervisor and everything it waited for,
//!    `getrusage(RUSAGE_CHILDREN)`), so the difference between modes is what the namespace, the
//!    handover of its sockets and the proxy's attempt add to each attempt.
//! 2. **A request through the proxy against a direct one**, at the sizes of a real client's
//!    traffic: a scripted agent (python) sends `--requests R` (default 200) requests of 64 KiB
//!    and gets 16 KiB back (a model call with a long context and a streamed answer), then 20 of
//!    512 KiB, to a loopback HTTP server of the bench: on a new connection each time and on
//!    one kept connection; `open` (direct), `confined` directly to the allowed loopback
//!    endpoint (joined by orch) and `confined` through the proxy (`CONNECT`). Medians of the
//!    per-request times the agent measures.
//! 3. **`verify`'s start**: `orch merge` of a finished one-task plan whose `verify` is `true`,
//!    `--merges M` (default 10) fresh repositories per mode and run: the wall of `orch merge`
//!    and its CPU with its children's,
//!    so the difference between modes is what the namespace, the proxy of `orch merge`'s own
//!    and the handover add to a verify (`open` is `verify` as it ran before it was confined).
//!    A resolving agent's start pays the same.
//!
//! Every run checks its outcome (every task completed; the agent's figures written) and panics
//! otherwise. Run: `cargo bench --bench network` (`-- --runs N`, default 3, alternating the
//! modes). Under `cargo test` (no `--bench` argument) it runs a tiny size once, so that it
//! cannot rot. Only loopback addresses.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

mod support;
use support::{children_rusage, git, median};

const MODES: [&str; 3] = ["open", "none", "confined"];

/// A loopback server answering each request (with its `Content-Length` body read) with
/// `reply` bytes, keeping connections open.
fn server(reply: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let _ = conn.set_nodelay(true);
                let body = vec![b'x'; reply];
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 65536];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                buf.extend_from_slice(&chunk[..n]);
                                continue;
                            }
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..end + 4 + len);
                    let mut out =
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {reply}\r\n\r\n").into_bytes();
                    out.extend_from_slice(&body);
                    if conn.write_all(&out).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// The agent of part 2: `python3 AGENT PORT REQUESTS` writes `figures.txt`.
const AGENT: &str = r#"
import os, socket, sys, time
PORT, R = int(sys.argv[1]), int(sys.argv[2])
_create = socket.create_connection
def _nodelay(*a, **k):
    s = _create(*a, **k); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1); return s
socket.create_connection = _nodelay
proxy = os.environ.get("HTTPS_PROXY", "")
def req(size):
    return b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %d\r\n\r\n" % (PORT, size) + b"y" * size
def read_reply(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        c = s.recv(65536)
        if not c: raise OSError("closed")
        buf += c
    head, rest = buf.split(b"\r\n\r\n", 1)
    if b" 200 " not in head.split(b"\r\n")[0] + b" ": raise OSError("not answered: %r" % head[:200])
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(rest) < n:
        c = s.recv(65536)
        if not c: raise OSError("closed")
        rest += c
def connect(via_proxy):
    if not via_proxy:
        return socket.create_connection(("127.0.0.1", PORT))
    host, port = proxy[7:].rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n" % PORT)
    h = b""
    while b"\r\n\r\n" not in h: h += s.recv(4096)
    assert b" 200 " in h.split(b"\r\n")[0] + b" ", h
    return s
def med(v):
    v = sorted(v); return v[len(v) // 2]
out = []
for via in ([False, True] if proxy else [False]):
    for size, n in ((65536, R), (524288, max(2, R // 10))):
        fresh = []
        for _ in range(n):
            t = time.perf_counter(); s = connect(via); s.sendall(req(size)); read_reply(s); s.close()
            fresh.append(time.perf_counter() - t)
        kept = []
        s = connect(via)
        for _ in range(n):
            t = time.perf_counter(); s.sendall(req(size)); read_reply(s); kept.append(time.perf_counter() - t)
        s.close()
        out.append("%s %d %.3f %.3f" % ("proxy" if via else "direct", size, med(fresh) * 1000, med(kept) * 1000))
open("figures.txt", "w").write("\n".join(out) + "\n")
"#;

fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// A fresh repository in `dir` with plan `p`: `tasks` tasks run by `agent` (a TOML array).
fn setup(dir: &Path, tasks: usize, agent: &str, extra: &str) {
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join(".gitignore"), ".orch/\n").expect("write");
    let mut plan = String::from("# P\n\n## Phase 1: Work\n");
    for t in 1..=tasks {
        plan.push_str(&format!("- [ ] 1.{t} Task {t}\n"));
    }
    std::fs::write(dir.join("p.md"), plan).expect("write");
    std::fs::write(
        dir.join("plans.toml"),
        format!(
            "[defaults]\nmax_agents = 1\nretries = 0\n{extra}\n\n[agents.a]\ncommand = {agent}\nreport = \"exit\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"p.md\"\nagent = \"a\"\n"
        ),
    )
    .expect("write");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "plans"]);
}

/// `orch up` in `dir` with `ORCH_NETWORK=mode`: (wall seconds, CPU seconds of it and its children).
fn up(dir: &Path, mode: &str) -> (f64, f64) {
    let cpu = children_rusage();
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_orch"))
        .arg("up")
        .current_dir(dir)
        .env("ORCH_NETWORK", mode)
        .env("ORCH_SANDBOX", "off")
        .stdin(Stdio::null())
        .output()
        .expect("orch up");
    let wall = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "orch up ({mode}) failed\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (wall, children_rusage() - cpu)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let value = |flag: &str, default: usize| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (runs, tasks, requests, merges) = if bench {
        (
            value("--runs", 3),
            value("--tasks", 30),
            value("--requests", 200),
            value("--merges", 10),
        )
    } else {
        (1, 2, 4, 1)
    };
    println!("load average at start: {}", load());
    // 1. An agent's start.
    let mut per: Vec<Vec<(f64, f64)>> = vec![Vec::new(); MODES.len()];
    for _ in 0..runs {
        for (i, mode) in MODES.iter().enumerate() {
            let dir = tempfile::tempdir().expect("tempdir");
            setup(dir.path(), tasks, "[\"true\"]", "");
            let (wall, cpu) = up(dir.path(), mode);
            let status = std::fs::read_to_string(dir.path().join(".orch/state/p.json"))
                .or_else(|_| std::fs::read_to_string(dir.path().join(".orch/state/p.status.json")))
                .unwrap_or_default();
            assert!(
                status.is_empty() || status.matches("\"completed\"").count() >= tasks,
                "not every task completed ({mode})"
            );
            per[i].push((wall / tasks as f64, cpu / tasks as f64));
        }
    }
    println!("\nan agent's start ({tasks} tasks one after another, {runs} run(s) each, medians):");
    println!("| network | wall per task | orch's CPU per task |");
    println!("|---|---|---|");
    for (i, mode) in MODES.iter().enumerate() {
        let mut w: Vec<f64> = per[i].iter().map(|p| p.0).collect();
        let mut c: Vec<f64> = per[i].iter().map(|p| p.1).collect();
        println!(
            "| {mode} | {:.1} ms | {:.1} ms |",
            median(&mut w) * 1000.0,
            median(&mut c) * 1000.0
        );
    }
    // 2. Requests.
    let port = server(16 * 1024);
    println!(
        "\nrequests of 64 KiB (16 KiB back) and 512 KiB, median ms per request, new connection / kept connection:"
    );
    println!("| network | path | 64 KiB new | 64 KiB kept | 512 KiB new | 512 KiB kept |");
    println!("|---|---|---|---|---|---|");
    for mode in ["open", "confined"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let agent_file = dir.path().join("agent.py");
        std::fs::write(&agent_file, AGENT).expect("agent");
        let agent = format!(
            "[\"{}\", \"{}\", \"{port}\", \"{requests}\"]",
            python(),
            agent_file.display()
        );
        setup(
            dir.path(),
            1,
            &agent,
            &format!("network_allow = [\"127.0.0.1:{port}\"]"),
        );
        up(dir.path(), mode);
        let figures = std::fs::read_to_string(dir.path().join(".orch/worktrees/p/figures.txt"))
            .expect("the agent's figures");
        let mut rows: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for l in figures.lines() {
            let f: Vec<&str> = l.split(' ').collect();
            rows.entry(f[0].to_string())
                .or_default()
                .extend([f[2].to_string(), f[3].to_string()]);
        }
        for (path, v) in rows {
            println!("| {mode} | {path} | {} |", v.join(" | "));
        }
    }
    // 3. verify's start.
    let mut per: Vec<Vec<(f64, f64)>> = vec![Vec::new(); MODES.len()];
    for _ in 0..runs {
        for (i, mode) in MODES.iter().enumerate() {
            for _ in 0..merges {
                let dir = tempfile::tempdir().expect("tempdir");
                // The agent writes a file: a plan with nothing to merge runs no verify.
                setup(
                    dir.path(),
                    1,
                    "[\"sh\", \"-c\", \"echo done > out.txt\"]",
                    "verify = [\"true\"]\nintegrate = \"off\"",
                );
                up(dir.path(), mode);
                let cpu = children_rusage();
                let wall = merge(dir.path(), mode);
                per[i].push((wall, children_rusage() - cpu));
            }
        }
    }
    println!(
        "\nverify's start (`orch merge` of one plan, verify `true`, {merges} merges x {runs} run(s) each, medians):"
    );
    println!("| network | wall of `orch merge` | its CPU (and its children's) |");
    println!("|---|---|---|");
    for (i, mode) in MODES.iter().enumerate() {
        let mut w: Vec<f64> = per[i].iter().map(|p| p.0).collect();
        let mut c: Vec<f64> = per[i].iter().map(|p| p.1).collect();
        println!(
            "| {mode} | {:.1} ms | {:.1} ms |",
            median(&mut w) * 1000.0,
            median(&mut c) * 1000.0
        );
    }
    println!("\nload average at the end: {}", load());
}

/// `orch merge` in `dir` with `ORCH_NETWORK=mode`: its wall seconds; the plan must land.
fn merge(dir: &Path, mode: &str) -> f64 {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_orch"))
        .arg("merge")
        .current_dir(dir)
        .env("ORCH_NETWORK", mode)
        .env("ORCH_SANDBOX", "off")
        .stdin(Stdio::null())
        .output()
        .expect("orch merge");
    let wall = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "orch merge ({mode}) failed\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let log =
        std::fs::read_to_string(dir.join(".orch/logs/p/merge-verify.log")).unwrap_or_default();
    assert!(
        log.contains("verify passed"),
        "verify did not run ({mode})\n{log}"
    );
    wall
}
