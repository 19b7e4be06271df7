//! `orch conflicts` end to end: plan branches made by the real `orch up`, pairs that conflict
//! (with their files) and pairs that do not, the target, predictions from task texts, and a
//! repository left exactly as it was. Also `orch up`'s early warning.

use crate::support;

use serde_json::Value;
use support::{Repo, agent, one_task};

/// Commits one-task plans, each run by an agent that writes one file:
/// `(plan, file its agent writes, plan title, task)`.
fn writing_plans(repo: &Repo, plans: &[(&str, &str, &str, &str)]) {
    let texts: Vec<String> = plans
        .iter()
        .map(|(_, _, title, task)| one_task(title, task))
        .collect();
    let specs: Vec<(&str, String, &str)> = plans
        .iter()
        .zip(&texts)
        .map(|((name, file, _, _), text)| (*name, agent("write.sh", &[file]), text.as_str()))
        .collect();
    repo.plans(&specs);
}

fn parse_pairs(out: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    v["pairs"].as_array().expect("pairs").clone()
}

fn find<'a>(pairs: &'a [Value], a: &str, b: &str, kind: &str) -> &'a Value {
    pairs
        .iter()
        .find(|p| {
            p["kind"] == kind && ((p["a"] == a && p["b"] == b) || (p["a"] == b && p["b"] == a))
        })
        .unwrap_or_else(|| panic!("no {kind} pair {a}/{b} in {pairs:?}"))
}

fn files(p: &Value) -> Vec<String> {
    p["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f.as_str().expect("file").to_string())
        .collect()
}

/// Plans `a` and `b` both rewrite `shared.txt`; `c` writes its own file.
fn three_plans() -> Repo {
    let repo = Repo::new();
    writing_plans(
        &repo,
        &[
            ("a", "shared.txt", "A", "Rewrite the shared file"),
            ("b", "shared.txt", "B", "Rewrite the shared file too"),
            ("c", "c.txt", "C", "Write its own file"),
        ],
    );
    repo.up(&[]);
    repo
}

#[test]
fn conflicting_pair_is_reported_with_its_file_clean_pairs_are_not_and_nothing_is_written() {
    let repo = three_plans();
    let refs = repo.refs();
    let git_dir = repo.git_dir_listing();
    let worktrees = repo.worktrees();
    let wt_status: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|p| {
            String::from_utf8_lossy(
                &repo
                    .git_in(&repo.worktree(p), &["status", "--porcelain"])
                    .stdout,
            )
            .into_owned()
        })
        .collect();

    let (code, out, err) = repo.run(&["conflicts", "--json"]);
    assert_eq!(code, 5, "a merge conflict exits 5\n{out}\n{err}");
    let pairs = parse_pairs(&out);
    let ab = find(&pairs, "a", "b", "merge");
    assert_eq!(ab["conflict"], true);
    assert_eq!(files(ab), ["shared.txt"]);
    for (x, y) in [("a", "c"), ("b", "c")] {
        let p = find(&pairs, x, y, "merge");
        assert_eq!(p["conflict"], false, "{p}");
        assert!(files(p).is_empty());
    }
    for plan in ["a", "b", "c"] {
        let p = find(&pairs, plan, "main", "merge");
        assert_eq!(p["with_target"], true);
        assert_eq!(p["conflict"], false, "{p}");
    }
    // Three branch pairs and three branch-vs-target pairs, nothing predicted (all started).
    assert_eq!(pairs.len(), 6, "{pairs:?}");

    // The text form names the pair and the file, and sums up the clean pairs.
    let (code, text, _) = repo.run(&["conflicts"]);
    assert_eq!(code, 5);
    assert!(text.contains("a ↔ b: `shared.txt`"), "{text}");
    assert!(text.contains("no conflicts: 5 pairs"), "{text}");

    // Nothing written: refs, objects, worktree entries, config; work trees as they were.
    assert_eq!(repo.refs(), refs);
    assert_eq!(repo.git_dir_listing(), git_dir);
    assert_eq!(repo.worktrees(), worktrees);
    for (i, p) in ["a", "b", "c"].iter().enumerate() {
        let now = repo.git_in(&repo.worktree(p), &["status", "--porcelain"]);
        assert_eq!(String::from_utf8_lossy(&now.stdout), wt_status[i]);
    }

    // Only pairs with the plans asked for.
    let (code, out, _) = repo.run(&["conflicts", "c", "--json"]);
    assert_eq!(code, 0, "c conflicts with nobody");
    let only_c = parse_pairs(&out);
    assert_eq!(only_c.len(), 3, "{only_c:?}");
    assert!(only_c.iter().all(|p| p["a"] == "c" || p["b"] == "c"));
}

