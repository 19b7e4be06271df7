//! The life of remote attempts around their run, against real `sshd` servers on loopback
//! (`support::sshd`): where each runs is shown (`orch up`'s lines, `orch top`, `orch status`),
//! from orch's own record; a host without Landlock is refused when it is first probed unless
//! its `[[host]]` says `sandbox = "off"` (the host's side is made to report no Landlock by
//! `ORCH_TEST_HOST_NO_LANDLOCK`, set by that host's `sshd` only); the refs that bring the hosts'
//! snapshots back are pruned once their work is safe here; and what a host keeps of a lost
//! attempt, of any size, comes back before it is removed there, and only then.

use crate::support;

use std::io::Read;
use std::path::Path;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use support::{Repo, sshd, wait_for};

/// What `sshd` sets on a host's side to stand for a kernel without Landlock.
const NO_LANDLOCK: &str = "ORCH_TEST_HOST_NO_LANDLOCK=1";

/// A plan of `n` tasks.
fn plan(n: usize) -> String {
    let mut text = String::from("# Plan\n\n## Phase 1: One\n");
    for i in 1..=n {
        text.push_str(&format!("- [ ] 1.{i} Step {i}\n"));
    }
    text
}

/// Writes an agent script into the lab; its path.
fn script(lab: &sshd::Lab, name: &str, body: &str) -> String {
    let dir = lab.tmp.path().join("agents");
    std::fs::create_dir_all(&dir).expect("agents");
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).expect("script");
    p.display().to_string()
}

/// A repository whose plan `p` (`tasks` tasks) runs with `executor = "ssh"` on the hosts of
/// `hosts` (TOML) with the agent `sh <agent>`.
fn repo_with(hosts: &str, tasks: usize, agent: &str, extra: &str) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    repo.write("docs/plans/p.md", &plan(tasks));
    repo.write(
        "plans.toml",
        &format!(
            "{hosts}[defaults]\nexecutor = \"ssh\"\nnetwork = \"open\"\nmax_agents = 4\nretries = 0\nagent = \"a\"\n\n\
             [agents.a]\ncommand = [\"sh\", \"{agent}\"]\n{extra}\n\n[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n"
        ),
    );
    repo.commit_all("plans");
    repo
}

fn up_cmd(repo: &Repo, lab: &sshd::Lab, args: &[&str]) -> std::process::Command {
    let mut cmd = repo.orch(&[&["up"], args].concat());
    cmd.env("PATH", lab.path());
    cmd
}

