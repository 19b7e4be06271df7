//! The wrapper's side: the namespace made, its sockets handed to `orch up`.

use std::io::{BufRead as _, BufReader, IoSlice};
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::fd::{AsFd as _, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use rustix::net::{
    AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

use super::netlink::Netlink;
use super::spec::{Join, SPEC_VAR, Spec};

/// The ports where a direct TCP connection to any address is caught in the namespace (logged,
/// then refused): those of the protocols that carry data away (SSH, mail, DNS, HTTP, HTTPS,
/// DNS over TLS, IMAP, POP). Privileged, so that no agent that is not root needs them for its
/// own servers. A connection to any other port finds nothing and is refused by the kernel.
pub(super) const CATCH_TCP: [u16; 14] = [
    21, 22, 23, 25, 53, 80, 110, 143, 443, 465, 587, 853, 993, 995,
];

/// How long the wrapper waits for `orch up` to take its sockets.
const HANDOVER_WAIT: Duration = Duration::from_secs(20);

/// How long the wrapper waits for a joined namespace's ports to be free: the previous attempt's
/// sockets there are closed by `orch up` once it sees that attempt ended (within a quarter of a
/// second).
const PORTS_WAIT: Duration = Duration::from_secs(5);

/// Enters the namespace [`SPEC_VAR`] asks for, if any (the per-attempt wrapper, before it
/// confines itself with Landlock and becomes the agent). An error runs nothing: the wrapper
/// exits 1 with it.
pub(crate) fn enter_from_env() -> Result<(), String> {
    let Some(v) = std::env::var_os(SPEC_VAR) else {
        return Ok(());
    };
    let Some(spec) = Spec::from_var(&v.to_string_lossy())? else {
        return Ok(());
    };
    enter(&spec).map_err(|e| format!("cannot confine the network: {e}"))
}

fn enter(spec: &Spec) -> Result<(), String> {
    if let Spec::Ports(ports) = spec {
        // As root the capabilities must go (nothing else stands between root and the network
        // here); another user has none to drop.
        drop_capabilities(nix::unistd::geteuid().is_root())?;
        only_tcp_and_udp()?;
        return limit_ports(ports);
    }
    if let Spec::Confined {
        socket,
        proxy_port,
        direct,
        join: Some(join),
    } = spec
    {
        joined(*join, socket, *proxy_port, direct)?;
        return no_vsock();
    }
    let plain = namespace()?;
    let mut nl = Netlink::open()?;
    nl.lo_up()?;
    nl.all_local(false)?;
    // IPv6 may be off in this kernel: there is then no IPv6 to leave by either.
    let v6 = nl.all_local(true).is_ok();
    drop(nl);
    if let Spec::Confined {
        socket,
        proxy_port,
        direct,
        ..
    } = spec
    {
        let sockets = open_sockets(*proxy_port, direct, v6).map_err(|e| e.to_string())?;
        hand_over(socket, &sockets)?;
    }
    drop_capabilities(plain)?;
    no_vsock()
}

/// No `AF_VSOCK` socket (red team 14: an agent of `network = "none"` made one; a network
/// namespace does not hold it, it reaches the hypervisor's host): refused (`EACCES`) by a
/// seccomp filter on this process and what it starts, whatever its network.
fn no_vsock() -> Result<(), String> {
    use seccompiler::{SeccompAction, SeccompFilter};
    fn why(e: impl std::fmt::Display) -> String {
        format!("cannot refuse vsock sockets (seccomp): {e}")
    }
    let filter = SeccompFilter::new(
        [(nix::libc::SYS_socket, vec![vsock_rule().map_err(why)?])]
            .into_iter()
            .collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(u32::try_from(nix::libc::EACCES).map_err(|e| e.to_string())?),
        std::env::consts::ARCH.try_into().map_err(why)?,
    )
    .map_err(why)?;
    let program: seccompiler::BpfProgram = filter.try_into().map_err(why)?;
    seccompiler::apply_filter_all_threads(&program).map_err(why)
}

/// `socket(AF_VSOCK, …)`.
fn vsock_rule() -> Result<seccompiler::SeccompRule, String> {
    use seccompiler::{SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as Cond};
    let vsock = u64::try_from(nix::libc::AF_VSOCK).map_err(|e| e.to_string())?;
    seccompiler::SeccompRule::new(vec![
        Cond::new(0, Len::Dword, Op::Eq, vsock).map_err(|e| e.to_string())?,
    ])
    .map_err(|e| e.to_string())
}

/// The attempt's sockets opened in the existing namespace `join` (a container's, which the
/// attempt's process enters by its own way: `podman exec`) and handed to `orch up`; then this
/// process is back in its own namespace, which the process it starts (podman's client) keeps.
/// Its capabilities are not dropped: that client needs them, and the attempt's process inside
/// has only what its place gives it (a container's, without `CAP_SYS_ADMIN` nor
/// `CAP_NET_ADMIN`). Needs root (`setns` into another process's namespace).
fn joined(join: Join, socket: &Path, proxy_port: u16, direct: &[SocketAddr]) -> Result<(), String> {
    use nix::sched::{CloneFlags, setns};
    use rustix::fs::{Mode, OFlags};
    // Opened, not read: a namespace's handle for `setns`.
    let handle = |path: &str| {
        rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| format!("cannot open the network namespace `{path}`: {e}"))
    };
    let own = handle("/proc/self/ns/net")?;
    let path = format!("/proc/{}/ns/net", join.pid);
    let target = handle(&path)?;
    let inode = rustix::fs::fstat(&target)
        .map_err(|e| e.to_string())?
        .st_ino;
    if inode != join.inode {
        return Err(format!(
            "`{path}` is not the namespace orch recorded (inode {inode}, not {}): its place is gone",
            join.inode
        ));
    }
    setns(&target, CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("cannot join the network namespace `{path}`: {e}"))?;
    let done = (|| {
        let mut nl = Netlink::open()?;
        nl.lo_up()?;
        nl.all_local(false)?;
        let v6 = nl.all_local(true).is_ok();
        drop(nl);
        let began = std::time::Instant::now();
        let sockets = loop {
            match open_sockets(proxy_port, direct, v6) {
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse
                        && began.elapsed() < PORTS_WAIT =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => break other.map_err(|e| e.to_string())?,
            }
        };
        hand_over(socket, &sockets)
    })();
    setns(&own, CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("cannot go back to this process's network namespace: {e}"))?;
    done
}

/// Makes the current process's network namespace: a network namespace alone where this
/// process may (root), else a user namespace mapping its own uid and gid with one in it.
/// Returns whether it is a network namespace alone.
fn namespace() -> Result<bool, String> {
    use nix::sched::{CloneFlags, unshare};
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    if uid.is_root() && unshare(CloneFlags::CLONE_NEWNET).is_ok() {
        return Ok(true);
    }
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("cannot make a network namespace (unshare): {e}"))?;
    super::super::private::map_own_ids(uid, gid)?;
    Ok(false)
}

