//! orch's private root: the one directory of the machine where orch keeps what is its own and
//! must stay out of every agent's reach (the control sockets of its SSH connections). Every
//! process orch confines sees an empty, read-only directory there, whatever the manifest grants
//! ([`hide_private_root`], run by `orch sandbox-exec` before the file rules).
//!
//! It is `/run/user/<uid>/orch` where the user's runtime directory exists (private to the user,
//! in memory), else `/tmp/orch-<uid>`; made with mode 0700, refused when it is not a directory
//! of this user (a link, another user's).

use std::path::{Path, PathBuf};

/// The private root of this user (the same for every process of the user: it depends on the uid
/// only, never on the environment).
pub(crate) fn private_root() -> PathBuf {
    use std::os::unix::fs::MetadataExt as _;
    let uid = nix::unistd::geteuid().as_raw();
    let [run, tmp] = candidates();
    match run.parent().map(std::fs::symlink_metadata) {
        Some(Ok(m)) if m.is_dir() && m.uid() == uid && m.mode() & 0o077 == 0 => run,
        _ => tmp,
    }
}

/// Makes `root` (mode 0700), or checks that the one there is a directory of this user that no
/// one else can enter.
pub(crate) fn make_private_root(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
    match std::fs::DirBuilder::new().mode(0o700).create(root) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let m = std::fs::symlink_metadata(root)?;
    if !m.is_dir() || m.uid() != nix::unistd::geteuid().as_raw() {
        return Err(std::io::Error::other(format!(
            "`{}` (orch's private directory) is not a directory of this user: remove it",
            root.display()
        )));
    }
    if m.mode() & 0o077 != 0 {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Hides the private root from this process and everything it starts: a mount namespace of its
/// own (in a user namespace of its own where this process may not make one otherwise) where an
/// empty, read-only file system lies over it. The confined process that follows (Landlock) can
/// neither unmount it nor reach the real directory another way (`/proc/<pid>/root` and
/// `/proc/<pid>/fd` of orch's processes are denied it: tracing a process outside its domain).
/// Run before the file rules, which forbid mounts. Fails closed: an error runs nothing.
pub(crate) fn hide_private_root() -> Result<(), String> {
    use nix::mount::{MsFlags, mount};
    use nix::sched::{CloneFlags, unshare};
    let root = private_root();
    // Made now if missing: a directory made after the namespace would be seen through it.
    make_private_root(&root).map_err(|e| format!("cannot make `{}`: {e}", root.display()))?;
    // Its own System V IPC too: the lead's and the other attempts' shared memory, semaphores and
    // message queues (which Landlock does not control) are out of its sight.
    let own = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC;
    if unshare(own).is_err() {
        let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
        unshare(CloneFlags::CLONE_NEWUSER | own).map_err(|e| {
            format!("cannot make a mount namespace to hide orch's private directory (unshare): {e}")
        })?;
        map_own_ids(uid, gid)?;
    }
    // Nothing mounted here reaches the machine's namespace.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("cannot make the mounts private: {e}"))?;
    // The private root, and the other place it can have (`/tmp/orch-<uid>` once the user's
    // runtime directory appears, or the other way round), which earlier runs of orch may have
    // filled: an empty, read-only file system over each.
    for dir in candidates()
        .into_iter()
        .filter(|c| *c == root || std::fs::symlink_metadata(c).is_ok_and(|m| m.is_dir()))
    {
        mount(
            Some("tmpfs"),
            &dir,
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("size=4k,mode=0500"),
        )
        .map_err(|e| {
            format!(
                "cannot hide orch's private directory `{}`: {e}",
                dir.display()
            )
        })?;
    }
    Ok(())
}

/// Both places the private root can have: `/run/user/<uid>/orch` and `/tmp/orch-<uid>`.
fn candidates() -> [PathBuf; 2] {
    let uid = nix::unistd::geteuid().as_raw();
    [
        PathBuf::from(format!("/run/user/{uid}/orch")),
        PathBuf::from(format!("/tmp/orch-{uid}")),
    ]
}

/// How [`take`] takes a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// Until it is free.
    Block,
    /// Now or not at all.
    Try,
}

/// The most times [`take`] opens a lock again that a sweep removed meanwhile.
const RETAKES: usize = 64;

/// The lock that stands for `file` (a status file's, the ports', a merge's), taken exclusively:
/// `Ok(None)` when `wait` is [`Wait::Try`] and another process holds it. It lies in orch's
/// private root (`<private root>/locks/<digest of file's canonical path>.lock`), out of every
/// confined agent's reach: an agent can open, and so lock, any file it may read (Landlock
/// restricts writes, not locks; `flock` and a read lock need only a descriptor), and a lock it
/// held beside the file (`status.json.lock`) froze every orch process that waited for it. Two
/// paths of one file (through a link) share a lock: the directory is canonical. Two files whose
/// digests agree would share one too (they only wait for each other more).
///
/// The lock file records the path it stands for, so that [`sweep_private_locks`] can remove it
/// once that path's directory is gone; a lock taken on a file the sweep removed meanwhile is
/// let go and taken again at the path.
pub(crate) fn private_lock(file: &Path) -> std::io::Result<std::fs::File> {
    take(file, Wait::Block)?.ok_or_else(|| std::io::Error::other("the lock was not taken"))
}

/// [`private_lock`] if no other process holds it now, else `None`.
pub(crate) fn try_private_lock(file: &Path) -> std::io::Result<Option<std::fs::File>> {
    take(file, Wait::Try)
}

/// The lock that stands for `file`, taken as `wait` says ([`private_lock`]).
fn take(file: &Path, wait: Wait) -> std::io::Result<Option<std::fs::File>> {
    use std::os::unix::fs::{DirBuilderExt as _, FileExt as _};
    let (path, full) = lock_place(file)?;
    let root = private_root();
    make_private_root(&root)?;
    let locks = root.join("locks");
    match std::fs::DirBuilder::new().mode(0o700).create(&locks) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            crate::links::refuse_link(&locks)?;
        }
        Err(e) => return Err(e),
    }
    for _ in 0..RETAKES {
        let f = crate::links::open_lock(&path)?;
        match wait {
            Wait::Block => f.lock()?,
            Wait::Try => match f.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            },
        }
        if !same_file(&f, &path) {
            continue;
        }
        if f.metadata()?.len() == 0 {
            f.write_all_at(full.as_os_str().as_encoded_bytes(), 0)?;
        }
        return Ok(Some(f));
    }
    Err(std::io::Error::other(format!(
        "cannot keep the lock `{}`: it was removed {RETAKES} times while being taken",
        path.display()
    )))
}

