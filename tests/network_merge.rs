//! The network of `verify` and of a resolving agent, end to end: real repositories, a real
//! `orch up` whose scripted agent finishes a plan, then `orch merge`, the merge train of
//! `orch up`, `orch integrate` and `orch resolve` running the probe
//! (`tests/fixtures/agents/net_probe.py`) as `verify` or inside the resolver: under the plans'
//! `network` (the default, confined) the allowed loopback endpoint works, directly and through
//! orch's proxy, and another port, another loopback address, a `CONNECT` to a host not allowed,
//! a DNS query over UDP and a raw socket all fail within a second, each refusal logged with its
//! destination in the log of that verify or resolver; `none` allows nothing; `open` is the
//! machine's network. Where namespaces cannot be made, `confined` asked for refuses (exit 6),
//! nothing moved. Only loopback addresses are used.

use crate::support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use support::net_probe::{
    ALLOWED, DENIED, Servers, orch_without_namespaces, parse_results, probe_argv, servers,
};
use support::{Repo, fixtures, one_task, toml_array};

/// `name -> (allowed, seconds, detail)` of the probe's lines in `log`.
fn results(log: &str) -> BTreeMap<String, (bool, f64, String)> {
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("probe: "))
        .collect();
    parse_results(&lines.join("\n"))
}

/// Confined: the allowed endpoint reached three ways, everything else refused within a
/// second and logged with its destination, the other servers untouched.
fn assert_confined(what: &str, s: &Servers, log: &str) {
    let got = results(log);
    for name in ALLOWED {
        let (ok, _, detail) = got
            .get(name)
            .unwrap_or_else(|| panic!("{what}: {name} missing\n{log}"));
        assert!(ok, "{what}: {name} failed ({detail})\n{log}");
    }
    for name in DENIED {
        let (ok, secs, detail) = got
            .get(name)
            .unwrap_or_else(|| panic!("{what}: {name} missing\n{log}"));
        assert!(!ok, "{what}: {name} got through ({detail})\n{log}");
        assert!(
            *secs < 1.0,
            "{what}: {name} took {secs}s to fail ({detail})"
        );
    }
    let hits = s.allowed.hits();
    for path in ["/direct", "/connect", "/plain"] {
        assert!(
            hits.iter().any(|h| h.contains(path)),
            "{what}: {path} not served: {hits:?}"
        );
    }
    assert_eq!(s.other.hits(), Vec::<String>::new(), "{what}");
    assert_eq!(s.other_address.hits(), Vec::<String>::new(), "{what}");
    let (other, allowed) = (s.other.addr.port(), s.allowed.addr.port());
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
            "{what}: `{dest}` not logged\n{log}"
        );
    }
}

/// `none`: nothing at all, within a second each.
fn assert_none(what: &str, s: &Servers, log: &str) {
    let got = results(log);
    assert!(got.len() >= 10, "{what}: {got:?}\n{log}");
    for (name, (ok, secs, detail)) in &got {
        assert!(!ok, "{what}: {name} got through ({detail})\n{log}");
        assert!(*secs < 1.0, "{what}: {name} took {secs}s ({detail})");
    }
    assert_eq!(s.allowed.hits(), Vec::<String>::new(), "{what}");
    assert_eq!(s.other.hits(), Vec::<String>::new(), "{what}");
}

/// `open`: the machine's network, as before.
fn assert_open(what: &str, s: &Servers, log: &str) {
    let got = results(log);
    for name in [
        "direct_allowed",
        "direct_other_port",
        "direct_other_address",
        "daemon_other_port",
    ] {
        let (ok, _, detail) = got
            .get(name)
            .unwrap_or_else(|| panic!("{what}: {name} missing\n{log}"));
        assert!(ok, "{what}: {name} failed ({detail})\n{log}");
    }
    assert!(!s.other.hits().is_empty(), "{what}");
    assert!(!s.other_address.hits().is_empty(), "{what}");
    assert!(
        !log.contains("=== orch: network: refused"),
        "{what}: a refusal under `open`\n{log}"
    );
}

