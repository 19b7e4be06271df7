//! Plans built by hand for the tests of this module (the real parser is not needed).

use std::path::PathBuf;

use crate::plan::{Phase, Plan, Priority, SequentialGroup, Task, TaskKind};

pub(crate) fn task(id: &str, phase: u32, description: &str, depends: &[&str]) -> Task {
    Task {
        id: id.to_string(),
        kind: TaskKind::Task,
        phase,
        description: description.to_string(),
        body: String::new(),
        done: false,
        depends: (!depends.is_empty()).then(|| depends.iter().map(|d| d.to_string()).collect()),
        priority: Priority::Normal,
        estimate_s: None,
        files: Vec::new(),
        line: 1,
        blocking: false,
        speckit: None,
    }
}

pub(crate) fn verify(phase: u32, description: &str, blocking: bool) -> Task {
    Task {
        kind: TaskKind::Verify,
        blocking,
        ..task(&format!("V{phase}"), phase, description, &[])
    }
}

pub(crate) fn phase(number: u32, title: &str) -> Phase {
    Phase {
        number,
        title: title.to_string(),
        line: 1,
        pipeline_start: None,
    }
}

pub(crate) fn plan(title: &str, phases: Vec<Phase>, tasks: Vec<Task>) -> Plan {
    Plan {
        path: PathBuf::from("docs/plans/demo.md"),
        title: title.to_string(),
        phases,
        tasks,
        sequential: Vec::new(),
        parallel: Vec::new(),
        diagnostics: Vec::new(),
    }
}

/// Two phases: 1.1, 1.2 (depends 1.1), V1 (blocking), 2.1 (depends 1.2), 2.2 [x];
/// 1.1 and 1.2 form a `[SEQUENTIAL]` group.
pub(crate) fn small_plan() -> Plan {
    let mut done = task("2.2", 2, "Write docs", &[]);
    done.done = true;
    let mut p = plan(
        "Demo Plan",
        vec![phase(1, "Setup"), phase(2, "Build")],
        vec![
            task("1.1", 1, "Create skeleton", &[]),
            task("1.2", 1, "Add config", &["1.1"]),
            verify(1, "skeleton builds", true),
            task("2.1", 2, "Build feature", &["1.2"]),
            done,
        ],
    );
    p.sequential.push(SequentialGroup {
        label: "1.1-1.2".to_string(),
        tasks: vec!["1.1".to_string(), "1.2".to_string()],
        reason: "both edit Cargo.toml".to_string(),
        line: 3,
    });
    p
}

/// One phase with `n` independent tasks `1.1` … `1.n`.
pub(crate) fn wide_plan(n: usize) -> Plan {
    plan(
        "Wide",
        vec![phase(1, "All")],
        (1..=n)
            .map(|i| task(&format!("1.{i}"), 1, &format!("Task number {i}"), &[]))
            .collect(),
    )
}

/// The bytes orch writes for `doc`: pretty-printed JSON and a final newline.
pub(crate) fn printed(doc: &crate::status::StatusDoc) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(doc).expect("json");
    b.push(b'\n');
    b
}

/// The tests' clock: 2026-03-01 12:00:00 UTC plus `secs` seconds.
pub(crate) fn at(secs: i64) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc
        .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("valid date")
        + chrono::Duration::seconds(secs)
}
