//! The plan parser: one pass over the lines, then reference checks.
//!
//! Compatible with the earlier system's grammar (phases `## Phase N: title`, tasks `- [ ] N.M text`
//! at column 0, `(depends: …)`, execution notes, VERIFY blocks), with these deliberate differences:
//! fenced code blocks are ignored, indented lines under a task are kept as its body, `[X]` counts as
//! done, `Tasks 5.2 and 5.4` / `Tasks 3.1, 3.3` form one group, and bad references are reported.

use std::path::{Path, PathBuf};

use super::ids::{IdMap, id_map};
use super::model::{
    ParallelGroup, Phase, PipelineStart, Plan, Priority, SequentialGroup, Task, TaskKind, id_parts,
    is_task_id, verify_id,
};
use crate::diagnostic::Diagnostic;
use crate::manifest::parse_duration;

/// Reading a plan file failed before parsing could start.
#[derive(Debug, thiserror::Error)]
pub enum PlanReadError {
    #[error("cannot read plan file `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plan file `{path}` is not valid UTF-8 (first bad byte on line {line})")]
    NotUtf8 { path: PathBuf, line: usize },
}

/// Reads and parses a plan file.
pub fn parse_file(path: &Path) -> Result<Plan, PlanReadError> {
    let bytes = std::fs::read(path).map_err(|source| PlanReadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(parse(path, &text)),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..valid]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            Err(PlanReadError::NotUtf8 {
                path: path.to_path_buf(),
                line,
            })
        }
    }
}

/// Parses plan text. Never fails: problems become diagnostics on the returned plan.
pub fn parse(path: &Path, text: &str) -> Plan {
    let mut p = Parser::new(path);
    for (i, line) in text.lines().enumerate() {
        p.line(i + 1, line.strip_suffix('\r').unwrap_or(line));
    }
    p.finish(text)
}

/// What the lines following the current one belong to.
enum Collect {
    Nothing,
    /// Body lines of `tasks[index]`.
    TaskBody(usize),
    /// Criteria of the verification step started at the last `**VERIFY …**` marker.
    Verify,
}

struct Fence {
    marker: char,
    len: usize,
    /// The fence opened inside a task body: its lines belong to that body.
    in_body: Option<usize>,
}

struct VerifyDraft {
    phase: u32,
    line: usize,
    blocking: bool,
    criteria: Vec<(bool, String)>,
    /// Task lines with ids written inside the block: they are tasks of their own (the earlier
    /// system's reading), so a block made only of them needs no verification step.
    id_tasks: usize,
    /// Index in `tasks` where the step is placed (file order).
    position: usize,
}

struct NoteDraft {
    sequential: bool,
    expr: String,
    reason: String,
    line: usize,
}

struct Parser<'t> {
    path: PathBuf,
    title: Option<String>,
    phases: Vec<Phase>,
    tasks: Vec<Task>,
    /// Body lines of each task, borrowed from the text.
    bodies: Vec<Vec<&'t str>>,
    verifies: Vec<VerifyDraft>,
    notes: Vec<NoteDraft>,
    pending_pipeline: Option<PipelineStart>,
    collect: Collect,
    fence: Option<Fence>,
    diagnostics: Vec<Diagnostic>,
}

