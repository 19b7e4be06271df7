//! The entries [`super::load_states`] keeps, by id: a vector in file order plus an index of
//! positions (open addressing over [`hash_bytes`]), and a cursor that makes lookups in file order
//! (what the reading commands do, plan order being the file's order) a single comparison.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::model::TaskStatus;
use super::states::StateEntry;
use crate::plan::quick_hash;

/// An entry's text: `bytes[start..end]` of the file.
pub(super) type Span = (usize, usize);

/// One entry: its id, state and span.
#[cfg(test)]
pub(super) type Item = (String, StateEntry, Option<Span>);

const EMPTY: u32 = u32::MAX;

/// The state of an entry with nothing but a status (most of them), by [`plain_index`].
static PLAIN: [StateEntry; 6] = [
    plain(None),
    plain(Some(TaskStatus::Pending)),
    plain(Some(TaskStatus::InProgress)),
    plain(Some(TaskStatus::Completed)),
    plain(Some(TaskStatus::Failed)),
    plain(Some(TaskStatus::Skipped)),
];

const fn plain(status: Option<TaskStatus>) -> StateEntry {
    StateEntry {
        status,
        error: None,
        last_error: None,
        usage: None,
    }
}

fn plain_index(status: Option<TaskStatus>) -> usize {
    match status {
        None => 0,
        Some(TaskStatus::Pending) => 1,
        Some(TaskStatus::InProgress) => 2,
        Some(TaskStatus::Completed) => 3,
        Some(TaskStatus::Failed) => 4,
        Some(TaskStatus::Skipped) => 5,
    }
}

/// [`Slot::state`] of a state kept in [`PLAIN`] rather than in [`Table::details`].
const PLAIN_FLAG: u32 = 1 << 31;

/// One entry, in 20 bytes (a 10,000-entry table is 200 KB, not the 1.8 MB of a `String` and a
/// [`StateEntry`] each): its id in [`Table::ids`], its span, where its state is.
#[derive(Clone, Copy, Debug)]
struct Slot {
    id_start: u32,
    id_len: u32,
    /// `EMPTY` in `span_end` when the entry has no span.
    span_start: u32,
    span_end: u32,
    /// An index into `details`, or into [`PLAIN`] with [`PLAIN_FLAG`].
    state: u32,
}

/// `a == b` for ids: short ones compared in line, byte by byte (a call to `memcmp` per
/// comparison was most of the cost of a lookup).
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && if a.len() <= 16 {
            a.iter().zip(b).all(|(x, y)| x == y)
        } else {
            a == b
        }
}

#[derive(Debug, Default)]
pub(super) struct Table {
    /// Entries in file order, the first of each id only.
    items: Vec<Slot>,
    /// The ids of `items`, one after the other (the bytes of each id's text).
    ids: Vec<u8>,
    /// The states that hold more than a status (an error, usage), few in a file.
    details: Vec<StateEntry>,
    /// Positions in `items`, `EMPTY` where free; a power of two long, at most half full.
    slots: Vec<u32>,
    /// Where the next lookup looks first: after the last entry found.
    hint: AtomicUsize,
}

impl Clone for Table {
    fn clone(&self) -> Self {
        Table {
            items: self.items.clone(),
            ids: self.ids.clone(),
            details: self.details.clone(),
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
            ids: Vec::with_capacity(n * 6),
            details: Vec::new(),
            slots: vec![EMPTY; (2 * n).next_power_of_two().max(16)],
            hint: AtomicUsize::new(0),
        }
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.ids.clear();
        self.details.clear();
        self.slots.fill(EMPTY);
        self.hint.store(0, Ordering::Relaxed);
    }

    fn id(&self, s: &Slot) -> &[u8] {
        let start = s.id_start as usize;
        &self.ids[start..start + s.id_len as usize]
    }

    fn state(&self, s: &Slot) -> &StateEntry {
        if s.state & PLAIN_FLAG != 0 {
            &PLAIN[(s.state & !PLAIN_FLAG) as usize]
        } else {
            &self.details[s.state as usize]
        }
    }

