//! Launching an attempt: its worktree (a task worktree with `parallel_tasks`), its prompt, argv
//! and environment, the process (or the batch job), and the record of its start. What differs by
//! where it runs is the plan's executor's ([`crate::executor::Executor`]): the process started
//! here (the agent, or its driver on a host), its confinement, or the job handed to a scheduler.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;

use super::attempt::Proc;
use super::client_state;
use super::context::PlanCtx;
use super::core::{Input, kind_str};
use super::msg::{Msg, TreeReady};
use super::runner::Effects;
use super::sandbox;
use super::state::{RunId, Unit};

mod argv;
mod batch;
use crate::agent_env;
use crate::agent_output::Fatal;
use crate::manifest::{InputMode, render_template};
use crate::process;
use crate::prompt::{DepInfo, PlanPrompt, TaskPrompt};
use crate::status::{self, RunInfo, StatusDoc};
use argv::{network_reaching, prepare_argv};

/// Environment variables given to an agent.
type Env = Vec<(String, String)>;

/// Why a launch failed, and whether launching this agent again cannot help.
struct LaunchError {
    error: String,
    fatal: Option<Fatal>,
}

impl From<String> for LaunchError {
    fn from(error: String) -> Self {
        LaunchError { error, fatal: None }
    }
}

impl Effects<'_> {
    /// Launches attempt `attempt` of `unit`; the core hears [`Input::Launched`] or
    /// [`Input::LaunchFailed`] (now, or when its task worktree is made or a batch job's
    /// submission ends). A task worktree of the pool is made off the loop (a new slot's checkout
    /// takes seconds in a large repository): the loop goes on meanwhile, and the launch with
    /// [`Effects::tree_ready`]; the core keeps the attempt launching until then.
    pub(crate) fn launch(&mut self, run: RunId, unit: Unit, attempt: u32) {
        if let Some(pc) = self.plan(unit.plan())
            && let Some(t) = unit.task().filter(|_| pc.task_trees())
        {
            // A stop asked for while the worktree is made is seen when the attempt starts.
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(None);
            self.stops.insert(run, stop_tx);
            self.early_stops.insert(run, stop_rx);
            // Best of N: an attempt of a round has a worktree of its own.
            let key = self
                .members
                .get(&run)
                .cloned()
                .unwrap_or_else(|| pc.plan.tasks[t].id.clone());
            let tx = self.tree_tx.clone();
            let ctx = self.ctx.clone();
            let mut stop = self.stop_all.subscribe();
            tokio::spawn(async move {
                let (p, k) = (pc.clone(), key.clone());
                let made = tokio::task::spawn_blocking(move || make_task_tree(&p, &k, attempt))
                    .await
                    .unwrap_or_else(|e| Err(format!("cannot make the task worktree: {e}")));
                // A new worktree of the pool: the plan's setup runs there first, under a keeper
                // of its own (what it starts in the background lasts the run); a failing setup
                // fails the attempt with its output as the cause. A reused one keeps what setup
                // made (ignored files stay).
                let tree = match (made, &pc.entry.setup) {
                    (Ok(tree), Some(setup)) if tree.created => {
                        let at = (key.as_str(), t, attempt);
                        super::setup::in_task_tree(&ctx, &pc, at, &tree.path, setup, &mut stop)
                            .await
                            .map(|()| tree)
                    }
                    (made, _) => made,
                };
                let _ = tx.send(TreeReady {
                    run,
                    unit,
                    attempt,
                    tree,
                });
            });
            return;
        }
        self.launch_in(run, unit, attempt, None);
    }

    /// Goes on with a launch whose task worktree was made off the loop.
    pub(crate) fn tree_ready(&mut self, ready: TreeReady) {
        let TreeReady {
            run,
            unit,
            attempt,
            tree,
        } = ready;
        self.launch_in(run, unit, attempt, Some(tree));
    }

    /// The launch of attempt `attempt` of `unit` in its worktree: `tree` the task worktree made
    /// for it, `None` for the plan's.
    fn launch_in(
        &mut self,
        run: RunId,
        unit: Unit,
        attempt: u32,
        tree: Option<Result<crate::git::PlanTree, String>>,
    ) {
        let Some(pc) = self.plan(unit.plan()) else {
            self.early_stops.remove(&run);
            self.stops.remove(&run);
            self.queue.push_back(Msg {
                reload: None,
                input: Input::LaunchFailed {
                    run,
                    error: "the plan is not part of this run".into(),
                    fatal: None,
                },
            });
            return;
        };
        let task = unit.task();
        let id = task.map(|t| pc.plan.tasks[t].id.clone());
        // Best of N: an attempt of a round has a log (and worktree) of its own.
        let log = pc.log_path(self.members.get(&run).map(String::as_str).or(id.as_deref()));
        match self.start(&pc, run, unit, attempt, &log, tree) {
            Ok(()) => {}
            Err(LaunchError { error, fatal }) => {
                self.early_stops.remove(&run);
                self.stops.remove(&run);
                let (_, command) = self.agent_of_run(run, &pc);
                let unit_name = id.as_deref().unwrap_or("plan");
                if let Some((_, dir)) =
                    client_state::of_attempt_with(&pc, &command, unit_name, attempt)
                {
                    client_state::remove(&dir);
                }
                self.fail_launch(&pc, run, task, error, fatal, &log);
            }
        }
    }

    fn start(
        &mut self,
        pc: &Arc<PlanCtx>,
        run: RunId,
        unit: Unit,
        attempt: u32,
        log: &Path,
        tree: Option<Result<crate::git::PlanTree, String>>,
    ) -> Result<(), LaunchError> {
        let task = unit.task();
        let id = task.map(|t| pc.plan.tasks[t].id.clone());
        // Best of N: what is per worktree is named by the attempt's key.
        let key = self.members.get(&run).cloned();
        let file_id = key.clone().or_else(|| id.clone()).unwrap_or_default();
        let (agent_name, command) = self.agent_of_run(run, pc);
        let (workdir, branch, new_tree) = match tree {
            Some(tree) => {
                let tree = tree?;
                for message in tree.notes {
                    self.note(Some(pc.name().to_owned()), message);
                }
                (tree.path, tree.branch, tree.created)
            }
            None => (pc.worktree.clone(), pc.branch().to_owned(), false),
        };
        let empty;
        self.register_reporter(unit, attempt);
        // The attempt's own report directory: `orch task …` hands its reports there.
        let report_dir = self.make_report_dir(unit, attempt)?;
        if let Some(t) = task {
            self.texts.insert(run, pc.plan.tasks[t].description.clone());
        }
        // Where a task's attempt in the plan's worktree starts (a sparse plan's agent too): its
        // own commits since are checked before its task's commit, and taken off the plan branch
        // when it fails. Not a plan agent's otherwise: orch commits its tasks as it reports them.
        if !new_tree
            && workdir == pc.worktree
            && (task.is_some() || !pc.entry.paths.is_empty())
            && let Ok(Some(tip)) = crate::git::branch_tip(&pc.repo_root, pc.branch())
        {
            self.bases.insert(run, tip);
        }
        self.apply_records(pc.index);
        let doc = match self.views[pc.index].doc.as_deref() {
            Some(d) => d,
            None => {
                empty = StatusDoc::new(&pc.plan, &pc.rel_path, pc.name(), Utc::now());
                &empty
            }
        };
        // After an answer: the session of the attempt that asked, resumed where it can be.
        let resume =
            super::resume::Launch::decide(pc, key.is_some(), id.as_deref(), &command, attempt, doc);
        // How a person's messages reach the agent while it runs. Streaming input is for an
        // agent run here: its prompt (a resumed session's too) is its first message.
        let input = match self.input_of(run, pc) {
            InputMode::StreamJson if !pc.executor.attempts_here() => InputMode::None,
            mode => mode,
        };
        let command = match crate::manifest::streaming_variant(&command) {
            Some(v) if input == InputMode::StreamJson => {
                v.iter().map(|a| (*a).to_string()).collect()
            }
            _ => command,
        };
        let templates = self.templates.as_deref().unwrap_or(&self.ctx.templates);
        let (mut argv, mut env, reach) = prepare_argv(
            &self.ctx,
            templates,
            pc,
            doc,
            (task, attempt),
            (&workdir, &branch),
            (&report_dir, log, &file_id, &command),
        )?;
        if let (Some(r), Some(id)) = (&resume, &id)
            && let Some(resumed) = r.argv(
                doc.entry(id),
                id,
                &self.ctx.orch_bin,
                &prompt_file_of(pc, &file_id),
                input == InputMode::StreamJson,
            )?
        {
            argv = resumed;
        }
        env.push((
            agent_env::ORCH_REPORT_DIR.to_string(),
            report_dir.display().to_string(),
        ));
        // (A preset's confined argv names it where the preset does.)
        let names_usage = command.iter().any(|a| {
            crate::manifest::parse_template(a).is_ok_and(|parts| {
                parts.contains(&crate::manifest::TemplatePart::Var("usage_file"))
            })
        });
        let usage_dir = fresh_usage_dir(log, names_usage)?;
        let stdin = (pc.agent.stdin == crate::manifest::StdinMode::Prompt
            || input == InputMode::StreamJson)
            .then(|| prompt_file_of(pc, &file_id));
        if stdin.is_some() && !pc.executor.attempts_here() {
            return Err(format!(
                "agent `{}` reads its prompt on stdin (`stdin = \"prompt\"`), which orch gives only to local agents, not to {} jobs",
                agent_name,
                pc.executor.name()
            )
            .into());
        }
        let shown = header_argv(&argv);
        // The process started here: the agent, or its executor's driver of it elsewhere (on a
        // `[[host]]`: `orch remote-attempt`).
        let state_dir = super::reports::state_dir_of(pc);
        let prompt_file = prompt_file_of(pc, &file_id);
        let at = crate::executor::Attempt {
            plan: pc.name(),
            unit: id.as_deref().unwrap_or("plan"),
            attempt,
            repo_root: &pc.repo_root,
            state_dir: &state_dir,
            status_file: &pc.status_path,
            workdir: &workdir,
            branch: &branch,
            report_dir: &report_dir,
            prompt_file: &prompt_file,
            orch_bin: &self.ctx.orch_bin,
            sandbox: pc.agent.sandbox.mode,
            run_hosts: &self.ctx.hosts,
            pass_env: &pc.agent.sandbox.pass_env,
        };
        argv = pc.executor.wrap(&at, argv, &env)?;
        // Resolved once here rather than by execvp trying every PATH entry.
        if let Some(first) = argv.first_mut()
            && !first.contains('/')
            && let Some(found) = process::resolve_program(first, &workdir)
        {
            *first = found.display().to_string();
        }
        let program = argv.first().cloned().unwrap_or_default();
        // Confined: through `orch sandbox-exec`, with a private TMPDIR, where the executor
        // confines it (here, or by the same wrapper on a Slurm job's node).
        let confined = match pc.sandbox.rules() {
            Some(base) if pc.executor.confiner() != crate::executor::Confiner::There => {
                let tmp = sandbox::tmp_dir(pc.name(), id.as_deref().unwrap_or("plan"), attempt);
                // Made fresh: whatever is at its predictable name (a link planted there) is
                // removed, never followed, nor given to Landlock as writable.
                crate::links::fresh_dir(&tmp)
                    .map_err(|e| format!("cannot make the TMPDIR `{}`: {e}", tmp.display()))?;
                env.push(("TMPDIR".to_string(), tmp.display().to_string()));
                let mut rules = sandbox::attempt_rules(base, &workdir, &tmp);
                // The client's state: a private copy, seeded from the user's.
                if let Some((cli, dir)) = client_state::of_attempt_with(
                    pc,
                    &command,
                    id.as_deref().unwrap_or("plan"),
                    attempt,
                ) {
                    let prepared = client_state::prepare(cli, &dir, &|k| std::env::var_os(k))
                        .map_err(|e| {
                            client_state::remove(&dir);
                            format!(
                                "cannot make the private state of {} for the attempt (`{}`): {e}",
                                cli.name(),
                                dir.display()
                            )
                        })?;
                    if let Some(p) = prepared {
                        if let (Some(r), Some((_, state))) = (&resume, p.vars.first()) {
                            r.install(state, &workdir)?;
                        }
                        for (var, dir) in &p.vars {
                            env.push(((*var).to_string(), dir.display().to_string()));
                        }
                        rules.write.push(p.dir);
                    }
                }
                rules.write.push(report_dir.clone());
                rules.write.extend(usage_dir.iter().cloned());
                argv = pc.executor.confine(
                    &self.ctx.orch_bin,
                    &mut rules,
                    &tmp,
                    pc.agent.sandbox.mode,
                    argv,
                );
                Some(rules)
            }
            _ => None,
        };
        // Into the place it runs in, when that is not here (a container).
        let tmp = sandbox::tmp_dir(pc.name(), id.as_deref().unwrap_or("plan"), attempt);
        argv = pc.executor.enter(&at, argv, &env, &tmp)?;
        let launched = Utc::now();
        process::log_line(
            log,
            &format!(
                "=== orch: attempt {attempt} started at {}: {shown} ===",
                status::timestamp(launched),
            ),
        );
        if let Some(rules) = &confined {
            process::log_line(log, &crate::agent_output::confined_line(&rules.write));
        }
        if let Some(r) = resume {
            if let Some(line) = r.log_line() {
                process::log_line(log, &line);
            }
            r.done();
        }
        if !workdir.is_dir() {
            return Err(format!(
                "cannot start agent `{}`: the worktree `{}` of plan `{}` is gone (deleted while orch ran?)",
                agent_name,
                workdir.display(),
                pc.name()
            )
            .into());
        }
        // Handed to a scheduler as a job, when the executor runs its attempts so.
        let job = pc.executor.job(&crate::executor::JobAttempt {
            argv: &argv,
            env: &env,
            workdir: &workdir,
            pass_env: &pc.agent.sandbox.pass_env,
            log,
            plan: pc.name(),
            task: id.as_deref(),
            status_file: &pc.status_path,
            attempt,
            budget: match task {
                Some(_) => pc.entry.timeout,
                None => pc.entry.timeout.saturating_mul(
                    u32::try_from(
                        doc.entries()
                            .filter(|e| !e.status.is_finished())
                            .count()
                            .max(1),
                    )
                    .unwrap_or(u32::MAX),
                ),
            },
            grace: self.ctx.grace,
        });
        if let Some(job) = job {
            let Some(tracker) = self.ctx.jobs.clone() else {
                return Err(format!(
                    "plan `{}` runs through {}, but no scheduler was set up",
                    pc.name(),
                    pc.executor.name()
                )
                .into());
            };
            self.submit(pc, run, (unit, attempt), job, log, tracker);
            return Ok(());
        }
        // Every local agent starts in a session of its own (`orch session-exec`): no
        // controlling terminal, and what it leaves behind ends with the attempt.
        // (Its program is checked here, as a spawn of it would have found it missing.)
        if let Err(e) = process::runnable(&program, &workdir) {
            return Err(LaunchError {
                error: format!("cannot start agent `{}` (`{program}`): {e}", agent_name),
                fatal: Some(Fatal::MissingProgram),
            });
        }
        // Gated: the agent starts once its launch is recorded below.
        let wrap = (self.ctx.log_max, self.ctx.grace);
        let unit_name = id.as_deref().unwrap_or("plan");
        // Where the wrapper records how the agent ended (read if orch is not there to see it).
        let ended = super::reports::ended_path(pc, unit_name, attempt);
        let ended = ended
            .parent()
            .is_some_and(|d| std::fs::create_dir_all(d).is_ok())
            .then_some(ended);
        let argv = sandbox::in_session_gated(
            &self.ctx.orch_bin,
            wrap,
            (stdin.as_deref(), ended.as_deref()),
            argv,
        );
        let argv = match input {
            InputMode::None => argv,
            InputMode::Lines => sandbox::with_input(argv),
            InputMode::StreamJson => {
                let turn = super::reports::turn_path(pc, unit_name, attempt);
                self.turns.insert(run, turn.clone());
                sandbox::with_stream_json(argv, &turn)
            }
        };
        // Its network: the wrapper enters the namespace (its own, or its place's), orch's
        // proxy serves it; unless the place gives it its own network, when the process here
        // keeps this machine's.
        let net = super::network::attempt(
            self.ctx.net.as_ref(),
            &network_reaching(
                super::network::of_agent(&pc.network, &pc.agent_networks, &agent_name),
                &reach,
            ),
            pc.executor.network_place()?,
            (pc.name(), unit_name),
            log,
            &mut env,
        )?;
        let pass = &pc.agent.sandbox.pass_env;
        let mut spawned =
            process::spawn_gated(&argv, &workdir, &env, log, pass).map_err(|e| LaunchError {
                error: format!(
                    "cannot start agent `{}` (`{}`): {e}",
                    agent_name,
                    argv.first().map_or("", String::as_str)
                ),
                // Not installed, or not executable: no later attempt can start it either.
                fatal: matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                )
                .then_some(Fatal::MissingProgram),
            })?;
        let pid = spawned.pid;
        if let Some(net) = net {
            net.started(pid);
        }
        tracing::debug!(plan = %pc.name(), task = ?id, attempt, pid, argv0 = ?argv.first(), "agent spawned");
        let start_time = crate::process::process_start_time(pid);
        let info = RunInfo {
            pid,
            process_start_time: start_time,
            host: process::hostname(),
            ..RunInfo::default()
        };
        // Record the start (the agent may have reported before this write: it can be that fast).
        let recorded = match &id {
            Some(id) => pc.update_entry(id, |doc| {
                status::record_launch(doc, id, &info, launched, Utc::now())?;
                status::record_agent(doc, id, &agent_name);
                Ok(())
            }),
            None => pc.update(|doc| {
                doc.orch_plan_agent = Some(status::OrchPlanAgent {
                    pid,
                    process_start_time: Some(start_time),
                    started_at: status::timestamp(Utc::now()),
                    ..status::OrchPlanAgent::default()
                });
                Ok(())
            }),
        };
        if let Err(e) = recorded {
            self.note(
                Some(pc.name().to_owned()),
                format!("cannot record the start in the status file: {e}"),
            );
        }
        self.release(run, &mut spawned, input);
        self.watch(run, unit, attempt, pid, Proc::Child(spawned.child));
        self.queue.push_back(Msg {
            reload: None,
            input: Input::Launched {
                run,
                pid,
                job_id: None,
            },
        });
        Ok(())
    }

    /// A launch that failed before any process ran: logged, recorded, and a failed attempt.
    fn fail_launch(
        &mut self,
        pc: &PlanCtx,
        run: RunId,
        task: Option<usize>,
        error: String,
        fatal: Option<Fatal>,
        log: &Path,
    ) {
        self.texts.remove(&run);
        self.bases.remove(&run);
        process::log_line(log, &format!("=== orch: {error} ==="));
        // A fatal failure is the agent's, not the task's: the task stays as it was; an attempt
        // of a best-of-N round is one of several (the round records the task's outcome).
        let member = self.members.remove(&run).is_some();
        if let Some(t) = task.filter(|_| fatal.is_none() && !member)
            && let Err(e) = super::settle::record_failure(pc, &pc.plan.tasks[t].id, &error)
        {
            self.note(
                Some(pc.name().to_owned()),
                format!("cannot record the failed launch in the status file: {e}"),
            );
        }
        self.stops.remove(&run);
        self.queue.push_back(Msg {
            reload: None,
            input: Input::LaunchFailed { run, error, fatal },
        });
    }
}

