//! What a client asks orch's proxy for, read with `httparse`: the head of each request on a
//! connection to the proxy (`CONNECT host:port`, or a plain request in absolute form, `GET
//! http://host/path`) and in a tunnel of plain HTTP ([`super::tunnel`]); how its body is framed
//! ([`Framing`]; the body itself is read by [`super::body`]); and the head of a destination's
//! answer to a plain request ([`response`]).
//!
//! A request names one host, its target's, and its `Host` must name the same host and port: a
//! request that names another host where the allowed one is served (a shared front, a CDN) is
//! refused. A head that two servers could read two ways is refused rather than guessed at (request
//! smuggling): a line that ends without CR, both `Content-Length` and `Transfer-Encoding`, a
//! `Transfer-Encoding` other than `chunked` alone, two `Content-Length`s or two `Host`s.

use super::allow::Host;

/// The most of a request's head the proxy reads.
pub(super) const HEAD_MAX: usize = 16 * 1024;

/// The most header fields of one request.
const HEADERS_MAX: usize = 128;

/// The hop-by-hop fields of a plain request, not passed on (orch's own `Connection: close`
/// replaces them).
const HOP_BY_HOP: [&str; 4] = [
    "proxy-connection",
    "proxy-authorization",
    "connection",
    "keep-alive",
];

/// How a request's body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body.
    None,
    /// `Content-Length`: that many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`: chunks up to the last one and its trailer.
    Chunked,
}

/// The head of one request, as its client sent it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Head {
    /// Its bytes, up to and including its blank line.
    pub(super) raw: Vec<u8>,
    pub(super) method: String,
    /// The request target as written (`/x`, `http://host/x`, `host:443`, `*`).
    pub(super) target: String,
    /// The minor version (`HTTP/1.x`).
    minor: u8,
    /// Its header fields, in order (names as written, values trimmed).
    fields: Vec<(String, Vec<u8>)>,
    pub(super) framing: Framing,
}

/// A request head read from the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Parsed {
    /// Not whole yet: more bytes are needed.
    More,
    /// Not a request the proxy passes on, with why (answered 400).
    Bad(String),
    Head(Head),
}

/// Reads the head of the request at the start of `buf`.
pub(super) fn head(buf: &[u8]) -> Parsed {
    let bad = |why: &str| Parsed::Bad(why.to_string());
    let mut fields = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut req = httparse::Request::new(&mut fields);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= HEAD_MAX => {
            return bad("the request's head is too long");
        }
        Ok(httparse::Status::Partial) => return Parsed::More,
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Bad(format!("more than {HEADERS_MAX} header fields"));
        }
        Err(e) => return Parsed::Bad(format!("not an HTTP/1.x request ({e})")),
    };
    if len > HEAD_MAX {
        return bad("the request's head is too long");
    }
    let raw = &buf[..len];
    // httparse takes a bare LF for a line's end; a server may not: only CRLF is read one way.
    if raw
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || raw[i - 1] != b'\r'))
    {
        return bad("a line of the request ends without CR");
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return bad("the request line is not `METHOD TARGET HTTP/1.x`");
    };
    let fields: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect();
    let named = |want: &str| -> Vec<&[u8]> {
        fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(want))
            .map(|(_, v)| v.as_slice())
            .collect()
    };
    // A name a lenient server could take for one of these (`Transfer_Encoding`).
    if fields.iter().any(|(n, _)| {
        n.contains('_')
            && ["transfer-encoding", "content-length", "host"]
                .iter()
                .any(|w| n.replace('_', "-").eq_ignore_ascii_case(w))
    }) {
        return bad("a header field's name is another's with `_` for `-`");
    }
    let te = named("transfer-encoding");
    let cl = named("content-length");
    if named("host").len() > 1 {
        return bad("more than one Host header");
    }
    let framing = match (te.as_slice(), cl.as_slice()) {
        ([], []) => Framing::None,
        ([_, ..], [_, ..]) => {
            return bad("both Content-Length and Transfer-Encoding (request smuggling)");
        }
        ([v], []) if v.eq_ignore_ascii_case(b"chunked") => {
            if minor == 0 {
                return bad("Transfer-Encoding in an HTTP/1.0 request");
            }
            Framing::Chunked
        }
        (_, []) => return bad("a Transfer-Encoding other than `chunked` alone"),
        ([], [v]) => match content_length(v) {
            Some(n) => Framing::Length(n),
            None => return bad("Content-Length is not a number"),
        },
        ([], _) => return bad("more than one Content-Length"),
    };
    Parsed::Head(Head {
        raw: raw.to_vec(),
        method: method.to_string(),
        target: target.to_string(),
        minor,
        fields,
        framing,
    })
}

