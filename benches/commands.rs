//! The agents' commands as whole processes on large plans with status files: `orch next`,
//! `orch status`, `orch task done` and `orch check`, timed with their peak memory and output size.
//!
//! Run: `cargo bench --bench commands` (1,000, 2,000, 10,000 and 50,000 tasks; `orch --version`
//! for the cost of starting a process; 4-plan manifests of 50-task and 1,250-task plans for `task
//! done` under `orch up`'s environment; a 20-plan, 10,000-task manifest for `orch check`). Under `cargo test` it runs a 200-task plan once per command and
//! checks the outputs, so the bench cannot rot.
//!
//! Plans are generated in the real grammar: phases of 100 tasks (50 for the 1,250-task plans),
//! every fifth task of a phase after the first depending on two tasks of the previous phase, a
//! VERIFY block per phase. The status file has the first half of the phases done (tasks and
//! verification steps completed, with times, notes and commits), the rest pending.
//!
//! Each measured command runs under a child of this bench (this executable again, with
//! `--measure-child`), which spawns `orch`, waits for it and reports `getrusage(RUSAGE_CHILDREN)`:
//! wall time, user + system CPU and peak RSS of that one `orch` process, and its output bytes.

use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use orch::status::{StatusDoc, TaskStatus, refresh_derived, timestamp};

const ORCH: &str = env!("CARGO_BIN_EXE_orch");

/// A generated plan: `phases` phases of `per_phase` tasks.
fn plan_text(title: &str, phases: usize, per_phase: usize) -> String {
    let mut s = format!("# {title}\n\nA generated plan.\n\n");
    for p in 1..=phases {
        let _ = writeln!(s, "## Phase {p}: Step {p}\n");
        for t in 1..=per_phase {
            if p > 1 && t % 5 == 0 {
                let _ = writeln!(
                    s,
                    "- [ ] {p}.{t} Update `src/m{t}.rs` for step {p} (depends: {q}.{t}, {q}.{u})",
                    q = p - 1,
                    u = t - 1
                );
            } else {
                let _ = writeln!(
                    s,
                    "- [ ] {p}.{t} Update `src/m{t}.rs` for step {p}\n  - keep the tests green"
                );
            }
        }
        let _ = writeln!(s, "\n**VERIFY Phase {p}:**\n- `cargo test` passes\n");
    }
    s
}

/// Writes plan `name` (and its status file with the first half of its phases done) under `root`.
fn write_plan(root: &Path, name: &str, phases: usize, per_phase: usize) {
    let rel = format!("plans/{name}.md");
    let text = plan_text(name, phases, per_phase);
    let path = root.join(&rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, &text).expect("write plan");
    let plan = orch::plan::parse(&path, &text);
    assert!(!plan.has_errors(), "generated plan is valid");
    let t0 = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("date");
    let mut doc = StatusDoc::new(&plan, &rel, name, t0);
    let done_phases = (phases / 2) as u32;
    for (i, e) in doc
        .tasks
        .iter_mut()
        .chain(doc.verify_steps.iter_mut())
        .enumerate()
    {
        let phase = orch::status::phase_number(&e.phase).unwrap_or(0);
        if phase <= done_phases {
            let start = t0 + chrono::Duration::seconds(i as i64 * 60);
            e.status = TaskStatus::Completed;
            e.started_at = Some(timestamp(start));
            e.completed_at = Some(timestamp(start + chrono::Duration::seconds(42)));
            e.duration = Some(42_000);
            e.attempts = 1;
            e.notes = Some(format!("did {}", e.id));
            e.commit = Some(format!("{:040x}", i * 7919));
        }
    }
    refresh_derived(&mut doc);
    let status = root.join(".orch/state").join(name).join("status.json");
    std::fs::create_dir_all(status.parent().expect("parent")).expect("mkdir");
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("json");
    bytes.push(b'\n');
    std::fs::write(status, bytes).expect("write status");
}

