//! `orch clean` never removes a worktree whose contents it could not fully read or save (red
//! team 6). Run by a user who is not root, orch could not list a directory an agent made mode
//! 000: `orch clean --force` removed the worktree with the 2 MB file (over `max_file_size`) and
//! the small one in it, "saved" a backup holding neither, exit 0. A directory chain deeper than
//! git saves made `--force` fail with libgit2's `directory nesting too deep (100)`, exit 1, and
//! no word on what to do. Now each keeps the plan (exit 5, whatever the flags), names the place
//! (a deep one's path bounded) and says what to do; nothing is removed or saved; done that, the
//! next `orch clean --force` goes through, the work in its backup.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::big_files::plan_p;
use crate::support::Repo;

/// Git at the repository's root, whoever owns it now.
fn git(repo: &Repo, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "safe.directory=*", "-C"])
        .arg(repo.root())
        .args(args)
        .output()
        .expect("git");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn backups(repo: &Repo) -> Vec<String> {
    git(
        repo,
        &["for-each-ref", "--format=%(refname)", "refs/orch/backup/"],
    )
    .lines()
    .map(str::to_string)
    .collect()
}

fn sh(dir: &Path, script: &str) {
    let st = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .status()
        .expect("sh");
    assert!(st.success(), "{script}");
}

/// `orch ARGS` in the repository as a user runs it, as `nobody` when `as_nobody`.
fn orch(repo: &Repo, args: &[&str], as_nobody: bool) -> (i32, String, String) {
    let mut cmd = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_orch"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_orch"))
    };
    cmd.args(args)
        .current_dir(repo.root())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", repo.home())
        .env("PWD", repo.root())
        .envs(std::env::var_os("TMPDIR").map(|t| ("TMPDIR", t)))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("ORCH_SANDBOX", "off")
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    repo.run_cmd(&mut cmd)
}

fn can_be_nobody() -> bool {
    let setpriv = Path::new("/usr/bin/setpriv").exists() || Path::new("/bin/setpriv").exists();
    setpriv && nix::unistd::geteuid().is_root()
}

/// Each flag combination keeps the plan: exit 5, `named` (and `why`) in the output, no
/// `--force` offered, `--json`'s outcome `kept`; nothing removed, no branch moved, no backup.
fn kept_every_way(repo: &Repo, named: &str, why: &str, as_nobody: bool, tree: &Path) {
    let plan_p = git(repo, &["rev-parse", "plan/p"]);
    for args in [
        &["clean", "--force", "p"][..],
        &["clean", "--force", "--dry-run", "p"],
        &["clean", "p"],
        &["clean"],
    ] {
        let (code, out, err) = orch(repo, args, as_nobody);
        assert_eq!(code, 5, "{named}: {args:?}\n{out}\n{err}");
        assert!(
            out.contains(named) && out.contains(why) && out.contains("p: kept: "),
            "{named}: {args:?}\n{out}"
        );
        assert!(!out.contains("`orch clean --force"), "{args:?}\n{out}");
        // Bounded: a deep chain's path is not printed whole.
        assert!(out.len() < 4000, "{args:?}: {} bytes", out.len());
    }
    let (code, json, err) = orch(repo, &["clean", "--force", "--json", "p"], as_nobody);
    assert_eq!(code, 5, "{json}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["plans"][0]["outcome"], "kept", "{json}");
    assert!(
        v["plans"][0]["reasons"][0]
            .as_str()
            .is_some_and(|r| r.contains(named)),
        "{json}"
    );
    assert!(tree.is_dir());
    assert_eq!(git(repo, &["rev-parse", "plan/p"]), plan_p);
    assert_eq!(backups(repo), Vec::<String>::new());
}

/// A plan `p` run to completion (limit 1 MiB).
fn ran() -> Repo {
    let repo = plan_p(":", "max_file_size = \"1MiB\"", "");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}\n{err}");
    repo
}

