use std::sync::{Arc, Mutex};

use serde_json::Value;

use std::path::Path;

use super::super::event::PlanOutcome;
use super::text::human_duration;
use super::*;

/// A writer the test can read back.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().expect("lock").clone())
            .expect("utf-8")
            .lines()
            .map(String::from)
            .collect()
    }
}

/// A closed pipe: every write fails with EPIPE.
struct Closed(Arc<Mutex<usize>>);

impl Write for Closed {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        *self.0.lock().expect("lock") += 1;
        Err(io::Error::from(io::ErrorKind::BrokenPipe))
    }
    fn flush(&mut self) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

fn plans() -> Vec<PlanInfo> {
    vec![
        PlanInfo {
            name: "auth".into(),
            total: 20,
            done: 2,
        },
        PlanInfo {
            name: "api".into(),
            total: 4,
            done: 0,
        },
    ]
}

fn summary() -> RunSummary {
    RunSummary {
        plans: vec![
            PlanOutcome {
                merge: None,
                plan: "auth".into(),
                outcome: crate::supervisor::PlanResult::Completed,
                completed: 20,
                total: 20,
                failed_tasks: vec![],
                reason: None,
                branch: "orch/auth".into(),
                worktree: ".orch/worktrees/auth".into(),
                log_dir: ".orch/logs/auth".into(),
                causes: vec![],
                usage: Default::default(),
            },
            PlanOutcome {
                merge: None,
                plan: "api".into(),
                outcome: crate::supervisor::PlanResult::Blocked,
                completed: 1,
                total: 4,
                failed_tasks: vec!["1.2".into(), "2.1".into()],
                reason: Some("task `1.2` failed after 3 attempts".into()),
                branch: "orch/api".into(),
                worktree: ".orch/worktrees/api".into(),
                log_dir: ".orch/logs/api".into(),
                causes: vec![],
                usage: Default::default(),
            },
        ],
        elapsed_ms: 65_000,
        interrupted: false,
        usage: Default::default(),
        budget_reached: None,
        agents_stopped: vec![],
        notify_failures: 0,
        resolved_by_agent: 0,
        left_for_a_person: 0,
    }
}

