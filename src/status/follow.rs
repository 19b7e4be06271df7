//! Following a status file that changes one entry at a time, for `orch up`: which entries
//! changed since the last read, found by comparing the new text with the old one, so that only
//! those entries are parsed. The `tasks` arrays are compared from both ends (a vector compare):
//! the entries in the common start and end are the old ones, and only those between are read
//! entry by entry. Its cost per change is that compare plus the changed entries (and the short
//! `verifySteps` array, compared entry by entry), not a parse of the whole document.
//!
//! Only orch's own layout is followed (pretty-printed, two-space indent, the entry's `id` its
//! first key): `tasks` and `verifySteps` arrays at depth 1, each entry an object opened on a
//! line of its own at four spaces and closed by `\n    }`. In JSON text a raw newline occurs
//! only between tokens, so `\n    }` ends an entry and `\n  "key": ` is a top-level key. When
//! the new text is laid out otherwise, or its entries were added, removed or reordered, the
//! follower says so and the caller reads the document whole.

use std::sync::Arc;

use super::layout::{
    ENTRY_OPEN, after_entry, array_start, entry_at, id_of, tasks_end, top_field_from,
};
use super::model::TaskEntry;
use super::orch_fields::OrchMerge;

/// Where an array's entries sit in the text, with their ids.
#[derive(Clone, Debug, Default)]
struct Entries {
    spans: Vec<(usize, usize)>,
    ids: Vec<String>,
}

/// The last text read of one status file, indexed by entry.
#[derive(Clone, Debug, Default)]
pub struct Follower {
    bytes: Arc<Vec<u8>>,
    tasks: Entries,
    verify: Entries,
    /// The span of `orchMerge`'s value, when present.
    merge: Option<(usize, usize)>,
    /// Where the `tasks` array's entries open (just after its `[`).
    open: usize,
    /// Where the top-level keys after the `tasks` array start (just after its `]`).
    tail: usize,
}

/// What changed between two texts of a followed file.
#[derive(Debug, Default)]
pub struct Followed {
    /// The entries (tasks, then VERIFY steps) whose text changed, as now recorded.
    pub entries: Vec<TaskEntry>,
    /// `orchMerge` as now recorded, when its text changed.
    pub merge: Option<Option<OrchMerge>>,
}

/// The array under top-level `key` (after byte `from`), and where it ends (after its `]`): the
/// entries' spans and ids, comparing each with `old`'s entry at the same place (`old_bytes`) and
/// parsing only those that differ (pushed onto `changed`). `None` when the layout is not orch's
/// or the entries are not the same ids in the same order as in `old` (when given).
fn walk(
    bytes: &[u8],
    from: usize,
    key: &str,
    old: Option<(&[u8], &Entries)>,
    changed: &mut Vec<TaskEntry>,
) -> Option<(Entries, usize)> {
    // Without the array at depth 1 the text is not in orch's layout (orch always writes both).
    let mut pos = from + array_start(&bytes[from..], key)?;
    let mut out = Entries {
        spans: Vec::with_capacity(old.map_or(0, |(_, o)| o.spans.len())),
        ids: Vec::new(),
    };
    if bytes.get(pos) == Some(&b']') {
        return old
            .is_none_or(|(_, o)| o.spans.is_empty())
            .then_some((out, pos + 1));
    }
    loop {
        if !bytes[pos..].starts_with(ENTRY_OPEN) {
            return None;
        }
        let start = pos + 1 + 4;
        let i = out.spans.len();
        let same = old.and_then(|(ob, o)| {
            let &(s, e) = o.spans.get(i)?;
            let text = &ob[s..e];
            (bytes.get(start..start + text.len()) == Some(text)).then_some(start + text.len())
        });
        let end = match same {
            Some(end) => end,
            None => {
                let (_, end) = entry_at(bytes, pos)?;
                if old.is_some() {
                    changed.push(serde_json::from_slice(&bytes[start..end]).ok()?);
                }
                end
            }
        };
        // An entry whose text is the same has the same id: only new or changed texts are read.
        match old {
            Some((_, o)) => {
                if same.is_none()
                    && o.ids.get(i).map(String::as_str) != Some(id_of(&bytes[start..end])?)
                {
                    return None;
                }
            }
            None => out.ids.push(id_of(&bytes[start..end])?.to_string()),
        }
        out.spans.push((start, end));
        match after_entry(bytes, end)? {
            Some(next) => pos = next,
            None => break,
        }
    }
    if old.is_some_and(|(_, o)| o.spans.len() != out.spans.len()) {
        return None;
    }
    // Following, the ids are the old ones (same ids in the same order): `out.ids` stays empty.
    let end = out.spans.last().map_or(pos, |&(_, e)| e) + 4;
    Some((out, end))
}