/// A manifest of the given plans (name, phases, per phase); plan `i` waits for phase `dep_phase`
/// of plan `i - 1` when given.
fn workspace(plans: &[(String, usize, usize)], dep_phase: Option<usize>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut toml = String::from("[defaults]\ntarget = \"main\"\n");
    for (i, (name, phases, per)) in plans.iter().enumerate() {
        let _ = write!(
            toml,
            "\n[[plan]]\nname = \"{name}\"\nfile = \"plans/{name}.md\"\n"
        );
        if let (Some(ph), true) = (dep_phase, i > 0) {
            let _ = writeln!(toml, "depends_on = [\"{}:{ph}\"]", plans[i - 1].0);
        }
        write_plan(dir.path(), name, *phases, *per);
    }
    std::fs::write(dir.path().join("plans.toml"), toml).expect("write manifest");
    dir
}

/// One run of one process.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    wall: Duration,
    cpu: Duration,
    maxrss_kib: u64,
    out_bytes: usize,
}

/// Runs `orch args` in `dir` under a measuring child of this bench; panics if orch fails.
fn measure(dir: &Path, args: &[&str], env: &[(&str, String)]) -> (Sample, String) {
    let me = std::env::current_exe().expect("current exe");
    let mut cmd = Command::new(me);
    cmd.arg("--measure-child")
        .arg(dir)
        .args(args)
        .env_remove("ORCH_PLAN")
        .env_remove("ORCH_STATUS_FILE")
        .env_remove("ORCH_MANIFEST")
        .env_remove("ORCH_TASK");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run measuring child");
    assert!(
        out.status.success(),
        "orch {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let (head, body) = text.split_once('\n').expect("figures line");
    let f: Vec<u64> = head
        .split_whitespace()
        .map(|x| x.parse().expect("number"))
        .collect();
    let s = Sample {
        wall: Duration::from_nanos(f[0]),
        cpu: Duration::from_micros(f[1]),
        maxrss_kib: f[2],
        out_bytes: f[3] as usize,
    };
    (s, body.to_string())
}

/// The measuring child: runs orch once, prints `wall_ns cpu_us maxrss_kib out_bytes`, then orch's
/// output.
fn measure_child(args: &[String]) -> ! {
    use nix::sys::resource::{UsageWho, getrusage};
    let dir = &args[0];
    // `ORCH_BENCH_BIN=/path/to/orch` measures another build (e.g. the one before a change).
    let orch = std::env::var_os("ORCH_BENCH_BIN").unwrap_or_else(|| ORCH.into());
    let start = Instant::now();
    let mut child = Command::new(orch)
        .current_dir(dir)
        .args(&args[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn orch");
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut out)
        .expect("read stdout");
    let mut err = Vec::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_end(&mut err)
        .expect("read stderr");
    let status = child.wait().expect("wait orch");
    let wall = start.elapsed();
    let ru = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    if !status.success() {
        eprintln!("{}", String::from_utf8_lossy(&err));
        std::process::exit(1);
    }
    println!(
        "{} {} {} {}",
        wall.as_nanos(),
        tv(ru.user_time()) + tv(ru.system_time()),
        ru.max_rss(),
        out.len()
    );
    print!("{}", String::from_utf8_lossy(&out));
    std::process::exit(0);
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

/// Median wall, median CPU, max RSS, output bytes of the last run.
fn summarize(samples: &[Sample]) -> Sample {
    Sample {
        wall: median(samples.iter().map(|s| s.wall).collect()),
        cpu: median(samples.iter().map(|s| s.cpu).collect()),
        maxrss_kib: samples.iter().map(|s| s.maxrss_kib).max().unwrap_or(0),
        out_bytes: samples.last().map_or(0, |s| s.out_bytes),
    }
}

fn row(what: &str, tasks: usize, s: Sample) {
    println!(
        "{what:<34} {tasks:>7} {:>9.2} {:>9.2} {:>8.1} {:>10}",
        s.wall.as_secs_f64() * 1e3,
        s.cpu.as_secs_f64() * 1e3,
        s.maxrss_kib as f64 / 1024.0,
        s.out_bytes
    );
}

/// Measures the reading commands and `task done` on one plan of `phases × per_phase` tasks.
fn single_plan(phases: usize, per_phase: usize, runs: usize, check: bool) {
    let tasks = phases * per_phase;
    let ws = workspace(&[("big".to_string(), phases, per_phase)], None);
    let d = ws.path();
    let cases: [(&str, &[&str]); 5] = [
        ("next -n 5 --json", &["next", "-n", "5", "--json"]),
        ("next -n 5", &["next", "-n", "5"]),
        ("next --json", &["next", "--json"]),
        ("status", &["status"]),
        ("status --json", &["status", "--json"]),
    ];
    // Round by round, each command once per round: a slow spell of this shared machine then
    // falls on every command alike instead of on all the runs of one.
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); cases.len()];
    let mut last = vec![String::new(); cases.len()];
    for _ in 0..runs {
        for (i, (_, args)) in cases.iter().enumerate() {
            let (s, out) = measure(d, args, &[]);
            samples[i].push(s);
            last[i] = out;
        }
    }
    for (i, (what, _)) in cases.iter().enumerate() {
        if check {
            sanity(what, &last[i], tasks);
        }
        row(what, tasks, summarize(&samples[i]));
    }
    // `task done` on a different pending task each run (the last phase's), so each one writes.
    let mut samples = Vec::new();
    for i in 0..runs {
        let id = format!("{phases}.{}", i % per_phase + 1);
        let (s, out) = measure(d, &["task", "done", &id, "--plan", "big"], &[]);
        if check {
            assert!(out.contains("pending → completed"), "{out}");
        }
        samples.push(s);
    }
    if check {
        let doc = orch::status::load(&d.join(".orch/state/big/status.json"))
            .expect("loads")
            .expect("exists");
        let id = format!("{phases}.1");
        assert_eq!(doc.entry(&id).expect("entry").status, TaskStatus::Completed);
    }
    row("task done ID", tasks, summarize(&samples));
}

/// Checks that an output is what the command should print.
fn sanity(what: &str, out: &str, tasks: usize) {
    match what {
        "next -n 5 --json" | "next --json" => {
            let v: serde_json::Value = serde_json::from_str(out).expect("next prints JSON");
            let ready = v["tasks"].as_array().expect("tasks").len();
            let blocked = v["blocked"].as_array().expect("blocked").len();
            assert!(ready > 0, "{what}: some task is ready");
            assert!(blocked > 0, "{what}: some task is blocked");
            if what.contains("-n 5") {
                assert!(ready <= 5 && blocked <= 5, "{what}: -n limits both lists");
            }
            assert!(
                v["blocked_total"].as_u64().expect("blocked_total") as usize >= tasks / 5,
                "{what}: totals count every blocked task"
            );
        }
        "next -n 5" => {
            assert_eq!(out.lines().filter(|l| l.starts_with("ready")).count(), 5);
            assert!(out.contains("blocked"), "{out}");
        }
        "status" => assert!(out.contains("big"), "{out}"),
        "status --json" => {
            let v: serde_json::Value = serde_json::from_str(out).expect("status prints JSON");
            let done = v["plans"][0]["summary"]["completed"]
                .as_u64()
                .expect("done");
            assert!(done as usize >= tasks / 2, "{v}");
        }
        _ => {}
    }
}

/// `orch task done` as an agent under `orch up` runs it: the plan, status file and manifest in
/// the environment, in a manifest of 4 plans of `phases × per_phase` tasks (50 and 1,250).
fn task_done_under_up(phases: usize, per_phase: usize, runs: usize, check: bool) {
    let plans: Vec<(String, usize, usize)> = (1..=4)
        .map(|i| (format!("p{i}"), phases, per_phase))
        .collect();
    let ws = workspace(&plans, None);
    let d = ws.path();
    let status = d.join(".orch/state/p2/status.json");
    let env = [
        ("ORCH_PLAN", "p2".to_string()),
        ("ORCH_STATUS_FILE", status.display().to_string()),
        ("ORCH_MANIFEST", d.join("plans.toml").display().to_string()),
    ];
    let mut samples = Vec::new();
    for i in 0..runs {
        let id = format!("{phases}.{}", i % per_phase + 1);
        let (s, out) = measure(d, &["task", "done", &id], &env);
        if check {
            assert!(out.contains("p2: task"), "{out}");
        }
        samples.push(s);
    }
    if check {
        let doc = orch::status::load(&status).expect("loads").expect("exists");
        assert_eq!(
            doc.entry(&format!("{phases}.1")).expect("entry").status,
            TaskStatus::Completed
        );
    }
    row(
        "task done ID (4-plan manifest, env)",
        phases * per_phase,
        summarize(&samples),
    );
}

/// `orch check` of a manifest of `plans` plans, each waiting for phase 5 of the one before.
fn check_manifest(plans: usize, phases: usize, per_phase: usize, runs: usize, check: bool) {
    let list: Vec<(String, usize, usize)> = (1..=plans)
        .map(|i| (format!("p{i}"), phases, per_phase))
        .collect();
    let ws = workspace(&list, Some(phases.div_ceil(2)));
    let mut samples = Vec::new();
    let mut last = String::new();
    for _ in 0..runs {
        let (s, out) = measure(ws.path(), &["check"], &[]);
        samples.push(s);
        last = out;
    }
    if check {
        assert!(last.contains("critical path"), "{last}");
    }
    row(
        &format!("check ({plans} plans)"),
        plans * phases * per_phase,
        summarize(&samples),
    );
}

/// `commands --steps DIR PLAN`: the steps of a reading command in-process, timed one by one
/// (median and fastest of 15 runs), to see where a command's time goes.
fn steps(dir: &Path, name: &str) {
    use orch::graph::{Graph, readiness};
    let plan_path = dir.join(format!("plans/{name}.md"));
    let status_path = dir.join(".orch/state").join(name).join("status.json");
    let mut t: Vec<(&str, Vec<Duration>)> = Vec::new();
    let mut record = |what: &'static str, d: Duration| match t.iter_mut().find(|(w, _)| *w == what)
    {
        Some((_, v)) => v.push(d),
        None => t.push((what, vec![d])),
    };
    for _ in 0..15 {
        let s = Instant::now();
        let text = std::fs::read_to_string(&plan_path).expect("plan");
        let plan = orch::plan::parse(&plan_path, &text);
        record("read + parse plan", s.elapsed());
        let s = Instant::now();
        let graph = Graph::of_plan(&plan).expect("graph");
        record("graph", s.elapsed());
        let s = Instant::now();
        let bytes = std::fs::read(&status_path).expect("status");
        record("read status file", s.elapsed());
        let s = Instant::now();
        let mut doc = orch::status::load(&status_path)
            .expect("load")
            .expect("doc");
        record("read + deserialize status", s.elapsed());
        let s = Instant::now();
        let report = orch::status::reconcile(&mut doc, &plan);
        record("reconcile", s.elapsed());
        assert!(!report.changed || report.added.is_empty());
        let s = Instant::now();
        let r = readiness(&graph, std::slice::from_ref(&plan), &[0], |_, ti| {
            doc.entry(&plan.tasks[ti].id)
                .map_or(orch::graph::NodeState::Pending, |e| match e.status {
                    TaskStatus::Completed | TaskStatus::Skipped => orch::graph::NodeState::Done,
                    TaskStatus::InProgress | TaskStatus::NeedsInput => {
                        orch::graph::NodeState::InProgress
                    }
                    TaskStatus::Failed => orch::graph::NodeState::Failed,
                    TaskStatus::Pending => orch::graph::NodeState::Pending,
                })
        });
        record("readiness", s.elapsed());
        assert!(!r.ready.is_empty());
        let s = Instant::now();
        let out = serde_json::to_vec_pretty(&doc).expect("json");
        record("serialize status (pretty)", s.elapsed());
        assert!(out.len() > bytes.len() / 2);
        // What `orch next` / `orch status` do instead: the plan without files, the states only.
        let s = Instant::now();
        let plan = orch::plan::parse_file_with(&plan_path, false).expect("plan");
        record("next: parse plan (no files)", s.elapsed());
        let s = Instant::now();
        let graph = Graph::of_plan(&plan).expect("graph");
        record("next: graph", s.elapsed());
        let s = Instant::now();
        let states = orch::status::load_states(&status_path)
            .expect("states")
            .expect("file");
        record("next: load states", s.elapsed());
        let s = Instant::now();
        let r = readiness(
            &graph,
            std::slice::from_ref(&plan),
            &[0],
            |_, ti| match states.status(&plan.tasks[ti]) {
                TaskStatus::Completed | TaskStatus::Skipped => orch::graph::NodeState::Done,
                TaskStatus::InProgress | TaskStatus::NeedsInput => {
                    orch::graph::NodeState::InProgress
                }
                TaskStatus::Failed => orch::graph::NodeState::Failed,
                TaskStatus::Pending => orch::graph::NodeState::Pending,
            },
        );
        record("next: readiness", s.elapsed());
        assert!(!r.ready.is_empty());
        let s = Instant::now();
        let d = orch::status::plan_digest(text.as_bytes());
        record("plan digest", s.elapsed());
        assert!(!d.is_empty());
    }
    for (what, v) in t {
        let min = v.iter().min().copied().unwrap_or_default();
        println!(
            "{what:<28} {:>8.3} ms (min {:.3})",
            median(v).as_secs_f64() * 1e3,
            min.as_secs_f64() * 1e3
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--measure-child") {
        measure_child(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("--make-workspace") {
        // For profiling by hand: `commands --make-workspace PLANS PHASES PER_PHASE` prints the
        // path of a workspace it keeps.
        let n = |i: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(1);
        let plans: Vec<(String, usize, usize)> =
            (1..=n(1)).map(|i| (format!("p{i}"), n(2), n(3))).collect();
        println!("{}", workspace(&plans, None).keep().display());
        return;
    }
    if args.first().map(String::as_str) == Some("--steps") {
        steps(Path::new(&args[1]), &args[2]);
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    // For measuring a build whose outputs predate these checks: `ORCH_BENCH_NO_CHECK=1`;
    // `ORCH_BENCH_MAX_TASKS=N` leaves out the sizes above N.
    let check = std::env::var_os("ORCH_BENCH_NO_CHECK").is_none();
    let max_tasks: usize = std::env::var("ORCH_BENCH_MAX_TASKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX);
    println!(
        "{:<34} {:>7} {:>9} {:>9} {:>8} {:>10}",
        "command", "tasks", "wall ms", "cpu ms", "MiB", "out bytes"
    );
    if !full {
        single_plan(4, 50, 1, true);
        task_done_under_up(4, 50, 2, true);
        check_manifest(3, 4, 20, 1, true);
        return;
    }
    for (phases, runs) in [(10, 31), (20, 31), (100, 31), (500, 3)] {
        if phases * 100 <= max_tasks {
            single_plan(phases, 100, runs, check);
        }
    }
    // Process start alone, to compare `task done` with.
    let ws = workspace(&[("p1".to_string(), 1, 10)], None);
    let samples: Vec<Sample> = (0..21)
        .map(|_| measure(ws.path(), &["--version"], &[]).0)
        .collect();
    row("--version", 0, summarize(&samples));
    task_done_under_up(1, 50, 21, check);
    task_done_under_up(25, 50, 21, check);
    check_manifest(20, 10, 50, 11, check);
}
