//! `orch-session`: the wrapper every running agent, check and resolver is started under (a
//! session of its own, a subreaper that ends what the agent left, its output capped into the
//! log), installed beside `orch` by `cargo install`. orch's own `orch session-exec` does the
//! same; this executable exists because one stays alive beside every running agent, and it
//! loads only the wrapper's code (see `src/process/session.rs`).

fn main() -> std::process::ExitCode {
    orch::cli::session_main()
}
