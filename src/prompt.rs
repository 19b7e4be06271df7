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
mod tests {
    use super::*;

    impl Templates {
        /// The built-in templates.
        pub(crate) fn embedded() -> Templates {
            Templates {
                task: Source::embedded(TASK_FILE, TASK_TEMPLATE),
                plan: Source::embedded(PLAN_FILE, PLAN_TEMPLATE),
                compiled: std::sync::OnceLock::new(),
            }
        }

        /// Where `task.md` came from.
        pub(crate) fn task_origin(&self) -> &Origin {
            &self.task.origin
        }

        /// Where `plan.md` came from.
        pub(crate) fn plan_origin(&self) -> &Origin {
            &self.plan.origin
        }
    }

    /// Templates loaded from `folder` of a new directory (kept alive by the caller) that holds
    /// one file.
    fn on_disk(folder: &str, file: &str, text: &str) -> (tempfile::TempDir, Templates) {
        let dir = tempfile::tempdir().expect("tempdir");
        let tdir = dir.path().join(folder);
        std::fs::create_dir_all(&tdir).expect("mkdir");
        std::fs::write(tdir.join(file), text).expect("write");
        let t = Templates::load(dir.path(), Path::new(folder)).expect("loads");
        (dir, t)
    }

    fn task() -> TaskPrompt {
        TaskPrompt {
            plan: "greeter".into(),
            plan_title: "Greeter".into(),
            plan_file: "docs/plans/greeter.md".into(),
            phase_number: 1,
            phase_title: "Core".into(),
            task_id: "1.2".into(),
            kind: "task".into(),
            description: "Add the `greet` function (depends: 1.1)".into(),
            body: "- takes a name\n- returns `Hello, <name>!`".into(),
            dependencies: vec![DepInfo {
                id: "1.1".into(),
                description: "Create the crate".into(),
                commit: Some("abcdef0123456789".into()),
            }],
            worktree: "/r/.orch/worktrees/greeter".into(),
            branch: "plan/greeter".into(),
            orch: "/bin/orch".into(),
            status_file: "/r/.orch/state/greeter/status.json".into(),
            attempt: 1,
            previous_error: None,
            integration: None,
            check: String::new(),
            report_by_exit: true,
            question: None,
            answer: None,
            answers: Vec::new(),
            messages: Vec::new(),
        }
    }

