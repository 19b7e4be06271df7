//! Which agents of a run are confined (`sandbox` in `[defaults]` and `[agents.NAME]`), the
//! rules of each attempt and of each check, and the wrapper that applies them
//! (`orch sandbox-exec`, [`crate::sandbox`]).
//!
//! A confined attempt writes only: its worktree (not its git admin directory,
//! `.git/worktrees/<name>`: index, HEAD, `commondir`, `gitdir`, `config.worktree`, which orch
//! reads to commit and clean up: the agent reads its history, orch commits), its own report
//! directory (`<state_dir>/.reports/<plan>/<unit>.<attempt>` in the run's state directory, for a
//! plan of any repository, where `orch task …` hands its reports to the supervisor: the plan's
//! status directory is not writable), a private `TMPDIR`
//! made for the attempt and removed after it, `/dev/null` and the pseudo-terminals, a private
//! copy of its client's state ([`super::client_state`]; the user's own,
//! [`crate::manifest::KnownCli::state_paths`], is never writable) and `sandbox_write`. A
//! plan-mode agent gets nothing more: the supervisor commits each task it reports done, so it
//! has no write access to the repository's git directory (its configuration, hooks, other
//! branches).

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use crate::error::CliError;
use crate::executor::Confiner;
use crate::exit;
use crate::manifest::{AgentSpec, SandboxMode};
use crate::sandbox::{DEVICES, Rules};

/// How a plan's agents run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PlanSandbox {
    /// Confined: the plan's rules, to which each attempt adds its worktree and `TMPDIR`.
    Confined(Rules),
    /// `sandbox = "off"`, or a `[[host]]`'s (confined there by orch's copy).
    Off,
    /// `sandbox = "auto"` on a kernel without Landlock: unconfined.
    Unavailable,
}

impl PlanSandbox {
    /// As `orch status --json` and the `run_started` event say it.
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Self::Confined(_) => "on",
            Self::Off => "off",
            Self::Unavailable => "unavailable",
        }
    }

    pub(crate) fn rules(&self) -> Option<&Rules> {
        match self {
            Self::Confined(r) => Some(r),
            _ => None,
        }
    }
}

/// Decides plan `plan`'s sandbox, its attempts confined by `confiner` (its executor's);
/// `supported`: whether the kernel confines (asked once per run). `sandbox = "on"` where it
/// cannot be applied is refused (exit 6) with the fix.
pub(crate) fn decide(
    plan: &str,
    agent_name: &str,
    agent: &AgentSpec,
    confiner: Confiner,
    supported: bool,
) -> Result<PlanSandbox, CliError> {
    let mode = agent.sandbox.mode;
    // A place that confines its attempts itself (a `[[host]]`: orch's copy there, the same
    // rules) has nothing confined here.
    if mode == SandboxMode::Off || confiner == Confiner::There {
        return Ok(PlanSandbox::Off);
    }
    // An attempt confined on its node (a Slurm job) is confined by the same wrapper, whose
    // kernel decides there (`orch sandbox-exec --if-supported` under `"auto"`), not this one's.
    if !supported && confiner == Confiner::Here {
        return match mode {
            SandboxMode::On => Err(CliError::new(
                exit::AGENT,
                anyhow!(
                    "agent `{agent_name}` of plan `{plan}` must run confined (`sandbox = \"on\"`), but this kernel does not support Landlock"
                ),
            )
            .with_hint(
                "run on Linux 5.13 or later with Landlock enabled (`lsm=landlock` on the kernel command line), or set `sandbox = \"auto\"` or \"off\" in plans.toml",
            )),
            _ => Ok(PlanSandbox::Unavailable),
        };
    }
    let mut write: Vec<PathBuf> = DEVICES.iter().map(PathBuf::from).collect();
    write.extend(agent.sandbox.write.iter().cloned());
    Ok(PlanSandbox::Confined(Rules {
        write,
        deny_read: agent.sandbox.deny_read.clone(),
        read: Vec::new(),
    }))
}

/// The rules of one attempt (or check) in `workdir` with its `TMPDIR`: the worktree, not its git
/// admin directory.
pub(crate) fn attempt_rules(base: &Rules, workdir: &Path, tmpdir: &Path) -> Rules {
    let mut rules = base.clone();
    rules.write.push(workdir.to_path_buf());
    rules.write.push(tmpdir.to_path_buf());
    rules
}

