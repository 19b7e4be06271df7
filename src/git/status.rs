//! What is dirty in a work tree: the one reader, `git status` through the git CLI. At 40,000
//! files its index's file stamps make it several times faster than libgit2's status
//! (benches/worktrees.rs); a sparse worktree's files outside the cone (`skip-worktree`) are not
//! listed as deleted; read-only (`--no-optional-locks`: the index is not refreshed and locked,
//! so a `git commit` running at the same time there, an agent's or a verify command's, never
//! fails because of orch).

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
