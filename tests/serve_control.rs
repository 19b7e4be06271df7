//! `orch serve --control`'s buttons clicked in a real headless Chromium reach orch, checked by
//! what a user sees change: Stop fails the running task (`stopped`), Say keeps a message that
//! the task's next attempt's prompt holds, Retry runs it again, Pause and Resume hold and free
//! a plan; orch's records, the agents' prompts and the page agree.

use std::path::Path;

use serde_json::json;

use crate::serve::{SHOW, Serve, browser, end_within, row_status, status_of};
use crate::support::{self, Repo, toml_array};

/// Plans `a` (1.1 and 1.2, side by side) and `b` (1.1), whose agent copies its prompt to
/// `<rec>/<plan>-<task>-<attempt>.prompt` and finishes only once `<rec>/<plan>-<task>.go` exists.
fn held(rec: &Path) -> Repo {
    let repo = Repo::new();
    let r = rec.display();
    let agent = toml_array(&[
        "sh",
        "-c",
        &format!(
            "me=\"$ORCH_PLAN-$ORCH_TASK\"; cp \"$ORCH_PROMPT_FILE\" '{r}/'\"$me-$ORCH_ATTEMPT.prompt\"; until [ -e '{r}/'\"$me.go\" ]; do sleep 0.05; done; echo \"$ORCH_TASK\" > \"$me.txt\""
        ),
    ]);
    repo.manifest(
        &agent,
        "report = \"exit\"",
        "retries = 0\nmax_agents = 4",
        &[("a", "parallel = 2"), ("b", "")],
    );
    repo.write(
        "docs/plans/a.md",
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 first of a\n- [ ] 1.2 second of a\n",
    );
    repo.write("docs/plans/b.md", &support::one_task("B", "only task of b"));
    repo.commit_all("plans");
    repo
}

/// A script: the outcome the page shows for plan `plan`.
fn outcome_of(plan: &str) -> String {
    format!(
        "const o = document.querySelector('.plan[data-plan=\"{plan}\"] .outcome'); return o && o.getAttribute('data-outcome');"
    )
}

#[test]
fn stop_say_retry_pause_and_resume_clicked_in_the_page_reach_orch() {
    let Some(driver) = browser() else { return };
    let rec = tempfile::tempdir().expect("tempdir");
    let r = rec.path();
    let repo = held(r);
    let up = repo.orch(&["up"]).spawn().expect("orch up");
    let serve = Serve::start(&repo, &["--control"]);
    let page = driver.session();
    page.goto(&serve.page_url());
    for key in ["a:1.1", "a:1.2", "b:1.1"] {
        page.wait_until(
            &format!("{key} running"),
            SHOW,
            &format!("return {} === 'in_progress';", status_of(key)),
        );
    }
    support::wait_for("a's first attempt", || r.join("a-1.1-1.prompt").exists());

    // Stop: the task fails as stopped, in orch's records and on the page; the other runs on.
    page.click_css("tr[data-task=\"a:1.1\"] button.stop", SHOW);
    support::wait_for("a 1.1 stopped", || {
        repo.task("a", "1.1")["status"] == "failed"
    });
    let task = repo.task("a", "1.1");
    assert!(
        task["error"]
            .as_str()
            .is_some_and(|e| e.contains("stopped")),
        "{task}"
    );
    page.wait_until(
        "a 1.1 failed on the page",
        SHOW,
        &format!("return {} === 'failed';", status_of("a:1.1")),
    );
    assert_eq!(page.execute(&row_status("a:1.2"), json!([])), "in_progress");

    // Say: a message with markup, kept for the next attempt (the task runs no attempt now).
    let message = "keep the old API <b>working</b>";
    page.click_css("tr[data-task=\"a:1.1\"] button.say", SHOW);
    page.wait_until(
        "the say box",
        SHOW,
        "const b = document.getElementById('say-box'); return !b.hidden && b.getAttribute('data-task') === 'a:1.1';",
    );
    let area = page.find_all("#say-text");
    page.type_text(&area[0], message);
    page.click_css("#say-send", SHOW);
    support::wait_for("the message in the status file", || {
        repo.task("a", "1.1")["orchMessages"][0]["text"] == message
    });
    let said = page.wait_until(
        "the answer to the say",
        SHOW,
        "const s = document.getElementById('said'); return !s.hidden && s.textContent;",
    );
    assert_eq!(
        said, "Said to a 1.1: kept for the next attempt",
        "what orch did with it"
    );
    assert!(
        page.find_all("#said b").is_empty(),
        "the message made no element"
    );
    assert_eq!(
        page.execute(
            "return document.getElementById('say-box').hidden;",
            json!([])
        ),
        json!(true),
        "the say box closed"
    );

    // Retry: the task runs again, its prompt holding the message.
    page.click_css("tr[data-task=\"a:1.1\"] button.retry", SHOW);
    support::wait_for("a's second attempt", || r.join("a-1.1-2.prompt").exists());
    let prompt = std::fs::read_to_string(r.join("a-1.1-2.prompt")).expect("prompt");
    assert!(prompt.contains(message), "{prompt}");
    let first = std::fs::read_to_string(r.join("a-1.1-1.prompt")).expect("prompt");
    assert!(!first.contains(message), "{first}");
    page.wait_until(
        "a 1.1 running again on the page",
        SHOW,
        &format!("return {} === 'in_progress';", status_of("a:1.1")),
    );

    // Pause, then resume plan b: in its status file and `orch status`, and on the page.
    page.click_css(".plan[data-plan=\"b\"] button.pause", SHOW);
    support::wait_for("b paused", || {
        repo.status_file("b").get("orchPlanPaused").is_some()
    });
    page.wait_until(
        "b paused on the page",
        SHOW,
        &format!("return ({})() === 'paused';", wrap(&outcome_of("b"))),
    );
    let (_, st, _) = repo.run(&["status", "--json"]);
    assert_eq!(support::json(&st)["plans"][1]["plan_paused"], true, "{st}");
    page.click_css(".plan[data-plan=\"b\"] button.resume", SHOW);
    support::wait_for("b resumed", || {
        repo.status_file("b").get("orchPlanPaused").is_none()
    });
    page.wait_until(
        "b running on the page",
        SHOW,
        &format!("return ({})() === 'running';", wrap(&outcome_of("b"))),
    );
    assert_eq!(
        page.find_all(".plan[data-plan=\"b\"] button.pause").len(),
        1,
        "Pause offered again"
    );

    // The rest finishes: every task completed, a's 1.1 in its second attempt.
    for gate in ["a-1.1", "a-1.2", "b-1.1"] {
        std::fs::write(r.join(format!("{gate}.go")), "").expect("gate");
    }
    assert_eq!(end_within(up, support::TIMEOUT), 0);
    let task = repo.task("a", "1.1");
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(task["attempts"], 2, "{task}");
    page.wait_until("every plan done", SHOW, "return [...document.querySelectorAll('.plan .outcome')].every(o => o.getAttribute('data-outcome') === 'done');");
}

/// `body` (a function body) as a function expression.
fn wrap(body: &str) -> String {
    format!("function () {{ {body} }}")
}
