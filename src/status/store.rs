//! Reading and writing status files: readers never lock and never see a torn file; writers take
//! an exclusive lock that stands for `status.json.lock` (kept in orch's private root, out of the
//! agents' reach: [`crate::sandbox::private_lock`]) and replace the file atomically (temp, fsync,
//! rename).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};

use crate::untrusted::read;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;

use crate::plan::Plan;

use super::error::StatusError;
use super::model::{ORCH_SCHEMA_VERSION, StatusDoc, TaskEntry, timestamp};
use super::reconcile::{ReconcileReport, reconcile};
use super::transition::{Transition, TransitionOptions, TransitionOutcome, apply};

/// The usual name of a plan's status file.
pub(crate) const STATUS_FILE_NAME: &str = "status.json";

/// Appended to the status file's name to form its lock file's name.
pub(crate) const LOCK_SUFFIX: &str = ".lock";

/// Makes temp file names unique within the process (the pid makes them unique across processes).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = path
        .file_name()
        .map_or_else(|| OsString::from(STATUS_FILE_NAME), ToOwned::to_owned);
    name.push(suffix);
    path.with_file_name(name)
}

/// The name the lock of a status file stands for: `status.json.lock` beside it (the lock itself is
/// taken in orch's private root, [`crate::sandbox::private_lock`]). The status file itself is
/// never locked, since it is replaced by rename.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    with_suffix(path, LOCK_SUFFIX)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Reads a status file without locking. `None` when it does not exist; a file that is not JSON or
/// not shaped like a status file is [`StatusError::Corrupt`], never silently replaced.
pub fn load(path: &Path) -> Result<Option<StatusDoc>, StatusError> {
    Ok(load_with_bytes(path, None)?.map(|(doc, _)| doc))
}

/// [`load`], also returning the file's bytes; `known`: what the caller knows of the file.
fn load_with_bytes(
    path: &Path,
    known: Option<&Known>,
) -> Result<Option<(StatusDoc, Vec<u8>)>, StatusError> {
    let Some(bytes) = read_file(path)? else {
        return Ok(None);
    };
    let doc = Arc::unwrap_or_clone(parse_known(path, &bytes, known)?.0);
    Ok(Some((doc, bytes)))
}

/// The document a process last read or wrote at one status file, with the file's bytes then:
/// a read that finds the same bytes again takes it without parsing them (the supervisor reads
/// back what it wrote itself, a 465 KB file at 1,250 tasks, several times per task). Only the
/// very same bytes count, so a file anyone else wrote meanwhile is parsed (nothing is taken on
/// a file's size, time or inode alone).
/// The document is shared, not copied, with the readers that only look at it.
#[derive(Default)]
pub(crate) struct Known(std::sync::Mutex<Option<KnownDoc>>);

struct KnownDoc {
    bytes: Vec<u8>,
    doc: Arc<StatusDoc>,
    /// Written by this process (reconciled with its plan), not only read.
    written: bool,
}

impl Known {
    /// The document of the file's `bytes` when they are the bytes known, and whether this
    /// process wrote it.
    fn doc_of(&self, bytes: &[u8]) -> Option<(Arc<StatusDoc>, bool)> {
        let known = self.0.lock().ok()?;
        let k = known.as_ref()?;
        (k.bytes == bytes).then(|| (k.doc.clone(), k.written))
    }

    /// The file holds `bytes` now, read as (or written from) `doc`.
    fn keep(&self, bytes: Vec<u8>, doc: Arc<StatusDoc>, written: bool) {
        if let Ok(mut known) = self.0.lock() {
            *known = Some(KnownDoc {
                bytes,
                doc,
                written,
            });
        }
    }
}

/// [`parse_doc`], or the document `known` has of these very bytes; whether this process wrote
/// them.
fn parse_known(
    path: &Path,
    bytes: &[u8],
    known: Option<&Known>,
) -> Result<(Arc<StatusDoc>, bool), StatusError> {
    let Some(known) = known else {
        return Ok((Arc::new(parse_doc(path, bytes)?), false));
    };
    if let Some(hit) = known.doc_of(bytes) {
        return Ok(hit);
    }
    let doc = Arc::new(parse_doc(path, bytes)?);
    known.keep(bytes.to_vec(), doc.clone(), false);
    Ok((doc, false))
}

/// A status file's bytes; `None` when it does not exist. An unconfined agent can write the
/// state directory: a link, a FIFO or a file past [`read::STATUS`] there is an error naming it
/// (exit 3), never followed, waited on or read whole.
pub(crate) fn read_file(path: &Path) -> Result<Option<Vec<u8>>, StatusError> {
    read::optional(path, read::STATUS).map_err(|e| StatusError::Read {
        path: path.to_path_buf(),
        source: match e {
            read::ReadError::Io { source, .. } => source,
            e => e.into(),
        },
    })
}

