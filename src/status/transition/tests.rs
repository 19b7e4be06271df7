use super::*;
use crate::status::test_support::small_plan;

fn t(secs: i64) -> DateTime<Utc> {
    crate::status::test_support::at(secs)
}

fn doc() -> StatusDoc {
    StatusDoc::new(&small_plan(), "docs/plans/demo.md", "demo", t(0))
}

fn opts() -> TransitionOptions {
    TransitionOptions::default()
}

fn forced() -> TransitionOptions {
    TransitionOptions {
        force: true,
        ..opts()
    }
}

fn status(d: &StatusDoc, id: &str) -> TaskStatus {
    d.entry(id).expect("entry exists").status
}

/// Puts `id` into `s` through the transitions.
fn set(d: &mut StatusDoc, id: &str, s: TaskStatus) {
    let tr = match s {
        TaskStatus::Pending => return,
        TaskStatus::InProgress => Transition::Start,
        TaskStatus::Completed => Transition::Done,
        TaskStatus::Failed => Transition::Fail,
        TaskStatus::Skipped => Transition::Skip,
        TaskStatus::NeedsInput => {
            let ask = TransitionOptions {
                question: Some("which db?".into()),
                ..opts()
            };
            apply(d, id, Transition::Ask, &ask, t(1)).expect("setup ask");
            assert_eq!(status(d, id), s);
            return;
        }
    };
    apply(d, id, tr, &opts(), t(1)).expect("setup transition");
    assert_eq!(status(d, id), s);
}

fn changed(id: &str, from: TaskStatus, to: TaskStatus) -> TransitionOutcome {
    TransitionOutcome::Changed {
        id: id.into(),
        from,
        to,
    }
}

fn expect_refused(r: Result<TransitionOutcome, StatusError>, id: &str, st: TaskStatus) -> String {
    match r {
        Err(StatusError::Refused {
            id: rid,
            status,
            message,
        }) => {
            assert_eq!((rid.as_str(), status), (id, st));
            message
        }
        other => panic!("expected Refused, got {other:?}"),
    }
}

/// The supervisor's start record after the agent already wrote: what it wrote stands, the
/// attempt is counted once.
#[test]
fn a_launch_recorded_after_the_agent_reported_counts_the_attempt_once() {
    let run = RunInfo {
        pid: 42,
        ..RunInfo::default()
    };
    let attempts = |d: &StatusDoc| d.entry("1.1").expect("1.1").attempts;
    // The usual order: the start record, then the agent's report.
    let mut d = doc();
    record_launch(&mut d, "1.1", &run, t(10), t(10)).expect("launch");
    assert_eq!(
        (status(&d, "1.1"), attempts(&d)),
        (TaskStatus::InProgress, 1)
    );
    let e = d.entry("1.1").expect("1.1");
    assert_eq!(e.orch_run.as_ref().map(|r| r.pid), Some(42));

    // The agent's `task done` first (at 12 s; the launch was at 10 s): still completed,
    // with the attempt counted and started at the launch.
    let mut d = doc();
    apply(&mut d, "1.1", Transition::Done, &opts(), t(12)).expect("done");
    record_launch(&mut d, "1.1", &run, t(10), t(13)).expect("launch");
    let e = d.entry("1.1").expect("1.1");
    assert_eq!((e.status, e.attempts), (TaskStatus::Completed, 1));
    assert_eq!(e.started_at.as_deref(), Some(timestamp(t(10)).as_str()));
    assert_eq!(e.duration, Some(2_000));
    assert_eq!(e.orch_run, None);

    // Done before the launch (by hand, while the supervisor decided), or skipped: as it was.
    for (tr, at) in [(Transition::Done, t(8)), (Transition::Skip, t(12))] {
        let mut d = doc();
        apply(&mut d, "1.1", tr, &opts(), at).expect("finish");
        let before = d.clone();
        record_launch(&mut d, "1.1", &run, t(10), t(13)).expect("launch");
        assert_eq!(d, before, "{tr:?}");
    }

    // The agent ran `task start` and `task done` itself: it counted the attempt.
    let mut d = doc();
    apply(&mut d, "1.1", Transition::Start, &opts(), t(11)).expect("start");
    apply(&mut d, "1.1", Transition::Done, &opts(), t(12)).expect("done");
    record_launch(&mut d, "1.1", &run, t(10), t(13)).expect("launch");
    let e = d.entry("1.1").expect("1.1");
    assert_eq!((e.status, e.attempts), (TaskStatus::Completed, 1));
    assert_eq!(e.started_at.as_deref(), Some(timestamp(t(11)).as_str()));

    // The agent's `task fail` first: its failure stands (it was once taken for a start).
    let mut d = doc();
    let failed = TransitionOptions {
        error: Some("criterion unmet".into()),
        ..opts()
    };
    apply(&mut d, "1.1", Transition::Fail, &failed, t(12)).expect("fail");
    record_launch(&mut d, "1.1", &run, t(10), t(13)).expect("launch");
    let e = d.entry("1.1").expect("1.1");
    assert_eq!((e.status, e.attempts), (TaskStatus::Failed, 1));
    assert_eq!(e.error.as_deref(), Some("criterion unmet"));
    // A failure from before the launch is the attempt being retried: in progress again,
    // also when it was recorded in the launch's millisecond (a retry without backoff).
    for failed_at in [t(5), t(10)] {
        let mut d = doc();
        apply(&mut d, "1.1", Transition::Fail, &failed, failed_at).expect("fail");
        let launched = t(10) + chrono::Duration::microseconds(700);
        record_launch(&mut d, "1.1", &run, launched, t(10)).expect("launch");
        let e = d.entry("1.1").expect("1.1");
        assert_eq!((e.status, e.attempts), (TaskStatus::InProgress, 1));
        assert_eq!(e.error, None);
    }

    // The agent ran `task start` only: in progress, once, with the supervisor's run.
    let mut d = doc();
    apply(&mut d, "1.1", Transition::Start, &opts(), t(11)).expect("start");
    record_launch(&mut d, "1.1", &run, t(10), t(13)).expect("launch");
    let e = d.entry("1.1").expect("1.1");
    assert_eq!((e.status, e.attempts), (TaskStatus::InProgress, 1));
    assert_eq!(e.orch_run.as_ref().map(|r| r.pid), Some(42));

    // A start left by an earlier attempt (before the launch) is not the agent's: counted.
    let mut d = doc();
    apply(&mut d, "1.1", Transition::Start, &opts(), t(5)).expect("start");
    record_launch(&mut d, "1.1", &run, t(10), t(10)).expect("launch");
    assert_eq!(attempts(&d), 2);
    // An id the plan does not have changes nothing.
    let before = d.clone();
    record_launch(&mut d, "9.9", &run, t(10), t(10)).expect("unknown id");
    assert_eq!(d, before);
}

