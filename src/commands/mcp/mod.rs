//! `orch mcp`: a Model Context Protocol server on stdin and stdout, for the agent that leads a
//! run (Claude Code, Codex, Gemini CLI). Its tools are orch's verbs, each returning what the verb's
//! `--json` prints (`spec.rs` what a tool is made of, `tools.rs` the read verbs and the command
//! lines arguments make, `control.rs` the control verbs, `commands::orch_child` a verb run, `server.rs` the
//! protocol); `wait` blocks until the run's next event of a kind asked for
//! (`commands::run_events`, shared with `orch serve`), and `up` starts a run detached (`up.rs`). The control verbs are there only
//! when a person starts it with `--allow-control`.

mod control;
mod server;
mod spec;
mod tools;
mod up;

use std::path::PathBuf;

use anyhow::anyhow;

use crate::error::{CliError, CliResult, exit};

/// What `orch mcp` was given.
pub(crate) struct McpArgs {
    /// The manifest every tool works on, instead of the one found from the current directory.
    pub(crate) manifest: Option<PathBuf>,
    /// The control verbs are listed and callable.
    pub(crate) allow_control: bool,
}

/// Serves until the client closes the session (exit 0), or fails to start it (exit 1).
pub(crate) fn run(args: McpArgs) -> CliResult<u8> {
    let manifest = match args.manifest {
        Some(m) => Some(
            std::path::absolute(&m)
                .map_err(|e| CliError::invalid(anyhow!("`--manifest {}`: {e}", m.display())))?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::new(exit::FAILURE, anyhow!("cannot start the runtime: {e}")))?;
    let server = server::Server {
        manifest,
        control: args.allow_control,
    };
    runtime
        .block_on(server.serve_stdio())
        .map_err(|e| CliError::new(exit::FAILURE, anyhow!(e)))?;
    Ok(exit::OK)
}

/// The control verbs `orch serve --control` carries out: the MCP server's, with its checks.
pub(crate) const SERVE_CONTROL: [&str; 6] = ["answer", "say", "pause", "resume", "retry", "stop"];

/// The command line (after `orch`) of control verb `verb` called with `args`, checked as the MCP
/// server checks a control tool's call: known arguments of the right kinds, a plan named and
/// never a path, values as `--name=value` or as words after `--` (never options); `manifest`
/// put before the words. `Err` says what is wrong with the call.
pub(crate) fn control_argv(
    verb: &str,
    args: &serde_json::Map<String, serde_json::Value>,
    manifest: Option<&std::path::Path>,
) -> Result<Vec<String>, String> {
    let spec = tools::find(verb)
        .filter(|s| s.control && SERVE_CONTROL.contains(&s.name))
        .ok_or_else(|| format!("no control verb `{}`", crate::untrusted::text::Shown(verb)))?;
    let checked = tools::checked(spec, true, args).map_err(|e| e.0)?;
    let server = server::Server {
        manifest: manifest.map(std::path::Path::to_path_buf),
        control: true,
    };
    Ok(server.with_manifest(tools::argv(spec, &checked), &[]))
}
