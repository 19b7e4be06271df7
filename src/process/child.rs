//! Starting an agent with `posix_spawn` and waiting for it through a pidfd.
//!
//! Why not tokio's (std's) `Command`: std starts a child with `posix_spawn` (glibc's vfork path)
//! only when it can ask glibc for its version at run time, which a statically linked orch
//! cannot (no dynamic symbols); there std falls back to `fork`, which copies the supervisor's
//! page tables: 1.6 ms more CPU per agent start, measured on this project's up bench. orch is
//! linked statically (`.cargo/rustc-wrapper`) because agents start it once or twice per task, so
//! it starts its agents itself: `posix_spawn` with the child's process group, standard streams,
//! working directory, signal mask and `SIGPIPE` set as std would set them.
//!
//! The exit is awaited on a pidfd (Linux 5.3+) registered with tokio's reactor; without one
//! (an older kernel, a seccomp filter) [`Child::wait`] polls `waitpid` every 20 ms instead.

#![allow(unsafe_code)]

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A process orch started, reaped by [`Child::wait`] or [`Child::try_wait`] (or, when dropped
/// while running, in the background once it ends, so it leaves no zombie).
pub struct Child {
    pid: libc::pid_t,
    exit: Option<ExitStatus>,
    pidfd: Option<AsyncFd<OwnedFd>>,
}

/// What to start: `argv[0]` is looked up on `PATH` when it has no `/`, else taken relative to
/// `cwd`, as `execvp` after `chdir` does.
pub struct Spec<'a> {
    pub argv: &'a [String],
    pub cwd: &'a Path,
    /// Added to orch's own environment (replacing a variable of the same name).
    pub env: &'a [(String, String)],
    /// Removed from orch's own environment.
    pub env_remove: &'a [&'a str],
    /// The child's stdout and stderr; its stdin is `/dev/null`.
    pub output: &'a File,
}

/// Starts `spec` as the leader of a new process group. Errors are the `exec`'s (a missing
/// program is `NotFound`), or an argument or variable holding a NUL byte (`InvalidInput`).
pub fn spawn(spec: &Spec) -> io::Result<Child> {
    let (program, _) = spec
        .argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty argv"))?;
    let argv = spec
        .argv
        .iter()
        .map(|a| cstring(a.as_bytes()))
        .collect::<io::Result<Vec<_>>>()?;
    let envp = environment(spec)?;
    let program = match path_override(spec.env) {
        // The child's PATH differs from orch's: look the program up on the child's, as std does.
        Some(path) if !program.contains('/') => super::search_path(program, path)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?,
        _ => program.into(),
    };
    let program = cstring(program.as_os_str().as_bytes())?;
    let cwd = cstring(spec.cwd.as_os_str().as_bytes())?;
    // The output must not sit on 0, 1 or 2, which the file actions below overwrite first.
    let high;
    let output = if spec.output.as_raw_fd() <= 2 {
        high = spec.output.try_clone()?;
        high.as_raw_fd()
    } else {
        spec.output.as_raw_fd()
    };
    let pid = posix_spawn(&program, &argv, &envp, &cwd, output)?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; the pid is
    // our unreaped child, so it cannot name another process.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let pidfd = i32::try_from(fd)
        .ok()
        .filter(|fd| *fd >= 0 && tokio::runtime::Handle::try_current().is_ok())
        // SAFETY: a descriptor pidfd_open just returned, owned by nothing else; the OwnedFd
        // moves into the AsyncFd, which closes it only when it is dropped itself.
        .and_then(|fd| unsafe {
            AsyncFd::register_with_interest(OwnedFd::from_raw_fd(fd), Interest::READABLE).ok()
        });
    Ok(Child {
        pid,
        exit: None,
        pidfd,
    })
}

impl Child {
    /// The process id (and process group id).
    pub fn id(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// The exit status if the process has ended (reaping it), else `None`.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.exit {
            return Ok(Some(status));
        }
        let status = reap(self.pid, libc::WNOHANG)?;
        if let Some(status) = status {
            self.exit = Some(status);
            self.pidfd = None;
        }
        Ok(status)
    }

    /// Waits for the process to end and reaps it. Cancel-safe: dropping the future loses
    /// nothing, a later call finds the same status.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            match &self.pidfd {
                Some(fd) => fd.readable().await?.clear_ready(),
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if matches!(self.try_wait(), Ok(Some(_)) | Err(_)) {
            return;
        }
        let (pid, pidfd) = (self.pid, self.pidfd.take());
        match (pidfd, tokio::runtime::Handle::try_current()) {
            (Some(fd), Ok(runtime)) => {
                runtime.spawn(async move {
                    while matches!(reap(pid, libc::WNOHANG), Ok(None)) {
                        match fd.readable().await {
                            Ok(mut ready) => ready.clear_ready(),
                            Err(_) => break,
                        }
                    }
                });
            }
            _ => {
                std::thread::spawn(move || reap(pid, 0));
            }
        }
    }
}

