//! Recording one task's outcome without reading the whole document into memory and printing it
//! again: in a file orch wrote (it carries a current `orchPlanDigest`), only the task's entry,
//! `lastUpdatedAt`, `summary` and `currentPhase` change, so only those spans of the text are
//! replaced, each printed exactly as the whole document would print it. The text is read by its
//! structure alone ([`super::layout`]): no value but the changed entry is parsed, so a record
//! costs a few `memchr` passes over the file. Anything unexpected (another layout, a missing
//! key, an escaped phase label) falls back to the general path.

use chrono::{DateTime, Utc};

use super::error::StatusError;
use super::layout::{entries_with_fields, framed, id_of, top_field, top_field_from};
use super::model::{ORCH_SCHEMA_VERSION, StatusDoc, Summary, TaskEntry, TaskStatus, phase_number};
use super::transition::TransitionOutcome;
#[cfg(test)]
use super::transition::{Transition, TransitionOptions, apply};

/// What [`splice`] did.
pub(crate) enum Spliced<T = TransitionOutcome> {
    /// The new file text (`None`: the change changed nothing) and what the change returned.
    Done(Option<Edits>, T),
    /// The file's `orchPlanDigest` is not `digest`.
    Stale,
    /// The file is not laid out as expected (or the task is not found): use the general path.
    Fallback,
}

/// The new text of a status file as edits of the old one: spans of the old text (by byte
/// offsets, in order, not overlapping) replaced by new text. Written part by part, so that the
/// unchanged bulk of a large file is never copied into a second buffer.
#[derive(Debug)]
pub(crate) struct Edits {
    edits: Vec<(usize, usize, String)>,
}

impl Edits {
    /// The pieces of the new text, in order: unchanged spans of `old` and replacements.
    pub fn parts<'a>(&'a self, old: &'a [u8]) -> Vec<&'a [u8]> {
        let mut parts = Vec::with_capacity(self.edits.len() * 2 + 1);
        let mut from = 0;
        for (s, e, new) in &self.edits {
            parts.push(&old[from..*s]);
            parts.push(new.as_bytes());
            from = *e;
        }
        parts.push(&old[from..]);
        parts
    }

    /// The new text whole (the tests' view).
    #[cfg(test)]
    pub fn apply(&self, old: &[u8]) -> Vec<u8> {
        self.parts(old).concat()
    }
}

/// Byte offset of `part` (a slice of `whole`) in `whole`.
fn offset(whole: &[u8], part: &str) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

/// `pretty` (printed from depth 0) as it appears at `depth` levels of two spaces.
fn indent(pretty: &str, depth: usize) -> String {
    pretty.replace('\n', &format!("\n{}", "  ".repeat(depth)))
}

/// [`splice_with`] for transition `t` (what `orch task` does; the tests' reference).
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn splice(
    bytes: &[u8],
    digest: &str,
    plan_path_rel: &str,
    orch_name: &str,
    id: &str,
    t: Transition,
    opts: &TransitionOptions,
    now: DateTime<Utc>,
) -> Result<Spliced, StatusError> {
    splice_with(bytes, digest, plan_path_rel, orch_name, &[id], now, |doc| {
        apply(doc, id, t, opts, now)
    })
}

