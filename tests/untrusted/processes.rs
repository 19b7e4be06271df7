//! Processes: a confined agent cannot stop or signal `orch up`,
//! has no controlling terminal to push keystrokes into, is not handed the user's agent sockets
//! (`SSH_AUTH_SOCK` and the like) nor orch's GitHub tokens unless `pass_env` allows them, and leaves nothing running
//! after its attempt, not even a double-forked process in a session of its own.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

use crate::landlock;
use crate::support::{self, Repo, agent, one_task};

/// A repository with one plan `a` whose one task is done by `command`, confined
/// (`sandbox = "on"`); `agent_extra`: more lines of the agent's table.
fn confined_repo(command: &str, agent_extra: &str) -> Repo {
    repo_with(command, agent_extra, "on")
}

/// [`confined_repo`] with `sandbox = SANDBOX`.
fn repo_with(command: &str, agent_extra: &str, sandbox: &str) -> Repo {
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/a.md", &one_task("A", "Hostile work"));
    repo.manifest(
        command,
        &format!("report = \"orch\"\n{agent_extra}"),
        &format!("retries = 0\nsandbox = \"{sandbox}\""),
        &[("a", "")],
    );
    repo.commit_all("plans");
    repo
}

/// `what allowed|denied` lines of a results file.
fn results(text: &str) -> BTreeMap<&str, &str> {
    text.lines().filter_map(|l| l.split_once(' ')).collect()
}

fn show(repo: &Repo, file: &str) -> String {
    repo.git(&["show", &format!("plan/a:{file}")])
}

#[test]
fn procs_an_agent_cannot_stop_or_terminate_orch_up() {
    if !landlock() {
        return;
    }
    // Signals are scoped from Landlock ABI 6 (Linux 6.12); before it, orch says so at start.
    let abi = orch::sandbox::abi();
    if abi < 6 {
        eprintln!("skipped: this kernel's Landlock ABI is {abi}: signals are not scoped");
        return;
    }
    let repo = confined_repo(&agent("hostile_proc_signal.sh", &[]), "");
    let main = repo.rev("main");
    let (code, out, err) =
        repo.run_cmd(repo.orch(&["up", "--json", "a"]).env_remove("ORCH_SANDBOX"));
    assert_eq!(code, 0, "orch up did not finish normally\n{out}\n{err}");
    assert_eq!(repo.subjects("plan/a"), ["a 1.1: Hostile work"]);
    let text = show(&repo, "results.txt");
    let got = results(&text);
    assert!(
        got.get("orch").is_some_and(|p| !p.is_empty()),
        "the agent did not find orch up: {text}"
    );
    assert_eq!(got.get("stop"), Some(&"denied"), "{text}");
    assert_eq!(got.get("term"), Some(&"denied"), "{text}");
    // Nor the wrapper it runs under, which ends what it leaves behind.
    assert_eq!(got.get("wrapper"), Some(&"orch-exec"), "{text}");
    assert_eq!(got.get("wrapper-stop"), Some(&"denied"), "{text}");
    assert_eq!(repo.rev("main"), main, "main moved");
    let status = repo.task("a", "1.1");
    assert_eq!(status["status"], "completed", "{status}");
    // The ABI that kept orch up's signals out of reach is the one reported.
    let started = support::events(&out)
        .into_iter()
        .find(|e| e["event"] == "run_started")
        .expect("run_started");
    assert_eq!(started["sandbox"], "on", "{started}");
    assert_eq!(started["sandbox_abi"], abi, "{started}");
    let (code, json, err) = repo.run(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(json["sandbox_abi"], abi, "{json}");
}

#[test]
fn procs_an_agent_has_no_controlling_terminal() {
    if !landlock() {
        return;
    }
    no_controlling_terminal("on");
}

/// Without confinement (`sandbox = "off"`, or a kernel without Landlock) an agent still starts
/// in a session of its own, without the user's agent sockets, and nothing it leaves running
/// outlives its attempt.
#[test]
fn procs_unconfined_agents_keep_the_same_process_hygiene() {
    no_controlling_terminal("off");
    no_agent_sockets("off");
    descendants_end_with_the_attempt("off");
}

fn no_controlling_terminal(sandbox: &str) {
    let repo = repo_with(&agent("hostile_proc_tty.sh", &[]), "", sandbox);
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 200,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("pty");
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_orch"));
    cmd.args(["up", "a"]);
    cmd.cwd(repo.root());
    cmd.env_clear();
    cmd.env("PWD", repo.root());
    cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd.env("HOME", repo.home());
    cmd.env("TERM", "dumb");
    cmd.env("GIT_CONFIG_NOSYSTEM", "1");
    let mut child = pair.slave.spawn_command(cmd).expect("spawn orch up");
    drop(pair.slave);
    // orch up leads the terminal's session (portable-pty makes it the session leader).
    let orch_pid = child.process_id().expect("pid");
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let (tx, screen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _keep = pair.master;
        let mut all = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        let _ = tx.send(all);
    });
    let deadline = Instant::now() + support::TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("orch up did not finish in time under a terminal");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let shown = String::from_utf8_lossy(
        &screen
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default(),
    )
    .into_owned();
    assert!(status.success(), "orch up failed: {status:?}\n{shown}");
    let text = show(&repo, "results.txt");
    let got = results(&text);
    assert_eq!(got.get("tty-open"), Some(&"denied"), "{text}");
    assert_eq!(got.get("tty-write"), Some(&"denied"), "{text}");
    assert_eq!(
        got.get("tty_nr"),
        Some(&"0"),
        "a controlling terminal: {text}"
    );
    let sid = got.get("sid").expect("sid");
    assert_ne!(
        *sid,
        orch_pid.to_string(),
        "in the terminal's session: {text}"
    );
    assert!(
        !shown.contains("orch-hostile-tty"),
        "the agent wrote to the terminal:\n{shown}"
    );
}

