//! The entries [`super::load_states`] keeps, by id: a vector in file order plus an index of
//! positions (open addressing over [`hash_bytes`]), and a cursor that makes lookups in file order
//! (what the reading commands do, plan order being the file's order) a single comparison.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::states::StateEntry;
use crate::plan::hash_bytes;

/// An entry's text: `bytes[start..end]` of the file.
pub(super) type Span = (usize, usize);

/// One entry: its id, state and span.
pub(super) type Item = (String, StateEntry, Option<Span>);

const EMPTY: u32 = u32::MAX;

#[derive(Debug, Default)]
pub(super) struct Table {
    /// Entries in file order, the first of each id only.
    items: Vec<Item>,
    /// Positions in `items`, `EMPTY` where free; a power of two long, at most half full.
    slots: Vec<u32>,
    /// Where the next lookup looks first: after the last entry found.
    hint: AtomicUsize,
}

impl Clone for Table {
    fn clone(&self) -> Self {
        Table {
            items: self.items.clone(),
            slots: self.slots.clone(),
            hint: AtomicUsize::new(self.hint.load(Ordering::Relaxed)),
        }
    }
}

impl Table {
    /// A table for about `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Table {
            items: Vec::with_capacity(n),
            slots: vec![EMPTY; (2 * n).next_power_of_two().max(16)],
            hint: AtomicUsize::new(0),
        }
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.slots.fill(EMPTY);
        self.hint.store(0, Ordering::Relaxed);
    }

    /// The slot of `id`: where it is, or the free one where it goes.
    fn slot(&self, id: &str) -> usize {
        let mask = self.slots.len() - 1;
        let mut at = hash_bytes(id.as_bytes()) as usize & mask;
        loop {
            match self.slots[at] {
                EMPTY => return at,
                i if self.items[i as usize].0 == id => return at,
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Adds an entry unless its id has one already (the first entry of an id wins).
    pub fn insert_first(&mut self, id: String, state: StateEntry, span: Option<Span>) {
        if self.slots.len() < 2 * (self.items.len() + 1) {
            self.grow();
        }
        let at = self.slot(&id);
        if self.slots[at] == EMPTY {
            self.slots[at] = self.items.len() as u32;
            self.items.push((id, state, span));
        }
    }

    fn grow(&mut self) {
        let len = (self.slots.len() * 2).max(16);
        self.slots = vec![EMPTY; len];
        for i in 0..self.items.len() {
            let at = self.slot(&self.items[i].0);
            self.slots[at] = i as u32;
        }
    }

    pub fn get(&self, id: &str) -> Option<&Item> {
        let hint = self.hint.load(Ordering::Relaxed);
        if let Some(item) = self.items.get(hint)
            && item.0 == id
        {
            self.hint.store(hint + 1, Ordering::Relaxed);
            return Some(item);
        }
        if self.slots.is_empty() {
            return None;
        }
        match self.slots[self.slot(id)] {
            EMPTY => None,
            i => {
                self.hint.store(i as usize + 1, Ordering::Relaxed);
                Some(&self.items[i as usize])
            }
        }
    }

    /// The entries in file order.
    #[cfg(test)]
    pub fn into_items(self) -> Vec<Item> {
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_entry_wins_and_lookups_find_every_id() {
        let mut t = Table::default();
        let ids: Vec<String> = (0..1000)
            .map(|i| format!("{}.{}", i / 10, i % 10))
            .collect();
        for (i, id) in ids.iter().enumerate() {
            t.insert_first(id.clone(), StateEntry::default(), Some((i, i + 1)));
        }
        t.insert_first(ids[3].clone(), StateEntry::default(), Some((7, 7)));
        // In order (the cursor), backwards and out of order (the index), and unknown ids.
        for (i, id) in ids.iter().enumerate().chain(ids.iter().enumerate().rev()) {
            assert_eq!(t.get(id).map(|x| x.2), Some(Some((i, i + 1))), "{id}");
        }
        assert!(t.get("V1").is_none());
        assert!(t.get("").is_none());
        let c = t.clone();
        assert_eq!(c.get(&ids[500]).map(|x| x.2), Some(Some((500, 501))));
        t.clear();
        assert!(t.get(&ids[0]).is_none());
        assert!(Table::default().get("1.1").is_none());
        assert_eq!(c.into_items().len(), 1000);
    }
}
