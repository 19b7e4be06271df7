//! Exfiltration (the network): a hostile agent, the daemon it leaves behind and the plan's
//! check each try to send a secret out of a confined attempt by every way they know: HTTP to
//! another port directly (a tool that ignores the proxy variables) and through orch's proxy,
//! `CONNECT` to another port and to a host not allowed, a forged `Host` header (in a plain
//! request and inside a tunnel) and a forged TLS server name through a tunnel to the allowed
//! endpoint, TLS that orch cannot judge (no server name to a host allowed by name, another record
//! before the `ClientHello`, a `ClientHello` past its bound), a DNS query over UDP carrying the
//! secret. Nothing reaches the evil servers, nothing
//! forged reaches the allowed one, every try fails and the log names each destination. With
//! and without Landlock: the rule is orch's. Only loopback addresses are used.

use std::collections::BTreeMap;

use crate::support::sink::{Server, UdpSink, python};
use crate::support::{Repo, fixtures, one_task, toml_array};

mod flood;
mod loopback;
mod names;

const SECRET: &str = "s3cr3t-f0r-n0-0ne";

/// The tries of every driver: `driver-name -> (allowed, detail)`.
fn tries(repo: &Repo) -> BTreeMap<String, (bool, String)> {
    let committed = repo.git_out(&["show", "plan/a:exfil.txt"]);
    let mut text = String::from_utf8_lossy(&committed.stdout).into_owned();
    // The check runs after the agent's tries were committed... or before: read the worktree too.
    if let Ok(t) = std::fs::read_to_string(repo.worktree("a").join("exfil.txt")) {
        text.push_str(&t);
    }
    text.lines()
        .filter_map(|l| {
            let mut it = l.split(' ');
            let name = it.next()?.to_string();
            let ok = it.next()? == "allowed";
            Some((name, (ok, it.collect::<Vec<_>>().join(" "))))
        })
        .collect()
}

#[test]
fn an_agent_its_daemon_and_its_check_cannot_send_a_secret_out() {
    for sandbox in ["off", "on"] {
        if sandbox == "on" && !crate::landlock() {
            continue;
        }
        let allowed = Server::start("127.0.0.1:0", "model-api");
        let evil = Server::start("127.0.0.1:0", "evil");
        let evil_udp = UdpSink::start();
        let repo = Repo::bare_minimum();
        repo.write("docs/plans/a.md", &one_task("A", "Hostile work"));
        let script = fixtures().join("hostile_net_exfil.py");
        let argv = |who: &str| {
            toml_array(&[
                python(),
                script.display().to_string(),
                SECRET.to_string(),
                allowed.addr.port().to_string(),
                evil.addr.port().to_string(),
                evil_udp.addr.port().to_string(),
                who.to_string(),
            ])
        };
        repo.manifest(
            &argv("agent"),
            "report = \"exit\"",
            &format!(
                "retries = 0\nnetwork_allow = [\"127.0.0.1:{p}\", \"localhost:{p}\"]",
                p = allowed.addr.port()
            ),
            &[("a", &format!("check = {}", argv("check")))],
        );
        repo.commit_all("plans");
        let main = repo.rev("main");
        let (code, out, err) = repo.run_cmd(
            repo.orch(&["up", "--json", "a"])
                .env("ORCH_SANDBOX", sandbox),
        );
        assert_eq!(code, 0, "sandbox {sandbox}: orch up failed\n{out}\n{err}");
        let got = tries(&repo);
        let log = String::from_utf8_lossy(&repo.read(".orch/logs/a/1.1.log")).into_owned();
        for driver in ["agent", "daemon", "check"] {
            let mine: Vec<_> = got
                .iter()
                .filter(|(k, _)| k.starts_with(&format!("{driver}-")))
                .collect();
            assert_eq!(
                mine.len(),
                12,
                "sandbox {sandbox}: {driver} did not try everything: {got:?}\n{log}"
            );
            for (name, (ok, detail)) in mine {
                assert!(!ok, "sandbox {sandbox}: {name} got out ({detail})\n{log}");
            }
        }
        // Nothing reached the evil servers; nothing forged reached the model's.
        assert_eq!(evil.hits(), Vec::<String>::new(), "sandbox {sandbox}");
        assert_eq!(evil_udp.got(), Vec::<Vec<u8>>::new(), "sandbox {sandbox}");
        for req in allowed.raw() {
            let text = String::from_utf8_lossy(&req);
            assert!(
                !text.contains("evil.example") && !text.contains(SECRET),
                "sandbox {sandbox}: the allowed endpoint got a forged request: {text}"
            );
        }
        // Each destination named in the log.
        let port = evil.addr.port();
        for dest in [
            format!("refused 127.0.0.1:{port} (a connection to a port where nothing listens"),
            format!("refused 127.0.0.1:{port} (plain HTTP through orch's proxy"),
            format!("refused 127.0.0.1:{port} (CONNECT through orch's proxy"),
            "refused evil.example:443 (CONNECT through orch's proxy".to_string(),
            format!(
                "refused evil.example (named in a tunnel to 127.0.0.1:{}",
                allowed.addr.port()
            ),
            format!(
                "refused evil.example (named by the Host header of a plain request to 127.0.0.1:{}",
                allowed.addr.port()
            ),
            format!(
                "refused 127.0.0.1:{} (UDP to a port where nothing listens",
                evil_udp.addr.port()
            ),
            format!(
                "refused localhost:{} (a TLS `ClientHello` without a server name",
                allowed.addr.port()
            ),
            format!(
                "refused 127.0.0.1:{} (TLS orch cannot judge in a tunnel to it: a TLS record of type 20",
                allowed.addr.port()
            ),
            format!(
                "refused 127.0.0.1:{} (TLS orch cannot judge in a tunnel to it: a TLS record of type 21",
                allowed.addr.port()
            ),
            format!(
                "refused 127.0.0.1:{} (TLS orch cannot judge in a tunnel to it: a `ClientHello` not whole",
                allowed.addr.port()
            ),
        ] {
            assert!(
                log.contains(&dest),
                "sandbox {sandbox}: `{dest}` not logged\n{log}"
            );
        }
        assert_eq!(repo.rev("main"), main, "main moved");
        assert_eq!(repo.task("a", "1.1")["status"], "completed");
    }
}

