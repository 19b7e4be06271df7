//! An agent that leaves a huge file (red team's hole D: `truncate -s 20G big.bin`, which orch's
//! commit hashed for nearly 8 minutes, unstoppable, then recorded `completed` with a 20 GiB blob
//! on the plan branch, and `orch merge` landed it). Every file an attempt's change would stage is
//! measured before anything is hashed (its apparent size: a sparse file counts whole): one over
//! the plan's `max_file_size` (default 100 MiB) fails the task naming it, its size and the limit;
//! nothing is committed, the file is not saved with the attempt's work, no object that large
//! enters the repository, and the run ends at once. A branch that holds such a blob (a person's
//! commit, an agent's own) is refused by `orch merge`, `main` unmoved. Sandbox on and off.

use crate::support;

use std::path::Path;

use support::{Repo, toml_array};

/// The largest object in the repository's objects (`git cat-file --batch-all-objects`): its
/// size in bytes.
pub(crate) fn largest_object(repo: &Repo) -> u64 {
    repo.git(&[
        "cat-file",
        "--batch-all-objects",
        "--batch-check=%(objectsize)",
    ])
    .lines()
    .filter_map(|l| l.trim().parse::<u64>().ok())
    .max()
    .unwrap_or(0)
}

/// One plan `p`, one task, whose agent runs `script` in its worktree; `defaults` added to
/// `[defaults]`, `p_keys` to the plan; `tracked.txt` committed on `main` first.
pub(crate) fn plan_p(script: &str, defaults: &str, p_keys: &str) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    repo.write("docs/plans/p.md", &support::one_task("P", "Make a file"));
    repo.write("tracked.txt", "small\n");
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\n{defaults}\n\n[agents.a]\ncommand = {}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\n{p_keys}\n",
            toml_array(&["sh", "-c", &format!("{script}\necho done > work.txt")]),
        ),
    );
    repo.commit_all("plans");
    repo
}

/// `orch up --json` of `repo` (sandbox as its `plans.toml` says): exit 5, task `p` 1.1 failed
/// with an error that holds `named`, `plan/p` and `main` unmoved. `what` names the case in a
/// failure. Returns the error.
pub(crate) fn up_fails_naming(repo: &Repo, what: &str, named: &str) -> String {
    let main = repo.rev("main");
    let (code, out, err) = repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
    assert_eq!(code, 5, "{what}\n{out}\n{err}");
    let task = repo.task("p", "1.1");
    assert_eq!(task["status"], "failed", "{what}: {task}");
    let error = task["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains(named), "{what}: {error}");
    assert_eq!(repo.rev("plan/p"), main, "{what}: plan/p moved");
    assert_eq!(repo.rev("main"), main, "{what}: main moved");
    error
}

/// Task `p` 1.1's pool slot as a killed run leaves it (`.orch/worktrees/p+pool1`, on the task's
/// branch from `plan/p`): its path.
pub(crate) fn killed_runs_slot(repo: &Repo) -> std::path::PathBuf {
    let slot = repo.root().join(".orch/worktrees/p+pool1");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "orch/task/p/1.1",
        &slot.display().to_string(),
        "plan/p",
    ]);
    slot
}

/// The variants: what the agent runs, the limit's keys (`[defaults]`, the plan's), the name the
/// failure gives the file, its size as the failure writes it.
const VARIANTS: [(&str, &str, &str, &str, &str); 5] = [
    // The red team's: sparse, 20 GiB apparent, no key (the default limit of 100 MiB).
    ("truncate -s 20G big.bin", "", "", "`big.bin`", "20.0 GiB"),
    // Dense, over a limit set lower for the test (in `[defaults]`).
    (
        "head -c 2097152 /dev/zero > dense.bin",
        "max_file_size = \"1M\"",
        "",
        "`dense.bin`",
        "2.0 MiB",
    ),
    // In a new directory, the limit on the plan.
    (
        "mkdir -p new/deeper && truncate -s 3M new/deeper/big.bin",
        "",
        "max_file_size = \"1MiB\"",
        "`new/deeper/big.bin`",
        "3.0 MiB",
    ),
    // A tracked file grown past the limit.
    (
        "truncate -s 5G tracked.txt",
        "max_file_size = \"1G\"",
        "",
        "`tracked.txt`",
        "5.0 GiB",
    ),
    // A name with a space and a newline (shown escaped).
    (
        "truncate -s 2M \"$(printf 'a b\\nc.bin')\"",
        "max_file_size = \"1M\"",
        "",
        "`a b\\nc.bin`",
        "2.0 MiB",
    ),
];

