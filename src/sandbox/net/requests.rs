//! A connection to orch's proxy: every request on it judged before anything of it goes anywhere,
//! and the answers streamed back in order.
//!
//! Two halves run side by side. The client's side ([`requests`]) reads each request's head whole
//! ([`Requests`]), judges it (its host and port against the allowlist, its `Host` against its
//! URL), and only then sends it on, with exactly its body, on a connection of its own to where it
//! is for (a plain request is sent with `Connection: close`: its destination answers it alone).
//! The next request's head is read and judged the same way, whatever host it names: allowed, a
//! new connection; refused, a 403 after the answers before it, logged, and the connection
//! closed. The answers' side ([`replies`]) passes on what each destination sends, as it comes,
//! one after the other, each until it closes (the head of an answer to a plain request says
//! `Connection: close`: the client's connection ends with it unless the client has already sent
//! more); the client's side closes its writing half to a destination once the next request has
//! come, so that one that keeps its connection alive anyway answers and closes.
//!
//! A `CONNECT` tunnel is judged by its opening: TLS must name the tunnel's host (its
//! `ClientHello`'s server name), after which the tunnel is encrypted and passed on unread; plain
//! HTTP is read as on the proxy's own connection, each request's target and `Host` the tunnel's
//! host and port; anything else (a protocol whose server speaks first, SSH) is passed on unread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, SemaphorePermit, mpsc};

use super::allow::{Host, LOCALHOST};
use super::attempt::AttemptCtx;
use super::body::{Next, Requests};
use super::http::{self, Request, Response};
use super::tunnel::{self, InTunnel, Opening};

/// How long a client has for each read of a request's head once it has begun (and for its
/// first request).
const HEAD_WAIT: Duration = Duration::from_secs(30);
/// How long a connection to a destination may take.
const CONNECT_WAIT: Duration = Duration::from_secs(15);
/// What is read of the client at once.
const READ_MAX: usize = 8 * 1024;
/// After the last answer: how much of what the client still sends is read and dropped, and for
/// how long, before the connection closes (so that closing does not reset it before the client
/// has read the answer).
const LINGER_MAX: usize = 64 * 1024;
const LINGER_WAIT: Duration = Duration::from_secs(2);

/// The most destinations' connections a connection to the proxy holds at once (each request
/// of a client that sends requests faster than their answers are read waits for one).
const DESTINATIONS_MAX: usize = 4;

/// What the answers' side sends the client next.
enum Reply<'a> {
    /// `200 Connection established`: a tunnel was opened.
    Established,
    /// What a destination sends, passed on as it comes until it closes (with the slot it holds).
    /// `true` for the answer to a plain request, whose head says `Connection: close`.
    From(OwnedReadHalf, Option<SemaphorePermit<'a>>, bool),
    /// orch's own answer (400, 403, 502); the connection then closes.
    Answer(u16, String),
}

/// The client's side's hold on the answers' side: the replies queued, whether the reply of a
/// request being read is still to come, the destinations' slots.
struct Out<'a> {
    tx: mpsc::UnboundedSender<Reply<'a>>,
    pending: &'a AtomicBool,
    slots: &'a Semaphore,
}

impl<'a> Out<'a> {
    /// Queues `reply` (at once: a refusal is queued before anything its request closed can be
    /// seen); `false` once the answers' side has ended.
    fn send(&self, reply: Reply<'a>) -> bool {
        self.tx.send(reply).is_ok()
    }

    /// Whether the reply of a request the client has begun to send is still to come.
    fn pending(&self, yes: bool) {
        self.pending.store(yes, Ordering::Relaxed);
    }

