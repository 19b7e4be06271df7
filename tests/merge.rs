//! `orch merge` end to end: real repositories in temp dirs, plans finished by a real `orch up`
//! with a scripted agent, and the outcomes a user checks: the target ref and its history, the
//! files and index of the main work tree, tags, status files, exit codes.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::{Repo, fixtures, kill, toml_array, wait, wait_for};

/// A repository with `README.md` whose committer identity is in its config: verify commands in
/// these tests commit with the git CLI, outside the test's env.
fn new_repo() -> Repo {
    Repo::builder().identity_in_config().build()
}

/// `orch merge --json ARGS`: exit code and the printed object.
fn merge_json(repo: &Repo, args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["merge", "--json"];
    all.extend_from_slice(args);
    let (code, out, err) = repo.run(&all);
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}\nstderr:\n{err}"));
    (code, v, err)
}

/// The state a failed or refused merge must leave exactly as it was.
fn snapshot(repo: &Repo) -> Snapshot {
    let mut files = BTreeMap::new();
    for rel in ["README.md", "a.txt", "b.txt", "c.txt"] {
        files.insert(rel.to_string(), repo.read(rel));
    }
    Snapshot {
        refs: repo.refs(),
        index: repo.read(".git/index"),
        files,
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    refs: String,
    index: Vec<u8>,
    files: BTreeMap<String, Vec<u8>>,
}

/// A plan: name, its markdown, extra `[[plan]]` lines.
type PlanSpec<'a> = (&'a str, &'a str, &'a str);

const A: &str = "# A\n\n## Phase 1: Work\n- [ ] 1.1 Start a\n- [ ] 1.2 Finish a (depends: 1.1)\n";
const B: &str = "# B\n\n## Phase 1: Work\n- [ ] 1.1 Do b\n";
const C: &str = "# C\n\n## Phase 1: Work\n- [ ] 1.1 Do c\n";

/// The usual three: `a` (two tasks), `b` depending on `a` (and of higher priority), `c` on its
/// own. Each plan's agent writes `<plan>.txt`.
const ABC: [PlanSpec; 3] = [
    ("a", A, ""),
    ("b", B, "priority = 10\ndepends_on = [\"a\"]\n"),
    ("c", C, ""),
];

/// Writes the manifest (with `defaults` lines added) and plans, commits them, and runs
/// `orch up` for the plans named in `up` (all when empty) to completion.
fn finished(plans: &[PlanSpec], defaults: &str, up: &[&str]) -> Repo {
    let repo = new_repo();
    let ok = fixtures().join("ok.sh");
    // These runs only finish the plans for `orch merge`: no integration preview (with `verify`
    // set it would run the verify command at the run's end; tests/integrate*.rs test it).
    let preview = if defaults.contains("integrate") {
        ""
    } else {
        "integrate = \"off\"\n"
    };
    let mut manifest = format!(
        "[defaults]\nagent = \"ok\"\nmax_agents = 3\n{preview}{defaults}\n[agents.ok]\ncommand = {}\n",
        toml_array(&["sh", ok.to_str().expect("utf8"), "/dev/null"])
    );
    for (name, text, extra) in plans {
        repo.write(&format!("docs/plans/{name}.md"), text);
        manifest.push_str(&format!(
            "\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\n{extra}"
        ));
    }
    repo.write("plans.toml", &manifest);
    repo.commit_all("plans");
    let mut args = vec!["up"];
    args.extend_from_slice(up);
    let (code, out, err) = repo.run(&args);
    assert_eq!(code, 0, "orch up failed\nstdout:\n{out}\nstderr:\n{err}");
    repo
}

fn step<'v>(v: &'v Value, plan: &str) -> &'v Value {
    v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["plan"] == plan)
        .unwrap_or_else(|| panic!("no step for `{plan}` in {v:#}"))
}

fn results(v: &Value) -> Vec<(String, String)> {
    v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["plan"].as_str().expect("plan").to_string(),
                s["result"].as_str().expect("result").to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
        .collect()
}

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

fn staging_left(repo: &Repo) -> Vec<String> {
    let mut left: Vec<String> = repo
        .git(&["worktree", "list", "--porcelain"])
        .lines()
        .filter(|l| l.contains("merge-staging"))
        .map(str::to_string)
        .collect();
    if let Ok(dir) = std::fs::read_dir(repo.root().join(".git/worktrees")) {
        left.extend(
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("merge-staging")),
        );
    }
    left.extend(
        repo.git(&["branch", "--list", "orch-merge-staging/*"])
            .lines()
            .map(str::to_string),
    );
    if repo
        .root()
        .join(".orch/worktrees/.merge-staging-a")
        .exists()
    {
        left.push("the staging directory".into());
    }
    left
}

