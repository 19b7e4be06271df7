//! One host's SSH connection: `ssh` from `PATH` with only orch's own options (a shared
//! connection through a control socket out of every agent's reach, [`super::control`]; batch
//! mode, keep-alives, a connect timeout), every remote command a fixed `sh -c` script with its
//! values passed as quoted arguments, never spliced into the script; output bounded, a deadline
//! on every call.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cause::{self, Cause};
use super::control::{self, ControlDir, PERSIST_S};
use crate::manifest::Host;

/// The most of a remote command's stdout or stderr orch keeps.
pub(crate) const OUTPUT_MAX: u64 = 1024 * 1024;

/// How long `ssh` may take to connect.
const CONNECT_TIMEOUT_S: u32 = 10;

/// Why a remote command did not give its output.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    /// `ssh` itself failed (exit 255): the host does not answer, refuses the key, … (`cause`,
    /// read from `ssh`'s own messages, `why`).
    #[error("host `{host}` cannot be reached ({}): {why}", .cause.says())]
    Unreachable {
        host: String,
        cause: Cause,
        why: String,
    },
    /// The command ran and failed.
    #[error("on host `{host}`, {what} failed (exit {code}): {why}")]
    Failed {
        host: String,
        what: String,
        code: i32,
        why: String,
    },
    /// No answer within the deadline (the command is stopped).
    #[error("host `{host}` did not finish {what} within {secs}s")]
    Timeout {
        host: String,
        what: String,
        secs: u64,
    },
    /// `ssh` could not be started here.
    #[error("cannot run `ssh` for host `{host}`: {why}")]
    Local { host: String, why: String },
    /// The command's output is past what the caller takes (the command is stopped there, the
    /// rest never read): the same command would give it again.
    #[error("on host `{host}`, {what} gives more than {max} bytes")]
    TooLarge {
        host: String,
        what: String,
        max: u64,
    },
}

/// A remote command's output (bounded by [`OUTPUT_MAX`]).
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) stdout: Vec<u8>,
}

/// One host and the control socket of its shared connection.
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    pub(crate) host: Host,
    /// The control socket, as `ssh` is handed it (`/proc/<pid>/fd/<n>/<name>`).
    control: PathBuf,
    /// Whether this connection starts the master when there is none.
    master: Master,
    /// The directory, held open while the connection may be used (the descriptor `control`
    /// goes through is never another file's).
    _dir: Option<Arc<ControlDir>>,
}

/// `s` as one word of a POSIX shell: single-quoted.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// This process's control directory, made at its first connection and ended by [`end_own`].
static OWN: Mutex<Option<Arc<ControlDir>>> = Mutex::new(None);

fn own_dir() -> std::io::Result<Arc<ControlDir>> {
    let mut held = OWN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(d) = held.as_ref() {
        return Ok(d.clone());
    }
    let d = Arc::new(ControlDir::new()?);
    *held = Some(d.clone());
    Ok(d)
}

/// Ends every master this process started and removes its control directory (the end of
/// `orch up`, `orch hosts`): no shared connection outlives the run that made it.
pub(crate) fn end_own() {
    let taken = OWN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(d) = taken {
        d.close();
    }
}

/// The name of `host`'s socket: one per destination (name, `ssh` and port).
fn socket_of(host: &Host) -> String {
    control::socket_name(&format!(
        "{}\0{}\0{}",
        host.name,
        host.ssh,
        host.port.map_or_else(String::new, |p| p.to_string())
    ))
}

