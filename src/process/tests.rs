//! Tests of `process.rs`: spawning, groups and sessions, signals, which orphans are ended.

use super::*;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// A child in a process group of its own, as orch's own commands were started.
fn spawn(argv: &[String], cwd: &Path, env: &[(String, String)], log: &Path) -> io::Result<Spawned> {
    start(argv, cwd, env, log, None, Stdio::null())
}

fn argv(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

/// Waits for `child`, at most 30 s.
async fn wait(child: &mut Child) -> ExitStatus {
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the child ended in time")
        .expect("wait")
}

/// Runs `sh -c script` in `dir` with `env` added; its exit status and everything it wrote (stdout and stderr
/// both go to the log).
async fn run(dir: &Path, script: &str, env: &[(String, String)]) -> (ExitStatus, String) {
    let log = dir.join("out.log");
    let mut spawned = spawn(&argv(&["sh", "-c", script]), dir, env, &log).expect("spawn");
    let status = wait(&mut spawned.child).await;
    (status, std::fs::read_to_string(&log).expect("read log"))
}

#[tokio::test]
async fn the_child_gets_its_directory_streams_group_and_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path().canonicalize().expect("canonical");
    let env = vec![("ORCH_CHILD_TEST".to_string(), "x y".to_string())];
    let script = "pwd; echo \"var=$ORCH_CHILD_TEST\"; echo \"git=${GIT_DIR-unset}\"; \
                  read line; echo \"stdin=$?\"; echo err >&2; \
                  [ \"$(ps -o pgid= -p $$ | tr -d ' ')\" = \"$$\" ] && echo leader; exit 3";
    // orch's own git variables are removed; one the caller gives the child is kept.
    let mut with_git = env.clone();
    with_git.push(("GIT_DIR".to_string(), "kept-when-given".to_string()));
    let (status, out) = run(&dir, script, &env).await;
    assert_eq!(status.code(), Some(3), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            dir.to_str().expect("utf-8"),
            "var=x y",
            "git=unset",
            "stdin=1",
            "err",
            "leader"
        ],
        "{out}"
    );
    let (_, out) = run(&dir, "echo \"git=${GIT_DIR-unset}\"", &with_git).await;
    assert!(out.ends_with("git=kept-when-given\n"), "{out}");
}

#[tokio::test]
async fn the_child_is_told_where_it_runs_and_nothing_of_orchs_own_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path().canonicalize().expect("canonical");
    // Whatever orch's own `PWD` and `OLDPWD` say (a shell in the main checkout).
    let script = "echo \"pwd=$PWD\"; echo \"old=${OLDPWD-unset}\"";
    let (_, out) = run(&dir, script, &[]).await;
    assert_eq!(
        out,
        format!("pwd={}\nold=unset\n", dir.display()),
        "orch's PWD is {:?}",
        std::env::var_os("PWD")
    );
    // git and the other commands orch runs itself, alike.
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", script])
        .env("PWD", "/where/orch/was")
        .env("OLDPWD", "/before");
    place(&mut cmd, &dir);
    let out = cmd.output().expect("sh");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("pwd={}\nold=unset\n", dir.display())
    );
}

#[tokio::test]
async fn a_signal_ends_the_child_with_that_signal_and_sigpipe_is_default_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    // orch ignores SIGPIPE (Rust does); the child must die of it like any program.
    let (status, out) = run(dir.path(), "kill -PIPE $$", &[]).await;
    assert_eq!(status.signal(), Some(Signal::SIGPIPE as i32), "{out}");
    let (status, _) = run(dir.path(), "kill -TERM $$", &[]).await;
    assert_eq!(status.signal(), Some(Signal::SIGTERM as i32));
}

