//! Supervision keys resolved per plan over `[defaults]` (parallelism, timeouts, retries, setup,
//! copies), the templates dir, the merge strategy and `parallel_tasks`; bad values reported at
//! their location.

use super::*;

#[test]
fn supervision_keys_resolve_per_plan() {
    let repo = Repo::new();
    let m = repo
        .load(
            r#"[defaults]
parallel = 2
stuck_after = "10m"
grace = "3s"
backoff = "0s"
log_dir = "logs/orch"
log_max = "8MiB"
setup = ["npm", "ci"]
copy = [".env"]

[[plan]]
name = "a"
file = "docs/a.md"
timeout = "90s"
retries = 0
parallel = 3
copy = [".env", "config/local.toml"]

[[plan]]
name = "b"
file = "docs/b.md"
setup = ["make", "deps"]
"#,
        )
        .expect("valid");
    assert_eq!(m.defaults.stuck_after, Some(Duration::from_secs(600)));
    assert_eq!(m.defaults.grace, Duration::from_secs(3));
    assert_eq!(m.defaults.backoff, Duration::ZERO);
    assert_eq!(m.defaults.log_max, 8 << 20);
    assert_eq!(m.log_dir("a"), m.root.join("logs/orch/a"));
    let a = m.plan("a").expect("a");
    assert_eq!((a.parallel, a.retries), (3, 0));
    assert_eq!(a.timeout, Duration::from_secs(90));
    assert_eq!(
        a.setup.as_deref(),
        Some(&["npm".to_string(), "ci".to_string()][..])
    );
    assert_eq!(
        a.copy,
        vec![PathBuf::from(".env"), PathBuf::from("config/local.toml")]
    );
    let b = m.plan("b").expect("b");
    assert_eq!((b.parallel, b.retries), (2, 2));
    assert_eq!(b.timeout, Duration::from_secs(7200));
    assert_eq!(
        b.setup.as_deref(),
        Some(&["make".to_string(), "deps".to_string()][..])
    );
    assert_eq!(b.copy, vec![PathBuf::from(".env")]);
}

#[test]
fn supervision_keys_report_bad_values_at_their_location() {
    let repo = Repo::new();
    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "[defaults]\nparallel = 0\n",
            2,
            12,
            "`defaults.parallel` must be at least 1",
        ),
        (
            "[defaults]\nstuck_after = \"0s\"\n",
            2,
            15,
            "must be greater than zero",
        ),
        ("[defaults]\ngrace = \"soon\"\n", 2, 9, "`defaults.grace`"),
        (
            "[defaults]\nlog_max = \"lots\"\n",
            2,
            11,
            "`defaults.log_max` \"lots\" is not a size",
        ),
        (
            "[defaults]\nlog_max = \"12KiB\"\n",
            2,
            11,
            "`defaults.log_max` must be at least 64KiB",
        ),
        (
            "[defaults]\nlog_max = \"99999999999G\"\n",
            2,
            11,
            "is not a size",
        ),
        (
            "[defaults]\nsetup = []\n",
            2,
            9,
            "`defaults.setup` must not be empty",
        ),
        (
            "[defaults]\nsetup = \"npm ci\"\n",
            2,
            9,
            "must be an array of strings",
        ),
        (
            "[defaults]\ncopy = [\"../secret\"]\n",
            2,
            9,
            "is not a path inside the repository",
        ),
        (
            "[defaults]\nlog_dir = \"/var/log\"\n",
            2,
            11,
            "escapes the repository",
        ),
        (
            "[defaults]\nintegrate = \"soon\"\n",
            2,
            13,
            "`defaults.integrate`",
        ),
        (
            "[defaults]\nintegrate_feedback = \"no\"\n",
            2,
            22,
            "`defaults.integrate_feedback` must be true or false",
        ),
        (
            "[defaults]\nauto_merge = \"yes\"\n",
            2,
            14,
            "`defaults.auto_merge` must be true or false",
        ),
        (
            "[defaults]\nsubmodules = \"yes\"\n",
            2,
            14,
            "`defaults.submodules` must be true or false",
        ),
        (
            "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\nsubmodules = 1\n",
            4,
            14,
            "`plan.submodules` must be true or false",
        ),
        (
            "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\nretries = -1\n",
            4,
            11,
            "`plan.retries` must be a non-negative integer",
        ),
        (
            "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\ntimeout = \"0s\"\n",
            4,
            11,
            "`plan.timeout` must be greater than zero",
        ),
    ];
    for (text, line, col, fragment) in cases {
        repo.one_error(text, *line, *col, fragment);
    }
}

#[test]
fn templates_dir_defaults_and_resolves_inside_the_repository() {
    let repo = Repo::new();
    let plan = "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n";
    let m = repo.load(plan).expect("valid");
    assert_eq!(m.defaults.templates, PathBuf::from("orch/templates"));
    assert_eq!(m.templates_dir(), repo.root().join("orch/templates"));

    let m = repo
        .load(&format!(
            "[defaults]\ntemplates = \"./prompts/x/..\"\n{plan}"
        ))
        .expect("valid");
    assert_eq!(m.defaults.templates, PathBuf::from("prompts"));
    assert_eq!(m.templates_dir(), repo.root().join("prompts"));

    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "[defaults]\ntemplates = \"../shared\"\n",
            2,
            13,
            "`defaults.templates` `../shared` escapes the repository",
        ),
        (
            "[defaults]\ntemplates = \"/etc\"\n",
            2,
            13,
            "escapes the repository",
        ),
        (
            "[defaults]\ntemplates = \".\"\n",
            2,
            13,
            "must name a directory inside the repository",
        ),
        (
            "[defaults]\ntemplates = 3\n",
            2,
            13,
            "`defaults.templates` must be a string",
        ),
        (
            "[defaults]\ntemplate = \"t\"\n",
            2,
            1,
            "unknown key `template`",
        ),
    ];
    for (text, line, col, fragment) in cases {
        repo.one_error(text, *line, *col, fragment);
    }
}

