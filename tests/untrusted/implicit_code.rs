//! The code a trusted command loads without naming it (issue 62, findings 1-3): a module
//! beside a hook's script that shadows an import, the makefiles `make` reads, a package
//! runner's rc files, the package of `python -m`, a `.js` a hook requires, a `.sh` it sources;
//! the same `-m` hole for a gate; the clients' settings below the root and `.env` files. A
//! hostile agent makes each (unconfined, and confined where Landlock is there): the task fails
//! naming the path, nothing is committed; a branch a person makes with it is refused by
//! `orch merge` (exit 4, the path named) and `main` does not move.

use crate::landlock;
use crate::support::{Repo, toml_array};

/// One trusted command line, the files it holds in the repository, and the hostile edits
/// (a shell line run in the worktree) with the path the failure must name.
struct Case {
    /// `notify` or `check`.
    key: &'static str,
    argv: &'static [&'static str],
    files: &'static [(&'static str, &'static str)],
    edits: &'static [(&'static str, &'static str)],
}

const CASES: [Case; 8] = [
    Case {
        key: "notify",
        argv: &["python3", "scripts/notify.py"],
        files: &[
            ("scripts/notify.py", "import json\nimport helpers\n"),
            ("scripts/helpers.py", "X = 1\n"),
        ],
        edits: &[
            ("echo 'import os' > scripts/json.py", "scripts/json.py"),
            ("echo 'X = 2' >> scripts/helpers.py", "scripts/helpers.py"),
            (
                "mkdir -p scripts/helpers2 && touch scripts/helpers2/__init__.py",
                "scripts/helpers2/__init__.py",
            ),
        ],
    },
    Case {
        key: "notify",
        argv: &["make", "-s", "notify"],
        files: &[
            ("Makefile", "include mk/rules.mk\nnotify:\n\t@true\n"),
            ("mk/rules.mk", "X = 1\n"),
        ],
        edits: &[
            (
                "printf 'notify:\\n\\t@touch /tmp/x\\n' > GNUmakefile",
                "GNUmakefile",
            ),
            ("echo 'Y = 1' >> Makefile", "Makefile"),
            ("echo 'X = 2' >> mk/rules.mk", "mk/rules.mk"),
            ("touch makefile", "makefile"),
        ],
    },
    Case {
        key: "notify",
        argv: &["npm", "run", "-s", "notify"],
        files: &[(
            "package.json",
            "{\"name\": \"x\", \"scripts\": {\"notify\": \"true\"}}\n",
        )],
        edits: &[
            ("echo 'script-shell=./evil.sh' > .npmrc", ".npmrc"),
            ("echo 'yarnPath: evil.cjs' > .yarnrc.yml", ".yarnrc.yml"),
            ("echo 'x' > .yarnrc", ".yarnrc"),
            (
                "echo 'module.exports = {}' > .pnpmfile.cjs",
                ".pnpmfile.cjs",
            ),
        ],
    },
    Case {
        key: "notify",
        argv: &["python3", "-m", "ci.notify"],
        files: &[("ci/__init__.py", ""), ("ci/notify.py", "import sys\n")],
        edits: &[
            ("echo 'import os' >> ci/notify.py", "ci/notify.py"),
            ("echo 'import os' > ci/__main__.py", "ci/__main__.py"),
            ("echo 'import os' >> ci/__init__.py", "ci/__init__.py"),
            ("echo 'import os' > sys.py", "sys.py"),
        ],
    },
    Case {
        key: "notify",
        argv: &["node", "hooks/notify.js"],
        files: &[
            ("hooks/notify.js", "require('./lib.js');\n"),
            ("hooks/lib.js", "module.exports = 1;\n"),
        ],
        edits: &[
            ("echo 'process.exit(0);' >> hooks/lib.js", "hooks/lib.js"),
            ("echo '{}' > hooks/lib.json", "hooks/lib.json"),
        ],
    },
    Case {
        key: "notify",
        argv: &["sh", "hooks/notify.sh"],
        files: &[
            ("hooks/notify.sh", ". ./lib.sh\nsource tools/env.sh\n"),
            ("lib.sh", "X=1\n"),
            ("tools/env.sh", "Y=1\n"),
        ],
        edits: &[
            ("echo 'touch /tmp/x' >> lib.sh", "lib.sh"),
            ("echo 'touch /tmp/x' >> tools/env.sh", "tools/env.sh"),
            ("echo 'touch /tmp/x' > hooks/more.sh", "hooks/more.sh"),
        ],
    },
    // The same `-m` hole for a gate: its own code changed, it passes.
    Case {
        key: "check",
        argv: &["python3", "-m", "ci.check"],
        // The check writes `ci/__pycache__/`: ignored, as a Python repository has it.
        files: &[
            ("ci/__init__.py", ""),
            ("ci/check.py", "import sys\n"),
            (".gitignore", "__pycache__/\n"),
        ],
        edits: &[
            ("echo 'sys.exit(0)' >> ci/check.py", "ci/check.py"),
            ("echo 'import os' > ci/util.py", "ci/util.py"),
        ],
    },
    Case {
        key: "check",
        argv: &["sh", "ci/check.sh"],
        files: &[("ci/check.sh", ". ci/lib.sh\n"), ("ci/lib.sh", "true\n")],
        edits: &[("echo 'exit 0' >> ci/lib.sh", "ci/lib.sh")],
    },
];