#[tokio::test]
async fn a_missing_program_is_not_found_and_a_relative_one_is_taken_from_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("out.log");
    let missing = argv(&["no-such-program-orch-test"]);
    let err = spawn(&missing, dir.path(), &[], &log)
        .err()
        .expect("not found");
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    let script = dir.path().join("agent.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 7\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut relative = spawn(&argv(&["./agent.sh"]), dir.path(), &[], &log).expect("spawn");
    assert_eq!(wait(&mut relative.child).await.code(), Some(7));
    // A PATH given to the child is the one its program is looked up on.
    let path = [("PATH".to_string(), dir.path().display().to_string())];
    let mut on_path = spawn(&argv(&["agent.sh"]), dir.path(), &path, &log)
        .expect("spawn agent.sh on the child's PATH");
    assert_eq!(wait(&mut on_path.child).await.code(), Some(7));
    let err = spawn(&argv(&["sh", "-c", "a\0b"]), dir.path(), &[], &log)
        .err()
        .expect("NUL refused");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let err = spawn(&[], dir.path(), &[], &log).err().expect("empty argv");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
}

#[tokio::test]
async fn a_cancelled_wait_loses_nothing_and_a_dropped_child_is_reaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("out.log");
    let fifo = dir.path().join("go");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let script = argv(&["sh", "-c", "read x < go; exit 5"]);
    let mut spawned = spawn(&script, dir.path(), &[], &log).expect("spawn");
    let child = &mut spawned.child;
    // The child blocks on the fifo: a wait cut short finds it running.
    let cut = tokio::time::timeout(Duration::from_millis(50), child.wait()).await;
    assert!(cut.is_err(), "the child cannot have ended yet");
    assert!(child.try_wait().expect("try_wait").is_none());
    std::fs::write(&fifo, "go\n").expect("release the child");
    assert_eq!(wait(child).await.code(), Some(5));
    assert_eq!(
        child.try_wait().expect("again").map(|s| s.code()),
        Some(Some(5))
    );

    // Dropped while running: once it ends, it is reaped (no zombie left behind).
    let spawned = spawn(&script, dir.path(), &[], &log).expect("spawn");
    let pid = spawned.pid;
    drop(spawned);
    std::fs::write(&fifo, "go\n").expect("release the child");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} was not reaped"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn an_agent_starts_in_a_session_of_its_own_recorded_until_it_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("out.log");
    // What `orch session-exec` does, done by `setsid(1)` here (the test has no orch).
    let script = "s=$(cat /proc/$$/stat); s=${s##*) }; set -- $s; \
                  echo \"sid=$4 pgrp=$3 tty=$5 pid=$$\"; echo \"ssh=${SSH_AUTH_SOCK-unset}\"";
    let argv = argv(&["setsid", "sh", "-c", script]);
    // A variable the caller gives is passed (orch's own environment's is what is removed,
    // tests/untrusted/processes.rs).
    let env = [("SSH_AUTH_SOCK".to_string(), "/tmp/a.sock".to_string())];
    let mut agent = spawn_agent(&argv, dir.path(), &env, &log, (&[], None)).expect("spawn");
    let pid = agent.pid;
    assert!(lock(&SPAWNED).contains(&pid));
    assert_eq!(wait(&mut agent.child).await.code(), Some(0));
    end_session(pid).await;
    assert!(!lock(&SPAWNED).contains(&pid));
    let out = std::fs::read_to_string(&log).expect("log");
    assert!(
        out.contains(&format!("sid={pid} pgrp={pid} tty=0 pid={pid}")),
        "{out}"
    );
    assert!(out.contains("ssh=/tmp/a.sock"), "{out}");
}

#[test]
fn an_orphan_is_ended_whatever_it_says_unless_orch_started_it_or_it_is_in_orchs_session() {
    let me = 100;
    let st = |ppid, session| Stat {
        state: 'S',
        ppid,
        pgrp: session,
        session,
        start_time: 1,
    };
    // Re-parented to orch, in a session of its own: ended.
    assert!(is_orphan(&st(me, 500), me, 1, false));
    // orch started it (a wrapper, a keeper): orch waits for it itself.
    assert!(!is_orphan(&st(me, 500), me, 1, true));
    // In orch's own session (git, verify, notify): orch's own.
    assert!(!is_orphan(&st(me, 1), me, 1, false));
    // Another process's child: not orch's to end.
    assert!(!is_orphan(&st(7, 500), me, 1, false));
    // The environment does not enter into it: there is no such input.
}

