//! The podman commands of the container executor: the plan's container made (`run -d` of a
//! keeper), an attempt's `exec` argv, its processes stopped, the containers of earlier runs found
//! by label and removed.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The labels orch sets on its containers. Namespaced so that an image is unlikely to set them
/// (a container inherits its image's labels); orch also requires its own name prefix
/// ([`NAME_PREFIX`]), which no image sets, before it removes one.
pub(crate) const RUN_LABEL: &str = "dev.orch-cli.run";
pub(crate) const PLAN_LABEL: &str = "dev.orch-cli.plan";
/// The label of a plan's service's container (`[[service]]`): the service's name.
pub(crate) const SERVICE_LABEL: &str = "dev.orch-cli.service";
/// The start of the name of every container orch makes.
pub(crate) const NAME_PREFIX: &str = "orch-";
/// The variable that marks an attempt's processes inside the container (to stop them after it).
pub(crate) const ATTEMPT_VAR: &str = "ORCH_CONTAINER_ATTEMPT";

/// The program: `ORCH_PODMAN` (tests, a podman elsewhere), else `podman` on `PATH`.
pub(crate) fn program() -> String {
    std::env::var("ORCH_PODMAN").unwrap_or_else(|_| "podman".to_string())
}

/// Whether podman answers (`podman --version`): its version line, or why not.
pub(crate) fn version() -> Result<String, String> {
    let out = crate::agent_env::command(program())
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("`{}` cannot be run: {e}", program()))?;
    if !out.status.success() {
        return Err(format!("`{} --version` failed", program()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The limits a container is given: this process's hard limits of open files and processes
/// (podman's own defaults ask for more than a root without CAP_SYS_RESOURCE may set: "error
/// setting rlimit"); processes at most 32768, what podman's own process runs with.
pub(super) fn ulimits() -> Vec<String> {
    use nix::sys::resource::{Resource, getrlimit};
    let mut out = Vec::new();
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let n = hard.min(1 << 20);
        out.extend(["--ulimit".to_string(), format!("nofile={n}:{n}")]);
    }
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NPROC) {
        let n = hard.min(32768);
        out.extend(["--ulimit".to_string(), format!("nproc={n}:{n}")]);
    }
    out
}

/// The bounds of a container of a plan (`memory`, `pids`): its memory, swap included (no swap
/// beyond it), and its processes and threads, enforced by the kernel's control groups.
pub(crate) fn bounds(limits: crate::manifest::Limits) -> Vec<String> {
    let memory = limits.memory().to_string();
    vec![
        "--memory".into(),
        memory.clone(),
        "--memory-swap".into(),
        memory,
        "--pids-limit".into(),
        limits.pids().to_string(),
    ]
}

/// What the plan's container is made with.
pub(crate) struct Spec<'a> {
    pub(crate) name: &'a str,
    pub(crate) run: &'a str,
    pub(crate) plan: &'a str,
    pub(crate) image: &'a str,
    /// orch's executable (among `read`): the container's first process.
    pub(crate) orch: &'a Path,
    /// `none` or `None`: podman's default network.
    pub(crate) network: Option<&'a str>,
    /// Host paths mounted at the same path, read-write.
    pub(crate) write: &'a [PathBuf],
    /// Host paths mounted at the same path, read-only.
    pub(crate) read: &'a [PathBuf],
    /// Host files mounted read-only at another path (this machine's, the container's).
    pub(crate) files: &'a [(PathBuf, PathBuf)],
    /// Its memory and processes ([`bounds`]).
    pub(crate) limits: crate::manifest::Limits,
}

