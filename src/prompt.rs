//! Prompt templates: what an agent is told. `task.md` (one agent per task) and `plan.md` (one
//! long-running agent per plan) are minijinja templates, built in from `templates/` and
//! replaceable per repository (`defaults.templates`, `orch/templates` by default).
//!
//! Rendering is strict: a variable that does not exist is an error, not an empty string, so a
//! misspelled `{{ tsak_id }}` is found by `orch check` instead of reaching an agent.

use std::io;
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::untrusted::read;

/// The built-in `task.md`.
pub(crate) const TASK_TEMPLATE: &str = include_str!("../templates/task.md");
/// The built-in `plan.md`.
pub(crate) const PLAN_TEMPLATE: &str = include_str!("../templates/plan.md");

/// The file names looked for in the templates directory.
pub(crate) const TASK_FILE: &str = "task.md";
pub(crate) const PLAN_FILE: &str = "plan.md";

/// The variables of `task.md`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TaskPrompt {
    /// The plan's name in the manifest (`auth`).
    pub(crate) plan: String,
    /// The plan file's `# ` heading.
    pub(crate) plan_title: String,
    /// The plan file, relative to the repository root.
    pub(crate) plan_file: String,
    pub(crate) phase_number: u32,
    pub(crate) phase_title: String,
    /// `2.3`, or `V2` for a verification step.
    pub(crate) task_id: String,
    /// `task` or `verify`.
    pub(crate) kind: String,
    pub(crate) description: String,
    /// The indented lines under the task; for `verify`: the acceptance criteria.
    pub(crate) body: String,
    /// The tasks this one depends on (all done).
    pub(crate) dependencies: Vec<DepInfo>,
    /// The plan's worktree (absolute).
    pub(crate) worktree: String,
    pub(crate) branch: String,
    /// The orch executable to call back (also in `$ORCH_BIN`).
    pub(crate) orch: String,
    pub(crate) status_file: String,
    /// 1 for the first attempt.
    pub(crate) attempt: u32,
    /// The error of the previous attempt, when this is a retry (for a failed check: the end
    /// of its output).
    pub(crate) previous_error: Option<String>,
    /// The last integration test's failure, when it named this plan: which other plans' commits
    /// this plan fails with, and the output.
    pub(crate) integration: Option<String>,
    /// The check orch runs before committing the work (`cargo test`), empty when none.
    pub(crate) check: String,
    /// Exit status 0 counts as done too (the agent's `report = "exit"`); else only
    /// `orch task done` does.
    pub(crate) report_by_exit: bool,
    /// The last question an earlier attempt asked (`orch task ask`) and a person answered.
    pub(crate) question: Option<String>,
    /// A person's answer to it (`orch answer`).
    pub(crate) answer: Option<String>,
    /// Every question answered so far, oldest first (`question`, `answer`).
    pub(crate) answers: Vec<QaInfo>,
    /// A person's messages to the task (`orch say`), oldest first.
    pub(crate) messages: Vec<String>,
}

/// A question an attempt asked and a person's answer.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct QaInfo {
    pub(crate) question: String,
    pub(crate) answer: String,
}

impl TaskPrompt {
    /// With the questions earlier attempts asked and a person answered (`orchAnswers`), and a
    /// person's messages (`orchMessages`), from the task's entry.
    pub(crate) fn with_entry(mut self, entry: Option<&crate::status::TaskEntry>) -> Self {
        self.messages = entry
            .map(|e| e.orch_messages.iter().map(|m| m.text.clone()).collect())
            .unwrap_or_default();
        let answers = entry.map(|e| e.orch_answers.as_slice()).unwrap_or_default();
        self.answers = answers
            .iter()
            .map(|a| QaInfo {
                question: a.question.clone(),
                answer: a.answer.clone(),
            })
            .collect();
        if let Some(last) = answers.last() {
            self.question = Some(last.question.clone());
            self.answer = Some(last.answer.clone());
        }
        self
    }
}

/// A task that the prompted task depends on.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct DepInfo {
    pub(crate) id: String,
    pub(crate) description: String,
    /// The commit orch made when it completed, if any.
    pub(crate) commit: Option<String>,
}

/// The variables of `plan.md`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PlanPrompt {
    pub(crate) plan: String,
    pub(crate) plan_title: String,
    pub(crate) plan_file: String,
    pub(crate) worktree: String,
    pub(crate) branch: String,
    pub(crate) orch: String,
    pub(crate) status_file: String,
    /// Tasks and verification steps of the plan.
    pub(crate) tasks_total: usize,
    /// Those not completed or skipped yet.
    pub(crate) tasks_remaining: usize,
    /// The last integration test's failure, when it named this plan (as in `task.md`).
    pub(crate) integration: Option<String>,
}

