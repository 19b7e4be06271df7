//! Tests of the git module, each on a real repository in a temp dir (git2 only, a fixed identity,
//! no reliance on the user's git config).

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository, RepositoryInitOptions, Signature, Time};
use tempfile::TempDir;

use super::worktree::wildcard_match;
use super::*;
use crate::error::exit;

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
    };
    f(&req)
}

fn ensure(fx: &Fixture, plan: &str) -> Result<PlanTree, GitError> {
    with_req(fx, plan, &[], ensure_plan_tree)
}

fn preflight(fx: &Fixture, plan: &str) -> Result<TreeAction, GitError> {
    with_req(fx, plan, &[], plan_tree_preflight)
}

// ---------------------------------------------------------------- worktrees

#[test]
fn create_makes_marked_branch_and_worktree() {
    let fx = Fixture::new();
    let main_tip = fx.tip("main").unwrap();
    let tree = ensure(&fx, "auth").unwrap();

    assert!(tree.created);
    assert_eq!(tree.path, fx.wt_path("auth"));
    assert_eq!(tree.branch, "plan/auth");
    assert_eq!(tree.base, main_tip.to_string());
    assert_eq!(tree.head, main_tip.to_string());
    assert_eq!(fx.tip("plan/auth"), Some(main_tip));
    assert_eq!(
        fx.config("branch.plan/auth.orchPlan").as_deref(),
        Some("auth")
    );
    assert_eq!(
        fx.config("branch.plan/auth.orchBase"),
        Some(main_tip.to_string())
    );
    assert_eq!(fx.entries(), vec!["auth"]);
    assert_eq!(
        fs::read_to_string(tree.path.join("README.md")).unwrap(),
        "hello\n"
    );
    let wt = Repository::open(&tree.path).unwrap();
    assert!(wt.is_worktree());
    assert_eq!(wt.head().unwrap().name().unwrap(), "refs/heads/plan/auth");
    assert!(!is_dirty(&tree.path).unwrap());
    // The main work tree is untouched.
    assert_eq!(fx.repo().head().unwrap().name().unwrap(), "refs/heads/main");
}

#[test]
fn second_call_reuses_the_worktree() {
    let fx = Fixture::new();
    let first = ensure(&fx, "auth").unwrap();
    assert_eq!(
        preflight(&fx, "auth").unwrap(),
        TreeAction::Reuse {
            base: first.base.clone()
        }
    );
    let work = fx.commit(&first.path, &[("a.txt", Some("a\n"))], "task 1");
    fx.commit(&fx.root, &[("main.txt", Some("m\n"))], "main moves on");

    let second = ensure(&fx, "auth").unwrap();
    assert!(!second.created);
    assert_eq!(second.base, first.base);
    assert_eq!(second.head, work.to_string());
    assert_eq!(second.path, first.path);
    assert!(second.copied.is_empty());
    assert_eq!(fx.tip("plan/auth"), Some(work));
    assert_eq!(fx.entries(), vec!["auth"]);
}

#[test]
fn readd_after_the_directory_was_deleted_keeps_the_branch() {
    let fx = Fixture::new();
    let first = ensure(&fx, "auth").unwrap();
    let work = fx.commit(&first.path, &[("a.txt", Some("a\n"))], "task 1");
    fs::remove_dir_all(&first.path).unwrap();

    assert_eq!(
        preflight(&fx, "auth").unwrap(),
        TreeAction::Readd {
            base: first.base.clone()
        }
    );
    let again = ensure(&fx, "auth").unwrap();
    assert!(again.created);
    assert_eq!(again.base, first.base);
    assert_eq!(again.head, work.to_string());
    assert_eq!(fx.tip("plan/auth"), Some(work));
    assert_eq!(fs::read_to_string(again.path.join("a.txt")).unwrap(), "a\n");
    assert_eq!(fx.entries(), vec!["auth"]);
    let wt = Repository::open(&again.path).unwrap();
    assert_eq!(wt.head().unwrap().name().unwrap(), "refs/heads/plan/auth");
    assert!(!is_dirty(&again.path).unwrap());
    // And the next call reuses it.
    assert!(!ensure(&fx, "auth").unwrap().created);
}

/// Regression (found by `tests/crash.rs`): a supervisor killed between creating the branch and
/// marking it left an unmarked branch that every later run refused as foreign. The mark is now
/// written first, so a kill in between leaves a mark without a branch, and the next call goes on.
#[test]
fn a_mark_left_without_its_branch_does_not_stop_the_next_create() {
    let fx = Fixture::new();
    let main_tip = fx.tip("main").unwrap();
    let mut config = fx.repo().config().unwrap();
    config.set_str("branch.plan/auth.orchPlan", "auth").unwrap();
    config
        .set_str("branch.plan/auth.orchBase", &"0".repeat(40))
        .unwrap();
    assert_eq!(
        preflight(&fx, "auth").unwrap(),
        TreeAction::Create {
            base: main_tip.to_string()
        }
    );
    let tree = ensure(&fx, "auth").unwrap();
    assert!(tree.created);
    assert_eq!(fx.tip("plan/auth"), Some(main_tip));
    assert_eq!(
        fx.config("branch.plan/auth.orchBase"),
        Some(main_tip.to_string())
    );
    assert!(!ensure(&fx, "auth").unwrap().created);
}

/// The mark written before the branch is taken back when the branch cannot be made (here: a
/// lock file left by a killed git process).
#[test]
fn a_branch_that_cannot_be_made_leaves_no_mark() {
    let fx = Fixture::new();
    let heads = fx.repo().path().join("refs/heads/plan");
    fs::create_dir_all(&heads).unwrap();
    fs::write(heads.join("auth.lock"), "").unwrap();
    let err = ensure(&fx, "auth").unwrap_err();
    assert!(matches!(err, GitError::CreateBranch { .. }), "{err:?}");
    assert_eq!(fx.config("branch.plan/auth.orchPlan"), None);
    assert_eq!(fx.config("branch.plan/auth.orchBase"), None);
    assert_eq!(fx.tip("plan/auth"), None);
}

#[test]
fn foreign_branch_is_refused_and_left_alone() {
    let fx = Fixture::new();
    let repo = fx.repo();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    repo.branch("plan/auth", &head, false).unwrap();
    let before = fx.snapshot();

    for result in [
        preflight(&fx, "auth").map(|_| ()),
        ensure(&fx, "auth").map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, GitError::ForeignBranch { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "branch `plan/auth` exists and was not created by orch for plan `auth`"
        );
        assert_eq!(err.exit_code(), exit::REFUSED);
        assert!(err.hint().unwrap().contains("branch ="));
    }
    assert_eq!(fx.snapshot(), before);
    assert!(!fx.wt_path("auth").exists());
    assert!(fx.entries().is_empty());

    // A branch orch made for another plan is foreign too.
    let mut config = repo.config().unwrap();
    config
        .set_str("branch.plan/auth.orchPlan", "billing")
        .unwrap();
    let err = ensure(&fx, "auth").unwrap_err();
    assert!(matches!(err, GitError::ForeignBranch { .. }), "{err:?}");
    assert_eq!(fx.tip("plan/auth"), Some(head.id()));
}