/// The namespace's listening sockets, for `orch up` to serve.
fn open_sockets(proxy_port: u16, direct: &[SocketAddr], v6: bool) -> std::io::Result<Vec<OwnedFd>> {
    let mut out: Vec<OwnedFd> = Vec::new();
    let tcp = |addr: SocketAddr| {
        TcpListener::bind(addr).map(OwnedFd::from).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on {addr} in the namespace: {e}"),
            )
        })
    };
    out.push(tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, proxy_port)))?);
    if v6 {
        out.push(tcp(SocketAddr::from((Ipv6Addr::LOCALHOST, proxy_port)))?);
    }
    for a in direct.iter().filter(|a| v6 || a.is_ipv4()) {
        out.push(tcp(*a)?);
    }
    let taken: Vec<u16> = direct
        .iter()
        .map(SocketAddr::port)
        .chain([proxy_port])
        .collect();
    // The catch-alls: on every address (dual-stack where there is IPv6).
    let any = if v6 {
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
    };
    for port in CATCH_TCP.iter().filter(|p| !taken.contains(p)) {
        let mut a = any;
        a.set_port(*port);
        out.push(tcp(a)?);
    }
    out.push(udp(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 53)))?);
    if v6 {
        out.push(udp(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 53)))?);
    }
    // Watchers (raw sockets read by orch, which send nothing): the kernel's refusals of a
    // connection to a port where nothing listens (a TCP reset, an ICMP port unreachable), so
    // that orch logs those too. Best-effort: without them such a refusal is only not logged.
    let mut watchers = vec![
        (AddressFamily::INET, rustix::net::ipproto::TCP),
        (AddressFamily::INET, rustix::net::ipproto::ICMP),
    ];
    if v6 {
        watchers.push((AddressFamily::INET6, rustix::net::ipproto::TCP));
        watchers.push((AddressFamily::INET6, rustix::net::ipproto::ICMPV6));
    }
    for (family, proto) in watchers {
        if let Ok(fd) =
            rustix::net::socket_with(family, SocketType::RAW, SocketFlags::CLOEXEC, Some(proto))
        {
            out.push(fd);
        }
    }
    Ok(out)
}

