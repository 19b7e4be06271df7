//! Best of N in the core: a task's round of N sibling attempts launched together, each one's
//! result from the facts the effects report (its report, its exit, its check, its measure and
//! score), the pick, the settling of every attempt (the pick committed and landed, the others
//! saved), and the task's outcome: done with the pick, or failed when no attempt is a
//! candidate (then `retries` gives it another round).

use std::time::Instant;

use super::{Action, Core, Measure, millis};
use crate::agent_output::AgentOutput;
use crate::manifest::AttemptsStop;
use crate::supervisor::event::Event;
use crate::supervisor::round::{Member, MemberState, Reported, Round, member_key, round_size};
use crate::supervisor::state::{
    CheckOutcome, Ending, Outcome, RunId, Settlement, Stage, StopWhy, TaskRun, Unit,
};

impl Core {
    /// How many attempts of task `t` of plan `p` run at once: its `(attempts: N)`, else its
    /// plan's `attempts`; 1 for a plan without task worktrees, a plan-mode plan, a VERIFY step.
    pub(super) fn round_size(&self, p: usize, t: usize) -> u32 {
        let Some(spec) = self.spec(p) else { return 1 };
        let rounds = spec.task_trees && spec.mode == crate::manifest::AgentMode::Task;
        round_size(&self.plans[p].tasks[t], rounds, spec.entry.best_of.attempts)
    }

    /// Attempts of a round beyond its first still holding a slot of plan `p`: a round counts as
    /// one of the plan's tasks at once (each of its attempts counts against `max_agents`).
    pub(super) fn round_extra(&self, p: usize) -> usize {
        self.state
            .rounds
            .iter()
            .filter(|((rp, _), _)| *rp == p)
            .map(|(_, r)| {
                r.members
                    .iter()
                    .filter(|m| self.state.runs.contains_key(&m.run))
                    .count()
                    .saturating_sub(1)
            })
            .sum()
    }

    /// Launches a round of `n` attempts of task `t` of plan `p`, each with its own number.
    pub(super) fn launch_round(
        &mut self,
        now: Instant,
        p: usize,
        t: usize,
        n: u32,
        out: &mut Vec<Action>,
    ) {
        let unit = Unit::Task { plan: p, task: t };
        let number = self.state.rounds.get(&(p, t)).map_or(1, |r| r.number + 1);
        let mut members = Vec::new();
        // Attempt numbers go on from those the status file recorded (an earlier run's round):
        // each attempt's report directory, log and saved ref are its own.
        let rec = &mut self.state.tasks[p][t];
        if rec.attempts == 0 && rec.retry_base == 0 {
            rec.attempts = rec.facts.attempts;
            rec.retry_base = rec.facts.attempts;
        }
        for _ in 0..n {
            let rec = &mut self.state.tasks[p][t];
            rec.attempts += 1;
            let attempt = rec.attempts;
            let run = self.new_run();
            let log = self.member_log(p, t, attempt);
            self.occupy_launching(now, run, unit, attempt, log);
            self.state.members.insert(run, (p, t));
            members.push(Member::new(run, attempt));
            out.push(Action::LaunchMember { run, unit, attempt });
        }
        self.state.rounds.insert(
            (p, t),
            Round {
                number,
                members,
                decided: false,
                winner: None,
                why: String::new(),
                started: now,
            },
        );
        self.state.tasks[p][t].run = TaskRun::Round;
        self.sync_node(p, t);
    }

    /// The log of attempt `attempt` of a round of task `t`: `<log_dir>/<id>.a<attempt>.log`.
    pub(super) fn member_log(&self, p: usize, t: usize, attempt: u32) -> std::path::PathBuf {
        let key = member_key(self.task_id(p, t), attempt);
        self.spec(p)
            .map(|s| s.log_path(Some(&key)))
            .unwrap_or_default()
    }

    fn member_mut(&mut self, run: RunId) -> Option<&mut Member> {
        let key = *self.state.members.get(&run)?;
        self.state.rounds.get_mut(&key)?.member_mut(run)
    }

    /// An attempt of a round reported (its own report directory): kept for its exit.
    pub(super) fn on_member_reported(&mut self, run: RunId, reported: Reported) {
        let Some(m) = self.member_mut(run) else {
            return;
        };
        if m.state == MemberState::Running {
            m.reported = Some(reported);
        }
    }

    /// Sets attempt `run`'s state unless it is resolved already (stopped once another was
    /// picked).
    fn resolve(&mut self, run: RunId, state: MemberState) {
        if let Some(m) = self.member_mut(run)
            && !m.resolved()
        {
            m.state = state;
        }
    }

