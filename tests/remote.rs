//! Attempts of `executor = "ssh"` plans run on `[[host]]` machines, against real `sshd`
//! servers on loopback (`support::sshd`): the code goes to each host as git bundles over the
//! shared connection, the agent runs there in a worktree of the host's cache (confined by
//! Landlock where the host has it), and its work comes back as a bundle that orch checks and
//! commits on the plan branch here, with the lead repository's identity.

use crate::support;

use std::path::Path;

use support::{Repo, sshd};

/// A plan of `n` tasks.
pub(crate) fn plan(n: usize) -> String {
    let mut text = String::from("# Plan\n\n## Phase 1: One\n");
    for i in 1..=n {
        text.push_str(&format!("- [ ] 1.{i} Step {i}\n"));
    }
    text
}

/// Writes an agent script into `dir`; its path.
fn script(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).expect("script");
    p.display().to_string()
}

/// A repository whose plans (`names`, `tasks` each) run with `executor = "ssh"` on the lab's
/// hosts (`slots` each) with the agent `command`.
fn repo_on(
    lab: &sshd::Lab,
    names: &[&str],
    tasks: usize,
    slots: usize,
    command: &str,
    extra: &str,
) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    let mut toml = format!(
        "{}[defaults]\nexecutor = \"ssh\"\nnetwork = \"open\"\nmax_agents = 8\nretries = 0\nagent = \"a\"\n\n[agents.a]\ncommand = {command}\n{extra}\n",
        lab.host_toml(slots)
    );
    for n in names {
        repo.write(&format!("docs/plans/{n}.md"), &plan(tasks));
        toml.push_str(&format!(
            "\n[[plan]]\nname = \"{n}\"\nfile = \"docs/plans/{n}.md\"\n"
        ));
    }
    repo.write("plans.toml", &toml);
    repo.commit_all("plans");
    repo
}

pub(crate) fn up(repo: &Repo, lab: &sshd::Lab) -> (i32, String, String) {
    let mut cmd = repo.orch(&["up", "--json"]);
    cmd.env("PATH", lab.path());
    repo.run_cmd(&mut cmd)
}

