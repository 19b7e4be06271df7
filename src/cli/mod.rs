//! The command line: clap definitions, dispatch, and how errors reach the user.
//! Nothing below this module knows about clap.

mod arg_types;
mod args;
mod dispatch;
mod generate;
mod helper_args;
mod internal;
mod mcp_args;
mod serve_args;
mod task_args;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::color::{self, Stream};
use crate::error::{CliError, exit};

pub(crate) use args::Cli;

/// Parses the command line, runs the command, prints errors; returns the exit code.
pub fn main() -> ExitCode {
    // orch's busiest helpers read their own arguments by hand (`helper_args`): the wrapper
    // beside every running agent, the start of each git run, an agent's confinement;
    // everything else as below.
    let mut args = std::env::args_os().skip(1);
    match args.next() {
        Some(verb) if verb == "session-exec" => return session_exec(args),
        Some(verb) if verb == "git-exec" => return git_exec(args),
        Some(verb) if verb == "sandbox-exec" => return sandbox_exec(args),
        _ => {}
    }
    let cli = match Cli::try_parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            color::choose(args::color_of_failed_line(std::env::args_os()).into());
            return ExitCode::from(clap_error(&e));
        }
    };
    color::choose(cli.color.into());
    diagnostics();
    crate::git::confine_runs();
    finish(dispatch::run(cli))
}

/// The end of every command: orch's private temporary directory removed, the error reported;
/// the exit code.
fn finish(ran: Result<u8, CliError>) -> ExitCode {
    crate::sandbox::remove_tmp_root();
    match ran {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            report(&e);
            ExitCode::from(e.code)
        }
    }
}

/// `orch-exec`: the small executable installed beside orch ([`crate::process::session::helper`])
/// that runs orch's busiest helpers, with the same verbs and arguments as orch's own:
/// `orch-exec session-exec …`, `orch-exec git-exec …` and `orch-exec sandbox-exec …`.
pub fn exec_main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    match args.next() {
        Some(verb) if verb == "session-exec" => session_exec(args),
        Some(verb) if verb == "git-exec" => git_exec(args),
        Some(verb) if verb == "sandbox-exec" => sandbox_exec(args),
        _ => {
            helper_usage("orch-exec runs `session-exec`, `git-exec` or `sandbox-exec`".to_string())
        }
    }
}

/// A helper's arguments refused: what was wrong and the usage, exit code 2.
fn helper_usage(why: String) -> ExitCode {
    let e = CliError::invalid(anyhow::anyhow!("{why}\n{}", helper_args::USAGE));
    report(&e);
    ExitCode::from(e.code)
}

/// The wrapper, its arguments `args` read by hand ([`helper_args`]).
fn session_exec(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    match helper_args::parse_session(args) {
        Ok(parsed) => finish(dispatch::session_exec(parsed)),
        Err(e) => helper_usage(e),
    }
}

/// A confined git run, its arguments `args` read by hand ([`helper_args`]).
fn git_exec(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    match helper_args::parse_git(args) {
        Ok(a) => finish(crate::commands::sandbox_exec::run_git(
            (&a.exec, a.unconfined),
            a.parent,
            &a.argv,
        )),
        Err(e) => helper_usage(e),
    }
}

/// An agent's (or a check's, or a command's of code an agent wrote) confinement, its arguments
/// `args` read by hand ([`helper_args`]).
fn sandbox_exec(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    match helper_args::parse_sandbox(args) {
        Ok(a) => finish(crate::commands::sandbox_exec::run(
            (!a.network_only).then_some(crate::sandbox::Rules {
                write: a.write,
                deny_read: a.deny_read,
                read: a.read,
            }),
            crate::commands::sandbox_exec::Node {
                private_dirs: a.private_dir,
                if_supported: a.if_supported,
            },
            &a.argv,
        )),
        Err(e) => helper_usage(e),
    }
}

/// Prints clap's help, version or error (coloured as `--color` and the environment say);
/// returns the exit code.
fn clap_error(e: &clap::Error) -> u8 {
    let (stream, code) = if e.use_stderr() {
        (Stream::Stderr, exit::INVALID)
    } else {
        (Stream::Stdout, exit::OK)
    };
    let styled = e.render();
    let text = if color::enabled(stream) {
        styled.ansi().to_string()
    } else {
        styled.to_string()
    };
    // A closed pipe (`orch --help | head -1`) is not worth a word.
    let _ = match stream {
        Stream::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
        Stream::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
    };
    code
}

/// `RUST_LOG` diagnostics (`RUST_LOG=orch=debug`) on stderr. Without `RUST_LOG` no subscriber
/// is installed: every `tracing` call site is then a disabled no-op and stderr is as it was.
fn diagnostics() {
    if std::env::var_os("RUST_LOG").is_none_or(|v| v.is_empty()) {
        return;
    }
    let filter = tracing_subscriber::EnvFilter::from_default_env();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color::enabled(Stream::Stderr))
        .try_init();
}

/// The `error:`, `caused by:` and `hint:` lines; what they say may quote an agent (a cause, a
/// file name), so it is shown with control characters escaped.
fn report(e: &CliError) {
    use crate::untrusted::escaped_lines;
    let on = color::enabled(Stream::Stderr);
    let error = e.error.to_string();
    eprintln!(
        "{} {}",
        color::paint(on, "31", "error:"),
        escaped_lines(&error)
    );
    for cause in e.error.chain().skip(1) {
        let cause = cause.to_string();
        eprintln!(
            "{} {}",
            color::paint(on, "33", "caused by:"),
            escaped_lines(&cause)
        );
    }
    if let Some(hint) = &e.hint {
        eprintln!(
            "{} {}",
            color::paint(on, "36", "hint:"),
            escaped_lines(hint)
        );
    }
}
