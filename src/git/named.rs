//! The files a command line names: the words of an argv that are files of a tree (the check's,
//! `verify`'s, `setup`'s, a `[[notify]]` command's program, script and data), as repository
//! paths. What the protected-paths rules guard.

use std::path::Path;

use super::repo::branch_commit;

/// The words of `argv` (options left out) that name a file (not a directory) of `tree`, relative
/// to `cwd` or absolute inside `cwd` or `repo_root`, as repository paths (`/`-separated).
pub(crate) fn files_named(
    argv: &[String],
    tree: &git2::Tree<'_>,
    cwd: &Path,
    repo_root: &Path,
) -> Vec<String> {
    argv.iter()
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| {
            let p = Path::new(a);
            let rel = if p.is_absolute() {
                p.strip_prefix(cwd)
                    .or_else(|_| p.strip_prefix(repo_root))
                    .ok()?
            } else {
                p
            };
            let rel = rel.strip_prefix("./").unwrap_or(rel);
            let entry = tree.get_path(rel).ok()?;
            (entry.kind() != Some(git2::ObjectType::Tree))
                .then(|| rel.to_string_lossy().into_owned())
        })
        .collect()
}

/// Of `paths` (repository paths), those whose entry differs between `from` and `to`: added,
/// removed, or another blob or mode.
pub(crate) fn changed_between(
    from: &git2::Tree<'_>,
    to: &git2::Tree<'_>,
    paths: &[String],
) -> Vec<String> {
    let entry = |t: &git2::Tree<'_>, p: &str| {
        t.get_path(Path::new(p))
            .ok()
            .map(|e| (e.id(), e.filemode()))
    };
    paths
        .iter()
        .filter(|p| entry(from, p) != entry(to, p))
        .cloned()
        .collect()
}

/// [`files_named`] in the tree of the commit `base` (hex; a plan's base: a file an earlier task
/// of the plan made is the plan's work, not the command's reference), or of `worktree`'s HEAD
/// when `base` cannot be read.
pub(crate) fn files_named_at(
    argv: &[String],
    worktree: &Path,
    base: &str,
    repo_root: &Path,
) -> Result<Vec<String>, String> {
    let repo = super::open(worktree).map_err(|e| e.to_string())?;
    let tree = git2::Oid::from_str(base)
        .and_then(|id| repo.find_commit(id))
        .and_then(|c| c.tree())
        .or_else(|_| repo.head().and_then(|h| h.peel_to_tree()))
        .map_err(|e| format!("cannot read the plan's base or HEAD: {e}"))?;
    Ok(files_named(argv, &tree, worktree, repo_root))
}

/// Of `files`, and of the files `commands` name in the tree where `branch` left `target` (their
/// merge base), those that differ between that tree and `branch`'s tip: none when `branch` does
/// not exist. For the protected configuration a plan branch changes.
pub(crate) fn changed_since_fork(
    repo_root: &Path,
    target: &str,
    branch: &str,
    mut files: Vec<String>,
    commands: &[Vec<String>],
) -> Result<Vec<String>, String> {
    let repo = super::open(repo_root).map_err(|e| e.to_string())?;
    let target_tip = branch_commit(&repo, target)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("target branch `{target}` does not exist"))?;
    let Some(tip) = branch_commit(&repo, branch).map_err(|e| e.to_string())? else {
        return Ok(Vec::new());
    };
    let trees = repo
        .merge_base(target_tip.id(), tip.id())
        .and_then(|base| repo.find_commit(base))
        .and_then(|base| Ok((base.tree()?, tip.tree()?)))
        .map_err(|e| format!("cannot read where `{branch}` left `{target}`: {e}"))?;
    for argv in commands {
        for f in files_named(argv, &trees.0, repo_root, repo_root) {
            if !files.contains(&f) {
                files.push(f);
            }
        }
    }
    Ok(changed_between(&trees.0, &trees.1, &files))
}
