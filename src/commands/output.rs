//! The JSON shapes orch prints (its own view, not the status file) and small text helpers, and
//! the writers the commands print with: every text line goes out with its control characters
//! but newline and tab shown escaped, every JSON document with the characters JSON leaves raw
//! escaped too ([`crate::untrusted`]), whatever the text came from: an agent's cause, a task
//! of a landed plan file, a name, a path.

use serde_json::{Value, json};

use crate::plan::{Plan, Task};
use crate::status::{StatusDoc, TaskEntry, TaskStatus};
use crate::untrusted::{escaped_lines, json_safe};

/// One task as `orch status --json` and `orch next --json` print it (the contract: `id`, `kind`,
/// `phase`, `description`, `status`, `dependencies`; the rest is extra: a Spec Kit task's
/// `story` and `stories` among it).
pub(crate) fn task_json(
    plan_name: &str,
    plan: &Plan,
    task: &Task,
    entry: Option<&TaskEntry>,
    live: bool,
) -> Value {
    // A task done by its agent whose check and commit are to come (an `orch up` runs: `live`)
    // is still running.
    let checking = live
        && task.kind == crate::plan::TaskKind::Task
        && entry.is_some_and(crate::status::checking);
    let status = match entry {
        _ if checking => TaskStatus::InProgress,
        Some(e) => e.status,
        None => TaskStatus::Pending,
    };
    let mut v = json!({
        "id": task.id,
        "kind": task.kind,
        "phase": task.phase,
        "description": task.description,
        "status": status,
        "dependencies": task.dependencies(),
        "plan": plan_name,
        "line": task.line,
        "priority": task.priority,
        "files": task.files,
    });
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    if !task.body.is_empty() {
        obj.insert("body".into(), json!(task.body));
    }
    if task.kind == crate::plan::TaskKind::Verify {
        obj.insert("blocking".into(), json!(task.blocking));
    }
    // A Spec Kit task's story (`[US1]`; the first of `[US3/US5]`, all in `stories`); null
    // when it has none. Tasks of orch's own grammar have neither key.
    if let Some(s) = &task.speckit {
        obj.insert("story".into(), json!(s.stories.first()));
        obj.insert("stories".into(), json!(s.stories));
    }
    if let Some(g) = plan.sequential_group_of(&task.id) {
        obj.insert("sequential_group".into(), json!(g.label));
    }
    if let Some(e) = entry {
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                obj.insert(k.into(), v);
            }
        };
        put("started_at", e.started_at.clone().map(Value::from));
        if checking {
            // Its time runs to its commit: none yet.
            put("stage", Some(json!("checking")));
        } else {
            put("completed_at", e.completed_at.clone().map(Value::from));
            put("duration_ms", e.duration.map(Value::from));
        }
        put("error", e.error.clone().map(Value::from));
        put("notes", e.notes.clone().map(Value::from));
        put("skip_reason", e.skip_reason.clone().map(Value::from));
        put("commit", e.commit.clone().map(Value::from));
        put("pid", e.orch_run.as_ref().map(|r| Value::from(r.pid)));
        put("agent", e.orch_agent.clone().map(Value::from));
        let job_id = e.orch_run.as_ref().and_then(|r| r.job_id.clone());
        put("job_id", job_id.map(Value::from));
        obj.insert("attempts".into(), json!(e.attempts));
        obj.insert("retry_count".into(), json!(e.retry_count));
        // Why it failed (the failure's cause; for a task run again, its last failure's).
        if e.status == TaskStatus::Failed {
            if let Some(c) = e.error.clone().or(e.last_error.clone()) {
                obj.insert("cause".into(), json!(c));
            }
        } else if let Some(c) = &e.last_error {
            obj.insert("last_cause".into(), json!(c));
        }
        if let Some(u) = &e.orch_usage {
            obj.insert("usage".into(), json!(u.usage()));
        }
        // The question its agent asked, while it waits for an answer; the answers so far.
        if let Some(q) = &e.orch_question {
            obj.insert("question".into(), json!(q));
        }
        if !e.orch_answers.is_empty() {
            obj.insert("answers".into(), json!(e.orch_answers));
        }
        if !e.orch_messages.is_empty() {
            obj.insert("messages".into(), json!(e.orch_messages));
        }
    }
    v
}

/// Counts per status over tasks and verification steps.
pub(crate) fn summary_json(doc: &StatusDoc, live: bool) -> Value {
    let (c, checking) = crate::status::shown_counts(doc, live);
    json!({
        "total": c.total_tasks,
        "pending": c.pending,
        "in_progress": c.in_progress,
        "checking": checking,
        "completed": c.completed,
        "failed": c.failed,
        "skipped": c.skipped,
    })
}

/// Prints JSON to stdout (pretty), ignoring a closed pipe; no control, bidi or line separator
/// character raw in it ([`json_safe`]).
pub(crate) fn print_json(v: &Value) {
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into());
    write_all_stdout(format!("{}\n", json_safe(text)).as_bytes());
}

/// `println!` that does not panic when stdout is a closed pipe (`orch status | head`), and
/// writes everything even to a non-blocking pipe that is full (see [`write_all_stdout`]);
/// control characters but newline and tab shown escaped ([`escaped_lines`]).
pub(crate) fn println_safe(text: &str) {
    write_all_stdout(format!("{}\n", escaped_lines(text)).as_bytes());
}

/// Writes all of `bytes` to stdout and flushes, as they are: for text that is escaped already
/// (a JSON document of [`print_json`], a report built of lines of [`escaped_lines`]). A non-blocking stdout (some agent runtimes
/// hand their children one) that is full is waited out instead of losing the rest, which
/// `println!` would; a reader that went away ends the output quietly.
pub(crate) fn write_all_stdout(bytes: &[u8]) {
    write_all_to(&mut std::io::stdout().lock(), bytes);
}

/// `eprintln!` that neither panics nor loses text on a full non-blocking or closed stderr;
/// control characters but newline and tab shown escaped ([`escaped_lines`]).
pub(crate) fn eprintln_safe(text: &str) {
    write_all_to(
        &mut std::io::stderr().lock(),
        format!("{}\n", escaped_lines(text)).as_bytes(),
    );
}

fn write_all_to(out: &mut impl std::io::Write, bytes: &[u8]) {
    use std::io::ErrorKind;
    let pause = || std::thread::sleep(std::time::Duration::from_millis(1));
    let mut rest = bytes;
    while !rest.is_empty() {
        match out.write(rest) {
            Ok(0) => return,
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => pause(),
            Err(_) => return,
        }
    }
    loop {
        match out.flush() {
            Ok(()) => return,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => pause(),
            Err(_) => return,
        }
    }
}

/// A progress bar of `width` cells.
pub(crate) fn bar(done: usize, total: usize, width: usize) -> String {
    crate::top::view::bar_of(done, total, width, "█", "░")
}
