//! Splicing gives the bytes the whole document prints.

use super::*;
use crate::status::test_support::{TRANSITIONS, at, phased_plan, printed, small_plan};
use crate::status::{RunInfo, plan_digest};

/// Every transition on every entry, from every reachable status, spliced into the text,
/// gives the bytes the whole document prints.
#[test]
fn splicing_writes_what_printing_the_whole_document_writes() {
    let plan = small_plan();
    let digest = plan_digest(b"plan text");
    let transitions = TRANSITIONS;
    let opts = TransitionOptions {
        force: true,
        note: Some("a \"quoted\" note\non two lines".into()),
        error: Some("boom".into()),
        reason: Some("not needed".into()),
        run: Some(RunInfo {
            pid: 42,
            ..RunInfo::default()
        }),
        commit: Some("c0ffee".into()),
    };
    let mut checked = 0;
    for first in transitions {
        for second in transitions {
            for id in ["1.1", "2.1", "2.2", "V1"] {
                let mut doc = StatusDoc::new(&plan, "docs/plans/demo.md", "demo", at(0));
                doc.orch_plan_digest = Some(digest.clone());
                apply(&mut doc, id, first, &opts, at(1)).expect("first transition");
                let before = printed(&doc);
                let got = splice(
                    &before,
                    &digest,
                    "docs/plans/demo.md",
                    "demo",
                    id,
                    second,
                    &opts,
                    at(2),
                )
                .expect("splices");
                let outcome = apply(&mut doc, id, second, &opts, at(2)).expect("applies");
                match got {
                    Spliced::Done(Some(edits), o) => {
                        let text = edits.apply(&before);
                        assert_eq!(o, outcome);
                        assert_eq!(
                            String::from_utf8_lossy(&text),
                            String::from_utf8_lossy(&printed(&doc)),
                            "{id}: {first:?} then {second:?}"
                        );
                        checked += 1;
                    }
                    Spliced::Done(None, o) => {
                        assert_eq!(o, outcome);
                        assert_eq!(printed(&doc), before, "unchanged");
                    }
                    Spliced::Stale | Spliced::Fallback => {
                        panic!("{id}: {first:?} then {second:?} fell back")
                    }
                }
            }
        }
    }
    assert!(checked > 50, "{checked}");
}

/// Several entries changed in one splice (a commit recorded with the next task's start)
/// give the bytes the whole document prints; an entry asked for but left unchanged is not
/// rewritten, and an id asked for twice or unknown takes the general path.
#[test]
fn several_entries_are_spliced_at_once() {
    let plan = small_plan();
    let digest = plan_digest(b"plan text");
    let mut doc = StatusDoc::new(&plan, "p.md", "demo", at(0));
    doc.orch_plan_digest = Some(digest.clone());
    let run = TransitionOptions {
        force: true,
        run: Some(RunInfo {
            pid: 7,
            ..RunInfo::default()
        }),
        ..TransitionOptions::default()
    };
    apply(&mut doc, "1.1", Transition::Start, &run, at(1)).expect("start");
    let before = printed(&doc);
    let done = TransitionOptions {
        force: true,
        commit: Some("c0ffee".into()),
        ..TransitionOptions::default()
    };
    let change = |d: &mut StatusDoc| -> Result<(), StatusError> {
        apply(d, "1.1", Transition::Done, &done, at(2))?;
        apply(d, "2.1", Transition::Start, &run, at(2))?;
        Ok(())
    };
    let ids = ["1.1", "1.2", "2.1"];
    let got = splice_with(&before, &digest, "p.md", "demo", &ids, at(2), change).expect("splices");
    change(&mut doc).expect("applies");
    let Spliced::Done(Some(edits), ()) = got else {
        panic!("not spliced")
    };
    assert_eq!(
        String::from_utf8_lossy(&edits.apply(&before)),
        String::from_utf8_lossy(&printed(&doc))
    );
    // Two entries and the derived fields; 1.2 is left as it was.
    assert_eq!(edits.edits.len(), 5, "{edits:?}");
    for ids in [&["1.1", "1.1"][..], &["1.1", "9.9"]] {
        let got = splice_with(&before, &digest, "p.md", "demo", ids, at(2), |_| Ok(()));
        assert!(matches!(got, Ok(Spliced::Fallback)), "{ids:?}");
    }
}

