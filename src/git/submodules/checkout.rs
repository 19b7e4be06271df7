//! Making and moving the submodule checkouts of a worktree ([`sync_submodules`]).

use std::path::Path;

use git2::{Oid, Repository};

use super::{
    Declared, GitTarget, LEFT_PREFIX, admin_head, admin_name, declared, dirty, git, gitlink,
    gitmodules_blob, head_tree_id, is_ours, made_for, open_git_dir, pin, put,
};

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
        let Ok(back) = crate::untrusted::read::small_text(&entry.path().join("gitdir")) else {
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
pub(crate) fn sync_submodules(worktree: &Path, populate: bool) -> Vec<String> {
    let Some(top) = super::top(worktree) else {
        return Vec::new();
    };
    let trusted = declared(&top.main, &top.common);
    if trusted.is_empty() {
        return undeclared(&top.main, worktree, populate);
    }
    let Some(tree) = head_tree_id(worktree).and_then(|t| top.main.find_tree(t).ok()) else {
        return Vec::new();
    };
    let mut sync = Sync {
        worktree,
        wt_name: &top.name,
        populate,
        notes: Vec::new(),
    };
    sync.level(&top.common, &trusted, &tree, &top.work_tree, "");
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
            let Some(oid) = gitlink(tree, &d.path) else {
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
