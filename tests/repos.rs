//! Several repositories, one manifest: `[[repo]]` tables, a plan's `repo`, `land_with` and
//! `verify_all`, run against the real binary in three real repositories side by side (home, api,
//! client) in one temp dir.

use crate::support;

use support::Repo;
use support::three::{
    PLAN, Three, exists, finished_three, mains, no_landing_left, plan_table, repo_table,
    run_manifest,
};

/// `[defaults]` and one agent: lines 1–5.
const HEAD: &str = "[defaults]\nagent = \"a\"\n\n[agents.a]\ncommand = [\"true\"]\n";

/// Writes `toml` as the home repository's plans.toml with plan files `p`, `q`, `r`, commits,
/// runs `orch check` and asserts exit 2, each of `expect` in its output, and nothing changed in
/// any of the three repositories.
fn refused(three: &Three, toml: &str, expect: &[&str]) {
    for f in ["p", "q", "r"] {
        three.home.write(&format!("plans/{f}.md"), PLAN);
    }
    three.home.write("plans.toml", toml);
    three.home.commit_all("plans");
    let before = three.snapshot();
    let (code, out, err) = three.home.run(&["check"]);
    let all = format!("{out}{err}");
    assert_eq!(code, 2, "orch check:\n{all}\n--- plans.toml:\n{toml}");
    for e in expect {
        assert!(
            all.contains(e),
            "lacks `{e}`:\n{all}\n--- plans.toml:\n{toml}"
        );
    }
    assert!(!all.contains("panicked"), "{all}");
    assert_eq!(three.snapshot(), before, "orch check changed something");
}

