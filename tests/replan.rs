//! Live re-planning end to end: a lead edits `plans.toml` and the plan files while a
//! real `orch up` runs scripted agents that wait for a go from the test (`gated.sh`). Each test
//! waits for the run's `manifest_reloaded` (or `manifest_invalid`) before it lets the agents go
//! on, so what it checks is what the edit changed.

use crate::support;

use std::path::Path;
use std::process::Child;
use std::sync::mpsc::Receiver;

use serde_json::Value;
use support::{Repo, agent_at, read_lines, wait_line, wait_within};

const ONE: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 first\n";
const TWO: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 first\n- [ ] 1.2 second (depends: 1.1)\n";

/// A repository whose plans (`name`, extra `[[plan]]` lines, plan text) run the gated agent
/// with its files in `gate`, `[defaults]` with `defaults`; committed.
fn repo_with(gate: &Path, defaults: &str, plans: &[(&str, &str, &str)]) -> Repo {
    let repo = Repo::new();
    write_manifest(&repo, gate, defaults, plans);
    repo.commit_all("plans");
    repo
}

/// Writes the manifest and the plan files (not committed), each as an editor saves it.
fn write_manifest(repo: &Repo, gate: &Path, defaults: &str, plans: &[(&str, &str, &str)]) {
    for (name, _, text) in plans {
        save(repo, &format!("docs/plans/{name}.md"), text);
    }
    let mut toml = format!(
        "[defaults]\nagent = \"a\"\nretries = 0\n{defaults}\n\n[agents.a]\ncommand = {}\n",
        agent_at("gated.sh", &[gate, Path::new("60")])
    );
    for (name, extra, _) in plans {
        toml.push_str(&format!(
            "\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\n{extra}\n"
        ));
    }
    save(repo, "plans.toml", &toml);
}

/// Writes `rel` as an editor saves it: a new file renamed over the old one (the run never reads
/// half of it; `a_rename_over_write_and_a_burst_of_writes_apply_once_each` writes in place).
fn save(repo: &Repo, rel: &str, text: &str) {
    let path = repo.root().join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let tmp = path.with_extension("saving");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
}

fn touch(gate: &Path, name: &str) {
    std::fs::write(gate.join(name), "").expect("touch");
}

fn up(repo: &Repo) -> (Child, Receiver<Value>) {
    let mut child = repo.orch(&["up", "--json"]).spawn().expect("spawn orch up");
    let lines = read_lines(&mut child);
    (child, lines)
}

fn is(v: &Value, event: &str, plan: &str, task: &str) -> bool {
    v["event"] == event && v["plan"] == plan && v["task"] == task
}

fn reloaded(v: &Value, change: &str) -> bool {
    v["event"] == "manifest_reloaded"
        && v["changes"].as_array().is_some_and(|c| {
            c.iter()
                .any(|x| x.as_str().is_some_and(|s| s.contains(change)))
        })
}

/// Lets every agent go and waits for the end of the run; its exit code and every event.
fn finish(
    gate: &Path,
    child: Child,
    lines: &Receiver<Value>,
    mut seen: Vec<Value>,
) -> (i32, Vec<Value>) {
    touch(gate, "all.go");
    let out = wait_within(child, support::TIMEOUT, "orch up");
    while let Ok(v) = lines.try_recv() {
        seen.push(v);
    }
    (out.status.code().unwrap_or(-1), seen)
}

fn position(seen: &[Value], pred: impl Fn(&Value) -> bool) -> Option<usize> {
    seen.iter().position(pred)
}

#[test]
fn a_raised_priority_reorders_the_next_starts() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    // Plan b's setup waits for a go, so that a's first task, not b's, takes the one agent
    // (otherwise whichever plan's worktree is made first starts first).
    let setup = format!(
        "setup = [\"sh\", \"-c\", \"i=0; while [ ! -e '{}' ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\"]",
        g.join("b-setup.go").display()
    );
    let plans = [("a", "priority = 5", TWO), ("b", setup.as_str(), ONE)];
    let repo = repo_with(g, "max_agents = 1", &plans);
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| is(v, "task_started", "a", "1.1"));
    touch(g, "b-setup.go");
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "setup_finished" && v["plan"] == "b" && v["ok"] == true
    });
    // Plan b now comes first: when a's first task ends, b's task starts, not a's second.
    let raised = format!("priority = 9\n{setup}");
    write_manifest(
        &repo,
        g,
        "max_agents = 1",
        &[("a", "priority = 5", TWO), ("b", raised.as_str(), ONE)],
    );
    wait_line(&lines, &mut seen, |v| reloaded(v, "plan b: priority 0 → 9"));
    touch(g, "a-1.1.go");
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "task_started" && v["task"] == "1.1" && v["plan"] == "b"
    });
    assert!(
        position(&seen, |v| is(v, "task_started", "a", "1.2")).is_none(),
        "a's second task started before b's: {seen:?}"
    );
    let (code, seen) = finish(g, child, &lines, seen);
    assert_eq!(code, 0, "{seen:?}");
    assert_eq!(repo.subjects("plan/a").len(), 2);
    assert_eq!(repo.subjects("plan/b"), ["b 1.1: first"]);
}

