//! `orch sandbox-exec --write P… --deny-read P… -- ARGV…` (hidden): how `orch up` confines an
//! agent or a check. It applies the Landlock rules to itself ([`crate::sandbox::restrict`]) and
//! becomes `ARGV` (`exec`: same process, same pid), which inherits them. If the rules cannot be
//! applied it runs nothing and exits 1.
//!
//! `orch session-exec -- ARGV…` (hidden): how `orch up` starts every local agent and check (a
//! confined one's argv is `orch sandbox-exec …`): it leaves orch's session for a new one
//! (`setsid`: no controlling terminal, process group = session = its pid, which `orch up`
//! signals as the attempt's group) and becomes `ARGV`. `orch sandbox-exec` does the same when
//! it leads neither a session nor a process group yet.

use std::os::unix::process::CommandExt as _;
use std::process::Command;

use anyhow::anyhow;

use crate::error::{CliError, CliResult};
use crate::sandbox::{Rules, restrict};

pub(crate) fn run(rules: Rules, argv: &[String]) -> CliResult<u8> {
    let Some((program, args)) = argv.split_first() else {
        return Err(CliError::invalid(anyhow!(
            "`orch sandbox-exec` is run by `orch up`: `orch sandbox-exec --write P… -- ARGV…`"
        )));
    };
    new_session().map_err(|e| anyhow!("orch sandbox-exec: {e}"))?;
    crate::sandbox::net::enter_from_env().map_err(|e| anyhow!("orch sandbox-exec: {e}"))?;
    restrict(&rules).map_err(|e| anyhow!("orch sandbox-exec: {e}"))?;
    let e = Command::new(program).args(args).exec();
    Err(anyhow!("cannot run `{program}` in the sandbox: {e}").into())
}

/// `orch session-exec -- ARGV…`: `ARGV` in a new session, without a controlling terminal.
pub(crate) fn run_in_session(argv: &[String]) -> CliResult<u8> {
    let Some((program, args)) = argv.split_first() else {
        return Err(CliError::invalid(anyhow!(
            "`orch session-exec` is run by `orch up`: `orch session-exec -- ARGV…`"
        )));
    };
    new_session().map_err(|e| anyhow!("orch session-exec: {e}"))?;
    crate::sandbox::net::enter_from_env().map_err(|e| anyhow!("orch session-exec: {e}"))?;
    let e = Command::new(program).args(args).exec();
    Err(anyhow!("cannot run `{program}`: {e}").into())
}

/// Makes this process the leader of a new session (no controlling terminal), unless it already
/// leads one (`orch session-exec` then `orch sandbox-exec`, both in the same process) or a
/// process group orch made for it (`verify` and `setup`, started with a group of their own,
/// which orch signals as a whole: `setsid` refuses a group leader, and the Landlock rules then
/// give the command no write and no `ioctl` on `/dev/tty`).
fn new_session() -> Result<(), String> {
    let me = nix::unistd::getpid();
    if nix::unistd::getsid(None).is_ok_and(|sid| sid == me) || nix::unistd::getpgrp() == me {
        return Ok(());
    }
    nix::unistd::setsid()
        .map(|_| ())
        .map_err(|e| format!("cannot start a new session (setsid): {e}"))
}
