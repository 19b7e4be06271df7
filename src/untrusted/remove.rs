//! The one remover of a tree an agent could have filled (a report directory, an attempt's
//! `TMPDIR`, a private copy of a client's state, a worktree's leftovers): whatever is there
//! goes, however deep, however many entries, whatever permissions the agent left, and nothing
//! is ever followed.
//!
//! - Every operation is relative to a handle (`openat`, `unlinkat`, `renameat`, `fstatat`
//!   without following a link); a directory is opened `O_NOFOLLOW`, a link is removed as
//!   itself, a FIFO or a device is unlinked, never opened.
//! - No recursion and no depth limit: a directory inside the one being emptied is moved up to
//!   the top of it (a rename within the tree, under a fresh name) before it is emptied in turn,
//!   so that the tree is flat and only two handles are open whatever its depth.
//! - A directory whose permissions its owner (the agent) took away is given them back first
//!   (`0700`, only when it is the same user's: root needs none).
//! - Bounded in time, not by giving up: each call works at most [`BUDGET`]; what it leaves is
//!   said, and removed by the next call. Under a state directory the tree is first renamed
//!   into orch's own trash there ([`Trash`], `0700`, never mounted nor given to an agent), so
//!   that its place is free at once and what is left is found by the next `orch clean` or
//!   `orch up`, which empties the trash.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

/// The most time one removal works; the rest is left for the next one.
pub(crate) const BUDGET: Duration = Duration::from_secs(30);
/// The most names read from one directory at a time (memory bounded whatever its size).
const CHUNK: usize = 4096;

fn errno(e: Errno) -> io::Error {
    io::Error::from(e)
}

/// The work a removal may still do.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Work {
    until: Instant,
}

impl Work {
    /// [`BUDGET`] from now.
    pub(crate) fn new() -> Self {
        Self::for_(BUDGET)
    }

    /// `d` from now.
    pub(crate) fn for_(d: Duration) -> Self {
        Self {
            until: Instant::now() + d,
        }
    }

    fn spent(&self) -> bool {
        Instant::now() >= self.until
    }
}

/// Why a removal stopped before the end.
#[derive(Debug)]
enum Stop {
    /// Its time is up: the rest is left for the next removal.
    Budget,
    /// Nothing more could be removed.
    Stuck(io::Error),
}

impl Stop {
    fn said(self, what: &Path) -> io::Error {
        match self {
            Stop::Budget => io::Error::other(format!(
                "`{}` is not all removed yet (each removal works at most {} s): the next `orch clean` or `orch up` removes the rest",
                what.display(),
                BUDGET.as_secs()
            )),
            Stop::Stuck(e) => io::Error::new(
                e.kind(),
                format!("`{}` is not all removed: {e}", what.display()),
            ),
        }
    }
}

/// A fresh name for a directory moved up (none an agent is likely to have taken; a taken one
/// is never replaced: `RENAME_NOREPLACE`).
fn fresh_name() -> CString {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    CString::new(format!(".orch-rm-{}-{nanos:x}-{n}", std::process::id()))
        .unwrap_or_else(|_| CString::from(c".orch-rm"))
}

/// Renames `name` of `from` into `to` under a fresh name, never replacing anything.
fn move_into(from: BorrowedFd<'_>, name: &CString, to: BorrowedFd<'_>) -> io::Result<CString> {
    let mut last = Errno::EXIST;
    for _ in 0..16 {
        let new = fresh_name();
        match rustix::fs::renameat_with(
            from,
            name.as_c_str(),
            to,
            new.as_c_str(),
            RenameFlags::NOREPLACE,
        ) {
            Ok(()) => return Ok(new),
            Err(Errno::EXIST) => last = Errno::EXIST,
            Err(e) => return Err(errno(e)),
        }
    }
    Err(errno(last))
}

