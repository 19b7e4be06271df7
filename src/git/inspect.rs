//! Read-only questions about branches: would two of them conflict, which files did a branch
//! change, is a branch merged into the target. Nothing here writes to the repository: git merges
//! in a scratch repository ([`super::merge_tree`]), and the objects written through a read-only
//! handle go to an in-memory object store that is dropped with the [`Repository`].

use std::collections::BTreeSet;
use std::path::Path;

use git2::{Commit, ErrorCode, Oid, Repository};

use super::GitError;
use super::merge_tree::{Keep, TreeMerge, merge_commits};
use super::repo::{contains, find_branch, open};

/// Opens the repository with an in-memory object store in front of the disk one: every object
/// written through this handle (a dry run's or a preview's commits and merged trees) stays in memory.
pub(crate) fn open_read_only(repo_root: &Path) -> Result<Repository, GitError> {
    let repo = open(repo_root)?;
    writes_in_memory(&repo, repo_root)?;
    Ok(repo)
}

/// Puts an in-memory object store in front of `repo`'s disk one, for as long as `repo` lives.
pub(crate) fn writes_in_memory(repo: &Repository, path: &Path) -> Result<(), GitError> {
    let open_error = |source| GitError::Open {
        path: path.to_path_buf(),
        source,
    };
    let odb = repo.odb().map_err(open_error)?;
    // Higher than the loose (1) and pack (2) backends: writes go here. The backend belongs to
    // the object database, which lives as long as `repo`.
    odb.add_new_mempack_backend(1000).map_err(open_error)?;
    Ok(())
}

/// The commit `rev` names: a local branch (`plan/auth`, `main`), a full ref
/// (`refs/orch/attempts/auth/1.2/1`) or anything `git rev-parse` takes.
pub(crate) fn resolve<'r>(repo: &'r Repository, rev: &str) -> Result<Commit<'r>, GitError> {
    let read_error = |source| GitError::ReadBranch {
        branch: rev.to_string(),
        source,
    };
    if let Some(branch) = find_branch(repo, rev)? {
        return branch.get().peel_to_commit().map_err(read_error);
    }
    match repo.revparse_single(rev) {
        Ok(object) => object.peel_to_commit().map_err(read_error),
        Err(e)
            if matches!(
                e.code(),
                ErrorCode::NotFound | ErrorCode::InvalidSpec | ErrorCode::Ambiguous
            ) =>
        {
            Err(GitError::RevNotFound {
                rev: rev.to_string(),
            })
        }
        Err(source) => Err(read_error(source)),
    }
}

/// The paths on which merging each of `pairs` (indices into `revs`: branch names, refs or commit
/// ids) would conflict, with one repository open, in the order given (empty = clean): git's
/// merge, in which `a` into `b` and `b` into `a` conflict alike. Nothing is written.
pub(crate) fn conflicts_of_pairs(
    repo_root: &Path,
    revs: &[String],
    pairs: &[(usize, usize)],
) -> Result<Vec<Vec<String>>, GitError> {
    let repo = open_read_only(repo_root)?;
    let commits = revs
        .iter()
        .map(|r| resolve(&repo, r))
        .collect::<Result<Vec<_>, _>>()?;
    let merge_error = |i: usize, j: usize| GitError::merging(&revs[i], &revs[j]);
    // A pair where one side contains the other merges cleanly; git is asked of the rest at once.
    let mut asked = Vec::new();
    for &(i, j) in pairs {
        let (a, b) = (commits[i].id(), commits[j].id());
        let error = merge_error(i, j);
        if !(contains(&repo, a, b).map_err(error)? || contains(&repo, b, a).map_err(error)?) {
            asked.push((i, j));
        }
    }
    let ids: Vec<(Oid, Oid)> = asked
        .iter()
        .map(|&(i, j)| (commits[i].id(), commits[j].id()))
        .collect();
    let first = asked.first().copied().unwrap_or_default();
    let mut merges = super::merge_many(&repo, &ids)
        .map_err(merge_error(first.0, first.1))?
        .into_iter();
    let mut asked = asked.into_iter().peekable();
    Ok(pairs
        .iter()
        .map(
            |pair| match asked.next_if_eq(pair).and_then(|_| merges.next()) {
                Some(TreeMerge::Conflict(paths)) => paths,
                _ => Vec::new(),
            },
        )
        .collect())
}

