//! A fake model API on 127.0.0.1 for the real agent CLIs (tests/agents_real.rs): the Anthropic
//! Messages API as Claude Code calls it (`POST /v1/messages`, streamed as SSE when asked, and
//! `/v1/messages/count_tokens`), the OpenAI Responses API as Codex calls it (`POST
//! /v1/responses`, streamed as SSE), the Gemini API as Gemini CLI calls it (`POST
//! /v1beta/models/MODEL:generateContent` and `:streamGenerateContent?alt=sse`, with the answer to
//! its model router's classifier call), and the OpenAI chat-completions API as aider calls it
//! (`POST /v1/chat/completions`, streamed or not).
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
}

/// A tool result the client sent back.
#[derive(Clone, Debug)]
pub struct ToolResult {
    /// `anthropic`, `responses` or `gemini`.
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

    /// Every tool result the clients sent back, in order.
    pub fn tool_results(&self) -> Vec<ToolResult> {
        self.state.lock().expect("state").results.clone()
    }

    /// `METHOD PATH` of every request, in order.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().expect("state").requests.clone()
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
    /// OpenAI chat completions, as aider sends them.
    Chat,
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
    let conv = Conversation::read(api, &body);
    {
        let mut s = state.lock().expect("state");
        for r in &conv.results {
            if s.seen_calls.insert(r.call.clone() + "\u{0}" + &r.output) {
                s.results.push(r.clone());
            }
        }
    }
    let step = match behaviour {
        Behaviour::Refuse(reason) => Step::Say(format!("I cannot do this: {reason}")),
        Behaviour::FixesWhenTold(needle) => conv.next_step(conv.prompt.contains(&needle)),
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
    }
}

/// What the fake model does next.
#[derive(Clone, Debug)]
enum Step {
    Write {
        path: String,
        content: String,
    },
    /// aider's "whole" edit format: the file (relative to the worktree) and its content.
    Whole {
        file: String,
        content: String,
    },
    Run(String),
    Say(String),
}

/// What the fake model reads from a request: orch's prompt and the tool results so far.
struct Conversation {
    api: Api,
    prompt: String,
    results: Vec<ToolResult>,
}

