//! A group of plans of several repositories lands only what a later run may trust: each plan's
//! branch is checked in its own repository (its `verify` script, `.gitmodules`, the clients'
//! settings files, a link at one of them or at a directory above one), through `orch merge` and
//! through the merge train, as a plan alone is; a conflict inside a group is refused naming
//! plan, repository and files; each plan's landing is recorded in its status file. Three real
//! repositories side by side (home, api, client), scripted agents, the real binary.

use crate::support;

use serde_json::Value;
use support::three::{Three, mains, no_landing_left, run_manifest};
use support::{Repo, events, named};

/// api's own `verify`: a script of the api repository, so a later landing runs it.
const API_VERIFY: &str = "verify = [\"sh\", \"ci/verify.sh\"]\n";

/// The three repositories with `ci/verify.sh` on api's `main` (api's `verify`), `client-v2`
/// waiting for `v2:1`; `defaults` more lines of `[defaults]`; `v2_plan` the api plan's text
/// (when given); every plan finished by `orch up` (no train).
fn finished(defaults: &str, v2_plan: Option<&str>) -> (Three, tempfile::TempDir) {
    let t = Three::new();
    t.api.write("ci/verify.sh", "exit 0\n");
    t.api.commit_all("api verify");
    let journal = tempfile::tempdir().expect("journal");
    run_manifest(&t, journal.path(), defaults, "depends_on = [\"v2:1\"]\n");
    let toml = std::fs::read_to_string(t.home.root().join("plans.toml")).expect("toml");
    let toml = toml.replacen(
        "name = \"api\"\n",
        &format!("name = \"api\"\n{API_VERIFY}"),
        1,
    );
    t.home.write("plans.toml", &toml);
    if let Some(text) = v2_plan {
        t.home.write("plans/v2.md", text);
    }
    t.home.commit_all("api verify");
    let (code, out, err) = t.home.run(&["up", "--json"]);
    assert_eq!(code, 0, "orch up:\n{out}\n{err}");
    (t, journal)
}

/// The repository a variant's plan changes.
fn repo_of<'a>(t: &'a Three, repo: &str) -> &'a Repo {
    match repo {
        "api" => &t.api,
        "client" => &t.client,
        _ => &t.home,
    }
}

/// A commit on plan `plan`'s branch in its repository, made in its worktree: `edit`, then
/// everything added.
fn sneak(t: &Three, repo: &str, plan: &str, edit: &str) {
    let r = repo_of(t, repo);
    support::shell_in(
        &r.worktree(plan),
        &format!("{edit} && git add -A && git commit -qm tidy"),
    );
}

/// Every target (home's `main` too), as the user sees them.
fn targets(t: &Three) -> (String, String, String) {
    let (api, client) = mains(t);
    (api, client, t.home.rev("main"))
}

/// Changes of files a later run of another repository trusts: (repository, plan, the edit,
/// the path named).
const EDITS: [(&str, &str, &str, &str); 5] = [
    (
        "api",
        "v2",
        "echo 'echo changed; exit 0' > ci/verify.sh",
        "ci/verify.sh",
    ),
    (
        "client",
        "client-v2",
        "printf '[submodule \"x\"]\\n\\tpath = x\\n\\turl = /tmp/x\\n' > .gitmodules",
        ".gitmodules",
    ),
    (
        "client",
        "client-v2",
        "mkdir -p .claude && echo '{\"hooks\":{}}' > .claude/settings.json",
        ".claude/settings.json",
    ),
    ("api", "v2", "echo '{}' > .mcp.json", ".mcp.json"),
    (
        "client",
        "client-v2",
        "mkdir -p .opencode/plugin && echo 'x' > .opencode/plugin/p.js",
        ".opencode/plugin",
    ),
];

/// Links at a protected path or at a directory above one: (repository, plan, the edit, the
/// path named).
const LINKS: [(&str, &str, &str, &str); 3] = [
    (
        "api",
        "v2",
        "echo 'exit 0' > elsewhere.sh && rm ci/verify.sh && ln -s ../elsewhere.sh ci/verify.sh",
        "ci/verify.sh",
    ),
    (
        "api",
        "v2",
        "mkdir -p real && mv ci real/ci && ln -s real/ci ci",
        "ci",
    ),
    (
        "client",
        "client-v2",
        "mkdir -p elsewhere && echo '{}' > elsewhere/settings.json && ln -s elsewhere .claude",
        ".claude",
    ),
];

