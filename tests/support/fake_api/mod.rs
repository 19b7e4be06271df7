//! A fake model API on 127.0.0.1 for the real agent CLIs (tests/agents_real.rs): the Anthropic
//! Messages API as Claude Code calls it (`POST /v1/messages`, streamed as SSE when asked, and
//! `/v1/messages/count_tokens`), the OpenAI Responses API as Codex calls it (`POST
//! /v1/responses`, streamed as SSE), the Gemini API as Gemini CLI calls it (`POST
//! /v1beta/models/MODEL:generateContent` and `:streamGenerateContent?alt=sse`, with the answer to
//! its model router's classifier call), and the OpenAI chat-completions API as aider calls it
//! (`POST /v1/chat/completions`, streamed or not), and the same API with tools as opencode, Qwen
//! Code and GitHub Copilot CLI call it: streamed chunks with `tool_calls` in each client's own
//! tool names (`write`, `write_file`, `create`; `bash`, `run_shell_command`), the `role: "tool"`
//! results read back, the working directory taken from where each client's system prompt says
//! it, and a last chunk with the usage.
//!
//! It answers as a model following orch's task prompt would: it reads the task id, the worktree,
//! the file named in backticks in the task's heading and the report command the prompt gives
//! (`... task done ID --note "..."`), then calls tools one turn at a time: write the file, run the
//! report command, and ends with a final message. aider, which calls no tools, gets one answer in
//! its "whole" edit format: the file's name, then its whole content in a fence. Each test chooses its behaviour
//! ([`Behaviour`]): normal, refuse, HTTP 429 with a reset time, HTTP 401; every answer carries
//! usage figures ([`USAGE_INPUT`], [`USAGE_OUTPUT`]). What the clients sent back (the tool
//! results, with their error flag) is kept for the test to check ([`FakeApi::tool_results`]).
//!
//! One thread accepts, one thread per connection; every response closes its connection. The
//! server stops when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

mod conversation;
pub mod env;
mod replies;

use conversation::{Conversation, Step};
use replies::{
    anthropic_reply, chat_reply, chat_tools_reply, gemini_reply, rate_limited, responses_reply,
    unauthorized,
};

/// Input tokens reported for every model call.
pub const USAGE_INPUT: u64 = 1200;
/// Output tokens reported for every model call.
pub const USAGE_OUTPUT: u64 = 80;

/// How the fake model answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Follows the prompt: writes the task's file, reports done, says so.
    Normal,
    /// Answers at once with "I cannot do this: <reason>" and calls no tool.
    Refuse(String),
    /// HTTP 429 (a rate or usage limit) for the next `times` model calls, with a reset
    /// `reset_secs` from now; then as [`Behaviour::Normal`].
    RateLimited { times: usize, reset_secs: u64 },
    /// HTTP 401 (a bad API key) for every model call.
    Unauthorized,
    /// As [`Behaviour::Normal`], but the file it writes says `… fixed by task ID` only when
    /// the prompt holds this text (a failed check's output, given to the retry's prompt), and
    /// `… written by task ID` otherwise.
    FixesWhenTold(String),
    /// Runs this shell command first (a test script), then goes on as [`Behaviour::Normal`]
    /// (the task's file written, the report), the command's result not counted.
    RunsFirst(String),
    /// Asks orch first (`orch task ask ID "question"`, the report command of the prompt with
    /// `ask` for `done`) and ends its turn waiting; once a user message of the conversation
    /// holds `answer` (a resumed session's next prompt, or a fresh prompt that carries the
    /// answer), goes on as [`Behaviour::Normal`].
    Asks { question: String, answer: String },
    /// Ends its turn waiting (a text, no tool) until a user message of the conversation holds
    /// this text (a person's message said while it runs); then as
    /// [`Behaviour::FixesWhenTold`]: the file it writes says `… fixed by task ID`.
    Listens(String),
    /// Calls the client's tools in this order, one a turn, each with its arguments (an MCP
    /// server's tools as Claude Code names them, `mcp__orch__status`); then says `done`.
    /// Anthropic's API only (Claude Code); a call without tools offered is answered with text.
    CallsTools {
        script: Vec<(String, Value)>,
        done: String,
    },
}

