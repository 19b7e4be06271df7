//! `executor = "container"` end to end through a real `orch up` and real podman, in the local
//! image `localhost/orch-test-base` (`.ci/podman images`; skipped with a message when podman or
//! the image is missing, unless `ORCH_REQUIRE_PODMAN` is set): the tasks' work lands on the plan
//! branch from inside the container; the agent cannot write outside its worktree nor reach the
//! host's network with `network = "none"`; a killed `orch up` leaves no container after the next
//! start; bad input is refused before anything runs.

use crate::support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::podman::{IMAGE, available, containers};
use support::{Repo, toml_array};

/// A plan `p` of `tasks` tasks run by the POSIX sh `script` (an agent of `report = "exit"`) in a
/// container of the test image, `agent_extra` and `defaults` lines added.
fn container_repo(script: &str, tasks: usize, agent_extra: &str, defaults: &str) -> Repo {
    let mut plan = String::from("# P\n\n## Phase 1: Work\n");
    for i in 1..=tasks {
        plan.push_str(&format!("- [ ] 1.{i} Task {i}\n"));
    }
    support::podman::repo(
        &[("p", "")],
        &plan,
        &toml_array(&["sh", "-c", script]),
        &format!("network = \"none\"\n{agent_extra}"),
        IMAGE,
        defaults,
        "",
    )
}

#[test]
fn two_tasks_run_in_the_plans_container_and_land_on_its_branch() {
    if !available() {
        return;
    }
    // What only the image has: Debian's os-release (the host's may say the same, so the agent
    // also records the container's marker file and that it is not this host's process tree).
    let script = "id=$(. /etc/os-release; echo $ID-$VERSION_ID); \
                  echo \"$ORCH_TASK $id $(test -e /run/.containerenv && echo container)\" > \"task-$ORCH_TASK.txt\"";
    let repo = container_repo(script, 2, "", "");
    let started = Instant::now();
    let out = repo.up(&[]);
    eprintln!(
        "orch up of 2 tasks in a container: {:.2?}",
        started.elapsed()
    );
    let events = support::events(&out);
    let done = events
        .iter()
        .filter(|e| e["event"] == "task_finished")
        .count();
    assert_eq!(done, 2, "{out}");
    for id in ["1.1", "1.2"] {
        let text = repo.git(&["show", &format!("plan/p:task-{id}.txt")]);
        assert_eq!(text, format!("{id} debian-12 container"), "task {id}");
    }
    assert_eq!(repo.subjects("plan/p").len(), 2);
    // Removed with the run: no container of this repository is left (other tests' runs may
    // have theirs meanwhile).
    assert_eq!(support::podman::mounting(repo.root()), Vec::<String>::new());
}

#[test]
fn the_agent_in_a_container_cannot_write_outside_its_worktree() {
    if !available() || !support::landlock() {
        return;
    }
    let repo = Repo::builder().timeout(Duration::from_secs(300)).build();
    let root = repo.root().to_path_buf();
    let other = repo.worktree("b");
    let state = root.join(".orch/state");
    let home = repo.home().to_path_buf();
    let targets = [
        root.join("README.md"),
        root.join("main-new.txt"),
        root.join(".git/config"),
        other.join("b.txt"),
        other.join("new.txt"),
        state.join("new.txt"),
        home.join("new.txt"),
        home.join(".bashrc"),
    ];
    let mut script = support::podman::write_tries(&targets, "results.txt");
    script.push_str("echo ok > work.txt");
    repo.write("docs/plans/a.md", &support::one_task("A", "Try"));
    repo.write("docs/plans/b.md", &support::one_task("B", "Write b"));
    repo.write("README.md", "readme\n");
    std::fs::create_dir_all(&home).expect("home");
    std::fs::write(home.join(".bashrc"), "rc\n").expect("bashrc");
    let a = toml_array(&["sh", "-c", &script]);
    let b = toml_array(&["sh", "-c", "echo b > b.txt"]);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nsandbox = \"on\"\n\n\
             [agents.a]\ncommand = {a}\nreport = \"exit\"\nnetwork = \"none\"\n\n\
             [agents.b]\ncommand = {b}\nreport = \"exit\"\nsandbox = \"off\"\n\n\
             [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\nagent = \"a\"\nexecutor = \"container\"\nimage = \"{IMAGE}\"\n\n\
             [[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\nagent = \"b\"\n"
        ),
    );
    repo.commit_all("plans");
    repo.up(&["b"]);
    let before = support::disk_snapshot(&root);
    let home_before = support::disk_snapshot(&home);
    let (code, out, err) =
        repo.run_cmd(repo.orch(&["up", "--json", "a"]).env_remove("ORCH_SANDBOX"));
    assert_eq!(code, 0, "{out}\n{err}");
    let results = repo.git(&["show", "plan/a:results.txt"]);
    support::podman::assert_all_denied(&results, &targets);
    assert_eq!(repo.git(&["show", "plan/a:work.txt"]), "ok");
    // Nothing of the main checkout, the other worktree or HOME changed (the state directory
    // and plan a's worktree change by orch's own hand).
    let after = support::disk_snapshot(&root);
    assert_eq!(
        support::podman::outside_orch(&before, "a"),
        support::podman::outside_orch(&after, "a")
    );
    assert_eq!(home_before, support::disk_snapshot(&home));
    for t in &targets {
        if let Ok(text) = std::fs::read_to_string(t) {
            assert!(!text.ends_with("x\n"), "{} written", t.display());
        }
    }
}

