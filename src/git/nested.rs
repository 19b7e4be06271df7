//! Nested repositories in a worktree an agent wrote: a `.git` (directory, file or link) below
//! its root, a git directory under any other name (a bare repository: [`is_git_dir`]), or a
//! gitlink its changes add, that the main checkout does not declare as a submodule.
//!
//! git takes a directory for a repository when it finds it, walking up from where it runs,
//! either as its `.git` or as a git directory itself: a `HEAD` (a file or a link) and either a
//! `commondir` file or both `objects` and `refs` (git's `is_git_directory`, `setup.c`). So a
//! `vendor/cache/` holding `HEAD`, `config`, `objects/` and `refs/` is a repository to any git
//! run inside it, its `config` read (`core.fsmonitor`) as a `.git`'s is. orch decides from the
//! names alone (it reads no `HEAD`): a directory holding a file named `HEAD` but neither
//! `commondir` nor `objects` and `refs` is an ordinary one.
//!
//! git reads the configuration of a repository nested in the work tree it stages: `git add -A`
//! runs a `git status` of its own inside each gitlink that holds a `.git`, and that status runs
//! the nested repository's filter drivers, its `core.fsmonitor`, what its config names. orch's
//! `-c` settings turn off the settings they name, never every driver of a config it does not
//! know. So a worktree with a nested repository is never staged: [`check`] walks the work tree
//! (every directory, ignored ones included, links never followed) before orch's git stages it,
//! and a commit whose tree adds an undeclared gitlink is not made ([`new_gitlinks`]). The only
//! `.git` allowed below the root is that of orch's own submodule checkouts
//! ([`super::submodules::own_checkouts`]), put back from orch's records before git reads them.
//!
//! The main work tree (the user's own checkout, which holds orch's worktrees) is not walked:
//! no agent writes it.

use std::path::{Path, PathBuf};

use super::GitError;

/// How many nested repositories a refusal names (the walk goes on to the end only when none is
/// found).
const NAMED: usize = 10;

/// The files of its own git opens in a work tree as it reads it (ignore rules, attributes, the
/// submodules' list, the mail map). One of them that is a FIFO, a socket or a device blocks
/// git in its `open` (red team 14: a FIFO `sub/.gitignore` hung every git run there, the task
/// never settled, `orch up` did not stop): the walk finds them as it finds a nested `.git`.
const READ_BY_GIT: [&str; 4] = [".gitignore", ".gitattributes", ".gitmodules", ".mailmap"];

/// Whether `rel` (a path [`walk`] found) names one of git's own files ([`READ_BY_GIT`]): a
/// special file there, not a repository.
pub(crate) fn is_special_git_file(rel: &str) -> bool {
    READ_BY_GIT.contains(&rel.rsplit('/').next().unwrap_or(rel))
}

/// `Err(GitError::Nested)` naming the FIFOs, sockets and devices at git's own files in the
/// linked worktree `worktree` ([`READ_BY_GIT`]), before a git run there reads it; `Ok` for a
/// main work tree (no agent writes it).
pub(crate) fn refuse_special(worktree: &Path) -> Result<(), GitError> {
    refuse_found(worktree, &is_special_git_file)
}

/// `Err(GitError::Nested)` naming the nested repositories of `worktree` (the `.git` entries
/// below its root other than those of orch's submodule checkouts, and the git directories by
/// another name, [`is_git_dir`], its root too); `Ok` when there are none or
/// `worktree` is a main work tree. A directory that cannot be read fails the check (closed).
pub(crate) fn check(worktree: &Path) -> Result<(), GitError> {
    refuse_found(worktree, &|_| true)
}

/// `Err(GitError::Nested)` naming what [`walk`] finds in the linked worktree `worktree` that
/// `keep` keeps; `Ok` when nothing, or for a main work tree.
fn refuse_found(worktree: &Path, keep: &dyn Fn(&str) -> bool) -> Result<(), GitError> {
    let loc = super::locate::locate(worktree)?;
    if !loc.linked {
        return Ok(());
    }
    let found = walk(
        &loc.work_tree,
        &super::submodules::own_checkouts(worktree),
        keep,
    )?;
    if found.is_empty() {
        Ok(())
    } else {
        Err(GitError::Nested {
            path: loc.work_tree,
            found,
        })
    }
}

