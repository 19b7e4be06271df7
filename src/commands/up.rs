//! `orch up`: check everything, make a worktree and branch per plan, then hand over to the
//! supervisor until every plan is finished, failed or blocked.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::anyhow;
use chrono::Utc;
use serde_json::json;

use crate::error::{CliError, CliResult, exit};
use crate::executor::{ExecutorKind, JobTracker, Slurm};
use crate::git::{self, TreeAction, TreeRequest};
use crate::manifest::{AgentMode, Manifest, render_template};
use crate::process::resolve_program;
use crate::prompt::{TaskPrompt, Templates};
use crate::status;
use crate::supervisor::context::{Ctx, PlanCtx};
use crate::supervisor::{Event, PlanInfo, Progress, ProgressMode, SupervisorLock};
use crate::workspace::{self, Selection};

pub struct UpArgs {
    /// Plan names; empty = every plan of the manifest (or the one `--plan`).
    pub plans: Vec<String>,
    pub json: bool,
    /// Overrides `defaults.max_agents`.
    pub max_agents: Option<usize>,
    /// The merge train, also when `defaults.auto_merge` is off.
    pub merge: bool,
}

pub fn run(sel: &Selection, args: UpArgs) -> CliResult<u8> {
    let ws = workspace::load(sel)?;
    ws.require_valid()?;
    let Some(manifest) = ws.manifest.clone() else {
        return Err(CliError::invalid(anyhow!(
            "`orch up` needs a plans.toml: it runs the plans the manifest lists"
        ))
        .with_hint("write one with `orch init`, or pass `--manifest PATH`"));
    };
    let selected = ws.select(&args.plans)?;
    let orch_bin =
        std::env::current_exe().map_err(|e| anyhow!("cannot find the orch executable: {e}"))?;

    // 1. Everything that can be checked without touching the disk.
    let repo_root = workspace::repo_root(&manifest)?;
    let templates = Templates::load(&manifest.root, &manifest.defaults.templates)
        .map_err(|e| CliError::invalid(anyhow!("{e}")))?;
    templates
        .check()
        .map_err(|e| CliError::invalid(anyhow!("{e}")))?;
    let mut actions = Vec::new();
    let mut checked_agents = std::collections::BTreeSet::new();
    for &i in &selected {
        let lp = &ws.plans[i];
        let entry = workspace::entry_of(&manifest, &lp.name)?;
        check_agent(
            &manifest,
            entry,
            &orch_bin,
            &templates,
            lp,
            &mut checked_agents,
        )?;
        let doc = lp.read_status().map_err(workspace::status_error)?;
        let unfinished = doc.entries().any(|e| !e.status.is_finished());
        if !unfinished && !commit_owed(&doc) {
            actions.push(None);
            continue;
        }
        let path = manifest.worktree_path(&lp.name);
        let req = TreeRequest {
            repo_root: &repo_root,
            plan: &lp.name,
            branch: &entry.branch,
            path: &path,
            target: &manifest.defaults.target,
            copy: &entry.copy,
        };
        let action = git::plan_tree_preflight(&req).map_err(git_error)?;
        if matches!(action, TreeAction::Create { .. }) {
            let abs = entry
                .abs_file
                .canonicalize()
                .unwrap_or_else(|_| entry.abs_file.clone());
            let rel = abs
                .strip_prefix(&repo_root)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| entry.file.clone());
            if git::file_differs_from(&repo_root, &manifest.defaults.target, &rel)
                .map_err(git_error)?
            {
                return Err(CliError::new(
                    exit::REFUSED,
                    anyhow!(
                        "plan file `{}` of plan `{}` differs from its version on `{}`: the new worktree, made from `{}`, would not have what you see here",
                        entry.file.display(),
                        lp.name,
                        manifest.defaults.target,
                        manifest.defaults.target
                    ),
                )
                .with_hint(format!(
                    "commit it on `{}` first: git add {} && git commit",
                    manifest.defaults.target,
                    entry.file.display()
                )));
            }
        }
        actions.push(Some(action));
    }

    let slurm_plans: Vec<&str> = selected
        .iter()
        .map(|&i| ws.plans[i].name.as_str())
        .filter(|name| {
            manifest
                .plan(name)
                .is_some_and(|e| e.executor == ExecutorKind::Slurm)
        })
        .collect();
    if !slurm_plans.is_empty() {
        check_slurm(&manifest, &slurm_plans, &orch_bin)?;
    }

    // 2. One supervisor per repository.
    let state_dir = manifest.root.join(&manifest.defaults.state_dir);
    let _lock = SupervisorLock::acquire(&state_dir).map_err(|e| {
        let hint = match &e {
            crate::supervisor::LockError::Held { .. } => {
                "wait for it to finish, or stop it (Ctrl-C in its terminal); `orch status --watch` follows its progress"
            }
            crate::supervisor::LockError::Open { .. } => "check the permissions of the state directory",
        };
        CliError::new(exit::REFUSED, e).with_hint(hint)
    })?;

    // 3. Worktrees and branches.
    let excluded: Vec<String> = [
        &manifest.defaults.worktree_root,
        &manifest.defaults.state_dir,
        &manifest.defaults.log_dir,
    ]
    .iter()
    .filter_map(|d| {
        manifest
            .root
            .join(d)
            .strip_prefix(&repo_root)
            .ok()
            .map(|r| format!("/{}/", r.display()))
    })
    .collect();
    git::ensure_excluded(&repo_root, &excluded).map_err(git_error)?;

    let mode = ProgressMode::detect(args.json);
    let infos: Vec<PlanInfo> = selected
        .iter()
        .map(|&i| {
            let lp = &ws.plans[i];
            let doc = lp.read_status().ok();
            PlanInfo {
                name: lp.name.clone(),
                total: lp.plan.tasks.len(),
                done: doc.map_or(0, |d| {
                    d.entries().filter(|e| e.status.is_finished()).count()
                }),
            }
        })
        .collect();
    let progress = Arc::new(Mutex::new(Progress::new(mode, &infos)));
    let emit_to = progress.clone();
    // `[[notify]]`: each event also goes to the hooks' queues (never waited for here), and
    // their failed deliveries come back as notes.
    let notifier = crate::notify::Notifier::start(&manifest.notify, &repo_root).map(Arc::new);
    let notify_to = notifier.clone();
    // `<state_dir>/events.jsonl`: what `orch top` attaches to.
    let log = Arc::new(Mutex::new(crate::supervisor::event_log::EventLog::open(
        &state_dir,
    )));
    let log_to = log.clone();
    let mut emit = move |e: &Event| {
        if let Ok(mut p) = emit_to.lock() {
            let mut said = Vec::new();
            if let Ok(mut l) = log_to.lock() {
                let failed = l.failed.is_some();
                l.append(e);
                if let (false, Some(why)) = (failed, &l.failed) {
                    said.push(format!("no event log: {why}"));
                }
            }
            p.event(e);
            if let Some(n) = &notify_to {
                notify_event(n, e);
                said.extend(n.take_notes());
            }
            for message in said {
                let note = Event::Note {
                    plan: None,
                    message,
                };
                if let Ok(mut l) = log_to.lock() {
                    l.append(&note);
                }
                p.event(&note);
            }
        }
    };

    // Lock files left by a git write killed with an earlier supervisor (its commit, or the
    // creation of the plan branch) would fail this run's. This supervisor is the only one now;
    // a plan with no live agent left has no other writer either.
    if let Some(lock) = git::remove_stale_config_lock(&repo_root).map_err(git_error)? {
        emit(&Event::Note {
            plan: None,
            message: format!(
                "removed `{}`, a stale git lock left by an interrupted run",
                lock.display()
            ),
        });
    }
    let agents = crate::process::find_agents();
    for &i in &selected {
        let lp = &ws.plans[i];
        let entry = workspace::entry_of(&manifest, &lp.name)?;
        let status_file = lp.status_path.display().to_string();
        // Agents of a plan with task worktrees never write in the plan's worktree or branch:
        // only orch does (landing task commits), and no other orch runs now.
        if !manifest.task_trees(entry) && agents.iter().any(|a| a.status_file == status_file) {
            continue;
        }
        for lock in
            git::remove_plan_locks(&repo_root, &lp.name, &entry.branch).map_err(git_error)?
        {
            emit(&Event::Note {
                plan: Some(lp.name.clone()),
                message: format!(
                    "removed `{}`, a stale git lock left by an interrupted run",
                    lock.display()
                ),
            });
        }
    }

    let mut plans: Vec<Option<Arc<PlanCtx>>> = vec![None; ws.plans.len()];
    // Plans whose branch already has work: checked against each other once all trees are made.
    let mut with_work: Vec<(String, String)> = Vec::new();
    for (&i, action) in selected.iter().zip(&actions) {
        let lp = &ws.plans[i];
        let entry = workspace::entry_of(&manifest, &lp.name)?;
        let path = manifest.worktree_path(&lp.name);
        let (base, created_at) = match action {
            None => (String::new(), None),
            Some(_) => {
                let req = TreeRequest {
                    repo_root: &repo_root,
                    plan: &lp.name,
                    branch: &entry.branch,
                    path: &path,
                    target: &manifest.defaults.target,
                    copy: &entry.copy,
                };
                let tree = git::ensure_plan_tree(&req).map_err(git_error)?;
                let created_at = record_tree(lp, &tree)?;
                if tree.head != tree.base {
                    with_work.push((lp.name.clone(), tree.branch.clone()));
                }
                emit(&Event::PlanStarted {
                    plan: lp.name.clone(),
                    branch: tree.branch.clone(),
                    worktree: tree.path.clone(),
                    base: tree.base.clone(),
                    created: tree.created,
                });
                (tree.base, Some(created_at))
            }
        };
        let agent = manifest.agent_of(entry).cloned().ok_or_else(|| {
            CliError::invalid(anyhow!(
                "plan `{}` names agent `{}`, which `{}` does not define",
                lp.name,
                entry.agent,
                manifest.path.display()
            ))
        })?;
        plans[i] = Some(Arc::new(PlanCtx {
            index: i,
            name: lp.name.clone(),
            plan: lp.plan.clone(),
            rel_path: lp.rel_path.clone(),
            digest: plan_digest(&entry.abs_file, &lp.plan),
            status_path: lp.status_path.clone(),
            log_dir: manifest.log_dir(&lp.name),
            worktree: path,
            branch: entry.branch.clone(),
            base,
            created_at,
            agent_name: entry.agent.clone(),
            agent,
            parallel: entry.parallel,
            parallel_tasks: entry.parallel_tasks,
            repo_root: repo_root.clone(),
            copy: entry.copy.clone(),
            timeout: entry.timeout,
            retries: entry.retries,
            setup: entry.setup.clone(),
            depends_on: entry.depends_on.clone(),
            git_lock: Mutex::new(()),
            commits: Default::default(),
            executor: entry.executor,
            slurm: entry.slurm.clone(),
            check: entry.check.clone(),
            budget: entry.budget,
            port: Default::default(),
            unrecorded: Default::default(),
            known: Default::default(),
        }));
    }

    warn_conflicts(&repo_root, &with_work, &mut emit);

    let jobs = if slurm_plans.is_empty() {
        None
    } else {
        let slurm = Slurm::new(&state_dir).map_err(|e| {
            anyhow!(
                "cannot write the Slurm job script into `{}`: {e}",
                state_dir.display()
            )
        })?;
        Some(JobTracker::new(Arc::new(slurm), manifest.slurm_poll))
    };

    let ctx = Arc::new(Ctx {
        repo_root: repo_root.clone(),
        manifest_path: std::path::absolute(&manifest.path).unwrap_or(manifest.path.clone()),
        orch_bin,
        max_agents: args
            .max_agents
            .unwrap_or(manifest.defaults.max_agents)
            .max(1),
        grace: manifest.defaults.grace,
        backoff: manifest.defaults.backoff,
        stuck_after: manifest.defaults.stuck_after,
        auto_merge: args.merge || manifest.defaults.auto_merge,
        budget: manifest.defaults.budget,
        limit_backoff: limit_backoff(),
        templates,
        plans,
        jobs,
        ports: manifest.defaults.ports,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| anyhow!("cannot start the async runtime: {e}"))?;
    let mut summary = runtime.block_on(crate::supervisor::run(ctx, &ws, &mut emit));
    if let Some(n) = &notifier {
        // The hooks get `run_finished` first; then their queues are waited for (at most the
        // longest hook timeout) and the failures counted in the summary.
        notify_event(
            n,
            &Event::RunFinished {
                summary: summary.clone(),
            },
        );
        summary.notify_failures = n.finish();
        if let Ok(mut p) = progress.lock() {
            for message in n.take_notes() {
                let note = Event::Note {
                    plan: None,
                    message,
                };
                if let Ok(mut l) = log.lock() {
                    l.append(&note);
                }
                p.event(&note);
            }
        }
    }
    emit(&Event::RunFinished {
        summary: summary.clone(),
    });
    if let Ok(mut p) = progress.lock() {
        p.finish(&summary);
    }
    // Agents' tasks are done; do not wait for stray blocking work.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(if summary.interrupted {
        exit::INTERRUPTED
    } else if !summary.agents_stopped.is_empty() {
        exit::AGENT
    } else if summary
        .plans
        .iter()
        .all(|p| p.outcome == "completed" && p.merge.as_deref().is_none_or(|m| m == "merged"))
    {
        exit::OK
    } else {
        exit::INCOMPLETE
    })
}

