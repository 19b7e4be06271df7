//! The examples of README.md and the book (docs/src) run here, so none can go stale.
//!
//! Every ` ```console ` block is read as a list of commands (`$ orch …`) each followed by what it
//! prints (stdout and stderr through one pipe, as a terminal shows them) and, optionally, a last
//! line `? N`: its exit status when it is not 0. In the printed lines, `...` alone on a line
//! matches any number of lines and `[..]` any text within a line. A block runs in a fresh
//! repository, the fixture named by an HTML comment `<!-- fixture: NAME -->` on the line before
//! it (`auth` when there is none), its commands one after the other in that repository, with the
//! `orch` just built. Only `orch` runs: no shell, no pipe.
//!
//! Also checked: the README's table of commands names every subcommand `orch --help` lists, the
//! README's plan excerpt is what `orch init` writes, and every relative link of the README and
//! the book leads to a file that exists.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The deadline of each command an example or a fixture runs.
const TIMEOUT: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn orch() -> &'static str {
    env!("CARGO_BIN_EXE_orch")
}

/// README.md and every page of the book.
fn documents() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "md") {
                out.push(p);
            }
        }
    }
    let mut out = vec![root().join("README.md")];
    walk(&root().join("docs/src"), &mut out);
    out
}

#[derive(Debug)]
struct Step {
    line: usize,
    command: String,
    expected: Vec<String>,
    status: i32,
}

#[derive(Debug)]
struct Example {
    file: PathBuf,
    line: usize,
    fixture: String,
    steps: Vec<Step>,
}

/// The ` ```console ` blocks of one markdown text (not those inside another fence).
fn examples(file: &Path, text: &str) -> Vec<Example> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let ticks = line.len() - line.trim_start_matches('`').len();
        if ticks < 3 {
            i += 1;
            continue;
        }
        let fence = &line[..ticks];
        let info = line[ticks..].trim();
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].trim_end() == fence)
            .unwrap_or_else(|| panic!("{}:{}: unclosed fence", file.display(), i + 1));
        if info == "console" {
            let fixture = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| l.trim().strip_prefix("<!-- fixture:"))
                .and_then(|l| l.strip_suffix("-->"))
                .map_or("auth", str::trim)
                .to_string();
            out.push(Example {
                file: file.to_path_buf(),
                line: i + 1,
                fixture,
                steps: steps(file, i + 1, &lines[i + 1..end]),
            });
        }
        i = end + 1;
    }
    out
}

fn steps(file: &Path, first: usize, lines: &[&str]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        let n = first + 1 + k;
        if let Some(cmd) = line.strip_prefix("$ ") {
            steps.push(Step {
                line: n,
                command: cmd.to_string(),
                expected: Vec::new(),
                status: 0,
            });
            continue;
        }
        let step = steps.last_mut().unwrap_or_else(|| {
            panic!(
                "{}:{n}: a console block must begin with `$ command`",
                file.display()
            )
        });
        if let Some(code) = line.strip_prefix("? ") {
            step.status = code
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{}:{n}: `? N` wants an exit status", file.display()));
        } else {
            assert!(
                step.status == 0 || line.trim().is_empty(),
                "{}:{n}: output after the `? N` line",
                file.display()
            );
            step.expected.push(line.trim_end().to_string());
        }
    }
    assert!(
        !steps.is_empty(),
        "{}:{first}: an empty console block",
        file.display()
    );
    steps
}

/// Splits a command line as a shell would split words: spaces separate, `'…'` and `"…"` keep
/// them (a backslash escapes the next character inside double quotes and outside quotes).
fn words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut chars = cmd.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            '\'' => {
                has = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                has = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                has = true;
                cur.extend(chars.next());
            }
            c => {
                has = true;
                cur.push(c);
            }
        }
    }
    if has {
        out.push(cur);
    }
    out
}

/// Where a fixture's commands run: the repository and the HOME beside it.
struct Place {
    _dir: tempfile::TempDir,
    cwd: PathBuf,
    home: PathBuf,
    /// More environment of the fixture's commands (the fake GitHub CLI of `review`).
    env: Vec<(String, std::ffi::OsString)>,
}

/// The agent CLIs no example may start: `PATH` leaves out the directories that hold one.
const AGENT_CLIS: [&str; 4] = ["claude", "codex", "gemini", "aider"];

/// The caller's `PATH` without the directories of an agent CLI (so an example's `orch up` can
/// never reach a real model, and shows what a machine without them shows).
fn path_without_agents() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs =
        std::env::split_paths(&path).filter(|d| !AGENT_CLIS.iter().any(|cli| d.join(cli).exists()));
    std::env::join_paths(dirs).expect("PATH")
}