/// How many bytes `a` and `b` have in common at their start.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    // Whole blocks first (a vector compare each), then bytes.
    for block in [4096, 64] {
        while i + block <= n && a[i..i + block] == b[i..i + block] {
            i += block;
        }
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// How many bytes `a` and `b` have in common at their end.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[a.len() - n..], &b[b.len() - n..]);
    let mut i = 0;
    for block in [4096, 64] {
        while i + block <= n && a[n - i - block..n - i] == b[n - i - block..n - i] {
            i += block;
        }
    }
    while i < n && a[n - i - 1] == b[n - i - 1] {
        i += 1;
    }
    i
}

/// The span of top-level `orchMerge`'s value (an object), `Some(None)` when absent.
fn merge_span(bytes: &[u8], from: usize) -> Option<Option<(usize, usize)>> {
    let Some((start, end)) = top_field_from(bytes, from, "orchMerge") else {
        return Some(None);
    };
    (bytes.get(start) == Some(&b'{')).then_some(Some((start, end)))
}

impl Follower {
    /// Starts following from `bytes` (a whole file, already read as a document by the caller);
    /// `None` when it is not in orch's layout.
    pub fn new(bytes: impl Into<Arc<Vec<u8>>>) -> Option<Self> {
        let bytes = bytes.into();
        let mut none = Vec::new();
        let open = array_start(&bytes, "tasks")?;
        let (tasks, tail) = walk(&bytes, 0, "tasks", None, &mut none)?;
        let (verify, _) = walk(&bytes, tail, "verifySteps", None, &mut none)?;
        let merge = merge_span(&bytes, tail)?;
        Some(Self {
            bytes,
            tasks,
            verify,
            merge,
            open,
            tail,
        })
    }

    /// What changed in the file's new text `bytes`; the follower then follows it. `Err(bytes)`
    /// when it cannot tell (the layout changed, entries came or went): read the document whole
    /// and start again with [`Follower::new`].
    pub fn update(&mut self, bytes: impl Into<Arc<Vec<u8>>>) -> Result<Followed, Arc<Vec<u8>>> {
        let bytes = bytes.into();
        match self.diff(&bytes) {
            Some((followed, next)) => {
                self.bytes = bytes;
                self.tasks.spans = next.tasks.spans;
                self.verify.spans = next.verify.spans;
                self.merge = next.merge;
                self.open = next.open;
                self.tail = next.tail;
                Ok(followed)
            }
            None => Err(bytes),
        }
    }

    /// The text last read after its `tasks` array: the top-level keys that follow it (where
    /// orch writes its own, and keys someone else added).
    pub fn tail(&self) -> &[u8] {
        &self.bytes[self.tail..]
    }