    /// An attempt of a round could not be launched.
    pub(super) fn member_launch_failed(
        &mut self,
        now: Instant,
        run: RunId,
        error: String,
        fatal: Option<crate::agent_output::Fatal>,
        out: &mut Vec<Action>,
    ) {
        let Some(&(p, t)) = self.state.members.get(&run) else {
            return;
        };
        if let Some(kind) = fatal {
            let a = self.state.plans[p].agent_index;
            self.stop_agent(a, kind, error.clone(), out);
        }
        if let Some(rr) = self.state.runs.get_mut(&run) {
            rr.stage = Stage::Settling;
        }
        self.clear_timers(run);
        if let Some(m) = self.member_mut(run) {
            m.ended = true;
        }
        self.resolve(
            run,
            MemberState::Lost {
                cause: format!("could not start: {error}"),
            },
        );
        self.advance_round(now, p, t, out);
    }

    /// An attempt of a round ended: its report (or its exit, with `report = "exit"`) says
    /// done → its check, then its measure; anything else makes it no candidate.
    pub(super) fn member_exited(
        &mut self,
        now: Instant,
        run: RunId,
        ending: Ending,
        output: AgentOutput,
        out: &mut Vec<Action>,
    ) {
        let Some(&(p, t)) = self.state.members.get(&run) else {
            return;
        };
        if self.agent_ended(run, &output, out).is_none() {
            return;
        }
        let Some(m) = self.member_mut(run) else {
            return;
        };
        m.ended = true;
        m.usage = output.usage;
        if m.resolved() {
            // Stopped once another attempt was picked.
            self.advance_round(now, p, t, out);
            return;
        }
        let reported = m.reported.clone();
        let how = match reported {
            Some(Reported::Done) => self.check_or_commit(run, out),
            Some(Reported::Failed(error)) => Some(Settlement::Fail {
                error: format!(
                    "reported failure: {}{}",
                    error.unwrap_or_else(|| "(no reason given)".into()),
                    output.sandbox_note()
                ),
                record: false,
            }),
            Some(Reported::Skipped) => Some(Settlement::Fail {
                error: "reported the task skipped (a skip is no candidate)".into(),
                record: false,
            }),
            None => self.unreported(now, run, p, &ending, &output, out),
        };
        match how {
            // Its check runs (`check_or_commit` asked for it).
            None => self.resolve_stage(run, MemberState::Checking),
            Some(Settlement::Commit) => self.measure(run, out),
            Some(Settlement::Fail { error, .. }) => {
                self.resolve(run, MemberState::Lost { cause: error });
            }
            Some(Settlement::Interrupt { note }) => {
                self.resolve(run, MemberState::Lost { cause: note });
            }
            Some(_) => {}
        }
        self.advance_round(now, p, t, out);
    }

    fn resolve_stage(&mut self, run: RunId, state: MemberState) {
        if let Some(m) = self.member_mut(run) {
            m.state = state;
        }
    }

    /// Asks for attempt `run`'s measure (its change checked and sized, its `select` run).
    fn measure(&mut self, run: RunId, out: &mut Vec<Action>) {
        let Some(rr) = self.state.runs.get_mut(&run) else {
            return;
        };
        rr.stage = Stage::Checking;
        let (unit, attempt) = (rr.unit, rr.attempt);
        self.resolve_stage(run, MemberState::Measuring);
        out.push(Action::Measure { run, unit, attempt });
    }

    /// An attempt of a round's check ran.
    pub(super) fn member_checked(
        &mut self,
        now: Instant,
        run: RunId,
        result: CheckOutcome,
        out: &mut Vec<Action>,
    ) {
        let Some(&(p, t)) = self.state.members.get(&run) else {
            return;
        };
        let note = self
            .state
            .runs
            .get(&run)
            .map(|rr| rr.sandbox_note.clone())
            .unwrap_or_default();
        match result {
            CheckOutcome::Passed => self.measure(run, out),
            CheckOutcome::Failed(error) => self.resolve_stage(
                run,
                MemberState::Lost {
                    cause: format!("failed its check: {error}{note}"),
                },
            ),
            CheckOutcome::Stopped => self.resolve_stage(
                run,
                MemberState::Lost {
                    cause: "stopped by orch while its check ran".into(),
                },
            ),
            CheckOutcome::Lost(why) => self.resolve_stage(
                run,
                MemberState::Lost {
                    cause: format!("its check did not run to its end: {why}"),
                },
            ),
        }
        self.advance_round(now, p, t, out);
    }

