//! The attempts of a best-of-N round as their logs show them (`orch status`, `orch top`,
//! `orch logs --attempt`): read from the log directory, never from an agent's worktree. The
//! rounds themselves and their decisions are the core's ([`super::round`], no I/O).

/// One attempt of a best-of-N round as its log shows it (`orch status`, `orch top`,
/// `orch logs --attempt`): read from the log directory, never from the agent's worktree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AttemptLog {
    pub(crate) attempt: u32,
    pub(crate) log: std::path::PathBuf,
    /// How it ended (`exit status 0`, `stopped by orch`), from orch's own last line of the
    /// log; `None` while it runs.
    pub(crate) ended: Option<String>,
}

/// The attempts of task `id` with a log of their own in `log_dir` (`<id>.a<K>.log`), by number.
pub(crate) fn attempt_logs(log_dir: &std::path::Path, id: &str) -> Vec<AttemptLog> {
    let prefix = format!("{id}.a");
    let mut out: Vec<AttemptLog> = std::fs::read_dir(log_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let attempt: u32 = name
                .strip_prefix(&prefix)?
                .strip_suffix(".log")?
                .parse()
                .ok()?;
            let log = e.path();
            let ended = ending_in(&log, attempt);
            Some(AttemptLog {
                attempt,
                log,
                ended,
            })
        })
        .collect();
    out.sort_by_key(|a| a.attempt);
    out
}

/// orch's line `=== orch: attempt K ended at <time>: <ending> ===` in the last 4 KiB of `log`.
fn ending_in(log: &std::path::Path, attempt: u32) -> Option<String> {
    let text = crate::untrusted::read::tail(log, 0, 4096)
        .ok()
        .map(|(_, b)| b)?;
    let text = String::from_utf8_lossy(&text);
    let head = format!("=== orch: attempt {attempt} ended at ");
    let line = text.lines().rev().find(|l| l.starts_with(&head))?;
    let rest = line.strip_prefix(&head)?.strip_suffix(" ===")?;
    let (_, ending) = rest.split_once(": ")?;
    Some(super::round::shown(ending))
}