/// Whether plan `pc`'s agent runs under orch's confinement, so that a preset runs its confined
/// argv (orch's rules replace the client's own sandbox, which cannot start inside Landlock), as
/// its executor tells: locally when its sandbox applies; on `[[host]]` machines when they all
/// confine ([`crate::executor::Executor::runs_confined`]).
pub(super) fn runs_confined(ctx: &super::context::Ctx, pc: &PlanCtx) -> bool {
    pc.executor.runs_confined(
        pc.sandbox.rules().is_some(),
        pc.agent.sandbox.mode,
        &ctx.hosts,
    )
}

/// The template variables of an agent's command that every agent orch launches has alike (a
/// task's or plan's, a resolver): `{orch}`, `{orch_dir}`, `{usage_file}`; empty for another.
pub(super) fn common_var(var: &str, orch_bin: &Path, usage_file: &Path) -> String {
    let shown = |p: &Path| p.display().to_string();
    match var {
        "orch" => shown(orch_bin),
        "orch_dir" => orch_bin.parent().map(shown).unwrap_or_default(),
        "usage_file" => shown(usage_file),
        _ => String::new(),
    }
}

/// Where the prompt of task `id` (empty: the plan agent's) of plan `pc` is written.
fn prompt_file_of(pc: &PlanCtx, id: &str) -> PathBuf {
    pc.log_dir.join(format!(
        "{}.prompt.md",
        if id.is_empty() { "plan" } else { id }
    ))
}

