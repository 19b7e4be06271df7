//! A task's record found changed in its status file by the loop's re-read: whether orch keeps
//! the change, as a pure function of the facts `effects/reread.rs` gathers (the record before
//! and after, what orch itself recorded and has not read back yet). A task is completed,
//! skipped or given a commit only by orch itself (a report it applied, a commit it made); such
//! a change that orch did not make is refused and orch's record is written back. Anything
//! else (a start, a failure, `orch retry`/`orch stop`, usage) is kept. An unknown fact counts
//! as "not orch's" (fail closed).

use crate::status::TaskStatus;
use crate::supervisor::state::TaskFacts;

/// What orch itself recorded of one task and has not read back from the file yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct OwnRecord {
    /// The task belongs to a plan of this run (outside one, nothing is orch's to keep).
    pub(crate) in_run: bool,
    /// orch recorded it completed, skipped or committed (`PlanCtx::own_finished`).
    pub(crate) finished: bool,
    /// The commit orch made for it, not read back yet (`PlanCtx::unrecorded_commit`).
    pub(crate) commit: Option<String>,
}

/// The verdict on a task's changed record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// Kept: not a finish or a commit, or outside the run.
    Kept,
    /// Kept: orch's own finish or commit, now read back (its mark is taken).
    Own,
    /// A finish or a commit orch did not make: refused, orch's record written back.
    Refused,
}

/// The verdict on task record `new`, read after `old`, given what orch recorded itself.
pub(crate) fn judge(old: &TaskFacts, new: &TaskFacts, own: &OwnRecord) -> Change {
    let finished = matches!(new.status, TaskStatus::Completed | TaskStatus::Skipped)
        && new.status != old.status;
    let committed = new.commit.is_some() && new.commit != old.commit;
    if !(finished || committed) || !own.in_run {
        return Change::Kept;
    }
    if own.finished || (new.commit.is_some() && own.commit == new.commit) {
        Change::Own
    } else {
        Change::Refused
    }
}

#[cfg(test)]
mod tests {
    use super::{Change, OwnRecord, judge};
    use crate::status::TaskStatus;
    use crate::supervisor::state::TaskFacts;

    fn facts(status: TaskStatus, commit: Option<&str>) -> TaskFacts {
        TaskFacts {
            status,
            commit: commit.map(str::to_string),
            ..TaskFacts::default()
        }
    }

    fn own(in_run: bool, finished: bool, commit: Option<&str>) -> OwnRecord {
        OwnRecord {
            in_run,
            finished,
            commit: commit.map(str::to_string),
        }
    }

    #[test]
    fn a_finish_or_commit_is_kept_only_when_orch_recorded_it() {
        use TaskStatus::{Completed, Failed, InProgress, Pending, Skipped};
        let running = facts(InProgress, None);
        let done = facts(Completed, None);
        let done_c1 = facts(Completed, Some("c1"));
        let none = own(true, false, None);
        let cases = [
            // Not a finish nor a commit: kept whoever made it.
            (&running, &facts(Failed, None), &none, Change::Kept),
            (&facts(Pending, None), &running, &none, Change::Kept),
            (&done, &facts(Pending, None), &none, Change::Kept),
            (&done, &done, &none, Change::Kept),
            // A finish outside a run's plan: kept.
            (&running, &done, &own(false, false, None), Change::Kept),
            // orch's own finish (a report it applied), its own commit.
            (&running, &done, &own(true, true, None), Change::Own),
            (
                &running,
                &facts(Skipped, None),
                &own(true, true, None),
                Change::Own,
            ),
            (
                &running,
                &done_c1,
                &own(true, false, Some("c1")),
                Change::Own,
            ),
            (&done, &done_c1, &own(true, false, Some("c1")), Change::Own),
            // Fail closed: a finish, a skip or a commit orch did not record is refused.
            (&running, &done, &none, Change::Refused),
            (&running, &facts(Skipped, None), &none, Change::Refused),
            (&done, &done_c1, &none, Change::Refused),
            (
                &running,
                &done_c1,
                &own(true, false, Some("c2")),
                Change::Refused,
            ),
            (
                &done_c1,
                &facts(Completed, Some("c2")),
                &own(true, false, Some("c1")),
                Change::Refused,
            ),
        ];
        for (i, (old, new, own, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                judge(old, new, own),
                want,
                "case {i}: {old:?} -> {new:?}, {own:?}"
            );
        }
    }
}
