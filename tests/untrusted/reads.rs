//! Reads of what an agent or a landed branch could have shaped: `plans.toml`, plan files and
//! prompt templates (landed by the merge train, so an agent's commit), status files, logs and
//! reports (where an unconfined agent can write). Whatever is at such a place (a FIFO, which a
//! plain read waits on forever; a link to `/etc/passwd` or to a file outside the repository; a
//! 1 GiB sparse file; a directory), orch names it and what it is, never follows the link, never
//! waits and never reads the file whole. Every process here runs with a deadline of 30 s: a
//! read that waits fails the test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{self, Repo, agent, named, one_task, read_lines, wait_line, wait_within};

/// What is planted in place of a file, and what orch then says it is.
struct Plant {
    name: &'static str,
    make: fn(&Repo, &Path),
    says: &'static str,
}

fn fifo(_: &Repo, at: &Path) {
    nix::unistd::mkfifo(at, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
}

fn link_to_passwd(_: &Repo, at: &Path) {
    std::os::unix::fs::symlink("/etc/passwd", at).expect("symlink");
}

fn sparse_1gib(_: &Repo, at: &Path) {
    std::fs::File::create(at)
        .and_then(|f| f.set_len(1 << 30))
        .expect("sparse");
}

fn directory(_: &Repo, at: &Path) {
    std::fs::create_dir(at).expect("mkdir");
}

fn repo() -> Repo {
    Repo::builder().timeout(Duration::from_secs(30)).build()
}

/// Removes whatever is at `at` (a file, a link, a FIFO, a directory).
fn clear(at: &Path) {
    match std::fs::symlink_metadata(at) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(at).expect("rmdir"),
        Ok(_) => std::fs::remove_file(at).expect("rm"),
        Err(_) => {}
    }
}

const PLAN: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 first\n";

/// A manifest of plan `p` (`docs/plans/p.md`) run by `ok.sh`.
fn manifest(extra_defaults: &str) -> String {
    format!(
        "[defaults]\nagent = \"a\"\nretries = 0\n{extra_defaults}\n\n[agents.a]\ncommand = {}\nreport = \"exit\"\n\n\
         [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n",
        agent("ok.sh", &["/dev/null"])
    )
}

/// A plan file that is a FIFO, a link (to `/etc/passwd`, to a plan outside the repository, to
/// another plan inside it), a 1 GiB sparse file or a directory: `orch check`, `orch status` and
/// `orch up` each stop with exit 2, naming the plan file and what it is, in well under their
/// deadline; `orch up` makes no branch, worktree or state.
#[test]
fn a_plan_file_that_is_not_a_regular_file_is_refused_by_name() {
    fn outside_link(repo: &Repo, at: &Path) {
        let outside = repo.outside("elsewhere.md");
        std::fs::write(&outside, PLAN).expect("write");
        std::os::unix::fs::symlink(&outside, at).expect("symlink");
    }
    fn inside_link(repo: &Repo, at: &Path) {
        repo.write("docs/plans/other.md", PLAN);
        std::os::unix::fs::symlink("other.md", at).expect("symlink");
    }
    let link = "plan file `docs/plans/p.md` is a symbolic link, which orch does not follow";
    let plants = [
        Plant {
            name: "a FIFO",
            make: fifo,
            says: "plan file `docs/plans/p.md` is a FIFO, not a regular file",
        },
        Plant {
            name: "a link to /etc/passwd",
            make: link_to_passwd,
            says: link,
        },
        Plant {
            name: "a link to a plan outside the repository",
            make: outside_link,
            says: link,
        },
        Plant {
            name: "a link to another plan inside it",
            make: inside_link,
            says: link,
        },
        Plant {
            name: "a directory",
            make: directory,
            says: "plan file `docs/plans/p.md` is a directory, not a regular file",
        },
        Plant {
            name: "a 1 GiB sparse file",
            make: sparse_1gib,
            says: "docs/plans/p.md` is 1073741824 bytes, more than the 64 MiB orch reads of a plan file",
        },
    ];
    let repo = repo();
    repo.write("plans.toml", &manifest(""));
    repo.commit_all("plans");
    let at = repo.root().join("docs/plans/p.md");
    std::fs::create_dir_all(at.parent().expect("dir")).expect("mkdir");
    for plant in &plants {
        clear(&at);
        (plant.make)(&repo, &at);
        for args in [&["check"][..], &["status"], &["up"]] {
            let (code, out, err) = repo.run(args);
            assert_eq!(code, 2, "{}: orch {args:?}\n{out}\n{err}", plant.name);
            assert!(
                err.contains(plant.says),
                "{}: orch {args:?} says:\n{err}",
                plant.name
            );
        }
        assert_eq!(repo.branches(), ["main"], "{}", plant.name);
        assert!(!repo.root().join(".orch").exists(), "{}", plant.name);
    }
}

