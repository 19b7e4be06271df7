//! The supervisor's decisions, as a synchronous state machine: [`Core::handle`] takes the run
//! state and one [`Input`] (an agent exited, a status file changed, a timer fired, a signal, an
//! effect finished…) and returns the [`Action`]s to carry out (launch, stop, settle, commit,
//! prepare, merge, report). No I/O and no clock: time comes with each input. The effect runner
//! ([`super::effects`]) carries the actions out and turns their results into inputs.
//!
//! Every input costs O(1) or O(log n) in the size of the run, apart from the changes it
//! carries: readiness is kept by a [`Frontier`], counts are kept as states change, and slots
//! are filled by looking at one head per plan.

use std::time::{Duration, Instant};

use super::event::Event;
use super::state::{
    AgentRec, Changes, CheckOutcome, CommitError, Ending, Outcome, PlanRec, PlanSpec, RunId,
    RunState, Settlement, Stop, StopWhy, TaskFacts, TaskRec, Unit, Unprepared,
};
use crate::agent_output::{AgentOutput, Fatal, Usage};
use crate::graph::{Frontier, Graph};
use crate::manifest::Budget;
use crate::merge::PlanMergeOutcome;
use crate::plan::{Plan, TaskKind};

/// The run's fixed settings, as the core needs them.
#[derive(Clone, Debug)]
pub(crate) struct CoreConfig {
    pub(crate) max_agents: usize,
    /// The first retry waits this long; each next one twice as long.
    pub(crate) backoff: Duration,
    pub(crate) stuck_after: Option<Duration>,
    /// The merge train: merge each finished plan.
    pub(crate) auto_merge: bool,
    /// The branch the merge train merges into.
    pub(crate) target: String,
    /// The most the run may spend (`defaults.budget`).
    pub(crate) budget: Budget,
    /// The first wait of an agent paused at a limit whose client named no reset time; each
    /// next pause in a row waits twice as long, up to [`MAX_PAUSE`].
    pub(crate) limit_backoff: Duration,
    /// The integration preview: how often, at most, a test runs (`None`: off).
    pub(crate) integrate: Option<Duration>,
    /// How long an attempt that asked a question may take to exit by itself (`grace`).
    pub(crate) ask_grace: Duration,
}

/// One plan's part of a group's landing ([`Input::Landed`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LandedPlan {
    pub(crate) plan: usize,
    /// Its repository's target branch.
    pub(crate) target: String,
    pub(crate) outcome: PlanMergeOutcome,
}

/// The longest pause of an agent whose client named no reset time.
pub(crate) const MAX_PAUSE: Duration = Duration::from_secs(30 * 60);

/// An agent of an earlier supervisor, found alive (or its batch job) at start-up.
#[derive(Clone, Debug)]
pub(crate) struct Adopted {
    /// From [`Core::new_run`].
    pub(crate) run: RunId,
    pub(crate) unit: Unit,
    pub(crate) attempt: u32,
    pub(crate) pid: u32,
    pub(crate) job_id: Option<String>,
    /// How long it has run already.
    pub(crate) elapsed: Duration,
}

