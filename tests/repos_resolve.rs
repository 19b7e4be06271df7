//! Resolution by agent (`resolve`) for plans of several repositories: the resolver of a plan
//! works in the plan's own repository (its resolution worktree, log and gates there, that
//! repository's target and `verify`), through `orch resolve PLAN`, `orch merge` and the merge
//! train; a group whose plan conflicts lands, after the resolution, all together or not at all.
//! The resolver is untrusted: what it leaves passes the gates of its own repository (no marker,
//! nothing that a later run trusts there), and what it does elsewhere (another repository's
//! checkout, the home one, their refs) never lands. Three real repositories side by side (home,
//! api, client), scripted agents (`repos_agent.sh`, `repos_resolver.sh`), the real binary.

use crate::support;

use std::path::Path;

use serde_json::Value;
use support::three::{
    Three, groups_doc, mains, merged_in_order, no_landing_left, no_resolution_left, record,
    run_manifest,
};
use support::{Repo, agent, events, named, sandboxes};

/// api's own `verify`: a script of the api repository (what a later landing runs there).
const API_VERIFY: &str = "verify = [\"sh\", \"ci/verify.sh\"]\n";

/// The three repositories, every plan finished by `orch up` (no train): `v2` (api, with
/// `ci/verify.sh` as api's `verify`), `client-v2` (client, waiting for `v2:1`), `docs` (home);
/// `resolve = "fixer"`, the agent `repos_resolver.sh FIXER…` with `sandbox = SANDBOX`.
fn finished(fixer: &[&str], sandbox: &str, defaults: &str) -> (Three, tempfile::TempDir) {
    let t = Three::new();
    t.api.write("ci/verify.sh", "exit 0\n");
    t.api.commit_all("api verify");
    let journal = tempfile::tempdir().expect("journal");
    run_manifest(
        &t,
        journal.path(),
        &format!("resolve = \"fixer\"\n{defaults}"),
        "depends_on = [\"v2:1\"]\n",
    );
    let toml = std::fs::read_to_string(t.home.root().join("plans.toml")).expect("toml");
    let mut toml = toml.replacen(
        "name = \"api\"\n",
        &format!("name = \"api\"\n{API_VERIFY}"),
        1,
    );
    toml.push_str(&format!(
        "\n[agents.fixer]\ncommand = {}\nsandbox = \"{sandbox}\"\n",
        agent("repos_resolver.sh", fixer)
    ));
    t.home.write("plans.toml", &toml);
    t.home.commit_all("resolver");
    let (code, out, err) = t.home.run(&["up", "--json"]);
    assert_eq!(code, 0, "orch up:\n{out}\n{err}");
    (t, journal)
}

/// The repository `name` and the plan of it.
fn repo<'a>(t: &'a Three, name: &str) -> (&'a Repo, &'static str, &'static str) {
    match name {
        "api" => (&t.api, "v2", "v2.txt"),
        "client" => (&t.client, "client-v2", "client-v2.txt"),
        _ => panic!("no repository {name}"),
    }
}

/// Someone else's line committed on `main` of repository `name`, in the file its plan wrote:
/// the plan now conflicts with its target (add/add).
fn conflict_in(t: &Three, name: &str) {
    let (r, _, file) = repo(t, name);
    r.write(file, "someone else's line\n");
    r.commit_all("meanwhile");
}