    /// An attempt's measure: a candidate, or why not.
    pub(super) fn on_measured(
        &mut self,
        now: Instant,
        run: RunId,
        result: Result<Measure, String>,
        out: &mut Vec<Action>,
    ) {
        let Some(&(p, t)) = self.state.members.get(&run) else {
            return;
        };
        let state = match result {
            Ok(Measure { lines, score }) => MemberState::Candidate { score, lines },
            Err(cause) => MemberState::Lost { cause },
        };
        self.resolve_stage(run, state);
        self.advance_round(now, p, t, out);
    }

    /// Decides the round when it can (the first candidate with `attempts_stop = "first"` and
    /// no `select`; else once every attempt is resolved), stops the attempts still running
    /// once the pick is made, and settles every attempt once all have ended.
    fn advance_round(&mut self, _now: Instant, p: usize, t: usize, out: &mut Vec<Action>) {
        let (select, stop_first, checked) = match self.spec(p).map(|s| &s.entry.best_of) {
            Some(b) => (
                b.select.is_some(),
                b.stop == AttemptsStop::First,
                self.has_check(p, t),
            ),
            None => return,
        };
        let Some(round) = self.state.rounds.get_mut(&(p, t)) else {
            return;
        };
        if !round.decided {
            let any_candidate = round
                .members
                .iter()
                .any(|m| matches!(m.state, MemberState::Candidate { .. }));
            let all_resolved = round.members.iter().all(Member::resolved);
            if (stop_first && !select && any_candidate) || all_resolved {
                round.decided = true;
                round.winner = round.best();
                if let Some(w) = round.winner {
                    let picked = round.members[w].attempt;
                    let mut stop = Vec::new();
                    for m in &mut round.members {
                        if m.state == MemberState::Running {
                            m.state = MemberState::Lost {
                                cause: format!("stopped: attempt {picked} was picked"),
                            };
                            stop.push(m.run);
                        }
                    }
                    for run in stop {
                        self.stop(run, Some(StopWhy::User), out);
                    }
                }
            }
        }
        let Some(round) = self.state.rounds.get_mut(&(p, t)) else {
            return;
        };
        let ready = round.decided && round.members.iter().all(|m| m.ended && m.resolved());
        if !ready {
            return;
        }
        if let Some(w) = round.winner {
            round.why = round.pick_words(w, checked);
        }
        let why = round.why.clone();
        let winner = round.winner.map(|w| round.members[w].run);
        let mut settle = Vec::new();
        for m in &mut round.members {
            if m.settling {
                continue;
            }
            m.settling = true;
            let how = if Some(m.run) == winner {
                Settlement::Pick { why: why.clone() }
            } else {
                Settlement::Lose {
                    cause: match &m.state {
                        MemberState::Lost { cause } => cause.clone(),
                        MemberState::Candidate { score, lines } => format!(
                            "not picked ({}{lines} lines)",
                            score.map(|s| format!("score {s}, ")).unwrap_or_default()
                        ),
                        _ => "did not finish".to_string(),
                    },
                }
            };
            settle.push((m.run, how));
        }
        for (run, how) in settle {
            self.settle(run, how, out);
        }
    }

    /// An attempt of a round is settled: its slot is free; the round ends with its last.
    pub(super) fn member_settled(
        &mut self,
        now: Instant,
        run: RunId,
        outcome: Outcome,
        out: &mut Vec<Action>,
    ) {
        let Some(&(p, t)) = self.state.members.get(&run) else {
            return;
        };
        let rr = self.release(run);
        self.state.members.remove(&run);
        let n = self
            .state
            .rounds
            .get(&(p, t))
            .map_or(0, |r| r.members.len() as u32);
        let Some(round) = self.state.rounds.get_mut(&(p, t)) else {
            return;
        };
        let picked = round.winner.map(|w| round.members[w].run) == Some(run);
        let why = round.why.clone();
        let Some(m) = round.member_mut(run) else {
            return;
        };
        let (cause, saved) = match (&outcome, &m.state) {
            (Outcome::Done { .. }, _) => (why, None),
            (Outcome::Failed { error, saved }, _) if picked => (error.clone(), saved.clone()),
            (Outcome::Conflict { saved, .. }, _) => ("its commit conflicts".into(), saved.clone()),
            (Outcome::Failed { saved, .. }, MemberState::Lost { cause }) => {
                (cause.clone(), saved.clone())
            }
            (Outcome::Failed { error, saved }, _) => (error.clone(), saved.clone()),
            (_, MemberState::Lost { cause }) => (cause.clone(), None),
            _ => (String::new(), None),
        };
        let attempt = m.attempt;
        let usage = m.usage;
        let ended = match &m.state {
            _ if picked => "picked",
            MemberState::Candidate { .. } => "candidate",
            // The causes this file gives an attempt it stops.
            MemberState::Lost { cause } if cause.starts_with("stopped") => "stopped",
            _ if outcome == Outcome::Interrupted => "stopped",
            _ => "failed",
        };
        m.settled = Some(outcome);
        let cause = crate::supervisor::round::shown(&cause);
        out.push(Action::Report(Event::AttemptFinished {
            plan: self.plan_name(p),
            task: self.task_id(p, t).to_string(),
            attempt,
            of: n,
            picked,
            cause,
            saved,
            log: rr.map(|r| r.log).unwrap_or_default(),
            usage,
            outcome: ended.to_string(),
        }));
        let done = self
            .state
            .rounds
            .get(&(p, t))
            .is_some_and(|r| r.members.iter().all(|m| m.settled.is_some()));
        if done {
            self.finish_round(now, p, t, out);
        }
    }

