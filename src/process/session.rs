//! How a process is started under the wrapper (`orch-session`, or `orch session-exec`,
//! [`super::wrapper`]): the argv that puts it there. Whatever runs the agent's code (an attempt,
//! a check, a setup, a resolver, `verify` of every merge) starts it this way, so that everything
//! it leaves ends with it and its output is capped.
//!
//! The wrapper stays alive beside every running agent, so it is the small executable
//! `orch-session` that `cargo install` puts beside `orch` (the wrapper's code alone): less
//! memory per running agent and less CPU at each start than a second copy of orch. A copy of
//! orch without it (orch's copy on a `[[host]]`, in a container) runs `orch session-exec`,
//! which is the same wrapper.

use std::path::{Path, PathBuf};

/// The name of the wrapper's own executable, beside orch's.
pub(crate) const WRAPPER_BIN: &str = "orch-session";

/// The start of a wrapper's argv for orch's executable `orch_bin`: `orch-session` beside it when
/// that is a file there, else `orch_bin session-exec`.
pub(crate) fn wrapper(orch_bin: &Path) -> Vec<String> {
    match beside(orch_bin) {
        Some(small) => vec![small.display().to_string()],
        None => vec![orch_bin.display().to_string(), "session-exec".to_string()],
    }
}

/// `orch-session` beside `orch_bin`, when it is an executable file there (not a link).
fn beside(orch_bin: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let small = orch_bin.parent()?.join(WRAPPER_BIN);
    let meta = std::fs::symlink_metadata(&small).ok()?;
    (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(small)
}

/// `argv` run under the wrapper ([`wrapper`]; every local agent, check, setup and resolver, and
/// every `verify`, confined or not): under a wrapper that copies its output into the log up to
/// `log_max` bytes and ends everything it left when it exits ([`super::wrapper`]), in a session
/// of its own without a controlling terminal unless it leads a process group already; stopped,
/// it gives them `grace` between SIGTERM and SIGKILL.
pub(crate) fn in_session(
    orch_bin: &Path,
    (log_max, grace): (u64, std::time::Duration),
    argv: Vec<String>,
) -> Vec<String> {
    let mut out = wrapper(orch_bin);
    out.extend([
        format!("--log-max={log_max}"),
        format!("--grace-ms={}", grace.as_millis()),
        "--".to_string(),
    ]);
    out.extend(argv);
    out
}

/// [`in_session`] for an attempt's agent, gated: the wrapper starts the agent only once orch
/// has recorded its launch ([`crate::process::Spawned::release`]), so that no agent runs that a
/// restarted `orch up` would find unrecorded; the agent's stdin is `stdin` (the prompt file),
/// opened by the wrapper, else /dev/null; how the agent ended is written to `ended`
/// ([`crate::process::wrapper::read_ended`]).
pub(crate) fn in_session_gated(
    orch_bin: &Path,
    wrap: (u64, std::time::Duration),
    (stdin, ended): (Option<&Path>, Option<&Path>),
    argv: Vec<String>,
) -> Vec<String> {
    let mut out = in_session(orch_bin, wrap, Vec::new());
    out.pop();
    out.push("--gate".to_string());
    if let Some(p) = stdin {
        out.push(format!("--stdin={}", p.display()));
    }
    if let Some(p) = ended {
        out.push(format!("--ended={}", p.display()));
    }
    out.push("--".to_string());
    out.extend(argv);
    out
}
