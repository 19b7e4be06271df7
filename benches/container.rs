//! What a container plan's service costs at its start: `--plans N` (default 4, `max_agents` 4)
//! container plans of one trivial task each run at once by one `orch up`, each with a
//! PostgreSQL service of its own (`[[service]]`, Debian's package in the local image
//! `localhost/orch-test-postgres`, ready when `pg_isready` says so) against the same plans
//! without it, in fresh repositories, the two alternating over `--runs R` (default 3):
//!
//! - **started**: per plan, orch's start of its services (`podman run -d` of each, all at once),
//!   as the attempt's log says it (`--services K`, default 1: K PostgreSQL services a plan, `db`,
//!   `db2`, …);
//! - **ready after**: per plan, from the attempt's wait for its service starting (its container
//!   just started by `podman run -d`, which returned) to `pg_isready` passing, as the attempt's
//!   `orch service-wait` measured it (its line in the attempt's log);
//! - **wall**: the whole `orch up`, from its start to its end (every plan's container and service
//!   made, the task run and committed, everything removed);
//! - **CPU**: `orch up`'s and everything it waited for (`getrusage(RUSAGE_CHILDREN)`: podman, its
//!   monitors, the containers' processes), so that the difference between the two is what the
//!   services cost this machine.
//!
//! And first, **a container task's overhead over a local one**: one plan of `--tasks T` tasks
//! (default 6, one after the other) with the trivial agent `echo $ORCH_TASK > $ORCH_TASK.txt`,
//! run by `executor = "local"` and by `executor = "container"` (the image above, no service),
//! alternating over the runs: each task's latency (`task_started` → `task_finished` event) for
//! the plan's first task (its container made) and the later ones (an `exec` in it), and orch's
//! own CPU per task (the supervisor's zombie) with that of what it waited for.
//!
//! Each run checks its outcome (every task completed and its file on the plan branch, its agent
//! having asked its database when it has one) and panics otherwise. The machine (CPUs, memory) and its 1-minute load average
//! before and after are printed: the machine may be shared. Network `none` (no proxy: its cost is
//! `benches/network.rs`'), the sandbox off. Run: `cargo bench --bench container`. Under
//! `cargo test` (no `--bench` argument) one plan with its service runs once, so that it cannot
//! rot; without podman or the image it says so and passes, unless `ORCH_REQUIRE_PODMAN` is set.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

mod support;
use support::{children_rusage, git, git_output, median, wait_with_cpu};

const IMAGE: &str = "localhost/orch-test-postgres:latest";

/// Whether podman has [`IMAGE`] (a failure under `ORCH_REQUIRE_PODMAN` when not): the tests'
/// check.
#[path = "../tests/support/podman_image.rs"]
mod podman_image;

/// A repository of `plans` container plans of one task; with `service`, each gets a database
/// its agent asks.
fn setup(dir: &Path, plans: usize, service: usize) {
    git(dir, &["init", "-q", "-b", "main"]);
    let agent = if service > 0 {
        r#"["sh", "-c", "psql -X -h $ORCH_SERVICE_DB_HOST -p $ORCH_SERVICE_DB_PORT -U postgres -tAc 'select 1' > work.txt"]"#
    } else {
        r#"["sh", "-c", "echo 1 > work.txt"]"#
    };
    let mut toml = format!(
        "[defaults]\nmax_agents = 4\nretries = 0\nexecutor = \"container\"\nimage = \"{IMAGE}\"\nagent = \"a\"\n{}\n\
         [agents.a]\ncommand = {agent}\nreport = \"exit\"\nnetwork = \"none\"\n\n",
        if service > 0 {
            format!(
                "services = [{}]\nports = {}\n",
                names(service)
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                service + 1
            )
        } else {
            String::new()
        }
    );
    for n in names(service) {
        toml.push_str(&format!(
            "[[service]]\nname = \"{n}\"\nimage = \"localhost/orch-test-postgres:latest\"\n\
             env = {{ PGPORT = \"${{ORCH_SERVICE_PORT}}\" }}\n\
             ready = [\"pg_isready\", \"-h\", \"127.0.0.1\", \"-U\", \"postgres\", \"-q\"]\n\n",
        ));
    }
    std::fs::create_dir_all(dir.join("docs/plans")).expect("mkdir");
    for i in 0..plans {
        std::fs::write(
            dir.join(format!("docs/plans/p{i}.md")),
            "# P\n\n## Phase 1: W\n- [ ] 1.1 Work\n",
        )
        .expect("plan");
        toml.push_str(&format!(
            "[[plan]]\nname = \"p{i}\"\nfile = \"docs/plans/p{i}.md\"\n\n"
        ));
    }
    std::fs::write(dir.join("plans.toml"), toml).expect("manifest");
    std::fs::write(dir.join(".gitignore"), ".orch/\n").expect("gitignore");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "plans"]);
}

/// The names of `k` services: `db`, `db2`, `db3`, …
fn names(k: usize) -> Vec<String> {
    (1..=k)
        .map(|i| {
            if i == 1 {
                "db".to_string()
            } else {
                format!("db{i}")
            }
        })
        .collect()
}

