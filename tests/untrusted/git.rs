//! Git metadata (issue 34, "What to build" 1): an agent writes its worktree, `.git` file
//! included, and (unconfined) its admin directory. orch finds the repository, the branch and the
//! paths it commits to and removes from its own records: a `.git` pointing at the agent's own git
//! directory runs none of its config, a HEAD pointed at `main` does not get the task committed
//! there, a rewritten `gitdir` back-link does not make `orch clean` delete a directory of the
//! agent's choosing, and a `git switch` in the worktree does not take the task off its plan
//! branch. Each scenario runs with the agent in the plan worktree (`parallel_tasks = 1`) and in
//! a pool task worktree (`parallel_tasks = 2`) where that is a different path through orch.

use std::path::Path;

use crate::landlock;
use crate::support::{Repo, agent_at, one_task};

/// Plan `a` (one task, "Do the work") run by `script` with `args`, `sandbox` on or off,
/// `parallel_tasks`; committed on main. Returns main's tip.
fn setup(repo: &Repo, script: &str, args: &[&Path], sandbox: &str, parallel_tasks: u32) -> String {
    repo.write("docs/plans/a.md", &one_task("A", "Do the work"));
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nsandbox = \"{sandbox}\"\n\n[agents.a]\ncommand = {}\n\n\
             [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\nagent = \"a\"\n\
             parallel_tasks = {parallel_tasks}\n",
            agent_at(script, args)
        ),
    );
    repo.commit_all("plans");
    repo.rev("main")
}

/// `orch up` with the manifest's own sandbox setting (not the suite's `ORCH_SANDBOX=off`).
fn up(repo: &Repo) -> (i32, String, String) {
    repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"))
}

/// The task is completed and its commit (with the agent's `work.txt`) is on `plan/a`.
fn committed_on_plan_branch(repo: &Repo, out: &str, err: &str) {
    assert_eq!(
        repo.subjects("plan/a").first().map(String::as_str),
        Some("a 1.1: Do the work"),
        "the task's commit is not on plan/a\n{out}\n{err}"
    );
    assert_eq!(repo.git(&["show", "plan/a:work.txt"]), "work");
    assert_eq!(repo.task("a", "1.1")["status"], "completed");
}

