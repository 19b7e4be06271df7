//! The `executor` and `[slurm]` settings of the manifest: which executor runs a plan's agents
//! and the Slurm options, with the `sbatch_args` orch refuses (it sets them itself). The
//! executors themselves are `crate::executor`.

use std::time::Duration;

/// Which executor runs a plan's agents (`executor = "…"` in the manifest).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ExecutorKind {
    /// A child process of `orch up` on this machine (the default).
    #[default]
    Local,
    /// One Slurm batch job per agent run.
    Slurm,
    /// On one of the `[[host]]` machines, over SSH (`crate::executor::ssh`).
    Ssh,
    /// In a podman container per plan, each attempt an exec in it (`crate::executor::container`).
    Container,
}

impl super::spans::Spelled for ExecutorKind {}

impl ExecutorKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Slurm => "slurm",
            Self::Ssh => "ssh",
            Self::Container => "container",
        }
    }
}

impl std::fmt::Display for ExecutorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Slurm settings of a plan (`[slurm]`, overridden key by key by the plan's `slurm` table).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SlurmOptions {
    /// `--partition`.
    pub(crate) partition: Option<String>,
    /// `--account`.
    pub(crate) account: Option<String>,
    /// `--time`, in whole minutes (rounded up). `None`: the attempt's own budget plus the grace
    /// period, so that orch's timeout comes first.
    pub(crate) time_limit: Option<Duration>,
    /// `--cpus-per-task`.
    pub(crate) cpus: Option<u32>,
    /// `--mem` (`8G`, `512M`).
    pub(crate) memory: Option<String>,
    /// Further `sbatch` arguments, as an argv (validated: no option orch sets itself).
    pub(crate) sbatch_args: Vec<String>,
}

/// The options orch sets on every job; `sbatch_args` may not set them again.
pub(crate) const RESERVED_OPTIONS: [(&str, Option<char>, &str); 16] = [
    ("--parsable", None, "orch reads the job id from it"),
    (
        "--job-name",
        Some('J'),
        "orch names jobs `orch:<plan>:<task>`",
    ),
    ("--comment", None, "orch finds its jobs by their comment"),
    ("--chdir", Some('D'), "the job runs in the plan's worktree"),
    ("--output", Some('o'), "the job writes to the task's log"),
    ("--error", Some('e'), "the job writes to the task's log"),
    ("--input", Some('i'), "agents read nothing on stdin"),
    ("--open-mode", None, "the job appends to the task's log"),
    ("--export", None, "orch exports its ORCH_* variables"),
    (
        "--wrap",
        None,
        "orch runs the agent's argv, never a shell string",
    ),
    ("--wait", Some('W'), "orch tracks jobs itself"),
    ("--array", Some('a'), "one job is one agent run"),
    ("--partition", Some('p'), "use `partition` in `[slurm]`"),
    ("--account", Some('A'), "use `account` in `[slurm]`"),
    ("--time", Some('t'), "use `time_limit` in `[slurm]`"),
    ("--cpus-per-task", Some('c'), "use `cpus` in `[slurm]`"),
];

/// Options orch does not set but that `--mem` conflicts with.
const MEMORY_OPTIONS: [&str; 3] = ["--mem", "--mem-per-cpu", "--mem-per-gpu"];

/// Why an `sbatch_args` element is refused, if it is.
pub(crate) fn check_sbatch_arg(arg: &str) -> Option<String> {
    if arg.contains('\n') || arg.contains('\0') {
        return Some("contains a newline or NUL".into());
    }
    let long = |name: &str| arg == name || arg.starts_with(&format!("{name}="));
    for (name, short, why) in RESERVED_OPTIONS {
        let short_hit = short.is_some_and(|c| {
            let s = format!("-{c}");
            arg == s || (arg.starts_with(&s) && !arg.starts_with("--"))
        });
        if long(name) || short_hit {
            return Some(format!("sets `{name}`, which orch sets itself: {why}"));
        }
    }
    if MEMORY_OPTIONS.iter().any(|m| long(m)) {
        return Some("sets memory: use `memory` in `[slurm]`".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_sbatch_args_are_refused() {
        for bad in [
            "--output=x",
            "-o",
            "-ox",
            "--chdir",
            "--wrap=rm -rf /",
            "--export=NONE",
            "-J",
            "--time=5",
            "--mem=4G",
            "--partition=gpu",
            "a\nb",
        ] {
            assert!(check_sbatch_arg(bad).is_some(), "{bad}");
        }
        for good in [
            "--qos=high",
            "--constraint=avx2",
            "--gres=gpu:1",
            "high",
            "-N1",
        ] {
            assert_eq!(check_sbatch_arg(good), None, "{good}");
        }
    }
}
