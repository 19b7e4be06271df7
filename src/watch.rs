//! Status-file changes through notify, for `orch up` and `orch status --watch`.
//!
//! Status files are replaced by rename, so their *directories* are watched (recursively for a
//! state directory: plans' directories appear later), never the files. Event kinds are not
//! trusted (a file replaced by rename shows up as a rename, a create or a modify depending on the
//! platform): anything but an access to a file of the watched names is a [`Hint::Changed`]. Events
//! are only hints: callers read the files at start-up and on a periodic tick anyway.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use crate::status::STATUS_FILE_NAME;

/// What a file event means for the status files.
#[derive(Debug)]
pub(crate) enum Hint {
    /// A status file may have changed, or events were lost: read again.
    Changed,
    /// The watcher reported an error (read again, and poll from now on).
    Failed(notify::Error),
}

/// The file names to react to.
pub(crate) type Names = BTreeSet<OsString>;

/// Just `status.json`.
pub(crate) fn status_names() -> Names {
    BTreeSet::from([OsString::from(STATUS_FILE_NAME)])
}

/// Why a watch could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WatchError {
    #[error("cannot watch the status files: {0}")]
    Start(notify::Error),
    #[error("cannot create the state directory `{}`: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot watch `{}`: {source}", path.display())]
    Watch {
        path: PathBuf,
        source: notify::Error,
    },
}

impl WatchError {
    /// The underlying notify error (a directory that cannot be made as an I/O one).
    pub(crate) fn into_notify(self) -> notify::Error {
        match self {
            Self::Start(e) | Self::Watch { source: e, .. } => e,
            Self::CreateDir { source, .. } => notify::Error::io(source),
        }
    }
}

/// Starts watching `dirs` (each with whether to watch below it; created when missing) and calls
/// `on_hint` from notify's thread for every event that [`hint_for`] does not ignore. Keep the
/// returned watcher alive as long as the hints are wanted.
pub(crate) fn watch_dirs(
    dirs: &[(PathBuf, bool)],
    names: Names,
    on_hint: impl Fn(Hint) + Send + 'static,
) -> Result<RecommendedWatcher, WatchError> {
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Some(hint) = hint_for(res, &names) {
            on_hint(hint);
        }
    })
    .map_err(WatchError::Start)?;
    for (dir, recursive) in dirs {
        std::fs::create_dir_all(dir).map_err(|source| WatchError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let mode = if *recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        watcher
            .watch(dir, mode)
            .map_err(|source| WatchError::Watch {
                path: dir.clone(),
                source,
            })?;
    }
    Ok(watcher)
}

/// What a file event means: lost events and any non-access event on a file named in `names` are
/// [`Hint::Changed`]; a backend error is [`Hint::Failed`]; the rest is ignored.
pub(crate) fn hint_for(res: notify::Result<notify::Event>, names: &Names) -> Option<Hint> {
    match res {
        Ok(e) if e.need_rescan() => Some(Hint::Changed),
        Ok(e) if e.kind.is_access() => None,
        Ok(e) => e
            .paths
            .iter()
            .any(|p| p.file_name().is_some_and(|n| names.contains(n)))
            .then_some(Hint::Changed),
        Err(e) => Some(Hint::Failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{
        AccessKind, CreateKind, EventKind, Flag, ModifyKind, RemoveKind, RenameMode,
    };

    use super::*;

    fn changed(kind: EventKind, path: &str) -> bool {
        let e = notify::Event::new(kind).add_path(PathBuf::from(path));
        matches!(hint_for(Ok(e), &status_names()), Some(Hint::Changed))
    }

    #[test]
    fn any_non_access_event_on_a_status_file_means_read_again() {
        let file = "/r/.orch/state/a/status.json";
        for kind in [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
        ] {
            assert!(changed(kind, file), "{kind:?}");
        }
        assert!(!changed(EventKind::Access(AccessKind::Any), file));
    }

    #[test]
    fn lock_and_temp_files_are_not_status_files() {
        let create = EventKind::Create(CreateKind::File);
        assert!(!changed(create, "/r/.orch/state/a/status.json.lock"));
        assert!(!changed(create, "/r/.orch/state/a/status.json.tmp-12-3"));
        assert!(!changed(create, "/r/.orch/state/a"));
    }

    #[test]
    fn lost_events_mean_read_again() {
        let e = notify::Event::new(EventKind::Other).set_flag(Flag::Rescan);
        assert!(matches!(
            hint_for(Ok(e), &status_names()),
            Some(Hint::Changed)
        ));
        let err = notify::Error::generic("inotify queue overflow");
        assert!(matches!(
            hint_for(Err(err), &status_names()),
            Some(Hint::Failed(_))
        ));
    }
}
