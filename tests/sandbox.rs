//! Confined agents, end to end through a real `orch up` (Landlock; skipped with a message on a
//! kernel without it): what a confined agent cannot touch stays byte for byte as it was, and
//! what it may do still gets its task completed and committed. Bad sandbox keys are errors
//! with their location.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;

use support::{Repo, agent_at, landlock, one_task};

/// Every file beneath `dir` (but `.git`) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("inside").display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

fn refs(repo: &Repo, git_dir: &Path) -> Vec<String> {
    repo.git_at(
        git_dir,
        &["for-each-ref", "--format=%(refname) %(objectname)"],
    )
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn a_confined_agent_cannot_touch_what_is_not_its_own_and_still_completes() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let root = repo.root().to_path_buf();
    // Plan b runs first (unconfined: its worktree is the one the confined agent attacks).
    repo.write("docs/plans/a.md", &one_task("A", "Work confined"));
    repo.write("docs/plans/b.md", &one_task("B", "Write b"));
    repo.write("build.sh", "mkdir -p build && echo built > build/out.txt\n");
    let b_agent = support::toml_array(&["sh", "-c", "echo b > b.txt"]);
    let other = root.join(".orch/worktrees/b");
    let a_agent = agent_at("confined.sh", &[&other, &root, Path::new("plan/other")]);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nsandbox = \"on\"\n\n[agents.a]\ncommand = {a_agent}\nreport = \"orch\"\n\n\
             [agents.b]\ncommand = {b_agent}\nsandbox = \"off\"\n\n\
             [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\nagent = \"a\"\n\n\
             [[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\nagent = \"b\"\n"
        ),
    );
    repo.commit_all("plans");
    repo.git(&["branch", "plan/other"]);
    let remote = repo.outside("remote.git");
    repo.git(&["init", "-q", "--bare", &remote.display().to_string()]);
    repo.git(&["remote", "add", "origin", &remote.display().to_string()]);
    repo.git(&["push", "-q", "origin", "main"]);
    let ssh = repo.home().join(".ssh");
    std::fs::create_dir_all(&ssh).expect("mkdir .ssh");
    std::fs::write(ssh.join("id_test"), "secret key\n").expect("key");
    // A browser's profile: its history holds the addresses a person opened (red team 16 read
    // `orch serve`'s token there), its cookies its logins.
    for (dir, file) in [
        (".config/chromium/Default", "History"),
        (".mozilla/firefox", "profiles.ini"),
    ] {
        let d = repo.home().join(dir);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join(file), "http://127.0.0.1:4000/#token=secret\n").expect("write");
    }
    repo.up(&["b"]);

    let before = (
        snapshot(&other),
        snapshot(&ssh),
        refs(&repo, &root),
        refs(&repo, &remote),
        repo.git(&["status", "--porcelain", "--untracked-files=all"]),
    );
    let (code, out, err) =
        repo.run_cmd(repo.orch(&["up", "--json", "a"]).env_remove("ORCH_SANDBOX"));
    assert_eq!(code, 0, "orch up failed\n{out}\n{err}");
    let started = support::events(&out)
        .into_iter()
        .find(|e| e["event"] == "run_started")
        .expect("run_started");
    assert_eq!(started["sandbox"], "on", "{started}");

    // Completed and committed, with what the agent may write.
    assert_eq!(repo.subjects("plan/a"), ["a 1.1: Work confined"]);
    let show = |f: &str| repo.git(&["show", &format!("plan/a:{f}")]);
    assert_eq!(show("work.txt"), "work");
    assert_eq!(show("build/out.txt"), "built");
    let results = show("results.txt");
    let got: BTreeMap<&str, &str> = results.lines().filter_map(|l| l.split_once(' ')).collect();
    for what in [
        "write-other",
        "write-main",
        "write-ssh",
        "read-ssh",
        "read-browser",
        "read-firefox",
        "branch-delete",
        "update-ref",
        "commit",
        "push",
    ] {
        assert_eq!(
            got.get(what),
            Some(&"denied"),
            "{what}\n{results}\n{}",
            show("try.log")
        );
    }
    for what in [
        "write-worktree",
        "write-tmpdir",
        "build",
        "git-status",
        "git-diff",
        "git-log",
    ] {
        assert_eq!(
            got.get(what),
            Some(&"allowed"),
            "{what}\n{results}\n{}",
            show("try.log")
        );
    }
    // The private TMPDIR is gone with the attempt.
    let tmpdir = got.get("tmpdir").expect("tmpdir recorded");
    assert!(tmpdir.contains("orch-"), "{tmpdir}");
    assert!(!Path::new(tmpdir).exists(), "{tmpdir} left behind");

    // Everything else as it was: the other worktree, ~/.ssh, every ref but plan/a's, the
    // remote, the main checkout.
    let mut refs_after = refs(&repo, &root);
    refs_after.retain(|r| !r.starts_with("refs/heads/plan/a "));
    assert_eq!(
        snapshot(&other),
        before.0,
        "the other plan's worktree changed"
    );
    assert_eq!(snapshot(&ssh), before.1, "~/.ssh changed");
    assert_eq!(refs_after, before.2, "refs changed");
    assert_eq!(refs(&repo, &remote), before.3, "the remote changed");
    assert_eq!(
        repo.git(&["status", "--porcelain", "--untracked-files=all"]),
        before.4,
        "the main checkout changed"
    );
    assert!(!root.join("intruder.txt").exists());
    let status = support::json(&repo.run(&["status", "--json"]).1);
    assert_eq!(status["sandbox"], "on", "{status}");
    let plans = status["plans"].as_array().expect("plans");
    let a = plans.iter().find(|p| p["plan"] == "a").expect("plan a");
    assert_eq!(a["sandbox"], "on", "{a}");
}