    fn closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Serves a connection to the proxy.
pub(super) async fn serve(conn: TcpStream, ctx: &AttemptCtx) {
    let pending = AtomicBool::new(false);
    let slots = Semaphore::new(DESTINATIONS_MAX);
    let (rd, wr) = conn.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let out = Out {
        tx,
        pending: &pending,
        slots: &slots,
    };
    let (rd, ()) = tokio::join!(requests(rd, out, ctx), replies(wr, rx, &pending));
    linger(rd).await;
}

/// The answers' side: each reply in turn, then the client's writing half closed. When a
/// destination closes, the connection goes on only if another reply is coming (queued, or that
/// of a request the client has begun to send: `pending`); else it ends there, as the
/// destination's did (its answer may be one that ends with its connection).
async fn replies(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Reply<'_>>,
    pending: &AtomicBool,
) {
    let mut next = rx.recv().await;
    while let Some(reply) = next {
        match reply {
            Reply::Established => {
                if wr
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_err()
                {
                    break;
                }
            }
            Reply::From(mut up, slot, plain) => {
                let copied = pass_on(&mut up, &mut wr, plain).await;
                drop((up, slot));
                if copied.is_err() {
                    break;
                }
                next = match rx.try_recv() {
                    Ok(r) => Some(r),
                    Err(_) if pending.load(Ordering::Relaxed) => rx.recv().await,
                    Err(_) => None,
                };
                continue;
            }
            Reply::Answer(code, text) => {
                let _ = wr.write_all(&answer(code, &text)).await;
                break;
            }
        }
        next = rx.recv().await;
    }
    let _ = wr.shutdown().await;
}

/// Passes on what a destination sends until it closes; the final answer to a plain request
/// with `Connection: close` ([`http::response`]): the client's connection ends with the
/// destination's, and a client that would send its next request on it is told so.
async fn pass_on(
    up: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    plain: bool,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    if plain {
        pass_head(up, wr, &mut buf).await?;
    }
    wr.write_all(&buf).await?;
    tokio::io::copy(up, wr).await.map(|_| ())
}

/// Passes on the interim answers (`100 Continue`) as they are and the final one's head with
/// `Connection: close`; what was read past it is left in `buf` (all of it, for what is not an
/// answer orch reads).
async fn pass_head(
    up: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    loop {
        match http::response(buf) {
            Response::More => {
                if read(up, buf, None).await.unwrap_or(0) == 0 {
                    return Ok(());
                }
            }
            Response::Interim(len) => {
                wr.write_all(&buf[..len]).await?;
                buf.drain(..len);
            }
            Response::Final { len, head } => {
                wr.write_all(&head).await?;
                buf.drain(..len);
                return Ok(());
            }
            Response::Other => return Ok(()),
        }
    }
}

/// orch's own answer: a short text, and the connection closes.
fn answer(code: u16, text: &str) -> Vec<u8> {
    let reason = match code {
        400 => "Bad Request",
        403 => "Forbidden",
        _ => "Bad Gateway",
    };
    let body = format!("{text}\n");
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads and drops what the client still sends, bounded ([`LINGER_MAX`], [`LINGER_WAIT`]).
async fn linger(mut rd: OwnedReadHalf) {
    let drain = async {
        let mut chunk = [0u8; 4096];
        let mut read = 0;
        while read < LINGER_MAX {
            match rd.read(&mut chunk).await {
                Ok(n) if n > 0 => read += n,
                _ => return,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_WAIT, drain).await;
}

/// Reads what the client sends next onto `reqs`, within `wait` if given: the bytes read (0 at
/// its end), `None` when nothing came in time or the read failed.
async fn read(rd: &mut OwnedReadHalf, onto: &mut Vec<u8>, wait: Option<Duration>) -> Option<usize> {
    let mut chunk = [0u8; READ_MAX];
    let n = match wait {
        Some(w) => tokio::time::timeout(w, rd.read(&mut chunk)).await.ok()?,
        None => rd.read(&mut chunk).await,
    }
    .ok()?;
    onto.extend_from_slice(&chunk[..n]);
    Some(n)
}

/// Reads more of `reqs`: `false` at the client's end (or a wait run out).
async fn read_more(rd: &mut OwnedReadHalf, reqs: &mut Requests, wait: Option<Duration>) -> bool {
    let mut got = Vec::new();
    match read(rd, &mut got, wait).await {
        Some(n) if n > 0 => {
            reqs.push(&got);
            true
        }
        _ => false,
    }
}

/// The client's side of a connection to the proxy; gives back its reading half.
async fn requests(mut rd: OwnedReadHalf, out: Out<'_>, ctx: &AttemptCtx) -> OwnedReadHalf {
    let mut reqs = Requests::default();
    let mut first = true;
    // Where the body of the request being read goes.
    let mut up: Option<OwnedWriteHalf> = None;
    loop {
        match reqs.next() {
            Next::More => {
                // Part of a head received: its reply is coming. A head has its time once
                // begun (the first at once); the next request and a body's bytes come when the
                // client sends them.
                out.pending(reqs.in_head());
                let wait = (first || reqs.in_head()).then_some(HEAD_WAIT);
                if !read_more(&mut rd, &mut reqs, wait).await || out.closed() {
                    break;
                }
            }
            Next::Body(bytes) => {
                let Some(w) = up.as_mut() else { break };
                if w.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            Next::Bad(why) => {
                ctx.refuse(
                    "an unreadable request",
                    &format!("on a connection to orch's proxy: {why}"),
                );
                drop(up.take());
                out.send(Reply::Answer(400, why));
                break;
            }
            Next::Head(head) => {
                first = false;
                out.pending(true);
                // The request before is whole: its destination gets nothing more, and one that
                // keeps its connection alive closes it once it has answered.
                drop(up.take());
                match http::judge(&head) {
                    Request::Bad(why) => {
                        ctx.refuse(
                            &head.shown_target(),
                            &format!("a request to orch's proxy it does not pass on: {why}"),
                        );
                        out.send(Reply::Answer(400, why));
                        break;
                    }
                    Request::Forged { named, host, port } => {
                        ctx.refuse(
                            &named,
                            &format!("named by the Host header of a plain request to {host}:{port} through orch's proxy"),
                        );
                        let why = "orch: the Host header names another host or port than the URL";
                        out.send(Reply::Answer(403, why.into()));
                        break;
                    }
                    Request::Connect { host, port } => {
                        if !ctx.allow.allows(&host, port) {
                            ctx.refuse(
                                &format!("{host}:{port}"),
                                "CONNECT through orch's proxy; not in network_allow",
                            );
                            out.send(Reply::Answer(403, not_allowed(&host, port)));
                            break;
                        }
                        let Some(to) = connect(&host, port).await else {
                            out.send(Reply::Answer(
                                502,
                                format!("cannot connect to {host}:{port}"),
                            ));
                            break;
                        };
                        // A tunnel ends with its destination's connection.
                        out.pending(false);
                        let seen = reqs.take_buffered();
                        tunnel(&mut rd, seen, to, &host, port, &out, ctx).await;
                        break;
                    }
                    Request::Plain { host, port, head } => {
                        if !ctx.allow.allows(&host, port) {
                            ctx.refuse(
                                &format!("{host}:{port}"),
                                "plain HTTP through orch's proxy; not in network_allow",
                            );
                            out.send(Reply::Answer(403, not_allowed(&host, port)));
                            break;
                        }
                        let Ok(slot) = out.slots.acquire().await else {
                            break;
                        };
                        let Some(to) = connect(&host, port).await else {
                            out.send(Reply::Answer(
                                502,
                                format!("cannot connect to {host}:{port}"),
                            ));
                            break;
                        };
                        let (from, mut w) = to.into_split();
                        if w.write_all(&head).await.is_err()
                            || !out.send(Reply::From(from, Some(slot), true))
                        {
                            break;
                        }
                        out.pending(reqs.in_head());
                        up = Some(w);
                    }
                }
            }
        }
    }
    rd
}

/// A tunnel to `host:port` (allowed): judged by its opening, then passed on.
async fn tunnel(
    rd: &mut OwnedReadHalf,
    mut seen: Vec<u8>,
    to: TcpStream,
    host: &Host,
    port: u16,
    out: &Out<'_>,
    ctx: &AttemptCtx,
) {
    let (mut from, mut up) = to.into_split();
    if !out.send(Reply::Established) {
        return;
    }
    // Until the client's first bytes say what the tunnel carries; a destination that speaks
    // first (SSH, mail) makes it a tunnel passed on unread.
    let mut began = false;
    loop {
        match tunnel::opening(&seen) {
            Opening::More => {
                let wait = (!seen.is_empty()).then_some(HEAD_WAIT);
                let mut peek = [0u8; 1];
                tokio::select! {
                    n = read(rd, &mut seen, wait) => match n {
                        Some(n) if n > 0 => {}
                        // The client's end, or an opening that did not come whole in time.
                        _ => return,
                    },
                    _ = from.peek(&mut peek), if !began => break,
                }
                began = !seen.is_empty();
            }
            Opening::Names(named) if !tunnel::names_host(&named, host) => {
                ctx.refuse(
                    &named.escape_debug().to_string(),
                    &format!("named in a tunnel to {host}:{port} (TLS server name or Host header)"),
                );
                return;
            }
            Opening::Unnamed if !matches!(host, Host::Ip(_)) => {
                ctx.refuse(
                    &format!("{host}:{port}"),
                    "a TLS `ClientHello` without a server name in a tunnel to it \
                     (a TLS client names the host it means; only one to an address does not)",
                );
                return;
            }
            Opening::Unjudged(why) => {
                ctx.refuse(
                    &format!("{host}:{port}"),
                    &format!("TLS orch cannot judge in a tunnel to it: {why}"),
                );
                return;
            }
            Opening::Http => return judged(rd, seen, (from, up), host, port, out, ctx).await,
            Opening::Names(_) | Opening::Unnamed | Opening::Nothing => break,
        }
    }
    if out.send(Reply::From(from, None, false)) && up.write_all(&seen).await.is_ok() {
        let _ = tokio::io::copy(rd, &mut up).await;
    }
}

/// A tunnel of plain HTTP: each request judged ([`tunnel::in_tunnel`]) before it is passed on.
///
/// What the destination sends is passed on once a request has been passed to it (before, it
/// answers nothing the client asked).
async fn judged(
    rd: &mut OwnedReadHalf,
    seen: Vec<u8>,
    (from, mut up): (OwnedReadHalf, OwnedWriteHalf),
    host: &Host,
    port: u16,
    out: &Out<'_>,
    ctx: &AttemptCtx,
) {
    let mut from = Some(from);
    let mut reqs = Requests::default();
    reqs.push(&seen);
    let refused = loop {
        match reqs.next() {
            Next::More => {
                let wait = reqs.in_head().then_some(HEAD_WAIT);
                if !read_more(rd, &mut reqs, wait).await || out.closed() {
                    return;
                }
            }
            Next::Body(bytes) => {
                if up.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Next::Bad(why) => {
                ctx.refuse(
                    "an unreadable request",
                    &format!("in a tunnel to {host}:{port}: {why}"),
                );
                break (400, why);
            }
            Next::Head(head) => match tunnel::in_tunnel(&head, host, port) {
                InTunnel::Pass => {
                    if up.write_all(&head.raw).await.is_err() {
                        return;
                    }
                    if let Some(from) = from.take()
                        && !out.send(Reply::From(from, None, false))
                    {
                        return;
                    }
                }
                InTunnel::Names(named) => {
                    ctx.refuse(
                        &named,
                        &format!(
                            "named in a tunnel to {host}:{port} (a request's target or Host header)"
                        ),
                    );
                    break (
                        403,
                        format!(
                            "orch: this tunnel is for {host}:{port}, the request names another"
                        ),
                    );
                }
                InTunnel::Bad(why) => {
                    ctx.refuse(
                        &head.shown_target(),
                        &format!("in a tunnel to {host}:{port}: {why}"),
                    );
                    break (400, why);
                }
            },
        }
    };
    // The destination gets nothing more: it answers what it has, then closes; the refusal
    // follows its answers.
    drop((up, from));
    out.send(Reply::Answer(refused.0, refused.1));
}

fn not_allowed(host: &Host, port: u16) -> String {
    format!(
        "orch: {host}:{port} is not allowed for this agent; the lead allows it with `network_allow = [\"{host}:{port}\"]` in plans.toml"
    )
}

/// A connection to `host:port` from orch: an address as it is; `localhost` its two loopback
/// addresses ([`LOCALHOST`]), never what a resolver says of it; another name resolved here, and
/// never to this machine's own addresses (a loopback, unspecified or link-local one): a domain's
/// DNS must not point the proxy at services the agent could not reach itself.
async fn connect(host: &Host, port: u16) -> Option<TcpStream> {
    let addrs: Vec<std::net::SocketAddr> = match host {
        Host::Ip(a) if a.is_unspecified() => return None,
        Host::Ip(a) => vec![std::net::SocketAddr::new(*a, port)],
        h if h.is_localhost() => LOCALHOST
            .iter()
            .map(|a| std::net::SocketAddr::new(*a, port))
            .collect(),
        Host::Name(n) => {
            let found =
                tokio::time::timeout(CONNECT_WAIT, tokio::net::lookup_host((n.as_str(), port)))
                    .await
                    .ok()?
                    .ok()?;
            found.filter(|a| !own_address(a.ip())).collect()
        }
        Host::Suffix(_) => return None,
    };
    for a in addrs {
        if let Ok(Ok(s)) = tokio::time::timeout(CONNECT_WAIT, TcpStream::connect(a)).await {
            let _ = s.set_nodelay(true);
            return Some(s);
        }
    }
    None
}

fn own_address(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let ip = ip.to_canonical();
    ip.is_loopback()
        || ip.is_unspecified()
        || match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machines_own_addresses_are_loopback_unspecified_and_link_local() {
        for own in [
            "127.0.0.1",
            "127.0.0.2",
            "127.255.255.254",
            "0.0.0.0",
            "169.254.0.1",
            "169.254.169.254",
            "::1",
            "::",
            "::ffff:127.0.0.2",
            "::ffff:169.254.1.1",
            "::ffff:0.0.0.0",
            "fe80::1",
            "febf::1",
        ] {
            let ip: std::net::IpAddr = own.parse().expect("an address");
            assert!(
                own_address(ip),
                "{own} is not counted as this machine's own"
            );
        }
        for other in [
            "192.0.2.2",
            "10.0.0.1",
            "8.8.8.8",
            "169.253.255.255",
            "169.255.0.1",
            "128.0.0.1",
            "fd00::2",
            "fec0::1",
            "2001:db8::1",
            "::ffff:192.0.2.2",
        ] {
            let ip: std::net::IpAddr = other.parse().expect("an address");
            assert!(!own_address(ip), "{other} is counted as this machine's own");
        }
    }

    /// A name goes through the resolver; what it resolves to that is this machine's own is
    /// never connected to, though something listens there; the same address written as an
    /// address is (an allowlist entry `127.0.0.2:P` names it).
    #[tokio::test]
    async fn a_name_that_resolves_to_a_loopback_address_leads_nowhere() {
        for addr in ["127.0.0.2:0", "[::1]:0", "127.0.0.1:0"] {
            let Ok(listener) = std::net::TcpListener::bind(addr) else {
                continue;
            };
            let at = listener.local_addr().expect("its address");
            // Names the resolver answers without asking anyone: the address itself.
            let name = Host::Name(at.ip().to_string());
            assert!(
                connect(&name, at.port()).await.is_none(),
                "a name resolving to {at} was connected to"
            );
            assert!(
                connect(&Host::Ip(at.ip()), at.port()).await.is_some(),
                "{at} written as an address was not connected to"
            );
        }
    }
}