#[test]
fn a_branch_conflicting_with_the_target_is_reported() {
    let repo = Repo::new();
    writing_plans(
        &repo,
        &[
            ("a", "shared.txt", "A", "Rewrite the shared file"),
            ("c", "c.txt", "C", "Write its own file"),
        ],
    );
    repo.up(&[]);
    repo.write("shared.txt", "changed on main meanwhile\n");
    repo.commit_all("main moves on");

    let (code, out, err) = repo.run(&["conflicts", "--json"]);
    assert_eq!(code, 5, "{out}\n{err}");
    let pairs = parse_pairs(&out);
    let am = find(&pairs, "a", "main", "merge");
    assert_eq!(am["conflict"], true);
    assert_eq!(files(am), ["shared.txt"]);
    assert_eq!(am["a_branch"], "plan/a");
    assert_eq!(find(&pairs, "c", "main", "merge")["conflict"], false);
    assert_eq!(find(&pairs, "a", "c", "merge")["conflict"], false);

    let (_, text, _) = repo.run(&["conflicts"]);
    assert!(text.contains("a → main: `shared.txt`"), "{text}");
}

#[test]
fn plans_not_started_are_predicted_from_the_files_their_tasks_name() {
    let repo = Repo::new();
    writing_plans(
        &repo,
        &[
            ("lib", "src/lib.rs", "Lib", "Write the library"),
            (
                "later",
                "x.txt",
                "Later",
                "Refactor `src/lib.rs` and update docs/guide.md",
            ),
            ("docs", "y.txt", "Docs", "Extend docs/guide.md"),
            ("other", "z.txt", "Other", "Touch `src/other.rs`"),
        ],
    );
    // Only `lib` runs: the others have no branch.
    repo.up(&["lib"]);
    assert!(repo.branch_exists("plan/lib"));
    assert!(!repo.branch_exists("plan/later"));

    let (code, out, err) = repo.run(&["conflicts", "--json"]);
    assert_eq!(code, 0, "predictions alone exit 0\n{out}\n{err}");
    let pairs = parse_pairs(&out);
    // Against a branch: the file its tasks name that the branch changed.
    let p = find(&pairs, "later", "lib", "predicted");
    assert_eq!(p["conflict"], true);
    assert_eq!(files(p), ["src/lib.rs"]);
    // Between two plans not started: the file both name.
    let p = find(&pairs, "later", "docs", "predicted");
    assert_eq!(files(p), ["docs/guide.md"]);
    // No overlap, no conflict.
    let p = find(&pairs, "other", "lib", "predicted");
    assert_eq!(p["conflict"], false);
    let p = find(&pairs, "other", "later", "predicted");
    assert_eq!(p["conflict"], false);
    // The started plan against the target.
    assert_eq!(find(&pairs, "lib", "main", "merge")["conflict"], false);

    let (_, text, _) = repo.run(&["conflicts"]);
    assert!(text.contains("predicted"), "{text}");
    assert!(text.contains("later ↔ lib: `src/lib.rs`"), "{text}");
}

#[test]
fn unknown_plan_and_missing_manifest_are_invalid_input() {
    let repo = Repo::new();
    let (code, _, err) = repo.run(&["conflicts"]);
    assert_eq!(code, 2, "{err}");
    writing_plans(&repo, &[("a", "a.txt", "A", "Write a")]);
    let (code, _, err) = repo.run(&["conflicts", "nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no plan named `nope`"), "{err}");
}

#[test]
fn orch_up_warns_about_branches_that_would_conflict() {
    let repo = Repo::new();
    writing_plans(
        &repo,
        &[
            ("a", "shared.txt", "A", "Rewrite the shared file"),
            ("b", "shared.txt", "B", "Rewrite the shared file too"),
        ],
    );
    let first = repo.up(&[]);
    // Branches had no work when the first run started: no warning then.
    assert!(!first.contains("would conflict"), "{first}");

    // A second phase for both: the next run starts with branches that already conflict.
    for (name, title) in [("a", "A"), ("b", "B")] {
        repo.write(
            &format!("docs/plans/{name}.md"),
            &format!(
                "{}\n## Phase 2: More\n- [ ] 2.1 More work\n",
                one_task(title, "Rewrite the shared file")
            ),
        );
    }
    repo.commit_all("more tasks");
    let second = repo.up(&[]);
    let notes: Vec<Value> = second
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "note")
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("would conflict"))
        })
        .collect();
    assert_eq!(notes.len(), 1, "{second}");
    let message = notes[0]["message"].as_str().expect("message");
    assert!(message.contains("`shared.txt`"), "{message}");
    assert!(
        message.contains("plan/a") && message.contains("plan/b"),
        "{message}"
    );
}
