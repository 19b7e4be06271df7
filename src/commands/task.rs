//! `orch task start|done|fail|skip|reset ID`: what agents call to record a task's outcome.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use chrono::Utc;

pub(crate) use super::task_call::TaskArgs;
use super::task_call::print_outcome;
use crate::agent_env;
use crate::error::{CliError, CliResult, exit};
use crate::graph::readiness;
use crate::status::{self, RunInfo, StatusError, Transition, TransitionOutcome};
use crate::workspace::{self, Selection, status_error};

pub(crate) fn run(sel: &Selection, args: TaskArgs) -> CliResult<u8> {
    // Inside an attempt of `orch up`: the report goes to the supervisor, never to the file.
    // Which supervisor is decided by the directory orch handed the attempt (`ORCH_REPORT_DIR`,
    // in the run's state directory whatever repository the plan is of), never by the working
    // directory or a manifest. With no supervisor running any more (it was killed), the call
    // writes the status file as a person's would, where it can (an unconfined agent): the next
    // `orch up` recovers it. It is never handed to another `orch up` as a person's report.
    let report_dir = std::env::var_os(agent_env::ORCH_REPORT_DIR).filter(|d| !d.is_empty());
    if let Some(dir) = &report_dir
        && let Some(state_dir) = status::report::state_dir_of_attempt_dir(Path::new(dir))
        && let Some(code) =
            super::task_report::report_and_wait(Path::new(dir), state_dir, &args, false)?
    {
        return Ok(code);
    }
    let (sel, status_override) = sel.clone().with_agent_env();
    let attempt = report_dir.is_some();
    if let Some(code) = run_one_plan(&sel, status_override.as_deref(), &args, attempt)? {
        return Ok(code);
    }
    let ws = workspace::load(&sel)?;
    let graph = ws.require_valid()?;
    let index = ws.plan_of_task(&args.id)?;
    let lp = &ws.plans[index];
    if !attempt
        && let Some(m) = &ws.manifest
        && let Some(code) = super::task_report::via_running_supervisor(m, &lp.name, &args)?
    {
        return Ok(code);
    }
    let path = status_override
        .filter(|_| sel.plan.is_some())
        .unwrap_or_else(|| lp.status_path.clone());

    // Starting a task that is not ready would run it out of order: refuse unless forced.
    if args.transition == Transition::Start && !args.opts.force {
        check_ready(&ws, graph, index, &path, &args.id)?;
    }

    let mut opts = args.opts;
    if args.transition == Transition::Start && opts.run.is_none() {
        opts.run = Some(calling_run());
    }
    // A plan-mode agent under `orch up` reports a task done: commit its work now, before the
    // agent goes on to the next task, so the commit holds this task's changes and no others.
    if args.transition == Transition::Done
        && let Some(worktree) = commit_on_done()
        && opts.commit.is_none()
    {
        let entry = ws.manifest.as_ref().and_then(|m| m.plan(&lp.name));
        let paths = entry.map(|e| e.paths.as_slice()).unwrap_or_default();
        // What a later run trusts, protected as the supervisor protects it (a plan without a
        // manifest, orch used as a tracker, has no configuration to protect).
        let guarded = match (&ws.manifest, entry) {
            (Some(m), Some(e)) => {
                let root = workspace::repo_root(m)?;
                let guarded = std::iter::once(lp)
                    .chain(&ws.plans)
                    .fold(m.guarded(&root, Some(e)), |g, p| {
                        g.with_task_checks(&p.plan)
                    });
                Some((guarded, e, root))
            }
            _ => None,
        };
        let protection =
            guarded
                .as_ref()
                .map(|(guarded, e, root)| crate::supervisor::settle::Protection {
                    guarded,
                    protect: e.protect.as_ref(),
                    allowed: e.allow_protected.as_ref(),
                    base: "",
                    repo_root: root,
                });
        let limits = entry.map(|e| e.size_limits).unwrap_or_default();
        opts.commit = commit_task(
            lp,
            &path,
            &args.id,
            &worktree,
            (paths, protection.as_ref(), limits),
        )?;
    }
    let ((outcome, report), _) =
        status::update(&path, &lp.plan, &lp.rel_path, &lp.name, |doc, report| {
            let outcome = status::apply(doc, &args.id, args.transition, &opts, Utc::now())?;
            Ok::<_, StatusError>((outcome, report.clone()))
        })
        .map_err(status_error)?;
    for (id, st) in &report.removed {
        crate::commands::output::eprintln_safe(&format!(
            "note: task `{id}` is no longer in the plan; its recorded status `{st}` was dropped"
        ));
    }
    print_outcome(&lp.name, &path, &outcome, args.json);
    Ok(exit::OK)
}

