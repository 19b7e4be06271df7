//! The one directory of this orch process where the private `TMPDIR` of every process it
//! confines is made (`<system tmp>/orch-tmp-<pid>-<n>`, mode 0700, a name no one could have
//! made first: a directory found there is passed over for the next name). Every confined
//! process has it denied for reading ([`super::args`]) and its own `TMPDIR` beneath it
//! writable: another attempt's temporary files (its scratch copies, its sockets) are out of its
//! reach, as they are on an ssh host, where each attempt's directory is out of the others'.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static ROOT: OnceLock<PathBuf> = OnceLock::new();

/// This process's directory of private `TMPDIR`s, made at the first call.
pub(crate) fn tmp_root() -> &'static Path {
    ROOT.get_or_init(make)
}

/// The directory, if [`tmp_root`] has made it.
pub(crate) fn made_tmp_root() -> Option<&'static Path> {
    ROOT.get().map(PathBuf::as_path)
}

/// Removes the directory when nothing is left in it (an attempt that outlives this process, to
/// be adopted by the next run, keeps its `TMPDIR`).
pub(crate) fn remove_tmp_root() {
    if let Some(root) = made_tmp_root() {
        let _ = std::fs::remove_dir(root);
    }
}

fn make() -> PathBuf {
    use std::os::unix::fs::DirBuilderExt as _;
    let base = std::env::temp_dir();
    let pid = std::process::id();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = |n: u32| base.join(format!("orch-tmp-{pid}-{:x}", nanos.wrapping_add(n)));
    for n in 0..64 {
        let path = name(n);
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return path,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            // Made by the first TMPDIR's own creation, which then reports why it cannot.
            Err(_) => return path,
        }
    }
    name(64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_this_users_alone_and_made_once() {
        use std::os::unix::fs::MetadataExt as _;
        let a = tmp_root();
        assert_eq!(a, tmp_root());
        assert_eq!(made_tmp_root(), Some(a));
        let m = std::fs::symlink_metadata(a).expect("made");
        assert!(m.is_dir());
        assert_eq!(m.mode() & 0o777, 0o700);
        assert!(
            a.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("orch-tmp-")),
            "{a:?}"
        );
    }
}
