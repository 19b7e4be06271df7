//! Submodules in the worktrees orch makes: a repository with a submodule that
//! has a nested submodule, its URLs pointed at an unreachable address and the repositories they
//! came from deleted, so that any fetch would fail. Every worktree (the plan worktree, the pool's
//! task worktrees) has both checked out from the main repository's `.git/modules` when its agent
//! runs; the gitlinks stay in the tasks' commits and in `orch merge`'s; a task that commits
//! inside the submodule moves the gitlink and says so; one that leaves a change there fails with
//! its path, and nothing is lost (a confined agent, which cannot commit there, is told why);
//! `submodules = false` and `submodule.<name>.active = false` leave them empty; a missing modules
//! dir, and a main checkout whose commit declares none, are warnings; a sparse plan gets those
//! its paths hold; `verify`'s staging worktree has them. Through the real binary with
//! `tests/fixtures/agents/submodule_agent.sh`.

use crate::support;

use serde_json::Value;
use support::submodules::{Fixture, fixture, gitlink, journal, plans};

fn events(out: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn every_worktree_has_the_nested_submodules_and_the_gitlinks_stay() {
    let fx = fixture();
    // `orch merge`'s verify runs in a staging worktree: the submodules are there too.
    let verify = "verify = [\"sh\", \"-c\", \"test -f libs/sub/libs/inner/inner.txt\"]";
    plans(&fx, ("need", &[]), verify, true, true);
    let (code, out, err) = fx.repo.run(&["up", "--json"]);
    let journal = journal(&fx);
    assert_eq!(code, 0, "{out}\n{err}\n{journal:#?}");
    let starts: Vec<&String> = journal.iter().filter(|l| l.starts_with("start ")).collect();
    assert_eq!(starts.len(), 4, "{journal:#?}");
    for s in &starts {
        assert!(s.contains("sub=yes inner=yes"), "{s}");
    }
    // p's tasks ran in pool worktrees, q's in its plan worktree.
    assert!(starts.iter().any(|s| s.contains("+pool")), "{starts:#?}");
    assert!(
        starts.iter().any(|s| s.starts_with("start q ")),
        "{starts:#?}"
    );
    let want = format!("160000 {}", fx.sub_commit);
    for plan in ["plan/p", "plan/q"] {
        assert_eq!(gitlink(&fx.repo, plan), want, "{plan}");
        assert_eq!(fx.repo.subjects(plan).len(), 2, "{plan}");
    }
    // The plan worktrees have them too, at the gitlink.
    for plan in ["p", "q"] {
        let wt = fx.repo.worktree(plan);
        assert!(wt.join("libs/sub/libs/inner/inner.txt").is_file(), "{plan}");
        assert_eq!(
            fx.repo.git_at(&wt.join("libs/sub"), &["rev-parse", "HEAD"]),
            fx.sub_commit
        );
        assert_eq!(
            fx.repo.git_at(&wt, &["status", "--porcelain"]),
            "",
            "{plan}"
        );
    }
    let (code, out, err) = fx.repo.run(&["merge"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        fx.repo
            .git_ok(&["merge-base", "--is-ancestor", "plan/q", "main"]),
        "{out}\n{err}\n{}",
        fx.repo.git(&["log", "--graph", "--oneline", "--all"])
    );
    assert_eq!(gitlink(&fx.repo, "main"), want);
    assert!(!fx.repo.git(&["ls-tree", "main", "q-1.2.txt"]).is_empty());
    // `orch clean` removes the merged plans' worktrees, submodule checkouts and all, with
    // nothing to save.
    let (code, out, err) = fx.repo.run(&["clean"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!fx.repo.worktree("p").exists(), "{out}");
    let backups = fx.repo.refs_under("refs/orch/backup");
    let shown: Vec<String> = backups
        .iter()
        .map(|r| fx.repo.git(&["show", "--stat", "--format=%s", r]))
        .collect();
    assert!(backups.is_empty(), "{out}\n{backups:?}\n{shown:#?}");
    // No warning about submodules.
    assert!(
        !events(&out).iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("submodule"))),
        "{out}"
    );
}

#[test]
fn a_commit_inside_the_submodule_moves_the_gitlink_and_says_so() {
    let fx = fixture();
    plans(&fx, ("commit", &[]), "", true, false);
    let (code, out, err) = fx.repo.run(&["up", "--json"]);
    let journal = journal(&fx);
    assert_eq!(code, 0, "{out}\n{err}\n{journal:#?}");
    let new = journal
        .iter()
        .find_map(|l| l.strip_prefix("subcommit "))
        .expect("the agent's commit")
        .to_string();
    assert_ne!(new, fx.sub_commit);
    assert_eq!(gitlink(&fx.repo, "plan/p"), format!("160000 {new}"));
    let message = fx.repo.git(&["log", "--format=%B", "-1", "plan/p~1"]);
    assert!(
        message.contains(&format!(
            "submodule libs/sub: {} -> {}",
            &fx.sub_commit[..7],
            &new[..7]
        )),
        "{message}"
    );
    // Task 1.2 ran on it: its pool worktree had the new submodule commit.
    assert!(
        journal
            .iter()
            .any(|l| l.starts_with("start p 1.2 ") && l.contains("subtext=changed")),
        "{journal:#?}"
    );
    // The plan worktree followed the landing.
    let wt = fx.repo.worktree("p");
    assert_eq!(
        fx.repo.git_at(&wt.join("libs/sub"), &["rev-parse", "HEAD"]),
        new
    );
}

#[test]
fn uncommitted_changes_inside_a_submodule_fail_the_task_and_stay() {
    let fx = fixture();
    // Its task runs in the plan worktree.
    plans(&fx, ("dirty", &[]), "", false, false);
    let (code, out, err) = fx.repo.run(&["up", "--json"]);
    assert_ne!(code, 0, "{out}\n{err}");
    let failed = events(&out)
        .into_iter()
        .find(|e| e["event"] == "task_failed")
        .unwrap_or_else(|| panic!("no task_failed\n{out}\n{err}"));
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("uncommitted changes inside submodules")
            && error.contains("libs/sub/dirty.txt"),
        "{error}"
    );
    assert_eq!(fx.repo.task("p", "1.1")["status"], "failed");
    // Nothing lost: the file is where the agent left it, the gitlink did not move.
    let wt = fx.repo.worktree("p");
    assert_eq!(
        std::fs::read_to_string(wt.join("libs/sub/dirty.txt")).unwrap_or_default(),
        "dirty\n"
    );
    assert_eq!(
        gitlink(&fx.repo, "plan/p"),
        format!("160000 {}", fx.sub_commit)
    );
    // Not even `orch clean --force` removes the worktree with them.
    let (code, out, err) = fx.repo.run(&["clean", "--force", "p"]);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        format!("{out}{err}").contains("libs/sub/dirty.txt"),
        "{out}\n{err}"
    );
    assert_eq!(
        std::fs::read_to_string(wt.join("libs/sub/dirty.txt")).unwrap_or_default(),
        "dirty\n",
        "{out}\n{err}"
    );
}

