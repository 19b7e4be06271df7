//! `ORCH_PORT`: each worktree (plan or task) gets the first port of a block of `ports` ports
//! (`[defaults]`, default 10) that no other worktree existing at the same time has, so that the
//! dev servers and test databases of parallel agents do not collide.
//!
//! The blocks are kept in `<state_dir>/.ports.json` (`{"<worktree path>": {"start": N, "size":
//! M}}`), read and written under a lock that stands for `<state_dir>/ports.lock` (in orch's private
//! root, out of the agents' reach). A worktree keeps its block
//! while its directory exists, so its setup command and its agents see the same value; the
//! block of a worktree that is gone is given out again. Blocks start at [`FIRST_PORT`] and lie
//! outside the kernel's ephemeral port range (`net.ipv4.ip_local_port_range`, 32768-60999 by
//! default, so 61000 on there): a port the kernel picks for a bind of port 0 or an outgoing
//! connection is never in a block, so an agent in this machine's own network, which may bind
//! port 0, cannot get another worktree's port that way (red team 13: it asked for port 0 with
//! `IP_LOCAL_PORT_RANGE` set to another plan's port, or until the kernel gave it, and took that
//! plan's dev server's port), nor does any program's connection take one by chance. Whether
//! another program on the machine listens on a port is not checked.
//!
//! The registry is a repository's; the machine's ports are shared by every repository and every
//! user (red team 14: a `[[repo]]` plan of the same run, and another repository's run, were
//! given the same block, and one agent took the other's port and read its requests). So each
//! port of a block is also claimed on the machine while orch gives it out: an exclusive `flock`
//! on `<claims>/<port>.lock` ([`claims_dir`]) held by the `orch up` that gave the block until it
//! ends; a port another process holds is not given, and a block recorded before whose port
//! another holds now is given anew. The directory is denied to every confined process (a lock
//! needs only a descriptor Landlock lets it read).
//!
//! Where the claims lie is decided so that no other user controls them (red team 15): the
//! machine's `/run/orch-ports` ([`CLAIMS`]), which only root can make (root's orch makes it, mode
//! 1777, or an administrator does), and which must be a directory of root's with the sticky bit;
//! without it, this user's own directory in orch's private root (then the runs of other users
//! are not seen). A claim is a file this process makes new (its mode set on its own descriptor,
//! never a `chmod` of a name: a hard link to a private file stays private), or one already there
//! that is a plain file of one link owned by root or by this user, opened without following a
//! link and without waiting; anything else at a claim's name (a FIFO, a socket, a directory, a
//! link, another user's file) is a port not given, and the next block is looked at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::untrusted::read;

/// The first port given out.
pub(crate) const FIRST_PORT: u32 = 42_000;
/// The last port a block may hold.
pub(crate) const LAST_PORT: u32 = 65_535;

/// The kernel's ephemeral port range, when `/proc` does not say (Linux's default).
const EPHEMERAL_DEFAULT: (u32, u32) = (32_768, 60_999);

/// The kernel's ephemeral port range (`/proc/sys/net/ipv4/ip_local_port_range`, which IPv6
/// shares): the ports a bind of port 0 or an outgoing connection gets.
fn ephemeral() -> (u32, u32) {
    let text = read::whole(
        Path::new("/proc/sys/net/ipv4/ip_local_port_range"),
        read::STATE,
    )
    .ok()
    .and_then(|b| String::from_utf8(b).ok());
    let mut ports = text
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|w| w.parse::<u32>().ok());
    match (ports.next(), ports.next()) {
        (Some(lo), Some(hi)) if lo <= hi => (lo, hi),
        _ => EPHEMERAL_DEFAULT,
    }
}

