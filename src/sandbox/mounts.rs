//! Outside its write set, the file system is read-only to a confined process: its metadata as
//! well as its contents. Landlock controls what a process may write into files and directories,
//! not what it may change about them: their mode bits (`chmod`), their group (`chown` to a group
//! of the user's), their times (`utimes`), their extended attributes. An agent confined by
//! Landlock alone could `chmod 000` another plan's worktree or make a file of the repository
//! writable by everyone. In the mount namespace orch makes for every confined process
//! ([`super::hide_private_root`]), [`read_only_outside`] makes every mount read-only, then binds
//! each path of the write set over itself, writable: a change outside the write set fails
//! (`EROFS`), as a write there does. Devices, sockets and pipes are not files of a file system
//! in this sense: `/dev/null`, a pseudo-terminal, a unix socket orch listens on are used as
//! before.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};

/// The most of `/proc/self/mountinfo` read (a line is about 100 bytes; the kernel allows
/// 100,000 mounts by default).
const MOUNTINFO: crate::untrusted::read::Limit = crate::untrusted::read::Limit {
    bytes: 32 << 20,
    what: "the mount table",
};

/// One mount of this process's namespace: where it is, and its own flags (which a remount must
/// keep: in a user namespace the kernel refuses one that drops a flag the mount was made with).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mount {
    point: PathBuf,
    flags: MsFlags,
}

/// Makes every mount of this process's (private) mount namespace read-only, then each path of
/// `write` writable again (bound over itself, with what lies mounted beneath it). Run in the
/// namespace [`super::hide_private_root`] made, before the capabilities are dropped. Fails closed:
/// a mount it cannot make read-only is named and nothing runs; one this process cannot reach
/// (a path it may not search, gone) is passed over, as it cannot be reached after either.
pub(crate) fn read_only_outside(write: &[PathBuf]) -> Result<(), String> {
    let text = crate::untrusted::read::text(Path::new("/proc/self/mountinfo"), MOUNTINFO)
        .map_err(|e| format!("cannot read the mounts: {e}"))?;
    let all = parse_mountinfo(&text);
    if all.is_empty() {
        return Err("cannot read /proc/self/mountinfo: no mount listed".into());
    }
    for m in &all {
        remount(&m.point, m.flags | MsFlags::MS_RDONLY)
            .map_err(|e| format!("cannot make `{}` read-only: {e}", m.point.display()))?;
    }
    for path in write_points(write) {
        mount(
            Some(&path),
            &path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("cannot keep `{}` writable: {e}", path.display()))?;
        // The flags it had: those of the mount it lies on (read-only only where it was so).
        let flags = mount_of(&all, &path).map_or(MsFlags::empty(), |m| m.flags);
        remount(&path, flags)
            .map_err(|e| format!("cannot keep `{}` writable: {e}", path.display()))?;
    }
    // The working directory was entered before: it still lies on the mount below (read-only
    // now). Entered again by its path, it lies on what is mounted there now.
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the working directory: {e}"))?;
    std::env::set_current_dir(&cwd)
        .map_err(|e| format!("cannot enter `{}` again: {e}", cwd.display()))
}

