//! Reading the repository: the latest of several branches, work-dir differences, excludes,
//! branch tips.

use super::*;

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

/// A failed run of the git CLI is typed: the command, its exit status and git's stderr, and in a
/// work tree a `GitError::Cli` naming it (not a libgit2 "checkout" error).
#[test]
fn a_failed_git_run_names_the_command_its_status_and_stderr() {
    let fx = Fixture::new();
    let err = super::super::cli::run(&fx.root, &["rev-parse", "--verify", "no-such-ref"])
        .expect_err("no such ref");
    match &err {
        super::super::error::CliFailure::Failed {
            args,
            status,
            stderr,
        } => {
            assert_eq!(args, "rev-parse --verify no-such-ref");
            assert!(!status.success());
            assert!(stderr.contains("fatal"), "{stderr}");
        }
        other => panic!("not a failure of git: {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("`git rev-parse --verify no-such-ref` failed (exit status: 128): "),
        "{err}"
    );
    let err = super::super::cli::run_in(&fx.root, &["rev-parse", "--verify", "no-such-ref"])
        .expect_err("no such ref");
    assert!(matches!(err, GitError::Cli { ref path, .. } if path == &fx.root));
    assert_eq!(err.exit_code(), exit::FAILURE);
}
