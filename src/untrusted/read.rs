//! The one reader of files an agent or a landed branch could have shaped: the manifest, plan
//! files and prompt templates (landed by the merge train, so written by agents too), reports,
//! logs, status files, the state files an unconfined agent can reach, git admin files.
//!
//! Every read here:
//! - never follows a symlink at the file itself (`O_NOFOLLOW`); a file named relative to a
//!   directory ([`whole_beneath`]) is also never reached through a link that leads out of it;
//! - reads regular files only: a FIFO, a device, a socket or a directory is reported by its kind
//!   without being read, and is never waited on (it is looked at with `lstat` before the open,
//!   and opened `O_NONBLOCK | O_NOCTTY` in case it was swapped in between, then `fstat`ed);
//! - reads at most a limit that depends on the kind of file ([`Limit`]): a file larger than its
//!   limit is an error naming it (or, for the readers of a log's end or beginning, only that
//!   window is read), never read whole.
//!
//! The errors name the file and what was found there, for the person who has to remove it.

use std::fs::{File, Metadata};
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// How much orch reads at most of one kind of file, and the kind's name for errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limit {
    pub(crate) bytes: u64,
    pub(crate) what: &'static str,
}

/// `plans.toml` (a manifest of hundreds of plans is tens of KiB).
pub(crate) const MANIFEST: Limit = Limit {
    bytes: 4 << 20,
    what: "manifest",
};
/// A plan file (a plan of 10,000 tasks is about 1 MiB).
pub(crate) const PLAN: Limit = Limit {
    bytes: 64 << 20,
    what: "plan file",
};
/// A prompt template (`task.md`, `plan.md` of `defaults.templates`).
pub(crate) const TEMPLATE: Limit = Limit {
    bytes: 1 << 20,
    what: "prompt template",
};
/// A plan's status file (orch's own; about 500 bytes a task).
pub(crate) const STATUS: Limit = Limit {
    bytes: 256 << 20,
    what: "status file",
};
/// An agent's report (`orch task …` through `ORCH_REPORT_DIR`) and its answer.
pub(crate) const REPORT: Limit = Limit {
    bytes: 1 << 20,
    what: "report",
};
/// A small file of orch's state directory (the supervisor's lock, the integration cache, the
/// ports, the sandbox record, a Slurm script).
pub(crate) const STATE: Limit = Limit {
    bytes: 16 << 20,
    what: "state file",
};
/// A git admin file (`HEAD`, `gitdir`, a `.git` file, a lock's reason) or a one-line mark.
pub(crate) const GIT_ADMIN: Limit = Limit {
    bytes: 64 << 10,
    what: "git admin file",
};
/// A file of a worktree or of the main checkout that orch compares or copies (a conflicted
/// file's result, a `.worktreeinclude`).
pub(crate) const WORK_FILE: Limit = Limit {
    bytes: 256 << 20,
    what: "file",
};

/// A git index (the main checkout's, kept to be put back when a landing fails half way; an
/// index of 400,000 files is about 60 MiB).
pub(crate) const INDEX: Limit = Limit {
    bytes: 1 << 30,
    what: "git index",
};

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("`{}` does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("`{}` is a symbolic link, which orch does not follow here (remove it)", path.display())]
    Link { path: PathBuf },
    #[error("`{}` is {kind}, not a regular file: orch does not read it (remove it)", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "`{}` is {size} bytes, more than the {} orch reads of a {what}",
        path.display(),
        human(*limit)
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
        what: &'static str,
    },
    #[error("`{}` leads out of `{}` through a symbolic link", path.display(), root.display())]
    Outside { path: PathBuf, root: PathBuf },
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ReadError {
    /// Nothing is there.
    pub(crate) fn is_missing(&self) -> bool {
        matches!(self, Self::Missing { .. })
    }
}

impl From<ReadError> for io::Error {
    fn from(e: ReadError) -> Self {
        let kind = match &e {
            ReadError::Missing { .. } => io::ErrorKind::NotFound,
            ReadError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e.to_string())
    }
}

/// `bytes` as `1 MiB`, `64 KiB`.
fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// The kind of a file that is not a regular one, in words (`a FIFO`); `None` for a regular
/// file.
pub(crate) fn kind_of(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    Some(if t.is_file() {
        return None;
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    })
}

/// `O_NOFOLLOW`: a link at the path is `ELOOP`; `O_NONBLOCK`: a FIFO swapped in after the
/// `lstat` does not block the open; `O_NOCTTY`: a terminal never becomes orch's.
const FLAGS: i32 = nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY;