#[test]
fn a_task_of_an_ssh_plan_runs_on_its_host_and_lands_on_the_plan_branch_here() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    let bin = lab.tmp.path().join("agents");
    std::fs::create_dir_all(&bin).expect("agents");
    // Writes a file, and reports the task done through orch's report channel.
    let agent = script(
        &bin,
        "agent.sh",
        "echo \"$ORCH_TASK on $(pwd)\" > \"task-$ORCH_TASK.txt\"\necho agent-said-hello\nexec \"$ORCH_BIN\" task done \"$ORCH_TASK\"\n",
    );
    let repo = repo_on(
        &lab,
        &["p"],
        2,
        1,
        &format!("[\"sh\", \"{agent}\"]"),
        "report = \"orch\"",
    );
    let (code, out, err) = up(&repo, &lab);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let statuses = repo.statuses("p");
    assert_eq!(statuses.len(), 2, "{statuses:?}\n{out}\n{err}");
    assert!(
        statuses.iter().all(|(_, s)| s == "completed"),
        "{statuses:?}\n{out}\n{err}"
    );
    // Each task's commit on the plan branch here, with the file the agent wrote there.
    let subjects = repo.subjects("plan/p");
    assert!(subjects.iter().any(|s| s.contains("1.1")), "{subjects:?}");
    assert!(subjects.iter().any(|s| s.contains("1.2")), "{subjects:?}");
    let file = repo.git(&["show", "plan/p:task-1.2.txt"]);
    // The agent ran in the worktree on the host, under its `dir`.
    assert!(
        file.contains(&lab.server("h1").dir.display().to_string()),
        "{file}"
    );
    // The lead's identity, whatever the host's git says.
    let author = repo.git(&["log", "-1", "--format=%an <%ae>|%cn <%ce>", "plan/p"]);
    let name = repo.git(&["config", "user.name"]);
    let email = repo.git(&["config", "user.email"]);
    assert_eq!(author, format!("{name} <{email}>|{name} <{email}>"));
    // The host's attempt directories are removed once their work is here.
    let attempts = lab.server("h1").dir.join("attempts");
    let left: Vec<_> = std::fs::read_dir(&attempts)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn an_agent_on_a_host_cannot_write_outside_its_remote_worktree() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    let bin = lab.tmp.path().join("agents");
    std::fs::create_dir_all(&bin).expect("agents");
    let outside = lab.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).expect("outside");
    let dir = lab.server("h1").dir.clone();
    // Each way out: an absolute path, `..` from the worktree, a symbolic link in the worktree,
    // the host's cache of the repository and orch's copy there; what each did is written in the
    // worktree (and so comes back on the plan branch).
    let agent = script(
        &bin,
        "escape.sh",
        &format!(
            "try() {{ if ( eval \"$2\" ) 2>/dev/null; then echo \"$1 written\"; else echo \"$1 denied\"; fi >> tried.txt; }}\n\
             try absolute 'echo x > {out}/abs'\n\
             try dotdot 'echo x > ../../dotdot'\n\
             ln -s {out} link\n\
             try symlink 'echo x > link/through-link'\n\
             try cache 'for c in {dir}/repos/*.git; do echo x > \"$c/planted\"; done'\n\
             try orch 'for o in {dir}/bin/orch-*; do echo x >> \"$o\"; done'\n\
             try chmod-orch 'for o in {dir}/bin/orch-*; do chmod 000 \"$o\"; done'\n\
             try chmod-cache 'for c in {dir}/repos/*.git; do chmod 000 \"$c\"; done'\n\
             try chmod-outside 'chmod 000 {out}'\n\
             try touch-orch 'for o in {dir}/bin/orch-*; do touch -d 2000-01-01 \"$o\"; done'\n\
             rm -f link\n\
             exit 0\n",
            out = outside.display(),
            dir = dir.display(),
        ),
    );
    let repo = repo_on(
        &lab,
        &["p"],
        1,
        1,
        &format!("[\"sh\", \"{agent}\"]"),
        "sandbox = \"on\"",
    );
    use std::os::unix::fs::MetadataExt as _;
    let outside_mode = std::fs::metadata(&outside).expect("outside").mode();
    let mut cmd = repo.orch(&["up", "--json"]);
    cmd.env("PATH", lab.path()).env_remove("ORCH_SANDBOX");
    let (code, out, err) = repo.run_cmd(&mut cmd);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let tried = repo.git(&["show", "plan/p:tried.txt"]);
    // Mode bits and times too (Landlock alone does not control them: `chmod 000` of orch's copy
    // there made the host fail for every plan after).
    for way in [
        "absolute",
        "dotdot",
        "symlink",
        "cache",
        "orch",
        "chmod-orch",
        "chmod-cache",
        "chmod-outside",
        "touch-orch",
    ] {
        assert!(tried.contains(&format!("{way} denied")), "{way}: {tried}");
    }
    assert!(!outside.join("abs").exists());
    assert!(!outside.join("through-link").exists());
    assert!(!dir.join("attempts").join("dotdot").exists());
    let planted = std::fs::read_dir(dir.join("repos"))
        .expect("repos")
        .flatten()
        .any(|e| e.path().join("planted").exists());
    assert!(!planted);
    assert_eq!(
        std::fs::metadata(&outside).expect("outside").mode(),
        outside_mode,
        "outside's mode changed"
    );
    for e in std::fs::read_dir(dir.join("bin")).expect("bin").flatten() {
        let m = e.metadata().expect("orch's copy");
        assert_ne!(m.mode() & 0o777, 0, "{:?} made unreadable", e.path());
        assert!(m.mtime() > 946_684_800 + 86_400, "{:?} touched", e.path());
    }
}

