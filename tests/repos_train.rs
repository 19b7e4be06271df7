//! The merge train of `orch up` (`--merge`, `auto_merge`) and the integration preview with plans
//! of several repositories: a group lands all together or not at all, as `orch merge` lands it;
//! the preview tests every repository's candidate. Three real repositories side by side (home,
//! api, client), scripted agents, the real binary.

use crate::support;

use serde_json::Value;
use support::three::{Three, mains, no_landing_left, run_manifest};
use support::{events, named};

/// `verify_all` that passes when both candidates hold their plan's file.
const GREEN_ALL: &str = "verify_all = [\"sh\", \"-c\", \"test -f \\\"$ORCH_REPO_API/v2.txt\\\" && test -f \\\"$ORCH_REPO_CLIENT/client-v2.txt\\\"\"]\n";

fn merged_names(ev: &[Value]) -> Vec<String> {
    named(ev, "plan_merged")
        .iter()
        .map(|e| e["plan"].as_str().expect("plan").to_string())
        .collect()
}

fn event_of<'a>(ev: &'a [Value], name: &str, plan: &str) -> &'a Value {
    named(ev, name)
        .into_iter()
        .find(|e| e["plan"] == plan)
        .unwrap_or_else(|| panic!("no {name} for {plan}: {ev:#?}"))
}

/// The three repositories, `client-v2` waiting for `v2:1`, the train on by `how` (`--merge`
/// or `auto_merge`); `extra` more lines of `[defaults]`.
fn train_run(how: &str, extra: &str) -> (Three, tempfile::TempDir, i32, Vec<Value>, String) {
    let t = Three::new();
    let journal = tempfile::tempdir().expect("journal");
    let (defaults, args): (String, Vec<&str>) = match how {
        "--merge" => (extra.to_string(), vec!["up", "--merge", "--json"]),
        "auto_merge" => (format!("auto_merge = true\n{extra}"), vec!["up", "--json"]),
        _ => (extra.to_string(), vec!["up", "--json"]),
    };
    run_manifest(&t, journal.path(), &defaults, "depends_on = [\"v2:1\"]\n");
    let (code, out, err) = t.home.run(&args);
    let ev = events(&out);
    (t, journal, code, ev, format!("{out}\n{err}"))
}

#[test]
fn the_merge_train_lands_every_repository_together_in_dependency_order() {
    for how in ["--merge", "auto_merge"] {
        let (t, _journal, code, ev, all) = train_run(how, GREEN_ALL);
        assert_eq!(code, 0, "{how}: {all}");
        let merged = merged_names(&ev);
        let pos = |p: &str| {
            merged
                .iter()
                .position(|m| m == p)
                .unwrap_or_else(|| panic!("{how}: {p} not merged: {all}"))
        };
        // The api plan (upstream) is reported before the client's, and the home plan merged too.
        assert!(pos("v2") < pos("client-v2"), "{how}: {merged:?}");
        pos("docs");
        // Each target holds its plan's work, its work tree shows it.
        assert!(t.api.git(&["show", "main:v2.txt"]).contains("1.1"));
        assert!(t.api.git(&["show", "main:v2.txt"]).contains("2.1"));
        assert!(
            t.client
                .git(&["show", "main:client-v2.txt"])
                .contains("1.1")
        );
        assert!(t.client.git(&["show", "main:from-api.txt"]).contains("1.1"));
        assert!(t.home.git(&["show", "main:docs.txt"]).contains("1.1"));
        assert!(t.api.root().join("v2.txt").is_file());
        assert!(t.client.root().join("client-v2.txt").is_file());
        // Each event names its repository's new tip, and the landing moved them in order.
        let (api, client) = mains(&t);
        assert_eq!(event_of(&ev, "plan_merged", "v2")["commit"], api.as_str());
        assert_eq!(
            event_of(&ev, "plan_merged", "client-v2")["commit"],
            client.as_str()
        );
        for r in [&t.api, &t.client] {
            let reflog = r.git(&["reflog", "show", "main", "--format=%gs"]);
            assert!(reflog.contains("orch: land v2 ("), "{how}: {reflog}");
        }
        no_landing_left(&t);
        // The run's summary says every plan merged.
        let summary = &ev.last().expect("events")["summary"];
        for p in summary["plans"].as_array().expect("plans") {
            assert_eq!(p["merge"], "merged", "{how}: {p}");
        }
        // A next `orch merge` finds nothing left to land.
        let (code, out, err) = t.home.run(&["merge"]);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(mains(&t), (api, client));
    }
}

