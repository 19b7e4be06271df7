//! One plan merged now, as `orch merge PLAN --manifest M` would (every check, the lock, the
//! verify command, the record in the status file), for a caller that is not the command line:
//! the merge train of `orch up`. Nothing is printed and the process is never exited; the result
//! is typed.

use std::path::Path;

use super::{MergeRun, Outcome, Step};
use crate::error::{CliError, exit};
use crate::workspace::{self, Selection};

/// How merging one plan ended, in one word, as `orch merge --json` spells it (`merged`,
/// `already_merged`, `conflict`, `verify_failed`, `skipped`, `refused`, `error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MergeResult {
    Merged,
    AlreadyMerged,
    Conflict,
    VerifyFailed,
    Skipped,
    Refused,
    Error,
}

impl MergeResult {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Merged => "merged",
            Self::AlreadyMerged => "already_merged",
            Self::Conflict => "conflict",
            Self::VerifyFailed => "verify_failed",
            Self::Skipped => "skipped",
            Self::Refused => "refused",
            Self::Error => "error",
        }
    }
}

impl std::fmt::Display for MergeResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How merging one plan ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanMergeOutcome {
    /// The target moved to `commit`. `note` says when the step had to be rebuilt because the
    /// target moved meanwhile.
    Merged {
        commit: String,
        note: Option<String>,
    },
    /// The plan was in the target already; nothing moved. `reason` says how that is known.
    AlreadyMerged { reason: String },
    /// The merge conflicts in `files`; nothing moved. `advice` says how to resolve it.
    Conflict { files: Vec<String>, advice: String },
    /// The verify command failed on the merge; nothing moved.
    VerifyFailed { reason: String },
    /// Not attempted or not finished: upstream not merged, no branch, `ff-only` impossible, the
    /// target kept moving, interrupted.
    Skipped { reason: String },
    /// Refused before anything moved (exit 4 of `orch merge`): the plan is not finished, an
    /// upstream plan is not merged, another `orch merge` runs, the target's work tree is dirty.
    Refused { reason: String },
    /// Anything else that stopped it (invalid manifest, git error, …).
    Error { reason: String },
}

impl PlanMergeOutcome {
    /// As `orch merge --json` spells it: `merged`, `already_merged`, `conflict`, `verify_failed`,
    /// `skipped`, `refused`, `error`.
    pub fn result_str(&self) -> &'static str {
        self.result().as_str()
    }

    /// In one word, typed.
    pub(crate) fn result(&self) -> MergeResult {
        match self {
            Self::Merged { .. } => MergeResult::Merged,
            Self::AlreadyMerged { .. } => MergeResult::AlreadyMerged,
            Self::Conflict { .. } => MergeResult::Conflict,
            Self::VerifyFailed { .. } => MergeResult::VerifyFailed,
            Self::Skipped { .. } => MergeResult::Skipped,
            Self::Refused { .. } => MergeResult::Refused,
            Self::Error { .. } => MergeResult::Error,
        }
    }

    /// In the target now (merged by this step or before).
    pub fn is_merged(&self) -> bool {
        matches!(self, Self::Merged { .. } | Self::AlreadyMerged { .. })
    }

    /// The commit the target moved to, when this step merged it.
    pub fn commit(&self) -> Option<&str> {
        match self {
            Self::Merged { commit, .. } => Some(commit),
            _ => None,
        }
    }

    /// In words, for an event: the step's reason, with a conflict's paths (`` `a`, `b` ``).
    pub fn reason(&self) -> String {
        match self {
            Self::Merged { note, .. } => note.clone().unwrap_or_default(),
            Self::Conflict { files, advice } => {
                let files = files
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                match (advice.is_empty(), files.is_empty()) {
                    (_, true) => advice.clone(),
                    (true, false) => format!("conflicts in {files}"),
                    (false, false) => format!("{advice}: {files}"),
                }
            }
            Self::AlreadyMerged { reason }
            | Self::VerifyFailed { reason }
            | Self::Skipped { reason }
            | Self::Refused { reason }
            | Self::Error { reason } => reason.clone(),
        }
    }

    fn of_step(step: Step) -> Self {
        let reason = step.reason.unwrap_or_default();
        match step.result {
            Outcome::Merged => Self::Merged {
                commit: step.commit.unwrap_or_default(),
                note: (!reason.is_empty()).then_some(reason),
            },
            Outcome::AlreadyMerged => Self::AlreadyMerged { reason },
            Outcome::Conflict => Self::Conflict {
                files: step.files,
                advice: reason,
            },
            Outcome::VerifyFailed => Self::VerifyFailed { reason },
            Outcome::Skipped | Outcome::WouldMerge => Self::Skipped { reason },
        }
    }

    fn of_error(plan: &str, e: &CliError) -> Self {
        // What `orch merge` printed after `error: `: the message's first line.
        let text = e.error.to_string();
        let reason = match text.lines().next() {
            Some(first) if !first.is_empty() => first.to_string(),
            _ => format!("`orch merge {plan}` exited with exit status: {}", e.code),
        };
        if e.code == exit::REFUSED {
            Self::Refused { reason }
        } else {
            Self::Error { reason }
        }
    }
}

