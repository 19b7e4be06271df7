//! `orch serve`: a live web view of the run, an HTTP/1.1 server on the loopback address
//! (`http.rs` a request read and an answer written, each bounded; `routes.rs` what each path
//! answers and who may ask; `data.rs` the status, the log tails and the control verbs, each
//! orch's own command run as `orch mcp` runs them; `sse.rs` the live stream of orch's event log;
//! the page itself is `templates/serve/`, in the binary).
//!
//! Who may connect: only requests whose `Host` is exactly the address served (a page of
//! another site that a DNS name rebinds to 127.0.0.1 sends its own name); the `/api/` routes
//! not from another site (`Sec-Fetch-Site`, `Origin`) and only with the token printed once
//! (`Authorization: Bearer`: a process of this machine that did not see it, an agent whose
//! network is the machine's, reads nothing and takes no stream); the control routes only with
//! `--control`, from the served origin only. Bounded: a request read within 10 s, 64 connections and 16 live streams at
//! once, one status computed at a time (`status.rs`).

mod data;
mod http;
mod routes;
mod sse;
mod status;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;

use crate::error::{CliError, CliResult, exit};

/// What `orch serve` was given.
pub(crate) struct ServeArgs {
    /// The manifest the page shows, instead of the one found from the current directory.
    pub(crate) manifest: Option<PathBuf>,
    /// The port; 0 lets the system choose.
    pub(crate) port: u16,
    /// The address to listen on instead of 127.0.0.1.
    pub(crate) bind: Option<IpAddr>,
    /// The control routes are there, behind a token.
    pub(crate) control: bool,
}

/// Connections served at once (a live stream's counted apart, [`STREAMS`]); one more waits
/// until one ends.
const CONNECTIONS: usize = 64;
/// Live streams (`/api/events`) at once; one more is refused (503).
pub(super) const STREAMS: usize = 16;
/// Log tails (`orch logs`) computed at once; one more waits.
const LOG_READS: usize = 2;

/// What every connection shares: where the run's state is, the address served, the token.
pub(crate) struct Served {
    /// The manifest (absolute), given to each command run.
    manifest: PathBuf,
    /// `<root>/<state_dir>`: where the event log is.
    state_dir: PathBuf,
    /// The `Host` a request must name: the address and port served (`127.0.0.1:8080`).
    authority: String,
    /// The token printed once, which every `/api/` request carries.
    token: String,
    /// Whether the control routes are there (`--control`), else every one is refused.
    control: bool,
    /// The last status computed, locked while one is computed.
    status: tokio::sync::Mutex<Option<status::Cached>>,
    /// The live streams' slots.
    streams: Arc<tokio::sync::Semaphore>,
    /// The log tails' slots.
    log_reads: tokio::sync::Semaphore,
    /// The connections still sending their request, oldest first ([`Served::reading`]).
    waiting: std::sync::Mutex<Waiting>,
}

/// The connections still sending their request: each one's number and how to let it go.
#[derive(Default)]
struct Waiting {
    next: u64,
    list: std::collections::VecDeque<(u64, tokio::sync::oneshot::Sender<()>)>,
}

impl Served {
    /// Records a connection that starts sending its request: its number, and what says it
    /// was let go for a newer one ([`Self::let_oldest_go`]).
    fn reading(&self) -> (u64, tokio::sync::oneshot::Receiver<()>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut w = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        w.next += 1;
        let id = w.next;
        w.list.push_back((id, tx));
        (id, rx)
    }

    /// The connection `id` sent its request (or ended).
    fn read(&self, id: u64) {
        let mut w = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        w.list.retain(|(i, _)| *i != id);
    }

    /// Lets the oldest connection still sending its request go, if there is one.
    fn let_oldest_go(&self) {
        let oldest = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .list
            .pop_front();
        if let Some((_, tx)) = oldest {
            // Gone already (its request came meanwhile): nothing to do.
            let _ = tx.send(());
        }
    }
}

