//! `orch merge` end to end: real repositories in temp dirs, plans finished by a real `orch up`
//! with a scripted agent, and the outcomes a user checks: the target ref and its history, the
//! files and index of the main work tree, tags, status files, exit codes. `verify` before the
//! target moves: tests/merge_verify.rs.

use crate::support;

use std::path::Path;
use std::process::{Command, Stdio};

use support::merge::{A, ABC, C, PlanSpec, finished, merge_json, pairs, results, snapshot, step};
use support::{Repo, wait};

#[test]
fn three_finished_plans_land_in_dependency_order_with_archive_tags() {
    let repo = finished(&ABC, "", &[]);
    let before = repo.rev("main");
    let (code, out, err) = repo.run(&["merge"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("a -> b -> c"), "{out}");

    // Three merge commits on main's first-parent line, in dependency order (b's priority does
    // not put it before a, which it depends on).
    let subjects = repo.first_parent_subjects("main");
    assert_eq!(
        subjects[..4],
        [
            "Merge plan `c` (1 task) into main",
            "Merge plan `b` (1 task) into main",
            "Merge plan `a` (2 tasks) into main",
            "plans",
        ]
    );
    for (i, plan) in ["c", "b", "a"].iter().enumerate() {
        let merge = format!("main~{i}");
        assert_eq!(
            repo.rev(&format!("{merge}^2")),
            repo.rev(&format!("plan/{plan}")),
            "second parent of the merge of {plan}"
        );
    }
    assert_eq!(repo.rev("main~3"), before);
    // The message lists the task commits and the base.
    let body = repo.git(&["log", "-1", "--format=%B", "main~2"]);
    assert!(
        body.contains("- a 1.1: Start a\n- a 1.2: Finish a"),
        "{body}"
    );
    assert!(body.contains(&format!("Plan base: {before}")), "{body}");

    // The tree is exactly the union of the plans' files.
    assert_eq!(
        repo.tree_files("main"),
        [
            "README.md",
            "a.txt",
            "b.txt",
            "c.txt",
            "docs/plans/a.md",
            "docs/plans/b.md",
            "docs/plans/c.md",
            "plans.toml"
        ]
    );
    // The main work tree shows them and is clean (index included).
    assert!(String::from_utf8_lossy(&repo.read("a.txt")).contains("1.2 done"));
    assert!(repo.root().join("c.txt").is_file());
    assert_eq!(repo.git(&["status", "--porcelain"]), "");

    // Archive tags on the branch tips, which survive the branch.
    for plan in ["a", "b", "c"] {
        let tip = repo.rev(&format!("plan/{plan}"));
        let tag = format!("orch/archive/{plan}/{}", &tip[..10]);
        assert_eq!(repo.rev(&format!("refs/tags/{tag}")), tip);
        let doc = repo.status_file(plan);
        let m = &doc["orchMerge"];
        assert_eq!(m["state"], "merged", "{doc:#}");
        assert_eq!(m["target"], "main");
        assert_eq!(m["strategy"], "merge");
        assert_eq!(m["archiveTag"], tag.as_str());
        assert_eq!(m["branchTip"], tip.as_str());
        assert!(m["at"].is_string());
    }
    assert_eq!(
        repo.status_file("c")["orchMerge"]["commit"],
        repo.rev("main").as_str()
    );

    // Nothing left to do: every plan is already merged, exit 0, nothing moves.
    let tip = repo.rev("main");
    let (code, v, _) = merge_json(&repo, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        results(&v),
        pairs(&[
            ("a", "already_merged"),
            ("b", "already_merged"),
            ("c", "already_merged")
        ])
    );
    assert_eq!(repo.rev("main"), tip);
    // The library call `orch clean` uses agrees.
    assert!(orch::merge::is_merged(repo.root(), "main", "plan/b").expect("is_merged"));
}

#[test]
fn a_conflicting_plan_changes_nothing_skips_its_dependents_and_lets_others_land() {
    let repo = finished(&ABC, "", &[]);
    // The target gets its own a.txt after the plans finished.
    repo.write("a.txt", "main's own a.txt\n");
    repo.commit_all("main: a.txt");

    // Only the conflicting plan: nothing at all changes, not even the index file.
    let before = snapshot(&repo);
    let status_before = repo.read(".orch/state/a/status.json");
    let (code, out, err) = repo.run(&["merge", "a"]);
    assert_eq!(code, 5, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("a: conflict in `a.txt`"), "{out}");
    assert_eq!(snapshot(&repo), before);
    assert_ne!(repo.read(".orch/state/a/status.json"), status_before);
    let m = &repo.status_file("a")["orchMerge"];
    assert_eq!(m["state"], "conflict");
    assert_eq!(m["files"], serde_json::json!(["a.txt"]));
    assert_eq!(m["commit"], repo.rev("main").as_str());

    // All of them: a conflicts, b (depends on a) is skipped, c lands.
    let main_before = repo.rev("main");
    let (code, v, err) = merge_json(&repo, &[]);
    assert_eq!(code, 5, "{v:#}\n{err}");
    assert_eq!(
        results(&v),
        pairs(&[("a", "conflict"), ("b", "skipped"), ("c", "merged")])
    );
    assert_eq!(step(&v, "a")["files"], serde_json::json!(["a.txt"]));
    let reason = step(&v, "b")["reason"].as_str().expect("reason");
    assert!(reason.contains("depends on `a`"), "{reason}");
    assert_eq!(repo.rev("main^1"), main_before);
    assert_eq!(repo.rev("main^2"), repo.rev("plan/c"));
    assert_eq!(step(&v, "c")["commit"], repo.rev("main").as_str());
    assert_eq!(
        std::fs::read_to_string(repo.root().join("a.txt")).expect("a.txt"),
        "main's own a.txt\n"
    );
    assert!(!repo.root().join("b.txt").exists());
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    assert!(repo.status_file("b").get("orchMerge").is_none());
}

#[test]
fn stop_on_failure_stops_at_the_first_plan_not_merged() {
    let repo = finished(&ABC, "", &[]);
    repo.write("a.txt", "main's own a.txt\n");
    repo.commit_all("main: a.txt");
    let tip = repo.rev("main");
    let (code, v, _) = merge_json(&repo, &["--stop-on-failure"]);
    assert_eq!(code, 5);
    assert_eq!(
        results(&v),
        pairs(&[("a", "conflict"), ("b", "skipped"), ("c", "skipped")])
    );
    let reason = step(&v, "c")["reason"].as_str().expect("reason");
    assert!(reason.contains("--stop-on-failure"), "{reason}");
    assert_eq!(repo.rev("main"), tip);
}

#[test]
fn a_dirty_main_worktree_is_refused_before_anything_moves() {
    let repo = finished(&ABC, "", &[]);

    // A tracked change.
    repo.write("README.md", "# edited\n");
    let before = snapshot(&repo);
    let (code, out, err) = repo.run(&["merge"]);
    assert_eq!(code, 4, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("uncommitted changes: `README.md`"), "{err}");
    assert_eq!(snapshot(&repo), before);
    assert!(repo.status_file("a").get("orchMerge").is_none());
    repo.git(&["checkout", "--", "README.md"]);

    // An untracked file that a plan would overwrite.
    repo.write("c.txt", "mine\n");
    let before = snapshot(&repo);
    let (code, _, err) = repo.run(&["merge"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("overwrite untracked files: `c.txt`"), "{err}");
    assert_eq!(snapshot(&repo), before);
    std::fs::remove_file(repo.root().join("c.txt")).expect("rm");

    // An unrelated untracked file is no obstacle, and stays.
    repo.write("notes.txt", "mine\n");
    let (code, _, err) = repo.run(&["merge"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(repo.read("notes.txt"), b"mine\n");
    assert_eq!(repo.git(&["status", "--porcelain"]), "?? notes.txt");
}

#[test]
fn dry_run_predicts_the_conflict_and_changes_nothing() {
    let repo = finished(&ABC, "", &[]);
    repo.write("a.txt", "main's own a.txt\n");
    repo.commit_all("main: a.txt");
    let objects = |r: &Repo| {
        let mut v: Vec<String> = walk(&r.root().join(".git/objects"));
        v.sort();
        v
    };
    let before = snapshot(&repo);
    let statuses: Vec<Vec<u8>> = ["a", "b", "c"]
        .iter()
        .map(|p| repo.read(&format!(".orch/state/{p}/status.json")))
        .collect();
    let objects_before = objects(&repo);

    let (code, out, err) = repo.run(&["merge", "--dry-run"]);
    assert_eq!(code, 5, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("a: would conflict in `a.txt`"), "{out}");
    assert!(out.contains("c: would merge cleanly"), "{out}");
    assert!(out.contains("nothing was changed"), "{out}");
    let (code, v, _) = merge_json(&repo, &["--dry-run"]);
    assert_eq!(code, 5);
    assert_eq!(v["dry_run"], true);
    assert_eq!(
        results(&v),
        pairs(&[("a", "conflict"), ("b", "skipped"), ("c", "would_merge")])
    );
    assert_eq!(step(&v, "a")["files"], serde_json::json!(["a.txt"]));

    assert_eq!(snapshot(&repo), before);
    for (p, bytes) in ["a", "b", "c"].iter().zip(&statuses) {
        assert_eq!(&repo.read(&format!(".orch/state/{p}/status.json")), bytes);
    }
    assert_eq!(objects(&repo), objects_before, "the dry run wrote objects");

    // Successive virtual targets: a clean dry run predicts every step, on top of the previous.
    let repo = finished(&ABC, "", &[]);
    let (code, v, _) = merge_json(&repo, &["--dry-run"]);
    assert_eq!(code, 0);
    assert_eq!(
        results(&v),
        pairs(&[
            ("a", "would_merge"),
            ("b", "would_merge"),
            ("c", "would_merge")
        ])
    );
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

#[test]
fn squash_makes_one_commit_and_a_second_run_says_already_merged() {
    let plans: [PlanSpec; 2] = [("a", A, ""), ("c", C, "")];
    let repo = finished(&plans, "merge_strategy = \"squash\"\n", &[]);
    let before = repo.rev("main");
    let (code, v, err) = merge_json(&repo, &["a"]);
    assert_eq!(code, 0, "{v:#}\n{err}");
    assert_eq!(results(&v), pairs(&[("a", "merged")]));
    assert_eq!(
        repo.git(&["rev-list", "--parents", "-n", "1", "main"])
            .split(' ')
            .count(),
        2
    );
    assert_eq!(repo.rev("main^"), before);
    assert_eq!(
        repo.first_parent_subjects("main")[0],
        "Merge plan `a` (2 tasks) into main"
    );
    assert!(repo.tree_files("main").contains(&"a.txt".to_string()));
    assert_eq!(repo.status_file("a")["orchMerge"]["strategy"], "squash");
    // The branch is not in main's history, yet it counts as merged: merging it changes nothing.
    assert_ne!(
        repo.git_out(&["merge-base", "--is-ancestor", "plan/a", "main"])
            .status
            .code(),
        Some(0)
    );
    assert!(orch::merge::is_merged(repo.root(), "main", "plan/a").expect("is_merged"));
    assert!(!orch::merge::is_merged(repo.root(), "main", "plan/c").expect("is_merged"));

    let (code, v, _) = merge_json(&repo, &["--strategy", "merge"]);
    assert_eq!(code, 0);
    assert_eq!(
        results(&v),
        pairs(&[("a", "already_merged"), ("c", "merged")])
    );
    // Without the status record the trial merge still finds a merged.
    let doc = repo.status_file("a");
    let mut doc = doc.as_object().expect("object").clone();
    doc.remove("orchMerge");
    std::fs::write(
        repo.status_path("a"),
        serde_json::to_string_pretty(&doc).expect("json"),
    )
    .expect("write");
    let (code, v, _) = merge_json(&repo, &["a"]);
    assert_eq!(code, 0);
    assert_eq!(results(&v), pairs(&[("a", "already_merged")]));
}

#[test]
fn ff_only_fast_forwards_or_refuses_the_step() {
    let plans: [PlanSpec; 2] = [("a", A, ""), ("c", C, "")];
    let repo = finished(&plans, "", &[]);
    let (code, v, err) = merge_json(&repo, &["--strategy", "ff-only"]);
    assert_eq!(code, 5, "{v:#}\n{err}");
    // a fast-forwards; then main has a's commits, which c lacks.
    assert_eq!(results(&v), pairs(&[("a", "merged"), ("c", "skipped")]));
    assert_eq!(repo.rev("main"), repo.rev("plan/a"));
    assert_eq!(step(&v, "a")["commit"], repo.rev("plan/a").as_str());
    let reason = step(&v, "c")["reason"].as_str().expect("reason");
    assert!(reason.contains("ff-only"), "{reason}");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn plans_not_ready_are_refused_with_the_reason() {
    let repo = finished(&ABC, "", &["a", "c"]);
    let before = repo.refs();

    // b never ran.
    let (code, _, err) = repo.run(&["merge", "b"]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("plan `b` is not finished: 1.1 (pending)"),
        "{err}"
    );
    assert_eq!(repo.refs(), before);

    // Unknown plan.
    let (code, _, err) = repo.run(&["merge", "nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no plan named `nope`"), "{err}");

    // Without names, the unfinished plan is left out and the others land.
    let (code, v, err) = merge_json(&repo, &[]);
    assert_eq!(code, 0, "{v:#}\n{err}");
    assert_eq!(results(&v), pairs(&[("a", "merged"), ("c", "merged")]));
    assert_eq!(v["unfinished"][0]["plan"], "b");
}

#[test]
fn a_plan_whose_upstream_is_not_merged_is_refused_unless_merged_in_the_same_run() {
    let repo = finished(&ABC, "", &[]);
    let before = repo.refs();
    let (code, _, err) = repo.run(&["merge", "b"]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("plan `b` depends on plan `a`, which is not merged into `main` yet"),
        "{err}"
    );
    assert!(err.contains("orch merge a b"), "{err}");
    assert_eq!(repo.refs(), before);

    // Named together (in any order), a goes first.
    let (code, v, err) = merge_json(&repo, &["b", "a"]);
    assert_eq!(code, 0, "{v:#}\n{err}");
    assert_eq!(results(&v), pairs(&[("a", "merged"), ("b", "merged")]));

    // c alone, later: fine.
    let (code, v, _) = merge_json(&repo, &["c"]);
    assert_eq!(code, 0);
    assert_eq!(results(&v), pairs(&[("c", "merged")]));
}

#[test]
fn the_target_checked_out_in_a_linked_worktree_is_updated_there() {
    let plans: [PlanSpec; 1] = [("a", A, "")];
    let repo = finished(&plans, "", &[]);
    repo.git(&["switch", "-q", "-c", "elsewhere"]);
    let other = repo.outside("main-wt");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        other.to_str().expect("utf8"),
        "main",
    ]);
    let (code, v, err) = merge_json(&repo, &[]);
    assert_eq!(code, 0, "{v:#}\n{err}");
    assert!(other.join("a.txt").is_file());
    let status = wait(
        Command::new("git")
            .current_dir(&other)
            .args(["status", "--porcelain"])
            .env("HOME", repo.home())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("git"),
    );
    assert_eq!(String::from_utf8_lossy(&status.stdout), "");
    // The main work tree (on another branch) is untouched.
    assert!(!repo.root().join("a.txt").exists());
}

#[test]
fn a_target_checked_out_nowhere_moves_only_its_ref() {
    let plans: [PlanSpec; 1] = [("a", A, "")];
    let repo = finished(&plans, "", &[]);
    repo.git(&["switch", "-q", "-c", "elsewhere"]);
    let index = repo.read(".git/index");
    let (code, v, err) = merge_json(&repo, &[]);
    assert_eq!(code, 0, "{v:#}\n{err}");
    assert_eq!(repo.rev("main^2"), repo.rev("plan/a"));
    assert_eq!(v["target_after"], repo.rev("main").as_str());
    assert!(!repo.root().join("a.txt").exists());
    assert_eq!(repo.read(".git/index"), index);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

/// `orch merge PLAN` as a library call (the merge train's): typed outcomes, the same strings as
/// `--json`, the same records; run on a thread of its own, as `spawn_blocking` runs it.
fn merge_now(repo: &Repo, plan: &str) -> orch::merge::PlanMergeReport {
    let manifest = repo.root().join("plans.toml");
    let plan = plan.to_string();
    std::thread::spawn(move || orch::merge::merge_plan_now(&manifest, &plan))
        .join()
        .expect("merge_plan_now panicked")
}

#[test]
fn merge_plan_now_reports_a_conflict_with_its_files_and_moves_nothing() {
    use orch::merge::PlanMergeOutcome;
    let repo = finished(&ABC, "", &[]);
    repo.write("a.txt", "main's own a.txt\n");
    repo.commit_all("main: a.txt");
    let before = snapshot(&repo);
    let report = merge_now(&repo, "a");
    assert_eq!(
        report.outcome,
        PlanMergeOutcome::Conflict {
            files: vec!["a.txt".to_string()],
            advice: "resolve it on `plan/a` (merge `main` into it and fix the files), then run \
                     `orch merge` again"
                .to_string(),
        }
    );
    assert_eq!(report.outcome.result_str(), "conflict");
    assert_eq!(
        report.outcome.reason(),
        "resolve it on `plan/a` (merge `main` into it and fix the files), then run `orch merge` \
         again: `a.txt`"
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(snapshot(&repo), before);
    let m = &repo.status_file("a")["orchMerge"];
    assert_eq!(m["state"], "conflict");
    assert_eq!(m["files"], serde_json::json!(["a.txt"]));
}

#[test]
fn merge_plan_now_merges_then_says_already_merged() {
    use orch::merge::PlanMergeOutcome;
    let repo = finished(&ABC, "", &[]);
    let main_before = repo.rev("main");
    let report = merge_now(&repo, "a");
    assert_eq!(report.outcome.result_str(), "merged", "{report:?}");
    assert!(report.outcome.is_merged());
    assert_eq!(report.outcome.commit(), Some(repo.rev("main").as_str()));
    assert_eq!(repo.rev("main^1"), main_before);
    assert_eq!(repo.rev("main^2"), repo.rev("plan/a"));
    let m = &repo.status_file("a")["orchMerge"];
    assert_eq!(m["state"], "merged");
    assert_eq!(m["commit"], repo.rev("main").as_str());
    assert_eq!(m["branchTip"], repo.rev("plan/a").as_str());

    let again = merge_now(&repo, "a");
    assert!(
        matches!(again.outcome, PlanMergeOutcome::AlreadyMerged { .. }),
        "{again:?}"
    );
    assert_eq!(again.outcome.result_str(), "already_merged");
    assert_eq!(again.outcome.commit(), None);
    assert_eq!(repo.rev("main^2"), repo.rev("plan/a"));
}

#[test]
fn merge_plan_now_refuses_what_orch_merge_refuses() {
    use orch::merge::PlanMergeOutcome;
    let repo = finished(&ABC, "", &["a", "c"]);
    let before = repo.refs();
    // b never ran: exit 4 of `orch merge b`.
    let report = merge_now(&repo, "b");
    assert_eq!(
        report.outcome,
        PlanMergeOutcome::Refused {
            reason: "plan `b` is not finished: 1.1 (pending); nothing was merged".to_string()
        }
    );
    assert_eq!(report.outcome.result_str(), "refused");
    // An unknown plan: exit 2, an error.
    let report = merge_now(&repo, "nope");
    assert_eq!(report.outcome.result_str(), "error");
    assert!(
        report.outcome.reason().contains("no plan named `nope`"),
        "{report:?}"
    );
    assert_eq!(repo.refs(), before);
}

/// A plan whose agent makes 20,000 empty files in one directory lands within the tests' usual
/// deadline (the protected-paths check of a landing was once quadratic-like in the files a
/// branch changes: 10,000 files took 53 s): all of them on `main`, in its work tree, clean.
#[test]
fn a_plan_of_twenty_thousand_files_lands() {
    const N: usize = 20_000;
    let repo = support::merge::new_repo();
    let make = format!("mkdir d && seq -f 'd/file-with-a-long-name-%06g' 1 {N} | xargs touch");
    repo.plans(&[(
        "p",
        support::toml_array(&["sh", "-c", &make]),
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Make the files\n",
    )]);
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "orch up\nstdout:\n{out}\nstderr:\n{err}");
    let branch = repo.git(&["ls-tree", "--name-only", "plan/p:d"]);
    assert_eq!(branch.lines().count(), N, "the plan branch holds the files");
    let before = repo.rev("main");

    let (code, out, err) = repo.run(&["merge", "p"]);
    assert_eq!(code, 0, "orch merge\nstdout:\n{out}\nstderr:\n{err}");
    assert_eq!(repo.rev("main^1"), before, "main moved by one merge");
    assert_eq!(repo.rev("main^2"), repo.rev("plan/p"));
    let landed = repo.git(&["ls-tree", "--name-only", "main:d"]);
    assert_eq!(landed, branch, "main holds every file of the plan");
    assert!(repo.root().join("d/file-with-a-long-name-000001").is_file());
    assert!(
        repo.root()
            .join(format!("d/file-with-a-long-name-{N:06}"))
            .is_file()
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}