/// Gives this process pseudo-terminals of its own: a new instance of `devpts` over `/dev/pts`
/// (and its `ptmx` over `/dev/ptmx`), so that the terminals of the lead (the one `orch up` runs
/// in) and of every other process are not there to open: a confined root agent could open the
/// lead's `/dev/pts/0` by its name and read what the lead typed. Run in the namespace
/// [`super::hide_private_root`] made, before [`read_only_outside`]. Fails closed.
pub(crate) fn own_ptys() -> Result<(), String> {
    let pts = Path::new("/dev/pts");
    if !pts.is_dir() {
        return Ok(());
    }
    mount(
        Some("devpts"),
        pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(|e| format!("cannot give the process terminals of its own (devpts): {e}"))?;
    let ptmx = Path::new("/dev/ptmx");
    if ptmx.exists() {
        mount(
            Some(&pts.join("ptmx")),
            ptmx,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("cannot give the process terminals of its own (ptmx): {e}"))?;
    }
    Ok(())
}

/// The paths of `write` to bind writable: each as it resolves (the mount call follows links, so
/// does Landlock's rule), those that exist, parents before what lies beneath them (a bound parent
/// brings the read-only copies of what is mounted below it, which its own bind then covers).
fn write_points(write: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = write.iter().filter_map(|p| p.canonicalize().ok()).collect();
    out.sort_by_key(|p| p.components().count());
    out.dedup();
    out
}

/// Remounts the mount at `point` with `flags` (its own flags only: a bind remount leaves the
/// file system's options alone). `Ok` when `point` cannot be reached.
fn remount(point: &Path, flags: MsFlags) -> Result<(), Errno> {
    match mount(
        None::<&str>,
        point,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags,
        None::<&str>,
    ) {
        Ok(()) => Ok(()),
        Err(Errno::ENOENT | Errno::EACCES | Errno::ENOTDIR) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The mount `path` lies on: the last listed of those whose point is the longest prefix of it.
fn mount_of<'a>(all: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    let mut best: Option<&Mount> = None;
    for m in all {
        if path.starts_with(&m.point)
            && best.is_none_or(|b| m.point.components().count() >= b.point.components().count())
        {
            best = Some(m);
        }
    }
    best
}

/// The mounts `/proc/self/mountinfo` lists (`proc(5)`): the fifth field is the mount point
/// (octal escapes for space, tab, newline and backslash), the sixth its own options.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let point = fields.nth(4)?;
            let options = fields.next()?;
            Some(Mount {
                point: PathBuf::from(unescape(point)),
                flags: own_flags(options),
            })
        })
        .collect()
}

/// The flags a mount's own options stand for (those a bind remount sets or must keep).
fn own_flags(options: &str) -> MsFlags {
    options
        .split(',')
        .map(|o| match o {
            "ro" => MsFlags::MS_RDONLY,
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            "noatime" => MsFlags::MS_NOATIME,
            "nodiratime" => MsFlags::MS_NODIRATIME,
            "relatime" => MsFlags::MS_RELATIME,
            "strictatime" => MsFlags::MS_STRICTATIME,
            _ => MsFlags::empty(),
        })
        .fold(MsFlags::empty(), |a, b| a | b)
}

/// `s` with `mountinfo`'s octal escapes (`\040`) turned back into bytes.
fn unescape(s: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt as _;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let v = d.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    std::ffi::OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_give_the_point_and_its_own_flags() {
        let text = "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw\n\
                    30 22 8:1 / /mnt/a\\040b ro,noatime - ext4 /dev/sda1 rw\n\
                    bad line\n";
        let got = parse_mountinfo(text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].point, Path::new("/proc"));
        assert_eq!(
            got[0].flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME
        );
        assert_eq!(got[1].point, Path::new("/mnt/a b"));
        assert_eq!(got[1].flags, MsFlags::MS_RDONLY | MsFlags::MS_NOATIME);
    }

    #[test]
    fn a_path_lies_on_the_deepest_last_listed_mount() {
        let m = |p: &str, f| Mount {
            point: PathBuf::from(p),
            flags: f,
        };
        let all = [
            m("/", MsFlags::empty()),
            m("/dev/shm", MsFlags::MS_NODEV),
            m("/dev/shm", MsFlags::MS_NOEXEC),
            m("/dev", MsFlags::MS_NOSUID),
        ];
        let of = |p: &str| mount_of(&all, Path::new(p)).map(|m| m.flags);
        assert_eq!(of("/dev/shm/x"), Some(MsFlags::MS_NOEXEC));
        assert_eq!(of("/dev/null"), Some(MsFlags::MS_NOSUID));
        assert_eq!(of("/devices"), Some(MsFlags::empty()));
    }

    #[test]
    fn escapes_are_undone_and_a_lone_backslash_kept() {
        assert_eq!(
            unescape("/a\\040b\\134c"),
            std::ffi::OsString::from("/a b\\c")
        );
        assert_eq!(unescape("/a\\9"), std::ffi::OsString::from("/a\\9"));
    }

    #[test]
    fn write_points_come_parents_first() {
        let tmp = tempfile::tempdir().expect("tmp");
        let deep = tmp.path().join("a/b");
        std::fs::create_dir_all(&deep).expect("mkdir");
        let got = write_points(&[deep.clone(), tmp.path().join("a"), tmp.path().join("none")]);
        let a = tmp.path().join("a").canonicalize().expect("a");
        assert_eq!(got, vec![a, deep.canonicalize().expect("deep")]);
    }
}