#[test]
fn merge_strategy_defaults_parses_and_reports_bad_values_at_their_location() {
    let repo = Repo::new();
    let plan = "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n";
    let m = repo.load(plan).expect("valid");
    assert_eq!(m.defaults.merge_strategy, MergeStrategy::Merge);
    for (text, strategy) in [
        ("merge", MergeStrategy::Merge),
        ("squash", MergeStrategy::Squash),
        ("ff-only", MergeStrategy::FfOnly),
    ] {
        let m = repo
            .load(&format!("[defaults]\nmerge_strategy = \"{text}\"\n{plan}"))
            .expect("valid");
        assert_eq!(m.defaults.merge_strategy, strategy, "{text}");
        assert_eq!(strategy.as_str(), text);
        assert_eq!(MergeStrategy::parse(text), Some(strategy));
    }
    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "[defaults]\nmerge_strategy = \"rebase\"\n",
            2,
            18,
            "`defaults.merge_strategy` must be one of \"merge\", \"squash\" or \"ff-only\", found \"rebase\"",
        ),
        (
            "[defaults]\nmerge_strategy = 1\n",
            2,
            18,
            "`defaults.merge_strategy` must be a string",
        ),
        (
            "[defaults]\nmerge_stratgy = \"squash\"\n",
            2,
            1,
            "unknown key `merge_stratgy`",
        ),
    ];
    for (text, line, col, fragment) in cases {
        let d = repo.one_error(text, *line, *col, fragment);
        if fragment.contains("unknown key") {
            assert_eq!(
                d.hint.as_deref(),
                Some("did you mean `merge_strategy`?"),
                "{d}"
            );
        }
    }
}

#[test]
fn parallel_tasks_resolves_per_plan_and_reports_bad_values_at_their_location() {
    let repo = Repo::new();
    let m = repo
        .load(
            "[defaults]\nparallel_tasks = 3\n\n[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n\n\
             [[plan]]\nname = \"b\"\nfile = \"docs/b.md\"\nparallel_tasks = 1\nparallel = 2\n",
        )
        .expect("valid");
    assert_eq!(m.defaults.parallel_tasks, 3);
    let a = m.plan("a").expect("a");
    assert_eq!((a.parallel, a.parallel_tasks), (1, 3));
    let b = m.plan("b").expect("b");
    assert_eq!((b.parallel, b.parallel_tasks), (2, 1));

    let plan = "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n";
    let cases: &[(String, usize, usize, &str)] = &[
        (
            "[defaults]\nparallel_tasks = 0\n".to_string(),
            2,
            18,
            "`defaults.parallel_tasks` must be at least 1, found 0",
        ),
        (
            format!("{plan}parallel_tasks = \"2\"\n"),
            4,
            18,
            "`plan.parallel_tasks`",
        ),
        (
            format!("{plan}parallel_tasks = -1\n"),
            4,
            18,
            "`plan.parallel_tasks` must be at least 1",
        ),
        (
            format!("{plan}parallel = 2\nparallel_tasks = 2\n"),
            5,
            18,
            "plan `a` sets both `parallel` (2) and `parallel_tasks` (2) above 1",
        ),
        (
            format!("[defaults]\nparallel = 3\n\n{plan}parallel_tasks = 2\n"),
            7,
            18,
            "plan `a` sets both",
        ),
        (
            format!("[defaults]\nparallel_tasks = 2\n\n{plan}parallel = 4\n"),
            7,
            12,
            "plan `a` sets both `parallel` (4) and `parallel_tasks` (2)",
        ),
        (
            format!("[defaults]\nparallel = 2\nparallel_tasks = 2\n\n{plan}"),
            3,
            18,
            "`[defaults]` sets both",
        ),
    ];
    for (text, line, col, fragment) in cases {
        repo.one_error(text, *line, *col, fragment);
    }
}

#[test]
fn integrate_is_a_duration_or_off_and_defaults_to_ten_minutes_with_verify() {
    let repo = Repo::new();
    let cases: &[(&str, Option<u64>, bool)] = &[
        ("", None, true),
        ("verify = [\"make\", \"test\"]\n", Some(600), true),
        ("verify = [\"make\"]\nintegrate = \"off\"\n", None, true),
        (
            "integrate = \"0s\"\nintegrate_feedback = false\n",
            Some(0),
            false,
        ),
        ("integrate = \"1h\"\n", Some(3600), true),
    ];
    for (defaults, integrate, feedback) in cases {
        let m = repo
            .load(&format!(
                "[defaults]\n{defaults}\n[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n"
            ))
            .unwrap_or_else(|e| panic!("{defaults}: {e:?}"));
        assert_eq!(
            m.defaults.integrate,
            integrate.map(Duration::from_secs),
            "{defaults}"
        );
        assert_eq!(m.defaults.integrate_feedback, *feedback, "{defaults}");
    }
}