/// `plans.toml` that is a link (to a valid manifest outside the repository), a FIFO or a 1 GiB
/// sparse file: found where it is (the walk up does not skip it for another), refused with
/// exit 2 naming it, whether found or given with `--manifest`.
#[test]
fn a_manifest_that_is_not_a_regular_file_is_refused_by_name() {
    fn outside_manifest(repo: &Repo, at: &Path) {
        let outside = repo.outside("plans.toml");
        std::fs::write(&outside, manifest("")).expect("write");
        std::os::unix::fs::symlink(&outside, at).expect("symlink");
    }
    let plants = [
        Plant {
            name: "a link to a manifest outside",
            make: outside_manifest,
            says: "plans.toml` is a symbolic link, which orch does not follow here",
        },
        Plant {
            name: "a FIFO",
            make: fifo,
            says: "plans.toml` is a FIFO, not a regular file",
        },
        Plant {
            name: "a 1 GiB sparse file",
            make: sparse_1gib,
            says: "plans.toml` is 1073741824 bytes, more than the 4 MiB orch reads of a manifest",
        },
    ];
    let repo = repo();
    repo.write("docs/plans/p.md", PLAN);
    repo.write("sub/dir/keep", "");
    repo.commit_all("plan");
    let at = repo.root().join("plans.toml");
    for plant in &plants {
        clear(&at);
        (plant.make)(&repo, &at);
        let from_sub = repo.orch(&["check"]);
        let mut from_sub = from_sub;
        from_sub.current_dir(repo.root().join("sub/dir"));
        let runs = [
            repo.run(&["check"]),
            repo.run(&["status", "--manifest", "plans.toml"]),
            repo.run_cmd(&mut from_sub),
            repo.run(&["up"]),
        ];
        for (code, out, err) in runs {
            assert_eq!(code, 2, "{}\n{out}\n{err}", plant.name);
            assert!(err.contains("manifest `"), "{}: {err}", plant.name);
            assert!(err.contains(plant.says), "{}: {err}", plant.name);
        }
        assert_eq!(repo.branches(), ["main"], "{}", plant.name);
    }
}

