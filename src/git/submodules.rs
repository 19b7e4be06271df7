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

use std::path::Path;

use git2::{Oid, Repository, RepositoryOpenFlags};

use super::cli::{GitTarget, run_on};

/// The mode of a gitlink (a submodule's entry in a tree).
const GITLINK: i32 = 0o160000;

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
    run_on(target, &all)
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
    let repo = super::locate::open_located(worktree).ok()?;
    let commit = super::commit::head_commit(&repo, worktree).ok()??;
    Some(commit.tree_id())
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
    let back = std::fs::read_to_string(admin.join("gitdir")).unwrap_or_default();
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
    let head = std::fs::read_to_string(admin.join("HEAD")).ok()?;
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
            if std::fs::read(path).is_ok_and(|b| b == text.as_bytes()) {
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

/// Removes the admin dirs orch made in `modules` whose checkout is gone (its worktree removed).
fn prune_gone(modules: &Path) {
    let Ok(dir) = std::fs::read_dir(modules.join("worktrees")) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with("orch-") {
            continue;
        }
        // Gone: the directory its back-link is in (the checkout's) no longer exists. An entry
        // without a back-link yet is one being made (another worktree's, now): left alone.
        let Ok(back) = std::fs::read_to_string(entry.path().join("gitdir")) else {
            continue;
        };
        let Some(dir) = Path::new(back.trim_end()).parent() else {
            continue;
        };
        if !dir.as_os_str().is_empty() && std::fs::symlink_metadata(dir).is_err() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Makes the checkout `sub` (an empty directory) of `modules` at `oid`, with the admin dir
/// `admin`.
fn make(modules: &Path, admin: &Path, sub: &Path, oid: Oid) -> Result<(), String> {
    prune_gone(modules);
    let fail = |e: std::io::Error| format!("cannot make `{}`: {e}", admin.display());
    if std::fs::symlink_metadata(admin).is_ok() {
        std::fs::remove_dir_all(admin).map_err(fail)?;
    }
    std::fs::create_dir_all(admin).map_err(fail)?;
    put(&admin.join("HEAD"), &format!("{oid}\n"))?;
    pin(admin, sub)?;
    git(
        GitTarget::Admin {
            git_dir: admin,
            work_tree: sub,
        },
        &["reset", "--hard", "--quiet"],
    )
    .map(drop)
}

/// Checks out, in the worktree `worktree` (a linked worktree orch made), each submodule its HEAD
/// commit has a gitlink for, at that commit, nested ones too; returns the notes for the user
/// (what could not be checked out, and why). `populate`: an empty submodule directory gets a
/// checkout; without it, only the checkouts orch already made are moved to the gitlink (after a
/// reset). A checkout with uncommitted changes is never moved (nothing is lost): a note says so.
pub fn sync_submodules(worktree: &Path, populate: bool) -> Vec<String> {
    let Ok(loc) = super::locate::locate(worktree) else {
        return Vec::new();
    };
    if !loc.linked {
        return Vec::new();
    }
    let (Some(common), Some(wt_name)) = (
        loc.git_dir.parent().and_then(Path::parent),
        loc.git_dir.file_name().map(|n| n.to_string_lossy()),
    ) else {
        return Vec::new();
    };
    let Some(main) = open_git_dir(common) else {
        return Vec::new();
    };
    let trusted = declared(&main, common);
    if trusted.is_empty() {
        return undeclared(&main, worktree, populate);
    }
    let Some(tree) = head_tree_id(worktree).and_then(|t| main.find_tree(t).ok()) else {
        return Vec::new();
    };
    let mut sync = Sync {
        worktree,
        wt_name: &wt_name,
        populate,
        notes: Vec::new(),
    };
    sync.level(common, &trusted, &tree, &loc.work_tree, "");
    sync.notes
}

/// The note for a worktree whose commit has a `.gitmodules` where the main checkout's commit
/// has none (submodules are read from the main checkout's only): one more tree lookup, only
/// when a worktree is made or taken.
fn undeclared(main: &Repository, worktree: &Path, populate: bool) -> Vec<String> {
    let has = populate
        && gitmodules_blob(main).is_none()
        && head_tree_id(worktree)
            .and_then(|t| main.find_tree(t).ok())
            .is_some_and(|t| t.get_name(".gitmodules").is_some());
    if !has {
        return Vec::new();
    }
    let message = format!(
        "the commit of `{}` has a `.gitmodules`, the commit checked out in the main work tree has none: submodules are checked out only as the main checkout declares them (none here)",
        worktree.display()
    );
    tracing::warn!("{message}");
    vec![message]
}

struct Sync<'a> {
    worktree: &'a Path,
    wt_name: &'a str,
    populate: bool,
    notes: Vec<String>,
}

impl Sync<'_> {
    fn note(&mut self, rel: &str, why: String) {
        let message = format!(
            "submodule `{rel}` in `{}` is not checked out: {why}",
            self.worktree.display()
        );
        tracing::warn!("{message}");
        self.notes.push(message);
    }

    /// The submodules `trusted` of the repository at `git_dir` whose tree is `tree`, checked out
    /// in `work`; `prefix`: `work`'s path from the worktree's root.
    fn level(
        &mut self,
        git_dir: &Path,
        trusted: &[Declared],
        tree: &git2::Tree<'_>,
        work: &Path,
        prefix: &str,
    ) {
        for d in trusted {
            let rel = format!("{prefix}{}", d.path);
            let Some(oid) = tree
                .get_path(Path::new(&d.path))
                .ok()
                .filter(|e| e.filemode() == GITLINK)
                .map(|e| e.id())
            else {
                continue;
            };
            let modules = git_dir.join("modules").join(&d.name);
            let Some(repo) = std::fs::symlink_metadata(&modules)
                .is_ok_and(|m| m.is_dir())
                .then(|| open_git_dir(&modules))
                .flatten()
            else {
                if self.populate {
                    self.note(
                        &rel,
                        format!(
                            "the main repository has no `{}` (run `git submodule update --init --recursive` there)",
                            modules.display()
                        ),
                    );
                }
                continue;
            };
            let Ok(commit) = repo.find_commit(oid) else {
                if self.populate {
                    self.note(
                        &rel,
                        format!(
                            "commit {oid} is not in `{}` (run `git submodule update --init --recursive` in the main repository)",
                            modules.display()
                        ),
                    );
                }
                continue;
            };
            if let Err(e) = crate::links::remove_links(work, [Path::new(&d.path)]) {
                self.note(
                    &rel,
                    format!("cannot remove a symbolic link in its way: {e}"),
                );
                continue;
            }
            let sub = work.join(&d.path);
            let admin = modules
                .join("worktrees")
                .join(admin_name(self.wt_name, &rel));
            if !self.checkout(&repo, (&modules, &admin), &sub, oid, &rel) {
                continue;
            }
            let nested = declared(&repo, &modules);
            if let (false, Ok(tree)) = (nested.is_empty(), commit.tree()) {
                self.level(&modules, &nested, &tree, &sub, &format!("{rel}/"));
            }
        }
    }

    /// Makes or moves the checkout `sub` to `oid`; whether it is at `oid` now.
    fn checkout(
        &mut self,
        repo: &Repository,
        (modules, admin): (&Path, &Path),
        sub: &Path,
        oid: Oid,
        rel: &str,
    ) -> bool {
        // Nothing but (at most) its `.git` file: a directory git just made for the gitlink, or
        // a checkout whose files are gone (the submodule around it was checked out again).
        let bare =
            std::fs::read_dir(sub).is_ok_and(|d| d.flatten().all(|e| e.file_name() == ".git"));
        if !bare && is_ours(admin, sub) {
            if let Err(e) = pin(admin, sub) {
                self.note(rel, e);
                return false;
            }
            let current = admin_head(repo, admin);
            if current == Some(oid) {
                return true;
            }
            match dirty(admin, sub) {
                Ok(files) if files.is_empty() => {}
                Ok(files) => {
                    self.note(
                        rel,
                        format!(
                            "it has uncommitted changes ({}), left as they are",
                            crate::diagnostic::path_list(&files, 5)
                        ),
                    );
                    return false;
                }
                Err(e) => {
                    self.note(rel, e);
                    return false;
                }
            }
            if let Some(current) = current {
                let name = admin.file_name().unwrap_or_default().to_string_lossy();
                let _ = git(
                    GitTarget::GitDir(modules),
                    &[
                        "update-ref",
                        &format!("{LEFT_PREFIX}{name}"),
                        &current.to_string(),
                    ],
                );
            }
            let oid = oid.to_string();
            let moved = git(
                GitTarget::Admin {
                    git_dir: admin,
                    work_tree: sub,
                },
                &["checkout", "--quiet", "--force", "--detach", &oid],
            );
            return match moved {
                Ok(_) => true,
                Err(e) => {
                    self.note(rel, e);
                    false
                }
            };
        }
        // A checkout orch made whose directory an agent removed (or replaced by a link, removed
        // above) is made again, as a new one is where asked.
        let made_before = made_for(admin, sub);
        if !self.populate && !made_before {
            return false;
        }
        // git makes an empty directory for a gitlink it checks out; none (a sparse plan's
        // entry outside its paths): nothing to do.
        match std::fs::symlink_metadata(sub) {
            Ok(m) if m.is_dir() && bare => {}
            Err(_) if made_before && std::fs::create_dir(sub).is_ok() => {}
            Ok(_) => {
                self.note(
                    rel,
                    format!("`{}` is not an empty directory", sub.display()),
                );
                return false;
            }
            Err(_) => return false,
        }
        match make(modules, admin, sub, oid) {
            Ok(()) => true,
            Err(e) => {
                let _ = std::fs::remove_dir_all(admin);
                let _ = std::fs::remove_file(sub.join(".git"));
                self.note(rel, e);
                false
            }
        }
    }
}