/// Plan `plan` of repository `r` landed: `main` is the commit its record names, holds the
/// plan's branch tip (archived by its tag) and, in `file`, both sides' lines without a marker.
fn landed(r: &Repo, plan: &str, file: &str, resolved: bool, how: &str) {
    let rec = record(r, plan);
    assert_eq!(rec["state"], "merged", "{how} {plan}: {rec}");
    assert_eq!(rec["commit"], r.rev("main").as_str(), "{how} {plan}: {rec}");
    let branch = format!("plan/{plan}");
    assert!(
        r.git_ok(&["merge-base", "--is-ancestor", &branch, "main"]),
        "{how} {plan}: its branch is not in main"
    );
    let tag = rec["archiveTag"]
        .as_str()
        .unwrap_or_else(|| panic!("{how} {plan}: no archiveTag: {rec}"));
    assert_eq!(
        r.rev(&format!("refs/tags/{tag}^{{commit}}")),
        r.rev(&branch),
        "{how} {plan}: {tag}"
    );
    let text = r.git(&["show", &format!("main:{file}")]);
    assert!(text.contains("1.1"), "{how} {plan}: {text}");
    assert!(
        !text.contains("<<<<<<<") && !text.contains(">>>>>>>"),
        "{text}"
    );
    if resolved {
        assert!(text.contains("someone else's line"), "{how} {plan}: {text}");
        assert_eq!(rec["resolvedBy"], "fixer", "{how} {plan}: {rec}");
        let msg = r.git(&["show", "-s", "--format=%B", &branch]);
        assert!(msg.contains("Resolved-by: fixer"), "{how} {plan}: {msg}");
    }
}

/// `orch resolve PLAN` of a plan of another repository resolves it there: the merge commit on
/// its branch in its repository, its log and resolution worktree in that repository (none in
/// the home one, whose refs stay as they were); `orch merge` then lands the group, each target
/// checked by its commit. Sandbox on and off; a plan of api and one of client. Seen failing on
/// main: `orch resolve` refused a plan of another repository (exit 4).
#[test]
fn orch_resolve_of_a_plan_of_another_repository_resolves_it_there_and_merge_lands_the_group() {
    for sandbox in sandboxes() {
        for name in ["api", "client"] {
            let how = format!("sandbox {sandbox}, {name}");
            let (t, _journal) = finished(&["ok"], sandbox, "");
            conflict_in(&t, name);
            let (r, plan, file) = repo(&t, name);
            let (home_refs, main, tip) =
                (t.home.refs(), r.rev("main"), r.rev(&format!("plan/{plan}")));
            let (code, out, err) = t.home.run(&["resolve", plan, "--json"]);
            assert_eq!(code, 0, "{how}: {out}\n{err}");
            let v: Value = serde_json::from_str(&out).expect("json");
            assert_eq!(v["result"], "resolved", "{how}: {v}");
            assert_eq!(v["files"], serde_json::json!([file]), "{how}: {v}");
            let branch = format!("plan/{plan}");
            assert_eq!(v["commit"], r.rev(&branch).as_str(), "{how}: {v}");
            // A merge of the target into the plan branch, in the plan's repository.
            assert_eq!(r.rev(&format!("{branch}^1")), tip, "{how}");
            assert_eq!(r.rev(&format!("{branch}^2")), main, "{how}");
            assert_eq!(r.rev("main"), main, "{how}: the target moved");
            assert_eq!(
                t.home.refs(),
                home_refs,
                "{how}: the home repository's refs moved"
            );
            // Its log is where the plan's are, and says where it ran.
            let log = r.root().join(format!(".orch/logs/{plan}/resolve.log"));
            let text = std::fs::read_to_string(&log)
                .unwrap_or_else(|e| panic!("{how}: {}: {e}", log.display()));
            let at = r.root().join(format!(".orch/worktrees/.resolve-{plan}"));
            assert!(text.contains(&at.display().to_string()), "{how}: {text}");
            assert!(
                !t.home.root().join(format!(".orch/logs/{plan}")).exists(),
                "{how}: a log in the home repository"
            );
            no_resolution_left(&t);
            // The group lands, in order, each target checked by its commit.
            let (code, out, err) = t.home.run(&["merge", "--json"]);
            assert_eq!(code, 0, "{how}: {out}\n{err}");
            let g = &groups_doc(&out)["groups"][0];
            assert_eq!(g["result"], "landed", "{how}: {g}");
            let order: Vec<&str> = g["moved"]
                .as_array()
                .expect("moved")
                .iter()
                .map(|m| m["repo"].as_str().unwrap_or_default())
                .collect();
            assert_eq!(order, ["api", "client"], "{how}: {g}");
            for m in g["moved"].as_array().expect("moved") {
                let (mr, _, _) = repo(&t, m["repo"].as_str().expect("repo"));
                assert_eq!(m["to"], mr.rev("main").as_str(), "{how}: {m}");
            }
            landed(&t.api, "v2", "v2.txt", false, &how);
            landed(&t.client, "client-v2", "client-v2.txt", false, &how);
            let text = r.git(&["show", &format!("main:{file}")]);
            assert!(text.contains("someone else's line"), "{how}: {text}");
            no_landing_left(&t);
        }
    }
}