#[test]
fn foreign_paths_are_refused_and_nothing_is_created() {
    let fx = Fixture::new();
    let path = fx.wt_path("auth");
    fs::create_dir_all(&path).unwrap();
    fs::write(path.join("notes.txt"), "mine").unwrap();
    let before = fx.snapshot();
    let err = ensure(&fx, "auth").unwrap_err();
    assert!(matches!(err, GitError::ForeignPath { .. }), "{err:?}");
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert!(err.to_string().contains("not a worktree"), "{err}");
    assert_eq!(fx.snapshot(), before);
    assert_eq!(fx.tip("plan/auth"), None);
    assert_eq!(fs::read_to_string(path.join("notes.txt")).unwrap(), "mine");

    fs::remove_file(path.join("notes.txt")).unwrap();
    let before = fx.snapshot();
    let err = ensure(&fx, "auth").unwrap_err();
    assert!(matches!(err, GitError::ForeignPath { .. }), "{err:?}");
    assert!(err.to_string().contains("empty directory"), "{err}");
    assert_eq!(fx.snapshot(), before);
    assert_eq!(fx.tip("plan/auth"), None);
    assert!(fx.entries().is_empty());
}

#[test]
fn worktree_of_another_plan_at_the_path_is_foreign() {
    let fx = Fixture::new();
    let other = ensure(&fx, "billing").unwrap();
    let branch = "plan/auth";
    let req = TreeRequest {
        repo_root: &fx.root,
        plan: "auth",
        branch,
        path: &other.path,
        target: "main",
        copy: &[],
    };
    let err = ensure_plan_tree(&req).unwrap_err();
    assert!(
        err.to_string().contains("with branch `plan/billing`"),
        "{err}"
    );
    assert_eq!(fx.tip(branch), None);
}

#[test]
fn branch_checked_out_elsewhere_is_refused() {
    let fx = Fixture::new();
    let first = ensure(&fx, "auth").unwrap();
    let moved = fx.root.join("elsewhere");
    let req = TreeRequest {
        repo_root: &fx.root,
        plan: "auth",
        branch: "plan/auth",
        path: &moved,
        target: "main",
        copy: &[],
    };
    let err = ensure_plan_tree(&req).unwrap_err();
    match &err {
        GitError::BranchCheckedOut { branch, at } => {
            assert_eq!(branch, "plan/auth");
            assert_eq!(at, &first.path);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert!(!moved.exists());

    // Checked out in the main work tree.
    fs::remove_dir_all(&first.path).unwrap();
    fx.repo().set_head("refs/heads/plan/auth").unwrap();
    let err = ensure(&fx, "auth").unwrap_err();
    match &err {
        GitError::BranchCheckedOut { at, .. } => assert_eq!(at, &fx.root),
        other => panic!("{other:?}"),
    }
    assert!(!fx.wt_path("auth").exists());
}

#[test]
fn missing_target_is_invalid() {
    let fx = Fixture::new();
    let path = fx.wt_path("auth");
    let req = TreeRequest {
        repo_root: &fx.root,
        plan: "auth",
        branch: "plan/auth",
        path: &path,
        target: "trunk",
        copy: &[],
    };
    let err = ensure_plan_tree(&req).unwrap_err();
    assert!(matches!(err, GitError::TargetMissing { .. }), "{err:?}");
    assert_eq!(err.to_string(), "target branch `trunk` does not exist");
    assert_eq!(err.exit_code(), exit::INVALID);
    assert_eq!(fx.tip("plan/auth"), None);
    assert!(!path.exists());
}

#[test]
fn leftover_worktree_entries_do_not_break_a_later_add() {
    let fx = Fixture::new();
    for name in ["x1", "x2", "x3"] {
        fs::create_dir_all(fx.root.join(".git").join("worktrees").join(name)).unwrap();
    }
    let tree = ensure(&fx, "auth").unwrap();
    assert!(tree.created);
    assert_eq!(fx.entries(), vec!["auth"]);
    let wt = Repository::open(&tree.path).unwrap();
    assert_eq!(wt.head().unwrap().name().unwrap(), "refs/heads/plan/auth");
}

#[test]
fn new_worktree_gets_copies_and_worktreeinclude_entries() {
    let fx = Fixture::new();
    fs::write(fx.root.join(".env"), "SECRET=1\n").unwrap();
    fs::create_dir_all(fx.root.join("config")).unwrap();
    fs::write(fx.root.join("config/a.local"), "a").unwrap();
    fs::write(fx.root.join("config/b.local"), "b").unwrap();
    fs::write(fx.root.join("config/c.txt"), "c").unwrap();
    fs::create_dir_all(fx.root.join("data/sub")).unwrap();
    fs::write(fx.root.join("data/sub/x.bin"), "x").unwrap();
    fs::write(
        fx.root.join(WORKTREE_INCLUDE),
        "# local settings\n\nconfig/*.local\n/data/\nnot-there.txt\n",
    )
    .unwrap();
    // README.md is already in the checkout: never replaced.
    fs::write(fx.root.join("README.md"), "local edit\n").unwrap();
    let copy = [
        PathBuf::from(".env"),
        PathBuf::from("missing.txt"),
        PathBuf::from("README.md"),
    ];

    let tree = with_req(&fx, "auth", &copy, ensure_plan_tree).unwrap();
    assert_eq!(
        tree.copied,
        vec![
            PathBuf::from(".env"),
            PathBuf::from("config/a.local"),
            PathBuf::from("config/b.local"),
            PathBuf::from("data"),
        ]
    );
    assert_eq!(
        fs::read_to_string(tree.path.join(".env")).unwrap(),
        "SECRET=1\n"
    );
    assert_eq!(
        fs::read_to_string(tree.path.join("config/a.local")).unwrap(),
        "a"
    );
    assert_eq!(
        fs::read_to_string(tree.path.join("data/sub/x.bin")).unwrap(),
        "x"
    );
    assert!(!tree.path.join("config/c.txt").exists());
    assert!(!tree.path.join("missing.txt").exists());
    assert_eq!(
        fs::read_to_string(tree.path.join("README.md")).unwrap(),
        "hello\n"
    );
}

#[test]
fn copy_paths_leaving_the_repository_are_refused_before_anything_is_made() {
    let fx = Fixture::new();
    for bad in ["../outside", "/etc/passwd", ".git/config"] {
        let copy = [PathBuf::from(bad)];
        let err = with_req(&fx, "auth", &copy, ensure_plan_tree).unwrap_err();
        assert!(matches!(err, GitError::InvalidCopyPath { .. }), "{err:?}");
        assert_eq!(err.exit_code(), exit::INVALID);
        assert_eq!(fx.tip("plan/auth"), None);
        assert!(!fx.wt_path("auth").exists());
    }
    fs::write(fx.root.join(WORKTREE_INCLUDE), "../secrets\n").unwrap();
    let err = ensure(&fx, "auth").unwrap_err();
    assert!(err.to_string().contains(WORKTREE_INCLUDE), "{err}");
    assert_eq!(fx.tip("plan/auth"), None);
}

#[cfg(unix)]
#[test]
fn failure_after_the_branch_was_made_undoes_everything() {
    let fx = Fixture::new();
    // A socket cannot be copied: the copy step fails after branch and worktree exist.
    let _listener = std::os::unix::net::UnixListener::bind(fx.root.join("sock")).unwrap();
    let copy = [PathBuf::from("sock")];
    let err = with_req(&fx, "auth", &copy, ensure_plan_tree).unwrap_err();
    assert!(matches!(err, GitError::Copy { .. }), "{err:?}");
    assert_eq!(fx.tip("plan/auth"), None);
    assert_eq!(fx.config("branch.plan/auth.orchPlan"), None);
    assert!(!fx.wt_path("auth").exists());
    assert!(!fx.root.join(".orch").exists());
    assert!(fx.entries().is_empty());

    // Nothing half made stands in the way of the next attempt.
    let tree = ensure(&fx, "auth").unwrap();
    assert!(tree.created);
}

#[test]
fn preflight_changes_nothing() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.root.join(".git").join("worktrees").join("x1")).unwrap();
    fs::write(fx.root.join(".env"), "S=1").unwrap();
    let copy = [PathBuf::from(".env")];

    let before = fx.snapshot();
    let action = with_req(&fx, "auth", &copy, plan_tree_preflight).unwrap();
    assert_eq!(
        action,
        TreeAction::Create {
            base: fx.tip("main").unwrap().to_string()
        }
    );
    assert_eq!(fx.snapshot(), before);

    let tree = ensure(&fx, "auth").unwrap();
    fs::remove_dir_all(&tree.path).unwrap();
    let before = fx.snapshot();
    let action = with_req(&fx, "auth", &copy, plan_tree_preflight).unwrap();
    assert_eq!(action, TreeAction::Readd { base: tree.base });
    assert_eq!(fx.snapshot(), before);
}

