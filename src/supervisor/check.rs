//! The check gate: the task's check (`check` in `[defaults]` or `[[plan]]`, or the task's own
//! `(check: …)`) run in its worktree after its agent is done and before the commit. Its output
//! goes to `<log_dir>/<id>.check.log`; a failure's cause is the end of that output, which the
//! retry's prompt gets. Decides nothing: the core does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use super::context::{Ctx, PlanCtx};
use super::core::Input;
use super::msg::Msg;
use super::runner::Effects;
use super::state::{CheckOutcome, RunId, Stop, Unit};
use crate::agent_env;
use crate::manifest::format_duration;
use crate::process;
use crate::status;

/// Lines of the check's output kept in a failure's cause.
const TAIL_LINES: usize = 40;
const TAIL_CHARS: usize = 4000;

impl Effects<'_> {
    /// Runs the check of attempt `run` off the loop; the core hears [`Input::Checked`].
    pub(crate) fn check(&mut self, run: RunId, unit: Unit) {
        let Some(pc) = self.plan(unit.plan()) else {
            return;
        };
        let Some(t) = unit.task() else { return };
        let (tx, ctx, stop) = (self.tx.clone(), self.ctx.clone(), self.stop_all.subscribe());
        // Best of N: an attempt of a round is checked in its own worktree.
        let key = self.members.get(&run).cloned();
        // The agent that ran the attempt (a fallback, a member): the check reaches what it
        // reaches, not what the plan's agent does.
        let (agent, _) = self.agent_of_run(run, &pc);
        tokio::spawn(async move {
            let result = run_check(&pc, t, (key.as_deref(), Some(agent)), &ctx, stop).await;
            let _ = tx.send(Msg {
                reload: Some(pc.index),
                input: Input::Checked { run, result },
            });
        });
    }
}

/// Runs task `t`'s check in the worktree of `key` (an attempt of a best-of-N round), else the
/// task's, with the task's timeout (also for a plan-mode agent's VERIFY step, `reports.rs`).
pub(super) async fn run_check(
    pc: &Arc<PlanCtx>,
    t: usize,
    (key, agent): (Option<&str>, Option<String>),
    ctx: &Ctx,
    stop: watch::Receiver<Stop>,
) -> CheckOutcome {
    let Some(argv) = pc.check_of(t) else {
        return CheckOutcome::Passed;
    };
    let id = pc.plan.tasks[t].id.clone();
    let tree = key.unwrap_or(&id);
    let workdir = pc
        .task_worktree(tree)
        .unwrap_or_else(|| pc.worktree.clone());
    let mut run = Confined::new(pc, "check", &id, tree, &workdir);
    run.agent = agent;
    run_confined(pc, argv, &run, ctx, stop).await.0
}

/// A command orch runs in a task's worktree on the agent's work (the check, best of N's
/// `select`): confined under the agent's rules with a private TMPDIR when the plan's agents
/// are, in a session of its own, its output to `log`.
pub(super) struct Confined<'a> {
    /// `check` or `select`, for messages.
    pub(crate) what: &'a str,
    pub(crate) id: &'a str,
    pub(crate) workdir: &'a Path,
    pub(crate) log: PathBuf,
    pub(crate) tmp: Option<PathBuf>,
    /// Variables of its own (a setup's `ORCH_PORT`).
    pub(crate) env: Vec<(String, String)>,
    /// The agent whose work it runs on (a fallback, a member of best of N): its network is the
    /// command's, never the plan agent's. `None`: the plan's agent.
    pub(crate) agent: Option<String>,
}

impl<'a> Confined<'a> {
    /// `what` on task `id`'s work in `workdir`, named after `tree` (the task's id, or an
    /// attempt's key): its output to `<log_dir>/<tree>.<what>.log`, its TMPDIR
    /// `<tree>.<what>` when it runs confined.
    pub(super) fn new(
        pc: &PlanCtx,
        what: &'a str,
        id: &'a str,
        tree: &str,
        workdir: &'a Path,
    ) -> Self {
        let name = format!("{tree}.{what}");
        Confined {
            what,
            id,
            workdir,
            log: pc.log_dir.join(format!("{name}.log")),
            tmp: confined_tmp(pc, &name),
            env: Vec::new(),
            agent: None,
        }
    }
}