/// A UDP socket bound to `addr` (IPv6 only for an IPv6 address: the IPv4 one has its own).
fn udp(addr: SocketAddr) -> std::io::Result<OwnedFd> {
    let why = |e: rustix::io::Errno| {
        let e = std::io::Error::from(e);
        std::io::Error::new(
            e.kind(),
            format!("cannot bind UDP {addr} in the namespace: {e}"),
        )
    };
    let family = if addr.is_ipv6() {
        AddressFamily::INET6
    } else {
        AddressFamily::INET
    };
    let fd = rustix::net::socket_with(family, SocketType::DGRAM, SocketFlags::CLOEXEC, None)
        .map_err(why)?;
    if addr.is_ipv6() {
        rustix::net::sockopt::set_ipv6_v6only(&fd, true).map_err(why)?;
    }
    rustix::net::bind(&fd, &addr).map_err(why)?;
    Ok(fd)
}

/// Sends `sockets` to `orch up` through `socket` and waits for its answer.
fn hand_over(socket: &Path, sockets: &[OwnedFd]) -> Result<(), String> {
    let stream = UnixStream::connect(socket)
        .map_err(|e| format!("cannot reach orch's proxy at `{}`: {e}", socket.display()))?;
    let fds: Vec<BorrowedFd<'_>> = sockets.iter().map(|s| s.as_fd()).collect();
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err("too many sockets to hand over".into());
    }
    let count = u8::try_from(fds.len()).unwrap_or(u8::MAX);
    rustix::net::sendmsg(
        &stream,
        &[IoSlice::new(&[count])],
        &mut control,
        SendFlags::empty(),
    )
    .map_err(|e| format!("cannot hand the namespace's sockets to orch: {e}"))?;
    stream
        .set_read_timeout(Some(HANDOVER_WAIT))
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .take_line(&mut answer)
        .map_err(|e| format!("orch's proxy did not answer: {e}"))?;
    match answer.trim_end() {
        "ok" => Ok(()),
        "" => Err("orch's proxy did not take the namespace's sockets".into()),
        other => Err(format!(
            "orch's proxy refused them: {}",
            other.escape_debug()
        )),
    }
}

/// One line, at most 512 bytes.
trait TakeLine {
    fn take_line(self, out: &mut String) -> std::io::Result<usize>;
}

impl<R: std::io::Read> TakeLine for BufReader<R> {
    fn take_line(self, out: &mut String) -> std::io::Result<usize> {
        use std::io::Read as _;
        self.take(512).read_line(out)
    }
}