    fn span(s: &Slot) -> Option<Span> {
        (s.span_end != EMPTY).then_some((s.span_start as usize, s.span_end as usize))
    }

    /// The slot of `id`: where it is, or the free one where it goes.
    fn slot(&self, id: &[u8]) -> usize {
        let mask = self.slots.len() - 1;
        let mut at = quick_hash(id) as usize & mask;
        loop {
            match self.slots[at] {
                EMPTY => return at,
                i if same(self.id(&self.items[i as usize]), id) => return at,
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Adds an entry unless its id has one already (the first entry of an id wins). A span
    /// beyond 4 GiB is not kept (the entry is then read by the full pass).
    #[inline]
    pub fn insert_first(&mut self, id: &[u8], state: StateEntry, span: Option<Span>) {
        if self.slots.len() < 2 * (self.items.len() + 1) {
            self.grow();
        }
        let at = self.slot(id);
        if self.slots[at] != EMPTY {
            return;
        }
        let (Ok(id_start), Ok(id_len), Ok(n)) = (
            u32::try_from(self.ids.len()),
            u32::try_from(id.len()),
            u32::try_from(self.items.len()),
        ) else {
            return;
        };
        let span = span.and_then(|(s, e)| Some((u32::try_from(s).ok()?, u32::try_from(e).ok()?)));
        let (span_start, span_end) = span.filter(|(_, e)| *e != EMPTY).unwrap_or((0, EMPTY));
        let state = if state.error.is_none() && state.last_error.is_none() && state.usage.is_none()
        {
            plain_index(state.status) as u32 | PLAIN_FLAG
        } else {
            self.details.push(state);
            (self.details.len() - 1) as u32
        };
        self.ids.extend_from_slice(id);
        self.slots[at] = n;
        self.items.push(Slot {
            id_start,
            id_len,
            span_start,
            span_end,
            state,
        });
    }

    fn grow(&mut self) {
        let len = (self.slots.len() * 2).max(16);
        self.slots = vec![EMPTY; len];
        for i in 0..self.items.len() {
            let at = self.slot(self.id(&self.items[i]));
            self.slots[at] = i as u32;
        }
    }

    /// The state and span of `id`.
    pub fn get(&self, id: &str) -> Option<(&StateEntry, Option<Span>)> {
        let id = id.as_bytes();
        let hint = self.hint.load(Ordering::Relaxed);
        if let Some(item) = self.items.get(hint)
            && same(self.id(item), id)
        {
            self.hint.store(hint + 1, Ordering::Relaxed);
            return Some((self.state(item), Self::span(item)));
        }
        if self.slots.is_empty() {
            return None;
        }
        match self.slots[self.slot(id)] {
            EMPTY => None,
            i => {
                self.hint.store(i as usize + 1, Ordering::Relaxed);
                let item = &self.items[i as usize];
                Some((self.state(item), Self::span(item)))
            }
        }
    }

    /// The entries in file order.
    #[cfg(test)]
    pub fn into_items(self) -> Vec<Item> {
        self.items
            .iter()
            .map(|s| {
                (
                    String::from_utf8_lossy(self.id(s)).into_owned(),
                    self.state(s).clone(),
                    Self::span(s),
                )
            })
            .collect()
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
            t.insert_first(id.as_bytes(), StateEntry::default(), Some((i, i + 1)));
        }
        t.insert_first(ids[3].as_bytes(), StateEntry::default(), Some((7, 7)));
        // In order (the cursor), backwards and out of order (the index), and unknown ids.
        for (i, id) in ids.iter().enumerate().chain(ids.iter().enumerate().rev()) {
            assert_eq!(t.get(id).map(|x| x.1), Some(Some((i, i + 1))), "{id}");
        }
        assert!(t.get("V1").is_none());
        assert!(t.get("").is_none());
        let c = t.clone();
        assert_eq!(c.get(&ids[500]).map(|x| x.1), Some(Some((500, 501))));
        t.clear();
        assert!(t.get(&ids[0]).is_none());
        assert!(Table::default().get("1.1").is_none());
        assert_eq!(c.into_items().len(), 1000);
    }
}
