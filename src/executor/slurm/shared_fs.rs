//! Whether the compute nodes can see a path: what orch refuses at the start of a run whose
//! worktrees, state, logs or orch itself would be on a filesystem only this machine sees.

/// The filesystem type of `path` (or its nearest existing ancestor) when it is one that only
/// this machine sees (`tmpfs`, `ramfs`), from `/proc/self/mountinfo`.
pub(crate) fn node_local_fs(path: &std::path::Path) -> Option<String> {
    let mut p = std::path::absolute(path).ok()?;
    while !p.exists() {
        p = p.parent()?.to_path_buf();
    }
    let p = p.canonicalize().ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let fstype = mount_fstype(&info, &p)?;
    matches!(fstype.as_str(), "tmpfs" | "ramfs").then_some(fstype)
}

/// The type of the mount holding `path` (the longest mount point above it) in a mountinfo text.
fn mount_fstype(info: &str, path: &std::path::Path) -> Option<String> {
    info.lines()
        .filter_map(|line| {
            // `id parent major:minor root mountpoint options [optional…] - fstype source …`
            let mut fields = line.split(' ');
            let mount = fields.nth(4)?;
            let (_, after) = line.split_once(" - ")?;
            let fstype = after.split(' ').next()?;
            let mount = unescape_mount(mount);
            path.starts_with(&mount)
                .then(|| (mount.as_os_str().len(), fstype.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, t)| t)
}

/// Mount points escape space, tab, newline and backslash as `\NNN` (octal).
fn unescape_mount(s: &str) -> std::path::PathBuf {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(code) = bytes.get(i + 1..i + 4)
            && let Some(v) = std::str::from_utf8(code)
                .ok()
                .and_then(|c| u8::from_str_radix(c, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    use std::os::unix::ffi::OsStringExt;
    std::path::PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_types_come_from_the_longest_mount_point() {
        let info = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
                    30 22 0:5 / /dev/shm rw - tmpfs tmpfs rw\n\
                    31 22 0:6 / /mnt/a\\040b rw - nfs4 srv:/x rw\n";
        let t = |p: &str| mount_fstype(info, std::path::Path::new(p));
        assert_eq!(t("/dev/shm/x").as_deref(), Some("tmpfs"));
        assert_eq!(t("/home/u").as_deref(), Some("ext4"));
        assert_eq!(t("/mnt/a b/repo").as_deref(), Some("nfs4"));
        assert_eq!(t("/mnt/ab").as_deref(), Some("ext4"));
    }

    #[test]
    fn dev_shm_is_node_local() {
        if std::path::Path::new("/dev/shm").is_dir() {
            assert_eq!(
                node_local_fs(std::path::Path::new("/dev/shm/orch-nothing-here")).as_deref(),
                Some("tmpfs")
            );
        }
        assert_eq!(node_local_fs(std::path::Path::new("/")), None);
    }
}
