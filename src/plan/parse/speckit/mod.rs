//! Spec Kit's `tasks.md` (GitHub's spec-driven workflow) read as a plan: its own grammar, in a
//! room of its own, into the same [`Plan`].
//!
//! - Tasks: `- [ ] T014 [P] [US1] description` at column 0 (also `-   [ ] **T004a** …`); the
//!   `T…` id is the task id; `[x]`/`[X]` done; `[~]` not done (orch cannot tell how far a
//!   task marked in progress got, so it runs it); indented lines under a task are its body.
//! - Phases: every `## ` heading with tasks under it is a phase, numbered as `## Phase N:` says
//!   (or one after the last), in file order; phases run one after another.
//! - Order inside a phase: a task waits for the one before it, or for every `[P]` task written
//!   between them; a `[P]` task waits only for the last task before it without `[P]`.
//! - Written dependencies ("depends on", "after", "**Prerequisite**:", "T007 depends on T006" in
//!   a "Dependencies" section) are edges too; a sentence about order naming a task that orch
//!   cannot read is a warning, naming its line.
//! - Ignored: check lists without ids, tables, other headings, fenced code.

use std::path::Path;

use super::files::{dedent, task_files};
use crate::diagnostic::Diagnostic;
use crate::plan::model::{Phase, Plan, Priority, SpecKitTask, Task, TaskKind};

mod deps;
mod line;
mod tick;

use deps::IdRef;
pub use tick::{only_ticks, tick, ticks};

/// Whether `text` is a Spec Kit task file: a Spec Kit task line outside code fences, and no
/// task line of orch's own grammar (`- [ ] 1.2 …`).
pub fn is_speckit(text: &str) -> bool {
    let mut fence = Fence::default();
    let mut found = false;
    for l in text.lines() {
        if fence.skip(l) {
            continue;
        }
        if let Some(rest) = l.strip_prefix("- [")
            && let Some((_, after)) = super::lines::checkbox(rest)
            && super::lines::task_id(after).is_some()
        {
            return false;
        }
        found = found || line::task_line(l).is_some();
    }
    found
}

/// Whether `s` is a whole Spec Kit task id (`T014`, `T049a`): `T`, 1 to 6 digits, at most one
/// lower-case letter, nothing else (no `/`, `.` or space: an id never names a path).
pub fn is_id(s: &str) -> bool {
    line::id_len(s) == Some(s.len())
}

/// Whether `s` is a whole story label as a dependency names it: `US` and 1 to 6 digits.
pub fn is_story(s: &str) -> bool {
    s.strip_prefix("US")
        .is_some_and(|d| (1..=6).contains(&d.len()) && d.bytes().all(|c| c.is_ascii_digit()))
}

/// Fenced code blocks (``` or ~~~, at any indentation).
#[derive(Default)]
struct Fence {
    open: Option<(char, usize)>,
}

impl Fence {
    /// Whether `l` is a fence line or inside a fence.
    fn skip(&mut self, l: &str) -> bool {
        let t = l.trim_start();
        let run = |c: char| t.chars().take_while(|x| *x == c).count();
        match self.open {
            Some((c, len)) => {
                let n = run(c);
                if n >= len && t[n..].trim().is_empty() {
                    self.open = None;
                }
                true
            }
            None => {
                for c in ['`', '~'] {
                    let n = run(c);
                    if n >= 3 {
                        self.open = Some((c, n));
                        return true;
                    }
                }
                false
            }
        }
    }
}

/// A task as read, before its dependencies are resolved.
struct Draft {
    task: Task,
    parallel: bool,
    said: Vec<(IdRef, usize)>,
}

struct Reader<'t> {
    path: &'t Path,
    title: Option<String>,
    phases: Vec<Phase>,
    drafts: Vec<Draft>,
    bodies: Vec<Vec<&'t str>>,
    /// The last `## ` heading's text, and whether it is a phase yet.
    section: Option<(&'t str, bool)>,
    /// Inside a "Dependencies" section: the level of its heading.
    dep_section: Option<usize>,
    /// Statements of the dependency section: (line, task, ids).
    statements: Vec<(usize, String, Vec<IdRef>)>,
    diagnostics: Vec<Diagnostic>,
}

