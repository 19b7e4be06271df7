//! A group's landing recorded in each of its plans' status files (`orchMerge`), in the plan's
//! own repository, as a landing of one plan records it: `merged` with its repository's new
//! tip, the tag that keeps its branch tip and the agent that resolved its conflict, if one did;
//! `verify_failed` with the reason and the log; `conflict` with the files (the plan that
//! conflicts) and the resolver whose attempt failed. A landing refused before anything was
//! built records nothing, as a plan alone.

use chrono::Utc;

use super::Group;
use super::parts::{Ctx, Landed};
use crate::status::{self, OrchMerge};
use crate::workspace::Workspace;

/// Writes `landed` into the status file of each plan of `group` it concerns; a file that
/// cannot be written is said (git holds the truth: the targets moved or not either way).
pub(crate) fn outcome(
    ctx: &Ctx<'_>,
    group: &Group,
    ws: &Workspace,
    landed: &Landed,
    say: &mut dyn FnMut(String),
) {
    let at = status::timestamp(Utc::now());
    let strategy = ctx.strategy.as_str().to_string();
    for repo in &group.repos {
        let root = ctx.root_of(repo);
        let target = ctx.target_of(repo);
        let tip_now = || {
            crate::git::branch_tip(&root, &target)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        for p in group.plans_of(ctx.manifest, repo) {
            let base = OrchMerge {
                target: target.clone(),
                strategy: strategy.clone(),
                branch: p.branch.clone(),
                branch_tip: crate::git::branch_tip(&root, &p.branch).ok().flatten(),
                at: at.clone(),
                ..OrchMerge::default()
            };
            let record = match landed {
                Landed::Moved(parts) => {
                    let Some(part) = parts.iter().find(|part| part.repo == *repo) else {
                        continue;
                    };
                    let of_plan = |list: &[(String, String)]| {
                        list.iter()
                            .find(|(plan, _)| *plan == p.name)
                            .map(|(_, v)| v.clone())
                    };
                    OrchMerge {
                        state: "merged".to_string(),
                        commit: part.new.to_string(),
                        previous: Some(part.old.to_string()),
                        archive_tag: of_plan(&part.archived),
                        resolved_by: of_plan(&part.resolved),
                        ..base
                    }
                }
                Landed::VerifyFailed(why) => OrchMerge {
                    state: "verify_failed".to_string(),
                    commit: tip_now(),
                    reason: Some(why.clone()),
                    log: Some(ctx.verify_log(group).to_string_lossy().into_owned()),
                    ..base
                },
                Landed::Conflict(u) => match u.conflict() {
                    Some(c) if c.plan == p.name && c.repo == *repo => OrchMerge {
                        state: "conflict".to_string(),
                        commit: tip_now(),
                        files: c.files.clone(),
                        reason: Some(u.to_string()),
                        resolved_by: c.unresolved.as_ref().map(|(agent, _)| agent.clone()),
                        ..base
                    },
                    _ => continue,
                },
                _ => continue,
            };
            let Some(lp) = ws.plans.iter().find(|lp| lp.name == p.name) else {
                continue;
            };
            let written = lp.update_status(|doc| {
                doc.orch_merge = Some(record);
                Ok(())
            });
            if let Err(e) = written {
                say(format!(
                    "warning: cannot record the landing of `{}` in `{}`: {e}",
                    lp.name,
                    lp.status_path.display()
                ));
            }
        }
    }
}