/// A child of orch in a session of its own that orch did not record (a container's monitor
/// between its birth under `podman run -d` and its keeping) is left alone while orch says it is
/// having one made ([`adopting`]). (Not swept after: a round kills every such child of the
/// test process, other tests' git among them; that it is one is [`is_orphan`]'s.)
#[test]
fn the_sweep_kills_nothing_while_orch_is_having_a_process_made_that_it_keeps() {
    let mut child = std::process::Command::new("setsid")
        .args(["sleep", "30"])
        .spawn()
        .expect("spawn setsid");
    let pid = child.id();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stat_of(pid).is_none_or(|st| st.session != pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "no session of its own"
        );
        std::thread::yield_now();
    }
    let me = std::process::id();
    let my_sid = stat_of(me).expect("own stat").session;
    let st = stat_of(pid).expect("its stat");
    assert!(is_orphan(&st, me, my_sid, lock(&SPAWNED).contains(&pid)));
    let held = adopting();
    assert!(
        sweep_round(me, my_sid),
        "a round while adopting says it is pending"
    );
    assert!(
        stat_of(pid).is_some_and(|st| st.state != 'Z'),
        "killed while adopting"
    );
    drop(held);
    assert!(!adopting_now());
    let _ = child.kill();
    let _ = child.wait();
}

/// A process found by its environment, as [`find_agents`] records it now.
fn found(pid: u32) -> FoundAgent {
    let st = stat_of(pid).expect("a live process");
    FoundAgent {
        pid,
        start_time: st.start_time,
        pgid: st.pgrp,
        status_file: "status.json".to_string(),
        task: "1.1".to_string(),
    }
}

/// `sh -c script` leading a process group of its own.
fn leader(script: &str) -> std::process::Child {
    use std::os::unix::process::CommandExt as _;
    std::process::Command::new("sh")
        .args(["-c", script])
        .process_group(0)
        .spawn()
        .expect("spawn")
}

