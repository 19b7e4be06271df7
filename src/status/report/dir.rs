//! A report directory as orch holds it: a handle opened without following a link at any step
//! below the state directory (`O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC`, component by component),
//! and every file operation in it relative to that handle (`openat`, `renameat`, `unlinkat`,
//! `fstatat`), never by a path. An agent writes its own report directory (a container's mounts
//! it, `sandbox = "off"` writes anything): whatever it puts at the directory's path (a link to
//! another plan's directory, another directory moved into place) is never what orch reads or
//! writes, because orch compares the directory it opens with the one it made ([`DirId`], kept
//! with a handle held open, which keeps its inode from being reused) and touches nothing else.

use std::io::{self, Write as _};
use std::os::fd::{AsFd as _, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use serde::Serialize;

use crate::untrusted::read::{self, Limit, ReadError};
use crate::untrusted::remove;

/// Which directory a handle is (its device and inode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DirId {
    dev: u64,
    ino: u64,
}

/// An open report directory.
#[derive(Clone, Debug)]
pub(crate) struct ReportDir {
    fd: Arc<OwnedFd>,
    /// Where orch looked for it (for messages only: nothing is opened by it).
    path: PathBuf,
}

fn errno(e: rustix::io::Errno) -> io::Error {
    io::Error::from(e)
}

/// `e`, naming `path`.
fn at(path: &Path, e: io::Error) -> io::Error {
    let what = if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
        "is a symbolic link, which orch does not follow here".to_string()
    } else if e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) {
        "is not a directory".to_string()
    } else {
        return io::Error::new(e.kind(), format!("`{}`: {e}", path.display()));
    };
    io::Error::new(e.kind(), format!("`{}` {what}", path.display()))
}

