//! The container engine's commands of the container executor (podman's, or docker's where
//! podman is absent: [`Engine`], the one place that knows which): the plan's container made
//! (`run -d` of a keeper), an attempt's `exec` argv, its processes stopped, the containers of
//! earlier runs found by label and removed.

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

/// The variable that chooses the container engine: `podman` or `docker`.
pub(crate) const ENGINE_VAR: &str = "ORCH_CONTAINER_ENGINE";

/// The container engine orch's containers are made with. Chosen once per process
/// ([`engine`]): [`ENGINE_VAR`] when set, else podman when `ORCH_PODMAN` is set or `podman` is
/// on `PATH`, else docker when `docker` is on `PATH` and its daemon answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Engine {
    Podman,
    Docker,
}

impl Engine {
    /// Its name, as the console and the book say it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Podman => "podman",
            Self::Docker => "docker",
        }
    }
}

/// Why no engine can be used: [`ENGINE_VAR`] names none orch knows (a person's mistake, exit
/// 2), or none is installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NoEngine {
    Unknown(String),
    Missing,
}

impl std::fmt::Display for NoEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unknown(v) => write!(
                f,
                "{ENGINE_VAR}=`{}` names no container engine orch knows: `podman` or `docker`",
                crate::untrusted::text::escaped(v)
            ),
            Self::Missing => write!(
                f,
                "no container engine: neither `podman` nor `docker` (with its daemon answering `docker version`) is on PATH"
            ),
        }
    }
}

/// The engine of this process, chosen at the first ask ([`Engine`]).
pub(crate) fn engine() -> Result<Engine, NoEngine> {
    static CHOSEN: std::sync::OnceLock<Result<Engine, NoEngine>> = std::sync::OnceLock::new();
    CHOSEN.get_or_init(choose).clone()
}

fn choose() -> Result<Engine, NoEngine> {
    match std::env::var_os(ENGINE_VAR) {
        Some(v) if v == "podman" => return Ok(Engine::Podman),
        Some(v) if v == "docker" => return Ok(Engine::Docker),
        Some(v) if !v.is_empty() => {
            return Err(NoEngine::Unknown(v.to_string_lossy().into_owned()));
        }
        _ => {}
    }
    if std::env::var_os("ORCH_PODMAN").is_some() || on_path("podman") {
        return Ok(Engine::Podman);
    }
    if on_path("docker") && docker_answers() {
        return Ok(Engine::Docker);
    }
    Err(NoEngine::Missing)
}

