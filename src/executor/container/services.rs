//! A container plan's services (`[[service]]`): each a container of its own (its image's, or
//! the plan's image running its `command`) that shares the plan's container's network
//! namespace (`--network container:<plan's>`), so that it listens on the plan's own loopback,
//! which no other plan's namespace reaches, and publishes no port on this machine. Its port is
//! its fixed `port`, else `ORCH_PORT + 1 + k` of the plan's block (k: its place among the
//! plan's services without one); it is told it as `PORT` and `ORCH_SERVICE_PORT` (and wherever
//! its `env` values or its `command` say `${ORCH_SERVICE_PORT}`). No volume: its data lives in
//! its container and goes with it (`podman rm -v`).
//!
//! Its container carries the plan's container's labels (its run, its plan) and
//! [`podman::SERVICE_LABEL`], and a name of orch's prefix: removed with the plan's container
//! (`podman rm --depend`), and after a kill of `orch up` by the next start's sweep, services
//! first.

use std::path::{Path, PathBuf};

use std::sync::PoisonError;

use super::{Attempt, NOT_READY_PREFIX, podman, run_id};
use crate::manifest::Limits;
use crate::manifest::{PORT_PLACEHOLDER, Service, ServiceRun};

/// A plan's services as they run, and how many were started for an attempt and how long that
/// took.
pub(super) type Up = (Vec<Instance>, Option<(usize, std::time::Duration)>);

/// The address every service listens on for the plan's processes: their shared loopback.
pub(crate) const HOST: &str = "127.0.0.1";

/// One service of one plan's (or one command's) container, as it runs.
#[derive(Clone, Debug)]
pub(crate) struct Instance {
    pub(crate) recipe: Service,
    /// Its container's name.
    pub(crate) container: String,
    pub(crate) port: u16,
}

/// The instances of `recipes` beside the container `owner`: named after it, their ports from
/// `base` (the plan's `ORCH_PORT`) on.
pub(crate) fn instances(recipes: &[Service], owner: &str, base: u16) -> Vec<Instance> {
    let mut next = base;
    recipes
        .iter()
        .map(|s| {
            let port = s.port.unwrap_or_else(|| {
                next = next.saturating_add(1);
                next
            });
            Instance {
                recipe: s.clone(),
                // `.` is in no plan part of a name ([`super::plan_part`]): no plan's container is
                // named as another's service.
                container: format!("{owner}.svc.{}", s.name),
                port,
            }
        })
        .collect()
}

/// The hosts a plan's HTTP clients reach directly, not through orch's proxy (which serves the
/// allowlist from this machine, where no service is): the plan's own loopback.
const NO_PROXY_HOSTS: &str = "127.0.0.1,localhost,::1";

/// What the plan's processes (its agents, checks, `verify`) are told of `instances`:
/// `ORCH_SERVICE_<NAME>_HOST` and `_PORT`, and with any service `NO_PROXY` and `no_proxy` (orch's
/// own value, if any, and the loopback's names): nothing else listens there but the services,
/// the allowed loopback endpoints and orch's catch-alls.
pub(crate) fn vars(instances: &[Instance]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = instances
        .iter()
        .flat_map(|i| {
            let stem = i.recipe.var_stem();
            [
                (format!("{stem}_HOST"), HOST.to_string()),
                (format!("{stem}_PORT"), i.port.to_string()),
            ]
        })
        .collect();
    if !instances.is_empty() {
        for name in ["NO_PROXY", "no_proxy"] {
            let value = match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => format!("{v},{NO_PROXY_HOSTS}"),
                _ => NO_PROXY_HOSTS.to_string(),
            };
            out.push((name.to_string(), value));
        }
    }
    out
}

