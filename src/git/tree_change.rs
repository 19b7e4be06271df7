//! What changed between two trees, walked entry by entry and stopped as soon as the caller has
//! seen enough: unlike libgit2's tree-to-tree diff, which lists every change before it answers,
//! a commit an agent made with git's plumbing (a million paths sharing one tree, made in a
//! second) costs only what the caller reads of it before it refuses. A subtree the same on both
//! sides is skipped whole; the walk keeps its own stack (a chain of a million nested trees
//! cannot overflow orch's), and a path longer than [`PATH_MAX`] bytes is a change of its own that
//! no checkout could make.

use std::collections::HashMap;
use std::ops::ControlFlow;

use git2::{Oid, Repository};

/// The longest path (bytes) the walk goes down: Linux's own limit, past which no checkout can
/// write the file.
pub(crate) const PATH_MAX: usize = 4096;

/// The mode of a tree entry that is a directory.
const TREE_MODE: i32 = 0o040_000;

/// One change the walk found.
pub(crate) enum Step<'a> {
    /// A directory whose tree differs (or is new): its path (`""`: the root) and its tree.
    Tree(&'a [u8], Oid),
    /// A file (a blob, a link, or a gitlink) added or changed: its path, object and mode.
    File(&'a [u8], Oid, i32),
    /// A file removed.
    Gone,
    /// A path longer than [`PATH_MAX`], not walked further.
    TooDeep(&'a [u8]),
}

/// Walks what changed from the tree `old` (`None`: nothing) to the tree `new` (`None`:
/// everything removed), calling `f` at each change, in no particular order, until `f` breaks.
pub(crate) fn walk(
    repo: &Repository,
    (old, new): (Option<Oid>, Option<Oid>),
    f: &mut dyn FnMut(Step<'_>) -> Result<ControlFlow<()>, git2::Error>,
) -> Result<ControlFlow<()>, git2::Error> {
    if old == new {
        return Ok(ControlFlow::Continue(()));
    }
    let mut stack: Vec<(Vec<u8>, Option<Oid>, Option<Oid>)> = vec![(Vec::new(), old, new)];
    while let Some((path, old, new)) = stack.pop() {
        if path.len() > PATH_MAX {
            if f(Step::TooDeep(&path))?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
            continue;
        }
        if let Some(n) = new
            && f(Step::Tree(&path, n))?.is_break()
        {
            return Ok(ControlFlow::Break(()));
        }
        let entries = |id: Option<Oid>| -> Result<Vec<(Vec<u8>, Oid, i32)>, git2::Error> {
            match id {
                None => Ok(Vec::new()),
                Some(id) => Ok(repo
                    .find_tree(id)?
                    .iter()
                    .map(|e| (e.name_bytes().to_vec(), e.id(), e.filemode()))
                    .collect()),
            }
        };
        let mut before: HashMap<Vec<u8>, (Oid, i32)> = entries(old)?
            .into_iter()
            .map(|(name, id, mode)| (name, (id, mode)))
            .collect();
        let child = |name: &[u8]| -> Vec<u8> {
            let mut p = path.clone();
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(name);
            p
        };
        for (name, id, mode) in entries(new)? {
            let was = before.remove(&name);
            if was == Some((id, mode)) {
                continue;
            }
            let was_tree = was.and_then(|(o, m)| (m == TREE_MODE).then_some(o));
            let at = child(&name);
            if mode == TREE_MODE {
                // A file that became a directory: the file is gone.
                if was.is_some() && was_tree.is_none() && f(Step::Gone)?.is_break() {
                    return Ok(ControlFlow::Break(()));
                }
                stack.push((at, was_tree, Some(id)));
            } else {
                // A directory that became a file: what it held is gone.
                if was_tree.is_some() {
                    stack.push((child(&name), was_tree, None));
                }
                if f(Step::File(&at, id, mode))?.is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
        }
        for (name, (id, mode)) in before {
            if mode == TREE_MODE {
                stack.push((child(&name), Some(id), None));
            } else if f(Step::Gone)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
    }
    Ok(ControlFlow::Continue(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(repo: &Repository, entries: &[(&str, Oid, i32)]) -> Oid {
        let mut b = repo.treebuilder(None).expect("builder");
        for (name, id, mode) in entries {
            b.insert(name, *id, *mode).expect("insert");
        }
        b.write().expect("write")
    }

    /// Changes, removals and a directory shared by a thousand paths are found; the same
    /// subtree on both sides is skipped; the walk stops where the caller breaks; a chain of
    /// nested trees past `PATH_MAX` is one change, walked on its own stack.
    #[test]
    fn a_change_is_walked_as_far_as_the_caller_reads() {
        let dir = tempfile::tempdir().expect("tmp");
        let repo = Repository::init(dir.path()).expect("init");
        let blob = repo.blob(b"x").expect("blob");
        let other = repo.blob(b"y").expect("blob");
        let f = 0o100_644;
        let mut t = tree(&repo, &[("f", blob, f)]);
        for _ in 0..3 {
            let names: Vec<String> = (0..10).map(|i| format!("d{i}")).collect();
            let entries: Vec<(&str, Oid, i32)> =
                names.iter().map(|n| (n.as_str(), t, TREE_MODE)).collect();
            t = tree(&repo, &entries);
        }
        let shared = tree(&repo, &[("keep", blob, f)]);
        let old = tree(
            &repo,
            &[("a", blob, f), ("gone", blob, f), ("s", shared, TREE_MODE)],
        );
        let new = tree(
            &repo,
            &[
                ("a", other, f),
                ("bomb", t, TREE_MODE),
                ("s", shared, TREE_MODE),
            ],
        );
        let (mut files, mut gone, mut trees) = (0, 0, 0);
        let flow = walk(&repo, (Some(old), Some(new)), &mut |s| {
            match s {
                Step::File(..) => files += 1,
                Step::Gone => gone += 1,
                Step::Tree(..) => trees += 1,
                Step::TooDeep(_) => panic!("not deep"),
            }
            Ok(ControlFlow::Continue(()))
        })
        .expect("walk");
        assert!(flow.is_continue());
        // `a` changed, 1,000 files under `bomb`, `gone` removed; `s` skipped.
        assert_eq!((files, gone), (1001, 1));
        assert_eq!(trees, 1 + 1 + 10 + 100 + 1000);
        let mut seen = 0;
        let flow = walk(&repo, (Some(old), Some(new)), &mut |s| {
            if matches!(s, Step::File(..)) {
                seen += 1;
            }
            Ok(if seen == 5 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })
        .expect("walk");
        assert!(flow.is_break());
        assert_eq!(seen, 5);
        let mut deep = tree(&repo, &[("f", blob, f)]);
        for _ in 0..3000 {
            deep = tree(&repo, &[("dd", deep, TREE_MODE)]);
        }
        let mut too_deep = 0;
        let _ = walk(&repo, (None, Some(deep)), &mut |s| {
            if let Step::TooDeep(p) = s {
                assert!(p.len() > PATH_MAX);
                too_deep += 1;
            }
            Ok(ControlFlow::Continue(()))
        })
        .expect("walk");
        assert_eq!(too_deep, 1);
    }
}
