//! The effect runner's state, shared by the loop (`effects.rs`: it feeds the core and carries
//! out its actions) and the workers that carry them out (launch, check, settle, reports,
//! recovery, …, each an `impl Effects` of its own file): they name it here, below the loop, so
//! that the loop depends on them and they do not depend on the loop.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::context::{Ctx, PlanCtx};
use super::event::Event;
use super::msg::{Msg, TreeReady, Tx};
use super::replan::Fingerprint;
use super::state::{RunId, Stop, StopWhy, TaskFacts, Unit};
use crate::status::{self, StatusDoc};
use crate::workspace::Workspace;

/// What the run knows of its watched inputs.
#[derive(Default)]
pub(crate) struct Replanning {
    /// The files whose change is a re-plan.
    pub(crate) inputs: Vec<PathBuf>,
    /// Their contents as last applied or reported: the same state is not read twice.
    pub(crate) seen: Option<Fingerprint>,
    /// Kept alive while the run watches.
    pub(crate) watcher: Option<notify::RecommendedWatcher>,
    /// A valid edit waits for running tasks it removes: tried again as the run goes on.
    pub(crate) waiting: Option<String>,
}

/// Who writes in one report directory, from orch's own record of the launch.
#[derive(Clone, Debug)]
pub(crate) struct Reporter {
    pub(crate) unit: Unit,
    pub(crate) attempt: u32,
    pub(crate) log: PathBuf,
    /// The attempt asked a question (`orch task ask`): nothing more of it is taken.
    pub(crate) asked: bool,
    /// How many of its reports were refused (the first [`REFUSALS_SAID`] are said).
    ///
    /// [`REFUSALS_SAID`]: super::reports::REFUSALS_SAID
    pub(crate) refused: u32,
    /// The report directory orch made for the attempt (or found, a directory of its own, when
    /// it adopted it), held open: which directory it is, and the handle, which keeps its inode
    /// from being another directory's. `None`: none was made or found; nothing is taken.
    pub(crate) made: Option<(
        crate::status::report::dir::ReportDir,
        crate::status::report::dir::DirId,
    )>,
    /// Said once that what is at its path is not that directory (its reports are refused).
    pub(crate) swapped_said: bool,
}

/// A plan's status file as last read.
#[derive(Default)]
pub(crate) struct View {
    /// Size and modification time when last read.
    pub(crate) stamp: Option<status::FileStamp>,
    /// Shared with the plan's [`status::Known`] when it is what the run wrote last.
    pub(crate) doc: Option<Arc<StatusDoc>>,
    pub(crate) facts: Vec<TaskFacts>,
    pub(crate) merged: bool,
    pub(crate) warned: bool,
    /// Paused by a person (`orchPlanPaused`).
    pub(crate) held: bool,
    /// A write of task commits failed and was said.
    pub(crate) record_warned: bool,
}

/// The effect side of a run: what carries out the core's actions.
pub(crate) struct Effects<'a> {
    pub(crate) ctx: Arc<Ctx>,
    /// The run's plans: the workspace `orch up` started with, then as the last applied edit
    /// made it (live re-planning: a plan keeps its index for the whole run).
    pub(crate) ws: Arc<Workspace>,
    /// Each plan's context by index (`None`: not part of the run).
    pub(crate) plans: Vec<Option<Arc<PlanCtx>>>,
    /// The watched manifest, plan files and templates.
    pub(crate) replanning: Replanning,
    /// Where the watcher of the inputs reports (set once the run watches them).
    pub(crate) replan_tx: Option<mpsc::UnboundedSender<()>>,
    /// The prompt templates as the last applied edit left them (`None`: the run's first).
    pub(crate) templates: Option<Arc<crate::prompt::Templates>>,
    /// The text (description) each running attempt's task had at its launch: its commit says
    /// what the agent was asked, whatever an edit made of the task since.
    pub(crate) texts: HashMap<RunId, String>,
    /// The plan branch's tip when each running attempt in the plan's worktree started: what its
    /// work is compared with ([`super::settle::settle`]'s `base`).
    pub(crate) bases: HashMap<RunId, String>,
    pub(crate) emit: &'a mut dyn FnMut(&Event),
    pub(crate) tx: Tx,
    /// Where a task worktree made off the loop for a launch is handed back.
    pub(crate) tree_tx: mpsc::UnboundedSender<TreeReady>,
    pub(crate) stop_all: watch::Sender<Stop>,
    /// Each attempt's own stop request.
    pub(crate) stops: HashMap<RunId, watch::Sender<Option<StopWhy>>>,
    /// The stop requests of attempts whose worktree is being made: a stop asked for meanwhile is
    /// seen by the attempt's monitor when it starts.
    pub(crate) early_stops: HashMap<RunId, watch::Receiver<Option<StopWhy>>>,
    pub(crate) views: Vec<View>,
    /// Inputs produced while carrying out actions, fed before anything else.
    pub(crate) queue: VecDeque<Msg>,
    /// Each report directory of the run's attempts, with who writes there
    /// ([`super::reports`]).
    pub(crate) reporters: HashMap<std::path::PathBuf, Reporter>,
    /// Best of N: the attempts of rounds running, with their keys
    /// ([`super::round::member_key`]: their worktree, log and prompt file).
    pub(crate) members: HashMap<RunId, String>,
    /// Best of N with `agents`: the command of an attempt whose agent is not the plan's (its
    /// name, its argv template).
    pub(crate) member_agents: HashMap<RunId, (String, Vec<String>)>,
    /// orch's end of the stdin of each running attempt whose agent reads a person's messages
    /// (`input = "lines"` or `"stream-json"`), non-blocking, and how they are written.
    pub(crate) inputs: HashMap<RunId, (std::fs::File, crate::manifest::InputMode)>,
    /// Where the wrapper of each attempt launched with streaming input records the end of the
    /// agent's first turn (taken by its monitor).
    pub(crate) turns: HashMap<RunId, PathBuf>,
    /// The removals of finished plans' task worktree pools ([`Action::DropPool`]), awaited
    /// before the run ends.
    pub(crate) pool_drops: Vec<tokio::task::JoinHandle<()>>,
    /// What a task boundary's upstream re-sync said (`upstream_merged`, its notes), said right
    /// after the `task_finished` of the task it follows (it is made before the core hears of
    /// the task, so that a conflict blocks the plan before its next task).
    pub(crate) after_finished: Vec<Event>,
    /// While set, what [`Effects::note`] and the re-sync say goes to `after_finished`.
    pub(crate) holding: bool,
}

