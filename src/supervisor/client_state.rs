//! Which attempts of the run get a private copy of their client's state, and where
//! ([`crate::client_state`] makes and removes it): a local confined attempt of a client orch
//! knows. A remote attempt's copy is made on its host ([`crate::executor::ssh::remote_run`]).

use std::path::PathBuf;

use super::context::PlanCtx;
use crate::manifest::KnownCli;

pub(crate) use crate::client_state::{DIR, KEPT, dir, prepare, remove};

/// The client and the private state directory of attempt `attempt` of `unit` of plan `pc`, run
/// with `command` (best of N's `agents`: another agent's), when it runs confined and its client
/// keeps a state of its own.
pub(crate) fn of_attempt_with(
    pc: &PlanCtx,
    command: &[String],
    unit: &str,
    attempt: u32,
) -> Option<(KnownCli, PathBuf)> {
    pc.sandbox.rules()?;
    if !pc.executor.attempts_here() {
        return None;
    }
    let cli = KnownCli::of(command)?;
    cli.private_state()?;
    // `<state_dir>/<plan>/status.json`.
    let state_dir = pc.status_path.parent()?.parent()?;
    Some((cli, dir(state_dir, pc.name(), unit, attempt)))
}