impl Instance {
    /// Its environment: `PORT`, `ORCH_SERVICE_PORT`, then its recipe's `env` (which may set
    /// `PORT` otherwise), `${ORCH_SERVICE_PORT}` in a value replaced by its port.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        let port = self.port.to_string();
        let mut out = vec![
            ("PORT".to_string(), port.clone()),
            ("ORCH_SERVICE_PORT".to_string(), port.clone()),
        ];
        for (k, v) in &self.recipe.env {
            out.retain(|(n, _)| n != k);
            out.push((k.clone(), v.replace(PORT_PLACEHOLDER, &port)));
        }
        out
    }

    /// The argv of `podman run -d` that starts it in the network of container `owner`
    /// (`plan_image`: the image its `command` runs in), labelled for run `run` and plan `plan`.
    pub(crate) fn run_argv(
        &self,
        run: &str,
        plan: &str,
        owner: &str,
        plan_image: &str,
        limits: Limits,
    ) -> Vec<String> {
        let mut a: Vec<String> = vec![podman::program(), "run".into(), "-d".into()];
        a.extend(["--name".into(), self.container.clone()]);
        a.extend(["--label".into(), format!("{}={run}", podman::RUN_LABEL)]);
        a.extend(["--label".into(), format!("{}={plan}", podman::PLAN_LABEL)]);
        a.extend([
            "--label".into(),
            format!("{}={}", podman::SERVICE_LABEL, self.recipe.name),
        ]);
        a.extend(["--network".into(), format!("container:{owner}")]);
        a.extend(podman::ulimits());
        a.extend(podman::bounds(limits));
        for (k, v) in self.env() {
            a.extend(["--env".into(), format!("{k}={v}")]);
        }
        match &self.recipe.run {
            ServiceRun::Image(image) => a.push(image.clone()),
            ServiceRun::Command(argv) => {
                let port = self.port.to_string();
                let mut words = argv.iter().map(|w| w.replace(PORT_PLACEHOLDER, &port));
                // Its program found on the image's PATH, its arguments after the image.
                a.extend(["--entrypoint".into(), words.next().unwrap_or_default()]);
                a.push(plan_image.to_string());
                a.extend(words);
            }
        }
        a
    }

    /// What tells that it is ready, run from this machine until it exits 0: its `ready` in its
    /// own container, else a TCP connection to its port from the container `owner` (by orch's
    /// own executable there, `orch_bin`), and how that is said.
    pub(crate) fn probe(&self, owner: &str, orch_bin: &Path) -> (Vec<String>, String) {
        let mut a = vec![podman::program(), "exec".into()];
        match &self.recipe.ready {
            Some(ready) => {
                a.push(self.container.clone());
                a.extend(ready.iter().cloned());
                (a, format!("`{}`", ready.join(" ")))
            }
            None => {
                let within = self.recipe.ready_timeout.as_millis().to_string();
                a.extend([
                    owner.to_string(),
                    orch_bin.display().to_string(),
                    "service-wait".into(),
                    "--connect".into(),
                    format!("{HOST}:{}", self.port),
                    "--within-ms".into(),
                    within,
                ]);
                (a, format!("a connection to {HOST}:{}", self.port))
            }
        }
    }

    /// Starts it in the network of container `owner`: made anew (a stopped one of the same
    /// name removed first); its monitor kept by orch (re-parented to `orch up`, it is no orphan
    /// to sweep). Returns the monitor's pid.
    pub(crate) fn start(
        &self,
        (run, plan): (&str, &str),
        owner: &str,
        plan_image: &str,
        limits: Limits,
    ) -> Result<Option<u32>, String> {
        let _ = podman::remove(&self.container);
        // Its monitor, re-parented to `orch up`, is no orphan to sweep until it is kept below.
        let _adopting = crate::process::adopting();
        podman::output(&self.run_argv(run, plan, owner, plan_image, limits)).map_err(|e| {
            format!(
                "cannot start service `{}` of plan `{plan}`: {e}",
                self.recipe.name
            )
        })?;
        let monitor = podman::pids(&self.container).and_then(|(_, m)| m);
        if let Some(m) = monitor {
            crate::process::keep_adopted(m);
        }
        Ok(monitor)
    }

    /// Starts each of `list` as [`Instance::start`] does, all at once (each `podman run -d`
    /// takes about half a second, most of it waiting for podman): each one's container name and
    /// the outcome of its start, in `list`'s order.
    pub(crate) fn start_all(
        list: &[&Instance],
        (run, plan): (&str, &str),
        owner: &str,
        plan_image: &str,
        limits: Limits,
    ) -> Vec<(String, Result<Option<u32>, String>)> {
        std::thread::scope(|s| {
            let started: Vec<_> = list
                .iter()
                .map(|i| {
                    let name = i.container.clone();
                    (
                        name,
                        s.spawn(move || i.start((run, plan), owner, plan_image, limits)),
                    )
                })
                .collect();
            started
                .into_iter()
                .map(|(name, h)| {
                    let r = h.join().unwrap_or_else(|_| {
                        Err(format!(
                            "cannot start service container `{name}`: its start panicked"
                        ))
                    });
                    (name, r)
                })
                .collect()
        })
    }

    /// The readiness of it to wait for: its probe, its deadline, where its readiness is marked
    /// (`marks`: a directory of orch's out of every container's reach).
    pub(crate) fn wait_for(
        &self,
        owner: &str,
        orch_bin: &Path,
        marks: Option<&Path>,
    ) -> super::ready::WaitFor {
        let (probe, shown) = self.probe(owner, orch_bin);
        super::ready::WaitFor {
            name: self.recipe.name.clone(),
            container: self.container.clone(),
            probe,
            shown,
            within_ms: u64::try_from(self.recipe.ready_timeout.as_millis()).unwrap_or(u64::MAX),
            mark: marks.map(|d| ready_mark(d, &self.container)),
        }
    }
}

