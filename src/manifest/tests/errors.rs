//! Diagnostics: every error at its `line:col`, hints and suggestions, several problems at once.

use super::*;

const PLAN_A: &str = "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n";

/// (manifest, line, column, message fragment): each has exactly one error.
#[test]
fn each_error_has_its_location() {
    let cases: Vec<(String, usize, usize, &str)> = vec![
        // syntax and types
        ("[defaults\n".into(), 1, 10, ""),
        ("[defaults]\ntarget = \n".into(), 2, 10, ""),
        (
            "[defaults]\nmax_agents = 2\n\nmax_agents = 3\n".into(),
            4,
            1,
            "duplicate key `max_agents` (first set at line 2)",
        ),
        (
            "[defaults]\nmax_agents = 2\n[defaults]\ntarget = \"x\"\n".into(),
            3,
            2,
            "duplicate table `[defaults]` (first at line 1)",
        ),
        (
            format!("{PLAN_A}name = \"b\"\n"),
            4,
            1,
            "duplicate key `name` (first set at line 2)",
        ),
        (
            "[defaults]\nmax_agents = \"4\"\n".into(),
            2,
            14,
            "must be an integer, found a string",
        ),
        (
            "[defaults]\ntimeout = 5\n".into(),
            2,
            11,
            "must be a string",
        ),
        ("defaults = 3\n".into(), 1, 12, "`defaults` must be a table"),
        (
            "[plan]\nname = \"a\"\n".into(),
            1,
            1,
            "must be an array of tables",
        ),
        (
            format!("{PLAN_A}priority = \"high\"\n"),
            4,
            12,
            "must be an integer",
        ),
        (
            format!("{PLAN_A}depends_on = \"a\"\n"),
            4,
            14,
            "must be an array of strings",
        ),
        (
            format!("{PLAN_A}depends_on = [1]\n"),
            4,
            15,
            "this element is an integer",
        ),
        // unknown keys
        (
            format!("{PLAN_A}nmae = \"x\"\n"),
            4,
            1,
            "unknown key `nmae` in `[[plan]]`",
        ),
        (
            "[defaults]\ntargte = \"main\"\n".into(),
            2,
            1,
            "unknown key `targte` in `[defaults]`",
        ),
        (
            "[agents.x]\ncommand = [\"x\"]\nmod = \"task\"\n".into(),
            3,
            1,
            "unknown key `mod` in `[agents.x]`",
        ),
        (
            "plans = []\n".into(),
            1,
            1,
            "unknown key `plans` at the top level",
        ),
        // bad values
        ("[defaults]\nmax_agents = 0\n".into(), 2, 14, "at least 1"),
        ("[defaults]\nretries = -1\n".into(), 2, 11, "non-negative"),
        (
            "[defaults]\ntimeout = \"2 hours\"\n".into(),
            2,
            11,
            "invalid duration `2 hours`",
        ),
        (
            "[defaults]\ntimeout = \"0s\"\n".into(),
            2,
            11,
            "greater than zero",
        ),
        (
            "[defaults]\nverify = []\n".into(),
            2,
            10,
            "`defaults.verify` must not be empty",
        ),
        (
            "[agents.x]\ncommand = [\"x\"]\nmode = \"batch\"\n".into(),
            3,
            8,
            "must be \"task\" or \"plan\"",
        ),
        (
            "[agents.x]\ncommand = []\n".into(),
            2,
            11,
            "must not be empty",
        ),
        (
            "[agents.x]\ncommand = [\"x\"]\nstdin = \"file\"\n".into(),
            3,
            9,
            "`agents.x.stdin` must be \"null\" or \"prompt\", found \"file\"",
        ),
        (
            "[agents.x]\ncommand = [\"x\"]\ninput = \"words\"\n".into(),
            3,
            9,
            "`agents.x.input` must be \"lines\", \"stream-json\" or \"none\", found \"words\"",
        ),
        (
            "[agents.x]\ncommand = [\"x\"]\nstdin = \"prompt\"\ninput = \"lines\"\n".into(),
            4,
            9,
            "agent `x` reads its prompt on stdin",
        ),
        (
            "[agents.x]\ncommand = [\"x\"]\nfallback = [\"nope\"]\n".into(),
            3,
            13,
            "`agents.x.fallback` names unknown agent `nope`",
        ),
        (
            "[agents.x]\ncommand = [\"x\"]\nfallback = [\"x\"]\n".into(),
            3,
            13,
            "`agents.x.fallback` names `x` itself",
        ),
        (
            "[agents.x]\ncommand = [\"x\"]\nfallback = [\"codex\"]\n".into(),
            3,
            13,
            "`agents.x.fallback` names agent `codex`, whose `report` differs from `x`'s",
        ),
        (
            "[agents.x]\ncommand = [\"x\"]\nfallback = [\"y\"]\n\n[agents.y]\ncommand = [\"y\"]\nfallback = [\"x\"]\n".into(),
            3,
            13,
            "the fallbacks of `agents.x` form a cycle: x → y → x",
        ),
        (
            format!("{PLAN_A}fallback = [\"nope\"]\n"),
            4,
            13,
            "the `fallback` of plan `a` names unknown agent `nope`",
        ),
        (
            "[agents.x]\nmode = \"task\"\n".into(),
            1,
            9,
            "agent `x` has no `command`",
        ),
        (
            "[agents.x]\ncommand = [\"x\", \"{{ prompt }}\", \"{{ oops }}\"]\n".into(),
            2,
            33,
            "unknown template variable `{{ oops }}`",
        ),
        (
            "[agents.x]\ncommand = [\"x\", \"{{ prompt\"]\n".into(),
            2,
            17,
            "unclosed `{{`",
        ),
        (
            "[defaults]\ntarget = \"a..b\"\n".into(),
            2,
            10,
            "not a valid branch name",
        ),
        (
            "[defaults]\nbranch_prefix = \"-x/\"\n".into(),
            2,
            17,
            "cannot begin a branch name",
        ),
        (
            "[defaults]\nstate_dir = \"../state\"\n".into(),
            2,
            13,
            "escapes the repository",
        ),
        (
            "[defaults]\nstate_dir = \"/tmp/state\"\n".into(),
            2,
            13,
            "escapes the repository",
        ),
        (
            "[defaults]\nworktree_root = \"a/../../w\"\n".into(),
            2,
            17,
            "escapes the repository",
        ),
        (
            "[defaults]\nagent = \"robot\"\n".into(),
            2,
            9,
            "`defaults.agent` names unknown agent `robot`",
        ),
        // plans
        (
            "[[plan]]\nname = \"x\"\nfile = \"docs/x.md\"\n".into(),
            3,
            8,
            "plan file `docs/x.md` does not exist",
        ),
        (
            "[[plan]]\nname = \"x\"\nfile = \"../x.md\"\n".into(),
            3,
            8,
            "outside the manifest's directory",
        ),
        (
            "[[plan]]\nname = \"x\"\nfile = \"/etc/passwd\"\n".into(),
            3,
            8,
            "outside the manifest's directory",
        ),
        (
            "[[plan]]\nname = \"x\"\nfile = \"docs\"\n".into(),
            3,
            8,
            "is a directory, not a regular file",
        ),
        (
            "[[plan]]\nname = \"x\"\n".into(),
            2,
            8,
            "plan `x` has no `file`",
        ),
        (
            "[[plan]]\nfile = \"docs/a.md\"\n".into(),
            1,
            1,
            "has no `name`",
        ),
        (
            format!("{PLAN_A}\n[[plan]]\nname = \"a\"\nfile = \"docs/b.md\"\n"),
            6,
            8,
            "duplicate plan name `a` (first defined at line 2)",
        ),
        (
            "[[plan]]\nname = \"../x\"\nfile = \"docs/a.md\"\n".into(),
            2,
            8,
            "plan name `../x` is not allowed: names may contain only letters, digits, `.`, `_` and `-`",
        ),
        (
            "[[plan]]\nname = \"x.lock\"\nfile = \"docs/a.md\"\n".into(),
            2,
            8,
            "must not end in `.lock`",
        ),
        (
            format!("{PLAN_A}branch = \"a b\"\n"),
            4,
            10,
            "branch `a b` of plan `a` is not valid",
        ),
        (
            format!("{PLAN_A}branch = \"main\"\n"),
            4,
            10,
            "which is the target branch",
        ),
        (
            "[defaults]\nbranch_prefix = \"x.loc\"\n[[plan]]\nname = \"k\"\nfile = \"docs/a.md\"\n"
                .into(),
            4,
            8,
            "branch `x.lock` of plan `k` is not valid",
        ),
        (
            format!("{PLAN_A}agent = \"robot\"\n"),
            4,
            9,
            "plan `a` names unknown agent `robot`",
        ),
        (
            format!("{PLAN_A}depends_on = [\"a:x\"]\n"),
            4,
            15,
            "dependency `a:x` is not `plan`",
        ),
        (
            format!("{PLAN_A}depends_on = [\"zz:1\"]\n"),
            4,
            15,
            "plan `a` depends on unknown plan `zz`",
        ),
        (
            format!("{PLAN_A}depends_on = [\"a:1\"]\n"),
            4,
            15,
            "plan `a` depends on itself",
        ),
        (
            format!(
                "{PLAN_A}branch = \"same\"\n[[plan]]\nname = \"b\"\nfile = \"docs/b.md\"\nbranch = \"same\"\n"
            ),
            8,
            10,
            "also the branch of plan `a` (line 2)",
        ),
        // `allow_protected`: `protect`'s globs, in `[defaults]` and `[[plan]]`
        (
            format!("{PLAN_A}allow_protected = [\"../plans.toml\"]\n"),
            4,
            20,
            "`plan.allow_protected` entry `../plans.toml` leaves the repository",
        ),
        (
            "[defaults]\nallow_protected = [\"ci/[\"]\n".into(),
            2,
            20,
            "`defaults.allow_protected` entry `ci/[` is not a valid glob",
        ),
        (
            format!("{PLAN_A}allow_protected = \"plans.toml\"\n"),
            4,
            19,
            "must be an array of strings",
        ),
    ];
    let repo = Repo::new();
    for (manifest, line, col, fragment) in &cases {
        repo.one_error(manifest, *line, *col, fragment);
    }
}