/// Reads a document from a status file's bytes, with the checks of [`load`].
fn parse_doc(path: &Path, bytes: &[u8]) -> Result<StatusDoc, StatusError> {
    let doc: StatusDoc = from_json(bytes).map_err(|e| corrupt(path, b"", e))?;
    check_version(path, doc.orch_schema_version)?;
    Ok(doc)
}

/// A newer `orchSchemaVersion` than this orch writes is refused.
pub(super) fn check_version(path: &Path, found: u32) -> Result<(), StatusError> {
    if found > ORCH_SCHEMA_VERSION {
        return Err(StatusError::UnsupportedVersion {
            path: path.to_path_buf(),
            found,
            supported: ORCH_SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// [`StatusError::Corrupt`] for serde_json's error `e`, in a text whose part before the value
/// read is `before` (its line and column are then those of the whole file).
pub(super) fn corrupt(path: &Path, before: &[u8], e: serde_json::Error) -> StatusError {
    let what = match e.classify() {
        serde_json::error::Category::Data => "not a status file",
        _ => "not valid JSON",
    };
    let lines = memchr::memchr_iter(b'\n', before).count();
    let column = if lines == 0 {
        before.len() + e.column()
    } else if e.line() == 1 {
        before.len() - memchr::memrchr(b'\n', before).map_or(0, |i| i + 1) + e.column()
    } else {
        e.column()
    };
    StatusError::Corrupt {
        path: path.to_path_buf(),
        line: lines + e.line(),
        column,
        message: format!("{what}: {e}"),
    }
}

/// serde_json's read of a whole file: from its text once the file is found to be UTF-8 (one
/// check of the whole, rather than of each string as serde_json reads it from bytes), else from
/// its bytes (which reports where the file is not, if that is in a string it reads).
pub(super) fn from_json<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// Fills orch's identifying fields of a loaded document.
fn stamp_identity(doc: &mut StatusDoc, plan_path_rel: &str, orch_name: &str) {
    if doc.plan_path != plan_path_rel {
        doc.plan_path = plan_path_rel.to_string();
    }
    if doc.orch_plan != orch_name {
        doc.orch_plan = orch_name.to_string();
    }
}

/// Loads (or creates in memory) and reconciles the document, writing nothing and taking no lock.
pub(crate) fn view(
    path: &Path,
    plan: &Plan,
    plan_path_rel: &str,
    orch_name: &str,
) -> Result<(StatusDoc, ReconcileReport), StatusError> {
    let doc = load(path)?;
    Ok(view_of(doc, plan, plan_path_rel, orch_name))
}

/// [`view`] of the text `bytes` read from `path` (`None`: there is no file), shared: when the
/// bytes are those this process last wrote (`known`), reconciled with the plan of digest
/// `digest` (its `orchPlanDigest`: reconciling again would change nothing), that document
/// itself, neither parsed nor copied; otherwise as [`view`] makes it.
pub(crate) fn view_shared(
    (path, known, digest): (&Path, Option<&Known>, Option<&str>),
    bytes: Option<&[u8]>,
    plan: &Plan,
    plan_path_rel: &str,
    orch_name: &str,
) -> Result<Arc<StatusDoc>, StatusError> {
    let (doc, written) = match bytes {
        Some(b) => {
            let (doc, written) = parse_known(path, b, known)?;
            (Some(doc), written)
        }
        None => (None, false),
    };
    if let Some(doc) = &doc
        && written
        && digest.is_some()
        && doc.orch_plan_digest.as_deref() == digest
        && doc.plan_path == plan_path_rel
        && doc.orch_plan == orch_name
    {
        return Ok(doc.clone());
    }
    let doc = doc.map(Arc::unwrap_or_clone);
    Ok(Arc::new(view_of(doc, plan, plan_path_rel, orch_name).0))
}

fn view_of(
    doc: Option<StatusDoc>,
    plan: &Plan,
    plan_path_rel: &str,
    orch_name: &str,
) -> (StatusDoc, ReconcileReport) {
    let mut doc = doc.unwrap_or_else(|| StatusDoc::new(plan, plan_path_rel, orch_name, Utc::now()));
    stamp_identity(&mut doc, plan_path_rel, orch_name);
    let report = reconcile(&mut doc, plan);
    (doc, report)
}

/// What tells one version of a file from another without reading it: its size, modification
/// time and inode. Every write of a status file renames a new file into place, so the inode
/// changes even when two writes land within one tick of the file system's clock with the same
/// size (the size and time alone would miss the second).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl FileStamp {
    /// The stamp of the file at `path` now; `None` when it cannot be read (or is missing).
    pub(crate) fn of(path: &Path) -> Option<Self> {
        Some(Self::of_meta(&fs::metadata(path).ok()?))
    }

    fn of_meta(m: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            len: m.len(),
            modified: m.modified().ok(),
            inode: m.ino(),
        }
    }
}

/// Holds the exclusive lock of a status file until dropped.
struct LockGuard {
    _file: File,
}

fn lock(path: &Path) -> Result<LockGuard, StatusError> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir).map_err(|source| StatusError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let lock_path = lock_path(path);
    let lock_err = |source| StatusError::Lock {
        path: lock_path.clone(),
        source,
    };
    // In orch's private root, never beside the status file: an agent that may read the status
    // directory could lock a file there and hold every writer of the plan's status.
    let file = crate::sandbox::private_lock(&lock_path).map_err(lock_err)?;
    Ok(LockGuard { _file: file })
}

/// Reads, reconciles, changes and writes a status file under its exclusive lock.
///
/// Creates the directory if missing; creates the document from the plan if the file does not
/// exist; reconciles it with `plan`; runs `f`; if `f` succeeds, writes the document atomically
/// (only when it changed, or when the file did not exist). If `f` fails nothing is written.
///
/// "Changed" is judged on the bytes: a document that prints differently from the file (one
/// written by another tool, or by hand) is written back in orch's form.
pub fn update<T>(
    path: &Path,
    plan: &Plan,
    plan_path_rel: &str,
    orch_name: &str,
    f: impl FnOnce(&mut StatusDoc, &ReconcileReport) -> Result<T, StatusError>,
) -> Result<(T, ReconcileReport), StatusError> {
    update_with_digest((path, None), plan, None, plan_path_rel, orch_name, f)
}

/// [`update`] for a plan parsed from a file whose bytes had digest `digest` ([`super::plan_digest`]):
/// records it in `orchPlanDigest`, so that [`update_if_current`] can skip the plan next time.
/// `known`: what the caller knows of the file (kept up to date).
pub(crate) fn update_with_digest<T>(
    (path, known): (&Path, Option<&Known>),
    plan: &Plan,
    digest: Option<&str>,
    plan_path_rel: &str,
    orch_name: &str,
    f: impl FnOnce(&mut StatusDoc, &ReconcileReport) -> Result<T, StatusError>,
) -> Result<(T, ReconcileReport), StatusError> {
    let _guard = lock(path)?;
    let (mut doc, before) = match load_with_bytes(path, known)? {
        Some((doc, bytes)) => (doc, Some(bytes)),
        None => (
            StatusDoc::new(plan, plan_path_rel, orch_name, Utc::now()),
            None,
        ),
    };
    stamp_identity(&mut doc, plan_path_rel, orch_name);
    let report = reconcile(&mut doc, plan);
    if report.changed && before.is_some() {
        doc.last_updated_at = Some(timestamp(Utc::now()));
    }
    if let Some(d) = digest {
        doc.orch_plan_digest = Some(d.to_string());
    }
    let value = f(&mut doc, &report)?;
    save_if_changed(path, doc, before.as_deref(), known)?;
    Ok((value, report))
}

/// Changes a status file without the plan, when that is safe: under the lock, reads the
/// document whole and, only if its `orchPlanDigest` equals `digest` (the digest of the plan file
/// now, which means the document already follows that plan: reconciling would change nothing),
/// runs `f` and writes the result. Otherwise (no file, no digest, another digest) runs nothing,
/// writes nothing and returns `Ok(None)`: parse the plan and use [`update_with_digest`].
pub(crate) fn update_if_current<T>(
    (path, known): (&Path, Option<&Known>),
    digest: &str,
    plan_path_rel: &str,
    orch_name: &str,
    f: impl FnOnce(&mut StatusDoc) -> Result<T, StatusError>,
) -> Result<Option<T>, StatusError> {
    let _guard = lock(path)?;
    let Some((mut doc, before)) = load_with_bytes(path, known)? else {
        return Ok(None);
    };
    if doc.orch_plan_digest.as_deref() != Some(digest) {
        return Ok(None);
    }
    stamp_identity(&mut doc, plan_path_rel, orch_name);
    let value = f(&mut doc)?;
    save_if_changed(path, doc, Some(&before), known)?;
    Ok(Some(value))
}

/// Applies transition `t` to task `id` without the plan, when that is safe (see
/// [`update_entry_if_current`]): `Ok(None)` when the file's `orchPlanDigest` is not `digest` (or
/// there is no file), and nothing was changed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply_if_current(
    path: &Path,
    digest: &str,
    plan_path_rel: &str,
    orch_name: &str,
    id: &str,
    t: Transition,
    opts: &TransitionOptions,
    now: chrono::DateTime<Utc>,
) -> Result<Option<TransitionOutcome>, StatusError> {
    let at = (path, None);
    entry_if_current(at, digest, plan_path_rel, orch_name, &[id], now, |doc| {
        apply(doc, id, t, opts, now)
    })
}

