//! The cost of a task worktree on a repository of a realistic size.
//!
//! Workload: a repository from `support::big_repo` (40,000 and 100,000 files of ~4 KiB, one
//! commit) on `/dev/shm` (tmpfs: this machine's ext4 slows down for minutes after many files are
//! deleted), plans of trivial tasks with `parallel_tasks = 2`: of 8 tasks and of 16, all
//! independent; the agent (`sh -c`) writes `<task>.txt` and exits 0
//! (`report = "exit"`). `orch up` of the 8-task plan, `orch clean` of it, then the same for the
//! 16-task plan; three runs of each, alternating (`-- --runs N`), medians.
//! Each run makes the plan's worktree and the pool's first two checkouts and removes the pool at
//! the end: the same in both, so `(t16 - t8) / 8` is the cost of each task beyond the first few.
//! Targets: at most 0.5 s at 40,000 files, at most 1 s at 100,000.
//!
//! Side by side, in the same repository: one `git worktree add` (and its removal), and the reset
//! of a worktree to a commit changing one file, its status check included, by the git CLI
//! (`git status`, `git checkout -f -B`: only the files that differ are written), by libgit2
//! (status, forced `checkout_tree`), and by the pool (`orch::git::take_pool_tree`, which uses the
//! git CLI's).
//!
//! Under load the difference is noisy (the fixed part of a run, a few full checkouts, varies by
//! seconds): the bench also prints, from the 16-task runs' `task_finished` events, the time from
//! the 8th task's end to the 15th's, per task (the 16th's end waits for the pool's removal).
//!
//! Every run checks its outcome: `orch up` exits 0, one commit per task on the plan branch, each
//! with only its task's file, the pool gone at the end (no `+pool` directory).
//!
//! Run: `cargo bench --bench worktrees` (`-- --sizes 40000` picks sizes; `ORCH_BENCH_BIN=PATH`
//! runs another build). Under `cargo test`
//! (no `--bench`) it runs one tiny size (300 files, 2 and 4 tasks) in a temp directory and checks
//! the outcome, so the bench cannot rot.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

mod support;
use support::{big_repo, full_size, git, git_output, median, scratch};

const ORCH: &str = env!("CARGO_BIN_EXE_orch");

/// The name of run `r`'s plan of `n` tasks.
fn plan_name(n: usize, r: usize) -> String {
    format!("p{n}r{r}")
}

/// Adds the manifest and, for each run `r` below `runs`, plans [`plan_name`]`(n, r)` for each
/// `n` of `tasks` to the repository at `dir`, committed.
fn add_plans(dir: &Path, tasks: &[usize], runs: usize) {
    std::fs::create_dir_all(dir.join("plans")).expect("mkdir");
    let mut manifest = String::from(
        "[defaults]\nmax_agents = 4\nretries = 0\n\n[agents.a]\n\
         command = [\"sh\", \"-c\", \"echo $ORCH_TASK > $ORCH_TASK.txt\"]\nreport = \"exit\"\n",
    );
    for r in 0..runs {
        for &n in tasks {
            let name = plan_name(n, r);
            let mut plan = format!("# P{n}\n\n## Phase 1: Work\n");
            for t in 1..=n {
                plan.push_str(&format!("- [ ] 1.{t} Task {t}\n"));
            }
            std::fs::write(dir.join(format!("plans/{name}.md")), plan).expect("write plan");
            manifest.push_str(&format!(
                "\n[[plan]]\nname = \"{name}\"\nfile = \"plans/{name}.md\"\nagent = \"a\"\n\
                 parallel_tasks = 2\n"
            ));
        }
    }
    std::fs::write(dir.join("plans.toml"), manifest).expect("write manifest");
    let ignore = std::fs::read_to_string(dir.join(".gitignore")).unwrap_or_default();
    std::fs::write(dir.join(".gitignore"), format!("{ignore}.orch/\n")).expect("write");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "plans"]);
}