/// What the fake model read in one model call: the user messages' text and the commands of
/// the tool calls answered so far.
#[derive(Clone, Debug)]
pub struct Seen {
    pub prompt: String,
    pub calls: Vec<String>,
}

/// A tool result the client sent back.
#[derive(Clone, Debug)]
pub struct ToolResult {
    /// `anthropic`, `responses`, `gemini` or `chat` (a chat client with tools).
    pub api: &'static str,
    /// The command or tool call this answers, as the fake model sent it.
    pub call: String,
    /// What the client returned (the command's output).
    pub output: String,
    /// The client said the call failed (Claude's `is_error`, a non-zero exit for Codex or
    /// Gemini CLI, or Gemini CLI's `error` for a refused call).
    pub error: bool,
}

#[derive(Default)]
struct State {
    behaviour: Option<Behaviour>,
    limited: usize,
    /// Every tool result seen, once per call id.
    results: Vec<ToolResult>,
    seen_calls: std::collections::BTreeSet<String>,
    /// `METHOD PATH` of every request, in order.
    requests: Vec<String>,
    /// What each model call carried, in order.
    seen: Vec<Seen>,
    /// Model calls are answered only once this is false ([`FakeApi::hold`]).
    held: bool,
}

/// The running server; stops when dropped.
pub struct FakeApi {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

static IDS: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    IDS.fetch_add(1, Ordering::Relaxed)
}