/// Polls `cond` until it holds (60 s).
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn plans_spread_over_two_hosts_and_a_host_that_dies_loses_nothing() {
    if !sshd::available() {
        return;
    }
    let mut lab = sshd::Lab::start(&["h1", "h2"]);
    let bin = lab.tmp.path().join("agents");
    std::fs::create_dir_all(&bin).expect("agents");
    let journal = lab.tmp.path().join("started");
    let go = lab.tmp.path().join("go");
    // Writes its file, says where it runs, and waits for the test's word.
    let agent = script(
        &bin,
        "wait.sh",
        &format!(
            "echo \"$ORCH_TASK\" > \"task-$ORCH_TASK.txt\"\n\
             echo \"$ORCH_PLAN $ORCH_TASK $(pwd)\" >> {j}\n\
             while [ ! -e {go} ]; do sleep 0.02; done\nexit 0\n",
            j = journal.display(),
            go = go.display()
        ),
    );
    let repo = repo_on(
        &lab,
        &["p", "q", "r"],
        2,
        1,
        &format!("[\"sh\", \"{agent}\"]"),
        "",
    );
    let mut cmd = repo.orch(&["up", "--json"]);
    cmd.env("PATH", lab.path());
    let child = cmd.spawn().expect("orch up");
    let h1 = lab.server("h1").dir.display().to_string();
    let h2 = lab.server("h2").dir.display().to_string();
    let lines = || std::fs::read_to_string(&journal).unwrap_or_default();
    // One attempt on each host at once (one slot each): the third plan waits.
    wait_for("an attempt on each host", || {
        let l = lines();
        l.contains(&h1) && l.contains(&h2)
    });
    assert_eq!(lines().lines().count(), 2, "{}", lines());
    let on_h1 = lines()
        .lines()
        .find(|l| l.contains(&h1))
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .expect("on h1");
    // `orch status` shows where each running attempt runs, from orch's own record.
    let mut seen = Vec::new();
    for p in ["p", "q", "r"] {
        let (code, out, err) = repo.run(&["status", "--plan", p, "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        for t in v["tasks"].as_array().expect("tasks") {
            if let Some(h) = t["remote_host"].as_str() {
                seen.push(format!("{p} {} {h}", t["id"].as_str().unwrap_or("")));
            }
        }
        let (_, text, _) = repo.run(&["status", "--plan", p]);
        for line in &seen {
            let mut w = line.split(' ');
            if w.next() == Some(p) {
                let (id, h) = (w.next().unwrap_or(""), w.next().unwrap_or(""));
                assert!(text.contains(&format!("{id} runs on host {h}")), "{text}");
            }
        }
    }
    seen.sort();
    let hosts: Vec<&str> = seen.iter().filter_map(|l| l.rsplit(' ').next()).collect();
    assert!(hosts.contains(&"h1") && hosts.contains(&"h2"), "{seen:?}");
    // h1 dies mid-attempt.
    lab.kill_host("h1");
    std::fs::write(&go, "").expect("go");
    let out = support::wait_within(child, repo.timeout(), "orch up");
    let (code, stdout, stderr) = support::code_out_err(&out);
    assert_eq!(
        code,
        0,
        "stdout:\n{stdout}\nstderr:\n{stderr}\njournal:\n{}",
        lines()
    );
    // Every task of every plan completed, its commit on its plan branch here.
    for p in ["p", "q", "r"] {
        let statuses = repo.statuses(p);
        assert_eq!(statuses.len(), 2, "{p}: {statuses:?}");
        assert!(
            statuses.iter().all(|(_, s)| s == "completed"),
            "{p}: {statuses:?}"
        );
        for t in ["1.1", "1.2"] {
            assert_eq!(repo.git(&["show", &format!("plan/{p}:task-{t}.txt")]), t);
        }
    }
    // The attempt lost with h1 ran again on h2, and used no retry (`retries = 0`).
    let again = lines()
        .lines()
        .filter(|l| l.starts_with(&format!("{on_h1} ")))
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert_eq!(again.len(), 2, "{again:?}");
    assert!(again[1].contains(&h2), "{again:?}");
}

#[test]
fn a_host_that_answers_nothing_is_reported_by_orch_up_and_the_run_goes_on_with_the_others() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    // A port where nothing listens, and one that accepts the connection and says nothing.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mute = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mute_port = mute.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in mute.incoming() {
            held.push(c);
        }
    });
    let gone = lab.tmp.path().join("gone");
    let extra_hosts = format!(
        "[[host]]\nname = \"gone\"\nssh = \"127.0.0.1\"\nport = {closed}\ndir = \"{g}\"\n\n\
         [[host]]\nname = \"mute\"\nssh = \"127.0.0.1\"\nport = {mute_port}\ndir = \"{g}\"\n\n",
        g = gone.display()
    );
    let bin = lab.tmp.path().join("agents");
    std::fs::create_dir_all(&bin).expect("agents");
    let agent = script(
        &bin,
        "ok.sh",
        "echo \"$ORCH_TASK\" > \"task-$ORCH_TASK.txt\"\n",
    );
    let repo = Repo::builder().identity_in_config().build();
    repo.write("docs/plans/p.md", &plan(2));
    repo.write(
        "plans.toml",
        &format!(
            "{extra_hosts}{}[defaults]\nexecutor = \"ssh\"\nnetwork = \"open\"\nretries = 0\nagent = \"a\"\n\n[agents.a]\ncommand = [\"sh\", \"{agent}\"]\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nhosts = [\"gone\", \"mute\", \"h1\"]\n",
            lab.host_toml(1)
        ),
    );
    repo.commit_all("plans");
    let (code, out, err) = up(&repo, &lab);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    for h in ["gone", "mute"] {
        let note = err
            .lines()
            .find(|l| {
                l.starts_with("note: host `") && l.contains(&format!("`{h}` does not answer"))
            })
            .unwrap_or_else(|| panic!("{h}: {err}"));
        // The host is named once (not again inside the cause).
        assert_eq!(note.matches(&format!("`{h}`")).count(), 1, "{note}");
    }
    assert!(!err.contains("`h1` does not answer"), "{err}");
    for t in ["1.1", "1.2"] {
        assert_eq!(repo.git(&["show", &format!("plan/p:task-{t}.txt")]), t);
    }
    // Both tasks ran on h1 (said in their logs), nothing on this machine instead.
    for t in ["1.1", "1.2"] {
        let log = std::fs::read_to_string(repo.root().join(format!(".orch/logs/p/{t}.log")))
            .expect("log");
        assert!(log.contains("=== orch: on host `h1` ==="), "{log}");
    }
    assert!(!gone.exists());
}

