//! `orch completions SHELL` and `orch man [COMMAND]`: both written from the clap definition
//! ([`Cli`]), so they list exactly the commands and options orch reads.

use std::io::Write;

use anyhow::{Context, anyhow};
use clap::CommandFactory;

use crate::error::{CliError, exit};

use super::args::Cli;

/// Writes the completion script for `shell` on stdout.
pub(super) fn completions(shell: clap_complete::Shell) -> Result<u8, CliError> {
    // clap_complete offers hidden subcommands too (`demo-agent`, `session-exec`: orch's own
    // plumbing): the script is written for orch without them.
    let full = Cli::command();
    let mut cmd = clap::Command::new("orch")
        .version(env!("CARGO_PKG_VERSION"))
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "orch", &mut out);
    write_out(&out)
}

/// Writes orch's man page (or `command`'s: `orch-merge`) on stdout.
pub(super) fn man(command: Option<&str>) -> Result<u8, CliError> {
    let mut cmd = Cli::command();
    cmd.build();
    let page = match command {
        None => cmd,
        Some(name) => {
            // Built, a subcommand is named `orch-merge` in the page and `orch merge` in the usage.
            cmd.find_subcommand(name)
                .filter(|s| !s.is_hide_set())
                .ok_or_else(|| {
                    CliError::invalid(anyhow!("no command `{name}`"))
                        .with_hint("`orch --help` lists the commands")
                })?
                .clone()
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .source(format!("orch {}", env!("CARGO_PKG_VERSION")))
        .render(&mut out)
        .context("rendering the man page")?;
    write_out(&out)
}

/// `bytes` on stdout; a closed pipe (`orch man | head`) is not an error.
fn write_out(bytes: &[u8]) -> Result<u8, CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to stdout").into())
        }
        _ => Ok(exit::OK),
    }
}
