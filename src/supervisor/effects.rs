//! The effect runner of `orch up`: the one loop that feeds the [core](super::core) with inputs
//! (agents' ends, status-file changes, timers, signals, finished effects) and carries out the
//! actions it returns. Every effect reports back as an input; every failed effect is turned into
//! a task or plan failure with its cause (launch, settle, commit, prepare, merge) or reported as a
//! note (a status record that could not be written), never dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use super::context::{Ctx, PlanCtx};
use super::core::{Action, Adopted, Core, CoreConfig, Input};
use super::event::{Event, RunSummary};
use super::state::{PlanSpec, Stop};
use crate::status;
use crate::workspace::Workspace;

mod failover;
mod monitor;
mod plan_steps;
mod replan;
mod reread;
mod tell;

pub(crate) use super::msg::{Msg, TreeReady};
use super::runner::{Effects, View, recv_signal};

/// Runs the plans of `ctx` to the end (finished, failed, blocked, or stopped by the user).
pub(crate) async fn run(ctx: Arc<Ctx>, ws: Workspace, emit: &mut dyn FnMut(&Event)) -> RunSummary {
    // Shared with the readers of the status files; replaced by an applied edit.
    let ws = Arc::new(ws);
    let started = Instant::now();
    let names: Vec<String> = ctx
        .plans
        .iter()
        .flatten()
        .map(|p| p.name().to_owned())
        .collect();
    emit(&Event::RunStarted {
        plans: names,
        max_agents: ctx.max_agents,
        sandbox: ctx.sandbox.to_string(),
        sandbox_abi: ctx.sandbox_abi,
        network: ctx.network.to_string(),
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (tree_tx, mut tree_rx) = mpsc::unbounded_channel();
    let (stop_all, _) = watch::channel(Stop::No);
    let mut fx = Effects {
        ctx: ctx.clone(),
        ws: ws.clone(),
        plans: ctx.plans.clone(),
        replanning: Default::default(),
        replan_tx: None,
        templates: None,
        texts: HashMap::new(),
        bases: HashMap::new(),
        emit,
        tx,
        tree_tx,
        stop_all,
        stops: HashMap::new(),
        early_stops: HashMap::new(),
        views: ws.plans.iter().map(|_| View::default()).collect(),
        queue: VecDeque::new(),
        reporters: HashMap::new(),
        members: HashMap::new(),
        member_agents: HashMap::new(),
        inputs: HashMap::new(),
        turns: HashMap::new(),
        pool_drops: Vec::new(),
        after_finished: Vec::new(),
        holding: false,
    };
    let (watch_tx, mut watch_rx) = mpsc::unbounded_channel();
    let state_dir = ctx.repo_root.join(ws.manifest.as_ref().map_or_else(
        || std::path::PathBuf::from(".orch/state"),
        |m| m.defaults.state_dir.clone(),
    ));
    // Where file events are not delivered (NFS and other network filesystems, where agents on
    // other machines write), the one-second re-read below is what sees status changes;
    // `ORCH_WATCH=poll` relies on it alone.
    let poll_only = std::env::var(crate::agent_env::ORCH_WATCH).is_ok_and(|v| v == "poll");
    let made = if poll_only {
        Err(notify::Error::generic("ORCH_WATCH=poll is set"))
    } else {
        // The state directories of the other repositories whose plans run.
        let mut dirs: Vec<&std::path::Path> = vec![&state_dir];
        let others: Vec<std::path::PathBuf> = ctx
            .plans
            .iter()
            .flatten()
            .filter(|pc| pc.entry.repo.is_some())
            .filter_map(|pc| Some(pc.status_path.parent()?.parent()?.to_path_buf()))
            .collect();
        for d in &others {
            if !dirs.contains(&d.as_path()) {
                dirs.push(d);
            }
        }
        super::watch::watch_state_dir(&dirs, watch_tx)
    };
    // Kept alive for the whole run.
    let watcher = match made {
        Ok(w) => Some(w),
        Err(_) if poll_only => None,
        Err(e) => {
            fx.note(
                None,
                format!(
                    "cannot watch `{}` ({e}); status changes are polled every second",
                    state_dir.display()
                ),
            );
            None
        }
    };
    let mut sigint = signal(SignalKind::interrupt()).ok();
    let mut sigterm = signal(SignalKind::terminate()).ok();
    if let Some(jobs) = &ctx.jobs {
        jobs.start();
    }

    let found = super::recover::recover(&mut fx).await;

    let Some(graph) = ws.graph.as_ref() else {
        return RunSummary {
            plans: Vec::new(),
            elapsed_ms: super::core::millis(started.elapsed()),
            interrupted: false,
            usage: Default::default(),
            budget_reached: None,
            agents_stopped: Vec::new(),
            notify_failures: 0,
            resolved_by_agent: 0,
            left_for_a_person: 0,
        };
    };
    let plan_list = ws.plan_list();
    for p in 0..ws.plans.len() {
        fx.views[p].stamp = None;
        let _ = fx.reload(p);
    }
    let facts = fx.views.iter().map(|v| v.facts.clone()).collect();
    let specs = ws
        .plans
        .iter()
        .enumerate()
        .map(|(p, _)| fx.plan(p).map(|pc| spec_of(&pc, &ws)))
        .collect();
    let cfg = CoreConfig {
        max_agents: ctx.max_agents,
        backoff: ctx.backoff,
        stuck_after: ctx.stuck_after,
        auto_merge: ctx.auto_merge,
        target: ws
            .manifest
            .as_ref()
            .map(|m| m.defaults.target.clone())
            .unwrap_or_default(),
        budget: ctx.budget,
        limit_backoff: ctx.limit_backoff,
        integrate: ctx.integration.as_ref().map(|i| i.interval),
        ask_grace: ctx.grace,
    };
    let names = ws.plans.iter().map(|lp| lp.name.clone()).collect();
    let mut core = Core::new(
        cfg,
        graph,
        &plan_list,
        &ws.priorities(),
        names,
        specs,
        facts,
    );
    for (agent, why) in &ctx.unusable_fallbacks {
        core.fallback_unusable(agent, why);
    }
    // The agents whose client orch can ask itself, to check a claim of an attempt.
    if let Some(m) = ws.manifest.as_ref() {
        for (name, spec) in &m.agents {
            core.set_probe(name, crate::preflight::probe::probe_able(spec));
        }
    }
    for p in 0..ws.plans.len() {
        core.set_merged_before(p, fx.views[p].merged);
        core.set_held(p, fx.views[p].held);
    }
    let mut adopted = Vec::new();
    for f in found.adopted {
        let run = core.new_run();
        adopted.push(Adopted {
            run,
            unit: f.unit,
            attempt: f.attempt,
            pid: f.pid,
            job_id: f.job_id,
            elapsed: f.elapsed,
        });
        fx.adopt_report_dir(f.unit, f.attempt);
        // An adopted task's attempt in the plan's worktree: its own commits are told apart
        // from the plan branch's tip now (an earlier supervisor kept its start in memory).
        if let (Some(pc), Some(t)) = (fx.plan(f.unit.plan()), f.unit.task())
            && pc.task_worktree(&pc.plan.tasks[t].id).is_none()
            && let Ok(Some(tip)) = crate::git::branch_tip(&pc.repo_root, pc.branch())
        {
            fx.bases.insert(run, tip);
        }
        fx.watch(run, f.unit, f.attempt, f.pid, f.proc);
    }
    sweep_report_dirs(&mut fx, ws.plans.len());
    // Every new plan worktree is made now, as many at once as the machine has cores, in the
    // order of the plans' priorities; a plan's preparation waits for its own only.
    let mut new_trees: Vec<usize> = (0..ws.plans.len())
        .filter(|&p| fx.plan(p).is_some_and(|pc| pc.new_tree.is_some()))
        .collect();
    let priorities = ws.priorities();
    new_trees.sort_by_key(|&p| std::cmp::Reverse(priorities.get(p).copied().unwrap_or(0)));
    let mut tree_tasks = Vec::new();
    for p in new_trees {
        if let Some(pc) = fx.plan(p) {
            let told = fx.tree_told(p);
            tree_tasks.push(tokio::spawn(super::prepare::ensure_tree(
                ctx.clone(),
                pc,
                told,
            )));
        }
    }
    fx.queue.push_back(Msg {
        reload: None,
        input: Input::Recovered {
            adopted,
            retry: found.retry,
        },
    });

    // The manifest, the plan files and the templates: a lead's edit applies during the run.
    let (edit_tx, mut edit_rx) = mpsc::unbounded_channel();
    fx.watch_inputs(&edit_tx);
    let mut replan_at: Option<tokio::time::Instant> = None;

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reload_at: Option<tokio::time::Instant> = None;
    // Status changes the one-second re-read found that no file event announced.
    let mut unannounced = 0u32;
    let mut event_seen = false;
    let mut first = true;
    // How long the loop was busy between two waits, at the longest (`RUST_LOG=orch=debug`
    // prints it at the end: benches/worktrees.rs reads it).
    let mut busy_since: Option<Instant> = None;
    let mut longest_stall = Duration::ZERO;
    let mut hosts = super::hosts::HostWatch::default();
    loop {
        // Everything already there first: the local queue, then the channel.
        loop {
            if let Some(msg) = fx.queue.pop_front() {
                fx.feed(&mut core, msg);
            } else if let Ok(msg) = rx.try_recv() {
                fx.feed(&mut core, msg);
            } else {
                break;
            }
        }
        if std::mem::take(&mut first) {
            // The reports adopted agents made before this supervisor watched (or that one
            // which stopped took and did not answer), once the core knows their attempts.
            fx.take_reports(&mut core);
        }
        // The commits made in this burst are recorded before the loop waits (most went with
        // the next task's start record already).
        fx.flush_records();
        if core.is_over() {
            break;
        }
        let wake = core.next_wake().map(tokio::time::Instant::from_std);
        if let Some(since) = busy_since.take() {
            longest_stall = longest_stall.max(since.elapsed());
        }
        let woke = tokio::select! {
            Some(msg) = rx.recv() => Wake::Msg(msg),
            Some(ready) = tree_rx.recv() => Wake::Tree(ready),
            Some(()) = watch_rx.recv() => Wake::FileEvent,
            Some(()) = edit_rx.recv() => Wake::Edit,
            () = tokio::time::sleep_until(replan_at.unwrap_or_else(far_future)), if replan_at.is_some() => Wake::Replan,
            () = tokio::time::sleep_until(reload_at.unwrap_or_else(far_future)), if reload_at.is_some() => Wake::Reload,
            _ = tick.tick() => Wake::Second,
            () = tokio::time::sleep_until(wake.unwrap_or_else(far_future)), if wake.is_some() => Wake::Timer,
            Some(()) = recv_signal(&mut sigint) => Wake::Interrupt,
            Some(()) = recv_signal(&mut sigterm) => Wake::Terminate,
        };
        busy_since = Some(Instant::now());
        match woke {
            Wake::Msg(msg) => fx.feed(&mut core, msg),
            Wake::Tree(ready) => fx.tree_ready(ready),
            Wake::FileEvent => {
                event_seen = true;
                // A report an agent waits on is taken at once (a listing of the run's live
                // report directories); the status files' re-read is coalesced.
                fx.take_reports(&mut core);
                // Coalesce a burst of events into one re-read.
                if reload_at.is_none() {
                    reload_at = Some(tokio::time::Instant::now() + Duration::from_millis(15));
                }
            }
            Wake::Edit => {
                // An editor's writes (a new file renamed over the old one, several writes, a
                // checkout of several files) settle first: the state after them is read once.
                replan_at = Some(tokio::time::Instant::now() + REPLAN_QUIET);
            }
            Wake::Replan => {
                replan_at = None;
                fx.replan(&mut core);
            }
            Wake::Reload => {
                reload_at = None;
                fx.reload_all(&mut core);
            }
            Wake::Second => {
                // A report no file event announced (a network filesystem) waits a second.
                fx.take_reports(&mut core);
                let changed = fx.reload_all(&mut core);
                if changed && !event_seen && watcher.is_some() && reload_at.is_none() {
                    unannounced += 1;
                    if unannounced == 3 {
                        fx.note(None, format!(
                            "status files under `{}` change without file events (a network filesystem?): orch re-reads them every second",
                            state_dir.display()
                        ));
                    }
                }
                event_seen = false;
                // An edit that waits for running tasks, or inputs not watched: read again.
                if fx.replan_waiting() && replan_at.is_none() {
                    fx.replan(&mut core);
                }
                fx.apply(&mut core, Input::Tick);
                hosts.tick(&mut fx);
            }
            Wake::Timer => fx.apply(&mut core, Input::Tick),
            Wake::Interrupt => fx.apply(&mut core, Input::Interrupt),
            Wake::Terminate => fx.apply(&mut core, Input::Terminate),
        }
    }
    tracing::debug!(
        longest_stall_ms = u64::try_from(longest_stall.as_millis()).unwrap_or(u64::MAX),
        "the loop's longest stall"
    );
    // A host back (or lost) since the last second is said before the run's end.
    hosts.tick(&mut fx);
    // No worktree is left half made (the core waits for them; this is for a loop left early).
    for t in tree_tasks {
        let _ = t.await;
    }
    // Nothing of a finished plan's pool is left behind.
    for d in std::mem::take(&mut fx.pool_drops) {
        let _ = d.await;
    }
    // Spec Kit's boxes ticked for what the run completed, as its `/implement` would.
    fx.flush_records();
    fx.tick_spec_kit_boxes();
    let (summary, blocked) = core.summary(started.elapsed());
    for e in blocked {
        (fx.emit)(&e);
    }
    summary
}

/// What woke the loop.
enum Wake {
    Msg(Msg),
    /// A task worktree made off the loop for a launch ([`Effects::tree_ready`]).
    Tree(TreeReady),
    FileEvent,
    Edit,
    Replan,
    Reload,
    Second,
    Timer,
    Interrupt,
    Terminate,
}

/// How long the watched inputs stay unchanged before an edit is read: an editor's or a
/// checkout's writes come within a few milliseconds of each other.
const REPLAN_QUIET: Duration = Duration::from_millis(100);

/// What the core needs to know of a plan of the run.
fn spec_of(pc: &PlanCtx, ws: &Workspace) -> PlanSpec {
    let entry = &pc.entry;
    PlanSpec {
        entry: pc.entry.clone(),
        executor: pc.executor.clone(),
        mode: pc.agent.mode,
        slots: pc.slots(),
        task_trees: pc.task_trees(),
        needs_prep: !entry.depends_on.is_empty() || entry.setup.is_some() || pc.new_tree.is_some(),
        new_tree: pc.new_tree.is_some(),
        upstreams: entry
            .depends_on
            .iter()
            .filter_map(|d| ws.plans.iter().position(|lp| lp.name == d.plan))
            .collect(),
        worktree: pc.worktree.clone(),
        log_dir: pc.log_dir.clone(),
        report: pc.agent.report,
        // The manifest's, not the entry's: a plan an edit removed has no resolver.
        resolves_verify: ws
            .manifest
            .as_ref()
            .and_then(|m| m.plan(&entry.name))
            .is_some_and(|e| e.resolve.is_some() && e.resolve_verify),
        land_with: ws.manifest.as_ref().map_or_else(Vec::new, |m| {
            let (groups, _) = crate::merge::together::groups(m, std::slice::from_ref(&entry.name));
            groups
                .iter()
                .flat_map(|g| &g.plans)
                .filter(|n| **n != entry.name)
                .filter_map(|n| ws.plans.iter().position(|lp| &lp.name == n))
                .collect()
        }),
        input_lines: pc.agent.input != crate::manifest::InputMode::None,
    }
}

impl Effects<'_> {
    /// Reads plan `p`'s status file again before `msg` when it asks, then feeds it.
    fn feed(&mut self, core: &mut Core, msg: Msg) {
        if let Some(p) = msg.reload
            && let Some(input) = self.reload(p)
        {
            self.apply(core, input);
        }
        // A task boundary: the plan's upstream plans' new commits come in before its next task
        // (a conflict blocks the plan, first, so that nothing more starts there).
        if let (Some(p), Input::Settled { outcome, .. }) = (msg.reload, &msg.input)
            && matches!(outcome, super::state::Outcome::Done { .. })
        {
            self.holding = true;
            let conflict = self.resync(p);
            self.holding = false;
            if let Some(reason) = conflict {
                self.apply(
                    core,
                    Input::Prepared {
                        plan: p,
                        result: Err(super::state::Unprepared::Conflict(reason)),
                    },
                );
            }
        }
        self.apply(core, msg.input);
        for e in std::mem::take(&mut self.after_finished) {
            (self.emit)(&e);
        }
    }

    /// Feeds one input and carries out what the core decides.
    pub(crate) fn apply(&mut self, core: &mut Core, input: Input) {
        let actions = core.handle(Instant::now(), input);
        for a in actions {
            self.execute(a);
        }
    }

    /// An agent's report: its job is about to end, look soon.
    fn poke_jobs(&self, p: usize) {
        if let Some(jobs) = &self.ctx.jobs
            && self.plan(p).is_some_and(|pc| !pc.executor.attempts_here())
        {
            jobs.poke();
        }
    }

    fn execute(&mut self, action: Action) {
        match action {
            Action::Report(mut e) => {
                failover::stamp_until(&mut e);
                (self.emit)(&e);
                if matches!(e, Event::TaskFinished { .. }) {
                    for e in std::mem::take(&mut self.after_finished) {
                        (self.emit)(&e);
                    }
                }
            }
            Action::Launch { run, unit, attempt } => self.launch(run, unit, attempt),
            Action::Stop { run, why } => {
                if let Some(s) = self.stops.get(&run) {
                    let _ = s.send(Some(why));
                }
            }
            Action::StopAll(s) => {
                // A commit's staging under way (a long `git add`) ends with the run.
                if s == Stop::Now {
                    crate::git::stop_long_runs();
                }
                let _ = self.stop_all.send(s);
            }
            Action::Settle {
                run,
                unit,
                attempt,
                how,
                usage,
            } => {
                self.stops.remove(&run);
                self.members.remove(&run);
                self.member_agents.remove(&run);
                self.inputs.remove(&run);
                self.turns.remove(&run);
                let text = self.texts.remove(&run);
                let base = self.bases.remove(&run);
                // The agent is done: its report directory goes (a report left there now is
                // nobody's).
                self.forget_reporter(unit, attempt);
                let Some(pc) = self.plan(unit.plan()) else {
                    return;
                };
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || {
                    // What it left running out of its wrapper's reach goes before its work is
                    // taken.
                    let id = unit.task().and_then(|t| pc.plan.tasks.get(t));
                    let id = id.map_or("plan", |t| t.id.as_str());
                    pc.executor.ended(id, attempt);
                    if let (Some(u), Some(t)) = (usage, unit.task())
                        && let Err(e) = super::settle::record_usage(&pc, t, &u)
                    {
                        process_note(&pc, &format!("cannot record the attempt's usage: {e}"));
                    }
                    let outcome = super::settle::settle(
                        &pc,
                        (unit.task(), text.as_deref()),
                        (attempt, base.as_deref()),
                        &how,
                    );
                    // Its work is on the plan branch or saved: what it left elsewhere goes (a
                    // host's snapshot ref).
                    let at = (pc.name(), pc.branch());
                    if let Some(n) = pc.executor.settled(&pc.repo_root, at, id, attempt) {
                        process_note(&pc, &n);
                    }
                    let _ = tx.send(Msg {
                        reload: Some(pc.index),
                        input: Input::Settled { run, outcome },
                    });
                });
            }
            Action::Commit {
                plan,
                task,
                changes,
            } => {
                let Some(pc) = self.plan(plan) else { return };
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || {
                    let result = super::settle::commit_outside_attempt(&pc, task, changes);
                    let _ = tx.send(Msg {
                        reload: Some(plan),
                        input: Input::Committed { plan, task, result },
                    });
                });
            }
            Action::RecordFailure { plan, task, error } => {
                let Some(pc) = self.plan(plan) else { return };
                let id = pc.plan.tasks[task].id.clone();
                if let Err(e) = super::settle::record_failure(&pc, &id, &error) {
                    self.note(
                        Some(pc.name().to_owned()),
                        format!("cannot record task `{id}` failed in the status file: {e}"),
                    );
                }
            }
            Action::Check { run, unit } => self.check(run, unit),
            Action::LaunchMember { run, unit, attempt } => {
                self.launch_member(run, unit, attempt);
            }
            Action::Measure { run, unit, attempt } => self.measure(run, unit, attempt),
            Action::UseAgent { run, agent } => self.use_agent(run, agent),
            Action::Probe { agent, name } => self.probe(agent, name),
            Action::CloseInput { run } => {
                self.inputs.remove(&run);
            }
            Action::Tell {
                plan,
                task,
                run,
                from,
                to,
            } => self.tell(plan, task, run, from..to),
            Action::RecordPause { plans, pause } => {
                let pcs: Vec<Arc<PlanCtx>> = plans.iter().filter_map(|&p| self.plan(p)).collect();
                let record = pause.map(|(agent, reason, wait)| {
                    let until = chrono::Utc::now()
                        + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero());
                    serde_json::json!({
                        "agent": agent,
                        "until": status::timestamp(until),
                        "reason": reason,
                    })
                });
                tokio::task::spawn_blocking(move || {
                    for pc in pcs {
                        let r = pc.update(|doc| {
                            match &record {
                                Some(v) => doc.extra.insert("orchPaused".into(), v.clone()),
                                None => doc.extra.remove("orchPaused"),
                            };
                            Ok(())
                        });
                        if let Err(e) = r {
                            process_note(&pc, &format!("cannot record the pause: {e}"));
                        }
                    }
                });
            }
            Action::Prepare { plan } => {
                // The upstream plans' commits are read from their status files.
                self.flush_records();
                self.prepare(plan);
            }
            Action::Merge { plan } => {
                // The merge reads the plan's commits from its status file.
                self.flush_records();
                self.merge(plan);
            }
            Action::Land { plans } => {
                self.flush_records();
                self.land(plans);
            }
            Action::Integrate => self.integrate(),
            Action::DropPool { plan } => {
                let Some(pc) = self.plan(plan) else { return };
                // Off the loop (a pool of 100,000-file checkouts takes seconds to delete); the
                // run's end waits for it.
                self.pool_drops.push(tokio::task::spawn_blocking(move || {
                    let root = pc.worktree.parent().unwrap_or(&pc.repo_root);
                    match crate::git::remove_pool(
                        &pc.repo_root,
                        root,
                        pc.name(),
                        None,
                        crate::git::SaveLimits::dropping(pc.entry.size_limits),
                    ) {
                        Ok(removal) => {
                            for kept in removal.kept {
                                process_note(&pc, &format!("task worktree kept: {kept}"));
                            }
                        }
                        Err(e) => {
                            process_note(&pc, &format!("cannot remove the task worktree pool: {e}"))
                        }
                    }
                }));
            }
        }
    }
}

