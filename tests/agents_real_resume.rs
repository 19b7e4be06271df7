//! The real Claude Code and Codex presets ask and are resumed with the answer, end to end
//! against the fake model API (`tests/support/fake_api/`): the fake model makes the client run
//! `orch task ask`, `orch up` ends with exit 5 and the task `needs_input`; `orch answer`, then
//! `orch up` again resumes the client's session (its earlier conversation, with the answer as
//! the new prompt), and the task completes with its commit. The CLIs are the pinned ones
//! (`ORCH_TEST_CLIS`, a skip unless `ORCH_REQUIRE_AGENT_CLIS=1`); the agents run confined,
//! where the client's session lives in orch's private copy of its state.

use crate::support;

use std::time::Instant;

use support::clis::{ONE, RUN_TIMEOUT, client_env, clis_with, logs, repo_with};
use support::fake_api::{Behaviour, FakeApi};
use support::{Repo, code_out_err, wait_within};

const QUESTION: &str = "PostgreSQL or SQLite?";
const ANSWER: &str = "SQLite, version 3 (the answer)";

struct Run {
    code: i32,
    context: String,
}

fn orch(repo: &Repo, api: &FakeApi, clis: &std::path::Path, args: &[&str], confined: bool) -> Run {
    let mut cmd = repo.orch(args);
    client_env(&mut cmd, clis, api, repo.home());
    if confined {
        cmd.env_remove("ORCH_SANDBOX");
    }
    let start = Instant::now();
    let (code, out, err) = code_out_err(&wait_within(
        cmd.spawn().expect("spawn orch"),
        RUN_TIMEOUT,
        "orch",
    ));
    let context = format!(
        "orch {args:?}: exit {code} after {:?}\nstdout:\n{out}\nstderr:\n{err}\nagent logs:\n{}\nmodel calls: {:#?}",
        start.elapsed(),
        logs(repo),
        api.conversations()
    );
    Run { code, context }
}

/// `agent` asks, is answered, and (confined) is resumed with the answer, or (unconfined) runs
/// a fresh session whose prompt holds question and answer.
fn asks_and_goes_on(agent: &str, confined: bool) {
    if confined && !orch::sandbox::supported() {
        eprintln!("skipped: this kernel does not support Landlock");
        return;
    }
    let Some(clis) = clis_with(agent) else {
        return;
    };
    let api = FakeApi::start(Behaviour::Asks {
        question: QUESTION.into(),
        answer: ANSWER.into(),
    });
    let repo = repo_with(agent, ONE, "");

    let up = orch(&repo, &api, &clis, &["up"], confined);
    assert_eq!(up.code, 5, "the task waits: {}", up.context);
    let t = repo.task("p", "1.1");
    assert_eq!(t["status"], "needs_input", "{t}\n{}", up.context);
    assert_eq!(t["orchQuestion"], QUESTION, "{}", up.context);
    let asked = api.conversations().len();

    let (code, out, err) = repo.run(&["answer", "p", "1.1", ANSWER]);
    assert_eq!(code, 0, "{out}{err}");
    let up = orch(&repo, &api, &clis, &["up"], confined);
    assert_eq!(up.code, 0, "{}", up.context);

    // The task completed with its commit: the file the model wrote after the answer.
    let t = repo.task("p", "1.1");
    assert_eq!(t["status"], "completed", "{t}\n{}", up.context);
    assert_eq!(t["notes"], "wrote alpha.txt", "{t}\n{}", up.context);
    let text = repo.git(&["show", "plan/p:alpha.txt"]);
    assert_eq!(
        text.trim_end(),
        "alpha.txt written by task 1.1",
        "{}",
        up.context
    );
    let subject = repo.git(&["log", "-1", "--format=%s", "plan/p", "--", "alpha.txt"]);
    assert!(subject.starts_with("p 1.1:"), "{subject}\n{}", up.context);

    // What the model saw after the answer: every call of the second run carries the answer.
    let after = &api.conversations()[asked..];
    assert!(!after.is_empty(), "{}", up.context);
    let log = std::fs::read_to_string(repo.root().join(".orch/logs/p/1.1.log"))
        .or_else(|_| std::fs::read_to_string(find_log(&repo)))
        .unwrap_or_default();
    for seen in after {
        assert!(seen.prompt.contains(ANSWER), "{seen:?}\n{}", up.context);
        // Resumed: the earlier conversation (the ask and its result) is there. Fresh: it is
        // not, and the prompt holds the question too.
        let carries_ask = seen.calls.iter().any(|c| c.contains(" task ask 1.1"));
        assert_eq!(carries_ask, confined, "{seen:?}\n{}", up.context);
        if !confined {
            assert!(seen.prompt.contains(QUESTION), "{seen:?}");
        }
    }
    if confined {
        assert!(
            log.contains("=== orch: resumed the session "),
            "{log}\n{}",
            up.context
        );
        // The claude preset's resumed session takes its answer (and messages) on stdin.
        if agent == "claude" {
            assert!(
                log.contains("--resume") && log.contains("--input-format stream-json"),
                "{log}"
            );
        }
    } else {
        assert!(
            log.contains("is not resumed (the agent ran unconfined"),
            "{log}\n{}",
            up.context
        );
    }
}

/// The task's log, wherever the run's log directory is.
fn find_log(repo: &Repo) -> std::path::PathBuf {
    let mut stack = vec![repo.root().join(".orch")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() && !p.ends_with("worktrees") {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "1.1.log") {
                return p;
            }
        }
    }
    repo.root().join("no-log")
}

#[test]
fn claude_asks_and_is_resumed_with_the_answer() {
    asks_and_goes_on("claude", true);
}

#[test]
fn codex_asks_and_is_resumed_with_the_answer() {
    asks_and_goes_on("codex", true);
}

#[test]
fn claude_unconfined_asks_and_goes_on_in_a_fresh_session_with_the_answer() {
    asks_and_goes_on("claude", false);
}
