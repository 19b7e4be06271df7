//! One supervisor per repository: who runs, and how the others can tell.
//!
//! Three files, none of which an agent can use to stop the next `orch up`:
//! - the **gate**, an exclusive lock taken in orch's private directory for
//!   `<state_dir>/supervisor.lock` ([`crate::sandbox::try_private_lock`]): what decides whether
//!   an `orch up` (or a command that never runs beside one) starts. No confined process sees that
//!   directory (an empty file system lies over it) and no container mounts it, so no agent can
//!   hold the gate after the `orch up` that held it is killed.
//! - `<state_dir>/supervisor.lock`, the holder's JSON (`pid`, `host`, `startedAt`), which a
//!   second `orch up` names, also locked for the run where it can be (an agent that may read
//!   it may lock it: such a lock decides nothing, only one that names another machine's holder:
//!   a state directory shared by machines).
//! - `<state_dir>/.supervisor.live` ([`LIVE`]), the same JSON in a file made anew (a new inode)
//!   by each run at its start and locked by it for the run: how a process on another machine or
//!   in a container (where the holder's pid cannot be checked) tells that `orch up` runs
//!   ([`running`]); a container is handed this file, never the lock. A lock an agent holds on an
//!   earlier run's file is on a file no later run uses.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub(crate) use crate::state_layout::SUPERVISOR_LIVE as LIVE;

/// What the lock file says about its holder.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Holder {
    pub(crate) pid: u32,
    pub(crate) host: Option<String>,
    pub(crate) started_at: String,
}

/// Held until dropped (the OS releases the locks when the process dies, even by `kill -9`).
pub(crate) struct SupervisorLock {
    _gate: File,
    _file: File,
    _live: File,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    #[error("cannot open the supervisor lock `{path}`")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another `orch up` is running in this repository ({})", describe(.holder.as_ref()))]
    Held {
        path: PathBuf,
        holder: Option<Holder>,
    },
}

fn describe(h: Option<&Holder>) -> String {
    match h {
        Some(h) => format!(
            "pid {} on {} since {}",
            h.pid,
            h.host.as_deref().unwrap_or("this host"),
            h.started_at
        ),
        None => "holder unknown".to_string(),
    }
}

/// The holder `file` names (at most 64 KiB of it read), if it names one.
fn holder_in(mut file: &File) -> Option<Holder> {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.take(64 << 10).read_to_string(&mut text);
    serde_json::from_str(&text).ok()
}

