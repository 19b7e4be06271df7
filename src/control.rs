//! Run control through the status protocol: `orch pause|resume PLAN`, `orch retry|stop PLAN ID`
//! (and the same keys of `orch top`). Each is one locked update of the plan's status file; a
//! running `orch up` sees the change through its watcher and acts on it (the core's
//! `control.rs`), and a later `orch up` reads it at start-up. Nothing else is needed when no
//! supervisor runs.
//!
//! Fields (orch's own, beside the earlier system's format):
//! - `orchPlanPaused` (top level): `{"at": timestamp}` while a person holds the plan paused.
//!   Distinct from `orchPaused`, which the supervisor writes for an agent waiting out a usage
//!   limit and removes by itself.
//! - `orchStopped` (a task entry): the timestamp of `orch stop`; the task is failed with the
//!   cause `stopped` and no supervisor retries it until `orch retry` removes the mark.

use chrono::Utc;
use serde_json::json;

use crate::error::{CliError, CliResult};
use crate::status::{
    self, PAUSED_KEY, STOPPED, STOPPED_KEY, StatusError, TaskStatus, Transition, TransitionOptions,
};
use crate::supervisor::lock::running;
use crate::workspace::{LoadedPlan, Workspace};

/// Pauses (`true`) or resumes plan `lp`; returns whether that changed anything.
pub(crate) fn set_paused(lp: &LoadedPlan, paused: bool) -> Result<bool, StatusError> {
    lp.update_status(|doc| {
        let had = doc.extra.contains_key(PAUSED_KEY);
        if paused && !had {
            doc.extra.insert(
                PAUSED_KEY.into(),
                json!({ "at": status::timestamp(Utc::now()) }),
            );
        } else if !paused && had {
            doc.extra.remove(PAUSED_KEY);
        }
        Ok(had != paused)
    })
}

/// What `orch retry` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Retried {
    /// The cause of the failure it had.
    pub(crate) error: Option<String>,
    /// Attempts recorded so far (the next one is this plus one).
    pub(crate) attempts: u32,
}

/// Puts failed task `id` of plan `lp` back to pending (removing a stop mark). A task that is
/// not failed is refused (exit 4).
pub(crate) fn retry(lp: &LoadedPlan, id: &str) -> Result<Retried, StatusError> {
    lp.update_status(|doc| {
        let e = doc.entry(id).ok_or_else(|| unknown(lp, id))?;
        if e.status != TaskStatus::Failed {
            return Err(StatusError::Refused {
                id: id.to_string(),
                status: e.status,
                message: format!(
                    "task `{id}` of plan `{}` is {}; only a failed task can be retried",
                    lp.name, e.status
                ),
            });
        }
        let before = Retried {
            error: e.error.clone(),
            attempts: e.attempts,
        };
        status::apply(
            doc,
            id,
            Transition::Reset,
            &TransitionOptions::default(),
            Utc::now(),
        )?;
        if let Some(e) = doc.entry_mut(id) {
            e.extra.remove(STOPPED_KEY);
        }
        Ok(before)
    })
}

/// What `orch stop` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stopped {
    /// It was in progress (an agent runs it).
    pub(crate) was_running: bool,
    /// The agent's process as recorded (pid, process start time), when it was in progress: the
    /// task's own, or in plan mode the plan's agent.
    pub(crate) run: Option<(u32, u64)>,
    pub(crate) attempts: u32,
}

/// Records task `id` of plan `lp` failed with the cause `stopped` and marks it stopped. Only a
/// task in progress (or failed and waiting for a retry) can be stopped; others are refused.
pub(crate) fn stop(lp: &LoadedPlan, id: &str) -> Result<Stopped, StatusError> {
    lp.update_status(|doc| {
        let e = doc.entry(id).ok_or_else(|| unknown(lp, id))?;
        let from = e.status;
        let already = e.extra.contains_key(STOPPED_KEY);
        if !matches!(from, TaskStatus::InProgress | TaskStatus::Failed) || already {
            let what = if already {
                "already stopped".to_string()
            } else {
                from.to_string()
            };
            return Err(StatusError::Refused {
                id: id.to_string(),
                status: from,
                message: format!(
                    "task `{id}` of plan `{}` is {what}; only a running task (or a failed one \
                     waiting for its retry) can be stopped",
                    lp.name
                ),
            });
        }
        // The task's own agent, else (plan mode) the plan's agent, which runs the task it
        // claimed.
        let plan_agent = doc
            .orch_plan_agent
            .as_ref()
            .filter(|a| a.pid > 0 && from == TaskStatus::InProgress)
            .and_then(|a| Some((a.pid, a.process_start_time?)));
        let out = Stopped {
            was_running: from == TaskStatus::InProgress,
            run: e
                .orch_run
                .as_ref()
                .filter(|r| r.pid > 0)
                .map(|r| (r.pid, r.process_start_time))
                .or(plan_agent),
            attempts: e.attempts,
        };
        let opts = TransitionOptions {
            error: Some(STOPPED.to_string()),
            ..Default::default()
        };
        status::apply(doc, id, Transition::Fail, &opts, Utc::now())?;
        if let Some(e) = doc.entry_mut(id) {
            e.extra
                .insert(STOPPED_KEY.into(), json!(status::timestamp(Utc::now())));
        }
        Ok(out)
    })
}