/// Queues `e` for the `[[notify]]` hooks, as the line `--json` prints.
fn notify_event(n: &crate::notify::Notifier, e: &Event) {
    let stamped = crate::supervisor::Stamped {
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        event: e,
    };
    if let Ok(line) = serde_json::to_string(&stamped)
        && let Some(name) = crate::notify::event_name(&line)
    {
        n.send(&name, &line);
    }
}

/// Most plans whose branches are compared pairwise at start-up (`n²/2` in-memory merges).
const CONFLICT_CHECK_MAX: usize = 20;

/// A `Note` for each pair of `(plan, branch)` whose branches would conflict when merged (an
/// early warning; `orch conflicts` has the full picture). Skipped above [`CONFLICT_CHECK_MAX`]
/// plans; a failing check is skipped too (it decides nothing).
fn warn_conflicts(repo_root: &Path, plans: &[(String, String)], emit: &mut impl FnMut(&Event)) {
    if plans.len() < 2 || plans.len() > CONFLICT_CHECK_MAX {
        return;
    }
    let revs: Vec<String> = plans.iter().map(|(_, b)| b.clone()).collect();
    let pairs: Vec<(usize, usize)> = (0..revs.len())
        .flat_map(|i| (i + 1..revs.len()).map(move |j| (i, j)))
        .collect();
    let Ok(results) = git::conflicts_of_pairs(repo_root, &revs, &pairs) else {
        return;
    };
    for (&(i, j), files) in pairs.iter().zip(results) {
        if files.is_empty() {
            continue;
        }
        let list = crate::diagnostic::path_list(&files, 5);
        emit(&Event::Note {
            plan: Some(plans[i].0.clone()),
            message: format!(
                "branches `{}` and `{}` (plan `{}`) would conflict when merged, on {list}; \
                 `orch conflicts` shows every pair",
                plans[i].1, plans[j].1, plans[j].0
            ),
        });
    }
}

