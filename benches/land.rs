//! A landing of plans of three repositories (`orch merge` of one group: every repository's merge
//! built, then the three targets moved in order after backup refs and a journal) against three
//! single landings (`orch merge` of one plan in each of three repositories of their own), as
//! whole processes. Each repository holds the same files (2,000 in 20 directories) and one
//! finished plan of two task commits (made by `orch up` with a shell agent, not timed); with no
//! `verify`, then with a trivial one (`verify_all = ["true"]` for the group, which checks out
//! the three candidates side by side; `verify = ["true"]` for each single landing, which checks
//! its candidate out in a staging worktree). Prints the median wall time of each and the load
//! average around the run.
//!
//! Run: `cargo bench --bench land` (`-- --runs N`, default 5); `cargo test` runs a tiny size
//! once and checks that every target moved.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{full_size, git, git_output};

fn files() -> usize {
    if full_size() { 2_000 } else { 20 }
}

fn runs() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(if full_size() { 5 } else { 1 })
}

/// A repository at `dir` with `files()` files on `main`.
fn repository(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    git(dir, &["init", "-q", "-b", "main"]);
    for i in 0..files() {
        let sub = dir.join(format!("d{:02}", i % 20));
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::write(sub.join(format!("f{i}.txt")), format!("line {i}\n")).expect("write");
    }
    std::fs::write(dir.join(".gitignore"), ".orch/\n").expect("gitignore");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "files"]);
}

const PLAN: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two (depends: 1.1)\n";

fn head(verify: &str) -> String {
    format!(
        "[defaults]\nagent = \"a\"\nsandbox = \"off\"\nretries = 0\n{verify}\n[agents.a]\ncommand = [\"sh\", \"-c\", \"echo $ORCH_TASK >> \\\"$ORCH_PLAN.txt\\\"\"]\n"
    )
}

fn orch(dir: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_orch"))
        .current_dir(dir)
        .env("PWD", dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("orch");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "orch {args:?} in {}: {}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// Home, api and client with one plan each, landing together, finished: the home directory.
fn group(root: &Path, verify: bool) -> Vec<PathBuf> {
    let dirs: Vec<PathBuf> = ["home", "api", "client"]
        .iter()
        .map(|n| root.join(n))
        .collect();
    for d in &dirs {
        repository(d);
    }
    let home = &dirs[0];
    std::fs::create_dir_all(home.join("plans")).expect("plans");
    for p in ["h", "a", "c"] {
        std::fs::write(home.join(format!("plans/{p}.md")), PLAN).expect("plan");
    }
    let v = if verify {
        "verify_all = [\"true\"]\n"
    } else {
        ""
    };
    let toml = format!(
        "{}\n[[repo]]\nname = \"api\"\npath = \"../api\"\n\n[[repo]]\nname = \"client\"\npath = \"../client\"\n\n\
         [[plan]]\nname = \"a\"\nfile = \"plans/a.md\"\nrepo = \"api\"\n\n\
         [[plan]]\nname = \"c\"\nfile = \"plans/c.md\"\nrepo = \"client\"\ndepends_on = [\"a\"]\n\n\
         [[plan]]\nname = \"h\"\nfile = \"plans/h.md\"\nland_with = [\"a\"]\n",
        head(v)
    );
    std::fs::write(home.join("plans.toml"), toml).expect("toml");
    git(home, &["add", "-A"]);
    git(home, &["commit", "-q", "-m", "plans"]);
    orch(home, &["up"]);
    dirs
}

/// One repository with one finished plan: its directory.
fn single(dir: &Path, verify: bool) -> PathBuf {
    repository(dir);
    std::fs::create_dir_all(dir.join("plans")).expect("plans");
    std::fs::write(dir.join("plans/p.md"), PLAN).expect("plan");
    let v = if verify { "verify = [\"true\"]\n" } else { "" };
    let toml = format!(
        "{}\n[[plan]]\nname = \"p\"\nfile = \"plans/p.md\"\n",
        head(v)
    );
    std::fs::write(dir.join("plans.toml"), toml).expect("toml");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "plans"]);
    orch(dir, &["up"]);
    dir.to_path_buf()
}

fn tip(dir: &Path) -> String {
    git_output(dir, &["rev-parse", "main"])
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let runs = runs();
    println!(
        "land: {} files per repository, {runs} run(s); load average before: {}",
        files(),
        load()
    );
    for verify in [false, true] {
        let (mut together, mut apart) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let tmp = tempfile::tempdir().expect("tmp");
            let dirs = group(&tmp.path().join("g"), verify);
            let before: Vec<String> = dirs.iter().map(|d| tip(d)).collect();
            together.push(orch(&dirs[0], &["merge"]));
            for (d, b) in dirs.iter().zip(&before) {
                assert_ne!(&tip(d), b, "{} did not move", d.display());
            }
            let singles: Vec<PathBuf> = ["s1", "s2", "s3"]
                .iter()
                .map(|n| single(&tmp.path().join(n), verify))
                .collect();
            let mut sum = Duration::ZERO;
            for d in &singles {
                let before = tip(d);
                sum += orch(d, &["merge"]);
                assert_ne!(tip(d), before, "{} did not move", d.display());
            }
            apart.push(sum);
        }
        let (t, a) = (median(together), median(apart));
        println!(
            "{}: one landing of three repositories {:.1} ms; three single landings {:.1} ms ({:.2}x)",
            if verify {
                "trivial verify"
            } else {
                "no verify"
            },
            t.as_secs_f64() * 1000.0,
            a.as_secs_f64() * 1000.0,
            t.as_secs_f64() / a.as_secs_f64()
        );
    }
    println!("load average after: {}", load());
}
