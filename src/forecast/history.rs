//! The history: every settled attempt of `orch up`, one JSON line each, in
//! `<state_dir>/.history.jsonl`. `orch clean` leaves the state directory alone, so the history
//! outlives the worktrees and branches it came from.
//!
//! The file is orch's own (the state directory is not in any agent's write set, see the threat
//! model), but its text fields came from files an agent may edit on its branch (a task's
//! description) or from its client's output, so it is read defensively all the same: a line that
//! is too long, not JSON or not a record is skipped with a note naming its line, never a crash;
//! what it says is shown through the callers' escaping.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The history's file name in the state directory.
pub(crate) const FILE: &str = crate::state_layout::HISTORY.name;

/// The history keeps the newest records only: past this many, appending compacts the file to
/// [`KEEP`] records.
pub(crate) const MAX_RECORDS: usize = 20_000;
/// Records kept by a compaction.
pub(crate) const KEEP: usize = 10_000;
/// A line longer than this is skipped when read (a record is a few hundred bytes).
pub(crate) const MAX_LINE: usize = 16 * 1024;
/// At most this much of the file's end is read (a bounded history is far smaller).
pub(crate) const MAX_READ: u64 = 32 * 1024 * 1024;
/// Descriptions are kept to this many characters.
pub(crate) const DESCRIPTION_CHARS: usize = 200;

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The task was committed.
    Done,
    /// The attempt failed (it may have been retried).
    Failed,
}

/// A record's `at`: RFC 3339 in UTC, to the millisecond.
pub fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One settled attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the attempt settled (RFC 3339, to the millisecond: [`stamp`]; older records to the
    /// second). The backtest rebuilds each attempt's start from it and its duration, so its
    /// precision must match the duration's: to the second, attempts of a few seconds that ran
    /// one after the other seemed to overlap, and a plan that ran one task at a time was
    /// replayed as if it ran two.
    pub at: String,
    /// When its run started (RFC 3339): the attempts of one `orch up` share it.
    pub run: String,
    pub plan: String,
    pub task: String,
    /// The task's phase number.
    #[serde(default)]
    pub phase: u32,
    #[serde(default)]
    pub description: String,
    /// The manifest's agent name.
    pub agent: String,
    /// The model its client reported, else the agent's name.
    #[serde(default)]
    pub model: String,
    pub duration_ms: u64,
    #[serde(default)]
    pub tokens: u64,
    /// In millionths of a US dollar, when the client named a cost.
    #[serde(default)]
    pub cost_micro_usd: Option<u64>,
    pub outcome: Outcome,
    /// 1 for the first attempt; retries are `attempt - 1`.
    #[serde(default = "one")]
    pub attempt: u32,
    /// The task's `(est: …)`, in seconds.
    #[serde(default)]
    pub estimate_s: Option<u64>,
    /// The plan's place among the run's plans (0 first; the scheduler's order across plans when
    /// their priorities tie) and its priority: what `orch history --backtest` needs to replay
    /// the run's plans in the order they were given the agents. `None` in older records.
    #[serde(default)]
    pub plan_order: Option<u32>,
    #[serde(default)]
    pub plan_priority: Option<i64>,
}

fn one() -> u32 {
    1
}

impl Record {
    /// The attempt's duration in seconds.
    pub(crate) fn duration_s(&self) -> f64 {
        self.duration_ms as f64 / 1000.0
    }

    /// The attempt's cost in US dollars, when known.
    pub(crate) fn cost_usd(&self) -> Option<f64> {
        self.cost_micro_usd.map(crate::agent_output::micro_to_usd)
    }

    /// When it settled, as a timestamp (`None` when the text is not RFC 3339).
    pub(crate) fn end(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        crate::status::parse_timestamp(&self.at)
    }
}

/// The history as read: its records in file order (oldest first) and a note per skipped line.
#[derive(Clone, Debug, Default)]
pub(crate) struct History {
    pub(crate) records: Vec<Record>,
    pub(crate) skipped: Vec<String>,
}

impl History {
    /// `<state_dir>/.history.jsonl` (an earlier orch's `history.jsonl` taken over).
    pub(crate) fn path(state_dir: &Path) -> PathBuf {
        crate::state_layout::HISTORY.at(state_dir)
    }

    /// Reads the history of `state_dir`; a missing file is an empty history. Never fails: what
    /// cannot be read is a note.
    pub(crate) fn load(state_dir: &Path) -> History {
        let path = Self::path(state_dir);
        match read_tail(&path) {
            Ok(Some(bytes)) => Self::parse(&bytes),
            Ok(None) => History::default(),
            Err(e) => History {
                records: Vec::new(),
                skipped: vec![format!("{}: not read: {e}", path.display())],
            },
        }
    }