#[test]
fn plans_are_created_concurrently() {
    let fx = Fixture::new();
    let plans = ["p1", "p2", "p3", "p4", "p5", "p6"];
    let trees: Vec<PlanTree> = std::thread::scope(|s| {
        let handles: Vec<_> = plans
            .iter()
            .map(|plan| {
                let fx = &fx;
                s.spawn(move || ensure(fx, plan).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (plan, tree) in plans.iter().zip(&trees) {
        assert!(tree.created);
        let wt = Repository::open(&tree.path).unwrap();
        assert_eq!(
            wt.head().unwrap().name().unwrap(),
            format!("refs/heads/plan/{plan}")
        );
    }
    assert_eq!(fx.entries(), plans.to_vec());
    // Commits in different worktrees of one repository at the same time.
    let infos: Vec<CommitInfo> = std::thread::scope(|s| {
        let handles: Vec<_> = trees
            .iter()
            .map(|t| {
                s.spawn(move || {
                    fs::write(t.path.join("work.txt"), t.branch.as_bytes()).unwrap();
                    commit_all(&t.path, "task").unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (tree, info) in trees.iter().zip(&infos) {
        assert_eq!(fx.tip(&tree.branch), Some(oid(&info.oid)));
        assert_eq!(
            file_at(&fx.repo(), oid(&info.oid), "work.txt").as_deref(),
            Some(tree.branch.as_str())
        );
    }
}

#[test]
fn wildcards_match_the_last_component() {
    for (glob, name, ok) in [
        ("*.local", "a.local", true),
        ("*.local", ".local", true),
        ("*.local", "a.locals", false),
        ("a?c", "abc", true),
        ("a?c", "ac", false),
        ("*", ".env", true),
        ("a*b*c", "aXXbYYc", true),
        ("a*b*c", "aXXbYY", false),
        ("exact", "exact", true),
    ] {
        assert_eq!(wildcard_match(glob, name), ok, "{glob} vs {name}");
    }
}

// ---------------------------------------------------------------- commits

#[test]
fn commit_all_stages_new_modified_and_deleted_files() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let wt = &tree.path;
    fs::write(wt.join("README.md"), "changed\n").unwrap();
    fs::remove_file(wt.join("old.txt")).unwrap();
    fs::create_dir_all(wt.join("src")).unwrap();
    fs::write(wt.join("src/new.rs"), "fn main() {}\n").unwrap();
    fs::write(wt.join(".hidden"), "dot\n").unwrap();

    let info = commit_all(wt, "task 1.1: change things\n\nbody").unwrap();
    assert_eq!(info.files_changed, 4);
    assert!(!info.empty);
    let repo = fx.repo();
    let id = oid(&info.oid);
    assert_eq!(fx.tip("plan/auth"), Some(id));
    let commit = repo.find_commit(id).unwrap();
    assert_eq!(
        commit.parent_ids().collect::<Vec<_>>(),
        vec![oid(&tree.head)]
    );
    assert_eq!(
        commit.message().ok(),
        Some("task 1.1: change things\n\nbody")
    );
    assert_eq!(commit.author().name().ok(), Some("Test"));
    assert_eq!(
        file_at(&repo, id, "README.md").as_deref(),
        Some("changed\n")
    );
    assert_eq!(
        file_at(&repo, id, "src/new.rs").as_deref(),
        Some("fn main() {}\n")
    );
    assert_eq!(file_at(&repo, id, ".hidden").as_deref(), Some("dot\n"));
    assert_eq!(file_at(&repo, id, "old.txt"), None);
    assert!(!is_dirty(wt).unwrap());
    assert_eq!(
        head_of(wt).unwrap(),
        (
            info.oid.clone(),
            "task 1.1: change things\n\nbody".to_string()
        )
    );
    // The main work tree's branch did not move.
    assert_eq!(fx.tip("main"), Some(oid(&tree.base)));
}

#[test]
fn commit_all_succeeds_while_another_agent_keeps_writing_a_file() {
    // With `parallel` > 1 one agent's task is committed while another agent of the plan is still
    // writing in the same worktree. libgit2 refuses a file whose size changed between its stat
    // and its read ("failed to read file into stream"); found by tests/writers.rs in CI.
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, path) = (Arc::clone(&stop), tree.path.join("growing.txt"));
        std::thread::spawn(move || {
            let line = [b'x'; 512];
            let mut n = 0u64;
            let mut file = fs::File::create(&path).unwrap();
            // Bursts of writes, as an agent (or a build it runs) writes: 64 lines, a pause.
            while !stop.load(Ordering::Relaxed) {
                file.write_all(&line).unwrap();
                n += 1;
                if n.is_multiple_of(256) {
                    // Shrinks too, replaced as editors replace a file (never truncated in
                    // place: libgit2 maps files it reads, and a truncation under the map is a
                    // SIGBUS).
                    let tmp = path.with_extension("tmp");
                    fs::write(&tmp, b"restart\n").unwrap();
                    fs::rename(&tmp, &path).unwrap();
                    file = fs::OpenOptions::new().append(true).open(&path).unwrap();
                }
                if n.is_multiple_of(64) {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        })
    };
    let results: Vec<_> = (0..40)
        .map(|n| commit_all(&tree.path, &format!("task 1.{n}: while writing")))
        .collect();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(ToString::to_string))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of 40 commits failed: {failed:?}",
        failed.len()
    );
    let repo = fx.repo();
    let tip = fx.tip("plan/auth").unwrap();
    assert_eq!(
        repo.find_commit(tip).unwrap().summary().unwrap(),
        Some("task 1.39: while writing")
    );
}

#[test]
fn commit_all_without_changes_makes_an_empty_commit() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let info = commit_all(&tree.path, "task 1.2: nothing to do").unwrap();
    assert!(info.empty);
    assert_eq!(info.files_changed, 0);
    let repo = fx.repo();
    let commit = repo.find_commit(oid(&info.oid)).unwrap();
    let parent = repo.find_commit(oid(&tree.head)).unwrap();
    assert_eq!(commit.parent_ids().collect::<Vec<_>>(), vec![parent.id()]);
    assert_eq!(commit.tree_id(), parent.tree_id());
    assert_eq!(fx.tip("plan/auth"), Some(commit.id()));
}

#[test]
fn commit_all_leaves_ignored_files_out() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    fs::write(tree.path.join("debug.log"), "noise").unwrap();
    fs::write(tree.path.join(".env"), "S=1").unwrap();
    fs::write(tree.path.join("a.txt"), "a").unwrap();
    assert!(is_dirty(&tree.path).unwrap());
    let info = commit_all(&tree.path, "task").unwrap();
    assert_eq!(info.files_changed, 1);
    let repo = fx.repo();
    assert_eq!(
        file_at(&repo, oid(&info.oid), "a.txt").as_deref(),
        Some("a")
    );
    assert_eq!(file_at(&repo, oid(&info.oid), "debug.log"), None);
    assert_eq!(file_at(&repo, oid(&info.oid), ".env"), None);
    assert!(tree.path.join("debug.log").exists());
    assert!(!is_dirty(&tree.path).unwrap());
}

#[test]
fn save_and_reset_keeps_the_attempt_and_cleans_the_worktree() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let wt = &tree.path;
    let refname = "refs/orch/attempts/auth/1.2/1";
    assert_eq!(save_and_reset(wt, refname, "attempt 1").unwrap(), None);
    assert!(fx.repo().find_reference(refname).is_err());

    fs::write(wt.join("README.md"), "half done\n").unwrap();
    fs::create_dir_all(wt.join("new/dir")).unwrap();
    fs::write(wt.join("new/dir/file.txt"), "draft\n").unwrap();
    fs::write(wt.join("build.log"), "ignored").unwrap();
    let saved = save_and_reset(wt, refname, "attempt 1 of task 1.2")
        .unwrap()
        .unwrap();

    let repo = fx.repo();
    let id = oid(&saved);
    assert_eq!(repo.find_reference(refname).unwrap().target(), Some(id));
    let commit = repo.find_commit(id).unwrap();
    assert_eq!(
        commit.parent_ids().collect::<Vec<_>>(),
        vec![oid(&tree.head)]
    );
    assert_eq!(commit.message().ok(), Some("attempt 1 of task 1.2"));
    assert_eq!(
        file_at(&repo, id, "README.md").as_deref(),
        Some("half done\n")
    );
    assert_eq!(
        file_at(&repo, id, "new/dir/file.txt").as_deref(),
        Some("draft\n")
    );
    assert_eq!(file_at(&repo, id, "build.log"), None);
    // HEAD did not move; the worktree is back at HEAD; ignored files stay.
    assert_eq!(fx.tip("plan/auth"), Some(oid(&tree.head)));
    assert!(!is_dirty(wt).unwrap());
    assert_eq!(fs::read_to_string(wt.join("README.md")).unwrap(), "hello\n");
    assert!(!wt.join("new/dir/file.txt").exists());
    assert!(wt.join("build.log").exists());
}

// ---------------------------------------------------------------- merges

#[test]
fn merge_into_makes_a_two_parent_commit_and_updates_the_worktree() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let ours = fx.commit(&tree.path, &[("a.txt", Some("a\n"))], "plan work");
    let theirs = fx.commit(&fx.root, &[("b.txt", Some("b\n"))], "main work");

    let outcome = merge_into(&tree.path, "plan/auth", &theirs.to_string(), "merge main").unwrap();
    let MergeOutcome::Merged { commit } = outcome else {
        panic!("{outcome:?}");
    };
    let repo = fx.repo();
    let id = oid(&commit);
    let merged = repo.find_commit(id).unwrap();
    assert_eq!(merged.parent_ids().collect::<Vec<_>>(), vec![ours, theirs]);
    assert_eq!(merged.message().ok(), Some("merge main"));
    assert_eq!(fx.tip("plan/auth"), Some(id));
    assert_eq!(fx.tip("main"), Some(theirs));
    assert_eq!(file_at(&repo, id, "a.txt").as_deref(), Some("a\n"));
    assert_eq!(file_at(&repo, id, "b.txt").as_deref(), Some("b\n"));
    assert_eq!(fs::read_to_string(tree.path.join("a.txt")).unwrap(), "a\n");
    assert_eq!(fs::read_to_string(tree.path.join("b.txt")).unwrap(), "b\n");
    assert!(!is_dirty(&tree.path).unwrap());
}

#[test]
fn merge_into_is_never_a_fast_forward() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let theirs = fx.commit(&fx.root, &[("b.txt", Some("b\n"))], "main work");
    let outcome = merge_into(&tree.path, "plan/auth", &theirs.to_string(), "merge").unwrap();
    let MergeOutcome::Merged { commit } = outcome else {
        panic!("{outcome:?}");
    };
    let repo = fx.repo();
    let merged = repo.find_commit(oid(&commit)).unwrap();
    assert_eq!(
        merged.parent_ids().collect::<Vec<_>>(),
        vec![oid(&tree.head), theirs]
    );
    assert_eq!(fs::read_to_string(tree.path.join("b.txt")).unwrap(), "b\n");
}

#[test]
fn merge_into_of_an_ancestor_changes_nothing() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let ours = fx.commit(&tree.path, &[("a.txt", Some("a\n"))], "plan work");
    for upstream in [tree.base.clone(), ours.to_string()] {
        let outcome = merge_into(&tree.path, "plan/auth", &upstream, "merge").unwrap();
        assert_eq!(outcome, MergeOutcome::AlreadyContained);
        assert_eq!(fx.tip("plan/auth"), Some(ours));
    }
}

#[test]
fn merge_conflict_reports_paths_and_changes_nothing() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let ours = fx.commit(&tree.path, &[("README.md", Some("ours\n"))], "plan");
    let theirs = fx.commit(&fx.root, &[("README.md", Some("theirs\n"))], "main");
    let before = walk(&tree.path);

    let outcome = merge_into(&tree.path, "plan/auth", &theirs.to_string(), "merge").unwrap();
    assert_eq!(
        outcome,
        MergeOutcome::Conflict {
            paths: vec!["README.md".to_string()]
        }
    );
    assert_eq!(fx.tip("plan/auth"), Some(ours));
    assert_eq!(
        fs::read_to_string(tree.path.join("README.md")).unwrap(),
        "ours\n"
    );
    assert_eq!(walk(&tree.path), before);
    assert!(!is_dirty(&tree.path).unwrap());
}

/// Regression (found by `tests/crash.rs`): a supervisor killed inside a merge, after the
/// checkout and before the ref update, left the merge's result as uncommitted changes, and every
/// later merge was refused (`uncommitted changes`), blocking the plan. Exactly that state is now
/// finished; anything else in the tree is still refused.
#[test]
fn merge_into_finishes_a_merge_killed_between_checkout_and_ref_update() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let ours = fx.commit(&tree.path, &[("a.txt", Some("a\n"))], "plan work");
    let theirs = fx.commit(&fx.root, &[("b.txt", Some("b\n"))], "main work");
    // The checkout of the merge result happened (files and index), the ref did not move.
    fs::write(tree.path.join("b.txt"), "b\n").unwrap();
    let wt = Repository::open(&tree.path).unwrap();
    let mut index = wt.index().unwrap();
    index.add_path(Path::new("b.txt")).unwrap();
    index.write().unwrap();
    assert!(is_dirty(&tree.path).unwrap());

    let outcome = merge_into(&tree.path, "plan/auth", &theirs.to_string(), "merge main").unwrap();
    let MergeOutcome::Merged { commit } = outcome else {
        panic!("{outcome:?}");
    };
    let repo = fx.repo();
    let merged = repo.find_commit(oid(&commit)).unwrap();
    assert_eq!(merged.parent_ids().collect::<Vec<_>>(), vec![ours, theirs]);
    assert_eq!(fx.tip("plan/auth"), Some(oid(&commit)));
    assert!(!is_dirty(&tree.path).unwrap());

    // The result plus something else is not a killed merge: refused.
    let more = fx.commit(&fx.root, &[("c.txt", Some("c\n"))], "more main work");
    fs::write(tree.path.join("c.txt"), "c\n").unwrap();
    fs::write(tree.path.join("wip.txt"), "wip").unwrap();
    let err = merge_into(&tree.path, "plan/auth", &more.to_string(), "merge").unwrap_err();
    assert!(matches!(err, GitError::Dirty { .. }), "{err:?}");
    assert_eq!(fx.tip("plan/auth"), Some(oid(&commit)));
}