fn own_git_dir_runs_nothing(parallel_tasks: u32) {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let marker = repo.outside("marker");
    let main = setup(
        &repo,
        "hostile_git_config.sh",
        &[&marker],
        "on",
        parallel_tasks,
    );
    let (code, out, err) = up(&repo);
    assert!(
        !marker.exists(),
        "orch ran the agent's configured program (fsmonitor / clean filter) unconfined\n{out}\n{err}"
    );
    assert_eq!(code, 0, "{out}\n{err}");
    committed_on_plan_branch(&repo, &out, &err);
    assert_eq!(repo.rev("main"), main, "main moved");
    // orch put the worktree's `.git` back: the user's git finds the plan's repository.
    let tree = repo.worktree("a");
    assert_eq!(
        repo.git_at(&tree, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "plan/a"
    );
}

#[test]
fn git_own_git_dir_and_config_run_nothing_in_the_plan_worktree() {
    own_git_dir_runs_nothing(1);
}

#[test]
fn git_own_git_dir_and_config_run_nothing_in_a_pool_worktree() {
    own_git_dir_runs_nothing(2);
}

fn head_on_main_commits_on_plan(parallel_tasks: u32, sandbox: &str) {
    if sandbox == "on" && !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let main = setup(&repo, "hostile_git_head.sh", &[], sandbox, parallel_tasks);
    let refs_before = repo.refs();
    let (code, out, err) = up(&repo);
    assert_eq!(repo.rev("main"), main, "main moved\n{out}\n{err}");
    assert_eq!(code, 0, "{out}\n{err}");
    committed_on_plan_branch(&repo, &out, &err);
    // Only plan/a (made by this run) moved.
    let keep = |refs: &str| -> Vec<String> {
        refs.lines()
            .filter(|l| !l.contains("refs/heads/plan/a"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(keep(&repo.refs()), keep(&refs_before));
}

#[test]
fn git_head_pointed_at_main_leaves_main_in_the_plan_worktree() {
    head_on_main_commits_on_plan(1, "on");
}

/// Without confinement the agent does write its admin `HEAD`: orch puts it back from its records
/// before committing.
#[test]
fn git_head_pointed_at_main_unconfined_is_put_back_before_the_commit() {
    head_on_main_commits_on_plan(1, "off");
}

#[test]
fn git_head_pointed_at_main_leaves_main_in_a_pool_worktree() {
    head_on_main_commits_on_plan(2, "on");
}

/// Every file under `dir` (`.git` included) with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("inside").display().to_string();
                out.push((rel, std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

fn backlink_deletes_nothing(parallel_tasks: u32, victim_is_main: bool, sandbox: &str) {
    if sandbox == "on" && !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let decoy = repo.outside("decoy");
    std::fs::create_dir_all(decoy.join(".git")).expect("decoy");
    std::fs::write(decoy.join("precious.txt"), "keep me\n").expect("decoy file");
    let victim = if victim_is_main {
        repo.root().to_path_buf()
    } else {
        decoy.clone()
    };
    let main = setup(
        &repo,
        "hostile_git_backlink.sh",
        &[&victim],
        sandbox,
        parallel_tasks,
    );
    let decoy_before = files(&decoy);
    let (code, out, err) = up(&repo);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        repo.root().join(".git/HEAD").is_file(),
        "the repository is gone\n{out}\n{err}"
    );
    committed_on_plan_branch(&repo, &out, &err);
    let (code, out, err) = repo.run(&["merge"]);
    assert_eq!(code, 0, "orch merge\n{out}\n{err}");
    let merged = repo.rev("main");
    assert_ne!(merged, main, "orch merge did not merge");
    let (code, out, err) = repo.run(&["clean"]);
    assert!(
        repo.root().join(".git/HEAD").is_file() && repo.root().join("plans.toml").is_file(),
        "orch clean deleted the main repository\n{out}\n{err}"
    );
    assert_eq!(
        files(&decoy),
        decoy_before,
        "orch clean touched the decoy\n{out}\n{err}"
    );
    assert_eq!(code, 0, "orch clean\n{out}\n{err}");
    assert_eq!(repo.rev("main"), merged);
    assert_eq!(repo.git(&["show", "main:work.txt"]), "work");
    assert!(!repo.worktree("a").exists(), "the plan worktree is left");
}

#[test]
fn git_backlink_to_a_decoy_is_not_followed_by_clean() {
    backlink_deletes_nothing(1, false, "on");
}

#[test]
fn git_backlink_to_the_main_repository_is_not_followed_by_clean() {
    backlink_deletes_nothing(1, true, "on");
}

/// Without confinement the agent does rewrite the back-link: `orch clean` still removes only the
/// directory orch made.
#[test]
fn git_backlink_to_the_main_repository_unconfined_is_not_followed_by_clean() {
    backlink_deletes_nothing(1, true, "off");
}

#[test]
fn git_backlink_of_a_pool_worktree_to_the_main_repository_is_not_followed() {
    backlink_deletes_nothing(2, true, "on");
}

fn switch_keeps_the_task_on_its_branch(parallel_tasks: u32) {
    let repo = Repo::bare_minimum();
    let main = setup(&repo, "hostile_git_switch.sh", &[], "off", parallel_tasks);
    let (code, out, err) = up(&repo);
    assert_eq!(code, 0, "{out}\n{err}");
    committed_on_plan_branch(&repo, &out, &err);
    assert_eq!(repo.rev("main"), main, "main moved");
    assert_eq!(repo.rev("other"), main, "the task was committed on `other`");
    assert_eq!(
        repo.git_at(&repo.worktree("a"), &["rev-parse", "--abbrev-ref", "HEAD"]),
        "plan/a"
    );
}

#[test]
fn git_switch_to_another_branch_unconfined_keeps_the_task_on_its_plan_branch() {
    switch_keeps_the_task_on_its_branch(1);
}

#[test]
fn git_switch_to_another_branch_in_a_pool_worktree_keeps_the_task_on_its_branch() {
    switch_keeps_the_task_on_its_branch(2);
}
