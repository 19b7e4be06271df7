//! What orch keeps for itself in a state directory (and a log directory), named in one place.
//!
//! A state directory holds each plan's own directory (`<state_dir>/<plan>/status.json`) beside
//! orch's own files and directories. A plan's name may be any of `[A-Za-z0-9][A-Za-z0-9._-]*`
//! (`crate::manifest::check_plan_name`), so every name orch uses for itself here begins with a
//! `.` (or ends in `.lock`, which no plan name may), and the names below them that users choose
//! (hosts, plans) never meet orch's own there either: each kind has a directory of its own, and
//! orch's own entries inside a directory of hosts begin with a `.` too (a host's name may not).
//! A plan named `net`, `ssh`, `remote`, `reports` or `events.jsonl` keeps its status.
//!
//! An earlier orch kept some of these files under names a plan may take (`events.jsonl`,
//! `history.jsonl`, ...). Those a finished or stopped run left and a later command reads (the
//! events, the history of forecasts, the last integration test, a landing's journal, the ports,
//! the run's records of its confinement) are taken over where they are found: a regular file at
//! the old name is moved to the new one the first time orch asks for it there, unless the new
//! one exists ([`Own::at`]).

use std::path::{Path, PathBuf};

/// One entry orch keeps for itself in a state directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Own {
    /// Its name in the state directory (no plan's name can be it).
    pub(crate) name: &'static str,
    /// The name an earlier orch gave it, where a later run reads what it left.
    pub(crate) old: Option<&'static str>,
}

impl Own {
    const fn new(name: &'static str, old: &'static str) -> Self {
        Self {
            name,
            old: Some(old),
        }
    }

    const fn fresh(name: &'static str) -> Self {
        Self { name, old: None }
    }

    /// `<state_dir>/<name>`, without looking at the disk.
    pub(crate) fn path(&self, state_dir: &Path) -> PathBuf {
        state_dir.join(self.name)
    }

    /// `<state_dir>/<name>`; when nothing is there and a regular file is at the old name (an
    /// earlier orch's, never a plan's directory nor a link), that file is moved there first
    /// (best effort: a file that cannot be moved is left, and the new one starts empty).
    pub(crate) fn at(&self, state_dir: &Path) -> PathBuf {
        let path = self.path(state_dir);
        if let Some(old) = self.old
            && std::fs::symlink_metadata(&path).is_err()
        {
            let from = state_dir.join(old);
            if std::fs::symlink_metadata(&from).is_ok_and(|m| m.file_type().is_file()) {
                let _ = std::fs::rename(&from, &path);
            }
        }
        path
    }
}

/// The run's events (`orch up --json`'s lines, `orch top`, `orch status`).
pub(crate) const EVENTS: Own = Own::new(".events.jsonl", "events.jsonl");
/// The events before the last rotation.
pub(crate) const EVENTS_ROTATED: Own = Own::new(".events.jsonl.1", "events.jsonl.1");
/// The settled attempts forecasts learn from.
pub(crate) const HISTORY: Own = Own::new(".history.jsonl", "history.jsonl");
/// The last integration test (`orch top`, `orch status`).
pub(crate) const INTEGRATION_LAST: Own = Own::new(".integration.json", "integration.json");
/// The integration tests' cache.
pub(crate) const INTEGRATION_CACHE: Own =
    Own::new(".integration-cache.json", "integration-cache.json");
