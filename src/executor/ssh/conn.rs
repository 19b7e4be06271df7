//! One host's SSH connection: `ssh` from `PATH` with only orch's own options (a shared
//! connection through a control socket under the state directory, batch mode, keep-alives, a
//! connect timeout), every remote command a fixed `sh -c` script with its values passed as
//! quoted arguments, never spliced into the script; output bounded, a deadline on every call.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::manifest::Host;

/// The most of a remote command's stdout or stderr orch keeps.
pub(crate) const OUTPUT_MAX: u64 = 1024 * 1024;

/// How long `ssh` may take to connect.
const CONNECT_TIMEOUT_S: u32 = 10;

/// How long the shared connection stays open after its last use.
const PERSIST_S: u32 = 300;

/// The longest path a unix socket may have (`sun_path` less its NUL, with room for the
/// temporary name `ssh` gives the socket while it is made).
const SOCKET_PATH_MAX: usize = 80;

/// Why a remote command did not give its output.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    /// `ssh` itself failed (exit 255): the host does not answer, refuses the key, …
    #[error("host `{host}` does not answer: {why}")]
    Unreachable { host: String, why: String },
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
    control: PathBuf,
}

/// `s` as one word of a POSIX shell: single-quoted.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Conn {
    /// The connection to `host`, its socket in `<state_dir>/ssh/` (made private); where that
    /// path is too long for a unix socket, in a private directory of the temp dir named by it.
    pub(crate) fn new(host: &Host, state_dir: &Path) -> std::io::Result<Self> {
        let mut dir = state_dir.join("ssh");
        if !socket_path_ok(&dir.join(&host.name)) {
            let id = crate::git::blob_id_of_bytes(dir.as_os_str().as_encoded_bytes());
            let tmp = std::env::temp_dir();
            let tmp = if socket_path_ok(&tmp) {
                tmp
            } else {
                PathBuf::from("/tmp")
            };
            dir = tmp.join(format!("orch-ssh-{}", &id[..16]));
        }
        private_dir(&dir)?;
        Ok(Self {
            host: host.clone(),
            control: dir.join(&host.name),
        })
    }

    /// The control socket.
    #[cfg(test)]
    pub(crate) fn control(&self) -> &Path {
        &self.control
    }

    /// `ssh` with orch's options and the destination; the remote command follows.
    fn ssh(&self) -> Command {
        let mut c = Command::new("ssh");
        for o in [
            "ControlMaster=auto".to_string(),
            format!("ControlPath={}", self.control.display()),
            format!("ControlPersist={PERSIST_S}"),
            "BatchMode=yes".to_string(),
            format!("ConnectTimeout={CONNECT_TIMEOUT_S}"),
            "ServerAliveInterval=5".to_string(),
            "ServerAliveCountMax=3".to_string(),
        ] {
            c.arg("-o").arg(o);
        }
        if let Some(port) = self.host.port {
            c.arg("-p").arg(port.to_string());
        }
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
        self.run_with(what, script, args, stdin, timeout, bounded_reader)
            .map(|stdout| Output {
                stdout: stdout.unwrap_or_default(),
            })
    }

    /// [`Self::run`] with its stdout written to `file` (made anew, never through a link), at
    /// most `max` bytes: a longer output is refused (`Failed`) and the file removed. Its size.
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
        let written = self.run_with(what, script, args, None, timeout, move |r| {
            std::thread::spawn(move || {
                let mut r = r;
                let mut out = out;
                let n = std::io::copy(&mut (&mut r).take(max + 1), &mut out);
                let _ = std::io::copy(&mut r, &mut std::io::sink());
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
            Ok(Some(Ok(_))) => Err(fail(format!("its output is larger than {max} bytes"))),
            Ok(Some(Err(e))) => Err(fail(format!("cannot write `{}`: {e}", file.display()))),
            Ok(None) => Err(fail("its output could not be read".to_string())),
            Err(e) => {
                let _ = std::fs::remove_file(file);
                Err(e)
            }
        }
    }

    /// Runs `script` as [`Self::run`] says, its stdout read by what `read` starts (`None`: that
    /// reader panicked).
    fn run_with<T: Send + 'static>(
        &self,
        what: &str,
        script: &str,
        args: &[&str],
        stdin: Option<&Path>,
        timeout: Duration,
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
        let why = String::from_utf8_lossy(&stderr)
            .trim()
            .escape_debug()
            .to_string();
        match status.code() {
            Some(0) => Ok(stdout),
            Some(255) | None => Err(ConnError::Unreachable {
                host: self.host.name.clone(),
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
        if !self.control.exists() {
            return;
        }
        let mut c = Command::new("ssh");
        c.arg("-o")
            .arg(format!("ControlPath={}", self.control.display()))
            .arg("-O")
            .arg("exit")
            .arg("--")
            .arg(&self.host.ssh)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = c.status();
    }

    fn local(&self, e: std::io::Error) -> ConnError {
        ConnError::Local {
            host: self.host.name.clone(),
            why: e.to_string(),
        }
    }
}

/// Whether `path` can be a control socket as `ssh -o ControlPath=…` reads it: short enough for
/// a unix socket (with room for the temporary name `ssh` gives it), and without the characters
/// that `ssh` splits an option at (white space, quotes) or expands (`%`, `~` tokens).
fn socket_path_ok(path: &Path) -> bool {
    let s = path.as_os_str().as_encoded_bytes();
    s.len() + 20 <= SOCKET_PATH_MAX
        && s.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"/._+-@,:=".contains(b))
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

/// Makes `dir` (mode 0700) or checks that the one there is a directory of ours that no one else
/// can write: a control socket is a key to the host.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let m = std::fs::symlink_metadata(dir)?;
    if !m.is_dir() || m.uid() != nix::unistd::geteuid().as_raw() {
        return Err(std::io::Error::other(format!(
            "`{}` is not a directory of this user",
            dir.display()
        )));
    }
    if m.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
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
    fn a_long_state_dir_puts_the_socket_in_a_private_temp_dir() {
        let tmp = tempfile::tempdir().expect("tmp");
        let deep = tmp.path().join("x".repeat(120));
        std::fs::create_dir_all(&deep).expect("deep");
        let host = Host {
            name: "h1".into(),
            ssh: "h1".into(),
            port: None,
            slots: 1,
            dir: "/srv/orch".into(),
            confined: true,
            line: 1,
        };
        let c = Conn::new(&host, &deep).expect("conn");
        assert!(
            c.control().as_os_str().len() <= SOCKET_PATH_MAX,
            "{:?}",
            c.control()
        );
        let short = Conn::new(&host, tmp.path()).expect("conn");
        assert_eq!(short.control(), tmp.path().join("ssh/h1"));
        // Characters `ssh` would split the option at, or expand.
        for odd in ["a b", "50%h", "q\"x"] {
            let dir = tmp.path().join(odd);
            std::fs::create_dir_all(&dir).expect("odd");
            let c = Conn::new(&host, &dir).expect("conn");
            assert!(socket_path_ok(c.control()), "{:?}", c.control());
            assert!(!c.control().starts_with(&dir), "{:?}", c.control());
        }
    }
}
