//! `orch up` end to end: real git repositories in temp dirs, the real binary, scripted agents
//! from `tests/fixtures/agents/`, and the outcomes a user checks: task statuses, commits on plan
//! branches, files, the process table.

use crate::support;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{
    Repo, agent, events, journal, kill, process_alive, read_lines, wait, wait_for, wait_line,
};

/// Commits plan `p` (`text`) run by agent `name` (`command`, a TOML array), with `defaults`
/// lines (each ending in a newline) after `agent = "<name>"`.
fn commit_plan_p(repo: &Repo, text: &str, name: &str, defaults: &str, command: &str) {
    repo.write("docs/plans/p.md", text);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"{name}\"\n{defaults}\n[agents.{name}]\ncommand = {command}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n"
        ),
    );
    repo.commit_all("plans");
}

const AUTH: &str = "# Auth\n\n## Phase 1: Model\n- [ ] 1.1 Add the user table\n- [ ] 1.2 Hash passwords (depends: 1.1)\n\n## Phase 2: Login\n- [ ] 2.1 Add the login endpoint\n";
const API: &str = "# API\n\n## Phase 1: Routes\n- [ ] 1.1 Add the routes\n- [ ] 1.2 Document the routes (depends: 1.1)\n";
const DOCS: &str = "# Docs\n\n## Phase 1: Guide\n- [ ] 1.1 Write the guide\n";

/// Commits plans `auth` (of higher priority), `api` (depending on `api_depends_on`) and `docs`,
/// each run by `ok.sh` writing to the journal at `journal_path`.
fn commit_auth_api_docs(repo: &Repo, journal_path: &Path, api_depends_on: &str) {
    repo.write("docs/plans/auth.md", AUTH);
    repo.write("docs/plans/api.md", API);
    repo.write("docs/plans/docs.md", DOCS);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"ok\"\nmax_agents = 3\n\n[agents.ok]\ncommand = {}\n\n\
             [[plan]]\nname = \"auth\"\nfile = \"docs/plans/auth.md\"\npriority = 10\n\n\
             [[plan]]\nname = \"api\"\nfile = \"docs/plans/api.md\"\ndepends_on = [\"{api_depends_on}\"]\n\n\
             [[plan]]\nname = \"docs\"\nfile = \"docs/plans/docs.md\"\n",
            agent("ok.sh", &[journal_path.to_str().expect("utf8")])
        ),
    );
    repo.commit_all("plans");
}

