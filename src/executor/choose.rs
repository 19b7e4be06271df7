//! The executor of each plan, made once: the one place that reads a plan's `executor` key.

use std::sync::Arc;

use super::Executor;
use super::container::ContainerExecutor;
use super::local::LocalExecutor;
use super::slurm::SlurmExecutor;
use super::ssh::SshExecutor;
use crate::manifest::{ExecutorKind, Manifest, PlanEntry};

/// The executor of plan `entry` of `manifest`.
pub(crate) fn of_plan(manifest: &Manifest, entry: &PlanEntry) -> Arc<dyn Executor> {
    match entry.executor {
        ExecutorKind::Local => Arc::new(LocalExecutor),
        ExecutorKind::Slurm => {
            Arc::new(SlurmExecutor::new(entry.slurm.clone(), manifest.slurm_poll))
        }
        ExecutorKind::Ssh => Arc::new(SshExecutor::new(entry.hosts.clone(), entry.size_limits)),
        ExecutorKind::Container => Arc::new(ContainerExecutor::new(manifest, entry)),
    }
}