impl Conversation {
    fn read(api: Api, body: &Value) -> Self {
        let mut prompt = String::new();
        let mut results = Vec::new();
        let mut calls = std::collections::BTreeMap::new();
        match api {
            Api::Anthropic => {
                for m in body["messages"].as_array().into_iter().flatten() {
                    let content = &m["content"];
                    if let Some(s) = content.as_str() {
                        if m["role"] == "user" {
                            prompt.push_str(s);
                            prompt.push('\n');
                        }
                        continue;
                    }
                    for c in content.as_array().into_iter().flatten() {
                        match c["type"].as_str() {
                            Some("text") if m["role"] == "user" => {
                                prompt.push_str(c["text"].as_str().unwrap_or_default());
                                prompt.push('\n');
                            }
                            Some("tool_use") => {
                                let input = &c["input"];
                                let call = input["command"]
                                    .as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| input.to_string());
                                calls
                                    .insert(c["id"].as_str().unwrap_or_default().to_string(), call);
                            }
                            Some("tool_result") => {
                                let id = c["tool_use_id"].as_str().unwrap_or_default();
                                let output = match &c["content"] {
                                    Value::String(s) => s.clone(),
                                    Value::Array(parts) => parts
                                        .iter()
                                        .filter_map(|p| p["text"].as_str())
                                        .collect::<Vec<_>>()
                                        .join("\n"),
                                    other => other.to_string(),
                                };
                                results.push(ToolResult {
                                    api: "anthropic",
                                    call: calls.get(id).cloned().unwrap_or_default(),
                                    output,
                                    error: c["is_error"].as_bool() == Some(true),
                                });
                            }
                            _ => {}
                        }
                    }
                }
            }
            Api::Gemini { .. } => {
                // Function responses answer the calls in order (ids are optional).
                let mut pending: Vec<String> = Vec::new();
                for c in body["contents"].as_array().into_iter().flatten() {
                    for part in c["parts"].as_array().into_iter().flatten() {
                        if let Some(t) = part["text"].as_str()
                            && c["role"] == "user"
                        {
                            prompt.push_str(t);
                            prompt.push('\n');
                        }
                        let call = &part["functionCall"];
                        if call.is_object() {
                            let args = &call["args"];
                            pending.push(
                                args["command"]
                                    .as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| args.to_string()),
                            );
                        }
                        let resp = &part["functionResponse"];
                        if resp.is_object() {
                            let r = &resp["response"];
                            let output = r["output"]
                                .as_str()
                                .or(r["error"].as_str())
                                .map_or_else(|| r.to_string(), str::to_string);
                            // A refused call answers `error`; a failed command says its exit code.
                            let error = r.get("error").is_some() || output.contains("Exit Code: ");
                            let call = if pending.is_empty() {
                                String::new()
                            } else {
                                pending.remove(0)
                            };
                            results.push(ToolResult {
                                api: "gemini",
                                call,
                                output,
                                error,
                            });
                        }
                    }
                }
            }
            Api::Chat => {
                for m in body["messages"].as_array().into_iter().flatten() {
                    if m["role"] != "user" {
                        continue;
                    }
                    match &m["content"] {
                        Value::String(s) => prompt.push_str(s),
                        Value::Array(parts) => {
                            for p in parts {
                                prompt.push_str(p["text"].as_str().unwrap_or_default());
                            }
                        }
                        _ => {}
                    }
                    prompt.push('\n');
                }
            }
            Api::Responses => {
                for item in body["input"].as_array().into_iter().flatten() {
                    match item["type"].as_str() {
                        Some("message") if item["role"] == "user" => {
                            for c in item["content"].as_array().into_iter().flatten() {
                                prompt.push_str(c["text"].as_str().unwrap_or_default());
                                prompt.push('\n');
                            }
                        }
                        Some("function_call") => {
                            let args: Value =
                                serde_json::from_str(item["arguments"].as_str().unwrap_or("{}"))
                                    .unwrap_or(Value::Null);
                            calls.insert(
                                item["call_id"].as_str().unwrap_or_default().to_string(),
                                args["cmd"].as_str().unwrap_or_default().to_string(),
                            );
                        }
                        Some("function_call_output") => {
                            let id = item["call_id"].as_str().unwrap_or_default();
                            let output = match &item["output"] {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            // Codex's exec_command output says "Process exited with code N".
                            let error = !output.contains("Process exited with code 0\n");
                            results.push(ToolResult {
                                api: "responses",
                                call: calls.get(id).cloned().unwrap_or_default(),
                                output,
                                error,
                            });
                        }
                        _ => {}
                    }
                }
            }
        }
        Self {
            api,
            prompt,
            results,
        }
    }

    /// Follows orch's prompt: write the file (`fixed`: saying so), report, say so; one tool
    /// call per turn.
    fn next_step(&self, fixed: bool) -> Step {
        let Some(task) = between(&self.prompt, "## Task ", ":") else {
            return Step::Say("I cannot do this: no orch task in the prompt".into());
        };
        let heading = self
            .prompt
            .lines()
            .find(|l| l.starts_with(&format!("## Task {task}:")))
            .unwrap_or_default();
        let file = between(heading, "`", "`")
            .unwrap_or("output.txt")
            .to_string();
        let worktree = between(&self.prompt, "Work only inside `", "`").unwrap_or(".");
        let report = self
            .prompt
            .lines()
            .map(str::trim)
            .find(|l| l.contains(&format!(" task done {task}")))
            .map(|l| {
                let cut = l.find(" --note").unwrap_or(l.len());
                format!("{} --note \"wrote {file}\"", &l[..cut])
            });
        let verb = if fixed { "fixed" } else { "written" };
        let content = format!("{file} {verb} by task {task}\n");
        if self.api == Api::Chat {
            // aider applies the edit itself and runs no command: one answer.
            return Step::Whole { file, content };
        }
        match self.results.len() {
            0 => match self.api {
                Api::Anthropic | Api::Gemini { .. } => Step::Write {
                    path: format!("{worktree}/{file}"),
                    content,
                },
                Api::Responses | Api::Chat => Step::Run(format!(
                    "printf '%s\\n' '{}' > '{file}'",
                    content.trim_end()
                )),
            },
            1 => match report {
                Some(cmd) => Step::Run(cmd),
                None => Step::Say("I cannot do this: the prompt gives no report command".into()),
            },
            _ => {
                let failed: Vec<&ToolResult> = self.results.iter().filter(|r| r.error).collect();
                if failed.is_empty() {
                    Step::Say(format!(
                        "Task {task} is done: I wrote {file} and reported it to orch."
                    ))
                } else {
                    // Codex's output has a header; what the command printed follows "Output:"
                    // (Gemini CLI's: "Output: ").
                    let out = &failed[0].output;
                    let printed = out
                        .split_once("Output:\n")
                        .or_else(|| out.split_once("Output: "))
                        .map_or(out.as_str(), |(_, o)| o);
                    Step::Say(format!(
                        "Task {task} is not done: {}",
                        printed.lines().next().unwrap_or_default()
                    ))
                }
            }
        }
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

fn usage_anthropic() -> Value {
    json!({"input_tokens": USAGE_INPUT, "output_tokens": USAGE_OUTPUT, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
}

fn anthropic_reply(model: &str, step: &Step, stream: bool) -> Reply {
    let id = next_id();
    let block = match step {
        Step::Write { path, content } => {
            json!({"type": "tool_use", "id": format!("toolu_{id}"), "name": "Write",
            "input": {"file_path": path, "content": content}})
        }
        Step::Run(cmd) => json!({"type": "tool_use", "id": format!("toolu_{id}"), "name": "Bash",
            "input": {"command": cmd, "description": "run a command"}}),
        Step::Say(text) => json!({"type": "text", "text": text}),
        Step::Whole { file, content } => json!({"type": "text", "text": whole(file, content)}),
    };
    let stop = if block["type"] == "tool_use" {
        "tool_use"
    } else {
        "end_turn"
    };
    let msg_id = format!("msg_fake_{id}");
    if !stream {
        return Reply::json(
            200,
            &json!({"id": msg_id, "type": "message", "role": "assistant", "model": model,
                "content": [block], "stop_reason": stop, "stop_sequence": null, "usage": usage_anthropic()}),
        );
    }
    let mut events = Vec::new();
    let mut ev = |name: &str, data: Value| events.push(format!("event: {name}\ndata: {data}\n\n"));
    let mut start_usage = usage_anthropic();
    start_usage["output_tokens"] = json!(1);
    ev(
        "message_start",
        json!({"type": "message_start", "message": {"id": msg_id, "type": "message",
        "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": start_usage}}),
    );
    if block["type"] == "text" {
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        );
        ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": block["text"]}}),
        );
    } else {
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}),
        );
        ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": block["input"].to_string()}}),
        );
    }
    ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    );
    ev(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
        "usage": {"output_tokens": USAGE_OUTPUT}}),
    );
    ev("message_stop", json!({"type": "message_stop"}));
    Reply {
        status: 200,
        content_type: "text/event-stream",
        headers: Vec::new(),
        body: events.concat(),
    }
}