/// Hands the repository and its HOME to `nobody`.
fn chown_nobody(repo: &Repo) {
    for dir in [repo.root(), repo.home()] {
        let st = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(dir)
            .status()
            .expect("chown");
        assert!(st.success());
    }
}

/// The red team's and its variants, as `nobody`: a mode-000 directory holding a small file only,
/// one holding a file over the limit too, an unreadable file, a mode-000 directory nested
/// deeper; in the plan's worktree and in a task worktree (a pool slot a killed run left).
/// Failed on the code before: `--force` removed the worktree (exit 0) and its backup held none
/// of the files.
#[test]
fn clean_keep_what_orch_cannot_read_as_a_user_who_is_not_root() {
    if !can_be_nobody() {
        eprintln!("skipped: not root, or no setpriv");
        return;
    }
    let variants: [(&str, &str, &str, bool); 5] = [
        (
            "locked",
            "mkdir locked && echo s > locked/small.txt && chmod 000 locked",
            "locked",
            false,
        ),
        (
            "locked big",
            "mkdir locked && head -c 2000000 /dev/urandom > locked/big.bin && echo s > locked/small.txt && chmod 000 locked",
            "locked",
            false,
        ),
        (
            "file",
            "echo s > secret.txt && chmod 000 secret.txt",
            "secret.txt",
            false,
        ),
        (
            "nested",
            "mkdir -p x/y/z/locked && echo s > x/y/z/locked/small.txt && chmod 000 x/y/z/locked",
            "x/y/z/locked",
            false,
        ),
        (
            "task tree",
            "mkdir locked && echo s > locked/small.txt && chmod 000 locked",
            "locked",
            true,
        ),
    ];
    for (name, script, place, in_task_tree) in variants {
        let repo = ran();
        let tree = if in_task_tree {
            crate::big_files::killed_runs_slot(&repo)
        } else {
            repo.worktree("p")
        };
        sh(&tree, "echo w > other.txt");
        chown_nobody(&repo);
        // Made by the agent (as `nobody`), as it would.
        let st = Command::new("setpriv")
            .args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "sh",
                "-c",
                script,
            ])
            .current_dir(&tree)
            .status()
            .expect("setpriv");
        assert!(st.success(), "{name}");
        let shown = format!(
            "`{}/{place}`",
            tree.strip_prefix(repo.root()).expect("in repo").display()
        );
        kept_every_way(&repo, &shown, "Permission denied", true, &tree);
        assert!(tree.join(place).exists(), "{name}");
        // As the message says: made readable, `--force` saves it and removes the worktree.
        let st = Command::new("setpriv")
            .args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "chmod",
                "-R",
                "u+rwX",
            ])
            .arg(tree.join(place))
            .status()
            .expect("chmod");
        assert!(st.success());
        if in_task_tree {
            // A slot made by hand here carries no mark of orch's: what is left is that refusal.
            let (_, out, _) = orch(&repo, &["clean", "--force", "p"], true);
            assert!(!out.contains("cannot read"), "{out}");
            let saved = backups(&repo)
                .iter()
                .map(|r| git(&repo, &["ls-tree", "-r", "--name-only", r]))
                .collect::<Vec<_>>()
                .join("\n");
            // Still there, or saved.
            assert!(
                tree.join("locked/small.txt").exists()
                    || saved.lines().any(|l| l == "locked/small.txt"),
                "{out}\n{saved}"
            );
            continue;
        }
        if name == "locked big" {
            // Over the limit: now named as such and kept.
            let (code, out, _) = orch(&repo, &["clean", "--force", "p"], true);
            assert_eq!(code, 5, "{out}");
            assert!(
                out.contains("big.bin") && out.contains("max_file_size"),
                "{out}"
            );
            continue;
        }
        let (code, out, err) = orch(&repo, &["clean", "--force", "p"], true);
        assert_eq!(code, 0, "{name}\n{out}\n{err}");
        assert!(!tree.exists(), "{name}");
        let saved = backups(&repo)
            .iter()
            .map(|r| git(&repo, &["ls-tree", "-r", "--name-only", r]))
            .collect::<Vec<_>>()
            .join("\n");
        let small = if place == "secret.txt" {
            "secret.txt".to_string()
        } else {
            format!("{place}/small.txt")
        };
        assert!(
            saved.lines().any(|l| l == small) && saved.lines().any(|l| l == "other.txt"),
            "{name}: {saved}"
        );
    }
}

