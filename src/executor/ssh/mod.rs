//! `executor = "ssh"`: the `[[host]]` machines of the manifest, reached with the user's own
//! `ssh` from `PATH` (their config, keys, agents and jump hosts), one shared connection per host
//! whose control socket no agent can reach ([`control`], [`conn`]). orch copies itself to the
//! host's `dir` when the copy there is missing or differs (named and checked by its git blob
//! id), and asks that copy what the host offers ([`host`]: Landlock, git, free disk, the
//! presets' clients), which `orch hosts` shows. [`remote`] is the side that runs there.

pub(crate) mod attempt;
pub(crate) mod cause;
pub(crate) mod conn;
pub(crate) mod control;
pub(crate) mod frames;
pub(crate) mod host;
pub(crate) mod job;
pub(crate) mod lead;
pub(crate) mod lost;
pub(crate) mod records;
pub(crate) mod refs;
pub(crate) mod remote;
pub(crate) mod remote_run;
pub(crate) mod report;
pub(crate) mod slots;
pub(crate) mod usable;

pub(crate) use conn::Conn;
pub(crate) use host::probe;
pub(crate) use report::HostReport;
