//! orch's own records of a remote attempt on the lead, shared by its driver ([`super::attempt`]),
//! the choice of a host ([`super::slots`]) and the pruning of snapshot refs ([`super::refs`]):
//! where the driver records the host the attempt runs on, and the ref of the lead's repository
//! that holds the attempt's snapshot; orch's own identity of the repository's cache on the hosts.

use std::path::{Path, PathBuf};

/// Where the driver of `plan`'s `unit` attempt `attempt` records the host it runs on (orch's
/// own record, read by `orch status`).
pub(crate) fn host_record(state_dir: &Path, plan: &str, unit: &str, attempt: u32) -> PathBuf {
    crate::state_layout::remote_of(state_dir, plan).join(format!("{unit}-{attempt}.host"))
}

/// The host recorded for an attempt, if any (a short name orch wrote).
pub(crate) fn recorded_host(
    state_dir: &Path,
    plan: &str,
    unit: &str,
    attempt: u32,
) -> Option<String> {
    host_at(&host_record(state_dir, plan, unit, attempt))
}

/// The host recorded at `record` ([`host_record`]), if any.
pub(crate) fn host_at(record: &Path) -> Option<String> {
    let bytes = crate::untrusted::read::optional(record, crate::untrusted::read::REPORT).ok()??;
    let s = String::from_utf8_lossy(&bytes).trim().to_string();
    (!s.is_empty() && s.len() <= 64).then_some(s)
}

/// The ref of the lead's repository that holds the snapshot of an attempt.
pub(crate) fn local_ref(plan: &str, unit: &str, attempt: u32) -> String {
    format!("refs/orch/remote/{plan}/{unit}/{attempt}")
}

/// orch's own identity of the repositories of `state_dir` on the hosts ([`SSH_ID`]): 32 hex
/// digits made once at random in orch's state directory (no agent writes there), never taken
/// from the repository, its path or a host. Made whole or not at all (written aside, then
/// linked into place: two drivers that make one at once both take the one linked first).
///
/// [`SSH_ID`]: crate::state_layout::SSH_ID
pub(crate) fn identity(state_dir: &Path) -> Result<String, String> {
    let path = crate::state_layout::ssh_own(state_dir, crate::state_layout::SSH_ID);
    if let Some(id) = identity_at(&path) {
        return Ok(id);
    }
    let dir = path
        .parent()
        .ok_or_else(|| "no state directory".to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot make `{}`: {e}", dir.display()))?;
    let mut b = [0u8; 16];
    let n = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty())
        .map_err(|e| format!("no randomness for the repository's identity: {e}"))?;
    if n != b.len() {
        return Err("no randomness for the repository's identity".into());
    }
    let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let tmp = dir.join(format!(
        "{}.{}.tmp",
        crate::state_layout::SSH_ID,
        std::process::id()
    ));
    let written = crate::links::write(&tmp, format!("{id}\n").as_bytes())
        .and_then(|()| std::fs::hard_link(&tmp, &path));
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok(id),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => identity_at(&path)
            .ok_or_else(|| format!("`{}` is not an identity orch made", path.display())),
        Err(e) => Err(format!("cannot write `{}`: {e}", path.display())),
    }
}

fn identity_at(path: &Path) -> Option<String> {
    let bytes = crate::untrusted::read::optional(path, crate::untrusted::read::REPORT).ok()??;
    let s = String::from_utf8_lossy(&bytes).trim().to_string();
    (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s)
}

/// The cache of the repository at `repo_root` on a host: `<path>-<identity>`, `<path>` the first
/// 16 digits of the blob id of the repository's path (an earlier orch's whole name for it,
/// [`legacy_cache`]), `<identity>` orch's own ([`identity`]).
pub(crate) fn cache_name(repo_root: &Path, identity: &str) -> String {
    format!("{}-{identity}", legacy_cache(repo_root))
}

/// The name an earlier orch gave the cache of the repository at `repo_root` (its path alone):
/// the attempts it recorded lost are taken back from there.
pub(crate) fn legacy_cache(repo_root: &Path) -> String {
    super::job::name_of(
        &crate::git::blob_id_of_bytes(repo_root.as_os_str().as_encoded_bytes())[..16],
    )
}
