//! Red team 11: an agent in this machine's own network (`network = "open"` with the sandbox on,
//! or "ports only" where no namespace can be made) listened on the port of orch's collector
//! while it was down, and got orch's exports with the collector's key. Such an agent may bind
//! only its worktree's ports (`ORCH_PORT` and the `ORCH_PORTS` after it) and port 0, and makes
//! no socket Landlock's TCP rules do not judge (MPTCP, SCTP: red team 12); the blocks lie outside
//! the kernel's ephemeral port range, so port 0 never gives it another worktree's port, asked
//! for one with `IP_LOCAL_PORT_RANGE` or not (red team 13); it connects by no TCP Fast Open send
//! (red team 14: Landlock does not judge one); in a
//! namespace of its own (`confined`, the default where it can be made) any port, as before.
//! A real `orch up`, a Python agent that tries each bind and writes what it could.

use crate::support;

use std::collections::BTreeMap;

use support::net_probe::orch_without_namespaces;
use support::{Repo, one_task, toml_array};

/// The agent: binds TCP on 127.0.0.1 and [::1] at the victim port (argv[1]), 0.0.0.0 at it,
/// its own first and last port, and port 0; writes `name ok|no` lines to binds.txt.
const AGENT: &str = r#"
import os, socket, sys
victim = int(sys.argv[1]); victim2 = int(sys.argv[2])
first = int(os.environ["ORCH_PORT"]); n = int(os.environ["ORCH_PORTS"])
S, MPTCP = socket.SOCK_STREAM, 262
tries = [("victim_v4", socket.AF_INET, S, 0, ("127.0.0.1", victim)),
         ("victim_any", socket.AF_INET, S, 0, ("0.0.0.0", victim)),
         ("victim_v6", socket.AF_INET6, S, 0, ("::1", victim)),
         ("own_first", socket.AF_INET, S, 0, ("127.0.0.1", first)),
         ("own_last", socket.AF_INET, S, 0, ("127.0.0.1", first + n - 1)),
         ("past_own", socket.AF_INET, S, 0, ("127.0.0.1", first + n)),
         ("zero", socket.AF_INET, S, 0, ("127.0.0.1", 0)),
         # Red team 12: protocols Landlock's TCP rules do not judge.
         ("mptcp_victim", socket.AF_INET, S, MPTCP, ("127.0.0.1", victim)),
         ("mptcp6_victim", socket.AF_INET6, S, MPTCP, ("::1", victim)),
         ("sctp_victim", socket.AF_INET, socket.SOCK_SEQPACKET, 0, ("127.0.0.1", victim))]
out = []
for name, fam, kind, proto, addr in tries:
    try:
        s = socket.socket(fam, kind, proto)
    except OSError as e:
        out.append(name + " no " + str(e.errno)); continue
    try:
        s.bind(addr); s.listen(1); out.append(name + " ok")
    except OSError as e:
        out.append(name + " no " + str(e.errno))
    finally:
        s.close()
# And an MPTCP connection to a port not allowed (a service of this machine, listening).
try:
    c = socket.socket(socket.AF_INET, S, MPTCP); c.settimeout(2); c.connect(("127.0.0.1", victim2))
    out.append("mptcp_connect ok")
except OSError as e:
    out.append("mptcp_connect no " + str(e.errno))
# Red team 13: port 0 asked to fall on the next worktree's first port (IP_LOCAL_PORT_RANGE, 51),
# and port 0 many times: the kernel picks from its ephemeral range, where no block lies.
def zero(port=None):
    s = socket.socket(socket.AF_INET, S)
    try:
        if port is not None:
            try:
                s.setsockopt(socket.IPPROTO_IP, 51, (port | (port << 16)).to_bytes(4, sys.byteorder))
            except OSError:
                pass
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()
out.append("zero_range_next " + ("ok" if zero(first + n) == first + n else "no"))
blocks = range(first, first + 10 * n)  # its own block and the next ones
out.append("zero_in_a_block " + ("ok" if any(zero() in blocks for _ in range(2000)) else "no"))
lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
out.append("own_outside_ephemeral " + ("ok" if first + n - 1 < lo or first > hi else "no"))
# Red team 14: TCP Fast Open connects by a send, which Landlock does not judge: to the service
# no agent may reach, by sendto, sendmsg, v4-mapped IPv6, and TCP_FASTOPEN_CONNECT then connect.
def tfo(name, fam, addr, how):
    try:
        # Blocking (a timeout makes the socket non-blocking: the send would say EINPROGRESS).
        s = socket.socket(fam, S)
        if how == "sendto":
            s.sendto(b"x", socket.MSG_FASTOPEN, addr)
        elif how == "sendmsg":
            s.sendmsg([b"x"], [], socket.MSG_FASTOPEN, addr)
        else:
            s.setsockopt(socket.IPPROTO_TCP, 30, 1); s.connect(addr); s.send(b"x")
        out.append(name + " ok")
    except OSError as e:
        out.append(name + " no " + str(e.errno))