/// Refuses to start task `id` of plan `index` (its status file at `path`) while it is not ready:
/// it would run out of order.
fn check_ready(
    ws: &workspace::Workspace,
    graph: &crate::graph::Graph,
    index: usize,
    path: &Path,
    id: &str,
) -> CliResult<()> {
    let lp = &ws.plans[index];
    let mut states = workspace::read_states(ws, None)?;
    states[index] = status::load_states(path)
        .map_err(status_error)?
        .unwrap_or_default();
    let task_idx = lp
        .plan
        .tasks
        .iter()
        .position(|t| t.id == id)
        .ok_or_else(|| no_task(lp, id))?;
    let node = graph.task_node[index][task_idx];
    let plans: Vec<&crate::plan::Plan> = ws.plans.iter().map(|p| &p.plan).collect();
    let r = readiness(
        graph,
        &plans,
        &ws.priorities(),
        workspace::states_fn(ws, &states),
    );
    if let Some((_, why)) = r.blocked.iter().find(|(n, _)| *n == node) {
        let reasons = super::next::describe_grouped(ws, graph, why);
        return Err(CliError::new(
            exit::REFUSED,
            anyhow!("task `{}` is not ready: {}", id, reasons.join("; ")),
        )
        .with_hint("use --force to start it anyway"));
    }
    Ok(())
}

/// The process that calls `orch task start`: the agent, our parent, recorded so a supervisor
/// can tell it is alive. Inside a batch job (an agent orch submitted to Slurm), the job is what a
/// supervisor watches: a pid of the compute node means nothing on the supervisor's machine.
fn calling_run() -> RunInfo {
    match std::env::var("SLURM_JOB_ID") {
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
                process_start_time: crate::process::process_start_time(pid),
                ..RunInfo::default()
            }
        }
    }
}

