//! Reading a status file for the reading commands (`orch next`, `orch status`): each entry's
//! status and error by id, without building the full entries or reconciling the document, and
//! the full entries of the few tasks a command prints.
//!
//! serde_json reads the document once, by derive, into the few fields kept of each entry
//! ([`StateFields`]; serde skips the rest as it reads); the entries' texts are read again, and
//! only the few a command prints are built in full ([`StatusStates::entries`]).

use std::collections::hash_map::Entry;
use std::path::Path;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::error::StatusError;
use super::model::{OrchUsage, TaskEntry, TaskStatus};
use super::store::{check_version, corrupt, from_json, read_file};
use crate::plan::{IdMap, Task, id_map};

/// What [`load_states`] keeps of one entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StateEntry {
    pub(crate) status: Option<TaskStatus>,
    pub(crate) error: Option<String>,
    pub(crate) last_error: Option<String>,
    /// Tokens and cost of its attempts (`orchUsage`); boxed, as most entries have none (the
    /// map of 10,000 entries is then 0.8 MB smaller).
    pub(crate) usage: Option<Box<crate::agent_output::Usage>>,
    /// A task completed without a commit ([`super::checking`] while a run is live).
    pub(crate) awaiting_commit: bool,
    /// The question its agent asked, while it needs input (`orchQuestion`).
    pub(crate) question: Option<String>,
}

/// Where an entry was read: its array (`verifySteps` or `tasks`) and its place there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    verify: bool,
    index: usize,
}

/// The recorded status of each entry of a status file, by id (the first entry of an id wins,
/// those of `tasks` before those of `verifySteps`).
#[derive(Clone, Debug, Default)]
pub struct StatusStates {
    /// Each id's state and where its entry was read.
    map: IdMap<String, (StateEntry, Place)>,
    /// The file as read, for [`StatusStates::entries`].
    bytes: Vec<u8>,
    /// `orchPaused`: the plan's agent waits out a usage limit (`agent`, `until`, `reason`).
    pub(crate) paused: Option<serde_json::Value>,
    /// `orchPlanPaused`: a person paused the plan (`orch pause`).
    pub(crate) plan_paused: Option<serde_json::Value>,
    /// `orchMerge`: the plan's last merge (`orch merge`, the merge train).
    pub(crate) merge: Option<serde_json::Value>,
    path: std::path::PathBuf,
    /// An `orch up` runs the plan ([`Self::with_run`]): a task completed without its commit is
    /// then checking.
    live: bool,
}

/// What [`load_states`] reads of the document: the schema's required fields (checked, not
/// kept), the entries, and orch's few top-level fields the reading commands show.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // The required fields are read to be checked, not kept.
struct StatesDoc {
    plan_path: IgnoredAny,
    plan_name: IgnoredAny,
    created_at: IgnoredAny,
    tasks: Vec<StateFields>,
    #[serde(default)]
    verify_steps: Vec<StateFields>,
    #[serde(default)]
    orch_schema_version: u32,
    #[serde(default)]
    orch_paused: Option<serde_json::Value>,
    #[serde(default)]
    orch_plan_paused: Option<serde_json::Value>,
    #[serde(default)]
    orch_merge: Option<serde_json::Value>,
}

/// What [`load_states`] reads of an entry (the other fields are skipped).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateFields {
    id: String,
    #[serde(default)]
    status: Option<TaskStatus>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    last_error: Option<String>,
    #[serde(default)]
    orch_usage: Option<OrchUsage>,
    #[serde(default)]
    commit: Option<IgnoredAny>,
    #[serde(default)]
    orch_question: Option<String>,
}

/// The entries' texts, for [`StatusStates::entries`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntries<'a> {
    #[serde(borrow)]
    tasks: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    verify_steps: Vec<&'a RawValue>,
}

impl StatusStates {
    /// The full entries of `ids` (those the file has, the first entry of each), as recorded (not
    /// reconciled), in file order: the document's entries read again as texts, and only those
    /// of `ids` read in full.
    pub(crate) fn entries(&self, ids: &[&str]) -> Result<Vec<TaskEntry>, StatusError> {
        let mut places: Vec<Place> = ids
            .iter()
            .filter_map(|id| self.map.get(*id).map(|(_, place)| *place))
            .collect();
        if places.is_empty() {
            return Ok(Vec::new());
        }
        places.sort_unstable();
        places.dedup();
        let doc: RawEntries<'_> =
            from_json(&self.bytes).map_err(|e| corrupt(&self.path, b"", e))?;
        let mut texts: Vec<(usize, &str)> = places
            .iter()
            .filter_map(|p| {
                let array = if p.verify {
                    &doc.verify_steps
                } else {
                    &doc.tasks
                };
                array.get(p.index)
            })
            .map(|raw| {
                let text = raw.get();
                (text.as_ptr() as usize - self.bytes.as_ptr() as usize, text)
            })
            .collect();
        texts.sort_unstable_by_key(|(start, _)| *start);
        texts
            .into_iter()
            .map(|(start, text)| {
                serde_json::from_str::<TaskEntry>(text)
                    .map_err(|e| corrupt(&self.path, &self.bytes[..start], e))
            })
            .collect()
    }