fn io_error(path: &Path, e: io::Error) -> ReadError {
    match e.raw_os_error() {
        _ if e.kind() == io::ErrorKind::NotFound => ReadError::Missing {
            path: path.to_path_buf(),
        },
        Some(nix::libc::ELOOP) => ReadError::Link {
            path: path.to_path_buf(),
        },
        _ => ReadError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    }
}

/// What is at `path`, looked at without following a link or opening it: an error unless it is
/// a regular file.
fn look(path: &Path) -> Result<(), ReadError> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| io_error(path, e))?;
    match kind_of(&meta) {
        None => Ok(()),
        Some("a symbolic link") => Err(ReadError::Link {
            path: path.to_path_buf(),
        }),
        Some(kind) => Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            kind,
        }),
    }
}

/// `file`, opened from `path`, once `fstat` says it is a regular file: with its length.
fn regular(path: &Path, file: File) -> Result<(File, u64), ReadError> {
    let meta = file.metadata().map_err(|e| io_error(path, e))?;
    match kind_of(&meta) {
        None => Ok((file, meta.len())),
        Some(kind) => Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            kind,
        }),
    }
}

/// Opens the regular file `path` for reading (see the module's rules): the file and its length.
pub(crate) fn open(path: &Path) -> Result<(File, u64), ReadError> {
    look(path)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(FLAGS)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    regular(path, file)
}

/// Reads all of `file` (`len` bytes by `fstat`), refusing more than `limit` (it may have grown
/// since).
fn all_of(path: &Path, file: &File, len: u64, limit: Limit) -> Result<Vec<u8>, ReadError> {
    let too_large = |size| ReadError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: limit.bytes,
        what: limit.what,
    };
    if len > limit.bytes {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limit.bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    if bytes.len() as u64 > limit.bytes {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The whole regular file `path`, at most `limit` bytes (a larger one is an error).
pub(crate) fn whole(path: &Path, limit: Limit) -> Result<Vec<u8>, ReadError> {
    let (file, len) = open(path)?;
    all_of(path, &file, len, limit)
}

/// [`whole`], `None` when nothing is at `path`.
pub(crate) fn optional(path: &Path, limit: Limit) -> Result<Option<Vec<u8>>, ReadError> {
    match whole(path, limit) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`whole`] as text (not UTF-8 is an I/O error of kind `InvalidData`).
pub(crate) fn text(path: &Path, limit: Limit) -> Result<String, ReadError> {
    String::from_utf8(whole(path, limit)?).map_err(|e| ReadError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, e),
    })
}

/// A small text file (a git admin file: `HEAD`, `gitdir`, a `.git` file, a lock's reason; one
/// of orch's marks), [`text`] at [`GIT_ADMIN`], as an `io::Error` (of kind `NotFound` when
/// nothing is there): a drop-in for `std::fs::read_to_string`.
pub(crate) fn small_text(path: &Path) -> io::Result<String> {
    text(path, GIT_ADMIN).map_err(io::Error::from)
}

/// The first `max` bytes at most of the regular file `path`.
pub(crate) fn head(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let (file, _) = open(path)?;
    let mut bytes = Vec::new();
    file.take(max)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    Ok(bytes)
}

/// The first `max` bytes at most of a file of yours that may be reached through links you made
/// (your `~/.gitconfig`, git's own programs): links followed, but a regular file only, never
/// waited on (a FIFO) and read only up to `max`.
pub(crate) fn head_of_yours(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    let (file, _) = regular(path, file)?;
    let mut bytes = Vec::new();
    file.take(max)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    Ok(bytes)
}

/// The end of the regular file `path` from byte `from`, at most its last `max` bytes: where
/// what was read starts, and the bytes.
pub(crate) fn tail(path: &Path, from: u64, max: u64) -> Result<(u64, Vec<u8>), ReadError> {
    let (mut file, len) = open(path)?;
    let start = from.max(len.saturating_sub(max)).min(len);
    file.seek(SeekFrom::Start(start))
        .map_err(|e| io_error(path, e))?;
    let mut bytes = Vec::new();
    file.take(max)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    Ok((start, bytes))
}

