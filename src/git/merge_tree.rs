//! Merges decided by git: `git merge-tree --write-tree` (git 2.38 or later), its tree and its
//! conflicted paths.
//!
//! libgit2's merge is not git's `ort` (libgit2 #7128): compared on real histories (the cases are
//! tests in `src/git/tests/merge_tree.rs`), it stops following inexact renames after 1,000 (a
//! modify/delete conflict where git merges cleanly), and it merges a file added to a directory
//! the other side renamed into the old directory, where git reports a conflict. So orch's merges
//! (a plan merged into its target, an upstream merge, the dry run and the preview, a conflict
//! report) are git's alone. Git works in a scratch repository whose object store borrows the
//! repository's (alternates): it never writes into the repository, nor reads its config (no
//! merge driver configured there runs), which `GIT_OBJECT_DIRECTORY` on the repository would.
//! The objects of a clean result are copied into the caller's object database only when asked
//! ([`Keep::Objects`]; in memory for the read-only handles of [`super::inspect::open_read_only`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use git2::{ObjectType, Oid, Repository};

use super::cli::GitTarget::GitDir;

/// What a conflict report says of two commits whose history is too wide to merge (more than
/// [`super::bases::MAX_MERGE_BASES`] merge bases), in place of the paths.
pub(crate) const TOO_WIDE: &str =
    "(no file: the two histories share more than 16 merge bases, which orch does not merge)";

/// The longest one `git merge-tree` run may take: git merges the merge bases of a criss-cross
/// history recursively, and a lattice of a few dozen commits with three merge bases (under
/// every other bound) doubled the time at each level (red team 14: 95 s at 18 levels, hours
/// at 24); past this the run is killed and the merge is an error (nothing lands, the console
/// says why: a person merges such a history with git).
pub(crate) const MERGE_DEADLINE: Duration = Duration::from_secs(30);

/// What merging two commits gives.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TreeMerge {
    /// The merged tree, without conflicts.
    Clean(Oid),
    /// The paths in conflict, sorted.
    Conflict(Vec<String>),
}

/// Whether a clean merge's new objects (its tree, merged blobs) are copied into the caller's
/// object database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keep {
    /// The tree will be read or committed.
    Objects,
    /// A question (conflicts? changes anything?): only the tree's id is compared.
    Nothing,
}

/// Merges `theirs` into `ours` as `git merge-tree --write-tree` does. An error when git cannot
/// answer (not installed, older than 2.38, failed).
pub(crate) fn merge_commits(
    repo: &Repository,
    ours: Oid,
    theirs: Oid,
    keep: Keep,
) -> Result<TreeMerge, git2::Error> {
    let run = run_merge_tree(repo, ours, theirs)?;
    match (run.code, run.tree) {
        (Some(0), Some(tree)) => {
            if keep == Keep::Objects {
                run.copy_objects(repo)?;
            }
            Ok(TreeMerge::Clean(tree))
        }
        (Some(1), Some(_)) => Ok(TreeMerge::Conflict(run.paths)),
        (None, _) => Err(git2::Error::from_str(&format!(
            "cannot merge {theirs} into {ours}: {}",
            run.stderr
        ))),
        _ => Err(git2::Error::from_str(&format!(
            "`git merge-tree --write-tree {ours} {theirs}` failed (git 2.38 or later is needed): {}",
            run.stderr
        ))),
    }
}

/// A merge that conflicts, as git leaves it: the tree with git's conflict markers in each
/// conflicted file (written into `repo`'s object database) and the conflicted paths, sorted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct MarkedConflict {
    pub(crate) tree: Oid,
    pub(crate) paths: Vec<String>,
}

/// `git merge-tree --write-tree` of `theirs` into `ours`, kept when it conflicts: the tree git
/// wrote with its conflict markers (for a resolver to work on) and the paths. `Ok(None)`: the
/// merge is clean, or git could not answer.
pub(crate) fn marked_conflict(
    repo: &Repository,
    ours: Oid,
    theirs: Oid,
) -> Result<Option<MarkedConflict>, git2::Error> {
    let run = run_merge_tree(repo, ours, theirs)?;
    match (run.code, run.tree) {
        (Some(1), Some(tree)) => {
            run.copy_objects(repo)?;
            Ok(Some(MarkedConflict {
                tree,
                paths: run.paths,
            }))
        }
        _ => Ok(None),
    }
}

/// A directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one run of `git merge-tree` in a scratch repository gave (`code` `None`: git did not
/// run, or was killed).
struct MergeTreeRun {
    scratch: Scratch,
    code: Option<i32>,
    tree: Option<Oid>,
    paths: Vec<String>,
    stderr: String,
}

