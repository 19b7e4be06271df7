//! A `CONNECT` tunnel to an allowed host: what its first bytes are ([`opening`]: TLS, plain
//! HTTP or something else), and whether each request of plain HTTP in it is for the tunnel's host
//! and port ([`in_tunnel`]).

use super::allow::Host;
use super::http::{HEAD_MAX, Head, authority, names, shown};

/// What orch makes of a request inside a tunnel to an allowed host.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum InTunnel {
    /// It is for the tunnel's host and port: passed on as it is.
    Pass,
    /// It names another host or port (its target or its `Host`): refused.
    Names(String),
    /// It cannot be judged, with why (refused).
    Bad(String),
}

/// Judges a request inside a tunnel to `host:port` whose opening is plain HTTP: its target
/// (`/path`, `*`, or a URL or `CONNECT` authority naming the tunnel's host and port) and its
/// `Host` must name the tunnel's host and port; a protocol switch (`Upgrade`) is refused, since
/// what follows it could not be judged.
pub(super) fn in_tunnel(h: &Head, host: &Host, port: u16) -> InTunnel {
    let target = h.target.as_str();
    let authority_named = if h.method.eq_ignore_ascii_case("CONNECT") {
        Some((target, None))
    } else if target.starts_with('/') || target == "*" {
        None
    } else {
        let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
        let (rest, default) = if lower.starts_with("http://") {
            (&target[7..], 80)
        } else if lower.starts_with("https://") {
            (&target[8..], 443)
        } else {
            return InTunnel::Names(h.shown_target());
        };
        let cut = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        Some((&rest[..cut], Some(default)))
    };
    if let Some((auth, default)) = authority_named {
        let same = !auth.contains('@')
            && authority(auth, default).is_some_and(|(h, p)| &h == host && p == port);
        if !same {
            return InTunnel::Names(h.shown_target());
        }
    }
    match h.host() {
        Some(value) if !names(value, host, port) => return InTunnel::Names(shown(value)),
        // A server of several sites answers a request that names none (HTTP/1.0 without
        // `Host`, its target a path) for whichever it likes: one the allowed name is not. As a
        // TLS opening without a server name, only one to an address passes.
        None if authority_named.is_none() && !matches!(host, Host::Ip(_)) => {
            return InTunnel::Bad(format!(
                "a request without a `Host` header in a tunnel to {host}:{port}: a server of several sites would answer it for one orch did not judge"
            ));
        }
        _ => {}
    }
    if h.upgrades() {
        return InTunnel::Bad(
            "a protocol switch (`Upgrade`) in a tunnel of plain HTTP: what follows it could not be judged"
                .into(),
        );
    }
    InTunnel::Pass
}

/// What the first bytes a client sends through a tunnel are.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Opening {
    /// Not known yet: more bytes are needed.
    More,
    /// TLS whose `ClientHello` names this server.
    Names(String),
    /// TLS whose `ClientHello` names no server (as clients do for an address).
    Unnamed,
    /// TLS orch cannot judge (another record first, a `ClientHello` too long or unreadable):
    /// refused, with why.
    Unjudged(String),
    /// Plain HTTP: every request in the tunnel is judged.
    Http,
    /// Something else (TLS without a server name, another protocol): passed on unread.
    Nothing,
}

/// A `tchar` of HTTP: what a method is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Reads the opening of a tunnel from `buf`, the bytes received so far: a TLS `ClientHello`
/// (its server name), or plain HTTP (a method, a space, and a first line that names
/// `HTTP/`, whatever else is wrong with it: a request a lenient server could read is judged,
/// and refused if it is not one orch reads the same), or anything else.
pub(super) fn opening(buf: &[u8]) -> Opening {
    if buf.is_empty() {
        return Opening::More;
    }
    match super::tls::starts_as_record(buf) {
        Some(true) => return super::tls::server_name(buf),
        None => return Opening::More,
        Some(false) => {}
    }
    let rest = &buf[buf
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(buf.len())..];
    let method = rest.iter().take_while(|b| is_tchar(**b)).count();
    if method == rest.len() {
        // Still in the method (or in the blank lines before it).
        return if method < 32 && buf.len() < HEAD_MAX {
            Opening::More
        } else {
            Opening::Nothing
        };
    }
    if method == 0 || !matches!(rest[method], b' ' | b'\t') {
        return Opening::Nothing;
    }
    let names_http = |line: &[u8]| line.windows(5).any(|w| w.eq_ignore_ascii_case(b"HTTP/"));
    match memchr::memchr(b'\n', rest) {
        Some(end) if names_http(&rest[..end]) => Opening::Http,
        Some(_) => Opening::Nothing,
        None if buf.len() < HEAD_MAX => Opening::More,
        None => Opening::Http,
    }
}

