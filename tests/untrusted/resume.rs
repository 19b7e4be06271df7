//! A resumed session is the task's own: after an agent of the `claude` or `codex` preset asked
//! and a person answered, orch resumes the session the client announced in its first event,
//! from the transcript kept in that attempt's private state. A hostile agent
//! (`tests/fixtures/agents/hostile_resume.sh` as the client) claims another task's session in
//! several ways: that task's session id, a path to its kept session, a path outside, its own id
//! with its transcript a link to the other task's, a transcript of its own making under the
//! other task's id, its own session and the other's id in a later event. None of them resumes
//! the other task's session: the attempt is a fresh one (its log says why) or resumes the
//! agent's own transcript; the honest task is resumed with its own. Unconfined, nothing is
//! resumed (the client's sessions are all in the user's HOME).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::landlock;
use crate::support::{self, Repo, code_out_err, wait_within};

const PLAN: &str = "# P\n\n## Phase 1: Work\n\
- [ ] 1.1 honest\n- [ ] 1.2 another task's id\n- [ ] 1.3 a path to its kept session\n\
- [ ] 1.4 a path outside\n- [ ] 1.5 a link to its transcript\n\
- [ ] 1.6 a transcript of its own under its id\n- [ ] 1.7 its id in a later event\n";
const TASKS: [&str; 7] = ["1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7"];
const HONEST: &str = "11111111-1111-4111-8111-111111111111";

/// The hostile client installed as `bin/claude` and `bin/codex`.
fn install(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let script = std::fs::read(support::fixtures().join("hostile_resume.sh")).expect("fixture");
    for name in ["claude", "codex"] {
        let p = bin.join(name);
        std::fs::write(&p, &script).expect("write client");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    bin
}

fn up(repo: &Repo, bin: &Path, confined: bool) -> (i32, String) {
    let path = std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");
    let mut cmd = repo.orch(&["up"]);
    cmd.env("PATH", path);
    if confined {
        cmd.env_remove("ORCH_SANDBOX");
    }
    let (code, out, err) = code_out_err(&wait_within(
        cmd.spawn().expect("spawn orch up"),
        repo.timeout(),
        "orch up",
    ));
    (code, format!("stdout:\n{out}\nstderr:\n{err}"))
}

/// The part of task `id`'s log after its last attempt started.
fn last_attempt(repo: &Repo, id: &str) -> String {
    let log = std::fs::read_to_string(repo.root().join(format!(".orch/logs/p/{id}.log")))
        .unwrap_or_default();
    let at = log
        .rmatch_indices("=== orch: attempt ")
        .map(|(i, _)| i)
        .find(|&i| {
            log[i..]
                .lines()
                .next()
                .is_some_and(|l| l.contains(" started at "))
        })
        .unwrap_or(0);
    log[at..].to_string()
}

fn claims_another_tasks_session(agent: &str, confined: bool) {
    if confined && !landlock() {
        return;
    }
    let repo = Repo::new();
    let bin = install(repo.home());
    repo.write("docs/plans/p.md", PLAN);
    repo.write(
        "plans.toml",
        &format!("[defaults]\nagent = \"{agent}\"\n\n[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n"),
    );
    repo.commit_all("plans");

    let (code, ctx) = up(&repo, &bin, confined);
    assert_eq!(code, 5, "{ctx}");
    for id in TASKS {
        assert_eq!(repo.task("p", id)["status"], "needs_input", "{id}: {ctx}");
        let (code, out, err) = repo.run(&["answer", "p", id, "use SQLite (ANSWERED)"]);
        assert_eq!(code, 0, "{out}{err}");
    }
    let (code, ctx) = up(&repo, &bin, confined);
    assert_eq!(code, 0, "{ctx}");

    let logs: Vec<(&str, String)> = TASKS
        .iter()
        .map(|id| (*id, last_attempt(&repo, id)))
        .collect();
    let all = format!("{logs:#?}\n{ctx}");
    for (id, log) in &logs {
        // Each task completed with its own commit.
        assert_eq!(repo.task("p", id)["status"], "completed", "{id}: {all}");
        let text = repo.git(&["show", &format!("plan/p:task-{id}.txt")]);
        assert_eq!(text.trim_end(), format!("done by {id}"), "{all}");
        // No task but the honest one ever reads the honest task's transcript.
        if *id != "1.1" {
            assert!(!log.contains("CONTENT=honest 1.1"), "{id}: {all}");
        }
        if !confined {
            assert!(log.contains("\nFRESH\n"), "{id}: {all}");
            assert!(
                log.contains("is not resumed (the agent ran unconfined"),
                "{id}: {all}"
            );
        }
    }
    if !confined {
        return;
    }
    let of = |id: &str| &logs.iter().find(|(i, _)| *i == id).expect("task").1;
    // The honest task resumes its own session, with its own transcript.
    assert!(
        of("1.1").contains(&format!("RESUMED {HONEST} CONTENT=honest 1.1")),
        "{all}"
    );
    // Another task's id, paths, a link: a fresh session, and the log says why.
    for id in ["1.2", "1.3", "1.4", "1.5"] {
        assert!(of(id).contains("\nFRESH\n"), "{id}: {all}");
        assert!(of(id).contains("is not resumed ("), "{id}: {all}");
    }
    // A transcript of its own under the other's id: only its own is there.
    assert!(
        of("1.6").contains(&format!("RESUMED {HONEST} CONTENT=forged by 1.6")),
        "{all}"
    );
    // The first event's session, not a later one.
    assert!(
        of("1.7").contains("RESUMED 17171717-1111-4111-8111-111111111111 CONTENT=honest 1.7"),
        "{all}"
    );
}

#[test]
fn a_resumed_claude_session_is_the_tasks_own() {
    claims_another_tasks_session("claude", true);
}

#[test]
fn a_resumed_codex_session_is_the_tasks_own() {
    claims_another_tasks_session("codex", true);
}

#[test]
fn unconfined_no_session_is_resumed() {
    claims_another_tasks_session("claude", false);
}
