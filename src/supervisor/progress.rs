//! How `orch up` shows a run, one [`Event`] at a time: progress bars on a terminal, one plain
//! timestamped line per event otherwise, or one JSON object per line with `--json`.
//!
//! Where the output goes: bars and the lines printed above them go to stderr (the terminal);
//! plain lines and JSON go to stdout. A closed stdout (`orch up | head`) stops the output, never
//! the run.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{Local, SecondsFormat, Utc};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::event::{Event, PlanOutcome, RunSummary, Stamped};

/// How [`Progress`] renders events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// One bar per active plan and one overall bar, on stderr.
    Bars,
    /// One timestamped line per event, on stdout.
    Plain,
    /// One JSON object per event and line (`{"at": …, "event": …, …}`), on stdout.
    Json,
}

impl ProgressMode {
    /// Bars when stderr is a terminal, else Plain; Json when asked.
    pub fn detect(json: bool) -> Self {
        if json {
            Self::Json
        } else if io::stderr().is_terminal() {
            Self::Bars
        } else {
            Self::Plain
        }
    }
}

/// A plan of the run as the display starts: its name and how many of its tasks (and
/// verification steps) there are and are already finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanInfo {
    pub name: String,
    pub total: usize,
    pub done: usize,
}

/// What the display knows about one plan.
struct PlanState {
    name: String,
    total: usize,
    done: usize,
    /// Running tasks as (id, description), in start order.
    running: Vec<(String, String)>,
    /// The plan's bar while it is active (Bars mode only).
    bar: Option<ProgressBar>,
}

/// The bars of Bars mode.
struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    plan_style: ProgressStyle,
}

/// Renders the events of a run. See [`ProgressMode`].
pub struct Progress {
    mode: ProgressMode,
    out: Box<dyn Write + Send>,
    plans: Vec<PlanState>,
    bars: Option<Bars>,
    /// Paths under this directory are shown relative to it.
    cwd: Option<PathBuf>,
    /// The summary was printed; later `finish` calls print nothing.
    finished: bool,
    /// A write failed (closed pipe): print nothing more.
    broken: bool,
}

impl Progress {
    /// A display writing to stderr (Bars) or stdout (Plain, Json).
    pub fn new(mode: ProgressMode, plans: &[PlanInfo]) -> Self {
        let (out, target): (Box<dyn Write + Send>, _) = match mode {
            ProgressMode::Bars => (Box::new(io::stderr()), ProgressDrawTarget::stderr()),
            ProgressMode::Plain | ProgressMode::Json => {
                (Box::new(io::stdout()), ProgressDrawTarget::hidden())
            }
        };
        Self::build(mode, plans, out, target)
    }

    /// A display writing its lines to `out`; in Bars mode the bars themselves are not drawn
    /// (for tests).
    pub fn with_writer(mode: ProgressMode, plans: &[PlanInfo], out: Box<dyn Write + Send>) -> Self {
        Self::build(mode, plans, out, ProgressDrawTarget::hidden())
    }

    fn build(
        mode: ProgressMode,
        plans: &[PlanInfo],
        out: Box<dyn Write + Send>,
        target: ProgressDrawTarget,
    ) -> Self {
        let plans: Vec<PlanState> = plans
            .iter()
            .map(|p| PlanState {
                name: p.name.clone(),
                total: p.total,
                done: p.done.min(p.total),
                running: Vec::new(),
                bar: None,
            })
            .collect();
        let bars = (mode == ProgressMode::Bars).then(|| Bars::new(&plans, target));
        Self {
            mode,
            out,
            plans,
            bars,
            cwd: std::env::current_dir().ok(),
            finished: false,
            broken: false,
        }
    }

    /// Renders one event. `RunFinished` is the same as [`finish`](Self::finish).
    pub fn event(&mut self, e: &Event) {
        if let Event::RunFinished { summary } = e {
            self.finish(summary);
            return;
        }
        self.track(e);
        match self.mode {
            ProgressMode::Json => self.json_line(e),
            ProgressMode::Plain => {
                if let Some(text) = describe(e, self.cwd.as_deref()) {
                    let line = format!("{} {text}", Local::now().format("%H:%M:%S"));
                    self.write_line(&line);
                }
            }
            ProgressMode::Bars => {
                if shown_above_bars(e)
                    && let Some(text) = describe(e, self.cwd.as_deref())
                {
                    self.write_line(&text);
                }
            }
        }
    }

