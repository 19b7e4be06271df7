//! The command line: clap definitions, dispatch, and how errors reach the user.
//! Nothing below this module knows about clap.

mod arg_types;
mod args;
mod dispatch;
mod generate;
mod internal;
mod mcp_args;
mod serve_args;
mod session_args;
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
    // The wrapper of every running agent parses only its own arguments, by hand
    // (`session_args`); everything else as below.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "session-exec")
    {
        return session_exec(std::env::args_os().skip(2));
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

/// `orch-session`: the small executable installed beside orch that every running agent, check
/// and resolver is started under ([`crate::process::session`]); the same as `orch
/// session-exec`.
pub fn session_main() -> ExitCode {
    session_exec(std::env::args_os().skip(1))
}

/// The wrapper, its arguments `args` read by hand ([`session_args`]).
fn session_exec(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let parsed = match session_args::parse(args) {
        Ok(p) => p,
        Err(e) => {
            let e = CliError::invalid(anyhow::anyhow!("{e}\n{}", session_args::USAGE));
            report(&e);
            return ExitCode::from(e.code);
        }
    };
    finish(dispatch::session_exec(parsed))
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
