//! No task text reaches a shell, and no name or path from the manifest leads out of the
//! repository. The agent fixture `argv_dump.sh` records its argv one argument per file and the
//! prompt file; the task text is full of shell syntax that would leave canary files behind if
//! anything ran it through a shell.

use crate::support;

use std::path::Path;

use support::{Repo, agent, disk_snapshot};

/// A description that a shell would act on in many ways: `$(...)`, backticks, `;`, `|`, `&&`,
/// redirections, quotes, variables, a template tag, non-ASCII. `CANARY` is replaced by a path.
const DESCRIPTION: &str = "Fix $(touch CANARY/dollar) and `touch CANARY/backtick`; touch CANARY/semi | tee CANARY/pipe && echo \"double\" 'single' $HOME ${PATH} > CANARY/redirect < /etc/passwd {{ plan }} %s \\n é 日本語 🚀";

/// Body lines (indented under the task): more of the same, over several lines.
const BODY: &str = "  - run `touch CANARY/body1`; echo $(touch CANARY/body2)\n  - second line | sh -c 'touch CANARY/body3' && true\n  - 'quotes' \"and\" \\ backslashes, ümlaut";

fn fill(text: &str, canary: &Path) -> String {
    text.replace("CANARY", canary.to_str().expect("utf8"))
}

#[test]
fn task_text_with_shell_syntax_reaches_the_agent_verbatim_and_runs_nothing() {
    let dump = tempfile::tempdir().expect("dump dir");
    let canary = tempfile::tempdir().expect("canary dir");
    let description = fill(DESCRIPTION, canary.path());
    let body = fill(BODY, canary.path());
    let repo = Repo::new();
    repo.write(
        "docs/plans/p.md",
        &format!("# P\n\n## Phase 1: Work\n- [ ] 1.1 {description}\n{body}\n"),
    );
    let command = agent(
        "argv_dump.sh",
        &[
            dump.path().to_str().expect("utf8"),
            "{{ prompt }}",
            "{{ task }}",
            "{{ plan }}",
            "literal $(touch canary) `x` ; |",
        ],
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"a\"\nretries = 0\n\n[agents.a]\ncommand = {command}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n"
        ),
    );
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}{err}");

    let arg = |n: usize| {
        String::from_utf8(std::fs::read(dump.path().join(format!("arg{n}"))).expect("arg"))
            .expect("utf8")
    };
    let prompt = arg(1);
    assert!(
        prompt.contains(&description),
        "the prompt lacks the description byte for byte:\n{prompt}"
    );
    for line in body.lines() {
        assert!(
            prompt.contains(line.trim_start()),
            "the prompt lacks `{line}`:\n{prompt}"
        );
    }
    assert_eq!(arg(2), "1.1");
    assert_eq!(arg(3), "p");
    assert_eq!(arg(4), "literal $(touch canary) `x` ; |");
    let file = std::fs::read_to_string(dump.path().join("prompt_file")).expect("prompt file");
    assert_eq!(
        file, prompt,
        "ORCH_PROMPT_FILE differs from {{{{ prompt }}}}"
    );

    // Nothing was executed: no canary anywhere.
    let left: Vec<_> = std::fs::read_dir(canary.path())
        .expect("canary dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "something ran the task text: {left:?}");
    assert!(!repo.worktree("p").join("canary").exists());
    assert!(!repo.root().join("canary").exists());

    // The commit subject is the description, verbatim.
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", "plan/p"]),
        format!("p 1.1: {description}")
    );
}

/// `(name, manifest lines after the agent, the location and message expected)`. The manifest's
/// first `[[plan]]` starts at line 6.
const ESCAPES: &[(&str, &str, &[&str])] = &[
    (
        "plan name ../x",
        "[[plan]]\nname = \"../x\"\nfile = \"docs/plans/p.md\"\n",
        &["plans.toml:7:8", "plan name `../x` is not allowed"],
    ),
    (
        "plan name /abs",
        "[[plan]]\nname = \"/abs\"\nfile = \"docs/plans/p.md\"\n",
        &["plans.toml:7:8", "plan name `/abs` is not allowed"],
    ),
    (
        "plan name ..",
        "[[plan]]\nname = \"..\"\nfile = \"docs/plans/p.md\"\n",
        &["plans.toml:7:8", "plan name `..` is not allowed"],
    ),
    (
        "branch ../x",
        "[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nbranch = \"../x\"\n",
        &["plans.toml:9:10", "branch `../x` of plan `p` is not valid"],
    ),
    (
        "branch /x",
        "[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nbranch = \"/x\"\n",
        &["plans.toml:9:10", "branch `/x` of plan `p` is not valid"],
    ),
    (
        "plan file ../x.md",
        "[[plan]]\nname = \"p\"\nfile = \"../x.md\"\n",
        &["plans.toml:8:8", "outside the manifest's directory"],
    ),
    (
        "plan file through a symlink",
        "[[plan]]\nname = \"p\"\nfile = \"link/p.md\"\n",
        &["plans.toml:8:8", "resolves to a path outside"],
    ),
    (
        "copy ../x",
        "[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\ncopy = [\"../x\"]\n",
        &[
            "plans.toml:9:9",
            "`plan.copy` entry `../x` is not a path inside the repository",
        ],
    ),
    (
        "copy absolute",
        "[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\ncopy = [\"/etc/passwd\"]\n",
        &["plans.toml:9:9", "`plan.copy` entry `/etc/passwd`"],
    ),
    (
        "copy through a symlink",
        "[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\ncopy = [\"link/secret\"]\n",
        &["plans.toml:9:9", "`plan.copy` entry `link/secret`"],
    ),
];

