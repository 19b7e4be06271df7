//! A person's messages to a task (`orch say`, the task's `orchMessages`): written on the stdin
//! of its running attempt where its agent reads them (`input = "lines"` or `"stream-json"`)
//! and its stdin is still open, else kept for its next attempt, whose prompt holds them.

use super::{Action, Core};
use crate::supervisor::state::{RunId, Stage, TaskFacts, TaskRun};

impl Core {
    /// Attempt `run`'s agent ended its first turn: its stdin is closed, and messages said from
    /// now on are kept for the next attempt.
    pub(super) fn on_turn_ended(&mut self, run: RunId, out: &mut Vec<Action>) {
        if let Some(rr) = self.state.runs.get_mut(&run)
            && !rr.input_closed
        {
            rr.input_closed = true;
            out.push(Action::CloseInput { run });
        }
    }

    /// Task `t` of plan `p` has a new record (`old` was the one before): messages said since
    /// are delivered to its running attempt, or kept. Called after a stop or a restart in the
    /// same record was acted on (an attempt being stopped gets nothing).
    pub(super) fn on_told(&mut self, p: usize, t: usize, old: &TaskFacts, out: &mut Vec<Action>) {
        let Some(rec) = self.state.tasks.get(p).and_then(|v| v.get(t)) else {
            return;
        };
        let (from, to) = (old.messages, rec.facts.messages);
        if to <= from {
            return;
        }
        let reads = self.spec(p).is_some_and(|s| s.input_lines);
        let run = match rec.run {
            TaskRun::Attempt(run) if reads => self
                .state
                .runs
                .get(&run)
                .filter(|rr| rr.stage == Stage::Running && !rr.input_closed)
                .map(|rr| (run, rr.attempt)),
            _ => None,
        };
        out.push(Action::Tell {
            plan: p,
            task: t,
            run,
            from,
            to,
        });
    }
}
