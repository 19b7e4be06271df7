//! `orch sync` end to end: plans run by a real `orch up`, then a commit added to the upstream
//! plan's branch by hand, and what the dependent plan's branch, worktree and status file hold.

use crate::support;

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

/// `auth`, then `api` (waiting on all of `auth`), whose task 1.1 waits for the file `gate`:
/// `orch up --json` runs until api 1.1 has started; `during` runs then (auth is finished), the
/// gate opens, and the run goes to its end. Returns the repository, exit code and every event.
fn up_with_a_commit_during_api(during: impl FnOnce(&Repo)) -> (Repo, i32, Vec<Value>) {
    use support::{read_lines, wait_line, wait_within};
    let repo = Repo::builder().identity_in_config().build();
    let ok = fixtures().join("ok.sh");
    let gated = fixtures().join("gated_report.sh");
    let gate = repo.outside("gate");
    let api =
        "# Api\n\n## Phase 1: Work\n- [ ] 1.1 Endpoints\n- [ ] 1.2 More endpoints (depends: 1.1)\n";
    repo.write("docs/plans/auth.md", AUTH);
    repo.write("docs/plans/api.md", api);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"ok\"\nretries = 0\n\n[agents.ok]\ncommand = {}\n\n[agents.gated]\ncommand = {}\n\n\
             [[plan]]\nname = \"auth\"\nfile = \"docs/plans/auth.md\"\n\n\
             [[plan]]\nname = \"api\"\nfile = \"docs/plans/api.md\"\nagent = \"gated\"\ndepends_on = [\"auth\"]\n",
            toml_array(&["sh", ok.to_str().expect("utf8"), "/dev/null"]),
            toml_array(&[
                "sh",
                gated.to_str().expect("utf8"),
                "/dev/null",
                "0",
                "1.1",
                gate.to_str().expect("utf8"),
            ]),
        ),
    );
    repo.commit_all("plans");
    let mut child = repo.orch(&["up", "--json"]).spawn().expect("orch up");
    let lines = read_lines(&mut child);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |e| {
        e["event"] == "task_started" && e["plan"] == "api" && e["task"] == "1.1"
    });
    during(&repo);
    std::fs::write(&gate, "open").expect("gate");
    let out = wait_within(child, repo.timeout(), "orch up");
    seen.extend(lines.try_iter());
    (repo, out.status.code().unwrap_or(-1), seen)
}

#[test]
fn orch_up_merges_a_new_upstream_commit_at_the_next_task_boundary() {
    let mut fix = String::new();
    let (repo, code, seen) = up_with_a_commit_during_api(|repo| {
        fix = commit_on_auth(repo, "fix.txt", "the fix\n");
    });
    assert_eq!(code, 0, "{seen:#?}");
    // api 1.2 ran on a branch that has the fix: it was merged after 1.1, before 1.2.
    assert!(repo.git_ok(&["merge-base", "--is-ancestor", &fix, "plan/api"]));
    let at = |pred: &dyn Fn(&Value) -> bool| seen.iter().position(pred).expect("event");
    let merged = at(&|e| {
        e["event"] == "upstream_merged"
            && e["plan"] == "api"
            && e["upstream_commit"] == fix.as_str()
    });
    // Reported right after api 1.1's task_finished (the done line it follows; it was reported
    // before it, out of order), before 1.2 starts.
    let done_11 =
        at(&|e| e["event"] == "task_finished" && e["plan"] == "api" && e["task"] == "1.1");
    let start_12 =
        at(&|e| e["event"] == "task_started" && e["plan"] == "api" && e["task"] == "1.2");
    assert!(done_11 < merged && merged < start_12, "{seen:#?}");
    let commit = seen[merged]["commit"]
        .as_str()
        .expect("a merge commit")
        .to_string();
    assert_eq!(repo.rev(&format!("{commit}^2")), fix);
    assert_eq!(
        status(&repo, "api")["orchUpstream"]["auth"]["commit"],
        fix.as_str()
    );
    let wt = repo.root().join(".orch/worktrees/api");
    assert_eq!(
        std::fs::read_to_string(wt.join("fix.txt")).expect("fix.txt"),
        "the fix\n"
    );
}

#[test]
fn orch_up_blocks_a_plan_whose_new_upstream_commit_conflicts_and_changes_nothing() {
    let (repo, code, seen) = up_with_a_commit_during_api(|repo| {
        commit_on_auth(repo, "api.txt", "auth's idea of api.txt\n");
    });
    assert_eq!(code, 5, "{seen:#?}");
    let blocked = seen
        .iter()
        .find(|e| e["event"] == "plan_blocked" && e["plan"] == "api")
        .unwrap_or_else(|| panic!("api blocked: {seen:#?}"));
    let reason = blocked["reason"].as_str().expect("reason");
    assert!(
        reason.contains("conflict") && reason.contains("`api.txt`"),
        "{reason}"
    );
    // api 1.2 never started; the branch holds api 1.1's commit and nothing of auth's new one.
    assert!(
        !seen
            .iter()
            .any(|e| e["event"] == "task_started" && e["task"] == "1.2")
    );
    let tip = repo.rev("plan/api");
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", &tip]),
        "api 1.1: Endpoints"
    );
    let wt = repo.root().join(".orch/worktrees/api");
    assert_eq!(repo.git_at(&wt, &["status", "--porcelain"]), "");
    assert_eq!(
        std::fs::read_to_string(wt.join("api.txt")).expect("api.txt"),
        "1.1\n"
    );
}
