//! Reading status files fast: a hand-written [`TaskEntry`] deserializer, and a document reader
//! that gives the `tasks` and `verifySteps` arrays to it directly.
//!
//! serde's derive fills a `#[serde(flatten)]` map by first buffering the whole object (and, for
//! the document, every task in it) in an intermediate tree. Here the known fields are read in
//! place and only unknown ones become JSON values. The document's own fields (a few) still go
//! through the derived implementation, so fields added to [`StatusDoc`] need nothing here.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::model::{StatusDoc, TaskEntry, TaskStatus};

pub(crate) enum Key {
    Id,
    Phase,
    Description,
    Status,
    Dependencies,
    Dependents,
    StartedAt,
    CompletedAt,
    Duration,
    Error,
    Notes,
    SkipReason,
    RetryCount,
    LastError,
    ExecutionConstraints,
    OrchRun,
    Commit,
    Attempts,
    Blocking,
    OrchUsage,
    Other(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
                Ok(match s {
                    "id" => Key::Id,
                    "phase" => Key::Phase,
                    "description" => Key::Description,
                    "status" => Key::Status,
                    "dependencies" => Key::Dependencies,
                    "dependents" => Key::Dependents,
                    "startedAt" => Key::StartedAt,
                    "completedAt" => Key::CompletedAt,
                    "duration" => Key::Duration,
                    "error" => Key::Error,
                    "notes" => Key::Notes,
                    "skipReason" => Key::SkipReason,
                    "retryCount" => Key::RetryCount,
                    "lastError" => Key::LastError,
                    "executionConstraints" => Key::ExecutionConstraints,
                    "orchRun" => Key::OrchRun,
                    "commit" => Key::Commit,
                    "attempts" => Key::Attempts,
                    "blocking" => Key::Blocking,
                    "orchUsage" => Key::OrchUsage,
                    other => Key::Other(other.to_string()),
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// Milliseconds as any JSON number (the earlier system may have written fractions).
struct Millis(Option<u64>);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Option::<f64>::deserialize(d)?;
        Ok(Millis(v.map(|ms| {
            if ms.is_finite() && ms > 0.0 {
                ms.round() as u64
            } else {
                0
            }
        })))
    }
}

impl<'de> Deserialize<'de> for TaskEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = TaskEntry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a task entry")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TaskEntry, A::Error> {
        let mut b = Builder::default();
        while let Some(key) = map.next_key::<Key>()? {
            read_field(&mut b, key, &mut map)?;
        }
        b.finish()
    }
}

/// A [`TaskEntry`] being read: the required fields are checked at the end.
pub(crate) struct Builder {
    pub(crate) id: Option<String>,
    description: Option<String>,
    status: Option<TaskStatus>,
    e: TaskEntry,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            id: None,
            description: None,
            status: None,
            e: TaskEntry {
                id: String::new(),
                phase: String::new(),
                description: String::new(),
                status: TaskStatus::Pending,
                dependencies: Vec::new(),
                dependents: Vec::new(),
                started_at: None,
                completed_at: None,
                duration: None,
                error: None,
                notes: None,
                skip_reason: None,
                retry_count: 0,
                last_error: None,
                execution_constraints: None,
                orch_run: None,
                commit: None,
                attempts: 0,
                blocking: None,
                orch_usage: None,
                extra: Map::new(),
            },
        }
    }
}

impl Builder {
    pub(crate) fn finish<E: de::Error>(self) -> Result<TaskEntry, E> {
        let mut e = self.e;
        e.id = self.id.ok_or_else(|| E::missing_field("id"))?;
        e.description = self
            .description
            .ok_or_else(|| E::missing_field("description"))?;
        e.status = self.status.ok_or_else(|| E::missing_field("status"))?;
        Ok(e)
    }
}

/// Reads the value of `key` into the entry being built.
pub(crate) fn read_field<'de, A: MapAccess<'de>>(
    b: &mut Builder,
    key: Key,
    map: &mut A,
) -> Result<(), A::Error> {
    let e = &mut b.e;
    match key {
        Key::Id => b.id = Some(map.next_value::<String>()?),
        Key::Phase => e.phase = map.next_value()?,
        Key::Description => b.description = Some(map.next_value::<String>()?),
        Key::Status => b.status = Some(map.next_value::<TaskStatus>()?),
        Key::Dependencies => e.dependencies = map.next_value()?,
        Key::Dependents => e.dependents = map.next_value()?,
        Key::StartedAt => e.started_at = map.next_value()?,
        Key::CompletedAt => e.completed_at = map.next_value()?,
        Key::Duration => e.duration = map.next_value::<Millis>()?.0,
        Key::Error => e.error = map.next_value()?,
        Key::Notes => e.notes = map.next_value()?,
        Key::SkipReason => e.skip_reason = map.next_value()?,
        Key::RetryCount => e.retry_count = map.next_value()?,
        Key::LastError => e.last_error = map.next_value()?,
        Key::ExecutionConstraints => e.execution_constraints = map.next_value()?,
        Key::OrchRun => e.orch_run = map.next_value()?,
        Key::Commit => e.commit = map.next_value()?,
        Key::Attempts => e.attempts = map.next_value()?,
        Key::Blocking => e.blocking = map.next_value()?,
        Key::OrchUsage => e.orch_usage = map.next_value()?,
        Key::Other(k) => {
            let v: Value = map.next_value()?;
            e.extra.insert(k, v);
        }
    }
    Ok(())
}

