//! `executor = "slurm"`: one batch job per attempt, submitted with `sbatch` and followed by the
//! run's job tracker ([`sbatch`]). A job is confined on its node by the same wrapper as a local
//! attempt (the node's kernel decides; its `TMPDIR` is the node's), its network is not; the
//! worktrees, the state, the logs and orch itself must be on a filesystem the nodes share
//! ([`shared_fs`], checked at the start with the controller). An attempt that outlived an
//! earlier orch is the job the scheduler lists by its tag.

mod sbatch;
pub(crate) mod shared_fs;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;

pub(crate) use sbatch::Slurm;

use super::batch::{JobSpec, job_tag};
use super::tracker::JobTracker;
use super::{Confiner, Executor, JobAttempt, PlanStart, RunStart};
use crate::error::{CliError, exit};
use crate::manifest::{Host, SandboxMode, SlurmOptions};
use crate::sandbox::Rules;

/// A plan's attempts as Slurm jobs.
#[derive(Clone, Debug, Default)]
pub(crate) struct SlurmExecutor {
    /// The plan's Slurm options (`[slurm]`, overridden by the plan's own table).
    options: SlurmOptions,
    /// `[slurm] poll`: the longest wait between two looks at the jobs.
    poll: Duration,
}

impl SlurmExecutor {
    pub(crate) fn new(options: SlurmOptions, poll: Duration) -> Self {
        Self { options, poll }
    }
}

impl Executor for SlurmExecutor {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn confiner(&self) -> Confiner {
        Confiner::OnNode
    }

    fn network(&self) -> Result<(), String> {
        Err(super::unconfined_network(self.name()))
    }

    fn runs_confined(&self, _: bool, _: SandboxMode, _: &[Host]) -> bool {
        false
    }

    fn attempts_here(&self) -> bool {
        false
    }

    fn confine(
        &self,
        orch_bin: &Path,
        rules: &mut Rules,
        tmp: &Path,
        mode: SandboxMode,
        argv: Vec<String>,
    ) -> Vec<String> {
        // The node's `/tmp` is its own: the wrapper makes the TMPDIR there.
        rules.write.retain(|w| w != tmp);
        let mut argv = crate::sandbox::wrap(orch_bin, rules, &argv);
        let mut node = vec![format!("--private-dir={}", tmp.display())];
        if mode == SandboxMode::Auto {
            node.push("--if-supported".to_string());
        }
        argv.splice(2..2, node);
        rules.write.push(tmp.to_path_buf());
        argv
    }

    fn job(&self, j: &JobAttempt<'_>) -> Option<JobSpec> {
        Some(JobSpec {
            argv: j.argv.to_vec(),
            cwd: j.workdir.to_path_buf(),
            env: j.env.to_vec(),
            pass_env: j.pass_env.to_vec(),
            log: j.log.to_path_buf(),
            name: format!("orch:{}:{}", j.plan, j.task.unwrap_or("plan")),
            tag: job_tag(
                &j.status_file.display().to_string(),
                j.task.unwrap_or(""),
                j.attempt,
            ),
            time_limit: self.options.time_limit.unwrap_or(j.budget + j.grace),
            options: self.options.clone(),
        })
    }

    fn tracker(&self, state_dir: &Path) -> Option<Result<Arc<JobTracker>, String>> {
        Some(
            Slurm::new(state_dir)
                .map(|slurm| JobTracker::new(Arc::new(slurm), self.poll))
                .map_err(|e| {
                    format!(
                        "cannot write the Slurm job script into `{}`: {e}",
                        state_dir.display()
                    )
                }),
        )
    }

    fn adopts_processes(&self) -> bool {
        false
    }

    fn checks_agents_here(&self) -> bool {
        true
    }

    /// Plans run through Slurm need its controller, and paths the compute nodes can see: a
    /// directory on a node-local filesystem (tmpfs) is refused now; each job checks the rest on
    /// its node (see [`sbatch::job_script`]).
    fn check_start(
        &self,
        run: &RunStart<'_>,
        plans: &[PlanStart<'_>],
    ) -> Result<Vec<String>, CliError> {
        let (manifest, orch_bin) = (run.manifest, run.orch_bin);
        let first = plans.first().map_or("", |p| p.name);
        let d = &manifest.defaults;
        for (key, dir) in [
            ("worktree_root", &d.worktree_root),
            ("state_dir", &d.state_dir),
            ("log_dir", &d.log_dir),
        ] {
            let path = manifest.root.join(dir);
            if let Some(fs) = shared_fs::node_local_fs(&path) {
                return Err(CliError::invalid(anyhow!(
                    "{}: `defaults.{key}` (`{}`) is on {fs}, which only this machine sees, but plan `{first}` runs its agents through Slurm",
                    manifest.path.display(),
                    path.display(),
                ))
                .with_hint(
                    "put the repository on a filesystem the compute nodes mount at the same path (NFS, Lustre, …), or set executor = \"local\"",
                ));
            }
        }
        if let Some(fs) = shared_fs::node_local_fs(orch_bin) {
            return Err(CliError::invalid(anyhow!(
                "the orch executable `{}` is on {fs}, which the compute nodes cannot see, but plan `{first}` runs its agents through Slurm (they call orch back)",
                orch_bin.display(),
            ))
            .with_hint("install orch on a shared filesystem, or set executor = \"local\""));
        }
        Slurm::check().map_err(|e| {
            CliError::new(exit::FAILURE, anyhow!("{e}")).with_hint(format!(
                "plan `{first}` runs its agents through Slurm: start Slurm (or point orch at its controller with SLURM_CONF), or set executor = \"local\""
            ))
        })?;
        Ok(Vec::new())
    }
}