/// The capabilities that could leave the namespace or reach around it, dropped from the
/// bounding set (and the inheritable one), so that the agent does not get them back when it
/// runs a program as root: `CAP_SYS_ADMIN` (`setns` into another namespace), `CAP_NET_ADMIN`
/// (the namespace's routes and interfaces), `CAP_NET_RAW` (raw sockets), `CAP_SYS_PTRACE`,
/// `CAP_SYS_MODULE`, `CAP_BPF`. Required where the namespace is a network namespace alone
/// (`plain`: root); in a user namespace the agent has no capability outside it, and none in it
/// once it runs a program as a user that is not root.
fn drop_capabilities(plain: bool) -> Result<(), String> {
    use rustix::thread::CapabilitySet as C;
    let caps = [
        ("CAP_SYS_ADMIN", C::SYS_ADMIN),
        ("CAP_NET_ADMIN", C::NET_ADMIN),
        ("CAP_NET_RAW", C::NET_RAW),
        ("CAP_SYS_PTRACE", C::SYS_PTRACE),
        ("CAP_SYS_MODULE", C::SYS_MODULE),
        ("CAP_BPF", C::BPF),
    ];
    let mut failed = None;
    let mut all = C::empty();
    for (name, c) in caps {
        all |= c;
        if let Err(e) = rustix::thread::remove_capability_from_bounding_set(c) {
            // A kernel that does not know `CAP_BPF` (before 5.8) has nothing to drop there.
            if c != C::BPF {
                failed = Some(format!("cannot drop {name} from the bounding set: {e}"));
            }
        }
    }
    if let Ok(mut sets) = rustix::thread::capabilities(None) {
        sets.inheritable.remove(all);
        let _ = rustix::thread::set_capabilities(None, sets);
    }
    match failed {
        Some(e) if plain => Err(e),
        _ => Ok(()),
    }
}

/// The names of `agent_env::ORCH_PORT` and `agent_env::ORCH_PORTS` (a layer above this one).
pub(crate) const PORT_VAR: &str = "ORCH_PORT";
pub(crate) const PORTS_VAR: &str = "ORCH_PORTS";

/// The ports a process in this machine's own network namespace may bind: port 0 (one the kernel
/// picks) and its worktree's block, `ORCH_PORT` and the `ORCH_PORTS` after it, as `orch up` set
/// them for it (its environment before the agent runs).
pub(crate) fn own_binds() -> Vec<u16> {
    let var = |k: &str| std::env::var(k).ok();
    let mut ports = vec![0];
    if let Some(first) = var(PORT_VAR).and_then(|p| p.parse::<u16>().ok()) {
        let n = var(PORTS_VAR)
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(1)
            .clamp(1, 1000);
        ports.extend((0..n).filter_map(|i| first.checked_add(i)));
    }
    ports
}

/// In this machine's own network, sockets Landlock's TCP rules do not judge are refused
/// (`EACCES`), by a seccomp filter on this process and what it starts: an IPv4 or IPv6 socket of
/// a protocol other than TCP and UDP (MPTCP, SCTP, …) or of a type other than a stream or a
/// datagram (red team 12: an MPTCP socket bound the collector's port and connected to a port
/// not allowed, past Landlock), io_uring (its sockets are made without the `socket` call), and
/// TCP Fast Open (a connection made by a send, which Landlock does not judge: red team 14).
/// A filter of another architecture's calls kills the process.
pub(crate) fn only_tcp_and_udp() -> Result<(), String> {
    use nix::libc;
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as Cond,
        SeccompFilter, SeccompRule,
    };
    fn why(e: impl std::fmt::Display) -> String {
        format!("cannot limit the sockets (seccomp): {e}")
    }
    let cond = |arg: u8, op: Op, v: u64| Cond::new(arg, Len::Dword, op, v).map_err(why);
    let mut rules = Vec::new();
    for domain in [libc::AF_INET, libc::AF_INET6] {
        let d = u64::try_from(domain).map_err(|e| e.to_string())?;
        // Protocols other than 0 (the type's own), TCP (6) and UDP (17).
        for (above, below) in [(0, 6), (6, 17), (17, u64::from(u32::MAX))] {
            let mut c = vec![cond(0, Op::Eq, d)?, cond(2, Op::Gt, above)?];
            if below != u64::from(u32::MAX) {
                c.push(cond(2, Op::Lt, below)?);
            }
            rules.push(SeccompRule::new(c).map_err(why)?);
        }
        // Types other than a stream (1) and a datagram (2): raw, RDM, sequenced packets (SCTP
        // by default), DCCP, packet.
        for kind in [3u64, 4, 5, 6, 10] {
            rules.push(
                SeccompRule::new(vec![cond(0, Op::Eq, d)?, cond(1, Op::MaskedEq(0xf), kind)?])
                    .map_err(why)?,
            );
        }
    }
    // TCP Fast Open: a `sendto`, `sendmsg` or `sendmmsg` with `MSG_FASTOPEN` connects without
    // the `connect` Landlock judges (red team 14: a "ports only" agent reached a port it was
    // refused); `TCP_FASTOPEN_CONNECT` asked for with `setsockopt`, refused with it.
    let fastopen = u64::try_from(libc::MSG_FASTOPEN).map_err(|e| e.to_string())?;
    let flag = |arg: u8| -> Result<Vec<SeccompRule>, String> {
        Ok(vec![
            SeccompRule::new(vec![cond(arg, Op::MaskedEq(fastopen), fastopen)?]).map_err(why)?,
        ])
    };
    let tcp_option = vec![
        SeccompRule::new(vec![
            cond(
                1,
                Op::Eq,
                u64::try_from(libc::IPPROTO_TCP).map_err(|e| e.to_string())?,
            )?,
            cond(
                2,
                Op::Eq,
                u64::try_from(libc::TCP_FASTOPEN_CONNECT).map_err(|e| e.to_string())?,
            )?,
        ])
        .map_err(why)?,
    ];
    rules.push(vsock_rule()?);
    let filter = SeccompFilter::new(
        [
            (libc::SYS_socket, rules),
            (libc::SYS_io_uring_setup, Vec::new()),
            (libc::SYS_sendto, flag(3)?),
            (libc::SYS_sendmsg, flag(2)?),
            (libc::SYS_sendmmsg, flag(3)?),
            (libc::SYS_setsockopt, tcp_option),
        ]
        .into_iter()
        .collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(u32::try_from(libc::EACCES).map_err(|e| e.to_string())?),
        std::env::consts::ARCH.try_into().map_err(why)?,
    )
    .map_err(why)?;
    let program: seccompiler::BpfProgram = filter.try_into().map_err(why)?;
    seccompiler::apply_filter_all_threads(&program).map_err(why)
}

