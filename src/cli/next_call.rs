//! The fast path of the command line for `orch next ...`, which agents run on every turn.

use std::ffi::OsString;
use std::path::PathBuf;

use super::args::{Cli, Command, Target};
use super::hand;

/// `orch next` with the flags it takes, read by hand: clap builds the definitions of every
/// command before it reads one (a fifth of the page faults of starting `orch`, and a few
/// hundred microseconds). `None` for anything this does not read exactly as clap does: help,
/// the version, errors, repeated flags, values that begin with `-` or are empty, arguments
/// that are not UTF-8. The full parser then reads the line (and writes its messages), so its
/// messages and help stay the only ones.
pub(super) fn parse(args: &[OsString]) -> Option<Cli> {
    if args.get(1).map(|a| a.as_os_str()) != Some("next".as_ref()) {
        return None;
    }
    let mut target = Target::default();
    let mut count: Option<usize> = None;
    let mut json = false;
    let mut all = false;
    let mut why: Option<String> = None;
    let mut rest = args[2..].iter();
    while let Some(arg) = rest.next() {
        let (name, attached) = hand::split(arg.to_str()?, SHORT)?;
        // A flag given twice is clap's error to report.
        match name {
            "count" if count.is_none() => {
                let v = hand::value(attached, &mut rest)?;
                if !v.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                count = Some(v.parse().ok()?);
            }
            "json" if !json && attached.is_none() => json = true,
            "all" if !all && attached.is_none() => all = true,
            "why" if why.is_none() => why = Some(hand::value(attached, &mut rest)?),
            "plan" if target.plan.is_none() => {
                target.plan = Some(hand::value(attached, &mut rest)?);
            }
            "manifest" if target.manifest.is_none() => {
                target.manifest = Some(PathBuf::from(hand::value(attached, &mut rest)?));
            }
            _ => return None,
        }
    }
    Some(Cli {
        command: Command::Next {
            target,
            count,
            json,
            all,
            why,
        },
    })
}

/// `orch next`'s short flags.
const SHORT: &[(char, &str)] = &[('n', "count"), ('p', "plan"), ('m', "manifest")];

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn args(line: &[&str]) -> Vec<OsString> {
        std::iter::once("orch")
            .chain(line.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// Every `orch next` line the fast path reads, it reads as clap does.
    #[test]
    fn the_next_fast_path_reads_what_the_full_parser_reads() {
        let read = [
            vec!["next"],
            vec!["next", "-n", "5", "--json"],
            vec!["next", "--json", "-n", "5"],
            vec!["next", "-n5"],
            vec!["next", "-n=5"],
            vec!["next", "--count", "0"],
            vec!["next", "--count=12", "--all"],
            vec!["next", "-n", "007"],
            vec!["next", "--all", "--json"],
            vec!["next", "--why", "2.3"],
            vec!["next", "--why=auth:2.3", "--json"],
            vec!["next", "--why", "help"],
            vec!["next", "--plan", "auth", "-n", "3", "--json"],
            vec!["next", "-p", "docs/plans/auth.md"],
            vec!["next", "-pauth"],
            vec!["next", "-p=auth"],
            vec!["next", "--plan=auth"],
            vec!["next", "--manifest", "../repo/plans.toml", "--json"],
            vec![
                "next", "-m", "p.toml", "-p", "a", "-n", "1", "--all", "--why", "V2",
            ],
            vec!["next", "-mp.toml"],
            vec!["next", "--manifest=p.toml", "--plan=x=y"],
            vec!["next", "--why", "a b", "--plan", "été"],
        ];
        for line in read {
            let fast = parse(&args(&line)).unwrap_or_else(|| panic!("{line:?} read"));
            let full = Cli::try_parse_from(args(&line))
                .unwrap_or_else(|e| panic!("{line:?}: the full parser reads it: {e}"));
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{line:?}");
        }
    }

    /// What the fast path leaves to clap: help, the version, errors (clap's messages), and
    /// lines it is unsure of.
    #[test]
    fn the_next_fast_path_leaves_the_rest_to_the_full_parser() {
        let left = [
            vec!["next", "--help"],
            vec!["next", "-h"],
            vec!["next", "help"],
            vec!["next", "-V"],
            vec!["next", "--version"],
            vec!["next", "-n"],
            vec!["next", "-n", "x"],
            vec!["next", "-n", "-1"],
            vec!["next", "-n", "+5"],
            vec!["next", "-n", "99999999999999999999999"],
            vec!["next", "-n", "5", "-n", "6"],
            vec!["next", "--json", "--json"],
            vec!["next", "--json=true"],
            vec!["next", "--all=1"],
            vec!["next", "--why"],
            vec!["next", "--why", "--json"],
            vec!["next", "--why="],
            vec!["next", "--plan", ""],
            vec!["next", "--bogus"],
            vec!["next", "-x"],
            vec!["next", "-jn5"],
            vec!["next", "1.2"],
            vec!["next", "--"],
            vec!["next", "--jso"],
            vec!["--manifest", "p.toml", "next"],
            vec!["task", "done", "1.2"],
            vec!["nex"],
            vec![],
        ];
        for line in left {
            assert!(parse(&args(&line)).is_none(), "{line:?}");
        }
        // Not UTF-8.
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let mut line = args(&["next", "--plan"]);
            line.push(OsString::from_vec(vec![0xff, b'a']));
            assert!(parse(&line).is_none());
        }
    }

    /// The lines the fast path leaves whose meaning it could have guessed: the full parser
    /// refuses them too, or reads them in a way the fast path would not (so leaving them is
    /// what keeps the two the same).
    #[test]
    fn lines_left_to_clap_that_clap_refuses() {
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
        ] {
            assert!(Cli::try_parse_from(args(&line)).is_err(), "{line:?}");
        }
    }
}