/// Seen failing on the code before: the task `completed` with the file committed on `plan/p`
/// (the 20 GiB variant hashed for minutes: the test's deadline ended it).
#[test]
fn big_files_an_attempt_that_leaves_a_huge_file_fails_naming_it_and_nothing_is_hashed() {
    for sandbox in support::sandboxes() {
        for (script, defaults, p_keys, named, size) in VARIANTS {
            let what = format!("{script} (sandbox {sandbox})");
            let repo = plan_p(
                script,
                &format!("{defaults}\nsandbox = \"{sandbox}\""),
                p_keys,
            );
            let main = repo.rev("main");
            let (code, out, err) =
                repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
            assert_eq!(code, 5, "{what}\n{out}\n{err}");
            let task = repo.task("p", "1.1");
            assert_eq!(task["status"], "failed", "{what}: {task}");
            let error = task["error"].as_str().unwrap_or_default();
            assert!(
                error.contains(named) && error.contains(size) && error.contains("max_file_size"),
                "{what}: {error}"
            );
            assert!(error.contains("not saved"), "{what}: {error}");
            assert_eq!(repo.rev("plan/p"), main, "{what}: plan/p moved");
            assert_eq!(repo.rev("main"), main, "{what}: main moved");
            let largest = largest_object(&repo);
            assert!(largest < 1 << 20, "{what}: an object of {largest} bytes");
            // The attempt's other work is saved; the file is not (nor hashed).
            let saved = repo.refs_under("refs/orch/attempts/p/");
            assert_eq!(saved.len(), 1, "{what}: {saved:?}");
            let files = repo.tree_files(&saved[0]);
            assert!(files.iter().any(|f| f == "work.txt"), "{what}: {files:?}");
            assert!(
                !files.iter().any(|f| f.ends_with(".bin")),
                "{what}: {files:?}"
            );
        }
    }
}

/// Many files each under `max_file_size` that together pass `max_change_size`: refused naming
/// the total, nothing committed.
#[test]
fn big_files_a_change_over_its_total_limit_fails() {
    let repo = plan_p(
        "for i in 1 2 3 4; do truncate -s 1M f$i.bin; done",
        "max_file_size = \"2M\"\nmax_change_size = \"3M\"",
        "",
    );
    let main = repo.rev("main");
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_eq!(code, 5, "{out}\n{err}");
    let task = repo.task("p", "1.1");
    assert_eq!(task["status"], "failed", "{task}");
    let error = task["error"].as_str().unwrap_or_default();
    assert!(error.contains("max_change_size"), "{error}");
    assert_eq!(repo.rev("plan/p"), main, "plan/p moved");
}

/// An agent that commits the large file itself on the plan branch: the task fails naming it,
/// and its commit is taken off `plan/p`.
#[test]
fn big_files_an_agent_that_commits_a_large_file_itself_fails() {
    for sandbox in support::sandboxes() {
        let repo = plan_p(
            "head -c 2097152 /dev/zero > own.bin && git add own.bin && \
             git -c user.name=a -c user.email=a@a commit -qm mine",
            &format!("max_file_size = \"1M\"\nsandbox = \"{sandbox}\""),
            "",
        );
        let main = repo.rev("main");
        let (code, out, err) =
            repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
        assert_eq!(code, 5, "{sandbox}\n{out}\n{err}");
        let task = repo.task("p", "1.1");
        assert_eq!(task["status"], "failed", "{sandbox}: {task}");
        let error = task["error"].as_str().unwrap_or_default();
        assert!(error.contains("`own.bin`"), "{sandbox}: {error}");
        assert_eq!(repo.rev("plan/p"), main, "{sandbox}: plan/p moved");
    }
}

