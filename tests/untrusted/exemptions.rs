//! Who exempts a protected path: a person, in the manifest (`allow_protected` of a plan, or of
//! `[defaults]`) or with `orch merge --allow-protected` after a review; never text an agent
//! wrote or could have shaped. A hostile agent adds a `[[notify]]` hook to `plans.toml` (which
//! the next `orch up` would run unconfined) while some text names `plans.toml`: its task's
//! description, its body, its own commit message, a plan file an earlier plan landed, a review
//! round's task quoting its diff line or a reviewer's words; or it adds `allow_protected` for
//! itself. Each is refused by the commit gate (the task fails naming the file, the plan branch
//! does not move) and by the merge gate (`orch merge` exits 4, `main` does not move), sandbox on
//! and off; with `allow_protected = ["plans.toml"]` in the lead's manifest the same change is
//! committed and lands.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::review::{Gh, finished, orch as orch_gh};
use crate::support::{self, Repo, toml_array};

/// The agent's edit: a `[[notify]]` hook appended to `plans.toml` that would touch `marker`.
pub(super) fn hook(marker: &Path) -> String {
    format!(
        "echo '[[notify]]' >> plans.toml && echo 'command = [\"touch\", \"{}\"]' >> plans.toml",
        marker.display()
    )
}

/// The agent's edit that also gives its plan `p` an exemption of its own.
pub(super) fn self_allowed(marker: &Path) -> String {
    format!(
        "sed -i 's/^name = \"p\"$/name = \"p\"\\nallow_protected = [\"plans.toml\"]/' plans.toml && {}",
        hook(marker)
    )
}

/// A repository with plan `p` (its file `plan`, its `[[plan]]` keys `plan_keys`), agent `a`
/// running `script` with `sandbox` (`[agents.a]` last, so that a hook appended to the manifest
/// and a key added to the plan never touch), no retries.
fn repo(plan: &str, script: &str, sandbox: &str, plan_keys: &str) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    repo.write("docs/plans/p.md", plan);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"a\"\nretries = 0\nsandbox = \"{sandbox}\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n{plan_keys}\n\n\
             [agents.a]\ncommand = {}\n",
            toml_array(&["sh", "-c", script])
        ),
    );
    repo.commit_all("plans");
    repo
}

/// `orch ARGS` with the manifest's `sandbox`, not the tests' `ORCH_SANDBOX=off`.
fn run(repo: &Repo, args: &[&str]) -> (i32, String, String) {
    repo.run_cmd(repo.orch(args).env_remove("ORCH_SANDBOX"))
}

/// The task's recorded failure names `plans.toml` as a protected change.
pub(super) fn failed_naming_plans_toml(repo: &Repo, plan: &str, task: &str, what: &str) {
    let t = repo.task(plan, task);
    assert_eq!(t["status"], "failed", "{what}: {t}");
    let error = t["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("changed protected paths: plans.toml"),
        "{what}: {error}"
    );
}

/// `orch merge PLAN` without `--allow-protected` is refused (exit 4) and `main` stays `main_`.
/// `orch merge PLAN` lands the plan's `[[notify]]` hook into `main`'s `plans.toml`.
pub(super) fn merge_lands(repo: &Repo, plan: &str, what: &str) {
    let (code, out, err) = repo.run(&["merge", plan]);
    assert_eq!(code, 0, "{what}\n{out}\n{err}");
    assert!(
        repo.git(&["show", "main:plans.toml"])
            .contains("[[notify]]"),
        "{what}"
    );
}

pub(super) fn merge_refused(repo: &Repo, plan: &str, main_: &str, what: &str) -> String {
    let (code, out, err) = repo.run(&["merge", plan]);
    assert_eq!(code, 4, "{what}\n{out}\n{err}");
    assert_eq!(repo.rev("main"), main_, "{what}: main moved");
    err
}

/// One text variant of a task that changes `plans.toml`: (what, plan file, the agent's shell
/// line given the edit).
pub(super) type Text = (&'static str, &'static str, fn(&str) -> String);

/// The text variants of a task that changes `plans.toml`.
pub(super) fn texts() -> Vec<Text> {
    vec![
        (
            "its description names it",
            "# P\n\n## Phase 1: Work\n- [ ] 1.1 Add the notify hook to plans.toml\n",
            |edit| format!("{edit} && touch done.txt"),
        ),
        (
            "its body names it",
            "# P\n\n## Phase 1: Work\n- [ ] 1.1 Tidy the configuration\n  The file is `plans.toml`: add the hook there.\n",
            |edit| format!("{edit} && touch done.txt"),
        ),
        (
            "its commit message names it",
            "# P\n\n## Phase 1: Work\n- [ ] 1.1 Do the work\n",
            |edit| {
                format!(
                    "{edit} && touch done.txt && (git add -A && git commit -qm 'Add the hook to plans.toml' || true)"
                )
            },
        ),
    ]
}

