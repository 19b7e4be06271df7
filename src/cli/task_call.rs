//! The fast path of the command line for `orch task ...`, the command agents run most.

use clap::{Parser, Subcommand};

use super::args::{Cli, Command, TaskAction};

/// `orch task ...` alone: what agents run once or twice per task. Parsing it builds the `task`
/// subcommand only, not the definitions of every other command (a seventh of the CPU time of a
/// whole `orch task done` before this). The arguments after `task` are read by the same
/// [`TaskAction`] as in [`Cli`], so they mean the same.
#[derive(Parser, Debug)]
#[command(name = "orch")]
struct TaskCli {
    #[command(subcommand)]
    command: TaskOnly,
}

#[derive(Subcommand, Debug)]
enum TaskOnly {
    Task {
        #[command(subcommand)]
        action: TaskAction,
    },
}

/// The command line as [`Cli`] reads it, when it is an `orch task ...` call that
/// [`TaskCli`] reads without trouble. `None` for anything else, and for whatever asks for help or
/// the version or is in error: the full parser then reads it (and writes its messages), so its
/// messages and help stay the only ones.
pub(super) fn parse(args: &[std::ffi::OsString]) -> Option<Cli> {
    if args.get(1).map(|a| a.as_os_str()) != Some("task".as_ref()) {
        return None;
    }
    let asks_for_help = args[2..].iter().any(|a| {
        let a = a.to_string_lossy();
        a == "help"
            || a.starts_with("-h")
            || a.starts_with("--h")
            || a.starts_with("-V")
            || a.starts_with("--v")
    });
    if asks_for_help {
        return None;
    }
    let TaskCli {
        command: TaskOnly::Task { action },
    } = TaskCli::try_parse_from(args).ok()?;
    Some(Cli {
        command: Command::Task { action },
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use clap::Parser;

    use super::*;

    fn args(line: &[&str]) -> Vec<OsString> {
        std::iter::once("orch")
            .chain(line.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// Every `orch task` call the fast path reads, it reads as the full parser does; the others
    /// (help, version, errors, other commands) it leaves to the full parser.
    #[test]
    fn the_task_fast_path_reads_what_the_full_parser_reads() {
        let read = [
            vec!["task", "done", "1.2"],
            vec!["task", "done", "1.2", "--note", "all green", "--json"],
            vec![
                "task",
                "done",
                "--plan",
                "auth",
                "2.3.1",
                "--manifest",
                "../x/plans.toml",
            ],
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
            vec!["task", "skip", "1.1", "--reason=obsolete", "--force"],
            vec!["task", "start", "1.1", "--force"],
            vec!["task", "reset", "1.1"],
            vec!["task", "done", "--", "-1"],
        ];
        for line in read {
            let fast = parse(&args(&line)).unwrap_or_else(|| panic!("{line:?} read"));
            let full = Cli::try_parse_from(args(&line)).expect("full parser reads it");
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{line:?}");
        }
        let left = [
            vec!["task", "done", "1.2", "--help"],
            vec!["task", "-h"],
            vec!["task", "help", "done"],
            vec!["task", "done", "-V"],
            vec!["task", "done"],
            vec!["task", "done", "1.2", "--bogus"],
            vec!["task", "finish", "1.2"],
            vec!["task"],
            vec!["next", "-n", "1"],
            vec!["--manifest", "p.toml", "task", "done", "1.2"],
            vec![],
        ];
        for line in left {
            assert!(parse(&args(&line)).is_none(), "{line:?}");
        }
    }
}
