//! The manifest as written: one `#[derive(Deserialize)]` struct per table, whose fields are its
//! keys, each spelled once, here. Values are read with their byte spans ([`At`]) and are typed
//! broadly (integers as `i64`, durations and names as strings) so that a bad value is a problem
//! for `super::validate` to report alongside every other, not serde's stop; `super::read` reads
//! the document into these structs.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::spans::{Argv, At, Strings, fields_of};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawManifest {
    pub(crate) defaults: RawDefaults,
    pub(crate) agents: BTreeMap<String, RawAgent>,
    pub(crate) plan: Vec<At<RawPlan>>,
    pub(crate) slurm: RawSlurm,
    pub(crate) notify: Vec<At<RawNotify>>,
    /// The `[[host]]` machines of `executor = "ssh"` (`super::hosts`).
    pub(crate) host: Vec<At<RawHost>>,
    /// `[[repo]]`: the other repositories plans change (`super::repos`).
    pub(crate) repo: Vec<At<RawRepo>>,
    /// `[[service]]`: what runs beside a container plan's agents (`super::services`).
    pub(crate) service: Vec<At<RawService>>,
    /// `[telemetry]`: where traces and metrics go (`super::telemetry`).
    pub(crate) telemetry: RawTelemetry,
}

/// `[defaults]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawDefaults {
    pub(crate) target: Option<At<String>>,
    pub(crate) max_agents: Option<At<i64>>,
    pub(crate) agent: Option<At<String>>,
    pub(crate) timeout: Option<At<String>>,
    pub(crate) retries: Option<At<i64>>,
    pub(crate) verify: Strings,
    pub(crate) merge_strategy: Option<At<String>>,
    pub(crate) auto_merge: Option<At<bool>>,
    pub(crate) worktree_root: Option<At<String>>,
    pub(crate) state_dir: Option<At<String>>,
    pub(crate) branch_prefix: Option<At<String>>,
    pub(crate) parallel: Option<At<i64>>,
    pub(crate) parallel_tasks: Option<At<i64>>,
    pub(crate) stuck_after: Option<At<String>>,
    pub(crate) grace: Option<At<String>>,
    pub(crate) backoff: Option<At<String>>,
    pub(crate) log_dir: Option<At<String>>,
    /// The most of one attempt's output its log keeps (`"32MiB"`).
    pub(crate) log_max: Option<At<String>>,
    pub(crate) setup: Option<At<Argv>>,
    pub(crate) copy: Strings,
    pub(crate) templates: Option<At<String>>,
    pub(crate) executor: Option<At<String>>,
    /// The container image of `executor = "container"` (`super::values::image`).
    pub(crate) image: Option<At<String>>,
    /// A container plan's bounds: its container's memory and processes (`super::limits`).
    pub(crate) memory: Option<At<String>>,
    pub(crate) pids: Option<At<i64>>,
    pub(crate) check: Option<At<Argv>>,
    pub(crate) budget: Option<At<String>>,
    pub(crate) remote: Option<At<String>>,
    pub(crate) ports: Option<At<i64>>,
    // The integration preview (`orch integrate`).
    pub(crate) integrate: Option<At<String>>,
    pub(crate) integrate_feedback: Option<At<bool>>,
    // The sandbox (`super::sandbox`).
    pub(crate) sandbox: Option<At<String>>,
    pub(crate) sandbox_write: Strings,
    pub(crate) sandbox_deny_read: Strings,
    /// Agent-socket variables let through (`super::sandbox`).
    pub(crate) pass_env: Strings,
    // The network (`super::network`).
    pub(crate) network: Option<At<String>>,
    pub(crate) network_allow: Strings,
    /// Protected paths (`super::protect`).
    pub(crate) protect: Strings,
    /// Protected paths the plans' tasks may change all the same (`super::protect`).
    pub(crate) allow_protected: Strings,
    pub(crate) warm: Strings,
    /// Whether worktrees get their submodules checked out (`crate::git::sync_submodules`).
    pub(crate) submodules: Option<At<bool>>,
    // Best of N (`super::best_of`).
    pub(crate) attempts: Option<At<i64>>,
    pub(crate) agents: Strings,
    pub(crate) select: Option<At<Argv>>,
    pub(crate) attempts_stop: Option<At<String>>,
    // Resolution by agent (`super::resolve`).
    pub(crate) resolve: Option<At<RawResolve>>,
    pub(crate) resolve_verify: Option<At<bool>>,
    /// Run with every repository's candidate side by side (`super::repos`).
    pub(crate) verify_all: Strings,
    // The review loop of `orch pr --watch` (`super::review`).
    pub(crate) review_poll: Option<At<String>>,
    pub(crate) review_rounds: Option<At<i64>>,
    pub(crate) review_from: Strings,
    pub(crate) review_label: Option<At<String>>,
    /// The `[[service]]` names every plan gets that names none (`super::services`).
    pub(crate) services: Strings,
    /// The most one file of an attempt's change may hold (`"100MiB"`, `super::values::size_limits`).
    pub(crate) max_file_size: Option<At<String>>,
    /// The most all the files of an attempt's change may hold together (`"4GiB"`).
    pub(crate) max_change_size: Option<At<String>>,
    /// The most files an attempt's change may touch (`100000`).
    pub(crate) max_change_files: Option<At<i64>>,
}

