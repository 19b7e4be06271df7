//! A plan that waits for a plan of another repository sees its work as a read-only checkout of
//! that plan's branch tip beside its own worktree (`<worktree_root>/.upstream-<plan>/<repo>`),
//! named in its prompt and by `ORCH_REPO_<NAME>`. Made before the plan's first agent, followed
//! at each task boundary where the plan's worktree has no agent (as in-repository upstreams are
//! re-synced). The branch is an agent's: its files are untrusted input, never read by orch; the
//! checkout is outside every rule that lets an agent write.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::manifest::{Manifest, PlanEntry};

/// One repository a plan sees the work of.
#[derive(Clone, Debug)]
pub(crate) struct UpstreamRepo {
    /// The upstream plan (the first of that repository the plan's `depends_on` names).
    pub(crate) plan: String,
    /// Its repository's name (`[[repo]]`, or `home`).
    pub(crate) repo: String,
    /// That repository's work dir.
    pub(crate) root: PathBuf,
    /// The upstream plan's branch there.
    pub(crate) branch: String,
    /// The checkout.
    pub(crate) path: PathBuf,
}

/// The commit each checkout of a plan holds, by repository name (what this run checked out).
pub(crate) type Followed = Arc<Mutex<HashMap<String, String>>>;

/// The repositories other than its own whose plans `entry` waits for, with where each checkout
/// goes (`worktree`: the plan's worktree), in `depends_on` order, one per repository.
pub(crate) fn of_plan(
    m: &Manifest,
    entry: &PlanEntry,
    home: &Path,
    worktree: &Path,
) -> Vec<UpstreamRepo> {
    let own = crate::manifest::repo_name(entry);
    let dir = worktree
        .parent()
        .unwrap_or(worktree)
        .join(format!(".upstream-{}", entry.name));
    let mut out: Vec<UpstreamRepo> = Vec::new();
    for d in &entry.depends_on {
        let Some(up) = m.plan(&d.plan) else { continue };
        let repo = crate::manifest::repo_name(up);
        if repo == own || out.iter().any(|u| u.repo == repo) {
            continue;
        }
        out.push(UpstreamRepo {
            plan: up.name.clone(),
            repo: repo.to_string(),
            root: crate::workspace::repos::root_of(m, up, home),
            branch: up.branch.clone(),
            path: dir.join(repo),
        });
    }
    out
}

/// Whether `entry`'s dependency on plan `upstream` crosses repositories (it is seen through a
/// checkout, never merged into the plan's branch).
pub(crate) fn crosses(m: Option<&Manifest>, entry: &PlanEntry, upstream: &str) -> bool {
    m.and_then(|m| m.plan(upstream))
        .is_some_and(|up| crate::manifest::repo_name(up) != crate::manifest::repo_name(entry))
}

/// Brings each checkout of a plan to its upstream branch's tip; the notes to report (one per
/// checkout made or moved). A branch not there yet gets no checkout.
pub(crate) fn follow(
    upstreams: &[UpstreamRepo],
    followed: &Followed,
) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    for u in upstreams {
        let tip = crate::git::branch_tip(&u.root, &u.branch)
            .map_err(|e| format!("cannot read `{}` of repository `{}`: {e}", u.branch, u.repo))?;
        let Some(tip) = tip else { continue };
        let seen = followed
            .lock()
            .map_err(|_| "the upstream checkouts' lock is poisoned".to_string())?
            .get(&u.repo)
            .cloned();
        if seen.as_deref() == Some(tip.as_str()) && u.path.is_dir() {
            continue;
        }
        crate::git::export_commit(&u.root, &tip, &u.path, true).map_err(|e| {
            format!(
                "cannot check out `{}` of repository `{}` at `{}`: {e}",
                u.branch,
                u.repo,
                u.path.display()
            )
        })?;
        if let Ok(mut f) = followed.lock() {
            f.insert(u.repo.clone(), tip.clone());
        }
        notes.push(format!(
            "repository `{}`: plan `{}`'s work ({} at {}) checked out read-only at `{}` ({})",
            u.repo,
            u.plan,
            u.branch,
            crate::merge::short(&tip),
            u.path.display(),
            crate::manifest::repo_env_var(&u.repo)
        ));
    }
    Ok(notes)
}

/// The agent's variables: `ORCH_REPO_<NAME>` for each checkout there is.
pub(crate) fn env(upstreams: &[UpstreamRepo]) -> Vec<(String, String)> {
    upstreams
        .iter()
        .filter(|u| u.path.is_dir())
        .map(|u| {
            (
                crate::manifest::repo_env_var(&u.repo),
                u.path.display().to_string(),
            )
        })
        .collect()
}

/// The prompt's section naming each checkout; `None` when there is none.
pub(crate) fn prompt_section(upstreams: &[UpstreamRepo]) -> Option<String> {
    let present: Vec<&UpstreamRepo> = upstreams.iter().filter(|u| u.path.is_dir()).collect();
    if present.is_empty() {
        return None;
    }
    let mut text = String::from(
        "\n\n## Other repositories\n\nThis plan builds on work in other repositories. Each is checked out read-only beside your worktree (read it, do not change it; your changes belong in your worktree only):\n",
    );
    for u in present {
        text.push_str(&format!(
            "\n- repository `{}` (plan `{}`, branch `{}`): `{}`, also in `${}`",
            u.repo,
            u.plan,
            u.branch,
            u.path.display(),
            crate::manifest::repo_env_var(&u.repo)
        ));
    }
    text.push('\n');
    Some(text)
}
