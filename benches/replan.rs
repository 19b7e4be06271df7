//! The cost of live re-planning: a lead's edit of `plans.toml` applied by a running `orch up`,
//! against `orch check` of the same manifest (the check a reload repeats). Plans of `tasks`
//! tasks each; one agent runs (a `sleep`) for the whole measure, the other tasks wait. Two
//! edits, each several times: one plan's priority (a setting), and a task added to a plan file
//! (the plans' structure: graph and frontier made again). The cost of an edit is the time from
//! the write to the run's `manifest_reloaded` event (its `at`), less the 100 ms orch waits for
//! the writes to settle.
//!
//! Run: `cargo bench --bench replan` (sizes 5 × 200, 20 × 100 and 20 × 500 tasks). `cargo test`
//! runs a tiny size and checks that each edit is applied once.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{full_size, git};

/// The quiet window before orch reads an edit (`effects::REPLAN_QUIET`).
const QUIET_MS: f64 = 100.0;

/// A plan of `tasks` tasks in phases of 10, each task after the one before it.
fn plan_text(p: usize, tasks: usize) -> String {
    let mut s = format!("# Plan {p}\n");
    for t in 0..tasks {
        if t % 10 == 0 {
            s.push_str(&format!("\n## Phase {}: Work\n", t / 10 + 1));
        }
        s.push_str(&format!(
            "- [ ] {}.{} Task {t} of plan {p}, with a line of text like a real one\n",
            t / 10 + 1,
            t % 10 + 1
        ));
    }
    s
}

fn manifest(plans: usize, priority_of_p1: i64) -> String {
    let mut m = String::from(
        "[defaults]\nagent = \"sleeper\"\nmax_agents = 1\nstuck_after = \"1h\"\nretries = 0\n\n\
         [agents.sleeper]\ncommand = [\"sleep\", \"600\"]\n",
    );
    for p in 0..plans {
        let priority = if p == 1 { priority_of_p1 } else { 0 };
        m.push_str(&format!(
            "\n[[plan]]\nname = \"p{p}\"\nfile = \"plans/p{p}.md\"\npriority = {priority}\n"
        ));
    }
    m
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One size: `(orch check, a setting's edit, a task added)` medians, in ms.
fn measure(plans: usize, tasks: usize, edits: usize) -> (f64, f64, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(root.join("plans")).expect("mkdir");
    for p in 0..plans {
        std::fs::write(root.join(format!("plans/p{p}.md")), plan_text(p, tasks)).expect("plan");
    }
    std::fs::write(root.join("plans.toml"), manifest(plans, 0)).expect("manifest");
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "bench plans"]);

    let check: Vec<f64> = (0..edits.max(3))
        .map(|_| {
            let t = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_orch"))
                .current_dir(root)
                .args(["check"])
                .output()
                .expect("orch check");
            assert!(out.status.success(), "{out:?}");
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();

    let mut up = Command::new(env!("CARGO_BIN_EXE_orch"))
        .current_dir(root)
        .args(["up", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("orch up");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = up.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |what: &str| -> serde_json::Value {
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("no {what} event"));
            let v: serde_json::Value = serde_json::from_str(&line).expect("json");
            if v["event"] == what {
                return v;
            }
        }
    };
    wait_for("task_started");
    let wait_reload = |written: chrono::DateTime<chrono::Utc>, change: &str| -> f64 {
        let v = wait_for("manifest_reloaded");
        assert!(v["changes"].to_string().contains(change), "{v}");
        let at = chrono::DateTime::parse_from_rfc3339(v["at"].as_str().expect("at"))
            .expect("timestamp")
            .with_timezone(&chrono::Utc);
        (at - written).num_microseconds().expect("small") as f64 / 1000.0 - QUIET_MS
    };
    let (mut reload, mut added) = (Vec::new(), Vec::new());
    let mut p1 = plan_text(1, tasks);
    for k in 1..=edits {
        // A setting: plan p1's priority.
        let priority = i64::try_from(k).expect("small") * 10;
        let written = chrono::Utc::now();
        write_over(root, "plans.toml", &manifest(plans, priority));
        reload.push(wait_reload(
            written,
            &format!("plan p1: priority {} → {priority}", priority - 10),
        ));
        // The plans' structure: a task added at the end of plan p1.
        p1.push_str(&format!("- [ ] 99.{k} Added during the run\n"));
        let written = chrono::Utc::now();
        write_over(root, "plans/p1.md", &p1);
        added.push(wait_reload(written, &format!("plan p1: task 99.{k} added")));
    }
    // SIGTERM: the run stops its agent and ends.
    let _ = Command::new("kill")
        .args(["-TERM", &up.id().to_string()])
        .status();
    let _ = up.wait();
    (median(check), median(reload), median(added))
}

/// Writes `rel` as an editor saves: a new file renamed over the old one.
fn write_over(root: &Path, rel: &str, text: &str) {
    let tmp = root.join(format!("{rel}.new"));
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, root.join(rel)).expect("rename");
}

fn main() {
    let sizes: &[(usize, usize)] = if full_size() {
        &[(5, 200), (20, 100), (20, 500)]
    } else {
        &[(2, 5)]
    };
    let edits = if full_size() { 7 } else { 2 };
    println!(
        "live re-planning: edits of a running orch up's plans (medians of {edits} edits of each kind)"
    );
    println!(
        "  edit -> applied: from the write to the run's manifest_reloaded, less the 100 ms quiet window"
    );
    println!("  plans x tasks   orch check (process)   edit -> applied: a priority   a task added");
    for &(plans, tasks) in sizes {
        let (check, reload, added) = measure(plans, tasks, edits);
        println!("  {plans:>3} x {tasks:<5} {check:>10.1} ms {reload:>24.1} ms {added:>13.1} ms");
    }
}