/// Whether the block of `size` ports from `start` holds a port of the range `(lo, hi)`.
fn meets((lo, hi): (u32, u32), start: u32, size: u32) -> bool {
    start <= hi && start + size > lo
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Block {
    start: u32,
    size: u32,
}

/// The first port of `worktree`'s block of `size` ports: the one it has, else a new one (the
/// lowest free from [`FIRST_PORT`] on), recorded under `state_dir`.
pub(crate) fn port_for(state_dir: &Path, worktree: &Path, size: u16) -> Result<u16, String> {
    let size = u32::from(size.max(1));
    std::fs::create_dir_all(state_dir)
        .map_err(|e| format!("cannot create `{}`: {e}", state_dir.display()))?;
    let lock_path = state_dir.join("ports.lock");
    // In orch's private root: an agent that may read the state directory could lock a file
    // there and hold every start of an attempt.
    let _lock = crate::sandbox::private_lock(&lock_path)
        .map_err(|e| format!("cannot lock `{}`: {e}", lock_path.display()))?;
    let path = crate::state_layout::PORTS.at(state_dir);
    let mut blocks: BTreeMap<String, Block> = read::whole(&path, read::STATE)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let key = key_of(worktree);
    // Worktrees that are gone give their blocks back.
    blocks.retain(|k, _| *k == key || Path::new(k).is_dir());
    let range = ephemeral();
    // A block given before it had to lie outside the ephemeral range is given anew, as is one
    // whose ports another process of the machine holds now.
    if let Some(b) = blocks.get(&key)
        && b.size == size
        && !meets(range, b.start, b.size)
        && b.start + b.size - 1 <= LAST_PORT
        && claim(&key, b.start, b.size)?.is_none()
    {
        return to_port(b.start);
    }
    blocks.remove(&key);
    let mut taken: Vec<Block> = blocks.values().copied().collect();
    taken.sort_by_key(|b| b.start);
    let mut start = FIRST_PORT;
    loop {
        if meets(range, start, size) {
            start = range.1 + 1;
        }
        if let Some(b) = taken
            .iter()
            .find(|b| start < b.start + b.size && b.start < start + size)
        {
            start = b.start + b.size;
            continue;
        }
        if start + size - 1 > LAST_PORT {
            return Err(format!(
                "no free block of {size} ports from {FIRST_PORT} on outside the kernel's \
                 ephemeral range ({}-{}, `net.ipv4.ip_local_port_range`): {} worktrees of this \
                 repository hold one, the rest are held by other runs of this machine or not \
                 plain claims (`{}`)",
                range.0,
                range.1,
                taken.len(),
                claims_dir()
                    .unwrap_or_else(|_| PathBuf::from(CLAIMS))
                    .display()
            ));
        }
        match claim(&key, start, size)? {
            None => break,
            Some(held) => start = held + 1,
        }
    }
    blocks.insert(key, Block { start, size });
    let text = serde_json::to_vec_pretty(&blocks).map_err(|e| e.to_string())?;
    let tmp = crate::state_layout::PORTS_TMP.path(state_dir);
    crate::links::write(&tmp, &text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
    to_port(start)
}

/// Where the ports given out on this machine are claimed, one lock file per port, for every
/// user: a directory only root can make ([`claims_dir`]).
pub(crate) const CLAIMS: &str = crate::sandbox::PORT_CLAIMS;

/// The ports this process claimed: for which worktree (its key), and their locks, held until it
/// ends.
type Claimed = (String, nix::fcntl::Flock<std::fs::File>);
static HELD: Mutex<BTreeMap<u32, Claimed>> = Mutex::new(BTreeMap::new());

/// The claims' directory: [`CLAIMS`] when it is a directory of root's with the sticky bit (made
/// so here when missing and this process is root's), else this user's own `ports` in orch's
/// private root (mode 0700). Root's orch refuses a [`CLAIMS`] that is anything else.
pub(crate) fn claims_dir() -> Result<PathBuf, String> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
    let shared = PathBuf::from(CLAIMS);
    let root = nix::unistd::geteuid().is_root();
    let cannot = |e: &dyn std::fmt::Display| format!("cannot claim ports in `{CLAIMS}`: {e}");
    let sound = |m: &std::fs::Metadata| m.is_dir() && m.uid() == 0 && m.mode() & 0o1000 != 0;
    match std::fs::symlink_metadata(&shared) {
        Ok(m) if sound(&m) => return Ok(shared),
        Ok(m) if root && m.is_dir() && m.uid() == 0 => {
            std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777))
                .map_err(|e| cannot(&e))?;
            return Ok(shared);
        }
        Ok(_) if root => {
            return Err(cannot(
                &"it is not a directory of root's: remove it, and orch makes it anew",
            ));
        }
        Err(e) if root && e.kind() == std::io::ErrorKind::NotFound => {
            match std::fs::DirBuilder::new().mode(0o700).create(&shared) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return claims_dir(),
                Err(e) => return Err(cannot(&e)),
            }
            std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777))
                .map_err(|e| cannot(&e))?;
            return Ok(shared);
        }
        Err(e) if root => return Err(cannot(&e)),
        // Another user's, or none: this user's own claims.
        _ => {}
    }
    let private = crate::sandbox::private_root();
    crate::sandbox::make_private_root(&private).map_err(|e| format!("cannot claim ports: {e}"))?;
    let own = private.join("ports");
    match std::fs::DirBuilder::new().mode(0o700).create(&own) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let m = std::fs::symlink_metadata(&own)
                .map_err(|e| format!("cannot claim ports in `{}`: {e}", own.display()))?;
            if !m.is_dir() || m.uid() != nix::unistd::geteuid().as_raw() {
                return Err(format!(
                    "cannot claim ports in `{}`: it is not a directory of this user's",
                    own.display()
                ));
            }
        }
        Err(e) => return Err(format!("cannot claim ports in `{}`: {e}", own.display())),
    }
    Ok(own)
}

