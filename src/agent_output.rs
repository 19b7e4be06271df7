//! What an agent's output says about its attempt: the tokens and cost it spent, the client's own
//! error, its last words, and what kind of failure it was (one a retry may fix, one a person must
//! fix, a usage limit to wait out).
//!
//! Read from the attempt's part of its log (`orch up` appends every attempt to one log). Three JSON
//! line formats are understood; anything else is plain text, of which the last lines are kept:
//!
//! - Claude Code, `--output-format stream-json --verbose` (or `json`): the last line is
//!   `{"type":"result","subtype":"success"|"error_…","is_error":…,"result":"…","total_cost_usd":…,
//!   "usage":{"input_tokens":…,"output_tokens":…,"cache_creation_input_tokens":…,
//!   "cache_read_input_tokens":…}}`; a failed API call comes as `is_error: true` with the message in
//!   `result`; `assistant` events may carry `"error":"rate_limit"|"authentication_failed"`.
//! - Codex, `exec --json`: `{"type":"turn.completed","usage":{"input_tokens":…,
//!   "cached_input_tokens":…,"output_tokens":…}}` per turn (summed; the cached tokens are part of
//!   `input_tokens`), `{"type":"turn.failed","error":{"message":…}}`, `{"type":"error","message":…}`.
//! - Gemini CLI, `--output-format stream-json`: `init`, `message` (`role`, `content`, `delta`:
//!   the assistant's answer in pieces), `tool_use`, `tool_result`, and last
//!   `{"type":"result","status":"success"|"error","error":{"message":…},"stats":{"total_tokens":…,
//!   "input_tokens":…,"output_tokens":…,"cached":…,"input":…,"models":{…}}}` (the tokens of every
//!   model call, the cached ones part of `input_tokens`; no cost).
//! - opencode, `run --format json`, Qwen Code, `--output-format stream-json` and GitHub Copilot
//!   CLI, `--output-format json`, with their usage file: see [`clients`].

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

mod classify;
mod clients;

pub(crate) use classify::{classify, reset_wait};

/// Where the last attempt's output begins in a log's `text`: at its header (other orch lines,
/// such as a batch job's id, may follow it); none when no attempt header is there.
pub(crate) fn last_attempt_start(text: &str) -> Option<usize> {
    text.rmatch_indices("=== orch: attempt ")
        .map(|(i, _)| i)
        .find(|&i| {
            text[i..]
                .lines()
                .next()
                .is_some_and(|l| l.contains(" started at "))
        })
}

#[cfg(test)]
use classify::{clock_time, clock_wait};
pub use clients::read_usage_file;

/// Tokens and cost of one attempt (or a sum of them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input tokens not read from the cache.
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub(crate) cache_read_tokens: u64,
    pub(crate) cache_write_tokens: u64,
    /// In millionths of a US dollar; `None` when the client named no cost.
    pub(crate) cost_micro_usd: Option<u64>,
}

impl Usage {
    /// The tokens in `v`'s fields named `[input, output, cache read, cache write]` (0 when
    /// missing), no cost.
    fn of_fields(v: &Value, [input, output, read, write]: [&str; 4]) -> Usage {
        let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        Usage {
            input_tokens: n(input),
            output_tokens: n(output),
            cache_read_tokens: n(read),
            cache_write_tokens: n(write),
            cost_micro_usd: None,
        }
    }

    /// Every token the client counted: input, output, cache reads and writes.
    pub(crate) fn tokens(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_read_tokens)
            .saturating_add(self.cache_write_tokens)
    }

    /// `self + other` (a cost is known when either knows one).
    pub(crate) fn plus(&self, other: &Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens.saturating_add(other.input_tokens),
            output_tokens: self.output_tokens.saturating_add(other.output_tokens),
            cache_read_tokens: self
                .cache_read_tokens
                .saturating_add(other.cache_read_tokens),
            cache_write_tokens: self
                .cache_write_tokens
                .saturating_add(other.cache_write_tokens),
            cost_micro_usd: match (self.cost_micro_usd, other.cost_micro_usd) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
            },
        }
    }

    /// The cost in US dollars, when known.
    pub fn cost_usd(&self) -> Option<f64> {
        self.cost_micro_usd.map(micro_to_usd)
    }

    /// `12.3k tokens, $0.0421`: for people.
    pub(crate) fn describe(&self) -> String {
        let tokens = format!("{} tokens", short_count(self.tokens()));
        match self.cost_usd() {
            Some(c) => format!("{tokens}, {}", format_usd(c)),
            None => tokens,
        }
    }
}

