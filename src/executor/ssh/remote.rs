//! What orch's copy on a `[[host]]` runs there for the lead (`orch host-probe`): what the host
//! offers, as one JSON line.

use std::path::Path;

/// The host's Landlock ABI (0: none), the free space under `dir` in bytes, and which of
/// `clients` (program names) its `PATH` has.
pub(crate) fn probe(dir: &Path, clients: &[String]) -> serde_json::Value {
    let free = nix::sys::statvfs::statvfs(dir)
        .ok()
        .map(|s| s.blocks_available().saturating_mul(s.fragment_size()));
    let found: Vec<&String> = clients
        .iter()
        .filter(|c| !c.contains('/') && crate::process::resolve_program(c, dir).is_some())
        .collect();
    serde_json::json!({
        "landlock_abi": crate::sandbox::abi(),
        "free_bytes": free,
        "clients": found,
        "version": env!("CARGO_PKG_VERSION"),
    })
}