fn orch(dir: &Path, args: &[&str]) -> std::process::Output {
    // `ORCH_BENCH_BIN=/path/to/orch` measures another build (e.g. the one before a change).
    let bin = std::env::var_os("ORCH_BENCH_BIN").unwrap_or_else(|| ORCH.into());
    // The supervisor's diagnostics (on stderr): its loop's longest stall among them.
    let out = Command::new(bin)
        .current_dir(dir)
        .env("RUST_LOG", "orch::supervisor=debug")
        .env("NO_COLOR", "1")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("orch");
    assert!(
        out.status.success(),
        "orch {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The longest time the supervisor's loop was busy between two waits in a run, in ms (its
/// `longest_stall_ms` diagnostic on stderr).
fn longest_stall(stderr: &[u8]) -> f64 {
    let text = String::from_utf8_lossy(stderr);
    let at = text
        .find("longest_stall_ms=")
        .unwrap_or_else(|| panic!("no longest_stall_ms in orch up's diagnostics:\n{text}"));
    let digits: String = text[at + "longest_stall_ms=".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("a number of ms")
}

/// Runs `plan` (of `n` tasks) and checks it: returns the wall time of `orch up`, the time from
/// the `n/2`-th task's end to the one before the last's, per task (from the `task_finished`
/// events' `at`; the last task's end waits for the pool's removal), and the loop's longest
/// stall (ms).
fn run_plan(dir: &Path, plan: &str, n: usize) -> (f64, f64, f64) {
    let start = Instant::now();
    let out = orch(dir, &["up", plan, "--json"]);
    let secs = start.elapsed().as_secs_f64();
    let stall = longest_stall(&out.stderr);
    let mut ends: Vec<chrono::DateTime<chrono::FixedOffset>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "task_finished")
        .filter_map(|e| chrono::DateTime::parse_from_rfc3339(e["at"].as_str()?).ok())
        .collect();
    assert_eq!(ends.len(), n, "one task_finished per task");
    ends.sort();
    let steady =
        (ends[n - 2] - ends[n / 2 - 1]).num_milliseconds() as f64 / 1000.0 / (n - 1 - n / 2) as f64;
    let range = format!("main..plan/{plan}");
    let commits = git_output(dir, &["rev-list", "--count", &range]);
    assert_eq!(commits, n.to_string(), "one commit per task of {plan}");
    // Each commit holds only its task's file.
    let log = git_output(dir, &["log", "--format=@%s", "--name-only", &range]);
    let mut commits: Vec<(String, Vec<String>)> = Vec::new();
    for line in log.lines().filter(|l| !l.is_empty()) {
        match line.strip_prefix('@') {
            Some(subject) => commits.push((subject.to_string(), Vec::new())),
            None => commits
                .last_mut()
                .expect("a commit")
                .1
                .push(line.to_string()),
        }
    }
    assert_eq!(commits.len(), n, "{log}");
    for (subject, files) in &commits {
        let id = subject
            .strip_prefix(&format!("{plan} "))
            .and_then(|s| s.split(':').next())
            .expect("task subject");
        assert_eq!(files, &[format!("{id}.txt")], "{subject}");
    }
    let left: Vec<String> = std::fs::read_dir(dir.join(".orch/worktrees"))
        .expect("worktrees")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("+pool"))
        .collect();
    assert!(
        left.is_empty(),
        "the pool is removed at the plan's end: {left:?}"
    );
    (secs, steady, stall)
}

/// `git worktree add` of the repository (and its removal), timed.
fn worktree_add(dir: &Path) -> f64 {
    let path = dir.join(".orch/bench-add");
    let start = Instant::now();
    git(
        dir,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            path.to_str().expect("utf-8"),
            "main",
        ],
    );
    let secs = start.elapsed().as_secs_f64();
    git(
        dir,
        &[
            "worktree",
            "remove",
            "--force",
            path.to_str().expect("utf-8"),
        ],
    );
    secs
}

