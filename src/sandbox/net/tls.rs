//! The opening of a tunnel that starts with TLS: the server name its `ClientHello` gives, which
//! must be the host the tunnel was allowed for. After it, the tunnel carries encrypted bytes orch
//! cannot read: nothing more in it is judged.

use super::http::HEAD_MAX;
use super::tunnel::Opening;

/// The server name of a TLS `ClientHello` at the start of `buf` (a handshake record).
pub(super) fn server_name(buf: &[u8]) -> Opening {
    // The handshake message may span records: gather their payloads.
    let mut hs: Vec<u8> = Vec::new();
    let mut at = 0;
    loop {
        let Some(header) = buf.get(at..at + 5) else {
            return more_or_nothing(buf);
        };
        if header[0] != 0x16 {
            return Opening::Nothing;
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
                return Opening::Nothing;
            }
            if hs.len() >= 4 + msg_len {
                return client_hello_sni(&hs[4..4 + msg_len])
                    .map_or(Opening::Nothing, Opening::Names);
            }
        }
    }
}

fn more_or_nothing(buf: &[u8]) -> Opening {
    if buf.len() >= HEAD_MAX {
        Opening::Nothing
    } else {
        Opening::More
    }
}

/// The `server_name` extension of a `ClientHello` body.
fn client_hello_sni(body: &[u8]) -> Option<String> {
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
    while i + 4 <= exts.len() {
        let kind = u16::from_be_bytes([exts[i], exts[i + 1]]);
        let len = usize::from(u16::from_be_bytes([exts[i + 2], exts[i + 3]]));
        let data = exts.get(i + 4..i + 4 + len)?;
        if kind == 0 {
            // server_name_list: its length, then (type, length, name) entries.
            let name_type = *data.get(2)?;
            let name_len = usize::from(u16::from_be_bytes([*data.get(3)?, *data.get(4)?]));
            let name = data.get(5..5 + name_len)?;
            return (name_type == 0).then(|| {
                name.iter()
                    .map(|&b| {
                        if b.is_ascii_graphic() {
                            char::from(b).to_string()
                        } else {
                            format!("\\x{b:02x}")
                        }
                    })
                    .collect()
            });
        }
        i += 4 + len;
    }
    None
}
