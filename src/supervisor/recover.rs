//! Start-up after an earlier supervisor: the facts recovery needs are gathered here (the agents
//! and batch jobs that outlived it, what the status files record, what the plan branches and the
//! task worktrees hold) and the core decides on them ([`super::core::recover`]); this carries the
//! decisions out: agents watched again, a best-of-N round's survivors stopped, tasks whose agent
//! is gone recorded done or put back (their leftovers saved), task worktrees tidied, failed tasks
//! listed to run again. What it finds goes to the core as
//! [`Input::Recovered`](super::core::Input::Recovered).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;

use super::attempt::Proc;
use super::context::PlanCtx;
use super::core::recover::{
    self as decide, AgentFacts, Decision, Left, PlanFound, Survivor, TaskDecision, TaskFound, Tree,
};
use super::runner::Effects;
use super::state::Unit;
use crate::executor::{JobState, ListedJob, parse_tag};
use crate::git;
use crate::manifest::AgentMode;
use crate::process::{self, FoundAgent};
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
        let tasks = match decide::decide(&gather(&pc, &doc, &found, &listed)) {
            Decision::AdoptPlanAgent(s) => {
                let unit = Unit::PlanAgent { plan: p };
                let adopted = found_of(fx, &pc, unit, "plan", s, None);
                let keep = kept_pids(fx, &pc, adopted.iter()).await;
                stop_strays(fx, &pc, &found, keep);
                out.adopted.extend(adopted);
                continue;
            }
            Decision::Tasks(tasks) => tasks,
        };
        let mut gone = Vec::new();
        let mut busy = HashSet::new();
        for (ti, d) in tasks {
            let t = &pc.plan.tasks[ti];
            match d {
                TaskDecision::Adopt(s) => {
                    let run = doc.entry(&t.id).and_then(|e| e.orch_run.as_ref());
                    let started = run.and_then(|r| status::parse_timestamp(&r.started_at));
                    let unit = Unit::Task { plan: p, task: ti };
                    out.adopted
                        .extend(found_of(fx, &pc, unit, &t.id, s, started));
                    busy.insert(t.id.clone());
                }
                TaskDecision::StopRound { groups, gone: g } => {
                    let mut stopped = false;
                    for pgid in groups {
                        // With all below it: one that moved to a session of its own too.
                        stopped |= process::kill_tree(pgid);
                    }
                    if stopped {
                        fx.note(
                            Some(pc.name().to_owned()),
                            format!(
                                "task `{}`: the attempts of its best-of-N round outlived the earlier run; stopped, their work saved under refs/orch/attempts/, a new round starts",
                                t.id
                            ),
                        );
                    }
                    if g {
                        gone.push(t.id.clone());
                    }
                }
                TaskDecision::Gone => gone.push(t.id.clone()),
                TaskDecision::Retry => out.retry.push((p, ti)),
            }
        }
        // Adopted from orch's records only: whatever else claims to be one of this plan's
        // agents goes before the worktrees it could write in are saved and reset.
        let keep = kept_pids(fx, &pc, out.adopted.iter().filter(|f| f.unit.plan() == p)).await;
        stop_strays(fx, &pc, &found, keep);
        let pcc = pc.clone();
        // The attempts adopted still bring their snapshots back; the others' are settled below.
        let coming: Vec<(String, u32)> = out
            .adopted
            .iter()
            .filter(|f| f.unit.plan() == p)
            .map(|f| {
                let id = f.unit.task().and_then(|t| pc.plan.tasks.get(t));
                (id.map_or("plan".to_string(), |t| t.id.clone()), f.attempt)
            })
            .collect();
        let (refused, pruned) = tokio::task::spawn_blocking(move || {
            let refused = settle_gone(&pcc, &doc, &gone, !busy.is_empty());
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
                                super::runner::facts_of(t, e, pcc.created_at, None).needs_commit()
                            })
                    })
                    .map(|t| t.id.clone())
                    .collect();
                tidy_task_trees(&pcc, &doc, &busy, &waiting);
            }
            // What earlier runs left outside the worktree (hosts' snapshots they fetched):
            // pruned once their work is safe here.
            let at = (pcc.name(), pcc.branch());
            let pruned = pcc.executor.leftovers(&pcc.repo_root, at, &coming);
            (refused, pruned)
        })
        .await
        .unwrap_or_default();
        for n in pruned {
            fx.note(Some(pc.name().to_owned()), n);
        }
        for (id, cause) in refused {
            fx.note(
                Some(pc.name().to_owned()),
                format!(
                    "task `{id}`: the commit left in its task worktree by a stopped supervisor's run is not landed, the task failed (its work is saved under refs/orch/attempts/): {cause}"
                ),
            );
        }
    }
    out
}