/// A prompt template (`defaults.templates`) that is a link (to `/etc/passwd`, to a template
/// outside the repository), a FIFO or a 1 GiB sparse file, or a templates directory that is a
/// link out of the repository: `orch check` and `orch up` stop with exit 2 naming the template.
#[test]
fn a_prompt_template_that_is_not_a_regular_file_is_refused_by_name() {
    fn outside_template(repo: &Repo, at: &Path) {
        let outside = repo.outside("task.md");
        std::fs::write(&outside, "Do {{ task_id }}\n").expect("write");
        std::os::unix::fs::symlink(&outside, at).expect("symlink");
    }
    let link = "is a symbolic link, which orch does not follow here";
    let plants = [
        Plant {
            name: "a link to /etc/passwd",
            make: link_to_passwd,
            says: link,
        },
        Plant {
            name: "a link to a template outside",
            make: outside_template,
            says: link,
        },
        Plant {
            name: "a FIFO",
            make: fifo,
            says: "is a FIFO, not a regular file",
        },
        Plant {
            name: "a 1 GiB sparse file",
            make: sparse_1gib,
            says: "is 1073741824 bytes, more than the 1 MiB orch reads of a prompt template",
        },
    ];
    let repo = repo();
    repo.write("docs/plans/p.md", PLAN);
    repo.write("plans.toml", &manifest("templates = \"orch/templates\""));
    repo.write("orch/templates/plan.md", "Plan {{ plan }}\n");
    repo.commit_all("plans");
    let at = repo.root().join("orch/templates/task.md");
    for plant in &plants {
        clear(&at);
        (plant.make)(&repo, &at);
        for args in [&["check"][..], &["up"]] {
            let (code, out, err) = repo.run(args);
            assert_eq!(code, 2, "{}: orch {args:?}\n{out}\n{err}", plant.name);
            assert!(
                err.contains("orch/templates/task.md") && err.contains(plant.says),
                "{}: orch {args:?} says:\n{err}",
                plant.name
            );
        }
        assert_eq!(repo.branches(), ["main"], "{}", plant.name);
    }
    // The directory itself a link out of the repository (to one holding a good `task.md`).
    clear(&at);
    let elsewhere = repo.outside("templates");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    std::fs::write(elsewhere.join("task.md"), "Do {{ task_id }}\n").expect("write");
    std::fs::write(elsewhere.join("plan.md"), "Plan {{ plan }}\n").expect("write");
    clear(&repo.root().join("orch/templates"));
    std::os::unix::fs::symlink(&elsewhere, repo.root().join("orch/templates")).expect("link");
    let (code, out, err) = repo.run(&["check"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("orch/templates"), "{err}");
}

/// During a run, `plans.toml` is replaced by a FIFO, or by a link to a valid manifest (with a
/// change) outside the repository, as a landed branch or an unconfined agent could: the
/// re-plan reports `manifest_invalid` naming the file and what it is, applies nothing, and the
/// run goes on to its end (the agent's task done).
#[test]
fn a_re_plan_refuses_a_manifest_replaced_by_a_fifo_or_a_link() {
    fn outside_changed(repo: &Repo, at: &Path) {
        let outside = repo.outside("changed.toml");
        let text = std::fs::read_to_string(repo.root().join("plans.toml.orig")).expect("orig");
        std::fs::write(
            &outside,
            text.replace("retries = 0", "retries = 0\nmax_agents = 2"),
        )
        .expect("write");
        std::os::unix::fs::symlink(&outside, at).expect("symlink");
    }
    let plants = [
        Plant {
            name: "a FIFO",
            make: fifo,
            says: "is a FIFO, not a regular file",
        },
        Plant {
            name: "a link to a changed manifest outside",
            make: outside_changed,
            says: "is a symbolic link, which orch does not follow here",
        },
    ];
    for plant in &plants {
        let repo = repo();
        let gate = repo.outside("gate");
        std::fs::create_dir_all(&gate).expect("gate dir");
        repo.write("docs/plans/p.md", &one_task("P", "Wait for the gate"));
        let text = format!(
            "[defaults]\nagent = \"a\"\nretries = 0\n\n[agents.a]\ncommand = {}\nreport = \"orch\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n",
            agent("gated.sh", &[gate.to_str().expect("utf-8"), "60"])
        );
        repo.write("plans.toml", &text);
        repo.commit_all("plans");
        std::fs::write(repo.root().join("plans.toml.orig"), &text).expect("orig");
        let mut child = repo.orch(&["up", "--json"]).spawn().expect("spawn");
        let lines = read_lines(&mut child);
        let mut seen = Vec::new();
        wait_line(&lines, &mut seen, |v| v["event"] == "task_started");
        // Put in place at once (a rename), as a `git pull` or an editor would.
        let staged = repo.root().join("plans.toml.new");
        (plant.make)(&repo, &staged);
        std::fs::rename(&staged, repo.root().join("plans.toml")).expect("rename");
        wait_line(&lines, &mut seen, |v| v["event"] == "manifest_invalid");
        let invalid = seen.last().cloned().expect("event");
        let errors = invalid["errors"].to_string();
        assert!(
            errors.contains("plans.toml") && errors.contains(plant.says),
            "{}: {invalid}",
            plant.name
        );
        std::fs::write(gate.join("all.go"), "").expect("go");
        let out = wait_within(child, Duration::from_secs(60), "orch up");
        while let Ok(v) = lines.try_recv() {
            seen.push(v);
        }
        assert!(named(&seen, "manifest_reloaded").is_empty(), "{seen:?}");
        let done = named(&seen, "task_finished");
        assert_eq!(done.len(), 1, "{}: {seen:?}", plant.name);
        assert_eq!(out.status.code(), Some(0), "{}: {seen:?}", plant.name);
        assert!(repo.rev("plan/p").len() == 40);
    }
}

/// A finished plan's status file, then a task's log, replaced by a FIFO, a link to
/// `/etc/passwd` or a 1 GiB sparse file (as an unconfined agent could): `orch status` and
/// `orch next` stop with exit 3 naming the status file; `orch logs` with exit 1 naming the log;
/// nothing of `/etc/passwd` is printed.
#[test]
fn a_status_file_or_log_that_is_not_a_regular_file_is_refused_by_name() {
    let repo = repo();
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 first\n- [ ] 1.2 second (depends: 1.1)\n",
    );
    repo.write("plans.toml", &manifest(""));
    repo.commit_all("plans");
    let ev = repo.up_events(&[], 0);
    assert_eq!(named(&ev, "task_finished").len(), 2, "{ev:?}");
    let status = repo.status_path("p");
    let log: PathBuf = repo.root().join(".orch/logs/p/1.1.log");
    assert!(status.is_file() && log.is_file());
    let status_bytes = std::fs::read(&status).expect("status");
    let plants = [
        (
            "a FIFO",
            fifo as fn(&Repo, &Path),
            "is a FIFO, not a regular file",
        ),
        (
            "a link to /etc/passwd",
            link_to_passwd,
            "is a symbolic link, which orch does not follow here",
        ),
        (
            "a 1 GiB sparse file",
            sparse_1gib,
            "is 1073741824 bytes, more than the 256 MiB orch reads of a status file",
        ),
    ];
    for (name, make, says) in plants {
        clear(&status);
        make(&repo, &status);
        for args in [&["status"][..], &["next"]] {
            let (code, out, err) = repo.run(args);
            assert_eq!(code, 3, "{name}: orch {args:?}\n{out}\n{err}");
            assert!(
                err.contains(&status.display().to_string()) && err.contains(says),
                "{name}: orch {args:?}: {err}"
            );
            assert!(!out.contains("root:"), "{out}");
        }
    }
    clear(&status);
    std::fs::write(&status, &status_bytes).expect("put back");
    let (code, out, err) = repo.run(&["status"]);
    assert_eq!(code, 0, "{out}{err}");

    let plants = [
        (
            "a FIFO",
            fifo as fn(&Repo, &Path),
            "is a FIFO, not a regular file",
        ),
        (
            "a link to /etc/passwd",
            link_to_passwd,
            "is a symbolic link, which orch does not follow here",
        ),
        (
            "a directory",
            directory,
            "is a directory, not a regular file",
        ),
    ];
    for (name, make, says) in plants {
        clear(&log);
        make(&repo, &log);
        for args in [
            &["logs", "p", "1.1"][..],
            &["logs", "p", "1.1", "--json"],
            &["logs", "p", "1.1", "--raw"],
        ] {
            let (code, out, err) = repo.run(args);
            assert_eq!(code, 1, "{name}: orch {args:?}\n{out}\n{err}");
            assert!(
                err.contains("1.1.log") && err.contains(says),
                "{name}: orch {args:?}: {err}"
            );
            assert!(!out.contains("root:"), "{name}: {out}");
        }
    }
}