/// Keeps the shared connection to each of `hosts` in this process (`orch up`): a master that is
/// `orch up`'s own child (`ssh -M -N` through `orch git-exec --parent`, so that it dies with the
/// thread that waits for it, and with `orch up`), in `orch up`'s session, recorded as a child
/// orch started (the orphan sweep at an attempt's end leaves it alone), never in an attempt's
/// process tree. Started on a thread of its own when the host has none (at most every few
/// seconds per host): a master lost with its host comes back when the host does, and a host that
/// does not answer costs that thread its connect timeout, never the caller. The attempts'
/// drivers use it ([`Conn::through`]); without one they connect on their own.
pub(crate) fn keep_masters(hosts: &[Host], orch_bin: &Path) {
    struct Kept {
        key: String,
        running: bool,
        started: Instant,
    }
    static KEPT: Mutex<Vec<Kept>> = Mutex::new(Vec::new());
    const EVERY: Duration = Duration::from_secs(5);
    for h in hosts {
        let key = socket_of(h);
        {
            let mut kept = KEPT
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            match kept.iter_mut().find(|k| k.key == key) {
                Some(k) if k.running || now.duration_since(k.started) < EVERY => continue,
                Some(k) => {
                    k.running = true;
                    k.started = now;
                }
                None => kept.push(Kept {
                    key: key.clone(),
                    running: true,
                    started: now,
                }),
            }
        }
        let done = move || {
            let mut kept = KEPT
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(k) = kept.iter_mut().find(|k| k.key == key) {
                k.running = false;
            }
        };
        let Ok(conn) = Conn::in_run(h) else {
            done();
            continue;
        };
        let orch_bin = orch_bin.to_path_buf();
        std::thread::spawn(move || {
            let mut cmd = crate::agent_env::command(&orch_bin);
            cmd.args(["git-exec", "--unconfined", "--parent"])
                .arg(std::process::id().to_string())
                .arg("--")
                .arg(ssh_program());
            for o in conn.options(Master::Yes) {
                cmd.arg(o);
            }
            cmd.args(["-N", "--"])
                .arg(&conn.host.ssh)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Ok(mut child) = crate::process::spawn_std(&mut cmd) {
                let _ = child.wait();
                crate::process::forget(child.id());
            }
            done();
        });
    }
}

/// `ssh` on `PATH`, never one where agents may write (`sandbox_write`): that one, or none at all,
/// is named as `ssh` and fails to start ("not found"), so nothing runs.
pub(crate) fn ssh_program() -> PathBuf {
    crate::sandbox::program_on_path("ssh").unwrap_or_else(|_| PathBuf::from("/nonexistent/ssh"))
}

/// Whether an `ssh` starts the master of its control socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Master {
    /// When there is none (`ControlMaster=auto`, kept 60 s after its last session): a command of
    /// its own (`orch hosts`).
    Auto,
    /// Never: it uses the one there or connects on its own (`orch up`'s runs, the drivers).
    No,
    /// It is the master (`orch up`'s keeper, [`keep_masters`]).
    Yes,
}

impl Conn {
    /// The connection to `host` through this process's control directory, whose master this
    /// process starts when there is none. (`_state_dir`: where orch's records of the host lie;
    /// the socket is never there.)
    pub(crate) fn new(host: &Host, _state_dir: &Path) -> std::io::Result<Self> {
        let dir = own_dir()?;
        Ok(Self {
            host: host.clone(),
            control: dir.via().join(socket_of(host)),
            master: Master::Auto,
            _dir: Some(dir),
        })
    }

    /// The connection to `host` through this process's control directory, whose master
    /// [`keep_masters`] keeps (`orch up`): without one, `ssh` connects on its own.
    pub(crate) fn in_run(host: &Host) -> std::io::Result<Self> {
        let dir = own_dir()?;
        Ok(Self {
            host: host.clone(),
            control: dir.via().join(socket_of(host)),
            master: Master::No,
            _dir: Some(dir),
        })
    }

    /// The connection to `host` through the control directory `via` of another process (`orch
    /// up`'s, `/proc/<pid>/fd/<n>`), whose master that process keeps: without one, `ssh`
    /// connects on its own.
    pub(crate) fn through(host: &Host, via: &Path) -> Self {
        Self {
            host: host.clone(),
            control: via.join(socket_of(host)),
            master: Master::No,
            _dir: None,
        }
    }

    /// This process's control directory as another process of the run reaches it (for
    /// [`Self::through`]); `None` when it cannot be made.
    pub(crate) fn own_via() -> Option<PathBuf> {
        own_dir().ok().map(|d| d.via().to_path_buf())
    }

    /// The control socket.
    #[cfg(test)]
    pub(crate) fn control(&self) -> &Path {
        &self.control
    }