/// Answers the question task `id` of plan `lp` asked with `text`: kept in the status file
/// (`orchAnswers`), the task pending again. A task that asked nothing is refused (exit 4).
/// The question answered.
pub(crate) fn answer(lp: &LoadedPlan, id: &str, text: &str) -> Result<String, StatusError> {
    lp.update_status(|doc| {
        doc.entry(id).ok_or_else(|| unknown(lp, id))?;
        status::answer(doc, id, text, Utc::now())?;
        let question = doc
            .entry(id)
            .and_then(|e| e.orch_answers.last())
            .map(|a| a.question.clone())
            .unwrap_or_default();
        Ok(question)
    })
}

/// Keeps `text` as a message to task `id` of plan `lp` (`orchMessages`): every next attempt's
/// prompt holds it. With `restart`, a task in progress is put back to pending in the same
/// change, which a running `orch up` acts on as on a stop and a retry read together: the running
/// attempt is stopped and the task runs again now.
pub(crate) fn say(
    lp: &LoadedPlan,
    id: &str,
    text: &str,
    restart: bool,
) -> Result<Said, StatusError> {
    lp.update_status(|doc| {
        let e = doc.entry_mut(id).ok_or_else(|| unknown(lp, id))?;
        if matches!(e.status, TaskStatus::Completed | TaskStatus::Skipped) {
            // No attempt of it will read the message: say so rather than keep it for none.
            return Err(StatusError::Refused {
                id: id.to_string(),
                status: e.status,
                message: format!(
                    "task {id} is {}: no attempt of it will run to read the message (nothing \
                     was kept); to change its work, add a task to the plan",
                    e.status.as_str()
                ),
            });
        }
        e.orch_messages.push(status::OrchMessage {
            text: text.to_string(),
            at: status::timestamp(Utc::now()),
            delivery: None,
            attempt: None,
        });
        let index = e.orch_messages.len() - 1;
        let running = e.status == TaskStatus::InProgress;
        if restart && running {
            let attempts = e.attempts;
            let opts = TransitionOptions {
                force: true,
                ..Default::default()
            };
            status::apply(doc, id, Transition::Reset, &opts, Utc::now())?;
            if let Some(e) = doc.entry_mut(id) {
                e.attempts = attempts;
            }
        } else {
            doc.last_updated_at = Some(status::timestamp(Utc::now()));
        }
        Ok(Said {
            index,
            running,
            restarted: restart && running,
        })
    })
}

/// What `orch say` did: the message's place in `orchMessages`, whether the task was in
/// progress, whether its attempt was restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Said {
    pub(crate) index: usize,
    pub(crate) running: bool,
    pub(crate) restarted: bool,
}