/// Claims the ports `start..start + size` for the worktree `key`: `None` when this process holds
/// them all for it now (claimed before, or now), else the first one held for another: by
/// another process, or by this one for another worktree that still exists (a `[[repo]]` plan's,
/// whose repository's registry is another); those it took for this block given back. `Err`
/// when a claim cannot be made (nothing is given unclaimed).
fn claim(key: &str, start: u32, size: u32) -> Result<Option<u32>, String> {
    use nix::fcntl::{Flock, FlockArg};
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
    let dir = claims_dir()?;
    let mut held = HELD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut took: Vec<u32> = Vec::new();
    let give_back = |held: &mut BTreeMap<u32, Claimed>, took: Vec<u32>| {
        for p in took {
            held.remove(&p);
        }
    };
    for port in start..start + size {
        if let Some((owner, _)) = held.get_mut(&port) {
            if owner == key {
                continue;
            }
            // Its worktree is gone: the port is this one's now.
            if !Path::new(owner.as_str()).is_dir() {
                *owner = key.to_string();
                continue;
            }
            give_back(&mut held, took);
            return Ok(Some(port));
        }
        let path = dir.join(format!("{port}.lock"));
        let cannot = |e: &dyn std::fmt::Display| {
            format!("cannot claim port {port} (`{}`): {e}", path.display())
        };
        // Never through a link, and never waiting: a FIFO another user left there opens at once
        // (and is refused below) rather than hanging the run.
        let flags = nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK;
        // Made new here: its mode set on this descriptor, readable by every user's orch.
        let made = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(flags)
            .open(&path);
        let opened = match made {
            Ok(f) => f
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .map(|()| f),
            // There already (an earlier run's, another user's): read is enough for a lock.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(flags)
                .open(&path),
            Err(e) => Err(e),
        };
        let file = match opened {
            Ok(f) => f,
            // A link, a socket, a directory, a file this user may not read: not a claim this
            // process can make or check, so the port is not given (as one held elsewhere).
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(
                        nix::libc::ELOOP | nix::libc::ENXIO | nix::libc::EISDIR | nix::libc::EACCES
                    )
                ) =>
            {
                give_back(&mut held, took);
                return Ok(Some(port));
            }
            Err(e) => return Err(cannot(&e)),
        };
        // Only a plain file of one link, root's or this user's, is a claim: a FIFO, socket,
        // device or directory there is someone's trap, another user's file may be swapped by
        // its owner, and a second link is a file of elsewhere; the port is not given.
        let me = nix::unistd::geteuid().as_raw();
        match file.metadata() {
            Ok(m) if m.is_file() && m.nlink() == 1 && (m.uid() == 0 || m.uid() == me) => {}
            Ok(_) => {
                give_back(&mut held, took);
                return Ok(Some(port));
            }
            Err(e) => return Err(cannot(&e)),
        }
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                held.insert(port, (key.to_string(), lock));
                took.push(port);
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                give_back(&mut held, took);
                return Ok(Some(port));
            }
            Err((_, e)) => return Err(cannot(&e)),
        }
    }
    Ok(None)
}

