//! What an agent in its plan's container (`executor = "container"`, real podman, the test image)
//! could do to orch's own things there: end the container's keeper (orch's first process of the
//! container) to make its failed attempt "lost" and not counted, leave its files in orch's
//! directories of a killed run, or junk in its plan's report directory; and a manifest whose
//! allowed endpoint takes a service's port, which would fail every attempt against the agent.

use crate::support;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use support::podman::{IMAGE, available};
use support::{Repo, named, toml_array};

/// A plan `p` of one task run by the POSIX sh `script` (`report = "exit"`) in a container of
/// the test image, `plan` lines on the plan and `defaults` lines in `[defaults]`.
fn repo_of(script: &str, plan: &str, defaults: &str) -> Repo {
    support::podman::repo(
        &[("p", plan)],
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Task 1\n",
        &toml_array(&["sh", "-c", script]),
        "network = \"none\"\n",
        IMAGE,
        defaults,
        "",
    )
}

/// Sends SIGTERM, SIGHUP and SIGINT to the container's first process with `rt_sigqueueinfo`,
/// its record naming no sender (pid 0, as one from outside the namespace would) and each code
/// a process may forge (`SI_QUEUE`, `SI_MESGQ`, `SI_ASYNCIO`); prints what each call returned.
const FORGE_PY: &str = r#"import ctypes, signal
libc = ctypes.CDLL(None, use_errno=True)
class SigInfo(ctypes.Structure):
    _fields_ = [("signo", ctypes.c_int), ("errno", ctypes.c_int), ("code", ctypes.c_int),
                ("pad", ctypes.c_int), ("pid", ctypes.c_int), ("uid", ctypes.c_uint),
                ("rest", ctypes.c_byte * 104)]
for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
    for code in (-1, -3, -4):
        si = SigInfo(signo=sig, code=code, pid=0, uid=0)
        r = libc.syscall(129, 1, int(sig), ctypes.byref(si))
        print(int(sig), code, r, ctypes.get_errno())
"#;

/// The agent of 1.1 tries every way to end its container from inside, then exits 3 without
/// reporting: signals to the container's first process (orch's keeper) by `kill` (each that
/// ends it from outside, and SIGKILL, SIGSTOP, SIGUSR1), forged as from outside
/// ([`FORGE_PY`]), the keeper's kill score raised, and last SIGHUP and SIGTERM to every
/// process it may signal (`kill -1`: its own wrapper, which stops it). With `retries = 1` the task fails after exactly two counted attempts, both in the
/// same container (its keeper never ended), and says why: the agent's own exit. Sandbox off
/// (the agent is the container's root, as the keeper's user) and on. Before the keeper read
/// who sent its signals, the first `kill -TERM 1` stopped the container and each attempt was
/// lost, not counted (seven attempts, five of them lost).
#[test]
fn an_agent_cannot_end_its_container_to_make_its_attempt_not_count() {
    if !available() || !support::landlock() {
        return;
    }
    let script = "trap '' HUP TERM INT; \
                  for s in TERM INT HUP USR1 STOP KILL; do kill -s $s 1 2>/dev/null; done; \
                  python3 forge.py > /dev/null 2>&1; \
                  echo 1000 > /proc/1/oom_score_adj 2>/dev/null; \
                  sleep 1; \
                  kill -s HUP -1 2>/dev/null; kill -s TERM -1 2>/dev/null; exit 3";
    for sandbox in ["off", "on"] {
        let repo = repo_of(script, "retries = 1", &format!("sandbox = \"{sandbox}\""));
        repo.write("forge.py", FORGE_PY);
        repo.commit_all("the agent's forger");
        let (code, out, err) =
            repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
        let all = format!("{out}\n{err}");
        assert_ne!(code, 0, "{sandbox}: {all}");
        let task = repo.task("p", "1.1");
        assert_eq!(task["status"], "failed", "{sandbox}: {task}\n{all}");
        assert_eq!(task["attempts"], 2, "{sandbox}: {task}\n{all}");
        let events = support::events(&out);
        let started: Vec<&Value> = named(&events, "task_started")
            .into_iter()
            .filter(|e| e["task"] == "1.1")
            .collect();
        assert_eq!(started.len(), 2, "{sandbox}: {all}");
        assert!(!all.contains("attempt lost"), "{sandbox}: {all}");
        // Why: the agent's own end (its exit, or its wrapper's, which it signalled).
        let error = task["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("the agent exited") || error.contains("signal"),
            "{sandbox}: the failure says why: {error}"
        );
        // One container for both attempts: its keeper lived through each.
        assert!(
            !all.contains("stopped under the attempt"),
            "{sandbox}: {all}"
        );
    }
}

