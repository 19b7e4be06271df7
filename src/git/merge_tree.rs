//! Merges decided the way `git merge` decides them.
//!
//! libgit2's merge is not git's `ort`. Compared on real histories (the cases are tests in
//! `src/git/tests/merge_tree.rs`), they agree on content merges, whitespace-only changes,
//! renames and criss-cross histories, and differ in two ways:
//! - more than 1,000 inexact renames on one side (libgit2's rename limit; git's is 7,000):
//!   libgit2 reports a modify/delete conflict where git follows the renames and merges cleanly;
//! - a directory renamed on one side while the other adds a file to it: libgit2 merges cleanly
//!   and leaves the new file in the old directory; git reports a conflict (its default for a
//!   directory rename, `merge.directoryRenames = conflict`).
//!
//! So a merge orch writes asks `git merge-tree --write-tree` whatever libgit2 says ([`Check::Always`]),
//! and a read-only check (conflict reports, dry runs) asks it when libgit2 reports a conflict
//! ([`Check::OnConflict`]). Git works in a scratch repository whose object store borrows the
//! repository's (alternates): it never writes into the repository; the objects of a clean result
//! are copied into the caller's object database (in memory for read-only handles). Without a git
//! that has `merge-tree --write-tree` (2.38 or later), libgit2's result stands.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};

use git2::{Commit, Index, ObjectType, Oid, Repository};

/// What merging two commits gives.
pub(crate) enum TreeMerge {
    /// The merged index, without conflicts.
    Clean(Index),
    /// The paths in conflict (every side's name), sorted.
    Conflict(Vec<String>),
}

/// The paths in conflict in a merge's index (every side's name), sorted.
pub(super) fn index_conflicts(index: &git2::Index) -> Result<Vec<String>, git2::Error> {
    let mut paths = BTreeSet::new();
    for conflict in index.conflicts()? {
        let conflict = conflict?;
        for entry in [conflict.ancestor, conflict.our, conflict.their]
            .into_iter()
            .flatten()
        {
            paths.insert(String::from_utf8_lossy(&entry.path).into_owned());
        }
    }
    Ok(paths.into_iter().collect())
}

/// When to ask git.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// Whatever libgit2 says: the result will be written.
    Always,
    /// Only when libgit2 reports a conflict: a read-only question.
    OnConflict,
}

/// Merges `theirs` into `ours` in memory: libgit2's merge, confirmed or overruled by git's.
pub(crate) fn merge_commits(
    repo: &Repository,
    ours: &Commit,
    theirs: &Commit,
    check: Check,
) -> Result<TreeMerge, git2::Error> {
    let index = repo.merge_commits(ours, theirs, None)?;
    let libgit2_conflict = index.has_conflicts();
    if !libgit2_conflict && check == Check::OnConflict {
        return Ok(TreeMerge::Clean(index));
    }
    // No usable git (`None`, or an error preparing it): libgit2's result stands.
    let verdict = ask_git(repo, ours.id(), theirs.id()).unwrap_or_default();
    match verdict {
        Some(GitVerdict::Clean(tree)) if libgit2_conflict => {
            let tree = repo.find_tree(tree)?;
            let mut merged = Index::new()?;
            merged.read_tree(&tree)?;
            Ok(TreeMerge::Clean(merged))
        }
        Some(GitVerdict::Conflict(paths)) if !libgit2_conflict => Ok(TreeMerge::Conflict(paths)),
        _ if libgit2_conflict => Ok(TreeMerge::Conflict(index_conflicts(&index)?)),
        _ => Ok(TreeMerge::Clean(index)),
    }
}

/// What `git merge-tree --write-tree` said.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GitVerdict {
    Clean(Oid),
    Conflict(Vec<String>),
}

/// A directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `git merge-tree --write-tree` on two commits of `repo` in a scratch repository that
/// borrows `repo`'s objects; the objects of a clean result are copied into `repo`'s object
/// database. `Ok(None)`: git could not answer (not installed, too old, failed).
pub(crate) fn ask_git(
    repo: &Repository,
    ours: Oid,
    theirs: Oid,
) -> Result<Option<GitVerdict>, git2::Error> {
    let Some(run) = run_merge_tree(repo, ours, theirs)? else {
        return Ok(None);
    };
    match (run.code, run.tree) {
        (Some(0), Some(tree)) => {
            run.copy_objects(repo)?;
            Ok(Some(GitVerdict::Clean(tree)))
        }
        (Some(1), Some(_)) => Ok(Some(GitVerdict::Conflict(run.paths))),
        _ => Ok(None),
    }
}