    fn plan() -> PlanPrompt {
        PlanPrompt {
            plan: "greeter".into(),
            plan_title: "Greeter".into(),
            plan_file: "docs/plans/greeter.md".into(),
            worktree: "/r/.orch/worktrees/greeter".into(),
            branch: "plan/greeter".into(),
            orch: "/bin/orch".into(),
            status_file: "/r/.orch/state/greeter/status.json".into(),
            tasks_total: 5,
            tasks_remaining: 3,
            integration: None,
        }
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    fn assert_has(text: &str, line: &str) {
        assert!(
            text.lines().any(|l| l == line),
            "line {line:?} not in:\n{text}"
        );
    }

    #[test]
    fn task_prompt_names_the_task_its_dependencies_and_how_to_report() {
        let text = Templates::embedded().render_task(&task()).expect("renders");
        assert_has(
            &text,
            "You are doing one task of the plan \"Greeter\" (`docs/plans/greeter.md`). orch, the supervisor that runs this plan, started you for this one task.",
        );
        assert_has(
            &text,
            "## Task 1.2: Add the `greet` function (depends: 1.1)",
        );
        assert_has(&text, "Phase 1: Core");
        assert_has(&text, "Details:");
        assert_has(&text, "- takes a name");
        assert_has(&text, "- returns `Hello, <name>!`");
        assert_has(
            &text,
            "Already done (their changes are in your working tree):",
        );
        assert_has(&text, "- 1.1 Create the crate (commit abcdef0123)");
        assert_has(
            &text,
            "- Work only inside `/r/.orch/worktrees/greeter` (branch `plan/greeter`), your current directory. Do not touch files outside it.",
        );
        assert!(text.contains("Do NOT commit"), "{text}");
        assert_has(
            &text,
            "When finished, run exactly one of these commands, as written (orch's path is spelled out, also in `$ORCH_BIN`):",
        );
        assert_has(
            &text,
            "    /bin/orch task done 1.2 --note \"what you changed, in one line\"",
        );
        assert_has(
            &text,
            "    /bin/orch task fail 1.2 --error \"what is wrong and why\"",
        );
        assert!(text.contains("exit with status 0 without reporting, the task counts as done"));
        assert!(!text.contains("previous attempt"), "{text}");
        assert!(!text.contains("attempt 1"), "{text}");
        assert!(!text.contains("Acceptance criteria"), "{text}");
        // trim_blocks/lstrip_blocks: no stray blank lines from block tags.
        assert!(!text.contains("\n\n\n"), "{text}");
        assert!(text.ends_with("counts as failed.\n"), "{text}");
    }

    #[test]
    fn a_failing_integration_test_reaches_task_and_plan_prompts() {
        let failure = "This plan's commits fail together with the commits of plan `lib`.\n    missing function: greet";
        let mut p = task();
        assert!(
            !Templates::embedded()
                .render_task(&p)
                .expect("renders")
                .contains("integration test")
        );
        p.integration = Some(failure.into());
        let text = Templates::embedded().render_task(&p).expect("renders");
        assert_has(
            &text,
            "orch's integration test merged every plan's branch together, and this plan does not fit with the others yet:",
        );
        assert_has(&text, "    missing function: greet");
        assert!(!text.contains("\n\n\n"), "{text}");
        let mut plan = plan();
        plan.integration = Some(failure.into());
        let text = Templates::embedded().render_plan(&plan).expect("renders");
        assert_has(
            &text,
            "This plan's commits fail together with the commits of plan `lib`.",
        );
    }

    #[test]
    fn verify_prompt_asks_for_a_check_of_the_criteria() {
        let mut p = task();
        p.kind = "verify".into();
        p.task_id = "V1".into();
        p.description = "`greet` is exported".into();
        p.body = "- `greet` is exported\n- `cargo test` passes".into();
        p.dependencies.clear();
        p.attempt = 2;
        p.previous_error = Some("criterion 2 failed: 3 tests fail".into());
        let text = Templates::embedded().render_task(&p).expect("renders");
        assert!(
            text.starts_with("You are verifying phase 1 (\"Core\") of the plan \"Greeter\""),
            "{text}"
        );
        assert_has(&text, "## Verification V1: `greet` is exported");
        assert_has(&text, "Phase 1: Core (attempt 2)");
        assert_has(&text, "Acceptance criteria:");
        assert_has(&text, "- `cargo test` passes");
        assert!(text.contains("If any criterion is not met, report this step failed"));
        assert_has(&text, "The previous attempt failed with:");
        assert_has(&text, "criterion 2 failed: 3 tests fail");
        assert_has(
            &text,
            "Check again from scratch; the code may have changed since.",
        );
        assert!(!text.contains("Already done"), "{text}");
        assert!(!text.contains("Details:"), "{text}");
        assert_has(
            &text,
            "    /bin/orch task fail V1 --error \"what is wrong and why\"",
        );
    }

    #[test]
    fn plan_prompt_loops_over_next() {
        let text = Templates::embedded().render_plan(&plan()).expect("renders");
        let l = lines(&text);
        assert!(
            l[0].starts_with(
                "You are the agent for the whole plan \"Greeter\" (`docs/plans/greeter.md`)"
            ),
            "{text}"
        );
        assert!(l[0].ends_with("3 of its 5 tasks remain."), "{text}");
        assert_has(&text, "       /bin/orch next --json -n 1");
        assert!(text.contains("If `tasks` is empty, stop"), "{text}");
        assert!(text.contains("`/bin/orch task start ID`"), "{text}");
        assert_has(
            &text,
            "       /bin/orch task done ID --note \"what you changed, in one line\"",
        );
        assert!(text.contains("Do NOT commit"), "{text}");
        assert!(text.contains("`/r/.orch/worktrees/greeter` (branch `plan/greeter`)"));
        assert!(text.contains("(orch is `/bin/orch`, also in `$ORCH_BIN`)"));
    }

    #[test]
    fn the_variable_lists_match_the_structs() {
        const TASK_VARS: &[&str] = &[
            "plan",
            "plan_title",
            "plan_file",
            "phase_number",
            "phase_title",
            "task_id",
            "kind",
            "description",
            "body",
            "dependencies",
            "worktree",
            "branch",
            "orch",
            "status_file",
            "attempt",
            "previous_error",
            "integration",
            "check",
            "report_by_exit",
            "question",
            "answer",
            "answers",
            "messages",
        ];
        const PLAN_VARS: &[&str] = &[
            "plan",
            "plan_title",
            "plan_file",
            "worktree",
            "branch",
            "orch",
            "status_file",
            "tasks_total",
            "tasks_remaining",
            "integration",
        ];
        let keys = |v: serde_json::Value| -> Vec<String> {
            v.as_object().expect("object").keys().cloned().collect()
        };
        let task_keys = keys(serde_json::to_value(task()).expect("json"));
        assert_eq!(task_keys, TASK_VARS);
        assert_eq!(variables(TASK_FILE), TASK_VARS);
        let plan_keys = keys(serde_json::to_value(plan()).expect("json"));
        assert_eq!(plan_keys, PLAN_VARS);
        assert_eq!(variables(PLAN_FILE), PLAN_VARS);
    }

    #[test]
    fn the_built_in_templates_pass_their_own_check() {
        Templates::embedded().check().expect("built-ins are valid");
    }

    #[test]
    fn a_misspelled_variable_is_an_error_with_its_line() {
        let (_dir, t) = on_disk(
            "orch/templates",
            "task.md",
            "Task {{ task_id }}\n\nDo {{ tsak_id }}.\n",
        );
        let err = t.render_task(&task()).expect_err("undefined variable");
        assert_eq!(err.path(), Path::new("orch/templates/task.md"));
        assert_eq!(err.line(), Some(3));
        let msg = err.to_string();
        assert!(
            msg.starts_with("template `orch/templates/task.md`:3: `tsak_id` is undefined (the variables are plan, plan_title,"),
            "{msg}"
        );
        let err = t.check().expect_err("check finds it too");
        assert_eq!(err.line(), Some(3), "{err}");
    }

    #[test]
    fn a_syntax_error_names_file_and_line() {
        let (_dir, t) = on_disk(
            "prompts",
            "plan.md",
            "Plan {{ plan }}\n{% if tasks_remaining %}\nwork\n{% endfor %}\n",
        );
        assert_eq!(t.task_origin(), &Origin::Embedded);
        assert_eq!(t.plan_origin(), &Origin::File("prompts/plan.md".into()));
        let err = t.check().expect_err("syntax error");
        assert_eq!(err.line(), Some(4), "{err}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("template `prompts/plan.md`:4: syntax error"),
            "{msg}"
        );
        // The task template is fine, but nothing renders from a broken environment.
        assert!(t.render_task(&task()).is_err());
    }

    #[test]
    fn an_unknown_filter_is_found_by_check() {
        let (_dir, t) = on_disk("t", "task.md", "one\ntwo {{ task_id | shout }}\n");
        let err = t.check().expect_err("unknown filter");
        let msg = err.to_string();
        assert_eq!(msg, "template `t/task.md`:2: unknown filter `shout`");
    }

    #[test]
    fn overrides_on_disk_replace_the_built_ins_one_by_one() {
        let (dir, t) = on_disk(
            "orch/templates",
            "task.md",
            "{{ plan }}/{{ task_id }} try {{ attempt }}{% for d in dependencies %} after {{ d.id }}{% endfor %}\n",
        );
        assert_eq!(
            t.task_origin(),
            &Origin::File(PathBuf::from("orch/templates/task.md"))
        );
        assert_eq!(t.plan_origin(), &Origin::Embedded);
        t.check().expect("valid");
        assert_eq!(
            t.render_task(&task()).expect("renders"),
            // trim_blocks eats the newline after a block tag, as in Jinja.
            "greeter/1.2 try 1 after 1.1"
        );
        // plan.md is still the built-in one.
        let builtin = Templates::embedded().render_plan(&plan()).expect("renders");
        assert_eq!(t.render_plan(&plan()).expect("renders"), builtin);

        // Nothing on disk: both built in.
        let t = Templates::load(dir.path(), Path::new("elsewhere")).expect("loads");
        assert_eq!(t.task_origin(), &Origin::Embedded);
        assert_eq!(
            t.render_task(&task()).expect("renders"),
            Templates::embedded().render_task(&task()).expect("renders")
        );
    }

    #[test]
    fn an_unreadable_template_is_a_read_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory where the file should be.
        std::fs::create_dir_all(dir.path().join("t/task.md")).expect("mkdir");
        let err = Templates::load(dir.path(), Path::new("t")).expect_err("not a file");
        assert!(matches!(err, PromptError::Read { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("cannot read template `t/task.md`"),
            "{err}"
        );
    }
}
