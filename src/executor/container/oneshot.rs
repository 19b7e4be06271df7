//! A container of a plan's image for one command run on the plan's work after its attempts
//! (`verify`, a resolver's check, the resolving agent of a plan that runs in a container; the
//! verify of a combination of plans, in the image and with the services [`super::Images::of`]
//! chooses), made before it starts and removed when it has ended: its directory (a staging
//! worktree, a resolution worktree, a group's candidates side by side) and its `TMPDIR` mounted
//! read-write at the same paths (a resolving agent's own directories too: [`Mounts`]), orch's
//! executable read-only, nothing else of this machine; a namespace of its own with only loopback
//! (`--network none`) unless its network is open, where orch's wrapper here opens the proxy's
//! sockets for a confined one, as for an attempt. The plan's services run beside it as beside
//! the plan's container, instances of their own in its network (their ports from
//! [`crate::ports::FIRST_PORT`] + 1 on: no other namespace shares them), waited for before the
//! command starts.

use std::path::{Path, PathBuf};

use super::podman;
use super::services::{self, Instance};
use crate::manifest::Service;
use crate::sandbox::net::Join;

/// What a plan that runs in a container runs its commands in: its image and its services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PlanImage {
    pub(crate) image: String,
    pub(crate) services: Vec<Service>,
}

/// What a one-shot container mounts besides its directory and `TMPDIR`, at the same paths as
/// here: a resolving agent's notes directory, private client state and usage directory
/// (`write`), its prompt file (`read`), and its client from this machine when the image has none
/// (`client`, read-only where an attempt's is).
#[derive(Clone, Debug, Default)]
pub(crate) struct Mounts {
    pub(crate) write: Vec<PathBuf>,
    pub(crate) read: Vec<PathBuf>,
    pub(crate) client: Option<Client>,
}

/// An agent's client from this machine, mounted into a one-shot container whose image has none
/// ([`client_for`]).
#[derive(Clone, Debug)]
pub(crate) struct Client(super::client::Client);

impl Client {
    /// `argv` with the program found on the container's `PATH` (`/usr/bin/env NAME`) replaced
    /// by the mounted client.
    pub(crate) fn in_argv(&self, argv: Vec<String>) -> Vec<String> {
        self.0.in_argv(argv)
    }
}

/// The client `program` of plan `plan`'s agent in a one-shot container of `image`, found as an
/// attempt's is: `None` when the image has it (or it is no client orch knows: the image must have
/// it, as any other program), this machine's to mount when it is an executable of its own, else
/// why not, naming the fix.
pub(crate) fn client_for(
    plan: &str,
    image: &str,
    program: &str,
    cwd: &Path,
) -> Result<Option<Client>, String> {
    match super::client::find(plan, image, program, cwd) {
        Ok(found) => Ok(found.and_then(super::client::Found::mounted).map(Client)),
        Err(e) => Err(match e.hint {
            Some(hint) => format!("{} ({hint})", e.error),
            None => e.error.to_string(),
        }),
    }
}

/// The container of one command, removed when dropped (its services with it).
#[derive(Debug)]
pub(crate) struct OneShot {
    name: String,
    monitor: Option<u32>,
    netns: Option<Join>,
    /// Its services, and their monitors.
    services: Vec<Instance>,
    monitors: Vec<u32>,
}

impl OneShot {
    /// Starts the container of plan `plan`'s command (or a combination's, `plan` its name) in
    /// `dir` (its `TMPDIR`: `tmp`), of the image and with the services of `place`; `open`:
    /// podman's default network rather than a namespace with only loopback.
    pub(crate) fn start(
        place: &PlanImage,
        plan: &str,
        (dir, tmp): (&Path, Option<&Path>),
        orch_bin: &Path,
        open: bool,
    ) -> Result<Self, String> {
        Self::start_with(place, plan, (dir, tmp), orch_bin, open, &Mounts::default())
    }