#[test]
fn a_failing_verify_moves_nothing_and_a_passing_one_lands_without_leftovers() {
    let plans: [PlanSpec; 1] = [("a", A, "")];
    let repo = finished(
        &plans,
        &format!(
            "verify = {}\n",
            toml_array(&["sh", "-c", "echo checking; exit 1"])
        ),
        &[],
    );
    let before = snapshot(&repo);
    let (code, v, err) = merge_json(&repo, &[]);
    assert_eq!(code, 5, "{v:#}\n{err}");
    assert_eq!(results(&v), pairs(&[("a", "verify_failed")]));
    let reason = step(&v, "a")["reason"].as_str().expect("reason");
    assert!(reason.contains("exited with status 1"), "{reason}");
    assert_eq!(snapshot(&repo), before);
    let m = &repo.status_file("a")["orchMerge"];
    assert_eq!(m["state"], "verify_failed");
    let log = std::fs::read_to_string(repo.root().join(".orch/logs/a/merge-verify.log"))
        .expect("verify log");
    assert!(log.contains("checking"), "{log}");
    assert!(staging_left(&repo).is_empty(), "{:?}", staging_left(&repo));

    // Now a verify command that checks the merge result in the staging worktree.
    let manifest = String::from_utf8(repo.read("plans.toml"))
        .expect("utf8")
        .replace(
            &toml_array(&["sh", "-c", "echo checking; exit 1"]),
            &toml_array(&["sh", "-c", "test -f a.txt && test -z \"$GIT_DIR\""]),
        );
    repo.write("plans.toml", &manifest);
    repo.commit_all("verify that a.txt is there");
    let (code, v, err) = merge_json(&repo, &[]);
    assert_eq!(code, 0, "{v:#}\n{err}");
    assert_eq!(results(&v), pairs(&[("a", "merged")]));
    assert_eq!(repo.rev("main^2"), repo.rev("plan/a"));
    assert!(repo.root().join("a.txt").is_file());
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    assert!(staging_left(&repo).is_empty(), "{:?}", staging_left(&repo));
    assert_eq!(repo.status_file("a")["orchMerge"]["state"], "merged");
}

#[test]
fn orch_merge_says_which_plan_it_verifies_and_for_how_long() {
    let plans: [PlanSpec; 2] = [("a", A, ""), ("b", B, "")];
    let repo = finished(
        &plans,
        &format!(
            "verify = {}\n",
            toml_array(&["sh", "-c", "test ! -f b.txt"])
        ),
        &[],
    );
    let (code, out, err) = repo.run(&["merge"]);
    assert_eq!(code, 5, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let at = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line `{prefix}…` in:\n{out}"))
    };
    // A line before each verify, one after it with its time, then the step's line.
    let verifying = "verifying `sh -c 'test ! -f b.txt'` (its output: `orch logs";
    let (a0, a1, a2) = (
        at(&format!("a: {verifying} a merge-verify`)")),
        at("a: verify passed in "),
        at("a: merged as "),
    );
    let (b0, b1, b2) = (
        at(&format!("b: {verifying} b merge-verify`)")),
        at("b: verify failed after "),
        at("b: verification failed; not merged"),
    );
    assert!(a0 < a1 && a1 < a2 && a2 < b0 && b0 < b1 && b1 < b2, "{out}");
    // With --json, stdout is the one object.
    let (code, v, err) = merge_json(&repo, &["b"]);
    assert_eq!(code, 5, "{v:#}\n{err}");
    assert_eq!(results(&v), pairs(&[("b", "verify_failed")]));
}

#[test]
fn a_verify_that_times_out_is_stopped_and_counts_as_failed() {
    let plans: [PlanSpec; 1] = [("a", A, "")];
    let pid_file = std::env::temp_dir().join(format!("orch-merge-pid-{}", std::process::id()));
    let repo = finished(
        &plans,
        &format!(
            "timeout = \"1s\"\ngrace = \"1s\"\nverify = {}\n",
            toml_array(&[
                "sh",
                "-c",
                &format!("echo $$ > {}; exec sleep 60", pid_file.display())
            ])
        ),
        &[],
    );
    let tip = repo.rev("main");
    let (code, v, _) = merge_json(&repo, &[]);
    assert_eq!(code, 5);
    let reason = step(&v, "a")["reason"].as_str().expect("reason");
    assert!(reason.contains("timed out after 1s"), "{reason}");
    assert_eq!(repo.rev("main"), tip);
    let pid = std::fs::read_to_string(&pid_file).expect("pid");
    let _ = std::fs::remove_file(&pid_file);
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
    assert!(
        stat.is_err() || stat.is_ok_and(|s| s.contains(") Z ")),
        "the verify command survived its timeout"
    );
    assert!(staging_left(&repo).is_empty());
}

