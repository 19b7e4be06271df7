//! What a client asks orch's proxy for: the head of an HTTP request (`CONNECT host:port`, or a
//! plain request in absolute form, `GET http://host/path`), and the first bytes through a
//! `CONNECT` tunnel (a TLS `ClientHello`'s server name, a plain request's `Host`), which must
//! name the host the tunnel was allowed for: a request that names another host where the
//! allowed one is served (a shared front, a CDN) is refused.

use super::allow::Host;

/// The most of a request's head the proxy reads.
pub(super) const HEAD_MAX: usize = 16 * 1024;

/// A request to the proxy.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Request {
    /// `CONNECT host:port`: a tunnel.
    Connect { host: Host, port: u16 },
    /// A plain request: to `host:port`, with `head` the request to send there (origin form,
    /// the hop-by-hop headers dropped, `Connection: close`).
    Plain {
        host: Host,
        port: u16,
        head: Vec<u8>,
    },
    /// A plain request whose `Host` names another host than its URL (`named`): refused.
    Forged {
        named: String,
        host: Host,
        port: u16,
    },
    /// Not a request the proxy serves, with why (answered 400).
    Bad(String),
}

/// Where a request's head ends (after its blank line), if it does within `buf`.
pub(super) fn head_end(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4)
}

/// `host:port` as a client writes it after `CONNECT` or in a URL's authority (`port` when
/// there is none).
fn authority(text: &str, default_port: Option<u16>) -> Option<(Host, u16)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port?,
            None => return None,
        };
        (format!("[{h}]"), port)
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (text.to_string(), default_port?),
        }
    };
    let host = Host::parse_target(&host)?;
    (port != 0).then_some((host, port))
}

/// Reads the head of a request (`head`: up to and including its blank line).
pub(super) fn parse(head: &[u8]) -> Request {
    let bad = |why: &str| Request::Bad(why.to_string());
    let Ok(text) = std::str::from_utf8(head) else {
        return bad("the request is not text");
    };
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("");
    let parts: Vec<&str> = first.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return bad("the request line is not `METHOD TARGET VERSION`");
    };
    if !version.starts_with("HTTP/1.")
        || method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_alphabetic())
    {
        return bad("the request line is not `METHOD TARGET HTTP/1.x`");
    }
    if method.eq_ignore_ascii_case("CONNECT") {
        return match authority(target, None) {
            Some((host, port)) => Request::Connect { host, port },
            None => bad("`CONNECT` takes `host:port`"),
        };
    }
    let Some(rest) = target
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("http://"))
        .map(|_| &target[7..])
    else {
        return bad(
            "a plain request to the proxy names its URL in full (`http://host/path`); HTTPS goes through `CONNECT`",
        );
    };
    let cut = rest.find(['/', '?']).unwrap_or(rest.len());
    let (auth, path) = rest.split_at(cut);
    if auth.contains('@') {
        return bad("credentials in the URL are not passed on");
    }
    let Some((host, port)) = authority(auth, Some(80)) else {
        return bad("the URL's host is not a host name or an address");
    };
    let path = if path.is_empty() {
        "/".to_string()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let mut out = format!("{method} {path} {version}\r\n");
    for line in lines.take_while(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or("").trim();
        let hop = [
            "proxy-connection",
            "proxy-authorization",
            "connection",
            "keep-alive",
        ];
        if hop.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        if name.eq_ignore_ascii_case("host") && !host_names(line, &host) {
            let named = line.split_once(':').map_or("", |(_, v)| v.trim());
            return Request::Forged {
                named: named.chars().take(255).collect(),
                host,
                port,
            };
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    Request::Plain {
        host,
        port,
        head: out.into_bytes(),
    }
}

/// Whether a `Host: …` header line names `host` (its port aside).
fn host_names(line: &str, host: &Host) -> bool {
    let value = line.split_once(':').map_or("", |(_, v)| v.trim());
    authority(value, Some(1)).is_some_and(|(h, _)| &h == host)
}

/// What the first bytes a client sends through a tunnel say of the host it means.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Opening {
    /// Not known yet: more bytes are needed.
    More,
    /// A host is named (TLS server name, HTTP `Host`).
    Names(String),
    /// Nothing names a host (TLS without a server name, another protocol).
    Nothing,
}

/// Reads the opening of a tunnel: a TLS `ClientHello` (its server name) or an HTTP request (its
/// `Host`), from `buf`, the bytes received so far.
pub(super) fn opening(buf: &[u8]) -> Opening {
    if buf.is_empty() {
        return Opening::More;
    }
    if buf[0] == 0x16 {
        return tls_server_name(buf);
    }
    // An HTTP request: its method, then its head.
    let looks_http = buf
        .iter()
        .take(8)
        .take_while(|b| **b != b' ')
        .all(u8::is_ascii_uppercase);
    if !looks_http {
        return Opening::Nothing;
    }
    let Some(end) = head_end(buf) else {
        return if buf.len() >= HEAD_MAX {
            Opening::Nothing
        } else {
            Opening::More
        };
    };
    let text = String::from_utf8_lossy(&buf[..end]);
    let host = text.split("\r\n").skip(1).find_map(|l| {
        l.split_once(':')
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case("host"))
    });
    match host {
        Some((_, v)) => Opening::Names(v.trim().to_string()),
        None => Opening::Nothing,
    }
}

