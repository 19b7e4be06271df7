//! Resolution by agent inside a group: two plans of one repository that land together
//! (`land_with`) and conflict with each other, not with the target. The later plan is resolved
//! against the group's candidate so far (the target with the earlier plan merged), and the
//! group then lands all together; without a resolver the group is refused, naming both plans,
//! and nothing moves. Three real repositories (home, api, client), scripted agents, the real
//! binary.

use crate::support;

use support::three::{
    PLAN, Three, groups_doc, mains, merged_in_order, no_landing_left, no_resolution_left,
    plan_table, record, run_manifest,
};
use support::{Repo, agent, events, named};

/// The two plans of api that land together, each with its own line in `shared.txt`.
const PLANS: [(&str, &str); 2] = [("v2", "v2's line"), ("v2b", "v2b's line")];

/// The three repositories with every plan finished by `orch up` (no train): `v2` and `v2b` in
/// api (`v2b` lands with `v2`), `client-v2` waiting for `v2:1`, `docs` in home; with `resolve =
/// "fixer"` (`repos_resolver.sh FIXER…`, `ok`: keeps both sides' lines) and its `sandbox` when
/// `resolver` is given. Then each of the api plans commits its own line into `shared.txt` on
/// its branch: they conflict (add/add) with each other, not with api's `main`.
fn finished(resolver: Option<(&[&str], &str)>) -> (Three, tempfile::TempDir) {
    let t = Three::new();
    let journal = tempfile::tempdir().expect("journal");
    let defaults = if resolver.is_some() {
        "resolve = \"fixer\"\n"
    } else {
        ""
    };
    run_manifest(&t, journal.path(), defaults, "depends_on = [\"v2:1\"]\n");
    let mut toml = std::fs::read_to_string(t.home.root().join("plans.toml")).expect("toml");
    toml.push_str(&plan_table(
        "v2b",
        "v2b",
        "repo = \"api\"\nland_with = [\"v2\"]\n",
    ));
    if let Some((fixer, sandbox)) = resolver {
        toml.push_str(&format!(
            "\n[agents.fixer]\ncommand = {}\nsandbox = \"{sandbox}\"\n",
            agent("repos_resolver.sh", fixer)
        ));
    }
    t.home.write("plans.toml", &toml);
    t.home.write("plans/v2b.md", PLAN);
    t.home.commit_all("v2b");
    let (code, out, err) = t.home.run(&["up", "--json"]);
    assert_eq!(code, 0, "orch up:\n{out}\n{err}");
    for (plan, line) in PLANS {
        commit_on(&t.api, plan, line);
    }
    assert!(
        t.api
            .git_ok(&["merge-base", "--is-ancestor", "main", "plan/v2b"]),
        "api's main moved"
    );
    (t, journal)
}

/// `line` committed into `shared.txt` on plan `plan`'s branch of `r`, in the plan's worktree
/// (as its agent would have).
fn commit_on(r: &Repo, plan: &str, line: &str) {
    let wt = r.worktree(plan);
    assert!(wt.is_dir(), "no worktree {}", wt.display());
    std::fs::write(wt.join("shared.txt"), format!("{line}\n")).expect("write");
    r.git_at(&wt, &["add", "shared.txt"]);
    r.git_at(&wt, &["commit", "-qm", &format!("{plan}: shared")]);
}

