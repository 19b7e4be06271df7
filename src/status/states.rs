//! Reading a status file for the reading commands (`orch next`, `orch status`): each entry's
//! status and error by id, without building the full entries or reconciling the document, and
//! the full entries of the few tasks a command prints.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::io::ErrorKind;
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::error::StatusError;
use super::fast_de::{Key, read_field};
use super::known_keys::KnownKeys;
use super::model::{ORCH_SCHEMA_VERSION, TaskEntry, TaskStatus};
use super::scan::{Key as ScanKey, Scan};
use super::states_table::{Span, Table};
use crate::plan::Task;

/// What [`load_states`] keeps of one entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateEntry {
    pub status: Option<TaskStatus>,
    pub error: Option<String>,
    pub last_error: Option<String>,
    /// Tokens and cost of its attempts (`orchUsage`).
    pub usage: Option<crate::agent_output::Usage>,
}

/// The recorded status of each entry of a status file, by id (the first entry of an id wins).
#[derive(Clone, Debug, Default)]
pub struct StatusStates {
    /// Each id's state and, when the scanner read the file, the byte span of its entry.
    map: Table,
    /// The file as read, for [`StatusStates::entries`].
    bytes: Vec<u8>,
    /// `orchPaused`: the plan's agent waits out a usage limit (`agent`, `until`, `reason`).
    pub paused: Option<serde_json::Value>,
    /// `orchPlanPaused`: a person paused the plan (`orch pause`).
    pub plan_paused: Option<serde_json::Value>,
    path: std::path::PathBuf,
    /// Every entry has its `id` first and a span: [`StatusStates::entries`] may read the
    /// wanted entries from their spans alone (what the full pass reads, see there).
    spans: bool,
}

impl StatusStates {
    /// The full entries of `ids` (those the file has), as recorded (not reconciled): a second
    /// pass over the bytes read by [`load_states`], no second read of the file.
    pub fn entries(&self, ids: &[&str]) -> Result<Vec<TaskEntry>, StatusError> {
        if self.bytes.is_empty() || ids.is_empty() {
            return Ok(Vec::new());
        }
        if self.spans
            && let Some(entries) = self.entries_from_spans(ids)
        {
            return Ok(entries);
        }
        let wanted: HashSet<&str> = ids.iter().copied().collect();
        let mut states = StatusStates::default();
        let mut entries = Vec::new();
        parse(
            &self.path,
            &self.bytes,
            Want::Entries(&wanted),
            &mut states,
            &mut entries,
        )?;
        Ok(entries)
    }

    /// The entries of `ids` read from their spans only, in file order. The full pass reads the
    /// same: every entry starts with its `id`, so it skips the others after their id; it takes
    /// the first entry of each wanted id, as the map kept the first span. `None` when one of
    /// them does not read (the full pass then reports the error where it is).
    fn entries_from_spans(&self, ids: &[&str]) -> Option<Vec<TaskEntry>> {
        let mut spans: Vec<Span> = ids
            .iter()
            .filter_map(|id| self.map.get(id).and_then(|(_, span)| span))
            .collect();
        spans.sort_unstable();
        spans.dedup();
        spans
            .into_iter()
            .map(|(start, end)| {
                serde_json::from_slice::<TaskEntry>(self.bytes.get(start..end)?).ok()
            })
            .collect()
    }

    /// What the file records for `id`.
    pub fn entry(&self, id: &str) -> Option<&StateEntry> {
        self.map.get(id).map(|(e, _)| e)
    }

    /// The status `task` has once the document is reconciled with its plan: the recorded one
    /// (a pending task marked `[x]` in the plan counts as completed); for a task the file does
    /// not know, completed when `[x]`, else pending.
    pub fn status(&self, task: &Task) -> TaskStatus {
        let recorded = self.map.get(&task.id).and_then(|(e, _)| e.status);
        match recorded {
            Some(TaskStatus::Pending) | None if task.done => TaskStatus::Completed,
            Some(s) => s,
            None => TaskStatus::Pending,
        }
    }
}

/// What to read of each entry.
#[derive(Clone, Copy)]
enum Want<'a> {
    /// id, status, error, lastError.
    States,
    /// The whole entry, for these ids only.
    Entries(&'a HashSet<&'a str>),
}