#[test]
fn the_late_work_of_an_attempt_lost_with_its_connection_is_saved_and_never_landed() {
    if !sshd::available() {
        return;
    }
    let mut lab = sshd::Lab::start(&["h1"]);
    let bin = lab.tmp.path().join("agents");
    std::fs::create_dir_all(&bin).expect("agents");
    let journal = lab.tmp.path().join("started");
    let go = lab.tmp.path().join("go");
    // The first attempt writes `first.txt` and waits; the next one writes `task.txt`.
    let agent = script(
        &bin,
        "late.sh",
        &format!(
            "if [ ! -e {go} ]; then echo first > first.txt; echo started >> {j}; \
             while [ ! -e {go} ]; do sleep 0.02; done; exit 0; fi\n\
             echo \"$ORCH_TASK\" > task.txt\n",
            j = journal.display(),
            go = go.display()
        ),
    );
    let repo = repo_on(&lab, &["p"], 1, 1, &format!("[\"sh\", \"{agent}\"]"), "");
    let mut cmd = repo.orch(&["up", "--json"]);
    cmd.env("PATH", lab.path());
    let child = cmd.spawn().expect("orch up");
    wait_for("the first attempt", || journal.exists());
    // The connection fails; the host keeps what ran there and answers again.
    lab.cut_connections("h1");
    std::fs::write(&go, "").expect("go");
    let out = support::wait_within(child, repo.timeout(), "orch up");
    let (code, stdout, stderr) = support::code_out_err(&out);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        repo.statuses("p"),
        vec![("1.1".to_string(), "completed".to_string())]
    );
    // Landed once, by the attempt that ran again; the lost one's work only saved.
    assert_eq!(
        repo.subjects("plan/p").len(),
        1,
        "{:?}",
        repo.subjects("plan/p")
    );
    assert!(
        repo.git(&["ls-tree", "--name-only", "plan/p"])
            .contains("task.txt")
    );
    assert!(
        !repo
            .git(&["ls-tree", "--name-only", "plan/p"])
            .contains("first.txt")
    );
    let saved = repo.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/orch/attempts/lost/",
    ]);
    let saved: Vec<&str> = saved.lines().collect();
    assert_eq!(saved.len(), 1, "{saved:?}\n{stderr}");
    assert_eq!(
        repo.git(&["show", &format!("{}:first.txt", saved[0])]),
        "first"
    );
    // The host's copy is removed once it is safe here.
    let attempts = lab.server("h1").dir.join("attempts");
    let left: Vec<_> = std::fs::read_dir(&attempts)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn the_work_a_host_sends_back_is_checked_here_as_any_agents_before_it_lands() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    let bin = lab.tmp.path().join("agents");
    std::fs::create_dir_all(&bin).expect("agents");
    // Each plan's agent leaves one kind of work orch refuses from any agent: a change to a
    // protected file, a nested repository with a commit (a gitlink on the host), a nested
    // repository's `.git` given as a file.
    let agent = script(
        &bin,
        "hostile.sh",
        "echo ok > fine.txt\n\
         case \"$ORCH_PLAN\" in\n\
         p) echo '# changed by an agent' >> plans.toml ;;\n\
         q) mkdir -p vendor/lib && cd vendor/lib && git init -q && echo x > f && git add f && \
            git -c user.name=a -c user.email=a@b commit -qm x && cd - >/dev/null ;;\n\
         r) mkdir -p sub && git init -q --bare ../nested.git && echo 'gitdir: ../nested.git' > sub/.git ;;\n\
         esac\nexit 0\n",
    );
    for sandbox in ["on", "off"] {
        let repo = repo_on(
            &lab,
            &["p", "q", "r"],
            1,
            2,
            &format!("[\"sh\", \"{agent}\"]"),
            &format!("sandbox = \"{sandbox}\""),
        );
        let before = repo.git(&["rev-parse", "main"]);
        let mut cmd = repo.orch(&["up", "--json"]);
        cmd.env("PATH", lab.path()).env_remove("ORCH_SANDBOX");
        let (code, out, err) = repo.run_cmd(&mut cmd);
        assert_ne!(code, 0, "{sandbox}: stdout:\n{out}\nstderr:\n{err}");
        for p in ["p", "q"] {
            assert_eq!(
                repo.statuses(p),
                vec![("1.1".to_string(), "failed".to_string())],
                "{sandbox} {p}: {out}"
            );
            assert!(
                repo.subjects(&format!("plan/{p}")).is_empty(),
                "{sandbox} {p}"
            );
        }
        // A `.git` file never travels in a snapshot (git's trees hold no `.git`): what lands is
        // the agent's plain work, without a gitlink or a `.git` entry.
        let tree = repo.git(&["ls-tree", "-r", "plan/r"]);
        assert!(tree.contains("fine.txt"), "{sandbox}: {tree}");
        assert!(!tree.contains("160000"), "{sandbox}: {tree}");
        assert!(
            !tree
                .lines()
                .any(|l| l.ends_with(".git") || l.contains("sub/")),
            "{sandbox}: {tree}"
        );
        assert_eq!(repo.git(&["rev-parse", "main"]), before);
        assert!(
            !repo
                .git(&["show", "main:plans.toml"])
                .contains("changed by an agent")
        );
    }
}