#[test]
fn an_agent_cannot_claim_another_attempts_network() {
    // Plan b may reach the server; plan a may not, and tries to take b's network: it hands a
    // listener on b's endpoint (in its own namespace) to b's unix socket, from itself and from
    // a double-forked daemon, and to its own. The rule is orch's (who started the process that
    // hands over), so Landlock is off here (the agents share a flag file).
    let target = Server::start("127.0.0.1:0", "b-only");
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/a.md", &one_task("A", "Claim b's network"));
    repo.write("docs/plans/b.md", &one_task("B", "Wait"));
    let flag = repo.outside("flag");
    let hostile = toml_array(&[
        python(),
        fixtures()
            .join("hostile_net_handover.py")
            .display()
            .to_string(),
        target.addr.port().to_string(),
        flag.display().to_string(),
    ]);
    let wait = toml_array(&[
        "sh".to_string(),
        "-c".to_string(),
        format!(
            "i=0; while [ ! -e '{}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done",
            flag.display()
        ),
    ]);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nmax_agents = 2\n\n\
             [agents.a]\ncommand = {hostile}\nreport = \"exit\"\n\n\
             [agents.b]\ncommand = {wait}\nreport = \"exit\"\nnetwork_allow = [\"127.0.0.1:{}\"]\n\n\
             [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\nagent = \"a\"\n\n\
             [[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\nagent = \"b\"\n",
            target.addr.port()
        ),
    );
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 0, "orch up failed\n{out}\n{err}");
    let text = repo.git(&["show", "plan/a:handover.txt"]);
    let got: BTreeMap<&str, (&str, &str)> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ' ');
            Some((it.next()?, (it.next()?, it.next().unwrap_or(""))))
        })
        .collect();
    let log_a = String::from_utf8_lossy(&repo.read(".orch/logs/a/1.1.log")).into_owned();
    // Its own attempt takes the listener of the agent and of its double-forked daemon (which
    // stays below the attempt's wrapper: the attempt's by where orch put it), but as what it is
    // there: a destination not allowed (logged); b's refuses both.
    for name in ["agent-handover-own", "daemon-handover-own"] {
        assert_eq!(
            got.get(name).map(|g| g.0),
            Some("allowed"),
            "{name}: {text}"
        );
    }
    for name in ["agent-handover-other", "daemon-handover-other"] {
        let (verdict, detail) = got
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing: {text}"));
        assert_eq!(*verdict, "denied", "{name} was taken: {text}");
        assert!(
            detail.contains("not_one_of_this_attempt"),
            "{name}: {detail}"
        );
    }
    for name in ["agent-send", "daemon-send"] {
        assert_eq!(got.get(name).map(|g| g.0), Some("denied"), "{name}: {text}");
    }
    assert_eq!(
        target.hits(),
        Vec::<String>::new(),
        "b's endpoint got a's data"
    );
    let port = target.addr.port();
    assert!(
        log_a.contains(&format!("refused 127.0.0.1:{port} (a direct connection")),
        "{log_a}"
    );
}

/// The tries printed into `log` by the hostile sender (`exfil: WHO-name allowed|denied …`).
fn printed_tries(log: &str) -> BTreeMap<String, (bool, String)> {
    log.lines()
        .filter_map(|l| l.strip_prefix("exfil: "))
        .filter_map(|l| {
            let mut it = l.split(' ');
            let name = it.next()?.to_string();
            let ok = it.next()? == "allowed";
            Some((name, (ok, it.collect::<Vec<_>>().join(" "))))
        })
        .collect()
}

