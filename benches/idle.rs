//! Idle cost of `orch up`: 8 plans, one task each, agents that sleep 30 s, 8 agents at a time.
//! While they sleep, orch must cost next to nothing: it is event-driven (status files watched
//! with inotify, child exits awaited), not polling. Measures orch's own CPU time (user + system,
//! from `/proc/<pid>/stat`) over the idle window: from the moment every agent runs until just
//! before they end. Target: under 0.3 s of CPU for 30 s.
//!
//! Run: `cargo bench --bench idle` (`-- --seconds N` for another agent sleep; `ORCH_BENCH_BIN`
//! names another build of orch to measure). `cargo test`
//! runs a tiny size (2 agents, 4 s) and checks orch stayed idle.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{clock_ticks, full_size, git};

/// User + system CPU time of a process so far, in seconds (fields 14 and 15 of its stat line).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / clock_ticks()
}

fn main() {
    // Under `cargo test`, a tiny run: 2 agents sleeping 4 s, and a check that orch stayed idle.
    let full = full_size();
    let plans: usize = if full { 8 } else { 2 };
    let seconds: u64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(if full { 30 } else { 4 });
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(root.join("plans")).expect("mkdir");
    let mut manifest = format!(
        "[defaults]\nagent = \"sleeper\"\nmax_agents = {plans}\nstuck_after = \"1h\"\n\n\
         [agents.sleeper]\ncommand = [\"sleep\", \"{seconds}\"]\n"
    );
    for p in 0..plans {
        std::fs::write(
            root.join(format!("plans/p{p}.md")),
            format!("# Plan {p}\n\n## Phase 1: Wait\n- [ ] 1.1 Sleep\n"),
        )
        .expect("plan");
        manifest.push_str(&format!(
            "\n[[plan]]\nname = \"p{p}\"\nfile = \"plans/p{p}.md\"\n"
        ));
    }
    std::fs::write(root.join("plans.toml"), manifest).expect("manifest");
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "bench plans"]);

    let events = root.join("events.jsonl");
    // `ORCH_BENCH_BIN`: another build of orch, to compare.
    let orch =
        std::env::var("ORCH_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_orch").to_string());
    let mut up = Command::new(orch)
        .current_dir(root)
        .args(["up", "--json"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&events).expect("events"))
        .spawn()
        .expect("orch up");
    let pid = up.id();
    let started = Instant::now();
    // The idle window starts once every agent runs.
    let deadline = started + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&events).unwrap_or_default();
        if text.matches("\"task_started\"").count() == plans {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agents did not start:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let window_start = Instant::now();
    let cpu_start = cpu_seconds(pid);
    // ...and ends a second before the agents do.
    let window =
        Duration::from_secs(seconds).saturating_sub(started.elapsed() + Duration::from_secs(1));
    std::thread::sleep(window);
    let cpu_idle = cpu_seconds(pid) - cpu_start;
    let idle = window_start.elapsed().as_secs_f64();
    let status = up.wait().expect("wait");
    assert!(status.success(), "orch up failed");
    let total = started.elapsed().as_secs_f64();
    let finished = std::fs::read_to_string(&events)
        .unwrap_or_default()
        .matches("\"task_finished\"")
        .count();
    assert_eq!(finished, plans, "not every task finished");
    println!("orch up idle cost: {plans} agents sleeping {seconds} s, {plans} slots");
    println!(
        "  CPU of orch while idle: {:.3} s over {idle:.1} s ({:.2} ms per second; target < 0.3 s per 30 s)",
        cpu_idle,
        cpu_idle * 1000.0 / idle
    );
    println!("  scaled to 30 s:         {:.3} s", cpu_idle * 30.0 / idle);
    // Sane: a window was measured, and orch slept through most of it (a tenth of one core at
    // the most, a loose bound for a debug build on a busy machine; the target is 1 %).
    assert!(
        idle > 0.5,
        "no idle window ({idle:.2} s): the agents started too late"
    );
    assert!(
        (0.0..idle * 0.1).contains(&cpu_idle),
        "orch used {cpu_idle:.3} s of CPU in {idle:.1} s while its agents slept"
    );
    println!(
        "  whole run:              {total:.1} s wall, {:.3} s CPU of orch before the end",
        cpu_start + cpu_idle
    );
}
