//! One HTTP/1.1 request read, and one answer written: the head at most [`HEAD_MAX`] bytes, a
//! body only with `Content-Length`, at most [`BODY_MAX`], the whole request read within
//! [`DEADLINE`] of the connection's start (however slowly its bytes come); every
//! answer closes the connection (the page's few requests need no keep-alive) and carries the
//! page's security headers.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// A request's head (request line and headers) at most.
pub(super) const HEAD_MAX: usize = 16 << 10;
/// A request's body at most.
pub(super) const BODY_MAX: usize = 64 << 10;
/// Headers at most.
const HEADERS_MAX: usize = 64;
/// How long a client may take to send its whole request (head and body), and to take an
/// answer (or one event of a live stream).
pub(super) const DEADLINE: Duration = Duration::from_secs(10);

/// The headers every answer carries: nothing but this origin's own script and style, no
/// sniffing, no framing, no referrer, nothing cached.
pub(super) const SECURITY: &str = "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'\r\n\
X-Content-Type-Options: nosniff\r\n\
X-Frame-Options: DENY\r\n\
Cross-Origin-Resource-Policy: same-origin\r\n\
Referrer-Policy: no-referrer\r\n\
Cache-Control: no-store\r\n";

/// A request as read.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) method: String,
    /// The path and query as sent (`/api/logs?plan=a&task=1.1`).
    pub(super) target: String,
    /// The headers, names in lower case, in the order sent.
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Request {
    /// The header `name` (lower case), when sent exactly once; `Err` when sent twice.
    pub(super) fn header(&self, name: &str) -> Result<Option<&str>, ()> {
        let mut found = self.headers.iter().filter(|(n, _)| n == name);
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(());
        }
        Ok(first)
    }

    /// The path, without the query.
    pub(super) fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The query's parameter `name`, percent-decoded.
    pub(super) fn query(&self, name: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k)? == name).then(|| decode(v)).flatten()
        })
    }
}

/// `s` percent-decoded (`+` as a space), if it is UTF-8.
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'%' => return None,
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Why no request was read: the answer's status and reason (`None`: the client went, or sent
/// nothing in time, and gets no answer).
#[derive(Debug)]
pub(super) struct Refused(pub(super) Option<(u16, &'static str)>);

/// Reads one request from `r`: its head, then its body (`Content-Length` only), the whole
/// within [`DEADLINE`] (408 past it; no answer when nothing came).
pub(super) async fn read_request(r: &mut (impl AsyncRead + Unpin)) -> Result<Request, Refused> {
    let mut got = false;
    let read = tokio::time::timeout(DEADLINE, read_whole(r, &mut got)).await;
    match read {
        Ok(result) => result,
        Err(_) if !got => Err(Refused(None)),
        Err(_) => Err(Refused(Some((408, "Request Timeout")))),
    }
}

/// [`read_request`] without its deadline; `got` set once a byte came.
async fn read_whole(r: &mut (impl AsyncRead + Unpin), got: &mut bool) -> Result<Request, Refused> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > HEAD_MAX {
            return Err(Refused(Some((431, "Request Header Fields Too Large"))));
        }
        let n = match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(Refused(None)),
            Ok(n) => n,
        };
        *got = true;
        buf.extend_from_slice(&chunk[..n]);
    };
    if head_end > HEAD_MAX {
        return Err(Refused(Some((431, "Request Header Fields Too Large"))));
    }
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&buf[..head_end]) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) | Err(_) => return Err(Refused(Some((400, "Bad Request")))),
    }
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(Refused(Some((400, "Bad Request"))));
    };
    let mut request = Request {
        method: method.to_string(),
        target: target.to_string(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    for h in req.headers.iter() {
        let Ok(value) = std::str::from_utf8(h.value) else {
            return Err(Refused(Some((400, "Bad Request"))));
        };
        request
            .headers
            .push((h.name.to_ascii_lowercase(), value.trim().to_string()));
    }
    if request.header("transfer-encoding").ok().flatten().is_some() {
        return Err(Refused(Some((411, "Length Required"))));
    }
    let length = match request.header("content-length") {
        Err(()) => return Err(Refused(Some((400, "Bad Request")))),
        Ok(None) => 0,
        Ok(Some(v)) => v
            .parse::<usize>()
            .map_err(|_| Refused(Some((400, "Bad Request"))))?,
    };
    if length > BODY_MAX {
        return Err(Refused(Some((413, "Content Too Large"))));
    }
    let mut body = buf[head_end..].to_vec();
    body.truncate(length);
    while body.len() < length {
        let n = match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(Refused(None)),
            Ok(n) => n,
        };
        let room = length - body.len();
        body.extend_from_slice(&chunk[..n.min(room)]);
    }
    request.body = body;
    Ok(request)
}