/// `waitpid(pid, flags)`: the status once the process has ended, `None` while it runs (with
/// `WNOHANG`).
fn reap(pid: libc::pid_t, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into a local integer.
        let got = unsafe { libc::waitpid(pid, &raw mut status, flags) };
        if got == pid {
            return Ok(Some(ExitStatus::from_raw(status)));
        }
        if got == 0 {
            return Ok(None);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a NUL byte in `{}`",
                String::from_utf8_lossy(bytes).replace('\0', "\\0")
            ),
        )
    })
}

/// The `PATH` that `env` sets for the child, if any.
fn path_override(env: &[(String, String)]) -> Option<&OsStr> {
    env.iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| OsStr::new(v))
}

/// orch's environment without `env_remove` and the names `env` sets, then `env`.
fn environment(spec: &Spec) -> io::Result<Vec<CString>> {
    let mut out = Vec::new();
    for (name, value) in std::env::vars_os() {
        let name = name.as_bytes();
        let replaced = spec.env_remove.iter().any(|r| r.as_bytes() == name)
            || spec.env.iter().any(|(n, _)| n.as_bytes() == name);
        if !replaced {
            out.push(cstring(&[name, b"=", value.as_bytes()].concat())?);
        }
    }
    for (name, value) in spec.env {
        out.push(cstring(format!("{name}={value}").as_bytes())?);
    }
    Ok(out)
}

/// A null-terminated array of pointers into `strings`, for `posix_spawn`.
fn pointers(strings: &[CString]) -> Vec<*mut libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect()
}

/// Turns a `posix_spawn*` return code into a result.
fn check(code: libc::c_int) -> io::Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(code))
    }
}

/// File actions and attributes, destroyed however the spawn ends.
struct Actions(libc::posix_spawn_file_actions_t);
impl Drop for Actions {
    fn drop(&mut self) {
        // SAFETY: initialised by posix_spawn_file_actions_init before this value was made.
        unsafe { libc::posix_spawn_file_actions_destroy(&raw mut self.0) };
    }
}
struct Attributes(libc::posix_spawnattr_t);
impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: initialised by posix_spawnattr_init before this value was made.
        unsafe { libc::posix_spawnattr_destroy(&raw mut self.0) };
    }
}