#[test]
fn a_write_the_sandbox_denies_is_named_in_the_failures_cause() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let outside = repo.outside("cache");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let script = format!("echo x > '{}/f' && echo written", outside.display());
    repo.write("docs/plans/p.md", &one_task("P", "Write a cache"));
    repo.manifest(
        &support::toml_array(&["sh", "-c", &script]),
        "",
        "retries = 0\nsandbox = \"on\"",
        &[("p", "")],
    );
    repo.commit_all("plans");
    let ev = repo.up_events(&[], 5);
    let failed = support::named(&ev, "task_failed");
    let error = failed[0]["error"].as_str().expect("error");
    assert!(
        error.contains("the sandbox (Landlock) denied a write"),
        "{error}"
    );
    assert!(
        error.contains(&format!("{}/f", outside.display())),
        "{error}"
    );
    assert!(!outside.join("f").exists());
}

#[test]
fn the_check_runs_under_the_same_rules() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let outside = repo.outside("check-out");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let check = format!(
        "echo x > \"$TMPDIR/t\" && echo x > '{}/c'",
        outside.display()
    );
    repo.write("docs/plans/p.md", &one_task("P", "Work"));
    repo.manifest(
        &support::toml_array(&["true"]),
        "",
        &format!(
            "retries = 0\nsandbox = \"on\"\ncheck = {}",
            support::toml_array(&["sh", "-c", &check])
        ),
        &[("p", "")],
    );
    repo.commit_all("plans");
    let ev = repo.up_events(&[], 5);
    let failed = support::named(&ev, "task_failed");
    let error = failed[0]["error"].as_str().expect("error");
    assert!(error.contains("the check"), "{error}");
    // Outside its write set the file system is read-only to it (and Landlock denies the write).
    assert!(error.contains("Read-only file system"), "{error}");
    assert!(!outside.join("c").exists(), "the check wrote outside");
}