/// The processes that adopted agents are made of, from orch's records and the scheduler's:
/// a local agent's wrapper pid; the pids the scheduler lists on this machine for an adopted
/// batch job (its processes run under the scheduler, not under a wrapper orch started). When the
/// scheduler cannot say, none of that job's are kept (they are stopped with the strays, and the
/// task runs again): a process's own word never keeps it.
async fn kept_pids<'a>(
    fx: &mut Effects<'_>,
    pc: &PlanCtx,
    adopted: impl Iterator<Item = &'a Found>,
) -> Vec<u32> {
    let mut keep = Vec::new();
    for f in adopted {
        match (&f.job_id, &fx.ctx.jobs) {
            (None, _) => keep.push(f.pid),
            (Some(id), Some(jobs)) => match jobs.local_pids(id).await {
                Ok(pids) => keep.extend(pids),
                Err(e) => {
                    let name = jobs.name();
                    fx.note(
                        Some(pc.name().to_owned()),
                        format!("cannot ask {name} which processes are job {id}'s ({e}); what claims to be its agent here is stopped"),
                    );
                }
            },
            (Some(_), None) => {}
        }
    }
    keep
}

/// Stops every process that claims, by its environment (`found`), to be an agent of plan `pc`
/// and is not below one of the agents adopted from orch's records (`adopted`: their wrappers'
/// pids): an agent launched just before the earlier supervisor died, before it recorded it, or
/// a process that claims an identity. Its word can only get it stopped, never kept.
fn stop_strays(
    fx: &mut Effects<'_>,
    pc: &PlanCtx,
    found: &[FoundAgent],
    adopted: impl IntoIterator<Item = u32>,
) {
    let status_file = pc.status_path.display().to_string();
    let adopted: Vec<u32> = adopted.into_iter().filter(|&pid| pid > 0).collect();
    let claims: Vec<&FoundAgent> = found
        .iter()
        .filter(|f| f.status_file == status_file)
        .collect();
    let stopped = process::stop_strays(&claims, &adopted);
    if stopped > 0 {
        fx.note(
            Some(pc.name().to_owned()),
            format!(
                "stopped {stopped} process(es) left by an earlier run that orch has no record of (an agent started just before that run ended, or one that claims to be one)"
            ),
        );
    }
}

fn read(pc: &PlanCtx) -> StatusDoc {
    pc.view().map_or_else(
        |_| StatusDoc::new(&pc.plan, &pc.rel_path, pc.name(), Utc::now()),
        std::sync::Arc::unwrap_or_clone,
    )
}

