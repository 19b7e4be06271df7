//! The namespace's sockets, served by `orch up`: what each is for is read from the socket
//! itself (its type and its own address, kernel records), and each connection is joined to
//! where it may go or refused.

use std::io::{IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd as _, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use rustix::net::{AddressFamily, SocketType};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::attempt::AttemptCtx;

/// How long a connection to an allowed loopback endpoint may take.
const CONNECT_WAIT: Duration = Duration::from_secs(15);

/// The most connections of one socket of an attempt served at once.
const MAX_CONNECTIONS: usize = 512;

/// What a listening socket of the namespace is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// The proxy (`127.0.0.1:3128`, `[::1]:3128`).
    Proxy,
    /// An allowed loopback endpoint, joined to the same address and port outside.
    Direct(SocketAddr),
    /// Anything else: a catch-all; its connections are refused.
    Catch,
}

/// Serves `fd`, a socket handed over by the attempt of `ctx` (ignored unless it is a listening
/// TCP socket or a UDP socket of IPv4 or IPv6).
pub(super) fn socket(fd: OwnedFd, ctx: Arc<AttemptCtx>, served: &mut JoinSet<()>) {
    use rustix::net::sockopt;
    let family = sockopt::socket_domain(&fd);
    if !matches!(family, Ok(AddressFamily::INET | AddressFamily::INET6)) {
        return;
    }
    match sockopt::socket_type(&fd) {
        Ok(SocketType::STREAM) if sockopt::socket_acceptconn(&fd).unwrap_or(false) => {
            let std = std::net::TcpListener::from(fd);
            let Ok(local) = std.local_addr() else { return };
            let role = if local.port() == ctx.proxy_port && local.ip().is_loopback() {
                Role::Proxy
            } else if ctx.allow.loopback_sockets().contains(&local) {
                Role::Direct(local)
            } else {
                Role::Catch
            };
            let listener = std
                .set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(std));
            if let Ok(l) = listener {
                served.spawn(accept(l, role, ctx));
            }
        }
        Ok(SocketType::DGRAM) => {
            served.spawn(dns(fd, ctx));
        }
        Ok(SocketType::RAW) => {
            served.spawn(watch(fd, ctx));
        }
        _ => {}
    }
}

/// Accepts on `l` until the attempt ends (its connections end with it).
async fn accept(l: TcpListener, role: Role, ctx: Arc<AttemptCtx>) {
    let mut conns = JoinSet::new();
    loop {
        let Ok((conn, _)) = l.accept().await else {
            continue;
        };
        // Bytes are passed on as they come: no Nagle delay on top of the client's own.
        let _ = conn.set_nodelay(true);
        while conns.try_join_next().is_some() {}
        // Bounded: an agent that opens connections without end gets the oldest ones only.
        if conns.len() >= MAX_CONNECTIONS {
            continue;
        }
        let ctx = ctx.clone();
        conns.spawn(async move {
            match role {
                Role::Proxy => super::requests::serve(conn, &ctx).await,
                Role::Direct(to) => direct(conn, to).await,
                Role::Catch => {
                    let dest = conn.local_addr().map_or_else(|_| "?".into(), shown);
                    ctx.refuse(
                        &dest,
                        "a direct connection: only orch's proxy and the allowed loopback endpoints are reachable",
                    );
                }
            }
        });
    }
}

/// `addr` as a user reads it (an IPv4 address mapped into IPv6 as IPv4).
fn shown(addr: SocketAddr) -> String {
    SocketAddr::new(addr.ip().to_canonical(), addr.port()).to_string()
}

/// A connection to an allowed loopback endpoint, joined to it outside.
async fn direct(mut conn: TcpStream, to: SocketAddr) {
    if let Ok(Ok(mut up)) = tokio::time::timeout(CONNECT_WAIT, TcpStream::connect(to)).await {
        let _ = up.set_nodelay(true);
        let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
    }
}

