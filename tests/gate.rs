//! Real agents' ways of ending, end to end with scripted agents that print what Claude Code
//! and Codex print: no success without a report (or `report = "exit"`), the check gate, causes
//! in events, summary and `orch status`, usage and cost, budgets, usage limits (a pause) and
//! authentication errors (the run stops, no retries burnt).

use crate::support;

use std::path::Path;

use serde_json::Value;
use support::{Repo, agent, events, fixtures, named, outcome, toml_array, utf8};

/// Commits plan `p` (`text`) run by agent `a` (`command`, with `agent_extra` lines in its
/// table), with `defaults` and `plan_extra` lines.
fn setup(
    repo: &Repo,
    text: &str,
    command: &str,
    agent_extra: &str,
    defaults: &str,
    plan_extra: &str,
) {
    repo.write("docs/plans/p.md", text);
    repo.manifest(command, agent_extra, defaults, &[("p", plan_extra)]);
    repo.commit_all("plans");
}

const TWO: &str =
    "# P\n\n## Phase 1: Work\n- [ ] 1.1 Write one\n- [ ] 1.2 Write two (depends: 1.1)\n";
const THREE: &str =
    "# P\n\n## Phase 1: Work\n- [ ] 1.1 Write one\n- [ ] 1.2 Write two\n- [ ] 1.3 Write three\n";

