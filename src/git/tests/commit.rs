//! Commits in a plan worktree: staging, empty commits, ignored files, saving an attempt, and
//! waiting for a ref lock.

use super::*;

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

#[test]
fn a_kept_repository_commits_what_others_did_in_between() {
    // `CommitRepo` keeps one repository open for a plan's commits: a commit made in between by
    // someone else (an agent that commits itself, here an ignored file added by force) must be
    // the next commit's parent, with its index, as a fresh open would see them.
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let kept = CommitRepo::default();
    fs::write(tree.path.join("a.txt"), "a").unwrap();
    let first = kept
        .commit_all_on(
            &tree.path,
            &tree.branch,
            "task 1.1: a",
            (&[], crate::manifest::SizeLimits::file_only(u64::MAX)),
        )
        .unwrap();
    assert_eq!(first.files_changed, 1);

    fs::write(tree.path.join("debug.log"), "kept by force").unwrap();
    let other = Repository::open(&tree.path).unwrap();
    let mut index = other.index().unwrap();
    index.add_path(Path::new("debug.log")).unwrap();
    index.write().unwrap();
    let tree_id = index.write_tree().unwrap();
    let sig = git2::Signature::now("Agent", "agent@example.com").unwrap();
    let head = other.head().unwrap().peel_to_commit().unwrap();
    let theirs = other
        .commit(
            Some("HEAD"),
            &sig,
            &sig,
            "agent's own commit",
            &other.find_tree(tree_id).unwrap(),
            &[&head],
        )
        .unwrap();

    fs::write(tree.path.join("b.txt"), "b").unwrap();
    let second = kept
        .commit_all_on(
            &tree.path,
            &tree.branch,
            "task 1.2: b",
            (&[], crate::manifest::SizeLimits::file_only(u64::MAX)),
        )
        .unwrap();
    assert_eq!(second.files_changed, 1);
    let repo = fx.repo();
    let id = oid(&second.oid);
    let commit = repo.find_commit(id).unwrap();
    assert_eq!(commit.parent_ids().collect::<Vec<_>>(), vec![theirs]);
    assert_eq!(file_at(&repo, id, "a.txt").as_deref(), Some("a"));
    assert_eq!(file_at(&repo, id, "b.txt").as_deref(), Some("b"));
    assert_eq!(
        file_at(&repo, id, "debug.log").as_deref(),
        Some("kept by force")
    );
    assert_eq!(fx.tip("plan/auth"), Some(id));
    assert!(!is_dirty(&tree.path).unwrap());

    // Nothing changed: an empty commit, as `commit_all` makes it.
    let third = kept
        .commit_all_on(
            &tree.path,
            &tree.branch,
            "task 1.3: nothing",
            (&[], crate::manifest::SizeLimits::file_only(u64::MAX)),
        )
        .unwrap();
    assert!(third.empty);
    assert_eq!(
        repo.find_commit(oid(&third.oid)).unwrap().tree_id(),
        commit.tree_id()
    );
}

/// Seconds since the epoch by the system clock, and how far into the second it is.
fn clock() -> (i64, u32) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    (d.as_secs() as i64, d.subsec_micros())
}

/// Just after a second begins, a commit's date is that second, not the one before (libgit2's own
/// `Signature::now` reads `time()`, which lags the clock by up to a scheduler tick there).
#[test]
fn a_commit_made_just_after_a_second_begins_is_dated_in_that_second() {
    let mut checked = 0;
    // Two second boundaries (busy-waiting on the clock, at most about two seconds).
    while checked < 2 {
        let (secs, micros) = clock();
        if micros > 300 {
            continue;
        }
        let sig = crate::git::repo::signature_now("orch", "orch@localhost").expect("signature");
        assert!(
            sig.when().seconds() >= secs,
            "dated {} at {secs}.{micros:06}",
            sig.when().seconds()
        );
        checked += 1;
        while clock().0 == secs {}
    }
}

/// An agent replaced the tracked directory `conf` with a symlink to a directory outside (and
/// staged changes beneath it): the reset neither writes nor deletes through the link.
#[test]
fn save_and_reset_never_writes_or_deletes_through_a_symlinked_directory() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let wt = &tree.path;
    fx.commit(
        wt,
        &[
            ("conf/.bashrc", Some("branch text\n")),
            ("conf/deep/x", Some("x\n")),
        ],
        "conf",
    );
    let decoy = fx.tmp.path().join("home");
    fs::create_dir_all(decoy.join("deep")).unwrap();
    fs::write(decoy.join(".bashrc"), "user's\n").unwrap();
    fs::write(decoy.join("staged.txt"), "user's staged\n").unwrap();
    fs::write(decoy.join("deep/x"), "user's x\n").unwrap();
    // In the index: `conf/staged.txt` added (the reset would delete it), `conf/.bashrc` removed.
    let repo = Repository::open(wt).unwrap();
    let mut index = repo.index().unwrap();
    fs::write(wt.join("conf/staged.txt"), "staged\n").unwrap();
    index.add_path(Path::new("conf/staged.txt")).unwrap();
    index.remove_path(Path::new("conf/.bashrc")).unwrap();
    index.write().unwrap();
    fs::remove_dir_all(wt.join("conf")).unwrap();
    std::os::unix::fs::symlink(&decoy, wt.join("conf")).unwrap();
    let before = walk(&decoy)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| (p.clone(), fs::read(&p).unwrap()))
        .collect::<Vec<_>>();

    let refname = "refs/orch/attempts/auth/1.1/1";
    let saved = save_and_reset(wt, refname, "attempt 1").unwrap().unwrap();

    let after = walk(&decoy)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| (p.clone(), fs::read(&p).unwrap()))
        .collect::<Vec<_>>();
    assert_eq!(after, before, "written or deleted through the link");
    let meta = fs::symlink_metadata(wt.join("conf")).unwrap();
    assert!(meta.is_dir() && !meta.file_type().is_symlink());
    assert_eq!(
        fs::read_to_string(wt.join("conf/.bashrc")).unwrap(),
        "branch text\n"
    );
    assert_eq!(fs::read_to_string(wt.join("conf/deep/x")).unwrap(), "x\n");
    assert!(!wt.join("conf/staged.txt").exists());
    // The link is what was saved.
    let repo = fx.repo();
    let saved = repo.find_commit(oid(&saved)).unwrap();
    let entry = saved.tree().unwrap().get_path(Path::new("conf")).unwrap();
    assert_eq!(entry.filemode(), 0o120000);
}
