//! What `orch serve`'s page shows beside the plans, in a real headless Chromium: each attempt on
//! the timeline with how long its check took, each plan's forecast drawn as a band from its p50
//! end to its p90, and the integration preview's state (running, passed, failed, in conflict),
//! followed without a reload even when `orch integrate` runs by hand (it logs no event); what
//! an agent's branch or its verify printed shows as text and runs nothing.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::serve::{SHOW, Serve, body_json, browser, raw};
use crate::support::{self, Repo, toml_array};

/// A script: the number the page's elements `css` carry in `attr`, in document order.
fn numbers(css: &str, attr: &str) -> String {
    format!(
        "return [...document.querySelectorAll('{css}')].map(e => Number(e.getAttribute('{attr}')));"
    )
}

/// `orch status --json` as `orch serve` answers it.
fn status(serve: &Serve) -> Value {
    let me = &serve.authority;
    let (code, answer) = raw(
        me,
        &format!("GET /api/status HTTP/1.1\r\nHost: {me}\r\n{}", serve.auth()),
        "",
    );
    assert_eq!(code, 200, "{answer}");
    body_json(&answer)
}

#[test]
fn the_timeline_shows_each_attempt_with_its_check_time_and_each_plan_its_forecast_as_a_band() {
    let Some(driver) = browser() else { return };
    let repo = Repo::new();
    // Tasks of different lengths (a forecast's p50 and p90 apart), a check of 0.4 s that fails
    // the first attempt of a's 1.1 (its agent writes its attempt's number).
    let agent = toml_array(&[
        "sh",
        "-c",
        "case \"$ORCH_TASK\" in 1.1) s=0.2;; 1.2) s=1.5;; *) s=3;; esac; sleep $s; echo \"$ORCH_ATTEMPT\" > \"$ORCH_PLAN-$ORCH_TASK.txt\"",
    ]);
    repo.manifest(
        &agent,
        "report = \"exit\"",
        "retries = 1\nbackoff = \"0s\"\nmax_agents = 1\ncheck = [\"sh\", \"-c\", \"sleep 0.4; ! grep -qsx 1 a-1.1.txt\"]",
        &[("a", ""), ("b", "")],
    );
    repo.write(
        "docs/plans/a.md",
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 short\n- [ ] 1.2 longer\n- [ ] 1.3 longest\n",
    );
    repo.write(
        "docs/plans/b.md",
        "# B\n\n## Phase 1: Work\n- [ ] 1.1 one\n- [ ] 1.2 two\n",
    );
    repo.commit_all("plans");
    repo.up(&["a"]);

    // orch's records: a's 1.1 ran twice, each attempt's check timed (at least its 0.4 s).
    let serve = Serve::start(&repo, &[]);
    let v = status(&serve);
    let times = v["plans"][0]["tasks"][0]["attempt_times"].clone();
    let list = times.as_array().expect("attempt_times");
    assert_eq!(list.len(), 2, "{times}");
    assert_eq!(list[0]["ended"], "failed", "{times}");
    assert_eq!(list[1]["ended"], "finished", "{times}");
    let checks: Vec<u64> = list
        .iter()
        .map(|a| a["check_ms"].as_u64().expect("check_ms"))
        .collect();
    assert!(
        checks.iter().all(|&ms| (400..60_000).contains(&ms)),
        "{times}"
    );

    let page = driver.session();
    page.goto(&serve.page_url());
    // On the timeline: two attempts of a's 1.1, each with its check's part and time.
    page.wait_until(
        "a's attempts",
        SHOW,
        "return document.querySelectorAll('#timeline .span[data-task=\"a:1.1\"]').length === 2 && document.querySelectorAll('#timeline .span[data-task=\"a:1.3\"] .check').length === 1;",
    );
    let shown = page.execute(
        &numbers(
            "#timeline .span[data-task=\"a:1.1\"] .check",
            "data-check-ms",
        ),
        json!([]),
    );
    assert_eq!(
        shown,
        json!(checks),
        "the checks' times as orch recorded them"
    );
    let widths = page.execute(
        "return [...document.querySelectorAll('#timeline .span[data-task=\"a:1.3\"]')].map(s => [s.getBoundingClientRect().width, s.querySelector('.check').getBoundingClientRect().width]);",
        json!([]),
    );
    let (whole, check) = (widths[0][0].as_f64(), widths[0][1].as_f64());
    assert!(
        matches!((whole, check), (Some(w), Some(c)) if c > 0.0 && c < w),
        "the check a part of its attempt: {widths}"
    );
    let took = page.text_at("tr[data-task=\"a:1.1\"] .took");
    assert!(took.contains("check ") && took.ends_with(" s)"), "{took}");
    let title = page.execute(
        "return document.querySelector('#timeline .span[data-task=\"a:1.1\"]').getAttribute('title');",
        json!([]),
    );
    assert!(
        title
            .as_str()
            .is_some_and(|t| t.contains("attempt 1 failed")),
        "{title}"
    );

    // Plan b has not run: its forecast, p50 to p90, as a band on its lane; a's done, none.
    let fc = v["plans"][1]["forecast"].clone();
    let (p50, p90) = (
        fc["eta_p50"].as_str().expect("p50").to_string(),
        fc["eta_p90"].as_str().expect("p90").to_string(),
    );
    let band = page.wait_until(
        "b's band",
        SHOW,
        "const b = document.querySelector('#timeline .band[data-plan=\"b\"]'); return b && [b.getAttribute('data-p50'), b.getAttribute('data-p90'), b.getBoundingClientRect().width, Date.parse(b.getAttribute('data-p90')) - Date.parse(b.getAttribute('data-p50'))];",
    );
    // The forecast runs from now: the page's (read a moment later) and this one are as far
    // apart as they were read, its p50 and p90 as far from each other (to the second).
    let json_apart = page.execute(
        "return [Date.parse(arguments[1]) - Date.parse(arguments[0]), Date.parse(arguments[2]) - Date.parse(arguments[0])];",
        json!([p50, p90, band[0]]),
    );
    let (apart, width) = (
        band[3].as_f64().unwrap_or_default(),
        band[2].as_f64().unwrap_or_default(),
    );
    let (want, later) = (
        json_apart[0].as_f64().unwrap_or_default(),
        json_apart[1].as_f64().unwrap_or_default(),
    );
    assert!(want > 0.0, "p90 after p50: {fc}");
    assert!((apart - want).abs() <= 1000.0, "{band} against {fc}");
    assert!((0.0..30_000.0).contains(&later), "{band} against {fc}");
    assert!(width > 4.0, "a band, not a point: {band}");
    assert!(
        page.find_all("#timeline .band[data-plan=\"a\"]").is_empty(),
        "a is done: no forecast"
    );
    let words = page.text_at(".forecast[data-plan=\"b\"]");
    assert!(words.starts_with("forecast: ends "), "{words}");
}