/// One event of every kind (but `RunFinished`), with the plain line each renders to.
fn events() -> Vec<(Event, &'static str)> {
    vec![
        (
            Event::RunStarted {
                plans: vec!["auth".into(), "api".into()],
                max_agents: 4,
                sandbox: "on".into(),
                sandbox_abi: 6,
                network: "confined".into(),
            },
            "run started: 2 plans (auth, api), at most 4 agents at a time",
        ),
        (
            Event::PlanStarted {
                plan: "auth".into(),
                branch: "orch/auth".into(),
                worktree: ".orch/worktrees/auth".into(),
                base: "0123456789abcdef".into(),
                created: true,
            },
            "auth worktree created at .orch/worktrees/auth on branch orch/auth (base 0123456)",
        ),
        (
            Event::UpstreamMerged {
                plan: "api".into(),
                from: "auth:1".into(),
                upstream_commit: "feedfacecafe".into(),
                commit: Some("abcdef0123".into()),
            },
            "api merged auth:1 (feedfac) into its branch (commit abcdef0)",
        ),
        (
            Event::UpstreamMerged {
                plan: "api".into(),
                from: "auth".into(),
                upstream_commit: "feedfacecafe".into(),
                commit: None,
            },
            "api already contains auth (feedfac)",
        ),
        (
            Event::SetupFinished {
                plan: "api".into(),
                ok: false,
                log: ".orch/logs/api/setup.log".into(),
            },
            "api setup failed; log .orch/logs/api/setup.log",
        ),
        (
            Event::TaskStarted {
                plan: "auth".into(),
                task: "1.2".into(),
                kind: "task".into(),
                description: "Add login form".into(),
                attempt: 1,
                pid: 4242,
                log: ".orch/logs/auth/1.2.log".into(),
                job_id: None,
            },
            "auth 1.2 started (attempt 1, pid 4242): Add login form",
        ),
        (
            Event::TaskAdopted {
                plan: "auth".into(),
                task: "1.3".into(),
                pid: 77,
                job_id: None,
            },
            "auth 1.3 adopted (pid 77, still running from an earlier run)",
        ),
        (
            Event::TaskFinished {
                plan: "auth".into(),
                task: "1.2".into(),
                commit: Some("abc1234def".into()),
                duration_ms: 3_200,
                usage: None,
                pick: None,
            },
            "auth 1.2 done in 3.2s (commit abc1234)",
        ),
        (
            Event::TaskFailed {
                plan: "auth".into(),
                task: "1.3".into(),
                attempt: 1,
                error: "exit status 1".into(),
                retry_in_ms: Some(5_000),
                saved: Some("refs/orch/saved/auth/1.3-1".into()),
                log: ".orch/logs/auth/1.3.log".into(),
                usage: None,
            },
            "auth 1.3 failed (attempt 1): exit status 1; retry in 5.0s; \
             changes saved in refs/orch/saved/auth/1.3-1; log .orch/logs/auth/1.3.log",
        ),
        (
            Event::TaskFailed {
                plan: "api".into(),
                task: String::new(),
                attempt: 3,
                error: "timed out\nafter 10m".into(),
                retry_in_ms: None,
                saved: None,
                log: ".orch/logs/api/plan.log".into(),
                usage: None,
            },
            "api failed (attempt 3): timed out; after 10m; no retry; log .orch/logs/api/plan.log",
        ),
        (
            Event::PlanFinished {
                plan: "auth".into(),
                completed: 20,
            },
            "auth finished: 20 tasks completed",
        ),
        (
            Event::PlanBlocked {
                plan: "api".into(),
                reason: "task `1.2` failed".into(),
            },
            "api blocked: task `1.2` failed",
        ),
        (
            Event::Interrupted { immediate: false },
            "interrupted: letting running tasks finish (Ctrl-C again to stop them now)",
        ),
        (
            Event::Interrupted { immediate: true },
            "interrupted again: stopping running agents now",
        ),
        (
            Event::Note {
                plan: Some("api".into()),
                message: "agent wrote outside its worktree".into(),
            },
            "api: agent wrote outside its worktree",
        ),
        (
            Event::Note {
                plan: None,
                message: "3 plans skipped".into(),
            },
            "note: 3 plans skipped",
        ),
        (
            Event::Resolve(ResolveNote::Started {
                plan: "api".into(),
                agent: "claude".into(),
                files: vec!["src/lib.rs".into()],
                why: "conflict".into(),
                attempt: 1,
            }),
            "api hands its conflict in src/lib.rs to resolver claude (attempt 1)",
        ),
        (
            Event::Resolve(ResolveNote::Resolved {
                plan: "api".into(),
                agent: "claude".into(),
                files: vec!["src/lib.rs".into()],
                commit: "0123456789abcdef".into(),
                attempt: 1,
                usage: None,
            }),
            "api resolved by claude: merge commit 0123456 on its branch",
        ),
        (
            Event::Resolve(ResolveNote::Failed {
                plan: "api".into(),
                agent: "claude".into(),
                files: vec!["src/lib.rs".into()],
                cause: "the resolver left a conflict marker in `src/lib.rs` (line 3)".into(),
                saved: Some("refs/orch/attempts/api/resolve/1".into()),
                attempt: 1,
                usage: None,
            }),
            "api not resolved by claude: the resolver left a conflict marker in `src/lib.rs` (line 3)",
        ),
    ]
}

#[test]
fn plain_prints_one_timestamped_line_per_event() {
    let buf = Shared::default();
    let mut p = Progress::with_writer(ProgressMode::Plain, &plans(), Box::new(buf.clone()));
    let events = events();
    for (e, _) in &events {
        p.event(e);
    }
    let lines = buf.lines();
    assert_eq!(lines.len(), events.len(), "{lines:#?}");
    for (line, (_, want)) in lines.iter().zip(&events) {
        let (time, text) = line.split_once(' ').expect("time, then text");
        assert!(
            chrono::NaiveTime::parse_from_str(time, "%H:%M:%S").is_ok(),
            "{line}"
        );
        assert_eq!(text, *want);
    }
}

#[test]
fn plain_task_finished_without_commit_and_plan_mode_task() {
    let e = Event::TaskFinished {
        plan: "docs".into(),
        task: String::new(),
        commit: None,
        duration_ms: 125_000,
        usage: None,
        pick: None,
    };
    assert_eq!(
        describe(&e, None).as_deref(),
        Some("docs done in 2m05s (nothing to commit)")
    );
}

