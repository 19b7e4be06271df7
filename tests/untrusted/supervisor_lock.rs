//! The supervisor lock past a kill: an agent locks the run's supervisor files (`supervisor.lock`,
//! `.supervisor.live`, and the gate in orch's private directory where it could see it), with
//! `flock` or `lockf`, exclusive or shared, waiting or retrying, in processes of a session of
//! their own, then `orch up` is killed (SIGKILL) and the agent's lockers hold what they got. The
//! next `orch up` starts all the same, sweeps what the killed run left (the agent, its container)
//! and completes the task. Before: `supervisor.lock` was what decided, an agent could read it
//! (Landlock governs no lock; a container had it mounted read-only) and hold it once `orch up`
//! died, and every restart was refused ("another `orch up` is running", naming the dead pid).
//! Confined local agents (Landlock) and container agents; an unconfined local agent
//! (`sandbox = "off"`) reaches orch's private directory and is out of scope.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::landlock;
use crate::support::{
    self, Repo, fixtures, kill, podman, process_alive, toml_array, wait_for, wait_within,
};

/// The lockers' pids found in `flagdir`, killed when dropped (they outlive the test's runs).
struct Lockers(PathBuf);

impl Lockers {
    fn pids(&self) -> Vec<(String, u32)> {
        let Ok(entries) = std::fs::read_dir(&self.0) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let what = name
                    .strip_prefix("locker-")?
                    .strip_suffix(".pid")?
                    .to_string();
                let pid = std::fs::read_to_string(e.path())
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                Some((what, pid))
            })
            .collect()
    }
}

impl Drop for Lockers {
    fn drop(&mut self) {
        for (_, pid) in self.pids() {
            kill("KILL", pid);
        }
    }
}

/// A flag the agent wrote in `flagdir`, if it did.
fn flag(flagdir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(flagdir.join(name)).ok()
}

/// The gate's file name in orch's private directory for the state directory of `repo`.
fn gate_name(repo: &Repo) -> String {
    let state = std::fs::canonicalize(repo.root().join(".orch/state")).expect("state dir");
    let place = orch::sandbox::private_lock_path(&state.join("supervisor.lock")).expect("place");
    place
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Plan `p` (one task) run by the hostile agent in `mode`, with `defaults` and `agent_extra`.
fn setup(repo: &Repo, mode: &str, flagdir: &Path, mark: &Path, defaults: &str, agent_extra: &str) {
    repo.write("docs/plans/p.md", &support::one_task("P", "Hold the lock"));
    // Its text on the command line: a container sees none of this machine's files.
    let script = std::fs::read_to_string(fixtures().join("hostile_hold_supervisor.py"))
        .expect("the fixture");
    let agent = toml_array(&[
        "python3".to_string(),
        "-c".to_string(),
        script,
        mode.to_string(),
        flagdir.display().to_string(),
        mark.display().to_string(),
    ]);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\n{defaults}\n\n\
             [agents.a]\ncommand = {agent}\nreport = \"exit\"\n{agent_extra}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\n"
        ),
    );
    repo.commit_all("plans");
}

