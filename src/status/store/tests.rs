use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::*;
use crate::exit::Coded;
use crate::status::test_support::{small_plan, wide_plan};
use crate::status::{TaskStatus, Transition, TransitionOptions, apply};

fn done(
    id: &'static str,
) -> impl FnOnce(&mut StatusDoc, &ReconcileReport) -> Result<(), StatusError> {
    move |doc, _| {
        apply(
            doc,
            id,
            Transition::Done,
            &TransitionOptions::default(),
            Utc::now(),
        )
        .map(|_| ())
    }
}

/// The supervisor's records (a commit on a completed task, a start, a failure), made on one
/// entry through [`update_entry_if_current`], write the whole document in orch's form with the
/// derived fields refreshed, from a file in orch's layout or in another one (compact JSON); a
/// stale digest changes nothing; a file written by someone else meanwhile is read again, by a
/// writer that knows the file as it last wrote it ([`Known`]) too.
#[test]
fn changing_one_entry_writes_the_whole_document() {
    let plan = small_plan();
    let stamp = "2026-03-01T12:00:00.000Z".to_string();
    for (compact, knows) in [(false, false), (true, false), (false, true), (true, true)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("status.json");
        let known = Known::default();
        let at = (path.as_path(), knows.then_some(&known));
        update_with_digest(at, &plan, Some("d1"), "p.md", "demo", done("1.1"))
            .expect("first write");
        if compact {
            let doc = load(&path).expect("load").expect("doc");
            fs::write(&path, serde_json::to_vec(&doc).expect("json")).expect("write");
        }
        let commit = |doc: &mut StatusDoc| {
            let e = doc.entry_mut("1.1").expect("entry");
            e.commit = Some("c0ffee".into());
            doc.last_updated_at = Some(stamp.clone());
            Ok(7)
        };
        let mut expected = load(&path).expect("load").expect("doc");
        commit(&mut expected).expect("commit");
        crate::status::refresh_derived(&mut expected);
        let got =
            update_entry_if_current(at, "d1", "p.md", "demo", &["1.1"], commit).expect("update");
        assert_eq!(got, Some(7));
        assert_eq!(
            fs::read(&path).expect("read"),
            to_bytes(&path, &expected).expect("bytes"),
            "compact: {compact}"
        );
        let before = fs::read(&path).expect("read");
        let stale = update_entry_if_current(at, "d2", "p.md", "demo", &["1.1"], |doc| {
            apply(
                doc,
                "1.1",
                Transition::Reset,
                &TransitionOptions::default(),
                Utc::now(),
            )
        })
        .expect("stale");
        assert!(stale.is_none());
        assert_eq!(
            fs::read(&path).expect("read"),
            before,
            "a stale digest writes nothing"
        );
        // Written by someone else meanwhile: that version is the one changed.
        update_with_digest(
            (&path, None),
            &plan,
            Some("d1"),
            "p.md",
            "demo",
            done("1.2"),
        )
        .expect("another write");
        let recommit = |doc: &mut StatusDoc| {
            let e = doc.entry_mut("1.1").expect("entry");
            e.commit = Some("beef".into());
            doc.last_updated_at = Some(stamp.clone());
            Ok(8)
        };
        let mut expected = load(&path).expect("load").expect("doc");
        recommit(&mut expected).expect("commit");
        crate::status::refresh_derived(&mut expected);
        let got =
            update_entry_if_current(at, "d1", "p.md", "demo", &["1.1"], recommit).expect("update");
        assert_eq!(got, Some(8));
        assert_eq!(
            fs::read(&path).expect("read"),
            to_bytes(&path, &expected).expect("bytes"),
            "compact: {compact}"
        );
        assert_eq!(
            load(&path)
                .expect("load")
                .expect("doc")
                .entry("1.2")
                .expect("1.2")
                .status,
            TaskStatus::Completed,
            "the other write stays"
        );
        if knows {
            // What the writer keeps is what a read of its bytes gives.
            let bytes = fs::read(&path).expect("read");
            let (kept, written) = known.doc_of(&bytes).expect("the file as last written");
            assert!(written);
            assert_eq!(*kept, parse_doc(&path, &bytes).expect("parse"));
            assert!(known.doc_of(b"{}").is_none(), "other bytes are parsed");
        }
    }
}

/// Two writes of the same size, one right after the other (within one tick of the file
/// system's clock), have different stamps: each renames a new file into place.
#[test]
fn a_rewrite_of_the_same_size_changes_the_stamp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("status.json");
    assert_eq!(FileStamp::of(&path), None);
    write_bytes_atomic(&path, b"{\"a\": 1}\n").expect("write");
    let first = FileStamp::of(&path).expect("stamp");
    assert_eq!(
        FileStamp::of(&path),
        Some(first),
        "unchanged file, same stamp"
    );
    write_bytes_atomic(&path, b"{\"a\": 2}\n").expect("write");
    let second = FileStamp::of(&path).expect("stamp");
    assert_ne!(first, second);
}

#[test]
fn load_of_a_missing_file_is_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(
        load(&dir.path().join("status.json"))
            .expect("loads")
            .is_none()
    );
}

