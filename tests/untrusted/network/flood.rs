//! One attempt cannot exhaust orch's descriptors through its proxy: a hostile agent opens
//! [`N`] connections to the proxy (each a `CONNECT` to its allowed loopback endpoint) and [`N`]
//! straight to that endpoint, and holds them all, while another plan's task runs to its end.
//! orch serves at most 512 of each socket's connections at once (`sandbox/net/serve.rs`
//! `MAX_CONNECTIONS`) and closes the rest: its own descriptors stay bounded (counted in
//! `/proc/<orch up>/fd` while the flood holds), the flood is held to that bound, and the other
//! plan's task completes with its commit. Sandbox off and on.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::process::wait_within;
use crate::support::sink::python;
use crate::support::{Repo, fixtures, one_task, toml_array};

/// Connections of each kind the flood opens: three times what orch serves at once.
const N: usize = 1536;
/// What orch serves at once on one socket of an attempt (`MAX_CONNECTIONS`).
const SERVED: usize = 512;

/// A loopback listener that accepts every connection and holds it, saying nothing.
struct Holder {
    port: u16,
    held: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Holder {
    fn start() -> Holder {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        let port = l.local_addr().expect("addr").port();
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (held.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                match l.accept() {
                    Ok((c, _)) => h.lock().expect("held").push(c),
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            h.lock().expect("held").clear();
        });
        Holder { port, held, stop }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn fds_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn a_flood_through_the_proxy_is_bounded_and_another_plan_completes() {
    for sandbox in crate::support::sandboxes() {
        flood(sandbox);
    }
}

fn flood(sandbox: &str) {
    let holder = Holder::start();
    let repo = Repo::bare_minimum();
    let shared = repo.outside("flood");
    std::fs::create_dir_all(&shared).expect("shared dir");
    let shared_s = shared.display().to_string();
    repo.write("docs/plans/flood.md", &one_task("Flood", "Hostile work"));
    repo.write("docs/plans/b.md", &one_task("B", "Honest work"));
    let flood_cmd = toml_array(&[
        python(),
        fixtures()
            .join("hostile_net_flood.py")
            .display()
            .to_string(),
        shared_s.clone(),
        holder.port.to_string(),
        N.to_string(),
    ]);
    // Plan b's agent does its work once the flood holds.
    let honest = toml_array(&[
        "sh".to_string(),
        "-c".to_string(),
        format!(
            "i=0; while [ ! -f {shared_s}/flooded ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done; \
             echo honest > b.txt"
        ),
    ]);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nnetwork = \"confined\"\nnetwork_allow = [\"127.0.0.1:{}\"]\n\
             sandbox_write = [{:?}]\n\n\
             [agents.flood]\ncommand = {flood_cmd}\nreport = \"exit\"\n\n\
             [agents.honest]\ncommand = {honest}\nreport = \"exit\"\n\n\
             [[plan]]\nname = \"flood\"\nfile = \"docs/plans/flood.md\"\nagent = \"flood\"\n\n\
             [[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\nagent = \"honest\"\n",
            holder.port, shared_s
        ),
    );
    repo.commit_all("plans");
    let mut cmd = repo.orch(&["up", "--json"]);
    cmd.env("ORCH_SANDBOX", sandbox);
    let child = cmd.spawn().expect("orch up");
    let pid = child.id();
    let timeout = repo.timeout();
    let waiter = std::thread::spawn(move || wait_within(child, timeout, "orch up"));
    let flooded = shared.join("flooded");
    let started = Instant::now();
    while !flooded.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120) && !waiter.is_finished(),
            "sandbox {sandbox}: the flood never held"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let fds = fds_of(pid);
    std::fs::write(shared.join("release"), b"").expect("release");
    let out = waiter.join().expect("waiter");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "sandbox {sandbox}\n{stdout}\n{stderr}"
    );
    let counts = std::fs::read_to_string(&flooded).expect("counts");
    let counts: Vec<usize> = counts
        .split_whitespace()
        .map(|n| n.parse().expect("a count"))
        .collect();
    let (proxy_held, direct_held) = (counts[0], counts[1]);
    // orch served the flood up to its bound, and no further.
    assert!(
        (1..=SERVED).contains(&proxy_held) && (1..=SERVED).contains(&direct_held),
        "sandbox {sandbox}: orch kept {proxy_held} tunnels and {direct_held} direct connections of {N} each"
    );
    // Each connection it serves is two descriptors (the agent's and the destination's); the rest
    // of orch (its logs, listeners, status files) is well under 400. Unbounded, the flood would
    // have cost 4 × N = {4 * N}.
    assert!(
        fds <= 4 * SERVED + 400,
        "sandbox {sandbox}: orch up held {fds} descriptors under a flood of {} connections",
        2 * N
    );
    assert!(
        holder.held.lock().expect("held").len() <= 2 * SERVED,
        "more connections reached the endpoint than orch serves"
    );
    // The other plan's task completed, with its commit.
    assert_eq!(
        repo.subjects("plan/b"),
        ["b 1.1: Honest work"],
        "sandbox {sandbox}"
    );
    assert!(repo.tree_files("plan/b").contains(&"b.txt".to_string()));
    eprintln!(
        "sandbox {sandbox}: orch up held {fds} descriptors; {proxy_held} tunnels and {direct_held} direct connections of {N} each served"
    );
}