/// `defaults` keys naming directories: each value must be refused at line 3.
const DIR_KEYS: &[&str] = &["worktree_root", "state_dir", "log_dir", "templates"];
const DIR_VALUES: &[&str] = &["../out", "/tmp/orch-out", "link", "link/sub"];

fn refused(repo: &Repo, manifest: &str, expect: &[&str]) -> Result<(), String> {
    repo.write("plans.toml", manifest);
    repo.commit_all("manifest");
    let disk = disk_snapshot(repo.root());
    let refs = repo.refs();
    let (code, out, err) = repo.run(&["check"]);
    let mut problems = Vec::new();
    if code != 2 {
        problems.push(format!("exit code {code}"));
    }
    for f in expect {
        if !err.contains(f) {
            problems.push(format!("stderr lacks `{f}`"));
        }
    }
    if disk_snapshot(repo.root()) != disk || repo.refs() != refs {
        problems.push("something changed on disk".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n{out}{err}", problems.join("; ")))
    }
}

#[test]
fn names_and_paths_that_leave_the_repository_are_refused_with_their_location() {
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(
        outside.path().join("p.md"),
        "# X\n\n## Phase 1: W\n- [ ] 1.1 X\n",
    )
    .expect("write");
    std::fs::write(outside.path().join("secret"), "s3cret\n").expect("write");
    let repo = Repo::new();
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Something\n",
    );
    std::os::unix::fs::symlink(outside.path(), repo.root().join("link")).expect("symlink");
    let head = "[defaults]\nagent = \"a\"\n[agents.a]\ncommand = [\"true\"]\n\n";
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, plans, expect) in ESCAPES {
        count += 1;
        if let Err(e) = refused(&repo, &format!("{head}{plans}"), expect) {
            failures.push(format!("{name}: {e}"));
        }
    }
    for key in DIR_KEYS {
        for value in DIR_VALUES {
            count += 1;
            let manifest = format!(
                "[defaults]\nagent = \"a\"\n{key} = \"{value}\"\n[agents.a]\ncommand = [\"true\"]\n\n\
                 [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n"
            );
            let expect = [
                "plans.toml:3:".to_string(),
                format!("`defaults.{key}` `{value}` escapes the repository"),
            ];
            let expect: Vec<&str> = expect.iter().map(String::as_str).collect();
            if let Err(e) = refused(&repo, &manifest, &expect) {
                failures.push(format!("{key} = {value}: {e}"));
            }
        }
    }
    assert_eq!(count, 26);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // Nothing was written outside either.
    let mut names: Vec<_> = std::fs::read_dir(outside.path())
        .expect("outside")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["p.md", "secret"]);
}

/// `stdin = "prompt"`: the agent reads the prompt on its standard input, byte for byte as
/// `{{ prompt }}` gives it (the opencode preset's way: it changes a prompt given as an
/// argument); without it, stdin is empty.
#[test]
fn an_agent_with_stdin_prompt_reads_the_prompt_verbatim_on_stdin() {
    let canary = tempfile::tempdir().expect("canary dir");
    let description = fill(DESCRIPTION, canary.path());
    for (stdin, want_prompt) in [("prompt", true), ("null", false)] {
        let dump = tempfile::tempdir().expect("dump dir");
        let repo = Repo::new();
        repo.write(
            "docs/plans/p.md",
            &format!("# P\n\n## Phase 1: Work\n- [ ] 1.1 {description}\n"),
        );
        let script = format!(
            "cat > '{0}/stdin'; printf '%s' \"$1\" > '{0}/prompt_arg'",
            dump.path().display()
        );
        let command = support::toml_array(&["sh", "-c", &script, "agent", "{{ prompt }}"]);
        repo.write(
            "plans.toml",
            &format!(
                "[defaults]\nagent = \"a\"\nretries = 0\n\n[agents.a]\ncommand = {command}\nstdin = \"{stdin}\"\n\n\
                 [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n"
            ),
        );
        repo.commit_all("plans");
        let (code, out, err) = repo.run(&["up"]);
        assert_eq!(code, 0, "{out}{err}");
        let read = |f: &str| std::fs::read_to_string(dump.path().join(f)).expect(f);
        let (on_stdin, prompt) = (read("stdin"), read("prompt_arg"));
        assert!(prompt.contains(&description), "{prompt}");
        if want_prompt {
            assert_eq!(
                on_stdin, prompt,
                "stdin = \"prompt\" gives the prompt unchanged"
            );
        } else {
            assert_eq!(on_stdin, "", "stdin = \"null\" gives nothing");
        }
        assert_eq!(repo.task("p", "1.1")["status"], "completed");
    }
    assert_eq!(std::fs::read_dir(canary.path()).expect("canary").count(), 0);
}
