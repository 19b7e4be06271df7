//! The order in which plans are merged: upstream plans first (cross-plan `depends_on`), then
//! higher priority, then name.

use std::collections::{BTreeSet, HashMap};

/// One plan to order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OrderItem {
    pub(crate) name: String,
    pub(crate) priority: i64,
    /// The plans it depends on (any `depends_on` entry: whole plan, phase or task). Names that
    /// are not among the items are ignored.
    pub(crate) depends_on: Vec<String>,
}

/// The items' indices in merge order: a topological order of `depends_on` in which, among the
/// plans free to go next, the higher priority goes first, then the smaller name. A cycle (which
/// the manifest check rejects before) cannot hide a plan: its members follow, by the same rule.
pub(crate) fn merge_order(items: &[OrderItem]) -> Vec<usize> {
    let index: HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    let mut waiting_on: Vec<usize> = vec![0; items.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
    for (i, item) in items.iter().enumerate() {
        let upstream: BTreeSet<usize> = item
            .depends_on
            .iter()
            .filter_map(|d| index.get(d.as_str()).copied())
            .filter(|&u| u != i)
            .collect();
        waiting_on[i] = upstream.len();
        for u in upstream {
            dependents[u].push(i);
        }
    }
    // (negated priority, name, index): the smallest key goes first.
    let key = |i: usize| (-i128::from(items[i].priority), items[i].name.as_str(), i);
    let mut ready: BTreeSet<(i128, &str, usize)> = (0..items.len())
        .filter(|&i| waiting_on[i] == 0)
        .map(key)
        .collect();
    let mut out = Vec::with_capacity(items.len());
    let mut placed = vec![false; items.len()];
    loop {
        let next = match ready.pop_first() {
            Some((_, _, i)) => i,
            None => match (0..items.len())
                .filter(|&i| !placed[i])
                .min_by_key(|&i| key(i))
            {
                // Only in a cycle: release the first of its members.
                Some(i) => i,
                None => break,
            },
        };
        if placed[next] {
            continue;
        }
        placed[next] = true;
        out.push(next);
        for &d in &dependents[next] {
            waiting_on[d] = waiting_on[d].saturating_sub(1);
            if waiting_on[d] == 0 && !placed[d] {
                ready.insert(key(d));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, priority: i64, deps: &[&str]) -> OrderItem {
        OrderItem {
            name: name.into(),
            priority,
            depends_on: deps.iter().map(|d| (*d).to_string()).collect(),
        }
    }

    fn names(items: &[OrderItem]) -> Vec<&str> {
        merge_order(items)
            .into_iter()
            .map(|i| items[i].name.as_str())
            .collect()
    }

    #[test]
    fn orders_by_dependencies_then_priority_then_name() {
        let cases: &[(&[OrderItem], &[&str])] = &[
            (&[], &[]),
            (
                &[item("c", 0, &[]), item("b", 0, &[]), item("a", 0, &[])],
                &["a", "b", "c"],
            ),
            (
                &[item("a", 0, &[]), item("b", 5, &[]), item("c", -1, &[])],
                &["b", "a", "c"],
            ),
            // b waits on a even though it has the higher priority.
            (
                &[item("b", 10, &["a"]), item("a", 0, &[]), item("c", 5, &[])],
                &["c", "a", "b"],
            ),
            // A chain, a diamond and an unknown (or own) name.
            (
                &[
                    item("d", 0, &["b", "c"]),
                    item("c", 0, &["a"]),
                    item("b", 1, &["a", "zzz", "b"]),
                    item("a", 0, &[]),
                ],
                &["a", "b", "c", "d"],
            ),
            // Upstream released late still goes before its dependents.
            (
                &[
                    item("x", 9, &["slow"]),
                    item("slow", -5, &[]),
                    item("y", 0, &[]),
                ],
                &["y", "slow", "x"],
            ),
        ];
        for (items, expected) in cases {
            assert_eq!(names(items), *expected, "{items:?}");
        }
    }

    #[test]
    fn a_cycle_loses_no_plan() {
        let items = [
            item("a", 0, &["b"]),
            item("b", 0, &["a"]),
            item("c", 0, &[]),
        ];
        assert_eq!(names(&items), ["c", "a", "b"]);
    }
}
