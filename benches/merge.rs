//! `orch merge` against a `git merge --no-ff` loop doing the same work: a repository of 5,000
//! files and 50 finished plan branches, each changing a few files of its own (3 task commits: one
//! file modified, one added, one modified again), no verify command. Both run on the main work
//! tree with `main` checked out, so both update the work tree and the index; the results must
//! have the same tree. Prints the time per step of each (median of the runs).
//!
//! Run: `cargo bench --bench merge` (`cargo test` runs a tiny size and checks it; add `-- --runs 5` for more runs; `-- --setup-only DIR` only
//! builds the repository in DIR, for profiling `orch merge` there).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use chrono::Utc;
use git2::{Index, IndexEntry, IndexTime, Oid, Repository, Signature};
use orch::status::{self, Transition, TransitionOptions};

mod support;
use support::full_size;

/// The repository's size: the bench's under `cargo bench`; a tiny one under `cargo test`, which
/// checks that orch and git still merge to the same tree.
struct Size {
    files: usize,
    dirs: usize,
    plans: usize,
}

fn size() -> &'static Size {
    static SIZE: OnceLock<Size> = OnceLock::new();
    SIZE.get_or_init(|| {
        if full_size() {
            Size {
                files: 5_000,
                dirs: 100,
                plans: 50,
            }
        } else {
            Size {
                files: 60,
                dirs: 6,
                plans: 4,
            }
        }
    })
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