#[test]
fn verify_and_a_resolver_cannot_send_a_secret_out() {
    // `verify` (of `orch merge`, and of the resolution's gate) and a resolving agent run code
    // the agents wrote, with no person watching: the same sender tries every way out from
    // each, and from a double-forked daemon of each. The rule is orch's, with and without
    // Landlock.
    for sandbox in ["off", "on"] {
        if sandbox == "on" && !crate::landlock() {
            continue;
        }
        let allowed = Server::start("127.0.0.1:0", "model-api");
        let evil = Server::start("127.0.0.1:0", "evil");
        let evil_udp = UdpSink::start();
        let repo = Repo::builder().identity_in_config().build();
        let sender = |who: &str| {
            vec![
                python(),
                fixtures()
                    .join("hostile_net_exfil.py")
                    .display()
                    .to_string(),
                SECRET.to_string(),
                allowed.addr.port().to_string(),
                evil.addr.port().to_string(),
                evil_udp.addr.port().to_string(),
                who.to_string(),
            ]
        };
        let mut resolver = vec![
            "sh".to_string(),
            fixtures().join("resolver.sh").display().to_string(),
            "probe".to_string(),
        ];
        resolver.extend(sender("agent"));
        let write = toml_array(&[
            "sh".to_string(),
            fixtures().join("write.sh").display().to_string(),
            "shared.txt".to_string(),
        ]);
        let mut manifest = format!(
            "[defaults]\nagent = \"w\"\nmax_agents = 2\nretries = 0\nintegrate = \"off\"\n\
             resolve = \"fixer\"\nverify = {verify}\nnetwork_allow = [\"127.0.0.1:{port}\", \"localhost:{port}\"]\n\n\
             [agents.w]\ncommand = {write}\nreport = \"exit\"\n\n\
             [agents.fixer]\ncommand = {fixer}\n",
            verify = toml_array(&sender("agent")),
            port = allowed.addr.port(),
            fixer = toml_array(&resolver),
        );
        for name in ["a", "b"] {
            repo.write(
                &format!("docs/plans/{name}.md"),
                &one_task("W", "Write shared.txt"),
            );
            manifest.push_str(&format!(
                "\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\n"
            ));
        }
        repo.write("plans.toml", &manifest);
        repo.commit_all("plans");
        let run = |args: &[&str]| {
            let (code, out, err) = repo.run_cmd(repo.orch(args).env("ORCH_SANDBOX", sandbox));
            assert_eq!(code, 0, "sandbox {sandbox}: orch {args:?}\n{out}\n{err}");
        };
        run(&["up"]);
        // a lands after verify; b conflicts with it, its resolver resolves, verify passes on
        // the result, and b lands.
        run(&["merge", "a"]);
        run(&["merge", "b"]);
        let shared = repo.git(&["show", "main:shared.txt"]);
        assert!(
            shared.contains("a 1.1") && shared.contains("b 1.1"),
            "sandbox {sandbox}: b not resolved and merged: {shared}"
        );
        let logs = [
            ("verify", ".orch/logs/a/merge-verify.log"),
            ("resolver", ".orch/logs/b/resolve.log"),
        ];
        for (what, path) in logs {
            let log = String::from_utf8_lossy(&repo.read(path)).into_owned();
            let got = printed_tries(&log);
            for driver in ["agent", "daemon"] {
                let mine: Vec<_> = got
                    .iter()
                    .filter(|(k, _)| k.starts_with(&format!("{driver}-")))
                    .collect();
                assert_eq!(
                    mine.len(),
                    12,
                    "sandbox {sandbox}: {what}'s {driver} did not try everything: {got:?}\n{log}"
                );
                for (name, (ok, detail)) in mine {
                    assert!(
                        !ok,
                        "sandbox {sandbox}: {what}'s {name} got out ({detail})\n{log}"
                    );
                }
            }
            let port = evil.addr.port();
            for dest in [
                format!("refused 127.0.0.1:{port} (a connection to a port where nothing listens"),
                format!("refused 127.0.0.1:{port} (plain HTTP through orch's proxy"),
                format!("refused 127.0.0.1:{port} (CONNECT through orch's proxy"),
                "refused evil.example:443 (CONNECT through orch's proxy".to_string(),
                format!(
                    "refused evil.example (named in a tunnel to 127.0.0.1:{}",
                    allowed.addr.port()
                ),
                format!(
                    "refused 127.0.0.1:{} (UDP to a port where nothing listens",
                    evil_udp.addr.port()
                ),
            ] {
                assert!(
                    log.contains(&dest),
                    "sandbox {sandbox}: {what}: `{dest}` not logged\n{log}"
                );
            }
        }
        assert_eq!(evil.hits(), Vec::<String>::new(), "sandbox {sandbox}");
        assert_eq!(evil_udp.got(), Vec::<Vec<u8>>::new(), "sandbox {sandbox}");
        for req in allowed.raw() {
            let text = String::from_utf8_lossy(&req);
            assert!(
                !text.contains("evil.example") && !text.contains(SECRET),
                "sandbox {sandbox}: the allowed endpoint got a forged request: {text}"
            );
        }
    }
}