/// The whole regular file `name` (one component) of the directory `dir`, a handle orch holds,
/// at most `limit` bytes; `None` when nothing is there. `shown`: the file's path, for errors.
/// Looked at (`fstatat`, no link followed) before it is opened, then opened relative to the
/// handle with the module's flags, never by a path: a directory swapped in meanwhile, or a link
/// on the way to it, changes nothing of what is read.
pub(crate) fn optional_at(
    dir: std::os::fd::BorrowedFd<'_>,
    name: &str,
    shown: &Path,
    limit: Limit,
) -> Result<Option<Vec<u8>>, ReadError> {
    use rustix::fs::{AtFlags, FileType, Mode, OFlags};
    let fail = |e: rustix::io::Errno| io_error(shown, io::Error::from(e));
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(ReadError::Outside {
            path: shown.to_path_buf(),
            root: shown.parent().unwrap_or(shown).to_path_buf(),
        });
    }
    let stat = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(s) => s,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(fail(e)),
    };
    let kind = match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => None,
        FileType::Symlink => {
            return Err(ReadError::Link {
                path: shown.to_path_buf(),
            });
        }
        FileType::Directory => Some("a directory"),
        FileType::Fifo => Some("a FIFO"),
        FileType::CharacterDevice => Some("a character device"),
        FileType::BlockDevice => Some("a block device"),
        FileType::Socket => Some("a socket"),
        FileType::Unknown => Some("a special file"),
    };
    if let Some(kind) = kind {
        return Err(ReadError::NotRegular {
            path: shown.to_path_buf(),
            kind,
        });
    }
    let flags =
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY;
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(fail(e)),
    };
    let (file, len) = regular(shown, File::from(fd))?;
    all_of(shown, &file, len, limit).map(Some)
}

/// The whole regular file `rel` beneath the directory `root` (the repository's root, say), at
/// most `limit` bytes: no link at the file itself, and no link on the way that leads out of
/// `root` (`openat2` with `RESOLVE_BENEATH`, so an absolute link on the way is refused too;
/// where the kernel has no `openat2`, the resolved parent must lie beneath the resolved root).
/// `root` itself is yours and may be reached through links.
pub(crate) fn whole_beneath(root: &Path, rel: &Path, limit: Limit) -> Result<Vec<u8>, ReadError> {
    let (file, len) = open_beneath(root, rel)?;
    all_of(&root.join(rel), &file, len, limit)
}

/// [`whole_beneath`], `None` when nothing is there.
pub(crate) fn optional_beneath(
    root: &Path,
    rel: &Path,
    limit: Limit,
) -> Result<Option<Vec<u8>>, ReadError> {
    match whole_beneath(root, rel, limit) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(e),
    }
}

fn open_beneath(root: &Path, rel: &Path) -> Result<(File, u64), ReadError> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    let path = root.join(rel);
    look(&path)?;
    let outside = || ReadError::Outside {
        path: path.clone(),
        root: root.to_path_buf(),
    };
    if rel.is_absolute() {
        return Err(outside());
    }
    let dir = File::open(root).map_err(|e| io_error(root, e))?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::from_bits_truncate(FLAGS))
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match nix::fcntl::openat2(&dir, rel, how) {
        Ok(fd) => regular(&path, File::from(fd)),
        Err(nix::errno::Errno::EXDEV) => Err(outside()),
        // No `openat2` (older kernel, or a seccomp filter that refuses it): resolve the parent
        // and check it, then open without following the last component.
        Err(nix::errno::Errno::ENOSYS | nix::errno::Errno::EPERM) => {
            let parent = path.parent().unwrap_or(root);
            let real_root = root.canonicalize().map_err(|e| io_error(root, e))?;
            let real_parent = parent.canonicalize().map_err(|e| io_error(parent, e))?;
            if !real_parent.starts_with(&real_root) {
                return Err(outside());
            }
            open(&path)
        }
        Err(e) => Err(io_error(&path, io::Error::from(e))),
    }
}

