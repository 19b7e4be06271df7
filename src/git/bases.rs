//! How many merge bases two commits share, counted up to a bound: what orch asks before git
//! merges them (`git merge-tree`, [`super::merge_tree`]).
//!
//! git merges commits with several merge bases by merging the bases first, one after the other
//! (a "virtual" base); a history whose two sides share thousands of them (an octopus merge of
//! thousands of side commits landed by one plan, a commit naming the same side commits as its
//! parents on another plan's branch, each within `max_change_files`) made one landing cost
//! minutes of CPU and GiBs (red team 13: 6,000 bases, 222-300 s and 788 MB; git's own
//! `merge-base --all` is quadratic in them). Work does not make such histories: a criss-cross
//! merge gives two or three. So orch merges two commits only when they share at most
//! [`MAX_MERGE_BASES`]; more is a history a person merges.
//!
//! The count walks both histories together, newest first by commit time (git's
//! `paint_down_to_common`): a commit reached from both sides is a common ancestor, and the
//! commits below it are not best ones. It stops as soon as the count passes the bound, so it
//! reads about as many commits as the bound lets through, not the whole history; a commit dated
//! before one of its parents (a clock's skew) may count an ancestor that is not a best one: the
//! count errs high, never low.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use git2::{Oid, Repository};

/// The most merge bases two commits may share for orch to merge them.
pub(crate) const MAX_MERGE_BASES: usize = 16;

const ONE: u8 = 1;
const TWO: u8 = 2;
/// Below a common ancestor: not a best one.
const STALE: u8 = 4;
/// Counted as a merge base.
const RESULT: u8 = 8;

/// The candidate merge bases of `one` and `two` when they are at most `max` (every merge base,
/// and, where commit times tie or are skewed, perhaps a commit below one: [`merge_bases_exact`]
/// removes those); `None` when there are more (the walk stopped there).
pub(super) fn merge_bases_within(
    repo: &Repository,
    one: Oid,
    two: Oid,
    max: usize,
) -> Result<Option<Vec<Oid>>, git2::Error> {
    if one == two {
        return Ok(Some(vec![one]));
    }
    let mut flags: HashMap<Oid, u8> = HashMap::new();
    // Newest first, then first found first; whether the entry was pushed not stale.
    let mut queue: BinaryHeap<(i64, Reverse<u64>, Oid, bool)> = BinaryHeap::new();
    let mut order = 0u64;
    // Entries pushed not stale and not popped yet: the walk ends when none is left.
    let mut live = 0usize;
    let time =
        |oid: Oid| -> Result<i64, git2::Error> { Ok(repo.find_commit(oid)?.time().seconds()) };
    for (oid, flag) in [(one, ONE), (two, TWO)] {
        *flags.entry(oid).or_insert(0) |= flag;
        queue.push((time(oid)?, Reverse(order), oid, true));
        order += 1;
        live += 1;
    }
    let mut bases = Vec::new();
    while live > 0 {
        let Some((_, _, oid, counted)) = queue.pop() else {
            break;
        };
        if counted {
            live -= 1;
        }
        let mut f = flags.get(&oid).copied().unwrap_or(0);
        if f & (ONE | TWO) == (ONE | TWO) && f & STALE == 0 {
            if f & RESULT == 0 {
                f |= RESULT;
                bases.push(oid);
                if bases.len() > max {
                    return Ok(None);
                }
            }
            f |= STALE;
            flags.insert(oid, f);
        }
        let pass = f & (ONE | TWO | STALE);
        for parent in repo.find_commit(oid)?.parent_ids() {
            let pf = flags.entry(parent).or_insert(0);
            if *pf & pass == pass {
                continue;
            }
            *pf |= pass;
            let fresh = *pf & STALE == 0;
            queue.push((time(parent)?, Reverse(order), parent, fresh));
            order += 1;
            if fresh {
                live += 1;
            }
        }
    }
    Ok(Some(bases))
}

/// How many candidates the walk may find before it stops ([`merge_bases_within`] counts a
/// commit below a true base too when commit times tie or are skewed; the redundant ones are
/// removed after).
const MAX_CANDIDATES: usize = 4 * MAX_MERGE_BASES;

/// The merge bases of `one` and `two`, exact, when they are at most [`MAX_MERGE_BASES`]; `None`
/// when there are more. The walk finds candidates (stopping past [`MAX_CANDIDATES`]); a
/// candidate that is an ancestor of another is not a best one and goes (commits made within
/// the same second order the walk by insertion, not by history: the demo's fixture had a
/// plan's fork point counted beside its tip).
pub(crate) fn merge_bases_exact(
    repo: &Repository,
    one: Oid,
    two: Oid,
) -> Result<Option<Vec<Oid>>, git2::Error> {
    let Some(candidates) = merge_bases_within(repo, one, two, MAX_CANDIDATES)? else {
        return Ok(None);
    };
    let mut bases = Vec::with_capacity(candidates.len());
    for &c in &candidates {
        let mut below_another = false;
        for &d in &candidates {
            if d != c && repo.graph_descendant_of(d, c)? {
                below_another = true;
                break;
            }
        }
        if !below_another {
            bases.push(c);
        }
    }
    Ok((bases.len() <= MAX_MERGE_BASES).then_some(bases))
}

/// An error unless `one` and `two` share at most [`MAX_MERGE_BASES`] merge bases.
pub(crate) fn check_merge_bases(repo: &Repository, one: Oid, two: Oid) -> Result<(), git2::Error> {
    match merge_bases_exact(repo, one, two)? {
        Some(_) => Ok(()),
        None => Err(too_wide(one, two)),
    }
}