#[test]
fn paths_inside_the_current_directory_are_shown_relative() {
    let e = Event::SetupFinished {
        plan: "a".into(),
        ok: true,
        log: "/repo/.orch/logs/a/setup.log".into(),
    };
    assert_eq!(
        describe(&e, Some(Path::new("/repo"))).as_deref(),
        Some("a setup done; log .orch/logs/a/setup.log")
    );
    assert_eq!(
        describe(&e, Some(Path::new("/elsewhere"))).as_deref(),
        Some("a setup done; log /repo/.orch/logs/a/setup.log")
    );
}

#[test]
fn json_prints_one_parseable_line_per_event_with_the_contract_fields() {
    let buf = Shared::default();
    let mut p = Progress::with_writer(ProgressMode::Json, &plans(), Box::new(buf.clone()));
    let events = events();
    for (e, _) in &events {
        p.event(e);
    }
    let lines = buf.lines();
    assert_eq!(lines.len(), events.len());
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    for (v, (e, _)) in parsed.iter().zip(&events) {
        let at = v["at"].as_str().expect("at");
        let t = chrono::DateTime::parse_from_rfc3339(at).expect("rfc3339");
        assert_eq!(t.offset().local_minus_utc(), 0, "UTC: {at}");
        assert!(at.ends_with('Z') && at.len() == 24, "millis: {at}");
        // The rest of the object is the event as serialized.
        let mut rest = v.clone();
        rest.as_object_mut().expect("object").remove("at");
        assert_eq!(rest, serde_json::to_value(e).expect("event"));
    }
    let kinds: Vec<&str> = parsed
        .iter()
        .map(|v| v["event"].as_str().expect("event"))
        .collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "plan_started",
            "upstream_merged",
            "upstream_merged",
            "setup_finished",
            "task_started",
            "task_adopted",
            "task_finished",
            "task_failed",
            "task_failed",
            "plan_finished",
            "plan_blocked",
            "interrupted",
            "interrupted",
            "note",
            "note",
            "resolve_started",
            "resolved",
            "resolve_failed",
        ]
    );
    let started = &parsed[5];
    assert_eq!(started["plan"], "auth");
    assert_eq!(started["task"], "1.2");
    assert_eq!(started["attempt"], 1);
    assert_eq!(started["pid"], 4242);
    let finished = &parsed[7];
    assert_eq!(finished["commit"], "abc1234def");
    assert_eq!(finished["duration_ms"], 3200);
    let failed = &parsed[8];
    assert_eq!(
        (
            &failed["plan"],
            &failed["task"],
            &failed["attempt"],
            &failed["error"],
            &failed["retry_in_ms"],
            &failed["log"],
        ),
        (
            &Value::from("auth"),
            &Value::from("1.3"),
            &Value::from(1),
            &Value::from("exit status 1"),
            &Value::from(5000),
            &Value::from(".orch/logs/auth/1.3.log"),
        )
    );
    assert_eq!(parsed[9]["retry_in_ms"], Value::Null);
}

#[test]
fn json_finish_prints_only_the_run_finished_line_once() {
    let buf = Shared::default();
    let mut p = Progress::with_writer(ProgressMode::Json, &plans(), Box::new(buf.clone()));
    let s = summary();
    p.event(&Event::RunFinished { summary: s.clone() });
    p.finish(&s);
    let lines = buf.lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let v: Value = serde_json::from_str(&lines[0]).expect("json");
    assert_eq!(v["event"], "run_finished");
    assert_eq!(v["summary"]["elapsed_ms"], 65_000);
    assert_eq!(v["summary"]["plans"][1]["failed_tasks"][0], "1.2");
    assert_eq!(v["summary"]["plans"][1]["log_dir"], ".orch/logs/api");
}

#[test]
fn summary_table_lists_every_plan_with_its_log_dir() {
    let buf = Shared::default();
    let mut p = Progress::with_writer(ProgressMode::Plain, &plans(), Box::new(buf.clone()));
    p.finish(&summary());
    p.finish(&summary());
    assert_eq!(
        buf.lines(),
        [
            "run finished after 1m05s",
            "plan  outcome    tasks  failed    logs             reason",
            "auth  completed  20/20  -         .orch/logs/auth",
            "api   blocked    1/4    1.2, 2.1  .orch/logs/api   task `1.2` failed after 3 attempts",
        ]
    );
}

#[test]
fn summary_table_without_reasons_has_no_reason_column() {
    let mut s = summary();
    s.plans.truncate(1);
    s.interrupted = true;
    s.elapsed_ms = 1_500;
    assert_eq!(
        summary_table(&s, None),
        "run interrupted after 1.5s\n\
         plan  outcome    tasks  failed  logs\n\
         auth  completed  20/20  -       .orch/logs/auth\n"
    );
}

