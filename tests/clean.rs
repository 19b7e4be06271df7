//! `orch clean` end to end: plan branches and worktrees made by the real `orch up`, merged with
//! the git CLI the ways users merge (a merge commit, a squash), and the promise that matters:
//! no commit is ever lost, and a plan that is not merged or not clean stays unless `--force`,
//! which saves it first.

use crate::support;

use std::collections::BTreeSet;
use std::fs::OpenOptions;

use serde_json::Value;
use support::{Repo, agent, json, one_task};

/// Plans that each write their own file (`<plan>.txt`), run to completion.
fn repo_with(plans: &[&str]) -> Repo {
    let repo = Repo::new();
    let list: Vec<(&str, String, String)> = plans
        .iter()
        .map(|p| {
            (
                *p,
                agent("write.sh", &[&format!("{p}.txt")]),
                one_task(p, "Write its file"),
            )
        })
        .collect();
    let refs: Vec<(&str, String, &str)> = list
        .iter()
        .map(|(n, c, t)| (*n, c.clone(), t.as_str()))
        .collect();
    repo.plans(&refs);
    repo.up(&[]);
    for p in plans {
        assert!(repo.branch_exists(&format!("plan/{p}")));
        assert!(repo.worktree(p).is_dir());
    }
    repo
}

fn plan_report<'a>(v: &'a Value, plan: &str) -> &'a Value {
    v["plans"]
        .as_array()
        .expect("plans")
        .iter()
        .find(|p| p["plan"] == plan)
        .unwrap_or_else(|| panic!("no report for {plan}: {v}"))
}

/// Every commit on the plan branches.
fn plan_commits(repo: &Repo, plans: &[&str]) -> BTreeSet<String> {
    let revs: Vec<String> = plans
        .iter()
        .map(|p| format!("plan/{p}"))
        .filter(|b| repo.branch_exists(b))
        .collect();
    repo.reachable(&revs)
}

fn assert_nothing_lost(repo: &Repo, before: &BTreeSet<String>) {
    let safe = repo.kept_safe();
    let remaining: BTreeSet<String> = repo.reachable(&repo.refs_under("refs/heads"));
    let lost: Vec<&String> = before
        .iter()
        .filter(|c| !safe.contains(*c) && !remaining.contains(*c))
        .collect();
    assert!(lost.is_empty(), "commits lost: {lost:?}");
}