/// Commits the work of task `id` in `worktree` as `<plan> <id>: <description>`, unless the
/// task is completed already; the commit's id. A sparse plan's (`paths`) work outside its cone
/// is refused, and a change of a protected path (`protection`: what a later run trusts, the
/// plan's `protect`), as the supervisor refuses a task's; so is a file over the plan's
/// `max_file_size` or a change over its `max_change_size` (`limits`), before anything is hashed.
fn commit_task(
    lp: &workspace::LoadedPlan,
    path: &Path,
    id: &str,
    worktree: &Path,
    (paths, protection, limits): (
        &[String],
        Option<&crate::supervisor::settle::Protection<'_>>,
        crate::manifest::SizeLimits,
    ),
) -> CliResult<Option<String>> {
    let already = status::view(path, &lp.plan, &lp.rel_path, &lp.name)
        .map_err(status_error)?
        .0
        .entry(id)
        .is_some_and(|e| e.status == status::TaskStatus::Completed);
    if !already {
        let task = lp.plan.task(id).ok_or_else(|| no_task(lp, id))?;
        let outside = crate::supervisor::settle::outside_paths(worktree, paths, None)
            .map_err(|cause| CliError::new(exit::FAILURE, anyhow!(cause)))?;
        if let Some(cause) = outside {
            return Err(CliError::new(
                exit::FAILURE,
                anyhow!("task `{id}` of plan `{}` {cause}", lp.name),
            )
            .with_hint(
                "the task is not marked done; move the change into the plan's paths, or add \
                 its directory to `paths` in plans.toml",
            ));
        }
        let dirt = crate::git::Dirt::new(worktree);
        // orch's own directories are never staged (those of the manifest's repository, else
        // their defaults).
        let own = match protection {
            Some(p) => p.guarded.own.clone(),
            None => crate::manifest::own_dirs_of(None, worktree),
        };
        // Nothing over the limits is hashed (the commit would read it whole), by the commit
        // or by the status the checks read (one, for all of them, read first here).
        let large = crate::git::worktree_change(&dirt, &own, limits).map(Result::err).map_err(|e| {
            CliError::new(
                exit::FAILURE,
                anyhow!(
                    "task `{id}` of plan `{}`: cannot read the sizes of the changed files (nothing is committed unchecked): {e}",
                    lp.name
                ),
            )
        })?;
        if let Some(found) = large {
            return Err(CliError::new(
                exit::FAILURE,
                anyhow!("task `{id}` of plan `{}`: {found}", lp.name),
            )
            .with_hint(
                "the task is not marked done; remove the file (or raise the plan's `max_file_size` / \
                 `max_change_size` in plans.toml), then report it again",
            ));
        }
        if let Some(p) = protection {
            // Its uncommitted changes, what this commit takes (no branch is read).
            let found = crate::supervisor::settle::protected_changes(p, task, (&dirt, "", None))
                .map_err(|cause| CliError::new(exit::FAILURE, anyhow!(cause)))?;
            if let Some(cause) = found {
                return Err(CliError::new(
                    exit::FAILURE,
                    anyhow!("task `{id}` of plan `{}`: {cause}", lp.name),
                )
                .with_hint(format!(
                    "the task is not marked done; undo the change (or, if a person wants it, \
                     add the file to `allow_protected` of plan `{}` in plans.toml)",
                    lp.name
                )));
            }
        }
        let message =
            crate::supervisor::context::commit_message(&lp.name, &lp.plan, id, &task.description);
        let info =
            crate::git::commit_all_except(worktree, &message, (&own, limits)).map_err(|e| {
                CliError::new(exit::FAILURE, e)
                    .with_hint("the task is not marked done; fix the worktree and report it again")
            })?;
        return Ok(Some(info.oid));
    }
    Ok(None)
}

/// The agent's usual call, `orch task done|fail|skip|reset ID`, with the plan
/// named (`--plan NAME` or `ORCH_PLAN`) in a manifest, done reading only that plan: no other
/// plan is parsed and no graph is built, since no readiness check is needed. When the status
/// file's `orchPlanDigest` matches the plan file, the plan is not even parsed. `None` when the
/// call needs the whole workspace (a readiness check, a plan given by path, no plan named, a
/// commit to make): the caller takes the general path.
fn run_one_plan(
    sel: &Selection,
    status_override: Option<&Path>,
    args: &TaskArgs,
    attempt: bool,
) -> CliResult<Option<u8>> {
    // `start` checks readiness (or, forced, still records the calling process): the general
    // path does both. So does a `done` that commits a plan-mode agent's work.
    let commits = args.transition == Transition::Done && commit_on_done().is_some();
    if commits || args.transition == Transition::Start {
        return Ok(None);
    }
    let Some(manifest_path) = manifest_of_call(sel)? else {
        return Ok(None);
    };
    let m = workspace::load_manifest(&manifest_path)?;
    // No plan named: a manifest of one plan names it (a person using orch as a tracker).
    let name = match (sel.plan.as_deref(), m.plans.as_slice()) {
        (Some(name), _) => name,
        (None, [only]) => only.name.as_str(),
        (None, _) => return Ok(None),
    };
    let Some(entry) = m.plan(name) else {
        return Ok(None);
    };
    // An attempt's report is its own report directory's supervisor's or the file's (`run`).
    if !attempt && let Some(code) = super::task_report::via_running_supervisor(&m, name, args)? {
        return Ok(Some(code));
    }
    let rel = entry.file.to_string_lossy().into_owned();
    let path = status_override
        .map(Path::to_path_buf)
        .unwrap_or_else(|| m.state_path(name));
    let bytes = crate::untrusted::read::whole(&entry.abs_file, crate::untrusted::read::PLAN)
        .map_err(|e| CliError::invalid(crate::plan::read_error(&entry.file, e)))?;
    let digest = status::plan_digest(&bytes);
    let apply = |doc: &mut status::StatusDoc| -> Result<Option<TransitionOutcome>, StatusError> {
        if doc.entry(&args.id).is_none() {
            return Ok(None);
        }
        status::apply(doc, &args.id, args.transition, &args.opts, Utc::now()).map(Some)
    };
    let unknown = || {
        CliError::invalid(anyhow!(
            "task `{}` does not exist in plan `{name}`",
            args.id
        ))
        .with_hint("`orch status` lists the task ids")
    };
    let fast = status::apply_if_current(
        &path,
        &digest,
        &rel,
        name,
        &args.id,
        args.transition,
        &args.opts,
        Utc::now(),
    );
    match fast {
        Ok(Some(outcome)) => {
            print_outcome(name, &path, &outcome, args.json);
            return Ok(Some(exit::OK));
        }
        Ok(None) => {}
        Err(StatusError::UnknownTask { .. }) => return Err(unknown()),
        Err(e) => return Err(status_error(e)),
    }
    // The plan changed since the status file last followed it (or never did): parse it, check
    // it, reconcile, and remember the digest.
    let plan = parse_checked(&entry.file, &bytes)?;
    if plan.task(&args.id).is_none() {
        return Err(unknown());
    }
    let (outcome, report) =
        status::update_with_digest((&path, None), &plan, Some(&digest), &rel, name, |doc, _| {
            apply(doc)
        })
        .map_err(status_error)?;
    for (id, st) in &report.removed {
        crate::commands::output::eprintln_safe(&format!(
            "note: task `{id}` is no longer in the plan; its recorded status `{st}` was dropped"
        ));
    }
    let outcome = outcome.ok_or_else(unknown)?;
    print_outcome(name, &path, &outcome, args.json);
    Ok(Some(exit::OK))
}

