//! One supervisor per repository: an exclusive lock on `<state_dir>/supervisor.lock`, holding
//! who took it so that a second `orch up` can say.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What the lock file says about its holder.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Holder {
    pub(crate) pid: u32,
    pub(crate) host: Option<String>,
    pub(crate) started_at: String,
}

/// Held until dropped (the OS releases the lock when the process dies, even by `kill -9`).
pub(crate) struct SupervisorLock {
    _file: File,
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

impl SupervisorLock {
    /// Takes the lock at `state_dir/supervisor.lock` or says who holds it.
    pub(crate) fn acquire(state_dir: &Path) -> Result<Self, LockError> {
        let path = state_dir.join("supervisor.lock");
        let open_err = |source| LockError::Open {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(open_err)?;
        let mut file = crate::links::no_follow()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| crate::links::refused(&path, e))
            .map_err(open_err)?;
        // A FIFO or a device planted at the lock's name is never read (a read would wait).
        if let Ok(m) = file.metadata()
            && let Some(kind) = crate::untrusted::read::kind_of(&m)
        {
            return Err(open_err(std::io::Error::other(format!(
                "`{}` is {kind}, not a regular file (remove it)",
                path.display()
            ))));
        }
        // A holder that is dead can still hold the lock for a moment: a child it was forking
        // when it was killed keeps the descriptor until its exec closes it. Wait for that.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    let _ = file.seek(SeekFrom::Start(0));
                    let _ = (&file).take(64 << 10).read_to_string(&mut text);
                    let holder: Option<Holder> = serde_json::from_str(&text).ok();
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
                Err(std::fs::TryLockError::Error(e)) => return Err(open_err(e)),
            }
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
        Ok(Self { _file: file })
    }
}

/// The `orch up` holding the lock of `state_dir`, if one runs (on this host: its pid is alive;
/// on another host: it holds the lock). Takes no lock itself.
pub(crate) fn running(state_dir: &Path) -> Option<Holder> {
    let text = crate::untrusted::read::small_text(&state_dir.join("supervisor.lock")).ok()?;
    let holder: Holder = serde_json::from_str(&text).ok()?;
    if holder.host == crate::process::hostname() {
        return crate::process::process_alive(holder.pid, 0).then_some(holder);
    }
    let (file, _) = crate::untrusted::read::open(&state_dir.join("supervisor.lock")).ok()?;
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
}
