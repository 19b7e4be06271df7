//! `orch sync` end to end: plans run by a real `orch up`, then a commit added to the upstream
//! plan's branch by hand, and what the dependent plan's branch, worktree and status file hold.

mod support;

use serde_json::Value;
use support::{Repo, fixtures, toml_array};

const AUTH: &str =
    "# Auth\n\n## Phase 1: Core\n- [ ] 1.1 Sessions\n\n## Phase 2: More\n- [ ] 2.1 Tokens\n";
const API: &str = "# Api\n\n## Phase 1: Work\n- [ ] 1.1 Endpoints\n";

/// `auth` and `api` (waiting on `auth:1`), both run to the end by `orch up`.
fn finished() -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    let ok = fixtures().join("ok.sh");
    let mut manifest = format!(
        "[defaults]\nagent = \"ok\"\nmax_agents = 2\n\n[agents.ok]\ncommand = {}\n",
        toml_array(&["sh", ok.to_str().expect("utf8"), "/dev/null"])
    );
    for (name, text, extra) in [
        ("auth", AUTH, ""),
        ("api", API, "depends_on = [\"auth:1\"]\n"),
    ] {
        repo.write(&format!("docs/plans/{name}.md"), text);
        manifest.push_str(&format!(
            "\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\n{extra}"
        ));
    }
    repo.write("plans.toml", &manifest);
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "orch up failed\nstdout:\n{out}\nstderr:\n{err}");
    repo
}

/// Commits `rel` = `text` on `auth`'s branch, in its worktree; returns the new tip.
fn commit_on_auth(repo: &Repo, rel: &str, text: &str) -> String {
    let wt = repo.root().join(".orch/worktrees/auth");
    std::fs::write(wt.join(rel), text).expect("write");
    repo.git_at(&wt, &["add", "-A"]);
    repo.git_at(
        &wt,
        &["commit", "-q", "-m", "auth: a fix after api started"],
    );
    repo.rev("plan/auth")
}

fn status(repo: &Repo, plan: &str) -> Value {
    serde_json::from_slice(&repo.read(&format!(".orch/state/{plan}/status.json"))).expect("status")
}

#[test]
fn a_commit_added_upstream_reaches_the_dependent_plan_as_a_merge_commit() {
    let repo = finished();
    let api_before = repo.rev("plan/api");
    let fix = commit_on_auth(&repo, "fix.txt", "the fix\n");
    assert!(!repo.git_ok(&["merge-base", "--is-ancestor", &fix, "plan/api"]));

    let (code, out, err) = repo.run(&["sync"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let api = repo.rev("plan/api");
    assert_eq!(
        repo.rev("plan/api^1"),
        api_before,
        "first parent: api as it was"
    );
    assert_eq!(repo.rev("plan/api^2"), fix, "second parent: auth's tip");
    assert!(
        out.contains(&format!(
            "api: upstream_merged `auth` (plan/auth at {})",
            &fix[..10]
        )),
        "{out}"
    );
    // The worktree has it, and is clean.
    let wt = repo.root().join(".orch/worktrees/api");
    assert_eq!(
        std::fs::read_to_string(wt.join("fix.txt")).expect("fix.txt"),
        "the fix\n"
    );
    assert_eq!(repo.git_at(&wt, &["status", "--porcelain"]), "");
    // The status file records which auth commit api contains.
    let up = &status(&repo, "api")["orchUpstream"]["auth"];
    assert_eq!(up["commit"], fix.as_str());
    assert_eq!(up["branch"], "plan/auth");
    assert_eq!(up["mergeCommit"], api.as_str());

    // Again: nothing new to merge, nothing changes.
    let (code, out, err) = repo.run(&["sync", "api", "--json"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["plans"][0]["outcome"], "up_to_date");
    assert_eq!(v["plans"][0]["merged"][0]["commit"], Value::Null);
    assert_eq!(repo.rev("plan/api"), api);
    assert_eq!(
        status(&repo, "api")["orchUpstream"]["auth"]["mergeCommit"],
        api.as_str()
    );
}

#[test]
fn a_conflicting_upstream_commit_changes_nothing_and_exits_as_a_merge_conflict() {
    let repo = finished();
    // api's agent wrote api.txt; auth now adds another api.txt.
    commit_on_auth(&repo, "api.txt", "auth's idea of api.txt\n");
    let refs = repo.git(&["for-each-ref"]);
    let wt = repo.root().join(".orch/worktrees/api");
    let file = std::fs::read(wt.join("api.txt")).expect("api.txt");
    let status_before = repo.read(".orch/state/api/status.json");

    let (code, out, err) = repo.run(&["sync", "api"]);
    assert_eq!(code, 5, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("api: conflict: merging `auth`"), "{out}");
    assert!(
        out.contains("`api.txt`") && out.contains("nothing was changed"),
        "{out}"
    );
    assert_eq!(repo.git(&["for-each-ref"]), refs, "no ref moved");
    assert_eq!(std::fs::read(wt.join("api.txt")).expect("api.txt"), file);
    assert_eq!(repo.git_at(&wt, &["status", "--porcelain"]), "");
    assert_eq!(repo.read(".orch/state/api/status.json"), status_before);
}

#[test]
fn plans_without_upstreams_or_unknown_names() {
    let repo = finished();
    let (code, out, err) = repo.run(&["sync", "auth"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("auth: skipped: depends on no other plan"),
        "{out}"
    );
    let (code, _out, err) = repo.run(&["sync", "nope"]);
    assert_eq!(code, 2, "{err}");
}
