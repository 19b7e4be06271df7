//! `orch sync`: a plan kept current with the plans it depends on. The tip of each upstream
//! plan's branch (every commit there is a whole task) is merged into the plan's branch, in its
//! worktree, as a merge commit, as stacked-branch tools keep a child current with its parent.
//! All the merges are tried in memory first: a conflict changes nothing.

use std::path::Path;

use chrono::Utc;
use serde_json::{Value, json};

use super::PlanInfo;
use crate::git::{self, GitError, MergeOutcome, MergePreview};
use crate::status::StatusError;
use crate::workspace::Workspace;

/// A plan to bring up to date.
#[derive(Clone, Debug)]
pub(crate) struct SyncTarget<'a> {
    pub(crate) plan: &'a str,
    pub(crate) branch: &'a str,
    /// The plan's worktree, which has `branch` checked out.
    pub(crate) worktree: &'a Path,
    /// The upstream plans: `(name, branch)`, in `depends_on` order.
    pub(crate) upstreams: Vec<(String, String)>,
}

/// One upstream plan's tip, merged into the plan (or already in it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UpstreamMerge {
    pub(crate) upstream: String,
    pub(crate) branch: String,
    pub(crate) upstream_commit: String,
    /// The merge commit; `None` when the plan already contained the upstream tip.
    pub(crate) commit: Option<String>,
}

/// What [`sync_plan`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SyncResult {
    /// Every upstream tip is in the plan's branch now (upstreams without a branch are left out).
    Done(Vec<UpstreamMerge>),
    /// Merging this upstream's tip conflicts in `files`; nothing was changed.
    Conflict {
        upstream: String,
        branch: String,
        upstream_commit: String,
        files: Vec<String>,
    },
}

/// Merges the tip of each upstream branch into the plan's branch, in its worktree (which must be
/// clean). Tried in memory first: on a conflict nothing changes.
pub(crate) fn sync_plan(repo_root: &Path, t: &SyncTarget) -> Result<SyncResult, GitError> {
    let mut tips = Vec::new();
    for (name, branch) in &t.upstreams {
        if let Some(tip) = git::branch_tip(repo_root, branch)? {
            tips.push((name.clone(), branch.clone(), tip));
        }
    }
    let commits: Vec<String> = tips.iter().map(|(_, _, tip)| tip.clone()).collect();
    if let MergePreview::Conflict { index, paths } =
        git::preview_merges(repo_root, t.branch, &commits)?
    {
        let (upstream, branch, upstream_commit) = tips[index].clone();
        return Ok(SyncResult::Conflict {
            upstream,
            branch,
            upstream_commit,
            files: paths,
        });
    }
    let mut done = Vec::new();
    for (upstream, branch, tip) in tips {
        let short = super::short(&tip);
        let message = format!(
            "{}: merge `{upstream}` ({branch} at {short}) to keep up with it",
            t.plan
        );
        let commit = match git::merge_into(t.worktree, t.branch, &tip, &message)? {
            MergeOutcome::AlreadyContained => None,
            MergeOutcome::Merged { commit } => Some(commit),
            // Only if a branch moved since the trial: the merges before it stay.
            MergeOutcome::Conflict { paths } => {
                return Ok(SyncResult::Conflict {
                    upstream,
                    branch,
                    upstream_commit: tip,
                    files: paths,
                });
            }
        };
        done.push(UpstreamMerge {
            upstream,
            branch,
            upstream_commit: tip,
            commit,
        });
    }
    Ok(SyncResult::Done(done))
}

/// The status file's `orchUpstream` with `merges` recorded: per upstream plan, the upstream
/// commit the plan's branch contains (`commit`), the branch it was the tip of, the merge commit
/// that brought it (if one was made now) and when.
pub(crate) fn record_upstream(existing: Option<&Value>, merges: &[UpstreamMerge]) -> Value {
    let mut map = existing
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let at = crate::status::timestamp(Utc::now());
    for m in merges {
        let previous_merge = map
            .get(&m.upstream)
            .filter(|v| v.get("commit").and_then(Value::as_str) == Some(m.upstream_commit.as_str()))
            .and_then(|v| v.get("mergeCommit").cloned());
        let merge_commit = match &m.commit {
            Some(c) => json!(c),
            None => previous_merge.unwrap_or(Value::Null),
        };
        map.insert(
            m.upstream.clone(),
            json!({
                "branch": m.branch,
                "commit": m.upstream_commit,
                "mergeCommit": merge_commit,
                "at": at,
            }),
        );
    }
    Value::Object(map)
}

/// Why `orch sync` leaves plan `p` (whose worktree is at `worktree`) as it is, if it does: it
/// depends on no plan, has no branch yet, is merged into `target` already, or has no worktree.
pub(crate) fn skip_reason(
    p: &PlanInfo,
    infos: &[PlanInfo],
    worktree: &Path,
    target: &str,
) -> Option<String> {
    let same_repo = |u: &String| {
        infos
            .iter()
            .any(|i| i.name() == u && i.entry.repo == p.entry.repo)
    };
    if let Some(repo) = &p.entry.repo {
        Some(format!(
            "a plan of repository `{repo}`: `orch sync` merges upstream plans of the home repository only (`orch up` moves the checkouts of the plans it waits for at its task boundaries)"
        ))
    } else if p.upstreams.is_empty() {
        Some("depends on no other plan".into())
    } else if !p.upstreams.iter().any(same_repo) {
        Some("depends on plans of other repositories only: `orch up` moves their checkouts at its task boundaries".into())
    } else if p.tip.is_none() {
        Some(format!("not started: no branch `{}`", p.branch()))
    } else if let Some(how) = &p.landed {
        Some(format!("merged into `{target}` already ({how})"))
    } else if !worktree.is_dir() {
        Some(format!(
            "no worktree at `{}` (`orch up {}` makes it again)",
            worktree.display(),
            p.name()
        ))
    } else {
        None
    }
}

/// What [`sync_and_record`] did: [`sync_plan`]'s result, and why the merges could not be
/// recorded in the status file, if they could not (git holds them either way).
pub(crate) struct Synced {
    pub(crate) result: SyncResult,
    pub(crate) unrecorded: Option<StatusError>,
}

/// Merges the tips of plan `p`'s upstream plans (of `infos`) into its branch, in its worktree
/// (see [`sync_plan`]), and records them in its status file (`orchUpstream`).
pub(crate) fn sync_and_record(
    ws: &Workspace,
    repo_root: &Path,
    infos: &[PlanInfo],
    p: &PlanInfo,
    worktree: &Path,
) -> Result<Synced, GitError> {
    let upstreams = p
        .upstreams
        .iter()
        .filter_map(|u| infos.iter().find(|i| i.name() == u))
        // An upstream plan of another repository has no branch here: its work reaches the
        // plan through its read-only checkout, never by a merge.
        .filter(|u| u.entry.repo == p.entry.repo)
        .map(|u| (u.name().to_owned(), u.branch().to_owned()))
        .collect();
    let target = SyncTarget {
        plan: p.name(),
        branch: p.branch(),
        worktree,
        upstreams,
    };
    let result = sync_plan(repo_root, &target)?;
    let mut unrecorded = None;
    if let SyncResult::Done(merged) = &result {
        let lp = &ws.plans[p.index];
        let recorded = lp.update_status(|doc| {
            let value = record_upstream(doc.extra.get("orchUpstream"), merged);
            doc.extra.insert("orchUpstream".to_string(), value);
            Ok(())
        });
        unrecorded = recorded.err();
    }
    Ok(Synced { result, unrecorded })
}
