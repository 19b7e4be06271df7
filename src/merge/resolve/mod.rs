//! Resolution by agent: a plan that cannot land because of a textual conflict (or,
//! with `resolve_verify`, a red `verify` on a clean merge) is handed to an agent, confined like
//! any attempt, in a resolution worktree of its own (`<worktree_root>/.resolve-<plan>`, made and
//! removed by orch), and counts only behind gates orch checks from its own records:
//!
//! 1. git's merge of the target into the plan branch, with git's conflict markers, is written by
//!    orch (`git merge-tree`, [`crate::git::marked_conflict`]) as a commit no ref names, and
//!    checked out in the resolution worktree; the conflicted paths are git's, never the agent's;
//! 2. the agent edits the files there; its explanation (a file in a directory orch made for it,
//!    outside the worktree) may name further files it had to change;
//! 3. orch compares the worktree with the conflicted tree itself ([`gates`]): no conflict marker
//!    left (the files read as bytes, never through a link), no unmerged index entry, no symlink,
//!    the changed files within the conflicted files plus at most [`gates::MAX_EXTRA`] files the
//!    explanation names that already exist on one side, none of them protected (orch's own
//!    configuration, [`crate::manifest::Guarded`], and `protect`);
//!    The agent runs on this machine, unless the plan (or a plan whose work the worktree holds)
//!    runs in a container: then in a one-shot container of that image
//!    ([`AgentJob::container`]), the plans of different images refused before anything is made;
//! 4. orch builds the merge commit (parents: the plan branch's tip and the target's tip, the
//!    tree from the conflicted tree with the changed files read as bytes), runs the plan's
//!    `check` on it and `verify` on the merge that would land, both confined as they are run
//!    today, and only then moves the plan branch by a compare-and-swap;
//! 5. otherwise the plan branch does not move and what the agent left is saved under
//!    `refs/orch/attempts/<plan>/resolve/<n>`.

mod gates;
mod hand;
mod land;
mod prompt;
mod request;
mod run;
mod step;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::agent_output::Usage;
use crate::manifest::{AgentSpec, Manifest};

pub(crate) use hand::{dry_run_prompt, request, resolve_by_hand, sync_resolving, verify_for};
pub(crate) use request::Onto;

/// Where the resolving agent of a plan that runs in a container runs ([`AgentJob::container`]):
/// a one-shot container of the plan's image, what it mounts of the agent's own, and the client
/// from this machine it may need (for the runner, which names no executor kind).
pub(crate) use crate::executor::container::{
    Mounts as ContainerMounts, OneShot as Container, client_for as container_client,
};
pub(crate) use run::resolve;
pub(crate) use run::{Resolution, Why, failure, resolvers_usage};

/// Where the agent names files it had to change beyond the conflicted ones, one per line:
/// `<notes dir>/explanation.md`.
pub(crate) const EXPLANATION: &str = "explanation.md";

/// The prefix of resolution worktrees' names (`<worktree_root>/.resolve-<plan>`). Plan names
/// begin with a letter or a digit, so it never clashes with a plan's worktree.
pub(crate) const RESOLVE_PREFIX: &str = ".resolve-";

/// One run of the resolving agent, as orch hands it to a [`RunAgent`].
#[derive(Clone, Debug)]
pub(crate) struct AgentJob {
    pub(crate) plan: String,
    /// The agent's name (a preset or an `[agents.NAME]`) and its definition.
    pub(crate) agent_name: String,
    pub(crate) agent: AgentSpec,
    /// The plan's own agent (name, definition), if it has one: the resolver's network is the
    /// strictest of its and the resolver's ([`crate::merge::network`]).
    pub(crate) plan_agent: Option<(String, AgentSpec)>,
    /// The resolution worktree: the agent's working directory, the one place of the repository
    /// it may write.
    pub(crate) workdir: PathBuf,
    pub(crate) prompt: String,
    /// Made afresh by orch, writable by the agent: its explanation goes there ([`EXPLANATION`]).
    pub(crate) notes_dir: PathBuf,
    /// The log the agent's output is appended to (`<log_dir>/<plan>/resolve.log`).
    pub(crate) log: PathBuf,
    pub(crate) timeout: Duration,
    pub(crate) grace: Duration,
    /// `defaults.log_max`: the most of the agent's output its log keeps.
    pub(crate) log_max: u64,
    /// 1 for the plan's first resolution.
    pub(crate) attempt: u32,
    /// The run's state directory (the agent's private client state goes beneath it).
    pub(crate) state_dir: PathBuf,
    pub(crate) manifest_path: PathBuf,
    /// Where the plan's code runs: the image (and services) of the plan, or of the container
    /// plans among the plans whose work the resolution worktree holds (a group's candidate's),
    /// when one of them runs in a container: the agent runs in a container of it
    /// ([`crate::executor::container::OneShot`]), never on this machine. `None`: here.
    pub(crate) container: Option<crate::executor::container::PlanImage>,
}

/// How the agent's run ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AgentRun {
    /// Why it failed (did not start, exited non-zero, timed out); `None`: it exited 0.
    pub(crate) failure: Option<String>,
    /// Tokens and cost, when its client printed them.
    pub(crate) usage: Option<Usage>,
    /// Stopped by Ctrl-C or SIGTERM.
    pub(crate) interrupted: bool,
}

/// Runs a resolving agent to its end (blocking): confined as an attempt is, with its own
/// private client state. The supervisor's implementation is `supervisor::resolver`.
pub(crate) trait RunAgent: Send + Sync {
    fn run(&self, job: &AgentJob) -> AgentRun;
}

/// What a resolution tells as it goes: the `resolve_started`, `resolved` and `resolve_failed`
/// events of `orch up` (serialized as those events), the lines of `orch merge` and `orch
/// resolve`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum ResolveNote {
    #[serde(rename = "resolve_started")]
    Started {
        plan: String,
        agent: String,
        files: Vec<String>,
        /// `conflict` or `verify_failed`.
        #[serde(rename = "reason")]
        why: String,
        attempt: u32,
    },
    Resolved {
        plan: String,
        agent: String,
        files: Vec<String>,
        /// The merge commit on the plan branch.
        commit: String,
        attempt: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
    },
    #[serde(rename = "resolve_failed")]
    Failed {
        plan: String,
        agent: String,
        files: Vec<String>,
        cause: String,
        /// Where the attempt was saved.
        saved: Option<String>,
        attempt: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
    },
}

/// What a merge run needs to hand a plan to its resolver: the agent runner, the manifest (the
/// plans' `resolve`, the agents, `check`, the protected files) and who hears the notes.
#[derive(Clone)]
pub(crate) struct Resolver {
    pub(crate) runner: Arc<dyn RunAgent>,
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) notify: Arc<dyn Fn(&ResolveNote) + Send + Sync>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}