fn responses_reply(step: &Step) -> Reply {
    let id = next_id();
    let item = match step {
        Step::Run(cmd) => {
            json!({"type": "function_call", "id": format!("fc_{id}"), "call_id": format!("call_{id}"),
            "name": "exec_command", "arguments": json!({"cmd": cmd}).to_string()})
        }
        Step::Write { path, content } => json!({"type": "function_call", "id": format!("fc_{id}"),
            "call_id": format!("call_{id}"), "name": "exec_command",
            "arguments": json!({"cmd": format!("printf '%s' '{content}' > '{path}'")}).to_string()}),
        Step::Say(text) => {
            json!({"type": "message", "role": "assistant", "id": format!("msg_{id}"),
            "content": [{"type": "output_text", "text": text, "annotations": []}]})
        }
        Step::Whole { file, content } => {
            json!({"type": "message", "role": "assistant", "id": format!("msg_{id}"),
            "content": [{"type": "output_text", "text": whole(file, content), "annotations": []}]})
        }
    };
    let resp_id = format!("resp_{id}");
    let mut events = Vec::new();
    let mut ev = |data: Value| {
        events.push(format!(
            "event: {}\ndata: {data}\n\n",
            data["type"].as_str().unwrap_or_default()
        ))
    };
    ev(json!({"type": "response.created", "response": {"id": resp_id}}));
    ev(json!({"type": "response.output_item.done", "output_index": 0, "item": item}));
    ev(
        json!({"type": "response.completed", "response": {"id": resp_id, "usage": {
        "input_tokens": USAGE_INPUT, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": USAGE_OUTPUT, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": USAGE_INPUT + USAGE_OUTPUT}}}),
    );
    Reply {
        status: 200,
        content_type: "text/event-stream",
        headers: Vec::new(),
        body: events.concat(),
    }
}

/// aider's "whole" edit format: the file's path on its own line, then its whole content fenced.
fn whole(file: &str, content: &str) -> String {
    format!("I will create {file}.\n\n{file}\n```\n{content}```\n")
}

fn usage_gemini() -> Value {
    json!({"promptTokenCount": USAGE_INPUT, "candidatesTokenCount": USAGE_OUTPUT,
        "totalTokenCount": USAGE_INPUT + USAGE_OUTPUT})
}

/// A Gemini API answer: one candidate with a function call (Gemini CLI's `write_file` or
/// `run_shell_command`) or text; as one SSE event when streamed.
fn gemini_reply(model: &str, step: &Step, stream: bool) -> Reply {
    let part = match step {
        Step::Write { path, content } => {
            json!({"functionCall": {"name": "write_file", "args": {"file_path": path, "content": content}}})
        }
        Step::Run(cmd) => json!({"functionCall": {"name": "run_shell_command",
            "args": {"command": cmd, "description": "run a command"}}}),
        Step::Say(text) => json!({"text": text}),
        Step::Whole { file, content } => json!({"text": whole(file, content)}),
    };
    let answer = json!({"candidates": [{"content": {"role": "model", "parts": [part]},
        "finishReason": "STOP", "index": 0}], "usageMetadata": usage_gemini(), "modelVersion": model,
        "responseId": format!("resp_{}", next_id())});
    if !stream {
        return Reply::json(200, &answer);
    }
    Reply {
        status: 200,
        content_type: "text/event-stream",
        headers: Vec::new(),
        body: format!("data: {answer}\r\n\r\n"),
    }
}