/// One `orch up`: its wall and CPU seconds, each plan's services' time to ready and its start
/// of them (seconds).
fn up(dir: &Path, plans: usize, service: usize) -> (f64, f64, Vec<f64>, Vec<f64>) {
    let cpu = children_rusage();
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_orch"))
        .arg("up")
        .current_dir(dir)
        .env("ORCH_SANDBOX", "off")
        .stdin(Stdio::null())
        .output()
        .expect("orch up");
    let wall = t.elapsed().as_secs_f64();
    let cpu = children_rusage() - cpu;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "orch up failed\n{said}");
    let mut ready = Vec::new();
    let mut started = Vec::new();
    for i in 0..plans {
        let work = support::git_output(dir, &["show", &format!("plan/p{i}:work.txt")]);
        assert_eq!(work, "1", "p{i}: {said}");
        let log = std::fs::read_to_string(dir.join(format!(".orch/logs/p{i}/1.1.log")))
            .expect("the attempt's log");
        let after = log.lines().find_map(|l| {
            l.split(&format!("service `db` of plan `p{i}` ready after "))
                .nth(1)?
                .split('s')
                .next()?
                .parse::<f64>()
                .ok()
        });
        match (service > 0, after) {
            (true, Some(s)) => ready.push(s),
            (true, None) => panic!("p{i}: no service ready in its log\n{log}"),
            (false, _) => {}
        }
        let start = log.lines().find_map(|l| {
            l.split(&format!("service(s) of plan `p{i}` started at once in "))
                .nth(1)?
                .split('s')
                .next()?
                .parse::<f64>()
                .ok()
        });
        if let (true, Some(s)) = (service > 0, start) {
            started.push(s);
        }
    }
    (wall, cpu, ready, started)
}

/// A repository of one plan of `tasks` tasks, one after the other, with the trivial agent, in a
/// container or here.
fn setup_overhead(dir: &Path, tasks: usize, container: bool) {
    git(dir, &["init", "-q", "-b", "main"]);
    let executor = if container {
        format!("executor = \"container\"\nimage = \"{IMAGE}\"\n")
    } else {
        "executor = \"local\"\n".to_string()
    };
    let toml = format!(
        "[defaults]\nretries = 0\n{executor}agent = \"a\"\n\n\
         [agents.a]\ncommand = [\"sh\", \"-c\", \"echo $ORCH_TASK > $ORCH_TASK.txt\"]\nreport = \"exit\"\nnetwork = \"none\"\n\n\
         [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n"
    );
    let mut plan = "# P\n\n## Phase 1: W\n".to_string();
    for t in 1..=tasks {
        plan.push_str(&format!("- [ ] 1.{t} Write file {t}\n"));
    }
    std::fs::create_dir_all(dir.join("docs/plans")).expect("mkdir");
    std::fs::write(dir.join("docs/plans/p.md"), plan).expect("plan");
    std::fs::write(dir.join("plans.toml"), toml).expect("manifest");
    std::fs::write(dir.join(".gitignore"), ".orch/\n").expect("gitignore");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "plans"]);
}

/// One `orch up --json` of [`setup_overhead`]'s repository: each task's latency in the order
/// they finished (seconds), orch's own CPU and its children's, and its wall (seconds). Checks that every
/// task finished and its file is on the plan branch.
fn up_overhead(dir: &Path, tasks: usize) -> (Vec<f64>, f64, f64, f64) {
    let events_path = dir.join("events.jsonl");
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_orch"))
        .args(["up", "--json"])
        .current_dir(dir)
        .env("PWD", dir)
        .env("ORCH_SANDBOX", "off")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&events_path).expect("events file"))
        .stderr(std::fs::File::create(dir.join("stderr.txt")).expect("stderr file"))
        .spawn()
        .expect("orch up");
    let (cpu, status) = wait_with_cpu(&mut child);
    let wall = t.elapsed().as_secs_f64();
    assert!(
        status.success(),
        "orch up failed: {}",
        std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default()
    );
    let at = |e: &serde_json::Value| {
        let t = chrono::DateTime::parse_from_rfc3339(e["at"].as_str().expect("at")).expect("at");
        t.timestamp_micros() as f64 / 1e6
    };
    let mut started: BTreeMap<String, f64> = BTreeMap::new();
    let mut latencies = Vec::new();
    for line in std::fs::read_to_string(&events_path)
        .expect("events")
        .lines()
    {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let task = e["task"].as_str().unwrap_or_default().to_string();
        match e["event"].as_str() {
            Some("task_started") => {
                started.insert(task, at(&e));
            }
            Some("task_finished") => {
                let s = started.remove(&task).expect("a finished task had started");
                latencies.push(at(&e) - s);
            }
            _ => {}
        }
    }
    assert_eq!(latencies.len(), tasks, "not every task finished");
    let files = git_output(dir, &["ls-tree", "--name-only", "plan/p"]);
    for t in 1..=tasks {
        assert!(
            files.lines().any(|l| l == format!("1.{t}.txt")),
            "task 1.{t} is not on the plan branch"
        );
    }
    (latencies, cpu.own, cpu.children, wall)
}