#[test]
fn check_accepts_plans_of_three_repositories() {
    let t = Three::new();
    let toml = format!(
        "[defaults]\nverify_all = [\"true\"]\n{}{}{}{}{}{}",
        &HEAD["[defaults]\n".len()..],
        repo_table("api", &Three::rel(&t.api)),
        repo_table("client", &Three::rel(&t.client)),
        plan_table("v2", "p", "repo = \"api\"\n"),
        plan_table(
            "client-v2",
            "q",
            "repo = \"client\"\ndepends_on = [\"v2:1\"]\nland_with = [\"v2\"]\n"
        ),
        plan_table("docs", "r", ""),
    );
    for f in ["p", "q", "r"] {
        t.home.write(&format!("plans/{f}.md"), PLAN);
    }
    t.home.write("plans.toml", &toml);
    t.home.commit_all("plans");
    let (code, out, err) = t.home.run(&["check"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn check_refuses_an_unknown_repository() {
    // Lines: HEAD 1–5, [[repo]] api 7–9, [[plan]] 11–14 (`repo` at 14).
    let t = Three::new();
    for name in ["nope", "API", "client", "api/../api", ""] {
        let toml = format!(
            "{HEAD}{}{}",
            repo_table("api", &Three::rel(&t.api)),
            plan_table("p", "p", &format!("repo = \"{name}\"\n")),
        );
        let what = format!("names unknown repository `{name}`");
        refused(&t, &toml, &["plans.toml:14:8", &what, "`api`"]);
    }
}

#[test]
fn check_refuses_a_path_that_is_not_a_git_repository() {
    let t = Three::new();
    let parent = t.api.root().parent().expect("parent").to_path_buf();
    std::fs::create_dir_all(parent.join("plain")).expect("mkdir");
    std::fs::write(parent.join("a-file"), "x").expect("file");
    std::fs::create_dir_all(t.api.root().join("sub")).expect("mkdir");
    std::fs::write(t.api.root().join("sub/keep"), "x").expect("file");
    let cases = [
        ("../plain".to_string(), "is not a git repository"),
        ("../a-file".to_string(), "is not a directory"),
        ("../missing".to_string(), "does not exist"),
        (
            format!("{}/sub", Three::rel(&t.api)),
            "is not a git repository",
        ),
        (".".to_string(), "is the repository of plans.toml itself"),
    ];
    for (path, why) in cases {
        // The `path` value is at line 9, column 8.
        let toml = format!(
            "{HEAD}{}{}",
            repo_table("api", &path),
            plan_table("p", "p", "repo = \"api\"\n"),
        );
        refused(&t, &toml, &["plans.toml:9:8", why]);
    }
}

#[test]
fn check_refuses_a_cycle_of_repositories() {
    let t = Three::new();
    // api's `v2` waits for client's `c1`, client's `c2` waits for api's `v2`: no plan cycle, but
    // api must land before client and client before api.
    let toml = format!(
        "{HEAD}{}{}{}{}{}",
        repo_table("api", &Three::rel(&t.api)),
        repo_table("client", &Three::rel(&t.client)),
        plan_table("v2", "p", "repo = \"api\"\ndepends_on = [\"c1\"]\n"),
        plan_table("c1", "q", "repo = \"client\"\n"),
        plan_table("c2", "r", "repo = \"client\"\ndepends_on = [\"v2:1\"]\n"),
    );
    // The dependency that closes the cycle, at its line and column (`depends_on` of `v2`).
    refused(
        &t,
        &toml,
        &[
            "plans.toml:19:15",
            "cycle of repositories",
            "`api` waits for `client` waits for `api`",
        ],
    );
    // Three repositories in a ring, through the home repository.
    let toml = format!(
        "{HEAD}{}{}{}{}{}",
        repo_table("api", &Three::rel(&t.api)),
        repo_table("client", &Three::rel(&t.client)),
        plan_table("v2", "p", "repo = \"api\"\ndepends_on = [\"h\"]\n"),
        plan_table("c1", "q", "repo = \"client\"\ndepends_on = [\"v2\"]\n"),
        plan_table("h", "r", "depends_on = [\"c1:1\"]\n"),
    );
    refused(&t, &toml, &["cycle"]);
}

#[test]
fn check_refuses_duplicate_repository_names() {
    let t = Three::new();
    let api = Three::rel(&t.api);
    let client = Three::rel(&t.client);
    let dup = format!(
        "{HEAD}{}{}",
        repo_table("api", &api),
        repo_table("api", &client)
    );
    // The second `name` is at line 12.
    refused(
        &t,
        &dup,
        &[
            "plans.toml:12:8",
            "duplicate repository name `api` (first defined at line 8)",
        ],
    );
    let same_var = format!(
        "{HEAD}{}{}",
        repo_table("web-api", &api),
        repo_table("web_api", &client)
    );
    refused(&t, &same_var, &["plans.toml:12:8", "ORCH_REPO_WEB_API"]);
    let same_path = format!("{HEAD}{}{}", repo_table("api", &api), repo_table("b", &api));
    refused(
        &t,
        &same_path,
        &["plans.toml:13:8", "has the path of repository `api`"],
    );
    let home = format!("{HEAD}{}", repo_table("home", &api));
    refused(&t, &home, &["plans.toml:8:8", "`home`"]);
    let bad_land = format!(
        "{HEAD}{}{}",
        repo_table("api", &api),
        plan_table("p", "p", "repo = \"api\"\nland_with = [\"ghost\"]\n")
    );
    refused(
        &t,
        &bad_land,
        &["plans.toml:15:", "lands with unknown plan `ghost`"],
    );
}

#[test]
fn plans_of_other_repositories_work_where_that_repository_keeps_its_plans() {
    let t = Three::new();
    let journal = tempfile::tempdir().expect("journal");
    run_manifest(&t, journal.path(), "", "");
    let (code, out, err) = t.home.run(&["up", "--json"]);
    assert_eq!(code, 0, "orch up:\n{out}\n{err}");
    // Each plan's branch is in its own repository, and only there.
    for (repo, branch, file) in [
        (&t.api, "plan/v2", "v2.txt"),
        (&t.client, "plan/client-v2", "client-v2.txt"),
        (&t.home, "plan/docs", "docs.txt"),
    ] {
        assert!(exists(repo, branch), "{branch} missing in its repository");
        let text = repo.git(&["show", &format!("{branch}:{file}")]);
        assert!(text.contains("1.1"), "{branch}:{file}: {text}");
        for other in [&t.api, &t.client, &t.home] {
            if !std::ptr::eq(other, repo) {
                assert!(!exists(other, branch), "{branch} in another repository");
            }
        }
    }
    // Worktrees, status files and logs of a plan are in its repository.
    let status = t.api.root().join(".orch/state/v2/status.json");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&status).expect("api status")).expect("json");
    assert_eq!(doc["tasks"][0]["status"], "completed", "{doc}");
    assert!(t.api.root().join(".orch/worktrees/v2").is_dir());
    assert!(t.api.root().join(".orch/logs/v2").is_dir());
    assert!(
        t.client
            .root()
            .join(".orch/state/client-v2/status.json")
            .is_file()
    );
    assert!(!t.home.root().join(".orch/state/v2").exists());
    assert!(!t.home.root().join(".orch/worktrees/v2").exists());
    // The agent of `v2` worked in api's worktree.
    let env = std::fs::read_to_string(journal.path().join("v2-1.1.env")).expect("env");
    let cwd = t.api.root().join(".orch/worktrees/v2");
    assert!(env.contains(&format!("cwd={}", cwd.display())), "{env}");
    // Each plan's block of ports is its own on the machine, whichever repository's registry
    // gave it (red team 14: api's plan and home's were both given the first block).
    let ports: Vec<u32> = ["v2-1.1", "client-v2-1.1", "docs-1.1"]
        .iter()
        .map(|me| {
            let env =
                std::fs::read_to_string(journal.path().join(format!("{me}.env"))).expect("env");
            env.lines()
                .find_map(|l| l.strip_prefix("ORCH_PORT="))
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("{me}: no ORCH_PORT in {env}"))
        })
        .collect();
    for (i, a) in ports.iter().enumerate() {
        for b in &ports[i + 1..] {
            assert!(a + 10 <= *b || b + 10 <= *a, "blocks meet: {ports:?}");
        }
    }
    // The targets did not move (no merge asked), and api's own work tree is untouched.
    assert_eq!(
        t.api
            .git(&["status", "--porcelain", "--untracked-files=no"]),
        ""
    );
    // `orch status` shows each plan with its repository.
    let (code, out, err) = t.home.run(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("status json");
    let repo_of = |name: &str| {
        v["plans"]
            .as_array()
            .expect("plans")
            .iter()
            .find(|p| p["plan"] == name)
            .map(|p| p["repo"].clone())
    };
    assert_eq!(repo_of("v2"), Some("api".into()), "{v}");
    assert_eq!(repo_of("client-v2"), Some("client".into()));
    assert_eq!(repo_of("docs"), Some("home".into()));
    let (_, text, _) = t.home.run(&["status"]);
    assert!(text.contains("v2 [repository api]"), "{text}");
    let (_, graph, _) = t.home.run(&["graph"]);
    assert!(graph.contains("[client]"), "{graph}");
}

/// The task entry `id` of plan `plan`'s status file in repository `r`.
fn entry(r: &Repo, plan: &str, id: &str) -> serde_json::Value {
    let path = r.root().join(format!(".orch/state/{plan}/status.json"));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("status")).expect("json");
    doc["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not in {doc}"))
}

