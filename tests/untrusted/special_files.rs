//! Red team 14: a confined agent left `sub/.gitignore` as a FIFO and exited; orch's next git run
//! there blocked in `open` for ever: the task never settled (its `timeout` not applied), `orch
//! up` did not stop on SIGTERM, and `orch clean` hung on the worktree too. A FIFO, socket or
//! device where git opens a file of its own (`.gitignore` at any depth, `.gitattributes`,
//! `.gitmodules`, `.mailmap`) fails the task naming it, before any git runs there; the plan
//! beside it completes; the next run's attempt starts without it; `orch clean` ends. Variants:
//! a FIFO at each name, deep and at the root, a Unix socket; sandbox off and on.

use crate::landlock;
use crate::support::{Repo, one_task, toml_array};

/// What each plan's agent leaves (the honest plan `h` writes a file).
const SCRIPT: &str = r#"case "$ORCH_PLAN" in
  a) mkdir -p sub/deeper && mkfifo sub/deeper/.gitignore ;;
  b) mkfifo .gitattributes ;;
  c) python3 -c "import socket; socket.socket(socket.AF_UNIX).bind('.mailmap')" ;;
  d) mkfifo .gitmodules ;;
  e) mkdir -p lib && mkfifo lib/.gitattributes ;;
esac
echo "$ORCH_PLAN" > work.txt"#;

/// The plans and the path each leaves.
const LEFT: [(&str, &str); 5] = [
    ("a", "sub/deeper/.gitignore"),
    ("b", ".gitattributes"),
    ("c", ".mailmap"),
    ("d", ".gitmodules"),
    ("e", "lib/.gitattributes"),
];

#[test]
fn special_files_a_fifo_where_git_reads_its_own_file_fails_the_task_and_hangs_nothing() {
    let modes: &[&str] = if landlock() { &["off", "on"] } else { &["off"] };
    for sandbox in modes {
        let repo = Repo::bare_minimum();
        let mut plans: Vec<(&str, &str)> = LEFT.iter().map(|(p, _)| (*p, "")).collect();
        plans.push(("h", ""));
        for (name, _) in &plans {
            repo.write(
                &format!("docs/plans/{name}.md"),
                &one_task("P", "Write work.txt"),
            );
        }
        repo.manifest(
            &toml_array(&["sh", "-c", SCRIPT]),
            "report = \"exit\"",
            &format!("retries = 0\nmax_agents = 6\nintegrate = \"off\"\nsandbox = \"{sandbox}\""),
            &plans,
        );
        repo.commit_all("plans");
        // Within the repository's deadline: a git run that blocked would end it.
        let (code, out, err) =
            repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
        assert_eq!(code, 5, "sandbox {sandbox}\n{out}\n{err}");
        for (plan, path) in LEFT {
            let task = repo.task(plan, "1.1");
            assert_eq!(
                task["status"], "failed",
                "sandbox {sandbox}: {plan}: {task}"
            );
            let error = task["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("FIFO, socket or device") && error.contains(path),
                "sandbox {sandbox}: {plan}: {error}"
            );
            assert_eq!(
                repo.rev(&format!("plan/{plan}")),
                repo.rev("main"),
                "{plan}"
            );
        }
        assert_eq!(repo.task("h", "1.1")["status"], "completed", "{out}\n{err}");
        assert_eq!(repo.git(&["show", "plan/h:work.txt"]).trim(), "h");
        // The leftovers were saved without it and the tree reset: the worktree holds none.
        for (plan, path) in LEFT {
            let at = repo.root().join(format!(".orch/worktrees/{plan}/{path}"));
            assert!(
                std::fs::symlink_metadata(&at).is_err(),
                "sandbox {sandbox}: {plan}: {path} is still there"
            );
        }
        // `orch clean` looks at every worktree and ends.
        let (code, out, err) = repo.run(&["clean", "--dry-run"]);
        assert!(code == 0 || code == 5, "{code}\n{out}\n{err}");
    }
}

/// A FIFO an agent leaves in a worktree where git reads its ignore rules, found by `orch clean`
/// (a run killed before the attempt's end was settled): clean refuses to call that worktree
/// clean, and ends.
#[test]
fn special_files_orch_clean_ends_on_a_worktree_with_a_fifo() {
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/p.md", &one_task("P", "Write work.txt"));
    repo.manifest(
        &toml_array(&["sh", "-c", "echo p > work.txt"]),
        "report = \"exit\"",
        "retries = 0\nintegrate = \"off\"",
        &[("p", "")],
    );
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // Below a chain of twelve nested repositories (one directory each, so that the walk meets
    // them all first): a walk names at most a few of what it finds, and many of another kind
    // do not hide it.
    let mut at = repo.root().join(".orch/worktrees/p");
    for n in 0..12 {
        at = at.join(format!("n{n}"));
        std::fs::create_dir_all(at.join(".git")).expect("nested");
    }
    let fifo = at.join(".gitignore");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let (code, out, err) = repo.run(&["clean"]);
    assert_ne!(
        code, 0,
        "cleaned a worktree it could not read\n{out}\n{err}"
    );
    assert!(format!("{out}{err}").contains(".gitignore"), "{out}\n{err}");
    assert!(repo.root().join(".orch/worktrees/p").exists(), "removed");
}
