//! Real processes against the simulator: 10 plans × 20 tasks whose agents sleep 50–500 ms, 8
//! agents at a time. The same workload goes through `orch simulate` (the scheduler on a virtual
//! clock, no processes) and through `orch up` (real agents, worktrees, commits); the ratio of
//! the measured wall time to the simulated makespan is orch's real-world overhead on top of its
//! schedule. Target: at most 1.1.
//!
//! The durations are written as `(est: Ns)` with N from 1 to 10 s (seeded); the agents sleep
//! N ÷ 20 seconds, and the simulated makespan is divided by the same factor.
//!
//! Run: `cargo bench --bench wall` (`-- --runs N`, default 3). `cargo test` runs a tiny size
//! (3 plans × 4 tasks, 2 slots, one run) and checks its figures are sane.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

mod support;
use support::{full_size, git};

/// Plans, tasks per plan and slots: the bench's under `cargo bench`; a tiny run under
/// `cargo test`, which checks every task ran and the ratio is sane.
struct Size {
    plans: usize,
    tasks: usize,
    slots: usize,
}

const FULL: Size = Size {
    plans: 10,
    tasks: 20,
    slots: 8,
};
const TINY: Size = Size {
    plans: 3,
    tasks: 4,
    slots: 2,
};
/// Agents sleep their estimate divided by this.
const SCALE: f64 = 20.0;

/// xorshift64*: the same durations for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Plans of two phases of 10 tasks (phase 2 waits for phase 1); every third plan's phase 2
/// waits for phase 1 of the plan before it. Returns the total of the durations (seconds).
fn setup(dir: &Path, seed: u64, size: &Size) -> u64 {
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(dir.join("plans")).expect("mkdir");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents");
    let durations = dir.join("durations.txt");
    let mut manifest = format!(
        "[defaults]\nagent = \"sleeper\"\nmax_agents = {}\nretries = 0\n\n\
         [agents.sleeper]\ncommand = [\"sh\", {:?}, {:?}, \"{SCALE}\"]\n",
        size.slots,
        fixtures.join("sleep_scaled.sh").display().to_string(),
        durations.display().to_string(),
    );
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut table = String::new();
    let mut total = 0;
    for p in 0..size.plans {
        let mut plan = format!("# Plan {p}\n");
        for t in 1..=size.tasks {
            let phase = if t <= size.tasks / 2 { 1 } else { 2 };
            if t == 1 || t == size.tasks / 2 + 1 {
                let _ = write!(plan, "\n## Phase {phase}: Part {phase}\n");
            }
            let secs = 1 + rng.next() % 10;
            total += secs;
            let _ = writeln!(plan, "- [ ] {phase}.{t} Task {t} (est: {secs}s)");
            let _ = writeln!(table, "p{p} {phase}.{t} {secs}");
        }
        std::fs::write(dir.join(format!("plans/p{p}.md")), plan).expect("plan");
        let _ = write!(
            manifest,
            "\n[[plan]]\nname = \"p{p}\"\nfile = \"plans/p{p}.md\"\n"
        );
        if p % 3 == 2 {
            let _ = writeln!(manifest, "depends_on = [\"p{}:1\"]", p - 1);
        }
    }
    std::fs::write(&durations, table).expect("durations");
    std::fs::write(dir.join("plans.toml"), manifest).expect("manifest");
    std::fs::write(dir.join(".gitignore"), "durations.txt\n").expect("gitignore");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "bench plans"]);
    total
}

fn main() {
    let full = full_size();
    let size = if full { &FULL } else { &TINY };
    let runs: u64 = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(if full { 3 } else { 1 });
    let orch = env!("CARGO_BIN_EXE_orch");
    println!(
        "orch up vs orch simulate: {} plans x {} tasks, agents sleep 50-500 ms, {} slots",
        size.plans, size.tasks, size.slots
    );
    let mut ratios = Vec::new();
    for run in 0..runs {
        let dir = tempfile::tempdir().expect("tempdir");
        let total = setup(dir.path(), 7 + run, size);
        let sim = Command::new(orch)
            .current_dir(dir.path())
            .args([
                "simulate",
                "--json",
                "--policy",
                "orch",
                "--slots",
                &size.slots.to_string(),
            ])
            .stdin(Stdio::null())
            .output()
            .expect("orch simulate");
        assert!(
            sim.status.success(),
            "orch simulate failed: {}",
            String::from_utf8_lossy(&sim.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&sim.stdout).expect("simulate json");
        let makespan = doc["runs"][0]["makespan_s"].as_f64().expect("makespan_s") / SCALE;
        let bound = doc["runs"][0]["lower_bound_s"]
            .as_f64()
            .expect("lower_bound_s")
            / SCALE;
        let start = Instant::now();
        let out = Command::new(orch)
            .current_dir(dir.path())
            .args(["up", "--json"])
            .stdin(Stdio::null())
            .output()
            .expect("orch up");
        let wall = start.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "orch up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let finished = String::from_utf8_lossy(&out.stdout)
            .matches("\"task_finished\"")
            .count();
        assert_eq!(
            finished,
            size.plans * size.tasks,
            "run {run}: not every task finished"
        );
        let ratio = wall / makespan;
        // Sane: real agents really slept (no run beats the lower bound), the simulator agrees
        // it is a bound, and orch's overhead is not out of all proportion.
        assert!(
            bound <= makespan && bound * 0.95 <= wall,
            "run {run}: lower bound {bound:.2} s, simulated {makespan:.2} s, measured {wall:.2} s"
        );
        assert!(
            ratio < 10.0,
            "run {run}: measured {wall:.2} s for a simulated {makespan:.2} s"
        );
        ratios.push(ratio);
        println!(
            "  run {run}: work {:.1} s, lower bound {bound:.2} s, simulated {makespan:.2} s, measured {wall:.2} s: {ratio:.3}x",
            total as f64 / SCALE
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "  measured / simulated: median {:.3}, worst {:.3} (target <= 1.1)",
        ratios[ratios.len() / 2],
        ratios[ratios.len() - 1]
    );
}