#[test]
fn submodules_false_leaves_them_empty() {
    let fx = fixture();
    plans(&fx, ("any", &[]), "submodules = false", true, false);
    let (code, out, err) = fx.repo.run(&["up", "--json"]);
    let journal = journal(&fx);
    assert_eq!(code, 0, "{out}\n{err}\n{journal:#?}");
    let starts: Vec<&String> = journal.iter().filter(|l| l.starts_with("start ")).collect();
    assert_eq!(starts.len(), 2, "{journal:#?}");
    for s in starts {
        assert!(s.contains("sub=no inner=no"), "{s}");
    }
    assert_eq!(
        gitlink(&fx.repo, "plan/p"),
        format!("160000 {}", fx.sub_commit)
    );
}

/// The submodules of `fx`'s main repository as if `git submodule update --init` never ran: no
/// `.git/modules`, an empty `libs/sub`.
fn uninitialised(fx: &Fixture) {
    let root = fx.repo.root();
    std::fs::remove_dir_all(root.join(".git/modules")).expect("remove modules");
    std::fs::remove_dir_all(root.join("libs/sub")).expect("remove libs/sub");
    std::fs::create_dir(root.join("libs/sub")).expect("libs/sub");
}

#[test]
fn a_missing_modules_dir_is_a_warning_and_the_run_goes_on() {
    let fx = fixture();
    plans(&fx, ("any", &[]), "", true, false);
    uninitialised(&fx);
    let (code, out, err) = fx.repo.run(&["up", "--json"]);
    let journal = journal(&fx);
    assert_eq!(code, 0, "{out}\n{err}\n{journal:#?}");
    assert_eq!(
        journal.iter().filter(|l| l.starts_with("end ")).count(),
        2,
        "{journal:#?}"
    );
    let notes: Vec<String> = events(&out)
        .into_iter()
        .filter(|e| e["event"] == "note")
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect();
    assert!(
        notes.iter().any(|m| m.contains("submodule `libs/sub`")
            && m.contains("git submodule update --init --recursive")),
        "{notes:#?}\n{out}"
    );
    // Shown without --json too.
    let fx2 = fixture();
    plans(&fx2, ("any", &[]), "", true, false);
    uninitialised(&fx2);
    let (code, out, err) = fx2.repo.run(&["up"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        format!("{out}{err}").contains("git submodule update --init --recursive"),
        "{out}\n{err}"
    );
}

#[test]
fn a_confined_agent_cannot_commit_inside_a_submodule_and_is_told_why() {
    if !orch::sandbox::supported() {
        assert!(
            std::env::var_os("ORCH_REQUIRE_LANDLOCK").is_none(),
            "ORCH_REQUIRE_LANDLOCK is set, but this kernel does not support Landlock"
        );
        eprintln!("skipped: this kernel does not support Landlock");
        return;
    }
    let mut fx = fixture();
    // The journal in a directory of its own that the confined agent may write.
    let jdir = tempfile::tempdir().expect("tempdir");
    fx.journal = jdir.path().join("journal");
    let dir = support::utf8(jdir.path());
    plans(
        &fx,
        ("confined", &[]),
        &format!("sandbox = \"on\"\nsandbox_write = [\"{dir}\"]"),
        false,
        false,
    );
    let (code, out, err) = fx
        .repo
        .run_cmd(fx.repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
    let journal = journal(&fx);
    assert_ne!(code, 0, "{out}\n{err}\n{journal:#?}");
    assert!(
        journal
            .iter()
            .any(|l| l.starts_with("commit exit ") && l != "commit exit 0"),
        "{journal:#?}"
    );
    let error = events(&out)
        .into_iter()
        .find(|e| e["event"] == "task_failed")
        .and_then(|e| e["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no task_failed\n{out}\n{err}"));
    assert!(
        error.contains("libs/sub/sub.txt")
            && error.contains("a confined agent cannot commit inside a submodule"),
        "{error}"
    );
    let wt = fx.repo.worktree("p");
    assert_eq!(
        std::fs::read_to_string(wt.join("libs/sub/sub.txt")).unwrap_or_default(),
        "changed\n"
    );
}

#[test]
fn a_sparse_plan_gets_the_submodules_its_paths_hold() {
    let fx = fixture();
    plans(&fx, ("sparse", &[]), "", true, false);
    // Plan p is the manifest's last table: its paths.
    let toml = String::from_utf8(fx.repo.read("plans.toml")).expect("utf-8");
    fx.repo
        .write("plans.toml", &format!("{toml}paths = [\"libs\"]\n"));
    fx.repo.commit_all("sparse");
    let (code, out, err) = fx.repo.run(&["up", "--json"]);
    let journal = journal(&fx);
    assert_eq!(code, 0, "{out}\n{err}\n{journal:#?}");
    let starts: Vec<&String> = journal.iter().filter(|l| l.starts_with("start ")).collect();
    assert_eq!(starts.len(), 2, "{journal:#?}");
    for s in starts {
        assert!(s.contains("sub=yes inner=yes"), "{s}");
    }
    assert_eq!(
        gitlink(&fx.repo, "plan/p"),
        format!("160000 {}", fx.sub_commit)
    );
    assert!(
        !fx.repo
            .git(&["ls-tree", "plan/p", "libs/p-1.2.txt"])
            .is_empty()
    );
}

#[test]
fn a_main_checkout_without_gitmodules_is_told_apart() {
    let fx = fixture();
    plans(&fx, ("any", &[]), "", true, false);
    // The main work tree on a branch that declares no submodule; the plans start from `main`,
    // which does.
    let repo = &fx.repo;
    repo.git(&["switch", "-q", "-c", "other"]);
    repo.git(&["rm", "-q", "--cached", "libs/sub", ".gitmodules"]);
    repo.git(&["commit", "-q", "-m", "no submodules here"]);
    let (code, out, err) = repo.run(&["up", "--json"]);
    let journal = journal(&fx);
    assert_eq!(code, 0, "{out}\n{err}\n{journal:#?}");
    for s in journal.iter().filter(|l| l.starts_with("start ")) {
        assert!(s.contains("sub=no"), "{s}");
    }
    assert!(
        events(&out)
            .iter()
            .any(|e| e["message"].as_str().is_some_and(|m| m.contains(
                "has a `.gitmodules`, the commit checked out in the main work tree has none"
            ))),
        "{out}"
    );
}

#[test]
fn a_submodule_the_repository_turns_off_is_left_empty() {
    let fx = fixture();
    fx.repo
        .git(&["config", "submodule.libs/sub.active", "false"]);
    plans(&fx, ("any", &[]), "", true, false);
    let (code, out, err) = fx.repo.run(&["up", "--json"]);
    let journal = journal(&fx);
    assert_eq!(code, 0, "{out}\n{err}\n{journal:#?}");
    for s in journal.iter().filter(|l| l.starts_with("start ")) {
        assert!(s.contains("sub=no"), "{s}");
    }
}
