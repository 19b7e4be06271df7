//! What is dirty in a work tree: the one reader, `git status` through the git CLI. At 40,000
//! files its index's file stamps make it several times faster than libgit2's status
//! (benches/worktrees.rs); a sparse worktree's files outside the cone (`skip-worktree`) are not
//! listed as deleted; read-only (`--no-optional-locks`: the index is not refreshed and locked,
//! so a `git commit` running at the same time there, an agent's or a verify command's, never
//! fails because of orch).

use std::cell::OnceCell;
use std::path::Path;

use super::GitError;

/// Which submodules a status looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Submodules {
    /// None (`--ignore-submodules=all`).
    Ignored,
    /// orch's own submodule checkouts in a worktree it made, read by orch rather than by a git
    /// that would open them through their agent-written `.git` files
    /// ([`super::submodules::submodule_dirt`]: the changes inside one, a checkout whose commit
    /// moved), listed after git's changed paths. For a caller that decides whether a worktree holds
    /// work (before removing, resetting or merging into it).
    Orch,
    /// As git sees them (`--ignore-submodules=none`, as libgit2's status of it did): a work
    /// tree orch did not make, the user's own (the one that has the target checked out). git
    /// runs a `git status` of its own in each submodule there, orch's settings and
    /// `--no-optional-locks` passed down to it.
    Git,
}

/// What `git status` shows in a work tree, split the way `orch merge` needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct WorkState {
    /// Tracked files with changes (staged or not), deleted files, conflicts; with
    /// [`Submodules::Orch`], then orch's submodule checkouts that hold changes.
    pub(crate) changed: Vec<String>,
    /// Untracked files that are not ignored.
    pub(crate) untracked: Vec<String>,
}

impl WorkState {
    /// Every path listed: the changed ones, then the untracked ones.
    pub(crate) fn paths(self) -> Vec<String> {
        let mut all = self.changed;
        all.extend(self.untracked);
        all
    }
}

/// The state of the work tree `dir`: of `paths` only (literal paths from its root) when given.
pub(crate) fn status(
    dir: &Path,
    paths: Option<&[String]>,
    submodules: Submodules,
) -> Result<WorkState, GitError> {
    let ignore = match submodules {
        Submodules::Ignored | Submodules::Orch => "--ignore-submodules=all",
        Submodules::Git => "--ignore-submodules=none",
    };
    // An agent's worktree: no FIFO where git opens a file of its own (it would block there).
    if submodules != Submodules::Git {
        super::nested::refuse_special(dir)?;
    }
    let mut args: Vec<String> = [
        "--no-optional-locks",
        "status",
        "--porcelain",
        "-z",
        "--untracked-files=all",
        "--no-renames",
        ignore,
    ]
    .iter()
    .map(|a| (*a).to_string())
    .collect();
    if let Some(paths) = paths {
        args.push("--".to_string());
        // A pattern `**/NAME` (a file protected at any depth) matches as git's glob, there and
        // below; every other path literally. Both in any case (`.ENV` is `.env` where names
        // fold; git folds ASCII only, and the landing's check folds the rest).
        for p in paths {
            if p.starts_with("**/") {
                args.push(format!(":(top,icase,glob){p}"));
                args.push(format!(":(top,icase,glob){p}/**"));
            } else {
                args.push(format!(":(top,icase,literal){p}"));
            }
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = super::cli::run_in(dir, &args)?;
    let mut state = WorkState::default();
    for e in out.split(|&b| b == 0).filter(|e| e.len() > 3) {
        let path = String::from_utf8_lossy(&e[3..]).into_owned();
        if e.starts_with(b"??") {
            state.untracked.push(path);
        } else {
            state.changed.push(path);
        }
    }
    if submodules == Submodules::Orch {
        state.changed.extend(super::submodules::submodule_dirt(dir));
    }
    Ok(state)
}

/// The paths of [`status`] (see [`WorkState::paths`]).
pub(crate) fn dirty_files(dir: &Path, submodules: Submodules) -> Result<Vec<String>, GitError> {
    Ok(status(dir, None, submodules)?.paths())
}

/// One `git status` of a work tree (its whole tree, submodules left out), run at the first
/// question and asked several: the checks of one task's work (its size, orch's own paths, the
/// links and files at protected paths, the `protect` globs) read the tree once, not once each
/// (a git run costs a few milliseconds of CPU even in a small tree).
///
/// Run lazily: a check that must come before any git runs on the tree (a nested repository,
/// files git would hash before it could tell they changed) runs before the first question.
pub(crate) struct Dirt<'a> {
    dir: &'a Path,
    read: OnceCell<WorkState>,
}

impl<'a> Dirt<'a> {
    /// The status of `dir`, not read yet.
    pub(crate) fn new(dir: &'a Path) -> Self {
        Self {
            dir,
            read: OnceCell::new(),
        }
    }

    /// The work tree.
    pub(crate) fn dir(&self) -> &'a Path {
        self.dir
    }

    /// What `git status` lists there (read at the first call).
    pub(crate) fn state(&self) -> Result<&WorkState, GitError> {
        if let Some(state) = self.read.get() {
            return Ok(state);
        }
        let state = status(self.dir, None, Submodules::Ignored)?;
        Ok(self.read.get_or_init(|| state))
    }

    /// Every path listed (see [`WorkState::paths`]).
    pub(crate) fn paths(&self) -> Result<Vec<String>, GitError> {
        Ok(self.state()?.clone().paths())
    }

    /// The paths listed at or below one of `paths` (literal paths from the root, or patterns
    /// `**/NAME`): what [`status`] of those paths lists (git's pathspecs without ASCII case),
    /// and the other spellings of them a Windows or macOS checkout takes for them, compared as
    /// orch's landing compares names ([`crate::manifest::at_or_below`],
    /// [`crate::manifest::pattern_covers`]); a directory listed above one of them (an untracked
    /// repository inside the tree, listed `dir/`) too.
    pub(crate) fn among(&self, paths: &[String]) -> Result<Vec<String>, GitError> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .paths()?
            .into_iter()
            .filter(|listed| paths.iter().any(|p| spec_matches(p, listed)))
            .collect())
    }
}