/// `client-v2` waits for phase 1 of `v2` (repository api): it starts once that phase is done,
/// and its agent reads the api change from the read-only checkout `ORCH_REPO_API` names; the
/// agent's attempts to change the checkout (append, create, make a directory, remove, write
/// through a link of its worktree) all fail under the sandbox, and the api repository and the
/// checkout keep the api plan's bytes.
fn cross_repository_dependency(sandbox: &str) {
    let t = Three::new();
    let journal = tempfile::tempdir().expect("journal");
    let journal_path = journal.path().canonicalize().expect("journal");
    let defaults = format!(
        "sandbox = \"{sandbox}\"\nsandbox_write = [\"{}\"]\n",
        journal_path.display()
    );
    run_manifest(&t, &journal_path, &defaults, "depends_on = [\"v2:1\"]\n");
    let (code, out, err) = t.home.run(&["up", "--json"]);
    assert_eq!(code, 0, "orch up:\n{out}\n{err}");
    // The client's task started after the api plan's phase 1 was done.
    let up_done = entry(&t.api, "v2", "1.1")["completedAt"]
        .as_str()
        .map(str::to_string);
    let down_start = entry(&t.client, "client-v2", "1.1")["startedAt"]
        .as_str()
        .map(str::to_string);
    let (up_done, down_start) = (
        up_done.expect("completedAt"),
        down_start.expect("startedAt"),
    );
    assert!(up_done <= down_start, "{up_done} > {down_start}");
    // The agent was told where the api work is, and read it there.
    let checkout = t
        .client
        .root()
        .join(".orch/worktrees/.upstream-client-v2/api");
    let env = std::fs::read_to_string(journal_path.join("client-v2-1.1.env")).expect("env");
    assert!(
        env.contains(&format!("ORCH_REPO_API={}", checkout.display())),
        "{env}"
    );
    let seen = t.client.git(&["show", "plan/client-v2:from-api.txt"]);
    assert!(seen.contains("1.1"), "the client saw: {seen}");
    let prompt =
        std::fs::read_to_string(t.client.root().join(".orch/logs/client-v2/1.1.prompt.md"))
            .expect("prompt");
    assert!(prompt.contains(&checkout.display().to_string()), "{prompt}");
    assert!(prompt.contains("ORCH_REPO_API"), "{prompt}");
    // The api plan's branch is merged nowhere in the client repository: only seen.
    assert!(!exists(&t.client, "plan/v2"));
    let wrote = std::fs::read_to_string(journal_path.join("client-v2-1.1.wrote")).expect("wrote");
    if sandbox == "on" {
        assert_eq!(
            wrote.trim(),
            "no",
            "a confined agent changed the upstream checkout"
        );
        let bytes = std::fs::read_to_string(checkout.join("v2.txt")).expect("checkout");
        assert!(!bytes.contains("hostile"), "{bytes}");
        assert!(!checkout.join("planted.txt").exists());
        assert!(checkout.join("README.md").exists());
    }
    // Whatever the agent did, the api repository's branch holds the api plan's work only.
    let api = t.api.git(&["show", "plan/v2:v2.txt"]);
    assert!(!api.contains("hostile"), "{api}");
    // The checkout is read-only on disk too (for an agent that is not root).
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&checkout)
        .expect("checkout")
        .permissions()
        .mode();
    assert_eq!(mode & 0o222, 0, "checkout writable: {mode:o}");
}