/// Reads the states of a status file (`None` when it does not exist), with the checks of
/// [`super::load`]: not JSON, or missing the schema's required fields, is
/// [`StatusError::Corrupt`]; a newer `orchSchemaVersion` is refused.
pub fn load_states(path: &Path) -> Result<Option<StatusStates>, StatusError> {
    let Some(bytes) = read(path)? else {
        return Ok(None);
    };
    states_of(path, bytes).map(Some)
}

/// [`load_states`] of the bytes read from `path`.
fn states_of(path: &Path, bytes: Vec<u8>) -> Result<StatusStates, StatusError> {
    let mut states = StatusStates {
        map: Table::with_capacity(bytes.len() / 256),
        bytes: Vec::new(),
        path: path.to_path_buf(),
        spans: false,
        paused: None,
        plan_paused: None,
    };
    match scan_states(&bytes, &mut states) {
        Some(version) if version <= ORCH_SCHEMA_VERSION => {}
        _ => {
            // Not sure (or not valid): serde_json reads it, or says where it is wrong.
            states.map.clear();
            states.spans = false;
            states.paused = None;
            states.plan_paused = None;
            let mut entries = Vec::new();
            parse(path, &bytes, Want::States, &mut states, &mut entries)?;
        }
    }
    states.bytes = bytes;
    Ok(states)
}

/// The fields [`load_states`] requires at the top of the document.
const REQUIRED: [&str; 4] = ["planPath", "planName", "createdAt", "tasks"];

/// [`load_states`]'s fast path: the states (and entry spans) of a document the scanner reads
/// whole, and its `orchSchemaVersion`; `None` when the scanner is not sure of something (then
/// `states.map` holds a part of the entries, to be cleared).
fn scan_states(bytes: &[u8], states: &mut StatusStates) -> Option<u32> {
    let mut s = Scan::new(bytes)?;
    let mut version = 0;
    let mut seen = [false; 4];
    let map = &mut states.map;
    let mut paused = None;
    let mut plan_paused = None;
    let mut id_first = true;
    s.object(|s, key| {
        if key.escaped {
            return None;
        }
        if let Some(i) = REQUIRED.iter().position(|r| r.as_bytes() == key.raw) {
            seen[i] = true;
        }
        match key.raw {
            b"tasks" | b"verifySteps" => s.array(|s| {
                id_first &= scan_entry(s, map)?;
                Some(())
            }),
            b"orchSchemaVersion" => {
                version = serde_json::from_slice::<u32>(s.value()?).ok()?;
                Some(())
            }
            b"orchPaused" => {
                paused = serde_json::from_slice::<Option<serde_json::Value>>(s.value()?).ok()?;
                Some(())
            }
            b"orchPlanPaused" => {
                plan_paused =
                    serde_json::from_slice::<Option<serde_json::Value>>(s.value()?).ok()?;
                Some(())
            }
            _ => s.skip(),
        }
    })?;
    s.end()?;
    states.spans = id_first;
    states.paused = paused;
    states.plan_paused = plan_paused;
    seen.iter().all(|x| *x).then_some(version)
}

/// The keys of an entry [`scan_entry`] reads (the first five) or passes (the others, the most
/// frequent), recognised by their bytes.
const ENTRY_KEYS: KnownKeys<17> = KnownKeys::new([
    "id",
    "status",
    "error",
    "lastError",
    "orchUsage",
    "phase",
    "description",
    "startedAt",
    "completedAt",
    "duration",
    "notes",
    "commit",
    "attempts",
    "dependencies",
    "dependents",
    "blocking",
    "orchRun",
]);
const ID: usize = 0;
const STATUS: usize = 1;
const ERROR: usize = 2;
const LAST_ERROR: usize = 3;
const ORCH_USAGE: usize = 4;

/// One entry, added to `map` with its state and span (unless its id has one): whether `id` is
/// its first key. Entries with escaped keys, a repeated `id`, or values serde_json would refuse
/// are left to serde_json.
fn scan_entry<'a>(s: &mut Scan<'a>, map: &mut Table) -> Option<bool> {
    s.peek()?;
    let start = s.pos();
    let mut id: Option<Cow<'a, [u8]>> = None;
    let mut st = StateEntry::default();
    let mut first = None;
    // The keys after the first five are passed (their values checked, not read).
    s.object_known(&ENTRY_KEYS, !0b11111, |s, known, key| {
        entry_field(s, known, key, &mut id, &mut st, &mut first)
    })?;
    map.insert_first(id?.as_ref(), st, Some((start, s.pos())));
    Some(first == Some(true))
}