/// A merge that conflicts, as git leaves it: the tree with git's conflict markers in each
/// conflicted file (written into `repo`'s object database) and the conflicted paths, sorted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct MarkedConflict {
    pub(crate) tree: Oid,
    pub(crate) paths: Vec<String>,
}

/// `git merge-tree --write-tree` of `theirs` into `ours`, kept when it conflicts: the tree git
/// wrote with its conflict markers (for a resolver to work on) and the paths. `Ok(None)`: the
/// merge is clean, or git could not answer.
pub(crate) fn marked_conflict(
    repo: &Repository,
    ours: Oid,
    theirs: Oid,
) -> Result<Option<MarkedConflict>, git2::Error> {
    let Some(run) = run_merge_tree(repo, ours, theirs)? else {
        return Ok(None);
    };
    match (run.code, run.tree) {
        (Some(1), Some(tree)) => {
            run.copy_objects(repo)?;
            Ok(Some(MarkedConflict {
                tree,
                paths: run.paths.clone(),
            }))
        }
        _ => Ok(None),
    }
}

/// What one run of `git merge-tree` in a scratch repository gave.
struct MergeTreeRun {
    scratch: Scratch,
    code: Option<i32>,
    tree: Option<Oid>,
    paths: Vec<String>,
}

impl MergeTreeRun {
    /// Copies the objects git wrote (the merged tree and its blobs) into `repo`.
    fn copy_objects(&self, repo: &Repository) -> Result<(), git2::Error> {
        let side = Repository::open_bare(&self.scratch.0)?;
        copy_loose(&self.scratch.0.join("objects"), &side.odb()?, &repo.odb()?)
    }
}

/// Runs `git merge-tree --write-tree` on two commits of `repo` in a scratch repository that
/// borrows `repo`'s objects. `Ok(None)`: git could not run.
fn run_merge_tree(
    repo: &Repository,
    ours: Oid,
    theirs: Oid,
) -> Result<Option<MergeTreeRun>, git2::Error> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "orch-merge-tree-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    // Made fresh at its predictable name: a link planted there is removed, never followed.
    crate::links::fresh_dir(&dir)
        .map_err(|e| git2::Error::from_str(&format!("cannot make `{}`: {e}", dir.display())))?;
    let scratch = Scratch(dir);
    let side = Repository::init_bare(&scratch.0)?;
    let objects = repo.commondir().join("objects");
    let objects = objects.canonicalize().unwrap_or(objects);
    let info = scratch.0.join("objects").join("info");
    std::fs::create_dir_all(&info)
        .and_then(|()| {
            std::fs::write(
                info.join("alternates"),
                format!("{}\n", objects.display()).as_bytes(),
            )
        })
        .map_err(|e| git2::Error::from_str(&format!("cannot prepare a scratch repository: {e}")))?;
    // Objects only in `repo`'s memory (a dry run's virtual commits) are written where git sees
    // them.
    let src = repo.odb()?;
    let dst = side.odb()?;
    copy_missing(&src, &dst, ours)?;
    copy_missing(&src, &dst, theirs)?;
    let output = super::cli::command(super::cli::GitTarget::GitDir(&scratch.0)).map(|mut cmd| {
        cmd.args([
            "merge-tree",
            "--write-tree",
            "--name-only",
            "--no-messages",
            "-z",
        ])
        .arg(ours.to_string())
        .arg(theirs.to_string())
        .stderr(Stdio::null())
        .output()
    });
    let Ok(Ok(output)) = output else {
        return Ok(None);
    };
    let mut fields = output.stdout.split(|b| *b == 0);
    let tree = fields
        .next()
        .and_then(|f| std::str::from_utf8(f).ok())
        .and_then(|s| Oid::from_str(s.trim()).ok());
    let paths: BTreeSet<String> = fields
        .filter(|f| !f.is_empty())
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    Ok(Some(MergeTreeRun {
        scratch,
        code: output.status.code(),
        tree,
        paths: paths.into_iter().collect(),
    }))
}

