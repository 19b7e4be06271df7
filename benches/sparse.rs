//! A sparse plan's worktree (`paths` covering one component, 5% of the files) against a full one,
//! both made by orch (`git::ensure_plan_tree`: libgit2 for the full checkout, the git CLI's cone
//! mode for the sparse one), with `git worktree add` of the whole tree beside them as a yardstick.
//! The repository is `support::big_repo` on /dev/shm (tmpfs: this machine's ext4 slows down for
//! minutes after many files are deleted). Prints the time and the disk of each (median of the
//! runs) and checks the sparse worktree takes at most 15% of a full one's time and disk.
//!
//! Run: `cargo bench --bench sparse` (40,000 files; `-- --files 100000`, `-- --runs 5`).
//! `cargo test` runs a tiny size (1,000 files) and checks the disk and the files only: at that
//! size the git processes' start dominates the time.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orch::git::{self, TreeRequest};

mod support;
use support::{big_repo, component, full_size};

fn arg(name: &str) -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

/// Blocks (bytes) under `dir`, each inode once, symlinks not followed, the `.git` file left out:
/// what `orch status --disk` counts.
fn disk(dir: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let m = e.metadata().expect("metadata");
            if m.file_type().is_symlink() {
                continue;
            }
            if m.is_dir() {
                stack.push(e.path());
            } else if seen.insert((m.dev(), m.ino())) {
                total += m.blocks() * 512;
            }
        }
    }
    total
}

fn files_under(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            if e.file_type().expect("type").is_dir() {
                stack.push(e.path());
            } else if e.file_name() != ".git" {
                n += 1;
            }
        }
    }
    n
}

/// Makes plan `name`'s worktree through orch; returns its time and disk, then removes it.
fn orch_tree(root: &Path, name: &str, sparse: &[String]) -> (Duration, u64, usize) {
    let branch = format!("plan/{name}");
    let path = root.join(".orch/worktrees").join(name);
    let req = TreeRequest {
        repo_root: root,
        plan: name,
        branch: &branch,
        path: &path,
        target: "main",
        copy: &[],
        sparse,
        submodules: true,
    };
    let start = Instant::now();
    let tree = git::ensure_plan_tree(&req).expect("plan worktree");
    let took = start.elapsed();
    assert!(tree.created);
    let out = (took, disk(&path), files_under(&path));
    remove(root, &path, &branch);
    out
}

/// `git worktree add` of the whole tree; its time and disk, then removed.
fn git_tree(root: &Path, name: &str) -> (Duration, u64) {
    let path = root.join(".orch/worktrees").join(name);
    let branch = format!("plan/{name}");
    let start = Instant::now();
    let ok = Command::new("git")
        .current_dir(root)
        .args(["worktree", "add", "-q", "-b", &branch])
        .arg(&path)
        .arg("main")
        .stdout(Stdio::null())
        .status()
        .expect("git")
        .success();
    let took = start.elapsed();
    assert!(ok);
    let out = (took, disk(&path));
    remove(root, &path, &branch);
    out
}

fn remove(root: &Path, path: &Path, branch: &str) {
    support::git(
        root,
        &[
            "worktree",
            "remove",
            "--force",
            path.to_str().expect("utf8"),
        ],
    );
    support::git(root, &["branch", "-q", "-D", branch]);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let files = arg("--files").unwrap_or(if full_size() { 40_000 } else { 1_000 });
    let runs = arg("--runs").unwrap_or(if full_size() { 3 } else { 1 });
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("temp dir");
    let root = base.path().join("repo");
    let made = Instant::now();
    big_repo(&root, files);
    let root = root.canonicalize().expect("root");
    let cone = vec![component(0)];
    println!(
        "sparse: repository of {files} files made in {:.1} s; cone `{}` (1 of 20 components)",
        made.elapsed().as_secs_f64(),
        cone[0]
    );

    let (mut full_t, mut sparse_t, mut git_t) = (Vec::new(), Vec::new(), Vec::new());
    let (mut full_d, mut sparse_d, mut git_d) = (0, 0, 0);
    let mut sparse_files = 0;
    for run in 0..runs {
        let (t, d, _) = orch_tree(&root, &format!("full{run}"), &[]);
        full_t.push(t);
        full_d = d;
        let (t, d, n) = orch_tree(&root, &format!("sparse{run}"), &cone);
        sparse_t.push(t);
        sparse_d = d;
        sparse_files = n;
        let (t, d) = git_tree(&root, &format!("git{run}"));
        git_t.push(t);
        git_d = d;
    }
    let (full_t, sparse_t, git_t) = (median(full_t), median(sparse_t), median(git_t));
    let mib = |b: u64| b as f64 / 1024.0 / 1024.0;
    println!(
        "  full worktree (orch, libgit2): {:>8.1} ms {:>8.1} MiB",
        full_t.as_secs_f64() * 1e3,
        mib(full_d)
    );
    println!(
        "  git worktree add (yardstick):  {:>8.1} ms {:>8.1} MiB",
        git_t.as_secs_f64() * 1e3,
        mib(git_d)
    );
    println!(
        "  sparse worktree (orch, paths): {:>8.1} ms {:>8.1} MiB, {sparse_files} files",
        sparse_t.as_secs_f64() * 1e3,
        mib(sparse_d)
    );
    let time_ratio = sparse_t.as_secs_f64() / full_t.as_secs_f64();
    let disk_ratio = sparse_d as f64 / full_d as f64;
    println!(
        "  sparse / full: time {:.1}%, disk {:.1}% (target: at most 15% each)",
        time_ratio * 100.0,
        disk_ratio * 100.0
    );
    // One component's files and the root's three.
    let per_component = files.div_ceil(20);
    assert_eq!(
        sparse_files,
        per_component + 3,
        "the sparse worktree's files"
    );
    assert!(disk_ratio <= 0.15, "disk {:.1}%", disk_ratio * 100.0);
    if full_size() {
        assert!(time_ratio <= 0.15, "time {:.1}%", time_ratio * 100.0);
    }
}