/// The attempts a host keeps in its `dir`.
fn kept(lab: &sshd::Lab, host: &str) -> Vec<String> {
    std::fs::read_dir(lab.server(host).dir.join("attempts"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn refs(repo: &Repo, prefix: &str) -> Vec<String> {
    repo.git(&["for-each-ref", "--format=%(refname)", prefix])
        .lines()
        .map(str::to_string)
        .collect()
}

/// `orch top` in an 80×24 pseudo-terminal until its screen shows `want` (or the deadline).
fn top_shows(repo: &Repo, lab: &sshd::Lab, want: &str) -> String {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("pty");
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_orch"));
    cmd.arg("top");
    cmd.cwd(repo.root());
    cmd.env_clear();
    cmd.env("PWD", repo.root());
    cmd.env("PATH", lab.path());
    cmd.env("HOME", repo.home());
    cmd.env("TERM", "xterm-256color");
    cmd.env("GIT_CONFIG_NOSYSTEM", "1");
    let mut child = pair.slave.spawn_command(cmd).expect("spawn orch top");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let mut writer = pair.master.take_writer().expect("writer");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut parser = vt100::Parser::new(
        std::num::NonZero::new(24).expect("rows"),
        std::num::NonZero::new(80).expect("cols"),
        0,
    );
    let deadline = Instant::now() + support::TIMEOUT;
    let screen = loop {
        let text = parser.screen().contents();
        if text.contains(want) || Instant::now() >= deadline {
            break text;
        }
        if let Ok(b) = rx.recv_timeout(Duration::from_millis(200)) {
            parser.process(&b);
        }
    };
    let _ = std::io::Write::write_all(&mut writer, b"q");
    let _ = child.kill();
    let _ = child.wait();
    drop(pair.master);
    screen
}

#[test]
fn the_host_of_a_running_attempt_is_shown_by_orch_up_orch_top_and_orch_status() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    let journal = lab.tmp.path().join("started");
    let go = lab.tmp.path().join("go");
    let agent = script(
        &lab,
        "wait.sh",
        &format!(
            "echo \"$ORCH_TASK\" > \"task-$ORCH_TASK.txt\"\necho started >> {j}\n\
             while [ ! -e {go} ]; do sleep 0.02; done\nexit 0\n",
            j = journal.display(),
            go = go.display()
        ),
    );
    let repo = repo_with(&lab.host_toml(1), 1, &agent, "");
    // The plain lines of `orch up`, as a person reading a log sees them.
    let child = up_cmd(&repo, &lab, &[]).spawn().expect("orch up");
    wait_for("the attempt on h1", || journal.exists());
    // `orch status`: the host, from orch's record.
    let (code, out, err) = repo.run(&["status", "--plan", "p", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["tasks"][0]["remote_host"], "h1", "{out}");
    // `orch top`: the running row names its host within 80 columns.
    let screen = top_shows(&repo, &lab, "@h1 ");
    let row = screen
        .lines()
        .find(|l| l.contains(" p ") && l.contains("1.1"))
        .unwrap_or_else(|| panic!("no running row:\n{screen}"));
    assert!(row.contains("@h1 "), "{screen}");
    assert!(screen.lines().all(|l| l.chars().count() <= 80), "{screen}");
    std::fs::write(&go, "").expect("go");
    let out = support::wait_within(child, repo.timeout(), "orch up");
    let (code, stdout, stderr) = support::code_out_err(&out);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.ends_with("p 1.1 runs on host h1 (attempt 1)")),
        "{stdout}"
    );
    // The event, in the run's event log (what `--json` and `[[notify]]` get).
    let events =
        std::fs::read_to_string(repo.root().join(".orch/state/.events.jsonl")).expect("events");
    let on_host: Vec<serde_json::Value> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "task_on_host")
        .collect();
    assert_eq!(on_host.len(), 1, "{events}");
    assert_eq!(
        (
            &on_host[0]["plan"],
            &on_host[0]["task"],
            &on_host[0]["attempt"],
            &on_host[0]["host"]
        ),
        (
            &serde_json::json!("p"),
            &serde_json::json!("1.1"),
            &serde_json::json!(1),
            &serde_json::json!("h1")
        )
    );
    assert_eq!(repo.statuses("p"), vec![("1.1".into(), "completed".into())]);
}

/// A `[[host]]` table of the lab's server `name`, with `extra` lines.
fn host_table(lab: &sshd::Lab, name: &str, extra: &str) -> String {
    format!(
        "[[host]]\nname = \"{name}\"\nssh = \"{name}\"\nslots = 2\ndir = \"{}\"\n{extra}\n",
        lab.server(name).dir.display()
    )
}

