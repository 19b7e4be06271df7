//! VERIFY blocks: markers (`**VERIFY Phase N:**`, `- [ ] **VERIFY N**: …`), their criteria, and
//! the verification steps they become, placed in file order among the tasks.

use super::files::extract_files;
use super::lines::{checkbox, verify_marker_rest};
use super::{Collect, Parser, VerifyDraft};
use crate::plan::model::{Priority, Task, TaskKind, verify_id};

impl<'t> Parser<'t> {
    pub(super) fn bold_verify(&mut self, n: usize, rest: &str) {
        // rest is what follows `**VERIFY`: ` Phase 2:** (non-blocking) text` or ` 2:** text`.
        let Some((phase, after)) = verify_marker_rest(rest) else {
            return;
        };
        let mut text = after.trim();
        let mut blocking = true;
        if let Some(t) = text.strip_prefix("(non-blocking)") {
            blocking = false;
            text = t.trim();
        }
        let inline = (!text.is_empty()).then_some((false, text));
        self.verify_marker(n, phase, blocking, inline);
        self.collect = Collect::Verify;
    }

    pub(super) fn verify_marker(
        &mut self,
        n: usize,
        phase: u32,
        blocking: bool,
        criterion: Option<(bool, &str)>,
    ) {
        let idx = match self.verifies.iter().position(|v| v.phase == phase) {
            Some(i) => {
                // Markers for the same phase add to one step; keep it last in the list so
                // criteria collection below appends to it.
                let v = self.verifies.remove(i);
                self.verifies.push(v);
                self.verifies.len() - 1
            }
            None => {
                // The step's place among the tasks, held by a placeholder until the end.
                self.verifies.push(VerifyDraft {
                    phase,
                    line: n,
                    blocking,
                    criteria: Vec::new(),
                    id_tasks: 0,
                    position: self.tasks.len(),
                });
                self.tasks.push(placeholder());
                self.bodies.push(None);
                self.verifies.len() - 1
            }
        };
        let v = &mut self.verifies[idx];
        v.blocking &= blocking;
        if let Some((done, text)) = criterion {
            v.criteria.push((done, text.to_string()));
        }
    }

    pub(super) fn criterion(&mut self, item: &str) {
        if let Some(v) = self.verifies.last_mut() {
            let (done, text) = match item.strip_prefix('[').and_then(checkbox) {
                Some((done, text)) => (done, text.trim()),
                None => (false, item.trim()),
            };
            if !text.is_empty() {
                v.criteria.push((done, text.to_string()));
            }
        }
    }

    pub(super) fn criterion_text(&mut self, text: &str) {
        if let Some(v) = self.verifies.last_mut() {
            match v.criteria.last_mut() {
                Some((_, last)) => {
                    last.push('\n');
                    last.push_str(text);
                }
                None => v.criteria.push((false, text.to_string())),
            }
        }
    }

    pub(super) fn insert_verify_steps(&mut self) {
        let mut drafts = std::mem::take(&mut self.verifies);
        // Steps at one position keep the file order of their first marker (`line`), or two
        // VERIFY blocks with no task between them would swap.
        drafts.sort_by_key(|v| (v.position, v.line));
        let (drafted, mut made) = (drafts.len(), 0);
        for v in drafts {
            if self.phases.iter().all(|p| p.number != v.phase) {
                self.warn(
                    v.line,
                    format!(
                        "VERIFY names phase {}, which does not exist; it is ignored",
                        v.phase
                    ),
                );
                continue;
            }
            if v.criteria.is_empty() && v.id_tasks > 0 {
                continue;
            }
            if v.criteria.is_empty() {
                self.warn(
                    v.line,
                    format!(
                        "VERIFY for phase {} lists no criteria; no verification step is made",
                        v.phase
                    ),
                )
                .hint = Some("list the criteria as bullets under the VERIFY line".into());
                continue;
            }
            let body = v
                .criteria
                .iter()
                .map(|(done, c)| format!("- [{}] {c}", if *done { "x" } else { " " }))
                .collect::<Vec<_>>()
                .join("\n");
            let description = v.criteria[0]
                .1
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            let task = Task {
                id: verify_id(v.phase),
                kind: TaskKind::Verify,
                phase: v.phase,
                description,
                files: extract_files(&body),
                body,
                done: v.criteria.iter().all(|(d, _)| *d),
                depends: None,
                priority: Priority::Normal,
                estimate_s: None,
                line: v.line,
                blocking: v.blocking,
                speckit: None,
            };
            self.tasks[v.position] = task;
            made += 1;
        }
        // The placeholders of the blocks that made no step (each with a warning) go.
        if made < drafted {
            self.tasks.retain(|t| !t.id.is_empty());
        }
    }
}

/// What holds a verification step's place among the tasks while the file is read: a task
/// without an id (no task has one).
pub(super) fn placeholder() -> Task {
    Task {
        kind: TaskKind::Verify,
        blocking: true,
        ..Task::default()
    }
}
