//! The git CLI, where orch runs git rather than libgit2 (a new worktree's checkout, a sparse
//! plan's cone, the task worktree pool's resets and landings; docs/ARCHITECTURE.md says why):
//! one way to start it, with orch's own git variables removed, no hooks (as with libgit2), no
//! terminal, and git's messages in English.

use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `git ARGS` in `dir`: its standard output, or what went wrong in one line
/// (`` `git ARGS` failed (STATUS): STDERR ``).
pub(super) fn run(dir: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .args(["-c", "core.hooksPath=/dev/null"])
        .args(args)
        .stdin(Stdio::null());
    for var in crate::agent_env::GIT_ENV {
        cmd.env_remove(var);
    }
    cmd.env("LC_ALL", "C").env_remove("LANGUAGE");
    let shown = args.join(" ");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run `git {shown}`: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "`git {shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
