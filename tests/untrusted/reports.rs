//! The report channel: an agent reports only its own task, through
//! the supervisor; the status file is not the agent's to write; a plan-mode agent's tasks are
//! committed by orch, and the agent gets no write access to git; a change of the status file
//! that did not come through orch is refused and reported; a person's `done` during `orch up`
//! goes through the task's check before any commit; an attempt's flood of refused reports is
//! answered, but said a bounded number of times.

use std::path::Path;

use serde_json::Value;

use crate::landlock;
use crate::support::{self, Repo, agent, agent_at, named};

/// The events about task `id` named `name`.
fn of_task<'a>(ev: &'a [Value], name: &str, id: &str) -> Vec<&'a Value> {
    named(ev, name)
        .into_iter()
        .filter(|e| e["task"] == id)
        .collect()
}

/// Every ref of the repository with its commit.
fn refs(repo: &Repo) -> Vec<String> {
    repo.git(&["for-each-ref", "--format=%(refname) %(objectname)"])
        .lines()
        .map(str::to_string)
        .collect()
}

const FOUR_PHASES: &str = "# P\n\n## Phase 1: One\n- [ ] 1.1 First\n\n**VERIFY Phase 1:**\n- It holds\n\n\
     ## Phase 2: Two\n- [ ] 2.1 Second\n- [ ] 2.2 Third\n\n## Phase 3: Three\n- [ ] 3.1 Fourth\n";

/// (a) The agent of 1.1, confined, reports another task and a VERIFY step done, and edits the
/// status file to mark a task of its phase 2 and one of phase 3 completed: each is refused (the
/// reports answered with exit 4 and a `report_refused` event, the edit denied by the sandbox);
/// every task is committed only after its own agent ran.
#[test]
fn reports_an_attempt_completes_only_its_own_task() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    repo.commit_plan_p(
        FOUR_PHASES,
        &agent("hostile_report_others.sh", &[]),
        "report = \"orch\"",
        "retries = 0\nsandbox = \"on\"",
    );
    let main_before = repo.rev("main");
    let (code, out, err) = repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
    let ev = support::events(&out);
    assert_eq!(code, 0, "orch up failed\n{out}\n{err}");
    // Each task ran its own agent, and got its commit after it.
    for id in ["1.1", "V1", "2.1", "2.2", "3.1"] {
        assert_eq!(
            of_task(&ev, "task_started", id).len(),
            1,
            "task {id} ran no agent of its own\n{out}"
        );
    }
    let subjects = repo.subjects("plan/p");
    assert_eq!(
        subjects,
        [
            "p 1.1: First",
            "p V1: verification of phase 1 passed: It holds",
            "p 2.1: Second",
            "p 2.2: Third",
            "p 3.1: Fourth"
        ],
        "{out}"
    );
    for id in ["2.1", "2.2", "3.1"] {
        let file = format!("work-{id}.txt");
        let at = repo.git(&["log", "--format=%s", "plan/p", "--", &file]);
        assert_eq!(
            at,
            format!(
                "p {id}: {}",
                ["Second", "Third", "Fourth"][match id {
                    "2.1" => 0,
                    "2.2" => 1,
                    _ => 2,
                }]
            ),
            "{file} committed elsewhere"
        );
    }
    // What the agent of 1.1 was told: refused (exit 4), and the file not its to write.
    let hostile = repo.git(&["show", "plan/p:hostile.txt"]);
    assert!(hostile.contains("done-2.1 4"), "{hostile}");
    assert!(hostile.contains("done-V1 4"), "{hostile}");
    assert!(hostile.contains("edit 1"), "{hostile}");
    // Reported: one event per refused report, naming the reporter and why.
    let refused = named(&ev, "report_refused");
    for id in ["2.1", "V1"] {
        let r = refused
            .iter()
            .find(|e| e["task"] == id)
            .unwrap_or_else(|| panic!("no report_refused for {id}\n{out}"));
        assert_eq!(r["plan"], "p");
        assert!(
            r["reporter"].as_str().is_some_and(|s| s.contains("1.1")),
            "{r}"
        );
        assert!(
            r["reason"].as_str().is_some_and(|s| s.contains("own task")),
            "{r}"
        );
    }
    // And in the attempt's log.
    let log = std::fs::read_to_string(repo.root().join(".orch/logs/p/1.1.log")).unwrap_or_default();
    assert!(log.contains("report of task 2.1 refused"), "{log}");
    assert_eq!(repo.rev("main"), main_before, "main moved");
}

