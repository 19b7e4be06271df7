//! Opening repositories, and the small queries and helpers the rest of the module shares.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use git2::{BranchType, DiffOptions, ErrorCode, Oid, Repository, Signature};

use super::GitError;

pub(crate) use super::locate::open;
pub(crate) use super::retry::retry_locked;

/// The signature of commits orch makes: the configured user, else `orch <orch@localhost>`,
/// dated now ([`signature_now`]).
pub(crate) fn signature(repo: &Repository) -> Result<Signature<'static>, git2::Error> {
    let sig = repo
        .signature()
        .or_else(|_| Signature::now("orch", "orch@localhost"))?;
    match (sig.name(), sig.email()) {
        (Ok(name), Ok(email)) => signature_now(name, email),
        _ => Ok(sig),
    }
}

/// A signature dated now by the system clock. libgit2 dates its signatures with `time()`, which
/// reads the clock as of the kernel's last tick: just after a second begins it can still say
/// the second before, so a commit made after a status record (whose times come from the clock
/// itself) could look a second older than it, and a task's commit made for its completion would
/// not be known as such (`settle::commit_task`).
pub(crate) fn signature_now(name: &str, email: &str) -> Result<Signature<'static>, git2::Error> {
    let sig = Signature::now(name, email)?;
    let when = sig.when();
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or(when.seconds());
    Signature::new(
        name,
        email,
        &git2::Time::new(secs.max(when.seconds()), when.offset_minutes()),
    )
}

/// Whether `tip` has `other` in its history (or is it): their one merge base is `other`. An
/// error when they share more than [`super::bases::MAX_MERGE_BASES`] (a history too wide, which
/// libgit2's `graph_descendant_of` took minutes over).
pub(crate) fn contains(repo: &Repository, tip: Oid, other: Oid) -> Result<bool, git2::Error> {
    if tip == other {
        return Ok(true);
    }
    match super::bases::merge_bases_exact(repo, tip, other)? {
        Some(bases) => Ok(bases == [other]),
        None => Err(super::bases::too_wide(tip, other)),
    }
}

/// Parses a hex commit id.
pub(crate) fn parse_oid(oid: &str) -> Result<Oid, GitError> {
    let invalid = || GitError::InvalidOid {
        oid: oid.to_string(),
    };
    if oid.is_empty() || !oid.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    Oid::from_str(oid).map_err(|_| invalid())
}

/// Finds a local branch; `None` if there is none of that name.
pub(crate) fn find_branch<'r>(
    repo: &'r Repository,
    branch: &str,
) -> Result<Option<git2::Branch<'r>>, GitError> {
    match repo.find_branch(branch, BranchType::Local) {
        Ok(b) => Ok(Some(b)),
        Err(e) if matches!(e.code(), ErrorCode::NotFound | ErrorCode::InvalidSpec) => Ok(None),
        Err(source) => Err(GitError::ReadBranch {
            branch: branch.to_string(),
            source,
        }),
    }
}

/// The commit a local branch points at; `None` if the branch does not exist.
pub(crate) fn branch_commit<'r>(
    repo: &'r Repository,
    branch: &str,
) -> Result<Option<git2::Commit<'r>>, GitError> {
    let Some(b) = find_branch(repo, branch)? else {
        return Ok(None);
    };
    b.get()
        .peel_to_commit()
        .map(Some)
        .map_err(|source| GitError::ReadBranch {
            branch: branch.to_string(),
            source,
        })
}

/// The tip of branch `target`, which must exist ([`GitError::TargetMissing`]).
pub(crate) fn target_commit<'r>(
    repo: &'r Repository,
    target: &str,
) -> Result<git2::Commit<'r>, GitError> {
    branch_commit(repo, target)?.ok_or_else(|| GitError::TargetMissing {
        target: target.to_string(),
    })
}

/// Tip of a branch (hex), `None` if it does not exist.
pub(crate) fn branch_tip(repo_root: &Path, branch: &str) -> Result<Option<String>, GitError> {
    let repo = open(repo_root)?;
    Ok(branch_commit(&repo, branch)?.map(|c| c.id().to_string()))
}

/// Among commits on one line of history, the one that descends from all others (the latest);
/// `None` for empty input. If they are not on one line, the one with the most of the others as
/// ancestors (the first given of those tied).
pub(crate) fn latest_of(repo_root: &Path, oids: &[String]) -> Result<Option<String>, GitError> {
    let repo = open(repo_root)?;
    let mut seen = HashSet::new();
    let mut commits = Vec::new();
    for oid in oids {
        let id = parse_oid(oid)?;
        if !seen.insert(id) {
            continue;
        }
        let commit = repo
            .find_commit(id)
            .map_err(|source| GitError::ReadCommit {
                oid: oid.clone(),
                source,
            })?;
        commits.push(commit.id());
    }
    let mut best: Option<(Oid, usize)> = None;
    for &candidate in &commits {
        let mut ancestors = 0;
        for &other in &commits {
            if other != candidate
                && contains(&repo, candidate, other).map_err(|source| GitError::ReadCommit {
                    oid: candidate.to_string(),
                    source,
                })?
            {
                ancestors += 1;
            }
        }
        if best.is_none_or(|(_, n)| ancestors > n) {
            best = Some((candidate, ancestors));
        }
    }
    Ok(best.map(|(id, _)| id.to_string()))
}

