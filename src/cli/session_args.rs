//! The arguments of orch's wrapper, read by hand: `orch-session ARGS` (the small executable
//! installed beside orch, [`crate::process::session`]) and `orch session-exec ARGS` (the same,
//! from orch's own executable, where the small one is missing: a copy of orch alone). A parser
//! of its own, not clap's: the wrapper stays alive beside every running agent, and what it
//! loads and touches is what each one costs orch in memory and in CPU at its start.
//!
//! `[--log-max BYTES] [--grace-ms MS] [--keep] [--gate] [--stdin PATH] [--input]
//! [--stream-json] [--turn-ended PATH] [--ended PATH] -- ARGV…`, each option also as
//! `--name=value`.

use std::path::PathBuf;

/// What the wrapper is told ([`crate::process::wrapper::Options`] and the program to run).
#[derive(Debug, PartialEq)]
pub(crate) struct SessionExecArgs {
    /// The most of the output kept in the log, in bytes: its beginning and its end.
    pub(crate) log_max: u64,
    /// Milliseconds between SIGTERM and SIGKILL when it is stopped.
    pub(crate) grace_ms: u64,
    /// Keep what `ARGV` left running after it succeeded, until stdin's end of file (a setup's
    /// database); its status is written to stdout.
    pub(crate) keep: bool,
    /// Start `ARGV` only once a byte comes on stdin (orch recorded the attempt); run nothing
    /// at its end of file.
    pub(crate) gate: bool,
    /// `ARGV`'s stdin (with `--gate`): this file, else /dev/null.
    pub(crate) stdin: Option<PathBuf>,
    /// With `--gate`: `ARGV`'s stdin is the wrapper's own once the go-ahead came, the pipe orch
    /// writes a person's messages into, one a line (`input = "lines"`).
    pub(crate) input: bool,
    /// With `--gate` and `--stdin`: `ARGV`'s stdin is a pipe the wrapper feeds, the `--stdin`
    /// file first as one user message of the stream-json input format, then what orch writes
    /// on the wrapper's stdin, until orch closes it (`input = "stream-json"`).
    pub(crate) stream_json: bool,
    /// Where to record the end of `ARGV`'s first turn (a stream-json `result` event in its
    /// output).
    pub(crate) turn_ended: Option<PathBuf>,
    /// Where to write how `ARGV` ended (`exit N`, `signal N`) once it did.
    pub(crate) ended: Option<PathBuf>,
    /// The program to run and its arguments.
    pub(crate) argv: Vec<String>,
}

/// The usage line of an error.
pub(crate) const USAGE: &str = "usage: orch-session [--log-max BYTES] [--grace-ms MS] [--keep] [--gate] [--stdin PATH] [--input] [--stream-json] [--turn-ended PATH] [--ended PATH] -- ARGV…  (run by `orch up`, not by people)";

/// Parses the wrapper's arguments (without the program's name, nor `session-exec`).
pub(crate) fn parse<I: IntoIterator<Item = std::ffi::OsString>>(
    args: I,
) -> Result<SessionExecArgs, String> {
    let mut a = SessionExecArgs {
        log_max: crate::manifest::LOG_MAX_DEFAULT,
        grace_ms: 10_000,
        keep: false,
        gate: false,
        stdin: None,
        input: false,
        stream_json: false,
        turn_ended: None,
        ended: None,
        argv: Vec::new(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("an option that is not UTF-8: {}", a.to_string_lossy()))?;
        if arg == "--" {
            for rest in args.by_ref() {
                a.argv.push(rest.into_string().map_err(|r| {
                    format!("an argument that is not UTF-8: {}", r.to_string_lossy())
                })?);
            }
            break;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => args
                    .next()
                    .and_then(|v| v.into_string().ok())
                    .ok_or_else(|| format!("`{name}` needs a value")),
            }
        };
        let number = |name: &str, v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("`{name}` takes a number, not `{v}`"))
        };
        let flag = |on: &mut bool| {
            if inline.is_some() {
                return Err(format!("`{name}` takes no value"));
            }
            *on = true;
            Ok(())
        };
        match name.as_str() {
            "--log-max" => a.log_max = number(&name, value(&name)?)?,
            "--grace-ms" => a.grace_ms = number(&name, value(&name)?)?,
            "--stdin" => a.stdin = Some(value(&name)?.into()),
            "--turn-ended" => a.turn_ended = Some(value(&name)?.into()),
            "--ended" => a.ended = Some(value(&name)?.into()),
            "--keep" => flag(&mut a.keep)?,
            "--gate" => flag(&mut a.gate)?,
            "--input" => flag(&mut a.input)?,
            "--stream-json" => flag(&mut a.stream_json)?,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if a.argv.is_empty() {
        return Err("no program to run after `--`".to_string());
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args(s: &[&str]) -> Result<SessionExecArgs, String> {
        parse(s.iter().map(std::ffi::OsString::from))
    }

    #[test]
    fn both_forms_of_every_option_and_the_program_after_the_dashes() {
        let a = args(&[
            "--log-max=5",
            "--grace-ms",
            "7",
            "--gate",
            "--stdin=/p",
            "--ended",
            "/e",
            "--turn-ended=/t",
            "--stream-json",
            "--",
            "sh",
            "-c",
            "--keep",
        ])
        .unwrap();
        assert_eq!((a.log_max, a.grace_ms), (5, 7));
        assert!(a.gate && a.stream_json && !a.keep && !a.input);
        assert_eq!(a.stdin, Some(PathBuf::from("/p")));
        assert_eq!(a.ended, Some(PathBuf::from("/e")));
        assert_eq!(a.turn_ended, Some(PathBuf::from("/t")));
        assert_eq!(a.argv, ["sh", "-c", "--keep"]);
        let d = args(&["--keep", "--input", "--", "x"]).unwrap();
        assert_eq!(
            (d.log_max, d.grace_ms, d.keep, d.input),
            (crate::manifest::LOG_MAX_DEFAULT, 10_000, true, true)
        );
    }

    #[test]
    fn what_it_refuses_is_said() {
        for (bad, says) in [
            (&["--log-max", "x", "--", "a"][..], "takes a number"),
            (&["--log-max"][..], "needs a value"),
            (&["--keep=1", "--", "a"][..], "takes no value"),
            (&["--frob", "--", "a"][..], "unknown argument `--frob`"),
            (&["--gate"][..], "no program"),
            (&["--gate", "--"][..], "no program"),
        ] {
            let e = args(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
