//! Real podman and the local image `localhost/orch-test-base` for the tests of
//! `executor = "container"` (`.ci/podman images` builds it offline; CI does, then sets
//! `ORCH_REQUIRE_PODMAN`).

use std::process::{Command, Stdio};

/// The variable that makes a missing podman or image a failure.
pub const REQUIRE_PODMAN: &str = "ORCH_REQUIRE_PODMAN";

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
    let ok = Command::new("podman")
        .args(["image", "exists", IMAGE])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os(REQUIRE_PODMAN).is_none(),
            "{REQUIRE_PODMAN} is set but podman or the image {IMAGE} is missing (`.ci/podman images`)"
        );
        eprintln!(
            "skipped: podman or the image {IMAGE} is missing (`.ci/podman images` builds it)"
        );
    }
    ok
}

/// Whether [`available`] and podman has [`POSTGRES`] too (the same rule: a failure under
/// `ORCH_REQUIRE_PODMAN`).
pub fn postgres_available() -> bool {
    if !available() {
        return false;
    }
    let ok = Command::new("podman")
        .args(["image", "exists", POSTGRES])
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os(REQUIRE_PODMAN).is_none(),
            "{REQUIRE_PODMAN} is set but the image {POSTGRES} is missing (`.ci/podman images`)"
        );
        eprintln!("skipped: the image {POSTGRES} is missing (`.ci/podman images` builds it)");
    }
    ok
}

/// The containers orch made for plan `plan` (its label; any run, running or not): name, run
/// label, service label (empty for the plan's own container).
pub fn of_plan(plan: &str) -> Vec<(String, String, String)> {
    let out = Command::new("podman")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=dev.orch-cli.plan={plan}"),
            "--format",
            &format!(
                "{{{{.Names}}}} {{{{index .Labels \"{RUN_LABEL}\"}}}} {{{{index .Labels \"{SERVICE_LABEL}\"}}}}"
            ),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("podman ps");
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
