//! A host that blips under a running `parallel_tasks` plan (real `sshd` on loopback,
//! `support::sshd`): its connections end (or stall) while attempts run there, and it answers
//! again later. A fault that is not the agent's costs the agent nothing: with `retries = 0`
//! every task completes with one commit on the plan branch, the loss and the return are said on
//! `orch up`'s console, as events and in `orch status`, and the host's `dir` keeps no attempt.
//!
//! The blip is made at the connection level, as a network fault makes it: the listener and the
//! `sshd` processes of every connection are killed (or stopped, for a network that stalls),
//! never what runs on the host (orch's copy there and its agents run on, and see their
//! connection end). The fixture agents wait for a file the test writes once the host is down or
//! back: no sleep orders anything.

use crate::support;

use std::path::{Path, PathBuf};

use support::{Repo, sshd};

const TASKS: usize = 3;

fn plan() -> String {
    let mut text = String::from("# Plan\n\n## Phase 1: One\n");
    for i in 1..=TASKS {
        text.push_str(&format!("- [ ] 1.{i} Step {i}\n"));
    }
    text
}

/// An agent that writes its task's file, says it started in `journal`, waits for `go` (or
/// `go-<task>`, for its task alone), says it ended and exits 0 (its work is taken by exit
/// status).
fn agent(dir: &Path, journal: &Path, go: &Path) -> String {
    let p = dir.join("wait.sh");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\necho \"$ORCH_TASK\" > \"task-$ORCH_TASK.txt\"\n\
             echo \"start $ORCH_TASK\" >> {j}\n\
             while [ ! -e {go} ] && [ ! -e \"{go}-$ORCH_TASK\" ]; do sleep 0.02; done\n\
             echo \"end $ORCH_TASK\" >> {j}\nexit 0\n",
            j = journal.display(),
            go = go.display()
        ),
    )
    .expect("agent");
    p.display().to_string()
}

/// A repository with plan `p` of [`TASKS`] tasks side by side on the lab's one host (as many
/// slots), `retries = 0`.
fn repo(lab: &sshd::Lab, command: &str) -> Repo {
    repo_of(lab, command, (&plan(), TASKS, TASKS))
}

/// [`repo`] with plan `p`'s text, its `parallel_tasks` and the host's slots.
fn repo_of(lab: &sshd::Lab, command: &str, (text, parallel, slots): (&str, usize, usize)) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    repo.write("docs/plans/p.md", text);
    repo.write(
        "plans.toml",
        &format!(
            "{}[defaults]\nexecutor = \"ssh\"\nnetwork = \"open\"\nmax_agents = 8\nretries = 0\nagent = \"a\"\n\n\
             [agents.a]\ncommand = [\"sh\", \"{command}\"]\nreport = \"exit\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nparallel_tasks = {parallel}\n",
            lab.host_toml(slots)
        ),
    );
    repo.commit_all("plans");
    repo
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn count(path: &Path, prefix: &str) -> usize {
    lines(path).iter().filter(|l| l.starts_with(prefix)).count()
}

