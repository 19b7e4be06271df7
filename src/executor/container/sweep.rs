//! What runs of orch that are gone left of their plans' containers on this machine: the
//! containers themselves (by label, [`super::remove_dead_runs`]) and orch's directories of them
//! in `$TMPDIR`, `orch-<run>-<plan part>-container` (the attempts' `TMPDIR`s, mounted in the
//! plan's container: what its agents wrote) and `orch-<run>-<plan part>-services` (orch's
//! marks of its services). A directory goes when its name is one orch gives (the run's id,
//! `<pid>-<start time>`, then a plan part with its digest, then the suffix), its run is dead,
//! it is a directory itself (a link named like one is left, never followed) and this user owns
//! it (another user's is not orch's); removed without following any link in it.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

/// The suffixes of the directories orch makes per plan and run.
pub(super) const SUFFIXES: [&str; 2] = ["-container", "-services"];

/// At most this many entries of `$TMPDIR` are looked at (bounded work on a crowded one).
const MAX_ENTRIES: usize = 100_000;

/// The run id of `name` when it is the name of one of orch's per-plan directories.
pub(super) fn run_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("orch-")?;
    let stem = SUFFIXES.iter().find_map(|s| rest.strip_suffix(s))?;
    let mut words = stem.splitn(3, '-');
    let (pid, start, plan) = (words.next()?, words.next()?, words.next()?);
    let digits = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit());
    // The plan part ends with the first 8 hex digits of its name's digest.
    let (_, digest) = plan.rsplit_once('-')?;
    let hex = digest.len() == 8 && digest.bytes().all(|b| b.is_ascii_hexdigit());
    (digits(pid) && digits(start) && hex).then(|| &stem[..pid.len() + 1 + start.len()])
}

/// Removes, in `tmp`, orch's per-plan directories of runs that are gone; one note each.
pub(super) fn remove_dead_dirs(tmp: &Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(tmp) else {
        return Vec::new();
    };
    let me = nix::unistd::geteuid().as_raw();
    let mut notes = Vec::new();
    for e in dir.take(MAX_ENTRIES).flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(run) = run_of(name) else { continue };
        if super::run_alive(run) {
            continue;
        }
        let path = e.path();
        // The entry itself, not what a link names.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.file_type().is_dir() || meta.uid() != me {
            continue;
        }
        match crate::untrusted::remove::remove_path(&path) {
            Ok(()) => notes.push(format!(
                "removed `{}`, left by an earlier run of orch",
                path.display()
            )),
            Err(e) => notes.push(format!("cannot remove `{}`: {e}", path.display())),
        }
    }
    notes
}

/// Makes orch's directory `dir` of a plan (its parent exists): this user's alone (0700), made
/// so at once; an existing one made so.
pub(super) fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = std::fs::symlink_metadata(dir)?;
            if !meta.file_type().is_dir() {
                return Err(std::io::Error::other("it is not a directory"));
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_orchs_names_give_a_run() {
        assert_eq!(run_of("orch-12-345-p-0a1b2c3d-container"), Some("12-345"));
        assert_eq!(run_of("orch-12-345-a-b-0a1b2c3d-services"), Some("12-345"));
        for not in [
            "orch-12-345-p-0a1b2c3d",
            "orch-12-p-0a1b2c3d-container",
            "orch-12-345-p-xyz-container",
            "orch-x-345-p-0a1b2c3d-container",
            "orch-12-345-p-1-container-1",
            "other-12-345-p-0a1b2c3d-container",
        ] {
            assert_eq!(run_of(not), None, "{not}");
        }
    }
}