/// Plans run through Slurm need its controller, and paths the compute nodes can see: a
/// directory on a node-local filesystem (tmpfs) is refused now; each job checks the rest on its
/// node (see [`crate::executor::job_script`]).
fn check_slurm(manifest: &Manifest, plans: &[&str], orch_bin: &Path) -> CliResult<()> {
    let d = &manifest.defaults;
    for (key, dir) in [
        ("worktree_root", &d.worktree_root),
        ("state_dir", &d.state_dir),
        ("log_dir", &d.log_dir),
    ] {
        let path = manifest.root.join(dir);
        if let Some(fs) = crate::executor::node_local_fs(&path) {
            return Err(CliError::invalid(anyhow!(
                "{}: `defaults.{key}` (`{}`) is on {fs}, which only this machine sees, but plan `{}` runs its agents through Slurm",
                manifest.path.display(),
                path.display(),
                plans[0]
            ))
            .with_hint(
                "put the repository on a filesystem the compute nodes mount at the same path (NFS, Lustre, …), or set executor = \"local\"",
            ));
        }
    }
    if let Some(fs) = crate::executor::node_local_fs(orch_bin) {
        return Err(CliError::invalid(anyhow!(
            "the orch executable `{}` is on {fs}, which the compute nodes cannot see, but plan `{}` runs its agents through Slurm (they call orch back)",
            orch_bin.display(),
            plans[0]
        ))
        .with_hint("install orch on a shared filesystem, or set executor = \"local\""));
    }
    Slurm::check().map_err(|e| {
        CliError::new(exit::FAILURE, anyhow!("{e}")).with_hint(format!(
            "plan `{}` runs its agents through Slurm: start Slurm (or point orch at its controller with SLURM_CONF), or set executor = \"local\"",
            plans[0]
        ))
    })
}

