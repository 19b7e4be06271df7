//! Writes that never follow a symlink an agent may have left: every file orch opens
//! for writing beneath a directory an agent can write (a status lock, a log, a prompt file) is
//! opened with `O_NOFOLLOW`; a directory orch makes there (a private `TMPDIR`) is made fresh,
//! never reused through a link; a path orch writes beneath inside a worktree is checked for
//! symlinked leading directories first ([`symlinked_parent`]), which a worktree's own writer
//! removes ([`remove_links`]) and anything else refuses ([`refuse_symlinked_parent`]).
//!
//! A symlink at such a path is never orch's: orch makes none there. Refusing names the path, so
//! a person can see what was planted. Reads of such files are [`crate::untrusted::read`]'s.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// `OpenOptions` that refuse a symlink at the path's last component (`O_NOFOLLOW`: the open fails
/// with `ELOOP`, whether the link dangles or not). Set the access mode as usual; map the error
/// with [`refused`].
pub(crate) fn no_follow() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.custom_flags(nix::libc::O_NOFOLLOW);
    o
}

/// `e`, the error of an open of `path` with [`no_follow`], made to say what happened when the
/// path was a symlink.
pub(crate) fn refused(path: &Path, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(nix::libc::ELOOP) {
        io::Error::new(
            e.kind(),
            format!(
                "`{}` is a symbolic link, which orch does not write through (remove it)",
                path.display()
            ),
        )
    } else {
        e
    }
}

/// Opens (creating, never truncating) the lock file `path` for reading and writing, never through
/// a symlink.
pub(crate) fn open_lock(path: &Path) -> io::Result<File> {
    no_follow()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| refused(path, e))
}

/// Opens `path` for appending, created when missing, never through a symlink (its directory is
/// made first when missing, refusing a symlinked one).
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        refuse_link(dir)?;
    }
    no_follow()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| refused(path, e))
}

/// Appends `line` and its newline to `path` ([`open_append`]) in one write: orch's lines in a log
/// the agent's wrapper (or another of orch's writers) appends to at the same time are never torn
/// (`writeln!` on a `File` writes the line and its newline apart, and another writer's output
/// could land between them, glued onto orch's line).
pub(crate) fn append_line(path: &Path, line: &str) -> io::Result<()> {
    use std::io::Write;
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    open_append(path)?.write_all(&bytes)
}

/// Writes `bytes` to `path` (created or truncated), never through a symlink at `path`.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = no_follow()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| refused(path, e))?;
    f.write_all(bytes)
}

/// An error when `path` itself is a symlink.
pub(crate) fn refuse_link(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(refused(
            path,
            io::Error::from_raw_os_error(nix::libc::ELOOP),
        )),
        _ => Ok(()),
    }
}

/// A private directory made fresh at `path` (its parent, orch's own, made when missing): whatever is there first
/// (a symlink planted at the predictable name, a stale directory of an earlier attempt) is
/// removed, never followed; then the directory is made with `mkdir`, which does not follow a
/// link either.
pub(crate) fn fresh_dir(path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    crate::untrusted::remove::remove_path(path)?;
    std::fs::create_dir(path)
}

/// The first of the leading directories of `rel` (relative, beneath `base`; `rel`'s own last
/// component not included) that is a symlink, as a path beneath `base`. Each is looked at with
/// `lstat` from the top, so nothing beyond a link is ever looked at.
pub(crate) fn symlinked_parent(base: &Path, rel: &Path) -> Option<PathBuf> {
    let mut at = base.to_path_buf();
    let parent = rel.parent()?;
    for c in parent.components() {
        let Component::Normal(name) = c else {
            continue;
        };
        at.push(name);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return Some(at),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// An error naming the link when a leading directory of `rel` beneath `base` is a symlink.
pub(crate) fn refuse_symlinked_parent(base: &Path, rel: &Path) -> io::Result<()> {
    match symlinked_parent(base, rel) {
        Some(link) => Err(io::Error::other(format!(
            "`{}` is a symbolic link, which orch does not write beneath (remove it)",
            link.display()
        ))),
        None => Ok(()),
    }
}

/// Removes each of `dirs` (relative paths of directories orch is about to write beneath in the
/// worktree `base`) that is a symlink, the way git's own checkout does. `dirs` must come sorted
/// (a directory before what is beneath it) so that no path beyond a link is ever looked at: a
/// path beneath one just removed is simply not there. Returns the links removed.
pub(crate) fn remove_links<'a>(
    base: &Path,
    dirs: impl IntoIterator<Item = &'a Path>,
) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for rel in dirs {
        if let Some(link) = symlinked_parent(base, &rel.join("x")) {
            std::fs::remove_file(&link)?;
            removed.push(link);
        }
    }
    Ok(removed)
}

