//! Agent processes: each in its own process group, output to a log file, stopped as a group.
//!
//! Started with tokio's `Command` (`process_group(0)`) and awaited with tokio's child wait.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::time::Instant;

pub use tokio::process::Child;

use crate::agent_env::{self, GIT_ENV};

/// A launched agent.
pub struct Spawned {
    pub child: Child,
    /// Also the process group id: the agent leads its own group.
    pub pid: u32,
}

/// Opens a log file for appending, creating its directory.
/// Never through a symlink at the log's path (an agent may have planted one).
pub fn open_log(path: &Path) -> io::Result<File> {
    crate::links::open_append(path)
}

/// Appends one line to a log (a header before an attempt, a footer after it).
pub fn log_line(path: &Path, line: &str) {
    if let Ok(mut f) = open_log(path) {
        let _ = writeln!(f, "{line}");
    }
}

/// Spawns `argv` in `cwd` as the leader of a new process group, stdin from /dev/null, stdout and
/// stderr appended to `log`, with `env` added and orch's git variables removed. `argv[0]` is
/// looked up on the child's `PATH` when it has no `/`, else taken relative to `cwd`. Must be
/// called within a tokio runtime, which reaps the child (also one dropped while it runs).
pub fn spawn(
    argv: &[String],
    cwd: &Path,
    env: &[(String, String)],
    log: &Path,
) -> io::Result<Spawned> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty argv"))?;
    let out = open_log(log)?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    for name in GIT_ENV {
        cmd.env_remove(name);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("the child has no process id"))?;
    Ok(Spawned { child, pid })
}

/// Sends `sig` to every process of group `pgid`; false when the group no longer exists.
pub fn signal_group(pgid: u32, sig: Signal) -> bool {
    let Ok(raw) = i32::try_from(pgid) else {
        return false;
    };
    if raw <= 1 {
        return false;
    }
    killpg(Pid::from_raw(raw), sig).is_ok()
}

/// Whether any process of group `pgid` is still alive (zombies aside once reaped).
pub fn group_alive(pgid: u32) -> bool {
    let Ok(raw) = i32::try_from(pgid) else {
        return false;
    };
    raw > 1 && killpg(Pid::from_raw(raw), None).is_ok() && group_has_live_member(pgid)
}

/// `/proc` scan: a member of the group that is not a zombie. Without `/proc`, assume alive.
fn group_has_live_member(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some((state, group)) = stat_state_and_group(pid)
            && group == pgid
            && state != 'Z'
        {
            return true;
        }
    }
    false
}

