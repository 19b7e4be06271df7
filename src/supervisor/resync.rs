//! Upstream re-sync at a task boundary: when a task of a plan has settled and no agent works in
//! the plan's worktree, the new tips of its upstream plans' branches are merged into it
//! ([`crate::merge::sync`], the work of `orch sync`), before the next task starts.

use crate::merge::sync::{SyncResult, SyncTarget, record_upstream, sync_plan};

use super::context::PlanCtx;
use super::event::Event;
use super::runner::Effects;

impl Effects<'_> {
    /// Brings plan `p` up to date with its upstream plans after one of its tasks settled; returns
    /// the conflict when a merge conflicts (nothing was changed then). Only where no
    /// other agent can be in the plan's worktree: one agent at a time (`parallel` = 1, task
    /// mode) or task worktrees; a plan-mode agent is never interrupted.
    pub(super) fn resync(&mut self, p: usize) -> Option<String> {
        let pc = self.plan(p)?;
        if pc.entry.depends_on.is_empty() || !no_other_agent(&pc) {
            return None;
        }
        // The plans of other repositories: their checkouts follow their branches' tips.
        match super::upstream_repos::follow(&pc.upstreams, &pc.followed) {
            Ok(notes) => {
                for message in notes {
                    self.note(Some(pc.name().to_owned()), message);
                }
            }
            // The plan goes on with the checkout it has (a note says why it did not move).
            Err(e) => self.note(Some(pc.name().to_owned()), e),
        }
        let ws = self.ws.clone();
        let manifest = ws.manifest.as_ref()?;
        let mut upstreams: Vec<(String, String)> = Vec::new();
        for d in &pc.entry.depends_on {
            if upstreams.iter().any(|(n, _)| n == &d.plan)
                || super::upstream_repos::crosses(Some(manifest), &pc.entry, &d.plan)
            {
                continue;
            }
            if let Some(entry) = manifest.plan(&d.plan) {
                upstreams.push((d.plan.clone(), entry.branch.clone()));
            }
        }
        let target = SyncTarget {
            plan: pc.name(),
            branch: pc.branch(),
            worktree: &pc.worktree,
            upstreams,
        };
        let result = {
            let Ok(_git) = pc.git_lock.lock() else {
                return None;
            };
            sync_plan(&pc.repo_root, &target)
        };
        match result {
            Ok(SyncResult::Done(merged)) => {
                if merged.iter().all(|m| m.commit.is_none()) {
                    return None;
                }
                let recorded = pc.update(|doc| {
                    let value = record_upstream(doc.extra.get("orchUpstream"), &merged);
                    doc.extra.insert("orchUpstream".to_string(), value);
                    Ok(())
                });
                if let Err(e) = recorded {
                    self.note(
                        Some(pc.name().to_owned()),
                        format!("cannot record the upstream merge in the status file: {e}"),
                    );
                }
                for m in merged.into_iter().filter(|m| m.commit.is_some()) {
                    self.say(Event::UpstreamMerged {
                        plan: pc.name().to_owned(),
                        from: m.upstream,
                        upstream_commit: m.upstream_commit,
                        commit: m.commit,
                    });
                }
                None
            }
            Ok(SyncResult::Conflict {
                upstream,
                branch,
                upstream_commit,
                files,
            }) => Some(format!(
                "the new commits of `{upstream}` ({branch} at {}) conflict with `{}` in {}; nothing was merged: resolve it in `{}` (git merge {branch}), commit, and run `orch up` again",
                crate::merge::short(&upstream_commit),
                pc.branch(),
                crate::diagnostic::path_list(&files, 8),
                pc.worktree.display()
            )),
            Err(e) => {
                // Not a conflict (a dirty worktree, a lock): the plan goes on as it is.
                self.note(
                    Some(pc.name().to_owned()),
                    format!("cannot merge the new commits of its upstream plans: {e}"),
                );
                None
            }
        }
    }
}

/// Whether, at a task boundary, no agent can be working in the plan's worktree.
fn no_other_agent(pc: &PlanCtx) -> bool {
    use crate::manifest::AgentMode;
    pc.agent.mode == AgentMode::Task && (pc.task_trees() || pc.entry.parallel <= 1)
}
