//! `orch`: a git-worktree multi-plan supervisor.
//!
//! The library holds every concept of the tool; `src/main.rs` only calls [`cli::main`].

pub(crate) mod agent_env;
pub mod agent_output;
pub mod cli;
pub(crate) mod client_state;
pub(crate) mod color;
pub(crate) mod commands;
pub(crate) mod control;
pub(crate) mod diagnostic;
pub(crate) mod duration;
pub(crate) mod error;
pub(crate) mod executor;
pub(crate) mod exit;
pub mod forecast;
pub mod git;
pub mod graph;
pub(crate) mod links;
pub mod manifest;
pub mod merge;
pub(crate) mod notify;
pub mod plan;
pub(crate) mod ports;
pub(crate) mod preflight;
pub(crate) mod process;
pub(crate) mod prompt;
pub(crate) mod review;
pub mod sandbox;
pub mod simulate;
pub(crate) mod state_layout;
pub mod status;
pub(crate) mod supervisor;
pub(crate) mod telemetry;
pub mod top;
pub(crate) mod untrusted;
pub(crate) mod watch;
pub mod workspace;
