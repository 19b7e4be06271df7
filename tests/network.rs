//! The network of agents, end to end through a real `orch up` with a scripted agent
//! (`tests/fixtures/agents/net_probe.py`) that tries every way out: under `network =
//! "confined"` (the default) an allowed loopback endpoint works, directly and through orch's
//! proxy, and any other loopback address or port, a `CONNECT` to a host not allowed, a DNS
//! query over UDP and a raw socket all fail within a second, each logged with its destination;
//! a double-forked daemon is confined the same way; `none` allows nothing; `open` is the
//! machine's network. Where namespaces cannot be made, `confined` asked for refuses to start.
//! Only loopback addresses are used.

use crate::support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use support::net_probe::{
    DENIED, Servers, orch_without_namespaces, parse_results, probe_argv, servers,
};
use support::sink::python;
use support::{Repo, fixtures, one_task, toml_array};

/// A repository whose plan `a` runs the probe against `servers`; `agent_extra`, `defaults`:
/// more lines for the agent's table and `[defaults]`.
fn probe_repo(servers: &Servers, agent_extra: &str, defaults: &str) -> Repo {
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/a.md", &one_task("A", "Probe the network"));
    let command = toml_array(&probe_argv(servers, &[]));
    repo.manifest(
        &command,
        &format!("report = \"exit\"\n{agent_extra}"),
        &format!("retries = 0\n{defaults}"),
        &[("a", "")],
    );
    repo.commit_all("plans");
    repo
}

/// `name -> (allowed, seconds, detail)` of the probe's results on plan/a.
fn results(repo: &Repo) -> BTreeMap<String, (bool, f64, String)> {
    parse_results(&repo.git(&["show", "plan/a:results.txt"]))
}

fn log_of(repo: &Repo) -> String {
    String::from_utf8_lossy(&repo.read(".orch/logs/a/1.1.log")).into_owned()
}

/// Runs `orch up --json` (with `sandbox`: `on` or `off`) to the end; its events.
fn up(repo: &Repo, sandbox: &str) -> Vec<serde_json::Value> {
    let (code, out, err) = repo.run_cmd(
        repo.orch(&["up", "--json", "a"])
            .env("ORCH_SANDBOX", sandbox),
    );
    assert_eq!(code, 0, "orch up failed\n{out}\n{err}");
    assert!(
        err.lines().any(|l| l.starts_with("network: ")),
        "no `network:` line at start\n{err}"
    );
    support::events(&out)
}

