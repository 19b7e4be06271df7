//! Best of N against retries in series: a seeded scripted agent
//! (`tests/fixtures/agents/coin.sh`) whose attempt succeeds with probability p and takes a
//! random time; 20 independent tasks; `attempts = 3` (one round, the first success stops the
//! others) against `attempts = 1, retries = 2` (up to three attempts one after another), at the
//! same `max_agents`. Figures per configuration (over seeds): plan completion (tasks completed
//! ÷ tasks), the wall time of `orch up`, and the attempts spent (`task_started` events: the
//! cost, whatever each attempt's agent charges).
//!
//! Both give a task three chances, so completion is about the same (1 − (1 − p)³ = 78.4 % at
//! p = 0.4, up to the seeds' draws); what differs is how long a failed first attempt costs in
//! wall time, and how many attempts run.
//!
//! Run: `cargo bench --bench best_of` (`-- --seeds 3` sets the seeds, `-- --p 40` the
//! percentage, `-- --tasks 20`, `-- --max-agents 6`: with `attempts = 3` a third as many
//! rounds at once as tasks in series). Without `--bench` (`cargo run --bench`-style smoke runs) it
//! runs 4 tasks once per configuration and checks the outcome. Every run checks its outcome:
//! exit 0 with every task completed (else 5), one commit per completed task.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

mod support;
use support::{git, scratch};

/// `max_agents` unless `-- --max-agents N` says otherwise.
const MAX_AGENTS: usize = 6;
/// The agent's time per attempt, milliseconds.
const MIN_MS: u64 = 300;
const MAX_MS: u64 = 1500;

/// What one run of `orch up` gave.
struct Run {
    completed: usize,
    wall: f64,
    attempts: usize,
}

/// A repository with `tasks` independent tasks run by the coin agent (`seed`, `p` percent) and
/// the plan's best-of-N keys `best`.
fn setup(dir: &Path, tasks: usize, (seed, p, max_agents): (u64, u64, usize), best: &str) {
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join(".gitignore"), ".orch/\n").expect("write");
    let mut plan = String::from("# Coins\n\n## Phase 1: Flips\n");
    for t in 1..=tasks {
        plan.push_str(&format!("- [ ] 1.{t} Flip coin {t}\n"));
    }
    std::fs::write(dir.join("coins.md"), plan).expect("write");
    let coin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents/coin.sh");
    let manifest = format!(
        "[defaults]\nagent = \"coin\"\nmax_agents = {max_agents}\nbackoff = \"0s\"\n\n\
         [agents.coin]\ncommand = [\"{}\", \"{seed}\", \"{p}\", \"{MIN_MS}\", \"{MAX_MS}\"]\n\
         report = \"orch\"\n\n[[plan]]\nname = \"coins\"\nfile = \"coins.md\"\n{best}\n",
        coin.display()
    );
    std::fs::write(dir.join("plans.toml"), manifest).expect("write");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "coins"]);
}

fn run_once(orch: &Path, tasks: usize, coin: (u64, u64, usize), best: &str) -> Run {
    let tmp = scratch("orch-best-of-");
    let dir = tmp.path();
    setup(dir, tasks, coin, best);
    let start = Instant::now();
    let out = Command::new(orch)
        .current_dir(dir)
        .args(["up", "--json"])
        .env("ORCH_SANDBOX", "off")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("orch up");
    let wall = start.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    let count = |event: &str| {
        text.lines()
            .filter(|l| l.contains(&format!("\"event\":\"{event}\"")))
            .count()
    };
    let completed = count("task_finished");
    // Exit 0 when every task completed, 5 when one failed for good.
    let code = out.status.code().unwrap_or(-1);
    assert!(
        (completed == tasks && code == 0) || (completed < tasks && code == 5),
        "exit {code} with {completed}/{tasks} completed:\n{text}"
    );
    // One commit per completed task.
    let commits = support::git_output(dir, &["rev-list", "--count", "main..plan/coins"]);
    assert_eq!(commits, completed.to_string(), "{text}");
    Run {
        completed,
        wall,
        attempts: count("task_started"),
    }
}

fn arg(args: &[String], name: &str) -> Option<u64> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let orch = Path::new(env!("CARGO_BIN_EXE_orch"));
    let max_agents = arg(&args, "--max-agents").map_or(MAX_AGENTS, |n| n as usize);
    let configs = [
        (
            "attempts = 3",
            format!(
                "attempts = 3\nretries = 0\nparallel_tasks = {}",
                (max_agents / 3).max(1)
            ),
        ),
        (
            "attempts = 1, retries = 2",
            format!("retries = 2\nparallel_tasks = {max_agents}"),
        ),
    ];
    if !support::full_size() {
        for (name, best) in &configs {
            let r = run_once(orch, 4, (1, 40, max_agents), best);
            println!(
                "best_of bench smoke test ({name}): {}/4 completed in {:.2} s, {} attempts",
                r.completed, r.wall, r.attempts
            );
        }
        return;
    }
    let seeds = arg(&args, "--seeds").unwrap_or(3);
    let p = arg(&args, "--p").unwrap_or(40);
    let tasks = arg(&args, "--tasks").unwrap_or(20) as usize;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "best of N: {tasks} tasks, p = {p} %, attempt time {MIN_MS}-{MAX_MS} ms, max_agents = {max_agents}, seeds 1..={seeds}; load at start: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<28} {:>6} {:>11} {:>10} {:>9}",
        "configuration", "seed", "completed", "wall (s)", "attempts"
    );
    let mut totals = vec![(0usize, 0f64, 0usize); configs.len()];
    for seed in 1..=seeds {
        // Both configurations on each seed, one after the other: the machine's drift falls on
        // both alike.
        for (i, (name, best)) in configs.iter().enumerate() {
            let r = run_once(orch, tasks, (seed, p, max_agents), best);
            println!(
                "{name:<28} {seed:>6} {:>8}/{tasks} {:>10.2} {:>9}",
                r.completed, r.wall, r.attempts
            );
            totals[i].0 += r.completed;
            totals[i].1 += r.wall;
            totals[i].2 += r.attempts;
        }
    }
    println!("mean over {seeds} seeds:");
    for (i, (name, _)) in configs.iter().enumerate() {
        let (c, w, a) = totals[i];
        let n = seeds as f64;
        println!(
            "{name:<28} completion {:>5.1} %  wall {:>6.2} s  attempts {:>5.1} ({:.2} per task)",
            100.0 * c as f64 / (n * tasks as f64),
            w / n,
            a as f64 / n,
            a as f64 / (n * tasks as f64)
        );
    }
}