impl serde::Serialize for Usage {
    /// `{"input_tokens":…,"output_tokens":…,"cache_read_tokens":…,"cache_write_tokens":…,
    /// "tokens":…,"cost_usd":…}` (`cost_usd` only when known).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("input_tokens", &self.input_tokens)?;
        m.serialize_entry("output_tokens", &self.output_tokens)?;
        m.serialize_entry("cache_read_tokens", &self.cache_read_tokens)?;
        m.serialize_entry("cache_write_tokens", &self.cache_write_tokens)?;
        m.serialize_entry("tokens", &self.tokens())?;
        if let Some(c) = self.cost_usd() {
            m.serialize_entry("cost_usd", &c)?;
        }
        m.end()
    }
}

/// Dollars to millionths of a dollar (negative and non-finite values count as 0).
pub(crate) fn usd_to_micro(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * 1_000_000.0).round() as u64
    } else {
        0
    }
}

pub(crate) fn micro_to_usd(micro: u64) -> f64 {
    micro as f64 / 1_000_000.0
}

/// `$0.0421`, `$12.50`.
pub(crate) fn format_usd(usd: f64) -> String {
    if usd < 1.0 {
        format!("${usd:.4}")
    } else {
        format!("${usd:.2}")
    }
}

/// `950`, `12.3k`, `4.1M`.
pub(crate) fn short_count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1000.0),
        _ => format!("{:.1}M", n as f64 / 1_000_000.0),
    }
}

/// A failure only a person can fix: launching the agent again cannot help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fatal {
    /// The agent's program is not installed (or not on `PATH`).
    MissingProgram,
    /// The client rejected the flags orch passed.
    RejectedFlags,
    /// The client is not logged in, or its API key is wrong.
    Auth,
}

impl Fatal {
    /// What a person does about it, for agent `agent`.
    pub(crate) fn fix(self, agent: &str) -> String {
        match self {
            Fatal::MissingProgram => format!(
                "install the program of agent `{agent}` (or put it on PATH), or set `command` in `[agents.{agent}]` of plans.toml"
            ),
            Fatal::RejectedFlags => format!(
                "the client does not accept the flags orch passes: fix `command` in `[agents.{agent}]` of plans.toml for this version of the client"
            ),
            Fatal::Auth => format!(
                "log the client of agent `{agent}` in (or set its API key) and run `orch up` again"
            ),
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Fatal::MissingProgram => "missing_program",
            Fatal::RejectedFlags => "rejected_flags",
            Fatal::Auth => "authentication",
        }
    }
}

/// What kind of failure an attempt's output shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Class {
    /// None, or one that another attempt may not repeat.
    #[default]
    Ordinary,
    /// Stop launching this agent.
    Fatal(Fatal),
    /// A usage or rate limit: wait before launching this agent again; `None` when the client
    /// named no time.
    Limit(Option<Duration>),
}

/// What one attempt's output says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentOutput {
    /// Tokens and cost, when the client printed them.
    pub usage: Option<Usage>,
    /// The client's error, from its JSON output.
    pub(crate) error: Option<String>,
    /// The client's final message (Claude Code's `result`), when it printed one.
    pub(crate) result: Option<String>,
    /// The last lines of plain (not JSON) output, without orch's own lines.
    pub(crate) tail: String,
    /// JSON events of a known client seen.
    pub(crate) events: usize,
    pub class: Class,
    /// When the class comes from the plain output's words (no client error): the line that
    /// says it (the limit's or the login's words, not whatever the agent printed first).
    pub(crate) class_line: Option<String>,
    /// A line of a confined attempt's output saying a write outside what it may write was
    /// denied (`Permission denied` or `Read-only file system` on such a path): the sandbox's
    /// doing.
    pub(crate) sandbox_denied: Option<String>,
}

/// The most of an attempt's log read: its end, where the result is.
const READ_LIMIT: u64 = 4 << 20;
/// Plain lines kept for [`AgentOutput::tail`].
const TAIL_LINES: usize = 12;
const LINE_CHARS: usize = 400;
/// Plain output longer than this (in lines) is an agent that worked: its words are not
/// searched for a failure class.
const SHORT_OUTPUT: usize = 20;
/// The longest wait for a limit's reset that is believed.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

impl AgentOutput {
    /// `; the sandbox denied a write: <line> (…)` for a failure's cause, when it did.
    pub(crate) fn sandbox_note(&self) -> String {
        self.sandbox_denied
            .as_ref()
            .map(|l| {
                format!(
                    "; the sandbox (Landlock) denied a write outside the agent's worktree: {l} (write inside the worktree or $TMPDIR, or allow the path with `sandbox_write`)"
                )
            })
            .unwrap_or_default()
    }

