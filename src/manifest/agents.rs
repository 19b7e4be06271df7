//! Agents: argv templates, their modes, and the built-in presets.

use std::collections::BTreeMap;

/// How orch runs an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AgentMode {
    /// One process per task (the default).
    #[default]
    Task,
    /// One long-running process per plan.
    Plan,
}

impl AgentMode {
    /// Parses `"task"` or `"plan"`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "task" => Some(Self::Task),
            "plan" => Some(Self::Plan),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Task => "task",
            Self::Plan => "plan",
        }
    }
}

/// How an agent's attempt counts as done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ReportMode {
    /// Only when the agent reported it through `orch task done` (the check, if any, passing
    /// too); an agent that ends without reporting failed ("ended without reporting").
    Orch,
    /// Also when the agent exits 0 without reporting (and the check, if any, passes): an own
    /// command, the aider preset.
    #[default]
    Exit,
}

impl ReportMode {
    /// Parses `"orch"` or `"exit"`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "orch" => Some(Self::Orch),
            "exit" => Some(Self::Exit),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Orch => "orch",
            Self::Exit => "exit",
        }
    }
}

/// What an agent reads on its standard input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum StdinMode {
    /// Nothing: `/dev/null` (the default).
    #[default]
    Null,
    /// The prompt, as `{{ prompt }}` renders it (the prompt file's bytes): for a client that
    /// changes a prompt given as an argument (opencode quotes every argument holding a space).
    Prompt,
}

impl StdinMode {
    /// Parses `"null"` or `"prompt"`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "null" => Some(Self::Null),
            "prompt" => Some(Self::Prompt),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Prompt => "prompt",
        }
    }
}

/// An agent: an argv template (never a shell string) and how it is run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentSpec {
    /// The argv; elements may contain `{{ variable }}` placeholders (see [`TEMPLATE_VARS`]).
    pub command: Vec<String>,
    pub mode: AgentMode,
    /// Where the agent runs, when its table says (else the plan's or the default executor).
    pub executor: Option<super::executor::ExecutorKind>,
    /// How its attempts count as done (`report`).
    pub report: ReportMode,
    /// Its sandbox, `[defaults]` and its own keys combined.
    pub sandbox: super::sandbox::Sandbox,
    /// What it reads on its standard input (`stdin`).
    pub stdin: StdinMode,
}

/// The variables an agent argv may use, as `{{ name }}` (spaces inside the braces optional).
/// `status_dir` is the directory of `status_file` (what a sandboxed agent must be allowed to
/// write for `orch task done`).
/// `usage_file` is a file in a directory orch makes afresh for each attempt and reads when it
/// ends (a client that writes its token counts there, GitHub Copilot CLI's
/// `--usage-output-file`).
/// `orch_dir` is the directory of `orch` (a client that asks before running a command naming a
/// path outside the worktree must be told it may name orch's: Copilot CLI's `--add-dir`).
pub const TEMPLATE_VARS: [&str; 11] = [
    "prompt",
    "prompt_file",
    "plan",
    "plan_file",
    "task",
    "worktree",
    "status_file",
    "status_dir",
    "orch",
    "usage_file",
    "orch_dir",
];

