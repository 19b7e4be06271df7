//! A container of a plan's image for one command run on the plan's work after its attempts
//! (`verify`, a resolver's check), made before it starts and removed when it has ended: its
//! directory (a staging worktree) and its `TMPDIR` mounted read-write at the same paths, orch's
//! executable read-only, nothing else of this machine; a namespace of its own with only loopback
//! (`--network none`) unless its network is open, where orch's wrapper here opens the proxy's
//! sockets for a confined one, as for an attempt.

use std::path::{Path, PathBuf};

use super::podman;
use crate::manifest::{ExecutorKind, Manifest};
use crate::sandbox::net::Join;

/// The image of each plan of `manifest` that runs in a container: its `image`, else its
/// repository's dev container's (a plan whose image cannot be read is left out: `orch up`
/// refuses it at start).
pub(crate) fn images(manifest: &Manifest) -> std::collections::BTreeMap<String, String> {
    manifest
        .plans
        .iter()
        .filter(|p| p.executor == ExecutorKind::Container)
        .filter_map(|p| {
            let image = match &p.image {
                Some(i) => i.clone(),
                None => super::devcontainer::image(&manifest.root).ok()?,
            };
            Some((p.name.clone(), image))
        })
        .collect()
}

/// The container of one command, removed when dropped.
#[derive(Debug)]
pub(crate) struct OneShot {
    name: String,
    monitor: Option<u32>,
    netns: Option<Join>,
}

impl OneShot {
    /// Starts the container of plan `plan`'s command in `cwd` (its `TMPDIR`: `tmp`), of image
    /// `image`; `open`: podman's default network rather than a namespace with only loopback.
    pub(crate) fn start(
        image: &str,
        plan: &str,
        (cwd, tmp): (&Path, Option<&Path>),
        orch_bin: &Path,
        open: bool,
    ) -> Result<Self, String> {
        let run = super::run_id();
        let safe: String = plan
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{}{run}-{safe}-cmd{n}", podman::NAME_PREFIX);
        let mut write: Vec<PathBuf> = vec![cwd.to_path_buf()];
        write.extend(tmp.map(Path::to_path_buf));
        let argv = podman::run_argv(&podman::Spec {
            name: &name,
            run: &run,
            plan,
            image,
            orch: orch_bin,
            network: (!open).then_some("none"),
            write: &write,
            read: &[orch_bin.to_path_buf()],
            files: &[],
        });
        podman::output(&argv).map_err(|e| {
            format!("cannot start a container of plan `{plan}` (image `{image}`): {e}")
        })?;
        let mut made = Self {
            name,
            monitor: None,
            netns: None,
        };
        if let Some((pid, monitor)) = podman::pids(&made.name) {
            crate::process::keep_adopted(monitor);
            made.monitor = Some(monitor);
            use std::os::unix::fs::MetadataExt as _;
            made.netns = std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .ok()
                .map(|m| Join {
                    pid,
                    inode: m.ino(),
                });
        }
        Ok(made)
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
        let names = env
            .iter()
            .map(|(k, _)| k.as_str())
            .chain(crate::sandbox::net::PROXY_VARS);
        let mut seen = Vec::new();
        for k in names {
            if !skip.contains(&k) && !seen.contains(&k) {
                seen.push(k);
                out.extend(["--env".to_string(), k.to_string()]);
            }
        }
        out.push(self.name.clone());
        out.extend(argv);
        out
    }
}

impl Drop for OneShot {
    fn drop(&mut self) {
        let _ = podman::remove(&self.name);
        if let Some(pid) = self.monitor {
            crate::process::forget(pid);
        }
    }
}