/// A chain of directories deeper than git saves (as root and as `nobody`): short names past
/// git's 100 levels, long names past the system's path length. Failed on the code before:
/// `--force` ended with libgit2's `directory nesting too deep (100)`, exit 1, nothing said of
/// what to do.
#[test]
fn clean_keep_a_chain_deeper_than_git_saves() {
    let mut runs = vec![false];
    if can_be_nobody() {
        runs.push(true);
    }
    for as_nobody in runs {
        for (depth, name_len) in [(150, 1), (120, 60)] {
            let repo = ran();
            let tree = repo.worktree("p");
            let top = "d".repeat(name_len);
            let made = Command::new("python3")
                .args([
                    "-c",
                    &format!(
                        "import os\nfor i in range({depth}):\n    os.mkdir('{top}'); os.chdir('{top}')\nopen('f','w').write('x')\n"
                    ),
                ])
                .current_dir(&tree)
                .status()
                .expect("python3");
            assert!(made.success());
            sh(&tree, "echo w > other.txt");
            if as_nobody {
                chown_nobody(&repo);
            }
            kept_every_way(
                &repo,
                ".orch/worktrees/p/",
                "directories deep",
                as_nobody,
                &tree,
            );
            let (_, out, _) = orch(&repo, &["clean", "--force", "p"], as_nobody);
            let remedy = format!("`rm -rf .orch/worktrees/p/{top}`");
            assert!(out.contains(&remedy), "{out}");
            // As the message says: the chain removed by hand, `--force` goes through.
            sh(&tree, &format!("rm -rf {top}"));
            let (code, out, err) = orch(&repo, &["clean", "--force", "p"], as_nobody);
            assert_eq!(code, 0, "{out}\n{err}");
            assert!(!tree.exists());
            let saved = backups(&repo)
                .iter()
                .map(|r| git(&repo, &["ls-tree", "-r", "--name-only", r]))
                .collect::<Vec<_>>()
                .join("\n");
            assert!(saved.lines().any(|l| l == "other.txt"), "{saved}");
        }
    }
}

