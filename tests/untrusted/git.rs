//! Git metadata: an agent writes its worktree, `.git` file
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
    // The agent's git directory (`.evil`: `HEAD`, `objects/`, `refs/`) is itself a repository
    // nested in the worktree (`bare_repos.rs`): the task fails naming it, nothing committed.
    assert_ne!(code, 0, "{out}\n{err}");
    let task = repo.task("a", "1.1");
    assert_eq!(task["status"], "failed", "{out}\n{err}");
    let cause = task["error"].as_str().unwrap_or_default();
    assert!(
        cause.contains("nested git repository") && cause.contains("`.evil`"),
        "{cause}"
    );
    assert_eq!(repo.rev("plan/a"), main, "committed");
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

/// Plan `a` of two tasks run by `hostile_git_nested.sh`: task 1.1 makes a git repository of its
/// own at `at` in its worktree whose config runs a program of its choosing (`kind`, see the
/// script) that would create `marker` outside its write set, task 1.2 changes a file inside it
/// (orch's `git add -A` would then run a `git status` inside that repository). Task 1.1 fails,
/// its cause naming the nested repository; nothing of it is committed, no program ran, main did
/// not move.
fn nested_repository_fails_the_task(kind: &str, at: &str, sandbox: &str, parallel_tasks: u32) {
    let ctx = format!("{kind} at `{at}`, sandbox {sandbox}, parallel_tasks {parallel_tasks}");
    let repo = Repo::bare_minimum();
    let marker = repo.outside("marker");
    repo.write(
        "docs/plans/a.md",
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 Make it\n- [ ] 1.2 Change it (depends: 1.1)\n",
    );
    let script = agent_at(
        "hostile_git_nested.sh",
        &[&marker, Path::new(kind), Path::new(at)],
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nsandbox = \"{sandbox}\"\n\n[agents.a]\ncommand = {script}\n\n\
             [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\nagent = \"a\"\n\
             parallel_tasks = {parallel_tasks}\n"
        ),
    );
    repo.commit_all("plans");
    let main = repo.rev("main");
    let (code, out, err) = up(&repo);
    assert!(
        !marker.exists(),
        "{ctx}: orch's git ran the nested repository's program\n{out}\n{err}"
    );
    assert_ne!(code, 0, "{ctx}\n{out}\n{err}");
    let task = repo.task("a", "1.1");
    assert_eq!(task["status"], "failed", "{ctx}\n{out}\n{err}");
    let cause = task["error"].as_str().unwrap_or_default();
    assert!(
        cause.contains("nested git repository") && cause.contains(&format!("`{at}/.git`")),
        "{ctx}: the cause does not name the nested repository: {cause}"
    );
    assert_ne!(repo.task("a", "1.2")["status"], "completed", "{ctx}");
    let committed = repo.subjects("plan/a");
    assert!(
        !committed.iter().any(|s| s.starts_with("a 1.")),
        "{ctx}: a task was committed: {committed:?}"
    );
    let top = at.split('/').next().unwrap_or(at);
    assert!(
        repo.git(&["ls-tree", "-r", "--name-only", "plan/a"])
            .lines()
            .all(|l| !l.starts_with(top)),
        "{ctx}: the nested repository reached plan/a"
    );
    assert_eq!(repo.rev("main"), main, "{ctx}: main moved");
}

/// Every kind of program a nested repository's config can name, confined and not: the rule is
/// orch's own (no git of orch's reads a nested repository), not Landlock's.
fn every_driver(sandbox: &str, parallel_tasks: u32) {
    if sandbox != "off" && !landlock() {
        return;
    }
    for kind in [
        "clean",
        "smudge",
        "process",
        "fsmonitor",
        "textconv",
        "merge",
        "hooks",
        "transport",
    ] {
        nested_repository_fails_the_task(kind, "vendor/lib", sandbox, parallel_tasks);
    }
}

#[test]
fn git_nested_repository_with_any_driver_fails_the_task_confined() {
    every_driver("auto", 1);
}

#[test]
fn git_nested_repository_with_any_driver_fails_the_task_unconfined() {
    every_driver("off", 1);
}

