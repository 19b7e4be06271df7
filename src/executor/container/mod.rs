//! `executor = "container"`: each plan's attempts run in a podman container of the plan's image
//! (`image` on the plan, its agent or `[defaults]`, else the repository's dev container:
//! [`devcontainer`]). One container per plan, made at its first attempt and kept while the plan
//! runs (its first process orch's own, [`init`], which no process of it can trace); each attempt a `podman exec` in it, under orch's session
//! wrapper here and `orch sandbox-exec` inside (orch's executable mounted read-only), so that
//! Landlock confines the agent inside as it would here. Mounted read-write, at the same paths as
//! here: the plan's worktree, its attempts' report directories and a `TMPDIR` directory of the
//! plan's (each attempt a fresh one below it); nothing else of this machine. The network:
//! `open` is podman's default; otherwise the container has a namespace of its own with only
//! loopback (`--network none`), and a confined attempt's proxy sockets are opened in it by
//! orch's wrapper here, which joins it for that ([`NetPlace::Join`]; root only).
//!
//! Each attempt runs under orch's wrapper inside the container too (`orch session-exec`, a child
//! subreaper in the container's pid namespace): what the agent starts stays below it however it
//! detaches, and is killed when the agent exits. A killed `podman exec` leaves its process
//! running inside: when the attempt ends (before its work is taken), orch kills, from this
//! machine, the process its `exec` started (marked [`podman::ATTEMPT_VAR`]) with everything
//! below it, and every process of the container no running attempt holds
//! ([`podman::Inside::stop`]). A container that stops under an
//! attempt makes it lost ([`Lost::Place`]), not the agent's fault; the next attempt makes a new
//! one. The container is removed when the run lets go of the plan; after a kill of `orch up`,
//! the next start removes the containers of runs whose orch is gone (found by label).
//!
//! The plan's services (`[[service]]`, [`services`]) are containers of their own in the plan's
//! container's network, made (in the manifest's order) with it and before its first attempt
//! runs in it, made anew with it; an attempt waits for them to be ready in its own process
//! ([`ready`]: `orch service-wait`), and one that does not get ready makes the attempt lost.

mod build;
mod client;
pub(crate) mod devcontainer;
mod images;
pub(crate) mod init;
mod oneshot;
mod oom;
mod plan_box;
mod podman;
mod ready;
mod services;
mod sweep;
mod tools;

pub(crate) use images::{Images, images};
pub(crate) use oneshot::{Mounts, OneShot, PlanImage, client_for};
pub(crate) use ready::{connect as service_connect, service_wait};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use anyhow::anyhow;

use super::{Attempt, Confiner, Executor, Lost, NetPlace, PlanStart, RunStart};
use crate::error::CliError;
use crate::exit;
use crate::manifest::{Host, Manifest, NetworkMode, PlanEntry, SandboxMode, Service};
use crate::sandbox::Rules;
use plan_box::PlanBox;

/// A podman container per plan.
#[derive(Debug)]
pub(crate) struct ContainerExecutor {
    plan: String,
    /// The image the manifest names (`None`: the dev container's).
    image: Option<String>,
    /// The agent's network, as the manifest says it.
    network: Option<NetworkMode>,
    /// The plan's container, shared by every executor of the plan in this run (a reloaded
    /// manifest makes a new executor; the container stays).
    box_: Arc<PlanBox>,
    /// The plan's services, in its order.
    services: Vec<Service>,
    /// `defaults.ports`: the size of the plan's block of ports (`ORCH_PORT` on).
    ports: u16,
    /// Whether an attempt of the plan may keep a private copy of its client's state in
    /// `<state_dir>/.clients/<plan>/` (an agent of a client that has one, not `sandbox =
    /// "off"`): only then is that directory mounted in the container.
    client_states: bool,
    /// Its container's (and its services') memory and processes (`memory`, `pids`).
    limits: crate::manifest::Limits,
}

/// The start of the name of a record of a service that did not get ready.
const NOT_READY_PREFIX: &str = "not-ready-";