#[test]
fn merge_into_refuses_a_dirty_worktree_and_a_wrong_branch() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let theirs = fx.commit(&fx.root, &[("b.txt", Some("b\n"))], "main work");
    fs::write(tree.path.join("wip.txt"), "wip").unwrap();
    let err = merge_into(&tree.path, "plan/auth", &theirs.to_string(), "merge").unwrap_err();
    match &err {
        GitError::Dirty { files, .. } => assert_eq!(files, &vec!["wip.txt".to_string()]),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert_eq!(fx.tip("plan/auth"), Some(oid(&tree.head)));
    assert!(!tree.path.join("b.txt").exists());

    fs::remove_file(tree.path.join("wip.txt")).unwrap();
    let err = merge_into(&tree.path, "plan/other", &theirs.to_string(), "merge").unwrap_err();
    assert!(matches!(err, GitError::WrongBranch { .. }), "{err:?}");
    let err = merge_into(&tree.path, "plan/auth", "not-hex", "merge").unwrap_err();
    assert!(matches!(err, GitError::InvalidOid { .. }), "{err:?}");
    assert_eq!(err.exit_code(), exit::INVALID);
}

// ---------------------------------------------------------------- queries

#[test]
fn latest_of_picks_the_descendant() {
    let fx = Fixture::new();
    let c0 = fx.tip("main").unwrap();
    let c1 = fx.commit(&fx.root, &[("1", Some("1"))], "one");
    let c2 = fx.commit(&fx.root, &[("2", Some("2"))], "two");
    let c3 = fx.commit(&fx.root, &[("3", Some("3"))], "three");
    let s = |o: Oid| o.to_string();
    assert_eq!(
        latest_of(&fx.root, &[s(c1), s(c3), s(c0), s(c2)]).unwrap(),
        Some(s(c3))
    );
    assert_eq!(latest_of(&fx.root, &[s(c2), s(c2)]).unwrap(), Some(s(c2)));
    assert_eq!(latest_of(&fx.root, &[]).unwrap(), None);

    // Off the line: a side branch from c1 with one commit has fewer ancestors among them than c3.
    let repo = fx.repo();
    let side_parent = repo.find_commit(c1).unwrap();
    let sig = fixed_sig();
    let side = repo
        .commit(
            None,
            &sig,
            &sig,
            "side",
            &side_parent.tree().unwrap(),
            &[&side_parent],
        )
        .unwrap();
    assert_eq!(
        latest_of(&fx.root, &[s(side), s(c1), s(c2), s(c3)]).unwrap(),
        Some(s(c3))
    );
    assert!(matches!(
        latest_of(&fx.root, &["xyz".to_string()]),
        Err(GitError::InvalidOid { .. })
    ));
}