/// What the earlier supervisor left of plan `pc`'s agents, as the core decides on it: its
/// records in `doc`, the agents found alive by their environment (`found`), the batch jobs
/// the executor lists (`listed`).
fn gather(pc: &PlanCtx, doc: &StatusDoc, found: &[FoundAgent], listed: &[ListedJob]) -> PlanFound {
    let status_file = pc.status_path.display().to_string();
    let mut by_env: HashMap<&str, Vec<Survivor>> = HashMap::new();
    for f in found.iter().filter(|f| f.status_file == status_file) {
        let start_time = process::process_start_time(f.pgid);
        let pid = f.pgid;
        by_env
            .entry(f.task.as_str())
            .or_default()
            .push(Survivor::Process { pid, start_time });
    }
    // The latest job not over per task (the plan agent's: "").
    let mut jobs: HashMap<&str, Survivor> = HashMap::new();
    for j in listed.iter().filter(|j| !j.state.is_over()) {
        if let Some((attempt, task, file)) = parse_tag(&j.tag)
            && file == status_file
            && !matches!(jobs.get(task), Some(Survivor::Job { attempt: a, .. }) if *a >= attempt)
        {
            let (id, state) = (j.id.clone(), j.state.clone());
            jobs.insert(task, Survivor::Job { id, attempt, state });
        }
    }
    let queued = |id: &String, attempt| Survivor::Job {
        id: id.clone(),
        attempt,
        state: JobState::Queued,
    };
    let reports = super::reports::reports_state_dir(pc);
    let alive = |pid, start_time| {
        process::process_alive(pid, start_time).then_some(Survivor::Process { pid, start_time })
    };
    let mut agent_of = |unit: &str| AgentFacts {
        listed_job: jobs.remove(unit),
        by_env: by_env.remove(unit).unwrap_or_default(),
        ..AgentFacts::default()
    };
    let plan_agent = doc.orch_plan_agent.as_ref();
    let agent = AgentFacts {
        recorded_job: plan_agent
            .and_then(|a| a.job_id.as_ref()?.as_ref())
            .map(|id| queued(id, 1)),
        recorded_process: plan_agent.and_then(|a| alive(a.pid, a.process_start_time.unwrap_or(0))),
        ..agent_of("")
    };
    let tasks = pc
        .plan
        .tasks
        .iter()
        .enumerate()
        .filter_map(|(ti, t)| {
            let e = doc.entry(&t.id)?;
            let run = e.orch_run.as_ref();
            let in_progress = e.status == TaskStatus::InProgress;
            let agent = AgentFacts {
                recorded_job: run
                    .and_then(|r| r.job_id.as_ref())
                    .map(|id| queued(id, e.attempts.max(1))),
                // Alive, or ended by itself while no orch ran, as its wrapper recorded: watched
                // again, its exit code settles it (an agent that reports by exiting is not run
                // again).
                recorded_process: run.filter(|_| in_progress).and_then(|r| {
                    alive(r.pid, r.process_start_time).or_else(|| {
                        let attempt = status::report::latest_attempt(reports, pc.name(), &t.id)?;
                        let ended = super::reports::ended_path(pc, &t.id, attempt);
                        crate::process::wrapper::read_ended(&ended).map(|_| Survivor::Process {
                            pid: r.pid,
                            start_time: r.process_start_time,
                        })
                    })
                }),
                ..agent_of(&t.id)
            };
            Some(TaskFound {
                task: ti,
                status: e.status,
                attempts: pc.attempts_of(ti),
                agent,
            })
        })
        .collect();
    PlanFound {
        plan_mode: pc.agent.mode == AgentMode::Plan,
        batch: !pc.executor.adopts_processes(),
        agent,
        tasks,
    }
}

