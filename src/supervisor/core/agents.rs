//! Agents and spending: an agent paused at a usage limit or stopped for a failure only a person
//! can fix, the check before a task's commit, and the budgets of the run and its plans.

use std::time::{Duration, Instant};

use super::{Action, Core, MAX_PAUSE, millis};
use crate::agent_output::{AgentOutput, Fatal, Usage};
use crate::supervisor::event::Event;
use crate::supervisor::state::{
    AgentState, CheckOutcome, RunId, RunRec, Settlement, Stage, TaskRun, Timer, Unit,
};

impl Core {
    /// Whether plan `p`'s agent, or a fallback of it, may be launched now.
    pub(super) fn agent_ready(&self, p: usize) -> bool {
        let a = self.state.plans[p].agent_index;
        self.state.agents.get(a).is_none() || self.agent_for(p).is_some()
    }

    /// An attempt that does not count against the unit's retries (a limit, a fatal failure).
    pub(super) fn not_counted(&mut self, rr: &RunRec) {
        match rr.unit {
            Unit::Task { plan, task } => {
                let rec = &mut self.state.tasks[plan][task];
                rec.attempts = rec.attempts.saturating_sub(1);
            }
            Unit::PlanAgent { plan } => {
                let plan = &mut self.state.plans[plan];
                plan.agent_attempts = plan.agent_attempts.saturating_sub(1);
            }
        }
    }

    /// Agent `a` (the one an attempt ran: its plan's, or a fallback) cannot work until a
    /// person fixes something: nothing of it starts any more in this run.
    pub(super) fn stop_agent(
        &mut self,
        a: usize,
        kind: Fatal,
        cause: String,
        out: &mut Vec<Action>,
    ) {
        let before = self.choices();
        let Some(agent) = self.state.agents.get_mut(a) else {
            return;
        };
        if matches!(agent.state, AgentState::Stopped { .. }) {
            return;
        }
        if let AgentState::Paused { until, .. } = agent.state {
            self.state.timers.remove(&(until, Timer::Resume(a)));
        }
        let fix = kind.fix(&agent.name);
        agent.state = AgentState::Stopped {
            cause: cause.clone(),
            fix: fix.clone(),
        };
        out.push(Action::Report(Event::AgentStopped {
            agent: agent.name.clone(),
            class: kind.as_str().to_string(),
            cause,
            fix,
            plan: None,
        }));
        self.report_moves(&before, out);
    }

    /// Agent `a` (the one an attempt ran, by orch's record of it) hit a usage or rate limit:
    /// nothing of it starts until the time its client named (`wait`), or a backoff that
    /// doubles with each pause in a row; the plans that use it go to a fallback meanwhile.
    pub(super) fn pause_agent(
        &mut self,
        now: Instant,
        a: usize,
        wait: Option<Duration>,
        reason: String,
        out: &mut Vec<Action>,
    ) {
        let before = self.choices();
        let base = self.cfg.limit_backoff;
        let Some(agent) = self.state.agents.get_mut(a) else {
            return;
        };
        let wait = match wait {
            Some(w) => {
                agent.pauses = 0;
                w.max(Duration::from_millis(500))
            }
            None => {
                agent.pauses += 1;
                base.saturating_mul(1u32 << (agent.pauses - 1).min(16))
                    .min(MAX_PAUSE)
            }
        };
        let until = now + wait;
        match &agent.state {
            AgentState::Stopped { .. } | AgentState::Unusable { .. } => return,
            AgentState::Paused { until: old, .. } => {
                if *old >= until {
                    return;
                }
                let old = *old;
                self.state.timers.remove(&(old, Timer::Resume(a)));
            }
            AgentState::Ready => {}
        }
        let agent = &mut self.state.agents[a];
        agent.state = AgentState::Paused {
            until,
            reason: reason.clone(),
        };
        self.state.timers.insert((until, Timer::Resume(a)));
        let name = agent.name.clone();
        out.push(Action::RecordPause {
            plans: self.plans_of_agent(a),
            pause: Some((name.clone(), reason.clone(), wait)),
        });
        out.push(Action::Report(Event::AgentPaused {
            agent: name,
            reason,
            resume_in_ms: millis(wait),
            plan: None,
        }));
        self.report_moves(&before, out);
    }