/// A plan branch holding a large blob, made by hand after the plan finished (and buried under a
/// later commit that deletes it: a merge lands the history too): `orch merge p` refuses it (exit
/// 4) naming the plan, the path and the size; `main` unmoved. Seen failing on the code before:
/// merged.
#[test]
fn big_files_orch_merge_refuses_a_branch_that_holds_a_large_blob() {
    for bury in [false, true] {
        let repo = plan_p("true", "", "max_file_size = \"1M\"");
        let (code, out, err) = repo.run(&["up"]);
        assert_eq!(code, 0, "{out}\n{err}");
        let tree = repo.worktree("p");
        support::shell_in(
            &tree,
            "head -c 3145728 /dev/zero > 'by hand.bin' && git add -A && git commit -qm 'by hand'",
        );
        if bury {
            support::shell_in(&tree, "git rm -q 'by hand.bin' && git commit -qm gone");
        }
        let main = repo.rev("main");
        let (code, out, err) = repo.run(&["merge", "p"]);
        assert_eq!(code, 4, "bury {bury}\n{out}\n{err}");
        assert!(
            err.contains("plan `p`") && err.contains("`by hand.bin`") && err.contains("3.0 MiB"),
            "bury {bury}: {err}"
        );
        assert_eq!(repo.rev("main"), main, "bury {bury}: main moved");
    }
}

/// A bad value of the key is refused at load, naming the file and line, exit 2, nothing made.
#[test]
fn big_files_a_bad_max_file_size_is_refused_at_load() {
    for (defaults, p_keys, line) in [
        ("max_file_size = \"huge\"", "", "plans.toml:3"),
        ("max_change_size = \"0\"", "", "plans.toml:3"),
        ("", "max_file_size = \"12X\"", "plans.toml:"),
    ] {
        let repo = plan_p("true", defaults, p_keys);
        let (code, out, err) = repo.run(&["up"]);
        assert_eq!(code, 2, "{defaults}{p_keys}\n{out}\n{err}");
        assert!(
            err.contains(line) && err.contains("max_"),
            "{defaults}{p_keys}: {err}"
        );
        assert!(
            !Path::new(&repo.root().join(".orch/worktrees/p")).exists(),
            "{defaults}{p_keys}: a worktree was made"
        );
    }
}

/// Pids of the live `git add -A` runs in the work tree `tree` (a commit's staging).
fn staging_git(tree: &Path) -> Vec<u32> {
    let work_tree = format!("--work-tree={}", tree.display());
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let args: Vec<&[u8]> = c.split(|&b| b == 0).collect();
                args.contains(&work_tree.as_bytes())
                    && args.windows(2).any(|w| w == [&b"add"[..], &b"-A"[..]])
            }) && support::process::process_alive(*pid)
        })
        .collect()
}

/// Files each under the limit that take git long to hash (8 × 1000 MiB, sparse): a SIGTERM to
/// `orch up` while its commit stages them kills that git and ends the run (exit 130, within
/// the test's deadline), the task not completed and `plan/p` unmoved. Seen failing on the code
/// before: the run waited for `git add` to hash all of it, then recorded the task `completed`.
#[test]
fn big_files_a_stop_during_a_long_staging_ends_the_run_and_its_git() {
    for sandbox in support::sandboxes() {
        let repo = plan_p(
            "for i in 1 2 3 4 5 6 7 8; do truncate -s 1000M f$i.bin; done",
            &format!("max_file_size = \"1G\"\nmax_change_size = \"20G\"\nsandbox = \"{sandbox}\""),
            "",
        );
        let main = repo.rev("main");
        let child = repo
            .orch(&["up", "--json"])
            .env_remove("ORCH_SANDBOX")
            .spawn()
            .expect("orch up");
        let tree = repo.worktree("p");
        let mut git = Vec::new();
        support::process::wait_for("the commit's `git add -A`", || {
            git = staging_git(&tree);
            !git.is_empty()
        });
        assert!(support::process::kill("TERM", child.id()), "{sandbox}");
        let (code, out, err) = support::process::code_out_err(&support::process::wait_within(
            child,
            repo.timeout(),
            "orch up after SIGTERM",
        ));
        assert_eq!(code, 130, "{sandbox}\n{out}\n{err}");
        for pid in git {
            assert!(
                !support::process::process_alive(pid),
                "{sandbox}: git {pid} still runs"
            );
        }
        let task = repo.task("p", "1.1");
        assert_ne!(task["status"], "completed", "{sandbox}: {task}");
        assert_eq!(repo.rev("plan/p"), main, "{sandbox}: plan/p moved");
    }
}