#[test]
fn procs_agent_socket_variables_are_not_passed_unless_allowed() {
    if !landlock() {
        return;
    }
    no_agent_sockets("on");
}

fn no_agent_sockets(sandbox: &str) {
    let sockets = [
        ("SSH_AUTH_SOCK", "/tmp/orch-test-ssh-agent.sock"),
        ("SSH_AGENT_PID", "4242"),
        ("GPG_AGENT_INFO", "/tmp/orch-test-gpg:1:1"),
        ("GNUPGHOME", "/tmp/orch-test-gnupg"),
        ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/tmp/orch-test-bus"),
    ];
    let run = |extra: &str| {
        let repo = repo_with(&agent("hostile_proc_env.sh", &[]), extra, sandbox);
        let mut cmd = repo.orch(&["up", "--json", "a"]);
        cmd.env_remove("ORCH_SANDBOX").envs(sockets);
        let (code, out, err) = repo.run_cmd(&mut cmd);
        assert_eq!(code, 0, "orch up failed\n{out}\n{err}");
        show(&repo, "env.txt")
    };
    let given = run("");
    assert_eq!(given, "", "the agent was handed the user's agent sockets");
    let allowed = run("pass_env = [\"SSH_AUTH_SOCK\"]");
    assert_eq!(
        allowed, "SSH_AUTH_SOCK=/tmp/orch-test-ssh-agent.sock",
        "pass_env lets SSH_AUTH_SOCK (and only it) through"
    );
}

/// orch's own GitHub tokens (`gh`'s, which `orch pr` acts with): each of the four names, set
/// in `orch up`'s environment, reaches no agent, check, setup or `verify` (the integration
/// preview's), sandbox off and on; an agent whose `pass_env` names one gets that one alone (and
/// its check with it), never the others, and never the setup or `verify`.
#[test]
fn procs_orchs_github_tokens_reach_no_agent_check_setup_or_verify() {
    for sandbox in support::sandboxes() {
        no_github_tokens(sandbox);
    }
}