#[test]
fn three_plans_with_a_phase_dependency_run_to_completion() {
    let repo = Repo::bare_minimum();
    let journal_path = repo.outside("journal");
    commit_auth_api_docs(&repo, &journal_path, "auth:1");

    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 0, "orch up failed\nstdout:\n{out}\nstderr:\n{err}");

    // Every task completed, with a commit recorded.
    for plan in ["auth", "api", "docs"] {
        for (id, status) in repo.statuses(plan) {
            assert_eq!(status, "completed", "{plan} {id}");
        }
        let doc = repo.status_file(plan);
        for t in doc["tasks"].as_array().expect("tasks") {
            assert!(t["commit"].is_string(), "{plan} {} has no commit", t["id"]);
        }
    }
    // One commit per task on each branch, in dependency order.
    assert_eq!(
        repo.subjects("plan/auth"),
        [
            "auth 1.1: Add the user table",
            "auth 1.2: Hash passwords",
            "auth 2.1: Add the login endpoint"
        ]
    );
    assert_eq!(repo.subjects("plan/docs"), ["docs 1.1: Write the guide"]);
    let api = repo.subjects("plan/api");
    let own: Vec<&String> = api.iter().filter(|s| s.starts_with("api ")).collect();
    assert_eq!(
        own,
        ["api 1.1: Add the routes", "api 1.2: Document the routes"]
    );

    // api's branch holds auth's phase 1, and its agent started only after auth 1.2 was done.
    let auth_doc = repo.status_file("auth");
    let auth_12 = auth_doc["tasks"][1]["commit"]
        .as_str()
        .expect("commit")
        .to_string();
    assert!(repo.git_ok(&["merge-base", "--is-ancestor", &auth_12, "plan/api"]));
    let api_tree = repo.git(&["show", "plan/api:auth.txt"]);
    assert!(api_tree.contains("1.2 done"), "{api_tree}");
    let marks = journal(&journal_path);
    let auth_12_end = marks
        .iter()
        .find(|m| !m.start && m.plan == "auth" && m.task == "1.2")
        .expect("auth 1.2 ran")
        .at;
    let api_first = marks
        .iter()
        .filter(|m| m.start && m.plan == "api")
        .map(|m| m.at)
        .min()
        .expect("api ran");
    assert!(
        api_first > auth_12_end,
        "api started before auth's phase 1 was done"
    );
    // Each task's agent ran exactly once.
    assert_eq!(marks.iter().filter(|m| m.start).count(), 6);

    // The events: a start and a finish per task, and each plan finished.
    let ev = events(&out);
    let count = |name: &str| ev.iter().filter(|e| e["event"] == name).count();
    assert_eq!(count("task_started"), 6);
    assert_eq!(count("task_finished"), 6);
    assert_eq!(count("plan_finished"), 3);
    assert!(
        ev.iter()
            .any(|e| e["event"] == "upstream_merged" && e["plan"] == "api")
    );
    // The main work tree is untouched by orch's directories (they are excluded).
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn a_failing_agent_is_retried_then_failed_and_its_dependents_blocked() {
    let repo = Repo::bare_minimum();
    let journal_path = repo.outside("journal");
    commit_plan_p(
        &repo,
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Break things\n- [ ] 1.2 Build on them (depends: 1.1)\n- [ ] 1.3 Unrelated\n",
        "flaky",
        "retries = 1\nbackoff = \"0s\"\n",
        &agent("fail_on.sh", &[journal_path.to_str().expect("utf8"), "1.1"]),
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(
        code, 5,
        "expected exit 5 (a plan failed)\nstdout:\n{out}\nstderr:\n{err}"
    );

    let st = repo.statuses("p");
    assert_eq!(
        st,
        [
            ("1.1".to_string(), "failed".to_string()),
            ("1.2".to_string(), "pending".to_string()),
            ("1.3".to_string(), "completed".to_string())
        ]
    );
    let doc = repo.status_file("p");
    assert_eq!(doc["tasks"][0]["attempts"], 2, "{doc}");
    assert!(
        doc["tasks"][0]["lastError"]
            .as_str()
            .expect("lastError")
            .contains("exited with status 3"),
        "{doc}"
    );
    // Two attempts of 1.1, none of 1.2.
    let marks = journal(&journal_path);
    assert_eq!(
        marks.iter().filter(|m| m.start && m.task == "1.1").count(),
        2
    );
    assert_eq!(marks.iter().filter(|m| m.task == "1.2").count(), 0);
    // Each failed attempt's leftovers were saved, and the branch holds only 1.3's commit.
    assert_eq!(repo.subjects("plan/p"), ["p 1.3: Unrelated"]);
    let saved = repo.git(&["show", "refs/orch/attempts/p/1.1/2:half-done-1.1.txt"]);
    assert_eq!(saved, "half-done work of attempt 2");
    // The events say it: a retry, a final failure, the plan blocked with the reason.
    let ev = events(&out);
    let failed: Vec<&Value> = ev.iter().filter(|e| e["event"] == "task_failed").collect();
    assert_eq!(failed.len(), 2);
    assert!(failed[0]["retry_in_ms"].is_u64());
    assert!(failed[1]["retry_in_ms"].is_null());
    let blocked = ev
        .iter()
        .find(|e| e["event"] == "plan_blocked")
        .expect("plan_blocked event");
    assert!(
        blocked["reason"].as_str().expect("reason").contains("1.1"),
        "{blocked}"
    );
}

#[test]
fn a_hanging_agent_is_killed_at_its_timeout() {
    let repo = Repo::bare_minimum();
    let pids = repo.outside("pids");
    commit_plan_p(
        &repo,
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Hang\n",
        "hang",
        "retries = 0\ntimeout = \"1s\"\ngrace = \"1s\"\n",
        &agent("hang.sh", &[pids.to_str().expect("utf8")]),
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 5, "stdout:\n{out}\nstderr:\n{err}");
    let doc = repo.status_file("p");
    assert_eq!(doc["tasks"][0]["status"], "failed");
    assert!(
        doc["tasks"][0]["error"]
            .as_str()
            .expect("error")
            .contains("timed out after 1s"),
        "{doc}"
    );
    let pid: u32 = std::fs::read_to_string(&pids)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    assert!(!process_alive(pid), "the hanging agent {pid} survived");
}

#[test]
fn ctrl_c_twice_leaves_no_process_behind_even_one_that_ignores_sigterm() {
    let repo = Repo::bare_minimum();
    let pids = repo.outside("pids");
    commit_plan_p(
        &repo,
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Refuse to stop\n",
        "stubborn",
        "grace = \"1s\"\n",
        &agent("stubborn.sh", &[pids.to_str().expect("utf8")]),
    );
    let mut child = repo.orch(&["up", "--json"]).spawn().expect("spawn");
    let orch_pid = child.id();
    let lines = read_lines(&mut child);
    wait_for("the agent to write its pids", || pids.exists());
    let agent_pids: Vec<u32> = std::fs::read_to_string(&pids)
        .expect("pids")
        .lines()
        .map(|l| l.trim().parse().expect("pid"))
        .collect();
    assert_eq!(agent_pids.len(), 2);
    let sigint = |pid: u32| assert!(kill("INT", pid));
    let mut seen = Vec::new();
    sigint(orch_pid);
    // The first Ctrl-C is acknowledged and lets the agent run on.
    wait_line(&lines, &mut seen, |e| {
        e["event"] == "interrupted" && e["immediate"] == false
    });
    assert!(agent_pids.iter().all(|&p| process_alive(p)));
    sigint(orch_pid);
    let out = wait(child);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for pid in agent_pids {
        assert!(!process_alive(pid), "process {pid} survived Ctrl-C");
    }
    while let Ok(l) = lines.recv_timeout(Duration::from_secs(5)) {
        seen.push(l);
    }
    assert!(
        seen.iter()
            .any(|e| e["event"] == "interrupted" && e["immediate"] == true)
    );
    // The task is pending again, ready for the next `orch up`.
    assert_eq!(
        repo.statuses("p"),
        [("1.1".to_string(), "pending".to_string())]
    );
}

#[test]
fn kill_9_then_up_again_completes_without_running_a_task_twice_at_once() {
    let repo = Repo::bare_minimum();
    let journal_path = repo.outside("journal");
    commit_plan_p(
        &repo,
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two (depends: 1.1)\n- [ ] 1.3 Three (depends: 1.2)\n- [ ] 1.4 Four (depends: 1.3)\n",
        "slow",
        "",
        &agent(
            "slow_report.sh",
            &[journal_path.to_str().expect("utf8"), "1"],
        ),
    );
    let mut first = repo.orch(&["up", "--json"]).spawn().expect("spawn");
    // Kill the supervisor while the second task's agent is running.
    wait_for("task 1.2 to start", || {
        journal(&journal_path)
            .iter()
            .any(|m| m.start && m.task == "1.2")
    });
    first.kill().expect("kill -9");
    let _ = first.wait();

    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 0, "second run failed\nstdout:\n{out}\nstderr:\n{err}");
    for (id, status) in repo.statuses("p") {
        assert_eq!(status, "completed", "task {id}");
    }
    assert_eq!(
        repo.subjects("plan/p"),
        ["p 1.1: One", "p 1.2: Two", "p 1.3: Three", "p 1.4: Four"]
    );
    // No two agents of one task overlapped in time.
    let marks = journal(&journal_path);
    for task in ["1.1", "1.2", "1.3", "1.4"] {
        let mut spans: Vec<(u128, u128)> = marks
            .iter()
            .filter(|m| m.start && m.task == task)
            .map(|s| {
                let end = marks
                    .iter()
                    .find(|e| !e.start && e.pid == s.pid && e.task == task)
                    .map_or(u128::MAX, |e| e.at);
                (s.at, end)
            })
            .collect();
        spans.sort_unstable();
        for w in spans.windows(2) {
            assert!(
                w[0].1 <= w[1].0,
                "task {task}: two agents at once: {spans:?}"
            );
        }
    }
}

