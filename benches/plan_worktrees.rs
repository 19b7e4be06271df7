//! Plan worktrees on a repository of a realistic size: `orch up` of 8 plans of
//! one trivial task each, against `git worktree add` of the same repository in the same run.
//!
//! The repository is `support::big_repo` (40,000 files of ~4 KiB, one commit) under `/dev/shm`
//! (tmpfs: this machine's ext4 slows down for minutes after many files are deleted), deleted
//! afterwards. Per size, in this order:
//! - `git worktree add -b` of the repository, once (the reference for the first agent);
//! - libgit2's `Repository::worktree` of it, once (which of the two orch should use);
//! - 8 `git worktree add -b` one after another (the reference for all 8 agents);
//!   every one of these worktrees is removed before the next step;
//! - `orch up --json` of 8 plans (one task each, the agent `orch task done`): the time from its
//!   start to the first `task_started` and to the 8th, read from its output as it comes.
//!
//! Targets (printed PASS/FAIL): first agent ≤ 1.5 × one `git worktree add`; all 8 agents ≤ 1.2 ×
//! the 8 `git worktree add` in sequence. Every run checks its outcome: `orch up` exits 0, 8
//! `task_started` and 8 commits, one per plan branch.
//!
//! Run: `cargo bench --bench plan_worktrees` (40,000 files; `-- --files 100000` for another
//! size, `-- --runs N` for more runs, the figures are then medians; `-- --compare N` only times
//! `git worktree add` against libgit2's, alternated N times). Under `cargo test` (no `--bench`)
//! it runs 2,000 files and checks the outcome only.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{big_repo, full_size, git, git_output};

const PLANS: usize = 8;

fn arg(name: &str) -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.replace('_', "").parse().ok())
}

/// A scratch directory on tmpfs when there is one.
fn scratch(tag: &str) -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("orch-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// The manifest and plans of the run, committed on `main`.
fn add_plans(repo: &Path) {
    let orch = env!("CARGO_BIN_EXE_orch");
    let mut manifest = format!(
        "[defaults]\nagent = \"reporter\"\nmax_agents = {PLANS}\nretries = 0\n\n\
         [agents.reporter]\ncommand = [{orch:?}, \"task\", \"done\", \"{{{{ task }}}}\"]\n\
         report = \"orch\"\n"
    );
    std::fs::create_dir_all(repo.join("plans")).expect("mkdir");
    for p in 0..PLANS {
        std::fs::write(
            repo.join(format!("plans/p{p}.md")),
            format!("# P{p}\n\n## Phase 1: Work\n- [ ] 1.1 Trivial task of plan {p}\n"),
        )
        .expect("plan");
        manifest.push_str(&format!(
            "\n[[plan]]\nname = \"p{p}\"\nfile = \"plans/p{p}.md\"\n"
        ));
    }
    std::fs::write(repo.join("plans.toml"), manifest).expect("manifest");
    let gitignore = std::fs::read_to_string(repo.join(".gitignore")).unwrap_or_default();
    std::fs::write(repo.join(".gitignore"), format!("{gitignore}.orch/\n")).expect("ignore");
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "plans"]);
}

/// `git worktree add -b <branch> <path>` of `repo`, timed.
fn git_add(repo: &Path, dir: &Path, name: &str) -> Duration {
    let t = Instant::now();
    git(
        repo,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            &format!("bench/{name}"),
            &dir.join(name).display().to_string(),
        ],
    );
    t.elapsed()
}

/// libgit2's worktree add of a new branch at `main`, timed.
fn libgit2_add(repo: &Path, dir: &Path, name: &str) -> Duration {
    let t = Instant::now();
    let r = git2::Repository::open(repo).expect("open");
    let main = r
        .find_branch("main", git2::BranchType::Local)
        .expect("main")
        .get()
        .peel_to_commit()
        .expect("commit");
    let branch = r
        .branch(&format!("bench/{name}"), &main, false)
        .expect("branch");
    let mut opts = git2::WorktreeAddOptions::new();
    opts.reference(Some(branch.get()));
    r.worktree(name, &dir.join(name), Some(&opts))
        .expect("libgit2 worktree add");
    t.elapsed()
}

/// Removes the bench's own worktrees and branches.
fn remove_worktrees(repo: &Path, dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    git(repo, &["worktree", "prune"]);
    let branches = git_output(
        repo,
        &[
            "for-each-ref",
            "--format=%(refname:short)",
            "refs/heads/bench/",
        ],
    );
    for b in branches.lines().filter(|b| !b.is_empty()) {
        git(repo, &["branch", "-q", "-D", b]);
    }
}

