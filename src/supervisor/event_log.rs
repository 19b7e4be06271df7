//! `<state_dir>/.events.jsonl`: every event of `orch up` (the lines of `--json`), appended
//! whether or not `--json` is given, for `orch top` and scripts to attach to a run. Rotated at
//! [`MAX_BYTES`]: the full file becomes `.events.jsonl.1` (replacing an older one). Nobody has to
//! read it; a write that fails is dropped (the run goes on) and said once.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::event::{Event, Stamped};

/// The file's name in the state directory.
pub(crate) const EVENTS_FILE: &str = crate::state_layout::EVENTS.name;
/// The size past which the file is rotated.
pub(crate) const MAX_BYTES: u64 = 10 * 1024 * 1024;

/// The event log of one run.
pub(crate) struct EventLog {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max: u64,
    /// A write failed (said once).
    pub(crate) failed: Option<String>,
}

impl EventLog {
    /// Opens (appends to) `<state_dir>/.events.jsonl`.
    pub(crate) fn open(state_dir: &Path) -> Self {
        Self::with_limit(state_dir, MAX_BYTES)
    }

    /// [`EventLog::open`] rotating at `max` bytes.
    pub(crate) fn with_limit(state_dir: &Path, max: u64) -> Self {
        let mut log = EventLog {
            path: crate::state_layout::EVENTS.at(state_dir),
            file: None,
            size: 0,
            max,
            failed: None,
        };
        log.reopen();
        log
    }

    fn reopen(&mut self) {
        match crate::links::no_follow()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| crate::links::refused(&self.path, e))
        {
            Ok(f) => {
                self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
                self.file = Some(f);
            }
            Err(e) => self.fail(format!("cannot open `{}`: {e}", self.path.display())),
        }
    }

    fn fail(&mut self, message: String) {
        self.file = None;
        if self.failed.is_none() {
            self.failed = Some(message);
        }
    }

    /// Appends `e` as one JSON line (with its `at` time), rotating first when the file is full.
    pub(crate) fn append(&mut self, e: &Event) {
        let Ok(mut line) = serde_json::to_string(&Stamped::now(e)) else {
            return;
        };
        line.push('\n');
        if self.size > 0 && self.size + line.len() as u64 > self.max {
            let old = self.path.with_file_name(format!("{EVENTS_FILE}.1"));
            self.file = None;
            if let Err(e) = std::fs::rename(&self.path, &old) {
                self.fail(format!("cannot rotate `{}`: {e}", self.path.display()));
                return;
            }
            self.reopen();
        }
        let Some(f) = self.file.as_mut() else { return };
        match f.write_all(line.as_bytes()) {
            Ok(()) => self.size += line.len() as u64,
            Err(e) => self.fail(format!("cannot write `{}`: {e}", self.path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(i: usize) -> Event {
        Event::Note {
            plan: None,
            message: format!("note {i}"),
        }
    }

    #[test]
    fn appends_json_lines_and_rotates_keeping_one_old_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = EventLog::with_limit(dir.path(), 400);
        for i in 0..20 {
            log.append(&note(i));
        }
        assert!(log.failed.is_none());
        let now = std::fs::read_to_string(dir.path().join(EVENTS_FILE)).expect("log");
        let old = std::fs::read_to_string(dir.path().join(".events.jsonl.1")).expect("old");
        assert!(now.len() <= 400 && old.len() <= 400);
        let last: serde_json::Value =
            serde_json::from_str(now.lines().last().expect("line")).expect("json");
        assert_eq!(last["event"], "note");
        assert_eq!(last["message"], "note 19");
        assert!(last["at"].is_string());
        // No third file: one old file is kept.
        let files = std::fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(files, 2);
        // Reopened, it appends.
        let mut again = EventLog::with_limit(dir.path(), 400);
        again.append(&note(20));
        let now = std::fs::read_to_string(dir.path().join(EVENTS_FILE)).expect("log");
        assert!(now.contains("note 20"));
    }

    #[test]
    fn an_unwritable_place_is_said_once_and_nothing_else_happens() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = EventLog::open(&dir.path().join("missing/deeper"));
        log.append(&note(1));
        assert!(log.failed.is_some());
    }
}
