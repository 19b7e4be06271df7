//! The run's events as `orch mcp`'s `wait` and `up` and `orch serve`'s live stream read them: orch's own event log
//! (`<state_dir>/.events.jsonl`, the lines of `orch up --json`), read forward from a cursor (a
//! byte offset) through the bounded reader, whole lines only, a rotation followed; and a wait
//! for the next event that matches, woken by the directory's watcher (a tick every few seconds
//! only in case a change was missed), never a busy loop.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::state_layout::{EVENTS, EVENTS_ROTATED};
use crate::untrusted::read;

/// The events `wait` knows, and waits for when none is named.
pub(crate) const KINDS: [&str; 5] = [
    "task_finished",
    "task_failed",
    "task_needs_input",
    "plan_finished",
    "run_finished",
];

/// What one read takes of the log at most; a line longer than this is skipped.
const WINDOW: u64 = 1 << 20;
/// How often the log is read again without a word from the watcher.
const TICK: Duration = Duration::from_secs(2);

/// Which events a wait returns.
#[derive(Clone, Debug)]
pub(crate) struct Filter {
    pub(crate) kinds: Vec<String>,
    pub(crate) plan: Option<String>,
    pub(crate) task: Option<String>,
}

impl Filter {
    /// Whether event `v` is one of these: its kind named (any kind when none is), of the plan
    /// and task given (the run's end is every plan's).
    pub(crate) fn matches(&self, v: &Value) -> bool {
        let Some(kind) = v["event"].as_str() else {
            return false;
        };
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k == kind) {
            return false;
        }
        if kind == "run_finished" {
            return true;
        }
        let same = |field: &str, want: &Option<String>| {
            want.as_deref().is_none_or(|w| v[field].as_str() == Some(w))
        };
        same("plan", &self.plan) && same("task", &self.task)
    }
}

/// The event log of a state directory, read from a cursor.
pub(crate) struct Log {
    path: PathBuf,
    rotated: PathBuf,
    /// Where the next read starts in the log.
    pub(crate) cursor: u64,
}

impl Log {
    /// The log of `state_dir`, read from `cursor` (its end now without one).
    pub(crate) fn open(state_dir: &Path, cursor: Option<u64>) -> Self {
        let path = EVENTS.at(state_dir);
        let rotated = EVENTS_ROTATED.at(state_dir);
        let now = len(&path);
        // A cursor past the end of the log and of the one it rotated from names no place a
        // reader was: it waits from the end, not from a start it would take for a rotation.
        let cursor = match cursor {
            Some(c) if c > now && c > len(&rotated) => now,
            Some(c) => c,
            None => now,
        };
        Self {
            rotated,
            path,
            cursor,
        }
    }

    /// The first event after the cursor that `filter` takes, the cursor moved past it; else
    /// `None`, the cursor at the log's last whole line.
    pub(crate) fn next(&mut self, filter: &Filter) -> Option<Value> {
        let now = len(&self.path);
        if now < self.cursor {
            // Rotated: the rest of the old file, then the new one from its start.
            let mut old = Self {
                path: self.rotated.clone(),
                rotated: self.rotated.clone(),
                cursor: self.cursor,
            };
            self.cursor = 0;
            if let Some(v) = old.scan(filter) {
                return Some(v);
            }
        }
        self.scan(filter)
    }

    fn scan(&mut self, filter: &Filter) -> Option<Value> {
        loop {
            let bytes = chunk(&self.path, self.cursor)?;
            if bytes.is_empty() {
                return None;
            }
            let Some(end) = bytes.iter().rposition(|b| *b == b'\n') else {
                // No whole line: wait for the rest, unless the line is longer than any event.
                if bytes.len() as u64 >= WINDOW {
                    self.cursor += bytes.len() as u64;
                    continue;
                }
                return None;
            };
            let mut at = 0;
            for line in bytes[..=end].split_inclusive(|b| *b == b'\n') {
                at += line.len();
                let Ok(v) = serde_json::from_slice::<Value>(line) else {
                    continue;
                };
                if filter.matches(&v) {
                    self.cursor += at as u64;
                    return Some(v);
                }
            }
            self.cursor += at as u64;
        }
    }
}

/// The log's length (0 when it is not there or not a regular file).
fn len(path: &Path) -> u64 {
    std::fs::symlink_metadata(path)
        .ok()
        .filter(std::fs::Metadata::is_file)
        .map_or(0, |m| m.len())
}