    /// orch's options of `ssh` (the shared connection as `master` says, batch mode, a connect
    /// timeout, keep-alives, the port).
    fn options(&self, master: Master) -> Vec<String> {
        let mut out = Vec::new();
        let (how, persist) = match master {
            Master::Auto => ("auto", format!("ControlPersist={PERSIST_S}")),
            Master::No => ("no", "ControlPersist=no".to_string()),
            Master::Yes => ("yes", "ControlPersist=no".to_string()),
        };
        for o in [
            format!("ControlMaster={how}"),
            format!("ControlPath={}", self.control.display()),
            persist,
            "BatchMode=yes".to_string(),
            format!("ConnectTimeout={CONNECT_TIMEOUT_S}"),
            "ServerAliveInterval=5".to_string(),
            "ServerAliveCountMax=3".to_string(),
        ] {
            out.push("-o".to_string());
            out.push(o);
        }
        if let Some(port) = self.host.port {
            out.push("-p".to_string());
            out.push(port.to_string());
        }
        out
    }

    /// `ssh` with orch's options and the destination; the remote command follows.
    fn ssh(&self) -> Command {
        let mut c = crate::agent_env::command(ssh_program());
        c.args(self.options(self.master));
        c.arg("--").arg(&self.host.ssh);
        c
    }

    /// Runs `script` with `sh -c` on the host, `args` its `$1`…, `stdin` (a file) its input;
    /// `what` names it in errors.
    pub(crate) fn run(
        &self,
        what: &str,
        script: &str,
        args: &[&str],
        stdin: Option<&Path>,
        timeout: Duration,
    ) -> Result<Output, ConnError> {
        self.run_with(what, script, args, stdin, (timeout, None), bounded_reader)
            .map(|stdout| Output {
                stdout: stdout.unwrap_or_default(),
            })
    }

    /// [`Self::run`] with its stdout written to `file` (made anew, never through a link), at
    /// most `max` bytes: past them the command is stopped, never read to its end, the file
    /// removed ([`ConnError::TooLarge`]). Its size.
    pub(crate) fn run_to_file(
        &self,
        what: &str,
        (script, args): (&str, &[&str]),
        file: &Path,
        max: u64,
        timeout: Duration,
    ) -> Result<u64, ConnError> {
        let out = crate::links::write(file, b"").and_then(|()| {
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(file)
        });
        let out = out.map_err(|e| self.local(e))?;
        let over = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&over);
        let written = self.run_with(what, script, args, None, (timeout, Some(&over)), move |r| {
            std::thread::spawn(move || {
                let mut r = r;
                let mut out = out;
                let n = std::io::copy(&mut (&mut r).take(max + 1), &mut out);
                if matches!(n, Ok(n) if n > max) {
                    // Past the limit: the command is stopped ([`Self::run_with`]), the rest
                    // never read.
                    flag.store(true, Ordering::SeqCst);
                }
                n
            })
        });
        let fail = |why: String| {
            let _ = std::fs::remove_file(file);
            ConnError::Failed {
                host: self.host.name.clone(),
                what: what.to_string(),
                code: 0,
                why,
            }
        };
        match written {
            Ok(Some(Ok(n))) if n <= max => Ok(n),
            Ok(Some(Ok(_))) => {
                let _ = std::fs::remove_file(file);
                Err(ConnError::TooLarge {
                    host: self.host.name.clone(),
                    what: what.to_string(),
                    max,
                })
            }
            Ok(Some(Err(e))) => Err(fail(format!("cannot write `{}`: {e}", file.display()))),
            Ok(None) => Err(fail("its output could not be read".to_string())),
            Err(e) => {
                let _ = std::fs::remove_file(file);
                Err(e)
            }
        }
    }

    /// Runs `script` as [`Self::run`] says, its stdout read by what `read` starts (`None`: that
    /// reader panicked). Once `over` is set (by the reader: it took all it takes), the command is
    /// stopped and what the reader gave is the answer, whatever the command's end.
    fn run_with<T: Send + 'static>(
        &self,
        what: &str,
        script: &str,
        args: &[&str],
        stdin: Option<&Path>,
        (timeout, over): (Duration, Option<&AtomicBool>),
        read: impl FnOnce(std::process::ChildStdout) -> std::thread::JoinHandle<T>,
    ) -> Result<Option<T>, ConnError> {
        let mut remote = format!("sh -c {} orch", sh_quote(script));
        for a in args {
            remote.push(' ');
            remote.push_str(&sh_quote(a));
        }
        let mut c = self.ssh();
        c.arg(remote);
        let input = match stdin {
            Some(p) => {
                let (file, _) = crate::untrusted::read::open(p)
                    .map_err(|e| self.local(std::io::Error::other(e.to_string())))?;
                Stdio::from(file)
            }
            None => Stdio::null(),
        };
        c.stdin(input).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().map_err(|e| self.local(e))?;
        let out = child.stdout.take().map(read);
        let err = child.stderr.take().map(bounded_reader);
        let deadline = Instant::now() + timeout;
        let status = loop {
            if over.is_some_and(|o| o.load(Ordering::SeqCst)) {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(out.and_then(|h| h.join().ok()));
            }
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ConnError::Timeout {
                        host: self.host.name.clone(),
                        what: what.to_string(),
                        secs: timeout.as_secs(),
                    });
                }
                Err(e) => return Err(self.local(e)),
            }
        };
        let stdout = out.and_then(|h| h.join().ok());
        let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
        let said = String::from_utf8_lossy(&stderr);
        let why = cause::one_line(&said);
        match status.code() {
            Some(0) => Ok(stdout),
            Some(255) | None => Err(ConnError::Unreachable {
                host: self.host.name.clone(),
                cause: cause::of_ssh(&said),
                why: if why.is_empty() {
                    "ssh exit 255".into()
                } else {
                    why
                },
            }),
            Some(code) => Err(ConnError::Failed {
                host: self.host.name.clone(),
                what: what.to_string(),
                code,
                why,
            }),
        }
    }

    /// Starts `script` with `sh -c` on the host (`args` its `$1`…) with its stdin and stdout
    /// piped to the caller, its stderr this process's: a long-lived session (a remote
    /// attempt's), which the caller reads bounded and ends.
    pub(crate) fn spawn(
        &self,
        script: &str,
        args: &[&str],
    ) -> std::io::Result<std::process::Child> {
        let mut remote = format!("sh -c {} orch", sh_quote(script));
        for a in args {
            remote.push(' ');
            remote.push_str(&sh_quote(a));
        }
        let mut c = self.ssh();
        c.arg(remote)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        c.spawn()
    }

    /// Ends the shared connection (`ssh -O exit`); nothing when there is none.
    pub(crate) fn close(&self) {
        if self.control.exists() {
            control::exit_master(&self.control);
        }
    }

    fn local(&self, e: std::io::Error) -> ConnError {
        ConnError::Local {
            host: self.host.name.clone(),
            why: e.to_string(),
        }
    }
}

