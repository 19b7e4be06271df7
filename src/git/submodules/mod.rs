//! Submodules in the worktrees orch makes: `git worktree add` leaves them empty, so each worktree
//! gets its submodules checked out here, from the objects the main repository already has, with
//! no transport at all.
//!
//! - **How.** A submodule at `<worktree>/<path>` becomes a linked worktree of the submodule's own
//!   repository in the main one, `<common dir>/modules/<name>` (nested ones:
//!   `<common dir>/modules/<a>/modules/<b>`), detached at the commit its gitlink records. Its
//!   admin dir, `<modules dir>/worktrees/orch-<worktree name>-<path>`, is named by orch (written
//!   here, not by `git worktree add`, which picks a free name itself), so that orch finds it from
//!   its own records and never from the agent-written `<path>/.git` file; git checks it out
//!   (`git reset --hard` with `--git-dir` and `--work-tree` named, `protocol.allow=never`). No
//!   clone, no copy of objects: a commit an agent makes inside the submodule lands in
//!   `<modules dir>`'s object store, where every later worktree (a pool slot, the plan worktree
//!   after a landing, `orch merge`) finds it.
//! - **Trust.** Which submodules there are (names and paths) comes from the `.gitmodules` of the
//!   commit the repository's own HEAD is at (the main work tree's checkout; for a nested
//!   submodule, its modules dir's HEAD) and its config (`submodule.<name>.active = false` and
//!   `update = none` are skipped), never from a `.gitmodules` an agent committed on a branch.
//!   No URL is ever used. A symlink an agent left where a submodule's directory goes is removed,
//!   never followed.
//! - **Failures** (no modules dir: the user never ran `git submodule update --init`; a gitlink
//!   commit the modules dir lacks; a submodule directory holding something else) are notes for
//!   the user; the worktree is used without that submodule.
//! - **Cost.** A repository whose HEAD has no `.gitmodules` pays one lookup in its HEAD tree.

use std::path::{Path, PathBuf};

use git2::{Oid, Repository, RepositoryOpenFlags};

use super::cli::{GitTarget, run_on};

mod changes;
mod checkout;

pub(crate) use changes::submodule_changes;
pub(crate) use changes::{pin_submodules, submodule_dirt};
pub(crate) use checkout::sync_submodules;

/// The mode of a gitlink (a submodule's entry in a tree).
const GITLINK: i32 = 0o160000;

/// The commit `tree` records for the submodule at `path`, when that entry is a gitlink.
fn gitlink(tree: &git2::Tree<'_>, path: &str) -> Option<git2::Oid> {
    tree.get_path(std::path::Path::new(path))
        .ok()
        .filter(|e| e.filemode() == GITLINK)
        .map(|e| e.id())
}

/// Where the commit a submodule's checkout was moved away from is kept (in the submodule's
/// repository), so that a commit an agent made there and orch did not land is not lost.
const LEFT_PREFIX: &str = "refs/orch/left/";

/// A submodule declared in a trusted `.gitmodules`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Declared {
    name: String,
    path: String,
}

/// The git CLI on `target` with no transport allowed.
fn git(target: GitTarget<'_>, args: &[&str]) -> Result<Vec<u8>, String> {
    let all: Vec<&str> = ["-c", "protocol.allow=never"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    run_on(target, &all).map_err(|e| e.to_string())
}

/// A relative path of plain components (no `.`, `..`, `.git`, empty one): what a submodule's
/// name and path must be.
fn safe_rel(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && p.split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.eq_ignore_ascii_case(".git"))
}

