//! `orch up` through the local executor and through Slurm: the same 200 trivial tasks
//! (10 plans × 20 independent tasks in one phase, one agent per plan, `max_agents = 8`), once
//! with `executor = "local"` and once per `[slurm] poll` setting with `executor = "slurm"`
//! (every agent run is one `sbatch` job). The agent is `sh -c 'echo $ORCH_TASK > $ORCH_TASK.txt'`:
//! it writes one file in the worktree, which orch commits.
//!
//! Figures, per run:
//! - wall time of `orch up`;
//! - per-task overhead = wall × max_agents / tasks − the agent's own run time (the agent run
//!   directly, outside orch, averaged over 20 runs: about a millisecond). With zero overhead the
//!   run would take tasks × agent time / max_agents, so this is the time each slot spends per
//!   task on something other than the agent. It is an upper bound: at the end of the run fewer
//!   than 8 plans may have tasks left, and those idle slots count as overhead too;
//! - orch's own CPU time (user + system of the `orch up` process, all its threads), and the CPU
//!   time of the processes it waited for (local: the agents; Slurm: `sbatch`, `squeue`,
//!   `scontrol`; orch runs no `git` process, it uses libgit2), both
//!   per task. Measured exactly at exit: the bench waits for `orch up` to exit without reaping it
//!   (`waitid(…, WEXITED | WNOWAIT)`), reads fields 14–17 (utime, stime, cutime, cstime) of the
//!   zombie's `/proc/<pid>/stat`, then reaps it. `getrusage(RUSAGE_CHILDREN)` after reaping gives
//!   the sum of both and is printed as a cross-check. Slurm jobs are not orch's descendants
//!   (slurmd starts them), so for Slurm the agents' CPU is in neither figure;
//! - wall / tasks, as in `benches/up.rs`;
//! - mean task latency as orch records it (`task_started` → `task_finished` event), the mean gap
//!   between a task's `task_finished` and the next `task_started` of its plan, and the mean
//!   number of tasks in flight (sum of latencies / wall);
//! - for Slurm: the jobs Slurm lists for this repository (`squeue --states=all`, filtered by the
//!   repository path in orch's `--comment` tag), their final states, and the mean time from
//!   submission to start and from start to end as Slurm reports them (1 s resolution).
//!
//! Every run checks that all 200 tasks finished (`task_finished` events of `orch up --json`) and,
//! for Slurm, that every task ran as its own job and every job COMPLETED. Without a Slurm cluster
//! (`sinfo` fails or shows no usable node) only the local run happens, and the bench says so.
//!
//! Run: `cargo bench --bench slurm` (`-- --polls 1s,5s` picks the `[slurm] poll` settings,
//! `-- --polls none` skips Slurm). `cargo test` runs a tiny size only with `ORCH_REQUIRE_SLURM`
//! set (CI), against the cluster it then requires.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

mod support;
use support::{children_rusage, full_size, git, wait_with_cpu};

/// Plans, tasks per plan and `max_agents`: the bench's under `cargo bench`; a tiny run under
/// `cargo test` (2 plans × 2 tasks, 2 slots, `poll = "1s"`), which needs a cluster: it is skipped
/// unless `ORCH_REQUIRE_SLURM` is set, and then a missing cluster fails it.
struct Size {
    plans: usize,
    tasks: usize,
    slots: usize,
}

fn size() -> &'static Size {
    static SIZE: OnceLock<Size> = OnceLock::new();
    SIZE.get_or_init(|| {
        if full_size() {
            Size {
                plans: 10,
                tasks: 20,
                slots: 8,
            }
        } else {
            Size {
                plans: 2,
                tasks: 2,
                slots: 2,
            }
        }
    })
}
const AGENT: &str = "echo $ORCH_TASK > $ORCH_TASK.txt";

