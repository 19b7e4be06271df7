//! A wrapper (`orch session-exec`) that orch outlives by a record of its own, for a run that is
//! not an attempt of `orch up` (whose wrappers are recorded in the status files): a resolver
//! of `orch merge` or `orch resolve`. orch writes the wrapper's pid and start time into a file
//! of its state directory before the gated wrapper starts anything ([`write`]); a later run
//! reads that record and stops the wrapper it names, with everything it left ([`stop`]). Which
//! process is stopped is decided from that record alone, never from what a process says of
//! itself (its environment, its group, its session).

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::procfs::stat_of;

/// Records wrapper `pid` (its start time read now) at `record`, never through a link. Returns
/// whether it was recorded: a wrapper that is not must not be let run.
pub(crate) fn write(record: &Path, pid: u32) -> bool {
    let start = super::process_start_time(pid);
    if start == 0 {
        return false;
    }
    if let Some(d) = record.parent()
        && std::fs::create_dir_all(d).is_err()
    {
        return false;
    }
    crate::links::write(record, format!("{pid} {start}\n").as_bytes()).is_ok()
}

/// The wrapper recorded at `record`, if that record reads as one: (pid, start time).
fn read(record: &Path) -> Option<(u32, u64)> {
    let bytes = crate::untrusted::read::optional(record, crate::untrusted::read::REPORT).ok()??;
    let text = String::from_utf8_lossy(&bytes);
    let mut words = text.split_whitespace();
    let pid: u32 = words.next()?.parse().ok()?;
    let start: u64 = words.next()?.parse().ok()?;
    (pid > 1 && start > 0).then_some((pid, start))
}

/// Stops the wrapper recorded at `record` when it still runs (the same process: pid and start
/// time), then forgets the record: SIGTERM to the wrapper, which ends every process its child
/// left (it is their subreaper, whatever session or group they moved to) and exits; one still
/// there after `grace` and a few seconds more gets SIGKILL, with its session's group. Returns
/// whether a wrapper was running.
pub(crate) fn stop(record: &Path, grace: Duration) -> bool {
    let Some((pid, start)) = read(record) else {
        let _ = std::fs::remove_file(record);
        return false;
    };
    let same = || stat_of(pid).is_some_and(|st| st.state != 'Z' && st.start_time == start);
    let running = same();
    if running && let Ok(raw) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(raw), Signal::SIGTERM);
        let deadline = Instant::now() + grace + Duration::from_secs(5);
        let mut pause = Duration::from_millis(5);
        while same() && Instant::now() < deadline {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
        if same() {
            // Still the wrapper (its pid is not another's yet): its session's group, which it
            // leads, goes with it.
            super::signal_group(pid, Signal::SIGKILL);
            let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
        }
    }
    let _ = std::fs::remove_file(record);
    running
}

/// Forgets the record at `record` (its wrapper ended).
pub(crate) fn forget(record: &Path) {
    let _ = std::fs::remove_file(record);
}
