//! Task worktrees: names, landing task commits on the plan branch, retiring, and the races and
//! kills met by the crash harness.

use super::*;
use crate::git::refs::{task_branch, task_tree_name};
use crate::git::worktree::PlanTree;

/// Makes the task's branch at the plan branch's tip and its worktree (or reuses both when they
/// exist: a supervisor restarted while the task ran).
fn ensure_task_tree(req: &TaskTreeRequest) -> Result<PlanTree, GitError> {
    let name = task_tree_name(req.plan, req.id);
    let branch = task_branch(req.plan, req.id);
    let path = req.path();
    ensure_plan_tree(&req.tree(&name, &branch, &path))
}

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
        sparse: &[],
        submodules: true,
        save: crate::git::SaveLimits::dropping(Default::default()),
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
        assert_eq!(crate::git::refs::check_tree_name(&name), Ok(()));
    }
    for bad in ["auth+", "auth+../x", "auth+a/b", "auth+.x", "../x+1.1"] {
        assert!(crate::git::refs::check_tree_name(bad).is_err(), "{bad}");
    }
}

/// An agent that commits its own work in its task worktree before the task commit: all of it is
/// the task's work and lands, as one commit, whether the plan branch moved meanwhile or not.
#[test]
fn an_agents_own_commits_land_with_the_task_commit() {
    let fx = Fixture::new();
    let plan = ensure(&fx, "auth").unwrap();
    let one = task_tree(&fx, "1.1");
    let two = task_tree(&fx, "1.2");
    fx.commit(
        &one.path,
        &[("own.txt", Some("agent\n"))],
        "wip by the agent",
    );
    let t1 = fx.commit(&one.path, &[("a.txt", Some("a\n"))], "auth 1.1: A");
    fx.commit(&two.path, &[("own2.txt", Some("agent 2\n"))], "more wip");
    let t2 = fx.commit(&two.path, &[("b.txt", Some("b\n"))], "auth 1.2: B");

    // The plan branch has not moved: one commit on its tip with the tree of the task commit.
    let Landed::Moved { commit: c1 } =
        land_task_commit(&plan.path, "plan/auth", &t1.to_string()).unwrap()
    else {
        panic!("1.1 did not land");
    };
    // It moved: 1.2's own commit lands with its task commit.
    let Landed::Moved { commit: c2 } =
        land_task_commit(&plan.path, "plan/auth", &t2.to_string()).unwrap()
    else {
        panic!("1.2 did not land");
    };
    let repo = fx.repo();
    let (c1, c2) = (oid(&c1), oid(&c2));
    assert_eq!(fx.tip("plan/auth"), Some(c2));
    assert_eq!(
        repo.find_commit(c1)
            .unwrap()
            .parent_ids()
            .collect::<Vec<_>>(),
        vec![oid(&plan.head)],
        "one commit per task"
    );
    assert_eq!(
        repo.find_commit(c2)
            .unwrap()
            .parent_ids()
            .collect::<Vec<_>>(),
        vec![c1]
    );
    for (file, text) in [
        ("own.txt", "agent\n"),
        ("a.txt", "a\n"),
        ("own2.txt", "agent 2\n"),
        ("b.txt", "b\n"),
    ] {
        assert_eq!(file_at(&repo, c2, file).as_deref(), Some(text), "{file}");
        assert_eq!(fs::read_to_string(plan.path.join(file)).unwrap(), text);
    }
    assert!(!is_dirty(&plan.path).unwrap());
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
        Landed::Moved {
            commit: t1.to_string()
        }
    );
    assert_eq!(fx.tip("plan/auth"), Some(t1));
    assert_eq!(fs::read_to_string(plan.path.join("a.txt")).unwrap(), "a\n");

    // It moved (1.1 landed): 1.2's changes go on top as one commit with 1.2's message.
    let Landed::Moved { commit } =
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
    let Landed::Moved { commit } =
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
    remove_plan_worktree(&fx.root, Path::new(".orch/worktrees"), "auth", "plan/auth").unwrap();
    let tip = fx.tip("plan/auth").unwrap().to_string();
    // A branch checked out in a worktree is refused.
    let again = ensure(&fx, "auth").unwrap();
    let err = delete_plan_branch(&fx.root, "auth", "plan/auth", &tip).unwrap_err();
    assert!(matches!(err, GitError::BranchCheckedOut { .. }), "{err:?}");
    remove_plan_worktree(&fx.root, Path::new(".orch/worktrees"), "auth", "plan/auth").unwrap();
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
    remove_plan_worktree(&fx.root, Path::new(".orch/worktrees"), "auth", "plan/auth").unwrap();
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