tfo("tfo_sendto", socket.AF_INET, ("127.0.0.1", victim2), "sendto")
tfo("tfo_sendmsg", socket.AF_INET, ("127.0.0.1", victim2), "sendmsg")
tfo("tfo_mapped", socket.AF_INET6, ("::ffff:127.0.0.1", victim2), "sendto")
tfo("tfo_connect_option", socket.AF_INET, ("127.0.0.1", victim2), "option")
# Red team 14: a vsock socket, which no network namespace holds (it reaches the hypervisor's host).
try:
    socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM).close(); out.append("vsock ok")
except OSError as e:
    out.append("vsock no " + str(e.errno))
open("binds.txt", "w").write("\n".join(out) + "\n")
"#;

fn repo(victim: u16, listening: u16, network: &str) -> Repo {
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/a.md", &one_task("A", "Bind"));
    repo.manifest(
        &toml_array(&[
            "python3",
            "-c",
            AGENT,
            &victim.to_string(),
            &listening.to_string(),
        ]),
        &if network.is_empty() {
            "report = \"exit\"".to_string()
        } else {
            format!("report = \"exit\"\nnetwork = \"{network}\"")
        },
        "retries = 0\nports = 5",
        &[("a", "")],
    );
    repo.commit_all("plans");
    repo
}

/// A port nothing listens on now (a collector that is down).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn binds(repo: &Repo) -> BTreeMap<String, bool> {
    repo.git(&["show", "plan/a:binds.txt"])
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()? == "ok"))
        })
        .collect()
}

#[test]
fn an_agent_in_this_machines_network_binds_only_its_own_ports() {
    if orch::sandbox::abi() < 4 {
        eprintln!("skipped: this kernel's Landlock has no TCP rules (ABI 4)");
        return;
    }
    // (what, network, sandbox, no namespaces, whether it is held to its own ports)
    let cases = [
        ("open, sandbox on", "open", "on", false, true),
        // The default network where no namespace can be made: ports only, held by orch's
        // wrapper whatever the sandbox (the simulation of such a machine refuses the sandbox's
        // mount namespace too: sandbox off).
        ("ports only, sandbox off", "", "off", true, true),
        ("confined in its namespace", "", "on", false, false),
        ("no network", "none", "on", false, false),
        ("open, sandbox off", "open", "off", false, false),
    ];
    for (what, network, sandbox, no_netns, held) in cases {
        let victim = free_port();
        // A service of this machine no agent is allowed to reach.
        let service = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let listening = service.local_addr().expect("addr").port();
        let repo = repo(victim, listening, network);
        let (code, out, err) = if no_netns {
            let mut cmd = orch_without_namespaces(&repo, &["up", "--json", "a"]);
            cmd.env("ORCH_SANDBOX", sandbox);
            repo.run_cmd(&mut cmd)
        } else {
            repo.run_cmd(
                repo.orch(&["up", "--json", "a"])
                    .env("ORCH_SANDBOX", sandbox),
            )
        };
        assert_eq!(code, 0, "{what}\n{out}\n{err}");
        if no_netns {
            assert!(err.contains("network: ports only"), "{what}\n{err}");
        }
        // What the rule cannot hold is said at start (red team 13: Landlock judges no UDP bind).
        if held {
            assert!(err.contains("any UDP port"), "{what}\n{err}");
        }
        let got = binds(&repo);
        assert_eq!(got.len(), 19, "{what}: {got:?}");
        // No vsock socket for a confined agent, whatever its network (unconfined: its own).
        if sandbox == "on" || no_netns {
            assert_eq!(got.get("vsock"), Some(&false), "{what}: {got:?}");
        }
        // Whatever the network: the worktree's block is outside the kernel's ephemeral range,
        // where a bind of port 0 never lands, asked for a port of the next block or not.
        assert_eq!(
            got.get("own_outside_ephemeral"),
            Some(&true),
            "{what}: {got:?}"
        );
        for other in ["zero_range_next", "zero_in_a_block"] {
            assert_eq!(got.get(other), Some(&false), "{what}: {other}: {got:?}");
        }
        for own in ["own_first", "own_last", "zero"] {
            assert_eq!(got.get(own), Some(&true), "{what}: {own}: {got:?}");
        }
        if held {
            for other in [
                "mptcp_victim",
                "mptcp6_victim",
                "sctp_victim",
                "mptcp_connect",
            ] {
                assert_eq!(got.get(other), Some(&false), "{what}: {other}: {got:?}");
            }
        }
        // Where the network is held to its ports (an open one may connect anywhere).
        if no_netns {
            for other in [
                "tfo_sendto",
                "tfo_sendmsg",
                "tfo_mapped",
                "tfo_connect_option",
            ] {
                assert_eq!(got.get(other), Some(&false), "{what}: {other}: {got:?}");
            }
        }
        for other in ["victim_v4", "victim_any", "victim_v6", "past_own"] {
            let bound = got.get(other).copied();
            if held {
                assert_eq!(bound, Some(false), "{what}: {other}: {got:?}");
            } else if other != "victim_v6" {
                // In its own namespace, or unconfined: any port (::1 may be missing there).
                assert_eq!(bound, Some(true), "{what}: {other}: {got:?}");
            }
        }
    }
}
