//! Landing plans of several repositories all together or not at all. A group is the plans that
//! the manifest ties to one another (`depends_on`, `land_with`) when one of them changes a
//! `[[repo]]`: every repository's merge is built, each `verify` and `verify_all` run on the
//! combination, and only then the targets move, in the order the dependencies give, each by
//! compare-and-swap with a backup ref; a target that cannot move puts back those moved, and a
//! landing stopped half way (kill -9) is put back by the next `orch merge` (`land.rs`).
//!
//! This file is the decisions without git: the groups and their orders (pure).

pub(crate) mod land;
pub(crate) mod now;
pub(crate) mod parts;
pub(crate) mod record;
pub(crate) mod resolve;

use std::collections::{BTreeMap, BTreeSet};

use crate::manifest::{Manifest, PlanEntry, repo_name};

/// Plans that land together, with the order their repositories' targets move in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    /// Its plans, in the manifest's order.
    pub(crate) plans: Vec<String>,
    /// Its repositories (`home` for the manifest's), upstream ones first.
    pub(crate) repos: Vec<String>,
}

impl Group {
    /// The group's name in messages and in its log's path: its first plan's.
    pub(crate) fn name(&self) -> &str {
        self.plans.first().map_or("", String::as_str)
    }

    /// The plans of repository `repo`, upstream plans first.
    pub(crate) fn plans_of<'m>(&self, m: &'m Manifest, repo: &str) -> Vec<&'m PlanEntry> {
        let mine: Vec<&PlanEntry> = m
            .plans
            .iter()
            .filter(|p| self.plans.contains(&p.name) && repo_name(p) == repo)
            .collect();
        let names: Vec<&str> = mine.iter().map(|p| p.name.as_str()).collect();
        let order = topo(&names, |p| {
            m.plan(p)
                .map(|e| e.depends_on.iter().map(|d| d.plan.clone()).collect())
                .unwrap_or_default()
        });
        order
            .iter()
            .filter_map(|n| mine.iter().find(|p| &p.name == n).copied())
            .collect()
    }
}

/// The groups of the manifest that land together (every one holding a plan of a `[[repo]]`)
/// among which plans `names` are (every group when `names` is empty), and the names of `names`
/// (or, when empty, of every plan) left for the merge of the home repository alone.
pub(crate) fn groups(m: &Manifest, names: &[String]) -> (Vec<Group>, Vec<String>) {
    // Union-find over the plans by `depends_on` and `land_with`.
    let index: BTreeMap<&str, usize> = m
        .plans
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    let mut parent: Vec<usize> = (0..m.plans.len()).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (i, p) in m.plans.iter().enumerate() {
        let linked = p
            .depends_on
            .iter()
            .map(|d| d.plan.as_str())
            .chain(p.land_with.iter().map(String::as_str));
        for other in linked {
            if let Some(&j) = index.get(other) {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    let mut components: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..m.plans.len() {
        let root = find(&mut parent, i);
        components.entry(root).or_default().push(i);
    }
    let wanted = |p: &PlanEntry| names.is_empty() || names.contains(&p.name);
    let mut out = Vec::new();
    let mut together: BTreeSet<&str> = BTreeSet::new();
    for members in components.values() {
        let plans: Vec<&PlanEntry> = members.iter().map(|&i| &m.plans[i]).collect();
        if !plans.iter().any(|p| p.repo.is_some()) || !plans.iter().any(|p| wanted(p)) {
            continue;
        }
        together.extend(plans.iter().map(|p| p.name.as_str()));
        let mut repos: Vec<&str> = Vec::new();
        for p in &plans {
            if !repos.contains(&repo_name(p)) {
                repos.push(repo_name(p));
            }
        }
        let order = topo(&repos, |r| {
            // The repositories whose plans a plan of `r` waits for.
            plans
                .iter()
                .filter(|p| repo_name(p) == r)
                .flat_map(|p| &p.depends_on)
                .filter_map(|d| m.plan(&d.plan))
                .map(|up| repo_name(up).to_string())
                .filter(|up| up != r)
                .collect()
        });
        out.push(Group {
            plans: plans.iter().map(|p| p.name.clone()).collect(),
            repos: order,
        });
    }
    let left = if names.is_empty() {
        m.plans
            .iter()
            .map(|p| p.name.clone())
            .filter(|n| !together.contains(n.as_str()))
            .collect()
    } else {
        names
            .iter()
            .filter(|n| !together.contains(n.as_str()))
            .cloned()
            .collect()
    };
    (out, left)
}

/// `items` ordered so that each comes after those `before` names for it (among `items`); ties
/// and cycles (refused by `orch check`) keep the given order.
fn topo(items: &[&str], before: impl Fn(&str) -> Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut left: Vec<&str> = items.to_vec();
    while !left.is_empty() {
        let ready = left.iter().position(|i| {
            before(i)
                .iter()
                .all(|b| !items.contains(&b.as_str()) || out.contains(b))
        });
        let next = left.remove(ready.unwrap_or(0));
        out.push(next.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str, dir: &std::path::Path) -> Manifest {
        for f in ["a", "b", "c", "h"] {
            std::fs::write(
                dir.join(format!("{f}.md")),
                "# P\n\n## Phase 1: W\n- [ ] 1.1 x\n",
            )
            .expect("plan");
        }
        for r in ["api", "client"] {
            std::fs::create_dir_all(dir.join(r)).expect("repo dir");
        }
        crate::manifest::parse_str(&dir.join("plans.toml"), text).expect("manifest")
    }

    #[test]
    fn groups_follow_dependencies_and_land_with() {
        let dir = tempfile::tempdir().expect("dir");
        let m = manifest(
            "[[repo]]\nname = \"api\"\npath = \"api\"\n[[repo]]\nname = \"client\"\npath = \"client\"\n\
             [[plan]]\nname = \"c\"\nfile = \"c.md\"\nrepo = \"client\"\ndepends_on = [\"a:1\"]\n\
             [[plan]]\nname = \"a\"\nfile = \"a.md\"\nrepo = \"api\"\n\
             [[plan]]\nname = \"h\"\nfile = \"h.md\"\n\
             [[plan]]\nname = \"b\"\nfile = \"b.md\"\nland_with = [\"a\"]\n",
            dir.path(),
        );
        let (groups, left) = groups(&m, &[]);
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert_eq!(groups[0].plans, ["c", "a", "b"]);
        // api before client (client waits for api); home (land_with only) keeps its place.
        let api = groups[0].repos.iter().position(|r| r == "api");
        let client = groups[0].repos.iter().position(|r| r == "client");
        assert!(api < client, "{:?}", groups[0].repos);
        assert_eq!(left, ["h"]);
        // Naming one plan of the group takes the whole group.
        let (groups, left) = super::groups(&m, &["c".to_string(), "h".to_string()]);
        assert_eq!(groups.len(), 1);
        assert_eq!(left, ["h"]);
        let (groups, left) = super::groups(&m, &["h".to_string()]);
        assert!(groups.is_empty());
        assert_eq!(left, ["h"]);
    }
}