    /// The cause of a failure, in the client's words when it gave some: its error, else its
    /// last lines of output, else its final message.
    pub(crate) fn cause(&self) -> Option<String> {
        self.error
            .clone()
            .or_else(|| self.class_line.clone())
            .or_else(|| (!self.tail.is_empty()).then(|| self.tail.clone()))
            .or_else(|| self.result.clone().filter(|r| !r.trim().is_empty()))
    }

    /// What the agent last said (its final message, else its last lines).
    pub fn last_words(&self) -> Option<String> {
        self.result
            .clone()
            .filter(|r| !r.trim().is_empty())
            .or_else(|| (!self.tail.is_empty()).then(|| self.tail.clone()))
    }
}

/// Reads the output of the last attempt in `log` (what follows the last `=== orch: attempt N
/// started` line) and parses it; an unreadable log gives an empty output.
pub(crate) fn read_attempt(log: &Path, now: DateTime<Utc>) -> AgentOutput {
    // The log is where an unconfined agent can put a link or a FIFO: read as untrusted.
    let Ok((_, bytes)) = crate::untrusted::read::tail(log, 0, READ_LIMIT) else {
        return AgentOutput::default();
    };
    let text = String::from_utf8_lossy(&bytes);
    let start = last_attempt_start(&text).unwrap_or(0);
    let attempt = &text[start..];
    let mut out = parse(attempt, now);
    out.sandbox_denied = sandbox_denied(attempt);
    if let Some(u) = clients::read_usage_file(&usage_file(log)) {
        out.usage = Some(u);
    }
    out
}

/// The usage file of the attempts logged in `log` (`{{ usage_file }}`): `usage.json` in the
/// directory `<task>.usage` beside `<task>.log`, which orch makes afresh (empty) before each
/// attempt whose argv names it and which that attempt may write (a client may write the file
/// by a rename: Copilot CLI does).
pub(crate) fn usage_file(log: &Path) -> std::path::PathBuf {
    log.with_extension("usage").join("usage.json")
}

/// The prefix of the log line `orch up` writes for a confined attempt, before the paths it may
/// write (comma-separated).
pub(crate) const CONFINED_LINE: &str = "=== orch: confined (Landlock): writes only beneath ";

/// The line a confined attempt's log starts with: the paths it may write (read back by
/// `sandbox_denied`).
pub(crate) fn confined_line(write: &[std::path::PathBuf]) -> String {
    let paths: Vec<String> = write.iter().map(|p| p.display().to_string()).collect();
    format!("{CONFINED_LINE}{} ===", paths.join(", "))
}

/// The first line of a confined attempt's output that reports `Permission denied` (EACCES) on
/// a path beneath none of the paths the attempt may write.
fn sandbox_denied(attempt: &str) -> Option<String> {
    let allowed: Vec<&str> = attempt
        .lines()
        .find_map(|l| l.strip_prefix(CONFINED_LINE))?
        .trim_end_matches(" ===")
        .split(", ")
        .map(|p| p.trim_end_matches('/'))
        .collect();
    let inside = |p: &str| {
        allowed
            .iter()
            .any(|a| p == *a || p.strip_prefix(a).is_some_and(|r| r.starts_with('/')))
    };
    attempt
        .lines()
        .filter(|l| !l.starts_with("=== orch: "))
        // Landlock's refusal, or the read-only mount that covers everything outside the write
        // set (a write there fails with `EROFS` before Landlock is asked).
        .filter(|l| {
            [
                "Permission denied",
                "EACCES",
                "Read-only file system",
                "EROFS",
            ]
            .iter()
            .any(|w| l.contains(w))
        })
        .find(|l| {
            l.split(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '`' | ':' | ','))
                .filter(|w| w.starts_with('/'))
                .any(|w| !inside(w))
        })
        .map(|l| l.trim().chars().take(300).collect())
}

