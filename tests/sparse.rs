//! Sparse plans (`paths`) end to end through `orch up`, `orch merge`, `orch check` and
//! `orch status --disk`: real repositories, scripted agents, the trees of the commits.

use crate::support;

use serde_json::Value;
use support::{Repo, toml_array};

/// 40 files of 8 KiB in `lib/` and one in `svc/b/`, outside the cone `svc/a`.
fn sparse_repo() -> Repo {
    let repo = Repo::new();
    repo.write("svc/a/main.txt", "a\n");
    repo.write("svc/top.txt", "top\n");
    repo.write("svc/b/y.txt", "b\n");
    let block = "x".repeat(8191) + "\n";
    for i in 0..40 {
        repo.write(&format!("lib/f{i:02}.txt"), &block);
    }
    repo.commit_all("files");
    repo
}

/// Files in the tree of `rev`, sorted.
fn tree(repo: &Repo, rev: &str) -> Vec<String> {
    let mut files: Vec<String> = repo
        .git(&["ls-tree", "-r", "--name-only", rev])
        .lines()
        .map(str::to_string)
        .collect();
    files.sort();
    files
}

/// An agent (`sh -c SCRIPT`) that writes `svc/a/t<id>.txt` and fails if anything outside the
/// cone is on disk, with `paths = ["svc/a"]` on plan `p` (and plan `q`, the same with no paths).
fn manifest(repo: &Repo, plan_text: &str, script: &str, plan_extra: &str, with_q: bool) {
    repo.write("docs/plans/p.md", plan_text);
    let mut text = format!(
        "[defaults]\nagent = \"a\"\nretries = 0\n\n[agents.a]\ncommand = {}\n\n\
         [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\npaths = [\"svc/a\"]\n{plan_extra}\n",
        toml_array(&["sh", "-c", script])
    );
    if with_q {
        repo.write("docs/plans/q.md", plan_text);
        text.push_str(&format!(
            "\n[[plan]]\nname = \"q\"\nfile = \"docs/plans/q.md\"\n{plan_extra}\n"
        ));
    }
    repo.write("plans.toml", &text);
    repo.commit_all("plans");
}

const THREE: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 First\n- [ ] 1.2 Second\n- [ ] 1.3 Third (depends: 1.1, 1.2)\n";

const WRITE_IN_CONE: &str = "if [ \"$ORCH_PLAN\" = p ] && { [ -e lib ] || [ -e svc/b ]; }; then echo outside on disk; exit 1; fi; \
     echo \"$ORCH_TASK\" > \"svc/a/t$ORCH_TASK.txt\"";

#[test]
fn a_sparse_plan_commits_and_merges_keeping_every_file_outside_its_cone() {
    let repo = sparse_repo();
    manifest(&repo, THREE, WRITE_IN_CONE, "parallel_tasks = 2", true);
    let before = tree(&repo, "main");
    repo.up(&[]);
    for (id, status) in repo.statuses("p") {
        assert_eq!(status, "completed", "p {id}");
    }
    let wt = repo.worktree("p");
    assert!(wt.join("svc/a/t1.3.txt").is_file());
    assert!(wt.join("README.md").is_file(), "root files are in the cone");
    assert!(!wt.join("lib").exists() && !wt.join("svc/b").exists());

    // Every file outside the cone is in every commit of the plan.
    let mut expected = before.clone();
    for id in ["1.1", "1.2", "1.3"] {
        expected.push(format!("svc/a/t{id}.txt"));
    }
    expected.sort();
    assert_eq!(tree(&repo, "plan/p"), expected);
    for c in repo.commits("plan/p") {
        let files = tree(&repo, &c);
        assert!(
            files.iter().filter(|f| f.starts_with("lib/")).count() == 40,
            "{c}"
        );
        assert!(files.contains(&"svc/b/y.txt".to_string()), "{c}");
    }

    // --disk: at least the files written, less than the same plan with no paths.
    let (code, out, err) = repo.run(&["status", "--disk", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let disk = |plan: &str| {
        v["plans"]
            .as_array()
            .expect("plans")
            .iter()
            .find(|x| x["plan"] == plan)
            .and_then(|x| x["disk_bytes"].as_u64())
            .unwrap_or_else(|| panic!("no disk_bytes for {plan}: {v}"))
    };
    let written: u64 = walk_sizes(&wt);
    assert!(disk("p") >= written, "{} < {written}", disk("p"));
    assert!(
        disk("p") + 40 * 8192 <= disk("q"),
        "p {} q {}",
        disk("p"),
        disk("q")
    );
    let (code, text, _) = repo.run(&["status", "--disk", "--plan", "p"]);
    assert_eq!(code, 0);
    assert!(text.contains("  disk: "), "{text}");

    // `orch merge` sees the whole tree.
    let (code, out, err) = repo.run(&["merge", "p"]);
    assert_eq!(code, 0, "orch merge failed\n{out}\n{err}");
    assert_eq!(tree(&repo, "main"), expected);
    assert_eq!(
        repo.read("lib/f07.txt").len(),
        8192,
        "the main checkout still has the files outside the cone"
    );
    // A merged sparse plan is clean: `orch clean` removes it.
    let (code, out, err) = repo.run(&["clean", "p"]);
    assert_eq!(code, 0, "orch clean failed\n{out}\n{err}");
    assert!(!wt.exists(), "{out}\n{err}");
    assert!(!repo.branch_exists("plan/p"));
}

/// The sizes of the files under `dir` (the `.git` file left out).
fn walk_sizes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let m = e.metadata().expect("metadata");
            if m.is_dir() {
                stack.push(e.path());
            } else if e.file_name() != ".git" {
                total += m.len();
            }
        }
    }
    total
}

