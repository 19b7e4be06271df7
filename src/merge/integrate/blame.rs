//! Which plans break the combination together: the smallest failing prefix of the merge order,
//! then the earlier plans its last plan needs to fail. Pure: a trial is a closure.

/// The plans (indices into the merge order, in that order) that fail together, the culprit last.
///
/// `fails(set)` runs one trial of the plans `set` (indices, in merge order) and says whether it
/// fails; the whole order (`0..n`) is known to fail. The smallest failing prefix is found by
/// bisection (a prefix that fails keeps failing as plans are added); then each earlier plan of that
/// prefix is left out in turn: those without which the prefix passes are needed. A plan that fails
/// alone is named alone.
pub(crate) fn blame<E>(
    n: usize,
    mut fails: impl FnMut(&[usize]) -> Result<bool, E>,
) -> Result<Vec<usize>, E> {
    if n == 0 {
        return Ok(Vec::new());
    }
    // The smallest k such that the prefix 0..k fails; 0..n fails.
    let (mut lo, mut hi) = (1, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let prefix: Vec<usize> = (0..mid).collect();
        if fails(&prefix)? {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let culprit = lo - 1;
    let mut named = Vec::new();
    for left_out in 0..culprit {
        let set: Vec<usize> = (0..=culprit).filter(|&i| i != left_out).collect();
        if !fails(&set)? {
            named.push(left_out);
        }
    }
    named.push(culprit);
    Ok(named)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::convert::Infallible;

    use super::*;

    /// A world where a set fails when it holds every plan of one of `breaks`.
    fn run(n: usize, breaks: &[&[usize]]) -> (Vec<usize>, usize) {
        let mut trials = 0;
        let named = blame::<Infallible>(n, |set| {
            trials += 1;
            let s: BTreeSet<usize> = set.iter().copied().collect();
            Ok(breaks.iter().any(|b| b.iter().all(|i| s.contains(i))))
        })
        .expect("infallible");
        (named, trials)
    }

    #[test]
    fn names_the_plans_that_break_together_not_a_bystander() {
        // lib (0) and app (2) break together; docs (1) and 3 are bystanders.
        assert_eq!(run(4, &[&[0, 2]]).0, [0, 2]);
        // docs first in merge order.
        assert_eq!(run(3, &[&[1, 2]]).0, [1, 2]);
        // One plan broken on its own.
        assert_eq!(run(3, &[&[1]]).0, [1]);
        assert_eq!(run(1, &[&[0]]).0, [0]);
        // Three plans needed together.
        assert_eq!(run(5, &[&[0, 2, 4]]).0, [0, 2, 4]);
        // Two breaks: the first one in merge order is reported.
        assert_eq!(run(5, &[&[3, 4], &[0, 1]]).0, [0, 1]);
        assert_eq!(run(0, &[]).0, Vec::<usize>::new());
    }

    #[test]
    fn bisection_keeps_the_trials_few() {
        // 64 plans, the break at the end: log2(64) prefixes, then one trial per earlier plan.
        let (named, trials) = run(64, &[&[62, 63]]);
        assert_eq!(named, [62, 63]);
        assert!(trials <= 6 + 63, "{trials}");
        // The break at the start: few prefixes and one trial left out.
        let (named, trials) = run(64, &[&[0, 1]]);
        assert_eq!(named, [0, 1]);
        assert!(trials <= 7, "{trials}");
    }
}