impl Served {
    fn new(
        manifest: PathBuf,
        state_dir: PathBuf,
        authority: String,
        token: String,
        control: bool,
    ) -> Self {
        Self {
            manifest,
            state_dir,
            authority,
            token,
            control,
            status: tokio::sync::Mutex::new(None),
            streams: Arc::new(tokio::sync::Semaphore::new(STREAMS)),
            log_reads: tokio::sync::Semaphore::new(LOG_READS),
            waiting: std::sync::Mutex::new(Waiting::default()),
        }
    }
}

/// Serves until interrupted (exit 0), or fails to start (exit 1; 2 for a bad manifest).
pub(crate) fn run(args: ServeArgs) -> CliResult<u8> {
    let manifest = manifest_path(args.manifest)?;
    let m = crate::workspace::load_manifest(&manifest)?;
    let state_dir = m.root.join(&m.defaults.state_dir);
    let ip = args.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let listener = std::net::TcpListener::bind(SocketAddr::new(ip, args.port)).map_err(|e| {
        CliError::new(
            exit::FAILURE,
            anyhow!("cannot listen on {}: {e}", SocketAddr::new(ip, args.port)),
        )
        .with_hint("give another port with `--port N`, or 0 to let the system choose one")
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::new(exit::FAILURE, anyhow!("cannot read the bound address: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| CliError::new(exit::FAILURE, anyhow!("cannot listen: {e}")))?;
    let token =
        token().map_err(|e| CliError::new(exit::FAILURE, anyhow!("cannot make a token: {e}")))?;
    let served = Arc::new(Served::new(
        manifest,
        state_dir,
        local.to_string(),
        token,
        args.control,
    ));
    if !ip.is_loopback() {
        crate::commands::output::eprintln_safe(&format!(
            "warning: `orch serve` listens on {ip}, not the loopback address: other machines \
             can reach the server (nothing but the page's own files without the token)"
        ));
    }
    let url = format!("http://{}/", served.authority);
    crate::commands::output::println_safe(&format!("orch serve: {url}#token={}", served.token));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::new(exit::FAILURE, anyhow!("cannot start the runtime: {e}")))?;
    runtime
        .block_on(serve(listener, served))
        .map_err(|e| CliError::new(exit::FAILURE, anyhow!(e)))?;
    Ok(exit::OK)
}

/// The manifest given (made absolute), else the one found from the current directory.
fn manifest_path(given: Option<PathBuf>) -> CliResult<PathBuf> {
    if let Some(m) = given {
        return std::path::absolute(&m)
            .map_err(|e| CliError::invalid(anyhow!("`--manifest {}`: {e}", m.display())));
    }
    let cwd = std::env::current_dir().map_err(|e| {
        CliError::new(
            exit::FAILURE,
            anyhow!("cannot read the current directory: {e}"),
        )
    })?;
    crate::manifest::find_manifest(&cwd).ok_or_else(|| {
        CliError::invalid(anyhow!(
            "no `plans.toml` found in `{}` or any parent directory",
            cwd.display()
        ))
        .with_hint("start `orch serve` in the repository, or give it `--manifest PATH`")
    })
}

/// 32 random bytes from the kernel, as 64 hex digits.
fn token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        let n =
            rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty())
                .map_err(std::io::Error::from)?;
        filled += n;
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Accepts connections until Ctrl-C or SIGTERM, at most [`CONNECTIONS`] served at once; when
/// they are, the oldest one still sending its request goes for a new one.
async fn serve(listener: std::net::TcpListener, served: Arc<Served>) -> Result<(), String> {
    let listener =
        tokio::net::TcpListener::from_std(listener).map_err(|e| format!("cannot listen: {e}"))?;
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch for SIGTERM: {e}"))?;
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(_) => {
                    // Out of descriptors, or a connection gone before it was taken: try again
                    // shortly rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = term.recv() => return Ok(()),
        };
        // Every slot taken: the oldest connection that has not yet sent its request is let go
        // for this one (red team 16: a local process's idle connections held every slot and
        // the page's requests waited behind them); none such, this one waits for a slot.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                served.let_oldest_go();
                tokio::select! {
                    s = slots.clone().acquire_owned() => s.map_err(|e| e.to_string())?,
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                    _ = term.recv() => return Ok(()),
                }
            }
        };
        let served = served.clone();
        tokio::spawn(async move {
            routes::connection(stream, &served, slot).await;
        });
    }
}