fn git_out(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn file_path(i: usize) -> String {
    format!("src/d{:03}/f{:04}.txt", i % size().dirs, i)
}

fn entry(path: &str, id: Oid, len: usize) -> IndexEntry {
    IndexEntry {
        ctime: IndexTime::new(0, 0),
        mtime: IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode: 0o100644,
        uid: 0,
        gid: 0,
        file_size: u32::try_from(len).expect("small"),
        id,
        flags: 0,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}

/// A commit on top of `parent` with `files` written (in memory: no work tree involved).
fn commit(repo: &Repository, parent: Oid, files: &[(String, String)], message: &str) -> Oid {
    let parent = repo.find_commit(parent).expect("parent");
    let mut index = Index::new().expect("index");
    index
        .read_tree(&parent.tree().expect("tree"))
        .expect("read");
    for (path, text) in files {
        let blob = repo.blob(text.as_bytes()).expect("blob");
        index.add(&entry(path, blob, text.len())).expect("add");
    }
    let tree = repo
        .find_tree(index.write_tree_to(repo).expect("write tree"))
        .expect("tree");
    let sig = Signature::now("bench", "bench@localhost").expect("sig");
    repo.commit(None, &sig, &sig, message, &tree, &[&parent])
        .expect("commit")
}

/// The repository: 5,000 files on `main`, 50 plans in plans.toml, a branch `plan/pNN` per plan
/// with three task commits, and a status file recording every task completed.
fn setup(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.name", "bench"]);
    git(dir, &["config", "user.email", "bench@localhost"]);
    for i in 0..size().files {
        let p = dir.join(file_path(i));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, format!("file {i}\nline 2\nline 3\n")).expect("write");
    }
    std::fs::create_dir_all(dir.join("plans")).expect("mkdir");
    let mut manifest =
        String::from("[defaults]\nagent = \"none\"\n\n[agents.none]\ncommand = [\"true\"]\n");
    for p in 0..size().plans {
        std::fs::write(
            dir.join(format!("plans/p{p:02}.md")),
            format!(
                "# Plan {p}\n\n## Phase 1: Work\n- [ ] 1.1 Change a file\n- [ ] 1.2 Add a file\n- [ ] 1.3 Change it again\n"
            ),
        )
        .expect("write");
        manifest.push_str(&format!(
            "\n[[plan]]\nname = \"p{p:02}\"\nfile = \"plans/p{p:02}.md\"\n"
        ));
    }
    std::fs::write(dir.join("plans.toml"), manifest).expect("write");
    std::fs::write(dir.join(".gitignore"), "/.orch/\n").expect("write");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "files and plans"]);

    let repo = Repository::open(dir).expect("open");
    let base = repo.head().expect("head").target().expect("oid");
    for p in 0..size().plans {
        // Each plan owns the files i ≡ p (mod the number of plans): distinct from every other plan's.
        let own = file_path(p);
        let own2 = file_path(p + size().plans);
        let added = format!("plans-out/p{p:02}/new.txt");
        let c1 = commit(
            &repo,
            base,
            &[(
                own.clone(),
                format!("file {p}\nchanged by plan {p}\nline 3\n"),
            )],
            &format!("p{p:02} 1.1: Change a file"),
        );
        let c2 = commit(
            &repo,
            c1,
            &[(added, format!("added by plan {p}\n"))],
            &format!("p{p:02} 1.2: Add a file"),
        );
        let c3 = commit(
            &repo,
            c2,
            &[(
                own2,
                format!("file {}\nline 2\nchanged by plan {p}\n", p + size().plans),
            )],
            &format!("p{p:02} 1.3: Change it again"),
        );
        let tip = repo.find_commit(c3).expect("tip");
        repo.branch(&format!("plan/p{p:02}"), &tip, false)
            .expect("branch");

        let name = format!("p{p:02}");
        let rel = format!("plans/{name}.md");
        let plan = orch::plan::parse_file(&dir.join(&rel)).expect("plan");
        let status_path = dir.join(".orch/state").join(&name).join("status.json");
        status::update(&status_path, &plan, &rel, &name, |doc, _| {
            for (id, c) in [("1.1", c1), ("1.2", c2), ("1.3", c3)] {
                let opts = TransitionOptions {
                    commit: Some(c.to_string()),
                    ..TransitionOptions::default()
                };
                status::apply(doc, id, Transition::Done, &opts, Utc::now())?;
            }
            Ok(())
        })
        .expect("status");
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (files, plans) = (size().files, size().plans);
    let runs: usize = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(if full_size() { 3 } else { 1 });
    if let Some(dir) = std::env::args().skip_while(|a| a != "--setup-only").nth(1) {
        let dir = Path::new(&dir);
        std::fs::create_dir_all(dir).expect("mkdir");
        setup(dir);
        return;
    }
    let orch = env!("CARGO_BIN_EXE_orch");
    let (mut orch_ms, mut dry_ms, mut git_ms) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("orch");
        let copy = tmp.path().join("git");
        std::fs::create_dir_all(&dir).expect("mkdir");
        setup(&dir);
        let ok = Command::new("cp")
            .args(["-a"])
            .arg(&dir)
            .arg(&copy)
            .status()
            .expect("cp")
            .success();
        assert!(ok, "cp -a");
        // The copy has new inode numbers: let git refresh its index once, outside the timing.
        git(&copy, &["update-index", "-q", "--refresh"]);

        let start = Instant::now();
        let out = Command::new(orch)
            .current_dir(&dir)
            .args(["merge", "--dry-run", "--json"])
            .output()
            .expect("orch merge --dry-run");
        dry_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        let start = Instant::now();
        let out = Command::new(orch)
            .current_dir(&dir)
            .args(["merge", "--json"])
            .output()
            .expect("orch merge");
        let orch_total = start.elapsed().as_secs_f64() * 1000.0;
        assert!(
            out.status.success(),
            "orch merge failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let merged = v["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter(|s| s["result"] == "merged")
            .count();
        assert_eq!(merged, plans, "{v}");

        let start = Instant::now();
        for p in 0..plans {
            git(
                &copy,
                &[
                    "merge",
                    "--no-ff",
                    "-q",
                    "-m",
                    &format!("Merge plan p{p:02}"),
                    &format!("plan/p{p:02}"),
                ],
            );
        }
        let git_total = start.elapsed().as_secs_f64() * 1000.0;

        assert_eq!(
            git_out(&dir, &["rev-parse", "main^{tree}"]),
            git_out(&copy, &["rev-parse", "main^{tree}"]),
            "orch and git merged to different trees"
        );
        assert_eq!(git_out(&dir, &["status", "--porcelain"]), "");
        println!(
            "run {}: orch merge {:.0} ms ({:.1} ms/step), git merge --no-ff loop {:.0} ms ({:.1} ms/step)",
            run + 1,
            orch_total,
            orch_total / plans as f64,
            git_total,
            git_total / plans as f64
        );
        orch_ms.push(orch_total);
        git_ms.push(git_total);
    }
    let n = plans as f64;
    let (o, g, d) = (median(orch_ms), median(git_ms), median(dry_ms));
    println!(
        "{files} files, {plans} plans of 3 commits each, median of {runs} run(s):\n  \
         orch merge:             {o:.0} ms in all, {:.1} ms per step\n  \
         git merge --no-ff loop: {g:.0} ms in all, {:.1} ms per step\n  \
         orch merge --dry-run:   {d:.0} ms in all, {:.1} ms per step",
        o / n,
        g / n,
        d / n
    );
}