    /// Clears the bars and prints the final summary (Json: the `run_finished` event line only).
    /// Prints once: later calls do nothing.
    pub fn finish(&mut self, summary: &RunSummary) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.clear_bars();
        match self.mode {
            ProgressMode::Json => self.json_line(&Event::RunFinished {
                summary: summary.clone(),
            }),
            ProgressMode::Plain | ProgressMode::Bars => {
                let text = summary_table(summary, self.cwd.as_deref());
                self.write_line(text.trim_end());
            }
        }
    }

    /// Updates the per-plan counts and, in Bars mode, the bars.
    fn track(&mut self, e: &Event) {
        let Some(plan) = event_plan(e) else {
            if let Event::Interrupted { immediate } = e
                && let Some(b) = &self.bars
            {
                b.overall.set_message(if *immediate {
                    "stopping agents"
                } else {
                    "interrupted: finishing running tasks"
                });
            }
            return;
        };
        let Some(i) = self.plans.iter().position(|p| p.name == plan) else {
            return;
        };
        match e {
            Event::PlanStarted { .. } => self.ensure_bar(i),
            Event::TaskStarted {
                task, description, ..
            } => {
                let p = &mut self.plans[i];
                p.running.retain(|(id, _)| id != task);
                p.running.push((task.clone(), description.clone()));
                self.ensure_bar(i);
            }
            Event::TaskAdopted {
                task, pid, job_id, ..
            } => {
                let p = &mut self.plans[i];
                p.running.retain(|(id, _)| id != task);
                p.running.push((
                    task.clone(),
                    format!("(adopted, {})", runner(*pid, job_id.as_deref())),
                ));
                self.ensure_bar(i);
            }
            Event::TaskFinished { task, .. } => {
                let p = &mut self.plans[i];
                p.running.retain(|(id, _)| id != task);
                p.done = (p.done + 1).min(p.total);
            }
            Event::TaskFailed { task, .. } => {
                self.plans[i].running.retain(|(id, _)| id != task);
            }
            Event::PlanFinished { .. } => {
                let p = &mut self.plans[i];
                p.running.clear();
                p.done = p.total;
                self.remove_bar(i);
            }
            Event::PlanBlocked { .. } => {
                self.plans[i].running.clear();
                self.remove_bar(i);
            }
            _ => {}
        }
        self.refresh_bars(i);
    }

    fn ensure_bar(&mut self, i: usize) {
        let Some(b) = &self.bars else { return };
        let p = &mut self.plans[i];
        if p.bar.is_none() {
            let bar = ProgressBar::new(p.total as u64)
                .with_style(b.plan_style.clone())
                .with_prefix(p.name.clone())
                .with_position(p.done as u64);
            p.bar = Some(b.multi.insert_before(&b.overall, bar));
        }
    }

    fn remove_bar(&mut self, i: usize) {
        if let (Some(b), Some(bar)) = (&self.bars, self.plans[i].bar.take()) {
            bar.finish_and_clear();
            b.multi.remove(&bar);
        }
    }

    fn refresh_bars(&self, i: usize) {
        let Some(b) = &self.bars else { return };
        let p = &self.plans[i];
        if let Some(bar) = &p.bar {
            bar.set_position(p.done as u64);
            bar.set_message(running_message(&p.running));
        }
        let done: usize = self.plans.iter().map(|p| p.done).sum();
        let running: usize = self.plans.iter().map(|p| p.running.len()).sum();
        b.overall.set_position(done as u64);
        b.overall.set_message(format!("{running} running"));
    }

    fn clear_bars(&mut self) {
        let Some(b) = &self.bars else { return };
        for p in &mut self.plans {
            if let Some(bar) = p.bar.take() {
                bar.finish_and_clear();
                b.multi.remove(&bar);
            }
        }
        b.overall.finish_and_clear();
        let _ = b.multi.clear();
    }

    fn json_line(&mut self, e: &Event) {
        let stamped = Stamped {
            at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            event: e,
        };
        match serde_json::to_string(&stamped) {
            Ok(line) => self.write_line(&line),
            Err(err) => self.write_line(&format!(
                r#"{{"event":"error","message":"cannot serialize an event: {err}"}}"#
            )),
        }
    }

    /// Writes one line and flushes; in Bars mode above the bars. After a failed write (a closed
    /// pipe) writes nothing more.
    fn write_line(&mut self, text: &str) {
        if self.broken {
            return;
        }
        let out = &mut self.out;
        let mut write = || -> io::Result<()> {
            out.write_all(text.as_bytes())?;
            out.write_all(b"\n")?;
            out.flush()
        };
        let result = match &self.bars {
            Some(b) => b.multi.suspend(write),
            None => write(),
        };
        if result.is_err() {
            self.broken = true;
        }
    }
}

