//! Leftovers of a supervisor killed inside a git write (found by `tests/crash.rs`), built
//! directly: a half-made plan worktree, a stale `index.lock` or branch `.lock`. The next `orch up`
//! clears what is orch's own and completes; anything that may hold the user's work is refused.

use crate::support;

use std::fs;

use support::{Repo, agent, one_task};

/// One plan `p` (agent `ok.sh`) and its branch `plan/p`, made and marked as orch makes it, but
/// no worktree yet.
fn repo_with_marked_branch() -> Repo {
    let repo = Repo::new();
    let journal = repo.root().join("journal.log");
    repo.plans(&[(
        "p",
        agent("ok.sh", &[journal.to_str().expect("utf8")]),
        &one_task("P", "Write its file"),
    )]);
    repo.git(&["branch", "plan/p", "main"]);
    let base = repo.git(&["rev-parse", "main"]);
    repo.git(&["config", "branch.plan/p.orchPlan", "p"]);
    repo.git(&["config", "branch.plan/p.orchBase", &base]);
    repo
}

fn task_committed(repo: &Repo) -> bool {
    repo.git(&["log", "--format=%s", "main..plan/p"])
        .contains("p 1.1")
}

/// The state libgit2 leaves when killed while adding the worktree `p`: the entry
/// `.git/worktrees/p` (with or without its `gitdir` file) and the directory with its `.git` file;
/// `files` are the checked-out files present. No index: the checkout never finished.
fn half_made(repo: &Repo, with_gitdir: bool, files: &[(&str, &str)]) {
    let wt = repo.worktree("p");
    let admin = repo.root().join(".git/worktrees/p");
    fs::create_dir_all(&admin).expect("test setup");
    fs::create_dir_all(&wt).expect("test setup");
    fs::write(wt.join(".git"), format!("gitdir: {}\n", admin.display())).expect("test setup");
    fs::write(admin.join("commondir"), "../..\n").expect("test setup");
    if with_gitdir {
        fs::write(
            admin.join("gitdir"),
            format!("{}\n", wt.join(".git").display()),
        )
        .expect("test setup");
        fs::write(admin.join("HEAD"), "ref: refs/heads/plan/p\n").expect("test setup");
    }
    for (name, text) in files {
        fs::write(wt.join(name), text).expect("test setup");
    }
}

#[test]
fn an_empty_directory_at_an_orch_branchs_worktree_path_is_cleared() {
    let repo = repo_with_marked_branch();
    fs::create_dir_all(repo.worktree("p")).expect("test setup");
    repo.up(&[]);
    assert!(task_committed(&repo));
    assert!(repo.worktree("p").join("README.md").is_file());
}

#[test]
fn a_half_made_worktree_of_the_plan_is_made_again() {
    // Registered, HEAD set, checkout cut short (one file written halfway): the old code reused
    // it and blocked on "uncommitted changes".
    let repo = repo_with_marked_branch();
    half_made(
        &repo,
        true,
        &[("README.md", "# demo\n"), ("shared.txt", "orig")],
    );
    repo.up(&[]);
    assert!(task_committed(&repo));
    assert_eq!(
        fs::read_to_string(repo.worktree("p").join("shared.txt")).expect("test setup"),
        "original\n"
    );

    // Not registered yet (no `gitdir` file): the old code refused it as foreign.
    let repo = repo_with_marked_branch();
    half_made(&repo, false, &[]);
    repo.up(&[]);
    assert!(task_committed(&repo));
}

#[test]
fn a_half_made_worktree_with_a_changed_or_extra_file_is_still_refused() {
    for files in [
        &[("README.md", "# my edit\n")][..],
        &[("README.md", "# demo\n"), ("notes.txt", "mine\n")][..],
    ] {
        let repo = repo_with_marked_branch();
        half_made(&repo, false, files);
        let (code, out, err) = repo.run(&["up", "--json"]);
        assert_eq!(code, 4, "{out}\n{err}");
        assert!(err.contains("not a worktree"), "{err}");
        for (name, text) in files {
            assert_eq!(
                fs::read_to_string(repo.worktree("p").join(name)).expect("test setup"),
                *text
            );
        }
        assert!(!task_committed(&repo));
    }
}