/// This run's id in its containers' labels: orch's pid and the start time of its process.
fn run_id() -> String {
    let pid = std::process::id();
    format!("{pid}-{}", crate::process::process_start_time(pid))
}

/// Plan `plan`'s part of the names orch gives its containers and their directories: its
/// letters and digits (others as `-`), then a short digest of the exact name, so that no two
/// plans share one (`a_b` and `a.b`, or `a-svc-db` and plan `a`'s service `db`, would).
fn plan_part(plan: &str) -> String {
    let safe: String = plan
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let digest = crate::git::blob_id_of_bytes(plan.as_bytes());
    format!("{safe}-{}", &digest[..8])
}

/// Removes every container orch made in a run that no longer runs (a killed `orch up`, `orch
/// integrate` or `orch merge`: its plans' containers, services and one-shot verify containers,
/// with what the agent's code left running in them); one note each.
pub(crate) fn remove_dead_runs() -> Vec<String> {
    let mut notes = Vec::new();
    for (name, run) in podman::listed() {
        if run_alive(&run) {
            continue;
        }
        match podman::remove(&name) {
            Ok(()) => notes.push(format!(
                "removed container `{name}`, left by an earlier run of orch"
            )),
            Err(e) => notes.push(format!("cannot remove container `{name}`: {e}")),
        }
    }
    // Then orch's directories of their plans here (after their containers: none mounts them).
    notes.extend(sweep::remove_dead_dirs(&std::env::temp_dir()));
    notes
}

/// Whether the run of id `run` (as [`run_id`] spells it) still runs.
fn run_alive(run: &str) -> bool {
    let Some((pid, start)) = run.split_once('-') else {
        return false;
    };
    match (pid.parse::<u32>(), start.parse::<u64>()) {
        (Ok(pid), Ok(start)) => crate::process::process_alive(pid, start),
        _ => false,
    }
}

/// Whether a container's network can be confined by orch's proxy here: orch's wrapper joins the
/// container's namespace to open the proxy's sockets there, and `setns` into a namespace of
/// podman's needs root (a rootless podman's namespaces belong to its own user namespace).
fn confined_here() -> Result<(), String> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    Err("its agents run in a container, whose network orch's proxy serves only when orch runs as root".to_string())
}

/// The plans' containers of this run, by plan.
fn boxes() -> &'static Mutex<HashMap<String, Weak<PlanBox>>> {
    static B: OnceLock<Mutex<HashMap<String, Weak<PlanBox>>>> = OnceLock::new();
    B.get_or_init(|| Mutex::new(HashMap::new()))
}

impl ContainerExecutor {
    pub(crate) fn new(manifest: &Manifest, entry: &PlanEntry) -> Self {
        let network = manifest
            .agents
            .get(&entry.agent)
            .and_then(|a| a.sandbox.network.mode);
        let mut all = boxes().lock().unwrap_or_else(PoisonError::into_inner);
        let box_ = match all.get(&entry.name).and_then(Weak::upgrade) {
            Some(b) => b,
            None => {
                let run = run_id();
                let safe = plan_part(&entry.name);
                let b = Arc::new(PlanBox {
                    name: format!("{}{run}-{safe}", podman::NAME_PREFIX),
                    tmp_root: std::env::temp_dir().join(format!("orch-{run}-{safe}-container")),
                    made: Mutex::new(None),
                    monitor: Mutex::new(None),
                    netns: Mutex::new(None),
                    inside: Mutex::new(None),
                    client: Mutex::new(None),
                    image: Mutex::new(None),
                    services: Mutex::new((Vec::new(), HashMap::new())),
                    marks: std::env::temp_dir().join(format!("orch-{run}-{safe}-services")),
                    lost_why: Mutex::new(None),
                    news: Mutex::new(Vec::new()),
                    oom: Mutex::new(None),
                });
                all.insert(entry.name.clone(), Arc::downgrade(&b));
                b
            }
        };
        Self {
            plan: entry.name.clone(),
            image: entry.image.clone(),
            network,
            box_,
            services: manifest.services_of(entry).into_iter().cloned().collect(),
            ports: manifest.defaults.ports,
            client_states: std::iter::once(&entry.agent)
                .chain(&entry.best_of.agents)
                .filter_map(|a| manifest.agents.get(a))
                .any(|a| {
                    a.sandbox.mode != SandboxMode::Off
                        && crate::manifest::KnownCli::of(&a.command)
                            .is_some_and(|c| c.private_state().is_some())
                }),
            limits: entry.limits,
        }
    }

