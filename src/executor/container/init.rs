//! `orch container-init`: the first process of a plan's container, which keeps it running
//! between attempts (orch's own executable, mounted read-only). It reaps what is re-parented to
//! it and ends on SIGTERM, SIGINT or SIGHUP. It is the one process of the container that outlives
//! every attempt, so nothing of an attempt may run inside it: it is made not dumpable, and a
//! process that is not dumpable can be traced, or have its memory read or written, only with
//! `CAP_SYS_PTRACE`, which no process of the container has (podman's default set lacks it, and
//! orch adds none). An agent running as the same user with the sandbox off cannot make it run
//! code of its own (a `ptrace` of podman's init or a `sleep` keeper could).

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

/// The argument of orch's executable that runs [`run`].
pub(crate) const COMMAND: &str = "container-init";

/// Runs the container's first process; its exit code: 0 on SIGTERM, SIGINT or SIGHUP, 3 when it
/// cannot make itself not dumpable (it never keeps a container then), 4 when it cannot block its
/// signals, 1 when waiting for them fails (podman's `ps -a` shows the code).
pub(crate) fn run() -> u8 {
    if nix::sys::prctl::set_dumpable(false).is_err() {
        return 3;
    }
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        set.add(s);
    }
    if set.thread_block().is_err() {
        return 4;
    }
    loop {
        match set.wait() {
            Ok(Signal::SIGCHLD) => {
                // Every child that ended: one signal may stand for several.
                while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    if status == WaitStatus::StillAlive {
                        break;
                    }
                }
            }
            Ok(_) => return 0,
            Err(_) => return 1,
        }
    }
}