/// One field of an entry, for [`scan_entry`] (a function, not a closure, so that it is
/// inlined into the scanner's loop).
#[inline(always)]
fn entry_field<'a>(
    s: &mut Scan<'a>,
    known: Option<usize>,
    key: ScanKey<'a>,
    id: &mut Option<Cow<'a, [u8]>>,
    st: &mut StateEntry,
    first: &mut Option<bool>,
) -> Option<()> {
    if key.escaped {
        return None;
    }
    // A key read the general way may still be one of them (other spacing).
    let k = known.or_else(|| ENTRY_KEYS.index_of(key.raw));
    first.get_or_insert(k == Some(ID));
    match k {
        Some(ID) => {
            if id.is_some() {
                return None;
            }
            let v = s.string()?;
            // The bytes of the id's text (the document is UTF-8).
            *id = Some(if v.escaped {
                Cow::Owned(v.decode()?.into_bytes())
            } else {
                Cow::Borrowed(v.raw)
            });
        }
        Some(STATUS) => {
            let v = s.string()?;
            st.status = Some(if v.escaped {
                serde_json::from_slice(v.json).ok()?
            } else {
                TaskStatus::from_bytes(v.raw)?
            });
        }
        Some(ERROR) => st.error = optional_string(s)?,
        Some(LAST_ERROR) => st.last_error = optional_string(s)?,
        Some(ORCH_USAGE) => {
            st.usage = serde_json::from_slice::<Option<super::model::OrchUsage>>(s.value()?)
                .ok()?
                .map(|u| u.usage());
        }
        _ => s.skip_value()?,
    }
    Some(())
}

fn optional_string(s: &mut Scan<'_>) -> Option<Option<String>> {
    if s.null()? {
        Some(None)
    } else {
        s.string()?.decode().map(Some)
    }
}

/// The full entries of `ids` in a status file (those it has), as recorded (not reconciled).
pub fn load_entries(path: &Path, ids: &[&str]) -> Result<Vec<TaskEntry>, StatusError> {
    let Some(bytes) = read(path)? else {
        return Ok(Vec::new());
    };
    let wanted: HashSet<&str> = ids.iter().copied().collect();
    let mut states = StatusStates::default();
    let mut entries = Vec::new();
    parse(
        path,
        &bytes,
        Want::Entries(&wanted),
        &mut states,
        &mut entries,
    )?;
    Ok(entries)
}

fn read(path: &Path) -> Result<Option<Vec<u8>>, StatusError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StatusError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn parse(
    path: &Path,
    bytes: &[u8],
    want: Want<'_>,
    states: &mut StatusStates,
    entries: &mut Vec<TaskEntry>,
) -> Result<(), StatusError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let version = (&mut de)
        .deserialize_map(DocVisitor {
            want,
            states,
            entries,
        })
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Data => "not a status file",
                _ => "not valid JSON",
            };
            StatusError::Corrupt {
                path: path.to_path_buf(),
                line: e.line(),
                column: e.column(),
                message: format!("{what}: {e}"),
            }
        })?;
    if version > ORCH_SCHEMA_VERSION {
        return Err(StatusError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: ORCH_SCHEMA_VERSION,
        });
    }
    Ok(())
}

struct DocVisitor<'s, 'w> {
    want: Want<'w>,
    states: &'s mut StatusStates,
    entries: &'s mut Vec<TaskEntry>,
}

impl<'de> Visitor<'de> for DocVisitor<'_, '_> {
    /// `orchSchemaVersion`.
    type Value = u32;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a status document (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u32, A::Error> {
        let mut version = 0;
        let mut seen = [false; 4];
        while let Some(key) = map.next_key::<String>()? {
            if let Some(i) = REQUIRED.iter().position(|r| *r == key) {
                seen[i] = true;
            }
            match key.as_str() {
                "tasks" | "verifySteps" => map.next_value_seed(Entries {
                    want: self.want,
                    states: &mut *self.states,
                    entries: &mut *self.entries,
                })?,
                "orchSchemaVersion" => version = map.next_value()?,
                "orchPaused" => self.states.paused = map.next_value()?,
                "orchPlanPaused" => self.states.plan_paused = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            return Err(de::Error::missing_field(REQUIRED[i]));
        }
        Ok(version)
    }
}

struct Entries<'s, 'w> {
    want: Want<'w>,
    states: &'s mut StatusStates,
    entries: &'s mut Vec<TaskEntry>,
}

impl<'de> DeserializeSeed<'de> for Entries<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of task entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(one) = seq.next_element_seed(One { want: self.want })? {
            match one {
                Read::State(id, st) => {
                    self.states.map.insert_first(id.as_bytes(), st, None);
                }
                Read::Entry(e) => {
                    if !self.entries.iter().any(|x| x.id == e.id) {
                        self.entries.push(*e);
                    }
                }
                Read::Skipped => {}
            }
        }
        Ok(())
    }
}

