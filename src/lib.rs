//! `orch`: a git-worktree multi-plan supervisor.
//!
//! The library holds every concept of the tool; `src/main.rs` only calls [`cli::main`].

pub mod agent_env;
pub mod agent_output;
pub mod cli;
pub mod color;
pub mod commands;
pub mod control;
pub mod diagnostic;
pub mod duration;
pub mod error;
pub mod executor;
pub mod exit;
pub mod forecast;
pub mod git;
pub mod graph;
pub mod links;
pub mod manifest;
pub mod merge;
pub mod notify;
pub mod plan;
pub mod ports;
pub mod preflight;
pub mod process;
pub mod prompt;
pub mod sandbox;
pub mod simulate;
pub mod status;
pub mod supervisor;
pub mod top;
pub mod watch;
pub mod workspace;
