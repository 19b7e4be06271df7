//! `orch task start|done|fail|skip|reset ID`: what agents call to record a task's outcome.

use anyhow::anyhow;
use chrono::Utc;
use serde_json::json;

use super::output::{print_json, println_safe};
use crate::agent_env;
use crate::error::{CliError, CliResult, exit};
use crate::graph::readiness;
use crate::status::{self, RunInfo, StatusError, Transition, TransitionOptions, TransitionOutcome};
use crate::workspace::{self, Selection, status_error};

pub struct TaskArgs {
    pub transition: Transition,
    pub id: String,
    pub opts: TransitionOptions,
    /// `start` only: skip the readiness check.
    pub json: bool,
}

pub fn run(sel: &Selection, args: TaskArgs) -> CliResult<u8> {
    let (sel, status_override) = sel.clone().with_agent_env();
    let ws = workspace::load(&sel)?;
    let graph = ws.require_valid()?;
    let candidates: Vec<usize> = ws
        .selected
        .iter()
        .copied()
        .filter(|&i| ws.plans[i].plan.task(&args.id).is_some())
        .collect();
    let index = match candidates.as_slice() {
        [one] => *one,
        [] => {
            let where_ = if ws.selected.len() == 1 {
                format!("plan `{}`", ws.plans[ws.selected[0]].name)
            } else {
                "any plan".to_string()
            };
            return Err(CliError::invalid(anyhow!(
                "task `{}` does not exist in {where_}",
                args.id
            ))
            .with_hint("`orch status` lists the task ids"));
        }
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|&i| format!("`{}`", ws.plans[i].name))
                .collect();
            return Err(CliError::invalid(anyhow!(
                "task `{}` exists in several plans ({}): name one with --plan",
                args.id,
                names.join(", ")
            )));
        }
    };
    let lp = &ws.plans[index];
    let path = status_override
        .filter(|_| sel.plan.is_some())
        .unwrap_or_else(|| lp.status_path.clone());

    // Starting a task that is not ready would run it out of order: refuse unless forced.
    if args.transition == Transition::Start && !args.opts.force {
        let mut docs = workspace::read_statuses(&ws, None)?;
        docs[index] = lp.read_status_at(&path).map_err(status_error)?;
        let task_idx = lp
            .plan
            .tasks
            .iter()
            .position(|t| t.id == args.id)
            .ok_or_else(|| no_task(lp, &args.id))?;
        let node = graph.task_node[index][task_idx];
        let r = readiness(
            graph,
            &ws.plan_list(),
            &ws.priorities(),
            workspace::state_fn(&ws, &docs),
        );
        if let Some((_, why)) = r.blocked.iter().find(|(n, _)| *n == node) {
            let reasons: Vec<String> = why.iter().map(|w| ws.describe_waiting(graph, w)).collect();
            return Err(CliError::new(
                exit::REFUSED,
                anyhow!("task `{}` is not ready: {}", args.id, reasons.join("; ")),
            )
            .with_hint("use --force to start it anyway"));
        }
    }

    let mut opts = args.opts;
    if args.transition == Transition::Start && opts.run.is_none() {
        // The agent calling us is our parent; record it so a supervisor can tell it is alive.
        // Inside a batch job (an agent orch submitted to Slurm), the job is what a supervisor
        // watches: a pid of the compute node means nothing on the supervisor's machine.
        opts.run = Some(match std::env::var("SLURM_JOB_ID") {
            Ok(job) if !job.is_empty() => RunInfo {
                executor: Some("slurm".into()),
                job_id: Some(job),
                host: crate::process::hostname(),
                ..RunInfo::default()
            },
            _ => {
                let pid = std::os::unix::process::parent_id();
                RunInfo {
                    pid,
                    process_start_time: status::process_start_time(pid),
                    ..RunInfo::default()
                }
            }
        });
    }
    // A plan-mode agent under `orch up` reports a task done: commit its work now, before the
    // agent goes on to the next task, so the commit holds this task's changes and no others.
    if args.transition == Transition::Done
        && let Some(worktree) = commit_on_done()
        && opts.commit.is_none()
    {
        let already = lp
            .read_status_at(&path)
            .map_err(status_error)?
            .entry(&args.id)
            .is_some_and(|e| e.status == status::TaskStatus::Completed);
        if !already {
            let task = lp
                .plan
                .task(&args.id)
                .ok_or_else(|| no_task(lp, &args.id))?;
            let message = format!(
                "{} {}: {}",
                lp.name,
                args.id,
                crate::supervisor::context::strip_annotations(&task.description)
            );
            let info = crate::git::commit_all(&worktree, &message).map_err(|e| {
                CliError::new(exit::FAILURE, e)
                    .with_hint("the task is not marked done; fix the worktree and report it again")
            })?;
            opts.commit = Some(info.oid);
        }
    }
    let ((outcome, report), _) =
        status::update(&path, &lp.plan, &lp.rel_path, &lp.name, |doc, report| {
            let outcome = status::apply(doc, &args.id, args.transition, &opts, Utc::now())?;
            Ok::<_, StatusError>((outcome, report.clone()))
        })
        .map_err(status_error)?;
    for (id, st) in &report.removed {
        eprintln!(
            "note: task `{id}` is no longer in the plan; its recorded status `{st}` was dropped"
        );
    }
    if args.json {
        print_json(&json!({ "plan": lp.name, "status_file": path, "result": outcome }));
    } else {
        match &outcome {
            TransitionOutcome::Changed { id, from, to } => {
                println_safe(&format!("{}: task `{id}` {from} → {to}", lp.name));
            }
            TransitionOutcome::Unchanged { id, status } => {
                println_safe(&format!("{}: task `{id}` is already {status}", lp.name));
            }
        }
    }
    Ok(exit::OK)
}

/// The worktree to commit in when `orch up` asked for it (`ORCH_COMMIT_ON_DONE=1`, given to
/// plan-mode agents, with `ORCH_WORKTREE`).
fn commit_on_done() -> Option<std::path::PathBuf> {
    if std::env::var(agent_env::ORCH_COMMIT_ON_DONE)
        .ok()
        .as_deref()
        != Some("1")
    {
        return None;
    }
    std::env::var_os(agent_env::ORCH_WORKTREE)
        .filter(|w| !w.is_empty())
        .map(std::path::PathBuf::from)
}

/// The task `id` is not in the plan (looked up once already; an error rather than a panic).
fn no_task(lp: &workspace::LoadedPlan, id: &str) -> CliError {
    CliError::invalid(anyhow!(
        "plan `{}` (`{}`) has no task `{id}`",
        lp.name,
        lp.rel_path
    ))
}
