//! The real Claude Code preset takes a person's message while it runs (`orch say`), end to end
//! against the fake model API (`tests/support/fake_api/`): the preset runs with streaming
//! input (`--input-format stream-json`), its prompt the first user message. The fake model
//! holds its first answer until the message is said, ends that turn waiting, and follows the
//! message in the next; orch closes the client's input after its first turn, so the client
//! ends by itself once it has answered the message. The CLI is the pinned one
//! (`ORCH_TEST_CLIS`, a skip unless `ORCH_REQUIRE_AGENT_CLIS=1`), confined and not.

use crate::support;

use std::time::Instant;

use support::clis::{ONE, RUN_TIMEOUT, client_env, clis_with, logs, repo_with};
use support::fake_api::{Behaviour, FakeApi};
use support::{code_out_err, wait_for, wait_within};

const WORD: &str = "Use tabs, not spaces (the person's word)";

fn says_while_it_runs(confined: bool) {
    if confined && !orch::sandbox::supported() {
        eprintln!("skipped: this kernel does not support Landlock");
        return;
    }
    let Some(clis) = clis_with("claude") else {
        return;
    };
    let api = FakeApi::start(Behaviour::Listens(WORD.into()));
    api.hold();
    let repo = repo_with("claude", ONE, "");
    let mut cmd = repo.orch(&["up"]);
    client_env(&mut cmd, &clis, &api, repo.home());
    if confined {
        cmd.env_remove("ORCH_SANDBOX");
    }
    let start = Instant::now();
    let child = cmd.spawn().expect("spawn orch up");
    // The client is in its first turn, its model call held.
    wait_for("the client's first model call", || api.model_calls() >= 1);
    let (code, out, err) = repo.run(&["say", "p", "1.1", WORD]);
    assert_eq!(code, 0, "orch say: {out}{err}");
    assert!(
        out.starts_with("delivered (to its running attempt 1)"),
        "{out}{err}"
    );
    api.release();
    let (code, out, err) = code_out_err(&wait_within(child, RUN_TIMEOUT, "orch up"));
    let context = format!(
        "orch up: exit {code} after {:?}\nstdout:\n{out}\nstderr:\n{err}\nagent logs:\n{}\nmodel calls: {:#?}",
        start.elapsed(),
        logs(&repo),
        api.conversations()
    );
    assert_eq!(code, 0, "{context}");
    // The model followed the message: the file it wrote after it, committed with the task.
    let t = repo.task("p", "1.1");
    assert_eq!(t["status"], "completed", "{t}\n{context}");
    assert_eq!(t["orchMessages"][0]["delivery"], "delivered", "{t}");
    assert_eq!(t["orchMessages"][0]["attempt"], 1, "{t}");
    let text = repo.git(&["show", "plan/p:alpha.txt"]);
    assert_eq!(text.trim_end(), "alpha.txt fixed by task 1.1", "{context}");
    // One attempt, one session: the first call had the prompt alone; a later one had the
    // prompt and the message, said to be the person's.
    let calls = api.conversations();
    assert!(
        calls[0].prompt.contains("## Task 1.1") && !calls[0].prompt.contains(WORD),
        "{context}"
    );
    let heard = calls
        .iter()
        .find(|c| c.prompt.contains(WORD))
        .unwrap_or_else(|| panic!("no call carried the message\n{context}"));
    assert!(
        heard.prompt.contains("## Task 1.1")
            && heard
                .prompt
                .contains("A message from the person who runs this plan"),
        "{heard:?}"
    );
    assert_eq!(t["attempts"], 1, "{t}");
}

#[test]
fn claude_takes_a_message_while_it_runs() {
    says_while_it_runs(false);
}

#[test]
fn claude_takes_a_message_while_it_runs_confined() {
    says_while_it_runs(true);
}