/// `[slurm]`, or a plan's `slurm = { … }` (where `poll`, the run's, is an unknown key).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawSlurm {
    pub(crate) partition: Option<At<String>>,
    pub(crate) account: Option<At<String>>,
    pub(crate) time_limit: Option<At<String>>,
    pub(crate) cpus: Option<At<i64>>,
    pub(crate) memory: Option<At<String>>,
    pub(crate) sbatch_args: Strings,
    /// Only in `[slurm]`: the longest wait between two queries of the job states.
    pub(crate) poll: Option<At<String>>,
}

/// `[agents.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawAgent {
    /// The table's name, where its key is (`super::read` sets it).
    #[serde(skip)]
    pub(crate) name: At<String>,
    pub(crate) command: Option<At<Argv>>,
    pub(crate) mode: Option<At<String>>,
    pub(crate) executor: Option<At<String>>,
    /// The container image of its plans run with `executor = "container"`.
    pub(crate) image: Option<At<String>>,
    /// Its container plans' bounds (`super::limits`).
    pub(crate) memory: Option<At<String>>,
    pub(crate) pids: Option<At<i64>>,
    pub(crate) report: Option<At<String>>,
    // The sandbox (`super::sandbox`).
    pub(crate) sandbox: Option<At<String>>,
    pub(crate) sandbox_write: Strings,
    pub(crate) sandbox_deny_read: Strings,
    pub(crate) pass_env: Strings,
    // The network (`super::network`).
    pub(crate) network: Option<At<String>>,
    pub(crate) network_allow: Strings,
    pub(crate) stdin: Option<At<String>>,
    /// What it reads on stdin while it runs: `orch say`'s messages as lines (`"lines"`).
    pub(crate) input: Option<At<String>>,
    /// The agents its plans' pending tasks go to while it is at a usage limit.
    pub(crate) fallback: Strings,
    /// The `[[host]]` names its plans may use (`super::hosts`).
    pub(crate) hosts: Strings,
}

/// One `[[plan]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawPlan {
    pub(crate) name: Option<At<String>>,
    pub(crate) file: Option<At<String>>,
    pub(crate) priority: Option<At<i64>>,
    pub(crate) agent: Option<At<String>>,
    pub(crate) branch: Option<At<String>>,
    pub(crate) depends_on: Strings,
    pub(crate) parallel: Option<At<i64>>,
    pub(crate) parallel_tasks: Option<At<i64>>,
    pub(crate) timeout: Option<At<String>>,
    pub(crate) retries: Option<At<i64>>,
    pub(crate) setup: Option<At<Argv>>,
    pub(crate) copy: Strings,
    pub(crate) executor: Option<At<String>>,
    /// The container image of `executor = "container"`.
    pub(crate) image: Option<At<String>>,
    /// Its container's bounds (`super::limits`).
    pub(crate) memory: Option<At<String>>,
    pub(crate) pids: Option<At<i64>>,
    pub(crate) slurm: Option<RawSlurm>,
    pub(crate) check: Option<At<Argv>>,
    pub(crate) budget: Option<At<String>>,
    /// `paths`: the plan's sparse cone (directories).
    pub(crate) paths: Strings,
    /// Protected paths (`super::protect`).
    pub(crate) protect: Strings,
    /// Protected paths its tasks may change all the same, added to `[defaults]`'
    /// (`super::protect`).
    pub(crate) allow_protected: Strings,
    pub(crate) warm: Strings,
    pub(crate) submodules: Option<At<bool>>,
    // Best of N (`super::best_of`).
    pub(crate) attempts: Option<At<i64>>,
    pub(crate) agents: Strings,
    pub(crate) select: Option<At<Argv>>,
    pub(crate) attempts_stop: Option<At<String>>,
    // Resolution by agent (`super::resolve`).
    pub(crate) resolve: Option<At<RawResolve>>,
    pub(crate) resolve_verify: Option<At<bool>>,
    /// The `[[host]]` names it may use (`super::hosts`).
    pub(crate) hosts: Strings,
    // Several repositories (`super::repos`).
    pub(crate) repo: Option<At<String>>,
    pub(crate) land_with: Strings,
    // The review loop of `orch pr --watch` (`super::review`).
    pub(crate) review_poll: Option<At<String>>,
    pub(crate) review_rounds: Option<At<i64>>,
    pub(crate) review_from: Strings,
    pub(crate) review_label: Option<At<String>>,
    /// Its own fallback agents (else its agent's `fallback`).
    pub(crate) fallback: Strings,
    /// The grammar of its file: `"orch"` or `"speckit"` (else recognised from the file).
    pub(crate) format: Option<At<String>>,
    /// The `[[service]]` names it gets (`super::services`); `[]`: none of `[defaults]`'.
    pub(crate) services: Strings,
    /// Its own `max_file_size` (else `[defaults]`').
    pub(crate) max_file_size: Option<At<String>>,
    /// Its own `max_change_size` (else `[defaults]`').
    pub(crate) max_change_size: Option<At<String>>,
    /// Its own `max_change_files` (else `[defaults]`').
    pub(crate) max_change_files: Option<At<i64>>,
}