/// `orch merge` of a group one of whose plans changes, in its own repository, what a later run
/// trusts there with no task naming it: exit 4 before anything moves (every target, the home
/// repository's too), the refusal naming plan, repository and file; `--dry-run` predicts it;
/// with `--allow-protected` (a person reviewed it) the group lands with the change. Seen
/// failing on main: each group landed at once, exit 0.
#[test]
fn orch_merge_refuses_a_group_that_changes_what_another_repository_trusts() {
    for (repo, plan, edit, path) in EDITS {
        let (t, _journal) = finished("", None);
        sneak(&t, repo, plan, edit);
        let before = targets(&t);
        let (code, out, err) = t.home.run(&["merge"]);
        let all = format!("{out}\n{err}");
        assert_eq!(code, 4, "{path}: {all}");
        assert!(
            all.contains(&format!(
                "plan `{plan}` of repository `{repo}` changes {path}"
            )),
            "{path}: the refusal names no plan, repository and file: {all}"
        );
        assert!(all.contains("--allow-protected"), "{all}");
        assert_eq!(targets(&t), before, "{path}: a target moved: {all}");
        no_landing_left(&t);
        // The dry run predicts it, changing nothing.
        let (code, out, err) = t.home.run(&["merge", "--dry-run"]);
        assert_eq!(code, 5, "{path}: {out}{err}");
        assert!(
            out.contains("would refuse") && out.contains(path),
            "{path}: {out}"
        );
        assert_eq!(targets(&t), before);
        // A person reviewed it: the group lands, with the change.
        let (code, out, err) = t.home.run(&["merge", "--allow-protected"]);
        assert_eq!(code, 0, "{path}: {out}{err}");
        let r = repo_of(&t, repo);
        let branch = format!("plan/{plan}");
        assert_eq!(
            r.git(&["ls-tree", "-r", "main", "--", path]),
            r.git(&["ls-tree", "-r", &branch, "--", path]),
            "{path}: not landed with --allow-protected"
        );
        let (api, client, _) = targets(&t);
        assert_ne!(
            (api, client),
            (before.0, before.1),
            "{path}: nothing landed"
        );
        no_landing_left(&t);
    }
}

/// A symbolic link at a protected path of another repository, or at a directory above one, is
/// never landed, `--allow-protected` or not. Seen failing on main: each group landed.
#[test]
fn orch_merge_never_lands_a_link_at_what_another_repository_trusts() {
    for (repo, plan, edit, path) in LINKS {
        let (t, _journal) = finished("", None);
        sneak(&t, repo, plan, edit);
        let before = targets(&t);
        for args in [&["merge"][..], &["merge", "--allow-protected"]] {
            let (code, out, err) = t.home.run(args);
            let all = format!("{out}\n{err}");
            assert_eq!(code, 4, "{path} {args:?}: {all}");
            assert!(
                all.contains("symbolic link at a protected path")
                    && all.contains(&format!("plan `{plan}` of repository `{repo}`: {path}")),
                "{path} {args:?}: {all}"
            );
            assert_eq!(targets(&t), before, "{path} {args:?}: a target moved");
            no_landing_left(&t);
        }
    }
}