/// A conflict inside a group goes to the conflicting plan's resolver in its own repository;
/// the group then lands all together, api before client, each target checked by its commit
/// and each plan's record naming the resolver and its archive tag. Through `orch merge` and
/// the merge train; the conflict in api, in client, in both. Seen failing on main: the group
/// was refused (`conflict`), never handed to the resolver.
#[test]
fn a_conflict_inside_a_group_is_resolved_by_the_agent_and_the_group_lands_in_order() {
    for how in ["merge", "train"] {
        for conflicted in [&["api"][..], &["client"], &["api", "client"]] {
            let what = format!("{how}, conflict in {conflicted:?}");
            let (t, _journal) = finished(&["ok"], "off", "");
            for name in conflicted {
                conflict_in(&t, name);
            }
            if how == "merge" {
                // The dry run says the conflict goes to the plan's resolver first, and moves
                // nothing.
                let before = mains(&t);
                let (code, out, err) = t.home.run(&["merge", "--dry-run"]);
                assert_eq!(code, 5, "{what}: {out}{err}");
                let (_, plan, _) = repo(&t, conflicted[0]);
                assert!(
                    out.contains(&format!(
                        "would be handed plan `{plan}` in repository `{}`",
                        conflicted[0]
                    )),
                    "{what}: {out}"
                );
                assert_eq!(mains(&t), before, "{what}");
            }
            let (code, out, err) = match how {
                "merge" => t.home.run(&["merge", "--json"]),
                _ => t.home.run(&["up", "--merge", "--json"]),
            };
            let all = format!("{out}\n{err}");
            if how == "merge" {
                assert_eq!(code, 0, "{what}: {all}");
                let g = &groups_doc(&out)["groups"][0];
                assert_eq!(g["result"], "landed", "{what}: {g}");
                let order: Vec<&str> = g["moved"]
                    .as_array()
                    .expect("moved")
                    .iter()
                    .map(|m| m["repo"].as_str().unwrap_or_default())
                    .collect();
                assert_eq!(order, ["api", "client"], "{what}: {g}");
            } else {
                let ev = events(&out);
                let merged = merged_in_order(&ev);
                assert_eq!(merged, ["v2", "client-v2"], "{what}: {all}");
                for name in conflicted {
                    let (_, plan, _) = repo(&t, name);
                    assert!(
                        named(&ev, "resolved").iter().any(|e| e["plan"] == plan),
                        "{what}: no `resolved` event for {plan}: {all}"
                    );
                }
            }
            for name in ["api", "client"] {
                let (r, plan, file) = repo(&t, name);
                landed(r, plan, file, conflicted.contains(&name), &what);
            }
            no_landing_left(&t);
            no_resolution_left(&t);
        }
    }
}

