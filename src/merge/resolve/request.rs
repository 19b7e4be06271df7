//! What a resolution is asked and answers, shared by its steps: why a plan is handed to its
//! resolver ([`Why`]), the request ([`ResolveRequest`]) and how it ended ([`Resolution`]), the
//! conflicted state orch writes for the agent ([`Conflicted`]), and where a plan's resolution
//! lies ([`plan_base`]: its own repository).

use std::path::PathBuf;

use crate::git::{MergeRepo, Oid};
use crate::manifest::Manifest;
use crate::merge::{MergeError, StepRequest};

/// Why a plan is handed to its resolver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// A textual conflict with the target.
    Conflict,
    /// `verify` failed on a clean merge (`resolve_verify`): the end of its output.
    Verify(String),
}

impl Why {
    pub(super) fn as_str(&self) -> &'static str {
        match self {
            Self::Conflict => "conflict",
            Self::Verify(_) => "verify_failed",
        }
    }
}

/// What to resolve.
pub(crate) struct ResolveRequest<'a> {
    /// The merge step the resolution is for: the plan, its branch, the target, how the plan
    /// lands and `verify` (its `verified_tree` is not read).
    pub(crate) step: StepRequest<'a>,
    pub(crate) why: Why,
    /// The plan's tasks: (`id: description`, description and body), to name those that name a
    /// conflicted file.
    pub(crate) tasks: Vec<(String, String)>,
    /// The plan as loaded (its status file: what its tasks and resolvers spent, against its
    /// `budget`; where a resolver's usage is recorded).
    pub(crate) loaded: Option<&'a crate::workspace::LoadedPlan>,
    /// What the plan is resolved against when it is not the target's tip (none: the target's
    /// tip now).
    pub(crate) onto: Option<Onto>,
}

/// What a plan is resolved against inside a group's landing: the group's candidate so far in
/// the plan's repository (the target with the group's earlier plans merged, a commit orch
/// wrote and no ref names), so that a plan that conflicts with an earlier plan of its group is
/// resolved against that plan's work too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Onto {
    pub(crate) tip: Oid,
    /// How the prompt, the commit message and the errors name it, quoted as Markdown
    /// (`` `main` and plan `a` of its group ``).
    pub(crate) name: String,
    /// The group's plans whose work it holds: a check or verify of the resolution runs their
    /// code too, in the image of theirs that run in a container
    /// ([`crate::executor::container::Images::of`]).
    pub(crate) plans: Vec<String>,
}

impl ResolveRequest<'_> {
    /// How the side the plan is resolved against is named, quoted: `` `main` ``, or
    /// [`Onto::name`].
    pub(crate) fn theirs_name(&self) -> String {
        match &self.onto {
            Some(o) => o.name.clone(),
            None => format!("`{}`", self.step.target),
        }
    }

    /// The group's plans whose work the side the plan is resolved against holds (none: the
    /// target's tip).
    pub(crate) fn theirs_plans(&self) -> &[String] {
        self.onto.as_ref().map_or(&[], |o| o.plans.as_slice())
    }

    /// The commit the plan is resolved against now: [`Onto::tip`], else the target's tip.
    pub(super) fn theirs_tip(&self, repo: &MergeRepo) -> Result<Oid, MergeError> {
        match &self.onto {
            Some(o) => Ok(o.tip),
            None => repo.target_tip(self.step.target),
        }
    }
}

/// How a resolution ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Resolution {
    /// The merge commit is on the plan branch.
    Resolved {
        commit: String,
        agent: String,
        files: Vec<String>,
        /// The tree of the merge into the target that `verify` passed on (none without verify).
        verified_tree: Option<String>,
    },
    /// Nothing moved; `saved` names the attempt's ref when the agent left something.
    Failed {
        cause: String,
        agent: String,
        files: Vec<String>,
        saved: Option<String>,
    },
}

/// A failed resolution in words.
pub(crate) fn failure(agent: &str, cause: &str, saved: Option<&str>) -> String {
    let saved = saved.map(|s| format!(" (its attempt is saved under `{s}`)"));
    format!(
        "resolution by agent `{agent}` failed: {cause}{}",
        saved.unwrap_or_default()
    )
}

/// The conflicted state orch writes for the resolver.
pub(super) struct Conflicted {
    /// The plan branch's tip and the target's.
    pub(super) ours: Oid,
    pub(super) theirs: Oid,
    /// The merge with git's markers (conflict), or the clean merge (verify).
    pub(super) tree: Oid,
    pub(super) files: Vec<String>,
}

pub(super) fn conflicted(
    repo: &MergeRepo,
    req: &ResolveRequest,
) -> Result<Result<Conflicted, String>, MergeError> {
    let ours = repo
        .branch_tip(req.step.branch)?
        .ok_or_else(|| MergeError::BranchMissing {
            branch: req.step.branch.to_string(),
        })?;
    let theirs = req.theirs_tip(repo)?;
    let (tree, files) = match &req.why {
        Why::Conflict => match repo.marked_conflict(ours, theirs)? {
            Some(m) => m,
            None => {
                return Ok(Err(format!(
                    "git could not write the conflicted merge of {} into `{}` (git 2.38 or later is needed), or it merges cleanly now",
                    req.theirs_name(),
                    req.step.branch
                )));
            }
        },
        Why::Verify(_) => match repo.merged_tree(ours, theirs)? {
            Ok(tree) => (tree, Vec::new()),
            Err(paths) => {
                return Ok(Err(format!(
                    "`{}` now conflicts with {} in {}",
                    req.step.branch,
                    req.theirs_name(),
                    paths.join(", ")
                )));
            }
        },
    };
    Ok(Ok(Conflicted {
        ours,
        theirs,
        tree,
        files,
    }))
}

/// The directory plan `plan`'s `state_dir`, `log_dir` and `worktree_root` are in: its
/// `[[repo]]`'s (canonical), else the manifest's (the home repository). A resolution's worktree,
/// notes, logs and its agent's private state lie where the plan's own attempts' do.
pub(crate) fn plan_base(manifest: &Manifest, plan: &str) -> PathBuf {
    match manifest.repo_of(plan) {
        Some(r) => r
            .abs_path
            .canonicalize()
            .unwrap_or_else(|_| r.abs_path.clone()),
        None => manifest.root.clone(),
    }
}