/// Field 3 (state) and field 5 (pgrp) of `/proc/<pid>/stat`.
fn stat_state_and_group(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    let mut fields = stat[close + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Whether process `pid` is alive and is the one that started at `start_time` (field 22 of its
/// stat; 0 = unknown, then only liveness counts).
pub fn process_alive(pid: u32, start_time: u64) -> bool {
    match stat_state_and_group(pid) {
        Some((state, _)) if state != 'Z' => {
            start_time == 0 || process_start_time(pid) == start_time
        }
        _ => false,
    }
}

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`, clock ticks after boot),
/// or 0 when it cannot be read (no such process, no `/proc`).
pub fn process_start_time(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name (field 2) is in parentheses and may hold spaces: count from its end.
    let Some(close) = stat.rfind(')') else {
        return 0;
    };
    stat[close + 1..]
        .split_whitespace()
        .nth(19)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

/// An agent process found running, by the `ORCH_*` variables orch gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundAgent {
    /// Its process group (the agent orch launched leads it).
    pub pgid: u32,
    /// `ORCH_STATUS_FILE`: which plan.
    pub status_file: String,
    /// `ORCH_TASK`: which task (empty for a plan-mode agent).
    pub task: String,
}

/// Every live process (not a zombie, not this one) whose environment names an orch status file
/// and task: the agents of an earlier supervisor, and their children. This finds an agent even
/// when the supervisor died between launching it and recording its pid.
pub fn find_agents() -> Vec<FoundAgent> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let mut status_file = None;
        let mut task = None;
        for var in environ.split(|b| *b == 0) {
            if let Some(v) = env_value(var, agent_env::ORCH_STATUS_FILE) {
                status_file = Some(String::from_utf8_lossy(v).into_owned());
            } else if let Some(v) = env_value(var, agent_env::ORCH_TASK) {
                task = Some(String::from_utf8_lossy(v).into_owned());
            }
        }
        let (Some(status_file), Some(task)) = (status_file, task) else {
            continue;
        };
        if let Some((state, pgid)) = stat_state_and_group(pid)
            && state != 'Z'
        {
            out.push(FoundAgent {
                pgid,
                status_file,
                task,
            });
        }
    }
    out
}

/// The value of `NAME=value` when `var` sets `name`.
fn env_value<'a>(var: &'a [u8], name: &str) -> Option<&'a [u8]> {
    var.strip_prefix(name.as_bytes())?.strip_prefix(b"=")
}

/// Stops a process group: SIGTERM, up to `grace` for it to go, then SIGKILL. Returns whether
/// SIGKILL was needed. `child` (the leader, if ours) is reaped meanwhile.
pub async fn terminate_group(pgid: u32, grace: Duration, mut child: Option<&mut Child>) -> bool {
    signal_group(pgid, Signal::SIGTERM);
    // Something that waits for TERM to take effect: re-sent in case the leader blocked it briefly.
    let deadline = Instant::now() + grace;
    loop {
        if let Some(c) = child.as_deref_mut() {
            let _ = c.try_wait();
        }
        if !group_alive(pgid) {
            return false;
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    signal_group(pgid, Signal::SIGKILL);
    if let Some(c) = child {
        let _ = c.wait().await;
    }
    // SIGKILL cannot be ignored; give the kernel a moment to take the group down.
    let until = Instant::now() + Duration::from_secs(2);
    while group_alive(pgid) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// Resolves an agent's program the way `execvp` will: a name with a `/` relative to `cwd`, else
/// the first match on `PATH`. `None` when nothing executable is found.
pub fn resolve_program(program: &str, cwd: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        let p = cwd.join(program);
        return executable(&p).then_some(p);
    }
    search_path(program, &std::env::var_os("PATH")?)
}

/// The first executable `program` in the directories of `path` (a `PATH` value).
fn search_path(program: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// This host's name, for the status file's `orchRun.host`.
pub fn hostname() -> Option<String> {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    fn argv(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_string()).collect()
    }

    /// Waits for `child`, at most 30 s.
    async fn wait(child: &mut Child) -> ExitStatus {
        tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("the child ended in time")
            .expect("wait")
    }

    /// Runs `sh -c script` in `dir` with `env` added; its exit status and everything it wrote (stdout and stderr
    /// both go to the log).
    async fn run(dir: &Path, script: &str, env: &[(String, String)]) -> (ExitStatus, String) {
        let log = dir.join("out.log");
        let mut spawned = spawn(&argv(&["sh", "-c", script]), dir, env, &log).expect("spawn");
        let status = wait(&mut spawned.child).await;
        (status, std::fs::read_to_string(&log).expect("read log"))
    }

    #[tokio::test]
    async fn the_child_gets_its_directory_streams_group_and_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir = dir.path().canonicalize().expect("canonical");
        let env = vec![("ORCH_CHILD_TEST".to_string(), "x y".to_string())];
        let script = "pwd; echo \"var=$ORCH_CHILD_TEST\"; echo \"git=${GIT_DIR-unset}\"; \
                      read line; echo \"stdin=$?\"; echo err >&2; \
                      [ \"$(ps -o pgid= -p $$ | tr -d ' ')\" = \"$$\" ] && echo leader; exit 3";
        // orch's own git variables are removed; one the caller gives the child is kept.
        let mut with_git = env.clone();
        with_git.push(("GIT_DIR".to_string(), "kept-when-given".to_string()));
        let (status, out) = run(&dir, script, &env).await;
        assert_eq!(status.code(), Some(3), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            [
                dir.to_str().expect("utf-8"),
                "var=x y",
                "git=unset",
                "stdin=1",
                "err",
                "leader"
            ],
            "{out}"
        );
        let (_, out) = run(&dir, "echo \"git=${GIT_DIR-unset}\"", &with_git).await;
        assert!(out.ends_with("git=kept-when-given\n"), "{out}");
    }

    #[tokio::test]
    async fn a_signal_ends_the_child_with_that_signal_and_sigpipe_is_default_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        // orch ignores SIGPIPE (Rust does); the child must die of it like any program.
        let (status, out) = run(dir.path(), "kill -PIPE $$", &[]).await;
        assert_eq!(status.signal(), Some(Signal::SIGPIPE as i32), "{out}");
        let (status, _) = run(dir.path(), "kill -TERM $$", &[]).await;
        assert_eq!(status.signal(), Some(Signal::SIGTERM as i32));
    }

    #[tokio::test]
    async fn a_missing_program_is_not_found_and_a_relative_one_is_taken_from_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("out.log");
        let missing = argv(&["no-such-program-orch-test"]);
        let err = spawn(&missing, dir.path(), &[], &log)
            .err()
            .expect("not found");
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        let script = dir.path().join("agent.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 7\n").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut relative = spawn(&argv(&["./agent.sh"]), dir.path(), &[], &log).expect("spawn");
        assert_eq!(wait(&mut relative.child).await.code(), Some(7));
        // A PATH given to the child is the one its program is looked up on.
        let path = [("PATH".to_string(), dir.path().display().to_string())];
        let mut on_path = spawn(&argv(&["agent.sh"]), dir.path(), &path, &log)
            .expect("spawn agent.sh on the child's PATH");
        assert_eq!(wait(&mut on_path.child).await.code(), Some(7));
        let err = spawn(&argv(&["sh", "-c", "a\0b"]), dir.path(), &[], &log)
            .err()
            .expect("NUL refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        let err = spawn(&[], dir.path(), &[], &log).err().expect("empty argv");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }

    #[tokio::test]
    async fn a_cancelled_wait_loses_nothing_and_a_dropped_child_is_reaped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("out.log");
        let fifo = dir.path().join("go");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let script = argv(&["sh", "-c", "read x < go; exit 5"]);
        let mut spawned = spawn(&script, dir.path(), &[], &log).expect("spawn");
        let child = &mut spawned.child;
        // The child blocks on the fifo: a wait cut short finds it running.
        let cut = tokio::time::timeout(Duration::from_millis(50), child.wait()).await;
        assert!(cut.is_err(), "the child cannot have ended yet");
        assert!(child.try_wait().expect("try_wait").is_none());
        std::fs::write(&fifo, "go\n").expect("release the child");
        assert_eq!(wait(child).await.code(), Some(5));
        assert_eq!(
            child.try_wait().expect("again").map(|s| s.code()),
            Some(Some(5))
        );

        // Dropped while running: once it ends, it is reaped (no zombie left behind).
        let spawned = spawn(&script, dir.path(), &[], &log).expect("spawn");
        let pid = spawned.pid;
        drop(spawned);
        std::fs::write(&fifo, "go\n").expect("release the child");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "process {pid} was not reaped"
            );
            tokio::task::yield_now().await;
        }
    }

    #[test]
    fn process_start_time_of_this_process() {
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(process_start_time(std::process::id()) > 0);
        }
        assert_eq!(process_start_time(u32::MAX), 0);
    }

    #[test]
    fn programs_resolve_like_execvp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("agent.sh");
        std::fs::write(&script, "#!/bin/sh\n").expect("write");
        // Not executable yet: not found.
        assert_eq!(resolve_program("./agent.sh", dir.path()), None);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(
            resolve_program("./agent.sh", dir.path()),
            Some(dir.path().join("./agent.sh"))
        );
        let sh = resolve_program("sh", dir.path()).expect("sh is on PATH");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(resolve_program("no-such-program-xyz", dir.path()), None);
    }

    #[tokio::test]
    async fn terminate_group_kills_a_group_that_ignores_sigterm() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("agent.log");
        let argv: Vec<String> = [
            "sh",
            "-c",
            "trap '' TERM; sh -c 'trap \"\" TERM; while :; do sleep 1; done' & echo started; while :; do sleep 1; done",
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        let mut spawned = spawn(&argv, dir.path(), &[], &log).expect("spawn");
        let pid = spawned.pid;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("started")) {
            assert!(Instant::now() < deadline, "the group did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(group_alive(pid));
        let killed =
            terminate_group(pid, Duration::from_millis(200), Some(&mut spawned.child)).await;
        assert!(killed, "SIGTERM alone cannot have stopped it");
        assert!(!group_alive(pid), "a member of the group survived");
    }
}
