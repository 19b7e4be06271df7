//! Commands other than `orch up` and `orch merge` with plans of several repositories: the
//! views name each plan's repository (`orch simulate`), and the commands that act on a plan's
//! branch or worktree act in the plan's own repository or refuse, naming it (`orch clean`,
//! `orch sync`, `orch conflicts`, `orch resolve`). Three real repositories side by side.

use crate::support;

use serde_json::Value;
use support::three::{PLAN, Three, exists, plan_table, repo_table};

#[test]
fn simulate_names_the_repository_of_a_plan() {
    let t = Three::new();
    for f in ["p", "q", "r"] {
        t.home.write(&format!("plans/{f}.md"), PLAN);
    }
    let toml = format!(
        "[defaults]\nagent = \"a\"\n\n[agents.a]\ncommand = [\"true\"]\n{}{}{}{}{}",
        repo_table("api", &Three::rel(&t.api)),
        repo_table("client", &Three::rel(&t.client)),
        plan_table("v2", "p", "repo = \"api\"\n"),
        plan_table(
            "client-v2",
            "q",
            "repo = \"client\"\ndepends_on = [\"v2\"]\n"
        ),
        plan_table("docs", "r", ""),
    );
    t.home.write("plans.toml", &toml);
    t.home.commit_all("plans");
    let (code, out, err) = t.home.run(&["simulate"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("v2 [repository api], client-v2 [repository client], docs"),
        "{out}"
    );
    let (code, out, err) = t.home.run(&["simulate", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["repos"]["v2"], "api", "{v}");
    assert_eq!(v["repos"]["client-v2"], "client");
    assert_eq!(v["repos"]["docs"], "home");
    let schedule = v["runs"][0]["schedule"].as_array().expect("schedule");
    let of = |plan: &str| {
        schedule
            .iter()
            .find(|s| s["plan"] == plan)
            .unwrap_or_else(|| panic!("{plan} not scheduled: {v}"))
            .clone()
    };
    assert_eq!(of("v2")["repo"], "api");
    assert_eq!(of("docs").get("repo"), None);
    // Nothing was made in any repository.
    assert!(!exists(&t.api, "plan/v2"));
}

/// The three repositories with every plan finished (`v2` in api, `client-v2` in client waiting
/// for `v2:1`, `docs` at home), and a decoy in the home repository: a branch `plan/v2` merged
/// into its `main` (a command that took the home repository for the plan's would act on it).
fn finished_with_decoy() -> (Three, tempfile::TempDir) {
    let (t, journal) = support::three::finished_three("");
    t.home.git(&["branch", "plan/v2", "main"]);
    (t, journal)
}

#[test]
fn clean_acts_in_the_repository_of_each_plan() {
    let (t, _journal) = finished_with_decoy();
    let decoy = t.home.rev("plan/v2");
    // Not landed yet: kept, in its own repository; the decoy is not looked at.
    let (code, out, err) = t.home.run(&["clean", "v2", "--json"]);
    assert_eq!(code, 5, "{out}{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["plans"][0]["outcome"], "kept", "{v}");
    assert!(exists(&t.api, "plan/v2"));
    assert!(t.api.root().join(".orch/worktrees/v2").is_dir());
    assert_eq!(t.home.rev("plan/v2"), decoy);
    // Landed: each plan's worktree and branch go, in its repository; the decoy stays.
    let (code, out, err) = t.home.run(&["merge"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = t.home.run(&["clean"]);
    assert_eq!(code, 0, "{out}{err}");
    for (r, plan) in [(&t.api, "v2"), (&t.client, "client-v2"), (&t.home, "docs")] {
        assert!(!exists(r, &format!("plan/{plan}")), "{plan}: {out}");
        assert!(!r.root().join(format!(".orch/worktrees/{plan}")).exists());
    }
    assert_eq!(
        t.home.rev("plan/v2"),
        decoy,
        "the home repository's branch was touched"
    );
}

#[test]
fn conflicts_compares_each_plan_in_its_repository() {
    let (t, _journal) = finished_with_decoy();
    // api's main moved: it changes the file plan `v2` changed.
    t.api.write("v2.txt", "someone else's\n");
    t.api.commit_all("a change on main");
    // The home repository's decoy conflicts with home `main` too (a wrong repository would
    // report it under `v2`).
    t.home.git(&["checkout", "-q", "plan/v2"]);
    t.home.write("docs.txt", "decoy\n");
    t.home.commit_all("decoy");
    t.home.git(&["checkout", "-q", "main"]);
    let (code, out, err) = t.home.run(&["conflicts", "--json"]);
    assert_eq!(code, 5, "{out}{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let pairs = v["pairs"].as_array().expect("pairs");
    let conflicting: Vec<(String, String, Value)> = pairs
        .iter()
        .filter(|p| p["conflict"] == true)
        .map(|p| {
            (
                p["a"].as_str().unwrap_or("").to_string(),
                p["b"].as_str().unwrap_or("").to_string(),
                p["files"].clone(),
            )
        })
        .collect();
    assert_eq!(
        conflicting,
        [(
            "v2".to_string(),
            "main".to_string(),
            serde_json::json!(["v2.txt"])
        )],
        "{v}"
    );
    // No pair across repositories.
    assert!(
        !pairs
            .iter()
            .any(|p| (p["a"] == "v2" && p["b"] == "client-v2")
                || (p["a"] == "client-v2" && p["b"] == "v2")
                || (p["a"] == "docs" && p["b"] == "v2")
                || (p["a"] == "v2" && p["b"] == "docs")),
        "{v}"
    );
    let plans = v["plans"].as_array().expect("plans");
    let v2 = plans.iter().find(|p| p["name"] == "v2").expect("v2");
    assert_eq!(v2["repo"], "api");
    assert_eq!(v2["changed_files"], serde_json::json!(["v2.txt"]));
}

#[test]
fn sync_and_resolve_refuse_plans_of_other_repositories_naming_them() {
    let (t, _journal) = finished_with_decoy();
    // Every ref of the three repositories, and the files of the plans' worktrees (orch's own
    // lock files may be written).
    let snapshot = || {
        let mut out = Vec::new();
        for r in [&t.home, &t.api, &t.client] {
            out.push(r.refs());
        }
        for (r, plan) in [(&t.api, "v2"), (&t.client, "client-v2")] {
            let wt = r.root().join(format!(".orch/worktrees/{plan}"));
            out.push(format!("{:?}", support::disk_snapshot(&wt)));
        }
        out
    };
    let before = snapshot();
    // orch sync: each plan of another repository skipped with its repository named; nothing
    // merged anywhere.
    for plan in ["client-v2", "v2"] {
        let (code, out, err) = t.home.run(&["sync", plan, "--json"]);
        assert_eq!(code, 0, "{out}{err}");
        let v: Value = serde_json::from_str(&out).expect("json");
        let text = v.to_string();
        if plan == "client-v2" {
            assert!(text.contains("a plan of repository `client`"), "{text}");
        }
    }
    assert_eq!(snapshot(), before, "orch sync changed something");
    // orch resolve (and its dry run): refused, exit 4, naming the repository.
    for args in [
        vec!["resolve", "v2"],
        vec!["resolve", "v2", "--dry-run"],
        vec!["resolve", "client-v2"],
    ] {
        let (code, out, err) = t.home.run(&args);
        assert_eq!(code, 4, "{args:?}: {out}{err}");
        let repo = if args[1] == "v2" { "api" } else { "client" };
        assert!(
            err.contains(&format!("changes repository `{repo}`")),
            "{args:?}: {err}"
        );
        assert_eq!(snapshot(), before, "{args:?} changed something");
    }
}