/// How long `orch say` waits for a running `orch up` to say what it did with a message to a
/// running task.
const TELL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits (at most [`TELL_WAIT`]) for the running supervisor's record of message `index` of
/// task `id`: the attempt it was delivered to, `None` when it was kept (or nothing was
/// recorded in time: it is kept then too, the next attempt's prompt holds every message).
fn delivery(lp: &LoadedPlan, id: &str, index: usize) -> Option<u32> {
    let deadline = std::time::Instant::now() + TELL_WAIT;
    loop {
        let seen = lp.read_status().ok().and_then(|doc| {
            let m = doc.entry(id)?.orch_messages.get(index)?.clone();
            m.delivery.map(|how| (how, m.attempt))
        });
        match seen {
            Some((how, attempt)) => return attempt.filter(|_| how == "delivered"),
            None if std::time::Instant::now() >= deadline => return None,
            None => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

fn unknown(lp: &LoadedPlan, id: &str) -> StatusError {
    StatusError::UnknownTask {
        id: id.to_string(),
        path: std::path::PathBuf::from(&lp.rel_path),
    }
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    Pause {
        plan: String,
    },
    Resume {
        plan: String,
    },
    Retry {
        plan: String,
        id: String,
    },
    Stop {
        plan: String,
        id: String,
    },
    /// `orch answer PLAN ID TEXT`: a person's answer to the question the task's agent asked.
    Answer {
        plan: String,
        id: String,
        text: String,
    },
    /// `orch say PLAN ID TEXT [--restart]`: a person's message to a task.
    Say {
        plan: String,
        id: String,
        text: String,
        restart: bool,
    },
}

/// What was done, in words and as a JSON object (`event` named as `orch up --json` names it).
#[derive(Clone, Debug)]
pub(crate) struct Done {
    pub(crate) message: String,
    pub(crate) json: serde_json::Value,
}

/// Carries `request` out in workspace `ws` (also what `orch top`'s keys call).
pub(crate) fn apply(ws: &Workspace, request: &Request) -> CliResult<Done> {
    let Some(m) = ws.manifest.as_ref() else {
        return Err(CliError::invalid(anyhow::anyhow!(
            "run control needs a plans.toml (plans are named there)"
        )));
    };
    let state_dir = m.root.join(&m.defaults.state_dir);
    let (Request::Pause { plan }
    | Request::Resume { plan }
    | Request::Retry { plan, .. }
    | Request::Stop { plan, .. }
    | Request::Answer { plan, .. }
    | Request::Say { plan, .. }) = request;
    let index = ws.select(std::slice::from_ref(plan))?[0];
    let lp = &ws.plans[index];
    let sup = running(&state_dir);
    let (message, mut value) = match request {
        Request::Pause { plan } | Request::Resume { plan } => {
            let pause = matches!(request, Request::Pause { .. });
            let changed = set_paused(lp, pause).map_err(CliError::coded)?;
            let (event, msg) = match (pause, changed) {
                (true, true) => (
                    "plan_paused",
                    "paused: nothing new of it starts; running agents go on",
                ),
                (true, false) => ("plan_paused", "was already paused"),
                (false, true) => ("plan_resumed", "resumed"),
                (false, false) => ("plan_resumed", "was not paused"),
            };
            (
                format!("plan {plan} {msg}"),
                json!({"event": event, "plan": plan, "changed": changed}),
            )
        }
        Request::Retry { plan, id } => {
            known_task(lp, id)?;
            let r = retry(lp, id).map_err(CliError::coded)?;
            let msg = format!(
                "{plan} {id} is pending again (it failed: {}); its next attempt is {}, with a fresh set of retries",
                r.error.as_deref().unwrap_or("no cause recorded"),
                r.attempts + 1
            );
            (
                msg,
                json!({"event": "task_retried", "plan": plan, "task": id, "attempt": r.attempts + 1}),
            )
        }
        Request::Stop { plan, id } => {
            known_task(lp, id)?;
            let s = stop(lp, id).map_err(CliError::coded)?;
            let mut msg = format!(
                "{plan} {id} stopped: failed with the cause `stopped`; `orch retry {plan} {id}` runs it again"
            );
            // No supervisor to stop the agent: stop its process group here.
            if sup.is_none()
                && let Some((pid, start)) = s.run
                && crate::process::process_alive(pid, start)
            {
                crate::process::signal_group(pid, nix::sys::signal::Signal::SIGTERM);
                msg.push_str(&format!(" (its agent, pid {pid}, was sent SIGTERM)"));
            }
            (
                msg,
                json!({"event": "task_stopped", "plan": plan, "task": id, "attempt": s.attempts, "was_running": s.was_running}),
            )
        }
        Request::Answer { plan, id, text } => {
            known_task(lp, id)?;
            if let Some(why) = crate::supervisor::ask::text_refused("answer", text) {
                return Err(CliError::invalid(anyhow::anyhow!("{why}")));
            }
            let question = answer(lp, id, text).map_err(CliError::coded)?;
            (
                format!(
                    "{plan} {id} is pending again with the answer to its question ({}); its \
                     next attempt gets both",
                    crate::untrusted::text::escaped(&question)
                ),
                json!({"event": "task_answered", "plan": plan, "task": id, "question": question, "answer": text}),
            )
        }
        Request::Say {
            plan,
            id,
            text,
            restart,
        } => {
            known_task(lp, id)?;
            if let Some(why) = crate::supervisor::ask::text_refused("message", text) {
                return Err(CliError::invalid(anyhow::anyhow!("{why}")));
            }
            let said = say(lp, id, text, *restart).map_err(CliError::coded)?;
            // A running `orch up` delivers it to the running attempt where its agent reads
            // messages, and records which it did.
            let delivered = match (&sup, said.running && !said.restarted) {
                (Some(_), true) => delivery(lp, id, said.index),
                _ => None,
            };
            let msg = match delivered {
                Some(attempt) => format!("delivered (to its running attempt {attempt})"),
                None if said.restarted => "kept for the next attempt; its running attempt is \
                                           stopped and the next one starts with it"
                    .to_string(),
                None => "kept for the next attempt".to_string(),
            };
            (
                msg,
                json!({"event": "task_told", "plan": plan, "task": id, "delivered": delivered.is_some(), "attempt": delivered, "restarted": said.restarted}),
            )
        }
    };
    let note = match &sup {
        Some(h) => format!(
            "the running `orch up` (pid {}) acts on it within a second",
            h.pid
        ),
        None => "no `orch up` is running: the next one starts from this".to_string(),
    };
    value["supervisor_pid"] = json!(sup.as_ref().map(|h| h.pid));
    Ok(Done {
        message: format!("{message}\n{note}"),
        json: value,
    })
}

fn known_task(lp: &LoadedPlan, id: &str) -> CliResult<()> {
    if lp.plan.task(id).is_some() {
        return Ok(());
    }
    Err(CliError::invalid(anyhow::anyhow!(
        "task `{id}` does not exist in plan `{}`",
        lp.name
    ))
    .with_hint(format!(
        "`orch status --plan {}` lists the task ids",
        lp.name
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Coded;
    use crate::status::is_paused;

    fn plan_in(dir: &std::path::Path) -> LoadedPlan {
        let text = "# P\n\n## Phase 1: One\n\n- [ ] 1.1 First\n- [ ] 1.2 Second (depends: 1.1)\n";
        let plan = crate::plan::parse(std::path::Path::new("p.md"), text);
        LoadedPlan {
            name: "p".into(),
            plan,
            rel_path: "p.md".into(),
            status_path: dir.join("p").join("status.json"),
            priority: 0,
            repo: None,
        }
    }

    fn set(lp: &LoadedPlan, id: &str, t: Transition, error: Option<&str>) {
        status::update(
            &lp.status_path,
            &lp.plan,
            &lp.rel_path,
            &lp.name,
            |doc, _| {
                let opts = TransitionOptions {
                    error: error.map(str::to_string),
                    ..Default::default()
                };
                status::apply(doc, id, t, &opts, Utc::now())
            },
        )
        .expect("update");
    }

    #[test]
    fn pause_and_resume_are_recorded_and_seen_in_the_document() {
        let dir = tempfile::tempdir().expect("tmp");
        let lp = plan_in(dir.path());
        assert!(set_paused(&lp, true).expect("pause"));
        assert!(!set_paused(&lp, true).expect("again"), "idempotent");
        let bytes = std::fs::read(&lp.status_path).expect("read");
        assert!(is_paused(&lp.read_status().expect("doc")));
        // The agent's usage-limit pause is another key.
        assert!(!String::from_utf8_lossy(&bytes).contains("\"orchPaused\""));
        assert!(set_paused(&lp, false).expect("resume"));
        assert!(!is_paused(&lp.read_status().expect("doc")));
    }

    #[test]
    fn stop_marks_a_running_task_failed_and_retry_clears_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let lp = plan_in(dir.path());
        // Not running: refused, nothing written.
        let e = stop(&lp, "1.1").expect_err("pending");
        assert_eq!(e.exit_code(), crate::error::exit::REFUSED);
        set(&lp, "1.1", Transition::Start, None);
        let s = stop(&lp, "1.1").expect("stop");
        assert!(s.was_running);
        let doc = lp.read_status().expect("doc");
        let e = doc.entry("1.1").expect("1.1");
        assert_eq!(e.status, TaskStatus::Failed);
        assert_eq!(e.error.as_deref(), Some(STOPPED));
        assert!(e.extra.contains_key(STOPPED_KEY));
        assert!(stop(&lp, "1.1").is_err(), "already stopped");
        let r = retry(&lp, "1.1").expect("retry");
        assert_eq!(r.attempts, 1);
        assert_eq!(r.error.as_deref(), Some(STOPPED));
        let doc = lp.read_status().expect("doc");
        let e = doc.entry("1.1").expect("1.1");
        assert_eq!(e.status, TaskStatus::Pending);
        assert!(!e.extra.contains_key(STOPPED_KEY));
        assert_eq!(e.attempts, 1, "attempts go on counting");
        assert_eq!(
            retry(&lp, "1.1").expect_err("pending").exit_code(),
            crate::error::exit::REFUSED
        );
        assert_eq!(
            retry(&lp, "9.9").expect_err("unknown").exit_code(),
            crate::error::exit::INVALID
        );
    }

    #[test]
    fn retry_puts_a_failed_task_back() {
        let dir = tempfile::tempdir().expect("tmp");
        let lp = plan_in(dir.path());
        set(&lp, "1.1", Transition::Start, None);
        set(&lp, "1.1", Transition::Fail, Some("boom"));
        let r = retry(&lp, "1.1").expect("retry");
        assert_eq!(r.error.as_deref(), Some("boom"));
        let doc = lp.read_status().expect("doc");
        assert_eq!(doc.entry("1.1").expect("e").status, TaskStatus::Pending);
    }
}
