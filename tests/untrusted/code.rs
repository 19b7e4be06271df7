//! Agent-written code run by orch: what a confined agent
//! commits or edits (a test script `verify` runs, the plan's `setup` script, `plans.toml`, its
//! client's own program) is never run outside the sandbox, and orch's own configuration is not
//! changed by a task that does not name it. Each test's marker file lies outside every write set
//! of the run: a program that ran unconfined would have made it.

use std::path::{Path, PathBuf};

use crate::landlock;
use crate::support::{self, Repo, agent_at, one_task, toml_array};

/// Every `*.log` beneath `dir` (orch's log directory), concatenated.
fn logs_in(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "log") {
                out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    out
}

/// The marker a hostile program writes when it gets out: outside the repository and every
/// worktree, in the run's HOME, which no confined process of these runs may write.
fn marker(repo: &Repo) -> PathBuf {
    repo.outside("pwned")
}

/// `orch ARGS` with the manifest's own `sandbox` (not the tests' `ORCH_SANDBOX=off`).
fn run_confined(repo: &Repo, args: &[&str]) -> (i32, String, String) {
    repo.run_cmd(repo.orch(args).env_remove("ORCH_SANDBOX"))
}

/// (a) `verify` runs the agent's committed test scripts: in the integration preview of `orch up`
/// (on by default with `verify`) and in `orch merge`, both confined to the staging worktree.
#[test]
fn a_test_script_the_agent_commits_runs_confined_in_the_preview_and_in_orch_merge() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let mark = marker(&repo);
    repo.write("tests/ok.sh", "exit 0\n");
    repo.write("docs/plans/p.md", &one_task("P", "Add a test"));
    let verify = toml_array(&[
        "sh",
        "-c",
        "for f in tests/*.sh; do sh \"$f\" || exit 1; done",
    ]);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nsandbox = \"on\"\nverify = {verify}\n\n\
             [agents.a]\ncommand = {}\nreport = \"orch\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\n",
            agent_at("hostile_code_verify.sh", &[&mark])
        ),
    );
    repo.commit_all("plans");

    let (code, out, err) = run_confined(&repo, &["up", "--json"]);
    assert_eq!(code, 0, "orch up\n{out}\n{err}");
    let ev = support::events(&out);
    assert_eq!(
        support::named(&ev, "run_started")[0]["sandbox"],
        "on",
        "{out}"
    );
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: Add a test"]);
    let preview = std::fs::read_to_string(repo.root().join(".orch/logs/.integration-verify.log"))
        .unwrap_or_default();
    assert!(
        preview.contains("hostile-verify-ran"),
        "the preview ran verify on the plan's commit: {preview}\n{err}"
    );
    assert!(
        !mark.exists(),
        "the preview's verify wrote outside its staging worktree:\n{preview}"
    );
    assert!(preview.contains("hostile-verify-denied"), "{preview}");

    let main_before = repo.rev("main");
    let (code, out, err) = run_confined(&repo, &["merge", "p"]);
    assert_eq!(code, 0, "orch merge\n{out}\n{err}");
    let merge_log = std::fs::read_to_string(repo.root().join(".orch/logs/p/merge-verify.log"))
        .unwrap_or_default();
    assert!(merge_log.contains("hostile-verify-ran"), "{merge_log}");
    assert!(
        !mark.exists(),
        "orch merge's verify wrote outside its staging worktree:\n{merge_log}"
    );
    assert!(merge_log.contains("hostile-verify-denied"), "{merge_log}");
    // main moved by orch's own merge only: its first parent is where it was.
    assert_eq!(repo.rev("main^1"), main_before);
}

/// (b) `setup` names a tracked script; a task that may change it (the lead's `allow_protected`
/// names it) makes it write outside: the next new pool worktree's setup runs it confined.
#[test]
fn an_edited_setup_script_runs_confined_in_a_new_pool_worktree() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let mark = marker(&repo);
    repo.write("ci/setup.sh", "echo setup-ok\n");
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Setup\n- [ ] 1.1 Speed up `ci/setup.sh`\n\n\
         ## Phase 2: Work\n- [ ] 2.1 Write one\n- [ ] 2.2 Write two\n",
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nsandbox = \"on\"\nparallel_tasks = 2\n\
             setup = [\"sh\", \"ci/setup.sh\"]\n\n\
             [agents.a]\ncommand = {}\nreport = \"orch\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\n\
             allow_protected = [\"ci/setup.sh\"]\n",
            agent_at("hostile_code_setup.sh", &[&mark])
        ),
    );
    repo.commit_all("plans");

    let (code, out, err) = run_confined(&repo, &["up", "--json"]);
    assert_eq!(code, 0, "orch up\n{out}\n{err}");
    let subjects = repo.subjects("plan/p");
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    let logs = logs_in(&repo.root().join(".orch/logs"));
    assert!(
        logs.contains("hostile-setup-ran"),
        "a new pool worktree ran the edited setup:\n{logs}"
    );
    assert!(
        !mark.exists(),
        "the edited setup wrote outside its worktree:\n{logs}"
    );
    assert!(logs.contains("hostile-setup-denied"), "{logs}");
}

