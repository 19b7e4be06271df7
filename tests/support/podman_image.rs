//! Whether podman has a local image, for the container tests and `benches/container.rs` (which
//! includes this file): a missing podman or image is said on stderr and passes, unless
//! `ORCH_REQUIRE_PODMAN` is set (CI, after `.ci/podman images`): then it fails.

use std::process::{Command, Stdio};

/// The variable that makes a missing podman or image a failure.
pub const REQUIRE_PODMAN: &str = "ORCH_REQUIRE_PODMAN";

/// Whether podman runs and has `image`; panics when not and [`REQUIRE_PODMAN`] is set.
pub fn present(image: &str) -> bool {
    let ok = Command::new("podman")
        .args(["image", "exists", image])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os(REQUIRE_PODMAN).is_none(),
            "{REQUIRE_PODMAN} is set but podman or the image {image} is missing (`.ci/podman images`)"
        );
        eprintln!(
            "skipped: podman or the image {image} is missing (`.ci/podman images` builds it)"
        );
    }
    ok
}
