//! The command line: clap definitions, dispatch, and how errors reach the user.
//! Nothing below this module knows about clap.

mod args;
mod dispatch;
mod hand;
mod next_call;
mod task_call;

use std::process::ExitCode;

use clap::Parser;

use crate::error::{CliError, exit};

pub use args::Cli;

/// Parses the command line, runs the command, prints errors; returns the exit code.
pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = match task_call::parse(&args).or_else(|| next_call::parse(&args)) {
        Some(cli) => Ok(cli),
        None => Cli::try_parse_from(&args),
    };
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::INVALID
            } else {
                exit::OK
            });
        }
    };
    match dispatch::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            report(&e);
            ExitCode::from(e.code)
        }
    }
}

fn report(e: &CliError) {
    eprintln!("error: {}", e.error);
    for cause in e.error.chain().skip(1) {
        eprintln!("caused by: {cause}");
    }
    if let Some(hint) = &e.hint {
        eprintln!("hint: {hint}");
    }
}
