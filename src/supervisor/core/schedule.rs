//! The step after every input: finished plans, the merge train, slots filled, the end.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{Action, Core};
use crate::manifest::AgentMode;
use crate::supervisor::event::Event;
use crate::supervisor::state::{
    AgentRun, Changes, MergeState, Prep, RunId, RunRec, Stage, TaskRun, Timer, Unit, named,
};

/// The merge result of a plan the train does not try (`orch merge`'s word for it).
const SKIPPED: crate::merge::MergeResult = crate::merge::MergeResult::Skipped;

impl Core {
    /// Finished plans, the merge train, new launches, and whether the run is over.
    pub(super) fn step(&mut self, now: Instant, out: &mut Vec<Action>) {
        for p in 0..self.plans.len() {
            self.check_waiting(now, p, out);
            self.check_finished(p, out);
        }
        self.start_merge(out);
        self.schedule(now, out);
        self.maybe_integrate(now, out);
        self.over = self.check_over(now, out);
    }

    /// The check of a task completed from outside an attempt, once plan `p` has no attempt
    /// running (one at a time: the check holds a slot).
    fn check_waiting(&mut self, now: Instant, p: usize, out: &mut Vec<Action>) {
        let plan = &mut self.state.plans[p];
        if plan.check_waiting.is_empty() || plan.running > 0 || plan.committing > 0 {
            return;
        }
        let t = plan.check_waiting.remove(0);
        let rec = &self.state.tasks[p][t];
        if rec.run == TaskRun::Idle && rec.facts.needs_commit() {
            self.recheck(now, p, t, out);
        }
    }

    pub(super) fn check_finished(&mut self, p: usize, out: &mut Vec<Action>) {
        let Some(spec) = self.spec(p) else { return };
        let plan = &self.state.plans[p];
        if plan.finished
            || plan.running > 0
            || plan.committing > 0
            || self.frontier.unfinished(p) > 0
        {
            return;
        }
        let name = spec.entry.name.clone();
        let pool = spec.task_trees;
        self.state.plans[p].finished = true;
        if pool {
            out.push(Action::DropPool { plan: p });
        }
        if self.is_removed(p) {
            // Out of the manifest: its work stays on its branch, for `orch merge`.
            return;
        }
        out.push(Action::Report(Event::PlanFinished {
            plan: name,
            completed: self.plans[p].tasks.len(),
        }));
        if self.cfg.auto_merge {
            self.state.plans[p].merge = MergeState::Queued;
            self.state.merge_queue.push(p);
            self.queued_for_train(p);
        }
    }

    /// Whether upstream plan `q` is merged into the target (by this run's merge train or
    /// before it).
    pub(super) fn merged(&self, q: usize) -> bool {
        self.state.plans[q].merged_before || self.state.plans[q].merge == MergeState::Merged
    }

    /// Plan `p` and the plans it lands with, all together or not at all.
    pub(super) fn landing_group(&self, p: usize) -> Vec<usize> {
        let mut group = vec![p];
        for &q in self.spec(p).map(|s| s.land_with.as_slice()).unwrap_or(&[]) {
            if q < self.state.plans.len() && !group.contains(&q) {
                group.push(q);
            }
        }
        group
    }