/// Regression (found by the crash harness with task worktrees): a supervisor killed while git
/// switched a free slot left the slot's `HEAD.lock`, and every later task given that slot failed
/// ("cannot lock ref 'HEAD' ... File exists"). No process writes in a free slot: its index and
/// HEAD locks are stale and removed when the slot is taken.
#[test]
fn a_free_slots_stale_head_and_index_locks_do_not_stop_its_next_task() {
    let fx = Fixture::new();
    let plan = ensure(&fx, "auth").unwrap();
    let take = |id: &str| {
        with_task(&fx, id, |req| {
            take_pool_tree(req, ("refs/orch/slot", "left in the slot"))
        })
    };
    let one = take("1.1").unwrap();
    let c = fx.commit(&one.path, &[("a.txt", Some("a\n"))], "auth 1.1: work");
    land_task_commit(&plan.path, "plan/auth", &c.to_string()).unwrap();
    with_task(&fx, "1.1", |req| retire_landed_task_tree(req).unwrap());
    fx.commit(&plan.path, &[("b.txt", Some("b\n"))], "auth 1.9: B");
    let admin = fx.root.join(".git/worktrees/auth+pool1");
    for lock in ["HEAD.lock", "index.lock"] {
        fs::write(admin.join(lock), "").unwrap();
    }
    let two = take("1.2").unwrap();
    assert_eq!(two.path, one.path, "the same slot");
    let wt = Repository::open(&two.path).unwrap();
    assert_eq!(
        wt.head().unwrap().name().ok(),
        Some("refs/heads/orch/task/auth/1.2")
    );
    assert_eq!(fs::read_to_string(two.path.join("b.txt")).unwrap(), "b\n");
    assert!(!admin.join("HEAD.lock").exists() && !admin.join("index.lock").exists());

    // A hostile agent's link in a lock's place (an unconfined agent can write the admin dir):
    // the link goes, what it points at is neither removed nor written.
    let c = fx.commit(&two.path, &[("c.txt", Some("c\n"))], "auth 1.2: work");
    land_task_commit(&plan.path, "plan/auth", &c.to_string()).unwrap();
    with_task(&fx, "1.2", |req| retire_landed_task_tree(req).unwrap());
    let outside = fx.root.parent().unwrap().join("precious.txt");
    fs::write(&outside, "keep me\n").unwrap();
    std::os::unix::fs::symlink(&outside, admin.join("HEAD.lock")).unwrap();
    let three = take("1.3").unwrap();
    assert_eq!(three.path, one.path);
    assert_eq!(fs::read_to_string(&outside).unwrap(), "keep me\n");
    assert!(fs::symlink_metadata(admin.join("HEAD.lock")).is_err());
}

/// Regression (found by the crash harness with task worktrees): a supervisor killed while it
/// removed a finished plan's pool, between a slot's directory and its entry, left the entry
/// (prunable, its directory gone), and no later removal of the pool took it.
#[test]
fn a_slots_entry_left_without_its_directory_goes_with_the_pool() {
    let fx = Fixture::new();
    let plan = ensure(&fx, "auth").unwrap();
    let one = with_task(&fx, "1.1", |req| {
        take_pool_tree(req, ("refs/orch/slot", "left in the slot"))
    })
    .unwrap();
    let c = fx.commit(&one.path, &[("a.txt", Some("a\n"))], "auth 1.1: work");
    land_task_commit(&plan.path, "plan/auth", &c.to_string()).unwrap();
    with_task(&fx, "1.1", |req| retire_landed_task_tree(req).unwrap());
    // The kill: the slot's directory removed, its entry not yet.
    fs::remove_dir_all(&one.path).unwrap();
    let admin = fx.root.join(".git/worktrees/auth+pool1");
    assert!(admin.is_dir());
    let root = fx.root.join(".orch").join("worktrees");
    assert_eq!(
        remove_pool(
            &fx.root,
            &root,
            "auth",
            None,
            crate::git::SaveLimits::dropping(Default::default())
        )
        .unwrap()
        .saved,
        Vec::<String>::new()
    );
    assert!(!admin.exists());
    assert_eq!(fx.entries(), ["auth"]);
    // Another plan's slot in the same state is not this pool's to take.
    let other = fx.root.join(".git/worktrees/docs+pool1");
    fs::create_dir_all(&other).unwrap();
    remove_pool(
        &fx.root,
        &root,
        "auth",
        None,
        crate::git::SaveLimits::dropping(Default::default()),
    )
    .unwrap();
    assert!(other.is_dir());
}

