//! Another plan's commits in a plan's branch: what a landing refuses
//! ([`crate::merge::trusted`]) when a branch merged another plan's branch that has not landed.

use git2::Oid;

/// Whether the history of `branch` holds commits of `other`'s (another plan's branch) that
/// `target` does not: a merge base of their tips outside `target`'s history that lies on
/// `other`'s own line and not on `branch`'s (a `git merge -s ours` of `other`, a merge commit
/// made with its tip as a parent). Landed, such a branch would bring
/// `other`'s commits into `target` without their changes, and `other` would then look merged
/// (red team 14). `false` when a branch is missing or `other` is in `target` already; `true`
/// when the two share more merge bases than are counted (fail closed).
pub(crate) fn carries_unlanded(
    root: &std::path::Path,
    target: &str,
    (branch, other): (&str, &str),
) -> Result<bool, git2::Error> {
    let repo = super::repo::open(root).map_err(|e| git2::Error::from_str(&e.to_string()))?;
    let tip = |name: &str| -> Result<Option<Oid>, git2::Error> {
        match repo.find_reference(&format!("refs/heads/{name}")) {
            Ok(r) => Ok(Some(r.peel_to_commit()?.id())),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    };
    let (Some(mine), Some(theirs), Some(onto)) = (tip(branch)?, tip(other)?, tip(target)?) else {
        return Ok(false);
    };
    if super::repo::contains(&repo, onto, theirs)? {
        return Ok(false);
    }
    let Some(bases) = super::bases::merge_bases_exact(&repo, mine, theirs)? else {
        return Ok(true);
    };
    // A shared commit is `other`'s when it lies on `other`'s own line (the first parents from
    // its tip, where orch's commits of its tasks are) and not on this branch's: this branch
    // merged it in, not the other way round.
    let line = |tip: Oid| -> Result<std::collections::HashSet<Oid>, git2::Error> {
        let fork = super::bases::merge_base(&repo, tip, onto).ok();
        let mut out = std::collections::HashSet::new();
        let mut at = Some(tip);
        while let Some(c) = at {
            if Some(c) == fork || out.len() >= MAX_LINE {
                break;
            }
            out.insert(c);
            at = repo.find_commit(c)?.parent_ids().next();
        }
        Ok(out)
    };
    let (theirs_line, mine_line) = (line(theirs)?, line(mine)?);
    for base in bases {
        if theirs_line.contains(&base)
            && !mine_line.contains(&base)
            && !super::repo::contains(&repo, onto, base)?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// How many commits of a branch's own line [`carries_unlanded`] walks at most.
const MAX_LINE: usize = 100_000;
