//! `orch up`'s side: one unix socket per attempt, where the attempt's wrapper hands over its
//! namespace's listening sockets; the sockets served ([`super::serve`]); the refusals counted.
//!
//! Which attempt a handover is for is orch's own record: the unix socket was made for that
//! attempt alone, and the process that connects must be the one orch started for it (the pid
//! `spawn` returned) or a descendant of it (`SO_PEERCRED`, then the parents in `/proc`): a
//! process of another attempt, which could reach the socket's path, is refused. What each
//! socket is for is read from the socket itself (its type, its address), never from the sender.

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use tokio::io::{AsyncWriteExt as _, Interest};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::allow::AllowList;
use super::attempt::{AttemptCtx, Refusals};
use super::spec::{PROXY_PORT, SPEC_VAR, Spec};

/// The most sockets of one attempt served (a namespace hands over about 20).
const MAX_SOCKETS: usize = 256;

/// The longest path of a unix socket (`sun_path`, with its NUL).
const SUN_PATH_MAX: usize = 107;

/// The proxy of a run: where the attempts' unix sockets are, and the refusals.
#[derive(Debug)]
pub(crate) struct NetProxy {
    dir: PathBuf,
    next: AtomicU64,
    refusals: Arc<Refusals>,
}

impl NetProxy {
    /// The proxy of a run whose state directory is `state_dir`: its sockets in
    /// `<state_dir>/.net/` (made afresh, readable by the user only), or in a directory of its own
    /// under the temporary directory where that path is too long for a unix socket.
    pub(crate) fn new(state_dir: &Path) -> Result<Arc<Self>, String> {
        let mut dir = crate::state_layout::NET.path(state_dir);
        if dir.join("4294967295.sock").as_os_str().len() > SUN_PATH_MAX {
            dir = std::env::temp_dir().join(format!("orch-net-{}", std::process::id()));
        }
        crate::links::fresh_dir(&dir)
            .and_then(|()| {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            })
            .map_err(|e| format!("cannot make `{}` for the network proxy: {e}", dir.display()))?;
        Ok(Arc::new(Self {
            dir,
            next: AtomicU64::new(0),
            refusals: Arc::new(Refusals::new(Some(
                crate::state_layout::NETWORK_REFUSALS.at(state_dir),
            ))),
        }))
    }

    /// A proxy of one command's own (`orch merge`'s `verify`, a resolver), beside any run's:
    /// its sockets in a directory of its own under the temporary directory (made afresh,
    /// readable by the user only), its refusals in the logs of its attempts only.
    pub(crate) fn private() -> Result<Arc<Self>, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("orch-net-{}-{n}", std::process::id()));
        crate::links::fresh_dir(&dir)
            .and_then(|()| {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            })
            .map_err(|e| format!("cannot make `{}` for the network proxy: {e}", dir.display()))?;
        Ok(Arc::new(Self {
            dir,
            next: AtomicU64::new(0),
            refusals: Arc::new(Refusals::new(None)),
        }))
    }

    /// Makes the unix socket of an attempt (`unit` of `plan`, logging to `log`) that may reach
    /// `allow`, and serves it. Must be called within the tokio runtime.
    pub(crate) fn attempt(
        &self,
        plan: &str,
        unit: &str,
        log: &Path,
        allow: AllowList,
    ) -> Result<NetAttempt, String> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let socket = self.dir.join(format!("{n}.sock"));
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket)
            .map_err(|e| format!("cannot make the proxy's socket `{}`: {e}", socket.display()))?;
        // The proxy's port, moved off an allowed loopback endpoint's.
        let direct = allow.loopback_sockets();
        let mut proxy_port = PROXY_PORT;
        while direct.iter().any(|d| d.port() == proxy_port) {
            proxy_port += 1;
        }
        let ctx = Arc::new(AttemptCtx {
            plan: plan.to_string(),
            unit: unit.to_string(),
            log: log.to_path_buf(),
            allow,
            proxy_port,
            refused: AtomicU64::new(0),
            refusals: self.refusals.clone(),
        });
        let (tx, rx) = oneshot::channel();
        tokio::spawn(serve_attempt(listener, socket.clone(), rx, ctx));
        Ok(NetAttempt {
            spec: Spec::Confined {
                socket,
                proxy_port,
                direct,
            },
            proxy_port: Some(proxy_port),
            started: Some(tx),
        })
    }
}