/// Regression (found by the crash harness with task worktrees): a supervisor killed while `git
/// worktree add` made a new slot (its lock `initializing` still there, with or without its
/// `HEAD`) left a slot that looked free; every task of the plan then failed in it ("not a git
/// repository"). Such a slot is cleared when nothing but its `.git` is there; one holding
/// anything else is never taken as free, and what it holds stays.
#[test]
fn a_slot_whose_add_was_killed_is_cleared_or_left_never_taken() {
    for (variant, head, extra) in [
        ("no HEAD", None, false),
        (
            "HEAD written",
            Some("ref: refs/heads/orch/task/auth/1.0\n"),
            false,
        ),
        ("a file of someone's in it", None, true),
    ] {
        let fx = Fixture::new();
        let _plan = ensure(&fx, "auth").unwrap();
        let root = fx.root.join(".orch").join("worktrees");
        let slot = root.join("auth+pool1");
        let admin = fx.root.join(".git/worktrees/auth+pool1");
        fs::create_dir_all(&slot).unwrap();
        fs::create_dir_all(admin.join("refs")).unwrap();
        fs::write(slot.join(".git"), format!("gitdir: {}\n", admin.display())).unwrap();
        fs::write(
            admin.join("gitdir"),
            format!("{}\n", slot.join(".git").display()),
        )
        .unwrap();
        fs::write(admin.join("commondir"), "../..\n").unwrap();
        fs::write(admin.join("locked"), "initializing\n").unwrap();
        if let Some(h) = head {
            fs::write(admin.join("HEAD"), h).unwrap();
        }
        if extra {
            fs::write(slot.join("notes.txt"), "mine\n").unwrap();
        }
        let took = with_task(&fx, "1.1", |req| {
            take_pool_tree(req, ("refs/orch/slot", "left in the slot"))
        })
        .unwrap_or_else(|e| panic!("{variant}: {e}"));
        let wt = Repository::open(&took.path).unwrap();
        assert_eq!(
            wt.head().unwrap().name().ok(),
            Some("refs/heads/orch/task/auth/1.1"),
            "{variant}"
        );
        if extra {
            assert_eq!(took.path, root.join("auth+pool2"), "{variant}");
            assert_eq!(
                fs::read_to_string(slot.join("notes.txt")).unwrap(),
                "mine\n"
            );
            assert!(admin.is_dir(), "{variant}");
        } else {
            assert_eq!(took.path, slot, "{variant}: the slot made again");
            assert!(!admin.join("locked").exists(), "{variant}");
        }
    }
}

#[test]
fn a_slot_freed_clean_is_switched_to_the_next_task_and_a_file_changed_since_is_saved() {
    let fx = Fixture::new();
    let plan = ensure(&fx, "auth").unwrap();
    let take = |id: &str| {
        with_task(&fx, id, |req| {
            take_pool_tree(req, ("refs/orch/slot", "left in the slot")).unwrap()
        })
    };
    let landed = |tree: &PlanTree, id: &str, files: &[(&str, Option<&str>)]| {
        let c = fx.commit(&tree.path, files, &format!("auth {id}: work"));
        land_task_commit(&plan.path, "plan/auth", &c.to_string()).unwrap();
        with_task(&fx, id, |req| retire_landed_task_tree(req).unwrap());
    };
    let mark = fx.root.join(".git/worktrees/auth+pool1/orch-clean");
    let one = take("1.1");
    assert!(one.created);
    landed(&one, "1.1", &[("a.txt", Some("a\n"))]);
    assert!(
        mark.exists(),
        "a slot freed after its task landed is marked clean"
    );
    // The plan moves on without this slot: its next task must see that too.
    fx.commit(&plan.path, &[("b.txt", Some("b\n"))], "auth 1.9: B");

    let two = take("1.2");
    assert!(!two.created);
    assert_eq!(two.path, one.path);
    assert!(!mark.exists(), "the mark is taken with the slot");
    assert_eq!(two.head, fx.tip("plan/auth").unwrap().to_string());
    let wt = Repository::open(&two.path).unwrap();
    assert_eq!(
        wt.head().unwrap().name().ok(),
        Some("refs/heads/orch/task/auth/1.2")
    );
    assert_eq!(fs::read_to_string(two.path.join("b.txt")).unwrap(), "b\n");
    assert!(
        !is_dirty(&two.path).unwrap(),
        "git status is clean at the task's start"
    );

    // A file changed in the slot after it was freed clean, which the next switch must write:
    // git's two-tree switch refuses, and the change is saved before the slot is reset.
    landed(&two, "1.2", &[("c.txt", Some("c\n"))]);
    assert!(mark.exists());
    fx.commit(&plan.path, &[("a.txt", Some("a2\n"))], "auth 1.8: A2");
    fs::write(two.path.join("a.txt"), "stray\n").unwrap();
    let three = take("1.3");
    assert_eq!(three.path, one.path);
    assert_eq!(
        fs::read_to_string(three.path.join("a.txt")).unwrap(),
        "a2\n"
    );
    assert!(!is_dirty(&three.path).unwrap());
    let repo = fx.repo();
    let saved = repo
        .refname_to_id("refs/orch/slot")
        .expect("the stray change is saved");
    assert_eq!(
        file_at(&repo, saved, "a.txt").as_deref(),
        Some("stray\n"),
        "nothing lost"
    );

    // A mark left by another process (an earlier run) is not trusted: a file a person left in
    // the slot between runs is saved, not carried into the next task's commit.
    landed(&three, "1.3", &[("d.txt", Some("d\n"))]);
    let text = fs::read_to_string(&mark).unwrap();
    let at = text.split_whitespace().next().unwrap();
    fs::write(&mark, format!("{at} 1-1\n")).unwrap();
    fs::write(three.path.join("left.txt"), "left\n").unwrap();
    let four = take("1.4");
    assert!(!four.path.join("left.txt").exists());
    assert!(!is_dirty(&four.path).unwrap());
    let saved = repo.refname_to_id("refs/orch/slot").unwrap();
    assert_eq!(file_at(&repo, saved, "left.txt").as_deref(), Some("left\n"));
}