impl Effects<'_> {
    pub(crate) fn plan(&self, p: usize) -> Option<Arc<PlanCtx>> {
        self.plans.get(p).and_then(Clone::clone)
    }

    pub(crate) fn note(&mut self, plan: Option<String>, message: String) {
        self.say(Event::Note { plan, message });
    }

    /// Says `e` now, or after the next `task_finished` while a task boundary's re-sync runs
    /// ([`Effects::holding`]).
    pub(crate) fn say(&mut self, e: Event) {
        if self.holding {
            self.after_finished.push(e);
        } else {
            (self.emit)(&e);
        }
    }

    /// Writes the task commits not recorded yet ([`PlanCtx::flush_records`]); a write that
    /// fails is said once and tried again at the plan's next write.
    pub(crate) fn flush_records(&mut self) {
        for p in 0..self.views.len() {
            let Some(pc) = self.plan(p) else { continue };
            match pc.flush_records() {
                Ok(()) => self.views[p].record_warned = false,
                Err(e) if !self.views[p].record_warned => {
                    self.views[p].record_warned = true;
                    self.note(
                        Some(pc.name().to_owned()),
                        format!("cannot record task commits in the status file (tried again at its next write): {e}"),
                    );
                }
                Err(_) => {}
            }
        }
    }

    /// Ticks the boxes of each Spec Kit plan's completed tasks in its file
    /// ([`super::speckit_ticks`]), saying how many, or why it could not.
    pub(crate) fn tick_spec_kit_boxes(&mut self) {
        for p in 0..self.plans.len() {
            let Some(pc) = self.plan(p) else { continue };
            let message = match super::speckit_ticks::tick_completed(&self.ctx.repo_root, &pc) {
                Ok(0) => continue,
                Ok(n) => format!(
                    "ticked {n} completed task{} in `{}`",
                    if n == 1 { "" } else { "s" },
                    pc.rel_path
                ),
                Err(e) => format!(
                    "cannot tick the completed tasks in `{}` (the status file has them): {e}",
                    pc.rel_path
                ),
            };
            self.note(Some(pc.name().to_owned()), message);
        }
    }

    /// Puts the task commits not recorded yet in plan `p`'s status document as last read (as the
    /// file says once they are written), before a prompt or an upstream merge reads it.
    pub(crate) fn apply_records(&mut self, p: usize) {
        let records = self.plan(p).map(|pc| pc.records()).unwrap_or_default();
        let Some(doc) = self.views.get_mut(p).and_then(|v| v.doc.as_mut()) else {
            return;
        };
        for r in &records {
            if doc.entry(&r.id).and_then(|e| e.commit.as_deref()) != Some(r.commit.as_str()) {
                let _ = super::context::record_commit_in(
                    Arc::make_mut(doc),
                    &r.id,
                    &r.commit,
                    (r.done_at, r.committed_at),
                );
            }
        }
    }
}

/// What the core knows of task `t` from its recorded entry `e` (as reconciling with the plan
/// would record it: a pending task marked `[x]` in the plan is completed), with its commit when
/// made but not read back yet (`pc`'s [`PlanCtx::unrecorded_commit`]: what the next write
/// records).
pub(crate) fn facts_of(
    t: &crate::plan::Task,
    e: &status::TaskEntry,
    created: Option<chrono::DateTime<chrono::Utc>>,
    pc: Option<&PlanCtx>,
) -> TaskFacts {
    let mut facts = TaskFacts {
        status: status::with_plan(e.status, t),
        commit: e.commit.clone(),
        fresh: created.is_some_and(|c| {
            e.completed_at
                .as_deref()
                .and_then(status::parse_timestamp)
                .is_some_and(|at| at >= c)
        }),
        duration_ms: e.duration,
        error: e.error.clone(),
        usage: e.orch_usage.as_ref().map(status::OrchUsage::usage),
        stopped: e.status == status::TaskStatus::Failed
            && e.extra.contains_key(crate::status::STOPPED_KEY),
        attempts: e.attempts,
        question: e.orch_question.clone(),
        messages: e.orch_messages.len(),
    };
    if let Some(commit) = pc.and_then(|pc| pc.unrecorded_commit(&t.id)) {
        facts.status = status::TaskStatus::Completed;
        facts.commit = Some(commit);
    }
    facts
}

pub(crate) async fn recv_signal(s: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