/// Something that happened, for the core to decide on.
#[derive(Clone, Debug)]
pub(crate) enum Input {
    /// Start-up: agents adopted from an earlier supervisor; failed tasks to run again.
    Recovered {
        adopted: Vec<Adopted>,
        retry: Vec<(usize, usize)>,
    },
    /// A plan's status file was read: the tasks whose record changed, and whether it says the
    /// plan was merged.
    Status {
        plan: usize,
        tasks: Vec<(usize, TaskFacts)>,
        merged: bool,
    },
    /// The attempt's process started (`pid`), or its batch job was submitted (`job_id`).
    Launched {
        run: RunId,
        pid: u32,
        job_id: Option<String>,
    },
    /// The attempt could not be launched (its worktree, prompt, program or submission failed);
    /// `fatal` when launching this agent again cannot help (its program is missing).
    LaunchFailed {
        run: RunId,
        error: String,
        fatal: Option<Fatal>,
    },
    /// The attempt showed signs of life (output, a status change, a queued job).
    Active { run: RunId },
    /// The driver of a remote attempt took a slot of `host` (orch's record of it).
    OnHost { run: RunId, host: String },
    /// The agent of an attempt with streaming input ended its first turn (its wrapper's
    /// record): no message is written to it from now on.
    TurnEnded { run: RunId },
    /// The attempt's process (or job) is over, and what its output says. Its plan's status
    /// was read just before.
    Exited {
        run: RunId,
        ending: Ending,
        output: AgentOutput,
    },
    /// The task's check ran: passed, or failed with its cause (its output's last lines).
    Checked { run: RunId, result: CheckOutcome },
    /// The attempt is settled: committed, saved, recorded.
    Settled { run: RunId, outcome: Outcome },
    /// A task reported done outside an attempt was committed (or not).
    Committed {
        plan: usize,
        task: usize,
        result: Result<String, CommitError>,
    },
    /// A plan's worktree made during the run: its `plan_started`, or why it could not be made.
    TreeMade {
        plan: usize,
        /// `plan_started`, then the notes about the worktree (a submodule not checked out).
        result: Result<Vec<Event>, String>,
    },
    /// A plan's preparation ended (or its upstream re-sync at a task boundary found a
    /// conflict): the events to report, or what left it unready.
    Prepared {
        plan: usize,
        result: Result<Vec<Event>, Unprepared>,
    },
    /// The merge train merged a plan (or could not): `orch merge`'s typed outcome.
    Merged {
        plan: usize,
        outcome: PlanMergeOutcome,
    },
    /// The merge train landed a group of plans of several repositories (or could not): each
    /// plan's outcome and its repository's target, in the order the targets moved.
    Landed { outcomes: Vec<LandedPlan> },
    /// The integration test is over: its report, or why it could not run.
    Integrated {
        result: Result<crate::merge::integrate::IntegrationReport, String>,
    },
    /// A plan's status file says a person paused it (`orch pause`) or no longer.
    PlanHeld { plan: usize, held: bool },
    /// Time passed: timers up to now fire.
    Tick,
    /// A lead changed the manifest or a plan file: the run's new plans and settings
    /// ([`Core::replan_waits_for`] said they apply now).
    Replanned(Box<Replan>),
    /// Ctrl-C: the first drains, the second stops.
    Interrupt,
    /// SIGTERM: stop now.
    Terminate,
    /// Best of N: an attempt of a round reported through its own report directory (the task's
    /// status entry is the round's, not one attempt's).
    Reported {
        run: RunId,
        reported: super::round::Reported,
    },
    /// Best of N: an attempt's change was measured and its `select` ran: its size in lines and
    /// its score (`Err`: why it is no candidate, a protected path changed, a score that is no
    /// number).
    Measured {
        run: RunId,
        result: Result<Measure, String>,
    },
    /// orch's own probe of agent `agent`'s client ran: what its output shows (`Ordinary`: no
    /// limit and no failure, or no answer in time), and a line of what it said.
    Probed {
        agent: usize,
        class: crate::agent_output::Class,
        said: String,
    },
    /// The merge train's resolver of plan `plan` says how its resolution goes (`resolve`).
    Resolving {
        plan: usize,
        note: crate::merge::resolve::ResolveNote,
    },
}

/// What the effects measured of a candidate attempt.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Measure {
    /// Lines added and removed against the plan branch tip it started from.
    pub(crate) lines: u64,
    /// The `select` command's number (none without `select`).
    pub(crate) score: Option<f64>,
}