impl MergeTreeRun {
    /// Copies the objects git wrote (the merged tree and its blobs) into `repo`.
    fn copy_objects(&self, repo: &Repository) -> Result<(), git2::Error> {
        let side = Repository::open_bare(&self.scratch.0)?;
        copy_loose(&self.scratch.0.join("objects"), &side.odb()?, &repo.odb()?)
    }
}

/// Runs `git merge-tree --write-tree` on two commits of `repo` in a scratch repository that
/// borrows `repo`'s objects.
fn run_merge_tree(repo: &Repository, ours: Oid, theirs: Oid) -> Result<MergeTreeRun, git2::Error> {
    // A history too wide (thousands of merge bases) is refused before git merges it.
    super::bases::check_merge_bases(repo, ours, theirs)?;
    let scratch = scratch_for(repo, &[ours, theirs])?;
    let args = "merge-tree --write-tree --name-only --no-messages -z".split(' ');
    let output = super::cli::command(GitDir(&scratch.0)).and_then(|mut c| {
        c.args(args).arg(ours.to_string()).arg(theirs.to_string());
        within(c, None, MERGE_DEADLINE)
    });
    let (code, stdout, stderr) = match output {
        Ok(out) => out,
        Err(e) => (None, Vec::new(), e.into_bytes()),
    };
    let mut fields = stdout.split(|b| *b == 0);
    let tree = fields
        .next()
        .and_then(|f| std::str::from_utf8(f).ok())
        .and_then(|s| Oid::from_str(s.trim()).ok());
    let paths: BTreeSet<String> = fields
        .filter(|f| !f.is_empty())
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    Ok(MergeTreeRun {
        scratch,
        code,
        tree,
        paths: paths.into_iter().collect(),
        stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
    })
}

/// A scratch repository whose object store borrows `repo`'s (alternates), holding the objects
/// of `commits` that only `repo`'s memory has (a dry run's virtual commits), where git sees them.
fn scratch_for(repo: &Repository, commits: &[Oid]) -> Result<Scratch, git2::Error> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // In this process's private directory (mode 0700, denied to every confined process, and
    // removed by the next start when a kill left it): the merged files git writes here are the
    // repository's, which another user of the machine must not read (red team 15 read them in
    // a world-readable `/tmp/orch-merge-tree-…`).
    let dir = crate::sandbox::tmp_root().join(format!(
        "merge-tree-{}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    // Made fresh at its predictable name: a link planted there is removed, never followed.
    crate::links::fresh_dir(&dir)
        .map_err(|e| git2::Error::from_str(&format!("cannot make `{}`: {e}", dir.display())))?;
    let scratch = Scratch(dir);
    let side = Repository::init_bare(&scratch.0)?;
    let objects = repo.commondir().join("objects");
    let objects = objects.canonicalize().unwrap_or(objects);
    // `init_bare` made `objects/info`.
    let alternates = scratch.0.join("objects/info/alternates");
    std::fs::write(alternates, format!("{}\n", objects.display()))
        .map_err(|e| git2::Error::from_str(&format!("cannot prepare a scratch repository: {e}")))?;
    let dst = side.odb()?;
    for &commit in commits {
        copy_missing(repo, &dst, commit)?;
    }
    Ok(scratch)
}

/// Whether each of `pairs` merges cleanly, as [`merge_commits`] with [`Keep::Nothing`] says it,
/// from one git process (`git merge-tree --stdin`, git 2.40 or later) in one scratch repository:
/// a conflict report of n plans asks n²/2 questions, a process each cost twice libgit2's merge
/// in memory at 20 plans. Without `--stdin`, one process a pair. A pair whose history is too
/// wide to merge ([`super::bases`]) is not asked: it conflicts, on [`TOO_WIDE`].
pub(crate) fn merge_many(
    repo: &Repository,
    pairs: &[(Oid, Oid)],
) -> Result<Vec<TreeMerge>, git2::Error> {
    let mut wide = Vec::with_capacity(pairs.len());
    for &(a, b) in pairs {
        wide.push(super::bases::check_merge_bases(repo, a, b).is_err());
    }
    if wide.iter().any(|w| *w) {
        let asked: Vec<(Oid, Oid)> = pairs
            .iter()
            .zip(&wide)
            .filter(|(_, w)| !**w)
            .map(|(p, _)| *p)
            .collect();
        let mut answers = merge_many(repo, &asked)?.into_iter();
        return Ok(wide
            .iter()
            .map(|w| match w {
                false => answers
                    .next()
                    .unwrap_or_else(|| TreeMerge::Conflict(vec![TOO_WIDE.to_string()])),
                true => TreeMerge::Conflict(vec![TOO_WIDE.to_string()]),
            })
            .collect());
    }
    let commits: BTreeSet<Oid> = pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
    let scratch = scratch_for(repo, &commits.into_iter().collect::<Vec<_>>())?;
    let input: String = pairs.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
    let args = "merge-tree --stdin --write-tree --name-only --no-messages -z".split(' ');
    let output = super::cli::command(GitDir(&scratch.0)).and_then(|mut c| {
        c.args(args);
        within(c, Some(input), MERGE_DEADLINE)
    });
    // Killed past the deadline: one of the pairs is a history git merges for too long; asked
    // one by one, that one fails (an error), the others answer.
    let parsed = output
        .ok()
        .filter(|(code, _, _)| *code == Some(0))
        .and_then(|(_, stdout, _)| parse_many(&stdout))
        .filter(|merges| merges.len() == pairs.len());
    match parsed {
        Some(merges) => Ok(merges),
        None => pairs
            .iter()
            .map(|&(a, b)| merge_commits(repo, a, b, Keep::Nothing))
            .collect(),
    }
}

/// A run's exit code (`None`: killed, or never ran), output and error output.
type Ran = (Option<i32>, Vec<u8>, Vec<u8>);

/// Runs `cmd` (its `stdin` given `input`, written by a thread: the pipe's buffer would fill at
/// thousands of lines), in a process group of its own, for at most `deadline`, or until orch
/// stops at once ([`super::cli::stopping`]): its exit code (`None` when killed), its output and
/// its error output (when killed, why).
fn within(
    mut cmd: std::process::Command,
    input: Option<String>,
    deadline: Duration,
) -> Result<Ran, String> {
    use std::io::Read as _;
    use std::os::unix::process::CommandExt as _;
    use std::process::Stdio;
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("cannot run git: {e}"))?;
    let stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let (Some(mut s), Some(input)) = (stdin, input) {
            let _ = std::io::Write::write_all(&mut s, input.as_bytes());
        }
    });
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut out);
            }
            out
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if start.elapsed() >= deadline || super::cli::stopping() => {
                crate::process::signal_group(child.id(), nix::sys::signal::Signal::SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
                let _ = writer.join();
                let _ = stdout.join();
                let _ = stderr.join();
                let why = if super::cli::stopping() {
                    "stopped: orch is stopping".to_string()
                } else {
                    format!(
                        "git merged for longer than {} s and was stopped (a history whose merge \
                         bases git merges recursively, level after level: a person merges it with git)",
                        deadline.as_secs()
                    )
                };
                return Ok((None, Vec::new(), why.into_bytes()));
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e.to_string());
            }
        }
    };
    let _ = writer.join();
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    Ok((code, out, err))
}

