//! What a worktree's submodule checkouts hold that its commit does not: before a commit, a
//! reset, a removal ([`submodule_changes`], [`submodule_dirt`], [`pin_submodules`]).

use std::path::Path;

use git2::Oid;

use super::{
    Declared, admin_head, admin_name, declared, dirty, gitlink, head_tree_id, is_ours,
    open_git_dir, pin,
};

/// What the submodule checkouts of a worktree hold that its HEAD does not, before a commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SubmoduleChanges {
    /// Checkouts whose HEAD moved (an agent committed inside): the new gitlinks the commit
    /// records, one line each, `submodule <path>: <old> -> <new>` (short ids).
    pub(crate) moved: Vec<String>,
    /// The paths of those checkouts.
    pub(crate) moved_paths: Vec<String>,
    /// Uncommitted changes inside them (paths from the worktree's root): committing the
    /// superproject would lose them. A nested checkout whose HEAD moved is one too (its new
    /// commit must be committed in the submodule around it).
    pub(crate) dirty: Vec<String>,
}

/// [`SubmoduleChanges`] of the worktree `worktree`, from orch's own checkouts (their admin dirs
/// found from orch's records; each checkout's `.git` put back first, so that the commit's `git
/// add -A` reads the submodule's HEAD there). Nothing when the repository has no submodules.
pub(crate) fn submodule_changes(worktree: &Path) -> Result<SubmoduleChanges, String> {
    walk(worktree, Mode::Commit)
}

/// The paths of [`submodule_changes`] (uncommitted changes, and the checkouts whose commit
/// moved), read only: for a caller that decides whether a worktree holds work (before removing
/// or resetting it), where libgit2's status leaves submodules out.
pub(crate) fn submodule_dirt(worktree: &Path) -> Vec<String> {
    walk(worktree, Mode::Read).map_or_else(
        |e| vec![format!("(submodules: {e})")],
        |c| c.moved_paths.into_iter().chain(c.dirty).collect(),
    )
}

/// Puts back the `.git` file (and admin files) of each of orch's submodule checkouts in
/// `worktree`, nothing else read: before libgit2 stages the worktree (a save before a reset),
/// which would open a submodule through that file.
pub(crate) fn pin_submodules(worktree: &Path) -> Result<(), String> {
    walk(worktree, Mode::Pin).map(drop)
}

/// What a walk of the checkouts does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Reads what changed, and puts back each checkout's files for the commit that follows.
    Commit,
    /// Reads what changed, nothing written (orch's own reads never go through a `.git` file).
    Read,
    /// Only puts back each checkout's files.
    Pin,
}

fn walk(worktree: &Path, mode: Mode) -> Result<SubmoduleChanges, String> {
    let mut changes = SubmoduleChanges::default();
    let Some(top) = super::top(worktree) else {
        return Ok(changes);
    };
    let trusted = declared(&top.main, &top.common);
    if trusted.is_empty() {
        return Ok(changes);
    }
    let tree = head_tree_id(worktree)
        .and_then(|t| top.main.find_tree(t).ok())
        .ok_or_else(|| format!("cannot read the HEAD commit of `{}`", worktree.display()))?;
    let walk = Walk {
        wt_name: &top.name,
        top: true,
        mode,
    };
    walk.level(
        (&top.common, &trusted),
        &tree,
        &top.work_tree,
        "",
        &mut changes,
    )?;
    Ok(changes)
}

#[derive(Clone, Copy)]
struct Walk<'a> {
    wt_name: &'a str,
    /// The worktree's own submodules (not nested ones).
    top: bool,
    mode: Mode,
}

impl Walk<'_> {
    fn level(
        &self,
        (git_dir, trusted): (&Path, &[Declared]),
        tree: &git2::Tree<'_>,
        work: &Path,
        prefix: &str,
        out: &mut SubmoduleChanges,
    ) -> Result<(), String> {
        for d in trusted {
            let rel = format!("{prefix}{}", d.path);
            let Some(recorded) = gitlink(tree, &d.path) else {
                continue;
            };
            let modules = git_dir.join("modules").join(&d.name);
            let sub = work.join(&d.path);
            let admin = modules
                .join("worktrees")
                .join(admin_name(self.wt_name, &rel));
            if crate::links::symlinked_parent(work, &Path::new(&d.path).join("x")).is_some()
                || !is_ours(&admin, &sub)
            {
                continue;
            }
            let Some(repo) = open_git_dir(&modules) else {
                continue;
            };
            if self.mode != Mode::Read {
                pin(&admin, &sub)?;
            }
            if self.mode == Mode::Pin {
                let nested = declared(&repo, &modules);
                let tree = admin_head(&repo, &admin)
                    .and_then(|h| repo.find_commit(h).ok())
                    .and_then(|c| c.tree().ok());
                if let (false, Some(tree)) = (nested.is_empty(), tree) {
                    let inner = Walk {
                        top: false,
                        ..*self
                    };
                    inner.level((&modules, &nested), &tree, &sub, &format!("{rel}/"), out)?;
                }
                continue;
            }
            let head = admin_head(&repo, &admin).ok_or_else(|| {
                format!(
                    "cannot read the commit of submodule `{rel}` (`{}`)",
                    admin.join("HEAD").display()
                )
            })?;
            if head != recorded {
                let short = |o: Oid| o.to_string()[..7].to_string();
                if self.top {
                    out.moved_paths.push(rel.clone());
                    out.moved.push(format!(
                        "submodule {rel}: {} -> {}",
                        short(recorded),
                        short(head)
                    ));
                } else {
                    out.dirty.push(format!(
                        "{rel} (moved to {}, not committed in the submodule around it)",
                        short(head)
                    ));
                }
            }
            out.dirty.extend(
                dirty(&admin, &sub)
                    .map_err(|e| format!("cannot read the status of submodule `{rel}`: {e}"))?
                    .into_iter()
                    .map(|f| format!("{rel}/{f}")),
            );
            let nested = declared(&repo, &modules);
            if nested.is_empty() {
                continue;
            }
            let Ok(tree) = repo.find_commit(head).and_then(|c| c.tree()) else {
                continue;
            };
            let inner = Walk {
                top: false,
                ..*self
            };
            inner.level((&modules, &nested), &tree, &sub, &format!("{rel}/"), out)?;
        }
        Ok(())
    }
}
