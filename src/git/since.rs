//! The commits of `base..tip` (reachable from `tip` and not from `base`), one at a time, newest
//! first by commit time, found by walking `tip`'s and `base`'s histories together (what
//! `git rev-list base..tip` does): a commit is given once every commit newer than it has been
//! looked at, and the walk stops as soon as nothing left to look at is reachable from `tip` only.
//!
//! libgit2's revision walk with a hidden commit loads every commit down to the base before it
//! gives the first one; an agent's merge of a side chain of a million commits made orch walk
//! them all before its change was refused (red team 11: 28 s of CPU and 588 MB). Here a caller
//! that stops after N commits has loaded about N commits of the agent's, plus the base's commits
//! newer than them: the base is orch's own record and its history the repository's, which an
//! agent cannot grow (dating its commits in the past makes the walk go down the base's history,
//! no further).
//!
//! A commit dated before one of its parents (a clock's skew) may be given although the base
//! reaches it through that parent: a caller that counts the change counts it too, never fewer.
//!
//! Each parent a commit of the range names is an edge the walk follows, read before the commit
//! is given: the walk stops, [`Since::over`], once more than `max_edges` of them were followed
//! from the tip's side (red team 12: one octopus merge of a million parents loaded them all,
//! 48 s and 1 GB; a mesh of 4,002 commits naming 4 million parents landed, and every later merge
//! of the target slowed by minutes).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use git2::{Oid, Repository};

/// Reachable from the tip.
const TIP: u8 = 1;
/// Reachable from the base.
const BASE: u8 = 2;
/// Looked at already (no longer waiting).
const DONE: u8 = 4;

/// The walk ([`Since::new`]): an iterator of the commits of `base..tip`.
pub(crate) struct Since<'r> {
    repo: &'r Repository,
    /// The commits waiting to be looked at: newest first, then first found first.
    queue: BinaryHeap<(i64, Reverse<u64>, Oid)>,
    flags: HashMap<Oid, u8>,
    /// How many waiting commits are reachable from the tip only.
    tip_only: usize,
    found: u64,
    /// Edges followed from the tip's side, and the most allowed.
    edges: u64,
    max_edges: u64,
    /// Whether the walk stopped at `max_edges`.
    pub(crate) over: bool,
}

impl<'r> Since<'r> {
    /// The commits of `base..tip` in `repo` (all of `tip`'s history without a base), following
    /// at most `max_edges` parents from the tip's side.
    pub(crate) fn new(
        repo: &'r Repository,
        tip: Oid,
        base: Option<Oid>,
        max_edges: u64,
    ) -> Result<Self, git2::Error> {
        let mut walk = Self {
            repo,
            queue: BinaryHeap::new(),
            flags: HashMap::new(),
            tip_only: 0,
            found: 0,
            edges: 0,
            max_edges,
            over: false,
        };
        if let Some(b) = base {
            walk.reach(b, BASE)?;
        }
        walk.reach(tip, TIP)?;
        Ok(walk)
    }