/// The namespace's DNS socket: every query refused at once, logged with its name.
async fn dns(fd: OwnedFd, ctx: Arc<AttemptCtx>) {
    use nix::sys::socket::{setsockopt, sockopt};
    let v6 = rustix::net::sockopt::socket_domain(&fd).is_ok_and(|d| d == AddressFamily::INET6);
    let opt = if v6 {
        setsockopt(&fd, sockopt::Ipv6RecvPacketInfo, &true)
    } else {
        setsockopt(&fd, sockopt::Ipv4PacketInfo, &true)
    };
    if opt.is_err() {
        return;
    }
    let std = std::net::UdpSocket::from(fd);
    if std.set_nonblocking(true).is_err() {
        return;
    }
    let Ok(sock) = tokio::net::UdpSocket::from_std(std) else {
        return;
    };
    loop {
        if sock.readable().await.is_err() {
            return;
        }
        let got = sock.try_io(tokio::io::Interest::READABLE, || {
            recv_query(sock.as_raw_fd())
        });
        let Ok((query, from, to)) = got else { continue };
        let Some(name) = super::dns::query_name(&query) else {
            continue;
        };
        ctx.refuse(
            &name,
            &format!(
                "a DNS query over UDP to {}: names are resolved by orch's proxy only",
                shown(SocketAddr::new(to, 53))
            ),
        );
        if let Some(reply) = super::dns::refused(&query) {
            let _ = send_reply(sock.as_raw_fd(), &reply, from, to);
        }
    }
}

/// One datagram: its bytes, its sender and the address it was sent to.
fn recv_query(fd: RawFd) -> std::io::Result<(Vec<u8>, SocketAddr, IpAddr)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
    let mut buf = vec![0u8; 1500];
    let mut cmsg = nix::cmsg_space!(nix::libc::in6_pktinfo);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let r = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())
        .map_err(std::io::Error::from)?;
    let n = r.bytes;
    let from = r
        .address
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::from((v4.ip(), v4.port())))
                .or_else(|| {
                    a.as_sockaddr_in6()
                        .map(|v6| SocketAddr::from((v6.ip(), v6.port())))
                })
        })
        .ok_or_else(|| std::io::Error::other("no sender"))?;
    let mut to = None;
    for c in r.cmsgs().map_err(std::io::Error::from)? {
        match c {
            ControlMessageOwned::Ipv4PacketInfo(i) => {
                to = Some(IpAddr::from(u32::from_be(i.ipi_addr.s_addr).to_be_bytes()));
            }
            ControlMessageOwned::Ipv6PacketInfo(i) => to = Some(IpAddr::from(i.ipi6_addr.s6_addr)),
            _ => {}
        }
    }
    buf.truncate(n);
    Ok((
        buf,
        from,
        to.ok_or_else(|| std::io::Error::other("no destination"))?,
    ))
}

/// The answer, sent from the address the query went to.
fn send_reply(fd: RawFd, reply: &[u8], to: SocketAddr, from: IpAddr) -> std::io::Result<()> {
    use nix::libc;
    use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg};
    let iov = [IoSlice::new(reply)];
    let dest = SockaddrStorage::from(to);
    let sent = match from {
        IpAddr::V4(a) => {
            let info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            sendmsg(
                fd,
                &iov,
                &[ControlMessage::Ipv4PacketInfo(&info)],
                MsgFlags::empty(),
                Some(&dest),
            )
        }
        IpAddr::V6(a) => {
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                ipi6_ifindex: 0,
            };
            sendmsg(
                fd,
                &iov,
                &[ControlMessage::Ipv6PacketInfo(&info)],
                MsgFlags::empty(),
                Some(&dest),
            )
        }
    };
    sent.map(|_| ()).map_err(std::io::Error::from)
}

/// A watcher of the namespace (a raw socket for TCP or ICMP, IPv4 or IPv6): every reset the
/// kernel answers a connection with (nothing listens at its destination) and every ICMP "port
/// unreachable" (a UDP datagram to a port where nothing listens) is logged as a refusal with its
/// destination. Nothing is sent on it.
async fn watch(fd: OwnedFd, ctx: Arc<AttemptCtx>) {
    use rustix::net::sockopt;
    let v6 = sockopt::socket_domain(&fd).is_ok_and(|d| d == AddressFamily::INET6);
    let Ok(Some(proto)) = sockopt::socket_protocol(&fd) else {
        return;
    };
    let tcp = proto == rustix::net::ipproto::TCP;
    let std = std::net::UdpSocket::from(fd);
    if std.set_nonblocking(true).is_err() {
        return;
    }
    let Ok(sock) = tokio::net::UdpSocket::from_std(std) else {
        return;
    };
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            return;
        };
        let packet = &buf[..n];
        let refused = match (tcp, v6) {
            (true, false) => tcp_reset_v4(packet),
            (true, true) => tcp_reset(packet).map(|port| SocketAddr::new(from.ip(), port)),
            (false, false) => udp_unreachable_v4(packet),
            (false, true) => udp_unreachable_v6(packet),
        };
        if let Some(dest) = refused {
            let how = if tcp {
                "a connection to a port where nothing listens in the namespace: the machine's own services are reachable only when allowed"
            } else {
                "UDP to a port where nothing listens in the namespace"
            };
            ctx.refuse(&shown(dest), how);
        }
    }
}

