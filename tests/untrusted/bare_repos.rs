//! A git directory under an ordinary name (red team 7): git takes a directory for a repository
//! not only through a `.git`, but as a git directory itself when it holds a `HEAD` and `objects/`
//! and `refs/` (a bare repository), or a `HEAD` and a `commondir` (git's `is_git_directory`). An
//! agent that leaves `vendor/cache/{HEAD,config,objects/,refs/}` with `core.fsmonitor` in its
//! config had it committed and landed in `main` by `orch merge`; a `git status` anyone then ran
//! inside `vendor/cache` ran the program unconfined. Now such a directory is a nested
//! repository: the task fails naming it, nothing is committed, `main` does not move, and `orch
//! merge` refuses a branch that brings one (exit 4). A directory that merely holds a file named
//! `HEAD` is an ordinary one.

use std::path::Path;

use crate::big_files::{plan_p, up_fails_naming};
use crate::landlock;

/// The shell lines that make a git directory of kind `kind` at `dir` (from the worktree's root;
/// `.` the root itself) whose configuration runs `touch marker` when a git reads it from inside
/// (`core.fsmonitor`, with `core.worktree` pointing back at the root so that `git status`
/// runs there):
/// - `hand`: `HEAD`, `config`, `objects/.keep`, `refs/heads/.keep` written by hand;
/// - `init`: `git init --bare`, its config added to;
/// - `commondir`: `HEAD` and a `commondir` naming `s`, where `objects/`, `refs/` and the config
///   are (the work tree in its `config.worktree`).
fn plant(kind: &str, dir: &str, marker: &Path) -> String {
    let up = if dir == "." {
        ".".to_string()
    } else {
        vec![".."; dir.split('/').count()].join("/")
    };
    let m = marker.display();
    let fsmonitor = format!("\\tfsmonitor = \"touch {m}; echo\"\\n");
    let core = format!(
        "[core]\\n\\trepositoryformatversion = 0\\n\\tbare = false\\n\\tworktree = {up}\\n{fsmonitor}"
    );
    match kind {
        "hand" => format!(
            "mkdir -p {dir}/objects {dir}/refs/heads && echo 'ref: refs/heads/main' > {dir}/HEAD && \
             echo keep > {dir}/objects/.keep && echo keep > {dir}/refs/heads/.keep && \
             printf '{core}' > {dir}/config"
        ),
        "init" => format!("git init -q --bare {dir} && printf '{core}' >> {dir}/config"),
        "commondir" => format!(
            "mkdir -p {dir}/s/objects {dir}/s/refs/heads && echo keep > {dir}/s/objects/.keep && \
             echo keep > {dir}/s/refs/heads/.keep && echo 'ref: refs/heads/main' > {dir}/HEAD && \
             echo s > {dir}/commondir && \
             printf '[core]\\n\\trepositoryformatversion = 1\\n{fsmonitor}[extensions]\\n\\tworktreeConfig = true\\n' > {dir}/s/config && \
             printf '[core]\\n\\tbare = false\\n\\tworktree = {up}\\n' > {dir}/config.worktree"
        ),
        other => panic!("no such kind: {other}"),
    }
}

/// The attack is real: `plant(kind, dir)` run in a scratch repository, a `git status` inside
/// `dir` runs the program (git takes the directory for a repository). Not for the root (the
/// checkout's own `.git` is found first there).
fn git_runs_it(kind: &str, dir: &str) {
    let scratch = tempfile::tempdir().expect("tmp");
    let marker = scratch.path().join("control-marker");
    let repo = scratch.path().join("r");
    std::fs::create_dir_all(&repo).expect("mkdir");
    let run = |cmd: &mut std::process::Command| {
        let out = cmd.output().expect("run");
        assert!(out.status.success(), "{kind} {dir}: {out:?}");
    };
    run(std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(&repo));
    run(std::process::Command::new("sh")
        .args(["-c", &plant(kind, dir, &marker)])
        .current_dir(&repo));
    let _ = std::process::Command::new("timeout")
        .args(["30", "git", "status"])
        .current_dir(repo.join(dir))
        .output();
    assert!(
        marker.exists(),
        "{kind} at {dir}: git did not take it for a repository (the variant tests nothing)"
    );
}

/// Task `p` 1.1 whose agent runs `script` (sandbox `sandbox`) fails naming `dir` as a nested
/// git repository: exit 5, nothing on `plan/p`, `main` unmoved; `marker` never made.
fn fails_naming(script: &str, dir: &str, sandbox: &str, marker: &Path) {
    let what = format!("{dir} (sandbox {sandbox}): {script}");
    let repo = plan_p(script, &format!("sandbox = \"{sandbox}\""), "");
    let error = up_fails_naming(&repo, &what, "nested git repository");
    assert!(error.contains(&format!("`{dir}")), "{what}: {error}");
    assert!(!marker.exists(), "{what}: the program ran");
    assert!(
        !repo
            .git(&["ls-tree", "-r", "--name-only", "plan/p"])
            .contains("HEAD"),
        "{what}: the git directory reached plan/p"
    );
}

fn sandboxes() -> Vec<&'static str> {
    if landlock() {
        vec!["on", "off"]
    } else {
        vec!["off"]
    }
}