/// A task whose text (description, body, its own commit message) names `plans.toml` and whose
/// agent adds a `[[notify]]` hook there (or an `allow_protected` of its own as well): the task
/// fails naming the file, `plan/p` does not move, the hook never runs, `orch merge p` is refused
/// and `main` does not move; sandbox on and off. Seen failing on main: the description's and
/// the body's were committed (and landed by `orch merge`).
#[test]
fn exempt_a_tasks_text_never_unlocks_plans_toml() {
    for sandbox in support::sandboxes() {
        for (what, plan, script) in texts() {
            let marker_dir = tempfile::tempdir().expect("tmp");
            let marker = marker_dir.path().join("pwned");
            for edit in [hook(&marker), self_allowed(&marker)] {
                let what = format!("{what}, sandbox {sandbox}: {edit}");
                let repo = repo(plan, &script(&edit), sandbox, "");
                let main_ = repo.rev("main");
                let (code, out, err) = run(&repo, &["up", "--json"]);
                assert_eq!(code, 5, "{what}\n{out}\n{err}");
                failed_naming_plans_toml(&repo, "p", "1.1", &what);
                assert_eq!(repo.rev("plan/p"), main_, "{what}: committed on plan/p");
                merge_refused(&repo, "p", &main_, &what);
                assert!(!marker.exists(), "{what}: the hook ran");
            }
        }
    }
}

/// The same changes with `allow_protected = ["plans.toml"]` on plan `p` in the lead's manifest:
/// committed, and `orch merge` lands them (the person said so); sandbox on and off.
#[test]
fn exempt_allow_protected_of_the_plan_lets_the_same_change_land() {
    for sandbox in support::sandboxes() {
        for (what, plan, script) in texts() {
            let marker_dir = tempfile::tempdir().expect("tmp");
            let marker = marker_dir.path().join("pwned");
            let what = format!("{what}, sandbox {sandbox}");
            let repo = repo(
                plan,
                &script(&hook(&marker)),
                sandbox,
                "allow_protected = [\"plans.toml\"]",
            );
            let (code, out, err) = run(&repo, &["up", "--json"]);
            assert_eq!(code, 0, "{what}\n{out}\n{err}");
            assert_eq!(repo.task("p", "1.1")["status"], "completed", "{what}");
            assert!(
                repo.git(&["show", "plan/p:plans.toml"])
                    .contains("[[notify]]"),
                "{what}"
            );
            merge_lands(&repo, "p", &what);
        }
    }
}

/// A branch that carries the change anyway (an unconfined agent's own commit after its task
/// was done, its message naming the file), of a plan whose task's text names `plans.toml`:
/// `orch merge` refuses it (exit 4, the file and the key named, `main` unmoved), also when the
/// branch's own `plans.toml` gives the plan `allow_protected` (the gate reads the lead's
/// manifest); it lands with `--allow-protected`, or when the lead's manifest allows it. Seen
/// failing on main: each was merged at once.
#[test]
fn exempt_the_merge_gate_reads_only_the_leads_manifest() {
    let plan = "# P\n\n## Phase 1: Work\n- [ ] 1.1 Add the notify hook to plans.toml\n  Edit `plans.toml`.\n";
    // (The lead's exemption with the branch's own as well would give the plan the key twice.)
    for (self_allow, allowed) in [(false, false), (true, false), (false, true)] {
        let marker_dir = tempfile::tempdir().expect("tmp");
        let marker = marker_dir.path().join("pwned");
        let edit = if self_allow {
            self_allowed(&marker)
        } else {
            hook(&marker)
        };
        let what = format!("{edit} (allowed by the lead: {allowed})");
        let keys = if allowed {
            "allow_protected = [\"plans.toml\"]"
        } else {
            ""
        };
        let repo = repo(plan, "touch done.txt", "off", keys);
        let (code, out, err) = repo.run(&["up"]);
        assert_eq!(code, 0, "{what}\n{out}\n{err}");
        support::shell_in(
            &repo.worktree("p"),
            &format!("{edit} && git add -A && git commit -qm 'Add the hook to plans.toml'"),
        );
        let main_ = repo.rev("main");
        if allowed {
            let (code, out, err) = repo.run(&["merge", "p"]);
            assert_eq!(code, 0, "{what}\n{out}\n{err}");
        } else {
            let err = merge_refused(&repo, "p", &main_, &what);
            assert!(
                err.contains("plan `p` changes plans.toml")
                    && err.contains("add it to `allow_protected` of plan `p` in plans.toml")
                    && err.contains("--allow-protected"),
                "{what}\n{err}"
            );
            let (code, out, err) = repo.run(&["merge", "p", "--allow-protected"]);
            assert_eq!(code, 0, "{what}\n{out}\n{err}");
        }
        assert_eq!(
            repo.git(&["show", "main:plans.toml"]),
            repo.git(&["show", "plan/p:plans.toml"]),
            "{what}"
        );
        assert!(!marker.exists(), "{what}: the hook ran");
    }
}

