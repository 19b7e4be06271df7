//! Status-file changes through notify: the state directory is watched (never the files, which
//! are replaced by rename), and any event naming a `status.json` is a hint to re-read.

use std::path::Path;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

/// Watches `state_dir` recursively; sends `()` for every event that may have changed a status
/// file (or when the kernel dropped events). Keep the returned watcher alive.
pub fn watch_state_dir(
    state_dir: &Path,
    tx: UnboundedSender<()>,
) -> notify::Result<RecommendedWatcher> {
    std::fs::create_dir_all(state_dir).map_err(notify::Error::io)?;
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let relevant = match res {
            Ok(ev) => {
                ev.need_rescan()
                    || (!matches!(ev.kind, EventKind::Access(_))
                        && ev
                            .paths
                            .iter()
                            .any(|p| p.file_name().is_some_and(|n| n == "status.json")))
            }
            // An error from the backend: re-read to be safe.
            Err(_) => true,
        };
        if relevant {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(state_dir, RecursiveMode::Recursive)?;
    Ok(watcher)
}
