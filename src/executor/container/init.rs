//! `orch container-init`: the first process of a plan's container, which keeps it running
//! between attempts (orch's own executable, mounted read-only). It reaps what is re-parented to
//! it and ends on SIGTERM, SIGINT or SIGHUP sent from outside the container's pid namespace
//! (podman's `stop`, orch's `rm -f` sends SIGKILL from there anyway); the same signals from a
//! process of the container (an agent's `kill -TERM 1`, `kill -HUP -1` spares pid 1 already,
//! a forged `sigqueue`) are read and ignored: a container dies only by orch's hand, or a
//! person's. They are read from a signalfd, whose record names the sender as the keeper's
//! namespace numbers it: 0 for a process outside it, which only `kill` from there gives with
//! `SI_USER` (a process inside may forge the sender of a `sigqueue`, whose code is then
//! negative, never `SI_USER`). The signals it does not take (SIGKILL, SIGSTOP, the others) a
//! process of its namespace cannot send to its first process at all (the kernel drops them
//! there).
//!
//! It is the one process of the container that outlives every attempt, so nothing of an
//! attempt may run inside it: it is made not dumpable, and a process that is not dumpable can
//! be traced, or have its memory read or written, only with `CAP_SYS_PTRACE`, which no process
//! of the container has (podman's default set lacks it, and orch adds none). An agent running
//! as the same user with the sandbox off cannot make it run code of its own (a `ptrace` of
//! podman's init or a `sleep` keeper could).

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

/// The argument of orch's executable that runs [`run`].
pub(crate) const COMMAND: &str = "container-init";

/// The signals that end it, from outside.
const ENDING: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

/// Runs the container's first process; its exit code: 0 on SIGTERM, SIGINT or SIGHUP from
/// outside its pid namespace (the one way it ends by itself: orch's executor takes a container
/// stopped with 0 for one stopped from outside, any other end for the doing of what ran in
/// it), 3 when it cannot make itself not dumpable (it never keeps a container then), 4 when it
/// cannot block its signals or open its signalfd, 1 when reading it fails (podman's `ps -a`
/// shows the code).
pub(crate) fn run() -> u8 {
    if nix::sys::prctl::set_dumpable(false).is_err() {
        return 3;
    }
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in ENDING {
        set.add(s);
    }
    if set.thread_block().is_err() {
        return 4;
    }
    let Ok(fd) = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC) else {
        return 4;
    };
    loop {
        let info = match fd.read_signal() {
            Ok(Some(info)) => info,
            // Interrupted, or nothing pending (a blocking read does not say so).
            Ok(None) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 1,
        };
        let Ok(signal) = Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or(0)) else {
            continue;
        };
        if signal == Signal::SIGCHLD {
            // Every child that ended: one signal may stand for several.
            reap();
        } else if ENDING.contains(&signal) && from_outside(info.ssi_pid, info.ssi_code) {
            return 0;
        }
    }
}

/// Whether a signal whose record names sender `pid` with code `code` came from outside the
/// keeper's pid namespace: `kill` (or `pidfd_send_signal`) from a process there, which the
/// keeper's namespace numbers 0.
pub(crate) fn from_outside(pid: u32, code: i32) -> bool {
    pid == 0 && matches!(code, nix::libc::SI_USER | nix::libc::SI_TKILL)
}

/// Reaps every child that ended.
fn reap() {
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_kill_from_outside_ends_it() {
        // `kill` from outside the namespace: the sender is not in it.
        assert!(from_outside(0, nix::libc::SI_USER));
        assert!(from_outside(0, nix::libc::SI_TKILL));
        // `kill` from a process of the container.
        assert!(!from_outside(7, nix::libc::SI_USER));
        // A `sigqueue` from inside naming no sender (its code is negative, never `SI_USER`).
        assert!(!from_outside(0, nix::libc::SI_QUEUE));
        assert!(!from_outside(0, -60));
        // The kernel's own (a terminal's hang-up: the keeper has none).
        assert!(!from_outside(0, nix::libc::SI_KERNEL));
    }
}