/// The `.git` entries below `root` (not `root/.git`), `/`-separated from the root, except those
/// of the checkouts at `allowed`, and the directories that are git directories by another name
/// ([`is_git_dir`]; `.` for `root` itself), and the FIFOs, sockets and devices at git's own
/// files ([`READ_BY_GIT`]): those `keep` keeps, at most [`NAMED`] (so a search for one kind is not
/// cut short by many of another).
///
/// A directory is read only when it changed since a walk of this process last read it: its
/// entries are kept with its change time (`ctime`, which no process can set back, as it can
/// `mtime`) and inode, and kept only when that change was more than a second before the read,
/// so that an entry made in the same clock tick as the read is never missed. A walk of a tree
/// that did not change stats each directory once (a task's commit walks its tree twice: the
/// check before the commit, and staging's).
fn walk(
    root: &Path,
    allowed: &[String],
    keep: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>, GitError> {
    let mut found = Vec::new();
    let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Some(listing) = listing(&dir)? else {
            continue;
        };
        let child = |name: &std::ffi::OsStr| {
            if rel.is_empty() {
                name.to_string_lossy().into_owned()
            } else {
                format!("{rel}/{}", name.to_string_lossy())
            }
        };
        // Whether the walk has named enough.
        let mut add = |p: String| {
            if keep(&p) {
                found.push(p);
            }
            found.len() >= NAMED
        };
        // The root's own `.git`, and orch's submodule checkouts' (put back by orch).
        if listing.git
            && !rel.is_empty()
            && !allowed.contains(&rel)
            && add(child(std::ffi::OsStr::new(".git")))
        {
            return Ok(found);
        }
        // A git directory by another name: the directory itself; the root too (`.`): its own
        // `.git` is found first in this checkout, but not in a copy of its files.
        if listing.bare
            && add(if rel.is_empty() {
                ".".to_string()
            } else {
                rel.clone()
            })
        {
            return Ok(found);
        }
        for name in &listing.special {
            if add(child(name)) {
                return Ok(found);
            }
        }
        for name in &listing.dirs {
            stack.push((dir.join(name), child(name)));
        }
    }
    found.sort();
    Ok(found)
}

/// What a walk needs of a directory: whether it holds a `.git` (of any kind), whether it is a
/// git directory itself ([`is_git_dir`]), and its subdirectories (links not followed), with the
/// change time and inode it had when read.
#[derive(Clone)]
struct Listing {
    stamp: (i64, i64, u64),
    git: bool,
    bare: bool,
    dirs: Vec<std::ffi::OsString>,
    /// Its entries named as git's own files ([`READ_BY_GIT`]) that are FIFOs, sockets or devices.
    special: Vec<std::ffi::OsString>,
}

/// Whether a directory whose entries are these is one git takes for a git directory when it
/// looks for a repository (git's `is_git_directory`, from the names alone): a `HEAD` that is not
/// a directory (git reads a file or a link there), and a `commondir` (git looks for `objects`
/// and `refs` where it points), or both `objects` and `refs` (of any kind: git asks only that
/// it may enter them, which an executable file or a link passes as well).
fn is_git_dir(head_not_dir: bool, has: impl Fn(&str) -> bool) -> bool {
    head_not_dir && (has("commondir") || (has("objects") && has("refs")))
}

/// The directories read by walks, and their [`Listing`]s.
static READ: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<PathBuf, Listing>>> =
    std::sync::OnceLock::new();