/// A repository whose plan `a` is finished by a real `orch up` (its agent writes `a.txt`), with
/// `verify` the probe; `agent_extra`, `defaults`: more lines for the agent's table and
/// `[defaults]`.
fn finished(s: &Servers, agent_extra: &str, defaults: &str, sandbox: &str) -> Repo {
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/a.md", &one_task("A", "Write a.txt"));
    let write = toml_array(&[
        "sh".to_string(),
        fixtures().join("write.sh").display().to_string(),
        "a.txt".to_string(),
    ]);
    repo.manifest(
        &write,
        &format!("report = \"exit\"\n{agent_extra}"),
        &format!(
            "retries = 0\nintegrate = \"off\"\nverify = {}\n{defaults}",
            toml_array(&probe_argv(s, &["-"]))
        ),
        &[("a", "")],
    );
    repo.commit_all("plans");
    let (code, out, err) = repo.run_cmd(
        repo.orch(&["up", "--json", "a"])
            .env("ORCH_SANDBOX", sandbox),
    );
    assert_eq!(code, 0, "orch up failed\n{out}\n{err}");
    repo
}

fn allow(s: &Servers) -> String {
    format!("network_allow = [\"127.0.0.1:{}\"]", s.allowed.addr.port())
}

fn text(repo: &Repo, rel: &str) -> String {
    String::from_utf8_lossy(&repo.read(rel)).into_owned()
}

/// `orch merge a` lands plan a (verify exits 0 whatever it reached): main moved, a.txt there.
fn merge_a(repo: &Repo, sandbox: &str) {
    let main = repo.rev("main");
    let (code, out, err) = repo.run_cmd(repo.orch(&["merge", "a"]).env("ORCH_SANDBOX", sandbox));
    assert_eq!(code, 0, "orch merge failed\n{out}\n{err}");
    assert_ne!(repo.rev("main"), main, "main did not move");
    assert!(repo.tree_files("main").contains(&"a.txt".to_string()));
}

#[test]
fn verify_of_orch_merge_reaches_its_allowed_endpoint_and_nothing_else() {
    // The rule is orch's (the namespace and its proxy), with or without Landlock.
    for sandbox in ["off", "on"] {
        if sandbox == "on" && !orch::sandbox::supported() {
            continue;
        }
        let s = servers();
        let repo = finished(&s, "", &allow(&s), sandbox);
        merge_a(&repo, sandbox);
        let log = text(&repo, ".orch/logs/a/merge-verify.log");
        assert_confined(&format!("orch merge, sandbox {sandbox}"), &s, &log);
    }
}

#[test]
fn verify_under_network_none_reaches_nothing_and_under_open_everything() {
    let s = servers();
    let repo = finished(&s, "network = \"none\"", &allow(&s), "off");
    merge_a(&repo, "off");
    assert_none(
        "orch merge, none",
        &s,
        &text(&repo, ".orch/logs/a/merge-verify.log"),
    );

    let s = servers();
    let repo = finished(&s, "network = \"open\"", "", "off");
    merge_a(&repo, "off");
    assert_open(
        "orch merge, open",
        &s,
        &text(&repo, ".orch/logs/a/merge-verify.log"),
    );
}

#[test]
fn the_merge_train_and_the_integration_preview_run_verify_confined() {
    // The merge train of `orch up`: verify before plan a lands.
    let s = servers();
    let repo = finished(&s, "", &format!("{}\nauto_merge = true", allow(&s)), "off");
    assert!(
        repo.tree_files("main").contains(&"a.txt".to_string()),
        "the train did not land a"
    );
    let log = text(&repo, ".orch/logs/a/merge-verify.log");
    assert_confined("the merge train", &s, &log);

    // The integration preview (`orch integrate`): verify on the plans merged together.
    let s = servers();
    let repo = finished(&s, "", &allow(&s), "off");
    let (code, out, err) = repo.run(&["integrate"]);
    assert_eq!(code, 0, "orch integrate failed\n{out}\n{err}");
    let log = text(&repo, ".orch/logs/.integration-verify.log");
    assert_confined("orch integrate", &s, &log);
}

