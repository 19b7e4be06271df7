//! The network probe's bench, shared by the agents' and the merge commands' network tests: the
//! loopback servers it aims at, its argv, the parse of its results, the names of its attempts,
//! and `orch` run where network namespaces cannot be made.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use super::sink::{Server, python};
use super::{Repo, fixtures};

/// The servers of a test: the allowed one, another port, and the allowed port on another
/// loopback address.
pub struct Servers {
    pub allowed: Server,
    pub other: Server,
    pub other_address: Server,
}

pub fn servers() -> Servers {
    let allowed = Server::start("127.0.0.1:0", "allowed-server");
    let other = Server::start("127.0.0.1:0", "other-server");
    let other_address = Server::start(
        &format!("127.0.0.2:{}", allowed.addr.port()),
        "other-address-server",
    );
    Servers {
        allowed,
        other,
        other_address,
    }
}

/// The probe's argv aimed at `s`, then `more` (`-`: its results to its standard output).
pub fn probe_argv(s: &Servers, more: &[&str]) -> Vec<String> {
    let mut argv = vec![
        python(),
        fixtures().join("net_probe.py").display().to_string(),
        s.allowed.addr.port().to_string(),
        s.other.addr.port().to_string(),
    ];
    argv.extend(more.iter().map(|m| m.to_string()));
    argv
}

/// `name -> (allowed, seconds, detail)` of the probe's result lines in `text`.
pub fn parse_results(text: &str) -> BTreeMap<String, (bool, f64, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split(' ');
            let name = it.next()?.to_string();
            let allowed = it.next()? == "allowed";
            let secs: f64 = it.next()?.parse().ok()?;
            Some((name, (allowed, secs, it.collect::<Vec<_>>().join(" "))))
        })
        .collect()
}

/// The ways out the probe tries that confinement allows.
pub const ALLOWED: [&str; 3] = [
    "direct_allowed",
    "proxy_connect_allowed",
    "proxy_plain_allowed",
];

/// The ways out the probe tries that confinement refuses.
pub const DENIED: [&str; 8] = [
    "direct_other_port",
    "direct_other_address",
    "proxy_connect_other",
    "proxy_connect_name",
    "dns_udp",
    "raw_socket",
    "daemon_other_port",
    "daemon_connect_other",
];

/// `orch ARGS` in `repo` as [`Repo::orch`] runs it, under a filter that makes `unshare` fail
/// (as where namespaces are forbidden).
pub fn orch_without_namespaces(repo: &Repo, args: &[&str]) -> Command {
    let mut c = Command::new(python());
    c.current_dir(repo.root())
        .arg(fixtures().join("../no_netns.py"))
        .arg(env!("CARGO_BIN_EXE_orch"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PWD", repo.root())
        .env("HOME", repo.home())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("ORCH_SANDBOX", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}