/// `git merge-tree --stdin -z`'s answers: for each merge, `1` (clean) or `0` (conflicts), the
/// tree, the conflicted paths, then an empty field. `None`: not that shape.
pub(super) fn parse_many(stdout: &[u8]) -> Option<Vec<TreeMerge>> {
    let mut fields = stdout.split(|b| *b == 0);
    let mut merges = Vec::new();
    while let Some(status) = fields.next().filter(|f| !f.is_empty()) {
        let tree = std::str::from_utf8(fields.next()?).ok()?;
        let tree = Oid::from_str(tree).ok()?;
        let mut paths = BTreeSet::new();
        for f in fields.by_ref().take_while(|f| !f.is_empty()) {
            paths.insert(String::from_utf8_lossy(f).into_owned());
        }
        merges.push(match status {
            b"1" => TreeMerge::Clean(tree),
            b"0" => TreeMerge::Conflict(paths.into_iter().collect()),
            _ => return None,
        });
    }
    Some(merges)
}

/// Copies `oid` and everything it reaches that `dst` lacks from `repo` into `dst`.
fn copy_missing(repo: &Repository, dst: &git2::Odb, oid: Oid) -> Result<(), git2::Error> {
    let src = repo.odb()?;
    let mut stack = vec![oid];
    while let Some(oid) = stack.pop() {
        if dst.exists(oid) {
            continue;
        }
        let obj = src.read(oid)?;
        match obj.kind() {
            ObjectType::Commit => {
                let commit = repo.find_commit(oid)?;
                stack.push(commit.tree_id());
                stack.extend(commit.parent_ids());
            }
            // Submodule entries name commits of another repository.
            ObjectType::Tree => stack.extend(
                repo.find_tree(oid)?
                    .iter()
                    .filter(|e| e.kind() != Some(ObjectType::Commit))
                    .map(|e| e.id()),
            ),
            _ => {}
        }
        dst.write(obj.kind(), obj.data())?;
    }
    Ok(())
}

/// Copies the loose objects git wrote under `objects` into `dst` (read through `via`, the
/// scratch repository's database).
fn copy_loose(objects: &Path, via: &git2::Odb, dst: &git2::Odb) -> Result<(), git2::Error> {
    let Ok(dirs) = std::fs::read_dir(objects) else {
        return Ok(());
    };
    for dir in dirs.flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        if name.len() != 2 || !name.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for f in files.flatten() {
            let hex = format!("{name}{}", f.file_name().to_string_lossy());
            let Ok(oid) = Oid::from_str(&hex) else {
                continue;
            };
            if dst.exists(oid) {
                continue;
            }
            let obj = via.read(oid)?;
            dst.write(obj.kind(), obj.data())?;
        }
    }
    Ok(())
}