#[test]
fn bad_sandbox_keys_are_errors_with_their_location() {
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/p.md", &one_task("P", "Work"));
    let cases = [
        (
            "sandbox = \"maybe\"",
            "3:11",
            "`defaults.sandbox` must be \"auto\", \"on\" or \"off\"",
        ),
        (
            "sandbox_write = [\"rel/dir\"]",
            "3:18",
            "is not an absolute path",
        ),
        (
            "sandbox_write = [\"/no/such/dir\"]",
            "3:18",
            "does not exist",
        ),
        (
            "sandbox_deny_read = [\"x\"]",
            "3:22",
            "is not an absolute path",
        ),
    ];
    for (line, at, message) in cases {
        repo.write(
            "plans.toml",
            &format!(
                "[defaults]\nagent = \"a\"\n{line}\n\n[agents.a]\ncommand = [\"true\"]\n\n\
                 [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n"
            ),
        );
        let (code, out, err) = repo.run(&["up"]);
        assert_eq!(code, 2, "{line}\n{out}\n{err}");
        assert!(err.contains(&format!("plans.toml:{at}")), "{line}\n{err}");
        assert!(err.contains(message), "{line}\n{err}");
        assert!(
            !repo.root().join(".orch/worktrees").exists(),
            "{line}: something was made"
        );
    }
    // An agent's table too.
    repo.write(
        "plans.toml",
        "[defaults]\nagent = \"a\"\n\n[agents.a]\ncommand = [\"true\"]\nsandbox = \"yes\"\n\n\
         [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n",
    );
    let (code, _, err) = repo.run(&["up"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("plans.toml:6:11"), "{err}");
    assert!(err.contains("`agents.a.sandbox` must be"), "{err}");
    // ORCH_SANDBOX, which stands in for `[defaults] sandbox`: a value orch does not know is an
    // error too, nothing made.
    repo.write(
        "plans.toml",
        "[defaults]\nagent = \"a\"\n\n[agents.a]\ncommand = [\"true\"]\n\n\
         [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n",
    );
    for cmd in ["check", "up"] {
        let (code, _, err) = repo.run_cmd(repo.orch(&[cmd]).env("ORCH_SANDBOX", "onn"));
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(
            err.contains("the environment variable `ORCH_SANDBOX` must be"),
            "{cmd}: {err}"
        );
        assert!(
            !repo.root().join(".orch/worktrees").exists(),
            "{cmd}: something was made"
        );
    }
}

#[test]
fn a_denied_write_is_named_when_the_agent_reports_failure_or_its_check_fails() {
    if !landlock() {
        return;
    }
    // (agent's script after its denied write, `[defaults]` lines)
    let cases = [
        // It reports the failure itself: its words stay, the sandbox is added.
        (
            "\"$ORCH_BIN\" task fail 1.1 --error 'could not write the cache'",
            "",
        ),
        // It exits 0 (`report = "exit"`), and its check fails.
        ("true", "check = [\"test\", \"-f\", \"missing.txt\"]\n"),
    ];
    for (then, defaults) in cases {
        let repo = Repo::bare_minimum();
        let outside = repo.outside("cache");
        std::fs::create_dir_all(&outside).expect("mkdir");
        let script = format!("echo x > '{}/f'; {then}", outside.display());
        repo.write("docs/plans/p.md", &one_task("P", "Write a cache"));
        repo.manifest(
            &support::toml_array(&["sh", "-c", &script]),
            if defaults.is_empty() {
                ""
            } else {
                "report = \"exit\""
            },
            &format!("retries = 0\nsandbox = \"on\"\n{defaults}"),
            &[("p", "")],
        );
        repo.commit_all("plans");
        let ev = repo.up_events(&[], 5);
        let failed = support::named(&ev, "task_failed");
        assert_eq!(failed.len(), 1, "{ev:?}");
        let error = failed[0]["error"].as_str().expect("error");
        assert!(
            error.contains("the sandbox (Landlock) denied a write")
                && error.contains(&format!("{}/f", outside.display())),
            "{then}: {error}"
        );
        if then.contains("task fail") {
            assert!(error.contains("could not write the cache"), "{error}");
        }
        // The cause in `orch status --json` says it too.
        let cause = repo.task("p", "1.1");
        assert!(
            cause
                .to_string()
                .contains("the sandbox (Landlock) denied a write"),
            "{then}: {cause}"
        );
        assert!(!outside.join("f").exists());
    }
}

/// The honest path of `setup` and `verify` confined: they build in their own worktree and
/// `TMPDIR`, the integration preview is green, `orch merge` lands the plan.
#[test]
fn confined_setup_and_verify_still_build_in_their_worktree_and_tmpdir() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/p.md", &one_task("P", "Write out.txt"));
    let setup = support::toml_array(&[
        "sh",
        "-c",
        "mkdir -p build && echo ok > build/setup.txt && echo t > \"$TMPDIR/t\" && test -s \"$TMPDIR/t\"",
    ]);
    let verify = support::toml_array(&[
        "sh",
        "-c",
        "echo x > built.txt && echo t > \"$TMPDIR/t\" && test -s \"$TMPDIR/t\" && test -f out.txt",
    ]);
    let agent = support::toml_array(&[
        "sh",
        "-c",
        "test -f build/setup.txt && echo done > out.txt && \"$ORCH_BIN\" task done \"$ORCH_TASK\"",
    ]);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nsandbox = \"on\"\nsetup = {setup}\nverify = {verify}\n\n\
             [agents.a]\ncommand = {agent}\nreport = \"orch\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\n"
        ),
    );
    repo.write(".gitignore", "build/\n");
    repo.commit_all("plans");
    let (code, out, err) = repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
    assert_eq!(code, 0, "orch up\n{out}\n{err}");
    assert_eq!(repo.subjects("plan/p"), ["p 1.1: Write out.txt"]);
    let (_, status, _) = repo.run(&["status", "--json"]);
    let v = support::json(&status);
    assert_eq!(v["integration"]["result"], "green", "{v}");
    let main = repo.rev("main");
    let (code, out, err) = repo.run_cmd(repo.orch(&["merge", "p"]).env_remove("ORCH_SANDBOX"));
    assert_eq!(code, 0, "orch merge\n{out}\n{err}");
    assert_eq!(repo.rev("main^1"), main);
    assert_eq!(repo.git(&["show", "main:out.txt"]), "done");
}

