//! Which host an attempt runs on: `slots` per host, each a lock file under orch's state
//! directory (`<state_dir>/.ssh/.slots/<host>.<n>`) held by the attempt's driver for as long as it
//! runs (a driver that dies frees its slot with it, and a restarted `orch up` that adopts the
//! driver finds its slot still taken). A host that did not answer is marked down
//! (`<state_dir>/.ssh/.down/<host>`) and tried again after a back-off. When every slot is busy or
//! every host down, the attempt waits: it never runs on this machine instead.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::manifest::Host;

/// The first back-off of a host that did not answer; doubled each time after, up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// A slot of a host, held until dropped.
pub(crate) struct Slot {
    _lock: File,
    pub(crate) host: Host,
}

/// `<state_dir>/.ssh/<what>`: a directory of orch's own beside the hosts' sockets
/// (`.slots`, `.down`: no host's name).
fn dir(state_dir: &Path, what: &str) -> PathBuf {
    crate::state_layout::ssh_own(state_dir, what)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Opens (making it) a lock file of orch's own, never through a link.
fn lock_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
}

/// A free slot of `host`, if any.
fn try_host(state_dir: &Path, host: &Host) -> Option<File> {
    (0..host.slots).find_map(|n| {
        let f = lock_file(
            &dir(state_dir, crate::state_layout::SSH_SLOTS).join(format!("{}.{n}", host.name)),
        )
        .ok()?;
        f.try_lock().ok().map(|()| f)
    })
}

/// The right to bring back what `host` kept of lost attempts ([`super::lost`]), held until
/// dropped; `None` while another driver of this state directory holds it (the drivers of the
/// attempts that reach a host at once would fetch the same attempt's snapshot into the same
/// file, and remove it under each other).
pub(crate) fn collect_lock(state_dir: &Path, host: &Host) -> Option<File> {
    let f = lock_file(
        &dir(state_dir, crate::state_layout::SSH_SLOTS).join(format!("{}.collect", host.name)),
    )
    .ok()?;
    f.try_lock().ok().map(|()| f)
}

/// orch's record of a host marked down: `<until> <failures> <since>` (seconds since the epoch;
/// `since`: its first failure in a row), then the cause on a line of its own (escaped).
struct Down {
    until: u64,
    failures: u32,
    since: u64,
    cause: String,
}

/// The longest cause a record keeps.
const CAUSE_MAX: usize = 400;

fn down_record(state_dir: &Path, host: &str) -> Option<Down> {
    let bytes = crate::untrusted::read::optional(
        &dir(state_dir, crate::state_layout::SSH_DOWN).join(host),
        crate::untrusted::read::REPORT,
    )
    .ok()??;
    let text = String::from_utf8_lossy(&bytes).to_string();
    let mut lines = text.lines();
    let mut parts = lines.next()?.split_whitespace();
    let until = parts.next()?.parse().ok()?;
    let failures = parts.next()?.parse().ok()?;
    let since = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let cause = lines
        .next()
        .unwrap_or_default()
        .chars()
        .take(CAUSE_MAX)
        .collect();
    Some(Down {
        until,
        failures,
        since,
        cause,
    })
}

/// Whether `host` is marked down and its back-off has not passed.
pub(crate) fn is_down(state_dir: &Path, host: &str) -> bool {
    down_record(state_dir, host).is_some_and(|d| d.until > now())
}

/// A host lost: it did not answer, and nothing reached it since ([`mark_down`], [`mark_up`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lost {
    /// When it first did not answer (seconds since the epoch; 0: not recorded).
    pub(crate) since: u64,
    /// Why, as orch said it (escaped).
    pub(crate) cause: String,
}

/// Whether `host` is lost, from orch's own record of it.
pub(crate) fn lost(state_dir: &Path, host: &str) -> Option<Lost> {
    down_record(state_dir, host).map(|d| Lost {
        since: d.since,
        cause: d.cause,
    })
}

