//! Watching one attempt's process (or batch job) until it ends: its exit, a stop the core asked
//! for (timeout, stuck), a Ctrl-C; stopping its whole process group; and telling the core when
//! it shows signs of life. Decides nothing: the core does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::process::Child;
use chrono::Utc;
use nix::sys::signal::Signal;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::core::Input;
use super::msg::{Msg, Tx};
pub(crate) use super::state::Stop;
use super::state::{Ending, RunId, StopWhy};
use crate::executor::{JobEnd, JobState, JobTracker, NOT_SHARED_EXIT};
use crate::process::{log_line, process_alive, signal_group, stop_wrapper};
use crate::status;

/// The process an attempt watches.
pub(crate) enum Proc {
    /// Spawned by this supervisor.
    Child(Child),
    /// Left by an earlier supervisor: its start time (its pid, the process group, is the
    /// attempt's `pid`).
    Adopted { start_time: u64 },
    /// A batch job (submitted now or found again after a restart), followed by the tracker.
    Job {
        id: String,
        state: watch::Receiver<JobState>,
        tracker: Arc<JobTracker>,
    },
}

/// Everything the watch of one attempt needs.
pub(crate) struct Monitor {
    pub(crate) run: RunId,
    pub(crate) plan: usize,
    pub(crate) attempt: u32,
    pub(crate) pid: u32,
    pub(crate) proc: Proc,
    pub(crate) log: PathBuf,
    pub(crate) status_path: PathBuf,
    pub(crate) grace: Duration,
    /// Report signs of life (stuck detection is on).
    pub(crate) watch_activity: bool,
    /// The attempt's private TMPDIR (confined attempts), removed when it ends.
    pub(crate) tmpdir: Option<PathBuf>,
    /// The attempt's private copy of its client's state (confined attempts), removed when it
    /// ends.
    pub(crate) client_state: Option<PathBuf>,
    /// What of its client's session to keep for the task's next attempt (a preset whose
    /// session orch resumes), before the private state is removed.
    pub(crate) keep: Option<super::resume::Keep>,
    /// Where the attempt's wrapper records how its agent ended: how an adopted agent's end is
    /// known (orch is not its parent).
    pub(crate) ended: PathBuf,
    /// Where an attempt that moves between machines records the one it runs on (an ssh
    /// attempt's driver, the host it takes): each is told to the core ([`Input::OnHost`]).
    pub(crate) host_record: Option<crate::executor::PlaceRecord>,
    /// The host last told to the core from [`Self::host_record`].
    pub(crate) told_host: Option<String>,
    /// Where the wrapper of an attempt with streaming input records the end of its agent's
    /// first turn: told to the core once ([`Input::TurnEnded`]).
    pub(crate) turn_ended: Option<PathBuf>,
    /// A stop of this attempt, asked for by the core.
    pub(crate) stop_one: watch::Receiver<Option<StopWhy>>,
    /// A stop of every attempt (Ctrl-C).
    pub(crate) stop_all: watch::Receiver<Stop>,
    pub(crate) tx: Tx,
}

/// Watches the attempt to its end, stops its process group, and reports the ending.
pub(crate) async fn watch(mut m: Monitor) {
    let ending = match m.proc {
        Proc::Job { .. } => watch_job(&mut m).await,
        _ => watch_process(&mut m).await,
    };
    // An attempt that ended between two looks still says where it ran, before its end.
    tell_host(&mut m);
    // Whatever the leader did, nothing of its session (or group) may outlive it, nor what it
    // left behind re-parented to orch.
    match m.proc {
        Proc::Child(_) => crate::process::end_session(m.pid).await,
        _ => {
            signal_group(m.pid, Signal::SIGKILL);
        }
    }
    if let Some(tmp) = m.tmpdir.take() {
        let _ = tokio::task::spawn_blocking(move || {
            crate::sandbox::remove_tmp(&tmp);
        })
        .await;
    }
    // The wrapper's record of the ending has been read (or is not needed: orch saw it).
    if !m.ended.as_os_str().is_empty() {
        let _ = std::fs::remove_file(&m.ended);
    }
    if let Some(keep) = m.keep.take() {
        let log = m.log.clone();
        let _ = tokio::task::spawn_blocking(move || super::resume::keep(&keep, &log)).await;
    }
    if let Some(dir) = m.client_state.take() {
        let _ = tokio::task::spawn_blocking(move || super::client_state::remove(&dir)).await;
    }
    // What the client said (usage, its error), from this attempt's part of the log.
    let log = m.log.clone();
    let output =
        tokio::task::spawn_blocking(move || crate::agent_output::read_attempt(&log, Utc::now()))
            .await
            .unwrap_or_default();
    log_line(
        &m.log,
        &format!(
            "=== orch: attempt {} ended at {}: {} ===",
            m.attempt,
            status::timestamp(Utc::now()),
            ending.describe()
        ),
    );
    let _ = m.tx.send(Msg {
        reload: Some(m.plan),
        input: Input::Exited {
            run: m.run,
            ending,
            output,
        },
    });
}

