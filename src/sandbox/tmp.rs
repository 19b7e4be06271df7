//! The one directory of this orch process where the private `TMPDIR` of every process it
//! confines is made (`<system tmp>/orch-tmp-<pid>-<n>`, mode 0700, a name no one could have
//! made first: a directory found there is passed over for the next name). Every confined
//! process has it denied for reading ([`super::args`]) and its own `TMPDIR` beneath it
//! writable: another attempt's temporary files (its scratch copies, its sockets) are out of its
//! reach, as they are on an ssh host, where each attempt's directory is out of the others'.
//!
//! An unconfined agent (`sandbox = "off"`) may move the directory away and put a link in its
//! place, so that orch's next `TMPDIR` (made fresh, whatever was at its name removed) and its
//! removal at the attempt's end would happen where the link points. So each use first checks
//! that the directory is still the one orch made (not a link, the same inode); one that is not
//! is left alone and a new one is made for what follows.

use std::path::PathBuf;
use std::sync::Mutex;

/// One directory made: its path and what it was when made.
#[derive(Clone, Debug)]
struct Made {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

/// Every directory this process made, the one in use last.
static ROOTS: Mutex<Vec<Made>> = Mutex::new(Vec::new());

/// This process's directory of private `TMPDIR`s: the one made before if it is still that
/// directory, else a new one.
pub(crate) fn tmp_root() -> PathBuf {
    let mut roots = ROOTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(m) = roots.last()
        && intact(m)
    {
        return m.path.clone();
    }
    let m = make(roots.len());
    let path = m.path.clone();
    roots.push(m);
    path
}

/// The directories [`tmp_root`] has made (each denied to every confined process).
pub(crate) fn made_tmp_roots() -> Vec<PathBuf> {
    let roots = ROOTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    roots.iter().map(|m| m.path.clone()).collect()
}

/// Removes the directories when nothing is left in them (an attempt that outlives this
/// process, to be adopted by the next run, keeps its `TMPDIR`); a link put in the place of
/// one is not followed (`rmdir` of a link fails).
pub(crate) fn remove_tmp_root() {
    let roots = ROOTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for m in roots.iter().filter(|m| intact(m)) {
        let _ = std::fs::remove_dir(&m.path);
    }
}

/// Removes what earlier orch processes of this user that are gone (a `kill -9`) left in the
/// system's temporary directory: each `orch-tmp-<pid>-<n>` (and an older orch's
/// `orch-merge-tree-<pid>-<n>`) directory of this user whose
/// process no longer runs, never following a link, within the remover's budget. A live
/// process's (another `orch up` of another repository) is left alone.
pub(crate) fn remove_dead_roots() {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(me) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return;
    };
    let base = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir(&base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        // Also the scratch repositories of `git merge-tree` that earlier orch made here.
        let Some(pid) = name
            .to_str()
            .and_then(|n| {
                n.strip_prefix("orch-tmp-")
                    .or_else(|| n.strip_prefix("orch-merge-tree-"))
            })
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = e.path();
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == me) {
            let _ = crate::untrusted::remove::remove_path(&path);
        }
    }
}

/// Removes the private `TMPDIR` `path` (and all it holds), unless it lies in a directory of
/// [`tmp_root`]'s that is no longer the one orch made (moved away, a link in its place): then
/// it is left where it is, and nothing the link points to is touched. Returns whether `path`
/// lies in one of those directories (a `TMPDIR` of orch's).
pub(crate) fn remove_tmp(path: &std::path::Path) -> bool {
    let (ours, swapped) = {
        let roots = ROOTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let of = roots.iter().find(|m| path.starts_with(&m.path));
        (of.is_some(), of.is_some_and(|m| !intact(m)))
    };
    if !swapped {
        let _ = crate::untrusted::remove::remove_path(path);
    }
    ours
}

/// Whether `m` is still the directory orch made there.
fn intact(m: &Made) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::symlink_metadata(&m.path)
        .is_ok_and(|s| s.is_dir() && s.dev() == m.dev && s.ino() == m.ino)
}

fn make(generation: usize) -> Made {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
    let base = std::env::temp_dir();
    let pid = std::process::id();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = |n: u32| base.join(format!("orch-tmp-{pid}-{:x}", nanos.wrapping_add(n)));
    let start = u32::try_from(generation).unwrap_or(0).wrapping_mul(64);
    let mut path = name(start);
    for n in start..start.wrapping_add(64) {
        path = name(n);
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            // The first TMPDIR's own creation then reports why it cannot.
            Err(_) => break,
        }
    }
    let (dev, ino) = std::fs::symlink_metadata(&path)
        .map(|m| (m.dev(), m.ino()))
        .unwrap_or((0, 0));
    Made { path, dev, ino }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_this_users_alone_and_replaced_when_moved_away() {
        use std::os::unix::fs::MetadataExt as _;
        let a = tmp_root();
        assert_eq!(a, tmp_root());
        assert!(made_tmp_roots().contains(&a));
        let m = std::fs::symlink_metadata(&a).expect("made");
        assert!(m.is_dir());
        assert_eq!(m.mode() & 0o777, 0o700);
        assert!(
            a.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("orch-tmp-")),
            "{a:?}"
        );
        // Moved away and a link put in its place: a new directory, the link left alone.
        let elsewhere = tempfile::tempdir().expect("elsewhere");
        let moved = a.with_extension("moved");
        std::fs::rename(&a, &moved).expect("move");
        std::os::unix::fs::symlink(elsewhere.path(), &a).expect("link");
        let b = tmp_root();
        assert_ne!(a, b);
        assert!(std::fs::symlink_metadata(&b).expect("made").is_dir());
        assert!(made_tmp_roots().contains(&a) && made_tmp_roots().contains(&b));
        remove_tmp_root();
        assert!(std::fs::symlink_metadata(&a).expect("link").is_symlink());
        assert!(elsewhere.path().is_dir());
        let _ = std::fs::remove_file(&a);
        let _ = std::fs::remove_dir(&moved);
    }
}
