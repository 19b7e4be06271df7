//! Where a work tree's repository is, found from what orch made rather than from what an agent
//! can write.
//!
//! An agent writes its worktree, and with it the worktree's `.git` file: a `.git` that points at a
//! git directory of the agent's own (with `core.fsmonitor`, a `filter.*.clean` driver) would make
//! orch's next `git add -A` run the agent's program unconfined, and a libgit2 `Repository::open`
//! of the worktree would commit into a repository of the agent's choosing. So orch never reads a
//! worktree's `.git`: every worktree orch makes lies inside the repository (`worktree_root`
//! must) and is named after its directory (`git worktree add` names the entry after the
//! directory, and [`super::worktree`] checks it), so its admin directory is
//! `<common dir>/worktrees/<directory name>` of the first repository found above it. The
//! directories above a worktree are not the agent's.

use std::path::{Path, PathBuf};

use git2::{Repository, RepositoryOpenFlags};

use super::GitError;

/// A work tree and the git directory that holds its index and HEAD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Located {
    /// `<common dir>/worktrees/<name>` for a linked worktree, the repository's git dir for the
    /// main one.
    pub(crate) git_dir: PathBuf,
    /// The work tree (absolute).
    pub(crate) work_tree: PathBuf,
    /// Whether it is a linked worktree (`git_dir` is its admin directory).
    pub(crate) linked: bool,
}

