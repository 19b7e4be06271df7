//! The integration preview through `orch up` with scripted agents: plans that break together are
//! reported while the culprit still works, its next prompt holds the failure, `orch status`
//! shows it, and the fix is reported; without the break, nothing is.

use crate::support;

use serde_json::Value;
use support::{Repo, fixtures, named, toml_array};

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

/// `main` with `lib.defs`, `main.calls` and the verify script; plans lib (priority 2), docs (1),
/// app (0, three tasks) run by `integrate_agent.sh` in `mode`, with `integrate = "0s"`.
fn run_repo(mode: &str) -> (Repo, std::path::PathBuf) {
    run_repo_with(mode, "")
}

/// [`run_repo`] with `extra` lines in `[defaults]`.
fn run_repo_with(mode: &str, extra: &str) -> (Repo, std::path::PathBuf) {
    let repo = Repo::bare_minimum();
    let copies = repo.outside("prompts");
    std::fs::create_dir_all(&copies).expect("mkdir");
    repo.write("lib.defs", "def greet\n");
    repo.write("main.calls", "greet\n");
    repo.write("verify.sh", VERIFY);
    repo.write(
        "docs/plans/lib.md",
        "# lib\n\n## Phase 1: Work\n- [ ] 1.1 Rename greet to hello\n",
    );
    repo.write(
        "docs/plans/docs.md",
        "# docs\n\n## Phase 1: Work\n- [ ] 1.1 Write the guide\n",
    );
    repo.write(
        "docs/plans/app.md",
        "# app\n\n## Phase 1: Work\n- [ ] 1.1 Call greet\n- [ ] 1.2 Take notes\n- [ ] 1.3 Tidy up\n",
    );
    let events_file = repo.root().join(".orch/state/.events.jsonl");
    let command = toml_array(&[
        "sh".to_string(),
        fixtures().join("integrate_agent.sh").display().to_string(),
        "{{ prompt_file }}".to_string(),
        events_file.display().to_string(),
        mode.to_string(),
        copies.display().to_string(),
    ]);
    let mut toml = format!(
        "[defaults]\nagent = \"a\"\nverify = [\"sh\", \"verify.sh\"]\nintegrate = \"0s\"\n\
         retries = 0\n{extra}\n[agents.a]\ncommand = {command}\nreport = \"exit\"\n"
    );
    for (name, priority) in [("lib", 2), ("docs", 1), ("app", 0)] {
        toml.push_str(&format!(
            "\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\npriority = {priority}\n"
        ));
    }
    repo.write("plans.toml", &toml);
    repo.commit_all("plans");
    (repo, copies)
}

