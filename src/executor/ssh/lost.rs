//! The attempts a host kept when their driver was lost (the connection failed while the host
//! ran on, [`super::remote_run`]): the next attempt that reaches the host brings each one's last
//! snapshot back, fetched with git's object checks on under
//! `refs/orch/attempts/lost/<host>/<key>` (saved, never landed), streamed to a file here (at
//! most [`frames::SNAPSHOT_MAX`] bytes, as a live snapshot, and less when the plan's limits say
//! less, [`bundle_max`]; a larger one is refused once and dropped there, never streamed), and only once it is safe here is
//! what the host keeps for the attempt removed (its worktree, its snapshot ref, its directory).
//! One driver at a time brings back a host's attempts ([`super::slots::collect_lock`]).
//!
//! Only an attempt orch itself recorded lost ([`record`], by its driver, kept when ssh said the
//! connection failed or the driver was ended) is taken back, at the base orch recorded, and only when its snapshot
//! passes the checks of any snapshot (git's object checks, one commit on the base, no blob or
//! tree over the plan's `max_file_size`). What the host kept of any other attempt of this
//! repository in its own cache (one whose snapshot orch refused, one that ended otherwise) is
//! dropped there, never fetched; each is said in the log.
//!
//! A repository's cache on a host is its own: named by its path and orch's own identity of it
//! ([`super::records::cache_name`]), so that two repositories at one path (two leads that share
//! a host's `dir`, a repository made anew there) never meet in one, and orch's record of an
//! attempt names the cache it ran in: an attempt is taken back only from that cache, and only
//! what is in this repository's own cache is ever dropped. An earlier orch named the cache by the
//! path alone: the attempts it recorded lost (their record names no cache) are still taken back
//! from there, and nothing else there is dropped. A record whose attempt the host keeps nothing
//! of (no driver holds it: its driver ended) is said once and removed.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::conn::{Conn, ConnError};
use super::frames;
use super::host::DIR;
use super::job::{commit_id, safe_name, snapshot_ref};
use super::lead::say;
use crate::manifest::SizeLimits;

