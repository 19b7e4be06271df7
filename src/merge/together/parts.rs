//! What a group's landing is made of and came to: each repository's part ([`Part`]), the
//! outcome ([`Landed`]), a plan's conflict ([`Conflict`], [`Unbuilt`]), and what a landing
//! needs ([`Ctx`]); shared by the landing (`land.rs`), its record (`record.rs`) and the hand-off
//! of a conflict to a resolver (`resolve.rs`).

use std::path::{Path, PathBuf};

use crate::error::CliError;
use crate::git::Oid;
use crate::manifest::{Manifest, MergeStrategy};

/// A repository's part of a group's landing.
#[derive(Clone, Debug)]
pub(crate) struct Part {
    pub(crate) repo: String,
    pub(crate) root: PathBuf,
    pub(crate) target: String,
    pub(crate) old: Oid,
    /// The candidate: `old` when its plans are in the target already.
    pub(crate) new: Oid,
    /// Its plans, as `plan (branch)`.
    pub(crate) plans: Vec<String>,
    pub(crate) verify: Option<Vec<String>>,
    /// Each of its plans merged into the candidate, with the branch tip merged.
    pub(crate) tips: Vec<(String, Oid)>,
    /// Its plans whose conflict an agent resolved during this landing: (plan, agent).
    pub(crate) resolved: Vec<(String, String)>,
    /// The tags that keep its plans' branch tips once landed (`orch/archive/<plan>/<tip>`, as
    /// a plan landed alone is kept): (plan, tag).
    pub(crate) archived: Vec<(String, String)>,
}

/// What a group's landing came to.
#[derive(Debug)]
pub(crate) enum Landed {
    /// Every target moved, in this order (repository, target, from, to).
    Moved(Vec<Part>),
    /// Every plan of the group is in its target already.
    AlreadyIn,
    /// Nothing moved (or what moved was put back): why.
    Refused(String),
    /// A plan's branch changes what a later run trusts in its repository that its
    /// `allow_protected` does not allow, or puts a link there ([`crate::merge::trusted`]): nothing moved; exit 4.
    Protected(CliError),
    /// A plan's merge conflicts in its repository: nothing moved.
    Conflict(Unbuilt),
    /// A `verify` or `verify_all` on the combination was red (or could not run): nothing moved.
    VerifyFailed(String),
}

/// A plan whose branch conflicts with the target of its repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Conflict {
    pub(crate) plan: String,
    pub(crate) repo: String,
    /// The repository's work dir.
    pub(crate) root: PathBuf,
    pub(crate) target: String,
    pub(crate) branch: String,
    /// The conflicting paths.
    pub(crate) files: Vec<String>,
    /// Its resolver, when it was handed to one and the resolution failed: the agent and why.
    pub(crate) unresolved: Option<(String, String)>,
    /// The group's earlier plans of the repository merged before it, when there are: the
    /// candidate so far (the commit its conflict is with, no ref names it) and their names.
    pub(crate) after: Option<(Oid, Vec<String>)>,
    /// Whether the plan names a resolver (`resolve`): the hint says `orch resolve` then.
    pub(crate) has_resolver: bool,
    /// Where `branch` is checked out (the plan's worktree, usually): a person resolves it
    /// there, since git checks a branch out in one work tree only.
    pub(crate) checked_out: Option<PathBuf>,
}

impl Conflict {
    /// What its plan's resolver is handed the merge of, when the plan conflicts with earlier
    /// plans of its group: the candidate so far ([`crate::merge::resolve::Onto`]).
    pub(crate) fn onto(&self) -> Option<crate::merge::resolve::Onto> {
        self.after
            .as_ref()
            .map(|(tip, plans)| crate::merge::resolve::Onto {
                tip: *tip,
                name: self.with(),
                plans: plans.clone(),
            })
    }

    /// What the plan conflicts with, quoted: `` `main` ``, or `` `main` and plan `a` of its
    /// group `` (the candidate so far).
    pub(crate) fn with(&self) -> String {
        match &self.after {
            None => format!("`{}`", self.target),
            Some((_, plans)) => format!(
                "`{}` and {} of its group",
                self.target,
                plans
                    .iter()
                    .map(|p| format!("plan `{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Why a group's merge could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Unbuilt {
    Conflict(Box<Conflict>),
    /// Anything else (a branch missing, `ff-only` impossible, git's error), in words.
    Other(String),
}

impl std::fmt::Display for Unbuilt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Conflict(c) => {
                let Conflict {
                    plan,
                    repo,
                    root,
                    target,
                    branch,
                    files,
                    unresolved,
                    after,
                    has_resolver,
                    checked_out,
                } = c.as_ref();
                match after {
                    None => write!(
                        f,
                        "plan `{plan}` conflicts with `{target}` of repository `{repo}` in {}; ",
                        crate::diagnostic::path_list(files, 8)
                    )?,
                    Some(_) => write!(
                        f,
                        "plan `{plan}` of repository `{repo}` conflicts with {} in {}; ",
                        c.with(),
                        crate::diagnostic::path_list(files, 8)
                    )?,
                }
                if let Some((_, why)) = unresolved {
                    write!(f, "{why}; ")?;
                }
                // Where it can be resolved: by a person in the plan's repository, or by its
                // resolver (`orch resolve`, which hands over the same merge, a conflict with an
                // earlier plan of the group included), once it has one.
                let what = match after {
                    None => format!("merge `{target}` into `{branch}`"),
                    Some((_, plans)) => format!(
                        "merge `{target}` and the {} of {} into `{branch}`",
                        if plans.len() == 1 {
                            "branch"
                        } else {
                            "branches"
                        },
                        plans
                            .iter()
                            .map(|p| format!("plan `{p}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                let by_agent = if *has_resolver {
                    format!("with `orch resolve {plan}` (its `resolve` agent is handed that merge)")
                } else {
                    format!("give plan `{plan}` a `resolve` agent and run `orch resolve {plan}`")
                };
                match checked_out {
                    Some(dir) => write!(
                        f,
                        "resolve it by hand in `{}`, where `{branch}` is checked out ({what} and fix the files), or {by_agent}, then `orch merge` lands its group",
                        dir.display()
                    ),
                    None => write!(
                        f,
                        "resolve it by hand in `{}` (`git switch {branch}`, {what} and fix the files) or {by_agent}, then `orch merge` lands its group",
                        root.display()
                    ),
                }
            }
            Self::Other(why) => f.write_str(why),
        }
    }
}

impl Unbuilt {
    /// The conflict, when it is one.
    pub(crate) fn conflict(&self) -> Option<&Conflict> {
        match self {
            Self::Conflict(c) => Some(c),
            Self::Other(_) => None,
        }
    }
}

impl From<String> for Unbuilt {
    fn from(why: String) -> Self {
        Self::Other(why)
    }
}

/// The home repository's work dir and the manifest: what a landing needs.
pub(crate) struct Ctx<'a> {
    pub(crate) manifest: &'a Manifest,
    pub(crate) home: &'a Path,
    pub(crate) strategy: MergeStrategy,
}
