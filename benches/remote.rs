//! `orch up` through the local executor and through `executor = "ssh"` on a real `sshd` on
//! loopback (the tests' `support::sshd`: one server, the user's `ssh` with a configuration of
//! the bench's own), with the same trivial agent `sh -c 'echo $ORCH_TASK > $ORCH_TASK.txt'`,
//! unconfined (`sandbox = "off"`: the cost measured is the executor's, not Landlock's).
//!
//! Two figures:
//! - **first and later task on a host**: one plan of 5 tasks (one after the other) on a host
//!   whose `dir` is empty: the first task's latency (`task_started` → `task_finished` event)
//!   includes the copy of orch's executable and of the repository's objects to the host; the
//!   later ones send only the commits the host lacks. The same plan run locally gives the local
//!   latency;
//! - **flat in the number of tasks**: runs of 10, 40 and 160 tasks (4 plans of independent
//!   tasks, `max_agents = 4`, a host of 4 slots whose `dir` already has orch's copy), local and
//!   remote: wall time per task, and the remote's cost per task over the local one. Flat means
//!   the per-task figures do not grow with the number of tasks.
//!
//! Every run checks that every task finished and its commit is on its plan branch here.
//! Run: `cargo bench --bench remote`. `cargo test` runs a tiny size (the first/later figure on a
//! plan of 2 tasks and one run of 4 tasks), skipped without `sshd` unless `ORCH_REQUIRE_SSHD`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

#[allow(dead_code)]
#[path = "../tests/support/sshd.rs"]
mod sshd;
mod support;
use support::{full_size, git, git_output, wait_with_cpu};

const AGENT: &str = "echo $ORCH_TASK > $ORCH_TASK.txt";

