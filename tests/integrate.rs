//! `orch integrate` end to end on real repositories: the plans that break together named (not a
//! bystander), a textual conflict with its files, exit codes 0/5/2, and refs, target and plan
//! worktrees left exactly as they were.

use crate::support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{Repo, file_snapshot, one_task};

/// The verify script: every name listed in a `*.calls` file must be defined in `lib.defs`.
const VERIFY: &str = r#"#!/bin/sh
status=0
for f in *.calls; do
  [ -f "$f" ] || continue
  while read -r name; do
    grep -qx "def $name" lib.defs || { echo "missing function: $name (called in $f)"; status=1; }
  done < "$f"
done
exit $status
"#;

/// `main` with `lib.defs` (`def greet`), `main.calls` (`greet`) and the verify script; plans
/// `lib` (priority 2), `docs` (1) and `app` (0), so the merge order is lib, docs, app.
fn repo(verify: bool) -> Repo {
    let repo = Repo::bare_minimum();
    repo.write("lib.defs", "def greet\n");
    repo.write("main.calls", "greet\n");
    repo.write("shared.txt", "original\n");
    repo.write("verify.sh", VERIFY);
    for (name, _) in PLANS {
        repo.write(&format!("docs/plans/{name}.md"), &one_task(name, "Work"));
    }
    let mut toml = String::from("[defaults]\nagent = \"a\"\n");
    if verify {
        toml.push_str("verify = [\"sh\", \"verify.sh\"]\n");
    }
    toml.push_str("\n[agents.a]\ncommand = [\"true\"]\n");
    for (name, priority) in PLANS {
        toml.push_str(&format!(
            "\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\npriority = {priority}\n"
        ));
    }
    repo.write("plans.toml", &toml);
    repo.commit_all("initial");
    repo
}

const PLANS: [(&str, i64); 3] = [("lib", 2), ("docs", 1), ("app", 0)];

/// Makes plan `name`'s branch with a worktree outside the repository and commits `files` there
/// (`(path, text)`; an empty text deletes). Returns the worktree.
fn plan_branch(repo: &Repo, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let wt = repo.outside(&format!("wt-{name}"));
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        &format!("plan/{name}"),
        wt.to_str().expect("utf-8"),
        "main",
    ]);
    for (path, text) in files {
        let p = wt.join(path);
        if text.is_empty() {
            std::fs::remove_file(&p).expect("remove");
        } else {
            std::fs::write(&p, text).expect("write");
        }
    }
    repo.git_at(&wt, &["add", "-A"]);
    repo.git_at(&wt, &["commit", "-q", "-m", &format!("{name} work")]);
    wt
}

/// lib renames `greet` to `hello` (its callers too); app adds a call to `greet` in a new file;
/// docs writes its own file. Each passes verify alone.
fn three_plans(repo: &Repo) -> Vec<PathBuf> {
    vec![
        plan_branch(
            repo,
            "lib",
            &[("lib.defs", "def hello\n"), ("main.calls", "hello\n")],
        ),
        plan_branch(repo, "docs", &[("guide.md", "# Guide\n")]),
        plan_branch(repo, "app", &[("app.calls", "greet\n")]),
    ]
}

/// What must not change: every ref, the worktree list, every file of the main checkout (but
/// orch's own `.orch/` and `.git/`) and of each plan worktree (but its `.git` file).
type Snapshot = (String, Vec<String>, Vec<(PathBuf, Vec<u8>)>);

fn snapshot(repo: &Repo, worktrees: &[PathBuf]) -> Snapshot {
    let keep = |p: &Path| {
        let rel = p.strip_prefix(repo.root()).unwrap_or(p);
        !rel.starts_with(".git") && !rel.starts_with(".orch")
    };
    let mut files: Vec<(PathBuf, Vec<u8>)> = file_snapshot(repo.root())
        .into_iter()
        .filter(|(p, _)| keep(p))
        .collect();
    for wt in worktrees {
        files.extend(file_snapshot(wt));
    }
    (repo.refs(), repo.worktrees(), files)
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().expect("string").to_string())
        .collect()
}