/// The argv of `podman run -d` that makes the container of `spec`: its first process orch's
/// own keeper ([`super::init`], orch's executable `spec.orch`, mounted read-only), which stops
/// at once and which no process of the container can trace.
pub(crate) fn run_argv(spec: &Spec<'_>) -> Vec<String> {
    let mut a: Vec<String> = vec![program(), "run".into(), "-d".into()];
    a.extend(["--name".into(), spec.name.to_string()]);
    a.extend(["--label".into(), format!("{RUN_LABEL}={}", spec.run)]);
    a.extend(["--label".into(), format!("{PLAN_LABEL}={}", spec.plan)]);
    if let Some(n) = spec.network {
        a.extend(["--network".into(), n.to_string()]);
    }
    a.extend(ulimits());
    a.extend(bounds(spec.limits));
    for p in spec.write {
        a.extend([
            "--volume".into(),
            format!("{}:{}:rw", p.display(), p.display()),
        ]);
    }
    for p in spec.read {
        a.extend([
            "--volume".into(),
            format!("{}:{}:ro", p.display(), p.display()),
        ]);
    }
    for (host, inside) in spec.files {
        a.extend([
            "--volume".into(),
            format!("{}:{}:ro", host.display(), inside.display()),
        ]);
    }
    a.extend([
        "--entrypoint".into(),
        spec.orch.display().to_string(),
        spec.image.to_string(),
    ]);
    a.push(super::init::COMMAND.into());
    a
}