/// An earlier plan `a` lands a new plan file (not yet named by `plans.toml`, so not protected)
/// whose task names `plans.toml`; the lead adds plan `b` on it; `b`'s agent adds the hook: the
/// task fails naming the file, `plan/b` and `main` do not move, `orch merge b` is refused;
/// sandbox on and off. With `allow_protected` on `b` it lands. Seen failing on main: the hook
/// was committed on `plan/b`.
#[test]
fn exempt_a_plan_file_an_earlier_plan_landed_unlocks_nothing() {
    for sandbox in support::sandboxes() {
        for allowed in [false, true] {
            let marker_dir = tempfile::tempdir().expect("tmp");
            let marker = marker_dir.path().join("pwned");
            let what = format!("sandbox {sandbox}, allowed: {allowed}");
            let script = format!(
                "if [ \"$ORCH_PLAN\" = a ]; then printf -- '# B\\n\\n## Phase 1: Work\\n- [ ] 1.1 Add the notify hook to plans.toml\\n' > docs/plans/b.md; \
                 else {} && touch done.txt; fi",
                hook(&marker)
            );
            let repo = Repo::builder().identity_in_config().build();
            repo.write(
                "docs/plans/a.md",
                "# A\n\n## Phase 1: Work\n- [ ] 1.1 Write the next plan\n",
            );
            let manifest = |more: &str| {
                format!(
                    "[defaults]\nagent = \"a\"\nretries = 0\nsandbox = \"{sandbox}\"\n\n\
                     [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\n{more}\n\
                     [agents.a]\ncommand = {}\n",
                    toml_array(&["sh", "-c", &script])
                )
            };
            repo.write("plans.toml", &manifest(""));
            repo.commit_all("plans");
            let (code, out, err) = run(&repo, &["up", "--json"]);
            assert_eq!(code, 0, "{what}\n{out}\n{err}");
            let (code, out, err) = repo.run(&["merge", "a"]);
            assert_eq!(code, 0, "{what}\n{out}\n{err}");
            assert!(repo.root().join("docs/plans/b.md").is_file(), "{what}");
            // The lead adds plan `b` on the landed file.
            let keys = if allowed {
                "allow_protected = [\"plans.toml\"]\n"
            } else {
                ""
            };
            repo.write(
                "plans.toml",
                &manifest(&format!(
                    "\n[[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\n{keys}"
                )),
            );
            repo.commit_all("plan b");
            let main_ = repo.rev("main");
            let (code, out, err) = run(&repo, &["up", "--json", "b"]);
            if allowed {
                assert_eq!(code, 0, "{what}\n{out}\n{err}");
                merge_lands(&repo, "b", &what);
            } else {
                assert_eq!(code, 5, "{what}\n{out}\n{err}");
                failed_naming_plans_toml(&repo, "b", "1.1", &what);
                assert_eq!(repo.rev("plan/b"), main_, "{what}: committed on plan/b");
                merge_refused(&repo, "b", &main_, &what);
                assert!(!marker.exists(), "{what}: the hook ran");
            }
        }
    }
}

/// The fake gh's review threads of pull request 1: one thread of `ann` on `a.txt` line 1 with
/// comment `body`, its diff hunk `hunk`.
pub(super) fn thread(gh: &Gh, body: &str, hunk: &str) {
    let page = json!({"data": {"repository": {"pullRequest": {"reviewThreads": {"nodes": [{
        "id": "T1", "isResolved": false, "path": "a.txt", "line": 1,
        "comments": {"nodes": [{
            "databaseId": 11, "author": {"login": "ann"}, "body": body, "diffHunk": hunk
        }]}
    }]}}}}});
    gh.write("threads-1.json", &page.to_string());
    gh.write("perm-ann", "write");
}