/// What [`merge_plan_now`] did: the outcome, and the warnings `orch merge` would have printed
/// (a status file it could not write; git holds the truth either way).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanMergeReport {
    pub outcome: PlanMergeOutcome,
    pub warnings: Vec<String>,
}

/// Merges plan `plan` of the manifest at `manifest_path` into the manifest's target, exactly as
/// `orch merge PLAN --manifest MANIFEST` does: the plan must be finished and its upstream plans
/// merged, one merge per repository at a time (`<state_dir>/merge.lock`), the merge built in
/// memory, verified by `defaults.verify`, recorded in the plan's status file (`orchMerge`).
///
/// Blocking (libgit2, the verify command): call it from `tokio::task::spawn_blocking`. It
/// installs no signal handler; [`super::interrupt::request`] stops it as a first Ctrl-C stops
/// `orch merge`.
pub fn merge_plan_now(manifest_path: &Path, plan: &str) -> PlanMergeReport {
    merge_plan_now_with(manifest_path, plan, None)
}

/// The agent runner of a plan's resolver and who hears its notes ([`super::resolve`]).
pub(crate) type ResolveWith = (
    std::sync::Arc<dyn super::resolve::RunAgent>,
    std::sync::Arc<dyn Fn(&super::resolve::ResolveNote) + Send + Sync>,
);

/// [`merge_plan_now`], a plan with `resolve` that conflicts handed to its resolver when
/// `resolve` gives one.
pub(crate) fn merge_plan_now_with(
    manifest_path: &Path,
    plan: &str,
    resolve: Option<ResolveWith>,
) -> PlanMergeReport {
    let mut warnings = Vec::new();
    let outcome = match run_one(manifest_path, plan, &mut warnings, resolve) {
        Ok(outcome) => outcome,
        Err(e) => PlanMergeOutcome::of_error(plan, &e),
    };
    PlanMergeReport { outcome, warnings }
}

fn run_one(
    manifest_path: &Path,
    plan: &str,
    warnings: &mut Vec<String>,
    resolve: Option<ResolveWith>,
) -> Result<PlanMergeOutcome, CliError> {
    let sel = Selection {
        manifest: Some(manifest_path.to_path_buf()),
        plan: None,
    };
    let ws = workspace::load(&sel)?;
    ws.require_valid()?;
    let Some(manifest) = ws.manifest.as_ref() else {
        return Err(CliError::invalid(anyhow::anyhow!(
            "`orch merge` needs a plans.toml: it merges the plans the manifest lists"
        )));
    };
    let names = [plan.to_string()];
    let mut run = MergeRun::plan(&ws, manifest, &names, None, false)?;
    if let Some((runner, notify)) = resolve {
        run = run.with_resolver(super::resolve::Resolver {
            runner,
            manifest: std::sync::Arc::new(manifest.clone()),
            notify,
        });
    }
    // No person looks at what the train merges: what a later run trusts, changed on the plan
    // branch by no task that names it (a plan agent's own commit, say), is left to one
    // (`prepare` refuses it, exit 4: `refused`).
    let prepared = run.prepare(&ws, manifest)?;
    let mut steps = Vec::new();
    let result = run.run(
        &ws,
        prepared.verify.as_ref(),
        &mut steps,
        |_| {},
        &mut |w| warnings.push(w),
    );
    if let Some(step) = steps.into_iter().find(|s| s.plan == plan) {
        return Ok(PlanMergeOutcome::of_step(step));
    }
    match result {
        Err(e) => Err(CliError::coded(e)),
        // A plan of the run always has a step; should that ever fail, say so.
        Ok(_) => Ok(PlanMergeOutcome::Error {
            reason: format!("`orch merge {plan}` reported no step for plan `{plan}`"),
        }),
    }
}