    /// The `tasks` entries of the new text `bytes` (spans only: the ids are the old ones), where
    /// the array's entries open and where it ends, pushing the entries that changed onto
    /// `changed`. The old and new arrays are compared from both ends: the entries within the
    /// common start and end are the old ones (those after the change moved by the change in
    /// length), and only those in between are read. `None` as for [`walk`].
    fn follow_tasks(
        &self,
        bytes: &[u8],
        changed: &mut Vec<TaskEntry>,
    ) -> Option<(Entries, usize, usize)> {
        let open = array_start(bytes, "tasks")?;
        let tail = tasks_end(bytes, open)?;
        let (old, new) = (&self.bytes[self.open..self.tail], &bytes[open..tail]);
        let same_start = common_prefix(old, new);
        let same_end = common_suffix(&old[same_start..], &new[same_start..]);
        let old_to = old.len() - same_end;
        // Absolute positions: an old entry before the change, after it, in the new text.
        let before = |x: usize| x - self.open + open;
        let after = |x: usize| x - self.open + open + new.len() - old.len();
        let spans = &self.tasks.spans;
        // The old entries the change touches: from the first that ends after the common start
        // to the last that starts before the common end.
        let first = spans.partition_point(|&(_, e)| e - self.open <= same_start);
        let last = spans.partition_point(|&(s, _)| s - self.open < old_to);
        let mut out = Entries {
            spans: Vec::with_capacity(spans.len()),
            ids: Vec::new(),
        };
        out.spans
            .extend(spans[..first].iter().map(|&(s, e)| (before(s), before(e))));
        // Read in the new text from where the first touched entry opens (or the array's
        // `[` when the change is at its very start).
        let mut pos = match spans.get(first) {
            // The text before the first touched entry is the old one (orch changes entries,
            // not what is between them).
            Some(&(s, _)) if first < last => {
                if s - self.open > same_start {
                    return None;
                }
                before(s) - ENTRY_OPEN.len() + 1
            }
            _ => {
                // Nothing but separators changed between entries: not orch's writing.
                return (old.len() == new.len() && same_start == old.len()).then(|| {
                    out.spans
                        .extend(spans[first..].iter().map(|&(s, e)| (after(s), after(e))));
                    (out, open, tail)
                });
            }
        };
        let mut ended = false;
        for (i, &(os, oe)) in spans.iter().enumerate().take(last).skip(first) {
            let (start, end) = entry_at(bytes, pos)?;
            let text = &bytes[start..end];
            if text != &self.bytes[os..oe] {
                // An entry whose text is the same has the same id: only changed texts are read.
                if self.tasks.ids.get(i).map(String::as_str) != Some(id_of(text)?) {
                    return None;
                }
                changed.push(serde_json::from_slice(text).ok()?);
            }
            out.spans.push((start, end));
            match after_entry(bytes, end)? {
                Some(next) => pos = next,
                None if i + 1 == last => ended = true,
                None => return None,
            }
        }
        // The entries after the change are where they were, moved by the change in length;
        // without any, the array ends after the last entry read.
        let aligned = match spans.get(last) {
            Some(&(s, _)) => !ended && pos + ENTRY_OPEN.len() - 1 == after(s),
            None => ended,
        };
        if !aligned {
            return None;
        }
        out.spans
            .extend(spans[last..].iter().map(|&(s, e)| (after(s), after(e))));
        Some((out, open, tail))
    }

