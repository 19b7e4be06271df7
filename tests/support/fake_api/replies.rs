//! The fake model's answers in each API's format (Anthropic Messages, OpenAI Responses and chat
//! completions, Gemini), with usage; and its errors (HTTP 429 with a reset, HTTP 401).

use serde_json::{Value, json};

use super::conversation::Step;
use super::{Api, Reply, USAGE_INPUT, USAGE_OUTPUT, next_id};

fn usage_anthropic() -> Value {
    json!({"input_tokens": USAGE_INPUT, "output_tokens": USAGE_OUTPUT, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
}

pub(super) fn anthropic_reply(model: &str, step: &Step, stream: bool) -> Reply {
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
        Step::Tool { name, input } => {
            json!({"type": "tool_use", "id": format!("toolu_{id}"), "name": name, "input": input})
        }
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

pub(super) fn responses_reply(step: &Step) -> Reply {
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
        Step::Tool { name, input } => json!({"type": "function_call", "id": format!("fc_{id}"),
            "call_id": format!("call_{id}"), "name": name, "arguments": input.to_string()}),
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
pub(super) fn gemini_reply(model: &str, step: &Step, stream: bool) -> Reply {
    let part = match step {
        Step::Write { path, content } => {
            json!({"functionCall": {"name": "write_file", "args": {"file_path": path, "content": content}}})
        }
        Step::Run(cmd) => json!({"functionCall": {"name": "run_shell_command",
            "args": {"command": cmd, "description": "run a command"}}}),
        Step::Say(text) => json!({"text": text}),
        Step::Whole { file, content } => json!({"text": whole(file, content)}),
        Step::Tool { name, input } => json!({"functionCall": {"name": name, "args": input}}),
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
pub(super) fn chat_reply(model: &str, step: &Step, stream: bool) -> Reply {
    let text = match step {
        Step::Say(t) | Step::Run(t) => t.clone(),
        Step::Whole { file, content } => whole(file, content),
        Step::Write { path, content } => whole(path, content),
        Step::Tool { name, .. } => format!("I cannot call {name}: this API has no tools"),
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

/// An OpenAI chat-completions answer with tools (opencode, Qwen Code, Copilot CLI): a tool call
/// in the client's own tool names and arguments, or text; streamed as chunks (the tool call's
/// arguments in two pieces) ending with the usage and `[DONE]` when asked.
pub(super) fn chat_tools_reply(model: &str, step: &Step, tools: &Value, stream: bool) -> Reply {
    let declared: Vec<(&str, Vec<&str>)> = tools
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let f = &t["function"];
            let props = f["parameters"]["properties"]
                .as_object()
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            Some((f["name"].as_str()?, props))
        })
        .collect();
    let find = |names: &[&str]| declared.iter().find(|(n, _)| names.contains(n));
    let call = match step {
        Step::Write { path, content } => {
            find(&["write", "write_file", "create"]).map(|(name, _)| {
                let args = match *name {
                    "write" => json!({"filePath": path, "content": content}),
                    "create" => json!({"path": path, "file_text": content}),
                    _ => json!({"file_path": path, "content": content}),
                };
                (*name, args)
            })
        }
        Step::Run(cmd) => find(&["bash", "run_shell_command"]).map(|(name, props)| {
            let mut args = json!({"command": cmd});
            if props.contains(&"description") {
                args["description"] = json!("run a command");
            }
            (*name, args)
        }),
        Step::Tool { name, input } => find(&[name.as_str()]).map(|(n, _)| (*n, input.clone())),
        _ => None,
    };
    let text = match step {
        Step::Say(t) => t.clone(),
        Step::Whole { file, content } => whole(file, content),
        Step::Write { .. } | Step::Run(_) | Step::Tool { .. } => {
            "I cannot do this: the client offers no such tool".into()
        }
    };
    let id = format!("chatcmpl-{}", next_id());
    let call_id = format!("call_{}", next_id());
    let usage = json!({"prompt_tokens": USAGE_INPUT, "completion_tokens": USAGE_OUTPUT,
        "total_tokens": USAGE_INPUT + USAGE_OUTPUT});
    let created = chrono::Utc::now().timestamp();
    let finish = if call.is_some() { "tool_calls" } else { "stop" };
    if !stream {
        let message = match &call {
            Some((name, args)) => json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": args.to_string()}}]}),
            None => json!({"role": "assistant", "content": text}),
        };
        return Reply::json(
            200,
            &json!({"id": id, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}),
        );
    }
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = Vec::new();
    match &call {
        Some((name, args)) => {
            let args = args.to_string();
            let (a, b) = args.split_at(args.len() / 2);
            events.push(chunk(
                json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": call_id,
                    "type": "function", "function": {"name": name, "arguments": a}}]}),
                Value::Null,
            ));
            events.push(chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": b}}]}),
                Value::Null,
            ));
        }
        None => events.push(chunk(
            json!({"role": "assistant", "content": text}),
            Value::Null,
        )),
    }
    events.push(chunk(json!({}), json!(finish)));
    let mut last = json!({"id": id, "object": "chat.completion.chunk", "created": created,
        "model": model, "choices": []});
    last["usage"] = usage;
    events.push(last);
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

pub(super) fn rate_limited(api: Api, reset_secs: u64) -> Reply {
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
        Api::Responses | Api::Chat | Api::ChatTools => (
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

pub(super) fn unauthorized(api: Api) -> Reply {
    let body = match api {
        Api::Anthropic => json!({"type": "error", "error": {"type": "authentication_error",
            "message": "invalid x-api-key"}}),
        Api::Gemini { .. } => json!({"error": {"code": 401, "status": "UNAUTHENTICATED",
            "message": "API key not valid. Please pass a valid API key."}}),
        Api::Responses | Api::Chat | Api::ChatTools => {
            json!({"error": {"type": "invalid_request_error", "code": "invalid_api_key",
            "message": "Incorrect API key provided: sk-fake***. You can find your API key at your provider's dashboard."}})
        }
    };
    Reply::json(401, &body)
}
