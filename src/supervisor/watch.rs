//! Status-file changes and agents' reports ([`crate::status::report`]) for the dispatcher,
//! through the shared watcher ([`crate::watch`]).

use std::path::Path;

use notify::RecommendedWatcher;
use tokio::sync::mpsc::UnboundedSender;

use crate::watch::{status_names, watch_dirs};

/// Watches `state_dir` recursively; sends `()` for every event that may have changed a status
/// file or handed in a report (or when the kernel dropped events, or the watcher failed). Keep the returned watcher
/// alive.
pub(crate) fn watch_state_dir(
    state_dir: &Path,
    tx: UnboundedSender<()>,
) -> notify::Result<RecommendedWatcher> {
    let mut names = status_names();
    names.insert(crate::status::report::REPORT_FILE.into());
    watch_dirs(&[(state_dir.to_path_buf(), true)], names, move |_| {
        let _ = tx.send(());
    })
    .map_err(crate::watch::WatchError::into_notify)
}