#[test]
fn a_raised_max_agents_starts_more_at_once() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let plans = [("a", "", ONE), ("b", "", ONE), ("c", "", ONE)];
    let repo = repo_with(g, "max_agents = 1", &plans);
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| v["event"] == "task_started");
    write_manifest(&repo, g, "max_agents = 3", &plans);
    wait_line(&lines, &mut seen, |v| reloaded(v, "max_agents 1 → 3"));
    // With the first agent still waiting for its go, the two others start.
    let mut started = 1;
    while started < 3 {
        wait_line(&lines, &mut seen, |v| v["event"] == "task_started");
        started += 1;
    }
    assert!(
        position(&seen, |v| v["event"] == "task_finished").is_none(),
        "{seen:?}"
    );
    let (code, seen) = finish(g, child, &lines, seen);
    assert_eq!(code, 0, "{seen:?}");
}

#[test]
fn a_new_plan_starts_without_a_restart() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let repo = repo_with(g, "", &[("a", "", ONE)]);
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| is(v, "task_started", "a", "1.1"));
    // The new plan's file is committed first (its worktree is made from the target).
    save(&repo, "docs/plans/c.md", ONE);
    repo.commit_all("plan c");
    write_manifest(&repo, g, "", &[("a", "", ONE), ("c", "", ONE)]);
    wait_line(&lines, &mut seen, |v| reloaded(v, "plan c: added"));
    wait_line(&lines, &mut seen, |v| is(v, "task_started", "c", "1.1"));
    let (code, seen) = finish(g, child, &lines, seen);
    assert_eq!(code, 0, "{seen:?}");
    assert_eq!(repo.subjects("plan/c"), ["c 1.1: first"]);
    let done = seen
        .iter()
        .find(|v| v["event"] == "run_finished")
        .expect("run_finished");
    assert!(done.to_string().contains("\"c\""), "{done}");
}

#[test]
fn a_new_plan_is_in_the_integration_preview() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let defaults = "verify = [\"true\"]\nintegrate = \"0s\"";
    let repo = repo_with(g, defaults, &[("a", "", ONE)]);
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| is(v, "task_started", "a", "1.1"));
    save(&repo, "docs/plans/c.md", ONE);
    repo.commit_all("plan c");
    write_manifest(&repo, g, defaults, &[("a", "", ONE), ("c", "", ONE)]);
    wait_line(&lines, &mut seen, |v| reloaded(v, "plan c: added"));
    let (code, seen) = finish(g, child, &lines, seen);
    assert_eq!(code, 0, "{seen:?}");
    // The run's last test saw both plans' last commits, the added one too.
    let (_, out, _) = repo.run(&["status", "--json"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["integration"]["result"], "green", "{v}");
    let tested: Vec<(String, String)> = v["integration"]["tested"]
        .as_array()
        .unwrap_or_else(|| panic!("nothing tested: {v}"))
        .iter()
        .filter_map(|t| Some((t["plan"].as_str()?.into(), t["commit"].as_str()?.into())))
        .collect();
    assert_eq!(
        tested,
        [
            ("a".to_string(), repo.rev("plan/a")),
            ("c".to_string(), repo.rev("plan/c"))
        ],
        "{v}"
    );
}

#[test]
fn a_new_plan_whose_file_is_not_committed_is_reported_and_not_started() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let repo = repo_with(g, "", &[("a", "", ONE)]);
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| is(v, "task_started", "a", "1.1"));
    write_manifest(&repo, g, "", &[("a", "", ONE), ("c", "", ONE)]);
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "manifest_invalid" && v.to_string().contains("commit it on `main` first")
    });
    let (code, seen) = finish(g, child, &lines, seen);
    assert_eq!(code, 0, "{seen:?}");
    assert!(position(&seen, |v| v["plan"] == "c").is_none(), "{seen:?}");
}