    /// The records of `bytes` (JSON lines); bad lines become notes (`line N: why`).
    pub(crate) fn parse(bytes: &[u8]) -> History {
        let mut h = History::default();
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let n = i + 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if line.len() > MAX_LINE {
                h.skipped
                    .push(format!("line {n}: skipped: {} bytes long", line.len()));
                continue;
            }
            match serde_json::from_slice::<Record>(line) {
                Ok(r) => h.records.push(r),
                Err(e) => h.skipped.push(format!("line {n}: skipped: {e}")),
            }
        }
        h
    }
}

/// The file's bytes (its last [`MAX_READ`] bytes, from a line start, when it is larger), read
/// without following a link; `None` when it does not exist.
fn read_tail(path: &Path) -> io::Result<Option<Vec<u8>>> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let (mut file, len) = match crate::untrusted::read::open(path) {
        Ok(f) => f,
        Err(e) if e.is_missing() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut bytes = Vec::new();
    if len > MAX_READ {
        file.seek(SeekFrom::Start(len - MAX_READ))?;
        file.take(MAX_READ).read_to_end(&mut bytes)?;
        // Drop the partial first line.
        let start = bytes.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1);
        bytes.drain(..start);
    } else {
        file.take(MAX_READ).read_to_end(&mut bytes)?;
    }
    Ok(Some(bytes))
}

/// `O_NOFOLLOW | O_NONBLOCK`: a link is not followed, a FIFO does not hang the open.
const OPEN_FLAGS: i32 = nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK;

/// Opens the history to append: a link is not followed, a FIFO or other special file is refused
/// (never waited on).
fn open_append(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(OPEN_FLAGS)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(f)
}

/// Appends records to a history file; compacts it when it passes [`MAX_RECORDS`].
#[derive(Debug)]
pub(crate) struct Writer {
    path: PathBuf,
    /// Records in the file, as counted when it was opened plus those appended since.
    count: usize,
    /// Why the history cannot be written (reported once by the caller).
    pub(crate) failed: Option<String>,
}

impl Writer {
    /// The writer of `<state_dir>/.history.jsonl`.
    pub(crate) fn open(state_dir: &Path) -> Writer {
        let path = History::path(state_dir);
        let count = match read_tail(&path) {
            Ok(Some(b)) => b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).count(),
            _ => 0,
        };
        Writer {
            path,
            count,
            failed: None,
        }
    }

    /// Appends `r` (its description cut to [`DESCRIPTION_CHARS`]).
    pub(crate) fn append(&mut self, r: &Record) {
        let mut r = r.clone();
        if r.description.chars().count() > DESCRIPTION_CHARS {
            r.description = r.description.chars().take(DESCRIPTION_CHARS).collect();
        }
        let result = serde_json::to_string(&r)
            .map_err(io::Error::other)
            .and_then(|mut line| {
                line.push('\n');
                let mut f = open_append(&self.path)?;
                f.write_all(line.as_bytes())
            });
        match result {
            Ok(()) => {
                self.count += 1;
                if self.count > MAX_RECORDS
                    && let Err(e) = self.compact()
                {
                    self.failed = Some(format!("history not compacted: {e}"));
                }
            }
            Err(e) => self.failed = Some(format!("{}: {e}", self.path.display())),
        }
    }

    /// Keeps the newest [`KEEP`] lines: written beside the file, then renamed over it.
    fn compact(&mut self) -> io::Result<()> {
        let Some(bytes) = read_tail(&self.path)? else {
            return Ok(());
        };
        let lines: Vec<&[u8]> = bytes
            .split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let keep = &lines[lines.len().saturating_sub(KEEP)..];
        let mut out = Vec::with_capacity(bytes.len());
        for l in keep {
            out.extend_from_slice(l);
            out.push(b'\n');
        }
        let tmp = self.path.with_extension("jsonl.tmp");
        crate::links::write(&tmp, &out)?;
        std::fs::rename(&tmp, &self.path)?;
        self.count = keep.len();
        Ok(())
    }
}

/// `s` safe to print on a terminal: control characters (an escape sequence's `ESC`, a carriage
/// return) written as escapes (`\u{1b}`), at most `max` characters (`…` after).
pub(crate) fn shown(s: &str, max: usize) -> String {
    let cut = s.char_indices().nth(max).map(|(i, _)| i);
    let mut out = crate::untrusted::escaped(&s[..cut.unwrap_or(s.len())]).into_owned();
    if cut.is_some() {
        out.push('…');
    }
    out
}
