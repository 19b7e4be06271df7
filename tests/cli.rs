//! End-to-end tests: the real `orch` binary on real files in temp dirs.

use crate::support;

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::Value;
use support::{
    TIMEOUT, code_out_err, file_snapshot as snapshot, orch_in, wait, write_file as write,
};

/// A command with a clean environment (no ORCH_* from the outside).
fn orch(dir: &Path, args: &[&str]) -> Command {
    orch_in(dir, args, &["ORCH_PLAN", "ORCH_STATUS_FILE"])
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    code_out_err(&wait(orch(dir, args).spawn().expect("spawn orch")))
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let (code, out, err) = run(dir, args);
    assert_eq!(code, 0, "orch {args:?} failed: {err}");
    serde_json::from_str(&out).expect("valid JSON")
}

const PLAN: &str = "# Demo plan

## Phase 1: Setup
- [ ] 1.1 Create `src/a.rs`
- [ ] 1.2 Create `src/b.rs`

**VERIFY Phase 1:**
- Both files exist

## Phase 2: Build
- [ ] 2.1 Wire a and b (depends: 1.1)
- [ ] 2.2 Document it
";

#[test]
fn status_json_contract_for_a_plan_path_without_manifest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(tmp.path(), "plan.md", PLAN);
    let before = snapshot(tmp.path());
    let v = json(tmp.path(), &["status", "--plan", "plan.md", "--json"]);
    assert_eq!(snapshot(tmp.path()), before, "status writes nothing");
    let tasks = v["tasks"].as_array().expect("tasks array");
    let ids: Vec<&str> = tasks
        .iter()
        .map(|t| t["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["1.1", "1.2", "V1", "2.1", "2.2"]);
    assert_eq!(tasks[2]["kind"], "verify");
    assert_eq!(tasks[3]["kind"], "task");
    assert_eq!(tasks[3]["phase"], 2);
    assert_eq!(tasks[3]["description"], "Wire a and b (depends: 1.1)");
    assert_eq!(tasks[3]["dependencies"], serde_json::json!(["1.1"]));
    assert_eq!(tasks[3]["status"], "pending");
    assert_eq!(v["summary"]["pending"], 5);
    assert_eq!(v["summary"]["completed"], 0);
}

#[test]
fn next_and_task_transitions_update_the_status_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(tmp.path(), "plan.md", PLAN);
    let d = tmp.path();
    let next = json(d, &["next", "--plan", "plan.md", "--json"]);
    let ready: Vec<&str> = next["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ready, ["1.1", "1.2"]);

    // Not ready: refused with exit 4, nothing written.
    let (code, _, err) = run(d, &["task", "start", "2.2", "--plan", "plan.md"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("task `2.2` is not ready"), "{err}");
    assert!(!d.join(".orch/state/plan/status.json").exists());

    assert_eq!(run(d, &["task", "start", "1.1", "--plan", "plan.md"]).0, 0);
    let (code, _, err) = run(d, &["task", "start", "1.1", "--plan", "plan.md"]);
    assert_eq!(code, 4, "already running: {err}");
    assert_eq!(
        run(
            d,
            &[
                "task", "done", "1.1", "--plan", "plan.md", "--note", "made a"
            ]
        )
        .0,
        0
    );
    assert_eq!(
        run(
            d,
            &[
                "task",
                "fail",
                "1.2",
                "--plan",
                "plan.md",
                "--error",
                "disk full"
            ]
        )
        .0,
        0
    );

    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(d.join(".orch/state/plan/status.json")).expect("status file"),
    )
    .expect("json");
    assert_eq!(file["planName"], "Demo plan");
    assert_eq!(file["planPath"], "plan.md");
    let t11 = &file["tasks"][0];
    assert_eq!(
        (
            t11["id"].as_str(),
            t11["status"].as_str(),
            t11["notes"].as_str()
        ),
        (Some("1.1"), Some("completed"), Some("made a"))
    );
    assert_eq!(file["tasks"][1]["lastError"], "disk full");
    assert_eq!(file["verifySteps"][0]["id"], "V1");

    let next = json(d, &["next", "--plan", "plan.md", "--json"]);
    let ready: Vec<&str> = next["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ready, ["2.1"], "2.1 depends only on 1.1");
    let blocked = next["blocked"].as_array().expect("blocked");
    let v1 = blocked
        .iter()
        .find(|b| b["id"] == "V1")
        .expect("V1 blocked");
    assert!(
        v1["waiting_for"][0]
            .as_str()
            .expect("reason")
            .contains("failed `1.2`"),
        "{v1}"
    );

    // Completed → pending needs --force.
    let (code, _, err) = run(d, &["task", "reset", "1.1", "--plan", "plan.md"]);
    assert_eq!(code, 4, "{err}");
    assert_eq!(
        run(d, &["task", "reset", "1.1", "--plan", "plan.md", "--force"]).0,
        0
    );
    let s = json(d, &["status", "--plan", "plan.md", "--json"]);
    assert_eq!(s["tasks"][0]["status"], "pending");
    // Unknown task: exit 2.
    let (code, _, err) = run(d, &["task", "done", "9.9", "--plan", "plan.md"]);
    assert_eq!(code, 2);
    assert!(err.contains("task `9.9` does not exist"), "{err}");
}

#[test]
fn fifty_concurrent_task_done_processes_lose_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut plan = String::from("# Wide\n\n## Phase 1: All at once\n");
    for i in 1..=50 {
        plan.push_str(&format!("- [ ] 1.{i} Task {i}\n"));
    }
    write(tmp.path(), "wide.md", &plan);
    let children: Vec<Child> = (1..=50)
        .map(|i| {
            orch(
                tmp.path(),
                &[
                    "task",
                    "done",
                    &format!("1.{i}"),
                    "--plan",
                    "wide.md",
                    "--note",
                    &format!("n{i}"),
                ],
            )
            .spawn()
            .expect("spawn")
        })
        .collect();
    for c in children {
        let out = wait(c);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v = json(tmp.path(), &["status", "--plan", "wide.md", "--json"]);
    assert_eq!(v["summary"]["completed"], 50, "{}", v["summary"]);
    for (i, t) in v["tasks"].as_array().expect("tasks").iter().enumerate() {
        assert_eq!(t["notes"], format!("n{}", i + 1));
    }
}

#[test]
fn plan_errors_are_reported_with_file_and_line_and_exit_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(
        tmp.path(),
        "bad.md",
        "## Phase 1: A\n- [ ] 1.1 a (depends: 1.3)\n- [ ] 1.2 b (depends: 1.1)\n- [ ] 1.3 c (depends: 1.2)\n- [ ] 1.3 dup\n- [ ] 1.4 d (depends: 7.7)\n",
    );
    let before = snapshot(tmp.path());
    let (code, _, err) = run(tmp.path(), &["check", "--plan", "bad.md"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.md:5: error: duplicate task id `1.3` (first defined at line 4)"),
        "{err}"
    );
    assert!(
        err.contains("bad.md:6: error: task `1.4` depends on `7.7`"),
        "{err}"
    );
    // Other commands refuse too, naming the problem; nothing is written.
    let (code, _, err) = run(tmp.path(), &["next", "--plan", "bad.md"]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.md:5"), "{err}");
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn cycle_is_reported_with_its_whole_path() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(
        tmp.path(),
        "cyc.md",
        "## Phase 1: A\n- [ ] 1.1 a (depends: 1.3)\n- [ ] 1.2 b (depends: 1.1)\n- [ ] 1.3 c (depends: 1.2)\n",
    );
    let v: Value = {
        let (code, out, _) = run(tmp.path(), &["check", "--plan", "cyc.md", "--json"]);
        assert_eq!(code, 2);
        serde_json::from_str(&out).expect("json")
    };
    assert_eq!(v["valid"], false);
    let d = &v["diagnostics"][0];
    assert_eq!(d["line"], 2);
    assert!(
        d["message"]
            .as_str()
            .expect("msg")
            .contains("`1.1` → `1.3` → `1.2` → `1.1`"),
        "{d}"
    );
}

#[test]
fn corrupt_status_file_is_an_error_and_is_left_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write(d, "plan.md", PLAN);
    let status = write(
        d,
        ".orch/state/plan/status.json",
        "{\n  \"planPath\": \"plan.md\",\n  oops\n}\n",
    );
    let before = std::fs::read(&status).expect("read");
    let (code, _, err) = run(d, &["task", "done", "1.1", "--plan", "plan.md"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("status.json"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(
        std::fs::read(&status).expect("read"),
        before,
        "corrupt file untouched"
    );
    // The way out keeps the old file.
    assert_eq!(run(d, &["status", "--plan", "plan.md", "--rebuild"]).0, 0);
    let kept = std::fs::read_dir(status.parent().expect("dir"))
        .expect("dir")
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("status.json.corrupt-")
        });
    assert!(kept);
    assert_eq!(run(d, &["task", "done", "1.1", "--plan", "plan.md"]).0, 0);
}

const MANIFEST: &str = r#"[defaults]
target = "main"

[agents.script]
command = ["sh", "scripts/agent.sh", "{{ task }}"]

[[plan]]
name = "auth"
file = "docs/auth.md"
priority = 10

[[plan]]
name = "api"
file = "docs/api.md"
agent = "script"
depends_on = ["auth:1"]
"#;

#[test]
fn manifest_cross_plan_gating_from_a_subdirectory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write(d, "plans.toml", MANIFEST);
    write(
        d,
        "docs/auth.md",
        "## Phase 1: A\n- [ ] 1.1 a\n## Phase 2: B\n- [ ] 2.1 b\n",
    );
    write(d, "docs/api.md", "## Phase 1: X\n- [ ] 1.1 x\n");
    let sub = d.join("docs");
    let next = json(&sub, &["next", "--json"]);
    let ready: Vec<(String, String)> = next["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| {
            (
                t["plan"].as_str().unwrap_or("").to_string(),
                t["id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(ready, [("auth".to_string(), "1.1".to_string())]);
    let api = next["blocked"]
        .as_array()
        .expect("blocked")
        .iter()
        .find(|b| b["plan"] == "api")
        .expect("api blocked");
    assert!(
        api["waiting_for"][0]
            .as_str()
            .expect("why")
            .contains("plan `auth` (phase 1)"),
        "{api}"
    );

    // `task done 1.1` is ambiguous across plans; with --plan it goes to auth's status file.
    let (code, _, err) = run(&sub, &["task", "done", "1.1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("several plans"), "{err}");
    assert_eq!(run(&sub, &["task", "done", "1.1", "--plan", "auth"]).0, 0);
    assert!(d.join(".orch/state/auth/status.json").is_file());

    let next = json(&sub, &["next", "--json", "--plan", "api"]);
    assert_eq!(next["tasks"][0]["id"], "1.1");
    assert_eq!(next["tasks"][0]["plan"], "api");
}

#[test]
fn manifest_errors_name_file_line_and_column() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write(d, "docs/auth.md", "## Phase 1: A\n- [ ] 1.1 a\n");
    write(
        d,
        "plans.toml",
        "[[plan]]\nname = \"auth\"\nfile = \"docs/auth.md\"\nnmae = \"x\"\n\n[[plan]]\nname = \"api\"\nfile = \"docs/missing.md\"\ndepends_on = [\"auth:9\"]\n",
    );
    let before = snapshot(d);
    let (code, _, err) = run(d, &["check"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("plans.toml:4:1"), "{err}");
    assert!(err.contains("plans.toml:8:8"), "{err}");
    assert_eq!(snapshot(d), before);
}

#[test]
fn manifest_phase_target_must_exist() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write(d, "docs/auth.md", "## Phase 1: A\n- [ ] 1.1 a\n");
    write(d, "docs/api.md", "## Phase 1: A\n- [ ] 1.1 a\n");
    write(
        d,
        "plans.toml",
        "[[plan]]\nname = \"auth\"\nfile = \"docs/auth.md\"\n\n[[plan]]\nname = \"api\"\nfile = \"docs/api.md\"\ndepends_on = [\"auth:9\"]\n",
    );
    let (code, _, err) = run(d, &["check"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("plans.toml:8:") && err.contains("plan `auth` has no phase 9"),
        "{err}"
    );
}

#[test]
fn agent_environment_selects_the_plan_and_status_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write(d, "plan.md", PLAN);
    let status = d.join("elsewhere/status.json");
    let out = wait(
        orch(d, &["task", "done", "1.1"])
            .env("ORCH_PLAN", d.join("plan.md"))
            .env("ORCH_STATUS_FILE", &status)
            .spawn()
            .expect("spawn"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(&status).expect("status")).expect("json");
    assert_eq!(file["tasks"][0]["status"], "completed");
}

#[test]
fn graph_formats_render() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(tmp.path(), "plan.md", PLAN);
    let (code, dot, _) = run(
        tmp.path(),
        &["graph", "--plan", "plan.md", "--format", "dot"],
    );
    assert_eq!(code, 0);
    assert!(dot.starts_with("digraph orch {"), "{dot}");
    assert!(dot.contains("\"plan_1_1\" -> \"plan_2_1\""), "{dot}");
    let (code, mm, _) = run(
        tmp.path(),
        &["graph", "--plan", "plan.md", "--format", "mermaid"],
    );
    assert_eq!(code, 0);
    assert!(mm.contains("plan_1_1 --> plan_2_1"), "{mm}");
}

#[test]
fn no_manifest_and_no_plan_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = run(tmp.path(), &["status"]);
    assert_eq!(code, 2);
    assert!(err.contains("no `plans.toml` found"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn plan_in_a_linked_worktree_keeps_its_status_in_the_main_repository() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let main = tmp.path().join("repo");
    let wt = tmp.path().join("wt");
    std::fs::create_dir_all(main.join(".git/worktrees/wt")).expect("mkdir");
    std::fs::create_dir_all(&wt).expect("mkdir");
    std::fs::write(
        wt.join(".git"),
        format!("gitdir: {}\n", main.join(".git/worktrees/wt").display()),
    )
    .expect("write");
    write(&wt, "plan.md", PLAN);
    assert_eq!(run(&wt, &["task", "done", "1.1", "--plan", "plan.md"]).0, 0);
    assert!(
        main.join(".orch/state/plan/status.json").is_file(),
        "status in the main repository"
    );
    assert!(
        !wt.join(".orch").exists(),
        "nothing written inside the worktree"
    );
}

/// Regression: with stdout and stderr on one non-blocking pipe that fills up (as some agent
/// runtimes set them), `orch check` lost parts of its report and could print its verdict before
/// the rest of the critical-path line. The report now arrives whole, the verdict after it.
#[test]
fn check_report_arrives_whole_before_the_verdict_on_a_full_nonblocking_pipe() {
    use std::io::{ErrorKind, Read};
    use std::process::Stdio;

    use nix::fcntl::OFlag;

    let tmp = tempfile::tempdir().expect("tempdir");
    // One phase of 12,000 tasks: the first wave is one line of about 84 KB, more than a pipe holds.
    let mut plan = String::from("# Wide\n\n## Phase 1: All\n");
    for i in 1..=12_000 {
        plan.push_str(&format!("- [ ] 1.{i} Task {i}\n"));
    }
    plan.push_str("\n## Phase 2: After\n- [ ] 2.1 Last\n");
    write(tmp.path(), "wide.md", &plan);
    let (r, w) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).expect("pipe");
    let w2 = w.try_clone().expect("dup");
    let child = orch(tmp.path(), &["check", "--plan", "wide.md"])
        .stdout(Stdio::from(w))
        .stderr(Stdio::from(w2))
        .spawn()
        .expect("spawn");
    let mut reader = std::fs::File::from(r);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        assert!(std::time::Instant::now() < deadline, "timed out");
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("read: {e}"),
        }
        // A slow reader: the pipe fills and the writer sees EAGAIN.
        std::thread::sleep(Duration::from_micros(300));
    }
    let output = wait(child);
    assert!(output.status.success());
    let text = String::from_utf8(out).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    let n = lines.len();
    assert!(n >= 4, "{text}");
    assert_eq!(lines[n - 1], "ok: 0 error(s), 0 warning(s)");
    assert_eq!(lines[n - 2], "critical path (2 tasks): 1.1 → 2.1");
    let wave1 = lines
        .iter()
        .find(|l| l.trim_start().starts_with("1: "))
        .expect("wave 1");
    assert_eq!(
        wave1.split_whitespace().count(),
        12_001,
        "every task of wave 1"
    );
}

/// `orch task done` with a named plan of a manifest records `orchPlanDigest`; while the plan
/// file is unchanged later calls skip parsing it, and a changed plan is reconciled again.
#[test]
fn task_done_follows_plan_changes_through_the_plan_digest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write(
        d,
        "plans.toml",
        "[[plan]]\nname = \"auth\"\nfile = \"docs/auth.md\"\n",
    );
    let plan = "# Auth\n\n## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n";
    write(d, "docs/auth.md", plan);
    let status = d.join(".orch/state/auth/status.json");
    let read = || -> Value {
        serde_json::from_str(&std::fs::read_to_string(&status).expect("status file")).expect("json")
    };
    assert_eq!(run(d, &["task", "done", "1.1", "--plan", "auth"]).0, 0);
    let first = read();
    let digest = first["orchPlanDigest"]
        .as_str()
        .expect("digest")
        .to_string();
    assert_eq!(first["tasks"][0]["status"], "completed");

    // Unchanged plan: recorded in place, the digest kept.
    let (code, out, err) = run(
        d,
        &["task", "fail", "1.2", "--plan", "auth", "--error", "x"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "auth: task `1.2` pending → failed");
    let second = read();
    assert_eq!(second["orchPlanDigest"], digest.as_str());
    assert_eq!(second["tasks"][1]["status"], "failed");
    assert_eq!(second["summary"]["failed"], 1);
    assert_eq!(second["summary"]["completed"], 1);

    // An unknown task: exit 2, nothing written.
    let before = std::fs::read(&status).expect("read");
    let (code, _, err) = run(d, &["task", "done", "9.9", "--plan", "auth"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("task `9.9` does not exist in plan `auth`"),
        "{err}"
    );
    assert_eq!(std::fs::read(&status).expect("read"), before);

    // The plan gains a task: the next call reconciles and records the new digest.
    write(d, "docs/auth.md", &format!("{plan}- [ ] 1.3 c\n"));
    assert_eq!(run(d, &["task", "done", "1.3", "--plan", "auth"]).0, 0);
    let third = read();
    assert_ne!(third["orchPlanDigest"], digest.as_str());
    let ids: Vec<&str> = third["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["1.1", "1.2", "1.3"]);
    assert_eq!(third["tasks"][2]["status"], "completed");
    assert_eq!(third["summary"]["totalTasks"], 3);

    // As an agent under `orch up` calls it: plan, status file and manifest from the environment.
    let elsewhere = d.join("elsewhere/status.json");
    let out = wait(
        orch(d, &["task", "done", "1.1"])
            .env("ORCH_PLAN", "auth")
            .env("ORCH_STATUS_FILE", &elsewhere)
            .env("ORCH_MANIFEST", d.join("plans.toml"))
            .spawn()
            .expect("spawn"),
    );
    assert!(out.status.success());
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&elsewhere).expect("file")).expect("json");
    assert_eq!(v["tasks"][0]["status"], "completed");
    assert_eq!(v["orchPlan"], "auth");
}

#[test]
fn status_shows_the_last_replan_of_the_latest_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write(d, "docs/auth.md", "# Auth\n\n## Phase 1: A\n- [ ] 1.1 a\n");
    write(
        d,
        "plans.toml",
        "[[plan]]\nname = \"auth\"\nfile = \"docs/auth.md\"\n",
    );
    let v = json(d, &["status", "--json"]);
    assert!(v.get("reload").is_none(), "no run, no reload: {v}");
    let root = std::path::absolute(d).expect("absolute");
    let manifest = root.join("plans.toml");
    let started = serde_json::json!({"at": "2026-11-23T10:00:00.000Z", "event": "run_started", "plans": ["auth"], "max_agents": 1});
    let invalid = serde_json::json!({"at": "2026-11-23T10:01:00.000Z", "event": "manifest_invalid", "file": manifest, "errors": ["plans.toml:4:1: error: unknown key `nmae`"]});
    let reloaded = serde_json::json!({"at": "2026-11-23T10:02:00.000Z", "event": "manifest_reloaded", "files": [manifest], "changes": ["plan auth: priority 0 → 5"]});
    let log_at = |file: &str, events: &[&Value]| {
        let lines: Vec<String> = events.iter().map(|e| format!("{e}\n")).collect();
        write(d, &format!(".orch/state/{file}"), &lines.concat());
    };
    let log = |events: &[&Value]| log_at(".events.jsonl", events);
    // An earlier orch's `events.jsonl` is read (taken over as `.events.jsonl`).
    log_at("events.jsonl", &[&started, &invalid]);
    let v = json(d, &["status", "--json"]);
    assert_eq!(v["reload"], invalid, "{v}");
    let (code, out, err) = run(d, &["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "re-plan: `plans.toml` invalid since 2026-11-23T10:01:00.000Z, not applied (the last good configuration stays):\n  plans.toml:4:1: error: unknown key `nmae`"
        ),
        "{out}"
    );
    // An invalid edit followed by a good reload: the reload; one plan's view has it too.
    log(&[&started, &invalid, &reloaded]);
    let v = json(d, &["status", "--json", "--plan", "auth"]);
    assert_eq!(v["reload"]["event"], "manifest_reloaded", "{v}");
    assert_eq!(v["reload"]["at"], "2026-11-23T10:02:00.000Z");
    assert_eq!(v["reload"]["files"][0], manifest.to_str().expect("utf-8"));
    assert_eq!(v["reload"]["changes"][0], "plan auth: priority 0 → 5");
    let (_, out, _) = run(d, &["status"]);
    assert!(
        out.contains("re-plan: reloaded at 2026-11-23T10:02:00.000Z: plan auth: priority 0 → 5"),
        "{out}"
    );
    // A newer run without a re-plan: none.
    log(&[&invalid, &reloaded, &started]);
    let v = json(d, &["status", "--json"]);
    assert!(v.get("reload").is_none(), "{v}");
}
