//! What `verify` starts ends with it. `verify` runs the landed branch's code (its tests), which
//! is the agent's: whatever that code leaves running (a daemon in a session of its own, a
//! double fork, a child in the background of the same group, one that ignores SIGTERM) is
//! ended when the verify command ends, for `orch merge`, for the integration preview
//! (`orch integrate`) and for the merge train of `orch up`, with the sandbox on and off, whether
//! verify passed or failed. Nothing the agent wrote decides which processes those are: orch
//! ends what runs below the verify command it started.

use crate::support;

use std::time::Duration;

use support::{Repo, one_task, process_alive, toml_array, wait_for};

/// A verify program: it leaves one process running the way `how` says, which prints its pid
/// (`leftover NNN`) into verify's output, then exits with `code`.
const LEAVER: &str = r#"
import os, signal, sys, time
how, code = sys.argv[1], int(sys.argv[2])
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    if how in ("session", "double"):
        os.setsid()
    if how == "double" and os.fork() != 0:
        os._exit(0)
    if how == "deaf":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.setsid()
    os.write(w, str(os.getpid()).encode())
    os.close(w)
    for fd in (0, 1, 2):
        try:
            os.close(fd)
        except OSError:
            pass
    time.sleep(120)
    os._exit(0)
os.close(w)
leftover = os.read(r, 32).decode()
print("leftover", leftover, flush=True)
sys.exit(code)
"#;

const HOWS: [&str; 4] = ["session", "double", "background", "deaf"];

/// Plan `a` finished by `orch up` (its agent writes `a.txt`), verify the leaver (`how`, exit
/// `code`), `extra` more lines in `[defaults]`, the sandbox `sandbox`.
fn finished(how: &str, code: i32, extra: &str, sandbox: &str) -> Repo {
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/a.md", &one_task("A", "Write a.txt"));
    repo.write("ci/leaver.py", LEAVER);
    let write = toml_array(&["sh", "-c", "echo a > a.txt"]);
    repo.manifest(
        &write,
        "report = \"exit\"",
        &format!(
            "retries = 0\nintegrate = \"off\"\nverify = {}\n{extra}",
            toml_array(&["python3", "ci/leaver.py", how, &code.to_string()])
        ),
        &[("a", "")],
    );
    repo.commit_all("plans");
    if extra.contains("auto_merge") {
        return repo;
    }
    let (code, out, err) = repo.run_cmd(
        repo.orch(&["up", "--json", "a"])
            .env("ORCH_SANDBOX", sandbox),
    );
    assert_eq!(code, 0, "orch up failed\n{out}\n{err}");
    repo
}

/// The pids the leaver printed into the logs under `.orch/logs`.
fn leftovers(repo: &Repo) -> Vec<u32> {
    let mut pids = Vec::new();
    let mut dirs = vec![repo.root().join(".orch/logs")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if let Ok(text) = std::fs::read_to_string(&p) {
                pids.extend(text.lines().filter_map(|l| {
                    l.strip_prefix("leftover ")
                        .and_then(|n| n.trim().parse::<u32>().ok())
                }));
            }
        }
    }
    pids
}

/// Every leftover the logs name has ended (the wrapper reaps them; a moment for init to reap
/// what was orphaned).
fn assert_all_ended(what: &str, repo: &Repo) {
    let pids = leftovers(repo);
    assert!(!pids.is_empty(), "{what}: the leaver never ran");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| process_alive(p)) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let alive: Vec<u32> = pids.into_iter().filter(|&p| process_alive(p)).collect();
    for &p in &alive {
        let _ = std::process::Command::new("kill")
            .args(["-9", &p.to_string()])
            .status();
    }
    assert!(alive.is_empty(), "{what}: left running: {alive:?}");
}

#[test]
fn what_verify_of_orch_merge_leaves_running_ends_with_it() {
    for sandbox in ["on", "off"] {
        for how in HOWS {
            for code in [0, 1] {
                let repo = finished(how, code, "", sandbox);
                let main = repo.rev("main");
                let (got, out, err) =
                    repo.run_cmd(repo.orch(&["merge", "a"]).env("ORCH_SANDBOX", sandbox));
                let what = format!("orch merge, {how}, exit {code}, sandbox {sandbox}");
                if code == 0 {
                    assert_eq!(got, 0, "{what}\n{out}\n{err}");
                    assert_eq!(
                        repo.git(&["rev-list", "--count", "main..plan/a"]),
                        "0",
                        "{what}: plan/a landed"
                    );
                } else {
                    assert_ne!(got, 0, "{what}\n{out}\n{err}");
                    assert_eq!(repo.rev("main"), main, "{what}");
                }
                assert_all_ended(&what, &repo);
            }
        }
    }
}