/// Parses Spec Kit text. Never fails: problems become diagnostics on the returned plan.
pub(crate) fn parse(path: &Path, text: &str, files: bool) -> Plan {
    let mut r = Reader {
        path,
        title: None,
        phases: Vec::new(),
        drafts: Vec::new(),
        bodies: Vec::new(),
        section: None,
        dep_section: None,
        statements: Vec::new(),
        diagnostics: Vec::new(),
    };
    let mut fence = Fence::default();
    let mut body: Option<usize> = None;
    for (i, l) in text.lines().enumerate() {
        let n = i + 1;
        let l = l.strip_suffix('\r').unwrap_or(l);
        let indented = l.starts_with([' ', '\t']);
        if fence.skip(l) {
            // A fence inside a task's body (indented) is part of it; one at column 0 ends it.
            match body {
                Some(b) if indented => r.bodies[b].push(l),
                _ => body = None,
            }
            continue;
        }
        if l.trim().is_empty() || indented {
            match body {
                Some(b) => r.bodies[b].push(l),
                None if r.dep_section.is_some() => r.dep_line(n, l),
                None => {}
            }
            continue;
        }
        body = None;
        if l.starts_with('#') {
            r.heading(l);
        } else if let Some(t) = line::task_line(l) {
            r.task(n, t);
            body = Some(r.drafts.len() - 1);
        } else if r.dep_section.is_some() {
            r.dep_line(n, l);
        }
    }
    r.finish(files)
}

impl<'t> Reader<'t> {
    fn warn(&mut self, line: usize, message: String) {
        self.diagnostics
            .push(Diagnostic::warning(self.path, line, message));
    }

    fn heading(&mut self, l: &'t str) {
        let level = l.chars().take_while(|c| *c == '#').count();
        let text = l[level..].trim();
        if level == 1 && self.title.is_none() {
            self.title = Some(text.to_string());
        }
        if self.dep_section.is_some_and(|d| level <= d) {
            self.dep_section = None;
        }
        if level == 2 {
            self.section = None;
        }
        let lower = text.to_ascii_lowercase();
        if level >= 2
            && self.dep_section.is_none()
            && lower.contains("dependencies")
            && !lower.starts_with("phase")
        {
            self.dep_section = Some(level);
            return;
        }
        if level == 2 {
            // A phase when a task comes under it.
            self.section = Some((text, false));
        }
    }

    fn dep_line(&mut self, n: usize, l: &str) {
        for clause in l.split(';') {
            match deps::statement(clause) {
                Ok(Some((task, ids))) => self.statements.push((n, task, ids)),
                Ok(None) => {}
                Err(()) => self.warn(
                    n,
                    format!(
                        "dependency sentence not read: `{}` (orch reads `T012 depends on T010, T011`; phases run in file order)",
                        clause.trim().trim_start_matches("- ")
                    ),
                ),
            }
        }
    }

    /// The phase a task on line `n` belongs to, made from the current `## ` heading.
    fn phase_for(&mut self, n: usize) -> u32 {
        let last = self.phases.last().map_or(0, |p| p.number);
        match self.section {
            Some((_, true)) => last,
            Some((text, false)) => {
                let (number, title) = phase_heading(text)
                    .filter(|(num, _)| *num > last)
                    .unwrap_or((last + 1, text));
                self.phases.push(Phase {
                    number,
                    title: title.to_string(),
                    line: n,
                    pipeline_start: None,
                });
                self.section = Some((text, true));
                number
            }
            None => {
                // Tasks before any `## ` heading (or, after one, a phase with no title).
                self.phases.push(Phase {
                    number: last + 1,
                    title: String::new(),
                    line: n,
                    pipeline_start: None,
                });
                self.section = Some(("", true));
                last + 1
            }
        }
    }

    fn task(&mut self, n: usize, t: line::TaskLine<'_>) {
        let phase = self.phase_for(n);
        if let Some(first) = self.drafts.iter().find(|d| d.task.id == t.id) {
            let at = first.task.line;
            self.diagnostics.push(Diagnostic::error(
                self.path,
                n,
                format!("duplicate task id `{}` (first at line {at})", t.id),
            ));
        }
        self.drafts.push(Draft {
            task: Task {
                id: t.id.to_string(),
                kind: TaskKind::Task,
                phase,
                description: t.description.to_string(),
                body: String::new(),
                done: matches!(t.mark, 'x' | 'X'),
                depends: None,
                priority: Priority::Normal,
                estimate_s: None,
                files: Vec::new(),
                line: n,
                blocking: true,
                speckit: Some(Box::new(SpecKitTask {
                    parallel: t.parallel,
                    stories: t.stories,
                    written: Vec::new(),
                    mark: t.mark,
                })),
            },
            parallel: t.parallel,
            said: Vec::new(),
        });
        self.bodies.push(Vec::new());
    }