impl SupervisorLock {
    /// Takes the gate of `state_dir` (and its lock file, its liveness file) or says who holds it.
    pub(crate) fn acquire(state_dir: &Path) -> Result<Self, LockError> {
        let path = state_dir.join("supervisor.lock");
        let open_err = |source| LockError::Open {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(open_err)?;
        // orch's directories are the lead's alone: no other user of this machine reaches what
        // agents leave there (a set-user-ID program an agent made in its worktree, as root
        // with no capability, or as a container's root; its report and client directories).
        crate::links::own_only(state_dir);
        if let Some(orch_dir) = state_dir.parent().filter(|p| p.ends_with(".orch")) {
            crate::links::own_only(orch_dir);
        }
        let mut file = crate::links::open_lock(&path).map_err(open_err)?;
        // A FIFO or a device planted at the lock's name is never read (a read would wait).
        if let Ok(m) = file.metadata()
            && let Some(kind) = crate::untrusted::read::kind_of(&m)
        {
            return Err(open_err(std::io::Error::other(format!(
                "`{}` is {kind}, not a regular file (remove it)",
                path.display()
            ))));
        }
        // A holder that is dead can still hold the gate for a moment: a child it was forking
        // when it was killed keeps the descriptor until its exec closes it. Wait for that.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let gate = loop {
            match crate::sandbox::try_private_lock(&path) {
                Ok(Some(gate)) => break gate,
                Ok(None) => {
                    let holder = holder_in(&file);
                    // Only a holder on this host can be checked.
                    let holder_dead = holder.as_ref().is_some_and(|h| {
                        h.host == crate::process::hostname()
                            && !crate::process::process_alive(h.pid, 0)
                    });
                    if !holder_dead || std::time::Instant::now() >= deadline {
                        return Err(LockError::Held { path, holder });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(open_err(e)),
            }
        };
        // The file's own lock: held by no `orch up` of this machine (this one holds the gate).
        // Held, it stops this one only when it names a holder on another machine (a state
        // directory shared between machines, whose gates are each their own); whatever else
        // holds it (an agent that may read it) is let be.
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = holder_in(&file);
                let elsewhere = holder
                    .as_ref()
                    .is_some_and(|h| h.host.is_some() && h.host != crate::process::hostname());
                if elsewhere {
                    return Err(LockError::Held { path, holder });
                }
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(open_err(e)),
        }
        let holder = Holder {
            pid: std::process::id(),
            host: crate::process::hostname(),
            started_at: crate::status::timestamp(chrono::Utc::now()),
        };
        let text = serde_json::to_string(&holder).unwrap_or_default();
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = file.write_all(text.as_bytes());
        let _ = file.flush();
        let live = fresh_live(state_dir, &text).map_err(|source| LockError::Open {
            path: state_dir.join(LIVE),
            source,
        })?;
        Ok(Self {
            _gate: gate,
            _file: file,
            _live: live,
        })
    }
}

/// Makes `<state_dir>/.supervisor.live` anew: `text` written to a new file, locked, then renamed
/// over the earlier run's (a link or anything else at either name is replaced, never followed).
fn fresh_live(state_dir: &Path, text: &str) -> std::io::Result<File> {
    let tmp = state_dir.join(format!("{LIVE}.{}.tmp", std::process::id()));
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut live = crate::links::no_follow()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    let made = live
        .write_all(text.as_bytes())
        .and_then(|()| live.flush())
        .and_then(|()| live.lock())
        .and_then(|()| std::fs::rename(&tmp, state_dir.join(LIVE)));
    if let Err(e) = made {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(live)
}

/// The `orch up` running for `state_dir`, if one runs: the holder its liveness file names (or,
/// written by an earlier orch, its lock file), alive on this host (its pid), or on another host
/// (or seen from a container) holding that file's lock. Takes no lock itself.
pub(crate) fn running(state_dir: &Path) -> Option<Holder> {
    let live = state_dir.join(LIVE);
    let path = if std::fs::symlink_metadata(&live).is_ok() {
        live
    } else {
        state_dir.join("supervisor.lock")
    };
    let text = crate::untrusted::read::small_text(&path).ok()?;
    let holder: Holder = serde_json::from_str(&text).ok()?;
    if holder.host == crate::process::hostname() {
        return crate::process::process_alive(holder.pid, 0).then_some(holder);
    }
    let (file, _) = crate::untrusted::read::open(&path).ok()?;
    match file.try_lock_shared() {
        Err(std::fs::TryLockError::WouldBlock) => Some(holder),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_names_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = SupervisorLock::acquire(dir.path()).expect("first");
        match SupervisorLock::acquire(dir.path()) {
            Err(LockError::Held {
                holder: Some(h), ..
            }) => {
                assert_eq!(h.pid, std::process::id());
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("the lock was taken twice"),
        }
        assert_eq!(running(dir.path()).map(|h| h.pid), Some(std::process::id()));
        drop(first);
        assert!(SupervisorLock::acquire(dir.path()).is_ok());
    }

    /// A lock on `supervisor.lock` or on a run's liveness file, taken by another open of the
    /// file (as an agent that may read it would: exclusive or shared) after the run let go,
    /// stops no next run; each run makes a new liveness file, which it holds.
    #[test]
    fn a_lock_held_on_the_files_by_another_stops_no_next_run() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let first = SupervisorLock::acquire(dir.path()).expect("first");
        let live_ino = |d: &Path| std::fs::metadata(d.join(LIVE)).expect("live").ino();
        let before = live_ino(dir.path());
        let lock = File::open(dir.path().join("supervisor.lock")).expect("open");
        let live = File::open(dir.path().join(LIVE)).expect("open");
        assert!(lock.try_lock_shared().is_err() && live.try_lock_shared().is_err());
        drop(first);
        for exclusive in [true, false] {
            if exclusive {
                lock.lock().expect("lock");
                live.lock().expect("lock");
            } else {
                lock.lock_shared().expect("lock");
                live.lock_shared().expect("lock");
            }
            let next = SupervisorLock::acquire(dir.path()).expect("the next run starts");
            assert_ne!(
                live_ino(dir.path()),
                before,
                "the liveness file was not made anew"
            );
            assert_eq!(running(dir.path()).map(|h| h.pid), Some(std::process::id()));
            // The new liveness file is the run's: held by it.
            let now = File::open(dir.path().join(LIVE)).expect("open");
            assert!(now.try_lock_shared().is_err());
            drop(next);
            lock.unlock().expect("unlock");
            live.unlock().expect("unlock");
        }
    }

    /// A holder on another machine (a shared state directory) holding `supervisor.lock` is not
    /// passed over.
    #[test]
    fn a_holder_on_another_machine_is_not_passed_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("supervisor.lock");
        let other = Holder {
            pid: 1,
            host: Some("another-machine.invalid".into()),
            started_at: "2026-01-01T00:00:00.000Z".into(),
        };
        std::fs::write(&path, serde_json::to_string(&other).expect("json")).expect("write");
        let held = File::open(&path).expect("open");
        held.lock_shared().expect("lock");
        match SupervisorLock::acquire(dir.path()) {
            Err(LockError::Held {
                holder: Some(h), ..
            }) => assert_eq!(h.host.as_deref(), Some("another-machine.invalid")),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("started beside another machine's run"),
        }
        drop(held);
        assert!(SupervisorLock::acquire(dir.path()).is_ok());
    }
}
