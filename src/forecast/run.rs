//! What `orch up` keeps of its attempts for the forecasts: each settled attempt appended to the
//! history (from the run's events: a start, then a finish or a failure), and the attempts that
//! run past the p90 of their kind (`task_slow`, once per attempt).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use super::estimate::{Estimate, Estimator, Kind};
use super::history::{History, Outcome, Record, Writer};
use crate::supervisor::Event;
use crate::workspace::Workspace;

/// What the history records of a task besides its attempt.
#[derive(Clone, Debug)]
struct TaskInfo {
    phase: u32,
    description: String,
    estimate_s: Option<u64>,
}

/// A plan's agent, model and tasks.
#[derive(Clone, Debug)]
struct PlanInfo {
    agent: String,
    model: String,
    /// Its place among the workspace's plans, and its priority.
    order: u32,
    priority: i64,
    tasks: HashMap<String, TaskInfo>,
}

/// A running attempt.
#[derive(Clone, Debug)]
struct Running {
    attempt: u32,
    started: Instant,
    estimate: Estimate,
    slow_sent: bool,
}

/// The run's history writer and slow-attempt watch.
#[derive(Debug)]
pub(crate) struct RunWatch {
    run: String,
    plans: HashMap<String, PlanInfo>,
    estimator: Estimator,
    writer: Writer,
    /// By plan, task and attempt (the attempts of a best-of-N round run side by side).
    running: HashMap<(String, String, u32), Running>,
    /// Tasks whose attempts ran as a best-of-N round: each attempt is recorded when it is
    /// settled (`attempt_finished`), not the round's end.
    rounds: HashSet<(String, String)>,
    /// Notes about the history (its skipped lines, a write that failed), taken by the caller.
    notes: Vec<String>,
}

/// The model an agent's command line names (`--model X`, `--model=X`, `-m X`), else its name.
pub(crate) fn model_of(agent: &str, command: &[String]) -> String {
    let mut it = command.iter();
    while let Some(a) = it.next() {
        if let Some(m) = a.strip_prefix("--model=") {
            return m.to_string();
        }
        if (a == "--model" || a == "-m")
            && let Some(m) = it.next()
        {
            return m.clone();
        }
    }
    agent.to_string()
}

impl RunWatch {
    /// The watch of a run of `ws` writing `<state_dir>/.history.jsonl`; it learns from the
    /// history there.
    pub(crate) fn new(ws: &Workspace, state_dir: &Path) -> RunWatch {
        let history = History::load(state_dir);
        let mut notes: Vec<String> = history
            .skipped
            .iter()
            .take(3)
            .map(|s| format!("{}: {s}", super::history::FILE))
            .collect();
        if history.skipped.len() > 3 {
            notes.push(format!(
                "{}: {} more lines skipped",
                super::history::FILE,
                history.skipped.len() - 3
            ));
        }
        let plans = ws
            .plans
            .iter()
            .zip(super::agents(ws))
            .enumerate()
            .map(|(order, (lp, agent))| {
                let command = ws
                    .manifest
                    .as_ref()
                    .and_then(|m| m.agents.get(&agent))
                    .map(|a| a.command.clone())
                    .unwrap_or_default();
                let tasks = lp
                    .plan
                    .tasks
                    .iter()
                    .map(|t| {
                        (
                            t.id.clone(),
                            TaskInfo {
                                phase: t.phase,
                                description: t.description.clone(),
                                estimate_s: t.estimate_s,
                            },
                        )
                    })
                    .collect();
                let model = model_of(&agent, &command);
                (
                    lp.name.clone(),
                    PlanInfo {
                        agent,
                        model,
                        order: u32::try_from(order).unwrap_or(u32::MAX),
                        priority: lp.priority,
                        tasks,
                    },
                )
            })
            .collect();
        RunWatch {
            run: super::rfc3339(chrono::Utc::now()),
            plans,
            estimator: Estimator::new(&history.records),
            writer: Writer::open(state_dir),
            running: HashMap::new(),
            rounds: HashSet::new(),
            notes,
        }
    }

    /// Notes to show once (skipped history lines, a history that cannot be written).
    pub(crate) fn take_notes(&mut self) -> Vec<String> {
        if let Some(why) = self.writer.failed.take() {
            self.notes.push(format!("history not written: {why}"));
        }
        std::mem::take(&mut self.notes)
    }

    fn estimate(&self, plan: &str, task: &str) -> Option<Estimate> {
        let p = self.plans.get(plan)?;
        let t = p.tasks.get(task)?;
        Some(self.estimator.estimate(&Kind {
            plan,
            agent: &p.agent,
            estimate_s: t.estimate_s,
        }))
    }

