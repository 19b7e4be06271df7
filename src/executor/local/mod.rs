//! `executor = "local"` (the default): each attempt a process group of this machine, started
//! under orch's session wrapper (`orch session-exec`, [`crate::process`]) and confined here by
//! `orch sandbox-exec` in a network namespace served by orch's proxy. Everything the supervisor
//! does for an attempt it does here: the prompt on stdin, a person's messages, the private copy
//! of the client's state, the session kept to resume; an attempt that outlived an earlier orch
//! is adopted by orch's record of its wrapper (pid and start time).

use super::{Confiner, Executor};
use crate::manifest::{Host, SandboxMode};

/// A process of this machine per attempt.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LocalExecutor;

impl Executor for LocalExecutor {
    fn name(&self) -> &'static str {
        "local"
    }

    fn confiner(&self) -> Confiner {
        Confiner::Here
    }

    fn network(&self) -> Result<(), String> {
        Ok(())
    }

    fn runs_confined(&self, confined_here: bool, _: SandboxMode, _: &[Host]) -> bool {
        confined_here
    }

    fn attempts_here(&self) -> bool {
        true
    }

    fn adopts_processes(&self) -> bool {
        true
    }

    fn checks_agents_here(&self) -> bool {
        true
    }
}
