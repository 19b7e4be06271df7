//! Sparse worktrees (`paths`): only the cone on disk, commits and resets that keep the whole tree.

use super::*;

/// A fixture with files in `svc/a`, `svc/b` and `lib`, and a sparse worktree of `svc/a` for
/// plan `auth`.
fn sparse_fixture() -> (Fixture, PlanTree) {
    let fx = Fixture::new();
    fx.commit(
        &fx.root,
        &[
            ("svc/a/main.rs", Some("a\n")),
            ("svc/top.txt", Some("top\n")),
            ("svc/b/main.rs", Some("b\n")),
            ("lib/util.rs", Some("u\n")),
        ],
        "files",
    );
    let branch = "plan/auth".to_string();
    let path = fx.wt_path("auth");
    let cone = vec!["svc/a".to_string()];
    let tree = ensure_plan_tree(&TreeRequest {
        repo_root: &fx.root,
        plan: "auth",
        branch: &branch,
        path: &path,
        target: "main",
        copy: &[],
        sparse: &cone,
        submodules: true,
    })
    .unwrap();
    (fx, tree)
}

fn tree_files(repo: &Repository, commit: Oid) -> Vec<String> {
    let tree = repo.find_commit(commit).unwrap().tree().unwrap();
    let mut out = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, e| {
        if e.kind() == Some(git2::ObjectType::Blob) {
            out.push(format!("{dir}{}", e.name().unwrap()));
        }
        git2::TreeWalkResult::Ok
    })
    .unwrap();
    out.sort();
    out
}

#[test]
fn a_sparse_worktree_holds_the_cone_and_the_root_files_only() {
    let (fx, tree) = sparse_fixture();
    let p = &tree.path;
    assert!(p.join("svc/a/main.rs").is_file());
    assert!(
        p.join("svc/top.txt").is_file(),
        "files of the cone's parents are in it"
    );
    assert!(p.join("README.md").is_file(), "root files are in it");
    assert!(!p.join("svc/b").exists());
    assert!(!p.join("lib").exists());
    // The main checkout stays whole.
    assert!(fx.root.join("lib/util.rs").is_file());
    assert!(
        !is_dirty(p).unwrap(),
        "absent files outside the cone are not changes"
    );
    assert_eq!(
        fx.config("core.sparseCheckout"),
        None,
        "the main checkout is not sparse"
    );
    let main = fx.repo();
    let statuses = main.statuses(None).unwrap();
    assert!(
        statuses
            .iter()
            .all(|e| e.path().unwrap().starts_with(".orch/")),
        "the main checkout has no change but orch's directory"
    );
}

#[test]
fn a_commit_from_a_sparse_worktree_keeps_every_file_outside_the_cone() {
    let (fx, tree) = sparse_fixture();
    let repo = fx.repo();
    let before = tree_files(&repo, fx.tip("plan/auth").unwrap());
    fs::write(tree.path.join("svc/a/new.rs"), "n\n").unwrap();
    fs::write(tree.path.join("svc/a/main.rs"), "changed\n").unwrap();
    let info = commit_all(&tree.path, "auth 1.1: work").unwrap();
    assert_eq!(info.files_changed, 2);
    let oid = oid(&info.oid);
    let mut expected = before.clone();
    expected.push("svc/a/new.rs".into());
    expected.sort();
    assert_eq!(tree_files(&repo, oid), expected);
    assert_eq!(file_at(&repo, oid, "lib/util.rs").as_deref(), Some("u\n"));
    // A second commit through a kept repository, too.
    let kept = CommitRepo::default();
    fs::write(tree.path.join("svc/a/main.rs"), "again\n").unwrap();
    let info = kept
        .commit_all_on(
            &tree.path,
            &tree.branch,
            "auth 1.2: more",
            (&[], crate::manifest::SizeLimits::file_only(u64::MAX)),
        )
        .unwrap();
    assert_eq!(info.files_changed, 1);
    assert_eq!(tree_files(&repo, super::oid(&info.oid)), expected);
    assert!(!tree.path.join("lib").exists());
}