fn position(ev: &[Value], f: impl Fn(&Value) -> bool) -> usize {
    ev.iter()
        .position(f)
        .unwrap_or_else(|| panic!("no such event in {ev:#?}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().expect("string").to_string())
        .collect()
}

#[test]
fn plans_that_break_together_are_reported_while_the_culprit_works_and_it_adapts() {
    let (repo, copies) = run_repo("break");
    let ev = repo.up_events(&[], 0);

    // Reported again only with new commits of the plans (app's next task still breaks it).
    let failed = named(&ev, "integration_failed");
    assert!(!failed.is_empty(), "{ev:#?}");
    let tips: Vec<String> = failed.iter().map(|f| f["commits"].to_string()).collect();
    let mut distinct = tips.clone();
    distinct.dedup();
    assert_eq!(distinct, tips, "the same commits reported twice: {ev:#?}");
    for f in &failed {
        assert_eq!(strings(&f["plans"]), ["lib", "app"], "{f}");
    }
    let f = failed[0];
    assert_eq!(strings(&f["plans"]), ["lib", "app"], "{f}");
    assert_eq!(f["culprit"], "app");
    assert_eq!(f["verify"]["exit_code"], 1, "{f}");
    assert!(
        strings(&f["verify"]["last_lines"])
            .contains(&"missing function: greet (called in app.calls)".to_string()),
        "{f}"
    );
    let commits: Vec<&str> = f["commits"]
        .as_array()
        .expect("commits")
        .iter()
        .map(|c| c["branch"].as_str().expect("branch"))
        .collect();
    assert_eq!(commits, ["main", "plan/lib", "plan/app"]);

    // Reported while app still had tasks to run; fixed after its last task.
    let at_failed = position(&ev, |e| e["event"] == "integration_failed");
    let app_finished = position(&ev, |e| e["event"] == "plan_finished" && e["plan"] == "app");
    let at_fixed = position(&ev, |e| e["event"] == "integration_fixed");
    assert!(at_failed < app_finished, "{ev:#?}");
    assert!(at_failed < at_fixed, "{ev:#?}");
    assert_eq!(strings(&ev[at_fixed]["plans"]), ["lib", "app"]);
    let app_13_started = position(&ev, |e| {
        e["event"] == "task_started" && e["plan"] == "app" && e["task"] == "1.3"
    });
    assert!(at_failed < app_13_started);

    // The prompt of app's next task holds the failure; lib's and docs' prompts never did.
    let prompt = std::fs::read_to_string(copies.join("app-1.3.md")).expect("app 1.3 prompt");
    assert!(
        prompt.contains("fail together with the commits of plan `lib`"),
        "{prompt}"
    );
    assert!(
        prompt.contains("missing function: greet (called in app.calls)"),
        "{prompt}"
    );
    for p in ["app-1.1.md", "lib-1.1.md", "docs-1.1.md"] {
        let text = std::fs::read_to_string(copies.join(p)).expect("prompt");
        assert!(!text.contains("integration test"), "{p}: {text}");
    }
    // `orch status` showed it while app worked, and shows the fix now.
    let status = std::fs::read_to_string(copies.join("status.txt")).expect("status");
    assert!(
        status.contains("integration: red: lib + app: verify exited with status 1 (culprit app)"),
        "{status}"
    );
    let (code, out, _) = repo.run(&["status"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("integration: green (3 plans on `main`)"),
        "{out}"
    );
    let (_, out, _) = repo.run(&["status", "--json"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["integration"]["result"], "green", "{v}");
    // One plan's view carries it too.
    let (_, out, _) = repo.run(&["status", "--json", "--plan", "app"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["integration"]["result"], "green", "{v}");
    assert_eq!(v["plan"], "app", "{v}");
    // The fix is on app's branch.
    assert_eq!(repo.git(&["show", "plan/app:app.calls"]).trim(), "hello");
    // The staging worktree, kept between the run's tests, is gone with the run.
    assert!(
        !repo
            .root()
            .join(".orch/worktrees/.merge-staging-_integration")
            .exists()
    );
    assert!(
        !repo.worktrees().iter().any(|w| w.contains("merge-staging")),
        "{:?}",
        repo.worktrees()
    );
}

#[test]
fn plans_that_fit_report_no_integration_failure() {
    let (repo, _copies) = run_repo("fit");
    let ev = repo.up_events(&[], 0);
    assert!(named(&ev, "integration_failed").is_empty(), "{ev:#?}");
    assert!(named(&ev, "integration_fixed").is_empty(), "{ev:#?}");
    let (_, out, _) = repo.run(&["status", "--json"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["integration"]["result"], "green", "{v}");
    assert_eq!(
        strings(&serde_json::json!(
            v["integration"]["tested"]
                .as_array()
                .expect("tested")
                .iter()
                .map(|t| t["plan"].clone())
                .collect::<Vec<_>>()
        )),
        ["lib", "docs", "app"]
    );
}

#[test]
fn a_textual_conflict_between_plans_is_reported_with_its_files() {
    let repo = Repo::bare_minimum();
    repo.write("shared.txt", "original\n");
    let mut toml =
        String::from("[defaults]\nagent = \"a\"\nintegrate = \"0s\"\nretries = 0\n\n[agents.a]\n");
    toml.push_str(&format!(
        "command = {}\nreport = \"exit\"\n",
        toml_array(&[
            "sh".to_string(),
            fixtures().join("write.sh").display().to_string(),
            "shared.txt".to_string(),
        ])
    ));
    for name in ["a", "b", "c"] {
        repo.write(
            &format!("docs/plans/{name}.md"),
            &format!("# {name}\n\n## Phase 1: Work\n- [ ] 1.1 Write\n"),
        );
        toml.push_str(&format!(
            "\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\n"
        ));
    }
    // c writes its own file.
    toml = toml.replace("name = \"c\"\n", "name = \"c\"\nagent = \"own\"\n");
    toml.push_str(&format!(
        "\n[agents.own]\ncommand = {}\nreport = \"exit\"\n",
        toml_array(&[
            "sh".to_string(),
            fixtures().join("write.sh").display().to_string(),
            "c.txt".to_string(),
        ])
    ));
    repo.write("plans.toml", &toml);
    repo.commit_all("plans");
    let ev = repo.up_events(&[], 0);
    let failed = named(&ev, "integration_failed");
    assert_eq!(failed.len(), 1, "{ev:#?}");
    assert_eq!(strings(&failed[0]["plans"]), ["a", "b"], "{}", failed[0]);
    assert_eq!(failed[0]["culprit"], "b");
    assert_eq!(strings(&failed[0]["conflict"]), ["shared.txt"]);
    assert!(failed[0].get("verify").is_none());
    let (_, out, _) = repo.run(&["status"]);
    assert!(
        out.contains("integration: red: a + b: conflict in shared.txt (culprit b)"),
        "{out}"
    );
}

#[test]
fn the_merge_train_does_not_merge_the_plans_a_red_test_named() {
    let (repo, _copies) = run_repo_with("stay", "auto_merge = true\n");
    let (code, out, err) = repo.run(&["up", "--json"]);
    let ev = support::events(&out);
    assert!(!named(&ev, "integration_failed").is_empty(), "{out}{err}");
    assert!(named(&ev, "integration_fixed").is_empty(), "{out}");
    // app is named by every red test (lib may have merged before the first one): the train
    // never merges it, and says why.
    let merged: Vec<String> = named(&ev, "plan_merged")
        .iter()
        .map(|e| e["plan"].as_str().expect("plan").to_string())
        .collect();
    assert!(merged.contains(&"docs".to_string()), "{out}");
    assert!(!merged.contains(&"app".to_string()), "{out}");
    let held = named(&ev, "plan_merge_failed")
        .into_iter()
        .find(|e| e["plan"] == "app")
        .unwrap_or_else(|| panic!("no plan_merge_failed for app: {out}"));
    assert!(
        held["reason"]
            .as_str()
            .expect("reason")
            .contains("the last integration test named it"),
        "{held}"
    );
    assert_ne!(code, 0, "not everything was merged");
    // The target never got app's call: every name it calls is defined.
    assert!(!repo.git_ok(&["cat-file", "-e", "main:app.calls"]));
    let defs = repo.git(&["show", "main:lib.defs"]);
    let calls = repo.git(&["show", "main:main.calls"]);
    assert!(
        defs.contains(&format!("def {}", calls.trim())),
        "{defs} / {calls}"
    );
}

/// [`run_repo`] with `integrate = "10m"` (and `extra` in `[defaults]`).
fn ten_minutes(mode: &str, extra: &str) -> Repo {
    let (repo, _copies) = run_repo_with(mode, extra);
    let toml = std::fs::read_to_string(repo.root().join("plans.toml")).expect("manifest");
    repo.write(
        "plans.toml",
        &toml.replace("integrate = \"0s\"", "integrate = \"10m\""),
    );
    repo.commit_all("a test every ten minutes at most");
    repo
}

/// The commits of `report`'s `tested`, by plan.
fn tested(report: &Value) -> Vec<(String, String)> {
    report["tested"]
        .as_array()
        .unwrap_or_else(|| panic!("no tested commits: {report}"))
        .iter()
        .filter_map(|t| {
            Some((
                t["plan"].as_str()?.to_string(),
                t["commit"].as_str()?.to_string(),
            ))
        })
        .collect()
}

#[test]
fn with_a_long_interval_the_last_commits_are_tested_before_the_run_ends() {
    let repo = ten_minutes("fit", "");
    let ev = repo.up_events(&[], 0);
    assert!(named(&ev, "integration_failed").is_empty(), "{ev:#?}");
    // The run's last test saw every plan's last commit, though the interval had not passed.
    let (_, out, _) = repo.run(&["status", "--json"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["integration"]["result"], "green", "{v}");
    let want: Vec<(String, String)> = ["lib", "docs", "app"]
        .iter()
        .map(|p| (p.to_string(), repo.rev(&format!("plan/{p}"))))
        .collect();
    assert_eq!(tested(&v["integration"]), want, "{v}");
}

#[test]
fn with_a_long_interval_the_merge_train_still_merges_each_plan_after_a_test() {
    let repo = ten_minutes("fit", "auto_merge = true\n");
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let ev = support::events(&out);
    let merged: Vec<&str> = named(&ev, "plan_merged")
        .iter()
        .map(|e| e["plan"].as_str().expect("plan"))
        .collect();
    assert_eq!(merged.len(), 3, "{out}");
    // Everything is on main, and main passes verify.
    for p in ["lib", "docs", "app"] {
        let tip = repo.rev(&format!("plan/{p}"));
        assert!(
            repo.git_ok(&["merge-base", "--is-ancestor", &tip, "main"]),
            "{p} is not in main"
        );
    }
    assert_eq!(repo.git(&["show", "main:app.calls"]).trim(), "hello");
}