/// Whether a name the tunnel's opening gave (`named`: a TLS server name) is the host the tunnel
/// was allowed for.
pub(super) fn names_host(named: &str, host: &Host) -> bool {
    authority(named, Some(1)).is_some_and(|(h, _)| &h == host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::net::http::{Parsed, head};

    fn host(h: &str) -> Host {
        Host::parse_target(h).expect(h)
    }

    fn tunneled(req: &str) -> InTunnel {
        let Parsed::Head(h) = head(req.as_bytes()) else {
            panic!("{req}")
        };
        in_tunnel(&h, &host("127.0.0.1"), 8080)
    }

    #[test]
    fn a_request_in_a_tunnel_is_for_the_tunnels_host_and_port() {
        for ok in [
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
            "GET /x HTTP/1.0\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
            "GET http://127.0.0.1:8080/x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
            "GET HTTP://[::ffff:127.0.0.1]:8080 HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(tunneled(ok), InTunnel::Pass, "{ok}");
        }
        for (req, named) in [
            (
                "GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n",
                "evil.example",
            ),
            (
                "GET / HTTP/1.1\r\nHost: 127.0.0.2:8080\r\n\r\n",
                "127.0.0.2:8080",
            ),
            ("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "127.0.0.1"),
            (
                "GET / HTTP/1.1\r\nHost: 127.0.0.1:9090\r\n\r\n",
                "127.0.0.1:9090",
            ),
            (
                "GET http://127.0.0.2:8080/ HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
                "http://127.0.0.2:8080/",
            ),
            (
                "GET http://u@127.0.0.1:8080/ HTTP/1.1\r\n\r\n",
                "http://u@127.0.0.1:8080/",
            ),
            (
                "CONNECT evil.example:443 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
                "evil.example:443",
            ),
            ("GET ftp://x/ HTTP/1.1\r\n\r\n", "ftp://x/"),
        ] {
            assert_eq!(tunneled(req), InTunnel::Names(named.into()), "{req}");
        }
        assert!(matches!(
            tunneled("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: h2c\r\n\r\n"),
            InTunnel::Bad(_)
        ));
    }

    /// A request that names no host (HTTP/1.0, a path) passes in a tunnel to an address only:
    /// to a name, a server of several sites would answer it for one orch did not judge.
    #[test]
    fn a_request_without_host_passes_to_an_address_only() {
        let name = host("api.example.com");
        let judge = |req: &str, h: &Host, port: u16| {
            let Parsed::Head(head) = head(req.as_bytes()) else {
                panic!("{req}")
            };
            in_tunnel(&head, h, port)
        };
        for req in [
            "GET / HTTP/1.0\r\n\r\n",
            "GET /v1/x HTTP/1.0\r\nAccept: */*\r\n\r\n",
            "OPTIONS * HTTP/1.0\r\n\r\n",
            "POST /v1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        ] {
            assert!(matches!(judge(req, &name, 443), InTunnel::Bad(_)), "{req}");
            assert_eq!(judge(req, &host("127.0.0.1"), 443), InTunnel::Pass, "{req}");
        }
        for req in [
            "GET / HTTP/1.0\r\nHost: api.example.com:443\r\n\r\n",
            "GET https://api.example.com/x HTTP/1.0\r\n\r\n",
        ] {
            assert_eq!(judge(req, &name, 443), InTunnel::Pass, "{req}");
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
        assert_eq!(opening(&client_hello("")), Opening::Unnamed);
        // What starts as TLS is judged as TLS, and fails closed.
        assert_eq!(opening(&[0x16]), Opening::More);
        let mut ccs_first = vec![0x14, 3, 3, 0, 1, 1];
        ccs_first.extend_from_slice(&hello);
        let mut app_first = vec![0x17, 3, 3, 0, 2, 0, 0];
        app_first.extend_from_slice(&hello);
        let mut alert_first = vec![0x15, 3, 1, 0, 2, 1, 0];
        alert_first.extend_from_slice(&hello);
        let mut finished = client_hello("evil.example");
        finished[5] = 20;
        let mut cut = client_hello("evil.example");
        // The extensions' length says more than the message holds.
        let at = cut.len() - "evil.example".len() - 11;
        cut[at] = 0xff;
        // Two names, in one list or in two extensions: a server may take either.
        let one = client_hello("api.example");
        let name = b"api.example";
        let at = one.len() - name.len() - 9; // the extension's type
        let mut two_in_list = one[..at].to_vec();
        let entry = |n: &[u8]| {
            let mut e = vec![0];
            e.extend_from_slice(&(n.len() as u16).to_be_bytes());
            e.extend_from_slice(n);
            e
        };
        let mut list = entry(name);
        list.extend(entry(b"evil.example"));
        let mut ext = vec![0, 0];
        ext.extend_from_slice(&((list.len() + 2) as u16).to_be_bytes());
        ext.extend_from_slice(&(list.len() as u16).to_be_bytes());
        ext.extend(list);
        two_in_list.extend(ext.iter());
        let mut two_exts = one.clone();
        two_exts.extend_from_slice(&one[at..]);
        for doubled in [&mut two_in_list, &mut two_exts] {
            // The lengths of the record, the handshake message and the extensions, made true.
            let grown = doubled.len() - one.len();
            let fix = |b: &mut Vec<u8>, i: usize, add: usize| {
                let v = u16::from_be_bytes([b[i], b[i + 1]]) as usize + add;
                b[i..i + 2].copy_from_slice(&(v as u16).to_be_bytes());
            };
            fix(doubled, 3, grown);
            fix(doubled, 7, grown);
            fix(doubled, at - 2, grown);
        }
        for unjudged in [
            ccs_first,
            app_first,
            alert_first,
            finished,
            cut,
            two_in_list,
            two_exts,
        ] {
            assert!(
                matches!(opening(&unjudged), Opening::Unjudged(_)),
                "{unjudged:?}: {:?}",
                opening(&unjudged)
            );
        }
        // A `ClientHello` past its bound, across records of 16 KiB of padding each.
        let mut long = Vec::new();
        let mut hs = vec![1, 0x02, 0x00, 0x00]; // a message of 128 KiB, 64 KiB of it sent
        hs.extend_from_slice(&[0u8; 65536]);
        for piece in hs.chunks(16384) {
            long.extend_from_slice(&[0x16, 3, 1]);
            long.extend_from_slice(&(piece.len() as u16).to_be_bytes());
            long.extend_from_slice(piece);
        }
        assert_eq!(opening(&long[..20000]), Opening::More);
        assert!(matches!(opening(&long), Opening::Unjudged(_)));
        // Plain HTTP is judged request by request, whatever its first request says.
        for http in [
            &b"GET / HTTP/1.1\r\nHost: a.b\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\n",
            b"\r\n\r\nGET / HTTP/1.1\r\n",
            b"get  /  http/1.1\n",
            b"GET\t/ HTTP/1.1\r\n",
        ] {
            assert_eq!(opening(http), Opening::Http, "{http:?}");
        }
        for more in [&b"GE"[..], b"\r\n", b"GET / HTTP/1.1", b"GET /"] {
            assert_eq!(opening(more), Opening::More, "{more:?}");
        }
        for other in [
            &b"SSH-2.0-OpenSSH\r\n"[..],
            b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
            b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
            b"*1\r\n$4\r\nPING\r\n",
            b"HELO example.com\r\n",
        ] {
            assert_eq!(opening(other), Opening::Nothing, "{other:?}");
        }
        assert!(names_host("API.example.com:443", &host("api.example.com")));
        assert!(!names_host("evil.example", &host("api.example.com")));
    }
}