fn open_git_dir(dir: &Path) -> Option<Repository> {
    Repository::open_ext(
        dir,
        RepositoryOpenFlags::NO_SEARCH,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
    .ok()
}

/// The tree of the commit the worktree's HEAD is at (its admin dir found by orch).
fn head_tree_id(worktree: &Path) -> Option<Oid> {
    let repo = super::locate::open(worktree).ok()?;
    Some(repo.head().ok()?.peel_to_commit().ok()?.tree_id())
}

/// A linked worktree orch made, and the main repository it belongs to.
struct Top {
    /// The main repository's common git dir.
    common: PathBuf,
    /// The worktree's name (its admin dir's), part of its checkouts' admin names.
    name: String,
    work_tree: PathBuf,
    main: Repository,
}

/// [`Top`] of `worktree`, found from orch's records ([`super::locate`]); `None` for the main
/// work tree (never touched) or a path that is no worktree.
fn top(worktree: &Path) -> Option<Top> {
    let loc = super::locate::locate(worktree).ok()?;
    if !loc.linked {
        return None;
    }
    let common = loc.git_dir.parent()?.parent()?.to_path_buf();
    let name = loc.git_dir.file_name()?.to_string_lossy().into_owned();
    let main = open_git_dir(&common)?;
    Some(Top {
        common,
        name,
        work_tree: loc.work_tree,
        main,
    })
}

/// The `.gitmodules` blob of the repository's HEAD commit, if it has one (one tree lookup).
fn gitmodules_blob(repo: &Repository) -> Option<Oid> {
    let tree = repo.head().ok()?.peel_to_tree().ok()?;
    let entry = tree.get_name(".gitmodules")?;
    (entry.kind() == Some(git2::ObjectType::Blob)).then(|| entry.id())
}

/// The submodules the repository at `git_dir` declares in its HEAD commit's `.gitmodules`, less
/// the ones its config turns off.
fn declared(repo: &Repository, git_dir: &Path) -> Vec<Declared> {
    let Some(blob) = gitmodules_blob(repo) else {
        return Vec::new();
    };
    let blob = blob.to_string();
    // Exit 1 when no key matches: no submodule.
    let Ok(out) = git(
        GitTarget::GitDir(git_dir),
        &[
            "config",
            "--blob",
            &blob,
            "-z",
            "--get-regexp",
            r"^submodule\..*\.path$",
        ],
    ) else {
        return Vec::new();
    };
    let config = repo.config().ok();
    let mut found = Vec::new();
    for item in out.split(|b| *b == 0) {
        let item = String::from_utf8_lossy(item);
        let Some((key, path)) = item.split_once('\n') else {
            continue;
        };
        let Some(name) = key
            .strip_prefix("submodule.")
            .and_then(|k| k.strip_suffix(".path"))
        else {
            continue;
        };
        let path = path.trim_end_matches('/');
        if !safe_rel(name) || !safe_rel(path) {
            tracing::warn!(name, path, "submodule with an unsafe name or path: skipped");
            continue;
        }
        if let Some(c) = &config {
            if c.get_bool(&format!("submodule.{name}.active")) == Ok(false) {
                continue;
            }
            if c.get_string(&format!("submodule.{name}.update"))
                .is_ok_and(|u| u == "none")
            {
                continue;
            }
        }
        found.push(Declared {
            name: name.to_string(),
            path: path.to_string(),
        });
    }
    found
}

/// The paths (from the worktree's root, `/`-separated) of orch's own submodule checkouts in
/// `worktree`, nested ones included: the only places below its root where a `.git` belongs
/// (orch's file, put back before git reads the checkout). None for the main work tree.
pub(crate) fn own_checkouts(worktree: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(top) = top(worktree) {
        let trusted = declared(&top.main, &top.common);
        checkouts_at(
            (&top.common, &trusted),
            &top.name,
            &top.work_tree,
            "",
            &mut out,
        );
    }
    out
}

fn checkouts_at(
    (git_dir, trusted): (&Path, &[Declared]),
    wt_name: &str,
    work: &Path,
    prefix: &str,
    out: &mut Vec<String>,
) {
    for d in trusted {
        let rel = format!("{prefix}{}", d.path);
        let modules = git_dir.join("modules").join(&d.name);
        let sub = work.join(&d.path);
        let admin = modules.join("worktrees").join(admin_name(wt_name, &rel));
        if crate::links::symlinked_parent(work, &Path::new(&d.path).join("x")).is_some()
            || !is_ours(&admin, &sub)
        {
            continue;
        }
        out.push(rel.clone());
        if let Some(repo) = open_git_dir(&modules) {
            let nested = declared(&repo, &modules);
            checkouts_at((&modules, &nested), wt_name, &sub, &format!("{rel}/"), out);
        }
    }
}

/// The paths of the submodules the main checkout declares in the worktree `worktree` (its own,
/// not nested ones): where a gitlink of its commits belongs.
pub(crate) fn declared_paths(worktree: &Path) -> Vec<String> {
    top(worktree).map_or_else(Vec::new, |top| {
        declared(&top.main, &top.common)
            .into_iter()
            .map(|d| d.path)
            .collect()
    })
}

/// The admin dir name of the checkout of the submodule at `rel` (from the worktree's root) in
/// the worktree named `worktree`: one path component.
fn admin_name(worktree: &str, rel: &str) -> String {
    format!(
        "orch-{worktree}-{}",
        rel.replace('%', "%25").replace('/', "%2F")
    )
}

/// The admin dir `admin` is of orch's checkout at `sub` (its back-link names `sub/.git`),
/// whatever is at `sub` now.
fn made_for(admin: &Path, sub: &Path) -> bool {
    let back = crate::untrusted::read::small_text(&admin.join("gitdir")).unwrap_or_default();
    back.trim_end() == sub.join(".git").to_string_lossy()
}

/// The linked worktree named by the admin dir `admin` is orch's checkout at `sub`: made for it,
/// and `sub` is a directory (not a link).
fn is_ours(admin: &Path, sub: &Path) -> bool {
    made_for(admin, sub) && std::fs::symlink_metadata(sub).is_ok_and(|m| m.is_dir())
}

/// The commit the checkout with admin dir `admin` (of `repo`) is at: a detached HEAD, or the
/// branch it names.
fn admin_head(repo: &Repository, admin: &Path) -> Option<Oid> {
    let head = crate::untrusted::read::small_text(&admin.join("HEAD")).ok()?;
    let head = head.trim();
    match head.strip_prefix("ref: ") {
        Some(refname) => repo.refname_to_id(refname).ok(),
        None => Oid::from_str(head).ok(),
    }
}

/// Writes `text` to `path`, replacing whatever is there (a link, a directory, other text) and
/// never writing through a link.
fn put(path: &Path, text: &str) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write `{}`: {e}", path.display());
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => {
            if crate::untrusted::read::small_text(path).is_ok_and(|b| b == text) {
                return Ok(());
            }
            std::fs::remove_file(path).map_err(fail)?;
        }
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).map_err(fail)?,
        Ok(_) => std::fs::remove_file(path).map_err(fail)?,
        Err(_) => {}
    }
    crate::links::write(path, text.as_bytes()).map_err(fail)
}