#[test]
fn a_removed_plan_starts_nothing_new_and_its_running_task_is_committed() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let repo = repo_with(g, "", &[("a", "", ONE), ("b", "", TWO)]);
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| is(v, "task_started", "b", "1.1"));
    write_manifest(&repo, g, "", &[("a", "", ONE)]);
    wait_line(&lines, &mut seen, |v| reloaded(v, "plan b: removed"));
    touch(g, "b-1.1.go");
    wait_line(&lines, &mut seen, |v| is(v, "task_finished", "b", "1.1"));
    let (code, seen) = finish(g, child, &lines, seen);
    assert_eq!(code, 0, "{seen:?}");
    assert!(
        position(&seen, |v| is(v, "task_started", "b", "1.2")).is_none(),
        "{seen:?}"
    );
    assert_eq!(repo.subjects("plan/b"), ["b 1.1: first"]);
    let done = seen
        .iter()
        .find(|v| v["event"] == "run_finished")
        .expect("run_finished");
    let b = done["summary"]["plans"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["plan"] == "b"))
        .cloned()
        .unwrap_or_else(|| panic!("{done}"));
    assert_eq!(b["outcome"], "removed", "{b}");
    assert!(repo.root().join(".orch/worktrees/b").is_dir());
}

#[test]
fn a_task_added_to_a_running_plan_runs() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let repo = repo_with(g, "", &[("a", "", ONE)]);
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| is(v, "task_started", "a", "1.1"));
    save(
        &repo,
        "docs/plans/a.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 first\n- [ ] 1.4 fourth (depends: 1.1)\n",
    );
    wait_line(&lines, &mut seen, |v| reloaded(v, "plan a: task 1.4 added"));
    let (code, seen) = finish(g, child, &lines, seen);
    assert_eq!(code, 0, "{seen:?}");
    assert_eq!(repo.subjects("plan/a"), ["a 1.1: first", "a 1.4: fourth"]);
    assert!(position(&seen, |v| is(v, "task_finished", "a", "1.4")).is_some());
}

#[test]
fn a_running_task_whose_text_changed_finishes_with_its_original_prompt() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let repo = repo_with(g, "", &[("a", "", TWO)]);
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| is(v, "task_started", "a", "1.1"));
    touch(g, "a-1.1.go");
    wait_line(&lines, &mut seen, |v| is(v, "task_started", "a", "1.2"));
    // 1.1 is done, 1.2 runs; both reworded, and 1.3 added after them.
    save(
        &repo,
        "docs/plans/a.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 first, reworded\n\
         - [ ] 1.2 second, reworded (depends: 1.1)\n- [ ] 1.3 third (depends: 1.2)\n",
    );
    wait_line(&lines, &mut seen, |v| {
        reloaded(v, "plan a: task 1.2 changed")
    });
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "note"
            && v["message"].as_str().is_some_and(|m| {
                m.contains("task `1.1` of plan `a` changed but is finished already")
            })
    });
    let (code, seen) = finish(g, child, &lines, seen);
    assert_eq!(code, 0, "{seen:?}");
    let prompt = |id: &str| {
        std::fs::read_to_string(repo.root().join(format!(".orch/logs/a/{id}.prompt.md")))
            .expect("prompt")
    };
    let second = prompt("1.2");
    assert!(
        second.contains("second") && !second.contains("reworded"),
        "{second}"
    );
    assert!(prompt("1.3").contains("third"));
    // The finished task is not run again.
    let starts = seen
        .iter()
        .filter(|v| is(v, "task_started", "a", "1.1"))
        .count();
    assert_eq!(starts, 1, "{seen:?}");
    assert_eq!(
        repo.subjects("plan/a"),
        ["a 1.1: first", "a 1.2: second", "a 1.3: third"]
    );
}

