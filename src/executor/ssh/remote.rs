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
        "landlock_abi": landlock_abi(),
        "free_bytes": free,
        "clients": found,
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// The variable that has orch's copy on a host answer as if the host had no Landlock. The
/// end-to-end tests set it on a host's side only (in its `sshd`'s configuration), to stand for
/// a kernel without Landlock. It can only take Landlock away, never claim it: a host with it
/// set is refused, or runs its agents unconfined where its `[[host]]` says `sandbox = "off"`
/// (as it would anyway).
pub(crate) const NO_LANDLOCK_VAR: &str = "ORCH_TEST_HOST_NO_LANDLOCK";

/// The Landlock ABI of this host, as orch's copy here uses it (0: none).
pub(crate) fn landlock_abi() -> u8 {
    if std::env::var_os(NO_LANDLOCK_VAR).is_some_and(|v| !v.is_empty() && v != "0") {
        return 0;
    }
    crate::sandbox::abi()
}