/// The group's later plan (`v2b`) is resolved against `main` with `v2` merged: its merge
/// commit's second parent holds `v2`'s branch, the prompt and the commit name both plans; the
/// group then lands in order, api's `main` with both lines and no marker, `v2b`'s record naming
/// the resolver. Through `orch merge` and the merge train. Seen failing on main: the resolver
/// merged against `main` alone, found nothing to resolve, and the group was refused.
#[test]
fn two_plans_of_a_group_that_conflict_with_each_other_are_resolved_and_land_together() {
    for how in ["merge", "train"] {
        let (t, _journal) = finished(Some((&["ok"], "off")));
        let (v2_tip, main) = (t.api.rev("plan/v2"), t.api.rev("main"));
        // The dry run says who would be handed which conflict, and moves nothing.
        let before = mains(&t);
        let (code, out, err) = t.home.run(&["merge", "--dry-run"]);
        assert_eq!(code, 5, "{how}: {out}{err}");
        assert!(
            out.contains("would be handed plan `v2b` in repository `api`"),
            "{how}: {out}"
        );
        assert!(out.contains("plan `v2` of its group"), "{how}: {out}");
        assert_eq!(mains(&t), before, "{how}");
        let (code, out, err) = match how {
            "merge" => t.home.run(&["merge", "--json"]),
            _ => t.home.run(&["up", "--merge", "--json"]),
        };
        let all = format!("{out}\n{err}");
        assert_eq!(code, 0, "{how}: {all}");
        if how == "merge" {
            let g = &groups_doc(&out)["groups"][0];
            assert_eq!(g["result"], "landed", "{how}: {g}");
        } else {
            let ev = events(&out);
            let merged = merged_in_order(&ev);
            assert_eq!(merged, ["v2", "v2b", "client-v2"], "{how}: {all}");
            assert!(
                named(&ev, "resolved").iter().any(|e| e["plan"] == "v2b"),
                "{how}: no `resolved` event for v2b: {all}"
            );
        }
        // v2b's resolution: a merge of the candidate (main with v2 merged) into its branch.
        let msg = t.api.git(&["show", "-s", "--format=%B", "plan/v2b"]);
        assert!(msg.contains("Resolved-by: fixer"), "{how}: {msg}");
        assert!(
            msg.contains("Merge `main` and plan `v2` of its group into `plan/v2b`"),
            "{how}: {msg}"
        );
        let theirs = t.api.rev("plan/v2b^2");
        for (rev, what) in [(&v2_tip, "v2's branch"), (&main, "main as it was")] {
            assert!(
                t.api
                    .git_ok(&["merge-base", "--is-ancestor", rev.as_str(), &theirs]),
                "{how}: the resolution's other side does not hold {what}"
            );
        }
        let log = std::fs::read_to_string(t.api.root().join(".orch/logs/v2b/resolve.log"))
            .expect("resolve log");
        assert!(log.contains("shared.txt"), "{how}: {log}");
        // Landed, all together, in order, with both lines.
        let shared = t.api.git(&["show", "main:shared.txt"]);
        for (_, line) in PLANS {
            assert!(shared.contains(line), "{how}: {shared}");
        }
        assert!(
            !shared.contains("<<<<<<<") && !shared.contains(">>>>>>>"),
            "{how}: {shared}"
        );
        for branch in ["plan/v2", "plan/v2b"] {
            assert!(
                t.api
                    .git_ok(&["merge-base", "--is-ancestor", branch, "main"]),
                "{how}: {branch} is not in main"
            );
        }
        assert!(
            t.client
                .git_ok(&["merge-base", "--is-ancestor", "plan/client-v2", "main"]),
            "{how}: client-v2 did not land"
        );
        for plan in ["v2", "v2b"] {
            let rec = record(&t.api, plan);
            assert_eq!(rec["state"], "merged", "{how} {plan}: {rec}");
            assert_eq!(rec["commit"], t.api.rev("main").as_str(), "{how}: {rec}");
        }
        assert_eq!(record(&t.api, "v2b")["resolvedBy"], "fixer", "{how}");
        no_landing_left(&t);
        no_resolution_left(&t);
    }
}

/// Without a resolver the group is refused: the reason names the later plan, the earlier one
/// and the file, the JSON's `conflict.with` names the earlier plan, the hint says to merge both
/// into the plan's branch, and nothing moves (targets and plan branches). Through `orch merge`
/// and `orch merge --dry-run`.
#[test]
fn two_plans_of_a_group_that_conflict_without_a_resolver_are_refused_naming_both() {
    let (t, _journal) = finished(None);
    // The home repository's plan (`docs`) lands on its own; api's and client's refs stay.
    let refs = (t.api.refs(), t.client.refs());
    for args in [&["merge", "--dry-run"][..], &["merge", "--json"]] {
        let (code, out, err) = t.home.run(args);
        assert_eq!(code, 5, "{args:?}: {out}{err}");
        let reason = if args.contains(&"--json") {
            let g = &groups_doc(&out)["groups"][0];
            assert_eq!(g["result"], "not-landed", "{g}");
            assert_eq!(g["conflict"]["plan"], "v2b", "{g}");
            assert_eq!(g["conflict"]["with"], serde_json::json!(["v2"]), "{g}");
            assert_eq!(g["conflict"]["files"], serde_json::json!(["shared.txt"]));
            assert_eq!(record(&t.api, "v2b")["state"], "conflict");
            g["reason"].as_str().unwrap_or_default().to_string()
        } else {
            out.clone()
        };
        for want in [
            "plan `v2b` of repository `api` conflicts with `main` and plan `v2` of its group",
            "shared.txt",
            "merge `main` and the branch of plan `v2` into `plan/v2b`",
            "or give plan `v2b` a `resolve` agent and run `orch resolve v2b`",
        ] {
            assert!(reason.contains(want), "{args:?}: want {want:?} in {reason}");
        }
        assert_eq!(
            (t.api.refs(), t.client.refs()),
            refs,
            "{args:?}: a ref moved"
        );
        no_landing_left(&t);
    }
}