impl Drop for Progress {
    /// Leaves no half-drawn bars behind when the run ends without [`Progress::finish`].
    fn drop(&mut self) {
        self.clear_bars();
    }
}

impl Bars {
    fn new(plans: &[PlanState], target: ProgressDrawTarget) -> Self {
        let width = plans
            .iter()
            .map(|p| p.name.chars().count())
            .max()
            .unwrap_or(0)
            .max("all".len());
        let template = format!("{{prefix:<{width}}}  [{{bar:30}}] {{pos}}/{{len}}  {{wide_msg}}");
        let plan_style = style(&template);
        let overall_style = style(&format!(
            "{{prefix:<{width}}}  [{{bar:30}}] {{pos}}/{{len}}  {{msg}}  {{elapsed}}"
        ));
        let multi = MultiProgress::with_draw_target(target);
        let total: usize = plans.iter().map(|p| p.total).sum();
        let done: usize = plans.iter().map(|p| p.done).sum();
        let overall = multi.add(
            ProgressBar::new(total as u64)
                .with_style(overall_style)
                .with_prefix("all")
                .with_position(done as u64)
                .with_message("0 running"),
        );
        // Keeps the elapsed time moving while nothing happens.
        overall.enable_steady_tick(Duration::from_secs(1));
        Self {
            multi,
            overall,
            plan_style,
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// The message of a plan's bar: `2.1 Add login form`, or the ids when several run.
fn running_message(running: &[(String, String)]) -> String {
    match running {
        [] => "waiting".into(),
        [(id, description)] if id.is_empty() => description.clone(),
        [(id, description)] => format!("{id} {description}"),
        many => many
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Events worth a line above the bars (the bars show the rest).
fn shown_above_bars(e: &Event) -> bool {
    match e {
        Event::SetupFinished { ok, .. } => !ok,
        Event::TaskFailed { .. }
        | Event::PlanFinished { .. }
        | Event::PlanBlocked { .. }
        | Event::PlanMerged { .. }
        | Event::PlanMergeFailed { .. }
        | Event::Interrupted { .. }
        | Event::Note { .. } => true,
        _ => false,
    }
}

/// The plan an event is about, if any.
fn event_plan(e: &Event) -> Option<&str> {
    match e {
        Event::PlanStarted { plan, .. }
        | Event::UpstreamMerged { plan, .. }
        | Event::SetupFinished { plan, .. }
        | Event::TaskStarted { plan, .. }
        | Event::TaskAdopted { plan, .. }
        | Event::TaskFinished { plan, .. }
        | Event::TaskFailed { plan, .. }
        | Event::PlanFinished { plan, .. }
        | Event::PlanBlocked { plan, .. }
        | Event::PlanMerged { plan, .. }
        | Event::PlanMergeFailed { plan, .. } => Some(plan),
        Event::Note { plan, .. } => plan.as_deref(),
        Event::RunStarted { .. } | Event::Interrupted { .. } | Event::RunFinished { .. } => None,
    }
}

/// One event as a line of text (without the time); `None` for `RunFinished` (the summary).
pub(crate) fn describe(e: &Event, cwd: Option<&Path>) -> Option<String> {
    let text = match e {
        Event::RunStarted { plans, max_agents } => format!(
            "run started: {} ({}), at most {max_agents} agent{} at a time",
            count(plans.len(), "plan"),
            plans.join(", "),
            plural(*max_agents)
        ),
        Event::PlanStarted {
            plan,
            branch,
            worktree,
            base,
            created,
        } => format!(
            "{plan} worktree {} at {} on branch {branch} (base {})",
            if *created { "created" } else { "reused" },
            show(worktree, cwd),
            short(base)
        ),
        Event::UpstreamMerged {
            plan,
            from,
            upstream_commit,
            commit,
        } => match commit {
            Some(c) => format!(
                "{plan} merged {from} ({}) into its branch (commit {})",
                short(upstream_commit),
                short(c)
            ),
            None => format!(
                "{plan} already contains {from} ({})",
                short(upstream_commit)
            ),
        },
        Event::SetupFinished { plan, ok, log } => format!(
            "{plan} setup {}; log {}",
            if *ok { "done" } else { "failed" },
            show(log, cwd)
        ),
        Event::TaskStarted {
            plan,
            task,
            description,
            attempt,
            pid,
            job_id,
            ..
        } => format!(
            "{} started (attempt {attempt}, {}): {description}",
            subject(plan, task),
            runner(*pid, job_id.as_deref())
        ),
        Event::TaskAdopted {
            plan,
            task,
            pid,
            job_id,
        } => format!(
            "{} adopted ({}, still running from an earlier run)",
            subject(plan, task),
            runner(*pid, job_id.as_deref())
        ),
        Event::TaskFinished {
            plan,
            task,
            commit,
            duration_ms,
        } => format!(
            "{} done in {} ({})",
            subject(plan, task),
            human_duration(*duration_ms),
            commit.as_deref().map_or_else(
                || "nothing to commit".into(),
                |c| format!("commit {}", short(c))
            )
        ),
        Event::TaskFailed {
            plan,
            task,
            attempt,
            error,
            retry_in_ms,
            saved,
            log,
        } => {
            let mut s = format!(
                "{} failed (attempt {attempt}): {error}; ",
                subject(plan, task)
            );
            match retry_in_ms {
                Some(ms) => s.push_str(&format!("retry in {}; ", human_duration(*ms))),
                None => s.push_str("no retry; "),
            }
            if let Some(saved) = saved {
                s.push_str(&format!("changes saved in {saved}; "));
            }
            s.push_str(&format!("log {}", show(log, cwd)));
            s
        }
        Event::PlanFinished { plan, completed } => {
            format!("{plan} finished: {} completed", count(*completed, "task"))
        }
        Event::PlanBlocked { plan, reason } => format!("{plan} blocked: {reason}"),
        Event::PlanMerged {
            plan,
            target,
            commit: Some(c),
        } => format!("{plan} merged into {target} ({})", &c[..c.len().min(7)]),
        Event::PlanMerged {
            plan,
            target,
            commit: None,
        } => format!("{plan} was already merged into {target}"),
        Event::PlanMergeFailed {
            plan,
            result,
            reason,
        } => format!("{plan} not merged ({result}): {reason}"),
        Event::Interrupted { immediate: false } => {
            "interrupted: letting running tasks finish (Ctrl-C again to stop them now)".into()
        }
        Event::Interrupted { immediate: true } => {
            "interrupted again: stopping running agents now".into()
        }
        Event::Note {
            plan: Some(plan),
            message,
        } => format!("{plan}: {message}"),
        Event::Note {
            plan: None,
            message,
        } => format!("note: {message}"),
        Event::RunFinished { .. } => return None,
    };
    Some(one_line(&text))
}

/// The end-of-run table: every plan's outcome, tasks, failed tasks, log directory and reason.
pub(crate) fn summary_table(summary: &RunSummary, cwd: Option<&Path>) -> String {
    let header = ["plan", "outcome", "tasks", "failed", "logs", "reason"];
    let row = |p: &PlanOutcome| -> [String; 6] {
        [
            p.plan.clone(),
            p.outcome.clone(),
            format!("{}/{}", p.completed, p.total),
            if p.failed_tasks.is_empty() {
                "-".into()
            } else {
                p.failed_tasks.join(", ")
            },
            show(&p.log_dir, cwd),
            p.reason.as_deref().map(one_line).unwrap_or_default(),
        ]
    };
    let rows: Vec<[String; 6]> = summary.plans.iter().map(row).collect();
    // The reason column only when some plan has one.
    let columns = if rows.iter().any(|r| !r[5].is_empty()) {
        6
    } else {
        5
    };
    let mut widths = [0usize; 6];
    for r in std::iter::once(&header.map(String::from)).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    out.push_str(&format!(
        "run {} after {}\n",
        if summary.interrupted {
            "interrupted"
        } else {
            "finished"
        },
        human_duration(summary.elapsed_ms)
    ));
    let mut push_row = |cells: &[String]| {
        let line: Vec<String> = cells[..columns]
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    };
    push_row(&header.map(String::from));
    for r in &rows {
        push_row(r);
    }
    out
}

/// `plan task`, or just `plan` in plan mode (no task id).
/// `pid 4242`, or `job 17` for a batch job.
fn runner(pid: u32, job: Option<&str>) -> String {
    match job {
        Some(job) => format!("job {job}"),
        None => format!("pid {pid}"),
    }
}

fn subject(plan: &str, task: &str) -> String {
    if task.is_empty() {
        plan.to_string()
    } else {
        format!("{plan} {task}")
    }
}

/// The first 7 characters of a commit id.
fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", plural(n))
}

/// A path relative to `cwd` when it is inside it.
fn show(path: &Path, cwd: Option<&Path>) -> String {
    cwd.and_then(|c| path.strip_prefix(c).ok())
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Newlines become `; ` so that every event stays one line.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `850ms`, `3.2s`, `4m05s`, `1h02m`.
pub(crate) fn human_duration(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{}.{}s", ms / 1_000, ms % 1_000 / 100)
    } else if ms < 3_600_000 {
        let s = ms / 1_000;
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let m = ms / 60_000;
        format!("{}h{:02}m", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    use super::*;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().expect("lock").clone())
                .expect("utf-8")
                .lines()
                .map(String::from)
                .collect()
        }
    }

    /// A closed pipe: every write fails with EPIPE.
    struct Closed(Arc<Mutex<usize>>);

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            *self.0.lock().expect("lock") += 1;
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
    }

    fn plans() -> Vec<PlanInfo> {
        vec![
            PlanInfo {
                name: "auth".into(),
                total: 20,
                done: 2,
            },
            PlanInfo {
                name: "api".into(),
                total: 4,
                done: 0,
            },
        ]
    }

    fn summary() -> RunSummary {
        RunSummary {
            plans: vec![
                PlanOutcome {
                    merge: None,
                    plan: "auth".into(),
                    outcome: "completed".into(),
                    completed: 20,
                    total: 20,
                    failed_tasks: vec![],
                    reason: None,
                    branch: "orch/auth".into(),
                    worktree: ".orch/worktrees/auth".into(),
                    log_dir: ".orch/logs/auth".into(),
                },
                PlanOutcome {
                    merge: None,
                    plan: "api".into(),
                    outcome: "blocked".into(),
                    completed: 1,
                    total: 4,
                    failed_tasks: vec!["1.2".into(), "2.1".into()],
                    reason: Some("task `1.2` failed after 3 attempts".into()),
                    branch: "orch/api".into(),
                    worktree: ".orch/worktrees/api".into(),
                    log_dir: ".orch/logs/api".into(),
                },
            ],
            elapsed_ms: 65_000,
            interrupted: false,
        }
    }

    /// One event of every kind (but `RunFinished`), with the plain line each renders to.
    fn events() -> Vec<(Event, &'static str)> {
        vec![
            (
                Event::RunStarted {
                    plans: vec!["auth".into(), "api".into()],
                    max_agents: 4,
                },
                "run started: 2 plans (auth, api), at most 4 agents at a time",
            ),
            (
                Event::PlanStarted {
                    plan: "auth".into(),
                    branch: "orch/auth".into(),
                    worktree: ".orch/worktrees/auth".into(),
                    base: "0123456789abcdef".into(),
                    created: true,
                },
                "auth worktree created at .orch/worktrees/auth on branch orch/auth (base 0123456)",
            ),
            (
                Event::UpstreamMerged {
                    plan: "api".into(),
                    from: "auth:1".into(),
                    upstream_commit: "feedfacecafe".into(),
                    commit: Some("abcdef0123".into()),
                },
                "api merged auth:1 (feedfac) into its branch (commit abcdef0)",
            ),
            (
                Event::UpstreamMerged {
                    plan: "api".into(),
                    from: "auth".into(),
                    upstream_commit: "feedfacecafe".into(),
                    commit: None,
                },
                "api already contains auth (feedfac)",
            ),
            (
                Event::SetupFinished {
                    plan: "api".into(),
                    ok: false,
                    log: ".orch/logs/api/setup.log".into(),
                },
                "api setup failed; log .orch/logs/api/setup.log",
            ),
            (
                Event::TaskStarted {
                    plan: "auth".into(),
                    task: "1.2".into(),
                    kind: "task".into(),
                    description: "Add login form".into(),
                    attempt: 1,
                    pid: 4242,
                    log: ".orch/logs/auth/1.2.log".into(),
                    job_id: None,
                },
                "auth 1.2 started (attempt 1, pid 4242): Add login form",
            ),
            (
                Event::TaskAdopted {
                    plan: "auth".into(),
                    task: "1.3".into(),
                    pid: 77,
                    job_id: None,
                },
                "auth 1.3 adopted (pid 77, still running from an earlier run)",
            ),
            (
                Event::TaskFinished {
                    plan: "auth".into(),
                    task: "1.2".into(),
                    commit: Some("abc1234def".into()),
                    duration_ms: 3_200,
                },
                "auth 1.2 done in 3.2s (commit abc1234)",
            ),
            (
                Event::TaskFailed {
                    plan: "auth".into(),
                    task: "1.3".into(),
                    attempt: 1,
                    error: "exit status 1".into(),
                    retry_in_ms: Some(5_000),
                    saved: Some("refs/orch/saved/auth/1.3-1".into()),
                    log: ".orch/logs/auth/1.3.log".into(),
                },
                "auth 1.3 failed (attempt 1): exit status 1; retry in 5.0s; \
                 changes saved in refs/orch/saved/auth/1.3-1; log .orch/logs/auth/1.3.log",
            ),
            (
                Event::TaskFailed {
                    plan: "api".into(),
                    task: String::new(),
                    attempt: 3,
                    error: "timed out\nafter 10m".into(),
                    retry_in_ms: None,
                    saved: None,
                    log: ".orch/logs/api/plan.log".into(),
                },
                "api failed (attempt 3): timed out; after 10m; no retry; log .orch/logs/api/plan.log",
            ),
            (
                Event::PlanFinished {
                    plan: "auth".into(),
                    completed: 20,
                },
                "auth finished: 20 tasks completed",
            ),
            (
                Event::PlanBlocked {
                    plan: "api".into(),
                    reason: "task `1.2` failed".into(),
                },
                "api blocked: task `1.2` failed",
            ),
            (
                Event::Interrupted { immediate: false },
                "interrupted: letting running tasks finish (Ctrl-C again to stop them now)",
            ),
            (
                Event::Interrupted { immediate: true },
                "interrupted again: stopping running agents now",
            ),
            (
                Event::Note {
                    plan: Some("api".into()),
                    message: "agent wrote outside its worktree".into(),
                },
                "api: agent wrote outside its worktree",
            ),
            (
                Event::Note {
                    plan: None,
                    message: "3 plans skipped".into(),
                },
                "note: 3 plans skipped",
            ),
        ]
    }

    #[test]
    fn plain_prints_one_timestamped_line_per_event() {
        let buf = Shared::default();
        let mut p = Progress::with_writer(ProgressMode::Plain, &plans(), Box::new(buf.clone()));
        let events = events();
        for (e, _) in &events {
            p.event(e);
        }
        let lines = buf.lines();
        assert_eq!(lines.len(), events.len(), "{lines:#?}");
        for (line, (_, want)) in lines.iter().zip(&events) {
            let (time, text) = line.split_once(' ').expect("time, then text");
            assert!(
                chrono::NaiveTime::parse_from_str(time, "%H:%M:%S").is_ok(),
                "{line}"
            );
            assert_eq!(text, *want);
        }
    }

    #[test]
    fn plain_task_finished_without_commit_and_plan_mode_task() {
        let e = Event::TaskFinished {
            plan: "docs".into(),
            task: String::new(),
            commit: None,
            duration_ms: 125_000,
        };
        assert_eq!(
            describe(&e, None).as_deref(),
            Some("docs done in 2m05s (nothing to commit)")
        );
    }

    #[test]
    fn paths_inside_the_current_directory_are_shown_relative() {
        let e = Event::SetupFinished {
            plan: "a".into(),
            ok: true,
            log: "/repo/.orch/logs/a/setup.log".into(),
        };
        assert_eq!(
            describe(&e, Some(Path::new("/repo"))).as_deref(),
            Some("a setup done; log .orch/logs/a/setup.log")
        );
        assert_eq!(
            describe(&e, Some(Path::new("/elsewhere"))).as_deref(),
            Some("a setup done; log /repo/.orch/logs/a/setup.log")
        );
    }

    #[test]
    fn json_prints_one_parseable_line_per_event_with_the_contract_fields() {
        let buf = Shared::default();
        let mut p = Progress::with_writer(ProgressMode::Json, &plans(), Box::new(buf.clone()));
        let events = events();
        for (e, _) in &events {
            p.event(e);
        }
        let lines = buf.lines();
        assert_eq!(lines.len(), events.len());
        let parsed: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        for (v, (e, _)) in parsed.iter().zip(&events) {
            let at = v["at"].as_str().expect("at");
            let t = chrono::DateTime::parse_from_rfc3339(at).expect("rfc3339");
            assert_eq!(t.offset().local_minus_utc(), 0, "UTC: {at}");
            assert!(at.ends_with('Z') && at.len() == 24, "millis: {at}");
            // The rest of the object is the event as serialized.
            let mut rest = v.clone();
            rest.as_object_mut().expect("object").remove("at");
            assert_eq!(rest, serde_json::to_value(e).expect("event"));
        }
        let kinds: Vec<&str> = parsed
            .iter()
            .map(|v| v["event"].as_str().expect("event"))
            .collect();
        assert_eq!(
            kinds,
            [
                "run_started",
                "plan_started",
                "upstream_merged",
                "upstream_merged",
                "setup_finished",
                "task_started",
                "task_adopted",
                "task_finished",
                "task_failed",
                "task_failed",
                "plan_finished",
                "plan_blocked",
                "interrupted",
                "interrupted",
                "note",
                "note",
            ]
        );
        let started = &parsed[5];
        assert_eq!(started["plan"], "auth");
        assert_eq!(started["task"], "1.2");
        assert_eq!(started["attempt"], 1);
        assert_eq!(started["pid"], 4242);
        let finished = &parsed[7];
        assert_eq!(finished["commit"], "abc1234def");
        assert_eq!(finished["duration_ms"], 3200);
        let failed = &parsed[8];
        assert_eq!(
            (
                &failed["plan"],
                &failed["task"],
                &failed["attempt"],
                &failed["error"],
                &failed["retry_in_ms"],
                &failed["log"],
            ),
            (
                &Value::from("auth"),
                &Value::from("1.3"),
                &Value::from(1),
                &Value::from("exit status 1"),
                &Value::from(5000),
                &Value::from(".orch/logs/auth/1.3.log"),
            )
        );
        assert_eq!(parsed[9]["retry_in_ms"], Value::Null);
    }

    #[test]
    fn json_finish_prints_only_the_run_finished_line_once() {
        let buf = Shared::default();
        let mut p = Progress::with_writer(ProgressMode::Json, &plans(), Box::new(buf.clone()));
        let s = summary();
        p.event(&Event::RunFinished { summary: s.clone() });
        p.finish(&s);
        let lines = buf.lines();
        assert_eq!(lines.len(), 1, "{lines:#?}");
        let v: Value = serde_json::from_str(&lines[0]).expect("json");
        assert_eq!(v["event"], "run_finished");
        assert_eq!(v["summary"]["elapsed_ms"], 65_000);
        assert_eq!(v["summary"]["plans"][1]["failed_tasks"][0], "1.2");
        assert_eq!(v["summary"]["plans"][1]["log_dir"], ".orch/logs/api");
    }

    #[test]
    fn summary_table_lists_every_plan_with_its_log_dir() {
        let buf = Shared::default();
        let mut p = Progress::with_writer(ProgressMode::Plain, &plans(), Box::new(buf.clone()));
        p.finish(&summary());
        p.finish(&summary());
        assert_eq!(
            buf.lines(),
            [
                "run finished after 1m05s",
                "plan  outcome    tasks  failed    logs             reason",
                "auth  completed  20/20  -         .orch/logs/auth",
                "api   blocked    1/4    1.2, 2.1  .orch/logs/api   task `1.2` failed after 3 attempts",
            ]
        );
    }

    #[test]
    fn summary_table_without_reasons_has_no_reason_column() {
        let mut s = summary();
        s.plans.truncate(1);
        s.interrupted = true;
        s.elapsed_ms = 1_500;
        assert_eq!(
            summary_table(&s, None),
            "run interrupted after 1.5s\n\
             plan  outcome    tasks  failed  logs\n\
             auth  completed  20/20  -       .orch/logs/auth\n"
        );
    }

    #[test]
    fn bars_track_active_plans_and_print_only_notable_lines() {
        let buf = Shared::default();
        let mut p = Progress::with_writer(ProgressMode::Bars, &plans(), Box::new(buf.clone()));
        for (e, _) in events() {
            p.event(&e);
            if matches!(e, Event::TaskStarted { .. }) {
                let auth = &p.plans[0];
                assert!(auth.bar.is_some(), "a started plan has a bar");
                assert!(p.plans[1].bar.is_none(), "a plan not started has none");
                assert_eq!(running_message(&auth.running), "1.2 Add login form");
            }
            if matches!(e, Event::TaskFinished { .. }) {
                assert_eq!(p.plans[0].done, 3);
                let overall = &p.bars.as_ref().expect("bars").overall;
                assert_eq!(overall.position(), 3);
                assert_eq!(overall.length(), Some(24));
            }
        }
        assert!(
            p.plans.iter().all(|pl| pl.bar.is_none()),
            "finished or blocked"
        );
        assert_eq!(p.plans[0].done, 20);
        p.finish(&summary());
        let lines = buf.lines();
        assert_eq!(
            lines[..8],
            [
                "api setup failed; log .orch/logs/api/setup.log",
                "auth 1.3 failed (attempt 1): exit status 1; retry in 5.0s; \
                 changes saved in refs/orch/saved/auth/1.3-1; log .orch/logs/auth/1.3.log",
                "api failed (attempt 3): timed out; after 10m; no retry; log .orch/logs/api/plan.log",
                "auth finished: 20 tasks completed",
                "api blocked: task `1.2` failed",
                "interrupted: letting running tasks finish (Ctrl-C again to stop them now)",
                "interrupted again: stopping running agents now",
                "api: agent wrote outside its worktree",
            ]
        );
        assert_eq!(lines[9], "run finished after 1m05s");
        assert_eq!(lines.len(), 13, "{lines:#?}");
    }

    #[test]
    fn running_message_names_every_running_task() {
        let r = |v: &[(&str, &str)]| {
            running_message(
                &v.iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(r(&[]), "waiting");
        assert_eq!(r(&[("", "Whole plan")]), "Whole plan");
        assert_eq!(r(&[("2.1", "A"), ("2.3", "B")]), "2.1, 2.3");
    }

    #[test]
    fn a_closed_pipe_stops_output_without_panicking() {
        let writes = Arc::new(Mutex::new(0));
        for mode in [ProgressMode::Plain, ProgressMode::Json, ProgressMode::Bars] {
            *writes.lock().expect("lock") = 0;
            let mut p =
                Progress::with_writer(mode, &plans(), Box::new(Closed(Arc::clone(&writes))));
            for (e, _) in events() {
                p.event(&e);
            }
            p.finish(&summary());
            assert_eq!(*writes.lock().expect("lock"), 1, "{mode:?}: one failed try");
        }
    }

    #[test]
    fn durations_read_naturally() {
        for (ms, want) in [
            (0, "0ms"),
            (850, "850ms"),
            (3_200, "3.2s"),
            (59_999, "59.9s"),
            (65_000, "1m05s"),
            (3_599_000, "59m59s"),
            (3_720_000, "1h02m"),
        ] {
            assert_eq!(human_duration(ms), want, "{ms}");
        }
    }
}
