//! Streaming input (`input = "stream-json"`, Claude Code's `--input-format stream-json`): how an
//! agent gets its prompt and a person's messages while it runs, on the wrapper's side.
//!
//! The agent's stdin is a pipe the wrapper writes: first the prompt, as one user message of the
//! stream-json input format ([`user_message`]), then, unchanged, whatever orch writes on the
//! wrapper's stdin (each message already one such line), until orch closes its end. The client
//! answers each user message in a turn and ends once its stdin is closed and every message it
//! read is answered. The wrapper watches the agent's output for the end of a turn (a `result`
//! event, [`TurnWatch`]) and records it in a file of orch's ([`--turn-ended`]); orch then closes
//! its end of the pipe. orch alone closes it, so a message is either written before the close
//! (the client answers it) or kept for the next attempt: none is lost in between.
//!
//! What the agent prints is untrusted: a line that claims to be a `result` only ends the
//! agent's own input, and a line longer than [`LINE_MAX`] is not read at all.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The longest output line read for a `result` event; a longer one is skipped (a result that
/// long is not seen, and the agent's input stays open until it ends or is stopped).
pub(crate) const LINE_MAX: usize = 8 * 1024 * 1024;

/// The most of the prompt file the wrapper reads for the first message.
const PROMPT_MAX: u64 = 64 * 1024 * 1024;

/// `text` as one user message of the stream-json input format, on one line (its newline
/// included): `{"type":"user","message":{"role":"user","content":TEXT}}`.
pub(crate) fn user_message(text: &str) -> String {
    let mut line = serde_json::json!({
        "type": "user",
        "message": {"role": "user", "content": text},
    })
    .to_string();
    line.push('\n');
    line
}

