//! Reading a status file for the reading commands (`orch next`, `orch status`): each entry's
//! status and error by id, without building the full entries or reconciling the document, and
//! the full entries of the few tasks a command prints.

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::error::StatusError;
use super::fast_de::{Key, read_field};
use super::model::{ORCH_SCHEMA_VERSION, TaskEntry, TaskStatus};
use crate::plan::{IdMap, Task, id_map};

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
    map: IdMap<String, StateEntry>,
    /// The file as read, for [`StatusStates::entries`].
    bytes: Vec<u8>,
    /// `orchPaused`: the plan's agent waits out a usage limit (`agent`, `until`, `reason`).
    pub paused: Option<serde_json::Value>,
    /// `orchPlanPaused`: a person paused the plan (`orch pause`).
    pub plan_paused: Option<serde_json::Value>,
    path: std::path::PathBuf,
}

impl StatusStates {
    /// The full entries of `ids` (those the file has), as recorded (not reconciled): a second
    /// pass over the bytes read by [`load_states`], no second read of the file.
    pub fn entries(&self, ids: &[&str]) -> Result<Vec<TaskEntry>, StatusError> {
        if self.bytes.is_empty() || ids.is_empty() {
            return Ok(Vec::new());
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

    /// What the file records for `id`.
    pub fn entry(&self, id: &str) -> Option<&StateEntry> {
        self.map.get(id)
    }

    /// The status `task` has once the document is reconciled with its plan: the recorded one
    /// (a pending task marked `[x]` in the plan counts as completed); for a task the file does
    /// not know, completed when `[x]`, else pending.
    pub fn status(&self, task: &Task) -> TaskStatus {
        let recorded = self.map.get(task.id.as_str()).and_then(|e| e.status);
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
    let mut states = StatusStates {
        map: id_map(bytes.len() / 256),
        bytes: Vec::new(),
        path: path.to_path_buf(),
        paused: None,
        plan_paused: None,
    };
    let mut entries = Vec::new();
    parse(path, &bytes, Want::States, &mut states, &mut entries)?;
    states.bytes = bytes;
    Ok(Some(states))
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
    match fs::read(path) {
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
        const REQUIRED: [&str; 4] = ["planPath", "planName", "createdAt", "tasks"];
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
                    self.states.map.entry(id).or_insert(st);
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
