//! The built-in presets: each client's argv, narrow and (where orch confines it) open.

use std::collections::BTreeMap;

use super::{AgentMode, AgentSpec, InputMode, ReportMode, StdinMode};

/// The agents usable without an `[agents.X]` table; a table with the same name overrides one.
///
/// Each was checked against the real CLI (see the README's "Agents" section for the versions, and
/// docs/src/agents.md for what each one may do):
/// - `claude`: print mode, edits accepted, Bash allowed only for orch itself (the prompt spells
///   orch's path out, so the narrow rule matches), JSON events on stdout as they happen. Run
///   here, it takes its prompt and a person's messages as streaming input
///   ([`streaming_variant`], `input = "stream-json"`).
/// - `codex`: `exec` in the `workspace-write` sandbox, with the status file's directory writable
///   too (`orch task done` writes there), JSONL events on stdout.
/// - `gemini`: headless (`-p`), edits accepted (`auto_edit`), the shell allowed only for orch
///   itself (`--allowed-tools "run_shell_command(ORCH)"`, which also denies every other shell
///   command), the worktree trusted for the session, JSONL events on stdout.
/// - `aider`: one message and exit, answers "yes" to its own questions, no git (orch commits),
///   no history files in the worktree, no network besides the model; it cannot run orch, so it
///   reports by its exit status (`report = "exit"`).
pub fn presets() -> BTreeMap<String, AgentSpec> {
    let argv = |args: &[&str]| AgentSpec {
        command: args.iter().map(|a| (*a).to_string()).collect(),
        mode: AgentMode::Task,
        executor: None,
        image: None,
        report: ReportMode::Orch,
        sandbox: Default::default(),
        stdin: StdinMode::Null,
        input: InputMode::None,
        fallback: Vec::new(),
    };
    BTreeMap::from([
        (
            "claude".to_string(),
            AgentSpec {
                input: InputMode::StreamJson,
                ..argv(CLAUDE_PRESET)
            },
        ),
        ("codex".to_string(), argv(CODEX_PRESET)),
        (
            "aider".to_string(),
            AgentSpec {
                // aider runs no command without an explicit yes (not even with `--yes-always`),
                // so it cannot call orch: its exit status (and the check) decide.
                report: ReportMode::Exit,
                ..argv(AIDER_PRESET)
            },
        ),
        ("gemini".to_string(), argv(GEMINI_PRESET)),
        (
            "opencode".to_string(),
            AgentSpec {
                stdin: StdinMode::Prompt,
                ..argv(OPENCODE_PRESET)
            },
        ),
        ("qwen".to_string(), argv(QWEN_PRESET)),
        ("copilot".to_string(), argv(COPILOT_PRESET)),
    ])
}

/// The `opencode` preset's argv (confined or not: what the shell may run is set by the
/// permission rules of [`super::KnownCli::env`]); the prompt comes on stdin.
pub(crate) const OPENCODE_PRESET: &[&str] = &["opencode", "run", "--format", "json"];

/// The `qwen` preset's argv. The prompt is the positional argument, first: Qwen Code takes no
/// prompt after `--`, and `--allowed-tools` takes every argument after it that is not a flag.
pub(crate) const QWEN_PRESET: &[&str] = &[
    "qwen",
    "{{ prompt }}",
    "--output-format",
    "stream-json",
    "--approval-mode",
    "auto-edit",
    "--allowed-tools",
    "run_shell_command({{ orch }})",
];

/// The `qwen` preset's argv when orch confines the agent: every tool allowed (`yolo`).
pub(crate) const QWEN_CONFINED: &[&str] = &[
    "qwen",
    "{{ prompt }}",
    "--output-format",
    "stream-json",
    "--approval-mode",
    "yolo",
];

/// The `copilot` preset's argv.
pub(crate) const COPILOT_PRESET: &[&str] = &[
    "copilot",
    "-p",
    "{{ prompt }}",
    "--allow-tool",
    "write",
    "--allow-tool",
    "shell({{ orch }}:*)",
    "--add-dir",
    "{{ orch_dir }}",
    "--no-ask-user",
    "--no-auto-update",
    "--output-format",
    "json",
    "--usage-output-file",
    "{{ usage_file }}",
];

/// The `copilot` preset's argv when orch confines the agent: every tool and path allowed.
pub(crate) const COPILOT_CONFINED: &[&str] = &[
    "copilot",
    "-p",
    "{{ prompt }}",
    "--allow-all",
    "--no-ask-user",
    "--no-auto-update",
    "--output-format",
    "json",
    "--usage-output-file",
    "{{ usage_file }}",
];

/// The `claude` preset's argv.
pub(crate) const CLAUDE_PRESET: &[&str] = &[
    "claude",
    "-p",
    "{{ prompt }}",
    "--permission-mode",
    "acceptEdits",
    "--allowedTools",
    "Bash({{ orch }} *)",
    "--output-format",
    "stream-json",
    "--verbose",
];

