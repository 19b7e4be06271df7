//! `orch up`'s cost per task as the run grows: a trivial agent that only reports
//! through `orch task done`, at 200, 1,000, 2,000 and 5,000 tasks.
//!
//! Workload per size: 4 plans of size / 4 tasks (50, 250, 500, 1,250), in phases of 10 tasks
//! (`## Phase N: …`, tasks `N.1` … `N.10`); from phase 2 on, tasks `N.3`, `N.6` and `N.9` carry
//! `(depends: N-1.M)` (they wait for that one task, not for the whole previous phase, as in
//! real plans). `parallel = 2` in every plan, `max_agents = 8`. The agent's argv is
//! `["{{ orch }}", "task", "done", "{{ task }}"]`: no shell, so every process of the run is
//! orch itself (the supervisor, and one `orch task done` per task). Each size runs in a fresh
//! git repository made with the git CLI in a temp directory; the bench runs the real
//! `orch up --json` as a whole process.
//!
//! Figures per size (median over the runs):
//! - wall time of `orch up`, and wall per task;
//! - orch's CPU per task: user + system of `orch up` and everything it waited for, i.e. the
//!   supervisor and every agent's `orch task done` (`getrusage(RUSAGE_CHILDREN)` around
//!   `orch up`);
//! - split: the supervisor's own CPU (its zombie's `/proc/<pid>/stat` utime + stime, read after
//!   `waitid(WNOWAIT)`) and the agents' (its cutime + cstime), per task;
//! - the 1-minute load average when the run started (the machine may be shared; CPU time is
//!   steadier than wall time).
//!
//! Then the ratio per task at the largest size ÷ per task at the smallest, for wall and CPU, and
//! the targets as PASS/FAIL: ratio ≤ 1.3 (wall and CPU), orch's CPU per task < 5 ms.
//!
//! Every run checks its outcome and panics otherwise: `orch up` exits 0, one `task_finished`
//! event per task and no `task_failed` (the agent always reports), every task `completed` in the
//! plans' status files, and one commit per task on each plan branch (`git rev-list --count
//! main..plan/pN`).
//!
//! Run: `cargo bench --bench up` (all four sizes; `-- --sizes 200,1000` picks sizes, `-- --runs N`
//! sets the runs per size: by default 3 up to 1,000 tasks and 1 above, since the large sizes
//! take longer: on the code of 2026-11-23 evening, on a loaded 2-core machine, 5,000 tasks took
//! 20 s, against 21 min in the morning). The sizes are run round by round (each once per
//! round), so that the machine's drift over minutes falls on every size alike. Without `--bench` in its arguments (under `cargo test`, which builds this
//! bench because of `test = true`) it runs one tiny size, 2 plans × 20 tasks, and checks the
//! outcome, so the bench cannot rot. `-- --make-workspace TASKS` only makes the repository of a
//! size (4 plans) and prints its path, for profiling one `orch up` by hand.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

mod support;
use support::{children_rusage, git, git_output, wait_with_cpu};

/// Plans per run at the bench's sizes.
const PLANS: usize = 4;
/// Tasks per phase.
const PHASE: usize = 10;
const MAX_AGENTS: usize = 8;
const PARALLEL: usize = 2;
const SIZES: [usize; 4] = [200, 1_000, 2_000, 5_000];

/// Writes the plans and the manifest, commits them on `main`.
fn setup(dir: &Path, plans: usize, tasks: usize) {
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(dir.join("plans")).expect("mkdir");
    std::fs::write(dir.join(".gitignore"), ".orch/\n").expect("write");
    let mut manifest = format!(
        "[defaults]\nagent = \"reporter\"\nmax_agents = {MAX_AGENTS}\nparallel = {PARALLEL}\n\n\
         [agents.reporter]\ncommand = [\"{{{{ orch }}}}\", \"task\", \"done\", \"{{{{ task }}}}\"]\n"
    );
    for p in 0..plans {
        std::fs::write(dir.join(format!("plans/p{p}.md")), plan_text(p, tasks)).expect("write");
        manifest.push_str(&format!(
            "\n[[plan]]\nname = \"p{p}\"\nfile = \"plans/p{p}.md\"\n"
        ));
    }
    std::fs::write(dir.join("plans.toml"), manifest).expect("write");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "bench plans"]);
}

/// A plan of `tasks` tasks in phases of [`PHASE`].
fn plan_text(p: usize, tasks: usize) -> String {
    let mut plan = format!("# Plan {p}\n\nA generated plan for the `orch up` bench.\n");
    for i in 0..tasks {
        let (n, m) = (i / PHASE + 1, i % PHASE + 1);
        if m == 1 {
            plan.push_str(&format!("\n## Phase {n}: Step {n}\n\n"));
        }
        plan.push_str(&format!("- [ ] {n}.{m} Do part {m} of step {n}"));
        if n > 1 && m % 3 == 0 {
            plan.push_str(&format!(" (depends: {}.{m})", n - 1));
        }
        plan.push('\n');
    }
    plan
}