#[test]
fn misspelled_name_is_unknown_and_missing() {
    let repo = Repo::new();
    let errors = repo.errors("[[plan]]\nnmae = \"x\"\nfile = \"docs/a.md\"\n");
    let got: Vec<(usize, Option<usize>, &str)> = errors
        .iter()
        .map(|d| (d.line, d.column, d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (1, Some(1), "this `[[plan]]` has no `name`"),
            (2, Some(1), "unknown key `nmae` in `[[plan]]`"),
        ]
    );
}

#[test]
fn command_string_gets_argv_hint() {
    let repo = Repo::new();
    let d = repo.one_error(
        "[agents.x]\ncommand = \"sh scripts/agent.sh\"\n",
        2,
        11,
        "must be an array of strings, found a string",
    );
    assert_eq!(
        d.hint.as_deref(),
        Some(
            "agents are argv arrays, never shell strings: command = [\"sh\", \"scripts/agent.sh\"]"
        )
    );
}

#[test]
fn unknown_key_suggests_the_right_one() {
    let repo = Repo::new();
    let d = repo.one_error(
        "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\ndepend_on = []\n",
        4,
        1,
        "unknown key `depend_on`",
    );
    assert_eq!(d.hint.as_deref(), Some("did you mean `depends_on`?"));
}