/// Watches again `survivor`, the agent of `unit` (`name`: its task id, or `plan`) an earlier
/// supervisor launched, `started` at the time its record says (`None`: a plan agent).
fn found_of(
    fx: &Effects<'_>,
    pc: &PlanCtx,
    unit: Unit,
    name: &str,
    survivor: Survivor,
    started: Option<chrono::DateTime<Utc>>,
) -> Option<Found> {
    let elapsed = started
        .and_then(|s| (Utc::now() - s).to_std().ok())
        .unwrap_or_default();
    Some(match survivor {
        Survivor::Process { pid, start_time } => Found {
            unit,
            proc: Proc::Adopted { start_time },
            pid,
            job_id: None,
            // The latest report directory the earlier supervisor made for the unit: its agent
            // reports there.
            attempt: status::report::latest_attempt(
                super::reports::reports_state_dir(pc),
                pc.name(),
                name,
            )
            .unwrap_or(1),
            elapsed,
        },
        Survivor::Job { id, attempt, state } => {
            let tracker = fx.ctx.jobs.clone()?;
            Found {
                unit,
                proc: Proc::Job {
                    state: tracker.track(&id, state),
                    id: id.clone(),
                    tracker,
                },
                pid: 0,
                job_id: Some(id),
                attempt,
                elapsed,
            }
        }
    })
}

/// Tasks left in progress by agents that are gone (`gone`, as `doc` records them): the plan's
/// worktree saved and reset when no agent works in it, then each task recorded done, failed or
/// put back as the core decides ([`decide::left`]). Returns the tasks failed because the checks
/// of a task's commit refuse the commit waiting in their task worktree, with the cause.
fn settle_gone(
    pc: &PlanCtx,
    doc: &StatusDoc,
    gone: &[String],
    adopted_any: bool,
) -> Vec<(String, String)> {
    if decide::reset_plan_tree(pc.entry.parallel, adopted_any, gone.len()) {
        let _g = pc.git_lock.lock();
        // No agent works in the tree: its git files put back from orch's records first, so that
        // the save and reset are made against the plan branch, not where an agent left HEAD.
        // (Not put back: nothing is reset; the next commit fails on it, naming it.)
        if git::pin_worktree(&pc.worktree, pc.branch()).is_ok() {
            let refname = git::plan_resume_ref(pc.name(), Utc::now().timestamp());
            let _ = git::save_and_reset_within(
                &pc.worktree,
                &refname,
                &format!(
                    "{}: changes left by agents of a stopped supervisor",
                    pc.name()
                ),
                git::SaveLimits::dropping(pc.entry.size_limits),
            );
        }
    }
    if gone.is_empty() {
        return Vec::new();
    }
    // The plan branch's recent history: a supervisor killed between a task's commit and its
    // record leaves the task in progress with its commit there (a record waits for the plan's
    // next status write, and later tasks' commits may land before it).
    let recent = git::recent_commits(&pc.worktree, &pc.base, super::settle::UNRECORDED_DEPTH)
        .unwrap_or_default();
    let settled: Vec<(&String, Left)> = gone
        .iter()
        .map(|id| {
            // A commit waiting in the task's worktree: the supervisor died before landing it. Its
            // git files put back from orch's records first (HEAD on the task branch, wherever
            // an agent left it); not put back: nothing of it is read.
            let branch = git::task_branch(pc.name(), id);
            let tree = pc
                .task_worktree(id)
                .filter(|t| git::pin_worktree(t, &branch).is_ok());
            let head = tree.as_ref().and_then(|t| git::head_of(t).ok());
            let clean = || {
                tree.as_ref()
                    .and_then(|t| git::is_dirty(t).ok())
                    .map(|d| !d)
            };
            let started = doc.entry(id).and_then(|e| e.started_at.as_deref());
            let started = started
                .and_then(status::parse_timestamp)
                .map(|t| t.timestamp());
            let head = head.as_ref().map(|(_, msg)| msg.as_str());
            let refused = || match &tree {
                Some(t) => refused_waiting(pc, id, t),
                None => Some(format!("task `{id}` has no task worktree to check")),
            };
            (
                id,
                decide::left(pc.name(), id, head, clean, refused, &recent, started),
            )
        })
        .collect();
    let _ = pc.update(|doc| {
        for (id, left) in &settled {
            let mut opts = TransitionOptions {
                force: true,
                ..TransitionOptions::default()
            };
            let transition = match left {
                Left::Done { commit } => {
                    opts.commit.clone_from(commit);
                    Transition::Done
                }
                Left::Refused { cause } => {
                    opts.error = Some(cause.clone());
                    Transition::Fail
                }
                Left::Reset => {
                    opts.note =
                        Some("its agent was gone when orch restarted; it runs again".into());
                    Transition::Reset
                }
            };
            status::apply(doc, id, transition, &opts, Utc::now())?;
        }
        Ok(())
    });
    settled
        .into_iter()
        .filter_map(|(id, left)| match left {
            Left::Refused { cause } => Some((id.clone(), cause)),
            _ => None,
        })
        .collect()
}