/// On a `[[host]]` (`executor = "ssh"`, the lab's sshd on loopback): the agent's file comes back
/// in the attempt's snapshot bundle (a sparse 20 GiB file is a few MiB there); the snapshot is
/// refused before it is checked out here or taken as the task's work: the task fails naming the
/// file, `plan/p` unmoved, no such file written in the local worktree. Sandbox on and off.
/// Seen failing on the code before: the 20 GiB file was written whole into the local worktree,
/// then hashed by the commit. The same for a change over `max_change_files` or
/// `max_change_size` (each file under `max_file_size`): refused on the host before it hashes
/// it, and here before it is checked out (failed before: the host hashed and sent all of it,
/// and the 600 files were written into the local worktree before the refusal).
#[test]
fn big_files_on_a_host_the_snapshot_with_a_huge_file_is_refused() {
    use support::sshd;
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    for sandbox in support::sandboxes() {
        for (script, p_keys, named) in [
            ("truncate -s 20G big.bin", "", "`big.bin` (20.0 GiB"),
            (
                "mkdir -p 'new dir' && head -c 2097152 /dev/zero > 'new dir/dense.bin'",
                "max_file_size = \"1M\"",
                "`new dir/dense.bin` (2.0 MiB",
            ),
            (
                "i=0; while [ $i -lt 600 ]; do mkdir -p d$((i % 30)); : > d$((i % 30))/f$i; i=$((i+1)); done",
                "max_change_files = 500",
                "(`max_change_files`)",
            ),
            (
                "for n in a b c; do head -c 400000 /dev/urandom > $n.bin; done",
                "max_change_size = \"1M\"",
                "(`max_change_size`)",
            ),
        ] {
            let what = format!("on a host, {script}, sandbox {sandbox}");
            let repo = Repo::builder().identity_in_config().build();
            repo.write("docs/plans/p.md", &support::one_task("P", "Make a file"));
            repo.write(
                "plans.toml",
                &format!(
                    "{}[defaults]\nagent = \"a\"\nretries = 0\nsandbox = \"{sandbox}\"\n\
                     executor = \"ssh\"\nnetwork = \"open\"\n\n\
                     [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n{p_keys}\n\n\
                     [agents.a]\ncommand = {}\n",
                    lab.host_toml(2),
                    toml_array(&["sh", "-c", &format!("{script}\necho done > work.txt")])
                ),
            );
            repo.commit_all("plans");
            let main = repo.rev("main");
            let mut cmd = repo.orch(&["up", "--json"]);
            cmd.env("PATH", lab.path()).env_remove("ORCH_SANDBOX");
            let (code, out, err) = repo.run_cmd(&mut cmd);
            assert_eq!(code, 5, "{what}\n{out}\n{err}");
            let task = repo.task("p", "1.1");
            assert_eq!(task["status"], "failed", "{what}: {task}");
            let error = task["error"].as_str().unwrap_or_default();
            // Refused within a second, the attempt may end before the run's read of where it
            // runs (`task_on_host`): the host's refusal names it.
            assert!(
                !support::named(&support::events(&out), "task_on_host").is_empty()
                    || error.contains("on host `h1`"),
                "{what}: it did not run on the host\n{out}"
            );
            assert!(error.contains(named), "{what}: {error}");
            // Refused by the host, before it hashed or sent anything.
            assert!(error.contains("on host `h1`: "), "{what}: {error}");
            assert_eq!(repo.rev("plan/p"), main, "{what}: plan/p moved");
            let local = repo.worktree("p");
            assert!(
                !local.join("d0").exists(),
                "{what}: the files checked out here"
            );
            let large = std::fs::read_dir(&local)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .any(|m| m.len() > 1 << 20);
            assert!(!large, "{what}: a large file in the local worktree");
        }
    }
}

/// The merge train (`auto_merge`): plan `p` finished, then a person committed a large blob on
/// its branch; the next run's train refuses to land it naming the file, `main` unmoved.
#[test]
fn big_files_the_merge_train_refuses_a_branch_that_holds_a_large_blob() {
    let repo = plan_p("true", "", "max_file_size = \"1M\"");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}\n{err}");
    support::shell_in(
        &repo.worktree("p"),
        "head -c 2097152 /dev/zero > 'by hand.bin' && git add -A && git commit -qm 'by hand'",
    );
    let manifest = String::from_utf8_lossy(&repo.read("plans.toml"))
        .replace("[defaults]\n", "[defaults]\nauto_merge = true\n");
    repo.write("plans.toml", &manifest);
    repo.commit_all("the train");
    let main = repo.rev("main");
    let (_, out, err) = repo.run(&["up", "--json"]);
    let ev = support::events(&out);
    let refused: Vec<_> = support::named(&ev, "plan_merge_failed")
        .into_iter()
        .filter(|e| e["plan"] == "p")
        .collect();
    assert_eq!(refused.len(), 1, "{out}\n{err}");
    assert_eq!(refused[0]["result"], "refused", "{refused:?}");
    let reason = refused[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("`by hand.bin`") && reason.contains("max_file_size"),
        "{reason}"
    );
    assert_eq!(repo.rev("main"), main, "main moved");
}