    /// Every attempt of the round is settled: the task is done with the pick, runs again
    /// (a conflict, an interruption), or failed (then `retries` gives it another round).
    fn finish_round(&mut self, now: Instant, p: usize, t: usize, out: &mut Vec<Action>) {
        let Some(round) = self.state.rounds.get(&(p, t)).cloned() else {
            return;
        };
        let usage = round.usage();
        let name = self.plan_name(p);
        let id = self.task_id(p, t).to_string();
        let winner = round.winner.map(|w| &round.members[w]);
        let last = round.members.last().map_or(0, |m| m.attempt);
        let log = winner.map_or_else(
            || self.member_log(p, t, last),
            |w| self.member_log(p, t, w.attempt),
        );
        let failure = match winner.and_then(|w| w.settled.clone()) {
            Some(Outcome::Done { commit }) => {
                let finished = Event::TaskFinished {
                    plan: name.clone(),
                    task: id.clone(),
                    commit: commit.clone(),
                    duration_ms: millis(now.saturating_duration_since(round.started)),
                    usage,
                    pick: Some(round.why.clone()),
                };
                self.task_done(p, t, commit, finished, out);
                None
            }
            Some(Outcome::Conflict { paths, saved }) => {
                let attempt = winner.map_or(last, |w| w.attempt);
                self.on_conflict(p, t, attempt, paths, saved, log.clone(), out);
                None
            }
            Some(Outcome::Failed { error, .. }) => {
                Some(format!("{}: its commit failed: {error}", round.why))
            }
            _ if self.state.stopping => {
                // Stopped with the run (second Ctrl-C, SIGTERM): pending again, as an
                // interrupted attempt is.
                self.pending_again(p, t);
                None
            }
            _ => Some(round.failure_words()),
        };
        if let Some(error) = failure {
            let spec_retries = self.spec(p).map_or(0, |s| s.entry.retries);
            let n = round.members.len() as u32;
            let rec = &self.state.tasks[p][t];
            let spent = rec.attempts.saturating_sub(rec.retry_base);
            let retry = !self.state.graceful
                && !rec.facts.stopped
                && spent <= spec_retries.saturating_mul(n);
            let unit = Unit::Task { plan: p, task: t };
            let wait = self.failed(now, unit, round.number, retry, &error);
            out.push(Action::RecordFailure {
                plan: p,
                task: t,
                error: error.clone(),
            });
            out.push(Action::Report(Event::TaskFailed {
                plan: name,
                task: id,
                attempt: last,
                error,
                retry_in_ms: wait.map(millis),
                saved: None,
                log,
                usage,
            }));
        }
        // The round's number stays for the next one; its attempts are over.
        if let Some(r) = self.state.rounds.get_mut(&(p, t)) {
            r.members.clear();
            r.decided = false;
            r.winner = None;
        }
        let rec = &mut self.state.tasks[p][t];
        rec.retried = None;
        self.sync_node(p, t);
        self.after_task(p);
    }

    /// A person stopped the task (`orch stop`): every running attempt of its round stops.
    pub(super) fn stop_round(&mut self, p: usize, t: usize, out: &mut Vec<Action>) {
        let Some(round) = self.state.rounds.get(&(p, t)) else {
            return;
        };
        let live: Vec<(RunId, u32)> = round
            .members
            .iter()
            .filter(|m| m.state == MemberState::Running)
            .map(|m| (m.run, m.attempt))
            .collect();
        let first = live.first().map(|(_, a)| *a);
        for (run, _) in live {
            self.stop(run, Some(StopWhy::User), out);
        }
        if let Some(attempt) = first {
            self.report_stopped(p, t, attempt, out);
        }
    }
}