#[test]
fn a_merged_plan_loses_its_worktree_and_branch_and_its_commits_stay_on_main() {
    let repo = repo_with(&["a"]);
    let tip = repo.git(&["rev-parse", "plan/a"]);
    repo.git(&["merge", "-q", "--no-ff", "plan/a", "-m", "merge a"]);

    let (code, out, err) = repo.run(&["clean"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("a: removed worktree `.orch/worktrees/a`"),
        "{out}"
    );
    assert!(!repo.worktree("a").exists());
    assert!(!repo.branch_exists("plan/a"));
    assert!(repo.git_ok(&["merge-base", "--is-ancestor", &tip, "main"]));
    // Git knows the worktree is gone, and orch's mark went with the branch.
    assert_eq!(repo.worktrees().len(), 1, "{:?}", repo.worktrees());
    assert!(!repo.root().join(".git/worktrees/a").exists());
    assert!(!repo.git_ok(&["config", "--get", "branch.plan/a.orchPlan"]));
    // Nothing needed saving.
    assert!(repo.refs_under("refs/orch/backup").is_empty());
    // Again: nothing to do.
    let (code, out, _) = repo.run(&["clean"]);
    assert_eq!(code, 0);
    assert!(out.contains("nothing to clean"), "{out}");
}

#[test]
fn a_squash_merged_plan_is_recognised_and_its_tip_saved_before_the_branch_goes() {
    let repo = repo_with(&["a"]);
    let before = plan_commits(&repo, &["a"]);
    repo.git(&["merge", "-q", "--squash", "plan/a"]);
    repo.git(&["commit", "-q", "-m", "squashed a"]);
    assert!(!repo.git_ok(&["merge-base", "--is-ancestor", "plan/a", "main"]));

    let (code, out, err) = repo.run(&["clean", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let v = json(&out);
    let a = plan_report(&v, "a");
    assert_eq!(a["outcome"], "removed");
    assert_eq!(a["merge"], "squashed");
    assert_eq!(a["branch_deleted"], true);
    assert!(!repo.worktree("a").exists());
    assert!(!repo.branch_exists("plan/a"));
    // The squashed commits are not on main: their tip is kept under a backup ref.
    assert_eq!(repo.refs_under("refs/orch/backup/a").len(), 1);
    assert_nothing_lost(&repo, &before);
}

#[test]
fn an_unmerged_plan_is_kept_with_the_reason_and_exit_5() {
    let repo = repo_with(&["a", "b"]);
    repo.git(&["merge", "-q", "--no-ff", "plan/a", "-m", "merge a"]);
    let refs_before = repo.refs();

    let (code, out, err) = repo.run(&["clean"]);
    assert_eq!(code, 5, "{out}\n{err}");
    assert!(out.contains("b: kept: 1 unmerged commit"), "{out}");
    assert!(repo.branch_exists("plan/b"));
    assert!(repo.worktree("b").join("b.txt").is_file());
    // a was cleaned all the same.
    assert!(!repo.branch_exists("plan/a"));
    assert!(!repo.worktree("a").exists());
    // Only a's branch went.
    let gone: Vec<&str> = refs_before
        .lines()
        .filter(|l| !repo.refs().lines().any(|n| n == *l))
        .collect();
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert!(gone[0].starts_with("refs/heads/plan/a "), "{gone:?}");
}

#[test]
fn a_dirty_worktree_is_kept_but_ignored_files_do_not_count() {
    let repo = repo_with(&["a", "b"]);
    repo.git(&["merge", "-q", "--no-ff", "plan/a", "-m", "merge a"]);
    repo.git(&["merge", "-q", "--no-ff", "plan/b", "-m", "merge b"]);
    // a: an untracked file. b: only an ignored one (`*.log`).
    std::fs::write(repo.worktree("a").join("notes.txt"), "my notes\n").expect("write");
    std::fs::write(repo.worktree("b").join("build.log"), "noise\n").expect("write");

    let (code, out, err) = repo.run(&["clean", "--json"]);
    assert_eq!(code, 5, "{out}\n{err}");
    let v = json(&out);
    let a = plan_report(&v, "a");
    assert_eq!(a["outcome"], "kept");
    assert!(
        a["reasons"][0]
            .as_str()
            .expect("reason")
            .contains("`notes.txt`"),
        "{a}"
    );
    assert_eq!(
        std::fs::read_to_string(repo.worktree("a").join("notes.txt")).expect("still there"),
        "my notes\n"
    );
    assert!(repo.branch_exists("plan/a"));
    assert_eq!(plan_report(&v, "b")["outcome"], "removed");
    assert!(!repo.worktree("b").exists());
    assert!(!repo.branch_exists("plan/b"));
}

#[test]
fn force_saves_unmerged_and_dirty_work_before_removing_it() {
    let repo = repo_with(&["a"]);
    let tip = repo.git(&["rev-parse", "plan/a"]);
    let before = plan_commits(&repo, &["a"]);
    std::fs::write(repo.worktree("a").join("notes.txt"), "unsaved thoughts\n").expect("write");
    std::fs::write(repo.worktree("a").join("a.txt"), "edited, not committed\n").expect("write");

    let (code, out, err) = repo.run(&["clean", "--force", "a", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let v = json(&out);
    let a = plan_report(&v, "a");
    assert_eq!(a["outcome"], "removed");
    let backups: Vec<String> = a["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .map(|b| b.as_str().expect("ref").to_string())
        .collect();
    assert_eq!(backups.len(), 2, "{a}");
    assert_eq!(repo.refs_under("refs/orch/backup/a").len(), 2);
    // The branch tip, and a commit of the dirty state on top of it.
    let branch_backup = backups
        .iter()
        .find(|b| !b.ends_with("-worktree"))
        .expect("branch backup");
    let tree_backup = backups
        .iter()
        .find(|b| b.ends_with("-worktree"))
        .expect("worktree backup");
    assert!(branch_backup.starts_with("refs/orch/backup/a/"));
    assert_eq!(repo.git(&["rev-parse", branch_backup]), tip);
    assert_eq!(repo.git(&["rev-parse", &format!("{tree_backup}^")]), tip);
    assert_eq!(
        repo.git(&["show", &format!("{tree_backup}:notes.txt")]),
        "unsaved thoughts"
    );
    assert_eq!(
        repo.git(&["show", &format!("{tree_backup}:a.txt")]),
        "edited, not committed"
    );
    assert!(!repo.worktree("a").exists());
    assert!(!repo.branch_exists("plan/a"));
    assert_nothing_lost(&repo, &before);
}

#[test]
fn no_commit_of_a_plan_branch_is_ever_lost() {
    let plans = ["merged", "squashed", "unmerged", "dirty", "idle"];
    let repo = repo_with(&plans[..4]);
    // A plan with a branch but no work yet: its agent is never run.
    repo.git(&["branch", "plan/idle", "main"]);
    repo.git(&["config", "branch.plan/idle.orchPlan", "idle"]);
    let base = repo.git(&["rev-parse", "main"]);
    repo.git(&["config", "branch.plan/idle.orchBase", &base]);
    repo.write("docs/plans/idle.md", &one_task("Idle", "Nothing yet"));
    let mut toml = std::fs::read_to_string(repo.root().join("plans.toml")).expect("toml");
    toml.push_str(
        "[[plan]]\nname = \"idle\"\nfile = \"docs/plans/idle.md\"\nagent = \"merged-agent\"\n",
    );
    repo.write("plans.toml", &toml);
    repo.commit_all("idle plan");

    repo.git(&["merge", "-q", "--no-ff", "plan/merged", "-m", "merge"]);
    repo.git(&["merge", "-q", "--squash", "plan/squashed"]);
    repo.git(&["commit", "-q", "-m", "squash"]);
    std::fs::write(repo.worktree("dirty").join("wip.txt"), "wip\n").expect("write");
    let before = plan_commits(&repo, &plans);
    assert!(before.len() >= 4);

    let (code, out, err) = repo.run(&["clean"]);
    assert_eq!(code, 5, "{out}\n{err}");
    assert!(!repo.branch_exists("plan/merged"));
    assert!(!repo.branch_exists("plan/squashed"));
    assert!(repo.branch_exists("plan/unmerged"));
    assert!(repo.branch_exists("plan/dirty"));
    assert!(repo.branch_exists("plan/idle"), "{out}");
    assert!(
        out.contains("idle: kept: its branch has no commits of its own yet"),
        "{out}"
    );
    assert_nothing_lost(&repo, &before);

    let (code, out, err) = repo.run(&["clean", "--force"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for p in plans {
        assert!(!repo.branch_exists(&format!("plan/{p}")), "{p}: {out}");
        assert!(!repo.worktree(p).exists(), "{p}");
    }
    assert_nothing_lost(&repo, &before);
    // Every commit is now kept by main or a backup ref alone.
    let safe = repo.kept_safe();
    assert!(before.iter().all(|c| safe.contains(c)));
    assert_eq!(repo.worktrees().len(), 1);
}

#[test]
fn dry_run_changes_nothing() {
    let repo = repo_with(&["a", "b"]);
    repo.git(&["merge", "-q", "--no-ff", "plan/a", "-m", "merge a"]);
    std::fs::write(repo.worktree("b").join("wip.txt"), "wip\n").expect("write");
    let refs = repo.refs();
    let git_dir = repo.git_dir_listing();

    let (code, out, err) = repo.run(&["clean", "--dry-run"]);
    assert_eq!(code, 5, "{out}\n{err}");
    assert!(out.contains("a: would remove worktree"), "{out}");
    let (code, out, err) = repo.run(&["clean", "--dry-run", "--force", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let v = json(&out);
    let b = plan_report(&v, "b");
    assert_eq!(b["outcome"], "removed");
    assert_eq!(b["backups"].as_array().expect("backups").len(), 2);

    assert_eq!(repo.refs(), refs);
    assert_eq!(repo.git_dir_listing(), git_dir);
    assert!(repo.worktree("a").is_dir() && repo.worktree("b").join("wip.txt").is_file());
}

#[test]
fn clean_is_refused_while_a_supervisor_holds_the_lock() {
    let repo = repo_with(&["a"]);
    repo.git(&["merge", "-q", "--no-ff", "plan/a", "-m", "merge a"]);
    // Where a supervisor holds it: in orch's private directory, for the state directory's
    // `supervisor.lock` (`orch::sandbox::private_lock_path`).
    let state = std::fs::canonicalize(repo.root().join(".orch/state")).expect("state dir");
    let place = orch::sandbox::private_lock_path(&state.join("supervisor.lock")).expect("place");
    if let Some(dir) = place.parent() {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .expect("locks dir");
    }
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&place)
        .expect("lock file");
    lock.try_lock().expect("take the lock");

    for args in [
        &["clean"][..],
        &["clean", "--dry-run"],
        &["clean", "--force"],
    ] {
        let (code, out, err) = repo.run(args);
        assert_eq!(code, 4, "{args:?}\n{out}\n{err}");
        assert!(err.contains("orch up"), "{err}");
    }
    assert!(repo.branch_exists("plan/a"));
    assert!(repo.worktree("a").is_dir());
    drop(lock);
    let (code, _, err) = repo.run(&["clean"]);
    assert_eq!(code, 0, "{err}");
    assert!(!repo.branch_exists("plan/a"));
}

#[test]
fn a_branch_orch_did_not_make_is_never_deleted() {
    let repo = repo_with(&["a"]);
    repo.git(&["merge", "-q", "--no-ff", "plan/a", "-m", "merge a"]);
    // Someone else's branch under the plan's name: the mark says another plan.
    repo.git(&["config", "branch.plan/a.orchPlan", "someone-else"]);
    let (code, out, _) = repo.run(&["clean", "--force"]);
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains("was not created by orch for plan `a`"),
        "{out}"
    );
    assert!(repo.branch_exists("plan/a"));
    assert!(repo.worktree("a").is_dir());
}

#[test]
fn a_merged_plan_whose_worktree_directory_was_deleted_is_cleaned_with_git_s_entry() {
    let repo = repo_with(&["a"]);
    repo.git(&["merge", "-q", "--no-ff", "plan/a", "-m", "merge a"]);
    std::fs::remove_dir_all(repo.worktree("a")).expect("rm worktree");
    assert!(repo.root().join(".git/worktrees/a").is_dir());

    let (code, out, err) = repo.run(&["clean"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!repo.branch_exists("plan/a"));
    assert!(!repo.root().join(".git/worktrees/a").exists());
    assert_eq!(repo.worktrees().len(), 1);
    // git agrees there is nothing left to prune.
    assert_eq!(repo.git(&["worktree", "prune", "--dry-run", "-v"]), "");
}