/// Reads a whole status document: `tasks` and `verifySteps` straight into entries, the other
/// fields through [`StatusDoc`]'s derived implementation.
pub(crate) fn doc_from_slice(bytes: &[u8]) -> serde_json::Result<StatusDoc> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let doc = (&mut de).deserialize_map(DocVisitor)?;
    de.end()?;
    Ok(doc)
}

struct DocVisitor;

impl<'de> Visitor<'de> for DocVisitor {
    type Value = StatusDoc;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a status document (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StatusDoc, A::Error> {
        let mut rest = Map::new();
        let (mut tasks, mut verify) = (None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "tasks" => tasks = Some(map.next_value::<Vec<TaskEntry>>()?),
                "verifySteps" => verify = Some(map.next_value::<Vec<TaskEntry>>()?),
                _ => {
                    let v: Value = map.next_value()?;
                    rest.insert(key, v);
                }
            }
        }
        // The required `tasks` is checked by the derived implementation.
        if tasks.is_some() {
            rest.insert("tasks".into(), Value::Array(Vec::new()));
        }
        let mut doc = StatusDoc::deserialize(Value::Object(rest)).map_err(de::Error::custom)?;
        doc.tasks = tasks.unwrap_or_default();
        if let Some(v) = verify {
            doc.verify_steps = v;
        }
        doc.reindex();
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::test_support::small_plan;

    #[test]
    fn reads_what_the_derived_reader_reads() {
        let text = r#"{
  "_comment": "hand made",
  "planPath": "docs/plans/demo.md",
  "planName": "Demo",
  "createdAt": "2025-01-01T00:00:00Z",
  "dashboardColor": "teal",
  "tasks": [
    {"id": "1.1", "phase": "Phase 1: Setup", "description": "x", "status": "completed",
     "duration": 12.7, "findingsPath": "findings/1.1.md", "notes": null,
     "orchRun": {"pid": 3, "startedAt": "2025-01-01T00:00:00Z"},
     "executionConstraints": {"sequential": true, "owner": "ops"}}
  ],
  "verifySteps": [{"id": "V1", "description": "v", "status": "pending", "blocking": false}],
  "summary": {"totalTasks": 1, "completed": 1, "pending": 0, "failed": 0, "skipped": 0, "in_progress": 0},
  "runs": [{"runId": "a", "startedAt": "2025-01-01T00:00:00Z", "agent": "claude"}]
}"#;
        let fast = doc_from_slice(text.as_bytes()).expect("fast reader");
        let derived: StatusDoc = serde_json::from_str(text).expect("derived reader");
        assert_eq!(fast, derived);
        assert_eq!(fast.tasks[0].duration, Some(13));
        assert_eq!(fast.tasks[0].extra["findingsPath"], "findings/1.1.md");
        assert_eq!(fast.extra["dashboardColor"], "teal");
        assert_eq!(fast.verify_steps[0].blocking, Some(false));
        assert_eq!(
            serde_json::to_value(&fast).expect("json"),
            serde_json::to_value(&derived).expect("json")
        );

        let doc = StatusDoc::new(&small_plan(), "p.md", "demo", chrono::Utc::now());
        let bytes = serde_json::to_vec_pretty(&doc).expect("json");
        assert_eq!(doc_from_slice(&bytes).expect("reads"), doc);
    }

    #[test]
    fn errors_are_those_of_the_derived_reader() {
        for (text, start) in [
            (r#"{"planPath": "p.md"}"#, "missing field `planName`"),
            (
                r#"{"planPath": "p", "planName": "n", "createdAt": "t", "tasks": [{"id": "1.1", "status": "done", "description": "d"}]}"#,
                "unknown variant `done`",
            ),
            (
                r#"{"planPath": "p", "planName": "n", "createdAt": "t", "tasks": [{"id": "1.1", "status": "pending"}]}"#,
                "missing field `description`",
            ),
            (
                r#"{"planPath": "p", "planName": "n", "createdAt": "t"}"#,
                "missing field `tasks`",
            ),
            ("[]", "invalid type: sequence"),
        ] {
            let e = doc_from_slice(text.as_bytes()).expect_err(text);
            assert!(e.to_string().starts_with(start), "{text}: {e}");
            assert_eq!(e.classify(), serde_json::error::Category::Data, "{text}");
        }
        let e = doc_from_slice(b"{\"tasks\": [,]}").expect_err("syntax");
        assert_eq!(e.classify(), serde_json::error::Category::Syntax);
    }
}