#[test]
fn file_differs_from_compares_the_work_dir_with_the_target() {
    let fx = Fixture::new();
    let differs = |rel: &str| file_differs_from(&fx.root, "main", Path::new(rel)).unwrap();
    assert!(!differs("README.md"));
    fs::write(fx.root.join("README.md"), "edited\n").unwrap();
    assert!(differs("README.md"));
    fs::write(fx.root.join("untracked.txt"), "u").unwrap();
    assert!(differs("untracked.txt"));
    fs::write(fx.root.join(".env"), "S=1").unwrap();
    assert!(differs(".env"), "ignored files count");
    assert!(!differs("nowhere.txt"));
    fs::remove_file(fx.root.join("old.txt")).unwrap();
    assert!(differs("old.txt"));
    let err = file_differs_from(&fx.root, "trunk", Path::new("README.md")).unwrap_err();
    assert!(matches!(err, GitError::TargetMissing { .. }), "{err:?}");
}

#[test]
fn ensure_excluded_appends_once_to_the_common_dir() {
    let fx = Fixture::new();
    let exclude = fx.root.join(".git/info/exclude");
    fs::create_dir_all(exclude.parent().unwrap()).unwrap();
    fs::write(
        &exclude,
        "# git ls-files --others --exclude-from=.git/info/exclude\n*.tmp",
    )
    .unwrap();
    let entries = vec![".orch/".to_string(), "tmp/".to_string()];
    ensure_excluded(&fx.root, &entries).unwrap();
    ensure_excluded(&fx.root, &entries).unwrap();
    // From a linked worktree: still the main repository's file.
    let tree = ensure(&fx, "auth").unwrap();
    ensure_excluded(&tree.path, &[".orch/".to_string(), "more/".to_string()]).unwrap();
    assert_eq!(
        fs::read_to_string(&exclude).unwrap(),
        "# git ls-files --others --exclude-from=.git/info/exclude\n*.tmp\n.orch/\ntmp/\nmore/\n"
    );
    fs::create_dir_all(fx.root.join(".orch/state")).unwrap();
    fs::write(fx.root.join(".orch/state/s.json"), "{}").unwrap();
    assert!(!is_dirty(&fx.root).unwrap());
}

#[test]
fn branch_tip_and_open() {
    let fx = Fixture::new();
    assert_eq!(
        branch_tip(&fx.root, "main").unwrap(),
        Some(fx.tip("main").unwrap().to_string())
    );
    assert_eq!(branch_tip(&fx.root, "nope").unwrap(), None);
    let plain = fx.tmp.path().join("plain");
    fs::create_dir_all(&plain).unwrap();
    let Err(err) = open(&plain) else {
        panic!("a plain directory opened as a repository");
    };
    assert!(matches!(err, GitError::NotARepository { .. }), "{err:?}");
    assert_eq!(err.exit_code(), exit::INVALID);
    assert!(err.hint().is_some());
}

#[test]
fn commits_wait_for_a_ref_lock_held_by_git() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let lock = fx.root.join(".git/refs/heads/plan/auth.lock");
    fs::create_dir_all(lock.parent().unwrap()).unwrap();

    // Released after a moment: the commit goes through.
    fs::write(&lock, "").unwrap();
    fs::write(tree.path.join("a.txt"), "a").unwrap();
    let info = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(30));
            fs::remove_file(&lock).unwrap();
        });
        commit_all(&tree.path, "task").unwrap()
    });
    assert_eq!(fx.tip("plan/auth"), Some(oid(&info.oid)));

    // Held for good: a clear error with a hint, the branch unmoved.
    fs::write(&lock, "").unwrap();
    fs::write(tree.path.join("b.txt"), "b").unwrap();
    let err = commit_all(&tree.path, "task 2").unwrap_err();
    assert!(err.hint().unwrap().contains(".lock"), "{err:?}");
    assert_eq!(err.exit_code(), exit::FAILURE);
    assert_eq!(fx.tip("plan/auth"), Some(oid(&info.oid)));
}