/// Whether the pathspec `:(top,icase,literal)spec` (or, for a pattern `**/NAME`, the globs
/// `:(top,icase,glob)**/NAME` and `…/**`) holds the path `listed` of a status.
fn spec_matches(spec: &str, listed: &str) -> bool {
    let dir = listed.ends_with('/');
    let path = listed.trim_end_matches('/');
    // A directory listed (an untracked repository) may hold the pattern's place at any depth.
    if crate::manifest::is_pattern(spec) {
        return dir || crate::manifest::pattern_covers(spec, path) || glob_covers(spec, path);
    }
    let (s, p) = (spec.as_bytes(), path.as_bytes());
    let below = |long: &[u8], short: &[u8]| {
        long.len() > short.len()
            && long[short.len()] == b'/'
            && long[..short.len()].eq_ignore_ascii_case(short)
    };
    s.eq_ignore_ascii_case(p)
        || below(p, s)
        || (dir && below(s, p))
        // The other spellings a checkout takes for the path (`PLANS~1.TOM`, `plans.toml.`):
        // as the landing's check folds them.
        || crate::manifest::at_or_below(spec, path)
        || (dir && crate::manifest::at_or_below(path, spec))
}

/// git's own reading of `**/NAME` (and `**/NAME/**`) without ASCII case: `NAME`'s components
/// (`*` and `?` wildcards within one) at any depth, or a path below them.
fn glob_covers(spec: &str, path: &str) -> bool {
    let Some(name) = spec.strip_prefix("**/") else {
        return false;
    };
    let m: Vec<&str> = name.split('/').collect();
    let c: Vec<&str> = path.split('/').collect();
    (0..c.len()).any(|j| {
        c.len() - j >= m.len()
            && m.iter()
                .zip(&c[j..])
                .all(|(m, c)| wildmatch(m.as_bytes(), c.as_bytes()))
    })
}

/// A name against one component of a glob (`*`, `?`; ASCII case ignored).
fn wildmatch(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.split_first(), name.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            wildmatch(rest, name)
                || name
                    .split_first()
                    .is_some_and(|(_, n)| wildmatch(pattern, n))
        }
        (Some((b'?', rest)), Some((_, n))) => wildmatch(rest, n),
        (Some((p, rest)), Some((c, n))) => p.eq_ignore_ascii_case(c) && wildmatch(rest, n),
        _ => false,
    }
}