/// Runs `orch up` on input that must be refused, and checks that it made no branch, no
/// worktree, and left the repository as it was.
fn refused(repo: &Repo, expected_code: i32, fragment: &str) {
    let branches_before = repo.branches();
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, expected_code, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains(fragment), "stderr lacks `{fragment}`:\n{err}");
    assert_eq!(repo.branches(), branches_before);
    assert!(!repo.root().join(".orch/worktrees/p").exists());
    let wt = repo.root().join(".git/worktrees");
    assert!(
        !wt.exists() || std::fs::read_dir(&wt).expect("read").next().is_none(),
        "a worktree entry was left behind"
    );
}

fn bad_input_repo(command: &str) -> Repo {
    let repo = Repo::bare_minimum();
    commit_plan_p(
        &repo,
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Something\n",
        "a",
        "",
        command,
    );
    repo
}

#[test]
fn bad_input_is_refused_and_nothing_is_half_made() {
    let ok = agent("ok.sh", &["/dev/null"]);

    // An uncommitted change to the plan file: the worktree would not have it.
    let repo = bad_input_repo(&ok);
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Something else\n",
    );
    refused(
        &repo,
        4,
        "plan file `docs/plans/p.md` of plan `p` differs from its version on `main`",
    );

    // A branch with the plan's name that orch did not make.
    let repo = bad_input_repo(&ok);
    repo.git(&["branch", "plan/p"]);
    let tip = repo.git(&["rev-parse", "plan/p"]);
    refused(&repo, 4, "plan/p");
    assert_eq!(repo.git(&["rev-parse", "plan/p"]), tip);

    // An agent program that does not exist.
    let repo = bad_input_repo("[\"no-such-agent-xyz\", \"{{ prompt }}\"]");
    refused(&repo, 2, "program `no-such-agent-xyz` was not found");

    // A prompt template with an error.
    let repo = bad_input_repo(&ok);
    repo.write("orch/templates/task.md", "Task {{ task_id }\n");
    repo.commit_all("broken template");
    refused(&repo, 2, "orch/templates/task.md");
}