/// The pid of a child of `parent`, once it has one.
fn child_of(parent: u32) -> u32 {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(pid) = all_pids().find(|&p| stat_of(p).is_some_and(|st| st.ppid == parent)) {
            return pid;
        }
        assert!(std::time::Instant::now() < deadline, "no child of {parent}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn strays_are_the_live_processes_found_outside_the_adopted_trees_never_a_gone_ones_group() {
    // An adopted agent (its wrapper's place: the root of the tree kept) with a child.
    let mut agent = leader("sleep 60 & wait");
    let agent_pid = agent.id();
    let agent_child = child_of(agent_pid);
    // A short-lived child of the agent, in the agent's group, seen and then gone: as `sleep`
    // or `git` run by an agent, found by the search and exited before the check.
    let gone = {
        use std::os::unix::process::CommandExt as _;
        let mut c = std::process::Command::new("sh")
            .args(["-c", "read _; exit 0"])
            .stdin(Stdio::piped())
            .process_group(i32::try_from(agent_pid).expect("pid"))
            .spawn()
            .expect("spawn");
        let f = found(c.id());
        assert_eq!(f.pgid, agent_pid);
        drop(c.stdin.take());
        assert!(c.wait().expect("wait").success());
        f
    };
    // The agent, its pid found once more but with another start time: another process now.
    let reused = FoundAgent {
        start_time: found(agent_pid).start_time + 1,
        ..found(agent_pid)
    };
    // A stray outside every adopted tree, with a child in its group.
    let mut stray = leader("sleep 60 & wait");
    let stray_child = child_of(stray.id());
    let (kept, kept_child) = (found(agent_pid), found(agent_child));

    // Gone, or another process: nothing is stopped, whatever is adopted.
    assert_eq!(stop_strays(&[&gone, &reused], &[]), 0);
    // Below the adopted root: kept. The stray: stopped with its group.
    let all = [&kept, &kept_child, &gone, &reused, &found(stray.id())];
    assert_eq!(stop_strays(&all, &[agent_pid]), 1);
    assert_eq!(stray.wait().expect("wait").signal(), Some(9));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while process_alive(stray_child, 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the stray's child lives"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(process_alive(agent_pid, kept.start_time));
    assert!(process_alive(agent_child, kept_child.start_time));
    assert!(agent.try_wait().expect("try_wait").is_none());
    let _ = killpg(
        Pid::from_raw(i32::try_from(agent_pid).expect("pid")),
        Signal::SIGKILL,
    );
    let _ = agent.wait();
}

#[test]
fn process_start_time_of_this_process() {
    if std::path::Path::new("/proc/self/stat").exists() {
        assert!(process_start_time(std::process::id()) > 0);
    }
    assert_eq!(process_start_time(u32::MAX), 0);
}

#[test]
fn programs_resolve_like_execvp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("agent.sh");
    std::fs::write(&script, "#!/bin/sh\n").expect("write");
    // Not executable yet: not found.
    assert_eq!(resolve_program("./agent.sh", dir.path()), None);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert_eq!(
        resolve_program("./agent.sh", dir.path()),
        Some(dir.path().join("./agent.sh"))
    );
    let sh = resolve_program("sh", dir.path()).expect("sh is on PATH");
    assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
    assert_eq!(resolve_program("no-such-program-xyz", dir.path()), None);
}

#[tokio::test]
async fn stopping_a_wrapper_that_does_not_end_kills_its_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("agent.log");
    // Deaf to SIGTERM, as a wrapper stopped by its agent would be; in a session of its own.
    let argv: Vec<String> = [
        "setsid",
        "sh",
        "-c",
        "trap '' TERM; sh -c 'trap \"\" TERM; while :; do sleep 1; done' & echo started; while :; do sleep 1; done",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    let mut spawned = spawn_agent(&argv, dir.path(), &[], &log, (&[], None)).expect("spawn");
    let pid = spawned.pid;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("started")) {
        assert!(Instant::now() < deadline, "the group did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(group_alive(pid));
    let killed = stop_wrapper(pid, 0, Duration::from_millis(100), Some(&mut spawned.child)).await;
    assert!(killed, "SIGTERM alone cannot have stopped it");
    assert!(!group_alive(pid), "a member of the session survived");
    end_session(pid).await;
}

/// Whether `pid` runs (not a zombie).
fn runs(pid: u32) -> bool {
    stat_of(pid).is_some_and(|st| st.state != 'Z')
}

/// Waits until `f` holds, at most 10 s.
fn within_10s(what: &str, f: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `kill_tree` ends the root and what is below it, also a process that moved to a session of
/// its own; a root that orch started (below this process) or an ancestor of it is left alone.
#[test]
fn kill_tree_ends_what_left_its_session_below_a_root_not_started_here() {
    let dir = tempfile::tempdir().expect("tmp");
    let (root_at, hidden_at) = (dir.path().join("root"), dir.path().join("hidden"));
    // The root is not this process's child (`setsid -f` forks it away): as a stray of an
    // earlier run. It starts a child in a session of its own, then waits.
    let script = format!(
        "echo $$ > {r}.tmp; mv {r}.tmp {r}; setsid sleep 600 & echo $! > {h}.tmp; mv {h}.tmp {h}; wait",
        r = root_at.display(),
        h = hidden_at.display()
    );
    let status = std::process::Command::new("setsid")
        .args(["-f", "sh", "-c", &script])
        .status()
        .expect("setsid");
    assert!(status.success());
    within_10s("the pids", || root_at.exists() && hidden_at.exists());
    let pid = |p: &Path| -> u32 {
        std::fs::read_to_string(p)
            .expect("pid")
            .trim()
            .parse()
            .expect("a pid")
    };
    let (root, hidden) = (pid(&root_at), pid(&hidden_at));
    within_10s("both running", || runs(root) && runs(hidden));
    assert_ne!(
        stat_of(hidden).map(|s| s.session),
        stat_of(root).map(|s| s.session)
    );
    // Not what this process started, nor its parent.
    let mine = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .expect("sleep");
    assert!(!kill_tree(mine.id()));
    assert!(runs(mine.id()), "a child of this process was killed");
    assert!(!kill_tree(std::os::unix::process::parent_id()));
    assert!(kill_tree(root));
    within_10s("the root and the hidden process gone", || {
        !runs(root) && !runs(hidden)
    });
    let mut mine = mine;
    let _ = mine.kill();
    let _ = mine.wait();
}
