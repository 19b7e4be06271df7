//! Recording one task's outcome without reading the whole document into memory and printing it
//! again: in a file orch wrote (it carries a current `orchPlanDigest`), only the task's entry,
//! `lastUpdatedAt`, `summary` and `currentPhase` change, so only those spans of the text are
//! replaced, each printed exactly as the whole document would print it. The text is read by its
//! structure alone ([`super::layout`]): each changed entry is found by a search for its opening
//! line, no value but the changed entries is parsed, and `summary` and `currentPhase` follow
//! from the file's own values and the changed entries ([`derived`]), so a record costs about
//! one vector search through the file whatever its size. Anything unexpected (another layout, a
//! missing key, an escaped phase label) falls back to the general path.

use chrono::{DateTime, Utc};
use memchr::memmem;

use super::error::StatusError;
use super::layout::{
    array_end, array_start, entry_at, framed, id_of, tasks_end, top_field, top_field_from,
};
use super::model::{ORCH_SCHEMA_VERSION, StatusDoc, TaskEntry, TaskStatus};
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
    splice_digest(bytes, digest, false, plan_path_rel, orch_name, ids, now, f)
}

/// [`splice_with`] for a document known to follow the plan whose digest is `digest` (reconciling
/// it would change nothing) whatever its `orchPlanDigest` says: the text then records `digest`
/// there too, as the whole document would print it (never [`Spliced::Stale`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn splice_recording<T>(
    bytes: &[u8],
    digest: &str,
    plan_path_rel: &str,
    orch_name: &str,
    ids: &[&str],
    now: DateTime<Utc>,
    f: impl FnOnce(&mut StatusDoc) -> Result<T, StatusError>,
) -> Result<Spliced<T>, StatusError> {
    splice_digest(bytes, digest, true, plan_path_rel, orch_name, ids, now, f)
}

/// [`splice_with`], or [`splice_recording`] when `record`.
#[allow(clippy::too_many_arguments)]
fn splice_digest<T>(
    bytes: &[u8],
    digest: &str,
    record: bool,
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
    // for from where it must be: no entry is read but those changed.
    let Some(open) = array_start(bytes, "tasks") else {
        return Ok(Spliced::Fallback);
    };
    let Some(tasks_end) = tasks_end(bytes, open) else {
        return Ok(Spliced::Fallback);
    };
    let head = &bytes[..open];
    // Only the spans read are checked to be UTF-8, not the whole (large) text.
    let text = |(s, e): (usize, usize)| std::str::from_utf8(&bytes[s..e]).ok();
    let before = |k: &str| top_field(head, k).and_then(text);
    let after = |k: &str| top_field_from(bytes, tasks_end, k).and_then(text);
    let json = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let recorded = top_field_from(bytes, tasks_end, "orchPlanDigest");
    let current = recorded.and_then(text) == Some(json(digest).as_str());
    if !current && !record {
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
    let verify = match array_start(&bytes[tasks_end..], "verifySteps") {
        None => None,
        Some(at) => match array_end(bytes, tasks_end + at) {
            Some(end) => Some((tasks_end + at, end)),
            None => return Ok(Spliced::Fallback),
        },
    };
    // The digest to record: right after `verifySteps`, where orch prints it (in place of the
    // one recorded there).
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    if !current {
        const KEY: &[u8] = b",\n  \"orchPlanDigest\": ";
        match (recorded, verify) {
            (Some((s, e)), Some((_, end))) if bytes.get(end..s) == Some(KEY) => {
                edits.push((s, e, json(digest)));
            }
            (None, Some((_, end))) => edits.push((
                end,
                end,
                format!("{}{}", String::from_utf8_lossy(KEY), json(digest)),
            )),
            _ => return Ok(Spliced::Fallback),
        }
    }
    let (Some(updated), Some(current), Some(summary)) = (
        before("lastUpdatedAt"),
        before("currentPhase"),
        after("summary"),
    ) else {
        return Ok(Spliced::Fallback);
    };
    // The entries, by the line they open with (an id with characters JSON escapes is not looked
    // for: the layout's ids have none): the first in file order, tasks before VERIFY steps.
    let mut found: Vec<(usize, &str)> = Vec::with_capacity(ids.len());
    for id in ids {
        let opening = format!("\n    {{\n      \"id\": \"{id}\",\n");
        if id_of(&opening.as_bytes()[5..]) != Some(id) {
            return Ok(Spliced::Fallback);
        }
        let finder = memmem::Finder::new(opening.as_bytes());
        let at = [(open, tasks_end), verify.unwrap_or((0, 0))]
            .into_iter()
            .find_map(|(s, e)| finder.find(&bytes[s..e]).map(|at| s + at));
        // An entry opens after its array's `[` or the previous entry's `,`.
        let Some(span) = at
            .filter(|&at| matches!(bytes[at - 1], b'[' | b','))
            .and_then(|at| entry_at(bytes, at))
        else {
            return Ok(Spliced::Fallback);
        };
        let Some(raw) = text(span) else {
            return Ok(Spliced::Fallback);
        };
        if found.iter().any(|(s, _)| *s == span.0) {
            return Ok(Spliced::Fallback);
        }
        found.push((span.0, raw));
    }
    found.sort_by_key(|(s, _)| *s);
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
        let edits = (!edits.is_empty()).then_some(Edits { edits });
        return Ok(Spliced::Done(edits, outcome));
    }
    if doc.last_updated_at.is_none() {
        doc.last_updated_at = Some(super::model::timestamp(now));
    }

    // The derived fields, from what the file says of itself and the entries changed; read
    // over every entry only when that cannot tell.
    let changes: Vec<Change> = found
        .iter()
        .zip(&doc.tasks)
        .zip(&before)
        .map(|(((at, _), now), was)| Change {
            at: *at,
            in_tasks: *at < tasks_end,
            was: was.status,
            now: now.status,
            phase: &now.phase,
        })
        .collect();
    let derived = derived::incremental(bytes, open, summary, current, &changes)
        .or_else(|| derived::skimmed(bytes, &changes));
    let Some((sum, phase)) = derived else {
        return Ok(Spliced::Fallback);
    };

    // The spans to replace, each checked to sit where orch's layout puts it: an entry is an
    // element of an array at depth 1 (opened at four spaces), the summary an object at depth 1.
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
    for (raw, new) in [(updated, json(stamp)), (current, json(&phase))] {
        let start = offset(bytes, raw);
        edits.push((start, start + raw.len(), new));
    }
    edits.sort_by_key(|(s, _, _)| *s);
    if edits.windows(2).any(|w| w[1].0 < w[0].1) {
        return Ok(Spliced::Fallback);
    }
    Ok(Spliced::Done(Some(Edits { edits }), outcome))
}

mod derived;
#[cfg(test)]
mod tests;

/// An entry changed by a splice: where its text starts, whether it is a task (not a VERIFY
/// step), and its status before and after.
pub(crate) struct Change<'a> {
    at: usize,
    in_tasks: bool,
    was: TaskStatus,
    now: TaskStatus,
    phase: &'a str,
}