/// Parses an attempt's output (see the module documentation).
pub fn parse(text: &str, now: DateTime<Utc>) -> AgentOutput {
    let mut out = AgentOutput::default();
    let mut usage: Option<Usage> = None;
    let mut codex_usage: Option<Usage> = None;
    let mut step_usage: Option<Usage> = None;
    let mut gemini_message: Option<String> = None;
    let mut plain: Vec<&str> = Vec::new();
    let mut hinted: Option<Class> = None;
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with("=== orch: ") {
            continue;
        }
        let event = t
            .starts_with('{')
            .then(|| serde_json::from_str::<Value>(t).ok())
            .flatten();
        let Some(v) = event else {
            plain.push(t);
            continue;
        };
        let text_at = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        match v.get("type").and_then(Value::as_str) {
            // Gemini CLI's last line: `status` and `stats` (Claude Code's has a `subtype`).
            Some("result") if v.get("subtype").is_none() && v.get("stats").is_some() => {
                if v.get("status").and_then(Value::as_str) == Some("error") {
                    let message = text_at("/error/message");
                    out.error = message.or_else(|| Some("the client ended with an error".into()));
                }
                if let Some(stats) = v.get("stats") {
                    usage = Some(cached_in_input(stats, "cached"));
                }
            }
            // Gemini CLI: the model's answer comes in pieces (`delta`), the last is its final word.
            Some("message") if v.get("role").is_some() => {
                if v.get("role").and_then(Value::as_str) == Some("assistant")
                    && let Some(t) = v.get("content").and_then(Value::as_str)
                {
                    let delta = v.get("delta").and_then(Value::as_bool) == Some(true);
                    match (&mut gemini_message, delta) {
                        (Some(m), true) => m.push_str(t),
                        _ => gemini_message = Some(t.to_string()),
                    }
                    out.result.clone_from(&gemini_message);
                }
            }
            // Gemini CLI's tool calls: the next assistant message is a new one.
            Some("tool_use" | "tool_result") => {
                gemini_message = None;
            }
            // GitHub Copilot CLI's last line: its exit code (its usage is in the usage file).
            Some("result") if v.get("exitCode").is_some() => {}
            Some("result") => {
                let text = v.get("result").and_then(Value::as_str).map(str::to_string);
                let is_error = v.get("is_error").and_then(Value::as_bool).unwrap_or(false);
                let subtype = v.get("subtype").and_then(Value::as_str).unwrap_or("");
                if is_error || subtype.starts_with("error") {
                    out.error = Some(match &text {
                        Some(t) if !t.trim().is_empty() => t.clone(),
                        // Qwen Code: `error.message`.
                        _ => claude_errors(&v)
                            .or_else(|| text_at("/error/message"))
                            .unwrap_or_else(|| format!("the client ended with `{subtype}`")),
                    });
                }
                // The HTTP status of a failed API call: the surest sign of what failed.
                if is_error {
                    let status = v.get("api_error_status").and_then(Value::as_u64);
                    hinted = status.and_then(class_of_status).or(hinted);
                }
                out.result = text;
                let mut u = v.get("usage").map(claude_usage).unwrap_or_default();
                if let Some(c) = v.get("total_cost_usd").and_then(Value::as_f64) {
                    u.cost_micro_usd = Some(usd_to_micro(c));
                }
                if v.get("usage").is_some() || u.cost_micro_usd.is_some() {
                    usage = Some(u);
                }
            }
            Some("assistant") => match v.get("error").and_then(Value::as_str) {
                Some("rate_limit") => hinted = Some(Class::Limit(None)),
                Some("authentication_failed") => hinted = Some(Class::Fatal(Fatal::Auth)),
                _ => {}
            },
            // Claude Code announces each of its own retries of a failed API call; an attempt
            // stopped while retrying a 401 says nothing else.
            Some("system") => {
                if v.get("subtype").and_then(Value::as_str) == Some("api_retry")
                    && let Some(status) = v.get("error_status").and_then(Value::as_u64)
                    && let Some(c @ Class::Fatal(_)) = class_of_status(status)
                {
                    hinted = Some(c);
                }
            }
            // Codex: the agent's messages; the last is its final word (a refusal, say).
            Some("item.completed") => {
                if v.pointer("/item/type").and_then(Value::as_str) == Some("agent_message")
                    && let Some(t) = v.pointer("/item/text").and_then(Value::as_str)
                {
                    out.result = Some(t.to_string());
                }
            }
            Some("turn.completed") => {
                if let Some(u) = v.get("usage") {
                    let turn = cached_in_input(u, "cached_input_tokens");
                    codex_usage = Some(codex_usage.unwrap_or_default().plus(&turn));
                }
            }
            Some("turn.failed") => {
                if let Some(m) = v.pointer("/error/message").and_then(Value::as_str) {
                    out.error = Some(m.to_string());
                }
            }
            Some("error") => {
                if let Some(m) = v.get("message").and_then(Value::as_str) {
                    out.error = Some(m.to_string());
                } else if let Some((m, status)) = clients::opencode_error(&v) {
                    out.error = Some(m);
                    hinted = status.and_then(class_of_status).or(hinted);
                }
            }
            // opencode: each step's tokens and cost; its text parts, the last its final word.
            Some("step_finish") => {
                if let Some(u) = v.get("part").map(clients::opencode_step) {
                    step_usage = Some(step_usage.unwrap_or_default().plus(&u));
                }
            }
            Some("text") if v.get("part").is_some() => {
                if let Some(t) = v.pointer("/part/text").and_then(Value::as_str) {
                    out.result = Some(t.to_string());
                }
            }
            // GitHub Copilot CLI: dotted event names; its final word, its error.
            Some(ty) if clients::is_copilot_event(ty) => match ty {
                "assistant.message" => {
                    if let Some(t) = v
                        .pointer("/data/content")
                        .and_then(Value::as_str)
                        .filter(|t| !t.trim().is_empty())
                    {
                        out.result = Some(t.to_string());
                    }
                }
                "session.error" => {
                    let (m, status) = clients::copilot_error(&v);
                    out.error = Some(m);
                    hinted = status.and_then(class_of_status).or(hinted);
                }
                _ => {}
            },
            Some(
                "user" | "thread.started" | "turn.started" | "item.started" | "item.updated"
                | "stream_event" | "init" | "step_start",
            ) => {}
            _ => {
                plain.push(t);
                continue;
            }
        }
        out.events += 1;
    }
    out.usage = [usage, codex_usage, step_usage]
        .into_iter()
        .flatten()
        .reduce(|a, b| a.plus(&b));
    let keep = plain.len().saturating_sub(TAIL_LINES);
    out.tail = plain[keep..]
        .iter()
        .map(|l| clip(l, LINE_CHARS))
        .collect::<Vec<_>>()
        .join("\n");
    // The client's error decides when there is one; else what it printed last, but only from
    // a short output: a client that cannot start (no login, a limit, a flag) says so at once,
    // while an agent that worked and failed may quote such words from its own work.
    let judged = out.error.clone().unwrap_or_else(|| out.tail.clone());
    let short = out.error.is_some() || plain.len() <= SHORT_OUTPUT;
    out.class = match classify(&judged, now) {
        // The client's own word (an HTTP status, an error kind) beats its wording.
        _ if hinted.is_some_and(|h| h != Class::Limit(None)) => hinted.unwrap_or_default(),
        _ if !short => hinted.unwrap_or_default(),
        Class::Ordinary => hinted.unwrap_or_default(),
        Class::Fatal(Fatal::RejectedFlags) if out.events > 0 => Class::Ordinary,
        c => c,
    };
    if let (Class::Limit(None), Some(reset)) = (out.class, reset_wait(&judged, now)) {
        out.class = Class::Limit(Some(reset));
    }
    if out.error.is_none() && out.class != Class::Ordinary {
        // The last line that says the class on its own (a limit, a login), else none.
        let same = |line: &&str| {
            std::mem::discriminant(&classify(line, now)) == std::mem::discriminant(&out.class)
        };
        out.class_line = out.tail.lines().rev().find(same).map(str::to_string);
    }
    out
}