#[test]
fn unknown_id_is_an_error() {
    let mut d = doc();
    let before = d.clone();
    let r = apply(&mut d, "9.9", Transition::Start, &opts(), t(1));
    match r {
        Err(e @ StatusError::UnknownTask { .. }) => {
            assert_eq!(
                e.to_string(),
                "task `9.9` is not in plan `docs/plans/demo.md`"
            );
        }
        other => panic!("expected UnknownTask, got {other:?}"),
    }
    assert_eq!(d, before);
}

#[test]
fn start_records_the_run_and_updates_derived_fields() {
    let mut d = doc();
    let o = TransitionOptions {
        run: Some(RunInfo {
            pid: 123,
            process_start_time: 456,
            host: Some("box".into()),
            ..RunInfo::default()
        }),
        ..opts()
    };
    let out = apply(&mut d, "1.1", Transition::Start, &o, t(10)).expect("starts");
    assert_eq!(
        out,
        changed("1.1", TaskStatus::Pending, TaskStatus::InProgress)
    );
    let e = d.entry("1.1").expect("1.1");
    assert_eq!(e.started_at.as_deref(), Some("2026-03-01T12:00:10.000Z"));
    assert_eq!(e.attempts, 1);
    assert_eq!(e.retry_count, 0);
    let run = e.orch_run.as_ref().expect("orchRun set");
    assert_eq!((run.pid, run.process_start_time), (123, 456));
    assert_eq!(run.host.as_deref(), Some("box"));
    assert_eq!(d.summary.in_progress, 1);
    assert_eq!(d.summary.pending, 2);
    assert_eq!(
        d.last_updated_at.as_deref(),
        Some("2026-03-01T12:00:10.000Z")
    );

    // Already in progress: refused with pid and time, unless forced.
    let msg = expect_refused(
        apply(&mut d, "1.1", Transition::Start, &opts(), t(20)),
        "1.1",
        TaskStatus::InProgress,
    );
    assert!(
        msg.starts_with(
            "task `1.1` is already in progress (pid 123 since 2026-03-01T12:00:10.000Z)"
        ),
        "{msg}"
    );
    let out = apply(&mut d, "1.1", Transition::Start, &forced(), t(20)).expect("forced");
    assert_eq!(
        out,
        changed("1.1", TaskStatus::InProgress, TaskStatus::InProgress)
    );
    assert_eq!(d.entry("1.1").expect("1.1").attempts, 2);
}

