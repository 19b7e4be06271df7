//! Merging a plan branch into its target, and finishing a merge a killed supervisor left behind.

use super::*;

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