/// What the submodule checkouts of a worktree hold that its HEAD does not, before a commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubmoduleChanges {
    /// Checkouts whose HEAD moved (an agent committed inside): the new gitlinks the commit
    /// records, one line each, `submodule <path>: <old> -> <new>` (short ids).
    pub moved: Vec<String>,
    /// The paths of those checkouts.
    pub moved_paths: Vec<String>,
    /// Uncommitted changes inside them (paths from the worktree's root): committing the
    /// superproject would lose them. A nested checkout whose HEAD moved is one too (its new
    /// commit must be committed in the submodule around it).
    pub dirty: Vec<String>,
}

/// [`SubmoduleChanges`] of the worktree `worktree`, from orch's own checkouts (their admin dirs
/// found from orch's records; each checkout's `.git` put back first, so that the commit's `git
/// add -A` reads the submodule's HEAD there). Nothing when the repository has no submodules.
pub fn submodule_changes(worktree: &Path) -> Result<SubmoduleChanges, String> {
    walk(worktree, Mode::Commit)
}

/// The paths of [`submodule_changes`] (uncommitted changes, and the checkouts whose commit
/// moved), read only: for a caller that decides whether a worktree holds work (before removing
/// or resetting it), where libgit2's status leaves submodules out.
pub(crate) fn submodule_dirt(worktree: &Path) -> Vec<String> {
    walk(worktree, Mode::Read).map_or_else(
        |e| vec![format!("(submodules: {e})")],
        |c| c.moved_paths.into_iter().chain(c.dirty).collect(),
    )
}