impl FakeApi {
    /// Starts a server on a free port of 127.0.0.1.
    pub fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake API");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            behaviour: Some(behaviour),
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve(conn, &st));
            }
        });
        Self {
            addr,
            state,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT` (Claude Code's ANTHROPIC_BASE_URL).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes how the model answers from the next call on.
    pub fn set_behaviour(&self, b: Behaviour) {
        let mut s = self.state.lock().expect("state");
        s.limited = 0;
        s.behaviour = Some(b);
    }

    /// Holds the answers of model calls from now on (each call is recorded, then waits) until
    /// [`FakeApi::release`], at most a minute: a client is kept in its turn.
    pub fn hold(&self) {
        self.state.lock().expect("state").held = true;
    }

    /// Answers the model calls held and those to come.
    pub fn release(&self) {
        self.state.lock().expect("state").held = false;
    }

    /// Every tool result the clients sent back, in order.
    pub fn tool_results(&self) -> Vec<ToolResult> {
        self.state.lock().expect("state").results.clone()
    }

    /// `METHOD PATH` of every request, in order.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().expect("state").requests.clone()
    }

    /// What each model call carried (its user messages, its tool calls answered), in order.
    pub fn conversations(&self) -> Vec<Seen> {
        self.state.lock().expect("state").seen.clone()
    }

    /// The number of model calls (`/v1/messages`, `/v1/responses`) answered.
    pub fn model_calls(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| {
                r.starts_with("POST /v1/messages?")
                    || r == &"POST /v1/messages"
                    || r.starts_with("POST /v1/responses")
                    || r.starts_with("POST /v1/chat/completions")
                    || (r.starts_with("POST /v1beta/models/") && r.contains("enerateContent"))
            })
            .count()
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

fn read_request(conn: &TcpStream) -> Option<Request> {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Request { method, path, body })
}

struct Reply {
    status: u16,
    content_type: &'static str,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(status: u16, v: &Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: v.to_string(),
        }
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Some(req) = read_request(&conn) else {
        return;
    };
    let reply = answer(&req, state);
    let reason = match reply.status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n",
        reply.status,
        reply.content_type,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(reply.body.as_bytes());
    let _ = conn.flush();
}

/// The API a model call speaks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Anthropic,
    Responses,
    /// Gemini API (`generateContent`; `stream` for `streamGenerateContent`).
    Gemini {
        stream: bool,
    },
    /// OpenAI chat completions, as aider sends them (no tools).
    Chat,
    /// OpenAI chat completions with tools, as opencode, Qwen Code and Copilot CLI send them.
    ChatTools,
}

fn answer(req: &Request, state: &Mutex<State>) -> Reply {
    let route = req.path.split('?').next().unwrap_or_default().to_string();
    state
        .lock()
        .expect("state")
        .requests
        .push(format!("{} {}", req.method, req.path));
    let api = match (req.method.as_str(), route.as_str()) {
        ("POST", "/v1/messages") => Api::Anthropic,
        ("POST", "/v1/responses") => Api::Responses,
        ("POST", "/v1/chat/completions") => Api::Chat,
        ("POST", r) if r.starts_with("/v1beta/models/") && r.ends_with(":generateContent") => {
            Api::Gemini { stream: false }
        }
        ("POST", r)
            if r.starts_with("/v1beta/models/") && r.ends_with(":streamGenerateContent") =>
        {
            Api::Gemini { stream: true }
        }
        ("POST", r) if r.starts_with("/v1beta/models/") && r.ends_with(":countTokens") => {
            return Reply::json(200, &json!({"totalTokens": USAGE_INPUT}));
        }
        ("POST", "/v1/messages/count_tokens") => {
            return Reply::json(200, &json!({"input_tokens": USAGE_INPUT}));
        }
        ("GET", _) | ("HEAD", _) => return Reply::json(200, &json!({})),
        _ => {
            return Reply::json(
                404,
                &json!({"type": "error", "error": {"type": "not_found_error", "message": format!("no route {route}")}}),
            );
        }
    };
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return Reply::json(400, &json!({"error": {"message": "body is not JSON"}}));
    };
    // The behaviour decides first: errors need no conversation.
    let behaviour = {
        let mut s = state.lock().expect("state");
        let b = s.behaviour.clone().unwrap_or(Behaviour::Normal);
        match b {
            Behaviour::RateLimited { times, reset_secs } if s.limited < times => {
                s.limited += 1;
                return rate_limited(api, reset_secs);
            }
            Behaviour::Unauthorized => return unauthorized(api),
            other => other,
        }
    };
    // Gemini CLI's model router asks a small model to rate the task first, as JSON.
    if matches!(api, Api::Gemini { .. })
        && body["systemInstruction"]
            .to_string()
            .contains("complexity_score")
    {
        let rating =
            json!({"complexity_reasoning": "one file, explicit steps", "complexity_score": 20});
        return gemini_reply("gemini-fake", &Step::Say(rating.to_string()), false);
    }
    let api = if api == Api::Chat && body["tools"].as_array().is_some_and(|t| !t.is_empty()) {
        Api::ChatTools
    } else {
        api
    };
    // A held call waits here, recorded (the server's own wait, bounded).
    let held_since = std::time::Instant::now();
    while state.lock().expect("state").held && held_since.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let conv = Conversation::read(api, &body);
    {
        let mut s = state.lock().expect("state");
        s.seen.push(Seen {
            prompt: conv.prompt.clone(),
            calls: conv.results.iter().map(|r| r.call.clone()).collect(),
        });
        for r in &conv.results {
            if s.seen_calls.insert(r.call.clone() + "\u{0}" + &r.output) {
                s.results.push(r.clone());
            }
        }
    }
    let step = match behaviour {
        Behaviour::Refuse(reason) => Step::Say(format!("I cannot do this: {reason}")),
        Behaviour::FixesWhenTold(needle) => conv.next_step(conv.prompt.contains(&needle)),
        Behaviour::Listens(needle) if !conv.prompt.contains(&needle) => {
            Step::Say("I wait for the person's word.".into())
        }
        Behaviour::Listens(_) => conv.next_step(true),
        Behaviour::RunsFirst(cmd) => conv.runs_first_step(&cmd),
        Behaviour::Asks { question, answer } => conv.ask_step(&question, &answer),
        Behaviour::CallsTools { script, done } => conv.script_step(&script, &body["tools"], &done),
        _ => conv.next_step(false),
    };
    let model = match api {
        Api::Gemini { .. } => route
            .trim_start_matches("/v1beta/models/")
            .split(':')
            .next()
            .unwrap_or("gemini-fake")
            .to_string(),
        _ => body["model"].as_str().unwrap_or("fake-model").to_string(),
    };
    match api {
        Api::Anthropic => anthropic_reply(&model, &step, body["stream"].as_bool() == Some(true)),
        Api::Responses => responses_reply(&step),
        Api::Gemini { stream } => gemini_reply(&model, &step, stream),
        Api::Chat => chat_reply(&model, &step, body["stream"].as_bool() == Some(true)),
        Api::ChatTools => chat_tools_reply(
            &model,
            &step,
            &body["tools"],
            body["stream"].as_bool() == Some(true),
        ),
    }
}