fn setup(dir: &Path, executor: &str, poll: Option<&str>) {
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(dir.join("plans")).expect("mkdir");
    let mut manifest = format!(
        "[defaults]\nagent = \"writer\"\nmax_agents = {}\nexecutor = \"{executor}\"\n{network}\n\
         [agents.writer]\ncommand = [\"sh\", \"-c\", \"{AGENT}\"]\n",
        size().slots,
        // A job's network is not confined: orch runs one only when the lead says so.
        network = if executor == "slurm" {
            "network = \"open\"\n"
        } else {
            ""
        },
    );
    if let Some(poll) = poll {
        manifest.push_str(&format!("\n[slurm]\npoll = \"{poll}\"\n"));
    }
    for p in 0..size().plans {
        let mut plan = format!("# Plan {p}\n\n## Phase 1: Work\n");
        for t in 1..=size().tasks {
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

/// Mean wall time of the agent run directly (no orch), in seconds.
fn agent_time() -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 20;
    let start = Instant::now();
    for i in 0..n {
        let ok = Command::new("sh")
            .args(["-c", AGENT])
            .env("ORCH_TASK", format!("1.{i}"))
            .current_dir(dir.path())
            .status()
            .expect("agent")
            .success();
        assert!(ok, "the agent failed on its own");
    }
    start.elapsed().as_secs_f64() / f64::from(n)
}

/// Whether a Slurm cluster answers with a usable node.
fn cluster() -> bool {
    Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| ["idle", "mix", "alloc"].iter().any(|s| l.starts_with(s)))
        })
}

/// Slurm's view of one job.
struct Job {
    state: String,
    /// Submission to start, start to end, in seconds (1 s resolution).
    queued: Option<f64>,
    ran: Option<f64>,
}

fn slurm_time(s: &str) -> Option<chrono::NaiveDateTime> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok()
}

/// The jobs Slurm lists whose comment (orch's tag) names a path under `root`, by id.
fn jobs_under(root: &Path) -> BTreeMap<String, Job> {
    let out = Command::new("squeue")
        .args(["-h", "--states=all", "-o", "%i|%T|%V|%S|%e|%k"])
        .output()
        .expect("squeue");
    assert!(out.status.success(), "squeue: {out:?}");
    let root = root.display().to_string();
    let secs = |a: Option<chrono::NaiveDateTime>, b: Option<chrono::NaiveDateTime>| {
        Some((b? - a?).num_milliseconds() as f64 / 1000.0)
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(6, '|').collect();
            if f.len() < 6 || !f[5].contains(&root) {
                return None;
            }
            let (submit, start, end) = (slurm_time(f[2]), slurm_time(f[3]), slurm_time(f[4]));
            Some((
                f[0].to_string(),
                Job {
                    state: f[1].to_string(),
                    queued: secs(submit, start),
                    ran: secs(start, end),
                },
            ))
        })
        .collect()
}

