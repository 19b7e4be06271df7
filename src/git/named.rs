//! The files a command line names: the words of an argv that are files of a tree (the check's,
//! `verify`'s, `setup`'s, a `[[notify]]` command's program, script and data), as repository
//! paths. What the protected-paths rules guard.

use std::path::Path;

/// The words of `argv` (options left out) that name a file (not a directory) of `tree`, relative
/// to `cwd` or absolute inside `cwd` or `repo_root`, as repository paths (`/`-separated).
pub fn files_named(
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
pub fn changed_between(
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
