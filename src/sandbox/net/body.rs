//! The requests a client sends on one connection, read as they come ([`Requests`]): each head
//! whole before anything of it is passed on ([`super::http::head`]), then exactly its body, by its
//! framing (`Content-Length` bytes, or chunks read to the last one and its trailer), so that
//! where one request ends and the next begins is where orch says, whatever the client wrote.
//!
//! Memory is bounded whatever a client sends: a head is at most [`HEAD_MAX`] bytes, a chunk-size
//! line [`CHUNK_LINE_MAX`], a trailer [`HEAD_MAX`]; a body's bytes are passed on as they come.

use super::http::{self, Framing, HEAD_MAX, Head, Parsed};

/// The longest chunk-size line (the size, its extensions, CRLF).
pub(super) const CHUNK_LINE_MAX: usize = 1024;

/// What comes next on the connection.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// More bytes are needed.
    More,
    /// The head of the next request (its body follows).
    Head(Head),
    /// Bytes of the current request's body, framing included, to pass on as they are.
    Body(Vec<u8>),
    /// The bytes are not a request orch reads one way only, with why: nothing more is read.
    Bad(String),
}

/// The requests of one connection.
#[derive(Debug, Default)]
pub(super) struct Requests {
    /// Bytes received and not yet taken.
    buf: Vec<u8>,
    /// The body being read, if one is.
    body: Option<Body>,
}

impl Requests {
    /// Adds bytes received.
    pub(super) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Whether part of a head was received and not the rest.
    pub(super) fn in_head(&self) -> bool {
        self.body.is_none() && !self.buf.is_empty()
    }

    /// Whether nothing of a request is pending: the last one (if any) is whole and nothing of the
    /// next was received.
    #[cfg(test)]
    fn between(&self) -> bool {
        self.buf.is_empty() && self.body.is_none()
    }

    /// The bytes received and not taken.
    #[cfg(test)]
    fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Takes the bytes received and not taken (what follows a `CONNECT`'s head: the tunnel's).
    pub(super) fn take_buffered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// What comes next, from the bytes received.
    pub(super) fn next(&mut self) -> Next {
        while let Some(body) = &mut self.body {
            if self.buf.is_empty() {
                return Next::More;
            }
            let mut out = Vec::new();
            let taken = match body.feed(&self.buf, &mut out) {
                Ok(n) => n,
                Err(why) => return Next::Bad(why),
            };
            self.buf.drain(..taken);
            if body.done() {
                self.body = None;
            }
            if !out.is_empty() {
                return Next::Body(out);
            }
        }
        match http::head(&self.buf) {
            Parsed::More => Next::More,
            Parsed::Bad(why) => Next::Bad(why),
            Parsed::Head(h) => {
                self.buf.drain(..h.raw.len());
                self.body = match h.framing {
                    Framing::None | Framing::Length(0) => None,
                    Framing::Length(n) => Some(Body::Length(n)),
                    Framing::Chunked => Some(Body::Chunked(Chunked::default())),
                };
                Next::Head(h)
            }
        }
    }
}

/// A body being read.
#[derive(Debug)]
enum Body {
    /// The bytes still to come.
    Length(u64),
    Chunked(Chunked),
}

impl Body {
    /// Takes what of `input` is this body's: how many bytes; what to pass on is added to `out`.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, String> {
        match self {
            Body::Length(left) => {
                let n = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                out.extend_from_slice(&input[..n]);
                *left -= n as u64;
                Ok(n)
            }
            Body::Chunked(c) => c.feed(input, out),
        }
    }

    fn done(&self) -> bool {
        match self {
            Body::Length(left) => *left == 0,
            Body::Chunked(c) => c.state == State::Done,
        }
    }
}

/// Where a chunked body is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// In a chunk-size line.
    #[default]
    Size,
    /// In a chunk's data: the bytes still to come.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// In the trailer, after the last chunk (lines up to a blank one).
    Trailer,
    Done,
}

/// A chunked body: a line is passed on once it is whole and read one way only; a chunk's data
/// as it comes.
#[derive(Debug, Default)]
struct Chunked {
    state: State,
    /// The line being read (a chunk-size line, a chunk's CRLF, a trailer line).
    line: Vec<u8>,
    /// The trailer's bytes so far.
    trailer: usize,
}