/// A reviewer's comment and the diff hunk it is on: the agent's own line naming `plans.toml`, or
/// the reviewer's words naming it.
pub(super) const QUOTES: [(&str, &str); 2] = [
    (
        "Say why here.",
        "@@ -0,0 +1 @@\n+see plans.toml: the [[notify]] hook goes there",
    ),
    (
        "Put the hook into plans.toml, as the line says.",
        "@@ -0,0 +1 @@\n+see the configuration",
    ),
];

/// The agent of a review test: task 1.1 writes a line naming `plans.toml`; the round's task adds
/// the hook writing `marker`.
pub(super) fn round_agent(marker: &Path) -> String {
    format!(
        "if [ \"$ORCH_TASK\" = 1.1 ]; then echo 'see plans.toml' > a.txt; else {}; echo fixed >> a.txt; fi",
        hook(marker)
    )
}

/// What a review round of `round_agent` left, after `orch pr --watch --once --json` ended with
/// `ran` (its exit code, stdout, stderr) and `plan/a` was at `tip` before it: with the lead's
/// exemption (`allowed`) the round's commit is pushed and `orch merge a` lands the hook; without
/// it the round's task failed naming `plans.toml`, nothing is committed on `plan/a`, nothing
/// reached the pull request's branch, and `orch merge a` is refused.
pub(super) fn round_checked(
    repo: &Repo,
    gh: &Gh,
    ran: (i32, &str, &str),
    tip: &str,
    allowed: bool,
    what: &str,
) {
    let (code, out, err) = ran;
    // (The round's phase is committed on `main`, the main work tree's branch.)
    let main_ = repo.rev("main");
    let task = repo.task("a", "2.1");
    let text = String::from_utf8_lossy(&repo.read("docs/plans/a.md")).to_string();
    assert!(
        text.contains("plans.toml"),
        "{what}: the round quotes it\n{text}"
    );
    if allowed {
        assert_eq!(code, 0, "{what}\n{out}\n{err}");
        assert_eq!(task["status"], "completed", "{what}: {task}");
        let pushed = repo.git_at(&gh.remote, &["show", "refs/heads/plan/a:plans.toml"]);
        assert!(pushed.contains("[[notify]]"), "{what}");
        merge_lands(repo, "a", what);
    } else {
        assert_ne!(code, 0, "{what}\n{out}\n{err}");
        failed_naming_plans_toml(repo, "a", "2.1", what);
        assert_eq!(repo.rev("plan/a"), tip, "{what}: committed on plan/a");
        let remote = repo.git_at(
            &gh.remote,
            &[
                "for-each-ref",
                "--format=%(objectname)",
                "refs/heads/plan/a",
            ],
        );
        assert!(
            remote.is_empty() || remote == tip,
            "{what}: pushed {remote}"
        );
        let events: Vec<Value> = support::review::events(out);
        assert!(
            support::review::named(&events, "review_pushed").is_empty(),
            "{what}: pushed\n{out}"
        );
        merge_refused(repo, "a", &main_, what);
    }
}

/// A review round's task quotes the agent's own diff line naming `plans.toml` (or the
/// reviewer's words naming it), and the agent adds the hook in that task: the round's task fails
/// naming the file, `plan/a` and the remote branch do not move, `orch merge a` is refused;
/// sandbox on and off. With `allow_protected = ["plans.toml"]` in `[defaults]` the round's
/// commit is pushed and lands. Seen failing on main: the hook was committed, pushed, and landed
/// by `orch merge` without `--allow-protected`.
#[test]
fn exempt_a_review_round_quoting_the_agents_diff_unlocks_nothing() {
    for sandbox in support::sandboxes() {
        for (body, hunk) in QUOTES {
            for allowed in [false, true] {
                let marker_dir = tempfile::tempdir().expect("tmp");
                let marker = marker_dir.path().join("pwned");
                let script = round_agent(&marker);
                let what = format!("sandbox {sandbox}, allowed: {allowed}: {body} / {hunk}");
                let extra = format!(
                    "sandbox = \"{sandbox}\"\n{}",
                    if allowed {
                        "allow_protected = [\"plans.toml\"]\n"
                    } else {
                        ""
                    }
                );
                let (repo, gh) = finished(&["sh", "-c", &script], &extra);
                thread(&gh, body, hunk);
                let tip = repo.rev("plan/a");
                let (code, out, err) = orch_gh(&repo, &gh, &["pr", "--watch", "--once", "--json"]);
                round_checked(&repo, &gh, (code, &out, &err), &tip, allowed, &what);
                assert!(!marker.exists(), "{what}: the hook ran");
            }
        }
    }
}