#[test]
fn a_second_supervisor_is_refused_and_told_who_holds_the_lock() {
    let repo = Repo::bare_minimum();
    let pids = repo.outside("pids");
    commit_plan_p(
        &repo,
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Hang\n",
        "hang",
        "grace = \"1s\"\n",
        &agent("hang.sh", &[pids.to_str().expect("utf8")]),
    );
    let first = repo.orch(&["up"]).spawn().expect("spawn");
    let first_pid = first.id();
    wait_for("the first agent to run", || pids.exists());
    let (code, _, err) = repo.run(&["up"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains(&format!("pid {first_pid}")), "{err}");
    // Stop the first one now (SIGTERM: stop at once) so nothing is left running.
    kill("TERM", first_pid);
    let out = wait(first);
    assert_eq!(out.status.code(), Some(130));
}

/// A process that says, by its environment, that it is the agent of a task orch has no record
/// of running (as an agent launched by a supervisor that died before recording it would): the
/// next `orch up` stops it, never adopts it, and runs the task itself, once. (orch's own
/// agents start only once their launch is recorded: a supervisor killed in between leaves a
/// wrapper that runs nothing.)
#[test]
fn a_process_claiming_to_be_an_unrecorded_agent_is_stopped_not_adopted() {
    let repo = Repo::bare_minimum();
    let journal_path = repo.outside("journal");
    let release = repo.outside("release");
    commit_plan_p(
        &repo,
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two (depends: 1.1)\n",
        "ok",
        "",
        &agent("ok.sh", &[journal_path.to_str().expect("utf8")]),
    );
    // The stray "agent" of task 1.1: waits for the release file, then reports done like an agent.
    let stray_dir = repo.outside("stray");
    std::fs::create_dir_all(&stray_dir).expect("mkdir");
    let script = format!(
        "echo \"start p 1.1 $$ $(date +%s%N)\" >> {j}; while [ ! -e {r} ]; do sleep 0.05; done; \
         \"$ORCH_BIN\" task done 1.1 --note stray || exit 9; echo \"end p 1.1 $$ $(date +%s%N)\" >> {j}",
        j = journal_path.display(),
        r = release.display()
    );
    let mut stray = Command::new("sh")
        .args(["-c", &script])
        .current_dir(&stray_dir)
        .env("ORCH_PLAN", "p")
        .env("ORCH_TASK", "1.1")
        .env(
            "ORCH_STATUS_FILE",
            repo.root().join(".orch/state/p/status.json"),
        )
        .env("ORCH_MANIFEST", repo.root().join("plans.toml"))
        .env("ORCH_BIN", env!("CARGO_BIN_EXE_orch"))
        .process_group(0)
        .stdout(Stdio::null())
        .spawn()
        .expect("stray agent");
    wait_for("the stray agent to start", || journal_path.exists());

    let out = wait(repo.orch(&["up", "--json"]).spawn().expect("spawn"));
    let (code, stdout, stderr) = support::code_out_err(&out);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // Stopped before anything of the task ran: it never reported.
    let status = stray.wait().expect("the stray ended");
    assert!(!status.success(), "{status:?}");
    let seen = events(&stdout);
    assert!(
        !seen.iter().any(|e| e["event"] == "task_adopted"),
        "{stdout}"
    );
    assert!(
        seen.iter().any(|e| e["event"] == "note"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("orch has no record of"))),
        "{stdout}"
    );
    std::fs::write(&release, "go").expect("release");
    // 1.1 ran twice: the stray (stopped, no end) and orch's own agent; 1.2 once.
    let marks = journal(&journal_path);
    let stray_pid = stray.id();
    assert!(
        !marks.iter().any(|m| !m.start && m.pid == stray_pid),
        "the stray finished: {marks:?}"
    );
    assert_eq!(
        marks
            .iter()
            .filter(|m| m.start && m.task == "1.1" && m.pid != stray_pid)
            .count(),
        1,
        "{marks:?}"
    );
    assert_eq!(
        marks.iter().filter(|m| m.start && m.task == "1.2").count(),
        1,
        "{marks:?}"
    );
    for (id, status) in repo.statuses("p") {
        assert_eq!(status, "completed", "task {id}");
    }
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: One", "p 1.2: Two"]);
}