/// A POSIX sh script that starts four processes, each detached from the agent another way (a
/// new session with an empty environment, a double fork, the next attempt's mark forged, one
/// that ignores SIGTERM), each writing into `ghost-loop-<kind>.txt` in a loop; it returns once
/// all four wrote.
fn leave_ghosts() -> String {
    let ghost = |k: &str, first: &str| {
        format!("sh -c '{first}while :; do echo $$ >> ghost-loop-{k}.txt; sleep 0.05; done'")
    };
    format!(
        "env -i /usr/bin/setsid {} & \
         ( {} & ) & \
         env ORCH_CONTAINER_ATTEMPT=p/1.2/1 setsid {} & \
         setsid {} & \
         while [ \"$(ls ghost-loop-*.txt 2>/dev/null | wc -l)\" -lt 4 ]; do sleep 0.05; done",
        ghost("session", ""),
        ghost("fork", ""),
        ghost("forged", ""),
        ghost("deaf", "trap \"\" TERM HUP INT; "),
    )
}

/// A POSIX sh script that writes into `file` how many of [`leave_ghosts`]' processes the
/// container's `/proc` shows alive (by their command line; the agent's own, which holds this
/// script, aside, and a ghost's child between its fork and its exec of `sleep`, which shows its
/// parent's command line for that instant: CI counted 5 of 4 once).
fn ghosts_seen(file: &str) -> String {
    format!(
        "pat=ghost-lo; pat=\"${{pat}}op-\"; n=0; \
         ghost() {{ case \"$(tr '\\000' ' ' < $1 2>/dev/null)\" in *\"ghosts alive\"*) return 1;; *\"$pat\"*) return 0;; esac; return 1; }}; \
         for c in /proc/[0-9]*/cmdline; do \
         ghost $c || continue; pp=; \
         while read -r k v; do [ \"$k\" = PPid: ] && pp=$v; done < ${{c%/cmdline}}/status 2>/dev/null; \
         [ -n \"$pp\" ] && ghost /proc/$pp/cmdline && continue; \
         n=$((n+1)); done; \
         echo \"ghosts alive: $n\" > {file}"
    )
}

