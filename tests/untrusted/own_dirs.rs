//! orch's own directories: its state (`.orch/state`), its worktrees (`.orch/worktrees`) and its
//! logs, wherever the manifest puts them. orch keeps them out of git with `.git/info/exclude`,
//! which a tracked `.gitignore` overrides (`!.orch/`), and libgit2's checkout writes over
//! ignored files: a plan that lands files under `.orch/worktrees/q/` used to plant them in plan
//! `q`'s worktree (its next commit held them), and one under `.orch/state/q/` rewrote `q`'s
//! status. A hostile agent tries it every way (a root `.gitignore` with `!.orch/` or
//! `!.orch/**`, a nested `.gitignore`, `.orch` as a link to a directory outside, a manifest's own
//! `worktree_root` inside the repository), unconfined and confined, through the commit of its
//! task, through `orch merge` (with `--allow-protected` too) and through the merge train: the
//! task fails naming the path, nothing is committed; the landing is refused naming the path
//! (exit 4), `main` does not move; plan `q`'s worktree and status are untouched, byte for byte,
//! and its next commit holds nothing of it.

use std::path::PathBuf;

use crate::support::{self, Repo, toml_array};

/// Each way to plant files in orch's directories (shell lines run in plan `p`'s worktree), the
/// path the refusal must name, and the `[defaults]` lines the manifest needs for it.
pub(super) const PLANTS: [(&str, &str, &str); 5] = [
    (
        "mkdir -p .orch/worktrees/q && echo pwned > .orch/worktrees/q/planted.txt \
         && printf '!.orch/\\n!.orch/**\\n' > .gitignore",
        ".orch/worktrees/q/planted.txt",
        "",
    ),
    (
        "mkdir -p .orch/state/q && echo '{}' > .orch/state/q/status.json \
         && printf '!.orch/**\\n' > .gitignore",
        ".orch/state/q/status.json",
        "",
    ),
    (
        "mkdir -p .orch/worktrees/q && echo pwned > .orch/worktrees/q/planted.txt \
         && printf '!/worktrees/\\n!/worktrees/**\\n' > .orch/.gitignore",
        ".orch/worktrees/q/planted.txt",
        "",
    ),
    ("ln -s /tmp/orch-own-dirs-elsewhere .orch", ".orch", ""),
    (
        "mkdir -p wt/q && echo pwned > wt/q/planted.txt && printf '!wt/\\n!wt/**\\n' > .gitignore",
        "wt/q/planted.txt",
        "worktree_root = \"wt\"\n",
    ),
];

/// Plans `p` (its agent runs `p_script`, then writes `done.txt`) and `q` (writes `q.txt`), each
/// with one task; `defaults` added to `[defaults]`, `p_keys` to plan `p`.
fn two_plans(p_script: &str, defaults: &str, p_keys: &str) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    for plan in ["p", "q"] {
        repo.write(
            &format!("docs/plans/{plan}.md"),
            &format!("# {plan}\n\n## Phase 1: Work\n- [ ] 1.1 Do the work\n"),
        );
    }
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\n{defaults}\n\
             [agents.pa]\ncommand = {}\n\n\
             [agents.qa]\ncommand = {}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"pa\"\n{p_keys}\n\n\
             [[plan]]\nname = \"q\"\nfile = \"docs/plans/q.md\"\nagent = \"qa\"\n",
            toml_array(&["sh", "-c", &format!("{p_script}\ntouch done.txt")]),
            toml_array(&["sh", "-c", "echo \"$ORCH_TASK\" >> q.txt"]),
        ),
    );
    repo.commit_all("plans");
    repo
}

/// Where plan `q`'s worktree is with `defaults`.
fn q_tree(repo: &Repo, defaults: &str) -> PathBuf {
    if defaults.contains("worktree_root") {
        repo.root().join("wt/q")
    } else {
        repo.worktree("q")
    }
}

/// Plan `q`'s worktree and status file as they are, byte for byte.
fn q_now(repo: &Repo, defaults: &str) -> (std::collections::BTreeSet<(String, String)>, Vec<u8>) {
    let tree = support::disk_snapshot(&q_tree(repo, defaults))
        .into_iter()
        .filter(|(p, _)| p != ".git")
        .collect();
    let status = std::fs::read(repo.root().join(".orch/state/q/status.json")).expect("q status");
    (tree, status)
}

/// Plan `q`'s next commit (a task added to its plan, `orch up` again) holds nothing of `path`.
fn q_next_commit_holds_nothing_of(repo: &Repo, path: &str, what: &str) {
    let plan = String::from_utf8_lossy(&repo.read("docs/plans/q.md")).into_owned();
    repo.write("docs/plans/q.md", &format!("{plan}- [ ] 1.2 More work\n"));
    repo.commit_all("q: one more task");
    let (code, out, err) = repo.run(&["up", "q"]);
    assert_eq!(code, 0, "{what}\n{out}\n{err}");
    let tip = repo.rev("plan/q");
    let files = repo.changed_files(&tip);
    assert!(
        files
            .iter()
            .all(|f| !f.contains("planted") && !f.contains("status.json")),
        "{what}: q's next commit holds {files:?}"
    );
    let name = std::path::Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path);
    assert!(
        !repo
            .tree_files("plan/q")
            .iter()
            .any(|f| f.ends_with(name) && f != "q.txt"),
        "{what}: plan/q holds {name}"
    );
}

