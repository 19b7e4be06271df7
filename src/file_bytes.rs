//! Reading a whole file for the reading commands: small files into one exact-size buffer, large
//! ones (plans and status files of thousands of tasks) mapped read-only from the page cache.
//!
//! A read copies the file into fresh heap pages: each 4 KiB page is faulted in, zeroed and then
//! overwritten, which was a fifth of the time of `orch next` on a 10,000-task plan (a 3 MB
//! status file and a 0.7 MB plan, about 900 page faults on a virtual machine). A private
//! read-only mapping made with `MAP_POPULATE` maps the page cache's own pages in one system call:
//! nothing is zeroed or copied.
//!
//! The one danger of a mapping is a file shortened while it is mapped: reading the lost pages
//! raises `SIGBUS`. orch never shortens its files in place (status files are replaced by rename,
//! `status::store`, so a mapping keeps the old file whole), but people edit plans, and some
//! editors rewrite a file in place. So files are mapped only in a process that asked for it with
//! [`map_large_files`]: `orch next` and `orch task`'s one-plan path, which map their files for
//! a few milliseconds and exit (`orch task` maps the status file under its lock);
//! everything else (the supervisor, `orch top`, `orch status --watch`) reads them.

#![allow(unsafe_code)]

use std::fs::File;
use std::io::Read;
use std::ops::Deref;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

static MAP: AtomicBool = AtomicBool::new(false);

/// Large files read from now on in this process are mapped (see the module comment for who may).
pub fn map_large_files() {
    MAP.store(true, Ordering::Relaxed);
}

/// Files at least this long are mapped; shorter ones are read (a mapping costs two system calls
/// and a fresh area of address space; a few pages are as cheap to copy).
const MAP_FROM: u64 = 256 * 1024;

/// The bytes of a file, read or mapped.
pub struct FileBytes {
    repr: Repr,
}

enum Repr {
    Heap(Vec<u8>),
    /// A private read-only mapping of `len` (> 0) bytes at `ptr`, unmapped on drop.
    Map {
        ptr: NonNull<u8>,
        len: usize,
    },
}

// SAFETY: the mapping is read-only and owned by this value alone (like a `Box<[u8]>`): sharing
// `&[u8]` views of it across threads, or moving it, is as safe as for a `Vec<u8>`.
unsafe impl Send for FileBytes {}
// SAFETY: see `Send`: nothing writes to the mapping.
unsafe impl Sync for FileBytes {}

impl FileBytes {
    /// Bytes held in memory (for tests, and for documents that do not come from a file).
    pub fn from_vec(v: Vec<u8>) -> Self {
        FileBytes {
            repr: Repr::Heap(v),
        }
    }

    /// Whether the bytes are a mapping of the file (for tests).
    pub fn is_mapped(&self) -> bool {
        matches!(self.repr, Repr::Map { .. })
    }
}

impl Default for FileBytes {
    fn default() -> Self {
        FileBytes::from_vec(Vec::new())
    }
}

impl Clone for FileBytes {
    fn clone(&self) -> Self {
        FileBytes::from_vec(self.to_vec())
    }
}

impl std::fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileBytes({} bytes)", self.len())
    }
}

impl Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.repr {
            Repr::Heap(v) => v,
            // SAFETY: `ptr` is the start of a live mapping of `len` readable bytes, owned by
            // `self` (unmapped only in `drop`); nothing writes to it (see the module comment
            // for files shortened by others).
            Repr::Map { ptr, len } => unsafe { std::slice::from_raw_parts(ptr.as_ptr(), *len) },
        }
    }
}

impl Drop for FileBytes {
    fn drop(&mut self) {
        if let Repr::Map { ptr, len } = self.repr {
            // SAFETY: `ptr`/`len` are exactly what `mmap` returned and gave, unmapped once.
            unsafe {
                libc::munmap(ptr.as_ptr().cast(), len);
            }
        }
    }
}

/// The whole content of the file at `path`.
pub fn read(path: &Path) -> std::io::Result<FileBytes> {
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    let len = meta.len();
    if MAP.load(Ordering::Relaxed)
        && meta.is_file()
        && len >= MAP_FROM
        && let Ok(n) = usize::try_from(len)
        && let Some(ptr) = map(&file, n)
    {
        return Ok(FileBytes {
            repr: Repr::Map { ptr, len: n },
        });
    }
    // One allocation of the right size (plus one byte, to see the end without growing).
    let mut v = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
    file.read_to_end(&mut v)?;
    Ok(FileBytes::from_vec(v))
}

/// A private read-only mapping of the first `len` (> 0) bytes of `file`, its pages mapped at
/// once; `None` when the system refuses (the caller then reads the file).
fn map(file: &File, len: usize) -> Option<NonNull<u8>> {
    // SAFETY: a new mapping chosen by the kernel (null address hint) overlaps nothing of ours;
    // the descriptor is open for reading for the duration of the call, and the mapping stays
    // valid after it is closed.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_POPULATE,
            file.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    NonNull::new(p.cast())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_are_read_large_ones_mapped_both_whole() {
        map_large_files();
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, len) in [
            ("empty", 0usize),
            ("small", 10),
            ("edge", MAP_FROM as usize - 1),
            ("big", MAP_FROM as usize),
            ("bigger", 3 * MAP_FROM as usize + 17),
        ] {
            let path = dir.path().join(name);
            let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            std::fs::write(&path, &content).expect("write");
            let got = read(&path).expect("read");
            assert_eq!(&got[..], &content[..], "{name}");
            assert_eq!(got.is_mapped(), len as u64 >= MAP_FROM, "{name}");
            let copy = got.clone();
            drop(got);
            assert_eq!(&copy[..], &content[..], "{name}: the clone outlives it");
        }
        let err = read(&dir.path().join("missing")).expect_err("no such file");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(read(dir.path()).is_err(), "a directory is not read");
    }
}