/// A repository with plans `x` and `y` (never run: their branches are made by hand) and a
/// `verify` that waits for `<gate>` and fails, printing markup and a terminal escape, while
/// `<gate>.fail` exists.
fn previewed(gate: &Path) -> Repo {
    let repo = Repo::new();
    let g = gate.display();
    repo.write(
        "verify.sh",
        &format!(
            "#!/bin/sh\nuntil [ -e '{g}' ]; do sleep 0.05; done\nif [ -e '{g}.fail' ]; then\n  printf '%s\\n' '<script>window.orchPwned7=1</script>'\n  printf '<img src=x onerror=window.orchPwned8=1> \\033[2J end\\n'\n  exit 1\nfi\nexit 0\n"
        ),
    );
    repo.manifest(
        &toml_array(&["true"]),
        "",
        "verify = [\"sh\", \"verify.sh\"]",
        &[("x", ""), ("y", "")],
    );
    for name in ["x", "y"] {
        repo.write(
            &format!("docs/plans/{name}.md"),
            &support::one_task(name, "work"),
        );
    }
    repo.commit_all("plans");
    repo
}

/// Makes (or adds to) plan `name`'s branch `plan/<name>` in a worktree outside the repository,
/// committing `files`; returns the worktree.
fn commit_on(repo: &Repo, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let wt = repo.outside(&format!("wt-{name}"));
    if !wt.exists() {
        repo.git(&[
            "worktree",
            "add",
            "-q",
            "-b",
            &format!("plan/{name}"),
            wt.to_str().expect("utf-8"),
            "main",
        ]);
    }
    for (path, text) in files {
        std::fs::write(wt.join(path), text).expect("write");
    }
    repo.git_at(&wt, &["add", "-A"]);
    repo.git_at(&wt, &["commit", "-q", "-m", &format!("{name} work")]);
    wt
}