/// Beside the way to a denied path lie links to what Landlock takes no rule on (a pipe, a
/// socket, a namespace, `/dev/stdin`), a link to itself and a dangling one (as `/dev` holds
/// `stdin`, `fd`, `core`: a repository under `/dev/shm` has them on its way). The process is
/// still confined: it reads its file and the links' targets it may, not the denied one.
#[test]
fn links_beside_the_way_to_a_denied_path_do_not_stop_confinement() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::symlink;
    use std::process::{Command, Stdio};
    if !landlock() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("up");
    std::fs::create_dir_all(dir.join("secret")).expect("mkdir");
    std::fs::write(dir.join("secret/key"), "SECRET").expect("write");
    std::fs::write(dir.join("ok"), "fine\n").expect("write");
    // A pipe held by a child, a socket held by this test, a namespace, stdin, a loop, nothing.
    let mut holder = Command::new("sleep")
        .arg("120")
        .stdin(Stdio::piped())
        .spawn()
        .expect("sleep");
    let socket = std::os::unix::net::UnixListener::bind(tmp.path().join("s")).expect("bind");
    let me = std::process::id();
    let links = [
        ("pipe", format!("/proc/{}/fd/0", holder.id())),
        ("socket", format!("/proc/{me}/fd/{}", socket.as_raw_fd())),
        ("ns", "/proc/self/ns/net".to_string()),
        ("stdin", "/proc/self/fd/0".to_string()),
        ("loop", dir.join("loop").display().to_string()),
        ("gone", "/nonexistent/orch".to_string()),
        ("to-secret", dir.join("secret/key").display().to_string()),
    ];
    for (name, target) in &links {
        symlink(target, dir.join(name)).expect("link");
        symlink(target, tmp.path().join(format!("above-{name}"))).expect("link");
    }
    let run = |path: &Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_orch"));
        c.args(["sandbox-exec", "--deny-read"])
            .arg(dir.join("secret"))
            .arg("--")
            .arg("cat")
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = c.spawn().expect("spawn");
        support::code_out_err(&support::wait_within(
            child,
            std::time::Duration::from_secs(60),
            "orch sandbox-exec",
        ))
    };
    let (code, out, err) = run(&dir.join("ok"));
    assert_eq!((code, out.as_str()), (0, "fine\n"), "{err}");
    for denied in [dir.join("secret/key"), dir.join("to-secret")] {
        let (code, out, err) = run(&denied);
        assert!(
            code != 0 && !out.contains("SECRET") && err.contains("Permission denied"),
            "{}: {code} {out} {err}",
            denied.display()
        );
    }
    let _ = holder.kill();
    let _ = holder.wait();
}