#[test]
fn where_namespaces_cannot_be_made_verify_of_a_confined_plan_refuses_and_nothing_moves() {
    for mode in ["confined", "none"] {
        let s = servers();
        let repo = finished(&s, &format!("network = \"{mode}\""), &allow(&s), "off");
        let (main, plan) = (repo.rev("main"), repo.rev("plan/a"));
        let (code, out, err) = repo.run_cmd(&mut orch_without_namespaces(&repo, &["merge", "a"]));
        assert_eq!(code, 6, "{mode}: {out}\n{err}");
        assert!(
            err.contains("the verify command runs the work of agent `a`")
                && err.contains("network namespace"),
            "{mode}: {err}"
        );
        assert!(
            err.contains("hint: set `network = \"open\"`"),
            "{mode}: {err}"
        );
        assert_eq!(
            (repo.rev("main"), repo.rev("plan/a")),
            (main, plan),
            "{mode}"
        );
        assert_eq!(s.allowed.hits(), Vec::<String>::new(), "{mode}");
    }
}

/// Plans a and b both write `shared.txt` (a conflict); a is merged; the resolver of b runs the
/// probe after resolving. `agent_extra`: more lines for the plans' agent's table.
fn b_conflicts(s: &Servers, agent_extra: &str, defaults: &str, sandbox: &str) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    let write = fixtures().join("write.sh");
    let mut resolver = vec![
        "sh".to_string(),
        fixtures().join("resolver.sh").display().to_string(),
        "probe".to_string(),
    ];
    resolver.extend(probe_argv(s, &["-"]));
    let mut manifest = format!(
        "[defaults]\nagent = \"w\"\nmax_agents = 2\nretries = 0\nintegrate = \"off\"\n\
         resolve = \"fixer\"\n{defaults}\n\n\
         [agents.w]\ncommand = {w}\nreport = \"exit\"\n{agent_extra}\n\n\
         [agents.fixer]\ncommand = {fixer}\n",
        w = toml_array(&["sh", write.to_str().expect("utf8"), "shared.txt"]),
        fixer = toml_array(&resolver),
    );
    for name in ["a", "b"] {
        repo.write(
            &format!("docs/plans/{name}.md"),
            "# P\n\n## Phase 1: Work\n- [ ] 1.1 Write shared.txt\n",
        );
        manifest.push_str(&format!(
            "\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\n"
        ));
    }
    repo.write("plans.toml", &manifest);
    repo.commit_all("plans");
    let (code, out, err) = repo.run_cmd(repo.orch(&["up"]).env("ORCH_SANDBOX", sandbox));
    assert_eq!(code, 0, "orch up failed\n{out}\n{err}");
    let (code, out, err) = repo.run_cmd(repo.orch(&["merge", "a"]).env("ORCH_SANDBOX", sandbox));
    assert_eq!(code, 0, "orch merge a failed\n{out}\n{err}");
    repo
}

