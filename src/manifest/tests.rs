//! Loading tests: real manifests and plan files in temporary directories.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::diagnostic::Diagnostic;

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    /// A temp dir holding `docs/a.md`, `docs/b.md`, `docs/c.md`.
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Self { dir };
        for f in ["docs/a.md", "docs/b.md", "docs/c.md"] {
            repo.write(f, "# plan\n");
        }
        repo
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.root().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }

    fn load(&self, manifest: &str) -> Result<Manifest, ManifestError> {
        let path = self.write("plans.toml", manifest);
        load(&path)
    }

    fn errors(&self, manifest: &str) -> Vec<Diagnostic> {
        match self.load(manifest) {
            Ok(_) => panic!("manifest should be invalid:\n{manifest}"),
            Err(ManifestError::Invalid { path, diagnostics }) => {
                assert_eq!(path, self.root().join("plans.toml"));
                for d in &diagnostics {
                    assert_eq!(d.path, path);
                    assert!(d.is_error());
                }
                diagnostics
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    /// Asserts exactly one error, at `line:col`, whose message contains `fragment`.
    fn one_error(&self, manifest: &str, line: usize, col: usize, fragment: &str) -> Diagnostic {
        let errors = self.errors(manifest);
        assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
        let d = errors.into_iter().next().expect("one");
        assert_eq!((d.line, d.column), (line, Some(col)), "{d}");
        assert!(d.message.contains(fragment), "`{fragment}` not in: {d}");
        d
    }
}

const FULL: &str = r#"[defaults]
target = "develop"
max_agents = 3
agent = "codex"
timeout = "1h30m"
retries = 0
verify = ["cargo", "test"]
worktree_root = "wt"
state_dir = ".orch/st"
branch_prefix = "orch/"

[agents.claude]
command = ["claude", "--model", "opus", "-p", "{{prompt}}"]
mode = "plan"

[agents.script]
command = ["sh", "scripts/agent.sh", "{{ task }}", "--status={{ status_file }}"]

[[plan]]
name = "a"
file = "docs/a.md"
priority = 10

[[plan]]
name = "b"
file = "./docs/b.md"
priority = -3
agent = "script"
branch = "feature/b"
depends_on = ["a:2", "a:2.3", "a"]
"#;

#[test]
fn full_manifest_loads_typed_values() {
    let repo = Repo::new();
    let m = repo.load(FULL).expect("valid");
    assert_eq!(m.path, repo.root().join("plans.toml"));
    assert_eq!(m.root, repo.root());
    let d = &m.defaults;
    assert_eq!(d.target, "develop");
    assert_eq!(d.max_agents, 3);
    assert_eq!(d.agent, "codex");
    assert_eq!(d.timeout, Duration::from_secs(5400));
    assert_eq!(d.retries, 0);
    assert_eq!(
        d.verify,
        Some(vec!["cargo".to_string(), "test".to_string()])
    );
    assert_eq!(d.worktree_root, PathBuf::from("wt"));
    assert_eq!(d.state_dir, PathBuf::from(".orch/st"));
    assert_eq!(d.branch_prefix, "orch/");

    // presets merged, table overrides preset
    assert_eq!(
        m.agents.keys().collect::<Vec<_>>(),
        ["aider", "claude", "codex", "gemini", "script"]
    );
    assert_eq!(m.agents["claude"].mode, AgentMode::Plan);
    assert_eq!(m.agents["claude"].command[2], "opus");
    assert_eq!(m.agents["script"].mode, AgentMode::Task);
    assert_eq!(
        m.agents["codex"].command,
        ["codex", "exec", "--full-auto", "{{ prompt }}"]
    );

    assert_eq!(m.plans.len(), 2);
    let a = m.plan("a").expect("a");
    assert_eq!(a.file, PathBuf::from("docs/a.md"));
    assert_eq!(a.abs_file, repo.root().join("docs/a.md"));
    assert_eq!(a.priority, 10);
    assert_eq!(a.agent, "codex");
    assert_eq!(a.branch, "orch/a");
    assert_eq!(a.line, 20);
    assert!(a.depends_on.is_empty());

    let b = m.plan("b").expect("b");
    assert_eq!(b.file, PathBuf::from("./docs/b.md"));
    assert_eq!(b.abs_file, repo.root().join("docs/b.md"));
    assert_eq!(b.priority, -3);
    assert_eq!(b.agent, "script");
    assert_eq!(b.branch, "feature/b");
    assert_eq!(b.line, 25);
    let deps: Vec<(&str, &DepTarget, usize, usize, &str)> = b
        .depends_on
        .iter()
        .map(|d| (d.plan.as_str(), &d.target, d.line, d.column, d.raw.as_str()))
        .collect();
    assert_eq!(
        deps,
        [
            ("a", &DepTarget::Phase(2), 30, 15, "a:2"),
            ("a", &DepTarget::Task("2.3".into()), 30, 22, "a:2.3"),
            ("a", &DepTarget::Plan, 30, 31, "a"),
        ]
    );
    assert!(m.plan("zz").is_none());
    assert_eq!(
        m.state_path("a"),
        repo.root().join(".orch/st").join("a").join("status.json")
    );
}

#[test]
fn defaults_apply_without_defaults_table() {
    let repo = Repo::new();
    let m = repo
        .load("[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n")
        .expect("valid");
    assert_eq!(m.defaults, Defaults::default());
    assert_eq!(m.defaults.target, "main");
    assert_eq!(m.defaults.max_agents, 4);
    assert_eq!(m.defaults.agent, "claude");
    assert_eq!(m.defaults.timeout, Duration::from_secs(7200));
    assert_eq!(m.defaults.retries, 2);
    assert_eq!(m.defaults.verify, None);
    assert_eq!(m.defaults.worktree_root, PathBuf::from(".orch/worktrees"));
    assert_eq!(m.defaults.state_dir, PathBuf::from(".orch/state"));
    assert_eq!(m.defaults.branch_prefix, "plan/");
    let a = &m.plans[0];
    assert_eq!(a.agent, "claude");
    assert_eq!(a.branch, "plan/a");
    assert_eq!(a.priority, 0);
    assert_eq!(m.agents.len(), 4);
    assert_eq!(
        m.agents["claude"].command,
        [
            "claude",
            "-p",
            "{{ prompt }}",
            "--permission-mode",
            "acceptEdits"
        ]
    );
    assert_eq!(
        m.state_path("a"),
        repo.root().join(".orch/state/a/status.json")
    );
}

#[test]
fn empty_manifest_is_valid() {
    let repo = Repo::new();
    let m = repo.load("").expect("valid");
    assert!(m.plans.is_empty());
}

const PLAN_A: &str = "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n";

/// (manifest, line, column, message fragment): each has exactly one error.
#[test]
fn each_error_has_its_location() {
    let cases: Vec<(String, usize, usize, &str)> = vec![
        // syntax and types
        ("[defaults\n".into(), 1, 10, ""),
        ("[defaults]\ntarget = \n".into(), 2, 10, ""),
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
            "is not a file",
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

#[test]
fn read_error_names_the_path() {
    let repo = Repo::new();
    let missing = repo.root().join("nope.toml");
    let err = load(&missing).expect_err("missing");
    assert!(matches!(err, ManifestError::Read { .. }));
    assert!(err.to_string().contains("nope.toml"));
    assert!(err.diagnostics().is_empty());
}

#[test]
fn find_manifest_walks_up() {
    let repo = Repo::new();
    let manifest = repo.write("plans.toml", "");
    let nested = repo.root().join("a/b/c");
    std::fs::create_dir_all(&nested).expect("mkdir");
    assert_eq!(find_manifest(&nested), Some(manifest.clone()));
    assert_eq!(find_manifest(repo.root()), Some(manifest));
    // A closer manifest wins.
    let inner = repo.write("a/plans.toml", "");
    assert_eq!(find_manifest(&nested), Some(inner));
}

#[test]
fn find_manifest_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("x");
    std::fs::create_dir_all(&nested).expect("mkdir");
    // The temp dir's ancestors are assumed to hold no plans.toml.
    if dir
        .path()
        .ancestors()
        .all(|d| !d.join("plans.toml").exists())
    {
        assert_eq!(find_manifest(&nested), None);
    }
}

fn shape(phases: &[u32], tasks: &[&str]) -> PlanShape {
    PlanShape {
        phases: phases.to_vec(),
        tasks: tasks.iter().map(|t| (*t).to_string()).collect(),
    }
}

#[test]
fn check_targets_reports_missing_phase_and_task() {
    let repo = Repo::new();
    let m = repo
        .load(
            "[[plan]]\nname = \"auth\"\nfile = \"docs/a.md\"\n\n[[plan]]\nname = \"api\"\nfile = \"docs/b.md\"\ndepends_on = [\"auth:9\", \"auth:2.7\", \"auth:2\", \"auth:2.1\", \"auth\", \"auth:4.1\"]\n",
        )
        .expect("valid");
    let mut shapes = HashMap::new();
    shapes.insert(
        "auth".to_string(),
        shape(&[1, 2, 3], &["1.1", "2.1", "2.2", "3.1"]),
    );
    let errors = check_targets(&m, &shapes);
    let got: Vec<(usize, Option<usize>, &str)> = errors
        .iter()
        .map(|d| (d.line, d.column, d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                8,
                Some(15),
                "plan `auth` has no phase 9 (its phases: 1, 2, 3)"
            ),
            (
                8,
                Some(25),
                "plan `auth` has no task 2.7 (tasks of its phase 2: 2.1, 2.2)"
            ),
            (
                8,
                Some(67),
                "plan `auth` has no task 4.1 and no phase 4 (its phases: 1, 2, 3)"
            ),
        ]
    );
    assert_eq!(errors[0].path, m.path);
    // A plan whose file failed to parse is absent from the map: nothing is checked.
    assert!(check_targets(&m, &HashMap::new()).is_empty());
}

#[test]
fn three_plan_cycle_is_reported_with_its_path() {
    let repo = Repo::new();
    let manifest = r#"[[plan]]
name = "a"
file = "docs/a.md"
depends_on = ["b:1"]

[[plan]]
name = "b"
file = "docs/b.md"
depends_on = ["c"]

[[plan]]
name = "c"
file = "docs/c.md"
depends_on = ["a:1.2"]
"#;
    repo.one_error(manifest, 14, 15, "dependency cycle: `a` → `b` → `c` → `a`");
}

#[test]
fn two_separate_cycles_and_no_false_positives() {
    let repo = Repo::new();
    let manifest = r#"[[plan]]
name = "a"
file = "docs/a.md"
depends_on = ["b"]

[[plan]]
name = "b"
file = "docs/b.md"
depends_on = ["a"]

[[plan]]
name = "c"
file = "docs/c.md"
depends_on = ["a", "b"]
"#;
    let d = repo.one_error(manifest, 9, 15, "dependency cycle: `a` → `b` → `a`");
    assert!(d.is_error());
    // A diamond is not a cycle.
    let diamond = "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n[[plan]]\nname = \"b\"\nfile = \"docs/b.md\"\ndepends_on = [\"a\"]\n[[plan]]\nname = \"c\"\nfile = \"docs/c.md\"\ndepends_on = [\"a\", \"b:1\"]\n";
    repo.load(diamond).expect("diamond is fine");
}

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
            "[defaults]\nauto_merge = \"yes\"\n",
            2,
            14,
            "`defaults.auto_merge` must be true or false",
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
fn executor_resolves_plan_over_agent_over_defaults_and_slurm_tables_merge() {
    use crate::executor::ExecutorKind;
    let repo = Repo::new();
    let m = repo
        .load(
            r#"[defaults]
executor = "slurm"

[slurm]
partition = "batch"
account = "proj-1"
time_limit = "90m"
cpus = 2
memory = "8G"
sbatch_args = ["--qos=high", "--constraint", "avx2"]
poll = "2s"

[agents.here]
command = ["sh", "agent.sh"]
executor = "local"

[[plan]]
name = "a"
file = "docs/a.md"
slurm = { cpus = 16, memory = "64G" }

[[plan]]
name = "b"
file = "docs/b.md"
agent = "here"

[[plan]]
name = "c"
file = "docs/c.md"
agent = "here"
executor = "slurm"
"#,
        )
        .expect("valid");
    assert_eq!(m.defaults.executor, ExecutorKind::Slurm);
    assert_eq!(m.slurm_poll, Duration::from_secs(2));
    let a = m.plan("a").expect("a");
    assert_eq!(a.executor, ExecutorKind::Slurm);
    assert_eq!(a.slurm.partition.as_deref(), Some("batch"));
    assert_eq!(a.slurm.account.as_deref(), Some("proj-1"));
    assert_eq!(a.slurm.time_limit, Some(Duration::from_secs(5400)));
    assert_eq!(
        (a.slurm.cpus, a.slurm.memory.as_deref()),
        (Some(16), Some("64G"))
    );
    assert_eq!(a.slurm.sbatch_args, ["--qos=high", "--constraint", "avx2"]);
    let b = m.plan("b").expect("b");
    assert_eq!(
        b.executor,
        ExecutorKind::Local,
        "the agent's executor wins over defaults"
    );
    assert_eq!(
        (b.slurm.cpus, b.slurm.memory.as_deref()),
        (Some(2), Some("8G"))
    );
    assert_eq!(
        m.plan("c").expect("c").executor,
        ExecutorKind::Slurm,
        "the plan's wins"
    );
    assert!(m.uses_slurm());

    let plain = repo
        .load("[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n")
        .expect("valid");
    assert_eq!(plain.plans[0].executor, ExecutorKind::Local);
    assert!(!plain.uses_slurm());
    assert_eq!(plain.slurm_poll, Duration::from_secs(5));
}

#[test]
fn executor_and_slurm_keys_report_bad_values_at_their_location() {
    let repo = Repo::new();
    let plan = "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n";
    let cases: &[(String, usize, usize, &str)] = &[
        (
            "[defaults]\nexecutor = \"kubernetes\"\n".to_string(),
            2,
            12,
            "`defaults.executor` must be \"local\" or \"slurm\", found \"kubernetes\"",
        ),
        (
            "[agents.x]\ncommand = [\"x\"]\nexecutor = \"ssh\"\n".to_string(),
            3,
            12,
            "`agents.x.executor` must be \"local\" or \"slurm\"",
        ),
        (
            format!("{plan}executor = 1\n"),
            4,
            12,
            "`plan.executor` must be a string",
        ),
        (
            "[slurm]\npartiton = \"batch\"\n".to_string(),
            2,
            1,
            "unknown key `partiton` in `slurm`",
        ),
        (
            "[slurm]\npartition = \"a b\"\n".to_string(),
            2,
            13,
            "`slurm.partition` \"a b\" is not a Slurm partition name",
        ),
        (
            "[slurm]\naccount = \"\"\n".to_string(),
            2,
            11,
            "`slurm.account` \"\" is not a Slurm account name",
        ),
        (
            "[slurm]\ntime_limit = \"30s\"\n".to_string(),
            2,
            14,
            "`slurm.time_limit` \"30s\" is under a minute",
        ),
        (
            "[slurm]\ntime_limit = \"soon\"\n".to_string(),
            2,
            14,
            "`slurm.time_limit`",
        ),
        (
            "[slurm]\ncpus = 0\n".to_string(),
            2,
            8,
            "`slurm.cpus` must be at least 1, found 0",
        ),
        (
            "[slurm]\nmemory = \"lots\"\n".to_string(),
            2,
            10,
            "`slurm.memory` \"lots\" is not a Slurm memory size",
        ),
        (
            "[slurm]\nmemory = \"8GG\"\n".to_string(),
            2,
            10,
            "is not a Slurm memory size",
        ),
        (
            "[slurm]\nsbatch_args = \"--qos=high\"\n".to_string(),
            2,
            15,
            "`slurm.sbatch_args` must be an array of strings",
        ),
        (
            "[slurm]\nsbatch_args = [\"qos\"]\n".to_string(),
            2,
            16,
            "`slurm.sbatch_args` must begin with an option, found \"qos\"",
        ),
        (
            "[slurm]\nsbatch_args = [\"--qos=high\", \"--output=/tmp/x\"]\n".to_string(),
            2,
            30,
            "element \"--output=/tmp/x\" sets `--output`, which orch sets itself",
        ),
        (
            "[slurm]\nsbatch_args = [\"--wrap\", \"rm -rf /\"]\n".to_string(),
            2,
            16,
            "sets `--wrap`, which orch sets itself: orch runs the agent's argv, never a shell string",
        ),
        (
            "[slurm]\nsbatch_args = [\"--mem-per-cpu=2G\"]\n".to_string(),
            2,
            16,
            "sets memory: use `memory` in `[slurm]`",
        ),
        (
            "[slurm]\npoll = \"0s\"\n".to_string(),
            2,
            8,
            "`slurm.poll` must be greater than zero",
        ),
        (
            format!("{plan}slurm = {{ poll = \"1s\" }}\n"),
            4,
            11,
            "unknown key `poll` in `plan.slurm`",
        ),
        (
            format!("{plan}slurm = {{ cpus = -2 }}\n"),
            4,
            18,
            "`plan.slurm.cpus` must be at least 1, found -2",
        ),
        (
            format!("{plan}slurm = \"big\"\n"),
            4,
            9,
            "`plan.slurm` must be a table",
        ),
    ];
    for (text, line, col, fragment) in cases {
        repo.one_error(text, *line, *col, fragment);
    }
}
