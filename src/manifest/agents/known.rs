//! The agent CLIs orch knows by their program's name: their flags, the argvs known not to work,
//! where they keep their state and what of it a confined agent's private copy holds, and the
//! variables orch sets for them.

/// An agent CLI orch knows by its program's name.
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
pub(crate) struct PrivateState {
    /// The variables that point the client at its state: most clients have one, opencode four
    /// (its XDG directories).
    pub(crate) homes: &'static [StateHome],
    /// Files the client keeps beside its directory when the (first) variable is not set
    /// (Claude Code's `~/.claude.json`): `(where the user has it, where it goes in the copy)`.
    pub(crate) home_files: &'static [(&'static str, &'static str)],
}

/// One variable of a client's state and what of the user's state it names is copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StateHome {
    /// The variable (`CLAUDE_CONFIG_DIR`, `CODEX_HOME`, `GEMINI_CLI_HOME`, `XDG_DATA_HOME`): set
    /// for the agent to the private directory (or its `at` subdirectory).
    pub(crate) var: &'static str,
    /// What the variable names when the user has not set it (`~`: the `HOME` of `orch up`).
    pub(crate) default: &'static str,
    /// The state's directory within what the variable names (`.gemini` for Gemini CLI, whose
    /// variable names a home; empty when it names the state itself).
    pub(crate) sub: &'static str,
    /// Where in the private directory the variable points (empty: the directory itself).
    pub(crate) at: &'static str,
    /// What is copied from the user's state directory (files or directories, relative to it):
    /// what the client needs to log in and reach its endpoint, and the user's own settings.
    /// Sessions, history and caches are not copied.
    pub(crate) entries: &'static [&'static str],
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
pub(crate) struct ArgvProblem {
    pub(crate) message: String,
    pub(crate) fix: String,
}

impl KnownCli {
    /// The CLI an argv runs, from its program's file name.
    pub fn of(command: &[String]) -> Option<Self> {
        let program = command.first()?;
        let name = std::path::Path::new(program).file_name()?.to_str()?;
        use KnownCli::*;
        let all = [Claude, Codex, Gemini, Aider, Opencode, Qwen, Copilot];
        all.into_iter().find(|cli| cli.name() == name)
    }

    pub(crate) fn name(self) -> &'static str {
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
    pub(crate) fn state_paths(self) -> &'static [&'static str] {
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
    pub(crate) fn state_dirs_from_env(
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
    pub(crate) fn private_state(self) -> Option<PrivateState> {
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

    /// The variables orch sets for an attempt of this client beside its own: Claude Code's own
    /// retries of API errors off unless `orch up`'s environment sets them
    /// (`CLAUDE_CODE_MAX_RETRIES`: they would hide a 401 or a limit for minutes); opencode's
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
            Self::Claude if user(crate::agent_env::CLAUDE_CODE_MAX_RETRIES).is_none() => vec![(
                crate::agent_env::CLAUDE_CODE_MAX_RETRIES.to_string(),
                crate::agent_env::CLAUDE_RETRIES.to_string(),
            )],
            _ => Vec::new(),
        }
    }

    /// The arguments that print the help listing the flags `command` uses.
    pub(crate) fn help_args(self, command: &[String]) -> Vec<&'static str> {
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
    pub(crate) fn flags(command: &[String]) -> Vec<&str> {
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
    pub(crate) fn problems(self, command: &[String]) -> Vec<ArgvProblem> {
        let has = |flag: &str| {
            command
                .iter()
                .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
        };
        let value_of = |flag: &str| -> Option<&str> {
            let i = command.iter().position(|a| a == flag)?;
            command.get(i + 1).map(String::as_str)
        };
        // A permission rule of the client's tool `tool` for orch's own path (`Bash({{ orch }} *)`).
        let rule_for_orch = |tool: &str| {
            command.iter().any(|a| {
                a.starts_with(&format!("{tool}({{{{ orch }}}}"))
                    || a.starts_with(&format!("{tool}({{{{orch}}}}"))
            })
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
                let runs_orch = has("--allow-all") || rule_for_orch("shell");
                if !runs_orch {
                    problem(
                        "Copilot CLI will refuse the agent's `orch task done` (the shell needs approval, and nobody is there to give it)".into(),
                        "add `--allow-tool \"shell({{ orch }}:*)\"` (the preset does)",
                    );
                }
            }
            Self::Qwen => {
                if value_of("--approval-mode") != Some("yolo")
                    && !rule_for_orch("run_shell_command")
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
