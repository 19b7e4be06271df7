//! Tests of the git module, each on a real repository in a temp dir (git2 only, a fixed identity,
//! no reliance on the user's git config).

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository, RepositoryInitOptions, Signature, Time};
use tempfile::TempDir;

use super::*;
use crate::exit::{self, Coded};

mod commit;
mod cover;
mod dirt;
mod locate;
mod merge;
mod merge_tree;
mod own;
mod queries;
mod sparse;
mod task_tree;
mod worktree;

/// A repository on `main` with one commit (`README.md`, `old.txt`) and a `.gitignore`.
struct Fixture {
    tmp: TempDir,
    root: PathBuf,
}

fn fixed_sig() -> Signature<'static> {
    Signature::new("Test", "test@example.com", &Time::new(1_700_000_000, 0)).unwrap()
}

impl Fixture {
    fn new() -> Self {
        let tmp = TempDir::new().unwrap();
        let root = tmp.path().canonicalize().unwrap().join("repo");
        let mut opts = RepositoryInitOptions::new();
        opts.initial_head("main");
        let repo = Repository::init_opts(&root, &opts).unwrap();
        let mut config = repo.config().unwrap();
        config.set_str("user.name", "Test").unwrap();
        config.set_str("user.email", "test@example.com").unwrap();
        let no_excludes = tmp.path().join("no-global-excludes");
        config
            .set_str("core.excludesFile", no_excludes.to_str().unwrap())
            .unwrap();
        let fx = Self { tmp, root };
        fx.commit(
            &fx.root,
            &[
                ("README.md", Some("hello\n")),
                ("old.txt", Some("old\n")),
                (".gitignore", Some("*.log\n.env\n")),
            ],
            "initial",
        );
        fx
    }

    /// Writes (or with `None` deletes) files in `dir`, stages exactly them and commits on HEAD.
    fn commit(&self, dir: &Path, files: &[(&str, Option<&str>)], message: &str) -> Oid {
        let repo = Repository::open(dir).unwrap();
        let mut index = repo.index().unwrap();
        for (rel, content) in files {
            let path = dir.join(rel);
            match content {
                Some(text) => {
                    fs::create_dir_all(path.parent().unwrap()).unwrap();
                    fs::write(&path, text).unwrap();
                    index.add_path(Path::new(rel)).unwrap();
                }
                None => {
                    fs::remove_file(&path).unwrap();
                    index.remove_path(Path::new(rel)).unwrap();
                }
            }
        }
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let parent = repo.head().ok().map(|h| h.peel_to_commit().unwrap());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let sig = fixed_sig();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
    }

    fn repo(&self) -> Repository {
        Repository::open(&self.root).unwrap()
    }

    fn wt_path(&self, plan: &str) -> PathBuf {
        self.root.join(".orch").join("worktrees").join(plan)
    }

    fn tip(&self, branch: &str) -> Option<Oid> {
        self.repo()
            .find_branch(branch, git2::BranchType::Local)
            .ok()
            .map(|b| b.get().target().unwrap())
    }

    fn config(&self, key: &str) -> Option<String> {
        let config = self.repo().config().unwrap().snapshot().unwrap();
        config.get_string(key).ok()
    }

    fn entries(&self) -> Vec<String> {
        let dir = self.root.join(".git").join("worktrees");
        let mut names: Vec<String> = fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Everything a preflight must leave alone: refs, worktree entries, the config, the files.
    fn snapshot(&self) -> Snapshot {
        let repo = self.repo();
        let mut refs: Vec<(String, Oid)> = repo
            .references()
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                (r.name().unwrap().to_string(), r.target().unwrap())
            })
            .collect();
        refs.sort();
        let config = fs::read_to_string(self.root.join(".git").join("config")).unwrap();
        Snapshot {
            refs,
            entries: self.entries(),
            config,
            files: walk(self.tmp.path()),
        }
    }
}

/// What a preflight must not change.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    refs: Vec<(String, Oid)>,
    entries: Vec<String>,
    config: String,
    files: Vec<PathBuf>,
}

/// Every path under `dir`, sorted (`.git/objects` excluded: reading may not add objects anyway).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.clone());
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The blob contents of a commit's tree at `rel`; `None` if absent.
fn file_at(repo: &Repository, commit: Oid, rel: &str) -> Option<String> {
    let tree = repo.find_commit(commit).unwrap().tree().unwrap();
    let entry = tree.get_path(Path::new(rel)).ok()?;
    let blob = repo.find_blob(entry.id()).unwrap();
    Some(String::from_utf8(blob.content().to_vec()).unwrap())
}

fn oid(s: &str) -> Oid {
    Oid::from_str(s).unwrap()
}

/// Calls `f` with a request for `plan` at its default path.
fn with_req<T>(fx: &Fixture, plan: &str, copy: &[PathBuf], f: impl FnOnce(&TreeRequest) -> T) -> T {
    let branch = format!("plan/{plan}");
    let path = fx.wt_path(plan);
    let req = TreeRequest {
        repo_root: &fx.root,
        plan,
        branch: &branch,
        path: &path,
        target: "main",
        copy,
        sparse: &[],
        submodules: true,
    };
    f(&req)
}

fn ensure(fx: &Fixture, plan: &str) -> Result<PlanTree, GitError> {
    with_req(fx, plan, &[], ensure_plan_tree)
}

fn preflight(fx: &Fixture, plan: &str) -> Result<TreeAction, GitError> {
    with_req(fx, plan, &[], plan_tree_preflight)
}
