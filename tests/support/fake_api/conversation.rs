//! What the fake model reads from a request (orch's prompt, the tool results so far) and what it
//! does next.

use serde_json::Value;

use super::{Api, ToolResult};

/// What the fake model does next.
#[derive(Clone, Debug)]
pub(super) enum Step {
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
    /// A call of the client's tool `name` (an MCP server's: `mcp__orch__status`) with `input`.
    Tool {
        name: String,
        input: Value,
    },
}

/// What the fake model reads from a request: orch's prompt and the tool results so far.
pub(super) struct Conversation {
    api: Api,
    /// The working directory the client's own system prompt names (chat clients with tools).
    cwd: Option<String>,
    pub(super) prompt: String,
    pub(super) results: Vec<ToolResult>,
}

impl Conversation {
    pub(super) fn read(api: Api, body: &Value) -> Self {
        let mut prompt = String::new();
        let mut results = Vec::new();
        let mut calls = std::collections::BTreeMap::new();
        let mut cwd = None;
        match api {
            Api::ChatTools => {
                for m in body["messages"].as_array().into_iter().flatten() {
                    let text = text_of(&m["content"]);
                    // Where each client says its working directory is: opencode, Qwen Code,
                    // Copilot CLI.
                    for marker in [
                        "Working directory: ",
                        "I'm currently working in the directory: ",
                        "Current working directory: ",
                    ] {
                        if cwd.is_none()
                            && let Some(dir) = between(&text, marker, "\n")
                        {
                            cwd = Some(dir.trim().to_string());
                        }
                    }
                    match m["role"].as_str() {
                        Some("user") => {
                            prompt.push_str(&text);
                            prompt.push('\n');
                        }
                        Some("assistant") => {
                            for c in m["tool_calls"].as_array().into_iter().flatten() {
                                let args: Value = serde_json::from_str(
                                    c["function"]["arguments"].as_str().unwrap_or("{}"),
                                )
                                .unwrap_or(Value::Null);
                                let call = command_of(&args);
                                calls
                                    .insert(c["id"].as_str().unwrap_or_default().to_string(), call);
                            }
                        }
                        Some("tool") => {
                            let id = m["tool_call_id"].as_str().unwrap_or_default();
                            results.push(ToolResult {
                                api: "chat",
                                call: calls.get(id).cloned().unwrap_or_default(),
                                error: chat_tool_failed(&text),
                                output: text,
                            });
                        }
                        _ => {}
                    }
                }
            }
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
                                let call = match c["name"].as_str() {
                                    // An MCP tool's call: its name and arguments.
                                    Some(n) if n.starts_with("mcp__") => {
                                        format!("{n} {}", c["input"])
                                    }
                                    _ => command_of(&c["input"]),
                                };
                                calls
                                    .insert(c["id"].as_str().unwrap_or_default().to_string(), call);
                            }
                            Some("tool_result") => {
                                let id = c["tool_use_id"].as_str().unwrap_or_default();
                                let output = text_of(&c["content"]);
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
                            pending.push(command_of(args));
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
            cwd,
            prompt,
            results,
        }
    }

