//! Following a status file that changes one entry at a time, for `orch up`: which entries
//! changed since the last read, found by comparing the new text with the old one entry by entry
//! (a byte comparison), so that only those entries are parsed. Its cost per change is a pass of
//! `memcmp` over the file plus the changed entries, not a parse of the whole document.
//!
//! Only orch's own layout is followed (pretty-printed, two-space indent, the entry's `id` its
//! first key): `tasks` and `verifySteps` arrays at depth 1, each entry an object opened on a
//! line of its own at four spaces and closed by `\n    }`. In JSON text a raw newline occurs
//! only between tokens, so `\n    }` ends an entry and `\n  "key": ` is a top-level key. When
//! the new text is laid out otherwise, or its entries were added, removed or reordered, the
//! follower says so and the caller reads the document whole.

use super::layout::{ENTRY_OPEN, after_entry, array_start, entry_at, id_of, top_field};
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
    bytes: Vec<u8>,
    tasks: Entries,
    verify: Entries,
    /// The span of `orchMerge`'s value, when present.
    merge: Option<(usize, usize)>,
}

/// What changed between two texts of a followed file.
#[derive(Debug, Default)]
pub struct Followed {
    /// The entries (tasks, then VERIFY steps) whose text changed, as now recorded.
    pub entries: Vec<TaskEntry>,
    /// `orchMerge` as now recorded, when its text changed.
    pub merge: Option<Option<OrchMerge>>,
}

/// The array under top-level `key`: the entries' spans and ids, comparing each with `old`'s
/// entry at the same place (`old_bytes`) and parsing only those that differ (pushed onto
/// `changed`). `None` when the layout is not orch's or the entries are not the same ids in the
/// same order as in `old` (when given).
fn walk(
    bytes: &[u8],
    key: &str,
    old: Option<(&[u8], &Entries)>,
    changed: &mut Vec<TaskEntry>,
) -> Option<Entries> {
    // Without the array at depth 1 the text is not in orch's layout (orch always writes both).
    let mut pos = array_start(bytes, key)?;
    let mut out = Entries {
        spans: Vec::with_capacity(old.map_or(0, |(_, o)| o.spans.len())),
        ids: Vec::new(),
    };
    if bytes.get(pos) == Some(&b']') {
        return old.is_none_or(|(_, o)| o.spans.is_empty()).then_some(out);
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
    Some(out)
}

/// The span of top-level `orchMerge`'s value (an object), `Some(None)` when absent.
fn merge_span(bytes: &[u8]) -> Option<Option<(usize, usize)>> {
    let Some((start, end)) = top_field(bytes, "orchMerge") else {
        return Some(None);
    };
    (bytes.get(start) == Some(&b'{')).then_some(Some((start, end)))
}

impl Follower {
    /// Starts following from `bytes` (a whole file, already read as a document by the caller);
    /// `None` when it is not in orch's layout.
    pub fn new(bytes: Vec<u8>) -> Option<Self> {
        let mut none = Vec::new();
        let tasks = walk(&bytes, "tasks", None, &mut none)?;
        let verify = walk(&bytes, "verifySteps", None, &mut none)?;
        let merge = merge_span(&bytes)?;
        Some(Self {
            bytes,
            tasks,
            verify,
            merge,
        })
    }

    /// What changed in the file's new text `bytes`; the follower then follows it. `Err(bytes)`
    /// when it cannot tell (the layout changed, entries came or went): read the document whole
    /// and start again with [`Follower::new`].
    pub fn update(&mut self, bytes: Vec<u8>) -> Result<Followed, Vec<u8>> {
        match self.diff(&bytes) {
            Some((followed, tasks, verify, merge)) => {
                self.bytes = bytes;
                self.tasks.spans = tasks.spans;
                self.verify.spans = verify.spans;
                self.merge = merge;
                Ok(followed)
            }
            None => Err(bytes),
        }
    }

    #[allow(clippy::type_complexity)]
    fn diff(&self, bytes: &[u8]) -> Option<(Followed, Entries, Entries, Option<(usize, usize)>)> {
        let mut entries = Vec::new();
        let tasks = walk(
            bytes,
            "tasks",
            Some((&self.bytes, &self.tasks)),
            &mut entries,
        )?;
        let verify = walk(
            bytes,
            "verifySteps",
            Some((&self.bytes, &self.verify)),
            &mut entries,
        )?;
        let merge = merge_span(bytes)?;
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
        Some((followed, tasks, verify, merge))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::status::test_support::{at, printed, small_plan};
    use crate::status::{StatusDoc, Transition, TransitionOptions, apply};

    fn doc() -> StatusDoc {
        StatusDoc::new(&small_plan(), "p.md", "demo", at(0))
    }

    /// Every sequence of two transitions on two entries (tasks and VERIFY steps): the follower
    /// reports exactly the entries whose recorded value changed, as a whole read would see them.
    #[test]
    fn the_follower_reports_exactly_the_changed_entries() {
        let transitions = [
            Transition::Start,
            Transition::Done,
            Transition::Fail,
            Transition::Skip,
            Transition::Reset,
        ];
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
}