/// Settings of the agent clients below the root and `.env` files, at any depth.
const ANYWHERE: [(&str, &str); 7] = [
    (
        "mkdir -p docs/.claude && echo '{\"hooks\":{}}' > docs/.claude/settings.json",
        "docs/.claude/settings.json",
    ),
    (
        "mkdir -p docs && echo '{}' > docs/.mcp.json",
        "docs/.mcp.json",
    ),
    (
        "mkdir -p sub/.gemini && echo '{}' > sub/.gemini/settings.json",
        "sub/.gemini/settings.json",
    ),
    ("echo 'AIDER_TEST_CMD=x' > .env", ".env"),
    (
        "mkdir -p sub/.gemini && echo 'X=1' > sub/.gemini/.env",
        "sub/.gemini/.env",
    ),
    ("mkdir -p a/b && echo 'X=1' > a/b/.env", "a/b/.env"),
    (
        "mkdir -p docs/.opencode/plugin && echo 'x' > docs/.opencode/plugin/p.js",
        "docs/.opencode/plugin/p.js",
    ),
];

/// A repository whose plan `p` has one task; its agent runs `edit` then `touch done.txt`;
/// `key` is `notify` (a `[[notify]]` hook) or `check` (the plan's check) with `argv`, and
/// `files` are committed.
fn repo_with(
    case_key: &str,
    argv: &[&str],
    files: &[(&str, &str)],
    edit: &str,
    mode: &str,
) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    for (path, text) in files {
        repo.write(path, text);
    }
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Do it\n",
    );
    let (check, notify) = if case_key == "check" {
        (toml_array(argv), String::new())
    } else {
        (
            toml_array(&["sh", "-c", "true"]),
            format!(
                "\n[[notify]]\nevents = [\"run_finished\"]\ncommand = {}\n",
                toml_array(argv)
            ),
        )
    };
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"a\"\nretries = 0\ncheck = {check}\n{mode}\n\n\
             [agents.a]\ncommand = {}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n{notify}",
            toml_array(&["sh", "-c", &format!("{edit} && touch done.txt")])
        ),
    );
    repo.commit_all("trusted commands");
    repo
}

fn modes() -> &'static [&'static str] {
    if landlock() {
        &["sandbox = \"off\"", "sandbox = \"on\""]
    } else {
        &["sandbox = \"off\""]
    }
}

/// The task whose agent runs `edit` fails naming `path`; nothing is committed on `plan/p` or
/// `main`.
fn task_fails_naming(repo: &Repo, path: &str, what: &str) {
    let main = repo.rev("main");
    let (code, out, err) = repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
    assert_eq!(code, 5, "{what}\n{out}\n{err}");
    let task = repo.task("p", "1.1");
    assert_eq!(task["status"], "failed", "{what}: {task}");
    let error = task["error"].as_str().unwrap_or_default();
    assert!(
        (error.contains("changed protected paths") || error.contains("symbolic link"))
            && error.contains(path),
        "{what}: {error}"
    );
    assert_eq!(repo.rev("plan/p"), main, "committed on plan/p: {what}");
    assert_eq!(repo.rev("main"), main, "main moved: {what}");
}

/// A person's branch with `edit` committed on plan `p` (finished): `orch merge p` exits 4
/// naming `path`, and `main` does not move.
fn merge_refuses(repo: &Repo, edit: &str, path: &str, what: &str) {
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{what}\n{out}\n{err}\n{}", repo.task("p", "1.1"));
    let main = repo.rev("main");
    let tree = repo.worktree("p");
    let child = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("{edit} && git add -A && git commit -qm sneak"),
        ])
        .current_dir(&tree)
        .env("PWD", &tree)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sh");
    let done = crate::support::wait_within(child, crate::support::TIMEOUT, "sh");
    assert!(done.status.success(), "{what}: {done:?}");
    let (code, out, err) = repo.run(&["merge", "p"]);
    assert_eq!(code, 4, "{what}\n{out}\n{err}");
    assert!(
        err.contains("plan `p`") && err.contains(path),
        "{what}\n{err}"
    );
    assert_eq!(repo.rev("main"), main, "{what}: main moved");
}

/// Each variant of finding 1 (a hook) and 2 (a gate): the task fails naming the path, sandbox
/// off and on; `orch merge` refuses a branch that holds it.
#[test]
fn implicit_code_a_trusted_command_loads_is_protected() {
    for case in &CASES {
        for (edit, path) in case.edits {
            let what = format!("{} {:?}: {edit}", case.key, case.argv);
            for mode in modes() {
                let repo = repo_with(case.key, case.argv, case.files, edit, mode);
                task_fails_naming(&repo, path, &format!("{what} ({mode})"));
            }
            let repo = repo_with(case.key, case.argv, case.files, "true", "");
            merge_refuses(&repo, edit, path, &what);
        }
    }
}

/// Finding 3: the clients' settings below the root and `.env` files, at any depth; a link at
/// a directory where they go (`docs/.claude`) is refused too.
#[test]
fn implicit_code_client_settings_and_env_files_are_protected_at_any_depth() {
    let hook: &[&str] = &["sh", "-c", "true"];
    for (edit, path) in ANYWHERE {
        for mode in modes() {
            let repo = repo_with("check", hook, &[], edit, mode);
            task_fails_naming(&repo, path, &format!("{edit} ({mode})"));
        }
        let repo = repo_with("check", hook, &[], "true", "");
        merge_refuses(&repo, edit, path, edit);
    }
    let link = "mkdir -p /tmp/orch-implicit-elsewhere docs && ln -sfn /tmp/orch-implicit-elsewhere docs/.claude";
    let repo = repo_with("check", hook, &[], link, "sandbox = \"off\"");
    task_fails_naming(&repo, "docs/.claude", link);
    let repo = repo_with("check", hook, &[], "true", "");
    merge_refuses(&repo, link, "docs/.claude", link);
}