/// The other side of the same rule: a container stopped from outside (`podman stop`: SIGTERM
/// from this machine to its keeper, which ends at once with 0) under an attempt makes it lost,
/// not counted, and the task runs again in a new container and completes.
#[test]
fn a_container_stopped_from_outside_makes_its_attempt_lost_not_counted() {
    if !available() {
        return;
    }
    // The first attempt marks that it started beside its report directory (the plan's,
    // mounted read-write, kept while the run lasts; the sandbox is off) and waits; the next
    // attempt finds the mark and completes.
    let script = "mark=\"$ORCH_REPORT_DIR/../started-before\"; \
                  if [ -e \"$mark\" ]; then echo done > work.txt; exit 0; fi; \
                  touch \"$mark\"; sleep 600";
    let repo = repo_of(script, "", "");
    let mark = repo.root().join(".orch/state/.reports/p/started-before");
    let child = repo
        .orch(&["up", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    support::process::wait_for("the attempt to start in its container", || mark.exists());
    let names = support::podman::mounting(repo.root());
    assert_eq!(names.len(), 1, "{names:?}");
    let started = std::time::Instant::now();
    let stopped = std::process::Command::new("podman")
        .args(["stop", "-t", "30", &names[0]])
        .stdout(Stdio::null())
        .status()
        .expect("podman stop");
    assert!(stopped.success());
    // The keeper ended on the SIGTERM itself, not on podman's SIGKILL after the 30 s.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "podman stop took {:?}",
        started.elapsed()
    );
    let out = support::wait_within(child, repo.timeout(), "orch up");
    let (code, stdout, stderr) = support::code_out_err(&out);
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(code, 0, "{all}");
    assert!(all.contains("attempt lost"), "{all}");
    assert!(
        all.contains("was stopped from outside under the attempt"),
        "{all}"
    );
    assert_eq!(repo.git(&["show", "plan/p:work.txt"]), "done");
    let task = repo.task("p", "1.1");
    assert_eq!(task["status"], "completed", "{task}");
}

/// The directories a run makes in `$TMPDIR` for plan `p`'s container.
fn run_dirs(tmp: &Path, run: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(tmp)
        .expect("tmp")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("orch-{run}-p-")))
        })
        .collect();
    out.sort();
    out
}

