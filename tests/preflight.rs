//! `orch up`'s pre-flight of the agent CLIs orch knows, with fake `claude` and `codex` programs
//! on PATH: a program whose `--version` fails, or whose `--help` does not list a flag the agent
//! passes, stops the run with exit 2 and the fix before anything is made. `orch check` warns
//! about an argv known not to work, with the fix.

use crate::support;

use std::os::unix::fs::PermissionsExt as _;
use support::Repo;

/// A repository whose one plan runs `agent`, with `program` (a shell script) on PATH as
/// `name`; returns orch's exit code, stdout and stderr of `orch ARGS`.
fn run_with(repo: &Repo, name: &str, script: &str, args: &[&str]) -> (i32, String, String) {
    let bin = repo.outside("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let program = bin.join(name);
    std::fs::write(&program, script).expect("write program");
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = repo.orch(args);
    cmd.env("PATH", path);
    repo.run_cmd(&mut cmd)
}

fn repo_with(agent_lines: &str, agent: &str) -> Repo {
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/p.md", &support::one_task("P", "Create `a.txt`"));
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"{agent}\"\n\n{agent_lines}\n[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n"
        ),
    );
    repo.commit_all("plans");
    repo
}

/// Nothing was made: no worktree, no branch, no state.
fn nothing_made(repo: &Repo) {
    assert!(!repo.root().join(".orch").exists(), "orch made .orch");
    assert_eq!(repo.git(&["branch", "--list", "plan/*"]), "");
}

const CODEX_WITHOUT_ADD_DIR: &str = "#!/bin/sh\n\
case \"$*\" in\n\
  --version) echo 'codex-cli 0.1.0' ;;\n\
  'exec --help') printf 'Usage: codex exec [OPTIONS] [PROMPT]\\n  -s, --sandbox <SANDBOX_MODE>\\n      --json\\n' ;;\n\
  *) echo \"unexpected: $*\" >&2; exit 9 ;;\n\
esac\n";

#[test]
fn a_codex_without_a_flag_the_preset_passes_stops_the_run_before_anything_is_made() {
    let repo = repo_with("", "codex");
    let (code, out, err) = run_with(&repo, "codex", CODEX_WITHOUT_ADD_DIR, &["up"]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("agent `codex`: codex (codex-cli 0.1.0) does not accept `--add-dir`"),
        "{err}"
    );
    assert!(
        err.contains("install the codex version the README"),
        "{err}"
    );
    nothing_made(&repo);
}

#[test]
fn a_claude_whose_version_fails_stops_the_run_before_anything_is_made() {
    let repo = repo_with("", "claude");
    let script = "#!/bin/sh\necho 'claude: cannot load its runtime' >&2\nexit 3\n";
    let (code, out, err) = run_with(&repo, "claude", script, &["up"]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("agent `claude`: `claude --version` failed"),
        "{err}"
    );
    assert!(err.contains("cannot load its runtime"), "{err}");
    nothing_made(&repo);
}

#[test]
fn a_removed_codex_flag_is_reported_with_its_fix() {
    let old = "[agents.old]\ncommand = [\"codex\", \"exec\", \"--full-auto\", \"{{ prompt }}\"]\n";
    let repo = repo_with(old, "old");
    // `orch check`: a warning with the fix, the manifest still valid.
    let (code, out, err) = repo.run(&["check"]);
    let all = format!("{out}{err}");
    assert_eq!(code, 0, "{all}");
    assert!(all.contains("plans.toml:5"), "{all}");
    assert!(
        all.contains("warning: `agents.old.command` (codex): `--full-auto` is not accepted"),
        "{all}"
    );
    assert!(
        all.contains(
            "replace `--full-auto` with `--sandbox workspace-write --add-dir {{ status_dir }}`"
        ),
        "{all}"
    );
    // `orch up` with a codex that does not know the flag: exit 2 with the same fix.
    let script = CODEX_WITHOUT_ADD_DIR.replace("--json", "--json\\n      --add-dir <DIR>");
    let (code, out, err) = run_with(&repo, "codex", &script, &["up"]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("does not accept `--full-auto`"), "{err}");
    assert!(
        err.contains("--sandbox workspace-write --add-dir {{ status_dir }}"),
        "{err}"
    );
    nothing_made(&repo);
}
