//! The page's data: a task's log tail (`orch logs --json`)
//! and the control verbs (as `orch mcp --allow-control` runs them), each orch's own command run
//! as a child ([`crate::commands::orch_child`]), bounded in time and output. Every string an
//! answer holds has its control characters escaped as orch escapes what it prints
//! ([`crate::untrusted::escaped_lines`]): no terminal bytes reach the page, which puts them
//! into the document as text only.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::Served;
use super::http::Answer;
use crate::commands::orch_child;
use crate::untrusted::escaped_lines;

/// How long a log may take.
const READ_MAX: Duration = Duration::from_secs(60);
/// How long a control verb may take.
const CONTROL_MAX: Duration = Duration::from_secs(120);
/// The end of a log the page shows.
pub(super) const LOG_TAIL: u64 = 16 << 10;
/// A task id at most (`2.3`, `V2`, `T012`).
const TASK_ID_MAX: usize = 64;

/// `v` with every string (and key) escaped.
pub(super) fn escaped(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(escaped_lines(&s).into_owned()),
        Value::Array(a) => Value::Array(a.into_iter().map(escaped).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (escaped_lines(&k).into_owned(), escaped(v)))
                .collect(),
        ),
        other => other,
    }
}

fn manifest_arg(served: &Served) -> String {
    format!("--manifest={}", served.manifest.display())
}

/// Runs `orch ARGV`; its JSON (escaped) with 200, else its exit code and message with `failed`.
async fn run_json(argv: &[String], deadline: Duration, failed: u16) -> Answer {
    match orch_child::run(argv, deadline).await {
        Ok(out) if out.cut => Answer::error(
            502,
            "Bad Gateway",
            "the command printed more than the page takes",
        ),
        Ok(out) if out.code == 0 => match serde_json::from_str::<Value>(&out.stdout) {
            Ok(v) => Answer::json(200, "OK", &escaped(v)),
            Err(_) => Answer::error(502, "Bad Gateway", "the command printed no JSON"),
        },
        Ok(out) => {
            let output = serde_json::from_str::<Value>(&out.stdout).unwrap_or(Value::Null);
            Answer::json(
                failed,
                if failed == 409 {
                    "Conflict"
                } else {
                    "Bad Gateway"
                },
                &escaped(json!({
                    "exit_code": out.code,
                    "error": out.stderr.trim_end(),
                    "output": output,
                })),
            )
        }
        Err(e) => Answer::error(502, "Bad Gateway", &escaped_lines(&e.to_string())),
    }
}

/// Whether `id` may be a task's id: letters, digits, `.`, `-`, `_`, never an option.
fn task_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= TASK_ID_MAX
        && !id.starts_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// `GET /api/logs?plan=P&task=T`: the end of the task's log (`orch logs --json`, the last
/// [`LOG_TAIL`] bytes).
pub(super) async fn logs(served: &Served, plan: Option<String>, task: Option<String>) -> Answer {
    let (Some(plan), Some(task)) = (plan, task) else {
        return Answer::error(400, "Bad Request", "give `plan` and `task`");
    };
    if crate::manifest::check_plan_name(&plan).is_err() || !task_id_ok(&task) {
        return Answer::error(400, "Bad Request", "not a plan's name and a task's id");
    }
    // A few at once: however many a client asks for, orch runs few commands.
    let Ok(_slot) = served.log_reads.acquire().await else {
        return Answer::error(503, "Service Unavailable", "the server is stopping");
    };
    let argv = vec![
        "--color=never".to_string(),
        "logs".into(),
        "--json".into(),
        format!("--tail-bytes={LOG_TAIL}"),
        manifest_arg(served),
        "--".into(),
        plan,
        task,
    ];
    run_json(&argv, READ_MAX, 404).await
}

/// `POST /api/control/<verb>`: the verb run as `orch mcp --allow-control` runs it; what it
/// printed (200), its exit code and message (409), or what is wrong with the call (400).
pub(super) async fn control(served: &Served, verb: &str, args: &Map<String, Value>) -> Answer {
    let argv = match crate::commands::mcp::control_argv(verb, args, Some(&served.manifest)) {
        Ok(a) => a,
        Err(why) => return Answer::error(400, "Bad Request", &escaped_lines(&why)),
    };
    let answer = run_json(&argv, CONTROL_MAX, 409).await;
    // What the verb changed is in the status files, maybe with no event (no `orch up` runs):
    // the next status is computed afresh, never the one from before it.
    *served.status.lock().await = None;
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_is_escaped() {
        let v = escaped(json!({"a\u{1b}": ["x\u{1b}[2J", {"b": "\u{202e}y\nz"}], "n": 1}));
        let text = v.to_string();
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}'),
            "{text}"
        );
        assert_eq!(v["a\\u{1b}"][1]["b"], "\\u{202e}y\nz");
    }

    #[test]
    fn a_task_id_is_never_an_option_or_a_path() {
        for bad in ["", "-x", "--force", "../a", "a/b", "a b", &"1".repeat(65)] {
            assert!(!task_id_ok(bad), "{bad}");
        }
        for good in ["1.1", "V2", "T012", "a_b-c"] {
            assert!(task_id_ok(good), "{good}");
        }
    }
}
