//! Where a merge step meets the resolver: a step that ends in a conflict (or, with
//! `resolve_verify`, a red `verify`) for a plan with `resolve` is handed to it; a resolution that
//! lands on the plan branch is followed by the step again, which now merges as before.

use super::hand::request;
use super::run::{Resolution, Why};
use crate::merge::plan_info::PlanInfo;
use crate::merge::{MergeError, MergeRun, StepOutcome, StepRequest, merge_plan};
use crate::workspace::Workspace;

/// The most lines of a red verify's output the resolver gets.
const VERIFY_TAIL: usize = 60;

impl MergeRun {
    /// `outcome`, the step of plan `p`, after its resolver had its turn when it has one; with
    /// the resolver's name when it ran.
    pub(crate) fn after_step(
        &self,
        ws: &Workspace,
        p: &PlanInfo,
        req: &StepRequest,
        outcome: StepOutcome,
    ) -> Result<(StepOutcome, Option<String>), MergeError> {
        let Some(res) = &self.resolver else {
            return Ok((outcome, None));
        };
        let Some(entry) = res.manifest.plan(p.name()).filter(|e| e.resolve.is_some()) else {
            return Ok((outcome, None));
        };
        let why = match &outcome {
            StepOutcome::Conflict { .. } => Why::Conflict,
            StepOutcome::VerifyFailed { reason } if entry.resolve_verify => {
                let tail = req
                    .verify
                    .map(|v| tail(&v.log_path(p.name())))
                    .unwrap_or_default();
                Why::Verify(format!("{reason}\n{tail}"))
            }
            _ => return Ok((outcome, None)),
        };
        let is_verify = matches!(why, Why::Verify(_));
        let mut r = request(
            ws,
            &res.manifest,
            entry,
            (req.repo_root, req.own),
            req.verify,
            why,
        );
        r.step.base = req.base;
        r.step.strategy = req.strategy;
        match super::resolve(res, &r)? {
            Resolution::Resolved {
                agent,
                verified_tree,
                ..
            } => {
                // The step again: its candidate, when the target did not move, has the tree
                // the resolution's gate verified.
                let again = StepRequest {
                    verified_tree: verified_tree.and_then(|t| crate::git::Oid::from_str(&t).ok()),
                    ..*req
                };
                Ok((merge_plan(&again)?, Some(agent)))
            }
            Resolution::Failed {
                cause,
                agent,
                files,
                saved,
            } => Ok((
                StepOutcome::Unresolved {
                    files,
                    verify: is_verify,
                    reason: super::run::failure(&agent, &cause, saved.as_deref()),
                },
                Some(agent),
            )),
        }
    }
}

/// The last lines of the log at `path` (the verify output), read without following a link.
fn tail(path: &std::path::Path) -> String {
    let Ok((_, bytes)) = crate::untrusted::read::tail(path, 0, 4 << 20) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(VERIFY_TAIL)..].join("\n")
}