    /// [`OneShot::start`], with `more` mounted too (a resolving agent's: its notes, its private
    /// client state, its prompt, its client from this machine).
    pub(crate) fn start_with(
        place: &PlanImage,
        plan: &str,
        (dir, tmp): (&Path, Option<&Path>),
        orch_bin: &Path,
        open: bool,
        more: &Mounts,
    ) -> Result<Self, String> {
        let image = place.image.as_str();
        // No engine (an unknown `ORCH_CONTAINER_ENGINE`, none installed): nothing is started.
        podman::engine().map_err(|e| e.to_string())?;
        if open && !place.services.is_empty() {
            return Err(format!(
                "plan `{plan}` has services, which need a network of their own: not with an open one"
            ));
        }
        // What a killed `orch integrate` or `orch merge` left running (its verify container,
        // the agent's code in it) goes before another starts: nothing else would end it.
        for note in super::remove_dead_runs() {
            tracing::info!(note, "before a one-shot container");
        }
        let run = super::run_id();
        let safe = super::plan_part(plan);
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{}{run}-{safe}-cmd{n}", podman::NAME_PREFIX);
        let mut write: Vec<PathBuf> = vec![dir.to_path_buf()];
        write.extend(tmp.map(Path::to_path_buf));
        write.extend(more.write.iter().cloned());
        let mut read = vec![orch_bin.to_path_buf()];
        read.extend(more.read.iter().cloned());
        let files: Vec<(PathBuf, PathBuf)> = more
            .client
            .iter()
            .map(|c| (c.0.host.clone(), c.0.inside()))
            .collect();
        let argv = podman::run_argv(&podman::Spec {
            name: &name,
            run: &run,
            plan,
            image,
            orch: orch_bin,
            network: (!open).then_some("none"),
            write: &write,
            read: &read,
            files: &files,
            // The default bounds (a plan's own are its attempts').
            limits: Default::default(),
        })?;
        // Its monitor, re-parented to `orch up` (the merge train's), is no orphan to sweep
        // until it is kept below.
        let adopting = crate::process::adopting();
        podman::output(&argv).map_err(|e| {
            // Made but not started (its monitor gone): it would be left behind.
            let _ = podman::remove(&name);
            format!("cannot start a container of plan `{plan}` (image `{image}`): {e}")
        })?;
        let mut made = Self {
            name,
            monitor: None,
            netns: None,
            services: Vec::new(),
            monitors: Vec::new(),
        };
        if let Some((pid, monitor)) = podman::pids(&made.name) {
            if let Some(monitor) = monitor {
                crate::process::keep_adopted(monitor);
            }
            made.monitor = monitor;
            use std::os::unix::fs::MetadataExt as _;
            made.netns = std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .ok()
                .map(|m| Join {
                    pid,
                    inode: m.ino(),
                });
        }
        drop(adopting);
        made.services_up(place, (&run, plan), orch_bin)?;
        Ok(made)
    }

    /// Starts its services and waits until each is ready (dropped on an error: everything
    /// goes).
    fn services_up(
        &mut self,
        place: &PlanImage,
        (run, plan): (&str, &str),
        orch_bin: &Path,
    ) -> Result<(), String> {
        if place.services.is_empty() {
            return Ok(());
        }
        let base = u16::try_from(crate::ports::FIRST_PORT).unwrap_or(u16::MAX);
        self.services = services::instances(&place.services, &self.name, base);
        let all: Vec<&services::Instance> = self.services.iter().collect();
        let mut failed = None;
        for (_, started) in services::Instance::start_all(
            &all,
            (run, plan),
            &self.name,
            &place.image,
            Default::default(),
        ) {
            match started {
                Ok(m) => self.monitors.extend(m),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        let waits: Vec<_> = self
            .services
            .iter()
            .map(|i| i.wait_for(&self.name, orch_bin, None))
            .collect();
        super::ready::wait(plan, &waits).map(drop)
    }

    /// Its network namespace, for the proxy's sockets of a confined command.
    pub(crate) fn netns(&self) -> Option<Join> {
        self.netns
    }

    /// The argv that runs `argv` in it, in `cwd`, with the names of `env` passed (their values
    /// taken from the environment of the process that runs it) and the proxy's variables.
    pub(crate) fn enter(
        &self,
        cwd: &Path,
        argv: Vec<String>,
        env: &[(String, String)],
    ) -> Vec<String> {
        let mut out = vec![
            podman::program(),
            "exec".to_string(),
            "-i".to_string(),
            "--workdir".to_string(),
            cwd.display().to_string(),
        ];
        let skip = ["PATH", "HOME", crate::sandbox::net::SPEC_VAR];
        let vars = services::vars(&self.services);
        let names = env
            .iter()
            .map(|(k, _)| k.as_str())
            .chain(crate::sandbox::net::PROXY_VARS);
        let mut seen = Vec::new();
        for k in names {
            if !skip.contains(&k) && !seen.contains(&k) && !vars.iter().any(|(v, _)| v == k) {
                seen.push(k);
                out.extend(["--env".to_string(), k.to_string()]);
            }
        }
        for (k, v) in vars {
            out.extend(["--env".to_string(), format!("{k}={v}")]);
        }
        out.push(self.name.clone());
        out.extend(argv);
        out
    }
}

impl Drop for OneShot {
    fn drop(&mut self) {
        // Its services with it (`--depend`), else one by one.
        if podman::remove(&self.name).is_err() {
            for s in &self.services {
                let _ = podman::remove(&s.container);
            }
        }
        for pid in self.monitors.iter().chain(&self.monitor) {
            crate::process::forget(*pid);
        }
    }
}
