//! `GET /api/status`: what `orch status --json` prints, computed at most once at a time (requests
//! that come while it runs share the next computation; one that comes within [`FRESH`] of the last
//! computation, with no event logged and no integration test begun or ended since, gets that one), read as it is printed, every string
//! longer than [`TEXT_MAX`] bytes cut to it with a marker (agents' notes and errors can be large,
//! and the page shows them in a table's cell): a run of 10,000 tasks, however long its texts,
//! is shown. What would still be past [`ANSWER_MAX`] has its texts cut to [`TEXT_MIN`].

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value, json};
use tokio::io::AsyncReadExt as _;

use super::Served;
use super::data::escaped;
use super::http::Answer;
use crate::commands::orch_child;
use crate::untrusted::escaped_lines;

/// How long the status may take.
const READ_MAX: Duration = Duration::from_secs(60);
/// What `orch status --json` may print at most (read as it comes, only its cut texts kept).
pub(super) const PRINTED_MAX: u64 = 1 << 30;
/// A string of the status at most, in bytes, before the marker.
pub(super) const TEXT_MAX: usize = 8 << 10;
/// A string at most when the answer would be past [`ANSWER_MAX`].
pub(super) const TEXT_MIN: usize = 256;
/// The status's answer at most, before its texts are cut to [`TEXT_MIN`].
pub(super) const ANSWER_MAX: usize = 32 << 20;
/// How long a computed status serves the requests that come after it, with no event since.
const FRESH: Duration = Duration::from_millis(500);

/// The last status computed: when it started, the event log and the integration preview as
/// they were then, the answer.
pub(super) struct Cached {
    started: Instant,
    marks: Marks,
    answer: Answer,
}

/// A file's length and time.
type FileMark = Option<(u64, SystemTime)>;

/// What a status is computed from and no event says when it changes: the event log, the last
/// integration test's report, whether one runs. A status computed before any of them changed
/// is stale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Marks {
    events: FileMark,
    integration: IntegrationMark,
}

/// The last integration test's report file, and whether a test runs now.
pub(super) type IntegrationMark = (FileMark, bool);

fn file_mark(path: &Path) -> FileMark {
    let m = std::fs::symlink_metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// The integration preview's [`IntegrationMark`] in `state_dir`.
pub(super) fn integration_mark(state_dir: &Path) -> IntegrationMark {
    (
        file_mark(&crate::state_layout::INTEGRATION_LAST.path(state_dir)),
        crate::merge::integrate::running(state_dir),
    )
}

fn marks(state_dir: &Path) -> Marks {
    Marks {
        events: file_mark(&crate::state_layout::EVENTS.path(state_dir)),
        integration: integration_mark(state_dir),
    }
}

/// `GET /api/status`: the status, computed once for every request waiting on it.
pub(super) async fn status(served: &Served) -> Answer {
    let asked = Instant::now();
    let mut cache = served.status.lock().await;
    if let Some(c) = cache.as_ref() {
        let after = c.started >= asked;
        let fresh = c.started.elapsed() < FRESH && c.marks == marks(&served.state_dir);
        if after || fresh {
            return c.answer.clone();
        }
    }
    let started = Instant::now();
    let marks = marks(&served.state_dir);
    let answer = compute(served).await;
    *cache = Some(Cached {
        started,
        marks,
        answer: answer.clone(),
    });
    answer
}

async fn compute(served: &Served) -> Answer {
    let argv = vec![
        "--color=never".to_string(),
        "status".into(),
        "--json".into(),
        format!("--manifest={}", served.manifest.display()),
    ];
    match run(&argv).await {
        Ok((0, Ok(v), _)) => Answer::json(200, "OK", &fitted(escaped(v))),
        Ok((0, Err(e), _)) => Answer::error(
            502,
            "Bad Gateway",
            &escaped_lines(&format!("the command printed no status: {e}")),
        ),
        Ok((code, v, stderr)) => Answer::json(
            502,
            "Bad Gateway",
            &escaped(json!({
                "exit_code": code,
                "error": stderr.trim_end(),
                "output": v.unwrap_or(Value::Null),
            })),
        ),
        Err(e) => Answer::error(502, "Bad Gateway", &escaped_lines(&e)),
    }
}

/// `v`, its texts cut to [`TEXT_MIN`] when its JSON is past [`ANSWER_MAX`].
fn fitted(v: Value) -> Value {
    if v.to_string().len() <= ANSWER_MAX {
        return v;
    }
    recut(v, TEXT_MIN)
}

fn recut(v: Value, max: usize) -> Value {
    match v {
        Value::String(s) => Value::String(cut(&s, max)),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| recut(x, max)).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, x)| (k, recut(x, max))).collect()),
        other => other,
    }
}

