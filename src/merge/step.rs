//! One merge step: build the plan's merge on the target's tip, verify it, move the target, tag
//! the branch; rebuilt on the new tip when someone else moved the target meanwhile.

use std::path::Path;

use super::MergeError;
use super::interrupt;
use super::verify::{Verdict, Verify, run_verify};
use crate::git::{Built, MergeRepo, Moved, Oid, Subject, move_target};
use crate::manifest::MergeStrategy;

/// How often a step is built again after the target moved under it, after the first build.
pub(crate) const MAX_REBUILDS: u32 = 3;

/// The prefix of archive tags: `orch/archive/<plan>/<short sha of the branch tip>`.
pub(crate) const ARCHIVE_PREFIX: &str = "orch/archive";

/// What to merge and how.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StepRequest<'a> {
    /// The main repository's work dir.
    pub(crate) repo_root: &'a Path,
    /// orch's own directories there ([`crate::manifest::Guarded::own`]): never written by the
    /// landing's checkout.
    pub(crate) own: &'a [String],
    pub(crate) target: &'a str,
    pub(crate) plan: &'a str,
    pub(crate) branch: &'a str,
    /// The commit the plan branch was made from (named in the merge message), if known.
    pub(crate) base: Option<&'a str>,
    pub(crate) strategy: MergeStrategy,
    /// The verify command, if any.
    pub(crate) verify: Option<&'a Verify>,
    /// A tree `verify` passed on already (a resolution's gate, [`super::resolve`]): a candidate
    /// with that very tree is not verified twice.
    pub(crate) verified_tree: Option<Oid>,
}

impl StepRequest<'_> {
    /// What the step's commit message names.
    pub(crate) fn subject(&self) -> Subject<'_> {
        Subject {
            plan: self.plan,
            branch: self.branch,
            target: self.target,
            base: self.base,
            strategy: self.strategy,
        }
    }
}

/// A plan that landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Merged {
    /// The target's tip after the step: the merge or squash commit, or the branch tip for
    /// `ff-only`.
    pub(crate) commit: String,
    /// The target's tip the step was built on.
    pub(crate) previous: String,
    /// The plan branch's tip that was merged.
    pub(crate) branch_tip: String,
    /// The lightweight tag on the branch tip (`orch/archive/<plan>/<short sha>`).
    pub(crate) archive_tag: String,
    /// How often the step was rebuilt because the target moved.
    pub(crate) rebuilt: u32,
}

/// How a step ended (errors aside).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StepOutcome {
    Merged(Merged),
    /// The plan is in the target already; nothing changed.
    AlreadyMerged,
    /// The merge conflicts in these paths; nothing changed.
    Conflict {
        files: Vec<String>,
    },
    /// The verify command failed on the candidate; nothing changed.
    VerifyFailed {
        reason: String,
    },
    /// `ff-only`, but the target has commits the branch lacks; nothing changed.
    FfImpossible,
    /// The target moved under every attempt ([`MAX_REBUILDS`] rebuilds); the other commits are
    /// kept, nothing of ours landed.
    TargetKeptMoving {
        attempts: u32,
    },
    /// Ctrl-C or SIGTERM before the target moved; nothing changed.
    Interrupted,
    /// A conflict (or, `verify`, a red verify) that the plan's resolver did not resolve;
    /// nothing changed (the plan branch neither).
    Unresolved {
        files: Vec<String>,
        verify: bool,
        reason: String,
    },
}

/// Runs one merge step. Nothing moves unless the merge is clean and verified; then the work
/// tree that has the target checked out (if any) and the target ref move together, under the
/// ref's lock, from the tip the merge was built on.
pub(crate) fn merge_plan(req: &StepRequest) -> Result<StepOutcome, MergeError> {
    let repo = MergeRepo::open(req.repo_root)?;
    let theirs = repo
        .branch_tip(req.branch)?
        .ok_or_else(|| MergeError::BranchMissing {
            branch: req.branch.to_string(),
        })?;
    let subject = req.subject();
    for attempt in 0..=MAX_REBUILDS {
        if interrupt::interrupted() {
            return Ok(StepOutcome::Interrupted);
        }
        let tip = repo.target_tip(req.target)?;
        tracing::debug!(
            plan = req.plan,
            branch = req.branch,
            target = req.target,
            strategy = ?req.strategy,
            tip = %tip,
            attempt,
            "merge step: building"
        );
        let candidate = match repo.build(tip, theirs, &subject)? {
            Built::AlreadyMerged => return Ok(StepOutcome::AlreadyMerged),
            Built::Conflict(files) => return Ok(StepOutcome::Conflict { files }),
            Built::FfImpossible => return Ok(StepOutcome::FfImpossible),
            Built::Ready(c) => c,
        };
        let verified = req
            .verified_tree
            .is_some_and(|t| repo.tree_of(candidate) == Some(t));
        if let Some(verify) = req.verify.filter(|_| !verified) {
            match run_verify(
                verify,
                req.repo_root,
                (req.plan, &[]),
                req.target,
                candidate,
            )? {
                Verdict::Passed => {}
                Verdict::Failed(reason) => return Ok(StepOutcome::VerifyFailed { reason }),
                Verdict::Interrupted => return Ok(StepOutcome::Interrupted),
            }
        }
        if interrupt::interrupted() {
            return Ok(StepOutcome::Interrupted);
        }
        let log = format!(
            "orch merge: plan `{}` ({}, {})",
            req.plan, req.branch, req.strategy
        );
        match move_target(req.repo_root, req.target, (tip, candidate), req.own, &log)? {
            Moved::TargetMoved => continue,
            Moved::Done => {
                tracing::debug!(plan = req.plan, commit = %candidate, "merge step: target moved");
                let archive_tag = archive(&repo, req.plan, theirs)?;
                return Ok(StepOutcome::Merged(Merged {
                    commit: candidate.to_string(),
                    previous: tip.to_string(),
                    branch_tip: theirs.to_string(),
                    archive_tag,
                    rebuilt: attempt,
                }));
            }
        }
    }
    Ok(StepOutcome::TargetKeptMoving {
        attempts: MAX_REBUILDS + 1,
    })
}

/// Tags the branch tip (lightweight) so its commits survive the branch's deletion. A tag of that
/// name on the same commit is fine; on another commit it is an error.
pub(crate) fn archive(repo: &MergeRepo, plan: &str, tip: Oid) -> Result<String, MergeError> {
    let tag = format!("{ARCHIVE_PREFIX}/{plan}/{}", super::short(&tip.to_string()));
    repo.tag(&tag, tip, "orch merge: archive")
        .map_err(|reason| MergeError::Tag {
            tag: tag.clone(),
            reason,
        })?;
    Ok(tag)
}