/// A supervisor killed while libgit2 added the worktree left an empty directory at its path: the
/// branch is orch's, so the directory is its own leftover. The preflight says so without touching
/// anything; `ensure` clears it and adds the worktree again.
#[test]
fn an_empty_directory_left_at_an_orch_branchs_worktree_path_is_re_added() {
    let fx = Fixture::new();
    let first = ensure(&fx, "auth").unwrap();
    fs::remove_dir_all(&first.path).unwrap();
    fs::create_dir_all(&first.path).unwrap();
    let before = fx.snapshot();
    assert_eq!(
        preflight(&fx, "auth").unwrap(),
        TreeAction::Readd {
            base: first.base.clone()
        }
    );
    assert_eq!(fx.snapshot(), before);
    assert!(first.path.is_dir());
    let tree = ensure(&fx, "auth").unwrap();
    assert!(tree.created);
    assert!(tree.path.join("README.md").is_file());
    assert!(!is_dirty(&tree.path).unwrap());
}

/// libgit2 creates the worktree's `.git` file and then writes it: a supervisor killed in between
/// left an empty `.git` in an otherwise empty directory, refused as "not a worktree of this
/// repository" (a candidate for the crash-harness failure of seed 2027). It is orch's own
/// leftover: added again. An empty `.git` beside a file that is not the branch's is still refused.
#[test]
fn a_directory_with_an_empty_dot_git_file_is_re_added() {
    let fx = Fixture::new();
    let first = ensure(&fx, "auth").unwrap();
    // As libgit2 leaves it: the entry's directory made (and nothing in it yet), then the
    // worktree's directory, then `.git` created.
    let admin = fx.root.join(".git/worktrees/auth");
    fs::remove_dir_all(&admin).unwrap();
    fs::create_dir_all(&admin).unwrap();
    fs::remove_dir_all(&first.path).unwrap();
    fs::create_dir_all(&first.path).unwrap();
    fs::write(first.path.join(".git"), "").unwrap();
    fs::write(first.path.join("mine.txt"), "not orch's").unwrap();
    let err = preflight(&fx, "auth").unwrap_err();
    assert!(matches!(err, GitError::ForeignPath { .. }), "{err:?}");
    fs::remove_file(first.path.join("mine.txt")).unwrap();
    assert_eq!(
        preflight(&fx, "auth").unwrap(),
        TreeAction::Readd {
            base: first.base.clone()
        }
    );
    let tree = ensure(&fx, "auth").unwrap();
    assert!(tree.created);
    assert!(tree.path.join("README.md").is_file());
    assert!(!is_dirty(&tree.path).unwrap());
}

/// A half-made worktree is removed by renaming it aside first: a kill during the removal leaves
/// the path free and the renamed rest, which the next run removes.
#[test]
fn what_a_removal_cut_short_left_aside_is_swept() {
    let fx = Fixture::new();
    let first = ensure(&fx, "auth").unwrap();
    fs::remove_dir_all(&first.path).unwrap();
    fs::create_dir_all(&first.path).unwrap();
    let aside = first.path.with_file_name(".auth.orch-discard");
    fs::create_dir_all(aside.join("src")).unwrap();
    fs::write(aside.join("src/half.rs"), "fn").unwrap();
    let tree = ensure(&fx, "auth").unwrap();
    assert!(tree.created);
    assert!(!aside.exists());
    assert!(tree.path.join("README.md").is_file());
}

/// Regression (found by `tests/crash.rs`): a supervisor killed inside a merge's checkout, some of
/// the result's files written and the index not yet, blocked the plan on "uncommitted changes".
/// Every file either the result's or still ours: the merge is finished. A file that is neither
/// is still refused.
#[test]
fn merge_into_finishes_a_merge_killed_inside_its_checkout() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let ours = fx.commit(&tree.path, &[("a.txt", Some("a\n"))], "plan work");
    let theirs = fx.commit(
        &fx.root,
        &[("b.txt", Some("b\n")), ("c.txt", Some("c\n"))],
        "main work",
    );
    // Only b.txt was written; the index is untouched.
    fs::write(tree.path.join("b.txt"), "b\n").unwrap();
    assert!(is_dirty(&tree.path).unwrap());
    let outcome = merge_into(&tree.path, "plan/auth", &theirs.to_string(), "merge main").unwrap();
    let MergeOutcome::Merged { commit } = outcome else {
        panic!("{outcome:?}");
    };
    let repo = fx.repo();
    let merged = repo.find_commit(oid(&commit)).unwrap();
    assert_eq!(merged.parent_ids().collect::<Vec<_>>(), vec![ours, theirs]);
    assert!(!is_dirty(&tree.path).unwrap());
    assert_eq!(fs::read_to_string(tree.path.join("c.txt")).unwrap(), "c\n");

    // A file that is neither ours nor the result's: refused, left as it is.
    let more = fx.commit(&fx.root, &[("d.txt", Some("d\n"))], "more main work");
    fs::write(tree.path.join("d.txt"), "my d\n").unwrap();
    let err = merge_into(&tree.path, "plan/auth", &more.to_string(), "merge").unwrap_err();
    assert!(matches!(err, GitError::Dirty { .. }), "{err:?}");
    assert_eq!(
        fs::read_to_string(tree.path.join("d.txt")).unwrap(),
        "my d\n"
    );
    assert_eq!(fx.tip("plan/auth"), Some(oid(&commit)));
}

/// Regression (found by `tests/crash.rs`, seed 3090): libgit2's checkout writes each file in
/// place (create, then write), so a kill between the two left the result's file empty, or cut
/// short, and the plan blocked on "uncommitted changes". A file that is the beginning of the
/// result's is a write cut short: the merge is finished. One that is not is still refused.
#[test]
fn merge_into_finishes_a_merge_killed_while_writing_a_file() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let ours = fx.commit(&tree.path, &[("a.txt", Some("a\n"))], "plan work");
    let theirs = fx.commit(
        &fx.root,
        &[
            ("b.txt", Some("first line\nsecond line\n")),
            ("c.txt", Some("c\n")),
        ],
        "main work",
    );
    // b.txt created and not written yet, c.txt cut short.
    fs::write(tree.path.join("b.txt"), "").unwrap();
    fs::write(tree.path.join("c.txt"), "").unwrap();
    let outcome = merge_into(&tree.path, "plan/auth", &theirs.to_string(), "merge main").unwrap();
    let MergeOutcome::Merged { commit } = outcome else {
        panic!("{outcome:?}");
    };
    let repo = fx.repo();
    let merged = repo.find_commit(oid(&commit)).unwrap();
    assert_eq!(merged.parent_ids().collect::<Vec<_>>(), vec![ours, theirs]);
    assert!(!is_dirty(&tree.path).unwrap());
    assert_eq!(
        fs::read_to_string(tree.path.join("b.txt")).unwrap(),
        "first line\nsecond line\n"
    );

    let more = fx.commit(&fx.root, &[("d.txt", Some("first line\nsecond\n"))], "more");
    fs::write(tree.path.join("d.txt"), "first line\n").unwrap();
    let outcome = merge_into(&tree.path, "plan/auth", &more.to_string(), "merge more").unwrap();
    assert!(
        matches!(outcome, MergeOutcome::Merged { .. }),
        "{outcome:?}"
    );
    assert!(!is_dirty(&tree.path).unwrap());

    // Not the beginning of the result's file: refused, left as it is.
    let last = fx.commit(&fx.root, &[("e.txt", Some("e\n"))], "last");
    fs::write(tree.path.join("e.txt"), "x").unwrap();
    let err = merge_into(&tree.path, "plan/auth", &last.to_string(), "merge").unwrap_err();
    assert!(matches!(err, GitError::Dirty { .. }), "{err:?}");
    assert_eq!(fs::read_to_string(tree.path.join("e.txt")).unwrap(), "x");
}

