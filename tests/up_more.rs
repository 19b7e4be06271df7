//! More of `orch up` end to end: plan-mode agents, the agent's environment, setup and copied
//! files, blocked downstream plans, cross-plan merge conflicts, stuck agents, re-runs and logs
//! (the parallelism limits: `tests/parallel_limits.rs`). Real git repositories in temp dirs, the real binary, scripted agents
//! from `tests/fixtures/agents/`; every process waited for with a deadline.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::{Repo, agent_at as agent, fixtures, journal, named, outcome, process_alive, utf8};

const TIMEOUT: Duration = Duration::from_secs(120);

/// A repository with `README.md`, its root canonical (orch reports canonical paths), each
/// process with the deadline of these tests.
fn new_repo() -> Repo {
    Repo::builder().canonical().timeout(TIMEOUT).build()
}

#[test]
fn a_plan_mode_agent_works_through_the_plan_and_gets_one_commit_per_task() {
    let repo = new_repo();
    let journal_path = repo.outside("journal");
    repo.write(
        "docs/plans/pl.md",
        "# Planned\n\n## Phase 1: First\n- [ ] 1.1 Lay the ground\n- [ ] 1.2 Build on it (depends: 1.1)\n\n## Phase 2: Second\n- [ ] 2.1 Finish it\n",
    );
    repo.manifest(
        &agent("plan_agent.sh", &[&journal_path]),
        "mode = \"plan\"",
        "",
        &[("pl", "")],
    );
    repo.commit_all("plans");

    let ev = repo.up_events(&[], 0);

    for (id, status) in repo.statuses("pl") {
        assert_eq!(status, "completed", "task {id}");
    }
    // One commit per task, in order, each holding that task's line and nothing else.
    assert_eq!(
        repo.subjects("plan/pl"),
        [
            "pl 1.1: Lay the ground",
            "pl 1.2: Build on it",
            "pl 2.1: Finish it"
        ]
    );
    let commits = repo.commits("plan/pl");
    let doc = repo.status_file("pl");
    for (i, id) in ["1.1", "1.2", "2.1"].iter().enumerate() {
        assert_eq!(repo.changed_files(&commits[i]), ["work.txt"], "task {id}");
        assert_eq!(
            repo.changed_lines(&commits[i]),
            [format!("+{id} done by the plan agent")],
            "the commit of task {id}"
        );
        assert_eq!(
            doc["tasks"][i]["commit"].as_str(),
            Some(commits[i].as_str()),
            "{doc}"
        );
    }
    // One agent process for the whole plan, given no task.
    let marks = journal(&journal_path);
    assert_eq!(marks.iter().filter(|m| m.start).count(), 1, "{marks:?}");
    assert_eq!(marks.iter().filter(|m| !m.start).count(), 1, "{marks:?}");
    let task_env =
        std::fs::read_to_string(format!("{}.task", journal_path.display())).expect("task file");
    assert_eq!(task_env.trim(), "ORCH_TASK=[]");
    let started = named(&ev, "task_started");
    assert_eq!(started.len(), 1, "{ev:?}");
    assert_eq!(started[0]["task"], "");
    // Each task the agent finished is reported, with the commit its `task done` made.
    let finished = named(&ev, "task_finished");
    let mut ids: Vec<&str> = finished
        .iter()
        .map(|e| e["task"].as_str().expect("task"))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["1.1", "1.2", "2.1"], "{ev:?}");
    assert!(finished.iter().all(|e| e["commit"].is_string()), "{ev:?}");
    assert_eq!(outcome(&ev, "pl")["outcome"], "completed");
    // The worktree is clean: nothing was left uncommitted.
    assert_eq!(
        repo.git_at(&repo.worktree("pl"), &["status", "--porcelain"]),
        ""
    );
}

