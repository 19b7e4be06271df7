//! Agents: argv templates, their modes, and the built-in presets.

mod endpoints;
mod known;
mod presets;

pub use known::KnownCli;
pub(crate) use known::StateHome;
pub use presets::presets;
pub(crate) use presets::*;

/// How orch runs an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AgentMode {
    /// One process per task (the default).
    #[default]
    Task,
    /// One long-running process per plan.
    Plan,
}

impl crate::manifest::Spelled for AgentMode {}

/// How an agent's attempt counts as done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportMode {
    /// Only when the agent reported it through `orch task done` (the check, if any, passing
    /// too); an agent that ends without reporting failed ("ended without reporting").
    Orch,
    /// Also when the agent exits 0 without reporting (and the check, if any, passes): an own
    /// command, the aider preset.
    #[default]
    Exit,
}

impl crate::manifest::Spelled for ReportMode {}

/// What an agent reads on its standard input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StdinMode {
    /// Nothing: `/dev/null` (the default).
    #[default]
    Null,
    /// The prompt, as `{{ prompt }}` renders it (the prompt file's bytes): for a client that
    /// changes a prompt given as an argument (opencode quotes every argument holding a space).
    Prompt,
}

impl crate::manifest::Spelled for StdinMode {}

/// What an agent reads on its standard input while it runs (`input`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputMode {
    /// Nothing: a person's messages (`orch say`) wait for the task's next attempt.
    #[default]
    None,
    /// Each message of `orch say` to a running attempt as one line on its stdin (a pipe orch
    /// keeps), escaped to one line.
    Lines,
    /// Claude Code's streaming input (`--input-format stream-json`): the prompt is the first
    /// user message on the agent's stdin, each message of `orch say` one more, and orch closes
    /// its stdin once the agent ends its first turn (the client then ends when it has answered
    /// what it read). Only for an agent run here (not on a `[[host]]` or Slurm), and not for a
    /// session orch resumes: those get the prompt as their argv says, and messages wait.
    #[serde(rename = "stream-json")]
    StreamJson,
}

impl crate::manifest::Spelled for InputMode {}

/// An agent: an argv template (never a shell string) and how it is run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentSpec {
    /// The argv; elements may contain `{{ variable }}` placeholders (see [`TEMPLATE_VARS`]).
    pub command: Vec<String>,
    pub(crate) mode: AgentMode,
    /// Where the agent runs, when its table says (else the plan's or the default executor).
    pub(crate) executor: Option<super::executor::ExecutorKind>,
    /// The container image of its plans run in containers, when its table says.
    pub(crate) image: Option<String>,
    /// How its attempts count as done (`report`).
    pub report: ReportMode,
    /// Its sandbox, `[defaults]` and its own keys combined.
    pub(crate) sandbox: super::sandbox::Sandbox,
    /// What it reads on its standard input (`stdin`).
    pub stdin: StdinMode,
    /// What it reads on its standard input while it runs (`input`).
    pub input: InputMode,
    /// The agents its plans' pending tasks go to while it is at a usage limit, in order
    /// (`fallback`).
    pub fallback: Vec<String>,
}

/// The variables an agent argv may use, as `{{ name }}` (spaces inside the braces optional).
/// `status_dir` is the directory of `status_file` (what a sandboxed agent must be allowed to
/// write for `orch task done`).
/// `usage_file` is a file in a directory orch makes afresh for each attempt and reads when it
/// ends (a client that writes its token counts there, GitHub Copilot CLI's
/// `--usage-output-file`).
/// `orch_dir` is the directory of `orch` (a client that asks before running a command naming a
/// path outside the worktree must be told it may name orch's: Copilot CLI's `--add-dir`).
pub(crate) const TEMPLATE_VARS: [&str; 11] = [
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

/// One piece of a templated argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TemplatePart<'a> {
    Text(&'a str),
    /// A variable name, trimmed, known to be one of [`TEMPLATE_VARS`].
    Var(&'a str),
}

/// Splits an argv element into text and variables; errors on an unclosed `{{` or an unknown
/// variable. The error is a message about this one element.
pub(crate) fn parse_template(arg: &str) -> Result<Vec<TemplatePart<'_>>, String> {
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
mod tests;