/// Makes the directory of the usage file of the attempt logged in `log` afresh, empty, when
/// `argv` names the file (the client writes its token counts there, read when the attempt
/// ends), and removes an earlier one otherwise; never through a link. Returns the directory
/// (what a confined attempt may write) when `argv` names the file.
fn fresh_usage_dir(log: &Path, argv_names_it: bool) -> Result<Option<PathBuf>, String> {
    let file = crate::agent_output::usage_file(log);
    let Some(dir) = file.parent() else {
        return Ok(None);
    };
    let made = if argv_names_it {
        crate::links::fresh_dir(dir)
    } else {
        crate::untrusted::remove::remove_path(dir)
    };
    made.map_err(|e| format!("cannot make `{}` afresh: {e}", dir.display()))?;
    Ok(argv_names_it.then(|| dir.to_path_buf()))
}

/// Gives task `id` a worktree of the plan's pool for attempt `n`, its task branch at the plan
/// branch's tip: a slot (and branch) still held by an earlier attempt of the task is saved
/// (`refs/orch/attempts/<plan>/<id>/<n>-stale`) and freed first; what the slot taken holds is
/// saved under `<n>-stale-slot` before it is reset. Returns the worktree (its path, the task
/// branch, whether it was made now, the notes about its submodules).
fn make_task_tree(pc: &PlanCtx, id: &str, n: u32) -> Result<crate::git::PlanTree, String> {
    let refname = crate::git::stale_attempt_ref(pc.name(), id, n);
    let message = format!(
        "{} {id}: left in its task worktree (saved by orch)",
        pc.name()
    );
    let why = |e: crate::git::GitError| {
        format!(
            "cannot make the worktree of task `{id}` of plan `{}` (branch `{}`, from `{}`): {e}",
            pc.name(),
            crate::git::task_branch(pc.name(), id),
            pc.branch()
        )
    };
    // No agent of the task is alive (it is being launched) and only this supervisor writes
    // task branches: a lock of the task's branch or worktree index now is a stale one, left by a
    // supervisor killed while it wrote there (found by the crash harness).
    let _ = crate::git::remove_plan_locks(
        &pc.repo_root,
        &crate::git::task_tree_name(pc.name(), id),
        &crate::git::task_branch(pc.name(), id),
    );
    crate::git::retire_task_tree(&pc.task_tree(id), Some((&refname, &message))).map_err(why)?;
    let slot_ref = format!("{refname}-slot");
    let slot_message = format!(
        "{} {id}: left in a task worktree before the task took it (saved by orch)",
        pc.name()
    );
    crate::git::take_pool_tree(&pc.task_tree(id), (&slot_ref, &slot_message)).map_err(why)
}

/// The argv as one line for the log's attempt header: a long argument (the prompt) is cut, line
/// breaks are written `\n`. One line, so that what the agent prints is told apart from it.
fn header_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let one = a.replace('\r', "\\r").replace('\n', "\\n");
            if one.chars().count() > 160 {
                let head: String = one.chars().take(120).collect();
                format!("{head}… ({} chars)", a.chars().count())
            } else {
                one
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_attempt_header_is_one_line() {
        let prompt = format!("line one\nline two\n{}", "x".repeat(300));
        let argv = vec!["claude".to_string(), "-p".to_string(), prompt];
        let h = super::header_argv(&argv);
        assert!(!h.contains('\n'), "{h}");
        assert!(h.starts_with("claude -p line one\\nline two\\nxxx"), "{h}");
        assert!(h.ends_with("… (318 chars)"), "{h}");
    }
}
