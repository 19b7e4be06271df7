//! Best of N: the attempts of one task run side by side and report the same task id.
//! A hostile attempt reports its task done again and again and another task done, plants files
//! in its sibling's task worktree, and leaves a score that the plan's `select` prints as a
//! terminal escape and 100,000 digits. Its reports count for itself alone (never for its
//! sibling or another task), the plants are denied (confined), its score is no number (it is
//! no candidate, with that cause, shown escaped), and only the sibling's work lands.

use serde_json::Value;

use crate::landlock;
use crate::support::{self, Repo, agent, named};

#[test]
fn best_of_a_hostile_attempt_neither_completes_its_sibling_nor_wins_by_its_score() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    repo.commit_plan_p(
        "# P\n\n## Phase 1: One\n- [ ] 1.1 First\n- [ ] 1.2 Second (depends: 1.1)\n",
        &agent("hostile_best_of.sh", &[]),
        "report = \"orch\"",
        "retries = 0\nsandbox = \"on\"\nmax_agents = 2\nattempts = 2\nattempts_stop = \"all\"\n\
         select = [\"cat\", \"score.txt\"]",
    );
    let main_before = repo.rev("main");
    let (code, out, err) = repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
    let ev = support::events(&out);
    assert_eq!(code, 0, "{out}\n{err}");
    // Task 1.1: attempt 2's work landed alone, as the task's one commit.
    let subjects = repo.subjects("plan/p");
    assert_eq!(
        subjects.iter().filter(|s| s.starts_with("p 1.1:")).count(),
        1,
        "{subjects:?}"
    );
    assert_eq!(repo.git(&["show", "plan/p:out.txt"]), "attempt 2 did it");
    let tree = repo.tree_files("plan/p");
    assert!(
        !tree
            .iter()
            .any(|f| f == "planted.txt" || f == "hostile.txt"),
        "{tree:?}"
    );
    // Attempt 1 is no candidate: its score is no number, shown escaped and cut.
    let attempts: Vec<&Value> = named(&ev, "attempt_finished")
        .into_iter()
        .filter(|e| e["task"] == "1.1")
        .collect();
    let first = attempts
        .iter()
        .find(|e| e["attempt"] == 1)
        .expect("attempt 1 settled");
    assert_eq!(first["picked"], false);
    let cause = first["cause"].as_str().expect("cause");
    assert_eq!(
        cause,
        "its select command printed no number: `\\u{1b}[31m99\\u{1b}[0m`"
    );
    assert!(cause.len() < 300, "{} bytes", cause.len());
    assert!(!cause.contains('\x1b'));
    // Its own reports were taken for itself; its report of 1.2 was refused.
    let saved = repo.git(&["show", "refs/orch/attempts/p/1.1/1:hostile.txt"]);
    assert!(saved.contains("done-own 0"), "{saved}");
    assert!(saved.contains("done-1.2 4"), "{saved}");
    // The plants in the other task worktrees were denied.
    assert!(saved.contains("plant "), "{saved}");
    assert!(
        !saved.contains(" 0\nplant")
            && !saved
                .lines()
                .any(|l| l.starts_with("plant ") && l.ends_with(" 0")),
        "{saved}"
    );
    assert!(
        named(&ev, "report_refused")
            .iter()
            .any(|e| e["task"] == "1.2")
    );
    // 1.2 was not completed by attempt 1's word: its own attempts ran, after 1.1 landed.
    let started_12 = named(&ev, "task_started")
        .into_iter()
        .filter(|e| e["task"] == "1.2")
        .count();
    assert_eq!(started_12, 2);
    assert_eq!(
        subjects.iter().position(|s| s.starts_with("p 1.1:")),
        Some(subjects.len() - 2),
        "{subjects:?}"
    );
    // Nothing of orch's moved `main`; no human-readable line carries the escape.
    assert_eq!(repo.rev("main"), main_before);
    assert!(!err.contains('\x1b'), "{err}");
}

/// An attempt rewrites the `select` scorer in its worktree to give itself 99: the scorer's
/// files are protected as the check's are, so the attempt is no candidate (`changed protected
/// paths: ci/score.sh`) and its honest sibling wins with the real scorer's number.
#[test]
fn best_of_an_attempt_that_rewrites_the_scorer_is_no_candidate() {
    let repo = Repo::new();
    let gates = repo.outside("gates");
    std::fs::create_dir_all(&gates).expect("gates");
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: One\n- [ ] 1.1 First\n",
    );
    repo.write("ci/score.sh", "#!/bin/sh\necho 1\n");
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"a\"\nmax_agents = 2\nretries = 0\n\n[agents.a]\ncommand = {}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nattempts = 2\n\
             attempts_stop = \"all\"\nselect = [\"sh\", \"ci/score.sh\"]\n",
            agent(
                "best_of.sh",
                &[
                    "1=cheat:1 2=done:9",
                    gates.join("gate").to_str().expect("utf-8")
                ]
            )
        ),
    );
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let ev = support::events(&out);
    let first = named(&ev, "attempt_finished")
        .into_iter()
        .find(|e| e["attempt"] == 1)
        .expect("attempt 1");
    assert_eq!(first["picked"], false);
    assert_eq!(first["cause"], "changed protected paths: ci/score.sh");
    assert!(
        repo.git(&["show", "plan/p:out.txt"])
            .starts_with("attempt 2 line 0")
    );
    assert_eq!(
        repo.git(&["show", "plan/p:ci/score.sh"]),
        "#!/bin/sh\necho 1"
    );
    let done = named(&ev, "task_finished");
    assert!(
        done[0]["pick"]
            .as_str()
            .is_some_and(|p| p.starts_with("attempt 2 of 2: done, score 1, 9 lines")),
        "{done:?}"
    );
}
