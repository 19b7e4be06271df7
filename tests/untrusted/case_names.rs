//! Protected names in another spelling (issue 62). A landed branch is checked out by people
//! whose filesystems fold case (macOS, Windows, `casefold` directories): there `.ENV` is
//! `.env`, `.Claude/settings.json` is `.claude/settings.json`, `PLANS.toml` is `plans.toml` and
//! `.ORCH/` is orch's `.orch/`; Unicode folds `ſ` (U+017F) to `s` and `K` (KELVIN SIGN) to `k`.
//! A hostile agent (`tests/fixtures/agents/hostile_client_files.sh`) writes such spellings of
//! what a later run trusts, of orch's own directories and of a `protect` glob. A task that
//! writes them fails naming each (sandbox off and on); a plan-mode agent that commits them
//! itself gets a branch `orch merge` refuses naming each, `main` unmoved.

use super::client_files::hostile_repo;
use crate::landlock;
use crate::support::{Repo, one_task};

/// ASCII spellings of what a later run trusts: a client's settings, a file protected at any
/// depth (`.env`, a hook manager's), the manifest, the plan file.
const ASCII: [&str; 6] = [
    ".ENV",
    ".Claude/settings.json",
    "sub/.CLAUDE/Commands/deploy.md",
    ".Husky/pre-commit",
    "PLANS.toml",
    "Docs/Plans/p.md",
];

/// A file of the plan's `protect = ["tests/**"]` in another spelling: no task may change it
/// (a task's check; `protect` is not what a later run trusts, so not a landing's).
const PROTECTED_GLOB: &str = "Tests/test_x.py";

/// Spellings that only Unicode's folding makes the same: `ſ` for `s`, KELVIN SIGN for `k`,
/// the ligature `ﬁ` for `fi` (git's own case-insensitive match is ASCII's; orch's landing
/// check folds them).
const UNICODE: [&str; 3] = [
    ".claude/\u{17F}ettings.json",
    "lefthoo\u{212A}.yml",
    "mise/con\u{FB01}g.toml",
];

/// Spellings that Windows and macOS checkouts give a protected name (the red team landed the
/// first two on `main`): a Windows short name (`CLAUDE~1` is `.claude` where it exists), a code
/// point HFS+ ignores (ZERO WIDTH NON-JOINER), the trailing dots and spaces Windows drops, an
/// NTFS stream.
const FOREIGN: [&str; 7] = [
    "CLAUDE~1/settings.json",
    ".claude\u{200C}/settings.json",
    ".claude/SETTIN~1.JSO",
    "PLANS~1.TOM",
    "plans.toml.",
    ".claude /settings.json",
    ".claude/settings.json::$DATA",
];

/// How orch's messages show `path` (what is not printable ASCII escaped): the part of it a test
/// looks for, its last component's printable head.
fn shown(path: &str) -> String {
    path.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .collect()
}

/// A repository whose plan `p` (one task, `protect = ["tests/**"]`, a test under it) is run by
/// the hostile agent in `mode` (`task`, or `plan`: a plan-mode agent), writing `writes`.
fn repo_with(mode: &str, writes: &[&str], defaults: &str) -> Repo {
    let repo = hostile_repo(
        mode,
        writes,
        &format!("protect = [\"tests/**\"]\n{defaults}"),
    );
    repo.write("tests/test_x.py", "def test_x():\n    assert True\n");
    repo.commit_all("a test");
    repo
}

fn modes() -> &'static [&'static str] {
    if landlock() {
        &["sandbox = \"off\"", "sandbox = \"on\""]
    } else {
        &["sandbox = \"off\""]
    }
}

