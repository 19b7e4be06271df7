//! What users expect of a Rust command line, on the real binary: shell completions, a man
//! page, `--color` with `NO_COLOR`, and `RUST_LOG` diagnostics.

use crate::support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::{Repo, TIMEOUT, agent, code_out_err, one_task, toml_array, wait_within};

/// `orch ARGS` with an empty environment but `PATH` and `env`: exit code, stdout, stderr.
fn orch(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orch"));
    let here = std::env::current_dir().expect("current dir");
    c.args(args)
        .env_clear()
        .env("PWD", here)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    code_out_err(&wait_within(
        c.spawn().expect("spawn orch"),
        TIMEOUT,
        "orch",
    ))
}

/// `program` is on PATH.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// Runs `program args` with `input` on stdin: exit code, stdout, stderr.
fn run_with_input(
    program: &str,
    args: &[&str],
    input: &[u8],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Written from a thread: a large input must not block while the child's stdout fills.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = wait_within(child, TIMEOUT, program);
    writer.join().expect("writer");
    code_out_err(&out)
}

const ESC: char = '\x1b';

#[test]
fn bash_completions_are_valid_bash_and_know_the_commands() {
    let (code, script, err) = orch(&["completions", "bash"], &[]);
    assert_eq!(code, 0, "{err}");
    for word in [
        "merge",
        "next",
        "task",
        "done",
        "--plan",
        "--color",
        "completions",
    ] {
        assert!(script.contains(word), "no `{word}` in the bash script");
    }
    // orch's own plumbing (hidden commands) is not offered.
    assert!(!script.contains("session-exec"), "{script}");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("orch.bash");
    std::fs::write(&file, &script).expect("write");
    let out = wait_within(
        Command::new("bash")
            .arg("-n")
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bash"),
        TIMEOUT,
        "bash -n",
    );
    let (code, _, err) = code_out_err(&out);
    assert_eq!(code, 0, "bash -n refused the script: {err}");
    // Sourced, it completes what a person types: a command, an option, an option's values.
    let complete = |words: &[&str]| -> String {
        let cword = words.len() - 1;
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let script = format!(
            "source '{}'; COMP_WORDS=({}); COMP_CWORD={cword}; _orch orch '{}' '{}'; echo \"${{COMPREPLY[*]}}\"",
            file.display(),
            quoted.join(" "),
            words[cword],
            words[cword - 1],
        );
        let (code, out, err) = run_with_input("bash", &["--norc", "-c", &script], b"", &[]);
        assert_eq!(code, 0, "{words:?}: {err}");
        out.trim().to_string()
    };
    assert_eq!(complete(&["orch", "me"]), "merge");
    assert_eq!(complete(&["orch", "merge", "--str"]), "--strategy");
    assert_eq!(
        complete(&["orch", "merge", "--strategy", ""]),
        "merge squash ff-only"
    );
    assert_eq!(complete(&["orch", "--color", ""]), "auto always never");
}