/// The [`Listing`] of `dir`: kept from an earlier walk when the directory did not change since
/// (see [`walk`]), else read. `None` when it is gone (removed while walked, an agent of the plan
/// still writing; or the worktree itself, which an agent deleted: nothing is nested in it, and
/// what uses it next fails naming it).
fn listing(dir: &Path) -> Result<Option<Listing>, GitError> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(unreadable(dir, source)),
    };
    let stamp = (meta.ctime(), meta.ctime_nsec(), meta.ino());
    let read = READ.get_or_init(Default::default);
    if let Some(kept) = read.lock().ok().and_then(|m| m.get(dir).cloned())
        && kept.stamp == stamp
    {
        return Ok(Some(kept));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(unreadable(dir, source)),
    };
    let mut listing = Listing {
        stamp,
        git: false,
        bare: false,
        dirs: Vec::new(),
        special: Vec::new(),
    };
    // The names git's `is_git_directory` looks at, as seen here.
    let (mut head, mut common, mut objects, mut refs) = (false, false, false, false);
    for entry in entries {
        let entry = entry.map_err(|source| unreadable(dir, source))?;
        let name = entry.file_name();
        if name == ".git" {
            listing.git = true;
            continue;
        }
        // `DirEntry::file_type` does not follow a link: a link to a directory is a leaf.
        let kind = match entry.file_type() {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(unreadable(&entry.path(), source)),
        };
        let is_dir = kind.is_dir();
        if !is_dir
            && !kind.is_file()
            && !kind.is_symlink()
            && READ_BY_GIT
                .iter()
                .any(|n| name.as_encoded_bytes() == n.as_bytes())
        {
            listing.special.push(name.clone());
        }
        match name.as_encoded_bytes() {
            b"HEAD" => head = !is_dir,
            b"commondir" => common = true,
            b"objects" => objects = true,
            b"refs" => refs = true,
            _ => {}
        }
        if is_dir {
            listing.dirs.push(name);
        }
    }
    listing.bare = is_git_dir(head, |n| match n {
        "commondir" => common,
        "objects" => objects,
        "refs" => refs,
        _ => false,
    });
    if stamp.0 < now - 1
        && let Ok(mut m) = read.lock()
    {
        m.insert(dir.to_path_buf(), listing.clone());
    }
    Ok(Some(listing))
}

fn unreadable(path: &Path, source: std::io::Error) -> GitError {
    GitError::ReadWorktrees {
        path: path.to_path_buf(),
        source,
    }
}

/// The gitlinks `new` adds over `old` (a tree orch is about to commit and its parent's, or a
/// branch's tip and where its work started) at paths that are not submodules the main checkout
/// declares for `worktree`: a gitlink that was not one before, at a path the main checkout does
/// not declare. A diff of the two trees, which descends only into the directories that differ.
pub(crate) fn new_gitlinks(
    repo: &git2::Repository,
    worktree: &Path,
    old: Option<&git2::Tree<'_>>,
    new: &git2::Tree<'_>,
) -> Result<Vec<String>, git2::Error> {
    let diff = repo.diff_tree_to_tree(old, Some(new), None)?;
    let mut added: Vec<String> = diff
        .deltas()
        .filter(|d| {
            d.new_file().mode() == git2::FileMode::Commit
                && d.old_file().mode() != git2::FileMode::Commit
        })
        .filter_map(|d| {
            d.new_file()
                .path()
                .map(|p| p.to_string_lossy().into_owned())
        })
        .collect();
    if added.is_empty() {
        return Ok(added);
    }
    let declared = super::submodules::declared_paths(worktree);
    added.retain(|p| !declared.contains(p));
    Ok(added)
}

/// Refuses a commit of `tree` whose gitlinks the main checkout does not declare (an agent's
/// repository staged as a gitlink, or one left in the index), or that adds a git directory
/// under any name (a bare repository's `HEAD`, `objects/`, `refs/` put in the index, which the
/// walk of the work tree does not see when the files are gone from it): the gitlinks (and those
/// directories' `HEAD`) are taken out of the index again (libgit2: no git run reads them) and
/// nothing is committed.
pub(super) fn refuse_new(
    repo: &git2::Repository,
    worktree: &Path,
    parent: Option<&git2::Tree<'_>>,
    tree: &git2::Tree<'_>,
) -> Result<(), GitError> {
    let mut found =
        new_gitlinks(repo, worktree, parent, tree).map_err(GitError::committing(worktree))?;
    let dirs = new_git_dirs(repo, parent, tree).map_err(GitError::committing(worktree))?;
    if found.is_empty() && dirs.is_empty() {
        return Ok(());
    }
    if let Ok(mut index) = repo.index() {
        let _ = index.read(true);
        for p in &found {
            let _ = index.remove_path(Path::new(p));
        }
        for d in &dirs {
            let _ = index.remove_path(&Path::new(d).join("HEAD"));
        }
        let _ = index.write();
    }
    found.extend(dirs);
    Err(GitError::Nested {
        path: worktree.to_path_buf(),
        found,
    })
}