#[test]
fn invalid_edits_leave_the_run_going_and_a_fixed_edit_then_applies() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let repo = Repo::new();
    write_manifest(&repo, g, "max_agents = 1", &[("a", "", TWO)]);
    // A hook that keeps every event it gets: a lead hears of an invalid edit there too.
    let heard = g.join("heard.jsonl");
    let hook = format!(
        "\n[[notify]]\ncommand = [\"sh\", \"-c\", \"cat >> '{}'\"]\n",
        heard.display()
    );
    let text = std::fs::read_to_string(repo.root().join("plans.toml")).expect("read");
    save(&repo, "plans.toml", &format!("{text}{hook}"));
    repo.commit_all("plans");
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| is(v, "task_started", "a", "1.1"));
    let good = std::fs::read_to_string(repo.root().join("plans.toml")).expect("read");
    // A TOML syntax error.
    save(&repo, "plans.toml", &format!("{good}\n[[plan]\n"));
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "manifest_invalid" && v.to_string().contains("plans.toml:")
    });
    // An unknown plan in `depends_on`.
    save(
        &repo,
        "plans.toml",
        &good.replace(
            "file = \"docs/plans/a.md\"",
            "file = \"docs/plans/a.md\"\ndepends_on = [\"nope\"]",
        ),
    );
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "manifest_invalid" && v.to_string().contains("nope")
    });
    // A cycle between two plans.
    save(&repo, "docs/plans/c.md", ONE);
    repo.commit_all("plan c");
    let cyclic = format!(
        "{}\n[[plan]]\nname = \"c\"\nfile = \"docs/plans/c.md\"\ndepends_on = [\"a\"]\n",
        good.replace(
            "file = \"docs/plans/a.md\"",
            "file = \"docs/plans/a.md\"\ndepends_on = [\"c\"]"
        )
    );
    save(&repo, "plans.toml", &cyclic);
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "manifest_invalid" && v.to_string().contains("cycle")
    });
    // The last good settings stay: max_agents 1, a's second task next.
    touch(g, "a-1.1.go");
    wait_line(&lines, &mut seen, |v| is(v, "task_started", "a", "1.2"));
    // Fixed: plan c added, max_agents 2; c starts beside a's running task.
    let fixed = format!(
        "{}\n[[plan]]\nname = \"c\"\nfile = \"docs/plans/c.md\"\n",
        good.replace("max_agents = 1", "max_agents = 2")
    );
    save(&repo, "plans.toml", &fixed);
    wait_line(&lines, &mut seen, |v| reloaded(v, "plan c: added"));
    wait_line(&lines, &mut seen, |v| is(v, "task_started", "c", "1.1"));
    let (code, seen) = finish(g, child, &lines, seen);
    assert_eq!(code, 0, "{seen:?}");
    assert_eq!(repo.subjects("plan/a").len(), 2);
    assert_eq!(repo.subjects("plan/c"), ["c 1.1: first"]);
    // The error is in the event log too (what `orch top` and `orch status` read), and the
    // hook heard of it.
    let log = std::fs::read_to_string(repo.root().join(".orch/state/.events.jsonl")).expect("log");
    assert!(log.contains("\"manifest_invalid\""), "{log}");
    let heard = std::fs::read_to_string(&heard).expect("hook");
    assert_eq!(heard.matches("\"manifest_invalid\"").count(), 3, "{heard}");
    assert!(heard.contains("\"manifest_reloaded\""), "{heard}");
    let (_, status, _) = repo.run(&["status", "--json"]);
    assert!(status.contains("\"reload\""), "{status}");
}

#[test]
fn a_rename_over_write_and_a_burst_of_writes_apply_once_each() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let plans = [
        ("a", "", ONE),
        ("b", "", ONE),
        ("c", "", ONE),
        ("d", "", ONE),
    ];
    let repo = repo_with(g, "max_agents = 1", &plans);
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| v["event"] == "task_started");
    let toml = repo.root().join("plans.toml");
    let text = std::fs::read_to_string(&toml).expect("read");
    // An editor's save: a new file renamed over the old one.
    let tmp = repo.root().join(".plans.toml.swp");
    std::fs::write(&tmp, text.replace("max_agents = 1", "max_agents = 2")).expect("write");
    std::fs::rename(&tmp, &toml).expect("rename");
    wait_line(&lines, &mut seen, |v| reloaded(v, "max_agents 1 → 2"));
    // A burst: several writes, one state at the end.
    for n in [5, 6, 7, 8, 3] {
        std::fs::write(
            &toml,
            text.replace("max_agents = 1", &format!("max_agents = {n}")),
        )
        .expect("write");
    }
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "manifest_reloaded" && !reloaded(v, "max_agents 1 → 2")
    });
    let last = seen.last().cloned().expect("event");
    assert!(reloaded(&last, "max_agents 2 → 3"), "{last}");
    let (code, seen) = finish(g, child, &lines, seen);
    assert_eq!(code, 0, "{seen:?}");
    let reloads: Vec<&Value> = seen
        .iter()
        .filter(|v| v["event"] == "manifest_reloaded")
        .collect();
    assert_eq!(reloads.len(), 2, "{reloads:?}");
}