/// Whether the file (or directory), relative to the repository root, in the main work dir differs
/// from its version at the tip of `target`: missing in target, modified, or untracked (ignored
/// files count) = `true`. A path missing both in target and on disk does not differ.
pub(crate) fn file_differs_from(
    repo_root: &Path,
    target: &str,
    rel: &Path,
) -> Result<bool, GitError> {
    let repo = open(repo_root)?;
    let commit = target_commit(&repo, target)?;
    let diff_error = |source| GitError::Diff {
        path: rel.to_path_buf(),
        target: target.to_string(),
        source,
    };
    let tree = commit.tree().map_err(diff_error)?;
    let mut opts = DiffOptions::new();
    opts.pathspec(rel)
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(true)
        .recurse_ignored_dirs(true)
        .include_typechange(true);
    let diff = repo
        .diff_tree_to_workdir(Some(&tree), Some(&mut opts))
        .map_err(diff_error)?;
    Ok(diff.deltas().len() > 0)
}

/// Appends the given repo-relative entries (e.g. `.orch/`) to `info/exclude` of the repository's
/// common dir (shared by all its worktrees) unless a line equal to the entry is already there;
/// when one lies in `.orch/`, that directory ignores itself too ([`ignore_own_dir`]).
pub(crate) fn ensure_excluded(repo_root: &Path, entries: &[String]) -> Result<(), GitError> {
    if entries.iter().any(|e| {
        e.trim_start_matches('/')
            .starts_with(crate::manifest::OWN_TOP_SLASH)
    }) {
        ignore_own_dir(repo_root)?;
    }
    let repo = open(repo_root)?;
    let path = repo.commondir().join("info").join("exclude");
    let exclude_error = |source| GitError::Exclude {
        path: path.clone(),
        source,
    };
    let existing = match crate::untrusted::read::text(&path, crate::untrusted::read::STATE) {
        Ok(s) => s,
        Err(e) if e.is_missing() => String::new(),
        Err(e) => return Err(exclude_error(e.into())),
    };
    let present: HashSet<&str> = existing.lines().map(str::trim).collect();
    let mut added = HashSet::new();
    let mut text = String::new();
    for entry in entries {
        let entry = entry.trim();
        if entry.is_empty() || present.contains(entry) || !added.insert(entry) {
            continue;
        }
        text.push_str(entry);
        text.push('\n');
    }
    if text.is_empty() {
        return Ok(());
    }
    if !existing.is_empty() && !existing.ends_with('\n') {
        text.insert(0, '\n');
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(exclude_error)?;
    }
    let mut file = crate::links::no_follow()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| crate::links::refused(&path, e))
        .map_err(exclude_error)?;
    file.write_all(text.as_bytes()).map_err(exclude_error)?;
    Ok(())
}

/// Writes `.orch/.gitignore` (`*`) under `repo_root` unless it holds that already: orch's own
/// directory ignores itself, whatever a tracked `.gitignore` says of it (`!/.orch/` overrides
/// `info/exclude`, not a `.gitignore` deeper down; red team 13 landed `!/.orch/**` and a
/// person's `git add -A` staged orch's state and logs). Never written through a link; the file
/// is orch's own path ([`crate::manifest::OWN_IGNORE`]), never committed nor landed.
pub(crate) fn ignore_own_dir(repo_root: &Path) -> Result<(), GitError> {
    let path = repo_root.join(crate::manifest::OWN_IGNORE);
    let exclude_error = |source| GitError::Exclude {
        path: path.clone(),
        source,
    };
    if crate::untrusted::read::optional(&path, crate::untrusted::read::STATE)
        .ok()
        .flatten()
        .is_some_and(|b| b == b"*\n")
    {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(exclude_error)?;
        crate::links::refuse_link(dir).map_err(exclude_error)?;
    }
    crate::links::write(&path, b"*\n").map_err(exclude_error)
}

/// The work dir of a repository, or its path for a bare one.
pub(crate) fn workdir_of(repo: &Repository) -> PathBuf {
    repo.workdir().unwrap_or_else(|| repo.path()).to_path_buf()
}

/// The work dir of the repository at (or above) `path`; `None` for a bare repository.
pub(crate) fn work_dir(path: &Path) -> Result<Option<PathBuf>, GitError> {
    Ok(open(path)?.workdir().map(Path::to_path_buf))
}
