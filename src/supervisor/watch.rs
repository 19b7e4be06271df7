//! Status-file changes and agents' reports ([`crate::status::report`]) for the dispatcher,
//! through the shared watcher ([`crate::watch`]).

use std::path::Path;

use notify::RecommendedWatcher;
use tokio::sync::mpsc::UnboundedSender;

use crate::watch::{status_names, watch_dirs};

/// Watches `state_dirs` recursively (the home repository's, then those of the other repositories
/// whose plans run: their status files and reports are there); sends `()` for every event that may have changed a status
/// file or handed in a report (or when the kernel dropped events, or the watcher failed). Keep the returned watcher
/// alive.
pub(crate) fn watch_state_dir(
    state_dirs: &[&Path],
    tx: UnboundedSender<()>,
) -> notify::Result<RecommendedWatcher> {
    let mut names = status_names();
    names.insert(crate::status::report::REPORT_FILE.into());
    let dirs: Vec<_> = state_dirs.iter().map(|d| (d.to_path_buf(), true)).collect();
    watch_dirs(&dirs, names, move |_| {
        let _ = tx.send(());
    })
    .map_err(crate::watch::WatchError::into_notify)
}