#[test]
fn stale_git_locks_of_a_plan_are_removed() {
    let repo = Repo::new();
    let journal = repo.root().join("journal.log");
    let cmd = agent("ok.sh", &[journal.to_str().expect("utf8")]);
    repo.plans(&[
        ("p", cmd.clone(), &one_task("P", "Write its file")),
        ("q", cmd, &one_task("Q", "Write its file")),
    ]);
    // p: its worktree exists, with the index lock of a killed commit.
    repo.git(&["branch", "plan/p", "main"]);
    let base = repo.git(&["rev-parse", "main"]);
    repo.git(&["config", "branch.plan/p.orchPlan", "p"]);
    repo.git(&["config", "branch.plan/p.orchBase", &base]);
    let wt = repo.worktree("p");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        wt.to_str().expect("test setup"),
        "plan/p",
    ]);
    let index_lock = repo.root().join(".git/worktrees/p/index.lock");
    fs::write(&index_lock, "").expect("test setup");
    // q: the ref lock of a killed branch creation.
    let ref_lock = repo.root().join(".git/refs/heads/plan/q.lock");
    fs::create_dir_all(ref_lock.parent().expect("test setup")).expect("test setup");
    fs::write(&ref_lock, "").expect("test setup");
    // The main worktree's lock is not orch's to remove.
    let main_lock = repo.root().join(".git/index.lock");
    // A process that claims, by its environment, to be p's running agent (orch has no record
    // of it): its word keeps no lock (a claim used to keep p's, and p's commit then failed on
    // it). It is stopped by the run as a stray.
    let mut claimer = std::process::Command::new("sleep")
        .arg("120")
        .env("ORCH_STATUS_FILE", repo.status_path("p"))
        .env("ORCH_PLAN", "p")
        .env("ORCH_TASK", "1.1")
        .spawn()
        .expect("spawn");

    let out = repo.up(&[]);
    let _ = claimer.kill();
    let _ = claimer.wait();
    assert!(!index_lock.exists() && !ref_lock.exists());
    assert!(!main_lock.exists());
    for plan in ["p", "q"] {
        assert!(
            repo.git(&["log", "--format=%s", &format!("main..plan/{plan}")])
                .contains(&format!("{plan} 1.1")),
            "{out}"
        );
    }
    assert!(
        out.contains("index.lock") && out.contains("q.lock"),
        "{out}"
    );
}

/// A run killed while writing orch's branch mark leaves `.git/config.lock`; the next `orch up`
/// removes it (after giving a live writer time to finish) and goes on.
#[test]
fn a_stale_config_lock_is_removed() {
    let repo = Repo::new();
    let plan = one_task("P", "Something");
    repo.plans(&[("p", agent("ok.sh", &["/dev/null"]), &plan)]);
    std::fs::write(repo.root().join(".git/config.lock"), "").expect("lock");
    let out = repo.up(&["p"]);
    assert!(out.contains("config.lock"), "{out}");
    assert!(!repo.root().join(".git/config.lock").exists());
    assert!(repo.branch_exists("plan/p"));
}

/// The private TMPDIRs of an `orch up` killed with `kill -9` (`<tmp>/orch-tmp-<pid>-<n>`, which
/// only its own end removes) are removed by the next `orch up`, however deep and whatever their
/// modes; those of a process still running (another `orch up`), a link of that name, and a
/// directory of another name are left alone.
#[test]
fn the_next_orch_up_removes_the_private_tmpdirs_a_killed_one_left() {
    let repo = repo_with_marked_branch();
    let tmp = tempfile::tempdir().expect("tmp");
    let dead = {
        let mut c = std::process::Command::new("true").spawn().expect("true");
        let pid = c.id();
        c.wait().expect("wait");
        pid
    };
    let left = tmp.path().join(format!("orch-tmp-{dead}-1f"));
    let deep = left.join("a/b/c");
    fs::create_dir_all(&deep).expect("deep");
    fs::write(deep.join("f"), "x").expect("f");
    fs::set_permissions(
        left.join("a/b"),
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .expect("chmod");
    let live = tmp
        .path()
        .join(format!("orch-tmp-{}-2f", std::process::id()));
    fs::create_dir_all(&live).expect("live");
    let elsewhere = tempfile::tempdir().expect("elsewhere");
    fs::write(elsewhere.path().join("keep"), "k").expect("keep");
    std::os::unix::fs::symlink(
        elsewhere.path(),
        tmp.path().join(format!("orch-tmp-{dead}-3f")),
    )
    .expect("link");
    let other = tmp.path().join("not-orch");
    fs::create_dir_all(&other).expect("other");
    let (code, out, err) = repo.run_cmd(repo.orch(&["up"]).env("TMPDIR", tmp.path()));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!left.exists(), "the dead run's TMPDIR is still there");
    assert!(live.is_dir(), "a live process's TMPDIR was removed");
    assert!(
        elsewhere.path().join("keep").exists(),
        "a link was followed"
    );
    assert!(
        fs::symlink_metadata(tmp.path().join(format!("orch-tmp-{dead}-3f")))
            .is_ok_and(|m| m.is_symlink())
    );
    assert!(other.is_dir());
}
