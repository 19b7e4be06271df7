//! One of orch's own commands run for a tool: this executable again, in its own process group,
//! stdin closed, its stdout and stderr read to a bound, stopped at a deadline. The command prints
//! what its `--json` prints (escaped as orch escapes everything it prints) and exits with orch's
//! exit code; running it as its own process keeps its output off the server's stdout, which
//! carries the protocol. `orch serve` reads `orch status` through it too, its stdout parsed as it
//! comes ([`run_reading`]).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// What a tool's result holds of a command's output at most.
pub(crate) const STDOUT_MAX: usize = 2 << 20;
/// What an error holds of a command's stderr at most.
pub(crate) const STDERR_MAX: usize = 16 << 10;

/// How a command ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// orch's exit code (killed by a signal: 128 + its number).
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    /// Its stdout went past [`STDOUT_MAX`]: the rest was not kept.
    pub(crate) cut: bool,
}

/// Why a command gave no outcome.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChildError {
    #[error("cannot start `orch {0}`: {1}")]
    Spawn(String, std::io::Error),
    #[error("`orch {0}` did not end within {1} s: stopped")]
    Timeout(String, u64),
    #[error("cannot read the output of `orch {0}`: {1}")]
    Io(String, std::io::Error),
}

/// This executable: orch's own record of itself (`/proc/self/exe`), never a name from `PATH`.
pub(crate) fn orch_exe() -> std::io::Result<PathBuf> {
    std::env::current_exe()
}

/// Runs `orch ARGV` to its end, at most `deadline`; what it printed, bounded.
pub(crate) async fn run(argv: &[String], deadline: Duration) -> Result<Outcome, ChildError> {
    let ended = run_reading(argv, deadline, |out| bounded(out, STDOUT_MAX)).await?;
    let (stdout, cut) = ended.stdout;
    Ok(Outcome {
        code: ended.code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: ended.stderr,
        cut,
    })
}

/// How a command ended, its stdout as the caller's reader of it returned it.
#[derive(Debug)]
pub(crate) struct Ended<T> {
    /// orch's exit code (killed by a signal: 128 + its number).
    pub(crate) code: i32,
    pub(crate) stdout: T,
    /// At most [`STDERR_MAX`] bytes of it.
    pub(crate) stderr: String,
}

/// Runs `orch ARGV` to its end, at most `deadline` (then its whole process group killed), its
/// stdout given to `read_stdout` (which must read it to its end, or the command may block on a
/// full pipe; what it returns is the outcome's `stdout`), its stderr kept to [`STDERR_MAX`].
pub(crate) async fn run_reading<T, F, Fut>(
    argv: &[String],
    deadline: Duration,
    read_stdout: F,
) -> Result<Ended<T>, ChildError>
where
    F: FnOnce(tokio::process::ChildStdout) -> Fut,
    Fut: Future<Output = std::io::Result<T>>,
{
    let shown = argv
        .iter()
        .filter(|a| !a.starts_with("--color"))
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let exe = orch_exe().map_err(|e| ChildError::Spawn(shown.clone(), e))?;
    let mut child = crate::agent_env::orch_itself(exe)
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ChildError::Spawn(shown.clone(), e))?;
    let pid = child.id();
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(ChildError::Spawn(
            shown,
            std::io::Error::other("no pipes to the child"),
        ));
    };
    let work = async {
        let (out, err, status) =
            tokio::join!(read_stdout(out), bounded(err, STDERR_MAX), child.wait());
        Ok::<_, std::io::Error>((out?, err?, status?))
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(Ok((stdout, (stderr, _), status))) => Ok(Ended {
            code: code_of(status),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }),
        Ok(Err(e)) => Err(ChildError::Io(shown, e)),
        Err(_) => {
            // The whole group: what the command started (a verify, a resolver) too.
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Err(ChildError::Timeout(shown, deadline.as_secs()))
        }
    }
}

/// At most `max` bytes of `r`, read to its end (the rest read and dropped, so that the writer
/// never blocks on a full pipe); whether anything was dropped.
async fn bounded(mut r: impl AsyncRead + Unpin, max: usize) -> std::io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut cut = false;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok((kept, cut));
        }
        let room = max.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
        cut |= n > room;
    }
}

fn code_of(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}