/// Reads a pipe to its end on a thread, keeping its first [`OUTPUT_MAX`] bytes.
fn bounded_reader(r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut r = r;
        let _ = (&mut r).take(OUTPUT_MAX).read_to_end(&mut kept);
        // The rest is drained so that the remote side never blocks on a full pipe.
        let _ = std::io::copy(&mut r, &mut std::io::sink());
        kept
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_each_value_one_word() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's; rm -rf /"), "'it'\\''s; rm -rf /'");
        assert_eq!(sh_quote(""), "''");
    }

    #[test]
    fn the_socket_is_reached_through_this_process_whatever_the_state_dir() {
        let tmp = tempfile::tempdir().expect("tmp");
        let host = |name: &str| Host {
            name: name.into(),
            ssh: name.into(),
            port: None,
            slots: 1,
            dir: "/srv/orch".into(),
            confined: true,
            line: 1,
        };
        for odd in ["x".repeat(120), "a b".into(), "50%h".into(), "q\"x".into()] {
            let dir = tmp.path().join(&odd);
            let c = Conn::new(&host("h1"), &dir).expect("conn");
            let s = c.control().to_string_lossy().into_owned();
            assert!(
                s.starts_with(&format!("/proc/{}/fd/", std::process::id())),
                "{s}"
            );
            // Short enough for a socket with `ssh`'s temporary suffix, and nothing `ssh` splits
            // an option at or expands.
            assert!(s.len() + 20 <= 107, "{s}");
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/".contains(&b)),
                "{s}"
            );
            assert!(!s.contains(&odd));
        }
        let odd_host = Conn::new(&host("a b%h\"x"), tmp.path()).expect("conn");
        assert!(odd_host.control().to_string_lossy().len() + 20 <= 107);
        let shared = Conn::through(&host("h1"), Path::new("/proc/1/fd/3"));
        assert!(shared.control().starts_with("/proc/1/fd/3"));
        assert_eq!(shared.master, Master::No);
    }
}
