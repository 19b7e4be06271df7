//! The arguments of orch's busiest helpers, read by hand: the wrapper every running agent,
//! check and resolver is started under (`orch-exec session-exec ARGS`), the confined start of
//! each git run (`orch-exec git-exec ARGS`) and an agent's confinement (`orch-exec sandbox-exec
//! ARGS`, the arguments clap reads for the hidden `orch sandbox-exec`). `orch-exec` is the small executable installed beside
//! orch ([`crate::process::session::helper`]); `orch session-exec ARGS` and `orch git-exec
//! ARGS` are the same from orch's own executable, where the small one is missing (a copy of
//! orch alone). A parser of their own, not clap's: a wrapper stays alive beside every running
//! agent and a git run starts through the other several times per task, so what they load and
//! touch is what each costs orch in memory and in CPU.
//!
//! `session-exec [--log-max BYTES] [--grace-ms MS] [--keep] [--gate] [--stdin PATH] [--input]
//! [--stream-json] [--turn-ended PATH] [--ended PATH] -- ARGV…` and `git-exec [--parent PID]
//! [--exec PATH]… [--unconfined] -- ARGV…`, each option also as `--name=value`.

use std::ffi::OsString;
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

/// What a git run is started with ([`crate::commands::sandbox_exec::run_git`]).
#[derive(Debug, PartialEq)]
pub(crate) struct GitExecArgs {
    /// Files, or directories, beneath which files may be executed.
    pub(crate) exec: Vec<PathBuf>,
    /// Execute anything (your git configuration names a driver, or the kernel has no
    /// Landlock): only the end with the parent holds.
    pub(crate) unconfined: bool,
    /// The orch process that runs this git: when it dies (a `kill -9`), git is killed with it,
    /// so that a checkout it started stops writing before the next orch cleans up.
    pub(crate) parent: Option<u32>,
    /// The program to run, confined, and its arguments.
    pub(crate) argv: Vec<OsString>,
}

/// What an agent, a check or a command of code an agent wrote is confined with
/// ([`crate::commands::sandbox_exec::run`]).
#[derive(Debug, PartialEq)]
pub(crate) struct SandboxExecArgs {
    /// Paths the process may write beneath.
    pub(crate) write: Vec<PathBuf>,
    /// Paths it may not read beneath.
    pub(crate) deny_read: Vec<PathBuf>,
    /// Paths it may read beneath, denied above or not.
    pub(crate) read: Vec<PathBuf>,
    /// The network's step alone, no file rules.
    pub(crate) network_only: bool,
    /// Private directories made when missing, then writable.
    pub(crate) private_dir: Vec<PathBuf>,
    /// Where this machine cannot confine, run unconfined and say so.
    pub(crate) if_supported: bool,
    /// The program to run, confined, and its arguments.
    pub(crate) argv: Vec<String>,
}

/// The usage lines of an error.
pub(crate) const USAGE: &str = "usage: orch-exec session-exec [--log-max BYTES] [--grace-ms MS] [--keep] [--gate] [--stdin PATH] [--input] [--stream-json] [--turn-ended PATH] [--ended PATH] -- ARGV…
       orch-exec git-exec [--parent PID] [--exec PATH]… [--unconfined] -- ARGV…
       orch-exec sandbox-exec [--write PATH]… [--deny-read PATH]… [--read PATH]… [--network-only] [--private-dir PATH]… [--if-supported] -- ARGV…
