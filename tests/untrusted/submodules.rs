//! Submodules: which submodules a worktree gets, and from where, comes from the main
//! repository's own configuration and the `.gitmodules` of its checked-out commit, never from a
//! `.gitmodules` an agent committed. Here task 1.1 commits one that points `libs/sub` at an
//! `ext::` URL (which would create a marker file if git ever used it); task 1.2 then takes a
//! pool worktree again (and the plan worktree follows the landing): the URL is not used,
//! `libs/sub` is the main repository's. A submodule the agent adds (`evil`, a gitlink to a
//! repository of its own) fails the task: the main checkout does not declare it. A symlink an agent leaves where the submodule goes is removed, never
//! followed, and the submodule checked out again for the next attempt.

use crate::support::submodules::{fixture, gitlink, journal, plans};
use crate::support::utf8;

#[test]
fn an_agents_gitmodules_is_never_used() {
    let fx = fixture();
    let repo = &fx.repo;
    let marker = repo.outside("marker");
    let ext = format!("ext::sh -c touch% {}", utf8(&marker));
    // The lead allows the plan to change `.gitmodules`, which a later run trusts: without
    // that it is refused (tests/untrusted/trusted_files.rs).
    plans(
        &fx,
        ("hostile", &[&ext, "", ""]),
        "allow_protected = [\".gitmodules\"]",
        true,
        false,
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    let journal = journal(&fx);
    assert_eq!(code, 0, "{out}\n{err}\n{journal:#?}");
    // The agent's .gitmodules was committed (orch commits what the agent wrote)...
    let gitmodules = repo.git(&["show", "plan/p:.gitmodules"]);
    assert!(gitmodules.contains("ext::"), "{gitmodules}");
    // ... and never used: task 1.2's pool worktree and the plan worktree have the main
    // repository's submodule, and no command of the agent's URL ran.
    let second = journal
        .iter()
        .find(|l| l.starts_with("start p 1.2 "))
        .unwrap_or_else(|| panic!("task 1.2 did not run: {journal:#?}"));
    assert!(
        second.contains("sub=yes inner=yes evil=no subtext=sub.txt"),
        "{second}"
    );
    let wt = repo.worktree("p");
    assert_eq!(
        std::fs::read_to_string(wt.join("libs/sub/sub.txt")).unwrap_or_default(),
        "sub.txt\n"
    );
    assert!(!marker.exists(), "the agent's ext:: URL ran");
    assert_eq!(gitlink(repo, "plan/p"), format!("160000 {}", fx.sub_commit));
    // The main repository's configuration is untouched.
    assert_eq!(
        repo.git(&["config", "submodule.libs/sub.url"]),
        "https://127.0.0.1:9/none.git"
    );
}

/// A new submodule an agent adds (a gitlink to a repository it made, named in a `.gitmodules`
/// of its own): the main checkout does not declare it, so the task fails naming it and nothing
/// of it is committed.
#[test]
fn an_agents_new_submodule_fails_the_task() {
    let fx = fixture();
    let repo = &fx.repo;
    let evil = repo.outside("evil");
    std::fs::create_dir_all(&evil).expect("evil dir");
    repo.git_at(&evil, &["init", "-q", "-b", "main"]);
    std::fs::write(evil.join("payload.txt"), "payload\n").expect("payload");
    repo.git_at(&evil, &["add", "-A"]);
    repo.git_at(&evil, &["commit", "-q", "-m", "evil"]);
    let evil_commit = repo.git_at(&evil, &["rev-parse", "HEAD"]);
    plans(
        &fx,
        (
            "hostile",
            &["https://127.0.0.1:9/x.git", utf8(&evil), &evil_commit],
        ),
        // `.gitmodules` (which a later run trusts) allowed by the lead, so that what refuses
        // it is the new submodule, not the protected file.
        "allow_protected = [\".gitmodules\"]",
        true,
        false,
    );
    let main = repo.rev("main");
    let (code, out, err) = repo.run(&["up", "--json"]);
    let journal = journal(&fx);
    assert_ne!(code, 0, "{out}\n{err}\n{journal:#?}");
    let task = repo.task("p", "1.1");
    assert_eq!(task["status"], "failed", "{out}\n{err}");
    let cause = task["error"].as_str().unwrap_or_default();
    assert!(
        cause.contains("nested git repository") && cause.contains("`evil`"),
        "{cause}"
    );
    assert!(
        repo.git(&["ls-tree", "-r", "plan/p"])
            .lines()
            .all(|l| !l.contains("evil")),
        "the agent's gitlink was committed"
    );
    assert!(
        !journal.iter().any(|l| l.starts_with("start p 1.2 ")),
        "{journal:#?}"
    );
    assert_eq!(repo.rev("main"), main, "main moved");
    assert!(!repo.root().join(".git/modules/evil").exists());
    assert_eq!(gitlink(repo, "plan/p"), format!("160000 {}", fx.sub_commit));
}

#[test]
fn a_link_where_the_submodule_goes_is_removed_not_followed() {
    let fx = fixture();
    let repo = &fx.repo;
    let outside = repo.outside("target-dir");
    std::fs::create_dir_all(&outside).expect("outside dir");
    std::fs::write(outside.join("keep.txt"), "keep\n").expect("keep");
    plans(
        &fx,
        ("link", &[utf8(&outside)]),
        "retries = 1",
        false,
        false,
    );
    let (code, out, err) = repo.run(&["up", "--json"]);
    let journal = journal(&fx);
    assert_eq!(code, 0, "{out}\n{err}\n{journal:#?}");
    assert!(
        journal.iter().any(|l| l.ends_with(" linked")),
        "{journal:#?}"
    );
    // The second attempt found the submodule checked out again.
    let again = journal
        .iter()
        .filter(|l| l.starts_with("start p 1.1 "))
        .nth(1)
        .unwrap_or_else(|| panic!("no second attempt: {journal:#?}"));
    assert!(again.contains("sub=yes inner=yes"), "{again}");
    // Nothing was written through the link.
    let names: Vec<String> = std::fs::read_dir(&outside)
        .expect("outside dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["keep.txt"]);
    assert_eq!(gitlink(repo, "plan/p"), format!("160000 {}", fx.sub_commit));
}
