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
    pub executor: Option<crate::executor::ExecutorKind>,
    /// How its attempts count as done (`report`).
    pub report: ReportMode,
}

/// The variables an agent argv may use, as `{{ name }}` (spaces inside the braces optional).
pub const TEMPLATE_VARS: [&str; 8] = [
    "prompt",
    "prompt_file",
    "plan",
    "plan_file",
    "task",
    "worktree",
    "status_file",
    "orch",
];

/// The agents usable without an `[agents.X]` table; a table with the same name overrides one.
pub fn presets() -> BTreeMap<String, AgentSpec> {
    let argv = |args: &[&str]| AgentSpec {
        command: args.iter().map(|a| (*a).to_string()).collect(),
        mode: AgentMode::Task,
        executor: None,
        report: ReportMode::Orch,
    };
    BTreeMap::from([
        (
            "claude".to_string(),
            argv(&[
                "claude",
                "-p",
                "{{ prompt }}",
                "--permission-mode",
                "acceptEdits",
            ]),
        ),
        (
            "codex".to_string(),
            argv(&["codex", "exec", "--full-auto", "{{ prompt }}"]),
        ),
        (
            "aider".to_string(),
            AgentSpec {
                // aider has no way to call orch back reliably: its exit status (and the check)
                // decide.
                report: ReportMode::Exit,
                ..argv(&["aider", "--yes-always", "--message", "{{ prompt }}"])
            },
        ),
        (
            "gemini".to_string(),
            argv(&["gemini", "--yolo", "-p", "{{ prompt }}"]),
        ),
    ])
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

/// Fills the variables of one argv element; `lookup` gives each variable's value.
pub fn render_template(arg: &str, lookup: impl Fn(&str) -> String) -> Result<String, String> {
    Ok(parse_template(arg)?
        .into_iter()
        .map(|part| match part {
            TemplatePart::Text(t) => t.to_string(),
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