/// The manifest of the agent's call: `--manifest`, else the one found from the current
/// directory; `None` when there is none (or it is not a file).
fn manifest_of_call(sel: &Selection) -> CliResult<Option<PathBuf>> {
    let path = match &sel.manifest {
        Some(p) => p.clone(),
        None => {
            let cwd = std::env::current_dir()
                .map_err(|e| anyhow!("cannot read the current directory: {e}"))?;
            match crate::manifest::find_manifest(&cwd) {
                Some(p) => p,
                None => return Ok(None),
            }
        }
    };
    Ok(path.is_file().then_some(path))
}

/// Plan file `file` (its `bytes`) parsed and checked: its errors, or its graph's, are exit 2.
fn parse_checked(file: &Path, bytes: &[u8]) -> CliResult<crate::plan::Plan> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        CliError::invalid(anyhow!("plan file `{}` is not valid UTF-8", file.display()))
    })?;
    // Without the tasks' `files`: the status file does not record them.
    let mut plan = crate::plan::parse_with(file, text, false);
    for d in &mut plan.diagnostics {
        d.path = file.to_path_buf();
    }
    if plan.has_errors() {
        return Err(workspace::invalid_input(&plan.diagnostics));
    }
    if let Err(e) = crate::graph::Graph::of_plan(&plan) {
        return Err(workspace::invalid_input(&e.0));
    }
    Ok(plan)
}

/// The worktree to commit in when `orch up` asked for it (`ORCH_COMMIT_ON_DONE=1`, given to
/// plan-mode agents, with `ORCH_WORKTREE`).
fn commit_on_done() -> Option<PathBuf> {
    std::env::var_os(agent_env::ORCH_COMMIT_ON_DONE).filter(|v| v == "1")?;
    std::env::var_os(agent_env::ORCH_WORKTREE)
        .filter(|w| !w.is_empty())
        .map(PathBuf::from)
}

/// The task `id` is not in the plan (looked up once already; an error rather than a panic).
fn no_task(lp: &workspace::LoadedPlan, id: &str) -> CliError {
    CliError::invalid(anyhow!(
        "plan `{}` (`{}`) has no task `{id}`",
        lp.name,
        lp.rel_path
    ))
}