/// One path component (no `/`, not `.` nor `..`): a name orch made.
fn component(name: &str) -> io::Result<&str> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{name}` is not a single path component"),
        ));
    }
    Ok(name)
}

/// The directory `name` of `parent`, opened without following a link at it (a link there is
/// `ELOOP`, though the kernel says `ENOTDIR` for it with `O_DIRECTORY`).
fn open_dir_at(parent: BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    let name = component(name)?;
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        let link = e == rustix::io::Errno::NOTDIR
            && rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Symlink);
        errno(if link { rustix::io::Errno::LOOP } else { e })
    })
}

/// The directory `name` of `parent`, made when missing; whatever else is there (a link, a
/// file) is removed, never followed, and a directory made in its place.
fn made_dir_at(parent: BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    match rustix::fs::mkdirat(parent, component(name)?, Mode::from_raw_mode(0o777)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(errno(e)),
    }
    match open_dir_at(parent, name) {
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(c) if c == rustix::io::Errno::LOOP.raw_os_error()
                    || c == rustix::io::Errno::NOTDIR.raw_os_error()
            ) =>
        {
            rustix::fs::unlinkat(parent, name, AtFlags::empty()).map_err(errno)?;
            rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o777)).map_err(errno)?;
            open_dir_at(parent, name)
        }
        r => r,
    }
}

/// `state_dir` (yours: links on its way are followed) and then each of `parents` below it,
/// none through a link; made where `make`.
fn parent_of(state_dir: &Path, parents: &[&str], make: bool) -> io::Result<(OwnedFd, PathBuf)> {
    if make {
        std::fs::create_dir_all(state_dir).map_err(|e| at(state_dir, e))?;
    }
    let mut fd = rustix::fs::open(
        state_dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| at(state_dir, errno(e)))?;
    let mut path = state_dir.to_path_buf();
    for p in parents {
        path.push(p);
        fd = if make {
            made_dir_at(fd.as_fd(), p)
        } else {
            open_dir_at(fd.as_fd(), p)
        }
        .map_err(|e| at(&path, e))?;
    }
    Ok((fd, path))
}

impl ReportDir {
    /// Makes `<state_dir>/<parents…>/<name>` afresh and opens it: the parents made where
    /// missing (a link or a file at one is removed, never followed), whatever is at `name`
    /// removed first (a link itself, never what it points to; a directory of an earlier run
    /// with everything in it, no link in it followed).
    pub(crate) fn make(state_dir: &Path, parents: &[&str], name: &str) -> io::Result<Self> {
        let (parent, dir) = parent_of(state_dir, parents, true)?;
        let path = dir.join(name);
        // Its place is free even when the removal left some of it in the trash (said then).
        if let Err(e) = remove_entry(state_dir, parent.as_fd(), &path, name, None, true)
            && rustix::fs::statat(&parent, component(name)?, AtFlags::SYMLINK_NOFOLLOW).is_ok()
        {
            return Err(e);
        }
        rustix::fs::mkdirat(&parent, component(name)?, Mode::from_raw_mode(0o777))
            .map_err(|e| at(&path, errno(e)))?;
        let fd = open_dir_at(parent.as_fd(), name).map_err(|e| at(&path, e))?;
        Ok(Self {
            fd: Arc::new(fd),
            path,
        })
    }

    /// Opens the directory `<state_dir>/<parents…>/<name>`, no link followed below
    /// `state_dir`: an error when something else is there (a link, a file) or nothing.
    pub(crate) fn open(state_dir: &Path, parents: &[&str], name: &str) -> io::Result<Self> {
        let (parent, dir) = parent_of(state_dir, parents, false)?;
        let path = dir.join(name);
        let fd = open_dir_at(parent.as_fd(), name).map_err(|e| at(&path, e))?;
        Ok(Self {
            fd: Arc::new(fd),
            path,
        })
    }

    /// The directory `name` in this one, no link followed.
    pub(crate) fn child(&self, name: &str) -> io::Result<Self> {
        let path = self.path.join(name);
        let fd = open_dir_at(self.fd.as_fd(), name).map_err(|e| at(&path, e))?;
        Ok(Self {
            fd: Arc::new(fd),
            path,
        })
    }

    /// Where orch looked for it.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Which directory it is.
    pub(crate) fn id(&self) -> io::Result<DirId> {
        let s = rustix::fs::fstat(&*self.fd).map_err(errno)?;
        Ok(DirId {
            dev: s.st_dev,
            ino: s.st_ino,
        })
    }

    /// The names of its entries (`.` and `..` left out; a name that is not UTF-8 too: orch
    /// makes none).
    pub(crate) fn names(&self) -> io::Result<Vec<String>> {
        let dir = rustix::fs::Dir::read_from(&*self.fd).map_err(errno)?;
        let mut names = Vec::new();
        for e in dir {
            let e = e.map_err(errno)?;
            if let Ok(n) = e.file_name().to_str()
                && n != "."
                && n != ".."
            {
                names.push(n.to_string());
            }
        }
        Ok(names)
    }

    /// The regular file `name` in it, at most `limit` bytes ([`read::optional_at`]).
    pub(crate) fn read(&self, name: &str, limit: Limit) -> Result<Option<Vec<u8>>, ReadError> {
        read::optional_at(self.fd.as_fd(), name, &self.path.join(name), limit)
    }

    /// Whether anything is at `name` (a link is something).
    pub(crate) fn has(&self, name: &str) -> bool {
        rustix::fs::statat(&*self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// Renames `from` to `to`, both in it (a link is renamed as itself).
    pub(crate) fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        rustix::fs::renameat(&*self.fd, component(from)?, &*self.fd, component(to)?).map_err(errno)
    }

    /// Removes the file `name` (a link itself).
    pub(crate) fn remove_file(&self, name: &str) -> io::Result<()> {
        rustix::fs::unlinkat(&*self.fd, component(name)?, AtFlags::empty()).map_err(errno)
    }

    /// Writes `value` as JSON to `name` in it: a new file (`O_CREAT | O_EXCL | O_NOFOLLOW`:
    /// never one that is there, a link included) renamed into place, so that a reader sees the
    /// whole of it or nothing.
    pub(crate) fn write_json(&self, name: &str, value: &impl Serialize) -> io::Result<()> {
        let text = serde_json::to_vec(value).map_err(io::Error::other)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let tmp = format!(".tmp-{}-{nanos}-{}", std::process::id(), component(name)?);
        let written = rustix::fs::openat(
            &*self.fd,
            tmp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )
        .map_err(errno)
        .and_then(|fd| {
            let mut f = std::fs::File::from(fd);
            f.write_all(&text)?;
            f.sync_data()
        })
        .and_then(|()| self.rename(&tmp, name));
        if written.is_err() {
            let _ = self.remove_file(&tmp);
        }
        written
    }
}

/// Removes `<state_dir>/<parents…>/<name>` without following a link below `state_dir`: a link
/// or a file there is removed itself; a directory only when it is `expected` (the one orch
/// made), with everything in it ([`remove_entry`]). A directory that is not the one expected is
/// left where it is (it is not orch's). Nothing there, or a parent that is not a directory of
/// its own (a link), is no error: nothing is removed.
pub(crate) fn remove_beneath(
    state_dir: &Path,
    parents: &[&str],
    name: &str,
    expected: Option<DirId>,
) -> io::Result<()> {
    let Ok((parent, dir)) = parent_of(state_dir, parents, false) else {
        return Ok(());
    };
    remove_entry(
        state_dir,
        parent.as_fd(),
        &dir.join(name),
        name,
        expected,
        false,
    )
}

/// Removes `<state_dir>/<parents…>/<name>` whatever it is, without following a link: a link
/// or a file itself, a directory with everything in it ([`remove_entry`]). A parent that is not
/// a directory of its own (a link), or nothing there, is no error: nothing is removed. An error
/// says what is left (in orch's trash, removed by the next `orch clean` or `orch up`): the
/// place itself is free.
pub(crate) fn remove_whole(state_dir: &Path, parents: &[&str], name: &str) -> io::Result<()> {
    let Ok((parent, dir)) = parent_of(state_dir, parents, false) else {
        return Ok(());
    };
    remove_entry(state_dir, parent.as_fd(), &dir.join(name), name, None, true)
}

/// orch's trash in `state_dir` ([`remove::Trash`], `<state_dir>/.trash`).
fn trash(state_dir: &Path) -> io::Result<remove::Trash> {
    let fd = rustix::fs::open(
        state_dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| at(state_dir, errno(e)))?;
    remove::Trash::open(fd.as_fd(), state_dir, crate::state_layout::TRASH.name)
        .map_err(|e| at(&crate::state_layout::TRASH.path(state_dir), e))
}

/// Removes what earlier removals left in `state_dir`'s trash, within [`remove::BUDGET`]: an
/// error says what is still left. No trash (nor state directory) is no error.
pub(crate) fn empty_trash(state_dir: &Path) -> io::Result<()> {
    let path = crate::state_layout::TRASH.path(state_dir);
    if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    trash(state_dir)?.empty(&remove::Work::new())
}

/// Removes `name` of `parent` (`shown` is its path), never following a link: a link or a file
/// itself; a directory when `any_dir` or it is `expected`, renamed into orch's trash in
/// `state_dir` at once and emptied there ([`remove::Trash::remove`]: no depth limit, bounded in
/// time, what is left said and removed by the next removal). Nothing there is no error.
fn remove_entry(
    state_dir: &Path,
    parent: BorrowedFd<'_>,
    shown: &Path,
    name: &str,
    expected: Option<DirId>,
    any_dir: bool,
) -> io::Result<()> {
    let name = component(name)?;
    let stat = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(s) => s,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(errno(e)),
    };
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        return rustix::fs::unlinkat(parent, name, AtFlags::empty()).map_err(errno);
    }
    if !any_dir {
        let fd = open_dir_at(parent, name)?;
        let s = rustix::fs::fstat(&fd).map_err(errno)?;
        let id = DirId {
            dev: s.st_dev,
            ino: s.st_ino,
        };
        if expected != Some(id) {
            return Ok(());
        }
    }
    trash(state_dir)?.remove(parent, name, shown, &remove::Work::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// Made, read, renamed, written and removed through the handle: a link at the directory's
    /// place, at a parent or inside is never followed, and a directory that is not the one made
    /// is left whole.
    #[test]
    fn a_report_directory_is_used_through_its_handle_only() {
        let tmp = tempfile::tempdir().expect("tmp");
        let state = tmp.path().join("state");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(outside.join("1.1.1")).expect("outside");
        std::fs::write(outside.join("1.1.1/report.json"), "{}").expect("write");
        std::fs::write(outside.join("keep"), "k").expect("write");

        // A link where a parent goes is replaced by a directory, never followed.
        std::fs::create_dir_all(state.join(".reports")).expect("mkdir");
        symlink(&outside, state.join(".reports/p")).expect("link");
        let d = ReportDir::make(&state, &[".reports", "p"], "1.1.1").expect("make");
        assert!(std::fs::symlink_metadata(state.join(".reports/p")).is_ok_and(|m| m.is_dir()));
        assert_eq!(d.path(), state.join(".reports/p/1.1.1"));
        assert_eq!(
            std::fs::read_to_string(outside.join("1.1.1/report.json")).expect("read"),
            "{}"
        );
        let id = d.id().expect("id");
        d.write_json("report.json", &serde_json::json!({"a": 1}))
            .expect("write");
        assert_eq!(
            d.read("report.json", read::REPORT).expect("read"),
            Some(br#"{"a":1}"#.to_vec())
        );
        d.rename("report.json", "report.taken.json")
            .expect("rename");
        assert!(d.has("report.taken.json") && !d.has("report.json"));
        assert_eq!(d.read("report.json", read::REPORT).expect("none"), None);
        // A link inside is not read, and written over by a new file, not through.
        symlink(
            outside.join("keep"),
            state.join(".reports/p/1.1.1/answer.json"),
        )
        .expect("link");
        assert!(matches!(
            d.read("answer.json", read::REPORT),
            Err(ReadError::Link { .. })
        ));
        d.write_json("answer.json", &1).expect("write");
        assert_eq!(
            std::fs::read_to_string(outside.join("keep")).expect("k"),
            "k"
        );

        // Swapped for a link: opening the path refuses it; the held handle is still orch's.
        let old = state.join(".reports/p/.old");
        std::fs::rename(d.path(), &old).expect("rename");
        symlink(outside.join("1.1.1"), d.path()).expect("link");
        let e = ReportDir::open(&state, &[".reports", "p"], "1.1.1").expect_err("a link");
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert_eq!(d.id().expect("id"), id);
        assert_eq!(
            d.read("answer.json", read::REPORT).expect("read"),
            Some(b"1".to_vec())
        );
        // Removed: the link itself, nothing behind it.
        remove_beneath(&state, &[".reports", "p"], "1.1.1", Some(id)).expect("remove");
        assert!(std::fs::symlink_metadata(d.path()).is_err());
        assert!(outside.join("1.1.1/report.json").exists() && outside.join("keep").exists());

        // Another directory moved into place: opened, but not the one made; left whole.
        std::fs::create_dir(d.path()).expect("mkdir");
        std::fs::write(d.path().join("x"), "x").expect("write");
        let other = ReportDir::open(&state, &[".reports", "p"], "1.1.1").expect("open");
        assert_ne!(other.id().expect("id"), id);
        remove_beneath(&state, &[".reports", "p"], "1.1.1", Some(id)).expect("remove");
        assert!(d.path().join("x").exists());

        // The one made (moved back) is removed with what is in it, links removed themselves.
        std::fs::remove_dir_all(d.path()).expect("rm");
        std::fs::rename(&old, d.path()).expect("back");
        std::fs::create_dir_all(d.path().join("a/b")).expect("mkdir");
        symlink(&outside, d.path().join("a/b/out")).expect("link");
        remove_beneath(&state, &[".reports", "p"], "1.1.1", Some(id)).expect("remove");
        assert!(std::fs::symlink_metadata(d.path()).is_err());
        assert!(outside.join("1.1.1/report.json").exists() && outside.join("keep").exists());

        // A parent that is a link: nothing is opened nor removed through it.
        std::fs::remove_dir_all(state.join(".reports/p")).expect("rm");
        symlink(&outside, state.join(".reports/p")).expect("link");
        assert!(ReportDir::open(&state, &[".reports", "p"], "1.1.1").is_err());
        remove_beneath(&state, &[".reports", "p"], "1.1.1", None).expect("remove");
        assert!(outside.join("1.1.1/report.json").exists());
    }

    /// A plan's whole directory removed, whatever an agent put in it (files, directories, a
    /// FIFO, links), no link followed; the plan's directory itself a link: removed as a link.
    #[test]
    fn a_plans_whole_directory_goes_and_no_link_is_followed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let state = tmp.path().join("state");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(outside.join("sub")).expect("outside");
        std::fs::write(outside.join("sub/keep"), "k").expect("write");
        let plan = state.join(".reports/p");
        std::fs::create_dir_all(plan.join("1.1.1/deep")).expect("mkdir");
        std::fs::write(plan.join("1.1.1/deep/f"), "x").expect("write");
        std::fs::write(plan.join("junk"), "x").expect("write");
        nix::unistd::mkfifo(&plan.join("fifo"), nix::sys::stat::Mode::S_IRWXU).expect("fifo");
        symlink(&outside, plan.join("link")).expect("link");
        symlink(outside.join("sub"), plan.join("1.1.1/deep/link")).expect("link");
        remove_whole(&state, &[".reports"], "p").expect("remove");
        assert!(std::fs::symlink_metadata(&plan).is_err());
        assert!(outside.join("sub/keep").exists());
        symlink(&outside, &plan).expect("link");
        remove_whole(&state, &[".reports"], "p").expect("remove");
        assert!(std::fs::symlink_metadata(&plan).is_err());
        assert!(outside.join("sub/keep").exists());
        // Nothing there: no error.
        remove_whole(&state, &[".reports"], "p").expect("nothing");
    }
}