/// A script: the integration box's state when shown, else `null`.
const STATE: &str = "const b = document.getElementById('integration-box'); return b.hidden ? null : document.getElementById('integration').getAttribute('data-state');";

#[test]
fn the_integration_preview_is_shown_running_passed_failed_and_in_conflict_its_texts_as_text() {
    let Some(driver) = browser() else { return };
    let gates = tempfile::tempdir().expect("tempdir");
    let gate = gates.path().join("go");
    let repo = previewed(&gate);
    commit_on(&repo, "x", &[("x.txt", "x\n")]);
    commit_on(&repo, "y", &[("y.txt", "y\n")]);
    let serve = Serve::start(&repo, &[]);
    let page = driver.session();
    page.goto(&serve.page_url());
    page.wait_until(
        "the plans",
        SHOW,
        "return document.querySelectorAll('.plan').length === 2;",
    );
    assert_eq!(page.execute(STATE, json!([])), Value::Null, "no test yet");
    page.execute("window.orchTestMark = 7; return true;", json!([]));

    // `orch integrate` by hand, its verify waiting: the page says it runs.
    let child = repo.orch(&["integrate"]).spawn().expect("orch integrate");
    page.wait_until("the test running", SHOW, &state_is("running"));
    assert_eq!(status(&serve)["integration_running"], true);
    std::fs::write(&gate, "").expect("gate");
    assert_eq!(crate::serve::end_within(child, support::TIMEOUT), 0);
    page.wait_until("passed", SHOW, &state_is("green"));
    let tested = page.text_at("#integration .tested");
    assert!(tested.starts_with("2 plans (x, y) on main"), "{tested}");
    assert_eq!(status(&serve)["integration_running"], false);

    // verify fails, printing markup and an escape: shown as text (x has a new commit: the
    // test's cache does not answer for it).
    std::fs::write(gates.path().join("go.fail"), "").expect("fail");
    commit_on(&repo, "x", &[("x2.txt", "x again\n")]);
    let (code, out, err) = repo.run(&["integrate"]);
    assert_eq!(code, 5, "{out}{err}");
    page.wait_until("failed", SHOW, &state_is("red"));
    let lines = page.execute(
        "return document.querySelector('#integration .verify-lines').textContent;",
        json!([]),
    );
    let lines = lines.as_str().expect("lines").to_string();
    assert!(
        lines.contains("<script>window.orchPwned7=1</script>")
            && lines.contains("<img src=x onerror=window.orchPwned8=1> \\u{1b}[2J end"),
        "{lines}"
    );
    assert!(!lines.contains('\u{1b}'), "{lines:?}");

    // Both plans write one file (a name with markup): a conflict, the file named as text.
    std::fs::remove_file(gates.path().join("go.fail")).expect("unfail");
    let hostile = "<img src=x onerror=window.orchPwned9=1>.txt";
    commit_on(&repo, "x", &[(hostile, "from x\n")]);
    commit_on(&repo, "y", &[(hostile, "from y\n")]);
    let (code, out, err) = repo.run(&["integrate", "--json"]);
    assert_eq!(code, 5, "{out}{err}");
    page.wait_until("in conflict", SHOW, &state_is("conflicts"));
    let files = page.execute(
        "return [...document.querySelectorAll('#integration .conflict li')].map(l => l.textContent);",
        json!([]),
    );
    assert_eq!(files, json!([hostile]), "{out}");
    let failure = page.text_at("#integration .failure");
    assert!(
        failure.starts_with("x + y break together (culprit y)"),
        "{failure}"
    );

    // Nothing ran, no element was added, and the page was never reloaded.
    let v = page.execute(
        "return [7,8,9].map(i => typeof window['orchPwned' + i]).concat([document.scripts.length, document.images.length, window.orchTestMark]);",
        json!([]),
    );
    assert_eq!(v, json!(["undefined", "undefined", "undefined", 1, 0, 7]));
}

/// A script: whether the integration box shows `state`.
fn state_is(state: &str) -> String {
    format!(
        "const b = document.getElementById('integration-box'); return !b.hidden && document.getElementById('integration').getAttribute('data-state') === '{state}';"
    )
}