/// Runs `argv` as `c` says, with the task's timeout, then removes its TMPDIR; its outcome, and
/// where its output starts in the log.
pub(super) async fn run_confined(
    pc: &Arc<PlanCtx>,
    argv: Vec<String>,
    c: &Confined<'_>,
    ctx: &Ctx,
    stop: watch::Receiver<Stop>,
) -> (CheckOutcome, u64) {
    let ran = confined(pc, argv, c, ctx, stop).await;
    if let Some(tmp) = c.tmp.clone() {
        let _ = tokio::task::spawn_blocking(move || {
            crate::sandbox::remove_tmp(&tmp);
        })
        .await;
    }
    ran
}

async fn confined(
    pc: &Arc<PlanCtx>,
    mut argv: Vec<String>,
    c: &Confined<'_>,
    ctx: &Ctx,
    mut stop: watch::Receiver<Stop>,
) -> (CheckOutcome, u64) {
    let (id, workdir, log, what) = (c.id.to_string(), c.workdir, c.log.as_path(), c.what);
    let (grace, orch) = (ctx.grace, ctx.orch_bin.as_path());
    let shown = argv.join(" ");
    process::log_line(
        log,
        &format!(
            "=== orch: {what} `{shown}` started at {} in {} ===",
            status::timestamp(Utc::now()),
            workdir.display()
        ),
    );
    let start = std::fs::metadata(log).map_or(0, |m| m.len());
    let cannot_start = |e: String| {
        let of = if id.is_empty() {
            format!("plan `{}`", pc.name())
        } else {
            format!("task `{id}`")
        };
        let why = format!("the {what} `{shown}` of {of} cannot start: {e}");
        (CheckOutcome::Failed(why), start)
    };
    // Where the plan's attempts run (a container: its program found there), else here.
    let place = place_of(pc, c, orch);
    if let Some(at) = &place {
        argv = match pc.executor.wrap(&at.attempt(), argv, &[]) {
            Ok(a) => a,
            Err(e) => return cannot_start(e),
        };
    } else if let Some(first) = argv.first_mut()
        && !first.contains('/')
        && let Some(found) = process::resolve_program(first, workdir)
    {
        *first = found.display().to_string();
    }
    let program = argv.first().cloned().unwrap_or_default();
    let mut env = vec![
        (agent_env::ORCH_PLAN.to_string(), pc.name().to_owned()),
        (
            agent_env::ORCH_WORKTREE.to_string(),
            workdir.display().to_string(),
        ),
    ];
    // A task's command: its task (a plan's setup has none).
    if !id.is_empty() {
        env.push((agent_env::ORCH_TASK.to_string(), id.clone()));
    }
    env.extend(c.env.iter().cloned());
    // The check runs under its agent's rules, with a TMPDIR of its own.
    if let (Some(base), Some(tmp)) = (pc.sandbox.rules(), c.tmp.clone()) {
        if let Err(e) = crate::links::fresh_dir(&tmp) {
            return cannot_start(format!("cannot make `{}`: {e}", tmp.display()));
        }
        env.push(("TMPDIR".to_string(), tmp.display().to_string()));
        let mut rules = super::sandbox::attempt_rules(base, workdir, &tmp);
        argv = match &place {
            Some(_) => pc
                .executor
                .confine(orch, &mut rules, &tmp, pc.agent.sandbox.mode, argv),
            // On this machine: through the helper beside orch.
            None => crate::sandbox::wrap_here(orch, &rules, &argv),
        };
    }
    let mut net_place = crate::executor::NetPlace::Here;
    if let Some(at) = &place {
        let entered = pc
            .executor
            .enter(&at.attempt(), argv, &env, &at.tmp)
            .and_then(|a| Ok((a, pc.executor.network_place()?)));
        (argv, net_place) = match entered {
            Ok(e) => e,
            Err(e) => return cannot_start(e),
        };
    } else if let Err(e) = process::runnable(&program, workdir) {
        return cannot_start(e.to_string());
    }
    let argv = super::sandbox::in_session(orch, (ctx.log_max, grace), argv);
    // The check reaches what its plan's agents reach.
    let network = match &c.agent {
        Some(a) => super::network::of_agent(&pc.network, &pc.agent_networks, a),
        None => &pc.network,
    };
    let net = match super::network::attempt(
        ctx.net.as_ref(),
        network,
        net_place,
        (pc.name(), &id),
        log,
        &mut env,
    ) {
        Ok(n) => n,
        Err(e) => return cannot_start(e),
    };
    let pass = &pc.agent.sandbox.pass_env;
    let mut spawned = match process::spawn_agent(&argv, workdir, &env, log, (pass, None)) {
        Ok(s) => s,
        Err(e) => return cannot_start(e.to_string()),
    };
    if let Some(net) = net {
        net.started(spawned.pid);
    }
    let waited = wait_within(&mut spawned, pc.entry.timeout, grace, &mut stop).await;
    process::end_session(spawned.pid).await;
    let mut place_failed = None;
    let mut place_lost = None;
    if let Some(at) = &place {
        // Whether its place failed before it ran (a service that did not get ready, as orch's
        // own waiter recorded), then what it left in its place (a `podman exec` leaves its
        // processes running).
        let (pc, unit) = (pc.clone(), at.unit.clone());
        let code = match &waited {
            Waited::Exited(Some(c)) => Some(*c),
            _ => None,
        };
        (place_failed, place_lost) = tokio::task::spawn_blocking(move || {
            let failed = code.and_then(|c| pc.executor.place_failed(&unit, 0, c));
            // Or its place ended under it (the plan's container removed or stopped from
            // outside), as the executor finds it, not as the command's status says.
            let lost = code
                .filter(|c| failed.is_none() && *c != 0)
                .and_then(|c| pc.executor.lost(c))
                .filter(|l| *l == crate::executor::Lost::Place)
                .and_then(|_| pc.executor.lost_why());
            pc.executor
                .settled(&pc.repo_root, (pc.name(), &pc.entry.branch), &unit, 0);
            (failed, lost)
        })
        .await
        .unwrap_or_default();
    }
    if let Some(why) = place_lost {
        // Not the work's failure: the attempt is lost with its place (not counted, a bounded
        // number of times), and the task runs again in a container made anew.
        let now = status::timestamp(Utc::now());
        process::log_line(
            log,
            &format!(
                "=== orch: {what} did not run to its end at {now}: {} ===",
                why.lines().next().unwrap_or_default()
            ),
        );
        return (
            CheckOutcome::Lost(format!(
                "the {what} `{shown}` did not run to its end: {why}"
            )),
            start,
        );
    }
    if let Some(why) = place_failed {
        // Not the work's failure, but a failed check all the same (what the agent did may have
        // stopped a service): the task's retry (if any) runs it again, with its services made
        // anew.
        let now = status::timestamp(Utc::now());
        process::log_line(
            log,
            &format!(
                "=== orch: {what} did not run at {now}: {} ===",
                why.lines().next().unwrap_or_default()
            ),
        );
        return (
            CheckOutcome::Failed(format!("the {what} `{shown}` did not run: {why}")),
            start,
        );
    }
    let code = match waited {
        Waited::Exited(code) => code,
        Waited::TimedOut => {
            let why = format!(
                "the {what} `{shown}` timed out after {}{}",
                format_duration(pc.entry.timeout),
                lines(&tail_of(log, start))
            );
            return (CheckOutcome::Failed(why), start);
        }
        Waited::Stopped => return (CheckOutcome::Stopped, start),
    };
    let ended = code.map_or("killed by a signal".to_string(), |c| {
        format!("exit status {c}")
    });
    let now = status::timestamp(Utc::now());
    process::log_line(
        log,
        &format!("=== orch: {what} ended at {now}: {ended} ==="),
    );
    if code == Some(0) {
        return (CheckOutcome::Passed, start);
    }
    let why = format!(
        "the {what} `{shown}` failed ({ended}){}",
        lines(&tail_of(log, start))
    );
    (CheckOutcome::Failed(why), start)
}