/// The attempts the host keeps in its `dir`.
fn kept(lab: &sshd::Lab) -> Vec<String> {
    std::fs::read_dir(lab.server("h1").dir.join("attempts"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The host's attempts stopped with their connection (what `orch remote-run` marks `abandoned`).
fn abandoned(lab: &sshd::Lab) -> usize {
    let dir = lab.server("h1").dir.join("attempts");
    kept(lab)
        .iter()
        .filter(|k| dir.join(k).join("abandoned").exists())
        .count()
}

/// The run's events of kind `name` so far (its event log).
fn events(repo: &Repo, name: &str) -> Vec<serde_json::Value> {
    lines(&repo.root().join(".orch/state/.events.jsonl"))
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == name)
        .collect()
}

struct Run {
    repo: Repo,
    lab: sshd::Lab,
    journal: PathBuf,
    go: PathBuf,
    child: Option<std::process::Child>,
}

fn start() -> Run {
    let lab = sshd::Lab::start(&["h1"]);
    let bin = lab.tmp.path().join("agents");
    std::fs::create_dir_all(&bin).expect("agents");
    let journal = lab.tmp.path().join("journal");
    let go = lab.tmp.path().join("go");
    let repo = repo(&lab, &agent(&bin, &journal, &go));
    let mut cmd = repo.orch(&["up"]);
    cmd.env("PATH", lab.path());
    let child = cmd.spawn().expect("orch up");
    support::wait_for("every task's first attempt on the host", || {
        count(&journal, "start ") == TASKS
    });
    Run {
        repo,
        lab,
        journal,
        go,
        child: Some(child),
    }
}

/// `orch up` ended: 0, every task completed with one commit on the plan branch (its file
/// there), no attempt left in the host's `dir`, the loss and the return said.
fn check(run: &mut Run, what: &str, saved: usize) {
    let Run {
        repo,
        lab,
        journal,
        child,
        ..
    } = run;
    let child = child.take().expect("orch up");
    let out = support::wait_within(child, repo.timeout(), "orch up");
    let (code, stdout, stderr) = support::code_out_err(&out);
    let all = format!(
        "{what}\nstdout:\n{stdout}\nstderr:\n{stderr}\njournal:\n{:?}",
        lines(journal)
    );
    assert_eq!(code, 0, "{all}");
    let statuses = repo.statuses("p");
    assert_eq!(statuses.len(), TASKS, "{statuses:?}\n{all}");
    assert!(
        statuses.iter().all(|(_, s)| s == "completed"),
        "{statuses:?}\n{all}"
    );
    let subjects = repo.subjects("plan/p");
    for i in 1..=TASKS {
        let id = format!("1.{i}");
        assert_eq!(
            subjects.iter().filter(|s| s.contains(&id)).count(),
            1,
            "{id}: {subjects:?}\n{all}"
        );
        assert_eq!(
            repo.git(&["show", &format!("plan/p:task-{id}.txt")]),
            id,
            "{all}"
        );
    }
    assert!(kept(lab).is_empty(), "{:?}\n{all}", kept(lab));
    // The work of each attempt stopped on the host came back, saved and never landed (each
    // task's one commit is its attempt that ran again), and nothing was left behind there.
    let lost = repo.refs_under("refs/orch/attempts/lost/");
    assert_eq!(lost.len(), saved, "{lost:?}\n{all}");
    for i in 1..=TASKS {
        let log = std::fs::read_to_string(repo.root().join(format!(".orch/logs/p/1.{i}.log")))
            .unwrap_or_default();
        assert!(!log.contains("cannot take back"), "1.{i}: {log}");
    }
    // The loss and the return on the console, with the host and the cause.
    let text = format!("{stdout}{stderr}");
    assert!(
        text.lines()
            .any(|l| l.contains("host h1 lost") && l.contains("connection")),
        "{all}"
    );
    assert!(text.lines().any(|l| l.contains("host h1 back")), "{all}");
    // And as events, with the host and the cause.
    let lost = events(repo, "host_lost");
    assert!(!lost.is_empty(), "{all}");
    assert!(
        lost.iter()
            .all(|e| e["host"] == "h1" && e["cause"].as_str().is_some_and(|c| !c.is_empty())),
        "{lost:?}"
    );
    let back = events(repo, "host_back");
    assert!(back.iter().any(|e| e["host"] == "h1"), "{back:?}\n{all}");
}

#[test]
fn a_host_whose_connections_end_under_running_attempts_costs_no_retry_and_no_work() {
    if !sshd::available() {
        return;
    }
    let mut run = start();
    // The network fails: every connection ends, nothing answers; the host runs on.
    run.lab.go_down("h1");
    // orch's copy there sees its driver gone and stops each agent.
    support::wait_for("the attempts stopped on the host", || {
        abandoned(&run.lab) == TASKS
    });
    // While it is lost, `orch status` names it, with the cause, in text and JSON.
    support::wait_for("the host lost", || {
        !events(&run.repo, "host_lost").is_empty()
    });
    let (code, text, err) = run.repo.run(&["status", "--plan", "p"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("host h1 lost since ") && l.contains("connection")),
        "{text}"
    );
    let (code, json, err) = run.repo.run(&["status", "--plan", "p", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let lost = v["hosts_lost"].as_array().cloned().unwrap_or_default();
    assert_eq!(lost.len(), 1, "{json}");
    assert_eq!(lost[0]["host"], "h1", "{json}");
    assert!(
        lost[0]["since"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{json}"
    );
    assert!(
        lost[0]["cause"]
            .as_str()
            .is_some_and(|c| c.contains("connection")),
        "{json}"
    );
    // And `orch top`, in a terminal, marks each running task's row `@h1 LOST` and lists the
    // event.
    let mut top = crate::top::Screen::start(&run.repo);
    top.wait("the lost host in orch top", |screen| {
        screen.contains("@h1 LOST") && screen.contains("host h1")
    });
    drop(top);
    run.lab.restart("h1");
    std::fs::write(&run.go, "").expect("go");
    check(&mut run, "connections cut during the attempts", TASKS);
    // Back: no longer listed.
    let (_, json, _) = run.repo.run(&["status", "--plan", "p", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert!(v.get("hosts_lost").is_none(), "{json}");
}

#[test]
fn a_host_whose_network_stalls_until_its_agents_ended_costs_no_retry_and_no_work() {
    if !sshd::available() {
        return;
    }
    let mut run = start();
    // Nothing passes; the agents end meanwhile, their work and status unsent.
    run.lab.stall("h1");
    std::fs::write(&run.go, "").expect("go");
    support::wait_for("every agent's end", || count(&run.journal, "end ") == TASKS);
    // orch sees the host lost (ssh's keep-alives unanswered), then the network comes back.
    support::wait_for("the host lost", || {
        !events(&run.repo, "host_lost").is_empty()
    });
    run.lab.end_stall("h1");
    check(&mut run, "network stalled until the agents ended", TASKS);
}

/// Two siblings end and land one after the other while the third runs on a healthy host: no
/// `host_lost` and no attempt run again (the shared connection is not the first attempt's);
/// then the host's connections end under the third, which costs it nothing.
#[test]
fn a_host_whose_connections_end_after_two_siblings_landed_costs_the_third_nothing() {
    if !sshd::available() {
        return;
    }
    let mut run = start();
    // Two tasks end and land, one after the other; the third runs on.
    for (n, t) in ["1.1", "1.2"].into_iter().enumerate() {
        std::fs::write(format!("{}-{t}", run.go.display()), "").expect("go");
        support::wait_for("a task landed", || {
            run.repo
                .statuses("p")
                .iter()
                .filter(|(_, s)| s == "completed")
                .count()
                == n + 1
        });
    }
    // A healthy host whose attempts end at different times loses none of the others' sessions
    // (the shared connection is `orch up`'s, not the first attempt's): no `host_lost`, and the
    // third attempt was not run again.
    assert_eq!(
        events(&run.repo, "host_lost"),
        Vec::<serde_json::Value>::new(),
        "a healthy host was said lost when its siblings ended"
    );
    assert_eq!(
        count(&run.journal, "start "),
        TASKS,
        "an attempt was run again on a healthy host"
    );
    run.lab.go_down("h1");
    support::wait_for("the third attempt stopped on the host", || {
        abandoned(&run.lab) == 1
    });
    run.lab.restart("h1");
    std::fs::write(&run.go, "").expect("go");
    check(&mut run, "connections cut after two siblings landed", 1);
}

/// A lab of one host `h1` whose sessions run `git` as the script `script` (given the script's
/// directory) writes, first on their `PATH`; the directory lives as long as the lab is used.
fn lab_with_git(script: impl Fn(&Path) -> String) -> (tempfile::TempDir, sshd::Lab) {
    let tools = tempfile::tempdir().expect("tmp");
    let git = tools.path().join("git");
    std::fs::write(&git, script(tools.path())).expect("git");
    std::fs::set_permissions(&git, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let lab = sshd::Lab::start_with(
        &["h1"],
        &format!(
            "SetEnv PATH={}:/usr/local/bin:/usr/bin:/bin",
            tools.path().display()
        ),
    );
    (tools, lab)
}

/// The host's `git`, whose `cat-file -e` says every object is missing: the host's cache answers
/// `need` for a base it already holds, as it does when another attempt of the same base fetches
/// it between the cache's two answers (its `need`, then its tips). It runs the git of git's own
/// exec path, which orch's confinement of git allows.
const FORGETFUL_GIT: &str = "#!/bin/sh\n\
    if [ \"$2\" = cat-file ] && [ \"$3\" = -e ]; then exit 1; fi\n\
    exec /usr/lib/git-core/git \"$@\"\n";

/// Plans of one base one after the other on a host whose cache says it lacks the base while
/// its tips hold it (the first attempt's base, or a later commit of it): each attempt runs,
/// sending what the host lacks or nothing; none fails on an empty transfer.
#[test]
fn attempts_whose_base_the_host_already_holds_send_nothing_and_run() {
    if !sshd::available() {
        return;
    }
    let (_tools, lab) = lab_with_git(|_| FORGETFUL_GIT.to_string());
    let repo = Repo::builder().identity_in_config().build();
    let two = "# Plan\n\n## Phase 1: One\n- [ ] 1.1 Step 1\n- [ ] 1.2 Step 2\n";
    let one = "# Plan\n\n## Phase 1: One\n- [ ] 1.1 Step 1\n";
    // `a` runs first (its two tasks: the host's tips become main, then main + a's first
    // commit); `b` and `c` start from main, which those tips hold.
    repo.write("docs/plans/a.md", two);
    repo.write("docs/plans/b.md", one);
    repo.write("docs/plans/c.md", one);
    repo.write(
        "plans.toml",
        &format!(
            "{}[defaults]\nexecutor = \"ssh\"\nnetwork = \"open\"\nmax_agents = 1\nretries = 0\nagent = \"a\"\n\n\
             [agents.a]\ncommand = [\"sh\", \"-c\", \"echo \\\"$ORCH_PLAN $ORCH_TASK\\\" > \\\"w-$ORCH_TASK.txt\\\"\"]\nreport = \"exit\"\n\n\
             [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\npriority = 3\n\n\
             [[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\npriority = 2\n\n\
             [[plan]]\nname = \"c\"\nfile = \"docs/plans/c.md\"\npriority = 1\n",
            lab.host_toml(1)
        ),
    );
    repo.commit_all("plans");
    let mut cmd = repo.orch(&["up"]);
    cmd.env("PATH", lab.path());
    let (code, out, err) = repo.run_cmd(&mut cmd);
    let logs: String = ["a/1.1", "a/1.2", "b/1.1", "c/1.1"]
        .iter()
        .map(|l| {
            std::fs::read_to_string(repo.root().join(format!(".orch/logs/{l}.log")))
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}\nlogs:\n{logs}");
    for (plan, tasks) in [("a", &["1.1", "1.2"][..]), ("b", &["1.1"]), ("c", &["1.1"])] {
        let want: Vec<(String, String)> = tasks
            .iter()
            .map(|t| (t.to_string(), "completed".to_string()))
            .collect();
        assert_eq!(repo.statuses(plan), want, "{plan}: {err}");
        for t in tasks {
            assert_eq!(
                repo.git(&["show", &format!("plan/{plan}:w-{t}.txt")]),
                format!("{plan} {t}"),
                "{plan} {t}"
            );
        }
    }
}

/// The host's `git`, whose first five fetches into orch's cache fail (as a full disk or a
/// transient fault there makes them fail: the cache's own five tries of one transfer all fail).
fn failing_fetch_git(dir: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         if [ \"$4\" = fetch ]; then\n\
         n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n\
         if [ $n -le 5 ]; then echo 'fatal: no space left on device' >&2; exit 1; fi\n\
         fi\n\
         exec /usr/lib/git-core/git \"$@\"\n",
        c = dir.join("fetches").display()
    )
}

/// An attempt whose host could not be prepared (the transfer of the base to the host's cache
/// failed there) never started its agent: it is not the agent's failure. With `retries = 0` the
/// task runs again and completes, its work on the plan branch, and the console says why.
/// Seen failing on the code before: the task failed ("the agent exited with status 1"), its
/// only try spent.
#[test]
fn an_attempt_whose_host_could_not_be_prepared_costs_no_retry() {
    if !sshd::available() {
        return;
    }
    let (_tools, lab) = lab_with_git(failing_fetch_git);
    let repo = Repo::builder().identity_in_config().build();
    repo.write(
        "docs/plans/p.md",
        "# Plan\n\n## Phase 1: One\n- [ ] 1.1 Step 1\n",
    );
    repo.write(
        "plans.toml",
        &format!(
            "{}[defaults]\nexecutor = \"ssh\"\nnetwork = \"open\"\nretries = 0\nagent = \"a\"\n\n\
             [agents.a]\ncommand = [\"sh\", \"-c\", \"echo done > w.txt\"]\nreport = \"exit\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n",
            lab.host_toml(1)
        ),
    );
    repo.commit_all("plans");
    let mut cmd = repo.orch(&["up"]);
    cmd.env("PATH", lab.path());
    let (code, out, err) = repo.run_cmd(&mut cmd);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        repo.statuses("p"),
        vec![("1.1".to_string(), "completed".to_string())]
    );
    assert_eq!(repo.git(&["show", "plan/p:w.txt"]), "done");
    assert_eq!(repo.subjects("plan/p").len(), 1, "{out}");
    assert!(
        out.contains("attempt lost with its host (not counted, the task runs again)"),
        "{out}"
    );
    let log = std::fs::read_to_string(repo.root().join(".orch/logs/p/1.1.log")).unwrap_or_default();
    assert!(
        log.contains("could not be prepared on host `h1`") && log.contains("no space left"),
        "{log}"
    );
}

/// A first Ctrl-C lets running agents finish, and starts nothing more: an attempt still waiting
/// for a host (here the one host's one slot is taken by a sibling; red team 7: a host that was
/// down) is stopped at once, not counted, its task back to pending, and never starts its agent
/// when the slot frees. Failed on the code before: the waiting attempt took the slot once its
/// sibling ended and ran its agent after the Ctrl-C (a host that was down held the run five
/// minutes).
#[test]
fn a_first_ctrl_c_stops_an_attempt_that_waits_for_a_host() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    let bin = lab.tmp.path().join("agents");
    std::fs::create_dir_all(&bin).expect("agents");
    let journal = lab.tmp.path().join("journal");
    let go = lab.tmp.path().join("go");
    let command = agent(&bin, &journal, &go);
    let text = "# Plan\n\n## Phase 1: One\n- [ ] 1.1 Step 1\n- [ ] 1.2 Step 2\n";
    let repo = repo_of(&lab, &command, (text, 2, 1));
    let mut cmd = repo.orch(&["up"]);
    cmd.env("PATH", lab.path());
    let child = cmd.spawn().expect("orch up");
    // One agent runs on the host, the other attempt waits for its slot.
    support::wait_for("one agent on the host, two attempts started", || {
        count(&journal, "start ") == 1 && events(&repo, "task_started").len() == 2
    });
    let first = lines(&journal)
        .first()
        .and_then(|l| l.strip_prefix("start ").map(str::to_string))
        .expect("started");
    let other = if first == "1.1" { "1.2" } else { "1.1" };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid")),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    // The waiting attempt is stopped before the running agent is let go.
    support::wait_for("the waiting attempt stopped", || {
        repo.task("p", other)["status"] == "pending"
    });
    std::fs::write(&go, "").expect("go");
    let out = support::wait_within(child, repo.timeout(), "orch up");
    let (code, stdout, stderr) = support::code_out_err(&out);
    let all = format!("{stdout}{stderr}\njournal: {:?}", lines(&journal));
    assert_ne!(code, 0, "{all}");
    assert_eq!(repo.task("p", &first)["status"], "completed", "{all}");
    assert_eq!(repo.task("p", other)["status"], "pending", "{all}");
    assert_eq!(count(&journal, &format!("start {other}")), 0, "{all}");
    assert_eq!(repo.subjects("plan/p").len(), 1, "{all}");
    let log = std::fs::read_to_string(repo.root().join(format!(".orch/logs/p/{other}.log")))
        .unwrap_or_default();
    assert!(
        log.contains("interrupted while the attempt waited for a host"),
        "{log}\n{all}"
    );
}