#[test]
fn start_refuses_finished_tasks_unless_forced() {
    for st in [TaskStatus::Completed, TaskStatus::Skipped] {
        let mut d = doc();
        set(&mut d, "1.1", st);
        let before = d.clone();
        let msg = expect_refused(
            apply(&mut d, "1.1", Transition::Start, &opts(), t(5)),
            "1.1",
            st,
        );
        assert!(msg.contains(&format!("already {st}")), "{msg}");
        assert_eq!(d, before, "a refusal changes nothing");
        apply(&mut d, "1.1", Transition::Start, &forced(), t(5)).expect("forced start");
        assert_eq!(status(&d, "1.1"), TaskStatus::InProgress);
        assert_eq!(d.entry("1.1").expect("1.1").completed_at, None);
    }
}

#[test]
fn retry_resets_started_at_and_counts() {
    let mut d = doc();
    apply(&mut d, "1.1", Transition::Start, &opts(), t(0)).expect("start");
    let fail = TransitionOptions {
        error: Some("tests failed".into()),
        ..opts()
    };
    apply(&mut d, "1.1", Transition::Fail, &fail, t(30)).expect("fail");
    let e = d.entry("1.1").expect("1.1");
    assert_eq!(e.error.as_deref(), Some("tests failed"));
    assert_eq!(e.last_error.as_deref(), Some("tests failed"));
    assert_eq!(e.duration, Some(30_000));
    assert_eq!(d.summary.failed, 1);

    let out = apply(&mut d, "1.1", Transition::Start, &opts(), t(100)).expect("retry");
    assert_eq!(
        out,
        changed("1.1", TaskStatus::Failed, TaskStatus::InProgress)
    );
    let e = d.entry("1.1").expect("1.1");
    assert_eq!(e.started_at.as_deref(), Some("2026-03-01T12:01:40.000Z"));
    assert_eq!(e.retry_count, 1);
    assert_eq!(e.attempts, 2);
    assert_eq!(e.error, None, "error cleared on retry");
    assert_eq!(
        e.last_error.as_deref(),
        Some("tests failed"),
        "lastError kept"
    );
    assert_eq!((e.completed_at.as_ref(), e.duration), (None, None));

    apply(&mut d, "1.1", Transition::Done, &opts(), t(105)).expect("done");
    assert_eq!(d.entry("1.1").expect("1.1").duration, Some(5_000));
}

#[test]
fn done_sets_times_notes_commit_and_is_idempotent() {
    let mut d = doc();
    let run = TransitionOptions {
        run: Some(RunInfo {
            pid: 7,
            ..RunInfo::default()
        }),
        ..opts()
    };
    apply(&mut d, "1.1", Transition::Start, &run, t(0)).expect("start");
    let o = TransitionOptions {
        note: Some("added skeleton".into()),
        commit: Some("abc123".into()),
        ..opts()
    };
    let out = apply(&mut d, "1.1", Transition::Done, &o, t(2)).expect("done");
    assert_eq!(
        out,
        changed("1.1", TaskStatus::InProgress, TaskStatus::Completed)
    );
    let e = d.entry("1.1").expect("1.1").clone();
    assert_eq!(e.completed_at.as_deref(), Some("2026-03-01T12:00:02.000Z"));
    assert_eq!(e.duration, Some(2_000));
    assert_eq!(e.notes.as_deref(), Some("added skeleton"));
    assert_eq!(e.commit.as_deref(), Some("abc123"));
    assert_eq!(e.orch_run, None, "orchRun cleared");
    assert_eq!(d.summary.completed, 2);

    let before = d.clone();
    let out = apply(&mut d, "1.1", Transition::Done, &opts(), t(50)).expect("again");
    assert_eq!(
        out,
        TransitionOutcome::Unchanged {
            id: "1.1".into(),
            status: TaskStatus::Completed
        }
    );
    assert_eq!(d, before, "idempotent done changes nothing");

    // Done straight from pending (no startedAt): no duration.
    apply(&mut d, "1.2", Transition::Done, &opts(), t(3)).expect("done from pending");
    assert_eq!(d.entry("1.2").expect("1.2").duration, None);
    // From failed.
    set(&mut d, "2.1", TaskStatus::Failed);
    apply(&mut d, "2.1", Transition::Done, &opts(), t(3)).expect("done from failed");
    assert_eq!(status(&d, "2.1"), TaskStatus::Completed);
    assert_eq!(d.entry("2.1").expect("2.1").error, None);
}