/// The agent's program exists, a CLI orch knows runs and accepts the flags passed
/// ([`crate::preflight`], once per agent), and its prompt renders: found now rather than after
/// worktrees were made.
fn check_agent(
    manifest: &Manifest,
    entry: &crate::manifest::PlanEntry,
    orch_bin: &Path,
    templates: &Templates,
    lp: &workspace::LoadedPlan,
    checked: &mut std::collections::BTreeSet<String>,
) -> CliResult<()> {
    let agent = manifest.agent_of(entry).ok_or_else(|| {
        CliError::invalid(anyhow!(
            "plan `{}` names unknown agent `{}`",
            entry.name,
            entry.agent
        ))
    })?;
    let orch = orch_bin.display().to_string();
    let program = agent
        .command
        .first()
        .map(|a| {
            render_template(a, |v| {
                if v == "orch" {
                    orch.clone()
                } else {
                    String::new()
                }
            })
        })
        .transpose()
        .map_err(|e| CliError::invalid(anyhow!("agent `{}`: {e}", entry.agent)))?
        .unwrap_or_default();
    let Some(resolved) = resolve_program(&program, &manifest.root) else {
        return Err(CliError::invalid(anyhow!(
            "agent `{}` of plan `{}`: program `{program}` was not found{}",
            entry.agent,
            entry.name,
            if program.contains('/') {
                format!(
                    " (relative to the worktree, like `{}`)",
                    manifest.root.join(&program).display()
                )
            } else {
                " on PATH".to_string()
            }
        ))
        .with_hint(format!(
            "install it, or set `command` in `[agents.{}]` of {}",
            entry.agent,
            manifest.path.display()
        )));
    };
    if checked.insert(entry.agent.clone()) {
        crate::preflight::check(&entry.agent, &resolved, &agent.command, &manifest.root)
            .map_err(|e| CliError::invalid(anyhow!("{}", e.message)).with_hint(e.hint))?;
    }
    // A prompt with every variable filled: a template error shows now, not at the first task.
    if agent.mode == AgentMode::Task
        && let Some(t) = lp.plan.tasks.first()
    {
        let sample = TaskPrompt {
            plan: lp.name.clone(),
            plan_title: lp.plan.title.clone(),
            plan_file: lp.rel_path.clone(),
            phase_number: t.phase,
            phase_title: String::new(),
            task_id: t.id.clone(),
            kind: "task".into(),
            description: t.description.clone(),
            body: t.body.clone(),
            dependencies: Vec::new(),
            worktree: String::new(),
            branch: entry.branch.clone(),
            orch,
            status_file: lp.status_path.display().to_string(),
            attempt: 1,
            previous_error: None,
            check: String::new(),
            report_by_exit: false,
        };
        templates
            .render_task(&sample)
            .map_err(|e| CliError::invalid(anyhow!("{e}")))?;
    }
    Ok(())
}