impl super::ContainerExecutor {
    /// Starts the plan's services that do not run (all of them with a new container), all at
    /// once, in its container's network; their instances as they run, and how many were
    /// started and how long that took (`None`: none was). Their ports are read once, from the
    /// plan's block (`ORCH_PORT` of its worktree).
    pub(super) fn services_up(&self, at: &Attempt<'_>) -> Result<Up, String> {
        if self.services.is_empty() {
            return Ok((Vec::new(), None));
        }
        let mut held = self
            .box_
            .services
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (list, monitors) = &mut *held;
        if list.is_empty() {
            let base = crate::ports::port_for(at.state_dir, at.workdir, self.ports)?;
            *list = instances(&self.services, &self.box_.name, base);
        }
        let names: Vec<String> = list.iter().map(|i| i.container.clone()).collect();
        let up = podman::running_of(&names);
        if up.len() == list.len() {
            return Ok((list.clone(), None));
        }
        // Those that were ready and stopped since (under an attempt, or after): said.
        let gone = self.services_gone(list, &format!("`{}` started", at.unit));
        self.box_
            .news
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(gone);
        super::sweep::private_dir(&self.box_.marks)
            .map_err(|e| format!("cannot make `{}`: {e}", self.box_.marks.display()))?;
        let image = self
            .box_
            .image
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_default();
        let run = run_id();
        // One stopped: all of them anew (each `start` removes its old container first), so that
        // nothing one left running (a daemon its database started for an agent, on another's
        // port) outlives it and keeps the next one from getting ready: a service that does not
        // get ready makes an attempt lost, which nothing an agent did may cause.
        let down: Vec<&Instance> = list.iter().collect();
        for i in &down {
            let _ = std::fs::remove_file(ready_mark(&self.box_.marks, &i.container));
        }
        // All at once; the first that failed says why, once every start is over (those that
        // started are kept, removed with the plan's container).
        let mut failed = None;
        let began = std::time::Instant::now();
        for (name, started) in Instance::start_all(
            &down,
            (&run, &self.plan),
            &self.box_.name,
            &image,
            self.limits,
        ) {
            match started {
                Ok(Some(m)) => {
                    // The monitor of the container it replaces is gone with it.
                    if let Some(old) = monitors.insert(name, m) {
                        crate::process::forget(old);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok((list.clone(), Some((down.len(), began.elapsed())))),
        }
    }

    /// The plan's services of `list` that were ready and no longer run (found `when`: an attempt ended,
    /// a check started): one line each for the console (its exit status and the end of its log,
    /// escaped). Its mark of readiness goes: the next attempt makes it anew and waits for it.
    pub(super) fn services_gone(&self, list: &[Instance], when: &str) -> Vec<String> {
        let ready: Vec<&Instance> = list
            .iter()
            .filter(|i| ready_mark(&self.box_.marks, &i.container).exists())
            .collect();
        if ready.is_empty() {
            return Vec::new();
        }
        let names: Vec<String> = ready.iter().map(|i| i.container.clone()).collect();
        let up = podman::running_of(&names);
        let mut out = Vec::new();
        for i in ready.into_iter().filter(|i| !up.contains(&i.container)) {
            let _ = std::fs::remove_file(ready_mark(&self.box_.marks, &i.container));
            let mut line = format!(
                "service `{}` of plan `{}` stopped after it got ready, found when {when}{}",
                i.recipe.name,
                self.plan,
                super::ready::exit_of(&i.container)
            );
            let tail = super::ready::log_tail(&i.container);
            if tail.is_empty() {
                line.push_str("; its log is empty");
            } else {
                line.push_str("; the end of its log: ");
                line.push_str(&tail.join(" | "));
            }
            line.push_str(" (the next attempt starts it anew)");
            out.push(line);
        }
        out
    }

    /// Where `orch service-wait` of attempt `attempt` of `unit` records a service that did not
    /// get ready.
    pub(super) fn record_of(&self, unit: &str, attempt: u32) -> PathBuf {
        let safe: String = unit
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        self.box_
            .marks
            .join(format!("{NOT_READY_PREFIX}{safe}-{attempt}"))
    }

    /// A record of a service that did not get ready, taken (read and removed): why.
    pub(super) fn take_record(&self) -> Option<String> {
        let dir = std::fs::read_dir(&self.box_.marks).ok()?;
        for e in dir.flatten() {
            if !e
                .file_name()
                .to_string_lossy()
                .starts_with(NOT_READY_PREFIX)
            {
                continue;
            }
            let path = e.path();
            let why = crate::untrusted::read::text(&path, crate::untrusted::read::REPORT);
            let _ = std::fs::remove_file(&path);
            if let Ok(why) = why {
                return Some(why);
            }
        }
        None
    }
}

/// Where the readiness of container `container` is marked in `marks`.
pub(crate) fn ready_mark(marks: &Path, container: &str) -> PathBuf {
    marks.join(format!("{container}.ready"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn svc(name: &str, run: ServiceRun, port: Option<u16>) -> Service {
        Service {
            name: name.into(),
            run,
            port,
            ready: None,
            ready_timeout: Duration::from_secs(5),
            env: vec![("PGPORT".into(), "${ORCH_SERVICE_PORT}".into())],
            line: 1,
        }
    }

    #[test]
    fn ports_follow_the_plans_block_and_fixed_ones_stay() {
        let recipes = [
            svc("db", ServiceRun::Image("pg".into()), None),
            svc("cache", ServiceRun::Image("redis".into()), Some(6379)),
            svc(
                "web-2",
                ServiceRun::Command(vec!["srv".into(), "${ORCH_SERVICE_PORT}".into()]),
                None,
            ),
        ];
        let i = instances(&recipes, "orch-1-2-p", 42_010);
        let ports: Vec<u16> = i.iter().map(|i| i.port).collect();
        assert_eq!(ports, [42_011, 6379, 42_012]);
        assert_eq!(i[0].container, "orch-1-2-p.svc.db");
        assert_eq!(
            vars(&i[2..])[..2],
            [
                (
                    "ORCH_SERVICE_WEB_2_HOST".to_string(),
                    "127.0.0.1".to_string()
                ),
                ("ORCH_SERVICE_WEB_2_PORT".to_string(), "42012".to_string())
            ]
        );
        assert!(
            vars(&i[2..])
                .iter()
                .any(|(k, v)| k == "no_proxy" && v.ends_with("127.0.0.1,localhost,::1"))
        );
        assert!(vars(&[]).is_empty());
        assert!(i[0].env().contains(&("PGPORT".into(), "42011".into())));
        assert!(i[0].env().contains(&("PORT".into(), "42011".into())));
        let argv = i[2].run_argv("1-2", "p", "orch-1-2-p", "localhost/dev", Limits::default());
        let tail: Vec<&str> = argv
            .iter()
            .rev()
            .take(4)
            .rev()
            .map(String::as_str)
            .collect();
        assert_eq!(tail, ["--entrypoint", "srv", "localhost/dev", "42012"]);
        assert!(argv.contains(&"container:orch-1-2-p".to_string()));
        assert!(argv.contains(&format!("{}=web-2", podman::SERVICE_LABEL)));
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    /// No two plans' containers, nor a plan's container and another's service, share a name
    /// (the services red team's plan `a-svc-db` took plan `a`'s service `db`'s): plan names that
    /// spell alike once their other characters are `-`, and the service spellings.
    #[test]
    fn containers_of_plans_and_services_never_share_a_name() {
        let recipe = |name: &str| Service {
            name: name.into(),
            run: ServiceRun::Image("pg".into()),
            port: None,
            ready: None,
            ready_timeout: std::time::Duration::from_secs(5),
            env: Vec::new(),
            line: 1,
        };
        let mut names = std::collections::BTreeSet::new();
        for plan in [
            "a", "a-svc-db", "a.svc.db", "a_b", "a.b", "a-b", "A-b", "a-svc",
        ] {
            let own = format!("orch-1-2-{}", super::super::plan_part(plan));
            assert!(names.insert(own.clone()), "{plan}: {own}");
            for s in ["db", "svc-db", "b"] {
                let i = instances(&[recipe(s)], &own, 42_000);
                assert!(
                    names.insert(i[0].container.clone()),
                    "{plan} {s}: {}",
                    i[0].container
                );
            }
        }
    }
}