#[test]
fn done_refuses_skipped_unless_forced() {
    let mut d = doc();
    set(&mut d, "1.1", TaskStatus::Skipped);
    let msg = expect_refused(
        apply(&mut d, "1.1", Transition::Done, &opts(), t(2)),
        "1.1",
        TaskStatus::Skipped,
    );
    assert!(msg.contains("--force"), "{msg}");
    apply(&mut d, "1.1", Transition::Done, &forced(), t(2)).expect("forced");
    assert_eq!(status(&d, "1.1"), TaskStatus::Completed);
    assert_eq!(d.entry("1.1").expect("1.1").skip_reason, None);
}

#[test]
fn fail_rules() {
    let err = |m: &str| TransitionOptions {
        error: Some(m.into()),
        ..opts()
    };
    let mut d = doc();
    // pending → failed
    let out = apply(&mut d, "1.1", Transition::Fail, &err("e1"), t(1)).expect("fail");
    assert_eq!(out, changed("1.1", TaskStatus::Pending, TaskStatus::Failed));
    assert!(d.entry("1.1").expect("1.1").completed_at.is_some());
    // failed → failed with the same error: unchanged; with a new one: updated.
    let out = apply(&mut d, "1.1", Transition::Fail, &err("e1"), t(2)).expect("same");
    assert!(!out.is_changed());
    let out = apply(&mut d, "1.1", Transition::Fail, &err("e2"), t(3)).expect("new");
    assert_eq!(out, changed("1.1", TaskStatus::Failed, TaskStatus::Failed));
    let e = d.entry("1.1").expect("1.1");
    assert_eq!(
        (e.error.as_deref(), e.last_error.as_deref()),
        (Some("e2"), Some("e2"))
    );
    // in_progress → failed clears orchRun
    let run = TransitionOptions {
        run: Some(RunInfo::default()),
        ..opts()
    };
    apply(&mut d, "1.2", Transition::Start, &run, t(0)).expect("start");
    apply(&mut d, "1.2", Transition::Fail, &err("x"), t(1)).expect("fail");
    assert_eq!(d.entry("1.2").expect("1.2").orch_run, None);
    // completed/skipped → refused unless forced
    for st in [TaskStatus::Completed, TaskStatus::Skipped] {
        let mut d = doc();
        set(&mut d, "2.1", st);
        expect_refused(
            apply(&mut d, "2.1", Transition::Fail, &err("x"), t(1)),
            "2.1",
            st,
        );
        apply(
            &mut d,
            "2.1",
            Transition::Fail,
            &TransitionOptions {
                force: true,
                ..err("x")
            },
            t(1),
        )
        .expect("forced");
        assert_eq!(status(&d, "2.1"), TaskStatus::Failed);
    }
}

#[test]
fn skip_rules() {
    let reason = TransitionOptions {
        reason: Some("not needed".into()),
        ..opts()
    };
    for st in [
        TaskStatus::Pending,
        TaskStatus::InProgress,
        TaskStatus::Failed,
    ] {
        let mut d = doc();
        set(&mut d, "2.1", st);
        let out = apply(&mut d, "2.1", Transition::Skip, &reason, t(4)).expect("skip");
        assert_eq!(out, changed("2.1", st, TaskStatus::Skipped));
        let e = d.entry("2.1").expect("2.1");
        assert_eq!(e.skip_reason.as_deref(), Some("not needed"));
        assert_eq!(e.orch_run, None);
        assert_eq!(d.summary.skipped, 1);
    }
    let mut d = doc();
    set(&mut d, "2.1", TaskStatus::Skipped);
    let out = apply(&mut d, "2.1", Transition::Skip, &opts(), t(4)).expect("again");
    assert!(!out.is_changed());
    // completed → refused unless forced ([x] task 2.2 is completed from the start)
    let msg = expect_refused(
        apply(&mut d, "2.2", Transition::Skip, &reason, t(4)),
        "2.2",
        TaskStatus::Completed,
    );
    assert_eq!(
        msg,
        "task `2.2` is already completed; use --force to skip it"
    );
    apply(
        &mut d,
        "2.2",
        Transition::Skip,
        &TransitionOptions {
            force: true,
            ..reason
        },
        t(4),
    )
    .expect("forced");
    assert_eq!(status(&d, "2.2"), TaskStatus::Skipped);
}