/// The `codex` preset's argv.
pub(crate) const CODEX_PRESET: &[&str] = &[
    "codex",
    "exec",
    "--sandbox",
    "workspace-write",
    "--add-dir",
    "{{ status_dir }}",
    "--json",
    "--",
    "{{ prompt }}",
];

/// The `gemini` preset's argv.
pub(crate) const GEMINI_PRESET: &[&str] = &[
    "gemini",
    "-p",
    "{{ prompt }}",
    "--approval-mode",
    "auto_edit",
    "--allowed-tools",
    "run_shell_command({{ orch }})",
    "--skip-trust",
    "--output-format",
    "stream-json",
];

/// The `claude` preset's argv when orch confines the agent: every shell command allowed.
pub(crate) const CLAUDE_CONFINED: &[&str] = &[
    "claude",
    "-p",
    "{{ prompt }}",
    "--permission-mode",
    "acceptEdits",
    "--allowedTools",
    "Bash",
    "--output-format",
    "stream-json",
    "--verbose",
];

/// The `claude` preset's argv with streaming input: the prompt and a person's messages come on
/// stdin as user messages (`--input-format stream-json`; a prompt argument would be ignored).
pub(crate) const CLAUDE_STREAMING: &[&str] = &[
    "claude",
    "-p",
    "--input-format",
    "stream-json",
    "--permission-mode",
    "acceptEdits",
    "--allowedTools",
    "Bash({{ orch }} *)",
    "--output-format",
    "stream-json",
    "--verbose",
];

/// [`CLAUDE_STREAMING`] when orch confines the agent: every shell command allowed.
pub(crate) const CLAUDE_CONFINED_STREAMING: &[&str] = &[
    "claude",
    "-p",
    "--input-format",
    "stream-json",
    "--permission-mode",
    "acceptEdits",
    "--allowedTools",
    "Bash",
    "--output-format",
    "stream-json",
    "--verbose",
];

/// The argv a preset runs with when its input streams (`input = "stream-json"`, an attempt run
/// here whose session is not resumed), if `command` is a preset's own argv with such a variant:
/// the `claude` preset's. An agent of your own is run as written.
pub(crate) fn streaming_variant(command: &[String]) -> Option<&'static [&'static str]> {
    CLAUDE_PRESET
        .iter()
        .eq(command.iter())
        .then_some(CLAUDE_STREAMING)
}

/// The `codex` preset's argv when orch confines the agent: Codex's own sandbox cannot start
/// inside a Landlock domain, so orch's rules are the sandbox.
pub(crate) const CODEX_CONFINED: &[&str] = &[
    "codex",
    "exec",
    "--sandbox",
    "danger-full-access",
    "--json",
    "--",
    "{{ prompt }}",
];

/// The `gemini` preset's argv when orch confines the agent: every tool allowed (`yolo`).
pub(crate) const GEMINI_CONFINED: &[&str] = &[
    "gemini",
    "-p",
    "{{ prompt }}",
    "--approval-mode",
    "yolo",
    "--skip-trust",
    "--output-format",
    "stream-json",
];

/// Whether `command` is a preset's own argv whose rules orch sets, narrow or (confined) open:
/// one with a confined variant, or opencode's (whose rules are variables, [`super::KnownCli::env`]).
pub(crate) fn preset_with_rules(command: &[String]) -> bool {
    confined_variant(command).is_some() || OPENCODE_PRESET.iter().eq(command.iter())
}

/// The argv a preset runs with when orch confines it (every shell command allowed), if
/// `command` is a preset's own argv with such a variant; a command of your own is run as
/// written.
pub(crate) fn confined_variant(command: &[String]) -> Option<&'static [&'static str]> {
    [
        (CLAUDE_PRESET, CLAUDE_CONFINED),
        (CLAUDE_STREAMING, CLAUDE_CONFINED_STREAMING),
        (CODEX_PRESET, CODEX_CONFINED),
        (GEMINI_PRESET, GEMINI_CONFINED),
        (QWEN_PRESET, QWEN_CONFINED),
        (COPILOT_PRESET, COPILOT_CONFINED),
    ]
    .into_iter()
    .find(|(preset, _)| preset.iter().eq(command.iter()))
    .map(|(_, confined)| confined)
}

/// The `aider` preset's argv.
pub(crate) const AIDER_PRESET: &[&str] = &[
    "aider",
    "--yes-always",
    "--no-git",
    "--chat-history-file",
    "/dev/null",
    "--input-history-file",
    "/dev/null",
    "--no-check-update",
    "--no-show-release-notes",
    "--analytics-disable",
    "--no-pretty",
    "--no-fancy-input",
    "--message",
    "{{ prompt }}",
];