/// The regular file `rel` beneath the directory `root`, opened for reading and writing in place,
/// and its whole content (at most `limit` bytes): for a change orch makes to a file of the
/// person's checkout that a landed branch may have shaped (a Spec Kit plan's boxes). No link
/// anywhere on the way (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), so nothing is
/// written through one; where the kernel has no `openat2`, an error (nothing is written).
pub(crate) fn beneath_for_update(
    root: &Path,
    rel: &Path,
    limit: Limit,
) -> Result<(File, Vec<u8>), ReadError> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    let path = root.join(rel);
    if rel.is_absolute() {
        return Err(ReadError::Outside {
            path,
            root: root.to_path_buf(),
        });
    }
    let dir = File::open(root).map_err(|e| io_error(root, e))?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::from_bits_truncate(FLAGS))
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let fd = match nix::fcntl::openat2(&dir, rel, how) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::EXDEV) => {
            return Err(ReadError::Outside {
                path,
                root: root.to_path_buf(),
            });
        }
        Err(e) => return Err(io_error(&path, io::Error::from(e))),
    };
    let (file, len) = regular(&path, File::from(fd))?;
    let bytes = all_of(&path, &file, len, limit)?;
    Ok((file, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fifo(path: &Path) {
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    }

    /// Each kind of file that is not a regular one is named in the error, without a wait on the
    /// FIFO (a plain read of one would block this test forever) and without reading the huge
    /// file (1 GiB, sparse: its size alone refuses it).
    #[test]
    fn only_a_regular_file_within_its_limit_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let file = d.join("plan.md");
        std::fs::write(&file, "# P\n").expect("write");
        assert_eq!(whole(&file, PLAN).expect("read"), b"# P\n");
        assert_eq!(optional(&d.join("none"), PLAN).expect("read"), None);
        assert!(
            whole(&d.join("none"), PLAN)
                .expect_err("missing")
                .is_missing()
        );

        let link = d.join("link.md");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        let passwd = d.join("passwd.md");
        std::os::unix::fs::symlink("/etc/passwd", &passwd).expect("symlink");
        let dangling = d.join("dangling.md");
        std::os::unix::fs::symlink(d.join("nowhere"), &dangling).expect("symlink");
        for l in [&link, &passwd, &dangling] {
            let e = whole(l, PLAN).expect_err("a link");
            assert_eq!(
                e.to_string(),
                format!(
                    "`{}` is a symbolic link, which orch does not follow here (remove it)",
                    l.display()
                )
            );
        }

        let pipe = d.join("fifo.md");
        fifo(&pipe);
        let e = whole(&pipe, PLAN).expect_err("a FIFO");
        assert_eq!(
            e.to_string(),
            format!(
                "`{}` is a FIFO, not a regular file: orch does not read it (remove it)",
                pipe.display()
            )
        );
        assert!(tail(&pipe, 0, 10).is_err() && head(&pipe, 10).is_err());
        let e = whole(d, PLAN).expect_err("a directory");
        assert!(
            e.to_string().contains("is a directory, not a regular file"),
            "{e}"
        );
        let e = whole(Path::new("/dev/zero"), PLAN).expect_err("a device");
        assert!(e.to_string().contains("is a character device"), "{e}");

        let huge = d.join("huge.md");
        File::create(&huge)
            .and_then(|f| f.set_len(1 << 30))
            .expect("sparse");
        let e = whole(&huge, PLAN).expect_err("too large");
        assert_eq!(
            e.to_string(),
            format!(
                "`{}` is 1073741824 bytes, more than the 64 MiB orch reads of a plan file",
                huge.display()
            )
        );
        assert!(matches!(e, ReadError::TooLarge { .. }));
        // The windows of a log read only what they ask for.
        assert_eq!(head(&huge, 5).expect("head").len(), 5);
        let (start, end) = tail(&huge, 0, 7).expect("tail");
        assert_eq!((start, end.len()), ((1 << 30) - 7, 7));
    }

    /// Beneath a root: a link at the file, or a link on the way that leads out (to `/etc`, or to
    /// a directory outside by an absolute path), is refused; a relative link that stays inside
    /// is followed.
    #[test]
    fn a_file_beneath_a_root_is_never_reached_from_outside_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("repo");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("docs/plans")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(root.join("docs/plans/p.md"), "# P\n").expect("write");
        std::fs::write(outside.join("secret.md"), "secret").expect("write");
        assert_eq!(
            whole_beneath(&root, Path::new("docs/plans/p.md"), PLAN).expect("read"),
            b"# P\n"
        );
        std::os::unix::fs::symlink("plans", root.join("docs/alias")).expect("symlink");
        assert_eq!(
            whole_beneath(&root, Path::new("docs/alias/p.md"), PLAN).expect("inside"),
            b"# P\n"
        );
        std::os::unix::fs::symlink(&outside, root.join("out")).expect("symlink");
        std::os::unix::fs::symlink("../outside", root.join("up")).expect("symlink");
        std::os::unix::fs::symlink("/etc", root.join("etc")).expect("symlink");
        for rel in ["out/secret.md", "up/secret.md", "etc/passwd"] {
            let e = whole_beneath(&root, Path::new(rel), PLAN).expect_err(rel);
            assert!(matches!(e, ReadError::Outside { .. }), "{rel}: {e} ({e:?})");
            assert!(e.to_string().contains(rel), "{e}");
        }
        std::os::unix::fs::symlink("/etc/passwd", root.join("docs/plans/q.md")).expect("link");
        let e = whole_beneath(&root, Path::new("docs/plans/q.md"), PLAN).expect_err("link");
        assert!(matches!(e, ReadError::Link { .. }), "{e:?}");
        assert_eq!(
            optional_beneath(&root, Path::new("docs/plans/none.md"), PLAN).expect("none"),
            None
        );
        let pipe = root.join("docs/plans/f.md");
        fifo(&pipe);
        let e = whole_beneath(&root, Path::new("docs/plans/f.md"), PLAN).expect_err("fifo");
        assert!(e.to_string().contains("is a FIFO"), "{e}");
    }
}