#[test]
fn what_verify_of_the_integration_preview_leaves_running_ends_with_it() {
    for how in HOWS {
        let repo = finished(how, 0, "", "on");
        let (code, out, err) = repo.run(&["integrate"]);
        assert_eq!(code, 0, "orch integrate, {how}\n{out}\n{err}");
        assert_all_ended(&format!("orch integrate, {how}"), &repo);
    }
}

#[test]
fn what_verify_of_the_merge_train_leaves_running_ends_with_it() {
    for how in HOWS {
        let repo = finished(how, 0, "auto_merge = true", "on");
        let (code, out, err) = repo.run(&["up", "a"]);
        let what = format!("the merge train, {how}");
        assert_eq!(code, 0, "{what}\n{out}\n{err}");
        assert_eq!(
            repo.git(&["rev-list", "--count", "main..plan/a"]),
            "0",
            "{what}: plan/a landed"
        );
        assert_all_ended(&what, &repo);
    }
}

#[test]
fn the_leaver_leaves_a_process_when_nothing_ends_it() {
    // The test's own premise: run by hand, the leaver's process outlives it.
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("leaver.py");
    std::fs::write(&script, LEAVER).expect("write");
    for how in HOWS {
        let out = std::process::Command::new("python3")
            .arg(&script)
            .args([how, "0"])
            .output()
            .expect("python3");
        let text = String::from_utf8_lossy(&out.stdout);
        let pid: u32 = text
            .trim()
            .strip_prefix("leftover ")
            .and_then(|n| n.parse().ok())
            .expect("a pid");
        wait_for("the leftover to be seen", || process_alive(pid));
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
}

/// SIGTERM to `orch up` (a service manager's stop, `timeout`, a CI cancel) while the integration
/// preview's verify runs the combination's code, which never ends: the verify is stopped and
/// `orch up` ends within seconds, leaving nothing of it running (before, it ran on until
/// verify's `timeout`, two hours by default; only a SIGINT stopped it). Sandbox off and on.
#[test]
fn sigterm_stops_the_previews_verify_at_once() {
    for sandbox in ["off", "auto"] {
        let repo = Repo::bare_minimum();
        repo.write("docs/plans/a.md", &one_task("A", "Write a.txt"));
        repo.write("docs/plans/b.md", &one_task("B", "Write b.txt"));
        repo.write("ci/forever.sh", "echo leftover $$\nexec sleep 1000\n");
        let write = toml_array(&["sh", "-c", "echo $ORCH_PLAN > $ORCH_PLAN.txt"]);
        repo.manifest(
            &write,
            "report = \"exit\"",
            &format!(
                "retries = 0\nintegrate = \"0s\"\nverify = {}\ntimeout = \"2h\"\n",
                toml_array(&["sh", "ci/forever.sh"])
            ),
            &[("a", ""), ("b", "")],
        );
        repo.commit_all("plans");
        let mut up = repo
            .orch(&["up", "--json"])
            .env("ORCH_SANDBOX", sandbox)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn orch up");
        // It says its pid in its log (confined, it writes nothing of the repository). The
        // preview may start on the first plan done while the other's task still runs (CI, under
        // load, sent the signal then and found `b` pending): both tasks done first.
        wait_for(
            "the preview's verify to start and both tasks to be done",
            || {
                !leftovers(&repo).is_empty()
                    && ["a", "b"].iter().all(|p| {
                        std::fs::read_to_string(repo.status_path(p))
                            .ok()
                            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                            .is_some_and(|doc| {
                                support::try_task_in(&doc, "1.1")
                                    .is_some_and(|t| t["status"] == "completed")
                            })
                    })
            },
        );
        let sent = std::time::Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(up.id()).expect("pid")),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM");
        let ended = loop {
            if let Some(status) = up.try_wait().expect("wait") {
                break Some(status);
            }
            if sent.elapsed() > Duration::from_secs(60) {
                let _ = up.kill();
                let _ = up.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            ended.is_some(),
            "sandbox {sandbox}: orch up still ran 60 s after SIGTERM"
        );
        assert_all_ended(&format!("sandbox {sandbox}: the preview's verify"), &repo);
        for plan in ["a", "b"] {
            assert_eq!(repo.task(plan, "1.1")["status"], "completed", "{plan}");
        }
    }
}
