//! The files a command line names: the words of an argv that are files of a tree (the check's,
//! `verify`'s, `setup`'s, a `[[notify]]` command's program, script and data), as repository
//! paths; and what a later run trusts ([`crate::manifest::Guarded`]) resolved in a tree, then
//! compared with what a plan branch holds. What the protected-paths rules guard.

use std::path::{Path, PathBuf};

use super::repo::branch_commit;
use crate::manifest::{Guarded, ancestors};

/// The path inside the repository that the word `word` of a command line names (relative to
/// `cwd`, or absolute inside `cwd` or `repo_root`), as git spells it (normalised lexically:
/// `hooks//x.sh` and `docs/../hooks/x.sh` are `hooks/x.sh`); `None` for an option or a path
/// that leaves the repository.
fn repo_path(word: &str, cwd: &Path, repo_root: &Path) -> Option<PathBuf> {
    crate::manifest::repo_path_of(word, &[cwd, repo_root]).map(PathBuf::from)
}

/// Whether `tree` has a file (not a directory) at `rel`.
fn file_in(tree: &git2::Tree<'_>, rel: &Path) -> bool {
    tree.get_path(rel)
        .is_ok_and(|e| e.kind() != Some(git2::ObjectType::Tree))
}

/// Of `paths` (repository paths), those whose entry differs between `from` and `to`: added,
/// removed, or another blob or mode.
pub(crate) fn changed_between(
    from: &git2::Tree<'_>,
    to: &git2::Tree<'_>,
    paths: &[String],
) -> Vec<String> {
    paths
        .iter()
        .filter(|p| entry(from, p) != entry(to, p))
        .cloned()
        .collect()
}

/// The object and mode at `p` in `t`, if any.
fn entry(t: &git2::Tree<'_>, p: &str) -> Option<(git2::Oid, i32)> {
    t.get_path(Path::new(p))
        .ok()
        .map(|e| (e.id(), e.filemode()))
}

/// git's mode of a symbolic link.
const LINK_MODE: i32 = 0o120_000;

/// What a later run trusts, resolved in a tree: the paths it protects whatever `protect` says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Protected {
    /// [`Guarded::files`], and the program and script of each command line that is a file of
    /// the tree where the work started or of the work itself (a script a task makes is one).
    pub(crate) trusted: Vec<String>,
    /// Of `trusted`, those protected only because orch does not know the grammar of the program
    /// a command line hands them to ([`Guarded::unknown_grammar_paths`]): perhaps data, which
    /// a plan's `allow_protected` lets its tasks change.
    pub(crate) unknown_grammar: Vec<String>,
}

impl Protected {
    /// `guarded` resolved with `base` (the tree where the work started) and `exists` (whether
    /// the work holds a file at a repository path), words relative to `cwd` or `repo_root`.
    fn resolve(
        guarded: &Guarded,
        base: &git2::Tree<'_>,
        exists: &dyn Fn(&Path) -> bool,
        (cwd, repo_root): (&Path, &Path),
    ) -> Self {
        let in_either = |w: &str| {
            repo_path(w, cwd, repo_root)
                .filter(|rel| file_in(base, rel) || exists(rel))
                .map(|rel| rel.to_string_lossy().into_owned())
        };
        Self {
            trusted: guarded.paths(&in_either),
            unknown_grammar: guarded.unknown_grammar_paths(&in_either),
        }
    }