#[test]
fn update_creates_directory_file_and_lock_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state/demo/status.json");
    let plan = small_plan();
    let ((), report) =
        update(&path, &plan, "docs/plans/demo.md", "demo", done("1.1")).expect("update");
    assert!(!report.changed, "a fresh document needs no reconciling");
    let doc = load(&path).expect("loads").expect("exists");
    assert_eq!(doc.entry("1.1").expect("1.1").status, TaskStatus::Completed);
    assert_eq!(doc.orch_plan, "demo");
    // The lock is taken in orch's private root, never beside the file (an agent could hold it).
    assert!(!path.with_file_name("status.json.lock").exists());
    let names: Vec<String> = fs::read_dir(path.parent().expect("parent"))
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains(".tmp-")),
        "no temp left: {names:?}"
    );
}

#[test]
fn failing_closure_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("status.json");
    let plan = small_plan();
    update(&path, &plan, "p.md", "demo", done("1.1")).expect("first");
    let before = fs::read(&path).expect("read");
    let r = update(&path, &plan, "p.md", "demo", |doc, _| {
        apply(
            doc,
            "1.2",
            Transition::Done,
            &TransitionOptions::default(),
            Utc::now(),
        )?;
        apply(
            doc,
            "9.9",
            Transition::Done,
            &TransitionOptions::default(),
            Utc::now(),
        )
    });
    assert!(matches!(r, Err(StatusError::UnknownTask { .. })));
    assert_eq!(fs::read(&path).expect("read"), before);

    // A missing file stays missing when the closure fails.
    let other = dir.path().join("other/status.json");
    let r = update(&other, &plan, "p.md", "demo", done("9.9"));
    assert!(r.is_err());
    assert!(!other.exists());
}

