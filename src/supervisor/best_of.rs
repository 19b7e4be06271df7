//! Best of N, the effects: an attempt's change checked (the plan's cone, submodules, protected
//! paths) and sized, its `select` command run confined in its worktree (its output read as an
//! untrusted number), the pick committed and landed as the task's one commit, and every other
//! attempt's work saved under `refs/orch/attempts/<plan>/<task>/<attempt>`. Decides nothing:
//! the core picks ([`super::core`], `core/best_of.rs`).

use std::iter::once_with;
use std::path::Path;

use super::check::{Confined, run_confined, tail_bytes};
use super::context::PlanCtx;
use super::core::checks::{Found, refusal};
use super::core::{Input, Measure};
use super::msg::Msg;
use super::round::{SCORE_MAX_BYTES, member_key, parse_score};
use super::runner::Effects;
use super::settle::{
    commit_tree_as, nested_repositories, outside_paths, protected_changes_in, submodule_lines,
};
use super::state::{CheckOutcome, CommitError, Outcome, RunId, Unit};
use crate::git;

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
                    let c = Confined::new(&pc, "select", &id, &key, &tree);
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

/// The worktree of attempt `key` of task `t`, checked as a commit would be (fail closed: no
/// nested repository, the plan's cone, submodules, protected paths), and the size of its change in lines; `Err`: why
/// the attempt is no candidate.
fn checked_size(pc: &PlanCtx, t: usize, key: &str) -> Result<(std::path::PathBuf, u64), String> {
    let task = &pc.plan.tasks[t];
    let tree = pc
        .task_worktree(key)
        .ok_or_else(|| format!("its task worktree (`{key}`) is gone"))?;
    // Its git files put back from orch's records first (HEAD on its own task branch).
    let branch = git::task_branch(pc.name(), key);
    git::pin_worktree(&tree, &branch)
        .map_err(|e| format!("cannot put back the git files of `{}`: {e}", tree.display()))?;
    let work = (tree.as_path(), branch.as_str(), Some(pc.branch()));
    if let Some(cause) = refusal(
        once_with(|| Found::of(nested_repositories(work)))
            .chain(once_with(|| {
                Found::of(outside_paths(&tree, &pc.entry.paths, Some(pc.branch())))
            }))
            .chain(once_with(|| {
                Found::of(submodule_lines(pc, &tree).map(|_| None))
            }))
            .chain(once_with(|| {
                Found::of(protected_changes_in(pc, task, work))
            })),
    ) {
        return Err(cause);
    }
    let lines = git::lines_changed(&tree)?;
    Ok((tree, lines))
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

/// Settles the picked attempt `attempt` of task `t` (`index` in its plan): checked again (the
/// select ran in its worktree since), committed with `why` in its message, landed on the plan
/// branch as the task's one commit, recorded.
pub(super) fn settle_pick(
    pc: &PlanCtx,
    (index, t): (usize, &crate::plan::Task),
    attempt: u32,
    description: &str,
    why: &str,
) -> Outcome {
    let key = member_key(&t.id, attempt);
    let checked = checked_size(pc, index, &key);
    let body = format!("best of N: {why}");
    let made = match checked {
        Err(cause) => Err(CommitError::Failed(cause)),
        Ok((tree, _)) => commit_tree_as(pc, (&t.id, &key), description, &body, false, &tree),
    };
    match made {
        Ok(commit) => Outcome::Done {
            commit: Some(commit),
        },
        Err(CommitError::Conflict { paths, saved }) => Outcome::Conflict { paths, saved },
        Err(CommitError::Failed(error)) => {
            let saved = save_member(pc, &t.id, attempt, &error);
            Outcome::Failed { error, saved }
        }
    }
}

/// Settles an attempt that was not picked: its work saved, its task worktree freed. The task's
/// record is the round's.
pub(super) fn settle_lose(pc: &PlanCtx, id: &str, attempt: u32, cause: &str) -> Outcome {
    let saved = save_member(pc, id, attempt, cause);
    Outcome::Failed {
        error: cause.to_string(),
        saved,
    }
}

/// Saves what attempt `attempt` of task `id` left (uncommitted changes, untracked files) under
/// `refs/orch/attempts/<plan>/<id>/<attempt>` with `cause` in the message, frees its pool slot
/// and deletes its task branch. The ref when something was saved.
fn save_member(pc: &PlanCtx, id: &str, attempt: u32, cause: &str) -> Option<String> {
    let key = member_key(id, attempt);
    let refname = git::attempt_ref(pc.name(), id, attempt);
    let first = cause.lines().next().unwrap_or("").trim();
    let first: String = first.chars().take(200).collect();
    let message = format!(
        "{} {id}: attempt {attempt} not picked: {first} (saved by orch)",
        pc.name()
    );
    if let Some(tree) = pc.task_worktree(&key) {
        // Saved from orch's record of the branch, whatever the agent did to HEAD.
        let _ = git::pin_worktree(&tree, &git::task_branch(pc.name(), &key));
    }
    git::retire_task_tree(&pc.task_tree(&key), Some((&refname, &message)))
        .ok()
        .flatten()
}
