//! Concurrent writers while the supervisor runs: 100 `orch task done|skip` processes at once on
//! tasks of a plan that `orch up` is working on, and a reader parsing the status file the whole
//! time. No outcome may be lost, the supervisor's own records must stay intact, and no read may
//! see a torn file.

use crate::support;

use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Repo, agent, task_in as task, wait_until as wait};

const TIMEOUT: Duration = Duration::from_secs(90);
const WRITERS: usize = 100;
/// Tasks of phase 1, run by the supervisor's agent; the last waits for the writers to finish.
const OWN: [&str; 5] = ["1.1", "1.2", "1.3", "1.4", "1.5"];

#[test]
fn a_hundred_concurrent_task_writers_lose_nothing_while_orch_up_runs() {
    // During `orch up` a person's `orch task done` of a task without a check is taken only
    // where the plan's agents are confined (no agent could have sent it).
    if !orch::sandbox::supported() {
        eprintln!("skipped: this kernel does not support Landlock");
        return;
    }
    let repo = Repo::builder().empty().build();
    let root = repo.root();
    let journal = repo.outside("journal");
    let gate = repo.outside("gate");

    let mut plan = String::from("# W\n\n## Phase 1: Supervised\n");
    for id in OWN {
        plan.push_str(&format!("- [ ] {id} Supervised task {id}\n"));
    }
    plan.push_str("\n## Phase 2: Written from outside\n");
    for n in 1..=WRITERS {
        plan.push_str(&format!("- [ ] 2.{n} Outside task {n}\n"));
    }
    std::fs::create_dir_all(root.join("docs/plans")).expect("mkdir");
    std::fs::write(root.join("docs/plans/w.md"), plan).expect("plan");
    let command = agent(
        "gated_report.sh",
        &[
            &journal.display().to_string(),
            "0.4",
            OWN[OWN.len() - 1],
            &gate.display().to_string(),
        ],
    );
    std::fs::write(
        root.join("plans.toml"),
        format!(
            "[defaults]\nagent = \"gated\"\nparallel = 2\nretries = 0\n\n[agents.gated]\ncommand = {command}\n\n\
             sandbox = \"on\"\nsandbox_write = [{:?}]\n\n\
             [[plan]]\nname = \"w\"\nfile = \"docs/plans/w.md\"\n",
            repo.home().display().to_string()
        ),
    )
    .expect("manifest");
    repo.commit_all("plans");

    let deadline = Instant::now() + TIMEOUT;
    let events = repo.outside("events.jsonl");
    let up = repo
        .orch(&["up", "--json"])
        .stdout(std::fs::File::create(&events).expect("events file"))
        .spawn()
        .expect("spawn orch up");
    let status_path = root.join(".orch/state/w/status.json");
    while !(journal.exists() && status_path.exists()) {
        assert!(Instant::now() < deadline, "orch up started no agent");
        std::thread::sleep(Duration::from_millis(10));
    }

    // The reader: parses the status file as often as it can until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (stop, reads, path) = (Arc::clone(&stop), Arc::clone(&reads), status_path.clone());
        std::thread::spawn(move || {
            let mut torn = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let text = std::fs::read_to_string(&path).expect("status file vanished");
                if let Err(e) = serde_json::from_str::<Value>(&text) {
                    torn.push(format!("{e}: {text}"));
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
            torn
        })
    };

    // The writers: all launched at once, even tasks done, odd ones skipped, each with its note.
    let started = Instant::now();
    let writers: Vec<(String, String, Child)> = (1..=WRITERS)
        .map(|n| {
            let id = format!("2.{n}");
            let note = format!("writer {n} of {WRITERS}, token {:x}", n * 7919);
            let args: Vec<&str> = if n % 2 == 0 {
                vec!["task", "done", &id, "--plan", "w", "--note", &note]
            } else {
                vec!["task", "skip", &id, "--plan", "w", "--reason", &note]
            };
            let child = repo.orch(&args).spawn().expect("writer");
            (id, note, child)
        })
        .collect();
    let mut notes = Vec::new();
    for (id, note, child) in writers {
        let out = wait(child, deadline, &format!("orch task … {id}"));
        assert_eq!(
            out.status.code(),
            Some(0),
            "writer of {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        notes.push((id, note));
    }
    let write_time = started.elapsed();

    // Let the supervisor finish its last task, then wait for it.
    std::fs::write(&gate, "go").expect("gate");
    let out = wait(up, deadline, "orch up");
    stop.store(true, Ordering::Relaxed);
    let torn = reader.join().expect("reader");
    assert_eq!(
        out.status.code(),
        Some(0),
        "orch up failed\nstderr:\n{}\nevents:\n{}\nstatus:\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&events).unwrap_or_default(),
        std::fs::read_to_string(&status_path).unwrap_or_default()
    );
    let reads = reads.load(Ordering::Relaxed);
    println!(
        "writers: {WRITERS} concurrent outcomes in {write_time:.1?}, {} supervised tasks, {reads} reads, {} torn",
        OWN.len(),
        torn.len()
    );
    assert!(torn.is_empty(), "torn reads: {torn:?}");
    assert!(reads > 0);

    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&status_path).expect("status file"))
            .expect("status json");
    for (n, (id, note)) in notes.iter().enumerate() {
        let t = task(&doc, id);
        if (n + 1) % 2 == 0 {
            assert_eq!(t["status"], "completed", "{t}");
            assert_eq!(t["notes"], note.as_str(), "{t}");
        } else {
            assert_eq!(t["status"], "skipped", "{t}");
            assert_eq!(t["skipReason"], note.as_str(), "{t}");
        }
    }
    for id in OWN {
        let t = task(&doc, id);
        assert_eq!(t["status"], "completed", "{t}");
        assert_eq!(t["notes"], format!("supervised {id}"), "{t}");
        assert!(t["commit"].is_string(), "{t}");
    }
    // The supervisor's agents ran only its own tasks.
    let ran = std::fs::read_to_string(&journal).expect("journal");
    let started: Vec<&str> = ran
        .lines()
        .filter(|l| l.starts_with("start "))
        .map(|l| l.split_whitespace().nth(2).expect("task"))
        .collect();
    let mut sorted = started.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, OWN, "{ran}");
}
