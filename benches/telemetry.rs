//! What OpenTelemetry export costs `orch up`: the same run with export off and on, per task.
//!
//! Workload: 4 plans of 50 tasks (200 tasks; `-- --tasks N` per plan), `max_agents = 8`,
//! `parallel = 2`, the trivial agent of `benches/up.rs` (`["{{ orch }}", "task", "done",
//! "{{ task }}"]`: every process of the run is orch). "On" exports over http/protobuf to a
//! loopback receiver in this process that reads each request whole and answers 200 (it decodes
//! nothing: the cost measured is orch's). Off and on alternate, 3 runs each (`-- --runs N`);
//! figures are medians: the wall per task, and the supervisor's own CPU per task (its zombie's
//! utime + stime, `support::wait_with_cpu`: the exporter's thread is in it). Then the
//! difference on − off per task, against the target: under 1 ms per task (CPU; the wall
//! time of a shared 2-core machine drifts more than that), PASS or FAIL. Every run checks that
//! it completed every task; an "on" run, that the receiver got spans.
//!
//! Run: `cargo bench --bench telemetry`. Without `--bench` (under `cargo test`, `test = true`)
//! one tiny run of each, 2 plans × 5 tasks, checked, so the bench cannot rot.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

mod support;
use support::{full_size, git, median, wait_with_cpu};

fn setup(dir: &Path, plans: usize, tasks: usize) {
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(dir.join("plans")).expect("mkdir");
    std::fs::write(dir.join(".gitignore"), ".orch/\n").expect("write");
    let mut manifest = String::from(
        "[defaults]\nagent = \"reporter\"\nmax_agents = 8\nparallel = 2\n\n\
         [agents.reporter]\ncommand = [\"{{ orch }}\", \"task\", \"done\", \"{{ task }}\"]\n",
    );
    for p in 0..plans {
        let mut plan = format!("# Plan {p}\n\n## Phase 1: Work\n");
        for t in 1..=tasks {
            plan.push_str(&format!("- [ ] 1.{t} Task {t} of plan {p}\n"));
        }
        std::fs::write(dir.join(format!("plans/p{p}.md")), plan).expect("write");
        manifest.push_str(&format!(
            "\n[[plan]]\nname = \"p{p}\"\nfile = \"plans/p{p}.md\"\n"
        ));
    }
    std::fs::write(dir.join("plans.toml"), manifest).expect("write");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "bench plans"]);
}

/// A loopback receiver: reads each request whole, answers 200, counts the requests.
fn receiver() -> (String, Arc<AtomicU64>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let n = Arc::new(AtomicU64::new(0));
    let count = n.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let count = count.clone();
            std::thread::spawn(move || {
                let mut w = conn.try_clone().expect("clone");
                let mut r = BufReader::new(conn);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h.trim_end().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                }
            });
        }
    });
    (format!("http://{addr}"), n)
}

struct Run {
    wall: f64,
    supervisor: f64,
}

fn run_once(orch: &Path, plans: usize, tasks: usize, endpoint: Option<&str>) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    setup(root, plans, tasks);
    let events = root.join("events.jsonl");
    let stderr = root.join("stderr.txt");
    let mut cmd = Command::new(orch);
    cmd.current_dir(root)
        .args(["up", "--json"])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&events).expect("events"))
        .stderr(std::fs::File::create(&stderr).expect("stderr"));
    if let Some(e) = endpoint {
        cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", e);
    }
    let start = Instant::now();
    let mut up = cmd.spawn().expect("orch up");
    let (cpu, status) = wait_with_cpu(&mut up);
    let wall = start.elapsed().as_secs_f64();
    let err = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(status.success(), "orch up failed ({status}): {err}");
    assert!(!err.contains("note: telemetry"), "the export failed: {err}");
    let finished = std::fs::read_to_string(&events)
        .expect("events")
        .lines()
        .filter(|l| l.contains("\"event\":\"task_finished\""))
        .count();
    assert_eq!(finished, plans * tasks, "every task finished");
    Run {
        wall,
        supervisor: cpu.own,
    }
}

fn arg(args: &[String], name: &str) -> Option<usize> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let orch = Path::new(env!("CARGO_BIN_EXE_orch"));
    let full = full_size();
    let (plans, tasks, runs) = if full {
        (
            4,
            arg(&args, "--tasks").unwrap_or(50),
            arg(&args, "--runs").unwrap_or(3),
        )
    } else {
        (2, 5, 1)
    };
    let (endpoint, requests) = receiver();
    let n = (plans * tasks) as f64;
    let (mut off_wall, mut off_cpu, mut on_wall, mut on_cpu) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        let before = requests.load(Ordering::Relaxed);
        let on = run_once(orch, plans, tasks, Some(&endpoint));
        assert!(
            requests.load(Ordering::Relaxed) > before,
            "the receiver got the run's export"
        );
        let off = run_once(orch, plans, tasks, None);
        off_wall.push(off.wall / n * 1e3);
        off_cpu.push(off.supervisor / n * 1e3);
        on_wall.push(on.wall / n * 1e3);
        on_cpu.push(on.supervisor / n * 1e3);
    }
    let (ow, oc, nw, nc) = (
        median(&mut off_wall),
        median(&mut off_cpu),
        median(&mut on_wall),
        median(&mut on_cpu),
    );
    println!("telemetry: {plans} plans × {tasks} tasks, {runs} runs each, medians per task");
    println!("  export off: wall {ow:.2} ms, supervisor CPU {oc:.2} ms");
    println!("  export on:  wall {nw:.2} ms, supervisor CPU {nc:.2} ms");
    let d = nc - oc;
    println!(
        "  on − off: wall {:+.2} ms, supervisor CPU {d:+.2} ms per task: {} (target < 1 ms)",
        nw - ow,
        if d < 1.0 { "PASS" } else { "FAIL" }
    );
}