/// Red team 4: `orch clean --force` of a worktree holding an uncommitted file over
/// `max_file_size` said it saved the worktree's files under a backup ref, which lacked that file,
/// then removed the worktree: the file was lost without a word. Now a plan with such a file (in
/// any of its worktrees) is kept whatever the flags say (`--force`, `--dry-run`, `--json`): exit
/// 5, the file named with its size and the limit, nothing removed nor saved; once it is moved
/// out, `orch clean --force` saves the rest and removes the worktree.
#[test]
fn big_files_orch_clean_keeps_a_worktree_holding_a_file_no_backup_holds() {
    for (script, defaults, p_keys, named, size) in VARIANTS {
        // Named by its path from the repository's root.
        let named = &format!("`.orch/worktrees/p/{}", &named[1..]);
        let repo = plan_p(":", defaults, p_keys);
        let (code, out, err) = repo.run(&["up"]);
        assert_eq!(code, 0, "{script}\n{out}\n{err}");
        let tree = repo.root().join(".orch/worktrees/p");
        let made = std::process::Command::new("sh")
            .args(["-c", &format!("{script}\necho hi > small.txt")])
            .current_dir(&tree)
            .status()
            .expect("sh");
        assert!(made.success(), "{script}");
        let before = std::fs::read_dir(&tree).expect("tree").count();
        let plan_p = repo.rev("plan/p");
        for args in [
            &["clean", "--force", "p"][..],
            &["clean", "--force", "--dry-run", "p"],
            &["clean", "p"],
        ] {
            let (code, out, err) = repo.run(args);
            assert_eq!(code, 5, "{script}: {args:?}\n{out}\n{err}");
            assert!(
                out.contains(named) && out.contains(size) && out.contains("max_file_size"),
                "{script}: {args:?}\n{out}"
            );
            // `--force` would not remove it: not offered.
            assert!(
                !out.contains("`orch clean --force"),
                "{script}: {args:?}\n{out}"
            );
        }
        let (code, json, err) = repo.run(&["clean", "--force", "--json", "p"]);
        assert_eq!(code, 5, "{script}\n{json}\n{err}");
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        let p = &v["plans"][0];
        assert_eq!(p["outcome"], "kept", "{script}: {json}");
        assert!(
            p["reasons"].as_array().is_some_and(|r| r
                .iter()
                .any(|r| r.as_str().is_some_and(|r| r.contains(named)))),
            "{script}: {json}"
        );
        // Nothing removed, nothing saved, nothing hashed.
        assert_eq!(
            std::fs::read_dir(&tree).expect("tree").count(),
            before,
            "{script}"
        );
        assert_eq!(repo.rev("plan/p"), plan_p, "{script}");
        assert_eq!(repo.refs_under("refs/orch/backup/"), Vec::<String>::new());
        assert!(largest_object(&repo) < 1 << 20, "{script}");
        // Moved out: the rest is saved and the worktree goes.
        let out_of = repo.root().join("moved-out");
        let status = std::process::Command::new("sh")
            .args(["-c", "git status --porcelain -z --untracked-files=all"])
            .current_dir(&tree)
            .output()
            .expect("git status");
        for entry in status.stdout.split(|&b| b == 0).filter(|e| e.len() > 3) {
            let path = String::from_utf8_lossy(&entry[3..]).into_owned();
            if path != "small.txt" {
                std::fs::create_dir_all(&out_of).expect("dir");
                std::fs::rename(
                    tree.join(&path),
                    out_of.join(path.replace(['/', '\n'], "_")),
                )
                .expect("move out");
            }
        }
        let (code, out, err) = repo.run(&["clean", "--force", "p"]);
        assert_eq!(code, 0, "{script}\n{out}\n{err}");
        assert!(!tree.exists(), "{script}");
        let saved: Vec<String> = repo
            .refs_under("refs/orch/backup/p/")
            .into_iter()
            .filter(|r| r.ends_with("-worktree"))
            .collect();
        assert_eq!(saved.len(), 1, "{script}: {saved:?}");
        assert!(
            repo.tree_files(&saved[0]).iter().any(|f| f == "small.txt"),
            "{script}"
        );
    }
}

