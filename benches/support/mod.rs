//! What the end-to-end benchmarks share: git with a fixed identity in a temp repository, and the
//! clock rate of `/proc` CPU times.

use std::path::Path;
use std::process::{Command, Stdio};

/// Runs git in `dir` with the benchmark's identity; panics when it fails.
#[allow(dead_code)] // Used by the benches that build repositories, not by every one.
pub fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@localhost")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@localhost")
        .stdout(Stdio::null())
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

/// Clock ticks per second (`USER_HZ`, 100 on Linux) of `/proc/<pid>/stat` times, as `getconf`
/// reports them.
#[allow(dead_code)] // Used by the benches that read CPU times, not by every one.
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0)
}

/// Whether this is a benchmark run: `cargo bench` passes `--bench`. Every bench is also built
/// and run by `cargo test` (`test = true` in `Cargo.toml`), which does not: then it runs a tiny
/// size in a few seconds and checks its figures are sane, so the bench cannot rot.
#[allow(dead_code)] // Used by the benches that follow the convention, not by `up` yet.
pub fn full_size() -> bool {
    std::env::args().any(|a| a == "--bench")
}
