//! Agent processes: each under a wrapper of its own (agents, checks, resolvers) or in a
//! process group of its own (commands orch runs itself), output to a log file, stopped as a
//! whole; what they leave behind ended with them.
//!
//! Started with tokio's `Command` and awaited with tokio's child wait. An agent or a check is
//! started under `orch session-exec` ([`wrapper`]): a wrapper in a session of its own (no
//! controlling terminal), a child subreaper that stays the agent's parent, copies its output
//! into the log (bounded, `log_max`) and, when the agent exits or is stopped, ends every process
//! the agent left: each of them is its descendant, however it detached. orch records the
//! wrapper's pid and start time; the wrapper's pid is also its session and process group
//! ([`signal_group`], [`group_alive`]; until it has called `setsid`, a few milliseconds, it
//! sits in orch's group and they fall back to its pid).
//!
//! `orch up` is a child subreaper too ([`become_subreaper`]): should a wrapper die first (an
//! unconfined agent can kill it), what it kept is re-parented to orch. When an attempt ends,
//! [`end_session`] kills what is left of its session and then every process re-parented to
//! orch that orch did not start ([`sweep_orphans`]), whatever it says it is: no environment,
//! argv, file or session spares it. A `setup`'s background processes (a database) are kept by
//! a keeper orch starts and records ([`spawn_keeper`], [`keep`]) and end with the run
//! ([`end_keepers`]), or with orch.

mod procfs;
pub(crate) mod recorded;
pub(crate) mod session;
pub(crate) mod stream_input;
pub(crate) mod wrapper;

use std::collections::BTreeSet;
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

use crate::agent_env::{self, GIT_ENV};
pub(crate) use procfs::{
    FoundAgent, descends_from, env_of, find_agents, in_pid_ns, pid_ns_of, process_alive,
    process_start_time,
};
use procfs::{Stat, all_pids, stat_of};

/// Every child this process started through [`spawn_agent`], [`spawn_keeper`] or
/// [`spawn_std`] and has not ended ([`end_session`], [`forget`]): their own waits reap them,
/// the orphan sweep never kills them. orch's record of what it started.
static SPAWNED: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// The keepers of the run's setups ([`keep`]), ended with the run ([`end_keepers`]).
static KEEPERS: Mutex<Vec<Keeper>> = Mutex::new(Vec::new());

/// One of the registries above, also after a panic elsewhere poisoned it.
fn lock<T>(registry: &'static Mutex<T>) -> MutexGuard<'static, T> {
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A launched agent.
pub(crate) struct Spawned {
    pub(crate) child: Child,
    /// Also the process group id: the agent leads its own group.
    pub(crate) pid: u32,
    /// A gated wrapper's go-ahead ([`spawn_gated`]).
    gate: Option<tokio::process::ChildStdin>,
}

impl Spawned {
    /// Lets a gated wrapper start its agent (orch has recorded it). Dropping the gate without
    /// releasing it makes the wrapper run nothing.
    pub(crate) fn release(&mut self) {
        if let Some(gate) = self.gate.take()
            && let Ok(fd) = gate.into_owned_fd()
        {
            // One byte into an empty pipe: never blocks.
            let _ = File::from(fd).write_all(b"g");
        }
    }

    /// [`Spawned::release`], keeping orch's end of the pipe, made non-blocking: with
    /// `orch session-exec --gate --input` the rest of it is the agent's stdin.
    pub(crate) fn release_keeping(&mut self) -> Option<File> {
        let fd = self.gate.take()?.into_owned_fd().ok()?;
        let mut file = File::from(fd);
        let _ = file.write_all(b"g");
        let flags = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL).ok()?;
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(flags)).ok()?;
        Some(file)
    }
}

/// Opens a log file for appending, creating its directory.
/// Never through a symlink at the log's path (an agent may have planted one).
pub(crate) fn open_log(path: &Path) -> io::Result<File> {
    crate::links::open_append(path)
}