    /// A paused agent's time is up: it may launch again (the plans whose own agent it is go
    /// back to it).
    pub(super) fn resume_agent(&mut self, a: usize, out: &mut Vec<Action>) {
        let before = self.choices();
        let Some(agent) = self.state.agents.get_mut(a) else {
            return;
        };
        if matches!(agent.state, AgentState::Paused { .. }) {
            agent.state = AgentState::Ready;
            let name = agent.name.clone();
            out.push(Action::RecordPause {
                plans: self.plans_of_agent(a),
                pause: None,
            });
            out.push(Action::Report(Event::AgentResumed {
                agent: name,
                plan: None,
            }));
            self.report_moves(&before, out);
        }
    }

    /// The plans of the run whose agent is `a`.
    fn plans_of_agent(&self, a: usize) -> Vec<usize> {
        (0..self.state.plans.len())
            .filter(|&p| self.spec(p).is_some() && self.state.plans[p].agent_index == a)
            .collect()
    }

    /// Whether task `t` of plan `p` has a check to pass before its commit.
    pub(super) fn has_check(&self, p: usize, t: usize) -> bool {
        self.spec(p).is_some_and(|s| s.entry.check.is_some())
            || crate::plan::check_clause(&self.plans[p].tasks[t].description)
                .is_ok_and(|c| c.is_some())
    }

    /// The agent of attempt `run` is done with its task: run the check first if there is one,
    /// else commit.
    pub(super) fn check_or_commit(
        &mut self,
        run: RunId,
        out: &mut Vec<Action>,
    ) -> Option<Settlement> {
        let rr = self.state.runs.get_mut(&run)?;
        let unit = rr.unit;
        let Unit::Task { plan, task } = unit else {
            return Some(Settlement::Commit);
        };
        if !self.has_check(plan, task) {
            return Some(Settlement::Commit);
        }
        let rr = self.state.runs.get_mut(&run)?;
        rr.stage = Stage::Checking;
        let attempt = rr.attempt;
        out.push(Action::Report(Event::TaskChecking {
            plan: self.plan_name(plan),
            task: self.task_id(plan, task).to_string(),
            attempt,
        }));
        out.push(Action::Check { run, unit });
        None
    }

    /// Task `t` of plan `p` was found done but not committed at start-up, and has a check: an
    /// attempt in its checking stage, as if its agent had just ended.
    pub(super) fn recheck(&mut self, now: Instant, p: usize, t: usize, out: &mut Vec<Action>) {
        let unit = Unit::Task { plan: p, task: t };
        let run = self.new_run();
        let rec = &mut self.state.tasks[p][t];
        rec.run = TaskRun::Attempt(run);
        let attempt = rec.attempts.max(1);
        self.sync_node(p, t);
        let log = self.log_of(p, Some(t));
        let rr = RunRec::new(unit, attempt, Stage::Checking, now, self.budget(unit), log);
        self.occupy(now, run, rr);
        // Its process is over: no deadline, no stuck detection.
        self.clear_timers(run);
        out.push(Action::Report(Event::TaskChecking {
            plan: self.plan_name(p),
            task: self.task_id(p, t).to_string(),
            attempt,
        }));
        out.push(Action::Check { run, unit });
    }

