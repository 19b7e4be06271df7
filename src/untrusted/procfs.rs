//! What `/proc/<pid>/stat` says of a process, read as untrusted: its command name (field 2) is
//! the process's own to choose, parentheses and spaces included, so the fields are counted from
//! its last `)`. Shared by the processes orch keeps track of ([`crate::process`]) and the
//! network proxy's check of who connects ([`crate::sandbox::net`]).

/// The fields of `/proc/<pid>/stat` orch reads.
#[derive(Clone, Debug, Default)]
pub(crate) struct Stat {
    pub(crate) state: char,
    pub(crate) ppid: u32,
    pub(crate) pgrp: u32,
    pub(crate) session: u32,
    /// Field 22: clock ticks after boot (0 when it cannot be read).
    pub(crate) start_time: u64,
}

/// Process `pid`'s stat, when it exists and its stat reads.
pub(crate) fn stat_of(pid: u32) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from its end.
    let close = stat.rfind(')')?;
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let number = |i: usize| fields.get(i)?.parse().ok();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: number(1)?,
        pgrp: number(2)?,
        session: number(3)?,
        start_time: fields.get(19).and_then(|f| f.parse().ok()).unwrap_or(0),
    })
}
