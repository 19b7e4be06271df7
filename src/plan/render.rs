//! The canonical markdown form of a [`Plan`]: what [`parse`](super::parse) reads back into the
//! same phases, tasks, bodies, verification steps and execution notes.
//!
//! Line numbers, diagnostics and the exact spelling of the source (bold-label variants, where a
//! note or VERIFY block sat) are not kept: the rendering is canonical, not a copy of the file.

use std::fmt::Write as _;

use super::model::{Plan, Task, TaskKind};

impl Plan {
    /// Renders the plan in orch's canonical markdown. For a plan without errors,
    /// `parse(render(plan))` has the same phases, tasks, bodies, verification steps and groups.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        // Always a title line: without one the title would become the file stem.
        let _ = writeln!(out, "{}\n", format!("# {}", self.title).trim_end());
        // Notes first: a task body ending in an unclosed fence swallows everything after it.
        for g in &self.sequential {
            note(&mut out, "Tasks", &g.label, "[SEQUENTIAL]", &g.reason);
        }
        for g in &self.parallel {
            note(&mut out, "Phases", &g.label, "[PARALLEL]", &g.reason);
        }
        if !self.sequential.is_empty() || !self.parallel.is_empty() {
            out.push('\n');
        }
        let mut next_phase = 0;
        for task in &self.tasks {
            match task.kind {
                TaskKind::Task => {
                    // Write headings up to the task's phase (phase numbers are unique in a
                    // plan without errors, and tasks follow their heading).
                    while next_phase < self.phases.len()
                        && (next_phase == 0 || self.phases[next_phase - 1].number != task.phase)
                    {
                        self.heading(&mut out, next_phase);
                        next_phase += 1;
                    }
                    render_task(&mut out, task);
                }
                TaskKind::Verify => render_verify(&mut out, task),
            }
        }
        while next_phase < self.phases.len() {
            self.heading(&mut out, next_phase);
            next_phase += 1;
        }
        out
    }

    fn heading(&self, out: &mut String, index: usize) {
        let phase = &self.phases[index];
        if let Some(ps) = &phase.pipeline_start {
            let _ = writeln!(out, "**pipeline-start:** when {} completes", ps.trigger);
        }
        if phase.title.is_empty() {
            let _ = writeln!(out, "## Phase {}:\n", phase.number);
        } else {
            let _ = writeln!(out, "## Phase {}: {}\n", phase.number, phase.title);
        }
    }
}

fn note(out: &mut String, word: &str, label: &str, marker: &str, reason: &str) {
    let _ = write!(out, "**Execution Note:** {word} {label} are {marker}");
    if !reason.is_empty() {
        let _ = write!(out, " - {reason}");
    }
    out.push('\n');
}

fn render_task(out: &mut String, task: &Task) {
    let mark = if task.done { 'x' } else { ' ' };
    if task.description.is_empty() {
        let _ = writeln!(out, "- [{mark}] {}", task.id);
    } else {
        let _ = writeln!(out, "- [{mark}] {} {}", task.id, task.description);
    }
    indented(out, &task.body, "  ");
}

/// A verification step's body is its criteria, `- [ ] text` / `- [x] text`, one per line, with
/// continuation lines of multi-line criteria after them. Written indented so that a criterion
/// reading like a task line (`- [ ] 1.2 …`) stays a criterion.
fn render_verify(out: &mut String, task: &Task) {
    let blocking = if task.blocking { "" } else { " (non-blocking)" };
    let _ = writeln!(out, "**VERIFY Phase {}:**{blocking}", task.phase);
    for line in task.body.lines() {
        let indent = if line.starts_with("- [") {
            "  "
        } else {
            "    "
        };
        let _ = writeln!(out, "{indent}{line}");
    }
    out.push('\n');
}

fn indented(out: &mut String, body: &str, prefix: &str) {
    if body.is_empty() {
        return;
    }
    for line in body.split('\n') {
        if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{prefix}{line}");
        }
    }
}