/// What a path is in a tree: absent, a directory, or something else (a file, a link, a
/// submodule).
#[derive(PartialEq, Eq)]
enum Kind {
    Absent,
    Tree,
    Other,
}

fn kind(tree: &git2::Tree, path: &Path) -> Kind {
    match tree.get_path(path) {
        Err(_) => Kind::Absent,
        Ok(e) if e.kind() == Some(ObjectType::Tree) => Kind::Tree,
        Ok(_) => Kind::Other,
    }
}

/// The changes from `base` to `theirs` applied onto `ours`, as a new tree written into `repo`,
/// when no path they change was changed by `ours` (nor any directory above it made something
/// else): then every merge (git's `ort`, libgit2's) gives exactly this tree, with no conflict.
/// `None` otherwise: the caller merges the three trees.
///
/// A landing's cherry-pick of one task's commit onto the plan's tip is nearly always this case,
/// and it only reads the directories on the changed paths (`git2::build::TreeUpdateBuilder`),
/// where a merge of the three trees reads all of them: 0.2-0.5 s per landing at 100,000 files
/// (benches/worktrees.rs), while the next landings wait.
pub(crate) fn pick_onto(
    repo: &Repository,
    base: &git2::Tree,
    theirs: &git2::Tree,
    ours: &git2::Tree,
) -> Result<Option<Oid>, git2::Error> {
    let diff = repo.diff_tree_to_tree(Some(base), Some(theirs), None)?;
    let mut update = git2::build::TreeUpdateBuilder::new();
    for delta in diff.deltas() {
        let (old, new) = (delta.old_file(), delta.new_file());
        let Some(path) = new.path().or_else(|| old.path()) else {
            return Ok(None);
        };
        let entry = |t: &git2::Tree| t.get_path(path).ok().map(|e| (e.id(), e.filemode()));
        if entry(ours) != entry(base) {
            return Ok(None);
        }
        let mut above = path.parent();
        while let Some(dir) = above.filter(|d| !d.as_os_str().is_empty()) {
            if kind(ours, dir) != kind(base, dir) {
                return Ok(None);
            }
            above = dir.parent();
        }
        match delta.status() {
            git2::Delta::Added | git2::Delta::Modified | git2::Delta::Typechange => {
                update.upsert(path, new.id(), new.mode());
            }
            git2::Delta::Deleted => {
                update.remove(path);
            }
            _ => return Ok(None),
        }
    }
    update.create_updated(repo, ours).map(Some)
}

#[cfg(test)]
mod deadline_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A run past its deadline is killed, its whole process group, and says why; one within it
    /// gives its code and output.
    #[test]
    fn a_run_past_its_deadline_is_stopped_and_says_why() {
        let mut slow = crate::agent_env::command("sh");
        slow.args(["-c", "sleep 30 & sleep 30; echo never"]);
        let started = Instant::now();
        let (code, out, err) = within(slow, None, Duration::from_millis(200)).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(code, None);
        assert!(out.is_empty());
        assert!(
            String::from_utf8_lossy(&err).contains("longer than"),
            "{err:?}"
        );
        let mut quick = crate::agent_env::command("sh");
        quick.args(["-c", "cat; echo done >&2; exit 3"]);
        let (code, out, err) =
            within(quick, Some("in\n".to_string()), Duration::from_secs(30)).unwrap();
        assert_eq!(code, Some(3));
        assert_eq!(out, b"in\n");
        assert_eq!(err, b"done\n");
    }

    /// The scratch repository (where git writes the merged files) lies in a directory of this
    /// user's that no one else may enter, not open in the system's temporary directory; and
    /// it is gone once used.
    #[test]
    fn a_scratch_repository_is_this_users_alone() {
        use std::os::unix::fs::MetadataExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path()).unwrap();
        let s = scratch_for(&repo, &[]).unwrap();
        let path = s.0.clone();
        assert!(path.join("objects/info/alternates").is_file());
        let mut enclosed = false;
        for dir in path.ancestors().skip(1) {
            if dir == std::env::temp_dir() || dir == Path::new("/") {
                break;
            }
            let m = std::fs::symlink_metadata(dir).unwrap();
            enclosed |= m.uid() == nix::unistd::geteuid().as_raw() && m.mode() & 0o077 == 0;
        }
        assert!(enclosed, "{} lies in no private directory", path.display());
        drop(s);
        assert!(!path.exists(), "removed once used");
    }
}