/// A group's landing under way: what a landing stopped half way puts back.
pub(crate) const LANDING_JOURNAL: Own = Own::new(".landing.json", "landing.json");
/// A group's landing paused (tests).
pub(crate) const LANDING_PAUSED: Own = Own::new(".landing.paused", "landing.paused");
/// The ports of each worktree (`ORCH_PORT`).
pub(crate) const PORTS: Own = Own::new(".ports.json", "ports.json");
/// The ports' file as it is written, before its rename.
pub(crate) const PORTS_TMP: Own = Own::fresh(".ports.json.tmp");
/// The run's record of each plan's network.
pub(crate) const NETWORK_PLANS: Own = Own::new(".network_plans.json", "network_plans.json");
/// The run's refusals of the network, per attempt.
pub(crate) const NETWORK_REFUSALS: Own = Own::new(".network.json", "network.json");
/// The run's record of each plan's confinement.
pub(crate) const SANDBOX: Own = Own::new(".sandbox.json", "sandbox.json");
/// The report directories, `<REPORTS>/<plan>/<unit>.<attempt>/`.
pub(crate) const REPORTS: Own = Own::fresh(".reports");
/// The directory of [`REPORTS`] that holds the report directories of persons' `orch task`,
/// `<REPORTS>/.people/<plan>/person-<pid>-<nanos>/`: beside the plans' (no plan's name begins
/// with a `.`: `crate::manifest::check_plan_name`), so that no agent's mount or write set of
/// its plan's directory reaches it.
pub(crate) const REPORTS_PEOPLE: &str = ".people";
/// orch's records of the remote hosts, each kind in a directory of its own ([`SSH_USABLE`],
/// [`SSH_SLOTS`], [`SSH_DOWN`]), by the host's name below it (the control sockets are not in
/// the state directory: `crate::executor::ssh::control`).
pub(crate) const SSH: Own = Own::fresh(".ssh");
/// What orch records of the remote attempts: `<REMOTE>/<plan>/…` per plan, and the bundles
/// in `<REMOTE>/`[`REMOTE_BUNDLES`].
pub(crate) const REMOTE: Own = Own::fresh(".remote");
/// The directory of [`REMOTE`] that holds the bundles sent and brought back (no plan's name).
pub(crate) const REMOTE_BUNDLES: &str = ".bundles";
/// The hosts' probes' verdicts, `<SSH>/.usable/<host>`.
pub(crate) const SSH_USABLE: &str = ".usable";
/// The hosts' slots' locks, `<SSH>/.slots/<host>.<n>` (and `<host>.collect`, the right to bring back
/// what a host kept of lost attempts).
pub(crate) const SSH_SLOTS: &str = ".slots";
/// The hosts found down, `<SSH>/.down/<host>`.
pub(crate) const SSH_DOWN: &str = ".down";
/// The remote attempts orch recorded lost with their host, `<SSH>/.lost/<host>/<key>` (the
/// attempt's base): only their work is taken back when the host answers again.
pub(crate) const SSH_LOST: &str = ".lost";
/// orch's own identity of this state directory's repositories' caches on the hosts, `<SSH>/.id`
/// (32 hex digits, made once at random): a host's cache is `<dir>/repos/<path>-<id>.git`, so
/// that two repositories at one path (two leads sharing a host's `dir`, a repository made anew)
/// never share one.
pub(crate) const SSH_ID: &str = ".id";
/// orch's own directories in [`SSH`]: no host's name begins with a `.` (`crate::manifest`
/// checks `[[host]]` names), so none is ever one of them.
#[cfg(test)]
pub(crate) const SSH_OWN: [&str; 5] = [SSH_USABLE, SSH_SLOTS, SSH_DOWN, SSH_LOST, SSH_ID];
/// The directory of resolutions' records (`<plan>.wrapper`).
pub(crate) const RESOLVE: Own = Own::fresh(".resolve");
/// The private copies of the clients' state, `<CLIENTS>/<plan>/…`.
pub(crate) const CLIENTS: Own = Own::fresh(".clients");
/// orch's trash: a tree an agent could have filled is renamed here before it is removed, and
/// what one removal leaves is removed by the next `orch clean` or `orch up`
/// (`crate::untrusted::remove::Trash`).
pub(crate) const TRASH: Own = Own::fresh(".trash");

/// What the last `orch up` started by `orch mcp`'s `up` tool printed (its stdout and stderr).
pub(crate) const MCP_UP_LOG: Own = Own::fresh(".mcp-up.log");