    /// The attempt's `TMPDIR` inside the plan's directory of them.
    fn tmp_of(&self, host_tmp: &Path) -> PathBuf {
        let leaf = host_tmp
            .file_name()
            .map_or_else(|| "attempt".into(), |n| n.to_os_string());
        self.box_.tmp_root.join(leaf)
    }

    /// The mark of an attempt's processes.
    fn mark(&self, unit: &str, attempt: u32) -> String {
        format!("{}/{unit}/{attempt}", self.plan)
    }

    /// The client from this machine mounted in the plan's container, if any.
    fn client(&self) -> Option<client::Client> {
        self.box_
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// When the kernel killed processes of the plan's container for memory since last asked
    /// (its `memory` bound reached), a note for the console: the attempt that ended counts.
    fn said_out_of_memory(&self) {
        let kills = self
            .box_
            .oom
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
            .map_or(0, oom::OomCount::new_kills);
        if kills == 0 {
            return;
        }
        self.box_
            .news
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(format!(
                "out of memory: the kernel killed {kills} process{} in the container of plan `{}`, which reached its bound of {} (`memory`); the attempt counts",
                if kills == 1 { "" } else { "es" },
                self.plan,
                crate::manifest::shown_size(self.limits.memory())
            ));
    }

    /// Kills what attempt `attempt` of `unit` left running in the plan's container.
    fn stop_left(&self, unit: &str, attempt: u32) {
        let inside = self
            .box_
            .inside
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(inside) = inside {
            inside.stop(&self.mark(unit, attempt));
        }
    }
}

impl Executor for ContainerExecutor {
    fn name(&self) -> &'static str {
        "container"
    }

    fn confiner(&self) -> Confiner {
        Confiner::Here
    }

    fn network(&self) -> Result<(), String> {
        match self.network {
            // The container's own (`--network none`); `open` is never asked here.
            Some(NetworkMode::None) => Ok(()),
            _ => confined_here(),
        }
    }

    fn network_place(&self) -> Result<NetPlace, String> {
        match self.network {
            Some(NetworkMode::None | NetworkMode::Open) => Ok(NetPlace::Own),
            _ => self
                .box_
                .netns
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .map(NetPlace::Join)
                .ok_or_else(|| {
                    format!(
                        "the network namespace of the container of plan `{}` is not known",
                        self.plan
                    )
                }),
        }
    }

    fn runs_confined(&self, confined_here: bool, _: SandboxMode, _: &[Host]) -> bool {
        confined_here
    }

    fn attempts_here(&self) -> bool {
        true
    }

    fn wrap(
        &self,
        _: &Attempt<'_>,
        argv: Vec<String>,
        _: &[(String, String)],
    ) -> Result<Vec<String>, String> {
        // Found on the container's PATH, not this machine's.
        let mut out = vec!["/usr/bin/env".to_string()];
        out.extend(argv);
        Ok(out)
    }

    fn confine(
        &self,
        orch_bin: &Path,
        rules: &mut Rules,
        tmp: &Path,
        _: SandboxMode,
        argv: Vec<String>,
    ) -> Vec<String> {
        // The attempt's TMPDIR is the one mounted in the container.
        let own = self.tmp_of(tmp);
        for w in &mut rules.write {
            if w == tmp {
                *w = own.clone();
            }
        }
        crate::sandbox::wrap(orch_bin, rules, &argv)
    }