/// Starts `orch up`, waits until the agent's lockers made their first try, kills `orch up` with
/// SIGKILL, and waits until the lockers hold `must_hold` (what the agent could open).
/// `flags` finds the agent's flag directory. Returns it.
fn kill_while_held(
    repo: &Repo,
    flags: &dyn Fn() -> Option<PathBuf>,
    must_hold: &[&str],
    sandbox_env: bool,
) -> PathBuf {
    let mut cmd = repo.orch(&["up", "--json"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    if sandbox_env {
        cmd.env_remove("ORCH_SANDBOX");
    }
    let mut first = cmd.spawn().expect("spawn orch up");
    let mut found = None;
    wait_for("the agent's flag directory", || {
        found = flags();
        found.is_some()
    });
    let flagdir = found.unwrap_or_default();
    let flagdir = flagdir.as_path();
    wait_for("the agent's lockers to try", || {
        flag(flagdir, "targets").is_some_and(|t| {
            let names: Vec<&str> = t.lines().collect();
            !names.is_empty()
                && names
                    .iter()
                    .all(|n| flagdir.join(format!("tried-{n}")).exists())
        })
    });
    for name in must_hold {
        assert!(
            flag(flagdir, "targets").is_some_and(|t| t.lines().any(|l| l == *name)),
            "the agent could not open {name}: {:?}",
            flag(flagdir, "targets")
        );
    }
    first.kill().expect("kill -9 orch up");
    let _ = first.wait();
    for name in must_hold {
        wait_for(&format!("the agent to hold {name}"), || {
            flagdir.join(format!("holding-{name}")).exists()
        });
    }
    flagdir.to_path_buf()
}

/// The restart: it starts, and the task is completed by the second run's agent.
fn restart_completes(repo: &Repo, sandbox_env: bool) -> String {
    let mut cmd = repo.orch(&["up", "--json"]);
    // Its agent does the work (the killed run's marks in the plan's report directory are gone:
    // the next start empties it).
    cmd.env("ORCH_TEST_GO", "1");
    if sandbox_env {
        cmd.env_remove("ORCH_SANDBOX");
    }
    let out = wait_within(
        cmd.spawn().expect("spawn orch up"),
        repo.timeout(),
        "orch up (restart)",
    );
    let (code, out, err) = support::code_out_err(&out);
    let what = format!("exit {code}\n{out}\n{err}");
    assert!(!err.contains("another `orch up`"), "{what}");
    assert_eq!(code, 0, "{what}");
    let task = repo.task("p", "1.1");
    assert_eq!(task["status"], "completed", "{task}\n{what}");
    assert_eq!(repo.git(&["show", "plan/p:work.txt"]), "done", "{what}");
    what
}

/// A confined local agent (Landlock) holding the supervisor's files in `mode`.
fn confined(mode: &str) {
    if !landlock() {
        return;
    }
    let repo = Repo::builder().timeout(Duration::from_secs(120)).build();
    let flagdir = repo.outside("flags");
    std::fs::create_dir_all(&flagdir).expect("flags");
    let lockers = Lockers(flagdir.clone());
    let mark = flagdir.join("started-before");
    setup(
        &repo,
        mode,
        &flagdir,
        &mark,
        "sandbox = \"on\"\nretries = 1\ntimeout = \"10s\"",
        &format!("sandbox_write = [{:?}]", flagdir.display().to_string()),
    );
    let fixed = flagdir.clone();
    kill_while_held(
        &repo,
        &move || Some(fixed.clone()),
        &["supervisor.lock", ".supervisor.live"],
        false,
    );
    // The gate was out of its reach: the private directory it sees is empty.
    let gate = gate_name(&repo);
    assert!(
        !flagdir.join(format!("holding-{gate}")).exists(),
        "{mode}: the agent holds the gate: {:?}",
        flag(&flagdir, &format!("tried-{gate}"))
    );
    // The killed run's agent lives on (its lockers, in sessions of their own, with it): the
    // restart takes it over and ends it at its timeout; the retry completes the task.
    let holders = lockers.pids();
    assert!(!holders.is_empty(), "{mode}: no locker");
    // Each locker that holds its file holds it still as the restart starts.
    for (name, pid) in &holders {
        if flagdir.join(format!("holding-{name}")).exists() {
            assert!(process_alive(*pid), "{mode}: the locker of {name} died");
        }
    }
    let what = restart_completes(&repo, false);
    // The restart swept the killed run's processes: the lockers too.
    let left: Vec<_> = holders.iter().filter(|(_, p)| process_alive(*p)).collect();
    assert!(left.is_empty(), "{mode}: left running: {left:?}\n{what}");
    // A person's `orch status` sees no run now.
    let (code, out, err) = repo.run(&["status", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn supervisor_lock_flock_ex_by_a_confined_agent_stops_no_restart() {
    confined("flock-ex");
}

#[test]
fn supervisor_lock_flock_ex_nonblocking_by_a_confined_agent_stops_no_restart() {
    confined("flock-ex-nb");
}

#[test]
fn supervisor_lock_flock_sh_by_a_confined_agent_stops_no_restart() {
    confined("flock-sh");
}

#[test]
fn supervisor_lock_flock_sh_nonblocking_by_a_confined_agent_stops_no_restart() {
    confined("flock-sh-nb");
}

#[test]
fn supervisor_lock_lockf_ex_by_a_confined_agent_stops_no_restart() {
    confined("lockf-ex");
}

#[test]
fn supervisor_lock_lockf_sh_by_a_confined_agent_stops_no_restart() {
    confined("lockf-sh");
}

/// A container agent (the red team's case: plan in a container, default sandbox) holding what
/// the container was handed (the run's liveness file, no longer the lock) in `mode`; the
/// restart removes the killed run's container and completes the task in a new one.
fn in_container(mode: &str, sandbox: &str) {
    if !podman::available() {
        return;
    }
    let repo = Repo::builder().timeout(Duration::from_secs(300)).build();
    // Confined, the agent writes its flags in its own report directory (`-`); unconfined, beside
    // the attempts' (the plan's, mounted read-write, kept between runs).
    let reports = repo.root().join(".orch/state/.reports/p");
    let (flagdir, mark) = if sandbox.is_empty() {
        (PathBuf::from("-"), PathBuf::from("-"))
    } else {
        (reports.join("flags"), reports.join("started-before"))
    };
    setup(
        &repo,
        mode,
        &flagdir,
        &mark,
        &format!(
            "retries = 0\nexecutor = \"container\"\nimage = \"{}\"\n{sandbox}",
            podman::IMAGE
        ),
        "network = \"none\"",
    );
    let find = {
        let (reports, flagdir) = (reports.clone(), flagdir.clone());
        move || {
            if flagdir != Path::new("-") {
                return Some(flagdir.clone());
            }
            let entries = std::fs::read_dir(&reports).ok()?;
            entries
                .flatten()
                .map(|e| e.path().join("flags"))
                .find(|f| f.join("targets").exists())
        }
    };
    let flagdir = kill_while_held(&repo, &find, &[".supervisor.live"], sandbox.is_empty());
    let lockers = Lockers(flagdir.clone());
    // No container is handed the lock itself, nor the gate.
    let targets = flag(&flagdir, "targets").unwrap_or_default();
    assert!(
        !targets
            .lines()
            .any(|t| t == "supervisor.lock" || t == gate_name(&repo)),
        "{mode}: the container sees {targets}"
    );
    // The killed run's containers (none when another orch of this machine, a test running beside
    // this one, already swept them: any orch removes the containers of runs that are dead).
    let old = podman::mounting(repo.root());
    restart_completes(&repo, sandbox.is_empty());
    let left: Vec<String> = podman::containers(None)
        .into_iter()
        .filter(|c| old.contains(c))
        .collect();
    assert!(left.is_empty(), "{mode}: left behind: {left:?}");
    drop(lockers);
}

#[test]
fn supervisor_lock_flock_ex_in_an_unconfined_container_stops_no_restart() {
    in_container("flock-ex", "sandbox = \"off\"");
}

#[test]
fn supervisor_lock_flock_sh_nonblocking_in_an_unconfined_container_stops_no_restart() {
    in_container("flock-sh-nb", "sandbox = \"off\"");
}

#[test]
fn supervisor_lock_lockf_sh_in_an_unconfined_container_stops_no_restart() {
    in_container("lockf-sh", "sandbox = \"off\"");
}