(orch's helpers, run by orch, not by people)";

/// One option of `args`: its name and its value when given as `--name=value`; `None` at `--`
/// (the rest is the program's).
fn next_option(
    args: &mut impl Iterator<Item = OsString>,
) -> Result<Option<(String, Option<String>)>, String> {
    let Some(arg) = args.next() else {
        return Ok(None);
    };
    let arg = arg
        .into_string()
        .map_err(|a| format!("an option that is not UTF-8: {}", a.to_string_lossy()))?;
    if arg == "--" {
        return Ok(None);
    }
    Ok(Some(match arg.split_once('=') {
        Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
        _ => (arg, None),
    }))
}

/// The value of option `name`: `inline` (`--name=value`), else the next argument.
fn value_of(
    name: &str,
    inline: Option<String>,
    args: &mut impl Iterator<Item = OsString>,
) -> Result<String, String> {
    match inline {
        Some(v) => Ok(v),
        None => args
            .next()
            .and_then(|v| v.into_string().ok())
            .ok_or_else(|| format!("`{name}` needs a value")),
    }
}

fn number<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
    v.parse::<T>()
        .map_err(|_| format!("`{name}` takes a number, not `{v}`"))
}

fn flag(name: &str, inline: Option<String>) -> Result<bool, String> {
    match inline {
        Some(_) => Err(format!("`{name}` takes no value")),
        None => Ok(true),
    }
}

/// The program to run and its arguments (what follows `--`), each UTF-8; never none.
fn program(args: impl Iterator<Item = OsString>) -> Result<Vec<String>, String> {
    let argv = args
        .map(|a| {
            a.into_string()
                .map_err(|r| format!("an argument that is not UTF-8: {}", r.to_string_lossy()))
        })
        .collect::<Result<Vec<String>, String>>()?;
    if argv.is_empty() {
        return Err("no program to run after `--`".to_string());
    }
    Ok(argv)
}