    /// `id` reached from the tip or the base (`flag`).
    fn reach(&mut self, id: Oid, flag: u8) -> Result<(), git2::Error> {
        if let Some(f) = self.flags.get_mut(&id) {
            let was_tip_only = *f & (TIP | BASE | DONE) == TIP;
            *f |= flag;
            if was_tip_only && flag == BASE {
                self.tip_only -= 1;
            }
            return Ok(());
        }
        let time = self.repo.find_commit(id)?.time().seconds();
        self.flags.insert(id, flag);
        if flag == TIP {
            self.tip_only += 1;
        }
        self.found += 1;
        self.queue.push((time, Reverse(self.found), id));
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Oid>, git2::Error> {
        while self.tip_only > 0 && !self.over {
            let Some((_, _, id)) = self.queue.pop() else {
                return Ok(None);
            };
            let f = self.flags.get(&id).copied().unwrap_or(BASE);
            self.flags.insert(id, f | DONE);
            let from_base = f & BASE != 0;
            if !from_base {
                self.tip_only -= 1;
            }
            let commit = self.repo.find_commit(id)?;
            let flag = if from_base { BASE } else { TIP };
            if !from_base {
                self.edges = self.edges.saturating_add(commit.parent_count() as u64);
                if self.edges > self.max_edges {
                    self.over = true;
                    return Ok(None);
                }
            }
            let parents: Vec<Oid> = commit.parent_ids().collect();
            for p in parents {
                self.reach(p, flag)?;
            }
            if !from_base {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }
}

impl Iterator for Since<'_> {
    type Item = Result<Oid, git2::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(repo: &Repository, parents: &[Oid], time: i64, msg: &str) -> Oid {
        let sig = git2::Signature::new("t", "t@e", &git2::Time::new(time, 0)).expect("sig");
        let tree = {
            let mut b = repo.treebuilder(None).expect("tb");
            let blob = repo.blob(msg.as_bytes()).expect("blob");
            b.insert("f", blob, 0o100644).expect("insert");
            b.write().expect("tree")
        };
        let tree = repo.find_tree(tree).expect("tree");
        let parents: Vec<git2::Commit<'_>> = parents
            .iter()
            .map(|p| repo.find_commit(*p).expect("parent"))
            .collect();
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        repo.commit(None, &sig, &sig, msg, &tree, &refs)
            .expect("commit")
    }

    fn since(repo: &Repository, tip: Oid, base: Option<Oid>) -> Vec<Oid> {
        Since::new(repo, tip, base, u64::MAX)
            .expect("walk")
            .collect::<Result<_, _>>()
            .expect("walk")
    }

    /// The same commits as `git rev-list base..tip`, for a chain, a merge of the base's own
    /// history, a side branch, and commits dated in the past.
    #[test]
    fn the_commits_of_a_range_whatever_their_shape_and_dates() {
        let d = tempfile::tempdir().expect("tmp");
        let repo = Repository::init(d.path()).expect("init");
        let a = commit(&repo, &[], 100, "a");
        let b = commit(&repo, &[a], 200, "b");
        let base = commit(&repo, &[b], 300, "base");
        // A chain on the base.
        let c1 = commit(&repo, &[base], 400, "c1");
        let c2 = commit(&repo, &[c1], 500, "c2");
        assert_eq!(since(&repo, c2, Some(base)), vec![c2, c1]);
        // A merge of the base's own ancestor: only the merge is new.
        let m = commit(&repo, &[c2, a], 600, "m");
        assert_eq!(since(&repo, m, Some(base)), vec![m, c2, c1]);
        // A side chain dated in the past, merged: every one of it is new, none of the base's.
        let s1 = commit(&repo, &[a], 0, "s1");
        let s2 = commit(&repo, &[s1], 0, "s2");
        let m2 = commit(&repo, &[base, s2], 700, "m2");
        let got = since(&repo, m2, Some(base));
        assert_eq!(got.len(), 3, "{got:?}");
        for id in [m2, s1, s2] {
            assert!(got.contains(&id), "{got:?}");
        }
        assert!(!got.contains(&a) && !got.contains(&base));
        // Nothing new; no base.
        assert!(since(&repo, base, Some(base)).is_empty());
        assert!(since(&repo, b, Some(c2)).is_empty());
        assert_eq!(since(&repo, b, None), vec![b, a]);
    }

    /// A caller that stops after N commits of a long side chain has looked at about N of them,
    /// not the chain.
    #[test]
    fn a_walk_stopped_early_loads_no_more_than_it_gave() {
        let d = tempfile::tempdir().expect("tmp");
        let repo = Repository::init(d.path()).expect("init");
        let base = commit(&repo, &[], 1_000_000, "base");
        let mut at = base;
        for i in 0..2_000 {
            at = commit(&repo, &[at], 0, &format!("s{i}"));
        }
        let tip = commit(&repo, &[base, at], 2_000_000, "merge");
        let mut walk = Since::new(&repo, tip, Some(base), u64::MAX).expect("walk");
        let first: Vec<Oid> = walk
            .by_ref()
            .take(10)
            .collect::<Result<_, _>>()
            .expect("walk");
        assert_eq!(first.len(), 10);
        assert!(
            walk.flags.len() <= 14,
            "{} commits loaded",
            walk.flags.len()
        );
        assert_eq!(since(&repo, tip, Some(base)).len(), 2_001);
    }

    /// A commit of many parents stops the walk once the edges are over the most allowed, before
    /// its parents are read.
    #[test]
    fn a_wide_merge_stops_the_walk_at_its_edges() {
        let d = tempfile::tempdir().expect("tmp");
        let repo = Repository::init(d.path()).expect("init");
        let base = commit(&repo, &[], 100, "base");
        let roots: Vec<Oid> = (0..300)
            .map(|i| commit(&repo, &[], 50, &format!("r{i}")))
            .collect();
        let mut parents = vec![base];
        parents.extend(&roots);
        let tip = commit(&repo, &parents, 200, "octopus");
        let mut walk = Since::new(&repo, tip, Some(base), 100).expect("walk");
        let got: Vec<Oid> = walk.by_ref().collect::<Result<_, _>>().expect("walk");
        assert!(walk.over);
        assert!(got.is_empty(), "{got:?}");
        assert!(walk.flags.len() <= 2, "{} commits loaded", walk.flags.len());
        let mut walk = Since::new(&repo, tip, Some(base), 301).expect("walk");
        let got: Vec<Oid> = walk.by_ref().collect::<Result<_, _>>().expect("walk");
        assert!(!walk.over);
        assert_eq!(got.len(), 301);
    }
}