#[test]
fn a_verify_break_names_the_plans_that_break_together_and_changes_nothing() {
    let repo = repo(true);
    let wts = three_plans(&repo);
    // An agent's uncommitted work in a plan worktree.
    std::fs::write(wts[2].join("draft.txt"), "in progress\n").expect("write");
    let before = snapshot(&repo, &wts);

    let (code, out, err) = repo.run(&["integrate", "--json"]);
    assert_eq!(code, 5, "stdout:\n{out}\nstderr:\n{err}");
    let v = json(&out);
    assert_eq!(v["result"], "red", "{v}");
    let f = &v["failure"];
    assert_eq!(names(&f["plans"]), ["lib", "app"], "{v}");
    assert_eq!(f["culprit"], "app");
    assert_eq!(f["verify"]["exit_code"], 1, "{v}");
    let lines = names(&f["verify"]["last_lines"]);
    assert!(
        lines
            .iter()
            .any(|l| l == "missing function: greet (called in app.calls)"),
        "{lines:?}"
    );
    assert!(f.get("conflict").is_none(), "{f}");
    // The commits tried: the target's tip, then lib's and app's.
    let commits: Vec<(String, String)> = f["commits"]
        .as_array()
        .expect("commits")
        .iter()
        .map(|c| {
            (
                c["branch"].as_str().expect("branch").to_string(),
                c["commit"].as_str().expect("commit").to_string(),
            )
        })
        .collect();
    assert_eq!(
        commits,
        [
            ("main".to_string(), repo.rev("main")),
            ("plan/lib".to_string(), repo.rev("plan/lib")),
            ("plan/app".to_string(), repo.rev("plan/app")),
        ]
    );
    let tested: Vec<String> = v["tested"]
        .as_array()
        .expect("tested")
        .iter()
        .map(|t| t["plan"].as_str().expect("plan").to_string())
        .collect();
    assert_eq!(tested, ["lib", "docs", "app"]);

    assert_eq!(snapshot(&repo, &wts), before, "integrate changed something");
    assert!(
        !repo
            .root()
            .join(".orch/worktrees/.merge-staging-_integration")
            .exists(),
        "the staging worktree is left behind"
    );

    // The text names them too; the same test again comes from the cache.
    let (code, out, _) = repo.run(&["integrate"]);
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains("integration: red: `lib` + `app` break together (culprit `app`"),
        "{out}"
    );
    assert!(out.contains("verify exited with status 1"), "{out}");
    assert!(
        out.contains("| missing function: greet (called in app.calls)"),
        "{out}"
    );
    assert!(
        !out.contains("trial"),
        "a cached test builds nothing: {out}"
    );
    assert_eq!(snapshot(&repo, &wts), before);
}

