//! `executor = "ssh"`: the `[[host]]` machines of the manifest, reached with the user's own
//! `ssh` from `PATH` (their config, keys, agents and jump hosts), one shared connection per host
//! whose control socket no agent can reach ([`control`], [`conn`]). orch copies itself to the
//! host's `dir` when the copy there is missing or differs (named and checked by its git blob
//! id), and asks that copy what the host offers ([`host`]: Landlock, git, free disk, the
//! presets' clients), which `orch hosts` shows. [`remote`] is the side that runs there; [`SshExecutor`] is what the
//! supervisor asks of a plan run on hosts.

pub(crate) mod attempt;
pub(crate) mod cause;
pub(crate) mod conn;
pub(crate) mod control;
pub(crate) mod frames;
pub(crate) mod host;
pub(crate) mod job;
mod launch;
pub(crate) mod lead;
pub(crate) mod lost;
pub(crate) mod records;
pub(crate) mod refs;
pub(crate) mod remote;
pub(crate) mod remote_run;
pub(crate) mod report;
pub(crate) mod slots;
mod start;
pub(crate) mod usable;

use std::path::Path;

use super::{Attempt, Confiner, Executor, Lost, PlaceRecord, PlanStart, RunStart};
use crate::error::CliError;
use crate::manifest::{Host, SandboxMode};

pub(crate) use conn::Conn;
pub(crate) use host::probe;
pub(crate) use report::HostReport;

/// A plan's attempts on its `[[host]]` machines: each driven from here by orch's driver
/// (`orch remote-attempt`), a process under orch's session wrapper, which runs the agent on a
/// host with a free slot, confined there by orch's copy ([`remote_run`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct SshExecutor {
    /// The plan's `hosts`, in the order they are preferred.
    hosts: Vec<String>,
    /// The plan's size limits: a snapshot that brings a larger blob, or a change over them, is
    /// refused.
    limits: crate::manifest::SizeLimits,
}

impl SshExecutor {
    pub(crate) fn new(hosts: Vec<String>, limits: crate::manifest::SizeLimits) -> Self {
        Self { hosts, limits }
    }
}

impl Executor for SshExecutor {
    fn name(&self) -> &'static str {
        "ssh"
    }

    /// On a `[[host]]` the host confines its attempts itself (orch's copy there, the same rules).
    fn confiner(&self) -> Confiner {
        Confiner::There
    }

    fn network(&self) -> Result<(), String> {
        Err(super::unconfined_network(self.name()))
    }

    /// A preset runs its confined argv when its sandbox is not off and every host of the plan
    /// confines (a host confines unless its `[[host]]` says `sandbox = "off"`, and then refuses
    /// to run without Landlock: [`remote_run`]). On hosts that differ (one with
    /// `sandbox = "off"`), a preset runs its own sandbox's argv on each of them.
    fn runs_confined(&self, _: bool, mode: SandboxMode, run_hosts: &[Host]) -> bool {
        mode != SandboxMode::Off
            && self
                .hosts
                .iter()
                .all(|n| run_hosts.iter().any(|h| &h.name == n && h.confined))
    }

    fn attempts_here(&self) -> bool {
        false
    }

    fn wrap(
        &self,
        attempt: &Attempt<'_>,
        argv: Vec<String>,
        env: &[(String, String)],
    ) -> Result<Vec<String>, String> {
        launch::driver_argv(attempt, (&self.hosts, self.limits), argv, env)
    }

    fn place_record(
        &self,
        state_dir: &Path,
        plan: &str,
        unit: &str,
        attempt: u32,
    ) -> Option<PlaceRecord> {
        Some(PlaceRecord {
            path: records::host_record(state_dir, plan, unit, attempt),
            read: records::host_at,
        })
    }

    /// Its driver exits with [`attempt::HOST_LOST`] (ssh's own exit when the connection fails)
    /// when the host stopped answering, with [`attempt::NO_HOST`] when every host of the plan
    /// refused when probed (it never gives an agent's status as either).
    fn lost(&self, code: i32) -> Option<Lost> {
        if code == i32::from(attempt::HOST_LOST) {
            Some(Lost::Place)
        } else if code == i32::from(attempt::NO_HOST) {
            Some(Lost::Nowhere)
        } else {
            None
        }
    }

    fn adopts_processes(&self) -> bool {
        false
    }

    /// Its work is on the plan branch or saved: the host's snapshot ref goes.
    fn settled(
        &self,
        repo_root: &Path,
        at: (&str, &str),
        unit: &str,
        attempt: u32,
    ) -> Option<String> {
        refs::settled(repo_root, at, unit, attempt)
    }

    /// Hosts' snapshots an earlier run fetched: pruned once their work is safe here.
    fn leftovers(
        &self,
        repo_root: &Path,
        at: (&str, &str),
        running: &[(String, u32)],
    ) -> Vec<String> {
        refs::leftovers(repo_root, at, running)
    }

    fn hosts(&self) -> &[String] {
        &self.hosts
    }

    fn host_lost(&self, state_dir: &Path, host: &str) -> Option<String> {
        slots::lost(state_dir, host).map(|l| l.cause)
    }

    fn host_notes(&self, state_dir: &Path, host: &str) -> Vec<String> {
        lost::said_lines(state_dir, host)
    }

    /// A plan on a `[[host]]` runs its agents (and their fallbacks) there: its hosts' probe
    /// speaks for them.
    fn checks_agents_here(&self) -> bool {
        false
    }

    fn check_start(
        &self,
        run: &RunStart<'_>,
        plans: &[PlanStart<'_>],
    ) -> Result<Vec<String>, CliError> {
        start::check(run, plans)
    }
}