    /// The check of attempt `run` ran: commit, or fail the attempt with the check's output.
    pub(super) fn on_checked(&mut self, run: RunId, result: CheckOutcome, out: &mut Vec<Action>) {
        let Some(rr) = self.state.runs.get_mut(&run) else {
            return;
        };
        if rr.stage != Stage::Checking {
            return;
        }

        let note = std::mem::take(&mut rr.sandbox_note);
        let how = match result {
            CheckOutcome::Passed => Settlement::Commit,
            CheckOutcome::Failed(error) => Settlement::Fail {
                error: format!("{error}{note}"),
                record: true,
            },
            CheckOutcome::Stopped => Settlement::Interrupt {
                note:
                    "stopped by orch while its check ran; it will run again on the next `orch up`"
                        .to_string(),
            },
            CheckOutcome::Lost(why) => {
                let plan = self.state.runs.get(&run).map(|rr| rr.unit.plan());
                if self.lost_not_counted(run) {
                    out.push(Action::Report(Event::Note {
                        plan: plan.map(|p| self.plan_name(p)),
                        message: format!(
                            "attempt lost (not counted, the task runs again): {}",
                            why.lines().next().unwrap_or_default()
                        ),
                    }));
                    Settlement::Interrupt {
                        note: format!(
                            "{}: the attempt does not count, and the task runs again from the plan branch's tip",
                            why.lines().next().unwrap_or_default()
                        ),
                    }
                } else {
                    Settlement::Fail {
                        error: format!("{why}{note}"),
                        record: true,
                    }
                }
            }
        };
        self.settle(run, how, out);
    }

    /// Attempt `run`'s agent ended with `output`: the attempt settles from here (no timer
    /// left), what its agent spent is counted. Its unit; `None` when it is not in flight.
    pub(super) fn agent_ended(
        &mut self,
        run: RunId,
        output: &AgentOutput,
        out: &mut Vec<Action>,
    ) -> Option<Unit> {
        let rr = self.state.runs.get_mut(&run)?;
        rr.stage = Stage::Settling;
        rr.usage = output.usage;
        rr.sandbox_note = output.sandbox_note();
        let unit = rr.unit;
        self.clear_timers(run);
        self.spend(unit.plan(), output.usage, out);
        Some(unit)
    }

    /// Attempt `run` is over: settle it as `how` says (its unit, number and what its agent
    /// spent from its record).
    pub(super) fn settle(&mut self, run: RunId, how: Settlement, out: &mut Vec<Action>) {
        let Some(rr) = self.state.runs.get_mut(&run) else {
            return;
        };
        rr.stage = Stage::Settling;
        out.push(Action::Settle {
            run,
            unit: rr.unit,
            attempt: rr.attempt,
            how,
            usage: rr.usage,
        });
    }

    /// Counts what attempt `rr`'s agent spent; a budget it reaches stops new launches.
    pub(super) fn spend(&mut self, p: usize, usage: Option<Usage>, out: &mut Vec<Action>) {
        let Some(u) = usage else { return };
        self.state.usage = self.state.usage.plus(&u);
        self.state.plans[p].usage = self.state.plans[p].usage.plus(&u);
        self.check_budgets(p, out);
    }

    /// Reports the run's budget, or plan `p`'s, reached (once each).
    pub(super) fn check_budgets(&mut self, p: usize, out: &mut Vec<Action>) {
        if self.state.budget_hit.is_none() {
            let u = self.state.usage;
            if let Some(why) = self
                .cfg
                .budget
                .reached(u.cost_micro_usd.unwrap_or(0), u.tokens())
            {
                self.state.budget_hit = Some(why.clone());
                out.push(Action::Report(Event::BudgetReached {
                    plan: None,
                    reason: why,
                    usage: u,
                }));
            }
        }
        let Some(spec) = self.spec(p) else { return };
        let budget = spec.entry.budget;
        let plan = &self.state.plans[p];
        if plan.budget_hit.is_none()
            && let Some(why) =
                budget.reached(plan.usage.cost_micro_usd.unwrap_or(0), plan.usage.tokens())
        {
            let usage = plan.usage;
            self.state.plans[p].budget_hit = Some(why.clone());
            out.push(Action::Report(Event::BudgetReached {
                plan: Some(self.plan_name(p)),
                reason: why,
                usage,
            }));
        }
    }
}