/// Puts back the files that tie the checkout `sub` to its admin dir `admin` (an agent may have
/// rewritten `sub/.git` or, unconfined, the admin files): before orch's git reads the checkout.
fn pin(admin: &Path, sub: &Path) -> Result<(), String> {
    put(&admin.join("commondir"), "../..\n")?;
    put(
        &admin.join("gitdir"),
        &format!("{}\n", sub.join(".git").display()),
    )?;
    put(&sub.join(".git"), &format!("gitdir: {}\n", admin.display()))?;
    // Only orch's settings apply to the checkout (an agent's `core.fsmonitor` would run).
    let _ = std::fs::remove_file(admin.join("config.worktree"));
    Ok(())
}

/// The paths `git status` lists in the checkout `sub` (changed, deleted, untracked and not
/// ignored), relative to `sub`.
fn dirty(admin: &Path, sub: &Path) -> Result<Vec<String>, String> {
    let out = git(
        GitTarget::Admin {
            git_dir: admin,
            work_tree: sub,
        },
        &[
            "--no-optional-locks",
            "status",
            "--porcelain",
            "-z",
            "--untracked-files=all",
            "--ignore-submodules=all",
            "--no-renames",
        ],
    )?;
    Ok(out
        .split(|b| *b == 0)
        .filter(|e| e.len() > 3)
        .map(|e| String::from_utf8_lossy(&e[3..]).into_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_must_be_plain() {
        assert!(safe_rel("libs/x"));
        assert!(!safe_rel("../x"));
        assert!(!safe_rel("/x"));
        assert!(!safe_rel("a/.git/b"));
        assert!(!safe_rel("a//b"));
        assert!(!safe_rel(""));
    }

    #[test]
    fn admin_names_are_one_component() {
        assert_eq!(admin_name("p+pool1", "libs/x"), "orch-p+pool1-libs%2Fx");
        assert_eq!(admin_name("p", "a%b"), "orch-p-a%25b");
    }
}