/// An agent hides its own file over the limit with an ignore rule of its change (red team 6:
/// `echo big.bin >> .gitignore`, committed with its work, so in `main` after `orch merge`):
/// `orch clean` keeps the plan, with or without `--force`, naming the file; variants: a rule in a
/// `.gitignore` of a subdirectory, a directory pattern. A file the base already ignored
/// (`target/`) goes with the worktree, named. Failed on the code before: `orch clean` removed
/// the hidden file without a word (exit 0).
#[test]
fn clean_keep_a_file_over_the_limit_the_plans_own_ignore_rule_hides() {
    for (script, named) in [
        (
            "echo big.bin >> .gitignore && head -c 2000000 /dev/urandom > big.bin",
            "big.bin",
        ),
        (
            "mkdir -p sub && echo '*.bin' > sub/.gitignore && head -c 2000000 /dev/urandom > sub/x.bin",
            "sub/x.bin",
        ),
        (
            "echo hide/ >> .gitignore && mkdir -p hide/deeper && head -c 2000000 /dev/urandom > hide/deeper/y.bin",
            "hide/deeper/y.bin",
        ),
    ] {
        let repo = plan_p(script, "max_file_size = \"1MiB\"", "");
        let (code, out, err) = repo.run(&["up"]);
        assert_eq!(code, 0, "{script}\n{out}\n{err}");
        let (code, out, err) = repo.run(&["merge"]);
        assert_eq!(code, 0, "{script}\n{out}\n{err}");
        let tree = repo.worktree("p");
        assert!(tree.join(named).exists(), "{script}");
        let shown = format!("`.orch/worktrees/p/{named}`");
        kept_every_way(&repo, &shown, "max_file_size", false, &tree);
        assert!(tree.join(named).exists(), "{script}");
        // Moved out, the plan goes.
        std::fs::remove_file(tree.join(named)).expect("rm");
        let (code, out, err) = repo.run(&["clean", "p"]);
        assert_eq!(code, 0, "{script}\n{out}\n{err}");
        assert!(!tree.exists());
    }
    // The base's rule: build output goes with the worktree, the large file named.
    let repo = plan_p(
        "mkdir -p target && head -c 2000000 /dev/urandom > target/out.bin && echo s > target/small.o",
        "max_file_size = \"1MiB\"",
        "",
    );
    repo.write(".gitignore", "target/\n");
    repo.commit_all("ignore target");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = repo.run(&["merge"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let tree = repo.worktree("p");
    assert!(tree.join("target/out.bin").exists());
    let (code, out, err) = repo.run(&["clean", "--dry-run", "p"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("would remove with it `.orch/worktrees/p/target/out.bin` (1.9 MiB"),
        "{out}"
    );
    let (code, out, err) = repo.run(&["clean", "--json", "p"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["plans"][0]["outcome"], "removed", "{out}");
    assert_eq!(
        v["plans"][0]["ignored_large"][0]["path"], ".orch/worktrees/p/target/out.bin",
        "{out}"
    );
    assert!(!tree.exists());
}

/// A change over the plan's `max_change_files` or `max_change_size` (each file under
/// `max_file_size`) is one no save holds (a save never hashes it): `orch clean` keeps the plan,
/// with or without `--force`, naming the worktree and the limit; variants: many files, a few
/// large ones, in the plan's worktree and in a pool slot a killed run left. Failed on the code
/// before: `--force` hashed the whole change into its backup (without a bound) and removed the
/// worktree. Made smaller than the limit, the plan goes, the work in its backup.
#[test]
fn clean_keep_a_change_over_the_plans_change_limits() {
    let many = "i=0; while [ $i -lt 60 ]; do : > m$i; i=$((i+1)); done";
    let large = "for n in a b c; do head -c 40000 /dev/urandom > $n.bin; done";
    for (name, script, limit, in_task_tree) in [
        ("many", many, "`max_change_files`", false),
        ("large", large, "`max_change_size`", false),
        ("many in a slot", many, "`max_change_files`", true),
    ] {
        let repo = plan_p(
            ":",
            "max_change_files = 50\nmax_change_size = \"100KiB\"",
            "",
        );
        let (code, out, err) = repo.run(&["up"]);
        assert_eq!(code, 0, "{name}\n{out}\n{err}");
        let tree = if in_task_tree {
            crate::big_files::killed_runs_slot(&repo)
        } else {
            repo.worktree("p")
        };
        // As a killed run's agent left it.
        sh(&tree, script);
        let shown = format!(
            "`{}`",
            tree.strip_prefix(repo.root()).expect("in repo").display()
        );
        kept_every_way(&repo, &shown, limit, false, &tree);
        assert!(
            tree.join("m59").exists() || tree.join("c.bin").exists(),
            "{name}"
        );
        if in_task_tree {
            // (This slot's branch was made by hand, which `orch clean` never removes.)
            continue;
        }
        // Made smaller, the plan goes, what is left in a backup.
        sh(&tree, "rm -f m1* m2* m3* m4* m5* a.bin b.bin");
        let (code, out, err) = repo.run(&["clean", "--force", "p"]);
        assert_eq!(code, 0, "{name}\n{out}\n{err}");
        assert!(!tree.exists(), "{name}");
        let saved = backups(&repo);
        assert!(!saved.is_empty(), "{name}: {saved:?}");
        let kept = if name == "large" { "c.bin" } else { "m0" };
        let all: Vec<String> = saved
            .iter()
            .flat_map(|r| {
                repo.git(&["ls-tree", "-r", "--name-only", r])
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(all.iter().any(|f| f == kept), "{name}: {all:?}");
    }
}