/// A `Content-Length` value: digits only (no sign, no list), at most 18 of them.
fn content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

impl Head {
    /// The value of its `Host` field, if it has one (there is at most one).
    pub(super) fn host(&self) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.as_slice())
    }

    /// Whether it asks to switch protocols (`Upgrade`).
    pub(super) fn upgrades(&self) -> bool {
        self.fields
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("upgrade"))
    }

    /// What a log line says it was for: its target, escaped, at most 255 characters.
    pub(super) fn shown_target(&self) -> String {
        shown(self.target.as_bytes())
    }
}

/// `bytes` as a log line shows them: escaped, at most 255 characters.
pub(super) fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .escape_debug()
        .take(255)
        .collect()
}

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
    /// A plain request whose `Host` names another host or port than its URL (`named`): refused.
    Forged {
        named: String,
        host: Host,
        port: u16,
    },
    /// Not a request the proxy serves, with why (answered 400).
    Bad(String),
}

/// `host:port` as a client writes it after `CONNECT`, in a URL's authority or in `Host`
/// (`default_port` when there is none).
pub(super) fn authority(text: &str, default_port: Option<u16>) -> Option<(Host, u16)> {
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

/// Reads a request to the proxy from its head (`head`: up to and including its blank line).
#[cfg(test)]
fn parse(head_bytes: &[u8]) -> Request {
    match head(head_bytes) {
        Parsed::Head(h) => judge(&h),
        Parsed::Bad(why) => Request::Bad(why),
        Parsed::More => Request::Bad("the request's head is not whole".into()),
    }
}

/// What a request on a connection to the proxy asks for.
pub(super) fn judge(h: &Head) -> Request {
    let bad = |why: &str| Request::Bad(why.to_string());
    if h.method.eq_ignore_ascii_case("CONNECT") {
        return match authority(&h.target, None) {
            Some((host, port)) => Request::Connect { host, port },
            None => bad("`CONNECT` takes `host:port`, a host name or an address and a port"),
        };
    }
    let target = h.target.as_str();
    let Some(rest) = target
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("http://"))
        .map(|_| &target[7..])
    else {
        return bad(
            "a plain request to the proxy names its URL in full (`http://host/path`); HTTPS goes through `CONNECT`",
        );
    };
    let cut = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (auth, path) = rest.split_at(cut);
    if auth.contains('@') {
        return bad("credentials in the URL are not passed on");
    }
    let Some((host, port)) = authority(auth, Some(80)) else {
        return bad("the URL's host is not a host name or an address");
    };
    if let Some(value) = h.host()
        && !names(value, &host, port)
    {
        return Request::Forged {
            named: shown(value),
            host,
            port,
        };
    }
    let path = if path.is_empty() || path.starts_with('#') {
        "/"
    } else {
        path
    };
    let mut out = format!("{} ", h.method).into_bytes();
    if path.starts_with('?') {
        out.push(b'/');
    }
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(format!(" HTTP/1.{}\r\n", h.minor).as_bytes());
    for (name, value) in &h.fields {
        if HOP_BY_HOP.iter().any(|n| name.eq_ignore_ascii_case(n)) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    Request::Plain {
        host,
        port,
        head: out,
    }
}

/// Whether a `Host` value names `host` and `port` (no port in it: 80, plain HTTP's).
pub(super) fn names(value: &[u8], host: &Host, port: u16) -> bool {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| authority(v, Some(80)))
        .is_some_and(|(h, p)| &h == host && p == port)
}

