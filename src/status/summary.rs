//! Derived fields: `summary` and `currentPhase`.

use super::model::{StatusDoc, Summary, TaskEntry, TaskStatus, phase_number};

impl Summary {
    /// The count of entries in `status`.
    pub(crate) fn count_mut(&mut self, status: TaskStatus) -> &mut u32 {
        match status {
            TaskStatus::Pending => &mut self.pending,
            TaskStatus::InProgress => &mut self.in_progress,
            TaskStatus::Completed => &mut self.completed,
            TaskStatus::Failed => &mut self.failed,
            TaskStatus::Skipped => &mut self.skipped,
            TaskStatus::NeedsInput => &mut self.needs_input,
        }
    }
}

fn count<'a>(entries: impl Iterator<Item = &'a TaskEntry>) -> Summary {
    let mut s = Summary::default();
    for e in entries {
        s.total_tasks += 1;
        *s.count_mut(e.status) += 1;
    }
    s
}

/// Whether a task's entry (of the `tasks` array: a verification step is never committed) is
/// done by its agent's word but not yet by orch's: while an `orch up` runs its plan, its check
/// and commit are still to come (a task's commit is recorded once its check passed). The views
/// show it running (`checking`), not done, while a run is live; without one, a task completed
/// by `orch task done` needs no commit.
pub(crate) fn checking(e: &TaskEntry) -> bool {
    e.status == TaskStatus::Completed && e.commit.is_none()
}

/// The views' counts (tasks and verification steps together), with the tasks that are
/// [`checking`] while a run is `live` counted in progress; and how many are.
pub(crate) fn shown_counts(doc: &StatusDoc, live: bool) -> (Summary, u32) {
    let mut s = Summary::default();
    let mut n = 0;
    for e in &doc.tasks {
        s.total_tasks += 1;
        let c = live && checking(e);
        n += u32::from(c);
        *s.count_mut(if c { TaskStatus::InProgress } else { e.status }) += 1;
    }
    for e in &doc.verify_steps {
        s.total_tasks += 1;
        *s.count_mut(e.status) += 1;
    }
    (s, n)
}

/// The schema's `summary`: counts over the `tasks` array only, as the earlier system counted.
pub(crate) fn summarize(doc: &StatusDoc) -> Summary {
    count(doc.tasks.iter())
}

/// orch's own counts: tasks and verification steps together.
#[cfg(test)]
pub(crate) fn counts_all(doc: &StatusDoc) -> Summary {
    count(doc.entries())
}

/// The label of the first phase (by number) with an unfinished task or verification step;
/// the last phase's label when everything is finished; `None` for an empty plan.
pub(crate) fn current_phase(doc: &StatusDoc) -> Option<String> {
    let key = |e: &TaskEntry| phase_number(&e.phase).unwrap_or(u32::MAX);
    let unfinished = doc
        .tasks
        .iter()
        .chain(doc.verify_steps.iter())
        .enumerate()
        .filter(|(_, e)| !e.status.is_finished())
        .min_by_key(|(i, e)| (key(e), *i))
        .map(|(_, e)| e.phase.clone());
    unfinished.or_else(|| {
        doc.tasks
            .iter()
            .chain(doc.verify_steps.iter())
            .enumerate()
            .max_by_key(|(i, e)| (phase_number(&e.phase).unwrap_or(0), *i))
            .map(|(_, e)| e.phase.clone())
    })
}

/// Recomputes `summary` and `currentPhase` from the entries.
pub fn refresh_derived(doc: &mut StatusDoc) {
    doc.summary = summarize(doc);
    doc.current_phase = current_phase(doc);
}