/// A lab of `h1` and `nogit`, a host whose sessions' `PATH` has no git; an agent that notes
/// where it ran in `journal` and writes its file.
fn no_git_lab() -> (sshd::Lab, String, std::path::PathBuf) {
    let tools = sshd::path_without_git(&tempfile::tempdir().expect("tmp").keep());
    let lab = sshd::Lab::start_with_env(
        &["h1", "nogit"],
        &[("nogit", &format!("PATH={}", tools.display()))],
    );
    let bin = lab.tmp.path().join("agents");
    std::fs::create_dir_all(&bin).expect("agents");
    let journal = lab.tmp.path().join("ran");
    let agent = script(
        &bin,
        "ok.sh",
        &format!(
            "echo \"$ORCH_TASK $(pwd)\" >> {}\necho \"$ORCH_TASK\" > \"task-$ORCH_TASK.txt\"\n",
            journal.display()
        ),
    );
    (lab, agent, journal)
}

/// A repository with plan `p` of two tasks on `hosts`, two retries a task.
fn repo_on_hosts(lab: &sshd::Lab, agent: &str, hosts: &str) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    repo.write("docs/plans/p.md", &plan(2));
    repo.write(
        "plans.toml",
        &format!(
            "{}[defaults]\nexecutor = \"ssh\"\nnetwork = \"open\"\nretries = 2\nagent = \"a\"\n\n[agents.a]\ncommand = [\"sh\", \"{agent}\"]\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nhosts = {hosts}\n",
            lab.host_toml(1)
        ),
    );
    repo.commit_all("plans");
    repo
}

