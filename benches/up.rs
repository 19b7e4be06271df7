//! `orch up` overhead: 10 plans × 20 tasks, an agent that exits at once (`true`), 8 agents at a
//! time. Prints the wall time, orch's overhead per task, and the delay between a task being
//! recorded done and the next task of its plan being launched (p50/p99).
//!
//! Run: `cargo bench --bench up` (add `-- --runs 5` for more runs). Targets: overhead under
//! 5 ms per task, launch delay p99 under 50 ms.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

mod support;
use support::git;

const PLANS: usize = 10;
const TASKS: usize = 20;

fn setup(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(dir.join("plans")).expect("mkdir");
    let mut manifest = String::from(
        "[defaults]\nagent = \"instant\"\nmax_agents = 8\n\n[agents.instant]\ncommand = [\"true\"]\n",
    );
    for p in 0..PLANS {
        let mut plan = format!("# Plan {p}\n\n## Phase 1: Work\n");
        for t in 1..=TASKS {
            if t == 1 {
                plan.push_str(&format!("- [ ] 1.{t} Task {t}\n"));
            } else {
                plan.push_str(&format!("- [ ] 1.{t} Task {t} (depends: 1.{})\n", t - 1));
            }
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn parse_at(v: &serde_json::Value) -> f64 {
    let s = v["at"].as_str().expect("at");
    let t = chrono::DateTime::parse_from_rfc3339(s).expect("rfc3339");
    t.timestamp_micros() as f64 / 1000.0
}

/// User + system CPU time of every waited-for child process so far (orch and, through it, its
/// agents), in milliseconds.
fn children_cpu_ms() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let ms = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1000.0 + t.tv_usec() as f64 / 1000.0;
    ms(u.user_time()) + ms(u.system_time())
}

fn main() {
    let runs: usize = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let orch = env!("CARGO_BIN_EXE_orch");
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    let mut delays = Vec::new();
    for run in 0..runs {
        let dir = tempfile::tempdir().expect("tempdir");
        setup(dir.path());
        let before = children_cpu_ms();
        let start = Instant::now();
        let out = Command::new(orch)
            .current_dir(dir.path())
            .args(["up", "--json"])
            .stdin(Stdio::null())
            .output()
            .expect("orch up");
        let wall = start.elapsed().as_secs_f64() * 1000.0;
        cpus.push(children_cpu_ms() - before);
        assert!(
            out.status.success(),
            "orch up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let finished = events
            .iter()
            .filter(|e| e["event"] == "task_finished")
            .count();
        assert_eq!(
            finished,
            PLANS * TASKS,
            "run {run}: not every task finished"
        );
        // For each plan: the launch of task n+1 after task n was recorded done.
        let mut last_done: std::collections::HashMap<String, f64> = Default::default();
        for e in &events {
            let plan = e["plan"].as_str().unwrap_or_default().to_string();
            match e["event"].as_str() {
                Some("task_finished") => {
                    last_done.insert(plan, parse_at(e));
                }
                Some("task_started") => {
                    if let Some(done) = last_done.remove(&plan) {
                        delays.push(parse_at(e) - done);
                    }
                }
                _ => {}
            }
        }
        walls.push(wall);
        println!("run {run}: {wall:.0} ms for {} tasks", PLANS * TASKS);
    }
    walls.sort_by(f64::total_cmp);
    cpus.sort_by(f64::total_cmp);
    delays.sort_by(f64::total_cmp);
    let wall = percentile(&walls, 0.5);
    let tasks = (PLANS * TASKS) as f64;
    println!(
        "orch up, {PLANS} plans x {TASKS} tasks, agent `true`, 8 agents at a time ({runs} runs)"
    );
    println!("  wall time (median):            {wall:.0} ms");
    println!(
        "  overhead per task (wall/tasks): {:.2} ms   (target < 5 ms)",
        wall / tasks
    );
    println!(
        "  CPU per task (orch + agent):    {:.2} ms   (user + system, all processes; less noisy than wall time)",
        percentile(&cpus, 0.5) / tasks
    );
    println!(
        "  launch delay after done:       p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} launches (target p99 < 50 ms)",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.last().copied().unwrap_or(f64::NAN),
        delays.len()
    );
}