/// A kill -9 of `orch up` during an attempt leaves its plan's directories in `$TMPDIR` (the
/// attempts' `TMPDIR`s: the agent's files): made this user's alone (0700), they go at the next
/// start, as its container does. Planted beside them, named as orch names them for a run that
/// is gone: one of this user's (goes), a link to a directory of this machine (left, and what it
/// names untouched) and one another user owns (left). Before, they were 0755 and stayed.
#[test]
fn a_killed_runs_directories_go_at_the_next_start_and_nothing_named_like_them() {
    if !available() {
        return;
    }
    // The first run's attempt writes a file in its `TMPDIR`, marks that it started and waits;
    // the next run's (told by a variable of orch's environment, passed into the container)
    // completes.
    let script = "if [ -n \"$ORCH_TEST_GO\" ]; then echo done > work.txt; exit 0; fi; \
                  echo secret > \"$TMPDIR/agent-file\"; \
                  touch \"$ORCH_REPORT_DIR/../started-before\"; sleep 600";
    let repo = repo_of(script, "", "");
    let tmp = std::env::temp_dir();
    let mark = repo.root().join(".orch/state/.reports/p/started-before");
    let mut child = repo
        .orch(&["up", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    support::process::wait_for("the attempt to start in its container", || mark.exists());
    let pid = child.id();
    let start = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .expect("stat")
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19).map(str::to_string))
        .expect("start time");
    let run = format!("{pid}-{start}");
    let made = run_dirs(&tmp, &run);
    assert!(
        !made.is_empty(),
        "no directory of the run in {}",
        tmp.display()
    );
    for d in &made {
        let meta = std::fs::symlink_metadata(d).expect("meta");
        assert!(meta.is_dir(), "{}", d.display());
        assert_eq!(meta.permissions().mode() & 0o777, 0o700, "{}", d.display());
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    // Named as orch names them, of a run that is gone (no such pid).
    let dead = "999999999-1";
    let plant = |suffix: &str| tmp.join(format!("orch-{dead}-p-0a1b2c3d-{suffix}"));
    let junk = plant("container");
    std::fs::create_dir_all(junk.join("deep/er")).expect("junk");
    std::fs::write(junk.join("deep/er/f"), "x").expect("junk file");
    let outside = repo.outside("kept");
    std::fs::create_dir_all(&outside).expect("outside");
    std::fs::write(outside.join("keep.txt"), "keep").expect("keep");
    let link = plant("services");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&outside, &link).expect("link");
    let others = tmp.join(format!("orch-{dead}-q-0a1b2c3d-container"));
    std::fs::create_dir_all(&others).expect("other's");
    std::os::unix::fs::chown(&others, Some(65534), Some(65534)).expect("chown");
    let (code, out, err) = repo.run_cmd(repo.orch(&["up", "--json"]).env("ORCH_TEST_GO", "1"));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(repo.git(&["show", "plan/p:work.txt"]), "done");
    assert_eq!(
        run_dirs(&tmp, &run),
        Vec::<PathBuf>::new(),
        "the killed run's"
    );
    assert!(!junk.exists(), "a dead run's directory of this user stays");
    assert!(
        std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()),
        "the link went"
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("keep.txt")).expect("keep"),
        "keep"
    );
    let kept = std::fs::symlink_metadata(&others).expect("another user's is left");
    assert_eq!(kept.uid(), 65534);
    let _ = std::fs::remove_file(&link);
    let _ = std::fs::remove_dir_all(&others);
}

/// What an unconfined agent leaves in its plan's report directory (`.reports/p/`, mounted
/// read-write in its container): files, directories, a link to a directory of this machine,
/// one named as an attempt's directory, a FIFO. After a `kill -9` of `orch up` during that
/// attempt, the next start finds no live attempt holding any of it, and all of it goes;
/// `orch clean` of the plan removes everything there too (the same junk planted again), and
/// `.reports/p` itself made a link goes as a link; nothing behind a link is followed (the
/// linked directory is as it was). Before, all of it stayed.
#[test]
fn what_an_agent_leaves_in_its_plans_report_directory_goes() {
    if !available() {
        return;
    }
    let script = "if [ -n \"$ORCH_TEST_GO\" ]; then echo done > work.txt; exit 0; fi; \
                  d=\"$ORCH_REPORT_DIR/..\"; \
                  echo junk > \"$d/junk.txt\"; mkdir -p \"$d/junkdir/sub\"; \
                  echo x > \"$d/junkdir/sub/f\"; mkfifo \"$d/fifo\"; \
                  ln -s \"$ORCH_TEST_OUTSIDE\" \"$d/link\"; \
                  ln -s \"$ORCH_TEST_OUTSIDE\" \"$d/9.9.9\"; \
                  touch \"$d/started-before\"; sleep 600";
    let repo = repo_of(script, "", "");
    let outside = repo.outside("host");
    std::fs::create_dir_all(&outside).expect("outside");
    std::fs::write(outside.join("keep.txt"), "keep").expect("keep");
    let reports = repo.root().join(".orch/state/.reports/p");
    let left = || {
        let mut names: Vec<String> = std::fs::read_dir(&reports)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let mut child = repo
        .orch(&["up", "--json"])
        .env("ORCH_TEST_OUTSIDE", &outside)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mark = reports.join("started-before");
    support::process::wait_for("the agent's junk", || mark.exists());
    child.kill().expect("kill -9");
    let _ = child.wait();
    for junk in ["junk.txt", "junkdir", "fifo", "link", "9.9.9"] {
        assert!(left().contains(&junk.to_string()), "{junk}: {:?}", left());
    }
    // The next start (its attempt told to complete): no live attempt holds any of it.
    let (code, out, err) = repo.run_cmd(repo.orch(&["up", "--json"]).env("ORCH_TEST_GO", "1"));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(repo.git(&["show", "plan/p:work.txt"]), "done");
    assert_eq!(left(), Vec::<String>::new(), "after the next start");
    // The same junk again (as the agent would), and `orch clean` of the plan.
    std::fs::create_dir_all(reports.join("junkdir/sub")).expect("junk");
    std::fs::write(reports.join("junkdir/sub/f"), "x").expect("junk");
    std::os::unix::fs::symlink(&outside, reports.join("link")).expect("link");
    nix::unistd::mkfifo(&reports.join("fifo"), nix::sys::stat::Mode::S_IRWXU).expect("fifo");
    let (code, out, err) = repo.run(&["clean", "--force", "p"]);
    assert_eq!(code, 0, "clean: {out}\n{err}");
    assert!(
        std::fs::symlink_metadata(&reports).is_err(),
        "clean leaves {:?}",
        left()
    );
    // `.reports/p` itself a link: removed as a link, never followed.
    std::os::unix::fs::symlink(&outside, &reports).expect("link");
    let (code, out, err) = repo.run(&["clean", "p"]);
    assert_eq!(code, 0, "clean: {out}\n{err}");
    assert!(
        std::fs::symlink_metadata(&reports).is_err(),
        "the link stays"
    );
    let names: Vec<String> = std::fs::read_dir(&outside)
        .expect("outside")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["keep.txt"]);
    assert_eq!(
        std::fs::read_to_string(outside.join("keep.txt")).expect("keep"),
        "keep"
    );
}

