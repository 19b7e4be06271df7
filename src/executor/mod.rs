//! Where agents run: on this machine (`local`, a process group per agent, see
//! [`crate::process`]), as batch jobs of a cluster scheduler (`slurm`, [`batch`]), or on the
//! `[[host]]` machines over SSH (`ssh`).

mod batch;
mod slurm;
pub(crate) mod ssh;
mod tracker;

pub(crate) use crate::manifest::ExecutorKind;
pub(crate) use batch::{JobEnd, JobSpec, JobState, ListedJob, NOT_SHARED_EXIT, job_tag, parse_tag};
pub(crate) use slurm::Slurm;
pub(crate) use slurm::shared_fs::node_local_fs;
pub(crate) use tracker::JobTracker;
