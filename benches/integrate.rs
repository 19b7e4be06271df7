//! The integration preview's cost to a run: the same `orch up` (three plans, agents that work a
//! while and commit, `verify` set) with `integrate = "0s"` (a test whenever a plan branch moves:
//! a merge of every branch and `verify` in a staging worktree) and with `integrate = "off"`.
//! Target: the wall time with "0s" at most 1.3x the one with "off".
//!
//! Full size (`cargo bench --bench integrate`, or `cargo test --bench integrate -- --bench` on the
//! debug build): a generated repository of 5,000 files (~20 MB
//! checked out, under /dev/shm when there is one), 3 plans x 4 tasks, agents working 1 s each.
//! `cargo test` runs a tiny size (200 files, 3 plans x 2 tasks, 0.2 s) and checks every task ran
//! and the tests ran; it prints the ratio without holding it to the target.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

mod support;
use support::{big_repo, full_size, git};

struct Size {
    files: usize,
    tasks: usize,
    work_s: &'static str,
}

const FULL: Size = Size {
    files: 5_000,
    tasks: 4,
    work_s: "1",
};
const TINY: Size = Size {
    files: 200,
    tasks: 2,
    work_s: "0.2",
};

const PLANS: [&str; 3] = ["lib", "docs", "app"];

/// The repository with its plans and `verify`; `integrate` as given.
fn setup(dir: &Path, size: &Size, integrate: &str) {
    big_repo(dir, size.files);
    std::fs::write(dir.join("lib.defs"), "def greet\n").expect("write");
    std::fs::write(
        dir.join("verify.sh"),
        "#!/bin/sh\nfor f in *.calls; do [ -f \"$f\" ] || continue; while read -r n; do \
         grep -qx \"def $n\" lib.defs || { echo \"missing: $n\"; exit 1; }; done < \"$f\"; done\n\
         test -d services\n",
    )
    .expect("write");
    std::fs::create_dir_all(dir.join("plans")).expect("mkdir");
    let agent = format!(
        "sleep {}; echo \"$ORCH_TASK\" >> \"$ORCH_PLAN.calls.txt\"; \
         [ \"$ORCH_PLAN\" = app ] && echo greet > app.calls; exit 0",
        size.work_s
    );
    let mut manifest = format!(
        "[defaults]\nagent = \"worker\"\nretries = 0\nverify = [\"sh\", \"verify.sh\"]\n\
         integrate = \"{integrate}\"\n\n[agents.worker]\ncommand = [\"sh\", \"-c\", {agent:?}]\n\
         report = \"exit\"\n"
    );
    for name in PLANS {
        let mut plan = format!("# {name}\n\n## Phase 1: Work\n");
        for t in 1..=size.tasks {
            plan.push_str(&format!("- [ ] 1.{t} Step {t}\n"));
        }
        std::fs::write(dir.join(format!("plans/{name}.md")), plan).expect("write");
        manifest.push_str(&format!(
            "\n[[plan]]\nname = \"{name}\"\nfile = \"plans/{name}.md\"\n"
        ));
    }
    std::fs::write(dir.join("plans.toml"), manifest).expect("write");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "plans"]);
}

/// One `orch up`: its wall time (s) and stdout.
fn run(dir: &Path) -> (f64, String) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_orch"))
        .current_dir(dir)
        .args(["up", "--json"])
        .stdin(Stdio::null())
        .output()
        .expect("orch up");
    let wall = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "orch up failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (wall, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn main() {
    let full = full_size();
    let size = if full { &FULL } else { &TINY };
    let shm = Path::new("/dev/shm");
    let tmp = || {
        if full && shm.is_dir() {
            tempfile::tempdir_in(shm).expect("tempdir")
        } else {
            tempfile::tempdir().expect("tempdir")
        }
    };
    println!(
        "orch up with integrate = \"0s\" vs \"off\": {} files, {} plans x {} tasks, agents work {} s",
        size.files,
        PLANS.len(),
        size.tasks,
        size.work_s
    );
    let mut walls = Vec::new();
    for integrate in ["off", "0s"] {
        let dir = tmp();
        setup(dir.path(), size, integrate);
        let (wall, out) = run(dir.path());
        let finished = out.matches("\"task_finished\"").count();
        assert_eq!(finished, PLANS.len() * size.tasks, "{integrate}: {out}");
        let report = crate_report(dir.path());
        match integrate {
            "off" => assert!(report.is_none(), "no test with integrate = off"),
            _ => {
                let r = report.expect("a test ran");
                assert_eq!(r["failure"], serde_json::Value::Null, "{r}");
                assert_eq!(r["tested"].as_array().map(Vec::len), Some(PLANS.len()));
            }
        }
        assert!(
            !out.contains("\"integration_failed\""),
            "the plans fit: {out}"
        );
        println!("  integrate = {integrate:>4}: {wall:.2} s");
        walls.push(wall);
    }
    let ratio = walls[1] / walls[0];
    println!("  ratio 0s / off: {ratio:.3} (target <= 1.3)");
    if full {
        assert!(ratio <= 1.3, "the preview costs the run {ratio:.3}x");
    }
}

/// `<state_dir>/integration.json`, if a test ran.
fn crate_report(dir: &Path) -> Option<serde_json::Value> {
    let bytes = std::fs::read(dir.join(".orch/state/.integration.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}
