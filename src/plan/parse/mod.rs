//! The plan parser: one pass over the lines, then reference checks.
//!
//! Compatible with the earlier system's grammar (phases `## Phase N: title`, tasks `- [ ] N.M text`
//! at column 0, `(depends: …)`, execution notes, VERIFY blocks), with these deliberate differences:
//! fenced code blocks are ignored, indented lines under a task are kept as its body, `[X]` counts as
//! done, `Tasks 5.2 and 5.4` / `Tasks 3.1, 3.3` form one group, and bad references are reported.
//!
//! A Spec Kit `tasks.md` (task lines `- [ ] T001 …`, none of orch's) is read by `speckit`.

use std::path::{Path, PathBuf};

use super::model::{Phase, PipelineStart, Plan, Task, TaskKind};
use crate::diagnostic::Diagnostic;
use crate::untrusted::read;

mod files;
mod lines;
mod notes;
mod speckit;
mod task_line;
mod verify;

use files::dedent;
pub use files::task_files;
#[cfg(test)]
pub(crate) use files::{extract_files, extract_files_of};
use lines::{
    checkbox, checkbox_verify, find_newline, list_item, phase_heading, pipeline_trigger,
    split_inline_pipeline, strip_bold_key, strip_bold_label, task_id,
};
pub use speckit::{
    is_id as is_speckit_id, is_speckit, is_story, only_ticks as only_speckit_ticks,
    tick as tick_speckit, ticks as speckit_ticks,
};

/// Reading a plan file failed before parsing could start.
#[derive(Debug, thiserror::Error)]
pub enum PlanReadError {
    #[error("cannot read plan file `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A symbolic link, a FIFO or another special file, or a file larger than
    /// [`read::PLAN`], at the plan file's place: refused by name, never followed, waited on or
    /// read whole.
    #[error("plan file `{path}` not read: {source}")]
    Refused {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("plan file `{path}` is not valid UTF-8 (first bad byte on line {line})")]
    NotUtf8 { path: PathBuf, line: usize },
}

/// Reads and parses a plan file.
pub fn parse_file(path: &Path) -> Result<Plan, PlanReadError> {
    parse_file_with(path, true)
}

/// [`parse_file`], with or without the tasks' `files` (see [`parse_with`]).
pub fn parse_file_with(path: &Path, files: bool) -> Result<Plan, PlanReadError> {
    let bytes = read::whole(path, read::PLAN).map_err(|e| read_error(path, e))?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(parse_with(path, text, files)),
        Err(e) => {
            let valid = e.valid_up_to();
            let line = bytes[..valid].iter().filter(|b| **b == b'\n').count() + 1;
            Err(PlanReadError::NotUtf8 {
                path: path.to_path_buf(),
                line,
            })
        }
    }
}

/// `e`, the error of reading plan file `path`, as a [`PlanReadError`].
pub(crate) fn read_error(path: &Path, e: read::ReadError) -> PlanReadError {
    let path = path.to_path_buf();
    match e {
        read::ReadError::Io { source, .. } => PlanReadError::Read { path, source },
        read::ReadError::Missing { .. } => PlanReadError::Read {
            path,
            source: std::io::Error::from_raw_os_error(nix::libc::ENOENT),
        },
        e => PlanReadError::Refused {
            path,
            source: e.into(),
        },
    }
}

/// Parses plan text. Never fails: problems become diagnostics on the returned plan.
pub fn parse(path: &Path, text: &str) -> Plan {
    parse_with(path, text, true)
}

/// [`parse`], leaving the `files` of tasks (not of verification steps) empty unless `files`:
/// for commands that print a few tasks of a long plan, which fill in those few with
/// [`task_files`].
pub fn parse_with(path: &Path, text: &str, files: bool) -> Plan {
    if speckit::is_speckit(text) {
        return speckit::parse(path, text, files);
    }
    let mut p = Parser::new(path, text);
    p.files = files;
    // Room for every task and verification step at once: growing the vector of a long plan
    // copied it several times over (fresh pages each time) and left it up to twice too long.
    // Every task line has a `[`: their count (a vectorised loop, cheaper than searching for
    // `- [` at line starts) bounds the tasks.
    let bytes = text.as_bytes();
    // Counted in byte-sized sums over 255-byte chunks, which the compiler vectorises.
    let brackets: usize = bytes
        .chunks(255)
        .map(|c| usize::from(c.iter().fold(0u8, |n, &b| n + u8::from(b == b'['))))
        .sum();
    let steps = memchr::memmem::find_iter(bytes, b"VERIFY").count();
    p.tasks.reserve_exact(brackets + steps);
    p.bodies.reserve_exact(brackets);
    for (i, line) in lines(text).enumerate() {
        p.line(i + 1, line.strip_suffix('\r').unwrap_or(line));
    }
    p.finish(text)
}

/// The lines of `text` as [`str::lines`] gives them, their ends found by [`find_newline`]
/// (the standard search was a tenth of the time of parsing a long plan of short lines).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    std::iter::from_fn(move || {
        let rest = text.get(start..).filter(|r| !r.is_empty())?;
        let (line, ended) = match find_newline(rest.as_bytes()) {
            Some(end) => (&rest[..end], true),
            None => (rest, false),
        };
        start += line.len() + 1;
        Some(match line.strip_suffix('\r') {
            Some(l) if ended => l,
            _ => line,
        })
    })
}

