//! The text of a status file as this process last wrote or read it, so that `orch up` does not
//! read back what it wrote itself, nor read again, to change an entry, what it has just read.
//!
//! A version of the file is told from another by its [`FileStamp`] (size, modification time,
//! inode). Every orch write renames a new file into place, so the inode of the file changes
//! with every write; the text kept holds its file open, so that inode cannot be freed and
//! given to a later file while the text is known. A stamp equal to the kept one is therefore
//! the kept file itself (short of someone writing into it in place within one tick of the
//! file system's clock without changing its size, which would also escape the stamp check
//! `orch up` makes before every read).

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::store::FileStamp;

/// One file's last known text.
struct Known {
    stamp: FileStamp,
    bytes: Arc<Vec<u8>>,
    /// Keeps the inode alive (see the module's documentation).
    _file: File,
}

/// The last known text of one status file (shared by the threads that read and write it).
#[derive(Default)]
pub struct KnownText(Mutex<Option<Known>>);

impl KnownText {
    /// The file's text now: the kept one when the file is still that version, else read (and
    /// kept). `NotFound` when there is no file.
    pub fn read(&self, path: &Path) -> std::io::Result<Arc<Vec<u8>>> {
        let mut file = File::open(path)?;
        let stamp = FileStamp::of_file(&file)?;
        if let Some(bytes) = self.get(stamp) {
            return Ok(bytes);
        }
        let mut bytes = Vec::with_capacity(usize::try_from(stamp.size()).unwrap_or(0) + 1);
        file.read_to_end(&mut bytes)?;
        let bytes = Arc::new(bytes);
        // Kept only when nothing changed it while it was read.
        if FileStamp::of_file(&file)? == stamp && bytes.len() as u64 == stamp.size() {
            self.keep(file, stamp, bytes.clone());
        }
        Ok(bytes)
    }

    /// The kept text, if the file's stamp is `stamp`.
    pub fn get(&self, stamp: FileStamp) -> Option<Arc<Vec<u8>>> {
        let known = self.0.lock().ok()?;
        known
            .as_ref()
            .filter(|k| k.stamp == stamp)
            .map(|k| k.bytes.clone())
    }

    /// Keeps `bytes`, the text of `file` (open, as written or read), whose stamp is `stamp`.
    pub fn keep(&self, file: File, stamp: FileStamp, bytes: Arc<Vec<u8>>) {
        if let Ok(mut known) = self.0.lock() {
            *known = Some(Known {
                stamp,
                bytes,
                _file: file,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replaces `path` as orch writes it: a new file renamed into place.
    fn replace(path: &Path, text: &[u8]) {
        let temp = path.with_extension("tmp");
        std::fs::write(&temp, text).expect("write");
        std::fs::rename(&temp, path).expect("rename");
    }

    /// The kept text is given while the file is that version; a file replaced by another of the
    /// same size (in the same tick of the clock), or written in place to another size, is read.
    #[test]
    fn the_kept_text_is_the_files_only_while_it_is_that_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("status.json");
        let known = KnownText::default();
        assert_eq!(
            known.read(&path).map_err(|e| e.kind()).err(),
            Some(std::io::ErrorKind::NotFound)
        );
        std::fs::write(&path, b"first").expect("write");
        let first = known.read(&path).expect("read");
        assert_eq!(first.as_slice(), b"first");
        let stamp = FileStamp::of(&path).expect("stamp");
        assert!(Arc::ptr_eq(&first, &known.get(stamp).expect("kept")));
        assert!(Arc::ptr_eq(&first, &known.read(&path).expect("read")));
        // Same size, most likely the same modification time: another inode.
        replace(&path, b"other");
        assert_eq!(known.read(&path).expect("read").as_slice(), b"other");
        // Written in place, longer.
        std::fs::write(&path, b"in place").expect("write");
        assert_eq!(known.read(&path).expect("read").as_slice(), b"in place");
        // What a writer keeps is given back without a read.
        let written = Arc::new(b"written".to_vec());
        replace(&path, &written);
        let file = File::open(&path).expect("open");
        let stamp = FileStamp::of_file(&file).expect("stamp");
        known.keep(file, stamp, written.clone());
        assert!(Arc::ptr_eq(&written, &known.read(&path).expect("read")));
    }
}