#[test]
fn a_kill_right_after_an_edit_and_a_restart_lose_nothing() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let repo = repo_with(g, "", &[("a", "", ONE)]);
    let (mut child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| is(v, "task_started", "a", "1.1"));
    save(&repo, "docs/plans/c.md", ONE);
    save(
        &repo,
        "docs/plans/a.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 first\n- [ ] 1.2 second (depends: 1.1)\n",
    );
    repo.commit_all("plan c, task a 1.2");
    write_manifest(&repo, g, "", &[("a", "", TWO), ("c", "", ONE)]);
    wait_line(&lines, &mut seen, |v| reloaded(v, "plan c: added"));
    child.kill().expect("kill -9");
    let _ = child.wait();
    touch(g, "all.go");
    let out = wait_within(
        repo.orch(&["up", "--json"]).spawn().expect("spawn"),
        support::TIMEOUT,
        "orch up",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(repo.subjects("plan/a"), ["a 1.1: first", "a 1.2: second"]);
    assert_eq!(repo.subjects("plan/c"), ["c 1.1: first"]);
}

#[test]
fn a_new_dependency_orders_the_next_starts() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let plans = [("a", "", ONE), ("b", "", ONE), ("c", "", ONE)];
    let repo = repo_with(g, "max_agents = 1", &plans);
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    // The three worktrees are made at once: the first plan whose worktree is ready starts.
    wait_line(&lines, &mut seen, |v| v["event"] == "task_started");
    let first = seen
        .iter()
        .rev()
        .find(|v| v["event"] == "task_started")
        .and_then(|v| v["plan"].as_str())
        .expect("a plan")
        .to_string();
    let others: Vec<&str> = ["a", "b", "c"]
        .into_iter()
        .filter(|p| *p != first)
        .collect();
    let (waits, upstream) = (others[0], others[1]);
    // `waits` now waits for `upstream`: when the first task ends, `upstream`'s starts.
    let dep = format!("depends_on = [\"{upstream}\"]");
    let edited: Vec<(&str, &str, &str)> = ["a", "b", "c"]
        .into_iter()
        .map(|p| (p, if p == waits { dep.as_str() } else { "" }, ONE))
        .collect();
    write_manifest(&repo, g, "max_agents = 1", &edited);
    wait_line(&lines, &mut seen, |v| {
        reloaded(v, &format!("plan {waits}: depends_on"))
    });
    touch(g, &format!("{first}-1.1.go"));
    wait_line(&lines, &mut seen, |v| {
        is(v, "task_started", upstream, "1.1")
    });
    assert!(
        position(&seen, |v| is(v, "task_started", waits, "1.1")).is_none(),
        "{waits} started before {upstream}: {seen:?}"
    );
    let (code, seen) = finish(g, child, &lines, seen);
    assert_eq!(code, 0, "{seen:?}");
    let order: Vec<&str> = seen
        .iter()
        .filter(|v| v["event"] == "task_started")
        .filter_map(|v| v["plan"].as_str())
        .collect();
    assert_eq!(order, [first.as_str(), upstream, waits], "{seen:?}");
    // `waits` starts from `upstream`'s work, as a plan with `depends_on` does.
    assert_eq!(
        repo.subjects(&format!("plan/{waits}")),
        [
            format!("{upstream} 1.1: first"),
            format!("{waits} 1.1: first")
        ]
    );
}

#[test]
fn an_edit_of_a_running_plan_keeps_its_branch_and_applies_its_other_settings() {
    let gate = tempfile::tempdir().expect("tmp");
    let g = gate.path();
    let repo = repo_with(g, "max_agents = 1", &[("a", "", TWO)]);
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| is(v, "task_started", "a", "1.1"));
    // The plan's worktree was made on `plan/a`: it stays there; the new check applies.
    let edited = "branch = \"elsewhere\"\ncheck = [\"true\"]";
    write_manifest(&repo, g, "max_agents = 1", &[("a", edited, TWO)]);
    wait_line(&lines, &mut seen, |v| {
        reloaded(v, "plan a: branch") && reloaded(v, "plan a: check")
    });
    let (code, seen) = finish(g, child, &lines, seen);
    assert_eq!(code, 0, "{seen:?}");
    assert!(
        position(&seen, |v| is(v, "task_checking", "a", "1.2")).is_some(),
        "the edit's check did not run: {seen:?}"
    );
    assert_eq!(repo.subjects("plan/a"), ["a 1.1: first", "a 1.2: second"]);
    assert!(!repo.branch_exists("elsewhere"), "{seen:?}");
}