/// Parses `orch-exec git-exec`'s arguments (and `orch git-exec`'s), after the verb.
pub(crate) fn parse_git<I: IntoIterator<Item = OsString>>(args: I) -> Result<GitExecArgs, String> {
    let mut a = GitExecArgs {
        exec: Vec::new(),
        unconfined: false,
        parent: None,
        argv: Vec::new(),
    };
    let mut args = args.into_iter();
    while let Some((name, inline)) = next_option(&mut args)? {
        match name.as_str() {
            "--exec" => a.exec.push(value_of(&name, inline, &mut args)?.into()),
            "--parent" => a.parent = Some(number(&name, value_of(&name, inline, &mut args)?)?),
            "--unconfined" => a.unconfined = flag(&name, inline)?,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    a.argv = args.collect();
    if a.argv.is_empty() {
        return Err("no program to run after `--`".to_string());
    }
    if a.unconfined && !a.exec.is_empty() {
        return Err("`--unconfined` and `--exec` exclude each other".to_string());
    }
    Ok(a)
}

/// Parses `orch-exec sandbox-exec`'s arguments (those of `orch sandbox-exec`), after the verb.
pub(crate) fn parse_sandbox<I: IntoIterator<Item = OsString>>(
    args: I,
) -> Result<SandboxExecArgs, String> {
    let mut a = SandboxExecArgs {
        write: Vec::new(),
        deny_read: Vec::new(),
        read: Vec::new(),
        network_only: false,
        private_dir: Vec::new(),
        if_supported: false,
        argv: Vec::new(),
    };
    let mut args = args.into_iter();
    while let Some((name, inline)) = next_option(&mut args)? {
        match name.as_str() {
            "--write" => a.write.push(value_of(&name, inline, &mut args)?.into()),
            "--deny-read" => a.deny_read.push(value_of(&name, inline, &mut args)?.into()),
            "--read" => a.read.push(value_of(&name, inline, &mut args)?.into()),
            "--private-dir" => a
                .private_dir
                .push(value_of(&name, inline, &mut args)?.into()),
            "--network-only" => a.network_only = flag(&name, inline)?,
            "--if-supported" => a.if_supported = flag(&name, inline)?,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    a.argv = program(args)?;
    if a.network_only && !(a.write.is_empty() && a.deny_read.is_empty() && a.read.is_empty()) {
        return Err("`--network-only` excludes `--write`, `--deny-read` and `--read`".to_string());
    }
    Ok(a)
}

/// Parses `orch-exec session-exec`'s arguments (and `orch session-exec`'s), after the verb.
pub(crate) fn parse_session<I: IntoIterator<Item = OsString>>(
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
    while let Some((name, inline)) = next_option(&mut args)? {
        match name.as_str() {
            "--log-max" => a.log_max = number(&name, value_of(&name, inline, &mut args)?)?,
            "--grace-ms" => a.grace_ms = number(&name, value_of(&name, inline, &mut args)?)?,
            "--stdin" => a.stdin = Some(value_of(&name, inline, &mut args)?.into()),
            "--turn-ended" => a.turn_ended = Some(value_of(&name, inline, &mut args)?.into()),
            "--ended" => a.ended = Some(value_of(&name, inline, &mut args)?.into()),
            "--keep" => a.keep = flag(&name, inline)?,
            "--gate" => a.gate = flag(&name, inline)?,
            "--input" => a.input = flag(&name, inline)?,
            "--stream-json" => a.stream_json = flag(&name, inline)?,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    a.argv = program(args)?;
    Ok(a)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args(s: &[&str]) -> Result<SessionExecArgs, String> {
        parse_session(s.iter().map(OsString::from))
    }

    fn git(s: &[&str]) -> Result<GitExecArgs, String> {
        parse_git(s.iter().map(OsString::from))
    }

    fn sandbox(s: &[&str]) -> Result<SandboxExecArgs, String> {
        parse_sandbox(s.iter().map(OsString::from))
    }

    #[test]
    fn a_confinement_as_clap_read_it() {
        let a = sandbox(&[
            "--write",
            "/w",
            "--write=/v",
            "--deny-read",
            "/d",
            "--read=/r",
            "--private-dir",
            "/p",
            "--if-supported",
            "--",
            "agent",
            "--write",
            "x",
        ])
        .unwrap();
        assert_eq!(a.write, [PathBuf::from("/w"), PathBuf::from("/v")]);
        assert_eq!(a.deny_read, [PathBuf::from("/d")]);
        assert_eq!(a.read, [PathBuf::from("/r")]);
        assert_eq!(a.private_dir, [PathBuf::from("/p")]);
        assert!(a.if_supported && !a.network_only);
        assert_eq!(a.argv, ["agent", "--write", "x"]);
        let n = sandbox(&["--network-only", "--", "v"]).unwrap();
        assert!(n.network_only && n.write.is_empty());
        for bad in [
            &["--"][..],
            &["--write", "/w"],
            &["--network-only", "--write=/w", "--", "v"],
            &["--network-only=yes", "--", "v"],
            &["--writ", "/w", "--", "v"],
            &["--write"],
            &["agent"],
        ] {
            assert!(sandbox(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_git_run_with_its_parent_and_what_it_may_execute() {
        let a = git(&[
            "--parent=12",
            "--exec",
            "/usr/bin/git",
            "--exec=/usr/lib/git-core",
            "--",
            "/usr/bin/git",
            "--exec=x",
            "status",
        ])
        .unwrap();
        assert_eq!(a.parent, Some(12));
        assert_eq!(
            a.exec,
            [
                PathBuf::from("/usr/bin/git"),
                PathBuf::from("/usr/lib/git-core")
            ]
        );
        assert!(!a.unconfined);
        assert_eq!(a.argv, ["/usr/bin/git", "--exec=x", "status"]);
        let u = git(&["--unconfined", "--", "git"]).unwrap();
        assert!(u.unconfined && u.parent.is_none());
        for (bad, says) in [
            (
                &["--unconfined", "--exec", "/x", "--", "git"][..],
                "exclude each other",
            ),
            (&["--parent", "me", "--", "git"][..], "takes a number"),
            (&["--"][..], "no program"),
            (
                &["--log-max=1", "--", "git"][..],
                "unknown argument `--log-max`",
            ),
        ] {
            let e = git(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
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