/// The same for a plan's task worktree (a pool slot a killed `parallel_tasks` run left): the
/// plan is kept, the file named, and neither worktree nor branch removed.
#[test]
fn big_files_orch_clean_keeps_a_plan_whose_task_worktree_holds_a_file_no_backup_holds() {
    let repo = plan_p(":", "", "");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // The slot as a killed run leaves it: on its task's branch, the agent's files in it.
    let slot = killed_runs_slot(&repo);
    for script in [
        "truncate -s 3G big.bin",
        "mkdir -p d && truncate -s 200M d/dense.bin",
    ] {
        let made = std::process::Command::new("sh")
            .args(["-c", &format!("{script}\necho hi > small.txt")])
            .current_dir(&slot)
            .status()
            .expect("sh");
        assert!(made.success(), "{script}");
    }
    let (code, out, err) = repo.run(&["clean", "--force", "p"]);
    assert_eq!(code, 5, "{out}\n{err}");
    for named in [
        "`.orch/worktrees/p+pool1/big.bin` (3.0 GiB",
        "`.orch/worktrees/p+pool1/d/dense.bin` (200.0 MiB",
    ] {
        assert!(out.contains(named), "{named}\n{out}");
    }
    assert!(slot.join("big.bin").exists() && slot.join("d/dense.bin").exists());
    assert!(repo.root().join(".orch/worktrees/p").is_dir());
    assert!(!repo.rev("orch/task/p/1.1").is_empty());
    assert_eq!(repo.refs_under("refs/orch/backup/"), Vec::<String>::new());
}