/// The server name of a TLS `ClientHello` at the start of `buf` (a handshake record).
fn tls_server_name(buf: &[u8]) -> Opening {
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

/// Whether a name the tunnel's opening gave (`named`: a TLS server name or a `Host` value) is
/// the host the tunnel was allowed for.
pub(super) fn names_host(named: &str, host: &Host) -> bool {
    authority(named, Some(1)).is_some_and(|(h, _)| &h == host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(h: &str) -> Host {
        Host::parse_target(h).expect(h)
    }

    #[test]
    fn connect_names_its_target() {
        let r = parse(b"CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n");
        assert_eq!(
            r,
            Request::Connect {
                host: host("api.example.com"),
                port: 443
            }
        );
        let r = parse(b"CONNECT [::1]:8080 HTTP/1.1\r\n\r\n");
        assert_eq!(
            r,
            Request::Connect {
                host: host("::1"),
                port: 8080
            }
        );
        for bad in [
            &b"CONNECT api.example.com HTTP/1.1\r\n\r\n"[..],
            b"CONNECT :443 HTTP/1.1\r\n\r\n",
            b"CONNECT a b:443 HTTP/1.1\r\n\r\n",
            b"CONNECT x:443 SPDY/3\r\n\r\n",
        ] {
            assert!(
                matches!(parse(bad), Request::Bad(_)),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_plain_request_goes_to_its_url_in_origin_form() {
        let r = parse(
            b"POST http://127.0.0.1:8080/v1/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nProxy-Connection: keep-alive\r\nContent-Length: 2\r\n\r\n",
        );
        let Request::Plain {
            host: h,
            port,
            head,
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!((h, port), (host("127.0.0.1"), 8080));
        assert_eq!(
            String::from_utf8(head).expect("text"),
            "POST /v1/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
        );
        let r = parse(b"GET http://example.com HTTP/1.0\r\n\r\n");
        assert!(matches!(r, Request::Plain { port: 80, .. }), "{r:?}");
    }

    #[test]
    fn a_plain_request_that_names_another_host_is_bad() {
        let r = parse(b"GET http://127.0.0.1:8080/ HTTP/1.1\r\nHost: evil.example\r\n\r\n");
        assert!(
            matches!(r, Request::Forged { ref named, .. } if named == "evil.example"),
            "{r:?}"
        );
        for req in [
            &b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"[..],
            b"GET https://example.com/ HTTP/1.1\r\n\r\n",
            b"GET http://user@example.com/ HTTP/1.1\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
        ] {
            assert!(
                matches!(parse(req), Request::Bad(_)),
                "{}",
                String::from_utf8_lossy(req)
            );
        }
    }

    /// A minimal TLS 1.2 `ClientHello` with server name `name` (none when empty).
    pub(crate) fn client_hello(name: &str) -> Vec<u8> {
        let mut ext = Vec::new();
        if !name.is_empty() {
            let n = name.len() as u16;
            ext.extend_from_slice(&[0, 0]);
            ext.extend_from_slice(&(n + 5).to_be_bytes());
            ext.extend_from_slice(&(n + 3).to_be_bytes());
            ext.push(0);
            ext.extend_from_slice(&n.to_be_bytes());
            ext.extend_from_slice(name.as_bytes());
        }
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one suite
        body.extend_from_slice(&[1, 0]); // no compression
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn a_tunnel_opening_names_its_host() {
        let hello = client_hello("evil.example");
        assert_eq!(opening(&hello), Opening::Names("evil.example".into()));
        assert_eq!(opening(&hello[..20]), Opening::More);
        assert_eq!(opening(&client_hello("")), Opening::Nothing);
        assert_eq!(
            opening(b"GET / HTTP/1.1\r\nHost: a.b\r\n\r\n"),
            Opening::Names("a.b".into())
        );
        assert_eq!(opening(b"GET / HTTP/1.1\r\n"), Opening::More);
        assert_eq!(opening(b"SSH-2.0-OpenSSH\r\n"), Opening::Nothing);
        assert!(names_host("API.example.com:443", &host("api.example.com")));
        assert!(!names_host("evil.example", &host("api.example.com")));
    }
}