#[test]
fn reset_rules() {
    for st in [TaskStatus::InProgress, TaskStatus::Failed] {
        let mut d = doc();
        set(&mut d, "1.1", st);
        let out = apply(&mut d, "1.1", Transition::Reset, &opts(), t(9)).expect("reset");
        assert_eq!(out, changed("1.1", st, TaskStatus::Pending));
        let e = d.entry("1.1").expect("1.1");
        assert_eq!((e.started_at.as_ref(), e.error.as_ref()), (None, None));
        assert_eq!(
            e.attempts,
            u32::from(st == TaskStatus::InProgress),
            "counts kept"
        );
    }
    for st in [TaskStatus::Completed, TaskStatus::Skipped] {
        let mut d = doc();
        set(&mut d, "1.1", st);
        let msg = expect_refused(
            apply(&mut d, "1.1", Transition::Reset, &opts(), t(9)),
            "1.1",
            st,
        );
        assert_eq!(msg, format!("task `1.1` is {st}; use --force to reset it"));
        apply(&mut d, "1.1", Transition::Reset, &forced(), t(9)).expect("forced");
        assert_eq!(status(&d, "1.1"), TaskStatus::Pending);
        assert_eq!(d.entry("1.1").expect("1.1").commit, None);
    }
    let mut d = doc();
    let out = apply(&mut d, "1.1", Transition::Reset, &opts(), t(9)).expect("noop");
    assert!(!out.is_changed());
}

#[test]
fn verify_steps_transition_and_move_the_current_phase() {
    let mut d = doc();
    assert_eq!(d.current_phase.as_deref(), Some("Phase 1: Setup"));
    set(&mut d, "1.1", TaskStatus::Completed);
    set(&mut d, "1.2", TaskStatus::Completed);
    assert_eq!(
        d.current_phase.as_deref(),
        Some("Phase 1: Setup"),
        "the verification step is unfinished"
    );
    let out = apply(&mut d, "V1", Transition::Done, &opts(), t(3)).expect("verify done");
    assert_eq!(
        out,
        changed("V1", TaskStatus::Pending, TaskStatus::Completed)
    );
    assert_eq!(d.current_phase.as_deref(), Some("Phase 2: Build"));
    assert_eq!(d.summary.total_tasks, 4, "summary counts tasks only");
    assert_eq!(crate::status::counts_all(&d).total_tasks, 5);
    set(&mut d, "2.1", TaskStatus::Completed);
    assert_eq!(
        d.current_phase.as_deref(),
        Some("Phase 2: Build"),
        "all done: last phase"
    );
}

/// A note, an error and a skip reason of any size are kept to `TEXT_MAX` bytes, cut at a
/// character boundary and saying so; a short one is kept as it is.
#[test]
fn an_agents_texts_are_bounded_in_the_entry() {
    let long = "é".repeat(70_000);
    for (tr, field) in [
        (Transition::Done, "note"),
        (Transition::Fail, "error"),
        (Transition::Skip, "reason"),
    ] {
        let mut d = doc();
        let mut o = forced();
        match field {
            "note" => o.note = Some(long.clone()),
            "error" => o.error = Some(long.clone()),
            _ => o.reason = Some(long.clone()),
        }
        apply(&mut d, "1.1", Transition::Start, &opts(), t(1)).expect("start");
        apply(&mut d, "1.1", tr, &o, t(2)).expect("apply");
        let e = d.entry("1.1").expect("entry");
        let kept = match field {
            "note" => e.notes.clone(),
            "error" => e.last_error.clone(),
            _ => e.skip_reason.clone(),
        }
        .expect(field);
        assert!(kept.len() <= TEXT_MAX + 64, "{field}: {}", kept.len());
        assert!(kept.starts_with("éé"), "{field}");
        assert!(
            kept.ends_with(&format!(
                "… ({} bytes more cut by orch)",
                long.len() - TEXT_MAX
            )),
            "{field}: {}",
            &kept[kept.len() - 60..]
        );
    }
    let mut d = doc();
    let o = TransitionOptions {
        error: Some("short".into()),
        ..forced()
    };
    apply(&mut d, "1.1", Transition::Fail, &o, t(2)).expect("fail");
    assert_eq!(
        d.entry("1.1").expect("e").last_error.as_deref(),
        Some("short")
    );
}