/// [`splice`] for any change `f` of the entries of `ids` (distinct): `f` gets a document that
/// holds only those entries, in file order (so it must look at nothing else), and may be called
/// again on the whole document if the text turns out not to be laid out as expected. An entry
/// counts as changed when it differs after `f`; `lastUpdatedAt` is then `now` unless `f` set it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn splice_with<T>(
    bytes: &[u8],
    digest: &str,
    plan_path_rel: &str,
    orch_name: &str,
    ids: &[&str],
    now: DateTime<Utc>,
    f: impl FnOnce(&mut StatusDoc) -> Result<T, StatusError>,
) -> Result<Spliced<T>, StatusError> {
    if !framed(bytes) {
        return Ok(Spliced::Fallback);
    }
    // The keys orch writes before `tasks`, then the array, then the keys after it, each looked
    // for from where it must be: the file is read about once.
    let Some((tasks, tasks_end)) = entries_with_fields(bytes, 0, "tasks") else {
        return Ok(Spliced::Fallback);
    };
    let head = &bytes[..tasks.first().map_or(tasks_end, |e| e.span.0)];
    // Only the spans read are checked to be UTF-8, not the whole (large) text.
    let text = |(s, e): (usize, usize)| std::str::from_utf8(&bytes[s..e]).ok();
    let before = |k: &str| top_field(head, k).and_then(text);
    let after = |k: &str| top_field_from(bytes, tasks_end, k).and_then(text);
    let json = |s: &str| serde_json::to_string(s).unwrap_or_default();
    if after("orchPlanDigest") != Some(json(digest).as_str()) {
        return Ok(Spliced::Stale);
    }
    let version: u32 = after("orchSchemaVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if before("planPath") != Some(json(plan_path_rel).as_str())
        || after("orchPlan") != Some(json(orch_name).as_str())
        || version != ORCH_SCHEMA_VERSION
    {
        return Ok(Spliced::Fallback);
    }
    // orch always writes `verifySteps`; a file without it has none.
    let verify = match after("verifySteps") {
        None => Vec::new(),
        Some(_) => match entries_with_fields(bytes, tasks_end, "verifySteps") {
            Some((v, _)) => v,
            None => return Ok(Spliced::Fallback),
        },
    };
    let (Some(updated), Some(current), Some(summary)) = (
        before("lastUpdatedAt"),
        before("currentPhase"),
        after("summary"),
    ) else {
        return Ok(Spliced::Fallback);
    };
    // The entries, by the line they open with (an id with characters JSON escapes is not looked
    // for: the layout's ids have none), in file order.
    let mut openings: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        let opening = format!("{{\n      \"id\": \"{id}\",\n");
        if id_of(opening.as_bytes()) != Some(id) || openings.contains(&opening) {
            return Ok(Spliced::Fallback);
        }
        openings.push(opening);
    }
    let mut found: Vec<(usize, &str)> = Vec::with_capacity(ids.len());
    for (i, e) in tasks.iter().chain(&verify).enumerate() {
        let raw = &bytes[e.span.0..e.span.1];
        if openings.iter().any(|o| raw.starts_with(o.as_bytes())) {
            let Some(raw) = text(e.span) else {
                return Ok(Spliced::Fallback);
            };
            found.push((i, raw));
            if found.len() == ids.len() {
                break;
            }
        }
    }
    if found.len() != ids.len() {
        return Ok(Spliced::Fallback);
    }
    let Ok(mut doc) = serde_json::from_str::<StatusDoc>(
        r#"{"planPath": "-", "planName": "-", "createdAt": "-", "tasks": []}"#,
    ) else {
        return Ok(Spliced::Fallback);
    };
    doc.plan_path = plan_path_rel.to_string();
    for (_, raw) in &found {
        let Ok(entry) = serde_json::from_str::<TaskEntry>(raw) else {
            return Ok(Spliced::Fallback);
        };
        doc.tasks.push(entry);
    }
    let before = doc.tasks.clone();
    let outcome = f(&mut doc)?;
    if doc.tasks.len() != before.len() {
        return Ok(Spliced::Fallback);
    }
    if doc.tasks == before {
        return Ok(Spliced::Done(None, outcome));
    }
    if doc.last_updated_at.is_none() {
        doc.last_updated_at = Some(super::model::timestamp(now));
    }
    // Each entry found, as `f` left it.
    let changed = |i: usize| {
        found
            .iter()
            .position(|(j, _)| *j == i)
            .map(|k| &doc.tasks[k])
    };

    // Derived fields over every entry, with the new status of this one.
    let mut sum = Summary::default();
    let mut unfinished: Option<(u32, usize, &[u8])> = None;
    let mut last: Option<(u32, usize, &[u8])> = None;
    // Neighbours mostly share their phase: its number is read again only when its text differs.
    let mut known: Option<(&[u8], (u32, u32))> = None;
    for (i, e) in tasks.iter().chain(&verify).enumerate() {
        let (status, phase) = if let Some(entry) = changed(i) {
            (entry.status, entry.phase.as_bytes())
        } else {
            let Some(s) = TaskStatus::from_bytes(&bytes[e.status.0..e.status.1]) else {
                return Ok(Spliced::Fallback);
            };
            (s, &bytes[e.phase.0..e.phase.1])
        };
        let (first_key, last_key) = match known {
            Some((k, keys)) if k == phase => keys,
            _ => {
                let Ok(p) = std::str::from_utf8(phase) else {
                    return Ok(Spliced::Fallback);
                };
                let n = phase_number(p);
                let keys = (n.unwrap_or(u32::MAX), n.unwrap_or(0));
                known = Some((phase, keys));
                keys
            }
        };
        if i < tasks.len() {
            sum.total_tasks += 1;
            match status {
                TaskStatus::Pending => sum.pending += 1,
                TaskStatus::InProgress => sum.in_progress += 1,
                TaskStatus::Completed => sum.completed += 1,
                TaskStatus::Failed => sum.failed += 1,
                TaskStatus::Skipped => sum.skipped += 1,
            }
        }
        if !status.is_finished() && unfinished.is_none_or(|(k, j, _)| (first_key, i) < (k, j)) {
            unfinished = Some((first_key, i, phase));
        }
        if last.is_none_or(|(k, j, _)| (last_key, i) >= (k, j)) {
            last = Some((last_key, i, phase));
        }
    }
    let Some(phase) = unfinished
        .or(last)
        .and_then(|(_, _, p)| std::str::from_utf8(p).ok())
    else {
        return Ok(Spliced::Fallback);
    };

    // The spans to replace, each checked to sit where orch's layout puts it: an entry is an
    // element of an array at depth 1 (opened at four spaces), the summary an object at depth 1.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let entries = found
        .iter()
        .zip(&doc.tasks)
        .zip(&before)
        .filter(|((_, entry), was)| entry != was)
        .map(|(((_, raw), entry), _)| (*raw, serde_json::to_string_pretty(entry).ok(), 2));
    for (raw, new, depth) in entries.chain([(summary, serde_json::to_string_pretty(&sum).ok(), 1)])
    {
        let Some(new) = new else {
            return Ok(Spliced::Fallback);
        };
        let start = offset(bytes, raw);
        let lead = format!("\n{}", "  ".repeat(depth));
        let ends_right = raw.ends_with(&format!("{lead}}}"));
        let starts_right = depth != 2 || bytes[..start].ends_with(lead.as_bytes());
        if !(ends_right && starts_right) {
            return Ok(Spliced::Fallback);
        }
        edits.push((start, start + raw.len(), indent(&new, depth)));
    }
    let Some(stamp) = doc.last_updated_at.as_deref() else {
        return Ok(Spliced::Fallback);
    };
    for (raw, new) in [(updated, json(stamp)), (current, json(phase))] {
        let start = offset(bytes, raw);
        edits.push((start, start + raw.len(), new));
    }
    edits.sort_by_key(|(s, _, _)| *s);
    if edits.windows(2).any(|w| w[1].0 < w[0].1) {
        return Ok(Spliced::Fallback);
    }
    Ok(Spliced::Done(Some(Edits { edits }), outcome))
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::status::test_support::{at, printed, small_plan};
    use crate::status::{RunInfo, plan_digest};

    /// Every transition on every entry, from every reachable status, spliced into the text,
    /// gives the bytes the whole document prints.
    #[test]
    fn splicing_writes_what_printing_the_whole_document_writes() {
        let plan = small_plan();
        let digest = plan_digest(b"plan text");
        let transitions = [
            Transition::Start,
            Transition::Done,
            Transition::Fail,
            Transition::Skip,
            Transition::Reset,
        ];
        let opts = TransitionOptions {
            force: true,
            note: Some("a \"quoted\" note\non two lines".into()),
            error: Some("boom".into()),
            reason: Some("not needed".into()),
            run: Some(RunInfo {
                pid: 42,
                ..RunInfo::default()
            }),
            commit: Some("c0ffee".into()),
        };
        let mut checked = 0;
        for first in transitions {
            for second in transitions {
                for id in ["1.1", "2.1", "2.2", "V1"] {
                    let mut doc = StatusDoc::new(&plan, "docs/plans/demo.md", "demo", at(0));
                    doc.orch_plan_digest = Some(digest.clone());
                    apply(&mut doc, id, first, &opts, at(1)).expect("first transition");
                    let before = printed(&doc);
                    let got = splice(
                        &before,
                        &digest,
                        "docs/plans/demo.md",
                        "demo",
                        id,
                        second,
                        &opts,
                        at(2),
                    )
                    .expect("splices");
                    let outcome = apply(&mut doc, id, second, &opts, at(2)).expect("applies");
                    match got {
                        Spliced::Done(Some(edits), o) => {
                            let text = edits.apply(&before);
                            assert_eq!(o, outcome);
                            assert_eq!(
                                String::from_utf8_lossy(&text),
                                String::from_utf8_lossy(&printed(&doc)),
                                "{id}: {first:?} then {second:?}"
                            );
                            checked += 1;
                        }
                        Spliced::Done(None, o) => {
                            assert_eq!(o, outcome);
                            assert_eq!(printed(&doc), before, "unchanged");
                        }
                        Spliced::Stale | Spliced::Fallback => {
                            panic!("{id}: {first:?} then {second:?} fell back")
                        }
                    }
                }
            }
        }
        assert!(checked > 50, "{checked}");
    }

    /// Several entries changed in one splice (a commit recorded with the next task's start)
    /// give the bytes the whole document prints; an entry asked for but left unchanged is not
    /// rewritten, and an id asked for twice or unknown takes the general path.
    #[test]
    fn several_entries_are_spliced_at_once() {
        let plan = small_plan();
        let digest = plan_digest(b"plan text");
        let mut doc = StatusDoc::new(&plan, "p.md", "demo", at(0));
        doc.orch_plan_digest = Some(digest.clone());
        let run = TransitionOptions {
            force: true,
            run: Some(RunInfo {
                pid: 7,
                ..RunInfo::default()
            }),
            ..TransitionOptions::default()
        };
        apply(&mut doc, "1.1", Transition::Start, &run, at(1)).expect("start");
        let before = printed(&doc);
        let done = TransitionOptions {
            force: true,
            commit: Some("c0ffee".into()),
            ..TransitionOptions::default()
        };
        let change = |d: &mut StatusDoc| -> Result<(), StatusError> {
            apply(d, "1.1", Transition::Done, &done, at(2))?;
            apply(d, "2.1", Transition::Start, &run, at(2))?;
            Ok(())
        };
        let ids = ["1.1", "1.2", "2.1"];
        let got =
            splice_with(&before, &digest, "p.md", "demo", &ids, at(2), change).expect("splices");
        change(&mut doc).expect("applies");
        let Spliced::Done(Some(edits), ()) = got else {
            panic!("not spliced")
        };
        assert_eq!(
            String::from_utf8_lossy(&edits.apply(&before)),
            String::from_utf8_lossy(&printed(&doc))
        );
        // Two entries and the derived fields; 1.2 is left as it was.
        assert_eq!(edits.edits.len(), 5, "{edits:?}");
        for ids in [&["1.1", "1.1"][..], &["1.1", "9.9"]] {
            let got = splice_with(&before, &digest, "p.md", "demo", ids, at(2), |_| Ok(()));
            assert!(matches!(got, Ok(Spliced::Fallback)), "{ids:?}");
        }
    }

    #[test]
    fn other_digests_and_layouts_are_left_to_the_general_path() {
        let plan = small_plan();
        let digest = plan_digest(b"plan text");
        let mut doc = StatusDoc::new(&plan, "p.md", "demo", at(0));
        let o = TransitionOptions::default();
        let run = |b: &[u8], d: &str, id: &str| {
            splice(b, d, "p.md", "demo", id, Transition::Done, &o, at(1)).expect("no error")
        };
        assert!(matches!(
            run(&printed(&doc), &digest, "1.1"),
            Spliced::Stale
        ));
        doc.orch_plan_digest = Some(digest.clone());
        assert!(matches!(
            run(&printed(&doc), "other", "1.1"),
            Spliced::Stale
        ));
        // Compact JSON: not orch's layout.
        let compact = serde_json::to_vec(&doc).expect("json");
        assert!(matches!(run(&compact, &digest, "1.1"), Spliced::Fallback));
        // An unknown task.
        assert!(matches!(
            run(&printed(&doc), &digest, "9.9"),
            Spliced::Fallback
        ));
        // Another plan path: the general path restamps it.
        let other = splice(
            &printed(&doc),
            &digest,
            "q.md",
            "demo",
            "1.1",
            Transition::Done,
            &o,
            at(1),
        )
        .expect("no error");
        assert!(matches!(other, Spliced::Fallback));
    }
}