impl From<StopWhy> for Ending {
    fn from(why: StopWhy) -> Self {
        match why {
            StopWhy::TimedOut(d) => Ending::TimedOut(d),
            StopWhy::Stuck(d) => Ending::Stuck(d),
            StopWhy::User => Ending::Stopped,
        }
    }
}

async fn watch_process(m: &mut Monitor) -> Ending {
    // An agent whose input streams waits for orch to close it once its turn ended: looked at
    // often.
    let mut tick = tokio::time::interval(Duration::from_millis(match m.proc {
        Proc::Child(_) if m.turn_ended.is_none() => 500,
        _ => 100,
    }));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut activity = Activity::new(&m.log, &m.status_path);
    let (pid, grace, run) = (m.pid, m.grace, m.run);
    // An adopted process is not ours to wait for: it is looked at on each tick.
    let adopted = match m.proc {
        Proc::Adopted { start_time } => Some(start_time),
        Proc::Child(_) => None,
        Proc::Job { .. } => return Ending::Exited(None),
    };
    // The attempt runs under its wrapper (`pid`), which stops it as a whole.
    let start_time = adopted.unwrap_or(0);
    loop {
        let asked = *m.stop_one.borrow_and_update();
        let mut child = match &mut m.proc {
            Proc::Child(child) => Some(child),
            _ => None,
        };
        if let Some(why) = asked {
            stop_wrapper(pid, start_time, grace, child).await;
            return why.into();
        }
        let all = *m.stop_all.borrow_and_update();
        if all == Stop::Now {
            stop_wrapper(pid, start_time, grace, child).await;
            return Ending::Stopped;
        }
        // A first Ctrl-C lets running agents finish; an attempt still waiting for a machine
        // (an ssh attempt whose hosts are down or full: no record of one yet) runs no agent,
        // and would hold the run until a host came back: stopped, not counted (red team 7: the
        // run waited five minutes for a host that was down).
        if all == Stop::Drain && m.host_record.as_ref().is_some_and(|r| r.now().is_none()) {
            log_line(
                &m.log,
                "=== orch: interrupted while the attempt waited for a host: stopped (not counted) ===",
            );
            stop_wrapper(pid, start_time, grace, child).await;
            return Ending::Stopped;
        }
        tokio::select! {
            code = exit_of(child.as_deref_mut()) => return Ending::Exited(code),
            changed = m.stop_one.changed() => if changed.is_err() {
                stop_wrapper(pid, start_time, grace, child).await;
                return Ending::Stopped;
            },
            changed = m.stop_all.changed() => if changed.is_err() {
                stop_wrapper(pid, start_time, grace, child).await;
                return Ending::Stopped;
            },
            _ = tick.tick() => {
                if adopted.is_some_and(|start_time| !process_alive(pid, start_time)) {
                    // Its wrapper's record, when it ended by itself (before or since orch
                    // adopted it): the attempt is settled by its exit code, not run again.
                    return Ending::Exited(crate::process::wrapper::read_ended(&m.ended));
                }
                if m.watch_activity && activity.changed() {
                    let _ = m.tx.send(Msg { reload: None, input: Input::Active { run } });
                }
                if m.turn_ended.as_deref().is_some_and(crate::process::stream_input::turn_ended) {
                    m.turn_ended = None;
                    let _ = m.tx.send(Msg { reload: None, input: Input::TurnEnded { run } });
                }
                tell_host(m);
            }
        }
    }
}

/// Tells the core the host the attempt's record names, when it is new ([`Input::OnHost`]).
fn tell_host(m: &mut Monitor) {
    if let Some(now) = m
        .host_record
        .as_ref()
        .and_then(crate::executor::PlaceRecord::now)
        && m.told_host.as_ref() != Some(&now)
    {
        m.told_host = Some(now.clone());
        let _ = m.tx.send(Msg {
            reload: None,
            input: Input::OnHost {
                run: m.run,
                host: now,
            },
        });
    }
}

/// The exit code of `child` once it ends; never, without one.
async fn exit_of(child: Option<&mut Child>) -> Option<i32> {
    match child {
        Some(child) => child.wait().await.ok().and_then(|s| exit_code(&s)),
        None => std::future::pending().await,
    }
}