enum Read {
    State(String, StateEntry),
    Entry(Box<TaskEntry>),
    Skipped,
}

struct One<'w> {
    want: Want<'w>,
}

impl<'de> DeserializeSeed<'de> for One<'_> {
    type Value = Read;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Read, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for One<'_> {
    type Value = Read;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a task entry")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Read, A::Error> {
        match self.want {
            Want::States => {
                let (mut id, mut st) = (None, StateEntry::default());
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Id => id = Some(map.next_value::<String>()?),
                        Key::Status => st.status = Some(map.next_value()?),
                        Key::Error => st.error = map.next_value()?,
                        Key::LastError => st.last_error = map.next_value()?,
                        Key::OrchUsage => {
                            st.usage = map
                                .next_value::<Option<super::model::OrchUsage>>()?
                                .map(|u| u.usage());
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let id = id.ok_or_else(|| de::Error::missing_field("id"))?;
                Ok(Read::State(id, st))
            }
            Want::Entries(wanted) => {
                // orch writes `id` first: entries of other ids are skipped after it.
                let mut e = super::fast_de::Builder::default();
                let mut first = true;
                while let Some(key) = map.next_key::<Key>()? {
                    if first && matches!(key, Key::Id) {
                        let id: String = map.next_value()?;
                        if !wanted.contains(id.as_str()) {
                            while map.next_key::<IgnoredAny>()?.is_some() {
                                map.next_value::<IgnoredAny>()?;
                            }
                            return Ok(Read::Skipped);
                        }
                        e.id = Some(id);
                    } else {
                        read_field(&mut e, key, &mut map)?;
                    }
                    first = false;
                }
                let entry = e.finish::<A::Error>()?;
                Ok(if wanted.contains(entry.id.as_str()) {
                    Read::Entry(Box::new(entry))
                } else {
                    Read::Skipped
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::test_support::small_plan;
    use crate::status::{StatusDoc, Transition, TransitionOptions, apply};

    /// The states as serde_json alone reads them (the path before the scanner).
    type Read = (
        Vec<(String, StateEntry)>,
        Option<serde_json::Value>,
        Option<serde_json::Value>,
    );

    fn serde_states(bytes: &[u8]) -> Result<Read, String> {
        let mut states = StatusStates::default();
        let mut entries = Vec::new();
        parse(
            Path::new("s.json"),
            bytes,
            Want::States,
            &mut states,
            &mut entries,
        )
        .map_err(|e| e.to_string())?;
        let mut v: Vec<_> = states
            .map
            .into_items()
            .into_iter()
            .map(|(k, e, _)| (k, e))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((v, states.paused, states.plan_paused))
    }

    fn fast_states(bytes: &[u8]) -> Result<Read, String> {
        let states = states_of(Path::new("s.json"), bytes.to_vec()).map_err(|e| e.to_string())?;
        let mut v: Vec<_> = states
            .map
            .into_items()
            .into_iter()
            .map(|(k, e, _)| (k, e))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((v, states.paused, states.plan_paused))
    }

    /// The scanner's fast path reads what serde_json reads and fails where it fails, with the
    /// same message, on a real document and on every one-byte change of it (and of a hand-made
    /// one with escapes, nulls and foreign fields).
    #[test]
    fn the_fast_path_reads_and_fails_like_serde_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("status.json");
        let plan = small_plan();
        let now = chrono::Utc::now();
        let mut doc = StatusDoc::new(&plan, "p.md", "demo", now);
        let fail = TransitionOptions {
            error: Some("boom \"quoted\"\n\u{1}line".into()),
            ..TransitionOptions::default()
        };
        apply(&mut doc, "1.1", Transition::Fail, &fail, now).expect("fail");
        let pretty = serde_json::to_vec_pretty(&doc).expect("json");
        let hand =
            br#"{"planPath": "p", "planName": "n", "createdAt": "t", "x": [1.5e3, -0, true, {}],
            "orchPaused": {"agent": "claude", "until": "t"}, "orchPlanPaused": {"at": "t"},
            "tasks": [{"status": "failed", "id": "1.\u0031", "error": null, "lastError": "\u00e9\t",
                       "orchUsage": {"inputTokens": 12, "costUsd": 0.5, "attempts": 1}},
                      {"id": "1.2", "status": "pending", "foo": {"bar": [null]}}],
            "verifySteps": [], "orchSchemaVersion": 1}"#
                .to_vec();
        for (base, stride) in [(pretty, 5), (hand, 1)] {
            assert!(scan_states(&base, &mut StatusStates::default()).is_some());
            let mut variants = vec![base.clone()];
            for i in (0..base.len()).step_by(stride) {
                for b in [b'"', b'}', b'x', b'\\', b' ', b'1'] {
                    if base[i] != b {
                        let mut v = base.clone();
                        v[i] = b;
                        variants.push(v);
                    }
                }
                let mut cut = base.clone();
                cut.remove(i);
                variants.push(cut);
            }
            for v in variants {
                let fast = fast_states(&v);
                let slow = serde_states(&v);
                assert_eq!(fast, slow, "{}", String::from_utf8_lossy(&v));
                // The entries read from spans are those of the full pass.
                if let Ok(states) = states_of(&path, v.clone()) {
                    let ids: Vec<&str> = fast
                        .as_ref()
                        .map(|(v, _, _)| v.iter().map(|(k, _)| k.as_str()).collect())
                        .unwrap_or_default();
                    let wanted: HashSet<&str> = ids.iter().copied().collect();
                    let mut entries = Vec::new();
                    let full = parse(
                        &path,
                        &v,
                        Want::Entries(&wanted),
                        &mut StatusStates::default(),
                        &mut entries,
                    )
                    .map(|()| entries)
                    .map_err(|e| e.to_string());
                    assert_eq!(states.entries(&ids).map_err(|e| e.to_string()), full);
                }
            }
        }
    }

    #[test]
    fn states_and_entries_match_the_full_reader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("status.json");
        let plan = small_plan();
        let now = chrono::Utc::now();
        let mut doc = StatusDoc::new(&plan, "p.md", "demo", now);
        let fail = TransitionOptions {
            error: Some("boom".into()),
            ..TransitionOptions::default()
        };
        apply(&mut doc, "1.1", Transition::Fail, &fail, now).expect("fail");
        apply(&mut doc, "V1", Transition::Skip, &fail, now).expect("skip");
        std::fs::write(&path, serde_json::to_vec_pretty(&doc).expect("json")).expect("write");

        let states = load_states(&path).expect("reads").expect("exists");
        for t in &plan.tasks {
            assert_eq!(
                states.status(t),
                doc.entry(&t.id).expect("entry").status,
                "{}",
                t.id
            );
        }
        assert_eq!(
            states.entry("1.1").and_then(|e| e.error.as_deref()),
            Some("boom")
        );
        let got = load_entries(&path, &["1.1", "V1", "9.9"]).expect("reads");
        let ids: Vec<&str> = got.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1.1", "V1"]);
        assert_eq!(&got[0], doc.entry("1.1").expect("1.1"));
        assert_eq!(&got[1], doc.entry("V1").expect("V1"));

        // Missing file: nothing recorded; `[x]` tasks count as completed.
        let none = dir.path().join("none.json");
        assert!(load_states(&none).expect("reads").is_none());
        let fresh = StatusStates::default();
        let done = plan.tasks.iter().find(|t| t.done).expect("an [x] task");
        assert_eq!(fresh.status(done), TaskStatus::Completed);

        // The checks of `load`.
        std::fs::write(&path, "{\"planPath\": \"p.md\", \"tasks\": []}").expect("write");
        assert!(matches!(
            load_states(&path),
            Err(StatusError::Corrupt { .. })
        ));
        doc.orch_schema_version = 99;
        std::fs::write(&path, serde_json::to_vec(&doc).expect("json")).expect("write");
        assert!(matches!(
            load_states(&path),
            Err(StatusError::UnsupportedVersion { found: 99, .. })
        ));
    }
}
