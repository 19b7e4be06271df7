//! Execution notes (`[SEQUENTIAL]` task groups, `[PARALLEL]` phase groups) and pipeline starts,
//! resolved against the parsed phases and tasks.

use super::task_line::{split_list, split_range};
use super::{NoteDraft, Parser};
use crate::diagnostic::Diagnostic;
use crate::plan::model::{ParallelGroup, SequentialGroup, TaskKind, id_parts};

impl<'t> Parser<'t> {
    pub(super) fn execution_note(&mut self, n: usize, rest: &str) {
        let (sequential, marker) = if rest.contains("[SEQUENTIAL]") {
            (true, "[SEQUENTIAL]")
        } else if rest.contains("[PARALLEL]") {
            (false, "[PARALLEL]")
        } else {
            return; // prose, e.g. "Phase 1 must be implemented FIRST"
        };
        let Some(pos) = rest.find(marker) else {
            return;
        };
        let before = rest[..pos].trim();
        let reason = rest[pos + marker.len()..]
            .trim()
            .trim_start_matches(['-', '—', '–', ':'])
            .trim()
            .to_string();
        let word = if sequential { "Task" } else { "Phase" };
        let expr = before
            .strip_suffix("are")
            .or_else(|| before.strip_suffix("is"))
            .unwrap_or(before)
            .trim();
        let expr = expr
            .strip_prefix(&format!("{word}s"))
            .or_else(|| expr.strip_prefix(word))
            .map(str::trim);
        match expr {
            Some(expr) if !expr.is_empty() => self.notes.push(NoteDraft {
                sequential,
                expr: expr.to_string(),
                reason,
                line: n,
            }),
            _ => {
                let example = if sequential {
                    "**Execution Note:** Tasks 2.1-2.4 are [SEQUENTIAL] - reason"
                } else {
                    "**Execution Note:** Phases 2-3 are [PARALLEL] - reason"
                };
                self.error(
                    n,
                    format!(
                        "execution note with `{marker}` names no {}s",
                        word.to_lowercase()
                    ),
                )
                .hint = Some(format!("write it as `{example}`"));
            }
        }
    }

    pub(super) fn resolve_sequential(&mut self) -> Vec<SequentialGroup> {
        let notes: Vec<NoteDraft> = self
            .notes
            .iter()
            .filter(|n| n.sequential)
            .cloned()
            .collect();
        if notes.is_empty() {
            return Vec::new();
        }
        // Ids parsed once: notes are matched against every task.
        let parts: Vec<Option<Vec<u32>>> = self
            .tasks
            .iter()
            .map(|t| {
                (t.kind == TaskKind::Task)
                    .then(|| id_parts(&t.id))
                    .flatten()
            })
            .collect();
        let known: std::collections::HashSet<&str> =
            self.tasks.iter().map(|t| t.id.as_str()).collect();
        let mut found = Vec::new();
        let mut groups = Vec::new();
        for note in notes {
            let mut members: std::collections::BTreeSet<usize> = Default::default();
            let mut ok = true;
            for item in split_list(&note.expr) {
                let (a, b) = split_range(item);
                let (Some(lo), Some(hi)) = (id_parts(a), id_parts(b)) else {
                    found.push(Diagnostic::error(
                        &self.path,
                        note.line,
                        format!("execution note: `{item}` is not a task id or range of ids"),
                    ));
                    ok = false;
                    continue;
                };
                let ends: &[&str] = if a == b { &[a] } else { &[a, b] };
                for &end in ends {
                    if !known.contains(end) {
                        found.push(Diagnostic::error(
                            &self.path,
                            note.line,
                            format!("execution note names task `{end}`, which does not exist"),
                        ));
                        ok = false;
                    }
                }
                for (i, p) in parts.iter().enumerate() {
                    if let Some(p) = p
                        && *p >= lo
                        && *p <= hi
                    {
                        members.insert(i);
                    }
                }
            }
            if ok && !members.is_empty() {
                groups.push(SequentialGroup {
                    label: note.expr,
                    tasks: members.iter().map(|&i| self.tasks[i].id.clone()).collect(),
                    reason: note.reason,
                    line: note.line,
                });
            }
        }
        self.diagnostics.extend(found);
        groups
    }

    pub(super) fn resolve_parallel(&mut self) -> Vec<ParallelGroup> {
        let notes: Vec<NoteDraft> = self
            .notes
            .iter()
            .filter(|n| !n.sequential)
            .cloned()
            .collect();
        let mut groups = Vec::new();
        for NoteDraft {
            expr, reason, line, ..
        } in notes
        {
            let mut numbers: Vec<u32> = Vec::new();
            let mut ok = true;
            for item in split_list(&expr) {
                let item = item.trim_start_matches("Phase").trim();
                let (a, b) = split_range(item);
                match (a.parse::<u32>(), b.parse::<u32>()) {
                    (Ok(a), Ok(b)) if a <= b => {
                        for end in [a, b] {
                            if self.phases.iter().all(|p| p.number != end) {
                                self.error(
                                    line,
                                    format!(
                                        "execution note names phase {end}, which does not exist"
                                    ),
                                );
                                ok = false;
                            }
                        }
                        for p in &self.phases {
                            if (a..=b).contains(&p.number) && !numbers.contains(&p.number) {
                                numbers.push(p.number);
                            }
                        }
                    }
                    _ => {
                        self.error(
                            line,
                            format!("execution note: `{item}` is not a phase number or range"),
                        );
                        ok = false;
                    }
                }
            }
            if !ok || numbers.is_empty() {
                continue;
            }
            let positions: Vec<usize> = self
                .phases
                .iter()
                .enumerate()
                .filter(|(_, p)| numbers.contains(&p.number))
                .map(|(i, _)| i)
                .collect();
            let contiguous = positions.windows(2).all(|w| w[1] == w[0] + 1);
            if !contiguous {
                self.error(
                    line,
                    format!("[PARALLEL] phases `{expr}` are not next to each other in the file"),
                )
                .hint = Some("only consecutive phases can share a barrier".into());
                continue;
            }
            numbers.sort_by_key(|n| self.phases.iter().position(|p| p.number == *n));
            groups.push(ParallelGroup {
                label: expr,
                phases: numbers,
                reason,
                line,
            });
        }
        groups
    }

    pub(super) fn check_pipeline(&mut self) {
        let mut found = Vec::new();
        for phase in &self.phases {
            if let Some(ps) = &phase.pipeline_start {
                match self.tasks.iter().find(|t| t.id == ps.trigger) {
                    None => found.push(Diagnostic::error(
                        &self.path,
                        ps.line,
                        format!(
                            "pipeline-start of phase {} names task `{}`, which does not exist",
                            phase.number, ps.trigger
                        ),
                    )),
                    Some(t) if t.phase == phase.number => found.push(Diagnostic::error(
                        &self.path,
                        ps.line,
                        format!(
                            "pipeline-start of phase {} names `{}`, a task of the same phase",
                            phase.number, ps.trigger
                        ),
                    )),
                    Some(_) => {}
                }
            }
        }
        if let Some(ps) = &self.pending_pipeline {
            found.push(Diagnostic::warning(
                &self.path,
                ps.line,
                "`**pipeline-start:**` is not followed by a phase heading; it is ignored",
            ));
        }
        self.diagnostics.extend(found);
    }
}
