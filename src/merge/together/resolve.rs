//! A conflict inside a group landing together, handed to the conflicting plan's resolver
//! ([`crate::merge::resolve`]) in the plan's own repository: its resolution worktree, notes,
//! logs and agent state where that plan's attempts have theirs, that repository's target and
//! `verify` as the resolution's gates. A plan that conflicts with an earlier plan of the group
//! in its repository is resolved against the group's candidate so far (the target with those
//! plans merged): its branch then holds their work, which lands with it. A resolution lands
//! only on the plan's branch; the group is then built again and lands all together or not at all ([`super::land::Ctx::land`]: what
//! a later run trusts in each repository, each `verify` and `verify_all` on the combination,
//! compare-and-swap with backup refs).
//!
//! The resolver is untrusted: besides the gates of the resolution itself, every target and
//! every plan branch of the group is read before it starts and after it ends; one that moved
//! meanwhile (other than the plan branch orch moved to the resolution's commit) stops the
//! landing, nothing landed. Where Landlock confines the resolver it cannot move them; without
//! it (`sandbox = "off"`) this is what keeps its other writes out of the landing.

use std::path::{Path, PathBuf};

use super::Group;
use super::parts::{Conflict, Ctx, Unbuilt};
use crate::manifest::Manifest;
use crate::merge::resolve::{self, Resolution, Resolver, Why};
use crate::workspace::Workspace;

/// What plan `plan` is resolved against by `orch resolve PLAN`: the candidate so far of its
/// group's landing, when the plan conflicts there with an earlier plan of its group in its
/// repository (the group built as `orch merge` builds it, the candidate's commit written to
/// that repository's objects, no ref moved); `None` when it has no group, the group builds,
/// or what conflicts first is another plan or the plan with its target alone.
pub(crate) fn group_onto(manifest: &Manifest, home: &Path, plan: &str) -> Option<resolve::Onto> {
    let (groups, _) = super::groups(manifest, &[plan.to_string()]);
    let group = groups.iter().find(|g| g.plans.iter().any(|p| p == plan))?;
    let ctx = Ctx {
        manifest,
        home,
        strategy: manifest.defaults.merge_strategy,
    };
    match ctx.build(group, false) {
        Err(Unbuilt::Conflict(c)) if c.plan == plan => c.onto(),
        _ => None,
    }
}

/// What became of a conflict handed to the resolver.
#[derive(Debug)]
pub(crate) enum Handed {
    /// Not handed: no resolver here, the plan has no `resolve`, or it was resolved once in this
    /// landing already (its conflict is a person's).
    No,
    /// The resolution is on the plan's branch: the group is built again.
    Resolved { agent: String },
    /// The resolver's attempt failed a gate (or the agent failed): the conflict stays.
    Failed { agent: String, why: String },
    /// The landing stops, nothing landed: why.
    Stop(String),
}

/// A ref of the group read before the resolver runs: the repository, its work dir, the ref's
/// name (a target or a plan branch) and its tip.
struct Pin {
    repo: String,
    root: PathBuf,
    branch: String,
    tip: Option<String>,
}

impl Ctx<'_> {
    /// Hands the conflict `c` of `group` to its plan's resolver when there is one and the plan
    /// was not resolved in this landing yet (`done`: the plans resolved so far).
    pub(crate) fn hand_to_resolver(
        &self,
        group: &Group,
        ws: &Workspace,
        c: &Conflict,
        resolver: Option<&Resolver>,
        done: &[(String, String)],
    ) -> Handed {
        let Some(res) = resolver else {
            return Handed::No;
        };
        let Some(entry) = self.manifest.plan(&c.plan).filter(|e| e.resolve.is_some()) else {
            return Handed::No;
        };
        if done.iter().any(|(p, _)| *p == c.plan) {
            return Handed::No;
        }
        let verify = match resolve::verify_for(self.manifest, entry, &c.root) {
            Ok(v) => v,
            Err(e) => {
                return Handed::Stop(format!(
                    "the resolution of plan `{}` of repository `{}` cannot verify: {}",
                    c.plan, c.repo, e.error
                ));
            }
        };
        let before = self.pins(group);
        let own = self.manifest.own_dirs(&c.root);
        let mut req = resolve::request(
            ws,
            self.manifest,
            entry,
            (&c.root, &own),
            verify.as_ref(),
            Why::Conflict,
        );
        req.step.strategy = self.strategy;
        // A conflict with an earlier plan of the group is resolved against the candidate so
        // far, which holds that plan's work (and lands with it, all together or not at all).
        req.onto = c.onto();
        match resolve::resolve(res, &req) {
            Err(e) => Handed::Stop(format!(
                "the resolution of plan `{}` of repository `{}` could not run: {e}",
                c.plan, c.repo
            )),
            Ok(Resolution::Resolved { agent, commit, .. }) => {
                match self.moved_since(&before, c, &commit) {
                    Some(moved) => Handed::Stop(format!(
                        "{moved} while the resolver of plan `{}` ran (only orch moves them during a landing): nothing was landed",
                        c.plan
                    )),
                    None => Handed::Resolved { agent },
                }
            }
            Ok(Resolution::Failed {
                cause,
                agent,
                saved,
                ..
            }) => {
                let why = resolve::failure(&agent, &cause, saved.as_deref());
                match self.moved_since(&before, c, "") {
                    Some(moved) => Handed::Stop(format!(
                        "{why}; {moved} while the resolver ran: nothing was landed"
                    )),
                    None => Handed::Failed { agent, why },
                }
            }
        }
    }

    /// Every target of `group` and every plan branch of it, with its tip now.
    fn pins(&self, group: &Group) -> Vec<Pin> {
        let mut out = Vec::new();
        for repo in &group.repos {
            let root = self.root_of(repo);
            let branches = std::iter::once(self.target_of(repo)).chain(
                group
                    .plans_of(self.manifest, repo)
                    .into_iter()
                    .map(|p| p.branch.clone()),
            );
            for branch in branches {
                let tip = crate::git::branch_tip(&root, &branch).ok().flatten();
                out.push(Pin {
                    repo: repo.clone(),
                    root: root.clone(),
                    branch,
                    tip,
                });
            }
        }
        out
    }

    /// The first ref of `before` that moved since, in words; the branch of the resolved plan
    /// of `c` may only have moved to `resolved` (orch's commit; empty: it may not have moved).
    fn moved_since(&self, before: &[Pin], c: &Conflict, resolved: &str) -> Option<String> {
        for pin in before {
            let now = crate::git::branch_tip(&pin.root, &pin.branch)
                .ok()
                .flatten();
            if now == pin.tip {
                continue;
            }
            let own = pin.repo == c.repo && pin.branch == c.branch;
            if own && !resolved.is_empty() && now.as_deref() == Some(resolved) {
                continue;
            }
            return Some(format!(
                "`{}` of repository `{}` moved",
                pin.branch, pin.repo
            ));
        }
        None
    }
}