#[test]
fn files_written_outside_the_cone_are_found_and_a_reset_keeps_the_tree_sparse() {
    let (fx, tree) = sparse_fixture();
    let p = &tree.path;
    let cone = vec!["svc/a".to_string()];
    assert!(outside_cone(p, &cone, 10, None).unwrap().is_empty());
    fs::create_dir_all(p.join("lib")).unwrap();
    fs::write(p.join("lib/util.rs"), "rewritten\n").unwrap();
    fs::write(p.join("svc/a/ok.rs"), "fine\n").unwrap();
    fs::write(p.join("svc/top.txt"), "fine too\n").unwrap();
    fs::write(p.join("svc/b.log"), "ignored\n").unwrap();
    assert_eq!(
        outside_cone(p, &cone, 10, None).unwrap(),
        vec!["lib/util.rs"]
    );
    // A name that is not UTF-8 is not skipped (git would stage it): fail closed.
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = p.join("lib").join(std::ffi::OsStr::from_bytes(b"n\xff.rs"));
        fs::write(&odd, "odd\n").unwrap();
        assert_eq!(
            outside_cone(p, &cone, 10, None).unwrap(),
            vec!["lib/n\u{fffd}.rs", "lib/util.rs"]
        );
        fs::remove_file(&odd).unwrap();
    }
    let saved = save_and_reset(p, "refs/orch/attempts/auth/1.1/1", "saved").unwrap();
    assert!(saved.is_some());
    assert!(!p.join("svc/a/ok.rs").exists());
    assert!(
        !p.join("svc/b").exists(),
        "a reset writes nothing outside the cone"
    );
    assert_eq!(fs::read_to_string(p.join("svc/top.txt")).unwrap(), "top\n");
    assert!(!is_dirty(p).unwrap());
    let repo = fx.repo();
    assert_eq!(
        file_at(&repo, fx.tip("plan/auth").unwrap(), "lib/util.rs").as_deref(),
        Some("u\n")
    );
}

#[test]
fn an_upstream_merge_into_a_sparse_worktree_keeps_it_sparse() {
    let (fx, tree) = sparse_fixture();
    let p = &tree.path;
    fs::write(p.join("svc/a/mine.rs"), "m\n").unwrap();
    commit_all(p, "auth 1.1: mine").unwrap();
    let theirs = fx.commit(
        &fx.root,
        &[
            ("lib/util.rs", Some("changed upstream\n")),
            ("lib/more.rs", Some("new upstream\n")),
            ("svc/a/main.rs", Some("a, changed upstream\n")),
        ],
        "upstream work",
    );
    let outcome = merge_into(p, "plan/auth", &theirs.to_string(), "merge main").unwrap();
    let MergeOutcome::Merged { commit } = outcome else {
        panic!("{outcome:?}");
    };
    let repo = fx.repo();
    let id = oid(&commit);
    assert_eq!(
        file_at(&repo, id, "lib/more.rs").as_deref(),
        Some("new upstream\n")
    );
    assert_eq!(file_at(&repo, id, "svc/a/mine.rs").as_deref(), Some("m\n"));
    assert_eq!(
        fs::read_to_string(p.join("svc/a/main.rs")).unwrap(),
        "a, changed upstream\n",
        "the cone's files are updated"
    );
    assert!(
        !p.join("lib").exists(),
        "files outside the cone are not written"
    );
    assert!(!is_dirty(p).unwrap());
    let cone = vec!["svc/a".to_string()];
    assert!(outside_cone(p, &cone, 10, None).unwrap().is_empty());
    // The next commit still keeps the upstream files.
    fs::write(p.join("svc/a/next.rs"), "n\n").unwrap();
    let next = commit_all(p, "auth 1.2: next").unwrap();
    assert_eq!(
        file_at(&repo, oid(&next.oid), "lib/util.rs").as_deref(),
        Some("changed upstream\n")
    );
}

/// The cone is set while another git process holds the repository's `config.lock` for a
/// moment (as when several plans' worktrees are made at once): `sparse-checkout set`, which
/// turns on `extensions.worktreeConfig` there, is tried again until the lock is gone. A lock
/// that stays is an error that names it. Seen failing on main: git's `could not lock config
/// file` at once.
#[test]
fn the_cone_is_set_while_the_config_is_locked_for_a_moment() {
    let cone = vec!["svc/a".to_string()];
    for (plan, held_for) in [("brief", Some(150)), ("stuck", None)] {
        // A repository of its own each: the first cone turns the setting on for good.
        let fx = Fixture::new();
        fx.commit(
            &fx.root,
            &[("svc/a/main.rs", Some("a\n")), ("lib/util.rs", Some("u\n"))],
            "files",
        );
        let lock = fx.root.join(".git/config.lock");
        let path = fx.wt_path(plan);
        let added = std::process::Command::new("git")
            .current_dir(&fx.root)
            .args(["worktree", "add", "-q", "--no-checkout", "-b"])
            .arg(format!("plan/{plan}"))
            .arg(&path)
            .status()
            .unwrap();
        assert!(added.success());
        std::fs::write(&lock, "").unwrap();
        let release = held_for.map(|ms| {
            let lock = lock.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(ms));
                std::fs::remove_file(&lock).unwrap();
            })
        });
        let set = crate::git::sparse::checkout_cone(&path, &cone);
        if let Some(t) = release {
            t.join().unwrap();
            set.unwrap();
            assert!(path.join("svc/a/main.rs").is_file());
            assert!(!path.join("lib/util.rs").exists());
        } else {
            let e = set.expect_err("a lock that stays fails");
            assert!(e.to_string().contains("could not lock config file"), "{e}");
            std::fs::remove_file(&lock).unwrap();
        }
    }
}