/// Starts feeding the agent's stdin `to` from a thread of its own: the prompt at `prompt` (the
/// prompt file orch wrote, opened without following a link) as the first message, then what
/// comes on `from` (orch's pipe) until its end of file; then `to` is closed. A write the agent
/// does not take (it exited) ends the feeding.
pub(crate) fn feed(
    prompt: &Path,
    from: impl Read + Send + 'static,
    to: io::PipeWriter,
) -> io::Result<std::thread::JoinHandle<()>> {
    let mut file = crate::links::no_follow()
        .read(true)
        .open(prompt)
        .map_err(|e| crate::links::refused(prompt, e))?;
    let mut bytes = Vec::new();
    (&mut file).take(PROMPT_MAX).read_to_end(&mut bytes)?;
    let first = user_message(&String::from_utf8_lossy(&bytes));
    Ok(std::thread::spawn(move || {
        let mut to = to;
        let mut from = from;
        if to.write_all(first.as_bytes()).is_err() {
            return;
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }))
}

/// Watches an agent's output for the end of its turn: a line that is a JSON object whose
/// `type` is `result`. The first one seen is recorded at its path (made anew, never through a
/// link); later ones change nothing.
pub(crate) struct TurnWatch {
    path: PathBuf,
    line: Vec<u8>,
    /// The line being read passed [`LINE_MAX`]: skipped to its end.
    over: bool,
    seen: bool,
}

impl TurnWatch {
    pub(crate) fn new(path: PathBuf) -> Self {
        let _ = std::fs::remove_file(&path);
        Self {
            path,
            line: Vec::new(),
            over: false,
            seen: false,
        }
    }

    /// Whether a turn's end was seen.
    #[cfg(test)]
    pub(crate) fn seen(&self) -> bool {
        self.seen
    }

    /// Takes the next bytes of the output.
    pub(crate) fn take(&mut self, mut bytes: &[u8]) {
        while !self.seen && !bytes.is_empty() {
            let (part, ends) = match memchr::memchr(b'\n', bytes) {
                Some(i) => (&bytes[..i], Some(i + 1)),
                None => (bytes, None),
            };
            if !self.over {
                if self.line.len() + part.len() > LINE_MAX {
                    self.over = true;
                    self.line = Vec::new();
                } else {
                    self.line.extend_from_slice(part);
                }
            }
            match ends {
                Some(next) => {
                    if !self.over && is_result(&self.line) {
                        self.seen = true;
                        record(&self.path);
                    }
                    self.line.clear();
                    self.over = false;
                    bytes = &bytes[next..];
                }
                None => return,
            }
        }
    }
}

/// Whether `line` is a stream-json `result` event: a JSON object whose `type` is `result`.
fn is_result(line: &[u8]) -> bool {
    if memchr::memmem::find(line, b"\"result\"").is_none() {
        return false;
    }
    #[derive(serde::Deserialize)]
    struct Typed<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Typed<'_>>(line).is_ok_and(|t| t.kind.as_deref() == Some("result"))
}

/// Records the end of a turn at `path` (orch's state directory).
fn record(path: &Path) {
    let _ = std::fs::remove_file(path);
    if let Ok(mut f) = crate::links::no_follow()
        .write(true)
        .create_new(true)
        .open(path)
    {
        let _ = f.write_all(b"result\n");
    }
}

/// Whether the end of a turn is recorded at `path` (by [`TurnWatch`]).
pub(crate) fn turn_ended(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_one_line_of_json_whatever_it_holds() {
        let line = user_message("a \"quoted\"\nsecond line\u{1b}[2J\t\\");
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1);
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["type"], "user");
        assert_eq!(v["message"]["role"], "user");
        assert_eq!(
            v["message"]["content"],
            "a \"quoted\"\nsecond line\u{1b}[2J\t\\"
        );
    }

    #[test]
    fn the_first_result_event_is_recorded_whatever_the_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = concat!(
            "{\"type\":\"system\",\"subtype\":\"init\"}\n",
            "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"{\\\"type\\\":\\\"result\\\"}\"}]}}\n",
            "not json \"result\"\n",
            "{\"result\":\"done\",\"usage\":{},\"type\":\"result\"}\n",
        );
        // Every split of the output into two chunks.
        for cut in 0..out.len() {
            let path = dir.path().join(format!("turn-{cut}"));
            let mut w = TurnWatch::new(path.clone());
            w.take(&out.as_bytes()[..cut]);
            assert!(!turn_ended(&path) || cut == out.len(), "early at {cut}");
            w.take(&out.as_bytes()[cut..]);
            assert!(w.seen() && turn_ended(&path), "missed at {cut}");
        }
        // Not a result: another type, a nested one, a text, an unfinished line.
        let path = dir.path().join("none");
        let mut w = TurnWatch::new(path.clone());
        w.take(out.rsplit_once("{\"result\"").expect("cut").0.as_bytes());
        w.take(b"{\"type\":\"result\"");
        assert!(!w.seen() && !turn_ended(&path));
    }

    #[test]
    fn a_line_past_the_bound_is_skipped_and_the_next_one_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("turn");
        let mut w = TurnWatch::new(path.clone());
        let long = format!(
            "{{\"type\":\"result\",\"result\":\"{}\"}}\n",
            "x".repeat(LINE_MAX)
        );
        for chunk in long.as_bytes().chunks(65536) {
            w.take(chunk);
        }
        assert!(!w.seen(), "a line past the bound is not read");
        assert!(
            w.line.capacity() <= LINE_MAX + 65536,
            "nothing held past the bound"
        );
        w.take(b"{\"type\":\"result\"}\n");
        assert!(w.seen() && turn_ended(&path));
    }

    #[test]
    fn a_link_planted_at_the_record_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").expect("write");
        let path = dir.path().join("turn");
        let mut w = TurnWatch::new(path.clone());
        std::os::unix::fs::symlink(&target, &path).expect("link");
        w.take(b"{\"type\":\"result\"}\n");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep");
        assert!(turn_ended(&path), "recorded as a file of its own");
    }
}
