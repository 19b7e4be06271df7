//! The attempts a host kept when their driver was lost (the connection failed while the host
//! ran on, [`super::remote_run`]): the next attempt that reaches the host brings each one's last
//! snapshot back, fetched with git's object checks on under
//! `refs/orch/attempts/lost/<host>/<key>` (saved, never landed), streamed to a file here (at
//! most [`frames::SNAPSHOT_MAX`] bytes, as a live snapshot), and only once it is safe here is
//! what the host keeps for the attempt removed (its worktree, its snapshot ref, its directory).
//! One driver at a time brings back a host's attempts ([`super::slots::collect_lock`]).

use std::path::Path;
use std::time::Duration;

use super::conn::Conn;
use super::frames;
use super::host::DIR;
use super::job::{commit_id, safe_name, snapshot_ref};
use super::lead::say;

/// The abandoned attempts of this repository on the host: `<key> <base>` per line.
const ABANDONED: &str = r#"for a in "$d"/attempts/*/abandoned; do
  [ -f "$a" ] || continue
  k=${a%/abandoned}; k=${k##*/}
  printf '%s %s\n' "$k" "$(head -c 100 "$a")"
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

/// Brings back the work of attempts whose driver was lost while the host kept them (a host
/// that comes back), for the repository at `repo_root` (its cache `repo` on the host), its files
/// under `state_dir`; see the module documentation.
pub(super) fn collect(conn: &Conn, (state_dir, repo_root): (&Path, &Path), repo: &str) {
    // One driver at a time: another that holds it brings back what there is.
    let Some(_held) = super::slots::collect_lock(state_dir, &conn.host) else {
        return;
    };
    let dir = conn.host.dir.as_str();
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
    for line in text.lines().take(100) {
        let Some((key, base)) = line.split_once(' ') else {
            continue;
        };
        let base = base.trim();
        if !safe_name(key)
            || !commit_id(base)
            || git(&["cat-file", "-e", &format!("{base}^{{commit}}")]).is_err()
        {
            continue;
        }
        let file = crate::state_layout::remote_bundle(state_dir, &format!("{key}.lost.bundle"));
        if let Some(d) = file.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let brought = conn.run_to_file(
            "the transfer of an abandoned attempt",
            (&format!("{DIR}{LOST_BUNDLE}"), &[dir, repo, key, base]),
            &file,
            frames::SNAPSHOT_MAX as u64,
            Duration::from_secs(3600),
        );
        let saved = format!("refs/orch/attempts/lost/{}/{key}", conn.host.name);
        let fetched = brought
            .map_err(|e| e.to_string())
            .and_then(|_| super::lead::fetch_bundle(repo_root, &file, &snapshot_ref(key), &saved));
        let _ = std::fs::remove_file(&file);
        // Safe here only when the ref is there, at a commit on the attempt's base.
        let safe = fetched.and_then(|_| {
            let parent = git(&["rev-parse", "--verify", &format!("{saved}^1")])?;
            if parent == base {
                Ok(())
            } else {
                let _ = git(&["update-ref", "-d", &saved]);
                Err(format!(
                    "its snapshot is not on the base {base} the host named"
                ))
            }
        });
        match safe {
            Ok(()) => {
                say(&format!(
                    "the work of an attempt lost with host `{}` is saved as `{saved}` (not landed)",
                    conn.host.name
                ));
                let _ = conn.run(
                    "the removal of an abandoned attempt",
                    &format!("{DIR}{FORGET}"),
                    &[dir, repo, key],
                    None,
                    Duration::from_secs(120),
                );
            }
            Err(e) => say(&format!(
                "cannot take back the work of attempt `{key}` on host `{}` (kept there): {e}",
                conn.host.name
            )),
        }
    }
}