#[test]
fn a_host_without_git_takes_no_attempt_and_a_plan_with_no_other_host_is_refused_at_start() {
    if !sshd::available() {
        return;
    }
    let (lab, agent, journal) = no_git_lab();
    // With another host: every task runs there, none on the host without git, and the console
    // says why, with the fix.
    let repo = repo_on_hosts(&lab, &agent, "[\"nogit\", \"h1\"]");
    let mut cmd = repo.orch(&["up"]);
    cmd.env("PATH", lab.path());
    let (code, out, err) = repo.run_cmd(&mut cmd);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let said = format!("{out}\n{err}");
    assert!(
        said.lines()
            .any(|l| l.contains("host `nogit` cannot run agents: no git")
                && l.contains("fix: install git on the host")),
        "{said}"
    );
    let ran = std::fs::read_to_string(&journal).expect("journal");
    let h1 = lab.server("h1").dir.display().to_string();
    assert_eq!(ran.lines().count(), 2, "one attempt a task: {ran}");
    assert!(ran.lines().all(|l| l.contains(&h1)), "{ran}");
    assert!(
        repo.statuses("p").iter().all(|(_, s)| s == "completed"),
        "{:?}",
        repo.statuses("p")
    );
    assert!(!lab.server("nogit").dir.join("attempts").exists());

    // Alone: `orch up` refuses to start, naming the plan, the host, the cause and the fix; no
    // attempt, no retry spent, no task failed.
    std::fs::remove_file(&journal).expect("rm");
    let repo = repo_on_hosts(&lab, &agent, "[\"nogit\"]");
    let mut cmd = repo.orch(&["up"]);
    cmd.env("PATH", lab.path());
    let (code, out, err) = repo.run_cmd(&mut cmd);
    assert_eq!(code, 6, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("no host can run the agents of plan `p` (hosts `nogit`)")
            && err.contains("host `nogit` cannot run agents: no git on the PATH")
            && err.contains("fix: install git on the host"),
        "{err}"
    );
    assert!(!journal.exists(), "the agent never ran");
    assert!(
        repo.statuses("p").iter().all(|(_, s)| s != "failed"),
        "{:?}",
        repo.statuses("p")
    );
    assert!(!lab.server("nogit").dir.join("attempts").exists());
    let (_, text, _) = repo.run(&["status"]);
    assert!(
        text.lines()
            .any(|l| l.contains("host `nogit` cannot run agents: no git")
                && l.contains("fix: install git on the host")),
        "{text}"
    );
}