#[test]
fn other_digests_and_layouts_are_left_to_the_general_path() {
    let plan = small_plan();
    let digest = plan_digest(b"plan text");
    let mut doc = StatusDoc::new(&plan, "p.md", "demo", at(0));
    let o = TransitionOptions::default();
    let run = |b: &[u8], d: &str, id: &str| {
        splice(b, d, "p.md", "demo", id, Transition::Done, &o, at(1)).expect("no error")
    };
    assert!(matches!(
        run(&printed(&doc), &digest, "1.1"),
        Spliced::Stale
    ));
    doc.orch_plan_digest = Some(digest.clone());
    assert!(matches!(
        run(&printed(&doc), "other", "1.1"),
        Spliced::Stale
    ));
    // Compact JSON: not orch's layout.
    let compact = serde_json::to_vec(&doc).expect("json");
    assert!(matches!(run(&compact, &digest, "1.1"), Spliced::Fallback));
    // An unknown task.
    assert!(matches!(
        run(&printed(&doc), &digest, "9.9"),
        Spliced::Fallback
    ));
    // Another plan path: the general path restamps it.
    let other = splice(
        &printed(&doc),
        &digest,
        "q.md",
        "demo",
        "1.1",
        Transition::Done,
        &o,
        at(1),
    )
    .expect("no error");
    assert!(matches!(other, Spliced::Fallback));
}