// ---------------------------------------------------------------- task worktrees

/// Task `id`'s request in plan `auth` (branch `plan/auth`), with `f`.
fn with_task<T>(fx: &Fixture, id: &str, f: impl FnOnce(&TaskTreeRequest) -> T) -> T {
    let root = fx.root.join(".orch").join("worktrees");
    f(&TaskTreeRequest {
        repo_root: &fx.root,
        plan: "auth",
        plan_branch: "plan/auth",
        id,
        worktree_root: &root,
        copy: &[],
    })
}

fn task_tree(fx: &Fixture, id: &str) -> PlanTree {
    with_task(fx, id, |req| ensure_task_tree(req).unwrap())
}

fn retire(fx: &Fixture, id: &str, save: Option<(&str, &str)>) -> Option<String> {
    with_task(fx, id, |req| retire_task_tree(req, save).unwrap())
}

#[test]
fn task_tree_names_are_valid_refs_and_never_plan_names() {
    for id in ["2.1", "V3", "1.2.3"] {
        let branch = task_branch("auth", id);
        assert!(crate::manifest::is_valid_ref_name(&branch), "{branch}");
        let name = task_tree_name("auth", id);
        assert!(crate::manifest::check_plan_name(&name).is_err(), "{name}");
        assert_eq!(super::task_tree::check_tree_name(&name), Ok(()));
    }
    for bad in ["auth+", "auth+../x", "auth+a/b", "auth+.x", "../x+1.1"] {
        assert!(super::task_tree::check_tree_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn task_commits_land_one_per_task_fast_forward_then_on_the_moved_tip() {
    let fx = Fixture::new();
    let plan = ensure(&fx, "auth").unwrap();
    let one = task_tree(&fx, "1.1");
    let two = task_tree(&fx, "1.2");
    assert_eq!(one.branch, "orch/task/auth/1.1");
    assert_eq!(one.path, fx.wt_path("auth+1.1"));
    assert_eq!(one.base, plan.head);
    let t1 = fx.commit(&one.path, &[("a.txt", Some("a\n"))], "auth 1.1: A");
    let t2 = fx.commit(&two.path, &[("b.txt", Some("b\n"))], "auth 1.2: B");

    // The plan branch has not moved: a fast-forward to the task commit itself.
    let landed = land_task_commit(&plan.path, "plan/auth", &t1.to_string()).unwrap();
    assert_eq!(
        landed,
        Landed::Landed {
            commit: t1.to_string()
        }
    );
    assert_eq!(fx.tip("plan/auth"), Some(t1));
    assert_eq!(fs::read_to_string(plan.path.join("a.txt")).unwrap(), "a\n");

    // It moved (1.1 landed): 1.2's changes go on top as one commit with 1.2's message.
    let Landed::Landed { commit } =
        land_task_commit(&plan.path, "plan/auth", &t2.to_string()).unwrap()
    else {
        panic!("1.2 did not land");
    };
    let repo = fx.repo();
    let c = repo.find_commit(oid(&commit)).unwrap();
    assert_ne!(c.id(), t2);
    assert_eq!(c.parent_ids().collect::<Vec<_>>(), vec![t1]);
    assert_eq!(c.message().ok(), Some("auth 1.2: B"));
    assert_eq!(fx.tip("plan/auth"), Some(c.id()));
    assert_eq!(file_at(&repo, c.id(), "a.txt").as_deref(), Some("a\n"));
    assert_eq!(file_at(&repo, c.id(), "b.txt").as_deref(), Some("b\n"));
    assert_eq!(fs::read_to_string(plan.path.join("b.txt")).unwrap(), "b\n");
    assert!(!is_dirty(&plan.path).unwrap());

    // Landing again (a supervisor restarted before recording it) finds it landed.
    for t in [t1, t2] {
        let again = land_task_commit(&plan.path, "plan/auth", &t.to_string()).unwrap();
        assert!(matches!(again, Landed::Already { .. }), "{again:?}");
    }
    assert_eq!(fx.tip("plan/auth"), Some(c.id()));

    // Retired: worktrees, entries and branches gone. Asked to save, only 1.2's commit is kept:
    // 1.1's is on the plan branch itself, 1.2's landed as a copy (orch retires without saving
    // after a landing).
    for id in ["1.1", "1.2"] {
        let saved = retire(&fx, id, Some(("refs/orch/x", "m")));
        assert_eq!(
            saved.as_deref(),
            if id == "1.1" {
                None
            } else {
                Some("refs/orch/x")
            }
        );
        assert!(!fx.wt_path(&task_tree_name("auth", id)).exists());
        assert_eq!(fx.tip(&task_branch("auth", id)), None);
    }
    assert_eq!(fx.entries(), vec!["auth".to_string()]);
    assert!(task_tree_ids(&fx.root, "auth").unwrap().is_empty());
}

#[test]
fn a_task_commit_lands_on_a_plan_branch_moved_by_someone_else() {
    let fx = Fixture::new();
    let plan = ensure(&fx, "auth").unwrap();
    let one = task_tree(&fx, "1.1");
    let t1 = fx.commit(&one.path, &[("a.txt", Some("a\n"))], "auth 1.1: A");
    let moved = fx.commit(&plan.path, &[("m.txt", Some("m\n"))], "by hand");
    let Landed::Landed { commit } =
        land_task_commit(&plan.path, "plan/auth", &t1.to_string()).unwrap()
    else {
        panic!("did not land");
    };
    let repo = fx.repo();
    let c = repo.find_commit(oid(&commit)).unwrap();
    assert_eq!(c.parent_ids().collect::<Vec<_>>(), vec![moved]);
    assert_eq!(file_at(&repo, c.id(), "m.txt").as_deref(), Some("m\n"));
    assert_eq!(file_at(&repo, c.id(), "a.txt").as_deref(), Some("a\n"));
    assert_eq!(fs::read_to_string(plan.path.join("a.txt")).unwrap(), "a\n");
}

#[test]
fn a_conflicting_task_commit_changes_nothing_and_is_saved_when_retired() {
    let fx = Fixture::new();
    let plan = ensure(&fx, "auth").unwrap();
    let one = task_tree(&fx, "1.1");
    let two = task_tree(&fx, "1.2");
    let t1 = fx.commit(&one.path, &[("README.md", Some("one\n"))], "auth 1.1: A");
    let t2 = fx.commit(&two.path, &[("README.md", Some("two\n"))], "auth 1.2: B");
    land_task_commit(&plan.path, "plan/auth", &t1.to_string()).unwrap();
    let before = walk(&plan.path);
    let outcome = land_task_commit(&plan.path, "plan/auth", &t2.to_string()).unwrap();
    assert_eq!(
        outcome,
        Landed::Conflict {
            paths: vec!["README.md".to_string()]
        }
    );
    assert_eq!(fx.tip("plan/auth"), Some(t1));
    assert_eq!(walk(&plan.path), before);
    assert_eq!(
        fs::read_to_string(plan.path.join("README.md")).unwrap(),
        "one\n"
    );
    // Uncommitted work in the task worktree goes into the saved commit too.
    fs::write(two.path.join("extra.txt"), "x\n").unwrap();
    let saved = retire(&fx, "1.2", Some(("refs/orch/attempts/auth/1.2/1", "saved")));
    assert_eq!(saved.as_deref(), Some("refs/orch/attempts/auth/1.2/1"));
    let repo = fx.repo();
    let kept = repo
        .find_reference("refs/orch/attempts/auth/1.2/1")
        .unwrap()
        .target()
        .unwrap();
    assert_eq!(repo.find_commit(kept).unwrap().parent_id(0).unwrap(), t2);
    assert_eq!(file_at(&repo, kept, "extra.txt").as_deref(), Some("x\n"));
    assert!(!two.path.exists());
    assert_eq!(fx.tip("orch/task/auth/1.2"), None);
}

#[test]
fn a_half_made_task_worktree_is_discarded_and_made_again() {
    let fx = Fixture::new();
    ensure(&fx, "auth").unwrap();
    let one = task_tree(&fx, "1.1");
    // What a kill inside libgit2's add leaves: the checkout's files, no index yet.
    let admin = fx.root.join(".git").join("worktrees").join("auth+1.1");
    fs::remove_file(admin.join("index")).unwrap();
    fs::remove_file(one.path.join("old.txt")).unwrap();
    assert_eq!(retire(&fx, "1.1", Some(("refs/orch/x", "m"))), None);
    assert!(!one.path.exists());
    assert!(!admin.exists());
    assert_eq!(fx.tip("orch/task/auth/1.1"), None);
    let again = task_tree(&fx, "1.1");
    assert!(again.created);
    assert_eq!(
        fs::read_to_string(again.path.join("old.txt")).unwrap(),
        "old\n"
    );
}

/// Regression (found by the crash harness with task worktrees): libgit2's branch delete removes
/// the `branch.<name>` config section first and the ref second, so a kill in between left a
/// branch without orch's mark, refused as foreign for good. The ref now goes first: with the
/// config locked (as by a kill at that moment), the branch is gone and only its mark is left,
/// which the next create of the branch writes over.
#[test]
fn a_branch_is_deleted_before_its_mark() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    remove_plan_worktree(&fx.root, "auth", "plan/auth").unwrap();
    let tip = fx.tip("plan/auth").unwrap().to_string();
    // A branch checked out in a worktree is refused.
    let again = ensure(&fx, "auth").unwrap();
    let err = delete_plan_branch(&fx.root, "auth", "plan/auth", &tip).unwrap_err();
    assert!(matches!(err, GitError::BranchCheckedOut { .. }), "{err:?}");
    remove_plan_worktree(&fx.root, "auth", "plan/auth").unwrap();
    assert_eq!(again.path, tree.path);

    let lock = fx.root.join(".git/config.lock");
    fs::write(&lock, "").unwrap();
    delete_plan_branch(&fx.root, "auth", "plan/auth", &tip).unwrap();
    fs::remove_file(&lock).unwrap();
    assert_eq!(fx.tip("plan/auth"), None);
    let config = fs::read_to_string(fx.root.join(".git/config")).unwrap();
    assert!(config.contains("orchPlan = auth"), "{config}");
    let made = ensure(&fx, "auth").unwrap();
    assert!(made.created);
    assert!(fx.tip("plan/auth").is_some());

    // Without a lock in the way, the section goes with the branch.
    remove_plan_worktree(&fx.root, "auth", "plan/auth").unwrap();
    let tip = fx.tip("plan/auth").unwrap().to_string();
    delete_plan_branch(&fx.root, "auth", "plan/auth", &tip).unwrap();
    let config = fs::read_to_string(fx.root.join(".git/config")).unwrap();
    assert!(!config.contains("orchPlan"), "{config}");
}

/// Regression (found by the crash harness with task worktrees): a branch mark written while
/// another thread of orch held `.git/config.lock` (deleting a task branch) failed at once, and
/// with it the task. Config writes are now retried while the lock is held.
#[test]
fn a_branch_mark_waits_for_a_config_lock_held_briefly() {
    let fx = Fixture::new();
    let lock = fx.root.join(".git/config.lock");
    fs::write(&lock, "").unwrap();
    let release = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(30));
            fs::remove_file(lock).unwrap();
        })
    };
    let tree = ensure(&fx, "auth");
    release.join().unwrap();
    let tree = tree.unwrap();
    assert!(tree.created);
    let config = fs::read_to_string(fx.root.join(".git/config")).unwrap();
    assert!(config.contains("orchPlan = auth"), "{config}");
}

