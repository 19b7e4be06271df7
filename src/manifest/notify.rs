//! `[[notify]]` tables: who hears about which events of `orch up` (a command or a webhook).

use std::time::Duration;

use super::raw::RawNotify;
use super::spans::{At, Bad, Reporter};
use super::values::{argv, duration};

/// Every event a hook may ask for: the `--json` events of `orch up`, and the ones a person
/// waits for that the supervisor reports when it sees them; each with whether it is chatty (one
/// or more per task or plan start, and notes, among them the notes about failed deliveries),
/// which a hook without `events` does not get.
pub(crate) const NOTIFY_EVENTS: &[(&str, bool)] = &[
    ("run_started", true),
    ("plan_started", true),
    ("upstream_merged", true),
    ("setup_finished", true),
    ("task_started", true),
    ("task_adopted", true),
    ("task_on_host", true),
    ("host_lost", false),
    ("host_back", false),
    ("task_finished", true),
    ("task_failed", false),
    ("task_stuck", false),
    ("agent_paused", false),
    ("agent_resumed", false),
    ("agent_failover", false),
    ("agent_restored", false),
    ("plan_paused", false),
    ("plan_resumed", false),
    ("task_retried", false),
    ("task_stopped", false),
    ("task_needs_input", false),
    ("budget_reached", false),
    ("plan_finished", false),
    ("plan_blocked", false),
    ("plan_merged", false),
    ("plan_merge_failed", false),
    ("integration_failed", false),
    ("integration_fixed", false),
    ("interrupted", false),
    ("report_refused", false),
    ("manifest_invalid", false),
    ("manifest_reloaded", false),
    ("note", true),
    ("run_finished", false),
    ("attempt_finished", true),
    ("resolve_started", false),
    ("resolved", false),
    ("resolve_failed", false),
    ("task_slow", false),
    ("run_forecast", true),
    // The review loop of `orch pr --watch`.
    ("review_round", false),
    ("review_pushed", false),
    ("review_synced", false),
    ("review_escalated", false),
    ("review_approved", false),
    ("review_landed", false),
    ("review_merge_failed", false),
    ("review_closed", false),
    ("review_error", false),
    ("review_note", true),
    ("review_waiting", true),
];

/// The default of a hook's `timeout`.
pub(crate) const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// One `[[notify]]` table, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NotifyHook {
    /// How messages name it: `notify #1 (notify-send)`, `notify #2 (https://hooks.example.com)`.
    pub(crate) name: String,
    /// The events it gets (`events`, or every event but the chatty ones).
    pub(crate) events: Vec<String>,
    /// Run with the event as one JSON line on stdin.
    pub(crate) command: Option<Vec<String>>,
    /// POSTed the event's JSON.
    pub(crate) webhook: Option<String>,
    /// Per delivery (`10s`).
    pub(crate) timeout: Duration,
    /// 1-based line of the table in the manifest.
    pub(crate) line: usize,
}

/// Checks the `[[notify]]` tables.
pub(super) fn hooks(raw: &[At<RawNotify>], r: &mut Reporter<'_>) -> Vec<NotifyHook> {
    let mut hooks = Vec::new();
    for (n, At { value: hook, span }) in raw.iter().enumerate() {
        let RawNotify {
            events,
            command,
            webhook,
            timeout,
        } = hook;
        let command = argv(r, "notify.command", command.as_ref());
        let webhook = r.check(webhook.as_ref(), |v| {
            if v.starts_with("http://") || v.starts_with("https://") {
                return Ok(v.clone());
            }
            Err(Bad::new(format!("`notify.webhook` `{v}` is not an http:// or https:// address"))
                .hint("write the whole address, such as \"https://hooks.slack.com/services/T000/B000/XXXX\""))
        });
        let (line, _) = r.line_col(span);
        let label = match (&command, &webhook) {
            (Some(c), None) => c[0].clone(),
            (None, Some(w)) => host_of(w),
            (Some(_), Some(_)) => {
                r.error_hint(
                    span,
                    "a `[[notify]]` table has both `command` and `webhook`",
                    "write one hook per table: a second `[[notify]]` for the other",
                );
                continue;
            }
            (None, None) => {
                r.error_hint(
                    span,
                    "a `[[notify]]` table needs `command` or `webhook`",
                    "command = [\"notify-send\", \"orch\"], or webhook = \"https://…\"",
                );
                continue;
            }
        };
        let mut chosen = Vec::new();
        match &events {
            Some(At { value, span }) => {
                if value.is_empty() {
                    r.error_hint(
                        span,
                        "`notify.events` must not be empty",
                        "remove the key for every event but the chatty ones",
                    );
                }
                for e in value {
                    if NOTIFY_EVENTS.iter().any(|(name, _)| *name == e.value) {
                        if !chosen.contains(&e.value) {
                            chosen.push(e.value.clone());
                        }
                    } else {
                        let names: Vec<&str> = NOTIFY_EVENTS.iter().map(|(n, _)| *n).collect();
                        r.error_hint(
                            &e.span,
                            format!("`notify.events`: unknown event `{}`", e.value),
                            format!("the events are {}", names.join(", ")),
                        );
                    }
                }
            }
            None => {
                chosen = NOTIFY_EVENTS
                    .iter()
                    .filter(|(_, chatty)| !chatty)
                    .map(|(name, _)| (*name).to_string())
                    .collect();
            }
        }
        let timeout = r.check(timeout.as_ref(), duration("notify.timeout", false));
        let timeout = timeout.unwrap_or(DEFAULT_NOTIFY_TIMEOUT);
        hooks.push(NotifyHook {
            name: format!("notify #{} ({label})", n + 1),
            events: chosen,
            command,
            webhook,
            timeout,
            line,
        });
    }
    hooks
}

/// `https://hooks.slack.com/services/…` → `https://hooks.slack.com`: how messages name a webhook
/// without its secret path.
fn host_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = host.rsplit('@').next().unwrap_or(host);
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_is_named_by_its_host_only() {
        assert_eq!(
            host_of("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            host_of("http://user:pw@127.0.0.1:8080/x?y"),
            "http://127.0.0.1:8080"
        );
    }
}
