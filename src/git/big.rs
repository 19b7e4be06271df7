//! Files too large to take: the size of what a commit would stage, read before anything is
//! hashed, and of the blobs a branch would land, read from the object headers (never their
//! contents). An agent's 20 GiB sparse file (`truncate -s 20G`) costs orch an `lstat`, not the
//! minutes git would spend hashing it into the repository.

use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use git2::{ObjectType, Oid, Repository};

use crate::manifest::SizeLimits;

/// What is too large in a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TooLarge {
    /// Files over [`SizeLimits::file`]: their paths (relative to the root, `/`-separated) and
    /// apparent sizes, largest first, at most [`SHOWN`].
    Files {
        files: Vec<(String, u64)>,
        limit: u64,
    },
    /// All the changed files together over [`SizeLimits::change`].
    Change { total: u64, limit: u64 },
    /// More files than [`SizeLimits::files`].
    Count { files: u64, limit: u64 },
}

/// How many large files a refusal names.
const SHOWN: usize = 5;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Files { files, limit } => {
                let named: Vec<String> = files
                    .iter()
                    .map(|(p, s)| format!("`{}` ({})", p.escape_debug(), human(*s)))
                    .collect();
                write!(
                    f,
                    "file larger than the limit of {} (`max_file_size`): {}",
                    human(*limit),
                    named.join(", ")
                )
            }
            Self::Change { total, limit } => write!(
                f,
                "the changed files hold {} together, more than the limit of {} (`max_change_size`)",
                human(*total),
                human(*limit)
            ),
            Self::Count { files, limit } => write!(
                f,
                "the change touches {files} files, more than the limit of {limit} (`max_change_files`)"
            ),
        }
    }
}