/// Appends one line to a log (a header before an attempt, a footer after it).
pub(crate) fn log_line(path: &Path, line: &str) {
    let _ = crate::links::append_line(path, line);
}

/// Spawns an agent or a check in `cwd`, stdout and stderr appended to `log`, with `env` added
/// and orch's git variables removed (`argv[0]` looked up on the child's `PATH` when it has no
/// `/`, else taken relative to `cwd`; must be called within a tokio runtime, which reaps the
/// child), but `argv` is its wrapper (`orch session-exec …`,
/// [`wrapper`]), which makes itself the leader of a new session (it is not made a group
/// leader here, or `setsid` would fail), and the agent-socket variables and GitHub tokens ([`agent_env::withheld`]) are
/// removed unless `pass_env` names them; its stdin is `stdin` (orch's own file: the prompt) when
/// given, else /dev/null. Recorded as orch's until [`end_session`].
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

/// Spawns an attempt's agent like [`spawn_agent`], under a gated wrapper (`argv` is
/// `orch session-exec --gate …`): its stdin is a pipe from orch, and the agent starts only
/// once orch has recorded the wrapper and calls [`Spawned::release`].
pub(crate) fn spawn_gated(
    argv: &[String],
    cwd: &Path,
    env: &[(String, String)],
    log: &Path,
    pass_env: &[String],
) -> io::Result<Spawned> {
    let mut spawned = start(argv, cwd, env, log, Some(pass_env), Stdio::piped())?;
    spawned.gate = spawned.child.stdin.take();
    Ok(spawned)
}

pub(super) fn start(
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
    let mut cmd = crate::agent_env::tokio_command(program);
    place(cmd.as_std_mut(), cwd);
    cmd.args(args)
        .stdin(stdin)
        .stdout(out.try_clone()?)
        .stderr(out);
    match agent {
        None => {
            cmd.process_group(0);
        }
        Some(pass) => {
            for name in agent_env::withheld() {
                if agent_env::is_withheld(name, pass) {
                    cmd.env_remove(name);
                }
            }
        }
    }
    for name in GIT_ENV {
        cmd.env_remove(name);
    }
    otel_inherited(cmd.as_std_mut());
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    // Registered before the child can leave anything behind.
    let mut spawned_now = lock(&SPAWNED);
    let child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("the child has no process id"))?;
    spawned_now.insert(pid);
    drop(spawned_now);
    Ok(Spawned {
        child,
        pid,
        gate: None,
    })
}

/// Spawns `cmd` (a `std` command orch waits for itself: a resolver under its wrapper), recorded
/// as orch's own child until [`forget`]: the orphan sweep of a concurrent attempt's end leaves
/// it alone.
pub(crate) fn spawn_std(cmd: &mut std::process::Command) -> io::Result<std::process::Child> {
    let mut spawned_now = lock(&SPAWNED);
    let child = cmd.spawn()?;
    spawned_now.insert(child.id());
    Ok(child)
}

/// How many processes orch is having made that become its children without being spawned by it
/// (a container's monitor, `conmon`, which `podman run -d` leaves re-parented to `orch up`) and
/// are not yet kept ([`keep_adopted`]): while any is, the orphan sweep waits ([`sweep_orphans`]),
/// so that it does not kill one in the moment between its birth and its keeping (measured: four
/// container plans starting while the first ones' attempts ended lost two of their containers).
static ADOPTING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The longest the orphan sweep waits for [`adopting`]'s to end.
const ADOPTING_WAIT: Duration = Duration::from_secs(60);

/// While held, orch is having a process made that it will keep ([`keep_adopted`]): the orphan
/// sweep waits (at most a minute).
pub(crate) struct Adopting(());

/// Says that orch is having such a process made, until the value is dropped.
pub(crate) fn adopting() -> Adopting {
    ADOPTING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Adopting(())
}