#[test]
fn an_agent_gets_its_orch_variables_and_none_of_orchs_git_variables() {
    let repo = new_repo();
    let dump = repo.outside("env");
    repo.commit_plan_p(
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Look around\n",
        &agent("env_dump.sh", &[&dump]),
        "",
        "",
    );

    // orch itself runs with git variables pointing at the main repository.
    let root = repo.root();
    let mut cmd = repo.orch(&["up", "--json"]);
    cmd.env("GIT_DIR", root.join(".git"))
        .env("GIT_WORK_TREE", root)
        .env("GIT_INDEX_FILE", root.join(".git/index"));
    let (code, out, err) = repo.run_cmd(&mut cmd);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");

    let vars: Vec<(String, String)> = std::fs::read_to_string(&dump)
        .expect("env dump")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let var = |name: &str| -> String {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} missing from the agent's environment: {vars:?}"))
    };
    let worktree = repo.worktree("p");
    assert_eq!(var("ORCH_PLAN"), "p");
    assert_eq!(var("ORCH_TASK"), "1.1");
    assert_eq!(Path::new(&var("ORCH_WORKTREE")), worktree);
    let cwd = std::fs::read_to_string(format!("{}.cwd", dump.display())).expect("cwd");
    assert_eq!(Path::new(cwd.trim()), worktree, "the agent's cwd");
    let status_file = PathBuf::from(var("ORCH_STATUS_FILE"));
    assert_eq!(status_file, root.join(".orch/state/p/status.json"));
    assert!(!status_file.starts_with(&worktree));
    assert!(status_file.is_file());
    let bin = PathBuf::from(var("ORCH_BIN"));
    assert_eq!(
        bin.canonicalize().expect("ORCH_BIN exists"),
        Path::new(env!("CARGO_BIN_EXE_orch"))
            .canonicalize()
            .expect("orch")
    );
    assert_eq!(
        PathBuf::from(var("ORCH_MANIFEST"))
            .canonicalize()
            .expect("ORCH_MANIFEST exists"),
        root.join("plans.toml")
    );

    // None of orch's git variables reached the agent: its git sees the plan branch.
    let git_vars = std::fs::read_to_string(format!("{}.git", dump.display())).expect("git vars");
    for leaked in ["GIT_DIR=", "GIT_WORK_TREE=", "GIT_INDEX_FILE="] {
        assert!(
            !git_vars.lines().any(|l| l.starts_with(leaked)),
            "{leaked} leaked into the agent: {git_vars}"
        );
    }
    let branch = std::fs::read_to_string(format!("{}.branch", dump.display())).expect("branch");
    assert_eq!(branch.trim(), "plan/p");
    // And the work landed on the plan branch, not on main.
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: Look around"]);
    assert_eq!(repo.git(&["show", "plan/p:p.txt"]), "1.1");
    assert_eq!(repo.git(&["rev-list", "--count", "main"]), "2");
}

#[test]
fn setup_runs_once_per_worktree_and_copied_files_stay_uncommitted() {
    let repo = new_repo();
    let journal_path = repo.outside("journal");
    let setup_runs = repo.outside("setup-runs");
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Use the config\n",
    );
    repo.write(".gitignore", ".env\nconfig/local.toml\n");
    repo.write(".worktreeinclude", "config/local.toml\n");
    repo.manifest(
        &agent("ok.sh", &[&journal_path]),
        "",
        &format!(
            "setup = {}\ncopy = [\".env\"]",
            agent("setup.sh", &[&setup_runs])
        ),
        &[("p", "")],
    );
    repo.commit_all("plans");
    // Untracked, ignored files of the main tree that a worktree needs.
    repo.write(".env", "SECRET=42\n");
    repo.write("config/local.toml", "port = 8080\n");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");

    let ev = repo.up_events(&[], 0);
    let wt = repo.worktree("p");
    assert_eq!(
        std::fs::read_to_string(wt.join(".env")).expect(".env copied"),
        "SECRET=42\n"
    );
    assert_eq!(
        std::fs::read_to_string(wt.join("config/local.toml")).expect("config copied"),
        "port = 8080\n"
    );
    assert_eq!(
        std::fs::read_to_string(wt.join("setup-made.txt")).expect("setup ran in the worktree"),
        "made by setup for p\n"
    );
    let setup = named(&ev, "setup_finished");
    assert_eq!(setup.len(), 1, "{ev:?}");
    assert_eq!(setup[0]["ok"], true);
    assert_eq!(repo.statuses("p"), [("1.1".into(), "completed".into())]);
    // The copied files are ignored: never committed on the plan branch.
    let files = repo.tree_files("plan/p");
    assert!(!files.contains(&".env".to_string()), "{files:?}");
    assert!(
        !files.contains(&"config/local.toml".to_string()),
        "{files:?}"
    );

    // A task added to the plan: the next run reuses the worktree and does not set it up again.
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Use the config\n- [ ] 1.2 Use it again\n",
    );
    repo.commit_all("one more task");
    let ev = repo.up_events(&[], 0);
    assert_eq!(
        repo.statuses("p"),
        [
            ("1.1".into(), "completed".into()),
            ("1.2".into(), "completed".into())
        ]
    );
    let started = named(&ev, "plan_started");
    assert_eq!(started.len(), 1, "{ev:?}");
    assert_eq!(started[0]["created"], false);
    assert!(named(&ev, "setup_finished").is_empty(), "{ev:?}");
    // And a run with nothing left to do does not set it up either.
    repo.up_events(&[], 0);
    let runs = std::fs::read_to_string(&setup_runs).expect("setup ran");
    assert_eq!(runs.lines().count(), 1, "setup ran more than once: {runs}");
    let files = repo.tree_files("plan/p");
    assert!(!files.contains(&".env".to_string()), "{files:?}");
    assert_eq!(journal(&journal_path).iter().filter(|m| m.start).count(), 2);
}