/// Task 1.1's agent leaves processes running in the plan's container ([`leave_ghosts`]) and
/// exits. None is alive when task 1.2 runs in the same container, and nothing they write after
/// 1.1's work is taken reaches 1.2's commit. With the agents' sandbox off and on.
#[test]
fn what_an_attempt_leaves_running_in_its_container_is_gone_before_the_next() {
    if !available() || !support::landlock() {
        return;
    }
    let script = format!(
        "if [ \"$ORCH_TASK\" = 1.1 ]; then {}; {}; else {}; fi",
        leave_ghosts(),
        ghosts_seen("seen.txt"),
        ghosts_seen("result.txt")
    );
    for sandbox in ["off", "on"] {
        let repo = container_repo(&script, 2, "", &format!("sandbox = \"{sandbox}\""));
        let (code, out, err) =
            repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
        assert_eq!(code, 0, "{sandbox}: {out}\n{err}");
        assert!(out.contains(&format!("\"sandbox\":\"{sandbox}\"")), "{out}");
        assert_eq!(repo.git(&["show", "plan/p~1:seen.txt"]), "ghosts alive: 4");
        assert_eq!(
            repo.git(&["show", "plan/p:result.txt"]),
            "ghosts alive: 0",
            "{sandbox}"
        );
        // They wrote while 1.1 ran (its commit holds that), nothing after.
        for k in ["session", "fork", "forged", "deaf"] {
            let path = format!("ghost-loop-{k}.txt");
            assert!(
                !repo.git(&["show", &format!("plan/p~1:{path}")]).is_empty(),
                "{sandbox}: {k} never ran"
            );
            assert_eq!(
                repo.git(&["diff", "--stat", "plan/p~1", "plan/p", "--", &path]),
                "",
                "{sandbox}: {k} wrote after its attempt"
            );
        }
    }
}

/// The same processes left by an attempt that orch stops (its timeout): its `podman exec` is
/// killed, orch's wrapper in the container is not told; none is alive when the next attempt
/// runs in the same container. With the agents' sandbox off and on.
#[test]
fn what_a_stopped_attempt_leaves_running_in_its_container_is_gone_before_its_retry() {
    if !available() || !support::landlock() {
        return;
    }
    let script = format!(
        "if [ \"$ORCH_ATTEMPT\" = 1 ]; then {}; {}; sleep 600; else {}; fi",
        leave_ghosts(),
        ghosts_seen("seen.txt"),
        ghosts_seen("result.txt")
    );
    for sandbox in ["off", "on"] {
        let repo = container_repo(
            &script,
            1,
            "",
            &format!("timeout = \"3s\"\ngrace = \"1s\"\nbackoff = \"0s\"\nsandbox = \"{sandbox}\""),
        );
        let manifest = std::fs::read_to_string(repo.root().join("plans.toml")).expect("manifest");
        repo.write(
            "plans.toml",
            &manifest.replacen("retries = 0", "retries = 1", 1),
        );
        repo.commit_all("one retry");
        let (code, out, err) =
            repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
        assert_eq!(code, 0, "{sandbox}: {out}\n{err}");
        let events = support::events(&out);
        assert!(
            events
                .iter()
                .any(|e| e["event"] == "task_failed" && e["attempt"] == 1),
            "{out}"
        );
        assert_eq!(
            repo.git(&["show", "refs/orch/attempts/p/1.1/1:seen.txt"]),
            "ghosts alive: 4",
            "{sandbox}"
        );
        assert_eq!(
            repo.git(&["show", "plan/p:result.txt"]),
            "ghosts alive: 0",
            "{sandbox}: {out}"
        );
    }
}