#[test]
fn a_confined_agent_reaches_its_allowed_endpoint_and_nothing_else() {
    // The rule is orch's (the namespace and its proxy), with or without Landlock.
    for sandbox in ["off", "on"] {
        if sandbox == "on" && !orch::sandbox::supported() {
            continue;
        }
        let s = servers();
        let allow = format!("network_allow = [\"127.0.0.1:{}\"]", s.allowed.addr.port());
        let repo = probe_repo(&s, "", &allow);
        let events = up(&repo, sandbox);
        let started = events
            .iter()
            .find(|e| e["event"] == "run_started")
            .expect("run_started");
        assert_eq!(started["network"], "confined", "{started}");
        let got = results(&repo);
        let log = log_of(&repo);
        for name in [
            "direct_allowed",
            "proxy_connect_allowed",
            "proxy_plain_allowed",
        ] {
            let (ok, _, detail) = &got[name];
            assert!(ok, "sandbox {sandbox}: {name} failed ({detail})\n{log}");
        }
        for name in DENIED {
            let (ok, secs, detail) = got
                .get(name)
                .unwrap_or_else(|| panic!("{name} missing: {got:?}"));
            assert!(
                !ok,
                "sandbox {sandbox}: {name} got through ({detail})\n{log}"
            );
            assert!(
                *secs < 1.0,
                "sandbox {sandbox}: {name} took {secs}s to fail ({detail})"
            );
        }
        // The allowed server saw the three requests, the others nothing.
        let hits = s.allowed.hits();
        for path in ["/direct", "/connect", "/plain"] {
            assert!(
                hits.iter().any(|h| h.contains(path)),
                "{path} not served: {hits:?}"
            );
        }
        assert_eq!(s.other.hits(), Vec::<String>::new());
        assert_eq!(s.other_address.hits(), Vec::<String>::new());
        // Each refusal is logged with its destination, one line each.
        let other = s.other.addr.port();
        let allowed = s.allowed.addr.port();
        for dest in [
            format!("refused 127.0.0.1:{other} (a connection to a port where nothing listens"),
            format!("refused 127.0.0.2:{allowed} (a connection to a port where nothing listens"),
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
        // Counted for the task, and the plan's network shown.
        let (code, json, err) = repo.run(&["status", "--json", "--plan", "a"]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(v["network"], "confined", "{v}");
        let refused = v["tasks"][0]["network_refused"].as_u64().unwrap_or(0);
        assert!(refused >= 6, "network_refused {refused}\n{log}");
        assert_eq!(repo.task("a", "1.1")["status"], "completed");
        // The task passed: one note of orch up says what it could not reach.
        let notes: Vec<&str> = events
            .iter()
            .filter(|e| e["event"] == "note")
            .filter_map(|e| e["message"].as_str())
            .filter(|m| m.starts_with("a 1.1: ") && m.contains("refused by orch in this run"))
            .collect();
        assert_eq!(notes.len(), 1, "sandbox {sandbox}: {events:?}");
        assert!(notes[0].contains("orch logs a 1.1"), "{}", notes[0]);
    }
}

#[test]
fn network_none_reaches_nothing_and_open_reaches_everything() {
    let s = servers();
    let repo = probe_repo(
        &s,
        "network = \"none\"",
        &format!("network_allow = [\"127.0.0.1:{}\"]", s.allowed.addr.port()),
    );
    let events = up(&repo, "off");
    let started = events
        .iter()
        .find(|e| e["event"] == "run_started")
        .expect("run_started");
    assert_eq!(started["network"], "none", "{started}");
    let got = results(&repo);
    for (name, (ok, secs, detail)) in &got {
        assert!(!ok, "network none: {name} got through ({detail})");
        assert!(*secs < 1.0, "network none: {name} took {secs}s ({detail})");
    }
    assert!(got.len() >= 10, "{got:?}");
    assert_eq!(s.allowed.hits(), Vec::<String>::new());

    let s = servers();
    let repo = probe_repo(&s, "network = \"open\"", "");
    let events = up(&repo, "off");
    let started = events
        .iter()
        .find(|e| e["event"] == "run_started")
        .expect("run_started");
    assert_eq!(started["network"], "open", "{started}");
    let got = results(&repo);
    for name in [
        "direct_allowed",
        "direct_other_port",
        "direct_other_address",
        "daemon_other_port",
    ] {
        assert!(got[name].0, "network open: {name} failed ({})", got[name].2);
    }
    assert!(!s.other.hits().is_empty());
    assert!(!s.other_address.hits().is_empty());
}

#[test]
fn where_namespaces_cannot_be_made_confined_asked_for_refuses_and_the_default_says_so() {
    let s = servers();
    // Asked for: refused, nothing run.
    let repo = probe_repo(&s, "network = \"confined\"", "");
    let (code, out, err) =
        repo.run_cmd(&mut orch_without_namespaces(&repo, &["up", "--json", "a"]));
    assert_eq!(code, 6, "{out}\n{err}");
    assert!(
        err.contains("cannot be enforced") && err.contains("network namespace"),
        "{err}"
    );
    assert!(err.contains("hint: set `network = \"open\"`"), "{err}");
    assert!(!repo.branch_exists("plan/a"), "a plan branch was made");
    assert_eq!(s.allowed.hits(), Vec::<String>::new());
    // The default: where Landlock has TCP rules (ABI 4), each agent may connect only to orch's
    // proxy (on the machine's loopback) and its allowed endpoints' ports; else unconfined. Said
    // at start and in run_started either way.
    let allow = format!("network_allow = [\"127.0.0.1:{}\"]", s.allowed.addr.port());
    let repo = probe_repo(&s, "", &allow);
    let (code, out, err) =
        repo.run_cmd(&mut orch_without_namespaces(&repo, &["up", "--json", "a"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("network: "))
        .unwrap_or_default();
    let started = support::events(&out)
        .into_iter()
        .find(|e| e["event"] == "run_started")
        .expect("run_started");
    let got = results(&repo);
    if orch::sandbox::abi() >= 4 {
        assert!(
            line.starts_with("network: ports only: this machine cannot make a network namespace"),
            "{err}"
        );
        assert_eq!(started["network"], "ports", "{started}");
        for name in [
            "direct_allowed",
            "proxy_connect_allowed",
            "proxy_plain_allowed",
        ] {
            assert!(got[name].0, "{name} failed ({})", got[name].2);
        }
        for name in [
            "direct_other_port",
            "proxy_connect_other",
            "proxy_connect_name",
            "raw_socket",
            "daemon_other_port",
        ] {
            assert!(!got[name].0, "{name} got through ({})", got[name].2);
        }
        assert_eq!(s.other.hits(), Vec::<String>::new());
        // Landlock's rules are by port: the allowed port on another address is reachable.
        assert!(
            got["direct_other_address"].0,
            "{:?}",
            got["direct_other_address"]
        );
    } else {
        assert!(
            line.contains("not confined: this machine cannot make a network namespace"),
            "{err}"
        );
        assert_eq!(started["network"], "unavailable", "{started}");
        assert!(got["direct_other_port"].0);
    }
}

#[test]
fn a_task_that_fails_after_a_refusal_names_it_in_its_cause() {
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/a.md", &one_task("A", "Fetch a dependency"));
    let script = "import os, socket\n\
        host, port = os.environ['HTTPS_PROXY'][7:].rsplit(':', 1)\n\
        s = socket.create_connection((host, int(port)), timeout=5)\n\
        s.sendall(b'CONNECT registry.example:443 HTTP/1.1\\r\\n\\r\\n')\n\
        print(s.recv(200).split(b'\\r\\n')[0].decode())\n\
        raise SystemExit(1)\n";
    repo.manifest(
        &toml_array(&[python().as_str(), "-c", script]),
        "report = \"exit\"",
        "retries = 0",
        &[("a", "")],
    );
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["up", "--json", "a"]);
    assert_ne!(code, 0, "{out}\n{err}");
    let task = repo.task("a", "1.1");
    assert_eq!(task["status"], "failed", "{task}");
    let error = task["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(
            "after 1 network connection refused by orch, the last to registry.example:443"
        ),
        "{error}"
    );
    let log = log_of(&repo);
    assert!(log.contains("HTTP/1.1 403 Forbidden"), "{log}");
}

#[test]
fn a_user_who_is_not_root_is_confined_the_same_way() {
    // The namespace then lives in a user namespace that maps the user's own uid. Run as
    // `nobody` where this test runs as root (CI does); skipped otherwise.
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let (Some(setpriv), true) = (setpriv, nix::unistd::geteuid().is_root()) else {
        eprintln!("skipped: not root, or no setpriv");
        return;
    };
    let s = servers();
    let allow = format!("network_allow = [\"127.0.0.1:{}\"]", s.allowed.addr.port());
    let repo = probe_repo(&s, "", &allow);
    // Everything the user runs or reads is theirs: orch, the probe, the repository, its HOME.
    let bin = repo.outside("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let orch = bin.join("orch");
    std::fs::copy(env!("CARGO_BIN_EXE_orch"), &orch).expect("copy orch");
    let manifest = String::from_utf8_lossy(&repo.read("plans.toml")).into_owned();
    let probe = bin.join("net_probe.py");
    std::fs::copy(fixtures().join("net_probe.py"), &probe).expect("copy probe");
    repo.write(
        "plans.toml",
        &manifest.replace(
            &fixtures().join("net_probe.py").display().to_string(),
            &probe.display().to_string(),
        ),
    );
    repo.commit_all("the probe where the user reads it");
    for dir in [repo.root(), repo.home(), bin.as_path()] {
        let st = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(dir)
            .status()
            .expect("chown");
        assert!(st.success());
    }
    let mut up = Command::new(setpriv);
    up.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(&orch)
        .args(["up", "--json", "a"])
        .current_dir(repo.root())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", repo.home())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("ORCH_SANDBOX", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (code, out, err) = repo.run_cmd(&mut up);
    assert_eq!(code, 0, "{out}\n{err}");
    let started = support::events(&out)
        .into_iter()
        .find(|e| e["event"] == "run_started")
        .expect("run_started");
    assert_eq!(started["network"], "confined", "{started}\n{err}");
    // (The repository is the user's now: read as files, git refuses another owner's.)
    let text = std::fs::read_to_string(repo.worktree("a").join("results.txt")).expect("results");
    let got = parse_results(&text);
    for name in [
        "direct_allowed",
        "proxy_connect_allowed",
        "proxy_plain_allowed",
    ] {
        assert!(got[name].0, "{name} failed ({})", got[name].2);
    }
    for name in DENIED {
        let (ok, secs, detail) = &got[name];
        assert!(!ok && *secs < 1.0, "{name}: {ok} in {secs}s ({detail})");
    }
    assert_eq!(s.other.hits(), Vec::<String>::new());
    assert_eq!(s.other_address.hits(), Vec::<String>::new());
}

/// Each agent of a plan reaches what its own settings say, never its plan agent's: plan `a`'s
/// agent `lim` has `network = "open"` and hits a usage limit at once; its fallback (`shut`, with
/// `network = "none"`, or `conf`, the default with the allowed port in its `network_allow`) takes
/// the task and probes the network: `shut`'s attempt reaches nothing, `conf`'s only its allowed
/// endpoint. (Best of N refuses agents whose sandbox differs from the plan agent's.) Before:
/// a fallback's attempt had the plan agent's network, so both got out.
#[test]
fn a_fallback_agent_gets_its_own_network_never_the_plan_agents() {
    for (fallback, extra) in [("shut", "network = \"none\""), ("conf", "")] {
        let s = servers();
        let out = tempfile::tempdir().expect("tmp");
        let results = out.path().join("results.txt");
        let repo = Repo::bare_minimum();
        repo.write("docs/plans/a.md", &one_task("A", "Probe the network"));
        let mut probe = probe_argv(&s, &[&results.display().to_string()]);
        // The probe, then a change of the task's own.
        probe.splice(
            0..0,
            [
                "sh".to_string(),
                "-c".to_string(),
                format!("\"$0\" \"$@\" && echo {fallback} > who.txt"),
            ],
        );
        let limited = support::agent_at(
            "limited_agent.sh",
            &[
                out.path(),
                std::path::Path::new("A"),
                std::path::Path::new("first"),
            ],
        );
        repo.write(
            "plans.toml",
            &format!(
                "[defaults]\nagent = \"lim\"\nretries = 0\nsandbox = \"off\"\n\
                 network_allow = [\"127.0.0.1:{}\"]\n\n\
                 [agents.lim]\ncommand = {limited}\nnetwork = \"open\"\nfallback = [\"{fallback}\"]\n\n\
                 [agents.{fallback}]\ncommand = {}\nreport = \"exit\"\n{extra}\n\n\
                 [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\n",
                s.allowed.addr.port(),
                toml_array(&probe),
            ),
        );
        repo.commit_all("plans");
        let mut cmd = repo.orch(&["up", "--json", "a"]);
        cmd.env("ORCH_LIMIT_BACKOFF_MS", "600000");
        let (code, stdout, err) = repo.run_cmd(&mut cmd);
        assert_eq!(code, 0, "{fallback}: orch up failed\n{stdout}\n{err}");
        let task = repo.task("a", "1.1");
        assert_eq!(task["status"], "completed", "{fallback}: {task}");
        assert_eq!(task["orchAgent"], fallback, "{fallback}: {task}");
        let text = std::fs::read_to_string(&results)
            .unwrap_or_else(|e| panic!("{fallback} wrote no results: {e}\n{stdout}\n{err}"));
        let got = parse_results(&text);
        assert!(got.len() >= 10, "{fallback}: {got:?}");
        if fallback == "conf" {
            assert!(got["direct_allowed"].0, "{fallback}: {got:?}");
        } else {
            assert!(!got["direct_allowed"].0, "{fallback} (none): {got:?}");
        }
        for name in DENIED {
            let (ok, _, detail) = got
                .get(name)
                .unwrap_or_else(|| panic!("{name} missing: {got:?}"));
            assert!(!ok, "{fallback}: {name} got through ({detail})");
        }
    }
}

/// The check of a fallback's attempt runs on the fallback's work, in the fallback's network,
/// never the plan agent's (red team 5: a `network = "none"` fallback wrote a test that the
/// check ran with the plan agent's open network, and it reached a listener here). The probe
/// runs as the task's `check`; `shut` reaches nothing, `conf` only its allowed endpoint.
#[test]
fn a_fallback_agents_check_runs_in_the_fallbacks_network() {
    for (fallback, extra) in [("shut", "network = \"none\""), ("conf", "")] {
        let s = servers();
        let out = tempfile::tempdir().expect("tmp");
        let results = out.path().join("results.txt");
        let repo = Repo::bare_minimum();
        repo.write("docs/plans/a.md", &one_task("A", "Probe the network"));
        let probe = probe_argv(&s, &[&results.display().to_string()]);
        let limited = support::agent_at(
            "limited_agent.sh",
            &[
                out.path(),
                std::path::Path::new("A"),
                std::path::Path::new("first"),
            ],
        );
        repo.write(
            "plans.toml",
            &format!(
                "[defaults]\nagent = \"lim\"\nretries = 0\nsandbox = \"off\"\n\
                 network_allow = [\"127.0.0.1:{}\"]\n\n\
                 [agents.lim]\ncommand = {limited}\nnetwork = \"open\"\nfallback = [\"{fallback}\"]\n\n\
                 [agents.{fallback}]\ncommand = [\"sh\", \"-c\", \"echo {fallback} > who.txt\"]\nreport = \"exit\"\n{extra}\n\n\
                 [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\ncheck = {}\n",
                s.allowed.addr.port(),
                toml_array(&probe),
            ),
        );
        repo.commit_all("plans");
        let mut cmd = repo.orch(&["up", "--json", "a"]);
        cmd.env("ORCH_LIMIT_BACKOFF_MS", "600000");
        let (code, stdout, err) = repo.run_cmd(&mut cmd);
        assert_eq!(code, 0, "{fallback}: orch up failed\n{stdout}\n{err}");
        let task = repo.task("a", "1.1");
        assert_eq!(task["status"], "completed", "{fallback}: {task}");
        assert_eq!(task["orchAgent"], fallback, "{fallback}: {task}");
        let text = std::fs::read_to_string(&results).unwrap_or_else(|e| {
            panic!("{fallback}'s check wrote no results: {e}\n{stdout}\n{err}")
        });
        let got = parse_results(&text);
        assert!(got.len() >= 10, "{fallback}: {got:?}");
        assert_eq!(
            got["direct_allowed"].0,
            fallback == "conf",
            "{fallback}: {got:?}"
        );
        for name in DENIED {
            let (ok, _, detail) = got
                .get(name)
                .unwrap_or_else(|| panic!("{name} missing: {got:?}"));
            assert!(!ok, "{fallback}: {name} got through ({detail})");
        }
    }
}