/// Puts back the `.git` file (and admin files) of each of orch's submodule checkouts in
/// `worktree`, nothing else read: before libgit2 stages the worktree (a save before a reset),
/// which would open a submodule through that file.
pub(crate) fn pin_submodules(worktree: &Path) -> Result<(), String> {
    walk(worktree, Mode::Pin).map(drop)
}

/// What a walk of the checkouts does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Reads what changed, and puts back each checkout's files for the commit that follows.
    Commit,
    /// Reads what changed, nothing written (orch's own reads never go through a `.git` file).
    Read,
    /// Only puts back each checkout's files.
    Pin,
}

fn walk(worktree: &Path, mode: Mode) -> Result<SubmoduleChanges, String> {
    let mut changes = SubmoduleChanges::default();
    let Ok(loc) = super::locate::locate(worktree) else {
        return Ok(changes);
    };
    let (Some(common), Some(wt_name)) = (
        loc.git_dir.parent().and_then(Path::parent),
        loc.git_dir.file_name().map(|n| n.to_string_lossy()),
    ) else {
        return Ok(changes);
    };
    if !loc.linked {
        return Ok(changes);
    }
    let Some(main) = open_git_dir(common) else {
        return Ok(changes);
    };
    let trusted = declared(&main, common);
    if trusted.is_empty() {
        return Ok(changes);
    }
    let tree = head_tree_id(worktree)
        .and_then(|t| main.find_tree(t).ok())
        .ok_or_else(|| format!("cannot read the HEAD commit of `{}`", worktree.display()))?;
    let walk = Walk {
        wt_name: &wt_name,
        top: true,
        mode,
    };
    walk.level((common, &trusted), &tree, &loc.work_tree, "", &mut changes)?;
    Ok(changes)
}