/// A command with the environment of every example: no `ORCH_*` of the caller, a HOME of its
/// own, a fixed git identity, UTC, no colours, no agent CLI on `PATH`.
fn command(program: &str, place_home: &Path, cwd: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", path_without_agents())
        .env("HOME", place_home)
        .env("TMPDIR", std::env::temp_dir())
        .env("TZ", "UTC")
        .env("NO_COLOR", "1")
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .current_dir(cwd)
        .env("PWD", cwd)
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` with stdout and stderr on one pipe; its exit status and what it printed.
fn run(mut cmd: Command, what: &str) -> (i32, String) {
    let (mut reader, writer) = std::io::pipe().expect("pipe");
    cmd.stdout(writer.try_clone().expect("pipe clone"))
        .stderr(writer);
    let mut child: Child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    drop(cmd);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = reader.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    let Ok(out) = rx.recv_timeout(TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what}: still running after {TIMEOUT:?}");
    };
    let status = child.wait().expect("wait");
    let code = status.code().unwrap_or(-1);
    (code, String::from_utf8_lossy(&out).into_owned())
}

fn must(cmd: Command, what: &str) -> String {
    let (code, out) = run(cmd, what);
    assert_eq!(code, 0, "{what} failed:\n{out}");
    out
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let e = e.expect("dir entry");
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

fn commit_all(home: &Path, repo: &Path) {
    let git = |args: &[&str]| {
        let mut c = command("git", home, repo);
        c.args(args);
        must(c, &format!("git {args:?}"));
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "initial"]);
}

/// A plan of 100 phases of 101 tasks, the first 50 phases done (`[x]`).
fn big_plan() -> String {
    let mut s = String::new();
    for p in 1..=100 {
        s.push_str(&format!("## Phase {p}: Step {p}\n"));
        for t in 1..=101 {
            let mark = if p <= 50 { 'x' } else { ' ' };
            s.push_str(&format!("- [{mark}] {p}.{t} Do part {t} of step {p}\n"));
        }
        s.push('\n');
    }
    s
}

/// Makes the fixture `name` (see the module comment) in a new temp dir.
fn fixture(name: &str) -> Place {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    fs::create_dir_all(&home).expect("home");
    let repo = dir.path().join("repo");
    let fixtures = root().join("tests/fixtures/docs");
    let mut env = Vec::new();
    match name {
        // An empty directory.
        "empty" => fs::create_dir_all(&repo).expect("mkdir"),
        // A git repository with one commit and nothing of orch's.
        "repo" => {
            fs::create_dir_all(&repo).expect("mkdir");
            fs::write(repo.join("README.md"), "# A project\n").expect("write");
            commit_all(&home, &repo);
        }
        // The plans of orch's own plans.toml (the ones `orch demo` runs).
        "plans" => {
            fs::create_dir_all(repo.join("docs/plans")).expect("mkdir");
            fs::copy(root().join("plans.toml"), repo.join("plans.toml")).expect("copy");
            for plan in ["greeter", "docs", "polish"] {
                let file = format!("docs/plans/{plan}.md");
                fs::copy(root().join(&file), repo.join(&file)).expect("copy");
            }
            commit_all(&home, &repo);
        }
        // One plan of 10,100 tasks, half of them done.
        "big" => {
            fs::create_dir_all(repo.join("plans")).expect("mkdir");
            fs::write(
                repo.join("plans.toml"),
                "[[plan]]\nname = \"big\"\nfile = \"plans/big.md\"\n",
            )
            .expect("write");
            fs::write(repo.join("plans/big.md"), big_plan()).expect("write");
            commit_all(&home, &repo);
        }
        // `orch demo --no-merge`: three finished plans, not merged.
        "demo" => {
            let mut c = command(orch(), &home, dir.path());
            c.args(["demo", "--no-merge", "repo"]);
            must(c, "orch demo --no-merge repo");
        }
        // Plans `a` and `b` run by `orch up` (both write `shared.txt`), `c` not started.
        "conflicts" => {
            copy_dir(&fixtures.join("conflicts"), &repo);
            commit_all(&home, &repo);
            let mut c = command(orch(), &home, &repo);
            c.args(["up", "a", "b"]);
            must(c, "orch up a b");
        }
        // As `conflicts`, with `resolve = "fixer"` (a script keeping both sides' lines).
        "resolve" => {
            copy_dir(&fixtures.join("resolve"), &repo);
            commit_all(&home, &repo);
            let mut c = command(orch(), &home, &repo);
            c.args(["up", "a", "b"]);
            must(c, "orch up a b");
        }
        // Three repositories side by side: `repo` (the home one, with plans.toml), `api`,
        // `client` (tests/fixtures/docs/repos).
        "repos" => {
            for (from, to) in [
                ("home", &repo),
                ("api", &dir.path().join("api")),
                ("client", &dir.path().join("client")),
            ] {
                copy_dir(&fixtures.join("repos").join(from), to);
                commit_all(&home, to);
            }
        }
        // `auth` with a status file cut short (the end of a write that never was).
        "corrupt" => {
            copy_dir(&fixtures.join("auth"), &repo);
            commit_all(&home, &repo);
            let state = repo.join(".orch/state/auth");
            fs::create_dir_all(&state).expect("mkdir");
            fs::write(
                state.join("status.json"),
                "{\n  \"planPath\": \"docs/plans/auth.md\",\n  \"tasks\": [\n",
            )
            .expect("write");
        }
        // `review`: plan `api` finished by `orch up`, a bare `origin`, and the fake GitHub CLI
        // (tests/fixtures/gh) first on PATH with one review thread by `ann` on pull request 1.
        "review" => {
            copy_dir(&fixtures.join("review"), &repo);
            commit_all(&home, &repo);
            let mut c = command(orch(), &home, &repo);
            c.args(["up"]);
            must(c, "orch up");
            let remote = dir.path().join("remote.git");
            let mut g = command("git", &home, dir.path());
            g.args(["init", "-q", "--bare", "remote.git"]);
            must(g, "git init --bare");
            let mut g = command("git", &home, &repo);
            g.args(["remote", "add", "origin"]).arg(&remote);
            must(g, "git remote add");
            let state = dir.path().join("gh-state");
            fs::create_dir_all(&state).expect("mkdir");
            fs::write(state.join("perm-ann"), "write").expect("write");
            fs::write(
                state.join("threads-1.json"),
                r#"{"data":{"repository":{"pullRequest":{"reviewThreads":{"nodes":[{"id":"T1","isResolved":false,"path":"src/api.rs","line":12,"comments":{"nodes":[{"databaseId":11,"author":{"login":"ann"},"body":"Return 503 while the database is down.","diffHunk":"@@ -10,2 +10,3 @@"}]}}]}}}}}"#,
            )
            .expect("write");
            let mut path = std::ffi::OsString::from(root().join("tests/fixtures/gh"));
            path.push(":");
            path.push(path_without_agents());
            env = vec![
                ("PATH".into(), path),
                ("GH_LOG".into(), dir.path().join("gh.log").into()),
                ("GH_STATE".into(), state.into()),
                ("GH_REMOTE".into(), remote.into()),
            ];
        }
        // A directory of tests/fixtures/docs, committed.
        other => {
            let from = fixtures.join(other);
            assert!(from.is_dir(), "no fixture `{other}` ({})", from.display());
            copy_dir(&from, &repo);
            commit_all(&home, &repo);
        }
    }
    Place {
        _dir: dir,
        cwd: repo,
        home,
        env,
    }
}

/// Whether `actual` matches `expected`, where `[..]` stands for any text.
fn line_matches(expected: &str, actual: &str) -> bool {
    let parts: Vec<&str> = expected.split("[..]").collect();
    if parts.len() == 1 {
        return expected == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first) || actual.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &actual[first.len()..];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Whether the lines match, where an expected `...` line stands for any number of lines.
fn lines_match(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((e, rest)) if e == "..." => {
            (0..=actual.len()).any(|k| lines_match(rest, &actual[k..]))
        }
        Some((e, rest)) => actual
            .split_first()
            .is_some_and(|(a, more)| line_matches(e, a) && lines_match(rest, more)),
    }
}

fn trim_trailing_blank<T: AsRef<str>>(v: &mut Vec<T>) {
    while v.last().is_some_and(|l| l.as_ref().trim().is_empty()) {
        v.pop();
    }
}

/// Runs one example; the description of every step that did not print what it shows.
fn check(example: &Example) -> Vec<String> {
    let place = fixture(&example.fixture);
    let mut failures = Vec::new();
    for step in &example.steps {
        let mut words = words(&step.command);
        let mut env = Vec::new();
        while words.first().is_some_and(|w| {
            w.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            })
        }) {
            let w = words.remove(0);
            let (k, v) = w.split_once('=').expect("checked");
            env.push((k.to_string(), v.to_string()));
        }
        let at = format!("{}:{}", example.file.display(), step.line);
        assert_eq!(
            words.first().map(String::as_str),
            Some("orch"),
            "{at}: only `orch` commands run in a console block: `{}`",
            step.command
        );
        let mut cmd = command(orch(), &place.home, &place.cwd);
        cmd.args(&words[1..])
            .envs(place.env.iter().map(|(k, v)| (k, v)))
            .envs(env);
        let (code, out) = run(cmd, &at);
        let mut actual: Vec<&str> = out.lines().map(str::trim_end).collect();
        trim_trailing_blank(&mut actual);
        let mut expected = step.expected.clone();
        trim_trailing_blank(&mut expected);
        if code != step.status || !lines_match(&expected, &actual) {
            failures.push(format!(
                "{at}: `{}` (the block at line {}, fixture `{}`)\n--- expected (exit status {}):\n{}\n--- printed (exit status {code}):\n{}\n",
                step.command,
                example.line,
                example.fixture,
                step.status,
                expected.join("\n"),
                actual.join("\n"),
            ));
        }
    }
    failures
}

#[test]
fn every_console_example_prints_what_it_shows() {
    let mut all = Vec::new();
    for file in documents() {
        let text = fs::read_to_string(&file).expect("read");
        all.extend(examples(&file, &text));
    }
    assert!(
        all.len() >= 20,
        "only {} console examples found: is the parser broken?",
        all.len()
    );
    let failures: Vec<String> = all.iter().flat_map(check).collect();
    let steps: usize = all.iter().map(|e| e.steps.len()).sum();
    assert!(
        failures.is_empty(),
        "{} of {steps} example commands did not print what the docs show:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} console examples, {steps} commands: all as shown",
        all.len()
    );
}

#[test]
fn the_readme_table_lists_every_command() {
    let mut cmd = command(orch(), &std::env::temp_dir(), &root());
    cmd.arg("--help");
    let help = must(cmd, "orch --help");
    let readme = fs::read_to_string(root().join("README.md")).expect("README.md");
    let names: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .collect();
    assert!(names.len() >= 10, "no commands read from:\n{help}");
    let table: Vec<&str> = readme.lines().filter(|l| l.starts_with("| ")).collect();
    for name in names {
        assert!(
            table.iter().any(|l| l.contains(&format!("orch {name}"))),
            "`orch {name}` is missing from the README's table of commands"
        );
    }
}

#[test]
fn every_relative_link_leads_to_a_file() {
    let mut broken = Vec::new();
    for file in documents() {
        let text = fs::read_to_string(&file).expect("read");
        let dir = file.parent().expect("parent");
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            let path = target.split('#').next().unwrap_or("");
            if path.is_empty() || path.contains("://") || path.contains(' ') {
                continue;
            }
            if !dir.join(path).exists() {
                broken.push(format!("{}: {target}", file.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to nothing:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_wildcards_match_what_they_should_and_nothing_else() {
    assert!(line_matches("a [..] c", "a b c"));
    assert!(line_matches("[..]", ""));
    assert!(line_matches("x[..]", "xyz"));
    assert!(!line_matches("a [..] c", "a b d"));
    assert!(!line_matches("ab[..]ba", "aba"));
    let e = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(lines_match(&e(&["a", "...", "z"]), &["a", "b", "c", "z"]));
    assert!(lines_match(&e(&["a", "...", "z"]), &["a", "z"]));
    assert!(!lines_match(&e(&["a", "...", "z"]), &["a", "b"]));
    assert!(!lines_match(&e(&["a", "b"]), &["a", "b", "c"]));
    assert_eq!(
        words(r#"orch task done 1.3 --note "store done" 'x y' a\ b"#),
        [
            "orch",
            "task",
            "done",
            "1.3",
            "--note",
            "store done",
            "x y",
            "a b"
        ]
    );
}

#[test]
fn the_readme_plan_excerpt_is_the_plan_orch_init_writes() {
    let readme = fs::read_to_string(root().join("README.md")).expect("README.md");
    let start = readme
        .find("```markdown\n")
        .expect("a ```markdown block in the README")
        + 12;
    let excerpt = &readme[start..start + readme[start..].find("```\n").expect("its end")];
    let place = fixture("empty");
    let mut cmd = command(orch(), &place.home, &place.cwd);
    cmd.arg("init");
    must(cmd, "orch init");
    let plan = fs::read_to_string(place.cwd.join("docs/plans/example.md")).expect("example.md");
    assert!(
        plan.contains(excerpt),
        "the README's plan is not part of what `orch init` writes:\n{excerpt}\n--- example.md:\n{plan}"
    );
}
