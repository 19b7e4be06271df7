//! The fast path of the command line for `orch task ...`, the command agents run most.

use clap::{Parser, Subcommand};

use super::args::{Cli, Command, TaskAction, TaskCommon};
use super::hand;

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
    if let Some(cli) = by_hand(args) {
        return Some(cli);
    }
    let TaskCli {
        command: TaskOnly::Task { action },
    } = TaskCli::try_parse_from(args).ok()?;
    Some(Cli {
        command: Command::Task { action },
    })
}

/// `orch task ACTION ID [flags]` read without clap, for the lines agents write: every flag
/// of the five actions, long or short, each at most once, values that do not begin with `-`.
/// `None` for anything else: [`TaskCli`] then reads it (and the full parser after it), so clap's
/// messages stay the only ones. Building even the `task` subcommand alone with clap cost a
/// tenth of the instructions of a whole `orch task done` on a small plan.
fn by_hand(args: &[std::ffi::OsString]) -> Option<Cli> {
    let action = args.get(2)?.to_str()?;
    // The flag an action takes with a value of its own (`--note`, `--error`, `--reason`).
    let own = match action {
        "done" => Some("note"),
        "fail" => Some("error"),
        "skip" => Some("reason"),
        "start" | "reset" => None,
        _ => return None,
    };
    let mut target = super::args::Target::default();
    let (mut id, mut force, mut json, mut text) = (None, false, false, None);
    let mut rest = args[3..].iter();
    while let Some(arg) = rest.next() {
        let arg = arg.to_str()?;
        if !arg.starts_with('-') {
            if id.replace(arg.to_string()).is_some() || arg.is_empty() {
                return None;
            }
            continue;
        }
        let (name, attached) = hand::split(arg, &[('p', "plan"), ('m', "manifest")])?;
        let mut value = || hand::value(attached, &mut rest);
        match name {
            "plan" if target.plan.is_none() => target.plan = Some(value()?),
            "manifest" if target.manifest.is_none() => {
                target.manifest = Some(value()?.into());
            }
            "force" if !force && attached.is_none() => force = true,
            "json" if !json && attached.is_none() => json = true,
            n if Some(n) == own && text.is_none() => text = Some(value()?),
            _ => return None,
        }
    }
    let common = TaskCommon {
        target,
        id: id?,
        force,
        json,
    };
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

    /// The hand-written reader reads what clap reads, or leaves the line to clap.
    #[test]
    fn the_hand_reader_reads_what_clap_reads() {
        let read = [
            vec!["task", "done", "1.2"],
            vec!["task", "done", "1.2", "--note", "all green", "--json"],
            vec!["task", "done", "--json", "1.2", "--note=a=b"],
            vec![
                "task",
                "done",
                "2.3.1",
                "--plan",
                "auth",
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
            vec!["task", "fail", "1.1", "-pauth", "-mp.toml", "--force"],
            vec!["task", "fail", "1.1", "-p=auth", "--error=x"],
            vec!["task", "skip", "1.1", "--reason=obsolete", "--force"],
            vec![
                "task",
                "skip",
                "--plan=été",
                "1.1",
                "--reason",
                "not needed",
            ],
            vec!["task", "start", "1.1", "--force", "--json"],
            vec!["task", "reset", "1.1"],
            vec!["task", "reset", "--force", "1.1", "--plan", "p"],
        ];
        for line in read {
            let fast = by_hand(&args(&line)).unwrap_or_else(|| panic!("{line:?} read"));
            let full = Cli::try_parse_from(args(&line))
                .unwrap_or_else(|e| panic!("{line:?}: the full parser reads it: {e}"));
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{line:?}");
        }
        let left = [
            vec!["task", "done"],
            vec!["task", "done", "1.2", "1.3"],
            vec!["task", "done", "1.2", "--note"],
            vec!["task", "done", "1.2", "--note", "-x"],
            vec!["task", "done", "1.2", "--note="],
            vec!["task", "done", "1.2", "--note", "a", "--note", "b"],
            vec!["task", "done", "1.2", "--error", "x"],
            vec!["task", "fail", "1.2", "--note", "x"],
            vec!["task", "start", "1.2", "--reason", "x"],
            vec!["task", "done", "1.2", "--json", "--json"],
            vec!["task", "done", "1.2", "--json=1"],
            vec!["task", "done", "1.2", "--force=yes"],
            vec!["task", "done", "1.2", "-x"],
            vec!["task", "done", "1.2", "-fp", "a"],
            vec!["task", "done", "--", "-1"],
            vec!["task", "done", "-1"],
            vec!["task", "done", "1.2", "--plan", ""],
            vec!["task", "done", "1.2", "-p"],
            vec!["task", "done", "1.2", "--pla", "x"],
            vec!["task", "finish", "1.2"],
            vec!["task", "help"],
        ];
        for line in left {
            assert!(by_hand(&args(&line)).is_none(), "{line:?}");
        }
        // Not UTF-8.
        {
            use std::os::unix::ffi::OsStringExt;
            let mut line = args(&["task", "done", "1.2", "--note"]);
            line.push(OsString::from_vec(vec![0xff, b'a']));
            assert!(by_hand(&line).is_none());
        }
    }
}
