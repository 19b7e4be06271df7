//! What the per-attempt wrapper is told to do with the network: [`SPEC_VAR`] in its
//! environment, set by `orch up` for each process it starts (empty: nothing).

use std::net::SocketAddr;
use std::path::PathBuf;

/// The variable that carries a [`Spec`] to `orch session-exec` / `orch sandbox-exec`.
pub(crate) const SPEC_VAR: &str = "ORCH_NET_CONFINE";

/// Set (`1`) by `orch up` for a process in this machine's own network namespace (network
/// "ports only", or `open` here), which every other process of the machine shares: `orch
/// sandbox-exec` then lets the agent bind only its plan's ports (`ORCH_PORT` and the
/// `ORCH_PORTS` after it) and port 0 (a port the kernel picks), so that it cannot listen where
/// orch or another plan will connect (red team 11: the port of a collector that was down).
pub(crate) const SHARED_VAR: &str = "ORCH_NET_SHARED";

/// The variables of a process orch gives no network of its own (open): no [`SPEC_VAR`] (a value
/// orch's own environment had is not passed on), and [`SHARED_VAR`] when it runs `here`, in this
/// machine's own network (a place's, a container's, is its own).
pub(crate) fn open_env(here: bool) -> Vec<(String, String)> {
    vec![
        (SPEC_VAR.to_string(), String::new()),
        (
            SHARED_VAR.to_string(),
            if here { "1" } else { "" }.to_string(),
        ),
    ]
}

/// The port of the proxy in every namespace (`127.0.0.1` and `[::1]`): `HTTPS_PROXY` and the
/// other proxy variables name it. Moved to the next free port when an allowed loopback
/// endpoint uses it.
pub(crate) const PROXY_PORT: u16 = 3128;

/// A namespace orch's wrapper joins (as root) to open an attempt's sockets there: that of process
/// `pid` (`/proc/<pid>/ns/net`), which must still be the namespace of inode `inode` that orch
/// recorded when it made the place (a pid reused since finds another inode and is refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Join {
    pub(crate) pid: u32,
    pub(crate) inode: u64,
}

/// What the wrapper makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Spec {
    /// A namespace with loopback only.
    None,
    /// A namespace whose sockets `orch up` serves, handed over through `socket`.
    Confined {
        socket: PathBuf,
        proxy_port: u16,
        /// The allowed loopback endpoints, opened in the namespace on their own address and port.
        direct: Vec<SocketAddr>,
        /// An existing namespace to open the sockets in rather than a new one: the one its
        /// executor's place runs the attempt in (a container's, [`Join`]).
        join: Option<Join>,
    },
    /// No namespace (the machine cannot make one): Landlock limits TCP connections to these
    /// ports (orch's proxy on the machine's loopback, the allowed loopback endpoints').
    Ports(Vec<u16>),
}

impl Spec {
    /// As [`SPEC_VAR`]'s value: `none`, or `confined;proxy=PORT;direct=A,B[;join=PID:INODE];socket=PATH`
    /// (the path last: it may hold anything but a NUL).
    pub(crate) fn to_var(&self) -> String {
        match self {
            Spec::None => "none".into(),
            Spec::Confined {
                socket,
                proxy_port,
                direct,
                join,
            } => {
                let direct: Vec<String> = direct.iter().map(SocketAddr::to_string).collect();
                let join = join.map_or(String::new(), |j| format!(";join={}:{}", j.pid, j.inode));
                format!(
                    "confined;proxy={proxy_port};direct={}{join};socket={}",
                    direct.join(","),
                    socket.display()
                )
            }
            Spec::Ports(ports) => {
                let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
                format!("ports;{}", ports.join(","))
            }
        }
    }

    /// Reads [`Spec::to_var`]'s text; `Ok(None)` for an empty value (nothing to do).
    pub(crate) fn from_var(v: &str) -> Result<Option<Spec>, String> {
        let bad = || format!("`{SPEC_VAR}` is not one orch wrote: `{}`", v.escape_debug());
        match v {
            "" => return Ok(None),
            "none" => return Ok(Some(Spec::None)),
            _ => {}
        }
        if let Some(list) = v.strip_prefix("ports;") {
            let ports = list
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| p.parse().map_err(|_| bad()))
                .collect::<Result<Vec<u16>, String>>()?;
            return Ok(Some(Spec::Ports(ports)));
        }
        let rest = v.strip_prefix("confined;").ok_or_else(bad)?;
        let (head, socket) = rest.split_once(";socket=").ok_or_else(bad)?;
        let mut proxy_port = None;
        let mut direct = Vec::new();
        let mut join = None;
        for part in head.split(';') {
            match part.split_once('=') {
                Some(("proxy", p)) => proxy_port = p.parse().ok(),
                Some(("join", j)) => {
                    let (pid, inode) = j.split_once(':').ok_or_else(bad)?;
                    join = Some(Join {
                        pid: pid.parse().map_err(|_| bad())?,
                        inode: inode.parse().map_err(|_| bad())?,
                    });
                }
                Some(("direct", list)) => {
                    for a in list.split(',').filter(|a| !a.is_empty()) {
                        direct.push(a.parse().map_err(|_| bad())?);
                    }
                }
                _ => return Err(bad()),
            }
        }
        Ok(Some(Spec::Confined {
            socket: PathBuf::from(socket),
            proxy_port: proxy_port.ok_or_else(bad)?,
            direct,
            join,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_reads_back_as_written() {
        let specs = [
            Spec::None,
            Spec::Confined {
                socket: PathBuf::from("/tmp/a dir;socket=x/1.sock"),
                proxy_port: 3129,
                direct: vec![
                    "127.0.0.1:5432".parse().expect("addr"),
                    "[::1]:11434".parse().expect("addr"),
                ],
                join: None,
            },
            Spec::Confined {
                socket: PathBuf::from("/s"),
                proxy_port: 3128,
                direct: vec![],
                join: None,
            },
            Spec::Confined {
                socket: PathBuf::from("/s;join=1:2"),
                proxy_port: 3128,
                direct: vec!["127.0.0.1:5432".parse().expect("addr")],
                join: Some(Join {
                    pid: 4242,
                    inode: 4026532177,
                }),
            },
            Spec::Ports(vec![41234, 5432]),
            Spec::Ports(vec![]),
        ];
        for s in specs {
            assert_eq!(Spec::from_var(&s.to_var()), Ok(Some(s.clone())), "{s:?}");
        }
        assert_eq!(Spec::from_var(""), Ok(None));
        for bad in [
            "open",
            "confined",
            "confined;proxy=x;socket=/s",
            "confined;direct=1;socket=/s",
            "confined;proxy=1;join=12;socket=/s",
            "confined;proxy=1;join=a:1;socket=/s",
            "ports;x",
        ] {
            assert!(Spec::from_var(bad).is_err(), "{bad}");
        }
    }
}