    /// What the merge of plan `p` waits for: its upstream plans not merged (those of its group
    /// land with it), and the plans of its group not finished (not queued).
    pub(super) fn unmerged_upstreams(&self, p: usize) -> Vec<String> {
        let group = self.landing_group(p);
        let mut out: Vec<String> = Vec::new();
        for &g in &group {
            for &q in self.spec(g).map(|s| s.upstreams.as_slice()).unwrap_or(&[]) {
                let name = format!("`{}`", self.names[q]);
                if !group.contains(&q) && !self.merged(q) && !out.contains(&name) {
                    out.push(name);
                }
            }
            let queued = matches!(
                self.state.plans[g].merge,
                MergeState::Queued | MergeState::Merging
            );
            let name = format!("`{}`", self.names[g]);
            if g != p && !queued && !self.merged(g) && !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }

    /// Starts the merge of the first queued plan whose upstream plans are merged (with the
    /// plans it lands with, once they are all finished); a plan whose upstream failed to merge
    /// is skipped.
    pub(super) fn start_merge(&mut self, out: &mut Vec<Action>) {
        if self.state.merging.is_some() || self.state.graceful {
            return;
        }
        let mut i = 0;
        while i < self.state.merge_queue.len() {
            let p = self.state.merge_queue[i];
            let group = self.landing_group(p);
            let waiting = self.unmerged_upstreams(p);
            if group.iter().any(|&q| self.train_waits_for_test(q)) {
                // The combination with this plan's last commits is being (or will be) tested:
                // the train goes on after that test, in order.
                return;
            }
            if waiting.is_empty() && !group.iter().any(|&q| self.integration_holds(q)) {
                self.state.merge_queue.retain(|q| !group.contains(q));
                self.state.merging = Some(p);
                for &q in &group {
                    self.state.plans[q].merge = MergeState::Merging;
                }
                // A plan of another repository lands through its group's landing, even alone:
                // the merge of one plan is the home repository's.
                let of_home = self.spec(p).is_none_or(|s| s.entry.repo.is_none());
                out.push(if group.len() == 1 && of_home {
                    Action::Merge { plan: p }
                } else {
                    Action::Land { plans: group }
                });
                return;
            }
            let hopeless = group.iter().any(|&g| {
                matches!(self.state.plans[g].merge, MergeState::NotMerged(_))
                    || self.spec(g).is_some_and(|s| {
                        s.upstreams.iter().any(|&q| {
                            !group.contains(&q)
                                && matches!(self.state.plans[q].merge, MergeState::NotMerged(_))
                        })
                    })
            });
            if hopeless {
                let reason = self.why_hopeless(&group, &waiting);
                self.state.merge_queue.remove(i);
                self.state.plans[p].merge = MergeState::NotMerged(SKIPPED);
                out.push(Action::Report(Event::PlanMergeFailed {
                    plan: self.plan_name(p),
                    result: SKIPPED.to_string(),
                    reason,
                }));
                continue;
            }
            i += 1;
        }
    }

    /// Why the train skips the plans of `group`: each plan that was not merged and that the
    /// group lands with or waits for, with its repository and its merge's result (the rest of
    /// `waiting` after them).
    fn why_hopeless(&self, group: &[usize], waiting: &[String]) -> String {
        let repo = |q: usize| {
            self.spec(q)
                .and_then(|s| s.entry.repo.clone())
                .unwrap_or_else(|| crate::manifest::HOME_REPO.to_string())
        };
        let mut said: Vec<String> = Vec::new();
        let mut named: Vec<usize> = Vec::new();
        let mut tell = |q: usize, how: &str, said: &mut Vec<String>| {
            if let MergeState::NotMerged(result) = self.state.plans[q].merge
                && !named.contains(&q)
            {
                named.push(q);
                said.push(format!(
                    "it {how} plan `{}` of repository `{}`, whose merge ended {result}",
                    self.names[q],
                    repo(q)
                ));
            }
        };
        for &g in group {
            tell(g, "lands together with", &mut said);
        }
        for &g in group {
            for &q in self.spec(g).map(|s| s.upstreams.as_slice()).unwrap_or(&[]) {
                if !group.contains(&q) {
                    tell(q, "waits for", &mut said);
                }
            }
        }
        if said.is_empty() {
            return format!("upstream {} was not merged", waiting.join(", "));
        }
        format!("not merged: {}", said.join("; "))
    }

    /// Fills free slots: the best ready task among the heads of the plans that may start.
    pub(super) fn schedule(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state.graceful || self.state.budget_hit.is_some() {
            return;
        }
        while self.state.runs.len() + self.integration_slots() + self.state.resolving
            < self.cfg.max_agents
        {
            let mut best: Option<(usize, usize)> = None;
            for p in 0..self.plans.len() {
                self.scans += 1;
                let Some(spec) = self.spec(p) else { continue };
                let limit = spec.limit();
                if self.plan_load(p) >= limit || self.state.plans[p].finished || self.is_removed(p)
                {
                    continue;
                }
                let Some(node) = self.head(p) else { continue };
                if !self.may_start(p, out) {
                    continue;
                }
                let better = match best {
                    None => true,
                    Some((_, b)) => self.frontier.rank(node) < self.frontier.rank(b),
                };
                if better {
                    best = Some((p, node));
                }
            }
            let Some((p, node)) = best else { break };
            let Some((_, t)) = self.graph.task_of(node) else {
                break;
            };
            match self.spec(p).map(|s| s.mode) {
                Some(AgentMode::Plan) => self.launch(now, Unit::PlanAgent { plan: p }, out),
                _ => {
                    // Best of N: the round's attempts start together, each in a slot of
                    // `max_agents`; it waits until they all fit.
                    let n = self.round_size(p, t);
                    if n > 1 {
                        if self.state.runs.len()
                            + self.integration_slots()
                            + self.state.resolving
                            + n as usize
                            > self.cfg.max_agents
                        {
                            break;
                        }
                        self.launch_round(now, p, t, n, out);
                    } else {
                        self.launch(now, Unit::Task { plan: p, task: t }, out);
                    }
                }
            }
        }
    }

    /// The first ready task of plan `p` that may start now: with task worktrees, one naming a
    /// file that a running task of the plan names is held back until a task of the plan ends.
    pub(super) fn head(&mut self, p: usize) -> Option<usize> {
        loop {
            let node = self.frontier.head(&self.graph, p)?;
            let (_, t) = self.graph.task_of(node)?;
            if self.files_free(p, t) {
                return Some(node);
            }
            self.frontier.hold(node);
        }
    }

    pub(super) fn files_free(&self, p: usize, t: usize) -> bool {
        if !self.spec(p).is_some_and(|s| s.task_trees) {
            return true;
        }
        let mine = &self.plans[p].tasks[t].files;
        if mine.is_empty() {
            return true;
        }
        !self.state.runs.values().any(|rr| match rr.unit {
            Unit::Task { plan, task } if plan == p && task != t => {
                !crate::git::overlapping_paths(mine, &self.plans[p].tasks[task].files).is_empty()
            }
            _ => false,
        })
    }

    /// Whether plan `p` may launch: prepared (preparation starts here), and in plan mode its
    /// agent is neither running, waiting for a retry, nor failed.
    pub(super) fn may_start(&mut self, p: usize, out: &mut Vec<Action>) -> bool {
        let Some(spec) = self.spec(p) else {
            return false;
        };
        let (needs_prep, mode) = (spec.needs_prep, spec.mode);
        let plan = &mut self.state.plans[p];
        if plan.prep == Prep::NotStarted {
            if needs_prep {
                plan.prep = Prep::Running;
                self.state.preparing += 1;
                out.push(Action::Prepare { plan: p });
                return false;
            }
            plan.prep = Prep::Done;
        }
        if plan.prep != Prep::Done || plan.budget_hit.is_some() || plan.held {
            return false;
        }
        if !self.agent_ready(p) {
            return false;
        }
        let plan = &self.state.plans[p];
        match mode {
            AgentMode::Plan => plan.agent == AgentRun::Idle,
            AgentMode::Task => true,
        }
    }

    /// Slots of plan `p` in use: its attempts, and in a shared worktree the commits in flight
    /// (an agent started meanwhile would write into the tree being committed).
    pub(super) fn plan_load(&self, p: usize) -> usize {
        let plan = &self.state.plans[p];
        let shared = !self.spec(p).is_some_and(|s| s.task_trees);
        let rounds = if self.state.members.is_empty() {
            0
        } else {
            self.round_extra(p)
        };
        plan.running.saturating_sub(rounds) + if shared { plan.committing } else { 0 }
    }

    pub(super) fn launch(&mut self, now: Instant, unit: Unit, out: &mut Vec<Action>) {
        let p = unit.plan();
        let attempt = match unit {
            Unit::Task { task, .. } => {
                let rec = &mut self.state.tasks[p][task];
                rec.attempts += 1;
                rec.attempts
            }
            Unit::PlanAgent { .. } => {
                let plan = &mut self.state.plans[p];
                plan.agent_attempts += 1;
                plan.agent_attempts
            }
        };
        let run = self.new_run();
        match unit {
            Unit::Task { task, .. } => {
                self.state.tasks[p][task].run = TaskRun::Attempt(run);
                self.sync_node(p, task);
            }
            Unit::PlanAgent { .. } => self.state.plans[p].agent = AgentRun::Attempt(run),
        }
        let log = self.log_of(p, unit.task());
        self.occupy_launching(now, run, unit, attempt, log);
        self.choose_agent(run, unit, out);
        out.push(Action::Launch { run, unit, attempt });
    }

    /// Takes a slot for attempt `attempt` of `unit` (run `run`), launching now, its output to
    /// `log`.
    pub(super) fn occupy_launching(
        &mut self,
        now: Instant,
        run: RunId,
        unit: Unit,
        attempt: u32,
        log: PathBuf,
    ) {
        let rr = RunRec::new(unit, attempt, Stage::Launching, now, self.budget(unit), log);
        self.occupy(now, run, rr);
    }

    /// How long an attempt may run: the task timeout, or for a plan agent the timeout of each
    /// remaining task.
    pub(super) fn budget(&self, unit: Unit) -> Duration {
        let p = unit.plan();
        let timeout = self.spec(p).map_or(Duration::ZERO, |s| s.entry.timeout);
        match unit {
            Unit::Task { .. } => timeout,
            Unit::PlanAgent { .. } => timeout.saturating_mul(
                u32::try_from(self.frontier.unfinished(p).max(1)).unwrap_or(u32::MAX),
            ),
        }
    }

    /// Takes a slot for an attempt and sets its timers.
    pub(super) fn occupy(&mut self, now: Instant, run: RunId, mut rr: RunRec) {
        let p = rr.unit.plan();
        self.state.plans[p].running += 1;
        let elapsed = now.saturating_duration_since(rr.started);
        let deadline = now + rr.budget.saturating_sub(elapsed);
        self.state.timers.insert((deadline, Timer::Deadline(run)));
        if let Some(limit) = self.cfg.stuck_after {
            let at = now + limit;
            rr.quiet_key = Some(at);
            self.state.timers.insert((at, Timer::Quiet(run)));
        }
        self.state.runs.insert(run, rr);
    }

    /// Gives back the slot of an attempt that is over; returns it.
    pub(super) fn release(&mut self, run: RunId) -> Option<RunRec> {
        self.clear_timers(run);
        let rr = self.state.runs.remove(&run)?;
        let plan = &mut self.state.plans[rr.unit.plan()];
        plan.running = plan.running.saturating_sub(1);
        Some(rr)
    }

    pub(super) fn clear_timers(&mut self, run: RunId) {
        let Some(rr) = self.state.runs.get_mut(&run) else {
            return;
        };
        if let Some(at) = rr.quiet_key.take() {
            self.state.timers.remove(&(at, Timer::Quiet(run)));
        }
        self.state
            .timers
            .retain(|(_, timer)| *timer != Timer::Asked(run));
        let deadline = rr.started + rr.budget;
        // The deadline was set from the time of the launch or adoption: find it by its run.
        if !self.state.timers.remove(&(deadline, Timer::Deadline(run))) {
            self.state
                .timers
                .retain(|(_, timer)| *timer != Timer::Deadline(run));
        }
    }

    pub(super) fn start_commit(&mut self, p: usize, t: usize, out: &mut Vec<Action>) {
        let changes = if self.state.plans[p].running > 0 {
            Changes::Leave
        } else {
            Changes::Take
        };
        self.state.tasks[p][t].run = TaskRun::Committing;
        self.state.plans[p].committing += 1;
        self.state.committing += 1;
        self.sync_node(p, t);
        out.push(Action::Commit {
            plan: p,
            task: t,
            changes,
        });
    }

    /// A task of plan `p` ended: tasks held back for naming its files may go.
    pub(super) fn after_task(&mut self, p: usize) {
        if self.frontier.holds(p) {
            self.frontier.release_held(p);
        }
    }

    /// Tells the frontier a task's scheduling state.
    pub(super) fn sync_node(&mut self, p: usize, t: usize) {
        let state = self.state.tasks[p][t].node_state();
        let node = self.graph.task_node[p][t];
        self.frontier.set_state(&self.graph, node, state);
    }

    pub(super) fn check_over(&mut self, now: Instant, out: &mut Vec<Action>) -> bool {
        let s = &self.state;
        if s.merging.is_some()
            || !s.runs.is_empty()
            || s.committing > 0
            || s.preparing > 0
            || s.integration.running
            || s.plans.iter().any(|p| p.tree_pending)
            || (self.probing() && !s.graceful)
        {
            return false;
        }
        // Commits no integration test has seen yet are tested before the run ends.
        if self.final_test(now, out) {
            return false;
        }
        // Nothing runs: plans still queued wait on upstream plans that will not be merged.
        for p in std::mem::take(&mut self.state.merge_queue) {
            self.state.plans[p].merge = MergeState::NotMerged(SKIPPED);
            let reason = if self.state.graceful {
                "interrupted before its merge; run `orch merge` to merge it".to_string()
            } else if self.integration_holds(p) {
                format!(
                    "the last integration test named it ({}); run `orch integrate`, then `orch merge`",
                    self.state.integration.failing_names.join(" + ")
                )
            } else {
                format!(
                    "it waits for {}, not merged in this run",
                    self.unmerged_upstreams(p).join(", ")
                )
            };
            out.push(Action::Report(Event::PlanMergeFailed {
                plan: self.plan_name(p),
                result: SKIPPED.to_string(),
                reason,
            }));
        }
        if self.state.graceful {
            return true;
        }
        // Work left in paused plans: the run waits for `orch resume`, and says so once.
        let paused = self.paused_with_work();
        if !paused.is_empty() {
            if !self.state.waiting_on_paused {
                self.state.waiting_on_paused = true;
                out.push(Action::Report(Event::Note {
                    plan: None,
                    message: format!(
                        "waiting: the work left is in paused {}; `orch resume PLAN` goes on",
                        named("plan", &paused)
                    ),
                }));
            }
            return false;
        }
        // Retries still to come keep the run going; schedule() ran just before and launched
        // nothing, so everything else left is stuck. A wait for an agent's reset (or a plan's
        // own hold on it) keeps it going only while work left may use that agent: once a
        // fallback has done every task, the run does not idle until a limit resets.
        let waits: Vec<Option<usize>> = (self.state.timers.iter())
            .map(|(_, timer)| match timer {
                Timer::Resume(a) | Timer::Release(a) => Some(*a),
                _ => None,
            })
            .collect();
        if waits.iter().any(Option::is_none) {
            return false;
        }
        !waits.into_iter().flatten().any(|a| self.work_left_for(a))
    }

    /// Whether a plan with tasks still to run may launch agent `a` (its own or a fallback).
    fn work_left_for(&mut self, a: usize) -> bool {
        (0..self.state.plans.len()).any(|p| {
            let plan = &self.state.plans[p];
            (plan.agent_index == a || plan.fallbacks.contains(&a))
                && self.spec(p).is_some()
                && !self.is_removed(p)
                && !plan.finished
                && self.frontier.head(&self.graph, p).is_some()
        })
    }
}