fn no_github_tokens(sandbox: &str) {
    let tokens = [
        ("GH_TOKEN", "ghp_orch_test_gh"),
        ("GITHUB_TOKEN", "ghp_orch_test_github"),
        ("GH_ENTERPRISE_TOKEN", "ghp_orch_test_gh_ent"),
        ("GITHUB_ENTERPRISE_TOKEN", "ghp_orch_test_github_ent"),
    ];
    // Each process prints the tokens it has, as `seen <who> NAME=value`, to its log.
    let seen = |who: &str| {
        support::toml_array(&[
            "sh",
            "-c",
            &format!(
                "echo ran {who}; env \
                 | grep -E '^(GH_TOKEN|GITHUB_TOKEN|GH_ENTERPRISE_TOKEN|GITHUB_ENTERPRISE_TOKEN)=' \
                 | sed 's/^/seen {who} /'; true"
            ),
        ])
    };
    let run = |extra: &str| {
        let repo = Repo::bare_minimum();
        repo.write("docs/plans/a.md", &one_task("A", "Hostile work"));
        repo.manifest(
            &agent("hostile_proc_env.sh", &[]),
            &format!("report = \"orch\"\n{extra}"),
            &format!(
                "retries = 0\nsandbox = \"{sandbox}\"\ncheck = {}\nverify = {}",
                seen("check"),
                seen("verify")
            ),
            &[("a", &format!("setup = {}", seen("setup")))],
        );
        repo.commit_all("plans");
        let mut cmd = repo.orch(&["up", "--json", "a"]);
        cmd.env_remove("ORCH_SANDBOX").envs(tokens);
        let (code, out, err) = repo.run_cmd(&mut cmd);
        assert_eq!(code, 0, "orch up failed (sandbox {sandbox})\n{out}\n{err}");
        let err = err.clone();
        assert_eq!(repo.subjects("plan/a"), ["a 1.1: Hostile work"]);
        let mut lines: Vec<String> = show(&repo, "env.txt")
            .lines()
            .map(|l| format!("seen agent {l}"))
            .collect();
        let mut ran = Vec::new();
        let logs = repo.root().join(".orch/logs");
        let files = walkdir(&logs);
        for entry in &files {
            let text = std::fs::read_to_string(entry).unwrap_or_default();
            for who in ["check", "setup", "verify"] {
                if text.lines().any(|l| l == format!("ran {who}")) {
                    ran.push(who);
                }
            }
            lines.extend(
                text.lines()
                    .filter(|l| l.starts_with("seen "))
                    .map(str::to_string),
            );
        }
        lines.sort();
        lines.dedup();
        for who in ["check", "setup", "verify"] {
            assert!(
                ran.contains(&who),
                "no log of the {who} in {} (sandbox {sandbox}): {:?}\n{err}",
                logs.display(),
                files
                    .iter()
                    .map(|f| (f, std::fs::read_to_string(f).unwrap_or_default()))
                    .collect::<Vec<_>>()
            );
        }
        lines
    };
    let given = run("");
    assert_eq!(
        given,
        Vec::<String>::new(),
        "orch's GitHub tokens reached a process it runs (sandbox {sandbox})"
    );
    let allowed = run("pass_env = [\"GH_TOKEN\"]");
    assert_eq!(
        allowed,
        [
            "seen agent GH_TOKEN=ghp_orch_test_gh",
            "seen check GH_TOKEN=ghp_orch_test_gh"
        ],
        "pass_env lets GH_TOKEN (and only it) through to the agent and its check (sandbox {sandbox})"
    );
}

/// Every file below `dir`.
fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Kills the daemon a failing test leaves behind.
struct KillOnDrop(std::path::PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.0.join("pid"))
            && let Ok(pid) = pid.trim().parse::<u32>()
            && support::process_alive(pid)
        {
            support::kill("KILL", pid);
        }
    }
}

/// Live processes whose command line holds `marker`.
fn marked(marker: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|arg| arg == marker.as_bytes()))
                && support::process_alive(*pid)
        })
        .collect()
}