/// (b) A confined plan-mode agent tries to set `core.fsmonitor` in the repository's config,
/// plant a hook, move another branch and commit itself: all denied (the marker its program
/// would make does not exist, the config, hooks and the other branch are as they were); its
/// tasks, reported done, are committed by orch as `<plan> <id>: <description>`, its VERIFY step
/// only after orch ran the plan's check.
#[test]
fn reports_a_plan_mode_agent_has_its_tasks_committed_by_orch_and_no_git_write_access() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let marker = repo.outside("fsmonitor-ran");
    repo.git(&["branch", "other"]);
    repo.commit_plan_p(
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 First\n- [ ] 1.2 Second\n\n**VERIFY Phase 1:**\n- It holds\n",
        &agent_at("hostile_report_plan.sh", &[&marker, Path::new("other")]),
        "mode = \"plan\"\nreport = \"orch\"",
        "retries = 0\nsandbox = \"on\"\ncheck = [\"sh\", \"-c\", \"grep -q 1.2 work.txt\"]",
    );
    let config = repo.read(".git/config");
    let refs_before = refs(&repo);
    let (code, out, err) = repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
    assert_eq!(code, 0, "orch up failed\n{out}\n{err}");
    // The VERIFY step too, once orch ran the check itself.
    assert_eq!(
        repo.subjects("plan/p"),
        [
            "p 1.1: First",
            "p 1.2: Second",
            "p V1: verification of phase 1 passed: It holds"
        ],
        "{out}"
    );
    let check_log =
        std::fs::read_to_string(repo.root().join(".orch/logs/p/V1.check.log")).unwrap_or_default();
    assert!(check_log.contains("grep -q 1.2 work.txt"), "{check_log}");
    let tree = repo.root().join(".orch/worktrees/p");
    let hostile = std::fs::read_to_string(tree.join("hostile.txt")).expect("hostile.txt");
    let log = std::fs::read_to_string(tree.join("try.log")).unwrap_or_default();
    for what in ["fsmonitor", "hook", "ref", "commit"] {
        assert!(
            hostile.contains(&format!("{what} denied")),
            "{what}\n{hostile}\n{log}"
        );
    }
    // orch adds its own marks of the plan branch; nothing else changed.
    let after = String::from_utf8_lossy(&repo.read(".git/config")).into_owned();
    let before = String::from_utf8_lossy(&config).into_owned();
    assert!(after.starts_with(&before), "{after}");
    assert!(!after.contains("fsmonitor"), "{after}");
    assert!(!repo.root().join(".git/hooks/post-commit").exists());
    // orch's own git runs (the commits) ran no program of the agent's.
    assert!(!marker.exists(), "the agent's fsmonitor program ran");
    let mut refs_after = refs(&repo);
    refs_after.retain(|r| !r.starts_with("refs/heads/plan/p "));
    let mut before = refs_before;
    before.retain(|r| !r.starts_with("refs/heads/plan/p "));
    assert_eq!(refs_after, before, "refs changed");
    let status = support::json(&repo.run(&["status", "--plan", "p", "--json"]).1);
    let tasks = status["tasks"].as_array().expect("tasks");
    assert!(
        tasks
            .iter()
            .all(|t| t["status"] == "completed" && t["commit"].is_string()),
        "{status}"
    );
}