/// Something to do, for the effect runner.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Action {
    /// Tell the user (progress, `--json`).
    Report(Event),
    /// Merge the plan's upstream work and run its setup; answer [`Input::Prepared`].
    Prepare { plan: usize },
    /// Make the attempt's worktree and prompt and start its agent; answer [`Input::Launched`]
    /// or [`Input::LaunchFailed`], then [`Input::Exited`] when it is over.
    Launch {
        run: RunId,
        unit: Unit,
        attempt: u32,
    },
    /// Stop one attempt (its process group, or its job); it ends as `why` says.
    Stop { run: RunId, why: StopWhy },
    /// Stop every attempt as far as `Stop` says.
    StopAll(Stop),
    /// Run the task's check in its worktree; answer [`Input::Checked`].
    Check { run: RunId, unit: Unit },
    /// Settle an attempt that is over (recording `usage`, what its agent spent); answer
    /// [`Input::Settled`].
    Settle {
        run: RunId,
        unit: Unit,
        attempt: u32,
        how: Settlement,
        usage: Option<Usage>,
    },
    /// Commit a task reported done outside an attempt; answer [`Input::Committed`].
    Commit {
        plan: usize,
        task: usize,
        changes: Changes,
    },
    /// Record in the status files of `plans` that their agent is paused (`reason`, for how
    /// long) or, `None`, no longer.
    RecordPause {
        plans: Vec<usize>,
        pause: Option<(String, String, Duration)>,
    },
    /// Record a task failed in its status file, with `error`.
    RecordFailure {
        plan: usize,
        task: usize,
        error: String,
    },
    /// Task `task` of plan `plan` was told messages `from..to` of its `orchMessages`: write them
    /// on the stdin of its attempt `run` (running, its agent reads them), else keep them for its
    /// next attempt; record which. No answer.
    Tell {
        plan: usize,
        task: usize,
        run: Option<(RunId, u32)>,
        from: usize,
        to: usize,
    },
    /// Close orch's end of the stdin of attempt `run` (its agent ended its turn: it ends once
    /// it has answered what was written). No answer.
    CloseInput { run: RunId },
    /// Attempt `run`, launched next, runs agent `agent` (a fallback of its plan's, at a usage
    /// limit) instead of its plan's. No answer.
    UseAgent { run: RunId, agent: String },
    /// Merge a finished plan into the target; answer [`Input::Merged`].
    Merge { plan: usize },
    /// Land a group of finished plans of several repositories all together or not at all
    /// (`plans[0]` names the group); answer [`Input::Landed`].
    Land { plans: Vec<usize> },
    /// Plan `plan` is finished and its tasks ran in task worktrees: remove its pool (a slot
    /// with changes nobody committed is left for `orch clean`). No answer; the run waits for
    /// it before it ends.
    DropPool { plan: usize },
    /// Test the combination of the plan branches (the integration preview); answer
    /// [`Input::Integrated`].
    Integrate,
    /// Best of N: launch attempt `attempt` of a round (as [`Action::Launch`], in a task worktree
    /// and with a log and report directory of its own, [`super::round::member_key`]).
    LaunchMember {
        run: RunId,
        unit: Unit,
        attempt: u32,
    },
    /// Best of N: check a done attempt's change (protected paths, the plan's cone), measure
    /// it and run the `select` command in its worktree; answer [`Input::Measured`].
    Measure {
        run: RunId,
        unit: Unit,
        attempt: u32,
    },
    /// Check an attempt's claim of a limit or a failure a person must fix: run agent `agent`'s
    /// client once, outside every worktree, and classify its own output; answer
    /// [`Input::Probed`].
    Probe { agent: usize, name: String },
}

/// The supervisor's state and decisions. See the module documentation.
pub(crate) struct Core {
    cfg: CoreConfig,
    graph: Graph,
    plans: Vec<Plan>,
    /// Plans taken out of the manifest during the run (live re-planning): nothing new of them
    /// starts; their running attempts finish.
    removed: Vec<bool>,
    /// Every plan of the workspace by name (also those not in the run).
    names: Vec<String>,
    /// The plans of the run (`None`: not part of it).
    specs: Vec<Option<PlanSpec>>,
    frontier: Frontier,
    state: RunState,
    over: bool,
    /// Plans looked at while filling slots: with the frontier's steps, the work done so far.
    scans: u64,
    /// The time of the input being decided on (`None` before the first).
    clock: Option<Instant>,
}