/// Runs `argv` (a podman command), its stdout, or its stderr as the error.
pub(crate) fn output(argv: &[String]) -> Result<String, String> {
    let (first, rest) = argv.split_first().ok_or("no command")?;
    let out = crate::agent_env::command(first)
        .args(rest)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{first}`: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err: String = err.trim().chars().take(2000).collect();
        return Err(format!(
            "`{} {}` failed: {err}",
            first,
            rest.first().map_or("", String::as_str)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether container `name` runs.
pub(crate) fn running(name: &str) -> bool {
    output(&[
        program(),
        "inspect".into(),
        "--format".into(),
        "{{.State.Running}}".into(),
        name.into(),
    ])
    .is_ok_and(|o| o.trim() == "true")
}

/// How container `name` ended, when it no longer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// It runs.
    Running,
    /// podman knows no container of that name (removed: by orch, or a person).
    Gone,
    /// Stopped, its first process's exit code (orch's keeper: 0 when a signal from outside
    /// ended it) and whether the kernel's out-of-memory killer ended it (in its cgroup).
    Stopped { code: i64, oom: bool },
}

/// How container `name` is ([`Ended`]); `None` when podman does not answer.
pub(crate) fn ended(name: &str) -> Option<Ended> {
    let out = crate::agent_env::command(program())
        .args([
            "inspect",
            "--type",
            "container",
            "--format",
            "{{.State.Running}} {{.State.ExitCode}} {{.State.OOMKilled}}",
            name,
        ])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
        return err.contains("no such").then_some(Ended::Gone);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    let (running, code, oom) = (words.next()?, words.next()?, words.next()?);
    if running == "true" {
        return Some(Ended::Running);
    }
    Some(Ended::Stopped {
        code: code.parse().ok()?,
        oom: oom == "true",
    })
}

/// The pids of container `name`'s first process and of its monitor (`conmon`), if it runs.
pub(crate) fn pids(name: &str) -> Option<(u32, u32)> {
    let out = output(&[
        program(),
        "inspect".into(),
        "--format".into(),
        "{{.State.Pid}} {{.State.ConmonPid}}".into(),
        name.into(),
    ])
    .ok()?;
    let (pid, monitor) = out.trim().split_once(' ')?;
    let (pid, monitor) = (pid.parse().ok()?, monitor.parse().ok()?);
    (pid > 0 && monitor > 0).then_some((pid, monitor))
}

/// Removes container `name` with whatever runs in it, the containers that share its network
/// (its services: podman refuses to remove it before them) and their anonymous volumes (an
/// image's `VOLUME`: a service's data goes with it).
pub(crate) fn remove(name: &str) -> Result<(), String> {
    output(&[
        program(),
        "rm".into(),
        "-f".into(),
        "--depend".into(),
        "-v".into(),
        "-t".into(),
        "0".into(),
        name.into(),
    ])
    .map(drop)
}

/// The containers orch made (its label and its name prefix): name and run label, the
/// services' first (a plan's container goes after the services in its network).
pub(crate) fn listed() -> Vec<(String, String)> {
    let Ok(out) = output(&[
        program(),
        "ps".into(),
        "-a".into(),
        "--filter".into(),
        format!("label={RUN_LABEL}"),
        "--format".into(),
        format!(
            "{{{{.Names}}}} {{{{index .Labels \"{RUN_LABEL}\"}}}} {{{{index .Labels \"{SERVICE_LABEL}\"}}}}"
        ),
    ]) else {
        return Vec::new();
    };
    let mut found: Vec<(bool, String, String)> = out
        .lines()
        .filter_map(|l| {
            let mut words = l.split(' ');
            let (name, run) = (words.next()?, words.next()?);
            let service = words.next().is_some_and(|s| !s.trim().is_empty());
            name.starts_with(NAME_PREFIX)
                .then(|| (!service, name.to_string(), run.trim().to_string()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, n, r)| (n, r)).collect()
}

/// Which of the containers `names` run (one `podman inspect`; a missing one does not).
pub(crate) fn running_of(names: &[String]) -> std::collections::BTreeSet<String> {
    if names.is_empty() {
        return Default::default();
    }
    let Ok(out) = crate::agent_env::command(program())
        .args(["inspect", "--format", "{{.Name}} {{.State.Running}}"])
        .args(names)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return Default::default();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(" true"))
        .map(|n| n.trim_start_matches('/').to_string())
        .filter(|n| names.contains(n))
        .collect()
}

/// Where a container's processes are, read on this machine when it was made: its first process
/// (podman's init), the keeper it started, and their pid namespace. Which process belongs to
/// what is decided from where it is in that namespace, never from what it says.
#[derive(Clone, Debug)]
pub(crate) struct Inside {
    /// The container's first process, and its start time.
    init: (u32, u64),
    /// The init's children when the container was made (the keeper), with their start times.
    keepers: Vec<(u32, u64)>,
    /// The inode of their pid namespace.
    ns: u64,
}

impl Inside {
    /// The container whose first process is `init` (as this machine numbers it), as it is now.
    pub(crate) fn read(init: u32) -> Option<Self> {
        let ns = crate::process::pid_ns_of(init)?;
        let start = crate::process::process_start_time(init);
        let keepers = crate::process::in_pid_ns(ns)
            .into_iter()
            .filter(|&(_, ppid)| ppid == init)
            .map(|(pid, _)| (pid, crate::process::process_start_time(pid)))
            .collect();
        Some(Self {
            init: (init, start),
            keepers,
            ns,
        })
    }

    /// Kills what attempt `mark` left in the container: the process its `podman exec` started
    /// (the one whose parent is outside the container, marked with [`ATTEMPT_VAR`] by orch's
    /// `exec`) with everything below it, and every process no other attempt's holds (one
    /// re-parented to the container's init: it left its attempt's wrapper). Read again until
    /// nothing is left to kill (at most 50 sweeps). The other attempts running in the container
    /// (their `exec`'s process and what is below it), its init and its keeper are spared.
    pub(crate) fn stop(&self, mark: &str) {
        let (init, start) = self.init;
        if !crate::process::process_alive(init, start) {
            return;
        }
        for _ in 0..50 {
            let procs = crate::process::in_pid_ns(self.ns);
            let mut spared: std::collections::BTreeSet<u32> = [init].into();
            for &(pid, start) in &self.keepers {
                if crate::process::process_alive(pid, start) {
                    spared.insert(pid);
                }
            }
            for (&pid, ppid) in &procs {
                let top = pid != init && !procs.contains_key(ppid);
                if top && crate::process::env_of(pid, ATTEMPT_VAR).as_deref() != Some(mark) {
                    spared.insert(pid);
                    spared.extend(crate::process::wrapper::descendants_in(&procs, pid));
                }
            }
            let doomed: Vec<u32> = procs.into_keys().filter(|p| !spared.contains(p)).collect();
            if doomed.is_empty() {
                return;
            }
            for pid in doomed {
                if let Ok(raw) = i32::try_from(pid) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(raw),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}