/// Whether an executable `name` is in a directory of `PATH`.
fn on_path(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .any(|d| {
            std::fs::metadata(d.join(name))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether docker's daemon answers (`docker version`, bounded: 20 s).
fn docker_answers() -> bool {
    super::ready::probe_once(
        &["docker".to_string(), "version".to_string()],
        std::time::Duration::from_secs(20),
    )
}

/// Whether this process's engine is docker.
pub(crate) fn is_docker() -> bool {
    engine() == Ok(Engine::Docker)
}

/// The engine's name for messages (`podman` when none can be used: its refusal names both).
pub(crate) fn name() -> &'static str {
    engine().map_or("podman", Engine::name)
}

/// The program: docker's `docker` on `PATH`; podman's `ORCH_PODMAN` (tests, a podman
/// elsewhere), else `podman` on `PATH`.
pub(crate) fn program() -> String {
    if is_docker() {
        return "docker".to_string();
    }
    std::env::var("ORCH_PODMAN").unwrap_or_else(|_| "podman".to_string())
}

/// Whether the engine answers (`podman --version`; `docker version`, which asks its daemon):
/// its version line, or why not.
pub(crate) fn version() -> Result<String, String> {
    let args: &[&str] = if is_docker() {
        &["version", "--format", "docker {{.Server.Version}}"]
    } else {
        &["--version"]
    };
    let out = crate::agent_env::command(program())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("`{}` cannot be run: {e}", program()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err: String = err.trim().chars().take(500).collect();
        return Err(format!(
            "`{} {}` failed: {}",
            program(),
            args[0],
            crate::untrusted::text::escaped(&err)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Whether the engine has image `image` here (`podman image exists`, `docker image inspect`).
pub(crate) fn has_image(image: &str) -> bool {
    let args: &[&str] = if is_docker() {
        &["image", "inspect", "--format", "{{.Id}}", image]
    } else {
        &["image", "exists", image]
    };
    crate::agent_env::command(program())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
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

/// The seccomp profile of docker's containers where orch's sandbox runs (a plan's, a one-shot
/// verify's): podman's own default (`containers-common`'s `seccomp.json`, Apache-2.0), which
/// lets a process make a user namespace and its mount namespace (`orch sandbox-exec` hides
/// orch's private directory that way) and allows no more than docker's default otherwise;
/// docker's default refuses `unshare` to a container without `CAP_SYS_ADMIN`.
const SECCOMP: &str = include_str!("../../../assets/containers-seccomp.json");

/// The file of [`SECCOMP`] docker's client reads (`--security-opt seccomp=FILE`): written once
/// per process into orch's own directory `orch-seccomp-<uid>` of the temporary directory, this
/// user's alone (0700, its owner checked: another user's is refused, never written through).
fn seccomp_file() -> Result<PathBuf, String> {
    static FILE: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        use std::io::Write as _;
        use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
        let me = nix::unistd::geteuid().as_raw();
        let dir = std::env::temp_dir().join(format!("orch-seccomp-{me}"));
        let said = |e: &dyn std::fmt::Display| {
            format!(
                "cannot write docker's seccomp profile in `{}`: {e}",
                dir.display()
            )
        };
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let meta = std::fs::symlink_metadata(&dir).map_err(|e| said(&e))?;
                if !meta.file_type().is_dir() || meta.uid() != me || meta.mode() & 0o077 != 0 {
                    return Err(said(&"it is not this user's private directory"));
                }
            }
            Err(e) => return Err(said(&e)),
        }
        let file = dir.join("profile.json");
        let part = dir.join(format!("profile.json.{}", std::process::id()));
        let _ = std::fs::remove_file(&part);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&part)
            .map_err(|e| said(&e))?;
        f.write_all(SECCOMP.as_bytes()).map_err(|e| said(&e))?;
        drop(f);
        std::fs::rename(&part, &file).map_err(|e| said(&e))?;
        Ok(file)
    })
    .clone()
}

/// The argv of `podman run -d` that makes the container of `spec`: its first process orch's
/// own keeper ([`super::init`], orch's executable `spec.orch`, mounted read-only), which stops
/// at once and which no process of the container can trace. With docker, its seccomp profile
/// is podman's ([`SECCOMP`]); an error when it cannot be written.
pub(crate) fn run_argv(spec: &Spec<'_>) -> Result<Vec<String>, String> {
    let mut a: Vec<String> = vec![program(), "run".into(), "-d".into()];
    if is_docker() {
        a.extend([
            "--security-opt".into(),
            format!("seccomp={}", seccomp_file()?.display()),
        ]);
    }
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
    Ok(a)
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

/// How container `name` ended, settled: a removal by hand (`podman rm -f`) kills the keeper
/// (exit 137, SIGKILL) and removes the container a moment later, so a container seen stopped by
/// SIGKILL is looked at again, every 50 ms for at most 2 s, until it is gone or stays so (seen
/// under load: orch asked in between and counted a person's removal as the agent's doing).
pub(crate) fn ended_settled(name: &str) -> Option<Ended> {
    let first = ended(name);
    if !matches!(first, Some(Ended::Stopped { code: 137, .. })) {
        return first;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut last = first;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        last = ended(name);
        if !matches!(last, Some(Ended::Stopped { code: 137, .. })) {
            return last;
        }
    }
    last
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

/// The pids of container `name`'s first process and of its monitor, if it runs. podman's
/// monitor (`conmon`) is re-parented to `orch up` (which keeps it); docker's (its
/// `containerd-shim`) is containerd's child, never orch's: `None`.
pub(crate) fn pids(name: &str) -> Option<(u32, Option<u32>)> {
    if is_docker() {
        let out = output(&[
            program(),
            "inspect".into(),
            "--type".into(),
            "container".into(),
            "--format".into(),
            "{{.State.Pid}}".into(),
            name.into(),
        ])
        .ok()?;
        let pid: u32 = out.trim().parse().ok()?;
        return (pid > 0).then_some((pid, None));
    }
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
    (pid > 0 && monitor > 0).then_some((pid, Some(monitor)))
}

/// The control group of container `name` (its memory controller's, on control groups v1), as
/// this machine names it below `/sys/fs/cgroup`: podman's `inspect` says it; docker's does not,
/// so it is read from its first process's `/proc/<pid>/cgroup` here (asked when it was made,
/// before anything of the plan's ran in it).
pub(crate) fn cgroup_path(name: &str) -> Option<String> {
    if !is_docker() {
        return output(&[
            program(),
            "inspect".into(),
            "--type".into(),
            "container".into(),
            "--format".into(),
            "{{.State.CgroupPath}}".into(),
            name.into(),
        ])
        .ok()
        .map(|p| p.trim().to_string());
    }
    let (pid, _) = pids(name)?;
    let bytes =
        crate::untrusted::read::head(Path::new(&format!("/proc/{pid}/cgroup")), 16 * 1024).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let of = |want: &dyn Fn(&str) -> bool| {
        text.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            want(controllers).then(|| path.to_string())
        })
    };
    of(&|c| c.split(',').any(|c| c == "memory")).or_else(|| of(&|c| c.is_empty()))
}

/// Removes container `name` with whatever runs in it, the containers that share its network
/// (its services: podman refuses to remove it before them) and their anonymous volumes (an
/// image's `VOLUME`: a service's data goes with it).
pub(crate) fn remove(name: &str) -> Result<(), String> {
    if is_docker() {
        return docker_remove(name);
    }
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

/// docker's `rm` has neither `--depend` nor `-t`: the containers orch made in the network of
/// `name` (its services: the service label, its run's label, docker's record of their network
/// naming `name` or its id) go first, then `name`, each `rm -f -v` (a SIGKILL, no wait).
fn docker_remove(name: &str) -> Result<(), String> {
    let owner = output(&[
        program(),
        "inspect".into(),
        "--type".into(),
        "container".into(),
        "--format".into(),
        format!("{{{{.Id}}}} {{{{index .Config.Labels \"{RUN_LABEL}\"}}}}"),
        name.into(),
    ]);
    if let Ok(owner) = owner {
        let mut words = owner.split_whitespace();
        let (id, run) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let joined = [format!("container:{name}"), format!("container:{id}")];
        let services = output(&[
            program(),
            "ps".into(),
            "-a".into(),
            "--filter".into(),
            format!("label={RUN_LABEL}={run}"),
            "--filter".into(),
            format!("label={SERVICE_LABEL}"),
            "--format".into(),
            "{{.Names}}".into(),
        ])
        .unwrap_or_default();
        let services: Vec<String> = services
            .lines()
            .map(str::trim)
            .filter(|n| n.starts_with(NAME_PREFIX) && *n != name)
            .map(str::to_string)
            .collect();
        if !run.is_empty() && !services.is_empty() {
            let mut argv = vec![
                program(),
                "inspect".into(),
                "--type".into(),
                "container".into(),
                "--format".into(),
                "{{.Name}} {{.HostConfig.NetworkMode}}".into(),
            ];
            argv.extend(services);
            let theirs: Vec<String> = output(&argv)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let (n, mode) = l.trim().split_once(' ')?;
                    joined
                        .iter()
                        .any(|j| j == mode)
                        .then(|| n.trim_start_matches('/').to_string())
                })
                .collect();
            if !theirs.is_empty() {
                let mut argv = vec![program(), "rm".into(), "-f".into(), "-v".into()];
                argv.extend(theirs);
                let _ = output(&argv);
            }
        }
    }
    output(&[
        program(),
        "rm".into(),
        "-f".into(),
        "-v".into(),
        name.into(),
    ])
    .map(drop)
}

/// The containers orch made (its label and its name prefix): name and run label, the
/// services' first (a plan's container goes after the services in its network). None when no
/// engine can be used.
pub(crate) fn listed() -> Vec<(String, String)> {
    let Ok(engine) = engine() else {
        return Vec::new();
    };
    // docker's `ps` gives `.Labels` as one string, with a `.Label` of a key.
    let label = |k: &str| match engine {
        Engine::Podman => format!("{{{{index .Labels \"{k}\"}}}}"),
        Engine::Docker => format!("{{{{.Label \"{k}\"}}}}"),
    };
    let Ok(out) = output(&[
        program(),
        "ps".into(),
        "-a".into(),
        "--filter".into(),
        format!("label={RUN_LABEL}"),
        "--format".into(),
        format!(
            "{{{{.Names}}}} {} {}",
            label(RUN_LABEL),
            label(SERVICE_LABEL)
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