/// What a `orch merge` or `orch resolve` that did not land leaves: each target where it was,
/// the plan branch where it was, the attempt saved in the plan's repository, the record naming
/// the resolver; the reason contains `cause`.
fn refused(t: &Three, name: &str, driver: &str, cause: &str, how: &str) {
    let (r, plan, _) = repo(t, name);
    let branch = format!("plan/{plan}");
    let (before, tip) = (mains(t), r.rev(&branch));
    let (code, out, err) = match driver {
        "resolve" => t.home.run(&["resolve", plan, "--json"]),
        _ => t.home.run(&["merge", "--json"]),
    };
    let all = format!("{out}\n{err}");
    assert_eq!(code, 5, "{how}: {all}");
    let reason = if driver == "resolve" {
        let v: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v["result"], "resolve_failed", "{how}: {v}");
        v["reason"].as_str().unwrap_or_default().to_string()
    } else {
        let g = &groups_doc(&out)["groups"][0];
        assert_eq!(g["result"], "not-landed", "{how}: {g}");
        assert_eq!(g["conflict"]["plan"], plan, "{how}: {g}");
        let rec = record(r, plan);
        assert_eq!(rec["state"], "conflict", "{how}: {rec}");
        assert_eq!(rec["resolvedBy"], "fixer", "{how}: {rec}");
        g["reason"].as_str().unwrap_or_default().to_string()
    };
    assert!(reason.contains(cause), "{how}: {reason}");
    assert_eq!(mains(t), before, "{how}: a target moved");
    assert_eq!(r.rev(&branch), tip, "{how}: the plan branch moved");
    let saved = r.refs_under(&format!("refs/orch/attempts/{plan}/resolve/"));
    assert_eq!(saved.len(), 1, "{how}: {saved:?}");
    assert!(
        t.home.refs_under("refs/orch/attempts/").is_empty(),
        "{how}: an attempt saved in the home repository"
    );
    no_landing_left(t);
    no_resolution_left(t);
}

/// A resolver that leaves git's conflict markers lands nothing: through `orch merge` and `orch
/// resolve`, the conflict in api and in client, sandbox on and off (the gate is orch's).
/// Seen failing on main: no resolver ran (the group was refused as a conflict; `orch resolve`
/// refused the plan).
#[test]
fn a_resolver_that_leaves_conflict_markers_lands_nothing() {
    for sandbox in sandboxes() {
        for (name, driver) in [("api", "merge"), ("client", "resolve"), ("client", "merge")] {
            let how = format!("sandbox {sandbox}, {name}, {driver}");
            let (t, _journal) = finished(&["marker"], sandbox, "");
            conflict_in(&t, name);
            let (_, _, file) = repo(&t, name);
            refused(
                &t,
                name,
                driver,
                &format!("conflict marker in `{file}`"),
                &how,
            );
        }
    }
}

/// A resolver that changes what a later run trusts in its own repository lands nothing: a
/// client's settings file, `.gitmodules`, a link at a client's settings path, its
/// repository's `verify` script; each through `orch merge` or `orch resolve`, sandbox on and
/// off (the gate is orch's). Seen failing on main: no resolver ran.
#[test]
fn a_resolver_that_changes_what_its_repository_trusts_lands_nothing() {
    let elsewhere = tempfile::tempdir().expect("dir");
    let target = elsewhere.path().join("secret.txt");
    std::fs::write(&target, "the user's secret\n").expect("secret");
    let target = target.display().to_string();
    let kinds: [(&str, &str, &str); 4] = [
        ("settings", ".claude/settings.json", "merge"),
        ("gitmodules", ".gitmodules", "resolve"),
        ("link", ".mcp.json", "merge"),
        ("script", "ci/verify.sh", "resolve"),
    ];
    for sandbox in sandboxes() {
        for (mode, path, driver) in kinds {
            let how = format!("sandbox {sandbox}, {mode}, {driver}");
            let (t, _journal) = finished(&[mode, &target], sandbox, "");
            conflict_in(&t, "api");
            refused(
                &t,
                "api",
                driver,
                &format!("changed `{path}`, which is protected"),
                &how,
            );
            // Nothing of it is on a branch or tag of api (the saved attempt holds it).
            let all = t
                .api
                .git(&["log", "--branches", "--tags", "-p", "--format=%H"]);
            assert!(!all.contains("hostile"), "{how}");
            assert!(
                !t.api.git_ok(&["cat-file", "-e", &format!("main:{path}")]) || mode == "script",
                "{how}"
            );
            if mode == "script" {
                let text = t.api.git(&["show", "main:ci/verify.sh"]);
                assert_eq!(text.trim(), "exit 0", "{how}");
            }
            assert_eq!(
                std::fs::read_to_string(&target).expect("secret"),
                "the user's secret\n"
            );
        }
    }
}

