//! orch's own layout of a status file, read by its structure alone (no value is parsed): what
//! lets a record change one entry in the text ([`super::splice`]) and `orch up` follow a file
//! entry by entry ([`super::follow`]) at `memchr` speed.
//!
//! The layout is `serde_json`'s pretty printer with a final newline: two spaces per level, the
//! top-level object's keys on lines of their own at two spaces, the `tasks` and `verifySteps`
//! arrays' entries opened on a line of their own at four spaces and closed by `\n    }`, each
//! entry's `id` its first key. In JSON text a raw newline occurs only between tokens (never in
//! a string), so `\n  "key": ` can only be a top-level key and `\n    }` only the end of an
//! entry of a top-level array. A text laid out otherwise is not found to be in the layout and
//! callers take the general path (a whole parse). A text in the layout is trusted for what the
//! skim does not read: whatever else it holds is left as it is.

use std::sync::LazyLock;

use memchr::memmem;

/// How an entry of a top-level array opens (after the `[` or the `,` before it).
pub(crate) const ENTRY_OPEN: &[u8] = b"\n    {";
/// How an entry of a top-level array closes.
pub(crate) const ENTRY_CLOSE: &[u8] = b"\n    }";

/// The id an entry's text starts with: `{\n      "id": "…",` (no escapes).
pub(crate) fn id_of(entry: &[u8]) -> Option<&str> {
    let rest = entry.strip_prefix(b"{\n      \"id\": \"")?;
    let end = memchr::memchr(b'"', rest)?;
    let id = std::str::from_utf8(&rest[..end]).ok()?;
    (!id.contains('\\')).then_some(id)
}

/// Whether `bytes` is framed as orch writes a document: an object opened on the first line and
/// closed on the last, then a newline.
pub(crate) fn framed(bytes: &[u8]) -> bool {
    bytes.starts_with(b"{\n  \"") && bytes.ends_with(b"\n}\n")
}

/// Where the array under top-level `key` starts: just after its `[`.
pub(crate) fn array_start(bytes: &[u8], key: &str) -> Option<usize> {
    let head = format!("\n  \"{key}\": [");
    memmem::find(bytes, head.as_bytes()).map(|at| at + head.len())
}

/// The span of the entry that opens at `pos` (just after the array's `[` or an entry's `,`),
/// found by its end `\n    }`, from its `{` to its `}`.
pub(crate) fn entry_at(bytes: &[u8], pos: usize) -> Option<(usize, usize)> {
    static CLOSE: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(ENTRY_CLOSE));
    if !bytes.get(pos..)?.starts_with(ENTRY_OPEN) {
        return None;
    }
    let start = pos + ENTRY_OPEN.len() - 1;
    let close = CLOSE.find(&bytes[start..])?;
    Some((start, start + close + ENTRY_CLOSE.len()))
}

/// What follows an entry that ends at `end`: `Some(Some(next))` another entry (opening at
/// `next`), `Some(None)` the end of the array, `None` anything else.
pub(crate) fn after_entry(bytes: &[u8], end: usize) -> Option<Option<usize>> {
    match bytes.get(end) {
        Some(b',') => Some(Some(end + 1)),
        Some(b'\n') if bytes[end..].starts_with(b"\n  ]") => Some(None),
        _ => None,
    }
}

/// An entry of a top-level array as [`entries_with_fields`] finds it: its span (from `{` to `}`)
/// and the spans of the values of its `phase` and `status` (between the quotes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryAt {
    pub span: (usize, usize),
    pub phase: (usize, usize),
    pub status: (usize, usize),
}

/// The entries of the array under top-level `key` that starts after byte `from`, each with its
/// `phase` and `status`, and where the array ends. orch writes both keys in an entry's first
/// lines (after `id`, and `description` between them), so an entry is read line by line only
/// until both are found; the rest of it is passed over to its end `\n    }`, found by its `}`
/// (a rare byte, so a vector search). `None` when the array is not in the layout, or an entry
/// lacks either field at its top level, or writes one with escapes. What follows both keys in
/// an entry is not read (a key written twice there goes unseen, as any other fault in what
/// the skim does not read).
pub(crate) fn entries_with_fields(
    bytes: &[u8],
    from: usize,
    key: &str,
) -> Option<(Vec<EntryAt>, usize)> {
    let open = from + array_start(bytes.get(from..)?, key)?;
    if bytes.get(open) == Some(&b']') {
        return Some((Vec::new(), open + 1));
    }
    // Room for entries of about 300 bytes, what orch writes for a task with a short description.
    let mut out = Vec::with_capacity((bytes.len() - open) / 300);
    // Where the next entry opens: just after the array's `[` or the last entry's `,`.
    let mut pos = open;
    loop {
        let e = entry_fields_at(bytes, pos)?;
        out.push(e);
        match after_entry(bytes, e.span.1)? {
            Some(next) => pos = next,
            None => return Some((out, e.span.1 + 4)),
        }
    }
}

