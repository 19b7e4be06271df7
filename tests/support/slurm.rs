//! A real Slurm cluster for the tests of `executor = "slurm"` (`.ci/slurm start` brings up a
//! single-node one; CI does, then sets `ORCH_REQUIRE_SLURM`).

use std::process::Command;

/// The variable that makes a missing cluster a failure.
pub const REQUIRE_SLURM: &str = "ORCH_REQUIRE_SLURM";

/// Whether a Slurm cluster answers with a usable node; without one the test says so on stderr
/// and should pass, unless `ORCH_REQUIRE_SLURM` is set: then this fails.
pub fn cluster() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| ["idle", "mix", "alloc"].iter().any(|s| l.starts_with(s)))
        });
    if !up {
        assert!(
            std::env::var_os(REQUIRE_SLURM).is_none(),
            "{REQUIRE_SLURM} is set but no Slurm cluster answers (`.ci/slurm start`)"
        );
        eprintln!("skipped: no Slurm cluster answers (`.ci/slurm start` starts one)");
    }
    up
}

/// Where a test puts the repositories of plans that run through Slurm: under the target's own
/// temporary directory, on the disk of the checkout. orch refuses a repository on a tmpfs for
/// Slurm (the compute nodes would not see it), and CI puts the tests' `TMPDIR` on a tmpfs.
pub fn disk_dir() -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("slurm");
    std::fs::create_dir_all(&dir).expect("target tmp dir");
    dir
}