    /// Follows orch's prompt: write the file (`fixed`: saying so), report, say so; one tool
    /// call per turn.
    pub(super) fn next_step(&self, fixed: bool) -> Step {
        if self.prompt.contains("# Resolve a merge for orch") {
            return self.resolve_step();
        }
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
                Api::ChatTools => Step::Write {
                    path: format!("{}/{file}", self.cwd.as_deref().unwrap_or(worktree)),
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
                    // (Gemini CLI's and Qwen Code's: "Output: ").
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

impl Conversation {
    /// [`super::Behaviour::CallsTools`]: the next tool of `script` not called yet (one a turn,
    /// counted by the results the client sent back), when the client offers it (`tools`, the
    /// request's); then `done`.
    pub(super) fn script_step(
        &self,
        script: &[(String, Value)],
        tools: &Value,
        done: &str,
    ) -> Step {
        let offered = |name: &str| {
            tools
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["name"] == name))
        };
        match script.get(self.results.len()) {
            Some((name, input)) if offered(name) => Step::Tool {
                name: name.clone(),
                input: input.clone(),
            },
            Some((name, _)) => Step::Say(format!(
                "I cannot do this: no tool {name} offered (offered: {})",
                tools
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t["name"].as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => Step::Say(done.to_string()),
        }
    }

    /// [`super::Behaviour::RunsFirst`]: the command first; then, its result not counted, as
    /// [`Self::next_step`] (the task's file written, the report).
    pub(super) fn runs_first_step(&self, cmd: &str) -> Step {
        if self.results.is_empty() {
            return Step::Run(cmd.to_string());
        }
        let rest = Conversation {
            api: self.api,
            cwd: self.cwd.clone(),
            prompt: self.prompt.clone(),
            results: self.results[1..].to_vec(),
        };
        rest.next_step(false)
    }

    /// [`super::Behaviour::Asks`]: ask (the prompt's report command with `ask` for `done`),
    /// then wait; with `answer` in a user message, go on as told, the ask's result not counted.
    pub(super) fn ask_step(&self, question: &str, answer: &str) -> Step {
        let is_ask = |r: &ToolResult| r.call.contains(" task ask ");
        if self.prompt.contains(answer) {
            let rest = Conversation {
                api: self.api,
                cwd: self.cwd.clone(),
                prompt: self.prompt.clone(),
                results: self
                    .results
                    .iter()
                    .filter(|r| !is_ask(r))
                    .cloned()
                    .collect(),
            };
            return rest.next_step(false);
        }
        if self.results.iter().any(is_ask) {
            return Step::Say("I asked orch and wait for the answer.".into());
        }
        let Some(task) = between(&self.prompt, "## Task ", ":") else {
            return Step::Say("I cannot do this: no orch task in the prompt".into());
        };
        let done = format!(" task done {task}");
        match self
            .prompt
            .lines()
            .map(str::trim)
            .find(|l| l.contains(&done))
        {
            Some(l) => {
                let cut = l.find(&done).unwrap_or(l.len());
                Step::Run(format!("{} task ask {task} '{question}'", &l[..cut]))
            }
            None => Step::Say("I cannot do this: the prompt gives no report command".into()),
        }
    }

    /// Follows orch's resolve prompt (`resolve`): writes the first conflicted file it
    /// names, resolved (both sides kept, no marker), through the client's write tool (a shell
    /// command for Codex), then says so.
    fn resolve_step(&self) -> Step {
        let worktree = between(&self.prompt, "Your working directory `", "`").unwrap_or(".");
        let file = between(&self.prompt, "left in these files:\n\n- `", "`")
            .unwrap_or("shared.txt")
            .to_string();
        let content = format!("{file} resolved by the model: both sides kept\n");
        if self.api == Api::Chat {
            return Step::Whole { file, content };
        }
        if !self.results.is_empty() {
            return Step::Say(format!("I resolved the conflict in {file}."));
        }
        match self.api {
            Api::Anthropic | Api::Gemini { .. } => Step::Write {
                path: format!("{worktree}/{file}"),
                content,
            },
            Api::ChatTools => Step::Write {
                path: format!("{}/{file}", self.cwd.as_deref().unwrap_or(worktree)),
                content,
            },
            Api::Responses | Api::Chat => Step::Run(format!(
                "printf '%s\\n' '{}' > '{file}'",
                content.trim_end()
            )),
        }
    }
}

/// A message's or tool result's text: a string, or the text parts of an array joined by lines.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What a tool call runs: its `command` argument, else its arguments as JSON.
fn command_of(args: &Value) -> String {
    args["command"]
        .as_str()
        .map_or_else(|| args.to_string(), str::to_string)
}

/// Whether a chat client's tool result says the call failed: refused by the client's rules
/// (opencode, Qwen Code, Copilot CLI each in their words), or a command that exited non-zero
/// (Qwen Code's `Exit Code: N`, Copilot CLI's `completed with exit code N`, opencode's `exit
/// code N`).
fn chat_tool_failed(output: &str) -> bool {
    let lower = output.to_ascii_lowercase();
    let refused = [
        "prevents you from using this specific tool call",
        "permission denied because",
        "requires permission",
        "permission was declined",
        "was rejected",
    ]
    .iter()
    .any(|k| lower.contains(k));
    let exit_code = ["exit code: ", "exit code "].iter().any(|k| {
        lower.match_indices(k).any(|(i, _)| {
            let rest = &lower[i + k.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            !digits.is_empty() && digits.parse::<u32>().is_ok_and(|n| n != 0)
        })
    });
    refused || exit_code
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}
