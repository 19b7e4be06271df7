//! Real podman and the local image `localhost/orch-test-base` for the tests of
//! `executor = "container"` (`.ci/podman images` builds it offline; CI does, then sets
//! `ORCH_REQUIRE_PODMAN`).

use std::process::{Command, Stdio};

#[path = "podman_image.rs"]
mod image;

/// The image the tests run their agents in.
pub const IMAGE: &str = "localhost/orch-test-base:latest";

/// The image of the tests' services: Debian's PostgreSQL (and its client) on the base image,
/// its entry a throwaway server on `$PGPORT` (`.ci/podman`).
pub const POSTGRES: &str = "localhost/orch-test-postgres:latest";

/// The label orch puts on its containers (its run).
pub const RUN_LABEL: &str = "dev.orch-cli.run";

/// The label orch puts on a plan's service's container (the service's name).
pub const SERVICE_LABEL: &str = "dev.orch-cli.service";

/// Whether podman runs and has [`IMAGE`]; without them the test says so on stderr and should
/// pass, unless `ORCH_REQUIRE_PODMAN` is set: then this fails.
pub fn available() -> bool {
    image::present(IMAGE)
}

/// Whether [`available`] and podman has [`POSTGRES`] too (the same rule: a failure under
/// `ORCH_REQUIRE_PODMAN`).
pub fn postgres_available() -> bool {
    available() && image::present(POSTGRES)
}

/// The variable that makes a missing docker (its daemon not answering) or image a failure.
pub const REQUIRE_DOCKER: &str = "ORCH_REQUIRE_DOCKER";

/// Whether docker's daemon answers and has [`IMAGE`] and [`POSTGRES`] (`.ci/docker images`
/// loads them); without them the test says so on stderr and should pass, unless
/// [`REQUIRE_DOCKER`] is set: then this fails.
pub fn docker_available() -> bool {
    let ok = [IMAGE, POSTGRES].iter().all(|image| {
        Command::new("docker")
            .args(["image", "inspect", "--format", "{{.Id}}", image])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        assert!(
            std::env::var_os(REQUIRE_DOCKER).is_none(),
            "{REQUIRE_DOCKER} is set but docker or its images are missing (`.ci/docker images`)"
        );
        eprintln!("skipped: docker or its images are missing (`.ci/docker images` loads them)");
    }
    ok
}

/// The container engine a test asks: podman (`tests/container*.rs`) or docker
/// (`tests/container_docker.rs`, which runs orch with `ORCH_CONTAINER_ENGINE=docker`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Podman,
    Docker,
}

impl Engine {
    pub fn program(self) -> &'static str {
        match self {
            Self::Podman => "podman",
            Self::Docker => "docker",
        }
    }

    /// A `ps --format` field of label `key` (docker's `ps` has `.Labels` as one string).
    fn label(self, key: &str) -> String {
        match self {
            Self::Podman => format!("{{{{index .Labels \"{key}\"}}}}"),
            Self::Docker => format!("{{{{.Label \"{key}\"}}}}"),
        }
    }
}

/// The containers orch made for plan `plan` (its label; any run, running or not): name, run
/// label, service label (empty for the plan's own container).
pub fn of_plan(plan: &str) -> Vec<(String, String, String)> {
    of_plan_in(Engine::Podman, plan)
}

/// [`of_plan`], of `engine`'s containers.
pub fn of_plan_in(engine: Engine, plan: &str) -> Vec<(String, String, String)> {
    let out = Command::new(engine.program())
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=dev.orch-cli.plan={plan}"),
            "--format",
            &format!(
                "{{{{.Names}}}} {} {}",
                engine.label(RUN_LABEL),
                engine.label(SERVICE_LABEL)
            ),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split(' ');
            Some((
                w.next()?.to_string(),
                w.next()?.to_string(),
                w.next().unwrap_or("").to_string(),
            ))
        })
        .collect()
}

/// The id of the running container named `name`, if any.
pub fn running_id(name: &str) -> Option<String> {
    let out = Command::new("podman")
        .args(["inspect", "--format", "{{.State.Running}} {{.Id}}", name])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().strip_prefix("true ").map(str::to_string)
}

