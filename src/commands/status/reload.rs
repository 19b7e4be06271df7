//! The last re-plan of the latest run, for `orch status`: its last `manifest_reloaded` or
//! `manifest_invalid` event in `<state_dir>/.events.jsonl` (then `.events.jsonl.1`, the file
//! before a rotation), after the run's `run_started`.

use std::path::Path;

use serde_json::Value;

#[cfg(test)]
use crate::supervisor::event_log::EVENTS_FILE;
use crate::supervisor::event_log::MAX_BYTES;

/// The event as logged (`at`, `event`, then `files` and `changes`, or `file` and `errors`);
/// `None` when the latest run has had none, or there is no event log.
pub(super) fn last_reload(state_dir: &Path) -> Option<Value> {
    use crate::state_layout::{EVENTS, EVENTS_ROTATED};
    for file in [EVENTS, EVENTS_ROTATED] {
        // The log's last MAX_BYTES at most (it is rotated past that size).
        let Ok((_, bytes)) = crate::untrusted::read::tail(&file.at(state_dir), 0, MAX_BYTES) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        // From the end: the run's last re-plan, unless its start comes first.
        for line in text.lines().rev() {
            if !(line.contains("\"manifest_") || line.contains("\"run_started\"")) {
                continue;
            }
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            match v.get("event").and_then(Value::as_str) {
                Some("run_started") => return None,
                Some("manifest_reloaded" | "manifest_invalid") => return Some(v),
                _ => {}
            }
        }
    }
    None
}

/// `re-plan: …` for the text view: what the reload changed, or the invalid edit's errors (the
/// first three lines of them) and its file, relative to `root` (the manifest's directory).
pub(super) fn line(v: &Value, root: &Path) -> String {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    let strings = |k: &str| crate::top::model::strings(v, k);
    if s("event") == "manifest_invalid" {
        let errors: Vec<&str> = strings("errors")
            .into_iter()
            .flat_map(str::lines)
            .map(str::trim)
            .collect();
        let more = errors.len().saturating_sub(3);
        let mut out = format!(
            "re-plan: `{}` invalid since {}, not applied (the last good configuration stays):\n  {}",
            Path::new(s("file"))
                .strip_prefix(root)
                .unwrap_or(Path::new(s("file")))
                .display(),
            s("at"),
            errors[..errors.len().min(3)].join("\n  ")
        );
        if more > 0 {
            out.push_str(&format!("\n  … {more} more line(s)"));
        }
        out.push('\n');
        out
    } else {
        let changes = strings("changes");
        let what = if changes.is_empty() {
            "nothing the run uses changed".to_string()
        } else {
            changes.join("; ")
        };
        format!("re-plan: reloaded at {}: {what}\n", s("at"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, lines: &[&str]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(dir.join(name), text).expect("write");
    }

    const STARTED: &str =
        r#"{"at":"2026-11-23T10:00:00.000Z","event":"run_started","plans":["a"],"max_agents":1}"#;
    const INVALID: &str = r#"{"at":"2026-11-23T10:01:00.000Z","event":"manifest_invalid","file":"/r/plans.toml","errors":["plans.toml:7:1: error: unknown key `nmae`\n  hint: the keys are name, file"]}"#;
    const RELOADED: &str = r#"{"at":"2026-11-23T10:02:00.000Z","event":"manifest_reloaded","files":["/r/plans.toml"],"changes":["plan c: added"]}"#;
    const NOTE: &str =
        r#"{"at":"2026-11-23T10:03:00.000Z","event":"note","plan":null,"message":"x"}"#;

    #[test]
    fn the_last_reload_of_the_latest_run_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(last_reload(dir.path()), None, "no event log");
        write(dir.path(), EVENTS_FILE, &[STARTED, INVALID, NOTE]);
        let v = last_reload(dir.path()).expect("invalid");
        assert_eq!(v["event"], "manifest_invalid");
        assert_eq!(
            line(&v, Path::new("/r")),
            "re-plan: `plans.toml` invalid since 2026-11-23T10:01:00.000Z, not applied (the last \
             good configuration stays):\n  plans.toml:7:1: error: unknown key `nmae`\n  hint: the \
             keys are name, file\n"
        );
        write(dir.path(), EVENTS_FILE, &[STARTED, INVALID, RELOADED, NOTE]);
        let v = last_reload(dir.path()).expect("reloaded");
        assert_eq!(v["changes"][0], "plan c: added");
        assert_eq!(
            line(&v, Path::new("/r")),
            "re-plan: reloaded at 2026-11-23T10:02:00.000Z: plan c: added\n"
        );
        // A run started since: none of its own.
        write(dir.path(), EVENTS_FILE, &[INVALID, RELOADED, STARTED, NOTE]);
        assert_eq!(last_reload(dir.path()), None);
    }

    #[test]
    fn the_file_before_a_rotation_is_read_when_the_run_started_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "events.jsonl.1", &[STARTED, RELOADED, NOTE]);
        write(dir.path(), EVENTS_FILE, &[NOTE]);
        let v = last_reload(dir.path()).expect("in the rotated file");
        assert_eq!(v["event"], "manifest_reloaded");
        write(dir.path(), EVENTS_FILE, &[STARTED]);
        assert_eq!(last_reload(dir.path()), None);
    }
}
