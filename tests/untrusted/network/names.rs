//! A name in `network_allow` is resolved by orch, and never leads its proxy to this machine's
//! own addresses (DNS rebinding): an allowed name that resolves to `127.0.0.2`, `::1`,
//! `127.0.0.1`, `0.0.0.0` or a link-local address reaches nothing, though listeners wait on
//! the loopback ones, through `CONNECT` and plain requests, sandbox off and on. A name that
//! resolves to this machine's address on its network (not loopback) is reached: the book says
//! so. The names are resolved through an `/etc/hosts` of the test's, bind-mounted over the real
//! one in a mount namespace of `orch up`'s own (root only).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;

use super::loopback::Recorder;
use crate::support::sink::python;
use crate::support::{Repo, fixtures, one_task, toml_array};

/// This machine's address on its default route (no packet is sent), or `None`.
fn lan_address() -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    Some(s.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback())
}

/// `cmd` run in a mount namespace of its own where `/etc/hosts` is `hosts`.
fn with_hosts(cmd: &Command, hosts: &std::path::Path) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg("mount --bind \"$0\" /etc/hosts && exec \"$@\"")
        .arg(hosts)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    if let Some(d) = cmd.get_current_dir() {
        c.current_dir(d);
    }
    c.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c
}

#[test]
fn an_allowed_name_never_leads_the_proxy_to_this_machines_own_addresses() {
    let probe = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: cannot make a mount namespace (not root?)");
        return;
    }
    let Some(lan) = lan_address() else {
        eprintln!("skipped: this machine has no address but loopback");
        return;
    };
    for sandbox in ["off", "on"] {
        if sandbox == "on" && !crate::landlock() {
            continue;
        }
        one_run(lan, sandbox);
    }
}

fn one_run(lan: IpAddr, sandbox: &str) {
    // One port P free on every address at once.
    let (p, own, on_lan) = (0..50)
        .find_map(|_| {
            let first = Recorder::bind("127.0.0.1:0".parse().ok()?).ok()?;
            let p = first.addr.port();
            let mut own = vec![first];
            for a in [format!("127.0.0.2:{p}"), format!("[::1]:{p}")] {
                own.push(Recorder::bind(a.parse().ok()?).ok()?);
            }
            let on_lan = Recorder::bind(SocketAddr::new(lan, p)).ok()?;
            Some((p, own, on_lan))
        })
        .expect("a port free on 127.0.0.1, 127.0.0.2, [::1] and this machine's address");
    let own_names = [
        ("rebind-v4.orch.test", "127.0.0.2"),
        ("rebind-v6.orch.test", "::1"),
        ("rebind-lo.orch.test", "127.0.0.1"),
        ("rebind-any.orch.test", "0.0.0.0"),
        ("rebind-link.orch.test", "169.254.7.7"),
    ];
    let lan_name = "lan.orch.test";
    let dir = tempfile::tempdir().expect("tempdir");
    let hosts = dir.path().join("hosts");
    let mut text = String::from("127.0.0.1 localhost\n::1 localhost\n");
    for (name, addr) in own_names {
        text.push_str(&format!("{addr} {name}\n"));
    }
    text.push_str(&format!("{lan} {lan_name}\n"));
    std::fs::write(&hosts, text).expect("write hosts");

    let repo = Repo::bare_minimum();
    repo.write("docs/plans/a.md", &one_task("A", "Hostile work"));
    let mut argv = vec![
        python(),
        fixtures()
            .join("hostile_net_loopback.py")
            .display()
            .to_string(),
        "names".to_string(),
        p.to_string(),
        "0".to_string(),
    ];
    argv.extend(own_names.iter().map(|(n, _)| n.to_string()));
    argv.push(lan_name.to_string());
    let allow: Vec<String> = own_names
        .iter()
        .map(|(n, _)| format!("{n}:{p}"))
        .chain([format!("{lan_name}:{p}")])
        .collect();
    repo.manifest(
        &toml_array(&argv),
        "report = \"exit\"",
        &format!(
            "retries = 0\nnetwork = \"confined\"\nnetwork_allow = {}",
            toml_array(&allow)
        ),
        &[("a", "")],
    );
    repo.commit_all("plans");
    let mut up = repo.orch(&["up", "--json", "a"]);
    up.env("ORCH_SANDBOX", sandbox);
    let (code, out, err) = repo.run_cmd(&mut with_hosts(&up, &hosts));
    assert_eq!(code, 0, "sandbox {sandbox}: orch up failed\n{out}\n{err}");
    let text = repo.git(&["show", "plan/a:results.txt"]);
    let got: BTreeMap<String, (bool, String)> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ' ');
            let name = it.next()?.to_string();
            let ok = it.next()? == "allowed";
            Some((name, (ok, it.next().unwrap_or("").to_string())))
        })
        .collect();
    let log = String::from_utf8_lossy(&repo.read(".orch/logs/a/1.1.log")).into_owned();
    assert_eq!(
        got.len(),
        (own_names.len() + 1) * 2,
        "sandbox {sandbox}: {got:?}\n{log}"
    );
    for (name, (ok, detail)) in &got {
        assert_eq!(
            *ok,
            name.contains("lan_orch_test"),
            "sandbox {sandbox}: {name}: {detail}\n{log}"
        );
    }
    for r in &own {
        assert_eq!(
            (r.connections(), r.bytes()),
            (0, String::new()),
            "sandbox {sandbox}: {} was reached through a name\n{log}",
            r.addr
        );
    }
    let seen = on_lan.bytes();
    for how in ["connect", "plain"] {
        assert!(
            seen.contains(&format!("/mark-{how}-lan_orch_test HTTP/1.1\r\n")),
            "sandbox {sandbox}: {lan_name} ({lan}) was not reached by {how}: {seen:?}\n{log}"
        );
    }
}