/// Whether the open `f` is still the file at `path` (not one a sweep removed).
fn same_file(f: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (f.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The most lock files one sweep looks at.
const SWEEP_MAX: usize = 10_000;
/// The most of a lock file read (the path it stands for).
const LOCK_TEXT_MAX: usize = 4096;
/// A lock file that records no path (an earlier orch's) is removed once it is this old.
const UNNAMED_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Removes the lock files of this user's private root that stand for a file whose directory is
/// gone (a repository removed, a plan's state cleaned), and those an earlier orch left without
/// a path that are more than a day old; never one a process holds (each is taken before it is
/// removed, and a taker finds it gone: [`take`]). At most [`SWEEP_MAX`] files are
/// looked at; returns how many were removed.
pub(crate) fn sweep_private_locks() -> usize {
    use std::os::unix::fs::FileExt as _;
    let dir = private_root().join("locks");
    if crate::links::refuse_link(&dir).is_err() {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten().take(SWEEP_MAX) {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "lock") {
            continue;
        }
        let Ok(f) = crate::links::no_follow().read(true).write(true).open(&path) else {
            continue;
        };
        let mut text = vec![0u8; LOCK_TEXT_MAX];
        let Ok(n) = f.read_at(&mut text, 0) else {
            continue;
        };
        let stale = match n {
            0 => f
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > UNNAMED_AGE),
            _ => {
                use std::os::unix::ffi::OsStrExt as _;
                let stands_for = Path::new(std::ffi::OsStr::from_bytes(&text[..n]));
                stands_for.is_absolute()
                    && stands_for
                        .parent()
                        .is_some_and(|d| std::fs::symlink_metadata(d).is_err())
            }
        };
        if stale
            && f.try_lock().is_ok()
            && same_file(&f, &path)
            && std::fs::remove_file(&path).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Where [`private_lock`] takes the lock that stands for `file`, made or not: for a person
/// (or a test) who needs to hold a status file's lock as orch's writers take it.
pub fn private_lock_path(file: &Path) -> std::io::Result<PathBuf> {
    lock_place(file).map(|(path, _)| path)
}

/// The lock's path, and the canonical path of `file` it stands for.
fn lock_place(file: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(dir).or_else(|_| std::path::absolute(dir))?;
    let full = file.file_name().map_or(dir.clone(), |n| dir.join(n));
    let name = format!("{:016x}.lock", fnv1a(full.as_os_str().as_encoded_bytes()));
    Ok((private_root().join("locks").join(name), full))
}

/// FNV-1a, 64 bits: the same for every build of orch (unlike the standard library's hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// In a user namespace just made: this process's own uid and gid mapped to themselves (one each),
/// `setgroups` denied first (needed before an unprivileged `gid_map`; the process keeps the groups
/// it has).
pub(crate) fn map_own_ids(uid: nix::unistd::Uid, gid: nix::unistd::Gid) -> Result<(), String> {
    let write = |file: &str, text: String| {
        std::fs::write(Path::new("/proc/self").join(file), text)
            .map_err(|e| format!("cannot write /proc/self/{file}: {e}"))
    };
    write("setgroups", "deny".into())?;
    write("uid_map", format!("{uid} {uid} 1\n"))?;
    write("gid_map", format!("{gid} {gid} 1\n"))
}

/// Gives up every capability this process could pass to what it runs: all of the bounding set
/// (so that root's next `exec` grants none, `CAP_DAC_READ_SEARCH` included: with it
/// `open_by_handle_at` opens a directory behind the mount that hides it), the ambient and the
/// inheritable sets. Where this process may not (a user that is not root, outside a namespace of
/// its own) it has none to give. Run after the steps that need them (the namespaces, the mount)
/// and before the file rules.
pub(crate) fn drop_all_capabilities() -> Result<(), String> {
    use rustix::thread::CapabilitySet as C;
    let mut failed = None;
    let all: Vec<C> = C::all()
        .iter()
        .filter(|c| *c != C::SETPCAP)
        .chain([C::SETPCAP])
        .collect();
    for c in all {
        if let Err(e) = rustix::thread::remove_capability_from_bounding_set(c)
            && e != rustix::io::Errno::INVAL
            && failed.is_none()
        {
            failed = Some(e);
        }
    }
    let _ = rustix::thread::clear_ambient_capability_set();
    if let Ok(mut sets) = rustix::thread::capabilities(None) {
        sets.inheritable = C::empty();
        let _ = rustix::thread::set_capabilities(None, sets);
    }
    match failed {
        // Without CAP_SETPCAP there is nothing to drop: an exec grants such a process none.
        Some(e) if nix::unistd::geteuid().is_root() && e != rustix::io::Errno::PERM => {
            Err(format!("cannot drop the capabilities: {e}"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_users_whatever_the_environment() {
        let a = private_root();
        let uid = nix::unistd::geteuid().as_raw();
        assert!(
            a == Path::new(&format!("/run/user/{uid}/orch"))
                || a == Path::new(&format!("/tmp/orch-{uid}")),
            "{a:?}"
        );
        make_private_root(&a).expect("made");
        use std::os::unix::fs::MetadataExt as _;
        assert_eq!(std::fs::metadata(&a).expect("meta").mode() & 0o777, 0o700);
    }

    #[test]
    fn a_lock_of_a_gone_directory_is_swept_and_one_in_use_is_not() {
        let tmp = tempfile::tempdir().expect("tmp");
        let gone = tmp.path().join("gone");
        let kept = tmp.path().join("kept");
        let held = tmp.path().join("held");
        for d in [&gone, &kept, &held] {
            std::fs::create_dir(d).expect("mkdir");
        }
        let lock_of = |d: &Path| private_lock_path(&d.join("status.json.lock")).expect("place");
        drop(private_lock(&gone.join("status.json.lock")).expect("taken"));
        drop(private_lock(&kept.join("status.json.lock")).expect("taken"));
        let holding = private_lock(&held.join("status.json.lock")).expect("taken");
        // What each stands for is recorded in it.
        let text = std::fs::read_to_string(lock_of(&gone)).expect("recorded");
        assert!(text.ends_with("gone/status.json.lock"), "{text}");
        std::fs::remove_dir(&gone).expect("rm");
        std::fs::remove_dir(&held).expect("rm");
        sweep_private_locks();
        assert!(!lock_of(&gone).exists(), "the gone directory's lock stayed");
        assert!(
            lock_of(&kept).exists(),
            "a lock of a directory still there went"
        );
        assert!(lock_of(&held).exists(), "a lock held was removed");
        // Once let go, it goes at the next sweep; taken again, it is made again.
        drop(holding);
        sweep_private_locks();
        assert!(!lock_of(&held).exists());
        std::fs::create_dir(&gone).expect("mkdir");
        let again = private_lock(&gone.join("status.json.lock")).expect("taken again");
        assert!(lock_of(&gone).exists());
        drop(again);
    }

    #[test]
    fn a_lock_removed_while_a_taker_waits_is_taken_again_at_its_path() {
        let tmp = tempfile::tempdir().expect("tmp");
        let file = tmp.path().join("status.json.lock");
        let place = private_lock_path(&file).expect("place");
        let first = private_lock(&file).expect("taken");
        let (tx, rx) = std::sync::mpsc::channel();
        let f2 = file.clone();
        let waiter = std::thread::spawn(move || {
            let got = private_lock(&f2).expect("taken after");
            tx.send(()).expect("send");
            got
        });
        // The sweep's way: the holder removes the file, then lets go.
        std::fs::remove_file(&place).expect("rm");
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(30))
            .expect("the waiter took the lock");
        let second = waiter.join().expect("join");
        // It holds the file at the path (made again), not the removed one.
        assert!(same_file(&second, &place));
        assert!(try_private_lock(&file).expect("tried").is_none());
    }

    #[test]
    fn a_link_or_a_file_at_the_root_is_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path(), &link).expect("link");
        assert!(make_private_root(&link).is_err());
        let file = tmp.path().join("file");
        std::fs::write(&file, b"").expect("file");
        assert!(make_private_root(&file).is_err());
    }
}