/// An OpenAI chat-completions answer (aider's): text only; streamed as chunks ending with
/// the usage and `[DONE]` when asked.
fn chat_reply(model: &str, step: &Step, stream: bool) -> Reply {
    let text = match step {
        Step::Say(t) | Step::Run(t) => t.clone(),
        Step::Whole { file, content } => whole(file, content),
        Step::Write { path, content } => whole(path, content),
    };
    let id = format!("chatcmpl-{}", next_id());
    let usage = json!({"prompt_tokens": USAGE_INPUT, "completion_tokens": USAGE_OUTPUT,
        "total_tokens": USAGE_INPUT + USAGE_OUTPUT});
    if !stream {
        return Reply::json(
            200,
            &json!({"id": id, "object": "chat.completion", "created": chrono::Utc::now().timestamp(),
                "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                "finish_reason": "stop"}], "usage": usage}),
        );
    }
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": chrono::Utc::now().timestamp(),
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut last = chunk(json!({}), json!("stop"));
    last["usage"] = usage;
    let events = [
        chunk(json!({"role": "assistant", "content": text}), Value::Null),
        last,
    ];
    let mut body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    body.push_str("data: [DONE]\n\n");
    Reply {
        status: 200,
        content_type: "text/event-stream",
        headers: Vec::new(),
        body,
    }
}

/// The reset time `secs` from now: (RFC 3339, unix seconds).
fn reset_at(secs: u64) -> (String, i64) {
    let at = chrono::Utc::now() + chrono::Duration::seconds(secs as i64);
    (
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        at.timestamp(),
    )
}

fn rate_limited(api: Api, reset_secs: u64) -> Reply {
    let (rfc, unix) = reset_at(reset_secs);
    let (body, mut headers) = match api {
        Api::Anthropic => (
            json!({"type": "error", "error": {"type": "rate_limit_error",
                "message": format!("This request would exceed your rate limit. Try again after {rfc}.")}}),
            vec![
                (
                    "anthropic-ratelimit-requests-limit".to_string(),
                    "50".to_string(),
                ),
                (
                    "anthropic-ratelimit-requests-remaining".to_string(),
                    "0".to_string(),
                ),
                (
                    "anthropic-ratelimit-requests-reset".to_string(),
                    rfc.clone(),
                ),
                (
                    "anthropic-ratelimit-unified-status".to_string(),
                    "rejected".to_string(),
                ),
                (
                    "anthropic-ratelimit-unified-reset".to_string(),
                    unix.to_string(),
                ),
            ],
        ),
        Api::Gemini { .. } => (
            json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                "message": format!("You exceeded your current quota. Please retry in {reset_secs}s."),
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": format!("{reset_secs}s")}]}}),
            Vec::new(),
        ),
        Api::Responses | Api::Chat => (
            json!({"error": {"type": "usage_limit_reached", "code": "rate_limit_exceeded",
                "message": format!("You have hit your usage limit. Try again in {reset_secs}s."),
                "resets_at": unix, "resets_in_seconds": reset_secs}}),
            vec![
                ("x-ratelimit-limit-requests".to_string(), "50".to_string()),
                (
                    "x-ratelimit-remaining-requests".to_string(),
                    "0".to_string(),
                ),
                (
                    "x-ratelimit-reset-requests".to_string(),
                    format!("{reset_secs}s"),
                ),
            ],
        ),
    };
    headers.push(("retry-after".to_string(), reset_secs.to_string()));
    let mut r = Reply::json(429, &body);
    r.headers = headers;
    r
}

fn unauthorized(api: Api) -> Reply {
    let body = match api {
        Api::Anthropic => json!({"type": "error", "error": {"type": "authentication_error",
            "message": "invalid x-api-key"}}),
        Api::Gemini { .. } => json!({"error": {"code": 401, "status": "UNAUTHENTICATED",
            "message": "API key not valid. Please pass a valid API key."}}),
        Api::Responses | Api::Chat => {
            json!({"error": {"type": "invalid_request_error", "code": "invalid_api_key",
            "message": "Incorrect API key provided: sk-fake***. You can find your API key at your provider's dashboard."}})
        }
    };
    Reply::json(401, &body)
}
