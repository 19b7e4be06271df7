//! What clap reads from the lines agents write most (`orch task ...`, `orch next ...`), and
//! what it refuses. (These lines were once also read by hand-written fast paths, with tests
//! keeping those equal to clap; the fast paths are gone, what clap reads is still pinned here.)

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;
use clap::error::ErrorKind;

use super::args::{Cli, ColorWhen, Command, Target, TaskAction};
use super::task_args::TaskCommon;

fn args(line: &[&str]) -> Vec<OsString> {
    std::iter::once("orch")
        .chain(line.iter().copied())
        .map(OsString::from)
        .collect()
}

fn read(line: &[&str]) -> Cli {
    Cli::try_parse_from(args(line)).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

fn target(plan: Option<&str>, manifest: Option<&str>) -> Target {
    Target {
        manifest: manifest.map(PathBuf::from),
        plan: plan.map(String::from),
    }
}

fn cli(command: Command) -> Cli {
    Cli {
        command,
        color: ColorWhen::Auto,
    }
}

/// `orch task ACTION ID` with (plan, manifest), force, json and the action's own text.
fn task(
    action: &str,
    id: &str,
    (plan, manifest): (Option<&str>, Option<&str>),
    force: bool,
    json: bool,
    text: Option<&str>,
) -> Cli {
    let common = TaskCommon {
        target: target(plan, manifest),
        id: id.to_string(),
        force,
        json,
    };
    let text = text.map(String::from);
    let action = match action {
        "start" => TaskAction::Start(common),
        "done" => TaskAction::Done { common, note: text },
        "fail" => TaskAction::Fail {
            common,
            error: text,
        },
        "skip" => TaskAction::Skip {
            common,
            reason: text,
        },
        _ => TaskAction::Reset(common),
    };
    cli(Command::Task { action })
}

#[test]
fn task_lines_read_as_written() {
    let none = (None, None);
    let cases: Vec<(Vec<&str>, Cli)> = vec![
        (
            vec!["task", "done", "1.2"],
            task("done", "1.2", none, false, false, None),
        ),
        (
            vec!["task", "done", "1.2", "--note", "all green", "--json"],
            task("done", "1.2", none, false, true, Some("all green")),
        ),
        (
            vec!["task", "done", "--json", "1.2", "--note=a=b"],
            task("done", "1.2", none, false, true, Some("a=b")),
        ),
        (
            vec![
                "task",
                "done",
                "--plan",
                "auth",
                "2.3.1",
                "--manifest",
                "../x/plans.toml",
            ],
            task(
                "done",
                "2.3.1",
                (Some("auth"), Some("../x/plans.toml")),
                false,
                false,
                None,
            ),
        ),
        (
            vec![
                "task",
                "done",
                "2.3.1",
                "--plan",
                "auth",
                "--manifest",
                "../x/plans.toml",
            ],
            task(
                "done",
                "2.3.1",
                (Some("auth"), Some("../x/plans.toml")),
                false,
                false,
                None,
            ),
        ),
        (
            vec![
                "task",
                "fail",
                "V2",
                "--error",
                "tests fail",
                "-p",
                "a.md",
                "-m",
                "p.toml",
            ],
            task(
                "fail",
                "V2",
                (Some("a.md"), Some("p.toml")),
                false,
                false,
                Some("tests fail"),
            ),
        ),
        (
            vec!["task", "fail", "1.1", "-pauth", "-mp.toml", "--force"],
            task(
                "fail",
                "1.1",
                (Some("auth"), Some("p.toml")),
                true,
                false,
                None,
            ),
        ),
        (
            vec!["task", "fail", "1.1", "-p=auth", "--error=x"],
            task("fail", "1.1", (Some("auth"), None), false, false, Some("x")),
        ),
        (
            vec!["task", "skip", "1.1", "--reason=obsolete", "--force"],
            task("skip", "1.1", none, true, false, Some("obsolete")),
        ),
        (
            vec![
                "task",
                "skip",
                "--plan=été",
                "1.1",
                "--reason",
                "not needed",
            ],
            task(
                "skip",
                "1.1",
                (Some("été"), None),
                false,
                false,
                Some("not needed"),
            ),
        ),
        (
            vec!["task", "start", "1.1", "--force"],
            task("start", "1.1", none, true, false, None),
        ),
        (
            vec!["task", "start", "1.1", "--force", "--json"],
            task("start", "1.1", none, true, true, None),
        ),
        (
            vec!["task", "reset", "1.1"],
            task("reset", "1.1", none, false, false, None),
        ),
        (
            vec!["task", "reset", "--force", "1.1", "--plan", "p"],
            task("reset", "1.1", (Some("p"), None), true, false, None),
        ),
        (
            vec!["task", "done", "--", "-1"],
            task("done", "-1", none, false, false, None),
        ),
    ];
    for (line, want) in cases {
        assert_eq!(read(&line), want, "{line:?}");
    }
}

/// `orch next` with (plan, manifest), count, json, all, why.
fn next(
    (plan, manifest): (Option<&str>, Option<&str>),
    count: Option<usize>,
    json: bool,
    all: bool,
    why: Option<&str>,
) -> Cli {
    cli(Command::Next {
        target: target(plan, manifest),
        count,
        json,
        all,
        why: why.map(String::from),
    })
}

#[test]
fn next_lines_read_as_written() {
    let none = (None, None);
    let auth = (Some("auth"), None);
    let cases: Vec<(Vec<&str>, Cli)> = vec![
        (vec!["next"], next(none, None, false, false, None)),
        (
            vec!["next", "-n", "5", "--json"],
            next(none, Some(5), true, false, None),
        ),
        (
            vec!["next", "--json", "-n", "5"],
            next(none, Some(5), true, false, None),
        ),
        (vec!["next", "-n5"], next(none, Some(5), false, false, None)),
        (
            vec!["next", "-n=5"],
            next(none, Some(5), false, false, None),
        ),
        (
            vec!["next", "--count", "0"],
            next(none, Some(0), false, false, None),
        ),
        (
            vec!["next", "--count=12", "--all"],
            next(none, Some(12), false, true, None),
        ),
        (
            vec!["next", "-n", "007"],
            next(none, Some(7), false, false, None),
        ),
        (
            vec!["next", "--all", "--json"],
            next(none, None, true, true, None),
        ),
        (
            vec!["next", "--why", "2.3"],
            next(none, None, false, false, Some("2.3")),
        ),
        (
            vec!["next", "--why=auth:2.3", "--json"],
            next(none, None, true, false, Some("auth:2.3")),
        ),
        (
            vec!["next", "--why", "help"],
            next(none, None, false, false, Some("help")),
        ),
        (
            vec!["next", "--plan", "auth", "-n", "3", "--json"],
            next(auth, Some(3), true, false, None),
        ),
        (
            vec!["next", "-p", "docs/plans/auth.md"],
            next((Some("docs/plans/auth.md"), None), None, false, false, None),
        ),
        (vec!["next", "-pauth"], next(auth, None, false, false, None)),
        (
            vec!["next", "-p=auth"],
            next(auth, None, false, false, None),
        ),
        (
            vec!["next", "--plan=auth"],
            next(auth, None, false, false, None),
        ),
        (
            vec!["next", "--manifest", "../repo/plans.toml", "--json"],
            next((None, Some("../repo/plans.toml")), None, true, false, None),
        ),
        (
            vec![
                "next", "-m", "p.toml", "-p", "a", "-n", "1", "--all", "--why", "V2",
            ],
            next(
                (Some("a"), Some("p.toml")),
                Some(1),
                false,
                true,
                Some("V2"),
            ),
        ),
        (
            vec!["next", "-mp.toml"],
            next((None, Some("p.toml")), None, false, false, None),
        ),
        (
            vec!["next", "--manifest=p.toml", "--plan=x=y"],
            next((Some("x=y"), Some("p.toml")), None, false, false, None),
        ),
        (
            vec!["next", "--why", "a b", "--plan", "été"],
            next((Some("été"), None), None, false, false, Some("a b")),
        ),
    ];
    for (line, want) in cases {
        assert_eq!(read(&line), want, "{line:?}");
    }
}

/// Lines clap refuses (exit 2, clap's message), among them the ones a fast path could have
/// guessed at.
#[test]
fn lines_clap_refuses() {
    for line in [
        vec!["next", "-n"],
        vec!["next", "-n", "x"],
        vec!["next", "-n", "-1"],
        vec!["next", "-n", "5", "-n", "6"],
        vec!["next", "--json", "--json"],
        vec!["next", "--json=true"],
        vec!["next", "--why"],
        vec!["next", "--bogus"],
        vec!["next", "1.2"],
        vec!["next", "--jso"],
        vec!["task", "done"],
        vec!["task", "done", "1.2", "1.3"],
        vec!["task", "done", "1.2", "--note"],
        vec!["task", "done", "1.2", "--note", "a", "--note", "b"],
        vec!["task", "done", "1.2", "--error", "x"],
        vec!["task", "fail", "1.2", "--note", "x"],
        vec!["task", "start", "1.2", "--reason", "x"],
        vec!["task", "done", "1.2", "--json", "--json"],
        vec!["task", "done", "1.2", "--json=1"],
        vec!["task", "done", "1.2", "-x"],
        vec!["task", "done", "-1"],
        vec!["task", "done", "1.2", "-p"],
        vec!["task", "finish", "1.2"],
        vec!["task"],
        vec!["nex"],
        // `--manifest` is an option of the subcommands, not of `orch` itself.
        vec!["--manifest", "p.toml", "task", "done", "1.2"],
        vec!["--manifest", "p.toml", "next"],
        vec!["next", "help"],
        vec!["--color", "sometimes", "status"],
    ] {
        let e = Cli::try_parse_from(args(&line)).expect_err(&format!("{line:?}"));
        assert!(e.use_stderr(), "{line:?}: {e}");
    }
}

/// Help and version are clap's, on stdout (exit 0), for `task` and `next` as for the rest.
#[test]
fn help_and_version_on_task_and_next() {
    for (line, kind) in [
        (
            vec!["task", "done", "1.2", "--help"],
            ErrorKind::DisplayHelp,
        ),
        (vec!["task", "-h"], ErrorKind::DisplayHelp),
        (vec!["task", "help", "done"], ErrorKind::DisplayHelp),
        (vec!["next", "--help"], ErrorKind::DisplayHelp),
        (vec!["--version"], ErrorKind::DisplayVersion),
    ] {
        let e = Cli::try_parse_from(args(&line)).expect_err(&format!("{line:?}"));
        assert_eq!(e.kind(), kind, "{line:?}");
        assert!(!e.use_stderr(), "{line:?}");
    }
}

#[test]
fn color_is_a_global_option() {
    for (line, want) in [
        (vec!["status"], ColorWhen::Auto),
        (vec!["--color", "never", "status"], ColorWhen::Never),
        (vec!["status", "--color=always"], ColorWhen::Always),
        (
            vec!["task", "done", "1.2", "--color", "never"],
            ColorWhen::Never,
        ),
    ] {
        assert_eq!(read(&line).color, want, "{line:?}");
    }
}

/// The definition holds together (clap's own checks: no clashing names, valid defaults).
#[test]
fn the_definition_is_consistent() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}