/// Why the commit waiting in task `id`'s worktree `tree` may not land ([`decide::left`]'s
/// `refused`). The agent can make that commit itself, with anything in it: it is checked as a
/// normal completion's work is ([`super::settle::commit_refused`]), once its changes are back in
/// the tree as uncommitted changes ([`git::uncommit_task_tree`]), the form those checks
/// read and the commit that follows takes. A check that cannot run is a cause (fail closed).
fn refused_waiting(pc: &PlanCtx, id: &str, tree: &std::path::Path) -> Option<String> {
    let Some(index) = pc.plan.tasks.iter().position(|t| t.id == id) else {
        return Some(format!("task `{id}` is not in the plan"));
    };
    let branch = git::task_branch(pc.name(), id);
    // Its agent is gone: a lock of its branch is a killed git's.
    let _ = git::remove_plan_locks(&pc.repo_root, &git::task_tree_name(pc.name(), id), &branch);
    super::settle::commit_refused(
        pc,
        &pc.plan.tasks[index],
        (tree, &branch, Some(pc.branch())),
    )
}

/// Start-up, plan with task worktrees: each task worktree kept, unlocked or retired as the core
/// decides ([`decide::tree`]) from whether its agent was adopted (`busy`), its task is done but
/// not landed (`waiting`) or its commit recorded in `doc`.
fn tidy_task_trees(
    pc: &PlanCtx,
    doc: &StatusDoc,
    busy: &HashSet<String>,
    waiting: &HashSet<String>,
) {
    let Ok(ids) = git::task_tree_ids(&pc.repo_root, pc.name()) else {
        return;
    };
    for id in &ids {
        let landed = doc
            .entry(id)
            .is_some_and(|e| e.status == TaskStatus::Completed && e.commit.is_some());
        // No agent of the task runs: its git locks are a killed git's. The pool slot it holds
        // too (index, HEAD): a kill while a landed task's slot was freed left its HEAD.lock, and
        // the slot could be neither freed nor removed.
        let unlock = || {
            let _ = git::remove_plan_locks(
                &pc.repo_root,
                &git::task_tree_name(pc.name(), id),
                &git::task_branch(pc.name(), id),
            );
            if let Some(tree) = pc.task_worktree(id) {
                let _ = git::remove_tree_locks(&tree);
            }
        };
        match decide::tree(busy.contains(id), waiting.contains(id), landed) {
            Tree::Keep => {}
            Tree::Unlock => unlock(),
            Tree::Retire { save } => {
                // Its stale git locks first; saved under
                // `refs/orch/attempts/<plan>/<id>/resume-<time>` unless it is clean and need not be.
                unlock();
                let refname = git::task_resume_ref(pc.name(), id, Utc::now().timestamp_millis());
                let message = format!(
                    "{} {id}: left in its task worktree by a stopped supervisor (saved by orch)",
                    pc.name()
                );
                let retire = |save: bool| {
                    git::retire_task_tree(
                        &pc.task_tree(id),
                        save.then_some((refname.as_str(), message.as_str())),
                    )
                };
                if save || retire(false).is_err() {
                    let _ = retire(true);
                }
            }
        }
    }
    // A pool a supervisor killed after the plan's last landing left goes when the core finds
    // the plan finished (`Action::DropPool`).
}
