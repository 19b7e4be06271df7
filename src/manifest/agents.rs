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
}

/// The variables an agent argv may use, as `{{ name }}` (spaces inside the braces optional).
/// `status_dir` is the directory of `status_file` (what a sandboxed agent must be allowed to
/// write for `orch task done`).
pub const TEMPLATE_VARS: [&str; 9] = [
    "prompt",
    "prompt_file",
    "plan",
    "plan_file",
    "task",
    "worktree",
    "status_file",
    "status_dir",
    "orch",
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
    ])
}

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

/// The argv a preset runs with when orch confines it (every shell command allowed), if
/// `command` is a preset's own argv with such a variant; a command of your own is run as
/// written.
pub fn confined_variant(command: &[String]) -> Option<&'static [&'static str]> {
    [
        (CLAUDE_PRESET, CLAUDE_CONFINED),
        (CODEX_PRESET, CODEX_CONFINED),
        (GEMINI_PRESET, GEMINI_CONFINED),
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
}

/// A client's state as a confined agent gets it: a private directory per attempt, named by the
/// client's own variable, seeded from the user's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrivateState {
    /// The variable that points the client at its state (`CLAUDE_CONFIG_DIR`, `CODEX_HOME`,
    /// `GEMINI_CLI_HOME`): set for the agent to the private directory.
    pub var: &'static str,
    /// What the variable names when the user has not set it (`~`: the `HOME` of `orch up`).
    pub default: &'static str,
    /// The state's directory within what the variable names (`.gemini` for Gemini CLI, whose
    /// variable names a home; empty when it names the state itself).
    pub sub: &'static str,
    /// What is copied from the user's state directory (files or directories, relative to it):
    /// what the client needs to log in and reach its endpoint, and the user's own settings.
    /// Sessions, history and caches are not copied.
    pub entries: &'static [&'static str],
    /// Files the client keeps beside its directory when the variable is not set (Claude Code's
    /// `~/.claude.json`): `(where the user has it, where it goes in the copy)`.
    pub home_files: &'static [(&'static str, &'static str)],
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
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Claude => "claude",
            Self::Codex => "codex",
            Self::Gemini => "gemini",
            Self::Aider => "aider",
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
        }
    }

    /// The environment variable that moves the client's state elsewhere, if it has one.
    pub fn state_env(self) -> Option<&'static str> {
        self.private_state().map(|s| s.var)
    }

    /// How a confined agent of this client gets a private copy of the client's state, if the
    /// client can be pointed at one (aider cannot: its state stays read-only, see
    /// docs/src/agents.md).
    pub fn private_state(self) -> Option<PrivateState> {
        match self {
            Self::Claude => Some(PrivateState {
                var: "CLAUDE_CONFIG_DIR",
                default: "~/.claude",
                sub: "",
                entries: &[
                    ".claude.json",
                    ".credentials.json",
                    "settings.json",
                    "CLAUDE.md",
                    "agents",
                    "commands",
                    "skills",
                    "output-styles",
                ],
                home_files: &[("~/.claude.json", ".claude.json")],
            }),
            Self::Codex => Some(PrivateState {
                var: "CODEX_HOME",
                default: "~/.codex",
                sub: "",
                entries: &[
                    "auth.json",
                    "config.toml",
                    "AGENTS.md",
                    "AGENTS.override.md",
                    "prompts",
                    "rules",
                    "skills",
                ],
                home_files: &[],
            }),
            Self::Gemini => Some(PrivateState {
                var: "GEMINI_CLI_HOME",
                default: "~",
                sub: ".gemini",
                entries: &[
                    "settings.json",
                    "oauth_creds.json",
                    "google_accounts.json",
                    "installation_id",
                    "GEMINI.md",
                    "commands",
                    "extensions",
                    "trustedFolders.json",
                ],
                home_files: &[],
            }),
            Self::Aider => None,
        }
    }

    /// The arguments that print the help listing the flags `command` uses.
    pub fn help_args(self, command: &[String]) -> Vec<&'static str> {
        match self {
            Self::Codex if command.get(1).map(String::as_str) == Some("exec") => {
                vec!["exec", "--help"]
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
        for v in [CLAUDE_CONFINED, CODEX_CONFINED, GEMINI_CONFINED] {
            let v = owned(v);
            let cli = KnownCli::of(&v).expect("known");
            assert_eq!(cli.problems(&v), Vec::new(), "{v:?}");
        }
    }

    #[test]
    fn every_client_but_aider_has_a_private_state_named_by_its_own_variable() {
        let var = |c: KnownCli| c.private_state().map(|s| s.var);
        assert_eq!(var(KnownCli::Claude), Some("CLAUDE_CONFIG_DIR"));
        assert_eq!(var(KnownCli::Codex), Some("CODEX_HOME"));
        assert_eq!(var(KnownCli::Gemini), Some("GEMINI_CLI_HOME"));
        assert_eq!(var(KnownCli::Aider), None);
        for c in [KnownCli::Claude, KnownCli::Codex, KnownCli::Gemini] {
            let s = c.private_state().expect("private state");
            assert_eq!(c.state_env(), Some(s.var));
            // Only names inside the state directory: nothing is copied from elsewhere but
            // the files the client keeps beside it.
            for e in s.entries {
                assert!(!e.contains('/') && !e.starts_with('~') && *e != "..", "{e}");
            }
            // What a session writes is not copied.
            for history in ["projects", "sessions", "history", "history.jsonl", "tmp"] {
                assert!(!s.entries.contains(&history), "{c:?}: {history}");
            }
        }
    }

    #[test]
    fn presets_are_valid_templates() {
        let presets = presets();
        assert_eq!(presets.len(), 4);
        for spec in presets.values() {
            assert_eq!(spec.mode, AgentMode::Task);
            for arg in &spec.command {
                assert!(parse_template(arg).is_ok(), "{arg}");
            }
        }
    }
}
