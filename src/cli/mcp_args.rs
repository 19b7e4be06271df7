//! `orch mcp`'s arguments and help.

use std::path::PathBuf;

use clap::Args;

pub(super) const ABOUT: &str =
    "Serve orch's verbs to an agent over the Model Context Protocol (MCP), on stdin and stdout.";

pub(super) const LONG: &str = "\
Serve orch's verbs to an agent over the Model Context Protocol (MCP), on stdin and stdout: the \
agent that leads a run (Claude Code, Codex, Gemini CLI) calls them as tools instead of shelling \
out. Each tool returns what `orch VERB --json` prints: `check`, `status`, `next`, `graph`, \
`simulate`, `conflicts`, `merge` (a dry run), `history`, `logs` (a log's end, at most 1 MiB), \
and `wait`, which blocks until a task finishes, fails or asks a question, a plan finishes or \
the run ends (or a timeout), so that the agent does not poll. A failed call carries orch's exit \
code and message.

The control verbs (`up`, started detached; `task`, `say`, `answer`, `pause`, `resume`, `retry`, \
`stop`, `resolve`, and `merge` that lands) are listed and callable only with --allow-control: \
without it, an agent that reads a hostile task text or log can look but not act.

The client starts the server in the repository (or give --manifest). Exit codes: 0 the client \
ended the session, 1 it could not start, 2 invalid input.";

pub(super) const EXAMPLES: &str = "\
Examples:
  claude mcp add orch -- orch mcp
  claude mcp add orch -- orch mcp --allow-control
  codex: in ~/.codex/config.toml
      [mcp_servers.orch]
      command = \"orch\"
      args = [\"mcp\"]
  gemini: in .gemini/settings.json
      {\"mcpServers\": {\"orch\": {\"command\": \"orch\", \"args\": [\"mcp\"]}}}";

#[derive(Args, Debug, PartialEq)]
pub(super) struct Mcp {
    /// The manifest every tool works on, instead of the `plans.toml` found by walking up from
    /// the directory the client starts the server in. Example: `--manifest ../repo/plans.toml`.
    #[arg(long, short = 'm', value_name = "PATH")]
    pub(super) manifest: Option<PathBuf>,
    /// List and serve the control verbs too (`up`, `task`, `say`, `answer`, `pause`, `resume`,
    /// `retry`, `stop`, `resolve`, and `merge` with `land`). Off by default: give it only to an
    /// agent you would let run those commands. Example: `orch mcp --allow-control`.
    #[arg(long)]
    pub(super) allow_control: bool,
}
