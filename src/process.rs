//! Agent processes: each in a session (agents, checks) or process group (setup commands) of its
//! own, output to a log file, stopped as a group; what they leave behind ended with them.
//!
//! Started with tokio's `Command` and awaited with tokio's child wait. An agent or a check is
//! started through `orch session-exec` (or `orch sandbox-exec`), which calls `setsid` before it
//! becomes the agent: no controlling terminal, process group = session = its pid
//! ([`spawn_agent`]). Until it has (a few milliseconds), it is the only process of its attempt
//! and sits in orch's group: [`signal_group`] and [`group_alive`] then fall back to its pid.
//!
//! `orch up` is a child subreaper ([`become_subreaper`]): a descendant whose parent dies (a
//! double fork, with or without a session of its own) is re-parented to it, not to init. When an
//! attempt ends, [`end_session`] kills what is left in its session and then every such orphan
//! that no running attempt accounts for ([`sweep_orphans`]); at the end of the run, all of
//! them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use tokio::time::Instant;

pub(crate) use tokio::process::Child;

use crate::agent_env::{self, AGENT_SOCKETS, GIT_ENV};

/// The plan and task (`ORCH_PLAN`, `ORCH_TASK`) a process was started for.
type Label = (Option<String>, Option<String>);

/// The sessions of this process's running agents and checks (session id = the leader's pid),
/// with what they were started for: an orphan that belongs to one of them is left alone.
static SESSIONS: Mutex<BTreeMap<u32, Label>> = Mutex::new(BTreeMap::new());

/// Every child this process started through [`spawn`] or [`spawn_agent`] and has not ended
/// ([`end_session`]): tokio reaps them, the orphan sweep never does.
static SPAWNED: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// The plans whose `setup` this process started (a command with `ORCH_PLAN` and no `ORCH_TASK`,
/// through [`spawn`]): only an orphan claiming one of them as a setup's is spared.
static SETUP_PLANS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// One of the registries above, also after a panic elsewhere poisoned it.
fn lock<T>(registry: &'static Mutex<T>) -> MutexGuard<'static, T> {
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A launched agent.
pub(crate) struct Spawned {
    pub(crate) child: Child,
    /// Also the process group id: the agent leads its own group.
    pub(crate) pid: u32,
}

/// Opens a log file for appending, creating its directory.
/// Never through a symlink at the log's path (an agent may have planted one).
pub(crate) fn open_log(path: &Path) -> io::Result<File> {
    crate::links::open_append(path)
}

/// Appends one line to a log (a header before an attempt, a footer after it).
pub(crate) fn log_line(path: &Path, line: &str) {
    if let Ok(mut f) = open_log(path) {
        let _ = writeln!(f, "{line}");
    }
}

/// Spawns `argv` in `cwd` as the leader of a new process group, stdin from /dev/null, stdout and
/// stderr appended to `log`, with `env` added and orch's git variables removed. `argv[0]` is
/// looked up on the child's `PATH` when it has no `/`, else taken relative to `cwd`. Must be
/// called within a tokio runtime, which reaps the child (also one dropped while it runs).
pub(crate) fn spawn(
    argv: &[String],
    cwd: &Path,
    env: &[(String, String)],
    log: &Path,
) -> io::Result<Spawned> {
    start(argv, cwd, env, log, None, Stdio::null())
}

/// Spawns an agent or a check like [`spawn`], but `argv` makes itself the leader of a new
/// session (`orch session-exec …` / `orch sandbox-exec …`: it is not made a group leader here,
/// or `setsid` would fail), and the agent-socket variables ([`AGENT_SOCKETS`]) are removed
/// unless `pass_env` names them; its stdin is `stdin` (orch's own file: the prompt) when given,
/// else /dev/null. The session is recorded until [`end_session`].
pub(crate) fn spawn_agent(
    argv: &[String],
    cwd: &Path,
    env: &[(String, String)],
    log: &Path,
    (pass_env, stdin): (&[String], Option<&Path>),
) -> io::Result<Spawned> {
    let input = match stdin {
        Some(p) => Stdio::from(
            crate::links::no_follow()
                .read(true)
                .open(p)
                .map_err(|e| crate::links::refused(p, e))?,
        ),
        None => Stdio::null(),
    };
    start(argv, cwd, env, log, Some(pass_env), input)
}

fn start(
    argv: &[String],
    cwd: &Path,
    env: &[(String, String)],
    log: &Path,
    agent: Option<&[String]>,
    stdin: Stdio,
) -> io::Result<Spawned> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty argv"))?;
    let out = open_log(log)?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(stdin)
        .stdout(out.try_clone()?)
        .stderr(out);
    match agent {
        None => {
            cmd.process_group(0);
        }
        Some(pass) => {
            for name in AGENT_SOCKETS {
                if !pass.iter().any(|p| p == name) {
                    cmd.env_remove(name);
                }
            }
        }
    }
    for name in GIT_ENV {
        cmd.env_remove(name);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    // Registered before the child can leave anything behind.
    let mut spawned_now = lock(&SPAWNED);
    let child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("the child has no process id"))?;
    spawned_now.insert(pid);
    drop(spawned_now);
    let of = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    match (agent, of(agent_env::ORCH_PLAN), of(agent_env::ORCH_TASK)) {
        (Some(_), plan, task) => {
            lock(&SESSIONS).insert(pid, (plan, task));
        }
        (None, Some(plan), None) => {
            lock(&SETUP_PLANS).insert(plan);
        }
        _ => {}
    }
    Ok(Spawned { child, pid })
}

/// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`): orphaned descendants are
/// re-parented to it, where [`sweep_orphans`] finds them. Called once by `orch up`.
pub(crate) fn become_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
}