#[test]
fn a_host_without_landlock_is_refused_when_probed_and_its_tasks_go_to_the_other_host() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start_with_env(&["h1", "h2"], &[("h1", NO_LANDLOCK)]);
    let agent = script(
        &lab,
        "ok.sh",
        "echo \"$ORCH_TASK\" > \"task-$ORCH_TASK.txt\"\nexit 0\n",
    );
    // h1 first: without the refusal, the attempts would go there first.
    let hosts = format!(
        "{}{}",
        host_table(&lab, "h1", ""),
        host_table(&lab, "h2", "")
    );
    // The agents' own sandbox on and off: the host's rule is orch's, whatever the agent's.
    for sandbox in ["on", "off"] {
        let repo = repo_with(&hosts, 3, &agent, &format!("sandbox = \"{sandbox}\""));
        let mut cmd = up_cmd(&repo, &lab, &["--json"]);
        cmd.env_remove("ORCH_SANDBOX");
        let (code, out, err) = repo.run_cmd(&mut cmd);
        assert_eq!(code, 0, "{sandbox}: stdout:\n{out}\nstderr:\n{err}");
        let note = err
            .lines()
            .find(|l| l.starts_with("note: host `h1` cannot run agents"))
            .unwrap_or_else(|| panic!("{sandbox}: no note on h1:\n{err}"));
        assert!(note.contains("no Landlock"), "{note}");
        assert!(
            note.contains("sandbox = \\\"off\\\"") || note.contains("sandbox = \"off\""),
            "{note}"
        );
        assert!(!err.contains("host `h2` cannot"), "{err}");
        for t in ["1.1", "1.2", "1.3"] {
            assert_eq!(repo.git(&["show", &format!("plan/p:task-{t}.txt")]), t);
            let log = std::fs::read_to_string(repo.root().join(format!(".orch/logs/p/{t}.log")))
                .expect("log");
            assert!(log.contains("=== orch: on host `h2` ==="), "{log}");
            assert!(!log.contains("on host `h1`"), "{log}");
        }
        // No attempt ever began on h1.
        assert!(kept(&lab, "h1").is_empty() && !lab.server("h1").dir.join("attempts").exists());
    }
}

