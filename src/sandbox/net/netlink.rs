//! The three route-netlink requests a new network namespace needs: `lo` up, and every IPv4 and
//! IPv6 address local (a `local` route for `0.0.0.0/0` and `::/0` on `lo` in the `local` table),
//! so that a connection to any address stays in the namespace, where orch's sockets catch it.
//!
//! Written by hand over a netlink socket (rustix's safe calls): each request is a fixed header
//! and two attributes at most, answered by one acknowledgement; a netlink crate would be more
//! code than this.

use std::os::fd::OwnedFd;

use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

const RTM_NEWLINK: u16 = 16;
const RTM_NEWROUTE: u16 = 24;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const IFF_UP: u32 = 0x1;
/// `lo` is the first interface of every network namespace.
const LO_INDEX: u32 = 1;
const RT_TABLE_LOCAL: u8 = 255;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_HOST: u8 = 254;
const RTN_LOCAL: u8 = 2;
const RTA_OIF: u16 = 4;
const RTA_TABLE: u16 = 15;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// A route-netlink socket of the current network namespace.
pub(super) struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    pub(super) fn open() -> Result<Self, String> {
        let fd = rustix::net::socket(AddressFamily::NETLINK, SocketType::RAW, None)
            .map_err(|e| format!("cannot open a netlink socket: {e}"))?;
        Ok(Self { fd, seq: 0 })
    }

    /// `ip link set lo up`.
    pub(super) fn lo_up(&mut self) -> Result<(), String> {
        let mut body = Vec::with_capacity(16);
        body.extend_from_slice(&[0, 0]); // family, padding
        body.extend_from_slice(&0u16.to_ne_bytes()); // type
        body.extend_from_slice(&LO_INDEX.to_ne_bytes());
        body.extend_from_slice(&IFF_UP.to_ne_bytes()); // flags
        body.extend_from_slice(&IFF_UP.to_ne_bytes()); // change
        self.request(RTM_NEWLINK, 0, &body)
            .map_err(|e| format!("cannot bring `lo` up: {e}"))
    }

    /// `ip route add local 0.0.0.0/0 dev lo table local` (`v6`: `::/0`).
    pub(super) fn all_local(&mut self, v6: bool) -> Result<(), String> {
        let family = if v6 { AF_INET6 } else { AF_INET };
        let mut body = vec![
            family,
            0, // dst_len: the default route
            0, // src_len
            0, // tos
            RT_TABLE_LOCAL,
            RTPROT_BOOT,
            RT_SCOPE_HOST,
            RTN_LOCAL,
        ];
        body.extend_from_slice(&0u32.to_ne_bytes()); // flags
        attr(&mut body, RTA_OIF, &LO_INDEX.to_ne_bytes());
        attr(
            &mut body,
            RTA_TABLE,
            &u32::from(RT_TABLE_LOCAL).to_ne_bytes(),
        );
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &body)
            .map_err(|e| {
                format!(
                    "cannot route every {} address to `lo`: {e}",
                    if v6 { "IPv6" } else { "IPv4" }
                )
            })
    }

    /// Sends one request and reads its acknowledgement.
    fn request(&mut self, kind: u16, flags: u16, body: &[u8]) -> Result<(), String> {
        self.seq += 1;
        let len = u32::try_from(16 + body.len()).map_err(|_| "request too long".to_string())?;
        let mut msg = Vec::with_capacity(16 + body.len());
        msg.extend_from_slice(&len.to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK | flags).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
        msg.extend_from_slice(body);
        rustix::net::sendto(
            &self.fd,
            &msg,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )
        .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 1024];
        let (_, n) = rustix::net::recv(&self.fd, &mut buf[..], RecvFlags::empty())
            .map_err(|e| e.to_string())?;
        ack_error(&buf[..n.min(buf.len())])
    }
}

/// Appends a route attribute (`rtattr`, padded to 4 bytes).
fn attr(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = u16::try_from(4 + data.len()).expect("attributes here are a few bytes");
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(data);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The kernel's answer: an `NLMSG_ERROR` whose error is 0 is the acknowledgement.
fn ack_error(reply: &[u8]) -> Result<(), String> {
    let u16_at = |i: usize| {
        reply
            .get(i..i + 2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
    };
    let i32_at = |i: usize| {
        reply
            .get(i..i + 4)
            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    match (u16_at(4), i32_at(16)) {
        (Some(NLMSG_ERROR), Some(0)) => Ok(()),
        (Some(NLMSG_ERROR), Some(e)) => Err(std::io::Error::from_raw_os_error(-e).to_string()),
        _ => Err("the kernel's answer is not an acknowledgement".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded() {
        let mut out = Vec::new();
        attr(&mut out, RTA_TABLE, &[1]);
        assert_eq!(out, vec![5, 0, 15, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn an_acknowledgement_is_told_from_an_error() {
        let msg = |err: i32| {
            let mut m = Vec::new();
            m.extend_from_slice(&36u32.to_ne_bytes());
            m.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            m.extend_from_slice(&[0; 10]);
            m.extend_from_slice(&err.to_ne_bytes());
            m
        };
        assert_eq!(ack_error(&msg(0)), Ok(()));
        assert!(ack_error(&msg(-1)).is_err());
        assert!(ack_error(&[]).is_err());
    }
}