/// Why a template could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PromptError {
    #[error("cannot read template `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("template `{}`{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Template {
        /// The template as the user knows it (`orch/templates/task.md`, or `<built-in>/task.md`).
        path: PathBuf,
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        message: String,
    },
}

impl PromptError {
    /// The template file the error is about.
    pub(crate) fn path(&self) -> &Path {
        match self {
            Self::Read { path, .. } | Self::Template { path, .. } => path,
        }
    }

    /// What went wrong, without the location (for a diagnostic that carries it).
    pub(crate) fn reason(&self) -> String {
        match self {
            Self::Read { source, .. } => format!("cannot read template: {source}"),
            Self::Template { message, .. } => format!("template: {message}"),
        }
    }

    /// The 1-based line, when known.
    pub(crate) fn line(&self) -> Option<usize> {
        match self {
            Self::Read { .. } => None,
            Self::Template { line, .. } => *line,
        }
    }
}

/// Where a template's text came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Built into the binary.
    Embedded,
    /// Read from this file (relative to the manifest's directory when the directory was).
    File(PathBuf),
}

#[derive(Clone, Debug)]
struct Source {
    text: String,
    origin: Origin,
    /// The name errors use.
    name: String,
    /// `task.md` or `plan.md`: which variables the template may use.
    file: &'static str,
}

impl Source {
    fn embedded(file: &'static str, text: &str) -> Self {
        Self {
            text: text.to_string(),
            origin: Origin::Embedded,
            name: format!("<built-in>/{file}"),
            file,
        }
    }
}

/// The two prompt templates and where each came from.
#[derive(Clone, Debug)]
pub(crate) struct Templates {
    task: Source,
    plan: Source,
    /// Both templates compiled, on first use (a run renders one prompt per attempt).
    compiled: std::sync::OnceLock<Environment<'static>>,
}

impl Templates {
    /// Loads `<root>/<dir>/task.md` and `plan.md` when they exist, else the embedded defaults
    /// (each file on its own: overriding only `task.md` is fine).
    pub(crate) fn load(root: &Path, dir: &Path) -> Result<Templates, PromptError> {
        let one = |file: &'static str, builtin: &str| -> Result<Source, PromptError> {
            let shown = dir.join(file);
            // A template is configuration a landed branch may have written: a link at it (or
            // one on the way out of the repository), a FIFO or a huge file is refused by name.
            let read = read::optional_beneath(root, &shown, read::TEMPLATE)
                .map_err(io::Error::from)
                .and_then(|b| {
                    b.map(|b| {
                        String::from_utf8(b)
                            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
                    })
                    .transpose()
                });
            match read {
                Ok(Some(text)) => Ok(Source {
                    text,
                    name: shown.display().to_string(),
                    origin: Origin::File(shown),
                    file,
                }),
                Ok(None) => Ok(Source::embedded(file, builtin)),
                Err(source) => Err(PromptError::Read {
                    path: shown,
                    source,
                }),
            }
        };
        Ok(Templates {
            task: one(TASK_FILE, TASK_TEMPLATE)?,
            plan: one(PLAN_FILE, PLAN_TEMPLATE)?,
            compiled: std::sync::OnceLock::new(),
        })
    }

    /// Compiles both templates (syntax check), then renders each with sample values so that an
    /// unknown variable or filter is found before any agent runs. Errors name the file and line.
    pub(crate) fn check(&self) -> Result<(), PromptError> {
        let env = self.environment()?;
        for sample in [sample_task(true), sample_task(false)] {
            render(env, &self.task, &sample)?;
        }
        render(env, &self.plan, &sample_plan())?;
        Ok(())
    }

    /// The prompt for one task.
    pub(crate) fn render_task(&self, p: &TaskPrompt) -> Result<String, PromptError> {
        render(self.environment()?, &self.task, p)
    }

    /// The prompt for a plan-mode agent.
    pub(crate) fn render_plan(&self, p: &PlanPrompt) -> Result<String, PromptError> {
        render(self.environment()?, &self.plan, p)
    }

    /// An environment holding both templates, compiled (once).
    fn environment(&self) -> Result<&Environment<'static>, PromptError> {
        if let Some(env) = self.compiled.get() {
            return Ok(env);
        }
        let env = self.compile()?;
        Ok(self.compiled.get_or_init(|| env))
    }

    fn compile(&self) -> Result<Environment<'static>, PromptError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Block tags on lines of their own leave no blank lines; the final newline stays.
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| PromptError::Template {
                path: PathBuf::from("<built-in syntax>"),
                line: None,
                message: e.to_string(),
            })?;
        env.set_syntax(syntax);
        // Prompts are plain text: never HTML-escape, whatever the file is called.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        for source in [&self.task, &self.plan] {
            env.add_template_owned(source.name.clone(), source.text.clone())
                .map_err(|e| template_error(source, &e))?;
        }
        Ok(env)
    }
}