/// (c) With `sandbox = "off"` the agent of 1.1 can write the status file: it marks 2.1
/// completed by editing the JSON. orch refuses the change (`report_refused`), puts its record
/// back, and 2.1 runs its own agent before its commit.
#[test]
fn reports_an_edit_of_the_status_file_outside_orch_is_refused_and_reported() {
    let repo = Repo::bare_minimum();
    repo.commit_plan_p(
        "# P\n\n## Phase 1: One\n- [ ] 1.1 First\n\n## Phase 2: Two\n- [ ] 2.1 Second\n",
        &agent("hostile_report_edit.sh", &[]),
        "report = \"orch\"",
        "retries = 0\nsandbox = \"off\"",
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    let ev = support::events(&out);
    assert_eq!(code, 0, "orch up failed\n{out}\n{err}");
    let edited = repo.git(&["show", "plan/p:edited-status.json"]);
    let edited = support::json(&edited);
    assert_eq!(
        edited["tasks"][1]["status"], "completed",
        "the agent's edit did not happen: {edited}"
    );
    assert_eq!(
        of_task(&ev, "task_started", "2.1").len(),
        1,
        "2.1 ran no agent of its own\n{out}"
    );
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: First", "p 2.1: Second"]);
    assert_eq!(
        repo.git(&["log", "--format=%s", "plan/p", "--", "work-2.1.txt"]),
        "p 2.1: Second"
    );
    let refused = of_task(&ev, "report_refused", "2.1");
    let log = std::fs::read_to_string(repo.root().join(".orch/logs/p/1.1.log")).unwrap_or_default();
    assert_eq!(refused.len(), 1, "{out}\n{log}");
    assert!(
        refused[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("outside orch")),
        "{}",
        refused[0]
    );
}

/// (d) A person's `orch task done 2.1` while `orch up` runs task 1.1, for a plan with a check:
/// the check of 2.1 runs before any commit, once 1.1's agent no longer works in the worktree,
/// and fails (its file is not there), so 2.1 is not committed.
#[test]
fn reports_a_persons_done_during_up_goes_through_the_check() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let gate = repo.outside("gate");
    std::fs::create_dir_all(&gate).expect("gate");
    repo.commit_plan_p(
        "# P\n\n## Phase 1: One\n- [ ] 1.1 First\n\n## Phase 2: Two\n- [ ] 2.1 Second\n",
        &agent_at("gated.sh", &[&gate, Path::new("60")]),
        &format!(
            "report = \"orch\"\nsandbox_write = [{:?}]",
            gate.display().to_string()
        ),
        "retries = 0\nsandbox = \"on\"\ncheck = [\"sh\", \"-c\", \"test -f p-$ORCH_TASK.txt\"]",
    );
    let mut up = repo.orch(&["up", "--json"]);
    up.env_remove("ORCH_SANDBOX");
    let mut child = up.spawn().expect("orch up");
    let lines = support::read_lines(&mut child);
    let mut seen = Vec::new();
    support::wait_line(&lines, &mut seen, |e| {
        e["event"] == "task_started" && e["task"] == "1.1"
    });
    // A person (no ORCH_* variables: `Repo::orch` clears the environment).
    let (code, out, err) = repo.run(&["task", "done", "2.1", "--plan", "p"]);
    let person = format!("{code}\n{out}\n{err}");
    assert_eq!(code, 0, "{person}");
    std::fs::write(gate.join("all.go"), "").expect("go");
    let status = support::wait_status_until(
        &mut child,
        std::time::Instant::now() + repo.timeout(),
        "orch up",
    );
    while let Ok(e) = lines.recv_timeout(std::time::Duration::from_secs(5)) {
        seen.push(e);
    }
    let all = serde_json::to_string_pretty(&seen).unwrap_or_default();
    let subjects = repo.subjects("plan/p");
    assert!(
        !subjects.iter().any(|s| s.starts_with("p 2.1")),
        "2.1 committed without passing its check: {subjects:?}\n{person}\n{all}"
    );
    assert_eq!(subjects, ["p 1.1: First"], "{all}");
    // Its check ran, after 1.1's agent was done with the worktree, and failed it.
    let at = |name: &str, id: &str| {
        seen.iter()
            .position(|e| e["event"] == name && e["task"] == id)
            .unwrap_or_else(|| panic!("no {name} of {id}\n{person}\n{all}"))
    };
    assert!(
        at("task_finished", "1.1") < at("task_checking", "2.1"),
        "{all}"
    );
    let failed = &seen[at("task_failed", "2.1")];
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("check")),
        "{failed}"
    );
    assert!(of_task(&seen, "task_started", "2.1").is_empty(), "{all}");
    assert_ne!(support::exit_code(status), 0, "{all}");
}