/// The directory `name` of `parent` given back its owner's permissions (`0700` added) when the
/// owner is this user and lacks them; a link or anything else is left as it is (opened
/// `O_PATH | O_NOFOLLOW`, changed through that handle only).
fn writable(parent: BorrowedFd<'_>, name: &CString) -> io::Result<()> {
    let p = rustix::fs::openat(
        parent,
        name.as_c_str(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)?;
    let s = rustix::fs::fstat(&p).map_err(errno)?;
    if s.st_uid == nix::unistd::geteuid().as_raw() && s.st_mode & 0o700 != 0o700 {
        // The very directory opened (the handle's own `/proc` entry, which names its inode).
        let own = format!("/proc/self/fd/{}", p.as_raw_fd());
        rustix::fs::chmod(
            own.as_str(),
            Mode::from_raw_mode((s.st_mode & 0o7777) | 0o700),
        )
        .map_err(errno)?;
    }
    Ok(())
}

/// Opens the directory `name` of `parent` for removing what is in it: never through a link,
/// its permissions given back first ([`writable`]).
fn open_emptied(parent: BorrowedFd<'_>, name: &CString) -> io::Result<OwnedFd> {
    writable(parent, name)?;
    rustix::fs::openat(
        parent,
        name.as_c_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)
}

/// At most [`CHUNK`] names of `dir`, `.` and `..` left out.
fn names(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let mut out = Vec::new();
    for e in rustix::fs::Dir::read_from(dir).map_err(errno)? {
        let e = e.map_err(errno)?;
        let n = e.file_name();
        if n.to_bytes() == b"." || n.to_bytes() == b".." {
            continue;
        }
        out.push(n.to_owned());
        if out.len() >= CHUNK {
            break;
        }
    }
    Ok(out)
}

/// Removes `name` of `root` or, for a directory that is not empty, takes a share of it: its
/// files removed, its directories moved up into `root`. Whether anything was done.
fn take(root: BorrowedFd<'_>, name: &CString, work: &Work) -> io::Result<bool> {
    let stat = match rustix::fs::statat(root, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(s) => s,
        Err(Errno::NOENT) => return Ok(true),
        Err(e) => return Err(errno(e)),
    };
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        return match rustix::fs::unlinkat(root, name.as_c_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(true),
            Err(e) => Err(errno(e)),
        };
    }
    match rustix::fs::unlinkat(root, name.as_c_str(), AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => return Ok(true),
        Err(Errno::NOTEMPTY | Errno::EXIST | Errno::ACCESS | Errno::PERM) => {}
        Err(e) => return Err(errno(e)),
    }
    let sub = open_emptied(root, name)?;
    let mut done = false;
    let mut failed = None;
    for n in names(sub.as_fd())? {
        if work.spent() {
            break;
        }
        let one = match rustix::fs::statat(&sub, n.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(errno(e)),
            Ok(s) if FileType::from_raw_mode(s.st_mode) == FileType::Directory => {
                // Moved up (its permissions given back first: a directory moved to another
                // parent is written itself, its `..`).
                writable(sub.as_fd(), &n).and_then(|()| move_into(sub.as_fd(), &n, root).map(drop))
            }
            Ok(_) => match rustix::fs::unlinkat(&sub, n.as_c_str(), AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => Ok(()),
                Err(e) => Err(errno(e)),
            },
        };
        match one {
            Ok(()) => done = true,
            Err(e) => failed = Some(e),
        }
    }
    drop(sub);
    match rustix::fs::unlinkat(root, name.as_c_str(), AtFlags::REMOVEDIR) {
        Ok(()) => return Ok(true),
        Err(Errno::NOENT) => return Ok(true),
        Err(_) => {}
    }
    match (done, failed) {
        (false, Some(e)) => Err(e),
        (d, _) => Ok(d),
    }
}

/// Removes everything in the directory `root` (held by its handle), within `work`.
fn empty(root: BorrowedFd<'_>, work: &Work) -> Result<(), Stop> {
    loop {
        let list = names(root).map_err(Stop::Stuck)?;
        if list.is_empty() {
            return Ok(());
        }
        let mut progressed = false;
        let mut failed = None;
        for n in &list {
            if work.spent() {
                return Err(Stop::Budget);
            }
            match take(root, n, work) {
                Ok(p) => progressed |= p,
                Err(e) => failed = Some(e),
            }
        }
        if !progressed {
            return Err(Stop::Stuck(failed.unwrap_or_else(|| {
                io::Error::other("nothing in it could be removed")
            })));
        }
    }
}

/// Removes `name` of `parent` in place, whatever it is, never following a link: a link or a
/// file itself, a directory with everything in it; nothing there is no error. `shown` names it
/// in an error.
pub(crate) fn remove_at(
    parent: BorrowedFd<'_>,
    name: &str,
    shown: &Path,
    work: &Work,
) -> io::Result<()> {
    let name = CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let stat = match rustix::fs::statat(parent, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(s) => s,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(errno(e)),
    };
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        return match rustix::fs::unlinkat(parent, name.as_c_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(errno(e)),
        };
    }
    let dir = open_emptied(parent, &name)?;
    empty(dir.as_fd(), work).map_err(|s| s.said(shown))?;
    drop(dir);
    match rustix::fs::unlinkat(parent, name.as_c_str(), AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(Stop::Stuck(errno(e)).said(shown)),
    }
}