/// The files `branch` changed since its merge base with `target` (added, modified, deleted,
/// renamed: both names), sorted. Empty when the branch has nothing of its own.
pub(crate) fn changed_files(
    repo_root: &Path,
    branch: &str,
    target: &str,
) -> Result<Vec<String>, GitError> {
    let repo = open(repo_root)?;
    let tip = resolve(&repo, branch)?;
    let onto = resolve(&repo, target)?;
    let diff_error = |source| GitError::Diff {
        path: repo_root.to_path_buf(),
        target: format!("{target}...{branch}"),
        source,
    };
    let base = match super::bases::merge_base(&repo, tip.id(), onto.id()) {
        Ok(base) => Some(repo.find_commit(base).map_err(diff_error)?),
        Err(e) if e.code() == ErrorCode::NotFound => None,
        Err(e) => return Err(diff_error(e)),
    };
    let base_tree = base
        .as_ref()
        .map(Commit::tree)
        .transpose()
        .map_err(diff_error)?;
    let tip_tree = tip.tree().map_err(diff_error)?;
    diff_paths(&repo, base_tree.as_ref(), &tip_tree).map_err(diff_error)
}

/// The paths that differ between two trees (added, modified, deleted, renamed: both names),
/// sorted; `old` `None` is the empty tree.
pub(crate) fn diff_paths(
    repo: &Repository,
    old: Option<&git2::Tree>,
    new: &git2::Tree,
) -> Result<Vec<String>, git2::Error> {
    let diff = repo.diff_tree_to_tree(old, Some(new), None)?;
    let mut files = BTreeSet::new();
    for delta in diff.deltas() {
        for file in [delta.old_file(), delta.new_file()] {
            if let Some(p) = file.path() {
                files.insert(p.to_string_lossy().into_owned());
            }
        }
    }
    Ok(files.into_iter().collect())
}

/// Whether a branch's work is in the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MergeState {
    /// The branch tip is the target's tip or one of its ancestors (a merge or a fast-forward).
    Contained,
    /// The tip is not in the target's history, but merging it into the target would change
    /// nothing: its changes are there already (a squash merge, a cherry-pick, a rebase).
    Squashed,
    /// The branch has `commits` commits the target does not have, and their changes are not all
    /// in the target.
    Unmerged { commits: usize },
}

/// Whether `branch` is merged into `target` (see [`MergeState`]), on an open repository (from
/// [`open_read_only`]). Nothing is written.
pub(crate) fn merge_state_of(
    repo: &Repository,
    tip: &Commit,
    onto: &Commit,
    branch: &str,
    target: &str,
) -> Result<MergeState, GitError> {
    let merge_error = GitError::merging(target, branch);
    if contains(repo, onto.id(), tip.id()).map_err(merge_error)? {
        return Ok(MergeState::Contained);
    }
    let merged = merge_commits(repo, onto.id(), tip.id(), Keep::Nothing).map_err(merge_error)?;
    if merged == TreeMerge::Clean(onto.tree_id()) {
        return Ok(MergeState::Squashed);
    }
    Ok(MergeState::Unmerged {
        commits: count_unmerged(repo, tip.id(), onto.id()).map_err(merge_error)?,
    })
}

/// Commits reachable from `tip` and not from `onto` (`git rev-list --count onto..tip`).
fn count_unmerged(repo: &Repository, tip: Oid, onto: Oid) -> Result<usize, git2::Error> {
    let mut walk = repo.revwalk()?;
    walk.push(tip)?;
    walk.hide(onto)?;
    let mut n = 0;
    for oid in walk {
        oid?;
        n += 1;
    }
    Ok(n)
}