/// The git directories by any name ([`is_git_dir`], the root's own entries too: `.`) that `new` has and `old` did
/// not have at the same path: a tree orch is about to commit and its parent's, or a branch's tip
/// and where its work started. Only the directories above a changed path are looked at (a diff
/// of the two trees descends only into the directories that differ), and only their entries'
/// names and modes: no blob is read.
pub(crate) fn new_git_dirs(
    repo: &git2::Repository,
    old: Option<&git2::Tree<'_>>,
    new: &git2::Tree<'_>,
) -> Result<Vec<String>, git2::Error> {
    let diff = repo.diff_tree_to_tree(old, Some(new), None)?;
    let mut dirs = std::collections::BTreeSet::new();
    for d in diff.deltas() {
        let Some(path) = d.new_file().path() else {
            continue;
        };
        // Every directory above it, the root (``) included.
        let mut up = path.parent();
        while let Some(dir) = up {
            if !dirs.insert(dir.to_path_buf()) {
                break;
            }
            up = dir.parent();
        }
    }
    let mut found = Vec::new();
    for dir in dirs {
        if tree_is_git_dir(repo, new, &dir)?
            && !old.is_some_and(|o| tree_is_git_dir(repo, o, &dir).unwrap_or(false))
        {
            found.push(if dir.as_os_str().is_empty() {
                ".".to_string()
            } else {
                dir.to_string_lossy().into_owned()
            });
            if found.len() >= NAMED {
                break;
            }
        }
    }
    Ok(found)
}

/// The git directories by any name ([`new_git_dirs`]) that `branch` brings to `target` since it
/// left it (their merge base): a landing of `branch` would write them into the target's work
/// tree, where any git run inside one reads its config. (A gitlink lands as an empty
/// directory: nothing of the agent's is read there.) Empty when `branch` does not exist.
pub(crate) fn git_dirs_since_fork(
    repo_dir: &Path,
    target: &str,
    branch: &str,
) -> Result<Vec<String>, String> {
    let repo = super::open(repo_dir).map_err(|e| e.to_string())?;
    let Some(tip) = super::repo::branch_commit(&repo, branch).map_err(|e| e.to_string())? else {
        return Ok(Vec::new());
    };
    let read = |e: git2::Error| format!("cannot read the trees of `{branch}`: {e}");
    let base = match super::repo::branch_commit(&repo, target).map_err(|e| e.to_string())? {
        Some(t) => {
            let id = super::bases::merge_base(&repo, t.id(), tip.id())
                .map_err(|e| format!("cannot read where `{branch}` left `{target}`: {e}"))?;
            Some(repo.find_commit(id).and_then(|c| c.tree()).map_err(read)?)
        }
        None => None,
    };
    let new = tip.tree().map_err(read)?;
    new_git_dirs(&repo, base.as_ref(), &new).map_err(read)
}