/// A plan's command on an attempt's work, as its executor sees it when it runs where the
/// plan's attempts run ([`crate::executor::Executor::commands_in_place`]).
struct Place {
    plan: String,
    /// `<tree>.<what>`.
    unit: String,
    repo_root: PathBuf,
    state_dir: PathBuf,
    status_file: PathBuf,
    workdir: PathBuf,
    branch: String,
    /// Where its report directory would be (none is made: its parent is the plan's).
    report_dir: PathBuf,
    orch_bin: PathBuf,
    sandbox: crate::manifest::SandboxMode,
    /// Its `TMPDIR` as named here.
    tmp: PathBuf,
    /// The agent's `pass_env`.
    pass_env: Vec<String>,
}

impl Place {
    fn attempt(&self) -> crate::executor::Attempt<'_> {
        crate::executor::Attempt {
            plan: &self.plan,
            unit: &self.unit,
            attempt: 0,
            repo_root: &self.repo_root,
            state_dir: &self.state_dir,
            status_file: &self.status_file,
            workdir: &self.workdir,
            branch: &self.branch,
            report_dir: &self.report_dir,
            prompt_file: &self.report_dir,
            orch_bin: &self.orch_bin,
            sandbox: self.sandbox,
            run_hosts: &[],
            pass_env: &self.pass_env,
        }
    }
}