    fn enter(
        &self,
        at: &Attempt<'_>,
        argv: Vec<String>,
        env: &[(String, String)],
        tmp: &Path,
    ) -> Result<Vec<String>, String> {
        self.ensure(at)?;
        let (services, started) = self.services_up(at)?;
        let own = self.tmp_of(tmp);
        crate::links::fresh_dir(&own)
            .map_err(|e| format!("cannot make the TMPDIR `{}`: {e}", own.display()))?;
        let mut out = vec![
            podman::program(),
            "exec".to_string(),
            "-i".to_string(),
            "--workdir".to_string(),
            at.workdir.display().to_string(),
        ];
        // The variables an attempt here has: orch's own environment (the client's key and
        // settings, as a local agent inherits them) and the attempt's, but for what names this
        // machine's places (its PATH, HOME, TMPDIR, the agent sockets, the loader's) and the
        // proxy's, set for a confined attempt after this. Passed by name: podman takes each
        // value from its own environment, orch's wrapper's.
        let skip = [
            "PATH",
            "HOME",
            "TMPDIR",
            "PWD",
            "OLDPWD",
            "SHLVL",
            "_",
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            crate::sandbox::net::SPEC_VAR,
        ];
        let mut names: std::collections::BTreeSet<String> = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .chain(env.iter().map(|(k, _)| k.clone()))
            .filter(|k| {
                !k.is_empty()
                    && !k.contains('=')
                    && !skip.contains(&k.as_str())
                    && !crate::agent_env::AGENT_SOCKETS.contains(&k.as_str())
            })
            .collect();
        names.extend(
            crate::sandbox::net::PROXY_VARS
                .iter()
                .map(|k| k.to_string()),
        );
        // Where its services are: on the container's own loopback (and not through orch's
        // proxy).
        let vars = services::vars(&services);
        names.retain(|k| !vars.iter().any(|(v, _)| v == k));
        for k in names {
            out.extend(["--env".to_string(), k]);
        }
        for (k, v) in vars {
            out.extend(["--env".to_string(), format!("{k}={v}")]);
        }
        out.extend([
            "--env".to_string(),
            format!("TMPDIR={}", own.display()),
            "--env".to_string(),
            format!("{}={}", podman::ATTEMPT_VAR, self.mark(at.unit, at.attempt)),
            self.box_.name.clone(),
            // orch's wrapper inside as well: a subreaper in the container's pid namespace, so
            // that what the agent leaves there, however it detached, is below it and killed
            // when it exits. Its output cap is the wrapper's here.
            at.orch_bin.display().to_string(),
            "session-exec".to_string(),
            "--log-max".to_string(),
            u64::MAX.to_string(),
            "--grace-ms".to_string(),
            "1000".to_string(),
            "--".to_string(),
        ]);
        out.extend(match self.client() {
            Some(c) => c.in_argv(argv),
            None => argv,
        });
        // The services not known ready yet are waited for first, by the attempt's own process.
        let pending: Vec<ready::WaitFor> = services
            .iter()
            .filter(|i| !services::ready_mark(&self.box_.marks, &i.container).exists())
            .map(|i| i.wait_for(&self.box_.name, at.orch_bin, Some(&self.box_.marks)))
            .collect();
        if !pending.is_empty() {
            let spec = ready::Wait {
                plan: self.plan.clone(),
                services: pending,
                record: Some(self.record_of(at.unit, at.attempt)),
                started: started
                    .map(|(n, t)| (n, u64::try_from(t.as_millis()).unwrap_or(u64::MAX))),
            };
            let spec = serde_json::to_string(&spec).map_err(|e| e.to_string())?;
            let mut first = vec![
                at.orch_bin.display().to_string(),
                "service-wait".to_string(),
                "--spec".to_string(),
                spec,
                "--".to_string(),
            ];
            first.append(&mut out);
            out = first;
        }
        Ok(out)
    }