/// A repository of `plans` plans of `tasks` independent tasks each; `hosts` the `[[host]]`
/// tables (none: local).
fn setup(dir: &Path, plans: usize, tasks: usize, hosts: Option<&str>) {
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(dir.join("plans")).expect("mkdir");
    let executor = if hosts.is_some() { "ssh" } else { "local" };
    let mut manifest = format!(
        "{}[defaults]\nagent = \"writer\"\nmax_agents = 4\nexecutor = \"{executor}\"\nsandbox = \"off\"\nnetwork = \"open\"\n\n\
         [agents.writer]\ncommand = [\"sh\", \"-c\", \"{AGENT}\"]\n",
        hosts.unwrap_or_default()
    );
    for p in 0..plans {
        let mut plan = format!("# Plan {p}\n\n## Phase 1: Work\n");
        for t in 1..=tasks {
            plan.push_str(&format!("- [ ] 1.{t} Write file {t}\n"));
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

fn parse_at(v: &serde_json::Value) -> f64 {
    let s = v["at"].as_str().expect("at");
    let t = chrono::DateTime::parse_from_rfc3339(s).expect("rfc3339");
    t.timestamp_micros() as f64 / 1e6
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// What one `orch up` took.
struct Run {
    wall: f64,
    /// Each task's latency (`task_started` → `task_finished`), in the order tasks finished,
    /// by plan.
    latencies: BTreeMap<String, Vec<f64>>,
    /// orch's own CPU and the CPU of what it waited for (agents, drivers, `ssh`, git), seconds.
    cpu: (f64, f64),
}

/// One `orch up` in `root` with `path` as PATH; checks that every task finished and landed.
fn up(orch: &Path, root: &Path, path: &str, plans: usize, tasks: usize) -> Run {
    let events_path = root.join("events.jsonl");
    let start = Instant::now();
    let mut child = Command::new(orch)
        .current_dir(root)
        .env("PWD", root)
        .env("PATH", path)
        .env_remove("ORCH_SANDBOX")
        .env_remove("ORCH_NETWORK")
        .args(["up", "--json"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&events_path).expect("events file"))
        .stderr(std::fs::File::create(root.join("stderr.txt")).expect("stderr file"))
        .spawn()
        .expect("orch up");
    let (cpu, status) = wait_with_cpu(&mut child);
    let wall = start.elapsed().as_secs_f64();
    let events: Vec<serde_json::Value> = std::fs::read_to_string(&events_path)
        .expect("events")
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let failed: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "task_failed")
        .map(|e| format!("{} {}: {}", e["plan"], e["task"], e["error"]))
        .collect();
    assert!(
        status.success(),
        "orch up failed: {}\nfailed tasks: {failed:#?}",
        std::fs::read_to_string(root.join("stderr.txt")).unwrap_or_default()
    );
    let mut started: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut latencies: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut finished = 0;
    for e in &events {
        let key = (
            e["plan"].as_str().unwrap_or_default().to_string(),
            e["task"].as_str().unwrap_or_default().to_string(),
        );
        match e["event"].as_str() {
            Some("task_started") => {
                started.insert(key, parse_at(e));
            }
            Some("task_finished") => {
                finished += 1;
                if let Some(s) = started.remove(&key) {
                    latencies
                        .entry(key.0.clone())
                        .or_default()
                        .push(parse_at(e) - s);
                }
            }
            _ => {}
        }
    }
    assert_eq!(finished, plans * tasks, "not every task finished");
    for p in 0..plans {
        let files = git_output(root, &["ls-tree", "--name-only", &format!("plan/p{p}")]);
        for t in 1..=tasks {
            assert!(
                files.lines().any(|l| l == format!("1.{t}.txt")),
                "task 1.{t} of p{p} is not on its plan branch"
            );
        }
    }
    Run {
        wall,
        latencies,
        cpu: (cpu.own, cpu.children),
    }
}

fn main() {
    let full = full_size();
    let required = std::env::var(sshd::REQUIRE_SSHD).is_ok_and(|v| !v.is_empty() && v != "0");
    if !full && !required {
        println!("remote bench, tiny run: skipped (ORCH_REQUIRE_SSHD=1 runs it against sshd)");
        return;
    }
    if !sshd::available() {
        return;
    }
    let orch = Path::new(env!("CARGO_BIN_EXE_orch"));
    let orch_size = std::fs::metadata(orch).map(|m| m.len()).unwrap_or(0);
    let lab = sshd::Lab::start(&["h1"]);
    let path = lab.path();
    let hosts = lab.host_toml(4);
    println!(
        "orch's executable: {:.1} MiB; sshd on 127.0.0.1:{}",
        orch_size as f64 / 1048576.0,
        lab.server("h1").port
    );

    // The first task on a host, and the later ones.
    let n = if full { 5 } else { 2 };
    let local = tempfile::tempdir().expect("tmp");
    setup(local.path(), 1, n, None);
    let l = up(orch, local.path(), &path, 1, n);
    let remote = tempfile::tempdir().expect("tmp");
    setup(remote.path(), 1, n, Some(&hosts));
    let r = up(orch, remote.path(), &path, 1, n);
    let lat = |run: &Run| run.latencies.get("p0").cloned().unwrap_or_default();
    let (ll, rl) = (lat(&l), lat(&r));
    println!("one plan of {n} tasks, one after the other (task_started -> task_finished):");
    println!(
        "  local:  first task {:.0} ms, later tasks mean {:.0} ms",
        ll[0] * 1000.0,
        mean(&ll[1..]) * 1000.0
    );
    println!(
        "  remote: first task on the host {:.0} ms (orch's copy and the repository sent), later tasks mean {:.0} ms",
        rl[0] * 1000.0,
        mean(&rl[1..]) * 1000.0
    );
    println!(
        "  remote over local: first {:+.0} ms, later {:+.0} ms per task",
        (rl[0] - ll[0]) * 1000.0,
        (mean(&rl[1..]) - mean(&ll[1..])) * 1000.0
    );

    // Flat in the number of tasks: the host has orch's copy (the runs above).
    let sizes: &[usize] = if full { &[10, 40, 160] } else { &[4] };
    println!(
        "runs of N tasks (4 plans of N/4 independent tasks, max_agents = 4, a host of 4 slots):"
    );
    println!(
        "| tasks | local wall / task | remote wall / task | remote - local per task | orch CPU / task local / remote | waited-for CPU / task local / remote |"
    );
    println!("|---|---|---|---|---|---|");
    for &tasks in sizes {
        let per = tasks / 4;
        let local = tempfile::tempdir().expect("tmp");
        setup(local.path(), 4, per, None);
        let l = up(orch, local.path(), &path, 4, per);
        let remote = tempfile::tempdir().expect("tmp");
        setup(remote.path(), 4, per, Some(&hosts));
        let r = up(orch, remote.path(), &path, 4, per);
        let t = tasks as f64;
        println!(
            "| {tasks} | {:.0} ms | {:.0} ms | {:+.0} ms | {:.0} / {:.0} ms | {:.0} / {:.0} ms |",
            l.wall * 1000.0 / t,
            r.wall * 1000.0 / t,
            (r.wall - l.wall) * 1000.0 / t,
            l.cpu.0 * 1000.0 / t,
            r.cpu.0 * 1000.0 / t,
            l.cpu.1 * 1000.0 / t,
            r.cpu.1 * 1000.0 / t,
        );
    }
}