/// One `[[notify]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawNotify {
    pub(crate) events: Strings,
    pub(crate) command: Option<At<Argv>>,
    pub(crate) webhook: Option<At<String>>,
    pub(crate) timeout: Option<At<String>>,
}

/// `[telemetry]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawTelemetry {
    pub(crate) endpoint: Option<At<String>>,
    pub(crate) protocol: Option<At<String>>,
    pub(crate) headers: Option<At<BTreeMap<String, At<String>>>>,
}

/// One `[[host]]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawHost {
    pub(crate) name: Option<At<String>>,
    /// What `ssh` takes as its destination (`user@host`, an alias of `~/.ssh/config`).
    pub(crate) ssh: Option<At<String>>,
    pub(crate) port: Option<At<i64>>,
    pub(crate) slots: Option<At<i64>>,
    pub(crate) dir: Option<At<String>>,
    /// `"on"` (the default: a host without Landlock is refused) or `"off"`.
    pub(crate) sandbox: Option<At<String>>,
}

/// One `[[service]]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawService {
    pub(crate) name: Option<At<String>>,
    /// A container of this image (its own entry point).
    pub(crate) image: Option<At<String>>,
    /// Or this argv, in a container of the plan's image.
    pub(crate) command: Option<At<Argv>>,
    /// The port it listens on whatever it is told (else one of the plan's block).
    pub(crate) port: Option<At<i64>>,
    pub(crate) ready: Option<At<Argv>>,
    pub(crate) ready_timeout: Option<At<String>>,
    pub(crate) env: Option<At<BTreeMap<String, At<String>>>>,
}

/// One `[[repo]]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawRepo {
    pub(crate) name: Option<At<String>>,
    pub(crate) path: Option<At<String>>,
    pub(crate) target: Option<At<String>>,
    pub(crate) verify: Option<At<Argv>>,
}

/// `resolve` as written: `true`/`false`, or an agent's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RawResolve {
    Flag(bool),
    Agent(String),
}

impl<'de> Deserialize<'de> for RawResolve {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl serde::de::Visitor<'_> for Either {
            type Value = RawResolve;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an agent's name or true/false")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<RawResolve, E> {
                Ok(RawResolve::Flag(b))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawResolve, E> {
                Ok(RawResolve::Agent(s.to_string()))
            }
        }
        d.deserialize_any(Either)
    }
}

/// The best-of-N keys of `[defaults]` or of a plan (`super::best_of`).
pub(crate) struct RawBestOf<'a> {
    pub(crate) attempts: Option<&'a At<i64>>,
    pub(crate) agents: Option<&'a At<Vec<At<String>>>>,
    pub(crate) select: Option<&'a At<Argv>>,
    pub(crate) stop: Option<&'a At<String>>,
}

/// The review keys of one table as written.
pub(crate) struct RawReview<'a> {
    pub(crate) poll: Option<&'a At<String>>,
    pub(crate) rounds: Option<&'a At<i64>>,
    pub(crate) from: Option<&'a At<Vec<At<String>>>>,
    pub(crate) label: Option<&'a At<String>>,
}

macro_rules! review_keys {
    ($($table:ty),*) => {$(
        impl $table {
            pub(crate) fn review(&self) -> RawReview<'_> {
                RawReview {
                    poll: self.review_poll.as_ref(),
                    rounds: self.review_rounds.as_ref(),
                    from: self.review_from.as_ref(),
                    label: self.review_label.as_ref(),
                }
            }
        }
    )*};
}

review_keys!(RawDefaults, RawPlan);

macro_rules! best_of {
    ($($table:ty),*) => {$(
        impl $table {
            pub(crate) fn best_of(&self) -> RawBestOf<'_> {
                RawBestOf {
                    attempts: self.attempts.as_ref(),
                    agents: self.agents.as_ref(),
                    select: self.select.as_ref(),
                    stop: self.attempts_stop.as_ref(),
                }
            }
        }
    )*};
}
best_of!(RawDefaults, RawPlan);

/// The keys of `[defaults]`, `[agents.NAME]` and `[[plan]]` (`orch init` writes every one).
pub fn defaults_keys() -> &'static [&'static str] {
    fields_of::<RawDefaults>()
}

pub fn agent_keys() -> &'static [&'static str] {
    fields_of::<RawAgent>()
}

pub fn plan_keys() -> &'static [&'static str] {
    fields_of::<RawPlan>()
}

/// The keys of `[[repo]]`.
pub(crate) fn repo_keys() -> &'static [&'static str] {
    fields_of::<RawRepo>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_are_the_fields() {
        assert_eq!(
            fields_of::<RawNotify>(),
            ["events", "command", "webhook", "timeout"]
        );
        assert!(plan_keys().contains(&"depends_on"));
        assert!(defaults_keys().contains(&"resolve_verify"));
        assert!(agent_keys().contains(&"stdin"));
        assert!(
            !agent_keys().contains(&"name"),
            "set by the reader, not a key"
        );
    }
}