/// The merge train: each plan lands on `main` as soon as it and its upstream plans are done.
#[test]
fn the_merge_train_lands_each_plan_in_dependency_order() {
    let repo = Repo::bare_minimum();
    let journal_path = repo.outside("journal");
    commit_auth_api_docs(&repo, &journal_path, "auth");
    let (code, out, err) = repo.run(&["up", "--merge", "--json"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let ev = events(&out);
    let merged: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "plan_merged")
        .map(|e| e["plan"].as_str().expect("plan"))
        .collect();
    assert_eq!(merged.len(), 3, "{merged:?}");
    let pos = |p: &str| merged.iter().position(|m| *m == p).expect("merged");
    assert!(
        pos("auth") < pos("api"),
        "api merged before auth: {merged:?}"
    );
    // main holds every plan's work, its work tree shows it, and it is clean.
    for f in ["auth.txt", "api.txt", "docs.txt"] {
        assert!(
            repo.root().join(f).is_file(),
            "{f} is not in the main work tree"
        );
        repo.git(&["cat-file", "-e", &format!("main:{f}")]);
    }
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    for b in ["plan/auth", "plan/api", "plan/docs"] {
        assert!(
            repo.git_ok(&["merge-base", "--is-ancestor", b, "main"]),
            "{b} not in main"
        );
    }
    let summary = &ev.last().expect("events")["summary"];
    for p in summary["plans"].as_array().expect("plans") {
        assert_eq!(p["merge"], "merged", "{p}");
    }
}

#[test]
fn the_merge_train_reports_a_conflict_and_exits_5() {
    let repo = Repo::bare_minimum();
    repo.write(
        "docs/plans/x.md",
        "# X\n\n## Phase 1: Work\n- [ ] 1.1 Write the shared file\n",
    );
    repo.write(
        "docs/plans/y.md",
        "# Y\n\n## Phase 1: Work\n- [ ] 1.1 Write the shared file\n",
    );
    repo.write(
        "plans.toml",
        "[defaults]\nagent = \"w\"\nauto_merge = true\n\n[agents.w]\ncommand = [\"sh\", \"-c\", \"echo $ORCH_PLAN > same.txt\"]\n\n\
         [[plan]]\nname = \"x\"\nfile = \"docs/plans/x.md\"\n\n[[plan]]\nname = \"y\"\nfile = \"docs/plans/y.md\"\n",
    );
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 5, "stdout:\n{out}\nstderr:\n{err}");
    let ev = events(&out);
    let merged: Vec<&Value> = ev.iter().filter(|e| e["event"] == "plan_merged").collect();
    let failed: Vec<&Value> = ev
        .iter()
        .filter(|e| e["event"] == "plan_merge_failed")
        .collect();
    assert_eq!((merged.len(), failed.len()), (1, 1), "{ev:?}");
    assert_eq!(failed[0]["result"], "conflict");
    assert!(
        failed[0]["reason"]
            .as_str()
            .expect("reason")
            .contains("same.txt")
    );
    // main has the first plan's version, nothing half-merged.
    let first = merged[0]["plan"].as_str().expect("plan");
    assert_eq!(repo.git(&["show", "main:same.txt"]), first);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}