/// A problem met off the loop, written to the plan's log directory (`orch.log`).
fn process_note(pc: &PlanCtx, message: &str) {
    crate::process::log_line(
        &pc.log_dir.join("orch.log"),
        &format!("=== orch: {message} ==="),
    );
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400)
}

/// Start-up, once the attempts of an earlier supervisor are adopted: in each of the run's plans'
/// report directories (`.reports/<plan>/`, which an unconfined agent may fill: it is mounted
/// read-write in the plan's container) everything that is no adopted attempt's goes, never
/// followed (a link as itself; `.reports/<plan>` itself a link is removed when no adopted
/// attempt's directory is there); so does a plan's directory of private client states
/// (`.clients/<plan>/`, mounted read-write in its container too) when no adopted attempt of
/// the plan holds one; and what earlier removals left in orch's trash. Each removal bounded in
/// time, never by giving up ([`crate::untrusted::remove`]): what is left is said, and removed
/// by the next start or `orch clean`.
fn sweep_report_dirs(fx: &mut Effects<'_>, plans: usize) {
    use crate::status::report::REPORTS_DIR;
    use crate::status::report::dir::{ReportDir, empty_trash, remove_whole};
    let mut notes: Vec<(Option<String>, String)> = Vec::new();
    let mut trashes: Vec<std::path::PathBuf> = Vec::new();
    for p in 0..plans {
        let Some(pc) = fx.plan(p) else { continue };
        let state = super::reports::reports_state_dir(&pc);
        if !trashes.iter().any(|t| t == state) {
            trashes.push(state.to_path_buf());
        }
        let dir = crate::status::report::plan_reports_dir(state, pc.name());
        let held: Vec<String> = fx
            .reporters
            .keys()
            .filter(|k| k.parent() == Some(dir.as_path()))
            .filter_map(|k| k.file_name()?.to_str().map(str::to_string))
            .collect();
        let mut said = |r: std::io::Result<()>| {
            if let Err(e) = r {
                notes.push((Some(pc.name().to_string()), e.to_string()));
            }
        };
        if held.is_empty() {
            said(remove_whole(state, &[REPORTS_DIR], pc.name()));
            said(remove_whole(state, &[super::client_state::DIR], pc.name()));
            continue;
        }
        let Ok(found) = ReportDir::open(state, &[REPORTS_DIR], pc.name()) else {
            continue;
        };
        for name in found.names().unwrap_or_default() {
            if !held.contains(&name) {
                said(remove_whole(state, &[REPORTS_DIR, pc.name()], &name));
            }
        }
    }
    for state in trashes {
        if let Err(e) = empty_trash(&state) {
            notes.push((None, e.to_string()));
        }
    }
    // The private TMPDIRs of orch processes killed before they could remove them.
    crate::sandbox::remove_dead_tmp_roots();
    for (plan, n) in notes {
        fx.note(plan, n);
    }
}