/// Ends the session `sid` of an agent or a check that [`spawn_agent`] started: every process
/// still in it is killed, then the orphans that no running attempt accounts for
/// ([`sweep_orphans`]).
pub(crate) async fn end_session(sid: u32) {
    lock(&SESSIONS).remove(&sid);
    kill_session(sid);
    sweep_orphans(false).await;
    lock(&SPAWNED).remove(&sid);
}

/// SIGKILL to every live process of session `sid` (also those that moved to another process
/// group of the session).
fn kill_session(sid: u32) {
    for pid in all_pids() {
        if let Some(st) = stat_of(pid)
            && st.session == sid
            && st.state != 'Z'
            && let Ok(raw) = i32::try_from(pid)
        {
            let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
        }
    }
}

/// Kills and reaps this process's adopted orphans: processes re-parented to it (it is a
/// subreaper) that it did not start, outside its own session (what orch itself runs, git
/// included, stays in its session). `all`: every one (the end of the run); else those no
/// running attempt accounts for: one is left alone while it is in a running attempt's session,
/// while its `ORCH_PLAN` and `ORCH_TASK` are a running attempt's, or when it has `ORCH_PLAN`
/// without `ORCH_TASK` and that plan's `setup` ran (a database the setup started for the
/// worktree, say; ended with the run). The environment is the process's own word: an agent can
/// claim another running attempt or a setup for what it leaves, which then lives that long. Repeats until a round finds nothing left to kill (a killed orphan's own
/// children are orphans next), for at most two seconds.
pub(crate) async fn sweep_orphans(all: bool) {
    let me = std::process::id();
    let Some(my_sid) = stat_of(me).map(|s| s.session) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while sweep_round(all, me, my_sid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One round of [`sweep_orphans`]: whether it killed anything. The registry of spawned children
/// is held for the round: a child spawned meanwhile would be seen before it is registered and
/// killed as an orphan (a new agent ending with status 137 before it printed anything, seen in
/// `benches/up.rs` runs).
fn sweep_round(all: bool, me: u32, my_sid: u32) -> bool {
    let mut pending = false;
    let ours = lock(&SPAWNED);
    let live = if all {
        BTreeMap::new()
    } else {
        lock(&SESSIONS).clone()
    };
    for pid in all_pids() {
        let Some(st) = stat_of(pid) else { continue };
        if st.ppid != me || st.session == my_sid || ours.contains(&pid) {
            continue;
        }
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        if st.state == 'Z' {
            let _ = waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG));
            continue;
        }
        if !all && accounted_for(pid, st.session, &live) {
            continue;
        }
        let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
        pending = true;
    }
    pending
}

/// Whether orphan `pid` (of session `session`) belongs to a running attempt, or to a setup.
fn accounted_for(pid: u32, session: u32, live: &BTreeMap<u32, Label>) -> bool {
    if live.contains_key(&session) {
        return true;
    }
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    accounts(&label_of(&environ), live, &lock(&SETUP_PLANS))
}

/// `ORCH_PLAN` and `ORCH_TASK` of an environment as `/proc/<pid>/environ` holds it.
fn label_of(environ: &[u8]) -> Label {
    (
        env_var(environ, agent_env::ORCH_PLAN),
        env_var(environ, agent_env::ORCH_TASK),
    )
}