/// `n` bytes as people read it: `20.0 GiB (21474836480 bytes)`.
pub(crate) fn human(n: u64) -> String {
    const UNITS: [(&str, u32); 3] = [("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (unit, shift) in UNITS {
        if n >= 1 << shift {
            let whole = n >> shift;
            let tenth = ((n - (whole << shift)) * 10) >> shift;
            return format!("{whole}.{tenth} {unit} ({n} bytes)");
        }
    }
    format!("{n} bytes")
}

/// The files of the work tree `worktree` that a `git add -A` would stage (untracked files git
/// does not ignore, modified ones; orch's own paths `own` left out, as the commit leaves them)
/// over `limits`, by their apparent size (`lstat`: nothing is read or hashed). `None`: within.
/// `Err` when the tree's state cannot be read (the commit is refused: fail closed).
pub(crate) fn too_large_in_worktree(
    worktree: &Path,
    own: &[String],
    limits: SizeLimits,
) -> Result<Option<TooLarge>, super::GitError> {
    Ok(worktree_change(&super::status::Dirt::new(worktree), own, limits)?.err())
}

/// [`too_large_in_worktree`] of the status `dirt` (read here unless it was), and when the
/// change is within `limits`, its size and number of files (`Ok((total, count))`: what the
/// commits of the same attempt add to).
pub(crate) fn worktree_change(
    dirt: &super::status::Dirt<'_>,
    own: &[String],
    limits: SizeLimits,
) -> Result<Result<(u64, u64), TooLarge>, super::GitError> {
    let worktree = dirt.dir();
    // What git's status would hash before it could tell that it changed: refused before git
    // runs. (Untracked files it lists without reading them: found over the limit below, as
    // every listed file is, by `lstat`.)
    let unhashed: Vec<(String, u64)> = large_unhashed(worktree, limits.file, Untracked::Left)?
        .iter()
        .map(|u| (u.shown(), u.size))
        .filter(|(p, _)| !crate::manifest::own_path(own, p))
        .collect();
    if !unhashed.is_empty() {
        return Ok(refusal(unhashed, (0, 0), limits).map_or(Ok((0, 0)), Err));
    }
    let state = dirt.state()?;
    let mut large: Vec<(String, u64)> = Vec::new();
    let mut total: u64 = 0;
    let mut count: u64 = 0;
    for path in state.changed.iter().chain(&state.untracked) {
        if crate::manifest::own_path(own, path.trim_end_matches('/')) {
            continue;
        }
        count += 1;
        // A deleted file holds nothing; a directory (a nested repository, refused elsewhere)
        // is not a file git hashes here.
        let Ok(meta) = std::fs::symlink_metadata(worktree.join(path)) else {
            continue;
        };
        if meta.is_dir() {
            continue;
        }
        let size = meta.len();
        total = total.saturating_add(size);
        if size > limits.file {
            large.push((path.clone(), size));
        }
    }
    Ok(refusal(large, (total, count), limits).map_or(Ok((total, count)), Err))
}

/// The change of the work tree `worktree` that a save would stage (every file `git status`
/// lists, orch's own too, but those over `limits.file`, which a save leaves out) when it is over
/// `limits.change` bytes together or `limits.files` files, by `lstat` (nothing read or hashed).
pub(crate) fn change_over(
    worktree: &Path,
    limits: SizeLimits,
) -> Result<Option<TooLarge>, super::GitError> {
    let state = super::status::status(worktree, None, super::status::Submodules::Ignored)?;
    let (mut total, mut count) = (0_u64, 0_u64);
    for path in state.paths() {
        let size = std::fs::symlink_metadata(worktree.join(&path))
            .ok()
            .filter(|m| !m.is_dir())
            .map_or(0, |m| m.len());
        if size > limits.file {
            continue;
        }
        count += 1;
        total = total.saturating_add(size);
    }
    Ok(refusal(Vec::new(), (total, count), limits))
}

/// A file over the limit that git could hash in a work tree before it can tell whether it
/// changed (see [`large_unhashed`]).
#[derive(Debug)]
pub(crate) struct Unhashed {
    /// Its path from the root, `/`-separated, as git names it (bytes: not always UTF-8).
    pub(crate) raw: Vec<u8>,
    /// Its apparent size (`lstat`).
    pub(crate) size: u64,
    /// Its index entry when it is tracked; `None` when it is untracked (and not ignored).
    pub(crate) entry: Option<git2::IndexEntry>,
}

impl Unhashed {
    /// Its path as shown (a name that is not UTF-8 in its lossy form).
    pub(crate) fn shown(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// Whether [`large_unhashed`] looks at the untracked files: `git add` hashes them (a save
/// stages the tree), `git status` lists them unread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Untracked {
    Found,
    Left,
}

/// The mode of a gitlink (a submodule's commit) in the index.
const GITLINK: u32 = 0o160_000;

/// The files of the work tree `worktree` over `limit` bytes that a `git status`, `git add` or
/// `git reset` there could hash, found without reading any content: the index's entries (read
/// by libgit2: path, size, flags) whose file on disk (`lstat`, never followed) is over the limit
/// and either `skip-worktree` (a sparse worktree's file outside its cone: git keeps no stat data
/// for it, clears the bit when the file is present and compares the content) or of another size
/// than the entry's (an entry without stat data, of size 0, is compared by content too); and the
/// untracked files git does not ignore (`git ls-files --others --exclude-standard`, names only).
///
/// The rule: nothing over the limits is ever hashed. A 3 GiB file an agent made at a tracked
/// path outside its cone cost every `git status` there 50 s (17 s a GiB).
pub(crate) fn large_unhashed(
    worktree: &Path,
    limit: u64,
    untracked: Untracked,
) -> Result<Vec<Unhashed>, super::GitError> {
    let repo = super::repo::open(worktree)?;
    let index = repo.index().map_err(|source| super::GitError::Status {
        path: worktree.to_path_buf(),
        source,
    })?;
    let over = |raw: &[u8]| -> Option<u64> {
        let meta = std::fs::symlink_metadata(worktree.join(std::ffi::OsStr::from_bytes(raw)));
        meta.ok()
            .filter(|m| m.is_file() && m.len() > limit)
            .map(|m| m.len())
    };
    let mut found = Vec::new();
    for entry in index.iter() {
        if entry.mode == GITLINK {
            continue;
        }
        let Some(size) = over(&entry.path) else {
            continue;
        };
        let skipped = entry.flags_extended & super::sparse::SKIP_WORKTREE != 0;
        if skipped || size != u64::from(entry.file_size) {
            found.push(Unhashed {
                raw: entry.path.clone(),
                size,
                entry: Some(entry),
            });
        }
    }
    if untracked == Untracked::Left {
        return Ok(found);
    }
    let untracked = super::cli::run_in(
        worktree,
        &["ls-files", "-z", "--others", "--exclude-standard"],
    )?;
    for raw in untracked.split(|&b| b == 0).filter(|p| !p.is_empty()) {
        if let Some(size) = over(raw) {
            found.push(Unhashed {
                raw: raw.to_vec(),
                size,
                entry: None,
            });
        }
    }
    Ok(found)
}

impl TooLarge {
    /// The refusal of a change of `count` files holding `total` bytes together (those of `large`
    /// left out), `large` its files over `limits.file`, if any.
    pub(crate) fn of_change(
        large: Vec<(String, u64)>,
        (total, count): (u64, u64),
        limits: SizeLimits,
    ) -> Option<Self> {
        refusal(large, (total, count), limits)
    }
}

/// The refusal of a change: its files over `limits.file` first, then its size (`total`) over
/// `limits.change`, then its number of files (`count`) over `limits.files`.
fn refusal(
    mut large: Vec<(String, u64)>,
    (total, count): (u64, u64),
    limits: SizeLimits,
) -> Option<TooLarge> {
    if !large.is_empty() {
        large.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        large.truncate(SHOWN);
        return Some(TooLarge::Files {
            files: large,
            limit: limits.file,
        });
    }
    if total > limits.change {
        return Some(TooLarge::Change {
            total,
            limit: limits.change,
        });
    }
    (count > limits.files).then_some(TooLarge::Count {
        files: count,
        limit: limits.files,
    })
}

/// The blobs over `limits.file` bytes that the commits of `tip` not reachable from `base`
/// (`None`: all of its history) bring, each with a path it has there, or all the blobs they
/// bring together over `limits.change`, by the sizes in the object headers (libgit2's
/// `read_header`: no blob is read); a commit object over `limits.file` (its message) counts as
/// such a file. `None`: none.
pub(crate) fn large_blobs_between(
    repo_dir: &Path,
    base: Option<&str>,
    tip: &str,
    limits: SizeLimits,
) -> Result<Option<TooLarge>, String> {
    large_blobs_after(repo_dir, (base, tip), limits, (0, 0))
}

/// [`large_blobs_between`] of commits that come with `already` (bytes, files) of the same
/// change (the attempt's work left in its worktree): the change is held to `limits` as a whole.
pub(crate) fn large_blobs_after(
    repo_dir: &Path,
    (base, tip): (Option<&str>, &str),
    limits: SizeLimits,
    already: (u64, u64),
) -> Result<Option<TooLarge>, String> {
    let repo = super::open(repo_dir).map_err(|e| e.to_string())?;
    let read = |e: git2::Error| format!("cannot read the commits of `{tip}`: {e}");
    let tip = repo
        .revparse_single(tip)
        .and_then(|o| o.peel_to_commit())
        .map_err(read)?
        .id();
    let base = base
        .map(|b| {
            repo.revparse_single(b)
                .and_then(|o| o.peel_to_commit())
                .map(|c| c.id())
        })
        .transpose()
        .map_err(read)?;
    large_blobs(&repo, (base, tip), limits, already).map_err(read)
}

/// The large blobs (see [`large_blobs_between`]) that `branch` brings to `target` since it
/// left it (their merge base).
/// The most commits a landing examines on a plan's branch (since it left its target): each is
/// read for the blobs, git directories and protected files it brings, so a branch of more
/// (red team 15: 300,000 small commits, 71 s of a dry run before any merge) is refused first.
pub(crate) const LANDING_COMMITS: usize = 20_000;

/// How many commits `branch` has that `target` lacks, counted up to `cap` and one more: `None`
/// within `cap`, else `Some(cap + 1)` ("more than `cap`"); the walk stops there, whatever the
/// history's length.
pub(crate) fn commits_past(
    repo_dir: &Path,
    target: &str,
    branch: &str,
    cap: usize,
) -> Result<Option<usize>, String> {
    let repo = super::open(repo_dir).map_err(|e| e.to_string())?;
    let Some(tip) = super::repo::branch_commit(&repo, branch).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let mut walk = repo.revwalk().map_err(|e| e.to_string())?;
    walk.push(tip.id()).map_err(|e| e.to_string())?;
    if let Some(t) = super::repo::branch_commit(&repo, target).map_err(|e| e.to_string())? {
        walk.hide(t.id()).map_err(|e| e.to_string())?;
    }
    let mut n = 0;
    for oid in walk {
        oid.map_err(|e| format!("cannot read the commits of `{branch}`: {e}"))?;
        n += 1;
        if n > cap {
            return Ok(Some(n));
        }
    }
    Ok(None)
}

pub(crate) fn large_blobs_since_fork(
    repo_dir: &Path,
    target: &str,
    branch: &str,
    limit: u64,
) -> Result<Option<TooLarge>, String> {
    let repo = super::open(repo_dir).map_err(|e| e.to_string())?;
    let Some(tip) = super::repo::branch_commit(&repo, branch).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let base = match super::repo::branch_commit(&repo, target).map_err(|e| e.to_string())? {
        Some(t) => Some(
            super::bases::merge_base(&repo, t.id(), tip.id())
                .map_err(|e| format!("cannot read where `{branch}` left `{target}`: {e}"))?,
        ),
        None => None,
    };
    large_blobs(
        &repo,
        (base, tip.id()),
        SizeLimits::file_only(limit),
        (0, 0),
    )
    .map_err(|e| format!("cannot read the commits of `{branch}`: {e}"))
}

fn large_blobs(
    repo: &Repository,
    (base, tip): (Option<Oid>, Oid),
    limits: SizeLimits,
    (mut total, mut count): (u64, u64),
) -> Result<Option<TooLarge>, git2::Error> {
    use super::tree_change::{Step, walk as walk_change};
    use std::ops::ControlFlow;
    let limit = limits.file;
    // A first-parent chain of more commits than `max_change_files` since the base is refused
    // before anything else is read (red team 10: a chain of a million empty commits cost 59 s
    // and 939 MB): each commit is an entry of the change. Followed by first parents, at most
    // that many. Any other shape is stopped by the walk below at the same count.
    if let Some(b) = base {
        let mut at = repo.find_commit(tip)?;
        let mut steps: u64 = 0;
        while at.id() != b {
            steps += 1;
            if count.saturating_add(steps) > limits.files {
                return Ok(refusal(
                    Vec::new(),
                    (total, count.saturating_add(steps)),
                    limits,
                ));
            }
            match at.parent(0) {
                Ok(p) => at = p,
                Err(_) => break,
            }
        }
    }
    // The range's commits one at a time, loading no more than are looked at (libgit2's walk
    // with a hidden base loads every commit first: red team 11's merge of a side chain of a
    // million commits).
    // Each parent a commit names counts as an entry too (an octopus of a million parents, a
    // mesh of merges naming thousands each: red team 12).
    let mut walk = super::since::Since::new(repo, tip, base, limits.files.saturating_sub(count))?;
    let odb = repo.odb()?;
    // The trees counted, and the blobs named as too large, each once.
    let mut seen = std::collections::HashSet::new();
    let mut sizes: std::collections::HashMap<Oid, (u64, ObjectType)> =
        std::collections::HashMap::new();
    let mut large: Vec<(String, u64)> = Vec::new();
    for id in walk.by_ref() {
        let id = id?;
        // A commit's own object (its message) is as large as the agent makes it.
        // Each commit object counts towards `max_change_size` (its message: thirty messages of
        // 900 KB each under a `max_file_size` of 1 MiB landed 27 MB, red team 10) and as one
        // entry towards `max_change_files` (a chain of a million empty commits is a change of a
        // million entries: walked until the limit, not to its end).
        let (size, _) = odb.read_header(id)?;
        total = total.saturating_add(size as u64);
        count = count.saturating_add(1);
        if size as u64 > limit {
            large.push((format!("(the message of commit {id})"), size as u64));
        }
        if count > limits.files || total > limits.change {
            break;
        }
        let commit = repo.find_commit(id)?;
        let parent = commit.parent(0).ok().map(|p| p.tree_id());
        // Only what differs from the first parent: every blob the range brings is new in one
        // of its commits (a merge's other side is walked too). Every path counts whole, as the
        // checkout it makes: twenty copies of one blob (one tree shared by a thousand
        // directories) are twenty (a thousand) files on disk. The walk stops once the change
        // is over the limits (red team 9: a plumbing-made commit of a million paths).
        let flow = walk_change(repo, (parent, Some(commit.tree_id())), &mut |step| {
            let mut header = |oid: Oid| -> Result<(u64, ObjectType), git2::Error> {
                if let Some(known) = sizes.get(&oid) {
                    return Ok(*known);
                }
                let (size, kind) = odb.read_header(oid)?;
                sizes.insert(oid, (size as u64, kind));
                Ok((size as u64, kind))
            };
            match step {
                Step::Gone => count = count.saturating_add(1),
                Step::TooDeep(path) => large.push((
                    format!(
                        "(a path of {} bytes or more, past Linux's {}, of commit {id}: {}…)",
                        path.len(),
                        super::tree_change::PATH_MAX,
                        String::from_utf8_lossy(&path[..200])
                    ),
                    path.len() as u64,
                )),
                Step::Tree(dir, oid) => {
                    if seen.insert(oid) {
                        let (size, _) = header(oid)?;
                        total = total.saturating_add(size);
                        if size > limit {
                            let shown = if dir.is_empty() {
                                ".".to_string()
                            } else {
                                String::from_utf8_lossy(dir).into_owned()
                            };
                            large.push((format!("(the directory {shown} of commit {id})"), size));
                        }
                    }
                }
                Step::File(path, oid, mode) => {
                    count = count.saturating_add(1);
                    // A gitlink names a commit of another repository: nothing here to read.
                    if mode != i32::from(git2::FileMode::Commit) {
                        let (size, kind) = header(oid)?;
                        if kind == ObjectType::Blob {
                            total = total.saturating_add(size);
                            if size > limit && seen.insert(oid) {
                                large.push((String::from_utf8_lossy(path).into_owned(), size));
                            }
                        }
                    }
                }
            }
            let over = large.len() >= SHOWN || count > limits.files || total > limits.change;
            Ok(if over {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })?;
        if flow.is_break() {
            break;
        }
    }
    if walk.over {
        // More parents than entries left: over `max_change_files` by them alone.
        count = count.max(limits.files.saturating_add(1));
    }
    Ok(refusal(large, (total, count), limits))
}

/// The tree objects over `limit` bytes among those of `tree` that `diff` (to `tree`) changed:
/// the root's and those of the directories its added or changed files lie in, each read by its
/// object header only, each object once (`seen`). A directory of 300,000 entries is a tree of
/// 28 MB, a file in all but name: it is held to `max_file_size` like one. Paths as shown,
/// `/`-separated (`.` the root). With them, the sizes of all those trees not seen before together
/// (what the change brings in trees, counted towards `max_change_size`).
fn new_trees(
    odb: &git2::Odb<'_>,
    tree: &git2::Tree<'_>,
    diff: &git2::Diff<'_>,
    limit: u64,
    seen: &mut std::collections::HashSet<Oid>,
) -> Result<(Vec<(String, u64)>, u64), git2::Error> {
    let mut large = Vec::new();
    let mut bytes: u64 = 0;
    let mut dirs: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    let mut check = |oid: Oid, shown: &[u8], large: &mut Vec<(String, u64)>| {
        if !seen.insert(oid) {
            return Ok(());
        }
        let (size, kind) = odb.read_header(oid)?;
        if kind == ObjectType::Tree {
            bytes = bytes.saturating_add(size as u64);
            if size as u64 > limit {
                large.push((String::from_utf8_lossy(shown).into_owned(), size as u64));
            }
        }
        Ok::<(), git2::Error>(())
    };
    check(tree.id(), b".", &mut large)?;
    for delta in diff.deltas() {
        let file = delta.new_file();
        if file.id().is_zero() {
            continue;
        }
        let Some(path) = file.path_bytes() else {
            continue;
        };
        // Every directory above the file, nearest the root first; one seen before (a sibling's)
        // has had its ancestors looked at too.
        for (at, _) in path.iter().enumerate().filter(|(_, b)| **b == b'/') {
            let dir = &path[..at];
            if !dirs.insert(dir.to_vec()) {
                continue;
            }
            let entry = tree.get_path(Path::new(std::ffi::OsStr::from_bytes(dir)))?;
            check(entry.id(), dir, &mut large)?;
        }
    }
    Ok((large, bytes))
}

/// What is too large in the change `diff` (to `tree`) by `limits`: the blobs it adds or changes
/// and the trees of `tree` it changed over `limits.file`; its new blobs and trees together over
/// `limits.change`; its files (deltas) over `limits.files`. By the sizes in the object headers
/// (none read). `None`: within.
pub(super) fn large_in_diff(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    diff: &git2::Diff<'_>,
    limits: SizeLimits,
) -> Result<Option<TooLarge>, git2::Error> {
    if limits == SizeLimits::file_only(u64::MAX) {
        return Ok(None);
    }
    let odb = repo.odb()?;
    let (trees, mut total) = new_trees(
        &odb,
        tree,
        diff,
        limits.file,
        &mut std::collections::HashSet::new(),
    )?;
    let mut large: Vec<(String, u64)> = trees
        .into_iter()
        .map(|(dir, size)| (format!("(the directory {dir})"), size))
        .collect();
    for delta in diff.deltas() {
        let file = delta.new_file();
        if file.id().is_zero() || file.mode() == git2::FileMode::Commit {
            continue;
        }
        let (size, kind) = odb.read_header(file.id())?;
        if kind != ObjectType::Blob {
            continue;
        }
        total = total.saturating_add(size as u64);
        if size as u64 > limits.file {
            let path = file
                .path_bytes()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default();
            large.push((path, size as u64));
        }
    }
    Ok(refusal(large, (total, diff.deltas().len() as u64), limits))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{commits_past, human};

    /// A repository with `main` (2 commits) and `plan/p` forked from its first, `n` commits on
    /// it, one of them merging a side line of 3 more.
    fn history(n: usize) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(tmp.path()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let tree = repo
            .find_tree(repo.treebuilder(None).unwrap().write().unwrap())
            .unwrap();
        let commit = |parents: &[&git2::Commit<'_>], msg: &str| {
            let id = repo.commit(None, &sig, &sig, msg, &tree, parents).unwrap();
            repo.find_commit(id).unwrap()
        };
        let root = commit(&[], "root");
        let main = commit(&[&root], "main");
        repo.branch("main", &main, true).unwrap();
        let mut tip = root.clone();
        let mut side = root.clone();
        for i in 0..3 {
            side = commit(&[&side], &format!("side {i}"));
        }
        // `n` commits of the plan's own: the merge of the side line counts as one, its 3 too.
        for i in 0..n.saturating_sub(4) {
            tip = commit(&[&tip], &format!("p {i}"));
        }
        if n >= 4 {
            tip = commit(&[&tip, &side], "merge side");
        }
        repo.branch("plan/p", &tip, true).unwrap();
        tmp
    }

    #[test]
    fn a_long_history_is_counted_only_to_one_past_the_cap() {
        for (n, cap, want) in [
            (10, 10, None),
            (11, 10, Some(11)),
            (500, 10, Some(11)),
            (4, 3, Some(4)),
            (4, 4, None),
            (0, 1, None),
        ] {
            let repo = history(n);
            assert_eq!(
                commits_past(repo.path(), "main", "plan/p", cap).unwrap(),
                want,
                "{n} commits, cap {cap}"
            );
        }
        let repo = history(3);
        assert_eq!(
            commits_past(repo.path(), "main", "plan/none", 1).unwrap(),
            None
        );
    }

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(2 << 20), "2.0 MiB (2097152 bytes)");
        assert_eq!(human(20 << 30), "20.0 GiB (21474836480 bytes)");
        assert_eq!(human(1536), "1.5 KiB (1536 bytes)");
    }
}
