//! Tasks in a status document: the status file orch writes, or `orch status --json`.

use std::path::Path;

use serde_json::Value;

/// The entry of task `id` in `doc["tasks"]`, if there is one.
pub fn try_task_in<'a>(doc: &'a Value, id: &str) -> Option<&'a Value> {
    doc["tasks"].as_array()?.iter().find(|t| t["id"] == id)
}

/// The entry of task `id` in `doc["tasks"]`; fails the test when it is missing.
pub fn task_in<'a>(doc: &'a Value, id: &str) -> &'a Value {
    try_task_in(doc, id).unwrap_or_else(|| panic!("task `{id}` missing: {doc}"))
}

/// The status file at `path`, parsed; `None` while it does not exist or does not parse (for
/// polling while orch writes it).
pub fn read_status(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// `text` as JSON; fails the test with the text when it is not.
pub fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
