//! The container of one plan in this run ([`PlanBox`]): what orch knows of it, made at the
//! plan's first attempt ([`ContainerExecutor::ensure`], with the plan's bounds: its memory and
//! processes, `memory` and `pids`) and again after it was lost, removed when the run lets go of
//! the plan.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::{Attempt, ContainerExecutor, client, devcontainer, podman, run_id, services, sweep};
use crate::manifest::NetworkMode;
use crate::sandbox::net::Join;

/// The container of one plan in this run; removed when the last executor of the plan goes.
#[derive(Debug)]
pub(super) struct PlanBox {
    pub(super) name: String,
    /// The plan's directory of attempts' `TMPDIR`s.
    pub(super) tmp_root: PathBuf,
    /// Whether the container was made (and not found stopped since), and the worktree it
    /// mounts.
    pub(super) made: Mutex<Option<PathBuf>>,
    /// Its monitor, kept by orch (re-parented to `orch up`, it is not an orphan to sweep).
    pub(super) monitor: Mutex<Option<u32>>,
    /// Its network namespace (its first process and the namespace's inode, read when it was
    /// made), where a confined attempt's proxy sockets are opened.
    pub(super) netns: Mutex<Option<Join>>,
    /// Where its processes are ([`podman::Inside`]), read when it was made.
    pub(super) inside: Mutex<Option<podman::Inside>>,
    /// The agent's client CLI from this machine, mounted read-only (the image has none), as
    /// the start of the run found it ([`client::Client`]).
    pub(super) client: Mutex<Option<client::Client>>,
    /// The image it was made of (a `command` service runs in a container of it).
    pub(super) image: Mutex<Option<String>>,
    /// Its services as they run (their names and ports, once its port block is known), and
    /// their monitors kept by orch.
    pub(super) services: Mutex<(Vec<services::Instance>, HashMap<String, u32>)>,
    /// orch's own directory of the plan's services, which no container mounts: where
    /// `orch service-wait` marks a service ready and records one that did not get ready.
    pub(super) marks: PathBuf,
    /// Why the last attempt found lost was (for the console), until told.
    pub(super) lost_why: Mutex<Option<String>>,
    /// What the console should say of the plan's services (one that stopped under an
    /// attempt), until told.
    pub(super) news: Mutex<Vec<String>>,
    /// The kernel's count of its processes killed for memory, read when it was made.
    pub(super) oom: Mutex<Option<super::oom::OomCount>>,
}

impl Drop for PlanBox {
    fn drop(&mut self) {
        let made = self
            .made
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        let (services, monitors) =
            std::mem::take(&mut *self.services.lock().unwrap_or_else(PoisonError::into_inner));
        // Its services with it (`--depend`), else one by one.
        if !(made && podman::remove(&self.name).is_ok()) {
            for s in &services {
                let _ = podman::remove(&s.container);
            }
        }
        for pid in monitors.into_values() {
            crate::process::forget(pid);
        }
        if let Some(pid) = *self.monitor.lock().unwrap_or_else(PoisonError::into_inner) {
            crate::process::forget(pid);
        }
        let _ = crate::untrusted::remove::remove_path(&self.tmp_root);
        let _ = crate::untrusted::remove::remove_path(&self.marks);
    }
}

