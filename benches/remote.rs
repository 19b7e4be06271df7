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
//! - **a host that blips**: N tasks side by side on the host (`parallel_tasks = N`, `retries =
//!   0`); once every agent has started, the network to the host stalls (its `sshd` processes
//!   stopped: nothing passes, no connection is reset), the agents end meanwhile with their work
//!   unsent, and the host answers again once orch has said it is lost. orch saves each cut-off
//!   attempt's work (`refs/orch/attempts/lost/`, never landed) and runs the task again from
//!   the plan branch, no retry spent. Figures: how long orch took to see the host lost, and
//!   from the host's return to every task done again and landed (its `task_finished`), for
//!   N = 2, 4 and 8: growth shows whether that is task by task or together. Each run checks
//!   that no task failed, each ran exactly once more, each cut-off attempt's work was saved
//!   and every task's file is on the plan branch.
//!
//! Every run checks that every task finished and its commit is on its plan branch here.
//! Run: `cargo bench --bench remote`. `cargo test` runs a tiny size (the first/later figure on a
//! plan of 2 tasks, one run of 4 tasks and a blip under 2 tasks), skipped without `sshd` unless
//! `ORCH_REQUIRE_SSHD`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    let mut lab = sshd::Lab::start(&["h1"]);
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

    // A host that blips under N running attempts.
    let sizes: &[usize] = if full { &[2, 4, 8] } else { &[2] };
    println!(
        "a host that blips under N side-by-side attempts (network stalled until the agents ended):"
    );
    println!(
        "| N | host seen lost after | host back -> every task done again and landed | per task |"
    );
    println!("|---|---|---|---|");
    for &n in sizes {
        let b = blip(orch, &mut lab, n);
        println!(
            "| {n} | {:.1} s | {:.0} ms | {:.0} ms |",
            b.lost_after,
            b.taken_back * 1000.0,
            b.taken_back * 1000.0 / n as f64
        );
    }
}

/// Seconds since the epoch, as the events' `at`.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Polls `what` every 20 ms for up to two minutes (a bench waits on files a process writes).
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Blip {
    /// From the stall to orch's `host_lost`, seconds.
    lost_after: f64,
    /// From the host answering again to the last `task_finished` (every task done again and
    /// landed), seconds.
    taken_back: f64,
}

/// One `orch up` of `n` side-by-side tasks on the lab's host `h1` through a stall of its
/// network; checks that every task finished once, with its file on the plan branch.
fn blip(orch: &Path, lab: &mut sshd::Lab, n: usize) -> Blip {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path().join("repo");
    std::fs::create_dir_all(root.join("plans")).expect("mkdir");
    let journal = dir.path().join("journal");
    let go = dir.path().join("go");
    let agent = dir.path().join("agent.sh");
    std::fs::write(
        &agent,
        format!(
            "#!/bin/sh\necho \"$ORCH_TASK\" > \"$ORCH_TASK.txt\"\necho \"start $ORCH_TASK\" >> {j}\n\
             while [ ! -e {g} ]; do sleep 0.02; done\necho \"end $ORCH_TASK\" >> {j}\nexit 0\n",
            j = journal.display(),
            g = go.display()
        ),
    )
    .expect("agent");
    git(&root, &["init", "-q", "-b", "main"]);
    let mut plan = String::from("# Plan\n\n## Phase 1: Work\n");
    for t in 1..=n {
        plan.push_str(&format!("- [ ] 1.{t} Write file {t}\n"));
    }
    std::fs::write(root.join("plans/p.md"), plan).expect("write");
    std::fs::write(
        root.join("plans.toml"),
        format!(
            "{}[defaults]\nagent = \"a\"\nmax_agents = {n}\nexecutor = \"ssh\"\nretries = 0\nsandbox = \"off\"\nnetwork = \"open\"\n\n\
             [agents.a]\ncommand = [\"sh\", \"{}\"]\nreport = \"exit\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"plans/p.md\"\nparallel_tasks = {n}\n",
            lab.host_toml(n),
            agent.display()
        ),
    )
    .expect("write");
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "bench plans"]);
    let events_path = root.join(".orch/state/.events.jsonl");
    let events = || -> Vec<serde_json::Value> {
        lines_of(&events_path)
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let count = |prefix: &str| {
        lines_of(&journal)
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    };
    let mut child = Command::new(orch)
        .current_dir(&root)
        .env("PWD", &root)
        .env("PATH", lab.path())
        .env_remove("ORCH_SANDBOX")
        .env_remove("ORCH_NETWORK")
        .arg("up")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.txt")).expect("stderr file"))
        .spawn()
        .expect("orch up");
    wait_until("every agent's start", || count("start ") == n);
    let stalled = now();
    lab.stall("h1");
    std::fs::write(&go, "").expect("go");
    wait_until("every agent's end", || count("end ") == n);
    wait_until("orch's host_lost", || {
        events().iter().any(|e| e["event"] == "host_lost")
    });
    let back = now();
    lab.end_stall("h1");
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("orch up did not end after the host came back");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(dir.path().join("stderr.txt")).unwrap_or_default();
    assert!(status.success(), "orch up failed: {stderr}");
    let ev = events();
    let of = |name: &str| -> Vec<&serde_json::Value> {
        ev.iter().filter(|e| e["event"] == name).collect()
    };
    assert!(of("task_failed").is_empty(), "a task failed: {stderr}");
    assert_eq!(of("task_finished").len(), n, "every task once: {stderr}");
    // Each attempt cut off ran again once (no retry spent), its own work saved, never landed.
    assert_eq!(count("start "), 2 * n, "each task ran once more, no more");
    let saved = git_output(&root, &["for-each-ref", "refs/orch/attempts/lost/"]);
    assert_eq!(
        saved.lines().count(),
        n,
        "each cut-off attempt's work saved"
    );
    let lost = of("host_lost")
        .iter()
        .map(|e| parse_at(e))
        .fold(f64::MAX, f64::min);
    let last = of("task_finished")
        .iter()
        .map(|e| parse_at(e))
        .fold(0.0, f64::max);
    let files = git_output(&root, &["ls-tree", "--name-only", "plan/p"]);
    for t in 1..=n {
        assert!(
            files.lines().any(|l| l == format!("1.{t}.txt")),
            "task 1.{t} is not on its plan branch"
        );
    }
    Blip {
        lost_after: lost - stalled,
        taken_back: last - back,
    }
}
