//! Confinement of an agent's network: a network namespace per attempt that has only loopback,
//! and an allowlisting proxy that `orch up` runs for the run, outside it.
//!
//! The per-attempt wrapper (`orch session-exec`, `orch sandbox-exec`) enters the namespace
//! before it becomes the agent ([`enter_from_env`], told what to do by [`SPEC_VAR`] in its
//! environment): as root a network namespace alone (and the capabilities that could leave it
//! dropped), else a user namespace that maps the user's own uid and gid, and a network
//! namespace in it. There it brings `lo` up and makes every IPv4 and IPv6 address local to it
//! (so that a connection to any address stays inside), and, for `network = "confined"`, opens
//! the namespace's listening sockets: the proxy's (`127.0.0.1:3128`, `[::1]:3128`), one on each
//! allowed loopback endpoint's own address and port, and catch-alls on the well-known ports
//! (TCP) and on port 53 (UDP, DNS). It hands them to `orch up` over a unix socket made for the
//! attempt ([`proxy::NetProxy`]), then closes its own copies: no process of orch runs inside the
//! namespace, and the agent can neither see nor stop the other end.
//!
//! `orch up` accepts on those sockets itself and decides, from its own records (the attempt the
//! unix socket was made for, the process that sent them, each socket's own address), what each
//! connection is: through the proxy (HTTP `CONNECT` or plain HTTP, the destination matched
//! against the attempt's [`allow::AllowList`], names resolved by orch), to an allowed loopback
//! endpoint (joined to the same address and port outside), or refused (logged in the attempt's
//! log with the destination, and counted). Everything else finds nothing: no route leaves the
//! namespace, a connection to any other port is refused by its kernel, UDP has only orch's DNS
//! socket, which answers every query "refused".
//!
//! `verify` and a resolving agent, which a command may run outside `orch up` (`orch merge`,
//! `orch resolve`), are served the same way by a proxy of that command's own
//! ([`own::OwnProxy`]).

pub(crate) mod allow;
mod attempt;
mod body;
mod dns;
mod enter;
mod http;
mod netlink;
mod own;
mod proxy;
mod requests;
mod serve;
mod spec;
mod tls;
mod tunnel;

pub(crate) use attempt::{refusals_of, refusals_of_plan};
#[cfg(test)]
pub(crate) use enter::{PORT_VAR, PORTS_VAR};
pub(crate) use enter::{enter_from_env, only_tcp_and_udp, own_binds, probe};
pub(crate) use own::OwnProxy;
pub(crate) use proxy::{NetAttempt, NetProxy, PROXY_VARS};
pub(crate) use spec::{Join, PROXY_PORT, SHARED_VAR, SPEC_VAR, open_env};