/// Whether `path` (in a checkout) holds the word `hostile`.
fn hostile_in(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|s| s.contains("hostile"))
}

/// A resolver of client's plan that writes into the api repository's checkout, the api plan's
/// worktree and the home repository's checkout: confined, it cannot (each file there stays as
/// it was, Landlock's rule); unconfined (`sandbox = "off"`) its files are there, and in both
/// cases the group lands with nothing of them (orch lands what it built from the branches,
/// never a checkout's files). Seen failing on main: no resolver ran (the group was refused as
/// a conflict).
#[test]
fn a_resolver_that_writes_another_repository_or_the_home_one_lands_nothing_of_it() {
    for sandbox in sandboxes() {
        for (place, pick) in [
            ("api's checkout and home", 0),
            ("api's worktree and home", 1),
        ] {
            let how = format!("sandbox {sandbox}, {place}");
            // The fixer's arguments: paths known before the repositories exist, linked to the
            // real ones once they do.
            let links = tempfile::tempdir().expect("links");
            let (a, b) = (links.path().join("a"), links.path().join("b"));
            let (t, _journal) = finished(
                &["write", &a.display().to_string(), &b.display().to_string()],
                sandbox,
                "",
            );
            let (first, second) = match pick {
                0 => (t.api.root().to_path_buf(), t.home.root().to_path_buf()),
                _ => (t.api.worktree("v2"), t.home.root().to_path_buf()),
            };
            std::os::unix::fs::symlink(&first, &a).expect("link a");
            std::os::unix::fs::symlink(&second, &b).expect("link b");
            conflict_in(&t, "client");
            let snapshot = |p: &Path| {
                ["plans.toml", "README.md", "planted.txt"].map(|f| std::fs::read(p.join(f)).ok())
            };
            let (sa, sb) = (snapshot(&first), snapshot(&second));
            let (code, out, err) = t.home.run(&["merge", "--json"]);
            let g = &groups_doc(&out)["groups"][0];
            assert_eq!(g["result"], "landed", "{how}: {g}\n{err}");
            // Unconfined, its writes made the home checkout dirty: the home repository's own
            // plan is then refused (exit 4), as for any uncommitted change there.
            assert!(
                code == 0 || (sandbox == "off" && code == 4 && err.contains("uncommitted")),
                "{how}: {code}: {out}\n{err}"
            );
            if sandbox == "on" {
                assert_eq!(snapshot(&first), sa, "{how}: {} written", first.display());
                assert_eq!(snapshot(&second), sb, "{how}: {} written", second.display());
                for d in [&first, &second] {
                    assert!(!hostile_in(&d.join("plans.toml")), "{how}");
                    assert!(!d.join("planted.txt").exists(), "{how}");
                }
            } else {
                // Unconfined, it could: the test would prove nothing if it had not.
                assert!(first.join("planted.txt").exists(), "{how}");
                assert!(second.join("planted.txt").exists(), "{how}");
            }
            landed(&t.api, "v2", "v2.txt", false, &how);
            landed(&t.client, "client-v2", "client-v2.txt", true, &how);
            for r in [&t.api, &t.client, &t.home] {
                let all = r.git(&["log", "--branches", "--tags", "-p", "--format=%H"]);
                assert!(!all.contains("hostile"), "{how}: {all}");
                assert!(
                    !r.git_ok(&["cat-file", "-e", "main:planted.txt"]),
                    "{how}: planted.txt landed"
                );
            }
        }
    }
}