struct UpRun {
    first: Duration,
    all: Duration,
    total: Duration,
}

/// `orch up --json` in `repo`: the times to the first and the last `task_started`; checks the
/// outcome and removes the worktrees, branches and state afterwards.
fn orch_up(repo: &Path) -> UpRun {
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_orch"))
        .current_dir(repo)
        .args(["up", "--json"])
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@localhost")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@localhost")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("orch up");
    let stdout = child.stdout.take().expect("stdout");
    let mut started = Vec::new();
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if line.contains("\"task_started\"") {
            started.push(t.elapsed());
        }
        lines.push(line);
    }
    let out = child.wait_with_output().expect("orch up");
    let total = t.elapsed();
    assert!(
        out.status.success(),
        "orch up failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        lines.join("\n")
    );
    assert_eq!(started.len(), PLANS, "{}", lines.join("\n"));
    for p in 0..PLANS {
        let n = git_output(repo, &["rev-list", "--count", &format!("main..plan/p{p}")]);
        assert_eq!(n, "1", "plan p{p} has one commit");
    }
    // Clean up for the next run.
    let _ = std::fs::remove_dir_all(repo.join(".orch"));
    git(repo, &["worktree", "prune"]);
    for p in 0..PLANS {
        git(repo, &["branch", "-q", "-D", &format!("plan/p{p}")]);
    }
    UpRun {
        first: started[0],
        all: started[PLANS - 1],
        total,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn main() {
    let full = full_size();
    let files = arg("--files").unwrap_or(if full { 40_000 } else { 2_000 });
    let runs = arg("--runs").unwrap_or(1);
    let dir = scratch("worktrees");
    let repo = dir.join("repo");
    let made = Instant::now();
    big_repo(&repo, files);
    add_plans(&repo);
    println!(
        "repository: {files} files, made in {} ({}), {} cores",
        secs(made.elapsed()),
        repo.display(),
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    );
    let trees = dir.join("trees");
    if let Some(n) = arg("--compare") {
        // Only `git worktree add` against libgit2's add, alternated `n` times.
        for i in 0..n {
            std::fs::create_dir_all(&trees).expect("mkdir");
            let g = git_add(&repo, &trees, &format!("g{i}"));
            remove_worktrees(&repo, &trees);
            std::fs::create_dir_all(&trees).expect("mkdir");
            let l = libgit2_add(&repo, &trees, &format!("l{i}"));
            remove_worktrees(&repo, &trees);
            println!("add {i}: git worktree add {}, libgit2 {}", secs(g), secs(l));
        }
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let (mut one, mut lib, mut seq, mut first, mut all, mut total) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for run in 0..runs {
        std::fs::create_dir_all(&trees).expect("mkdir");
        one.push(git_add(&repo, &trees, "one"));
        remove_worktrees(&repo, &trees);
        std::fs::create_dir_all(&trees).expect("mkdir");
        lib.push(libgit2_add(&repo, &trees, "lib"));
        remove_worktrees(&repo, &trees);
        std::fs::create_dir_all(&trees).expect("mkdir");
        let t = Instant::now();
        for i in 0..PLANS {
            git_add(&repo, &trees, &format!("seq{i}"));
        }
        seq.push(t.elapsed());
        remove_worktrees(&repo, &trees);
        let up = orch_up(&repo);
        println!(
            "run {run}: git worktree add {}, libgit2 add {}, 8 x git worktree add {}; \
             orch up: first agent {}, all {PLANS} agents {}, whole run {}",
            secs(one[run]),
            secs(lib[run]),
            secs(seq[run]),
            secs(up.first),
            secs(up.all),
            secs(up.total)
        );
        first.push(up.first);
        all.push(up.all);
        total.push(up.total);
    }
    let (one, lib, seq, first, all) = (
        median(one),
        median(lib),
        median(seq),
        median(first),
        median(all),
    );
    let r_first = first.as_secs_f64() / one.as_secs_f64();
    let r_all = all.as_secs_f64() / seq.as_secs_f64();
    println!(
        "median of {runs}: git worktree add {}, libgit2 add {}, 8 in sequence {}",
        secs(one),
        secs(lib),
        secs(seq)
    );
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    println!(
        "first agent started after {} = {r_first:.2} x one git worktree add (target <= 1.5): {}",
        secs(first),
        verdict(r_first <= 1.5)
    );
    println!(
        "all {PLANS} agents started after {} = {r_all:.2} x {PLANS} git worktree add in sequence (target <= 1.2): {}",
        secs(all),
        verdict(r_all <= 1.2)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
