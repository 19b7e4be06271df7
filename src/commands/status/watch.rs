//! `orch status --watch`: print the status view again whenever a status file changes.
//!
//! Status files are replaced by rename, so the state *directory* is watched (recursively: plans'
//! directories appear later), never the files. Events are only hints: a burst of them is
//! coalesced for [`DEBOUNCE`], and every [`RECONCILE`] the files are read anyway (missed events,
//! file systems without notifications). The view is printed only when it changed.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::anyhow;

use super::{Format, load_valid, render};
use crate::error::{CliResult, exit};
use crate::watch::{Hint, Names, status_names};
use crate::workspace::{Selection, Workspace};

/// How long a burst of file events is gathered before the view is read again.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// How often the view is read again without any event.
const RECONCILE: Duration = Duration::from_secs(2);

/// Clears a terminal and moves the cursor home.
const CLEAR_SCREEN: &str = "\x1b[2J\x1b[H";

/// What wakes the watch loop.
enum Wake {
    /// A status file may have changed.
    Changed,
    /// The watcher reported an error.
    WatchFailed(notify::Error),
    /// Ctrl-C or SIGTERM.
    Stop,
}

/// Prints the view, then again on every change, until Ctrl-C (exit 0) or a closed stdout.
pub(super) fn run(
    sel: &Selection,
    ws: &Workspace,
    override_path: Option<&Path>,
    format: Format,
) -> CliResult<u8> {
    let (tx, rx) = mpsc::channel();
    stop_on_signal(tx.clone())?;
    let (dirs, names) = watched(ws, override_path);
    // Watch before the first read, so that no change between the two is missed.
    let _watcher = watch(&dirs, names, tx)?;

    let mut screen = Screen::new(format);
    let first = render(sel, ws, override_path, format, &HashMap::new())?;
    if screen.show(&first).is_err() {
        return Ok(exit::OK);
    }
    let mut last: Result<String, String> = Ok(first);
    let mut watch_warned = false;
    let mut due: Option<Instant> = None;
    let mut next_reconcile = Instant::now() + RECONCILE;
    loop {
        let wake_at = due.map_or(next_reconcile, |d| d.min(next_reconcile));
        match rx.recv_timeout(wake_at.saturating_duration_since(Instant::now())) {
            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return Ok(exit::OK),
            Ok(Wake::Changed) => {
                due.get_or_insert_with(|| Instant::now() + DEBOUNCE);
                continue;
            }
            Ok(Wake::WatchFailed(e)) => {
                if !watch_warned {
                    watch_warned = true;
                    crate::commands::output::eprintln_safe(&format!(
                        "warning: watching the state directory failed ({e}); reading the status \
                         files every {}s",
                        RECONCILE.as_secs()
                    ));
                }
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        if due.is_none_or(|d| now < d) && now < next_reconcile {
            continue;
        }
        due = None;
        next_reconcile = now + RECONCILE;
        // Re-read the plans too: an edited plan shows up without a restart.
        let view = load_valid(sel, matches!(format, Format::Json | Format::JsonLine))
            .and_then(|ws| render(sel, &ws, override_path, format, &HashMap::new()))
            .map_err(|e| e.to_string());
        if view == last {
            continue;
        }
        let shown = match &view {
            Ok(text) => screen.show(text),
            Err(message) => {
                crate::commands::output::eprintln_safe(&format!("error: {message}"));
                Ok(())
            }
        };
        if shown.is_err() {
            // stdout is closed (`orch status --watch | head`): nobody is watching.
            return Ok(exit::OK);
        }
        last = view;
    }
}

/// The directories to watch, with whether to watch below them, and the file names to react to.
/// With `ORCH_STATUS_FILE` that file's directory; else every selected plan's state directory
/// (`<root>/<state_dir>`, the parent of `<plan>/status.json`).
fn watched(ws: &Workspace, override_path: Option<&Path>) -> (Vec<(PathBuf, bool)>, Names) {
    let mut dirs: Vec<(PathBuf, bool)> = Vec::new();
    let mut names = status_names();
    match override_path {
        Some(path) => {
            if let Some(name) = path.file_name() {
                names.insert(name.to_os_string());
            }
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            dirs.push((parent.unwrap_or(Path::new(".")).to_path_buf(), false));
        }
        None => {
            for &i in &ws.selected {
                let path = &ws.plans[i].status_path;
                if let Some(state_dir) = path.parent().and_then(Path::parent)
                    && !dirs.iter().any(|(d, _)| d == state_dir)
                {
                    dirs.push((state_dir.to_path_buf(), true));
                }
            }
        }
    }
    (dirs, names)
}

/// Starts watching `dirs`; every status-file hint wakes the loop.
fn watch(
    dirs: &[(PathBuf, bool)],
    names: Names,
    tx: Sender<Wake>,
) -> CliResult<notify::RecommendedWatcher> {
    let watcher = crate::watch::watch_dirs(dirs, names, move |hint| {
        // The loop is gone only when orch is exiting.
        let _ = tx.send(match hint {
            Hint::Changed => Wake::Changed,
            Hint::Failed(e) => Wake::WatchFailed(e),
        });
    })
    // The message alone, as before: the CLI would print a source as `caused by:`.
    .map_err(|e| anyhow!(e.to_string()))?;
    Ok(watcher)
}

/// Sends [`Wake::Stop`] on Ctrl-C or SIGTERM. The handlers are in place when this returns.
fn stop_on_signal(tx: Sender<Wake>) -> CliResult<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow!("cannot start the signal handler: {e}"))?;
    let (mut int, mut term) = {
        let _guard = rt.enter();
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        match (int, term) {
            (Ok(i), Ok(t)) => (i, t),
            (Err(e), _) | (_, Err(e)) => {
                return Err(anyhow!("cannot handle Ctrl-C: {e}").into());
            }
        }
    };
    std::thread::Builder::new()
        .name("orch-signals".into())
        .spawn(move || {
            rt.block_on(async {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            });
            let _ = tx.send(Wake::Stop);
        })
        .map_err(|e| anyhow!("cannot start the signal handler: {e}"))?;
    Ok(())
}