/// Copies `oid` and everything it reaches that `dst` lacks from `src` into `dst`.
fn copy_missing(src: &git2::Odb, dst: &git2::Odb, oid: Oid) -> Result<(), git2::Error> {
    let mut stack = vec![oid];
    let mut seen = BTreeSet::new();
    while let Some(oid) = stack.pop() {
        if !seen.insert(oid) || dst.exists(oid) {
            continue;
        }
        let obj = src.read(oid)?;
        let kind = obj.kind();
        let data = obj.data().to_vec();
        drop(obj);
        match kind {
            ObjectType::Commit => {
                let text = String::from_utf8_lossy(&data);
                for line in text.lines() {
                    if line.is_empty() {
                        break;
                    }
                    if let Some(hex) = line
                        .strip_prefix("tree ")
                        .or_else(|| line.strip_prefix("parent "))
                        && let Ok(o) = Oid::from_str(hex.trim())
                    {
                        stack.push(o);
                    }
                }
            }
            ObjectType::Tree => stack.extend(tree_entries(&data)),
            _ => {}
        }
        dst.write(kind, &data)?;
    }
    Ok(())
}

/// The object ids a raw tree names (`<mode> <name>\0<20 bytes>`...; SHA-1 repositories).
fn tree_entries(data: &[u8]) -> Vec<Oid> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(nul) = rest.iter().position(|b| *b == 0) {
        let Some(raw) = rest.get(nul + 1..nul + 21) else {
            break;
        };
        // Submodule entries (mode 160000) name commits of another repository.
        if !rest.starts_with(b"160000 ")
            && let Ok(o) = Oid::from_bytes(raw)
        {
            out.push(o);
        }
        rest = &rest[nul + 21..];
    }
    out
}

/// Copies the loose objects git wrote under `objects` into `dst` (read through `via`, the
/// scratch repository's database).
fn copy_loose(objects: &Path, via: &git2::Odb, dst: &git2::Odb) -> Result<(), git2::Error> {
    let Ok(dirs) = std::fs::read_dir(objects) else {
        return Ok(());
    };
    for dir in dirs.flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        if name.len() != 2 || !name.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for f in files.flatten() {
            let hex = format!("{name}{}", f.file_name().to_string_lossy());
            let Ok(oid) = Oid::from_str(&hex) else {
                continue;
            };
            if dst.exists(oid) {
                continue;
            }
            let obj = via.read(oid)?;
            dst.write(obj.kind(), obj.data())?;
        }
    }
    Ok(())
}

/// What a path is in a tree: absent, a directory, or something else (a file, a link, a
/// submodule).
#[derive(PartialEq, Eq)]
enum Kind {
    Absent,
    Tree,
    Other,
}

fn kind(tree: &git2::Tree, path: &Path) -> Kind {
    match tree.get_path(path) {
        Err(_) => Kind::Absent,
        Ok(e) if e.kind() == Some(ObjectType::Tree) => Kind::Tree,
        Ok(_) => Kind::Other,
    }
}

/// The changes from `base` to `theirs` applied onto `ours`, as a new tree written into `repo`,
/// when no path they change was changed by `ours` (nor any directory above it made something
/// else): then every merge (git's `ort`, libgit2's) gives exactly this tree, with no conflict.
/// `None` otherwise: the caller merges the three trees.
///
/// A landing's cherry-pick of one task's commit onto the plan's tip is nearly always this case,
/// and it only reads the directories on the changed paths (`git2::build::TreeUpdateBuilder`),
/// where a merge of the three trees reads all of them: 0.2-0.5 s per landing at 100,000 files
/// (benches/worktrees.rs), while the next landings wait.
pub(crate) fn pick_onto(
    repo: &Repository,
    base: &git2::Tree,
    theirs: &git2::Tree,
    ours: &git2::Tree,
) -> Result<Option<Oid>, git2::Error> {
    let diff = repo.diff_tree_to_tree(Some(base), Some(theirs), None)?;
    let mut update = git2::build::TreeUpdateBuilder::new();
    for delta in diff.deltas() {
        let (old, new) = (delta.old_file(), delta.new_file());
        let Some(path) = new.path().or_else(|| old.path()) else {
            return Ok(None);
        };
        let entry = |t: &git2::Tree| t.get_path(path).ok().map(|e| (e.id(), e.filemode()));
        if entry(ours) != entry(base) {
            return Ok(None);
        }
        let mut above = path.parent();
        while let Some(dir) = above.filter(|d| !d.as_os_str().is_empty()) {
            if kind(ours, dir) != kind(base, dir) {
                return Ok(None);
            }
            above = dir.parent();
        }
        match delta.status() {
            git2::Delta::Added | git2::Delta::Modified | git2::Delta::Typechange => {
                update.upsert(path, new.id(), new.mode());
            }
            git2::Delta::Deleted => {
                update.remove(path);
            }
            _ => return Ok(None),
        }
    }
    update.create_updated(repo, ours).map(Some)
}