/// Marks `host` down for `cause`: tried again after a back-off that doubles with each failure in
/// a row. Returns the back-off. Failures within a back-off (the attempts lost with the host at
/// once, each driver saying so) are one: the back-off grows with the tries that fail, not with
/// the attempts the host had.
pub(crate) fn mark_down(state_dir: &Path, host: &str, cause: &str) -> Duration {
    let before = down_record(state_dir, host);
    let within = before.as_ref().filter(|d| d.until > now());
    let failures = match within {
        Some(d) => d.failures.max(1),
        None => before.as_ref().map_or(0, |d| d.failures) + 1,
    };
    let since = before.as_ref().map_or_else(now, |d| d.since);
    let backoff = BACKOFF_FIRST
        .saturating_mul(1u32 << (failures - 1).min(10))
        .min(BACKOFF_MAX);
    if let Some(d) = within {
        // The back-off under way stands.
        let left = Duration::from_secs(d.until.saturating_sub(now()));
        write_down(state_dir, host, (d.until, failures, since), cause);
        return left;
    }
    write_down(
        state_dir,
        host,
        (now() + backoff.as_secs(), failures, since),
        cause,
    );
    backoff
}

fn write_down(
    state_dir: &Path,
    host: &str,
    (until, failures, since): (u64, u32, u64),
    cause: &str,
) {
    let d = dir(state_dir, crate::state_layout::SSH_DOWN);
    let _ = std::fs::create_dir_all(&d);
    // The host is named by the record: not again in its cause.
    let named = format!("host `{host}` ");
    let cause = cause.strip_prefix(&named).unwrap_or(cause);
    let cause: String = crate::untrusted::text::escaped(cause)
        .chars()
        .take(CAUSE_MAX)
        .collect();
    let _ = crate::links::write(
        &d.join(host),
        format!("{until} {failures} {since}\n{cause}\n").as_bytes(),
    );
}

/// `host` answered: no longer marked down.
pub(crate) fn mark_up(state_dir: &Path, host: &str) {
    let _ = std::fs::remove_file(dir(state_dir, crate::state_layout::SSH_DOWN).join(host));
}

