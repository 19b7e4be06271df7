//! The endpoints a confined agent may reach (`network_allow`, and its client's own): `host:port`
//! entries, and whether a destination an agent asks for is one of them.
//!
//! A host is a name (`github.com`), a suffix (`*.pypi.org`: its subdomains, not itself), an IPv4
//! address or a bracketed IPv6 one (`[::1]`); the port is required. Names are compared without
//! case and without a trailing dot. An entry allows exactly what it names: a name, that name (the
//! proxy resolves it, never to this machine's own addresses); `localhost`, the loopback addresses
//! it means, `127.0.0.1` and `[::1]`, no other of `127.0.0.0/8`; an address, that address (an
//! IPv4 address mapped into IPv6, `[::ffff:127.0.0.1]`, is the IPv4 address it maps); a port,
//! that port. The unspecified addresses (`0.0.0.0`, `[::]`) name no host and are refused.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What `localhost` means, wherever orch reads it (an entry, a client's target, the proxy's
/// resolution): these two addresses, no other of `127.0.0.0/8`.
pub(crate) const LOCALHOST: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

/// The host of an entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Host {
    /// A name, lowercase, without a trailing dot.
    Name(String),
    /// `*.suffix`: any name ending in `.suffix` (lowercase).
    Suffix(String),
    Ip(IpAddr),
}

/// One `host:port` entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Endpoint {
    pub(crate) host: Host,
    pub(crate) port: u16,
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Suffix(s) => write!(f, "*.{s}"),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Whether `name` is a host name orch accepts: labels of letters, digits, `-` and `_`, separated
/// by dots, at most 253 bytes.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl Host {
    /// A host as a client names it (a `CONNECT` target, a URL's host): a name, an IPv4 address
    /// in its four-number form, an IPv6 address with or without brackets (one that maps an IPv4
    /// address is that address). Not a suffix, not an unspecified address (`0.0.0.0`, `[::]`:
    /// no host), not a number that a resolver would read as an address (`127.1`, `2130706433`).
    pub(crate) fn parse_target(text: &str) -> Option<Host> {
        let text = text.strip_suffix('.').unwrap_or(text);
        let ip = |a: IpAddr| {
            let a = a.to_canonical();
            (!a.is_unspecified()).then_some(Host::Ip(a))
        };
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            return inner
                .parse::<Ipv6Addr>()
                .ok()
                .and_then(|a| ip(IpAddr::V6(a)));
        }
        if let Ok(a) = text.parse::<Ipv4Addr>() {
            return ip(IpAddr::V4(a));
        }
        if let Ok(a) = text.parse::<Ipv6Addr>() {
            return ip(IpAddr::V6(a));
        }
        // A name that is all digits and dots is a malformed address, not a name.
        if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return None;
        }
        is_name(text).then(|| Host::Name(text.to_ascii_lowercase()))
    }

    /// Whether this is `localhost`.
    pub(crate) fn is_localhost(&self) -> bool {
        matches!(self, Host::Name(n) if n == "localhost")
    }

    /// The loopback addresses this host stands for: its own address when it is one, the two
    /// `localhost` means ([`LOCALHOST`]) for it, none for anything else.
    pub(crate) fn loopback_addrs(&self) -> Vec<IpAddr> {
        match self {
            Host::Ip(a) if a.is_loopback() => vec![*a],
            h if h.is_localhost() => LOCALHOST.to_vec(),
            _ => Vec::new(),
        }
    }
}