fn posix_spawn(
    program: &CString,
    argv: &[CString],
    envp: &[CString],
    cwd: &CString,
    output: libc::c_int,
) -> io::Result<libc::pid_t> {
    let argv = pointers(argv);
    let envp = pointers(envp);
    // SAFETY: every pointer handed to libc points into a CString or vector that outlives the
    // call; the file actions and attributes are initialised before use and destroyed by their
    // guards; the sigsets are initialised by sigemptyset before use.
    unsafe {
        let mut actions = std::mem::zeroed::<libc::posix_spawn_file_actions_t>();
        check(libc::posix_spawn_file_actions_init(&raw mut actions))?;
        let mut actions = Actions(actions);
        let a = &raw mut actions.0;
        check(libc::posix_spawn_file_actions_addopen(
            a,
            0,
            c"/dev/null".as_ptr(),
            libc::O_RDONLY,
            0,
        ))?;
        check(libc::posix_spawn_file_actions_adddup2(a, output, 1))?;
        check(libc::posix_spawn_file_actions_adddup2(a, output, 2))?;
        check(libc::posix_spawn_file_actions_addchdir_np(a, cwd.as_ptr()))?;

        let mut attributes = std::mem::zeroed::<libc::posix_spawnattr_t>();
        check(libc::posix_spawnattr_init(&raw mut attributes))?;
        let mut attributes = Attributes(attributes);
        let t = &raw mut attributes.0;
        check(libc::posix_spawnattr_setpgroup(t, 0))?;
        let mut empty = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&raw mut empty);
        check(libc::posix_spawnattr_setsigmask(t, &raw const empty))?;
        // Rust ignores SIGPIPE in orch; the agent gets the default back, as std gives it.
        let mut default = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&raw mut default);
        libc::sigaddset(&raw mut default, libc::SIGPIPE);
        check(libc::posix_spawnattr_setsigdefault(t, &raw const default))?;
        let flags = libc::POSIX_SPAWN_SETPGROUP
            | libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF;
        // The flags are 2, 4 and 8: they fit a short.
        #[allow(clippy::cast_possible_truncation)]
        check(libc::posix_spawnattr_setflags(t, flags as libc::c_short))?;

        let mut pid: libc::pid_t = 0;
        let spawn = if program.as_bytes().contains(&b'/') {
            libc::posix_spawn
        } else {
            libc::posix_spawnp
        };
        check(spawn(
            &raw mut pid,
            program.as_ptr(),
            a,
            t,
            argv.as_ptr(),
            envp.as_ptr(),
        ))?;
        Ok(pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_string()).collect()
    }

    /// Runs `sh -c script` in `dir` with `env` added and `GIT_DIR` removed; its exit status and
    /// everything it wrote (stdout and stderr both go to the log).
    async fn run(dir: &Path, script: &str, env: &[(String, String)]) -> (ExitStatus, String) {
        let log = dir.join("out.log");
        let out = File::create(&log).expect("log");
        let mut child = spawn(&Spec {
            argv: &argv(&["sh", "-c", script]),
            cwd: dir,
            env,
            env_remove: &["GIT_DIR"],
            output: &out,
        })
        .expect("spawn");
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("the child ended in time")
            .expect("wait");
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
    }

    #[tokio::test]
    async fn a_signal_ends_the_child_with_that_signal_and_sigpipe_is_default_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        // orch ignores SIGPIPE (Rust does); the child must die of it like any program.
        let (status, out) = run(dir.path(), "kill -PIPE $$", &[]).await;
        assert_eq!(status.signal(), Some(libc::SIGPIPE), "{out}");
        let (status, _) = run(dir.path(), "kill -TERM $$", &[]).await;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
    }

    #[tokio::test]
    async fn a_missing_program_is_not_found_and_a_relative_one_is_taken_from_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = File::create(dir.path().join("out.log")).expect("log");
        let spec = |argv| Spec {
            argv,
            cwd: dir.path(),
            env: &[],
            env_remove: &[],
            output: &out,
        };
        let missing = argv(&["no-such-program-orch-test"]);
        let err = spawn(&spec(&missing)).err().expect("not found");
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        let script = dir.path().join("agent.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 7\n").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let relative = argv(&["./agent.sh"]);
        let mut child = spawn(&spec(&relative)).expect("spawn ./agent.sh");
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("in time")
            .expect("wait");
        assert_eq!(status.code(), Some(7));
        // A PATH given to the child is the one its program is looked up on.
        let on_path = argv(&["agent.sh"]);
        let path = [("PATH".to_string(), dir.path().display().to_string())];
        let mut child = spawn(&Spec {
            env: &path,
            ..spec(&on_path)
        })
        .expect("spawn agent.sh on the child's PATH");
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("in time")
            .expect("wait");
        assert_eq!(status.code(), Some(7));
        let nul = argv(&["sh", "-c", "a\0b"]);
        let err = spawn(&spec(&nul)).err().expect("NUL refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }

    #[tokio::test]
    async fn a_cancelled_wait_loses_nothing_and_a_dropped_child_is_reaped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = File::create(dir.path().join("out.log")).expect("log");
        let fifo = dir.path().join("go");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let script = argv(&["sh", "-c", "read x < go; exit 5"]);
        let spec = Spec {
            argv: &script,
            cwd: dir.path(),
            env: &[],
            env_remove: &[],
            output: &out,
        };
        let mut child = spawn(&spec).expect("spawn");
        // The child blocks on the fifo: a wait cut short finds it running.
        let cut = tokio::time::timeout(Duration::from_millis(50), child.wait()).await;
        assert!(cut.is_err(), "the child cannot have ended yet");
        assert!(child.try_wait().expect("try_wait").is_none());
        std::fs::write(&fifo, "go\n").expect("release the child");
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("in time")
            .expect("wait");
        assert_eq!(status.code(), Some(5));
        assert_eq!(
            child.try_wait().expect("again").map(|s| s.code()),
            Some(Some(5))
        );

        // Dropped while running: once it ends, it is reaped (no zombie left behind).
        let child = spawn(&spec).expect("spawn");
        let pid = child.id();
        drop(child);
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
}