/// The figures of one run, in seconds.
struct Run {
    wall: f64,
    /// `orch up` and all it waited for.
    cpu: f64,
    /// The supervisor alone.
    supervisor: f64,
    /// What the supervisor waited for: the agents' `orch task done`.
    agents: f64,
    load: f64,
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Runs `orch up --json` once on `plans` × `tasks` and checks that every task completed.
fn run_once(orch: &Path, plans: usize, tasks: usize) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    setup(root, plans, tasks);
    let events_path = root.join("events.jsonl");
    let stderr_path = root.join("stderr.txt");
    let load = load_average();
    let rusage_before = children_rusage();
    let start = Instant::now();
    let mut up = Command::new(orch)
        .current_dir(root)
        .args(["up", "--json"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&events_path).expect("events file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("orch up");
    let (cpu, status) = wait_with_cpu(&mut up);
    let wall = start.elapsed().as_secs_f64();
    let all = children_rusage() - rusage_before;
    assert!(
        status.success(),
        "orch up failed ({status}): {}",
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    check_outcome(root, &events_path, plans, tasks);
    Run {
        wall,
        cpu: all,
        supervisor: cpu.own,
        agents: cpu.children,
        load,
    }
}

/// Panics unless every task finished: events, status files, one commit per task per branch.
fn check_outcome(root: &Path, events_path: &Path, plans: usize, tasks: usize) {
    let events: Vec<serde_json::Value> = std::fs::read_to_string(events_path)
        .expect("events")
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let finished = events
        .iter()
        .filter(|e| e["event"] == "task_finished")
        .count();
    // The agent always reports: a failed attempt is orch's doing (an agent killed by the orphan
    // sweep as it started was, 137 and a 5 s retry).
    let failed: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "task_failed")
        .collect();
    assert!(failed.is_empty(), "failed attempts: {failed:?}");
    assert_eq!(
        finished,
        plans * tasks,
        "task_finished events: {finished} of {}",
        plans * tasks
    );
    for p in 0..plans {
        let path = root.join(format!(".orch/state/p{p}/status.json"));
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("status file"))
                .expect("status JSON");
        let list = doc["tasks"].as_array().expect("tasks array");
        let completed = list.iter().filter(|t| t["status"] == "completed").count();
        assert_eq!(list.len(), tasks, "p{p}: tasks in {}", path.display());
        assert_eq!(
            completed,
            tasks,
            "p{p}: {completed} of {tasks} tasks completed in {}",
            path.display()
        );
        let commits: usize =
            git_output(root, &["rev-list", "--count", &format!("main..plan/p{p}")])
                .parse()
                .expect("commit count");
        assert_eq!(
            commits, tasks,
            "p{p}: {commits} commits on plan/p{p}, expected one per task ({tasks})"
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The medians of one size's runs, per task, in milliseconds.
struct Row {
    size: usize,
    runs: usize,
    wall: f64,
    wall_per_task: f64,
    cpu_per_task: f64,
    supervisor_per_task: f64,
    agents_per_task: f64,
    load: f64,
}

/// Runs `orch up` `runs[i]` times at each size `sizes[i]`, round by round (each size once per
/// round, smallest first), so that the machine's drift over minutes falls on every size alike.
fn measure(orch: &Path, sizes: &[usize], runs: &[usize]) -> Vec<Row> {
    let mut all: Vec<Vec<Run>> = sizes.iter().map(|_| Vec::new()).collect();
    let rounds = runs.iter().copied().max().unwrap_or(0);
    for round in 0..rounds {
        for (i, &size) in sizes.iter().enumerate() {
            if round >= runs[i] {
                continue;
            }
            let run = run_once(orch, PLANS, size / PLANS);
            let ms = |s: f64| s * 1000.0 / size as f64;
            println!(
                "{size} tasks, run {}/{}: wall {:.1} s = {:.2} ms/task; CPU {:.2} ms/task \
                 (supervisor {:.2}, agents {:.2}); load {:.2}",
                round + 1,
                runs[i],
                run.wall,
                ms(run.wall),
                ms(run.cpu),
                ms(run.supervisor),
                ms(run.agents),
                run.load
            );
            all[i].push(run);
        }
    }
    sizes
        .iter()
        .zip(all)
        .map(|(&size, all)| {
            let per_task =
                |f: fn(&Run) -> f64| median(all.iter().map(f).collect()) * 1000.0 / size as f64;
            Row {
                size,
                runs: all.len(),
                wall: median(all.iter().map(|r| r.wall).collect()),
                wall_per_task: per_task(|r| r.wall),
                cpu_per_task: per_task(|r| r.cpu),
                supervisor_per_task: per_task(|r| r.supervisor),
                agents_per_task: per_task(|r| r.agents),
                load: median(all.iter().map(|r| r.load).collect()),
            }
        })
        .collect()
}

/// The value following `flag` in the arguments.
fn arg(args: &[String], flag: &str) -> Option<String> {
    args.iter().skip_while(|a| *a != flag).nth(1).cloned()
}

fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `ORCH_BENCH_BIN=/path/to/orch` measures another build (e.g. the one before a change).
    let bin = std::env::var_os("ORCH_BENCH_BIN");
    let orch = bin
        .as_deref()
        .map_or(Path::new(env!("CARGO_BIN_EXE_orch")), Path::new);
    if let Some(tasks) = arg(&args, "--make-workspace") {
        // For profiling one run: make the repository of a size and print where it is.
        let tasks: usize = tasks.parse().expect("--make-workspace TASKS");
        let dir = tempfile::tempdir().expect("tempdir").keep();
        setup(&dir, PLANS, tasks / PLANS);
        println!("{}", dir.display());
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        // Under `cargo test`: one tiny size, outcome checked by run_once.
        let (plans, tasks) = (2, 20);
        let run = run_once(orch, plans, tasks);
        println!(
            "up bench smoke test: {plans} plans x {tasks} tasks completed, one commit each, \
             in {:.2} s (run `cargo bench --bench up` for the figures)",
            run.wall
        );
        return;
    }
    let sizes: Vec<usize> = match arg(&args, "--sizes") {
        Some(s) => s
            .split(',')
            .map(|n| {
                n.trim()
                    .replace('_', "")
                    .parse()
                    .expect("--sizes 200,1000,...")
            })
            .collect(),
        None => SIZES.to_vec(),
    };
    for &s in &sizes {
        assert!(
            s >= PLANS * PHASE && s % (PLANS * PHASE) == 0,
            "a size must be a multiple of {}",
            PLANS * PHASE
        );
    }
    let runs: Option<usize> = arg(&args, "--runs").map(|n| n.parse().expect("--runs N"));
    println!(
        "orch up: {PLANS} plans, phases of {PHASE} tasks, parallel = {PARALLEL}, \
         max_agents = {MAX_AGENTS}, agent `orch task done {{{{ task }}}}` (no shell), {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // Where the repositories are made matters: on ext4 without a journal (this project's CI
    // machine) every file created scans the inodes deleted in the last seconds.
    let tmp = std::env::temp_dir();
    let fs_type = Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(&tmp)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "repositories under {} (file system: {fs_type}; set TMPDIR to measure elsewhere)",
        tmp.display()
    );
    let runs: Vec<usize> = sizes
        .iter()
        .map(|&size| runs.unwrap_or(if size <= 1_000 { 3 } else { 1 }))
        .collect();
    let rows = measure(orch, &sizes, &runs);

    println!();
    println!(
        "| tasks | runs | wall | wall/task | orch CPU/task | supervisor CPU/task | agents' `task done` CPU/task | load (1 min) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} s | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} |",
            r.size,
            r.runs,
            r.wall,
            r.wall_per_task,
            r.cpu_per_task,
            r.supervisor_per_task,
            r.agents_per_task,
            r.load
        );
    }
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return;
    };
    let wall_ratio = last.wall_per_task / first.wall_per_task;
    let cpu_ratio = last.cpu_per_task / first.cpu_per_task;
    println!();
    if rows.len() > 1 {
        println!(
            "per task at {} / per task at {}: wall x{wall_ratio:.2}, CPU x{cpu_ratio:.2} \
             (supervisor x{:.2}, agents x{:.2})",
            last.size,
            first.size,
            last.supervisor_per_task / first.supervisor_per_task,
            last.agents_per_task / first.agents_per_task
        );
        println!(
            "  {}: wall per task at {} at most 1.3 x per task at {}",
            pass(wall_ratio <= 1.3),
            last.size,
            first.size
        );
        println!(
            "  {}: CPU per task at {} at most 1.3 x per task at {}",
            pass(cpu_ratio <= 1.3),
            last.size,
            first.size
        );
    }
    let worst = rows.iter().map(|r| r.cpu_per_task).fold(0.0, f64::max);
    println!(
        "  {}: orch's CPU per task under 5 ms at every size (worst {worst:.2} ms)",
        pass(worst < 5.0)
    );
}