#[test]
fn an_agent_writing_outside_the_cone_fails_with_the_file_named() {
    let repo = sparse_repo();
    let plan = "# P\n\n## Phase 1: Work\n- [ ] 1.1 Do it\n";
    let script = "mkdir -p lib && echo new > lib/new.txt && echo ok > svc/a/ok.txt";
    manifest(&repo, plan, script, "", false);
    let (code, out, err) = repo.run(&["up"]);
    assert_ne!(code, 0, "the task must fail\n{out}\n{err}");
    let task = repo.task("p", "1.1");
    assert_eq!(task["status"], "failed", "{task}");
    let error = task["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("wrote outside the plan's paths: lib/new.txt"),
        "{error}"
    );
    // Nothing committed; the attempt's work is saved and the worktree is clean and sparse again.
    assert_eq!(repo.rev("plan/p"), repo.rev("main"));
    let saved = tree(&repo, "refs/orch/attempts/p/1.1/1");
    assert!(saved.contains(&"lib/new.txt".to_string()), "{saved:?}");
    assert!(saved.contains(&"svc/a/ok.txt".to_string()), "{saved:?}");
    assert!(saved.contains(&"lib/f00.txt".to_string()), "{saved:?}");
    let wt = repo.worktree("p");
    assert!(!wt.join("lib").exists() && !wt.join("svc/a/ok.txt").exists());
}

#[test]
fn orch_check_warns_of_a_task_naming_a_file_outside_its_plans_paths() {
    let repo = sparse_repo();
    let plan =
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Fix `lib/f01.txt`\n- [ ] 1.2 Fix `svc/a/main.txt`\n";
    manifest(&repo, plan, "true", "", false);
    let (code, _, err) = repo.run(&["check"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("docs/plans/p.md:4")
            && err.contains("task 1.1 names `lib/f01.txt`, outside the paths of plan `p`"),
        "{err}"
    );
    assert!(!err.contains("task 1.2"), "{err}");
    assert!(err.contains("0 error(s), 1 warning(s)"), "{err}");
}

#[test]
fn bad_paths_are_errors_at_their_place_and_change_nothing() {
    for (paths, line_col, says) in [
        (
            "[\"../outside\"]",
            "plans.toml:11:10",
            "not a directory inside the repository",
        ),
        (
            "[\"svc/a\", \"/etc\"]",
            "plans.toml:11:19",
            "not a directory inside the repository",
        ),
        (
            "[\"svc/nope\"]",
            "plans.toml:11:10",
            "`svc/nope` of plan `p` is not a directory of its base",
        ),
        (
            "[\"svc/top.txt\"]",
            "plans.toml:11:10",
            "is not a directory of its base",
        ),
    ] {
        let repo = sparse_repo();
        repo.write(
            "docs/plans/p.md",
            "# P\n\n## Phase 1: Work\n- [ ] 1.1 Do it\n",
        );
        repo.write(
            "plans.toml",
            &format!(
                "[defaults]\nagent = \"a\"\n\n[agents.a]\ncommand = [\"true\"]\n\n\
                 [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n\npaths = {paths}\n"
            ),
        );
        repo.commit_all("plans");
        for cmd in ["check", "up"] {
            let (code, _, err) = repo.run(&[cmd]);
            assert_eq!(code, 2, "orch {cmd} with paths = {paths}: {err}");
            assert!(
                err.contains(line_col) && err.contains(says),
                "{paths}: {err}"
            );
        }
        assert!(!repo.branch_exists("plan/p"), "{paths}");
        assert!(!repo.root().join(".orch/worktrees/p").exists(), "{paths}");
    }
}

#[test]
fn a_plan_mode_agent_writing_outside_the_cone_has_its_task_refused_with_the_file_named() {
    let repo = sparse_repo();
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Do it\n",
    );
    // The plan agent reports the task done through `orch task done`, which commits its work.
    let script = "echo ok > svc/a/ok.txt && mkdir -p lib && echo new > lib/new.txt && \
                  \"$ORCH_BIN\" task done 1.1";
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"a\"\nretries = 0\n\n[agents.a]\ncommand = {}\nmode = \"plan\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\npaths = [\"svc/a\"]\n",
            toml_array(&["sh", "-c", script])
        ),
    );
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["up"]);
    assert_ne!(code, 0, "the plan must fail\n{out}\n{err}");
    // Refused: nothing committed, the task not done, and the agent was told which file.
    assert_eq!(repo.rev("plan/p"), repo.rev("main"));
    assert_ne!(repo.task("p", "1.1")["status"], "completed");
    let logs = support::clis::logs(&repo);
    assert!(
        logs.contains("wrote outside the plan's paths: lib/new.txt"),
        "{logs}"
    );
    // The attempt's work is saved, with the file outside the cone.
    let saved = repo.refs_under("refs/orch/attempts/p");
    assert_eq!(saved.len(), 1, "{}", repo.refs());
    assert!(tree(&repo, &saved[0]).contains(&"lib/new.txt".to_string()));
}