/// Every entry orch keeps in a state directory under a name of its own.
#[cfg(test)]
pub(crate) const ALL: [Own; 19] = [
    EVENTS,
    EVENTS_ROTATED,
    HISTORY,
    INTEGRATION_LAST,
    INTEGRATION_CACHE,
    LANDING_JOURNAL,
    LANDING_PAUSED,
    PORTS,
    PORTS_TMP,
    NETWORK_PLANS,
    NETWORK_REFUSALS,
    SANDBOX,
    REPORTS,
    SSH,
    REMOTE,
    RESOLVE,
    CLIENTS,
    TRASH,
    MCP_UP_LOG,
];

/// The supervisor's liveness file: the holder of the run, made anew and locked by each `orch up`
/// (`supervisor::lock`); what a container is handed to tell that `orch up` runs.
pub(crate) const SUPERVISOR_LIVE: &str = ".supervisor.live";

/// The locks in a state directory: `supervisor.lock`, `.supervisor.live`, `merge.lock`,
/// `integration.lock`, `ports.lock`.
#[cfg(test)]
pub(crate) const LOCKS: [&str; 5] = [
    "supervisor.lock",
    SUPERVISOR_LIVE,
    "merge.lock",
    "integration.lock",
    "ports.lock",
];

/// The integration test's `verify` log in the log directory (beside the plans' directories).
pub(crate) const INTEGRATION_LOG: &str = ".integration-verify.log";

/// The prefix of a group landing's directory in the log directory (`.land-<group>/`, beside
/// the plans' directories): a dot name, which no plan's can be (a plan name begins with a
/// letter or a digit), so that plan `land-<group>`'s logs never meet it.
pub(crate) const LAND_LOG_PREFIX: &str = ".land-";

/// `<state_dir>/.remote/<plan>`: orch's records of plan `plan`'s remote attempts.
pub(crate) fn remote_of(state_dir: &Path, plan: &str) -> PathBuf {
    REMOTE.path(state_dir).join(plan)
}

/// `<state_dir>/.remote/.bundles/<name>`: a bundle sent to a host or brought back.
pub(crate) fn remote_bundle(state_dir: &Path, name: &str) -> PathBuf {
    REMOTE.path(state_dir).join(REMOTE_BUNDLES).join(name)
}

/// `<state_dir>/.ssh/<what>`: one of orch's records of the hosts ([`SSH_OWN`]).
pub(crate) fn ssh_own(state_dir: &Path, what: &str) -> PathBuf {
    SSH.path(state_dir).join(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An earlier orch's file is taken over once; a plan's directory or a link at the old name
    /// is left alone; a file at the new name is never replaced.
    #[test]
    fn an_earlier_orchs_file_is_taken_over_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::write(d.join("events.jsonl"), "old\n").expect("write");
        assert_eq!(EVENTS.at(d), d.join(".events.jsonl"));
        assert_eq!(
            std::fs::read(d.join(".events.jsonl")).expect("read"),
            b"old\n"
        );
        assert!(!d.join("events.jsonl").exists());
        // A new file is never replaced.
        std::fs::write(d.join("history.jsonl"), "old\n").expect("write");
        std::fs::write(d.join(".history.jsonl"), "new\n").expect("write");
        HISTORY.at(d);
        assert_eq!(
            std::fs::read(d.join(".history.jsonl")).expect("read"),
            b"new\n"
        );
        // A plan named like an old file keeps its directory; a link is not followed.
        std::fs::create_dir_all(d.join("ports.json")).expect("mkdir");
        std::fs::write(d.join("ports.json/status.json"), "{}").expect("write");
        PORTS.at(d);
        assert!(d.join("ports.json/status.json").is_file());
        assert!(!d.join(".ports.json").exists());
        std::os::unix::fs::symlink(d.join("elsewhere"), d.join("sandbox.json")).expect("link");
        SANDBOX.at(d);
        assert!(!d.join(".sandbox.json").exists());
    }
}