/// `s`, when longer than `max` bytes, cut to it (at a character's start) with a marker.
pub(super) fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes cut]", &s[..end], s.len() - end)
}

/// Reads a JSON value keeping each string cut to its bound: never more than one string whole.
struct Cut(usize);

impl<'de> DeserializeSeed<'de> for Cut {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Cut {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(cut(v, self.0)))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Cut(self.0))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key_seed(Cut(self.0))? {
            let v = map.next_value_seed(Cut(self.0))?;
            let key = match k {
                Value::String(s) => s,
                other => other.to_string(),
            };
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// The command's output as it comes, from the task that reads the pipe; an error past
/// [`PRINTED_MAX`].
struct Chunks {
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
    total: u64,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.blocking_recv() {
                Some(c) => {
                    self.total += c.len() as u64;
                    if self.total > PRINTED_MAX {
                        return Err(std::io::Error::other(format!(
                            "the status is past {PRINTED_MAX} bytes"
                        )));
                    }
                    self.chunk = c;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

type Parsed = Result<Value, String>;

/// Runs `orch ARGV` through the shared runner ([`orch_child::run_reading`]: its own process
/// group, stopped at [`READ_MAX`], its stderr bounded): its exit code, its output read as JSON
/// as it comes with its strings cut, its stderr.
async fn run(argv: &[String]) -> Result<(i32, Parsed, String), String> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let parse = tokio::task::spawn_blocking(move || -> Parsed {
        let reader = Chunks {
            rx,
            chunk: Vec::new(),
            at: 0,
            total: 0,
        };
        let mut de = serde_json::Deserializer::from_reader(reader);
        let v = Cut(TEXT_MAX)
            .deserialize(&mut de)
            .map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())?;
        Ok(v)
    });
    let pump = |mut out: tokio::process::ChildStdout| async move {
        let mut buf = vec![0u8; 64 << 10];
        let mut tx = Some(tx);
        loop {
            let n = out.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            // The parser gone (it failed): the rest read and dropped, the writer never blocked.
            if let Some(t) = &tx
                && t.send(buf[..n].to_vec()).await.is_err()
            {
                tx = None;
            }
        }
    };
    // The pump (and with it the parser's channel) is dropped when the command fails or is
    // stopped: the parser then ends too.
    let ended = orch_child::run_reading(argv, READ_MAX, pump)
        .await
        .map_err(|e| e.to_string())?;
    let parsed = parse
        .await
        .unwrap_or_else(|e| Err(format!("the status's reader failed: {e}")));
    Ok((ended.code, parsed, ended.stderr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_are_cut_with_a_marker_at_a_character() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcdef", 3), "abc… [3 bytes cut]");
        assert_eq!(cut("aé", 2), "a… [2 bytes cut]");
        let text = format!(
            r#"{{"k": ["{}", 1, 2.5, null, true], "{}": {{}}}}"#,
            "x".repeat(20),
            "y".repeat(20)
        );
        let mut de = serde_json::Deserializer::from_str(&text);
        let v = Cut(4).deserialize(&mut de).expect("json");
        assert_eq!(v["k"][0], "xxxx… [16 bytes cut]");
        assert_eq!(v["k"][2], 2.5);
        assert!(v.get("yyyy… [16 bytes cut]").is_some(), "{v}");
    }
}
