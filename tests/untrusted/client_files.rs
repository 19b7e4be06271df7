//! The files a person's agent clients and toolchains obey as code in the main checkout (issue
//! 62): slash commands, subagents, skills, hooks and their directories, execution-policy rules,
//! MCP and language servers, editor tasks, a model's endpoint, the toolchain a `rust-toolchain`
//! names, cargo's runner, mise's and the package managers' configuration. A hostile agent
//! (`tests/fixtures/agents/hostile_client_files.sh`) writes them at the root and below it, as a
//! file of the list and as a file in a directory of it: a task that does so fails naming each,
//! sandbox on and off; a plan-mode agent that commits them itself gets a branch that `orch merge`
//! lands only with `--allow-protected` (`main` unmoved, none of them in the main checkout
//! before).

use crate::landlock;
use crate::support::{Repo, agent, one_task};

/// What the agent writes, each a path the failure and the refusal must name: at the root and
/// in a subdirectory, entries of the list (`.vscode/tasks.json`, `rust-toolchain.toml`) and
/// files in a directory of it (`.claude/commands/deploy.md`).
const WRITES: [&str; 40] = [
    // Claude Code.
    ".claude/commands/deploy.md",
    "docs/.claude/agents/helper.md",
    ".claude/skills/release/SKILL.md",
    ".claude/hooks/fmt.sh",
    // Gemini CLI, Qwen Code, Codex.
    ".gemini/commands/ship.toml",
    "sub/.gemini/agents/db.md",
    "sub/.qwen/skills/x/SKILL.md",
    ".codex/hooks.json",
    "svc/.codex/rules/allow.rules",
    // opencode.
    "web/.opencode/command/deploy.md",
    ".opencode/agent/build.md",
    // Copilot CLI and the skills it shares.
    ".github/hooks/audit.json",
    ".github/copilot/settings.json",
    ".agents/skills/x/SKILL.md",
    // Editors, aider.
    ".vscode/tasks.json",
    "app/.cursor/mcp.json",
    ".aider.model.settings.yml",
    // Toolchains.
    "rust-toolchain.toml",
    "crates/a/.cargo/config.toml",
    "tools/.tool-versions",
    "mise.toml",
    ".config/mise/config.toml",
    "web/.npmrc",
    ".yarnrc.yml",
    "pnpm-workspace.yaml",
    "mise/config.toml",
    // git's hook managers, git LFS.
    ".husky/pre-commit",
    "app/.githooks/pre-commit",
    "sub/.pre-commit-config.yaml",
    "lefthook.yml",
    ".lfsconfig",
    // Python run from the repository: a tool's module, a module imported at every start, a
    // virtual environment.
    "pip.py",
    "tools/sitecustomize.py",
    ".venv/bin/python",
    // Editors' workspaces and containers, editor agents' MCP servers and tasks.
    "team.code-workspace",
    ".devcontainer/devcontainer.json",
    ".devcontainer.json",
    "web/.devcontainer.json",
    ".continue/mcpServers/x.yaml",
    "web/.zed/tasks.json",
];

/// A repository whose plan `p` (one task) is run by the hostile agent in `mode` (`task`, or
/// `plan`: a plan-mode agent), writing [`WRITES`]; `defaults` added to `[defaults]`.
fn repo_with(mode: &str, defaults: &str) -> Repo {
    hostile_repo(mode, &WRITES, defaults)
}

/// A repository whose plan `p` (one task) is run by the hostile agent
/// (`hostile_client_files.sh`) in `mode`, writing `writes`; `defaults` added to `[defaults]`.
pub(crate) fn hostile_repo(mode: &str, writes: &[&str], defaults: &str) -> Repo {
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/p.md", &one_task("P", "Write work.txt"));
    let mut args = vec![mode];
    args.extend(writes);
    let plan_mode = if mode == "plan" {
        "mode = \"plan\"\n"
    } else {
        ""
    };
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\n{defaults}\n\n\
             [agents.a]\ncommand = {}\n{plan_mode}\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\n",
            agent("hostile_client_files.sh", &args)
        ),
    );
    repo.commit_all("plans");
    repo
}

/// A task whose agent writes them fails naming each, nothing committed, `main` unmoved: sandbox
/// off, and on where Landlock is there.
#[test]
fn client_files_a_task_that_writes_one_fails_naming_each() {
    let modes: &[&str] = if landlock() {
        &["sandbox = \"off\"", "sandbox = \"on\""]
    } else {
        &["sandbox = \"off\""]
    };
    for mode in modes {
        let repo = repo_with("task", mode);
        let main = repo.rev("main");
        let (code, out, err) =
            repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
        assert_eq!(code, 5, "{mode}\n{out}\n{err}");
        let task = repo.task("p", "1.1");
        assert_eq!(task["status"], "failed", "{mode}: {task}");
        let error = task["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("changed protected paths: "), "{error}");
        for path in WRITES {
            assert!(error.contains(path), "{mode}: {path} not named in {error}");
        }
        assert!(repo.subjects("plan/p").is_empty(), "{mode}: committed");
        assert_eq!(repo.rev("main"), main, "{mode}: main moved");
    }
}

/// A plan-mode agent commits them itself and reports its task done: `orch merge` refuses the
/// branch naming each (exit 4), `main` unmoved and none of them in the main checkout, the dry
/// run predicting it; with `--allow-protected` (a person's word) it lands them.
#[test]
fn client_files_orch_merge_lands_them_only_when_the_lead_allows_it() {
    let repo = repo_with("plan", "");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}\n{err}\n{}", repo.task("p", "1.1"));
    let main = repo.rev("main");
    for path in WRITES {
        assert!(
            !repo.git(&["show", &format!("plan/p:{path}")]).is_empty(),
            "the branch does not carry {path}"
        );
    }
    let (code, out, err) = repo.run(&["merge", "p"]);
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(err.contains("--allow-protected"), "{err}");
    for path in WRITES {
        assert!(err.contains(path), "{path} not named in\n{err}");
        assert!(
            !repo.root().join(path).exists(),
            "{path} is in the main checkout"
        );
    }
    assert_eq!(repo.rev("main"), main, "main moved");
    let (code, out, err) = repo.run(&["merge", "p", "--dry-run"]);
    assert_eq!(code, 5, "{out}\n{err}");
    assert!(out.contains("would refuse this run"), "{out}");
    let (code, out, err) = repo.run(&["merge", "p", "--allow-protected"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_ne!(repo.rev("main"), main, "main did not move");
    for path in WRITES {
        assert!(
            repo.root().join(path).is_file(),
            "{path} not landed in the main checkout"
        );
    }
}