/// Regression (found by the crash harness with task worktrees): retiring one task's worktree
/// pruned the entry of another task's worktree that libgit2 was adding at that moment (it has no
/// `gitdir` file until the add is done), and that add failed. Retiring now waits for adds.
#[test]
fn task_worktrees_made_and_retired_at_once_in_two_threads_all_succeed() {
    let fx = std::sync::Arc::new(Fixture::new());
    ensure(&fx, "auth").unwrap();
    let worker = |id: &'static str| {
        let fx = std::sync::Arc::clone(&fx);
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            for _ in 0..25 {
                let made = with_task(&fx, id, |req| ensure_task_tree(req).map(|_| ()));
                let gone = with_task(&fx, id, |req| retire_task_tree(req, None).map(|_| ()));
                failures.extend(
                    made.err()
                        .into_iter()
                        .chain(gone.err())
                        .map(|e| e.to_string()),
                );
            }
            failures
        })
    };
    let (a, b) = (worker("1.1"), worker("1.2"));
    let failures: Vec<String> = [a, b].into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(fx.entries(), ["auth"]);
}

/// Regression (found by the crash harness with task worktrees): libgit2 creates an entry's
/// `gitdir` file and then writes it; a kill in between left it empty, which read as a live entry
/// whose worktree is `.git/worktrees`, and every later add of that worktree failed ("not a git
/// repository"). An empty `gitdir` is a leftover of an interrupted add: pruned.
#[test]
fn an_entry_with_an_empty_gitdir_file_is_a_leftover() {
    let fx = Fixture::new();
    ensure(&fx, "auth").unwrap();
    for name in ["auth+1.1", "docs"] {
        let admin = fx.root.join(".git/worktrees").join(name);
        fs::create_dir_all(&admin).unwrap();
        fs::write(admin.join("gitdir"), "").unwrap();
    }
    let tree = task_tree(&fx, "1.1");
    assert!(tree.path.join("README.md").is_file());
    assert!(retire(&fx, "1.1", None).is_none());
    let docs = ensure(&fx, "docs").unwrap();
    assert!(docs.created);
    assert_eq!(fx.entries(), ["auth", "docs"]);
}