/// (c) The agent edits `plans.toml` (its agents unconfined, a `[[notify]]` command) in a task
/// that does not name it: the task fails as a protected change, the plan branch does not carry
/// the edit and the merge train leaves `main` as it was.
#[test]
fn an_agent_edit_of_plans_toml_fails_its_task_and_never_reaches_main() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let mark = marker(&repo);
    repo.write("docs/plans/p.md", &one_task("P", "Tidy the repository"));
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nauto_merge = true\nsandbox = \"on\"\n\n\
             [agents.a]\ncommand = {}\nreport = \"orch\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\n",
            agent_at("hostile_code_manifest.sh", &[&mark])
        ),
    );
    repo.commit_all("plans");
    let manifest_before = repo.read("plans.toml");
    let main_before = repo.rev("main");

    let (code, out, err) = run_confined(&repo, &["up", "--json"]);
    let ev = support::events(&out);
    let failed = support::named(&ev, "task_failed");
    assert_eq!(failed.len(), 1, "exit {code}\n{out}\n{err}");
    assert_eq!(
        failed[0]["error"], "changed protected paths: plans.toml",
        "{failed:?}"
    );
    assert_eq!(code, 5, "{out}\n{err}");
    assert!(repo.subjects("plan/p").is_empty(), "nothing committed");
    assert_eq!(
        repo.git(&["diff", "main", "plan/p", "--", "plans.toml"]),
        "",
        "the plan branch does not carry the edit"
    );
    assert_eq!(repo.rev("main"), main_before, "main unmoved");
    assert!(support::named(&ev, "plan_merged").is_empty(), "{out}");
    assert_eq!(repo.read("plans.toml"), manifest_before);
    // The next run reads the manifest as the user wrote it: nothing of the agent's runs.
    let (_, out, err) = run_confined(&repo, &["up", "--json"]);
    assert!(
        !mark.exists(),
        "the agent's notify command ran\n{out}\n{err}"
    );
    assert_eq!(repo.rev("main"), main_before, "main unmoved");
}

/// (c, the clients' project settings) The agent plants a hook in the repository's
/// `.claude/settings.json` and a server in its `.mcp.json` (run by your next `claude` in the main
/// checkout once merged): its task fails with the protected-path cause and nothing reaches the
/// plan branch or `main`.
#[test]
fn an_agent_edit_of_the_clients_project_settings_fails_its_task() {
    let repo = Repo::bare_minimum();
    let mark = marker(&repo);
    repo.write("docs/plans/p.md", &one_task("P", "Write work.txt"));
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nauto_merge = true\n\n\
             [agents.a]\ncommand = {}\nreport = \"exit\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\n",
            agent_at("hostile_code_client_settings.sh", &[&mark])
        ),
    );
    repo.commit_all("plans");
    let main_before = repo.rev("main");
    let (code, out, err) = repo.run(&["up", "--json"]);
    let ev = support::events(&out);
    let failed = support::named(&ev, "task_failed");
    assert_eq!(failed.len(), 1, "exit {code}\n{out}\n{err}");
    assert_eq!(
        failed[0]["error"],
        "changed protected paths: .claude/settings.json, .mcp.json, .opencode/plugin/evil.js, .qwen/settings.json",
        "{failed:?}"
    );
    assert_eq!(code, 5, "{out}\n{err}");
    assert!(repo.subjects("plan/p").is_empty(), "nothing committed");
    assert_eq!(repo.rev("main"), main_before, "main unmoved");
    assert!(support::named(&ev, "plan_merged").is_empty(), "{out}");
    assert!(!mark.exists());
}