#[test]
fn ctrl_c_during_verify_stops_it_and_moves_nothing() {
    let plans: [PlanSpec; 1] = [("a", A, "")];
    let started = std::env::temp_dir().join(format!("orch-merge-started-{}", std::process::id()));
    let _ = std::fs::remove_file(&started);
    let repo = finished(
        &plans,
        &format!(
            "verify = {}\n",
            toml_array(&[
                "sh",
                "-c",
                &format!("echo $$ > {}; exec sleep 60", started.display())
            ])
        ),
        &[],
    );
    let before = snapshot(&repo);
    let child = repo.orch(&["merge"]).spawn().expect("spawn");
    wait_for("the verify command to start", || {
        std::fs::read_to_string(&started).is_ok_and(|s| s.ends_with('\n'))
    });
    let verify_pid = std::fs::read_to_string(&started).expect("pid");
    let _ = std::fs::remove_file(&started);
    assert!(kill("INT", child.id()));
    let out = wait(child);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(snapshot(&repo), before);
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", verify_pid.trim()));
    assert!(
        stat.is_err() || stat.is_ok_and(|s| s.contains(") Z ")),
        "the verify command survived Ctrl-C"
    );
    assert!(staging_left(&repo).is_empty(), "{:?}", staging_left(&repo));
}

#[test]
fn a_target_moved_during_verify_is_kept_and_the_plan_lands_on_top() {
    let plans: [PlanSpec; 1] = [("a", A, "")];
    let mark = std::env::temp_dir().join(format!("orch-merge-sneaky-{}", std::process::id()));
    let _ = std::fs::remove_file(&mark);
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().display().to_string();
    // The verify command commits on the target once (a hook-like race), in the main work tree.
    let sneaky = format!(
        "test -e {m} || {{ touch {m}; git -C {main} commit -q --allow-empty -m sneaky; }}",
        m = mark.display()
    );
    let repo = {
        let r = finished(
            &plans,
            &format!("verify = {}\n", toml_array(&["sh", "-c", &sneaky])),
            &[],
        );
        // Point the command at this repository (its path is known only now).
        let root = r.root().display().to_string();
        let manifest = String::from_utf8(r.read("plans.toml"))
            .expect("utf8")
            .replace(&main, &root);
        r.write("plans.toml", &manifest);
        r.commit_all("verify with a race");
        r
    };
    let before = repo.rev("main");
    let (code, v, err) = merge_json(&repo, &[]);
    let _ = std::fs::remove_file(&mark);
    assert_eq!(code, 0, "{v:#}\n{err}");
    assert_eq!(results(&v), pairs(&[("a", "merged")]));
    // The sneaky commit is kept, and the merge sits on top of it.
    assert_eq!(
        repo.first_parent_subjects("main")[..3],
        [
            "Merge plan `a` (2 tasks) into main",
            "sneaky",
            "verify with a race"
        ]
    );
    assert_eq!(repo.rev("main~2"), before);
    assert_eq!(repo.rev("main^2"), repo.rev("plan/a"));
    let reason = step(&v, "a")["reason"].as_str().expect("reason");
    assert!(reason.contains("rebuilt on its new tip 1 time"), "{reason}");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn a_target_that_keeps_moving_is_reported_and_no_commit_is_lost() {
    let plans: [PlanSpec; 1] = [("a", A, "")];
    let placeholder = "/nonexistent-main-worktree";
    let repo = {
        let r = finished(
            &plans,
            &format!(
                "verify = {}\n",
                toml_array(&[
                    "sh",
                    "-c",
                    &format!("git -C {placeholder} commit -q --allow-empty -m sneaky")
                ])
            ),
            &[],
        );
        let manifest = String::from_utf8(r.read("plans.toml"))
            .expect("utf8")
            .replace(placeholder, &r.root().display().to_string());
        r.write("plans.toml", &manifest);
        r.commit_all("verify that always races");
        r
    };
    let before = repo.rev("main");
    let (code, v, _) = merge_json(&repo, &[]);
    assert_eq!(code, 5, "{v:#}");
    assert_eq!(results(&v), pairs(&[("a", "skipped")]));
    let reason = step(&v, "a")["reason"].as_str().expect("reason");
    assert!(
        reason.contains("moved under each of 4 attempts"),
        "{reason}"
    );
    // Four sneaky commits, one per attempt, all on main; no merge.
    let subjects = repo.first_parent_subjects("main");
    assert_eq!(subjects[..4], ["sneaky"; 4].map(String::from)[..]);
    assert_eq!(repo.rev("main~4"), before);
    assert!(repo.tree_files("main").iter().all(|f| f != "a.txt"));
    assert!(staging_left(&repo).is_empty());
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