#[test]
fn a_deleted_worktree_is_made_again_with_its_copies_and_its_setup() {
    let repo = new_repo();
    let journal_path = repo.outside("journal");
    let setup_runs = repo.outside("setup-runs");
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two (depends: 1.1)\n",
    );
    repo.write(".gitignore", ".env\n");
    repo.manifest(
        &format!(
            "[\"sh\", {:?}, {:?}, \"1.2\"]",
            fixtures().join("fail_on.sh").display().to_string(),
            utf8(&journal_path)
        ),
        "",
        &format!(
            "retries = 0\nsetup = {}\ncopy = [\".env\"]",
            agent("setup.sh", &[&setup_runs])
        ),
        &[("p", "")],
    );
    repo.commit_all("plans");
    repo.write(".env", "SECRET=42\n");
    // 1.1 is done, 1.2 fails: the plan is unfinished.
    repo.up_events(&[], 5);
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: One"]);
    let tip = repo.git(&["rev-parse", "plan/p"]);

    // The user throws the worktree away (and fixes the agent by hand: 1.2 now succeeds).
    let wt = repo.worktree("p");
    std::fs::remove_dir_all(&wt).expect("rm worktree");
    repo.manifest(
        &agent("ok.sh", &[&journal_path]),
        "",
        &format!(
            "retries = 0\nsetup = {}\ncopy = [\".env\"]",
            agent("setup.sh", &[&setup_runs])
        ),
        &[("p", "")],
    );
    repo.commit_all("a better agent");
    let ev = repo.up_events(&[], 0);

    let started = named(&ev, "plan_started");
    assert_eq!(started.len(), 1, "{ev:?}");
    assert_eq!(started[0]["created"], true);
    // The branch kept its work, the new worktree got its copies and was set up again.
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: One", "p 1.2: Two"]);
    assert!(repo.git_ok(&["merge-base", "--is-ancestor", &tip, "plan/p"]));
    assert_eq!(
        std::fs::read_to_string(wt.join(".env")).expect(".env copied again"),
        "SECRET=42\n"
    );
    assert_eq!(
        std::fs::read_to_string(&setup_runs)
            .expect("setup runs")
            .lines()
            .count(),
        2,
        "the new worktree was not set up"
    );
    assert!(wt.join("setup-made.txt").is_file());
    assert_eq!(named(&ev, "setup_finished").len(), 1, "{ev:?}");
}