#[test]
fn with_network_none_the_agent_cannot_reach_a_listener_of_the_host() {
    if !available() {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let script = format!(
        "python3 -c 'import socket\ntry:\n    socket.create_connection((\"127.0.0.1\", {port}), 3); print(\"reached\")\nexcept OSError as e:\n    print(\"refused\")' > net.txt"
    );
    let repo = container_repo(&script, 1, "", "");
    repo.up(&[]);
    assert_eq!(repo.git(&["show", "plan/p:net.txt"]), "refused");
    listener.set_nonblocking(true).expect("nonblocking");
    assert!(
        listener.accept().is_err(),
        "the host's listener was reached"
    );
}

#[test]
fn a_killed_orch_up_leaves_no_container_after_the_next_start() {
    if !available() {
        return;
    }
    // The first attempt marks that it started beside its report directory (the plan's, mounted
    // read-write; the sandbox is off), then waits; the next run's attempt (told by a variable
    // of orch's environment, passed into the container: the next start empties the plan's
    // report directory) completes.
    let script = "if [ -n \"$ORCH_TEST_GO\" ]; then echo done > work.txt; exit 0; fi; \
                  touch \"$ORCH_REPORT_DIR/../started-before\"; sleep 600";
    let repo = container_repo(script, 1, "", "");
    let mark = repo.root().join(".orch/state/.reports/p/started-before");
    let mut child = repo
        .orch(&["up", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    support::process::wait_for("the attempt to start in its container", || mark.exists());
    // This repository's (other runs on this machine, of other tests or sessions, have theirs).
    let old = support::podman::mounting(repo.root());
    assert!(!old.is_empty(), "no container while the attempt runs");
    child.kill().expect("kill -9");
    let _ = child.wait();
    // The container of the killed run is still there (podman does not know orch is gone), unless
    // another orch of this machine (a test running beside this one) already swept it: any orch
    // removes the containers of runs that are dead.
    let after = support::podman::mounting(repo.root());
    assert!(
        after == old || after.is_empty(),
        "after the kill {after:?}, before {old:?}"
    );
    let (code, out, err) = repo.run_cmd(repo.orch(&["up", "--json"]).env("ORCH_TEST_GO", "1"));
    assert_eq!(code, 0, "{out}\n{err}");
    let left: Vec<String> = containers(None)
        .into_iter()
        .filter(|c| old.contains(c))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_eq!(repo.git(&["show", "plan/p:work.txt"]), "done");
}

#[test]
fn bad_container_settings_are_refused_before_anything_runs() {
    // No podman needed: these are refused while reading plans.toml or at the start.
    let repo = Repo::new();
    repo.write("docs/plans/p.md", &support::one_task("P", "x"));
    let command = toml_array(&["true"]);
    for (defaults, agent, want) in [
        (
            "executor = \"container\"\nimage = \"--privileged\"",
            "network = \"none\"",
            "plans.toml:",
        ),
        ("executor = \"contaner\"", "", "\"container\""),
        (
            "executor = \"container\"",
            "network = \"none\"",
            ".devcontainer/devcontainer.json",
        ),
        (
            &format!("executor = \"container\"\nimage = \"{IMAGE}\"\nparallel = 2") as &str,
            "",
            "parallel = 1",
        ),
    ] {
        repo.manifest(&command, agent, defaults, &[("p", "")]);
        repo.commit_all("plans");
        let before = support::disk_snapshot(repo.root());
        let (code, out, err) = repo.run(&["up"]);
        assert_ne!(code, 0, "{defaults}: {out}");
        let all = format!("{out}{err}");
        assert!(all.contains(want), "{defaults}: wanted {want:?} in\n{all}");
        if code != 1 {
            assert_eq!(code, 2, "{defaults}: exit {code}\n{all}");
        }
        assert!(!Path::new(&repo.worktree("p")).exists(), "{defaults}");
        let after = support::disk_snapshot(repo.root());
        let strip = |s: &std::collections::BTreeSet<(String, String)>| -> Vec<(String, String)> {
            s.iter()
                .filter(|(p, _)| !p.starts_with(".git/"))
                .cloned()
                .collect()
        };
        assert_eq!(strip(&before), strip(&after), "{defaults}");
    }
}

/// The extra tries of the confined test, in the probe's result format (`name allowed|denied
/// SECONDS detail`): a listener of the host on every address (`0.0.0.0:PORT`), reached at the
/// container's loopback, at the name podman gives the host, at the host's own address, and
/// through orch's proxy at that address.
const HOST_TRIES: &str = r#"
import os, socket, sys, time
port, host_ip = int(sys.argv[1]), sys.argv[2]
def one(name, fn):
    t = time.monotonic()
    try:
        ok, detail = fn()
    except Exception as e:
        ok, detail = False, type(e).__name__
    print("%s %s %.3f %s" % (name, "allowed" if ok else "denied", time.monotonic() - t, detail))
def connect(host):
    s = socket.create_connection((host, port), 3)
    s.sendall(b"GET /leak HTTP/1.0\r\n\r\n")
    return bool(s.recv(100)), "answered"
def proxied():
    h, p = os.environ["HTTPS_PROXY"][len("http://"):].rsplit(":", 1)
    s = socket.create_connection((h, int(p)), 3)
    s.sendall(b"CONNECT %s:%d HTTP/1.1\r\n\r\n" % (host_ip.encode(), port))
    head = s.recv(200).split(b"\r\n")[0]
    return b" 200 " in head + b" ", head.decode().replace(" ", "_")
one("host_any_loopback", lambda: connect("127.0.0.1"))
one("host_any_by_name", lambda: connect("host.containers.internal"))
one("host_any_address", lambda: connect(host_ip))
one("host_any_proxied", proxied)
"#;

/// This host's address on its default route (no packet is sent), or `None`.
fn host_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    Some(s.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback())
}

#[test]
fn a_confined_agent_in_a_container_reaches_its_allowed_endpoint_and_nothing_else() {
    use support::net_probe::{ALLOWED, DENIED, parse_results, servers};
    if !available() {
        return;
    }
    for sandbox in ["off", "on"] {
        if sandbox == "on" && !support::landlock() {
            continue;
        }
        let s = servers();
        let any = support::sink::Server::start("0.0.0.0:0", "host-any-server");
        let host_ip = host_address().map_or("127.0.0.9".to_string(), |ip| ip.to_string());
        let repo = Repo::builder().timeout(Duration::from_secs(300)).build();
        repo.write(
            "docs/plans/p.md",
            &support::one_task("P", "Probe the network"),
        );
        repo.write(
            "probe.py",
            &std::fs::read_to_string(support::fixtures().join("net_probe.py")).expect("probe"),
        );
        repo.write("host_tries.py", HOST_TRIES);
        let script = format!(
            "python3 probe.py {} {} && python3 host_tries.py {} {host_ip} >> results.txt",
            s.allowed.addr.port(),
            s.other.addr.port(),
            any.addr.port()
        );
        let command = toml_array(&["sh", "-c", &script]);
        repo.manifest(
            &command,
            "report = \"exit\"",
            &format!(
                "retries = 0\nexecutor = \"container\"\nimage = \"{IMAGE}\"\nnetwork_allow = [\"127.0.0.1:{}\"]",
                s.allowed.addr.port()
            ),
            &[("p", "")],
        );
        repo.commit_all("plans");
        let started = Instant::now();
        let (code, out, err) =
            repo.run_cmd(repo.orch(&["up", "--json"]).env("ORCH_SANDBOX", sandbox));
        eprintln!(
            "sandbox {sandbox}: orch up of 1 confined task in a container: {:.2?}",
            started.elapsed()
        );
        assert_eq!(code, 0, "sandbox {sandbox}: {out}\n{err}");
        let events = support::events(&out);
        let run = events
            .iter()
            .find(|e| e["event"] == "run_started")
            .expect("run_started");
        assert_eq!(run["network"], "confined", "{run}");
        let log = String::from_utf8_lossy(&repo.read(".orch/logs/p/1.1.log")).into_owned();
        let got = parse_results(&repo.git(&["show", "plan/p:results.txt"]));
        for name in ALLOWED {
            let (ok, _, detail) = got.get(name).unwrap_or_else(|| panic!("{name}: {got:?}"));
            assert!(ok, "sandbox {sandbox}: {name} failed ({detail})\n{log}");
        }
        let host = [
            "host_any_loopback",
            "host_any_by_name",
            "host_any_address",
            "host_any_proxied",
        ];
        for name in DENIED.iter().chain(&host) {
            let (ok, secs, detail) = got.get(*name).unwrap_or_else(|| panic!("{name}: {got:?}"));
            assert!(
                !ok,
                "sandbox {sandbox}: {name} got through ({detail})\n{log}"
            );
            assert!(
                *secs < 3.5,
                "sandbox {sandbox}: {name} took {secs}s ({detail})"
            );
        }
        // The allowed server saw the three requests, the others nothing.
        let hits = s.allowed.hits();
        for path in ["/direct", "/connect", "/plain"] {
            assert!(hits.iter().any(|h| h.contains(path)), "{path}: {hits:?}");
        }
        assert_eq!(s.other.hits(), Vec::<String>::new());
        assert_eq!(s.other_address.hits(), Vec::<String>::new());
        assert_eq!(any.hits(), Vec::<String>::new());
        // Refusals are logged with their destination, as on the host.
        let other = s.other.addr.port();
        for dest in [
            format!("refused 127.0.0.1:{other} (CONNECT through orch's proxy"),
            "refused leak.example:443 (CONNECT through orch's proxy".to_string(),
            "refused leak.example (a DNS query over UDP to 127.0.0.53:53".to_string(),
        ] {
            assert!(
                log.lines()
                    .any(|l| l.starts_with("=== orch: network: ") && l.contains(&dest)),
                "sandbox {sandbox}: `{dest}` not logged\n{log}"
            );
        }
        assert_eq!(repo.task("p", "1.1")["status"], "completed");
    }
}

#[test]
fn two_confined_tasks_in_one_container_each_get_the_proxy() {
    // The second attempt opens its sockets in the namespace the first one's were in.
    if !available() {
        return;
    }
    let s = support::net_probe::servers();
    let port = s.allowed.addr.port();
    let script = format!(
        "python3 -c 'import os, socket\nh, p = os.environ[\"HTTPS_PROXY\"][7:].rsplit(\":\", 1)\nc = socket.create_connection((h, int(p)), 5)\nc.sendall(b\"CONNECT 127.0.0.1:{port} HTTP/1.1\\r\\n\\r\\n\")\nprint(c.recv(100).split(b\"\\r\\n\")[0].decode())' > \"t-$ORCH_TASK.txt\""
    );
    let repo = Repo::builder().timeout(Duration::from_secs(300)).build();
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two\n- [ ] 1.3 Three\n",
    );
    repo.manifest(
        &toml_array(&["sh", "-c", &script]),
        "report = \"exit\"",
        &format!(
            "retries = 0\nexecutor = \"container\"\nimage = \"{IMAGE}\"\nnetwork_allow = [\"127.0.0.1:{port}\"]"
        ),
        &[("p", "")],
    );
    repo.commit_all("plans");
    let started = Instant::now();
    repo.up(&[]);
    eprintln!(
        "orch up of 3 confined tasks in a container: {:.2?}",
        started.elapsed()
    );
    for id in ["1.1", "1.2", "1.3"] {
        let line = repo.git(&["show", &format!("plan/p:t-{id}.txt")]);
        assert!(line.contains(" 200 "), "task {id}: {line}");
    }
}

#[test]
fn a_tasks_check_runs_in_the_plans_container() {
    // The check sees what only the plan's container has; a check that needs this host fails.
    if !available() {
        return;
    }
    for (sandbox, network) in [("off", "none"), ("on", "confined")] {
        if sandbox == "on" && !support::landlock() {
            continue;
        }
        // The plan's own container: its first process is orch's keeper (`orch container-init`); with
        // the sandbox off, the agent also leaves a file in the container's own /opt.
        let inside = if sandbox == "off" {
            "test -e /run/.containerenv && grep -q container-init /proc/1/cmdline && test \"$(cat /opt/mark)\" = agent"
        } else {
            "test -e /run/.containerenv && grep -q container-init /proc/1/cmdline"
        };
        for (check, passes) in [(inside, true), ("test ! -e /run/.containerenv", false)] {
            let script = "(echo agent > /opt/mark) 2>/dev/null; echo ok > work.txt";
            let repo = container_repo(script, 1, "", "");
            let command = toml_array(&["sh", "-c", script]);
            let agent = if network == "none" {
                "report = \"exit\"\nnetwork = \"none\""
            } else {
                "report = \"exit\""
            };
            repo.manifest(
                &command,
                agent,
                &format!(
                    "retries = 0\nexecutor = \"container\"\nimage = \"{IMAGE}\"\ncheck = {}",
                    toml_array(&["sh", "-c", check])
                ),
                &[("p", "")],
            );
            repo.commit_all("check");
            let (code, out, err) =
                repo.run_cmd(repo.orch(&["up", "--json"]).env("ORCH_SANDBOX", sandbox));
            let status = repo.task("p", "1.1")["status"].clone();
            let what = format!("sandbox {sandbox}, network {network}, check `{check}`");
            if passes {
                assert_eq!(code, 0, "{what}: {out}\n{err}");
                assert_eq!(status, "completed", "{what}");
                assert_eq!(repo.git(&["show", "plan/p:work.txt"]), "ok", "{what}");
            } else {
                assert_ne!(status, "completed", "{what}: {out}");
                let log =
                    String::from_utf8_lossy(&repo.read(".orch/logs/p/1.1.check.log")).into_owned();
                assert!(log.contains("exit status 1"), "{what}: {log}");
            }
        }
    }
}

#[test]
fn verify_of_a_container_plan_runs_in_a_container_of_its_image() {
    // `orch merge`'s verify sees what only a container of the plan's image has, and with the
    // confined network reaches its allowed endpoint through orch's proxy; a verify that needs
    // this host refuses the merge.
    if !available() {
        return;
    }
    let s = support::net_probe::servers();
    let port = s.allowed.addr.port();
    let through_proxy = format!(
        "python3 -c 'import os, socket\nh, p = os.environ[\"HTTPS_PROXY\"][7:].rsplit(\":\", 1)\nc = socket.create_connection((h, int(p)), 5)\nc.sendall(b\"CONNECT 127.0.0.1:{port} HTTP/1.1\\r\\n\\r\\n\")\nassert b\" 200 \" in c.recv(100)'"
    );
    let inside = "test -e /run/.containerenv && grep -q container-init /proc/1/cmdline".to_string();
    for (sandbox, network) in [("off", "none"), ("on", "confined")] {
        if sandbox == "on" && !support::landlock() {
            continue;
        }
        let passing = if network == "confined" {
            format!("{inside} && {through_proxy}")
        } else {
            inside.clone()
        };
        for (verify, passes) in [
            (passing.as_str(), true),
            ("test ! -e /run/.containerenv", false),
        ] {
            let repo = Repo::builder().timeout(Duration::from_secs(300)).build();
            repo.write("docs/plans/p.md", &support::one_task("P", "Write"));
            let agent = if network == "none" {
                "report = \"exit\"\nnetwork = \"none\""
            } else {
                "report = \"exit\""
            };
            repo.manifest(
                &toml_array(&["sh", "-c", "echo ok > work.txt"]),
                agent,
                &format!(
                    "retries = 0\nintegrate = \"off\"\nexecutor = \"container\"\nimage = \"{IMAGE}\"\nnetwork_allow = [\"127.0.0.1:{port}\"]\nverify = {}",
                    toml_array(&["sh", "-c", verify])
                ),
                &[("p", "")],
            );
            repo.commit_all("plans");
            let (code, out, err) =
                repo.run_cmd(repo.orch(&["up", "--json"]).env("ORCH_SANDBOX", sandbox));
            let what = format!("sandbox {sandbox}, network {network}, verify `{verify}`");
            assert_eq!(code, 0, "{what}: {out}\n{err}");
            let main = repo.rev("main");
            let started = Instant::now();
            let (code, out, err) =
                repo.run_cmd(repo.orch(&["merge", "p"]).env("ORCH_SANDBOX", sandbox));
            eprintln!("{what}: orch merge {:.2?}", started.elapsed());
            let log =
                String::from_utf8_lossy(&repo.read(".orch/logs/p/merge-verify.log")).into_owned();
            if passes {
                assert_eq!(code, 0, "{what}: {out}\n{err}\n{log}");
                assert_ne!(repo.rev("main"), main, "{what}: main did not move");
                assert!(repo.tree_files("main").contains(&"work.txt".to_string()));
            } else {
                assert_ne!(code, 0, "{what}: {out}\n{err}");
                assert_eq!(repo.rev("main"), main, "{what}: main moved");
            }
        }
    }
}

/// An agent's attempts on every process of its container it did not start (the first process
/// that keeps the container, and anything else spared between attempts): `PTRACE_ATTACH`,
/// `PTRACE_SEIZE`, `/proc/PID/mem` opened for writing, `process_vm_writev`; where one is let in,
/// the process is made to run a loop that writes `late.txt` into the worktree (a process spared
/// between attempts that runs the agent's code outlives its attempt). One line a try in
/// `tries.txt`.
const TRACE_PY: &str = r#"import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
class Regs(ctypes.Structure):
    _fields_ = [(n, ctypes.c_ulonglong) for n in
      "r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ss fs_base gs_base ds es fs gs".split()]
class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
mine = set()
p = os.getpid()
while p > 0:
    mine.add(p)
    p = int(open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()[1])
late = os.path.join(os.getcwd(), "late.txt")
out = open("tries.txt", "w")
def inject(pid):
    regs = Regs(); libc.ptrace(12, pid, None, ctypes.addressof(regs))
    argv = [b"/bin/sh", b"-c", ("while :; do echo $$ >> %s; sleep 0.05; done" % late).encode()]
    base = (regs.rsp - 4096) & ~0xf
    blob = b""; ptrs = []
    for a in argv:
        ptrs.append(base + len(blob)); blob += a + b"\0"
    while len(blob) % 8: blob += b"\0"
    arr = base + len(blob)
    blob += b"".join(struct.pack("<Q", x) for x in ptrs) + struct.pack("<Q", 0)
    with open("/proc/%d/mem" % pid, "r+b", buffering=0) as m:
        m.seek(base); m.write(blob); m.seek(regs.rip); m.write(b"\x0f\x05")
    regs.rax = 59; regs.orig_rax = 2**64 - 1; regs.rdi = ptrs[0]; regs.rsi = arr; regs.rdx = 0
    regs.rsp = base - 64
    libc.ptrace(13, pid, None, ctypes.addressof(regs)); libc.ptrace(17, pid, None, None)
for d in sorted(os.listdir("/proc")):
    if not d.isdigit() or int(d) in mine:
        continue
    pid = int(d)
    for name, req in [("attach", 16), ("seize", 0x4206)]:
        if libc.ptrace(req, pid, None, None) == -1:
            out.write("%d %s: refused %s\n" % (pid, name, os.strerror(ctypes.get_errno())))
            continue
        out.write("%d %s: let in\n" % (pid, name))
        try:
            if req == 0x4206:
                libc.ptrace(0x4207, pid, None, None)
            os.waitpid(pid, 0)
            inject(pid)
        except Exception as e:
            out.write("%d inject: %s\n" % (pid, e))
    try:
        open("/proc/%d/mem" % pid, "r+b", buffering=0).close()
        out.write("%d mem: let in\n" % pid)
    except OSError as e:
        out.write("%d mem: refused %s\n" % (pid, e.strerror))
    buf = ctypes.create_string_buffer(8)
    local = IoVec(ctypes.cast(buf, ctypes.c_void_p), 8)
    remote = IoVec(ctypes.c_void_p(0x10000), 8)
    libc.syscall.restype = ctypes.c_long
    r = libc.syscall(ctypes.c_long(311), ctypes.c_long(pid), ctypes.byref(local),
                     ctypes.c_ulong(1), ctypes.byref(remote), ctypes.c_ulong(1), ctypes.c_ulong(0))
    if r == -1 and ctypes.get_errno() in (1, 13):
        out.write("%d vm_writev: refused %s\n" % (pid, os.strerror(ctypes.get_errno())))
    else:
        out.write("%d vm_writev: let in (%d, %s)\n" % (pid, r, os.strerror(ctypes.get_errno())))
out.close()
"#;

/// Task 1.1's agent tries to run code of its own in every process of the container it did not
/// start ([`TRACE_PY`]): each try is refused (the container's first process is orch's, not
/// dumpable, and no process of the container may trace one that is not), and nothing writes into
/// the worktree after 1.1's work is taken. Sandbox off (the agent is the container's root user,
/// as that process's is) and on.
#[test]
fn an_agent_cannot_run_its_code_in_a_process_that_outlives_its_attempt() {
    if !available() || !support::landlock() {
        return;
    }
    let script = "if [ \"$ORCH_TASK\" = 1.1 ]; then python3 trace.py; \
                  else ls > listed.txt; fi";
    for sandbox in ["off", "on"] {
        let repo = container_repo(script, 2, "", &format!("sandbox = \"{sandbox}\""));
        repo.write("trace.py", TRACE_PY);
        repo.commit_all("the agent's tracer");
        let (code, out, err) =
            repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
        assert_eq!(code, 0, "{sandbox}: {out}\n{err}");
        let tries = repo.git(&["show", "plan/p~1:tries.txt"]);
        // The container's first process at least was tried, each way.
        for way in ["attach", "seize", "mem", "vm_writev"] {
            assert!(
                tries
                    .lines()
                    .any(|l| l.starts_with(&format!("1 {way}: refused"))),
                "{sandbox}: {way}\n{tries}"
            );
        }
        assert!(!tries.contains("let in"), "{sandbox}:\n{tries}");
        assert!(
            !repo
                .git(&["show", "plan/p:listed.txt"])
                .contains("late.txt"),
            "{sandbox}: something wrote after its attempt"
        );
    }
}