#[test]
fn a_host_without_landlock_that_answers_only_later_is_refused_by_the_first_attempt_that_reaches_it()
{
    if !sshd::available() {
        return;
    }
    let mut lab = sshd::Lab::start_with_env(&["h1", "h2"], &[("h1", NO_LANDLOCK)]);
    let go = lab.tmp.path().join("go");
    let journal = lab.tmp.path().join("started");
    // Both plans' agents wait for the test's word: one holds h2's one slot, the other waits.
    let agent = script(
        &lab,
        "wait.sh",
        &format!(
            "echo \"$ORCH_PLAN\" > \"done-$ORCH_PLAN.txt\"\necho \"$ORCH_PLAN\" >> {j}\n\
             while [ ! -e {go} ]; do sleep 0.02; done\nexit 0\n",
            j = journal.display(),
            go = go.display()
        ),
    );
    let hosts = format!(
        "{}{}",
        host_table(&lab, "h1", ""),
        host_table(&lab, "h2", "").replace("slots = 2", "slots = 1")
    );
    let repo = repo_with(&hosts, 1, &agent, "");
    let toml = std::fs::read_to_string(repo.root().join("plans.toml")).expect("toml");
    repo.write(
        "plans.toml",
        &format!("{toml}\n[[plan]]\nname = \"q\"\nfile = \"docs/plans/p.md\"\n"),
    );
    repo.commit_all("q");
    // h1 does not answer when the run starts: it is not probed then.
    lab.stop("h1");
    let child = up_cmd(&repo, &lab, &["--json"]).spawn().expect("orch up");
    wait_for("an attempt on h2", || journal.exists());
    lab.restart("h1");
    // Once h1's back-off has passed, the waiting attempt reaches it, probes it, and is refused.
    let logs = || {
        ["p", "q"]
            .iter()
            .map(|p| {
                std::fs::read_to_string(repo.root().join(format!(".orch/logs/{p}/1.1.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
    };
    wait_for("h1 refused by an attempt", || {
        logs()
            .iter()
            .any(|l| l.contains("host `h1` cannot run agents"))
    });
    std::fs::write(&go, "").expect("go");
    let out = support::wait_within(child, repo.timeout(), "orch up");
    let (code, stdout, stderr) = support::code_out_err(&out);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    for (p, log) in ["p", "q"].iter().zip(logs()) {
        assert_eq!(repo.statuses(p), vec![("1.1".into(), "completed".into())]);
        assert!(log.contains("=== orch: on host `h2` ==="), "{log}");
        assert!(!log.contains("on host `h1`"), "{log}");
    }
    // No attempt ever began on h1, and `orch up` never said it ran there.
    assert!(!lab.server("h1").dir.join("attempts").exists());
    // (h1 is named as lost at the start and back once it answers, never as a task's host.)
    assert!(
        !stdout
            .lines()
            .any(|l| l.contains("\"event\":\"task_on_host\"") && l.contains("\"host\":\"h1\"")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("\"event\":\"host_lost\"") && l.contains("\"host\":\"h1\"")),
        "{stdout}"
    );
}

#[test]
fn a_run_whose_every_host_lacks_landlock_is_refused_and_starts_nothing() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start_with_env(&["h1", "h2"], &[("h1", NO_LANDLOCK), ("h2", NO_LANDLOCK)]);
    let agent = script(&lab, "ok.sh", "echo x > x.txt\n");
    // One host, then both: the run is refused, exit 6, naming the plan, its hosts and the fix.
    for hosts in [
        host_table(&lab, "h1", ""),
        format!(
            "{}{}",
            host_table(&lab, "h1", ""),
            host_table(&lab, "h2", "")
        ),
    ] {
        let repo = repo_with(&hosts, 1, &agent, "");
        let before = repo.git(&["for-each-ref", "--format=%(refname) %(objectname)"]);
        let (code, out, err) = repo.run_cmd(&mut up_cmd(&repo, &lab, &[]));
        assert_eq!(code, 6, "stdout:\n{out}\nstderr:\n{err}");
        assert!(
            err.contains("no host can run the agents of plan `p`"),
            "{err}"
        );
        assert!(err.contains("`h1` cannot run agents"), "{err}");
        assert!(err.contains("sandbox = \"off\""), "{err}");
        // Nothing started: no plan branch, no worktree, the task still pending.
        assert_eq!(
            repo.git(&["for-each-ref", "--format=%(refname) %(objectname)"]),
            before
        );
        assert!(!repo.root().join(".orch/worktrees/p").exists());
        assert!(
            repo.statuses("p").iter().all(|(_, s)| s == "pending"),
            "{:?}",
            repo.statuses("p")
        );
        assert!(kept(&lab, "h1").is_empty());
        // `orch hosts` says the same of each host (exit 5).
        let mut cmd = repo.orch(&["hosts"]);
        cmd.env("PATH", lab.path());
        let (code, out, err) = repo.run_cmd(&mut cmd);
        assert_eq!(code, 5, "{out}\n{err}");
        assert!(out.contains("h1"), "{out}");
    }
}

#[test]
fn a_host_without_landlock_whose_table_says_sandbox_off_runs_its_agents_unconfined_and_says_so() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start_with_env(&["h1"], &[("h1", NO_LANDLOCK)]);
    let outside = lab.tmp.path().join("outside");
    // Writes outside its worktree: possible only unconfined.
    let agent = script(
        &lab,
        "out.sh",
        &format!(
            "echo \"$ORCH_TASK\" > \"task-$ORCH_TASK.txt\"\necho x > {}\nexit 0\n",
            outside.display()
        ),
    );
    let repo = repo_with(
        &host_table(&lab, "h1", "sandbox = \"off\""),
        1,
        &agent,
        "sandbox = \"on\"",
    );
    let mut cmd = up_cmd(&repo, &lab, &["--json"]);
    cmd.env_remove("ORCH_SANDBOX");
    let (code, out, err) = repo.run_cmd(&mut cmd);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("note: host `h1` has no Landlock: its agents run unconfined")),
        "{err}"
    );
    assert_eq!(repo.statuses("p"), vec![("1.1".into(), "completed".into())]);
    assert_eq!(repo.git(&["show", "plan/p:task-1.1.txt"]), "1.1");
    assert!(outside.exists(), "the agent ran unconfined there");
}

#[test]
fn the_refs_that_bring_hosts_snapshots_back_are_pruned_once_their_work_is_safe_here() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    let fixed = lab.tmp.path().join("fixed");
    // 1.1 succeeds; 1.2 writes its file and fails until `fixed` exists.
    let agent = script(
        &lab,
        "mixed.sh",
        &format!(
            "echo \"$ORCH_TASK\" > \"task-$ORCH_TASK.txt\"\n\
             if [ \"$ORCH_TASK\" = 1.2 ] && [ ! -e {f} ]; then exit 3; fi\nexit 0\n",
            f = fixed.display()
        ),
    );
    let repo = repo_with(&lab.host_toml(1), 2, &agent, "");
    let (code, out, err) = repo.run_cmd(&mut up_cmd(&repo, &lab, &[]));
    assert_eq!(code, 5, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        repo.statuses("p"),
        vec![
            ("1.1".into(), "completed".into()),
            ("1.2".into(), "failed".into())
        ]
    );
    // The landed task's and the failed task's snapshot refs are gone; the failed one's work
    // is saved where orch saves a failed attempt's.
    assert_eq!(refs(&repo, "refs/orch/remote/"), Vec::<String>::new());
    assert_eq!(
        repo.git(&["show", "refs/orch/attempts/p/1.2/1:task-1.2.txt"]),
        "1.2"
    );
    // What a run killed before it settled its attempts leaves: one snapshot whose work is on
    // the plan branch (1.1's), one whose work is nowhere else.
    let base = repo.git(&["rev-parse", "plan/p~1"]);
    let safe = repo.git(&[
        "commit-tree",
        "plan/p^{tree}",
        "-p",
        &base,
        "-m",
        "snapshot",
    ]);
    repo.git(&["update-ref", "refs/orch/remote/p/1.1/7", &safe]);
    let lone = {
        let file = lab.tmp.path().join("lone.txt");
        std::fs::write(&file, "only here\n").expect("lone");
        let blob = repo.git(&["hash-object", "-w", &file.display().to_string()]);
        let index = lab.tmp.path().join("lone.index");
        let with_index = |args: &[&str]| {
            let o = std::process::Command::new("git")
                .current_dir(repo.root())
                .args(args)
                .env("GIT_INDEX_FILE", &index)
                .output()
                .expect("git");
            assert!(o.status.success(), "{args:?}");
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        };
        with_index(&["read-tree", &base]);
        with_index(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("100644,{blob},lone.txt"),
        ]);
        let tree = with_index(&["write-tree"]);
        repo.git(&["commit-tree", &tree, "-p", &base, "-m", "snapshot"])
    };
    repo.git(&["update-ref", "refs/orch/remote/p/1.2/8", &lone]);
    std::fs::write(&fixed, "").expect("fixed");
    let (code, out, err) = repo.run_cmd(&mut up_cmd(&repo, &lab, &[]));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        repo.statuses("p"),
        vec![
            ("1.1".into(), "completed".into()),
            ("1.2".into(), "completed".into())
        ]
    );
    assert_eq!(refs(&repo, "refs/orch/remote/"), Vec::<String>::new());
    // The lone work was saved before its ref went; the safe one was not copied.
    assert_eq!(
        repo.git(&["show", "refs/orch/attempts/p/1.2/remote-8:lone.txt"]),
        "only here"
    );
    assert!(refs(&repo, "refs/orch/attempts/p/1.1/").is_empty());
    assert!(
        out.contains("refs/orch/attempts/p/1.2/remote-8")
            || err.contains("refs/orch/attempts/p/1.2/remote-8"),
        "said: {out}\n{err}"
    );
}