/// The reset of a worktree to a commit that changes one file, status check included: by the git
/// CLI (`git status`, `git checkout -f -B`), by libgit2 (status, forced `checkout_tree`), and by
/// the pool (`take_pool_tree`: the task branch, its mark, the git CLI's reset); (git CLI,
/// libgit2, pool) in seconds, the median of 5.
fn resets(dir: &Path) -> (f64, f64, f64) {
    // Two commits on a branch of their own: `a` adds one file, `b` changes it.
    let side = dir.join(".orch/bench-side");
    let side_s = side.to_str().expect("utf-8");
    git(
        dir,
        &["worktree", "add", "-q", "-b", "bench/side", side_s, "main"],
    );
    std::fs::write(side.join("bench.txt"), "a\n").expect("write");
    git(&side, &["add", "bench.txt"]);
    git(&side, &["commit", "-q", "-m", "a"]);
    std::fs::write(side.join("bench.txt"), "b\n").expect("write");
    git(&side, &["commit", "-q", "-am", "b"]);
    git(dir, &["worktree", "remove", "--force", side_s]);
    let (a, b) = (
        git_output(dir, &["rev-parse", "bench/side~1"]),
        git_output(dir, &["rev-parse", "bench/side"]),
    );
    // The git CLI: a worktree switched between them.
    let cli = dir.join(".orch/bench-cli");
    let cli_s = cli.to_str().expect("utf-8");
    git(dir, &["worktree", "add", "-q", "--detach", cli_s, &a]);
    let mut cli_times = Vec::new();
    for i in 0..5 {
        let to = if i % 2 == 0 { &b } else { &a };
        let start = Instant::now();
        let status = git_output(&cli, &["status", "--porcelain", "--untracked-files=all"]);
        git(&cli, &["checkout", "-q", "-f", "-B", "bench/cli", to]);
        cli_times.push(start.elapsed().as_secs_f64());
        assert_eq!(status, "");
    }
    git(&cli, &["checkout", "-q", "--detach"]);
    // libgit2 on the same worktree: its status, then a forced checkout (it also writes only
    // the files that differ), then HEAD.
    let mut git2_times = Vec::new();
    {
        let repo = git2::Repository::open(&cli).expect("open");
        for i in 0..5 {
            let to = if i % 2 == 0 { &a } else { &b };
            let start = Instant::now();
            let mut opts = git2::StatusOptions::new();
            opts.include_untracked(true).recurse_untracked_dirs(true);
            let clean = repo.statuses(Some(&mut opts)).expect("status").is_empty();
            let commit = repo
                .find_commit(git2::Oid::from_str(to).expect("oid"))
                .expect("commit");
            let mut checkout = git2::build::CheckoutBuilder::new();
            checkout.force();
            repo.checkout_tree(commit.as_object(), Some(&mut checkout))
                .expect("checkout");
            repo.set_head_detached(commit.id()).expect("head");
            git2_times.push(start.elapsed().as_secs_f64());
            assert!(clean);
        }
    }
    git(dir, &["worktree", "remove", "--force", cli_s]);
    git(dir, &["branch", "-q", "-D", "bench/cli"]);
    // libgit2, as the pool does it: slot taken by one task at `a`, freed, taken at `b`, …
    let root = dir.join(".orch/bench-pool");
    std::fs::create_dir_all(&root).expect("mkdir");
    let mut lib_times = Vec::new();
    for i in 0..6 {
        let to = if i % 2 == 0 { &a } else { &b };
        git(dir, &["branch", "-q", "-f", "bench/tip", to]);
        let id = format!("9.{i}");
        let req = orch::git::TaskTreeRequest {
            repo_root: dir,
            plan: "bench",
            plan_branch: "bench/tip",
            id: &id,
            worktree_root: &root,
            copy: &[],
            sparse: &[],
            submodules: true,
            save: Default::default(),
        };
        let start = Instant::now();
        let tree =
            orch::git::take_pool_tree(&req, ("refs/orch/bench/slot", "bench")).expect("take");
        let secs = start.elapsed().as_secs_f64();
        // The first take adds the slot (a full checkout): not a reset.
        if i > 0 {
            lib_times.push(secs);
        }
        assert_eq!(
            std::fs::read_to_string(tree.path.join("bench.txt")).expect("bench.txt"),
            if i % 2 == 0 { "a\n" } else { "b\n" }
        );
        orch::git::retire_task_tree(&req, None).expect("free");
    }
    orch::git::remove_pool(dir, &root, "bench", None, Default::default()).expect("remove pool");
    git(dir, &["branch", "-q", "-D", "bench/side", "bench/tip"]);
    (
        median(&mut cli_times),
        median(&mut git2_times),
        median(&mut lib_times),
    )
}