#[test]
fn corrupt_file_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("status.json");
    let text = "{\n  \"planPath\": \"p.md\",\n  \"tasks\": [,]\n}\n";
    fs::write(&path, text).expect("write");
    match load(&path) {
        Err(e @ StatusError::Corrupt { .. }) => {
            let StatusError::Corrupt { line, column, .. } = &e else {
                unreachable!()
            };
            assert_eq!((*line, *column), (3, 13));
            assert!(
                e.to_string().starts_with(&format!(
                    "status file `{}` is corrupt at line 3 column 13: not valid JSON",
                    path.display()
                )),
                "{e}"
            );
            assert_eq!(e.exit_code(), crate::exit::STATE);
            assert!(e.hint().is_some());
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let plan = small_plan();
    let r = update(&path, &plan, "p.md", "demo", done("1.1"));
    assert!(matches!(r, Err(StatusError::Corrupt { .. })));
    assert!(matches!(
        view(&path, &plan, "p.md", "demo"),
        Err(StatusError::Corrupt { .. })
    ));
    assert_eq!(
        fs::read_to_string(&path).expect("read"),
        text,
        "byte for byte"
    );

    // Valid JSON of the wrong shape is corrupt too.
    fs::write(&path, "{\"planPath\": \"p.md\"}").expect("write");
    match load(&path) {
        Err(StatusError::Corrupt { message, .. }) => {
            assert!(
                message.starts_with("not a status file: missing field"),
                "{message}"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn newer_schema_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("status.json");
    let plan = small_plan();
    let mut doc = StatusDoc::new(&plan, "p.md", "demo", Utc::now());
    doc.orch_schema_version = 99;
    fs::write(&path, serde_json::to_vec(&doc).expect("json")).expect("write");
    assert!(matches!(
        load(&path),
        Err(StatusError::UnsupportedVersion { found: 99, .. })
    ));
}

#[test]
fn rebuild_keeps_the_corrupt_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("status.json");
    fs::write(&path, "not json").expect("write");
    let plan = small_plan();
    let (doc, backup) = rebuild(&path, &plan, "p.md", "demo").expect("rebuild");
    let backup = backup.expect("moved aside");
    let name = backup
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with("status.json.corrupt-"), "{name}");
    assert_eq!(fs::read_to_string(&backup).expect("backup"), "not json");
    assert_eq!(load(&path).expect("loads"), Some(doc.clone()));
    assert_eq!(doc.entry("2.2").expect("2.2").status, TaskStatus::Completed);
    // Rebuilding twice keeps both copies.
    let (_, second) = rebuild(&path, &plan, "p.md", "demo").expect("again");
    assert_ne!(second.expect("moved aside"), backup);
    // Without an existing file there is nothing to move.
    let fresh = dir.path().join("new/status.json");
    let (_, none) = rebuild(&fresh, &plan, "p.md", "demo").expect("fresh");
    assert!(none.is_none());
    assert!(fresh.exists());
}

#[test]
fn view_reconciles_without_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("status.json");
    let plan = small_plan();
    let (doc, _) = view(&path, &plan, "p.md", "demo").expect("view");
    assert_eq!(doc.tasks.len(), 4);
    assert!(!path.exists(), "view writes nothing");
    assert!(!lock_path(&path).exists(), "view takes no lock");

    update(&path, &plan, "p.md", "demo", done("1.1")).expect("update");
    let before = fs::read(&path).expect("read");
    let mut shorter = plan.clone();
    shorter.tasks.retain(|t| t.id != "2.1");
    let (doc, report) = view(&path, &shorter, "p.md", "demo").expect("view");
    assert_eq!(report.removed, [("2.1".to_string(), TaskStatus::Pending)]);
    assert!(doc.entry("2.1").is_none());
    assert_eq!(fs::read(&path).expect("read"), before);

    // update writes the reconciled document.
    let ((), report) = update(&path, &shorter, "p.md", "demo", |_, _| Ok(())).expect("update");
    assert!(report.changed);
    assert!(
        load(&path)
            .expect("load")
            .expect("doc")
            .entry("2.1")
            .is_none()
    );
}

#[test]
fn fifty_concurrent_updates_lose_nothing_and_readers_never_see_a_torn_file() {
    const N: usize = 50;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = Arc::new(dir.path().join("state/status.json"));
    let plan = Arc::new(wide_plan(N));
    let stop = Arc::new(AtomicBool::new(false));

    let reader = {
        let (path, stop) = (Arc::clone(&path), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut reads = 0usize;
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = load(&path) {
                    return Err(e.to_string());
                }
                reads += 1;
            }
            Ok(reads)
        })
    };
    let writers: Vec<_> = (1..=N)
        .map(|i| {
            let (path, plan) = (Arc::clone(&path), Arc::clone(&plan));
            std::thread::spawn(move || {
                let id = format!("1.{i}");
                update(&path, &plan, "docs/plans/wide.md", "wide", |doc, _| {
                    apply(
                        doc,
                        &id,
                        Transition::Done,
                        &TransitionOptions::default(),
                        Utc::now(),
                    )
                })
                .map(|_| ())
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer thread").expect("update succeeds");
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader
        .join()
        .expect("reader thread")
        .expect("reader never sees corruption");
    assert!(reads > 0);

    let doc = load(&path).expect("loads").expect("exists");
    assert_eq!(doc.tasks.len(), N);
    assert!(doc.tasks.iter().all(|t| t.status == TaskStatus::Completed));
    assert_eq!(doc.summary.completed, 50);
    assert_eq!(doc.summary.pending, 0);
}

/// `orch task`'s record with the plan ([`update_with_digest`]): on a file without a digest or
/// with another one, in orch's layout or compact JSON, and a file the plan changed since, the
/// outcome is recorded and the digest with it; an unknown id changes nothing on a file that
/// already follows the plan.
#[test]
fn recording_with_the_plan_records_the_outcome_and_the_digest() {
    let plan = small_plan();
    let mut edited = small_plan();
    edited.tasks[0].description = "Create the skeleton".into();
    let change_of = |id: &'static str| {
        move |doc: &mut StatusDoc, _: &ReconcileReport| {
            if doc.entry(id).is_none() {
                return Ok(None);
            }
            apply(
                doc,
                id,
                Transition::Done,
                &TransitionOptions::default(),
                crate::status::test_support::at(5),
            )
            .map(Some)
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    for (case, (digest, compact, now_plan)) in [
        (None, false, &plan),
        (Some("0.0:1:old"), false, &plan),
        (None, true, &plan),
        (None, false, &edited),
    ]
    .into_iter()
    .enumerate()
    {
        let mut doc = StatusDoc::new(&plan, "p.md", "demo", crate::status::test_support::at(0));
        doc.orch_plan_digest = digest.map(str::to_string);
        let text = if compact {
            serde_json::to_vec(&doc).expect("json")
        } else {
            crate::status::test_support::printed(&doc)
        };
        let a = dir.path().join(format!("a{case}"));
        fs::write(&a, &text).expect("write");
        let (got, report) = update_with_digest(
            (&a, None),
            now_plan,
            Some("d1"),
            "p.md",
            "demo",
            change_of("2.1"),
        )
        .expect("records");
        assert!(got.is_some(), "{case}");
        assert_eq!(report.changed, now_plan != &plan, "{case}");
        let ga = load(&a).expect("load").expect("doc");
        assert_eq!(ga.orch_plan_digest.as_deref(), Some("d1"));
        assert_eq!(ga.entry("2.1").expect("2.1").status, TaskStatus::Completed);
        assert_eq!(
            fs::read(&a).expect("a"),
            to_bytes(&a, &ga).expect("bytes"),
            "written in orch's form: {case}"
        );
    }
    // An unknown id: nothing to change, nothing written by the record itself.
    let path = dir.path().join("c");
    let mut doc = StatusDoc::new(&plan, "p.md", "demo", crate::status::test_support::at(0));
    doc.orch_plan_digest = Some("d1".into());
    let text = crate::status::test_support::printed(&doc);
    fs::write(&path, &text).expect("write");
    let (got, _) = update_with_digest(
        (&path, None),
        &plan,
        Some("d1"),
        "p.md",
        "demo",
        change_of("9.9"),
    )
    .expect("records");
    assert_eq!(got, None);
    assert_eq!(fs::read(&path).expect("read"), text);
}
