//! Finding status entries by id without scanning: an open-addressing table of positions, built
//! on the first lookup, checked on every hit, rebuilt when the entries changed under it.

use std::sync::{Mutex, PoisonError};

use super::model::TaskEntry;

pub(crate) use crate::plan::hash_bytes;

const EMPTY: u32 = u32::MAX;

struct Table {
    /// Positions into tasks ++ verification steps; `EMPTY` for a free slot.
    slots: Vec<u32>,
}

fn entry_at<'a>(
    tasks: &'a [TaskEntry],
    verify: &'a [TaskEntry],
    i: usize,
) -> Option<&'a TaskEntry> {
    if i < tasks.len() {
        tasks.get(i)
    } else {
        verify.get(i - tasks.len())
    }
}

impl Table {
    fn build(tasks: &[TaskEntry], verify: &[TaskEntry]) -> Self {
        let n = tasks.len() + verify.len();
        let size = (n * 2).next_power_of_two().max(8);
        let mut t = Table {
            slots: vec![EMPTY; size],
        };
        for (i, e) in tasks.iter().chain(verify).enumerate() {
            let Ok(pos) = u32::try_from(i) else { break };
            let mut s = t.start(&e.id);
            loop {
                match t.slots[s] {
                    EMPTY => {
                        t.slots[s] = pos;
                        break;
                    }
                    // A repeated id: the first entry wins.
                    p if entry_at(tasks, verify, p as usize).is_some_and(|o| o.id == e.id) => break,
                    _ => s = (s + 1) & (t.slots.len() - 1),
                }
            }
        }
        t
    }

    fn start(&self, id: &str) -> usize {
        (hash_bytes(id.as_bytes()) as usize) & (self.slots.len() - 1)
    }

    fn probe(&self, tasks: &[TaskEntry], verify: &[TaskEntry], id: &str) -> Option<usize> {
        let mut s = self.start(id);
        for _ in 0..self.slots.len() {
            match self.slots[s] {
                EMPTY => return None,
                p if entry_at(tasks, verify, p as usize).is_some_and(|e| e.id == id) => {
                    return Some(p as usize);
                }
                _ => s = (s + 1) & (self.slots.len() - 1),
            }
        }
        None
    }
}

/// The index of a [`super::StatusDoc`]'s entries. Not part of the document: clones start empty
/// and every index compares equal.
#[derive(Default)]
pub(crate) struct EntryIndex {
    table: Mutex<Option<Table>>,
}

impl EntryIndex {
    /// The position of `id` in tasks ++ verification steps: a hit is checked against the entry;
    /// a miss is confirmed by a scan (the entries may have changed since the table was built),
    /// and the table is rebuilt when the scan finds it.
    pub(crate) fn find(
        &self,
        tasks: &[TaskEntry],
        verify: &[TaskEntry],
        id: &str,
    ) -> Option<usize> {
        let mut guard = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let table = guard.get_or_insert_with(|| Table::build(tasks, verify));
        if let Some(i) = table.probe(tasks, verify, id) {
            return Some(i);
        }
        let i = tasks.iter().chain(verify).position(|e| e.id == id)?;
        *guard = Some(Table::build(tasks, verify));
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