/// What the lines following the current one belong to.
#[derive(Default)]
enum Collect {
    #[default]
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

#[derive(Clone)]
struct NoteDraft {
    sequential: bool,
    expr: String,
    reason: String,
    line: usize,
}

#[derive(Default)]
struct Parser<'t> {
    path: PathBuf,
    title: Option<String>,
    phases: Vec<Phase>,
    tasks: Vec<Task>,
    /// The text being parsed.
    text: &'t str,
    /// Where each task's body lines are in `text` (from the start of the first to the end of
    /// the last), and whether it has more than one line: a body is the lines right after its
    /// task line, one run of them.
    bodies: Vec<Option<(usize, usize, bool)>>,
    verifies: Vec<VerifyDraft>,
    notes: Vec<NoteDraft>,
    pending_pipeline: Option<PipelineStart>,
    collect: Collect,
    fence: Option<Fence>,
    diagnostics: Vec<Diagnostic>,
    /// Fill in the tasks' `files`.
    files: bool,
}

impl<'t> Parser<'t> {
    fn new(path: &Path, text: &'t str) -> Self {
        Self {
            path: path.to_path_buf(),
            text,
            files: true,
            ..Self::default()
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
        // Most lines are spaces or tabs, then a visible ASCII character that opens no fence:
        // such a line is not blank and, outside a fence, not a fence (no trimming for those).
        let b = line.as_bytes();
        let plain = b
            .iter()
            .find(|&&c| c != b' ' && c != b'\t')
            .is_some_and(|&c| c.is_ascii_graphic() && c != b'`' && c != b'~');
        if !(plain && self.fence.is_none()) && self.in_fence(line) {
            return;
        }
        let indented = line.starts_with([' ', '\t']);
        let blank = !plain && line.trim().is_empty();

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
            let (in_body, marker, open_len) = (f.in_body, f.marker, f.len);
            if let Some(i) = in_body {
                self.body_line(i, line);
            }
            let len = fence_len(marker);
            if len >= open_len && trimmed[len..].trim().is_empty() {
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
                        self.body_line(i, line);
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

    /// `line` (a slice of `text`) belongs to the body of `tasks[i]`.
    fn body_line(&mut self, i: usize, line: &'t str) {
        let start = line.as_ptr() as usize - self.text.as_ptr() as usize;
        let end = start + line.len();
        let body = &mut self.bodies[i];
        *body = Some(match *body {
            Some((s, _, _)) => (s, end, true),
            None => (start, end, false),
        });
    }

    fn continuation(&mut self, n: usize, line: &'t str, blank: bool) {
        match self.collect {
            Collect::TaskBody(i) => self.body_line(i, line),
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
        let mut lines: Vec<&str> = Vec::new();
        // (Verification steps are placeholders here, made by `insert_verify_steps`.)
        for (task, body) in self.tasks.iter_mut().zip(&self.bodies) {
            if task.kind == TaskKind::Verify {
                continue;
            }
            if let Some((start, end, several)) = *body {
                let one = &text[start..end];
                task.body = if several {
                    lines.clear();
                    lines.extend(one.lines().map(|l| l.strip_suffix('\r').unwrap_or(l)));
                    dedent(&lines)
                } else {
                    // One line (most bodies): what `dedent` makes of it, without the vector.
                    let l = one.strip_suffix('\r').unwrap_or(one);
                    let t = task_line::trim_fast(l);
                    // `l.trim_start()`: what follows `t` is whitespace only.
                    let at = t.as_ptr() as usize - l.as_ptr() as usize;
                    if t.is_empty() {
                        String::new()
                    } else {
                        l[at..].to_string()
                    }
                };
            }
            if self.files {
                task.files = task_files(task);
            }
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
}

#[cfg(test)]
mod line_tests {
    use super::{dedent, lines};

    /// A one-line body (read without `dedent`'s vector) is what `dedent` makes of it.
    #[test]
    fn one_line_bodies_are_dedented_like_longer_ones() {
        for body in [
            "  x",
            "\t y  ",
            "   ",
            "  a\r",
            "    - keep `src/a.rs` green",
            " \u{a0}b",
            "  \u{a0}",
        ] {
            for after in ["\n- [ ] 1.2 Next\n", "\r\n- [ ] 1.2 Next", "\n", ""] {
                let text = format!("## Phase 1: A\n\n- [ ] 1.1 Do it\n{body}{after}");
                let plan = super::parse(std::path::Path::new("p.md"), &text);
                let line = body.strip_suffix('\r').unwrap_or(body);
                assert_eq!(plan.tasks[0].body, dedent(&[line]), "{text:?}");
            }
        }
    }

    #[test]
    fn lines_are_those_of_str_lines() {
        for text in [
            "",
            "\n",
            "\n\n",
            "a",
            "a\n",
            "a\r\n",
            "a\r\nb",
            "a\n\nb\n",
            "\r",
            "a\r",
            "a\r\r\n",
            "é\nü\r\n\r\nx",
            "- [ ] 1.1 a\n  - body\r\n## Phase 2: B",
        ] {
            let ours: Vec<&str> = lines(text).collect();
            let std: Vec<&str> = text.lines().collect();
            assert_eq!(ours, std, "{text:?}");
        }
    }
}