#[test]
fn absolute_plan_file_inside_is_allowed() {
    let repo = Repo::new();
    let abs = repo.root().join("docs/a.md");
    let m = repo
        .load(&format!(
            "[[plan]]\nname = \"a\"\nfile = '{}'\n",
            abs.display()
        ))
        .expect("valid");
    assert_eq!(m.plans[0].abs_file, abs);
}

#[test]
fn preset_can_be_overridden_without_command() {
    let repo = Repo::new();
    let m = repo
        .load(&format!(
            "[agents.codex]\nmode = \"plan\"\n{PLAN_A}agent = \"codex\"\n"
        ))
        .expect("valid");
    assert_eq!(m.agents["codex"].mode, AgentMode::Plan);
    assert_eq!(m.agents["codex"].command[0], "codex");
}

#[test]
fn several_problems_are_all_reported() {
    let repo = Repo::new();
    let manifest = r#"[defaults]
max_agents = 0
retries = -2
timeout = "soon"
colour = "blue"

[agents.bad]
command = "run me"

[[plan]]
name = "a"
file = "docs/missing.md"
nmae = "typo"

[[plan]]
name = "a"
file = "docs/b.md"
depends_on = ["ghost", "a:1.2.3.4"]
"#;
    let errors = repo.errors(manifest);
    let got: Vec<(usize, Option<usize>)> = errors.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(
        got,
        [
            (2, Some(14)),
            (3, Some(11)),
            (4, Some(11)),
            (5, Some(1)),
            (8, Some(11)),
            (12, Some(8)),
            (13, Some(1)),
            (16, Some(8)),
            (18, Some(15)),
            (18, Some(24)),
        ],
        "{errors:#?}"
    );
    let text = ManifestError::Invalid {
        path: PathBuf::from("plans.toml"),
        diagnostics: errors,
    }
    .to_string();
    assert!(
        text.starts_with("invalid manifest `plans.toml` (10 errors)"),
        "{text}"
    );
}