impl NetProxy {
    /// Where no namespace can be made: the attempt's proxy on the machine's loopback (a port of
    /// its own), which Landlock lets it reach ([`Spec::Ports`] with the allowed loopback
    /// endpoints' ports). Must be called within the tokio runtime.
    pub(crate) fn attempt_ports(
        &self,
        plan: &str,
        unit: &str,
        log: &Path,
        allow: AllowList,
    ) -> Result<NetAttempt, String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("cannot open the proxy's port: {e}"))?;
        let proxy_port = listener
            .local_addr()
            .map_err(|e| format!("cannot open the proxy's port: {e}"))?
            .port();
        let mut ports: Vec<u16> = allow.loopback_sockets().iter().map(|s| s.port()).collect();
        ports.push(proxy_port);
        ports.sort_unstable();
        ports.dedup();
        let ctx = Arc::new(AttemptCtx {
            plan: plan.to_string(),
            unit: unit.to_string(),
            log: log.to_path_buf(),
            allow,
            proxy_port,
            refused: AtomicU64::new(0),
            refusals: self.refusals.clone(),
        });
        let (tx, rx) = oneshot::channel();
        tokio::spawn(serve_port(OwnedFd::from(listener), rx, ctx));
        Ok(NetAttempt {
            spec: Spec::Ports(ports),
            proxy_port: Some(proxy_port),
            started: Some(tx),
        })
    }
}

/// Serves the proxy's port of an attempt without a namespace until its process has ended.
async fn serve_port(fd: OwnedFd, started: oneshot::Receiver<u32>, ctx: Arc<AttemptCtx>) {
    let Ok(pid) = started.await else { return };
    let born = proc_stat(pid).map_or(0, |s| s.start);
    let mut served = JoinSet::new();
    super::serve::socket(fd, ctx.clone(), &mut served);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    while proc_stat(pid).is_some_and(|s| s.state != 'Z' && s.start == born) {
        tick.tick().await;
    }
    served.abort_all();
    ctx.refusals.save();
}

impl Drop for NetProxy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One attempt's network, until its process is started ([`NetAttempt::started`]): dropped
/// before, it is given up (its socket removed).
#[derive(Debug)]
pub(crate) struct NetAttempt {
    spec: Spec,
    /// The port of its proxy on loopback (in its namespace, or on the machine's).
    proxy_port: Option<u16>,
    started: Option<oneshot::Sender<u32>>,
}

impl NetAttempt {
    /// An attempt with no network at all (`network = "none"`): no proxy.
    pub(crate) fn none() -> Self {
        Self {
            spec: Spec::None,
            proxy_port: None,
            started: None,
        }
    }

    /// The variables of the attempt's process: the wrapper's [`SPEC_VAR`], and for a confined
    /// one the proxy variables that clients follow (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
    /// and their lowercase spellings).
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![(SPEC_VAR.to_string(), self.spec.to_var())];
        if let Some(proxy_port) = self.proxy_port {
            let url = format!("http://127.0.0.1:{proxy_port}");
            for var in PROXY_VARS {
                env.push((var.to_string(), url.clone()));
            }
        }
        env
    }

    /// The attempt's process was started as `pid`: its handover is awaited from it (or a
    /// descendant), and its sockets served until it ends.
    pub(crate) fn started(mut self, pid: u32) {
        if let Some(tx) = self.started.take() {
            let _ = tx.send(pid);
        }
    }
}