/// Runs `orch up` (the sandbox as `plans.toml` says) and checks what a refused task leaves: exit
/// 5, task 1.1 `failed`, nothing on `plan/p`, `main` unmoved. Returns the task's error.
fn refused_task(repo: &Repo, ctx: &str) -> String {
    let main = repo.rev("main");
    let (code, out, err) = repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
    assert_eq!(code, 5, "{ctx}\n{out}\n{err}");
    let task = repo.task("p", "1.1");
    assert_eq!(task["status"], "failed", "{ctx}: {task}");
    assert!(repo.subjects("plan/p").is_empty(), "{ctx}: committed");
    assert_eq!(repo.rev("main"), main, "{ctx}: main moved");
    task["error"].as_str().unwrap_or_default().to_string()
}

/// A task that writes ASCII spellings of protected files fails naming each, nothing committed,
/// `main` unmoved.
#[test]
fn case_names_a_task_that_writes_another_spelling_of_a_protected_file_fails_naming_each() {
    let writes: Vec<&str> = ASCII.iter().copied().chain([PROTECTED_GLOB]).collect();
    for mode in modes() {
        let error = refused_task(&repo_with("task", &writes, mode), mode);
        assert!(error.starts_with("changed protected paths: "), "{error}");
        for path in &writes {
            assert!(error.contains(path), "{mode}: {path} not named in {error}");
        }
    }
}

/// A task that writes into orch's own directories in another spelling (`.ORCH/…`, `.Orch/…`)
/// fails as for `.orch/…`: nothing committed.
#[test]
fn case_names_orchs_own_directories_in_another_spelling_are_never_committed() {
    for write in [".ORCH/worktrees/q/planted.txt", ".Orch/state/p.json"] {
        for mode in modes() {
            let error = refused_task(
                &repo_with("task", &[write], mode),
                &format!("{write} {mode}"),
            );
            assert!(
                error.contains("orch's own directories") && error.contains(write),
                "{write} {mode}: {error}"
            );
        }
    }
}

/// A plan-mode agent commits every spelling itself (ASCII and Unicode's) and reports its task
/// done: `orch merge` refuses the branch naming each (exit 4), `main` unmoved, none in the main
/// checkout.
#[test]
fn case_names_orch_merge_refuses_a_branch_with_any_spelling_of_a_protected_file() {
    let writes: Vec<&str> = ASCII.iter().chain(UNICODE.iter()).copied().collect();
    let repo = repo_with("plan", &writes, "");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}\n{err}\n{}", repo.task("p", "1.1"));
    for path in &writes {
        assert!(
            !repo.git(&["show", &format!("plan/p:{path}")]).is_empty(),
            "the branch does not carry {path}"
        );
    }
    let main = repo.rev("main");
    let (code, out, err) = repo.run(&["merge", "p"]);
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(err.contains("--allow-protected"), "{err}");
    for path in &writes {
        assert!(err.contains(path), "{path} not named in\n{err}");
        assert!(
            !repo.root().join(path).exists(),
            "{path} is in the main checkout"
        );
    }
    assert_eq!(repo.rev("main"), main, "main moved");
}