/// Where no namespace can be made: Landlock's TCP rules (ABI 4, Linux 6.7) let the process
/// connect only to `ports` (on any address: they are orch's proxy's and the allowed loopback
/// endpoints'), bind only its own ports ([`own_binds`]: it shares this machine's network, where
/// orch and other plans connect), and, where the kernel has UDP rules (ABI 10), send no UDP at
/// all. A ruleset of its own, stacked under the file rules `orch sandbox-exec` applies next.
fn limit_ports(ports: &[u16]) -> Result<(), String> {
    use landlock::{
        AccessNet, CompatLevel, Compatible as _, NetPort, Ruleset, RulesetAttr as _,
        RulesetCreatedAttr as _, RulesetStatus,
    };
    let why = |e: landlock::RulesetError| format!("cannot limit the ports (Landlock): {e}");
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessNet::ConnectTcp | AccessNet::BindTcp)
        .map_err(why)?
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessNet::ConnectSendUdp)
        .map_err(why)?
        .create()
        .map_err(why)?
        .add_rules(
            ports
                .iter()
                .map(|p| Ok::<_, landlock::RulesetError>(NetPort::new(*p, AccessNet::ConnectTcp))),
        )
        .map_err(why)?
        .add_rules(
            own_binds()
                .into_iter()
                .map(|p| Ok::<_, landlock::RulesetError>(NetPort::new(p, AccessNet::BindTcp))),
        )
        .map_err(why)?
        .restrict_self()
        .map_err(why)?;
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err("cannot limit the ports: this kernel does not enforce Landlock".into());
    }
    Ok(())
}

/// Whether this machine can make the namespace (`network = "none"`'s: the same calls as
/// `"confined"`'s, without the proxy): runs `orch session-exec` once with it. The error says
/// why not.
pub(crate) fn probe(orch_bin: &Path) -> Result<(), String> {
    let out = std::process::Command::new(orch_bin)
        .args(["session-exec", "--"])
        .arg(orch_bin)
        .arg("--version")
        .env(SPEC_VAR, Spec::None.to_var())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", orch_bin.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("it failed")
        .trim_start_matches("error: ")
        .to_string();
    Err(line)
}