/// A document without `orchPlanDigest`, or with another, that follows the plan: the recording
/// splice writes what the whole document prints once the digest is recorded and the change made
/// (the digest alone when the change changes nothing), for every transition on every entry.
#[test]
fn recording_splices_write_what_the_whole_document_writes() {
    let plan = small_plan();
    let digest = plan_digest(b"plan text");
    let opts = TransitionOptions {
        force: true,
        note: Some("a note".into()),
        ..TransitionOptions::default()
    };
    let mut checked = 0;
    for recorded in [None, Some("0.1:9:other".to_string())] {
        for first in TRANSITIONS {
            for second in TRANSITIONS {
                for id in ["1.1", "2.1", "2.2", "V1"] {
                    let mut doc = StatusDoc::new(&plan, "p.md", "demo", at(0));
                    doc.orch_plan_digest = recorded.clone();
                    // Something after the digest's place: the insertion goes before it.
                    doc.extra
                        .insert("later".into(), serde_json::json!({"a": 1}));
                    apply(&mut doc, id, first, &opts, at(1)).expect("first transition");
                    let before = printed(&doc);
                    let change = |d: &mut StatusDoc| apply(d, id, second, &opts, at(2));
                    let got =
                        splice_recording(&before, &digest, "p.md", "demo", &[id], at(2), change)
                            .expect("splices");
                    doc.orch_plan_digest = Some(digest.clone());
                    let outcome = change(&mut doc).expect("applies");
                    let Spliced::Done(Some(edits), o) = got else {
                        panic!("{id}: {first:?} then {second:?}: not spliced")
                    };
                    assert_eq!(o, outcome);
                    assert_eq!(
                        String::from_utf8_lossy(&edits.apply(&before)),
                        String::from_utf8_lossy(&printed(&doc)),
                        "{id}: {first:?} then {second:?}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 200);
    // A current digest is left as it is, and a text without `verifySteps` is not spliced.
    let mut doc = StatusDoc::new(&plan, "p.md", "demo", at(0));
    doc.orch_plan_digest = Some(digest.clone());
    let text = printed(&doc);
    let same = splice_recording(&text, &digest, "p.md", "demo", &["1.1"], at(1), |_| Ok(()));
    assert!(matches!(same, Ok(Spliced::Done(None, ()))));
    doc.orch_plan_digest = None;
    let mut v: serde_json::Value = serde_json::to_value(&doc).expect("json");
    v.as_object_mut().expect("object").remove("verifySteps");
    let mut text = serde_json::to_vec_pretty(&v).expect("json");
    text.push(b'\n');
    let none = splice_recording(&text, &digest, "p.md", "demo", &["1.1"], at(1), |_| Ok(()));
    assert!(matches!(none, Ok(Spliced::Fallback)));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
    /// Random sequences of changes of one or two entries, each spliced into the text the last
    /// one gave (or, now and then, into that text without its digest, recording it): every
    /// text is the one the whole document prints, whether the derived fields came from the
    /// changed entries or from reading every entry.
    #[test]
    fn random_changes_splice_as_the_whole_document_prints(
        tasks in proptest::collection::vec(1usize..6, 1..5),
        verify in proptest::collection::vec(proptest::bool::ANY, 4),
        steps in proptest::collection::vec(
            (0usize..100, 0usize..5, proptest::option::of((0usize..100, 0usize..5))),
            1..40,
        ),
        record in proptest::collection::vec(proptest::bool::weighted(0.2), 40),
    ) {
        let transitions = TRANSITIONS;
        let plan = phased_plan(&tasks, &verify);
        let ids: Vec<String> = plan.tasks.iter().map(|t| t.id.clone()).collect();
        let digest = plan_digest(b"plan text");
        let mut doc = StatusDoc::new(&plan, "p.md", "demo", at(0));
        doc.orch_plan_digest = Some(digest.clone());
        let mut text = printed(&doc);
        let opts = TransitionOptions {
            force: true,
            ..TransitionOptions::default()
        };
        for (k, (a, ta, b)) in steps.iter().enumerate() {
            let now = at(k as i64 + 1);
            let mut change: Vec<(&str, Transition)> = vec![(&ids[a % ids.len()], transitions[*ta])];
            if let Some((b, tb)) = b
                && ids[b % ids.len()] != change[0].0
            {
                change.push((&ids[b % ids.len()], transitions[*tb]));
            }
            let apply_all = |d: &mut StatusDoc| -> Result<(), StatusError> {
                for (id, t) in &change {
                    apply(d, id, *t, &opts, now)?;
                }
                Ok(())
            };
            let names: Vec<&str> = change.iter().map(|(id, _)| *id).collect();
            // Now and then a file without the digest (a person's tool rewrote it), which the
            // recording splice gives it back.
            let got = if record[k] {
                doc.orch_plan_digest = None;
                text = printed(&doc);
                doc.orch_plan_digest = Some(digest.clone());
                splice_recording(&text, &digest, "p.md", "demo", &names, now, apply_all)
            } else {
                splice_with(&text, &digest, "p.md", "demo", &names, now, apply_all)
            }
            .expect("splices");
            apply_all(&mut doc).expect("applies");
            match got {
                Spliced::Done(Some(edits), ()) => text = edits.apply(&text),
                Spliced::Done(None, ()) => proptest::prop_assert!(!record[k]),
                Spliced::Stale | Spliced::Fallback => panic!("step {k}: fell back"),
            }
            let want = printed(&doc);
            proptest::prop_assert_eq!(
                String::from_utf8_lossy(&text),
                String::from_utf8_lossy(&want),
                "step {}: {:?}", k, change
            );
        }
    }
}

/// The derived fields come from the changed entries in the usual run (tasks started and done
/// phase by phase), and every entry is read only when a phase ends.
#[test]
fn a_run_phase_by_phase_reads_every_entry_only_when_a_phase_ends() {
    let plan = phased_plan(&[5, 5, 5], &[true, true, true]);
    let digest = plan_digest(b"plan text");
    let mut doc = StatusDoc::new(&plan, "p.md", "demo", at(0));
    doc.orch_plan_digest = Some(digest.clone());
    let mut text = printed(&doc);
    let opts = TransitionOptions {
        force: true,
        ..TransitionOptions::default()
    };
    let before = derived::INCREMENTAL.with(|n| n.get());
    let mut splices = 0;
    for (k, t) in plan.tasks.iter().enumerate() {
        for tr in [Transition::Start, Transition::Done] {
            let now = at(k as i64 + 1);
            let change = |d: &mut StatusDoc| apply(d, &t.id, tr, &opts, now).map(|_| ());
            let got = splice_with(&text, &digest, "p.md", "demo", &[&t.id], now, change)
                .expect("splices");
            change(&mut doc).expect("applies");
            let Spliced::Done(Some(edits), ()) = got else {
                panic!("{}: not spliced", t.id)
            };
            text = edits.apply(&text);
            assert_eq!(text, printed(&doc), "{} {tr:?}", t.id);
            splices += 1;
        }
    }
    let incremental = derived::INCREMENTAL.with(|n| n.get()) - before;
    // 36 splices; read whole: the first start (nothing unfinished... every task pending is
    // unfinished, so none), each phase's last task and its VERIFY step done (2 per phase), and
    // the last VERIFY step's start once all tasks are finished.
    assert_eq!(splices, 36);
    assert!(
        incremental >= 28,
        "{incremental} of {splices} from the changed entries"
    );
}