/// The place of command `c` of plan `pc` when its executor runs such commands where its
/// attempts run.
fn place_of(pc: &PlanCtx, c: &Confined<'_>, orch: &Path) -> Option<Place> {
    if !pc.executor.commands_in_place() {
        return None;
    }
    let unit = c
        .log
        .file_stem()
        .map_or_else(|| c.what.to_string(), |s| s.to_string_lossy().into_owned());
    Some(Place {
        plan: pc.name().to_owned(),
        pass_env: pc.agent.sandbox.pass_env.clone(),
        report_dir: crate::status::report::attempt_dir(&pc.run_state_dir, pc.name(), &unit, 0),
        tmp: c
            .tmp
            .clone()
            .unwrap_or_else(|| super::sandbox::tmp_dir(pc.name(), &unit, 0)),
        unit,
        repo_root: pc.repo_root.clone(),
        // The plan's state directory (`<state_dir>/<plan>/status.json`'s).
        state_dir: pc
            .status_path
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        status_file: pc.status_path.clone(),
        workdir: c.workdir.to_path_buf(),
        branch: pc.entry.branch.clone(),
        orch_bin: orch.to_path_buf(),
        sandbox: pc.agent.sandbox.mode,
    })
}

/// How a command orch waited for ended.
pub(super) enum Waited {
    /// By itself: its exit code (`None`: killed by a signal).
    Exited(Option<i32>),
    /// Past its timeout; its process group was ended.
    TimedOut,
    /// Stopped with the run (`Stop::Now`); its process group was ended.
    Stopped,
}

/// Waits for `spawned` (a wrapper, `orch session-exec`) for `timeout` at most, and no longer
/// than the run (`stop`); a command that outlasts either is stopped by its wrapper (TERM, then
/// KILL after `grace`).
pub(super) async fn wait_within(
    spawned: &mut process::Spawned,
    timeout: Duration,
    grace: Duration,
    stop: &mut watch::Receiver<Stop>,
) -> Waited {
    let pid = spawned.pid;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        tokio::select! {
            st = spawned.child.wait() => return Waited::Exited(st.ok().and_then(|s| s.code())),
            () = tokio::time::sleep_until(deadline) => {
                process::stop_wrapper(pid, 0, grace, Some(&mut spawned.child)).await;
                return Waited::TimedOut;
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() == Stop::Now {
                    process::stop_wrapper(pid, 0, grace, Some(&mut spawned.child)).await;
                    return Waited::Stopped;
                }
            }
        }
    }
}

/// The private TMPDIR of a command run on an attempt's work (`what`: `<tree>.check`,
/// `<key>.select`), when it runs confined.
pub(super) fn confined_tmp(pc: &PlanCtx, what: &str) -> Option<PathBuf> {
    pc.confined_here()
        .map(|_| super::sandbox::tmp_dir(pc.name(), what, 0))
}

/// The last `max` bytes at most of the log `path` after byte `from` (read as untrusted: no
/// link followed, no FIFO waited on).
pub(super) fn tail_bytes(path: &Path, from: u64, max: u64) -> Option<Vec<u8>> {
    crate::untrusted::read::tail(path, from, max)
        .ok()
        .map(|(_, b)| b)
}

fn lines(tail: &str) -> String {
    if tail.is_empty() {
        " and printed nothing".to_string()
    } else {
        format!("; the end of its output:\n{tail}")
    }
}

/// The last lines the check wrote to `log` after byte `start`, without orch's own lines (read
/// from its last 64 KiB at most, far more than the lines kept).
fn tail_of(log: &Path, start: u64) -> String {
    let text = tail_bytes(log, start, 64 * 1024).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("=== orch: "))
        .collect();
    let mut tail = kept[kept.len().saturating_sub(TAIL_LINES)..].join("\n");
    if tail.len() > TAIL_CHARS {
        let mut cut = tail.len() - TAIL_CHARS;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = format!("…{}", &tail[cut..]);
    }
    tail.trim_end().to_string()
}