#[derive(Clone, Copy)]
struct Walk<'a> {
    wt_name: &'a str,
    /// The worktree's own submodules (not nested ones).
    top: bool,
    mode: Mode,
}

impl Walk<'_> {
    fn level(
        &self,
        (git_dir, trusted): (&Path, &[Declared]),
        tree: &git2::Tree<'_>,
        work: &Path,
        prefix: &str,
        out: &mut SubmoduleChanges,
    ) -> Result<(), String> {
        for d in trusted {
            let rel = format!("{prefix}{}", d.path);
            let Some(recorded) = tree
                .get_path(Path::new(&d.path))
                .ok()
                .filter(|e| e.filemode() == GITLINK)
                .map(|e| e.id())
            else {
                continue;
            };
            let modules = git_dir.join("modules").join(&d.name);
            let sub = work.join(&d.path);
            let admin = modules
                .join("worktrees")
                .join(admin_name(self.wt_name, &rel));
            if crate::links::symlinked_parent(work, &Path::new(&d.path).join("x")).is_some()
                || !is_ours(&admin, &sub)
            {
                continue;
            }
            let Some(repo) = open_git_dir(&modules) else {
                continue;
            };
            if self.mode != Mode::Read {
                pin(&admin, &sub)?;
            }
            if self.mode == Mode::Pin {
                let nested = declared(&repo, &modules);
                let tree = admin_head(&repo, &admin)
                    .and_then(|h| repo.find_commit(h).ok())
                    .and_then(|c| c.tree().ok());
                if let (false, Some(tree)) = (nested.is_empty(), tree) {
                    let inner = Walk {
                        top: false,
                        ..*self
                    };
                    inner.level((&modules, &nested), &tree, &sub, &format!("{rel}/"), out)?;
                }
                continue;
            }
            let head = admin_head(&repo, &admin).ok_or_else(|| {
                format!(
                    "cannot read the commit of submodule `{rel}` (`{}`)",
                    admin.join("HEAD").display()
                )
            })?;
            if head != recorded {
                let short = |o: Oid| o.to_string()[..7].to_string();
                if self.top {
                    out.moved_paths.push(rel.clone());
                    out.moved.push(format!(
                        "submodule {rel}: {} -> {}",
                        short(recorded),
                        short(head)
                    ));
                } else {
                    out.dirty.push(format!(
                        "{rel} (moved to {}, not committed in the submodule around it)",
                        short(head)
                    ));
                }
            }
            out.dirty.extend(
                dirty(&admin, &sub)
                    .map_err(|e| format!("cannot read the status of submodule `{rel}`: {e}"))?
                    .into_iter()
                    .map(|f| format!("{rel}/{f}")),
            );
            let nested = declared(&repo, &modules);
            if nested.is_empty() {
                continue;
            }
            let Ok(tree) = repo.find_commit(head).and_then(|c| c.tree()) else {
                continue;
            };
            let inner = Walk {
                top: false,
                ..*self
            };
            inner.level((&modules, &nested), &tree, &sub, &format!("{rel}/"), out)?;
        }
        Ok(())
    }
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
