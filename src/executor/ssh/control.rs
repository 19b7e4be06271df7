//! Where the shared SSH connections' control sockets live: out of every agent's reach, and
//! gone with the process that made them.
//!
//! A control socket is a key to its host: whoever connects to it runs commands there as the
//! lead's user, with no key and no `ssh` of its own (OpenSSH's master accepts any process of the
//! same uid). A confined agent runs as that uid, and Landlock does not govern `connect()` to a
//! path, so the socket must be where no agent can name it:
//!
//! - Its directory is made in orch's private root ([`crate::sandbox::private_root`]: mode 0700,
//!   never readable nor listable by any confined process orch starts, whatever the manifest says)
//!   under a name of 128 random bits, which no file orch writes holds.
//! - Every `ssh` is handed the socket as `/proc/<pid>/fd/<n>/<host>`: through a descriptor of
//!   that directory held by the process that runs `ssh`. That path is what `ps` shows and what
//!   `/proc/net/unix` lists; following it needs leave to trace that process, which Landlock
//!   denies every confined process (a sandboxed process may not trace one outside its domain).
//! - The master is started by the process that owns the directory (`orch up`, `orch hosts`), in
//!   no attempt's process tree: an attempt that ends takes no sibling's connection with it. An
//!   attempt's driver only uses it (`ControlMaster=no`: without a master it connects on its own).
//! - [`ControlDir::close`] (the end of the owning process's run) ends every master and removes
//!   the directory; the path through `/proc/<pid>` dies with the process, a master left by a
//!   killed one ends when idle ([`PERSIST_S`]) and [`sweep`] removes what it left.

use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// How long a master stays after its last client (a master a killed orch left ends by then).
pub(crate) const PERSIST_S: u32 = 60;

/// A directory of control sockets, held open by this process.
#[derive(Debug)]
pub(crate) struct ControlDir {
    /// `O_PATH` descriptor of the directory: its name through `/proc/self` is `via`.
    _fd: OwnedFd,
    /// The directory itself (used only to remove it; never handed to `ssh`).
    physical: PathBuf,
    /// `/proc/<pid>/fd/<n>`: the directory as every `ssh` of this process is given it.
    via: PathBuf,
    /// The lock this process holds while the directory is in use ([`sweep`] takes what no one
    /// holds).
    _lock: std::fs::File,
}

/// The prefix of a control directory's name in the private root.
const PREFIX: &str = "ssh-";

impl ControlDir {
    /// A new directory in the private root (made private), its stale siblings swept first.
    pub(crate) fn new() -> std::io::Result<Self> {
        let root = crate::sandbox::private_root();
        crate::sandbox::make_private_root(&root)?;
        sweep(&root);
        let mut bytes = [0u8; 16];
        getrandom(&mut bytes)?;
        let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let physical = root.join(format!("{PREFIX}{name}"));
        let lock = lock_of(&physical)?;
        lock.try_lock()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new().mode(0o700).create(&physical)?;
        }
        let fd = rustix::fs::open(
            &physical,
            rustix::fs::OFlags::PATH
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::NOFOLLOW
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(std::io::Error::from)?;
        let via = PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            fd.as_raw_fd()
        ));
        Ok(Self {
            _fd: fd,
            physical,
            via,
            _lock: lock,
        })
    }

    /// The directory as `ssh` is given it (`/proc/<pid>/fd/<n>`).
    pub(crate) fn via(&self) -> &Path {
        &self.via
    }

    /// Ends every master of the directory and removes it.
    pub(crate) fn close(&self) {
        exit_masters(&self.via);
        let _ = std::fs::remove_dir_all(&self.physical);
        let _ = std::fs::remove_file(lock_path(&self.physical));
    }
}

impl Drop for ControlDir {
    fn drop(&mut self) {
        self.close();
    }
}

/// The socket's name for host `name` in a control directory: short and of safe characters
/// whatever the host's name (`ssh` adds a temporary suffix of its own, and a unix socket's path
/// is at most 107 bytes).
pub(crate) fn socket_name(name: &str) -> String {
    crate::git::blob_id_of_bytes(name.as_bytes())[..16].to_string()
}