/// Denies to a confined process what orch keeps private beside it: the attempts' copies of
/// their clients' state (`.clients` of each of `state_dirs`, made here when missing: red team
/// 14 read the lead's tokens from another plan's copy; its own copy is in its write set) and the
/// machine's claims on ports ([`crate::ports::CLAIMS`]: a lock needs only a descriptor).
pub(crate) fn deny_private(rules: &mut Rules, state_dirs: &[&Path]) -> Result<(), String> {
    let mut deny = vec![crate::ports::claims_dir()?];
    for state in state_dirs {
        let clients = state.join(crate::client_state::DIR);
        std::fs::create_dir_all(&clients)
            .map_err(|e| format!("cannot create `{}`: {e}", clients.display()))?;
        deny.push(clients);
    }
    for d in deny {
        if !rules.deny_read.contains(&d) {
            rules.deny_read.push(d);
        }
    }
    Ok(())
}

/// [`deny_private`] for an agent of a run whose plans' status files are `statuses`: in each
/// plan's state directory. Each plan's status directory is made first: Landlock's "all but" is
/// made of the entries the directories above a denied path hold when the agent starts, so a
/// plan that starts later (its status, which an agent's `orch task` reads) stays readable.
pub(crate) fn deny_private_of_run(rules: &mut Rules, statuses: &[&Path]) -> Result<(), String> {
    let mut states = Vec::new();
    for own in statuses.iter().filter_map(|s| s.parent()) {
        std::fs::create_dir_all(own)
            .map_err(|e| format!("cannot create `{}`: {e}", own.display()))?;
        states.extend(own.parent());
    }
    deny_private(rules, &states)
}

/// The private `TMPDIR` of an attempt (`what`: the task id, `plan`, or `<id>.check`), in this
/// process's directory of them ([`crate::sandbox::tmp_root`], which every confined process
/// has denied but for its own).
pub(crate) fn tmp_dir(plan: &str, what: &str, attempt: u32) -> PathBuf {
    crate::sandbox::tmp_root().join(format!("{plan}-{what}-{attempt}"))
}

/// `argv` run through `orch sandbox-exec` under `rules`, where `orch_bin` is orch's path
/// (a resolver's container has orch there, not its helper).
pub(crate) fn wrap(orch_bin: &Path, rules: &Rules, argv: Vec<String>) -> Vec<String> {
    crate::sandbox::wrap(orch_bin, rules, &argv)
}

pub(crate) use crate::process::session::{in_session, in_session_gated};

/// A gated wrapper's argv ([`in_session_gated`]) whose agent reads orch's pipe after the
/// go-ahead (`--input`): a person's messages, one a line.
pub(crate) fn with_input(mut argv: Vec<String>) -> Vec<String> {
    if let Some(i) = argv.iter().position(|a| a == "--gate") {
        argv.insert(i + 1, "--input".to_string());
    }
    argv
}

/// A gated wrapper's argv (`in_session_gated` with the prompt file as `stdin`) with streaming
/// input: the wrapper feeds the agent the prompt as its first message, then orch's messages,
/// and records at `turn` the end of the agent's first turn (its directory made here).
pub(crate) fn with_stream_json(mut argv: Vec<String>, turn: &Path) -> Vec<String> {
    if let Some(dir) = turn.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // An earlier run's record of the same attempt is not this one's.
    let _ = std::fs::remove_file(turn);
    if let Some(i) = argv.iter().position(|a| a == "--gate") {
        argv.insert(i + 1, "--stream-json".to_string());
        argv.insert(i + 2, format!("--turn-ended={}", turn.display()));
    }
    argv
}

/// The run's sandbox in one word: `unavailable` when some agent that would be confined cannot
/// be, else `on` when some agent is confined, else `off`.
pub(crate) fn run_state<'a>(plans: impl IntoIterator<Item = &'a PlanSandbox>) -> &'static str {
    let mut state = "off";
    for p in plans {
        match p {
            PlanSandbox::Unavailable => return "unavailable",
            PlanSandbox::Confined(_) => state = "on",
            PlanSandbox::Off => {}
        }
    }
    state
}

/// Writes the run's record ([`crate::state_layout::SANDBOX`]): the run's sandbox and Landlock ABI (`run`), each plan's sandbox.
pub(crate) fn record(state_dir: &Path, run: (&str, u8), plans: &[(String, &'static str)]) {
    let per_plan: serde_json::Map<String, serde_json::Value> = plans
        .iter()
        .map(|(n, s)| (n.clone(), serde_json::Value::from(*s)))
        .collect();
    let v = serde_json::json!({ "sandbox": run.0, "sandbox_abi": run.1, "plans": per_plan });
    let _ = crate::links::write(
        &crate::state_layout::SANDBOX.at(state_dir),
        format!("{v}\n").as_bytes(),
    );
}
