//! Waiting for child processes with a deadline, and looking at the process table.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::TIMEOUT;

/// How long a timed-out process's pipes are still read after it was killed (a grandchild may
/// hold them open).
const DRAIN: Duration = Duration::from_secs(5);

/// Waits for `child` with the default deadline ([`TIMEOUT`]); kills it and fails the test when
/// it runs longer.
pub fn wait(child: Child) -> Output {
    wait_within(child, TIMEOUT, "orch")
}

/// Waits for `child` for at most `timeout`; `what` names it in the failure.
pub fn wait_within(child: Child, timeout: Duration, what: &str) -> Output {
    wait_until(child, Instant::now() + timeout, what)
}

/// Waits for `child` until `deadline`, reading its piped stdout and stderr meanwhile (so a
/// chatty child never blocks on a full pipe); kills it and fails the test with what it printed
/// when the deadline passes.
pub fn wait_until(mut child: Child, deadline: Instant, what: &str) -> Output {
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let mut nap = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Output {
                status,
                stdout: stdout.recv().unwrap_or_default(),
                stderr: stderr.recv().unwrap_or_default(),
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let out = stdout.recv_timeout(DRAIN).unwrap_or_default();
            let err = stderr.recv_timeout(DRAIN).unwrap_or_default();
            panic!(
                "{what} did not finish in time\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}

/// Reads a pipe to its end on a thread; nothing (at once) when there is no pipe.
fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    match pipe {
        Some(mut pipe) => {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = pipe.read_to_end(&mut buf);
                let _ = tx.send(buf);
            });
        }
        None => {
            let _ = tx.send(Vec::new());
        }
    }
    rx
}

/// Waits for `child` until `deadline` without touching its pipes; kills it and fails the test
/// when it runs longer.
pub fn wait_status_until(child: &mut Child, deadline: Instant, what: &str) -> ExitStatus {
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `kill -<signal> <pid>` (with the default deadline): whether it succeeded.
pub fn kill(signal: &str, pid: u32) -> bool {
    let child = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kill");
    wait_within(child, TIMEOUT, "kill").status.success()
}

/// Exit code of a finished process; killed by a signal: 128 + its number, as a shell reports
/// it.
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Exit code, stdout and stderr of a finished process.
pub fn code_out_err(out: &Output) -> (i32, String, String) {
    (
        exit_code(out.status),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `cond` until it holds; fails the test after the default deadline.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process that exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next().map(str::to_string));
            state.as_deref() != Some("Z")
        }
        Err(_) => false,
    }
}

/// Pids of live processes with an environment variable (`NAME=value`) for which `matches`
/// holds.
pub fn pids_with_env(matches: impl Fn(&[u8]) -> bool) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(&matches))
                && process_alive(*pid)
        })
        .collect()
}

/// Pids of live processes whose environment names a status file under `root`: agents of this
/// repository (and anything they started).
pub fn agents_of(root: &Path) -> Vec<u32> {
    let needle = format!("ORCH_STATUS_FILE={}", root.display());
    pids_with_env(|kv| kv.starts_with(needle.as_bytes()))
}