/// Whether a task completed in orch's worktree still waits for its commit (a supervisor killed
/// between the agent's report and the commit): the plan needs its worktree again to make it.
fn commit_owed(doc: &status::StatusDoc) -> bool {
    let Some(created) = doc
        .extra
        .get("orchWorktree")
        .and_then(|v| v.get("createdAt"))
        .and_then(|v| v.as_str())
        .and_then(status::parse_timestamp)
    else {
        return false;
    };
    doc.entries().any(|e| {
        e.status == status::TaskStatus::Completed
            && e.commit.is_none()
            && e.completed_at
                .as_deref()
                .and_then(status::parse_timestamp)
                .is_some_and(|t| t >= created)
    })
}

/// Records the plan's worktree in its status file (`orchWorktree`); returns when orch made it.
fn record_tree(
    lp: &workspace::LoadedPlan,
    tree: &git::PlanTree,
) -> CliResult<chrono::DateTime<Utc>> {
    let now = Utc::now();
    let mut created_at = now;
    status::update(
        &lp.status_path,
        &lp.plan,
        &lp.rel_path,
        &lp.name,
        |doc, _| {
            let earlier = doc
                .extra
                .get("orchWorktree")
                .filter(|v| v.get("branch").and_then(|b| b.as_str()) == Some(tree.branch.as_str()))
                .and_then(|v| v.get("createdAt"))
                .and_then(|v| v.as_str())
                .and_then(status::parse_timestamp);
            if let (false, Some(t)) = (tree.created, earlier) {
                created_at = t;
            }
            doc.extra.insert(
                "orchWorktree".to_string(),
                json!({
                    "branch": tree.branch,
                    "path": tree.path,
                    "base": tree.base,
                    "createdAt": status::timestamp(created_at),
                }),
            );
            Ok(())
        },
    )
    .map_err(workspace::status_error)?;
    Ok(created_at)
}

fn git_error(e: git::GitError) -> CliError {
    CliError::coded(e)
}

/// The digest of plan file `path` (`orchPlanDigest`), when its bytes still parse to `plan`
/// (the file may have changed since it was read).
fn plan_digest(path: &Path, plan: &crate::plan::Plan) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let mut parsed = crate::plan::parse(path, text);
    // The workspace names the file (and its diagnostics) as the user wrote it.
    parsed.path.clone_from(&plan.path);
    for d in &mut parsed.diagnostics {
        d.path.clone_from(&plan.path);
    }
    (parsed == *plan).then(|| crate::status::plan_digest(&bytes))
}

/// The first pause of an agent at a usage limit whose client named no reset time (60 s; the
/// environment variable `ORCH_LIMIT_BACKOFF_MS` sets another, for tests).
fn limit_backoff() -> std::time::Duration {
    std::env::var(crate::agent_env::ORCH_LIMIT_BACKOFF_MS)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(
            std::time::Duration::from_secs(60),
            std::time::Duration::from_millis,
        )
}