#[test]
fn green_when_the_plans_fit_and_when_there_is_nothing_to_test() {
    let repo = repo(true);
    let (code, out, err) = repo.run(&["integrate", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v = json(&out);
    assert_eq!(v["result"], "nothing_to_test", "{out}");
    assert_eq!(v["trials"], 0, "nothing built, nothing verified: {out}");

    // app calls the new name: lib + app fit.
    let wts = vec![
        plan_branch(
            &repo,
            "lib",
            &[("lib.defs", "def hello\n"), ("main.calls", "hello\n")],
        ),
        plan_branch(&repo, "docs", &[("guide.md", "# Guide\n")]),
        plan_branch(&repo, "app", &[("app.calls", "hello\n")]),
    ];
    let before = snapshot(&repo, &wts);
    let (code, out, err) = repo.run(&["integrate", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v = json(&out);
    assert_eq!(v["result"], "green", "{v}");
    assert!(v["failure"].is_null(), "{v}");
    assert_eq!(v["trials"], 1, "one staging build for a green test: {v}");
    assert_eq!(snapshot(&repo, &wts), before);
    let (code, out, _) = repo.run(&["integrate"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("integration: green: 3 plans (`lib`, `docs`, `app`) merged into `main`"),
        "{out}"
    );
}

#[test]
fn a_textual_conflict_is_reported_with_its_files_without_verify() {
    let repo = repo(false);
    let wts = vec![
        plan_branch(&repo, "lib", &[("shared.txt", "lib's line\n")]),
        plan_branch(&repo, "docs", &[("guide.md", "# Guide\n")]),
        plan_branch(&repo, "app", &[("shared.txt", "app's line\n")]),
    ];
    let objects = repo.git_dir_listing();
    let before = snapshot(&repo, &wts);
    let (code, out, err) = repo.run(&["integrate", "--json"]);
    assert_eq!(code, 5, "{out}{err}");
    let v = json(&out);
    let f = &v["failure"];
    assert_eq!(names(&f["plans"]), ["lib", "app"], "{v}");
    assert_eq!(f["culprit"], "app");
    assert_eq!(names(&f["conflict"]), ["shared.txt"], "{v}");
    assert!(f.get("verify").is_none(), "{f}");
    assert_eq!(v["verified"], false);
    assert_eq!(snapshot(&repo, &wts), before);
    // Without verify the merges stay in memory: not even an object is written.
    assert_eq!(repo.git_dir_listing(), objects);
    let (code, out, _) = repo.run(&["integrate"]);
    assert_eq!(code, 5);
    assert!(out.contains("  conflict in shared.txt"), "{out}");
}

#[test]
fn an_invalid_manifest_is_exit_2_and_changes_nothing() {
    let repo = repo(true);
    let wts = three_plans(&repo);
    repo.write(
        "plans.toml",
        "[defaults]\nagent = \"a\"\nmax_agents = \"many\"\n\n[agents.a]\ncommand = [\"true\"]\n",
    );
    let before = snapshot(&repo, &wts);
    let (code, out, err) = repo.run(&["integrate"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("plans.toml"), "{err}");
    assert_eq!(snapshot(&repo, &wts), before);
    assert!(!repo.root().join(".orch").exists());
}

#[test]
fn ctrl_c_stops_the_verify_command_removes_the_staging_worktree_and_caches_nothing() {
    use support::{code_out_err, kill, process_alive, wait_for, wait_within};
    let repo = repo(true);
    let wts = three_plans(&repo);
    let marker = repo.outside("verify.pid");
    // A verify command that hangs, after saying it started (its pid).
    repo.write(
        "slow.sh",
        &format!("#!/bin/sh\necho $$ > {}\nexec sleep 60\n", marker.display()),
    );
    let toml = std::fs::read_to_string(repo.root().join("plans.toml")).expect("read");
    repo.write(
        "plans.toml",
        &toml.replace(
            "verify = [\"sh\", \"verify.sh\"]",
            "verify = [\"sh\", \"slow.sh\"]",
        ),
    );
    repo.commit_all("slow verify");
    // plan branches were made before: the new commit on main is the target's tip.
    let before = snapshot(&repo, &wts);
    let child = repo.orch(&["integrate"]).spawn().expect("orch integrate");
    let pid = child.id();
    wait_for("the verify command to start", || {
        std::fs::read_to_string(&marker).is_ok_and(|s| s.trim().parse::<u32>().is_ok())
    });
    let verify_pid: u32 = std::fs::read_to_string(&marker)
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    assert!(kill("INT", pid));
    let out = wait_within(child, repo.timeout(), "orch integrate");
    let (code, out, err) = code_out_err(&out);
    assert_eq!(code, 130, "{out}{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(
        !process_alive(verify_pid),
        "the verify command is still running"
    );
    assert!(
        !repo
            .root()
            .join(".orch/worktrees/.merge-staging-_integration")
            .exists()
    );
    assert_eq!(snapshot(&repo, &wts), before);
    assert!(
        !std::fs::read_to_string(repo.root().join(".orch/state/integration-cache.json"))
            .unwrap_or_default()
            .contains("verify_failed"),
        "an interrupted trial is not an outcome"
    );
}