impl Drop for Adopting {
    fn drop(&mut self) {
        ADOPTING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn adopting_now() -> bool {
    ADOPTING.load(std::sync::atomic::Ordering::SeqCst) > 0
}

/// Keeps process `pid`, which orch did not spawn but whose parent it becomes (a container's
/// monitor, `conmon`, re-parented to `orch up` the subreaper): never swept as an orphan
/// ([`sweep_orphans`]) until [`forget`].
pub(crate) fn keep_adopted(pid: u32) {
    lock(&SPAWNED).insert(pid);
}

/// Forgets child `pid` ([`spawn_std`]) once it has been waited for.
pub(crate) fn forget(pid: u32) {
    lock(&SPAWNED).remove(&pid);
}

/// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`): orphaned descendants are
/// re-parented to it, where [`sweep_orphans`] finds them. Called once by `orch up`.
pub(crate) fn become_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
}

/// Ends the session `sid` of an agent or a check that [`spawn_agent`] started (its wrapper's):
/// every process still in it is killed, then every orphan orch did not start
/// ([`sweep_orphans`]: what a wrapper that died first kept).
pub(crate) async fn end_session(sid: u32) {
    // One walk of `/proc` for both (each is a read of every process's `stat`, the most of
    // what an attempt's end costs orch): the sweep goes on only when that walk could not
    // look for orphans or killed one.
    if kill_session(sid) {
        sweep_orphans().await;
    }
    lock(&SPAWNED).remove(&sid);
}

/// SIGKILL to every live process of session `sid` (also those that moved to another process
/// group of the session), and in the same walk one round of [`sweep_round`] unless orch is
/// having a process made that it keeps ([`adopting`]): whether the orphans are still to be
/// swept (that round was not made, or killed one).
fn kill_session(sid: u32) -> bool {
    let me = std::process::id();
    let Some(my_sid) = stat_of(me).map(|s| s.session) else {
        return true;
    };
    let Some(_) = group_pid(sid) else {
        return true;
    };
    let ours = lock(&SPAWNED);
    let orphans = !adopting_now();
    let mut pending = !orphans;
    for pid in all_pids() {
        let Some(st) = stat_of(pid) else { continue };
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        if st.session == sid && st.state != 'Z' {
            let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
        } else if orphans && is_orphan(&st, me, my_sid, ours.contains(&pid)) {
            if st.state == 'Z' {
                let _ = waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG));
                continue;
            }
            let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
            pending = true;
        }
    }
    pending
}

/// Kills and reaps this process's adopted orphans: processes re-parented to it (it is a
/// subreaper) that it did not start, outside its own session (what orch itself runs, git
/// included, stays in its session; no agent can join it). None is spared, whatever its
/// environment, argv or files say: while their wrappers live, the processes of running
/// attempts are their wrappers' descendants, never orch's orphans, and a setup's are its
/// keeper's. Repeats until a round finds nothing left to kill (a killed orphan's own children
/// are orphans next), for at most two seconds.
pub(crate) async fn sweep_orphans() {
    let me = std::process::id();
    let Some(my_sid) = stat_of(me).map(|s| s.session) else {
        return;
    };
    // Not while orch is having a process made that it keeps ([`adopting`]): the rounds' two
    // seconds count from when none is.
    let held = Instant::now() + ADOPTING_WAIT;
    let mut deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if adopting_now() && Instant::now() < held {
            tokio::time::sleep(Duration::from_millis(10)).await;
            deadline = Instant::now() + Duration::from_secs(2);
            continue;
        }
        if !sweep_round(me, my_sid) || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One round of [`sweep_orphans`]: whether it killed anything. The registry of spawned children
/// is held for the round: a child spawned meanwhile would be seen before it is registered and
/// killed as an orphan (a new agent ending with status 137 before it printed anything, seen in
/// `benches/up.rs` runs).
fn sweep_round(me: u32, my_sid: u32) -> bool {
    let mut pending = false;
    let ours = lock(&SPAWNED);
    // One began meanwhile: this round kills nothing (the next waits for it).
    if adopting_now() {
        return true;
    }
    for pid in all_pids() {
        let Some(st) = stat_of(pid) else { continue };
        if !is_orphan(&st, me, my_sid, ours.contains(&pid)) {
            continue;
        }
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        if st.state == 'Z' {
            let _ = waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG));
            continue;
        }
        let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
        pending = true;
    }
    pending
}