/// A plan that raises `max_file_size` past the default: `orch clean --force` saves a file
/// within its limit (and over the default's 100 MiB) in the worktree's backup, in its plan
/// worktree as in a task worktree; every save of a plan's worktree takes the plan's limit.
/// Seen failing on the code before: the backup left the 150 MiB file out, and the worktree went.
#[test]
fn big_files_orch_clean_saves_a_file_within_the_plans_raised_limit() {
    let repo = plan_p(":", "", "max_file_size = \"1GiB\"");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let tree = repo.root().join(".orch/worktrees/p");
    let made = std::process::Command::new("sh")
        .args(["-c", "truncate -s 150M within.bin && echo hi > small.txt"])
        .current_dir(&tree)
        .status()
        .expect("sh");
    assert!(made.success());
    let (code, out, err) = repo.run(&["clean", "--force", "p"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!tree.exists());
    let saved: Vec<String> = repo
        .refs_under("refs/orch/backup/p/")
        .into_iter()
        .filter(|r| r.ends_with("-worktree"))
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    let files = repo.tree_files(&saved[0]);
    for f in ["within.bin", "small.txt"] {
        assert!(files.iter().any(|x| x == f), "{f}: {files:?}");
    }
    assert_eq!(
        repo.git(&["cat-file", "-s", &format!("{}:within.bin", saved[0])]),
        (150u64 << 20).to_string()
    );
}

/// A plan-mode agent's `orch task done` that no supervisor answers (its `orch up` is gone)
/// commits its work itself (`ORCH_COMMIT_ON_DONE`): the same size checks refuse it, before
/// anything is hashed (exit 1, the file or the total named, nothing committed, the task not
/// done). Seen failing on the code before: the 20 GiB file was hashed and committed.
#[test]
fn big_files_a_plan_agents_done_without_a_supervisor_commits_nothing_too_large() {
    for (script, defaults, named) in [
        ("truncate -s 20G big.bin", "", "`big.bin` (20.0 GiB"),
        (
            "head -c 2097152 /dev/zero > dense.bin",
            "max_file_size = \"1M\"",
            "`dense.bin` (2.0 MiB",
        ),
        (
            "for i in 1 2 3 4; do truncate -s 1M f$i.bin; done",
            "max_file_size = \"2M\"\nmax_change_size = \"3M\"",
            "max_change_size",
        ),
    ] {
        let repo = plan_p("exit 1", defaults, "");
        let manifest = String::from_utf8_lossy(&repo.read("plans.toml"))
            .replace("[agents.a]\n", "[agents.a]\nmode = \"plan\"\n");
        repo.write("plans.toml", &manifest);
        repo.commit_all("plan mode");
        let main = repo.rev("main");
        let (code, out, err) = repo.run(&["up", "--json"]);
        assert_ne!(code, 0, "{out}\n{err}");
        let tree = repo.worktree("p");
        support::shell_in(&tree, script);
        let as_agent = |args: &[&str]| {
            repo.run_cmd(
                repo.orch(args)
                    .current_dir(&tree)
                    .env("PWD", &tree)
                    .env("ORCH_PLAN", "p")
                    .env("ORCH_COMMIT_ON_DONE", "1")
                    .env("ORCH_WORKTREE", &tree),
            )
        };
        let (code, out, err) = as_agent(&["task", "start", "1.1", "--plan", "p"]);
        assert_eq!(code, 0, "{script}\n{out}\n{err}");
        let (code, out, err) = as_agent(&["task", "done", "1.1", "--plan", "p"]);
        assert_eq!(code, 1, "{script}\n{out}\n{err}");
        assert!(
            err.contains(named) && err.contains("not marked done"),
            "{script}\n{err}"
        );
        assert_eq!(repo.rev("plan/p"), main, "{script}: committed");
        assert_ne!(repo.task("p", "1.1")["status"], "completed", "{script}");
        assert!(largest_object(&repo) < 1 << 20, "{script}");
    }
}

/// Red team 5: an agent (sandbox off) that puts a blob over the limit in the index itself, at a
/// path git then does not look at in the work tree (`--skip-worktree`, `--assume-unchanged`
/// over a small file): orch's own commit took the index's entry, and `plan/p` held a 3 MB blob
/// under `max_file_size = "1MiB"`. Now the commit's blobs are measured by their object headers
/// before it is made: the task fails naming the path, nothing is committed.
#[test]
fn big_files_a_blob_the_agent_stages_itself_is_never_committed() {
    for flag in ["--skip-worktree", "--assume-unchanged"] {
        let script = format!(
            "head -c 3000000 /dev/zero > \"$TMPDIR/big\"; B=$(git hash-object -w \"$TMPDIR/big\"); \
             echo small > big.bin; git update-index --add --cacheinfo 100644,$B,big.bin && \
             git update-index {flag} big.bin"
        );
        let repo = plan_p(&script, "max_file_size = \"1MiB\"\nsandbox = \"off\"", "");
        let main = repo.rev("main");
        let (code, out, err) =
            repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
        assert_eq!(code, 5, "{flag}\n{out}\n{err}");
        let task = repo.task("p", "1.1");
        assert_eq!(task["status"], "failed", "{flag}: {task}");
        let error = task["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("`big.bin`") && error.contains("max_file_size"),
            "{flag}: {error}"
        );
        assert_eq!(repo.rev("plan/p"), main, "{flag}: plan/p moved");
    }
}

/// Red team 5: the agent's own commits were measured file by file only: eight files of
/// 1,000,000 bytes each (under `max_file_size = "1MiB"`, 8 MB together over `max_change_size =
/// "4MiB"`) completed the task and `orch merge` landed them; and a commit whose message is 2 MB
/// landed under a 1 MiB limit. Now both fail the task, naming the limit, nothing on `plan/p`.
#[test]
fn big_files_the_agents_own_commits_are_held_to_the_change_limit_and_their_messages_too() {
    for (script, named) in [
        (
            "for i in 1 2 3 4 5 6 7 8; do head -c 1000000 /dev/zero | tr '\\0' \"$i\" > f$i.bin; done; \
             git add f*.bin && git -c user.name=a -c user.email=a@a commit -qm mine",
            "max_change_size",
        ),
        (
            "echo x > x.txt && git add x.txt && head -c 2000000 /dev/zero | tr '\\0' m > \"$TMPDIR/msg\" && \
             git -c user.name=a -c user.email=a@a commit -q -F \"$TMPDIR/msg\"",
            "(the message of commit",
        ),
    ] {
        let repo = plan_p(
            script,
            "max_file_size = \"1MiB\"\nmax_change_size = \"4MiB\"\nsandbox = \"off\"",
            "",
        );
        up_fails_naming(&repo, named, named);
    }
}
