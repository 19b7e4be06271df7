//! `orch up`'s side: one unix socket per attempt, where the attempt's wrapper hands over its
//! namespace's listening sockets; the sockets served ([`super::serve`]); the refusals counted.
//!
//! Which attempt a handover is for is orch's own record: the unix socket was made for that
//! attempt alone, and the process that connects must be the one orch started for it (the pid
//! `spawn` returned) or a descendant of it (`SO_PEERCRED`, then the parents in `/proc`): a
//! process of another attempt is refused at once. The sockets are in orch's private root, out of
//! every confined process's sight; an unconfined one that reaches them delays no one. What each
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
use super::spec::{Join, PROXY_PORT, SPEC_VAR, Spec};
use crate::untrusted::procfs::stat_of;

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
    /// The proxy of a run whose state directory is `state_dir`: its sockets in a directory of its
    /// own in orch's private root ([`socket_dir`]), its refusals recorded in the state directory.
    pub(crate) fn new(state_dir: &Path) -> Result<Arc<Self>, String> {
        Ok(Arc::new(Self {
            dir: socket_dir()?,
            next: AtomicU64::new(0),
            refusals: Arc::new(Refusals::new(Some(
                crate::state_layout::NETWORK_REFUSALS.at(state_dir),
            ))),
        }))
    }

    /// A proxy of one command's own (`orch merge`'s `verify`, a resolver), beside any run's:
    /// its sockets in a directory of its own ([`socket_dir`]), its refusals in the logs of its
    /// attempts only.
    pub(crate) fn private() -> Result<Arc<Self>, String> {
        Ok(Arc::new(Self {
            dir: socket_dir()?,
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
                join: None,
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
    let born = stat_of(pid).map_or(0, |s| s.start_time);
    let mut served = JoinSet::new();
    super::serve::socket(fd, ctx.clone(), &mut served);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    while stat_of(pid).is_some_and(|s| s.state != 'Z' && s.start_time == born) {
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

/// A directory of its own (made afresh, mode 0700) for the unix sockets of a proxy, in orch's
/// private root, which every confined process sees empty ([`crate::sandbox::hide_private_root`]:
/// the wrapper hands its sockets over before that step): no confined agent can reach the socket
/// of another attempt, nor its own once its namespace is handed over. Under the temporary
/// directory where the private root's path is too long for a unix socket.
fn socket_dir() -> Result<PathBuf, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "net-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let root = crate::sandbox::private_root();
    crate::sandbox::make_private_root(&root)
        .map_err(|e| format!("cannot make `{}`: {e}", root.display()))?;
    remove_dead(&root);
    let mut dir = root.join(&name);
    if dir.join("4294967295.sock").as_os_str().len() > SUN_PATH_MAX {
        dir = std::env::temp_dir().join(format!("orch-{name}"));
    }
    crate::links::fresh_dir(&dir)
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        })
        .map_err(|e| format!("cannot make `{}` for the network proxy: {e}", dir.display()))?;
    Ok(dir)
}

/// Removes the socket directories of proxies whose process is gone (a run killed with `-9`).
fn remove_dead(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("net-"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && stat_of(pid).is_none() {
            let _ = std::fs::remove_dir_all(e.path());
        }
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

    /// A confined attempt whose sockets its wrapper opens in the existing namespace `join` (its
    /// place's) rather than in one it makes; an error for any other network.
    pub(crate) fn joining(mut self, join: Join) -> Result<Self, String> {
        match &mut self.spec {
            Spec::Confined { join: j, .. } => {
                *j = Some(join);
                Ok(self)
            }
            _ => Err("only a confined network can be served in its place's namespace".into()),
        }
    }

    /// The variables of the attempt's process: the wrapper's [`SPEC_VAR`], and for a confined
    /// one the proxy variables that clients follow (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
    /// and their lowercase spellings).
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        let shared = if matches!(self.spec, Spec::Ports(_)) {
            "1"
        } else {
            ""
        };
        let mut env = vec![
            (SPEC_VAR.to_string(), self.spec.to_var()),
            (super::spec::SHARED_VAR.to_string(), shared.to_string()),
        ];
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
///
/// No connection holds another: a process that is not of the attempt is refused at `accept`
/// (the kernel's record of who connected), before anything is read from it; each connection of
/// the attempt is served by a task of its own, with a deadline, at most [`MAX_HANDSHAKES`] at
/// once (more are closed). A silent or slow peer delays no other, and strangers, however many,
/// never take the place of the attempt's own connection.
async fn serve_attempt(
    listener: UnixListener,
    socket: PathBuf,
    started: oneshot::Receiver<u32>,
    ctx: Arc<AttemptCtx>,
) {
    if let Ok(pid) = started.await {
        let born = stat_of(pid).map_or(0, |s| s.start_time);
        let mut served = JoinSet::new();
        let mut handshakes: JoinSet<Option<Vec<OwnedFd>>> = JoinSet::new();
        let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                conn = listener.accept() => {
                    let Ok((s, _)) = conn else { continue };
                    while handshakes.try_join_next().is_some() {}
                    if let Some(s) = of_attempt(s, pid)
                        && handshakes.len() < MAX_HANDSHAKES
                    {
                        handshakes.spawn(take_sockets(s, taken.clone()));
                    }
                }
                Some(Ok(Some(fds))) = handshakes.join_next(), if !handshakes.is_empty() => {
                    for fd in fds {
                        super::serve::socket(fd, ctx.clone(), &mut served);
                    }
                }
                _ = tick.tick() => {
                    if !stat_of(pid).is_some_and(|s| s.state != 'Z' && s.start_time == born) {
                        break;
                    }
                }
            }
        }
        handshakes.abort_all();
        served.abort_all();
        ctx.refusals.save();
    }
    drop(listener);
    let _ = std::fs::remove_file(&socket);
}

/// The most connections of the attempt's own handing over at once.
const MAX_HANDSHAKES: usize = 8;

/// How long a connection of the attempt has to hand its sockets over.
const HANDSHAKE_WAIT: Duration = Duration::from_secs(5);

/// `s` when the process that connected is the attempt's (`pid`'s or a descendant's); else it is
/// answered at once (without waiting: a stranger that does not read loses the answer) and closed.
fn of_attempt(s: UnixStream, pid: u32) -> Option<UnixStream> {
    // Who connected is the kernel's record of the connecting process, taken at `connect`.
    let peer = s
        .peer_cred()
        .ok()
        .and_then(|c| c.pid())
        .and_then(|p| u32::try_from(p).ok());
    match peer {
        Some(peer) if descends(peer, pid) => Some(s),
        Some(peer) => {
            let _ = s.try_write(format!("process {peer} is not one of this attempt\n").as_bytes());
            None
        }
        None => {
            let _ = s.try_write(b"the process that connected is not known\n");
            None
        }
    }
}

/// Takes the sockets the attempt's process hands over on `s` and answers: `ok`, or why not. At
/// most [`MAX_SOCKETS`] in all (`taken`): a process of the attempt that hands over sockets
/// without end is refused.
async fn take_sockets(
    mut s: UnixStream,
    taken: Arc<std::sync::atomic::AtomicUsize>,
) -> Option<Vec<OwnedFd>> {
    let (answer, fds) = match receive(&s).await {
        Ok(fds) => {
            let before = taken.fetch_add(fds.len(), Ordering::SeqCst);
            if before + fds.len() > MAX_SOCKETS {
                taken.fetch_sub(fds.len(), Ordering::SeqCst);
                (
                    format!("more than {MAX_SOCKETS} sockets for one attempt\n"),
                    None,
                )
            } else {
                ("ok\n".to_string(), Some(fds))
            }
        }
        Err(e) => (format!("{e}\n"), None),
    };
    let _ = tokio::time::timeout(HANDSHAKE_WAIT, s.write_all(answer.as_bytes())).await;
    fds
}

async fn receive(s: &UnixStream) -> Result<Vec<OwnedFd>, String> {
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
    tokio::time::timeout(HANDSHAKE_WAIT, read)
        .await
        .map_err(|_| "no sockets came".to_string())?
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

/// Whether `pid` is `ancestor` or one of its descendants (its parents, at most 64 up).
fn descends(mut pid: u32, ancestor: u32) -> bool {
    for _ in 0..64 {
        if pid == ancestor {
            return true;
        }
        match stat_of(pid) {
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
    fn strangers_connections_delay_no_attempts_handover() {
        use std::io::Write as _;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let dir = tempfile::tempdir().expect("tmp");
            let socket = dir.path().join("0.sock");
            let listener = UnixListener::bind(&socket).expect("bind");
            // Strangers first, queued before the attempt's own connection: this process (not
            // of the attempt), 40 silent connections and 40 that send junk.
            let mut strangers = Vec::new();
            for i in 0..80 {
                let mut s = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
                if i % 2 == 1 {
                    let _ = s.write_all(b"\x00junk\xff\n");
                }
                strangers.push(s);
            }
            // The attempt's process: hands over a TCP listener, prints the answer.
            let script = "import socket, sys\n\
                l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen()\n\
                s = socket.socket(socket.AF_UNIX); s.settimeout(25); s.connect(sys.argv[1])\n\
                socket.send_fds(s, [b'\\x01'], [l.fileno()])\n\
                print(s.recv(100).decode().strip())\n";
            let child = tokio::process::Command::new("python3")
                .args(["-c", script])
                .arg(&socket)
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("python3");
            let pid = child.id().expect("pid");
            let ctx = Arc::new(AttemptCtx {
                plan: "p".into(),
                unit: "1.1".into(),
                log: dir.path().join("log"),
                allow: AllowList::default(),
                proxy_port: PROXY_PORT,
                refused: AtomicU64::new(0),
                refusals: Arc::new(Refusals::new(None)),
            });
            let (tx, rx) = oneshot::channel();
            tokio::spawn(serve_attempt(listener, socket.clone(), rx, ctx));
            let began = std::time::Instant::now();
            tx.send(pid).expect("started");
            let out = tokio::time::timeout(Duration::from_secs(40), child.wait_with_output())
                .await
                .expect("the attempt's process ended")
                .expect("output");
            let took = began.elapsed();
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "{out:?}");
            assert!(took < Duration::from_secs(3), "the handover took {took:?}");
            drop(strangers);
        });
    }

    #[test]
    fn this_process_descends_from_its_parent_not_from_a_child() {
        let me = std::process::id();
        let parent = stat_of(me).expect("stat").ppid;
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