/// The proxy variables set for a confined agent.
pub(crate) const PROXY_VARS: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Serves the attempt's unix socket: waits for its process, takes the sockets its wrapper
/// hands over, and ends when that process has ended.
async fn serve_attempt(
    listener: UnixListener,
    socket: PathBuf,
    started: oneshot::Receiver<u32>,
    ctx: Arc<AttemptCtx>,
) {
    if let Ok(pid) = started.await {
        let born = proc_stat(pid).map_or(0, |s| s.start);
        let mut served = JoinSet::new();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                conn = listener.accept() => {
                    if let Ok((s, _)) = conn {
                        take_sockets(s, pid, &ctx, &mut served).await;
                    }
                }
                _ = tick.tick() => {
                    if !proc_stat(pid).is_some_and(|s| s.state != 'Z' && s.start == born) {
                        break;
                    }
                }
            }
        }
        served.abort_all();
        ctx.refusals.save();
    }
    drop(listener);
    let _ = std::fs::remove_file(&socket);
}

/// Takes the sockets a process hands over on `s`, if it is the attempt's (`pid`'s or a
/// descendant's), and answers: `ok`, or why not.
async fn take_sockets(
    mut s: UnixStream,
    pid: u32,
    ctx: &Arc<AttemptCtx>,
    served: &mut JoinSet<()>,
) {
    let answer = match receive(&s, pid).await {
        // Bounded: a process of the attempt that hands over sockets without end is refused.
        Ok(fds) if served.len() + fds.len() > MAX_SOCKETS => {
            format!("more than {MAX_SOCKETS} sockets for one attempt\n")
        }
        Ok(fds) => {
            for fd in fds {
                super::serve::socket(fd, ctx.clone(), served);
            }
            "ok\n".to_string()
        }
        Err(e) => format!("{e}\n"),
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), s.write_all(answer.as_bytes())).await;
}

async fn receive(s: &UnixStream, pid: u32) -> Result<Vec<OwnedFd>, String> {
    // Who connected is the kernel's record of the connecting process, taken at `connect`.
    let peer = s
        .peer_cred()
        .ok()
        .and_then(|c| c.pid())
        .and_then(|p| u32::try_from(p).ok())
        .ok_or("the process that connected is not known")?;
    let read = async {
        loop {
            s.readable().await.map_err(|e| e.to_string())?;
            match s.try_io(Interest::READABLE, || recv_fds(s)) {
                Ok(fds) => return Ok(fds),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    let fds = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .map_err(|_| "no sockets came".to_string())??;
    // Read first (so that the answer reaches the sender), dropped (closed) unless it is the
    // attempt's process or one of its descendants.
    if !descends(peer, pid) {
        return Err(format!("process {peer} is not one of this attempt"));
    }
    Ok(fds)
}

/// One message's file descriptors (at most 64; more are closed by the kernel).
fn recv_fds(s: &UnixStream) -> std::io::Result<Vec<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(64))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        s,
        &mut [IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = msg {
            fds.extend(received);
        }
    }
    if got.bytes == 0 && fds.is_empty() {
        return Err(std::io::Error::other("the connection closed"));
    }
    Ok(fds)
}

/// A process's state, parent and start time (`/proc/<pid>/stat`).
pub(super) struct ProcStat {
    state: char,
    ppid: u32,
    start: u64,
}

pub(super) fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Whether `pid` is `ancestor` or one of its descendants (its parents, at most 64 up).
fn descends(mut pid: u32, ancestor: u32) -> bool {
    for _ in 0..64 {
        if pid == ancestor {
            return true;
        }
        match proc_stat(pid) {
            Some(s) if s.ppid > 1 => pid = s.ppid,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_descends_from_its_parent_not_from_a_child() {
        let me = std::process::id();
        let parent = proc_stat(me).expect("stat").ppid;
        assert!(descends(me, me));
        assert!(descends(me, parent));
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        assert!(!descends(me, child.id()));
        assert!(descends(child.id(), me));
        let _ = child.kill();
        let _ = child.wait();
    }
}