/// Removes `path` in place, whatever it is, never following a link at it nor in it (the
/// directories on its way are orch's own: followed as given); within [`BUDGET`].
pub(crate) fn remove_path(path: &Path) -> io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{}` names no entry to remove", path.display()),
        ));
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let dir = match rustix::fs::open(
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(d) => d,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(errno(e)),
    };
    let name = name.to_str().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{}` is not UTF-8", path.display()),
        )
    })?;
    remove_at(dir.as_fd(), name, path, &Work::new())
}

/// Removes the file `rel` (its path from `root`, `/`-separated bytes, as git names it) of the
/// tree at `root` (orch's own directory, followed as given), never following a link on its way
/// nor at it: a directory on its way that is a link, a file or missing means no such file (git
/// would not see one there either): nothing is removed. A link at `rel` is removed as itself; a
/// directory there is left.
pub(crate) fn remove_file_beneath(root: &Path, rel: &[u8]) -> io::Result<()> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
    let mut parts: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
    let Some(last) = parts.pop() else {
        return Err(invalid("an empty path names no file"));
    };
    if std::iter::once(last)
        .chain(parts.iter().copied())
        .any(|p| p.is_empty() || p == b"." || p == b"..")
    {
        return Err(invalid("a path with an empty, `.` or `..` component"));
    }
    let c = |p: &[u8]| CString::new(p).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut dir = match rustix::fs::open(root, flags, Mode::empty()) {
        Ok(d) => d,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(errno(e)),
    };
    for part in parts {
        dir = match rustix::fs::openat(
            &dir,
            c(part)?.as_c_str(),
            flags | OFlags::NOFOLLOW,
            Mode::empty(),
        ) {
            Ok(d) => d,
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(()),
            Err(e) => return Err(errno(e)),
        };
    }
    let name = c(last)?;
    match rustix::fs::statat(&dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => return Ok(()),
        Ok(_) => {}
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(errno(e)),
    }
    match rustix::fs::unlinkat(&dir, name.as_c_str(), AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(errno(e)),
    }
}

/// orch's own trash in a state directory: a directory (`0700`) that only orch writes, where a
/// tree to remove is renamed first and emptied from.
#[derive(Debug)]
pub(crate) struct Trash {
    fd: OwnedFd,
    path: PathBuf,
}

