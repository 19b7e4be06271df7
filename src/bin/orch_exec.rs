//! `orch-exec`: orch's busiest helpers in a small executable that `cargo install` puts beside
//! `orch`: `orch-exec session-exec … -- ARGV` is the wrapper every running agent, check and
//! resolver is started under (a session of its own, a subreaper that ends what the agent left,
//! its output capped into the log); `orch-exec git-exec … -- GIT…` starts each of orch's git runs
//! confined; `orch-exec sandbox-exec … -- ARGV` confines an agent, a check or a command of code
//! an agent wrote on this machine, then becomes it. orch's own `orch session-exec`, `orch
//! git-exec` and `orch sandbox-exec` do the same (a copy of orch alone, on a host or in a
//! container); this executable exists because a wrapper stays alive beside every running agent
//! and these start several times per task, and it loads only their code (see
//! `src/process/session.rs`).

fn main() -> std::process::ExitCode {
    orch::cli::exec_main()
}