#[test]
fn a_plan_waits_for_another_repository_and_reads_its_work_confined() {
    if !orch::sandbox::supported() {
        eprintln!("skipped: this kernel does not support Landlock");
        return;
    }
    cross_repository_dependency("on");
}

#[test]
fn a_plan_waits_for_another_repository_and_reads_its_work_unconfined() {
    cross_repository_dependency("off");
}

#[test]
fn a_red_verify_all_lands_nothing_and_names_the_combination() {
    // Each way of failing: verify_all red (it lists what it saw, then fails), the verify of one
    // repository red, verify_all that cannot start.
    let cases = [
        (
            "verify_all = [\"sh\", \"-c\", \"ls \\\"$ORCH_REPO_API\\\" \\\"$ORCH_REPO_CLIENT\\\"; exit 3\"]\n",
            "verify_all failed on the combination",
        ),
        ("verify_all = [\"/no/such/program\"]\n", "verify_all failed"),
    ];
    for (defaults, says) in cases {
        let (t, _journal) = finished_three(defaults);
        let before = mains(&t);
        let (code, out, err) = t.home.run(&["merge"]);
        let all = format!("{out}{err}");
        assert_eq!(code, 5, "{all}");
        assert!(all.contains(says), "{all}");
        assert!(
            all.contains("api `main`") && all.contains("client `main`"),
            "{all}"
        );
        assert!(all.contains("nothing was landed"), "{all}");
        assert_eq!(mains(&t), before, "a target moved: {all}");
        no_landing_left(&t);
        // The log the failure names holds what verify_all saw: both candidates side by side.
        let log = t.home.root().join(".orch/logs/.land-v2/merge-verify.log");
        assert!(all.contains(&log.display().to_string()), "{all}");
        // Never where plan `land-v2`'s own logs would be.
        assert!(
            !t.home.root().join(".orch/logs/land-v2").exists(),
            "the group's log is in a plan's log directory"
        );
        if says.starts_with("verify_all failed on") {
            let text = std::fs::read_to_string(&log).expect("log");
            assert!(
                text.contains("v2.txt") && text.contains("client-v2.txt"),
                "{text}"
            );
        }
        // The plan of the home repository alone landed on its own.
        assert!(t.home.git(&["show", "main:docs.txt"]).contains("1.1"));
    }
    // The verify of one repository red: the other's target does not move either.
    let t = Three::new();
    let journal = tempfile::tempdir().expect("journal");
    run_manifest(&t, journal.path(), "", "depends_on = [\"v2:1\"]\n");
    let toml = std::fs::read_to_string(t.home.root().join("plans.toml")).expect("toml");
    let toml = toml.replacen(
        "name = \"client\"\n",
        "name = \"client\"\nverify = [\"sh\", \"-c\", \"exit 7\"]\n",
        1,
    );
    t.home.write("plans.toml", &toml);
    t.home.commit_all("client verify");
    let (code, out, err) = t.home.run(&["up", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let before = mains(&t);
    let (code, out, err) = t.home.run(&["merge"]);
    assert_eq!(code, 5, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("verify of `client` failed"),
        "{out}{err}"
    );
    assert_eq!(mains(&t), before);
    no_landing_left(&t);
}

#[test]
fn a_green_group_lands_in_every_repository_and_the_dry_run_shows_it() {
    let (t, _journal) = finished_three(
        "verify_all = [\"sh\", \"-c\", \"test -f \\\"$ORCH_REPO_API/v2.txt\\\" && test -f \\\"$ORCH_REPO_CLIENT/client-v2.txt\\\"\"]\n",
    );
    let before = mains(&t);
    let snapshot = t.snapshot();
    let (code, out, err) = t.home.run(&["merge", "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("land together: v2 (v2, client-v2), repositories in order: api, client"),
        "{out}"
    );
    assert!(out.contains("would move"), "{out}");
    assert_eq!(t.snapshot(), snapshot, "the dry run changed something");
    let (code, out, err) = t.home.run(&["merge"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("landed together: v2"), "{out}");
    let (api, client) = mains(&t);
    assert_ne!(api, before.0);
    assert_ne!(client, before.1);
    assert!(t.api.git(&["show", "main:v2.txt"]).contains("1.1"));
    assert!(
        t.client
            .git(&["show", "main:client-v2.txt"])
            .contains("1.1")
    );
    assert!(t.client.git(&["show", "main:from-api.txt"]).contains("1.1"));
    // The work trees of the targets show what landed.
    assert!(t.api.root().join("v2.txt").is_file());
    assert!(t.client.root().join("client-v2.txt").is_file());
    no_landing_left(&t);
    // Again: nothing left to land.
    let (code, out, err) = t.home.run(&["merge"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(mains(&t), (api, client));
}

#[test]
fn a_landing_killed_half_way_is_put_back_by_the_next_merge() {
    let (t, _journal) = finished_three("");
    let before = mains(&t);
    let mut cmd = t.home.orch(&["merge"]);
    cmd.env("ORCH_TEST_LAND_PAUSE_AFTER", "1");
    let mut child = cmd.spawn().expect("orch merge");
    let paused = t.home.root().join(".orch/state/.landing.paused");
    let deadline = std::time::Instant::now() + t.home.timeout();
    while !paused.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the landing never paused"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // kill -9 with api's target moved and client's not (api lands first).
    child.kill().expect("kill -9");
    let _ = child.wait();
    let (api_now, client_now) = mains(&t);
    assert_ne!(api_now, before.0, "api moved first");
    assert_eq!(client_now, before.1, "client not yet");
    assert_eq!(
        t.api.refs_under("refs/orch/landing"),
        ["refs/orch/landing/main"]
    );
    // The next `orch merge` puts api back, then lands the whole group.
    let (code, out, err) = t.home.run(&["merge"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("stopped half way") && err.contains("put back"),
        "{err}"
    );
    let (api, client) = mains(&t);
    assert_ne!(api, before.0);
    assert_ne!(client, before.1);
    // api's `main` went back to where it was before it landed again: its reflog says so.
    let reflog = t.api.git(&["reflog", "show", "main", "--format=%H %gs"]);
    assert!(
        reflog.contains("put back a landing stopped half way"),
        "{reflog}"
    );
    assert!(reflog.contains(&before.0), "{reflog}");
    no_landing_left(&t);
}

#[test]
fn the_upstream_checkout_follows_at_the_next_task_boundary() {
    let t = Three::new();
    let journal = tempfile::tempdir().expect("journal");
    run_manifest(&t, journal.path(), "", "depends_on = [\"v2:1\"]\n");
    // client-v2 gets two tasks; its first waits until api's 2.1 is committed, so that the
    // upstream moved between its two tasks.
    t.home.write(
        "plans/client.md",
        "# C\n\n## Phase 1: Work\n- [ ] 1.1 First\n- [ ] 1.2 Second\n",
    );
    t.home.commit_all("two client tasks");
    std::fs::write(
        journal.path().join("wait-client-v2-1.1"),
        t.api.root().display().to_string(),
    )
    .expect("wait file");
    // And api's 2.1 waits until the client's 1.1 has started (its checkout made).
    std::fs::write(
        journal.path().join("after-v2-2.1"),
        journal
            .path()
            .join("client-v2-1.1.env")
            .display()
            .to_string(),
    )
    .expect("after file");
    let (code, out, err) = t.home.run(&["up", "--json"]);
    assert_eq!(code, 0, "orch up:\n{out}\n{err}");
    // What the client saw of api at each task: at 1.1 phase 1's work, at 1.2 phase 2's too.
    let first = t.client.git(&["show", "plan/client-v2~1:from-api.txt"]);
    let second = t.client.git(&["show", "plan/client-v2:from-api.txt"]);
    assert!(first.contains("1.1"), "{first}");
    assert!(
        second.contains("2.1"),
        "the checkout did not follow: {second}"
    );
    let checkout = t
        .client
        .root()
        .join(".orch/worktrees/.upstream-client-v2/api/v2.txt");
    assert!(
        std::fs::read_to_string(checkout)
            .expect("checkout")
            .contains("2.1")
    );
}