/// A task whose agent plants files in orch's directories (or a link at `.orch`) and leaves
/// them for orch to commit, unconfined and confined: the task fails naming the path, nothing is
/// committed on `plan/p`, `main` does not move, `q` is untouched. Seen failing on main: the
/// files (and the link) were committed on `plan/p`.
#[test]
fn own_dirs_a_task_that_writes_into_orchs_directories_fails_naming_the_path() {
    for sandbox in support::sandboxes() {
        for (line, path, defaults) in PLANTS {
            let what = format!("{line} (sandbox {sandbox})");
            let repo = two_plans(line, &format!("{defaults}sandbox = \"{sandbox}\"\n"), "");
            let main = repo.rev("main");
            let (code, out, err) =
                repo.run_cmd(repo.orch(&["up", "--json"]).env("ORCH_SANDBOX", sandbox));
            assert_eq!(code, 5, "{what}\n{out}\n{err}");
            let task = repo.task("p", "1.1");
            assert_eq!(task["status"], "failed", "{what}: {task}");
            let error = task["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("orch's own directories") && error.contains(path),
                "{what}: {error}"
            );
            assert_eq!(repo.rev("plan/p"), main, "{what}: committed on plan/p");
            assert!(
                !repo
                    .tree_files("plan/p")
                    .iter()
                    .any(|f| f.starts_with(path)),
                "{what}"
            );
            assert_eq!(repo.rev("main"), main, "{what}: main moved");
            assert_eq!(repo.task("q", "1.1")["status"], "completed", "{what}");
            assert!(
                !q_tree(&repo, defaults).join("planted.txt").exists(),
                "{what}: planted in q's worktree"
            );
        }
    }
}

/// A finished plan `p` whose branch then got the plant, committed as an unconfined agent would
/// commit it: `orch merge p` refuses it (exit 4) naming the path, with `--allow-protected` too;
/// `main`, the main checkout, `q`'s worktree and status are as they were; `q`'s next commit holds
/// nothing of it. Seen failing on main: the files were landed in `q`'s worktree (and status)
/// and `q`'s next commit held them.
#[test]
fn own_dirs_orch_merge_never_lands_into_orchs_directories() {
    for (n, (line, path, defaults)) in PLANTS.into_iter().enumerate() {
        let what = line;
        let repo = two_plans("true", defaults, "");
        let (code, out, err) = repo.run(&["up"]);
        assert_eq!(code, 0, "{what}\n{out}\n{err}");
        let tree = q_tree(&repo, defaults)
            .parent()
            .map(|d| d.join("p"))
            .expect("p's worktree");
        support::shell_in(
            &tree,
            &format!("{line} && git add -A && git commit -qm sneak"),
        );
        assert!(
            repo.tree_files("plan/p")
                .iter()
                .any(|f| f.starts_with(path)),
            "{what}: the plant is not on plan/p: {:?}",
            repo.tree_files("plan/p")
        );
        let (main, q) = (repo.rev("main"), q_now(&repo, defaults));
        for args in [&["merge", "p"][..], &["merge", "p", "--allow-protected"]] {
            let (code, out, err) = repo.run(args);
            assert_eq!(code, 4, "{what} {args:?}\n{out}\n{err}");
            assert!(
                err.contains(path) && err.contains("orch's own directories"),
                "{what} {args:?}\n{err}"
            );
            assert_eq!(repo.rev("main"), main, "{what} {args:?}: main moved");
            assert_eq!(q_now(&repo, defaults), q, "{what} {args:?}: q changed");
        }
        // Once is enough for the slow part: q's next commit.
        if n == 0 {
            q_next_commit_holds_nothing_of(&repo, path, what);
        }
    }
}

/// The merge train (`auto_merge`): a plan-mode agent commits the plant itself, then reports its
/// task done: the train refuses `p` naming the path, `main` holds nothing of it, `q`'s worktree
/// has no planted file and its next commit holds nothing of it. Seen failing on main: `p` was
/// merged and its files written into `q`'s worktree.
#[test]
fn own_dirs_the_merge_train_never_lands_into_orchs_directories() {
    for (line, path, defaults) in [PLANTS[0], PLANTS[1], PLANTS[3], PLANTS[4]] {
        let what = line;
        let script = format!(
            "{line} && git add -A && git -c user.name=a -c user.email=a@a commit -qm tidy; \
             \"$ORCH_BIN\" task start 1.1 && echo work > work.txt && \"$ORCH_BIN\" task done 1.1; exit 0"
        );
        let repo = two_plans("true", &format!("{defaults}auto_merge = true\n"), "");
        let manifest = String::from_utf8_lossy(&repo.read("plans.toml")).replace(
            &toml_array(&["sh", "-c", "true\ntouch done.txt"]),
            &format!("{}\nmode = \"plan\"", toml_array(&["sh", "-c", &script])),
        );
        repo.write("plans.toml", &manifest);
        repo.commit_all("plan mode");
        let (_, out, err) = repo.run(&["up", "--json"]);
        let ev = support::events(&out);
        let refused: Vec<_> = support::named(&ev, "plan_merge_failed")
            .into_iter()
            .filter(|e| e["plan"] == "p")
            .collect();
        assert_eq!(refused.len(), 1, "{what}\n{out}\n{err}");
        assert_eq!(refused[0]["result"], "refused", "{what}: {refused:?}");
        assert!(
            refused[0]["reason"]
                .as_str()
                .unwrap_or_default()
                .contains(path),
            "{what}: {refused:?}"
        );
        assert!(
            !repo.tree_files("main").iter().any(|f| f.starts_with(path)),
            "{what}: main holds it"
        );
        assert!(
            !q_tree(&repo, defaults).join("planted.txt").exists(),
            "{what}: planted in q's worktree"
        );
        assert!(
            !repo.root().join(".orch/state/q/status.json").exists()
                || repo.read(".orch/state/q/status.json") != b"{}\n",
            "{what}: q's status replaced"
        );
        q_next_commit_holds_nothing_of(&repo, path, what);
    }
}