/// At most [`WINDOW`] bytes of the log from `from`, through the bounded reader (no link
/// followed, a regular file only); `None` when it cannot be read.
fn chunk(path: &Path, from: u64) -> Option<Vec<u8>> {
    let (mut file, size) = read::open(path).ok()?;
    if from >= size {
        return Some(Vec::new());
    }
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut bytes = Vec::new();
    file.take(WINDOW).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Waits for the first event after the log's cursor that `filter` takes, at most `timeout`:
/// the event, or `None` at the timeout. The state directory is watched (made when missing, as
/// `orch up` makes it); without a watcher, the log is read every [`TICK`].
pub(crate) async fn wait(
    state_dir: &Path,
    log: &mut Log,
    filter: &Filter,
    timeout: Duration,
) -> Option<Value> {
    let woken = Arc::new(tokio::sync::Notify::new());
    let names = [EVENTS.name, EVENTS_ROTATED.name]
        .iter()
        .map(std::ffi::OsString::from)
        .collect();
    let w = woken.clone();
    // Kept alive for the wait; events are hints, the log is read anyway.
    let _watcher =
        crate::watch::watch_dirs(&[(state_dir.to_path_buf(), false)], names, move |_| {
            w.notify_one();
        })
        .ok();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = log.next(filter) {
            return Some(v);
        }
        tokio::select! {
            () = woken.notified() => {}
            () = tokio::time::sleep(TICK) => {}
            () = tokio::time::sleep_until(deadline) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(kinds: &[&str], plan: Option<&str>, task: Option<&str>) -> Filter {
        Filter {
            kinds: kinds.iter().map(|k| (*k).to_string()).collect(),
            plan: plan.map(str::to_string),
            task: task.map(str::to_string),
        }
    }

    /// Whole lines only, from the cursor on, past what is not JSON; the cursor after the event
    /// returned; a rotation followed.
    #[test]
    fn a_cursor_past_every_end_waits_from_the_end() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            EVENTS.at(dir.path()),
            "{\"event\":\"task_finished\",\"plan\":\"a\",\"task\":\"1.1\"}\n",
        )
        .expect("events");
        let mut log = Log::open(dir.path(), Some(1_000_000_000_000));
        assert_eq!(log.cursor, len(&EVENTS.at(dir.path())));
        assert!(
            log.next(&filter(&["task_finished"], None, None)).is_none(),
            "an old event replayed"
        );
    }

    #[test]
    fn events_are_read_forward_from_the_cursor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = EVENTS.path(dir.path());
        std::fs::write(
            &path,
            "{\"event\":\"task_finished\",\"plan\":\"a\",\"task\":\"1.1\"}\nnot json\n",
        )
        .expect("write");
        let mut log = Log::open(dir.path(), None);
        let f = filter(&KINDS, Some("a"), None);
        assert_eq!(log.next(&f), None, "from the end");
        let mut log = Log::open(dir.path(), Some(0));
        assert_eq!(log.next(&f).expect("event")["task"], "1.1");
        assert_eq!(log.next(&f), None);
        // A partial line waits for its end.
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str("{\"event\":\"task_failed\",\"plan\":\"a\"");
        std::fs::write(&path, &text).expect("write");
        assert_eq!(log.next(&f), None);
        text.push_str(",\"task\":\"1.2\"}\n{\"event\":\"task_failed\",\"plan\":\"b\"}\n");
        std::fs::write(&path, &text).expect("write");
        assert_eq!(log.next(&f).expect("event")["task"], "1.2");
        assert_eq!(log.next(&f), None, "plan b is not asked for");
        // Rotated: the rest of the old file, then the new one.
        let end = log.cursor;
        text.push_str("{\"event\":\"plan_finished\",\"plan\":\"a\"}\n");
        std::fs::write(&path, &text).expect("write");
        std::fs::rename(&path, EVENTS_ROTATED.path(dir.path())).expect("rotate");
        std::fs::write(&path, "{\"event\":\"run_finished\"}\n").expect("write");
        let mut log = Log::open(dir.path(), Some(end));
        assert_eq!(log.next(&f).expect("event")["event"], "plan_finished");
        assert_eq!(log.next(&f).expect("event")["event"], "run_finished");
    }

    #[test]
    fn a_filter_takes_its_kinds_plan_and_task() {
        let ev = |s: &str| serde_json::from_str::<Value>(s).expect("json");
        let f = filter(&["task_failed"], Some("a"), Some("1.1"));
        assert!(f.matches(&ev(r#"{"event":"task_failed","plan":"a","task":"1.1"}"#)));
        assert!(!f.matches(&ev(r#"{"event":"task_failed","plan":"a","task":"1.2"}"#)));
        assert!(!f.matches(&ev(r#"{"event":"task_finished","plan":"a","task":"1.1"}"#)));
        assert!(!f.matches(&ev(r#"{"event":"task_failed","plan":"b","task":"1.1"}"#)));
        assert!(!f.matches(&ev(r#"{"plan":"a","task":"1.1"}"#)));
        let run = filter(&["run_finished"], Some("a"), None);
        assert!(run.matches(&ev(r#"{"event":"run_finished","summary":{}}"#)));
    }
}