    /// Takes in one event of the run.
    pub(crate) fn event(&mut self, e: &Event) {
        let now = Instant::now();
        match e {
            Event::TaskStarted {
                plan,
                task,
                kind,
                attempt,
                ..
            } if kind == "task" && !task.is_empty() => self.start(plan, task, *attempt, now),
            Event::TaskAdopted { plan, task, .. } if !task.is_empty() => {
                self.start(plan, task, 1, now);
            }
            Event::TaskFinished {
                plan,
                task,
                duration_ms,
                usage,
                ..
            } => {
                if self.rounds.remove(&(plan.clone(), task.clone())) {
                    return;
                }
                let attempt = self.take_running(plan, task);
                self.record(
                    plan,
                    task,
                    attempt.map_or(1, |a| a.attempt),
                    *duration_ms,
                    usage.as_ref(),
                    Outcome::Done,
                );
            }
            Event::TaskFailed {
                plan,
                task,
                attempt,
                usage,
                ..
            } => {
                if self.rounds.remove(&(plan.clone(), task.clone())) {
                    return;
                }
                if let Some(r) = self.take_running(plan, task) {
                    let ms = now.duration_since(r.started).as_millis() as u64;
                    self.record(plan, task, *attempt, ms, usage.as_ref(), Outcome::Failed);
                }
            }
            // An attempt of a best-of-N round: its own time and usage. One stopped by orch is
            // not recorded (its time says nothing of how long it would have taken).
            Event::AttemptFinished {
                plan,
                task,
                attempt,
                usage,
                outcome,
                ..
            } => {
                self.rounds.insert((plan.clone(), task.clone()));
                let key = (plan.clone(), task.clone(), *attempt);
                let Some(r) = self.running.remove(&key) else {
                    return;
                };
                let ms = now.duration_since(r.started).as_millis() as u64;
                let outcome = match outcome.as_str() {
                    "picked" | "candidate" => Outcome::Done,
                    "stopped" => return,
                    _ => Outcome::Failed,
                };
                self.record(plan, task, *attempt, ms, usage.as_ref(), outcome);
            }
            _ => {}
        }
    }

    /// The running attempt of a task that runs one at a time (whichever attempt it is).
    fn take_running(&mut self, plan: &str, task: &str) -> Option<Running> {
        let key = self
            .running
            .keys()
            .find(|(p, t, _)| p == plan && t == task)
            .cloned()?;
        self.running.remove(&key)
    }

    fn start(&mut self, plan: &str, task: &str, attempt: u32, now: Instant) {
        let Some(estimate) = self.estimate(plan, task) else {
            return;
        };
        self.running.insert(
            (plan.to_string(), task.to_string(), attempt),
            Running {
                attempt,
                started: now,
                estimate,
                slow_sent: false,
            },
        );
    }

    fn record(
        &mut self,
        plan: &str,
        task: &str,
        attempt: u32,
        duration_ms: u64,
        usage: Option<&crate::agent_output::Usage>,
        outcome: Outcome,
    ) {
        let Some(p) = self.plans.get(plan) else {
            return;
        };
        let Some(t) = p.tasks.get(task) else {
            return;
        };
        let r = Record {
            at: super::history::stamp(chrono::Utc::now()),
            run: self.run.clone(),
            plan: plan.to_string(),
            task: task.to_string(),
            phase: t.phase,
            description: t.description.clone(),
            agent: p.agent.clone(),
            model: p.model.clone(),
            duration_ms,
            tokens: usage.map_or(0, crate::agent_output::Usage::tokens),
            cost_micro_usd: usage.and_then(|u| u.cost_micro_usd),
            outcome,
            attempt,
            estimate_s: t.estimate_s,
            plan_order: Some(p.order),
            plan_priority: Some(p.priority),
        };
        self.writer.append(&r);
        // Learnt at once: the next attempts of the run are judged with it.
        self.estimator.add(&r);
    }

    /// The `task_slow` events due at `now`: attempts past the p90 of their kind, each once.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<Event> {
        let mut out = Vec::new();
        for ((plan, task, _), r) in &mut self.running {
            let elapsed = now.duration_since(r.started).as_secs_f64();
            if r.slow_sent || !r.estimate.is_slow(elapsed) {
                continue;
            }
            r.slow_sent = true;
            out.push(Event::TaskSlow {
                plan: plan.clone(),
                task: task.clone(),
                attempt: r.attempt,
                elapsed_ms: (elapsed * 1000.0) as u64,
                p90_ms: (r.estimate.duration.quantile(0.9) * 1000.0) as u64,
                samples: r.estimate.samples,
            });
        }
        out.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        out
    }
}