/// A value of the wrong type stops the reading: reported alone, named by its key, with the type
/// expected and the one found (and a hint where there is one).
#[test]
fn a_wrong_type_is_named_by_its_key_with_both_types() {
    let repo = Repo::new();
    let cases: &[(&str, usize, usize, &str, Option<&str>)] = &[
        (
            "[defaults]\nmax_agents = \"4\"\ncolour = 1\n",
            2,
            14,
            "`defaults.max_agents` must be an integer, found a string",
            None,
        ),
        (
            "[defaults]\nmax_agents = 99999999999999999999\n",
            2,
            14,
            "`defaults.max_agents` is out of range",
            None,
        ),
        (
            "[defaults]\nauto_merge = 1.5\n",
            2,
            14,
            "`defaults.auto_merge` must be true or false, found a float",
            None,
        ),
        (
            "plan = [1]\n",
            1,
            9,
            "each `plan` entry must be a table, found an integer",
            Some("write each plan as a `[[plan]]` table"),
        ),
        (
            "notify = 1\n",
            1,
            10,
            "`notify` must be an array of tables, found an integer",
            Some("write each hook as a `[[notify]]` table"),
        ),
        (
            "[agents]\nx = 3\n",
            2,
            5,
            "`agents.x` must be a table, found an integer",
            Some("write `[agents.x]` followed by `command = [...]`"),
        ),
        (
            "[defaults]\nresolve = 3\n",
            2,
            11,
            "`defaults.resolve` must be an agent's name or true/false, found an integer",
            Some(
                "write `resolve = \"claude\"` (a preset or an [agents.NAME]), or `resolve = true` for the plan's own agent",
            ),
        ),
        (
            "[[notify]]\ncommand = [\"x\"]\nevents = [\"plan_finished\", 2]\n",
            3,
            28,
            "`notify.events` must be an array of strings, but this element is an integer",
            None,
        ),
        (
            "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\nslurm = { poll = \"1s\" }\n",
            4,
            11,
            "unknown key `poll` in `plan.slurm`",
            Some(
                "known keys: `partition`, `account`, `time_limit`, `cpus`, `memory`, `sbatch_args`",
            ),
        ),
        (
            "[[notify]]\ncommand = [\"x\"]\nevent = []\n",
            3,
            1,
            "unknown key `event` in `[[notify]]`",
            Some("did you mean `events`?"),
        ),
    ];
    for (text, line, col, message, hint) in cases {
        let d = repo.one_error(text, *line, *col, message);
        assert_eq!(d.message, *message);
        assert_eq!(d.hint.as_deref(), *hint, "{d}");
    }
}

/// A command line written as a string is not a stop: it is reported with the other problems.
#[test]
fn a_command_line_written_as_a_string_is_reported_with_the_others() {
    let repo = Repo::new();
    let errors = repo.errors(
        "[defaults]\nsetup = \"npm ci\"\nmax_agents = 0\n\n[[notify]]\ncommand = \"notify-send\"\n",
    );
    let got: Vec<(usize, &str)> = errors
        .iter()
        .map(|d| (d.line, d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                2,
                "`defaults.setup` must be an array of strings, found a string"
            ),
            (3, "`defaults.max_agents` must be at least 1, found 0"),
            (5, "a `[[notify]]` table needs `command` or `webhook`"),
            (
                6,
                "`notify.command` must be an array of strings, found a string"
            ),
        ]
    );
}