/// The names of the containers orch made whose run label is `run` (any run: `None`).
pub fn containers(run: Option<&str>) -> Vec<String> {
    let filter = match run {
        Some(r) => format!("label={RUN_LABEL}={r}"),
        None => format!("label={RUN_LABEL}"),
    };
    let out = Command::new("podman")
        .args(["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"])
        .stdin(Stdio::null())
        .output()
        .expect("podman ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The containers orch made whose `orch up` is gone (its run label names a process that no
/// longer runs): what a run must not leave.
pub fn orphans() -> Vec<String> {
    let out = Command::new("podman")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label={RUN_LABEL}"),
            "--format",
            &format!("{{{{.Names}}}} {{{{index .Labels \"{RUN_LABEL}\"}}}}"),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("podman ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (name, run) = l.split_once(' ')?;
            let pid = run.split('-').next()?;
            (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then(|| name.to_string())
        })
        .collect()
}

/// The containers orch made (any run, running or not) that mount a path beneath `dir`: those of
/// one test's repository, whatever other tests run beside it.
pub fn mounting(dir: &std::path::Path) -> Vec<String> {
    let out = Command::new("podman")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label={RUN_LABEL}"),
            "--format",
            "{{.Names}} {{.Mounts}}",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("podman ps");
    let dir = dir.display().to_string();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&dir))
        .filter_map(|l| l.split(' ').next().map(str::to_string))
        .collect()
}

/// A repository of container plans `plans` (each its name and the lines added to its
/// `[[plan]]`), each of the plan file `plan_md`, run by the agent `command` (a TOML array) with
/// `report = "exit"` and `agent` lines, in containers of `image` (`retries = 0` and `defaults`
/// lines in `[defaults]`), `tail` (`[[service]]` tables) at the end of plans.toml; committed.
pub fn repo(
    plans: &[(&str, &str)],
    plan_md: &str,
    command: &str,
    agent: &str,
    image: &str,
    defaults: &str,
    tail: &str,
) -> super::Repo {
    let repo = super::Repo::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build();
    for (name, _) in plans {
        repo.write(&format!("docs/plans/{name}.md"), plan_md);
    }
    repo.manifest(
        command,
        &format!("report = \"exit\"\n{agent}"),
        &format!("retries = 0\nexecutor = \"container\"\nimage = \"{image}\"\n{defaults}"),
        plans,
    );
    if !tail.is_empty() {
        let text = std::fs::read_to_string(repo.root().join("plans.toml")).expect("manifest");
        repo.write("plans.toml", &format!("{text}{tail}"));
    }
    repo.commit_all("plans");
    repo
}

/// A word no earlier run's Dockerfile had: its image is built anew.
pub fn nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{t}-{}", std::process::id())
}

/// A repository whose plans `plans` (one task each) run in its dev container, built from
/// `dockerfile` with `devcontainer` as its settings and `files` beside them in `.devcontainer/`,
/// by the agent `script` (POSIX sh).
pub fn built_repo(
    plans: &[&str],
    devcontainer: &str,
    dockerfile: &str,
    files: &[(&str, &str)],
    script: &str,
) -> super::Repo {
    let repo = super::Repo::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build();
    for p in plans {
        repo.write(&format!("docs/plans/{p}.md"), &super::one_task("P", "Work"));
    }
    repo.write(".devcontainer/devcontainer.json", devcontainer);
    repo.write(".devcontainer/Dockerfile", dockerfile);
    for (path, text) in files {
        repo.write(path, text);
    }
    let listed: Vec<(&str, &str)> = plans.iter().map(|p| (*p, "")).collect();
    repo.manifest(
        &super::toml_array(&["sh", "-c", script]),
        "report = \"exit\"\nnetwork = \"none\"",
        "retries = 0\nexecutor = \"container\"",
        &listed,
    );
    repo.commit_all("plans");
    repo
}

/// A POSIX sh script that tries to append to each of `targets` and writes `wrote PATH` or
/// `denied PATH` for each to `file` (in the agent's worktree).
pub fn write_tries(targets: &[std::path::PathBuf], file: &str) -> String {
    let mut script = String::new();
    for t in targets {
        script.push_str(&format!(
            "if (echo x >> '{0}') 2>/dev/null; then echo 'wrote {0}' >> {file}; else echo 'denied {0}' >> {file}; fi; ",
            t.display()
        ));
    }
    script
}

/// Fails unless [`write_tries`]'s output `got` says each of `targets` was denied.
pub fn assert_all_denied(got: &str, targets: &[std::path::PathBuf]) {
    for t in targets {
        assert!(
            got.contains(&format!("denied {}", t.display())),
            "{}\n{got}",
            t.display()
        );
    }
}

/// A disk snapshot of a repository without what orch itself changes in a run of plan `plan`
/// (its state, the plan's worktree, the logs, the git directory).
pub fn outside_orch(
    s: &std::collections::BTreeSet<(String, String)>,
    plan: &str,
) -> Vec<(String, String)> {
    let worktree = format!(".orch/worktrees/{plan}");
    s.iter()
        .filter(|(p, _)| {
            !p.starts_with(".orch/state")
                && !p.starts_with(&worktree)
                && !p.starts_with(".orch/logs")
                && !p.starts_with(".git/")
        })
        .cloned()
        .collect()
}