/// The value of variable `name` in an environment as `/proc/<pid>/environ` holds it (the last
/// one, should it be set twice).
fn env_var(environ: &[u8], name: &str) -> Option<String> {
    environ
        .split(|b| *b == 0)
        .rev()
        .find_map(|var| env_value(var, name))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Whether a process started for `label` is accounted for while the attempts of `live` run: a
/// plan without a task is a setup's when that plan's setup ran (`setups`; spared until the
/// run's end); a plan and task must be a running attempt's; nothing is no one's.
fn accounts(label: &Label, live: &BTreeMap<u32, Label>, setups: &BTreeSet<String>) -> bool {
    match label {
        (Some(plan), None) => setups.contains(plan),
        (None, _) => false,
        label => live.values().any(|l| l == label),
    }
}

/// The pids in `/proc`.
fn all_pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

/// The fields of `/proc/<pid>/stat` orch reads.
struct Stat {
    state: char,
    ppid: u32,
    pgrp: u32,
    session: u32,
    /// Field 22: clock ticks after boot (0 when it cannot be read).
    start_time: u64,
}

fn stat_of(pid: u32) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from its end.
    let close = stat.rfind(')')?;
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let number = |i: usize| fields.get(i)?.parse().ok();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: number(1)?,
        pgrp: number(2)?,
        session: number(3)?,
        start_time: fields.get(19).and_then(|f| f.parse().ok()).unwrap_or(0),
    })
}

/// Whether `pid` is a child this process started that has not yet made its own session or
/// group (the moment between the spawn and `orch session-exec`'s `setsid`).
fn not_yet_leader(pid: u32) -> bool {
    lock(&SPAWNED).contains(&pid)
        && stat_of(pid).is_some_and(|st| st.state != 'Z' && st.pgrp != pid && st.session != pid)
}

/// Sends `sig` to every process of group `pgid`, and of the session it leads (an agent's
/// process that moved to a group of its own within the session); false when none exists.
pub(crate) fn signal_group(pgid: u32, sig: Signal) -> bool {
    let Some(group) = group_pid(pgid) else {
        return false;
    };
    let mut sent = killpg(group, sig).is_ok();
    for pid in all_pids() {
        if let Some(st) = stat_of(pid)
            && st.session == pgid
            && st.pgrp != pgid
            && st.state != 'Z'
            && let Ok(p) = i32::try_from(pid)
        {
            sent |= kill(Pid::from_raw(p), sig).is_ok();
        }
    }
    // Started, but not yet in its own session: it is still the only process of its attempt.
    sent || not_yet_leader(pgid) && kill(group, sig).is_ok()
}

/// `pgid` as a process group orch may signal: never 0 or 1 (this process's group, init).
fn group_pid(pgid: u32) -> Option<Pid> {
    i32::try_from(pgid)
        .ok()
        .filter(|&raw| raw > 1)
        .map(Pid::from_raw)
}

/// Whether any process of group `pgid` is still alive (zombies aside once reaped).
pub(crate) fn group_alive(pgid: u32) -> bool {
    let Some(group) = group_pid(pgid) else {
        return false;
    };
    if std::fs::read_dir("/proc").is_err() {
        return killpg(group, None).is_ok();
    }
    // A member of the group (or of the session it leads) that is not a zombie.
    all_pids().any(|pid| {
        stat_of(pid).is_some_and(|st| st.state != 'Z' && (st.pgrp == pgid || st.session == pgid))
    }) || not_yet_leader(pgid)
}