fn key_of(worktree: &Path) -> String {
    let abs: PathBuf = std::path::absolute(worktree).unwrap_or_else(|_| worktree.to_path_buf());
    abs.display().to_string()
}

fn to_port(start: u32) -> Result<u16, String> {
    u16::try_from(start).map_err(|_| format!("port {start} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests that claim ports, one at a time: they share this process's claims ([`HELD`]),
    /// where a worktree one removed is another's to take.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    fn alone() -> std::sync::MutexGuard<'static, ()> {
        ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[test]
    fn blocks_are_disjoint_stable_and_given_back() {
        let _alone = alone();
        let tmp = tempfile::tempdir().expect("tmp");
        let state = tmp.path().join("state");
        let wt = |n: &str| {
            let p = tmp.path().join(n);
            std::fs::create_dir_all(&p).expect("mkdir");
            p
        };
        let (a, b, c) = (wt("a"), wt("b"), wt("c"));
        // The first block outside the kernel's ephemeral range, from 42000 on.
        let (lo, hi) = ephemeral();
        let first = if meets((lo, hi), FIRST_PORT, 25) {
            u16::try_from(hi + 1).expect("port")
        } else {
            42_000
        };
        // (Other runs of this machine may hold the first blocks: where each lies is relative.)
        let disjoint = |x: u16, n: u16, y: u16, m: u16| x + n <= y || y + m <= x;
        let pa = port_for(&state, &a, 10).expect("a");
        let pb = port_for(&state, &b, 10).expect("b");
        assert!(pa >= first && pb >= first, "{pa} {pb}");
        assert!(disjoint(pa, 10, pb, 10), "{pa} {pb}");
        assert_eq!(port_for(&state, &a, 10).expect("a again"), pa, "stable");
        // `a` is gone: its block goes to the next worktree.
        std::fs::remove_dir_all(&a).expect("rm");
        let pc = port_for(&state, &c, 10).expect("c");
        assert_eq!(pc, pa);
        // A larger block does not overlap the others.
        let d = wt("d");
        let pd = port_for(&state, &d, 25).expect("d");
        assert!(disjoint(pd, 25, pb, 10) && disjoint(pd, 25, pc, 10), "{pd}");
        assert_eq!(port_for(&state, &b, 10).expect("b again"), pb);
        for p in [pa, pb, pd] {
            assert!(!meets((lo, hi), u32::from(p), 10), "{p} in {lo}-{hi}");
        }
    }

    /// Red team 14: two repositories' registries (a `[[repo]]` plan of the same run) and another
    /// process's claim: no port given twice on the machine; a worktree whose recorded block
    /// another process holds now gets another.
    #[test]
    fn a_trap_at_a_claim_is_a_port_not_given_and_never_waited_on() {
        let _alone = alone();
        use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
        let dir = claims_dir().expect("claims");
        // Near the top, where no run's blocks reach while the tests run.
        let start = 64_990;
        let trap = |i: u32| dir.join(format!("{}.lock", start + i));
        let target = tempfile::NamedTempFile::new().expect("target");
        let clear = || {
            for i in 0..6 {
                let p = trap(i);
                let _ = std::fs::remove_file(&p).or_else(|_| std::fs::remove_dir(&p));
            }
        };
        clear();
        nix::unistd::mkfifo(&trap(0), nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("fifo");
        std::os::unix::fs::symlink(target.path(), trap(1)).expect("link");
        std::fs::create_dir(trap(2)).expect("dir");
        let _socket = std::os::unix::net::UnixListener::bind(trap(3)).expect("socket");
        // A second link of a private file (another user's hard link, where the kernel lets one
        // be made), and a file of another user's: neither is a claim, and neither is changed.
        let secret = tempfile::NamedTempFile::new_in(&dir).expect("secret");
        std::fs::write(secret.path(), "S3CRET").expect("write");
        std::fs::set_permissions(secret.path(), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        std::fs::hard_link(secret.path(), trap(4)).expect("hard link");
        std::fs::write(trap(5), "").expect("write");
        std::os::unix::fs::chown(trap(5), Some(65534), Some(65534)).expect("chown");
        for first in 0..6 {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(claim("/nowhere/trap", start + first, 1));
            });
            let got = rx
                .recv_timeout(std::time::Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("claim {first} waited on the trap"));
            assert_eq!(got, Ok(Some(start + first)), "the trap at {first}");
        }
        assert_eq!(
            std::fs::read(target.path()).expect("target"),
            b"",
            "nothing written through the link"
        );
        assert!(
            std::fs::symlink_metadata(trap(0))
                .expect("fifo")
                .file_type()
                .is_fifo()
        );
        assert_eq!(
            std::fs::metadata(secret.path()).expect("secret").mode() & 0o777,
            0o600,
            "the private file is still private"
        );
        clear();
        // A plain claim of its own is taken, and made readable by every user's orch.
        assert_eq!(claim("/nowhere/trap", start, 1), Ok(None));
        assert_eq!(
            std::fs::metadata(trap(0)).expect("claim").mode() & 0o777,
            0o644
        );
        HELD.lock().expect("held").remove(&start);
        clear();
    }

    #[test]
    fn a_port_is_given_once_on_the_machine() {
        let _alone = alone();
        let tmp = tempfile::tempdir().expect("tmp");
        let wt = |n: &str| {
            let p = tmp.path().join(n);
            std::fs::create_dir_all(&p).expect("mkdir");
            p
        };
        let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
        let (a, b) = (wt("a"), wt("b"));
        let pa = port_for(&one, &a, 10).expect("a");
        let pb = port_for(&two, &b, 10).expect("b");
        assert!(pa + 10 <= pb || pb + 10 <= pa, "{pa} {pb}");
        // Another process (a lock of its own) holds the port the next block would start at,
        // and one inside the block after it.
        let c = wt("c");
        let mut probe = u32::from(pa.max(pb)) + 10;
        let lock = |port: u32| {
            let at = claims_dir().expect("claims").join(format!("{port}.lock"));
            let f = std::fs::File::open(&at)
                .or_else(|_| std::fs::File::create(&at))
                .expect("open");
            nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock)
                .map_err(|(_, e)| e)
        };
        // A port some other test or run holds already is skipped for the probe too.
        let mut others = Vec::new();
        while others.len() < 2 {
            if let Ok(l) = lock(probe) {
                others.push((probe, l));
            }
            probe += 5;
        }
        let pc = u32::from(port_for(&one, &c, 10).expect("c"));
        for (held, _) in &others {
            assert!(!(pc..pc + 10).contains(held), "{pc} holds {held}");
        }
        drop(others);
        assert_eq!(
            port_for(&two, &b, 10).expect("b again"),
            pb,
            "stable while held"
        );
        // A later run (this process's claims of `b` let go) finds `b`'s recorded block held by
        // another process: `b` gets another.
        {
            let mut held = HELD.lock().expect("held");
            for p in u32::from(pb)..u32::from(pb) + 10 {
                held.remove(&p);
            }
        }
        let other = lock(u32::from(pb) + 3).expect("lock a port of b's block");
        let moved = port_for(&two, &b, 10).expect("b moved");
        assert_ne!(moved, pb);
        assert!(!(moved..moved + 10).contains(&(pb + 3)), "{moved}");
        drop(other);
    }

    #[test]
    fn a_block_never_meets_the_ephemeral_range() {
        assert!(meets((32_768, 60_999), 42_000, 10));
        assert!(meets((32_768, 60_999), 32_760, 10));
        assert!(meets((32_768, 60_999), 60_999, 1));
        assert!(!meets((32_768, 60_999), 61_000, 10));
        assert!(!meets((32_768, 60_999), 32_758, 10));
    }
}