/// An attempt that keeps writing reports orch refuses (80 reports of another task) is answered
/// every time (refused, exit 4), but only the first 50 refusals are said (`report_refused` and
/// a line in its log), then one note: one attempt cannot fill the run's event log with them.
/// Its own task still completes; sandbox on and off.
#[test]
fn reports_a_flood_of_refused_reports_is_answered_but_said_a_bounded_number_of_times() {
    for sandbox in support::sandboxes() {
        let repo = Repo::bare_minimum();
        repo.commit_plan_p(
            "# P\n\n## Phase 1: One\n- [ ] 1.1 First\n\n## Phase 2: Two\n- [ ] 2.1 Second\n",
            &agent("hostile_report_flood.sh", &["80"]),
            "report = \"orch\"",
            &format!("retries = 0\nsandbox = \"{sandbox}\""),
        );
        let (code, out, err) =
            repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
        let ev = support::events(&out);
        assert_eq!(code, 0, "sandbox {sandbox}: orch up failed\n{out}\n{err}");
        let refused = repo.git(&["show", "plan/p:refused.txt"]);
        assert_eq!(
            refused.trim(),
            "80",
            "sandbox {sandbox}: every report answered"
        );
        assert_eq!(
            named(&ev, "report_refused").len(),
            50,
            "sandbox {sandbox}: the refusals said"
        );
        let notes: Vec<&Value> = named(&ev, "note")
            .into_iter()
            .filter(|n| {
                n["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("no longer said"))
            })
            .collect();
        assert_eq!(notes.len(), 1, "sandbox {sandbox}: {out}");
        let log =
            std::fs::read_to_string(repo.root().join(".orch/logs/p/1.1.log")).unwrap_or_default();
        assert_eq!(
            log.matches("report of task 2.1 refused").count(),
            50,
            "sandbox {sandbox}"
        );
        for id in ["1.1", "2.1"] {
            assert_eq!(
                repo.task("p", id)["status"],
                "completed",
                "sandbox {sandbox}"
            );
        }
    }
}

/// (e) Several repositories: the confined agent of plan `v2` (in api, another repository than
/// the home) tries to report the tasks of `docs` (home) and `client-v2` (client) while their
/// attempts wait: through its `ORCH_REPORT_DIR` set to theirs, a report file written into
/// theirs, a person's directory made beside them, a person's `orch task` (without its attempt's
/// variables, in its worktree and in the home repository), a report in its own repository's
/// state directory, an edit of their status files. Each is denied (a non-zero exit); each of
/// them is completed by its own agent only, and its own task by its own report.
#[test]
fn reports_an_agent_of_another_repository_reports_only_its_own_task() {
    use crate::support::three::{Three, plan_table, repo_table};
    if !landlock() {
        return;
    }
    let t = Three::new();
    let gate = t.home.outside("gate");
    std::fs::create_dir_all(&gate).expect("gate");
    for f in ["v2", "client", "docs"] {
        t.home.write(
            &format!("plans/{f}.md"),
            "# P\n\n## Phase 1: Work\n- [ ] 1.1 Something\n",
        );
    }
    let toml = format!(
        "[defaults]\nagent = \"a\"\nretries = 0\nsandbox = \"on\"\n\n[agents.a]\ncommand = {}\n\
         report = \"orch\"\nsandbox_write = [{:?}]\n{}{}{}{}{}",
        agent_at(
            "hostile_report_repos.sh",
            &[&gate, t.home.root(), t.client.root()]
        ),
        gate.display().to_string(),
        repo_table("api", &Three::rel(&t.api)),
        repo_table("client", &Three::rel(&t.client)),
        plan_table("v2", "v2", "repo = \"api\"\n"),
        plan_table("client-v2", "client", "repo = \"client\"\n"),
        plan_table("docs", "docs", ""),
    );
    t.home.write("plans.toml", &toml);
    t.home.commit_all("plans");
    let mains = [&t.home, &t.api, &t.client].map(|r| r.rev("main"));
    let (code, out, err) = t
        .home
        .run_cmd(t.home.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
    let ev = support::events(&out);
    let log = |r: &Repo, plan: &str| {
        std::fs::read_to_string(r.root().join(format!(".orch/logs/{plan}/1.1.log")))
            .unwrap_or_default()
    };
    let all = format!(
        "{out}\n{err}\n--- v2:\n{}\n--- docs:\n{}\n--- client-v2:\n{}",
        log(&t.api, "v2"),
        log(&t.home, "docs"),
        log(&t.client, "client-v2")
    );
    assert_eq!(code, 0, "orch up failed\n{all}");
    // What the agent of v2 was told: every try denied.
    let hostile = t.api.git(&["show", "plan/v2:hostile.txt"]);
    let tries = [
        "env-docs",
        "env-client",
        "file-docs",
        "file-client",
        "person-dir",
        "person-here",
        "person-home",
        "own-state",
        "edit-docs",
        "edit-client-v2",
    ];
    for what in tries {
        let line = hostile
            .lines()
            .find(|l| l.split(' ').next() == Some(what))
            .unwrap_or_else(|| panic!("no try `{what}`:\n{hostile}\n{all}"));
        assert_ne!(line, format!("{what} 0"), "{hostile}\n{all}");
    }
    // Denied where the others' attempts were waiting (their directories were there), not
    // missed.
    let tried = t.api.git(&["show", "plan/v2:try.log"]);
    assert!(
        tried.contains("Permission denied") || tried.contains("Read-only file system"),
        "{tried}"
    );
    assert!(!tried.contains("No such file"), "{tried}");
    // Each plan's task completed by its own agent, once, and committed in its own repository
    // with its own agent's work.
    for (r, plan) in [(&t.api, "v2"), (&t.client, "client-v2"), (&t.home, "docs")] {
        assert_eq!(r.task(plan, "1.1")["status"], "completed", "{plan}\n{all}");
        let started = named(&ev, "task_started")
            .into_iter()
            .filter(|e| e["plan"] == plan)
            .count();
        assert_eq!(started, 1, "{plan}: its agent ran {started} times\n{all}");
        assert_eq!(
            r.subjects(&format!("plan/{plan}")),
            [format!("{plan} 1.1: Something")],
            "{all}"
        );
        assert_eq!(
            r.git(&["show", &format!("plan/{plan}:work-{plan}.txt")]),
            format!("{plan} 1.1"),
            "{all}"
        );
    }
    assert!(named(&ev, "task_failed").is_empty(), "{all}");
    // Nothing left where the others report, no target moved.
    let left: Vec<_> = std::fs::read_dir(t.home.root().join(".orch/state/.reports/docs"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!([&t.home, &t.api, &t.client].map(|r| r.rev("main")), mains);
}