/// A bare repository at the top of the worktree, two levels down, four levels down (`git init
/// --bare`), one through a `commondir`, and the worktree's root itself made one; confined and
/// not. Seen failing on the code before: the task completed with the directory committed.
#[test]
fn bare_repos_a_git_directory_by_any_name_fails_the_task() {
    for (kind, dir) in [
        ("hand", "cache"),
        ("hand", "vendor/cache"),
        ("init", "a/b/c/cache"),
        ("commondir", "vendor/wt"),
        ("hand", "."),
    ] {
        if dir != "." {
            git_runs_it(kind, dir);
        }
        for sandbox in sandboxes() {
            let tmp = tempfile::tempdir().expect("tmp");
            let marker = tmp.path().join("pwned");
            let script = plant(kind, dir, &marker);
            fails_naming(&script, dir, sandbox, &marker);
        }
    }
}

/// The agent (unconfined: its git directory is writable) commits the git directory itself,
/// then removes it from the work tree (orch's walk sees nothing there) or leaves it: the
/// commits since the attempt started are checked too. Seen failing on the code before: the
/// task completed with the directory on `plan/p`.
#[test]
fn bare_repos_a_git_directory_the_agent_commits_itself_fails_the_task() {
    for (kind, dir) in [("hand", "vendor/cache"), ("commondir", "x/y/wt")] {
        for then in ["rm -rf DIR", "true"] {
            let tmp = tempfile::tempdir().expect("tmp");
            let marker = tmp.path().join("pwned");
            let script = format!(
                "{} && git add -f {dir} && git -c user.name=a -c user.email=a@a commit -qm vendored && {}",
                plant(kind, dir, &marker),
                then.replace("DIR", dir)
            );
            fails_naming(&script, dir, "off", &marker);
        }
    }
}

/// `orch merge` of a plan branch a person (or an agent, by hand) gave a git directory after the
/// plan finished: refused, exit 4, naming the plan and the directory; `main` unmoved, the
/// program never run. Seen failing on the code before: merged, the directory in `main`. (A
/// `git init --bare` committed as it is holds no `objects/` nor `refs/`, empty directories git
/// does not record: what lands is no repository, and is not refused.)
#[test]
fn bare_repos_orch_merge_refuses_a_branch_that_brings_a_git_directory() {
    for (kind, dir) in [
        ("hand", "vendor/cache"),
        ("hand", "cache"),
        ("commondir", "a/b/wt"),
    ] {
        let tmp = tempfile::tempdir().expect("tmp");
        let marker = tmp.path().join("pwned");
        let repo = plan_p("true", "", "");
        let (code, out, err) = repo.run(&["up"]);
        assert_eq!(code, 0, "{out}\n{err}");
        let tree = repo.worktree("p");
        crate::support::shell_in(
            &tree,
            &format!(
                "{} && git add -f {dir} && git commit -qm 'by hand'",
                plant(kind, dir, &marker)
            ),
        );
        assert!(
            repo.git(&["ls-tree", "-r", "--name-only", "plan/p"])
                .contains(&format!("{dir}/HEAD")),
            "{kind} {dir}: the hand-made commit does not hold it"
        );
        let main = repo.rev("main");
        let (code, out, err) = repo.run(&["merge", "p"]);
        assert_eq!(code, 4, "{kind} {dir}\n{out}\n{err}");
        assert!(
            err.contains("nested git repository")
                && err.contains("plan `p`")
                && err.contains(&format!("`{dir}`")),
            "{kind} {dir}: {err}"
        );
        assert_eq!(repo.rev("main"), main, "{kind} {dir}: main moved");
        assert!(
            !repo.root().join(dir).exists(),
            "{kind} {dir}: written into main's checkout"
        );
        assert!(!marker.exists(), "{kind} {dir}: the program ran");
    }
}

/// A directory that merely holds a file named `HEAD` (a project file), even beside an
/// `objects/` or a `refs/` (not both), or a directory named `HEAD` beside both: an ordinary
/// directory, committed and merged.
#[test]
fn bare_repos_a_file_named_head_is_an_ordinary_file() {
    let script = "mkdir -p docs notes/objects misc/refs dirhead/HEAD dirhead/objects dirhead/refs && \
                  echo 'the head of the document' > docs/HEAD && echo n > notes/HEAD && \
                  echo o > notes/objects/o.txt && echo m > misc/HEAD && echo r > misc/refs/r.txt && \
                  echo h > dirhead/HEAD/h.txt && echo o > dirhead/objects/o.txt && \
                  echo r > dirhead/refs/r.txt";
    for sandbox in sandboxes() {
        let repo = plan_p(script, &format!("sandbox = \"{sandbox}\""), "");
        let (code, out, err) =
            repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
        assert_eq!(code, 0, "{sandbox}\n{out}\n{err}");
        assert_eq!(repo.task("p", "1.1")["status"], "completed", "{sandbox}");
        let files = repo.git(&["ls-tree", "-r", "--name-only", "plan/p"]);
        for f in [
            "docs/HEAD",
            "notes/HEAD",
            "misc/HEAD",
            "dirhead/HEAD/h.txt",
            "dirhead/refs/r.txt",
        ] {
            assert!(files.contains(f), "{sandbox}: {f} not committed: {files}");
        }
        let (code, out, err) = repo.run(&["merge", "p"]);
        assert_eq!(code, 0, "{sandbox}\n{out}\n{err}");
        assert_eq!(
            repo.git(&["show", "main:docs/HEAD"]),
            "the head of the document",
            "{sandbox}"
        );
    }
}