impl Endpoint {
    /// An entry of `network_allow` (`github.com:443`, `*.pypi.org:443`, `127.0.0.1:5432`,
    /// `[::1]:11434`), or what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<Endpoint, String> {
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(format!(
                "an entry is `host:port`, not a URL: drop `{scheme}://` and any path"
            ));
        }
        let (host, port) = match text.rsplit_once(':') {
            // `::1` without brackets: the last colon is the address's.
            Some((h, _)) if h.contains(':') && !h.starts_with('[') => {
                return Err("an IPv6 address is written in brackets: `[::1]:11434`".into());
            }
            Some((h, p)) => (h, p),
            None => {
                return Err("the port is missing: write `host:port`, as `github.com:443`".into());
            }
        };
        let port: u16 = match port.parse() {
            Ok(0) | Err(_) => {
                return Err(format!(
                    "`{port}` is not a port (1 to 65535): write `host:port`, as `github.com:443`"
                ));
            }
            Ok(p) => p,
        };
        if host == "*" || host.is_empty() {
            return Err(
                "a host is required (a name, `*.` and a suffix, or an address): `*` would allow everything (`network = \"open\"` says that)"
                    .into(),
            );
        }
        if Host::parse_target(host).is_none()
            && host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|a| a.to_canonical().is_unspecified())
        {
            return Err(format!(
                "`{host}` is the unspecified address, which names no host: write the address to reach, as `127.0.0.1`"
            ));
        }
        let host = if let Some(suffix) = host.strip_prefix("*.") {
            let suffix = suffix.strip_suffix('.').unwrap_or(suffix);
            if !is_name(suffix) {
                return Err(format!("`{suffix}` after `*.` is not a host name"));
            }
            Host::Suffix(suffix.to_ascii_lowercase())
        } else {
            Host::parse_target(host).ok_or_else(|| {
                format!("`{host}` is not a host name, an IPv4 address or a bracketed IPv6 address")
            })?
        };
        Ok(Endpoint { host, port })
    }

    /// The endpoint a URL names (`https://api.example.com/v1` is `api.example.com:443`), for the
    /// variables and settings that point a client elsewhere; `None` for what is not an HTTP(S)
    /// URL.
    pub(crate) fn of_url(url: &str) -> Option<Endpoint> {
        let url = url.trim();
        let (default_port, rest) = if let Some(r) = url.strip_prefix("https://") {
            (443, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (80, r)
        } else {
            return None;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        // Credentials in the URL are not the host.
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, p.parse().ok()?),
            _ => (authority, default_port),
        };
        let host = Host::parse_target(host)?;
        (port != 0).then_some(Endpoint { host, port })
    }

    /// Whether a destination a client asked for (`host` as it named it, `port`) is this entry.
    pub(crate) fn allows(&self, host: &Host, port: u16) -> bool {
        if port != self.port {
            return false;
        }
        match (&self.host, host) {
            (Host::Suffix(s), Host::Name(n)) => {
                n.len() > s.len() + 1
                    && n.ends_with(s.as_str())
                    && n[..n.len() - s.len()].ends_with('.')
            }
            // `localhost` is the loopback address it means, no other of `127.0.0.0/8`.
            (l, Host::Ip(a)) if l.is_localhost() => LOCALHOST.contains(a),
            (mine, theirs) => mine == theirs,
        }
    }

    /// The loopback sockets this entry names (where a client may call it directly).
    pub(crate) fn loopback_sockets(&self) -> Vec<SocketAddr> {
        let port = self.port;
        let addrs = self.host.loopback_addrs();
        addrs
            .into_iter()
            .map(|a| SocketAddr::new(a, port))
            .collect()
    }
}

/// The endpoints of one attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AllowList(pub(crate) Vec<Endpoint>);

impl AllowList {
    /// Whether `host:port` is allowed.
    pub(crate) fn allows(&self, host: &Host, port: u16) -> bool {
        self.0.iter().any(|e| e.allows(host, port))
    }