/// The plan's `allow_protected` in the lead's manifest lets its branch change the file (in the
/// plan's own repository, api, as in the home one); a link there is still refused. A task whose
/// text names the file exempts nothing: an agent wrote it or could have shaped it. Seen failing
/// on main: the change named only by the task's text landed.
#[test]
fn allow_protected_of_the_plan_lands_the_file_but_never_a_link() {
    let named = "# V2\n\n## Phase 1: Endpoint\n- [ ] 1.1 Add the endpoint and its test in ci/verify.sh\n\n## Phase 2: Docs\n- [ ] 2.1 Document it\n";
    // The task's text names it, nothing allows it: refused, every target unmoved.
    let (t, _journal) = finished("", Some(named));
    sneak(&t, "api", "v2", EDITS[0].2);
    let before = targets(&t);
    let (code, out, err) = t.home.run(&["merge"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        err.contains("plan `v2` of repository `api` changes ci/verify.sh")
            && err.contains("`allow_protected` of plan `v2`"),
        "{err}"
    );
    assert_eq!(targets(&t), before);
    // The lead allows it on plan `v2`.
    let allow = |t: &Three| {
        let toml = std::fs::read_to_string(t.home.root().join("plans.toml")).expect("toml");
        t.home.write(
            "plans.toml",
            &toml.replacen(
                "repo = \"api\"\n",
                "repo = \"api\"\nallow_protected = [\"ci/verify.sh\"]\n",
                1,
            ),
        );
        t.home.commit_all("allow v2 to change ci/verify.sh");
    };
    let (t, _journal) = finished("", None);
    allow(&t);
    sneak(&t, "api", "v2", EDITS[0].2);
    let (code, out, err) = t.home.run(&["merge"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        t.api
            .git(&["show", "main:ci/verify.sh"])
            .contains("changed"),
        "the allowed change did not land"
    );
    let (t, _journal) = finished("", None);
    allow(&t);
    sneak(&t, "api", "v2", LINKS[0].2);
    let before = targets(&t);
    let (code, out, err) = t.home.run(&["merge"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(err.contains("symbolic link at a protected path"), "{err}");
    assert_eq!(targets(&t), before);
}

/// The merge train (`orch up --merge`, `auto_merge`) refuses such a group as `orch merge` does,
/// every target unmoved, each plan of the group reported `refused` with a reason naming plan,
/// repository and file, and for a change a person may land, the `git diff` to review it. Seen
/// failing on main: the train landed the group (later: its reason had no `git diff`).
#[test]
fn the_train_refuses_a_group_that_changes_what_another_repository_trusts() {
    let cases = [EDITS[0], EDITS[2], LINKS[1], LINKS[2]];
    for how in ["--merge", "auto_merge"] {
        for (repo, plan, edit, path) in cases {
            let defaults = if how == "auto_merge" {
                "auto_merge = true\n"
            } else {
                ""
            };
            // The plans finish in a first run without the train; the branch gets its commit;
            // the train of the next run takes the finished plans.
            let (t, _journal) = finished("", None);
            sneak(&t, repo, plan, edit);
            if !defaults.is_empty() {
                let toml = std::fs::read_to_string(t.home.root().join("plans.toml")).expect("toml");
                t.home.write(
                    "plans.toml",
                    &toml.replacen("[defaults]\n", "[defaults]\nauto_merge = true\n", 1),
                );
                t.home.commit_all("auto_merge");
            }
            let before = mains(&t);
            let args: &[&str] = match how {
                "--merge" => &["up", "--merge", "--json"],
                _ => &["up", "--json"],
            };
            let (_, out, err) = t.home.run(args);
            let all = format!("{out}\n{err}");
            let ev = events(&out);
            assert_eq!(mains(&t), before, "{how} {path}: a target moved: {all}");
            no_landing_left(&t);
            for p in ["v2", "client-v2"] {
                let failed = named(&ev, "plan_merge_failed")
                    .into_iter()
                    .find(|e| e["plan"] == p)
                    .unwrap_or_else(|| panic!("{how} {path}: no plan_merge_failed for {p}: {all}"));
                assert_eq!(failed["result"], "refused", "{how} {path}: {failed}");
                let reason = failed["reason"].as_str().unwrap_or_default();
                assert!(
                    reason.contains(&format!("plan `{plan}` of repository `{repo}`"))
                        && reason.contains(path),
                    "{how} {path}: {reason}"
                );
                // A change a person may review and land says how to review it, as `orch
                // merge` does (its hint).
                if EDITS.iter().any(|e| e.3 == path) {
                    let diff = format!(
                        "git -C {} diff main...plan/{plan} -- {path}",
                        repo_of(&t, repo).root().display()
                    );
                    assert!(reason.contains(&diff), "{how} {path}: {reason}");
                }
            }
            assert!(
                !named(&ev, "plan_merged")
                    .iter()
                    .any(|e| e["plan"] == "v2" || e["plan"] == "client-v2"),
                "{how} {path}: {all}"
            );
        }
    }
}

/// The `orchMerge` record of a plan, in its repository's status file.
fn record(r: &Repo, plan: &str) -> Value {
    let path = r.root().join(format!(".orch/state/{plan}/status.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).expect("status json");
    v["orchMerge"].clone()
}

/// A conflict inside a group: nothing lands, the refusal names plan, repository and the files,
/// with where to resolve it; the plan's status file records the conflict. Seen failing on main:
/// the message had no hint and no record was written.
#[test]
fn a_conflict_inside_a_group_names_plan_repository_and_files() {
    let (t, _journal) = finished("", None);
    t.client.write("client-v2.txt", "someone else's line\n");
    t.client.commit_all("meanwhile");
    let before = targets(&t);
    let (code, out, err) = t.home.run(&["merge", "--json"]);
    assert_eq!(code, 5, "{out}{err}");
    assert_eq!(targets(&t).0, before.0, "api moved");
    assert_eq!(targets(&t).1, before.1, "client moved");
    // The groups' document first, then the home repository's plans'.
    let v: Value = serde_json::Deserializer::from_str(&out)
        .into_iter::<Value>()
        .next()
        .expect("a document")
        .expect("json");
    let group = &v["groups"][0];
    assert_eq!(group["result"], "not-landed", "{v}");
    assert_eq!(group["conflict"]["plan"], "client-v2", "{v}");
    assert_eq!(group["conflict"]["repo"], "client", "{v}");
    assert_eq!(
        group["conflict"]["files"],
        serde_json::json!(["client-v2.txt"])
    );
    let reason = group["reason"].as_str().expect("reason");
    assert!(
        reason.contains("plan `client-v2` conflicts with `main` of repository `client`")
            && reason.contains("client-v2.txt")
            && reason.contains("resolve it by hand in")
            && reason.contains("run `orch resolve client-v2`"),
        "{reason}"
    );
    // Where the plan's branch is checked out (its worktree): git checks a branch out in one
    // work tree only, so the repository's own could not take it.
    let worktree = t.client.worktree("client-v2");
    assert!(
        reason.contains(&format!(
            "resolve it by hand in `{}`, where `plan/client-v2` is checked out",
            worktree.display()
        )),
        "{reason}"
    );
    let rec = record(&t.client, "client-v2");
    assert_eq!(rec["state"], "conflict", "{rec}");
    assert_eq!(rec["files"], serde_json::json!(["client-v2.txt"]), "{rec}");
    assert_eq!(rec["target"], "main", "{rec}");
    no_landing_left(&t);
    // The merge train says the same: `conflict` for the plan that conflicts, with its files;
    // its group's other plan is refused, naming it.
    let (_, out, err) = t.home.run(&["up", "--merge", "--json"]);
    let ev = events(&out);
    let failed = |p: &str| {
        named(&ev, "plan_merge_failed")
            .into_iter()
            .find(|e| e["plan"] == p)
            .cloned()
            .unwrap_or_else(|| panic!("no plan_merge_failed for {p}: {out}\n{err}"))
    };
    let conflict = failed("client-v2");
    assert_eq!(conflict["result"], "conflict", "{conflict}");
    let reason = conflict["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("repository `client`") && reason.contains("client-v2.txt"),
        "{reason}"
    );
    let other = failed("v2");
    assert_eq!(other["result"], "refused", "{other}");
    assert!(
        other["reason"]
            .as_str()
            .is_some_and(|r| r.contains("plan `client-v2` conflicts")),
        "{other}"
    );
    assert_eq!(targets(&t).0, before.0, "api moved");
    assert_eq!(targets(&t).1, before.1, "client moved");
}

/// A group's landing writes `orchMerge` into each of its plans' status files, in each plan's
/// own repository: `merged` with that repository's new tip (by `orch merge` and by the
/// train), `verify_failed` with the reason and the log. Seen failing on main: no record.
#[test]
fn a_groups_landing_is_recorded_in_each_plans_status() {
    let (t, _journal) = finished("", None);
    let (code, out, err) = t.home.run(&["merge"]);
    assert_eq!(code, 0, "{out}{err}");
    let (api, client) = mains(&t);
    for (r, plan, tip) in [(&t.api, "v2", &api), (&t.client, "client-v2", &client)] {
        let rec = record(r, plan);
        assert_eq!(rec["state"], "merged", "{plan}: {rec}");
        assert_eq!(rec["commit"], tip.as_str(), "{plan}: {rec}");
        assert_eq!(rec["branch"], format!("plan/{plan}"), "{rec}");
        assert_eq!(rec["branchTip"], r.rev(&format!("plan/{plan}")), "{rec}");
    }

    // Red `verify_all`: each plan records `verify_failed`, the log named.
    let (t, _journal) = finished("verify_all = [\"sh\", \"-c\", \"exit 3\"]\n", None);
    let before = mains(&t);
    let (code, out, err) = t.home.run(&["merge"]);
    assert_eq!(code, 5, "{out}{err}");
    assert_eq!(mains(&t), before);
    for (r, plan) in [(&t.api, "v2"), (&t.client, "client-v2")] {
        let rec = record(r, plan);
        assert_eq!(rec["state"], "verify_failed", "{plan}: {rec}");
        assert!(
            rec["reason"]
                .as_str()
                .is_some_and(|s| s.contains("verify_all failed on the combination")),
            "{rec}"
        );
        let log = rec["log"].as_str().expect("log");
        assert!(log.ends_with("/.land-v2/merge-verify.log"), "{log}");
    }

    // The train records it too.
    let (t, _journal) = finished("", None);
    let toml = std::fs::read_to_string(t.home.root().join("plans.toml")).expect("toml");
    t.home.write(
        "plans.toml",
        &toml.replacen("[defaults]\n", "[defaults]\nauto_merge = true\n", 1),
    );
    t.home.commit_all("auto_merge");
    let (_, out, err) = t.home.run(&["up", "--json"]);
    let (api, client) = mains(&t);
    for (r, plan, tip) in [(&t.api, "v2", &api), (&t.client, "client-v2", &client)] {
        let rec = record(r, plan);
        assert_eq!(rec["state"], "merged", "{plan}: {rec}\n{out}\n{err}");
        assert_eq!(rec["commit"], tip.as_str(), "{plan}: {rec}");
    }
}

/// A plan of the home repository in a group (`land_with`) is checked against what a later run
/// trusts there: `plans.toml`, another plan's file, a prompt template. Seen failing on main:
/// the group landed each.
#[test]
fn a_home_plan_of_a_group_that_changes_the_manifest_is_refused() {
    let edits = [
        ("echo '# more' >> plans.toml", "plans.toml"),
        ("echo '- [ ] 2.2 Also this' >> plans/v2.md", "plans/v2.md"),
        (
            "mkdir -p orch/templates && echo 'Do {{task}}' > orch/templates/task.md",
            "orch/templates/task.md",
        ),
    ];
    for (edit, path) in edits {
        let t = Three::new();
        t.api.write("ci/verify.sh", "exit 0\n");
        t.api.commit_all("api verify");
        let journal = tempfile::tempdir().expect("journal");
        run_manifest(&t, journal.path(), "", "depends_on = [\"v2:1\"]\n");
        let toml = std::fs::read_to_string(t.home.root().join("plans.toml")).expect("toml");
        t.home.write(
            "plans.toml",
            &toml.replacen(
                "file = \"plans/docs.md\"\n",
                "file = \"plans/docs.md\"\nland_with = [\"v2\"]\n",
                1,
            ),
        );
        t.home.commit_all("docs lands with v2");
        let (code, out, err) = t.home.run(&["up", "--json"]);
        assert_eq!(code, 0, "orch up:\n{out}\n{err}");
        sneak(&t, "home", "docs", edit);
        let before = targets(&t);
        let (code, out, err) = t.home.run(&["merge"]);
        let all = format!("{out}\n{err}");
        assert_eq!(code, 4, "{path}: {all}");
        assert!(
            all.contains(&format!("plan `docs` of repository `home` changes {path}")),
            "{path}: {all}"
        );
        assert_eq!(targets(&t), before, "{path}: a target moved: {all}");
        no_landing_left(&t);
    }
}
