//! A directory and a file of the commit checked out in a repository (`HEAD`), as committed:
//! their object ids (what a build made of them is named by) and a copy of them written into a
//! directory of orch's. Only regular files are written (with their executable bit); a link in
//! the directory is refused (what it would lead to is not the repository's), a submodule is
//! left out; at most `max` bytes in all.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use git2::{ObjectType, Repository, Tree};

/// The ids of the directory `dir` and the file `file` (paths relative to the repository's root,
/// `dir` empty for the root) in `repo_root`'s `HEAD`.
pub(crate) fn head_ids(
    repo_root: &Path,
    dir: &Path,
    file: &Path,
) -> Result<(String, String), String> {
    let repo = super::open(repo_root).map_err(|e| e.to_string())?;
    let tree = head_tree(&repo)?;
    let d = subtree(&repo, &tree, dir)?;
    let f = tree.get_path(file).map_err(|_| {
        format!(
            "`{}` is not committed on the checked-out branch",
            file.display()
        )
    })?;
    if f.kind() != Some(ObjectType::Blob) || f.filemode() == 0o120_000 {
        return Err(format!("`{}` is not a file (as committed)", file.display()));
    }
    Ok((d.id().to_string(), f.id().to_string()))
}

/// Writes the file `file` of `repo_root`'s `HEAD` to `to`, and the directory `dir` into the
/// directory `into` (made, empty), at most `max` bytes in all.
pub(crate) fn head_export(
    repo_root: &Path,
    (dir, into): (&Path, &Path),
    (file, to): (&Path, &Path),
    max: u64,
) -> Result<(), String> {
    let repo = super::open(repo_root).map_err(|e| e.to_string())?;
    let tree = head_tree(&repo)?;
    let mut left = max;
    let f = tree.get_path(file).map_err(|_| {
        format!(
            "`{}` is not committed on the checked-out branch",
            file.display()
        )
    })?;
    write_blob(&repo, f.id(), to, false, &mut left, file)?;
    let d = subtree(&repo, &tree, dir)?;
    std::fs::create_dir(into).map_err(|e| format!("cannot make `{}`: {e}", into.display()))?;
    write_tree(&repo, &d, into, dir, &mut left)
}

fn head_tree(repo: &Repository) -> Result<Tree<'_>, String> {
    repo.head()
        .and_then(|h| h.peel_to_tree())
        .map_err(|e| format!("the checked-out branch has no commit: {e}"))
}

fn subtree<'r>(repo: &'r Repository, tree: &Tree<'r>, dir: &Path) -> Result<Tree<'r>, String> {
    if dir.as_os_str().is_empty() {
        return Ok(tree.clone());
    }
    let e = tree.get_path(dir).map_err(|_| {
        format!(
            "`{}` is not committed on the checked-out branch",
            dir.display()
        )
    })?;
    repo.find_tree(e.id())
        .map_err(|_| format!("`{}` is not a directory (as committed)", dir.display()))
}

fn write_tree(
    repo: &Repository,
    tree: &Tree<'_>,
    into: &Path,
    shown: &Path,
    left: &mut u64,
) -> Result<(), String> {
    for e in tree.iter() {
        let name = e
            .name()
            .ok()
            .filter(|n| !n.is_empty() && *n != "." && *n != ".." && !n.contains('/'))
            .ok_or_else(|| format!("a name that is no file name in `{}`", shown.display()))?;
        let (path, seen): (PathBuf, PathBuf) = (into.join(name), shown.join(name));
        match (e.kind(), e.filemode()) {
            (Some(ObjectType::Tree), _) => {
                std::fs::create_dir(&path)
                    .map_err(|err| format!("cannot make `{}`: {err}", path.display()))?;
                let sub = repo
                    .find_tree(e.id())
                    .map_err(|err| format!("cannot read `{}`: {err}", seen.display()))?;
                write_tree(repo, &sub, &path, &seen, left)?;
            }
            (Some(ObjectType::Blob), 0o120_000) => {
                return Err(format!(
                    "`{}` is a link, which a build's context may not hold",
                    seen.display()
                ));
            }
            (Some(ObjectType::Blob), mode) => {
                write_blob(repo, e.id(), &path, mode == 0o100_755, left, &seen)?;
            }
            // A submodule: not in the context.
            _ => {}
        }
    }
    Ok(())
}

fn write_blob(
    repo: &Repository,
    id: git2::Oid,
    to: &Path,
    exec: bool,
    left: &mut u64,
    shown: &Path,
) -> Result<(), String> {
    let odb = repo.odb().map_err(|e| e.to_string())?;
    let (size, _) = odb
        .read_header(id)
        .map_err(|e| format!("cannot read `{}`: {e}", shown.display()))?;
    let size = size as u64;
    if size > *left {
        return Err(format!(
            "the build's files are larger than {} MiB (at `{}`)",
            (*left + size) / (1024 * 1024),
            shown.display()
        ));
    }
    *left -= size;
    let blob = repo
        .find_blob(id)
        .map_err(|e| format!("cannot read `{}`: {e}", shown.display()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if exec { 0o755 } else { 0o644 })
        .open(to)
        .map_err(|e| format!("cannot write `{}`: {e}", to.display()))?;
    f.write_all(blob.content())
        .map_err(|e| format!("cannot write `{}`: {e}", to.display()))
}
