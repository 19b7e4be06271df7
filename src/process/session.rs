//! How a process is started under the wrapper (`orch-exec session-exec`, or `orch session-exec`,
//! [`super::wrapper`]): the argv that puts it there. Whatever runs the agent's code (an attempt,
//! a check, a setup, a resolver, `verify` of every merge) starts it this way, so that everything
//! it leaves ends with it and its output is capped.
//!
//! A wrapper stays alive beside every running agent, and each of orch's git runs starts through
//! a confining helper, several times per task: both are the small executable `orch-exec` that
//! `cargo install` puts beside `orch` (their code alone): less memory per running agent and
//! less CPU at each start than a second copy of orch. A copy of orch without it (orch's copy on
//! a `[[host]]`, in a container) runs the same code as `orch session-exec` and `orch git-exec`:
//! `orch-exec` takes the same verbs and arguments.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Which of orch's helpers ([`helper`]).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Helper {
    /// The wrapper of an agent, a check, a setup or a resolver.
    Session,
    /// A git run, confined.
    Git,
}

/// The start of the argv of helper `which` for orch's executable `orch_bin`: `orch-exec VERB`
/// when `orch-exec` is an executable file beside it, else `orch_bin VERB` (the same verbs, the
/// same arguments: `session-exec`, `git-exec`).
pub(crate) fn helper(orch_bin: &Path, which: Helper) -> Vec<OsString> {
    let verb = match which {
        Helper::Session => "session-exec",
        Helper::Git => "git-exec",
    };
    let program = crate::sandbox::helper_beside(orch_bin)
        .map_or_else(|| orch_bin.as_os_str().to_owned(), PathBuf::into_os_string);
    vec![program, verb.into()]
}

/// The start of a wrapper's argv ([`helper`]), as strings.
pub(crate) fn wrapper(orch_bin: &Path) -> Vec<String> {
    helper(orch_bin, Helper::Session)
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
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
