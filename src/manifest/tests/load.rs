//! Loading: a full manifest's typed values, defaults, reading errors and finding the manifest.

use super::*;

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
        [
            "aider", "claude", "codex", "copilot", "gemini", "opencode", "qwen", "script"
        ]
    );
    assert_eq!(m.agents["claude"].mode, AgentMode::Plan);
    assert_eq!(m.agents["claude"].command[2], "opus");
    assert_eq!(m.agents["script"].mode, AgentMode::Task);
    assert_eq!(m.agents["codex"].command, crate::manifest::CODEX_PRESET);

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
    assert_eq!(m.agents.len(), 7);
    assert_eq!(m.agents["claude"].command, crate::manifest::CLAUDE_PRESET);
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
