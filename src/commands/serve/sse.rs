//! `GET /api/events`: orch's event log (`<state_dir>/.events.jsonl`) as server-sent events, read
//! forward from its end (or from the `Last-Event-ID` a reconnecting page sends: each event's id
//! is the log's cursor after it) through the bounded reader, woken by the directory's watcher
//! ([`crate::commands::run_events`]). Each event is one `orch` event whose data is the log's line
//! with its strings escaped; a comment every [`PING`] finds a page that went. The stream works
//! whether `orch up` runs or not: it waits for the log to grow.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::Served;
use super::http::{DEADLINE, SECURITY};
use super::status::integration_mark;
use crate::commands::run_events::{self, Filter, Log};

/// How often a quiet stream sends a comment.
const PING: Duration = Duration::from_secs(15);
/// How often the integration preview is looked at between events.
const LOOK: Duration = Duration::from_secs(1);

/// Streams events to the page from `cursor` (the `Last-Event-ID` it sent; the log's end
/// without one) until it goes or a write fails.
pub(super) async fn stream(stream: &mut TcpStream, served: &Served, cursor: Option<u64>) {
    let (mut rd, mut wr) = stream.split();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n{SECURITY}Connection: close\r\n\r\n"
    );
    let mut log = Log::open(&served.state_dir, cursor);
    let hello = format!(
        "{head}retry: 2000\n\nevent: ready\nid: {}\ndata: {{}}\n\n",
        log.cursor
    );
    if !write(&mut wr, hello.as_bytes()).await {
        return;
    }
    let any = Filter {
        kinds: Vec::new(),
        plan: None,
        task: None,
    };
    let mut sink = [0u8; 512];
    let mut integration = integration_mark(&served.state_dir);
    let mut quiet_since = tokio::time::Instant::now();
    loop {
        let next = tokio::select! {
            v = run_events::wait(&served.state_dir, &mut log, &any, LOOK) => v,
            // The page sends nothing more: a read ends only when it goes.
            _ = rd.read(&mut sink) => return,
        };
        let now = integration_mark(&served.state_dir);
        let mut text = String::new();
        if now != integration {
            // An integration test began or ended: no event says so.
            integration = now;
            text.push_str("event: state\ndata: {\"changed\":\"integration\"}\n\n");
        }
        if let Some(v) = next {
            text.push_str(&format!(
                "event: orch\nid: {}\ndata: {}\n\n",
                log.cursor,
                crate::untrusted::json_safe(super::data::escaped(v).to_string())
            ));
        }
        if text.is_empty() {
            if quiet_since.elapsed() < PING {
                continue;
            }
            text.push_str(": ping\n\n");
        }
        quiet_since = tokio::time::Instant::now();
        if !write(&mut wr, text.as_bytes()).await {
            return;
        }
    }
}

async fn write(w: &mut (impl tokio::io::AsyncWrite + Unpin), bytes: &[u8]) -> bool {
    matches!(
        tokio::time::timeout(DEADLINE, async {
            w.write_all(bytes).await?;
            w.flush().await
        })
        .await,
        Ok(Ok(()))
    )
}