    fn lost(&self, code: i32) -> Option<Lost> {
        if code == 0 {
            return None;
        }
        // A service that did not get ready, as orch's own waiter recorded (the agent never
        // ran; the status alone, which an agent may exit with, is not enough).
        if code == i32::from(ready::NOT_READY_EXIT)
            && let Some(why) = self.take_record()
        {
            *self
                .box_
                .lost_why
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(why);
            return Some(Lost::Place);
        }
        let made = self
            .box_
            .made
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        if !made {
            return None;
        }
        // Lost only when the container ended by a hand outside it: removed, or its keeper
        // stopped by a signal from outside (exit 0, [`init`]), or podman not answering. A
        // keeper killed otherwise was killed from inside (what ran there: the agent, its
        // memory use with the keeper's kill score raised): the attempt counts, said why.
        // (`podman kill`'s SIGKILL from outside ends it with the same 137 as the kernel's
        // out-of-memory killer, and podman does not tell them apart: it counts too.)
        let why = match podman::ended_settled(&self.box_.name) {
            Some(podman::Ended::Running) => {
                self.said_out_of_memory();
                return None;
            }
            Some(podman::Ended::Stopped { code, oom }) if code != 0 => {
                self.box_
                    .news
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(format!(
                        "the container of plan `{}` stopped under the attempt: its first process, orch's keeper, was killed from inside it (exit status {code}{}), by what ran there; the attempt counts, and the next one makes the container anew",
                        self.plan,
                        if oom { ", out of memory" } else { "" }
                    ));
                return None;
            }
            Some(podman::Ended::Stopped { .. }) => "stopped from outside",
            Some(podman::Ended::Gone) => "removed",
            None if podman::is_docker() => "not known to docker (it did not answer)",
            None => "not known to podman (it did not answer)",
        };
        *self
            .box_
            .lost_why
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(format!(
            "the container of plan `{}` was {why} under the attempt",
            self.plan
        ));
        Some(Lost::Place)
    }

