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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    // A block given before it had to lie outside the ephemeral range is given anew.
    if let Some(b) = blocks.get(&key)
        && b.size == size
        && !meets(range, b.start, b.size)
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
        match taken
            .iter()
            .find(|b| start < b.start + b.size && b.start < start + size)
        {
            Some(b) => start = b.start + b.size,
            None => break,
        }
    }
    if start + size - 1 > LAST_PORT {
        return Err(format!(
            "no free block of {size} ports from {FIRST_PORT} on outside the kernel's ephemeral \
             range ({}-{}, `net.ipv4.ip_local_port_range`): {} worktrees hold one",
            range.0,
            range.1,
            taken.len()
        ));
    }
    blocks.insert(key, Block { start, size });
    let text = serde_json::to_vec_pretty(&blocks).map_err(|e| e.to_string())?;
    let tmp = crate::state_layout::PORTS_TMP.path(state_dir);
    crate::links::write(&tmp, &text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
    to_port(start)
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

    #[test]
    fn blocks_are_disjoint_stable_and_given_back() {
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
        let pa = port_for(&state, &a, 10).expect("a");
        let pb = port_for(&state, &b, 10).expect("b");
        assert_eq!((pa, pb), (first, first + 10));
        assert_eq!(port_for(&state, &a, 10).expect("a again"), pa, "stable");
        // `a` is gone: its block goes to the next worktree.
        std::fs::remove_dir_all(&a).expect("rm");
        assert_eq!(port_for(&state, &c, 10).expect("c"), first);
        // A larger block does not overlap the others.
        let d = wt("d");
        let pd = port_for(&state, &d, 25).expect("d");
        assert_eq!(pd, first + 20);
        assert_eq!(port_for(&state, &b, 10).expect("b again"), pb);
        for p in [pa, pb, pd] {
            assert!(!meets((lo, hi), u32::from(p), 10), "{p} in {lo}-{hi}");
        }
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