/// An allowed loopback endpoint (`network_allow`) on a port orch may give one of the plan's
/// services (its block, 42000 and up): refused by `orch check` and by `orch up` at the entry's
/// line, naming the service and the port, with exit 2 and nothing made (no worktree, no
/// branch, no status), whichever loopback spelling and wherever it is written. Before, both
/// passed and every attempt failed, counted against the agent.
#[test]
fn an_allowed_endpoint_on_a_services_given_port_is_refused_at_load() {
    let svc = "\n[[service]]\nname = \"db\"\nimage = \"localhost/x\"\n";
    for (allow_line, port, line) in [
        ("network_allow = [\"127.0.0.1:42001\"]", 42001, 13),
        (
            "network_allow = [\"github.com:443\", \"localhost:50000\"]",
            50000,
            13,
        ),
        ("network_allow = [\"[::1]:65535\"]", 65535, 13),
    ] {
        let repo = Repo::new();
        repo.write(
            "docs/plans/p.md",
            "# P\n\n## Phase 1: Work\n- [ ] 1.1 Task 1\n",
        );
        repo.write(
            "plans.toml",
            &format!(
                "[defaults]\nagent = \"a\"\nexecutor = \"container\"\nimage = \"{IMAGE}\"\n\n\
                 [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nservices = [\"db\"]\n\n\
                 [agents.a]\ncommand = [\"true\"]\n{allow_line}\n{svc}"
            ),
        );
        repo.commit_all("plans");
        for cmd in [&["check"][..], &["up", "--json"]] {
            let (code, out, err) = repo.run(cmd);
            let all = format!("{out}\n{err}");
            assert_eq!(code, 2, "{cmd:?} {allow_line}: {all}");
            assert!(
                all.contains(&format!("plans.toml:{line}:")),
                "{cmd:?} {allow_line}: at its line: {all}"
            );
            assert!(
                all.contains("service `db`") && all.contains(&format!("port {port}")),
                "{cmd:?} {allow_line}: {all}"
            );
        }
        assert!(!repo.branch_exists("plan/p"), "{allow_line}");
        assert!(!repo.worktree("p").exists(), "{allow_line}");
        assert!(!repo.status_path("p").exists(), "{allow_line}");
    }
}
