//! Real podman and the local image `localhost/orch-test-base` for the tests of
//! `executor = "container"` (`.ci/podman images` builds it offline; CI does, then sets
//! `ORCH_REQUIRE_PODMAN`).

use std::process::{Command, Stdio};

/// The variable that makes a missing podman or image a failure.
pub const REQUIRE_PODMAN: &str = "ORCH_REQUIRE_PODMAN";

/// The image the tests run their agents in.
pub const IMAGE: &str = "localhost/orch-test-base:latest";

/// The label orch puts on its containers (its run).
pub const RUN_LABEL: &str = "dev.orch-cli.run";

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