/// Ends the master of every socket in `dir` (`ssh -O exit`).
fn exit_masters(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let is_socket = e.file_type().is_ok_and(|t| {
            use std::os::unix::fs::FileTypeExt as _;
            t.is_socket()
        });
        if is_socket {
            exit_master(&e.path());
        }
    }
}

/// Ends the master listening at `socket`, if one does.
pub(crate) fn exit_master(socket: &Path) {
    let _ = crate::agent_env::command(super::conn::ssh_program())
        .arg("-o")
        .arg(format!("ControlPath={}", socket.display()))
        .args(["-O", "exit", "--", "orch-control"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Removes the control directories of `root` that no live process holds (a killed orch's),
/// ending their masters first.
pub(crate) fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(PREFIX) || name.ends_with(".lock") {
            continue;
        }
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = e.path();
        let Ok(lock) = lock_of(&dir) else { continue };
        if lock.try_lock().is_err() {
            continue;
        }
        exit_masters(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(lock_path(&dir));
    }
}

fn lock_path(dir: &Path) -> PathBuf {
    let mut s = dir.as_os_str().to_os_string();
    s.push(".lock");
    PathBuf::from(s)
}

/// The lock file of `dir`, opened (made) never through a link and held by this process.
fn lock_of(dir: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(lock_path(dir))?;
    Ok(f)
}

/// Random bytes from the kernel.
fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty())
            .map_err(std::io::Error::from)?;
        filled += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_name_is_short_and_plain_whatever_the_host() {
        for host in ["h1", "a b", "50%h", &"x".repeat(300)] {
            let n = socket_name(host);
            assert_eq!(n.len(), 16);
            assert!(n.bytes().all(|b| b.is_ascii_hexdigit()), "{n}");
        }
        assert_ne!(socket_name("h1"), socket_name("h2"));
    }

    #[test]
    fn the_directory_is_reached_through_this_process_and_removed_at_close() {
        let d = ControlDir::new().expect("control dir");
        assert!(
            d.via()
                .starts_with(format!("/proc/{}/fd/", std::process::id()))
        );
        std::fs::write(d.via().join("probe"), b"x").expect("write through via");
        assert!(d.physical.join("probe").exists());
        assert!(d.physical.starts_with(crate::sandbox::private_root()));
        // The name is not derived from anything but randomness.
        let e = ControlDir::new().expect("another");
        assert_ne!(d.physical, e.physical);
        let physical = d.physical.clone();
        drop(d);
        assert!(!physical.exists());
    }

    /// A killed run's directory (its lock no longer held) is removed with its lock file; a live
    /// run's (its lock held), a directory not named as orch's, and a link or a file named as one
    /// are left as they are, the link's target untouched.
    #[test]
    fn a_sweep_removes_only_the_directories_no_live_process_holds() {
        let root = tempfile::tempdir().expect("root");
        let root = root.path();
        let dead = root.join(format!("{PREFIX}dead"));
        std::fs::create_dir(&dead).expect("dead");
        std::fs::write(dead.join("left"), b"x").expect("a file in it");
        let killed = lock_of(&dead).expect("its lock");
        killed.try_lock().expect("held by the run");
        drop(killed);
        let live = root.join(format!("{PREFIX}live"));
        std::fs::create_dir(&live).expect("live");
        let held = lock_of(&live).expect("its lock");
        held.try_lock().expect("held by the run");
        let other = root.join("other");
        std::fs::create_dir(&other).expect("other");
        let outside = tempfile::tempdir().expect("outside");
        std::fs::write(outside.path().join("keep"), b"x").expect("keep");
        let link = root.join(format!("{PREFIX}link"));
        std::os::unix::fs::symlink(outside.path(), &link).expect("link");
        let file = root.join(format!("{PREFIX}file"));
        std::fs::write(&file, b"x").expect("file");
        sweep(root);
        assert!(!dead.exists(), "the killed run's directory is left");
        assert!(
            !lock_path(&dead).exists(),
            "the killed run's lock file is left"
        );
        assert!(live.is_dir(), "a live run's directory was removed");
        assert!(lock_path(&live).exists());
        assert!(other.is_dir());
        assert!(std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()));
        assert!(
            outside.path().join("keep").exists(),
            "the link was followed"
        );
        assert!(file.is_file());
        drop(held);
    }
}