/// The resolver handed the group's candidate is as untrusted as any: one that leaves the
/// markers lands nothing (its attempt saved, `v2b`'s branch where it was); one that commits in
/// the earlier plan's worktree and moves api's `main` lands nothing of it: confined it cannot
/// (the group lands without its writes), unconfined the moved refs stop the landing. Sandbox on
/// and off.
#[test]
fn a_resolver_handed_the_groups_candidate_is_held_to_the_same_gates() {
    for sandbox in support::sandboxes() {
        for mode in ["marker", "commit"] {
            let how = format!("sandbox {sandbox}, {mode}");
            let links = tempfile::tempdir().expect("links");
            let (a, b) = (links.path().join("a"), links.path().join("b"));
            let args = [mode, a.to_str().expect("utf-8"), b.to_str().expect("utf-8")];
            let (t, _journal) = finished(Some((&args, sandbox)));
            std::os::unix::fs::symlink(t.api.worktree("v2"), &a).expect("link a");
            std::os::unix::fs::symlink(t.api.root(), &b).expect("link b");
            let (v2, v2b, api_main) = (
                t.api.rev("plan/v2"),
                t.api.rev("plan/v2b"),
                t.api.rev("main"),
            );
            let client_main = t.client.rev("main");
            let (code, out, err) = t.home.run(&["merge", "--json"]);
            let all = format!("{out}\n{err}");
            if mode == "commit" && sandbox == "on" {
                assert_eq!(code, 0, "{how}: {all}");
                assert_eq!(t.api.rev("plan/v2"), v2, "{how}: plan/v2 moved");
                let log = t.api.git(&["log", "--format=%s", "main"]);
                assert!(!log.lines().any(|l| l == "hostile"), "{how}: {log}");
                assert_eq!(record(&t.api, "v2b")["resolvedBy"], "fixer", "{how}");
                continue;
            }
            assert_eq!(code, 5, "{how}: {all}");
            let g = &groups_doc(&out)["groups"][0];
            assert_eq!(g["result"], "not-landed", "{how}: {g}");
            let reason = g["reason"].as_str().unwrap_or_default();
            let cause = match mode {
                "marker" => "conflict marker in `shared.txt`",
                _ => "moved while the resolver of plan `v2b` ran",
            };
            assert!(reason.contains(cause), "{how}: {reason}");
            if mode == "marker" {
                assert_eq!(t.api.rev("plan/v2b"), v2b, "{how}: plan/v2b moved");
                assert_eq!(t.api.rev("main"), api_main, "{how}: main moved");
                let saved = t.api.refs_under("refs/orch/attempts/v2b/resolve/");
                assert_eq!(saved.len(), 1, "{how}: {saved:?}");
            }
            // Nothing of the group landed: neither api plan is in api's `main` (wherever the
            // resolver put it), client's `main` is where it was.
            for branch in [&v2, &v2b] {
                assert!(
                    !t.api
                        .git_ok(&["merge-base", "--is-ancestor", branch.as_str(), "main"]),
                    "{how}: a plan landed"
                );
            }
            assert_eq!(t.client.rev("main"), client_main, "{how}: client moved");
            no_landing_left(&t);
        }
    }
}

/// `orch resolve PLAN` hands the later plan the same merge `orch merge` would: its `--dry-run`
/// prompt and its merge commit name `main` and plan `v2` of its group, the commit's other side
/// holds `v2`'s branch, no target moves; `orch merge` then lands the group without another
/// resolution. Seen failing on main: `orch resolve v2b` answered that it merges cleanly.
#[test]
fn orch_resolve_of_a_plan_that_conflicts_inside_its_group_resolves_against_the_group() {
    let (t, _journal) = finished(Some((&["ok"], "off")));
    let (v2_tip, before) = (t.api.rev("plan/v2"), mains(&t));
    let (code, out, err) = t.home.run(&["resolve", "v2b", "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Merging `main` and plan `v2` of its group into plan `v2b`'s branch"),
        "{out}"
    );
    assert!(out.contains("shared.txt"), "{out}");
    let (code, out, err) = t.home.run(&["resolve", "v2b", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["result"], "resolved", "{v}");
    assert_eq!(v["files"], serde_json::json!(["shared.txt"]), "{v}");
    assert_eq!(v["commit"], t.api.rev("plan/v2b").as_str(), "{v}");
    let msg = t.api.git(&["show", "-s", "--format=%B", "plan/v2b"]);
    assert!(
        msg.contains("Merge `main` and plan `v2` of its group into `plan/v2b`"),
        "{msg}"
    );
    assert!(
        t.api.git_ok(&[
            "merge-base",
            "--is-ancestor",
            &v2_tip,
            &t.api.rev("plan/v2b^2")
        ]),
        "the resolution's other side does not hold v2's branch"
    );
    assert_eq!(mains(&t), before, "a target moved");
    assert_eq!(t.api.rev("plan/v2"), v2_tip, "plan/v2 moved");
    no_resolution_left(&t);
    // The group now builds: it lands without another resolution.
    let (code, out, err) = t.home.run(&["merge", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(groups_doc(&out)["groups"][0]["result"], "landed", "{out}");
    let shared = t.api.git(&["show", "main:shared.txt"]);
    for (_, line) in PLANS {
        assert!(shared.contains(line), "{shared}");
    }
    no_landing_left(&t);
}