    /// What the file records for `id`.
    pub(crate) fn entry(&self, id: &str) -> Option<&StateEntry> {
        self.map.get(id).map(|(e, _)| e)
    }

    /// The status `task` has once the document is reconciled with its plan: the recorded one
    /// (a pending task marked `[x]` in the plan counts as completed); for a task the file does
    /// not know, completed when `[x]`, else pending.
    /// These states while an `orch up` runs the plan (`live`): a task completed without its
    /// commit is then [`super::checking`].
    pub(crate) fn with_run(mut self, live: bool) -> Self {
        self.live = live;
        self
    }

    /// Whether `task` is done by its agent's word, its check and commit to come, while a run
    /// is live ([`super::checking`]; its [`Self::status`] is then in progress).
    pub(crate) fn checking(&self, task: &Task) -> bool {
        self.live && self.entry(&task.id).is_some_and(|e| e.awaiting_commit)
    }

    pub fn status(&self, task: &Task) -> TaskStatus {
        if self.checking(task) {
            return TaskStatus::InProgress;
        }
        let recorded = self.entry(&task.id).and_then(|e| e.status);
        super::with_plan(recorded.unwrap_or(TaskStatus::Pending), task)
    }
}

/// Reads the states of a status file (`None` when it does not exist), with the checks of
/// [`super::load`]: not JSON, or missing the schema's required fields, is
/// [`StatusError::Corrupt`]; a newer `orchSchemaVersion` is refused.
pub fn load_states(path: &Path) -> Result<Option<StatusStates>, StatusError> {
    read_file(path)?
        .map(|bytes| states_of(path, bytes))
        .transpose()
}