/// Finds the git directory of the work tree `path` without reading `path/.git` when `path` is a
/// linked worktree: the admin directory named after `path` in the repository above it. A path
/// that is not a linked worktree of the repository above it is a repository's main work dir
/// (or a git directory), opened as git would open it; it is never an agent's worktree.
pub(crate) fn locate(path: &Path) -> Result<Located, GitError> {
    let work_tree = std::path::absolute(path).map_err(|source| GitError::ReadWorktrees {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(admin) = linked_admin(&work_tree) {
        return Ok(Located {
            git_dir: admin,
            work_tree,
            linked: true,
        });
    }
    let repo = open_plain(&work_tree)?;
    Ok(Located {
        git_dir: repo.path().to_path_buf(),
        work_tree: repo
            .workdir()
            .map_or_else(|| work_tree.clone(), Path::to_path_buf),
        linked: false,
    })
}

/// The admin directory of `path` when it is a linked worktree of the repository above it.
fn linked_admin(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let above = path
        .parent()?
        .ancestors()
        .find(|dir| std::fs::symlink_metadata(dir.join(".git")).is_ok())?;
    let common = common_dir_of(above)?;
    let admin = common.join("worktrees").join(name);
    std::fs::symlink_metadata(&admin)
        .is_ok_and(|m| m.is_dir())
        .then_some(admin)
}

/// The common git directory of the repository whose work dir is `dir` (the user's: a directory
/// above every worktree orch makes).
fn common_dir_of(dir: &Path) -> Option<PathBuf> {
    let dot_git = dir.join(".git");
    let meta = std::fs::symlink_metadata(&dot_git).ok()?;
    if meta.is_dir() && !dot_git.join("commondir").exists() {
        return Some(dot_git);
    }
    // The user's repository is itself a linked worktree (or a `.git` file of a submodule): git's
    // own reading of it.
    Some(open_plain(dir).ok()?.commondir().to_path_buf())
}

fn open_plain(path: &Path) -> Result<Repository, GitError> {
    super::retry::retry_locked(|| {
        Repository::open_ext(
            path,
            RepositoryOpenFlags::NO_SEARCH,
            std::iter::empty::<&std::ffi::OsStr>(),
        )
    })
    .map_err(|source| open_error(path, source))
}

pub(super) fn open_error(path: &Path, source: git2::Error) -> GitError {
    match source.code() {
        git2::ErrorCode::NotFound => GitError::NotARepository {
            path: path.to_path_buf(),
        },
        _ => GitError::Open {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// Opens the repository (or linked worktree) whose work dir is `path` ([`locate`]); `GIT_DIR` and
/// friends are ignored, and so is a linked worktree's `.git` file (its agent writes it): it is
/// opened through its admin directory, with `path` set as its work dir. Open one per call: a
/// [`Repository`] is `Send` but not `Sync`.
pub(crate) fn open(path: &Path) -> Result<Repository, GitError> {
    let loc = locate(path)?;
    if !loc.linked {
        return open_plain(&loc.work_tree);
    }
    let repo = super::retry::retry_locked(|| {
        Repository::open_ext(
            &loc.git_dir,
            RepositoryOpenFlags::NO_SEARCH | RepositoryOpenFlags::NO_DOTGIT,
            std::iter::empty::<&std::ffi::OsStr>(),
        )
    })
    .map_err(|source| open_error(path, source))?;
    repo.set_workdir(&loc.work_tree, false)
        .map_err(|source| open_error(path, source))?;
    Ok(repo)
}

/// The keys a worktree's `config.worktree` may hold: what `git sparse-checkout set --cone`
/// writes for a sparse plan ([`super::sparse`]). Any other is dropped by [`pin_worktree`].
const WORKTREE_CONFIG_KEYS: [&str; 3] = [
    "core.sparsecheckout",
    "core.sparsecheckoutcone",
    "index.sparse",
];

/// Puts back, from orch's records, the admin files of the linked worktree `worktree` that orch
/// relies on before it commits there: `HEAD` → `ref: refs/heads/<branch>` (the plan or task
/// branch, whatever an agent switched to), `commondir`, `gitdir` (the back-link), the worktree's
/// `.git` file (so that the next agent's git finds its repository), and a `config.worktree`
/// reduced to the sparse-checkout keys orch itself sets. Files are replaced by a rename, never
/// written through. Nothing to do for a main work dir.
pub(crate) fn pin_worktree(worktree: &Path, branch: &str) -> Result<(), GitError> {
    let loc = locate(worktree)?;
    // A main work dir has nothing to put back; a worktree directory that is gone (an agent
    // deleted it) is not made again here: what uses it next fails on it, naming it.
    let present = std::fs::symlink_metadata(&loc.work_tree).is_ok_and(|m| m.is_dir());
    if !loc.linked || !present {
        return Ok(());
    }
    let admin = &loc.git_dir;
    put(&admin.join("HEAD"), &format!("ref: refs/heads/{branch}\n"))?;
    put(&admin.join("commondir"), "../..\n")?;
    put(
        &admin.join("gitdir"),
        &format!("{}\n", loc.work_tree.join(".git").display()),
    )?;
    put(
        &loc.work_tree.join(".git"),
        &format!("gitdir: {}\n", admin.display()),
    )?;
    tidy_worktree_config(&admin.join("config.worktree"))
}

/// `path` holds exactly `text`: left alone when it does (a regular file), else replaced (whatever
/// was there: a symlink, a directory, other text) by a file written beside it and renamed.
fn put(path: &Path, text: &str) -> Result<(), GitError> {
    let error = |source| GitError::RestoreAdmin {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => {
            if crate::untrusted::read::small_text(path).is_ok_and(|b| b == text) {
                return Ok(());
            }
        }
        Ok(m) if m.is_dir() => crate::untrusted::remove::remove_path(path).map_err(error)?,
        Ok(_) => std::fs::remove_file(path).map_err(error)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(error(e)),
    }
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".orch-new");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(error)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(error)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(error)
}

/// Drops from the worktree's `config.worktree` every key but [`WORKTREE_CONFIG_KEYS`] (an agent's
/// `core.fsmonitor`, a filter driver, an `include.path`): the file is rewritten with the kept
/// keys, or removed when none is left.
fn tidy_worktree_config(path: &Path) -> Result<(), GitError> {
    let error = |source| GitError::RestoreAdmin {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(m) if m.is_dir() => return crate::untrusted::remove::remove_path(path).map_err(error),
        Ok(_) => return std::fs::remove_file(path).map_err(error),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(error(e)),
    }
    // At most a git admin file's size: a larger one is not orch's, nothing of it is kept.
    let Ok(text) = crate::untrusted::read::small_text(path) else {
        return std::fs::remove_file(path).map_err(error);
    };
    let mut kept: Vec<(String, String)> = Vec::new();
    let mut foreign = false;
    match git2::Config::open(path).and_then(|c| {
        let mut all = Vec::new();
        let mut entries = c.entries(None)?;
        while let Some(e) = entries.next() {
            let e = e?;
            all.push((
                e.name().unwrap_or_default().to_ascii_lowercase(),
                e.value().unwrap_or_default().to_string(),
            ));
        }
        Ok(all)
    }) {
        Ok(all) => {
            for (name, value) in all {
                if WORKTREE_CONFIG_KEYS.contains(&name.as_str())
                    && matches!(value.as_str(), "true" | "false")
                {
                    kept.push((name, value));
                } else {
                    foreign = true;
                }
            }
        }
        Err(_) => foreign = true,
    }
    // A section or key git2 does not list (a syntax it skips) counts as foreign too.
    if !foreign && text.lines().any(|l| l.contains("include")) {
        foreign = true;
    }
    if !foreign {
        return Ok(());
    }
    tracing::warn!(path = %path.display(), "config.worktree held settings orch did not write: reduced");
    if kept.is_empty() {
        return std::fs::remove_file(path).map_err(error);
    }
    let mut out = String::new();
    for (name, value) in kept {
        if let Some((section, key)) = name.split_once('.') {
            out.push_str(&format!("[{section}]\n\t{key} = {value}\n"));
        }
    }
    put(path, &out)
}