#[test]
fn procs_a_double_forked_descendant_ends_with_its_attempt() {
    if !landlock() {
        return;
    }
    descendants_end_with_the_attempt("on");
}

fn descendants_end_with_the_attempt(sandbox: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let beat = dir.path().canonicalize().expect("canonical");
    let _guard = KillOnDrop(beat.clone());
    let marker = format!("orch-hostile-daemon-{}", std::process::id());
    let command = agent("hostile_proc_daemon.sh", &[support::utf8(&beat), &marker]);
    let repo = Repo::bare_minimum();
    // Task 1.1 leaves the process behind; task 1.2, started once 1.1 is committed, looks for it.
    repo.write(
        "docs/plans/a.md",
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 Hostile work\n- [ ] 1.2 Look around\n",
    );
    repo.manifest(
        &command,
        &format!(
            "report = \"orch\"\nsandbox_write = [{:?}]",
            support::utf8(&beat)
        ),
        &format!("retries = 0\nsandbox = \"{sandbox}\""),
        &[("a", "")],
    );
    repo.commit_all("plans");
    let main = repo.rev("main");
    let (code, out, err) =
        repo.run_cmd(repo.orch(&["up", "--json", "a"]).env_remove("ORCH_SANDBOX"));
    assert_eq!(code, 0, "orch up failed\n{out}\n{err}");
    assert_eq!(
        repo.subjects("plan/a"),
        ["a 1.1: Hostile work", "a 1.2: Look around"]
    );
    let pid: u32 = std::fs::read_to_string(beat.join("pid"))
        .expect("the agent started its daemon")
        .trim()
        .parse()
        .expect("a pid");
    // Ended with its attempt: the next attempt no longer saw it.
    assert_eq!(
        std::fs::read_to_string(beat.join("seen-by-1.2")).expect("1.2 looked"),
        "gone\n",
        "the process left by 1.1 outlived its attempt"
    );
    // orch up has returned: the daemon is gone (a deadline for the kernel to take it down),
    // and nothing carrying the marker is alive.
    let deadline = Instant::now() + Duration::from_secs(10);
    while support::process_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the agent's double-forked process {pid} outlived orch up (heartbeat {:?})",
            std::fs::read_to_string(beat.join("heartbeat")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        marked(&marker),
        Vec::<u32>::new(),
        "a marked process is alive"
    );
    assert_eq!(repo.rev("main"), main, "main moved");
}

/// Kills every live process whose command line holds `marker` (what a failing test leaves).
struct KillMarked(String);