    fn finish(mut self, files: bool) -> Plan {
        // Bodies, and the dependency phrases of each task's text.
        for i in 0..self.drafts.len() {
            let body = dedent(&self.bodies[i]);
            let line = self.drafts[i].task.line;
            let description = self.drafts[i].task.description.clone();
            for (k, part) in std::iter::once(description.as_str())
                .chain(body.lines())
                .enumerate()
            {
                let said = deps::in_task(part);
                let at = if k == 0 { line } else { line + k };
                if said.unread {
                    let id = self.drafts[i].task.id.clone();
                    self.warn(
                        at,
                        format!(
                            "task `{id}`: dependency sentence not read: `{}` (orch reads `depends on T012, T013`, `after T002`, `**Prerequisite**: T015`)",
                            part.trim()
                        ),
                    );
                }
                let found: Vec<(IdRef, usize)> = said.ids.into_iter().map(|r| (r, at)).collect();
                self.drafts[i].said.extend(found);
            }
            self.drafts[i].task.body = body;
        }
        for (line, task, ids) in std::mem::take(&mut self.statements) {
            match self.drafts.iter_mut().find(|d| d.task.id == task) {
                Some(d) => d.said.extend(ids.into_iter().map(|r| (r, line))),
                None => self.warn(
                    line,
                    format!(
                        "dependency statement names `{task}`, which is not a task of this file"
                    ),
                ),
            }
        }
        self.resolve();
        let mut tasks = Vec::with_capacity(self.drafts.len());
        for d in self.drafts {
            let mut task = d.task;
            if files {
                task.files = task_files(&task);
            }
            tasks.push(task);
        }
        let mut diagnostics = self.diagnostics;
        diagnostics.sort_by_key(|d| d.line);
        let title = self.title.unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        Plan {
            path: self.path.to_path_buf(),
            title,
            phases: self.phases,
            tasks,
            sequential: Vec::new(),
            parallel: Vec::new(),
            diagnostics,
        }
    }

    /// Each task's `depends`: the order of the file (see the module's comment) and the
    /// dependencies written, the ranges expanded to the tasks of the file they span.
    fn resolve(&mut self) {
        let ids: Vec<(String, Option<u32>)> = self
            .drafts
            .iter()
            .map(|d| (d.task.id.clone(), line::id_number(&d.task.id)))
            .collect();
        // What the next task of a phase waits for, and the tasks the next phase's first waits for.
        let mut anchor: Option<usize> = None;
        let mut group: Vec<usize> = Vec::new();
        let mut before_phase: Vec<usize> = Vec::new();
        let mut phase = None;
        for i in 0..self.drafts.len() {
            if phase != Some(self.drafts[i].task.phase) {
                if phase.is_some() {
                    before_phase = exit(anchor, &group);
                }
                phase = Some(self.drafts[i].task.phase);
                (anchor, group) = (None, Vec::new());
            }
            let base: Vec<usize> = if self.drafts[i].parallel {
                anchor.map_or_else(|| before_phase.clone(), |a| vec![a])
            } else if group.is_empty() {
                anchor.map_or_else(|| before_phase.clone(), |a| vec![a])
            } else {
                group.clone()
            };
            if self.drafts[i].parallel {
                group.push(i);
            } else {
                anchor = Some(i);
                group.clear();
            }
            let mut written: Vec<String> = Vec::new();
            for (r, line) in std::mem::take(&mut self.drafts[i].said) {
                let found: Vec<&str> = match &r {
                    IdRef::One(id) => ids
                        .iter()
                        .filter(|(x, _)| x == id)
                        .map(|(x, _)| x.as_str())
                        .collect(),
                    IdRef::Range(a, b) => match (line::id_number(a), line::id_number(b)) {
                        (Some(lo), Some(hi)) => ids
                            .iter()
                            .filter(|(_, n)| n.is_some_and(|n| lo <= n && n <= hi))
                            .map(|(x, _)| x.as_str())
                            .collect(),
                        _ => Vec::new(),
                    },
                };
                if found.is_empty() {
                    let name = match &r {
                        IdRef::One(id) => id.clone(),
                        IdRef::Range(a, b) => format!("{a}-{b}"),
                    };
                    let me = self.drafts[i].task.id.clone();
                    self.warn(
                        line,
                        format!("task `{me}` depends on `{name}`, which names no task of this file; not an edge"),
                    );
                }
                for id in found {
                    if id != self.drafts[i].task.id && !written.iter().any(|w| w == id) {
                        written.push(id.to_string());
                    }
                }
            }
            let mut depends: Vec<String> = base
                .into_iter()
                .map(|j| self.drafts[j].task.id.clone())
                .collect();
            for w in &written {
                if !depends.contains(w) {
                    depends.push(w.clone());
                }
            }
            let d = &mut self.drafts[i].task;
            d.depends = (!depends.is_empty()).then_some(depends);
            if let Some(s) = d.speckit.as_mut() {
                s.written = written;
            }
        }
    }
}

/// The tasks that end a phase: the `[P]` tasks after its last task without `[P]`, else that one.
fn exit(anchor: Option<usize>, group: &[usize]) -> Vec<usize> {
    if group.is_empty() {
        anchor.into_iter().collect()
    } else {
        group.to_vec()
    }
}

/// `Phase 3: User Story 1` / `Phase 3 - Title` / `Phase 3`: the number and the title.
fn phase_heading(text: &str) -> Option<(u32, &str)> {
    let rest = text.strip_prefix("Phase ")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let number = rest[..digits].parse().ok()?;
    let title = rest[digits..].trim_start_matches([':', ' ', '-', '—', '–']);
    Some((number, title.trim()))
}

#[cfg(test)]
mod tests;