/// Follows a batch job to its end: the tracker's state changes and stop requests (which cancel
/// the job and wait for it to be over). A job still queued counts as alive.
async fn watch_job(m: &mut Monitor) -> Ending {
    let Proc::Job { id, state, tracker } = &mut m.proc else {
        return Ending::Exited(None);
    };
    let (id, tracker) = (id.clone(), tracker.clone());
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut activity = Activity::new(&m.log, &m.status_path);
    // Cancelling waits this long for the job to be over before the attempt is settled anyway.
    let settle_wait = m.grace + Duration::from_secs(60);
    let mut drained = false;
    loop {
        let now = state.borrow_and_update().clone();
        if let JobState::Ended(end) = now {
            if drained && end == JobEnd::Cancelled {
                return Ending::Stopped;
            }
            return job_ending(&id, end);
        }
        let asked = *m.stop_one.borrow_and_update();
        if let Some(why) = asked {
            cancel_job(&tracker, &id, state, settle_wait, &m.log).await;
            return why.into();
        }
        let stop = *m.stop_all.borrow_and_update();
        if stop == Stop::Now {
            cancel_job(&tracker, &id, state, settle_wait, &m.log).await;
            return Ending::Stopped;
        }
        if stop == Stop::Drain && !drained && now == JobState::Queued {
            // Only if it still waits: the tracker's view may be a poll old.
            drained = true;
            if let Err(e) = tracker.cancel_queued(&id).await {
                log_line(
                    &m.log,
                    &format!("=== orch: cannot cancel job {id}: {e} ==="),
                );
            }
            continue;
        }
        tokio::select! {
            changed = state.changed() => {
                if changed.is_err() {
                    // The tracker is gone: the run is ending.
                    return Ending::Stopped;
                }
            }
            changed = m.stop_one.changed() => if changed.is_err() {
                cancel_job(&tracker, &id, state, settle_wait, &m.log).await;
                return Ending::Stopped;
            },
            changed = m.stop_all.changed() => if changed.is_err() {
                cancel_job(&tracker, &id, state, settle_wait, &m.log).await;
                return Ending::Stopped;
            },
            _ = tick.tick() => {
                // A queued job writes nothing: only a running one can be stuck.
                let queued = *state.borrow() != JobState::Running;
                if m.watch_activity && (activity.changed() || queued) {
                    let _ = m.tx.send(Msg { reload: None, input: Input::Active { run: m.run } });
                }
            }
        }
    }
}

/// How a job's end reads as an attempt's ending: the agent's exit status, or the job's fate.
fn job_ending(id: &str, end: JobEnd) -> Ending {
    match end {
        JobEnd::Exited(code) if code != NOT_SHARED_EXIT => Ending::Exited(Some(code)),
        // Unknown: like an adopted process found gone (the task's report decides).
        JobEnd::Gone => Ending::Exited(None),
        end => Ending::Job {
            id: id.to_string(),
            end,
        },
    }
}

/// Cancels a job and waits (up to `wait`) until the scheduler says it is over, so that its
/// agent no longer writes into the worktree when the attempt is settled.
async fn cancel_job(
    tracker: &Arc<JobTracker>,
    id: &str,
    state: &mut watch::Receiver<JobState>,
    wait: Duration,
    log: &std::path::Path,
) {
    if let Err(e) = tracker.cancel(id).await {
        log_line(log, &format!("=== orch: cannot cancel job {id}: {e} ==="));
    }
    let until = Instant::now() + wait;
    while !state.borrow().is_over() {
        tokio::select! {
            changed = state.changed() => if changed.is_err() { return },
            () = sleep_until(until) => {
                log_line(
                    log,
                    &format!("=== orch: job {id} was cancelled but is not over after {} ===", crate::manifest::format_duration(wait)),
                );
                return;
            }
        }
    }
}

fn exit_code(s: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    s.code().or_else(|| s.signal().map(|sig| 128 + sig))
}

/// Output written or the status file changed: the signs that an agent is alive and working.
struct Activity {
    log: PathBuf,
    status: PathBuf,
    seen: Sample,
}

/// What [`Activity`] compares: the log's length and time, the status file's time.
type Sample = (
    u64,
    Option<std::time::SystemTime>,
    Option<std::time::SystemTime>,
);

impl Activity {
    fn new(log: &std::path::Path, status: &std::path::Path) -> Self {
        let mut a = Self {
            log: log.to_path_buf(),
            status: status.to_path_buf(),
            seen: (0, None, None),
        };
        a.seen = a.sample();
        a
    }

    /// The log's length and time (the wrapper touches the time while the log cap holds output
    /// back), the status file's time.
    fn sample(&self) -> Sample {
        let log = std::fs::metadata(&self.log).ok();
        let len = log.as_ref().map_or(0, std::fs::Metadata::len);
        let log_time = log.and_then(|m| m.modified().ok());
        let mtime = std::fs::metadata(&self.status)
            .and_then(|m| m.modified())
            .ok();
        (len, log_time, mtime)
    }

    /// Whether something changed since the last look.
    fn changed(&mut self) -> bool {
        let now = self.sample();
        if now != self.seen {
            self.seen = now;
            return true;
        }
        false
    }
}
