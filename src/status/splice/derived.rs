//! The derived fields of a spliced file, `summary` and `currentPhase`, as the whole document
//! would print them ([`crate::status::summary`]).
//!
//! A file in orch's layout says them of itself: they are what orch computed at its last write.
//! So a change of a few entries updates them from those entries alone ([`incremental`]): the
//! counts move by the statuses changed, and the current phase stays unless a changed entry
//! can move it. Only when that cannot be told from the entries changed and their neighbours
//! (the last unfinished entry of the current phase finished, everything was finished, a phase
//! without a number) is every entry read ([`skimmed`]). Phase numbers are unique in a plan
//! (a duplicate is a parse error, and the file follows the plan's digest), so an entry is in
//! the current phase exactly when its phase label is the current one.

use super::Change;
use crate::status::layout::{
    EntryAt, after_entry, entries_with_fields, entry_before, entry_fields_at,
};
use crate::status::model::{Summary, TaskStatus, phase_number};

/// The derived fields after `changes`, from the file's own `summary` and `currentPhase`
/// (`summary` and `current`: their JSON text) and the changed entries; `None` when they
/// cannot tell and every entry must be read. `open` is where the `tasks` entries open.
pub(super) fn incremental(
    bytes: &[u8],
    open: usize,
    summary: &str,
    current: &str,
    changes: &[Change<'_>],
) -> Option<(Summary, String)> {
    let mut sum: Summary = serde_json::from_str(summary).ok()?;
    let cur: String = serde_json::from_str(current).ok()?;
    let parts = |s: &Summary| s.completed + s.pending + s.failed + s.skipped + s.in_progress;
    // The counts as orch writes them add up; the current phase is the first unfinished one
    // only while a task is unfinished (when all are, it is the last phase: read them all).
    if parts(&sum) != sum.total_tasks || sum.pending + sum.in_progress + sum.failed == 0 {
        return None;
    }
    let cur_n = phase_number(&cur)?;
    // An entry of an earlier phase that is unfinished now: the first (by phase, then file
    // order) becomes the current phase.
    let mut earlier: Option<(u32, usize, &str)> = None;
    // The current phase may be over: an entry of it finished.
    let mut finished_here: Option<usize> = None;
    for c in changes {
        if c.in_tasks {
            let was = sum.count_mut(c.was);
            *was = was.checked_sub(1)?;
            *sum.count_mut(c.now) += 1;
        }
        if c.was.is_finished() == c.now.is_finished() {
            continue;
        }
        let n = phase_number(c.phase)?;
        if n > cur_n {
            // The current phase has an unfinished entry before and after.
            continue;
        }
        if n == cur_n && c.phase != cur {
            return None;
        }
        match (n == cur_n, c.now.is_finished()) {
            (true, true) => finished_here = finished_here.or(Some(c.at)),
            (true, false) => {}
            (false, false) => {
                if earlier.is_none_or(|(m, at, _)| (n, c.at) < (m, at)) {
                    earlier = Some((n, c.at, c.phase));
                }
            }
            // An entry of an earlier phase was unfinished: the file's current phase is not
            // what it says.
            (false, true) => return None,
        }
    }
    #[cfg(test)]
    INCREMENTAL.with(|n| n.set(n.get() + 1));
    if let Some((_, _, phase)) = earlier {
        return Some((sum, phase.to_string()));
    }
    if let Some(at) = finished_here {
        // Still the current phase if another of its entries is unfinished: its tasks are
        // neighbours in the file (a plan lists a phase's tasks together), looked for on both
        // sides of the one that finished. None found: read every entry.
        let status_of = |e: &EntryAt| match changes.iter().find(|c| c.at == e.span.0) {
            Some(c) => Some(c.now),
            None => TaskStatus::from_bytes(&bytes[e.status.0..e.status.1]),
        };
        let here = |e: &EntryAt| &bytes[e.phase.0..e.phase.1] == cur.as_bytes();
        let mut unfinished = false;
        // After it: while the entries are of the current phase.
        let mut e = entry_fields_at(bytes, at - 5)?;
        while let Some(Some(next)) = after_entry(bytes, e.span.1) {
            e = entry_fields_at(bytes, next)?;
            if !here(&e) {
                break;
            }
            if !status_of(&e)?.is_finished() {
                unfinished = true;
                break;
            }
        }
        // Before it.
        let mut start = at;
        while !unfinished && let Some(prev) = entry_before(bytes, open, start) {
            let e = entry_fields_at(bytes, prev)?;
            if !here(&e) {
                break;
            }
            if !status_of(&e)?.is_finished() {
                unfinished = true;
            }
            start = e.span.0;
        }
        if !unfinished {
            #[cfg(test)]
            INCREMENTAL.with(|n| n.set(n.get() - 1));
            return None;
        }
    }
    Some((sum, cur))
}

/// The derived fields over every entry (tasks, then VERIFY steps), with the changed entries'
/// new statuses; `None` when an entry is not in the layout.
pub(super) fn skimmed(bytes: &[u8], changes: &[Change<'_>]) -> Option<(Summary, String)> {
    let (tasks, tasks_end) = entries_with_fields(bytes, 0, "tasks")?;
    // orch always writes `verifySteps`; a file without it has none.
    let verify = match crate::status::layout::array_start(&bytes[tasks_end..], "verifySteps") {
        None => Vec::new(),
        Some(_) => entries_with_fields(bytes, tasks_end, "verifySteps")?.0,
    };
    let mut sum = Summary::default();
    let mut unfinished: Option<(u32, usize, &[u8])> = None;
    let mut last: Option<(u32, usize, &[u8])> = None;
    // Neighbours mostly share their phase: its number is read again only when its text differs.
    let mut known: Option<(&[u8], (u32, u32))> = None;
    for (i, e) in tasks.iter().chain(&verify).enumerate() {
        let (status, phase) = match changes.iter().find(|c| c.at == e.span.0) {
            Some(c) => (c.now, c.phase.as_bytes()),
            None => (
                TaskStatus::from_bytes(&bytes[e.status.0..e.status.1])?,
                &bytes[e.phase.0..e.phase.1],
            ),
        };
        let (first_key, last_key) = match known {
            Some((k, keys)) if k == phase => keys,
            _ => {
                let n = phase_number(std::str::from_utf8(phase).ok()?);
                let keys = (n.unwrap_or(u32::MAX), n.unwrap_or(0));
                known = Some((phase, keys));
                keys
            }
        };
        if i < tasks.len() {
            sum.total_tasks += 1;
            *sum.count_mut(status) += 1;
        }
        if !status.is_finished() && unfinished.is_none_or(|(k, j, _)| (first_key, i) < (k, j)) {
            unfinished = Some((first_key, i, phase));
        }
        if last.is_none_or(|(k, j, _)| (last_key, i) >= (k, j)) {
            last = Some((last_key, i, phase));
        }
    }
    let (_, _, phase) = unfinished.or(last)?;
    Some((sum, std::str::from_utf8(phase).ok()?.to_string()))
}

#[cfg(test)]
thread_local! {
    /// Splices whose derived fields came from [`incremental`] (the tests' view).
    pub(super) static INCREMENTAL: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}
