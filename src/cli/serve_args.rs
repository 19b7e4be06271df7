//! `orch serve`'s arguments and help.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;

pub(super) const ABOUT: &str = "Serve a live web view of the run on 127.0.0.1: plans, tasks, graph, timeline, questions, logs.";

pub(super) const LONG: &str = "\
Serve a live web view of the run on 127.0.0.1 (a port chosen, or --port): the plans with their \
progress and outcome, each plan's tasks and their states, the dependency graph, a timeline of \
attempts, the questions waiting, tokens and cost, and a task's log tail on click. The page \
updates as orch's event log grows, whether `orch up` runs or not; everything is served from \
this binary (no CDN).

It prints the page's address once, with a fresh random token in its fragment (`#token=...`): \
open that address. Every data route (`/api/...`) needs the token (`Authorization: Bearer`), so \
no other program of this machine reads the run or takes the page's live streams.

Read-only unless started with --control: the page can then answer questions, say, pause, \
resume, retry and stop (the control verbs of `orch mcp --allow-control`). A control request \
needs the token, from the served origin and not cross-site.

It answers only requests whose `Host` is the address it serves (no DNS rebinding), and binds \
only the loopback address unless given --bind (then it says so). Exit codes: 0 stopped (Ctrl-C), \
1 it could not start (the port taken), 2 invalid input (a bad manifest).";

pub(super) const EXAMPLES: &str = "\
Examples:
  orch serve
  orch serve --port 8080
  orch serve --control";

#[derive(Args, Debug, PartialEq)]
pub(super) struct Serve {
    /// The manifest the page shows, instead of the `plans.toml` found by walking up from the
    /// current directory. Example: `--manifest ../repo/plans.toml`.
    #[arg(long, short = 'm', value_name = "PATH")]
    pub(super) manifest: Option<PathBuf>,
    /// The port to listen on; 0 (the default) lets the system choose one. Example: `--port 8080`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(super) port: u16,
    /// The address to listen on instead of 127.0.0.1. Anything but a loopback address lets
    /// other machines reach the page: orch says so when it starts. Example: `--bind 0.0.0.0`.
    #[arg(long, value_name = "ADDR")]
    pub(super) bind: Option<IpAddr>,
    /// Let the page act (answer, say, pause, resume, retry, stop), behind the token it prints.
    /// Example: `orch serve --control`.
    #[arg(long)]
    pub(super) control: bool,
}