/// `orch resolve b` resolves (the resolver exits 0 whatever it reached): plan/b moved to a merge
/// of main; main did not move. Returns the resolver's log.
fn resolve_b(repo: &Repo, sandbox: &str) -> String {
    let (main, plan_b) = (repo.rev("main"), repo.rev("plan/b"));
    let (code, out, err) = repo.run_cmd(
        repo.orch(&["resolve", "b", "--json"])
            .env("ORCH_SANDBOX", sandbox),
    );
    let log = text(repo, ".orch/logs/b/resolve.log");
    assert_eq!(code, 0, "orch resolve failed\n{out}\n{err}\n{log}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["result"], "resolved", "{v:#}\n{log}");
    assert_eq!(repo.rev("main"), main);
    assert_eq!(repo.rev("plan/b^1"), plan_b);
    log
}

#[test]
fn a_resolver_of_orch_resolve_reaches_its_allowed_endpoint_and_nothing_else() {
    for sandbox in ["off", "on"] {
        if sandbox == "on" && !orch::sandbox::supported() {
            continue;
        }
        let s = servers();
        let repo = b_conflicts(&s, "", &allow(&s), sandbox);
        let log = resolve_b(&repo, sandbox);
        assert_confined(&format!("orch resolve, sandbox {sandbox}"), &s, &log);
    }
}

#[test]
fn a_resolver_under_network_none_reaches_nothing_and_under_open_everything() {
    let s = servers();
    let repo = b_conflicts(&s, "network = \"none\"", &allow(&s), "off");
    assert_none("orch resolve, none", &s, &resolve_b(&repo, "off"));

    // Open for the plan's agent and the resolver's (the strictest of the two applies).
    let s = servers();
    let repo = b_conflicts(&s, "", "network = \"open\"", "off");
    assert_open("orch resolve, open", &s, &resolve_b(&repo, "off"));
}

#[test]
fn verify_of_a_user_who_is_not_root_is_confined_the_same_way() {
    // The namespace then lives in a user namespace that maps the user's own uid, made by
    // `orch sandbox-exec --network-only` (no file rules here). Run as `nobody` where this test
    // runs as root (CI does); skipped otherwise.
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let (Some(setpriv), true) = (setpriv, nix::unistd::geteuid().is_root()) else {
        eprintln!("skipped: not root, or no setpriv");
        return;
    };
    let s = servers();
    let repo = Repo::bare_minimum();
    repo.write("docs/plans/a.md", &one_task("A", "Write a.txt"));
    // Everything the user runs or reads is theirs: orch, the scripts, the repository, its HOME.
    let bin = repo.outside("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let orch = bin.join("orch");
    std::fs::copy(env!("CARGO_BIN_EXE_orch"), &orch).expect("copy orch");
    for f in ["net_probe.py", "write.sh"] {
        std::fs::copy(fixtures().join(f), bin.join(f)).expect("copy a script");
    }
    let mut verify = probe_argv(&s, &["-"]);
    verify[1] = bin.join("net_probe.py").display().to_string();
    repo.manifest(
        &toml_array(&[
            "sh".to_string(),
            bin.join("write.sh").display().to_string(),
            "a.txt".to_string(),
        ]),
        "report = \"exit\"",
        &format!(
            "retries = 0\nintegrate = \"off\"\nverify = {}\n{}",
            toml_array(&verify),
            allow(&s)
        ),
        &[("a", "")],
    );
    repo.commit_all("plans");
    for dir in [repo.root(), repo.home(), bin.as_path()] {
        let st = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(dir)
            .status()
            .expect("chown");
        assert!(st.success());
    }
    let as_nobody = |args: &[&str]| {
        let mut c = Command::new(setpriv);
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(&orch)
            .args(args)
            .current_dir(repo.root())
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("PWD", repo.root())
            .env("HOME", repo.home())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("ORCH_SANDBOX", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (code, out, err) = repo.run_cmd(&mut c);
        assert_eq!(code, 0, "orch {args:?} as nobody\n{out}\n{err}");
    };
    as_nobody(&["up", "a"]);
    as_nobody(&["merge", "a"]);
    // (The repository is the user's now: read as files, git refuses another owner's.)
    let log = std::fs::read_to_string(repo.root().join(".orch/logs/a/merge-verify.log"))
        .expect("the verify log");
    assert!(log.contains("=== orch: verify passed ==="), "{log}");
    assert_confined("orch merge as nobody", &s, &log);
}

#[test]
fn where_namespaces_cannot_be_made_a_resolver_of_a_confined_plan_is_not_run() {
    let s = servers();
    let repo = b_conflicts(&s, "network = \"confined\"", &allow(&s), "off");
    let (main, plan_b) = (repo.rev("main"), repo.rev("plan/b"));
    let (code, out, err) = repo.run_cmd(&mut orch_without_namespaces(
        &repo,
        &["resolve", "b", "--json"],
    ));
    assert_eq!(code, 5, "{out}\n{err}");
    let text = format!("{out}\n{err}");
    assert!(
        text.contains("the resolving agent runs the work of agent `w`")
            && text.contains("network namespace"),
        "{text}"
    );
    assert_eq!((repo.rev("main"), repo.rev("plan/b")), (main, plan_b));
    // The resolver never ran: nothing of the probe in its log, nothing reached.
    let log = String::from_utf8_lossy(&repo.read(".orch/logs/b/resolve.log")).into_owned();
    assert!(results(&log).is_empty(), "{log}");
    assert_eq!(s.allowed.hits(), Vec::<String>::new());
}