#[test]
fn a_failing_setup_blocks_its_plan_and_no_agent_runs() {
    let repo = new_repo();
    let journal_path = repo.outside("journal");
    let setup_runs = repo.outside("setup-runs");
    let setup = fixtures().join("setup.sh");
    repo.commit_plan_p(
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Needs the toolchain\n",
        &agent("ok.sh", &[&journal_path]),
        "",
        &format!(
            "setup = [\"sh\", {:?}, {:?}, \"7\"]",
            setup.display().to_string(),
            setup_runs.display().to_string()
        ),
    );

    let ev = repo.up_events(&[], 5);
    let blocked = named(&ev, "plan_blocked");
    assert_eq!(blocked.len(), 1, "{ev:?}");
    let reason = blocked[0]["reason"].as_str().expect("reason");
    assert!(
        reason.contains("setup command") && reason.contains("setup.sh"),
        "{reason}"
    );
    assert!(reason.contains("exit status 7"), "{reason}");
    let o = outcome(&ev, "p");
    assert_eq!(o["outcome"], "blocked");
    assert!(o["reason"].as_str().expect("reason").contains("setup.sh"));
    // No agent ran, nothing was committed, the task is still pending.
    assert!(!journal_path.exists(), "an agent ran");
    assert!(named(&ev, "task_started").is_empty());
    assert_eq!(repo.subjects("plan/p"), Vec::<String>::new());
    assert_eq!(repo.statuses("p"), [("1.1".into(), "pending".into())]);
    // The setup's own words are in its log.
    let (code, log, err) = repo.run(&["logs", "p", "setup"]);
    assert_eq!(code, 0, "{err}");
    assert!(log.contains("cannot install the toolchain"), "{log}");
}

#[test]
fn a_failed_upstream_blocks_its_downstream_plan() {
    let repo = new_repo();
    let journal_path = repo.outside("journal");
    repo.write(
        "docs/plans/a.md",
        "# A\n\n## Phase 1: Base\n- [ ] 1.1 Break things\n\n## Phase 2: More\n- [ ] 2.1 Later\n",
    );
    repo.write(
        "docs/plans/b.md",
        "# B\n\n## Phase 1: Use\n- [ ] 1.1 Use a\n- [ ] 1.2 Use more of a\n",
    );
    let fail_on = format!(
        "[\"sh\", {:?}, {:?}, \"1.1\"]",
        fixtures().join("fail_on.sh").display().to_string(),
        journal_path.display().to_string()
    );
    repo.manifest(
        &fail_on,
        "",
        "retries = 0",
        &[("a", ""), ("b", "depends_on = [\"a:1\"]")],
    );
    repo.commit_all("plans");

    let ev = repo.up_events(&[], 5);

    let marks = journal(&journal_path);
    assert!(
        marks.iter().all(|m| m.plan == "a" && m.task == "1.1"),
        "{marks:?}"
    );
    assert_eq!(marks.iter().filter(|m| m.start).count(), 1);
    let a = outcome(&ev, "a");
    assert_eq!(a["outcome"], "failed", "{a}");
    assert_eq!(a["failed_tasks"], serde_json::json!(["1.1"]));
    let b = outcome(&ev, "b");
    assert_eq!(b["outcome"], "blocked", "{b}");
    let reason = b["reason"].as_str().expect("reason");
    assert!(
        reason.contains("plan `a`") && reason.contains("`a:1.1` failed"),
        "{reason}"
    );
    assert_eq!(
        repo.statuses("b"),
        [
            ("1.1".into(), "pending".into()),
            ("1.2".into(), "pending".into())
        ]
    );
    assert_eq!(repo.subjects("plan/b"), Vec::<String>::new());
    assert!(
        named(&ev, "plan_blocked").iter().any(|e| e["plan"] == "b"),
        "{ev:?}"
    );
}

