//! Finding status entries by id without scanning: the positions of the entries by id
//! ([`IdIndex`]), built on the first lookup, checked on every hit, rebuilt when the entries
//! changed under it.

use std::sync::{Mutex, PoisonError};

use crate::plan::IdIndex;

/// An entry found by its id (a status file's task or verification step).
pub(crate) trait Keyed {
    fn id(&self) -> &str;
}

/// The id of entry `i` of tasks ++ verification steps (empty past their end).
fn id_at<'a, E: Keyed>(tasks: &'a [E], verify: &'a [E], i: usize) -> &'a str {
    let entry = match i.checked_sub(tasks.len()) {
        None => tasks.get(i),
        Some(v) => verify.get(v),
    };
    entry.map_or("", Keyed::id)
}

/// The positions of tasks ++ verification steps by id (a repeated id: the first entry).
fn build<E: Keyed>(tasks: &[E], verify: &[E]) -> IdIndex {
    let mut index = IdIndex::with_capacity(tasks.len() + verify.len());
    for (i, e) in tasks.iter().chain(verify).enumerate() {
        index.insert_first(e.id(), i, |i| id_at(tasks, verify, i));
    }
    index
}

/// The index of a [`super::StatusDoc`]'s entries. Not part of the document: clones start empty
/// and every index compares equal.
#[derive(Default)]
pub(crate) struct EntryIndex {
    table: Mutex<Option<IdIndex>>,
}

impl EntryIndex {
    /// The position of `id` in tasks ++ verification steps: a hit is checked against the entry;
    /// a miss is confirmed by a scan (the entries may have changed since the table was built),
    /// and the table is rebuilt when the scan finds it.
    pub(crate) fn find<E: Keyed>(&self, tasks: &[E], verify: &[E], id: &str) -> Option<usize> {
        let mut guard = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let table = guard.get_or_insert_with(|| build(tasks, verify));
        if let Some(i) = table.get(id, |i| id_at(tasks, verify, i))
            && i < tasks.len() + verify.len()
        {
            return Some(i);
        }
        let i = tasks.iter().chain(verify).position(|e| e.id() == id)?;
        *guard = Some(build(tasks, verify));
        Some(i)
    }
}

impl Clone for EntryIndex {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for EntryIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for EntryIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EntryIndex")
    }
}

#[cfg(test)]
mod tests {
    use crate::status::StatusDoc;
    use crate::status::test_support::small_plan;

    #[test]
    fn lookups_follow_changes_to_the_entries() {
        let now = chrono::Utc::now();
        let mut doc = StatusDoc::new(&small_plan(), "p.md", "demo", now);
        assert_eq!(doc.entry("2.1").map(|e| e.id.as_str()), Some("2.1"));
        assert_eq!(doc.entry("V1").map(|e| e.id.as_str()), Some("V1"));
        assert!(doc.entry("9.9").is_none());
        // Reordered and shortened through the public fields: still right.
        doc.tasks.reverse();
        doc.tasks.remove(0);
        assert_eq!(doc.entry("1.1").map(|e| e.id.as_str()), Some("1.1"));
        assert!(doc.entry("2.2").is_none());
        let mut extra = doc.tasks[0].clone();
        extra.id = "7.7".into();
        doc.tasks.push(extra);
        assert_eq!(
            doc.entry_mut("7.7").map(|e| e.id.clone()).as_deref(),
            Some("7.7")
        );
        // A repeated id: the first entry wins, as with a scan.
        let mut dup = doc.tasks[0].clone();
        dup.description = "second".into();
        doc.tasks.push(dup.clone());
        doc.reindex();
        assert_ne!(
            doc.entry(&dup.id).map(|e| e.description.as_str()),
            Some("second")
        );
    }
}
