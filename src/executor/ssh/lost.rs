//! The attempts a host kept when their driver was lost (the connection failed while the host
//! ran on, [`super::remote_run`]): the next attempt that reaches the host brings each one's last
//! snapshot back, fetched with git's object checks on under
//! `refs/orch/attempts/lost/<host>/<key>` (saved, never landed), streamed to a file here (at
//! most [`frames::SNAPSHOT_MAX`] bytes, as a live snapshot), and only once it is safe here is
//! what the host keeps for the attempt removed (its worktree, its snapshot ref, its directory).
//! One driver at a time brings back a host's attempts ([`super::slots::collect_lock`]).
//!
//! Only an attempt orch itself recorded lost ([`record`], by its driver, kept when ssh said the
//! connection failed or the driver was ended) is taken back, at the base orch recorded, and only when its snapshot
//! passes the checks of any snapshot (git's object checks, one commit on the base, no blob or
//! tree over the plan's `max_file_size`). What the host kept of any other attempt of this
//! repository (one whose snapshot orch refused, one that ended otherwise) is dropped there,
//! never fetched; each is said in the log.

use std::path::Path;
use std::time::Duration;

use super::conn::Conn;
use super::frames;
use super::host::DIR;
use super::job::{commit_id, safe_name, snapshot_ref};
use super::lead::say;
use crate::manifest::SizeLimits;

/// The abandoned attempts of this repository on the host: `<key> <base>` per line.
const ABANDONED: &str = r#"for a in "$d"/attempts/*/abandoned; do
  [ -f "$a" ] || continue
  k=${a%/abandoned}; k=${k##*/}
  printf '%s %s\n' "$k" "$(head -c 200 "$a" | tr '\n' ' ')"
done
"#;

/// One abandoned attempt's snapshot as a bundle on stdout.
const LOST_BUNDLE: &str = r#"c="$d/repos/$2.git"
t="$d/attempts/$3/lost.bundle"
git --git-dir="$c" bundle create -q "$t" "refs/orch/snap/$3" "^$4" && cat "$t"
"#;

/// An abandoned attempt removed once its snapshot is safe on the lead's machine.
const FORGET: &str = r#"c="$d/repos/$2.git"
git --git-dir="$c" worktree remove --force "$d/attempts/$3/$3" 2>/dev/null
git --git-dir="$c" update-ref -d "refs/orch/snap/$3" 2>/dev/null
rm -rf "$d/attempts/$3"
"#;

/// orch's record of a remote attempt lost with its host: `<SSH>/.lost/<host>/<key>`, its base.
fn record_path(state_dir: &Path, host: &str, key: &str) -> std::path::PathBuf {
    crate::state_layout::ssh_own(state_dir, crate::state_layout::SSH_LOST)
        .join(host)
        .join(key)
}

/// Records the attempt `key` (at `base`) on `host` as one that may be lost, before its job goes
/// there: kept only when its driver found the connection failed or was itself ended (removed
/// when the attempt ended otherwise), so that its work is taken back (checked) when the host
/// answers again. The record's path.
pub(super) fn record(state_dir: &Path, host: &str, key: &str, base: &str) -> std::path::PathBuf {
    let path = record_path(state_dir, host, key);
    if let Some(d) = path.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    let _ = crate::links::write(&path, format!("{base}\n").as_bytes());
    path
}

/// The base orch recorded for the attempt `key` lost with `host`; `None`: orch recorded no such
/// attempt lost.
fn recorded(state_dir: &Path, host: &str, key: &str) -> Option<String> {
    let bytes = crate::untrusted::read::optional(
        &record_path(state_dir, host, key),
        crate::untrusted::read::REPORT,
    )
    .ok()
    .flatten()?;
    let base = String::from_utf8_lossy(&bytes).trim().to_string();
    commit_id(&base).then_some(base)
}

/// Brings back the work of the attempts orch recorded lost while the host kept them (a host
/// that comes back), for the repository at `repo_root` (its cache `repo` on the host), its files
/// under `state_dir`, each checked against the plan's size limits; drops there what the host
/// kept of this repository's other attempts. See the module documentation.
pub(super) fn collect(
    conn: &Conn,
    (state_dir, repo_root): (&Path, &Path),
    repo: &str,
    limits: SizeLimits,
) {
    // One driver at a time: another that holds it brings back what there is.
    let Some(_held) = super::slots::collect_lock(state_dir, &conn.host) else {
        return;
    };
    let dir = conn.host.dir.as_str();
    let host = conn.host.name.as_str();
    let Ok(out) = conn.run(
        "the list of abandoned attempts",
        &format!("{DIR}{ABANDONED}"),
        &[dir],
        None,
        Duration::from_secs(60),
    ) else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let git = |args: &[&str]| super::refs::text(repo_root, args);
    let drop_there = |key: &str| {
        let _ = conn.run(
            "the removal of an abandoned attempt",
            &format!("{DIR}{FORGET}"),
            &[dir, repo, key],
            None,
            Duration::from_secs(120),
        );
    };
    for line in text.lines().take(100) {
        let mut words = line.split_whitespace();
        let (Some(key), Some(_), Some(of)) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        // Another repository's attempt (its cache on the host is another), or a name orch
        // does not make: not this driver's to judge.
        if !safe_name(key) || of != repo {
            continue;
        }
        let Some(base) = recorded(state_dir, host, key) else {
            // Not lost by orch's record (its snapshot refused, its driver ended otherwise):
            // nothing of it is taken, and nothing is left there for a later fetch.
            drop_there(key);
            say(&format!(
                "what host `{host}` kept of attempt `{key}` is dropped there: orch did not record that attempt lost with its host"
            ));
            continue;
        };
        if git(&["cat-file", "-e", &format!("{base}^{{commit}}")]).is_err() {
            continue;
        }
        let file = crate::state_layout::remote_bundle(state_dir, &format!("{key}.lost.bundle"));
        if let Some(d) = file.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let brought = conn.run_to_file(
            "the transfer of an abandoned attempt",
            (&format!("{DIR}{LOST_BUNDLE}"), &[dir, repo, key, &base]),
            &file,
            frames::SNAPSHOT_MAX as u64,
            Duration::from_secs(3600),
        );
        if let Err(e) = brought {
            // The host did not give it (the connection, a bundle over the limit): kept there,
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
        match taken {
            Ok(()) => say(&format!(
                "the work of an attempt lost with host `{host}` is saved as `{saved}` (not landed)"
            )),
            Err(e) => say(&format!(
                "the work of attempt `{key}`, lost with host `{host}`, is refused and dropped there: {e}"
            )),
        }
        // Saved here or refused: the host keeps nothing of it, and orch's record goes.
        drop_there(key);
        let _ = std::fs::remove_file(record_path(state_dir, host, key));
    }
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