#[test]
fn bars_track_active_plans_and_print_only_notable_lines() {
    let buf = Shared::default();
    let mut p = Progress::with_writer(ProgressMode::Bars, &plans(), Box::new(buf.clone()));
    for (e, _) in events() {
        p.event(&e);
        if matches!(e, Event::TaskStarted { .. }) {
            let auth = &p.plans[0];
            assert!(auth.bar.is_some(), "a started plan has a bar");
            assert!(p.plans[1].bar.is_none(), "a plan not started has none");
            assert_eq!(running_message(&auth.running), "1.2 Add login form");
        }
        if matches!(e, Event::TaskFinished { .. }) {
            assert_eq!(p.plans[0].done, 3);
            let overall = &p.bars.as_ref().expect("bars").overall;
            assert_eq!(overall.position(), 3);
            assert_eq!(overall.length(), Some(24));
        }
    }
    assert!(
        p.plans.iter().all(|pl| pl.bar.is_none()),
        "finished or blocked"
    );
    assert_eq!(p.plans[0].done, 20);
    p.finish(&summary());
    let lines = buf.lines();
    assert_eq!(
        lines[..8],
        [
            "api setup failed; log .orch/logs/api/setup.log",
            "auth 1.3 failed (attempt 1): exit status 1; retry in 5.0s; \
             changes saved in refs/orch/saved/auth/1.3-1; log .orch/logs/auth/1.3.log",
            "api failed (attempt 3): timed out; after 10m; no retry; log .orch/logs/api/plan.log",
            "auth finished: 20 tasks completed",
            "api blocked: task `1.2` failed",
            "interrupted: letting running tasks finish (Ctrl-C again to stop them now)",
            "interrupted again: stopping running agents now",
            "api: agent wrote outside its worktree",
        ]
    );
    assert_eq!(lines[9], "run finished after 1m05s");
    assert_eq!(lines.len(), 13, "{lines:#?}");
}