#[test]
fn a_host_found_without_git_during_the_run_blocks_its_plan_without_blaming_the_agent() {
    if !sshd::available() {
        return;
    }
    let (mut lab, agent, journal) = no_git_lab();
    let repo = repo_on_hosts(&lab, &agent, "[\"nogit\"]");
    // The host does not answer when the run starts: it is marked down, and the first attempt
    // to reach it once it is back probes it.
    lab.stop("nogit");
    let mut cmd = repo.orch(&["up"]);
    cmd.env("PATH", lab.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("orch up");
    let down = repo.root().join(".orch/state/.ssh/.down/nogit");
    wait_for("the host marked down", || down.exists());
    lab.restart("nogit");
    let out = support::wait_within(child, repo.timeout(), "orch up");
    let (code, out, err) = support::code_out_err(&out);
    assert_eq!(code, 5, "stdout:\n{out}\nstderr:\n{err}");
    let said = format!("{out}\n{err}");
    assert!(
        said.lines().any(|l| l.contains("blocked")
            && l.contains("host `nogit` cannot run agents: no git")
            && l.contains("fix: install git on the host")),
        "{said}"
    );
    assert!(!said.contains("without reporting"), "{said}");
    assert!(!journal.exists(), "the agent never ran");
    let statuses = repo.statuses("p");
    assert!(statuses.iter().all(|(_, s)| s != "failed"), "{statuses:?}");
    // No retry spent.
    let (_, v, _) = repo.run(&["status", "--plan", "p", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&v).expect("json");
    for t in v["tasks"].as_array().expect("tasks") {
        assert_eq!(t["retry_count"], 0, "no retry spent: {t}");
        assert_eq!(t["status"], "pending", "{t}");
    }
    assert_eq!(v["hosts_refused"][0]["host"], "nogit", "{v}");
    // `orch status` names the host, the cause and the fix (orch's record of the probe).
    let (_, text, _) = repo.run(&["status"]);
    assert!(
        text.lines()
            .any(|l| l.contains("host `nogit` cannot run agents: no git")
                && l.contains("fix: install git on the host")),
        "{text}"
    );
}

#[test]
fn an_agent_on_a_host_that_exits_254_fails_as_any_agent_and_blocks_nothing() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    let bin = lab.tmp.path().join("agents");
    std::fs::create_dir_all(&bin).expect("agents");
    // 254 is the status orch's driver gives when no host is left: an agent's own is not that.
    let agent = script(
        &bin,
        "254.sh",
        "echo 'orch remote-attempt: no host of the plan can run its agents'\nexit 254\n",
    );
    let repo = repo_on(&lab, &["p"], 1, 1, &format!("[\"sh\", \"{agent}\"]"), "");
    let mut cmd = repo.orch(&["up"]);
    cmd.env("PATH", lab.path());
    let (code, out, err) = repo.run_cmd(&mut cmd);
    assert_eq!(code, 5, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(repo.statuses("p"), vec![("1.1".into(), "failed".into())]);
    assert!(out.contains("p blocked: task `1.1` failed"), "{out}");
    assert!(out.contains("exited with status 1"), "{out}");
}

/// What a remote agent's environment holds of `orch up`'s and of the host's: a variable set only
/// in `orch up`'s environment (an API key, orch's GitHub tokens) is absent on the host; the
/// host's own GitHub token (its sshd's environment) is withheld as a local agent's is, unless
/// `pass_env` names it (then the host's value, never orch up's); `ORCH_MANIFEST` is the lead's
/// path.
#[test]
fn a_remote_agent_gets_none_of_orch_ups_environment_and_not_the_hosts_token() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start_with_env(&["h1"], &[("h1", "GH_TOKEN=ghp_host_own")]);
    let bin = lab.tmp.path().join("agents");
    std::fs::create_dir_all(&bin).expect("agents");
    let agent = script(
        &bin,
        "agent.sh",
        "{ env | grep -E '^(ORCH_TEST_LEAD_ONLY|ANTHROPIC_API_KEY|GH_TOKEN|GITHUB_TOKEN|GH_ENTERPRISE_TOKEN|GITHUB_ENTERPRISE_TOKEN)=' | sort; \
         echo \"manifest=$ORCH_MANIFEST\"; } > env.txt\n",
    );
    for (extra, want_token) in [
        ("", None),
        ("pass_env = [\"GH_TOKEN\"]", Some("ghp_host_own")),
    ] {
        let repo = repo_on(
            &lab,
            &["p"],
            1,
            1,
            &format!("[\"sh\", \"{agent}\"]"),
            &format!("report = \"exit\"\n{extra}"),
        );
        let mut cmd = repo.orch(&["up", "--json"]);
        cmd.env("PATH", lab.path()).envs([
            ("ORCH_TEST_LEAD_ONLY", "lead-only"),
            ("ANTHROPIC_API_KEY", "sk-lead-only"),
            ("GH_TOKEN", "ghp_lead"),
            ("GITHUB_TOKEN", "ghp_lead_github"),
            ("GH_ENTERPRISE_TOKEN", "ghp_lead_ent"),
            ("GITHUB_ENTERPRISE_TOKEN", "ghp_lead_github_ent"),
        ]);
        let (code, out, err) = repo.run_cmd(&mut cmd);
        assert_eq!(code, 0, "{extra}: {out}\n{err}");
        assert_eq!(repo.subjects("plan/p"), ["p 1.1: Step 1"], "{extra}");
        let got = repo.git(&["show", "plan/p:env.txt"]);
        let mut want: Vec<String> = want_token.iter().map(|t| format!("GH_TOKEN={t}")).collect();
        want.push(format!(
            "manifest={}",
            repo.root().join("plans.toml").display()
        ));
        assert_eq!(
            got.lines().collect::<Vec<_>>(),
            want,
            "{extra}: the remote agent's environment"
        );
    }
}