impl ContainerExecutor {
    /// Makes the plan's container unless it runs.
    pub(super) fn ensure(&self, at: &Attempt<'_>) -> Result<(), String> {
        let mut made = self
            .box_
            .made
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(tree) = made.as_deref() {
            if !at.workdir.starts_with(tree) {
                return Err(format!(
                    "the container of plan `{}` mounts the worktree `{}`, not `{}`: a task's own worktree cannot run in it yet",
                    self.plan,
                    tree.display(),
                    at.workdir.display()
                ));
            }
            if podman::running(&self.box_.name) {
                return Ok(());
            }
            // Stopped under an earlier attempt: made again.
            let _ = podman::remove(&self.box_.name);
            *made = None;
        }
        let image = match &self.image {
            Some(i) => i.clone(),
            None => devcontainer::image(at.repo_root)?,
        };
        // This user's alone: what the plan's agents write there is theirs.
        sweep::private_dir(&self.box_.tmp_root)
            .map_err(|e| format!("cannot make `{}`: {e}", self.box_.tmp_root.display()))?;
        let reports = at
            .report_dir
            .parent()
            .unwrap_or(at.report_dir)
            .to_path_buf();
        // Made before the plan's first attempt when its setup starts the container.
        std::fs::create_dir_all(&reports)
            .map_err(|e| format!("cannot make `{}`: {e}", reports.display()))?;
        // The plan's attempts' private client state (a confined attempt's, made here), only
        // when one of its agents keeps one: nothing else of orch's state directory is the
        // agent's to write (what orch reads back of it, a session's transcript, is read
        // bounded, never through a link, never as orch's configuration).
        let clients = crate::client_state::dir(at.state_dir, &self.plan, "x", 0)
            .parent()
            .filter(|_| self.client_states)
            .map(Path::to_path_buf);
        let mut write = vec![
            at.workdir.to_path_buf(),
            reports,
            self.box_.tmp_root.clone(),
        ];
        if let Some(c) = clients {
            std::fs::create_dir_all(&c)
                .map_err(|e| format!("cannot make `{}`: {e}", c.display()))?;
            write.push(c);
        }
        let mut read = vec![at.orch_bin.to_path_buf()];
        // The run's liveness file, read-only (never the supervisor lock, which no agent may
        // hold): how `orch task` in the container knows that `orch up` runs and takes its
        // report (`<state_dir>/.reports/<plan>/<attempt>`, as `orch task` finds it from the
        // report directory).
        if let Some(lock) = at
            .report_dir
            .ancestors()
            .nth(3)
            .map(|d| d.join(crate::state_layout::SUPERVISOR_LIVE))
            .filter(|l| l.is_file())
        {
            read.push(lock);
        }
        let client = self.client();
        let files: Vec<(PathBuf, PathBuf)> = client
            .iter()
            .map(|c| (c.host.clone(), c.inside()))
            .collect();
        let run = run_id();
        let argv = podman::run_argv(&podman::Spec {
            name: &self.box_.name,
            run: &run,
            plan: &self.plan,
            image: &image,
            orch: at.orch_bin,
            network: match self.network {
                Some(NetworkMode::Open) => None,
                _ => Some("none"),
            },
            write: &write,
            read: &read,
            files: &files,
            limits: self.limits,
        })?;
        // Its monitor, re-parented to `orch up`, is no orphan to sweep until it is kept below.
        let _adopting = crate::process::adopting();
        podman::output(&argv).map_err(|e| {
            format!(
                "cannot start the container of plan `{}` (image `{image}`): {e}",
                self.plan
            )
        })?;
        *made = Some(at.workdir.to_path_buf());
        *self
            .box_
            .image
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(image);
        // Kept from here on. (A sweep of another attempt's orphans in the moment before would
        // stop it: this attempt then finds it stopped and is lost, and the next one makes it.)
        let pids = podman::pids(&self.box_.name);
        if let Some((_, Some(monitor))) = pids {
            crate::process::keep_adopted(monitor);
            *self
                .box_
                .monitor
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(monitor);
        }
        // Its namespace, as it is now: a pid reused later names another one.
        let netns = pids.and_then(|(pid, _)| {
            use std::os::unix::fs::MetadataExt as _;
            let inode = std::fs::metadata(format!("/proc/{pid}/ns/net")).ok()?.ino();
            Some(Join { pid, inode })
        });
        *self
            .box_
            .netns
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = netns;
        *self
            .box_
            .inside
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            pids.and_then(|(pid, _)| podman::Inside::read(pid));
        *self.box_.oom.lock().unwrap_or_else(PoisonError::into_inner) =
            super::oom::OomCount::of(&self.box_.name);
        Ok(())
    }
}
