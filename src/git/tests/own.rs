//! orch's own directories: what a commit of a worktree stages there (nothing, whatever a
//! `.gitignore` says), what a branch changes there, and a landing that would write there.

use super::*;
use crate::git::status::Dirt;

fn own() -> Vec<String> {
    [".orch/worktrees", ".orch/state", ".orch/logs"]
        .map(str::to_string)
        .to_vec()
}

/// A `.gitignore` that un-ignores `.orch/`: what is under orch's directories is not staged (the
/// rest is), and a link at `.orch` is refused, nothing committed.
#[test]
fn a_commit_leaves_orchs_directories_out_whatever_the_ignore_rules_say() {
    let fx = Fixture::new();
    let tree = ensure(&fx, "auth").unwrap();
    let wt = &tree.path;
    fs::write(wt.join(".gitignore"), "!.orch/\n!.orch/**\n").unwrap();
    fs::create_dir_all(wt.join(".orch/worktrees/q")).unwrap();
    fs::write(wt.join(".orch/worktrees/q/planted.txt"), "x").unwrap();
    fs::create_dir_all(wt.join(".orch/state/q")).unwrap();
    fs::write(wt.join(".orch/state/q/status.json"), "{}").unwrap();
    fs::write(wt.join(".orch/readme"), "mine").unwrap();
    fs::write(wt.join("a.txt"), "a").unwrap();
    let info = commit_all_on(
        wt,
        "plan/auth",
        "task",
        (&own(), crate::manifest::SizeLimits::file_only(u64::MAX)),
    )
    .unwrap();
    let repo = fx.repo();
    let at = |p: &str| file_at(&repo, oid(&info.oid), p);
    assert_eq!(at("a.txt").as_deref(), Some("a"));
    assert_eq!(at(".orch/readme").as_deref(), Some("mine"));
    assert_eq!(at(".orch/worktrees/q/planted.txt"), None);
    assert_eq!(at(".orch/state/q/status.json"), None);
    // What is left there, seen through the `.gitignore`, is named, as a link at `.orch` is.
    assert_eq!(
        own_changes_in(&Dirt::new(wt), ("plan/auth", Some("main")), (&own(), &[])).unwrap(),
        [".orch/state/q/status.json", ".orch/worktrees/q/planted.txt"]
    );
    fs::remove_dir_all(wt.join(".orch")).unwrap();
    std::os::unix::fs::symlink("/tmp", wt.join(".orch")).unwrap();
    assert_eq!(
        own_changes_in(&Dirt::new(wt), ("plan/auth", None), (&own(), &[])).unwrap(),
        [".orch"]
    );
    let tip = fx.tip("plan/auth");
    let err = commit_all_on(
        wt,
        "plan/auth",
        "task 2",
        (&own(), crate::manifest::SizeLimits::file_only(u64::MAX)),
    )
    .unwrap_err();
    assert!(matches!(err, GitError::OwnDirectories { .. }), "{err}");
    assert!(err.to_string().contains(".orch"), "{err}");
    assert_eq!(fx.tip("plan/auth"), tip, "committed");
}

/// A branch that adds a file under orch's state directory, or a link at `.orch`: named from
/// where it left `main`; a file of its own under `.orch/` is not orch's.
#[test]
fn what_a_branch_changes_of_orchs_directories_is_named() {
    let fx = Fixture::new();
    let repo = fx.repo();
    let main = fx.tip("main").unwrap();
    let branch = |name: &str, files: &[(&str, Option<&str>)]| {
        let c = repo.find_commit(main).unwrap();
        repo.branch(name, &c, true).unwrap();
        repo.set_head(&format!("refs/heads/{name}")).unwrap();
        repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
            .unwrap();
        fx.commit(&fx.root, files, name);
    };
    branch("plant", &[(".orch/state/q/status.json", Some("{}"))]);
    branch("mine", &[(".orch/readme", Some("mine"))]);
    repo.set_head("refs/heads/main").unwrap();
    assert_eq!(
        own_changes_since_fork(&fx.root, "main", "plant", &own()).unwrap(),
        [".orch/state/q/status.json"]
    );
    assert!(
        own_changes_since_fork(&fx.root, "main", "mine", &own())
            .unwrap()
            .is_empty()
    );
    assert!(
        own_changes_since_fork(&fx.root, "main", "none", &own())
            .unwrap()
            .is_empty()
    );
}

/// A landing whose checkout would write under orch's state directory is refused before
/// anything is written: the target does not move, the main checkout is as it was.
#[test]
fn a_landing_never_writes_into_orchs_directories() {
    let fx = Fixture::new();
    let repo = fx.repo();
    let old = fx.tip("main").unwrap();
    let sig = fixed_sig();
    let mut index = repo.index().unwrap();
    let blob = repo.blob(b"{}").unwrap();
    index
        .add(&git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: 0o100_644,
            uid: 0,
            gid: 0,
            file_size: 2,
            id: blob,
            flags: ".orch/state/q/status.json".len() as u16,
            flags_extended: 0,
            path: b".orch/state/q/status.json".to_vec(),
        })
        .unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let parent = repo.find_commit(old).unwrap();
    let new = repo
        .commit(None, &sig, &sig, "plant", &tree, &[&parent])
        .unwrap();
    let before = fx.snapshot();
    let err = move_target(&fx.root, "main", (old, new), &own(), "land").unwrap_err();
    assert!(
        err.to_string().contains(".orch/state/q/status.json"),
        "{err}"
    );
    assert_eq!(fx.tip("main"), Some(old));
    assert_eq!(fx.snapshot(), before);
    assert!(!fx.root.join(".orch/state/q/status.json").exists());
}