/// Where views go: stdout, cleared first on a terminal, separated by a time line otherwise,
/// one line each in JSON.
struct Screen {
    format: Format,
    terminal: bool,
    shown: usize,
}

impl Screen {
    fn new(format: Format) -> Self {
        Self {
            format,
            terminal: io::stdout().is_terminal(),
            shown: 0,
        }
    }

    /// Prints a view; fails when stdout is closed.
    fn show(&mut self, view: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        if self.format != Format::JsonLine {
            if self.terminal {
                out.write_all(CLEAR_SCREEN.as_bytes())?;
            } else if self.shown > 0 {
                writeln!(out, "--- {} ---", chrono::Local::now().format("%H:%M:%S"))?;
            }
        }
        self.shown += 1;
        // Escaped as every view is (the view holds agents' causes and notes).
        match self.format {
            Format::Json | Format::JsonLine => {
                writeln!(out, "{}", crate::untrusted::json_safe(view.to_string()))?;
            }
            _ => writeln!(out, "{}", crate::untrusted::escaped_lines(view))?,
        }
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    #[test]
    fn a_status_file_override_is_watched_in_its_directory() {
        let ws = Workspace {
            manifest: None,
            plans: Vec::new(),
            selected: Vec::new(),
            diagnostics: Vec::new(),
            graph: None,
        };
        let (dirs, names) = watched(&ws, Some(Path::new("/tmp/x/mine.json")));
        assert_eq!(dirs, [(PathBuf::from("/tmp/x"), false)]);
        assert!(names.contains(&OsString::from("mine.json")));
        assert!(names.contains(&OsString::from("status.json")));
    }
}