/// Whether two repository paths name overlapping things: the same file, a directory and a file
/// in it (`src/api/` and `src/api/routes.rs`), or a bare file name and a path ending in it
/// (`routes.rs` and `src/api/routes.rs`): plans often name files loosely.
pub(crate) fn paths_overlap(a: &str, b: &str) -> bool {
    let a = normal(a);
    let b = normal(b);
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long == short
        || long
            .strip_prefix(short)
            .is_some_and(|rest| rest.starts_with('/'))
        || long
            .strip_suffix(short)
            .is_some_and(|rest| rest.ends_with('/'))
}

fn normal(p: &str) -> &str {
    let p = p.trim();
    let p = p.strip_prefix("./").unwrap_or(p);
    p.trim_end_matches('/')
}

/// The paths of `a` that overlap one of `b` (see [`paths_overlap`]); of two overlapping paths
/// the longer (more precise) one is reported. Sorted, without duplicates.
pub(crate) fn overlapping_paths(a: &[String], b: &[String]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for x in a {
        for y in b {
            if paths_overlap(x, y) {
                let x = normal(x);
                let y = normal(y);
                out.insert(if y.len() > x.len() { y } else { x }.to_string());
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use git2::{Signature, Time};

    /// The paths on which merging `b` into `a` (or `a` into `b`: the set is the same) would conflict,
    /// sorted; empty when the merge is clean. Nothing is written, no ref or work tree moves.
    ///
    /// `a` and `b` are branch names, refs or commit ids (see [`resolve`]).
    fn conflicts_between(repo_root: &Path, a: &str, b: &str) -> Result<Vec<String>, GitError> {
        let revs = [a.to_string(), b.to_string()];
        Ok(conflicts_of_pairs(repo_root, &revs, &[(0, 1)])?.remove(0))
    }

    /// Whether `branch` is merged into `target` (see [`MergeState`]). Nothing is written.
    fn merge_state(repo_root: &Path, branch: &str, target: &str) -> Result<MergeState, GitError> {
        let repo = open_read_only(repo_root)?;
        let tip = resolve(&repo, branch)?;
        let onto = resolve(&repo, target)?;
        merge_state_of(&repo, &tip, &onto, branch, target)
    }

    /// A commit on `branch` (created or moved) with exactly `files` as its tree, and `parents`.
    fn commit(
        repo: &Repository,
        branch: &str,
        files: &[(&str, &str)],
        parents: &[Oid],
        msg: &str,
    ) -> Oid {
        let mut builder = repo.treebuilder(None).unwrap();
        for (name, text) in files {
            let blob = repo.blob(text.as_bytes()).unwrap();
            builder.insert(name, blob, 0o100_644).unwrap();
        }
        let tree = repo.find_tree(builder.write().unwrap()).unwrap();
        let sig = Signature::new("Test", "t@example.com", &Time::new(1_700_000_000, 0)).unwrap();
        let parents: Vec<Commit> = parents
            .iter()
            .map(|p| repo.find_commit(*p).unwrap())
            .collect();
        let refs: Vec<&Commit> = parents.iter().collect();
        let oid = repo.commit(None, &sig, &sig, msg, &tree, &refs).unwrap();
        repo.reference(&format!("refs/heads/{branch}"), oid, true, "test")
            .unwrap();
        oid
    }

    fn object_files(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| {
                if e.path().is_dir() {
                    object_files(&e.path())
                } else {
                    1
                }
            })
            .sum()
    }

    #[test]
    fn criss_cross_merges_are_checked_without_writing_objects() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path()).unwrap();
        let m = ("m", "1\n2\n3\n4\n5\n6\n");
        let base = commit(&repo, "main", &[("f", "0\n"), m], &[], "base");
        let x1 = commit(&repo, "x", &[("f", "x\n"), m], &[base], "x1");
        let y1 = commit(&repo, "y", &[("f", "0\n"), ("g", "y\n"), m], &[base], "y1");
        // Two merges of x1 and y1, each with a change of its own: two merge bases later.
        // `m` is edited on both sides, in different lines: it merges cleanly, and libgit2
        // writes the merged file as a new object (to the in-memory store).
        let x2 = commit(
            &repo,
            "x",
            &[
                ("f", "x\n"),
                ("g", "y\n"),
                ("h", "x2\n"),
                ("m", "1x\n2\n3\n4\n5\n6\n"),
            ],
            &[x1, y1],
            "x2",
        );
        let y2 = commit(
            &repo,
            "y",
            &[
                ("f", "x\n"),
                ("g", "y\n"),
                ("h", "y2\n"),
                ("m", "1\n2\n3\n4\n5\n6y\n"),
            ],
            &[y1, x1],
            "y2",
        );
        assert_eq!(repo.merge_bases(x2, y2).unwrap().len(), 2);
        let objects = tmp.path().join(".git").join("objects");
        let before = object_files(&objects);

        let paths = conflicts_between(tmp.path(), "x", "y").unwrap();
        assert_eq!(paths, ["h"]);
        assert_eq!(
            conflicts_between(tmp.path(), "x", "main").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            merge_state(tmp.path(), "x", "main").unwrap(),
            MergeState::Unmerged { commits: 3 }
        );
        assert_eq!(object_files(&objects), before, "objects were written");
        assert!(matches!(
            conflicts_between(tmp.path(), "x", "nope"),
            Err(GitError::RevNotFound { .. })
        ));
    }

    #[test]
    fn merge_state_tells_contained_squashed_and_unmerged_apart() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path()).unwrap();
        let base = commit(&repo, "main", &[("a", "0\n")], &[], "base");
        let p1 = commit(&repo, "p", &[("a", "0\n"), ("b", "1\n")], &[base], "p1");
        let p2 = commit(&repo, "p", &[("a", "0\n"), ("b", "2\n")], &[p1], "p2");
        assert_eq!(
            merge_state(tmp.path(), "p", "main").unwrap(),
            MergeState::Unmerged { commits: 2 }
        );
        // A squash of p on main, then main moves on elsewhere.
        let squash = commit(
            &repo,
            "main",
            &[("a", "0\n"), ("b", "2\n")],
            &[base],
            "squash",
        );
        commit(
            &repo,
            "main",
            &[("a", "1\n"), ("b", "2\n")],
            &[squash],
            "later",
        );
        assert_eq!(
            merge_state(tmp.path(), "p", "main").unwrap(),
            MergeState::Squashed
        );
        // A real merge.
        commit(
            &repo,
            "main",
            &[("a", "1\n"), ("b", "2\n")],
            &[squash, p2],
            "merge",
        );
        assert_eq!(
            merge_state(tmp.path(), "p", "main").unwrap(),
            MergeState::Contained
        );
        assert_eq!(
            changed_files(tmp.path(), "p", "main").unwrap(),
            Vec::<String>::new()
        );
        commit(&repo, "q", &[("a", "0\n"), ("c", "3\n")], &[base], "q1");
        // q's merge base with main is `base`: q added c.
        assert_eq!(changed_files(tmp.path(), "q", "main").unwrap(), ["c"]);
    }

    #[test]
    fn overlap_rules() {
        let cases = [
            ("src/a.rs", "src/a.rs", true),
            ("./src/a.rs", "src/a.rs", true),
            ("src/api/", "src/api/routes.rs", true),
            ("src/api", "src/api/routes.rs", true),
            ("routes.rs", "src/api/routes.rs", true),
            ("api/routes.rs", "src/api/routes.rs", true),
            ("src/a.rs", "src/ab.rs", false),
            ("src/api", "src/apis/x.rs", false),
            ("outes.rs", "src/api/routes.rs", false),
            ("", "src/a.rs", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(paths_overlap(a, b), want, "{a} / {b}");
            assert_eq!(paths_overlap(b, a), want, "{b} / {a}");
        }
    }

    #[test]
    fn overlapping_paths_reports_the_precise_name_once() {
        let a = vec!["routes.rs".to_string(), "src/db.rs".to_string()];
        let b = vec![
            "src/api/routes.rs".to_string(),
            "src/db.rs".to_string(),
            "README.md".to_string(),
        ];
        assert_eq!(
            overlapping_paths(&a, &b),
            ["src/api/routes.rs", "src/db.rs"]
        );
    }
}
