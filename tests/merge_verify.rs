//! `orch merge` with `verify`: the command run on each merge in a staging worktree before the
//! target moves; a failure, a timeout or Ctrl-C moves nothing and leaves no staging behind, and a
//! target moved meanwhile is kept. Real repositories, plans finished by a real `orch up`.

use crate::support;

use support::merge::{A, B, PlanSpec, finished, merge_json, pairs, results, snapshot, step};
use support::{Repo, kill, toml_array, wait, wait_for};

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