impl Core {
    /// The core of a run over `plans` (all of the workspace's, in its order), with each task's
    /// record as `facts[plan][task]` gives it.
    pub(crate) fn new(
        cfg: CoreConfig,
        graph: &Graph,
        plans: &[Plan],
        priorities: &[i64],
        names: Vec<String>,
        specs: Vec<Option<PlanSpec>>,
        facts: Vec<Vec<TaskFacts>>,
    ) -> Self {
        let tasks: Vec<Vec<TaskRec>> = plans
            .iter()
            .enumerate()
            .map(|(p, plan)| {
                (0..plan.tasks.len())
                    .map(|t| {
                        TaskRec::new(
                            facts
                                .get(p)
                                .and_then(|f| f.get(t))
                                .cloned()
                                .unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .collect();
        let frontier = Frontier::new(graph, plans, priorities, |p, t| tasks[p][t].node_state());
        let mut agents: Vec<AgentRec> = Vec::new();
        let mut plan_recs = vec![PlanRec::new(); plans.len()];
        for (p, spec) in specs.iter().enumerate() {
            let Some(spec) = spec else { continue };
            plan_recs[p].agent_index = failover::agent_slot(&mut agents, &spec.entry.agent);
            plan_recs[p].fallbacks = spec
                .entry
                .fallback
                .iter()
                .map(|name| failover::agent_slot(&mut agents, name))
                .collect();
            plan_recs[p].tree_pending = spec.new_tree;
            plan_recs[p].usage = tasks[p]
                .iter()
                .filter_map(|t| t.facts.usage)
                .fold(Usage::default(), |a, u| a.plus(&u));
        }
        let state = RunState {
            tasks,
            plans: plan_recs,
            runs: Default::default(),
            timers: Default::default(),
            merge_queue: Vec::new(),
            merging: None,
            preparing: 0,
            committing: 0,
            next_run: 1,
            graceful: false,
            stopping: false,
            agents,
            usage: Usage::default(),
            budget_hit: None,
            waiting_on_paused: false,
            integration: Default::default(),
            rounds: Default::default(),
            members: Default::default(),
            resolved_by_agent: 0,
            resolving: 0,
        };
        Core {
            clock: None,
            cfg,
            graph: graph.clone(),
            plans: plans.to_vec(),
            removed: vec![false; plans.len()],
            names,
            specs,
            frontier,
            state,
            over: false,
            scans: 0,
        }
    }

    /// Elementary steps taken so far (readiness changes, plans looked at): what a test counts
    /// to show that one input costs the same whatever the size of the run.
    #[cfg(test)]
    pub(crate) fn work(&self) -> u64 {
        self.frontier.ops() + self.scans
    }

    /// A fresh attempt id (for agents adopted at start-up).
    pub(crate) fn new_run(&mut self) -> RunId {
        let r = self.state.next_run;
        self.state.next_run += 1;
        r
    }

    /// The run state, read-only (reports, tests).
    pub(crate) fn state(&self) -> &RunState {
        &self.state
    }

    /// The plan of the run with index `p`.
    pub(crate) fn spec(&self, p: usize) -> Option<&PlanSpec> {
        self.specs.get(p).and_then(Option::as_ref)
    }

    /// Plan `p`'s executor's news of its place, each a note on the console.
    fn place_news(&self, p: usize, out: &mut Vec<Action>) {
        for message in self
            .spec(p)
            .map(|s| s.executor.place_news())
            .unwrap_or_default()
        {
            out.push(Action::Report(Event::Note {
                plan: Some(self.plan_name(p)),
                message,
            }));
        }
    }

    /// Before the first input: whether plan `p`'s status file says an earlier `orch merge`
    /// merged it.
    pub(crate) fn set_merged_before(&mut self, p: usize, merged: bool) {
        if let Some(plan) = self.state.plans.get_mut(p) {
            plan.merged_before = merged;
        }
    }

    /// Nothing runs and nothing is about to: the run is over.
    pub(crate) fn is_over(&self) -> bool {
        self.over
    }

    /// When the next timer fires, if one is set.
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        self.state.timers.first().map(|(at, _)| *at)
    }

    /// Decides on one input; returns what to do.
    pub(crate) fn handle(&mut self, now: Instant, input: Input) -> Vec<Action> {
        self.clock = Some(now);
        let mut out = Vec::new();
        // What the executor saw of an attempt's place (a container's service that stopped under
        // it), said before what follows from it.
        if let Input::Checked { run, .. } | Input::Settled { run, .. } = &input
            && let Some(p) = self.state.runs.get(run).map(|rr| rr.unit.plan())
        {
            self.place_news(p, &mut out);
        }
        match input {
            Input::Recovered { adopted, retry } => {
                self.branches_moved();
                self.on_recovered(now, adopted, retry, &mut out);
            }
            Input::Status {
                plan,
                tasks,
                merged,
            } => self.on_status(now, plan, tasks, merged, &mut out),
            Input::Launched { run, pid, job_id } => self.on_launched(run, pid, job_id, &mut out),
            Input::LaunchFailed { run, error, fatal } if self.state.members.contains_key(&run) => {
                self.member_launch_failed(now, run, error, fatal, &mut out);
            }
            Input::LaunchFailed { run, error, fatal } => {
                if let Some(rr) = self.release(run) {
                    if let Some(kind) = fatal {
                        self.not_counted(&rr);
                        let a = self.agent_of_rec(&rr);
                        self.stop_agent(a, kind, error, &mut out);
                        self.unit_idle(rr.unit);
                        if let Some(t) = rr.unit.task() {
                            self.sync_node(rr.unit.plan(), t);
                        }
                    } else {
                        let log = rr.log.clone();
                        let outcome = Outcome::Failed { error, saved: None };
                        self.settled(now, &rr, outcome, log, &mut out);
                    }
                }
            }
            Input::Active { run } => self.on_active(now, run),
            Input::OnHost { run, host } => self.on_host(run, host, &mut out),
            Input::TurnEnded { run } => self.on_turn_ended(run, &mut out),
            Input::Exited {
                run,
                ending,
                output,
            } => self.on_exited(now, run, ending, output, &mut out),
            Input::Checked { run, result } if self.state.members.contains_key(&run) => {
                self.member_checked(now, run, result, &mut out);
            }
            Input::Checked { run, result } => self.on_checked(run, result, &mut out),
            Input::Settled { run, outcome } => {
                if matches!(outcome, Outcome::Done { .. }) {
                    self.branches_moved();
                }
                if self.state.members.contains_key(&run) {
                    self.member_settled(now, run, outcome, &mut out);
                } else if let Some(rr) = self.release(run) {
                    let log = rr.log.clone();
                    self.settled(now, &rr, outcome, log, &mut out);
                }
            }
            Input::Committed { plan, task, result } => {
                self.branches_moved();
                self.on_committed(plan, task, result, &mut out);
            }
            Input::TreeMade { plan, result } => self.on_tree_made(plan, result, &mut out),
            Input::Prepared { plan, result } => {
                self.branches_moved();
                self.on_prepared(plan, result, &mut out);
            }
            Input::Merged { plan, outcome } => {
                // Its resolver, if one ran, is over.
                self.state.resolving = 0;
                self.branches_moved();
                self.target_moved();
                self.on_merged(plan, outcome, &mut out);
            }
            Input::Landed { outcomes } => {
                self.branches_moved();
                self.target_moved();
                self.on_landed(outcomes, &mut out);
            }
            Input::Integrated { result } => self.on_integrated(result, &mut out),
            Input::PlanHeld { plan, held } => self.on_held(plan, held, &mut out),
            Input::Replanned(r) => self.on_replan(now, *r, &mut out),
            Input::Tick => self.on_tick(now, &mut out),
            Input::Interrupt => self.interrupt(&mut out),
            Input::Terminate => {
                self.state.graceful = true;
                self.interrupt(&mut out);
            }
            Input::Reported { run, reported } => self.on_member_reported(run, reported),
            Input::Measured { run, result } => self.on_measured(now, run, result, &mut out),
            Input::Resolving { plan, note } => self.on_resolving(plan, note, &mut out),
            Input::Probed { agent, class, said } => {
                self.on_probed(now, agent, class, said, &mut out);
            }
        }
        self.step(now, &mut out);
        self.hold_for_trees(&mut out);
        out
    }

    /// Takes out of `out` what acts on the worktree of a plan whose worktree is still being
    /// made (an attempt's check or settlement, a commit): it is given out when the worktree is
    /// made ([`Input::TreeMade`]), and its result comes back as usual.
    fn hold_for_trees(&mut self, out: &mut Vec<Action>) {
        if !self.state.plans.iter().any(|p| p.tree_pending) {
            return;
        }
        for a in std::mem::take(out) {
            let plan = match &a {
                Action::Check { unit, .. } | Action::Settle { unit, .. } => Some(unit.plan()),
                Action::Commit { plan, .. } => Some(*plan),
                _ => None,
            };
            match plan.and_then(|p| self.state.plans.get_mut(p)) {
                Some(rec) if rec.tree_pending => rec.awaiting_tree.push(a),
                _ => out.push(a),
            }
        }
    }

    // ----- names -----

    pub(super) fn plan_name(&self, p: usize) -> String {
        self.names.get(p).cloned().unwrap_or_default()
    }

    pub(super) fn task_id(&self, p: usize, t: usize) -> &str {
        self.plans[p].tasks[t].id.as_str()
    }

    /// The id of `unit`'s task, empty for a plan agent (as events name it).
    pub(super) fn unit_id(&self, unit: Unit) -> String {
        unit.task()
            .map(|t| self.task_id(unit.plan(), t).to_string())
            .unwrap_or_default()
    }

    pub(super) fn log_of(&self, p: usize, t: Option<usize>) -> std::path::PathBuf {
        self.spec(p)
            .map(|s| s.log_path(t.map(|t| self.task_id(p, t))))
            .unwrap_or_default()
    }

    pub(super) fn node_name(&self, n: usize) -> String {
        match self.graph.task_of(n) {
            Some((p, t)) => format!("{}:{}", self.names[p], self.task_id(p, t)),
            None => format!("node {n}"),
        }
    }
}

pub(crate) fn kind_str(k: TaskKind) -> String {
    match k {
        TaskKind::Task => "task".to_string(),
        TaskKind::Verify => "verify".to_string(),
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod agent_tests;
mod agents;
#[cfg(test)]
mod ask_tests;
mod best_of;
#[cfg(test)]
mod best_of_tests;
pub(crate) mod checks;
mod claims;
#[cfg(test)]
mod claims_tests;
#[cfg(test)]
mod completion_tests;
mod control;
#[cfg(test)]
mod control_tests;
pub(crate) mod ended;
pub(crate) mod event;
mod failover;
#[cfg(test)]
mod failover_tests;
mod inputs;
mod integration;
#[cfg(test)]
mod integration_tests;
mod lines;
pub(crate) mod members;
pub(crate) mod round;
pub(crate) mod state;
mod tell;
#[cfg(test)]
mod tell_tests;
pub(crate) use integration::IntegState;
mod outcome;
#[cfg(test)]
mod plans_tests;
pub(crate) mod recover;
#[cfg(test)]
mod recover_tests;
mod replan;
pub(crate) mod reread;
pub(crate) use replan::{Replan, Structure};
#[cfg(test)]
mod replan_tests;
mod report;
mod resolve;
mod schedule;
#[cfg(test)]
mod tests;