/// The source port of a TCP reset that answers a connection attempt (`RST` and `ACK`, sequence
/// number 0): the port the connection was refused at.
fn tcp_reset(tcp: &[u8]) -> Option<u16> {
    let flags = *tcp.get(13)?;
    let seq = tcp.get(4..8)?;
    (flags & 0x14 == 0x14 && seq == [0, 0, 0, 0]).then(|| u16::from_be_bytes([tcp[0], tcp[1]]))
}

/// [`tcp_reset`] in an IPv4 packet (its header included): the address and port refused.
fn tcp_reset_v4(ip: &[u8]) -> Option<SocketAddr> {
    let ihl = usize::from(*ip.first()? & 0x0f) * 4;
    if *ip.get(9)? != 6 {
        return None;
    }
    let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
    let port = tcp_reset(ip.get(ihl..)?)?;
    Some(SocketAddr::from((src, port)))
}

/// The destination of the UDP datagram an ICMP "port unreachable" (IPv4, header included)
/// answers.
fn udp_unreachable_v4(ip: &[u8]) -> Option<SocketAddr> {
    let ihl = usize::from(*ip.first()? & 0x0f) * 4;
    let icmp = ip.get(ihl..)?;
    if icmp.get(0..2)? != [3, 3] {
        return None;
    }
    let inner = icmp.get(8..)?;
    let inner_ihl = usize::from(*inner.first()? & 0x0f) * 4;
    if *inner.get(9)? != 17 {
        return None;
    }
    let dst: [u8; 4] = inner.get(16..20)?.try_into().ok()?;
    let udp = inner.get(inner_ihl..)?;
    Some(SocketAddr::from((
        dst,
        u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]),
    )))
}

/// The destination of the UDP datagram an ICMPv6 "port unreachable" answers (an ICMPv6 raw
/// socket gets no IPv6 header).
fn udp_unreachable_v6(icmp: &[u8]) -> Option<SocketAddr> {
    if icmp.get(0..2)? != [1, 4] {
        return None;
    }
    let inner = icmp.get(8..)?;
    if *inner.get(6)? != 17 {
        return None;
    }
    let dst: [u8; 16] = inner.get(24..40)?.try_into().ok()?;
    let udp = inner.get(40..)?;
    Some(SocketAddr::from((
        dst,
        u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn the_kernels_refusals_name_their_destination() {
        // Captured in a namespace: the SYN to 127.0.0.1:9999, its reset, the ICMP answer to a
        // datagram to 127.0.0.1:5353, an IPv6 reset from [::1]:9998.
        let syn = hex(
            "4500003cbcbe400040067ffb7f0000017f000001890a270f6879407400000000a002ffd7fe3000000204ffd70402080a",
        );
        let rst =
            hex("450000280000400040063cce7f0000017f000001270f890a00000000687940755014000058c60000");
        let icmp = hex(
            "45c0003974520000400107b07f0000017f0000010303cf51000000004500001d821c40004011bab17f0000017f000001b4a814e9000952d9",
        );
        let rst6 = hex("270ed602000000006ec296c150140000001c0000");
        assert_eq!(tcp_reset_v4(&syn), None);
        assert_eq!(
            tcp_reset_v4(&rst),
            Some("127.0.0.1:9999".parse().expect("addr"))
        );
        assert_eq!(
            udp_unreachable_v4(&icmp),
            Some("127.0.0.1:5353".parse().expect("addr"))
        );
        assert_eq!(tcp_reset(&rst6), Some(9998));
        assert_eq!(tcp_reset_v4(&[]), None);
        assert_eq!(udp_unreachable_v4(&rst), None);
        assert_eq!(udp_unreachable_v6(&[1, 4, 0]), None);
    }
}