/// An agent leaves in its report directory a FIFO, a link to `/etc/passwd` or a 1 GiB sparse
/// file where its report goes: orch takes it away unread (the agent sees it go), says so in a
/// note naming it and what it was, and the agent's real report that follows is applied.
#[test]
fn a_report_that_is_not_a_regular_file_is_removed_unread_and_said() {
    for (kind, says) in [
        ("fifo", "is a FIFO, not a regular file"),
        ("link", "is a symbolic link"),
        (
            "huge",
            "is 1073741824 bytes, more than the 1 MiB orch reads of a report",
        ),
    ] {
        let repo = repo();
        repo.write("docs/plans/p.md", PLAN);
        repo.write(
            "plans.toml",
            &format!(
                "[defaults]\nagent = \"a\"\nretries = 0\n\n[agents.a]\ncommand = {}\nreport = \"orch\"\n\n\
                 [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n",
                agent("hostile_read_report.sh", &[kind])
            ),
        );
        repo.commit_all("plans");
        let ev = repo.up_events(&[], 0);
        let notes: Vec<String> = named(&ev, "note")
            .iter()
            .filter_map(|n| n["message"].as_str().map(str::to_string))
            .collect();
        assert!(
            notes
                .iter()
                .any(|m| m.contains("a report was not read and is removed")
                    && m.contains("report.json")
                    && m.contains(says)),
            "{kind}: {notes:?}"
        );
        assert_eq!(named(&ev, "task_finished").len(), 1, "{kind}: {ev:?}");
        let doc = support::read_status(&repo.status_path("p")).expect("status");
        assert_eq!(
            support::task_in(&doc, "1.1")["status"],
            "completed",
            "{kind}"
        );
    }
}
