//! The snapshot read from real files in a temp dir.

use std::io::Write;

use super::*;
use crate::supervisor::event_log::EVENTS_FILE;
use crate::workspace::{self, Selection};

/// A manifest with one plan, and its state directory.
fn source(dir: &Path) -> Source {
    std::fs::create_dir_all(dir.join("docs")).expect("mkdir");
    std::fs::write(
        dir.join("docs/a.md"),
        "# A\n\n## Phase 1: One\n- [ ] 1.1 First\n",
    )
    .expect("plan");
    std::fs::write(
        dir.join("plans.toml"),
        "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n",
    )
    .expect("manifest");
    std::fs::create_dir_all(dir.join(".orch/state")).expect("state dir");
    let sel = Selection {
        manifest: Some(dir.join("plans.toml")),
        plan: None,
    };
    match workspace::load(&sel) {
        Ok(ws) => Source::new(ws),
        Err(e) => panic!("load: {e}"),
    }
}

/// Appends `events` (JSON objects without `at`) to the event log, stamped `at`.
fn append(dir: &Path, at: &str, events: &[Value]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(".orch/state").join(EVENTS_FILE))
        .expect("open");
    for e in events {
        let mut e = e.clone();
        e["at"] = Value::from(at);
        writeln!(f, "{e}").expect("write");
    }
}

#[test]
fn the_header_has_the_last_reload_of_the_current_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::path::absolute(tmp.path()).expect("absolute");
    let mut src = source(&dir);
    let at = "2026-11-23T10:00:00.000Z";
    let hms = local_time(at);
    assert_eq!(hms.len(), 8, "{hms}");
    let invalid = serde_json::json!({
        "event": "manifest_invalid",
        "file": dir.join("plans.toml"),
        "errors": ["plans.toml:7:1: error: unknown key `nmae`\n  hint: the keys are name, file"],
    });
    let reloaded = serde_json::json!({
        "event": "manifest_reloaded",
        "files": [dir.join("plans.toml")],
        "changes": ["max_agents 1 → 3", "plan c: added"],
    });
    let started = serde_json::json!({"event": "run_started", "plans": ["a"], "max_agents": 1});
    // A reload of an earlier run is not this run's.
    append(&dir, at, &[reloaded.clone(), started.clone()]);
    assert_eq!(src.read(Utc::now()).reload, None);
    append(&dir, at, std::slice::from_ref(&invalid));
    let snap = src.read(Utc::now());
    assert_eq!(
        snap.reload,
        Some((
            true,
            format!("plans.toml invalid since {hms}: plans.toml:7:1: error: unknown key `nmae`")
        ))
    );
    assert_eq!(
        snap.events.last().map(String::as_str),
        Some(format!("{hms} manifest_invalid plans.toml:7:1: error: unknown key `nmae`").as_str())
    );
    // A good reload after the invalid edit: the reload shows.
    append(&dir, at, std::slice::from_ref(&reloaded));
    let snap = src.read(Utc::now());
    assert_eq!(
        snap.reload,
        Some((
            false,
            format!("reloaded {hms}: max_agents 1 → 3; plan c: added")
        ))
    );
    assert_eq!(
        snap.events.last().map(String::as_str),
        Some(format!("{hms} manifest_reloaded max_agents 1 → 3; plan c: added").as_str())
    );
    // Read afresh (as `orch top` started now), the same.
    let mut again = source(&dir);
    assert_eq!(again.read(Utc::now()).reload, snap.reload);
    // A new run has had none.
    append(&dir, at, &[started]);
    assert_eq!(src.read(Utc::now()).reload, None);
}

/// Best of N: a running task whose round has attempt logs shows one row per attempt of the
/// current round, running and finished, with each attempt's number and log.
#[test]
fn a_best_of_n_task_shows_its_attempts_side_by_side() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::path::absolute(tmp.path()).expect("absolute");
    let mut src = source(&dir);
    let lp = &src.ws.plans[0];
    crate::status::update(
        &lp.status_path,
        &lp.plan,
        &lp.rel_path,
        &lp.name,
        |doc, _| {
            crate::status::apply(
                doc,
                "1.1",
                crate::status::Transition::Start,
                &Default::default(),
                Utc::now(),
            )
            .map(|_| ())
        },
    )
    .expect("started");
    let logs = dir.join(".orch/logs/a");
    std::fs::create_dir_all(&logs).expect("logs");
    std::fs::write(
        logs.join("1.1.a1.log"),
        "=== orch: attempt 1 started at 2026-11-25T10:00:00Z: agent ===\nworking on it\n",
    )
    .expect("log 1");
    std::fs::write(
        logs.join("1.1.a2.log"),
        "=== orch: attempt 2 started at 2026-11-25T10:00:00Z: agent ===\n\
         === orch: attempt 2 ended at 2026-11-25T10:00:01Z: exit status 1 ===\n",
    )
    .expect("log 2");
    let snap = src.read(Utc::now());
    let rows: Vec<(u32, String)> = snap
        .running
        .iter()
        .map(|r| (r.attempt, r.last_line.clone()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (1, "working on it".to_string()),
            (2, "attempt 2 ended: exit status 1".to_string())
        ]
    );
    assert!(snap.running.iter().all(|r| r.id == "1.1"));
    assert!(snap.running[1].log.ends_with("1.1.a2.log"));
}

/// A plan whose pull request is under review shows its round, open threads and checks, the
/// forge's names escaped; a change of the loop's record is seen at the next read.
#[test]
fn a_pull_request_under_review_is_on_its_plan_row_escaped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::path::absolute(tmp.path()).expect("absolute");
    let mut src = source(&dir);
    assert_eq!(src.read(Utc::now()).plans[0].review, "");
    let record = src.ws.plans[0].status_path.with_file_name("review.json");
    std::fs::create_dir_all(record.parent().expect("parent")).expect("mkdir");
    let st = crate::review::state::PrState {
        number: 7,
        round: 2,
        open_threads: 1,
        last_checks: vec!["ci\u{1b}[2J: failure".into(), "lint: success".into()],
        ..Default::default()
    };
    crate::review::state::save(&record, &st).expect("save");
    assert!(src.changed(), "the record is watched");
    let row = &src.read(Utc::now()).plans[0];
    assert_eq!(
        row.review,
        "PR #7, round 2 of 3, 1 open thread, checks: ci\\u{1b}[2J: failure, lint: success"
    );
    assert!(!row.review.contains('\u{1b}'));
}