/// An answer: its status, content type and body.
#[derive(Clone)]
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) reason: &'static str,
    pub(super) content_type: &'static str,
    pub(super) body: Vec<u8>,
}

impl Answer {
    pub(super) fn new(
        status: u16,
        reason: &'static str,
        content_type: &'static str,
        body: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            status,
            reason,
            content_type,
            body: body.into(),
        }
    }

    /// A JSON answer.
    pub(super) fn json(status: u16, reason: &'static str, v: &serde_json::Value) -> Self {
        Self::new(
            status,
            reason,
            "application/json; charset=utf-8",
            crate::untrusted::json_safe(v.to_string()),
        )
    }

    /// An error as JSON: `{"error": message}`.
    pub(super) fn error(status: u16, reason: &'static str, message: &str) -> Self {
        Self::json(status, reason, &serde_json::json!({ "error": message }))
    }
}

/// Writes `a` (its head only for a `HEAD` request: `head_only`) and closes the connection's
/// writing side, within [`DEADLINE`].
pub(super) async fn write_answer(w: &mut (impl AsyncWrite + Unpin), a: &Answer, head_only: bool) {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{SECURITY}Connection: close\r\n\r\n",
        a.status,
        a.reason,
        a.content_type,
        a.body.len()
    );
    let write = async {
        w.write_all(head.as_bytes()).await?;
        if !head_only {
            w.write_all(&a.body).await?;
        }
        w.flush().await?;
        w.shutdown().await
    };
    let _ = tokio::time::timeout(DEADLINE, write).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> Result<Request, Refused> {
        let mut r = bytes;
        read_request(&mut r).await
    }

    #[tokio::test]
    async fn a_request_is_read_with_its_headers_and_body() {
        let r = read(b"POST /api/control/pause?x=1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nContent-Length: 4\r\n\r\nabcdEXTRA")
            .await
            .expect("request");
        assert_eq!(r.method, "POST");
        assert_eq!(r.path(), "/api/control/pause");
        assert_eq!(r.query("x").as_deref(), Some("1"));
        assert_eq!(r.header("host"), Ok(Some("127.0.0.1:1")));
        assert_eq!(r.body, b"abcd");
    }

    #[tokio::test]
    async fn too_much_is_refused() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', HEAD_MAX + 10));
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            read(&big).await.err().and_then(|e| e.0).map(|s| s.0),
            Some(431)
        );
        let body = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            BODY_MAX + 1
        );
        assert_eq!(
            read(body.as_bytes())
                .await
                .err()
                .and_then(|e| e.0)
                .map(|s| s.0),
            Some(413)
        );
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(
            read(chunked).await.err().and_then(|e| e.0).map(|s| s.0),
            Some(411)
        );
        let twice = b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
        assert_eq!(read(twice).await.expect("read").header("host"), Err(()));
    }

    #[test]
    fn queries_are_decoded() {
        assert_eq!(decode("a%20b+c").as_deref(), Some("a b c"));
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%2"), None);
    }
}