/// The entry that opens at `pos` (just after its array's `[` or the previous entry's `,`), with
/// its `phase` and `status`, read as [`entries_with_fields`] reads each entry.
pub(crate) fn entry_fields_at(bytes: &[u8], pos: usize) -> Option<EntryAt> {
    const PHASE: &[u8] = b"      \"phase\": \"";
    const STATUS: &[u8] = b"      \"status\": \"";
    // A string value on the line at `line`, after `prefix`: its span, if it has no escapes.
    let value = |line: usize, prefix: &[u8]| {
        let start = line + prefix.len();
        let len = memchr::memchr2(b'"', b'\\', &bytes[start..])?;
        (bytes[start + len] == b'"').then_some((start, start + len))
    };
    if !bytes.get(pos..)?.starts_with(b"\n    {\n") {
        return None;
    }
    let start = pos + 5;
    // The entry's first lines, up to the one where both keys have been read.
    let (mut phase, mut status) = (None, None);
    let mut line = start + 2;
    let read_to = loop {
        let rest = &bytes[line..];
        // Where the value read on this line ends, if one is.
        let mut read = None;
        if rest.starts_with(b"    }") {
            return None;
        } else if rest.starts_with(PHASE) {
            let v = value(line, PHASE)?;
            read = Some(v.1);
            if phase.replace(v).is_some() {
                return None;
            }
        } else if rest.starts_with(STATUS) {
            let v = value(line, STATUS)?;
            read = Some(v.1);
            if status.replace(v).is_some() {
                return None;
            }
        }
        // A value read is followed by `",` and the line's end, as orch writes it.
        let eol = match read {
            Some(e) if bytes[e..].starts_with(b"\",\n") => e + 2,
            _ => line + memchr::memchr(b'\n', rest)?,
        };
        if phase.is_some() && status.is_some() {
            break eol;
        }
        line = eol + 1;
    };
    // The rest of the entry, to its end: the first `}` that closes a line of four spaces.
    let mut end = read_to;
    loop {
        end += 1 + memchr::memchr(b'}', &bytes[end..])?;
        if bytes[..end - 1].ends_with(b"\n    ") {
            break;
        }
    }
    Some(EntryAt {
        span: (start, end),
        phase: phase?,
        status: status?,
    })
}

/// Where the entry before the one whose span starts at `start` opens (as [`entry_fields_at`]
/// takes it), in the array whose entries open after `open`; `None` for the first entry.
pub(crate) fn entry_before(bytes: &[u8], open: usize, start: usize) -> Option<usize> {
    // `},\n    {`: the previous entry ends just before the comma.
    let comma = start.checked_sub(ENTRY_OPEN.len())?;
    if bytes.get(comma) != Some(&b',') || comma <= open {
        return None;
    }
    memmem::rfind(&bytes[open..comma], b"\n    {\n").map(|at| open + at)
}

/// Where the `tasks` array (whose entries open after `open`, just after its `[`) ends: just
/// after its `]`. orch writes `runs` right after it, and the keys after `tasks` are few and
/// short beside it, so `runs` is looked for from the end of the text (in the layout,
/// `\n  "runs": ` is only that top-level key).
pub(crate) fn tasks_end(bytes: &[u8], open: usize) -> Option<usize> {
    let runs = memmem::rfind(bytes.get(open..)?, b"\n  \"runs\": ")? + open;
    // `]` then the comma before `runs`.
    let end = runs.checked_sub(1)?;
    let closed = if end == open + 1 {
        bytes[open] == b']'
    } else {
        bytes[..end].ends_with(b"\n  ]")
    };
    (closed && bytes[end] == b',').then_some(end)
}

/// Where the top-level array whose entries open after `open` (just after its `[`) ends: just
/// after its `]`. In the layout `\n  ]` closes only a top-level array.
pub(crate) fn array_end(bytes: &[u8], open: usize) -> Option<usize> {
    if bytes.get(open) == Some(&b']') {
        return Some(open + 1);
    }
    memmem::find(bytes.get(open..)?, b"\n  ]").map(|at| open + at + 4)
}

/// The span of the value of top-level `key`: an object or array from its opening bracket to the
/// closing one (on a line of its own at two spaces, or `{}` / `[]`), any other value to the end
/// of its line (without the comma). `None` when the key is not there.
pub(crate) fn top_field(bytes: &[u8], key: &str) -> Option<(usize, usize)> {
    top_field_from(bytes, 0, key)
}