/// The `<plan> <task> <attempt> <ns>` lines a like-agent wrote to `dir/starts`.
fn starts(dir: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(dir.join("starts"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn marks(repo: &Repo) -> std::path::PathBuf {
    let dir = repo.outside("marks");
    std::fs::create_dir_all(&dir).expect("marks dir");
    dir
}

fn status_json(repo: &Repo) -> Value {
    let (code, out, err) = repo.run(&["status", "--plan", "p", "--json"]);
    assert_eq!(code, 0, "orch status failed: {err}");
    serde_json::from_str(&out).expect("status json")
}

#[test]
fn claude_like_agent_usage_and_cost_are_recorded_and_summed() {
    let repo = Repo::bare_minimum();
    let dir = marks(&repo);
    setup(
        &repo,
        TWO,
        &agent("claude_like.sh", &[utf8(&dir), "done", "0.25"]),
        "report = \"orch\"\n",
        "retries = 0\n",
        "",
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 0, "orch up failed\n{out}\n{err}");
    let ev = events(&out);

    // Each task: completed, committed, its usage in the status file.
    assert_eq!(
        repo.subjects("plan/p"),
        ["p 1.1: Write one", "p 1.2: Write two"]
    );
    for id in ["1.1", "1.2"] {
        let t = repo.task("p", id);
        assert_eq!(t["status"], "completed", "{t}");
        let u = &t["orchUsage"];
        assert_eq!(u["inputTokens"], 1000, "{t}");
        assert_eq!(u["outputTokens"], 200, "{t}");
        assert_eq!(u["cacheWriteTokens"], 50, "{t}");
        assert_eq!(u["cacheReadTokens"], 3000, "{t}");
        assert_eq!(u["costUsd"], 0.25, "{t}");
        assert_eq!(u["attempts"], 1, "{t}");
    }
    // Events: per attempt, and the run's sum in the summary.
    let finished = named(&ev, "task_finished");
    assert_eq!(finished.len(), 2);
    for f in &finished {
        assert_eq!(f["usage"]["tokens"], 4250, "{f}");
        assert_eq!(f["usage"]["cost_usd"], 0.25, "{f}");
    }
    let summary = &named(&ev, "run_finished")[0]["summary"];
    assert_eq!(summary["usage"]["tokens"], 8500, "{summary}");
    assert_eq!(summary["usage"]["cost_usd"], 0.5, "{summary}");
    assert_eq!(outcome(&ev, "p")["usage"]["cost_usd"], 0.5);

    // orch status: per task and per plan.
    let st = status_json(&repo);
    assert_eq!(st["usage"]["tokens"], 8500, "{st}");
    assert_eq!(st["usage"]["cost_usd"], 0.5, "{st}");
    assert_eq!(st["tasks"][0]["usage"]["cost_usd"], 0.25, "{st}");
    let (_, text, _) = repo.run(&["status", "--plan", "p"]);
    assert!(text.contains("used: 8500 tokens, $0.5000"), "{text}");
    let (_, all, _) = repo.run(&["status", "--json"]);
    let all: Value = serde_json::from_str(&all).expect("json");
    assert_eq!(all["usage"]["cost_usd"], 0.5, "{all}");
}

#[test]
fn codex_like_agent_turns_are_summed() {
    let repo = Repo::bare_minimum();
    let dir = marks(&repo);
    setup(
        &repo,
        &support::one_task("P", "Write one"),
        &agent("codex_like.sh", &[utf8(&dir), "done"]),
        "report = \"orch\"\n",
        "retries = 0\n",
        "",
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 0, "orch up failed\n{out}\n{err}");
    let t = repo.task("p", "1.1");
    assert_eq!(t["status"], "completed");
    // 2000 input of which 200 cached, 400 output; Codex names no cost.
    assert_eq!(t["orchUsage"]["inputTokens"], 1800, "{t}");
    assert_eq!(t["orchUsage"]["cacheReadTokens"], 200, "{t}");
    assert_eq!(t["orchUsage"]["outputTokens"], 400, "{t}");
    assert!(t["orchUsage"].get("costUsd").is_none(), "{t}");
}

#[test]
fn an_agent_that_ends_without_reporting_is_not_completed_and_its_words_are_the_cause() {
    let repo = Repo::bare_minimum();
    let dir = marks(&repo);
    setup(
        &repo,
        &support::one_task("P", "Write one"),
        &agent("claude_like.sh", &[utf8(&dir), "refuse"]),
        "report = \"orch\"\n",
        "retries = 1\nbackoff = \"1s\"\n",
        "",
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 5, "a refusal is not a success\n{out}\n{err}");
    let ev = events(&out);
    let failed = named(&ev, "task_failed");
    assert_eq!(failed.len(), 2, "tried twice: {failed:?}");
    for f in &failed {
        let e = f["error"].as_str().expect("error");
        assert!(e.contains("ended without reporting"), "{e}");
        assert!(
            e.contains("I cannot do this: the task asks for two contradictory schemas"),
            "{e}"
        );
        // The log is named once, in its own field.
        assert!(!e.contains(".log"), "{e}");
    }
    // Nothing committed, the task failed with the reason, everywhere a person looks.
    assert!(repo.subjects("plan/p").is_empty());
    let t = repo.task("p", "1.1");
    assert_eq!(t["status"], "failed");
    assert!(
        t["error"]
            .as_str()
            .expect("error")
            .contains("I cannot do this"),
        "{t}"
    );
    let st = status_json(&repo);
    assert!(
        st["tasks"][0]["cause"]
            .as_str()
            .expect("cause")
            .contains("I cannot do this"),
        "{st}"
    );
    let (_, text, _) = repo.run(&["status", "--plan", "p"]);
    assert!(text.contains("I cannot do this"), "{text}");
    let p = outcome(&ev, "p");
    assert!(
        p["causes"][0][1]
            .as_str()
            .expect("cause")
            .contains("I cannot do this"),
        "{p}"
    );
    // The retry's prompt said what went wrong.
    let prompt =
        std::fs::read_to_string(repo.root().join(".orch/logs/p/1.1.prompt.md")).expect("prompt");
    assert!(
        prompt.contains("The previous attempt failed with"),
        "{prompt}"
    );
    assert!(prompt.contains("I cannot do this"), "{prompt}");
    // The plain summary names the cause too.
    repo.run(&["task", "reset", "1.1", "--plan", "p"]);
    let (code, out, _) = repo.run(&["up"]);
    assert_eq!(code, 5);
    assert!(
        out.contains("p 1.1 failed: the agent ended without reporting"),
        "{out}"
    );
}

#[test]
fn a_plain_command_exiting_0_still_counts_as_done() {
    // `report = "exit"` is what an own agent gets by default: exit 0 = done.
    let repo = Repo::bare_minimum();
    let journal = repo.outside("journal");
    setup(
        &repo,
        &support::one_task("P", "Write one"),
        &agent("ok.sh", &[utf8(&journal)]),
        "",
        "retries = 0\n",
        "",
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(repo.task("p", "1.1")["status"], "completed");
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: Write one"]);
}

#[test]
fn a_failing_check_fails_the_attempt_and_the_retry_prompt_holds_its_output() {
    let repo = Repo::bare_minimum();
    let dir = marks(&repo);
    let check = toml_array(&[
        "sh".to_string(),
        fixtures()
            .join("../checks/answer_is_good.sh")
            .display()
            .to_string(),
    ]);
    setup(
        &repo,
        &support::one_task("P", "Write the answer"),
        &agent("claude_like.sh", &[utf8(&dir), "check-fix"]),
        "report = \"orch\"\n",
        &format!("retries = 1\nbackoff = \"1s\"\ncheck = {check}\n"),
        "",
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 0, "orch up failed\n{out}\n{err}");
    let ev = events(&out);
    assert_eq!(named(&ev, "task_checking").len(), 2);
    let failed = named(&ev, "task_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let e = failed[0]["error"].as_str().expect("error");
    assert!(e.contains("the check `sh "), "{e}");
    assert!(e.contains("answer.txt says 'bad', expected good"), "{e}");
    // The second attempt read that in its prompt and wrote the good answer, which was committed.
    let prompt =
        std::fs::read_to_string(repo.root().join(".orch/logs/p/1.1.prompt.md")).expect("prompt");
    assert!(prompt.contains("expected good"), "{prompt}");
    assert_eq!(repo.task("p", "1.1")["status"], "completed");
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: Write the answer"]);
    assert_eq!(repo.git(&["show", "plan/p:answer.txt"]).trim(), "good");
    // The first attempt's work was saved, not committed.
    let check_log =
        std::fs::read_to_string(repo.root().join(".orch/logs/p/1.1.check.log")).expect("check log");
    assert!(check_log.contains("answer.txt is good"), "{check_log}");
}

#[test]
fn a_task_check_clause_and_verify_steps_run_the_check_and_verify_commits_say_passed() {
    let repo = Repo::bare_minimum();
    let journal = repo.outside("journal");
    let plan = "# P\n\n## Phase 1: Work\n- [ ] 1.1 Write one (check: test -f 1.1.txt)\n\n\
                **VERIFY Phase 1:**\n- one is written\n";
    setup(
        &repo,
        plan,
        &agent("env_dump.sh", &[utf8(&journal)]),
        "",
        "retries = 0\ncheck = [\"test\", \"-f\", \"missing.txt\"]\n",
        "",
    );
    // 1.1's own check fails (env_dump writes p.txt, not 1.1.txt); the plan's would fail too.
    let (code, out, _) = repo.run(&["up", "--json"]);
    assert_eq!(code, 5, "{out}");
    let ev = events(&out);
    let e = named(&ev, "task_failed")[0]["error"]
        .as_str()
        .expect("error")
        .to_string();
    assert!(
        e.contains("the check `test -f 1.1.txt` failed (exit status 1)"),
        "{e}"
    );

    // With checks that pass: the task and the verify step commit, the latter saying passed.
    let plan = "# P\n\n## Phase 1: Work\n- [ ] 1.1 Write one (check: test -f p.txt)\n\n\
                **VERIFY Phase 1:**\n- one is written\n";
    repo.write("docs/plans/p.md", plan);
    repo.manifest(
        &agent("env_dump.sh", &[utf8(&journal)]),
        "",
        "retries = 0\ncheck = [\"test\", \"-f\", \"p.txt\"]\n",
        &[("p", "")],
    );
    repo.commit_all("checks that pass");
    repo.run(&["task", "reset", "1.1", "--plan", "p"]);
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let ev = events(&out);
    assert_eq!(
        named(&ev, "task_checking").len(),
        2,
        "the verify step was checked too"
    );
    assert_eq!(
        repo.subjects("plan/p"),
        [
            "p 1.1: Write one",
            "p V1: verification of phase 1 passed: one is written"
        ]
    );
}

#[test]
fn an_authentication_error_stops_the_run_with_the_fix_and_burns_no_retries() {
    let repo = Repo::bare_minimum();
    let dir = marks(&repo);
    setup(
        &repo,
        THREE,
        &agent("claude_like.sh", &[utf8(&dir), "auth"]),
        "report = \"orch\"\n",
        "retries = 3\nbackoff = \"1s\"\nmax_agents = 1\n",
        "",
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 6, "an unusable agent is exit 6\n{out}\n{err}");
    let ev = events(&out);
    let stopped = named(&ev, "agent_stopped");
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert_eq!(stopped[0]["class"], "authentication");
    assert!(
        stopped[0]["cause"]
            .as_str()
            .expect("cause")
            .contains("Invalid API key")
    );
    assert!(
        stopped[0]["fix"]
            .as_str()
            .expect("fix")
            .contains("log the client")
    );
    assert!(
        named(&ev, "task_failed").is_empty(),
        "no task failed: {ev:?}"
    );
    // One launch, no retries; no task is failed, every one waits for the fix.
    assert_eq!(starts(&dir).len(), 1, "{:?}", starts(&dir));
    for id in ["1.1", "1.2", "1.3"] {
        assert_eq!(repo.task("p", id)["status"], "pending", "{id}");
    }
    let summary = &named(&ev, "run_finished")[0]["summary"];
    assert_eq!(summary["agents_stopped"][0]["agent"], "a", "{summary}");
    assert_eq!(outcome(&ev, "p")["outcome"], "blocked");
    // The text output says it with the fix.
    let (code, out, _) = repo.run(&["up"]);
    assert_eq!(code, 6);
    assert!(
        out.contains("agent a cannot work: for plan p, as its attempt claimed: Invalid API key"),
        "{out}"
    );
    assert!(out.contains("fix: log the client of agent `a` in"), "{out}");
}

#[test]
fn a_missing_program_stops_the_run_without_failing_tasks() {
    // `orch up`'s pre-flight refuses a program it cannot find; one that a wrapper cannot find
    // at run time (the shell's exit 127) stops the agent the same way.
    let repo = Repo::bare_minimum();
    setup(
        &repo,
        TWO,
        "[\"sh\", \"-c\", \"exec orch-test-no-such-agent-program\"]",
        "",
        "retries = 2\nbackoff = \"1s\"\n",
        "",
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 6, "{out}\n{err}");
    let ev = events(&out);
    let stopped = named(&ev, "agent_stopped");
    assert_eq!(stopped.len(), 1, "{ev:?}");
    assert_eq!(stopped[0]["class"], "missing_program");
    assert!(
        stopped[0]["cause"]
            .as_str()
            .expect("cause")
            .contains("not found")
    );
    assert!(named(&ev, "task_failed").is_empty());
    assert_eq!(repo.task("p", "1.1")["status"], "pending");
}

#[test]
fn a_usage_limit_pauses_the_agent_then_the_run_goes_on_by_itself() {
    let repo = Repo::bare_minimum();
    let dir = marks(&repo);
    setup(
        &repo,
        TWO,
        &agent("claude_like.sh", &[utf8(&dir), "limit-once"]),
        "report = \"orch\"\n",
        "retries = 0\n",
        "",
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 0, "the run goes on after the reset\n{out}\n{err}");
    let ev = events(&out);
    let paused = named(&ev, "agent_paused");
    assert_eq!(paused.len(), 1, "{ev:?}");
    let wait = paused[0]["resume_in_ms"].as_u64().expect("ms");
    assert!(
        (500..=2_100).contains(&wait),
        "waits for the named reset: {wait}"
    );
    assert!(
        paused[0]["reason"]
            .as_str()
            .expect("reason")
            .contains("429")
    );
    assert_eq!(named(&ev, "agent_resumed").len(), 1);
    assert!(
        named(&ev, "task_failed").is_empty(),
        "a limit fails no task: {ev:?}"
    );
    // 1.1 ran twice (the first not counted: retries = 0), then 1.2; both completed.
    let s = starts(&dir);
    assert_eq!(s.len(), 3, "{s:?}");
    assert_eq!((s[0][1].as_str(), s[1][1].as_str()), ("1.1", "1.1"));
    let gap_ms =
        (s[1][3].parse::<u128>().expect("ns") - s[0][3].parse::<u128>().expect("ns")) / 1_000_000;
    assert!(
        gap_ms >= 450,
        "relaunched only after the pause: {gap_ms} ms"
    );
    assert_eq!(
        repo.subjects("plan/p"),
        ["p 1.1: Write one", "p 1.2: Write two"]
    );
    // The pause is gone from the status file once over.
    assert!(repo.status_file("p").get("orchPaused").is_none());
}

#[test]
fn a_budget_below_the_runs_cost_stops_new_launches() {
    let repo = Repo::bare_minimum();
    let dir = marks(&repo);
    setup(
        &repo,
        THREE,
        &agent("claude_like.sh", &[utf8(&dir), "done", "0.25"]),
        "report = \"orch\"\n",
        "retries = 0\nmax_agents = 1\nbudget = \"$0.40\"\n",
        "",
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 5, "{out}\n{err}");
    let ev = events(&out);
    let reached = named(&ev, "budget_reached");
    assert_eq!(reached.len(), 1, "{ev:?}");
    assert!(reached[0]["plan"].is_null());
    assert!(
        reached[0]["reason"]
            .as_str()
            .expect("reason")
            .contains("$0.5000 spent of a budget of $0.4000"),
        "{}",
        reached[0]
    );
    // Two tasks ran (the second passed the budget), the third never started.
    assert_eq!(starts(&dir).len(), 2);
    assert_eq!(repo.task("p", "1.3")["status"], "pending");
    let p = outcome(&ev, "p");
    assert_eq!(p["outcome"], "unfinished", "{p}");
    assert!(
        p["reason"]
            .as_str()
            .expect("reason")
            .contains("budget reached"),
        "{p}"
    );

    // A plan's own budget counts what the plan spent before, too: already reached.
    repo.manifest(
        &agent("claude_like.sh", &[utf8(&dir), "done", "0.25"]),
        "report = \"orch\"\n",
        "retries = 0\nmax_agents = 1\n",
        &[("p", "budget = \"$0.50\"\n")],
    );
    repo.commit_all("plan budget");
    let (code, out, _) = repo.run(&["up", "--json"]);
    assert_eq!(code, 5, "{out}");
    let ev = events(&out);
    assert_eq!(named(&ev, "budget_reached")[0]["plan"], "p");
    assert_eq!(starts(&dir).len(), 2, "nothing more started");
}

#[test]
fn verify_steps_that_fail_or_are_skipped_say_so_on_the_plan_branch() {
    let repo = Repo::bare_minimum();
    let plan = "# P\n\n## Phase 1: Work\n- [ ] 1.1 Write one\n\n\
                **VERIFY Phase 1:** (non-blocking)\n- one is written\n\n\
                ## Phase 2: More\n- [ ] 2.1 Write two\n\n\
                **VERIFY Phase 2:**\n- two is written\n";
    // V1 reports failure, V2 is skipped, tasks write their file (exit 0: done).
    let script = "case \"$ORCH_TASK\" in \
                  V1) \"$ORCH_BIN\" task fail V1 --error 'criterion one is unmet: one.txt is empty' ;; \
                  V2) \"$ORCH_BIN\" task skip V2 --reason 'nothing left to verify' ;; \
                  *) echo \"$ORCH_TASK\" > \"$ORCH_TASK.txt\" ;; esac";
    setup(
        &repo,
        plan,
        &toml_array(&["sh", "-c", script]),
        "",
        "retries = 0\n",
        "",
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 5, "a failed verification step\n{out}\n{err}");
    // V1 does not block phase 2: 2.1 and V1 may come in either order.
    let mut subjects = repo.subjects("plan/p");
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "p 1.1: Write one",
            "p 2.1: Write two",
            "p V1: verification of phase 1 failed: criterion one is unmet: one.txt is empty",
            "p V2: verification of phase 2 skipped: nothing left to verify",
        ]
    );
    // The whole cause is in the commit's body.
    let body = repo.git(&[
        "log",
        "-1",
        "--format=%B",
        "--grep=V1: verification",
        "plan/p",
    ]);
    assert!(body.contains("criterion one is unmet"), "{body}");
    let doc = repo.status_file("p");
    let steps = doc["verifySteps"].as_array().expect("verifySteps");
    assert_eq!(
        (&steps[0]["id"], &steps[0]["status"]),
        (&"V1".into(), &"failed".into())
    );
    assert_eq!(
        (&steps[1]["id"], &steps[1]["status"]),
        (&"V2".into(), &"skipped".into())
    );
}

/// A task whose agent reported done and whose check is still running is shown running, not
/// done: `checking` in `orch status` (text: `1 running`, its line `checking`; JSON: status
/// `in_progress`, `stage: checking`, the summary's `checking`), and once committed its
/// duration runs to its commit, its check included. Both ways of reporting: `orch task done`
/// (the status file says completed before the check) and an exit (`report = "exit"`). Seen
/// failing on main: the task was `completed`, `0 running`, with the duration of its agent alone.
#[test]
fn a_task_whose_check_runs_is_shown_running_and_its_duration_runs_to_its_commit() {
    for (command, extra) in [
        ("echo one > one.txt && \"$ORCH_BIN\" task done 1.1", ""),
        ("echo one > one.txt", "report = \"exit\""),
    ] {
        let repo = Repo::bare_minimum();
        let flag = repo.outside("check.go");
        let check = toml_array(&[
            "sh".to_string(),
            "-c".to_string(),
            format!(
                "i=0; while [ ! -e '{}' ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done",
                flag.display()
            ),
        ]);
        setup(
            &repo,
            "# P\n\n## Phase 1: Work\n- [ ] 1.1 Write one\n",
            &toml_array(&["sh", "-c", command]),
            extra,
            &format!("retries = 0\ncheck = {check}"),
            "",
        );
        let child = repo.orch(&["up", "--json"]).spawn().expect("spawn orch");
        // The check runs once the agent's work is in: its own file is there.
        let wt = repo.worktree("p");
        support::wait_for("the agent's work", || wt.join("one.txt").is_file());
        let mut seen = None;
        support::wait_for("the task checking", || {
            let v = status_json(&repo);
            let t = v["tasks"][0].clone();
            let ok = t["status"] == "in_progress"
                && (extra.is_empty() == (t["stage"] == "checking"))
                && v["summary"]["in_progress"] == 1
                && v["summary"]["completed"] == 0;
            if ok {
                seen = Some(v);
            }
            ok
        });
        let held = std::time::Instant::now();
        let v = seen.expect("seen");
        let t = &v["tasks"][0];
        assert!(t.get("duration_ms").is_none(), "{extra}: {t}");
        if extra.is_empty() {
            assert_eq!(v["summary"]["checking"], 1, "{v}");
            let (_, text, _) = repo.run(&["status", "--plan", "p"]);
            assert!(text.contains("0/1 done, 1 running"), "{text}");
            assert!(text.contains("checking 1.1 Write one"), "{text}");
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        let held_ms = u64::try_from(held.elapsed().as_millis()).expect("ms");
        std::fs::write(&flag, "").expect("go");
        let out = support::wait(child);
        assert_eq!(out.status.code(), Some(0), "{extra}");
        let v = status_json(&repo);
        let t = &v["tasks"][0];
        assert_eq!(t["status"], "completed", "{extra}: {t}");
        assert!(t["commit"].is_string(), "{extra}: {t}");
        assert!(t.get("stage").is_none(), "{extra}: {t}");
        let ms = t["duration_ms"].as_u64().expect("duration_ms");
        assert!(
            ms >= held_ms,
            "{extra}: {ms} ms < the {held_ms} ms its check was held"
        );
        assert_eq!(v["summary"]["checking"], 0, "{v}");
    }
}

/// The views show a task's text as its commit does, without its annotations (`(depends: …)`,
/// `(est: …)`, `(check: …)`): the progress lines of `orch up` and `orch status`'s task lines.
/// Seen failing on main: both showed `(depends: 1.1)`.
#[test]
fn progress_lines_and_status_show_task_texts_without_their_annotations() {
    let repo = Repo::bare_minimum();
    setup(
        &repo,
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Write one (est: 5m)\n- [ ] 1.2 Write two (depends: 1.1) (check: false)\n",
        &toml_array(&["sh", "-c", "echo \"$ORCH_TASK\" > \"$ORCH_TASK.txt\""]),
        "",
        "retries = 0",
        "",
    );
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 5, "{out}\n{err}");
    let text = format!("{out}{err}");
    assert!(text.contains("started (attempt 1, pid "), "{text}");
    for (id, plain) in [("1.1", "Write one"), ("1.2", "Write two")] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("{id} started")))
            .unwrap_or_else(|| panic!("no start line of {id}: {text}"));
        assert!(line.ends_with(&format!(": {plain}")), "{line}");
    }
    let (_, status, _) = repo.run(&["status", "--plan", "p"]);
    let failed = status
        .lines()
        .find(|l| l.contains("failed 1.2"))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(failed.contains("failed 1.2 Write two — "), "{failed}");
    for note in ["(depends:", "(check:", "(est:"] {
        assert!(!text.contains(note), "{note}: {text}");
        assert!(!status.contains(note), "{note}: {status}");
    }
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: Write one"]);
}
