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
            Event::TaskChecking { task, .. } => {
                for (id, what) in &mut self.plans[i].running {
                    if id == task && !what.starts_with("(checking)") {
                        *what = format!("(checking) {what}");
                    }
                }
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
        | Event::TaskStuck { .. }
        | Event::AgentPaused { .. }
        | Event::AgentResumed { .. }
        | Event::AgentStopped { .. }
        | Event::PlanPaused { .. }
        | Event::PlanResumed { .. }
        | Event::TaskRetried { .. }
        | Event::TaskStopped { .. }
        | Event::BudgetReached { .. }
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
        | Event::TaskChecking { plan, .. }
        | Event::TaskStuck { plan, .. }
        | Event::PlanFinished { plan, .. }
        | Event::PlanBlocked { plan, .. }
        | Event::PlanMerged { plan, .. }
        | Event::PlanMergeFailed { plan, .. }
        | Event::PlanPaused { plan }
        | Event::PlanResumed { plan }
        | Event::TaskRetried { plan, .. }
        | Event::TaskStopped { plan, .. } => Some(plan),
        Event::Note { plan, .. } | Event::BudgetReached { plan, .. } => plan.as_deref(),
        Event::RunStarted { .. }
        | Event::Interrupted { .. }
        | Event::RunFinished { .. }
        | Event::AgentPaused { .. }
        | Event::AgentResumed { .. }
        | Event::AgentStopped { .. } => None,
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
            usage,
        } => format!(
            "{} done in {} ({}{})",
            subject(plan, task),
            human_duration(*duration_ms),
            commit.as_deref().map_or_else(
                || "nothing to commit".into(),
                |c| format!("commit {}", short(c))
            ),
            usage
                .map(|u| format!(", {}", u.describe()))
                .unwrap_or_default()
        ),
        Event::TaskChecking {
            plan,
            task,
            attempt,
        } => format!("{} checking (attempt {attempt})", subject(plan, task)),
        Event::TaskStuck {
            plan,
            task,
            attempt,
            quiet_ms,
        } => format!(
            "{} stuck (attempt {attempt}): no output and no status change for {}; stopping it",
            subject(plan, task),
            human_duration(*quiet_ms)
        ),
        Event::AgentPaused {
            agent,
            reason,
            resume_in_ms,
        } => format!(
            "agent {agent} paused at a usage limit ({}); no task of it starts for {}",
            reason.lines().next().unwrap_or("").trim(),
            human_duration(*resume_in_ms)
        ),
        Event::AgentResumed { agent } => format!("agent {agent} resumed"),
        Event::PlanPaused { plan } => {
            format!("plan {plan} paused: nothing new of it starts until `orch resume {plan}`")
        }
        Event::PlanResumed { plan } => format!("plan {plan} resumed"),
        Event::TaskRetried {
            plan,
            task,
            attempt,
        } => format!(
            "{} retried: it runs again (attempt {attempt}) with a fresh set of retries",
            subject(plan, task)
        ),
        Event::TaskStopped {
            plan,
            task,
            attempt,
        } => format!(
            "{} stopped (attempt {attempt}); `orch retry {plan} {task}` runs it again",
            subject(plan, task)
        ),
        Event::AgentStopped {
            agent,
            class,
            cause,
            fix,
        } => format!(
            "agent {agent} cannot work ({}): {cause}; fix: {fix}",
            class.replace('_', " ")
        ),
        Event::BudgetReached {
            plan,
            reason,
            usage: _,
        } => format!(
            "budget of {} reached: {reason}; no new task starts",
            plan.as_deref()
                .map_or_else(|| "the run".to_string(), |p| format!("plan {p}"))
        ),
        Event::TaskFailed {
            plan,
            task,
            attempt,
            error,
            retry_in_ms,
            saved,
            log,
            usage,
        } => {
            let mut s = format!(
                "{} failed (attempt {attempt}): {error}; ",
                subject(plan, task)
            );
            if let Some(u) = usage {
                s.push_str(&format!("{}; ", u.describe()));
            }
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
    // Why each failed task failed, in the client's words (a few lines each).
    for p in &summary.plans {
        for (id, cause) in &p.causes {
            let lines: Vec<&str> = cause.lines().filter(|l| !l.trim().is_empty()).collect();
            let shown = lines.len().min(6);
            out.push_str(&format!(
                "{} {id} failed: {}\n",
                p.plan,
                lines.first().unwrap_or(&"")
            ));
            for l in &lines[1.min(shown)..shown] {
                out.push_str(&format!("    {l}\n"));
            }
        }
    }
    for a in &summary.agents_stopped {
        out.push_str(&format!(
            "agent {} cannot work: {}\n    fix: {}\n",
            a.agent,
            a.cause.lines().next().unwrap_or("").trim(),
            a.fix
        ));
    }
    if let Some(why) = &summary.budget_reached {
        out.push_str(&format!("budget of the run reached: {why}\n"));
    }
    let spent =
        |u: &crate::agent_output::Usage| u.tokens() > 0 || u.cost_micro_usd.unwrap_or(0) > 0;
    if spent(&summary.usage) {
        let per_plan: Vec<String> = summary
            .plans
            .iter()
            .filter(|p| spent(&p.usage))
            .map(|p| format!("{} {}", p.plan, p.usage.describe()))
            .collect();
        out.push_str(&format!(
            "used in this run: {} (plans, all runs: {})\n",
            summary.usage.describe(),
            per_plan.join("; ")
        ));
    }
    if summary.notify_failures > 0 {
        out.push_str(&format!(
            "notifications: {} failed (see the notes above)\n",
            if summary.notify_failures == 1 {
                "1 delivery".to_string()
            } else {
                format!("{} deliveries", summary.notify_failures)
            }
        ));
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
mod tests;
