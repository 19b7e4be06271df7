//! Start-up after an earlier supervisor: find the agents (and batch jobs) that outlived it, put
//! back tasks whose agent is gone (saving what they left), record work that was committed but not
//! recorded, tidy task worktrees, and list failed tasks to run again. What it finds goes to the
//! core as [`Input::Recovered`](super::core::Input::Recovered).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;

use super::attempt::Proc;
use super::context::PlanCtx;
use super::effects::Effects;
use super::state::Unit;
use crate::executor::{ExecutorKind, JobState, parse_tag};
use crate::manifest::AgentMode;
use crate::process;
use crate::status::{self, StatusDoc, TaskStatus, Transition, TransitionOptions};

/// An agent of an earlier supervisor, to be watched again.
pub(crate) struct Found {
    pub(crate) unit: Unit,
    pub(crate) proc: Proc,
    pub(crate) pid: u32,
    pub(crate) job_id: Option<String>,
    pub(crate) attempt: u32,
    pub(crate) elapsed: Duration,
}

/// What start-up found.
#[derive(Default)]
pub(crate) struct Recovery {
    pub(crate) adopted: Vec<Found>,
    /// Tasks recorded failed: they get another run.
    pub(crate) retry: Vec<(usize, usize)>,
}

/// See the module documentation.
pub(crate) async fn recover(fx: &mut Effects<'_>) -> Recovery {
    let mut out = Recovery::default();
    // Agents of an earlier supervisor, found by their environment: also those launched just
    // before it died, whose start it had not recorded yet.
    let found = process::find_agents();
    // Batch jobs of an earlier supervisor, found by their tag: also those submitted just
    // before it died, whose id it had not recorded yet.
    let listed = match &fx.ctx.jobs {
        Some(jobs) => match jobs.list().await {
            Ok(l) => l,
            Err(e) => {
                let name = jobs.name();
                fx.note(
                    None,
                    format!(
                        "cannot list the {name} jobs of an earlier run ({e}); only the jobs recorded in the status files are followed again"
                    ),
                );
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let run_plans: Vec<_> = fx.ctx.plans.iter().flatten().cloned().collect();
    for pc in run_plans {
        let p = pc.index;
        let doc = read(&pc);
        let mode = pc.agent.mode;
        let status_file = pc.status_path.display().to_string();
        let batch = pc.executor != ExecutorKind::Local;
        // The agents of a batch plan are its jobs, even when they run on this machine.
        let live: HashMap<&str, u32> = found
            .iter()
            .filter(|f| !batch && f.status_file == status_file)
            .map(|f| (f.task.as_str(), f.pgid))
            .collect();
        // task id → (job id, attempt, state): the latest job not over per task.
        let mut jobs: HashMap<&str, (&str, u32, JobState)> = HashMap::new();
        for j in listed.iter().filter(|j| !j.state.is_over()) {
            if let Some((attempt, task, file)) = parse_tag(&j.tag)
                && file == status_file
                && jobs.get(task).is_none_or(|(_, a, _)| *a < attempt)
            {
                jobs.insert(task, (j.id.as_str(), attempt, j.state.clone()));
            }
        }
        let plan_unit = Unit::PlanAgent { plan: p };
        if batch && mode == AgentMode::Plan {
            let found_job = jobs
                .get("")
                .map(|(id, a, st)| (id.to_string(), *a, st.clone()))
                .or_else(|| plan_job_of(&doc).map(|id| (id, 1, JobState::Queued)));
            if let Some((id, attempt, state)) = found_job {
                if let Some(f) = job(fx, plan_unit, id, attempt, state, None) {
                    out.adopted.push(f);
                }
                continue;
            }
        }
        // A plan-mode agent still alive keeps its plan.
        if !batch && mode == AgentMode::Plan {
            let recorded =
                plan_agent_of(&doc).filter(|(pid, start)| process::process_alive(*pid, *start));
            let by_env = live
                .get("")
                .map(|&pgid| (pgid, process::process_start_time(pgid)));
            if let Some((pid, start)) = recorded.or(by_env) {
                let attempt = adopted_attempt(&pc, "plan");
                out.adopted
                    .push(process_of(plan_unit, pid, start, attempt, Duration::ZERO));
                continue;
            }
        }
        let mut reset = Vec::new();
        let mut busy = HashSet::new();
        let entries: HashMap<&str, &status::TaskEntry> =
            doc.entries().map(|e| (e.id.as_str(), e)).collect();
        for (ti, t) in pc.plan.tasks.iter().enumerate() {
            let Some(e) = entries.get(t.id.as_str()) else {
                continue;
            };
            let unit = Unit::Task { plan: p, task: ti };
            // Best of N: the attempts of a round are not adopted one by one (a round is decided
            // by the supervisor that saw all of them): they are stopped, their work saved with
            // the task worktrees below, and the task runs a new round.
            if !batch && mode == AgentMode::Task && pc.attempts_of(ti) > 1 {
                let mut stopped = false;
                for f in found
                    .iter()
                    .filter(|f| f.status_file == status_file && f.task == t.id)
                {
                    stopped |= process::signal_group(f.pgid, nix::sys::signal::Signal::SIGKILL);
                }
                if stopped {
                    fx.note(
                        Some(pc.name.clone()),
                        format!(
                            "task `{}`: the attempts of its best-of-N round outlived the earlier run; stopped, their work saved under refs/orch/attempts/, a new round starts",
                            t.id
                        ),
                    );
                }
                if e.status == TaskStatus::InProgress {
                    reset.push(t.id.clone());
                }
                continue;
            }
            let started = e
                .orch_run
                .as_ref()
                .and_then(|r| status::parse_timestamp(&r.started_at));
            if batch && mode == AgentMode::Task && !e.status.is_finished() {
                let recorded = e
                    .orch_run
                    .as_ref()
                    .filter(|_| e.status == TaskStatus::InProgress)
                    .and_then(|r| r.job_id.clone())
                    .map(|id| (id, e.attempts.max(1), JobState::Queued));
                let listed = jobs
                    .get(t.id.as_str())
                    .map(|(id, a, st)| (id.to_string(), *a, st.clone()));
                if let Some((id, attempt, state)) = listed.or(recorded) {
                    if let Some(f) = job(fx, unit, id, attempt, state, started) {
                        out.adopted.push(f);
                    }
                    busy.insert(t.id.clone());
                    continue;
                }
            }
            let recorded = e
                .orch_run
                .as_ref()
                .filter(|_| e.status == TaskStatus::InProgress)
                .filter(|r| process::process_alive(r.pid, r.process_start_time))
                .map(|r| (r.pid, r.process_start_time));
            let by_env = live
                .get(t.id.as_str())
                .map(|&pgid| (pgid, process::process_start_time(pgid)));
            if mode == AgentMode::Task
                && !e.status.is_finished()
                && let Some((pid, start)) = recorded.or(by_env)
            {
                let attempt = adopted_attempt(&pc, &t.id);
                out.adopted.push(process_of(
                    unit,
                    pid,
                    start,
                    attempt,
                    elapsed_since(started),
                ));
                busy.insert(t.id.clone());
                continue;
            }
            match e.status {
                TaskStatus::InProgress => reset.push(t.id.clone()),
                TaskStatus::Failed => out.retry.push((p, ti)),
                _ => {}
            }
        }
        let adopted_any = !busy.is_empty();
        let pcc = pc.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if !reset.is_empty() {
                reset_gone(&pcc, &reset, adopted_any);
            }
            if pcc.task_trees() {
                // Done but not landed (a supervisor died in between): landed by the core.
                let doc = read(&pcc);
                let waiting: HashSet<String> = pcc
                    .plan
                    .tasks
                    .iter()
                    .filter(|t| {
                        !busy.contains(&t.id)
                            && doc.entry(&t.id).is_some_and(|e| {
                                super::effects::facts_of(t, e, pcc.created_at, None).needs_commit()
                            })
                    })
                    .map(|t| t.id.clone())
                    .collect();
                tidy_task_trees(&pcc, &busy, &waiting);
            }
        })
        .await;
    }
    out
}

fn read(pc: &PlanCtx) -> StatusDoc {
    pc.view()
        .unwrap_or_else(|_| StatusDoc::new(&pc.plan, &pc.rel_path, &pc.name, Utc::now()))
}

fn elapsed_since(started: Option<chrono::DateTime<Utc>>) -> Duration {
    started
        .and_then(|s| (Utc::now() - s).to_std().ok())
        .unwrap_or_default()
}

/// Watches again the local agent `pid` (its process group) of an earlier supervisor, which
/// launched it as attempt `attempt`.
fn process_of(unit: Unit, pid: u32, start_time: u64, attempt: u32, elapsed: Duration) -> Found {
    Found {
        unit,
        proc: Proc::Adopted { start_time },
        pid,
        job_id: None,
        attempt,
        elapsed,
    }
}

/// The attempt number an earlier supervisor gave the agent of `unit` (a task id, or `plan`)
/// that outlived it: the latest report directory it made for the unit (its agent reports
/// there), 1 when there is none.
fn adopted_attempt(pc: &PlanCtx, unit: &str) -> u32 {
    let state_dir = super::reports::state_dir_of(pc);
    status::report::latest_attempt(&state_dir, &pc.name, unit).unwrap_or(1)
}

/// Follows again the batch job `id` of an earlier supervisor (believed in `state`).
fn job(
    fx: &Effects<'_>,
    unit: Unit,
    id: String,
    attempt: u32,
    state: JobState,
    started: Option<chrono::DateTime<Utc>>,
) -> Option<Found> {
    let tracker = fx.ctx.jobs.clone()?;
    Some(Found {
        unit,
        proc: Proc::Job {
            state: tracker.track(&id, state),
            id: id.clone(),
            tracker,
        },
        pid: 0,
        job_id: Some(id),
        attempt,
        elapsed: elapsed_since(started),
    })
}

/// Tasks left in progress by agents that are gone: leftovers saved and cleaned (unless a live
/// agent works in the tree), then each task put back to pending, or recorded done when its
/// work is committed already.
fn reset_gone(pc: &PlanCtx, reset: &[String], adopted_any: bool) {
    if pc.parallel == 1 && !adopted_any {
        let _g = pc.git_lock.lock();
        // No agent works in the tree: its git files put back from orch's records first, so that
        // the save and reset are made against the plan branch, not where an agent left HEAD.
        // (Not put back: nothing is reset; the next commit fails on it, naming it.)
        if crate::git::pin_worktree(&pc.worktree, &pc.branch).is_ok() {
            let refname = crate::git::plan_resume_ref(&pc.name, Utc::now().timestamp());
            let _ = crate::git::save_and_reset(
                &pc.worktree,
                &refname,
                &format!(
                    "{}: changes left by agents of a stopped supervisor",
                    pc.name
                ),
            );
        }
    }
    // A task whose commit waits in its task worktree (the supervisor died before landing it)
    // is done: it is landed by the core. The other task worktrees are leftovers, saved and
    // removed (`tidy_task_trees`).
    let in_tree: Vec<&String> = reset
        .iter()
        .filter(|id| task_commit_waits(pc, id))
        .collect();
    // A supervisor killed between a task's commit and its record leaves the task in progress
    // with its commit on the branch: record it, do not run it again.
    let committed = committed_unrecorded(pc, reset);
    let opts = TransitionOptions {
        force: true,
        note: Some("its agent was gone when orch restarted; it runs again".into()),
        ..TransitionOptions::default()
    };
    let _ = pc.update(|doc| {
        for id in reset {
            if in_tree.contains(&id) {
                let opts = TransitionOptions {
                    force: true,
                    ..TransitionOptions::default()
                };
                status::apply(doc, id, Transition::Done, &opts, Utc::now())?;
                continue;
            }
            match committed.iter().find(|(done, _)| done == id) {
                Some((_, oid)) => {
                    let opts = TransitionOptions {
                        force: true,
                        commit: Some(oid.clone()),
                        ..TransitionOptions::default()
                    };
                    status::apply(doc, id, Transition::Done, &opts, Utc::now())?;
                }
                _ => {
                    status::apply(doc, id, Transition::Reset, &opts, Utc::now())?;
                }
            }
        }
        Ok(())
    });
}

/// The tasks among `ids` whose commit is on the plan branch, at HEAD or just behind it (made
/// since the task started), with that commit: the supervisor committed them and died before
/// recording them (a record waits for the plan's next status write, and later tasks' commits
/// may land before it).
fn committed_unrecorded(pc: &PlanCtx, ids: &[String]) -> Vec<(String, String)> {
    let Ok(recent) =
        crate::git::recent_commits(&pc.worktree, &pc.base, super::settle::UNRECORDED_DEPTH)
    else {
        return Vec::new();
    };
    let Ok(doc) = pc.view() else {
        return Vec::new();
    };
    ids.iter()
        .filter_map(|id| {
            let prefix = format!("{} {id}:", pc.name);
            let started = doc
                .entry(id)
                .and_then(|e| e.started_at.as_deref().and_then(status::parse_timestamp));
            // Commit times are whole seconds.
            let c = recent.iter().find(|c| {
                c.message.starts_with(&prefix) && started.is_none_or(|t| c.time >= t.timestamp())
            })?;
            Some((id.clone(), c.oid.clone()))
        })
        .collect()
}

/// Whether task `id`'s worktree holds the task's own commit, clean: it was committed there and
/// a supervisor died before landing it.
fn task_commit_waits(pc: &PlanCtx, id: &str) -> bool {
    let Some(tree) = pc.task_worktree(id) else {
        return false;
    };
    let prefix = format!("{} {id}:", pc.name);
    crate::git::head_of(&tree).is_ok_and(|(_, msg)| msg.starts_with(&prefix))
        && crate::git::is_dirty(&tree).is_ok_and(|d| !d)
}

/// Removes task `id`'s worktree and branch left by an earlier supervisor (its stale git locks
/// first), saving what they hold under `refs/orch/attempts/<plan>/<id>/resume-<time>` unless
/// `save` is false and the worktree is clean.
fn retire_leftover_tree(pc: &PlanCtx, id: &str, save: bool) {
    let _ = crate::git::remove_plan_locks(
        &pc.repo_root,
        &crate::git::task_tree_name(&pc.name, id),
        &crate::git::task_branch(&pc.name, id),
    );
    let refname = crate::git::task_resume_ref(&pc.name, id, Utc::now().timestamp_millis());
    let message = format!(
        "{} {id}: left in its task worktree by a stopped supervisor (saved by orch)",
        pc.name
    );
    let retire = |save: bool| {
        crate::git::retire_task_tree(
            &pc.task_tree(id),
            save.then_some((refname.as_str(), message.as_str())),
        )
    };
    if !save && retire(false).is_ok() {
        return;
    }
    let _ = retire(true);
}

/// Start-up, plan with task worktrees: the task worktrees of adopted agents (`busy`) stay; those
/// of tasks done but not landed (`waiting`) get their stale locks removed and are landed next;
/// every other one is a leftover: its work saved unless the task's commit is recorded, its pool
/// slot freed (an old task worktree of its own removed).
fn tidy_task_trees(pc: &PlanCtx, busy: &HashSet<String>, waiting: &HashSet<String>) {
    let Ok(ids) = crate::git::task_tree_ids(&pc.repo_root, &pc.name) else {
        return;
    };
    let doc = pc.view().ok();
    for id in ids.iter().filter(|id| !busy.contains(*id)) {
        if waiting.contains(id) {
            let _ = crate::git::remove_plan_locks(
                &pc.repo_root,
                &crate::git::task_tree_name(&pc.name, id),
                &crate::git::task_branch(&pc.name, id),
            );
            // The pool slot it holds: its index lock.
            if let Some(tree) = pc.task_worktree(id) {
                let _ = crate::git::remove_tree_index_lock(&tree);
            }
            continue;
        }
        let landed = doc
            .as_ref()
            .and_then(|d| d.entry(id))
            .is_some_and(|e| e.status == TaskStatus::Completed && e.commit.is_some());
        retire_leftover_tree(pc, id, !landed);
    }
    // A pool a supervisor killed after the plan's last landing left goes when the core finds
    // the plan finished (`Action::DropPool`).
}

/// The batch job of a plan-mode agent, as recorded.
fn plan_job_of(doc: &StatusDoc) -> Option<String> {
    doc.orch_plan_agent.as_ref()?.job_id.clone()?
}

fn plan_agent_of(doc: &StatusDoc) -> Option<(u32, u64)> {
    let agent = doc.orch_plan_agent.as_ref()?;
    Some((agent.pid, agent.process_start_time.unwrap_or(0)))
}
