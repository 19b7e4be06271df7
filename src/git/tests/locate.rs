//! Where a worktree's repository is found (never from its `.git` file), and the admin files put
//! back before a commit.

use super::*;

/// The admin directory of the linked worktree `path` (`<common dir>/worktrees/<name>`), found
/// without reading its `.git` file; `None` when `path` is not a linked worktree of the repository
/// above it.
fn worktree_admin_dir(path: &Path) -> Option<PathBuf> {
    let loc = crate::git::locate::locate(path).ok()?;
    loc.linked.then_some(loc.git_dir)
}

#[test]
fn a_worktree_is_opened_through_its_admin_dir_whatever_its_git_file_says() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    // The agent's own repository, and the worktree's `.git` pointing at it.
    let own = fx.root.join(".orch/worktrees/auth/own");
    Repository::init_bare(&own).unwrap();
    fs::write(
        tree.path.join(".git"),
        format!("gitdir: {}\n", own.display()),
    )
    .unwrap();
    let admin = fx.root.join(".git/worktrees/auth");
    let repo = open(&tree.path).unwrap();
    assert_eq!(
        repo.path().canonicalize().unwrap(),
        admin.canonicalize().unwrap()
    );
    assert_eq!(
        repo.workdir().unwrap().canonicalize().unwrap(),
        tree.path.canonicalize().unwrap()
    );
    assert_eq!(worktree_admin_dir(&tree.path), Some(admin.clone()));
    // A `.git` directory in its place changes nothing either.
    fs::remove_file(tree.path.join(".git")).unwrap();
    Repository::init(tree.path.join("x")).unwrap();
    fs::rename(tree.path.join("x/.git"), tree.path.join(".git")).unwrap();
    assert_eq!(
        open(&tree.path).unwrap().path().canonicalize().unwrap(),
        admin.canonicalize().unwrap()
    );
    // The main work dir is the main repository.
    assert!(!open(&fx.root).unwrap().is_worktree());
}

#[test]
fn pinning_puts_back_head_links_and_the_git_file_and_drops_foreign_worktree_config() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let admin = fx.root.join(".git/worktrees/auth");
    fs::write(admin.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    fs::write(admin.join("gitdir"), "/somewhere/else/.git\n").unwrap();
    fs::write(admin.join("commondir"), "/elsewhere\n").unwrap();
    fs::write(
        admin.join("config.worktree"),
        "[core]\n\tsparseCheckout = true\n\tfsmonitor = /tmp/run-me\n[filter \"x\"]\n\tclean = /tmp/run-me\n",
    )
    .unwrap();
    fs::write(tree.path.join(".git"), "gitdir: /tmp/own\n").unwrap();
    pin_worktree(&tree.path, "plan/auth").unwrap();
    assert_eq!(
        fs::read_to_string(admin.join("HEAD")).unwrap(),
        "ref: refs/heads/plan/auth\n"
    );
    assert_eq!(
        fs::read_to_string(admin.join("commondir")).unwrap(),
        "../..\n"
    );
    let abs = std::path::absolute(&tree.path).unwrap();
    assert_eq!(
        fs::read_to_string(admin.join("gitdir")).unwrap(),
        format!("{}\n", abs.join(".git").display())
    );
    assert_eq!(
        fs::read_to_string(tree.path.join(".git")).unwrap(),
        format!("gitdir: {}\n", admin.display())
    );
    let config = fs::read_to_string(admin.join("config.worktree")).unwrap();
    assert!(config.contains("sparsecheckout = true"), "{config}");
    assert!(
        !config.contains("fsmonitor") && !config.contains("filter"),
        "{config}"
    );
    // The user's git reads it as the plan's worktree again.
    assert_eq!(
        open(&tree.path)
            .unwrap()
            .head()
            .unwrap()
            .shorthand()
            .unwrap(),
        "plan/auth"
    );
    // Only foreign keys: the file goes.
    fs::write(
        admin.join("config.worktree"),
        "[core]\n\tfsmonitor = /tmp/run-me\n",
    )
    .unwrap();
    pin_worktree(&tree.path, "plan/auth").unwrap();
    assert!(!admin.join("config.worktree").exists());
}

#[test]
fn a_commit_on_the_recorded_branch_ignores_where_head_points() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let main = fx.tip("main").unwrap();
    // HEAD moved to main (as `git switch` or a written HEAD file would), a change in the tree.
    let admin = fx.root.join(".git/worktrees/auth");
    fs::write(admin.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    fs::write(tree.path.join("work.txt"), "work\n").unwrap();
    let made = commit_all_on(
        &tree.path,
        "plan/auth",
        "auth 1.1: work",
        (&[], crate::manifest::SizeLimits::file_only(u64::MAX)),
    )
    .unwrap();
    assert_eq!(fx.tip("main"), Some(main), "main moved");
    let tip = fx.tip("plan/auth").unwrap();
    assert_eq!(tip.to_string(), made.oid);
    let repo = Repository::open(&fx.root).unwrap();
    let commit = repo.find_commit(tip).unwrap();
    assert_eq!(commit.parent_id(0).unwrap(), oid(&tree.head));
    assert!(commit.tree().unwrap().get_name("work.txt").is_some());
}

/// A torn read (libgit2 read a file that was replaced under it: the sizes differ) is read
/// again, as a `.lock` in the way is; any other error is not.
#[test]
fn a_torn_read_is_read_again_and_other_errors_are_not() {
    let torn = || {
        git2::Error::new(
            git2::ErrorCode::GenericError,
            git2::ErrorClass::Filesystem,
            "could not read (expected 364 bytes, read 311)",
        )
    };
    let mut calls = 0;
    let got = retry_locked(|| {
        calls += 1;
        if calls < 3 { Err(torn()) } else { Ok(calls) }
    });
    assert_eq!(got.unwrap(), 3);
    let mut calls = 0;
    let got: Result<(), _> = retry_locked(|| {
        calls += 1;
        Err(git2::Error::new(
            git2::ErrorCode::GenericError,
            git2::ErrorClass::Filesystem,
            "failed to read descriptor",
        ))
    });
    assert!(got.is_err());
    assert_eq!(calls, 1, "an error that is no torn read is not tried again");
    let mut calls = 0;
    let got: Result<(), _> = retry_locked(|| {
        calls += 1;
        Err(torn())
    });
    assert!(got.is_err());
    assert!(calls > 1 && calls < 10, "{calls} calls: bounded");
}