fn main() {
    let full = full_size();
    let args: Vec<String> = std::env::args().collect();
    let sizes: Vec<usize> = match args.iter().position(|a| a == "--sizes") {
        Some(i) => args
            .get(i + 1)
            .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
            .unwrap_or_default(),
        None if full => vec![40_000, 100_000],
        None => vec![300],
    };
    let runs: usize = match args.iter().position(|a| a == "--runs") {
        Some(i) => args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(3),
        None if full => 3,
        None => 1,
    };
    let (few, many) = if full { (8, 16) } else { (2, 4) };
    println!(
        "task worktree pool: parallel_tasks = 2, {few} and {many} trivial tasks in one plan, \
         {runs} run(s) of each, alternating (medians)"
    );
    for files in sizes {
        let tmp = scratch("orch-worktrees-");
        let dir = tmp.path().join("repo");
        let start = Instant::now();
        big_repo(&dir, files);
        add_plans(&dir, &[few, many], runs);
        let made = start.elapsed().as_secs_f64();
        let add = worktree_add(&dir);
        let (cli, lib, pool) = resets(&dir);
        let (mut t_fews, mut t_manys, mut steadies) = (Vec::new(), Vec::new(), Vec::new());
        let mut stalls = Vec::new();
        for r in 0..runs {
            for (n, times) in [(few, &mut t_fews), (many, &mut t_manys)] {
                let plan = plan_name(n, r);
                let (t, steady, stall) = run_plan(&dir, &plan, n);
                times.push(t);
                stalls.push(stall);
                if n == many {
                    steadies.push(steady);
                }
                orch(&dir, &["clean", &plan, "--force"]);
            }
        }
        let (t_few, t_many, steady) = (
            median(&mut t_fews),
            median(&mut t_manys),
            median(&mut steadies),
        );
        let per_task = (t_many - t_few) / (many - few) as f64;
        let target = if files <= 40_000 { 0.5 } else { 1.0 };
        println!(
            "{files:>7} files (made in {made:.1} s): git worktree add {add:.2} s; reset to a \
             commit changing one file: git CLI {:.0} ms, libgit2 {:.0} ms, the pool's take {:.0} ms",
            cli * 1000.0,
            lib * 1000.0,
            pool * 1000.0
        );
        println!(
            "        orch up: {few} tasks {t_few:.2} s, {many} tasks {t_many:.2} s; per task beyond \
             the first {few}: {per_task:.3} s (target <= {target} s: {})",
            match (full, per_task <= target) {
                (false, _) => "not checked at this size",
                (true, true) => "PASS",
                (true, false) => "FAIL",
            }
        );
        println!(
            "        in the {many}-task runs, from the {}th task's end to the {}th's: {steady:.3} s \
             per task",
            many / 2,
            many - 1
        );
        let worst = stalls.iter().copied().fold(0.0, f64::max);
        println!(
            "        the supervisor loop's longest stall in a run (a pool slot's checkout is made \
             off the loop): median {:.0} ms, worst {worst:.0} ms of {} runs",
            median(&mut stalls),
            2 * runs
        );
    }
}