/// Every attempt's directory on the host, one a line: `<key>` alone while it runs (or holds no
/// mark), `<key> <base> <cache>` once orch's copy left it `abandoned`.
const ATTEMPTS: &str = r#"for a in "$d"/attempts/*/; do
  [ -d "$a" ] || continue
  k=${a%/}; k=${k##*/}
  if [ -f "$a/abandoned" ]; then
    printf '%s %s\n' "$k" "$(head -c 200 "$a/abandoned" | tr '\n' ' ')"
  else
    printf '%s\n' "$k"
  fi
done
"#;

/// One abandoned attempt's snapshot as a bundle on stdout, streamed as git makes it (nothing
/// written on the host): the lead stops it past its limit.
const LOST_BUNDLE: &str = r#"exec git --git-dir="$d/repos/$2.git" bundle create -q - "refs/orch/snap/$3" "^$4"
"#;

/// An abandoned attempt removed once its snapshot is safe on the lead's machine.
const FORGET: &str = r#"c="$d/repos/$2.git"
git --git-dir="$c" worktree remove --force "$d/attempts/$3/$3" 2>/dev/null
git --git-dir="$c" update-ref -d "refs/orch/snap/$3" 2>/dev/null
rm -rf "$d/attempts/$3"
"#;

/// The most abandoned attempts of this repository one driver brings back or drops.
const PER_COLLECT: usize = 100;

/// The most records of one host one driver looks at.
const RECORDS_MAX: usize = 1000;

/// orch's record of a remote attempt lost with its host: `<SSH>/.lost/<host>/<key>`, its base
/// and the cache on the host it runs in (`<base> <cache>`; an earlier orch wrote the base alone,
/// for its cache named by the repository's path, [`super::records::legacy_cache`]).
fn record_path(state_dir: &Path, host: &str, key: &str) -> PathBuf {
    crate::state_layout::ssh_own(state_dir, crate::state_layout::SSH_LOST)
        .join(host)
        .join(key)
}

/// orch's record that an attempt may be lost, held (locked) by its driver while it lives: a
/// record no driver holds is one whose driver ended.
pub(super) struct Record {
    path: PathBuf,
    _held: File,
}

impl Record {
    /// The attempt ended otherwise: nothing of it is to be taken back.
    pub(super) fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Records the attempt `key` (at `base`, in the host's cache `cache`) on `host` as one that may
/// be lost, before its job goes there: kept only when its driver found the connection failed or
/// was itself ended (removed when the attempt ended otherwise), so that its work is taken back
/// (checked) when the host answers again. Written aside, locked, then renamed into place: no
/// other driver sees it unheld while this one lives. `None`: it could not be written.
pub(super) fn record(
    state_dir: &Path,
    host: &str,
    (key, base): (&str, &str),
    cache: &str,
) -> Option<Record> {
    let path = record_path(state_dir, host, key);
    let dir = path.parent()?;
    std::fs::create_dir_all(dir).ok()?;
    let tmp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
    let held = crate::links::open_lock(&tmp).ok()?;
    let written = held
        .lock()
        .and_then(|()| held.set_len(0))
        .and_then(|()| (&held).write_all(format!("{base} {cache}\n").as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return None;
    }
    Some(Record { path, _held: held })
}

/// What orch recorded of the attempt `key` lost with `host`: its base and the host's cache it
/// ran in (`None`: an earlier orch's record, for the cache named by the path alone); `None`:
/// orch recorded no such attempt lost.
fn recorded(state_dir: &Path, host: &str, key: &str) -> Option<(String, Option<String>)> {
    let bytes = crate::untrusted::read::optional(
        &record_path(state_dir, host, key),
        crate::untrusted::read::REPORT,
    )
    .ok()
    .flatten()?;
    let text = String::from_utf8_lossy(&bytes);
    let mut words = text.split_whitespace();
    let base = words.next()?.to_string();
    let cache = words.next().map(str::to_string);
    if !commit_id(&base)
        || words.next().is_some()
        || cache.as_deref().is_some_and(|c| !safe_name(c))
    {
        return None;
    }
    Some((base, cache))
}

/// The records of attempts lost with `host` that no driver holds (their drivers ended), by key.
fn unheld(state_dir: &Path, host: &str) -> Vec<String> {
    let dir = crate::state_layout::ssh_own(state_dir, crate::state_layout::SSH_LOST).join(host);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .take(RECORDS_MAX)
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|k| safe_name(k))
        .filter(|k| {
            is_file(&dir.join(k))
                && crate::links::open_lock(&dir.join(k)).is_ok_and(|f| f.try_lock().is_ok())
        })
        .collect()
}

fn is_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

/// Brings back the work of the attempts orch recorded lost while the host kept them (a host
/// that comes back), for the repository at `repo_root` (its cache `repo` on the host; `legacy`,
/// the name an earlier orch gave it), its files under `state_dir`, each checked against the
/// plan's size limits; drops there what the host kept of this repository's other attempts in
/// its own cache; and removes orch's records of attempts the host keeps nothing of. See the
/// module documentation.
pub(super) fn collect(
    conn: &Conn,
    (state_dir, repo_root): (&Path, &Path),
    (repo, legacy): (&str, &str),
    limits: SizeLimits,
) {
    // One driver at a time: another that holds it brings back what there is.
    let Some(_held) = super::slots::collect_lock(state_dir, &conn.host) else {
        return;
    };
    let dir = conn.host.dir.as_str();
    let host = conn.host.name.as_str();
    // Taken before the host is asked: a record whose driver had ended by then is not one of an
    // attempt on its way there.
    let idle = unheld(state_dir, host);
    let Ok(out) = conn.run(
        "the list of abandoned attempts",
        &format!("{DIR}{ATTEMPTS}"),
        &[dir],
        None,
        Duration::from_secs(60),
    ) else {
        return;
    };
    // The whole list, or nothing is said gone from the host.
    let whole = (out.stdout.len() as u64) < super::conn::OUTPUT_MAX;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let present: HashSet<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let git = |args: &[&str]| super::refs::text(repo_root, args);
    let drop_there = |cache: &str, key: &str| {
        let _ = conn.run(
            "the removal of an abandoned attempt",
            &format!("{DIR}{FORGET}"),
            &[dir, cache, key],
            None,
            Duration::from_secs(120),
        );
    };
    let ours = text.lines().filter_map(|line| {
        let mut words = line.split_whitespace();
        let (Some(key), Some(_), Some(of)) = (words.next(), words.next(), words.next()) else {
            return None;
        };
        // Another cache's attempt (another repository's, or one at this path an earlier orch
        // shared with it), or a name orch does not make: not this driver's to judge.
        (safe_name(key) && (of == repo || of == legacy)).then_some((key, of))
    });
    for (key, of) in ours.take(PER_COLLECT) {
        let base = match recorded(state_dir, host, key) {
            Some((base, cache)) if cache.as_deref().unwrap_or(legacy) == of => base,
            _ if of == repo => {
                // In this repository's own cache and not lost by orch's record (its snapshot
                // refused, its driver ended otherwise): nothing of it is taken, and nothing is
                // left there for a later fetch.
                drop_there(of, key);
                say(&format!(
                    "what host `{host}` kept of attempt `{key}` is dropped there: orch did not record that attempt lost with its host"
                ));
                continue;
            }
            // The cache an earlier orch named by the path alone, which another repository at
            // this path may share: only what orch recorded lost is taken, nothing dropped.
            _ => continue,
        };
        if git(&["cat-file", "-e", &format!("{base}^{{commit}}")]).is_err() {
            continue;
        }
        let file = crate::state_layout::remote_bundle(state_dir, &format!("{key}.lost.bundle"));
        if let Some(d) = file.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let max = bundle_max(limits);
        let brought = conn.run_to_file(
            "the transfer of an abandoned attempt",
            (&format!("{DIR}{LOST_BUNDLE}"), &[dir, of, key, &base]),
            &file,
            max,
            Duration::from_secs(3600),
        );
        if matches!(brought, Err(ConnError::TooLarge { .. })) {
            // The same snapshot would be as large at every later attempt: refused once, and
            // nothing of it kept there or here.
            let _ = std::fs::remove_file(&file);
            tell(
                (state_dir, host, key),
                &format!(
                    "the work of attempt `{key}`, lost with host `{host}`, is refused and dropped there: its snapshot is larger than {max} bytes"
                ),
            );
            drop_there(of, key);
            let _ = std::fs::remove_file(record_path(state_dir, host, key));
            continue;
        }
        if let Err(e) = brought {
            // The host did not give it (the connection): kept there,
            // orch's record kept, tried again by the next attempt that reaches the host.
            let _ = std::fs::remove_file(&file);
            say(&format!(
                "cannot take back the work of attempt `{key}` on host `{host}` (kept there): {e}"
            ));
            continue;
        }
        let saved = format!("refs/orch/attempts/lost/{host}/{key}");
        let incoming = format!("refs/orch/incoming/{key}");
        let fetched = super::lead::fetch_bundle(repo_root, &file, &snapshot_ref(key), &incoming);
        let _ = std::fs::remove_file(&file);
        let checked = fetched.and_then(|()| checked(repo_root, &incoming, &base, limits));
        let _ = git(&["update-ref", "-d", &incoming]);
        let taken = checked.and_then(|tip| git(&["update-ref", &saved, &tip]).map(drop));
        let line = match taken {
            Ok(()) => format!(
                "the work of an attempt lost with host `{host}` is saved as `{saved}` (not landed)"
            ),
            Err(e) => format!(
                "the work of attempt `{key}`, lost with host `{host}`, is refused and dropped there: {e}"
            ),
        };
        tell((state_dir, host, key), &line);
        // Saved here or refused: the host keeps nothing of it, and orch's record goes.
        drop_there(of, key);
        let _ = std::fs::remove_file(record_path(state_dir, host, key));
    }
    // A record whose attempt the host keeps nothing of (it ended there before it had a
    // snapshot, the host's `dir` was emptied, an earlier orch let another repository drop it)
    // can never be taken back: said once, and removed.
    if !whole {
        return;
    }
    for key in idle.iter().filter(|k| !present.contains(k.as_str())) {
        let path = record_path(state_dir, host, key);
        if std::fs::remove_file(&path).is_ok() {
            let line = format!(
                "orch's record of attempt `{key}`, lost with host `{host}`, is removed: the host keeps nothing of it, its work cannot come back"
            );
            tell((state_dir, host, key), &line);
        }
    }
}

/// The prefix of a line a driver leaves for `orch up`'s console in `<SSH>/.lost/<host>/`
/// (`.said-<key>`: a dot name, which no record's is).
const SAID: &str = ".said-";

/// The most lines of one host `orch up` takes at a time.
const SAID_MAX: usize = 100;

/// Says `line` (about the attempt `key` on `host`) in this attempt's log and on `orch up`'s
/// console.
fn tell((state_dir, host, key): (&Path, &str, &str), line: &str) {
    say(line);
    said(state_dir, host, key, line);
}

/// Leaves `line` (about the attempt `key`) for `orch up`'s console ([`said_lines`]).
fn said(state_dir: &Path, host: &str, key: &str, line: &str) {
    let path = crate::state_layout::ssh_own(state_dir, crate::state_layout::SSH_LOST)
        .join(host)
        .join(format!("{SAID}{key}"));
    let _ = crate::links::write(&path, line.as_bytes());
}

/// The lines drivers left for the console about `host`'s lost attempts, each taken once
/// (removed as it is read).
pub(super) fn said_lines(state_dir: &Path, host: &str) -> Vec<String> {
    let dir = crate::state_layout::ssh_own(state_dir, crate::state_layout::SSH_LOST).join(host);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for e in entries.flatten() {
        if lines.len() >= SAID_MAX {
            break;
        }
        if !e.file_name().to_str().is_some_and(|n| n.starts_with(SAID)) {
            continue;
        }
        let path = e.path();
        let bytes = crate::untrusted::read::optional(&path, crate::untrusted::read::REPORT);
        if std::fs::remove_file(&path).is_err() {
            continue;
        }
        if let Ok(Some(b)) = bytes {
            lines.push(String::from_utf8_lossy(&b).chars().take(1000).collect());
        }
    }
    lines
}

/// The most bytes a lost attempt's bundle may hold: a live snapshot's most
/// ([`frames::SNAPSHOT_MAX`]), and less when the plan's limits say less. A bundle holds the
/// snapshot's new objects, each compressed: a blob or tree of `n` bytes is at most `n + 32`
/// there (zlib's and the pack's headers), a tree at least 28 bytes (one entry), so twice the
/// change's bytes, 32 bytes more per changed file and 1 MiB (the commit, the bundle's own
/// header) bound what a change within the limits can take; a larger bundle is a change over
/// them, refused without being brought here.
fn bundle_max(limits: SizeLimits) -> u64 {
    let within = limits
        .change
        .saturating_mul(2)
        .saturating_add(limits.files.saturating_mul(32))
        .saturating_add(1 << 20);
    within.min(frames::SNAPSHOT_MAX as u64)
}

/// The checks of any snapshot, on a lost attempt's fetched under `incoming`: one commit whose
/// one parent is the recorded `base`, no blob or tree over `max_file_size`, no change over the plan's other limits. Its id.
fn checked(
    repo_root: &Path,
    incoming: &str,
    base: &str,
    limits: SizeLimits,
) -> Result<String, String> {
    let git = |args: &[&str]| super::refs::text(repo_root, args);
    let tip = git(&["rev-parse", "--verify", &format!("{incoming}^{{commit}}")])?;
    let parents = git(&["rev-list", "--parents", "-n", "1", &tip])?;
    if parents.split(' ').skip(1).collect::<Vec<_>>() != [base] {
        return Err(format!(
            "its snapshot is not one commit on the attempt's base {base}"
        ));
    }
    match crate::git::large_blobs_between(repo_root, Some(base), &tip, limits)? {
        Some(large) => Err(large.to_string()),
        None => Ok(tip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record names its base and cache; an earlier orch's (the base alone) names none; one
    /// held by its driver is not listed as its driver's end, and is once the driver lets go.
    #[test]
    fn records_name_their_cache_and_are_held_while_their_driver_lives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path();
        let base = "a".repeat(40);
        let held = record(state, "h1", ("k-1", &base), "0123-abcd").expect("record");
        assert_eq!(
            recorded(state, "h1", "k-1"),
            Some((base.clone(), Some("0123-abcd".to_string())))
        );
        assert_eq!(unheld(state, "h1"), Vec::<String>::new());
        drop(held);
        // Another test's child forked at that moment holds the lock's file description until it
        // runs its program (flock locks follow the description): looked at again until then.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while unheld(state, "h1").is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(unheld(state, "h1"), vec!["k-1".to_string()]);
        std::fs::write(record_path(state, "h1", "k-2"), format!("{base}\n")).expect("old");
        assert_eq!(recorded(state, "h1", "k-2"), Some((base.clone(), None)));
        for bad in ["HEAD\n", "", "x y z\n"] {
            std::fs::write(record_path(state, "h1", "k-3"), bad).expect("bad");
            assert_eq!(recorded(state, "h1", "k-3"), None, "{bad:?}");
        }
        std::fs::write(record_path(state, "h1", "k-3"), format!("{base} ../x\n")).expect("bad");
        assert_eq!(recorded(state, "h1", "k-3"), None);
        let removed = record(state, "h1", ("k-4", &base), "c").expect("record");
        removed.remove();
        assert!(!record_path(state, "h1", "k-4").exists());
    }

    /// A bundle may hold a live snapshot's most, and less when the plan's limits say less.
    #[test]
    fn a_lost_bundle_is_bounded_by_the_plans_limits() {
        assert_eq!(
            bundle_max(SizeLimits::default()),
            frames::SNAPSHOT_MAX as u64
        );
        let small = SizeLimits {
            file: 1 << 20,
            change: 1 << 20,
            files: 10,
        };
        assert_eq!(bundle_max(small), (2 << 20) + 320 + (1 << 20));
        let unbounded = SizeLimits {
            file: u64::MAX,
            change: u64::MAX,
            files: u64::MAX,
        };
        assert_eq!(bundle_max(unbounded), frames::SNAPSHOT_MAX as u64);
    }

    /// The identity is made once and kept; the cache's name is the path's and the identity's.
    #[test]
    fn a_repositorys_identity_is_made_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = super::super::records::identity(dir.path()).expect("identity");
        assert_eq!(id.len(), 32);
        assert_eq!(
            super::super::records::identity(dir.path()).expect("again"),
            id
        );
        let other = tempfile::tempdir().expect("tempdir");
        assert_ne!(
            super::super::records::identity(other.path()).expect("other"),
            id
        );
        let root = Path::new("/srv/project");
        let cache = super::super::records::cache_name(root, &id);
        let legacy = super::super::records::legacy_cache(root);
        assert_eq!(cache, format!("{legacy}-{id}"));
        assert!(safe_name(&cache));
    }
}
