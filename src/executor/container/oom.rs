//! The kernel's count of the processes its out-of-memory killer ended in a container (the
//! container's memory bound, `memory`, reached): read from the container's control group on
//! this machine, where the engine put it (`podman inspect`'s cgroup path; docker's, its first
//! process's, read when it was made), never from inside the container. How an attempt killed that way is said: "out of memory" on the console.

use std::path::PathBuf;

use super::podman;

/// Where the count of container `name` is, and what it was when last asked.
#[derive(Debug)]
pub(super) struct OomCount {
    file: PathBuf,
    seen: u64,
}

impl OomCount {
    /// Container `name`'s count as it is now; `None` when podman or the kernel does not say.
    pub(super) fn of(name: &str) -> Option<Self> {
        let path = podman::cgroup_path(name)?;
        let path = path.trim().trim_start_matches('/');
        if path.is_empty() || path.split('/').any(|c| c == ".." || c == ".") {
            return None;
        }
        // Control groups v1 (memory.oom_control's `oom_kill`), else v2 (memory.events').
        let root = std::path::Path::new("/sys/fs/cgroup");
        let file = [
            root.join("memory").join(path).join("memory.oom_control"),
            root.join(path).join("memory.events"),
        ]
        .into_iter()
        .find(|f| read(f).is_some())?;
        let seen = read(&file)?;
        Some(Self { file, seen })
    }

    /// How many processes the kernel killed for memory in the container since the last ask.
    pub(super) fn new_kills(&mut self) -> u64 {
        let Some(now) = read(&self.file) else {
            return 0;
        };
        let new = now.saturating_sub(self.seen);
        self.seen = now;
        new
    }
}

/// The `oom_kill` count of a control group's file.
fn read(file: &std::path::Path) -> Option<u64> {
    let bytes = crate::untrusted::read::head(file, 4096).ok()?;
    String::from_utf8_lossy(&bytes)
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}