/// Whether `line` (ending in LF) ends in CRLF and has no other control byte than a tab.
fn clean_line(line: &[u8]) -> bool {
    let Some(body) = line.strip_suffix(b"\r\n") else {
        return false;
    };
    body.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

impl Chunked {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, String> {
        let mut at = 0;
        while at < input.len() && self.state != State::Done {
            if let State::Data(left) = self.state {
                let n = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(input.len() - at);
                out.extend_from_slice(&input[at..at + n]);
                at += n;
                let left = left - n as u64;
                self.state = if left == 0 {
                    State::DataEnd
                } else {
                    State::Data(left)
                };
                continue;
            }
            // A line: up to its LF, bounded.
            let rest = &input[at..];
            let (part, whole) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..=i], true),
                None => (rest, false),
            };
            let max = match self.state {
                State::DataEnd => 2,
                State::Trailer => HEAD_MAX,
                _ => CHUNK_LINE_MAX,
            };
            if self.line.len() + part.len() > max {
                return Err(match self.state {
                    State::DataEnd => "a chunk's data is not followed by CRLF".into(),
                    State::Trailer => "the trailer of a chunked body is too long".into(),
                    _ => format!("a chunk-size line longer than {CHUNK_LINE_MAX} bytes"),
                });
            }
            self.line.extend_from_slice(part);
            at += part.len();
            if whole {
                self.end_line(out)?;
            }
        }
        Ok(at)
    }

    /// A whole line (in `self.line`) read: checked, passed on, and the state moved.
    fn end_line(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let line = std::mem::take(&mut self.line);
        if self.state == State::DataEnd && line != b"\r\n" {
            return Err("a chunk's data is not followed by CRLF".into());
        }
        if !clean_line(&line) {
            return Err("a line of a chunked body that does not end in CRLF alone".into());
        }
        self.state = match self.state {
            State::Size => {
                // Digits first: httparse takes an empty size for 0, and spaces before it.
                if !line.first().is_some_and(u8::is_ascii_hexdigit) {
                    return Err("a chunk-size line that does not start with the size".into());
                }
                match httparse::parse_chunk_size(&line) {
                    Ok(httparse::Status::Complete((_, 0))) => State::Trailer,
                    Ok(httparse::Status::Complete((_, n))) => State::Data(n),
                    _ => return Err("a chunk-size line that is not a size".into()),
                }
            }
            State::DataEnd => State::Size,
            State::Trailer if line == b"\r\n" => State::Done,
            State::Trailer => {
                let name = line.iter().take_while(|&&b| b != b':').count();
                let is_field = name > 0
                    && name < line.len()
                    && line[..name]
                        .iter()
                        .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !is_field {
                    return Err("a trailer line that is not a header field".into());
                }
                self.trailer += line.len();
                if self.trailer > HEAD_MAX {
                    return Err("the trailer of a chunked body is too long".into());
                }
                State::Trailer
            }
            State::Data(_) | State::Done => self.state,
        };
        out.extend_from_slice(&line);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each request's head and body (as passed on).
    type Read = Vec<(Vec<u8>, Vec<u8>)>;

    /// What a connection's bytes read as, pushed in `parts`: each request's head and body, and
    /// why it stopped, if it did.
    fn read(parts: &[&[u8]]) -> (Read, Option<String>) {
        let mut r = Requests::default();
        let mut got: Read = Vec::new();
        for part in parts {
            r.push(part);
            loop {
                match r.next() {
                    Next::More => break,
                    Next::Head(h) => got.push((h.raw, Vec::new())),
                    Next::Body(b) => got.last_mut().expect("a head").1.extend(b),
                    Next::Bad(why) => return (got, Some(why)),
                }
            }
        }
        (got, None)
    }

    const CHUNKED: &[u8] = b"POST http://a.example/up HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;name=\"x y\"\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Sum: 1\r\n\r\n";
    const GET: &[u8] = b"GET http://b.example/next HTTP/1.1\r\nHost: b.example\r\n\r\n";
    const LENGTH: &[u8] =
        b"POST http://c.example/ HTTP/1.1\r\nContent-Length: 11\r\n\r\nGET / HTTP/";

    /// The head and body each of the three requests is.
    fn expected() -> Read {
        let split = |req: &[u8]| {
            let end = memchr::memmem::find(req, b"\r\n\r\n").expect("a head") + 4;
            (req[..end].to_vec(), req[end..].to_vec())
        };
        vec![split(CHUNKED), split(GET), split(LENGTH)]
    }

    #[test]
    fn requests_end_where_their_framing_says_at_every_split_of_the_bytes() {
        let all = [CHUNKED, GET, LENGTH].concat();
        assert_eq!(read(&[&all]), (expected(), None));
        for i in 0..=all.len() {
            assert_eq!(
                read(&[&all[..i], &all[i..]]),
                (expected(), None),
                "split at {i}"
            );
        }
        let bytes: Vec<&[u8]> = all.chunks(1).collect();
        assert_eq!(read(&bytes), (expected(), None), "byte by byte");
    }

    #[test]
    fn a_body_that_looks_like_a_request_is_a_body() {
        // The Content-Length body holds a request: it is body, and what follows is read next.
        let (got, bad) = read(&[LENGTH, b"1\r\nHost: evil\r\n\r\n"]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, b"GET / HTTP/");
        assert!(bad.is_some_and(|w| w.contains("not an HTTP")), "{got:?}");
        let mut r = Requests::default();
        r.push(&[CHUNKED, GET].concat());
        assert!(matches!(r.next(), Next::Head(_)));
        assert!(!r.between());
        while let Next::Body(_) = r.next() {}
        assert!(r.between(), "the next head was read: {:?}", r.buffered());
    }

    #[test]
    fn chunked_framing_two_servers_could_read_two_ways_is_refused() {
        let head = b"POST http://a.example/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (body, why) in [
            (&b"5\nhello\r\n0\r\n\r\n"[..], "CRLF alone"),
            (b"5;x\ny\r\nhello\r\n0\r\n\r\n", "CRLF alone"),
            (b"5\r\r\nhello\r\n0\r\n\r\n", "CRLF alone"),
            (b"5\r\nhello\n0\r\n\r\n", "not followed by CRLF"),
            (b"5\r\nhelloXY0\r\n\r\n", "not followed by CRLF"),
            (b"\r\n", "start with the size"),
            (b";x\r\n", "start with the size"),
            (b" 5\r\nhello\r\n0\r\n\r\n", "start with the size"),
            (b"-5\r\n", "start with the size"),
            (b"5 5\r\n", "not a size"),
            (b"5g\r\n", "not a size"),
            (b"0x5\r\n", "not a size"),
            (b"10000000000000000\r\n", "not a size"),
            (b"0\r\nX-A: 1\nX-B: 2\r\n\r\n", "CRLF alone"),
            (b"0\r\nnot a field\r\n\r\n", "not a header field"),
            (b"0\r\n: empty\r\n\r\n", "not a header field"),
            (b"0\r\n\x01X: y\r\n\r\n", "CRLF alone"),
        ] {
            let (got, bad) = read(&[head, body]);
            assert!(
                bad.as_deref().is_some_and(|w| w.contains(why)),
                "{:?}: {bad:?} {got:?}",
                String::from_utf8_lossy(body)
            );
            // Nothing of a bad line was passed on.
            let passed = got.first().map(|g| g.1.clone()).unwrap_or_default();
            assert!(body.starts_with(&passed), "{passed:?}");
        }
    }

    #[test]
    fn what_is_held_is_bounded() {
        let head = b"POST http://a.example/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let long_ext = [&b"1;"[..], &vec![b'x'; CHUNK_LINE_MAX]].concat();
        let (_, bad) = read(&[head, &long_ext]);
        assert!(bad.is_some_and(|w| w.contains("longer than")));
        let mut trailer = b"0\r\n".to_vec();
        while trailer.len() <= HEAD_MAX + 10 {
            trailer.extend_from_slice(b"X-Pad: yyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n");
        }
        let (_, bad) = read(&[head, &trailer]);
        assert!(bad.is_some_and(|w| w.contains("trailer")));
        // A large body passes through without being held.
        let big = b"POST http://a.example/ HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n";
        let mut r = Requests::default();
        r.push(big);
        assert!(matches!(r.next(), Next::Head(_)));
        let mut passed = 0;
        for _ in 0..250 {
            r.push(&[b'z'; 4000]);
            while let Next::Body(b) = r.next() {
                passed += b.len();
            }
            assert!(r.buffered().is_empty());
        }
        assert_eq!(passed, 1_000_000);
        assert!(r.between());
    }
}