/// [`load_states`] of the bytes read from `path`.
fn states_of(path: &Path, bytes: Vec<u8>) -> Result<StatusStates, StatusError> {
    let doc: StatesDoc = from_json(&bytes).map_err(|e| corrupt(path, b"", e))?;
    check_version(path, doc.orch_schema_version)?;
    let mut map = id_map(doc.tasks.len() + doc.verify_steps.len());
    let arrays = [(false, doc.tasks), (true, doc.verify_steps)];
    for (verify, entries) in arrays {
        for (index, f) in entries.into_iter().enumerate() {
            if let Entry::Vacant(v) = map.entry(f.id) {
                let state = StateEntry {
                    awaiting_commit: !verify
                        && f.status == Some(TaskStatus::Completed)
                        && f.commit.is_none(),
                    status: f.status,
                    error: f.error,
                    last_error: f.last_error,
                    usage: f.orch_usage.map(|u| Box::new(u.usage())),
                    question: f.orch_question,
                };
                v.insert((state, Place { verify, index }));
            }
        }
    }
    Ok(StatusStates {
        map,
        bytes,
        paused: doc.orch_paused,
        plan_paused: doc.orch_plan_paused,
        merge: doc.orch_merge,
        path: path.to_path_buf(),
        live: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::test_support::small_plan;
    use crate::status::{StatusDoc, Transition, TransitionOptions, apply};

    fn states(bytes: &[u8]) -> Result<StatusStates, StatusError> {
        states_of(Path::new("s.json"), bytes.to_vec())
    }

    /// The small plan, and its document with task 1.1 failed with `error`.
    fn failed_1_1(error: &str) -> (crate::plan::Plan, StatusDoc) {
        let plan = small_plan();
        let now = chrono::Utc::now();
        let mut doc = StatusDoc::new(&plan, "p.md", "demo", now);
        let fail = TransitionOptions {
            error: Some(error.into()),
            ..TransitionOptions::default()
        };
        apply(&mut doc, "1.1", Transition::Fail, &fail, now).expect("fail");
        (plan, doc)
    }

    /// The states reader reads what the whole-document reader ([`super::super::load`]) reads, on
    /// a real document and on every one-byte change of it (and of a hand-made one with escapes,
    /// nulls and foreign fields); whatever it refuses, the whole-document reader refuses too.
    #[test]
    fn states_are_what_the_whole_document_says() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("status.json");
        let (_, doc) = failed_1_1("boom \"quoted\"\n\u{1}line");
        let pretty = serde_json::to_vec_pretty(&doc).expect("json");
        let hand =
            br#"{"planPath": "p", "planName": "n", "createdAt": "t", "x": [1.5e3, -0, true, {}],
            "orchPaused": {"agent": "claude", "until": "t"}, "orchPlanPaused": {"at": "t"},
            "tasks": [{"status": "failed", "id": "1.\u0031", "error": null, "lastError": "\u00e9\t",
                       "description": "d", "orchUsage": {"inputTokens": 12, "costUsd": 0.5, "attempts": 1}},
                      {"id": "1.2", "status": "pending", "description": "e", "foo": {"bar": [null]}}],
            "verifySteps": [], "orchSchemaVersion": 1}"#
                .to_vec();
        let mut read = 0;
        for (base, stride) in [(pretty, 5), (hand, 1)] {
            assert!(states(&base).is_ok());
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
                std::fs::write(&path, &v).expect("write");
                let whole = crate::status::load(&path);
                let Ok(s) = states(&v) else {
                    assert!(whole.is_err(), "{}", String::from_utf8_lossy(&v));
                    continue;
                };
                let Ok(Some(whole)) = whole else { continue };
                read += 1;
                let ids: Vec<&str> = whole.entries().map(|e| e.id.as_str()).collect();
                for e in whole.entries() {
                    let st = s.entry(&e.id).expect("entry");
                    if whole.entry(&e.id) == Some(e) {
                        assert_eq!(st.status, Some(e.status));
                        assert_eq!(st.error, e.error);
                        assert_eq!(st.last_error, e.last_error);
                        assert_eq!(
                            st.usage.as_deref().copied(),
                            e.orch_usage.as_ref().map(|u| u.usage())
                        );
                    }
                }
                let firsts: Vec<TaskEntry> = whole
                    .entries()
                    .enumerate()
                    .filter(|(i, e)| ids[..*i].iter().all(|x| *x != e.id))
                    .map(|(_, e)| e.clone())
                    .collect();
                assert_eq!(s.entries(&ids).expect("entries"), firsts);
                assert_eq!(s.paused.as_ref(), whole.extra.get("orchPaused"));
                assert_eq!(s.plan_paused.as_ref(), whole.extra.get("orchPlanPaused"));
            }
        }
        assert!(read > 100, "{read}");
    }

    /// One pass puts each entry in the map as it is read: an id's `tasks` entry wins over its
    /// `verifySteps` one wherever the arrays are; a key twice or a required key missing is
    /// refused, as the whole-document reader refuses it.
    #[test]
    fn one_pass_keeps_the_first_entry_and_the_checks() {
        let doc = br#"{"verifySteps": [{"id": "a", "status": "failed"}], "planPath": "p",
            "planName": "n", "createdAt": "t",
            "tasks": [{"id": "a", "status": "completed"}, {"id": "a", "status": "skipped"}]}"#;
        let s = states(doc).expect("reads");
        assert_eq!(
            s.entry("a").and_then(|e| e.status),
            Some(TaskStatus::Completed)
        );
        let twice = br#"{"planPath": "p", "planName": "n", "createdAt": "t", "tasks": [],
            "tasks": []}"#;
        let missing = br#"{"planPath": "p", "planName": "n", "tasks": []}"#;
        for bad in [&twice[..], &missing[..]] {
            let Err(StatusError::Corrupt { message, .. }) = states(bad) else {
                panic!("refused")
            };
            assert!(
                message.contains("duplicate field `tasks`")
                    || message.contains("missing field `createdAt`"),
                "{message}"
            );
        }
    }

    #[test]
    fn states_and_entries_match_the_full_reader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("status.json");
        let (plan, mut doc) = failed_1_1("boom");
        let skip = TransitionOptions {
            error: Some("boom".into()),
            ..TransitionOptions::default()
        };
        apply(&mut doc, "V1", Transition::Skip, &skip, chrono::Utc::now()).expect("skip");
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
        let got = states.entries(&["V1", "1.1", "9.9"]).expect("reads");
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

        // The checks of `load`, with the line and column of the fault in the file.
        std::fs::write(&path, "{\"planPath\": \"p.md\", \"tasks\": []}").expect("write");
        assert!(matches!(
            load_states(&path),
            Err(StatusError::Corrupt { .. })
        ));
        let text = "{\"planPath\": \"p\", \"planName\": \"n\", \"createdAt\": \"t\",\n \"tasks\": [\n  {\"id\": \"1.1\", \"status\": \"done\"}]}";
        std::fs::write(&path, text).expect("write");
        let Err(StatusError::Corrupt { line, column, .. }) = load_states(&path) else {
            panic!("corrupt")
        };
        let Err(StatusError::Corrupt {
            line: l, column: c, ..
        }) = crate::status::load(&path)
        else {
            panic!("corrupt")
        };
        assert_eq!((line, column), (l, c));
        doc.orch_schema_version = 99;
        std::fs::write(&path, serde_json::to_vec(&doc).expect("json")).expect("write");
        assert!(matches!(
            load_states(&path),
            Err(StatusError::UnsupportedVersion { found: 99, .. })
        ));
    }
}