/// [`top_field`] for a key that comes after byte `from` (top-level keys are in a fixed order in
/// orch's layout: one after a large array is found without reading the array again).
pub(crate) fn top_field_from(bytes: &[u8], from: usize, key: &str) -> Option<(usize, usize)> {
    let head = format!("\n  \"{key}\": ");
    let start = from + memmem::find(bytes.get(from..)?, head.as_bytes())? + head.len();
    let rest = &bytes[start..];
    let close: &[u8] = match rest.first()? {
        b'{' if !rest.starts_with(b"{}") => b"\n  }",
        b'[' if !rest.starts_with(b"[]") => b"\n  ]",
        _ => {
            let line = memchr::memchr(b'\n', rest)?;
            let end = start + line;
            let end = if bytes[end - 1] == b',' { end - 1 } else { end };
            return Some((start, end));
        }
    };
    let at = memmem::find(rest, close)?;
    Some((start, start + at + close.len()))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::status::test_support::{at, printed, small_plan};
    use crate::status::{OrchMerge, StatusDoc, Transition, TransitionOptions, apply};

    fn doc() -> StatusDoc {
        let at = at(0);
        let mut d = StatusDoc::new(&small_plan(), "p.md", "demo", at);
        d.orch_plan_digest = Some("digest".into());
        let opts = TransitionOptions {
            force: true,
            note: Some(
                "a \"quoted\" note\nwith a } and \n    } and \n  \"summary\": inside".into(),
            ),
            ..TransitionOptions::default()
        };
        apply(&mut d, "2.1", Transition::Done, &opts, at).expect("done");
        // An entry holding objects: their closing braces are not the entry's end.
        let started = TransitionOptions {
            force: true,
            run: Some(crate::status::RunInfo {
                pid: 7,
                ..Default::default()
            }),
            ..TransitionOptions::default()
        };
        apply(&mut d, "1.1", Transition::Start, &started, at).expect("started");
        d.extra.insert(
            "nested".into(),
            serde_json::json!({"a": [1, {"b": {}}], "c": []}),
        );
        d.orch_merge = Some(OrchMerge::default());
        d
    }

    /// The skim finds every top-level value and every entry where serde_json reads them.
    #[test]
    fn the_skim_reads_what_serde_json_reads() {
        let d = doc();
        let b = printed(&d);
        assert!(framed(&b));
        let value: Value = serde_json::from_slice(&b).expect("json");
        let Value::Object(top) = &value else {
            panic!("an object")
        };
        for (key, want) in top {
            let (s, e) = top_field(&b, key).unwrap_or_else(|| panic!("{key} found"));
            let got: Value = serde_json::from_slice(&b[s..e]).expect("a value");
            assert_eq!(&got, want, "{key}");
        }
        let text = std::str::from_utf8(&b).expect("utf-8");
        for key in ["tasks", "verifySteps"] {
            let (found, end) = entries_with_fields(&b, 0, key).expect("entries");
            assert_eq!(top_field(&b, key).map(|(_, e)| e), Some(end), "{key}");
            let want = top[key].as_array().expect("array");
            assert_eq!(found.len(), want.len(), "{key}");
            for (e, want) in found.iter().zip(want) {
                let (s, end) = e.span;
                let got: Value = serde_json::from_slice(&b[s..end]).expect("an entry");
                assert_eq!(&got, want);
                assert_eq!(id_of(&b[s..end]), want["id"].as_str());
                assert_eq!(Some(&text[e.phase.0..e.phase.1]), want["phase"].as_str());
                assert_eq!(Some(&text[e.status.0..e.status.1]), want["status"].as_str());
            }
        }
        assert!(top_field(&b, "absent").is_none());
        let (_, tasks_end) = entries_with_fields(&b, 0, "tasks").expect("tasks");
        let open = array_start(&b, "tasks").expect("tasks");
        assert_eq!(super::tasks_end(&b, open), Some(tasks_end));
        assert_eq!(array_end(&b, open), Some(tasks_end));
        let mut empty = d.clone();
        empty.tasks.clear();
        let e = printed(&empty);
        let open = array_start(&e, "tasks").expect("tasks");
        assert_eq!(super::tasks_end(&e, open), Some(open + 1));
        assert_eq!(array_end(&e, open), Some(open + 1));
        assert_eq!(
            top_field_from(&b, tasks_end, "summary"),
            top_field(&b, "summary")
        );
        assert!(top_field_from(&b, tasks_end, "planPath").is_none());
        // A phase written with an escape is left to the general path.
        let mut odd = d.clone();
        odd.tasks[0].phase = "Phase 1: \"quoted\"".into();
        assert!(entries_with_fields(&printed(&odd), 0, "tasks").is_none());
    }

    /// Compact JSON, or another indentation, is not in the layout.
    #[test]
    fn other_layouts_are_not_skimmed() {
        let d = doc();
        let compact = serde_json::to_vec(&d).expect("json");
        assert!(!framed(&compact));
        assert!(entries_with_fields(&compact, 0, "tasks").is_none());
        assert!(top_field(&compact, "summary").is_none());
        let mut four = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut four, fmt);
        serde::Serialize::serialize(&d, &mut ser).expect("json");
        assert!(entries_with_fields(&four, 0, "tasks").is_none());
        assert!(top_field(&four, "summary").is_none());
    }
}