/// A protected file in a spelling a Windows or macOS checkout takes for it: written by a task
/// (sandbox off and on), the task fails at its commit naming each (its check compares the names
/// of the worktree's status as the landing does), nothing on the plan branch; committed by a
/// plan-mode agent, `orch merge` refuses the branch naming each (exit 4). `main` unmoved, none
/// in the main checkout.
#[test]
fn case_names_windows_and_macos_spellings_of_a_protected_file_never_land() {
    let mut cases: Vec<(&str, &str)> = modes().iter().map(|m| ("task", *m)).collect();
    cases.push(("plan", "sandbox = \"off\""));
    for (mode, sandbox) in cases {
        let ctx = format!("{mode} {sandbox}");
        // git itself (`core.protectNTFS`, on by default) refuses to add a name with a trailing
        // dot or space or a stream: a plan-mode agent that commits with git cannot.
        let writes: Vec<&str> = FOREIGN
            .iter()
            .copied()
            .filter(|p| {
                mode == "task"
                    || !(p.contains(':')
                        || p.contains(". ")
                        || p.ends_with('.')
                        || p.contains(" /"))
            })
            .collect();
        let repo = repo_with(mode, &writes, sandbox);
        let (code, out, err) = repo.run_cmd(repo.orch(&["up"]).env_remove("ORCH_SANDBOX"));
        let log = std::fs::read_to_string(repo.root().join(".orch/logs/p/plan.log"));
        let main = repo.rev("main");
        let named = |text: &str| {
            for path in &writes {
                let short = shown(path);
                let tail = short.rsplit('/').next().unwrap_or(&short);
                assert!(text.contains(tail), "{ctx}: {path:?} not named in {text}");
            }
        };
        if mode == "task" {
            assert_eq!(code, 5, "{ctx}: the task's commit took them\n{out}\n{err}");
            let task = repo.task("p", "1.1");
            assert_eq!(task["status"], "failed", "{ctx}: {task}");
            let error = task["error"].as_str().unwrap_or_default().to_string();
            assert!(error.contains("changed protected paths"), "{ctx}: {error}");
            named(&error);
            assert_eq!(repo.rev("plan/p"), main, "{ctx}: the plan branch moved");
        } else {
            assert_eq!(code, 0, "{ctx}\n{out}\n{err}\n{log:?}");
            let (code, out, err) = repo.run(&["merge", "p"]);
            assert_eq!(code, 4, "{ctx}\n{out}\n{err}");
            assert!(err.contains("--allow-protected"), "{ctx}: {err}");
            named(&err);
        }
        assert_eq!(repo.rev("main"), main, "{ctx}: main moved");
        assert!(!repo.root().join("PLANS~1.TOM").exists(), "{ctx}");
        assert!(!repo.root().join("CLAUDE~1").exists(), "{ctx}");
    }
    // orch's own directory by its short name (`ORCH~1` is `.orch` on Windows): never landed.
    let repo = repo_with(
        "task",
        &["ORCH~1/worktrees/q/planted.txt"],
        "sandbox = \"off\"",
    );
    let (code, out, err) = repo.run_cmd(repo.orch(&["up"]).env_remove("ORCH_SANDBOX"));
    let main = repo.rev("main");
    if code == 0 {
        let (code, out, err) = repo.run(&["merge", "p"]);
        assert_ne!(code, 0, "ORCH~1 landed\n{out}\n{err}");
        assert!(err.contains("ORCH~1/worktrees/q/planted.txt"), "{err}");
    } else {
        let error = repo.task("p", "1.1")["error"].to_string();
        assert!(error.contains("ORCH~1"), "{out}\n{err}\n{error}");
    }
    assert_eq!(repo.rev("main"), main, "main moved");
    assert!(!repo.root().join("ORCH~1").exists());
}

/// Links at another spelling of a protected path or of a directory above one (`.Claude` where
/// `.claude/settings.json` goes, `PLANS.toml`, `sub/.CLAUDE` where `**/.claude/…` goes): where
/// names fold, each makes the protected file another one. The task fails naming each.
#[test]
fn case_names_a_link_at_another_spelling_of_a_protected_path_fails_the_task() {
    let links = [".Claude", "PLANS.toml", "sub/.CLAUDE"];
    for mode in modes() {
        let repo = Repo::bare_minimum();
        repo.write("docs/plans/p.md", &one_task("P", "Write work.txt"));
        let outside = repo.outside("elsewhere");
        std::fs::create_dir_all(&outside).expect("elsewhere");
        let script = format!(
            "mkdir -p sub && ln -s {o} .Claude && ln -s {o}/x PLANS.toml && ln -s {o} sub/.CLAUDE && echo work > work.txt",
            o = outside.display()
        );
        repo.write(
            "plans.toml",
            &format!(
                "[defaults]\nretries = 0\n{mode}\n\n[agents.a]\ncommand = [\"sh\", \"-c\", {script:?}]\n\n\
                 [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\n"
            ),
        );
        repo.commit_all("plans");
        let error = refused_task(&repo, mode);
        assert!(
            error.contains("symbolic link at a protected path"),
            "{mode}: {error}"
        );
        for l in links {
            assert!(error.contains(l), "{mode}: {l} not named in {error}");
        }
    }
}