/// The symlinks among `dirs` and their leading directories beneath `base` (the same walk as
/// [`remove_links`], nothing removed): what a write beneath them would go through.
pub(crate) fn find_links<'a>(
    base: &Path,
    dirs: impl IntoIterator<Item = &'a Path>,
) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    for rel in dirs {
        if let Some(link) = symlinked_parent(base, &rel.join("x"))
            && !found.contains(&link)
        {
            found.push(link);
        }
    }
    found
}

/// Makes orch's own directory `dir` its user's alone (mode 0700) when it is this user's and
/// others may enter it: what agents leave below it (a set-user-ID program an agent made in its
/// worktree, a report directory's files) is then out of every other user's reach. Never
/// follows a link at `dir` (opened `O_NOFOLLOW | O_DIRECTORY`, changed through that handle);
/// a directory of another user, or one that cannot be opened, is left as it is.
pub(crate) fn own_only(dir: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(file) = no_follow()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_DIRECTORY)
        .open(dir)
    else {
        return;
    };
    let Ok(meta) = file.metadata() else {
        return;
    };
    if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o077 == 0 {
        return;
    }
    let _ = file.set_permissions(std::fs::Permissions::from_mode(0o700));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_open_never_follows_a_link_dangling_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let link = dir.path().join("status.json.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open_append(&link).unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        assert!(write(&link, b"x").is_err());
        assert!(!target.exists());
        std::fs::write(&target, "kept").unwrap();
        assert!(open_append(&link).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "kept");
        let plain = dir.path().join("a.log");
        open_append(&plain).unwrap();
        write(&plain, b"y").unwrap();
        assert_eq!(std::fs::read_to_string(&plain).unwrap(), "y");
    }

    #[test]
    fn a_fresh_dir_replaces_a_planted_link_without_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "k").unwrap();
        let tmp = dir.path().join("orch-1-p-1.1-2");
        std::os::unix::fs::symlink(&outside, &tmp).unwrap();
        fresh_dir(&tmp).unwrap();
        let m = std::fs::symlink_metadata(&tmp).unwrap();
        assert!(m.is_dir() && !m.file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(outside.join("keep")).unwrap(), "k");
        std::fs::write(tmp.join("stale"), "s").unwrap();
        fresh_dir(&tmp).unwrap();
        assert!(!tmp.join("stale").exists());
    }

    #[test]
    fn symlinked_leading_directories_are_found_refused_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("wt");
        let outside = dir.path().join("home");
        std::fs::create_dir_all(base.join("a/b")).unwrap();
        std::fs::create_dir_all(outside.join("sub")).unwrap();
        std::os::unix::fs::symlink(&outside, base.join("cache")).unwrap();
        assert_eq!(symlinked_parent(&base, Path::new("a/b/f")), None);
        assert_eq!(symlinked_parent(&base, Path::new("cache")), None);
        assert_eq!(
            symlinked_parent(&base, Path::new("cache/sub/f")),
            Some(base.join("cache"))
        );
        let err = refuse_symlinked_parent(&base, Path::new("cache/sub/f")).unwrap_err();
        assert!(err.to_string().contains("cache"), "{err}");
        let dirs = [Path::new("a"), Path::new("cache"), Path::new("cache/sub")];
        assert_eq!(find_links(&base, dirs), [base.join("cache")]);
        assert!(base.join("cache").exists());
        let removed = remove_links(&base, dirs).unwrap();
        assert_eq!(removed, [base.join("cache")]);
        assert!(outside.join("sub").is_dir(), "removed beyond the link");
        assert!(base.join("a/b").is_dir());
    }

    /// orch's lines and another writer's output, appended to one log at once (the agent's
    /// wrapper and orch's network proxy, as in a resolver's log): no line of either is torn or
    /// glued onto another. CI lost a resolver's daemon's first line this way (glued onto a note
    /// of orch's written with `writeln!`, its newline a second write).
    #[test]
    fn lines_appended_at_once_by_two_writers_stay_whole() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("resolve.log");
        let orch_line = "=== orch: network: refused 127.0.0.1:9 (not in network_allow) ===";
        let agent_chunk =
            "exfil: daemon-direct-http denied refused\nexfil: daemon-dns-udp denied refused\n";
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..3000 {
                    append_line(&log, orch_line).unwrap();
                }
            });
            s.spawn(|| {
                let mut f = open_append(&log).unwrap();
                for _ in 0..3000 {
                    f.write_all(agent_chunk.as_bytes()).unwrap();
                }
            });
        });
        let text = std::fs::read_to_string(&log).unwrap();
        let mut counts = (0, 0);
        for line in text.lines() {
            if line == orch_line {
                counts.0 += 1;
            } else {
                assert!(
                    line.starts_with("exfil: daemon-") && line.ends_with(" denied refused"),
                    "a torn line: {line:?}"
                );
                counts.1 += 1;
            }
        }
        assert_eq!(counts, (3000, 6000));
    }
}