/// The agents usable without an `[agents.X]` table; a table with the same name overrides one.
///
/// Each was checked against the real CLI (see the README's "Agents" section for the versions, and
/// docs/src/agents.md for what each one may do):
/// - `claude`: print mode, edits accepted, Bash allowed only for orch itself (the prompt spells
///   orch's path out, so the narrow rule matches), JSON events on stdout as they happen.
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
        report: ReportMode::Orch,
        sandbox: Default::default(),
        stdin: StdinMode::Null,
    };
    BTreeMap::from([
        ("claude".to_string(), argv(CLAUDE_PRESET)),
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
/// permission rules of [`KnownCli::env`]); the prompt comes on stdin.
pub const OPENCODE_PRESET: &[&str] = &["opencode", "run", "--format", "json"];

/// The `qwen` preset's argv. The prompt is the positional argument, first: Qwen Code takes no
/// prompt after `--`, and `--allowed-tools` takes every argument after it that is not a flag.
pub const QWEN_PRESET: &[&str] = &[
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
pub const QWEN_CONFINED: &[&str] = &[
    "qwen",
    "{{ prompt }}",
    "--output-format",
    "stream-json",
    "--approval-mode",
    "yolo",
];

/// The `copilot` preset's argv.
pub const COPILOT_PRESET: &[&str] = &[
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
pub const COPILOT_CONFINED: &[&str] = &[
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
pub const CLAUDE_PRESET: &[&str] = &[
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
pub const CODEX_PRESET: &[&str] = &[
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
pub const GEMINI_PRESET: &[&str] = &[
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
pub const CLAUDE_CONFINED: &[&str] = &[
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

/// The `codex` preset's argv when orch confines the agent: Codex's own sandbox cannot start
/// inside a Landlock domain, so orch's rules are the sandbox.
pub const CODEX_CONFINED: &[&str] = &[
    "codex",
    "exec",
    "--sandbox",
    "danger-full-access",
    "--json",
    "--",
    "{{ prompt }}",
];

/// The `gemini` preset's argv when orch confines the agent: every tool allowed (`yolo`).
pub const GEMINI_CONFINED: &[&str] = &[
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
/// one with a confined variant, or opencode's (whose rules are variables, [`KnownCli::env`]).
pub fn preset_with_rules(command: &[String]) -> bool {
    confined_variant(command).is_some() || OPENCODE_PRESET.iter().eq(command.iter())
}

/// The argv a preset runs with when orch confines it (every shell command allowed), if
/// `command` is a preset's own argv with such a variant; a command of your own is run as
/// written.
pub fn confined_variant(command: &[String]) -> Option<&'static [&'static str]> {
    [
        (CLAUDE_PRESET, CLAUDE_CONFINED),
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
pub const AIDER_PRESET: &[&str] = &[
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

/// An agent CLI orch knows: it can check the flags orch passes and warn about argvs known not
/// to work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnownCli {
    Claude,
    Codex,
    Gemini,
    Aider,
    Opencode,
    Qwen,
    Copilot,
}

/// A client's state as a confined agent gets it: a private directory per attempt, named by the
/// client's own variables, seeded from the user's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrivateState {
    /// The variables that point the client at its state: most clients have one, opencode four
    /// (its XDG directories).
    pub homes: &'static [StateHome],
    /// Files the client keeps beside its directory when the (first) variable is not set
    /// (Claude Code's `~/.claude.json`): `(where the user has it, where it goes in the copy)`.
    pub home_files: &'static [(&'static str, &'static str)],
}

/// One variable of a client's state and what of the user's state it names is copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateHome {
    /// The variable (`CLAUDE_CONFIG_DIR`, `CODEX_HOME`, `GEMINI_CLI_HOME`, `XDG_DATA_HOME`): set
    /// for the agent to the private directory (or its `at` subdirectory).
    pub var: &'static str,
    /// What the variable names when the user has not set it (`~`: the `HOME` of `orch up`).
    pub default: &'static str,
    /// The state's directory within what the variable names (`.gemini` for Gemini CLI, whose
    /// variable names a home; empty when it names the state itself).
    pub sub: &'static str,
    /// Where in the private directory the variable points (empty: the directory itself).
    pub at: &'static str,
    /// What is copied from the user's state directory (files or directories, relative to it):
    /// what the client needs to log in and reach its endpoint, and the user's own settings.
    /// Sessions, history and caches are not copied.
    pub entries: &'static [&'static str],
}

impl StateHome {
    const fn one(
        var: &'static str,
        default: &'static str,
        sub: &'static str,
        entries: &'static [&'static str],
    ) -> Self {
        Self {
            var,
            default,
            sub,
            at: "",
            entries,
        }
    }
}

/// A problem with an agent argv, with its fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgvProblem {
    pub message: String,
    pub fix: String,
}

impl KnownCli {
    /// The CLI an argv runs, from its program's file name.
    pub fn of(command: &[String]) -> Option<Self> {
        let program = command.first()?;
        let name = std::path::Path::new(program).file_name()?.to_str()?;
        match name {
            "claude" => Some(Self::Claude),
            "codex" => Some(Self::Codex),
            "gemini" => Some(Self::Gemini),
            "aider" => Some(Self::Aider),
            "opencode" => Some(Self::Opencode),
            "qwen" => Some(Self::Qwen),
            "copilot" => Some(Self::Copilot),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Claude => "claude",
            Self::Codex => "codex",
            Self::Gemini => "gemini",
            Self::Aider => "aider",
            Self::Opencode => "opencode",
            Self::Qwen => "qwen",
            Self::Copilot => "copilot",
        }
    }

    /// Where the client keeps its own state (login, settings, hooks, MCP servers, sessions) by
    /// default; `~` is the `HOME` of `orch up`. Never writable for a confined agent: what a
    /// client reads there runs in the user's next unconfined session of it. A confined agent
    /// gets a private copy instead ([`KnownCli::private_state`]).
    pub fn state_paths(self) -> &'static [&'static str] {
        match self {
            Self::Claude => &["~/.claude", "~/.claude.json", "~/.config/claude"],
            Self::Codex => &["~/.codex"],
            Self::Gemini => &["~/.gemini"],
            Self::Aider => &["~/.aider", "~/.aider.conf.yml"],
            // Its configuration (plugins, MCP servers, commands), login, sessions and the
            // plugins it installs in its cache.
            Self::Opencode => &[
                "~/.config/opencode",
                "~/.local/share/opencode",
                "~/.local/state/opencode",
                "~/.cache/opencode",
            ],
            Self::Qwen => &["~/.qwen"],
            // The cache holds the code the `copilot` launcher runs (unpacked on first run).
            Self::Copilot => &["~/.copilot", "~/.cache/copilot"],
        }
    }

    /// The user's state directories that a variable of the client moves elsewhere, as
    /// `$VAR/sub` for each variable set in `env` (the user's own `CLAUDE_CONFIG_DIR`, or
    /// `XDG_CONFIG_HOME/opencode`).
    pub fn state_dirs_from_env(
        self,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Vec<std::path::PathBuf> {
        self.private_state()
            .map(|s| s.homes)
            .unwrap_or_default()
            .iter()
            .filter_map(|h| {
                let v = env(h.var).filter(|v| !v.is_empty())?;
                let dir = std::path::PathBuf::from(v);
                Some(if h.sub.is_empty() {
                    dir
                } else {
                    dir.join(h.sub)
                })
            })
            .collect()
    }

    /// How a confined agent of this client gets a private copy of the client's state, if the
    /// client can be pointed at one (aider cannot: its state stays read-only, see
    /// docs/src/agents.md).
    pub fn private_state(self) -> Option<PrivateState> {
        const CLAUDE: &[StateHome] = &[StateHome::one(
            "CLAUDE_CONFIG_DIR",
            "~/.claude",
            "",
            &[
                ".claude.json",
                ".credentials.json",
                "settings.json",
                "CLAUDE.md",
                "agents",
                "commands",
                "skills",
                "output-styles",
            ],
        )];
        const CODEX: &[StateHome] = &[StateHome::one(
            "CODEX_HOME",
            "~/.codex",
            "",
            &[
                "auth.json",
                "config.toml",
                "AGENTS.md",
                "AGENTS.override.md",
                "prompts",
                "rules",
                "skills",
            ],
        )];
        const GEMINI: &[StateHome] = &[StateHome::one(
            "GEMINI_CLI_HOME",
            "~",
            ".gemini",
            &[
                "settings.json",
                "oauth_creds.json",
                "google_accounts.json",
                "installation_id",
                "GEMINI.md",
                "commands",
                "extensions",
                "trustedFolders.json",
            ],
        )];
        // opencode keeps its state in the XDG directories: each gets a directory of the copy.
        const OPENCODE: &[StateHome] = &[
            StateHome {
                var: "XDG_CONFIG_HOME",
                default: "~/.config",
                sub: "opencode",
                at: "config",
                entries: &[
                    "opencode.json",
                    "opencode.jsonc",
                    "config.json",
                    "AGENTS.md",
                    "agent",
                    "agents",
                    "command",
                    "commands",
                    "mode",
                    "modes",
                    "plugin",
                    "plugins",
                    "tool",
                    "tools",
                    "skill",
                    "skills",
                ],
            },
            StateHome {
                var: "XDG_DATA_HOME",
                default: "~/.local/share",
                sub: "opencode",
                at: "data",
                entries: &["auth.json", "mcp-auth.json"],
            },
            StateHome {
                var: "XDG_STATE_HOME",
                default: "~/.local/state",
                sub: "opencode",
                at: "state",
                entries: &[],
            },
            StateHome {
                var: "XDG_CACHE_HOME",
                default: "~/.cache",
                sub: "opencode",
                at: "cache",
                entries: &[],
            },
        ];
        const QWEN: &[StateHome] = &[StateHome::one(
            "QWEN_HOME",
            "~/.qwen",
            "",
            &[
                "settings.json",
                "oauth_creds.json",
                "installation_id",
                "QWEN.md",
                "commands",
                "agents",
                "skills",
                "extensions",
            ],
        )];
        const COPILOT: &[StateHome] = &[StateHome::one(
            "COPILOT_HOME",
            "~/.copilot",
            "",
            &[
                "config.json",
                "mcp-config.json",
                "copilot-instructions.md",
                "agents",
                "skills",
            ],
        )];
        let homes = match self {
            Self::Claude => CLAUDE,
            Self::Codex => CODEX,
            Self::Gemini => GEMINI,
            Self::Opencode => OPENCODE,
            Self::Qwen => QWEN,
            Self::Copilot => COPILOT,
            Self::Aider => return None,
        };
        let home_files: &[(&str, &str)] = match self {
            Self::Claude => &[("~/.claude.json", ".claude.json")],
            _ => &[],
        };
        Some(PrivateState { homes, home_files })
    }

    /// The variables orch sets for an attempt of this client beside its own: opencode's
    /// snapshots off (a git copy of the worktree at every step) and, for the preset's own argv
    /// (`rules`: `Some(confined)`), its permission rules, which it takes from no flag (confined:
    /// orch's rules are the limit; else the shell runs only `orch`, at `orch`); `user` reads
    /// `orch up`'s environment (a user's own `OPENCODE_CONFIG_CONTENT` is kept, with snapshots
    /// off).
    pub fn env(
        self,
        rules: Option<bool>,
        orch: &str,
        user: impl Fn(&str) -> Option<String>,
    ) -> Vec<(String, String)> {
        match self {
            Self::Opencode => {
                let permission = if rules == Some(true) {
                    serde_json::json!({"edit": "allow", "bash": "allow", "webfetch": "allow",
                        "external_directory": "allow", "doom_loop": "allow"})
                } else {
                    serde_json::json!({"edit": "allow", "webfetch": "deny",
                        "external_directory": "deny", "doom_loop": "deny",
                        "bash": {"*": "deny", format!("{orch} *"): "allow"}})
                };
                // A value of the user's that is not a JSON object (JSONC with comments, say) is
                // left as it is: orch does not rewrite what it cannot read.
                let config = match user("OPENCODE_CONFIG_CONTENT") {
                    None => Some(serde_json::json!({})),
                    Some(c) => serde_json::from_str::<serde_json::Value>(&c)
                        .ok()
                        .filter(serde_json::Value::is_object),
                };
                let mut env = Vec::new();
                if let Some(mut config) = config {
                    config["snapshot"] = serde_json::Value::Bool(false);
                    config["autoupdate"] = serde_json::Value::Bool(false);
                    config["share"] = serde_json::Value::String("disabled".into());
                    env.push(("OPENCODE_CONFIG_CONTENT".to_string(), config.to_string()));
                }
                env.extend([
                    ("OPENCODE_DISABLE_AUTOUPDATE".to_string(), "1".to_string()),
                    ("OPENCODE_DISABLE_LSP_DOWNLOAD".to_string(), "1".to_string()),
                    ("OPENCODE_DISABLE_MODELS_FETCH".to_string(), "1".to_string()),
                ]);
                if rules.is_some() {
                    env.push(("OPENCODE_PERMISSION".to_string(), permission.to_string()));
                }
                env
            }
            _ => Vec::new(),
        }
    }

    /// The arguments that print the help listing the flags `command` uses.
    pub fn help_args(self, command: &[String]) -> Vec<&'static str> {
        match self {
            Self::Codex if command.get(1).map(String::as_str) == Some("exec") => {
                vec!["exec", "--help"]
            }
            Self::Opencode if command.get(1).map(String::as_str) == Some("run") => {
                vec!["run", "--help"]
            }
            _ => vec!["--help"],
        }
    }

    /// The long flags of `command` (before a `--`), as the help must list them (`--flag` of
    /// `--flag=value`).
    pub fn flags(command: &[String]) -> Vec<&str> {
        command
            .iter()
            .skip(1)
            .take_while(|a| a.as_str() != "--")
            .filter(|a| a.starts_with("--") && a.len() > 2 && !a.contains("{{"))
            .map(|a| a.split('=').next().unwrap_or(a))
            .collect()
    }

    /// Problems of `command` known without running it: flags the CLI removed, and settings
    /// that leave the agent unable to report to orch or to run unattended.
    pub fn problems(self, command: &[String]) -> Vec<ArgvProblem> {
        let has = |flag: &str| {
            command
                .iter()
                .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
        };
        let value_of = |flag: &str| -> Option<&str> {
            let i = command.iter().position(|a| a == flag)?;
            command.get(i + 1).map(String::as_str)
        };
        let mut out = Vec::new();
        let mut problem = |message: String, fix: &str| {
            out.push(ArgvProblem {
                message,
                fix: fix.to_string(),
            })
        };
        match self {
            Self::Codex => {
                if has("--full-auto") {
                    problem(
                        "`--full-auto` is not accepted by current Codex CLIs (the sandbox is chosen with `--sandbox`)".into(),
                        "use the preset (`agent = \"codex\"`), or replace `--full-auto` with `--sandbox workspace-write --add-dir {{ status_dir }}`",
                    );
                }
                if command.get(1).map(String::as_str) != Some("exec") {
                    problem(
                        "codex without `exec` starts the interactive interface, which does not run unattended".into(),
                        "run `codex exec ...`, as the preset does (`agent = \"codex\"`)",
                    );
                }
                let bypass = has("--dangerously-bypass-approvals-and-sandbox")
                    || value_of("--sandbox").or(value_of("-s")) == Some("danger-full-access");
                if !bypass && !has("--add-dir") {
                    problem(
                        "in Codex's sandbox `orch task done` cannot write the status file, which is outside the worktree".into(),
                        "add `--add-dir {{ status_dir }}` (the preset does)",
                    );
                }
            }
            Self::Claude => {
                if !has("-p") && !has("--print") {
                    problem(
                        "claude without `-p` starts the interactive interface, which does not run unattended".into(),
                        "pass `-p {{ prompt }}`, as the preset does (`agent = \"claude\"`)",
                    );
                }
                if has("--dangerously-skip-permissions")
                    || value_of("--permission-mode") == Some("bypassPermissions")
                {
                    problem(
                        "Claude Code refuses to skip permissions when run as root (and nothing then limits the agent)".into(),
                        "use `--permission-mode acceptEdits --allowedTools \"Bash({{ orch }} *)\"`, as the preset does",
                    );
                } else {
                    let rules: Vec<&str> = command
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| {
                            *i > 0
                                && matches!(
                                    command[i - 1].as_str(),
                                    "--allowedTools" | "--allowed-tools"
                                )
                        })
                        .flat_map(|(_, a)| a.split([',', ' ']))
                        .collect();
                    let runs_orch = rules.iter().any(|r| {
                        *r == "Bash"
                            || r.starts_with("Bash({{ orch }}")
                            || r.starts_with("Bash({{orch}}")
                    }) || command
                        .iter()
                        .any(|a| a.starts_with("Bash({{ orch }}") || a == "Bash");
                    if !runs_orch {
                        problem(
                            "Claude Code will refuse the agent's `orch task done` (Bash needs approval, and nobody is there to give it)".into(),
                            "add `--allowedTools \"Bash({{ orch }} *)\"` (the preset does)",
                        );
                    }
                    if command.iter().any(|a| a.contains("$ORCH_BIN")) {
                        problem(
                            "a permission rule with `$ORCH_BIN` never matches: Claude Code refuses commands with shell expansions".into(),
                            "write the path: `Bash({{ orch }} *)`",
                        );
                    }
                }
                if command
                    .iter()
                    .any(|a| a.contains("{{ prompt_file }}") || a.contains("{{prompt_file}}"))
                {
                    problem(
                        "Claude Code refuses to read files outside its working directory, and the prompt file is in orch's log directory".into(),
                        "pass the prompt itself: `-p {{ prompt }}`",
                    );
                }
            }
            Self::Opencode => {
                if command.get(1).map(String::as_str) != Some("run") {
                    problem(
                        "opencode without `run` starts the interactive interface, which does not run unattended".into(),
                        "run `opencode run --format json`, as the preset does (`agent = \"opencode\"`)",
                    );
                }
                if command
                    .iter()
                    .any(|a| a.contains("{{ prompt }}") || a.contains("{{prompt}}"))
                {
                    problem(
                        "`opencode run` quotes every argument that holds a space, so a prompt given as an argument reaches the model changed".into(),
                        "give it the prompt on stdin: `stdin = \"prompt\"` and no `{{ prompt }}` in `command` (the preset does)",
                    );
                }
            }
            Self::Copilot => {
                if !has("-p") && !has("--prompt") {
                    problem(
                        "copilot without `-p` starts the interactive interface, which does not run unattended".into(),
                        "pass `-p {{ prompt }}`, as the preset does (`agent = \"copilot\"`)",
                    );
                }
                let runs_orch = has("--allow-all")
                    || command.iter().any(|a| {
                        a.starts_with("shell({{ orch }}") || a.starts_with("shell({{orch}}")
                    });
                if !runs_orch {
                    problem(
                        "Copilot CLI will refuse the agent's `orch task done` (the shell needs approval, and nobody is there to give it)".into(),
                        "add `--allow-tool \"shell({{ orch }}:*)\"` (the preset does)",
                    );
                }
            }
            Self::Qwen => {
                if value_of("--approval-mode") != Some("yolo")
                    && !command.iter().any(|a| {
                        a.starts_with("run_shell_command({{ orch }}")
                            || a.starts_with("run_shell_command({{orch}}")
                    })
                {
                    problem(
                        "Qwen Code will refuse the agent's `orch task done` (the shell needs approval, and nobody is there to give it)".into(),
                        "add `--allowed-tools \"run_shell_command({{ orch }})\"` (the preset does)",
                    );
                }
            }
            Self::Gemini | Self::Aider => {}
        }
        out
    }
}

/// One piece of a templated argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplatePart<'a> {
    Text(&'a str),
    /// A variable name, trimmed, known to be one of [`TEMPLATE_VARS`].
    Var(&'a str),
}

/// Splits an argv element into text and variables; errors on an unclosed `{{` or an unknown
/// variable. The error is a message about this one element.
pub fn parse_template(arg: &str) -> Result<Vec<TemplatePart<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = arg;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(TemplatePart::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(format!("unclosed `{{{{` in agent argument `{arg}`"));
        };
        let name = after[..close].trim();
        if !TEMPLATE_VARS.contains(&name) {
            return Err(format!(
                "unknown template variable `{{{{ {name} }}}}` in agent argument `{arg}` (known: {})",
                TEMPLATE_VARS.join(", ")
            ));
        }
        parts.push(TemplatePart::Var(name));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest));
    }
    Ok(parts)
}

/// Fills the variables of one argv element; `lookup` gives each variable's value
/// (`status_dir` is derived from `status_file` when `lookup` gives it none).
pub fn render_template(arg: &str, lookup: impl Fn(&str) -> String) -> Result<String, String> {
    Ok(parse_template(arg)?
        .into_iter()
        .map(|part| match part {
            TemplatePart::Text(t) => t.to_string(),
            TemplatePart::Var("status_dir") => {
                let given = lookup("status_dir");
                if given.is_empty() {
                    let file = lookup("status_file");
                    std::path::Path::new(&file)
                        .parent()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                } else {
                    given
                }
            }
            TemplatePart::Var(v) => lookup(v),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert_eq!(
            parse_template("--file={{prompt_file}}!"),
            Ok(vec![
                TemplatePart::Text("--file="),
                TemplatePart::Var("prompt_file"),
                TemplatePart::Text("!"),
            ])
        );
        assert_eq!(
            parse_template("{{ task }}"),
            Ok(vec![TemplatePart::Var("task")])
        );
        assert_eq!(
            parse_template("plain"),
            Ok(vec![TemplatePart::Text("plain")])
        );
        let err = parse_template("{{ nope }}").expect_err("unknown");
        assert!(
            err.contains("unknown template variable `{{ nope }}`"),
            "{err}"
        );
        let err = parse_template("x {{ prompt").expect_err("unclosed");
        assert!(err.contains("unclosed `{{`"), "{err}");
        assert_eq!(
            render_template("a-{{ plan }}-{{task}}", |v| v.to_uppercase()),
            Ok("a-PLAN-TASK".to_string())
        );
    }

    #[test]
    fn the_status_dir_is_the_status_files_directory() {
        let got = render_template("--add-dir={{ status_dir }}", |v| match v {
            "status_file" => "/r/.orch/state/api/status.json".to_string(),
            _ => String::new(),
        });
        assert_eq!(got, Ok("--add-dir=/r/.orch/state/api".to_string()));
    }

    fn owned(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| (*a).to_string()).collect()
    }

    #[test]
    fn the_presets_have_no_known_problem() {
        for (name, spec) in presets() {
            let cli = KnownCli::of(&spec.command).expect("a known CLI");
            assert_eq!(cli.name(), name);
            assert_eq!(cli.problems(&spec.command), Vec::new(), "{name}");
        }
        assert_eq!(
            KnownCli::flags(&owned(CODEX_PRESET)),
            ["--sandbox", "--add-dir", "--json"]
        );
        assert_eq!(
            KnownCli::Codex.help_args(&owned(CODEX_PRESET)),
            ["exec", "--help"]
        );
    }

    #[test]
    fn argvs_known_not_to_work_are_found_with_their_fix() {
        let old_codex = owned(&["codex", "exec", "--full-auto", "{{ prompt }}"]);
        let p = KnownCli::Codex.problems(&old_codex);
        assert!(p[0].message.contains("`--full-auto`"), "{p:?}");
        assert!(p[0].fix.contains("--sandbox workspace-write"), "{p:?}");
        assert!(
            p.iter()
                .any(|x| x.fix.contains("--add-dir {{ status_dir }}")),
            "{p:?}"
        );
        let old_claude = owned(&[
            "claude",
            "-p",
            "{{ prompt }}",
            "--permission-mode",
            "acceptEdits",
        ]);
        let p = KnownCli::Claude.problems(&old_claude);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].message.contains("`orch task done`"), "{p:?}");
        assert!(p[0].fix.contains("Bash({{ orch }} *)"), "{p:?}");
        let root = owned(&[
            "/usr/bin/claude",
            "--print",
            "x",
            "--dangerously-skip-permissions",
        ]);
        assert!(KnownCli::of(&root) == Some(KnownCli::Claude));
        assert!(KnownCli::Claude.problems(&root)[0].message.contains("root"));
        let file = owned(&[
            "claude",
            "-p",
            "{{ prompt_file }}",
            "--allowedTools",
            "Bash",
        ]);
        let p = KnownCli::Claude.problems(&file);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].message.contains("outside its working directory"),
            "{p:?}"
        );
        assert_eq!(KnownCli::of(&owned(&["sh", "agent.sh"])), None);
    }

    #[test]
    fn confined_variants_replace_only_the_presets_own_argv() {
        let claude = owned(CLAUDE_PRESET);
        assert_eq!(confined_variant(&claude), Some(CLAUDE_CONFINED));
        assert_eq!(confined_variant(&owned(CODEX_PRESET)), Some(CODEX_CONFINED));
        assert_eq!(
            confined_variant(&owned(GEMINI_PRESET)),
            Some(GEMINI_CONFINED)
        );
        assert_eq!(confined_variant(&owned(AIDER_PRESET)), None);
        let mut own = claude.clone();
        own.push("--model".into());
        assert_eq!(confined_variant(&own), None);
        assert_eq!(confined_variant(&owned(QWEN_PRESET)), Some(QWEN_CONFINED));
        assert_eq!(
            confined_variant(&owned(COPILOT_PRESET)),
            Some(COPILOT_CONFINED)
        );
        assert_eq!(confined_variant(&owned(OPENCODE_PRESET)), None);
        for v in [
            CLAUDE_CONFINED,
            CODEX_CONFINED,
            GEMINI_CONFINED,
            QWEN_CONFINED,
            COPILOT_CONFINED,
        ] {
            let v = owned(v);
            let cli = KnownCli::of(&v).expect("known");
            assert_eq!(cli.problems(&v), Vec::new(), "{v:?}");
        }
    }

    const ALL: [KnownCli; 7] = [
        KnownCli::Claude,
        KnownCli::Codex,
        KnownCli::Gemini,
        KnownCli::Aider,
        KnownCli::Opencode,
        KnownCli::Qwen,
        KnownCli::Copilot,
    ];

    #[test]
    fn every_client_but_aider_has_a_private_state_named_by_its_own_variables() {
        let vars = |c: KnownCli| {
            c.private_state()
                .map(|s| s.homes.iter().map(|h| h.var).collect::<Vec<_>>())
        };
        assert_eq!(vars(KnownCli::Claude), Some(vec!["CLAUDE_CONFIG_DIR"]));
        assert_eq!(vars(KnownCli::Codex), Some(vec!["CODEX_HOME"]));
        assert_eq!(vars(KnownCli::Gemini), Some(vec!["GEMINI_CLI_HOME"]));
        assert_eq!(vars(KnownCli::Qwen), Some(vec!["QWEN_HOME"]));
        assert_eq!(vars(KnownCli::Copilot), Some(vec!["COPILOT_HOME"]));
        assert_eq!(
            vars(KnownCli::Opencode),
            Some(vec![
                "XDG_CONFIG_HOME",
                "XDG_DATA_HOME",
                "XDG_STATE_HOME",
                "XDG_CACHE_HOME"
            ])
        );
        assert_eq!(vars(KnownCli::Aider), None);
        for c in ALL.into_iter().filter(|c| *c != KnownCli::Aider) {
            let s = c.private_state().expect("private state");
            // Several variables point at distinct directories of the copy.
            let ats: std::collections::BTreeSet<&str> = s.homes.iter().map(|h| h.at).collect();
            assert_eq!(ats.len(), s.homes.len(), "{c:?}");
            for h in s.homes {
                // Only names inside the state directory: nothing is copied from elsewhere but
                // the files the client keeps beside it.
                for e in h.entries {
                    assert!(!e.contains('/') && !e.starts_with('~') && *e != "..", "{e}");
                }
                // What a session writes is not copied.
                for history in ["projects", "sessions", "history", "history.jsonl", "tmp"] {
                    assert!(!h.entries.contains(&history), "{c:?}: {history}");
                }
            }
            // The user's own state directories are never writable for a confined agent.
            assert!(!c.state_paths().is_empty(), "{c:?}");
        }
        // A variable the user set names their state: `$XDG_CONFIG_HOME/opencode`.
        let env = |k: &str| (k == "XDG_CONFIG_HOME").then(|| std::ffi::OsString::from("/u/cfg"));
        assert_eq!(
            KnownCli::Opencode.state_dirs_from_env(env),
            vec![std::path::PathBuf::from("/u/cfg/opencode")]
        );
        assert_eq!(
            KnownCli::Claude.state_dirs_from_env(env),
            Vec::<std::path::PathBuf>::new()
        );
    }

    #[test]
    fn opencode_gets_its_permission_rules_and_keeps_the_users_configuration() {
        let orch = "/opt/orch/bin/orch";
        let env = KnownCli::Opencode.env(Some(false), orch, |k| {
            (k == "OPENCODE_CONFIG_CONTENT")
                .then(|| r#"{"model":"fake/m","snapshot":true}"#.to_string())
        });
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| serde_json::from_str::<serde_json::Value>(v).expect("json"))
                .expect(k)
        };
        let perm = get("OPENCODE_PERMISSION");
        assert_eq!(perm["bash"]["*"], "deny");
        assert_eq!(perm["bash"][format!("{orch} *")], "allow");
        assert_eq!(perm["edit"], "allow");
        let config = get("OPENCODE_CONFIG_CONTENT");
        assert_eq!(
            config["model"], "fake/m",
            "the user's configuration is kept"
        );
        assert_eq!(config["snapshot"], false);
        let confined = KnownCli::Opencode.env(Some(true), orch, |_| None);
        let perm: serde_json::Value = serde_json::from_str(
            &confined
                .iter()
                .find(|(n, _)| n == "OPENCODE_PERMISSION")
                .expect("rules")
                .1,
        )
        .expect("json");
        assert_eq!(
            perm["bash"], "allow",
            "confined: orch's rules are the limit"
        );
        assert!(KnownCli::Qwen.env(Some(false), orch, |_| None).is_empty());
        // A configuration orch cannot read is passed on as the user wrote it.
        let jsonc = KnownCli::Opencode.env(Some(false), orch, |k| {
            (k == "OPENCODE_CONFIG_CONTENT").then(|| "{ // mine\n}".to_string())
        });
        assert!(
            jsonc.iter().all(|(k, _)| k != "OPENCODE_CONFIG_CONTENT"),
            "{jsonc:?}"
        );
        // An opencode command of the user's own keeps the user's rules.
        let own = KnownCli::Opencode.env(None, orch, |_| None);
        assert!(
            own.iter().all(|(k, _)| k != "OPENCODE_PERMISSION"),
            "{own:?}"
        );
        assert!(preset_with_rules(&owned(OPENCODE_PRESET)));
        assert!(!preset_with_rules(&owned(&["opencode", "run"])));
    }

    #[test]
    fn argvs_of_the_new_clients_known_not_to_work_are_found() {
        let p = KnownCli::Opencode.problems(&owned(&["opencode", "run", "{{ prompt }}"]));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].fix.contains("stdin = \"prompt\""), "{p:?}");
        let p = KnownCli::Copilot.problems(&owned(&["copilot", "-p", "{{ prompt }}"]));
        assert!(p[0].fix.contains("shell({{ orch }}:*)"), "{p:?}");
        let p = KnownCli::Qwen.problems(&owned(&["qwen", "{{ prompt }}"]));
        assert!(p[0].fix.contains("run_shell_command({{ orch }})"), "{p:?}");
        assert_eq!(
            KnownCli::of(&owned(&["/usr/local/bin/opencode", "run"])),
            Some(KnownCli::Opencode)
        );
    }

    #[test]
    fn presets_are_valid_templates() {
        let presets = presets();
        assert_eq!(presets.len(), 7);
        assert_eq!(presets["opencode"].stdin, StdinMode::Prompt);
        for spec in presets.values() {
            assert_eq!(spec.mode, AgentMode::Task);
            for arg in &spec.command {
                assert!(parse_template(arg).is_ok(), "{arg}");
            }
        }
    }
}