/// Changes the entries of tasks `ids` without the plan, when that is safe (see
/// [`update_if_current`]): `Ok(None)` when the file's `orchPlanDigest` is not `digest` (or there
/// is no file), and nothing was changed. `f` changes those entries (and may set
/// `lastUpdatedAt`); when they changed, `lastUpdatedAt` (unless `f` set it) and the derived
/// fields (`summary`, `currentPhase`) follow.
pub(crate) fn update_entry_if_current<T>(
    at: (&Path, Option<&Known>),
    digest: &str,
    plan_path_rel: &str,
    orch_name: &str,
    ids: &[&str],
    f: impl FnOnce(&mut StatusDoc) -> Result<T, StatusError>,
) -> Result<Option<T>, StatusError> {
    entry_if_current(at, digest, plan_path_rel, orch_name, ids, Utc::now(), f)
}

/// [`update_entry_if_current`] at time `now`.
fn entry_if_current<T>(
    at: (&Path, Option<&Known>),
    digest: &str,
    plan_path_rel: &str,
    orch_name: &str,
    ids: &[&str],
    now: chrono::DateTime<Utc>,
    f: impl FnOnce(&mut StatusDoc) -> Result<T, StatusError>,
) -> Result<Option<T>, StatusError> {
    update_if_current(at, digest, plan_path_rel, orch_name, |doc| {
        let entries = |doc: &StatusDoc| -> Vec<Option<TaskEntry>> {
            ids.iter().map(|id| doc.entry(id).cloned()).collect()
        };
        let (before, stamp) = (entries(doc), doc.last_updated_at.clone());
        let value = f(doc)?;
        if entries(doc) != before {
            if doc.last_updated_at == stamp {
                doc.last_updated_at = Some(timestamp(now));
            }
            super::summary::refresh_derived(doc);
        }
        Ok(value)
    })
}