/// Whether the directory `dir` of `tree` is a git directory ([`is_git_dir`]): from its entries'
/// names and modes (a `HEAD` blob or link).
fn tree_is_git_dir(
    repo: &git2::Repository,
    tree: &git2::Tree<'_>,
    dir: &Path,
) -> Result<bool, git2::Error> {
    let sub = if dir.as_os_str().is_empty() {
        tree.clone()
    } else {
        let entry = match tree.get_path(dir) {
            Ok(e) => e,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if entry.kind() != Some(git2::ObjectType::Tree) {
            return Ok(false);
        }
        repo.find_tree(entry.id())?
    };
    // A file or a link (both blobs); not a directory, nor a gitlink.
    let head = sub
        .get_name("HEAD")
        .is_some_and(|e| e.kind() == Some(git2::ObjectType::Blob));
    Ok(is_git_dir(head, |n| sub.get_name(n).is_some()))
}

/// The nested repositories of the worktree `worktree` ([`check`]) and the undeclared gitlinks
/// `branch` committed since `since` ([`new_gitlinks`]: an unconfined agent that commits its
/// work itself): all that refuses the commit of its work, named; empty when it may be staged.
pub(crate) fn nested_in(
    worktree: &Path,
    branch: &str,
    since: Option<&str>,
) -> Result<Vec<String>, GitError> {
    let mut found = match check(worktree) {
        Ok(()) => Vec::new(),
        Err(GitError::Nested { found, .. }) => found,
        Err(e) => return Err(e),
    };
    // A worktree an agent deleted: what uses it next fails, naming it.
    let present = std::fs::symlink_metadata(worktree).is_ok_and(|m| m.is_dir());
    if let (Some(since), true) = (since, present) {
        let repo = super::open(worktree)?;
        let tree_of = |rev: &str| -> Result<git2::Tree<'_>, GitError> {
            repo.revparse_single(rev)
                .and_then(|o| o.peel_to_tree())
                .map_err(|_| GitError::RevNotFound {
                    rev: rev.to_string(),
                })
        };
        let (old, new) = (tree_of(since)?, tree_of(&format!("refs/heads/{branch}"))?);
        let committed =
            new_gitlinks(&repo, worktree, Some(&old), &new).map_err(|source| GitError::Diff {
                path: worktree.to_path_buf(),
                target: since.to_string(),
                source,
            })?;
        found.extend(
            committed
                .into_iter()
                .map(|p| format!("{p} (a gitlink committed on `{branch}`)")),
        );
        let dirs = new_git_dirs(&repo, Some(&old), &new).map_err(|source| GitError::Diff {
            path: worktree.to_path_buf(),
            target: since.to_string(),
            source,
        })?;
        found.extend(
            dirs.into_iter()
                .map(|p| format!("{p} (a git directory committed on `{branch}`)")),
        );
    }
    Ok(found)
}

