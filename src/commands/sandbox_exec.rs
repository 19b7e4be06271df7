//! `orch sandbox-exec --write P… --deny-read P… -- ARGV…` (hidden): how `orch up` confines an
//! agent or a check. It confines itself ([`confine`]: the Landlock rules,
//! [`crate::sandbox::restrict`]) and becomes `ARGV` (`exec`: same process, same pid), which
//! inherits the confinement. If a step cannot be applied it runs nothing and exits 1. With
//! `--network-only` it applies the network's step alone (`verify` or a resolver whose files are
//! not confined, whose network is).
//!
//! `orch session-exec [--log-max B] [--grace-ms MS] [--keep] -- ARGV…` (hidden): the wrapper
//! every local agent, check and resolver starts under (a confined one's `ARGV` is
//! `orch sandbox-exec …`), and the keeper of a `setup` command: a new session, a child
//! subreaper that stays `ARGV`'s parent, copies its output into the log and ends whatever
//! `ARGV` left when it exits ([`crate::process::wrapper`]). The wrapper itself is never
//! confined: the agent's sandbox does not contain it, so under Landlock ABI 6 the agent cannot
//! signal it.

use std::os::unix::process::CommandExt as _;

use anyhow::anyhow;

use crate::error::{CliError, CliResult};
use crate::process::wrapper;
use crate::sandbox::{Rules, restrict};

/// What a machine other than the lead's (a Slurm node) needs of the wrapper: the attempt's
/// private directories made there, and whether a machine without Landlock runs the agent
/// unconfined (`sandbox = "auto"`) or not at all.
#[derive(Debug, Default)]
pub(crate) struct Node {
    pub(crate) private_dirs: Vec<std::path::PathBuf>,
    pub(crate) if_supported: bool,
}

/// `rules`: `None` with `--network-only` (the network's step alone, no file rules).
pub(crate) fn run(rules: Option<Rules>, node: Node, argv: &[String]) -> CliResult<u8> {
    let Some((program, args)) = argv.split_first() else {
        return Err(CliError::invalid(anyhow!(
            "`orch sandbox-exec` is run by `orch up`: `orch sandbox-exec --write P… -- ARGV…`"
        )));
    };
    let mut rules = rules;
    if let Some(r) = rules.as_mut() {
        for d in &node.private_dirs {
            make_private_dir(d)
                .map_err(|e| anyhow!("orch sandbox-exec: cannot make `{}`: {e}", d.display()))?;
            r.write.push(d.clone());
        }
    }
    if rules.is_some() && node.if_supported && !crate::sandbox::supported() {
        crate::commands::output::eprintln_safe(
            "orch: this machine cannot confine the agent (no Landlock): it runs unconfined (`sandbox = \"auto\"`; \"on\" would refuse)",
        );
        rules = None;
    }
    confine(&rules).map_err(|e| anyhow!("orch sandbox-exec: {e}"))?;
    // Entered: what it starts is not asked to enter one again.
    let e = crate::agent_env::continuing(program)
        .args(args)
        .env_remove(crate::sandbox::net::SPEC_VAR)
        .env_remove(crate::sandbox::net::SHARED_VAR)
        .exec();
    Err(anyhow!("cannot run `{program}` in the sandbox: {e}").into())
}

/// The steps that confine this process before it becomes the agent, in order. Each applies to
/// this process and everything it starts; one that fails stops the start (nothing runs). A
/// new step (another namespace, say) goes here, before the file rules, which forbid what a
/// later step may need.
fn confine(rules: &Option<Rules>) -> Result<(), String> {
    new_session()?;
    // A network namespace, when orch asked for one and the wrapper above has not entered it
    // already (it removes the variable from what it starts).
    crate::sandbox::net::enter_from_env()?;
    match rules {
        Some(rules) => {
            // orch's private directory (its SSH connections' control sockets) is out of sight
            // before the file rules forbid the mount that hides it.
            crate::sandbox::hide_private_root()?;
            // Terminals of its own: the lead's are not there to open.
            crate::sandbox::own_ptys()?;
            // Outside its write set the file system is read-only to it: Landlock does not
            // control mode bits, times and extended attributes.
            crate::sandbox::read_only_outside(&rules.write)?;
            // No capability survives into the agent, root's included.
            crate::sandbox::drop_all_capabilities()?;
            let binds = shared_binds();
            if binds.is_some() {
                crate::sandbox::net::only_tcp_and_udp()?;
            }
            restrict(rules, binds.as_deref())
        }
        None => Ok(()),
    }
}

