//! How `orch up` shows a run, one [`Event`] at a time: progress bars on a terminal, one plain
//! timestamped line per event otherwise, or one JSON object per line with `--json`.
//!
//! Where the output goes: bars and the lines printed above them go to stderr (the terminal);
//! plain lines and JSON go to stdout. A closed stdout (`orch up | head`) stops the output, never
//! the run.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use chrono::Local;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::event::{Event, RunSummary, Stamped};
use crate::merge::resolve::ResolveNote;

mod text;

use text::{describe, runner, summary_table};

/// How [`Progress`] renders events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProgressMode {
    /// One bar per active plan and one overall bar, on stderr.
    Bars,
    /// One timestamped line per event, on stdout.
    Plain,
    /// One JSON object per event and line (`{"at": …, "event": …, …}`), on stdout.
    Json,
}

impl ProgressMode {
    /// Bars when stderr is a terminal, else Plain; Json when asked.
    pub(crate) fn detect(json: bool) -> Self {
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
pub(crate) struct PlanInfo {
    pub(crate) name: String,
    pub(crate) total: usize,
    pub(crate) done: usize,
}

/// What the display knows about one plan.
#[derive(Default)]
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
pub(crate) struct Progress {
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
    pub(crate) fn new(mode: ProgressMode, plans: &[PlanInfo]) -> Self {
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
    #[cfg(test)]
    pub(crate) fn with_writer(
        mode: ProgressMode,
        plans: &[PlanInfo],
        out: Box<dyn Write + Send>,
    ) -> Self {
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
                ..PlanState::default()
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
    pub(crate) fn event(&mut self, e: &Event) {
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
    pub(crate) fn finish(&mut self, summary: &RunSummary) {
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
        let i = match self.plans.iter().position(|p| p.name == plan) {
            Some(i) => i,
            // A plan added to the manifest during the run: its tasks are counted as they end.
            None if matches!(e, Event::PlanStarted { .. } | Event::TaskStarted { .. }) => {
                self.plans.push(PlanState {
                    name: plan.to_string(),
                    ..PlanState::default()
                });
                self.plans.len() - 1
            }
            None => return,
        };
        match e {
            Event::PlanStarted { .. } => self.ensure_bar(i),
            Event::TaskStarted {
                task, description, ..
            } => self.running(i, task, description.clone()),
            Event::TaskAdopted {
                task, pid, job_id, ..
            } => {
                let what = format!("(adopted, {})", runner(*pid, job_id.as_deref()));
                self.running(i, task, what);
            }
            Event::TaskFinished { task, .. } => {
                let p = &mut self.plans[i];
                p.running.retain(|(id, _)| id != task);
                p.done += 1;
                // A task added during the run.
                p.total = p.total.max(p.done);
            }
            Event::TaskFailed { task, .. } => {
                self.plans[i].running.retain(|(id, _)| id != task);
            }
            Event::TaskOnHost { task, host, .. } => {
                // The bar's line of a running task names its host.
                for (id, what) in &mut self.plans[i].running {
                    if id == task {
                        let rest = what.split_once("] ").filter(|_| what.starts_with("[on "));
                        let rest = rest.map_or(what.as_str(), |(_, r)| r).to_string();
                        *what = format!("[on {}] {rest}", host.escape_debug());
                    }
                }
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

    /// Task `task` of plan `i` runs, shown as `what`.
    fn running(&mut self, i: usize, task: &str, what: String) {
        let p = &mut self.plans[i];
        p.running.retain(|(id, _)| id != task);
        p.running.push((task.to_string(), what));
        self.ensure_bar(i);
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
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
            bar.set_message(running_message(&p.running));
        }
        let done: usize = self.plans.iter().map(|p| p.done).sum();
        let running: usize = self.plans.iter().map(|p| p.running.len()).sum();
        b.overall.set_position(done as u64);
        b.overall.set_message(format!("{running} running"));
    }

    fn clear_bars(&mut self) {
        (0..self.plans.len()).for_each(|i| self.remove_bar(i));
        let Some(b) = &self.bars else { return };
        b.overall.finish_and_clear();
        let _ = b.multi.clear();
    }

    fn json_line(&mut self, e: &Event) {
        match serde_json::to_string(&Stamped::now(e)) {
            Ok(line) => self.write_line(&line),
            Err(err) => self.write_line(&format!(
                r#"{{"event":"error","message":"cannot serialize an event: {err}"}}"#
            )),
        }
    }

    /// Writes one line and flushes; in Bars mode above the bars. After a failed write (a closed
    /// pipe) writes nothing more. Every line goes out escaped, whatever of an agent's words it
    /// holds (a cause, a note, a task's text): control characters but newline and tab as
    /// `\u{1b}`, or in JSON as `\u009b` where JSON itself would leave them raw.
    fn write_line(&mut self, text: &str) {
        if self.broken {
            return;
        }
        let text = match self.mode {
            ProgressMode::Json => crate::untrusted::json_safe(text.to_string()),
            ProgressMode::Plain | ProgressMode::Bars => {
                crate::untrusted::escaped_lines(text).into_owned()
            }
        };
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
        let plan_style = style(&format!(
            "{{prefix:<{width}}}  [{{bar:30}}] {{pos}}/{{len}}  {{wide_msg}}"
        ));
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

/// The message of a plan's bar: `2.1 Add login form`, or the ids when several run; on one
/// line, a task's text shown escaped.
fn running_message(running: &[(String, String)]) -> String {
    use crate::untrusted::Shown;
    match running {
        [] => "waiting".into(),
        [(id, description)] if id.is_empty() => Shown(description).to_string(),
        [(id, description)] => format!("{} {}", Shown(id), Shown(description)),
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
        | Event::AgentFailover { .. }
        | Event::AgentRestored { .. }
        | Event::AgentStopped { .. }
        | Event::HostLost { .. }
        | Event::HostBack { .. }
        | Event::PlanPaused { .. }
        | Event::PlanResumed { .. }
        | Event::TaskRetried { .. }
        | Event::TaskStopped { .. }
        | Event::TaskNeedsInput { .. }
        | Event::BudgetReached { .. }
        | Event::PlanFinished { .. }
        | Event::PlanBlocked { .. }
        | Event::PlanMerged { .. }
        | Event::PlanMergeFailed { .. }
        | Event::IntegrationFailed { .. }
        | Event::IntegrationFixed { .. }
        | Event::Interrupted { .. }
        | Event::ReportRefused { .. }
        | Event::ManifestInvalid { .. }
        | Event::ManifestReloaded { .. }
        | Event::Note { .. }
        | Event::TaskSlow { .. }
        | Event::RunForecast { .. } => true,
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
        | Event::TaskOnHost { plan, .. }
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
        | Event::TaskStopped { plan, .. }
        | Event::TaskNeedsInput { plan, .. }
        | Event::ReportRefused { plan, .. }
        | Event::AttemptFinished { plan, .. }
        | Event::Resolve(
            ResolveNote::Started { plan, .. }
            | ResolveNote::Resolved { plan, .. }
            | ResolveNote::Failed { plan, .. },
        )
        | Event::TaskSlow { plan, .. } => Some(plan),
        Event::Note { plan, .. } | Event::BudgetReached { plan, .. } => plan.as_deref(),
        Event::RunStarted { .. }
        | Event::IntegrationFailed { .. }
        | Event::IntegrationFixed { .. }
        | Event::Interrupted { .. }
        | Event::RunFinished { .. }
        | Event::AgentPaused { .. }
        | Event::AgentResumed { .. }
        | Event::AgentFailover { .. }
        | Event::AgentRestored { .. }
        | Event::AgentStopped { .. }
        | Event::HostLost { .. }
        | Event::HostBack { .. }
        | Event::ManifestInvalid { .. }
        | Event::ManifestReloaded { .. }
        | Event::RunForecast { .. } => None,
    }
}

#[cfg(test)]
mod tests;