/// Takes a slot of one of `hosts` (not marked down, not refused: [`super::usable`]), `prefer`
/// first, then in their order; waits while there is none, calling `waiting` once with the
/// reason. `None` when every host is refused: none will ever take the attempt.
pub(crate) fn take(
    state_dir: &Path,
    hosts: &[Host],
    prefer: Option<&str>,
    mut waiting: impl FnMut(&str),
) -> Option<Slot> {
    let mut order: Vec<&Host> = hosts
        .iter()
        .filter(|h| Some(h.name.as_str()) == prefer)
        .collect();
    order.extend(hosts.iter().filter(|h| Some(h.name.as_str()) != prefer));
    let mut said = false;
    let mut pause = Duration::from_millis(20);
    loop {
        order.retain(|h| !super::usable::is_refused(state_dir, &h.name));
        if order.is_empty() {
            return None;
        }
        for h in &order {
            if is_down(state_dir, &h.name) {
                continue;
            }
            if let Some(lock) = try_host(state_dir, h) {
                return Some(Slot {
                    _lock: lock,
                    host: (*h).clone(),
                });
            }
        }
        if !said {
            said = true;
            let names: Vec<String> = order
                .iter()
                .map(|h| {
                    if is_down(state_dir, &h.name) {
                        format!("{} (down)", h.name)
                    } else {
                        format!("{} ({} slots busy)", h.name, h.slots)
                    }
                })
                .collect();
            waiting(&format!("waiting for a slot on {}", names.join(", ")));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// The host the plan's last attempt ran on (its cache has the plan's objects).
pub(crate) fn last_host(state_dir: &Path, plan: &str) -> Option<String> {
    let bytes = crate::untrusted::read::optional(
        &crate::state_layout::remote_of(state_dir, plan).join("last-host"),
        crate::untrusted::read::REPORT,
    )
    .ok()??;
    let s = String::from_utf8_lossy(&bytes).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// The host of the latest attempt of plan `plan`'s `unit` (a task id, or `plan`), from the
/// records its drivers wrote ([`super::records::host_record`]).
pub(crate) fn latest_host(state_dir: &Path, plan: &str, unit: &str) -> Option<String> {
    let prefix = format!("{unit}-");
    let latest = std::fs::read_dir(crate::state_layout::remote_of(state_dir, plan))
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix(&prefix)?.strip_suffix(".host")?;
            n.parse::<u32>().ok()
        })
        .max()?;
    super::records::recorded_host(state_dir, plan, unit, latest)
}

/// Records the host the plan's attempt runs on.
pub(crate) fn set_last_host(state_dir: &Path, plan: &str, host: &str) {
    let d = crate::state_layout::remote_of(state_dir, plan);
    let _ = std::fs::create_dir_all(&d);
    let _ = crate::links::write(&d.join("last-host"), host.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, slots: usize) -> Host {
        Host {
            name: name.into(),
            ssh: name.into(),
            port: None,
            slots,
            dir: "/srv/orch".into(),
            confined: true,
            line: 1,
        }
    }

    #[test]
    fn slots_are_taken_per_host_and_a_down_host_is_skipped() {
        let tmp = tempfile::tempdir().expect("tmp");
        let hosts = [host("h1", 2), host("h2", 1)];
        let take = |state: &Path, hosts: &[Host], prefer: Option<&str>| {
            take(state, hosts, prefer, |_| {}).expect("a host")
        };
        let a = take(tmp.path(), &hosts, Some("h2"));
        assert_eq!(a.host.name, "h2");
        let b = take(tmp.path(), &hosts, Some("h2"));
        let c = take(tmp.path(), &hosts, None);
        assert_eq!((b.host.name.as_str(), c.host.name.as_str()), ("h1", "h1"));
        drop(a);
        // h2 is free again, but down.
        assert_eq!(mark_down(tmp.path(), "h2", "no answer"), BACKOFF_FIRST);
        assert!(is_down(tmp.path(), "h2"));
        // Another attempt lost with it within the back-off: the same back-off.
        assert!(mark_down(tmp.path(), "h2", "no answer") <= BACKOFF_FIRST);
        // A try after the back-off that fails again: doubled.
        let d = dir(tmp.path(), crate::state_layout::SSH_DOWN);
        std::fs::write(d.join("h2"), "1 1 1\nno answer\n").expect("expired");
        assert_eq!(mark_down(tmp.path(), "h2", "no answer"), BACKOFF_FIRST * 2);
        assert!(mark_down(tmp.path(), "h2", "no answer") <= BACKOFF_FIRST * 2);
        drop(b);
        let d = take(tmp.path(), &hosts, Some("h2"));
        assert_eq!(d.host.name, "h1");
        mark_up(tmp.path(), "h2");
        let e = take(tmp.path(), &hosts, None);
        assert_eq!(e.host.name, "h2");
        drop((c, d, e));
        // A refused host takes nothing; with every host refused, nothing waits either.
        let refused = super::super::usable::Verdict::Refused("no Landlock".into());
        super::super::usable::record(tmp.path(), "h2", &refused);
        let f = take(tmp.path(), &hosts, Some("h2"));
        assert_eq!(f.host.name, "h1");
        super::super::usable::record(tmp.path(), "h1", &refused);
        assert!(super::take(tmp.path(), &hosts, None, |_| {}).is_none());
    }

    #[test]
    fn a_lost_host_keeps_its_first_failure_and_its_last_cause_escaped_until_it_answers() {
        let tmp = tempfile::tempdir().expect("tmp");
        assert_eq!(lost(tmp.path(), "h1"), None);
        mark_down(
            tmp.path(),
            "h1",
            "the connection ended\nforged line \u{1b}[2J",
        );
        let first = lost(tmp.path(), "h1").expect("lost");
        assert!(first.since > 0);
        assert_eq!(first.cause, "the connection ended\\nforged line \\u{1b}[2J");
        mark_down(
            tmp.path(),
            "h1",
            "host `h1` cannot be reached (connection refused)",
        );
        let second = lost(tmp.path(), "h1").expect("lost");
        assert_eq!(second.since, first.since);
        assert_eq!(second.cause, "cannot be reached (connection refused)");
        // A record of an older orch (no `since`, no cause) still reads.
        let d = dir(tmp.path(), crate::state_layout::SSH_DOWN);
        std::fs::write(d.join("h2"), "99999999999 1\n").expect("old record");
        assert!(is_down(tmp.path(), "h2"));
        assert_eq!(
            lost(tmp.path(), "h2"),
            Some(Lost {
                since: 0,
                cause: String::new()
            })
        );
        mark_up(tmp.path(), "h1");
        assert_eq!(lost(tmp.path(), "h1"), None);
    }
}
