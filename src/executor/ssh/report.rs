//! What the probe of a host found ([`super::host::probe`]): what `orch hosts` shows, and what
//! [`super::usable`] decides from whether the host may run agents.

/// What `orch hosts` says of one host.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct HostReport {
    pub(crate) name: String,
    /// It answered and orch's copy there ran.
    pub(crate) answers: bool,
    /// Why not, or why it cannot run agents (no Landlock with `sandbox = "on"`, no git), one
    /// line, escaped.
    pub(crate) error: Option<String>,
    /// The cause of `error` ([`super::cause::Cause`]).
    pub(crate) cause: Option<super::cause::Cause>,
    /// What to do about it.
    pub(crate) fix: Option<String>,
    /// orch's copy was sent this time.
    pub(crate) copied: bool,
    pub(crate) landlock_abi: Option<u8>,
    /// `git version …`, as the host's git says it.
    pub(crate) git: Option<String>,
    pub(crate) free_bytes: Option<u64>,
    /// The presets' client programs on the host's `PATH`.
    pub(crate) clients: Vec<String>,
    /// It may run agents: it answers, and it confines them (or `sandbox = "off"`).
    pub(crate) usable: bool,
}