/// Polls until the host keeps an abandoned attempt; its directory.
fn abandoned(lab: &sshd::Lab, host: &str) -> std::path::PathBuf {
    let attempts = lab.server(host).dir.join("attempts");
    let mut found = None;
    wait_for("the host's abandoned attempt", || {
        found = kept(lab, host)
            .into_iter()
            .map(|k| attempts.join(k))
            .find(|d| d.join("abandoned").exists());
        found.is_some()
    });
    found.expect("abandoned")
}

fn git_hash(path: &Path) -> String {
    let o = std::process::Command::new("git")
        .args(["hash-object", "--"])
        .arg(path)
        .output()
        .expect("git");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn a_lost_attempts_large_snapshot_comes_back_before_the_host_removes_it_and_only_then() {
    if !sshd::available() {
        return;
    }
    // Each variant: what the host holds of the lost attempt comes back whole (kept = false), or
    // cannot be taken (the host's git cannot bundle it: its snapshot ref gone from the host's
    // cache) and stays there (kept = true).
    for keep in [false, true] {
        let mut lab = sshd::Lab::start(&["h1"]);
        let journal = lab.tmp.path().join("started");
        let go = lab.tmp.path().join("go");
        let copy = lab.tmp.path().join("big.copy");
        // The first attempt writes 3 MiB that do not compress, and waits; the next one writes
        // `task.txt`.
        let agent = script(
            &lab,
            "late.sh",
            &format!(
                "if [ ! -e {go} ]; then head -c 3145728 /dev/urandom > big.bin; cp big.bin {copy}; \
                 echo started >> {j}; while [ ! -e {go} ]; do sleep 0.02; done; exit 0; fi\n\
                 echo \"$ORCH_TASK\" > task.txt\n",
                j = journal.display(),
                go = go.display(),
                copy = copy.display()
            ),
        );
        let repo = repo_with(&lab.host_toml(1), 1, &agent, "");
        let child = up_cmd(&repo, &lab, &["--json"]).spawn().expect("orch up");
        wait_for("the first attempt", || journal.exists());
        // The connection fails; the host keeps what ran there and answers again.
        lab.cut_connections("h1");
        let dir = abandoned(&lab, "h1");
        if keep {
            // The host's side cannot make the bundle: the work cannot come back.
            let key = dir.file_name().expect("key").to_string_lossy().into_owned();
            let caches: Vec<_> = std::fs::read_dir(lab.server("h1").dir.join("repos"))
                .expect("the host's caches")
                .flatten()
                .map(|e| e.path())
                .collect();
            assert_eq!(caches.len(), 1, "{caches:?}");
            let gone = std::process::Command::new("git")
                .arg(format!("--git-dir={}", caches[0].display()))
                .args(["update-ref", "-d", &format!("refs/orch/snap/{key}")])
                .status()
                .expect("git");
            assert!(gone.success());
        }
        std::fs::write(&go, "").expect("go");
        let out = support::wait_within(child, repo.timeout(), "orch up");
        let (code, stdout, stderr) = support::code_out_err(&out);
        assert_eq!(code, 0, "{keep}: stdout:\n{stdout}\nstderr:\n{stderr}");
        assert_eq!(repo.statuses("p"), vec![("1.1".into(), "completed".into())]);
        let saved = refs(&repo, "refs/orch/attempts/lost/");
        let key = dir.file_name().expect("key").to_string_lossy().into_owned();
        if keep {
            assert!(saved.is_empty(), "{saved:?}");
            assert!(
                dir.join("abandoned").exists(),
                "kept on the host: {:?}",
                kept(&lab, "h1")
            );
            assert!(kept(&lab, "h1").contains(&key));
        } else {
            assert_eq!(saved, vec![format!("refs/orch/attempts/lost/h1/{key}")]);
            let blob = repo.git(&["rev-parse", &format!("{}:big.bin", saved[0])]);
            assert_eq!(blob, git_hash(&copy), "the whole file came back");
            assert!(!kept(&lab, "h1").contains(&key), "{:?}", kept(&lab, "h1"));
        }
        // Never landed.
        assert!(
            !repo
                .git(&["ls-tree", "--name-only", "plan/p"])
                .contains("big.bin")
        );
    }
}
