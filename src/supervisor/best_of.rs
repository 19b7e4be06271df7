//! Best of N, the effects: a round's attempts launched (each by its agent), each attempt's
//! change measured (checked and sized as a commit would be, `settle/best_of.rs`) and its
//! `select` command run confined in its worktree (its output read as an untrusted number).
//! Decides nothing: the core picks ([`super::core`], `core/best_of.rs`); the pick is committed
//! and the others saved when they settle (`settle/best_of.rs`).

use std::path::Path;

use super::check::{Confined, run_confined, tail_bytes};
use super::context::PlanCtx;
use super::core::{Input, Measure};
use super::msg::Msg;
use super::round::{SCORE_MAX_BYTES, member_key, parse_score};
use super::runner::Effects;
use super::settle::best_of::checked_size;
use super::state::{CheckOutcome, RunId, Unit};

/// Whether a task of `plan` asks for more than one attempt at once (`(attempts: N)`).
pub(crate) fn any_task_best_of(plan: &crate::plan::Plan) -> bool {
    plan.tasks.iter().any(|t| {
        crate::plan::attempts_clause(&t.description)
            .ok()
            .flatten()
            .is_some_and(|n| n > 1)
    })
}

impl Effects<'_> {
    /// Launches attempt `attempt` of a round: named by its key (its worktree, log, prompt
    /// file), run by its agent of `agents` (in turn), else the plan's.
    pub(crate) fn launch_member(&mut self, run: RunId, unit: Unit, attempt: u32) {
        if let Some(t) = unit.task()
            && let Some(pc) = self.plan(unit.plan())
        {
            self.members
                .insert(run, member_key(&pc.plan.tasks[t].id, attempt));
            let name = pc.entry.best_of.agent_of(attempt, &pc.entry.agent);
            if name != pc.entry.agent
                && let Some(spec) = self.ws.manifest.as_ref().and_then(|m| m.agents.get(name))
            {
                self.member_agents
                    .insert(run, (name.to_string(), spec.command.clone()));
            }
        }
        self.launch(run, unit, attempt);
    }

    /// The agent (its name, its argv template) attempt `run` of plan `pc` runs: with best of
    /// N's `agents`, its own (the rest is the plan's agent's, which the manifest checked it
    /// shares); else the plan's.
    pub(crate) fn agent_of_run(&self, run: RunId, pc: &PlanCtx) -> (String, Vec<String>) {
        match self.member_agents.get(&run) {
            Some((name, command)) => (name.clone(), command.clone()),
            None => (pc.entry.agent.clone(), pc.agent.command.clone()),
        }
    }

    /// How the agent of attempt `run` reads a person's messages while it runs (`input`): its
    /// plan's agent's, or that of the agent it runs instead (a member's, a fallback).
    pub(crate) fn input_of(&self, run: RunId, pc: &PlanCtx) -> crate::manifest::InputMode {
        match self.member_agents.get(&run) {
            Some((name, _)) => self
                .ws
                .manifest
                .as_ref()
                .and_then(|m| m.agents.get(name))
                .map_or(crate::manifest::InputMode::None, |a| a.input),
            None => pc.agent.input,
        }
    }

    /// Checks and measures attempt `attempt` of a round and runs its `select`, off the loop;
    /// the core hears [`Input::Measured`].
    pub(crate) fn measure(&mut self, run: RunId, unit: Unit, attempt: u32) {
        let Some(pc) = self.plan(unit.plan()) else {
            return;
        };
        let Some(t) = unit.task() else { return };
        let (tx, ctx, stop) = (self.tx.clone(), self.ctx.clone(), self.stop_all.subscribe());
        let (agent, _) = self.agent_of_run(run, &pc);
        tokio::spawn(async move {
            let key = member_key(&pc.plan.tasks[t].id, attempt);
            let (pcb, keyb) = (pc.clone(), key.clone());
            let checked = tokio::task::spawn_blocking(move || checked_size(&pcb, t, &keyb))
                .await
                .unwrap_or_else(|e| Err(format!("the measure of the attempt failed: {e}")));
            let result = match (checked, pc.entry.best_of.select.clone()) {
                (Err(cause), _) => Err(cause),
                (Ok((_, lines)), None) => Ok(Measure { lines, score: None }),
                (Ok((tree, lines)), Some(argv)) => {
                    let id = pc.plan.tasks[t].id.clone();
                    let mut c = Confined::new(&pc, "select", &id, &key, &tree);
                    c.agent = Some(agent);
                    let (outcome, start) = run_confined(&pc, argv, &c, &ctx, stop).await;
                    match outcome {
                        CheckOutcome::Passed => {
                            parse_score(&output_tail(&c.log, start)).map(|score| Measure {
                                lines,
                                score: Some(score),
                            })
                        }
                        CheckOutcome::Failed(why) => Err(format!("its select failed: {why}")),
                        CheckOutcome::Stopped => Err("stopped by orch while its select ran".into()),
                        CheckOutcome::Lost(why) => Err(format!("its select did not run: {why}")),
                    }
                }
            };
            let _ = tx.send(Msg {
                reload: None,
                input: Input::Measured { run, result },
            });
        });
    }
}

/// What a command wrote to `log` after byte `start`, at most the last few hundred bytes
/// (a score is a short line; a command that prints megabytes is not read whole), without
/// orch's own lines.
fn output_tail(log: &Path, start: u64) -> Vec<u8> {
    let buf = tail_bytes(log, start, (SCORE_MAX_BYTES as u64) * 8).unwrap_or_default();
    let text = String::from_utf8_lossy(&buf);
    text.lines()
        .filter(|l| !l.starts_with("=== orch: "))
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}