    fn lost_why(&self) -> Option<String> {
        self.box_
            .lost_why
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn ended(&self, unit: &str, attempt: u32) {
        self.stop_left(unit, attempt);
        let list = self
            .box_
            .services
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone();
        let gone = self.services_gone(&list, &format!("attempt {attempt} of `{unit}` ended"));
        self.box_
            .news
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(gone);
    }

    fn place_failed(&self, unit: &str, attempt: u32, code: i32) -> Option<String> {
        if code != i32::from(ready::NOT_READY_EXIT) {
            return None;
        }
        let path = self.record_of(unit, attempt);
        let why = crate::untrusted::read::text(&path, crate::untrusted::read::REPORT).ok();
        let _ = std::fs::remove_file(&path);
        why.filter(|w| !w.trim().is_empty())
    }

    fn place_news(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .box_
                .news
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    fn adopts_processes(&self) -> bool {
        false
    }

    fn settled(&self, _: &Path, _: (&str, &str), unit: &str, attempt: u32) -> Option<String> {
        self.stop_left(unit, attempt);
        // A record of its waiter that no loss took (a check's: its failure says why).
        let _ = std::fs::remove_file(self.record_of(unit, attempt));
        // Its TMPDIR (named as orch names the attempt's here: `orch-<pid>-<plan>-<unit>-<n>`).
        let leaf = format!("orch-{}-{}-{unit}-{attempt}", std::process::id(), self.plan);
        let _ = crate::untrusted::remove::remove_path(&self.box_.tmp_root.join(leaf));
        None
    }

    fn leftovers(&self, _: &Path, _: (&str, &str), _: &[(String, u32)]) -> Vec<String> {
        remove_dead_runs()
    }

    fn checks_agents_here(&self) -> bool {
        false
    }

    fn commands_in_place(&self) -> bool {
        true
    }

    fn check_start(
        &self,
        run: &RunStart<'_>,
        plans: &[PlanStart<'_>],
    ) -> Result<Vec<String>, CliError> {
        let first = plans.first().map_or("", |p| p.name);
        let install = format!(
            "plan `{first}` runs its agents in a container (`executor = \"container\"`): install podman (`apt-get install podman`) or docker (`apt-get install docker.io`, its daemon running), or set executor = \"local\""
        );
        match podman::engine() {
            Ok(_) => {}
            Err(e @ podman::NoEngine::Unknown(_)) => {
                return Err(CliError::invalid(anyhow!("{e}")).with_hint(format!(
                    "set {}=podman or {}=docker, or unset it (podman when it is on PATH, else docker)",
                    podman::ENGINE_VAR,
                    podman::ENGINE_VAR
                )));
            }
            Err(e @ podman::NoEngine::Missing) => {
                return Err(CliError::new(exit::FAILURE, anyhow!("{e}")).with_hint(install));
            }
        }
        let version = podman::version()
            .map_err(|e| CliError::new(exit::FAILURE, anyhow!("{e}")).with_hint(install))?;
        let mut notes = Vec::new();
        // podman is the default: docker is said, and why.
        if podman::is_docker() {
            let why = if std::env::var_os(podman::ENGINE_VAR).is_some() {
                format!("{}=docker", podman::ENGINE_VAR)
            } else {
                "podman is not on PATH".to_string()
            };
            notes.push(format!(
                "plan `{first}` runs in docker containers ({}; {why})",
                crate::untrusted::text::escaped(&version)
            ));
        }
        for p in plans {
            let mode = run
                .manifest
                .agents
                .get(&p.entry.agent)
                .and_then(|a| a.sandbox.network.mode);
            if !matches!(mode, Some(NetworkMode::None | NetworkMode::Open)) {
                let fix = format!(
                    "set `network = \"none\"` (no network) or `network = \"open\"` in `[agents.{}]`",
                    p.entry.agent
                );
                if let Err(why) = confined_here() {
                    return Err(CliError::invalid(anyhow!(
                        "{}: plan `{}` runs its agent `{}` in a container with a confined network, which cannot be enforced: {why}",
                        run.manifest.path.display(),
                        p.name,
                        p.entry.agent
                    ))
                    .with_hint(format!("run orch as root, or {fix}")));
                }
                // One set of the proxy's sockets at a time in the container's namespace.
                let at_once = run.manifest.agents_per_plan(p.entry);
                if at_once > 1 {
                    return Err(CliError::invalid(anyhow!(
                        "{}: plan `{}` runs {at_once} agents at once in its container, whose confined network serves one at a time",
                        run.manifest.path.display(),
                        p.name
                    ))
                    .with_hint(format!("set `parallel = 1` on the plan, or {fix}")));
                }
            }
            let image = match &p.entry.image {
                Some(i) => Some(i.clone()),
                None if p.entry.repo.is_none() => {
                    let (image, built) = devcontainer::image_noted(&run.manifest.root).map_err(|e| {
                        CliError::invalid(anyhow!("plan `{}` runs in a container, but {e}", p.name))
                            .with_hint("set `image = \"…\"` on the plan, its agent or in `[defaults]` of plans.toml")
                    })?;
                    notes.extend(built);
                    if let Some(n) = devcontainer::not_done_note(&run.manifest.root)
                        && !notes.contains(&n)
                    {
                        notes.push(n);
                    }
                    Some(image)
                }
                None => None,
            };
            if let Some(image) = &image {
                // A client orch knows is looked for below (and mounted from here).
                let own = p.program.as_deref().filter(|program| {
                    crate::manifest::KnownCli::of(&[program.to_string()]).is_none()
                });
                tools::check(p.name, image, own)?;
            }
            if let (Some(image), Some(program)) = (image, &p.program) {
                let found = client::find(p.name, &image, program, &run.manifest.root)?;
                if let Some(found) = found {
                    notes.push(found.note(p.name, &image));
                    let b = boxes()
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get(p.name)
                        .and_then(Weak::upgrade);
                    if let Some(b) = b {
                        *b.client.lock().unwrap_or_else(PoisonError::into_inner) = found.mounted();
                    }
                }
            }
        }
        Ok(notes)
    }
}