/// (d) A confined agent whose write set holds `~/.claude` replaces the `claude` installed under
/// `~/.claude/local/` (found on PATH through a symlink, as the installer's alias does): the next
/// `orch up`'s preflight does not run it unconfined, and says why.
#[test]
fn a_client_binary_an_agent_may_write_is_never_run_unconfined_by_the_preflight() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let mark = marker(&repo);
    let home = repo.home().to_path_buf();
    std::fs::create_dir_all(home.join(".claude")).expect("~/.claude");
    repo.write("docs/plans/a.md", &one_task("A", "Work"));
    repo.write("docs/plans/b.md", &one_task("B", "Work"));
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nsandbox = \"on\"\n\n\
             [agents.a]\ncommand = {}\nreport = \"orch\"\nsandbox_write = [\"~/.claude\"]\n\n\
             [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\nagent = \"a\"\n\n\
             [[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\nagent = \"claude\"\n",
            agent_at("hostile_code_client.sh", &[&mark])
        ),
    );
    repo.commit_all("plans");
    let bin = repo.outside("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    std::os::unix::fs::symlink(home.join(".claude/local/claude"), bin.join("claude"))
        .expect("symlink");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let (code, out, err) = repo.run_cmd(
        repo.orch(&["up", "--json", "a"])
            .env_remove("ORCH_SANDBOX")
            .env("PATH", &path),
    );
    assert_eq!(code, 0, "orch up a\n{out}\n{err}");
    let planted = home.join(".claude/local/claude");
    assert!(planted.exists(), "the agent may write ~/.claude");
    assert!(!mark.exists());

    let (_, out, err) = repo.run_cmd(
        repo.orch(&["up", "--json", "b"])
            .env_remove("ORCH_SANDBOX")
            .env("PATH", &path),
    );
    assert!(
        !mark.exists(),
        "the planted claude ran unconfined\n{out}\n{err}"
    );
    assert!(
        err.contains(&planted.display().to_string())
            && err.contains("an agent may have replaced it, so orch runs it confined"),
        "orch says which file and why\n{err}"
    );
    // The agent's own run of it is confined as well: it ran, and its write was denied.
    let logs = logs_in(&repo.root().join(".orch/logs/b"));
    assert!(logs.contains("hostile-client-denied"), "{logs}");
}

/// A plan of one task run by the plan-mode agent `hostile_code_plan_commit.sh` (which edits
/// `plans.toml`, tries to commit it itself, then reports 1.1 done), with `sandbox`.
fn plan_agent_repo(sandbox: &str) -> (Repo, std::path::PathBuf) {
    let repo = Repo::bare_minimum();
    let mark = marker(&repo);
    repo.write("docs/plans/p.md", &one_task("P", "Tidy the repository"));
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nauto_merge = true\nsandbox = \"{sandbox}\"\n\n\
             [agents.a]\ncommand = {}\nmode = \"plan\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\n",
            agent_at("hostile_code_plan_commit.sh", &[&mark])
        ),
    );
    repo.commit_all("plans");
    (repo, mark)
}

/// (c, a plan agent) Confined, a plan agent has no git directory to commit in: its own commit
/// of `plans.toml` is denied, and orch, which commits the task it reports done, refuses the
/// edit (a protected path its task does not name): nothing reaches the plan branch or `main`.
#[test]
fn a_confined_plan_agents_edit_of_plans_toml_is_never_committed() {
    if !landlock() {
        return;
    }
    let (repo, mark) = plan_agent_repo("on");
    let manifest_before = repo.read("plans.toml");
    let main_before = repo.rev("main");
    let (code, out, err) = run_confined(&repo, &["up", "--json"]);
    assert_eq!(code, 5, "{out}\n{err}");
    assert!(
        repo.git(&["diff", "main", "plan/p", "--", "plans.toml"])
            .is_empty(),
        "plans.toml changed on the plan branch\n{out}\n{err}"
    );
    assert_eq!(
        repo.subjects("plan/p"),
        repo.subjects("main"),
        "{out}\n{err}"
    );
    assert_eq!(repo.rev("main"), main_before, "main unmoved\n{out}\n{err}");
    let logs = logs_in(&repo.root().join(".orch/logs/p"));
    assert!(
        logs.contains("changed protected paths: plans.toml"),
        "{logs}"
    );
    assert_eq!(repo.read("plans.toml"), manifest_before);
    let (_, out, err) = run_confined(&repo, &["up", "--json"]);
    assert!(
        !mark.exists(),
        "the agent's notify command ran\n{out}\n{err}"
    );
}

/// (c, the train's own check) An unconfined plan agent commits its edit of `plans.toml` itself,
/// where no task's settlement sees it: the merge train refuses the plan and `main` stays as it
/// was.
#[test]
fn a_plan_agents_own_commit_of_plans_toml_is_never_merged_by_the_train() {
    let (repo, mark) = plan_agent_repo("off");
    let manifest_before = repo.read("plans.toml");
    let main_before = repo.rev("main");
    let (code, out, err) = repo.run(&["up", "--json"]);
    let ev = support::events(&out);
    assert!(
        !repo
            .git(&["diff", "main", "plan/p", "--", "plans.toml"])
            .is_empty(),
        "the agent's commit is on the plan branch (its own git): exit {code}\n{out}\n{err}"
    );
    assert_eq!(repo.rev("main"), main_before, "main unmoved\n{out}\n{err}");
    assert!(support::named(&ev, "plan_merged").is_empty(), "{out}");
    let refused = support::named(&ev, "plan_merge_failed");
    assert_eq!(refused.len(), 1, "{out}\n{err}");
    assert!(
        refused[0]
            .to_string()
            .contains("changes plans.toml, which a later run trusts"),
        "{refused:?}"
    );
    assert_eq!(repo.read("plans.toml"), manifest_before);
    let (_, out, err) = repo.run(&["up", "--json"]);
    assert!(
        !mark.exists(),
        "the agent's notify command ran\n{out}\n{err}"
    );
}
