//! The lead's side of a remote attempt, shared by its driver ([`super::attempt`]), the return of
//! a lost attempt's work ([`super::lost`]) and the pruning of snapshot refs ([`super::refs`]): a
//! line of orch's in the attempt's log, the lead's git, a bundle fetched into the lead's
//! repository.

use std::io::Write;
use std::path::Path;

use crate::git::GitTarget;

/// A line of orch's in the attempt's log.
pub(super) fn say(line: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "=== orch: {} ===", line.escape_debug());
    let _ = o.flush();
}

/// Runs the lead's git on `target`; its stdout, or why it failed (its stderr, escaped).
pub(super) fn git_bytes(target: GitTarget<'_>, args: &[&str]) -> Result<Vec<u8>, String> {
    let mut cmd = crate::git::git_command(target)?;
    cmd.args(args);
    let o = cmd
        .output()
        .map_err(|e| format!("cannot run git {}: {e}", args.join(" ")))?;
    if !o.status.success() {
        return Err(format!(
            "git {} failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&o.stderr).trim().escape_debug()
        ));
    }
    Ok(o.stdout)
}

/// Fetches `from` of the bundle `file` into the lead's ref `to`, with git's object checks on.
/// No maintenance after it: a `gc --auto` git would start in the background (each bundle
/// fetched keeps a pack, 50 make one due) packs the refs, taking their locks while the
/// supervisor moves a plan branch (seen failing task commits at 160 tasks).
pub(super) fn fetch_bundle(root: &Path, file: &Path, from: &str, to: &str) -> Result<(), String> {
    git_bytes(
        GitTarget::WorkTree(root),
        &[
            "-c",
            "transfer.fsckObjects=true",
            "-c",
            "gc.auto=0",
            "-c",
            "maintenance.auto=false",
            "fetch",
            "-q",
            "--no-tags",
            "--no-write-fetch-head",
            &file.display().to_string(),
            &format!("+{from}:{to}"),
        ],
    )
    .map(drop)
}