    /// Whether `path` is one of `paths` or inside one of them (a protected directory).
    pub(crate) fn covers(paths: &[String], path: &str) -> bool {
        paths.iter().any(|p| {
            path == p
                || path
                    .strip_prefix(p.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
    }
}

/// [`Protected`] for the work in the worktree `worktree`, which started at the commit `base`
/// (hex; a plan's base: a file an earlier task of the plan made is the plan's work, not the
/// command's reference), or at `worktree`'s HEAD when `base` cannot be read.
pub(crate) fn protected_at(
    guarded: &Guarded,
    worktree: &Path,
    base: &str,
    repo_root: &Path,
) -> Result<Protected, String> {
    let repo = super::open(worktree).map_err(|e| e.to_string())?;
    let tree = git2::Oid::from_str(base)
        .and_then(|id| repo.find_commit(id))
        .and_then(|c| c.tree())
        .or_else(|_| repo.head().and_then(|h| h.peel_to_tree()))
        .map_err(|e| format!("cannot read the plan's base or HEAD: {e}"))?;
    let exists =
        |rel: &Path| std::fs::symlink_metadata(worktree.join(rel)).is_ok_and(|m| !m.is_dir());
    Ok(Protected::resolve(
        guarded,
        &tree,
        &exists,
        (worktree, repo_root),
    ))
}

/// [`Protected`] of a resolution: in the tree `tree` (the plan branch's side, which is what the
/// resolver starts from and changes).
pub(crate) fn protected_in(
    guarded: &Guarded,
    tree: &git2::Tree<'_>,
    repo_root: &Path,
) -> Protected {
    Protected::resolve(guarded, tree, &|_| false, (repo_root, repo_root))
}

/// The links the worktree `worktree` holds at a protected path or above one (a directory of
/// it: `.claude` where `.claude/settings.json` goes) that the tree where the work started,
/// the commit `base` (or HEAD), did not hold as they are: a link there makes the protected file
/// another one. Each as its repository path.
pub(crate) fn new_links_at(
    worktree: &Path,
    base: &str,
    paths: &[String],
) -> Result<Vec<String>, String> {
    let repo = super::open(worktree).map_err(|e| e.to_string())?;
    let tree = git2::Oid::from_str(base)
        .and_then(|id| repo.find_commit(id))
        .and_then(|c| c.tree())
        .or_else(|_| repo.head().and_then(|h| h.peel_to_tree()))
        .map_err(|e| format!("cannot read the plan's base or HEAD: {e}"))?;
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        // From the root down: below a link, the path is the link's.
        for a in ancestors(p).chain(std::iter::once(p.as_str())) {
            let Ok(meta) = std::fs::symlink_metadata(worktree.join(a)) else {
                break;
            };
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(worktree.join(a)).ok();
                let same = entry(&tree, a)
                    .filter(|(_, mode)| *mode == LINK_MODE)
                    .is_some_and(|(id, _)| {
                        let blob = repo.find_blob(id).ok();
                        let was = blob.as_ref().map(git2::Blob::content);
                        let now = target.as_ref().map(|t| t.as_os_str().as_encoded_bytes());
                        was.is_some() && was == now
                    });
                if !same && !out.iter().any(|o| o == a) {
                    out.push(a.to_string());
                }
                break;
            }
            if !meta.is_dir() {
                break;
            }
        }
    }
    Ok(out)
}

/// The files (not directories, not links: [`new_links_at`]) the worktree `worktree` holds at a
/// directory above a protected path (`orch` where `orch/templates/task.md` goes) where the tree
/// of the commit `base` (or HEAD) held none: such a file leaves the protected path unreadable to
/// every later run (`cannot read template …: Not a directory`). Each as its repository path.
pub(crate) fn new_files_above(
    worktree: &Path,
    base: &str,
    paths: &[String],
) -> Result<Vec<String>, String> {
    let repo = super::open(worktree).map_err(|e| e.to_string())?;
    let tree = git2::Oid::from_str(base)
        .and_then(|id| repo.find_commit(id))
        .and_then(|c| c.tree())
        .or_else(|_| repo.head().and_then(|h| h.peel_to_tree()))
        .map_err(|e| format!("cannot read the plan's base or HEAD: {e}"))?;
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        for a in ancestors(p) {
            let Ok(meta) = std::fs::symlink_metadata(worktree.join(a)) else {
                break;
            };
            if meta.is_dir() {
                continue;
            }
            if !meta.file_type().is_symlink()
                && !file_in(&tree, Path::new(a))
                && !out.iter().any(|o| o == a)
            {
                out.push(a.to_string());
            }
            break;
        }
    }
    Ok(out)
}

/// What plan branch `branch` changes of what a later run trusts since it left `target`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TrustedChanges {
    /// The protected paths whose entry differs between where the branch left `target` and its
    /// tip (added, removed, changed, another mode).
    pub(crate) changed: Vec<String>,
    /// The links the tip holds at a protected path or at a directory above one, where the fork
    /// did not hold that link: never landed, whatever is allowed.
    pub(crate) links: Vec<String>,
    /// What the branch changes at or below orch's own directories, or at a directory above one
    /// ([`Guarded::own`]): never landed, whatever a task names or a person allows.
    pub(crate) own: Vec<String>,
}

/// [`TrustedChanges`] of `branch` (none when it does not exist): `guarded` resolved where the
/// branch left `target` (their merge base) and at its tip (a script the branch adds for a
/// command line is one).
pub(crate) fn changed_since_fork(
    repo_root: &Path,
    target: &str,
    branch: &str,
    guarded: &Guarded,
) -> Result<TrustedChanges, String> {
    let repo = super::open(repo_root).map_err(|e| e.to_string())?;
    let target_tip = branch_commit(&repo, target)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("target branch `{target}` does not exist"))?;
    let Some(tip) = branch_commit(&repo, branch).map_err(|e| e.to_string())? else {
        return Ok(TrustedChanges::default());
    };
    let (base, tip) = repo
        .merge_base(target_tip.id(), tip.id())
        .and_then(|base| repo.find_commit(base))
        .and_then(|base| Ok((base.tree()?, tip.tree()?)))
        .map_err(|e| format!("cannot read where `{branch}` left `{target}`: {e}"))?;
    let exists = |rel: &Path| file_in(&tip, rel);
    let paths = Protected::resolve(guarded, &base, &exists, (repo_root, repo_root)).trusted;
    let mut links: Vec<String> = Vec::new();
    for p in &paths {
        for a in ancestors(p).chain(std::iter::once(p.as_str())) {
            let now = entry(&tip, a);
            // A link there, or a file at a directory above the path (`orch` where
            // `orch/templates/task.md` goes), that the fork did not hold.
            let file_above = a != p.as_str() && now.is_some_and(|(_, mode)| mode != 0o040_000);
            if (now.is_some_and(|(_, mode)| mode == LINK_MODE) || file_above)
                && now != entry(&base, a)
                && !links.iter().any(|l| l == a)
            {
                links.push(a.to_string());
            }
            if now.is_none_or(|(_, mode)| mode != 0o040_000) {
                break;
            }
        }
    }
    let own =
        super::own::own_changes_between(&repo, Some(&base), &tip, &guarded.own).map_err(|e| {
            format!("cannot read what `{branch}` changes of orch's own directories: {e}")
        })?;
    Ok(TrustedChanges {
        changed: changed_between(&base, &tip, &paths),
        links,
        own,
    })
}