    /// Every loopback socket the entries name: each is reachable in the namespace on its own
    /// address and port.
    pub(crate) fn loopback_sockets(&self) -> Vec<SocketAddr> {
        let mut out: Vec<SocketAddr> = Vec::new();
        for s in self.0.iter().flat_map(Endpoint::loopback_sockets) {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    /// Adds `e` unless it is there.
    pub(crate) fn add(&mut self, e: Endpoint) {
        if !self.0.contains(&e) {
            self.0.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Endpoint {
        Endpoint::parse(s).expect(s)
    }

    #[test]
    fn entries_parse_as_written() {
        for (text, shown) in [
            ("github.com:443", "github.com:443"),
            ("GitHub.COM.:443", "github.com:443"),
            ("*.pypi.org:443", "*.pypi.org:443"),
            ("127.0.0.1:5432", "127.0.0.1:5432"),
            ("[::1]:11434", "[::1]:11434"),
            ("localhost:8080", "localhost:8080"),
        ] {
            assert_eq!(ep(text).to_string(), shown);
        }
    }

    #[test]
    fn bad_entries_say_why() {
        for (text, why) in [
            ("github.com", "port is missing"),
            ("github.com:0", "not a port"),
            ("github.com:https", "not a port"),
            ("github.com:70000", "not a port"),
            ("::1:80", "brackets"),
            ("*:443", "host is required"),
            (":443", "host is required"),
            ("*.:443", "not a host name"),
            ("exa mple.com:443", "not a host name"),
            ("1.2.3:443", "not a host name"),
            ("http://x.com:443", "not a URL"),
            ("0.0.0.0:80", "unspecified address"),
            ("[::]:80", "unspecified address"),
            ("[::ffff:0.0.0.0]:80", "unspecified address"),
            ("127.1:80", "not a host name"),
            ("2130706433:80", "not a host name"),
        ] {
            let e = Endpoint::parse(text).expect_err(text);
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn a_destination_matches_its_entry_only() {
        let list = AllowList(vec![
            ep("github.com:443"),
            ep("*.pypi.org:443"),
            ep("127.0.0.1:5432"),
            ep("localhost:8080"),
        ]);
        let t = |h: &str| Host::parse_target(h).expect(h);
        assert!(list.allows(&t("github.com"), 443));
        assert!(list.allows(&t("GITHUB.com."), 443));
        assert!(!list.allows(&t("github.com"), 80));
        assert!(!list.allows(&t("api.github.com"), 443));
        assert!(!list.allows(&t("evilgithub.com"), 443));
        assert!(list.allows(&t("files.pypi.org"), 443));
        assert!(!list.allows(&t("pypi.org"), 443));
        assert!(!list.allows(&t("evilpypi.org"), 443));
        assert!(list.allows(&t("127.0.0.1"), 5432));
        assert!(!list.allows(&t("127.0.0.2"), 5432));
        assert!(!list.allows(&t("localhost"), 5432));
        assert!(list.allows(&t("localhost"), 8080));
        assert!(list.allows(&t("127.0.0.1"), 8080));
        assert!(list.allows(&t("[::1]"), 8080));
        assert!(list.allows(&t("::1"), 8080));
        assert_eq!(
            list.loopback_sockets(),
            vec![
                "127.0.0.1:5432".parse().expect("addr"),
                "127.0.0.1:8080".parse().expect("addr"),
                "[::1]:8080".parse().expect("addr"),
            ]
        );
    }

    #[test]
    fn localhost_is_the_loopback_address_it_means_and_no_other() {
        let list = AllowList(vec![ep("localhost:8080")]);
        let t = |h: &str| Host::parse_target(h);
        for allowed in [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "127.0.0.1",
            "[::1]",
            "::1",
            "[::ffff:127.0.0.1]",
            "[0:0:0:0:0:ffff:7f00:1]",
        ] {
            let h = t(allowed).unwrap_or_else(|| panic!("{allowed} is a host"));
            assert!(list.allows(&h, 8080), "{allowed}");
            assert!(!list.allows(&h, 8081), "{allowed} on another port");
        }
        // Other loopback addresses, other spellings of them, and what a resolver would read as
        // an address: refused (another host) or not a host at all.
        for refused in [
            "127.0.0.2",
            "127.3.4.5",
            "127.255.255.255",
            "[::ffff:127.0.0.2]",
            "[::ffff:7f00:2]",
            "[::127.0.0.1]",
            "0x7f000001",
            "localhost.localdomain",
            "sub.localhost",
            "[fe80::1]",
        ] {
            if let Some(h) = t(refused) {
                assert!(!list.allows(&h, 8080), "{refused} is allowed as {h}");
            }
        }
        for not_a_host in [
            "127.1",
            "127.0.1",
            "2130706433",
            "0177.0.0.1",
            "127.000.000.001",
            "0.0.0.0",
            "[::]",
            "::",
            "[::ffff:0.0.0.0]",
            "localhost..",
            "",
        ] {
            assert_eq!(t(not_a_host), None, "{not_a_host}");
        }
        // An address mapped into IPv6 is the IPv4 address it maps, shown so.
        assert_eq!(
            t("[::ffff:127.0.0.2]").map(|h| h.to_string()).as_deref(),
            Some("127.0.0.2")
        );
        assert_eq!(ep("[::ffff:127.0.0.1]:5432").to_string(), "127.0.0.1:5432");
        // Where a client may call it directly: those two addresses only.
        assert_eq!(
            list.loopback_sockets(),
            vec![
                "127.0.0.1:8080".parse().expect("addr"),
                "[::1]:8080".parse().expect("addr"),
            ]
        );
        assert_eq!(
            AllowList(vec![ep("[::ffff:127.0.0.2]:9")]).loopback_sockets(),
            vec!["127.0.0.2:9".parse().expect("addr")]
        );
    }

    #[test]
    fn a_url_names_its_endpoint() {
        for (url, shown) in [
            ("https://api.anthropic.com", "api.anthropic.com:443"),
            ("https://api.openai.com/v1", "api.openai.com:443"),
            ("http://127.0.0.1:41234/v1", "127.0.0.1:41234"),
            ("http://[::1]:8080/x?y", "[::1]:8080"),
            ("http://user:pw@proxy.example:3128/", "proxy.example:3128"),
            ("http://localhost", "localhost:80"),
        ] {
            assert_eq!(
                Endpoint::of_url(url).map(|e| e.to_string()).as_deref(),
                Some(shown)
            );
        }
        for url in [
            "ftp://x.com",
            "api.openai.com",
            "https://",
            "https://x.com:0/",
        ] {
            assert_eq!(Endpoint::of_url(url), None, "{url}");
        }
    }
}