    /// What changed in `bytes`, and where its entries are (a follower without the text, and
    /// without the ids, which are the old ones).
    fn diff(&self, bytes: &[u8]) -> Option<(Followed, Follower)> {
        let mut entries = Vec::new();
        let (tasks, open, tail) = self.follow_tasks(bytes, &mut entries)?;
        let (verify, _) = walk(
            bytes,
            tail,
            "verifySteps",
            Some((&self.bytes, &self.verify)),
            &mut entries,
        )?;
        let merge = merge_span(bytes, tail)?;
        let old_merge = self.merge.map(|(s, e)| &self.bytes[s..e]);
        let new_merge = merge.map(|(s, e)| &bytes[s..e]);
        let merge_changed = if old_merge == new_merge {
            None
        } else {
            Some(match new_merge {
                Some(text) => Some(serde_json::from_slice::<OrchMerge>(text).ok()?),
                None => None,
            })
        };
        let followed = Followed {
            entries,
            merge: merge_changed,
        };
        let next = Follower {
            bytes: Arc::default(),
            tasks,
            verify,
            merge,
            open,
            tail,
        };
        Some((followed, next))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::status::test_support::{TRANSITIONS, at, phased_plan, printed, small_plan};
    use crate::status::{StatusDoc, TransitionOptions, apply};

    fn doc() -> StatusDoc {
        StatusDoc::new(&small_plan(), "p.md", "demo", at(0))
    }

    /// Every sequence of two transitions on two entries (tasks and VERIFY steps): the follower
    /// reports exactly the entries whose recorded value changed, as a whole read would see them.
    #[test]
    fn the_follower_reports_exactly_the_changed_entries() {
        let transitions = TRANSITIONS;
        let opts = TransitionOptions {
            force: true,
            note: Some("a \"quoted\" note\nwith a } and \n    } inside".into()),
            error: Some("boom".into()),
            ..TransitionOptions::default()
        };
        let ids = ["1.1", "2.1", "2.2", "V1"];
        let mut checked = 0;
        for t1 in transitions {
            for t2 in transitions {
                for a in ids {
                    for b in ids {
                        let mut d = doc();
                        let mut f = Follower::new(printed(&d)).expect("orch's layout");
                        let before: Vec<TaskEntry> = d.entries().cloned().collect();
                        let _ = apply(&mut d, a, t1, &opts, Utc::now());
                        let _ = apply(&mut d, b, t2, &opts, Utc::now());
                        let got = f.update(printed(&d)).expect("followed");
                        let want: Vec<TaskEntry> = d
                            .entries()
                            .zip(&before)
                            .filter(|(now, was)| now != was)
                            .map(|(now, _)| now.clone())
                            .collect();
                        assert_eq!(got.entries, want, "{t1:?} {a}, {t2:?} {b}");
                        assert!(got.merge.is_none());
                        // And nothing more the next time.
                        let again = f.update(printed(&d)).expect("followed");
                        assert!(again.entries.is_empty());
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 400);
    }

    #[test]
    fn a_merge_record_is_seen_when_it_changes() {
        let mut d = doc();
        let mut f = Follower::new(printed(&d)).expect("orch's layout");
        d.orch_merge = Some(OrchMerge::default());
        let got = f.update(printed(&d)).expect("followed");
        assert_eq!(got.merge, Some(Some(OrchMerge::default())));
        assert!(f.update(printed(&d)).expect("followed").merge.is_none());
        d.orch_merge = None;
        assert_eq!(f.update(printed(&d)).expect("followed").merge, Some(None));
    }

    /// Added, removed or reordered entries, and another layout, are not followed.
    #[test]
    fn other_shapes_are_not_followed() {
        let d = doc();
        let mut f = Follower::new(printed(&d)).expect("orch's layout");
        let mut fewer = d.clone();
        fewer.tasks.pop();
        assert!(f.clone().update(printed(&fewer)).is_err());
        let mut swapped = d.clone();
        swapped.tasks.swap(0, 1);
        assert!(f.clone().update(printed(&swapped)).is_err());
        let compact = serde_json::to_vec(&d).expect("json");
        assert!(f.update(compact.clone()).is_err());
        assert!(Follower::new(compact).is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Random changes of up to three entries at a time, anywhere in the array (its first
        /// and last entries too), texts printed whole: the follower reports exactly the changed
        /// entries and then holds what a new follower of the text holds; an entry added or
        /// removed anywhere is not followed.
        #[test]
        fn the_follower_follows_random_changes_from_both_ends(
            tasks in proptest::collection::vec(1usize..6, 1..5),
            steps in proptest::collection::vec(
                proptest::collection::vec((0usize..100, 0usize..5), 1..4),
                1..25,
            ),
            cut in 0usize..100,
        ) {
            let transitions = TRANSITIONS;
            let opts = TransitionOptions {
                force: true,
                error: Some("boom".into()),
                ..TransitionOptions::default()
            };
            // No VERIFY steps: those are in the short tail, walked whole.
            let mut d = StatusDoc::new(&phased_plan(&tasks, &[]), "p.md", "demo", at(0));
            let ids: Vec<String> = d.tasks.iter().map(|e| e.id.clone()).collect();
            let mut f = Follower::new(printed(&d)).expect("orch's layout");
            for (k, change) in steps.iter().enumerate() {
                let before: Vec<TaskEntry> = d.entries().cloned().collect();
                for (i, t) in change {
                    let _ = apply(&mut d, &ids[i % ids.len()], transitions[*t], &opts, at(k as i64));
                }
                let got = f.update(printed(&d)).expect("followed");
                let want: Vec<TaskEntry> = d
                    .entries()
                    .zip(&before)
                    .filter(|(now, was)| now != was)
                    .map(|(now, _)| now.clone())
                    .collect();
                proptest::prop_assert_eq!(&got.entries, &want, "step {}", k);
                let fresh = Follower::new(printed(&d)).expect("orch's layout");
                proptest::prop_assert_eq!(&f.tasks.spans, &fresh.tasks.spans, "step {}", k);
                proptest::prop_assert_eq!((f.open, f.tail), (fresh.open, fresh.tail));
            }
            let i = cut % d.tasks.len();
            let mut fewer = d.clone();
            fewer.tasks.remove(i);
            proptest::prop_assert!(f.clone().update(printed(&fewer)).is_err());
            let mut more = d.clone();
            let mut extra = d.tasks[i].clone();
            extra.id = "99.1".into();
            more.tasks.insert(i, extra.clone());
            proptest::prop_assert!(f.clone().update(printed(&more)).is_err());
            let mut last = d.clone();
            last.tasks.push(extra);
            proptest::prop_assert!(f.update(printed(&last)).is_err());
        }
    }
}