/// The `--color` of a line clap refuses or answers with help, wherever it stands.
#[test]
fn color_of_lines_clap_refuses_or_answers_with_help() {
    for (line, want) in [
        (vec!["--color", "never", "next", "--help"], ColorWhen::Never),
        (
            vec!["--color", "always", "next", "--help"],
            ColorWhen::Always,
        ),
        (vec!["next", "--color=always", "-h"], ColorWhen::Always),
        (vec!["--color", "always", "help", "next"], ColorWhen::Always),
        (vec!["--color", "always", "--version"], ColorWhen::Always),
        (vec!["--color", "never", "task", "done"], ColorWhen::Never),
        (vec!["--color", "always", "nex"], ColorWhen::Always),
        (
            vec!["task", "done", "1.2", "--color", "never", "--bogus"],
            ColorWhen::Never,
        ),
        // Clap reads up to the first error.
        (
            vec!["task", "done", "1.2", "--bogus", "--color", "never"],
            ColorWhen::Auto,
        ),
        (vec!["next", "--help"], ColorWhen::Auto),
        (vec!["--color", "sometimes", "status"], ColorWhen::Auto),
    ] {
        assert_eq!(
            super::args::color_of_failed_line(args(&line)),
            want,
            "{line:?}"
        );
    }
}