#[test]
fn a_conflicting_upstream_merge_blocks_the_plan_and_leaves_its_branch_alone() {
    let repo = new_repo();
    let journal_path = repo.outside("journal");
    repo.write("a.txt", "base\n");
    repo.write(
        "docs/plans/a.md",
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 Change a.txt\n",
    );
    repo.write(
        "docs/plans/b.md",
        "# B\n\n## Phase 1: Work\n- [ ] 1.1 Build on a\n",
    );
    repo.manifest(
        &agent("ok.sh", &[&journal_path]),
        "",
        "",
        &[("a", ""), ("b", "depends_on = [\"a\"]")],
    );
    repo.commit_all("plans");

    // `orch up b` alone: b waits for a, which is not part of the run, but gets its worktree.
    let ev = repo.up_events(&["b"], 5);
    let b = outcome(&ev, "b");
    assert_eq!(b["outcome"], "unfinished", "{b}");
    assert!(
        b["reason"]
            .as_str()
            .expect("reason")
            .contains("not part of this run"),
        "{b}"
    );
    assert!(!journal_path.exists(), "an agent ran");
    // Meanwhile someone commits on b's branch, in its worktree, a change a's work will collide with.
    let wt = repo.worktree("b");
    std::fs::write(wt.join("a.txt"), "base\nchanged on b by hand\n").expect("write");
    repo.git_at(&wt, &["commit", "-q", "-am", "b: by hand"]);
    let tip = repo.git(&["rev-parse", "plan/b"]);

    let ev = repo.up_events(&[], 5);

    assert_eq!(outcome(&ev, "a")["outcome"], "completed");
    let b = outcome(&ev, "b");
    assert_eq!(b["outcome"], "blocked", "{b}");
    let reason = b["reason"].as_str().expect("reason");
    assert!(reason.contains("conflicts"), "{reason}");
    assert!(reason.contains("`a.txt`"), "{reason}");
    assert!(reason.contains("plan/b"), "{reason}");
    let blocked = named(&ev, "plan_blocked");
    assert!(blocked.iter().any(|e| e["plan"] == "b"), "{ev:?}");
    // b's branch and worktree are as they were, and b's agent never ran.
    assert_eq!(repo.git(&["rev-parse", "plan/b"]), tip);
    assert_eq!(repo.git_at(&wt, &["status", "--porcelain"]), "");
    assert_eq!(
        std::fs::read_to_string(wt.join("a.txt")).expect("a.txt"),
        "base\nchanged on b by hand\n"
    );
    assert!(
        journal(&journal_path).iter().all(|m| m.plan == "a"),
        "b's agent ran"
    );
    assert_eq!(repo.statuses("b"), [("1.1".into(), "pending".into())]);

    // Doing what the message says resolves it: merge by hand, commit, `orch up` again.
    let upstream = reason
        .split("(git merge ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no `git merge` hint in: {reason}"));
    assert!(
        !repo
            .git_in(&wt, &["merge", "-q", upstream])
            .status
            .success()
    );
    std::fs::write(
        wt.join("a.txt"),
        "base\nchanged on b by hand\n1.1 done by attempt 1\n",
    )
    .expect("resolve");
    repo.git_at(&wt, &["commit", "-q", "-am", "b: merge a by hand"]);
    let ev = repo.up_events(&[], 0);
    assert_eq!(outcome(&ev, "b")["outcome"], "completed");
    assert_eq!(
        repo.subjects("plan/b").last().map(String::as_str),
        Some("b 1.1: Build on a")
    );
    assert_eq!(
        journal(&journal_path)
            .iter()
            .filter(|m| m.start && m.plan == "b")
            .count(),
        1
    );
}