impl Drop for KillMarked {
    fn drop(&mut self) {
        for _ in 0..20 {
            let left = marked(&self.0);
            if left.is_empty() {
                return;
            }
            for pid in left {
                support::kill("KILL", pid);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Waits (with a deadline) until no process holds `marker` on its command line.
fn none_marked(marker: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = marked(marker);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {left:?} still alive");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The files a commit changed whose name starts with `planted`.
fn planted_in(repo: &Repo, rev: &str) -> Vec<String> {
    repo.git(&["show", "--format=", "--name-only", rev])
        .lines()
        .filter(|f| f.starts_with("planted"))
        .map(str::to_string)
        .collect()
}

/// Leftovers of an attempt that claim an identity (another plan's running attempt, the plan's
/// setup, orch's name, a fork loop claiming a running attempt) end with their attempt: gone
/// before the next attempt in the worktree starts, nothing of theirs in a later commit. With
/// Landlock (`auto`) and without (`off`): this is orch's own rule.
#[test]
fn procs_leftovers_claiming_an_identity_end_with_their_attempt() {
    for sandbox in ["auto", "off"] {
        leftovers_claiming_an_identity(sandbox);
    }
}

fn leftovers_claiming_an_identity(sandbox: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let beat = dir.path().canonicalize().expect("canonical");
    let marker = format!("orch-hostile-claim-{}-{sandbox}", std::process::id());
    let _guard = KillMarked(marker.clone());
    let command = agent("hostile_proc_claim.sh", &[support::utf8(&beat), &marker]);
    let repo = Repo::bare_minimum();
    repo.write(
        "docs/plans/a.md",
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 Hostile work\n- [ ] 1.2 Look around\n",
    );
    repo.write("docs/plans/b.md", &one_task("B", "Long work"));
    repo.manifest(
        &command,
        &format!(
            "report = \"orch\"\nsandbox_write = [{:?}]",
            support::utf8(&beat)
        ),
        &format!("retries = 0\nsandbox = \"{sandbox}\""),
        &[("a", "setup = [\"true\"]"), ("b", "")],
    );
    repo.commit_all("plans");
    let main = repo.rev("main");
    let (code, out, err) = repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
    assert_eq!(code, 0, "orch up failed ({sandbox})\n{out}\n{err}");
    assert_eq!(
        repo.subjects("plan/a"),
        ["a 1.1: Hostile work", "a 1.2: Look around"],
        "{sandbox}"
    );
    assert_eq!(repo.task("b", "1.1")["status"], "completed", "{sandbox}");
    let seen = std::fs::read_to_string(beat.join("seen-by-1.2")).expect("1.2 looked");
    assert_eq!(
        seen, "other-task gone\nsetup gone\norch gone\nfork-loop gone\n",
        "a leftover of 1.1 outlived its attempt ({sandbox})"
    );
    // Nothing of theirs in the next task's commit.
    assert_eq!(
        planted_in(&repo, "plan/a"),
        Vec::<String>::new(),
        "a leftover planted files in 1.2's commit ({sandbox})"
    );
    none_marked(&marker, &format!("a leftover outlived orch up ({sandbox})"));
    assert_eq!(repo.rev("main"), main, "main moved");
}

/// An unconfined agent that kills its wrapper first (the process that would end what it
/// leaves): what it left is still ended before the next attempt in its worktree, and plants
/// nothing. Confined (Landlock ABI 6), the kill is denied; the rest holds alike.
#[test]
fn procs_an_agent_that_kills_its_wrapper_leaves_nothing_running() {
    for sandbox in ["off", "auto"] {
        kills_its_wrapper(sandbox);
    }
}

fn kills_its_wrapper(sandbox: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let beat = dir.path().canonicalize().expect("canonical");
    let marker = format!("orch-hostile-wrapper-{}-{sandbox}", std::process::id());
    let _guard = KillMarked(marker.clone());
    let command = agent("hostile_proc_wrapper.sh", &[support::utf8(&beat), &marker]);
    let repo = Repo::bare_minimum();
    repo.write(
        "docs/plans/a.md",
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 Hostile work\n- [ ] 1.2 Look around\n",
    );
    repo.manifest(
        &command,
        &format!(
            "report = \"orch\"\nsandbox_write = [{:?}]",
            support::utf8(&beat)
        ),
        &format!("retries = 1\nsandbox = \"{sandbox}\""),
        &[("a", "setup = [\"true\"]")],
    );
    repo.commit_all("plans");
    let main = repo.rev("main");
    let (code, out, err) =
        repo.run_cmd(repo.orch(&["up", "--json", "a"]).env_remove("ORCH_SANDBOX"));
    let killed = std::fs::read_to_string(beat.join("killed")).unwrap_or_default();
    assert!(
        code == 0 || code == 5,
        "orch up did not end by itself ({sandbox}, {killed})\n{out}\n{err}"
    );
    let confined = sandbox == "auto" && landlock() && orch::sandbox::abi() >= 6;
    assert_eq!(
        killed.trim(),
        if confined {
            "kill-parent denied"
        } else {
            "kill-parent allowed"
        },
        "{sandbox}\n{out}\n{err}"
    );
    // The next attempt in the worktree (1.1's second, or 1.2) looked: the leftover was gone.
    let looks: Vec<String> = std::fs::read_dir(&beat)
        .expect("beat")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("seen-by-"))
        .collect();
    assert_eq!(looks.len(), 1, "{looks:?} ({sandbox})\n{out}");
    let seen = std::fs::read_to_string(beat.join(&looks[0])).expect("seen");
    assert_eq!(
        seen, "gone\n",
        "the leftover outlived its attempt ({sandbox}, {killed})"
    );
    // (It may write in the moments between its agent's report and its agent's exit: that is
    // the attempt's own work, in 1.1's commit.)
    let later = repo.git(&["log", "--format=%H", "--grep=^a 1.2:", "plan/a"]);
    for rev in later.lines() {
        assert_eq!(
            planted_in(&repo, rev),
            Vec::<String>::new(),
            "the leftover planted a file in 1.2's commit ({sandbox})"
        );
    }
    none_marked(
        &marker,
        &format!("the leftover outlived orch up ({sandbox})"),
    );
    assert_eq!(repo.rev("main"), main, "main moved");
}

/// The honest side: what a plan's `setup` starts in the background (a database), with no
/// `ORCH_*` variable to claim anything, keeps running for the whole run, through the attempts
/// of the plan's worktree and of new task worktrees (`parallel_tasks`), and is gone once
/// `orch up` returns.
#[test]
fn procs_a_setups_background_process_lasts_the_run_and_ends_with_it() {
    for sandbox in ["auto", "off"] {
        for parallel_tasks in [1, 2] {
            setup_keeps_its_database(sandbox, parallel_tasks);
        }
    }
}

fn setup_keeps_its_database(sandbox: &str, parallel_tasks: u32) {
    let dir = tempfile::tempdir().expect("tempdir");
    let beat = dir.path().canonicalize().expect("canonical");
    let what = format!("{sandbox}, parallel_tasks = {parallel_tasks}");
    let marker = format!(
        "orch-setup-db-{}-{sandbox}-{parallel_tasks}",
        std::process::id()
    );
    let _guard = KillMarked(marker.clone());
    let b = support::utf8(&beat);
    let repo = Repo::bare_minimum();
    repo.write(
        "docs/plans/a.md",
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two\n\n## Phase 2: Later\n- [ ] 2.1 Three\n",
    );
    repo.manifest(
        &agent("setup_daemon_agent.sh", &[b]),
        &format!("report = \"orch\"\nsandbox_write = [{b:?}]"),
        &format!("retries = 0\nsandbox = \"{sandbox}\""),
        &[(
            "a",
            &format!(
                "parallel_tasks = {parallel_tasks}\nsetup = {}",
                agent("setup_daemon.sh", &[b, &marker])
            ),
        )],
    );
    repo.commit_all("plans");
    let (code, out, err) =
        repo.run_cmd(repo.orch(&["up", "--json", "a"]).env_remove("ORCH_SANDBOX"));
    assert_eq!(code, 0, "orch up failed ({what})\n{out}\n{err}");
    let dbs = std::fs::read_to_string(beat.join("db-pids")).expect("the setup started one");
    // The plan's worktree, and each new task worktree.
    let expected = if parallel_tasks == 1 { 1 } else { 3 };
    assert!(dbs.lines().count() >= expected, "{dbs} ({what})\n{out}");
    // Task 2.1 runs once the attempts of 1.1 and 1.2 have ended: every database the setups
    // started still runs.
    let seen = std::fs::read_to_string(beat.join("db-seen-by-2.1")).expect("2.1 looked");
    assert!(
        !seen.is_empty() && seen.lines().all(|l| l.ends_with(" alive")),
        "a setup's background process did not last the run ({what}):\n{seen}"
    );
    for task in ["1.1", "1.2"] {
        let seen = std::fs::read_to_string(beat.join(format!("db-seen-by-{task}")))
            .expect("the task looked");
        assert!(!seen.contains(" gone"), "{task} ({what}): {seen}");
    }
    for t in ["1.1", "1.2", "2.1"] {
        assert_eq!(repo.task("a", t)["status"], "completed", "{t} ({what})");
    }
    none_marked(
        &marker,
        &format!("a setup's process outlived orch up ({what})"),
    );
}