/// The bytes orch writes for `doc`: pretty-printed JSON and a final newline.
fn to_bytes(path: &Path, doc: &StatusDoc) -> Result<Vec<u8>, StatusError> {
    let mut bytes = serde_json::to_vec_pretty(doc).map_err(|source| StatusError::Serialize {
        path: path.to_path_buf(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Writes `doc` unless the file already holds exactly these bytes; `known` then knows it.
fn save_if_changed(
    path: &Path,
    doc: StatusDoc,
    before: Option<&[u8]>,
    known: Option<&Known>,
) -> Result<(), StatusError> {
    let bytes = to_bytes(path, &doc)?;
    if before != Some(bytes.as_slice()) {
        write_bytes_atomic(path, &bytes)?;
    }
    if let Some(known) = known {
        known.keep(bytes, Arc::new(doc), true);
    }
    Ok(())
}

/// Moves any existing status file aside to `status.json.corrupt-<UTC timestamp>` and writes a
/// fresh document from the plan. Returns the new document and where the old file went.
pub(crate) fn rebuild(
    path: &Path,
    plan: &Plan,
    plan_path_rel: &str,
    orch_name: &str,
) -> Result<(StatusDoc, Option<PathBuf>), StatusError> {
    let _guard = lock(path)?;
    let backup = match fs::symlink_metadata(path) {
        Ok(_) => {
            let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
            let mut backup = with_suffix(path, &format!(".corrupt-{stamp}"));
            let mut n = 1;
            while fs::symlink_metadata(&backup).is_ok() {
                backup = with_suffix(path, &format!(".corrupt-{stamp}-{n}"));
                n += 1;
            }
            fs::rename(path, &backup).map_err(|source| StatusError::Rebuild {
                path: path.to_path_buf(),
                backup: backup.clone(),
                source,
            })?;
            Some(backup)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(source) => {
            return Err(StatusError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let doc = StatusDoc::new(plan, plan_path_rel, orch_name, Utc::now());
    write_atomic(path, &doc)?;
    Ok((doc, backup))
}

/// Writes `doc` to a unique temp file in the same directory, fsyncs it, renames it over `path`
/// and fsyncs the directory. Callers hold the lock.
fn write_atomic(path: &Path, doc: &StatusDoc) -> Result<(), StatusError> {
    write_bytes_atomic(path, &to_bytes(path, doc)?)
}

/// Writes `bytes` to a unique temp file in the same directory (created new: never through a
/// link), fsyncs it, renames it over `path` and fsyncs the directory. Callers hold the lock.
fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<(), StatusError> {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = with_suffix(path, &format!(".tmp-{}-{n}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(source) = result {
        let _ = fs::remove_file(&temp);
        return Err(StatusError::Write {
            path: path.to_path_buf(),
            source,
        });
    }
    // Make the rename itself durable. Some file systems cannot fsync a directory; the rename has
    // happened either way, so that is not an error.
    if let Ok(dir) = File::open(parent_dir(path)) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests;
