//! `orch-exec`: orch's two busiest helpers in a small executable that `cargo install` puts
//! beside `orch`: `orch-exec session-exec … -- ARGV` is the wrapper every running agent, check and
//! resolver is started under (a session of its own, a subreaper that ends what the agent left,
//! its output capped into the log); `orch-exec git-exec … -- GIT…` starts each of orch's git runs
//! confined. orch's own `orch session-exec` and `orch git-exec` do the same; this executable
//! exists because a wrapper stays alive beside every running agent and a git run starts
//! several times per task, and it loads only their code (see `src/process/session.rs`).

fn main() -> std::process::ExitCode {
    orch::cli::exec_main()
}
