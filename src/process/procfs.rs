//! What `/proc` says of processes, read and never trusted beyond it: a process's stat (its
//! state, parent, group, session and start time, read by [`crate::untrusted::procfs`], which
//! the network proxy shares), whether it is still the process that started
//! at a recorded time, whether it descends from another, and the processes found by the
//! variables of their environment (an earlier supervisor's agents, whatever claims to be one).

/// The pids in `/proc`.
pub(super) fn all_pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

pub(super) use crate::untrusted::procfs::{Stat, stat_of};

/// Whether process `pid` is alive and is the one that started at `start_time` (field 22 of its
/// stat; 0 = unknown, then only liveness counts).
pub(crate) fn process_alive(pid: u32, start_time: u64) -> bool {
    stat_of(pid)
        .is_some_and(|st| st.state != 'Z' && (start_time == 0 || st.start_time == start_time))
}

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`, clock ticks after boot),
/// or 0 when it cannot be read (no such process, no `/proc`).
pub(crate) fn process_start_time(pid: u32) -> u64 {
    stat_of(pid).map_or(0, |st| st.start_time)
}

/// A process found running with the `ORCH_*` variables orch gives an agent: perhaps an agent
/// of an earlier supervisor, perhaps a process that claims to be one. Only ever a process to
/// stop: what is adopted is decided from orch's records (pid and start time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FoundAgent {
    pub(crate) pid: u32,
    /// Its start time when it was found ([`process_start_time`]): the same process later.
    pub(crate) start_time: u64,
    /// Its process group.
    pub(crate) pgid: u32,
    /// `ORCH_STATUS_FILE`: which plan.
    pub(crate) status_file: String,
    /// `ORCH_TASK`: which task (empty for a plan-mode agent).
    pub(crate) task: String,
}

/// Every live process (not a zombie, not this one) whose environment names an orch status file
/// and task: the agents of an earlier supervisor, their children, and whatever claims to be
/// one. This finds an agent even when the supervisor died between launching it and recording
/// its pid; such an agent is stopped, never adopted.
pub(crate) fn find_agents() -> Vec<FoundAgent> {
    let mut out = Vec::new();
    for (pid, environ) in environs() {
        if let Some(status_file) = env_var(&environ, crate::agent_env::ORCH_STATUS_FILE)
            && let Some(task) = env_var(&environ, crate::agent_env::ORCH_TASK)
            && let Some(st) = stat_of(pid)
            && st.state != 'Z'
        {
            out.push(FoundAgent {
                pid,
                start_time: st.start_time,
                pgid: st.pgrp,
                status_file,
                task,
            });
        }
    }
    out
}

/// Whether process `pid` is `ancestor` or one of its descendants (its parents, read from
/// `/proc`, lead there). A process below a wrapper stays below it however it detaches: the
/// wrapper is a subreaper. A parent that exits while the chain is read (gone, or its pid
/// already another, younger process's) has re-parented its children by then: the chain is read
/// again from `pid`.
pub(crate) fn descends_from(pid: u32, ancestor: u32) -> bool {
    'chain: for _ in 0..16 {
        let mut p = pid;
        let Some(mut st) = stat_of(p) else {
            return false;
        };
        for _ in 0..4096 {
            if p == ancestor {
                return true;
            }
            if st.ppid <= 1 || st.ppid == p {
                return false;
            }
            match stat_of(st.ppid) {
                Some(parent) if parent.start_time <= st.start_time => {
                    p = st.ppid;
                    st = parent;
                }
                _ => continue 'chain,
            }
        }
        return false;
    }
    false
}

/// The value of variable `name` in an environment as `/proc/<pid>/environ` holds it (the last
/// one, should it be set twice).
fn env_var(environ: &[u8], name: &str) -> Option<String> {
    environ
        .split(|b| *b == 0)
        .rev()
        .find_map(|var| env_value(var, name))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The value of variable `name` in process `pid`'s environment, if it can be read and sets it.
pub(crate) fn env_of(pid: u32, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env_var(&environ, name)
}

/// Every process but this one whose environment can be read: its pid and its environment
/// (`NAME=value` entries separated by NUL bytes).
fn environs() -> impl Iterator<Item = (u32, Vec<u8>)> {
    let me = std::process::id();
    all_pids().filter(move |&pid| pid != me).filter_map(|pid| {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        Some((pid, environ))
    })
}

/// The inode of process `pid`'s pid namespace (`/proc/<pid>/ns/pid`): which processes share it.
pub(crate) fn pid_ns_of(pid: u32) -> Option<u64> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|m| m.ino())
}

/// The live (not zombie) processes of the pid namespace of inode `ns`, each with its parent (as
/// this machine numbers them): what runs in a container, wherever it moved in it.
pub(crate) fn in_pid_ns(ns: u64) -> std::collections::BTreeMap<u32, u32> {
    all_pids()
        .filter(|&pid| pid_ns_of(pid) == Some(ns))
        .filter_map(|pid| {
            let st = stat_of(pid)?;
            (st.state != 'Z').then_some((pid, st.ppid))
        })
        .collect()
}

/// The value of `NAME=value` when `var` sets `name`.
fn env_value<'a>(var: &'a [u8], name: &str) -> Option<&'a [u8]> {
    var.strip_prefix(name.as_bytes())?.strip_prefix(b"=")
}