#[test]
fn git_nested_repository_with_any_driver_fails_the_task_in_a_pool_worktree() {
    every_driver("auto", 2);
}

/// A `.git` file pointing at a git directory the agent made elsewhere in its worktree, and a
/// repository seven directories down.
#[test]
fn git_nested_repository_through_a_git_file_or_deep_down_fails_the_task() {
    for sandbox in ["auto", "off"] {
        if sandbox != "off" && !landlock() {
            continue;
        }
        nested_repository_fails_the_task("gitfile", "lib", sandbox, 1);
        nested_repository_fails_the_task("clean", "a/b/c/d/e/f/g", sandbox, 1);
        nested_repository_fails_the_task("gitfile", "x/y", sandbox, 2);
    }
}

/// A filter driver of your own configuration (`~/.gitconfig`), selected by the repository's
/// `.gitattributes`, still runs when orch stages an agent's work: as a program git starts
/// directly (no argument) and through the shell (with arguments). Its program uppercases what
/// it is given (the agent writes `a 1.1`) and notes that it ran.
#[test]
fn git_a_filter_of_your_own_config_still_runs() {
    for (name, with_args) in [("upper", false), ("uppershell", true)] {
        if !landlock() {
            eprintln!("(the filter runs through orch's git unconfined)");
        }
        let repo = Repo::bare_minimum();
        let ran = repo.outside("filter-ran");
        let filter = repo.outside("upper.sh");
        std::fs::write(
            &filter,
            format!(
                "#!/bin/sh\necho \"$@\" >> '{}'\ntr a-z A-Z\n",
                ran.display()
            ),
        )
        .expect("filter");
        std::fs::set_permissions(&filter, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        repo.write(".gitattributes", &format!("work.txt filter={name}\n"));
        let main = setup(
            &repo,
            "write.sh",
            &[Path::new("work.txt"), Path::new("work")],
            "auto",
            1,
        );
        let clean = if with_args {
            format!("{} --upper %f", filter.display())
        } else {
            filter.display().to_string()
        };
        std::fs::write(
            repo.home().join(".gitconfig"),
            format!("[filter \"{name}\"]\n\tclean = {clean}\n\tsmudge = cat\n"),
        )
        .expect("gitconfig");
        let (code, out, err) = up(&repo);
        assert_eq!(code, 0, "{name}\n{out}\n{err}");
        assert_eq!(
            repo.git(&["cat-file", "blob", "plan/a:work.txt"]),
            "A 1.1",
            "{name}: your clean filter did not run\n{out}\n{err}"
        );
        assert!(ran.exists(), "{name}");
        assert_eq!(repo.rev("main"), main);
    }
}

/// With no driver in your git configuration, orch's git executes git's own programs only, by
/// construction: a program named by a configuration orch never vetted does not run even where
/// git reads one. Here a repository nested in your own checkout (a gitlink with a `.git` of its
/// own, whose config names a clean filter, with a changed file) is looked into by the status
/// `orch merge` takes of your checkout (git runs a `git status` inside it, which finds the
/// change and holds the merge back); its filter, a script and a shell command line, does not
/// run.
#[test]
fn git_executes_only_gits_own_programs_without_a_driver_of_yours() {
    if !landlock() {
        return;
    }
    for shell in [false, true] {
        let repo = Repo::bare_minimum();
        let marker = repo.outside("marker");
        let hook = repo.outside("hook.sh");
        std::fs::write(
            &hook,
            format!("#!/bin/sh\n: > '{}'\ncat\n", marker.display()),
        )
        .expect("hook");
        std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let nested = repo.root().join("vendor/lib");
        std::fs::create_dir_all(&nested).expect("nested");
        repo.git_at(&nested, &["init", "-q", "-b", "main"]);
        std::fs::write(nested.join("inside.txt"), "inside\n").expect("inside");
        std::fs::write(nested.join(".gitattributes"), "* filter=x\n").expect("attributes");
        repo.git_at(&nested, &["add", "-A"]);
        repo.git_at(&nested, &["commit", "-q", "-m", "inside"]);
        repo.git(&["add", "vendor/lib"]);
        repo.git(&["commit", "-q", "-m", "a repository of your own"]);
        let main = setup(
            &repo,
            "write.sh",
            &[Path::new("work.txt"), Path::new("work")],
            "auto",
            1,
        );
        let driver = if shell {
            format!("sh -c '{} \"$@\"' -", hook.display())
        } else {
            hook.display().to_string()
        };
        repo.git_at(&nested, &["config", "filter.x.clean", &driver]);
        std::fs::write(nested.join("inside.txt"), "changed\n").expect("change");
        let (code, out, err) = up(&repo);
        assert_eq!(code, 0, "{out}\n{err}");
        let (code, out, err) = repo.run(&["merge"]);
        assert!(
            !marker.exists(),
            "shell {shell}: orch's git ran a program of a nested repository's config\n{out}\n{err}"
        );
        // git did look inside: your checkout's change there holds the merge back, as any would.
        assert_ne!(code, 0, "orch merge\n{out}\n{err}");
        assert!(err.contains("`vendor/lib`"), "{err}");
        assert_eq!(repo.rev("main"), main, "main moved");
    }
}

/// A `git` (and an `ssh`) an agent plants where it may write, on the lead's `PATH` before the
/// real ones: neither `orch up` nor `orch merge` runs it, however the two paths are named (the
/// directory itself, one below it, a link to it on `PATH`, `sandbox_write` naming it through a
/// link); orch takes the next one on `PATH`, and the plan lands.
#[test]
fn git_a_git_planted_where_agents_write_is_never_run_by_orch() {
    if !landlock() {
        return;
    }
    for variant in ["same", "below", "path-link", "write-link"] {
        let repo = Repo::bare_minimum();
        let outside = repo.outside("programs");
        let shared = outside.join("shared");
        std::fs::create_dir_all(&shared).expect("shared");
        let link = outside.join("link");
        std::os::unix::fs::symlink(&shared, &link).expect("link");
        let (write, on_path, plant) = match variant {
            "same" => (shared.clone(), shared.clone(), shared.clone()),
            "below" => (shared.clone(), shared.join("bin"), shared.join("bin")),
            "path-link" => (shared.clone(), link.clone(), shared.clone()),
            _ => (link.clone(), shared.clone(), shared.clone()),
        };
        let marker = repo.outside("ran");
        repo.write("docs/plans/a.md", &one_task("A", "Do the work"));
        repo.write(
            "plans.toml",
            &format!(
                "[defaults]\nretries = 0\nsandbox = \"on\"\n\n[agents.a]\ncommand = {}\n\
                 report = \"orch\"\nsandbox_write = [{:?}]\n\n\
                 [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\nagent = \"a\"\n",
                agent_at("hostile_plant_git.sh", &[&plant, &marker]),
                crate::support::utf8(&write)
            ),
        );
        repo.commit_all("plans");
        let main = repo.rev("main");
        let path = format!(
            "{}:{}",
            on_path.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let (code, out, err) = repo.run_cmd(
            repo.orch(&["up", "--json"])
                .env_remove("ORCH_SANDBOX")
                .env("PATH", &path),
        );
        assert!(
            plant.join("git").exists() && plant.join("ssh").exists(),
            "{variant}: the agent planted nothing\n{out}\n{err}"
        );
        assert_eq!(code, 0, "{variant}: {out}\n{err}");
        committed_on_plan_branch(&repo, &out, &err);
        let (code, out, err) = repo.run_cmd(
            repo.orch(&["merge", "a"])
                .env_remove("ORCH_SANDBOX")
                .env("PATH", &path),
        );
        assert!(
            !marker.exists(),
            "{variant}: orch ran the agent's planted program: {:?}",
            std::fs::read_to_string(&marker).unwrap_or_default()
        );
        assert_eq!(code, 0, "{variant}: orch merge\n{out}\n{err}");
        assert_ne!(repo.rev("main"), main, "{variant}: the plan did not land");
        assert_eq!(repo.git(&["show", "main:work.txt"]), "work", "{variant}");
    }
}