#[test]
fn a_red_verify_in_the_train_moves_no_target_and_names_the_combination() {
    // Each way of failing: verify_all red, verify_all that cannot start, one repository's own
    // verify red (the other repository's target does not move either).
    let cases = [
        (
            "verify_all = [\"sh\", \"-c\", \"exit 3\"]\n",
            "",
            "verify_all failed on the combination",
        ),
        (
            "verify_all = [\"/no/such/program\"]\n",
            "",
            "verify_all failed",
        ),
        (
            "",
            "verify = [\"sh\", \"-c\", \"exit 7\"]\n",
            "verify of `client` failed on the combination",
        ),
    ];
    for how in ["--merge", "auto_merge"] {
        for (defaults, client_verify, says) in cases {
            let t = Three::new();
            let journal = tempfile::tempdir().expect("journal");
            let defaults = match how {
                "--merge" => defaults.to_string(),
                _ => format!("auto_merge = true\n{defaults}"),
            };
            run_manifest(&t, journal.path(), &defaults, "depends_on = [\"v2:1\"]\n");
            if !client_verify.is_empty() {
                let toml = std::fs::read_to_string(t.home.root().join("plans.toml")).expect("toml");
                let toml = toml.replacen(
                    "name = \"client\"\n",
                    &format!("name = \"client\"\n{client_verify}"),
                    1,
                );
                t.home.write("plans.toml", &toml);
                t.home.commit_all("client verify");
            }
            let before = mains(&t);
            let args: &[&str] = match how {
                "--merge" => &["up", "--merge", "--json"],
                _ => &["up", "--json"],
            };
            let (code, out, err) = t.home.run(args);
            let all = format!("{out}\n{err}");
            assert_eq!(code, 5, "{how} {says}: {all}");
            let ev = events(&out);
            assert_eq!(mains(&t), before, "{how} {says}: a target moved: {all}");
            no_landing_left(&t);
            for plan in ["v2", "client-v2"] {
                let failed = event_of(&ev, "plan_merge_failed", plan);
                assert_eq!(failed["result"], "verify_failed", "{failed}");
                let reason = failed["reason"].as_str().expect("reason");
                assert!(reason.contains(says), "{how}: {reason}");
                assert!(
                    reason.contains("api `main` at") && reason.contains("client `main` at"),
                    "{how}: the combination is not named: {reason}"
                );
                assert!(reason.contains("nothing was landed"), "{reason}");
            }
            assert!(!merged_names(&ev).iter().any(|p| p != "docs"), "{all}");
            // The plan of the home repository alone landed on its own.
            assert!(t.home.git(&["show", "main:docs.txt"]).contains("1.1"));
        }
    }
}

/// The integration preview of `orch up` (`integrate = "0s"`) tests each repository's candidate
/// and `verify_all` on the combination; `orch status` shows its result over every repository's
/// plans; `orch integrate` says the same.
#[test]
fn the_preview_tests_every_repository_and_status_shows_it() {
    // Green: the three plans tested, api's and client's with their repository.
    let green = format!("integrate = \"0s\"\n{GREEN_ALL}");
    let (t, _journal, code, ev, all) = train_run("none", &green.replace("auto_merge", ""));
    assert_eq!(code, 0, "{all}");
    // (While the client had no commit yet, verify_all was red: the last test is green.)
    let last = ev
        .iter()
        .rfind(|e| e["event"] == "integration_failed" || e["event"] == "integration_fixed");
    assert!(
        last.is_none_or(|e| e["event"] == "integration_fixed"),
        "{all}"
    );
    let (code, out, err) = t.home.run(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("status json");
    let integration = &v["integration"];
    assert_eq!(integration["result"], "green", "{integration}");
    let tested = integration["tested"].as_array().expect("tested");
    let repo_of = |plan: &str| {
        tested
            .iter()
            .find(|t| t["plan"] == plan)
            .map(|t| t["repo"].clone())
            .unwrap_or_else(|| panic!("{plan} not tested: {integration}"))
    };
    assert_eq!(repo_of("v2"), "api");
    assert_eq!(repo_of("client-v2"), "client");
    assert_eq!(repo_of("docs"), Value::Null);
    let (_, text, _) = t.home.run(&["status"]);
    assert!(text.contains("integration: green (3 plans"), "{text}");

    // Red: verify_all fails on the combination; the preview names the group and the
    // combination, the status says so, nothing moved.
    let red = "integrate = \"0s\"\nverify_all = [\"sh\", \"-c\", \"ls \\\"$ORCH_REPO_API\\\" \\\"$ORCH_REPO_CLIENT\\\"; exit 3\"]\n";
    let (t, _journal, code, ev, all) = train_run("none", red);
    assert_eq!(code, 0, "{all}");
    let before = mains(&t);
    let failed = named(&ev, "integration_failed");
    assert!(!failed.is_empty(), "{all}");
    let last = failed.last().expect("failed");
    assert_eq!(
        last["plans"],
        serde_json::json!(["v2", "client-v2"]),
        "{last}"
    );
    let (_, text, _) = t.home.run(&["status"]);
    assert!(
        text.contains(
            "integration: red: v2 + client-v2: verify_all failed on the combination api `main` at"
        ),
        "{text}"
    );
    assert!(text.contains("client `main` at"), "{text}");
    // The log of the preview's verify_all holds what it saw: both candidates side by side.
    let log = t
        .home
        .root()
        .join(".orch/logs/.integration-v2/merge-verify.log");
    let seen = std::fs::read_to_string(&log).expect("log");
    assert!(
        seen.contains("v2.txt") && seen.contains("client-v2.txt"),
        "{seen}"
    );
    // orch integrate says the same, and the preview moved no target.
    let (code, out, err) = t.home.run(&["integrate"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        out.contains("`v2` + `client-v2` break together"),
        "{out}{err}"
    );
    assert_eq!(mains(&t), before);
    no_landing_left(&t);
    assert!(
        !t.home
            .root()
            .join(".orch/worktrees/.integration-v2")
            .exists()
    );
}