/// A resolver of client's plan that commits on another plan of its group (in api's worktree)
/// and moves `main` of a repository of the group (api's, or client's own): confined, none of
/// it works and the group lands; unconfined (`sandbox = "off"`), orch sees a ref of the group
/// that moved while the resolver ran and lands nothing (orch's own rule). Seen failing on main:
/// no resolver ran (the group was refused as a conflict).
#[test]
fn a_resolver_that_moves_refs_of_its_group_lands_nothing() {
    for sandbox in sandboxes() {
        for moved in ["api", "client"] {
            let how = format!("sandbox {sandbox}, moves {moved} main");
            let links = tempfile::tempdir().expect("links");
            let (a, b) = (links.path().join("a"), links.path().join("b"));
            let (t, _journal) = finished(
                &["commit", &a.display().to_string(), &b.display().to_string()],
                sandbox,
                "",
            );
            let (mr, _, _) = repo(&t, moved);
            std::os::unix::fs::symlink(t.api.worktree("v2"), &a).expect("link a");
            std::os::unix::fs::symlink(mr.root(), &b).expect("link b");
            conflict_in(&t, "client");
            let (api_main, client_main) = mains(&t);
            let v2_tip = t.api.rev("plan/v2");
            let client_tip = t.client.rev("plan/client-v2");
            let (code, out, err) = t.home.run(&["merge", "--json"]);
            let all = format!("{out}\n{err}");
            if sandbox == "on" {
                assert_eq!(code, 0, "{how}: {all}");
                assert_eq!(t.api.rev("plan/v2"), v2_tip, "{how}: plan/v2 moved");
                landed(&t.api, "v2", "v2.txt", false, &how);
                landed(&t.client, "client-v2", "client-v2.txt", true, &how);
                for r in [&t.api, &t.client] {
                    let log = r.git(&["log", "--format=%s", "main"]);
                    assert!(!log.lines().any(|l| l == "hostile"), "{how}: {log}");
                }
            } else {
                assert_eq!(code, 5, "{how}: {all}");
                let g = &groups_doc(&out)["groups"][0];
                assert_eq!(g["result"], "not-landed", "{how}: {g}");
                let reason = g["reason"].as_str().unwrap_or_default();
                assert!(
                    reason.contains("moved while the resolver of plan `client-v2` ran")
                        && reason.contains("nothing was landed"),
                    "{how}: {reason}"
                );
                // orch moved no target: each is where it was or where the resolver put it,
                // never a landing of the group.
                for (r, was, tip) in [
                    (&t.api, &api_main, &v2_tip),
                    (&t.client, &client_main, &client_tip),
                ] {
                    let now = r.rev("main");
                    let by_resolver = r.git(&["show", "-s", "--format=%s", &now]) == "hostile";
                    assert!(now == *was || by_resolver, "{how}: main moved by orch");
                    assert!(
                        !r.git_ok(&["merge-base", "--is-ancestor", tip, "main"]),
                        "{how}: a plan landed"
                    );
                }
                no_landing_left(&t);
            }
            no_resolution_left(&t);
        }
    }
}

/// A resolution does not land a group by itself: with `verify_all` red on the combination, the
/// resolution stays on the plan's branch (a merge saying who resolved it) and no target moves;
/// the conflict in api and in client. Seen failing on main: the conflict was never handed to
/// the resolver (no resolution on the branch).
#[test]
fn a_resolved_group_still_lands_only_when_verify_all_passes() {
    for name in ["api", "client"] {
        let how = format!("conflict in {name}");
        let (t, _journal) = finished(
            &["ok"],
            "off",
            "verify_all = [\"sh\", \"-c\", \"exit 3\"]\n",
        );
        conflict_in(&t, name);
        let (r, plan, _) = repo(&t, name);
        let before = mains(&t);
        let (code, out, err) = t.home.run(&["merge", "--json"]);
        assert_eq!(code, 5, "{how}: {out}\n{err}");
        let g = &groups_doc(&out)["groups"][0];
        assert_eq!(g["result"], "not-landed", "{how}: {g}");
        let reason = g["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("verify_all failed on the combination"),
            "{how}: {reason}"
        );
        assert_eq!(mains(&t), before, "{how}: a target moved");
        let msg = r.git(&["show", "-s", "--format=%B", &format!("plan/{plan}")]);
        assert!(msg.contains("Resolved-by: fixer"), "{how}: {msg}");
        assert_eq!(record(r, plan)["state"], "verify_failed", "{how}");
        no_landing_left(&t);
        no_resolution_left(&t);
    }
}