/// The ports the agent may bind when it is in this machine's own network namespace
/// ([`crate::sandbox::net::SHARED_VAR`], set by `orch up`): port 0 (one the kernel picks) and its
/// worktree's block (`ORCH_PORT` and the `ORCH_PORTS` after it); `None` in a namespace of its
/// own (any port: nothing else listens there).
fn shared_binds() -> Option<Vec<u16>> {
    (std::env::var(crate::sandbox::net::SHARED_VAR).as_deref() == Ok("1"))
        .then(crate::sandbox::net::own_binds)
}

/// Makes `dir` (mode 0700) where it is missing; one there must be a directory of this user, not a
/// link.
fn make_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let m = std::fs::symlink_metadata(dir)?;
            if m.is_dir() && m.uid() == nix::unistd::geteuid().as_raw() {
                Ok(())
            } else {
                Err(std::io::Error::other("it is not a directory of this user"))
            }
        }
        Err(e) => Err(e),
    }
}

/// `orch session-exec …`: `ARGV` under the wrapper ([`wrapper::run`]); exits as `ARGV` did.
pub(crate) fn run_in_session(opts: &wrapper::Options, argv: &[String]) -> CliResult<u8> {
    if argv.is_empty() {
        return Err(CliError::invalid(anyhow!(
            "`orch session-exec` is run by `orch up`: `orch session-exec -- ARGV…`"
        )));
    }
    let ended = wrapper::run(opts, argv)
        .map_err(|e| anyhow!("orch session-exec: cannot run `{}`: {e}", argv[0]))?;
    Ok(wrapper::pass_on(ended))
}

/// `orch service-wait` (hidden): with `--spec`, waits for a container plan's services, then
/// becomes `ARGV` ([`crate::executor::container::service_wait`]); with `--connect`, in the plan's
/// container, connects to a service's port until it answers (exit 0) or `within` passed (1).
pub(crate) fn run_service_wait(
    spec: Option<&str>,
    connect: Option<&str>,
    within: std::time::Duration,
    argv: &[String],
) -> CliResult<u8> {
    match (spec, connect) {
        (Some(spec), None) => crate::executor::container::service_wait(spec, argv, &|line| {
            super::output::eprintln_safe(line)
        })
        .map_err(|e| CliError::new(crate::exit::FAILURE, anyhow!("{e}"))),
        (None, Some(addr)) => Ok(
            if crate::executor::container::service_connect(addr, within) {
                0
            } else {
                1
            },
        ),
        _ => Err(CliError::invalid(anyhow!(
            "`orch service-wait` is run by `orch up`: `orch service-wait --spec JSON -- ARGV…` or `--connect ADDR`"
        ))),
    }
}

/// Makes this process the leader of a new session (no controlling terminal), unless it already
/// leads one or a process group (an agent under `orch session-exec`, which starts it in a group
/// of its own within the wrapper's session; `verify` and `setup`, started with a group of their
/// own, which orch signals as a whole: `setsid` refuses a group leader, and the Landlock rules
/// then give the command no write and no `ioctl` on `/dev/tty`).
fn new_session() -> Result<(), String> {
    let me = nix::unistd::getpid();
    if nix::unistd::getsid(None).is_ok_and(|sid| sid == me) || nix::unistd::getpgrp() == me {
        return Ok(());
    }
    nix::unistd::setsid()
        .map(|_| ())
        .map_err(|e| format!("cannot start a new session (setsid): {e}"))
}

/// `orch git-exec --exec P… -- ARGV…` (hidden): how orch's git runner starts git
/// ([`crate::git`]): confined to executing files beneath the `--exec` paths
/// ([`crate::sandbox::restrict_exec`]; nothing else of the process is confined), it becomes
/// `ARGV` in the same session (a push may still ask for a passphrase on the terminal). If the
/// confinement cannot be applied it runs nothing and exits 1.
pub(crate) fn run_git(
    (allow, unconfined): (&[std::path::PathBuf], bool),
    parent: Option<u32>,
    argv: &[std::ffi::OsString],
) -> CliResult<u8> {
    let Some((program, args)) = argv.split_first() else {
        return Err(CliError::invalid(anyhow!(
            "`orch git-exec` is run by orch's git runner: `orch git-exec --exec P… -- ARGV…`"
        )));
    };
    if let Some(parent) = parent {
        // Kept across the exec: git (not what it starts) gets SIGKILL when orch's thread that
        // waits for it dies. Already gone: nothing runs.
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
            .map_err(|e| anyhow!("orch git-exec: cannot tie git to orch: {e}"))?;
        if u32::try_from(nix::unistd::getppid().as_raw()).ok() != Some(parent) {
            return Ok(crate::exit::FAILURE);
        }
    }
    if !unconfined {
        crate::sandbox::restrict_exec(allow).map_err(|e| anyhow!("orch git-exec: {e}"))?;
    }
    let e = crate::agent_env::continuing(program).args(args).exec();
    Err(anyhow!("cannot run `{}` confined: {e}", program.to_string_lossy()).into())
}