/// Whether a process (its stat `st`) is an orphan orch adopted and must end: its parent is orch
/// (`me`), orch did not start it (`started`), and it is not in orch's own session (`my_sid`).
/// Decided only from where the process is and from orch's records.
fn is_orphan(st: &Stat, me: u32, my_sid: u32, started: bool) -> bool {
    st.ppid == me && st.session != my_sid && !started
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

/// Kills every process below `root` (its descendants, by their parents in `/proc`), read again
/// until none is left (at most 50 sweeps), then `root`'s group and session as
/// [`signal_group`] does. A wrapper is a subreaper: while it lives, what its killed processes
/// leave is re-parented to it, so a process that left its session, its group or its environment
/// is still found below it. Never this process; used for processes found by their environment
/// (a stray, a best-of-N round that outlived its supervisor): killing only their group spared
/// what had moved to a session of its own. Returns whether anything was signalled.
pub(crate) fn kill_tree(root: u32) -> bool {
    let me = std::process::id();
    // Never this process's own ancestors (a shell that claims to be an agent) nor what this
    // process started.
    if group_pid(root).is_none() || descends_from(me, root) || descends_from(root, me) {
        return false;
    }
    let mut sent = false;
    for _ in 0..50 {
        // Neither this process nor what it started is below `root` (checked above).
        let below: Vec<u32> = all_pids()
            .filter(|&p| p != root)
            .filter(|&p| stat_of(p).is_some_and(|st| st.state != 'Z'))
            .filter(|&p| descends_from(p, root))
            .collect();
        if below.is_empty() {
            break;
        }
        for p in below {
            if let Ok(raw) = i32::try_from(p) {
                sent |= kill(Pid::from_raw(raw), Signal::SIGKILL).is_ok();
            }
        }
    }
    signal_group(root, Signal::SIGKILL) || sent
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

/// Stops the processes found by their environment (`found`, see [`find_agents`]) that are not
/// below any of `adopted` (the wrappers of the agents adopted from orch's records): each one
/// still alive as found and outside those trees is killed with its process group. One found
/// that has exited since (or whose pid is another process's now) is nothing to stop, and its
/// group is not its to answer for: a short-lived child of an adopted agent (a `sleep`, a `git`)
/// leaves behind the group of that agent. Returns how many were stopped.
pub(crate) fn stop_strays(found: &[&FoundAgent], adopted: &[u32]) -> usize {
    let mut stopped = 0;
    for f in found {
        let outside = !adopted.iter().any(|&a| descends_from(f.pid, a));
        // Checked after the chain was read: a chain cut by the process's own exit says nothing.
        if outside && process_alive(f.pid, f.start_time) && kill_stray(f) {
            stopped += 1;
        }
    }
    stopped
}

/// Kills a process found by its environment (a stray: see [`find_agents`]), what is below it
/// and its process group as it is now; never orch's own group, nor init's, nor an ancestor of
/// orch (a shell whose environment names an agent). Nothing when it is no longer the process
/// found (exited, its pid reused).
fn kill_stray(found: &FoundAgent) -> bool {
    let Some(st) = stat_of(found.pid).filter(|st| st.start_time == found.start_time) else {
        return false;
    };
    if descends_from(std::process::id(), found.pid) {
        return false;
    }
    let mine = nix::unistd::getpgrp().as_raw();
    // What is below it first, while it still holds them (a wrapper is their subreaper).
    let mut killed = i32::try_from(st.pgrp).is_ok_and(|g| g != mine) && kill_tree(found.pid);
    if let Ok(raw) = i32::try_from(found.pid)
        && raw > 1
    {
        killed |= kill(Pid::from_raw(raw), Signal::SIGKILL).is_ok();
    }
    if i32::try_from(st.pgrp).is_ok_and(|g| g != mine) {
        killed |= signal_group(st.pgrp, Signal::SIGKILL);
    }
    killed
}

/// Stops what runs under wrapper `pid` (`orch session-exec`; `start_time` from its record, 0
/// when orch started it itself): SIGTERM to the wrapper, which passes it on to every process of
/// the attempt and kills those left after `grace`. orch waits for the wrapper to end, `grace`
/// and a few seconds more, then kills its session itself (a wrapper that does not end: stopped
/// by its agent, say). Returns whether orch had to kill. `child` (the wrapper, if orch started
/// it) is reaped meanwhile.
pub(crate) async fn stop_wrapper(
    pid: u32,
    start_time: u64,
    grace: Duration,
    mut child: Option<&mut Child>,
) -> bool {
    let Some(wrapper) = group_pid(pid) else {
        return false;
    };
    let alive = |child: &mut Option<&mut Child>| match child.as_deref_mut() {
        Some(c) => matches!(c.try_wait(), Ok(None)),
        None => process_alive(pid, start_time),
    };
    if alive(&mut child) {
        let _ = kill(wrapper, Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace + Duration::from_secs(5);
    while alive(&mut child) {
        if Instant::now() >= deadline {
            signal_group(pid, Signal::SIGKILL);
            let _ = kill(wrapper, Signal::SIGKILL);
            if let Some(c) = child {
                let _ = c.wait().await;
            }
            let until = Instant::now() + Duration::from_secs(2);
            while group_alive(pid) && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// [`stop_wrapper`] for a wrapper orch waits for without tokio (a resolver of `orch merge`).
pub(crate) fn stop_wrapper_blocking(pid: u32, grace: Duration, child: &mut std::process::Child) {
    let Some(wrapper) = group_pid(pid) else {
        return;
    };
    if matches!(child.try_wait(), Ok(None)) {
        let _ = kill(wrapper, Signal::SIGTERM);
    }
    let deadline = std::time::Instant::now() + grace + Duration::from_secs(5);
    while matches!(child.try_wait(), Ok(None)) {
        if std::time::Instant::now() >= deadline {
            signal_group(pid, Signal::SIGKILL);
            let _ = kill(wrapper, Signal::SIGKILL);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.wait();
}

/// A keeper of a `setup` command ([`wrapper`] with `--keep`), started by [`spawn_keeper`].
pub(crate) struct Keeper {
    pub(crate) child: Child,
    pub(crate) pid: u32,
    /// orch's end of the keeper's stdin: the keeper ends what it keeps at its end of file
    /// (dropped at the end of the run, or closed by the kernel when orch dies).
    lifeline: Option<tokio::process::ChildStdin>,
    /// Where the keeper reports how the setup ended.
    report: Option<tokio::process::ChildStdout>,
    /// The setup's private `TMPDIR` (confined), removed once the keeper has ended.
    pub(crate) tmpdir: Option<PathBuf>,
    grace: Duration,
}

/// Starts `argv` (a setup) under a keeper, the wrapper with `--keep` ([`session::wrapper`]), in `cwd`, with `env`
/// added and orch's git variables removed, its output appended to `log` (at most `log_max`
/// bytes); `grace` between SIGTERM and SIGKILL when it ends what it keeps. The keeper is in a
/// session of its own.
pub(crate) fn spawn_keeper(
    orch_bin: &Path,
    argv: &[String],
    (cwd, env, log): (&Path, &[(String, String)], &Path),
    (log_max, grace): (u64, Duration),
) -> io::Result<Keeper> {
    let mut full = session::wrapper(orch_bin);
    full.extend([
        "--keep".to_string(),
        format!("--log-max={log_max}"),
        format!("--grace-ms={}", grace.as_millis()),
        "--".to_string(),
    ]);
    full.extend(argv.iter().cloned());
    let out = open_log(log)?;
    let mut cmd = crate::agent_env::tokio_command(&full[0]);
    cmd.args(&full[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(out);
    place(cmd.as_std_mut(), cwd);
    // A setup runs the branch's code (an install's scripts): never with orch's GitHub tokens,
    // nor the exporter's headers or the outer trace context.
    for name in GIT_ENV.iter().chain(agent_env::ORCH_CREDENTIALS.iter()) {
        cmd.env_remove(name);
    }
    otel_inherited(cmd.as_std_mut());
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let mut spawned_now = lock(&SPAWNED);
    let mut child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("the keeper has no process id"))?;
    spawned_now.insert(pid);
    drop(spawned_now);
    Ok(Keeper {
        lifeline: child.stdin.take(),
        report: child.stdout.take(),
        child,
        pid,
        tmpdir: None,
        grace,
    })
}

impl Keeper {
    /// Waits for the keeper's report of how the setup ended: `Some(code)` (`None` inside:
    /// killed by a signal) and the last bytes of its output; `None` when the keeper ended
    /// without one.
    pub(crate) async fn setup_ended(&mut self) -> Option<(Option<i32>, Vec<u8>)> {
        use tokio::io::AsyncReadExt as _;
        let mut report = self.report.take()?;
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some((ended, tail)) = wrapper::parse_report(&bytes) {
                let code = match ended {
                    wrapper::Ended::Code(c) => Some(c),
                    wrapper::Ended::Signal(_) => None,
                };
                return Some((code, tail));
            }
            // A report is a few KiB: more is not one.
            match report.read(&mut buf).await {
                Ok(n) if n > 0 && bytes.len() < 64 * 1024 => bytes.extend_from_slice(&buf[..n]),
                _ => return None,
            }
        }
    }

    /// Ends the keeper and what it keeps: its lifeline closed (it passes SIGTERM on, then
    /// SIGKILL after its grace), waited for, its session killed should it not end in time.
    pub(crate) async fn end(mut self) {
        self.lifeline = None;
        let pid = self.pid;
        if tokio::time::timeout(self.grace + Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            signal_group(pid, Signal::SIGKILL);
            let _ = self.child.wait().await;
        }
        kill_session(pid);
        lock(&SPAWNED).remove(&pid);
        if let Some(tmp) = self.tmpdir.take() {
            let _ = tokio::task::spawn_blocking(move || {
                crate::sandbox::remove_tmp(&tmp);
            })
            .await;
        }
    }
}

/// Keeps `keeper` (a setup that succeeded) until the end of the run.
pub(crate) fn keep(keeper: Keeper) {
    lock(&KEEPERS).push(keeper);
}

/// Ends every keeper of the run ([`keep`]), and what each kept.
pub(crate) async fn end_keepers() {
    let keepers: Vec<Keeper> = std::mem::take(&mut *lock(&KEEPERS));
    let ends: Vec<_> = keepers.into_iter().map(Keeper::end).collect();
    for end in ends {
        end.await;
    }
}

/// Runs a command in `dir` as a shell would: `PWD` names `dir` (absolute), and nothing else of
/// orch's own location is passed on (`OLDPWD` removed). Every child orch starts goes through
/// this (agents, checks, setup, verify, resolvers, notify commands, git): a program that takes
/// its directory from `PWD` (opencode) then works where orch put it.
pub(crate) fn place(cmd: &mut std::process::Command, dir: &Path) {
    cmd.current_dir(dir).env_remove("OLDPWD");
    match std::path::absolute(dir) {
        Ok(abs) => cmd.env("PWD", abs),
        Err(_) => cmd.env_remove("PWD"),
    };
}

/// [`place`] in orch's own current directory, for a command that runs there.
pub(crate) fn place_here(cmd: &mut std::process::Command) {
    match std::env::current_dir() {
        Ok(dir) => place(cmd, &dir),
        Err(_) => {
            cmd.env_remove("OLDPWD").env_remove("PWD");
        }
    }
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

/// [`agent_env::scrub`]: what a command orch starts inherits of OpenTelemetry's variables.
pub(crate) fn otel_inherited(cmd: &mut std::process::Command) {
    agent_env::scrub(cmd);
}

#[cfg(test)]
mod tests;