fn render<T: Serialize>(
    env: &Environment<'_>,
    source: &Source,
    ctx: &T,
) -> Result<String, PromptError> {
    let template = env
        .get_template(&source.name)
        .map_err(|e| template_error(source, &e))?;
    template
        .render(minijinja::Value::from(minijinja::value::Serde(ctx)))
        .map_err(|e| template_error(source, &e))
}

fn template_error(source: &Source, e: &minijinja::Error) -> PromptError {
    let path = match &source.origin {
        Origin::File(p) => p.clone(),
        Origin::Embedded => PathBuf::from(&source.name),
    };
    let message = error_message(e, source.file);
    PromptError::Template {
        path,
        line: e.line().filter(|&l| l > 0),
        message,
    }
}

/// `unknown filter \`foo\``, `\`x\` is undefined (variables: …)`, `syntax error: …`.
fn error_message(e: &minijinja::Error, file: &str) -> String {
    use minijinja::ErrorKind as K;
    let detail = e.detail().unwrap_or_default();
    match e.kind() {
        K::UnknownFilter | K::UnknownTest => {
            // minijinja says "filter foo is unknown".
            let name = detail
                .split_whitespace()
                .nth(1)
                .filter(|_| detail.ends_with(" is unknown"));
            match name {
                Some(name) => format!("{} `{name}`", e.kind()),
                None => format!("{}: {detail}", e.kind()),
            }
        }
        K::UndefinedError => {
            let what = if detail.is_empty() {
                "undefined value".to_string()
            } else {
                detail.to_string()
            };
            format!("{what} (the variables are {})", variables(file).join(", "))
        }
        kind if detail.is_empty() => kind.to_string(),
        kind => format!("{kind}: {detail}"),
    }
}

/// The variables of `file` (`task.md` or `plan.md`): the fields of [`TaskPrompt`] or
/// [`PlanPrompt`], in their order.
fn variables(file: &str) -> Vec<String> {
    let sample = if file == TASK_FILE {
        serde_json::to_value(sample_task(true))
    } else {
        serde_json::to_value(sample_plan())
    };
    match sample {
        Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Sample values for [`Templates::check`]: `full` fills every optional value.
fn sample_task(full: bool) -> TaskPrompt {
    TaskPrompt {
        plan: "auth".into(),
        plan_title: "Authentication".into(),
        plan_file: "docs/plans/auth.md".into(),
        phase_number: 2,
        phase_title: "Sessions".into(),
        task_id: if full { "V2" } else { "2.3" }.into(),
        kind: if full { "verify" } else { "task" }.into(),
        description: "Store sessions in Redis".into(),
        body: if full {
            "- sessions survive a restart"
        } else {
            ""
        }
        .into(),
        dependencies: if full {
            vec![DepInfo {
                id: "2.1".into(),
                description: "Add the Redis client".into(),
                commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            }]
        } else {
            Vec::new()
        },
        worktree: "/repo/.orch/worktrees/auth".into(),
        branch: "plan/auth".into(),
        orch: "/usr/local/bin/orch".into(),
        status_file: "/repo/.orch/state/auth/status.json".into(),
        attempt: if full { 2 } else { 1 },
        previous_error: full.then(|| "tests failed".into()),
        integration: None,
        check: if full { "cargo test" } else { "" }.into(),
        report_by_exit: !full,
        question: full.then(|| "PostgreSQL or SQLite?".into()),
        answer: full.then(|| "PostgreSQL".into()),
        answers: if full {
            vec![QaInfo {
                question: "PostgreSQL or SQLite?".into(),
                answer: "PostgreSQL".into(),
            }]
        } else {
            Vec::new()
        },
        messages: if full {
            vec!["keep the old API working".into()]
        } else {
            Vec::new()
        },
    }
}

fn sample_plan() -> PlanPrompt {
    PlanPrompt {
        plan: "auth".into(),
        plan_title: "Authentication".into(),
        plan_file: "docs/plans/auth.md".into(),
        worktree: "/repo/.orch/worktrees/auth".into(),
        branch: "plan/auth".into(),
        orch: "/usr/local/bin/orch".into(),
        status_file: "/repo/.orch/state/auth/status.json".into(),
        tasks_total: 7,
        tasks_remaining: 4,
        integration: None,
    }
}

#[cfg(test)]
mod tests;
