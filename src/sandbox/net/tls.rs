//! The opening of a tunnel that starts with TLS: the server name its `ClientHello` gives, which
//! must be the host the tunnel was allowed for. After it, the tunnel carries encrypted bytes orch
//! cannot read: nothing more in it is judged.
//!
//! Fails closed: what starts as a TLS record (a handshake, a `ChangeCipherSpec`, an alert,
//! application data) is judged as TLS, and a first record that is not a `ClientHello`, a
//! `ClientHello` that is not whole within [`HELLO_MAX`] or cannot be read, is refused
//! ([`Opening::Unjudged`]); one without a server name is [`Opening::Unnamed`] (the tunnel
//! decides: it passes only to an address).

use super::tunnel::Opening;

/// The most of a `ClientHello` read (its records together): a real one, post-quantum key shares
/// and padding included, is a few KiB; TLS bounds a handshake message's record at 16 KiB plus
/// its header, and one may span records.
pub(super) const HELLO_MAX: usize = 64 * 1024;

/// Whether `buf` starts as a TLS record does: a content type of TLS (20 to 23) and the major
/// version 3 (`None`: not known yet).
pub(super) fn starts_as_record(buf: &[u8]) -> Option<bool> {
    let kind = *buf.first()?;
    if !(0x14..=0x17).contains(&kind) {
        return Some(false);
    }
    buf.get(1).map(|&major| major == 3)
}

/// The server name of a TLS `ClientHello` at the start of `buf` (a record).
pub(super) fn server_name(buf: &[u8]) -> Opening {
    // The handshake message may span records: gather their payloads.
    let mut hs: Vec<u8> = Vec::new();
    let mut at = 0;
    loop {
        let Some(header) = buf.get(at..at + 5) else {
            return more_or_nothing(buf);
        };
        if header[0] != 0x16 {
            return Opening::Unjudged(format!(
                "a TLS record of type {} before the `ClientHello`",
                header[0]
            ));
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let Some(payload) = buf.get(at + 5..at + 5 + len) else {
            return more_or_nothing(buf);
        };
        hs.extend_from_slice(payload);
        at += 5 + len;
        if hs.len() >= 4 {
            let msg_len =
                (usize::from(hs[1]) << 16) | (usize::from(hs[2]) << 8) | usize::from(hs[3]);
            if hs[0] != 1 {
                return Opening::Unjudged(format!(
                    "a TLS handshake message of type {} where a `ClientHello` opens",
                    hs[0]
                ));
            }
            if hs.len() >= 4 + msg_len {
                return match client_hello_sni(&hs[4..4 + msg_len]) {
                    Sni::Named(name) => Opening::Names(name),
                    Sni::None => Opening::Unnamed,
                    Sni::Unreadable => Opening::Unjudged("a `ClientHello` orch cannot read".into()),
                };
            }
        }
    }
}

fn more_or_nothing(buf: &[u8]) -> Opening {
    if buf.len() >= HELLO_MAX {
        Opening::Unjudged(format!(
            "a `ClientHello` not whole within its first {} KiB",
            HELLO_MAX / 1024
        ))
    } else {
        Opening::More
    }
}

/// What a `ClientHello` says of its server.
enum Sni {
    Named(String),
    /// Read, without a `server_name` extension.
    None,
    /// Cut short, or its `server_name` is not a host name.
    Unreadable,
}

/// The `server_name` extension of a `ClientHello` body.
fn client_hello_sni(body: &[u8]) -> Sni {
    match read_sni(body) {
        Some(Some(name)) => Sni::Named(name),
        Some(None) => Sni::None,
        None => Sni::Unreadable,
    }
}

/// `None`: unreadable; `Some(None)`: no `server_name`.
fn read_sni(body: &[u8]) -> Option<Option<String>> {
    let mut at = 2 + 32; // version, random
    let sid = usize::from(*body.get(at)?);
    at += 1 + sid;
    let suites = usize::from(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]));
    at += 2 + suites;
    let comp = usize::from(*body.get(at)?);
    at += 1 + comp;
    let ext_len = usize::from(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]));
    at += 2;
    let exts = body.get(at..at + ext_len)?;
    let mut i = 0;
    let mut named: Option<String> = None;
    while i + 4 <= exts.len() {
        let kind = u16::from_be_bytes([exts[i], exts[i + 1]]);
        let len = usize::from(u16::from_be_bytes([exts[i + 2], exts[i + 3]]));
        let data = exts.get(i + 4..i + 4 + len)?;
        if kind == 0 {
            // server_name_list: its length, then (type, length, name) entries. Exactly one
            // extension with exactly one host name is read: a second (a list of two, or two
            // extensions) names a host a server may take instead (fail closed).
            let list_len = usize::from(u16::from_be_bytes([*data.first()?, *data.get(1)?]));
            let name_type = *data.get(2)?;
            let name_len = usize::from(u16::from_be_bytes([*data.get(3)?, *data.get(4)?]));
            let name = data.get(5..5 + name_len)?;
            if named.is_some() || name_type != 0 || list_len != 3 + name_len || len != 2 + list_len
            {
                return None;
            }
            named = Some(
                name.iter()
                    .map(|&b| {
                        if b.is_ascii_graphic() {
                            char::from(b).to_string()
                        } else {
                            format!("\\x{b:02x}")
                        }
                    })
                    .collect(),
            );
        }
        i += 4 + len;
    }
    Some(named)
}
