//! orch's own paths in a repository (its state, worktrees and logs, and the files it copies into
//! each worktree, [`crate::manifest::Guarded::own`]) as git sees them: what a tree, a commit's work or a
//! landing changes there. No tree orch commits or lands touches them: a landed file there would
//! be written into another plan's worktree or status file, a file or a link at `.orch` would move
//! them elsewhere. Decided from the trees themselves, never from ignore rules (a tracked
//! `.gitignore` with `!.orch/` overrides `.git/info/exclude`).

use std::path::Path;

use crate::manifest::{ancestors, own_path};

/// The most paths one answer names.
const NAMED: usize = 5;

/// The directories above orch's own paths (`.orch` of `.orch/state`), where a file or a link
/// would move them, and the own ones themselves: what a status or a diff is limited to. An
/// entry with a wildcard (`config/*.local`) is looked for in its whole directory; one at the
/// root (`.env.*`) makes the scope the whole tree (`None`).
fn scope(own: &[String]) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for d in own {
        let d = if d.contains(['*', '?']) {
            d.rsplit_once('/')?.0
        } else {
            d.as_str()
        };
        for a in ancestors(d).chain(std::iter::once(d)) {
            if !out.iter().any(|o| o == a) {
                out.push(a.to_string());
            }
        }
    }
    Some(out)
}

/// The paths at or below orch's own directories, or at a directory above one, whose entry
/// differs between `from` (`None`: the empty tree) and `to`: added, removed, another object or
/// mode (a directory above one is named only where it is no directory on either side). At most
/// a few, sorted.
pub(crate) fn own_changes_between(
    repo: &git2::Repository,
    from: Option<&git2::Tree<'_>>,
    to: &git2::Tree<'_>,
    own: &[String],
) -> Result<Vec<String>, git2::Error> {
    if own.is_empty() {
        return Ok(Vec::new());
    }
    let entry = |t: Option<&git2::Tree<'_>>, p: &str| {
        t.and_then(|t| t.get_path(Path::new(p)).ok())
            .map(|e| (e.id(), e.filemode()))
    };
    // Cheap first: the entries of the scope alone (a directory's id covers all below it).
    let scope = scope(own);
    let same = match &scope {
        Some(scope) => scope.iter().all(|p| entry(from, p) == entry(Some(to), p)),
        None => from.is_some_and(|f| f.id() == to.id()),
    };
    if same {
        return Ok(Vec::new());
    }
    let mut opts = git2::DiffOptions::new();
    opts.disable_pathspec_match(false);
    for p in scope.iter().flatten() {
        opts.pathspec(p);
    }
    let diff = repo.diff_tree_to_tree(from, Some(to), Some(&mut opts))?;
    let mut out: Vec<String> = Vec::new();
    for delta in diff.deltas() {
        for file in [delta.old_file(), delta.new_file()] {
            if let Some(p) = file.path().map(|p| p.to_string_lossy().into_owned())
                && own_path(own, &p)
                && !out.contains(&p)
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out.truncate(NAMED);
    Ok(out)
}

/// What the work in the worktree `worktree` changes of orch's own paths: its uncommitted
/// changes there as `git status` lists them (whatever the ignore rules let it see: what they
/// hide is never staged either, [`super::commit`] leaves orch's paths out itself), and with
/// `since` what `branch` committed there since it met `since`. The files orch copied in
/// (`copied`, a part of `own`) count for what the branch committed only: a worktree may show
/// them changed, never staged. At most a few, sorted.
pub(crate) fn own_changes_in(
    dirt: &super::status::Dirt<'_>,
    (branch, since): (&str, Option<&str>),
    (own, copied): (&[String], &[String]),
) -> Result<Vec<String>, String> {
    if own.is_empty() {
        return Ok(Vec::new());
    }
    let worktree = dirt.dir();
    let dirs: Vec<String> = own
        .iter()
        .filter(|d| !copied.contains(d))
        .cloned()
        .collect();
    let listed = match scope(&dirs) {
        Some(scope) => dirt.among(&scope),
        None => dirt.paths(),
    };
    let mut out: Vec<String> = listed
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|p| p.trim_end_matches('/').to_string())
        .filter(|p| own_path(&dirs, p))
        .collect();
    if let Some(since) = since {
        let repo = super::open(worktree).map_err(|e| e.to_string())?;
        let commit = |rev: &str| repo.revparse_single(rev).and_then(|o| o.peel_to_commit());
        let (base, tip) = commit(&format!("refs/heads/{branch}"))
            .and_then(|tip| {
                let onto = commit(since)?;
                let base = match super::bases::merge_base(&repo, tip.id(), onto.id()) {
                    Ok(b) => Some(repo.find_commit(b)?.tree()?),
                    Err(e) if e.code() == git2::ErrorCode::NotFound => None,
                    Err(e) => return Err(e),
                };
                Ok((base, tip.tree()?))
            })
            .map_err(|e| format!("cannot read what `{branch}` committed since `{since}`: {e}"))?;
        for p in own_changes_between(&repo, base.as_ref(), &tip, own).map_err(|e| e.to_string())? {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    out.dedup();
    out.truncate(NAMED);
    Ok(out)
}

/// What branch `branch` changes of orch's own directories `own` since it left `target` (their
/// merge base; none when the branch does not exist): a plan whose branch does is never landed,
/// nor tried in the integration preview.
pub(crate) fn own_changes_since_fork(
    repo_root: &Path,
    target: &str,
    branch: &str,
    own: &[String],
) -> Result<Vec<String>, String> {
    if own.is_empty() {
        return Ok(Vec::new());
    }
    let repo = super::open(repo_root).map_err(|e| e.to_string())?;
    let commit = |rev: &str| repo.revparse_single(rev).and_then(|o| o.peel_to_commit());
    let Ok(tip) = commit(&format!("refs/heads/{branch}")) else {
        return Ok(Vec::new());
    };
    let onto = commit(&format!("refs/heads/{target}"))
        .map_err(|e| format!("cannot read `{target}`: {e}"))?;
    let base = match super::bases::merge_base(&repo, tip.id(), onto.id()) {
        Ok(b) => Some(
            repo.find_commit(b)
                .and_then(|c| c.tree())
                .map_err(|e| e.to_string())?,
        ),
        Err(e) if e.code() == git2::ErrorCode::NotFound => None,
        Err(e) => return Err(e.to_string()),
    };
    let tip = tip.tree().map_err(|e| e.to_string())?;
    own_changes_between(&repo, base.as_ref(), &tip, own).map_err(|e| e.to_string())
}