/// Whether process `pid` is alive and is the one that started at `start_time` (field 22 of its
/// stat; 0 = unknown, then only liveness counts).
pub(crate) fn process_alive(pid: u32, start_time: u64) -> bool {
    stat_of(pid)
        .is_some_and(|st| st.state != 'Z' && (start_time == 0 || st.start_time == start_time))
}

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`, clock ticks after boot),
/// or 0 when it cannot be read (no such process, no `/proc`).
pub(crate) fn process_start_time(pid: u32) -> u64 {
    stat_of(pid).map_or(0, |st| st.start_time)
}

/// An agent process found running, by the `ORCH_*` variables orch gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FoundAgent {
    /// Its process group (the agent orch launched leads it).
    pub(crate) pgid: u32,
    /// `ORCH_STATUS_FILE`: which plan.
    pub(crate) status_file: String,
    /// `ORCH_TASK`: which task (empty for a plan-mode agent).
    pub(crate) task: String,
}

/// Every live process (not a zombie, not this one) whose environment names an orch status file
/// and task: the agents of an earlier supervisor, and their children. This finds an agent even
/// when the supervisor died between launching it and recording its pid.
pub(crate) fn find_agents() -> Vec<FoundAgent> {
    let mut out = Vec::new();
    for (pid, environ) in environs() {
        if let Some(status_file) = env_var(&environ, agent_env::ORCH_STATUS_FILE)
            && let Some(task) = env_var(&environ, agent_env::ORCH_TASK)
            && let Some(st) = stat_of(pid)
            && st.state != 'Z'
        {
            out.push(FoundAgent {
                pgid: st.pgrp,
                status_file,
                task,
            });
        }
    }
    out
}

/// Every process but this one whose environment can be read: its pid and its environment
/// (`NAME=value` entries separated by NUL bytes).
fn environs() -> impl Iterator<Item = (u32, Vec<u8>)> {
    let me = std::process::id();
    all_pids().filter(move |&pid| pid != me).filter_map(|pid| {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        Some((pid, environ))
    })
}

/// The process groups of every live process (not a zombie, not this one) whose environment
/// sets each of `vars` (`NAME`, value) exactly: a resolving agent left by a killed `orch merge`
/// (`ORCH_TASK=resolve` and its resolution worktree's `ORCH_WORKTREE`).
pub(crate) fn groups_with_env(vars: &[(&str, &str)]) -> Vec<u32> {
    let mut out = Vec::new();
    for (pid, environ) in environs() {
        let all = vars.iter().all(|(name, value)| {
            environ
                .split(|b| *b == 0)
                .any(|var| env_value(var, name) == Some(value.as_bytes()))
        });
        if all
            && let Some(st) = stat_of(pid)
            && st.state != 'Z'
            && !out.contains(&st.pgrp)
        {
            out.push(st.pgrp);
        }
    }
    out
}

/// The value of `NAME=value` when `var` sets `name`.
fn env_value<'a>(var: &'a [u8], name: &str) -> Option<&'a [u8]> {
    var.strip_prefix(name.as_bytes())?.strip_prefix(b"=")
}

/// Stops a process group: SIGTERM, up to `grace` for it to go, then SIGKILL. Returns whether
/// SIGKILL was needed. `child` (the leader, if ours) is reaped meanwhile.
pub(crate) async fn terminate_group(
    pgid: u32,
    grace: Duration,
    mut child: Option<&mut Child>,
) -> bool {
    signal_group(pgid, Signal::SIGTERM);
    // Something that waits for TERM to take effect: re-sent in case the leader blocked it briefly.
    let deadline = Instant::now() + grace;
    loop {
        if let Some(c) = child.as_deref_mut() {
            let _ = c.try_wait();
        }
        if !group_alive(pgid) {
            return false;
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    signal_group(pgid, Signal::SIGKILL);
    if let Some(c) = child {
        let _ = c.wait().await;
    }
    // SIGKILL cannot be ignored; give the kernel a moment to take the group down.
    let until = Instant::now() + Duration::from_secs(2);
    while group_alive(pgid) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// Resolves an agent's program the way `execvp` will: a name with a `/` relative to `cwd`, else
/// the first match on `PATH`. `None` when nothing executable is found.
pub(crate) fn resolve_program(program: &str, cwd: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        let p = cwd.join(program);
        return executable(&p).then_some(p);
    }
    search_path(program, &std::env::var_os("PATH")?)
}

/// Whether `program` (resolved as [`resolve_program`] does) can be run: the error a spawn of it
/// would give when it cannot (not found, not executable). Asked before an agent is started
/// through `orch session-exec`, whose spawn succeeds either way.
pub(crate) fn runnable(program: &str, cwd: &Path) -> io::Result<()> {
    if resolve_program(program, cwd).is_some() {
        return Ok(());
    }
    let exists = program.contains('/') && cwd.join(program).exists();
    Err(io::Error::from(if exists {
        nix::errno::Errno::EACCES
    } else {
        nix::errno::Errno::ENOENT
    }))
}

/// The first executable `program` in the directories of `path` (a `PATH` value).
fn search_path(program: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// This host's name, for the status file's `orchRun.host`.
pub(crate) fn hostname() -> Option<String> {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
}

#[cfg(test)]
mod tests;
