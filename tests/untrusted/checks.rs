//! Checks that fail closed: what orch checks before it commits an
//! agent's work (the plan's `paths`, the protected files) either answers or refuses the commit;
//! a name the check cannot read as text is never taken for nothing written.

use crate::support::{Repo, toml_array};

/// A sparse plan `p` (`paths = ["svc/a"]`, one task) whose agent runs `script`, unconfined (the
/// check is orch's, whatever the agent's confinement).
fn sparse_plan(script: &str) -> Repo {
    let repo = Repo::new();
    repo.write("svc/a/main.txt", "a\n");
    repo.write("lib/kept.txt", "lib\n");
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Do it\n",
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"a\"\nretries = 0\n\n[agents.a]\ncommand = {}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\npaths = [\"svc/a\"]\n",
            toml_array(&["sh", "-c", script])
        ),
    );
    repo.commit_all("plans");
    repo
}

/// The task failed naming the paths check, and nothing reached `plan/p`.
fn refused(repo: &Repo, main: &str, out: &str, err: &str) {
    let task = repo.task("p", "1.1");
    assert_eq!(task["status"], "failed", "{task}\n{out}\n{err}");
    let error = task["error"].as_str().unwrap_or_default();
    assert!(error.contains("wrote outside the plan's paths"), "{error}");
    assert_eq!(repo.rev("plan/p"), main, "the agent's work was committed");
    assert_eq!(repo.rev("main"), main, "main moved");
}

#[test]
fn checks_a_file_under_a_directory_whose_name_is_not_utf8_outside_the_paths_is_refused() {
    // `lib/\377x/evil.sh`: the walk of the worktree must look inside a directory whose name it
    // cannot read as text (git stages what is in it).
    let repo = sparse_plan(
        "d=\"lib/$(printf '\\377x')\"; mkdir -p \"$d\" && echo evil > \"$d/evil.sh\" \
         && echo ok > svc/a/ok.txt",
    );
    let main = repo.rev("main");
    let (code, out, err) = repo.run(&["up"]);
    assert_ne!(code, 0, "the task must fail\n{out}\n{err}");
    refused(&repo, &main, &out, &err);
}

#[test]
fn checks_a_file_whose_name_is_not_utf8_outside_the_paths_is_refused() {
    let repo = sparse_plan(
        "mkdir -p lib && echo evil > \"lib/$(printf 'e\\377')\" && echo ok > svc/a/ok.txt",
    );
    let main = repo.rev("main");
    let (code, out, err) = repo.run(&["up"]);
    assert_ne!(code, 0, "the task must fail\n{out}\n{err}");
    refused(&repo, &main, &out, &err);
}

/// The agent commits its file outside the paths itself (`git add --sparse`, past the sparse
/// checkout's refusal; `git commit`), then writes inside them: the file is as the agent's HEAD
/// has it, but the work is compared with where the attempt started (the plan branch's tip at
/// its launch; a task worktree's fork from the plan branch), and its commits are looked at too.
/// Seen failing before: in the plan's worktree the file reached `plan/p`; in a task worktree
/// the task was done (its commit landed without the agent's own, dropped without a word).
fn committed_outside(parallel_tasks: u32) {
    let repo = sparse_plan(
        "mkdir -p lib && echo evil > lib/evil.sh && git add --sparse lib/evil.sh \
         && git -c user.name=a -c user.email=a@a commit -qm sneak && echo ok > svc/a/ok.txt",
    );
    if parallel_tasks > 1 {
        let manifest = std::fs::read_to_string(repo.root().join("plans.toml")).expect("read");
        repo.write(
            "plans.toml",
            &format!("{manifest}parallel_tasks = {parallel_tasks}\n"),
        );
        repo.commit_all("task worktrees");
    }
    let main = repo.rev("main");
    let (code, out, err) = repo.run(&["up"]);
    assert_ne!(code, 0, "the task must fail\n{out}\n{err}");
    refused(&repo, &main, &out, &err);
    // Nothing lost: the refused attempt's work, its own commit with it, is kept under its ref.
    saved(
        &repo,
        (&out, &err),
        &[("lib/evil.sh", "evil"), ("svc/a/ok.txt", "ok")],
    );
}

/// The refused attempt of task 1.1 is kept under its ref with `files` (path, text) in it.
fn saved(repo: &Repo, (out, err): (&str, &str), files: &[(&str, &str)]) {
    let refs = repo.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/orch/attempts/p/1.1/",
    ]);
    let saved = refs
        .lines()
        .next()
        .unwrap_or_else(|| panic!("nothing saved\n{out}\n{err}"));
    for (file, text) in files {
        assert_eq!(
            repo.git(&["show", &format!("{saved}:{file}")]).trim(),
            *text
        );
    }
}