/// The failure class of an API call's HTTP status: 401 and 403 a person must fix, 429 a limit
/// to wait out, 5xx (529: overloaded) a busy service to wait out too (with the backoff), since
/// orch turns Claude Code's own retries off ([`crate::agent_env::CLAUDE_CODE_MAX_RETRIES`]).
fn class_of_status(status: u64) -> Option<Class> {
    match status {
        401 | 403 => Some(Class::Fatal(Fatal::Auth)),
        429 | 500..=599 => Some(Class::Limit(None)),
        _ => None,
    }
}

/// The messages of a Claude Code `errors` array.
fn claude_errors(v: &Value) -> Option<String> {
    let list = v.get("errors")?.as_array()?;
    let msgs: Vec<String> = list
        .iter()
        .map(|e| match e {
            Value::String(s) => s.clone(),
            other => other
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| other.to_string(), str::to_string),
        })
        .collect();
    (!msgs.is_empty()).then(|| msgs.join("; "))
}

fn claude_usage(u: &Value) -> Usage {
    Usage::of_fields(
        u,
        [
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ],
    )
}

/// Codex's `usage`, Gemini CLI's `stats`: `input_tokens` counts the cached ones (field
/// `cached`) too.
fn cached_in_input(u: &Value, cached: &str) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input_tokens: n("input_tokens").saturating_sub(n(cached)),
        output_tokens: n("output_tokens"),
        cache_read_tokens: n(cached),
        ..Usage::default()
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests;