#[test]
fn zsh_and_fish_completions_know_the_commands() {
    for shell in ["zsh", "fish"] {
        let (code, script, err) = orch(&["completions", shell], &[]);
        assert_eq!(code, 0, "{shell}: {err}");
        for word in ["orch", "merge", "next", "task", "completions"] {
            assert!(script.contains(word), "{shell}: no `{word}`");
        }
        assert!(!script.contains("demo-agent"), "{shell}: {script}");
        // Checked by the shell itself where it is installed (neither is required).
        if on_path(shell) {
            let (code, _, err) = run_with_input(shell, &["-n"], script.as_bytes(), &[]);
            assert_eq!(code, 0, "{shell} -n: {err}");
        }
    }
    let (code, _, err) = orch(&["completions", "tcsh"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("tcsh"), "{err}");
}

/// `man -l -` renders `page`: the text, or `None` (with a note) where man is missing outside CI.
fn render_man(page: &str) -> Option<String> {
    if !on_path("man") {
        assert!(
            std::env::var_os("CI").is_none(),
            "`man` is not on PATH: CI must have it (apt-get install man-db groff-base)"
        );
        eprintln!("note: `man` is not on PATH: the man page is not rendered here");
        return None;
    }
    let (code, text, err) = run_with_input(
        "man",
        &["-l", "-"],
        page.as_bytes(),
        // The page has UTF-8 punctuation (`…`): rendered in a UTF-8 locale, whatever the
        // caller's (under `env -i`, groff warned that it cannot find `u2026`).
        &[
            ("MANPAGER", "cat"),
            ("PAGER", "cat"),
            ("MANWIDTH", "100"),
            ("LC_ALL", "C.UTF-8"),
        ],
    );
    assert_eq!(code, 0, "man -l - failed: {err}");
    assert!(err.trim().is_empty(), "man (groff) complained: {err}");
    // Bold and underline by overstriking, in case the formatter kept them.
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    Some(plain)
}

#[test]
fn the_man_page_is_roff_that_man_renders() {
    let (code, page, err) = orch(&["man"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        page.starts_with('.'),
        "not roff: {}",
        &page[..page.len().min(80)]
    );
    assert!(
        page.lines().any(|l| l.starts_with(".TH orch 1")),
        "no .TH line"
    );
    if let Some(text) = render_man(&page) {
        assert!(text.contains("NAME"), "{text}");
        assert!(text.contains("orch"), "{text}");
        for sub in ["merge", "next", "task", "completions", "man"] {
            assert!(
                text.lines().any(|l| l.trim() == format!("orch-{sub}(1)")),
                "subcommand `{sub}` not listed:\n{text}"
            );
        }
        assert!(text.contains("--color"), "{text}");
    }
    // One command's page.
    let (code, page, err) = orch(&["man", "merge"], &[]);
    assert_eq!(code, 0, "{err}");
    let source = format!("\"orch {}\"", env!("CARGO_PKG_VERSION"));
    assert!(
        page.lines()
            .any(|l| l.starts_with(".TH orch-merge 1") && l.contains(&source)),
        "{page}"
    );
    if let Some(text) = render_man(&page) {
        assert!(text.contains("orch-merge"), "{text}");
        assert!(text.contains("--strategy"), "{text}");
    }
    let (code, out, err) = orch(&["man", "bogus"], &[]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("no command `bogus`"), "{err}");
}

/// The help of `orch` and of a subcommand, clap's error, and orch's own error: coloured or not.
fn coloured(args: &[&str], env: &[(&str, &str)]) -> [bool; 4] {
    let with = |rest: &[&str]| -> Vec<String> {
        args.iter().chain(rest).map(|s| (*s).to_string()).collect()
    };
    let run = |rest: &[&str]| {
        let argv = with(rest);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        orch(&argv, env)
    };
    let (_, top, _) = run(&["--help"]);
    let (_, next, _) = run(&["next", "--help"]);
    let (code, _, clap_err) = run(&["task", "done"]);
    assert_eq!(code, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.md");
    let (code, _, own_err) = run(&["next", "--plan", missing.to_str().expect("utf-8")]);
    assert_eq!(code, 2, "{own_err}");
    assert!(own_err.contains("error:"), "{own_err}");
    [top, next, clap_err, own_err].map(|s| s.contains(ESC))
}

#[test]
fn color_follows_the_option_and_no_color() {
    // Not a terminal: no colour unless asked.
    assert_eq!(coloured(&[], &[]), [false; 4]);
    assert_eq!(coloured(&["--color", "always"], &[]), [true; 4]);
    assert_eq!(coloured(&["--color=auto"], &[]), [false; 4]);
    // CLICOLOR_FORCE colours a pipe in `auto`; NO_COLOR (any non-empty value) wins over it.
    assert_eq!(coloured(&[], &[("CLICOLOR_FORCE", "1")]), [true; 4]);
    assert_eq!(
        coloured(&[], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]),
        [false; 4]
    );
    assert_eq!(
        coloured(&[], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "")]),
        [true; 4]
    );
    // An explicit --color wins over the environment.
    assert_eq!(
        coloured(&["--color", "always"], &[("NO_COLOR", "1")]),
        [true; 4]
    );
    assert_eq!(
        coloured(&["--color", "never"], &[("CLICOLOR_FORCE", "1")]),
        [false; 4]
    );
    // The option given after the subcommand counts too.
    let (_, out, _) = orch(&["next", "--color", "always", "--help"], &[]);
    assert!(out.contains(ESC));
    // What is coloured reads the same without the colour.
    let (_, plain, _) = orch(&["--help"], &[]);
    let (_, painted, _) = orch(&["--color", "always", "--help"], &[]);
    assert_eq!(strip_ansi(&painted), plain);
    let (code, _, err) = orch(&["--color", "sometimes", "status"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("sometimes") && err.contains("never"), "{err}");
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == ESC {
            // CSI: ESC [ parameters final-byte.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn repo_with_a_plan() -> Repo {
    let repo = Repo::new();
    repo.plans(&[(
        "auth",
        toml_array(&["true"]),
        &one_task("Auth", "Add login"),
    )]);
    repo
}

fn check_with(repo: &Repo, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = repo.orch(&["check"]);
    cmd.envs(env.iter().copied());
    repo.run_cmd(&mut cmd)
}

#[test]
fn rust_log_prints_diagnostics_on_stderr_and_nothing_else_changes() {
    let repo = repo_with_a_plan();
    let (code, out, err) = check_with(&repo, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("DEBUG"), "{err}");
    let (dcode, dout, derr) = check_with(&repo, &[("RUST_LOG", "orch=debug")]);
    assert_eq!(dcode, code);
    assert_eq!(dout, out, "stdout is the same with RUST_LOG");
    let debug: Vec<&str> = derr.lines().filter(|l| l.contains(" DEBUG ")).collect();
    assert!(
        debug.iter().any(|l| l.contains("orch::workspace")
            && l.contains("workspace loaded")
            && l.contains("plans=1")),
        "{derr}"
    );
    // The diagnostics are added lines: the rest of stderr is what it was.
    let rest: Vec<&str> = derr.lines().filter(|l| !l.contains(" DEBUG ")).collect();
    assert_eq!(rest, err.lines().collect::<Vec<_>>());
    // Not a terminal: no colour in them either; an empty RUST_LOG is no RUST_LOG.
    assert!(!derr.contains(ESC), "{derr}");
    assert_eq!(
        check_with(&repo, &[("RUST_LOG", "")]),
        (code, out.clone(), err.clone())
    );
    // Another target's filter leaves orch quiet.
    assert_eq!(
        check_with(&repo, &[("RUST_LOG", "git2=debug")]),
        (code, out, err)
    );
}

/// The debug lines of a run and a merge: the layers' boundaries, with what they worked on.
#[test]
fn rust_log_follows_a_run_and_a_merge() {
    let repo = Repo::new();
    repo.plans(&[(
        "auth",
        agent("ok.sh", &["/dev/null"]),
        &one_task("Auth", "Add login"),
    )]);
    let debug = |args: &[&str]| {
        let mut cmd = repo.orch(args);
        cmd.env("RUST_LOG", "orch=debug");
        let (code, _, err) = repo.run_cmd(&mut cmd);
        assert_eq!(code, 0, "orch {args:?}: {err}");
        err
    };
    let up = debug(&["up", "--json"]);
    let line = |text: &str, what: &str| -> String {
        text.lines()
            .find(|l| l.contains(" DEBUG ") && l.contains(what))
            .unwrap_or_else(|| panic!("no `{what}` line:\n{text}"))
            .to_string()
    };
    assert!(line(&up, "plan worktree").contains("plan=\"auth\""), "{up}");
    let spawned = line(&up, "agent spawned");
    let pid: u32 = spawned
        .split_whitespace()
        .find_map(|w| w.strip_prefix("pid="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid: {spawned}"));
    assert!(pid > 1, "{spawned}");
    assert!(spawned.contains("task=Some(\"1.1\")"), "{spawned}");
    line(&up, "status file changed: re-read");
    let merge = debug(&["merge"]);
    assert!(line(&merge, "merge step: building").contains("plan=\"auth\""));
    line(&merge, "merge step: target moved");
}

#[test]
fn new_commands_teach_in_their_help() {
    for (cmd, example) in [
        ("completions", "orch completions bash >"),
        ("man", "orch man | man -l -"),
    ] {
        let (code, out, err) = orch(&[cmd, "--help"], &[]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("Examples:") && out.contains(example),
            "{cmd}: {out}"
        );
    }
    let (_, out, _) = orch(&["--help"], &[]);
    for word in ["completions", "man", "--color", "NO_COLOR", "RUST_LOG"] {
        assert!(out.contains(word), "`orch --help` does not mention {word}");
    }
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every command orch starts is made by `agent_env::command` (or `tokio_command`), which removes
/// a collector's credentials and the outer trace context from what it inherits (red team 10:
/// the preset probes and orch's own `ssh` got them): a `Command::new(` anywhere else in orch's
/// code (tests, the sandbox's own re-execution of orch and clap's `Command` excepted) fails here.
#[test]
fn every_command_is_made_by_the_one_that_withholds_credentials() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "no sources found under {}", src.display());
    let mut offenders = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("inside").to_path_buf();
        let allowed = rel.starts_with("sandbox")
            || rel == std::path::Path::new("agent_env.rs")
            || rel.components().any(|c| c.as_os_str() == "tests")
            || rel.file_name().is_some_and(|n| n == "tests.rs");
        if allowed {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read");
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or(&text);
        for (i, line) in code.lines().enumerate() {
            let l = line.trim();
            if l.starts_with("//") || l.contains("clap::Command::new(") {
                continue;
            }
            if l.contains("Command::new(") {
                offenders.push(format!("{}:{}: {l}", rel.display(), i + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "commands made without agent_env::command:\n{}",
        offenders.join("\n")
    );
}

/// The one command function that keeps a collector's credentials, `agent_env::orch_itself`,
/// starts orch's own executable only: from the two places that run orch's own commands for
/// `orch mcp` and `orch serve`, each with `orch_exe()`.
#[test]
fn only_orch_itself_is_started_with_the_collectors_credentials() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut users = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("inside").to_path_buf();
        if rel == std::path::Path::new("agent_env.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read");
        for (i, line) in text.lines().enumerate() {
            if line.contains("orch_itself(") {
                assert!(
                    line.contains("orch_itself(exe)") || line.contains("orch_itself(orch_exe()"),
                    "{}:{}: not orch's own executable: {line}",
                    rel.display(),
                    i + 1
                );
                users.push(rel.display().to_string());
            }
        }
    }
    users.sort();
    assert_eq!(users, ["commands/mcp/up.rs", "commands/orch_child.rs"]);
}

/// Every run of git goes through `src/git/cli.rs`: it names the git directory and the
/// work tree from orch's records and sets what keeps git from running a program an agent
/// configured. A `Command::new("git")`, or a `"git"` program name, anywhere else in orch's code
/// (tests excepted) fails here; `merge/pr.rs` shows `git push` to the user and runs it through
/// the runner (`git_command`).
#[test]
fn git_is_spawned_only_by_the_git_runner() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "no sources found under {}", src.display());
    let runner = src.join("git").join("cli.rs");
    let runner_text = std::fs::read_to_string(&runner).expect("runner");
    assert!(
        runner_text.contains("Command::new(\"git\")")
            || runner_text.contains("Command::new(crate::sandbox::program_on_path(GIT)?)")
            || runner_text.contains("agent_env::command(crate::sandbox::program_on_path(GIT)?)"),
        "the runner moved"
    );
    let mut offenders = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("inside").to_path_buf();
        if f == runner || rel.components().any(|c| c.as_os_str() == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read");
        // Unit tests at the end of a file may set up repositories with git.
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or(&text);
        let compact: String = code.split_whitespace().collect();
        for (i, line) in code.lines().enumerate() {
            let l = line.trim();
            if l.starts_with("//") {
                continue;
            }
            if l.contains("\"git\"") && rel != std::path::Path::new("merge/pr.rs") {
                offenders.push(format!("{}:{}: {l}", rel.display(), i + 1));
            }
        }
        for pattern in [
            "Command::new(\"git\"",
            "Command::new(\"/usr/bin/git\"",
            "command(\"git\"",
            "command(\"/usr/bin/git\"",
        ] {
            if compact.contains(pattern) {
                offenders.push(format!("{}: {pattern}", rel.display()));
            }
        }
        if rel == std::path::Path::new("merge/pr.rs") {
            assert!(
                code.contains("git_command"),
                "merge/pr.rs runs git without the runner"
            );
        }
    }
    assert!(
        offenders.is_empty(),
        "git spawned outside src/git/cli.rs:\n{}",
        offenders.join("\n")
    );
}

/// The lines of orch's own code (unit tests and comments left out) of each `.rs` file under
/// `src/` that contain one of `patterns`, as `path:line: text`, except in the files of `allowed`
/// (paths relative to `src/`).
fn code_lines_with(patterns: &[&str], allowed: &[&str]) -> Vec<String> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "no sources found under {}", src.display());
    let mut found = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("inside").to_path_buf();
        let shown = rel.display().to_string();
        if allowed.contains(&shown.as_str())
            || rel.components().any(|c| c.as_os_str() == "tests")
            || rel.file_name().is_some_and(|n| n == "tests.rs")
        {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read");
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or(&text);
        for (i, line) in code.lines().enumerate() {
            let l = line.trim();
            if !l.starts_with("//") && patterns.iter().any(|p| l.contains(p)) {
                found.push(format!("{shown}:{}: {l}", i + 1));
            }
        }
    }
    found
}

/// What orch prints goes through the writers that show an agent's words escaped
/// (`commands/output.rs`: `println_safe`, `eprintln_safe`, `print_json`), so that text of any
/// origin is escaped whether its caller thought of it or not. A `println!`, an `eprintln!` or a
/// write to `stdout()`/`stderr()` anywhere else fails here; the files allowed each escape
/// what they print themselves, or print only orch's own words:
/// - `cli/mod.rs`: the `error:` lines (escaped there) and clap's help;
/// - `cli/generate.rs`: completions and the man page (from the clap definition);
/// - `supervisor/progress.rs`: `orch up`'s lines (escaped in `write_line`);
/// - `commands/status/watch.rs`: `status --watch`'s screens (escaped in `Screen::show`);
/// - `commands/logs.rs`: a log, escaped or, with `--raw`, as written;
/// - `top/mod.rs`: the terminal `orch top` draws on (its paragraphs escape, `top/view.rs`);
/// - `color.rs`: whether a stream is a terminal;
/// - `commands/demo.rs`, `merge/interrupt.rs`: fixed sentences;
/// - `process/wrapper.rs`: an agent's own output relayed into its log (not a terminal), and a
///   setup keeper's report to `orch up` on its stdout.
/// - `executor/ssh/attempt.rs`, `executor/ssh/lead.rs`, `executor/ssh/remote_run.rs`: a remote
///   agent's output relayed into its log (not a terminal), and the frames between orch and its
///   copy on a host.
#[test]
fn what_orch_prints_goes_through_the_escaping_writers() {
    let found = code_lines_with(
        &[
            "println!(",
            "print!(",
            "stdout()",
            "stderr()",
            "io::stdout",
            "io::stderr",
        ],
        &[
            "commands/output.rs",
            "cli/mod.rs",
            "cli/generate.rs",
            "supervisor/progress.rs",
            "commands/status/watch.rs",
            "commands/logs.rs",
            "top/mod.rs",
            "color.rs",
            "commands/demo.rs",
            "merge/interrupt.rs",
            "process/wrapper.rs",
            "executor/ssh/attempt.rs",
            "executor/ssh/lead.rs",
            "executor/ssh/remote_run.rs",
        ],
    );
    assert!(
        found.is_empty(),
        "printed outside the escaping writers (use println_safe / eprintln_safe):\n{}",
        found.join("\n")
    );
}

/// Files are read through `untrusted/read.rs` (no link followed, regular files only, never
/// waiting on a FIFO, a limit per kind of file): a `std::fs::read`, `read_to_string` or
/// `File::open` anywhere else fails here. Allowed: `/proc` (`process/procfs.rs`,
/// `untrusted/procfs.rs`, `executor/slurm/shared_fs.rs`: the kernel's files), `client_state.rs`
/// (your own client state, which may be a link you made, copied for a confined attempt: special
/// files are skipped there), `status/store.rs` (opens the state directory itself to sync it),
/// `commands/demo.rs` (the demo's own files).
#[test]
fn files_are_read_by_the_bounded_reader() {
    let found = code_lines_with(
        &["fs::read(", "fs::read_to_string(", "File::open("],
        &[
            "untrusted/read.rs",
            "process/procfs.rs",
            "untrusted/procfs.rs",
            "executor/slurm/shared_fs.rs",
            "client_state.rs",
            "status/store.rs",
            "commands/demo.rs",
        ],
    );
    assert!(
        found.is_empty(),
        "files read outside untrusted::read:\n{}",
        found.join("\n")
    );
}