/// The error of two commits that share more than [`MAX_MERGE_BASES`] merge bases.
pub(crate) fn too_wide(one: Oid, two: Oid) -> git2::Error {
    git2::Error::from_str(&format!(
        "{one} and {two} share more than {MAX_MERGE_BASES} merge bases: orch does not merge a \
         history that wide (a person merges it with git)"
    ))
}

/// libgit2's merge base of `one` and `two` (`repo.merge_base`), once they share at most
/// [`MAX_MERGE_BASES`]: every merge base orch asks for (where a branch left its target, what it
/// changes since) goes through here, so that a history too wide costs a bounded walk and an
/// error, not libgit2's whole computation of thousands of bases.
pub(crate) fn merge_base(repo: &Repository, one: Oid, two: Oid) -> Result<Oid, git2::Error> {
    check_merge_bases(repo, one, two)?;
    repo.merge_base(one, two)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn commit(repo: &Repository, parents: &[Oid], msg: &str, t: i64) -> Oid {
        let sig = git2::Signature::new("t", "t@t", &git2::Time::new(t, 0)).unwrap();
        let tree = repo
            .find_tree(repo.treebuilder(None).unwrap().write().unwrap())
            .unwrap();
        let parents: Vec<_> = parents
            .iter()
            .map(|p| repo.find_commit(*p).unwrap())
            .collect();
        let refs: Vec<_> = parents.iter().collect();
        repo.commit(None, &sig, &sig, msg, &tree, &refs).unwrap()
    }

    /// `k` side commits of `base`, one commit merging all of them and another naming them all
    /// as its parents: the two share `k` merge bases.
    fn wide(repo: &Repository, k: usize) -> (Oid, Oid) {
        let base = commit(repo, &[], "base", 1_000);
        let sides: Vec<Oid> = (0..k)
            .map(|i| commit(repo, &[base], &format!("side {i}"), 2_000 + i as i64))
            .collect();
        let mut with_base = vec![base];
        with_base.extend(&sides);
        let octopus = commit(repo, &with_base, "octopus", 100_000);
        let other = commit(repo, &sides, "other", 100_001);
        (octopus, other)
    }

    #[test]
    fn the_count_is_exact_to_the_bound_and_stops_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        for k in [1, 2, 3, MAX_MERGE_BASES] {
            let (a, b) = wide(&repo, k);
            let mut got = merge_bases_within(&repo, a, b, MAX_MERGE_BASES)
                .unwrap()
                .unwrap();
            let mut want = repo
                .merge_bases(a, b)
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<_>>();
            got.sort();
            want.sort();
            assert_eq!(got, want, "k = {k}");
            assert!(check_merge_bases(&repo, a, b).is_ok());
        }
        for k in [MAX_MERGE_BASES + 1, 300] {
            let (a, b) = wide(&repo, k);
            assert_eq!(
                merge_bases_within(&repo, a, b, MAX_MERGE_BASES).unwrap(),
                None
            );
            let e = check_merge_bases(&repo, a, b).unwrap_err();
            assert!(e.message().contains("more than 16 merge bases"), "{e}");
        }
    }

    /// Commits of one second (the demo's): a plan's branch merged into `main`, then two more
    /// plans merged after it; the plan's tip is the one base, never its fork point beside it.
    #[test]
    fn commits_of_one_second_give_the_one_base() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let base = commit(&repo, &[], "base", 7);
        let d1 = commit(&repo, &[base], "d1", 7);
        let d2 = commit(&repo, &[d1], "d2", 7);
        let g = commit(&repo, &[base], "g", 7);
        let m1 = commit(&repo, &[base, g], "merge g", 7);
        let m2 = commit(&repo, &[m1, d2], "merge d", 7);
        let p = commit(&repo, &[base], "p", 7);
        let m3 = commit(&repo, &[m2, p], "merge p", 7);
        assert_eq!(merge_bases_exact(&repo, m3, d2).unwrap(), Some(vec![d2]));
        assert_eq!(merge_bases_exact(&repo, d2, m3).unwrap(), Some(vec![d2]));
        assert!(crate::git::repo::contains(&repo, m3, d2).unwrap());
        assert!(!crate::git::repo::contains(&repo, d2, m3).unwrap());
        assert!(crate::git::repo::contains(&repo, m3, g).unwrap());
    }

    #[test]
    fn a_linear_history_and_a_criss_cross_merge() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let a = commit(&repo, &[], "a", 1);
        let b = commit(&repo, &[a], "b", 2);
        let c = commit(&repo, &[b], "c", 3);
        assert_eq!(merge_bases_within(&repo, c, b, 16).unwrap(), Some(vec![b]));
        assert_eq!(merge_bases_within(&repo, c, c, 16).unwrap(), Some(vec![c]));
        // x1, y1 off b; x2 merges y1 into x1, y2 merges x1 into y1: two bases.
        let x1 = commit(&repo, &[b], "x1", 4);
        let y1 = commit(&repo, &[b], "y1", 5);
        let x2 = commit(&repo, &[x1, y1], "x2", 6);
        let y2 = commit(&repo, &[y1, x1], "y2", 7);
        let mut got = merge_bases_within(&repo, x2, y2, 16).unwrap().unwrap();
        got.sort();
        let mut want = vec![x1, y1];
        want.sort();
        assert_eq!(got, want);
    }
}