/// In the plan's worktree the refused attempt's own commit is taken off `plan/p` (seen failing
/// before: it stayed there while the task failed) and kept with the rest under its attempt ref.
#[test]
fn checks_a_file_outside_the_paths_the_agent_committed_itself_is_refused() {
    committed_outside(1);
}

#[test]
fn checks_a_file_outside_the_paths_the_agent_committed_in_its_task_worktree_is_refused() {
    committed_outside(2);
}

/// A plan `p` (one task, `protect = ["secrets/**"]`, `secrets/key.txt` in it) whose agent runs
/// `script` unconfined; `extra`: more keys of the plan.
fn protected_plan(script: &str, extra: &str) -> Repo {
    let repo = Repo::new();
    repo.write("secrets/key.txt", "key\n");
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Do it\n",
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"a\"\nretries = 0\n\n[agents.a]\ncommand = {}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n{extra}\
             protect = [\"secrets/**\"]\n",
            toml_array(&["sh", "-c", script])
        ),
    );
    repo.commit_all("plans");
    repo
}

/// Task 1.1 failed for its protected file, and nothing reached `plan/p` or `main`.
fn refused_protected(repo: &Repo, main: &str, out: &str, err: &str) {
    let task = repo.task("p", "1.1");
    assert_eq!(task["status"], "failed", "{task}\n{out}\n{err}");
    let error = task["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("changed protected paths: secrets/key.txt"),
        "{error}"
    );
    assert_eq!(repo.rev("plan/p"), main, "the agent's work was committed");
    assert_eq!(repo.rev("main"), main, "main moved");
    assert_eq!(repo.git(&["show", "plan/p:secrets/key.txt"]).trim(), "key");
}

const COMMITS_THE_KEY: &str = "echo stolen > secrets/key.txt && git add secrets/key.txt \
     && git -c user.name=a -c user.email=a@a commit -qm sneak && echo ok > ok.txt";

/// A task worktree's agent commits a file the plan protects (`protect`) itself, then writes an
/// allowed one: the protected-paths check looks at what the task branch holds since it left the
/// plan branch, not only at what is uncommitted. Seen failing before: the task was done and the
/// protected file landed on `plan/p` with it.
#[test]
fn checks_a_protected_file_the_agent_committed_in_its_task_worktree_is_refused() {
    let repo = protected_plan(COMMITS_THE_KEY, "parallel_tasks = 2\n");
    let main = repo.rev("main");
    let (code, out, err) = repo.run(&["up"]);
    assert_ne!(code, 0, "the task must fail\n{out}\n{err}");
    refused_protected(&repo, &main, &out, &err);
}

/// The same in the plan's own worktree (no `paths`, no task worktrees): the work is compared
/// with the plan branch's tip at the attempt's launch, its commits included. Seen failing
/// before: the task was done (exit 0) and `secrets/key.txt` reached `plan/p` and `main`. The
/// refused attempt's own commit is taken off `plan/p` and kept under its attempt ref.
#[test]
fn checks_a_protected_file_the_agent_committed_in_the_plan_worktree_is_refused() {
    let repo = protected_plan(COMMITS_THE_KEY, "");
    let main = repo.rev("main");
    let (code, out, err) = repo.run(&["up"]);
    assert_ne!(code, 0, "the task must fail\n{out}\n{err}");
    refused_protected(&repo, &main, &out, &err);
    saved(
        &repo,
        (&out, &err),
        &[("secrets/key.txt", "stolen"), ("ok.txt", "ok")],
    );
}

/// A task marked done outside an attempt (a person's `orch task done` while no supervisor
/// runs) is committed by the next `orch up` after the same checks as an attempt's work: a
/// protected file left in the plan's worktree refuses it, the failure recorded with its cause.
/// Seen failing before: `secrets/key.txt` was committed on `plan/p` and merged into `main`.
#[test]
fn checks_a_protected_file_in_a_task_done_by_hand_is_refused() {
    let repo = protected_plan("exit 1", "");
    let main = repo.rev("main");
    let (code, out, err) = repo.run(&["up"]);
    assert_ne!(code, 0, "the attempt fails\n{out}\n{err}");
    // What an agent left in the plan's worktree after its attempt, then a person's report.
    std::fs::write(repo.worktree("p").join("secrets/key.txt"), "stolen\n").expect("write");
    let (code, out, err) = repo.run(&["task", "done", "1.1", "--plan", "p", "--force"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = repo.run(&["up"]);
    assert_ne!(code, 0, "the commit must be refused\n{out}\n{err}");
    refused_protected(&repo, &main, &out, &err);
}
