//! Ctrl-C and SIGTERM during `orch merge`: the first one lets the current step end cleanly (a
//! running verify command is stopped, the staging worktree removed, the target not moved); the
//! second one kills the verify command's process group and exits at once.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use nix::sys::signal::Signal;

use crate::exit;
use crate::process::signal_group;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The process group of the running verify command, 0 when none runs.
static RUNNING_GROUP: AtomicU32 = AtomicU32::new(0);
static INSTALL: Once = Once::new();

/// Starts listening for SIGINT and SIGTERM (on a thread of its own). Once called, the signals no
/// longer kill orch: it checks [`interrupted`] and stops by itself.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("orch-merge-signals".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    let _ = ready_tx.send(());
                    return;
                };
                runtime.block_on(async move {
                    use tokio::signal::unix::{SignalKind, signal};
                    let (Ok(mut int), Ok(mut term)) = (
                        signal(SignalKind::interrupt()),
                        signal(SignalKind::terminate()),
                    ) else {
                        let _ = ready_tx.send(());
                        return;
                    };
                    let _ = ready_tx.send(());
                    loop {
                        tokio::select! {
                            _ = int.recv() => {}
                            _ = term.recv() => {}
                        }
                        if INTERRUPTED.swap(true, Ordering::SeqCst) {
                            let group = RUNNING_GROUP.load(Ordering::SeqCst);
                            if group != 0 {
                                signal_group(group, Signal::SIGKILL);
                            }
                            eprintln!("orch merge: interrupted twice, stopping now");
                            std::process::exit(i32::from(exit::INTERRUPTED));
                        }
                        eprintln!(
                            "orch merge: interrupted; finishing the current step without moving the target (Ctrl-C again to stop now)"
                        );
                    }
                });
            });
        // Wait until the handlers are in place, so a signal from now on is never lost.
        if spawned.is_ok() {
            let _ = ready_rx.recv();
        }
    });
}

/// Whether a SIGINT or SIGTERM arrived since [`install`].
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// For a process that handles its own signals (the supervisor, which runs the merge train with
/// [`super::merge_plan_now`]): the running merge stops as after a first Ctrl-C of `orch merge`
/// (a running verify command is stopped, the target is not moved), and later ones do not start.
pub(crate) fn request() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// As a second Ctrl-C of `orch merge`, without exiting: [`request`], and the running verify
/// command's process group is killed now.
pub(crate) fn stop_now() {
    request();
    let group = RUNNING_GROUP.load(Ordering::SeqCst);
    if group != 0 {
        signal_group(group, Signal::SIGKILL);
    }
}

/// Records the process group of the verify command now running (0: none).
pub(crate) fn set_running_group(pgid: u32) {
    RUNNING_GROUP.store(pgid, Ordering::SeqCst);
}
