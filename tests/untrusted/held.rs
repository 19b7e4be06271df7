//! Holding the run still: a hostile agent of plan `a` locks every file it can open under the
//! run's state directory (a file it may only read can still be locked: `flock`, an OFD or a
//! POSIX read lock) and connects to every unix socket it finds there and in orch's private root
//! (silent connections, or connections that send junk), hundreds of them, then stays. Plans `b`
//! and `c` (three short tasks each, with a `timeout`) finish with no retry spent, plan `a`'s own
//! `timeout` ends it, and `orch up` ends long before the agent would have let go. Confined
//! (Landlock, every lock kind) and, for the sockets, unconfined with a confined network (where
//! the agent reaches the proxy's sockets: each connection is served on its own). In one variant
//! plan `c` is run by a confined plan-mode agent, which takes no status lock of its own: its
//! `orch next` reads, its `orch task start|done` go through its report directory, and orch
//! commits each task.

use std::time::{Duration, Instant};

use crate::landlock;
use crate::support::{Repo, fixtures, toml_array};

/// How long the hostile agent holds on (the fixture's own end): far past every deadline here.
const HOLDS: Duration = Duration::from_secs(90);

fn three_tasks(title: &str) -> String {
    format!("# {title}\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two\n- [ ] 1.3 Three\n")
}

/// Runs the attack (`lock`: flock, ofd, posix or none; `sock`: silent or garbage) with
/// `sandbox`, and checks what the user cares about.
fn held(lock: &str, sock: &str, sandbox: &str) {
    held_with(lock, sock, sandbox, false);
}

/// [`held`], plan `c` run by a plan-mode agent when `plan_mode`.
fn held_with(lock: &str, sock: &str, sandbox: &str, plan_mode: bool) {
    let repo = Repo::builder().timeout(Duration::from_secs(150)).build();
    repo.write(
        "docs/plans/a.md",
        &three_tasks("A").replace("- [ ] 1.2 Two\n- [ ] 1.3 Three\n", ""),
    );
    repo.write("docs/plans/b.md", &three_tasks("B"));
    repo.write("docs/plans/c.md", &three_tasks("C"));
    let flagdir = repo.outside("flags");
    std::fs::create_dir_all(&flagdir).expect("flags");
    let flag = flagdir.join("holding");
    let hostile = toml_array(&[
        "python3".to_string(),
        fixtures()
            .join("hostile_hold_state.py")
            .display()
            .to_string(),
        lock.to_string(),
        sock.to_string(),
        flagdir.display().to_string(),
    ]);
    // b's and c's tasks start their work once a holds what it found (at most 10 s later).
    let work = toml_array(&[
        "sh".to_string(),
        "-c".to_string(),
        format!(
            "i=0; while [ ! -e '{}' ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; \
             echo \"$ORCH_TASK\" >> \"$ORCH_PLAN.txt\"",
            flag.display()
        ),
    ]);
    // c's agent in plan mode: the same work through `orch next` and `orch task` (confined with
    // the others: its own report channel must work while every lock it cannot see is held).
    let planner = toml_array(&[
        "sh".to_string(),
        fixtures().join("plan_after_flag.sh").display().to_string(),
        flag.display().to_string(),
    ]);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 1\nmax_agents = 3\nsandbox = \"{sandbox}\"\nnetwork = \"confined\"\n\n\
             [agents.a]\ncommand = {hostile}\nreport = \"exit\"\nsandbox_write = [{:?}]\n\n\
             [agents.w]\ncommand = {work}\nreport = \"exit\"\n\n\
             [agents.pm]\ncommand = {planner}\nmode = \"plan\"\n\n\
             [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\nagent = \"a\"\ntimeout = \"5s\"\nretries = 0\n\n\
             [[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\nagent = \"w\"\ntimeout = \"15s\"\n\n\
             [[plan]]\nname = \"c\"\nfile = \"docs/plans/c.md\"\nagent = \"{}\"\ntimeout = \"15s\"\n",
            flagdir.display().to_string(),
            if plan_mode { "pm" } else { "w" },
        ),
    );
    repo.commit_all("plans");
    let began = Instant::now();
    let (code, out, err) = repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
    let took = began.elapsed();
    let what = format!("{lock}/{sock}/sandbox {sandbox}: exit {code}\n{out}\n{err}");
    let holding = std::fs::read_to_string(flagdir.join("held.txt")).unwrap_or_default();
    eprintln!("{lock}/{sock}/sandbox {sandbox}: orch up took {took:?}; a held:\n{holding}");
    // The attack ran: a held something (a lock where it may lock, a socket where it sees one).
    assert!(flag.exists(), "the hostile agent never ran: {what}");
    if lock != "none" {
        assert!(
            !holding.starts_with("locks 0\n"),
            "a locked nothing:\n{holding}\n{what}"
        );
    }
    if sandbox == "off" {
        assert!(
            !holding.contains("\nsockets 0\n"),
            "a found no socket:\n{holding}\n{what}"
        );
    }
    for plan in ["b", "c"] {
        for id in ["1.1", "1.2", "1.3"] {
            let t = repo.task(plan, id);
            assert_eq!(
                t["status"], "completed",
                "{plan} {id}: {t}\n{holding}\n{what}"
            );
            if plan == "c" && plan_mode {
                continue;
            }
            assert_eq!(
                t["attempts"], 1,
                "{plan} {id} spent a retry: {t}\n{holding}\n{what}"
            );
        }
    }
    if plan_mode {
        // One agent for the whole plan, never retried, and one commit per task it reported.
        let ev = crate::support::events(&out);
        let started: Vec<_> = crate::support::named(&ev, "task_started")
            .into_iter()
            .filter(|e| e["plan"] == "c")
            .collect();
        assert_eq!(
            started.len(),
            1,
            "c's agent started again: {started:?}\n{what}"
        );
        assert_eq!(
            repo.subjects("plan/c"),
            ["c 1.1: One", "c 1.2: Two", "c 1.3: Three"],
            "{holding}\n{what}"
        );
    }
    let a = repo.task("a", "1.1");
    assert_eq!(a["status"], "failed", "a: {a}\n{what}");
    assert!(
        a.to_string().contains("timed out after 5s"),
        "a's timeout was not what ended it: {a}\n{what}"
    );
    // orch up ended once a's timeout ended a, long before a would have let go.
    assert!(
        took < HOLDS / 2,
        "orch up took {took:?} (a holds on for {HOLDS:?}):\n{holding}\n{what}"
    );
}

#[test]
fn held_flock_on_the_state_and_silent_sockets_hold_no_one_else() {
    if !landlock() {
        return;
    }
    held("flock", "silent", "on");
}

#[test]
fn held_ofd_read_locks_and_junk_on_the_sockets_hold_no_one_else() {
    if !landlock() {
        return;
    }
    held("ofd", "garbage", "on");
}

#[test]
fn held_posix_read_locks_hold_no_one_else() {
    if !landlock() {
        return;
    }
    held("posix", "silent", "on");
}

#[test]
fn held_silent_connections_to_every_proxy_socket_hold_no_one_else() {
    held("none", "silent", "off");
}

#[test]
fn held_junk_on_every_proxy_socket_holds_no_one_else() {
    held("none", "garbage", "off");
}

#[test]
fn held_flock_on_the_state_holds_no_plan_mode_agent() {
    if !landlock() {
        return;
    }
    held_with("flock", "silent", "on", true);
}