fn parse_at(v: &serde_json::Value) -> f64 {
    let s = v["at"].as_str().expect("at");
    let t = chrono::DateTime::parse_from_rfc3339(s).expect("rfc3339");
    t.timestamp_micros() as f64 / 1e6
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// One `orch up` run; prints its figures.
fn run(orch: &Path, agent: f64, executor: &str, poll: Option<&str>) {
    // On the disk of the checkout (the target's own temporary directory): orch refuses a
    // repository on a tmpfs for Slurm, and the tests' TMPDIR may be one (CI's is).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let root = dir.path();
    setup(root, executor, poll);
    let &Size {
        plans: n_plans,
        tasks: n_tasks,
        slots,
    } = size();
    let tasks = n_plans * n_tasks;
    let events_path = root.join("events.jsonl");
    let rusage_before = children_rusage();
    let start = Instant::now();
    let mut up = Command::new(orch)
        .current_dir(root)
        .args(["up", "--json"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&events_path).expect("events file"))
        .stderr(std::fs::File::create(root.join("stderr.txt")).expect("stderr file"))
        .spawn()
        .expect("orch up");
    let (cpu, status) = wait_with_cpu(&mut up);
    let ok = status.success();
    let wall = start.elapsed().as_secs_f64();
    let rusage = children_rusage() - rusage_before;
    assert!(
        ok,
        "orch up failed: {}",
        std::fs::read_to_string(root.join("stderr.txt")).unwrap_or_default()
    );
    let events: Vec<serde_json::Value> = std::fs::read_to_string(&events_path)
        .expect("events")
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let finished = events
        .iter()
        .filter(|e| e["event"] == "task_finished")
        .count();
    assert_eq!(finished, tasks, "not every task finished");
    let mut started_at: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut job_ids = BTreeSet::new();
    let mut last_done: BTreeMap<String, f64> = BTreeMap::new();
    let mut gaps = Vec::new();
    for e in &events {
        let key = (
            e["plan"].as_str().unwrap_or_default().to_string(),
            e["task"].as_str().unwrap_or_default().to_string(),
        );
        match e["event"].as_str() {
            Some("task_started") => {
                if let Some(id) = e["job_id"].as_str() {
                    job_ids.insert(id.to_string());
                }
                if let Some(done) = last_done.remove(&key.0) {
                    gaps.push(parse_at(e) - done);
                }
                started_at.insert(key, parse_at(e));
            }
            Some("task_finished") => {
                last_done.insert(key.0.clone(), parse_at(e));
                if let Some(s) = started_at.remove(&key) {
                    latencies.push(parse_at(e) - s);
                }
            }
            _ => {}
        }
    }

    let label = match poll {
        Some(p) => format!("{executor}, poll = \"{p}\""),
        None => executor.to_string(),
    };
    let per_task = wall * slots as f64 / tasks as f64 - agent;
    println!("{label}: {n_plans} plans x {n_tasks} tasks = {tasks}, max_agents = {slots}");
    println!("  tasks finished:                 {finished}/{tasks}");
    println!("  wall time:                      {wall:.2} s");
    println!(
        "  per-task overhead:              {:.1} ms   (wall x {slots} / {tasks} - agent {:.1} ms)",
        per_task * 1000.0,
        agent * 1000.0
    );
    println!(
        "  wall / tasks:                   {:.1} ms",
        wall * 1000.0 / tasks as f64
    );
    println!(
        "  task latency (task_started -> task_finished event): mean {:.1} ms",
        mean(&latencies) * 1000.0
    );
    println!(
        "  launch gap (task_finished -> next task_started of the plan): mean {:.1} ms",
        mean(&gaps) * 1000.0
    );
    println!(
        "  mean tasks in flight (sum of latencies / wall): {:.2} of {slots}",
        latencies.iter().sum::<f64>() / wall
    );
    println!(
        "  orch CPU (user+sys, own):       {:.2} s = {:.1} ms per task",
        cpu.own,
        cpu.own * 1000.0 / tasks as f64
    );
    println!(
        "  CPU of what orch waited for:    {:.2} s = {:.1} ms per task   (local: the agents; slurm: sbatch, squeue, scontrol)",
        cpu.children,
        cpu.children * 1000.0 / tasks as f64
    );
    println!(
        "  cross-check, getrusage(RUSAGE_CHILDREN): {rusage:.2} s (own + waited-for = {:.2} s)",
        cpu.own + cpu.children
    );
    if executor == "slurm" {
        let jobs = jobs_under(root);
        let mut states: BTreeMap<&str, usize> = BTreeMap::new();
        for j in jobs.values() {
            *states.entry(j.state.as_str()).or_default() += 1;
        }
        let queued: Vec<f64> = jobs.values().filter_map(|j| j.queued).collect();
        let ran: Vec<f64> = jobs.values().filter_map(|j| j.ran).collect();
        println!(
            "  Slurm jobs for this repo (squeue): {} {states:?}; job ids in task_started events: {}",
            jobs.len(),
            job_ids.len()
        );
        println!(
            "  Slurm's times per job (1 s resolution): submit->start mean {:.2} s, start->end mean {:.2} s",
            mean(&queued),
            mean(&ran)
        );
        assert_eq!(job_ids.len(), tasks, "one job per task");
        assert_eq!(jobs.len(), tasks, "Slurm lists one job per task");
        assert!(
            jobs.values().all(|j| j.state == "COMPLETED"),
            "not every job completed: {states:?}"
        );
    }
}

fn main() {
    let full = full_size();
    let required = std::env::var_os("ORCH_REQUIRE_SLURM").is_some();
    if !full && !required {
        println!(
            "slurm bench, tiny run: skipped (it needs a Slurm cluster; ORCH_REQUIRE_SLURM=1 runs it)"
        );
        return;
    }
    if !full {
        assert!(
            cluster(),
            "ORCH_REQUIRE_SLURM is set but no Slurm cluster answers (`.ci/slurm start`)"
        );
    }
    let polls: Vec<String> = std::env::args()
        .skip_while(|a| a != "--polls")
        .nth(1)
        .unwrap_or_else(|| if full { "1s,5s" } else { "1s" }.to_string())
        .split(',')
        .filter(|p| !p.is_empty() && *p != "none")
        .map(str::to_string)
        .collect();
    let orch = Path::new(env!("CARGO_BIN_EXE_orch"));
    let agent = agent_time();
    run(orch, agent, "local", None);
    if polls.is_empty() {
        println!("slurm: skipped (--polls none)");
    } else if !cluster() {
        println!(
            "slurm: skipped, no Slurm cluster answers (`sinfo`; `.ci/slurm start` starts one)"
        );
    } else {
        for poll in &polls {
            run(orch, agent, "slurm", Some(poll));
        }
    }
}
