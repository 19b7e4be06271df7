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
