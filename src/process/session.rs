//! How a process is started under the wrapper (`orch session-exec`, [`super::wrapper`]): the
//! argv that puts it there. Whatever runs the agent's code (an attempt, a check, a setup, a
//! resolver, `verify` of every merge) starts it this way, so that everything it leaves ends
//! with it and its output is capped.

use std::path::Path;

/// `argv` run under `orch session-exec` (every local agent, check, setup and resolver, and
/// every `verify`, confined or not): under a wrapper that copies its output into the log up to
/// `log_max` bytes and ends everything it left when it exits ([`super::wrapper`]), in a session
/// of its own without a controlling terminal unless it leads a process group already; stopped,
/// it gives them `grace` between SIGTERM and SIGKILL.
pub(crate) fn in_session(
    orch_bin: &Path,
    (log_max, grace): (u64, std::time::Duration),
    argv: Vec<String>,
) -> Vec<String> {
    let mut out = vec![
        orch_bin.display().to_string(),
        "session-exec".to_string(),
        format!("--log-max={log_max}"),
        format!("--grace-ms={}", grace.as_millis()),
        "--".to_string(),
    ];
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