/// The container's overhead over a local run, printed (see the module's comment).
fn overhead(runs: usize, tasks: usize) {
    // [local, container]: first latencies, later latencies (mean per run), own CPU per task,
    // children's CPU per task.
    let mut first = [Vec::new(), Vec::new()];
    let mut later = [Vec::new(), Vec::new()];
    let mut own = [Vec::new(), Vec::new()];
    let mut waited = [Vec::new(), Vec::new()];
    let mut walls = [Vec::new(), Vec::new()];
    for _ in 0..runs {
        for container in [false, true] {
            let i = usize::from(container);
            let dir = tempfile::tempdir().expect("tempdir");
            setup_overhead(dir.path(), tasks, container);
            let (lat, o, c, w) = up_overhead(dir.path(), tasks);
            walls[i].push(w);
            first[i].push(lat[0]);
            let rest = &lat[1..];
            later[i].push(rest.iter().sum::<f64>() / rest.len().max(1) as f64);
            own[i].push(o / tasks as f64);
            waited[i].push(c / tasks as f64);
        }
    }
    let ms = |v: &mut Vec<f64>| median(v) * 1000.0;
    println!(
        "\none plan of {tasks} tasks, one after the other, sandbox off, network none, {runs} run(s) each, medians:"
    );
    println!(
        "| executor | orch up wall | first task | later tasks (mean) | orch's own CPU per task | CPU of what it waited for, per task |"
    );
    println!("|---|---|---|---|---|---|");
    let mut m = [[0.0; 5]; 2];
    for (i, name) in ["local", "container"].iter().enumerate() {
        m[i] = [
            ms(&mut first[i]),
            ms(&mut later[i]),
            ms(&mut own[i]),
            ms(&mut waited[i]),
            ms(&mut walls[i]),
        ];
        println!(
            "| {name} | {:.0} ms | {:.0} ms | {:.0} ms | {:.1} ms | {:.1} ms |",
            m[i][4], m[i][0], m[i][1], m[i][2], m[i][3]
        );
    }
    println!(
        "container over local: the whole run {:+.0} ms (the container made and removed, the image asked at the start), first task {:+.0} ms, later tasks {:+.0} ms each, orch's own CPU {:+.1} ms per task",
        m[1][4] - m[0][4],
        m[1][0] - m[0][0],
        m[1][1] - m[0][1],
        m[1][2] - m[0][2]
    );
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

/// CPUs and memory of this machine, and its CPU's name.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("?", |m| m.trim_start_matches([' ', '\t', ':']));
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<f64>().ok())
        .map_or(0.0, |k| k / 1024.0 / 1024.0);
    format!("{cpus} CPUs ({model}), {mem:.0} GiB")
}

fn main() {
    if !podman_image::present(IMAGE) {
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let bench = support::full_size();
    let value = |flag: &str, default: usize| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (runs, plans, k) = if bench {
        (
            value("--runs", 3),
            value("--plans", 4),
            value("--services", 1).max(1),
        )
    } else {
        (1, 1, 1)
    };
    println!("machine: {}", machine());
    println!("load average at start: {}", load());
    if bench {
        overhead(value("--runs", 3), value("--tasks", 6).max(2));
    } else {
        overhead(1, 2);
    }
    let kinds: &[bool] = if bench { &[false, true] } else { &[true] };
    let mut walls = vec![Vec::new(); 2];
    let mut cpus = vec![Vec::new(); 2];
    let mut ready = Vec::new();
    let mut started = Vec::new();
    for _ in 0..runs {
        for &service in kinds {
            let dir = tempfile::tempdir().expect("tempdir");
            let service_k = if service { k } else { 0 };
            setup(dir.path(), plans, service_k);
            let (wall, cpu, r, s) = up(dir.path(), plans, service_k);
            walls[usize::from(service)].push(wall);
            cpus[usize::from(service)].push(cpu);
            ready.extend(r);
            started.extend(s);
        }
    }
    println!("\n{plans} container plan(s) of one task at once, {runs} run(s) each, medians:");
    println!("| services | orch up wall | CPU (orch up and what it waited for) |");
    println!("|---|---|---|");
    for &service in kinds {
        let i = usize::from(service);
        println!(
            "| {} | {:.2} s | {:.2} s |",
            if service {
                format!("{k} PostgreSQL each")
            } else {
                "none".to_string()
            },
            median(&mut walls[i]),
            median(&mut cpus[i])
        );
    }
    ready.sort_by(f64::total_cmp);
    let n = ready.len();
    println!(
        "\nservice ready after (from the attempt's wait starting, its container just started, to `pg_isready` passing), {n} services: median {:.2} s, max {:.2} s",
        median(&mut ready.clone()),
        ready.last().copied().unwrap_or(0.0)
    );
    println!(
        "services started (orch's `podman run -d` of a plan's {k}, all at once), {} plans: median {:.2} s, max {:.2} s",
        started.len(),
        median(&mut started.clone()),
        started.iter().copied().fold(0.0, f64::max)
    );
    println!("load average at end: {}", load());
}