/// A destination's answer to a plain request, as the start of `buf` holds it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Response {
    /// More bytes are needed.
    More,
    /// An interim answer (`1xx`, not `101`) of `len` bytes: passed on as it is, the final one
    /// follows.
    Interim(usize),
    /// The final answer's head, `len` bytes, and what is passed on for it: the same with
    /// `Connection: close` (orch's connection to the client ends with it: the destination's
    /// does).
    Final { len: usize, head: Vec<u8> },
    /// Not an answer orch reads: passed on as it is.
    Other,
}

/// Reads the head of a destination's answer at the start of `buf`.
pub(super) fn response(buf: &[u8]) -> Response {
    let mut fields = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut resp = httparse::Response::new(&mut fields);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < HEAD_MAX => return Response::More,
        _ => return Response::Other,
    };
    let (Some(minor), Some(code)) = (resp.version, resp.code) else {
        return Response::Other;
    };
    if (100..200).contains(&code) && code != 101 {
        return Response::Interim(len);
    }
    let mut head = format!("HTTP/1.{minor} {code} {}\r\n", resp.reason.unwrap_or("")).into_bytes();
    for h in resp.headers.iter() {
        if ["connection", "keep-alive", "proxy-connection"]
            .iter()
            .any(|n| h.name.eq_ignore_ascii_case(n))
        {
            continue;
        }
        head.extend_from_slice(h.name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(h.value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    Response::Final { len, head }
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
            b"CONNECT 127.1:443 HTTP/1.1\r\n\r\n",
            b"CONNECT 2130706433:443 HTTP/1.1\r\n\r\n",
            b"CONNECT 0.0.0.0:443 HTTP/1.1\r\n\r\n",
            b"CONNECT [::]:443 HTTP/1.1\r\n\r\n",
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
        let r = parse(b"GET http://example.com?q HTTP/1.1\r\nHost: EXAMPLE.com:80\r\n\r\n");
        let Request::Plain { head, .. } = r else {
            panic!("{r:?}")
        };
        assert!(head.starts_with(b"GET /?q HTTP/1.1\r\n"), "{head:?}");
    }

    #[test]
    fn a_plain_request_that_names_another_host_is_bad() {
        for (req, named) in [
            (
                &b"GET http://127.0.0.1:8080/ HTTP/1.1\r\nHost: evil.example\r\n\r\n"[..],
                "evil.example",
            ),
            // Another port of the same host, or no port (80): another endpoint.
            (
                b"GET http://127.0.0.1:8080/ HTTP/1.1\r\nHost: 127.0.0.1:9090\r\n\r\n",
                "127.0.0.1:9090",
            ),
            (
                b"GET http://127.0.0.1:8080/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                "127.0.0.1",
            ),
            (
                b"GET http://localhost:8080/ HTTP/1.1\r\nHost: 127.0.0.2:8080\r\n\r\n",
                "127.0.0.2:8080",
            ),
        ] {
            let r = parse(req);
            assert!(
                matches!(r, Request::Forged { named: ref n, .. } if n == named),
                "{r:?}"
            );
        }
        for req in [
            &b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"[..],
            b"GET https://example.com/ HTTP/1.1\r\n\r\n",
            b"GET http://user@example.com/ HTTP/1.1\r\n\r\n",
            b"GET http://127.1:8080/ HTTP/1.1\r\n\r\n",
            b"GET http://0.0.0.0:8080/ HTTP/1.1\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
        ] {
            assert!(
                matches!(parse(req), Request::Bad(_)),
                "{}",
                String::from_utf8_lossy(req)
            );
        }
    }

    #[test]
    fn a_head_two_servers_could_read_two_ways_is_bad() {
        let base = "POST http://a.example/ HTTP/1.1\r\nHost: a.example\r\n";
        for (fields, why) in [
            (
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                "both",
            ),
            (
                "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                "both",
            ),
            ("Transfer-Encoding: gzip, chunked\r\n", "other than"),
            ("Transfer-Encoding: chunked, chunked\r\n", "other than"),
            ("Transfer-Encoding: identity\r\n", "other than"),
            ("Transfer-Encoding: xchunked\r\n", "other than"),
            (
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "other than",
            ),
            ("Transfer-Encoding:\r\n", "other than"),
            (
                "Content-Length: 5\r\nContent-Length: 5\r\n",
                "more than one",
            ),
            ("Content-Length: 5, 5\r\n", "not a number"),
            ("Content-Length: +5\r\n", "not a number"),
            ("Content-Length: -1\r\n", "not a number"),
            ("Content-Length: 0x5\r\n", "not a number"),
            ("Content-Length: 1 2\r\n", "not a number"),
            ("Content-Length: 99999999999999999999\r\n", "not a number"),
            ("Transfer_Encoding: chunked\r\n", "`_`"),
            ("Content_Length: 5\r\n", "`_`"),
            ("Host: b.example\r\n", "more than one Host"),
            ("Content-Length: 5\nX: y\r\n", "without CR"),
            (" Transfer-Encoding: chunked\r\n", "not an HTTP"),
            ("Transfer-Encoding : chunked\r\n", "not an HTTP"),
            ("X: y\r\n continued\r\n", "not an HTTP"),
            ("X: \x01\r\n", "not an HTTP"),
        ] {
            let req = format!("{base}{fields}\r\n");
            match head(req.as_bytes()) {
                Parsed::Bad(w) => assert!(w.contains(why), "{fields:?}: {w}"),
                other => panic!("{fields:?}: {other:?}"),
            }
        }
        let old = b"POST http://a.example/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(head(old), Parsed::Bad(w) if w.contains("HTTP/1.0")));
        // A bare LF anywhere, the request line's or the blank line's.
        for req in [
            &b"GET http://a.example/ HTTP/1.1\nHost: a.example\r\n\r\n"[..],
            b"GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\n",
            b"\nGET http://a.example/ HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(head(req), Parsed::Bad(ref w) if w.contains("without CR")),
                "{}",
                String::from_utf8_lossy(req)
            );
        }
        let many = format!("{base}{}\r\n", "X: y\r\n".repeat(HEADERS_MAX));
        assert!(matches!(head(many.as_bytes()), Parsed::Bad(w) if w.contains("more than")));
        let long = format!("{base}X: {}\r\n", "y".repeat(HEAD_MAX));
        assert!(
            matches!(head(&long.as_bytes()[..HEAD_MAX]), Parsed::Bad(w) if w.contains("too long"))
        );
        assert!(matches!(head(long.as_bytes()), Parsed::Bad(w) if w.contains("too long")));
    }

    #[test]
    fn a_head_says_how_its_body_is_framed() {
        for (fields, framing) in [
            ("", Framing::None),
            ("Content-Length: 0\r\n", Framing::Length(0)),
            ("Content-Length:  12 \r\n", Framing::Length(12)),
            ("Transfer-Encoding: chunked\r\n", Framing::Chunked),
            ("transfer-encoding: CHUNKED\r\n", Framing::Chunked),
        ] {
            let req = format!("POST / HTTP/1.1\r\n{fields}\r\nbody");
            let Parsed::Head(h) = head(req.as_bytes()) else {
                panic!("{fields:?}")
            };
            assert_eq!(h.framing, framing, "{fields:?}");
            assert_eq!(h.raw.len(), req.len() - 4);
        }
        assert_eq!(head(b"POST / HTTP/1.1\r\nHost: a"), Parsed::More);
        assert_eq!(head(b""), Parsed::More);
    }

    #[test]
    fn a_final_answer_says_the_connection_closes() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nhello";
        assert_eq!(
            response(r),
            Response::Final {
                len: r.len() - 5,
                head: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n".to_vec()
            }
        );
        assert_eq!(
            response(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2"),
            Response::Interim(25)
        );
        assert!(matches!(
            response(b"HTTP/1.1 101 Switching\r\n\r\n"),
            Response::Final { .. }
        ));
        assert_eq!(response(b"HTTP/1.1 200 OK\r\nA: b"), Response::More);
        assert_eq!(response(b"SSH-2.0-x\r\n"), Response::Other);
        assert_eq!(response(&vec![b'H'; HEAD_MAX]), Response::Other);
    }
}