impl Trash {
    /// `<parent>/<name>` (`parent` opened by the caller, its path `parent_path`), made when
    /// missing, `0700`; whatever else is there (a link, a file) removed first, never followed.
    pub(crate) fn open(parent: BorrowedFd<'_>, parent_path: &Path, name: &str) -> io::Result<Self> {
        let path = parent_path.join(name);
        let open = || {
            rustix::fs::openat(
                parent,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(errno(e)),
        }
        let fd = match open() {
            Ok(fd) => fd,
            Err(Errno::NOTDIR | Errno::LOOP) => {
                rustix::fs::unlinkat(parent, name, AtFlags::empty()).map_err(errno)?;
                rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)).map_err(errno)?;
                open().map_err(errno)?
            }
            Err(e) => return Err(errno(e)),
        };
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700)).map_err(errno)?;
        Ok(Self { fd, path })
    }

    /// Moves `name` of `parent` (a directory: anything else is removed at once, as itself)
    /// into the trash, never following a link; then empties the trash within `work`. `shown`
    /// names it in an error. Its place is free when this returns, even with an error that says
    /// what is left in the trash.
    pub(crate) fn remove(
        &self,
        parent: BorrowedFd<'_>,
        name: &str,
        shown: &Path,
        work: &Work,
    ) -> io::Result<()> {
        let c = CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let stat = match rustix::fs::statat(parent, c.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) => s,
            Err(Errno::NOENT) => return self.empty(work),
            Err(e) => return Err(errno(e)),
        };
        if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
            return match rustix::fs::unlinkat(parent, c.as_c_str(), AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => Ok(()),
                Err(e) => Err(errno(e)),
            };
        }
        // A directory moved to another parent is written itself (its `..`).
        writable(parent, &c)?;
        match move_into(parent, &c, self.fd.as_fd()) {
            Ok(_) => {}
            // Not on the trash's file system: removed where it is.
            Err(e) if e.raw_os_error() == Some(Errno::XDEV.raw_os_error()) => {
                return remove_at(parent, name, shown, work);
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "`{}` cannot be moved into `{}`: {e}",
                        shown.display(),
                        self.path.display()
                    ),
                ));
            }
        }
        self.empty(work)
    }

    /// Removes what is in the trash within `work`: an error says what is left.
    pub(crate) fn empty(&self, work: &Work) -> io::Result<()> {
        empty(self.fd.as_fd(), work).map_err(|s| s.said(&self.path))
    }

    /// Whether anything is left in it.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        names(self.fd.as_fd()).is_ok_and(|n| n.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// A tree deeper than any limit, wide, with a directory made `0000`, a `0500` one, a FIFO
    /// and links to outside: all gone, in place and through the trash, the outside untouched.
    #[test]
    fn any_tree_goes_and_no_link_is_followed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(outside.join("sub")).expect("outside");
        std::fs::write(outside.join("sub/keep"), "k").expect("write");
        let fill = |top: &Path| {
            let mut d = top.to_path_buf();
            for i in 0..300 {
                d.push(format!("d{i}"));
            }
            std::fs::create_dir_all(&d).expect("deep");
            std::fs::write(d.join("f"), "x").expect("write");
            std::os::unix::fs::symlink(&outside, d.join("out")).expect("link");
            for i in 0..5000 {
                std::fs::write(top.join(format!("f{i}")), "").expect("file");
            }
            nix::unistd::mkfifo(&top.join("fifo"), nix::sys::stat::Mode::S_IRWXU).expect("fifo");
            std::os::unix::fs::symlink(outside.join("sub"), top.join("link")).expect("link");
            std::fs::create_dir_all(top.join("closed/inner")).expect("mkdir");
            std::fs::write(top.join("closed/inner/f"), "x").expect("write");
            std::fs::set_permissions(
                top.join("closed/inner"),
                std::fs::Permissions::from_mode(0o500),
            )
            .expect("chmod");
            std::fs::set_permissions(top.join("closed"), std::fs::Permissions::from_mode(0o000))
                .expect("chmod");
        };
        let a = tmp.path().join("a");
        fill(&a);
        remove_path(&a).expect("removed in place");
        assert!(std::fs::symlink_metadata(&a).is_err());

        let state = tmp.path().join("state");
        std::fs::create_dir(&state).expect("state");
        let b = state.join("b");
        fill(&b);
        let sfd = rustix::fs::open(&state, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
            .expect("open");
        let trash = Trash::open(sfd.as_fd(), &state, ".trash").expect("trash");
        // No time at all: the place is free, the rest left in the trash and said.
        let e = trash
            .remove(sfd.as_fd(), "b", &b, &Work::for_(Duration::ZERO))
            .expect_err("left");
        assert!(e.to_string().contains("not all removed yet"), "{e}");
        assert!(std::fs::symlink_metadata(&b).is_err());
        assert!(!trash.is_empty());
        trash.empty(&Work::new()).expect("the rest");
        assert!(trash.is_empty());
        assert!(outside.join("sub/keep").exists());
        // A link in the trash's place is removed, never followed.
        drop(trash);
        std::fs::remove_dir(state.join(".trash")).expect("rmdir");
        std::os::unix::fs::symlink(&outside, state.join(".trash")).expect("link");
        let trash = Trash::open(sfd.as_fd(), &state, ".trash").expect("trash");
        assert!(std::fs::symlink_metadata(state.join(".trash")).is_ok_and(|m| m.is_dir()));
        assert!(trash.is_empty());
        assert!(outside.join("sub/keep").exists());
    }

    /// A file below real directories goes; one below a link on its way (to outside) stays, as
    /// does a directory at the path; a link at the path goes as itself; `..` is refused.
    #[test]
    fn a_file_beneath_is_removed_never_through_a_link() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (root, outside) = (tmp.path().join("root"), tmp.path().join("outside"));
        std::fs::create_dir_all(root.join("a/b")).expect("dirs");
        std::fs::create_dir_all(outside.join("d")).expect("outside");
        std::fs::write(root.join("a/b/f"), "x").expect("file");
        std::fs::write(outside.join("f"), "keep").expect("outside file");
        std::os::unix::fs::symlink(&outside, root.join("l")).expect("link");
        std::os::unix::fs::symlink(outside.join("f"), root.join("a/fl")).expect("file link");
        remove_file_beneath(&root, b"a/b/f").expect("removed");
        assert!(!root.join("a/b/f").exists());
        remove_file_beneath(&root, b"l/f").expect("nothing there");
        assert!(outside.join("f").exists());
        remove_file_beneath(&root, b"l/d").expect("nothing there");
        assert!(outside.join("d").is_dir());
        remove_file_beneath(&root, b"a/b").expect("a directory is left");
        assert!(root.join("a/b").is_dir());
        remove_file_beneath(&root, b"a/fl").expect("the link itself");
        assert!(std::fs::symlink_metadata(root.join("a/fl")).is_err());
        assert!(outside.join("f").exists());
        assert!(remove_file_beneath(&root, b"a/../l/f").is_err());
        assert!(remove_file_beneath(&root, b"").is_err());
        assert!(outside.join("f").exists());
    }
}
