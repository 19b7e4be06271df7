//! What a running agent costs orch in memory: `orch up` of N plans (`--agents 1,4,8` by
//! default) of one task each, `max_agents` N, whose agent (`sh`) waits for a gate file, so that
//! all N run at once. Once every agent has started (N `task_started` events), the bench reads
//! from `/proc/<pid>/smaps_rollup` the memory of orch's own processes: the supervisor and each
//! agent's wrapper (`orch-exec session-exec`, the subreaper that keeps the agent's processes and its
//! log) — RSS (what `ps` shows: shared pages of orch's executable counted in every process),
//! PSS (shared pages divided among the processes that share them) and private (this process's
//! alone: what one more running agent adds). Then it opens the gate and checks the outcome:
//! `orch up` exits 0, every task completed with its file on its plan branch.
//!
//! The sandbox off (its `orch sandbox-exec` replaces itself with the agent: no process of its
//! own stays) and the network `none` (no proxy). The machine (CPUs, memory) and its load are
//! printed. Run: `cargo bench --bench running`; under `cargo test` one agent, once, so that it
//! cannot rot.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

mod support;
use support::git;

/// Memory of one process, in KiB.
#[derive(Clone, Copy, Default)]
struct Mem {
    rss: u64,
    pss: u64,
    private: u64,
}

fn mem_of(pid: u32) -> Option<Mem> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some(Mem {
        rss: field("Rss:"),
        pss: field("Pss:"),
        private: field("Private_Clean:") + field("Private_Dirty:"),
    })
}

/// The children of `pid` (from `/proc/<pid>/task/*/children`).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

fn setup(dir: &Path, agents: usize, gate: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(dir.join("plans")).expect("mkdir");
    std::fs::write(dir.join(".gitignore"), ".orch/\n").expect("write");
    let mut manifest = format!(
        "[defaults]\nagent = \"w\"\nmax_agents = {agents}\nretries = 0\nsandbox = \"off\"\n\n\
         [agents.w]\ncommand = [\"sh\", \"-c\", \"while [ ! -e '{}' ]; do sleep 0.05; done; echo $ORCH_PLAN > done.txt\"]\n\
         report = \"exit\"\nnetwork = \"none\"\n",
        gate.display()
    );
    for p in 0..agents {
        std::fs::write(
            dir.join(format!("plans/p{p}.md")),
            "# P\n\n## Phase 1: W\n\n- [ ] 1.1 Wait\n",
        )
        .expect("write");
        manifest.push_str(&format!(
            "\n[[plan]]\nname = \"p{p}\"\nfile = \"plans/p{p}.md\"\n"
        ));
    }
    std::fs::write(dir.join("plans.toml"), manifest).expect("write");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "plans"]);
}

/// One run of `agents` agents at once: the supervisor's memory and each wrapper's.
fn run(agents: usize) -> (Mem, Vec<Mem>) {
    let dir = support::scratch("orch-running");
    let gate_dir = support::scratch("orch-running-gate");
    let gate = gate_dir.path().join("open");
    setup(dir.path(), agents, &gate);
    // `ORCH_BENCH_BIN=/path/to/orch` measures another build (e.g. a copy of orch alone, without
    // `orch-exec` beside it: the wrapper is then orch itself).
    let bin = std::env::var_os("ORCH_BENCH_BIN").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_BIN_EXE_orch")),
        Into::into,
    );
    let mut up = Command::new(&bin)
        .args(["up", "--json"])
        .current_dir(dir.path())
        .env("PWD", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("orch up");
    let pid = up.id();
    let mut lines = BufReader::new(up.stdout.take().expect("stdout")).lines();
    let mut started = 0;
    while started < agents {
        let line = lines
            .next()
            .expect("orch up ended before every agent started")
            .expect("read");
        if line.contains("\"event\":\"task_started\"") {
            started += 1;
        }
    }
    // Each wrapper once its agent runs below it (a wrapper just started has not yet touched
    // what it will).
    let wrapper_pids = || -> Vec<u32> {
        children(pid)
            .into_iter()
            .filter(|c| {
                // `orch-exec session-exec …`, or `orch session-exec …` beside no `orch-exec`.
                std::fs::read(format!("/proc/{c}/cmdline"))
                    .is_ok_and(|b| b.windows(12).any(|w| w == b"session-exec"))
            })
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while wrapper_pids().len() < agents || wrapper_pids().iter().any(|w| children(*w).is_empty()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the agents did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let supervisor = mem_of(pid).expect("the supervisor's memory");
    let wrappers: Vec<Mem> = wrapper_pids().into_iter().filter_map(mem_of).collect();
    assert_eq!(wrappers.len(), agents, "one wrapper per running agent");
    std::fs::write(&gate, "").expect("open the gate");
    for _ in lines.by_ref() {}
    let status = up.wait().expect("orch up");
    assert!(status.success(), "orch up failed");
    for p in 0..agents {
        let out = Command::new("git")
            .args(["show", &format!("plan/p{p}:done.txt")])
            .current_dir(dir.path())
            .output()
            .expect("git show");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("p{p}"));
    }
    (supervisor, wrappers)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sizes: Vec<usize> = if support::full_size() {
        args.iter()
            .position(|a| a == "--agents")
            .and_then(|i| args.get(i + 1))
            .map_or(vec![1, 4, 8], |v| {
                v.split(',').filter_map(|n| n.parse().ok()).collect()
            })
    } else {
        vec![1]
    };
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {cpus} CPUs; load average at start: {}",
        load.split_whitespace().next().unwrap_or("?")
    );
    println!(
        "| agents running | supervisor RSS / PSS / private | each wrapper RSS / PSS / private (mean) | all of orch, PSS | all of orch, RSS summed |"
    );
    println!("|---|---|---|---|---|");
    for n in sizes {
        let (s, w) = run(n);
        let mean = |f: fn(&Mem) -> u64| {
            w.iter().map(f).sum::<u64>() as f64 / w.len().max(1) as f64 / 1024.0
        };
        let mib = |k: u64| k as f64 / 1024.0;
        let all = mib(s.pss) + w.iter().map(|m| mib(m.pss)).sum::<f64>();
        let all_rss = mib(s.rss) + w.iter().map(|m| mib(m.rss)).sum::<f64>();
        println!(
            "| {n} | {:.1} / {:.1} / {:.1} MiB | {:.1} / {:.1} / {:.1} MiB | {all:.1} MiB | {all_rss:.1} MiB |",
            mib(s.rss),
            mib(s.pss),
            mib(s.private),
            mean(|m| m.rss),
            mean(|m| m.pss),
            mean(|m| m.private),
        );
    }
}