#[test]
fn running_message_names_every_running_task() {
    let r = |v: &[(&str, &str)]| {
        running_message(
            &v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(r(&[]), "waiting");
    assert_eq!(r(&[("", "Whole plan")]), "Whole plan");
    assert_eq!(r(&[("2.1", "A"), ("2.3", "B")]), "2.1, 2.3");
}

#[test]
fn a_closed_pipe_stops_output_without_panicking() {
    let writes = Arc::new(Mutex::new(0));
    for mode in [ProgressMode::Plain, ProgressMode::Json, ProgressMode::Bars] {
        *writes.lock().expect("lock") = 0;
        let mut p = Progress::with_writer(mode, &plans(), Box::new(Closed(Arc::clone(&writes))));
        for (e, _) in events() {
            p.event(&e);
        }
        p.finish(&summary());
        assert_eq!(*writes.lock().expect("lock"), 1, "{mode:?}: one failed try");
    }
}

#[test]
fn durations_read_naturally() {
    for (ms, want) in [
        (0, "0ms"),
        (850, "850ms"),
        (3_200, "3.2s"),
        (59_999, "59.9s"),
        (65_000, "1m05s"),
        (3_599_000, "59m59s"),
        (3_720_000, "1h02m"),
    ] {
        assert_eq!(human_duration(ms), want, "{ms}");
    }
}

#[test]
fn agents_checks_budgets_and_usage_read_as_lines() {
    let usage = crate::agent_output::Usage {
        input_tokens: 1000,
        output_tokens: 200,
        cache_read_tokens: 3000,
        cache_write_tokens: 50,
        cost_micro_usd: Some(250_000),
    };
    let cases = [
        (
            Event::TaskChecking {
                plan: "auth".into(),
                task: "1.2".into(),
                attempt: 2,
            },
            "auth 1.2 checking (attempt 2)",
        ),
        (
            Event::TaskFinished {
                plan: "auth".into(),
                task: "1.2".into(),
                commit: Some("abc1234def".into()),
                duration_ms: 3_200,
                usage: Some(usage),
                pick: None,
            },
            "auth 1.2 done in 3.2s (commit abc1234, 4250 tokens, $0.2500)",
        ),
        (
            Event::AgentPaused {
                agent: "claude".into(),
                reason: "API Error: 429 usage limit\nmore".into(),
                resume_in_ms: 90_000,
                plan: None,
            },
            "agent claude paused at a usage limit (API Error: 429 usage limit); no task of it starts for 1m30s",
        ),
        (
            Event::AgentResumed {
                agent: "claude".into(),
                plan: None,
            },
            "agent claude resumed",
        ),
        (
            Event::AgentStopped {
                agent: "codex".into(),
                class: "rejected_flags".into(),
                cause: "error: unexpected argument '--full-auto' found".into(),
                fix: "fix `command`".into(),
                plan: None,
            },
            "agent codex cannot work (rejected flags): error: unexpected argument '--full-auto' found; fix: fix `command`",
        ),
        (
            Event::BudgetReached {
                plan: None,
                reason: "$0.50 spent of a budget of $0.40".into(),
                usage,
            },
            "budget of the run reached: $0.50 spent of a budget of $0.40; no new task starts",
        ),
    ];
    for (e, want) in cases {
        assert_eq!(describe(&e, None).as_deref(), Some(want));
    }
    // The summary adds each failed task's cause, stopped agents and what was spent.
    let mut s = summary();
    s.plans[1].causes = vec![(
        "1.2".into(),
        "the check `cargo test` failed\ntest a ... FAILED".into(),
    )];
    s.plans[1].usage = usage;
    s.usage = usage;
    s.agents_stopped = vec![crate::supervisor::event::StoppedAgent {
        agent: "claude".into(),
        cause: "Invalid API key".into(),
        fix: "log in".into(),
    }];
    s.resolved_by_agent = 2;
    s.left_for_a_person = 1;
    let table = summary_table(&s, None);
    assert!(
        table.contains("conflicts: 2 resolved by an agent, 1 left for a person\n"),
        "{table}"
    );
    assert!(
        table.contains("api 1.2 failed: the check `cargo test` failed\n    test a ... FAILED\n"),
        "{table}"
    );
    assert!(
        table.contains("agent claude cannot work: Invalid API key\n    fix: log in\n"),
        "{table}"
    );
    assert!(
        table.contains(
            "used in this run: 4250 tokens, $0.2500 (plans, all runs: api 4250 tokens, $0.2500)"
        ),
        "{table}"
    );
}

#[test]
fn manifest_reloads_and_invalid_edits_read_as_lines_and_json() {
    let invalid = Event::ManifestInvalid {
        file: "/repo/plans.toml".into(),
        errors: vec![
            "plans.toml:7:1: error: unknown key `nmae`\n  hint: the keys are name, file".into(),
            "plans.toml:9:14: error: plan `api` depends on unknown plan `ath`".into(),
        ],
    };
    let reloaded = Event::ManifestReloaded {
        files: vec!["/repo/plans.toml".into(), "/repo/docs/c.md".into()],
        changes: vec!["max_agents 1 → 3".into(), "plan c: added".into()],
    };
    let cwd = Some(Path::new("/repo"));
    assert_eq!(
        describe(&invalid, cwd).as_deref(),
        Some(
            "plans.toml is invalid, not applied (the last good configuration stays): \
             plans.toml:7:1: error: unknown key `nmae`; hint: the keys are name, file; \
             plans.toml:9:14: error: plan `api` depends on unknown plan `ath`"
        )
    );
    assert_eq!(
        describe(&reloaded, cwd).as_deref(),
        Some("plans reloaded (plans.toml, docs/c.md): max_agents 1 → 3; plan c: added")
    );
    // Both are worth a line above the bars, and their JSON carries the contract's fields.
    let buf = Shared::default();
    let mut p = Progress::with_writer(ProgressMode::Bars, &plans(), Box::new(buf.clone()));
    p.event(&invalid);
    p.event(&reloaded);
    assert_eq!(buf.lines().len(), 2, "{:#?}", buf.lines());
    let buf = Shared::default();
    let mut p = Progress::with_writer(ProgressMode::Json, &plans(), Box::new(buf.clone()));
    p.event(&invalid);
    p.event(&reloaded);
    let parsed: Vec<Value> = buf
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(parsed[0]["event"], "manifest_invalid");
    assert_eq!(parsed[0]["file"], "/repo/plans.toml");
    assert_eq!(
        parsed[0]["errors"][1],
        "plans.toml:9:14: error: plan `api` depends on unknown plan `ath`"
    );
    assert_eq!(parsed[1]["event"], "manifest_reloaded");
    assert_eq!(parsed[1]["files"][1], "/repo/docs/c.md");
    assert_eq!(parsed[1]["changes"][0], "max_agents 1 → 3");
}