impl<'t> Parser<'t> {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            title: None,
            phases: Vec::new(),
            tasks: Vec::new(),
            bodies: Vec::new(),
            verifies: Vec::new(),
            notes: Vec::new(),
            pending_pipeline: None,
            collect: Collect::Nothing,
            fence: None,
            diagnostics: Vec::new(),
        }
    }

    fn error(&mut self, line: usize, message: impl Into<String>) -> &mut Diagnostic {
        let d = Diagnostic::error(&self.path, line, message);
        self.push(d)
    }

    /// Adds a diagnostic; returns it, to add a hint.
    fn push(&mut self, d: Diagnostic) -> &mut Diagnostic {
        let at = self.diagnostics.len();
        self.diagnostics.push(d);
        &mut self.diagnostics[at]
    }

    fn warn(&mut self, line: usize, message: impl Into<String>) -> &mut Diagnostic {
        let d = Diagnostic::warning(&self.path, line, message);
        self.push(d)
    }

    fn line(&mut self, n: usize, line: &'t str) {
        if self.in_fence(line) {
            return;
        }
        let indented = line.starts_with([' ', '\t']);
        let blank = line.trim().is_empty();

        if blank || indented {
            self.continuation(n, line, blank);
            return;
        }

        // A non-indented, non-blank line ends any task body.
        if let Some(rest) = line.strip_prefix("- [")
            && let Some((done, after)) = checkbox(rest)
        {
            if let Some((id, desc)) = task_id(after) {
                self.task(n, done, id, desc);
                return;
            }
            if let Some((phase, text)) = checkbox_verify(after) {
                self.collect = Collect::Nothing;
                // Like a bare bullet, an empty criterion is no criterion.
                let criterion = (!text.is_empty()).then_some((done, text));
                self.verify_marker(n, phase, true, criterion);
                return;
            }
        }
        if let Collect::Verify = self.collect
            && let Some(item) = list_item(line)
        {
            self.criterion(item);
            return;
        }
        self.collect = Collect::Nothing;

        if let Some(rest) = line.strip_prefix("## Phase ") {
            if let Some((num, title)) = phase_heading(rest) {
                self.phase(n, num, title);
                return;
            }
            self.warn(
                n,
                "heading looks like a phase but is not `## Phase N: title`; it is not a phase",
            )
            .hint = Some("write it as `## Phase 3: Title` (two `#`, a number, a colon)".into());
            return;
        }
        if line.starts_with('#') {
            self.other_heading(n, line);
            return;
        }
        if let Some(rest) = strip_bold_label(line, "VERIFY") {
            self.bold_verify(n, rest);
            return;
        }
        if let Some(rest) = strip_bold_key(line, "Execution Note") {
            self.execution_note(n, rest);
            return;
        }
        if let Some(rest) = strip_bold_key(line, "pipeline-start") {
            match pipeline_trigger(rest) {
                Some(trigger) => {
                    self.pending_pipeline = Some(PipelineStart { trigger, line: n });
                }
                None => {
                    self.error(
                        n,
                        "`**pipeline-start:**` must read `when <task id> completes`",
                    );
                }
            }
        }
    }

    /// Tracks fenced code blocks; returns true when the line is part of one (and so ignored,
    /// unless the fence sits inside a task body, where it becomes body text).
    fn in_fence(&mut self, line: &'t str) -> bool {
        let trimmed = line.trim_start();
        let fence_len = |c: char| trimmed.chars().take_while(|x| *x == c).count();
        if let Some(f) = &self.fence {
            if let Some(i) = f.in_body {
                self.bodies[i].push(line);
            }
            let len = fence_len(f.marker);
            if len >= f.len && trimmed[len..].trim().is_empty() {
                self.fence = None;
            }
            return true;
        }
        for marker in ['`', '~'] {
            let len = fence_len(marker);
            if len >= 3 {
                let indented = line.starts_with([' ', '\t']);
                let in_body = match self.collect {
                    Collect::TaskBody(i) if indented => {
                        self.bodies[i].push(line);
                        Some(i)
                    }
                    _ => {
                        self.collect = Collect::Nothing;
                        None
                    }
                };
                self.fence = Some(Fence {
                    marker,
                    len,
                    in_body,
                });
                return true;
            }
        }
        false
    }

    fn continuation(&mut self, n: usize, line: &'t str, blank: bool) {
        match self.collect {
            Collect::TaskBody(i) => self.bodies[i].push(line),
            Collect::Verify => {
                if !blank {
                    let t = line.trim();
                    match list_item(t) {
                        Some(item) => self.criterion(item),
                        None => self.criterion_text(t),
                    }
                }
            }
            Collect::Nothing => {
                if blank {
                    return;
                }
                let t = line.trim_start();
                if let Some(rest) = t.strip_prefix("- [")
                    && let Some((_, after)) = checkbox(rest)
                    && let Some((id, _)) = task_id(after)
                {
                    self.warn(
                        n,
                        format!("indented `- [ ] {id}` is not a task: tasks start at column 0"),
                    )
                    .hint = Some("remove the indentation to make it a task".into());
                }
            }
        }
    }

    fn phase(&mut self, n: usize, number: u32, title: &str) {
        let (title, inline) = split_inline_pipeline(title);
        let pipeline_start = match inline {
            Some(Some(trigger)) => Some(PipelineStart { trigger, line: n }),
            Some(None) => {
                self.error(
                    n,
                    "`(pipeline-start: …)` must read `when <task id> completes`",
                );
                None
            }
            None => self.pending_pipeline.take(),
        };
        self.pending_pipeline = None;
        if let Some(prev) = self.phases.iter().find(|p| p.number == number) {
            let first = prev.line;
            self.error(
                n,
                format!("duplicate phase {number} (first defined at line {first})"),
            );
        } else if let Some(last) = self.phases.last()
            && last.number > number
        {
            let last_number = last.number;
            self.warn(
                n,
                format!("phase {number} comes after phase {last_number}: phases run in file order"),
            );
        }
        self.phases.push(Phase {
            number,
            title,
            line: n,
            pipeline_start,
        });
    }

    fn other_heading(&mut self, n: usize, line: &str) {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        let rest = line[hashes..].trim_start();
        if hashes != 2
            && let Some(after) = rest.strip_prefix("Phase ")
            && phase_heading(after).is_some()
        {
            self.warn(
                n,
                format!(
                    "`{}` has {hashes} `#`: only `## Phase N: title` starts a phase",
                    line.trim()
                ),
            )
            .hint = Some("use exactly two `#` if this is meant to be a phase".into());
        }
        if hashes == 1 && self.title.is_none() {
            self.title = Some(rest.trim().to_string());
        }
    }

    fn task(&mut self, n: usize, done: bool, id: &str, desc: &str) {
        if let Collect::Verify = self.collect
            && let Some(v) = self.verifies.last_mut()
        {
            v.id_tasks += 1;
        }
        self.collect = Collect::Nothing;
        let Some(phase) = self.phases.last().map(|p| p.number) else {
            self.warn(
                n,
                format!(
                    "`- [ ] {id}` comes before the first `## Phase N:` heading and is not a task"
                ),
            );
            return;
        };
        let description = desc.trim().to_string();
        if description.is_empty() {
            self.warn(n, format!("task `{id}` has no description"));
        }
        let depends = self.depends(n, id, &description);
        let estimate_s = self.estimate(n, id, &description);
        if let Err(why) = super::check::check_clause(&description) {
            self.error(n, format!("task `{id}`: {why}"));
        }
        self.tasks.push(Task {
            id: id.to_string(),
            kind: TaskKind::Task,
            phase,
            priority: priority(&description),
            description,
            body: String::new(),
            done,
            depends,
            estimate_s,
            files: Vec::new(),
            line: n,
            blocking: true,
        });
        self.bodies.push(Vec::new());
        self.collect = Collect::TaskBody(self.tasks.len() - 1);
    }

    /// Extracts the ids of every `(depends: …)` clause of a description.
    fn depends(&mut self, n: usize, id: &str, desc: &str) -> Option<Vec<String>> {
        if !contains_ci(desc, "depends") {
            return None;
        }
        let lower = desc.to_ascii_lowercase();
        let mut found: Option<Vec<String>> = None;
        let mut from = 0;
        while let Some(pos) = lower[from..].find("(depends:") {
            let start = from + pos + "(depends:".len();
            let Some(end) = lower[start..].find(')') else {
                self.error(n, format!("task `{id}`: `(depends:` is not closed by `)`"));
                break;
            };
            let list = &desc[start..start + end];
            let ids = found.get_or_insert_with(Vec::new);
            for token in split_list(list) {
                if is_task_id(token) || is_verify_id(token) {
                    if !ids.iter().any(|x| x == token) {
                        ids.push(token.to_string());
                    }
                } else {
                    self.diagnostics.push(
                        Diagnostic::error(
                            &self.path,
                            n,
                            format!("task `{id}`: `(depends: …)` lists `{token}`, which is not a task id"),
                        )
                        .with_hint("list task ids separated by commas: `(depends: 1.1, 2.3)`"),
                    );
                }
            }
            from = start + end;
        }
        if found.is_none() && (lower.contains("[depends:") || lower.contains("depends on ")) {
            let hint = "write dependencies as `(depends: 1.1, 2.3)` in the task line";
            if lower.contains("[depends:") {
                self.warn(
                    n,
                    format!("task `{id}`: `[DEPENDS: …]` is not dependency syntax and is ignored"),
                )
                .hint = Some(hint.into());
            }
        }
        found
    }

    /// The `(est: 1h30m)` clause of a description, in seconds. A malformed or repeated clause
    /// is an error; the first valid one counts.
    fn estimate(&mut self, n: usize, id: &str, desc: &str) -> Option<u64> {
        if !contains_ci(desc, "(est:") {
            return None;
        }
        let lower = desc.to_ascii_lowercase();
        let mut found: Option<u64> = None;
        let mut from = 0;
        while let Some(pos) = lower[from..].find("(est:") {
            let start = from + pos + "(est:".len();
            let Some(end) = lower[start..].find(')') else {
                self.error(n, format!("task `{id}`: `(est:` is not closed by `)`"));
                break;
            };
            let text = lower[start..start + end].trim();
            match parse_duration(text) {
                Ok(_) if found.is_some() => {
                    self.error(n, format!("task `{id}`: more than one `(est: …)`"));
                }
                Ok(d) => found = Some(d.as_secs()),
                Err(why) => {
                    self.diagnostics.push(
                        Diagnostic::error(
                            &self.path,
                            n,
                            format!("task `{id}`: `(est: {text})`: {why}"),
                        )
                        .with_hint(
                            "write the estimate as `(est: 20m)`, `(est: 1h30m)`, `(est: 45s)`",
                        ),
                    );
                }
            }
            from = start + end;
        }
        found
    }

    fn bold_verify(&mut self, n: usize, rest: &str) {
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

    fn verify_marker(
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
                self.verifies.push(VerifyDraft {
                    phase,
                    line: n,
                    blocking,
                    criteria: Vec::new(),
                    id_tasks: 0,
                    position: self.tasks.len(),
                });
                self.verifies.len() - 1
            }
        };
        let v = &mut self.verifies[idx];
        v.blocking &= blocking;
        if let Some((done, text)) = criterion {
            v.criteria.push((done, text.to_string()));
        }
    }

    fn criterion(&mut self, item: &str) {
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

    fn criterion_text(&mut self, text: &str) {
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

    fn execution_note(&mut self, n: usize, rest: &str) {
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

    fn finish(mut self, text: &str) -> Plan {
        if let Some(f) = &self.fence
            && f.in_body.is_none()
        {
            let line = text.lines().count();
            self.warn(
                line,
                "a fenced code block is never closed: everything after its opening was ignored",
            );
        }
        for (task, body) in self.tasks.iter_mut().zip(&self.bodies) {
            task.body = dedent(body);
            task.files = if task.body.is_empty() {
                extract_files(&task.description)
            } else {
                let mut text = String::with_capacity(task.description.len() + 1 + task.body.len());
                text.push_str(&task.description);
                text.push('\n');
                text.push_str(&task.body);
                extract_files(&text)
            };
        }
        self.insert_verify_steps();
        self.check_ids();
        let sequential = self.resolve_sequential();
        let parallel = self.resolve_parallel();
        self.check_pipeline();
        let title = self.title.take().unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        let mut diagnostics = self.diagnostics;
        diagnostics.sort_by_key(|d| d.line);
        Plan {
            path: self.path,
            title,
            phases: self.phases,
            tasks: self.tasks,
            sequential,
            parallel,
            diagnostics,
        }
    }

    fn insert_verify_steps(&mut self) {
        let mut drafts = std::mem::take(&mut self.verifies);
        // Steps at one position keep the file order of their first marker (`line`), or two
        // VERIFY blocks with no task between them would swap.
        drafts.sort_by_key(|v| (v.position, v.line));
        let mut steps: Vec<(usize, Task)> = Vec::new();
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
            };
            steps.push((v.position.min(self.tasks.len()), task));
        }
        if steps.is_empty() {
            return;
        }
        // One merge instead of an insert per step (each of which moved every later task).
        let tasks = std::mem::take(&mut self.tasks);
        let mut merged = Vec::with_capacity(tasks.len() + steps.len());
        let mut steps = steps.into_iter().peekable();
        for (i, t) in tasks.into_iter().enumerate() {
            while let Some((_, step)) = steps.next_if(|(at, _)| *at == i) {
                merged.push(step);
            }
            merged.push(t);
        }
        merged.extend(steps.map(|(_, step)| step));
        self.tasks = merged;
    }

    fn check_ids(&mut self) {
        let mut first: IdMap<&str, usize> = id_map(self.tasks.len());
        let mut found = Vec::new();
        for t in &self.tasks {
            if let Some(line) = first.get(t.id.as_str()) {
                found.push(
                    Diagnostic::error(
                        &self.path,
                        t.line,
                        format!(
                            "duplicate task id `{}` (first defined at line {line})",
                            t.id
                        ),
                    )
                    .with_hint("task ids must be unique within a plan; renumber one of them"),
                );
            } else {
                first.insert(&t.id, t.line);
            }
        }
        for t in &self.tasks {
            for dep in t.dependencies() {
                if dep == &t.id {
                    found.push(Diagnostic::error(
                        &self.path,
                        t.line,
                        format!("task `{}` depends on itself", t.id),
                    ));
                } else if !first.contains_key(dep.as_str()) {
                    found.push(
                        Diagnostic::error(
                            &self.path,
                            t.line,
                            format!(
                                "task `{}` depends on `{dep}`, which is not a task of this plan",
                                t.id
                            ),
                        )
                        .with_hint("check the id in `(depends: …)`; ids are never renumbered"),
                    );
                }
            }
        }
        self.diagnostics.extend(found);
    }

    fn resolve_sequential(&mut self) -> Vec<SequentialGroup> {
        if !self.notes.iter().any(|n| n.sequential) {
            return Vec::new();
        }
        let notes: Vec<NoteDraft> = self
            .notes
            .iter()
            .filter(|n| n.sequential)
            .map(|n| NoteDraft {
                sequential: true,
                expr: n.expr.clone(),
                reason: n.reason.clone(),
                line: n.line,
            })
            .collect();
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

    fn resolve_parallel(&mut self) -> Vec<ParallelGroup> {
        let notes: Vec<(String, String, usize)> = self
            .notes
            .iter()
            .filter(|n| !n.sequential)
            .map(|n| (n.expr.clone(), n.reason.clone(), n.line))
            .collect();
        let mut groups = Vec::new();
        for (expr, reason, line) in notes {
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

    fn check_pipeline(&mut self) {
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

/// `[ ] rest` / `[x] rest` / `[X] rest` (the text after `- [`): the mark and what follows.
fn checkbox(rest: &str) -> Option<(bool, &str)> {
    let mut chars = rest.chars();
    let mark = chars.next()?;
    let done = match mark {
        ' ' => false,
        'x' | 'X' => true,
        _ => return None,
    };
    let after = chars.as_str().strip_prefix(']')?;
    if after.is_empty() {
        return Some((done, after));
    }
    after.strip_prefix([' ', '\t']).map(|a| (done, a))
}

/// `1.2 description` → (`1.2`, `description`); the id must be `N.M` or `N.M.K`.
fn task_id(after: &str) -> Option<(&str, &str)> {
    let end = after.find([' ', '\t']).unwrap_or(after.len());
    let id = &after[..end];
    if !is_task_id(id) {
        return None;
    }
    Some((id, &after[end..]))
}

/// `**VERIFY 2**: text` / `**VERIFY 2:** text` / `**VERIFY Phase 2:** text` after a checkbox.
fn checkbox_verify(after: &str) -> Option<(u32, &str)> {
    let rest = after.trim_start().strip_prefix("**VERIFY")?;
    verify_marker_rest(rest).map(|(phase, text)| (phase, text.trim()))
}

/// What follows `**VERIFY`: ` Phase 2:** text`, ` 2**: text`, ` 4.1:** text` → (phase, text).
fn verify_marker_rest(rest: &str) -> Option<(u32, &str)> {
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("Phase").unwrap_or(rest).trim_start();
    let num_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (num, after) = rest.split_at(num_len);
    let text = after
        .strip_prefix(":**")
        .or_else(|| after.strip_prefix("**:"))
        .or_else(|| after.strip_prefix("**"))?;
    Some((verify_phase_number(num)?, text))
}

/// `2` → 2; `4.1` / `4.1.2` (a VERIFY written for a task group) → its phase, 4.
fn verify_phase_number(num: &str) -> Option<u32> {
    num.split('.').next()?.parse().ok()
}

fn is_verify_id(s: &str) -> bool {
    s.strip_prefix('V')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `3: Title` → (3, `Title`).
fn phase_heading(rest: &str) -> Option<(u32, &str)> {
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    if digits == 0 {
        return None;
    }
    let number = rest[..digits].parse().ok()?;
    let title = rest[digits..].trim_start().strip_prefix(':')?;
    Some((number, title.trim()))
}

/// Splits `(pipeline-start: when 1.3 completes)` off a phase title.
/// Returns the clean title and, if the clause is present, its trigger (None if malformed).
fn split_inline_pipeline(title: &str) -> (String, Option<Option<String>>) {
    let Some(pos) = title.find("(pipeline-start:") else {
        return (title.to_string(), None);
    };
    let clause_start = pos + "(pipeline-start:".len();
    let Some(end) = title[clause_start..].find(')') else {
        return (title.to_string(), Some(None));
    };
    let inner = &title[clause_start..clause_start + end];
    let clean = format!(
        "{} {}",
        title[..pos].trim_end(),
        title[clause_start + end + 1..].trim()
    );
    (clean.trim().to_string(), Some(pipeline_trigger(inner)))
}

/// `when 1.3 completes` → `1.3`.
fn pipeline_trigger(text: &str) -> Option<String> {
    let t = text.trim();
    let t = t.strip_prefix("when").unwrap_or(t).trim();
    let id = t.split_whitespace().next()?;
    let id = id.trim_end_matches([',', '.', ')']);
    id_parts(id).map(|_| id.to_string())
}

/// `**Execution Note:** rest` → `rest` (also accepts `**Execution Note**:`).
fn strip_bold_key<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.strip_prefix("**")?.strip_prefix(key)?;
    rest.strip_prefix(":**")
        .or_else(|| rest.strip_prefix("**:"))
        .map(str::trim)
}

/// `**VERIFY…` → what follows `**VERIFY`.
fn strip_bold_label<'a>(line: &'a str, label: &str) -> Option<&'a str> {
    line.strip_prefix("**")?.strip_prefix(label)
}

/// A markdown list item's text (`- x`, `* x`, `+ x`, `1. x`).
fn list_item(line: &str) -> Option<&str> {
    if let Some(rest) = line
        .strip_prefix("- ")
        .or_else(|| line.strip_prefix("* "))
        .or_else(|| line.strip_prefix("+ "))
    {
        return Some(rest);
    }
    let digits = line.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
    if digits > 0 {
        return line[digits..].strip_prefix(". ");
    }
    None
}

/// Whether `hay` contains `needle` (ASCII, lowercase), ignoring ASCII case; no allocation.
fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    n.is_empty()
        || h.windows(n.len())
            .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

/// `(HIGH)` etc. anywhere in a description.
fn priority(desc: &str) -> Priority {
    if desc.contains("(CRITICAL)") {
        Priority::Critical
    } else if desc.contains("(HIGH)") {
        Priority::High
    } else if desc.contains("(LOW)") {
        Priority::Low
    } else {
        Priority::Normal
    }
}

/// Splits `1.1, 1.2 and 1.4` / `2.1-2.4` lists into items (ranges kept whole).
fn split_list(list: &str) -> impl Iterator<Item = &str> {
    list.split([',', ';', '&'])
        .flat_map(|part| part.split(" and "))
        .flat_map(str::split_whitespace)
        .map(|s| s.trim_matches('`'))
        .filter(|s| !s.is_empty() && *s != "and")
}

/// `2.1-2.4` → (`2.1`, `2.4`); `2.1` → (`2.1`, `2.1`).
fn split_range(item: &str) -> (&str, &str) {
    for sep in ["-", "–", "—"] {
        if let Some((a, b)) = item.split_once(sep) {
            return (a.trim(), b.trim());
        }
    }
    (item, item)
}

/// Removes trailing blank lines and the common indentation of the non-blank lines.
fn dedent(lines: &[&str]) -> String {
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    let lines = &lines[..end];
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(if l.len() >= indent {
            &l[indent..]
        } else {
            l.trim_start()
        });
    }
    out
}

/// File paths a text names: backtick-quoted paths and bare `dir/file.ext` tokens.
pub(crate) fn extract_files(text: &str) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    let mut push = |candidate: &str| {
        if let Some(path) = normalize_path_candidate(candidate)
            && !files.contains(&path)
        {
            files.push(path);
        }
    };
    let mut in_tick = false;
    for (i, part) in text.split('`').enumerate() {
        if i > 0 {
            in_tick = !in_tick;
        }
        if in_tick {
            if !part.contains(char::is_whitespace) {
                push(part);
            }
        } else {
            for token in part.split_whitespace() {
                // Most words name no file: skip them before trimming (trimming only removes
                // punctuation at the ends, so a kept token contains `/` or `src` already).
                if !token.contains('/') && !token.contains("src") {
                    continue;
                }
                let token = token.trim_matches(|c: char| ",;()[]{}\"'*<>".contains(c));
                if token.contains('/') || token.starts_with("src") {
                    push(token);
                }
            }
        }
    }
    files
}

fn normalize_path_candidate(s: &str) -> Option<String> {
    let s = s.trim_end_matches(['.', ',', ':', ';']);
    if s.is_empty() || s.contains("://") || s.starts_with('-') || s.starts_with('/') {
        return None;
    }
    // Drop a `:80-88` / `:12` line suffix.
    let s = match s.split_once(':') {
        Some((path, suffix))
            if suffix
                .chars()
                .all(|c| c.is_ascii_digit() || c == '-' || c == ',') =>
        {
            path
        }
        Some(_) => return None,
        None => s,
    };
    if s.chars().any(|c| "(){}[]=<>|$*?!@#%^&\"'\\".contains(c)) {
        return None;
    }
    let name = s.rsplit('/').next().unwrap_or(s);
    let has_ext = name.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty()
            && (1..=6).contains(&ext.len())
            && ext.chars().all(|c| c.is_ascii_alphanumeric())
            && !ext.chars().all(|c| c.is_ascii_digit())
    });
    let dir = s.contains('/') && s.split('/').all(|c| !c.is_empty() || s.ends_with('/'));
    if has_ext
        || (dir
            && s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_'))
    {
        Some(s.to_string())
    } else {
        None
    }
}
