//! Watching an attempt once it runs: its monitor (process or job, stop requests, its log, its
//! private directories and the wrapper's record of its ending) handed to
//! [`crate::supervisor::attempt::watch`].

use tokio::sync::watch;

use crate::supervisor::attempt::{Monitor, Proc};
use crate::supervisor::runner::Effects;
use crate::supervisor::state::{RunId, StopWhy, Unit};

impl Effects<'_> {
    /// Watches an attempt's process (or job) until it ends.
    pub(crate) fn watch(&mut self, run: RunId, unit: Unit, attempt: u32, pid: u32, proc: Proc) {
        let Some(pc) = self.plan(unit.plan()) else {
            return;
        };
        let stop_rx = self.stop_receiver(run);
        let id = unit.task().map(|t| pc.plan.tasks[t].id.clone());
        let log_id = self.members.get(&run).cloned().or_else(|| id.clone());
        let keep = self.keep_of(run, &pc, id.as_deref(), attempt);
        let m = Monitor {
            run,
            plan: unit.plan(),
            attempt,
            pid,
            proc,
            log: pc.log_path(log_id.as_deref()),
            status_path: pc.status_path.clone(),
            grace: self.ctx.grace,
            watch_activity: self.ctx.stuck_after.is_some(),
            tmpdir: pc.confined_here().map(|_| {
                crate::supervisor::sandbox::tmp_dir(
                    pc.name(),
                    id.as_deref().unwrap_or("plan"),
                    attempt,
                )
            }),
            client_state: crate::supervisor::client_state::of_attempt_with(
                &pc,
                self.member_agents
                    .get(&run)
                    .map_or(&pc.agent.command, |(_, c)| c),
                id.as_deref().unwrap_or("plan"),
                attempt,
            )
            .map(|(_, dir)| dir),
            keep,
            ended: crate::supervisor::reports::ended_path(
                &pc,
                id.as_deref().unwrap_or("plan"),
                attempt,
            ),
            host_record: pc.executor.place_record(
                &crate::supervisor::reports::state_dir_of(&pc),
                pc.name(),
                id.as_deref().unwrap_or("plan"),
                attempt,
            ),
            told_host: None,
            turn_ended: self.turns.remove(&run),
            stop_one: stop_rx,
            stop_all: self.stop_all.subscribe(),
            tx: self.tx.clone(),
        };
        tokio::spawn(crate::supervisor::attempt::watch(m));
    }

    /// What attempt `attempt` of task `id` keeps of its client's session when it ends: a task's
    /// own attempt (not one of a best-of-N round) of a preset whose session orch resumes.
    fn keep_of(
        &self,
        run: RunId,
        pc: &crate::supervisor::context::PlanCtx,
        id: Option<&str>,
        attempt: u32,
    ) -> Option<crate::supervisor::resume::Keep> {
        let id = id.filter(|_| !self.members.contains_key(&run) && pc.executor.attempts_here())?;
        let (_, command) = self.agent_of_run(run, pc);
        let cli = crate::supervisor::resume::resumable(&command)?;
        let state_dir = pc.status_path.parent()?.parent()?;
        let answers = self.views[pc.index]
            .doc
            .as_deref()
            .and_then(|d| d.entry(id))
            .map_or(0, |e| e.orch_answers.len());
        Some(crate::supervisor::resume::Keep {
            cli,
            dir: crate::supervisor::resume::kept_dir(state_dir, pc.name(), id),
            answers,
            private: crate::supervisor::client_state::of_attempt_with(pc, &command, id, attempt)
                .map(|(_, dir)| dir),
        })
    }

    /// Attempt `run`'s stop request: the one made when its launch began (its worktree made off
    /// the loop), else a new one.
    pub(crate) fn stop_receiver(&mut self, run: RunId) -> watch::Receiver<Option<StopWhy>> {
        if let Some(rx) = self.early_stops.remove(&run) {
            return rx;
        }
        let (stop_tx, stop_rx) = watch::channel(None);
        self.stops.insert(run, stop_tx);
        stop_rx
    }
}