/// Removes the nested repositories of `worktree` ([`check`]'s `.git` entries, all of them, and
/// the `HEAD` of each git directory by another name): before
/// orch saves and resets a worktree whose work was refused, so that the save records their
/// files as ordinary files (git would record a gitlink) and the next attempt starts without
/// them. A `.git` directory's history is not kept. Best effort; what cannot be removed stays,
/// and refuses the next commit again.
pub(crate) fn remove_nested(worktree: &Path) {
    let Ok(loc) = super::locate::locate(worktree) else {
        return;
    };
    if !loc.linked {
        return;
    }
    let allowed = super::submodules::own_checkouts(worktree);
    loop {
        let Ok(found) = walk(&loc.work_tree, &allowed, &|_| true) else {
            return;
        };
        if found.is_empty() {
            return;
        }
        let mut removed = false;
        for rel in &found {
            // A `.git` goes; a git directory by another name loses its `HEAD` (git no longer
            // takes it for one), its other files saved as ordinary ones.
            // A FIFO, socket or device at one of git's files goes (git stores none of them).
            let path = if Path::new(rel).file_name() == Some(std::ffi::OsStr::new(".git"))
                || is_special_git_file(rel)
            {
                loc.work_tree.join(rel)
            } else {
                loc.work_tree.join(rel).join("HEAD")
            };
            let gone = match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path).is_ok(),
                Ok(_) => std::fs::remove_file(&path).is_ok(),
                Err(_) => false,
            };
            if gone {
                tracing::warn!(path = %path.display(), "nested git repository removed");
            }
            removed |= gone;
        }
        if !removed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_git_below_the_root_is_found_but_the_allowed_ones() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        std::fs::write(root.join(".git"), "gitdir: x\n").expect("root .git");
        for d in ["a/b/c/d/e/.git", "libs/sub", "libs/sub/inner/.git", "src"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::write(root.join("libs/sub/.git"), "gitdir: y\n").expect("sub .git");
        std::fs::write(root.join("src/.git"), "gitdir: /elsewhere\n").expect("file .git");
        std::os::unix::fs::symlink("/tmp", root.join("src/link")).expect("link");
        std::os::unix::fs::symlink("/nowhere", root.join("x.git")).expect("link");
        std::fs::create_dir_all(root.join("l")).expect("mkdir");
        std::os::unix::fs::symlink("/tmp", root.join("l/.git")).expect("link");
        let found = walk(root, &["libs/sub".to_string()], &|_| true).expect("walk");
        assert_eq!(
            found,
            [
                "a/b/c/d/e/.git",
                "l/.git",
                "libs/sub/inner/.git",
                "src/.git"
            ]
        );
        // A directory changed since the last walk is read again.
        std::fs::create_dir_all(root.join("a/b/.git")).expect("mkdir");
        let found = walk(root, &["libs/sub".to_string()], &|_| true).expect("walk");
        assert!(found.contains(&"a/b/.git".to_string()), "{found:?}");
    }

    #[test]
    fn a_git_directory_by_any_name_is_found_a_file_named_head_is_not() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        let dirs = [
            "bare/objects",
            "bare/refs",
            "deep/x/y/objects",
            "deep/x/y/refs/heads",
            "common",
            "only_objects/objects",
            "only_refs/refs",
            "head_dir/HEAD",
            "head_dir/objects",
            "head_dir/refs",
            "no_head/objects",
            "no_head/refs",
        ];
        for d in dirs {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        for f in [
            "bare/HEAD",
            "deep/x/y/HEAD",
            "common/HEAD",
            "common/commondir",
            "only_objects/HEAD",
            "only_refs/HEAD",
            "plain/HEAD",
        ] {
            let path = root.join(f);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, "ref: refs/heads/main\n").expect("write");
        }
        // `objects` a link, `HEAD` a link: git follows both.
        std::fs::create_dir_all(root.join("linked/refs")).expect("mkdir");
        std::os::unix::fs::symlink("/tmp", root.join("linked/objects")).expect("link");
        std::os::unix::fs::symlink("refs/heads/main", root.join("linked/HEAD")).expect("link");
        let found = walk(root, &[], &|_| true).expect("walk");
        assert_eq!(found, ["bare", "common", "deep/x/y", "linked"]);
        // The root itself.
        std::fs::write(root.join("HEAD"), "x\n").expect("head");
        std::fs::write(root.join("commondir"), "bare\n").expect("commondir");
        let found = walk(root, &[], &|_| true).expect("walk");
        assert!(found.contains(&".".to_string()), "{found:?}");
    }

    /// The tree check: a git directory the new tree adds (at the root, deep down, through
    /// `commondir`) is found; one the old tree had already, a `HEAD` beside `objects` alone, and
    /// a directory named `HEAD` are not.
    #[test]
    fn a_git_directory_a_tree_adds_is_found() {
        let tmp = tempfile::tempdir().expect("tmp");
        let repo = git2::Repository::init(tmp.path()).expect("init");
        let blob = repo.blob(b"ref: refs/heads/main\n").expect("blob");
        let tree_of = |files: &[&str]| {
            let mut index = git2::Index::new().expect("index");
            for f in files {
                let entry = git2::IndexEntry {
                    ctime: git2::IndexTime::new(0, 0),
                    mtime: git2::IndexTime::new(0, 0),
                    dev: 0,
                    ino: 0,
                    mode: 0o100_644,
                    uid: 0,
                    gid: 0,
                    file_size: 0,
                    id: blob,
                    flags: u16::try_from(f.len()).expect("len") & 0xfff,
                    flags_extended: 0,
                    path: f.as_bytes().to_vec(),
                };
                index.add(&entry).expect("add");
            }
            let id = index.write_tree_to(&repo).expect("tree");
            repo.find_tree(id).expect("find")
        };
        let old = tree_of(&["old/HEAD", "old/objects/k", "old/refs/k", "src/a.rs"]);
        let new = tree_of(&[
            "old/HEAD",
            "old/objects/k",
            "old/refs/k",
            "old/new.txt",
            "src/a.rs",
            "vendor/cache/HEAD",
            "vendor/cache/config",
            "vendor/cache/objects/.keep",
            "vendor/cache/refs/heads/.keep",
            "a/b/c/wt/HEAD",
            "a/b/c/wt/commondir",
            "docs/HEAD",
            "docs/objects/x",
            "d/HEAD/x",
            "d/objects/x",
            "d/refs/x",
        ]);
        let found = new_git_dirs(&repo, Some(&old), &new).expect("diff");
        assert_eq!(found, ["a/b/c/wt", "vendor/cache"]);
        let root = tree_of(&["HEAD", "objects/x", "refs/x"]);
        let found = new_git_dirs(&repo, Some(&old), &root).expect("diff");
        assert_eq!(found, ["."]);
        assert!(new_git_dirs(&repo, None, &old).expect("diff") == ["old"]);
    }
}