#[test]
fn a_silent_agent_is_stopped_as_stuck() {
    let repo = new_repo();
    let pid_file = repo.outside("pid");
    // A [[notify]] hook that hears only of stuck tasks.
    let heard = repo.outside("heard");
    let hook = format!(
        "\n[[notify]]\nevents = [\"task_stuck\"]\ncommand = [\"sh\", \"{}\", \"{}\"]\n",
        fixtures().join("../notify/record.sh").display(),
        heard.display()
    );
    repo.commit_plan_p(
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Think forever\n",
        &agent("silent.sh", &[&pid_file]),
        "",
        // The timeout is a backstop far beyond the stuck limit.
        &format!("retries = 0\nstuck_after = \"1s\"\ngrace = \"1s\"\ntimeout = \"100s\"\n{hook}"),
    );

    let ev = repo.up_events(&[], 5);

    let doc = repo.status_file("p");
    assert_eq!(doc["tasks"][0]["status"], "failed", "{doc}");
    let error = doc["tasks"][0]["error"].as_str().expect("error");
    assert!(error.contains("stuck"), "{error}");
    assert_eq!(repo.statuses("p"), [("1.1".into(), "failed".into())]);
    let failed = named(&ev, "task_failed");
    assert_eq!(failed.len(), 1, "{ev:?}");
    assert!(failed[0]["retry_in_ms"].is_null());
    // The stuck detection said so first, with the attempt and how long it was quiet.
    let stuck = named(&ev, "task_stuck");
    assert_eq!(stuck.len(), 1, "{ev:?}");
    assert_eq!(
        (
            &stuck[0]["plan"],
            &stuck[0]["task"],
            &stuck[0]["attempt"],
            &stuck[0]["quiet_ms"]
        ),
        (
            &Value::from("p"),
            &Value::from("1.1"),
            &Value::from(1),
            &Value::from(1000)
        ),
        "{ev:?}"
    );
    let index = |name: &str| ev.iter().position(|e| e["event"] == name);
    assert!(index("task_stuck") < index("task_failed"), "{ev:?}");
    let heard = std::fs::read_to_string(&heard).expect("the hook heard something");
    let lines: Vec<Value> = heard
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 1, "{heard}");
    assert_eq!(lines[0]["event"], "task_stuck", "{heard}");
    assert_eq!(lines[0]["task"], "1.1", "{heard}");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    assert!(!process_alive(pid), "the stuck agent {pid} survived");
}

#[test]
fn up_after_everything_is_done_does_nothing() {
    let repo = new_repo();
    let journal_path = repo.outside("journal");
    repo.commit_plan_p(
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two (depends: 1.1)\n",
        &agent("ok.sh", &[&journal_path]),
        "",
        "",
    );
    repo.up_events(&[], 0);
    let journal_before = std::fs::read_to_string(&journal_path).expect("journal");
    let tip = repo.git(&["rev-parse", "plan/p"]);
    let status_before = repo.status_file("p");

    let ev = repo.up_events(&[], 0);

    // A completed plan is not even started: no worktree work, no agent, no commit.
    assert!(named(&ev, "plan_started").is_empty(), "{ev:?}");
    assert!(named(&ev, "task_started").is_empty(), "{ev:?}");
    assert!(named(&ev, "task_finished").is_empty(), "{ev:?}");
    assert_eq!(outcome(&ev, "p")["outcome"], "completed");
    assert_eq!(
        std::fs::read_to_string(&journal_path).expect("journal"),
        journal_before
    );
    assert_eq!(repo.git(&["rev-parse", "plan/p"]), tip);
    assert_eq!(repo.status_file("p")["tasks"], status_before["tasks"]);
    assert_eq!(
        repo.git_at(&repo.worktree("p"), &["status", "--porcelain"]),
        ""
    );
}

#[test]
fn logs_show_what_the_agent_printed() {
    let repo = new_repo();
    let journal_path = repo.outside("journal");
    repo.commit_plan_p(
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n",
        &agent("ok.sh", &[&journal_path]),
        "",
        "",
    );
    repo.up_events(&[], 0);
    let wt = repo.worktree("p");

    let (code, out, err) = repo.run(&["logs", "p", "1.1"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "agent: wrote p.txt for task 1.1 in {}",
            wt.display()
        )),
        "{out}"
    );

    let (code, out, err) = repo.run(&["logs", "p"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("1.1 ")),
        "{out}"
    );
    let (code, out, err) = repo.run(&["logs", "p", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let logs = v["logs"].as_array().expect("logs");
    assert!(
        logs.iter().any(|l| l["name"] == "1.1"
            && l["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/p/1.1.log"))),
        "{v}"
    );
    let (code, out, err) = repo.run(&["logs", "p", "1.1", "--path"]);
    assert_eq!(code, 0, "{err}");
    let path = PathBuf::from(out.trim());
    assert!(path.is_file(), "{out}");
    assert!(
        std::fs::read_to_string(&path)
            .expect("log")
            .contains("agent: wrote p.txt")
    );
}
